"""Exact arithmetic without eval()."""

from __future__ import annotations

import ast
import operator
from typing import Callable, Union

Number = Union[int, float]

_BINARY: dict[type, Callable[[Number, Number], Number]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Number], Number]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 100:
            raise ValueError("exponent too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    raise ValueError(f"unsupported element: {ast.dump(node)[:40]}")


async def evaluate(expression: str) -> Number:
    """Evaluate an arithmetic expression exactly.

    Args:
        expression: Numbers with + - * / // % ** (or ^) and parentheses, e.g. "(2 + 3) * 4".
    """
    if len(expression) > 200:
        raise ValueError("expression too long (200 characters at most)")
    tree = ast.parse(expression.replace("^", "**"), mode="eval")
    result = _eval(tree.body)
    return int(result) if isinstance(result, float) and result.is_integer() else result
