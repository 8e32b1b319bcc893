"""Per-device command policy and rate limits through a real gRPC channel, with the audit records they leave."""

from __future__ import annotations

import grpc
import pytest

from linebridge.api import pb
from linebridge.commands.policy import DevicePolicy, PolicyBook
from linebridge.commands.ratelimit import Bucket, TokenBuckets
from linebridge.model import CommandKind, DeviceState
from tests.conftest import BridgeFactory, sim_device, wait_for_state
from tests.gates_helpers import audit_records, callers, events_of, refusal, stop, write

Code = grpc.StatusCode
SUCCEEDED = pb.command.COMMAND_STATE_SUCCEEDED
ROLES = {"alice": "operator", "bob": "operator", "root": "admin", "val": "viewer"}


async def bridge_with(start_bridge: BridgeFactory, tmp_path, **sections):
    security, meta = callers(tmp_path, ROLES)
    app = await start_bridge(
        [sim_device("sim-1", signals=1, rate_hz=20), sim_device("sim-2", signals=1, rate_hz=20)],
        security=security,
        **sections,
    )
    for device in ("sim-1", "sim-2"):
        await wait_for_state(app, device, DeviceState.ONLINE)
    return app, meta


def echo(device: str) -> pb.command.ExecuteRequest:
    return pb.command.ExecuteRequest(
        device_id=device,
        invoke=pb.command.InvokeAction(method="Echo", args=[pb.common.Value(string_value="hi")]),
    )


async def test_a_role_below_the_device_policy_is_denied_and_nothing_reaches_the_device(
    start_bridge, tmp_path
):
    app, meta = await bridge_with(start_bridge, tmp_path, policies={"sim-1": {"roles": {"write": "admin"}}})
    sim = app.driver_of("sim-1")
    error = await refusal(app, write("sim-1", "setpoint", 42.0), meta["alice"])
    assert error.code() is Code.PERMISSION_DENIED
    assert "[roles.write]" in error.details() and "token:alice (operator)" in error.details()
    assert "policies['sim-1'] allows admin" in error.details()
    assert sim.state["setpoint"] == 0.0  # type: ignore[attr-defined]
    (denied,) = audit_records(app, "command.denied")
    assert denied["category"] == "access_control" and denied["result"] == "failure"
    assert denied["who"] == {
        "name": "token:alice",
        "role": "operator",
        "peer": denied["who"]["peer"],
        "via": "grpc",
    }
    assert denied["who"]["peer"].startswith("ipv4:127.0.0.1:")
    assert denied["what"]["arguments"] == {"writes": [{"path": "setpoint", "value": 42.0}]}
    assert denied["outcome"] == {
        "state": "REJECTED",
        "reason": "PERMISSION_DENIED",
        "message": error.details(),
    }
    # An admin may; sim-2 falls under the default policy, where an operator may.
    assert (await events_of(app, write("sim-1", "setpoint", 42.0), meta["root"]))[-1].state == SUCCEEDED
    assert (await events_of(app, write("sim-2", "setpoint", 7.0), meta["alice"]))[-1].state == SUCCEEDED
    assert sim.state["setpoint"] == 42.0  # type: ignore[attr-defined]


async def test_stop_stays_allowed_for_operators(start_bridge, tmp_path):
    app, meta = await bridge_with(
        start_bridge, tmp_path, policies={"sim-*": {"roles": {"write": "admin", "invoke": "admin"}}}
    )
    assert (await refusal(app, echo("sim-1"), meta["alice"])).code() is Code.PERMISSION_DENIED
    events = await events_of(app, stop("sim-1"), meta["alice"])
    assert events[-1].state == SUCCEEDED and app.driver_of("sim-1").stopped == 1  # type: ignore[attr-defined]
    accepted = audit_records(app, "command.accepted")
    assert [(r["what"]["action"], r["who"]["name"]) for r in accepted] == [("stop", "token:alice")]


async def test_a_viewer_is_denied_before_any_command_exists_and_audited(start_bridge, tmp_path):
    app, meta = await bridge_with(start_bridge, tmp_path)
    error = await refusal(app, write("sim-1", "setpoint", 1.0), meta["val"])
    assert error.code() is Code.PERMISSION_DENIED
    assert app.commands.list("sim-1") == [] and app.driver_of("sim-1").state["setpoint"] == 0.0  # type: ignore[attr-defined]
    (denied,) = audit_records(app, "rpc.denied")
    assert denied["who"]["name"] == "token:val" and denied["who"]["role"] == "viewer"
    assert denied["what"]["method"] == "/linebridge.v1.CommandService/Execute"
    assert denied["outcome"]["reason"] == "PERMISSION_DENIED" and denied["category"] == "access_control"


async def test_the_identity_rate_limit_is_resource_exhausted_per_caller(start_bridge, tmp_path):
    # A refill of 0.01 token/s: the bucket cannot recover within the test, whatever the machine's speed.
    app, meta = await bridge_with(
        start_bridge,
        tmp_path,
        commands={"rate_limits": {"identity": {"rate": 0.01, "burst": 3}, "device": {"rate": 0}}},
    )
    for _ in range(3):
        assert (await events_of(app, echo("sim-1"), meta["alice"]))[-1].state == SUCCEEDED
    for _ in range(3):
        error = await refusal(app, echo("sim-2"), meta["alice"])
        assert error.code() is Code.RESOURCE_EXHAUSTED and "[rate_limits.identity]" in error.details()
    assert (await events_of(app, echo("sim-1"), meta["bob"]))[
        -1
    ].state == SUCCEEDED  # others are not held back
    assert (await events_of(app, stop("sim-1"), meta["alice"]))[-1].state == SUCCEEDED  # a stop never is
    limited = [r for r in audit_records(app, "command.rejected") if r["outcome"]["reason"] == "RATE_LIMITED"]
    # Refusals for the rate are recorded at most once a second per caller; the next record counts the rest.
    assert limited and limited[0]["who"]["name"] == "token:alice" and len(limited) < 3
    assert app.commands.list("sim-2")[0].error_reason == "RATE_LIMITED"


async def test_the_device_rate_limit_holds_back_one_device_only(start_bridge, tmp_path):
    app, meta = await bridge_with(
        start_bridge,
        tmp_path,
        commands={"rate_limits": {"identity": {"rate": 0}, "device": {"rate": 0.01, "burst": 2}}},
    )
    for who in ("alice", "bob"):
        assert (await events_of(app, echo("sim-1"), meta[who]))[-1].state == SUCCEEDED
    error = await refusal(app, echo("sim-1"), meta["root"])
    assert error.code() is Code.RESOURCE_EXHAUSTED and "[rate_limits.device]" in error.details()
    assert "'sim-1'" in error.details()
    assert (await events_of(app, echo("sim-2"), meta["alice"]))[-1].state == SUCCEEDED
    (limited,) = [
        r for r in audit_records(app, "command.rejected") if r["outcome"]["reason"] == "RATE_LIMITED"
    ]
    assert limited["what"]["device"] == "sim-1" and limited["who"]["name"] == "token:root"


def test_token_buckets_refill_at_their_rate():
    now = [0.0]
    buckets = TokenBuckets(Bucket(rate=2.0, burst=2), clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [True, True, False]
    assert buckets.take("b")  # buckets are per key
    now[0] = 0.5  # one token back
    assert [buckets.take("a") for _ in range(2)] == [True, False]
    now[0] = 100.0  # never more than the burst
    assert [buckets.take("a") for _ in range(3)] == [True, True, False]
    assert all(TokenBuckets(Bucket(rate=0, burst=1)).take("x") for _ in range(100))  # rate 0: no limit


def test_the_policy_of_a_device_its_own_then_the_first_glob_then_the_default():
    own, robots, everything = DevicePolicy(roles={"write": "admin"}), DevicePolicy(), DevicePolicy()
    book = PolicyBook({"robot-*": robots, "*": everything}, {"robot-1": own})
    assert book.of("robot-1") == (own, "devices[robot-1].policy")
    assert book.of("robot-2") == (robots, "policies['robot-*']")
    assert book.of("plc-1") == (everything, "policies['*']")
    assert PolicyBook().of("plc-1")[1] == "the default policy"
    classes = DevicePolicy(method_classes={"Start*": "program", "Move*": "motion"})
    assert classes.command_class(CommandKind.INVOKE, "StartProgram") == "program"
    assert classes.command_class(CommandKind.INVOKE, "Echo") == "invoke"
    assert classes.command_class(CommandKind.MOVE_LINEAR) == "motion"


@pytest.mark.parametrize(
    "policy",
    [
        {"roles": {"stop": "admin"}},
        {"motion_enabled": True},
        {"roles": {"write": "superuser"}},
        {"joint_limits": [[1.0, -1.0]]},
    ],
)
def test_unsafe_or_malformed_policies_do_not_load(policy):
    from linebridge.config import parse_config
    from linebridge.errors import ConfigError

    with pytest.raises(ConfigError, match="policies.robot-"):
        parse_config({"policies": {"robot-*": policy}}, "test", env={})
