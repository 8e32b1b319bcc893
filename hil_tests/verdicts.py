"""Judge a recorded scenario: each expectation becomes a number measured against its bound."""

from __future__ import annotations

from linebridge.hil.measure import Recording, Result
from linebridge.hil.rig import Rig
from linebridge.hil.scenario import Check, Expectation, Scenario

ONLINE = ("ONLINE",)
MIN_RATE = 10.0  # samples/s a device must stream before the fault for its rate change to be judged


def verdicts(rig: Rig, scenario: Scenario, rec: Recording) -> list[Result]:
    """One Result per expectation (rates_steady: one per device), then unbounded measurements."""
    results: list[Result] = []
    for exp in scenario.expect:
        results += _judge(exp, rig, scenario, rec)
    return results + _recorded(scenario, rec)


def _judge(exp: Expectation, rig: Rig, scenario: Scenario, rec: Recording) -> list[Result]:
    if exp.check is Check.LEAVES_ONLINE:
        step = scenario.steps[exp.step]
        when = rec.first_state(exp.device, step.at, False, ONLINE)
        took = None if when is None else when - step.at
        return [_timed(Result, f"{exp.device} leaves ONLINE (detection time)", took, exp.within)]
    if exp.check is Check.ONLINE_AGAIN:
        return [_recovery(exp, scenario, rec)]
    if exp.check is Check.RATES_STEADY:
        return _rates(Result, exp, rig, scenario, rec)
    if exp.check is Check.MAX_GAP:
        gap = rec.max_gap(exp.device, 0.0, scenario.duration)
        return [_timed(Result, f"{exp.device} max sample gap", gap, exp.within)]
    if exp.check in (Check.FAILS_FAST, Check.STOP_LATENCY):
        return [_command(Result, exp, rec)]
    if exp.check is Check.STAYS_ONLINE:
        return [_stays_online(exp, scenario, rec)]
    if exp.check is Check.MOVED:
        return _moved(exp, scenario, rec)
    return _uplink(Result, exp, rec, {s.device for s in scenario.steps if s.device})


def _recovery(exp: Expectation, scenario: Scenario, rec: Recording) -> Result:
    """Fault released -> ONLINE. A device that noticed the fault only after its release (an instant
    reset) is measured to its first ONLINE after it left."""
    step = scenario.steps[exp.step]
    left = rec.first_state(exp.device, step.at, False, ONLINE)
    after = step.end if left is None else max(step.end, left)
    when = rec.first_state(exp.device, after, True, ONLINE)
    took = None if when is None else when - step.end
    result = _timed(Result, f"{exp.device} ONLINE again (recovery time)", took, exp.within)
    if left is None:
        result.detail = "never left ONLINE"
    return result


def _stays_online(exp: Expectation, scenario: Scenario, rec: Recording) -> Result:
    """Seconds the device spent outside ONLINE from the fault's start to `within` s after its release."""
    step = scenario.steps[exp.step]
    since, until = step.at, step.end + exp.within
    out, left, seen = 0.0, None if rec.state_at(exp.device, since) == "ONLINE" else since, []
    for when, name in rec.states[exp.device]:
        if not since < when <= until:
            continue
        seen.append(f"{name} at {when:.2f} s")
        if name != "ONLINE" and left is None:
            left = when
        elif name == "ONLINE" and left is not None:
            out, left = out + when - left, None
    if left is not None:
        out += until - left
    name = f"{exp.device} stays ONLINE ({since:g}-{until:g} s)"
    return Result(name, out == 0.0, out, "= 0 s", detail="; ".join(seen) or "no state change")


def _moved(exp: Expectation, scenario: Scenario, rec: Recording) -> list[Result]:
    """mdns_move: time from the new announcement to the device ONLINE through the new proxy (time to
    move), samples through the new proxy, none through the old one once moved."""
    move = rec.moves.get(exp.step)
    if move is None or move.connected is None:
        detail = "the runner did not move it" if move is None else "never connected through the new proxy"
        return [Result(f"{exp.device} time to move", False, None, f"<= {exp.within:g} s", detail=detail)]
    left = rec.first_state(exp.device, move.announced, False, ONLINE)
    when = rec.first_state(exp.device, max(move.connected, left or move.connected), True, ONLINE)
    took = None if when is None else when - move.announced
    timed = _timed(
        Result, f"{exp.device} time to move (announced -> ONLINE at the new address)", took, exp.within
    )
    timed.detail = f"first connection through the new proxy after {move.connected - move.announced:.2f} s"
    old = move.old_bytes_after
    return [
        timed,
        Result(
            f"{exp.device} bytes through the new proxy", move.new_bytes > 0, move.new_bytes, "> 0", unit="B"
        ),
        Result(
            f"{exp.device} bytes through the old proxy once moved",
            old == 0,
            old,
            "= 0",
            unit="B",
            detail="" if old is not None else "never ONLINE at the new address",
        ),
    ]


def _timed(result: type[Result], name: str, took: float | None, within: float) -> Result:
    passed = took is not None and took <= within
    detail = "" if took is not None else "never happened"
    return result(name, passed, took, f"<= {within:g} s", detail=detail)


def _rates(
    result: type[Result], exp: Expectation, rig: Rig, scenario: Scenario, rec: Recording
) -> list[Result]:
    step = scenario.steps[exp.step]
    faulted = {s.device for s in scenario.steps if s.device}
    devices = exp.devices or [d.id for d in rig.devices if d.id not in faulted]
    until = step.end if step.end > step.at else min(step.at + 2.0, scenario.duration)
    out = []
    for device in devices:
        before = rec.rate(device, -scenario.settle, 0.0)
        during = rec.rate(device, step.at, until)
        change = (during / before - 1.0) if before > 0 else None
        passed: bool | None = change is not None and abs(change) <= exp.tolerance
        detail = f"{before:.1f}/s before, {during:.1f}/s during"
        if 0 < before < MIN_RATE:  # a device that reports on change: too few samples for a rate
            passed, detail = None, detail + f"; under {MIN_RATE:g}/s: not judged"
        out.append(
            result(
                f"{device} sample rate change",
                passed,
                None if change is None else change * 100,
                f"within ±{exp.tolerance * 100:g} %",
                unit="%",
                detail=detail,
            )
        )
    return out


def _command(result: type[Result], exp: Expectation, rec: Recording) -> Result:
    stop = exp.check is Check.STOP_LATENCY
    sent = [c for c in rec.commands if c.device == exp.device and (c.action == "stop") == stop]
    if not sent:
        return result(
            f"{exp.device} {exp.check}", False, None, f"<= {exp.within:g} s", detail="no command sent"
        )
    cmd = sent[0]
    if stop:
        took = cmd.ended - cmd.accepted if cmd.outcome == "SUCCEEDED" else None
        name = f"{exp.device} Stop latency (accepted -> stopped)"
    else:
        took = cmd.ended - cmd.sent if exp.code in cmd.outcome.split() else None
        name = f"{exp.device} command fails {exp.code} (fail-fast time)"
    res = _timed(result, name, took, exp.within)
    res.detail = cmd.outcome
    return res


def _uplink(result: type[Result], exp: Expectation, rec: Recording, faulted: set[str]) -> list[Result]:
    """Sequence gaps (lost messages), duplicates of the devices judged (default: those not faulted), and
    that every device reached the uplink at all."""
    up = rec.uplink
    if up is None:
        return [result("uplink", False, None, "", detail="no uplink subscriber")]
    silent = [d for d in rec.devices if up.samples[d] == 0]
    judged = exp.devices or [d for d in rec.devices if d not in faulted]
    dups = up.duplicates_of(judged)
    return [
        result(
            "uplink lost messages (seq gaps)",
            up.seq_gaps <= exp.max_lost,
            up.seq_gaps,
            f"<= {exp.max_lost}",
            unit="",
        ),
        result(
            f"uplink duplicate samples of {', '.join(judged)}",
            dups <= exp.max_duplicates,
            dups,
            f"<= {exp.max_duplicates}",
            unit="",
        ),
        result(
            "uplink devices with samples",
            not silent,
            len(rec.devices) - len(silent),
            f"= {len(rec.devices)}",
            unit="",
            detail=f"silent: {', '.join(silent)}" if silent else "",
        ),
    ]


def _recorded(scenario: Scenario, rec: Recording) -> list[Result]:
    out = [
        Result(f"{d} max sample gap", None, rec.max_gap(d, 0.0, scenario.duration), "") for d in rec.devices
    ]
    if rec.uplink is not None:
        out += [
            Result(f"{d} uplink samples", None, float(rec.uplink.samples[d]), "", unit="")
            for d in rec.devices
        ]
    return out
