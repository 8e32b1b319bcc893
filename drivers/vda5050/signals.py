"""The telemetry of one AGV as ordinary signals, and the decoding of state/visualization into columns.

One `state` becomes one batch of every state signal (one timestamp, the header's), one
`visualization` one DOUBLE batch of position and velocity. The alias lists are built once per AGV
and handed to every batch (encoders cache by them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from linebridge.drivers.base import SampleBatch, Signal, Value, ValueType
from linebridge.drivers.vda5050 import messages as m

D, N, B, S = ValueType.DOUBLE, ValueType.INT, ValueType.BOOL, ValueType.STRING

_LEVELS = {"": 0, "WARNING": 1, "FATAL": 2}

# path, type, unit, description
_POSITION = [
    ("position/x", D, "m", "x on the map (agvPosition.x)"),
    ("position/y", D, "m", "y on the map (agvPosition.y)"),
    ("position/theta", D, "rad", "heading (agvPosition.theta)"),
    ("position/localization_score", D, "", "agvPosition.localizationScore, 0..1"),
]
_VELOCITY = [
    ("velocity/vx", D, "m/s", "velocity.vx"),
    ("velocity/vy", D, "m/s", "velocity.vy"),
    ("velocity/omega", D, "rad/s", "velocity.omega"),
]
_STATE_ONLY = [
    ("position/map_id", S, "", "agvPosition.mapId"),
    ("position/initialized", B, "", "agvPosition.positionInitialized"),
    ("battery/charge", D, "%", "batteryState.batteryCharge"),
    ("battery/charging", B, "", "batteryState.charging"),
    ("operating_mode", S, "", "AUTOMATIC, SEMIAUTOMATIC, MANUAL, SERVICE or TEACHIN"),
    ("driving", B, "", "the AGV is moving"),
    ("paused", B, "", "paused by startPause or a hardware button"),
    ("safety/e_stop", S, "", "safetyState.eStop: AUTOACK, MANUAL, REMOTE or NONE"),
    ("safety/field_violation", B, "", "safetyState.fieldViolation"),
    ("order/id", S, "", "orderId"),
    ("order/update_id", N, "", "orderUpdateId"),
    ("order/last_node_id", S, "", "lastNodeId"),
    ("order/last_node_sequence_id", N, "", "lastNodeSequenceId"),
    ("order/nodes_left", N, "", "nodes still to go (nodeStates)"),
    ("order/edges_left", N, "", "edges still to go (edgeStates)"),
    ("actions/running", N, "", "actions WAITING, INITIALIZING, RUNNING or PAUSED"),
    ("actions/failed", N, "", "actions FAILED"),
    (
        "actions/states",
        S,
        "",
        "actionStates as JSON [{actionId, actionType, actionStatus, resultDescription}]",
    ),
    ("load/count", N, "", "number of loads on board"),
    ("load/id", S, "", "loadId of the first load ('' when none)"),
    ("load/ids", S, "", "every loadId on board, comma-separated"),
    ("load/type", S, "", "loadType of the first load"),
    ("load/position", S, "", "loadPosition of the first load"),
    ("load/weight", D, "kg", "weight of the first load (NaN when unknown)"),
    ("errors/count", N, "", "number of errors and warnings"),
    ("errors/level", N, "", "highest error level: 0 none, 1 WARNING, 2 FATAL"),
    ("errors/text", S, "", "errors as 'LEVEL errorType: errorDescription; ...'"),
]
SIGNAL_TABLE = _POSITION + _VELOCITY + _STATE_ONLY


def make_signals() -> list[Signal]:
    """A fresh set of Signal objects for one AGV (the registry gives them aliases)."""
    return [
        Signal(path, t, unit, description=desc, source_type="vda5050") for path, t, unit, desc in SIGNAL_TABLE
    ]


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def state_values(s: m.State) -> list[Value]:
    """The state's values in SIGNAL_TABLE order."""
    p, v, b, loads = s.agv_position, s.velocity, s.battery_state, s.loads
    first = loads[0] if loads else m.Load()
    running = sum(1 for a in s.action_states if a.action_status not in ("FINISHED", "FAILED"))
    failed = sum(1 for a in s.action_states if a.action_status == "FAILED")
    return [
        _nan(p.x if p else None),
        _nan(p.y if p else None),
        _nan(p.theta if p else None),
        _nan(p.localization_score if p else None),
        _nan(v.vx if v else None),
        _nan(v.vy if v else None),
        _nan(v.omega if v else None),
        p.map_id if p else "",
        p.position_initialized if p else False,
        float(b.battery_charge),
        b.charging,
        s.operating_mode,
        s.driving,
        bool(s.paused),
        s.safety_state.e_stop,
        s.safety_state.field_violation,
        s.order_id,
        s.order_update_id,
        s.last_node_id,
        s.last_node_sequence_id,
        len(s.node_states),
        len(s.edge_states),
        running,
        failed,
        json.dumps(
            [
                {"actionId": a.action_id, "actionType": a.action_type or "", "actionStatus": a.action_status}
                | ({"resultDescription": a.result_description} if a.result_description else {})
                for a in s.action_states
            ],
            separators=(",", ":"),
        ),
        len(loads),
        first.load_id or "",
        ",".join(load.load_id or "" for load in loads),
        first.load_type or "",
        first.load_position or "",
        _nan(first.weight),
        len(s.errors),
        max((_LEVELS[e.error_level] for e in s.errors), default=0),
        "; ".join(f"{e.error_level} {e.error_type}: {e.error_description or ''}" for e in s.errors),
    ]


@dataclass
class Columns:
    """Alias lists of one AGV, built once after the registry assigned aliases."""

    device_id: str
    state: list[int]
    viz_position: list[int]
    viz_full: list[int]

    @classmethod
    def of(cls, device_id: str, signals: list[Signal]) -> Columns:
        """The column plan for an AGV's signals."""
        aliases = [s.alias for s in signals]
        n = len(_POSITION)
        return cls(device_id, aliases, aliases[:n], aliases[: n + len(_VELOCITY)])

    def state_batch(self, s: m.State, ns: int) -> SampleBatch:
        """One columnar batch of every value a state message carries."""
        values = state_values(s)
        return SampleBatch(self.device_id, self.state, values, [ns] * len(values))

    def viz_batch(self, v: m.Visualization, ns: int) -> SampleBatch | None:
        """One columnar batch of a visualization message's position and velocity (None when it has none)."""
        p = v.agv_position
        if p is None:
            return None
        values = [p.x, p.y, p.theta, _nan(p.localization_score)]
        aliases = self.viz_position
        if v.velocity is not None:
            values += [_nan(v.velocity.vx), _nan(v.velocity.vy), _nan(v.velocity.omega)]
            aliases = self.viz_full
        return SampleBatch(self.device_id, aliases, values, [ns] * len(values), value_type=D)
