"""The fields of a config: each says its file key, how a file's value is
converted and what it must be, next to it (see :class:`.config.Config`).

A converter takes a file's value and returns the field's value, or raises
``TypeError``/``ValueError`` saying what it expected (the caller adds the
key and the value); a check takes the converted value and returns what was
expected, or ``None`` when it is fine.
"""

from __future__ import annotations

import math
from dataclasses import field
from pathlib import Path

__all__ = [
    "setting",
    "path_setting",
    "to_path",
    "text",
    "flag",
    "number",
    "whole",
    "numbers",
    "names",
    "mapping",
    "channel",
    "one_of",
    "sign",
]

#: the largest whole number a config may hold (an int64)
MAX_WHOLE = 2**63 - 1


def to_path(value, base=None):
    if not isinstance(value, str | Path):
        raise TypeError("expected a path")
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() or base is None else base / p


def text(value):
    if value is None or isinstance(value, dict | list | tuple):
        raise TypeError("expected a text value")
    return str(value)


def flag(value):
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def number(*, positive=False, nonzero=False, minimum=None):
    need = (
        "a finite number > 0"
        if positive
        else "a finite non-zero number"
        if nonzero
        else f"a finite number >= {minimum:g}"
        if minimum is not None
        else "a finite number"
    )

    def convert(value):
        if isinstance(value, bool) or value is None:
            raise TypeError("expected a number")
        try:
            x = float(value)
        except (OverflowError, ValueError, TypeError):
            raise ValueError(f"expected {need}") from None
        if (
            not math.isfinite(x)
            or (positive and not x > 0)
            or (nonzero and x == 0)
            or (minimum is not None and x < minimum)
        ):
            raise ValueError(f"expected {need}")
        return x

    return convert


def whole(minimum=None):
    need = "a whole number" + ("" if minimum is None else f" >= {minimum}")

    def convert(value):
        if isinstance(value, bool) or value is None:
            raise TypeError(f"expected {need}")
        try:
            ok = float(value) == int(value)
        except (OverflowError, ValueError, TypeError):
            ok = False
        if (
            not ok
            or abs(int(value)) > MAX_WHOLE
            or (minimum is not None and int(value) < minimum)
        ):
            raise ValueError(f"expected {need}")
        return int(value)

    return convert


def numbers(length=None, *, integers=False):
    one = whole() if integers else number()
    need = f"{length} numbers" if length else "a list of numbers"

    def convert(value):
        if hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1:
            value = value.tolist()  # a NumPy vector built in Python
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected {need}")
        if length is not None and len(value) != length:
            raise ValueError(f"expected {need}")
        try:
            return tuple(one(v) for v in value)
        except (TypeError, ValueError):
            kind = "whole" if integers else "finite"
            raise ValueError(f"expected {need}, each {kind}") from None

    return convert


def names(value):
    if not isinstance(value, list | tuple):
        raise TypeError("expected a list")
    return tuple(text(v) for v in value)


def mapping(value):
    if not isinstance(value, dict):
        raise TypeError("expected a mapping of signal to channel name")
    return {str(k): text(v) for k, v in value.items()}


def channel(value):
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError("expected a channel name (.bin) or row number (.npy)")
    return value


def one_of(*options):
    def check(value):
        if value not in options:
            return f"one of {', '.join(map(repr, options))}"
        return None

    return check


def setting(
    key: str, default=None, convert=None, *, check=None, factory=None, path=False
):
    """A config field read from the file key ``key`` (dotted)."""
    meta = {
        "key": tuple(key.split(".")),
        "convert": convert,
        "check": check,
        "path": path,
    }
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def path_setting(key: str):
    """A path, relative to the config's folder; none by default."""
    return setting(key, None, to_path, path=True)


def sign(value):
    """A direction: 1 or -1."""
    return None if value in (-1, 1) else "1 or -1"
