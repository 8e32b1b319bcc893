"""Industrial Cloud uplink: the bridge as a Sparkplug B edge node over MQTT, with store-and-forward.

`Uplink` is re-exported lazily (on first use): `linebridge.config` imports `linebridge.uplink.config`,
which runs this file, and the service behind `Uplink` reaches the devices and commands packages, which
import `linebridge.config` again.
"""

from __future__ import annotations

import importlib

from linebridge.uplink.config import UplinkConfig
from linebridge.uplink.status import DISABLED, UplinkState, UplinkStatus

_LAZY = {"Uplink": "linebridge.uplink.service"}

__all__ = ["DISABLED", "Uplink", "UplinkConfig", "UplinkState", "UplinkStatus"]


def __getattr__(name: str) -> object:
    """Import a lazily re-exported name on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
