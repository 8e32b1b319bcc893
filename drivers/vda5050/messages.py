"""Typed VDA 5050 2.0/2.1 messages (msgspec Structs) and their JSON codecs.

Field names follow the normative JSON schemas of VDA5050/VDA5050 tags 2.0.0 and 2.1.0
(json_schemas/*.schema); msgspec renames snake_case to the schemas' camelCase. Top-level messages
forbid unknown fields and every field the schema marks `required` has no default, so a message that
lacks one, or carries a field the schema does not know, fails to decode (counted by the driver).
Nested objects accept unknown fields: vendors extend them, and nothing the bridge reads is lost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import msgspec

SUPPORTED_MAJOR = 2  # VDA 5050 2.x; §6.4 semantic versioning: a new major version breaks the format
VERSION = "2.1.0"

ConnectionState = Literal["ONLINE", "OFFLINE", "CONNECTIONBROKEN"]
BlockingType = Literal["NONE", "SOFT", "HARD"]
ActionStatus = Literal["WAITING", "INITIALIZING", "RUNNING", "PAUSED", "FINISHED", "FAILED"]
OperatingMode = Literal["AUTOMATIC", "SEMIAUTOMATIC", "MANUAL", "SERVICE", "TEACHIN"]
EStop = Literal["AUTOACK", "MANUAL", "REMOTE", "NONE"]
ErrorLevel = Literal["WARNING", "FATAL"]


class _Part(msgspec.Struct, rename="camel", omit_defaults=True):
    """A nested object: unknown (vendor) fields are ignored."""


class _Message(msgspec.Struct, rename="camel", omit_defaults=True, forbid_unknown_fields=True, kw_only=True):
    """§6.4 protocol header, shared by every topic."""

    header_id: int
    timestamp: datetime
    version: str
    manufacturer: str
    serial_number: str


# -- shared parts ------------------------------------------------------------------------------
class ActionParameter(_Part):
    """A key/value parameter of an action (§6.8)."""

    key: str
    value: object


class Action(_Part, kw_only=True):
    """§6.8 action: in an order's nodes and edges, and in instantActions."""

    action_type: str
    action_id: str
    blocking_type: BlockingType
    action_description: str | None = None
    action_parameters: list[ActionParameter] = []


class NodePosition(_Part, kw_only=True):
    """Where a node is on its map, with allowed deviation (§6.6)."""

    x: float
    y: float
    map_id: str
    theta: float | None = None
    allowed_deviation_x_y: float | None = msgspec.field(default=None, name="allowedDeviationXY")
    allowed_deviation_theta: float | None = None
    map_description: str | None = None


class Node(_Part, kw_only=True):
    """A node of an order graph with its actions (§6.6)."""

    node_id: str
    sequence_id: int
    released: bool
    actions: list[Action]
    node_position: NodePosition | None = None
    node_description: str | None = None


class Edge(_Part, kw_only=True):
    """An edge of an order graph between two nodes, with its actions and limits (§6.6)."""

    edge_id: str
    sequence_id: int
    released: bool
    start_node_id: str
    end_node_id: str
    actions: list[Action]
    max_speed: float | None = None
    length: float | None = None
    edge_description: str | None = None


# -- master control -> AGV -------------------------------------------------------------------
class Order(_Message, kw_only=True):
    """§6.6 topic order."""

    order_id: str
    order_update_id: int
    nodes: list[Node]
    edges: list[Edge]
    zone_set_id: str | None = None


class InstantActions(_Message, kw_only=True):
    """§6.9 topic instantActions."""

    actions: list[Action]


# -- AGV -> master control -------------------------------------------------------------------
class Connection(_Message, kw_only=True):
    """§6.14 topic connection (retained; CONNECTIONBROKEN is the AGV's last will)."""

    connection_state: ConnectionState


class AgvPosition(_Part, kw_only=True):
    """The AGV's position on a map and how sure it is of it (state, §6.10)."""

    x: float
    y: float
    theta: float
    map_id: str
    position_initialized: bool
    localization_score: float | None = None
    deviation_range: float | None = None
    map_description: str | None = None


class Velocity(_Part, kw_only=True):
    """The AGV's velocity in its own frame."""

    vx: float | None = None
    vy: float | None = None
    omega: float | None = None


class NodeState(_Part, kw_only=True):
    """A node of the current order still to be traversed."""

    node_id: str
    sequence_id: int
    released: bool
    node_position: NodePosition | None = None


class EdgeState(_Part, kw_only=True):
    """An edge of the current order still to be traversed."""

    edge_id: str
    sequence_id: int
    released: bool


class Load(_Part, kw_only=True):
    """A load the AGV carries: id, type, position and weight."""

    load_id: str | None = None
    load_type: str | None = None
    load_position: str | None = None
    weight: float | None = None


class ActionState(_Part, kw_only=True):
    """The status of one action: WAITING, INITIALIZING, RUNNING, PAUSED, FINISHED or FAILED."""

    action_id: str
    action_status: ActionStatus
    action_type: str | None = None
    action_description: str | None = None
    result_description: str | None = None


class BatteryState(_Part, kw_only=True):
    """Battery charge, voltage, health and whether it is charging."""

    battery_charge: float
    charging: bool
    battery_voltage: float | None = None
    battery_health: float | None = None
    reach: float | None = None


class Reference(_Part):
    """A key/value reference an error points at (e.g. the orderId)."""

    reference_key: str
    reference_value: str


class Error(_Part, kw_only=True):
    """An error the AGV reports: type, level (WARNING/FATAL), description and references."""

    error_type: str
    error_level: ErrorLevel
    error_references: list[Reference] = []
    error_description: str | None = None
    error_hint: str | None = None  # 2.1


class SafetyState(_Part, kw_only=True):
    """E-stop and protective field violation."""

    e_stop: EStop
    field_violation: bool


class State(_Message, kw_only=True):
    """§6.10 topic state."""

    order_id: str
    order_update_id: int
    last_node_id: str
    last_node_sequence_id: int
    node_states: list[NodeState]
    edge_states: list[EdgeState]
    driving: bool
    action_states: list[ActionState]
    battery_state: BatteryState
    operating_mode: OperatingMode
    errors: list[Error]
    safety_state: SafetyState
    zone_set_id: str | None = None
    maps: list[object] | None = None  # 2.1
    paused: bool | None = None
    new_base_request: bool | None = None
    distance_since_last_node: float | None = None
    agv_position: AgvPosition | None = None
    velocity: Velocity | None = None
    loads: list[Load] = []
    information: list[object] = []


class Visualization(_Message, kw_only=True):
    """§6.13 topic visualization."""

    agv_position: AgvPosition | None = None
    velocity: Velocity | None = None


class AgvAction(_Part, kw_only=True):
    """An action type the AGV declares in its factsheet, with where it may run."""

    action_type: str
    action_scopes: list[str] = []
    action_description: str | None = None


class ProtocolFeatures(_Part, kw_only=True):
    """The optional parameters and actions the AGV supports (factsheet)."""

    agv_actions: list[AgvAction] = []
    optional_parameters: list[object] = []


class TypeSpecification(_Part, kw_only=True):
    """The AGV's series, kinematics, class, load and localization types (factsheet)."""

    series_name: str
    agv_kinematic: str
    agv_class: str
    max_load_mass: float
    localization_types: list[str]
    navigation_types: list[str]
    series_description: str | None = None


class PhysicalParameters(_Part, kw_only=True):
    """Speeds, accelerations and dimensions of the AGV (factsheet)."""

    speed_min: float
    speed_max: float
    acceleration_max: float
    deceleration_max: float
    height_max: float
    width: float
    length: float
    height_min: float | None = None


class Factsheet(_Message, kw_only=True):
    """§7 factsheet (the parts the bridge reads are typed; the rest is kept as plain JSON)."""

    type_specification: TypeSpecification
    physical_parameters: PhysicalParameters
    protocol_limits: object
    protocol_features: ProtocolFeatures
    agv_geometry: object
    load_specification: object
    localization_parameters: object | None = None
    vehicle_config: object | None = None  # 2.1


# -- codecs ------------------------------------------------------------------------------------
_encoder = msgspec.json.Encoder()
DECODERS = {
    "connection": msgspec.json.Decoder(Connection),
    "state": msgspec.json.Decoder(State),
    "visualization": msgspec.json.Decoder(Visualization),
    "factsheet": msgspec.json.Decoder(Factsheet),
    "order": msgspec.json.Decoder(Order),
    "instantActions": msgspec.json.Decoder(InstantActions),
}


def encode(message: msgspec.Struct) -> bytes:
    """JSON bytes of a message."""
    return _encoder.encode(message)


def now() -> datetime:
    """The §6.4 header timestamp: UTC, ISO 8601."""
    return datetime.now(UTC)


def major_of(version: str) -> int | None:
    """The major number of a [Major].[Minor].[Patch] version (§6.4), or None when it is not one."""
    head, _, _ = version.partition(".")
    return int(head) if head.isdigit() else None


def header(header_id: int, manufacturer: str, serial: str) -> dict[str, object]:
    """Keyword arguments for a message's header fields."""
    return {
        "header_id": header_id,
        "timestamp": now(),
        "version": VERSION,
        "manufacturer": manufacturer,
        "serial_number": serial,
    }
