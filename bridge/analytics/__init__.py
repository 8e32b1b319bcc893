"""Machine states, OEE (ISO 22400-2) and alarms, computed per batch at the edge."""

from linebridge.analytics.alarms import (
    Alarm,
    AlarmChange,
    AlarmEvent,
    AlarmManager,
    Changes,
    Dropped,
    Snapshot,
)
from linebridge.analytics.config import AnalyticsConfig, DeviceAnalytics
from linebridge.analytics.engine import AnalyticsEngine
from linebridge.analytics.oee import CounterTracker, Efficiency
from linebridge.analytics.states import MachineState

__all__ = [
    "Alarm",
    "AlarmChange",
    "AlarmEvent",
    "AlarmManager",
    "AnalyticsConfig",
    "AnalyticsEngine",
    "Changes",
    "CounterTracker",
    "DeviceAnalytics",
    "Dropped",
    "Efficiency",
    "MachineState",
    "Snapshot",
]
