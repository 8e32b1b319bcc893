"""Universal Robots driver: RTDE telemetry, Dashboard commands and URScript motion.

Connections: one Dashboard connection for the driver's lifetime (commands, polled signals),
one RTDE connection per stream(), a short-lived one per read() and per motion command (its
monitor), and one secondary-interface connection per motion to deliver the URScript.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path

from linebridge.drivers.base import (
    BatchSink,
    CommandKind,
    CommandRequest,
    CommandResult,
    DeviceDescription,
    DeviceKind,
    DiscoveredDevice,
    Driver,
    DriverContext,
    DriverOptions,
    MdnsMatch,
    MdnsService,
    MethodSpec,
    NotFound,
    ProgressFn,
    SampleBatch,
    Signal,
    StreamHints,
    Unavailable,
    Value,
    analytics_file,
    batch_of,
)
from linebridge.drivers.tasks import until_first_failure
from linebridge.drivers.ur import dashboard as dash
from linebridge.drivers.ur.catalog import OUTPUT_TYPES
from linebridge.drivers.ur.fields import (
    FIELDS,
    FIELDS_BY_NAME,
    DashboardQuery,
    RtdeField,
)
from linebridge.drivers.ur.motion import (
    MONITOR_NAMES,
    MotionTarget,
    MotionTracker,
    check_ready,
    halt_program,
    plan_move,
    run_program,
    send_script,
)
from linebridge.drivers.ur.options import (
    UrAddress,
    UrOptions,
    discovered_device,
    parse_endpoint,
)
from linebridge.drivers.ur.probe import answered_queries, catalog_signals, supported_fields
from linebridge.drivers.ur.rtde import Recipe
from linebridge.drivers.ur.rtde_client import RtdeClient
from linebridge.drivers.ur.streaming import PacketBatcher, StreamCounters, is_rtde_signal, plan_stream

SERVICE_TYPE = "_ur-rtde._tcp.local."  # Linebridge's own convention; UR controllers do not advertise
CB_SERIES_MAX_HZ = 125.0
COMMANDS = frozenset(
    {
        CommandKind.INVOKE,
        CommandKind.STOP,
        CommandKind.MOVE_JOINTS,
        CommandKind.MOVE_LINEAR,
        CommandKind.RUN_PROGRAM,
        CommandKind.PAUSE_PROGRAM,
    }
)
_CMD = dash.COMMANDS_BY_METHOD
_POLL = 0.05  # seconds between Dashboard polls while waiting for a program state


ANALYTICS_FILE = str(Path(__file__).with_name("analytics.yaml"))


class UrDriver(Driver):
    """A UR e-Series (or CB3) robot over RTDE (30004), Dashboard (29999) and secondary (30002)."""

    type_name = "ur"
    options_model = UrOptions
    discovery = (MdnsMatch(SERVICE_TYPE),)

    @classmethod
    def check_endpoint(cls, endpoint: str, options: DriverOptions) -> None:
        """InvalidArgument unless `endpoint` has this driver's form."""
        parse_endpoint(endpoint, options)  # type: ignore[arg-type]

    def __init__(self, ctx: DriverContext) -> None:
        super().__init__(ctx)
        options = ctx.options
        self.options = (
            options if isinstance(options, UrOptions) else UrOptions.model_validate(options.model_dump())
        )
        self.log = ctx.logger
        self.address: UrAddress | None = None
        self._dashboard: dash.DashboardClient | None = None
        self._frequency = self.options.frequency
        self._info: dict[str, str] = {}
        self._counters = StreamCounters()
        self._degraded = False

    @classmethod
    def from_mdns(cls, service: MdnsService) -> DiscoveredDevice:
        """Device id from the instance name; RTDE port from SRV, Dashboard/secondary ports from TXT."""
        return discovered_device(service)

    # --- lifecycle ---------------------------------------------------------------------------

    async def connect(self) -> DeviceDescription:
        """Open the Dashboard, read identity, probe which RTDE variables the controller knows."""
        await self.close()
        self.address = parse_endpoint(self.ctx.endpoint, self.options)
        try:
            self._dashboard = dash.DashboardClient(
                self.address.host, self.address.dashboard_port, self.options.timeout
            )
            await self._dashboard.connect()
            model = await self._dashboard.request("get robot model")
            serial = await self._dashboard.request("get serial number")
            self._info["polyscope_version"] = await self._dashboard.request("PolyscopeVersion")
            fields = await self._probe_rtde()
            polled = await answered_queries(self._require_dashboard(), self.log)
        except BaseException:
            await self.close()
            raise
        return DeviceDescription(
            kind=DeviceKind.ROBOT,
            vendor="Universal Robots",
            model=model,
            serial_number=serial,
            identity=f"ur:{serial}" if serial else "",
            signals=catalog_signals(fields, polled),
            methods=dash.method_specs(),
            commands=COMMANDS,
            analytics=analytics_file(ANALYTICS_FILE),
        )

    async def _probe_rtde(self) -> list[RtdeField]:
        """Negotiate v2, read the controller version, ask for every table variable; drop NOT_FOUND ones."""
        client = self._rtde_client()
        try:
            await client.connect()
            await client.negotiate()
            major, minor, bugfix, build = await client.controller_version()
            names = [f.name for f in FIELDS]
            _, type_names = await client.setup_outputs(names, self._frequency)
        finally:
            await client.close()
        self._info["controller_version"] = f"{major}.{minor}.{bugfix}.{build}"
        if major < 5 and self._frequency > CB_SERIES_MAX_HZ:
            self.log.info(
                "CB-series controller %s: RTDE limited to %g Hz",
                self._info["controller_version"],
                CB_SERIES_MAX_HZ,
            )
            self._frequency = CB_SERIES_MAX_HZ
        supported, missing = supported_fields(type_names)
        if missing:
            self.log.warning(
                "controller does not know RTDE variable(s) %s; their signals are left out", ", ".join(missing)
            )
        self._info["unsupported_variables"] = ", ".join(missing) or "-"
        return supported

    async def close(self) -> None:
        """Close the Dashboard connection (streams and commands close their own); idempotent."""
        dashboard, self._dashboard = self._dashboard, None
        if dashboard is not None:
            await dashboard.close()

    def liveness(self, hints: StreamHints) -> float:
        """1 s at RTDE's 500 Hz (about 500 packets missed), longer at low frequencies (100 packets)."""
        return max(1.0, 100 / self._frequency)

    def diagnostics(self) -> dict[str, str]:
        """Negotiated versions, stream rate and the stream counters."""
        info = dict(self._info)
        if self.address is not None:
            info["endpoint"] = self.address.endpoint()
        info["rtde_protocol"] = "2"
        info["frequency_hz"] = f"{self._frequency:g}"
        info.update({f"stream_{k}": str(v) for k, v in self.stream_counters().items()})
        return info

    def stream_counters(self) -> dict[str, int]:
        """Counters of the current (or last) stream: packets, batches, samples, gaps, late, out_of_order."""
        c = self._counters
        return {
            "packets": c.packets,
            "batches": c.batches,
            "samples": c.samples,
            "gaps": c.gaps,
            "late": c.late,
            "out_of_order": c.out_of_order,
        }

    # --- telemetry ---------------------------------------------------------------------------

    async def stream(self, signals: Sequence[Signal], sink: BatchSink, hints: StreamHints) -> None:
        """Stream RTDE signals at the configured frequency and poll Dashboard signals; raise on failure.

        The RTDE rate comes from options.frequency (the controller pushes; hints do not apply).
        """
        jobs: list[Coroutine] = []
        rtde_signals = [s for s in signals if is_rtde_signal(s)]
        polled = [s for s in signals if isinstance(s.address, DashboardQuery)]
        if rtde_signals:
            jobs.append(self._stream_rtde(rtde_signals, sink))
        if polled:
            jobs.append(self._poll_dashboard(polled, sink))
        try:
            await until_first_failure(jobs)
        except Exception as exc:
            self._degraded = True
            sink.degraded(str(exc))
            raise

    async def _stream_rtde(self, signals: list[Signal], sink: BatchSink) -> None:
        plan = plan_stream(signals)
        client = self._rtde_client()
        batcher: PacketBatcher | None = None
        try:
            await client.connect()
            await client.negotiate()
            recipe = await client.recipe(
                plan.names, self._frequency, {n: FIELDS_BY_NAME[n].rtde_type for n in plan.names}
            )
            batcher = PacketBatcher(
                self.device_id,
                plan,
                recipe,
                sink,
                1.0 / self._frequency,
                self.options.batch_window,
                self.options.batch_max_packets,
                self.options.late_threshold,
            )
            self._counters = batcher.counters
            await client.start()
            while True:
                batcher.on_packets(await client.receive())
                if self._degraded:
                    self._degraded = False
                    sink.degraded(None)
        finally:
            if batcher is not None:
                batcher.flush()
            await client.close()

    async def _poll_dashboard(self, signals: list[Signal], sink: BatchSink) -> None:
        dashboard = self._require_dashboard()
        while True:
            values = [await dashboard.query(s.address.command) for s in signals]
            sink.publish(batch_of(self.device_id, signals, values, time.time_ns()))
            await asyncio.sleep(self.options.dashboard_poll_interval)

    async def read(self, signals: Sequence[Signal]) -> SampleBatch:
        """Read current values: one RTDE packet from a short-lived connection, Dashboard queries."""
        values: dict[int, Value] = {}
        rtde_signals = [s for s in signals if is_rtde_signal(s)]
        if rtde_signals:
            plan = plan_stream(rtde_signals)
            row = await self._one_row(plan.names)
            values.update(zip(plan.aliases, plan.picker()(row), strict=True))
        for signal in signals:
            if isinstance(signal.address, DashboardQuery):
                values[signal.alias] = await self._require_dashboard().query(signal.address.command)
        return batch_of(self.device_id, signals, [values[s.alias] for s in signals], time.time_ns())

    async def _one_row(self, names: Sequence[str]) -> tuple:
        client = self._rtde_client()
        try:
            recipe = await self._start_recipe(client, names, self._frequency)
            return recipe.decode((await client.receive())[-1])
        finally:
            await client.close()

    async def _start_recipe(self, client: RtdeClient, names: Sequence[str], frequency: float) -> Recipe:
        await client.connect()
        await client.negotiate()
        recipe = await client.recipe(names, frequency, {n: OUTPUT_TYPES[n] for n in names})
        await client.start()
        return recipe

    # --- commands ----------------------------------------------------------------------------

    async def call(self, method: MethodSpec, args: Sequence[Value], progress: ProgressFn) -> list[Value]:
        """Run a Dashboard command; actions return the controller's reply, queries their value."""
        command = (
            method.address if isinstance(method.address, dash.DashboardCommand) else _CMD.get(method.name)
        )
        if command is None:
            raise NotFound(f"UR robot has no method {method.name!r}")
        argument = str(args[0]) if command.arg and args else ""
        return [await self._require_dashboard().run(command, argument)]

    async def stop(self) -> None:
        """Dashboard `stop`: stops the running program and with it any motion it commands.

        This is a network stop request, a controlled stop of the program: it is not a safety
        function and never replaces the hardware emergency stop or a safety-rated stop input.
        """
        await self._require_dashboard().run(_CMD["stop_program"])

    async def execute(self, request: CommandRequest, progress: ProgressFn) -> CommandResult:
        """Motion and program commands here; write/invoke/stop through the base class."""
        if request.kind in (CommandKind.MOVE_JOINTS, CommandKind.MOVE_LINEAR):
            return await self._move(plan_move(request, self.options), progress)
        if request.kind is CommandKind.RUN_PROGRAM:
            timeout = self.options.program_start_timeout
            return await run_program(self._require_dashboard(), request.program, progress, timeout, _POLL)
        if request.kind is CommandKind.PAUSE_PROGRAM:
            await self._require_dashboard().run(_CMD["pause"])
            await self._wait_program_state("PAUSED")
            progress(1.0, "program paused")
            return CommandResult(message="program paused")
        return await super().execute(request, progress)

    async def _wait_program_state(self, wanted: str) -> str:
        timeout = self.options.program_start_timeout
        return await dash.wait_program_state(self._require_dashboard(), wanted, timeout, _POLL)

    async def _move(self, target: MotionTarget, progress: ProgressFn) -> CommandResult:
        """Check readiness, watch RTDE, send the script, wait until the robot is there."""
        assert self.address is not None
        await check_ready(self._require_dashboard())
        monitor = self._rtde_client()
        loop = asyncio.get_running_loop()
        sent = False  # from the first byte of the script on, any exit but "target reached" stops it
        try:
            recipe = await self._start_recipe(monitor, MONITOR_NAMES, self.options.monitor_frequency)
            first = recipe.decode((await monitor.receive())[-1])
            tracker = MotionTracker(target, self.options, first, loop.time())
            sent = True
            await send_script(
                self.address.host, self.address.secondary_port, target.script(), self.options.timeout
            )
            progress(0.0, f"{target.kind.value} sent")
            reported = loop.time()
            while True:
                for payload in await monitor.receive():
                    row = recipe.decode(payload)
                    if tracker.update(row, loop.time()):
                        progress(1.0, "target reached")
                        return CommandResult(message=f"{target.kind.value} reached the target")
                if loop.time() - reported >= 0.1:
                    reported = loop.time()
                    progress(tracker.progress(row), "moving")
        except (
            BaseException
        ) as exc:  # cancelled, RTDE lost, protocol error, ...: the robot must not go on alone
            if sent:
                await halt_program(self._require_dashboard(), exc, self.options.timeout, self.log)
            raise
        finally:
            await monitor.close()

    # --- helpers -----------------------------------------------------------------------------

    def _rtde_client(self) -> RtdeClient:
        assert self.address is not None, "connect() first"
        return RtdeClient(self.address.host, self.address.rtde_port, self.options.timeout, self.log)

    def _require_dashboard(self) -> dash.DashboardClient:
        if self._dashboard is None:
            raise Unavailable("UR driver is not connected")
        return self._dashboard
