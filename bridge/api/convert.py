"""Conversions between protobuf messages and the core's model types."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.duration_pb2 import Duration

from linebridge.api import pb
from linebridge.api.wire import UpdateCache, encode_fast, wrap_update
from linebridge.commands.types import CommandEvent, CommandRecord, CommandSpec
from linebridge.errors import InvalidArgument
from linebridge.model import CommandKind, Pose, Quality, SampleBatch, Signal, Value, ValueType
from linebridge.registry import DeviceRecord
from linebridge.telemetry.filters import take
from linebridge.telemetry.updates import (
    BatchUpdate,
    CatalogUpdate,
    DroppedUpdate,
    HeartbeatUpdate,
    SubscriptionOptions,
    SyncUpdate,
    Trigger,
    Update,
)

_GOOD = int(Quality.GOOD)
_COLUMN = {
    ValueType.DOUBLE: "double_values",
    ValueType.INT: "int_values",
    ValueType.BOOL: "bool_values",
    ValueType.STRING: "string_values",
}


# -- values --------------------------------------------------------------------------------------
def value_to_pb(value: Value) -> pb.common.Value:
    """A model value as a protobuf Value."""
    if isinstance(value, bool):
        return pb.common.Value(bool_value=value)
    if isinstance(value, int):
        return pb.common.Value(int_value=value)
    if isinstance(value, float):
        return pb.common.Value(double_value=value)
    return pb.common.Value(string_value=str(value))


def value_from_pb(message: pb.common.Value) -> Value:
    """The model value a protobuf Value holds; InvalidArgument when it holds none."""
    kind = message.WhichOneof("kind")
    if kind is None:
        raise InvalidArgument("value is empty: set one of double_value, int_value, bool_value, string_value")
    return getattr(message, kind)


def seconds(duration: Duration) -> float:
    """A protobuf Duration in seconds."""
    return duration.seconds + duration.nanos / 1e9


def duration(value: float) -> Duration:
    """Seconds as a protobuf Duration."""
    d = Duration()
    d.FromNanoseconds(int(value * 1e9))
    return d


# -- devices -------------------------------------------------------------------------------------
def signal_to_pb(signal: Signal) -> pb.device.Signal:
    """A signal as its protobuf description."""
    return pb.device.Signal(
        path=signal.path,
        value_type=int(signal.value_type),
        unit=signal.unit,
        access=int(signal.access),
        description=signal.description,
        alias=signal.alias,
        source_type=signal.source_type,
    )


def device_to_pb(record: DeviceRecord, with_signals: bool = True) -> pb.device.Device:
    """A device record as a protobuf Device, with or without its signals."""
    d = record.description
    message = pb.device.Device(
        id=record.id,
        name=record.name or record.id,
        driver=record.driver,
        endpoint=record.endpoint,
        state=int(record.state),
        state_reason=record.state_reason,
        source=record.source,
    )
    message.details.update(record.details)
    if d is not None:
        message.kind = int(d.kind)
        message.vendor, message.model, message.serial_number, message.identity = (
            d.vendor,
            d.model,
            d.serial_number,
            d.identity,
        )
        message.capabilities.commands.extend(sorted(d.commands))
        for m in d.methods:
            message.capabilities.methods.add(
                name=m.name,
                description=m.description,
                inputs=[
                    pb.device.MethodArgument(name=a.name, value_type=int(a.value_type)) for a in m.inputs
                ],
                outputs=[
                    pb.device.MethodArgument(name=a.name, value_type=int(a.value_type)) for a in m.outputs
                ],
            )
    if with_signals:
        message.signals.extend(signal_to_pb(s) for s in record.signals.values())
    return message


# -- telemetry -----------------------------------------------------------------------------------
def subscription_options(request: pb.telemetry.SubscribeRequest) -> SubscriptionOptions:
    """Validate a SubscribeRequest's knobs (InvalidArgument for nonsense) into options."""
    trigger = {0: Trigger.ALL, 1: Trigger.ALL, 2: Trigger.ON_CHANGE, 3: Trigger.SAMPLE}.get(request.trigger)
    if trigger is None:
        raise InvalidArgument(f"unknown trigger {request.trigger}")
    if request.mode not in (0, 1, 2):
        raise InvalidArgument(f"unknown mode {request.mode}")
    sample = seconds(request.sample_interval)
    latency = seconds(request.max_batch_latency) or 0.01
    heartbeat = seconds(request.heartbeat_interval)
    if trigger is Trigger.SAMPLE and not 0.001 <= sample <= 3600:
        raise InvalidArgument("sample_interval must be between 1 ms and 1 h for TRIGGER_SAMPLE")
    if not 0 < latency <= 10:
        raise InvalidArgument("max_batch_latency must be between 0 and 10 s")
    if heartbeat and not 0.01 <= heartbeat <= 3600:
        raise InvalidArgument("heartbeat_interval must be between 10 ms and 1 h")
    if request.deadband < 0 or request.deadband != request.deadband:
        raise InvalidArgument("deadband must be a non-negative number")
    return SubscriptionOptions(
        once=request.mode == 2,
        trigger=trigger,
        sample_interval=sample or 1.0,
        deadband=request.deadband,
        heartbeat_interval=heartbeat,
        max_latency=latency,
        max_size=request.max_batch_size or 10_000,
    )


def encode_batches(batches: Sequence[SampleBatch], types: dict[int, ValueType]) -> pb.telemetry.SampleBatch:
    """Concatenate batches into one columnar message; whole columns are copied when a batch is uniform."""
    msg = pb.telemetry.SampleBatch()
    with_quality = any(b.qualities is not None for b in batches)
    for b in batches:
        msg.aliases.extend(b.aliases)
        msg.timestamps.extend(b.timestamps)
        if b.value_type is not None:
            getattr(msg, _COLUMN[b.value_type]).extend(b.values)
        else:
            columns = {t: getattr(msg, name) for t, name in _COLUMN.items()}
            for alias, value in zip(b.aliases, b.values, strict=True):
                columns[types[alias]].append(value)
        if with_quality:
            msg.qualities.extend(b.qualities if b.qualities is not None else [_GOOD] * len(b.aliases))
    return msg


ENCODED = UpdateCache()  # each batch encoded once, whatever the number of subscribers


def batch_update_bytes(batches: Sequence[SampleBatch], types: dict[int, ValueType]) -> bytes:
    """A serialized TelemetryUpdate{batch} for `batches`, reusing each batch's cached encoding.

    Protobuf merges a repeated message field's occurrences by concatenating their repeated fields,
    so the concatenation of encoded TelemetryUpdate{batch: B1} and {batch: B2} decodes as one batch
    holding B1's then B2's samples, columns in order. Each batch is therefore encoded once, however
    many subscribers send it. A group that mixes batches with and without qualities is encoded
    whole, because an absent quality column cannot be concatenated with a present one.
    """
    if len({b.qualities is None for b in batches}) == 1:
        return b"".join(_encoded(b, types) for b in batches)
    return pb.telemetry.TelemetryUpdate(batch=encode_batches(batches, types)).SerializeToString()


def _encoded(batch: SampleBatch, types: dict[int, ValueType]) -> bytes:
    """The batch's TelemetryUpdate{batch} bytes, encoded once and kept beside it (ENCODED)."""
    data = ENCODED.get(batch)
    if data is None:
        inner = encode_fast(batch)
        if inner is None:
            inner = encode_batches([batch], types).SerializeToString()
        data = ENCODED.put(batch, wrap_update(inner))
    return data


def batch_update_chunks(
    batches: Sequence[SampleBatch], types: dict[int, ValueType], limit: int
) -> list[bytes]:
    """`batches` as TelemetryUpdate{batch} messages of at most about `limit` bytes each, in order.

    The common window fits in one message and costs one sum of cached lengths. A larger one is cut
    between batches, and a batch that alone is too large is halved by samples until it fits (one
    sample always fits: values are capped at the driver boundary far below the message limit).
    """
    # A group mixing batches with and without qualities is re-encoded with a quality column: allow for it.
    sizes = [len(_encoded(b, types)) + (len(b.aliases) + 8 if b.qualities is None else 0) for b in batches]
    if sum(sizes) <= limit:
        return [batch_update_bytes(batches, types)]
    out: list[bytes] = []
    group: list[SampleBatch] = []
    held = 0
    for batch, size in zip(batches, sizes, strict=True):
        if size > limit and len(batch.aliases) > 1:
            if group:
                out.append(batch_update_bytes(group, types))
                group, held = [], 0
            half = len(batch.aliases) // 2
            for part in (take(batch, list(range(half))), take(batch, list(range(half, len(batch.aliases))))):
                out += batch_update_chunks([part], types, limit)
            continue
        if group and held + size > limit:
            out.append(batch_update_bytes(group, types))
            group, held = [], 0
        group.append(batch)
        held += size
    if group:
        out.append(batch_update_bytes(group, types))
    return out


PAGE_PREFIX = "from:"


def page_start(token: str, count: int) -> int:
    """The index a Read page starts at (0 without a token); InvalidArgument for a token not ours."""
    if not token:
        return 0
    number = token.removeprefix(PAGE_PREFIX)
    if not token.startswith(PAGE_PREFIX) or not number.isdigit() or int(number) >= count:
        raise InvalidArgument(f"page_token {token[:40]!r} is not a next_page_token of this selection")
    return int(number)


def read_entry(
    path: str, signal: Signal, item: tuple[object, int, int] | None, now_ns: int
) -> pb.telemetry.SignalValue:
    """One Read result: value, timestamp, quality and age (None = no value received yet)."""
    entry = pb.telemetry.SignalValue(path=path, value_type=int(signal.value_type), unit=signal.unit)
    if item is not None:
        value, ts, quality = item
        entry.value.CopyFrom(value_to_pb(value))  # type: ignore[arg-type]
        entry.timestamp_ns, entry.quality = ts, quality
        entry.age.FromNanoseconds(max(0, now_ns - ts))
    return entry


def serialize_update(message: pb.telemetry.TelemetryUpdate | bytes) -> bytes:
    """Response serializer of Subscribe: pre-encoded batches pass through untouched."""
    return message if isinstance(message, bytes) else message.SerializeToString()


def update_to_pb(update: Update, types: dict[int, ValueType]) -> pb.telemetry.TelemetryUpdate | bytes:
    """A subscription update as a TelemetryUpdate (batches as ready-encoded bytes)."""
    if isinstance(update, BatchUpdate):
        return batch_update_bytes(update.batches, types)
    if isinstance(update, CatalogUpdate):
        entries = [
            pb.telemetry.CatalogEntry(
                alias=a,
                path=p,
                value_type=int(s.value_type),
                unit=s.unit,
                access=int(s.access),
                change_detection=s.change_detection,
            )
            for a, p, s in update.entries
        ]
        return pb.telemetry.TelemetryUpdate(
            catalog=pb.telemetry.Catalog(entries=entries, removed_aliases=update.removed)
        )
    if isinstance(update, SyncUpdate):
        return pb.telemetry.TelemetryUpdate(sync=pb.telemetry.Sync())
    if isinstance(update, DroppedUpdate):
        return pb.telemetry.TelemetryUpdate(
            dropped=pb.telemetry.Dropped(
                samples=update.samples, total_samples=update.total, reason=update.reason
            )
        )
    assert isinstance(update, HeartbeatUpdate)
    message = pb.telemetry.TelemetryUpdate(heartbeat=pb.telemetry.Heartbeat())
    message.heartbeat.time.FromNanoseconds(update.time_ns)
    return message


# -- commands ------------------------------------------------------------------------------------
def spec_from_pb(request: pb.command.ExecuteRequest, origin: str) -> CommandSpec:
    """An ExecuteRequest as a CommandSpec; InvalidArgument when it names no action."""
    action = request.WhichOneof("action")
    if action is None:
        raise InvalidArgument("ExecuteRequest has no action: set write, invoke, stop or a motion action")
    if not request.device_id:
        raise InvalidArgument("ExecuteRequest.device_id is empty")
    timeout = seconds(request.timeout) if request.HasField("timeout") else None
    spec = CommandSpec(
        device_id=request.device_id,
        kind=CommandKind(action),
        idempotency_key=request.idempotency_key,
        timeout=timeout,
        origin=origin,
    )
    if action == "write":
        spec.writes = [(w.path, value_from_pb(w.value)) for w in request.write.writes]
    elif action == "invoke":
        spec.method, spec.args = request.invoke.method, [value_from_pb(a) for a in request.invoke.args]
    elif action == "move_joints":
        m = request.move_joints
        spec.joint_positions, spec.speed, spec.acceleration = list(m.positions), m.speed, m.acceleration
    elif action == "move_linear":
        m = request.move_linear
        t = m.target
        spec.pose = Pose(t.x, t.y, t.z, t.rx, t.ry, t.rz) if m.HasField("target") else None
        spec.speed, spec.acceleration = m.speed, m.acceleration
    elif action == "run_program":
        spec.program = request.run_program.program
    return spec


def event_to_pb(event: CommandEvent) -> pb.command.CommandEvent:
    """A command event as its protobuf message."""
    message = pb.command.CommandEvent(
        command_id=event.command_id,
        state=int(event.state),
        progress=event.progress,
        progress_message=event.progress_message,
        result=[value_to_pb(v) for v in event.result],
        cancelled_by=event.cancelled_by,
    )
    if event.error_reason:
        message.error.reason, message.error.message = event.error_reason, event.error_message
    message.time.FromNanoseconds(event.time_ns)
    return message


def command_to_pb(record: CommandRecord) -> pb.command.Command:
    """A command record as a protobuf Command."""
    message = pb.command.Command(
        command_id=record.id,
        device_id=record.spec.device_id,
        idempotency_key=record.spec.idempotency_key,
        kind=str(record.spec.kind),
        state=int(record.state),
        progress=record.progress,
        progress_message=record.progress_message,
        result=[value_to_pb(v) for v in record.result],
    )
    if record.error_reason:
        message.error.reason, message.error.message = record.error_reason, record.error_message
    message.created.FromNanoseconds(record.created_ns)
    message.updated.FromNanoseconds(record.updated_ns)
    if record.cancelled_by:
        message.cancelled_by = record.cancelled_by
        message.cancelled.FromNanoseconds(record.cancelled_ns)
    return message
