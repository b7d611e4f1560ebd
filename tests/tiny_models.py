"""Tiny models with random weights, built from configs and saved with save_pretrained like downloaded ones.

No weights for these architectures ship in any package, so tests build the smallest real model of each
kind: the binding loads and runs it through the real library code path. The outputs are noise; shapes,
formats, parameters, streaming and cancel are real.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|endoftext|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


@contextlib.contextmanager
def offline() -> Iterator[None]:
    old = {k: os.environ.get(k) for k in OFFLINE}
    os.environ.update(OFFLINE)
    try:
        yield
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def tiny_clip_tokenizer(workdir: Path, max_length: int = 16) -> Any:
    """A CLIP BPE tokenizer over printable ASCII characters (vocabulary written here, no merges)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for code in range(33, 127):
        vocab.setdefault(chr(code), len(vocab))
        vocab.setdefault(chr(code) + "</w>", len(vocab))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "vocab.json").write_text(json.dumps(vocab))
    (workdir / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(workdir / "vocab.json"), str(workdir / "merges.txt"), model_max_length=max_length)


def tiny_clip_text_encoder(vocab_size: int, max_positions: int = 16) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=max_positions, projection_dim=32, bos_token_id=0, eos_token_id=1, pad_token_id=1))


def build_tiny_video_pipeline(dest: Path) -> None:
    """A TextToVideoSDPipeline (3D UNet + VAE + CLIP) that makes a few 32x32 frames in a second on a CPU."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel

    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer(dest.parent / f"{dest.name}-tokenizer")
    unet = UNet3DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=2)
    vae = AutoencoderKL(block_out_channels=[8], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=2,
                        down_block_types=["DownEncoderBlock2D"], up_block_types=["UpDecoderBlock2D"], sample_size=32)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    pipe = TextToVideoSDPipeline(vae=vae, text_encoder=tiny_clip_text_encoder(len(tokenizer)), tokenizer=tokenizer,
                                 unet=unet, scheduler=scheduler)
    pipe.save_pretrained(str(dest))  # type: ignore[attr-defined]


def build_tiny_musicgen(dest: Path) -> None:
    """A MusicgenForConditionalGeneration (T5 text encoder, EnCodec, 2-codebook decoder) plus its tokenizer."""
    import torch
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        T5Config,
    )

    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer(dest.parent / f"{dest.name}-tokenizer", max_length=64)
    codebook = 64
    text = T5Config(vocab_size=len(tokenizer), d_model=16, d_ff=32, d_kv=4, num_layers=1, num_heads=4)
    audio = EncodecConfig(hidden_size=codebook, compress=1, num_filters=2, codebook_size=codebook, codebook_dim=codebook,
                          upsampling_ratios=[8, 4], sampling_rate=8000)
    decoder = MusicgenDecoderConfig(vocab_size=codebook, hidden_size=16, num_hidden_layers=1, num_attention_heads=4,
                                    ffn_dim=32, pad_token_id=codebook, decoder_start_token_id=codebook,
                                    bos_token_id=codebook, num_codebooks=2, tie_word_embeddings=False, audio_channels=1)
    config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=audio.to_dict(), decoder=decoder.to_dict())
    model = MusicgenForConditionalGeneration(config)
    with torch.no_grad():  # EnCodec's codebooks start as zeros (every code would decode to the same sound)
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
    model.generation_config.pad_token_id = codebook
    model.generation_config.decoder_start_token_id = codebook
    model.save_pretrained(str(dest))
    tokenizer.save_pretrained(str(dest))


def build_tiny_causal_lm(dest: Path) -> None:
    """A 2-layer Llama with a chat template and no end-of-sequence token (it writes until max_tokens)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer(dest.parent / f"{dest.name}-tokenizer", max_length=4096)
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         bos_token_id=0, eos_token_id=None, pad_token_id=1)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = None
    model.save_pretrained(str(dest))
    tokenizer.save_pretrained(str(dest))


def build_tiny_pipeline(dest: Path) -> None:
    """A StableDiffusionPipeline small enough to run a step in well under a second on a CPU."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer(dest.parent / "tokenizer_source")
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=2)
    vae = AutoencoderKL(block_out_channels=[4, 8], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=2,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=tiny_clip_text_encoder(len(tokenizer)), tokenizer=tokenizer,
                                   unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(str(dest))  # type: ignore[attr-defined]  # diffusers' stubs miss the mixin method
