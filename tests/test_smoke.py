from __future__ import annotations

from pathlib import Path

from helpers import api_client


async def test_generate_echo_in_process(config_dir: Path) -> None:
    async with api_client(config_dir) as c:
        r = await c.post("/api/v1/generate", json={"input_data": [{"type": "text", "role": "user_prompt", "data": "hi there"}]})
        assert r.status_code == 200, r.text
        assert r.json()["output"][0]["data"] == "hi there"
