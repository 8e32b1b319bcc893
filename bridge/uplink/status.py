"""What the uplink reports about itself: connection state, backlog, losses, traffic."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class UplinkState(IntEnum):
    """Connection state; numbers match linebridge.v1.UplinkState."""

    DISABLED = 1
    CONNECTING = 2
    WAITING_FOR_HOST = 3  # connected, holding until the primary host application is online
    ONLINE = 4
    OFFLINE = 5  # not connected; retrying with backoff


@dataclass(frozen=True, slots=True)
class UplinkStatus:
    """A snapshot for the API, the CLI, the demo and metrics."""

    state: UplinkState
    broker: str = ""
    group_id: str = ""
    edge_node_id: str = ""
    primary_host_id: str = ""
    last_error: str = ""
    backlog_messages: int = 0
    backlog_bytes: int = 0
    backlog_samples: int = 0
    oldest_age_seconds: float = 0.0
    dropped_messages: int = 0  # outbox budget full
    dropped_samples: int = 0
    expired_messages: int = 0  # older than the outbox age limit
    expired_samples: int = 0
    published_messages: int = 0  # acknowledged by the broker (QoS 1) or sent (QoS 0)
    published_samples: int = 0
    replayed_messages: int = 0
    resent_samples: int = 0  # sent again after a PUBACK never came: the only source of duplicates
    commands_accepted: int = 0
    commands_rejected: int = 0
    protocol_errors: int = 0  # malformed packets from the broker (each closed its connection)
    unknown_acks: int = 0  # PUBACKs for a packet id nothing was waiting for
    oversized_messages: int = 0  # incoming messages above max_payload_bytes (dropped)
    hung_broker: int = 0  # connections dropped: no PUBACK within keepalive
    oversized_samples: int = 0  # values that cannot fit in max_payload_bytes (dropped, never sent)
    connects: int = 0
    bdseq: int = 0
    outbox_path: str = ""
    outbox_moved_aside: str = ""


DISABLED = UplinkStatus(UplinkState.DISABLED)
