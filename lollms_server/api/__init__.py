"""HTTP API: contract models, routes, auth, error format, SSE."""

import sys

if "fastapi" not in sys.modules and "email_validator" not in sys.modules:
    # FastAPI's OpenAPI models import email-validator when it is installed, only to type the optional
    # ``info.contact.email`` of a schema; this server sets no contact, and that import is ~5% of the start-up
    # time. It is hidden for the length of FastAPI's own import only (FastAPI then types that field as a
    # string); whoever imports email_validator later gets the real package.
    sys.modules["email_validator"] = None  # type: ignore[assignment]  # `import email_validator` fails
    try:
        import fastapi.openapi.models  # noqa: F401
    finally:
        del sys.modules["email_validator"]
