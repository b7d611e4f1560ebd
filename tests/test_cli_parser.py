"""The command line through the real `lollms-server` process: each run builds only the parser of its own
sub-command (the others' modules are not imported to start the server), and every entry still answers."""

from __future__ import annotations

import subprocess
import sys

from helpers import run_cli

COMMANDS = ("serve", "init", "wizard", "worker", "usage", "models", "menu")


def test_top_level_help_lists_every_sub_command() -> None:
    out = run_cli("--help")
    assert out.returncode == 0, out.stderr
    assert all(name in out.stdout for name in COMMANDS)


def test_each_sub_command_answers_its_own_help() -> None:
    expected = {("serve", "--help"): "--no-key-link", ("usage", "--help"): "--group-by",
                ("worker", "--help"): "--log-level", ("init", "--help"): "--list-presets",
                ("models", "pull", "--help"): "--kind"}
    for args, option in expected.items():
        out = run_cli(*args)
        assert out.returncode == 0 and option in out.stdout, (args, out.stdout, out.stderr)


def test_unknown_command_and_bad_serve_option_are_refused_with_the_reason() -> None:
    bogus = run_cli("bogus")
    assert bogus.returncode == 2 and "invalid choice: 'bogus'" in bogus.stderr and "usage" in bogus.stderr
    bad_port = run_cli("--port", "not-a-number")  # options alone mean `serve`
    assert bad_port.returncode == 2 and "--port" in bad_port.stderr and "invalid int value" in bad_port.stderr
    version = run_cli("--version")
    assert version.returncode == 0 and "lollms_server" in version.stdout


def test_serving_does_not_import_the_other_sub_commands_modules() -> None:
    others = ("lollms_server.cli.usage", "lollms_server.core.usage", "lollms_server.cli.models",
              "lollms_server.core.model_pull", "lollms_server.cli.worker")
    code = ("import atexit, sys\n"
            f"atexit.register(lambda: print(sorted(m for m in {others!r} if m in sys.modules)))\n"
            "from lollms_server.cli.main import main\n"
            "main(['serve', '--help'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-500:] + out.stderr
    code_all = code.replace("['serve', '--help']", "['--help']")
    everything = subprocess.run([sys.executable, "-c", code_all], capture_output=True, text=True, timeout=60)
    assert "lollms_server.cli.usage" in everything.stdout.strip().splitlines()[-1]  # the check can see an import
