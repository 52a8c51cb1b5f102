"""Checks of plain arguments shared by the API, the CLI and configs."""

from __future__ import annotations

import numbers

from .errors import DerotationError

__all__ = ["whole_number"]


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
