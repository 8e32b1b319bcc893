"""The `linebridge` command line: run, demo, simulators and the client sub-commands."""

from linebridge.cli.main import main

__all__ = ["main"]
