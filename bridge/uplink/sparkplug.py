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
from linebridge.errors import LinkError
from linebridge.model import ValueType
from linebridge.uplink.config import UplinkConfig
from linebridge.uplink.encoder import SparkplugEncoder, now_ms
from linebridge.uplink.link import Link, LinkCounters, LinkSettings, proof_interval
from linebridge.uplink.outbox import Outbox
from linebridge.uplink.proto import sparkplug_b_pb2 as spb
from linebridge.uplink.publisher import Publisher, Transient
from linebridge.uplink.retry import RepeatLog, Retry
from linebridge.uplink.status import UplinkState
from linebridge.uplink.topics import Topics

log = logging.getLogger(__name__)

REBIRTH = "Node Control/Rebirth"
AUDIT_HEAD = "Audit/Head"  # "<file>:<seq>:<hash>" of the audit chain, a witness outside the bridge
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
        audit_head: Callable[[], str] | None = None,
    ) -> None:
        self.config, self.topics, self.outbox, self.publisher = config, topics, outbox, publisher
        self._audit_head = audit_head
        self._device_births, self._on_command = device_births, on_command
        self.client_id = config.client_id or f"linebridge-{topics.edge_node_id}"
        self.state = UplinkState.OFFLINE
        self.last_error = ""
        self.connects = 0
        self.attempts = 0  # connection attempts, successful or not
        self.bdseq = -1
        self.host_online = not config.primary_host_id
        self._host_stamp = 0
        self._host_changed = asyncio.Event()
        self._retry = Retry(
            config.reconnect_initial_seconds, config.reconnect_max_seconds, config.reconnect_healthy_seconds
        )
        self._log = RepeatLog(log)
        self.counters = LinkCounters()
        self._ssl = ssl_context(config)
        self._client: Link | None = None
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
        if client is not None and not client.closed.done():
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
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self._session()
                self._retry.healthy()  # we left on purpose (host offline): connect again right away
                continue
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, LinkError, ssl.SSLError) as exc:
                self._failed(exc)
            self.state = UplinkState.OFFLINE
            await asyncio.sleep(self._retry.failed(loop.time()))

    def _failed(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if not self._stopping:
            self._log.warning(
                "uplink to %s unavailable: %s (buffering to the outbox, retrying with backoff)",
                self.config.broker,
                self.last_error,
            )

    def _link(self, bdseq: int) -> Link:
        c = self.config
        settings = LinkSettings(
            host=c.host,
            port=c.port,
            client_id=self.client_id,
            keepalive=c.keepalive_seconds,
            protocol=5 if c.protocol == "5" else 4,
            will_topic=self.topics.node("NDEATH"),
            will_payload=SparkplugEncoder.death(bdseq, now_ms()),
            proof_topic=self.topics.proof(),
            username=c.username,
            password=c.password,
            ssl_context=self._ssl,
            connect_timeout=c.connect_timeout_seconds,
            max_incoming=c.max_payload_bytes,
            proof_interval=proof_interval(c.max_publish_rate),
        )
        return Link(settings, self.counters, self._on_message, self.publisher.proven)

    async def _connect(self) -> Link:
        """A connected link whose will carries the next bdSeq.

        tck-id-topics-nbirth-bdseq-increment / tck-id-payloads-ndeath-bdseq: bdSeq goes up by one per MQTT
        CONNECT packet, so an attempt that failed before CONNECT went out (TCP or TLS) leaves it as it is.
        """
        bdseq = (self.bdseq + 1) % 256
        link = self._client = self._link(bdseq)
        self.attempts += 1
        try:
            await link.connect()
        finally:
            if link.connect_sent:
                self.bdseq = bdseq
                self.outbox.set_meta("bdseq", str(bdseq))
        return link

    async def _session(self) -> None:
        self.state = UplinkState.CONNECTING
        # Sparkplug 3.0, Edge Node Session Establishment: a new session waits for the host's STATE on
        # this server, never a remembered one.
        self.host_online = not self.config.primary_host_id
        link: Link | None = None
        try:
            link = await self._connect()
            self.connects += 1
            self._retry.connected(asyncio.get_running_loop().time())
            if self.last_error:
                self._log.info("uplink connected to %s again", self.config.broker)
            self.last_error = ""
            filters = self.topics.command_filters()
            if self.config.primary_host_id:
                filters.append(self.topics.state(self.config.primary_host_id))
            await link.subscribe(filters)
            await self._until_host_online(link)
            self.publisher.begin(link, [self._nbirth(), *self._device_births()])
            self.state = UplinkState.ONLINE
            await self._until_host_offline(link)
            log.warning(
                "uplink: primary host %s went offline; leaving the server and holding data",
                self.config.primary_host_id,
            )
            await self._goodbye(link)
        finally:
            await self.publisher.end()
            if link is not None:
                await link.close()
            elif self._client is not None:
                await self._client.close()
            self._client = None

    async def _until_host_online(self, link: Link) -> None:
        while not self.host_online:
            self.state = UplinkState.WAITING_FOR_HOST
            await self._wait(link, self._host_changed)

    async def _until_host_offline(self, link: Link) -> None:
        while self.host_online:
            await self._wait(link, self._host_changed)

    async def _wait(self, link: Link, event: asyncio.Event) -> None:
        """Wait for `event`; raises LinkError if the connection goes first."""
        event.clear()
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({waiter, link.closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if link.closed.done():
            raise LinkError(link.closed.result())

    async def _goodbye(self, link: Link) -> None:
        """tck-id-operational-behavior-edge-node-intentional-disconnect-ndeath: an intentional disconnect
        publishes NDEATH (QoS 1, retain false), then DISCONNECT (…-intentional-disconnect-packet)."""
        await self.publisher.end()  # nothing may follow the NDEATH
        try:
            position = link.publish(
                self.topics.node("NDEATH"), SparkplugEncoder.death(self.bdseq, now_ms()), qos=1
            )
            await link.wait_proven(position, GOODBYE_TIMEOUT)
        except LinkError:
            pass  # the broker publishes the will instead
        await link.disconnect()

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
        if self._audit_head is not None:
            head = self.outbox.alias("", AUDIT_HEAD, spb.String)
            metrics.append((AUDIT_HEAD, head, ValueType.STRING, self._audit_head(), stamp))
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
            online, stamp = parse_state(payload)
        except ValueError:
            text = payload.decode("utf-8", "replace").strip().upper()
            if text not in ("ONLINE", "OFFLINE"):
                self._log.warning(
                    "uplink: ignoring malformed STATE message from %s", self.config.primary_host_id
                )
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


def parse_state(payload: bytes) -> tuple[bool, int]:
    """Sparkplug 3.0 STATE JSON -> (online, timestamp ms); ValueError for anything else.

    tck-id-host-topic-phid-birth-payload: {"online": true|false, "timestamp": <ms since the epoch>}.
    A timestamp that is not a whole number within 0..2**63-1 is refused (json gives 1e400 as inf).
    """
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("online"), bool):
        raise ValueError('expected {"online": true|false, "timestamp": ms}')
    stamp = data.get("timestamp", 0)
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        raise ValueError("timestamp is not a number")
    if isinstance(stamp, float) and not (stamp.is_integer() and 0 <= stamp < 2.0**63):
        raise ValueError(f"timestamp {stamp!r} is not a millisecond count")
    stamp = int(stamp)
    if not 0 <= stamp < 1 << 63:
        raise ValueError(f"timestamp {stamp} is out of range")
    return data["online"], stamp
