"""Frames of a movie and their angles: one definition of each, used by the
engine, the centre search, the pipeline, the CLI and the plugin.

- A frame's angle is the angle of its **first line** (the line the frame
  clock starts), unless the rotation signals give one per frame.
- A **rotating frame** is one in which some line is more than
  :data:`MIN_ROTATION_DEGREES` from 0 (mod 360): the sample turned during or
  before it. A movie without one has no rotation to correct or to fit.
- An **unturned frame** has every line at exactly 0 degrees: the engine
  copies it as it is.
- The **inscribed disc** about a centre is the largest disc about it inside
  the frame: the region every rotation keeps in view.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_ROTATION_DEGREES", "frame_angles", "rotating_frames",
           "unturned_frames", "wrap_degrees", "disc_mask", "inscribed_radius"]

#: A line more than this many degrees (mod 360) from 0 has turned.
MIN_ROTATION_DEGREES = 1.0


def _per_frame(angles_per_line, n_frames: int, rows: int) -> np.ndarray:
    return np.asarray(angles_per_line, np.float64)[: n_frames * rows].reshape(
        n_frames, rows)


def wrap_degrees(a) -> np.ndarray:
    """Angles wrapped to [-180, 180)."""
    return (np.asarray(a, np.float64) + 180.0) % 360.0 - 180.0


def frame_angles(angles_per_line, n_frames: int, rows: int) -> np.ndarray:
    """One angle per frame: the angle of the frame's first line."""
    return _per_frame(angles_per_line, n_frames, rows)[:, 0].copy()


def rotating_frames(angles_per_line, n_frames: int, rows: int) -> np.ndarray:
    """Indices of the frames with a line more than
    :data:`MIN_ROTATION_DEGREES` from 0 (mod 360)."""
    turned = np.abs(wrap_degrees(_per_frame(angles_per_line, n_frames, rows)))
    return np.flatnonzero(turned.max(axis=1) > MIN_ROTATION_DEGREES)


def unturned_frames(angles_per_line, n_frames: int, rows: int) -> np.ndarray:
    """Boolean per frame: every line at exactly 0 degrees."""
    return ~np.any(_per_frame(angles_per_line, n_frames, rows) != 0, axis=1)


def inscribed_radius(shape, center) -> float:
    """Radius of the largest disc about ``center`` (row, col) inside a frame
    of ``shape`` (..., rows, cols)."""
    rows, cols = shape[-2], shape[-1]
    r, c = center
    return float(min(r, rows - 1 - r, c, cols - 1 - c))


def disc_mask(shape, center, radius=None) -> np.ndarray:
    """Boolean (rows, cols): pixels within ``radius`` of ``center`` (default
    the inscribed radius)."""
    rows, cols = shape[-2], shape[-1]
    if radius is None:
        radius = inscribed_radius(shape, center)
    yy, xx = np.mgrid[:rows, :cols]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius * radius
