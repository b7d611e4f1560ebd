"""`lollms-server menu`: the installer menu (wizard, optional dependencies, binding instances, exit)."""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import questionary
from packaging.requirements import InvalidRequirement, Requirement
from questionary import Choice

from lollms_server.core.paths import PROJECT_ROOT
from lollms_server.wizard.draft import ConfigDraft, DraftError
from lollms_server.wizard.forms import confirm, note, select, text
from lollms_server.wizard.main import resolve_config_dir

NOT_OFFERED = {"dev", "all", "remote-test"}
LLAMACPP_SCRIPT = PROJECT_ROOT / "scripts" / "install_llamacpp.sh"


def project_extras(pyproject: Path = PROJECT_ROOT / "pyproject.toml") -> dict[str, list[str]]:
    """Optional dependency groups (extras) of the project, as declared in pyproject.toml."""
    try:
        import tomllib  # Python 3.11+

        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except ModuleNotFoundError:  # Python 3.10
        import toml

        data = toml.loads(pyproject.read_text(encoding="utf-8"))
    extras = data.get("project", {}).get("optional-dependencies", {})
    return {name: list(reqs) for name, reqs in extras.items() if name not in NOT_OFFERED}


def requirement_met(spec: str) -> bool:
    try:
        req = Requirement(spec)
        version = importlib.metadata.version(req.name)
    except (InvalidRequirement, importlib.metadata.PackageNotFoundError):
        return False
    return not req.specifier or req.specifier.contains(version, prereleases=True)


def install_commands(extras: list[str]) -> list[list[str]]:
    """Commands that install the chosen extras into this interpreter's environment."""
    commands: list[list[str]] = []
    pip_extras = [e for e in extras if e != "llamacpp"]
    if "llamacpp" in extras:  # the portable build (see scripts/install_llamacpp.sh)
        commands.append(["bash", str(LLAMACPP_SCRIPT)])
    if pip_extras:
        commands.append([sys.executable, "-m", "pip", "install", "-e", f".[{','.join(sorted(pip_extras))}]"])
    return commands


def install_extras_flow() -> None:
    extras = project_extras()
    choices = []
    for name, reqs in sorted(extras.items()):
        done = all(requirement_met(r) for r in reqs)
        choices.append(Choice(f"{name}: {', '.join(reqs)}" + ("  (installed)" if done else ""), name))
    picked = questionary.checkbox("Extras to install (space toggles, Enter confirms)", choices=choices).unsafe_ask()
    if not picked:
        note("Nothing chosen.")
        return
    commands = install_commands(list(picked))
    for cmd in commands:
        note("  " + " ".join(cmd))
    if not confirm("Run these commands now?", default=True):
        return
    for cmd in commands:
        result = subprocess.run(cmd, cwd=PROJECT_ROOT, check=False)
        if result.returncode != 0:
            note(f"Failed (exit {result.returncode}): {' '.join(cmd)}", style="fg:ansired")
            return
    note("Installed. Restart the server to use the new bindings.", style="fg:ansigreen")


def manage_instances_flow(config_dir: Path) -> None:
    from lollms_server.wizard.instances import instances_menu
    from lollms_server.wizard.interactive import review
    from lollms_server.wizard.security import offer_encryption

    try:
        draft = ConfigDraft.open(config_dir)
    except DraftError as exc:
        note(f"Cannot open the configuration: {exc}", style="fg:ansired")
        return
    if not draft.exists:
        note("No configuration yet: run the wizard first.", style="fg:ansiyellow")
        return
    for n in draft.notes:
        note(f"Note: {n}", style="fg:ansiyellow")
    instances_menu(draft)
    offer_encryption(draft)
    if not any(r.dirty for r in draft.instances.values()) and not draft.removed and draft.key_file_to_write is None:
        note("No changes.")
        return
    if not review(draft):
        note("Instance changes discarded.", style="fg:ansiyellow")


def pull_model_flow(config_dir: Path) -> None:
    """Ask for a hub model id and download it with `lollms-server models pull` (needs a network)."""
    repo = text("Hub model id (owner/name, empty = back):").strip()
    if not repo:
        return
    include = text("Only files matching (glob, e.g. *Q4_K_M.gguf; empty = all):").strip()
    kind = select("Kind of model", ["auto", "gguf", "diffusers", "ttv", "ttm", "ttt", "stt", "tts"], default="auto")
    command = [sys.executable, "-m", "lollms_server", "models", "pull", repo, "--config-dir", str(config_dir), "--kind", kind]
    if include:
        command += ["--include", include]
    if confirm(f"Run: lollms-server {' '.join(command[3:])} ?"):
        done = subprocess.run(command, check=False)
        note("Downloaded." if done.returncode == 0 else "Download failed (run it again to resume).",
             style="fg:ansigreen" if done.returncode == 0 else "fg:ansired")


def run_menu(args: argparse.Namespace) -> int:
    parser = argparse.ArgumentParser(prog="lollms-server menu", description="Installer menu.")
    parser.add_argument("--config-dir", help="Configuration folder (env LOLLMS_CONFIG_DIR; default lollms_configs/).")
    margs = parser.parse_args(list(getattr(args, "extra", []) or []))
    config_dir = resolve_config_dir(margs.config_dir or getattr(args, "config_dir", None))
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("lollms-server menu: needs a terminal (scripts: use 'lollms-server wizard --set ...')", file=sys.stderr)
        return 2
    from lollms_server.wizard.interactive import run_interactive

    try:
        while True:
            action = select(f"lollms_server installer menu ({config_dir})", [
                Choice("1. Run the configuration wizard", "wizard"),
                Choice("2. Install optional binding dependencies", "extras"),
                Choice("3. Manage binding instances", "instances"),
                Choice("4. Download a model from a hub (needs a network)", "pull"),
                Choice("5. Exit", "exit"),
            ])
            if action == "exit":
                return 0
            if action == "wizard":
                run_interactive(config_dir)
            elif action == "extras":
                install_extras_flow()
            elif action == "pull":
                pull_model_flow(config_dir)
            else:
                manage_instances_flow(config_dir)
    except KeyboardInterrupt:
        note("\nExit: unsaved changes were discarded.", style="fg:ansiyellow")
        return 130
