"""HTTP API: contract models, routes, auth, error format, SSE."""
