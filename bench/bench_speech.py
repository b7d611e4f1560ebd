"""Piper and Whisper through a real server: time to speak, real-time factor, time to transcribe.

    python bench/bench_speech.py            # 3 rounds of a ~10 s paragraph

Starts one lollms-server process on 127.0.0.1 with the shipped voice (en_US joe) and model (tiny.en),
warms both up, then prints per round: TTS seconds, audio seconds, real-time factor, first streamed
sentence latency, STT seconds, and whether the transcript matches the text word for word.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import API_KEY, ServerProcess, write_config  # noqa: E402

TEXT = ("The library opens at nine in the morning. Visitors may borrow up to five books at a time. "
        "Quiet rooms on the second floor can be booked at the front desk. The cafe closes one hour before the library.")


def words(text: str) -> list[str]:
    return "".join(c.lower() if c.isalnum() else " " for c in text).split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "cfg"
        write_config(cfg, {"voice": ("piper_tts_binding", {}), "ears": ("whisper_stt_binding", {})},
                     defaults={"tts_binding": "voice", "stt_binding": "ears"})
        with ServerProcess(cfg) as srv, httpx.Client(base_url=srv.base_url, headers={"X-API-Key": API_KEY}, timeout=300) as c:
            def speak(text: str, stream: bool = False) -> httpx.Response:
                return c.post("/api/v1/generate", json={"generation_type": "tts", "stream": stream,
                              "input_data": [{"type": "text", "role": "user_prompt", "data": text}]})

            def listen(b64: str) -> httpx.Response:
                return c.post("/api/v1/generate", json={"generation_type": "stt", "input_data": [
                    {"type": "audio", "role": "input_audio", "data": b64, "mime_type": "audio/wav"}]})

            t0 = time.perf_counter()
            warm = speak("Warm up.")
            t1 = time.perf_counter()
            listen(warm.json()["output"][0]["data"])
            t2 = time.perf_counter()
            print(f"first request incl. model load: tts {t1 - t0:.2f} s, stt {t2 - t1:.2f} s")
            for n in range(args.rounds):
                t0 = time.perf_counter()
                audio = speak(TEXT).json()["output"][0]
                tts = time.perf_counter() - t0
                seconds = audio["metadata"]["duration"]
                t0 = time.perf_counter()
                first = None
                with c.stream("POST", "/api/v1/generate", json={"generation_type": "tts", "stream": True, "input_data": [
                        {"type": "text", "role": "user_prompt", "data": TEXT}]}) as r:
                    for line in r.iter_lines():
                        if line.startswith("data: ") and json.loads(line[6:])["type"] == "chunk" and first is None:
                            first = time.perf_counter() - t0
                t0 = time.perf_counter()
                text = listen(audio["data"]).json()["output"][0]["data"]
                stt = time.perf_counter() - t0
                print(f"round {n + 1}: tts {tts:.2f} s for {seconds:.1f} s of audio (x{seconds / tts:.1f} real time), "
                      f"first streamed sentence {first or 0:.2f} s, stt {stt:.2f} s, exact transcript: {words(text) == words(TEXT)}")


if __name__ == "__main__":
    main()
