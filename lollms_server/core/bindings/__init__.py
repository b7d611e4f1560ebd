"""Binding framework: the Binding base class, cards, type discovery and instance management."""

from lollms_server.core.bindings.base import Binding, BindingResult, CancelToken, GenerationTask, Message

__all__ = ["Binding", "BindingResult", "CancelToken", "GenerationTask", "Message"]
