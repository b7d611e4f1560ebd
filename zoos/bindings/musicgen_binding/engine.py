"""MusicGen models: loading from a save_pretrained folder and the blocking generation on their worker thread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from lollms_server.core.bindings.base import CancelToken
from lollms_server.core.bindings.model_files import ModelFolder
from lollms_server.core.bindings.torch_device import pick_device, pick_dtype
from lollms_server.core.errors import BackendError


@dataclass
class MusicModel:
    model: Any  # a transformers MusicgenForConditionalGeneration
    tokenizer: Any
    device: str

    @property
    def sample_rate(self) -> int:
        return int(self.model.config.audio_encoder.sampling_rate)

    @property
    def frame_rate(self) -> float:
        """Audio tokens per second of music (from the audio codec's config)."""
        cfg = self.model.config.audio_encoder
        rate = getattr(cfg, "frame_rate", None)
        if rate:
            return float(rate)
        hop = 1
        for ratio in getattr(cfg, "upsampling_ratios", None) or []:
            hop *= int(ratio)
        return self.sample_rate / hop


@dataclass(frozen=True)
class MusicJob:
    prompt: str
    duration: float
    guidance_scale: float
    temperature: float
    top_k: int
    seed: int


def load_model(folder: ModelFolder, device_setting: str, dtype_setting: str) -> MusicModel:
    from transformers import AutoTokenizer, MusicgenForConditionalGeneration
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    device = pick_device(device_setting)
    model = MusicgenForConditionalGeneration.from_pretrained(
        str(folder.folder), dtype=pick_dtype(dtype_setting, device), local_files_only=True)
    cast(Any, model).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder.folder), local_files_only=True)
    return MusicModel(model, tokenizer, device)


def _stop_on_cancel(cancel: CancelToken) -> Any:
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopOnCancel(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            return cancel.cancelled

    return StoppingCriteriaList([StopOnCancel()])


def generate_pcm(loaded: MusicModel, job: MusicJob, cancel: CancelToken) -> tuple[Any, int]:
    """Blocking generation: (int16 array of shape (samples, channels), sample rate)."""
    import numpy as np
    import torch

    torch.manual_seed(job.seed)
    inputs = loaded.tokenizer([job.prompt], padding=True, return_tensors="pt").to(loaded.device)
    max_new_tokens = max(1, round(job.duration * loaded.frame_rate))
    with torch.inference_mode():
        audio = loaded.model.generate(
            input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), do_sample=True,
            guidance_scale=job.guidance_scale, temperature=job.temperature, top_k=job.top_k or None,
            max_new_tokens=max_new_tokens, stopping_criteria=_stop_on_cancel(cancel))
    if cancel.cancelled:
        raise BackendError("music generation was cancelled (the client went away)")
    wave = audio[0].float().cpu().numpy()  # (channels, samples)
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak > 1.0:
        wave = wave / peak
    pcm = (np.clip(wave, -1.0, 1.0) * 32767.0).round().astype(np.int16).T
    return pcm, loaded.sample_rate
