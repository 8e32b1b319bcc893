"""Hand-written protobuf encoding of SampleBatch for uniform columns (the telemetry hot path).

Protobuf's Python API converts a list element by element when a repeated field is extended
(~100 ns a sample over three columns, measured with py-spy in bench/). For the common batch whose
values all have one fixed-width type, every column here is written with `struct.pack` (a C
loop, ~8 ns a double) or `bytes(...)`, and a timestamp column whose samples share one time (a
poll cycle, one RTDE packet) is one 8-byte pattern repeated. The output is ordinary protobuf wire format;
tests/test_wire.py checks it against the protobuf runtime's own encoding.
"""

from __future__ import annotations

import struct
import weakref
from collections import OrderedDict

from linebridge.api import pb
from linebridge.model import SampleBatch, ValueType
from linebridge.varint import varint

# Field tags (field number << 3 | wire type 2, length-delimited) of linebridge.v1.SampleBatch.
_TAG_ALIASES = b"\x0a"
_TAG_TIMESTAMPS = b"\x12"
_TAG_DOUBLES = b"\x1a"
_TAG_BOOLS = b"\x2a"
_TAG_QUALITIES = b"\x3a"
# TelemetryUpdate.batch is field 2, also length-delimited.
_TAG_UPDATE_BATCH = b"\x12"


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload if payload else b""


class _AliasCache:
    """Encoded alias columns, keyed by the identity of the list a driver reuses batch after batch."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._entries: OrderedDict[int, tuple[list[int], bytes]] = OrderedDict()

    def encode(self, aliases: list[int]) -> bytes:
        key = id(aliases)
        hit = self._entries.get(key)
        if hit is not None and hit[0] is aliases:
            self._entries.move_to_end(key)
            return hit[1]
        if all(a < 0x80 for a in aliases):  # one-byte varints: the bytes are the values
            encoded = _field(_TAG_ALIASES, bytes(aliases))
        else:
            encoded = pb.telemetry.SampleBatch(aliases=aliases).SerializeToString()
        self._entries[key] = (aliases, encoded)  # the reference keeps the id from being reused
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return encoded


_aliases = _AliasCache()


def encode_fast(batch: SampleBatch) -> bytes | None:
    """SampleBatch bytes for a uniform DOUBLE or BOOL batch; None when the general path is needed."""
    if batch.value_type not in (ValueType.DOUBLE, ValueType.BOOL):
        return None
    if batch.value_type is ValueType.DOUBLE:
        values = _field(_TAG_DOUBLES, struct.pack(f"<{len(batch.values)}d", *batch.values))
    else:
        values = _field(_TAG_BOOLS, bytes(batch.values))  # packed bools are one byte each
    qualities = b"" if batch.qualities is None else _field(_TAG_QUALITIES, bytes(batch.qualities))
    return b"".join(
        (
            _aliases.encode(batch.aliases),
            _field(_TAG_TIMESTAMPS, _timestamps(batch.timestamps)),
            values,
            qualities,
        )
    )


def _timestamps(stamps: list[int]) -> bytes:
    n = len(stamps)
    # list.count compares by identity first, so `[t] * n` (one poll, one packet) is checked in ~1 ns a sample.
    if n and stamps.count(stamps[0]) == n:
        return struct.pack("<q", stamps[0]) * n
    return struct.pack(f"<{n}q", *stamps)


class _Ref(weakref.ref):
    __slots__ = ("key",)


class UpdateCache:
    """Encoded TelemetryUpdate{batch} bytes of each live SampleBatch, shared by every subscriber sending it.

    The API layer's own memo beside the core's batches: an entry lives exactly as long as its batch
    (a weak reference drops it when the batch is collected), so a slow subscriber never misses.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[_Ref, bytes]] = {}
        self._forget = self._drop  # one bound method for every weak reference's callback

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, batch: SampleBatch) -> bytes | None:
        """The bytes stored for `batch`, or None."""
        hit = self._entries.get(id(batch))
        return hit[1] if hit is not None and hit[0]() is batch else None

    def put(self, batch: SampleBatch, data: bytes) -> bytes:
        """Keep `data` as the encoding of `batch` while the batch lives; returns `data`."""
        ref = _Ref(batch, self._forget)
        ref.key = id(batch)
        self._entries[ref.key] = (ref, data)
        return data

    def _drop(self, ref: _Ref) -> None:
        hit = self._entries.get(ref.key)
        if hit is not None and hit[0] is ref:
            del self._entries[ref.key]


def wrap_update(sample_batch: bytes) -> bytes:
    """TelemetryUpdate{batch: ...} around encoded SampleBatch bytes."""
    return _TAG_UPDATE_BATCH + varint(len(sample_batch)) + sample_batch
