"""Helpers spec-era workflows and bindings import (lollms_server.utils.helpers)."""
