"""Cloud commands: Sparkplug DCMD -> `write` commands through the CommandManager; NCMD -> node control.

A DCMD is decoded, every metric resolved (alias or name) against the device's birth, its datatype and
value checked, and the target checked against `uplink.cloud_writable` before the command manager sees
it; the manager then applies the same gates (rate, role, policy), validation, queueing, history and
audit log as for gRPC, acting as `uplink.command_role`. Anything refused
on the way is recorded as a REJECTED command too, so ListCommands shows every cloud attempt.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from google.protobuf.message import DecodeError

from linebridge.commands.manager import CommandManager
from linebridge.commands.types import CommandRecord, CommandSpec
from linebridge.errors import InvalidArgument, LinebridgeError, NotFound, PermissionDenied
from linebridge.model import CommandKind, Identity, Role, Signal
from linebridge.paths import PathGlob, compile_glob
from linebridge.registry import DeviceRegistry
from linebridge.uplink.config import UplinkConfig
from linebridge.uplink.encoder import DATATYPE, get_value
from linebridge.uplink.proto import sparkplug_b_pb2 as spb

log = logging.getLogger(__name__)

# Cloud commands without a configured identity are operators, never the in-process (admin) caller.
CLOUD = Identity("sparkplug", Role.OPERATOR, via="sparkplug")
REBIRTH = "Node Control/Rebirth"
# metric -> signal path of the device, or None when the metric names nothing the device was born with
Resolver = Callable[[str, spb.Payload.Metric], str | None]


def record_rejection(manager: CommandManager, spec: CommandSpec, error: LinebridgeError) -> CommandRecord:
    """Keep a command refused before it reached submit() in the manager's history as REJECTED (and audited)."""
    return manager.reject(spec, error)


def cloud_identity(config: UplinkConfig) -> Identity:
    """Who cloud commands act as: the Sparkplug host application (or group), with `uplink.command_role`."""
    return Identity(
        f"sparkplug:{config.primary_host_id or config.group_id}", config.command_role, via="sparkplug"
    )


def writable_globs(table: dict[str, list[str]]) -> list[PathGlob]:
    """`uplink.cloud_writable` ({device glob: [signal globs]}) as full-path globs."""
    return [compile_glob(f"{device}/{signal}") for device, signals in table.items() for signal in signals]


def decode(payload: bytes) -> spb.Payload:
    """A command payload with at least one metric, or InvalidArgument."""
    try:
        message = spb.Payload.FromString(payload)
    except DecodeError:
        raise InvalidArgument("not a Sparkplug B payload") from None
    if not message.metrics:
        raise InvalidArgument("the command carries no metrics")
    return message


class CloudCommands:
    """Turns command messages from the broker into commands, or into recorded rejections."""

    def __init__(
        self,
        manager: CommandManager,
        registry: DeviceRegistry,
        writable: list[PathGlob],
        resolve: Resolver,
        rebirth: Callable[[], None],
        rebirth_alias: Callable[[], int],
        identity: Identity = CLOUD,
    ) -> None:
        self.manager, self.registry, self.writable = manager, registry, writable
        self.identity = identity
        self._resolve, self._rebirth, self._rebirth_alias = resolve, rebirth, rebirth_alias
        self.accepted = 0
        self.rejected = 0

    def handle(self, verb: str, device_id: str, payload: bytes, topic: str) -> None:
        """Called by the edge node for every NCMD and DCMD (on the event loop; never raises)."""
        if verb == "NCMD":
            self._node_command(payload, topic)
        else:
            self._device_command(device_id, payload, topic)

    def _device_command(self, device_id: str, payload: bytes, topic: str) -> None:
        spec = CommandSpec(
            device_id,
            CommandKind.WRITE,
            origin=f"sparkplug:{topic}",
            identity=dataclasses.replace(self.identity, peer=topic),
        )
        try:
            message = decode(payload)
            record = self.registry.find(device_id)
            if record is None:
                raise NotFound(f"unknown device {device_id!r}")
            for metric in message.metrics:
                spec.writes.append(self._write_of(device_id, record.signals, metric))
            denied = [
                p for p, _ in spec.writes if not any(g.matches(f"{device_id}/{p}") for g in self.writable)
            ]
            if denied:
                raise PermissionDenied(
                    f"cloud commands may not write {', '.join(f'{device_id}/{p}' for p in denied)}"
                    " (not in uplink.cloud_writable)"
                )
        except LinebridgeError as exc:
            self.rejected += 1
            rejected = record_rejection(self.manager, spec, exc)
            log.warning("uplink: rejected DCMD on %s as %s: %s", topic, rejected.id, exc)
            return
        try:
            accepted, _ = self.manager.submit(spec)
        except LinebridgeError as exc:  # submit() keeps it as REJECTED itself
            self.rejected += 1
            log.warning("uplink: DCMD on %s rejected by the command manager: %s", topic, exc)
            return
        self.accepted += 1
        log.info("uplink: DCMD on %s became command %s", topic, accepted.id)

    def _write_of(
        self, device_id: str, signals: dict[str, Signal], metric: spb.Payload.Metric
    ) -> tuple[str, object]:
        path = self._resolve(device_id, metric)
        signal = signals.get(path) if path is not None else None
        if signal is None:
            which = f"alias {metric.alias}" if metric.HasField("alias") else f"name {metric.name!r}"
            raise InvalidArgument(f"device {device_id!r} has no metric with {which}")
        expected = DATATYPE[signal.value_type]
        if metric.HasField("datatype") and metric.datatype != expected:
            raise InvalidArgument(
                f"{device_id}/{path} is {spb.DataType.Name(expected)}, the command sent "
                f"datatype {metric.datatype}"
            )
        try:
            return path, get_value(metric, signal.value_type)
        except ValueError as exc:
            raise InvalidArgument(f"{device_id}/{path}: {exc}") from None

    def _node_command(self, payload: bytes, topic: str) -> None:
        try:
            message = decode(payload)
            for metric in message.metrics:
                if metric.name != REBIRTH and not (
                    metric.HasField("alias") and metric.alias == self._rebirth_alias()
                ):
                    raise NotFound(f"the edge node has no writable metric {metric.name or metric.alias!r}")
                if metric.WhichOneof("value") != "boolean_value":
                    raise InvalidArgument(f"{REBIRTH} takes a Boolean")
        except LinebridgeError as exc:
            self.rejected += 1
            log.warning("uplink: rejected NCMD on %s: %s", topic, exc)
            return
        self.accepted += 1
        if any(m.boolean_value for m in message.metrics):
            self._rebirth()
