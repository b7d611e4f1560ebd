"""`lollms-server wizard`: interactive configuration (or non-interactive with --preset/--set/--yes)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lollms_server.core.paths import DEFAULT_CONFIG_DIR
from lollms_server.wizard.draft import FORMAT_EXTENSIONS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lollms-server wizard",
        description="Create or change the configuration: main config, API keys, encryption key, binding instances.",
        epilog="Without --preset/--set/--yes/--list-presets the wizard is interactive (needs a terminal).",
    )
    parser.add_argument("--config-dir", help="Configuration folder (env LOLLMS_CONFIG_DIR; default lollms_configs/).")
    parser.add_argument("--format", default="yaml", choices=list(FORMAT_EXTENSIONS),
                        help="Main config file format when a new configuration is created (default yaml).")
    parser.add_argument("--list-presets", action="store_true", help="List the presets available here and exit.")
    parser.add_argument("--preset", help="Apply this preset (default for a new configuration: offline_local).")
    parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                        help="Set a value, typed by the schema; repeatable. Also instance.NAME.FIELD=VALUE, "
                             "bindings_map.NAME=TYPE, personalities_config.NAME.enabled=false.")
    parser.add_argument("--new-encryption-key-file", metavar="PATH",
                        help="Generate an encryption key into PATH (outside the config folder) and use it.")
    parser.add_argument("--yes", "-y", action="store_true", help="Ask nothing; save the result.")
    return parser


def resolve_config_dir(value: str | None) -> Path:
    return Path(value or os.environ.get("LOLLMS_CONFIG_DIR") or DEFAULT_CONFIG_DIR).expanduser().resolve()


def run_wizard(args: argparse.Namespace) -> int:
    """Entry point used by the CLI (``args.extra`` holds the wizard's own flags)."""
    wargs = build_parser().parse_args(list(getattr(args, "extra", []) or []))
    config_dir_arg = wargs.config_dir or getattr(args, "config_dir", None)
    config_dir = resolve_config_dir(config_dir_arg)
    if wargs.list_presets or wargs.preset or wargs.set or wargs.yes or wargs.new_encryption_key_file:
        from lollms_server.wizard.noninteractive import run_noninteractive

        return run_noninteractive(wargs, config_dir)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("lollms-server wizard: not a terminal; use --preset/--set/--yes for scripts (see --help)", file=sys.stderr)
        return 2
    from lollms_server.wizard.interactive import run_interactive

    return run_interactive(config_dir if config_dir_arg else None, wargs.format)
