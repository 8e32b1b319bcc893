"""Fuzz target: OPC UA values and browse names as a server sends them — DataValue bytes through
asyncua's binary decoder into `sample_of` and the subscription wire encoding, and browse-name lists
into `signal_path`.

Contract: a DataValue either fails asyncua's own decoding (its errors, logged by asyncua) or becomes a
sample whose value has the signal's column type, whose timestamp fits int64 ns (OPC UA DateTime 0 and
max are replaced and marked, never passed on), and which the wire encoder of Subscribe encodes. A
browse-name list always gives a usable signal path (non-empty segments).
"""

from __future__ import annotations

from collections.abc import Iterator

from fuzz.engine import Cursor, instrumented, run

with instrumented(__name__):
    from asyncua import ua
    from asyncua.common.utils import Buffer
    from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary

    from linebridge.api.convert import batch_update_bytes
    from linebridge.drivers.opcua.conversion import PY_TYPE, sample_of
    from linebridge.drivers.opcua.mapping import signal_path, valid_signal_path
    from linebridge.model import Quality, SampleBatch, ValueType

_INT64 = (-(2**63), 2**63 - 1)


def decode_data_value(data: bytes) -> ua.DataValue | None:
    """asyncua's decoding of DataValue bytes, or None when asyncua refuses them.

    Whatever asyncua's decoder raises (NotEnoughData, struct.error, or an IndexError for a Variant with
    an empty dimensions array, found by this target) is asyncua's side: its client protocol
    (UASocketProtocol._process_received_data) catches every exception of a received message and closes
    that connection, which the driver then reports as lost. The bridge's own code starts at `sample_of`.
    """
    try:
        return struct_from_binary(ua.DataValue, Buffer(data))
    except Exception:
        return None


def check_sample(value: ua.DataValue, value_type: ValueType) -> None:
    """A DataValue becomes a typed, int64-stamped sample that the Subscribe encoder takes."""
    decoded, stamp, quality, trusted = sample_of(value, value_type)
    assert type(decoded) is PY_TYPE[value_type], f"{type(decoded).__name__} in a {value_type.name} column"
    assert _INT64[0] <= stamp <= _INT64[1], f"timestamp {stamp} outside int64"
    assert quality in Quality
    assert trusted or quality is not Quality.GOOD, "a replaced timestamp must not stay GOOD"
    batch = SampleBatch("d", [1], [decoded], [stamp], [int(quality)], value_type)
    assert batch_update_bytes([batch], {1: value_type})


def check_names(names: list[str]) -> str:
    """Browse names give a usable signal path."""
    path = signal_path(names)
    assert valid_signal_path(path), f"{names!r} gave signal path {path!r}"
    return path


def one_input(data: bytes) -> None:
    """libFuzzer entry: a column type, browse names, then DataValue bytes."""
    cursor = Cursor(data)
    value_type = cursor.choice(list(ValueType))
    check_names([cursor.text() for _ in range(cursor.byte() % 6)])
    value = decode_data_value(cursor.rest())
    if value is not None:
        check_sample(value, value_type)


def seeds() -> Iterator[bytes]:
    """Good values with real timestamps, and the DateTime 0 and max edges."""
    edges = (ua.DateTime(2026, 1, 1), ua.DateTime(1601, 1, 1), ua.DateTime(9999, 12, 31, 23, 59, 59))
    for index, stamp in enumerate(edges):
        raw = struct_to_binary(ua.DataValue(ua.Variant(1.5, ua.VariantType.Double), SourceTimestamp=stamp))
        yield bytes([index % 4, 2, 4]) + b"Axes" + b"\x0cParameterSet" + raw


if __name__ == "__main__":
    run(one_input, seeds)
