"""Angles from a motor controller's log of time and angle.

The log is a CSV or TSV file (tab-separated if its header has a tab) with a
header naming at least ``time_column`` (seconds) and ``angle_column``
(degrees, in the sign :func:`napari_derotation.derotate` expects). Times
must strictly increase. A jump of more than 180 degrees between two rows is
the controller wrapping its reading (360 -> 0) and is unwrapped, so the
interpolation never sweeps back through the whole turn. Each line's angle is
the log linearly interpolated at the line's time on the log's clock: the
line's time (:mod:`.linetimes`) plus ``log_offset_s``. Every line must fall
within the log: the log is never extrapolated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DerotationError

__all__ = ["read_log", "interpolate_log", "unwrap_degrees"]


def read_log(path, time_column="time_s", angle_column="angle_deg"):
    """``(times, angles)`` of a CSV/TSV motor log, checked."""
    path = Path(path)
    if not path.is_file():
        raise DerotationError(f"rotation log not found: {path}")
    with open(path, newline="") as fh:
        header = fh.readline()
    delim = "\t" if "\t" in header else ","
    names = [h.strip() for h in header.strip("\r\n").split(delim)]
    missing = [c for c in (time_column, angle_column) if c not in names]
    if missing:
        raise DerotationError(
            f"rotation log {path.name}: expected columns {time_column!r} and "
            f"{angle_column!r} in its header; found {names}"
        )
    cols = (names.index(time_column), names.index(angle_column))
    try:
        data = np.loadtxt(
            path, delimiter=delim, skiprows=1, usecols=cols, ndmin=2, dtype=np.float64
        )
    except ValueError as exc:
        raise DerotationError(
            f"rotation log {path.name}: expected numbers in columns "
            f"{time_column} and {angle_column}: {exc}"
        ) from None
    t, a = data[:, 0], data[:, 1]
    if len(t) < 2:
        raise DerotationError(
            f"rotation log {path.name}: expected at least 2 rows; found {len(t)}"
        )
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(a))):
        raise DerotationError(
            f"rotation log {path.name}: expected finite numbers; found NaN or inf"
        )
    back = np.flatnonzero(np.diff(t) <= 0)
    if back.size:
        i = int(back[0])
        raise DerotationError(
            f"rotation log {path.name}: times must increase; row {i + 3} has "
            f"{time_column} {t[i + 1]:g} after {t[i]:g} ({back.size} such "
            f"rows)"
        )
    return t, a


def unwrap_degrees(angles) -> tuple[np.ndarray, int]:
    """Remove jumps of more than 180 degrees; ``(angles, number of jumps)``."""
    a = np.asarray(angles, np.float64)
    step = np.diff(a)
    jump = np.abs(step) > 180.0
    if not jump.any():
        return a.copy(), 0
    corr = np.zeros(len(a))
    corr[1:][jump] = -360.0 * np.round(step[jump] / 360.0)
    return a + np.cumsum(corr), int(jump.sum())


def interpolate_log(
    t_log, a_log, times, *, offset_s=0.0, name="rotation log", clock="line_clock"
):
    """Log angles at ``times + offset_s``; ``(angles, notes)``.

    Raises :class:`DerotationError` if the lines are not all within the log
    (naming both spans), or do not overlap it at all (the clocks cannot be
    aligned: ``log_offset_s`` is wrong).
    """
    q = np.asarray(times, np.float64) + float(offset_s)
    t0, t1 = float(t_log[0]), float(t_log[-1])
    lo, hi = float(q.min()), float(q.max())
    span = (
        f"the log covers {t0:.6g}-{t1:.6g} s; the lines, on the "
        f"{clock} clock plus log_offset_s {offset_s:g} s, span "
        f"{lo:.6g}-{hi:.6g} s"
    )
    if hi < t0 or lo > t1:
        raise DerotationError(
            f"{name}: cannot align the log's clock with the acquisition: "
            f"{span}, with no overlap; set log.log_offset_s"
        )
    if lo < t0 or hi > t1:
        n_out = int(np.count_nonzero((q < t0) | (q > t1)))
        raise DerotationError(
            f"{name} does not cover the acquisition: {span} ({n_out} lines outside)"
        )
    a, n_wraps = unwrap_degrees(a_log)
    notes = []
    if n_wraps:
        notes.append(
            f"{name}: {n_wraps} jumps of more than 180 degrees "
            f"between rows taken as the reading wrapping"
        )
    return np.interp(q, t_log, a), notes
