"""One simulated AGV: the vehicle side of VDA 5050 2.x, driving orders on the station graph.

It publishes `connection` (retained, QoS 1, CONNECTIONBROKEN as its last will, §6.14), a retained
`factsheet` (§7), `state` on every event and at least every `state_interval` s (§6.10: "at least every
30 s"), and `visualization` at `viz_hz` (§6.13). headerIds count per topic (§6.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import aiomqtt
import msgspec

from linebridge.drivers.vda5050 import messages as m
from linebridge.drivers.vda5050.link import BrokerAddress, client
from linebridge.drivers.vda5050.sim_model import SIM_ACTIONS, STANDARD_ACTIONS, AgvConfig, AgvModel

log = logging.getLogger(__name__)
TICK = 0.05  # s between simulation steps


class SimAgv(AgvModel):
    """A protocol-true AGV on an MQTT broker; `run()` until cancelled."""

    def __init__(self, config: AgvConfig, broker: BrokerAddress) -> None:
        super().__init__(config)
        self.broker = broker
        c = config
        self.prefix = f"{c.interface}/v{m.SUPPORTED_MAJOR}/{c.manufacturer}/{c.serial}"
        self._ids: dict[str, int] = {}
        self._client: aiomqtt.Client | None = None
        self.connections = 0
        self.stopping = False

    # -- protocol ------------------------------------------------------------------------------
    def _header(self, topic: str) -> dict[str, object]:
        self._ids[topic] = self._ids.get(topic, -1) + 1  # §6.4: per topic, +1 for each message sent
        return m.header(self._ids[topic], self.cfg.manufacturer, self.cfg.serial)

    async def _send(self, topic: str, message: msgspec.Struct, qos: int = 0, retain: bool = False) -> None:
        if self._client is not None:
            await self._client.publish(f"{self.prefix}/{topic}", m.encode(message), qos=qos, retain=retain)

    def _connection(self, state: m.ConnectionState) -> m.Connection:
        return m.Connection(**self._header("connection"), connection_state=state)

    def state(self) -> m.State:
        """The §6.10 state message as of now."""
        w = self.w
        return m.State(
            **self._header("state"),
            order_id=w.order_id,
            order_update_id=w.order_update_id,
            last_node_id=w.last_node_id,
            last_node_sequence_id=w.last_node_seq,
            node_states=[
                m.NodeState(node_id=n.node_id, sequence_id=n.sequence_id, released=n.released)
                for n in w.nodes
            ],
            edge_states=[
                m.EdgeState(edge_id=e.edge_id, sequence_id=e.sequence_id, released=e.released)
                for e in w.edges
            ],
            driving=w.driving,
            paused=w.paused,
            action_states=list(w.actions.values()),
            battery_state=m.BatteryState(battery_charge=round(w.battery, 3), charging=False),
            operating_mode="AUTOMATIC",
            errors=list(w.errors),
            safety_state=m.SafetyState(e_stop="NONE", field_violation=False),
            agv_position=self._position(),
            velocity=m.Velocity(vx=self._speed if w.driving else 0.0, vy=0.0, omega=0.0),
            loads=list(w.loads),
        )

    def _position(self) -> m.AgvPosition:
        return m.AgvPosition(
            x=round(self.x, 4),
            y=round(self.y, 4),
            theta=round(self.theta, 4),
            map_id=self.cfg.map_id,
            position_initialized=True,
            localization_score=0.95,
        )

    def factsheet(self) -> m.Factsheet:
        """The §7 factsheet, including the sim-only actions."""
        actions = [
            m.AgvAction(action_type=t, action_scopes=["INSTANT"]) for t in (*STANDARD_ACTIONS, *SIM_ACTIONS)
        ]
        actions += [m.AgvAction(action_type=t, action_scopes=["NODE"]) for t in ("pick", "drop")]
        return m.Factsheet(
            **self._header("factsheet"),
            type_specification=m.TypeSpecification(
                series_name="LB-Tugger",
                agv_kinematic="DIFF",
                agv_class="CARRIER",
                max_load_mass=500.0,
                localization_types=["NATURAL"],
                navigation_types=["VIRTUAL_LINE_GUIDED"],
            ),
            physical_parameters=m.PhysicalParameters(
                speed_min=0.0,
                speed_max=self.cfg.speed_max,
                acceleration_max=1.0,
                deceleration_max=1.0,
                height_max=1.2,
                width=0.8,
                length=1.4,
            ),
            protocol_limits={"maxStringLens": {}, "maxArrayLens": {}, "timing": {"minStateInterval": 0.1}},
            protocol_features=m.ProtocolFeatures(agv_actions=actions),
            agv_geometry={},
            load_specification={"loadPositions": ["front"]},
        )

    # -- running -------------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, publish, obey; reconnect after a deliberate drop or a broker restart."""
        while not self.stopping:
            try:
                await self._session()
            except Exception as exc:  # MqttError, or the session TaskGroup's ExceptionGroup around one
                if self.stopping:  # aiomqtt's exit can raise MqttError while it is cancelled: stop wins
                    return
                log.debug("AGV %s: connection ended: %r", self.cfg.serial, exc)
            self._client = None
            await asyncio.sleep(self.cfg.reconnect_seconds)

    async def _session(self) -> None:
        will = aiomqtt.Will(
            f"{self.prefix}/connection",
            m.encode(
                m.Connection(
                    **m.header(self._ids.get("connection", -1) + 1, self.cfg.manufacturer, self.cfg.serial),
                    connection_state="CONNECTIONBROKEN",
                )
            ),
            qos=1,
            retain=True,
        )
        async with client(self.broker, f"sim-{self.cfg.serial}", will=will, keepalive=5) as c:
            self._client, self._drop = c, asyncio.Event()
            self.connections += 1
            await c.subscribe(f"{self.prefix}/order", qos=0)  # §6.2: order and instantActions at QoS 0
            await c.subscribe(f"{self.prefix}/instantActions", qos=0)
            await self._send("connection", self._connection("ONLINE"), qos=1, retain=True)
            await self._send("factsheet", self.factsheet(), qos=0, retain=True)
            self._dirty = True
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._listen(c))
                tasks.create_task(self._loop())
                tasks.create_task(self._until_dropped(c))

    async def _until_dropped(self, c: aiomqtt.Client) -> None:
        await self._drop.wait()
        # Close the socket without DISCONNECT, so the broker publishes the last will (§6.14).
        # aiomqtt has no public call for an abrupt close; paho's socket() is the documented way in.
        sock = c._client.socket()  # noqa: SLF001
        if sock is not None:
            # shutdown, not close: paho keeps a valid fd, reads EOF and reports the connection lost.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        raise aiomqtt.MqttError("connection dropped on request")

    async def stop(self) -> None:
        """Say OFFLINE (retained) before a clean disconnect, as §6.14 asks; run() ends after this."""
        self.stopping = True
        with contextlib.suppress(aiomqtt.MqttError):
            await self._send("connection", self._connection("OFFLINE"), qos=1, retain=True)

    async def _listen(self, c: aiomqtt.Client) -> None:
        async for message in c.messages:
            topic = message.topic.value.rsplit("/", 1)[-1]
            payload = message.payload if isinstance(message.payload, bytes) else b""
            try:
                if topic == "order":
                    self.on_order(m.DECODERS["order"].decode(payload))
                elif topic == "instantActions":
                    self.on_instant(m.DECODERS["instantActions"].decode(payload))
            except msgspec.DecodeError as exc:
                self._warn("validationError", f"cannot read {topic}: {exc}")

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_viz = next_state = loop.time()
        while True:
            await asyncio.sleep(TICK)
            now = loop.time()
            self.step(TICK)
            if self.want_factsheet:
                self.want_factsheet = False
                await self._send("factsheet", self.factsheet(), retain=True)
            if self._dirty or now >= next_state:
                self._dirty = False
                next_state = now + self.cfg.state_interval
                await self._send("state", self.state())
            if self.cfg.viz_hz > 0 and now >= next_viz:
                next_viz = now + 1.0 / self.cfg.viz_hz
                await self._send(
                    "visualization",
                    m.Visualization(**self._header("visualization"), agv_position=self._position()),
                )
