"""Property tests for the bridge's own state files (oracles shared with fuzz/fuzz_files.py)."""

from __future__ import annotations

import json
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import fuzz_files as target
from linebridge.security.tokens import hash_token

FUZZ = settings(max_examples=300, database=None)
NAMES = st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=70)
LINES = st.one_of(
    st.builds(lambda n, t: f"{n} {hash_token(t)}", NAMES, st.text(max_size=10)),
    st.builds(lambda n, h: f"{n} sha256:{h}", NAMES, st.text(alphabet="0123456789abcdefABCDEF", max_size=70)),
    st.text(max_size=80),
    st.just("# a comment"),
)


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_load_or_fail_naming_the_file(data):
    target.check_tokens_file(data)


@FUZZ
@given(st.lists(LINES, max_size=8), st.sampled_from(["\n", "\r\n", "\r"]))
def test_line_shaped_files(lines, newline):
    target.check_tokens_file(newline.join(lines).encode("utf-8", errors="surrogatepass"))


def test_a_stored_token_is_found_by_its_name():
    table = target.check_tokens_file(f"mes {hash_token('s3cret')}\nops {hash_token('other')}\n".encode())
    assert table is not None and table.verify("s3cret") == "mes" and table.verify("nope") is None


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
SQL_VALUES = (
    st.none()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
ROWS = st.one_of(
    st.tuples(st.just("outbox"), *[SQL_VALUES] * 6),
    st.tuples(st.just("aliases"), *[SQL_VALUES] * 4),
    st.tuples(st.just("meta"), *[SQL_VALUES] * 2),
)


@FUZZ
@given(st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode())))
def test_approvals_files_load_or_fail_naming_the_file(data):
    target.check_approvals_file(data)


@FUZZ
@given(st.dictionaries(st.sampled_from(["approved", "identities", "x"]), JSON_VALUES, max_size=3))
def test_approvals_shaped_files(document):
    target.check_approvals_file(json.dumps(document).encode())


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=80), JSON_VALUES.map(json.dumps).map(str.encode)), max_size=5))
def test_audit_files_always_get_a_verdict(lines):
    target.check_audit_file(b"\n".join(lines) + b"\n")


@settings(max_examples=60, database=None)
@given(st.lists(ROWS, max_size=5))
def test_damaged_outbox_rows_are_dropped_and_the_outbox_opens(rows):
    target.check_outbox_rows(rows)


# regressions found by fuzzing


def test_bytes_that_are_not_utf8_are_a_config_error():
    assert target.check_tokens_file(b"mes sha256:" + b"\xff" * 64 + b"\n") is None


def test_approved_ids_must_be_device_ids():
    assert target.check_approvals_file(b'{"approved": "abc"}') is None  # not three ids "a", "b", "c"
    assert target.check_approvals_file(b'{"approved": ["Robot 1"]}') is None


def test_a_deeply_nested_approvals_file_is_a_config_error():
    assert target.check_approvals_file(b"[" * 100_000) is None


def test_an_outbox_row_of_the_wrong_types_is_dropped_not_fatal():
    now_ms = time.time_ns() // 1_000_000
    damaged = ("outbox", 1, "dev", "yesterday", "many", 0, b"x")  # created_ms and samples as text
    good = ("outbox", 2, "dev", now_ms, 1, 0, b"y")
    outbox = target.check_outbox_rows([damaged, good])
    assert outbox.damaged_rows == 1 and outbox.messages == 1 and outbox.samples == 1


def test_every_seed_runs():
    for seed in target.seeds():
        target.one_input(seed)
