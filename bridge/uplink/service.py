"""The uplink: taps the telemetry bus, encodes DDATA per batch, stores it in the outbox, births and
deaths from the device registry, and one Sparkplug edge node session that sends it all."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from linebridge.commands.manager import CommandManager
from linebridge.configbase import relative_to_config
from linebridge.model import SampleBatch, ValueType
from linebridge.paths import compile_glob
from linebridge.registry import DeviceEvent, DeviceRecord, DeviceRegistry
from linebridge.telemetry.bus import TelemetryBus
from linebridge.telemetry.filters import ChangeFilter
from linebridge.uplink.cloud_commands import REBIRTH, CloudCommands, cloud_identity, writable_globs
from linebridge.uplink.config import UplinkConfig
from linebridge.uplink.encoder import DATATYPE, Sealed, SparkplugEncoder, now_ms
from linebridge.uplink.outbox import Outbox
from linebridge.uplink.proto import sparkplug_b_pb2 as spb
from linebridge.uplink.publisher import Publisher, Transient
from linebridge.uplink.sparkplug import AUDIT_HEAD, EdgeNode
from linebridge.uplink.status import UplinkStatus
from linebridge.uplink.topics import Topics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Born:
    """What a device was last described as (a different description needs a new DBIRTH)."""

    signature: tuple[tuple[str, int, int], ...]


class Uplink:
    """Sparkplug B edge node of one bridge, lossless up to its outbox budget."""

    def __init__(
        self,
        config: UplinkConfig,
        bridge_id: str,
        registry: DeviceRegistry,
        bus: TelemetryBus,
        commands: CommandManager,
        base_dir: Path | None = None,
        audit_head: Callable[[], str] | None = None,
    ) -> None:
        self.config, self.registry, self.bus = config, registry, bus
        self.topics = Topics(config.group_id, config.edge_node_id or bridge_id)
        self.outbox = Outbox(
            config.outbox,
            relative_to_config(config.outbox.path, base_dir),
            before_commit=self._seal_historical,
        )
        self.encoder = SparkplugEncoder(config.max_payload_bytes)
        # Report by exception (Sparkplug 3.0, Operational Behavior > Data Publish): only values that
        # changed beyond their deadband; a quality change is reported even when the value repeats.
        self.changes = ChangeFilter() if config.report_by_exception else None
        self.publisher = Publisher(
            self.outbox, self.topics, config.max_publish_rate, config.max_inflight, config.data_qos
        )
        self.cloud = CloudCommands(
            commands,
            registry,
            writable_globs(config.cloud_writable),
            self._resolve,
            self._rebirth,
            lambda: self.outbox.alias("", REBIRTH, spb.Boolean),
            cloud_identity(config),
        )
        self.node = EdgeNode(
            config,
            self.topics,
            self.outbox,
            self.publisher,
            self._device_births,
            self.cloud.handle,
            audit_head,
        )
        self._audit_head, self._audit_sent = audit_head, ""
        self._audit_checked = 0.0
        self._deadbands = [(compile_glob(g), band) for g, band in config.deadbands.items()]
        self._described: dict[str, _Born] = {}
        self._paths: dict[tuple[str, int], str] = {}  # (device, Sparkplug alias) -> signal path
        self._undo: list = []  # type: ignore[type-arg]
        self._flusher: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the outbox, start listening to the bus and the registry, connect in the background."""
        await self.outbox.open()
        self._undo = [self.bus.add_tap(self._tap), self.registry.add_listener(self._device_changed)]
        for record in self.registry:
            self._device_changed(DeviceEvent.CHANGED, record)
        self._flusher = asyncio.create_task(self._flush_loop(), name="uplink-flush")
        self.node.start()
        log.info(
            "uplink: Sparkplug edge node %s/%s via %s (outbox %s)",
            self.topics.group_id,
            self.topics.edge_node_id,
            self.config.broker,
            self.outbox.path,
        )

    async def stop(self) -> None:
        """Stop taking data, store what is open, say goodbye to the broker, close the outbox. Idempotent."""
        for undo in self._undo:
            undo()
        self._undo = []
        for sealed in self.encoder.seal_all():
            self._store(sealed)
        task, self._flusher = self._flusher, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.node.stop()
        await self.outbox.close()

    # -- telemetry (the hot path: per batch) -------------------------------------------------
    def _tap(self, batch: SampleBatch) -> None:
        if self.changes is not None:
            filtered = self.changes.apply(batch)
            if filtered is None:
                return
            batch = filtered
        live = self.publisher.accepts_live(batch.device_id)
        for sealed in self.encoder.add(batch, historical=not live):
            self._store(sealed)

    def _store(self, sealed: Sealed) -> None:
        row = self.outbox.append(sealed.device_id, sealed.body, sealed.samples, sealed.historical)
        if row is None:
            return  # budget full, newest rejected (counted by the outbox)
        if not sealed.historical and self.publisher.accepts_live(sealed.device_id):
            self.publisher.push(row)
        elif self.publisher.active:
            self.publisher.want_replay()

    async def _flush_loop(self) -> None:
        """Seal the open live bodies once per latency window."""
        quiet = max(1, int(self.config.max_publish_rate * self.config.max_latency_seconds))
        while True:
            await asyncio.sleep(self.config.max_latency_seconds)
            if self.publisher.live_pending <= quiet:  # while the publisher is behind, bodies keep filling
                for sealed in self.encoder.seal_due(live=True, historical=False):
                    self._store(sealed)
            self._publish_audit_head()

    def _publish_audit_head(self) -> None:
        """Every audit_head_interval_seconds: the audit chain head as NDATA when it moved (issue #12 risk 5)."""
        now = time.monotonic()
        if self._audit_head is None or now - self._audit_checked < self.config.audit_head_interval_seconds:
            return
        self._audit_checked = now
        head = self._audit_head()
        if head and head != self._audit_sent and self.publisher.accepts_live(""):
            self._audit_sent = head
            alias = self.outbox.alias("", AUDIT_HEAD, spb.String)
            self._store(Sealed("", SparkplugEncoder.node_data(alias, head, now_ms()), 1, False))

    def _seal_historical(self) -> None:
        """Right before each outbox commit: historical bodies fill for at most one commit interval, so a
        kill -9 loses at most that much (they have no latency to keep, so they grow as large as they may)."""
        for sealed in self.encoder.seal_due(live=False, historical=True):
            self._store(sealed)

    # -- devices -----------------------------------------------------------------------------
    def _device_changed(self, event: DeviceEvent, record: DeviceRecord) -> None:
        if event is DeviceEvent.REMOVED or not record.available:
            sealed = self.encoder.seal(record.id)
            if sealed is not None:
                self._store(sealed)
            if self.publisher.is_born(record.id):
                self.publisher.push_transient(Transient("DDEATH", record.id, b""))
            return
        if record.description is None:
            return
        signature = tuple((p, int(s.value_type), s.alias) for p, s in record.signals.items())
        known = self._described.get(record.id)
        if known is None or known.signature != signature:
            self._define(record)
            self._described[record.id] = _Born(signature)
        elif self.publisher.is_born(record.id) and not self.publisher.is_dying(record.id):
            return  # born in this session as it is (a dying device, back already, is born again below)
        if self.publisher.active:
            sealed = self.encoder.seal(record.id)
            if sealed is not None:
                self._store(sealed)
            birth = self._dbirth(record)
            if birth is not None:
                self.publisher.push_transient(birth)

    def _define(self, record: DeviceRecord) -> None:
        for path, signal in record.signals.items():
            alias = self.outbox.alias(record.id, path, DATATYPE[signal.value_type])
            self.encoder.define(signal.alias, alias, signal.value_type)
            self._paths[(record.id, alias)] = path
            if self.changes is not None:
                numeric = signal.value_type in (ValueType.DOUBLE, ValueType.INT)
                self.changes.set_deadband(
                    signal.alias, self._deadband(f"{record.id}/{path}") if numeric else 0.0
                )

    def _deadband(self, full_path: str) -> float:
        for glob, band in self._deadbands:
            if glob.matches(full_path):
                return band
        return self.config.deadband

    def _dbirth(self, record: DeviceRecord) -> Transient | None:
        """DBIRTH: every signal with name, alias, datatype and its current value (or null)."""
        stamp = now_ms()
        metrics = []
        for path, signal in record.signals.items():
            current = self.bus.value_of(signal.alias)
            value, when = (current[0], current[1] // 1_000_000) if current is not None else (None, stamp)
            if self.changes is not None:
                self.changes.seed(signal.alias, value)
            alias = self.outbox.alias(record.id, path, DATATYPE[signal.value_type])
            metrics.append((path, alias, signal.value_type, value, when))
        body = self.encoder.birth_within(metrics, stamp)
        if body is None:
            log.error(
                "uplink: the DBIRTH of %s does not fit in max_payload_bytes (%d) even without values; "
                "the device is not published (raise max_payload_bytes)",
                record.id,
                self.config.max_payload_bytes,
            )
            return None
        return Transient("DBIRTH", record.id, body)

    def _device_births(self) -> list[Transient]:
        """DBIRTH of every device online; an offline one with stored data is born to send it, then dies."""
        births = []
        for record in self.registry:
            if record.description is None:
                continue
            if record.available:
                sealed = self.encoder.seal(record.id)
                if sealed is not None:
                    self._store(sealed)
                birth = self._dbirth(record)
                births += [birth] if birth is not None else []
            elif self.outbox.per_device.get(record.id):
                birth = self._dbirth(record)
                births += [birth, Transient("DDEATH", record.id, b"")] if birth is not None else []
        return births

    def _rebirth(self) -> None:
        self.node.rebirth()

    def _resolve(self, device_id: str, metric: spb.Payload.Metric) -> str | None:
        if metric.HasField("alias"):
            return self._paths.get((device_id, metric.alias))
        return metric.name if metric.name else None

    # -- status ------------------------------------------------------------------------------
    def status(self) -> UplinkStatus:
        """A snapshot of the uplink (safe to call from the metrics thread)."""
        outbox, traffic, node = self.outbox, self.publisher.traffic, self.node
        oldest = outbox.oldest if outbox.messages else None  # also read from the metrics thread: no mutation
        return UplinkStatus(
            state=node.state,
            broker=self.config.broker,
            group_id=self.topics.group_id,
            edge_node_id=self.topics.edge_node_id,
            primary_host_id=self.config.primary_host_id,
            last_error=node.last_error,
            backlog_messages=outbox.messages,
            backlog_bytes=outbox.bytes,
            backlog_samples=outbox.samples,
            oldest_age_seconds=max(0.0, time.time() - oldest / 1000) if oldest is not None else 0.0,
            dropped_messages=outbox.losses.dropped_messages,
            dropped_samples=outbox.losses.dropped_samples,
            expired_messages=outbox.losses.expired_messages,
            expired_samples=outbox.losses.expired_samples,
            published_messages=traffic.published_messages,
            published_samples=traffic.published_samples,
            replayed_messages=traffic.replayed_messages,
            resent_samples=traffic.resent_samples,
            commands_accepted=self.cloud.accepted,
            commands_rejected=self.cloud.rejected,
            protocol_errors=node.counters.protocol_errors,
            unknown_acks=node.counters.unknown_acks,
            oversized_messages=node.counters.oversized_messages,
            hung_broker=node.counters.hung_broker,
            oversized_samples=self.encoder.oversized_samples,
            connects=node.connects,
            bdseq=max(0, node.bdseq),
            outbox_path=str(outbox.path),
            outbox_moved_aside=outbox.moved_aside,
        )
