"""Command line: serve, init, wizard."""
