"""SparkplugEncoder: columnar sample batches -> Sparkplug B DDATA bodies, births and deaths.

The hot path is per batch: a DDATA body is a run of `metrics` fields (Payload field 2), and for the
fixed-size value types (Double, Boolean) each metric is three byte strings looked up or packed by C
loops (`map`/`zip`/`b"".join`), with no Python code per sample. Other types and samples with a
quality go through a per-sample encoder. Payload `timestamp` and `seq` are appended at publish time
(protobuf lets fields come in any order), so a stored body can be sent in any later session.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain

from linebridge.model import Quality, SampleBatch, Value, ValueType
from linebridge.uplink.proto import sparkplug_b_pb2 as spb
from linebridge.uplink.retry import RepeatLog
from linebridge.varint import varint

log = logging.getLogger(__name__)

# Sparkplug 3.0, Payloads > Data Types: for our value types
DATATYPE = {
    ValueType.DOUBLE: spb.Double,
    ValueType.INT: spb.Int64,
    ValueType.BOOL: spb.Boolean,
    ValueType.STRING: spb.String,
}
VALUE_TYPE = {v: k for k, v in DATATYPE.items()}
# Sparkplug 3.0, Payloads > Quality Codes (the 'Quality' property): BAD 0, GOOD 192, STALE 500
QUALITY_CODE = {int(Quality.BAD): 0, int(Quality.UNCERTAIN): 500}
TRAILER_RESERVE = 24  # payload timestamp + seq appended at publish time

_MASK64 = (1 << 64) - 1
_DOUBLE = struct.Struct("<d").pack
# Millisecond timestamps from 1971 to 2109 are 6-byte varints: the fast path relies on it.
_TS_MIN, _TS_MAX = 1 << 35, 1 << 42
_BOOL = {True: b"\x70\x01", False: b"\x70\x00"}  # boolean_value (field 14, varint)


def _field(tag: int, data: bytes) -> bytes:
    """A length-delimited field: tag byte, length, data."""
    return bytes([tag]) + varint(len(data)) + data


def trailer(timestamp_ms: int, seq: int | None) -> bytes:
    """Payload.timestamp (field 1) and Payload.seq (field 3), appended to a stored body."""
    out = b"\x08" + varint(timestamp_ms)
    return out if seq is None else out + b"\x18" + varint(seq)


def now_ms() -> int:
    """Milliseconds since the epoch, the unit of every Sparkplug timestamp."""
    return time.time_ns() // 1_000_000


def _value_field(value_type: ValueType, value: Value) -> bytes:
    if value_type is ValueType.DOUBLE:
        return b"\x69" + _DOUBLE(float(value))  # double_value, field 13, fixed64
    if value_type is ValueType.BOOL:
        return _BOOL[bool(value)]
    if value_type is ValueType.INT:
        return b"\x58" + varint(int(value) & _MASK64)  # long_value, field 11: Int64 as two's complement
    return _field(0x7A, str(value).encode())  # string_value, field 15


def _quality_field(quality: int) -> bytes:
    """Metric.properties (field 9) = {keys: ["Quality"], values: [{type: Int32, int_value: code}]}."""
    value = b"\x08\x03\x18" + varint(QUALITY_CODE.get(quality, 500))
    return _field(0x4A, _field(0x0A, b"Quality") + _field(0x12, value))


@dataclass(slots=True)
class _MetricDef:
    """How one signal is encoded: its Sparkplug alias and type, and prebuilt byte prefixes."""

    alias: int
    value_type: ValueType
    head: bytes  # alias field (2), varint
    fast: tuple[bytes, bytes] | None  # (live, historical) prefix up to the timestamp tag, fixed sizes only


@dataclass(slots=True)
class Sealed:
    """A finished DDATA body ready for the outbox."""

    device_id: str
    body: bytes
    samples: int
    historical: bool


@dataclass(slots=True)
class _Open:
    """The DDATA body being filled for one device."""

    historical: bool
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    samples: int = 0


class SparkplugEncoder:
    """Turns batches into DDATA bodies of at most `max_payload` bytes (with the publish-time trailer)."""

    def __init__(self, max_payload: int) -> None:
        self.max_body = max_payload - TRAILER_RESERVE
        self._defs: dict[int, _MetricDef] = {}  # registry alias -> definition
        self._live: dict[int, bytes] = {}  # registry alias -> fast prefix (live)
        self._hist: dict[int, bytes] = {}  # registry alias -> fast prefix (historical)
        self._open: dict[str, _Open] = {}
        self.unknown_samples = 0
        self.oversized_samples = 0  # values that cannot fit in a payload: dropped, counted, logged
        self._log = RepeatLog(log)

    def define(self, registry_alias: int, sparkplug_alias: int, value_type: ValueType) -> None:
        """Remember how to encode a signal (called when its device is described)."""
        head = b"\x10" + varint(sparkplug_alias)
        fast = None
        if value_type in (ValueType.DOUBLE, ValueType.BOOL):
            value_size = 9 if value_type is ValueType.DOUBLE else 2
            # metric = 0x12 LEN | alias | [is_historical] | 0x18 ts(6 bytes) | value
            live = len(head) + 7 + value_size
            fast = (
                b"\x12" + varint(live) + head + b"\x18",
                b"\x12" + varint(live + 2) + head + b"\x28\x01\x18",
            )
            self._live[registry_alias], self._hist[registry_alias] = fast
        else:
            self._live.pop(registry_alias, None)
            self._hist.pop(registry_alias, None)
        self._defs[registry_alias] = _MetricDef(sparkplug_alias, value_type, head, fast)

    # -- DDATA -------------------------------------------------------------------------------
    def add(self, batch: SampleBatch, historical: bool) -> list[Sealed]:
        """Encode a batch into its device's open body; returns bodies that filled up."""
        sealed: list[Sealed] = []
        current = self._open.get(batch.device_id)
        if current is not None and current.historical != historical:
            sealed.append(self._seal(batch.device_id, current))
            current = None
        if current is None:
            current = self._open[batch.device_id] = _Open(historical)
        start, n = 0, len(batch.aliases)
        fast = self._fast_table(batch, historical)
        while start < n:
            room = self.max_body - current.size
            if fast is not None:
                table, widest = fast
                count = min(n - start, room // widest)
                if count <= 0 and current.samples:
                    sealed.append(self._seal(batch.device_id, current))
                    current = self._open[batch.device_id] = _Open(historical)
                    continue
                count = max(count, 1)
                chunk = self._encode_fast(batch, start, start + count, table)
            else:
                chunk, count = self._encode_slow(batch, start, room, historical)
                if not count:
                    if current.samples:
                        sealed.append(self._seal(batch.device_id, current))
                        current = self._open[batch.device_id] = _Open(historical)
                        continue
                    chunk, count = self._encode_slow(batch, start, 1 << 62, historical, limit=1)
                    if len(chunk) > self.max_body:  # not even alone in a payload: never sent
                        self._oversized(batch, start, len(chunk))
                        start += count
                        continue
            current.chunks.append(chunk)
            current.size += len(chunk)
            current.samples += count
            start += count
        return sealed

    def _oversized(self, batch: SampleBatch, index: int, size: int) -> None:
        self.oversized_samples += 1
        definition = self._defs.get(batch.aliases[index])
        self._log.warning(
            "uplink: dropped a value of %s (Sparkplug alias %s): %d bytes encoded, more than a whole "
            "payload may hold (max_payload_bytes)",
            batch.device_id,
            definition.alias if definition is not None else "?",
            size,
        )

    def _fast_table(self, batch: SampleBatch, historical: bool) -> tuple[dict[int, bytes], int] | None:
        if batch.qualities is not None or batch.value_type not in (ValueType.DOUBLE, ValueType.BOOL):
            return None
        table = self._hist if historical else self._live
        aliases = set(batch.aliases)
        if (
            not aliases <= table.keys()
            or min(batch.timestamps) < _TS_MIN * 1_000_000
            or max(batch.timestamps) >= _TS_MAX * 1_000_000
        ):
            return None
        widest = (
            max(map(len, map(table.__getitem__, aliases)))
            + 6
            + (9 if batch.value_type is ValueType.DOUBLE else 2)
        )
        return table, widest

    @staticmethod
    def _encode_fast(batch: SampleBatch, start: int, end: int, table: dict[int, bytes]) -> bytes:
        whole = start == 0 and end == len(batch.aliases)
        aliases = batch.aliases if whole else batch.aliases[start:end]
        stamps = batch.timestamps if whole else batch.timestamps[start:end]
        values = batch.values if whole else batch.values[start:end]
        if batch.value_type is ValueType.DOUBLE:
            times = {t: varint(t // 1_000_000) + b"\x69" for t in set(stamps)}
            encoded: Iterable[bytes] = map(_DOUBLE, values)
        else:
            times = {t: varint(t // 1_000_000) for t in set(stamps)}
            encoded = map(_BOOL.__getitem__, values)  # type: ignore[arg-type]
        return b"".join(
            chain.from_iterable(
                zip(map(table.__getitem__, aliases), map(times.__getitem__, stamps), encoded, strict=True)
            )
        )

    def _encode_slow(
        self, batch: SampleBatch, start: int, room: int, historical: bool, limit: int = 1 << 62
    ) -> tuple[bytes, int]:
        """Per-sample encoding (any type, qualities); stops before `room` bytes would be exceeded."""
        out: list[bytes] = []
        size = 0
        qualities = batch.qualities
        end = min(len(batch.aliases), start + limit)
        i = start
        while i < end:
            definition = self._defs.get(batch.aliases[i])
            if definition is None:  # a signal we were never told about: cannot be decoded by anyone
                self.unknown_samples += 1
                i += 1
                continue
            body = (
                definition.head
                + (b"\x28\x01" if historical else b"")
                + b"\x18"
                + varint(max(0, batch.timestamps[i]) // 1_000_000)
            )
            quality = qualities[i] if qualities is not None else Quality.GOOD
            if quality != Quality.GOOD:
                body += _quality_field(quality)
            try:
                body += _value_field(definition.value_type, batch.values[i])
            except (TypeError, ValueError):
                body += b"\x38\x01"  # is_null: a value the signal's type cannot hold
            metric = _field(0x12, body)
            if size + len(metric) > room:
                break
            out.append(metric)
            size += len(metric)
            i += 1
        return b"".join(out), i - start

    def seal(self, device_id: str) -> Sealed | None:
        """Close the device's open body (latency window over, device going away)."""
        current = self._open.get(device_id)
        return self._seal(device_id, current) if current is not None and current.samples else None

    def seal_all(self) -> list[Sealed]:
        """Close every open body (on stop)."""
        return [s for s in (self.seal(d) for d in list(self._open)) if s is not None]

    def seal_due(self, live: bool, historical: bool) -> list[Sealed]:
        """Close the open live bodies, the historical ones, or both (the flush timer's choice)."""
        due = [d for d, o in self._open.items() if o.samples and (historical if o.historical else live)]
        return [self._seal(d, self._open[d]) for d in due]

    def _seal(self, device_id: str, current: _Open) -> Sealed:
        del self._open[device_id]
        return Sealed(device_id, b"".join(current.chunks), current.samples, current.historical)

    # -- births, deaths, replay --------------------------------------------------------------
    @staticmethod
    def birth(
        metrics: Sequence[tuple[str, int, ValueType, Value | None, int]],
        timestamp_ms: int,
        extra: Sequence[spb.Payload.Metric] = (),
    ) -> bytes:
        """NBIRTH/DBIRTH body: every metric with name, alias, datatype, timestamp and current value."""
        payload = spb.Payload()
        payload.metrics.extend(extra)
        for name, alias, value_type, value, stamp_ms in metrics:
            metric = payload.metrics.add(
                name=name, alias=alias, timestamp=stamp_ms or timestamp_ms, datatype=DATATYPE[value_type]
            )
            set_value(metric, value_type, value)
        return payload.SerializeToString()

    @staticmethod
    def node_data(alias: int, text: str, timestamp_ms: int) -> bytes:
        """An NDATA body of one String node metric by alias (the publisher adds timestamp and seq)."""
        payload = spb.Payload()
        payload.metrics.add(alias=alias, timestamp=timestamp_ms, datatype=spb.String, string_value=text)
        return payload.SerializeToString()

    def birth_within(
        self, metrics: Sequence[tuple[str, int, ValueType, Value | None, int]], timestamp_ms: int
    ) -> bytes | None:
        """A birth body within the payload cap: the largest values are sent as null (counted) until it
        fits; None when even all-null metrics do not fit."""
        metrics = list(metrics)
        body = self.birth(metrics, timestamp_ms)
        while len(body) > self.max_body:
            sizes = [len(str(m[3])) if m[3] is not None else -1 for m in metrics]
            largest = max(range(len(metrics)), key=sizes.__getitem__, default=None)
            if largest is None or sizes[largest] < 0:
                return None
            name, alias, value_type, _, stamp = metrics[largest]
            metrics[largest] = (name, alias, value_type, None, stamp)
            self.oversized_samples += 1
            self._log.warning(
                "uplink: a birth certificate sends %s as null: its value does not fit in max_payload_bytes",
                name,
            )
            body = self.birth(metrics, timestamp_ms)
        return body

    @staticmethod
    def death(bdseq: int, timestamp_ms: int) -> bytes:
        """NDEATH: the bdSeq metric only, no seq (Sparkplug 3.0, Payloads > NDEATH)."""
        payload = spb.Payload(timestamp=timestamp_ms)
        payload.metrics.add(name="bdSeq", timestamp=timestamp_ms, datatype=spb.Int64, long_value=bdseq)
        return payload.SerializeToString()

    @staticmethod
    def as_historical(body: bytes) -> bytes:
        """A body first encoded as live, re-sent after a reconnect: flag every metric historical."""
        payload = spb.Payload.FromString(body)
        for metric in payload.metrics:
            metric.is_historical = True
        return payload.SerializeToString()


def set_value(metric: spb.Payload.Metric, value_type: ValueType, value: Value | None) -> None:
    """Put a value into the oneof field its datatype uses (or mark it null)."""
    if value is None:
        metric.is_null = True
    elif value_type is ValueType.DOUBLE:
        metric.double_value = float(value)
    elif value_type is ValueType.INT:
        metric.long_value = int(value) & _MASK64
    elif value_type is ValueType.BOOL:
        metric.boolean_value = bool(value)
    else:
        metric.string_value = str(value)


def get_value(metric: spb.Payload.Metric, value_type: ValueType) -> Value:
    """The value of a command metric, which must use the field its datatype calls for."""
    expected = {
        ValueType.DOUBLE: "double_value",
        ValueType.INT: "long_value",
        ValueType.BOOL: "boolean_value",
        ValueType.STRING: "string_value",
    }[value_type]
    present = metric.WhichOneof("value")
    if present != expected or metric.is_null:
        raise ValueError(
            f"expected {spb.DataType.Name(DATATYPE[value_type])} in {expected}, got "
            f"{'null' if metric.is_null else present or 'no value'}"
        )
    value = getattr(metric, expected)
    if isinstance(value, bytes):  # Sparkplug's .proto is proto2: upb hands back a non-UTF-8 string as bytes
        raise ValueError(f"{expected} is not UTF-8 text")
    if value_type is ValueType.INT and value >= 1 << 63:
        value -= 1 << 64
    return value  # type: ignore[no-any-return]
