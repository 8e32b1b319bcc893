"""Alarm detectors: one small class per method, one `update(values, times)` per batch column (numpy).

Each detector holds `active` (the alarm condition after delays) and `detail` (a short text for the
alarm message). `tick(now_ns)` re-evaluates time-based conditions (delays, stuck, stale) between batches.
Parameters are validated by the config models before a detector is built.
"""

from __future__ import annotations

import math

import numpy as np

_NS = 1_000_000_000


class Detector:
    """Base: an `active` flag and the time it last changed."""

    def __init__(self) -> None:
        self.active = False
        self.changed_ns = 0
        self.detail = ""

    def update(self, values: np.ndarray, times: np.ndarray) -> None:
        """Fold one batch column (float64 values, int64 ns times) in."""

    def tick(self, now_ns: int) -> None:
        """Re-evaluate time-based conditions at now_ns."""

    def _set(self, active: bool, at_ns: int) -> None:
        if active != self.active:
            self.active, self.changed_ns = active, at_ns


class Delayed(Detector):
    """A raw condition with an on-delay and an off-delay (ISA-18.2 §10.4 alarm deadband and delays)."""

    def __init__(self, on_delay: float = 0.0, off_delay: float = 0.0) -> None:
        super().__init__()
        self.on_ns, self.off_ns = int(on_delay * _NS), int(off_delay * _NS)
        self.raw = False
        self.raw_since = 0

    def _raw(self, raw: bool, since_ns: int, now_ns: int) -> None:
        if raw != self.raw:
            self.raw, self.raw_since = raw, since_ns
        self.tick(now_ns)

    def tick(self, now_ns: int) -> None:
        """Let the raw condition through once its on- or off-delay has passed."""
        if self.raw != self.active:
            delay = self.on_ns if self.raw else self.off_ns
            if now_ns - self.raw_since >= delay:
                self._set(self.raw, self.raw_since + delay)


class Limit(Delayed):
    """hi/hihi (value above limit) or lo/lolo (below) with a deadband for clearing and on/off delays."""

    def __init__(
        self, limit: float, high: bool, deadband: float = 0.0, on_delay: float = 0.0, off_delay: float = 0.0
    ):
        super().__init__(on_delay, off_delay)
        self.limit, self.high, self.deadband = limit, high, deadband

    def update(self, values: np.ndarray, times: np.ndarray) -> None:
        """Raise or clear the limit alarm from a batch of values (with its deadband)."""
        if self.high:
            over, under = values > self.limit, values < self.limit - self.deadband
        else:
            over, under = values < self.limit, values > self.limit + self.deadband
        last_set = _last(over)
        last_clear = _last(under)
        if last_set < 0 and last_clear < 0:  # every sample inside the deadband: no change
            self.tick(int(times[-1]))
            return
        raw = last_set > last_clear
        if raw:
            # the raw condition began at the first set sample after the last clearing one
            first = last_clear + 1 + int(np.argmax(over[last_clear + 1 :]))
            since = int(times[first]) if not self.raw else self.raw_since
        else:  # the raw condition ended at the first clearing sample after the last set one
            first = last_set + 1 + int(np.argmax(under[last_set + 1 :]))
            since = int(times[first]) if self.raw else self.raw_since
        self.detail = f"value {values[-1]:.6g}, limit {self.limit:g}"
        self._raw(raw, since, int(times[-1]))


class Rate(Delayed):
    """Rate of change (units per second) above `max_rate` between consecutive samples."""

    def __init__(self, max_rate: float, on_delay: float = 0.0) -> None:
        super().__init__(on_delay, 0.0)
        self.max_rate = max_rate
        self._last: tuple[float, int] | None = None

    def update(self, values: np.ndarray, times: np.ndarray) -> None:
        """Raise or clear the rate alarm from the rate of change between consecutive samples."""
        if self._last is not None:
            values = np.concatenate(([self._last[0]], values))
            times = np.concatenate(([self._last[1]], times))
        self._last = (float(values[-1]), int(times[-1]))
        if len(values) < 2:
            return
        dt = np.diff(times) / _NS
        ok = dt > 0
        rate = np.abs(np.diff(values)[ok] / dt[ok])
        if not len(rate):
            return
        self.detail = f"rate {rate[-1]:.6g}/s, limit {self.max_rate:g}/s"
        fast = rate > self.max_rate
        self._raw(bool(fast[-1]), int(times[1:][ok][-1]), int(times[-1]))


class Stuck(Detector):
    """No change of value for `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.limit_ns = int(seconds * _NS)
        self.value: float | None = None
        self.since = 0

    def update(self, values: np.ndarray, times: np.ndarray) -> None:
        """Follow the value: a change restarts the stuck clock."""
        first = self.value is None
        if first:
            prev, cur, offset = values[:-1], values[1:], 1
            self.since = int(times[0])
        else:
            prev, cur, offset = np.concatenate(([self.value], values[:-1])), values, 0
        moved = np.flatnonzero(cur != prev)
        if len(moved):
            self.since = int(times[moved[-1] + offset])
        if first or len(moved):
            self._set(False, self.since)
        self.value = float(values[-1])
        self.tick(int(times[-1]))

    def tick(self, now_ns: int) -> None:
        """Raise the alarm when the value has not changed for the rule's time."""
        if self.value is not None and now_ns - self.since >= self.limit_ns:
            self.detail = f"value {self.value:.6g} unchanged for {(now_ns - self.since) / _NS:.0f} s"
            self._set(True, self.since + self.limit_ns)


class Stale(Detector):
    """No sample for `seconds` (by arrival time), or the device is not reachable."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.limit_ns = int(seconds * _NS)
        self.last_ns: int | None = None
        self.offline = False

    def seen(self, now_ns: int) -> None:
        """A sample arrived at now_ns (bridge clock)."""
        self.last_ns = now_ns
        if not self.offline:
            self._set(False, now_ns)

    def tick(self, now_ns: int) -> None:
        """Raise the alarm when no sample came for the rule's time or the device is offline."""
        if self.offline:
            self.detail = "device offline"
            self._set(True, now_ns)
        elif self.last_ns is not None and now_ns - self.last_ns >= self.limit_ns:
            self.detail = f"no sample for {(now_ns - self.last_ns) / _NS:.0f} s"
            self._set(True, self.last_ns + self.limit_ns)


class _Baseline:
    """In-control mean and sigma: given, or estimated from the first `warmup` samples."""

    def __init__(self, target: float | None, sigma: float | None, warmup: int) -> None:
        self.target, self.sigma, self.warmup = target, sigma, warmup
        self._seen: list[np.ndarray] = []
        self._count = 0

    @property
    def ready(self) -> bool:
        return self.target is not None and self.sigma is not None

    def learn(self, values: np.ndarray) -> np.ndarray:
        """Take warm-up samples; return the samples left over once the baseline is known."""
        need = self.warmup - self._count
        self._seen.append(values[:need])
        self._count += len(values[:need])
        if self._count >= self.warmup:
            data = np.concatenate(self._seen)
            if self.target is None:
                self.target = float(data.mean())
            if self.sigma is None:
                self.sigma = float(data.std(ddof=1)) or 1e-12
            self._seen = []
        return values[need:]


class Ewma(Detector):
    """EWMA control chart (Roberts 1959; limits after Lucas & Saccucci 1990).

    z_t = λ x_t + (1 - λ) z_{t-1}, z_0 = μ0; signals when |z_t - μ0| > L σ sqrt(λ / (2 - λ) · (1 - (1 - λ)^{2t})).
    The recursion runs per column in closed form, in chunks short enough that (1 - λ)^-n stays finite.
    """

    CHUNK = 256

    def __init__(self, lam: float, L: float, target: float | None, sigma: float | None, warmup: int) -> None:  # noqa: N803
        super().__init__()
        self.lam, self.L = lam, L
        self.base = _Baseline(target, sigma, warmup)
        self.z: float | None = None
        self.t = 0
        self._pow_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def update(self, values: np.ndarray, times: np.ndarray) -> None:
        """Learn the baseline first, then run the EWMA chart over the values."""
        if not self.base.ready:
            rest = self.base.learn(values)
            times = times[len(values) - len(rest) :]
            values = rest
            if not len(values):
                return
        if self.z is None:
            self.z = self.base.target
        step = self._chunk_len
        for start in range(0, len(values), step):
            self._chunk(values[start : start + step], times[start : start + step])

    @property
    def _chunk_len(self) -> int:
        q = 1.0 - self.lam
        if q <= 0.0:
            return 4096
        # keep the weights q^-n below 1e200 so that weight x value cannot overflow
        return max(1, min(self.CHUNK, int(460 / -math.log(q))))

    def _chunk(self, x: np.ndarray, times: np.ndarray) -> None:
        lam, q = self.lam, 1.0 - self.lam
        n = len(x)
        up, down = self._powers(n)
        if q == 0.0:
            z = x.astype(float)
        else:
            z = up * (self.z + lam * np.cumsum(down * x))  # z_i = q^i (z_0 + λ Σ_j q^-j x_j)
        width = self._width(n)
        out = np.abs(z - self.base.target) > width
        self.z, self.t = float(z[-1]), self.t + n
        if out.any() and not self.active:
            self.detail = f"EWMA {self.z:.6g} vs target {self.base.target:.6g} ± {float(np.max(width)):.3g}"
            self._set(True, int(times[int(np.argmax(out))]))
        elif self.active and not out[-1]:
            self._set(False, int(times[-1]))

    def _powers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """q^i and q^-i for i = 1..n, cached per chunk length (batches of one shape repeat it)."""
        cached = self._pow_cache.get(n)
        if cached is None:
            q = 1.0 - self.lam
            i = np.arange(1, n + 1, dtype=float)
            cached = self._pow_cache[n] = (q**i, q**-i if q else i)
        return cached

    def _width(self, n: int) -> np.ndarray | float:
        """Control limit half-width for the next n points; constant once (1 - λ)^(2t) is negligible."""
        q, lam = 1.0 - self.lam, self.lam
        steady = self.L * self.base.sigma * np.sqrt(lam / (2 - lam))
        if q ** (2 * self.t) < 1e-12:
            return steady
        t = self.t + np.arange(1, n + 1, dtype=float)
        return steady * np.sqrt(1 - q ** (2 * t))


class Cusum(Detector):
    """Tabular CUSUM (Page 1954; Montgomery, Introduction to SQC, §9.1), two-sided.

    C+_i = max(0, x_i - (μ0 + K) + C+_{i-1}), C-_i = max(0, (μ0 - K) - x_i + C-_{i-1}), K = kσ, H = hσ;
    signals when either exceeds H. The Lindley recursion max(0, c + y) runs per column as
    S_i - min(0, min_{j<=i} S_j) with S the running sum started at the previous C.
    """

    def __init__(self, k: float, h: float, target: float | None, sigma: float | None, warmup: int) -> None:
        super().__init__()
        self.k, self.h = k, h
        self.base = _Baseline(target, sigma, warmup)
        self.hi = 0.0
        self.lo = 0.0

    @staticmethod
    def _lindley(c0: float, y: np.ndarray) -> np.ndarray:
        s = c0 + np.cumsum(y)
        return s - np.minimum(np.minimum.accumulate(s), 0.0)

    def update(self, values: np.ndarray, times: np.ndarray) -> None:
        """Learn the baseline first, then run the two-sided CUSUM over the values."""
        if not self.base.ready:
            rest = self.base.learn(values)
            times = times[len(values) - len(rest) :]
            values = rest
            if not len(values):
                return
        mu, sd = self.base.target, self.base.sigma
        big_k, big_h = self.k * sd, self.h * sd
        hi = self._lindley(self.hi, values - (mu + big_k))
        lo = self._lindley(self.lo, (mu - big_k) - values)
        self.hi, self.lo = float(hi[-1]), float(lo[-1])
        out = (hi > big_h) | (lo > big_h)
        if out.any() and not self.active:
            self.detail = f"CUSUM C+ {self.hi / sd:.2f}σ C- {self.lo / sd:.2f}σ, h {self.h:g}σ"
            self._set(True, int(times[int(np.argmax(out))]))
        elif self.active and not out[-1]:
            self._set(False, int(times[-1]))


class Bit(Detector):
    """A device alarm bit: active while the latest value equals `active_value`."""

    def __init__(self, active_value: object = True) -> None:
        super().__init__()
        self.active_value = active_value

    def update_values(self, values: list, times: list[int]) -> None:
        """Take raw (possibly non-numeric) values: the last one decides."""
        value = values[-1]
        want = self.active_value
        hit = value == want if not isinstance(want, bool) else bool(value) == want
        self.detail = f"value {value!r}"
        self._set(hit, int(times[-1]))


def _last(mask: np.ndarray) -> int:
    """Index of the last True, or -1."""
    idx = np.flatnonzero(mask)
    return int(idx[-1]) if len(idx) else -1


def finite(x: float) -> bool:
    """True for a finite float (NaN readings never raise a drift alarm)."""
    return math.isfinite(x)
