"""`linebridge console --target HOST:PORT [--listen 127.0.0.1:8080]`: serve the web console."""

from __future__ import annotations

import argparse
import asyncio
import os

from pydantic import ValidationError

from linebridge.errors import ConfigError


def add_command(sub: argparse._SubParsersAction, default_target: str) -> None:  # type: ignore[type-arg]
    """The `console` command (its TLS/token flags are the client commands')."""
    from linebridge.cli import security as security_cli

    c = sub.add_parser("console", help="serve the web console for a bridge (http://127.0.0.1:8080)")
    c.add_argument("--target", default=default_target, help="bridge gRPC address (default %(default)s)")
    c.add_argument(
        "--listen",
        default=os.environ.get("LINEBRIDGE_CONSOLE_LISTEN", "127.0.0.1:8080"),
        help="HTTP address (default %(default)s); any other than loopback needs --tls-cert/--tls-key",
    )
    c.add_argument("--tls-cert", default="", help="the console's HTTPS certificate (PEM)")
    c.add_argument("--tls-key", default="", help="the console's HTTPS private key (PEM)")
    security_cli.add_connection_args(c)


def options_of(args: argparse.Namespace) -> object:
    """ConsoleOptions from the command line; a clear ConfigError naming the flag otherwise."""
    from linebridge.console.config import ConsoleOptions

    if bool(args.cert) != bool(args.key):
        raise ConfigError("--cert and --key go together (a client certificate and its private key)")
    try:
        return ConsoleOptions(
            target=args.target,
            listen=args.listen,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            ca=args.ca,
            cert=args.cert,
            key=args.key,
            token=args.token,
        )
    except ValidationError as exc:
        raise ConfigError("\n".join(_flag_error(e) for e in exc.errors())) from None


def _flag_error(error: dict) -> str:  # type: ignore[type-arg]
    """One validation error as "--flag: message" (or "console: message" for one about several flags)."""
    loc = "-".join(str(part) for part in error["loc"]).replace("_", "-")
    return f"{'--' + loc if loc else 'console'}: {error['msg'].removeprefix('Value error, ')}"


async def serve(options: object) -> None:
    """Serve until cancelled; prints the console's URL once it listens."""
    try:
        from linebridge.console.server import ConsoleServer
    except ImportError as exc:
        raise ConfigError(
            f"the web console needs the console extra ({exc.name} is missing): pip install 'linebridge[console]'"
        ) from None

    server = ConsoleServer(options)  # type: ignore[arg-type]
    url = await server.start()
    print(f"console: {url} (bridge {server.options.target})", flush=True)
    try:
        await server.wait()
    finally:
        await server.stop()


def run(args: argparse.Namespace) -> int:
    """Run the console until Ctrl-C."""
    options = options_of(args)
    asyncio.run(serve(options))
    return 0
