"""Batch -> pyarrow Table and pandas DataFrame (needs the `data` extra: pip install 'linebridge[data]')."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from linebridge.client.devices import Quality, ValueType

if TYPE_CHECKING:
    import pandas
    import pyarrow

    from linebridge.client.batch import Batch

_NAMES = {
    ValueType.DOUBLE: "double",
    ValueType.INT: "int",
    ValueType.BOOL: "bool",
    ValueType.STRING: "string",
}
_QUALITIES = [q.name for q in Quality]


def _need(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(
            f"{module} is needed for tables; install the data extra: pip install 'linebridge[data]'"
        ) from None


def present_types(batch: Batch) -> list[ValueType]:
    """The value types the batch has values of."""
    return [t for t in ValueType if t and batch.column(t).size]


def to_arrow(batch: Batch) -> pyarrow.Table:
    """Long form: `timestamp` (timestamp[ns, UTC]), `path` (dictionary), `value` when the batch has one
    value type (else `value_double`, `value_int`, ... with nulls), `quality` (dictionary of names)."""
    pa = _need("pyarrow")
    columns: dict[str, Any] = {
        "timestamp": pa.array(batch.timestamps, type=pa.timestamp("ns", tz="UTC")),
        "path": pa.DictionaryArray.from_arrays(
            pa.array(batch.index, type=pa.int32()), pa.array(batch.catalog.paths.tolist(), pa.string())
        ),
    }
    types = present_types(batch)
    if len(types) <= 1:
        column = batch.column(types[0]) if types else np.empty(0, np.float64)
        columns["value"] = pa.array(column, type=pa.string() if column.dtype == object else None)
    else:
        for value_type in types:
            columns[f"value_{_NAMES[value_type]}"] = _spread(pa, batch, value_type)
    qualities = batch.qualities
    known = (qualities >= 0) & (qualities < len(_QUALITIES))
    columns["quality"] = pa.DictionaryArray.from_arrays(
        pa.array(np.where(known, qualities, 0).astype(np.int32), mask=~known), pa.array(_QUALITIES)
    )
    return pa.table(columns)


def _spread(pa: Any, batch: Batch, value_type: ValueType) -> Any:
    """One type's column at full length, null where a sample has another type."""
    mine = batch.of_type(value_type)
    column = batch.column(value_type)
    full = np.empty(len(batch), dtype=column.dtype)
    if column.dtype == object:
        full[:] = None
    else:
        full[:] = 0
    full[mine] = column
    return pa.array(full, mask=~mine, type=pa.string() if column.dtype == object else None)


def to_pandas_long(batch: Batch) -> pandas.DataFrame:
    """One row per sample; `timestamp` is datetime64[ns, UTC], `path` and `quality` categorical."""
    pd = _need("pandas")
    table = to_arrow(batch)
    if len(present_types(batch)) <= 1:
        return table.to_pandas()
    pa = _need("pyarrow")
    nullable = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    return table.to_pandas(types_mapper=nullable.get)


def to_pandas_wide(batch: Batch) -> pandas.DataFrame:
    """Index `timestamp` (datetime64[ns, UTC]), one column per signal in its own dtype (float64, Int64,
    boolean, object), missing where a signal has no sample at that time; the last sample wins."""
    pd = _need("pandas")
    series = []
    for value_type in present_types(batch):
        mine = batch.of_type(value_type)
        entries, stamps, values = batch.index[mine], batch.timestamps[mine], batch.column(value_type)
        order = np.argsort(entries, kind="stable")
        entries, stamps, values = entries[order], stamps[order], values[order]
        firsts = np.flatnonzero(np.r_[True, entries[1:] != entries[:-1]])
        dtype = {ValueType.INT: "Int64", ValueType.BOOL: "boolean"}.get(value_type)
        for group in np.split(np.arange(entries.size), firsts[1:]):
            index = pd.DatetimeIndex(pd.to_datetime(stamps[group], unit="ns", utc=True), name="timestamp")
            item = pd.Series(
                values[group], index=index, name=batch.catalog.paths[entries[group[0]]], dtype=dtype
            )
            series.append(item[~item.index.duplicated(keep="last")])
    if not series:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="timestamp"))
    frame = pd.concat(series, axis=1).sort_index()
    frame.index.name = "timestamp"
    return frame[sorted(frame.columns)]
