"""Images for a model with a multimodal projector (mmproj): checked, bounded, and placed in the prompt.

llama-server takes a multimodal prompt as ``{"prompt_string": text, "multimodal_data": [base64, ...]}``: the
text holds one media marker (``/props`` -> ``media_marker``, random per process) per image, in order, and
llama.cpp's mtmd library puts each image's embeddings where its marker is. The text itself is still built
by our own prompt formatting (``server_prompt.py``): a user turn with images gets one marker and a line
break per image before its text, so the chat template renders the markers like any text.

Only formats llama.cpp decodes itself are sent as they are (PNG, JPEG, GIF, BMP: stb_image); WEBP would
need an ffmpeg program beside llama-server, so it is decoded here and sent as PNG. Bytes that are no image
are refused here with a 400: llama.cpp hands what stb_image cannot read to its audio and video decoders.
Blocking (base64 and image headers): run off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any

from lollms_server.core.contract import InputData
from lollms_server.core.errors import BadRequestError
from lollms_server.core.request_limits import size_text

SENT_AS_IS = {"PNG", "JPEG", "GIF", "BMP"}  # Pillow format names that llama.cpp's stb_image decodes
CONVERTED = {"WEBP"}  # decoded here and sent as PNG
ACCEPTED_MIME_TYPES: tuple[str, ...] = ("image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp")
MAX_PIXELS = 40_000_000  # width x height of one image (a small file can decode to gigabytes: refused before)
MEDIA_KEY = "media"  # key of a chat message dict holding its images (base64) until the prompt is built


@dataclass(frozen=True)
class ImageLimits:
    """Instance settings ``max_images`` and ``max_image_mb``: what one request may carry."""

    count: int
    total_bytes: int


def _decoded(item: InputData, where: str) -> bytes:
    try:
        return base64.b64decode(item.data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestError(f"{where}: the image data must be base64 (or a data: URL)") from None


def _open(raw: bytes, where: str, decode: bool = False) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(raw))  # reads the header only
    except Image.DecompressionBombError:  # far over MAX_PIXELS
        raise BadRequestError(f"{where}: the image has more than {MAX_PIXELS // 1_000_000} million pixels; "
                              "scale it down") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise BadRequestError(f"{where}: the data is not an image this model reads (PNG, JPEG, GIF, BMP or WEBP)") from None
    if image.format not in SENT_AS_IS | CONVERTED:
        raise BadRequestError(f"{where}: {image.format} images are not accepted; send PNG, JPEG, GIF, BMP or WEBP")
    width, height = image.size
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise BadRequestError(f"{where}: the image is {width}x{height} pixels, more than {MAX_PIXELS // 1_000_000} "
                              "million pixels; scale it down")
    if decode:
        try:
            image.load()
        except (OSError, ValueError, SyntaxError):
            raise BadRequestError(f"{where}: the {image.format} data is damaged and cannot be decoded") from None
    return image


def _checked(images: list[InputData], limits: ImageLimits, decode: bool = False) -> list[tuple[InputData, Any]]:
    """Each image with its opened header (decoded too with ``decode``); 400 for too many images, too many
    bytes, or data that is no image."""
    if len(images) > limits.count:
        raise BadRequestError(f"the request carries {len(images)} images; this instance accepts at most "
                              f"{limits.count} per request (instance setting max_images)")
    total = 0
    out = []
    for n, item in enumerate(images):
        where = f"image {n + 1}"
        raw = _decoded(item, where)
        total += len(raw)
        if total > limits.total_bytes:
            raise BadRequestError(f"the request's images add up to more than {size_text(limits.total_bytes)}; "
                                  "send fewer or smaller images (instance setting max_image_mb)")
        out.append((item, _open(raw, where, decode)))
    return out


def check_images(images: list[InputData], limits: ImageLimits) -> None:
    """400 when the request carries too many images, too many bytes of them, or data that is no usable image
    (decoded, so a damaged file is refused before a stream starts rather than by llama-server)."""
    _checked(images, limits, decode=True)


def _payload(item: InputData, image: Any, where: str) -> str:
    """The base64 llama-server receives for one image (WEBP decoded and sent as PNG)."""
    if image.format in SENT_AS_IS:
        return item.data
    out = io.BytesIO()
    try:
        image.convert("RGB").save(out, "PNG")
    except (OSError, ValueError):
        raise BadRequestError(f"{where}: the {image.format} image cannot be decoded") from None
    return base64.b64encode(out.getvalue()).decode("ascii")


def attach(messages: list[dict[str, Any]], images_per_message: list[list[InputData]],
           limits: ImageLimits) -> list[dict[str, Any]]:
    """Chat message dicts with each one's images (checked, as sent to llama-server) under MEDIA_KEY; blocking."""
    checked = iter(_checked([i for images in images_per_message for i in images], limits))
    out: list[dict[str, Any]] = []
    n = 0
    for message, images in zip(messages, images_per_message):
        if images:
            sent = []
            for _ in images:
                item, image = next(checked)
                n += 1
                sent.append(_payload(item, image, f"image {n}"))
            message = {**message, MEDIA_KEY: sent}
        out.append(message)
    return out


def place_markers(messages: list[dict[str, Any]], marker: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(messages whose images became markers before their text, the images in marker order)."""
    media: list[str] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        images = message.get(MEDIA_KEY)
        if images is None:
            out.append(message)
            continue
        text = str(message.get("content") or "")
        media.extend(images)
        rest = {k: v for k, v in message.items() if k != MEDIA_KEY}
        # a line break after each marker: two images side by side make this llama-server fail when a later
        # prompt shares only the first of them ("Chunk not found" when it cuts its cache between them)
        out.append({**rest, "content": "".join(marker + "\n" for _ in images) + text})
    return out, media
