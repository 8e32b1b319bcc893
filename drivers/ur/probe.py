"""What a UR controller offers: the signal catalog from probed RTDE fields and Dashboard queries."""

from __future__ import annotations

import logging

from linebridge.drivers.base import Access, DeviceError, Signal
from linebridge.drivers.ur.dashboard import DashboardClient
from linebridge.drivers.ur.fields import (
    DASHBOARD_SIGNALS,
    FIELDS,
    DashboardQuery,
    DashboardSignal,
    RtdeAddress,
    RtdeField,
)
from linebridge.drivers.ur.rtde import NOT_FOUND, ProtocolError, parse_type


def supported_fields(type_names: list[str]) -> tuple[list[RtdeField], list[str]]:
    """Split the table's fields by the recipe answer: known ones (types checked), and NOT_FOUND names."""
    supported, missing = [], []
    for rtde_field, type_name in zip(FIELDS, type_names, strict=True):
        if type_name == NOT_FOUND:
            missing.append(rtde_field.name)
        elif parse_type(type_name) is not rtde_field.rtde_type:
            raise ProtocolError(
                f"recipe answer types {rtde_field.name} as {type_name}, documented as {rtde_field.rtde_type.name}"
            )
        else:
            supported.append(rtde_field)
    return supported, missing


def catalog_signals(fields: list[RtdeField], polled: list[DashboardSignal]) -> list[Signal]:
    """The signals of the RTDE fields and the Dashboard queries the controller answers."""
    signals = [
        Signal(
            path,
            f.value_type,
            unit,
            Access.READ,
            f.description,
            f.rtde_type.name,
            RtdeAddress(f.name, element),
        )
        for f in fields
        for element, (path, unit) in enumerate(zip(f.paths, f.units, strict=True))
    ]
    signals += [
        Signal(
            d.path,
            d.value_type,
            "",
            Access.READ,
            d.description,
            "dashboard",
            DashboardQuery(d.command),
            change_detection="polled-compare",
        )
        for d in polled
    ]
    return signals


async def answered_queries(dashboard: DashboardClient, log: logging.Logger) -> list[DashboardSignal]:
    """The polled Dashboard signals whose query this controller answers (CB-series lacks some)."""
    usable = []
    for polled in DASHBOARD_SIGNALS:
        try:
            await dashboard.query(polled.command)
        except DeviceError as exc:
            log.warning("signal %s left out: %s", polled.path, exc)
        else:
            usable.append(polled)
    return usable
