"""`python -m linebridge.cli.healthcheck [HOST:PORT]`: exit 0 when the bridge's gRPC health says SERVING.

For a TLS bridge set LINEBRIDGE_CA (and LINEBRIDGE_CERT, LINEBRIDGE_KEY for mutual TLS), as for the CLI;
the health service itself needs no role.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def credentials_from_env() -> grpc.ChannelCredentials | None:
    """TLS credentials from LINEBRIDGE_CA / _CERT / _KEY; None when LINEBRIDGE_CA is not set."""
    ca, cert, key = (os.environ.get(f"LINEBRIDGE_{n}") for n in ("CA", "CERT", "KEY"))
    if not ca:
        return None
    return grpc.ssl_channel_credentials(
        Path(ca).read_bytes(),
        Path(key).read_bytes() if key else None,
        Path(cert).read_bytes() if cert else None,
    )


def check(target: str, timeout: float = 3.0, credentials: grpc.ChannelCredentials | None = None) -> bool:
    """Whether the bridge at `target` answers SERVING to a gRPC health check."""
    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError as exc:
            print(f"unhealthy: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def main(argv: list[str] | None = None) -> int:
    """Exit code of the health check: 0 SERVING, 1 otherwise."""
    args = sys.argv[1:] if argv is None else argv
    return 0 if check(args[0] if args else "127.0.0.1:50051", credentials=credentials_from_env()) else 1


if __name__ == "__main__":
    sys.exit(main())
