"""A stream's catalog: what each alias of a Subscribe stream stands for, as lookup arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linebridge.api import pb
from linebridge.client.devices import Access, ValueType, enum_of

_DENSE_LIMIT = 1 << 22  # aliases below this are looked up in a dense table, others by binary search


@dataclass(frozen=True, slots=True)
class Entry:
    """One signal of a stream: its alias, full path, value type and unit."""

    alias: int
    path: str
    value_type: ValueType
    unit: str = ""
    access: Access = Access.READ
    change_detection: str = ""


class CatalogView:
    """An immutable catalog version; a Batch keeps the one its samples were decoded with."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = tuple(entries)
        self.paths = np.array([e.path for e in entries], dtype=object)
        self.types = np.array([int(e.value_type) for e in entries], dtype=np.uint8)
        self.by_path = {e.path: i for i, e in enumerate(entries)}
        kinds = set(self.types.tolist())
        self.only_type = ValueType(kinds.pop()) if len(kinds) == 1 else None
        aliases = np.array([e.alias for e in entries], dtype=np.int64)
        self._dense = aliases.size == 0 or int(aliases.max()) < _DENSE_LIMIT
        if self._dense:
            self._table = np.full(int(aliases.max()) + 1 if aliases.size else 1, -1, dtype=np.int32)
            self._table[aliases] = np.arange(aliases.size, dtype=np.int32)
        else:
            order = np.argsort(aliases)
            self._keys, self._order = aliases[order], order.astype(np.int32)

    def __len__(self) -> int:
        return len(self.entries)

    def index(self, aliases: np.ndarray) -> np.ndarray:
        """Entry index (int32) of each alias; raises KeyError naming an alias the catalog lacks."""
        if self._dense:
            if aliases.size and int(aliases.max()) >= self._table.size:
                raise KeyError(f"alias {int(aliases.max())} is not in the stream's catalog")
            found = self._table[aliases]
            if found.size and int(found.min()) < 0:
                raise KeyError(f"alias {int(aliases[np.argmin(found)])} is not in the stream's catalog")
            return found
        position = np.searchsorted(self._keys, aliases).clip(0, max(0, self._keys.size - 1))
        bad = self._keys[position] != aliases if self._keys.size else np.ones(aliases.size, bool)
        if bad.any():
            raise KeyError(f"alias {int(aliases[np.argmax(bad)])} is not in the stream's catalog")
        return self._order[position]


def entry_of(message: pb.telemetry.CatalogEntry) -> Entry:
    """An Entry from its protobuf message."""
    return Entry(
        alias=message.alias,
        path=message.path,
        value_type=enum_of(ValueType, message.value_type),  # type: ignore[arg-type]
        unit=message.unit,
        access=enum_of(Access, message.access),  # type: ignore[arg-type]
        change_detection=message.change_detection,
    )


class Catalog:
    """Keeps a stream's catalog as messages arrive; `view` is the current version."""

    def __init__(self) -> None:
        self._entries: dict[int, Entry] = {}
        self.view = CatalogView([])

    def apply(self, message: pb.telemetry.Catalog) -> tuple[list[Entry], list[Entry]]:
        """Apply a Catalog message; returns (added, removed) entries."""
        removed = [self._entries.pop(a) for a in message.removed_aliases if a in self._entries]
        added = [entry_of(m) for m in message.entries]
        self._entries.update((e.alias, e) for e in added)
        self.view = CatalogView(list(self._entries.values()))
        return added, removed

    def reset(self) -> None:
        """Forget every alias (a new stream brings its own catalog)."""
        self._entries.clear()
        self.view = CatalogView([])


def merged(views: list[CatalogView]) -> tuple[CatalogView, list[np.ndarray]]:
    """One view with every path of `views` (aliases renumbered) and, per view, its index map."""
    entries: dict[str, Entry] = {}
    for view in views:
        for e in view.entries:
            entries.setdefault(e.path, e)
    union = CatalogView(
        [
            Entry(i, e.path, e.value_type, e.unit, e.access, e.change_detection)
            for i, e in enumerate(entries.values())
        ]
    )
    maps = [np.array([union.by_path[p] for p in view.paths], dtype=np.int32) for view in views]
    return union, maps
