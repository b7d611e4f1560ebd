"""diffusers_video_binding through a real server process, on a tiny random-weight TextToVideoSD pipeline.

The frames are noise; the container formats, frame counts, frame rates, sizes and parameter checks are real
(MP4 is decoded back with PyAV, GIF and WebP with Pillow).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers import API_KEY, ServerProcess, write_config
from tiny_models import OFFLINE, build_tiny_video_pipeline, offline

pytest.importorskip("torch", reason="torch not installed (extra 'video')")
pytest.importorskip("diffusers", reason="diffusers not installed (extra 'video')")
av = pytest.importorskip("av", reason="PyAV not installed (extra 'video')")

from PIL import Image

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def video_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("video")
    models = root / "models"
    with offline():
        build_tiny_video_pipeline(models / "ttv" / "tiny-t2v")
    cfg = root / "cfg"
    write_config(cfg, {"film": ("diffusers_video_binding", {"models_folder": str(models), "device": "cpu",
                                                            "num_inference_steps": 1, "num_frames": 4, "fps": 8,
                                                            "max_frames": 12})},
                 defaults={"ttv_binding": "film"})
    with ServerProcess(cfg, env=OFFLINE) as srv, \
            httpx.Client(base_url=srv.base_url, headers={"X-API-Key": API_KEY}, timeout=300) as client:
        yield client


def _video(client: httpx.Client, prompt: str = "a wave", **params: Any) -> httpx.Response:
    return client.post("/api/v1/generate", json={
        "generation_type": "ttv", "input_data": [{"type": "text", "role": "user_prompt", "data": prompt}],
        "parameters": {"width": 32, "height": 32, **params}})


def test_mp4_has_the_requested_frames_fps_and_size(video_server: httpx.Client) -> None:
    r = _video(video_server, num_frames=6, fps=12, seed=3, width=16, height=16)
    assert r.status_code == 200, r.text
    [out] = r.json()["output"]
    assert out["type"] == "video" and out["mime_type"] == "video/mp4"
    raw = base64.b64decode(out["data"])
    with av.open(io.BytesIO(raw)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert stream.average_rate == 12
    assert len(frames) == 6 and frames[0].shape == (16, 16, 3)
    meta = out["metadata"]
    assert (meta["num_frames"], meta["fps"], meta["width"], meta["height"], meta["seed"]) == (6, 12, 16, 16, 3)
    assert meta["codec"] in ("libx264", "mpeg4") and meta["duration"] == 0.5 and meta["model"] == "tiny-t2v"


@pytest.mark.parametrize(("fmt", "mime"), [("gif", "image/gif"), ("webp", "image/webp")])
def test_animated_image_formats(video_server: httpx.Client, fmt: str, mime: str) -> None:
    r = _video(video_server, num_frames=3, fps=5, video_format=fmt)
    assert r.status_code == 200, r.text
    [out] = r.json()["output"]
    assert out["mime_type"] == mime
    img = Image.open(io.BytesIO(base64.b64decode(out["data"])))
    assert img.format == fmt.upper() and img.n_frames == 3 and img.size == (32, 32)
    img.seek(1)
    img.load()
    assert img.info.get("duration") == 200  # 5 frames per second


def test_same_seed_same_video(video_server: httpx.Client) -> None:
    a, b, c = (_video(video_server, num_frames=2, video_format="gif", seed=s) for s in (1, 1, 2))
    data = [r.json()["output"][0]["data"] for r in (a, b, c)]
    assert data[0] == data[1] != data[2]


def test_default_frames_come_from_the_instance(video_server: httpx.Client) -> None:
    r = _video(video_server, video_format="gif")
    assert r.status_code == 200, r.text
    assert r.json()["output"][0]["metadata"]["num_frames"] == 4


@pytest.mark.parametrize(("params", "word"), [
    ({"num_frames": 13}, "num_frames"), ({"fps": 0}, "fps"), ({"video_format": "avi"}, "video_format"),
    ({"width": 30}, "multiple of 8"), ({"guidance_scale": "x"}, "guidance_scale"),
])
def test_bad_parameters_are_400(video_server: httpx.Client, params: dict[str, Any], word: str) -> None:
    r = _video(video_server, **params)
    assert r.status_code == 400, r.text
    assert word in r.json()["detail"]


def test_empty_prompt_and_unknown_model(video_server: httpx.Client) -> None:
    assert _video(video_server, prompt="  ").status_code == 400
    r = video_server.post("/api/v1/generate", json={"generation_type": "ttv", "model_name": "nope",
                                                    "input_data": [{"type": "text", "role": "user_prompt", "data": "x"}]})
    assert r.status_code == 404 and "tiny-t2v" in r.json()["detail"]


def test_models_listed(video_server: httpx.Client) -> None:
    models = video_server.get("/api/v1/list_available_models/film").json()["models"]
    assert [m["name"] for m in models] == ["tiny-t2v"]
    assert models[0]["details"]["pipeline"] == "TextToVideoSDPipeline"
