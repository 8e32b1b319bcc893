"""linebridge.errors holds every domain error; api/errors.py maps each to one gRPC status code."""

from __future__ import annotations

import ast
from pathlib import Path

import grpc
import pytest

from linebridge import errors
from linebridge.api.errors import status_of

ROOT = Path(__file__).resolve().parent.parent
DOMAIN_ERRORS = [
    cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.LinebridgeError) and cls is not errors.LinebridgeError
]


@pytest.mark.parametrize("cls", DOMAIN_ERRORS, ids=lambda c: c.__name__)
def test_every_domain_error_has_a_status_code_and_reason(cls):
    assert status_of(cls("x")) is not grpc.StatusCode.INTERNAL
    assert cls.reason != errors.LinebridgeError.reason


def test_rate_limits_and_a_full_audit_log_are_resource_exhausted_with_their_own_reason():
    assert status_of(errors.RateLimited("x")) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_of(errors.AuditFailure("x")) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (errors.RateLimited.reason, errors.AuditFailure.reason) == ("RATE_LIMITED", "AUDIT_UNAVAILABLE")


def test_no_domain_error_class_outside_errors_py():
    """In the core, a class deriving from a linebridge.errors class is defined in errors.py only.

    A driver may subclass one for its protocol's own failures (Modbus exception codes, RTDE framing):
    they stay inside the driver and map to a status code through their base. The client SDK's errors
    (linebridge.client.errors) are the other side of the wire: status code -> exception.
    """
    names = {cls.__name__ for cls in DOMAIN_ERRORS} | {"LinebridgeError"}
    bad = []
    for path in sorted((ROOT / "bridge").rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if "gen" in parts or parts[:2] == ("bridge", "client") or path == ROOT / "bridge" / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                bases = {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases}
                if bases & names:
                    bad.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert not bad, "domain errors belong in linebridge.errors: " + ", ".join(bad)
