"""Batch columns, tables and DataFrames: dtypes, ns UTC timestamps, long and wide form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from linebridge.api import pb
from linebridge.client import AsyncClient, Batch, Sample, ValueType
from linebridge.client._wire import decode_batch
from linebridge.client.catalog import CatalogView, Entry
from linebridge.model import DeviceState
from tests.conftest import sim_device, wait_for_state

T0 = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z
CATALOG = CatalogView(
    [
        Entry(1, "cell/speed", ValueType.DOUBLE, "mm/s"),
        Entry(2, "cell/count", ValueType.INT),
        Entry(3, "cell/on", ValueType.BOOL),
        Entry(4, "cell/mode", ValueType.STRING),
    ]
)


def mixed() -> Batch:
    """Six samples over four types: speed twice, count twice, on, mode; one BAD quality."""
    message = pb.telemetry.SampleBatch(
        aliases=[1, 2, 3, 1, 4, 2],
        timestamps=[T0, T0, T0, T0 + 1000, T0 + 1000, T0 + 2000],
        double_values=[1.5, 2.5],
        int_values=[-7, 9],
        bool_values=[True],
        string_values=["auto"],
        qualities=[1, 1, 1, 3, 1, 1],
    )
    return Batch.decode(decode_batch(message.SerializeToString()), CATALOG)


def test_columns_and_per_sample_iteration():
    batch = mixed()
    assert batch.paths.tolist() == [
        "cell/speed",
        "cell/count",
        "cell/on",
        "cell/speed",
        "cell/mode",
        "cell/count",
    ]
    assert batch.doubles.tolist() == [1.5, 2.5] and batch.ints.tolist() == [-7, 9]
    assert batch.values().tolist() == [1.5, -7, True, 2.5, "auto", 9]
    ts, values = batch.series("cell/count")
    assert ts.tolist() == [T0, T0 + 2000] and values.tolist() == [-7, 9]
    assert list(batch)[3] == Sample("cell/speed", 2.5, T0 + 1000, 3)
    assert batch.latest()["cell/count"].value == 9
    assert len(batch.select(["cell/s*"])) == 2 and len(batch.take(batch.qualities == 3)) == 1


def test_arrow_long_form_has_typed_nullable_columns():
    table = mixed().to_arrow()
    assert table.schema.field("timestamp").type == pa.timestamp("ns", tz="UTC")
    assert pa.types.is_dictionary(table.schema.field("path").type)
    assert table.column("value_double").to_pylist() == [1.5, None, None, 2.5, None, None]
    assert table.column("value_int").type == pa.int64() and table.column("value_int").null_count == 4
    assert table.column("quality").to_pylist()[3] == "BAD"


def test_pandas_long_and_wide_dtypes():
    long = mixed().to_pandas()
    assert str(long["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert long["timestamp"].iloc[0] == pd.Timestamp(T0, unit="ns", tz="UTC")
    assert isinstance(long["path"].dtype, pd.CategoricalDtype)
    assert long["value_int"].dtype == pd.Int64Dtype() and long["value_bool"].dtype == pd.BooleanDtype()
    assert long["value_double"].dtype == np.float64
    wide = mixed().to_pandas(wide=True)
    assert str(wide.index.dtype) == "datetime64[ns, UTC]" and wide.index.name == "timestamp"
    assert list(wide.columns) == ["cell/count", "cell/mode", "cell/on", "cell/speed"]
    assert wide["cell/speed"].dtype == np.float64 and wide["cell/count"].dtype == pd.Int64Dtype()
    assert wide["cell/on"].dtype == pd.BooleanDtype()
    assert wide.loc[pd.Timestamp(T0 + 2000, unit="ns", tz="UTC"), "cell/count"] == 9
    assert pd.isna(wide.loc[pd.Timestamp(T0 + 2000, unit="ns", tz="UTC"), "cell/speed"])


def test_single_type_long_form_has_one_value_column():
    message = pb.telemetry.SampleBatch(aliases=[1, 1], timestamps=[T0, T0 + 1], double_values=[0.5, 0.25])
    frame = Batch.decode(decode_batch(message.SerializeToString()), CATALOG).to_pandas()
    assert (
        list(frame.columns) == ["timestamp", "path", "value", "quality"]
        and frame["value"].dtype == np.float64
    )
    assert Batch.empty().to_pandas(wide=True).empty and len(Batch.empty().to_arrow()) == 0


def test_concat_merges_catalogs_by_path():
    other = CatalogView([Entry(9, "cell/speed", ValueType.DOUBLE), Entry(10, "cell/extra", ValueType.DOUBLE)])
    second = Batch.decode(
        decode_batch(
            pb.telemetry.SampleBatch(
                aliases=[10, 9], timestamps=[1, 2], double_values=[4.0, 5.0]
            ).SerializeToString()
        ),
        other,
    )
    both = Batch.concat([mixed(), second])
    assert len(both) == 8 and both.paths.tolist()[-2:] == ["cell/extra", "cell/speed"]
    assert both.series("cell/speed")[1].tolist() == [1.5, 2.5, 5.0]


@pytest.mark.parametrize("wide", [False, True])
async def test_dataframe_from_a_real_bridge(start_bridge, wide):
    app = await start_bridge([sim_device("df-1", signals=3, rate_hz=200)])
    await wait_for_state(app, "df-1", DeviceState.ONLINE)
    async with AsyncClient(app.api_address) as client:
        subscription = client.subscribe(["df-1/values/*"])
        async for _ in subscription:
            if len(subscription.history()) >= 60:
                break
        frame = subscription.history().to_pandas(wide=wide)
    stamps = frame.index if wide else frame["timestamp"]
    assert str(stamps.dtype) == "datetime64[ns, UTC]"
    assert (stamps > pd.Timestamp("2020-01-01", tz="UTC")).all()
    if wide:
        assert list(frame.columns) == [f"df-1/values/{i}" for i in range(3)]
        assert all(frame[c].dtype == np.float64 for c in frame.columns)
    else:
        assert frame["value"].dtype == np.float64 and len(frame) >= 60
        assert set(frame["path"].cat.categories) == {f"df-1/values/{i}" for i in range(3)}


def test_the_sdk_imports_no_server_module():
    import json
    import subprocess
    import sys

    code = "import json, sys, linebridge.client; print(json.dumps([m for m in sys.modules if 'linebridge.' in m]))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = {
        m for m in json.loads(done.stdout) if not m.startswith(("linebridge.client", "linebridge.api.gen"))
    }
    assert loaded == {"linebridge.api", "linebridge.api.pb", "linebridge.errors"}, loaded


def test_numpy_scalars_become_typed_values():
    from linebridge.client._values import value_message

    assert value_message(np.float32(1.5)).double_value == 1.5
    assert value_message(np.int64(-3)).int_value == -3
    assert value_message(np.bool_(True)).WhichOneof("kind") == "bool_value"
    assert value_message("x").string_value == "x"
