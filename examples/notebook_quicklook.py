"""Notebook quick look: subscribe for a while, build a DataFrame, save a PNG plot of joint positions.

Needs the data extra (pyarrow, pandas, matplotlib): pip install 'linebridge[data]'.

python examples/notebook_quicklook.py --target 127.0.0.1:50051 --path 'robot-1/axes/*/actual_position' --seconds 10
"""

from __future__ import annotations

import argparse
import time

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402

from linebridge.client import Client  # noqa: E402


def collect(target: str, path: str, seconds: float):  # type: ignore[no-untyped-def]
    """Every sample of `path` for `seconds`, as one wide DataFrame (a column per signal)."""
    with Client(target) as bridge, bridge.subscribe([path], history_seconds=seconds + 5) as subscription:
        end = time.monotonic() + seconds
        for _batch in subscription:
            if time.monotonic() >= end:
                break
        return subscription.history().to_pandas(wide=True)


def plot(frame, out: str, title: str) -> None:  # type: ignore[no-untyped-def]
    """One line per signal over time."""
    fig, ax = plt.subplots(figsize=(10, 4))
    for column in frame.columns:
        series = frame[column].dropna()
        ax.plot(series.index, series.to_numpy(), label=column, linewidth=1)
    ax.set_title(title)
    ax.set_xlabel("time (UTC)")
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--path", default="robot-1/axes/*/actual_position", help="signal glob")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", default="quicklook.png", help="PNG file to write")
    args = parser.parse_args()
    frame = collect(args.target, args.path, args.seconds)
    print(f"{len(frame)} rows x {len(frame.columns)} signals; dtypes: {dict(frame.dtypes.astype(str))}")
    print(frame.describe().T[["count", "mean", "min", "max"]].to_string())
    plot(frame, args.out, f"{args.path} over {args.seconds:g} s")
    print(f"wrote {args.out}")
    return 0 if len(frame) else 1


if __name__ == "__main__":
    raise SystemExit(main())
