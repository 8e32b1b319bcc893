"""One MQTT connection of the Sparkplug edge node, on aiomqtt (paho-mqtt 2.x underneath).

aiomqtt does the session work: CONNECT with the will, TLS, credentials, MQTT 3.1.1 or 5, CONNACK,
SUBSCRIBE/SUBACK, and the socket's place on the event loop. The hot path publishes through the paho
client aiomqtt wraps (`_client`), without an await per message: a QoS 0 publish is a queued write.

Proof of delivery. Sparkplug 3.0 puts data at QoS 0, which has no acknowledgement. A broker reads the
packets of one connection in order, so the PUBACK of a QoS 1 publish proves the broker has read every
packet sent before it on that connection. Every publish gets a position (1, 2, ...); a PUBACK proves
its position and everything before it (`on_proven`). Checkpoints, QoS 1 publishes to a topic of the
node's own outside the spBv1.0 namespace (`proof_topic`), prove QoS 0 data. One goes out when the
sender runs dry or the link is quiet, at most once per `proof_interval` (3 % of the publish-rate
budget); and after every `proof_every` publishes (the sender's choice, bounded the same way) or when the
sender's window is full. They also serve as the liveness probe: one every
keepalive / 4 on an idle link, and a checkpoint without PUBACK after `keepalive` seconds means the
broker hung (detected within 1.25 x keepalive, inside the 1.5 x keepalive of MQTT 3.1.1 §3.1.2.10);
the link is then dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from linebridge.errors import LinkError
from linebridge.uplink.retry import RepeatLog

log = logging.getLogger(__name__)

QUIET = 0.05  # seconds: the watchdog's tick, and the least time between checkpoints paced by time
PROOF_SHARE = 0.03  # checkpoints paced by time take at most this share of max_publish_rate


def proof_interval(max_publish_rate: float) -> float:
    """Least time between checkpoints paced by time: 3 % of the publish budget, and never below QUIET."""
    return max(QUIET, 1.0 / (PROOF_SHARE * max_publish_rate))


MessageHandler = Callable[[str, bytes], None]


@dataclass(slots=True)
class LinkCounters:
    """What went wrong on the wire, across every connection of the edge node."""

    protocol_errors: int = 0  # malformed packets from the broker (the connection was closed)
    unknown_acks: int = 0  # PUBACKs for a packet id with nothing awaiting it
    oversized_messages: int = 0  # incoming PUBLISH above max_payload_bytes (dropped)
    hung_broker: int = 0  # connections dropped because a PUBACK did not come within keepalive


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Everything one connection needs to know."""

    host: str
    port: int
    client_id: str
    keepalive: int
    protocol: int  # 4 (MQTT 3.1.1) or 5
    will_topic: str
    will_payload: bytes
    proof_topic: str
    username: str = ""
    password: str = ""
    ssl_context: ssl.SSLContext | None = None
    connect_timeout: float = 10.0
    max_incoming: int = 128 * 1024
    proof_interval: float = 0.2  # see proof_interval()


class _PahoLog(logging.Logger):
    """paho's log, with one line picked out: a PUBACK nobody was waiting for (paho ignores it)."""

    def __init__(self, link: Link) -> None:
        super().__init__("linebridge.uplink.paho")
        self.parent = logging.getLogger("linebridge.uplink")
        self.link = link

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Forward to the uplink's logger; count unknown PUBACKs."""
        if msg == "Received %s (Mid: %d)" and args and args[0] == "PUBACK":
            self.link.check_ack(int(args[1]))
        if self.isEnabledFor(level):
            super().log(level, msg, *args, **kwargs)


class Link:
    """One connection: publish with positions, checkpoints, commands in, hung-broker watch."""

    def __init__(
        self,
        settings: LinkSettings,
        counters: LinkCounters,
        on_message: MessageHandler,
        on_proven: Callable[[int], None],
    ) -> None:
        self.settings, self.counters = settings, counters
        self._on_message, self._on_proven = on_message, on_proven
        self.connect_sent = False  # a CONNECT went out (bdSeq counts CONNECT packets, not TCP attempts)
        self.sent = 0  # position of the last publish
        self.proven = 0  # every publish up to here was read by the broker
        self._pending: dict[int, tuple[int, float]] = {}  # mid -> (position, sent at)
        self._checked = 0  # position covered by the last checkpoint (or QoS 1 publish)
        self._last_check = 0.0
        self.on_checkpoint: Callable[[], None] | None = None  # charged to the publish-rate limit
        self._client: aiomqtt.Client | None = None
        self._paho: paho.Client | None = None
        self._watch: asyncio.Task[None] | None = None
        self._leaving = False  # DISCONNECT on its way
        self._progress = asyncio.Event()  # set on every proof and on close
        self._log = RepeatLog(log)  # what a hostile broker can repeat at will: once a minute per link
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    # -- connect -----------------------------------------------------------------------------
    def _aiomqtt_client(self) -> aiomqtt.Client:
        s = self.settings
        v5 = s.protocol == 5
        properties = None
        if v5:  # tck-id-principles-persistence-clean-session-50: Clean Start and Session Expiry 0
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 0
            properties.MaximumPacketSize = s.max_incoming + 1024  # the broker sends us nothing larger
        return aiomqtt.Client(
            s.host,
            s.port,
            identifier=s.client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            # tck-id-payloads-ndeath-will-message-qos / -retain: the NDEATH will at QoS 1, retain false
            will=aiomqtt.Will(s.will_topic, s.will_payload, qos=1, retain=False),
            # tck-id-principles-persistence-clean-session-311: Clean Session true
            clean_session=None if v5 else True,
            clean_start=True if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
            keepalive=s.keepalive,
            username=s.username or None,
            password=s.password or None,
            tls_context=s.ssl_context,
            timeout=s.connect_timeout,
            max_inflight_messages=0,  # our own window bounds what is in flight
            logger=_PahoLog(self),
        )

    async def connect(self) -> None:
        """Connect (CONNECT/CONNACK) within the connect timeout; raises LinkError."""
        client = self._client = self._aiomqtt_client()
        wrapped = self._paho = client._client  # noqa: SLF001 - the paho client aiomqtt wraps
        wrapped.connect_timeout = self.settings.connect_timeout
        opened = wrapped.on_socket_open

        def socket_open(c: paho.Client, userdata: Any, sock: Any) -> None:
            self.connect_sent = True  # paho sends CONNECT right after this (Client.reconnect)
            opened(c, userdata, sock)  # type: ignore[misc]

        wrapped.on_socket_open = socket_open
        previous_publish = wrapped.on_publish
        wrapped.on_publish = lambda *a: (self._acked(a[2]), previous_publish(*a))  # type: ignore[misc]
        wrapped.on_message = self._incoming
        try:
            async with asyncio.timeout(self.settings.connect_timeout + 1):
                await client.__aenter__()
        except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
            self._shutdown()
            raise LinkError(_reason(exc, "connect")) from None
        client._disconnected.add_done_callback(self._disconnected)  # noqa: SLF001
        self._last_check = asyncio.get_running_loop().time()
        self._watch = asyncio.create_task(self._watchdog(), name="uplink-link-watch")

    async def subscribe(self, filters: list[str]) -> None:
        """Subscribe at QoS 1 (tck-id-message-flow-edge-node-ncmd-subscribe, -dcmd-subscribe,
        tck-id-payloads-state-subscribe); a refused filter is an error."""
        assert self._client is not None
        try:
            granted = await self._client.subscribe([(f, 1) for f in filters])
        except aiomqtt.MqttError as exc:
            raise LinkError(_reason(exc, "subscribe")) from None
        refused = [f for f, g in zip(filters, granted, strict=False) if int(getattr(g, "value", g)) >= 0x80]
        if refused:
            raise LinkError(f"the broker refused the subscription to {', '.join(refused)}")

    # -- publish -----------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int = 0) -> int:
        """Queue a PUBLISH (retain false, as Sparkplug 3.0 requires of every edge node message);
        returns its position. Raises LinkError when the connection is gone."""
        if self.closed.done() or self._paho is None:
            raise LinkError(self.closed.result() if self.closed.done() else "not connected")
        info = self._paho.publish(topic, payload, qos, False)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            self.abort(f"publish failed: {paho.error_string(info.rc)}")
            raise LinkError(self.closed.result())
        self.sent += 1
        if qos:
            self._pending[info.mid] = (self.sent, asyncio.get_running_loop().time())
            self._checked = self.sent
        return self.sent

    def checkpoint(self, probe: bool = False) -> None:
        """Prove what was sent so far: a QoS 1 publish to the node's proof topic (outside spBv1.0).

        A probe goes out even when nothing waits for proof (the liveness check of an idle link)."""
        if (probe or self._checked < self.sent) and not self.closed.done():
            self._last_check = asyncio.get_running_loop().time()
            self.publish(self.settings.proof_topic, b"", qos=1)
            if self.on_checkpoint is not None:
                self.on_checkpoint()

    def idle(self) -> None:
        """The sender has nothing more to send: prove what is uncovered, unless a checkpoint went lately."""
        now = asyncio.get_running_loop().time()
        if self._checked < self.sent and now - self._last_check >= self.settings.proof_interval:
            with contextlib.suppress(LinkError):
                self.checkpoint()

    @property
    def uncovered(self) -> int:
        """Publishes sent after the last checkpoint (no PUBACK on its way will prove them)."""
        return self.sent - self._checked

    @property
    def unproven(self) -> int:
        """Publishes sent and not yet proven read by the broker."""
        return self.sent - self.proven

    def _acked(self, mid: int) -> None:
        entry = self._pending.pop(mid, None)
        if entry is not None and entry[0] > self.proven and not self.closed.done():
            self.proven = entry[0]
            self._progress.set()
            self._on_proven(entry[0])

    def check_ack(self, mid: int) -> None:
        """A PUBACK arrived (paho's log line, before paho looks it up): is anybody waiting for it?"""
        if mid not in self._pending:
            self.counters.unknown_acks += 1
            self._log.warning(
                "uplink: the broker acknowledged packet id %d, which is not awaiting a PUBACK", mid
            )

    # -- incoming ----------------------------------------------------------------------------
    def _incoming(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        if len(message.payload) > self.settings.max_incoming:
            self.counters.oversized_messages += 1
            self._log.warning(
                "uplink: dropped a %d-byte message on %r (above max_payload_bytes %d)",
                len(message.payload),
                message.topic,
                self.settings.max_incoming,
            )
            return
        try:
            self._on_message(message.topic, message.payload)
        except Exception:  # a bad handler must not take the connection down
            log.exception("uplink: handling a message on %r failed", message.topic)

    # -- liveness and closing ----------------------------------------------------------------
    async def _watchdog(self) -> None:
        """Checkpoints when data waits for proof, probes when idle; drops a hung connection."""
        keepalive = self.settings.keepalive
        tick = min(QUIET, keepalive / 8)
        loop = asyncio.get_running_loop()
        while not self.closed.done():
            await asyncio.sleep(tick)
            now = loop.time()
            oldest = min((t for _, t in self._pending.values()), default=None)
            if oldest is not None and now - oldest > keepalive:
                self.counters.hung_broker += 1
                self.abort(f"no PUBACK from the broker for {keepalive} s (broker hung?)")
                return
            idle = oldest is None and now - self._last_check >= keepalive / 4
            due = self._checked < self.sent and now - self._last_check >= self.settings.proof_interval
            if due or idle:
                with contextlib.suppress(LinkError):
                    self.checkpoint(probe=idle)

    def _disconnected(self, future: asyncio.Future[None]) -> None:
        exc = None if future.cancelled() else future.exception()
        if self._leaving:
            self.abort("disconnected")
            return
        if exc is not None and _malformed(exc):
            self.counters.protocol_errors += 1
            log.warning("uplink: malformed packet from the broker %s: %s", self.settings.host, exc)
            self.abort(f"malformed packet from the broker ({_reason(exc, 'read')})")
        else:
            self.abort(_reason(exc, "connection") if exc is not None else "the broker closed the connection")

    def abort(self, reason: str) -> None:
        """Drop the connection without DISCONNECT (so the broker publishes the will). Idempotent."""
        if not self.closed.done():
            self.closed.set_result(reason)
        self._progress.set()
        self._pending.clear()
        self._shutdown()

    def _shutdown(self) -> None:
        sock = self._paho.socket() if self._paho is not None else None
        if sock is not None:  # paho then sees end of stream, closes, and aiomqtt unregisters it
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    async def disconnect(self) -> None:
        """Send DISCONNECT (the broker discards the will) and close."""
        if self._client is not None and not self.closed.done():
            self._leaving = True
            with contextlib.suppress(aiomqtt.MqttError, OSError, TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._client.__aexit__(None, None, None)
        await self.close()

    async def close(self) -> None:
        """Drop the connection if open and stop the watchdog. Idempotent."""
        self.abort("connection closed")
        task, self._watch = self._watch, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def wait_proven(self, position: int, timeout: float) -> bool:
        """Wait (bounded) until `position` is proven; False if it was not."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.proven < position and not self.closed.done():
                    self._progress.clear()
                    await self._progress.wait()
        return self.proven >= position


def _malformed(exc: BaseException) -> bool:
    """paho reports a packet it cannot parse as a protocol error (or raises while parsing it)."""
    if not isinstance(exc, aiomqtt.MqttError | OSError):
        return True
    rc = getattr(exc, "rc", None)
    code = int(getattr(rc, "value", rc)) if rc is not None else -1
    return code in (paho.MQTT_ERR_PROTOCOL, 0x81, 0x82)  # MQTT 5 reason codes: malformed, protocol error


def _reason(exc: BaseException | None, what: str) -> str:
    if exc is None:
        return f"{what} failed"
    if isinstance(exc, TimeoutError):
        return f"{what} timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
