"""Cloud-service style client: send a command to a device and follow its lifecycle to the end.

python examples/cloud_commander.py --device robot-1 --method StartProgram --arg demo
python examples/cloud_commander.py --device robot-1 --write speed_override=50
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

from linebridge.api import pb
from linebridge.client import Client, value_message, value_of


def build_request(
    device: str, method: str, args: list[str], write: str, key: str
) -> pb.command.ExecuteRequest:
    request = pb.command.ExecuteRequest(device_id=device, idempotency_key=key)
    request.timeout.FromSeconds(30)
    if write:
        path, _, raw = write.partition("=")
        value: float | str = float(raw) if raw.replace(".", "", 1).lstrip("-").isdigit() else raw
        request.write.writes.add(path=path, value=value_message(value))
    else:
        request.invoke.method = method
        request.invoke.args.extend(value_message(a) for a in args)
    return request


async def main(target: str, request: pb.command.ExecuteRequest) -> int:
    async with Client(target) as client:
        final = None
        # A cloud service retries on network errors; the idempotency key makes a retry safe.
        async for event in client.commands.Execute(request):
            final = event
            state = pb.command.CommandState.Name(event.state).removeprefix("COMMAND_STATE_")
            detail = event.error.message or event.progress_message
            result = ", ".join(str(value_of(v)) for v in event.result)
            print(f"{event.command_id} {state} {detail} {result}".rstrip())
    return 0 if final is not None and final.state == pb.command.COMMAND_STATE_SUCCEEDED else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--device", default="robot-1")
    parser.add_argument("--method", default="StartProgram")
    parser.add_argument("--arg", action="append", default=[], help="method argument (text)")
    parser.add_argument("--write", default="", help="PATH=VALUE instead of a method call")
    parser.add_argument("--key", default="", help="idempotency key (default: a new one)")
    a = parser.parse_args()
    req = build_request(a.device, a.method, a.arg, a.write, a.key or uuid.uuid4().hex)
    raise SystemExit(asyncio.run(main(a.target, req)))
