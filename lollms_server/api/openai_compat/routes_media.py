"""POST /v1/images/generations, /v1/audio/speech, /v1/audio/transcriptions through the /api/v1 pipeline."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from pathlib import PurePath
from typing import Any, Literal, Optional

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from lollms_server.api.deps import current_services
from lollms_server.api.models import GenerateRequest, InputData, OutputData
from lollms_server.api.openai_compat.auth import require_openai_key
from lollms_server.api.openai_compat.errors import ERROR_RESPONSES, OpenAIError, OpenAIRoute
from lollms_server.api.openai_compat.ids import ModelRef, resolve_model
from lollms_server.api.openai_compat.models import ImageGenerationRequest, SpeechRequest
from lollms_server.api.openai_compat.planning import plan_for, run_planned
from lollms_server.core.audio_formats import FORMAT_OF_MIME, FORMATS, convert
from lollms_server.core.bindings.base import AUDIO_MIME_TYPES
from lollms_server.core.services import Services

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute, dependencies=[Depends(require_openai_key)],
                   responses=ERROR_RESPONSES)

MAX_UPLOAD_BYTES = 25 * 1024 * 1024
# upload file extensions -> the mime type bindings know (browsers and SDKs often send octet-stream)
_MIME_OF_EXTENSION = {
    ".wav": "audio/wav", ".mp3": "audio/mpeg", ".mpga": "audio/mpeg", ".mpeg": "audio/mpeg", ".ogg": "audio/ogg",
    ".oga": "audio/ogg", ".opus": "audio/ogg", ".webm": "audio/webm", ".m4a": "audio/mp4", ".mp4": "audio/mp4",
    ".flac": "audio/flac", ".aac": "audio/aac",
}


async def _generate(request: Request, services: Services, ref: ModelRef, gen_type: str, items: list[InputData],
                    params: dict[str, Any]) -> list[OutputData]:
    body = GenerateRequest(input_data=items, generation_type=gen_type, parameters=params, binding_name=ref.binding_name,
                           model_name=ref.model_name, personality=ref.personality)
    return await run_planned(request, services, await plan_for(request, services, body))


def _first(outputs: list[OutputData], kind: str, what: str) -> list[OutputData]:
    found = [o for o in outputs if o.type == kind and o.data is not None and (kind == "text" or o.data)]
    if not found:
        errors = "; ".join(str(o.data) for o in outputs if o.type == "error")
        raise OpenAIError(502, f"the binding returned no {what}" + (f": {errors}" if errors else ""), code="no_output")
    return found


def _decode(data: Any) -> bytes:
    try:
        return base64.b64decode(str(data), validate=True)
    except (binascii.Error, ValueError):
        raise OpenAIError(502, "the binding returned binary data that is not base64", code="bad_output") from None


# ---- images ---------------------------------------------------------------------------------------
@router.post("/images/generations", summary="Generate images (b64_json, or url as a data: URL)")
async def images_generations(body: ImageGenerationRequest, request: Request, services: Services = Depends(current_services)) -> JSONResponse:
    ref = await resolve_model(services, body.model, "tti")
    base: dict[str, Any] = {"quality": body.quality, "style": body.style, "negative_prompt": body.negative_prompt}
    if body.size:
        width, height = (int(x) for x in body.size.split("x"))
        base.update(image_size=body.size, width=width, height=height)
    data: list[dict[str, Any]] = []
    for i in range(body.n):
        params = {**base, "seed": None if body.seed is None else body.seed + i}
        prompt = [InputData(type="text", role="user_prompt", data=body.prompt)]
        outputs = await _generate(request, services, ref, "tti", prompt, {k: v for k, v in params.items() if v is not None})
        for image in _first(outputs, "image", "image"):
            b64 = str(image.data)
            entry: dict[str, Any] = {"revised_prompt": (image.metadata or {}).get("prompt_used")}
            if body.response_format == "url":
                entry["url"] = f"data:{image.mime_type or 'image/png'};base64,{b64}"
            else:
                entry["b64_json"] = b64
            data.append(entry)
        if len(data) >= body.n:
            break
    return JSONResponse({"created": int(time.time()), "data": data[: body.n]})


# ---- speech ---------------------------------------------------------------------------------------
@router.post("/audio/speech", summary="Text to speech (returns the audio bytes; mp3 by default, as OpenAI)",
             responses={200: {"content": {m: {} for m in sorted({f.mime_type for f in FORMATS.values()})},
                              "description": "Audio bytes in the asked response_format."}})
async def audio_speech(body: SpeechRequest, request: Request, services: Services = Depends(current_services)) -> Response:
    ref = await resolve_model(services, body.model, "tts")
    params = {k: v for k, v in {"voice": body.voice, "speed": body.speed, "instructions": body.instructions}.items() if v is not None}
    outputs = await _generate(request, services, ref, "tts", [InputData(type="text", role="user_prompt", data=body.input)], params)
    audio = _first(outputs, "audio", "audio")[0]
    raw, mime = _decode(audio.data), (audio.mime_type or "application/octet-stream").lower()
    if FORMAT_OF_MIME.get(mime) == body.response_format:
        return Response(raw, media_type=mime)
    converted, out_mime = await asyncio.to_thread(convert, raw, body.response_format)
    return Response(converted, media_type=out_mime)


# ---- transcription --------------------------------------------------------------------------------
def _timestamp(seconds: float, sep: str) -> str:
    ms = round(max(seconds, 0.0) * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cues(text: str, meta: dict[str, Any]) -> list[dict[str, Any]]:
    segments = meta.get("segments")
    if isinstance(segments, list) and segments:
        return [{"start": float(s.get("start", 0)), "end": float(s.get("end", 0)), "text": str(s.get("text", "")).strip()}
                for s in segments if isinstance(s, dict)]
    return [{"start": 0.0, "end": float(meta.get("duration") or 0.0), "text": text}]


def _subtitles(text: str, meta: dict[str, Any], kind: str) -> str:
    cues = _cues(text, meta)
    if kind == "srt":
        return "\n".join(f"{i}\n{_timestamp(c['start'], ',')} --> {_timestamp(c['end'], ',')}\n{c['text']}\n" for i, c in enumerate(cues, 1))
    return "WEBVTT\n\n" + "\n".join(f"{_timestamp(c['start'], '.')} --> {_timestamp(c['end'], '.')}\n{c['text']}\n" for c in cues)


def _audio_mime(upload: UploadFile) -> str:
    by_name = _MIME_OF_EXTENSION.get(PurePath(upload.filename or "").suffix.lower())
    mime = (upload.content_type or "").lower().split(";")[0].strip()
    if mime.startswith("audio/") and mime in AUDIO_MIME_TYPES:
        return mime
    return by_name or (mime if mime.startswith("audio/") else "audio/wav")


_FILE = File(..., description="The audio file (wav, mp3, flac, ogg, webm…), at most 25 MB.")
_MODEL = Form(None, description="Model id; default: defaults.stt_binding.")
_PROMPT = Form(None, description="Text to guide the transcription (parameter `initial_prompt`).")
SttFormat = Literal["json", "text", "verbose_json", "srt", "vtt"]


async def _speech_to_text(request: Request, services: Services, file: UploadFile, model: str | None, task: str,
                          params: dict[str, Any], response_format: str) -> Response:
    ref = await resolve_model(services, model, "stt")
    raw = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(raw) > MAX_UPLOAD_BYTES:
        raise OpenAIError(413, "the audio file is larger than 25 MB", param="file", code="file_too_large")
    if not raw:
        raise OpenAIError(400, "the audio file is empty", param="file")
    item = InputData(type="audio", role="input_audio", data=base64.b64encode(raw).decode(), mime_type=_audio_mime(file),
                     metadata={"filename": file.filename} if file.filename else None)
    params = {k: v for k, v in params.items() if v is not None}
    if task != "transcribe":
        params["task"] = task
    outputs = await _generate(request, services, ref, "stt", [item], params)
    texts = _first(outputs, "text", "transcript")
    text = "".join(str(t.data) for t in texts).strip()
    meta = dict(texts[0].metadata or {})
    if response_format == "text":
        return PlainTextResponse(text)
    if response_format in ("srt", "vtt"):
        return PlainTextResponse(_subtitles(text, meta, response_format))
    if response_format == "verbose_json":
        return JSONResponse({"task": task, "language": meta.get("language") or params.get("language"),
                             "duration": meta.get("duration"), "text": text, "segments": _cues(text, meta)})
    return JSONResponse({"text": text})


@router.post("/audio/transcriptions", summary="Speech to text (multipart upload)")
async def audio_transcriptions(
    request: Request,
    file: UploadFile = _FILE,
    model: Optional[str] = _MODEL,
    language: Optional[str] = Form(None, description="ISO-639-1 language of the audio."),
    prompt: Optional[str] = _PROMPT,
    response_format: SttFormat = Form("json"),
    temperature: Optional[float] = Form(None, ge=0.0, le=1.0),
    services: Services = Depends(current_services),
) -> Response:
    params = {"language": language, "initial_prompt": prompt, "temperature": temperature}
    return await _speech_to_text(request, services, file, model, "transcribe", params, response_format)


@router.post("/audio/translations", summary="Speech to English text (multipart upload; binding parameter task=translate)")
async def audio_translations(
    request: Request,
    file: UploadFile = _FILE,
    model: Optional[str] = _MODEL,
    prompt: Optional[str] = _PROMPT,
    response_format: SttFormat = Form("json"),
    temperature: Optional[float] = Form(None, ge=0.0, le=1.0),
    services: Services = Depends(current_services),
) -> Response:
    params = {"initial_prompt": prompt, "temperature": temperature}
    return await _speech_to_text(request, services, file, model, "translate", params, response_format)
