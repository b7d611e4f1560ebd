"""The response models of the routes that need no key (health, readiness, server_info): built at start-up
with their routes, apart from the listings' models in ``api/models.py`` (imported by the first listing)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class HealthResponse(BaseModel):
    status: str = "ok"
    version: str
    api_key_required: bool
    auth: Literal["required", "disabled"] = Field(
        description="'disabled' only when the main config says allowed_api_keys: [] on purpose."
    )
    warnings: list[str] = Field(
        default_factory=list, description="What the configuration deliberately leaves open (auth off, CORS '*')."
    )


class ServerInfoResponse(BaseModel):
    """Public facts for a first-run connect screen; paths are relative or abbreviated, never absolute."""

    version: str
    api_key_required: bool
    config_file: str = Field(description="The main config file, relative to the project or working folder, or '…/folder/file'.")


class ReadinessResponse(BaseModel):
    status: Literal["ready"] = "ready"
    instances: dict[str, Literal["ready", "failed"]] = Field(
        default_factory=dict, description="Each binding instance: ready to serve (models load on first use) or failed."
    )
