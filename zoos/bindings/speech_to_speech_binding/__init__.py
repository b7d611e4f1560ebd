"""speech_to_speech_binding: a voice assistant in one request (speech to text -> text -> speech).

Each step is an ordinary request to another configured instance, run through the server's own generation
pipeline (planning checks, personalities, GPU slots, cancel). The answer is streamed from the text instance,
cut into sentences, and every sentence is spoken as soon as it is complete.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import wave
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, AsyncIterator, ClassVar

from lollms_server.core.bindings.base import AUDIO_MIME_TYPES, Binding, BindingResult, GenerationTask, StreamEvent
from lollms_server.core.bindings.wav import Pcm, duration_of, read_wav, wav_b64
from lollms_server.core.contract import GenerateRequest, InputData, OutputData
from lollms_server.core.errors import BackendError, BadRequestError, UnavailableError

from .sentences import SentenceCutter

if TYPE_CHECKING:
    from lollms_server.core.services import Services

STEPS: tuple[str, ...] = ("stt", "ttt", "tts")


class SpeechToSpeechBinding(Binding):
    binding_type_name: ClassVar[str] = "speech_to_speech_binding"
    accepted_mime_types: ClassVar[dict[str, tuple[str, ...]]] = {"audio": AUDIO_MIME_TYPES}
    input_roles: ClassVar[frozenset[str]] = frozenset({"user_prompt", "input_audio", "audio", "system_context"})

    def __init__(self, config: dict[str, Any], resource_manager: Any) -> None:
        super().__init__(config, resource_manager)
        self.services: Services | None = None

    # ---- chaining ------------------------------------------------------------------------------
    def _step_instance(self, services: "Services", step: str) -> str:
        name = self.config.get(f"{step}_binding") or services.config.default_binding(step)
        if not name:
            raise RuntimeError(f"no {step} instance: set {step}_binding in this instance or {step}_binding in the main config defaults")
        if name == self.instance_name:
            raise RuntimeError(f"{step}_binding cannot be this instance itself")
        return str(name)

    def attach_services(self, services: "Services") -> None:
        for step in STEPS:
            name = self._step_instance(services, step)
            binding = services.bindings.get(name)  # raises when missing or broken: this instance is then broken too
            if step not in binding.generation_types:
                raise RuntimeError(f"{step}_binding '{name}' cannot do '{step}' (it does: {', '.join(sorted(binding.generation_types))})")
        if self.config.get("personality"):
            services.personalities.get(str(self.config["personality"]))
        self.services = services

    def _services(self) -> "Services":
        if self.services is None:
            raise UnavailableError(f"binding instance '{self.instance_name}' is not attached to the server yet")
        return self.services

    async def list_available_models(self) -> list[dict[str, Any]]:
        return [{"name": "speech_to_speech", "format": "chain", "family": None, "size": None,
                 "details": {step: self.config.get(f"{step}_binding") for step in STEPS}}]

    async def get_model_info(self, model_name: str | None = None) -> dict[str, Any]:
        services = self._services()
        chain = {f"{step}_binding": self._step_instance(services, step) for step in STEPS}
        return {"model_name": "speech_to_speech", "model_type": "audio2audio", "context_size": None, "max_output_tokens": None,
                "supports_vision": False, "supports_audio": True,
                "details": {**chain, "personality": self.config.get("personality"), "ttt_model": self.config.get("ttt_model"),
                            "tts_voice": self.config.get("tts_voice")}}

    # ---- one step through the pipeline ----------------------------------------------------------
    async def _run(self, request: GenerateRequest) -> list[OutputData]:
        services = self._services()
        plan = await services.generation.plan(request)
        return await services.generation.run(plan)

    async def _transcribe(self, task: GenerationTask, services: "Services") -> str:
        audio = [i for i in task.inputs if i.type == "audio"]
        if len(audio) != 1:
            raise BadRequestError("audio to audio needs exactly one audio input_data item (role input_audio), e.g. a WAV of the question")
        item = audio[0]
        outputs = await self._run(GenerateRequest(
            generation_type="stt", binding_name=self._step_instance(services, "stt"),
            input_data=[InputData(type="audio", role="input_audio", data=item.data, mime_type=item.mime_type)]))
        text = " ".join(str(o.data) for o in outputs if o.type == "text").strip()
        if not text:
            raise BadRequestError("no speech was recognised in the audio input")
        return text

    async def _speak(self, text: str, services: "Services") -> Pcm:
        outputs = await self._run(GenerateRequest(
            generation_type="tts", binding_name=self._step_instance(services, "tts"), model_name=self.config.get("tts_voice"),
            input_data=[InputData(type="text", role="user_prompt", data=text)]))
        audio = next((o for o in outputs if o.type == "audio"), None)
        if audio is None:
            raise BackendError("the text-to-speech instance returned no audio")
        try:
            return read_wav(base64.b64decode(str(audio.data)))
        except (wave.Error, EOFError, binascii.Error) as exc:
            raise BackendError(f"the text-to-speech instance did not return a WAV file: {exc}") from None

    async def _answer(self, task: GenerationTask, question: str, services: "Services") -> AsyncGenerator[str, None]:
        params = {k: v for k, v in task.params.items() if k in ("temperature", "top_p", "top_k", "seed", "repeat_penalty")}
        params["max_tokens"] = int(task.params.get("max_tokens") or self.config.get("max_tokens") or 256)
        personality = task.params.get("personality") or self.config.get("personality")
        items = ([InputData(type="text", role="system_context", data=task.system_prompt)] if task.system_prompt else [])
        items.append(InputData(type="text", role="user_prompt", data=question))
        plan = await services.generation.plan(GenerateRequest(
            generation_type="ttt", binding_name=self._step_instance(services, "ttt"), model_name=self.config.get("ttt_model"),
            personality=str(personality) if personality else None, input_data=items, stream=True, parameters=params))
        chunks = services.generation.stream(plan)
        try:
            async for chunk in chunks:
                if chunk.type == "chunk" and isinstance(chunk.content, str):
                    yield chunk.content
                elif chunk.type == "error":
                    raise BackendError(f"the text instance failed: {chunk.content}")
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()  # the text step stops (and frees its slot) when this one is cancelled

    # ---- generation ----------------------------------------------------------------------------
    async def generate(self, task: GenerationTask) -> BindingResult:
        final: BindingResult = []
        async for event in self._converse(task, stream=False):
            final = event["content"]
        return final

    async def generate_stream(self, task: GenerationTask) -> AsyncIterator[StreamEvent]:
        async for event in self._converse(task, stream=True):
            yield event

    def _audio_output(self, pcm: Pcm, **meta: Any) -> dict[str, Any]:
        return {"type": "audio", "data": wav_b64(pcm.frames, pcm.sample_rate, pcm.channels, pcm.sample_width),
                "mime_type": "audio/wav",
                "metadata": {"sample_rate": pcm.sample_rate,
                             "duration": duration_of(pcm.frames, pcm.sample_rate, pcm.sample_width, pcm.channels), **meta}}

    async def _converse(self, task: GenerationTask, *, stream: bool) -> AsyncIterator[StreamEvent]:
        services = self._services()
        question = await self._transcribe(task, services)
        yield {"type": "info", "content": {"transcript": question}}
        cutter = SentenceCutter(int(self.config.get("min_sentence_chars") or 12))
        reply: list[str] = []
        spoken: list[Pcm] = []

        async def say(sentence: str) -> StreamEvent:
            pcm = await self._speak(sentence, services)
            if spoken and (pcm.sample_rate, pcm.channels, pcm.sample_width) != (spoken[0].sample_rate, spoken[0].channels, spoken[0].sample_width):
                raise BackendError("the text-to-speech instance changed its audio format between sentences")
            spoken.append(pcm)
            return {"type": "chunk", "content": [self._audio_output(pcm, text=sentence, sentence_index=len(spoken) - 1)]}

        async with contextlib.aclosing(self._answer(task, question, services)) as pieces:
            async for piece in pieces:
                reply.append(piece)
                for sentence in cutter.feed(piece):
                    event = await say(sentence)
                    if stream:
                        yield event
        for sentence in cutter.flush():
            event = await say(sentence)
            if stream:
                yield event
        text = "".join(reply).strip()
        outputs: list[dict[str, Any]] = [{"type": "text", "data": text, "metadata": {"transcript": question}}]
        if spoken:
            first = spoken[0]
            whole = Pcm(b"".join(p.frames for p in spoken), first.sample_rate, first.channels, first.sample_width)
            outputs.append(self._audio_output(whole, sentences=len(spoken), transcript=question))
        yield {"type": "final", "content": outputs}


__all__ = ["SpeechToSpeechBinding"]
