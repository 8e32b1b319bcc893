"""Values and durations to and from their protobuf messages, for the client (no server modules needed)."""

from __future__ import annotations

import numbers

import numpy as np
from google.protobuf.duration_pb2 import Duration

from linebridge.api import pb

Value = float | int | bool | str


def value_message(value: Value | np.generic) -> pb.common.Value:
    """The Value message of a Python or numpy scalar: bool, int, float, else its text."""
    if isinstance(value, bool | np.bool_):
        return pb.common.Value(bool_value=bool(value))
    if isinstance(value, numbers.Integral):
        return pb.common.Value(int_value=int(value))
    if isinstance(value, numbers.Real):
        return pb.common.Value(double_value=float(value))
    return pb.common.Value(string_value=str(value))


def value_of(message: pb.common.Value) -> Value | None:
    """The Python value of a Value message (None when unset)."""
    kind = message.WhichOneof("kind")
    return None if kind is None else getattr(message, kind)


def duration(seconds: float) -> Duration:
    """A Duration message of `seconds`."""
    message = Duration()
    message.FromNanoseconds(int(seconds * 1e9))
    return message
