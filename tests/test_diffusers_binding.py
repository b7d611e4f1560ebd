"""diffusers_binding through a real server process, on a tiny Stable Diffusion pipeline with random weights.

No weights ship anywhere, so the test builds the smallest real pipeline from configs (tiny UNet, VAE and CLIP
text encoder, a tokenizer from a vocabulary written here), saves it with save_pretrained into a models folder,
and lets the server load and run it like any downloaded model. The pictures are noise; sizes, formats,
seeds and the image-to-image / inpainting paths are real.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers import API_KEY, ServerProcess, write_config
from tiny_models import OFFLINE, build_tiny_pipeline, offline

pytest.importorskip("torch", reason="torch not installed (extra 'diffusers')")
pytest.importorskip("diffusers", reason="diffusers not installed (extra 'diffusers')")
pytest.importorskip("transformers", reason="transformers not installed (extra 'diffusers')")

from PIL import Image

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def image_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("diffusers")
    models = root / "models"
    with offline():
        build_tiny_pipeline(models / "diffusers_models" / "tiny-sd")
    (models / "diffusers_models" / "not-a-model").mkdir()
    cfg = root / "cfg"
    write_config(cfg, {"painter": ("diffusers_binding", {"models_folder": str(models), "device": "cpu",
                                                           "num_inference_steps": 2, "guidance_scale": 2.0})},
                 defaults={"tti_binding": "painter", "i2i_binding": "painter"})
    with ServerProcess(cfg, env=OFFLINE) as srv, \
            httpx.Client(base_url=srv.base_url, headers={"X-API-Key": API_KEY}, timeout=300) as client:
        yield client


def _png(item: dict[str, Any]) -> Image.Image:
    assert item["type"] == "image" and item["mime_type"] == "image/png"
    raw = base64.b64decode(item["data"])
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    img = Image.open(io.BytesIO(raw))
    img.load()
    return img


def _b64_png(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _generate(client: httpx.Client, gen_type: str, prompt: str, images: list[tuple[str, str]] = (), **extra: Any) -> httpx.Response:  # type: ignore[assignment]
    items = [{"type": "text", "role": "user_prompt", "data": prompt}]
    items += [{"type": "image", "role": role, "data": data, "mime_type": "image/png"} for role, data in images]
    return client.post("/api/v1/generate", json={"generation_type": gen_type, "input_data": items, **extra})


def test_text_to_image_gives_png_of_requested_size(image_server: httpx.Client) -> None:
    r = _generate(image_server, "tti", "a red fox", parameters={"width": 48, "height": 32, "seed": 7})
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert len(out) == 1
    img = _png(out[0])
    assert img.size == (48, 32)
    meta = out[0]["metadata"]
    assert (meta["width"], meta["height"], meta["seed"], meta["mode"]) == (48, 32, 7, "tti")
    assert meta["model"] == "tiny-sd" and meta["num_inference_steps"] == 2 and meta["device"] == "cpu"


def test_same_seed_same_image_other_seed_other_image(image_server: httpx.Client) -> None:
    params = {"image_size": "32x32", "num_inference_steps": 1, "scheduler": "euler"}
    a = _generate(image_server, "tti", "a boat", parameters={**params, "seed": 1})
    b = _generate(image_server, "tti", "a boat", parameters={**params, "seed": 1})
    c = _generate(image_server, "tti", "a boat", parameters={**params, "seed": 2})
    assert a.status_code == b.status_code == c.status_code == 200, a.text + b.text + c.text
    pixels = [_png(r.json()["output"][0]).tobytes() for r in (a, b, c)]
    assert pixels[0] == pixels[1] != pixels[2]
    assert a.json()["output"][0]["metadata"]["scheduler"] == "euler"


def test_image_to_image_and_inpainting(image_server: httpx.Client) -> None:
    source = Image.new("RGB", (40, 24), (200, 30, 30))
    r = _generate(image_server, "i2i", "make it blue", [("input_image", _b64_png(source))],
                  parameters={"strength": 0.9, "num_inference_steps": 2, "seed": 3})
    assert r.status_code == 200, r.text
    out = r.json()["output"][0]
    assert _png(out).size == (40, 24)
    assert out["metadata"]["mode"] == "i2i" and out["metadata"]["strength"] == 0.9

    mask = Image.new("L", (40, 24), 0)
    mask.paste(255, (10, 4, 30, 20))
    r = _generate(image_server, "i2i", "a window", [("input_image", _b64_png(source)), ("mask_image", _b64_png(mask))],
                  parameters={"width": 32, "height": 32, "strength": 1.0, "num_inference_steps": 2})
    assert r.status_code == 200, r.text
    out = r.json()["output"][0]
    assert _png(out).size == (32, 32) and out["metadata"]["mode"] == "inpaint"


def test_several_images_per_request(image_server: httpx.Client) -> None:
    r = _generate(image_server, "tti", "dots", parameters={"image_size": "16x16", "num_images": 2, "num_inference_steps": 1})
    assert r.status_code == 200, r.text
    assert [_png(o).size for o in r.json()["output"]] == [(16, 16), (16, 16)]


@pytest.mark.parametrize("name", ["../../cfg", "../diffusers_models/tiny-sd", "/etc", "tiny-sd/unet"])
def test_path_escaping_model_names_are_refused(image_server: httpx.Client, name: str) -> None:
    r = _generate(image_server, "tti", "x", model_name=name, parameters={"image_size": "16x16"})
    assert r.status_code == 400, r.text


@pytest.mark.parametrize("name", ["missing-model", "not-a-model"])
def test_unknown_model_is_a_404(image_server: httpx.Client, name: str) -> None:
    r = _generate(image_server, "tti", "x", model_name=name)
    assert r.status_code == 404, r.text
    assert "tiny-sd" in r.json()["detail"]


@pytest.mark.parametrize(("params", "word"), [
    ({"width": 30}, "multiple of 8"), ({"image_size": "big"}, "image_size"), ({"scheduler": "magic"}, "scheduler"),
    ({"num_inference_steps": 0}, "num_inference_steps"), ({"guidance_scale": "high"}, "guidance_scale"),
])
def test_bad_parameters_are_400(image_server: httpx.Client, params: dict[str, Any], word: str) -> None:
    r = _generate(image_server, "tti", "x", parameters=params)
    assert r.status_code == 400, r.text
    assert word in r.json()["detail"]


def test_bad_image_inputs_are_400(image_server: httpx.Client) -> None:
    r = _generate(image_server, "i2i", "x", [("input_image", base64.b64encode(b"not an image").decode())])
    assert r.status_code == 400 and "could not be decoded" in r.json()["detail"]
    r = _generate(image_server, "i2i", "x")
    assert r.status_code == 400 and "input_image" in r.json()["detail"]


def test_models_listed_and_described(image_server: httpx.Client) -> None:
    models = image_server.get("/api/v1/list_available_models/painter").json()["models"]
    assert [m["name"] for m in models] == ["tiny-sd"]
    assert models[0]["details"]["pipeline"] == "StableDiffusionPipeline"
    info = image_server.get("/api/v1/get_model_info/painter", params={"model_name": "tiny-sd"}).json()
    assert info["model_name"] == "tiny-sd" and info["model_type"] == "tti"
