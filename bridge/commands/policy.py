"""Per-device command policy: which roles may send which command class, and the safety settings.

A device's policy comes from `devices[].policy` when it has one, else from the first entry of the
top-level `policies` map ({device id glob: policy}) that matches its id, else from the defaults, so
devices found through mDNS are covered too. A policy is taken whole; fields do not merge.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from linebridge.configbase import StrictModel
from linebridge.errors import PermissionDenied
from linebridge.model import CommandKind, Identity, Role

CommandClass = Literal["write", "invoke", "motion", "program", "stop"]


def parse_role(value: Any) -> Role:
    """A role from its config spelling ("viewer", "operator", "admin") or a Role."""
    if isinstance(value, Role):
        return value
    if isinstance(value, str) and value.strip().upper() in Role.__members__:
        return Role[value.strip().upper()]
    raise ValueError(f"expected one of viewer, operator, admin, got {value!r}")


# A role in the config file: spelled by name, kept as Role, written back by name.
RoleName = Annotated[
    Role, BeforeValidator(parse_role), PlainSerializer(lambda r: r.name.lower(), return_type=str)
]
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr
# A required signal value: one value, or a list of values any of which will do.
Condition = Scalar | list[Scalar]
Range = tuple[float, float]


class ClassRoles(StrictModel):
    """The lowest role allowed for each command class; higher roles are included (viewer < operator < admin)."""

    write: RoleName = Role.OPERATOR
    invoke: RoleName = Role.OPERATOR
    # Motion also needs motion_enabled on the device.
    motion: RoleName = Role.OPERATOR
    program: RoleName = Role.OPERATOR
    stop: RoleName = Role.OPERATOR

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: Role) -> Role:
        if value > Role.OPERATOR:  # issue 7: Stop is always allowed for operators
            raise ValueError("stop must stay allowed for operators (viewer or operator)")
        return value

    def of(self, command_class: str) -> Role:
        """The lowest role allowed for `command_class`."""
        return getattr(self, command_class)


class Workspace(StrictModel):
    """The box the tool centre point must stay in for move_linear targets: [min, max] per axis, in m."""

    x: Range | None = None
    y: Range | None = None
    z: Range | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Workspace:
        for axis in "xyz":
            bounds = getattr(self, axis)
            if bounds is not None and not bounds[0] < bounds[1]:
                raise ValueError(f"workspace.{axis}: min {bounds[0]} must be below max {bounds[1]}")
        return self


class DevicePolicy(StrictModel):
    """Who may command a device, and when motion and programs are safe to send."""

    roles: ClassRoles = Field(default_factory=ClassRoles)
    motion_enabled: bool = False
    program_enabled: bool = False
    # Signal path -> value the device must report before motion or a program may start, e.g.
    # {"safety/protective_stop": false} (OPC UA robot) or {"safety/mode": 1, "robot/mode": 7} (UR).
    require: dict[str, Condition] = Field(default_factory=dict)
    # Motion/programs without any `require` condition are refused at config load unless this is set.
    allow_without_require: bool = False
    # [min, max] in rad per joint, in joint order; the command must give exactly this many targets.
    joint_limits: list[Range] | None = None
    workspace: Workspace | None = None
    max_joint_speed: float | None = Field(None, gt=0, description="rad/s")
    max_tcp_speed: float | None = Field(None, gt=0, description="m/s")
    # Method name glob -> command class, so that e.g. StartProgram on an OPC UA robot meets the program gates.
    method_classes: dict[str, CommandClass] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> DevicePolicy:
        if (
            (self.motion_enabled or self.program_enabled)
            and not self.require
            and not self.allow_without_require
        ):
            raise ValueError(
                "motion_enabled/program_enabled need `require` conditions (the device's remote/"
                "automatic mode and normal safety state), or allow_without_require: true"
            )
        for index, (low, high) in enumerate(self.joint_limits or (), start=1):
            if not low < high:
                raise ValueError(f"joint_limits[{index}]: min {low} must be below max {high}")
        return self

    def command_class(self, kind: CommandKind, method: str = "") -> str:
        """The class a command belongs to: by kind, or for invoke by `method_classes`."""
        if kind is CommandKind.INVOKE:
            for pattern, cls in self.method_classes.items():
                if fnmatch.fnmatchcase(method, pattern):
                    return cls
        return kind.command_class


class PolicyBook:
    """Finds the policy of a device id: its own, the first matching glob, or the defaults."""

    def __init__(
        self,
        by_glob: Mapping[str, DevicePolicy] | None = None,
        by_device: Mapping[str, DevicePolicy] | None = None,
        default: DevicePolicy | None = None,
    ) -> None:
        self._globs = dict(by_glob or {})
        self._devices = dict(by_device or {})
        self._default = default or DevicePolicy()
        self._cache: dict[str, tuple[DevicePolicy, str]] = {}

    def of(self, device_id: str) -> tuple[DevicePolicy, str]:
        """(policy, where it is configured) for a device; `where` goes into refusal messages."""
        found = self._cache.get(device_id)
        if found is None:
            found = self._find(device_id)
            if len(self._cache) < 10_000:  # ids of unknown devices must not grow this without bound
                self._cache[device_id] = found
        return found

    def _find(self, device_id: str) -> tuple[DevicePolicy, str]:
        if device_id in self._devices:
            return self._devices[device_id], f"devices[{device_id}].policy"
        for pattern, policy in self._globs.items():
            if fnmatch.fnmatchcase(device_id, pattern):
                return policy, f"policies[{pattern!r}]"
        return self._default, "the default policy"


def identity_label(identity: Identity | None) -> str:
    """How a caller is named in messages: "alice (operator)"."""
    if identity is None:
        return "local (admin)"
    return f"{identity.name} ({identity.role.name.lower()})"


def authorize(
    identity: Identity | None, device_id: str, command_class: str, policy: DevicePolicy, where: str
) -> None:
    """PermissionDenied unless the caller's role reaches the policy's role for the class.

    No identity means a caller inside the bridge process (tests, the demo): treated as local admin.
    """
    role = Role.ADMIN if identity is None else identity.role
    needed = policy.roles.of(command_class)
    if role < needed:
        raise PermissionDenied(
            f"{command_class} refused [roles.{command_class}]: {identity_label(identity)} may not send "
            f"{command_class} commands to {device_id!r}; {where} allows {needed.name.lower()} and above"
        )
