"""Short names for the generated protobuf modules."""

from linebridge.api.gen.linebridge.v1 import alarm_pb2 as alarm
from linebridge.api.gen.linebridge.v1 import alarm_pb2_grpc as alarm_grpc
from linebridge.api.gen.linebridge.v1 import bridge_pb2 as bridge
from linebridge.api.gen.linebridge.v1 import bridge_pb2_grpc as bridge_grpc
from linebridge.api.gen.linebridge.v1 import command_pb2 as command
from linebridge.api.gen.linebridge.v1 import command_pb2_grpc as command_grpc
from linebridge.api.gen.linebridge.v1 import common_pb2 as common
from linebridge.api.gen.linebridge.v1 import device_pb2 as device
from linebridge.api.gen.linebridge.v1 import device_pb2_grpc as device_grpc
from linebridge.api.gen.linebridge.v1 import telemetry_pb2 as telemetry
from linebridge.api.gen.linebridge.v1 import telemetry_pb2_grpc as telemetry_grpc
from linebridge.api.gen.linebridge.v1 import transport_pb2 as transport
from linebridge.api.gen.linebridge.v1 import transport_pb2_grpc as transport_grpc

__all__ = [
    "alarm",
    "alarm_grpc",
    "bridge",
    "bridge_grpc",
    "command",
    "command_grpc",
    "common",
    "device",
    "device_grpc",
    "telemetry",
    "telemetry_grpc",
    "transport",
    "transport_grpc",
]
