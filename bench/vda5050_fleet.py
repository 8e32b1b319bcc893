"""Publisher of the `vda5050_state` scenario: N AGVs' `visualization` and `state` from one process.

`python -m bench.vda5050_fleet --port P --agvs N --viz-hz 10 --state-hz 1 --start-at T --duration S`
publishes each AGV's retained `connection` (ONLINE) and `factsheet`, prints READY, then from T for S
seconds publishes visualization at --viz-hz and state at --state-hz per AGV (headerIds per topic,
spread evenly over each period), at QoS 0 as VDA 5050 §6.2 asks, over a few MQTT connections.
Prints one RESULT line with the exact counts sent (the receivers' loss is measured against them).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time

import aiomqtt

from bench.common import emit_result
from linebridge.drivers.vda5050 import messages as m
from linebridge.drivers.vda5050.link import parse_endpoint
from linebridge.drivers.vda5050.sim_agv import SimAgv
from linebridge.drivers.vda5050.sim_model import AgvConfig

MANUFACTURER = "bench"
CONNECTIONS = 4


def fleet(port: int, count: int) -> list[SimAgv]:
    address = parse_endpoint(f"mqtt://127.0.0.1:{port}")
    return [
        SimAgv(AgvConfig(f"agv-{i:04d}", manufacturer=MANUFACTURER, x=float(i), node_id="n"), address)
        for i in range(count)
    ]


async def announce(client: aiomqtt.Client, agvs: list[SimAgv]) -> None:
    for agv in agvs:
        await client.publish(
            f"{agv.prefix}/connection", m.encode(agv._connection("ONLINE")), qos=1, retain=True
        )
        await client.publish(f"{agv.prefix}/factsheet", m.encode(agv.factsheet()), qos=1, retain=True)


def template(message: m.Visualization | m.State) -> tuple[bytes, bytes]:
    """The message's JSON split around its headerId (the first field), so a send only formats a number."""
    raw = m.encode(message)
    prefix = b'{"headerId":'
    assert raw.startswith(prefix)
    return prefix, raw[raw.index(b",") :]


async def publish(
    client: aiomqtt.Client, agvs: list[SimAgv], args: argparse.Namespace, sent: dict[str, int]
) -> None:
    """Every tick (1/viz_hz) send one visualization per AGV and a state for a slice of them.

    Payloads are made once per AGV (a typed message, encoded) and only their headerId changes, so
    the publisher keeps up with 2,200 messages/s in one process.
    """
    period = 1.0 / args.viz_hz
    ticks = round(args.duration * args.viz_hz)
    per_state = max(1, round(args.viz_hz / args.state_hz))  # ticks between two states of one AGV
    viz = [
        (
            f"{a.prefix}/visualization",
            template(
                m.Visualization(
                    **a._header("visualization"),
                    agv_position=a._position(),
                    velocity=m.Velocity(vx=0.1, vy=0.0, omega=0.0),
                )
            ),
        )
        for a in agvs
    ]
    states = [(f"{a.prefix}/state", template(a.state())) for a in agvs]
    publish = client._client.publish  # noqa: SLF001  paho's own call: QoS 0 needs no acknowledgement to await
    for tick in range(ticks):
        await asyncio.sleep(max(0.0, args.start_at + tick * period - time.time()))
        header_id = tick + 1
        for i, (topic, (head, tail)) in enumerate(viz):
            publish(topic, head + str(header_id).encode() + tail, qos=0)
            sent["visualization"] += 1
            if (tick + i) % per_state == 0:
                topic, (head, tail) = states[i]
                publish(topic, head + str(header_id).encode() + tail, qos=0)
                sent["state"] += 1


async def main_async(args: argparse.Namespace) -> None:
    agvs = fleet(args.port, args.agvs)
    groups = [agvs[i::CONNECTIONS] for i in range(CONNECTIONS)]
    sent = {"visualization": 0, "state": 0}
    clients = [
        aiomqtt.Client(
            "127.0.0.1", args.port, identifier=f"bench-fleet-{i}", max_queued_outgoing_messages=None
        )
        for i in range(CONNECTIONS)
    ]
    for c in clients:
        await c.__aenter__()
    try:
        for c, group in zip(clients, groups, strict=True):
            await announce(c, group)
        print("READY fleet", flush=True)
        await asyncio.gather(*(publish(c, g, args, sent) for c, g in zip(clients, groups, strict=True)))
        await asyncio.sleep(0.5)  # let the last QoS 0 messages leave the sockets
    finally:
        for c in clients:
            await c.__aexit__(None, None, None)
    emit_result({**sent, "messages": sent["visualization"] + sent["state"], "finished_at": time.time()})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--agvs", type=int, default=200)
    p.add_argument("--viz-hz", type=float, default=10.0)
    p.add_argument("--state-hz", type=float, default=1.0)
    p.add_argument("--start-at", type=float, required=True)
    p.add_argument("--duration", type=float, required=True)
    args = p.parse_args()
    assert math.isfinite(args.start_at)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
