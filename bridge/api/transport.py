"""TransportService: LocateLoad, ListTransporters, WatchZones (conversion only; the logic is linebridge.transport)."""

from __future__ import annotations

import asyncio

from google.protobuf.timestamp_pb2 import Timestamp

from linebridge.api import pb
from linebridge.api.errors import grpc_errors
from linebridge.errors import InvalidArgument
from linebridge.transport.index import Place, TransportIndex, ZoneChange

QUEUE_LIMIT = 1000  # zone events per stream; the oldest go when a client does not keep up


def _time(ns: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(ns)
    return stamp


def location_to_pb(place: Place) -> pb.transport.Location:
    """A located place as its protobuf message."""
    return pb.transport.Location(
        map_id=place.map_id, x=place.x, y=place.y, theta=place.theta, zones=place.zones
    )


def change_to_pb(change: ZoneChange) -> pb.transport.ZoneEvent:
    """A zone enter/leave event as its protobuf message."""
    return pb.transport.ZoneEvent(
        kind=change.kind,
        zone=change.zone,
        map_id=change.place.map_id,
        device_id=change.device_id,
        load_id=change.load_id,
        location=location_to_pb(change.place),
        time=_time(change.place.time_ns),
    )


class TransportService(pb.transport_grpc.TransportServiceServicer):
    """Where loads and AGVs are."""

    def __init__(self, index: TransportIndex) -> None:
        self.index = index

    @grpc_errors
    async def LocateLoad(self, request, context):  # noqa: N802
        """Where a load is: the AGV carrying it, its position, map and when it was last seen."""
        if not request.load_id:
            raise InvalidArgument("load_id is empty")
        found = self.index.locate(request.load_id)
        return pb.transport.LocateLoadResponse(
            load_id=found.load_id,
            device_id=found.device_id,
            on_board=found.on_board,
            location=location_to_pb(found.place),
            last_seen=_time(found.place.time_ns),
        )

    @grpc_errors
    async def ListTransporters(self, request, context):  # noqa: N802
        """Every AGV with position, loads, battery, order progress and errors."""
        rows = []
        for t in self.index.transporters():
            v = t.values
            row = pb.transport.Transporter(
                device_id=t.device_id,
                state=int(t.state),
                load_ids=t.load_ids,
                battery_charge=float(v["battery/charge"] or 0.0),
                order_id=str(v["order/id"] or ""),
                last_node_id=str(v["order/last_node_id"] or ""),
                nodes_left=int(v["order/nodes_left"] or 0),
                edges_left=int(v["order/edges_left"] or 0),
                driving=bool(v["driving"]),
                paused=bool(v["paused"]),
                errors=str(v["errors/text"] or ""),
            )
            if t.place is not None:
                row.location.CopyFrom(location_to_pb(t.place))
                row.last_seen.CopyFrom(_time(t.place.time_ns))
            rows.append(row)
        return pb.transport.ListTransportersResponse(transporters=rows)

    @grpc_errors
    async def ListZones(self, request, context):  # noqa: N802
        """The configured zones with their polygons, sorted by map id, then name."""
        zones = []
        for map_id, named in sorted(self.index.config.zones.items()):
            if request.map_id and map_id != request.map_id:
                continue
            for name, polygon in sorted(named.items()):
                points = [pb.transport.Point(x=x, y=y) for x, y in polygon]
                zones.append(pb.transport.Zone(map_id=map_id, name=name, points=points))
        return pb.transport.ListZonesResponse(zones=zones)

    @grpc_errors
    async def WatchZones(self, request, context):  # noqa: N802
        """Zone enter/leave events of loads and AGVs as they happen."""
        wanted = set(request.zones)
        queue: asyncio.Queue[ZoneChange] = asyncio.Queue(QUEUE_LIMIT)

        def offer(change: ZoneChange) -> None:
            if wanted and change.zone not in wanted:
                return
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(change)

        if request.initial:
            for change in self.index.occupancy():
                offer(change)
        unwatch = self.index.watch(offer)
        try:
            while True:
                yield change_to_pb(await queue.get())
        finally:
            unwatch()
