"""Where the llama-server build is looked up: the build cache folder carries the llama-cpp-python version."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

BINDINGS = Path(__file__).resolve().parents[1] / "zoos" / "bindings"
if str(BINDINGS) not in sys.path:
    sys.path.insert(0, str(BINDINGS))

from llamacpp_binding import server_binary  # noqa: E402


def test_the_version_read_from_the_metadata_header_is_the_one_importlib_reports() -> None:
    checked = 0
    for dist in importlib.metadata.distributions():  # every installed package: real METADATA files
        text = dist.read_text("METADATA")
        if text is None:
            continue
        assert server_binary._metadata_version(text) == dist.version, dist.metadata["Name"]
        checked += 1
    assert checked > 20


def test_the_build_cache_folder_is_named_for_the_installed_llama_cpp_python() -> None:
    try:
        expected = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        expected = server_binary.DEFAULT_VERSION
    assert server_binary.llama_cpp_version() == expected
    assert server_binary.cached_binary().parent.name == f"llama-server-{expected}-{server_binary.BUILD_KEY}"
