"""Fuzz target: Sparkplug B command payloads (DCMD and NCMD) as the broker delivers them — protobuf
decoding, metric values, and the edge node's command handler in front of the command manager.

Contract (bridge/uplink/cloud_commands.py): decode() returns a payload with metrics or raises
InvalidArgument; get_value() returns a value of the signal's type or raises ValueError; handle()
never raises, counts every message as accepted or rejected once, and nothing unchecked reaches the
command manager.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from fuzz.engine import Cursor, instrumented, run

with instrumented(__name__):
    from linebridge.commands.manager import CommandManager, CommandState
    from linebridge.errors import InvalidArgument
    from linebridge.model import Access, CommandKind, DeviceDescription, DeviceKind, Signal, ValueType
    from linebridge.registry import DeviceRecord, DeviceRegistry
    from linebridge.uplink.cloud_commands import REBIRTH, CloudCommands, decode, writable_globs
    from linebridge.uplink.encoder import DATATYPE, get_value
    from linebridge.uplink.proto import sparkplug_b_pb2 as spb

DEVICE = "sim-1"
_PYTHON_TYPE = {ValueType.INT: int, ValueType.DOUBLE: float, ValueType.BOOL: bool, ValueType.STRING: str}
SIGNALS = (
    ("setpoint", ValueType.DOUBLE, Access.READ_WRITE),
    ("count", ValueType.INT, Access.READ_WRITE),
    ("enabled", ValueType.BOOL, Access.READ_WRITE),
    ("label", ValueType.STRING, Access.READ_WRITE),
    ("values/1", ValueType.DOUBLE, Access.READ),
)
VERBS = ("DCMD", "NCMD")
DEVICE_IDS = (DEVICE, "sim-2", "")


class Node:
    """A CloudCommands wired to a real registry and command manager, with one described device."""

    def __init__(self) -> None:
        self.registry = DeviceRegistry()
        self.registry.add(DeviceRecord(id=DEVICE, driver="sim", endpoint="sim://x"))
        signals = [Signal(path, value_type, access=access) for path, value_type, access in SIGNALS]
        self.registry.set_description(
            DEVICE,
            DeviceDescription(DeviceKind.OTHER, signals=signals, commands=frozenset({CommandKind.WRITE})),
        )
        self.manager = CommandManager(self.registry, lambda device_id: None, history=50)
        # Sparkplug aliases as a DBIRTH would give them: 1.. in signal order.
        self.paths = {(DEVICE, index): path for index, (path, _, _) in enumerate(SIGNALS, start=1)}
        self.rebirths = 0
        self.cloud = CloudCommands(
            self.manager,
            self.registry,
            writable_globs({"sim-*": ["*"]}),
            self.resolve,
            self.rebirth,
            lambda: 99,
        )

    def resolve(self, device_id: str, metric: spb.Payload.Metric) -> str | None:
        """What the uplink service does: alias via the birth, else the metric name."""
        if metric.HasField("alias"):
            return self.paths.get((device_id, metric.alias))
        return metric.name or None

    def rebirth(self) -> None:
        """Count NCMD rebirth requests."""
        self.rebirths += 1


@cache
def node() -> Node:
    """One node for the whole run (the registry and manager are cheap to keep, slow to rebuild)."""
    return Node()


def check_decode(payload: bytes) -> spb.Payload | None:
    """decode() and get_value() on every metric for every value type: values or the documented errors."""
    try:
        message = decode(payload)
    except InvalidArgument:
        return None
    assert len(message.metrics) >= 1
    for metric in message.metrics:
        f"{metric.name!r} {metric.alias} {metric.datatype} {metric.WhichOneof('value')}"  # noqa: B018 - as logs do
        for value_type, python_type in _PYTHON_TYPE.items():
            try:
                value = get_value(metric, value_type)
            except ValueError:
                continue
            assert type(value) is python_type, f"{value_type.name} metric gave {value!r}"
            if value_type is ValueType.INT:
                assert -(2**63) <= value < 2**63, f"Int64 value {value} outside int64"
            assert metric.datatype in (0, DATATYPE[value_type]) or metric.HasField("datatype")
    return message


def check_handle(verb: str, device_id: str, payload: bytes) -> None:
    """handle() never raises and counts the message once; an accepted DCMD is a valid write."""
    state = node()
    before = (state.cloud.accepted, state.cloud.rejected)
    history = len(state.manager._history)
    state.cloud.handle(verb, device_id, payload, f"spBv1.0/linebridge/{verb}/fuzz/{device_id}")
    accepted, rejected = state.cloud.accepted - before[0], state.cloud.rejected - before[1]
    assert (accepted, rejected) in ((1, 0), (0, 1)), "a command was counted twice or not at all"
    if verb == "DCMD":
        assert len(state.manager._history) > history or history >= state.manager.history_limit
        newest = next(reversed(state.manager._history.values()))
        if rejected:
            assert newest.state is CommandState.REJECTED and newest.error_reason, (
                "a rejection without a reason"
            )
        for signal, value in newest.request.writes if newest.request is not None else ():
            # The manager resolved the writes: every value has its signal's type.
            assert type(value) is _PYTHON_TYPE[signal.value_type], f"{signal.path} got {value!r}"
            assert signal.access.writable


def one_input(data: bytes) -> None:
    """libFuzzer entry: verb and device id, then the payload bytes through decode and handle."""
    cursor = Cursor(data)
    verb = cursor.choice(VERBS)
    device_id = cursor.choice(DEVICE_IDS)
    payload = cursor.rest()
    check_decode(payload)
    check_handle(verb, device_id, payload)


def seeds() -> Iterator[bytes]:
    """Well-formed DCMDs for every signal type, by alias and by name, and an NCMD rebirth."""
    for index, (path, value_type, _) in enumerate(SIGNALS, start=1):
        by_alias = spb.Payload(timestamp=1, seq=0)
        metric = by_alias.metrics.add(alias=index, datatype=DATATYPE[value_type])
        field = {
            ValueType.DOUBLE: "double_value",
            ValueType.INT: "long_value",
            ValueType.BOOL: "boolean_value",
            ValueType.STRING: "string_value",
        }[value_type]
        setattr(
            metric,
            field,
            {ValueType.DOUBLE: 2.5, ValueType.INT: 7, ValueType.BOOL: True, ValueType.STRING: "from cloud"}[
                value_type
            ],
        )
        yield b"\x00\x00" + by_alias.SerializeToString()
        by_name = spb.Payload()
        by_name.metrics.add().CopyFrom(metric)
        by_name.metrics[0].ClearField("alias")
        by_name.metrics[0].name = path
        yield b"\x00\x00" + by_name.SerializeToString()
    rebirth = spb.Payload()
    rebirth.metrics.add(name=REBIRTH, datatype=spb.Boolean, boolean_value=True)
    yield b"\x01\x00" + rebirth.SerializeToString()


if __name__ == "__main__":
    run(one_input, seeds)
