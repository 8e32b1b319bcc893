"""`linebridge alarms [--watch]`, `ack ID --comment ...`, `confirm`, `shelve`/`unshelve`, `oee`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime

from linebridge.api import pb
from linebridge.client import AsyncClient

CHANGE = {v.number: v.name.removeprefix("ALARM_CHANGE_") for v in pb.alarm.AlarmChange.DESCRIPTOR.values}


def add_commands(client: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Register the alarm and efficiency sub-commands (`client` adds a sub-command with connection options)."""
    alarms = client("alarms", "list alarms (--watch: then follow changes)")
    alarms.add_argument("device_glob", nargs="?", default="*")
    alarms.add_argument("--watch", action="store_true", help="keep printing changes as they happen")
    alarms.add_argument("--all", action="store_true", help="include inactive, acknowledged alarms")
    alarms.add_argument("--history", action="store_true", help="print past events instead")
    ack = client("ack", "acknowledge an alarm (operator)")
    ack.add_argument("alarm_id", help="DEVICE/NAME as `linebridge alarms` shows it")
    ack.add_argument("--comment", default="")
    confirm = client("confirm", "confirm an acknowledged device alarm (operator; OPC UA Confirm)")
    confirm.add_argument("alarm_id")
    confirm.add_argument("--comment", default="")
    shelve = client("shelve", "shelve an alarm for a while (operator)")
    shelve.add_argument("alarm_id")
    shelve.add_argument("--minutes", type=float, required=True)
    shelve.add_argument("--reason", required=True)
    unshelve = client("unshelve", "unshelve an alarm (operator)")
    unshelve.add_argument("alarm_id")
    oee = client("oee", "machine efficiency after ISO 22400-2 (OEE and its losses)")
    oee.add_argument("device_glob", nargs="?", default="*")
    oee.add_argument("--window", choices=["shift", "hour", "start"], default="shift")


def _time(ts) -> str:  # noqa: ANN001 - a protobuf Timestamp
    if not ts.seconds and not ts.nanos:
        return "-"
    return datetime.fromtimestamp(ts.ToNanoseconds() / 1e9).astimezone().strftime("%H:%M:%S")


def _state(a: pb.alarm.Alarm) -> str:
    """ISA-18.2 state in a word: ACTIVE, ACKED (active and acknowledged), RTN-UNACK, NORMAL; plus flags."""
    word = ("ACKED" if a.acked else "ACTIVE") if a.active else ("NORMAL" if a.acked else "RTN-UNACK")
    if a.acked and not a.confirmed:
        word += "/UNCONFIRMED"
    flags = [f for f, on in (("shelved", a.shelved), ("suppressed", a.suppressed)) if on]
    return word + (f" ({', '.join(flags)})" if flags else "")


def alarm_line(a: pb.alarm.Alarm) -> str:
    """One alarm as a table line."""
    return f"{_time(a.raised):<9} {a.severity:>4}  {_state(a):<12} {a.id:<32} {a.message}"


async def alarms(client: AsyncClient, args: argparse.Namespace) -> int:
    """`linebridge alarms`: the current alarms, their history, or (--watch) their changes."""
    if args.history:
        for e in await client.alarm_history(args.device_glob):
            who = f" by {e.who}" if e.who else ""
            note = f": {e.comment}" if e.comment else ""
            print(f"{_time(e.time):<9} {CHANGE[e.change]:<12} {e.alarm.id}{who}{note}")
        return 0
    if not args.watch:
        found = await client.alarms(args.device_glob, include_inactive=args.all)
        print(f"{'RAISED':<9} {'SEV':>4}  {'STATE':<12} {'ALARM':<32} MESSAGE")
        for a in found:
            print(alarm_line(a))
        return 0
    async for update in client.watch_alarms(args.device_glob):
        kind = update.WhichOneof("update")
        if kind == "snapshot":
            for a in update.snapshot.alarms:
                print(alarm_line(a), flush=True)
            print("-- watching for changes (Ctrl-C to stop)", flush=True)
        elif kind == "event":
            e = update.event
            print(f"{CHANGE[e.change]:<12} {alarm_line(e.alarm)}", flush=True)
        else:
            print(f"-- this watcher fell behind and lost {update.dropped.events} alarm events", flush=True)
    return 0


async def ack(client: AsyncClient, args: argparse.Namespace) -> int:
    """`linebridge ack`: acknowledge an alarm."""
    alarm = await client.acknowledge(args.alarm_id, args.comment)
    print(f"acknowledged {alarm.id} as {alarm.acked_by}")
    return 0


async def confirm(client: AsyncClient, args: argparse.Namespace) -> int:
    """`linebridge confirm`: confirm an alarm."""
    alarm = await client.confirm(args.alarm_id, args.comment)
    print(f"confirmed {alarm.id} as {alarm.confirmed_by}")
    return 0


async def shelve(client: AsyncClient, args: argparse.Namespace) -> int:
    """`linebridge shelve`: shelve an alarm for some minutes."""
    alarm = await client.shelve(args.alarm_id, args.minutes * 60, args.reason)
    print(f"shelved {alarm.id} until {_time(alarm.shelved_until)}")
    return 0


async def unshelve(client: AsyncClient, args: argparse.Namespace) -> int:
    """`linebridge unshelve`: put an alarm back in service."""
    alarm = await client.unshelve(args.alarm_id)
    print(f"unshelved {alarm.id}")
    return 0


async def oee(client: AsyncClient, args: argparse.Namespace) -> int:
    """`linebridge oee`: OEE and its factors per device."""
    found = await client.efficiency(args.device_glob, args.window)
    print(
        f"{'DEVICE':<16} {'OEE':>6} {'AVAIL':>6} {'EFFECT':>6} {'QUAL':>6} {'APT s':>8} {'PBT s':>8} {'PQ':>6} {'GQ':>6}"
    )
    for e in found:
        print(
            f"{e.device_id:<16} {e.oee:>6.1%} {e.availability:>6.1%} {e.effectiveness:>6.1%} {e.quality:>6.1%} "
            f"{e.apt:>8.0f} {e.pbt:>8.0f} {e.pq:>6.0f} {e.gq:>6.0f}"
        )
        losses = ", ".join(f"{k} {v:.0f} s" for k, v in sorted(e.seconds_by_state.items()) if k != "EXECUTE")
        if losses:
            print(f"  not producing: {losses}")
        if e.down_by_alarm:
            print(
                "  down while alarm active: "
                + ", ".join(f"{k} {v:.0f} s" for k, v in e.down_by_alarm.items())
            )
    return 0


COMMANDS = {
    "alarms": alarms,
    "ack": ack,
    "confirm": confirm,
    "shelve": shelve,
    "unshelve": unshelve,
    "oee": oee,
}
