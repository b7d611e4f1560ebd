"""The real wizard and installer menu driven through a pseudo-terminal (pexpect)."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pexpect
import pytest
from helpers import server, write_config

from lollms_server.core.config import load_server_config
from lollms_server.core.config_schema import MAIN_SCHEMA
from lollms_server.core.guarded_config import load_guarded
from lollms_server.core.presets import PRESETS, zoo_registry
from lollms_server.wizard.presets_flow import missing_types

SECRET = "sk-wizard-secret-4242"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
DOWN = "\x1b[B"


def tty_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LOLLMS_ENCRYPTION_KEY"}
    env.update({"TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1", "COLUMNS": "160", "LINES": "50",
                "PYTHONUNBUFFERED": "1"})
    return env


class Tty:
    """A wizard process in a pty; patterns are matched against the screen text without ANSI codes."""

    def __init__(self, *args: str, log: Path) -> None:
        self.child = pexpect.spawn(sys.executable, ["-m", "lollms_server", *args], env=tty_env(),
                                   dimensions=(50, 160), encoding="utf-8", timeout=60)
        self.child.logfile_read = open(log, "w")  # noqa: SIM115 - closed in finish()
        self.raw = ""
        self.pos = 0

    @property
    def seen(self) -> str:
        return ANSI.sub("", self.raw)

    def _read(self, timeout: float) -> bool:
        try:
            self.raw += self.child.read_nonblocking(65536, timeout=timeout)
        except pexpect.TIMEOUT:
            pass
        except pexpect.EOF:
            return False
        return True

    def expect(self, pattern: str, timeout: float = 60) -> str:
        """Wait for ``pattern`` after the last match; return the screen text in between."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            clean = self.seen
            m = rx.search(clean, self.pos)
            if m:
                before, self.pos = clean[self.pos:m.start()], m.end()
                return before
            if time.monotonic() > deadline or not self._read(0.5):
                raise AssertionError(f"waiting for {pattern!r}; screen tail:\n{clean[-2500:]}")

    def choose(self, prompt: str, filter_text: str) -> None:
        """Answer a select prompt by typing a filter (search) then Enter."""
        self.expect(re.escape("? " + prompt))
        time.sleep(0.3)
        self.child.send(filter_text)
        time.sleep(0.3)
        self.child.send("\r")

    def answer(self, prompt: str, reply: str, *, clear: bool = False) -> None:
        self.expect(re.escape("? " + prompt))
        time.sleep(0.3)
        self.child.send(("\x15" if clear else "") + reply + "\r")

    def confirm(self, prompt: str, yes: bool) -> None:
        self.expect(re.escape("? " + prompt))
        time.sleep(0.3)
        self.child.send("y" if yes else "n")

    def finish(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self._read(0.5):
            if time.monotonic() > deadline:
                raise AssertionError(f"process did not exit; screen tail:\n{self.seen[-2500:]}")
        self.child.close()
        self.child.logfile_read.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)


@pytest.fixture
def tty_log(tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "tty.log"
    yield log


def offline_preset() -> str:
    """offline_local when its bindings are installed (the default), else the dummy preset."""
    return "offline_local" if not missing_types(PRESETS["offline_local"], zoo_registry()) else "dummy"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.e2e
def test_new_config_with_preset_secret_instance_and_encryption_serves(tmp_path: Path, tty_log: Path) -> None:
    cfg = tmp_path / "cfg"
    preset = offline_preset()
    w = Tty("wizard", "--config-dir", str(cfg), log=tty_log)
    w.choose("Main configuration file format", "yaml")
    w.choose("Preset", preset + ":")
    api_key = re.search(r"lollms_[A-Za-z0-9_-]{20,}", w.expect(r"\? Configuration"))
    assert api_key, "the wizard shows the generated API key once"
    time.sleep(0.2)
    w.child.send("Binding inst\r")
    w.choose("Binding instances", "Add an")
    has_openai = "openai_binding" in zoo_registry().types
    w.choose("Binding type", "openai_binding:" if has_openai else "dummy_binding:")
    w.answer("Instance name", "remote_ai", clear=True)
    w.answer("api_key (hidden", SECRET)
    if has_openai:
        w.answer("base_url", "http://127.0.0.1:9/v1", clear=True)
    w.confirm("Review the other settings", yes=False)
    w.choose("Binding instances", "Done")
    w.confirm("An instance holds a secret", yes=True)
    w.choose("Where will the key be kept", "environment")
    key_line = w.expect(r"\? Configuration")
    enc_key = re.search(r"LOLLMS_ENCRYPTION_KEY=([A-Za-z0-9_=-]{44})", key_line)
    assert enc_key, key_line
    time.sleep(0.2)
    w.child.send("Review\r")
    w.confirm("Save this configuration", yes=True)
    assert w.finish() == 0, ANSI.sub("", w.seen)[-3000:]
    assert SECRET not in w.seen, "a secret typed at a hidden prompt must never be echoed"

    instance_file = next((cfg / "bindings").glob("remote_ai.*"))
    raw = instance_file.read_bytes()
    assert SECRET.encode() not in raw and raw.startswith(b"gAAAAA"), "the secret is encrypted at rest"
    values = load_guarded(cfg / "main_config.yaml", MAIN_SCHEMA).values
    assert values["security"]["allowed_api_keys"] == [api_key.group(0)]
    assert values["security"]["encryption_key"] is None, "the key is not stored beside what it protects"
    assert values["bindings_map"]["remote_ai"] == ("openai_binding" if has_openai else "dummy_binding")
    assert values["defaults"]["ttt_binding"] in values["bindings_map"]
    os.environ["LOLLMS_ENCRYPTION_KEY"] = enc_key.group(1)
    try:
        load_server_config(cfg)
    finally:
        del os.environ["LOLLMS_ENCRYPTION_KEY"]

    with server(cfg, env={"LOLLMS_ENCRYPTION_KEY": enc_key.group(1)}) as s:
        headers = {"X-API-Key": api_key.group(0)}
        active = httpx.get(f"{s.base_url}/api/v1/list_bindings", headers=headers, timeout=30)
        assert active.status_code == 200 and "remote_ai" in active.text and SECRET not in active.text
        r = httpx.post(f"{s.base_url}/api/v1/generate", headers=headers, timeout=120, json={
            "input_data": [{"type": "text", "role": "user_prompt", "data": "Say hello."}],
            "parameters": {"max_tokens": 8}})
        assert r.status_code == 200, r.text
        assert r.json()["output"][0]["data"].strip()
        assert httpx.get(f"{s.base_url}/api/v1/list_bindings", timeout=30).status_code == 403
    assert SECRET not in s.log()


@pytest.mark.parametrize("how", ["ctrl_c", "cancel_choice"])
def test_cancel_midway_leaves_files_byte_identical(tmp_path: Path, tty_log: Path, how: str) -> None:
    cfg = tmp_path / "cfg"
    write_config(cfg, {"dummy": ("dummy_binding", {"api_key": "keep-me-1234"})})
    before = snapshot(cfg)
    w = Tty("wizard", "--config-dir", str(cfg), log=tty_log)
    w.choose("Configuration", "Server:")
    w.choose("server", "port")
    w.answer("port", "9999", clear=True)
    w.choose("server", "Done")
    w.choose("Configuration", "Binding inst")
    w.choose("Binding instances", "dummy (")
    w.choose("dummy", "Remove")
    w.confirm("Remove 'dummy'", yes=True)
    w.choose("Binding instances", "Done")
    if how == "ctrl_c":
        w.expect(r"\? Configuration")
        time.sleep(0.2)
        w.child.send("\x03")
        assert w.finish() == 130
    else:
        w.choose("Configuration", "Cancel")
        w.confirm("Discard all changes", yes=True)
        assert w.finish() == 1
    assert "nothing was changed" in ANSI.sub("", w.seen)
    assert snapshot(cfg) == before


def test_bad_value_is_explained_at_the_prompt_and_asked_again(tmp_path: Path, tty_log: Path) -> None:
    cfg = tmp_path / "cfg"
    write_config(cfg)
    w = Tty("wizard", "--config-dir", str(cfg), log=tty_log)
    w.choose("Configuration", "Server:")
    w.choose("server", "port")
    w.answer("port", "99999", clear=True)
    w.expect("65535")  # the error shows under the prompt (drawn with cursor moves)
    w.child.send("\x15abc")
    w.expect("number")
    w.child.send("\x159700\r")
    w.choose("server", "Done")
    w.choose("Configuration", "Defaults")
    w.choose("Default instance per generation type", "tti:")
    w.choose("Default for tti", "dummy")
    w.choose("Default instance per generation type", "Done")
    w.choose("Configuration", "Review")
    w.confirm("Save this configuration", yes=True)
    assert w.finish() == 0
    values = load_guarded(cfg / "main_config.yaml", MAIN_SCHEMA).values
    assert values["server"]["port"] == 9700 and values["defaults"]["tti_binding"] == "dummy"
    assert (cfg / "main_config.yaml.bak").is_file()


def test_installer_menu_extras_and_instances(tmp_path: Path, tty_log: Path) -> None:
    cfg = tmp_path / "cfg"
    write_config(cfg)
    m = Tty("menu", "--config-dir", str(cfg), log=tty_log)
    m.choose("lollms_server installer menu", "Install optional")
    m.expect(re.escape("Extras to install"))
    time.sleep(0.2)
    m.child.send(" ")  # toggle the first extra
    time.sleep(0.2)
    m.child.send("\r")
    shown = m.expect(re.escape("Run these commands now?"))
    assert "pip install -e .[" in shown or "install_llamacpp.sh" in shown
    m.child.send("n")
    m.choose("lollms_server installer menu", "Manage binding")
    m.choose("Binding instances", "Add an")
    m.choose("Binding type", "dummy_binding:")
    m.answer("Instance name", "second", clear=True)
    m.answer("api_key (hidden", "")
    m.confirm("Review the other settings", yes=False)
    m.choose("Binding instances", "second (")
    m.choose("second (", "Test")
    m.expect("OK: ")
    m.choose("Binding instances", "Done")
    m.confirm("Save this configuration", yes=True)
    m.choose("lollms_server installer menu", "Exit")
    assert m.finish() == 0
    assert (cfg / "bindings" / "second.yaml").is_file()
    values = load_guarded(cfg / "main_config.yaml", MAIN_SCHEMA).values
    assert values["bindings_map"] == {"dummy": "dummy_binding", "second": "dummy_binding"}


def test_installer_menu_script_is_executable() -> None:
    script = Path(__file__).resolve().parents[1] / "scripts" / "installer_menu.sh"
    assert os.access(script, os.X_OK)
    assert "lollms_server menu" in script.read_text()
