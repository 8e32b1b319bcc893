"""`linebridge hil run`: build the cell (simulators, one fault proxy per device, Mosquitto, a bridge with
static entries pointing at the proxies), play each scenario's steps on a clock, record, and judge.

The runner talks to the bridge only through `linebridge.client`."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from linebridge.app import BridgeApp
from linebridge.client import AsyncClient, ClientError
from linebridge.config import parse_config
from linebridge.devices.catalog import DriverCatalog
from linebridge.errors import ConfigError
from linebridge.hil.faults import ANNOUNCEABLE, Announced, Broker, Cell, Link, mdns_instance, port_free
from linebridge.hil.measure import (
    CommandRecord,
    MoveRecord,
    Recording,
    ScenarioRun,
    UplinkCounter,
    count_samples,
    wait_settled,
    watch_states,
)
from linebridge.hil.rig import Rig, RigDevice, load_rig
from linebridge.hil.scenario import Check, Expectation, Scenario, StepKind, load_scenario, load_scenarios
from linebridge.hil.sim_process import SimProcess
from linebridge.hil.verdicts import verdicts

GROUP = "hil"
SETTLE_TIMEOUT = 30.0


def preflight(rig_path: str | Path, rig: Rig, catalog: DriverCatalog) -> None:
    """Refuse a rig the runner cannot build, before anything starts (file, entry, problem)."""
    seen: set[str] = set()
    for i, device in enumerate(rig.devices):
        where = f"{rig_path}: devices[{i}] ({device.id})"
        if device.id in seen:
            raise ConfigError(f"{where}: the device id appears twice")
        seen.add(device.id)
        if device.driver not in catalog.names():
            raise ConfigError(f"{where}: unknown driver {device.driver!r}")
        if not device.simulator and not device.endpoint:
            raise ConfigError(f"{where}: names neither a simulator nor an endpoint")
        if not port_free(device.proxy_port):
            raise ConfigError(f"{where}: proxy port {device.proxy_port} is already in use")


def probe_command(device: RigDevice) -> dict[str, Any]:
    """A harmless command for fail-fast probes: the rig's write check (its restore value), or its call."""
    if device.expect.write is not None:
        value = (
            device.expect.write.restore
            if device.expect.write.restore is not None
            else device.expect.write.value
        )
        return {"write": {device.expect.write.path: value}}
    if device.expect.call is not None:
        return {"invoke": device.expect.call.method, "args": list(device.expect.call.args)}
    return {"stop": True}


class CellRun:
    """One scenario on a freshly built cell."""

    def __init__(self, rig: Rig, scenario: Scenario, workdir: Path) -> None:
        self.rig, self.scenario, self.workdir = rig, scenario, workdir
        self.rec = Recording([d.id for d in rig.devices])
        self.rec.aliases = {mdns_instance(d): d for d in scenario.discovered}
        self.tasks: list[asyncio.Task[Any]] = []
        self.catalog = DriverCatalog.from_entry_points()

    def bridge_id(self, device: str) -> str:
        """What the bridge calls a rig device: its id, or for a discovered one its run-unique mDNS name."""
        return mdns_instance(device) if device in self.scenario.discovered else device

    def cell(self) -> Cell:
        """The parts of the cell, not started yet (simulators never announce themselves: the runner does,
        at the proxy, for the scenario's `discovered` devices)."""
        sims = {
            d.id: SimProcess(d.simulator, d.id, [*d.simulator_args, "--no-mdns"])
            for d in self.rig.devices
            if d.simulator
        }
        announced = {
            d.id: Announced(d.driver, self.catalog.get(d.driver).discovery[0].service_type, d.options)
            for d in self.rig.devices
            if d.id in self.scenario.discovered
        }
        return Cell({}, sims, Broker(self.workdir), announced)

    async def build(self, cell: Cell) -> BridgeApp:
        """Start simulators, broker, proxies and the bridge."""
        sims, broker = cell.simulators, cell.broker
        for sim in sims.values():
            await asyncio.to_thread(sim.start)
        await broker.start()
        for device in self.rig.devices:
            target = sims[device.id].endpoint if device.id in sims else device.endpoint
            cell.links[device.id] = Link(device.id, target)
            await cell.links[device.id].start(device.proxy_port)
        await cell.announce()
        app = BridgeApp(self.config(cell), self.catalog)
        await app.start()
        return app

    def config(self, cell: Cell) -> Any:
        static = [
            {"id": d.id, "driver": d.driver, "endpoint": cell.links[d.id].endpoint, "options": d.options}
            for d in self.rig.devices
            if d.id not in cell.announced
        ]
        # Exactly the run's own announcements are approved; anyone else's `robot-1` stays DISCOVERED.
        approve = [
            {"name": mdns_instance(d), "service_type": a.service_type} for d, a in cell.announced.items()
        ]
        return parse_config(
            {
                "bridge": {"id": f"hil-{self.rig.name}"},
                "grpc": {"address": "127.0.0.1:0", "grace_seconds": 0},
                "metrics": {"enabled": False},
                "discovery": {
                    "enabled": bool(approve),
                    "interfaces": ["127.0.0.1"],
                    "advertise": False,
                    "auto_approve": approve,
                },
                "sessions": {"backoff_initial_seconds": 0.1, "backoff_max_seconds": 1.0},
                "devices": static,
                "audit": {"path": str(self.workdir / "audit")},
                "uplink": {
                    "enabled": True,
                    "broker": cell.broker.url,
                    "group_id": GROUP,
                    "edge_node_id": "hil",
                    "reconnect_initial_seconds": 0.1,
                    "reconnect_max_seconds": 0.5,
                    "outbox": {"path": str(self.workdir / "outbox.sqlite")},
                },
            },
            f"rig {self.rig.name}",
            env={},
        )

    async def run(self) -> ScenarioRun:
        run = ScenarioRun(self.scenario, self.rec)
        cell, app = self.cell(), None
        try:
            app = await self.build(cell)
            async with AsyncClient(app.api_address) as client:
                await self._play(client, cell)
        finally:
            for task in self.tasks:
                task.cancel()
            outcomes = await asyncio.gather(*self.tasks, return_exceptions=True)
            failed = [o for o in outcomes if isinstance(o, Exception)]
            if failed:
                run.error = f"recording failed: {type(failed[0]).__name__}: {failed[0]}"
            if self.rec.uplink is not None:
                self.rec.uplink.stop()
            if app is not None:
                await app.stop()
            await cell.close()
        run.results = verdicts(self.rig, self.scenario, self.rec)
        return run

    async def _play(self, client: AsyncClient, cell: Cell) -> None:
        rec, scenario = self.rec, self.scenario
        rec.start, rec.wall_start = time.monotonic(), time.time()  # moved to t = 0 once settled
        rec.uplink = UplinkCounter(cell.broker.port, GROUP, rec)
        rec.uplink.start()
        globs = [f"{self.bridge_id(d.id)}/{d.expect.streaming or '*'}" for d in self.rig.devices]
        self.tasks.append(asyncio.create_task(watch_states(client, rec), name="hil-states"))
        online = await rec.wait_until(
            lambda: all(rec.state_at(d, rec.now()) == "ONLINE" for d in rec.devices), SETTLE_TIMEOUT
        )
        if not online:
            raise RuntimeError(
                f"the cell did not come ONLINE within {SETTLE_TIMEOUT:g} s: {dict(rec.states)}"
            )
        # Subscribed once the devices are ONLINE, so every glob matches their signals.
        self.tasks.append(asyncio.create_task(count_samples(client, rec, globs), name="hil-samples"))
        await wait_settled(rec, SETTLE_TIMEOUT)
        await asyncio.sleep(scenario.settle)
        rec.shift(rec.now())  # t = 0 is now; the settle window is negative time
        steps = [
            asyncio.create_task(self._step(cell, i), name=f"hil-step-{i}") for i in range(len(scenario.steps))
        ]
        probes = [asyncio.create_task(self._probe(client, e)) for e in scenario.expect]
        self.tasks += steps + probes
        await asyncio.sleep(scenario.duration)
        await asyncio.gather(*steps)  # every fault is released by the end (the loader checked the times)

    async def _until(self, t: float) -> None:
        await asyncio.sleep(max(0.0, t - self.rec.now()))

    async def _step(self, cell: Cell, index: int) -> None:
        step = self.scenario.steps[index]
        await self._until(step.at)
        start = self.rec.now()
        await cell.begin(index, step)
        if step.fault is StepKind.MDNS_MOVE:
            await self._follow_move(cell, index, start)
        await self._until(step.end)
        await cell.end(index, step)
        self.rec.faults.append((start, self.rec.now(), step.link, step.fault.value))

    async def _follow_move(self, cell: Cell, index: int, start: float) -> None:
        """Record an mdns_move: the bridge's first connection through the new proxy, the device ONLINE
        after it, and the bytes (device -> bridge) through each proxy until the step ends."""
        step, rec = self.scenario.steps[index], self.rec
        new, old = cell.moved[step.device], cell.links[step.device]
        move = rec.moves[index] = MoveRecord(step.device, start)
        first = next(iter(new.proxies.values()))
        try:
            async with asyncio.timeout(max(0.0, step.end - rec.now())):
                await first.connected.wait()
        except TimeoutError:
            move.new_bytes = _down(new)
            return  # the bridge never came to the new address: `connected` stays None
        assert first.first_connection is not None
        move.connected = first.first_connection - rec.start  # begin() returns only after the announcements
        online = await rec.wait_until(
            lambda: (
                rec.first_state(step.device, move.connected or 0.0, True, ("ONLINE",)) is not None
                and rec.state_at(step.device, rec.now()) == "ONLINE"
            ),
            step.end,
        )
        if not online:  # never ONLINE at the new address: `old_bytes_after` stays None (judged failed)
            move.new_bytes = _down(new)
            return
        old_before = _down(old)
        await self._until(step.end)
        move.new_bytes, move.old_bytes_after = _down(new), _down(old) - old_before

    async def _probe(self, client: AsyncClient, exp: Expectation) -> None:
        if exp.check is Check.FAILS_FAST:
            step = self.scenario.steps[exp.step]
            await self._until(step.at)
            await self.rec.wait_until(
                lambda: self.rec.first_state(exp.device, step.at, False, ("ONLINE",)) is not None, step.end
            )
            await self._command(client, exp.device, probe_command(self._device(exp.device)), exp.within * 3)
        elif exp.check is Check.STOP_LATENCY:
            await self._until(exp.at)
            await self._command(client, exp.device, {"stop": True}, exp.within * 3)

    def _device(self, device_id: str) -> RigDevice:
        return next(d for d in self.rig.devices if d.id == device_id)

    async def _command(
        self, client: AsyncClient, device: str, action: dict[str, Any], timeout: float
    ) -> None:
        record = CommandRecord(device, next(iter(action)), self.rec.now())
        self.rec.commands.append(record)
        try:
            command = await client.execute(self.bridge_id(device), timeout=max(timeout, 1.0), **action)
            record.accepted = self.rec.now()
            await command.wait(timeout=max(timeout, 1.0))
            record.outcome = "SUCCEEDED"
        except ClientError as exc:
            code = exc.code.name if exc.code is not None else ""
            record.outcome = f"{type(exc).__name__} {code}".strip()
        except TimeoutError:
            record.outcome = "TIMEOUT"
        record.ended = self.rec.now()


def _down(link: Link) -> int:
    """Bytes the link's proxies forwarded device -> bridge so far."""
    return sum(p.stats.forwarded["down"] for p in link.proxies.values())


async def run_scenarios(rig: Rig, scenarios: list[Scenario], workdir: Path) -> list[ScenarioRun]:
    """Each scenario on its own freshly built cell, one after the other."""
    runs = []
    for scenario in scenarios:
        loop = asyncio.get_running_loop()
        began = loop.time()
        work = workdir / scenario.name
        work.mkdir(parents=True, exist_ok=True)
        try:
            run = await CellRun(rig, scenario, work).run()
        except (OSError, RuntimeError, ConfigError, ClientError) as exc:
            run = ScenarioRun(
                scenario, Recording([d.id for d in rig.devices]), error=f"{type(exc).__name__}: {exc}"
            )
        run.wall_seconds = loop.time() - began
        runs.append(run)
    return runs


def load_all(rig_path: str | Path, scenario_paths: list[Path]) -> tuple[Rig, list[Scenario]]:
    """The rig and every scenario, all checked before anything starts."""
    rig = load_rig(rig_path)
    catalog = DriverCatalog.from_entry_points()
    preflight(rig_path, rig, catalog)
    scenarios: list[Scenario] = []
    for path in scenario_paths:
        scenarios += load_scenarios(path, rig) if path.is_dir() else [load_scenario(path, rig)]
    for scenario in scenarios:
        for i, device in enumerate(scenario.discovered):
            driver = next(d.driver for d in rig.devices if d.id == device)
            if driver not in ANNOUNCEABLE or not catalog.get(driver).discovery:
                raise ConfigError(
                    f"{scenario.path}: discovered[{i}] ({device}): the runner cannot announce a {driver!r} "
                    f"device over mDNS (it can: {', '.join(ANNOUNCEABLE)})"
                )
    return rig, scenarios


def run(rig_path: str | Path, scenario_paths: list[Path], report_dir: Path | None) -> list[ScenarioRun]:
    """Load, run and (when `report_dir`) write the reports; the runs come back for the exit code."""
    rig, scenarios = load_all(rig_path, scenario_paths)
    return run_loaded(rig, scenarios, report_dir)


def run_loaded(rig: Rig, scenarios: list[Scenario], report_dir: Path | None) -> list[ScenarioRun]:
    """Run checked scenarios and (when `report_dir`) write the reports."""
    with tempfile.TemporaryDirectory(prefix="linebridge-hil-") as tmp:
        runs = asyncio.run(run_scenarios(rig, scenarios, Path(tmp)))
    if report_dir is not None:
        from linebridge.hil.report import write_reports  # noqa: PLC0415

        write_reports(rig, runs, report_dir)
    return runs
