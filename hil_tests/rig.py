"""Rig files: which devices a test rig has and what each must show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from linebridge.config import describe_validation_error
from linebridge.errors import ConfigError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WriteCheck(_Model):
    """Write a value and read it back."""

    path: str
    value: float | int | bool | str
    restore: float | int | bool | str | None = None


class CallCheck(_Model):
    """Call a method; optionally read a signal that must then hold a value."""

    method: str
    args: list[float | int | bool | str] = Field(default_factory=list)
    then_path: str = ""
    then_value: float | int | bool | str | None = None


class Expectations(_Model):
    """What a device must show."""

    kind: str = ""
    signals: list[str] = Field(default_factory=list)
    streaming: str = ""  # a glob whose values must change while streaming
    write: WriteCheck | None = None
    call: CallCheck | None = None


class RigDevice(_Model):
    """One device on the rig: a simulator the suite starts, or a real device at an endpoint."""

    id: str
    driver: str
    simulator: str = ""  # `linebridge sim NAME`; empty for a real device
    simulator_args: list[str] = Field(default_factory=list)
    endpoint: str = ""  # real devices: where to reach them (static entry)
    options: dict[str, Any] = Field(default_factory=dict)
    discover: bool = True  # expect it through mDNS (simulators always advertise on loopback)
    restart: bool = True  # the suite may restart it (simulators only)
    proxy_port: int = Field(0, ge=0, le=65535)  # `linebridge hil run`: the fault proxy's port (0: free one)
    expect: Expectations = Field(default_factory=Expectations)


class Rig(_Model):
    """A test rig: a name and its devices."""

    name: str
    devices: list[RigDevice] = Field(min_length=1)


def load_rig(path: str | Path) -> Rig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read rig file: {exc}") from None
    try:
        return Rig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(str(path), exc, Rig)) from None
