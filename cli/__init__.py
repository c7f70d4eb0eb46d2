"""The entry points: the `claimpay` command line, the dev stack, Flower's configuration, the
worker health check and the HTTP client of the client commands.

The top layer: it may import `producer`, `worker` and the contracts (`claimpay`); nothing
imports it (the import-linter contracts in `pyproject.toml`).
"""
