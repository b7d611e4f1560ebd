"""Make /openapi.json describe the error bodies the server really sends.

FastAPI documents every validation failure as ``422 HTTPValidationError`` with ``detail`` as a list. Our
handlers answer differently: /api/v1 sends ``422 {"detail": "<summary>", "errors": [...]}`` and the
OpenAI-style routes send ``400 {"error": {...}}``. Clients generated from the document (and schema
checkers) must see the real shapes.
"""

from __future__ import annotations

from typing import Any, Callable

from fastapi import FastAPI

_VALIDATION_ERROR_BODY: dict[str, Any] = {
    "title": "HTTPValidationError",
    "type": "object",
    "required": ["detail", "errors"],
    "properties": {
        "detail": {"type": "string", "title": "Detail", "description": "One line per problem: `field.path: message`."},
        "errors": {"type": "array", "title": "Errors", "items": {"$ref": "#/components/schemas/ValidationError"}},
    },
}
_OPENAI_ERROR_REF = "#/components/schemas/ErrorBody"


def _answers_in_openai_shape(operation: dict[str, Any]) -> bool:
    bad_request = operation.get("responses", {}).get("400", {})
    schema = bad_request.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref") == _OPENAI_ERROR_REF)


def describe_real_error_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """Fix the validation-error parts of a generated OpenAPI document in place (idempotent)."""
    schemas = document.get("components", {}).get("schemas", {})
    if "HTTPValidationError" in schemas:
        schemas["HTTPValidationError"] = _VALIDATION_ERROR_BODY
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and _answers_in_openai_shape(operation):
                operation["responses"].pop("422", None)  # these routes answer bad input with 400 ErrorBody
    return document


def install_openapi_fixes(app: FastAPI) -> None:
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        return describe_real_error_bodies(build())

    app.openapi = openapi  # type: ignore[method-assign]
