"""Integrator client: list the devices on the line, then print a live signal.

python examples/integrator.py --target 127.0.0.1:50051 --path 'robot-1/axes/1/actual_position' --count 20
"""

from __future__ import annotations

import argparse

from linebridge.client import Client


def main(target: str, path: str, count: int) -> int:
    with Client(target) as bridge:
        devices = bridge.devices()
        print(f"{len(devices)} device(s) on {target}:")
        for d in devices:
            print(
                f"  {d.id:<12} {d.state.name:<10} {d.vendor} {d.model} ({len(d.signals)} signals) at {d.endpoint}"
            )
        with bridge.subscribe([path]) as subscription:
            for printed, sample in enumerate(subscription.samples(), start=1):
                print(f"{sample.path} = {sample.value}")
                if printed >= count:
                    break
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--path", default="robot-1/axes/1/actual_position", help="signal path or glob")
    parser.add_argument("--count", type=int, default=20, help="samples to print before exiting")
    args = parser.parse_args()
    raise SystemExit(main(args.target, args.path, args.count))
