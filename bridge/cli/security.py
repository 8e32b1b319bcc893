"""Security on the command line: `linebridge certs init`, `linebridge token new`, and the client's TLS/token flags."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from linebridge.errors import ConfigError
from linebridge.security.certs import CertDir, init_dir
from linebridge.security.config import ROLE_NAMES
from linebridge.security.tokens import TokenTable, new_token, token_line

if TYPE_CHECKING:
    from linebridge.client import AsyncClient

_CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """--ca/--cert/--key/--token for the client commands (defaults from LINEBRIDGE_CA, _CERT, _KEY, _TOKEN)."""
    env = os.environ.get
    parser.add_argument(
        "--ca", default=env("LINEBRIDGE_CA"), help="CA certificate (PEM) to trust: connect with TLS"
    )
    parser.add_argument(
        "--cert", default=env("LINEBRIDGE_CERT"), help="client certificate (PEM), for mutual TLS"
    )
    parser.add_argument("--key", default=env("LINEBRIDGE_KEY"), help="client certificate's private key (PEM)")
    parser.add_argument(
        "--token",
        default=env("LINEBRIDGE_TOKEN"),
        help="bearer token (better: the LINEBRIDGE_TOKEN environment variable, not in shell history)",
    )


def _read(path: str | None, what: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}") from None


def client_from_args(args: argparse.Namespace) -> AsyncClient:
    """An AsyncClient for --target: TLS when --ca/--cert/--key is given, plaintext otherwise; no retries
    while the bridge is unreachable (a command line says so at once)."""
    from linebridge.client import AsyncClient  # grpc only for the commands that talk to a bridge

    if bool(args.cert) != bool(args.key):
        raise ConfigError("--cert and --key go together (a client certificate and its private key)")
    return AsyncClient(
        args.target,
        ca=_read(args.ca, "--ca"),
        cert=_read(args.cert, "--cert"),
        key=_read(args.key, "--key"),
        token=args.token,
        reconnect_seconds=0,
    )


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The `certs` and `token` commands."""
    certs = sub.add_parser(
        "certs", help="make a CA, a server and client certificates for mutual TLS (lab, rig)"
    )
    certs_sub = certs.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    init = certs_sub.add_parser(
        "init", help="create (or reuse) a CA in DIR and issue server and client certificates"
    )
    init.add_argument("--dir", default="linebridge-certs", help="where the files go (default %(default)s)")
    init.add_argument(
        "--server-name",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name or IP clients dial (repeatable; 127.0.0.1 and localhost are always in)",
    )
    init.add_argument(
        "--client",
        action="append",
        default=[],
        metavar="NAME:ROLE",
        help="a client certificate with CN=NAME and its role viewer|operator|admin "
        "(repeatable; default admin:admin)",
    )
    token = sub.add_parser("token", help="bearer tokens for the gRPC API")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    new = token_sub.add_parser("new", help="make a token; print it once, store only its hash")
    new.add_argument("name", help="the token's name; the identity is token:NAME")
    new.add_argument("--file", help="tokens file to append the hash to (created, mode 0600)")
    new.add_argument("--role", choices=list(ROLE_NAMES), default="viewer", help="role for the config snippet")


def run(args: argparse.Namespace) -> int:
    """Run `certs init` or `token new`; the exit code."""
    return _certs_init(args) if args.command == "certs" else _token_new(args)


def _parse_clients(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items or ["admin:admin"]:
        name, _, role = item.partition(":")
        if not _CLIENT_NAME.match(name) or role not in ROLE_NAMES:
            raise ConfigError(
                f"--client {item!r}: expected NAME:ROLE, NAME of letters, digits, '.', '_', '@', '-' "
                f"and ROLE one of {', '.join(ROLE_NAMES)}"
            )
        out.append((name, role))
    return out


def _certs_init(args: argparse.Namespace) -> int:
    clients = _parse_clients(args.client)
    layout, created = init_dir(Path(args.dir).resolve(), args.server_name, [name for name, _ in clients])
    rows = [
        (
            "CA (new)" if created else "CA (reused)",
            f"{layout.ca[0]}  (keep {layout.ca[1].name} offline if you can)",
        ),
        ("server", str(layout.server[0])),
        *((f"client {n}", f"{layout.client(n)[0]}  ({r})") for n, r in clients),
    ]
    width = max(len(label) for label, _ in rows)
    print("\n".join(f"{label:<{width}}  {text}" for label, text in rows))
    print("\n" + config_snippet(layout, clients))
    name = clients[0][0]
    cert, key = layout.client(name)
    print(
        f"# and talk to it as {name}:\n#   linebridge devices --target 127.0.0.1:50051 --ca {layout.ca[0]} "
        f"--cert {cert} --key {key}"
    )
    return 0


def config_snippet(layout: CertDir, clients: list[tuple[str, str]]) -> str:
    """The `security:` section that serves mutual TLS with these files and maps the clients to roles."""
    lines = [
        "# add to the bridge's config file:",
        "security:",
        "  tls:",
        f"    cert_file: {layout.server[0]}",
        f"    key_file: {layout.server[1]}",
        f"    client_ca_file: {layout.ca[0]}",
        "  identities:",
    ]
    lines += [f'    "cn:{name}": {role}' for name, role in clients]
    return "\n".join(lines)


def _token_new(args: argparse.Namespace) -> int:
    token = new_token()
    line = token_line(args.name, token)
    if args.file:
        path = Path(args.file)
        existing = TokenTable.load(path) if path.exists() else TokenTable(())
        if any(name == args.name for name, _ in existing.entries):
            raise ConfigError(
                f"{path}: a token named {args.name!r} exists; remove its line first to replace it"
            )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(line + "\n")
        print(f"# appended the hash of token:{args.name} to {path}")
    else:
        print(f"# add this line to the tokens file:\n{line}")
    print(f'# map it in the config: security.identities: {{"token:{args.name}": {args.role}}}')
    print(
        "# the token (shown once, the bridge keeps only its hash); give it to the client as LINEBRIDGE_TOKEN:"
    )
    print(token)
    return 0
