"""Property tests for the bridge's own state files (oracles shared with fuzz/fuzz_files.py)."""

from __future__ import annotations

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


# regressions found by fuzzing


def test_bytes_that_are_not_utf8_are_a_config_error():
    assert target.check_tokens_file(b"mes sha256:" + b"\xff" * 64 + b"\n") is None


def test_every_seed_runs():
    for seed in target.seeds():
        target.one_input(seed)
