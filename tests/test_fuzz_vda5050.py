"""Property tests for VDA 5050 input through the driver (oracle shared with fuzz/fuzz_vda5050.py)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import fuzz_vda5050 as target

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)


@FUZZ
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_escape(data: bytes) -> None:
    target.one_input(data)


@FUZZ
@given(st.sampled_from(range(4)), st.data())
def test_valid_messages_with_one_field_changed_are_applied_or_counted(
    index: int, data: st.DataObject
) -> None:
    d, host = target.driver()
    kind, payload = target.valid_messages()[index]
    target.check_message(d, host, "uagv/v2/acme/agv-001/connection", target.valid_messages()[0][1])
    message = json.loads(payload)
    key = data.draw(st.sampled_from(sorted(message)))
    if data.draw(st.booleans()):
        message[key] = data.draw(JSON)
    else:
        del message[key]
    target.check_message(d, host, f"uagv/v2/acme/agv-001/{kind}", json.dumps(message).encode())


def test_every_seed_is_accepted_cleanly() -> None:
    d, host = target.driver()
    for kind, payload in target.valid_messages():
        target.check_message(d, host, f"uagv/v2/acme/agv-001/{kind}", payload)
    assert sum(d.bad.values()) == 0
    assert host.batches  # the state and the visualization became batches
