"""uvicorn for ``serve`` without its command line (bench/bench_startup.py).

uvicorn's package ``__init__`` imports ``uvicorn.main``, its command line: click and, for its process
supervisors, multiprocessing (about 0.01 s of CPU at every start). ``serve`` needs ``uvicorn.config`` and
``uvicorn.server`` only, which import neither. ``prepare()`` (before anything imports uvicorn) makes the
``uvicorn`` package without running its ``__init__``; the first time anything reads a name from the package
(``uvicorn.run``, ``from uvicorn import Config``, ``uvicorn.__version__``…), its ``__init__`` runs then, so
the package is the usual one for every later caller (``Config``, which uvicorn's own lifespan modules read
from the package, is set beforehand: the class its ``__init__`` exports). ``run()`` serves as ``uvicorn.run`` does for one process
without reload, and falls back to ``uvicorn.run`` itself when uvicorn was imported the usual way.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any

STARTUP_FAILURE = 3  # uvicorn.run's exit code when the server did not start (uvicorn.main.STARTUP_FAILURE)


def prepare() -> None:
    """Make the ``uvicorn`` package without running its ``__init__`` (once, before any import of uvicorn)."""
    if "uvicorn" in sys.modules:
        return
    spec = importlib.util.find_spec("uvicorn")
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        return
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def complete(name: str) -> Any:
        """PEP 562: a name the package does not have yet: run its ``__init__`` now, then read it."""
        package.__dict__.pop("__getattr__", None)
        loader.exec_module(package)
        return getattr(package, name)

    package.__getattr__ = complete  # type: ignore[method-assign]
    sys.modules["uvicorn"] = package


def _completed(package: types.ModuleType) -> bool:
    return "__getattr__" not in package.__dict__


def run(app: Any, **options: Any) -> None:
    """``uvicorn.run(app, **options)`` for one process without reload (what ``serve`` asks for)."""
    package = sys.modules.get("uvicorn")
    if package is None or _completed(package) or options.get("reload") or int(options.get("workers") or 1) > 1:
        import uvicorn

        uvicorn.run(app, **options)
        return
    try:
        from uvicorn.config import Config
        from uvicorn.server import Server
    except ImportError as exc:
        problem: str | None = f"cannot import: {exc}"
    else:
        from lollms_server import shortcuts

        problem = shortcuts.first(shortcuts.missing(Server, "run"), shortcuts.unset("uvicorn.server.Server.__init__", Server.__init__, "started"))
    if problem:  # (lollms_server/shortcuts.py) uvicorn.run itself, its package completed
        from lollms_server import shortcuts

        shortcuts.turned_off("api/uvicorn_import.py (uvicorn without its command line)", "uvicorn", problem)
        package.run(app, **options)
        return
    # uvicorn's own lifespan modules read `from uvicorn import Config`: the very class its __init__ exports
    package.__dict__.setdefault("Config", Config)
    config = Config(app, **options)
    load_app = getattr(config, "load_app", None)
    if load_app is not None:  # (uvicorn releases that have it load the app here, before Server.run)
        load_app()
    server = Server(config=config)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:
        sys.exit(STARTUP_FAILURE)
