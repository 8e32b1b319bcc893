"""RTDE wire format (UR "Real-Time Data Exchange" guide, protocol v2): framing, encode, decode.

Pure functions and small value types, no I/O. Every package is a header, big-endian
`uint16 size` (header included) + `uint8 type`, followed by a type-specific payload.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum, IntEnum

from linebridge.drivers.base import Unavailable

PROTOCOL_VERSION = 2
HEADER = struct.Struct(">HB")
HEADER_SIZE = HEADER.size  # 3
MAX_PACKAGE_SIZE = 0xFFFF  # the size field is a uint16


class PackageType(IntEnum):
    """RTDE package types: the ASCII letter of each command (RTDE guide, "Protocol")."""

    REQUEST_PROTOCOL_VERSION = ord("V")
    GET_URCONTROL_VERSION = ord("v")
    TEXT_MESSAGE = ord("M")
    DATA_PACKAGE = ord("U")
    CONTROL_PACKAGE_SETUP_OUTPUTS = ord("O")
    CONTROL_PACKAGE_SETUP_INPUTS = ord("I")
    CONTROL_PACKAGE_START = ord("S")
    CONTROL_PACKAGE_PAUSE = ord("P")


_KNOWN_TYPES = frozenset(int(t) for t in PackageType)


class RtdeType(Enum):
    """Recipe field types and their big-endian struct codes (RTDE guide, "Data types")."""

    BOOL = ("?", 1)
    UINT8 = ("B", 1)
    UINT32 = ("I", 1)
    # Read as signed: the same 64 bits, but a value with bit 63 set still fits the signal's int64
    # column (gRPC int_values, Sparkplug Int64) instead of failing there.
    UINT64 = ("q", 1)
    INT32 = ("i", 1)
    DOUBLE = ("d", 1)
    VECTOR3D = ("ddd", 3)
    VECTOR6D = ("dddddd", 6)
    VECTOR6INT32 = ("iiiiii", 6)
    VECTOR6UINT32 = ("IIIIII", 6)

    def __init__(self, codes: str, count: int) -> None:
        self.codes = codes
        self.count = count


# Answers in a recipe reply that are not types: an unknown variable name, an input taken by
# another client (RTDE guide, CONTROL_PACKAGE_SETUP_OUTPUTS / _INPUTS).
NOT_FOUND = "NOT_FOUND"
IN_USE = "IN_USE"


class ProtocolError(Unavailable):
    """The peer sent bytes that are not valid RTDE; the connection is closed and not trusted."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"malformed RTDE data: {detail}")
        self.detail = detail


class MessageLevel(IntEnum):
    """Severity of an RTDE_TEXT_MESSAGE (protocol v2)."""

    EXCEPTION = 0
    ERROR = 1
    WARNING = 2
    INFO = 3


@dataclass(frozen=True, slots=True)
class TextMessage:
    """An RTDE_TEXT_MESSAGE: the controller's (or client's) log line."""

    message: str
    source: str
    level: MessageLevel


@dataclass(frozen=True, slots=True)
class Recipe:
    """An accepted output recipe: its id, field names and types, and the data package layout.

    A data payload decodes into one flat tuple: (recipe_id, field0 elements..., field1 ...).
    """

    recipe_id: int
    names: tuple[str, ...]
    types: tuple[RtdeType, ...]
    payload: struct.Struct = field(init=False, repr=False, compare=False)
    package: struct.Struct = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        codes = "".join(t.codes for t in self.types)
        object.__setattr__(self, "payload", struct.Struct(">B" + codes))
        object.__setattr__(self, "package", struct.Struct(">HBB" + codes))

    def offsets(self) -> dict[str, int]:
        """Index of each field's first element in the flat decoded tuple (after the recipe id)."""
        result, index = {}, 1
        for name, rtde_type in zip(self.names, self.types, strict=True):
            result[name] = index
            index += rtde_type.count
        return result

    def decode(self, payload: bytes) -> tuple:
        """Decode one data package payload into the flat tuple; raise ProtocolError if it does not fit."""
        if len(payload) != self.payload.size:
            raise ProtocolError(
                f"data package of {len(payload)} bytes, recipe {self.recipe_id} needs {self.payload.size}"
            )
        if payload[0] != self.recipe_id:
            raise ProtocolError(f"data package for recipe {payload[0]}, expected {self.recipe_id}")
        return self.payload.unpack(payload)

    def encode_package(self, flat_values: list) -> bytes:
        """Encode a whole data package (header included) from flat element values (no recipe id)."""
        return self.package.pack(self.package.size, PackageType.DATA_PACKAGE, self.recipe_id, *flat_values)


class RtdeFramer:
    """Cuts a TCP byte stream into (package type, payload) pairs; validates header fields."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete package held back (non-zero at EOF means a truncated package)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add received bytes; return every complete package, raise ProtocolError on a bad header."""
        buffer = self._buffer
        buffer += data
        packages: list[tuple[int, bytes]] = []
        position, available = 0, len(buffer)
        while available - position >= HEADER_SIZE:
            size, package_type = HEADER.unpack_from(buffer, position)
            if size < HEADER_SIZE:
                raise ProtocolError(f"size field {size} is smaller than the {HEADER_SIZE}-byte header")
            if package_type not in _KNOWN_TYPES:
                raise ProtocolError(f"unknown package type {package_type} (0x{package_type:02x})")
            if available - position < size:
                break
            packages.append((package_type, bytes(buffer[position + HEADER_SIZE : position + size])))
            position += size
        if position:
            del buffer[:position]
        return packages


def encode_package(package_type: int, payload: bytes = b"") -> bytes:
    """Frame a payload with the RTDE header."""
    size = HEADER_SIZE + len(payload)
    if size > MAX_PACKAGE_SIZE:
        raise ValueError(f"RTDE package of {size} bytes exceeds the uint16 size field")
    return HEADER.pack(size, package_type) + payload


# --- client requests -------------------------------------------------------------------------


def request_protocol_version(version: int = PROTOCOL_VERSION) -> bytes:
    """RTDE_REQUEST_PROTOCOL_VERSION: uint16 protocol version."""
    return encode_package(PackageType.REQUEST_PROTOCOL_VERSION, struct.pack(">H", version))


def get_urcontrol_version() -> bytes:
    """RTDE_GET_URCONTROL_VERSION: no payload."""
    return encode_package(PackageType.GET_URCONTROL_VERSION)


def setup_outputs(names: list[str] | tuple[str, ...], frequency: float) -> bytes:
    """RTDE_CONTROL_PACKAGE_SETUP_OUTPUTS (v2): double output frequency + comma-separated names."""
    return encode_package(
        PackageType.CONTROL_PACKAGE_SETUP_OUTPUTS,
        struct.pack(">d", frequency) + ",".join(names).encode("ascii"),
    )


def start() -> bytes:
    """RTDE_CONTROL_PACKAGE_START: no payload."""
    return encode_package(PackageType.CONTROL_PACKAGE_START)


def pause() -> bytes:
    """RTDE_CONTROL_PACKAGE_PAUSE: no payload."""
    return encode_package(PackageType.CONTROL_PACKAGE_PAUSE)


def text_message(message: str, source: str, level: MessageLevel) -> bytes:
    """RTDE_TEXT_MESSAGE (v2): uint8 length + message, uint8 length + source, uint8 level."""
    body, origin = message.encode()[:255], source.encode()[:255]
    payload = bytes([len(body)]) + body + bytes([len(origin)]) + origin + bytes([int(level)])
    return encode_package(PackageType.TEXT_MESSAGE, payload)


# --- controller answers ----------------------------------------------------------------------


def accepted(package_type: int, ok: bool) -> bytes:
    """A uint8 accepted/success answer (protocol version, start, pause)."""
    return encode_package(package_type, b"\x01" if ok else b"\x00")


def urcontrol_version(major: int, minor: int, bugfix: int, build: int) -> bytes:
    """RTDE_GET_URCONTROL_VERSION answer: four uint32."""
    return encode_package(
        PackageType.GET_URCONTROL_VERSION, struct.pack(">IIII", major, minor, bugfix, build)
    )


def setup_outputs_reply(recipe_id: int, type_names: list[str]) -> bytes:
    """RTDE_CONTROL_PACKAGE_SETUP_OUTPUTS answer (v2): uint8 recipe id + comma-separated types."""
    return encode_package(
        PackageType.CONTROL_PACKAGE_SETUP_OUTPUTS, bytes([recipe_id]) + ",".join(type_names).encode("ascii")
    )


# --- decoders --------------------------------------------------------------------------------


def decode_accepted(payload: bytes) -> bool:
    """Decode a uint8 accepted answer."""
    if len(payload) != 1:
        raise ProtocolError(f"accepted answer of {len(payload)} bytes, expected 1")
    return payload[0] != 0


def decode_urcontrol_version(payload: bytes) -> tuple[int, int, int, int]:
    """Decode (major, minor, bugfix, build)."""
    if len(payload) != 16:
        raise ProtocolError(f"controller version of {len(payload)} bytes, expected 16")
    return struct.unpack(">IIII", payload)


def decode_setup_outputs_request(payload: bytes) -> tuple[float, list[str]]:
    """Decode a v2 setup-outputs request: (frequency, variable names)."""
    if len(payload) < 8:
        raise ProtocolError("setup outputs request shorter than its frequency field")
    (frequency,) = struct.unpack_from(">d", payload)
    try:
        names = payload[8:].decode("ascii").split(",")
    except UnicodeDecodeError as exc:
        raise ProtocolError("variable names are not ASCII") from exc
    return frequency, [n.strip() for n in names if n.strip()]


def decode_setup_outputs_reply(payload: bytes) -> tuple[int, list[str]]:
    """Decode a setup-outputs answer: (recipe id, type names as sent, NOT_FOUND included)."""
    if not payload:
        raise ProtocolError("empty setup outputs answer")
    try:
        type_names = payload[1:].decode("ascii").split(",")
    except UnicodeDecodeError as exc:
        raise ProtocolError("recipe types are not ASCII") from exc
    return payload[0], type_names


def parse_type(type_name: str) -> RtdeType:
    """Map a type name from a recipe answer to RtdeType; raise ProtocolError for junk."""
    try:
        return RtdeType[type_name]
    except KeyError:
        raise ProtocolError(f"unknown recipe type {type_name!r}") from None


def decode_text_message(payload: bytes) -> TextMessage:
    """Decode a v2 text message: length-prefixed message and source, then the level."""
    try:
        length = payload[0]
        message = payload[1 : 1 + length]
        source_length = payload[1 + length]
        source = payload[2 + length : 2 + length + source_length]
        level = payload[2 + length + source_length]
    except IndexError:
        raise ProtocolError("truncated text message") from None
    if len(payload) != 3 + length + source_length:
        raise ProtocolError("text message length fields do not match its size")
    try:
        severity = MessageLevel(level)
    except ValueError:
        severity = MessageLevel.INFO
    return TextMessage(message.decode(errors="replace"), source.decode(errors="replace"), severity)
