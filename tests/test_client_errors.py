"""The client SDK's typed exceptions (one per status code) and its reconnects after a bridge restart."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from linebridge.app import BridgeApp
from linebridge.client import (
    AsyncClient,
    BridgeUnavailable,
    ClientError,
    CommandNotFound,
    CommandRefused,
    DeviceEventType,
    DeviceNotFound,
    DeviceUnavailable,
    InvalidArgument,
    NoticeKind,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from linebridge.client import errors as client_errors
from linebridge.errors import NotFound as DomainNotFound
from linebridge.model import DeviceState
from tests.conftest import free_port, make_config, sim_device, wait_for_state
from tests.security_helpers import write_tokens


class _Failed(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "details", "expected"),
    [
        (grpc.StatusCode.NOT_FOUND, "unknown device 'x'", client_errors.DeviceNotFound),
        (grpc.StatusCode.NOT_FOUND, "unknown command 'c'", client_errors.CommandNotFound),
        (grpc.StatusCode.NOT_FOUND, "device 'a' has no signal 'b'", client_errors.NotFound),
        (grpc.StatusCode.INVALID_ARGUMENT, "bad glob", client_errors.InvalidArgument),
        (
            grpc.StatusCode.FAILED_PRECONDITION,
            "motion refused [motion_enabled]: off",
            client_errors.CommandRefused,
        ),
        (grpc.StatusCode.FAILED_PRECONDITION, "command c already ended", client_errors.FailedPrecondition),
        (grpc.StatusCode.UNAVAILABLE, "device 'd' is offline", client_errors.DeviceUnavailable),
        (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", client_errors.BridgeUnavailable),
        (grpc.StatusCode.PERMISSION_DENIED, "viewer may not", client_errors.PermissionDenied),
        (grpc.StatusCode.UNAUTHENTICATED, "no token", client_errors.Unauthenticated),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "rate", client_errors.ResourceExhausted),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "late", client_errors.DeadlineExceeded),
        (grpc.StatusCode.ABORTED, "device said no", client_errors.DeviceError),
        (grpc.StatusCode.CANCELLED, "cancelled", client_errors.Cancelled),
        (grpc.StatusCode.INTERNAL, "boom", client_errors.ClientError),
    ],
)
def test_each_status_code_maps_to_its_exception(code, details, expected):
    error = client_errors.from_rpc_error(_Failed(code, details))
    assert (
        type(error) is expected and error.code is code and error.message == details and str(error) == details
    )


def test_refusals_name_the_gate():
    error = client_errors.from_rpc_error(
        _Failed(grpc.StatusCode.FAILED_PRECONDITION, "motion refused [require mode]: not remote (policies.x)")
    )
    assert isinstance(error, CommandRefused) and error.gate == "require mode"


async def test_typed_exceptions_from_a_real_bridge(start_bridge, tmp_path):
    tokens = write_tokens(tmp_path / "tokens", ["viewer", "operator"])
    app = await start_bridge(
        [sim_device("err-1", signals=1, rate_hz=20), sim_device("down-1", fail_connect=True)],
        security={
            "tokens_file": str(tmp_path / "tokens"),
            "identities": {"token:viewer": "viewer", "token:operator": "operator"},
        },
        grpc={"limits": {"max_paths_per_subscription": 2}},
    )
    await wait_for_state(app, "err-1", DeviceState.ONLINE)
    await wait_for_state(app, "down-1", DeviceState.OFFLINE)
    async with (
        AsyncClient(app.api_address, token=tokens["operator"]) as operator,
        AsyncClient(app.api_address, token=tokens["viewer"]) as viewer,
        AsyncClient(app.api_address, token="not-a-token") as stranger,
    ):
        with pytest.raises(DeviceNotFound, match="ghost") as info:
            await operator.execute("ghost", stop=True)
        assert isinstance(info.value, DomainNotFound)  # the domain error catches it too
        with pytest.raises(CommandNotFound):
            await operator.command("cmd-nope")
        with pytest.raises(InvalidArgument):
            await operator.execute("err-1", write={"enabled": 1.5})
        with pytest.raises(CommandRefused, match="does not support"):
            await operator.execute("err-1", move_joints=[0.1] * 6)
        with pytest.raises(DeviceUnavailable, match="down-1"):
            await operator.execute("down-1", stop=True)
        with pytest.raises(PermissionDenied):
            await viewer.execute("err-1", stop=True)
        with pytest.raises(Unauthenticated):
            await stranger.devices()
        with pytest.raises(ResourceExhausted):
            async for _ in viewer.subscribe(["err-1/a", "err-1/b", "err-1/c"]):
                pass
        with pytest.raises(InvalidArgument):
            await operator.execute("err-1", stop=True, invoke="Echo")  # two actions: refused before sending


async def test_unreachable_bridge_is_bridge_unavailable():
    async with AsyncClient(f"127.0.0.1:{free_port()}", reconnect_seconds=0.3) as client:
        with pytest.raises(BridgeUnavailable):
            await client.devices()


async def _bridge_on(port: int, catalog) -> BridgeApp:
    config = make_config([sim_device("re-1", signals=2, rate_hz=100)], grpc={"address": f"127.0.0.1:{port}"})
    app = BridgeApp(config, catalog)
    await app.start()
    await wait_for_state(app, "re-1", DeviceState.ONLINE)
    return app


async def test_reconnect_after_a_bridge_restart(catalog):
    port = free_port()
    app = await _bridge_on(port, catalog)
    notices = []
    try:
        async with AsyncClient(f"127.0.0.1:{port}", reconnect_seconds=20) as client:
            subscription = client.subscribe(["re-1/values/*"], on_notice=notices.append)
            stream = aiter(subscription)
            assert len(await anext(stream)) > 0
            command = await client.execute("re-1", invoke="Slow", args=[5.0])
            watch = client.watch_devices(include_existing=True)
            assert (await anext(watch)).device.id == "re-1"
            await app.stop()
            app = await _bridge_on(port, catalog)  # same port, a new bridge: new aliases, no commands
            async with asyncio.timeout(20):  # batches buffered before the stop come first
                while subscription.reconnects == 0:
                    await anext(stream)
                batch = await anext(stream)
            assert set(batch.paths.tolist()) <= {"re-1/values/0", "re-1/values/1"} and len(batch) > 0
            kinds = [n.kind for n in notices]
            assert kinds.index(NoticeKind.DISCONNECTED) < kinds.index(NoticeKind.RECONNECTED)
            after = kinds[kinds.index(NoticeKind.RECONNECTED) + 1 :]
            assert after[0] is NoticeKind.CATALOG and subscription.reconnects == 1
            assert [d.id for d in await client.devices()] == ["re-1"]  # unary calls work again
            with pytest.raises(ClientError, match="no longer knows"):
                await command.wait(timeout=20)
            async with asyncio.timeout(20):  # the watch resumed on the new bridge: its devices come as ADDED
                while (event := await anext(watch)).type is not DeviceEventType.ADDED:
                    pass
            assert event.device.id == "re-1" and event.device.state is not None
            await watch.aclose()
            await stream.aclose()
    finally:
        await app.stop()
