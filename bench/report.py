"""Write benchmark results: `{"machine": ..., "scenarios": ...}` as JSON and a Markdown table."""

from __future__ import annotations

import json
import math
from pathlib import Path

# Extra keys shown under the table, per scenario, when present.
DETAILS = (
    "p50_ms",
    "p99_ms",
    "p999_ms",
    "rss_growth_mb",
    "idle_rss_mb",
    "min_per_subscriber",
    "offered_per_s",
    "request_rate",
    "baseline_request_rate",
    "requests_per_cycle",
    "naive_requests_per_cycle",
    "samples_per_payload",
    "messages_per_s",
    "unlimited_samples_per_s",
    "unlimited_baseline_samples_per_s",
    "drain_after_connect_s",
    "reconnect_s",
    "rate_limit_floor_s",
    "delivered_share",
    "driver_gaps",
    "driver_late",
    "sim_jitter_p99_ms",
    "protobuf_numpy",
    "protobuf_numpy_ratio",
    "samples",
    "bridge_cpu_pct",
    "dropped",
    "error",
)


def load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"machine": {}, "scenarios": {}}


def write(path: Path, data: dict) -> None:
    """The JSON file and its Markdown twin (same name, .md)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=_plain) + "\n")
    path.with_suffix(".md").write_text(markdown(data))


def _plain(value: object) -> object:
    return str(value)


def fmt(value: object, unit: str = "") -> str:
    """Numbers for people: 2,345,678 / 12.3 / 0.84; '-' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if unit == "ratio" or abs(value) < 10:
            return f"{value:.2f}" if unit != "ms" or abs(value) >= 0.1 else f"{value:.3f}"
        if abs(value) < 1000:
            return f"{value:.1f}"
        return f"{value:,.0f}"
    return str(value)


def markdown(data: dict) -> str:
    m = data.get("machine", {})
    lines = [
        "# Linebridge benchmark results",
        "",
        f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gb', '?')} GB; "
        f"Python {m.get('python', '?')}, grpcio {m.get('grpcio', '?')}, protobuf {m.get('protobuf', '?')}, "
        f"asyncua {m.get('asyncua', '?')}; {m.get('date', '?')}; commit {m.get('git_commit', '?')}"
        f"{' (modified)' if m.get('git_dirty') else ''}; mode {data.get('mode', '?')}; "
        f"load average at start {m.get('load_average', '?')}.",
        "",
        "| scenario | value | unit | baseline | ratio | target | met? |",
        "| --- | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for name, s in data.get("scenarios", {}).items():
        unit = s.get("unit", "")
        lines.append(
            f"| {name} | {fmt(s.get('value'), unit)} | {unit} | {fmt(s.get('baseline'), unit)} | "
            f"{fmt(s.get('ratio'), 'ratio')} | {s.get('target', '')} | "
            f"{'error' if 'error' in s else fmt(s.get('met'))} |"
        )
    lines += ["", "Details:", ""]
    for name, s in data.get("scenarios", {}).items():
        shown = [f"{k} {fmt(s[k], 'ms' if k.endswith('_ms') else '')}" for k in DETAILS if k in s]
        if s.get("notes"):
            shown.append("notes: " + "; ".join(s["notes"]))
        lines.append(f"* **{name}**: " + (", ".join(shown) or "-"))
    lines += [
        "",
        "Reproduce: `make bench` (full) or `make bench-quick`; raw numbers in the JSON file beside this one.",
        "",
    ]
    return "\n".join(lines)
