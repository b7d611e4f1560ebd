"""HTTP API: contract models, routes, auth, error format, SSE."""

from lollms_server.api.fastapi_import import import_fastapi

import_fastapi()  # before anything of this server imports FastAPI: without what start-up never needs (see there)
