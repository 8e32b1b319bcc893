"""What every fuzz target shares: a byte cursor that turns fuzz input into structured choices, and
the atheris entry point.

Targets import this module without atheris installed, so the hypothesis tests in tests/ can call a
target's `one_input` and its oracles directly; atheris is imported only when a target runs as a
fuzzer (`python -m fuzz.fuzz_modbus ...`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
# Packages whose code atheris instruments for coverage feedback (the decoders live here).
OWN_PACKAGES = ("linebridge", "fuzz")


class Cursor:
    """Reads fuzz bytes front to back; past the end every read returns zeros or empty bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        """One byte, 0 when exhausted."""
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def uint(self, size: int) -> int:
        """A big-endian unsigned integer of `size` bytes."""
        return int.from_bytes(self.take(size).ljust(size, b"\x00"), "big")

    def take(self, count: int) -> bytes:
        """Up to `count` bytes."""
        chunk = self.data[self.pos : self.pos + count]
        self.pos += len(chunk)
        return chunk

    def chunk(self) -> bytes:
        """A byte string prefixed by its one-byte length."""
        return self.take(self.byte())

    def text(self) -> str:
        """A length-prefixed chunk decoded as UTF-8 with replacement (any text, never an error)."""
        return self.chunk().decode("utf-8", errors="replace")

    def choice(self, options: Sequence[T]) -> T:
        """One of `options`, picked by the next byte."""
        return options[self.byte() % len(options)]

    def rest(self) -> bytes:
        """Everything not read yet."""
        chunk = self.data[self.pos :]
        self.pos = len(self.data)
        return chunk


def chunked(*parts: bytes) -> bytes:
    """Encode parts the way Cursor.chunk() reads them back (seed helper; parts are cut to 255 bytes)."""
    return b"".join(bytes([len(p[:255])]) + p[:255] for p in parts)


_LOOP: asyncio.AbstractEventLoop | None = None


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on one event loop kept for the whole process (a new loop per input is slow)."""
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
        atexit.register(_LOOP.close)
    return _LOOP.run_until_complete(coro)


def instrumented(module_name: str, *extra: str) -> AbstractContextManager[object]:
    """Instrument the imports inside the `with` block when the module runs as a fuzz target.

    Only the bridge's own packages (and `extra`, e.g. "yaml") are instrumented: instrumenting every
    loaded library takes close to a minute and adds nothing about our decoders.
    """
    if module_name != "__main__":
        return contextlib.nullcontext()
    import atheris

    return atheris.instrument_imports(include=[*OWN_PACKAGES, *extra])


def run(one_input: Callable[[bytes], None], seeds: Callable[[], Iterator[bytes]]) -> None:
    """Hand `one_input` to libFuzzer; argv takes libFuzzer flags and corpus directories."""
    import atheris

    logging.disable(logging.CRITICAL)  # millions of refused inputs would each log a warning
    _seed_corpus(seeds, [a for a in sys.argv[1:] if not a.startswith("-")])
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


def _seed_corpus(seeds: Callable[[], Iterator[bytes]], paths: list[str]) -> None:
    """Write the target's seed inputs into its (first) corpus directory when that is empty."""
    if not paths or not Path(paths[0]).is_dir() or any(Path(paths[0]).iterdir()):
        return
    for index, seed in enumerate(seeds()):
        (Path(paths[0]) / f"seed-{index:03d}").write_bytes(seed)
