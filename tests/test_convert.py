"""Wire encoding of batches: shared per-batch encodings concatenate into one correct message."""

from __future__ import annotations

import gc

from linebridge.api import convert, pb
from linebridge.api.convert import ENCODED, batch_update_bytes
from linebridge.api.wire import UpdateCache
from linebridge.client.raw import CatalogDecoder
from linebridge.model import Quality, SampleBatch, ValueType

TYPES = {1: ValueType.DOUBLE, 2: ValueType.INT, 3: ValueType.BOOL, 4: ValueType.STRING, 5: ValueType.DOUBLE}


def decoder() -> CatalogDecoder:
    d = CatalogDecoder()
    d.apply(
        pb.telemetry.Catalog(
            entries=[
                pb.telemetry.CatalogEntry(alias=a, path=f"dev/s{a}", value_type=int(t))
                for a, t in TYPES.items()
            ]
        )
    )
    return d


def decode(data: bytes) -> list[tuple[str, object, int, int]]:
    update = pb.telemetry.TelemetryUpdate.FromString(data)
    assert update.WhichOneof("update") == "batch"
    return [(s.path, s.value, s.timestamp_ns, s.quality) for s in decoder().decode(update.batch)]


def test_uniform_and_mixed_batches_concatenate():
    uniform = SampleBatch("dev", [1, 5], [1.5, 2.5], [10, 11], value_type=ValueType.DOUBLE)
    mixed = SampleBatch("dev", [2, 3, 4, 1], [7, True, "x", 3.5], [12, 12, 12, 13])
    data = batch_update_bytes([uniform, mixed], TYPES)
    cached = ENCODED.get(uniform), ENCODED.get(mixed)
    assert None not in cached  # kept for the next subscriber
    assert data == cached[0] + cached[1]
    assert decode(data) == [
        ("dev/s1", 1.5, 10, 1),
        ("dev/s5", 2.5, 11, 1),
        ("dev/s2", 7, 12, 1),
        ("dev/s3", True, 12, 1),
        ("dev/s4", "x", 12, 1),
        ("dev/s1", 3.5, 13, 1),
    ]


def test_qualities_survive_mixed_groups():
    good = SampleBatch("dev", [1], [1.0], [1], value_type=ValueType.DOUBLE)
    bad = SampleBatch(
        "dev",
        [5, 1],
        [0.0, 2.0],
        [2, 3],
        qualities=[int(Quality.BAD), int(Quality.GOOD)],
        value_type=ValueType.DOUBLE,
    )
    data = batch_update_bytes([good, bad], TYPES)
    assert [q for *_, q in decode(data)] == [1, 3, 1]
    both_bad = batch_update_bytes([bad, bad], TYPES)
    assert [q for *_, q in decode(both_bad)] == [3, 1, 3, 1]


def test_a_batch_is_encoded_once_for_every_subscriber(monkeypatch):
    batch = SampleBatch("dev", [1, 5], [1.5, 2.5], [10, 11], value_type=ValueType.DOUBLE)
    first = batch_update_bytes([batch], TYPES)
    calls = []
    monkeypatch.setattr(convert, "encode_fast", lambda b: calls.append(b))
    assert batch_update_bytes([batch], TYPES) == first  # the second subscriber reuses the bytes
    assert calls == []


def test_the_encoding_goes_with_its_batch():
    cache = UpdateCache()
    batch = SampleBatch("dev", [1], [1.0], [1], value_type=ValueType.DOUBLE)
    cache.put(batch, b"x")
    other = SampleBatch("dev", [1], [1.0], [1], value_type=ValueType.DOUBLE)  # equal, not the same batch
    assert (cache.get(batch), cache.get(other), len(cache)) == (b"x", None, 1)
    del batch
    gc.collect()
    assert len(cache) == 0
