"""`lollms-server worker`: run jobs from Redis without serving HTTP (scale-out with resource_manager.backend: redis).

A worker loads the same configuration as `serve` (bindings, personalities, filters, limits, compute slots) and
runs jobs from the shared queue, ``jobs.concurrency`` at once. SIGTERM or SIGINT stops it cleanly: it takes no
new job, gives running ones ``jobs.stop_grace_s`` seconds, then stops them and puts them back in the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lollms_server.core.config import ServerConfig

NEEDS_REDIS = ("lollms-server worker: workers run jobs shared through Redis; set resource_manager.backend: redis "
               "and resource_manager.redis_url (or LOLLMS_REDIS_URL) in the main configuration (without Redis, "
               "jobs run inside `lollms-server serve`)")


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("worker", parents=[common], help="Run jobs from Redis without serving HTTP (backend redis).")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], type=str.upper)
    p.set_defaults(func=cmd_worker)


def cmd_worker(args: argparse.Namespace) -> int:
    from lollms_server.cli.main import _config_dir, _setup_logging, server_environment

    server_environment()
    from lollms_server.core.config import load_server_config
    from lollms_server.core.guarded_config import ConfigFileError
    from lollms_server.core.redis_conn import redis_url, shared_state_enabled

    try:
        config = load_server_config(_config_dir(args.config_dir))
    except ConfigFileError as exc:
        print(f"lollms-server worker: configuration error: {exc}", file=sys.stderr)
        return 2
    rm = config.section("resource_manager")
    if not shared_state_enabled(rm):
        print(NEEDS_REDIS, file=sys.stderr)
        return 2
    try:
        redis_url(rm)
    except ValueError as exc:
        print(f"lollms-server worker: {exc}", file=sys.stderr)
        return 2
    _setup_logging((args.log_level or config.section("logging").get("log_level") or "INFO").upper())
    return asyncio.run(_serve_jobs(config))


async def _serve_jobs(config: "ServerConfig") -> int:
    from lollms_server.core.services import build_services, close_services

    services = await build_services(config, run_jobs=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = services.jobs.runner if services.jobs else None
    print(f"lollms-server worker {runner.name if runner else ''}: running jobs from Redis "
          f"(config: {config.file}, {services.jobs.settings.concurrency if services.jobs else 0} at once)", flush=True)
    try:
        await stop.wait()
        print("lollms-server worker: stopping (running jobs finish or go back to the queue)", flush=True)
    finally:
        await close_services(services)
    print("lollms-server worker: stopped", flush=True)
    return 0
