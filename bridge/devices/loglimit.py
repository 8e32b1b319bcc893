"""Rate limit for repeated log lines of one device: the first line of a kind is logged, repeats within a
window are counted, and the next line after the window says how many were left out."""

from __future__ import annotations

import logging
import time


class RepeatLimiter:
    """One per device: `log(level, key, message, *args)` logs a line of kind `key` at most once a window."""

    def __init__(self, logger: logging.Logger, window: float = 60.0) -> None:
        self._log = logger
        self.window = window
        self._last: dict[str, tuple[float, int]] = {}  # key -> (time logged, repeats since)

    def log(self, level: int, key: str, message: str, *args: object) -> bool:
        """Log now (True), or count the line as a repeat of the last one of its kind (False)."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.window:
            self._last[key] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            message += f" (previous line repeated {last[1]} times in {self.window:g} s)"
        self._last[key] = (now, 0)
        self._log.log(level, message, *args)
        return True

    def repeats(self, key: str) -> int:
        """Lines of kind `key` left out since the last one logged."""
        last = self._last.get(key)
        return 0 if last is None else last[1]
