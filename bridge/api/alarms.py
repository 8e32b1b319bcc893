"""AlarmService and EfficiencyService: convert the request, call the analytics core, convert the answer."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from linebridge.analytics import (
    Alarm,
    AlarmEvent,
    AlarmManager,
    AnalyticsEngine,
    Changes,
    Dropped,
    Efficiency,
)
from linebridge.api import pb
from linebridge.api.auth import current_identity
from linebridge.api.convert import seconds
from linebridge.api.errors import grpc_errors
from linebridge.model import LOCAL_ADMIN


def _ts(ns: int) -> Timestamp | None:
    if not ns:
        return None
    t = Timestamp()
    t.FromNanoseconds(ns)
    return t


def alarm_to_pb(a: Alarm) -> pb.alarm.Alarm:
    """The wire form of an alarm."""
    return pb.alarm.Alarm(
        id=a.id,
        device_id=a.device_id,
        name=a.name,
        source=a.source,
        severity=a.severity,
        message=a.message,
        signals=list(a.signals),
        active=a.active,
        acked=a.acked,
        shelved=a.shelved,
        suppressed=a.suppressed,
        raised=_ts(a.raised_ns),
        cleared=_ts(a.cleared_ns),
        acked_at=_ts(a.acked_ns),
        acked_by=a.acked_by,
        ack_comment=a.ack_comment,
        shelved_until=_ts(a.shelved_until_ns),
        shelve_reason=a.shelve_reason,
        shelved_by=a.shelved_by,
        confirmed=a.confirmed,
        confirmed_at=_ts(a.confirmed_ns),
        confirmed_by=a.confirmed_by,
    )


def event_to_pb(e: AlarmEvent) -> pb.alarm.AlarmEvent:
    """The wire form of an alarm event."""
    return pb.alarm.AlarmEvent(
        seq=e.seq,
        time=_ts(e.time_ns),
        change=int(e.change),
        alarm=alarm_to_pb(e.alarm),
        who=e.who,
        comment=e.comment,
    )


def efficiency_to_pb(e: Efficiency) -> pb.alarm.Efficiency:
    """The wire form of one device's efficiency."""
    return pb.alarm.Efficiency(
        device_id=e.device_id,
        window=e.window,
        start=_ts(e.start_ns),
        end=_ts(e.end_ns),
        apt=e.apt,
        pbt=e.pbt,
        pri=e.pri,
        pq=e.pq,
        gq=e.gq,
        availability=e.availability,
        effectiveness=e.effectiveness,
        quality=e.quality,
        oee=e.oee,
        seconds_by_state=e.seconds_by_state,
        down_by_alarm=e.down_by_alarm,
    )


class AlarmService(pb.alarm_grpc.AlarmServiceServicer):
    """ListAlarms, WatchAlarms, Acknowledge, Shelve, Unshelve, AlarmHistory."""

    def __init__(self, alarms: AlarmManager) -> None:
        self.alarms = alarms

    @grpc_errors
    async def ListAlarms(self, request, context):  # noqa: N802
        """The alarms of the matching devices that are of interest (or all of them)."""
        found = self.alarms.current(request.device_glob or "*", request.include_inactive)
        return pb.alarm.ListAlarmsResponse(alarms=[alarm_to_pb(a) for a in found])

    @grpc_errors
    async def WatchAlarms(self, request, context):  # noqa: N802
        """Stream alarm changes of the matching devices, with dropped notices."""
        async for item in self.alarms.watch(request.device_glob or "*"):
            if isinstance(item, Changes):
                for event in item.events:
                    yield pb.alarm.WatchAlarmsResponse(event=event_to_pb(event))
            elif isinstance(item, Dropped):
                yield pb.alarm.WatchAlarmsResponse(
                    dropped=pb.alarm.AlarmsDropped(events=item.events, total=item.total)
                )
            else:
                yield pb.alarm.WatchAlarmsResponse(
                    snapshot=pb.alarm.AlarmSnapshot(alarms=[alarm_to_pb(a) for a in item.alarms])
                )

    @grpc_errors
    async def Acknowledge(self, request, context):  # noqa: N802
        """Acknowledge an alarm as the caller."""
        alarm = await self.alarms.acknowledge(
            request.alarm_id, current_identity() or LOCAL_ADMIN, request.comment
        )
        return pb.alarm.AcknowledgeResponse(alarm=alarm_to_pb(alarm))

    @grpc_errors
    async def Confirm(self, request, context):  # noqa: N802
        """Confirm an alarm as the caller."""
        alarm = await self.alarms.confirm(
            request.alarm_id, current_identity() or LOCAL_ADMIN, request.comment
        )
        return pb.alarm.ConfirmResponse(alarm=alarm_to_pb(alarm))

    @grpc_errors
    async def Shelve(self, request, context):  # noqa: N802
        """Shelve an alarm for a while."""
        alarm = self.alarms.shelve(
            request.alarm_id, current_identity() or LOCAL_ADMIN, seconds(request.duration), request.reason
        )
        return pb.alarm.ShelveResponse(alarm=alarm_to_pb(alarm))

    @grpc_errors
    async def Unshelve(self, request, context):  # noqa: N802
        """Put a shelved alarm back in service."""
        alarm = self.alarms.unshelve(request.alarm_id, current_identity() or LOCAL_ADMIN, request.reason)
        return pb.alarm.UnshelveResponse(alarm=alarm_to_pb(alarm))

    @grpc_errors
    async def AlarmHistory(self, request, context):  # noqa: N802
        """Past alarm events of the matching devices since a time, oldest first."""
        since = request.since.ToNanoseconds() if request.HasField("since") else 0
        events = self.alarms.events(request.device_glob or "*", since, request.limit or 1000)
        return pb.alarm.AlarmHistoryResponse(events=[event_to_pb(e) for e in events])


class EfficiencyService(pb.alarm_grpc.EfficiencyServiceServicer):
    """GetEfficiency, SetPlannedBusyTime."""

    def __init__(self, engine: AnalyticsEngine) -> None:
        self.engine = engine

    @grpc_errors
    async def GetEfficiency(self, request, context):  # noqa: N802
        """OEE and its factors per matching device, for a window."""
        found = self.engine.efficiency(request.device_glob or "*", request.window or "shift")
        return pb.alarm.GetEfficiencyResponse(devices=[efficiency_to_pb(e) for e in found])

    @grpc_errors
    async def SetPlannedBusyTime(self, request, context):  # noqa: N802
        """Set the planned busy time of the matching devices."""
        ids = self.engine.set_planned_busy_time(
            request.device_glob or "*", seconds(request.planned_busy_time)
        )
        return pb.alarm.SetPlannedBusyTimeResponse(device_ids=ids)
