"""Angles from one reading per frame (e.g. a motor's position per frame).

A frame's angle is the angle at its first line. Lines get the angle
interpolated at their times (:mod:`.linetimes`) between the frames' times.
Linear interpolation alone would cut every start and stop of a rotation
short by up to a quarter of a frame's motion (several degrees at 200
degrees/s and 30 frames/s), so where the speed changes within one frame
interval (the slopes before and after it differ) the corner is placed where
the straight lines through the two frames on either side meet, if that lies
inside the interval and between the interval's two readings; the motion is
then exact for piecewise constant speeds that hold for two frames or more,
and never leaves the range of the two readings otherwise.

A jump of more than 180 degrees between two frames is taken as the reading
wrapping (360 -> 0) and unwrapped. Every call warns with the largest change
between two frames: a reading per frame cannot know what happened in
between.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DerotationError
from .log import unwrap_degrees

__all__ = ["read_frame_angles", "frame_angles_to_lines", "corner_knots"]


def read_frame_angles(path, n_frames: int) -> np.ndarray:
    """One angle per frame from a ``.npy`` (or text) file, checked."""
    path = Path(path)
    if not path.is_file():
        raise DerotationError(f"frame angles not found: {path}")
    try:
        if path.suffix.lower() == ".npy":
            a = np.load(path, allow_pickle=False)
        else:
            a = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except Exception as exc:
        raise DerotationError(f"cannot read {path.name}: {exc}") from None
    a = np.asarray(a)
    if a.ndim != 1 or a.dtype.kind not in "iuf":
        raise DerotationError(
            f"frame angles {path.name}: expected a 1-D array of numbers; found "
            f"shape {a.shape}, dtype {a.dtype}"
        )
    if len(a) != n_frames:
        raise DerotationError(
            f"frame angles {path.name}: expected one angle per frame, "
            f"{n_frames} (the movie's frames); found {len(a)}"
        )
    if not np.all(np.isfinite(a)):
        raise DerotationError(
            f"frame angles {path.name}: expected finite numbers; found NaN or "
            f"inf at frame {int(np.flatnonzero(~np.isfinite(a))[0])}"
        )
    return a.astype(np.float64)


def corner_knots(t, a) -> tuple[np.ndarray, np.ndarray]:
    """Knots ``(times, angles)`` through the readings plus refined corners."""
    t, a = np.asarray(t, np.float64), np.asarray(a, np.float64)
    if len(t) < 4:
        return t, a
    slope = np.diff(a) / np.diff(t)
    k = np.arange(1, len(t) - 2)  # interval (k, k + 1)
    s_prev, s_next = slope[k - 1], slope[k + 1]
    scale = np.maximum(np.abs(s_prev), np.abs(s_next))
    differ = np.abs(s_prev - s_next) > 1e-3 * np.maximum(scale, 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        tc = (a[k + 1] - a[k] - s_next * t[k + 1] + s_prev * t[k]) / (s_prev - s_next)
    ac = a[k] + s_prev * (tc - t[k])
    lo, hi = np.minimum(a[k], a[k + 1]), np.maximum(a[k], a[k + 1])
    tol = 1e-9 * np.maximum(np.abs(a[k]), 1.0)
    ok = differ & (tc > t[k]) & (tc < t[k + 1]) & (ac >= lo - tol) & (ac <= hi + tol)
    kt = np.concatenate((t, tc[ok]))
    ka = np.concatenate((a, np.clip(ac[ok], lo[ok], hi[ok])))
    order = np.argsort(kt, kind="stable")
    return kt[order], ka[order]


def frame_angles_to_lines(angles, frame_times, line_times, *, name="frame angles"):
    """Per-line and per-frame angles; ``(lines, frames, notes, info)``."""
    a, n_wraps = unwrap_degrees(angles)
    kt, ka = corner_knots(frame_times, a)
    lines = np.interp(np.asarray(line_times, np.float64), kt, ka)
    change = np.abs(np.diff(a))
    notes = []
    if n_wraps:
        notes.append(
            f"{name}: {n_wraps} jumps of more than 180 degrees "
            f"between frames taken as the reading wrapping"
        )
    big = float(change.max()) if change.size else 0.0
    at = int(np.argmax(change)) if change.size else 0
    notes.append(
        f"{name}: one angle per frame cannot know what happened between "
        f"frames; the largest change within one frame is {big:.3g} degrees "
        f"(frame {at} to {at + 1}); lines are interpolated"
    )
    info = {"largest_change_per_frame": big, "corners": int(len(kt) - len(a))}
    return lines, a, notes, info
