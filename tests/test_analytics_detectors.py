"""Detectors on seeded signals: drift detectors fire after the shift and never on the stationary part."""

from __future__ import annotations

import numpy as np
import pytest

from linebridge.analytics.detectors import Cusum, Ewma, Limit, Rate, Stale, Stuck

S = 1_000_000_000


def _series(seed: int, n_before: int, n_after: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(20.0, 0.5, n_before + n_after)
    x[n_before:] += shift
    return x, np.arange(len(x), dtype=np.int64) * S // 10


def _feed(detector, x, t, batch=37):
    fired_at = None
    for i in range(0, len(x), batch):
        detector.update(x[i : i + batch], t[i : i + batch])
        if detector.active and fired_at is None:
            fired_at = int(np.searchsorted(t, detector.changed_ns))
    return fired_at


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize(
    "make",
    [
        lambda: Ewma(0.05, 4.0, 20.0, 0.5, 50),
        lambda: Cusum(1.0, 8.0, 20.0, 0.5, 50),
        lambda: Ewma(0.05, 4.0, None, None, 500),  # baseline estimated from the warm-up
        lambda: Cusum(1.0, 8.0, None, None, 500),
    ],
)
def test_drift_fires_after_the_shift_and_not_before(seed, make):
    # Parameters with an in-control ARL far beyond 3,000 samples; a 2 sigma shift at sample 3000.
    x, t = _series(seed, 3000, 600, 1.0)
    fired = _feed(make(), x, t)
    assert fired is not None and 3000 <= fired < 3100


@pytest.mark.parametrize(
    "make", [lambda: Ewma(0.05, 4.0, 20.0, 0.5, 50), lambda: Cusum(1.0, 8.0, 20.0, 0.5, 50)]
)
def test_drift_never_fires_on_a_stationary_signal(make):
    x, t = _series(11, 5000, 0, 0.0)
    assert _feed(make(), x, t) is None


def test_ewma_batch_size_does_not_change_the_statistic():
    x, t = _series(7, 500, 100, 1.0)
    a, b = Ewma(0.05, 3.0, 20.0, 0.5, 50), Ewma(0.05, 3.0, 20.0, 0.5, 50)
    _feed(a, x, t, batch=1)
    _feed(b, x, t, batch=500)
    assert a.z == pytest.approx(b.z, rel=1e-9)


def test_ewma_with_lambda_near_one_stays_finite():
    x, t = _series(3, 2000, 0, 0.0)
    d = Ewma(0.999, 3.0, 20.0, 0.5, 50)
    _feed(d, x, t, batch=2000)
    assert np.isfinite(d.z) and d.z == pytest.approx(x[-1], abs=0.01)


def test_cusum_matches_the_textbook_recursion():
    x, t = _series(5, 300, 0, 0.0)
    d = Cusum(0.5, 50.0, 20.0, 0.5, 50)
    _feed(d, x, t)
    hi = lo = 0.0
    for v in x:
        hi = max(0.0, v - (20.0 + 0.25) + hi)
        lo = max(0.0, (20.0 - 0.25) - v + lo)
    assert (d.hi, d.lo) == pytest.approx((hi, lo))


def test_limit_deadband_and_delays():
    d = Limit(80.0, high=True, deadband=2.0, on_delay=1.0, off_delay=0.5)
    t = np.arange(0, 40, dtype=np.int64) * S // 10  # 10 Hz
    v = np.full(40, 70.0)
    v[5:25] = 81.0  # above the limit for 2 s
    v[25:30] = 79.0  # inside the deadband: stays active
    d.update(v[:8], t[:8])
    assert not d.active  # 0.2 s above: on-delay not over
    d.update(v[8:20], t[8:20])
    assert d.active and d.changed_ns == t[5] + S  # active exactly one on-delay after it began
    d.update(v[20:30], t[20:30])
    assert d.active  # in the deadband
    d.update(v[30:], t[30:])
    assert not d.active and d.changed_ns == t[30] + S // 2


def test_limit_on_delay_completes_on_tick_without_samples():
    d = Limit(10.0, high=False, on_delay=2.0)
    d.update(np.array([5.0]), np.array([0], dtype=np.int64))
    assert not d.active
    d.tick(3 * S)
    assert d.active


def test_rate_stuck_and_stale():
    r = Rate(max_rate=5.0)
    t = np.arange(10, dtype=np.int64) * S
    r.update(np.arange(10, dtype=float), t)
    assert not r.active
    r.update(np.array([30.0]), np.array([10 * S]))
    assert r.active
    s = Stuck(seconds=5.0)
    s.update(np.array([1.0, 1.0, 1.0]), t[:3])
    s.tick(4 * S)
    assert not s.active
    s.tick(6 * S)
    assert s.active
    s.update(np.array([2.0]), np.array([7 * S]))
    assert not s.active
    st = Stale(seconds=2.0)
    st.seen(0)
    st.tick(S)
    assert not st.active
    st.tick(3 * S)
    assert st.active
    st.seen(4 * S)
    assert not st.active


def test_banks_agree_with_one_detector_per_rule():
    from linebridge.analytics.banks import LimitBank, RateBank

    rng = np.random.default_rng(9)
    specs = [(0.5, True, 0.1, 0.0, 0.0), (-0.5, False, 0.2, 0.3, 0.0), (0.8, True, 0.0, 0.0, 0.2)]
    single = [Limit(*p) for p in specs]
    banked = [Limit(*p) for p in specs]
    bank = LimitBank([(d, i) for i, d in enumerate(banked)])
    rates_single = [Rate(5.0), Rate(2.0, on_delay=0.1)]
    rates_banked = [Rate(5.0), Rate(2.0, on_delay=0.1)]
    rbank = RateBank([(d, i) for i, d in enumerate(rates_banked)])
    for step in range(200):
        rows = 7
        column = rng.normal(0, 0.6, 3 * rows)
        ts = (step * rows + np.repeat(np.arange(rows), 3)).astype(np.int64) * (S // 20)
        index = np.arange(3 * rows).reshape(rows, 3).T  # signal k at positions k, k+3, ...
        bank.update(index, column, ts, [0, 1, 2])
        rbank.update(index[:2], column, ts, [0, 1])
        for k, d in enumerate(single):
            d.update(column[index[k]], ts[index[k]])
        for k, d in enumerate(rates_single):
            d.update(column[index[k]], ts[index[k]])
        for a, b in zip(single + rates_single, banked + rates_banked, strict=True):
            assert (a.active, a.changed_ns, a.raw) == (b.active, b.changed_ns, b.raw)
