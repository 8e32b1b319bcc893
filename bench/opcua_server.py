"""A bench-only OPC UA server: `python -m bench.opcua_server --variables 1000 --rate-hz 10`, prints READY.

Every variable (Double, `ns=2;s=Bench/vNNNN` under the folder `ns=2;s=Bench`) gets a new value and
source timestamp `rate_hz` times a second, all in one tick, so the offered load is
variables x rate_hz samples/s. It reports the ticks it missed in its RESULT line on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
import time
from datetime import UTC, datetime

from asyncua import Server, ua

from bench.common import emit_ready, emit_result
from linebridge.cli.runner import stop_event

NAMESPACE = "urn:linebridge:bench"
FOLDER = "ns=2;s=Bench"


async def build(variables: int) -> tuple[Server, list[ua.NodeId]]:
    server = Server()
    await server.init()
    server.set_endpoint("opc.tcp://127.0.0.1:0/bench/")
    server.set_server_name("Linebridge bench OPC UA server")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    server.set_identity_tokens([ua.AnonymousIdentityToken])
    server.disable_clock()  # its 1 s sleep would delay stop()
    ns = await server.register_namespace(NAMESPACE)
    assert ns == 2, ns  # FOLDER and the node ids below assume namespace index 2
    folder = await server.nodes.objects.add_folder(ua.NodeId("Bench", ns), ua.QualifiedName("Bench", ns))
    nodes = []
    for i in range(variables):
        node = await folder.add_variable(
            ua.NodeId(f"Bench/v{i:04d}", ns),
            ua.QualifiedName(f"v{i:04d}", ns),
            ua.Variant(0.0, ua.VariantType.Double),
        )
        nodes.append(node.nodeid)
    return server, nodes


async def change(server: Server, nodes: list[ua.NodeId], rate_hz: float, stats: dict) -> None:
    """Write every variable once per tick; a tick that overruns its period is counted as late."""
    period = 1.0 / rate_hz
    next_at = time.monotonic()
    tick = 0
    while True:
        tick += 1
        stamp = datetime.now(UTC)
        for i, node in enumerate(nodes):
            value = ua.Variant(math.sin(0.01 * tick + i), ua.VariantType.Double)
            await server.write_attribute_value(
                node, ua.DataValue(value, SourceTimestamp=stamp, ServerTimestamp=stamp)
            )
        stats["ticks"] += 1
        stats["writes"] += len(nodes)
        next_at += period
        delay = next_at - time.monotonic()
        if delay < 0:
            stats["late_ticks"] += 1
            next_at = time.monotonic()  # do not try to catch up: the offered rate is what we manage
        await asyncio.sleep(max(0.0, delay))


async def serve(args: argparse.Namespace) -> dict:
    stop = stop_event()
    server, nodes = await build(args.variables)
    stats = {"ticks": 0, "writes": 0, "late_ticks": 0}
    await server.start()
    try:
        port = server.bserver.port  # what port 0 resolved to
        endpoint = f"opc.tcp://127.0.0.1:{port}/bench/"
        for description in server.iserver.endpoints:
            description.EndpointUrl = endpoint  # GetEndpoints should name the bound port
        task = asyncio.create_task(change(server, nodes, args.rate_hz, stats))
        started = time.monotonic()
        emit_ready(endpoint)
        try:
            await stop.wait()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        stats["writes_per_s"] = stats["writes"] / (time.monotonic() - started)
    finally:
        await server.stop()
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.opcua_server")
    parser.add_argument("--variables", type=int, default=1000)
    parser.add_argument("--rate-hz", type=float, default=10.0, help="value changes per variable per second")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    emit_result(asyncio.run(serve(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
