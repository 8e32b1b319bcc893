"""A Sparkplug B traffic checker for any edge node: decodes births, data, deaths, commands and STATE,
and flags what a host application would trip over (Sparkplug 3.0 rule ids in the flag texts' comments).

`Watcher.feed(topic, payload)` returns one `Seen` per message; the CLI (`linebridge uplink watch`)
prints them as JSON lines or keeps a per node/device table.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError

from linebridge.uplink.proto import sparkplug_b_pb2 as spb
from linebridge.uplink.sparkplug import parse_state
from linebridge.uplink.topics import NAMESPACE

DATA = ("NDATA", "DDATA")
SEQUENCED = ("NBIRTH", "DBIRTH", "NDATA", "DDATA", "DDEATH")


@dataclass
class Seen:
    """One decoded message and what was wrong with it."""

    time: float
    topic: str
    verb: str
    group: str = ""
    node: str = ""
    device: str = ""
    seq: int | None = None
    bdseq: int | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    state: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON-lines form (empty fields left out)."""
        out = {k: v for k, v in self.__dict__.items() if v not in (None, "", [])}
        out["verb"] = self.verb
        return out


@dataclass
class _Node:
    """What the watcher knows about one edge node's current session."""

    bdseq: int | None = None
    seq: int | None = None
    born: bool = False
    aliases: dict[int, str] = field(default_factory=dict)
    devices: dict[str, dict[int, str]] = field(default_factory=dict)  # born devices -> aliases


@dataclass
class Row:
    """The table line of one node or device."""

    messages: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    flags: int = 0
    online: bool = False
    last: float = 0.0
    last_flag: str = ""


class Watcher:
    """Follows every edge node on the broker; keeps a table of nodes and devices."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[str, str], _Node] = {}
        self.table: dict[tuple[str, str, str], Row] = {}
        self.flagged = 0

    def feed(self, topic: str, payload: bytes, now: float | None = None) -> Seen:
        """Decode one message, check it against the node's session, update the table."""
        stamp = time.time() if now is None else now
        parts = topic.split("/")
        if parts[0] != NAMESPACE or len(parts) < 3:
            seen = Seen(stamp, topic, "?", flags=["not a Sparkplug B topic"])
        elif parts[1] == "STATE":
            seen = self._state(Seen(stamp, topic, "STATE", node=parts[2]), payload)
        elif len(parts) not in (4, 5):
            seen = Seen(stamp, topic, parts[2], flags=["topic has the wrong number of levels"])
        else:
            seen = Seen(stamp, topic, parts[2], parts[1], parts[3], parts[4] if len(parts) == 5 else "")
            self._sparkplug(seen, payload)
        self._tabulate(seen)
        return seen

    # -- per message kind --------------------------------------------------------------------
    @staticmethod
    def _state(seen: Seen, payload: bytes) -> Seen:
        try:
            online, stamp = parse_state(payload)
            seen.state = {"online": online, "timestamp": stamp}
        except ValueError as exc:
            seen.flags.append(f"malformed STATE: {exc}")
        return seen

    def _sparkplug(self, seen: Seen, payload: bytes) -> None:
        try:
            message = spb.Payload.FromString(payload)
        except DecodeError:
            seen.flags.append("undecodable Sparkplug B payload")
            return
        seen.seq = message.seq if message.HasField("seq") else None
        node = self.nodes.setdefault((seen.group, seen.node), _Node())
        bdseq = [_value(m) for m in message.metrics if m.name == "bdSeq"]
        seen.bdseq = bdseq[0] if bdseq and isinstance(bdseq[0], int) else None
        verb = seen.verb
        if verb in SEQUENCED:
            self._check_seq(seen, node)
        if verb == "NBIRTH":
            node.bdseq, node.born, node.devices = seen.bdseq, True, {}
            node.aliases = _aliases(message)
        elif verb == "NDEATH":
            self._ndeath(seen, node)
        elif verb == "DBIRTH":
            if not node.born:
                seen.flags.append("DBIRTH before the node's NBIRTH")  # tck-id-topics-dbirth-*
            node.devices[seen.device] = _aliases(message)
        elif verb == "DDEATH":
            seen.flags.append("device death")
            node.devices.pop(seen.device, None)
        table = node.devices.get(seen.device) if seen.device else (node.aliases if node.born else None)
        if verb in DATA and table is None:
            seen.flags.append(f"{verb} before its birth")  # tck-id-payloads-ddata-* needs a DBIRTH first
        seen.metrics = [self._metric(m, table, seen) for m in message.metrics]

    def _check_seq(self, seen: Seen, node: _Node) -> None:
        """tck-id-payloads-sequence-num-zero-nbirth, tck-id-payloads-sequence-num-incrementing."""
        if seen.seq is None:
            seen.flags.append("no seq")  # tck-id-payloads-sequence-num-always-included
            return
        if seen.verb == "NBIRTH":
            if seen.seq != 0:
                seen.flags.append(f"NBIRTH with seq {seen.seq} (must be 0)")
        elif node.seq is not None and seen.seq != (node.seq + 1) % 256:
            seen.flags.append(f"seq gap: expected {(node.seq + 1) % 256}, got {seen.seq}")
        node.seq = seen.seq

    def _ndeath(self, seen: Seen, node: _Node) -> None:
        """tck-id-payloads-ndeath-bdseq: the NDEATH's bdSeq matches the NBIRTH of the session it ends."""
        if seen.bdseq is None:
            seen.flags.append("NDEATH without a bdSeq metric")
        elif node.bdseq is not None and seen.bdseq != node.bdseq:
            seen.flags.append(
                f"bdSeq mismatch: NDEATH {seen.bdseq}, NBIRTH {node.bdseq} (an older session's will)"
            )
            return  # a host ignores it: the current session goes on
        seen.flags.append("node death")
        node.born, node.seq, node.devices = False, None, {}

    @staticmethod
    def _metric(metric: spb.Payload.Metric, aliases: dict[int, str] | None, seen: Seen) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if metric.name:
            out["name"] = metric.name
        if metric.HasField("alias"):
            out["alias"] = metric.alias
            if not metric.name:
                name = aliases.get(metric.alias) if aliases is not None else None
                if name is None and aliases is not None and seen.verb not in ("NBIRTH", "DBIRTH"):
                    seen.flags.append(f"unknown alias {metric.alias}")
                elif name is not None:
                    out["name"] = name
        if metric.HasField("datatype"):
            out["datatype"] = (
                spb.DataType.Name(metric.datatype)
                if metric.datatype in spb.DataType.values()
                else metric.datatype
            )
        out["value"] = _value(metric)
        if metric.is_historical:
            out["historical"] = True
        if metric.HasField("timestamp"):
            out["timestamp"] = metric.timestamp
        return out

    # -- the table ---------------------------------------------------------------------------
    def _tabulate(self, seen: Seen) -> None:
        row = self.table.setdefault((seen.group, seen.node, seen.device), Row())
        row.messages[seen.verb] = row.messages.get(seen.verb, 0) + 1
        row.last = seen.time
        if seen.verb in DATA:
            row.samples += len(seen.metrics)
        if seen.verb in ("NBIRTH", "DBIRTH"):
            row.online = True
        elif seen.verb == "STATE" and seen.state is not None:  # a host application's STATE
            row.online = seen.state["online"]
        elif seen.verb == "DDEATH" or (seen.verb == "NDEATH" and "node death" in seen.flags):
            row.online = False
        problems = [f for f in seen.flags if f not in ("node death", "device death")]
        if problems:
            row.flags += len(problems)
            row.last_flag = problems[-1]
            self.flagged += len(problems)


def _aliases(message: spb.Payload) -> dict[int, str]:
    return {m.alias: m.name for m in message.metrics if m.HasField("alias") and m.name}


def _value(metric: spb.Payload.Metric) -> Any:
    """A metric's value as JSON can carry it (bytes as hex, non-finite floats as text)."""
    if metric.is_null:
        return None
    kind = metric.WhichOneof("value")
    if kind is None:
        return None
    value = getattr(metric, kind)
    if (
        kind == "long_value"
        and metric.datatype in (spb.Int8, spb.Int16, spb.Int32, spb.Int64)
        and value >= 1 << 63
    ):
        value -= 1 << 64
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if kind in ("dataset_value", "template_value", "extension_value"):
        return f"<{kind}>"
    return value
