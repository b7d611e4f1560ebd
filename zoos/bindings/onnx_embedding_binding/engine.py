"""The embedding computation, run on the model's own worker thread: tokenize, batch, run, pool, normalise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .models import EmbeddingFiles


@dataclass
class OnnxEmbedder:
    session: Any
    tokenizer: Any
    input_names: frozenset[str]
    dimensions: int


def load_embedder(files: EmbeddingFiles, max_length: int, threads: int | None) -> OnnxEmbedder:
    import onnxruntime as ort  # type: ignore[import-not-found]
    from tokenizers import Tokenizer  # type: ignore[import-not-found]

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(files.onnx), options, providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_str(files.tokenizer_text())
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding()
    dims = session.get_outputs()[0].shape[-1]
    return OnnxEmbedder(session, tokenizer, frozenset(i.name for i in session.get_inputs()),
                        int(dims) if isinstance(dims, int) else 0)


def embed_batches(model: OnnxEmbedder, texts: list[str], batch_size: int, normalize: bool) -> tuple[list[list[float]], int]:
    """Vectors in the order of ``texts`` and the number of tokens read. Texts are sorted by length so each
    batch pads little, then put back in order."""
    import numpy as np

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors: list[Any] = [None] * len(texts)
    tokens = 0
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        enc = model.tokenizer.encode_batch([texts[i] for i in idx])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in model.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        out = model.session.run(None, feeds)[0]
        if out.ndim == 3:  # token states: mean over the real tokens
            m = mask[..., None].astype(np.float32)
            out = (out * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        if normalize:
            out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        tokens += int(mask.sum())
        for row, i in zip(out, idx):
            vectors[i] = row.astype(np.float32).tolist()
    return vectors, tokens
