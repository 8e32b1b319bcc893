"""telemetry.filters.ChangeFilter: the one deadband change filter (on-change streams, uplink RBE)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from linebridge.model import Quality, SampleBatch
from linebridge.telemetry.filters import ChangeFilter

NOW = 1_700_000_000_000_000_000


def batch(aliases, values, qualities=None):
    return SampleBatch("d", list(aliases), list(values), [NOW] * len(aliases), qualities=qualities)


def test_without_deadband_only_changed_values_pass():
    changes = ChangeFilter()
    first = batch([1, 2], [1.0, "a"])
    assert changes.apply(first) is first  # everything is new: the batch itself
    assert changes.apply(batch([1, 2], [1.0, "a"])) is None
    kept = changes.apply(batch([1, 2], [1.5, "a"]))
    assert kept is not None and (kept.aliases, kept.values) == ([1], [1.5])
    assert changes.suppressed == 3


def test_a_default_deadband_compares_with_the_last_value_passed():
    changes = ChangeFilter(deadband=0.5)
    changes.seed_batch(batch([1], [10.0]))
    assert changes.apply(batch([1], [10.4])) is None
    assert changes.apply(batch([1], [10.8])) is not None  # slow drift: 0.8 from the last one passed
    assert changes.apply(batch([1], [11.2])) is None


def test_per_alias_deadbands_override_the_default():
    changes = ChangeFilter(deadband=0.0)
    changes.set_deadband(2, 0.5)
    changes.apply(batch([1, 2], [1.0, 10.0]))
    kept = changes.apply(batch([1, 2], [1.1, 10.4]))
    assert kept is not None and kept.aliases == [1]
    changes.set_deadband(2, 0)  # back to the default: any change
    assert changes.apply(batch([2], [10.1])) is not None


def test_deadbands_apply_to_numbers_only():
    changes = ChangeFilter(deadband=5.0)
    changes.apply(batch([1, 2], [True, "x"]))
    kept = changes.apply(batch([1, 2], [False, "y"]))
    assert kept is not None and kept.values == [False, "y"]


def test_a_repeated_alias_in_one_batch_is_compared_with_its_previous_sample():
    changes = ChangeFilter()
    kept = changes.apply(batch([1, 1, 1], [1.0, 1.0, 2.0]))
    assert kept is not None and kept.values == [1.0, 2.0]


def test_a_quality_change_passes_even_when_the_value_repeats():
    changes = ChangeFilter()
    changes.seed(1, 3.0)
    bad = batch([1, 2], [3.0, 4.0], qualities=[int(Quality.BAD), int(Quality.GOOD)])
    assert changes.apply(bad) is bad  # alias 1 turned BAD, alias 2 is new
    assert changes.apply(batch([1], [3.0], qualities=[int(Quality.BAD)])) is None  # still BAD: no news
    back = changes.apply(batch([1, 2], [3.0, 4.0]))  # alias 1 GOOD again
    assert back is not None and back.aliases == [1]
    assert changes.quality == {}


def test_seed_batch_takes_qualities_too():
    changes = ChangeFilter()
    changes.seed_batch(batch([1], [3.0], qualities=[int(Quality.STALE)]))
    assert changes.apply(batch([1], [3.0], qualities=[int(Quality.STALE)])) is None
    assert changes.apply(batch([1], [3.0])) is not None


def test_seed_none_forgets_the_alias():
    changes = ChangeFilter()
    changes.seed(1, 3.0)
    assert changes.apply(batch([1], [3.0])) is None
    changes.seed(1, None)
    assert changes.apply(batch([1], [3.0])) is not None


def test_apply_all_keeps_batches_that_still_hold_samples():
    changes = ChangeFilter()
    out = changes.apply_all([batch([1], [1.0]), batch([1], [1.0]), batch([1], [2.0])])
    assert [b.values for b in out] == [[1.0], [2.0]]


def test_rows_of_one_alias_list_are_compared_row_by_row():
    changes = ChangeFilter()
    kept = changes.apply(batch([1, 2] * 3, [1.0, 5.0, 1.0, 6.0, 2.0, 6.0]))
    assert kept is not None and list(zip(kept.aliases, kept.values, strict=True)) == [
        (1, 1.0),
        (2, 5.0),
        (2, 6.0),
        (1, 2.0),
    ]
    assert changes.last == {1: 2.0, 2: 6.0}


VALUES = st.sampled_from([0, 1, 1.0, 2.5, True, False, "a", "b"])


@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(1, 6), min_size=1, max_size=6, unique=True), st.integers(1, 4), st.data()
        ),
        min_size=1,
        max_size=5,
    )
)
def test_the_c_level_path_decides_like_the_sample_by_sample_one(batches):
    fast, slow = ChangeFilter(), ChangeFilter()
    slow._exact = lambda aliases, values: None  # force the reference path
    for aliases, rows, data in batches:
        values = data.draw(st.lists(VALUES, min_size=len(aliases) * rows, max_size=len(aliases) * rows))
        b = batch(aliases * rows, values)
        got, want = fast.apply(b), slow.apply(b)
        assert (got and (got.aliases, got.values)) == (want and (want.aliases, want.values))
    assert fast.last == slow.last and fast.suppressed == slow.suppressed
