"""Alarms and machine efficiency for `AsyncClient` (issue 14): list, watch, acknowledge, shelve, OEE.

Answers are the protobuf messages of `linebridge.v1` (alarm.proto): `Alarm`, `AlarmEvent`, `Efficiency`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from linebridge.api import pb
from linebridge.client import errors
from linebridge.client._values import duration


class AlarmCalls:
    """Mixed into AsyncClient: its `stubs` and `_unary` carry the calls."""

    stubs: Any

    async def _unary(
        self, method: Any, request: Any, timeout: float | None = None
    ) -> Any:  # pragma: no cover
        raise NotImplementedError

    async def alarms(self, device_glob: str = "*", include_inactive: bool = False) -> list[pb.alarm.Alarm]:
        """Alarms of interest (active, unacknowledged or shelved), highest severity first."""
        request = pb.alarm.ListAlarmsRequest(device_glob=device_glob, include_inactive=include_inactive)
        return list((await self._unary(self.stubs.alarms.ListAlarms, request)).alarms)

    async def watch_alarms(self, device_glob: str = "*") -> AsyncIterator[pb.alarm.WatchAlarmsResponse]:
        """The current alarms (`snapshot`), then every change (`event`), and `dropped` notices."""
        stream = self.stubs.alarms.WatchAlarms(pb.alarm.WatchAlarmsRequest(device_glob=device_glob))
        try:
            async for update in stream:
                yield update
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc) from None
        finally:
            stream.cancel()

    async def acknowledge(self, alarm_id: str, comment: str = "") -> pb.alarm.Alarm:
        """Acknowledge an alarm (operator role); NotFound for an unknown one, FailedPrecondition if acknowledged."""
        request = pb.alarm.AcknowledgeRequest(alarm_id=alarm_id, comment=comment)
        return (await self._unary(self.stubs.alarms.Acknowledge, request)).alarm

    async def confirm(self, alarm_id: str, comment: str = "") -> pb.alarm.Alarm:
        """Confirm an acknowledged device alarm (operator role; OPC UA Part 9 Confirm at the device)."""
        request = pb.alarm.ConfirmRequest(alarm_id=alarm_id, comment=comment)
        return (await self._unary(self.stubs.alarms.Confirm, request)).alarm

    async def shelve(self, alarm_id: str, seconds: float, reason: str) -> pb.alarm.Alarm:
        """Shelve an alarm for `seconds` with a reason (operator role)."""
        request = pb.alarm.ShelveRequest(alarm_id=alarm_id, duration=duration(seconds), reason=reason)
        return (await self._unary(self.stubs.alarms.Shelve, request)).alarm

    async def unshelve(self, alarm_id: str, reason: str = "") -> pb.alarm.Alarm:
        """Unshelve an alarm (operator role)."""
        request = pb.alarm.UnshelveRequest(alarm_id=alarm_id, reason=reason)
        return (await self._unary(self.stubs.alarms.Unshelve, request)).alarm

    async def alarm_history(self, device_glob: str = "*", limit: int = 1000) -> list[pb.alarm.AlarmEvent]:
        """Past alarm events, oldest first."""
        request = pb.alarm.AlarmHistoryRequest(device_glob=device_glob, limit=limit)
        return list((await self._unary(self.stubs.alarms.AlarmHistory, request)).events)

    async def efficiency(self, device_glob: str = "*", window: str = "shift") -> list[pb.alarm.Efficiency]:
        """OEE after ISO 22400-2 per device over `window` ("shift", "hour" or "start")."""
        request = pb.alarm.GetEfficiencyRequest(device_glob=device_glob, window=window)
        return list((await self._unary(self.stubs.efficiency.GetEfficiency, request)).devices)
