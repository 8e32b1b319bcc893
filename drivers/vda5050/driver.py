"""The `vda5050` driver: master control's side of one fleet broker; every AGV on it is a device.

The driver's own device is the broker connection (`vda5050+mqtt://host:port?interface=uagv&
manufacturer=...`). It subscribes to `{interface}/v2/{manufacturer}/+/{connection,state,factsheet,
visualization}` (§6.3, §6.5) and attaches an AGV device when its retained `connection` says ONLINE;
OFFLINE or CONNECTIONBROKEN (the AGV's last will, §6.14) detach it. Bad messages are counted per kind,
logged once per kind and dropped: the AGV's previous values stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import replace

import aiomqtt
import msgspec
from pydantic import Field

from linebridge.drivers.base import (
    BatchSink,
    DeviceDescription,
    DeviceKind,
    DiscoveredDevice,
    Driver,
    DriverContext,
    DriverOptions,
    InvalidArgument,
    MdnsMatch,
    MdnsService,
    SampleBatch,
    Signal,
    StreamHints,
    Unavailable,
    ValueType,
)
from linebridge.drivers.vda5050 import messages as m
from linebridge.drivers.vda5050.agv import Agv
from linebridge.drivers.vda5050.link import BrokerAddress, client, parse_endpoint, tls_context

log = logging.getLogger(__name__)
# §6.3: a serial number consists of A-Z a-z 0-9 _ . : - (no "/" and no "$").
SERIAL = re.compile(r"[A-Za-z0-9_.:\-]+")
TOPICS = ("connection", "state", "factsheet", "visualization")
HOUSEKEEPING_SECONDS = 0.2  # how often stateRequests and counters are looked after
BAD_KINDS = ("malformed_json", "wrong_version", "schema", "stale_state", "bad_serial", "oversize")


class Vda5050Options(DriverOptions):
    """Options of a fleet connection (credentials and TLS as the uplink has them)."""

    username: str = ""
    password: str = ""
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    client_id: str = ""  # default: linebridge-<device id>
    keepalive_seconds: int = Field(15, ge=1, le=65535)
    # Prepended to each serial number to form the AGV's device id.
    device_prefix: str = Field("", pattern=r"^[a-z0-9._-]*$")
    # A message above this size is dropped unread (the 10 MB message).
    max_message_bytes: int = Field(1 << 20, ge=1024)


class Vda5050Driver(Driver):
    """One MQTT connection to a fleet broker; attaches each AGV as a device through ctx.host."""

    type_name = "vda5050"
    options_model = Vda5050Options
    discovery = (MdnsMatch("_mqtt._tcp.local."),)

    def __init__(self, ctx: DriverContext) -> None:
        super().__init__(ctx)
        self.options: Vda5050Options = ctx.options  # type: ignore[assignment]
        self.address: BrokerAddress = parse_endpoint(ctx.endpoint)
        self.agvs: dict[str, Agv] = {}
        self.bad = dict.fromkeys(BAD_KINDS, 0)
        self.messages = 0
        self._client: aiomqtt.Client | None = None
        self._sink: BatchSink | None = None
        self._signals: list[Signal] = []
        self._state_wanted: list[Agv] = []  # attached AGVs to ask for a state (stateRequest)

    @classmethod
    def from_mdns(cls, service: MdnsService) -> DiscoveredDevice:
        """A broker announced as `_mqtt._tcp` with TXT `vda5050=<interface>[/<manufacturer>]`."""
        spec = service.properties.get("vda5050")
        if not spec:
            raise InvalidArgument(f"MQTT broker {service.instance!r} carries no vda5050 TXT entry")
        interface, _, manufacturer = spec.partition("/")
        for part in (interface, manufacturer):  # §6.3 topic levels: no "/", "$" or MQTT wildcards
            if part and not SERIAL.fullmatch(part):
                raise InvalidArgument(
                    f"vda5050 TXT {spec!r}: interface/manufacturer must not contain / + # $"
                )
        endpoint = f"vda5050+mqtt://{service.host}:{service.port}?interface={interface}"
        if manufacturer:
            endpoint += f"&manufacturer={manufacturer}"
        parse_endpoint(endpoint)  # junk TXT values raise InvalidArgument here
        name = re.sub(r"[^a-z0-9._-]+", "-", service.instance.lower()).strip("-") or "broker"
        return DiscoveredDevice(f"fleet-{name}"[:63], endpoint, name=f"VDA 5050 fleet {service.instance}")

    # -- connection ------------------------------------------------------------------------------
    async def connect(self) -> DeviceDescription:
        """Connect to the fleet broker and subscribe to every AGV's topics of this interface and manufacturer."""
        o, a = self.options, self.address
        tls = tls_context(o.tls_ca_file, o.tls_cert_file, o.tls_key_file) if a.tls else None
        self._client = client(
            a,
            o.client_id or f"linebridge-{self.device_id}",
            username=o.username,
            password=o.password,
            tls=tls,
            keepalive=o.keepalive_seconds,
            on_message=self._received,
        )
        try:
            await self._client.__aenter__()
        except aiomqtt.MqttError as exc:
            self._client = None
            raise Unavailable(f"cannot connect to {a.host}:{a.port}: {exc}") from None
        manufacturer = a.manufacturer or "+"
        for topic in TOPICS:  # §6.2: connection at QoS 1, the rest at QoS 0
            await self._client.subscribe(
                f"{a.interface}/v{m.SUPPORTED_MAJOR}/{manufacturer}/+/{topic}",
                qos=1 if topic == "connection" else 0,
            )
        self._signals = [Signal("agvs_online", ValueType.INT), Signal("messages", ValueType.INT)] + [
            Signal(f"bad/{kind}", ValueType.INT, description="messages dropped: " + kind.replace("_", " "))
            for kind in BAD_KINDS
        ]
        return DeviceDescription(
            kind=DeviceKind.OTHER,
            vendor="VDA 5050",
            model=f"{a.interface}/v{m.SUPPORTED_MAJOR}",
            identity=f"vda5050://{a.host}:{a.port}/{a.interface}/{a.manufacturer}",
            name=f"VDA 5050 fleet on {a.host}:{a.port}",
            signals=self._signals,
        )

    async def close(self) -> None:
        """Disconnect from the broker; every attached AGV goes OFFLINE. Idempotent."""
        for agv in self.agvs.values():
            if self.ctx.host is not None and agv.columns is not None:
                self.ctx.host.detach(agv.device_id, "fleet connection closed")
            agv.columns = None
        self.agvs = {}
        c, self._client = self._client, None
        if c is not None:
            with contextlib.suppress(Exception):
                await c.__aexit__(None, None, None)

    def diagnostics(self) -> dict[str, str]:
        """The broker address and the topic filter this driver subscribes to."""
        a = self.address
        return {"broker": f"{a.host}:{a.port}", "topics": f"{a.interface}/v2/{a.manufacturer or '+'}/+/..."}

    async def stream(self, signals: Sequence[Signal], sink: BatchSink, hints: StreamHints) -> None:
        """Messages are handled as paho reads them (`_received`); this loop sends the stateRequests of
        newly attached AGVs, publishes the fleet counters each second, and ends when the link breaks."""
        if self._client is None:
            raise Unavailable("not connected")
        self._sink = sink
        link = asyncio.ensure_future(self._until_disconnected(self._client))
        next_counters = 0.0
        try:
            while not link.done():
                await asyncio.wait({link}, timeout=HOUSEKEEPING_SECONDS)
                while self._state_wanted:
                    await self._request_state(self._state_wanted.pop())
                if time.monotonic() >= next_counters:
                    next_counters = time.monotonic() + 1.0
                    self._publish_counters()
            link.result()
        except aiomqtt.MqttError as exc:
            raise Unavailable(f"fleet broker connection lost: {exc}") from None
        finally:
            link.cancel()

    @staticmethod
    async def _until_disconnected(c: aiomqtt.Client) -> None:
        """Iterate aiomqtt's message view: it yields nothing (messages are dispatched) and raises on disconnect."""
        async for _ in c.messages:
            pass

    def _received(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes | bytearray) else b""
        try:
            self.on_message(message.topic.value, bytes(payload))
        except Exception:  # on_message is built not to raise; paho's read loop must survive a bug anyway
            log.exception("%s: a message from %s could not be handled", self.device_id, message.topic.value)

    async def read(self, signals: Sequence[Signal]) -> SampleBatch:
        """The fleet connection's own signals (counters of AGVs and bad messages)."""
        values = self._counter_values()
        by_path = dict(zip((s.path for s in self._signals), values, strict=True))
        now = time.time_ns()
        return SampleBatch(
            self.device_id,
            [s.alias for s in signals],
            [by_path[s.path] for s in signals],
            [now] * len(signals),
        )

    def _counter_values(self) -> list[int]:
        online = sum(1 for a in self.agvs.values() if a.columns is not None)
        return [online, self.messages, *self.bad.values()]

    def _publish_counters(self) -> None:
        if self._sink is not None and self._signals:
            values = self._counter_values()
            now = time.time_ns()
            self._sink.publish(
                SampleBatch(
                    self.device_id,
                    [s.alias for s in self._signals],
                    values,
                    [now] * len(values),
                    value_type=ValueType.INT,
                )
            )

    # -- messages --------------------------------------------------------------------------------
    def _drop(self, kind: str, serial: str, detail: str) -> None:
        self.bad[kind] += 1
        if self.bad[kind] == 1:  # logged once per kind; the count is a signal (bad/<kind>)
            log.warning(
                "%s: dropped a message from AGV %r (%s): %s; further ones are only counted",
                self.device_id,
                serial,
                kind,
                detail[:200],
            )

    def on_message(self, topic: str, payload: bytes) -> None:
        """Decode and apply one message; bad ones are counted and leave the AGV's values as they were."""
        self.messages += 1
        parts = topic.split("/")
        if len(parts) != 5:
            return
        _, _, manufacturer, serial, kind = parts
        if len(payload) > self.options.max_message_bytes:
            return self._drop("oversize", serial, f"{len(payload)} bytes on {kind}")
        if not SERIAL.fullmatch(serial):
            return self._drop("bad_serial", serial, "serial numbers use A-Z a-z 0-9 _ . : - only (§6.3)")
        try:
            message = m.DECODERS[kind].decode(payload)
        except msgspec.ValidationError as exc:
            return self._drop("schema", serial, f"{kind}: {exc}")
        except msgspec.DecodeError as exc:
            return self._drop("malformed_json", serial, f"{kind}: {exc}")
        if m.major_of(message.version) != m.SUPPORTED_MAJOR:
            return self._drop("wrong_version", serial, f"{kind}: version {message.version!r}")
        if message.serial_number != serial or message.manufacturer != manufacturer:
            return self._drop(
                "bad_serial",
                serial,
                f"header says {message.manufacturer}/{message.serial_number}, topic {manufacturer}/{serial}",
            )
        self._apply(kind, manufacturer, serial, message)

    def _agv(self, manufacturer: str, serial: str) -> Agv:
        agv = self.agvs.get(serial)
        if agv is None:
            ctx = replace(self.ctx, device_id=f"{self.options.device_prefix}{serial}", host=None)
            agv = self.agvs[serial] = Agv(ctx, manufacturer, serial, self._send)
        return agv

    def _apply(self, kind: str, manufacturer: str, serial: str, message: msgspec.Struct) -> None:
        agv = self._agv(manufacturer, serial)
        if isinstance(message, m.Connection):
            if message.connection_state == "ONLINE":
                agv.new_session()
                self._attach(agv)
            elif agv.columns is not None and self.ctx.host is not None:
                agv.columns = None
                self.ctx.host.detach(agv.device_id, f"connection {message.connection_state}")
        elif isinstance(message, m.State):
            if agv.is_stale(message):
                return self._drop(
                    "stale_state", serial, f"headerId {message.header_id} after {agv.last_header}"
                )
            agv.on_state(message, self._sink if agv.columns is not None else None)
        elif isinstance(message, m.Visualization):
            agv.on_visualization(message, self._sink)
        elif isinstance(message, m.Factsheet):
            agv.factsheet = message
            if agv.columns is not None:
                self._attach(agv)  # re-describe: model and actions come from the factsheet

    def _attach(self, agv: Agv) -> None:
        if self.ctx.host is None or not self.ctx.host.attach(agv.device_id, agv.describe(), agv):
            return
        if agv.columns is None:
            self._state_wanted.append(agv)  # state is not retained: ask rather than wait up to 30 s
        agv.attached(agv.device_id)

    async def _request_state(self, agv: Agv) -> None:
        """Send the §6.8.1 instant action stateRequest, so a new AGV device has values at once."""
        try:
            await self._send(agv.serial, "instantActions", agv.state_request())
        except Unavailable as exc:
            log.debug("%s: stateRequest to %s not sent: %s", self.device_id, agv.serial, exc)

    async def _send(self, serial: str, topic: str, message: msgspec.Struct) -> None:
        """Publish an order or instantActions to one AGV (QoS 0, §6.2)."""
        if self._client is None:
            raise Unavailable("the fleet broker connection is down")
        agv = self.agvs[serial]
        a = self.address
        try:
            await self._client.publish(
                f"{a.interface}/v{m.SUPPORTED_MAJOR}/{agv.manufacturer}/{serial}/{topic}",
                m.encode(message),
                qos=0,
            )
        except aiomqtt.MqttError as exc:
            raise Unavailable(f"cannot publish {topic}: {exc}") from None
