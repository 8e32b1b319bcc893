"""Linebridge: robot and machine integration middleware."""

__version__ = "0.1.0"
