"""The per-frame CSV: one row per frame, with the reference's columns.

``frame, rotation_angle, clock, direction, speed, rotation_count``: the
frame's angle (see :mod:`napari_derotation.frames`), the frame clock's
sample, and the direction, speed and index of the rotation the frame belongs
to. Columns that a source does not know (a movie opened with a ready angle
file has no clock) are written empty. ``run`` and the napari Export write
the same file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .atomic import atomic_path

__all__ = ["FRAME_COLUMNS", "frame_table", "write_frame_csv"]

FRAME_COLUMNS = (
    "frame",
    "rotation_angle",
    "clock",
    "direction",
    "speed",
    "rotation_count",
)


def frame_table(angles_per_frame, **columns) -> dict:
    """A per-frame table from one angle per frame; ``columns`` (same length)
    fill the other columns, and those not given are empty."""
    angle = np.asarray(angles_per_frame, np.float64)
    n = angle.size
    table = {"frame": np.arange(n), "rotation_angle": angle}
    for name in FRAME_COLUMNS[2:]:
        table[name] = np.asarray(columns.get(name, np.full(n, np.nan)), np.float64)
    return table


def write_frame_csv(path, table: dict) -> Path:
    """Write a per-frame table as CSV, atomically (NaN written empty)."""

    def cell(name, v):
        v = float(v)
        if np.isnan(v):
            return ""
        if name == "rotation_angle":
            return f"{v:.6f}"
        return str(int(v)) if v.is_integer() else f"{v:g}"

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(FRAME_COLUMNS)
        for row in zip(*(table[c] for c in FRAME_COLUMNS), strict=True):
            w.writerow([cell(c, v) for c, v in zip(FRAME_COLUMNS, row, strict=True)])
    return Path(path)
