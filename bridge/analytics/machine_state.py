"""The machine states a device can be in (a module of its own: the config and the state model both use it)."""

from __future__ import annotations

from enum import IntEnum


class MachineState(IntEnum):
    """PackML-style machine states (ISA-TR88.00.02) plus OFFLINE when the bridge cannot reach the device."""

    EXECUTE = 1  # producing
    IDLE = 2
    SUSPENDED = 3  # starved or blocked by upstream/downstream
    HELD = 4  # a fault is being cleared
    STOPPED = 5
    ABORTED = 6
    SETUP = 7
    OFFLINE = 8


__all__ = ["MachineState"]
