"""Exceptions shared by every entry point (API, CLI, napari widgets)."""

from __future__ import annotations


class DerotationError(ValueError):
    """Bad input: says what was expected and what was found.

    A subclass of :class:`ValueError`, so ``except ValueError`` keeps working.
    """


class Cancelled(RuntimeError):
    """Raised when a ``progress`` callback returned ``False``.

    Work stopped before completing; no output was returned or written.
    """
