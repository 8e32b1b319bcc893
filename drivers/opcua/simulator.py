"""OPC UA robot simulator: an asyncua server shaped like OPC 40010 (Robotics), moving a six-axis arm.

Run it with `linebridge sim opcua-robot --name robot-1 --port 0` (or `python -m linebridge.drivers.opcua.simulator`);
it prints `READY opc.tcp://127.0.0.1:<port>/` once it serves and stops cleanly on SIGINT/SIGTERM.

Secured: `--security-policy P` / `--security-mode M` (repeatable; every policy x mode given is offered,
default all three policies in Sign and SignAndEncrypt), `--cert-dir DIR` (its key+certificate, created on
first start; the SHA-256 thumbprint is printed to stderr), `--user NAME:PASSWORD` (repeatable; requires
a user instead of anonymous sessions), `--trust-client-dir DIR` (accept only those client certificates),
`--allow-none` (keep the unsecured endpoint too). In process: `RobotSimulator(security=SimSecurity(...))`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import sys
from datetime import UTC, datetime

from asyncua import Server, ua

from linebridge.drivers.mdns import Advertiser
from linebridge.drivers.opcua.certs import CertificateFiles
from linebridge.drivers.opcua.robot_model import AXIS_COUNT, HI_LIMIT_C, RobotFaults, RobotModel
from linebridge.drivers.opcua.sim_args import parse_args, security_from_args
from linebridge.drivers.opcua.sim_conditions import SimConditions
from linebridge.drivers.opcua.sim_nodes import SIM_NS, NodeTree, variable_specs
from linebridge.drivers.opcua.sim_security import (
    SimSecurity,
    SimUserManager,
    secure_server,
)
from linebridge.drivers.simkit import serve_until_signalled

SERVICE_TYPE = "_opcua-tcp._tcp.local."
# OPC 10000-12 Annex D capability identifiers: current data (DA), Device Integration model (DI).
CAPABILITIES = "DA,DI"
PRODUCT_URI = "urn:linebridge:sim:opcua-robot"
log = logging.getLogger(__name__)
_TEMPERATURE_HZ = 10.0  # motor temperatures move slowly; publishing them at the joint rate only costs CPU


class _TickValue(ua.DataValue):
    """A DataValue the simulator never mutates after writing it.

    asyncua deep-copies every written DataValue once per monitored item (MonitoredItemValues); for
    these immutable-by-convention values sharing is safe, and that copy was most of the simulator's CPU.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, object]) -> _TickValue:
        return self


class RobotSimulator:
    """One simulated robot served over OPC UA; `await start()`, `await stop()`, restartable on its port."""

    def __init__(
        self,
        name: str = "robot-1",
        host: str = "127.0.0.1",
        port: int = 0,
        rate_hz: float = 100.0,
        advertise: bool = False,
        security: SimSecurity | None = None,
        faults: RobotFaults | None = None,
    ) -> None:
        if rate_hz <= 0:
            raise ValueError("rate_hz must be positive")
        self.name = name
        self.host = host
        self.port = port
        self.rate_hz = rate_hz
        self.advertise = advertise
        self.security = security
        self.certificate: CertificateFiles | None = None  # the server certificate, once started secured
        self.users: SimUserManager | None = None  # every login attempt, once started secured
        self.faults = faults or RobotFaults()
        self.model = RobotModel(self.faults)
        self.conditions = SimConditions()
        self._server: Server | None = None
        self._tree: NodeTree | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._advertiser: Advertiser | None = None
        self._published: dict[str, object] = {}
        self._started_at = datetime.now(UTC)
        self._vtypes = {s.key: s.vtype for s in variable_specs("", self._started_at)}

    @property
    def application_uri(self) -> str:
        """urn:linebridge:sim:opcua-robot:<name>, the device's stable identity."""
        return f"{PRODUCT_URI}:{self.name}"

    @property
    def endpoint(self) -> str:
        """opc.tcp://<host>:<port>/ (the bound port once started)."""
        return f"opc.tcp://{self.host}:{self.port}/"

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._tick_task is not None

    def node_id(self, key: str) -> ua.NodeId:
        """The NodeId of a variable or method by its key in sim_nodes (e.g. "position_1")."""
        assert self._tree is not None, "start() first"
        return self._tree.node_ids[key]

    async def start(self) -> None:
        """Build the address space (first start only), listen, start moving and advertise."""
        if self._tick_task is not None:
            return
        server = self._server or await self._create_server()
        # A restart re-runs endpoint setup; drop the previous run's copies so GetEndpoints stays clean.
        server.iserver.endpoints.clear()
        server._policies.clear()  # asyncua appends the security policies again on every start()
        server.set_endpoint(self.endpoint)
        await server.start()
        assert server.bserver is not None
        self.port = server.bserver.port
        for description in server.iserver.endpoints:
            description.EndpointUrl = self.endpoint  # port 0 was requested: advertise the bound port
        self._published.clear()
        await self._sync_state()
        self._tick_task = asyncio.create_task(self._run(), name=f"opcua-sim-{self.name}")
        if self.advertise:
            self._advertiser = Advertiser(
                SERVICE_TYPE, self.name, self.port, {"path": "/", "caps": CAPABILITIES}, host=self.host
            )
            await self._advertiser.start()

    async def stop(self) -> None:
        """Stop advertising, moving and serving; the address space is kept for a restart."""
        task, self._tick_task = self._tick_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        advertiser, self._advertiser = self._advertiser, None
        if advertiser is not None:
            await advertiser.stop()
        if task is not None and self._server is not None:
            await self._server.stop()

    async def _create_server(self) -> Server:
        server = Server()
        await server.init()  # ~1 s: asyncua loads the standard address space in a thread
        server.set_server_name(self.name)
        await server.set_application_uri(self.application_uri)
        await server.set_build_info(
            PRODUCT_URI, "Linebridge", "Linebridge OPC UA robot simulator", "1.0", "1", self._started_at
        )
        if self.security is None:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            server.set_identity_tokens([ua.AnonymousIdentityToken])
        else:
            self.certificate, self.users = await secure_server(
                server, self.security, self.application_uri, self.name, self.host
            )
        # asyncua's clock task sleeps 1 s between updates and stop() waits for it; the tick loop
        # keeps ServerStatus/CurrentTime fresh instead, so stop() is immediate.
        server.disable_clock()
        tree = NodeTree(server)
        await tree.build(
            f"SIM-{self.name}",
            self._started_at,
            {
                "start_program": self._start_program,
                "stop_program": self._stop_program,
                "move_to_home": self._move_to_home,
                "reset_protective_stop": self._reset_protective_stop,
            },
        )
        await self.conditions.build(
            server,
            server.nodes.objects.nodeid,
            tree.namespace(SIM_NS),
            [
                ("MotorOverTemperature", 700, f"Motor above {HI_LIMIT_C:g} °C"),
                ("ProtectiveStop", 800, "Protective stop"),
            ],
        )
        self._server, self._tree = server, tree
        return server

    # -- helpers for tests and demos --------------------------------------------------------------

    async def reset(self) -> None:
        """Back to the power-on state: demo program running, no stops, writable variables at defaults."""
        self.model = RobotModel(self.faults)
        for spec in variable_specs(f"SIM-{self.name}", self._started_at):
            if spec.writable:
                await self.set_value(spec.key, spec.initial)
        self._published.clear()
        await self._sync_state()

    async def trigger_protective_stop(self) -> None:
        """Latch a protective stop as if a safety sensor tripped."""
        self.model.trigger_protective_stop()
        await self._sync_state()

    async def set_emergency_stop(self, pressed: bool) -> None:
        """Press or release the emergency stop."""
        self.model.set_emergency_stop(pressed)
        await self._sync_state()

    async def set_value(self, key: str, value: object, status: int = ua.StatusCodes.Good) -> None:
        """Write a variable by key, optionally with a (bad) status code, as the device would."""
        assert self._server is not None, "start() first"
        # Part 4 §7.7.1: a Bad value carries no value (a null Variant).
        variant = ua.Variant() if ua.StatusCode(status).is_bad() else ua.Variant(value, self._vtypes[key])
        now = datetime.now(UTC)
        await self._server.write_attribute_value(
            self.node_id(key),
            ua.DataValue(variant, StatusCode=ua.StatusCode(status), SourceTimestamp=now, ServerTimestamp=now),
        )

    def read_value(self, key: str) -> object:
        """The current value of a variable by key."""
        assert self._server is not None, "start() first"
        data = self._server.read_attribute_value(self.node_id(key))
        return None if data.Value is None else data.Value.Value

    # -- motion loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        """Step the model and publish until cancelled; a crash is logged, not lost in the task."""
        try:
            await self._tick_forever()
        except Exception:
            log.exception("simulator %s: motion loop crashed", self.name)
            raise

    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.rate_hz
        temperature_every = max(1, round(self.rate_hz / _TEMPERATURE_HZ))
        clock_every = max(1, round(self.rate_hz))
        deadline = loop.time()
        for tick in itertools.count():
            deadline += period
            delay = deadline - loop.time()
            if delay < -10 * period:
                deadline = loop.time()  # far behind (loaded machine): resync instead of bursting
            await asyncio.sleep(max(delay, 0.0))
            override = self.read_value("speed_override")
            self.model.step(period, override if isinstance(override, float) else 100.0)
            await self._publish_motion(tick % temperature_every == 0)
            await self._sync_state()
            if tick % clock_every == 0:
                await self._publish_clock()

    async def _publish_motion(self, with_temperatures: bool) -> None:
        assert self._server is not None and self._tree is not None
        now = datetime.now(UTC)
        ids = self._tree.node_ids
        # asyncua has no server-side batch write: each write is a dict update plus monitored-item
        # callbacks, so the loop below is the batch.
        columns = [("position_", self.model.positions), ("speed_", self.model.speeds)]
        if with_temperatures:
            columns.append(("temperature_", self.model.temperatures))
        write = self._server.write_attribute_value
        for prefix, values in columns:
            for axis in range(AXIS_COUNT):
                data = _TickValue(
                    ua.Variant(values[axis], ua.VariantType.Double), SourceTimestamp=now, ServerTimestamp=now
                )
                await write(ids[f"{prefix}{axis + 1}"], data)

    async def _publish_clock(self) -> None:
        assert self._server is not None
        now = datetime.now(UTC)
        await self._server.write_attribute_value(
            ua.NodeId(ua.ObjectIds.Server_ServerStatus_CurrentTime),
            ua.DataValue(ua.Variant(now, ua.VariantType.DateTime), SourceTimestamp=now, ServerTimestamp=now),
        )
        elapsed_ms = (now - self._started_at).total_seconds() * 1000.0
        await self.set_value("power_on_time", elapsed_ms)

    async def _sync_state(self) -> None:
        """Publish the discrete state that changed since the last call."""
        model = self.model
        running = model.program_state.value == "Running"
        state = {
            "program_state": model.program_state.value,
            "program_name": model.program_name,
            "emergency_stop": model.emergency_stop,
            "protective_stop": model.protective_stop,
            "operational_mode": model.operational_mode.value,
            "on_path": running or model.homing,
            "in_control": not model.safety_stopped,
        }
        for key, value in state.items():
            if self._published.get(key) != value:
                self._published[key] = value
                await self.set_value(key, value)
        if self.conditions.conditions:
            await self.conditions.set("ProtectiveStop", model.protective_stop)
            await self.conditions.set("MotorOverTemperature", model.over_temperature)

    # -- OPC UA methods (callbacks get the object NodeId and the input Variants) -------------------

    async def _start_program(self, _parent: ua.NodeId, *args: ua.Variant) -> list[ua.Variant] | ua.StatusCode:
        if len(args) != 1 or args[0].VariantType not in (ua.VariantType.String, ua.VariantType.Null):
            return ua.StatusCode(ua.StatusCodes.BadInvalidArgument)
        name = args[0].Value or str(self.read_value("program_name") or "")
        if args[0].Value:
            self.model.program_name = name  # the requested program is loaded even if it cannot start
        started = self.model.start_program(name)
        await self._sync_state()
        return [ua.Variant(started, ua.VariantType.Boolean)]

    async def _stop_program(self, _parent: ua.NodeId, *args: ua.Variant) -> list[ua.Variant] | ua.StatusCode:
        if args:
            return ua.StatusCode(ua.StatusCodes.BadTooManyArguments)
        self.model.stop_program()
        await self._sync_state()
        return []

    async def _move_to_home(self, _parent: ua.NodeId, *args: ua.Variant) -> list[ua.Variant] | ua.StatusCode:
        if args:
            return ua.StatusCode(ua.StatusCodes.BadTooManyArguments)
        if not self.model.move_to_home():
            return ua.StatusCode(ua.StatusCodes.BadInvalidState)
        await self._sync_state()
        return []

    async def _reset_protective_stop(
        self, _parent: ua.NodeId, *args: ua.Variant
    ) -> list[ua.Variant] | ua.StatusCode:
        if args:
            return ua.StatusCode(ua.StatusCodes.BadTooManyArguments)
        self.model.reset_protective_stop()
        await self._sync_state()
        return []


async def _serve(args: argparse.Namespace, security: SimSecurity | None) -> int:
    sim = RobotSimulator(
        args.name,
        args.host,
        args.port,
        args.rate,
        advertise=not args.no_mdns,
        security=security,
        faults=RobotFaults(seed=args.seed, motor_drift="motor-drift" in args.fault),
    )

    def announce_certificate() -> None:
        if sim.certificate is not None:  # stderr: stdout carries only the READY line
            print(
                f"server certificate {sim.certificate.cert_path} (SHA-256 {sim.certificate.thumbprint})",
                file=sys.stderr,
                flush=True,
            )

    return await serve_until_signalled(sim, "opcua-robot", announce_certificate)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: serve one simulated robot until SIGINT/SIGTERM."""
    args = parse_args(argv)
    try:
        security = security_from_args(args)
    except ValueError as exc:
        print(f"linebridge sim opcua-robot: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.ERROR)  # it warns about unused security policies
    return asyncio.run(_serve(args, security))


if __name__ == "__main__":
    sys.exit(main())
