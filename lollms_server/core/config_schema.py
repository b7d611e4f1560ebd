"""MAIN_SCHEMA: the ConfigGuard schema of the main configuration file."""

from __future__ import annotations

from typing import Any

MAIN_SCHEMA_VERSION = "0.4.0"

LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MODALITIES: tuple[str, ...] = ("ttt", "tti", "tts", "stt", "ttv", "ttm", "i2i", "audio2audio")


def _s(type_: str, default: Any, help_: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_, "default": default, "help": help_, **extra}


def _ns(type_: str, help_: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_, "default": None, "nullable": True, "help": help_, **extra}


_DEFAULTS_SCHEMA: dict[str, Any] = {
    f"{m}_binding": _ns("str", f"Default binding instance name for '{m}' generation (a key of bindings_map).")
    for m in MODALITIES
}
_DEFAULTS_SCHEMA.update(
    {
        "embedding_binding": _ns(
            "str", "Default binding instance for embeddings (/v1/embeddings, /api/v1/embed); it must declare 'embed'."
        ),
        "default_context_size": _s("int", 4096, "Fallback context size when a model does not say.", min_val=64),
        "default_max_output_tokens": _s(
            "int", 1024, "Fallback maximum number of generated tokens.", min_val=1
        ),
    }
)

MAIN_SCHEMA: dict[str, Any] = {
    "__version__": MAIN_SCHEMA_VERSION,
    "server": {
        "type": "section",
        "help": "Network settings of the HTTP server.",
        "schema": {
            "host": _s("str", "127.0.0.1", "Address to listen on. 127.0.0.1 = this machine only; 0.0.0.0 = all."),
            "port": _s("int", 9601, "TCP port to listen on.", min_val=1, max_val=65535),
            "allowed_origins": _s(
                "list",
                ["http://localhost:9601", "http://127.0.0.1:9601", "http://localhost:5173", "http://127.0.0.1:5173"],
                "Origins allowed by CORS (web UIs served from another address). Never include 'null'.",
            ),
            "keepalive_interval": _s(
                "float", 15.0, "Seconds between SSE keep-alive comments while a stream waits.", min_val=0.1
            ),
            "max_body_bytes": _s(
                "int", 32 * 1024 * 1024,
                "Largest request body accepted, in bytes (413 beyond, also for chunked bodies). Default 32 MB: a few base64 images.",
                min_val=1024,
            ),
            "max_header_bytes": _s(
                "int", 16 * 1024, "Largest request line + headers accepted, in bytes (431 beyond).", min_val=1024
            ),
            "max_input_items": _s(
                "int", 1024, "Most input_data items (or chat messages) one request may carry (400 beyond).", min_val=1
            ),
            "max_binary_input_bytes": _s(
                "int", 20 * 1024 * 1024,
                "Largest decoded size of one base64 input (image, audio, video, document), in bytes (400 beyond).",
                min_val=1024,
            ),
            "workers": _s(
                "int", 1, "Server processes. Only 1 is supported: a process holds its loaded models; for more, run "
                "several servers with resource_manager.backend redis behind a load balancer.", min_val=1
            ),
        },
    },
    "paths": {
        "type": "section",
        "help": "Folders. Relative paths are taken from the project root (instance_bindings_folder from the config folder).",
        "schema": {
            "config_base_dir": _s("str", "lollms_configs", "Folder holding the configuration files."),
            "instance_bindings_folder": _s("str", "bindings", "Binding instance files, inside the config folder."),
            "personalities_folder": _s("str", "personal_personalities", "Your own personalities."),
            "bindings_folder": _s("str", "personal_bindings", "Your own binding types."),
            "functions_folder": _s("str", "personal_functions", "Your own functions."),
            "models_folder": _s("str", "models", "Model files, in subfolders per kind (gguf, diffusers_models, tts, stt…)."),
            "example_personalities_folder": _ns("str", "Built-in personalities.", default="zoos/personalities"),
            "example_bindings_folder": _ns("str", "Built-in binding types.", default="zoos/bindings"),
            "example_functions_folder": _ns("str", "Built-in functions.", default="zoos/functions"),
        },
    },
    "security": {
        "type": "section",
        "help": "API keys and encryption.",
        "schema": {
            "allowed_api_keys": _s(
                "list", [],
                "Keys accepted in X-API-Key: strings, or {key, name, requests_per_minute, tokens_per_day} entries. "
                "Empty list = authentication off.",
                secret=True,
            ),
            "encryption_key": _ns(
                "str",
                "Fernet key to encrypt binding instance files. Prefer the LOLLMS_ENCRYPTION_KEY env var or a key file.",
                secret=True,
            ),
            "encryption_key_file": _ns(
                "str", "File holding the Fernet key. Keep it outside the configuration folder."
            ),
            "keyless_loopback_surfaces": _s(
                "list", [],
                "Compatibility surfaces ('ollama', 'openai') that accept requests without an API key when they come "
                "straight from this machine (loopback, no proxy header), like a local Ollama. Empty = keys everywhere.",
            ),
        },
    },
    "defaults": {"type": "section", "help": "Default binding instances per modality.", "schema": _DEFAULTS_SCHEMA},
    "model_aliases": {
        "type": "section",
        "help": "Extra model names for the OpenAI and Ollama surfaces: alias -> a generation type (ttt, tti, tts, stt, "
        "embedding: its default instance) or a model id (instance, instance/model, personality:name). Built-in aliases "
        "(gpt-4o-mini, tts-1, whisper-1, dall-e-3, text-embedding-3-small...) apply unless redefined here; an empty "
        "value switches one off.",
        "schema": {},
    },
    "bindings_map": {
        "type": "section",
        "help": "Binding instance name -> binding type name (type_name of its card).",
        "schema": {},
    },
    "resource_manager": {
        "type": "section",
        "help": "Limits concurrent use of compute (GPU) by bindings that need it.",
        "schema": {
            "gpu_strategy": _s(
                "str", "semaphore", "semaphore: gpu_limit tasks at once; simple_lock: one; none: no limit.",
                options=["semaphore", "simple_lock", "none"],
            ),
            "gpu_limit": _s("int", 1, "Tasks allowed at once with the semaphore strategy.", min_val=1),
            "queue_timeout": _s("int", 120, "Seconds a request may wait for a slot before failing with 408.", min_val=1),
            "max_queue": _s(
                "int", 512, "Requests that may wait for a slot at once; beyond it 503 with Retry-After at once.", min_val=0
            ),
            "backend": _s(
                "str", "memory",
                "Where slots and the queue live. memory: this process (no other service); redis: shared by every "
                "replica using resource_manager.redis_url, so the limits hold across all of them.",
                options=["memory", "redis"],
            ),
            "redis_url": _ns(
                "str", "Redis URL for backend redis (redis://[:password@]host:port/db). The LOLLMS_REDIS_URL "
                "environment variable overrides it.", secret=True,
            ),
            "lease_seconds": _s(
                "int", 10, "Redis backend: a slot held by a replica that died (or lost Redis) is free after this long.",
                min_val=1,
            ),
            "redis_prefix": _s(
                "str", "lollms", "Redis backend: the start of every key and channel name this cluster uses (letters, "
                "digits, '_', '-', '.', ':'), so several clusters can share one Redis.",
            ),
        },
    },
    "jobs": {
        "type": "section",
        "help": "Durable jobs (/api/v1/jobs): generations that run apart from the request that asked for them. "
        "In this process by default; in Redis (shared by every replica and `lollms-server worker`) with "
        "resource_manager.backend: redis.",
        "schema": {
            "result_ttl_s": _s("int", 3600, "Seconds a finished job (state, result, events) is kept.", min_val=1),
            "max_queued": _s(
                "int", 256, "Jobs that may wait to start at once; beyond it 503 with Retry-After.", min_val=1
            ),
            "max_events": _s(
                "int", 20000, "Events kept per job (the oldest are dropped beyond it; the final event has the whole result).",
                min_val=16,
            ),
            "max_kept": _s(
                "int", 1000, "In-process store: jobs kept in memory (the oldest finished ones are dropped first).",
                min_val=1,
            ),
            "run_locally": _s(
                "bool", True, "This server runs jobs itself. With Redis, false leaves them to `lollms-server worker` "
                "processes (without Redis jobs always run in the server).",
            ),
            "concurrency": _s(
                "int", 4, "Jobs one process runs at once (each still waits for a compute slot of resource_manager).",
                min_val=1,
            ),
            "max_attempts": _s(
                "int", 3, "Redis: starts allowed per job; a job whose runner died this often is marked failed.",
                min_val=1,
            ),
            "claim_idle_s": _s(
                "int", 30, "Redis: a running job whose process stopped renewing its claim for this long is taken "
                "over by another runner (and restarted from the beginning).", min_val=1,
            ),
            "stop_grace_s": _s(
                "int", 10, "Redis: on shutdown, seconds running jobs may take to finish before they are stopped and "
                "put back in the queue (in-process jobs end with the process at once).", min_val=0,
            ),
        },
    },
    "webui": {
        "type": "section",
        "help": "Built-in web interface.",
        "schema": {"enable_ui": _s("bool", True, "Serve the web UI at /.")},
    },
    "logging": {
        "type": "section",
        "help": "Console logging.",
        "schema": {
            "log_level": _s("str", "INFO", "Log level name, any case: " + ", ".join(LOG_LEVELS) + "."),
            "level": _s("int", 20, "Numeric log level (derived from log_level when they disagree).", min_val=0),
        },
    },
    "usage": {
        "type": "section",
        "help": "The usage ledger: one row per generation in a local SQLite database (in Redis with "
        "resource_manager.backend redis).",
        "schema": {
            "enabled": _s("bool", True, "Record every generation (request, key id, model, tokens, timings)."),
            "database": _s("str", "usage.sqlite", "SQLite file; relative paths are inside the config folder."),
            "store_text": _s("bool", False, "Also store prompt and answer text (off: only counts and timings)."),
            "retention_days": _s("int", 90, "Delete rows older than this many days (0 = keep forever).", min_val=0),
            "redis_max_records": _s(
                "int", 100000, "resource_manager.backend redis: the ledger lives in Redis (shared by every replica); "
                "the newest this many records are kept one by one (rows), per-hour totals for the whole retention.",
                min_val=1,
            ),
        },
    },
    "responses": {
        "type": "section",
        "help": "Stored responses of the OpenAI Responses API (previous_response_id, GET /v1/responses/{id}); in "
        "Redis with resource_manager.backend redis, so every replica sees them.",
        "schema": {
            "max_stored": _s("int", 512, "Responses kept at most; the oldest go first.", min_val=1),
            "ttl_seconds": _s("int", 2592000, "A stored response is forgotten after this many seconds (30 days).", min_val=1),
        },
    },
    "metrics": {
        "type": "section",
        "help": "Prometheus metrics at /metrics.",
        "schema": {
            "enabled": _s("bool", True, "Serve /metrics."),
            "token": _ns(
                "str", "Bearer token required by /metrics. Unset: any API key (or none when auth is off).", secret=True
            ),
        },
    },
    "extensions": {
        "type": "section",
        "help": "Extensions (zoos/extensions, personal_extensions, installed packages) and filters.",
        "schema": {
            "enabled": _s("bool", True, "Load extensions at start-up."),
            "disabled": _s("list", [], "Names of extensions not to load."),
            "extensions_folder": _s("str", "personal_extensions", "Your own extensions."),
            "filters_folder": _s("str", "personal_filters", "Your own filters."),
            "settings_file": _s(
                "str", "plugin_settings.yaml",
                "Valves and scopes of filters and extensions, inside the config folder (encrypted when a key is set).",
            ),
        },
    },
    "personalities_config": {
        "type": "section",
        "help": "Per-personality overrides keyed by folder name, e.g. {enabled: false}.",
        "schema": {},
    },
}
