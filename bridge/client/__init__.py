"""The Python client SDK of Linebridge: `Client` (blocking) and `AsyncClient` (asyncio).

    from linebridge.client import Client

    with Client("127.0.0.1:50051") as bridge:
        for device in bridge.devices():
            print(device.id, device.state.name)
        for batch in bridge.subscribe(["robot-1/axes/*/actual_position"]):
            frame = batch.to_pandas(wide=True)

See README.md, "Python client".
"""

from linebridge.client._channel import Backoff, tls_credentials
from linebridge.client.aio import AsyncClient, BridgeInfo
from linebridge.client.batch import Batch, Sample
from linebridge.client.catalog import Entry
from linebridge.client.commands import Command, CommandEvent, CommandState, Jog
from linebridge.client.devices import (
    Access,
    Argument,
    Device,
    DeviceEvent,
    DeviceEventType,
    DeviceKind,
    DeviceState,
    Method,
    Quality,
    Signal,
    ValueType,
)
from linebridge.client.errors import (
    BridgeUnavailable,
    Cancelled,
    ClientError,
    CommandCancelled,
    CommandFailed,
    CommandLost,
    CommandNotFound,
    CommandRefused,
    CommandTimedOut,
    DeadlineExceeded,
    DecodeError,
    DeviceError,
    DeviceNotFound,
    DeviceUnavailable,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from linebridge.client.subscription import Notice, NoticeKind, Subscription
from linebridge.client.sync import Client, SyncCommand, SyncJog, SyncSubscription

__all__ = [
    "Access",
    "Argument",
    "AsyncClient",
    "Backoff",
    "Batch",
    "BridgeInfo",
    "BridgeUnavailable",
    "Cancelled",
    "Client",
    "ClientError",
    "Command",
    "CommandCancelled",
    "CommandEvent",
    "CommandFailed",
    "CommandLost",
    "CommandNotFound",
    "CommandRefused",
    "CommandState",
    "CommandTimedOut",
    "DeadlineExceeded",
    "DecodeError",
    "Device",
    "DeviceError",
    "DeviceEvent",
    "DeviceEventType",
    "DeviceKind",
    "DeviceNotFound",
    "DeviceState",
    "DeviceUnavailable",
    "Entry",
    "FailedPrecondition",
    "InvalidArgument",
    "Jog",
    "Method",
    "NotFound",
    "Notice",
    "NoticeKind",
    "PermissionDenied",
    "Quality",
    "ResourceExhausted",
    "Sample",
    "Signal",
    "Subscription",
    "SyncCommand",
    "SyncJog",
    "SyncSubscription",
    "Unauthenticated",
    "Unavailable",
    "ValueType",
    "tls_credentials",
]
