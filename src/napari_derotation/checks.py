"""Checks of plain arguments shared by the API, the CLI and configs."""

from __future__ import annotations

import numbers

from .errors import DerotationError

__all__ = ["whole_number", "file_stem"]


def whole_number(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int if it is a whole number >= ``minimum`` (``5`` and
    ``5.0`` are, ``5.5``, ``True`` and ``"5"`` are not), else
    :class:`DerotationError` naming ``name``."""
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and float(value).is_integer() and value >= minimum)
    if not ok:
        raise DerotationError(
            f"{name} must be a whole number >= {minimum}; got {value!r}")
    return int(value)


def file_stem(name: str, value) -> str:
    """``value`` if it is a plain file stem: not empty, no folder separator,
    not ``.``/``..`` and not hidden (so outputs named from it stay in their
    folder and in view), else :class:`DerotationError` naming ``name``."""
    text = str(value)
    bad = None
    if not text.strip():
        bad = "is empty"
    elif "/" in text or "\\" in text or "\0" in text:
        bad = "contains a folder separator"
    elif text.startswith("."):
        bad = "starts with '.' (a hidden file, or a way out of the folder)"
    if bad:
        raise DerotationError(
            f"{name} {bad}; expected a plain file name such as derotated; got "
            f"{text!r}")
    return text
