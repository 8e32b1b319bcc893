"""Limit and rate-of-change rules of one device evaluated together: one numpy pass per batch for all.

A fixed-shape batch (the same alias column again and again) gives every rule the same number of
samples, so the values of all rules form one matrix (rules x samples) taken with one fancy index.
Only rules whose raw condition changed go back to Python (their detector's delays and detail text).
"""

from __future__ import annotations

import numpy as np

from linebridge.analytics import detectors as det

_NS = 1_000_000_000


def _last_true(mask: np.ndarray) -> np.ndarray:
    """Per row, the index of the last True, or -1."""
    n = mask.shape[1]
    idx = n - 1 - np.argmax(mask[:, ::-1], axis=1)
    return np.where(mask.any(axis=1), idx, -1)


class LimitBank:
    """hi/hihi/lo/lolo limits of one device; each rule keeps its own det.Limit for delays and state."""

    def __init__(self, rules: list[tuple[det.Limit, int]]) -> None:
        self.detectors = [d for d, _ in rules]
        self.aliases = [a for _, a in rules]
        sign = np.array([1.0 if d.high else -1.0 for d in self.detectors])
        self.sign = sign[:, None]
        self.set_at = (sign * np.array([d.limit for d in self.detectors]))[:, None]
        self.clear_at = self.set_at - np.array([d.deadband for d in self.detectors])[:, None]

    def update(self, index: np.ndarray, column: np.ndarray, ts: np.ndarray, rows: list[int]) -> None:
        """`index`: positions (rules x samples) of each listed rule's samples; `rows`: which rules."""
        v = column[index] * self.sign[rows]
        over = v > self.set_at[rows]
        under = v < self.clear_at[rows]
        last_set, last_clear = _last_true(over), _last_true(under)
        now = int(ts[-1])
        for k, r in enumerate(rows):
            d = self.detectors[r]
            s, c = last_set[k], last_clear[k]
            if s < 0 and c < 0:  # everything inside the deadband
                if d.raw != d.active:
                    d.tick(now)
                continue
            raw = bool(s > c)
            if raw == d.raw:
                if d.raw != d.active:
                    d.tick(now)
                continue
            row = over[k] if raw else under[k]
            start = (c if raw else s) + 1
            first = start + int(np.argmax(row[start:]))
            d.detail = f"value {column[index[k, -1]]:.6g}, limit {d.limit:g}"
            d._raw(raw, int(ts[index[k, first]]), now)


class RateBank:
    """Rate-of-change rules of one device: |dv/dt| between consecutive samples of each signal."""

    def __init__(self, rules: list[tuple[det.Rate, int]]) -> None:
        self.detectors = [d for d, _ in rules]
        self.aliases = [a for _, a in rules]
        self.max_rate = np.array([d.max_rate for d in self.detectors])[:, None]
        self.prev_v = np.full((len(rules), 1), np.nan)
        self.prev_t = np.zeros((len(rules), 1), dtype=np.int64)

    def update(self, index: np.ndarray, column: np.ndarray, ts: np.ndarray, rows: list[int]) -> None:
        """Check the rate rules of the given rows against a batch's columns."""
        v = np.concatenate((self.prev_v[rows], column[index]), axis=1)
        t = np.concatenate((self.prev_t[rows], ts[index]), axis=1)
        self.prev_v[rows], self.prev_t[rows] = v[:, -1:], t[:, -1:]
        dt = np.diff(t, axis=1) / _NS
        valid = (dt > 0) & ~np.isnan(v[:, :-1])
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.abs(np.diff(v, axis=1)) / dt
        last = _last_true(valid)
        now = int(ts[-1])
        for k, r in enumerate(rows):
            d = self.detectors[r]
            j = last[k]
            if j < 0:
                continue
            fast = bool(rate[k, j] > self.max_rate[r, 0])
            if fast != d.raw:
                d.detail = f"rate {rate[k, j]:.6g}/s, limit {d.max_rate:g}/s"
                d._raw(fast, int(t[k, j + 1]), now)
            elif d.raw != d.active:
                d.tick(now)
