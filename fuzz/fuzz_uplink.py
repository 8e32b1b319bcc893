"""Fuzz target: what the broker delivers to the edge node besides commands — Sparkplug STATE JSON of the
primary host, and any topic on the node's subscriptions.

Contract (bridge/uplink/sparkplug.py): parse_state() returns (bool, int within 0..2**63-1) or raises
ValueError; EdgeNode._on_message() never raises, changes host_online only on a well-formed STATE of the
configured host, and hands exactly the node's own NCMD/DCMD topics to the command handler.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from fuzz.engine import Cursor, instrumented, run

with instrumented(__name__):
    from linebridge.uplink.config import OutboxConfig, UplinkConfig
    from linebridge.uplink.outbox import Outbox
    from linebridge.uplink.publisher import Publisher
    from linebridge.uplink.sparkplug import EdgeNode, parse_state
    from linebridge.uplink.topics import Topics

HOST = "scada"
TOPICS = Topics("plant", "edge")
KINDS = (
    "spBv1.0/STATE/scada",
    "spBv1.0/STATE/other",
    "spBv1.0/plant/NCMD/edge",
    "spBv1.0/plant/DCMD/edge/",
    "spBv1.0/plant/DDATA/edge/",
    "",
)


class Node:
    """An EdgeNode that is never connected: only its incoming-message path runs."""

    def __init__(self) -> None:
        config = UplinkConfig(enabled=True, group_id="plant", edge_node_id="edge", primary_host_id=HOST)
        outbox = Outbox(OutboxConfig(), Path("/nonexistent/fuzz-outbox.sqlite"))
        publisher = Publisher(outbox, TOPICS, 100.0, 8)
        self.commands: list[tuple[str, str, str]] = []
        self.node = EdgeNode(config, TOPICS, outbox, publisher, list, self._command)

    def _command(self, verb: str, device: str, payload: bytes, topic: str) -> None:
        self.commands.append((verb, device, topic))


@cache
def node() -> Node:
    """One node for the whole run."""
    return Node()


def check_state(payload: bytes) -> tuple[bool, int] | None:
    """parse_state: a bool and an int64 millisecond count, or ValueError."""
    try:
        online, stamp = parse_state(payload)
    except ValueError:
        return None
    assert type(online) is bool and type(stamp) is int and 0 <= stamp < 1 << 63
    return online, stamp


def check_message(topic: str, payload: bytes) -> None:
    """_on_message never raises; only the node's own command topics reach the command handler."""
    state = node()
    before = len(state.commands)
    state.node._on_message(topic, payload)
    handed = state.commands[before:]
    assert len(handed) <= 1
    if handed:
        verb, device, seen = handed[0]
        assert seen == topic and TOPICS.parse_command(topic) == (verb, device)
    assert type(state.node.host_online) is bool


def one_input(data: bytes) -> None:
    """libFuzzer entry: a topic (a known kind plus fuzz text), then the payload bytes."""
    cursor = Cursor(data)
    topic = cursor.choice(KINDS) + cursor.text()
    payload = cursor.rest()
    check_state(payload)
    check_message(topic, payload)


def seeds() -> Iterator[bytes]:
    """STATE messages as hosts send them (3.0 JSON, older plain text), and commands."""
    for online in (True, False):
        yield b"\x00\x00" + json.dumps({"online": online, "timestamp": 1700000000000}).encode()
    yield b"\x00\x00ONLINE"
    yield b'\x00\x00{"online": true, "timestamp": 1e400}'
    yield b"\x02\x00\x08\x01"
    yield b"\x03\x05sim-1\x08\x01"


if __name__ == "__main__":
    run(one_input, seeds)
