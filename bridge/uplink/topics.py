"""The Sparkplug B topic namespace (Sparkplug 3.0, Topics): spBv1.0/<group>/<verb>/<edge node>[/<device>]."""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE = "spBv1.0"


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names of one edge node."""

    group_id: str
    edge_node_id: str

    def node(self, verb: str) -> str:
        """A node-level topic: spBv1.0/<group>/<verb>/<edge node>."""
        return f"{NAMESPACE}/{self.group_id}/{verb}/{self.edge_node_id}"

    def device(self, verb: str, device_id: str) -> str:
        """A device-level topic: spBv1.0/<group>/<verb>/<edge node>/<device>."""
        return f"{NAMESPACE}/{self.group_id}/{verb}/{self.edge_node_id}/{device_id}"

    def data(self, device_id: str) -> str:
        """DDATA for a device, NDATA for the node itself (device "")."""
        return self.device("DDATA", device_id) if device_id else self.node("NDATA")

    def proof(self) -> str:
        """The node's own checkpoint topic, outside the spBv1.0 namespace (see linebridge.uplink.link)."""
        return f"linebridge/proof/{self.group_id}/{self.edge_node_id}"

    @staticmethod
    def state(host_id: str) -> str:
        """Sparkplug 3.0, Topics > STATE: the primary host application's STATE topic."""
        return f"{NAMESPACE}/STATE/{host_id}"

    def command_filters(self) -> list[str]:
        """What the edge node subscribes to: its NCMD and every DCMD of its devices."""
        return [self.node("NCMD"), f"{NAMESPACE}/{self.group_id}/DCMD/{self.edge_node_id}/+"]

    def parse_command(self, topic: str) -> tuple[str, str] | None:
        """("NCMD", "") or ("DCMD", device id) for our command topics, else None."""
        parts = topic.split("/")
        if (
            len(parts) < 4
            or parts[0] != NAMESPACE
            or parts[1] != self.group_id
            or parts[3] != self.edge_node_id
        ):
            return None
        if parts[2] == "NCMD" and len(parts) == 4:
            return "NCMD", ""
        if parts[2] == "DCMD" and len(parts) == 5 and parts[4]:
            return "DCMD", parts[4]
        return None
