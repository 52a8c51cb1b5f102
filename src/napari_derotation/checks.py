"""Checks of plain arguments shared by the API, the CLI and configs."""

from __future__ import annotations

import numbers

from .errors import DerotationError

__all__ = ["whole_number", "file_stem"]


def whole_number(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int if it is a whole number >= ``minimum`` (``5`` and
    ``5.0`` are, ``5.5``, ``True`` and ``"5"`` are not), else
    :class:`DerotationError` naming ``name``."""
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and float(value).is_integer()
        and value >= minimum
    )
    if not ok:
        raise DerotationError(
            f"{name} must be a whole number >= {minimum}; got {value!r}"
        )
    return int(value)


#: Bytes a file stem typed by a user may take: file systems allow 255 per
#: name, and outputs add up to ``_angles_per_line.npy`` to it.
MAX_STEM_BYTES = 200


def file_stem(name: str, value) -> str:
    """``value`` if it is a plain file stem, else :class:`DerotationError`
    naming ``name``: the one rule for every name a user types (a config's
    ``saving_name``, the widget's export name), so that the outputs named
    from it stay in their folder and in view: not empty, no folder
    separator, not ``.``/``..`` and not hidden, no control character (a
    newline), and short enough for every file named from it."""
    text = str(value)
    bad = None
    if not text.strip():
        bad = "is empty"
    elif "/" in text or "\\" in text or "\0" in text:
        bad = "contains a folder separator"
    elif text.startswith("."):
        bad = "starts with '.' (a hidden file, or a way out of the folder)"
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        bad = "contains a control character (a newline or a tab)"
    elif text != text.strip():
        bad = "starts or ends with a space"
    elif len(text.encode("utf-8", "surrogateescape")) > MAX_STEM_BYTES:
        bad = (
            f"is {len(text.encode('utf-8', 'surrogateescape'))} bytes long "
            f"(at most {MAX_STEM_BYTES})"
        )
    if bad:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise DerotationError(
            f"{name} {bad}; expected a plain file name such as derotated; got {shown!r}"
        )
    return text
