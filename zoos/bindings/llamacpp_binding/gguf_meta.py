"""Read the metadata header of a GGUF file (key/values and tensor shapes) without loading the model.

Pure Python and read-only: listing models and describing them never calls into llama.cpp.
The format: magic ``GGUF``, version, tensor count, key/value count, the key/values, then one info
record per tensor (name, dimensions, type, offset).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCALARS: dict[int, str] = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
MAX_KEEP_ARRAY = 64  # longer arrays (the vocabulary) are skipped, only their length is kept

# llama.cpp's llama_ftype values (general.file_type)
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
    36: "TQ1_0", 37: "TQ2_0",
}


class GGUFError(ValueError):
    """The file is not a readable GGUF file."""


@dataclass
class GGUFHeader:
    version: int
    metadata: dict[str, Any]
    parameter_count: int
    tensor_count: int
    array_lengths: dict[str, int] = field(default_factory=dict)
    last_tensor_start: int = 0  # file offset where the last tensor's data begins
    file_size: int = 0

    def unloadable_reason(self) -> str | None:
        """Why llama.cpp could not load this file, when the header already tells (no tensors, cut short)."""
        if self.tensor_count == 0:
            return "it holds no tensors"
        if self.last_tensor_start >= self.file_size:
            return "it is truncated (its tensor data ends before the header says)"
        return None


_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")
_SCALAR_STRUCTS: dict[int, struct.Struct] = {t: struct.Struct(fmt) for t, fmt in _SCALARS.items()}


class _Cursor:
    """Reads the header from the memory-mapped file: one offset, every read bounds-checked (a cut file is a
    GGUFError). Skipping a 50,000-string vocabulary costs milliseconds: a model file is checked at start-up."""

    def __init__(self, buf: mmap.mmap, offset: int) -> None:
        self.buf, self.off, self.size = buf, offset, len(buf)

    def take(self, st: struct.Struct) -> Any:
        off, end = self.off, self.off + st.size
        if end > self.size:
            raise GGUFError("file ends inside its header")
        self.off = end
        return st.unpack_from(self.buf, off)[0]

    def string(self) -> str:
        n = self.take(_U64)
        if n > 1 << 26:
            raise GGUFError("implausible string length in header")
        start, self.off = self.off, self.off + n
        if self.off > self.size:
            raise GGUFError("file ends inside its header")
        return self.buf[start:self.off].decode("utf-8", errors="replace")

    def skip(self, n_bytes: int) -> None:
        self.off += n_bytes
        if self.off > self.size:
            raise GGUFError("file ends inside its header")

    def skip_strings(self, count: int) -> None:
        buf, off, length = self.buf, self.off, _U64.unpack_from
        try:
            for _ in range(count):
                off += 8 + length(buf, off)[0]
        except struct.error:  # a length field past the end of the file
            raise GGUFError("file ends inside its header") from None
        self.off = off
        self.skip(0)


def _read_value(cur: _Cursor, vtype: int, key: str, lengths: dict[str, int], keep: tuple[str, ...] = ()) -> Any:
    if vtype in _SCALAR_STRUCTS:
        return cur.take(_SCALAR_STRUCTS[vtype])
    if vtype == _STRING:
        return cur.string()
    if vtype == _ARRAY:
        etype, count = cur.take(_U32), cur.take(_U64)
        lengths[key] = count
        if key in keep and etype == 5:  # int32 array asked for in full (token types): read it at once
            start = cur.off
            cur.skip(4 * count)
            return list(struct.unpack_from(f"<{count}i", cur.buf, start))
        if count > MAX_KEEP_ARRAY:
            if etype in _SCALAR_STRUCTS:
                cur.skip(_SCALAR_STRUCTS[etype].size * count)
            elif etype == _STRING:
                cur.skip_strings(count)
            else:
                raise GGUFError(f"unsupported nested array in '{key}'")
            return None
        return [_read_value(cur, etype, key, lengths) for _ in range(count)]
    raise GGUFError(f"unknown value type {vtype} for '{key}'")


def read_gguf_header(path: Path, keep_arrays: tuple[str, ...] = ()) -> GGUFHeader:
    """Metadata key/values (short arrays kept, long ones skipped unless named in ``keep_arrays``: int32
    arrays only) and the total parameter count."""
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise GGUFError(f"'{path.name}' is not a GGUF file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse(path, _Cursor(buf, 4), keep_arrays)


def _parse(path: Path, cur: _Cursor, keep_arrays: tuple[str, ...]) -> GGUFHeader:
    version = cur.take(_U32)
    if version < 2:
        raise GGUFError(f"'{path.name}' uses GGUF version {version}; only 2 and later are supported")
    tensor_count, kv_count = cur.take(_U64), cur.take(_U64)
    metadata: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    for _ in range(kv_count):
        key = cur.string()
        metadata[key] = _read_value(cur, cur.take(_U32), key, lengths, keep_arrays)
    params = 0
    last_offset = 0
    for _ in range(tensor_count):
        cur.skip(cur.take(_U64))  # tensor name
        n_dims = cur.take(_U32)
        if n_dims > 8:
            raise GGUFError("implausible tensor dimensions in header")
        count = 1
        for _ in range(n_dims):
            count *= cur.take(_U64)
        cur.take(_U32)  # type
        last_offset = max(last_offset, cur.take(_U64))
        params += count
    align_value = metadata.get("general.alignment")
    alignment = align_value if isinstance(align_value, int) and align_value > 0 else 32
    data_start = -(-cur.off // alignment) * alignment
    return GGUFHeader(version, metadata, params, tensor_count, lengths, data_start + last_offset, cur.size)


def format_parameter_count(n: int) -> str | None:
    if n <= 0:
        return None
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            value = n / div
            return f"{value:.0f}{unit}" if value >= 10 else f"{value:.1f}{unit}"
    return str(n)


def describe(header: GGUFHeader) -> dict[str, Any]:
    """The ModelInfo-style fields the GGUF header can tell: family, context size, quantisation, size, template."""
    md = header.metadata
    arch = md.get("general.architecture")
    ftype = md.get("general.file_type")
    template = md.get("tokenizer.chat_template")
    return {
        "family": arch,
        "families": [arch] if arch else None,
        "context_size": md.get(f"{arch}.context_length") if arch else None,
        "quantization_level": FILE_TYPES.get(ftype, f"type {ftype}") if isinstance(ftype, int) else None,
        "parameter_size": md.get("general.size_label") or format_parameter_count(header.parameter_count),
        "template": template if isinstance(template, str) else None,
        "license": md.get("general.license") if isinstance(md.get("general.license"), str) else None,
        "details": {
            "architecture": arch,
            "general_name": md.get("general.name"),
            "parameter_count": header.parameter_count,
            "gguf_version": header.version,
            "embedding_length": md.get(f"{arch}.embedding_length") if arch else None,
            "block_count": md.get(f"{arch}.block_count") if arch else None,
            "vocab_size": header.array_lengths.get("tokenizer.ggml.tokens"),
            "has_chat_template": isinstance(template, str),
        },
    }
