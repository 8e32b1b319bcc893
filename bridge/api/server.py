"""Build the gRPC server: Linebridge services, standard health and reflection, on one address."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from linebridge.api import pb
from linebridge.api.alarms import AlarmService, EfficiencyService
from linebridge.api.auth import Authenticator, server_credentials
from linebridge.api.convert import serialize_update
from linebridge.api.interceptor import AuthInterceptor
from linebridge.api.limits import StreamLimiter, server_options
from linebridge.api.services import ApiParts, BridgeService, CommandService, DeviceService, TelemetryService
from linebridge.api.transport import TransportService
from linebridge.errors import ConfigError

if TYPE_CHECKING:
    from linebridge.config import Config

SERVICE_NAMES = (
    pb.device.DESCRIPTOR.services_by_name["DeviceService"].full_name,
    pb.telemetry.DESCRIPTOR.services_by_name["TelemetryService"].full_name,
    pb.command.DESCRIPTOR.services_by_name["CommandService"].full_name,
    pb.bridge.DESCRIPTOR.services_by_name["BridgeService"].full_name,
    pb.transport.DESCRIPTOR.services_by_name["TransportService"].full_name,
    pb.alarm.DESCRIPTOR.services_by_name["AlarmService"].full_name,
    pb.alarm.DESCRIPTOR.services_by_name["EfficiencyService"].full_name,
)


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback name or address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(
    address: str, insecure: bool, tls: bool = False, authentication: bool = False
) -> list[str]:
    """Refuse a non-loopback address without TLS and authentication unless insecure; return the warnings."""
    host = address.rpartition(":")[0]
    if is_loopback(host) or (tls and authentication):
        return []
    missing = (
        "TLS" if not tls else "client authentication (security.tls.client_ca_file or security.tokens_file)"
    )
    if not insecure:
        raise ConfigError(
            f"refusing to serve the gRPC API on {address} without {missing}: anyone on that network "
            "could command devices. Bind 127.0.0.1, configure security.tls (see `linebridge certs "
            "init`), or pass --insecure (grpc.insecure: true) to accept the risk"
        )
    if authentication:
        return [
            f"gRPC API served on {address} without TLS (--insecure): credentials and commands cross the "
            "network in clear text"
        ]
    return [
        f"gRPC API served on {address} without {missing} (--insecure): any host that reaches it can command "
        "devices"
    ]


def add_telemetry_service(servicer: TelemetryService, server: grpc.aio.Server) -> None:
    """Register TelemetryService by hand: Subscribe's serializer lets pre-encoded batches through."""
    handlers = {
        "Subscribe": grpc.unary_stream_rpc_method_handler(
            servicer.Subscribe,
            request_deserializer=pb.telemetry.SubscribeRequest.FromString,
            response_serializer=serialize_update,
        ),
        "Read": grpc.unary_unary_rpc_method_handler(
            servicer.Read,
            request_deserializer=pb.telemetry.ReadRequest.FromString,
            response_serializer=pb.telemetry.ReadResponse.SerializeToString,
        ),
    }
    name = pb.telemetry.DESCRIPTOR.services_by_name["TelemetryService"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))


class ApiServer:
    """The gRPC server (TLS when configured, every call through the auth interceptor) and its health servicer."""

    def __init__(self, parts: ApiParts, config: Config) -> None:
        self.address = config.grpc.address
        self.credentials = server_credentials(config.security.tls, config.base_dir)
        self.limiter = StreamLimiter(config.grpc.limits)
        # Set `auth.on_denied` to see every refused call (the audit log does).
        self.auth = AuthInterceptor(Authenticator(config.security, config.base_dir), self.limiter)
        self.server = grpc.aio.server(
            interceptors=[self.auth],
            options=server_options(config.grpc.limits, config.grpc.max_receive_message_bytes),
        )
        pb.device_grpc.add_DeviceServiceServicer_to_server(DeviceService(parts.registry), self.server)
        add_telemetry_service(
            TelemetryService(
                parts.bus,
                parts.devices,
                config.telemetry.max_message_bytes,
                config.telemetry.max_value_bytes,
            ),
            self.server,
        )
        pb.command_grpc.add_CommandServiceServicer_to_server(CommandService(parts.commands), self.server)
        pb.bridge_grpc.add_BridgeServiceServicer_to_server(BridgeService(parts), self.server)
        if parts.transport is not None:
            pb.transport_grpc.add_TransportServiceServicer_to_server(
                TransportService(parts.transport), self.server
            )
        if parts.alarms is not None and parts.analytics is not None:
            pb.alarm_grpc.add_AlarmServiceServicer_to_server(AlarmService(parts.alarms), self.server)
            pb.alarm_grpc.add_EfficiencyServiceServicer_to_server(
                EfficiencyService(parts.analytics), self.server
            )
        self.health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (
                *SERVICE_NAMES,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self.server,
        )
        self.port = 0

    async def start(self) -> int:
        """Bind the address and start serving; the port bound."""
        try:
            if self.credentials is None:
                self.port = self.server.add_insecure_port(self.address)
            else:
                self.port = self.server.add_secure_port(self.address, self.credentials)
        except RuntimeError:
            self.port = 0
        if not self.port:
            raise ConfigError(f"cannot bind the gRPC API to {self.address} (address in use or not local?)")
        await self.server.start()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def stop(self, grace: float) -> None:
        """Report NOT_SERVING, then stop, letting running calls finish within `grace` seconds."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
