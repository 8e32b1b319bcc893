"""Address space of the robot simulator: an OPC 40010 (Robotics) shaped node tree, declared as tables.

The tree mirrors the browse names of OPC 40010 MotionDeviceSystemType without loading its nodeset:
MotionDeviceSystem/{MotionDevices,Controllers,SafetyStates}/... Standard names use the DI or Robotics
namespace, simulator-specific ones (ProgramName, ProgramState, IO) the simulator's own namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asyncua import Node, Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.address_space import AttributeService

from linebridge.drivers.opcua.robot_model import AXIS_COUNT

DI_NS = "http://opcfoundation.org/UA/DI/"
ROBOTICS_NS = "http://opcfoundation.org/UA/Robotics/"
SIM_NS = "urn:linebridge:sim:opcua-robot"
UNECE_NS = "http://www.opcfoundation.org/UA/units/un/cefact"
ROOT = "MotionDeviceSystem"

_DI_NAMES = frozenset({"ParameterSet", "Manufacturer", "Model", "SerialNumber", "ProductCode"})
_ROBOTICS_NAMES = frozenset(
    {
        "MotionDeviceSystem",
        "MotionDevices",
        "Controllers",
        "SafetyStates",
        "Axes",
        "PowerTrains",
        "TaskControls",
        "ActualPosition",
        "ActualSpeed",
        "MotorTemperature",
        "SpeedOverride",
        "OnPath",
        "InControl",
        "OperationalMode",
        "EmergencyStop",
        "ProtectiveStop",
        "ExecutionMode",
        "TaskProgramLoaded",
        "MotionDeviceCategory",
        "MotionProfile",
        "StartUpTime",
        "TotalPowerOnTime",
    }
)
_FOLDERS = frozenset(
    {"MotionDevices", "Controllers", "SafetyStates", "Axes", "PowerTrains", "TaskControls", "IO"}
)


@dataclass(frozen=True, slots=True)
class Unit:
    """A UNECE Rec. 20 unit as OPC UA Part 8 EUInformation."""

    code: str
    display: str
    description: str

    @property
    def unit_id(self) -> int:
        """The UnitId of this engineering unit (OPC UA Part 8 §5.6.3)."""
        # Part 8 §5.6.3: each character of the common code, left to right, shifted into an Int32.
        value = 0
        for char in self.code:
            value = (value << 8) | ord(char)
        return value


DEGREE = Unit("DD", "deg", "degree [unit of angle]")
DEGREE_PER_SECOND = Unit("E96", "deg/s", "degree per second")
CELSIUS = Unit("CEL", "degC", "degree Celsius")
PERCENT = Unit("P1", "%", "percent")
MILLISECOND = Unit("C26", "ms", "millisecond")


@dataclass(frozen=True, slots=True)
class VariableSpec:
    """One variable (or property) of the tree; `key` is how the simulator refers to it."""

    key: str
    path: str  # browse names below MotionDeviceSystem, '/'-separated
    vtype: ua.VariantType
    initial: Any
    unit: Unit | None = None
    writable: bool = False
    eu_range: tuple[float, float] | None = None
    is_property: bool = False
    datatype: int | None = None  # a DataType NodeId (ns 0) when it is not the variant's own type


@dataclass(frozen=True, slots=True)
class ArgumentSpec:
    """One method argument."""

    name: str
    vtype: ua.VariantType
    description: str


@dataclass(frozen=True, slots=True)
class MethodSpecSim:
    """One method; the simulator binds `key` to a coroutine."""

    key: str
    path: str
    inputs: tuple[ArgumentSpec, ...] = ()
    outputs: tuple[ArgumentSpec, ...] = ()


MD = "MotionDevices/MotionDevice_1"
CTRL = "Controllers/Controller_1"
TASK = f"{CTRL}/TaskControls/TaskControl_1"
SAFETY = "SafetyStates/SafetyState"
V = ua.VariantType


def variable_specs(serial: str, started: datetime) -> tuple[VariableSpec, ...]:
    """The simulator's variables; `serial` distinguishes robots of one line."""
    identity = (
        VariableSpec(
            "md_manufacturer",
            f"{MD}/Manufacturer",
            V.LocalizedText,
            ua.LocalizedText("Linebridge"),
            is_property=True,
        ),
        VariableSpec(
            "md_model", f"{MD}/Model", V.LocalizedText, ua.LocalizedText("SimArm 6"), is_property=True
        ),
        VariableSpec("md_serial", f"{MD}/SerialNumber", V.String, serial, is_property=True),
        VariableSpec("md_product", f"{MD}/ProductCode", V.String, "SA6-900", is_property=True),
        # OPC 40010 MotionDeviceCategoryEnumeration: 1 = ARTICULATED_ROBOT
        VariableSpec("md_category", f"{MD}/MotionDeviceCategory", V.Int32, 1, is_property=True),
        VariableSpec(
            "ctrl_manufacturer",
            f"{CTRL}/Manufacturer",
            V.LocalizedText,
            ua.LocalizedText("Linebridge"),
            is_property=True,
        ),
        VariableSpec(
            "ctrl_model",
            f"{CTRL}/Model",
            V.LocalizedText,
            ua.LocalizedText("SimController"),
            is_property=True,
        ),
        VariableSpec("ctrl_serial", f"{CTRL}/SerialNumber", V.String, f"{serial}-C", is_property=True),
    )
    axes = tuple(
        spec
        for n in range(1, AXIS_COUNT + 1)
        for spec in (
            # OPC 40010 AxisMotionProfileEnumeration: 1 = ROTARY
            VariableSpec(f"profile_{n}", f"{MD}/Axes/Axis_{n}/MotionProfile", V.Int32, 1, is_property=True),
            VariableSpec(
                f"position_{n}", f"{MD}/Axes/Axis_{n}/ParameterSet/ActualPosition", V.Double, 0.0, DEGREE
            ),
            VariableSpec(
                f"speed_{n}", f"{MD}/Axes/Axis_{n}/ParameterSet/ActualSpeed", V.Double, 0.0, DEGREE_PER_SECOND
            ),
            VariableSpec(
                f"temperature_{n}",
                f"{MD}/PowerTrains/PowerTrain_{n}/Motor_{n}/ParameterSet/MotorTemperature",
                V.Double,
                30.0,
                CELSIUS,
            ),
        )
    )
    rest = (
        VariableSpec(
            "speed_override",
            f"{MD}/ParameterSet/SpeedOverride",
            V.Double,
            100.0,
            PERCENT,
            writable=True,
            eu_range=(0.0, 100.0),
        ),
        VariableSpec("on_path", f"{MD}/ParameterSet/OnPath", V.Boolean, True),
        VariableSpec("in_control", f"{MD}/ParameterSet/InControl", V.Boolean, True),
        VariableSpec(
            "start_up_time",
            f"{CTRL}/ParameterSet/StartUpTime",
            V.DateTime,
            started,
            datatype=ua.ObjectIds.UtcTime,
        ),
        VariableSpec(
            "power_on_time",
            f"{CTRL}/ParameterSet/TotalPowerOnTime",
            V.Double,
            0.0,
            MILLISECOND,
            datatype=ua.ObjectIds.Duration,
        ),
        VariableSpec("program_name", f"{TASK}/ParameterSet/ProgramName", V.String, "demo", writable=True),
        VariableSpec("program_state", f"{TASK}/ParameterSet/ProgramState", V.String, "Running"),
        VariableSpec("program_loaded", f"{TASK}/ParameterSet/TaskProgramLoaded", V.Boolean, True),
        # OPC 40010 ExecutionModeEnumeration: 1 = CONTINUOUS
        VariableSpec("execution_mode", f"{TASK}/ParameterSet/ExecutionMode", V.Int32, 1),
        VariableSpec("operational_mode", f"{SAFETY}/ParameterSet/OperationalMode", V.Int32, 3),
        VariableSpec("emergency_stop", f"{SAFETY}/ParameterSet/EmergencyStop", V.Boolean, False),
        VariableSpec("protective_stop", f"{SAFETY}/ParameterSet/ProtectiveStop", V.Boolean, False),
        # Writable plain signals for write tests: a digital output and an integer register.
        VariableSpec("digital_output", f"{CTRL}/IO/DigitalOutput_1", V.Boolean, False, writable=True),
        VariableSpec("register", f"{CTRL}/IO/Register_1", V.Int32, 0, writable=True),
    )
    return identity + axes + rest


METHODS: tuple[MethodSpecSim, ...] = (
    MethodSpecSim(
        "start_program",
        f"{TASK}/StartProgram",
        inputs=(ArgumentSpec("ProgramName", V.String, "program to start; empty starts ProgramName"),),
        outputs=(ArgumentSpec("Started", V.Boolean, "false while a safety stop or homing is active"),),
    ),
    MethodSpecSim("stop_program", f"{TASK}/StopProgram"),
    MethodSpecSim("move_to_home", f"{MD}/MoveToHome"),
    MethodSpecSim("reset_protective_stop", f"{SAFETY}/ResetProtectiveStop"),
)


_ADMIN = User(role=UserRole.Admin)  # AttributeService.write's own default: the server itself writing


class RangeCheckedAttributeService(AttributeService):
    """Attribute service that refuses client writes outside a variable's EURange with BadOutOfRange."""

    def __init__(self, aspace: Any, limits: dict[ua.NodeId, tuple[float, float]]) -> None:
        super().__init__(aspace)
        self._limits = limits

    async def write(self, params: ua.WriteParameters, user: User = _ADMIN) -> list[ua.StatusCode]:
        """Write each item, refusing values outside the node's range with BadOutOfRange."""
        results: list[ua.StatusCode] = []
        for item in params.NodesToWrite:
            if self._out_of_range(item):
                results.append(ua.StatusCode(ua.StatusCodes.BadOutOfRange))
                continue
            single = ua.WriteParameters(NodesToWrite=[item])
            results.extend(await super().write(single, user))
        return results

    def _out_of_range(self, item: ua.WriteValue) -> bool:
        limits = self._limits.get(item.NodeId)
        if limits is None or item.AttributeId != ua.AttributeIds.Value or item.Value.Value is None:
            return False
        value = item.Value.Value.Value
        return isinstance(value, int | float) and not limits[0] <= value <= limits[1]


class NodeTree:
    """Builds the tree into a server and keeps key -> NodeId for the simulator."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._objects: dict[str, Node] = {}
        self.node_ids: dict[str, ua.NodeId] = {}
        self._ns: dict[str, int] = {}

    async def build(self, serial: str, started: datetime, methods: dict[str, Any]) -> None:
        """Create every node; `methods` maps a method key to its coroutine callback."""
        for uri in (DI_NS, ROBOTICS_NS, SIM_NS):
            self._ns[uri] = await self._server.register_namespace(uri)
        self._objects[""] = await self._server.nodes.objects.add_object(self._id(ROOT), self._qname(ROOT))
        limits: dict[ua.NodeId, tuple[float, float]] = {}
        for spec in variable_specs(serial, started):
            node = await self._add_variable(spec)
            self.node_ids[spec.key] = node.nodeid
            if spec.eu_range is not None:
                limits[node.nodeid] = spec.eu_range
        for method in METHODS:
            await self._add_method(method, methods[method.key])
        iserver = self._server.iserver
        iserver.attribute_service = RangeCheckedAttributeService(iserver.aspace, limits)

    def namespace(self, uri: str) -> int:
        """The index of a namespace the tree registered."""
        return self._ns[uri]

    def _id(self, path: str) -> ua.NodeId:
        return ua.NodeId(path if path.startswith(ROOT) else f"{ROOT}/{path}", self._ns[SIM_NS])

    def _qname(self, name: str) -> ua.QualifiedName:
        uri = DI_NS if name in _DI_NAMES else ROBOTICS_NS if name in _ROBOTICS_NAMES else SIM_NS
        return ua.QualifiedName(name, self._ns[uri])

    async def _object(self, path: str) -> Node:
        """The object at `path`, creating it and its ancestors (folders for the 40010 collections)."""
        if path in self._objects:
            return self._objects[path]
        parent_path, _, name = path.rpartition("/")
        parent = await self._object(parent_path)
        if name in _FOLDERS:
            node = await parent.add_folder(self._id(path), self._qname(name))
        else:
            node = await parent.add_object(self._id(path), self._qname(name))
        self._objects[path] = node
        return node

    async def _add_variable(self, spec: VariableSpec) -> Node:
        parent_path, _, name = spec.path.rpartition("/")
        parent = await self._object(parent_path)
        variant = ua.Variant(spec.initial, spec.vtype)
        add = parent.add_property if spec.is_property else parent.add_variable
        node = await add(self._id(spec.path), self._qname(name), variant, datatype=spec.datatype)
        if spec.writable:
            await node.set_writable()
        if spec.unit is not None:
            eu = ua.EUInformation(
                NamespaceUri=UNECE_NS,
                UnitId=spec.unit.unit_id,
                DisplayName=ua.LocalizedText(spec.unit.display),
                Description=ua.LocalizedText(spec.unit.description),
            )
            await node.add_property(
                self._id(f"{spec.path}/EngineeringUnits"),
                ua.QualifiedName("EngineeringUnits", 0),
                ua.Variant(eu, V.ExtensionObject),
                datatype=ua.ObjectIds.EUInformation,
            )
        if spec.eu_range is not None:
            eu_range = ua.Range(Low=spec.eu_range[0], High=spec.eu_range[1])
            await node.add_property(
                self._id(f"{spec.path}/EURange"),
                ua.QualifiedName("EURange", 0),
                ua.Variant(eu_range, V.ExtensionObject),
                datatype=ua.ObjectIds.Range,
            )
        return node

    async def _add_method(self, spec: MethodSpecSim, callback: Any) -> None:
        parent_path, _, name = spec.path.rpartition("/")
        parent = await self._object(parent_path)
        inputs = [_argument(a) for a in spec.inputs]
        outputs = [_argument(a) for a in spec.outputs]
        node = await parent.add_method(self._id(spec.path), self._qname(name), callback, inputs, outputs)
        self.node_ids[spec.key] = node.nodeid
        self.node_ids[f"{spec.key}.object"] = parent.nodeid


def _argument(spec: ArgumentSpec) -> ua.Argument:
    return ua.Argument(
        Name=spec.name,
        DataType=ua.NodeId(spec.vtype.value),
        ValueRank=-1,
        Description=ua.LocalizedText(spec.description),
    )
