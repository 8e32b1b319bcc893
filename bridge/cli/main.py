"""The `linebridge` command: run a bridge, the demo, simulators, and talk to a running bridge."""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib.metadata import entry_points

from linebridge import __version__
from linebridge.cli import alarms as alarms_cli
from linebridge.cli import audit as audit_cli
from linebridge.cli import security as security_cli
from linebridge.cli import uplink_watch
from linebridge.config import load_config
from linebridge.console import cli as console_cli
from linebridge.devices.catalog import DriverCatalog
from linebridge.errors import ConfigError, LinebridgeError
from linebridge.hil import cli as hil_cli
from linebridge.uplink.config import with_broker

DEFAULT_TARGET = "127.0.0.1:50051"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="linebridge", description="Robot and machine integration bridge.")
    p.add_argument("--version", action="version", version=f"linebridge {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a bridge from a config file")
    run.add_argument("-c", "--config", required=True, help="YAML config file")
    run.add_argument(
        "--insecure", action="store_true", help="allow serving a non-loopback address without TLS"
    )
    run.add_argument("--check", action="store_true", help="validate the config and exit")
    run.add_argument(
        "--mqtt", metavar="URL", help="enable the Sparkplug uplink to this broker (mqtt://host:port)"
    )

    demo = sub.add_parser("demo", help="run a bridge with a simulated cell")
    demo.add_argument("--robots", type=int, default=3, help="simulated OPC UA robots (default 3)")
    demo.add_argument("--grpc", default=DEFAULT_TARGET, help="gRPC address (default %(default)s)")
    demo.add_argument("--metrics", default="127.0.0.1:9464", help="metrics address (default %(default)s)")
    demo.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0 = Ctrl-C)")
    demo.add_argument(
        "--rate", type=float, default=100, help="OPC UA simulator update rate in Hz (default 100)"
    )
    demo.add_argument("--no-ur", dest="ur", action="store_false", help="leave out the simulated UR robot")
    demo.add_argument(
        "--agvs", type=int, default=3, help="simulated VDA 5050 AGVs on the broker (default 3; 0 = none)"
    )
    demo.add_argument(
        "--no-plc", dest="plc", action="store_false", help="leave out the simulated Modbus cell PLC"
    )
    demo.add_argument("--seed", type=int, default=1, help="seed of the simulators' randomness (default 1)")
    demo.add_argument(
        "--no-faults",
        dest="faults",
        action="store_false",
        help="healthy simulators (default: robot-1's axis 3 motor drifts, the PLC's infeed starves)",
    )
    demo.add_argument(
        "--mqtt",
        metavar="URL",
        help="Sparkplug uplink broker (mqtt://host:port); without it the demo starts its own mosquitto "
        "when one is installed, else the uplink buffers to disk",
    )
    demo.add_argument(
        "--console",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="serve the web console here (default %(default)s, any free port when taken; 'off' for none)",
    )
    demo.add_argument(
        "--suffix",
        default="",
        help="name the simulators robot-1-SUFFIX etc. (two demos on one machine see each other's mDNS)",
    )

    simp = sub.add_parser("sim", help="run one device simulator", add_help=False)
    simp.add_argument("simulator", help="simulator name: " + ", ".join(sorted(_simulators())))
    simp.add_argument("args", nargs=argparse.REMAINDER)

    def client(name: str, text: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=text)
        c.add_argument("--target", default=DEFAULT_TARGET, help="bridge gRPC address (default %(default)s)")
        security_cli.add_connection_args(c)
        return c

    devices = client("devices", "list devices")
    devices.add_argument("--detail", action="store_true", help="show signals, methods and driver details")
    client("info", "show bridge information")
    uplink = client("uplink", "Industrial Cloud uplink (Sparkplug B over MQTT)")
    uplink.add_argument(
        "action",
        choices=["status", "watch"],
        help="status: connection state, backlog, losses; watch: decode any edge node's traffic on a broker",
    )
    uplink_watch.add_arguments(uplink)
    watch = client("watch", "stream signals (path globs)")
    watch.add_argument("paths", nargs="+")
    watch.add_argument("--count", type=int, default=0, help="stop after this many samples")
    watch.add_argument("--on-change", action="store_true", help="only changed values")
    watch.add_argument("--deadband", type=float, default=0.0)
    watch.add_argument("--interval", type=float, default=0.0, help="sample every N seconds instead")
    read = client("read", "read current values")
    read.add_argument("paths", nargs="+")
    read.add_argument(
        "--from-device", action="store_true", help="ask the device instead of the latest values"
    )
    write = client("write", "write values: DEVICE/SIGNAL=VALUE ...")
    write.add_argument("assignments", nargs="+")
    write.add_argument("--timeout", type=float, default=0.0)
    call = client("call", "call a device method: DEVICE METHOD [ARG ...]")
    call.add_argument("device")
    call.add_argument("method")
    call.add_argument("args", nargs="*")
    call.add_argument("--timeout", type=float, default=0.0)
    stop = client("stop", "send a protective stop request to a device (never a substitute for the e-stop)")
    stop.add_argument("device")
    approve = client("approve", "let a device found through mDNS connect (admin)")
    approve.add_argument("device")
    where = client("where", "where is a load: the AGV carrying it, its position, map and zones")
    where.add_argument("load_id")
    client("fleet", "a table of AGVs: position, load, battery, order progress, errors")
    zones = client("zones", "the configured transport zones: map, name and polygon corners")
    zones.add_argument("--map", default="", help="only the zones of this map id")
    alarms_cli.add_commands(client)
    security_cli.add_commands(sub)
    audit_cli.add_commands(sub)
    console_cli.add_command(sub, DEFAULT_TARGET)
    hil_cli.add_commands(sub)
    return p


def _simulators() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group="linebridge.simulators")}


def _run_simulator(name: str, args: list[str]) -> int:
    sims = _simulators()
    if name not in sims:
        print(
            f"linebridge sim: unknown simulator {name!r} (known: {', '.join(sorted(sims)) or 'none'})",
            file=sys.stderr,
        )
        return 2
    return int(sims[name].load()(args) or 0)  # type: ignore[attr-defined]


def _run(args: argparse.Namespace) -> int:
    from linebridge.cli.runner import run_bridge, setup_logging
    from linebridge.preflight import preflight

    drivers = DriverCatalog.from_entry_points()
    config = load_config(args.config)
    if args.mqtt:
        config.uplink = with_broker(config.uplink, args.mqtt)
    if args.check:  # every start check short of binding ports and connecting to devices
        for warning in preflight(config, drivers, args.insecure, args.config):
            print(f"{args.config}: warning: {warning}")
        print(f"{args.config}: OK ({len(config.devices)} device(s))")
        return 0
    drivers.check(config, args.config)
    setup_logging(config.bridge.log_level)
    asyncio.run(run_bridge(config, drivers, insecure=args.insecure))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the `linebridge` command line; the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sim"] and len(argv) >= 2 and argv[1] not in ("-h", "--help"):
        return _run_simulator(argv[1], argv[2:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "demo":
            from linebridge.cli.demo import run_demo

            return run_demo(args)
        if args.command in ("certs", "token"):
            return security_cli.run(args)
        if args.command == "audit":
            return audit_cli.run(args)
        if args.command == "console":
            return console_cli.run(args)
        if args.command == "sim":
            return _run_simulator(args.simulator, args.args)
        if args.command == "hil":
            return hil_cli.run(args)
        if args.command == "uplink" and args.action == "watch":
            return uplink_watch.run_watch(args)
        from linebridge.cli.remote import run_client

        return asyncio.run(run_client(args))
    except ConfigError as exc:
        print(f"linebridge: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except LinebridgeError as exc:
        print(f"linebridge: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
