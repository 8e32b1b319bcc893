"""Commands: gates, validation, lifecycle, idempotency, per-device queue, deadlines, cancel, Stop preemption, audit."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from linebridge.commands.audit import CommandAudit, who
from linebridge.commands.deadman import Deadman, stop_on_trip
from linebridge.commands.gates import CommandGates
from linebridge.commands.resolve import check_sizes, resolve
from linebridge.commands.types import CommandEvent, CommandRecord, CommandSpec, CommandState, request_of
from linebridge.drivers.base import Driver
from linebridge.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    LinebridgeError,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from linebridge.model import CommandKind, Identity
from linebridge.registry import DeviceRegistry

log = logging.getLogger(__name__)


Finished = Callable[[CommandRecord, float], None]


class CommandManager:
    """Accepts commands, runs them one at a time per device (Stop excepted), keeps a history."""

    def __init__(
        self,
        registry: DeviceRegistry,
        driver_of: Callable[[str], Driver | None],
        default_timeout: float = 10.0,
        max_timeout: float = 600.0,
        queue_limit: int = 100,
        history: int = 1000,
        on_finished: Finished | None = None,
        gates: CommandGates | None = None,
        audit: CommandAudit | None = None,
        deadman_interval: float = 0.5,
        max_value_bytes: int = 64 << 10,
    ) -> None:
        self.registry = registry
        self.gates = gates or CommandGates()
        self.audit = audit
        self.deadman_interval = deadman_interval
        self.max_value_bytes = max_value_bytes
        self._deadmen: set[Deadman] = set()
        self._driver_of = driver_of
        self.default_timeout, self.max_timeout = default_timeout, max_timeout
        self.queue_limit, self.history_limit = queue_limit, history
        self._on_finished = on_finished
        self._history: OrderedDict[str, CommandRecord] = OrderedDict()
        self._keys: dict[tuple[str, str], str] = {}
        self._queues: dict[str, deque[CommandRecord]] = {}
        self._wakers: dict[str, asyncio.Event] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._running: dict[str, CommandRecord] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._seq = itertools.count(1)

    # -- submit ------------------------------------------------------------------------------
    def submit(self, spec: CommandSpec) -> tuple[CommandRecord, bool]:
        """Check, record and queue a command. Returns (record, existed); raises when refused.

        Order: the caller's rate and role, idempotency, timeout, device and arguments, device online,
        safety gates, the device's rate and queue, then the "accepted" audit record: nothing is queued
        without it. A refusal is kept as a REJECTED command and audited.
        """
        record = CommandRecord(id=f"cmd-{next(self._seq)}-{uuid.uuid4().hex[:8]}", spec=spec)
        try:
            record.command_class = self.gates.admit(spec.device_id, spec.kind, spec.method, spec.identity)
            existing = self._existing(spec)
            if existing is not None:
                return existing, True
            timeout = self._timeout(spec)
            check_sizes(spec, self.max_value_bytes)
            device = self.registry.get(spec.device_id)
            if device.description is not None:  # validate against what the device last described
                record.request = resolve(spec, device)
            if not device.available:
                raise Unavailable(
                    f"device {spec.device_id!r} is {device.state.name.lower()}"
                    + (f": {device.state_reason}" if device.state_reason else "")
                )
            self.gates.check(record.command_class, device, record.request)
            driver = self._driver_of(spec.device_id)
            if driver is not None and record.request is not None:  # the driver's own rules (VDA 5050 §6.6)
                driver.check(record.request)
            queue = self._queues.setdefault(spec.device_id, deque())
            if spec.kind is not CommandKind.STOP and len(queue) >= self.queue_limit:
                raise ResourceExhausted(f"device {spec.device_id!r} has {len(queue)} commands queued")
            self.gates.device_rate(spec.device_id, spec.kind)
            if self.audit is not None:  # written before the command can reach the device
                record.audit_seq = self.audit.accepted(record)
        except LinebridgeError as exc:
            self._reject(record, exc)
            raise
        self._enqueue(record, queue, timeout)
        return record, False

    def reject(self, spec: CommandSpec, error: LinebridgeError) -> CommandRecord:
        """Keep a command refused before submit() (e.g. a malformed cloud command) as REJECTED, audited."""
        record = CommandRecord(id=f"cmd-{next(self._seq)}-{uuid.uuid4().hex[:8]}", spec=spec)
        self._reject(record, error)
        return record

    def _reject(self, record: CommandRecord, error: LinebridgeError) -> None:
        self._remember(record)
        self._finish(record, CommandState.REJECTED, error.reason, str(error))
        if self.audit is not None:
            self.audit.rejected(record, error)

    def _existing(self, spec: CommandSpec) -> CommandRecord | None:
        """The command an earlier Execute with the same idempotency key created, if any."""
        existing_id = self._keys.get((spec.device_id, spec.idempotency_key)) if spec.idempotency_key else None
        if existing_id is None or existing_id not in self._history:
            return None
        existing = self._history[existing_id]
        if request_of(existing.spec) != request_of(spec):
            raise InvalidArgument(
                f"idempotency key {spec.idempotency_key!r} was used for a different command"
            )
        return existing

    def _enqueue(self, record: CommandRecord, queue: deque[CommandRecord], timeout: float) -> None:
        spec = record.spec
        loop = asyncio.get_running_loop()
        record.deadline = loop.time() + timeout
        self._remember(record)
        if spec.idempotency_key:
            self._keys[(spec.device_id, spec.idempotency_key)] = record.id
        if spec.kind is CommandKind.STOP:
            self._preempt(spec.device_id)
            self._start(record)
        elif (
            record.request is not None
            and record.request.method is not None
            and record.request.method.immediate
        ):
            self._start(record)  # beside the queue (MethodSpec.immediate)
        else:
            record.timer = loop.call_at(record.deadline, self._expire_queued, record)
            queue.append(record)
            self._wake(spec.device_id)

    def _timeout(self, spec: CommandSpec) -> float:
        timeout = self.default_timeout if spec.timeout is None else spec.timeout
        if spec.kind is CommandKind.STOP:  # a Stop is never refused by a timeout setting
            return min(timeout if timeout > 0 else self.default_timeout, self.max_timeout)
        if not 0 < timeout <= self.max_timeout:
            raise InvalidArgument(f"timeout must be between 0 and {self.max_timeout:g} s, got {timeout:g}")
        return timeout

    # -- queries -----------------------------------------------------------------------------
    def get(self, command_id: str) -> CommandRecord:
        """One command by id; NotFound when it is unknown or forgotten."""
        try:
            return self._history[command_id]
        except KeyError:
            raise NotFound(f"unknown command {command_id!r}") from None

    def list(self, device_id: str = "", limit: int = 100) -> list[CommandRecord]:
        """The latest commands, newest first, of one device or all."""
        out = []
        for record in reversed(self._history.values()):
            if not device_id or record.spec.device_id == device_id:
                out.append(record)
                if len(out) >= limit:
                    break
        return out

    async def follow(self, record: CommandRecord) -> AsyncIterator[CommandEvent]:
        """The command's state now, then every change in order, until a final state."""
        queue: asyncio.Queue[CommandEvent] = asyncio.Queue()
        record.watchers.append(queue)
        try:
            event = CommandEvent.of(record)
            yield event
            while not event.state.final:
                event = await queue.get()
                yield event
        finally:
            record.watchers.remove(queue)

    # -- cancel ------------------------------------------------------------------------------
    def cancel(
        self, command_id: str, reason: str = "cancelled by request", identity: Identity | None = None
    ) -> CommandRecord:
        """Cancel a queued or running command; the caller needs the role the command's class needs there."""
        record = self.get(command_id)
        if record.state.final:
            raise FailedPrecondition(f"command {command_id} already ended ({record.state.name})")
        self._authorize_cancel(record, identity)
        self._update(record, cancelled_by=who(identity)["name"], cancelled_ns=time.time_ns())
        if record.state is CommandState.QUEUED:
            self._queues.get(record.spec.device_id, deque()).remove(record)
            self._finish(record, CommandState.CANCELLED, "CANCELLED", reason)
        elif record.state is CommandState.RUNNING and record.task is not None:
            record.error_message = reason
            record.task.cancel()
        return record

    def _authorize_cancel(self, record: CommandRecord, identity: Identity | None) -> None:
        """The per-device role of the command's class; a refusal is audited (an accepted cancel is recorded
        with the command's outcome: `cancelled_by` with name and time)."""
        what = {"device": record.spec.device_id, "command_id": record.id, "class": record.command_class}
        try:
            self.gates.may_cancel(record.spec.device_id, record.command_class, identity)
        except LinebridgeError as exc:
            if self.audit is not None:
                self.audit.cancel_refused(identity, what, str(exc))
            raise

    def _preempt(self, device_id: str) -> None:
        queue = self._queues.get(device_id, deque())
        while queue:
            self._finish(queue.popleft(), CommandState.CANCELLED, "PREEMPTED", "preempted by stop")
        running = self._running.get(device_id)
        if running is not None and running.task is not None:
            running.error_message = "preempted by stop"
            running.task.cancel()

    # -- deadman -----------------------------------------------------------------------------
    def deadman(
        self, device_id: str, identity: Identity | None = None, interval: float | None = None
    ) -> Deadman:
        """Arm a deadman for a device: unless `beat()` comes every `interval` s, the device gets a Stop."""
        interval = self.deadman_interval if interval is None else interval
        if not 0 < interval <= 10:
            raise InvalidArgument(f"deadman interval must be between 0 and 10 s, got {interval:g}")
        self.registry.get(device_id)
        self._deadmen = {d for d in self._deadmen if d.armed}
        handle = Deadman(device_id, identity, interval, self._deadman_tripped)
        self._deadmen.add(handle)
        return handle

    def _deadman_tripped(self, handle: Deadman, reason: str) -> None:
        stop_on_trip(handle, reason, self.submit, self.audit)

    # -- running -----------------------------------------------------------------------------
    def _wake(self, device_id: str) -> None:
        if device_id not in self._workers:
            self._wakers[device_id] = asyncio.Event()
            self._workers[device_id] = asyncio.create_task(
                self._worker(device_id), name=f"commands:{device_id}"
            )
        self._wakers[device_id].set()

    async def _worker(self, device_id: str) -> None:
        queue, waker = self._queues[device_id], self._wakers[device_id]
        while True:
            while not queue:
                waker.clear()
                await waker.wait()
            record = queue.popleft()
            self._running[device_id] = record
            task = self._start(record)
            try:
                await asyncio.wait([task])
            finally:
                self._running.pop(device_id, None)
                if not task.done():  # the worker itself was cancelled: shutting down
                    task.cancel()

    def _start(self, record: CommandRecord) -> asyncio.Task[None]:
        """Run one command in its own task, so cancelling it never touches the queue worker."""
        task = record.task = asyncio.create_task(self._run(record), name=f"command:{record.id}")
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)
        return task

    async def _run(self, record: CommandRecord) -> None:
        if record.timer is not None:
            record.timer.cancel()
        if record.state.final:
            return
        loop = asyncio.get_running_loop()
        self._update(record, state=CommandState.RUNNING)
        started = time.monotonic()
        try:
            if self.audit is not None and record.spec.kind is not CommandKind.STOP:
                # A Stop never waits for a disk; the rest at most until their deadline (a slow fsync: TIMED_OUT)
                async with asyncio.timeout_at(record.deadline):
                    await self.audit.durable(record.audit_seq)
            driver = self._driver_of(record.spec.device_id)
            device = self.registry.find(record.spec.device_id)
            if driver is None or device is None or not device.available:
                raise Unavailable(f"device {record.spec.device_id!r} went offline before the command ran")
            remaining = record.deadline - loop.time()
            if remaining <= 0:
                raise DeadlineExceeded("deadline passed while queued")
            assert record.request is not None
            result = await asyncio.wait_for(driver.execute(record.request, self._progress(record)), remaining)
        except asyncio.CancelledError:
            reason = record.error_message or "cancelled"
            self._finish(
                record, CommandState.CANCELLED, "PREEMPTED" if "stop" in reason else "CANCELLED", reason
            )
        except (TimeoutError, DeadlineExceeded):
            self._finish(
                record,
                CommandState.TIMED_OUT,
                "DEADLINE_EXCEEDED",
                f"no result within {record.spec.timeout or self.default_timeout:g} s",
            )
        except LinebridgeError as exc:
            self._finish(record, CommandState.FAILED, exc.reason, str(exc))
        except Exception as exc:  # a driver bug or protocol error: fail the command, keep the bridge
            log.warning("command %s on %s failed: %r", record.id, record.spec.device_id, exc)
            self._finish(record, CommandState.FAILED, "DEVICE_ERROR", f"{type(exc).__name__}: {exc}")
        else:
            record.result = list(result.values)
            self._finish(record, CommandState.SUCCEEDED, "", result.message, progress=1.0)
        finally:
            record.task = None
            if self._on_finished is not None and record.state.final:
                self._on_finished(record, time.monotonic() - started)

    def _progress(self, record: CommandRecord) -> Callable[[float, str], None]:
        def report(fraction: float, message: str = "") -> None:
            if record.state is CommandState.RUNNING:
                self._update(record, progress=max(0.0, min(1.0, fraction)), progress_message=message)

        return report

    def _expire_queued(self, record: CommandRecord) -> None:
        if record.state is CommandState.QUEUED:
            queue = self._queues.get(record.spec.device_id)
            if queue is not None and record in queue:
                queue.remove(record)
            self._finish(record, CommandState.TIMED_OUT, "DEADLINE_EXCEEDED", "deadline passed while queued")

    def _finish(
        self,
        record: CommandRecord,
        state: CommandState,
        reason: str,
        message: str,
        progress: float | None = None,
    ) -> None:
        if record.timer is not None:
            record.timer.cancel()
        self._update(
            record,
            state=state,
            error_reason=reason if state is not CommandState.SUCCEEDED else "",
            error_message=message if state is not CommandState.SUCCEEDED else "",
            progress_message=message if state is CommandState.SUCCEEDED else record.progress_message,
            progress=record.progress if progress is None else progress,
        )
        if state is CommandState.REJECTED and self._on_finished is not None:
            self._on_finished(record, 0.0)
        if self.audit is not None and record.audit_seq:
            self.audit.finished(record)

    def _update(self, record: CommandRecord, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(record, key, value)
        record.updated_ns = time.time_ns()
        if record.watchers:
            event = CommandEvent.of(record)
            for queue in record.watchers:
                queue.put_nowait(event)

    def _remember(self, record: CommandRecord) -> None:
        self._history[record.id] = record
        while len(self._history) > self.history_limit:
            oldest_id, oldest = next(iter(self._history.items()))
            if not oldest.state.final:
                break
            del self._history[oldest_id]
            if oldest.spec.idempotency_key:
                self._keys.pop((oldest.spec.device_id, oldest.spec.idempotency_key), None)

    async def close(self) -> None:
        """Close the command audit, release the deadmen, and cancel and await every command task."""
        if self.audit is not None:
            self.audit.close()
        for handle in self._deadmen:
            handle.release()
        self._deadmen.clear()
        tasks = [*self._workers.values(), *self._side_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()
