"""Signal path globs: "robot-1/*", "*/axes/*/actual_position", "**/temperature", "*"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache

from linebridge.errors import InvalidArgument

_SEGMENT_CHARS = re.compile(r"^[A-Za-z0-9_.:\-*]+$")
MAX_GLOB_LENGTH = 512


def split_path(full_path: str) -> tuple[str, str]:
    """Split "<device_id>/<signal path>" into its two parts; InvalidArgument when there is no '/'."""
    device_id, sep, signal_path = full_path.partition("/")
    if not sep or not device_id or not signal_path:
        raise InvalidArgument(f"path {full_path!r} is not of the form DEVICE/SIGNAL")
    return device_id, signal_path


@lru_cache(maxsize=4096)
def _segment_regex(segment: str) -> re.Pattern[str]:
    return re.compile("^" + "[^/]*".join(re.escape(p) for p in segment.split("*")) + "$")


@dataclass(frozen=True, slots=True)
class PathGlob:
    """A compiled path glob. "*" matches within one segment, "**" any number of segments, and a
    trailing lone "*" the rest of the path (so "robot-1/*" selects every signal of robot-1)."""

    text: str
    segments: tuple[str, ...]

    def matches(self, path: str) -> bool:
        """Whether a full signal path matches the glob."""
        return _match(self.segments, tuple(path.split("/")))

    def matches_device(self, device_id: str) -> bool:
        """Whether any signal of `device_id` could match (decided by the first segment)."""
        first = self.segments[0]
        return first == "**" or bool(_segment_regex(first).match(device_id))

    def selects_whole_device(self, device_id: str) -> bool:
        """True when every signal of the device matches ("*", "robot-1/*", "**")."""
        segs = self.segments
        if segs == ("**",) or segs == ("*",):
            return True
        return len(segs) == 2 and segs[1] in ("*", "**") and bool(_segment_regex(segs[0]).match(device_id))


def _match(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    # Memoised on (pattern index, path index): tried naively, "**/**/**/x" backtracks exponentially
    # (ten "**" against a 20-segment path took 25 s), and globs come from clients and config files.
    @cache
    def from_(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(path)
        head = pattern[i]
        if head == "**":
            return any(from_(i + 1, k) for k in range(j, len(path) + 1))
        if head == "*" and i == len(pattern) - 1:
            return len(path) - j >= 1
        if j == len(path) or not _segment_regex(head).match(path[j]):
            return False
        return from_(i + 1, j + 1)

    return from_(0, 0)


def compile_glob(text: str) -> PathGlob:
    """Compile a glob or raise InvalidArgument saying what is wrong with it."""
    if not text:
        raise InvalidArgument("empty path glob")
    if len(text) > MAX_GLOB_LENGTH:
        raise InvalidArgument(f"path glob longer than {MAX_GLOB_LENGTH} characters")
    segments = tuple(text.split("/"))
    for segment in segments:
        if not segment:
            raise InvalidArgument(
                f"path glob {text!r} has an empty segment (leading, trailing or double '/')"
            )
        if not _SEGMENT_CHARS.match(segment):
            raise InvalidArgument(
                f"path glob {text!r}: segment {segment!r} may only hold letters, digits, '_', '.', ':', '-' and '*'"
            )
        if "**" in segment and segment != "**":
            raise InvalidArgument(f"path glob {text!r}: '**' must be a whole segment")
    return PathGlob(text, segments)
