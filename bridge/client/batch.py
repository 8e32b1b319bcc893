"""Columnar telemetry: a `Batch` holds samples as numpy arrays, one value column per type."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from linebridge.client._wire import Columns
from linebridge.client.catalog import CatalogView, Entry, merged
from linebridge.client.devices import Quality, ValueType
from linebridge.client.errors import DecodeError

if TYPE_CHECKING:
    import pandas
    import pyarrow

Value = float | int | bool | str
_NO_QUALITY = np.empty(0, np.int32)


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample, for small uses (iterating a Batch builds these; the columns do not)."""

    path: str
    value: Value
    timestamp_ns: int
    quality: int = Quality.GOOD


class Batch:
    """Samples in columns. Sample i is `paths[i]` at `timestamps[i]` (ns since the epoch, UTC); its value
    is the next unread element of the column of its value type (`doubles`, `ints`, `bools`,
    `strings`), so each column holds its type's values in sample order. Arrays decoded from the wire
    are read-only views of the received message."""

    __slots__ = ("catalog", "index", "timestamps", "doubles", "ints", "bools", "strings", "_qualities")

    def __init__(
        self,
        catalog: CatalogView,
        index: np.ndarray,
        timestamps: np.ndarray,
        doubles: np.ndarray,
        ints: np.ndarray,
        bools: np.ndarray,
        strings: np.ndarray,
        qualities: np.ndarray | None = None,
    ) -> None:
        self.catalog, self.index, self.timestamps = catalog, index, timestamps
        self.doubles, self.ints, self.bools, self.strings = doubles, ints, bools, strings
        self._qualities = qualities

    # -- building ---------------------------------------------------------------------------------
    @classmethod
    def decode(cls, columns: Columns, catalog: CatalogView) -> Batch:
        """A Batch from decoded columns; checks that the columns add up (DecodeError otherwise)."""
        n = columns.aliases.size
        try:
            index = catalog.index(columns.aliases)
        except KeyError as exc:
            raise DecodeError(str(exc.args[0])) from None
        if columns.timestamps.size != n or (columns.qualities is not None and columns.qualities.size != n):
            raise DecodeError(f"a batch of {n} samples has {columns.timestamps.size} timestamps")
        sizes = (columns.doubles.size, columns.ints.size, columns.bools.size, columns.strings.size)
        if catalog.only_type is not None:
            expected = [0, 0, 0, 0]
            expected[catalog.only_type - 1] = n
        else:
            expected = np.bincount(catalog.types[index], minlength=5)[1:5].tolist()
        if list(sizes) != expected:
            raise DecodeError(f"a batch's value columns hold {sizes} values; its samples need {expected}")
        c = columns
        return cls(catalog, index, c.timestamps, c.doubles, c.ints, c.bools, c.strings, c.qualities)

    @classmethod
    def empty(cls, catalog: CatalogView | None = None) -> Batch:
        """A batch without samples."""
        return cls(
            catalog or CatalogView([]),
            np.empty(0, np.int32),
            np.empty(0, np.int64),
            np.empty(0, np.float64),
            np.empty(0, np.int64),
            np.empty(0, bool),
            np.empty(0, object),
        )

    @classmethod
    def from_samples(
        cls, samples: Sequence[Sample], types: dict[str, ValueType], units: dict[str, str] | None = None
    ) -> Batch:
        """A Batch from Sample objects (small amounts: reads). `types` gives each path's value type and
        becomes the catalog (paths without a sample included); `units` their units."""
        units = units or {}
        view = CatalogView([Entry(i, p, t, units.get(p, "")) for i, (p, t) in enumerate(types.items())])
        index = np.array([view.by_path[s.path] for s in samples], dtype=np.int32)
        columns: dict[ValueType, list[Value]] = {t: [] for t in ValueType if t}
        for s in samples:
            columns[types[s.path]].append(s.value)
        return cls(
            view,
            index,
            np.array([s.timestamp_ns for s in samples], dtype=np.int64),
            np.array(columns[ValueType.DOUBLE], dtype=np.float64),
            np.array(columns[ValueType.INT], dtype=np.int64),
            np.array(columns[ValueType.BOOL], dtype=bool),
            np.array(columns[ValueType.STRING], dtype=object),
            np.array([s.quality for s in samples], dtype=np.int32),
        )

    @classmethod
    def concat(cls, batches: Sequence[Batch]) -> Batch:
        """One batch with the samples of `batches` in order (catalogs merged by path)."""
        if not batches:
            return cls.empty()
        views = list({id(b.catalog): b.catalog for b in batches}.values())
        union, maps = merged(views)
        remap = {id(v): m for v, m in zip(views, maps, strict=True)}
        return cls(
            union,
            np.concatenate([remap[id(b.catalog)][b.index] for b in batches]).astype(np.int32),
            np.concatenate([b.timestamps for b in batches]),
            np.concatenate([b.doubles for b in batches]),
            np.concatenate([b.ints for b in batches]),
            np.concatenate([b.bools for b in batches]),
            np.concatenate([b.strings for b in batches]),
            np.concatenate([b.qualities for b in batches]),
        )

    # -- columns ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.index.size)

    def __repr__(self) -> str:
        return f"<Batch {len(self)} samples of {np.unique(self.index).size} signals>"

    @property
    def paths(self) -> np.ndarray:
        """Full path of each sample (object array of the catalog's strings, no new string per sample)."""
        return self.catalog.paths[self.index]

    @property
    def value_types(self) -> np.ndarray:
        """ValueType number of each sample (uint8)."""
        return self.catalog.types[self.index]

    @property
    def qualities(self) -> np.ndarray:
        """Quality number of each sample (int32); all GOOD when the bridge sent none."""
        if self._qualities is None:
            self._qualities = np.full(len(self), Quality.GOOD, dtype=np.int32)
        return self._qualities

    def column(self, value_type: ValueType) -> np.ndarray:
        """The value column of one type."""
        return (self.doubles, self.ints, self.bools, self.strings)[ValueType(value_type) - 1]

    def of_type(self, value_type: ValueType) -> np.ndarray:
        """Mask of the samples whose value is in the column of `value_type`."""
        if self.catalog.only_type is not None:
            return np.full(len(self), self.catalog.only_type == value_type)
        return self.value_types == value_type

    def series(self, path: str) -> tuple[np.ndarray, np.ndarray]:
        """(timestamps, values) of one signal; empty arrays when the batch has none of it."""
        entry = self.catalog.by_path.get(path)
        if entry is None:
            return np.empty(0, np.int64), np.empty(0)
        value_type = ValueType(int(self.catalog.types[entry]))
        in_column = self.of_type(value_type)
        mine = self.index[in_column] == entry
        return self.timestamps[in_column][mine], self.column(value_type)[mine]

    def values(self) -> np.ndarray:
        """Every sample's value in sample order: float64 or int64 or bool when one type, else objects."""
        only = self.catalog.only_type
        if only is not None:
            return self.column(only)
        out = np.empty(len(self), dtype=object)
        types = self.value_types
        for value_type in ValueType:
            if value_type:
                out[types == value_type] = self.column(value_type)
        return out

    def take(self, mask: np.ndarray) -> Batch:
        """A Batch with the samples where `mask` is true."""
        d, i, b, s = (self.column(t)[mask[self.of_type(t)]] for t in ValueType if t)
        qualities = None if self._qualities is None else self._qualities[mask]
        return Batch(self.catalog, self.index[mask], self.timestamps[mask], d, i, b, s, qualities)

    def select(self, paths: Iterable[str]) -> Batch:
        """The samples of signals matching any of the path globs."""
        from linebridge.paths import compile_glob

        globs = [compile_glob(p) for p in paths]
        chosen = np.array([any(g.matches(p) for g in globs) for p in self.catalog.paths], dtype=bool)
        return self.take(chosen[self.index] if chosen.size else np.zeros(len(self), bool))

    # -- small uses -------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Sample]:
        paths, values, quality = self.paths.tolist(), self.values().tolist(), self.qualities.tolist()
        for i, stamp in enumerate(self.timestamps.tolist()):
            yield Sample(paths[i], values[i], stamp, quality[i])

    def latest(self) -> dict[str, Sample]:
        """The last sample of each signal."""
        return {s.path: s for s in self}

    # -- tables (the `data` extra) ----------------------------------------------------------------
    def to_arrow(self) -> pyarrow.Table:
        """A pyarrow Table in long form: timestamp (ns, UTC), path, value column(s), quality."""
        from linebridge.client.tables import to_arrow

        return to_arrow(self)

    def to_pandas(self, wide: bool = False) -> pandas.DataFrame:
        """A DataFrame: long (one row per sample) or wide (timestamp index, one column per signal)."""
        from linebridge.client.tables import to_pandas_long, to_pandas_wide

        return to_pandas_wide(self) if wide else to_pandas_long(self)
