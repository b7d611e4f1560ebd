"""LocalModelBinding: the shared shape of bindings that run model files on this machine.

Each loaded model lives on its own worker thread in a ``ModelCache`` (least recently used goes first past the
instance's limit). At start-up the Python packages the binding needs are checked without importing them
(``find_spec``: the idle server keeps its memory) and ``check_install`` looks for the default model, so a
missing package or model is a load error of the instance, not a failure at the first request.

A subclass names its packages and cache, and says how to find (``find_files``) and load (``load_files``) a
model; it adds what is its own (generation, model listing and details).
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any, ClassVar, Generic, TypeVar

from lollms_server.core.bindings.base import Binding
from lollms_server.core.bindings.worker import F, ModelCache

M = TypeVar("M")


class LocalModelBinding(Binding, Generic[F, M]):
    # import name -> what to install (shown when it is missing), checked at start-up
    required_packages: ClassVar[dict[str, str]] = {}
    install_hint: ClassVar[str] = ""  # how to install them, e.g. "install the 'piper' extra"
    cache_thread_prefix: ClassVar[str] = "model"
    cache_limit_setting: ClassVar[tuple[str, int]] = ("max_loaded_models", 1)  # instance setting, its default

    def __init__(self, config: dict[str, Any], resource_manager: Any) -> None:
        super().__init__(config, resource_manager)
        setting, default = self.cache_limit_setting
        self.cache: ModelCache[F, M] = ModelCache(limit=int(config.get(setting) or default), load=self.load_files,
                                                  thread_prefix=self.cache_thread_prefix, release=self.free_model)

    # ---- what a subclass gives ----------------------------------------------------------------
    def find_files(self, model_name: str | None) -> F:
        """The files of ``model_name`` (the default model when None); raises a LollmsError naming the fix."""
        raise NotImplementedError

    def load_files(self, files: F) -> M:
        """Load ``files`` (runs on the model's worker thread)."""
        raise NotImplementedError

    def free_model(self, model: M) -> None:
        """Free what a dropped model holds beyond its Python objects (GPU memory...); nothing by default."""

    def check_install(self) -> None:
        """Start-up checks after the packages (runs in a thread): by default, the default model can be found."""
        if self.default_model:
            self.find_files(None)

    # ---- shared --------------------------------------------------------------------------------
    async def startup(self) -> None:
        def check() -> None:
            missing = [wheel for name, wheel in self.required_packages.items() if importlib.util.find_spec(name) is None]
            if missing:
                raise RuntimeError(f"{', '.join(missing)} not installed; {self.install_hint}")
            self.check_install()

        await asyncio.to_thread(check)

    async def unload_model(self, model_name: str | None = None) -> bool:
        return self.cache.unload(model_name)

    async def check_model(self, model_name: str | None) -> None:
        await asyncio.to_thread(self.find_files, model_name)


__all__ = ["LocalModelBinding"]
