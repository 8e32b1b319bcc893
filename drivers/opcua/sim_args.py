"""Command line of the OPC UA robot simulator: name, address, rate, mDNS and the security flags."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from linebridge.drivers.opcua.options import default_state_dir
from linebridge.drivers.opcua.sim_security import ALL_MODES, ALL_POLICIES, SimSecurity


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The simulator's command line, parsed."""
    parser = argparse.ArgumentParser(
        prog="linebridge sim opcua-robot", description="OPC UA (OPC 40010 Robotics) robot simulator"
    )
    parser.add_argument(
        "--name", default="robot-1", help="robot name: mDNS instance and ApplicationUri suffix"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="TCP port, 0 picks a free one")
    parser.add_argument("--rate", type=float, default=100.0, help="joint update rate in Hz")
    parser.add_argument("--no-mdns", action="store_true", help="do not advertise over mDNS")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated sensor noise")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=["motor-drift"],
        help="simulated trouble (repeatable); motor-drift: axis 3 heats 0.05 °C/s from 20 s on",
    )
    secured = parser.add_argument_group("security (any flag but --allow-none serves secured endpoints)")
    secured.add_argument(
        "--security-policy",
        action="append",
        choices=ALL_POLICIES,
        help="offer this policy (repeatable; default: all three when secured)",
    )
    secured.add_argument(
        "--security-mode",
        action="append",
        choices=ALL_MODES,
        help="offer this mode (repeatable; default: Sign and SignAndEncrypt)",
    )
    secured.add_argument(
        "--cert-dir",
        type=Path,
        help="server key+certificate folder, created on first start (default: <state dir>/sim/<name>/pki)",
    )
    secured.add_argument(
        "--user",
        action="append",
        metavar="NAME:PASSWORD",
        help="require this user (repeatable); without --user sessions are anonymous",
    )
    secured.add_argument(
        "--trust-client-dir", type=Path, help="accept only client certificates found in this folder"
    )
    secured.add_argument("--allow-none", action="store_true", help="also offer the unsecured endpoint")
    return parser.parse_args(argv)


def security_from_args(args: argparse.Namespace) -> SimSecurity | None:
    """The SimSecurity the CLI flags ask for, or None when no security flag was given."""
    if not (
        args.security_policy or args.security_mode or args.cert_dir or args.user or args.trust_client_dir
    ):
        return None
    users = {}
    for entry in args.user or []:
        name, sep, password = entry.partition(":")
        if not sep or not name:
            raise ValueError(f"--user takes NAME:PASSWORD, got {entry!r}")
        users[name] = password
    return SimSecurity(
        cert_dir=args.cert_dir or default_state_dir() / "sim" / args.name / "pki",
        policies=tuple(dict.fromkeys(args.security_policy or ALL_POLICIES)),
        modes=tuple(dict.fromkeys(args.security_mode or ALL_MODES)),
        users=users,
        trusted_clients=args.trust_client_dir,
        allow_none=args.allow_none,
    )
