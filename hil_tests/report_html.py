"""One self-contained HTML report: per scenario a timeline drawn as inline SVG from the recorded data
(device states, sample rates, fault windows, commands) and a table of measurements against bounds.

No script, stylesheet, font or image is fetched: everything is in the file."""

from __future__ import annotations

from html import escape

from linebridge.hil.measure import Recording, Result, ScenarioRun, rate_series, times_of

WIDTH, LEFT, RIGHT = 960, 110, 20
BAND, RATE_H, GAP = 16, 46, 8
STATE_COLOURS = {
    "ONLINE": "#2e9d4f",
    "DEGRADED": "#e0b000",
    "CONNECTING": "#5b8def",
    "DISCOVERED": "#9aa7b8",
    "OFFLINE": "#d64545",
}
STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 24px}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f2f2f2}.pass{color:#17803d}.fail{color:#c62828;font-weight:bold}.info{color:#666}
svg text{font-size:11px;font-family:system-ui,sans-serif}.legend span{display:inline-block;margin-right:12px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
"""


class _Axis:
    """Maps scenario seconds to x pixels."""

    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end

    def x(self, t: float) -> float:
        t = min(max(t, self.start), self.end)
        return LEFT + (t - self.start) / (self.end - self.start) * (WIDTH - LEFT - RIGHT)


def _states(rec: Recording, device: str, axis: _Axis, y: float) -> list[str]:
    spans = rec.states.get(device, [])
    out = []
    for i, (t, name) in enumerate(spans):
        end = spans[i + 1][0] if i + 1 < len(spans) else axis.end
        x0, x1 = axis.x(t), axis.x(end)
        colour = STATE_COLOURS.get(name, "#888")
        out.append(
            f'<rect class="state" x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 0.5):.1f}" height="{BAND}" '
            f'fill="{colour}"><title>{escape(device)} {name} from {t:.2f} s</title></rect>'
        )
    return out


def _rates(
    series: list[tuple[float, float]], axis: _Axis, y: float, colour: str, label: str, row: int = 0
) -> list[str]:
    if not series:
        return []
    top = max(r for _, r in series) or 1.0
    points = " ".join(f"{axis.x(t):.1f},{y + RATE_H - r / top * RATE_H:.1f}" for t, r in series)
    return [
        f'<polyline class="rate" points="{points}" fill="none" stroke="{colour}" stroke-width="1.2">'
        f"<title>{escape(label)} (max {top:.0f}/s)</title></polyline>",
        f'<text x="{WIDTH - RIGHT}" y="{y + 9 + row * 12}" text-anchor="end" fill="{colour}">{top:.0f}/s</text>',
    ]


def _faults(rec: Recording, axis: _Axis, height: float) -> list[str]:
    out = []
    for start, end, link, kind in rec.faults:
        x0, x1 = axis.x(start), axis.x(end)
        out.extend(
            [
                f'<rect class="fault" x="{x0:.1f}" y="14" width="{max(x1 - x0, 2):.1f}" height="{height - 14}" '
                f'fill="#ff8a00" fill-opacity="0.18" stroke="#ff8a00"><title>{kind} on {escape(link)} '
                f"{start:.2f}-{end:.2f} s</title></rect>",
                f'<text x="{x0 + 2:.1f}" y="11" fill="#b35c00">{kind} {escape(link)}</text>',
            ]
        )
    for move in rec.moves.values():  # mdns_move: where the bridge first came to the new address
        if move.connected is not None:
            x = axis.x(move.connected)
            out.append(
                f'<line class="moved" x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{height}" stroke="#6a1b9a" '
                f'stroke-dasharray="3 2"><title>{escape(move.device)}: first connection through the new '
                f"address at {move.connected:.2f} s</title></line>"
            )
    return out


def _commands(rec: Recording, axis: _Axis, rows: dict[str, float]) -> list[str]:
    out = []
    for cmd in rec.commands:
        y = rows.get(cmd.device, 20) + BAND / 2
        x0 = axis.x(cmd.sent)
        x1 = axis.x(cmd.ended) if cmd.ended == cmd.ended else x0
        ok = cmd.outcome == "SUCCEEDED"
        colour = "#1b5e20" if ok else "#b71c1c"
        out.append(
            f'<g class="command"><line x1="{x0:.1f}" y1="{y}" x2="{x1:.1f}" y2="{y}" stroke="{colour}" '
            f'stroke-width="3"/><circle cx="{x1:.1f}" cy="{y}" r="4" fill="{colour}"/><title>{cmd.action} '
            f"to {escape(cmd.device)} at {cmd.sent:.2f} s: {escape(cmd.outcome)} after "
            f"{cmd.ended - cmd.sent:.3f} s</title></g>"
        )
    return out


def timeline(run: ScenarioRun) -> str:
    """The SVG timeline of one scenario."""
    rec, scenario = run.recording, run.scenario
    axis = _Axis(-scenario.settle, scenario.duration)
    parts: list[str] = []
    rows: dict[str, float] = {}
    y = 20.0
    for device in rec.devices:
        rows[device] = y
        parts.append(f'<text x="4" y="{y + 12}">{escape(device)}</text>')
        parts += _states(rec, device, axis, y)
        parts += _rates(
            rec.rate_series(device, scenario.duration), axis, y + BAND + 2, "#1f4e9c", f"{device} bridge"
        )
        if rec.uplink is not None:
            parts += _rates(
                _uplink_series(rec, device, scenario.duration),
                axis,
                y + BAND + 2,
                "#8e24aa",
                f"{device} uplink",
                row=1,
            )
        y += BAND + RATE_H + GAP + 4
    height = y + 18
    parts = _faults(rec, axis, height - 18) + parts + _commands(rec, axis, rows)
    for t in range(int(axis.start), int(axis.end) + 1, 2):
        parts.append(f'<text x="{axis.x(t):.1f}" y="{height - 4}" text-anchor="middle">{t}s</text>')
    parts.append(
        f'<line x1="{axis.x(0):.1f}" y1="14" x2="{axis.x(0):.1f}" y2="{height - 16}" stroke="#555"/>'
    )
    return (
        f'<svg class="timeline" data-scenario="{escape(scenario.name)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{height:.0f}" viewBox="0 0 {WIDTH} {height:.0f}">'
        + "".join(parts)
        + "</svg>"
    )


def _uplink_series(rec: Recording, device: str, until: float) -> list[tuple[float, float]]:
    assert rec.uplink is not None
    return rate_series(times_of(rec.uplink.arrivals, device), until)


def _row(result: Result) -> str:
    verdict, css = {True: ("pass", "pass"), False: ("FAIL", "fail"), None: ("info", "info")}[result.passed]
    measured = "-" if result.measured is None else f"{result.measured:.3f} {result.unit}"
    return (
        f"<tr><td>{escape(result.name)}</td><td>{measured}</td><td>{escape(result.bound or '-')}</td>"
        f'<td class="{css}">{verdict}</td><td>{escape(result.detail)}</td></tr>'
    )


def _section(run: ScenarioRun) -> str:
    verdict = '<span class="pass">pass</span>' if run.passed else '<span class="fail">FAIL</span>'
    error = f'<p class="fail">{escape(run.error)}</p>' if run.error else ""
    rows = "".join(_row(r) for r in run.results)
    return (
        f'<section class="scenario" id="{escape(run.scenario.name)}"><h2>{escape(run.scenario.name)} {verdict}</h2>'
        f"<p>{escape(run.scenario.description)} ({run.wall_seconds:.1f} s)</p>{error}{timeline(run)}"
        "<table><tr><th>measurement</th><th>measured</th><th>bound</th><th>verdict</th><th>detail</th></tr>"
        f"{rows}</table></section>"
    )


def _legend() -> str:
    swatches = [(name, colour) for name, colour in STATE_COLOURS.items()]
    swatches += [
        ("bridge samples/s", "#1f4e9c"),
        ("uplink samples/s", "#8e24aa"),
        ("fault window", "#ff8a00"),
    ]
    return (
        '<p class="legend">'
        + "".join(f'<span><i class="swatch" style="background:{c}"></i>{n}</span>' for n, c in swatches)
        + "</p>"
    )


def html_report(rig: str, runs: list[ScenarioRun]) -> str:
    """The whole report as one HTML document."""
    passed = sum(1 for r in runs if r.passed)
    body = "".join(_section(r) for r in runs)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>HIL report {escape(rig)}</title><style>{STYLE}</style></head><body>"
        f"<h1>HIL report: {escape(rig)}</h1><p>{passed} of {len(runs)} scenarios passed.</p>{_legend()}"
        f"{body}</body></html>\n"
    )
