"""lollms_server: one API to many generation backends."""

__version__ = "0.4.0"
