"""A tiny but valid multimodal projector (mmproj GGUF) for a llama.cpp text model, written with the gguf package.

No small vision model ships in any package, so tests build the smallest projector llama.cpp's clip loader
accepts: projector type ``mlp`` (LLaVA), a vision encoder of zero transformer blocks (the LLaVA graph
stops before them), a 16x16 patch embedding over a 64x64 image and a two-layer MLP into the text model's
embedding size. Weights are random: the model reads noise, but the wire path is the real one (image
decoded by llama.cpp, resized, projected, placed at its marker). Every image costs IMAGE_TOKENS tokens.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SIZE = 64  # llama.cpp resizes (pads) every image to this square
PATCH_SIZE = 16
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2  # embeddings one image adds to the prompt
VISION_EMBD = 32
HIDDEN = 64


def write_tiny_mmproj(path: Path, text_embd: int = 576, seed: int = 0) -> Path:
    """Write the projector for a text model whose embeddings have ``text_embd`` values (SmolLM2-135M: 576)."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> "np.ndarray":
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    w = gguf.GGUFWriter(str(path), "clip")
    w.add_string("general.name", "tiny test projector")
    w.add_bool("clip.has_vision_encoder", True)
    w.add_string("clip.projector_type", "mlp")
    w.add_uint32("clip.vision.embedding_length", VISION_EMBD)
    w.add_uint32("clip.vision.feed_forward_length", HIDDEN)
    w.add_uint32("clip.vision.block_count", 0)
    w.add_uint32("clip.vision.projection_dim", text_embd)
    w.add_uint32("clip.vision.attention.head_count", 4)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    w.add_uint32("clip.vision.image_size", IMAGE_SIZE)
    w.add_uint32("clip.vision.patch_size", PATCH_SIZE)
    w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])
    # numpy shapes are ggml's dimensions reversed: patch_embd is ne = [16, 16, 3, 32] (a conv kernel)
    w.add_tensor("v.patch_embd.weight", weights(VISION_EMBD, 3, PATCH_SIZE, PATCH_SIZE))
    w.add_tensor("v.position_embd.weight", weights(IMAGE_TOKENS, VISION_EMBD))
    w.add_tensor("mm.0.weight", weights(HIDDEN, VISION_EMBD))
    w.add_tensor("mm.0.bias", weights(HIDDEN))
    w.add_tensor("mm.2.weight", weights(text_embd, HIDDEN))  # its ne[1] must equal the text model's n_embd
    w.add_tensor("mm.2.bias", weights(text_embd))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
