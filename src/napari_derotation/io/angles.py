"""Per-line angle files: ``.npy``, ``.csv`` and ``.txt``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DerotationError
from .atomic import atomic_path

__all__ = ["load_angles", "save_angles", "ANGLE_SUFFIXES"]


ANGLE_SUFFIXES = (".npy", ".csv", ".txt")


def load_angles(path) -> np.ndarray:
    """Per-line angles (degrees) from ``.npy``, ``.csv`` or ``.txt``.

    CSV/TXT: one number per line or row, comma or whitespace separated; a
    header row is skipped; with several columns, the one named ``angle`` (or
    ``angles``, ``rotation_angle``, ``angle_deg``) or else the last is used.
    """
    path = Path(path)
    if not path.is_file():
        raise DerotationError(f"angles file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            a = np.load(path, allow_pickle=False)
        elif suffix in (".csv", ".txt"):
            a = _load_text_column(path)
        else:
            raise DerotationError(
                f"angles file {path.name}: expected one of "
                f"{', '.join(ANGLE_SUFFIXES)}; got {suffix or 'no suffix'}"
            )
    except DerotationError:
        raise
    except Exception as exc:
        raise DerotationError(f"cannot read angles from {path.name}: {exc}") from None
    a = np.asarray(a)
    if a.dtype.kind not in "uif":
        raise DerotationError(
            f"angles in {path.name} must be numbers; found dtype {a.dtype}"
        )
    a = np.squeeze(a)
    if a.ndim != 1:
        raise DerotationError(
            f"angles in {path.name} must be 1-D (one per line); found shape {a.shape}"
        )
    return a.astype(np.float64)


def _load_text_column(path: Path) -> np.ndarray:
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        raise DerotationError(f"angles file {path.name} is empty")
    sep = "," if "," in lines[0] else None
    header = [h.strip().lower() for h in lines[0].split(sep)]
    column = len(header) - 1
    try:
        [float(h) for h in header]
        body = lines
    except ValueError:
        body = lines[1:]
        for name in (
            "angle",
            "angles",
            "rotation_angle",
            "angle_deg",
            "angles_per_line",
        ):
            if name in header:
                column = header.index(name)
                break
    values = []
    for n, ln in enumerate(body, start=len(lines) - len(body) + 1):
        parts = ln.split(sep)
        try:
            values.append(float(parts[column]))
        except (ValueError, IndexError):
            raise DerotationError(
                f"{path.name}, line {n}: expected a number in column "
                f"{column + 1}; found {ln!r}"
            ) from None
    return np.asarray(values)


def save_angles(path, angles) -> Path:
    """Write per-line angles as ``.npy`` (or one per line as ``.csv``/``.txt``)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, np.asarray(angles, np.float64))
        else:
            np.savetxt(
                tmp,
                np.asarray(angles, np.float64),
                fmt="%.6f",
                header="angle",
                comments="",
            )
    return path
