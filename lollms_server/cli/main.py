"""`lollms-server` command: serve (default), worker, init, wizard, menu, usage, models."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote

from lollms_server import __version__
from lollms_server.core.paths import DEFAULT_CONFIG_DIR

if TYPE_CHECKING:
    from lollms_server.core.config import ServerConfig


def _config_dir(value: str | None) -> Path:
    return Path(value or os.environ.get("LOLLMS_CONFIG_DIR") or DEFAULT_CONFIG_DIR).expanduser().resolve()


def _setup_logging(level: str) -> None:
    from lollms_server.core.secrets import install_log_redaction

    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()


def web_ui_link(config: "ServerConfig", host: str, port: int, show_key: bool) -> str | None:
    """The web UI's address; with ``?key=`` (opens it connected) only for an interactive terminal, so the key
    never lands in a log file or a service journal. None when the UI is off."""
    if not config.section("webui").get("enable_ui"):
        return None
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else (f"[{host}]" if ":" in host else host)
    url = f"http://{shown_host}:{port}/"
    keys = config.api_keys
    if show_key and keys:
        return f"{url}?key={quote(keys[0], safe='')}"
    return url


# Pydantic loads every installed package that declares a "pydantic" entry point and lets it watch the
# validation of every model: here, every request body. A server process runs no such third-party hook unless
# the operator asks for it (PYDANTIC_DISABLE_PLUGINS set, even empty: pydantic's own rules then apply); it
# also spares start-up pydantic's scan of every installed package's entry points.
SERVER_ENVIRONMENT = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}


def server_environment() -> None:
    """Defaults of the server processes (serve, worker), before their first import of pydantic."""
    for name, value in SERVER_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def cmd_serve(args: argparse.Namespace) -> int:
    from lollms_server.core import dataclass_code, start_up_gc

    server_environment()

    start_up_gc.relax()  # until the app's start-up is done (its lifespan settles it)
    dataclass_code.install()  # the same (see there)
    from lollms_server.api import uvicorn_import

    uvicorn_import.prepare()  # uvicorn without its command line (click, multiprocessing): see there
    from lollms_server import shortcuts
    from lollms_server.app import create_app
    from lollms_server.core.config import load_server_config
    from lollms_server.core.guarded_config import ConfigFileError

    config_dir = _config_dir(args.config_dir)
    try:
        config = load_server_config(config_dir)
    except ConfigFileError as exc:
        print(f"lollms-server: configuration error: {exc}", file=sys.stderr)
        return 2
    server = config.section("server")
    host = args.host or os.environ.get("LOLLMS_HOST") or server.get("host", "127.0.0.1")
    port = int(args.port or os.environ.get("LOLLMS_PORT") or server.get("port", 9601))
    level = (args.log_level or config.section("logging").get("log_level") or "INFO").upper()
    _setup_logging(level)
    for warning in config.security_warnings():
        print(f"lollms-server: WARNING: {warning}", file=sys.stderr, flush=True)
    app = create_app(config=config)
    http = shortcuts.http_protocol()  # (after the logging set-up: a shortcut turned off says so there)
    print(f"lollms-server {__version__}: serving on http://{host}:{port} (config: {config.file})", flush=True)
    link = web_ui_link(config, host, port, show_key=sys.stdout.isatty() and not args.no_key_link)
    if link:
        print(f"lollms-server: web UI: {link}", flush=True)
    # ws="none": no route of this server is a WebSocket (uvicorn would import a WebSocket library at start-up);
    # an upgrade request is answered as the plain HTTP request it also is
    uvicorn_import.run(app, host=host, port=port, log_level=level.lower(), access_log=level == "DEBUG", timeout_graceful_shutdown=5,
                http=http, h11_max_incomplete_event_size=config.limits.max_header_bytes, ws="none")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from lollms_server.core.guarded_config import ConfigFileError
    from lollms_server.core.paths import find_main_config
    from lollms_server.core.presets import write_preset

    config_dir = _config_dir(args.config_dir)
    if args.list_presets:
        from lollms_server.core.presets import zoo_registry
        from lollms_server.wizard.presets_flow import available_presets

        for p in available_presets(zoo_registry()):
            print(f"{p.name}: {p.description}")
        return 0
    existing = find_main_config(config_dir) if config_dir.is_dir() else None
    if existing is not None:
        print(f"lollms-server: {existing} already exists; leaving it unchanged")
        return 0
    try:
        main = write_preset(config_dir, args.preset, fmt=args.format)
    except (ConfigFileError, KeyError, FileExistsError) as exc:
        print(f"lollms-server: cannot create the configuration: {exc}", file=sys.stderr)
        return 2
    print(f"lollms-server: wrote {main} (preset '{args.preset}'); an API key was generated in security.allowed_api_keys")
    return 0


def cmd_wizard(args: argparse.Namespace) -> int:
    try:
        from lollms_server.wizard.main import run_wizard
    except ImportError:
        print("lollms-server: the wizard is not available in this build", file=sys.stderr)
        return 2
    return int(run_wizard(args) or 0)


def cmd_menu(args: argparse.Namespace) -> int:
    from lollms_server.wizard.menu import run_menu

    return int(run_menu(args) or 0)


def _add_serve(sub: Any, common: argparse.ArgumentParser) -> None:
    serve = sub.add_parser("serve", parents=[common], help="Run the server (default).")
    serve.add_argument("--host", help="Listen address (env LOLLMS_HOST; default from config).")
    serve.add_argument("--port", type=int, help="Port (env LOLLMS_PORT; default from config).")
    serve.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], type=str.upper)
    serve.add_argument("--no-key-link", action="store_true",
                       help="Do not print the web UI link with ?key= (it is only printed on an interactive terminal).")
    serve.set_defaults(func=cmd_serve)


def _add_init(sub: Any, common: argparse.ArgumentParser) -> None:
    init = sub.add_parser("init", parents=[common], help="Write a default configuration if none exists (non-interactive).")
    init.add_argument("--preset", default="offline_local", help="Preset to apply (see --list-presets).")
    init.add_argument("--format", default="yaml", choices=["yaml", "json", "toml", "db"], help="Main config file format.")
    init.add_argument("--list-presets", action="store_true", help="List presets and exit.")
    init.set_defaults(func=cmd_init)


def _add_wizard(sub: Any, common: argparse.ArgumentParser) -> None:
    wizard = sub.add_parser("wizard", parents=[common], help="Interactive configuration wizard.", add_help=False)
    wizard.set_defaults(func=cmd_wizard)


def _add_worker(sub: Any, common: argparse.ArgumentParser) -> None:
    from lollms_server.cli.worker import add_parser

    add_parser(sub, common)


def _add_usage(sub: Any, common: argparse.ArgumentParser) -> None:
    from lollms_server.cli.usage import add_parser

    add_parser(sub, common)


def _add_models(sub: Any, common: argparse.ArgumentParser) -> None:
    from lollms_server.cli.models import add_parser

    add_parser(sub, common)


def _add_menu(sub: Any, common: argparse.ArgumentParser) -> None:
    menu = sub.add_parser("menu", parents=[common], help="Installer menu: wizard, optional dependencies, instances.", add_help=False)
    menu.set_defaults(func=cmd_menu)


# the sub-commands, in the order --help lists them
COMMANDS: dict[str, Callable[[Any, argparse.ArgumentParser], None]] = {
    "serve": _add_serve, "init": _add_init, "wizard": _add_wizard, "worker": _add_worker, "usage": _add_usage,
    "models": _add_models, "menu": _add_menu,
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; with ``command``, only that sub-command's parser (the modules of the others, e.g. the
    usage ledger's, are not imported to start the server)."""
    parser = argparse.ArgumentParser(prog="lollms-server", description="lollms_server: one API to many generation backends.")
    parser.add_argument("--version", action="version", version=f"lollms_server {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config-dir", help="Folder with main_config.* (env LOLLMS_CONFIG_DIR; default lollms_configs/).")
    sub = parser.add_subparsers(dest="command")
    for name, add in COMMANDS.items():
        if command is None or name == command:
            add(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["serve", *argv]
    parser = build_parser(argv[0] if argv[0] in COMMANDS else None)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("wizard", "menu"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    return int(args.func(args))
