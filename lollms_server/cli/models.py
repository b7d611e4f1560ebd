"""`lollms-server models pull <hub id>`: download a model into the models folder (machines with a network)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from lollms_server.core.model_pull import KINDS, PullError, hub_client, make_plan, pull


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("models", help="Models on disk: 'models pull <hub id>' downloads one (needs a network).")
    msub = p.add_subparsers(dest="models_command")
    pl = msub.add_parser("pull", parents=[common], help="Download a model repository into models_folder.")
    pl.add_argument("repo_id", help="Hub model id, e.g. Systran/faster-whisper-tiny.en")
    pl.add_argument("--revision", default="main", help="Branch, tag or commit (default main).")
    pl.add_argument("--kind", default="auto", choices=["auto", *KINDS],
                    help="Where it goes: gguf, diffusers, ttv, ttm, ttt, stt (Whisper), tts (Piper). Default: detected.")
    pl.add_argument("--include", action="append", default=[], help="Only files matching this glob (repeatable), "
                    "e.g. '*Q4_K_M.gguf' or 'en/en_US/lessac/medium/*'.")
    pl.add_argument("--exclude", action="append", default=[], help="Skip files matching this glob (repeatable).")
    pl.add_argument("--name", help="Folder name for folder models (default: the repository name).")
    pl.add_argument("--endpoint", help="Hub address (env HF_ENDPOINT; default the Hugging Face hub).")
    pl.add_argument("--models-dir", help="Download here instead of the configured paths.models_folder.")
    pl.set_defaults(func=cmd_pull)


class ProgressLine:
    """One line per file on a terminal (redrawn), one line per 10% elsewhere."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.last: tuple[str, int] = ("", -1)

    def __call__(self, name: str, done: int, total: int) -> None:
        pct = int(done * 100 / total) if total else 100
        step = pct if self.tty else pct // 10 * 10
        if (name, step) == self.last:
            return
        self.last = (name, step)
        text = f"{name}: {pct:3d}% {done / 1e6:.1f}/{total / 1e6:.1f} MB"
        if self.tty:
            self.out.write("\r" + text + ("\n" if pct >= 100 else ""))
        else:
            self.out.write(text + "\n")
        self.out.flush()


def _models_dir(args: argparse.Namespace) -> Path:
    if args.models_dir:
        return Path(args.models_dir).expanduser().resolve()
    from lollms_server.cli.main import _config_dir
    from lollms_server.core.config import load_server_config

    return load_server_config(_config_dir(args.config_dir)).paths.models_dir


def cmd_pull(args: argparse.Namespace) -> int:
    from lollms_server.core.guarded_config import ConfigFileError

    try:
        models_dir = _models_dir(args)
    except ConfigFileError as exc:
        print(f"lollms-server: configuration error: {exc} (or pass --models-dir)", file=sys.stderr)
        return 2
    try:
        with hub_client(args.endpoint) as client:
            plan = make_plan(client, args.repo_id, models_dir, revision=args.revision, kind=args.kind,
                             include=args.include, exclude=args.exclude, name=args.name)
            total = sum(f.size for f in plan.files)
            print(f"{args.repo_id}@{args.revision}: {len(plan.files)} files, {total / 1e6:.1f} MB, kind {plan.kind} -> {plan.target}",
                  file=sys.stderr)
            paths = pull(client, plan, ProgressLine(sys.stderr))
    except PullError as exc:
        print(f"lollms-server: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - network errors: say what failed, never a traceback
        print(f"lollms-server: download failed: {type(exc).__name__}: {exc} (run it again to resume)", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0
