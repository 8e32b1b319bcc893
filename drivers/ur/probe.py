"""What a UR controller offers: the signal catalog from probed RTDE fields and Dashboard queries."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine

from linebridge.drivers.base import Access, Signal
from linebridge.drivers.ur.fields import FIELDS, DashboardQuery, DashboardSignal, RtdeAddress, RtdeField
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


async def until_first_failure(jobs: list[Coroutine]) -> None:
    """Run jobs together until one fails (re-raised as is, not as an ExceptionGroup) or all are cancelled."""
    if not jobs:
        await asyncio.Event().wait()
    tasks = [asyncio.create_task(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
