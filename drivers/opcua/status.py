"""OPC UA status codes and nodes the driver reads meaning from, and a filter for one asyncua log line."""

from __future__ import annotations

import logging

from asyncua import ua


class _PublishCrashFilter(logging.Filter):
    """Drop asyncua's "Publish iteration crashed" traceback.

    asyncua logs it (with a full traceback, at ERROR) when the server goes away under a running
    subscription. The driver detects the same loss itself and raises Unavailable, and the bridge's
    session logs the failure once; the library's traceback would only scare an operator.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Publish iteration crashed")


# Filters apply only on the logger a record is created on, so attach to the session's own logger.
for _name in ("asyncua.client.ua_session", "asyncua.client.ua_session.UaSession"):
    logging.getLogger(_name).addFilter(_PublishCrashFilter())


# Service results that mean the session or the transport is gone rather than the request refused.
LINK_STATUS = frozenset(
    {
        ua.StatusCodes.BadTimeout,
        ua.StatusCodes.BadSessionIdInvalid,
        ua.StatusCodes.BadSessionClosed,
        ua.StatusCodes.BadSecureChannelClosed,
        ua.StatusCodes.BadConnectionClosed,
        ua.StatusCodes.BadCommunicationError,
        ua.StatusCodes.BadServerNotConnected,
        ua.StatusCodes.BadServerHalted,
        ua.StatusCodes.BadShutdown,
        ua.StatusCodes.BadNoCommunication,
        ua.StatusCodes.BadSecureChannelIdInvalid,
    }
)
SERVER_INFO = (
    ua.ObjectIds.Server_ServerArray,
    ua.ObjectIds.Server_ServerStatus_BuildInfo_ManufacturerName,
    ua.ObjectIds.Server_ServerStatus_BuildInfo_ProductName,
)
