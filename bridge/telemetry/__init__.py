"""Telemetry: the bus, subscriptions and their filters."""
