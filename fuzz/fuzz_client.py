"""Fuzz target: Subscribe messages as the client SDK decodes them (bridge/client/_wire.py), straight
into numpy columns, and the Batch built on a catalog.

Contract: decode_batch() gives exactly the columns protobuf's own parser gives for the same bytes,
and raises DecodeError exactly when protobuf rejects them; split_update() raises DecodeError only;
Batch.decode() either builds a batch whose columns add up or raises DecodeError.
"""

from __future__ import annotations

from collections.abc import Iterator

from fuzz.engine import Cursor, instrumented, run

with instrumented(__name__):
    import numpy as np
    from google.protobuf.message import DecodeError as ProtobufDecodeError

    from linebridge.api import pb
    from linebridge.client._wire import Columns, decode_batch, split_update
    from linebridge.client.batch import Batch
    from linebridge.client.catalog import CatalogView, Entry
    from linebridge.client.devices import ValueType
    from linebridge.client.errors import DecodeError

# A catalog of aliases 0..7 with every value type, and one with aliases past the dense-table limit.
CATALOGS = (
    CatalogView([Entry(a, f"dev/s{a}", ValueType(a % 4 + 1)) for a in range(8)]),
    CatalogView([Entry(a, f"dev/big{a}", ValueType.DOUBLE) for a in (1, 300, 5 << 22, 2**32 - 1)]),
)


def expected_columns(message: pb.telemetry.SampleBatch) -> Columns:
    """The columns as protobuf's parser sees them."""
    return Columns(
        aliases=np.array(message.aliases, dtype=np.uint32),
        timestamps=np.array(message.timestamps, dtype=np.int64),
        doubles=np.array(message.double_values, dtype=np.float64),
        ints=np.array(message.int_values, dtype=np.int64),
        bools=np.array(message.bool_values, dtype=bool),
        strings=np.array(list(message.string_values), dtype=object),
        qualities=np.array(message.qualities, dtype=np.int32) if len(message.qualities) else None,
    )


def same(got: Columns, want: Columns) -> None:
    """Columns equal value for value (NaN payloads compared by bits)."""
    for name in Columns._fields:
        a, b = getattr(got, name), getattr(want, name)
        if a is None or b is None:
            assert a is None and b is None, f"{name}: {a!r} != {b!r}"
            continue
        assert a.size == b.size, f"{name}: {a.size} values, protobuf {b.size}"
        if name == "doubles":
            assert np.array_equal(a.view(np.uint64), b.view(np.uint64)), name
        else:
            assert np.array_equal(a.astype(b.dtype), b), f"{name}: {a!r} != {b!r}"


def check_batch(data: bytes) -> Columns | None:
    """Our decode against protobuf's on the same SampleBatch bytes."""
    try:
        want = expected_columns(pb.telemetry.SampleBatch.FromString(data))
    except ProtobufDecodeError:
        want = None
    try:
        got = decode_batch(data)
    except DecodeError:
        assert want is None, "DecodeError on bytes protobuf accepts"
        return None
    assert want is not None, "accepted bytes protobuf rejects"
    same(got, want)
    return got


def check_catalog(columns: Columns, catalog: CatalogView) -> None:
    """Batch.decode builds a consistent batch or raises DecodeError."""
    try:
        batch = Batch.decode(columns, catalog)
    except DecodeError:
        return
    assert len(batch) == batch.timestamps.size == batch.qualities.size
    for value_type in ValueType:
        if value_type:
            assert int(batch.of_type(value_type).sum()) == batch.column(value_type).size


def check_update(data: bytes) -> None:
    """split_update finds the member protobuf would, or says "?" for protobuf to judge."""
    try:
        kind, start, end = split_update(data)
    except DecodeError:
        return
    if kind in (None, "?"):
        return
    try:
        message = pb.telemetry.TelemetryUpdate.FromString(data)
    except ProtobufDecodeError:
        return  # the member's own bytes are invalid: its decoder says so
    assert message.WhichOneof("update") == kind
    member = getattr(message, kind)
    assert type(member).FromString(data[start:end]) == member


def one_input(data: bytes) -> None:
    """libFuzzer entry: a catalog choice, then the bytes as a SampleBatch and as a TelemetryUpdate."""
    cursor = Cursor(data)
    catalog = cursor.choice(CATALOGS)
    payload = cursor.rest()
    columns = check_batch(payload)
    if columns is not None:
        check_catalog(columns, catalog)
    check_update(payload)


def seeds() -> Iterator[bytes]:
    """Batches of every column, multi-byte aliases, negative ints, qualities, and a whole update."""
    batch = pb.telemetry.SampleBatch(
        aliases=[0, 1, 2, 3, 4],
        timestamps=[1, 2, 3, 4, 5],
        double_values=[1.5, -0.0],
        int_values=[-1],
        bool_values=[True],
        string_values=["é"],
        qualities=[1, 2, 3, 1, 1],
    )
    yield b"\x00" + batch.SerializeToString()
    yield (
        b"\x01"
        + pb.telemetry.SampleBatch(
            aliases=[300, 2**32 - 1], timestamps=[7, 8], double_values=[1.0, 2.0]
        ).SerializeToString()
    )
    yield b"\x00" + pb.telemetry.TelemetryUpdate(batch=batch).SerializeToString()


if __name__ == "__main__":
    run(one_input, seeds)
