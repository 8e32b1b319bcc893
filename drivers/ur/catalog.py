"""The controller's RTDE output variables and their types (RTDE guide, "Robot controller outputs").

The simulator answers recipe requests from this table (unknown names -> NOT_FOUND, as the
controller does); the driver's signal table (fields.py) is checked against it in the tests.
"""

from __future__ import annotations

from linebridge.drivers.ur.rtde import RtdeType

_D, _V6, _V3 = RtdeType.DOUBLE, RtdeType.VECTOR6D, RtdeType.VECTOR3D

OUTPUT_TYPES: dict[str, RtdeType] = {
    "timestamp": _D,
    "target_q": _V6,
    "target_qd": _V6,
    "target_qdd": _V6,
    "target_current": _V6,
    "target_moment": _V6,
    "actual_q": _V6,
    "actual_qd": _V6,
    "actual_current": _V6,
    "joint_control_output": _V6,
    "actual_TCP_pose": _V6,
    "actual_TCP_speed": _V6,
    "actual_TCP_force": _V6,
    "target_TCP_pose": _V6,
    "target_TCP_speed": _V6,
    "actual_digital_input_bits": RtdeType.UINT64,
    "joint_temperatures": _V6,
    "actual_execution_time": _D,
    "robot_mode": RtdeType.INT32,
    "joint_mode": RtdeType.VECTOR6INT32,
    "safety_mode": RtdeType.INT32,
    "safety_status": RtdeType.INT32,
    "actual_tool_accelerometer": _V3,
    "speed_scaling": _D,
    "target_speed_fraction": _D,
    "actual_momentum": _D,
    "actual_main_voltage": _D,
    "actual_robot_voltage": _D,
    "actual_robot_current": _D,
    "actual_joint_voltage": _V6,
    "actual_digital_output_bits": RtdeType.UINT64,
    "runtime_state": RtdeType.UINT32,
    "elbow_position": _V3,
    "elbow_velocity": _V3,
    "robot_status_bits": RtdeType.UINT32,
    "safety_status_bits": RtdeType.UINT32,
    "analog_io_types": RtdeType.UINT32,
    "standard_analog_input0": _D,
    "standard_analog_input1": _D,
    "standard_analog_output0": _D,
    "standard_analog_output1": _D,
    "io_current": _D,
    "euromap67_input_bits": RtdeType.UINT32,
    "euromap67_output_bits": RtdeType.UINT32,
    "euromap67_24V_voltage": _D,
    "euromap67_24V_current": _D,
    "tool_mode": RtdeType.UINT32,
    "tool_analog_input_types": RtdeType.UINT32,
    "tool_analog_input0": _D,
    "tool_analog_input1": _D,
    "tool_output_voltage": RtdeType.INT32,
    "tool_output_current": _D,
    "tool_temperature": _D,
    "tcp_force_scalar": _D,
    "output_bit_registers0_to_31": RtdeType.UINT32,
    "output_bit_registers32_to_63": RtdeType.UINT32,
    "tool_output_mode": RtdeType.UINT8,
    "tool_digital_output0_mode": RtdeType.UINT8,
    "tool_digital_output1_mode": RtdeType.UINT8,
    "payload": _D,
    "payload_cog": _V3,
    "payload_inertia": _V6,
    "script_control_line": RtdeType.UINT32,
    "ft_raw_wrench": _V6,
    "joint_position_deviation_ratio": _D,
    "collision_detection_ratio": _D,
}

# General purpose output registers: output_bit_register_64..127 (BOOL), output_int_register_0..47
# (INT32) and output_double_register_0..47 (DOUBLE).
OUTPUT_TYPES.update({f"output_bit_register_{i}": RtdeType.BOOL for i in range(64, 128)})
OUTPUT_TYPES.update({f"output_int_register_{i}": RtdeType.INT32 for i in range(48)})
OUTPUT_TYPES.update({f"output_double_register_{i}": _D for i in range(48)})


class RobotMode:
    """robot_mode values (RTDE guide / Dashboard `robotmode`)."""

    NO_CONTROLLER = -1
    DISCONNECTED = 0
    CONFIRM_SAFETY = 1
    BOOTING = 2
    POWER_OFF = 3
    POWER_ON = 4
    IDLE = 5
    BACKDRIVE = 6
    RUNNING = 7
    UPDATING_FIRMWARE = 8

    NAMES = {
        -1: "NO_CONTROLLER",
        0: "DISCONNECTED",
        1: "CONFIRM_SAFETY",
        2: "BOOTING",
        3: "POWER_OFF",
        4: "POWER_ON",
        5: "IDLE",
        6: "BACKDRIVE",
        7: "RUNNING",
        8: "UPDATING_FIRMWARE",
    }


class SafetyMode:
    """safety_mode values (RTDE guide / Dashboard `safetystatus`)."""

    NORMAL = 1
    REDUCED = 2
    PROTECTIVE_STOP = 3
    RECOVERY = 4
    SAFEGUARD_STOP = 5
    SYSTEM_EMERGENCY_STOP = 6
    ROBOT_EMERGENCY_STOP = 7
    VIOLATION = 8
    FAULT = 9

    NAMES = {
        1: "NORMAL",
        2: "REDUCED",
        3: "PROTECTIVE_STOP",
        4: "RECOVERY",
        5: "SAFEGUARD_STOP",
        6: "SYSTEM_EMERGENCY_STOP",
        7: "ROBOT_EMERGENCY_STOP",
        8: "VIOLATION",
        9: "FAULT",
    }


class RuntimeState:
    """runtime_state values: the program state of the controller."""

    STOPPING = 0
    STOPPED = 1
    PLAYING = 2
    PAUSING = 3
    PAUSED = 4
    RESUMING = 5

    NAMES = {0: "STOPPING", 1: "STOPPED", 2: "PLAYING", 3: "PAUSING", 4: "PAUSED", 5: "RESUMING"}
