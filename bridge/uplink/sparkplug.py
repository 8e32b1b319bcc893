"""The Sparkplug B edge node session: connect with the NDEATH will, wait for the primary host, births,
rebirth, and a clean goodbye; reconnect with capped, jittered backoff.

Sparkplug 3.0 rules kept here: bdSeq goes up by one per MQTT CONNECT (0-255, persisted across
restarts) and the NBIRTH carries the bdSeq of the will registered with that CONNECT; NBIRTH has seq 0;
an intentional disconnect publishes NDEATH and then DISCONNECT; with a primary host configured the
node publishes nothing until the host's STATE says online, and leaves the server when it goes offline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Callable

from linebridge import __version__
from linebridge.devices.sessions import Backoff
from linebridge.model import ValueType
from linebridge.uplink.config import UplinkConfig
from linebridge.uplink.encoder import SparkplugEncoder, now_ms
from linebridge.uplink.mqtt import ConnectionLost, MqttClient, MqttError, Will
from linebridge.uplink.outbox import Outbox
from linebridge.uplink.proto import sparkplug_b_pb2 as spb
from linebridge.uplink.publisher import Publisher, Transient
from linebridge.uplink.status import UplinkState
from linebridge.uplink.topics import Topics

log = logging.getLogger(__name__)

REBIRTH = "Node Control/Rebirth"
GOODBYE_TIMEOUT = 2.0
CommandHandler = Callable[[str, str, bytes, str], None]  # verb, device id, payload, topic


def ssl_context(config: UplinkConfig) -> ssl.SSLContext | None:
    """TLS for mqtts://: the configured CA (else the system's), and a client certificate if given."""
    if not config.tls_enabled:
        return None
    context = ssl.create_default_context(cafile=config.tls.ca_file or None)
    if config.tls.cert_file:
        context.load_cert_chain(config.tls.cert_file, config.tls.key_file)
    return context


class EdgeNode:
    """Owns the MQTT connection of the bridge's Sparkplug edge node."""

    def __init__(
        self,
        config: UplinkConfig,
        topics: Topics,
        outbox: Outbox,
        publisher: Publisher,
        device_births: Callable[[], list[Transient]],
        on_command: CommandHandler,
    ) -> None:
        self.config, self.topics, self.outbox, self.publisher = config, topics, outbox, publisher
        self._device_births, self._on_command = device_births, on_command
        self.client_id = config.client_id or f"linebridge-{topics.edge_node_id}"
        self.state = UplinkState.OFFLINE
        self.last_error = ""
        self.connects = 0
        self.bdseq = -1
        self.host_online = not config.primary_host_id
        self._host_stamp = 0
        self._host_changed = asyncio.Event()
        self._backoff = Backoff(config.reconnect_initial_seconds, config.reconnect_max_seconds)
        self._ssl = ssl_context(config)
        self._client: MqttClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background, retrying with backoff until stopped."""
        if self._task is None:
            self.bdseq = int(self.outbox.meta.get("bdseq", "255"))  # the next CONNECT uses bdseq + 1
            self._task = asyncio.create_task(self._supervise(), name="uplink-edge-node")

    async def stop(self, drain_timeout: float = 1.0) -> None:
        """Send what is queued (bounded), then NDEATH and DISCONNECT. Idempotent."""
        self._stopping = True
        client = self._client
        if client is not None and client.connected:
            if self.state is UplinkState.ONLINE:
                await self.publisher.drained(drain_timeout)
            await self._goodbye(client)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def rebirth(self) -> None:
        """NCMD Node Control/Rebirth: a complete birth sequence with the same bdSeq."""
        if self.publisher.active:
            log.info("uplink: rebirth requested")
            self.publisher.rebirth([self._nbirth(), *self._device_births()])

    # -- the session supervisor --------------------------------------------------------------
    async def _supervise(self) -> None:
        failures = 0
        while True:
            connects = self.connects
            try:
                await self._session()
                failures = 0  # we left on purpose (host offline): connect again right away
                continue
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, MqttError, ssl.SSLError) as exc:
                if self.connects != connects:  # it was up for a while: start the backoff over
                    failures = 0
                self._failed(exc, failures)
            self.state = UplinkState.OFFLINE
            await asyncio.sleep(self._backoff.delay(failures))
            failures += 1

    def _failed(self, exc: BaseException, failures: int) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if not self._stopping and failures == 0:  # a failure once, its recovery once
            log.warning(
                "uplink to %s unavailable: %s (buffering to the outbox, retrying with backoff)",
                self.config.broker,
                self.last_error,
            )

    async def _session(self) -> None:
        self.bdseq = (self.bdseq + 1) % 256
        self.outbox.set_meta("bdseq", str(self.bdseq))
        will = Will(self.topics.node("NDEATH"), SparkplugEncoder.death(self.bdseq, now_ms()), qos=1)
        client = self._client = MqttClient(
            self.config.host,
            self.config.port,
            self.client_id,
            keepalive=self.config.keepalive_seconds,
            username=self.config.username,
            password=self.config.password,
            ssl_context=self._ssl,
            will=will,
            on_message=self._on_message,
            connect_timeout=self.config.connect_timeout_seconds,
        )
        self.state = UplinkState.CONNECTING
        # Sparkplug 3.0, Edge Node Session Establishment: a new session waits for the host's STATE on
        # this server, never a remembered one.
        self.host_online = not self.config.primary_host_id
        try:
            await client.connect()
            self.connects += 1
            if self.last_error:
                log.info("uplink connected to %s again", self.config.broker)
            self.last_error = ""
            filters = [(t, 1) for t in self.topics.command_filters()]
            if self.config.primary_host_id:
                filters.append((self.topics.state(self.config.primary_host_id), 1))
            await client.subscribe(filters)
            await self._until_host_online(client)
            self.publisher.begin(client, [self._nbirth(), *self._device_births()])
            self.state = UplinkState.ONLINE
            await self._until_host_offline(client)
            log.warning(
                "uplink: primary host %s went offline; leaving the server and holding data",
                self.config.primary_host_id,
            )
            await self._goodbye(client)
        finally:
            await self.publisher.end()
            await client.close()
            self._client = None

    async def _until_host_online(self, client: MqttClient) -> None:
        while not self.host_online:
            self.state = UplinkState.WAITING_FOR_HOST
            await self._wait(client, self._host_changed)

    async def _until_host_offline(self, client: MqttClient) -> None:
        while self.host_online:
            await self._wait(client, self._host_changed)

    async def _wait(self, client: MqttClient, event: asyncio.Event) -> None:
        """Wait for `event`; raises ConnectionLost if the connection goes first."""
        assert client.closed is not None
        event.clear()
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({waiter, client.closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if client.closed.done():
            reason = client.closed.result()
            raise ConnectionLost(str(reason) if reason else "connection closed")

    async def _goodbye(self, client: MqttClient) -> None:
        """Sparkplug 3.0, Edge Node Session Termination: an intentional disconnect publishes NDEATH, then DISCONNECT."""
        await self.publisher.end()  # nothing may follow the NDEATH
        try:
            future = client.publish(
                self.topics.node("NDEATH"), SparkplugEncoder.death(self.bdseq, now_ms()), qos=1
            )
            if future is not None:
                await asyncio.wait_for(future, GOODBYE_TIMEOUT)
        except (ConnectionLost, OSError, TimeoutError):
            pass  # the broker publishes the will instead
        await client.disconnect()

    def _nbirth(self) -> Transient:
        stamp = now_ms()
        bdseq = spb.Payload.Metric(name="bdSeq", timestamp=stamp, datatype=spb.Int64, long_value=self.bdseq)
        metrics = [
            (REBIRTH, self.outbox.alias("", REBIRTH, spb.Boolean), ValueType.BOOL, False, stamp),
            (
                "Properties/Linebridge Version",
                self.outbox.alias("", "Properties/Linebridge Version", spb.String),
                ValueType.STRING,
                __version__,
                stamp,
            ),
        ]
        return Transient("NBIRTH", "", SparkplugEncoder.birth(metrics, stamp, extra=[bdseq]))

    # -- incoming ----------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes) -> None:
        if self.config.primary_host_id and topic == self.topics.state(self.config.primary_host_id):
            self._host_state(payload)
            return
        parsed = self.topics.parse_command(topic)
        if parsed is not None:
            self._on_command(parsed[0], parsed[1], payload, topic)

    def _host_state(self, payload: bytes) -> None:
        """Sparkplug 3.0, Topics > STATE: {"online": bool, "timestamp": ms}; older plain ONLINE/OFFLINE accepted."""
        try:
            data = json.loads(payload)
            online, stamp = data["online"] is True, int(data.get("timestamp", 0))
        except (ValueError, TypeError, KeyError):
            text = payload.decode("utf-8", "replace").strip().upper()
            if text not in ("ONLINE", "OFFLINE"):
                log.warning("uplink: ignoring malformed STATE message from %s", self.config.primary_host_id)
                return
            online, stamp = text == "ONLINE", 0
        if stamp and stamp < self._host_stamp:
            return  # an older STATE than one already seen (host STATE messages are ordered by timestamp)
        self._host_stamp = max(self._host_stamp, stamp)
        if online != self.host_online:
            log.info(
                "uplink: primary host %s is %s",
                self.config.primary_host_id,
                "online" if online else "offline",
            )
            self.host_online = online
            self._host_changed.set()
