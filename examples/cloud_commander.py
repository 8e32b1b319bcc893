"""Cloud-service style client: send a command to a device and follow its lifecycle to the end.

python examples/cloud_commander.py --device robot-1 --method StartProgram --arg demo
python examples/cloud_commander.py --device robot-1 --write speed_override=50
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

from linebridge.client import AsyncClient, ClientError, CommandState


def parse(raw: str) -> float | str:
    """A number when the text is one, else the text."""
    try:
        return float(raw)
    except ValueError:
        return raw


async def main(target: str, device: str, method: str, args: list[str], write: str, key: str) -> int:
    async with AsyncClient(target) as bridge:
        # The idempotency key makes a retry safe: the bridge returns the existing command, never a second one.
        if write:
            path, _, raw = write.partition("=")
            command = await bridge.execute(device, write={path: parse(raw)}, idempotency_key=key, timeout=30)
        else:
            command = await bridge.execute(device, invoke=method, args=args, idempotency_key=key, timeout=30)
        async for event in command.events():
            detail = event.error_message or event.progress_message
            result = ", ".join(str(v) for v in event.result)
            print(f"{event.command_id} {event.state.name} {detail} {result}".rstrip())
        try:
            await command.wait()
        except ClientError as exc:
            print(f"failed: {exc}")
    return 0 if command.state is CommandState.SUCCEEDED else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--device", default="robot-1")
    parser.add_argument("--method", default="StartProgram")
    parser.add_argument("--arg", action="append", default=[], help="method argument (text)")
    parser.add_argument("--write", default="", help="PATH=VALUE instead of a method call")
    parser.add_argument("--key", default="", help="idempotency key (default: a new one)")
    a = parser.parse_args()
    raise SystemExit(
        asyncio.run(main(a.target, a.device, a.method, a.arg, a.write, a.key or uuid.uuid4().hex))
    )
