"""UR driver options (pydantic) and the `ur://host?rtde=..&dashboard=..&secondary=..` endpoint."""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, model_validator

from linebridge.drivers.base import DiscoveredDevice, DriverOptions, InvalidArgument, MdnsService

RTDE_PORT, DASHBOARD_PORT, SECONDARY_PORT = 30004, 29999, 30002
_TWO_PI = 2 * math.pi
Range = tuple[float, float]


class UrOptions(DriverOptions):
    """Options of one UR robot. Units are SI: rad, rad/s, m, m/s, s."""

    rtde_port: int = Field(RTDE_PORT, ge=1, le=65535)
    dashboard_port: int = Field(DASHBOARD_PORT, ge=1, le=65535)
    secondary_port: int = Field(SECONDARY_PORT, ge=1, le=65535)
    timeout: float = Field(5.0, gt=0, description="connect and reply timeout")
    # RTDE output rate: 500 Hz on e-Series, at most 125 Hz on CB-series; lower rates are fine.
    frequency: float = Field(500.0, gt=0, le=500)
    batch_window: float = Field(
        0.004, gt=0, le=1.0, description="max age of a packet before its batch is published"
    )
    batch_max_packets: int = Field(10, ge=1, le=1000)
    late_threshold: float = Field(
        0.05, gt=0, description="delay beyond the best seen that counts a packet as late"
    )
    dashboard_poll_interval: float = Field(1.0, gt=0)

    motion_enabled: bool = False
    joint_limits: tuple[Range, Range, Range, Range, Range, Range] = ((-_TWO_PI, _TWO_PI),) * 6
    max_joint_speed: float = Field(1.0, gt=0)
    max_joint_acceleration: float = Field(2.0, gt=0)
    max_tcp_speed: float = Field(0.25, gt=0)
    max_tcp_acceleration: float = Field(1.5, gt=0)
    default_joint_speed: float = Field(0.5, gt=0, description="used when a command gives speed 0")
    default_joint_acceleration: float = Field(1.0, gt=0)
    default_tcp_speed: float = Field(0.1, gt=0)
    default_tcp_acceleration: float = Field(0.5, gt=0)
    workspace: tuple[Range, Range, Range] | None = Field(
        None, description="x, y, z [min, max] in m for move_linear"
    )
    joint_tolerance: float = Field(0.005, gt=0)
    position_tolerance: float = Field(0.001, gt=0)
    orientation_tolerance: float = Field(0.01, gt=0)
    monitor_frequency: float = Field(125.0, gt=0, le=500)
    motion_start_timeout: float = Field(2.0, gt=0, description="time for the controller to start a motion")
    program_start_timeout: float = Field(
        10.0, gt=0, description="time for a played program to report running"
    )

    @model_validator(mode="after")
    def _check(self) -> UrOptions:
        for index, (low, high) in enumerate(self.joint_limits, start=1):
            if not low < high:
                raise ValueError(f"joint_limits[{index}]: min {low} must be below max {high}")
        for index, (low, high) in enumerate(self.workspace or ()):
            if not low < high:
                raise ValueError(f"workspace[{'xyz'[index]}]: min {low} must be below max {high}")
        for default, limit in (
            ("default_joint_speed", "max_joint_speed"),
            ("default_joint_acceleration", "max_joint_acceleration"),
            ("default_tcp_speed", "max_tcp_speed"),
            ("default_tcp_acceleration", "max_tcp_acceleration"),
        ):
            if getattr(self, default) > getattr(self, limit):
                raise ValueError(f"{default} {getattr(self, default)} exceeds {limit} {getattr(self, limit)}")
        return self


@dataclass(frozen=True, slots=True)
class UrAddress:
    """Where the robot's three interfaces listen."""

    host: str
    rtde_port: int
    dashboard_port: int
    secondary_port: int

    def endpoint(self) -> str:
        """The canonical endpoint URL with every port spelled out."""
        return (
            f"ur://{self.host}?rtde={self.rtde_port}&dashboard={self.dashboard_port}"
            f"&secondary={self.secondary_port}"
        )


def _port(text: str, what: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise InvalidArgument(f"{what} port {text!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise InvalidArgument(f"{what} port {port} is outside 1..65535")
    return port


def parse_endpoint(endpoint: str, options: UrOptions) -> UrAddress:
    """Parse `ur://host[:rtde_port][?rtde=&dashboard=&secondary=]`; ports in the URL win over options."""
    parts = urlsplit(endpoint)
    if parts.scheme != "ur" or not parts.hostname:
        raise InvalidArgument(
            f"UR endpoint must look like ur://host[?rtde=..&dashboard=..&secondary=..], got {endpoint!r}"
        )
    ports = {
        "rtde": options.rtde_port,
        "dashboard": options.dashboard_port,
        "secondary": options.secondary_port,
    }
    try:
        explicit_rtde = parts.port
    except ValueError:
        raise InvalidArgument(f"bad port in UR endpoint {endpoint!r}") from None
    if explicit_rtde is not None:
        ports["rtde"] = _port(str(explicit_rtde), "rtde")
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key not in ports:
            raise InvalidArgument(
                f"unknown UR endpoint parameter {key!r} (known: rtde, dashboard, secondary)"
            )
        ports[key] = _port(value, key)
    return UrAddress(parts.hostname, ports["rtde"], ports["dashboard"], ports["secondary"])


def discovered_device(service: MdnsService) -> DiscoveredDevice:
    """Device id from the instance name; RTDE port from SRV, Dashboard/secondary ports from TXT."""
    if not service.instance.strip() or not service.host:
        raise InvalidArgument(f"UR service without instance name or host: {service!r}")
    props = service.properties
    # Numbers first: a TXT value such as "1&rtde=7" must not rewrite the endpoint's query.
    dashboard = _port(props.get("dashboard", str(DASHBOARD_PORT)), "TXT dashboard")
    secondary = _port(props.get("secondary", str(SECONDARY_PORT)), "TXT secondary")
    query = f"rtde={service.port}&dashboard={dashboard}&secondary={secondary}"
    address = parse_endpoint(f"ur://{service.host}?{query}", UrOptions())
    return DiscoveredDevice(service.instance, address.endpoint(), props.get("name", service.instance))
