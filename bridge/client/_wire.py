"""Decoding of Subscribe messages straight into numpy columns (the SDK's hot path).

A `SampleBatch` is a handful of packed repeated fields. Protobuf's Python API would hand each
value out as a Python object; here each packed field's bytes become a numpy array directly:
`numpy.frombuffer` for the fixed-width ones (timestamps, doubles), a vectorized base-128 decode
for the varint ones (aliases, sint64 ints, bools, qualities; one-byte varints are their own bytes).
Anything unusual for a bridge to send (unknown fields, unpacked repeated scalars, a field split
in several chunks) goes through protobuf's own parser instead, so the result is always what
protobuf would decode. bench/scenarios/client_decode.py measures both; fuzz/fuzz_client.py
checks that they agree.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from google.protobuf.message import DecodeError as ProtobufDecodeError

from linebridge.api import pb
from linebridge.client.errors import DecodeError

# Wire-type-2 (length-delimited) tags of SampleBatch fields 1..7 -> field number.
_PACKED_TAGS = {0x0A: 1, 0x12: 2, 0x1A: 3, 0x22: 4, 0x2A: 5, 0x32: 6, 0x3A: 7}
# TelemetryUpdate's oneof members, all messages: tag -> name.
UPDATE_TAGS = {0x0A: "catalog", 0x12: "batch", 0x1A: "sync", 0x22: "dropped", 0x2A: "heartbeat"}
_EMPTY = memoryview(b"")
_U64 = np.uint64


class Columns(NamedTuple):
    """A SampleBatch as numpy arrays; `qualities` is None when the batch sent none (all GOOD)."""

    aliases: np.ndarray  # uint8 when every alias is < 128 (the common case), else uint32
    timestamps: np.ndarray  # int64 ns since the Unix epoch
    doubles: np.ndarray  # float64
    ints: np.ndarray  # int64
    bools: np.ndarray  # bool
    strings: np.ndarray  # object (str)
    qualities: np.ndarray | None  # int32


def read_varint(data: memoryview, pos: int, end: int) -> tuple[int, int]:
    """One varint at `pos`; returns (value, position after it)."""
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise DecodeError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def varints(raw: np.ndarray) -> np.ndarray:
    """A packed run of varints (uint8 array) as uint64 values, in a few vectorized passes."""
    more = raw >= 0x80
    if not more.any():
        return raw.astype(_U64)
    ends = np.flatnonzero(~more)
    if ends.size == 0 or ends[-1] != raw.size - 1:
        raise DecodeError("a packed varint field ends inside a varint")
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    longest = int(lengths.max())
    if longest > 10:
        raise DecodeError("a varint longer than 10 bytes")
    low = (raw & 0x7F).astype(_U64)
    out = low[starts]
    for k in range(1, longest):
        sel = np.flatnonzero(lengths > k)
        out[sel] |= low[starts[sel] + k] << _U64(7 * k)
    return out


def _small(raw: np.ndarray) -> np.ndarray:
    """Packed varints that are all one byte stay uint8 (no copy); others decode to uint64."""
    return raw if raw.size == 0 or int(raw.max()) < 0x80 else varints(raw)


def _zigzag(values: np.ndarray) -> np.ndarray:
    unsigned = values.astype(_U64, copy=False)
    return (unsigned >> _U64(1)).view(np.int64) ^ -(unsigned & _U64(1)).view(np.int64)


def _fixed(data: memoryview, span: tuple[int, int] | None, dtype: str) -> np.ndarray:
    if span is None:
        return np.empty(0, dtype)
    start, end = span
    if (end - start) % 8:
        raise DecodeError("a packed fixed64 field's length is not a multiple of 8")
    return np.frombuffer(data, dtype, (end - start) // 8, start)


def _bytes(data: memoryview, span: tuple[int, int] | None) -> np.ndarray:
    if span is None:
        return np.empty(0, np.uint8)
    return np.frombuffer(data, np.uint8, span[1] - span[0], span[0])


def _fields(data: memoryview, pos: int, end: int) -> tuple[dict[int, tuple[int, int]], list[str]] | None:
    """Spans of the packed fields and the strings; None when protobuf's parser must take over."""
    spans: dict[int, tuple[int, int]] = {}
    strings: list[str] = []
    while pos < end:
        field = _PACKED_TAGS.get(data[pos])
        if field is None:
            return None
        length, pos = read_varint(data, pos + 1, end)
        stop = pos + length
        if stop > end:
            raise DecodeError("a SampleBatch field runs past the end of the message")
        if field == 6:
            try:
                strings.append(str(data[pos:stop], "utf-8"))
            except UnicodeDecodeError:
                raise DecodeError("a string value is not valid UTF-8") from None
        elif field in spans:
            return None
        else:
            spans[field] = (pos, stop)
        pos = stop
    return spans, strings


def decode_batch(data: bytes | memoryview, start: int = 0, end: int | None = None) -> Columns:
    """The columns of the SampleBatch encoded in data[start:end]."""
    view = memoryview(data)
    end = len(view) if end is None else end
    found = _fields(view, start, end)
    if found is None:
        return _slow(view[start:end])
    spans, strings = found
    qualities = spans.get(7)
    if qualities is not None and qualities[0] == qualities[1]:
        qualities = None  # an empty packed field is no field: every sample GOOD
    return Columns(
        aliases=_aliases(_small(_bytes(view, spans.get(1)))),
        timestamps=_fixed(view, spans.get(2), "<i8"),
        doubles=_fixed(view, spans.get(3), "<f8"),
        ints=_zigzag(varints(_bytes(view, spans.get(4)))),
        bools=_small(_bytes(view, spans.get(5))).astype(bool),
        strings=np.array(strings, dtype=object),
        qualities=None if qualities is None else _enums(_small(_bytes(view, qualities))),
    )


def _aliases(values: np.ndarray) -> np.ndarray:
    return values if values.dtype == np.uint8 else values.astype(np.uint32)


def _enums(values: np.ndarray) -> np.ndarray:
    """Open proto3 enums are int32: the low 32 bits, signed."""
    return values.astype(np.uint32).view(np.int32) if values.dtype != np.uint8 else values.astype(np.int32)


def _slow(data: memoryview) -> Columns:
    """The same columns through protobuf's parser (unknown fields, unpacked or split fields)."""
    try:
        message = pb.telemetry.SampleBatch.FromString(bytes(data))
    except ProtobufDecodeError as exc:
        raise DecodeError(f"not a SampleBatch: {exc}") from None
    return Columns(
        aliases=_aliases(np.array(message.aliases, dtype=np.uint32)),
        timestamps=np.array(message.timestamps, dtype=np.int64),
        doubles=np.array(message.double_values, dtype=np.float64),
        ints=np.array(message.int_values, dtype=np.int64),
        bools=np.array(message.bool_values, dtype=bool),
        strings=np.array(list(message.string_values), dtype=object),
        qualities=np.array(message.qualities, dtype=np.int32) if len(message.qualities) else None,
    )


def split_update(data: bytes | memoryview) -> tuple[str | None, int, int]:
    """Which member of a TelemetryUpdate `data` holds and where its bytes are. "?" when the message is
    unusual (another wire type, several members, a member twice: protobuf merges those), so the
    caller parses it with protobuf; None for a message without a known member."""
    view = memoryview(data)
    kind: str | None = None
    start = end = pos = 0
    while pos < len(view):
        tag, pos = read_varint(view, pos, len(view))
        if tag & 7 != 2:
            return "?", 0, len(view)
        length, pos = read_varint(view, pos, len(view))
        if pos + length > len(view):
            raise DecodeError("a TelemetryUpdate field runs past the end of the message")
        name = UPDATE_TAGS.get(tag)
        if name is not None:
            if kind is not None:
                return "?", 0, len(view)
            kind, start, end = name, pos, pos + length
        pos += length
    return kind, start, end


def parse_update(data: bytes) -> pb.telemetry.TelemetryUpdate:
    """The whole TelemetryUpdate through protobuf (catalogs, notices: small and rare)."""
    try:
        return pb.telemetry.TelemetryUpdate.FromString(data)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"not a TelemetryUpdate: {exc}") from None
