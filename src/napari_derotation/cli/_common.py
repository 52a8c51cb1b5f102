"""Helpers shared by the subcommands: progress on stderr, argument types."""

from __future__ import annotations

import sys
import time

from ..errors import DerotationError


class Progress:
    """A one-line progress bar on stderr: ``progress(done, total)``."""

    def __init__(self, desc: str, stream=None, width: int = 30,
                 unit: str | None = "/s"):
        self.desc = desc
        self.unit = unit
        self.stream = stream or sys.stderr
        self.width = width
        self.t0 = time.perf_counter()
        self._last = -1.0

    def __call__(self, done: int, total: int):
        now = time.perf_counter()
        if done < total and now - self._last < 0.1:
            return None
        self._last = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * self.width)
        end = "\n" if done >= total else ""
        if self.unit:
            rate = done / max(now - self.t0, 1e-9)
            count = f"{done}/{total} ({rate:.0f}{self.unit})"
        else:
            count = f"{100 * frac:.0f}%"
        self.stream.write(f"\r{self.desc}: [{bar:<{self.width}}] {count}{end}")
        self.stream.flush()
        return None


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise DerotationError(f"expected a whole number; got {text!r}") from None
    if v < 1:
        raise DerotationError(f"expected a number >= 1; got {v}")
    return v
