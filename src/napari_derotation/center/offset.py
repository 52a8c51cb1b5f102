"""The lag between the recorded angle signal and the scanned lines.

On a real rig the angle assigned to each scanned line can be off by a
constant delay: the rotation encoder, the line clock and the acquisition
are sampled by different devices (Hennestad et al. 2021 had to correct
for this). A delay of ``s`` lines turns the sample by ``speed * s`` more or
less than assumed, so frames derotated at different speeds or directions no
longer agree and the mean derotated image blurs.

:func:`estimate_angle_offset` finds the shift (in lines, sub-line) that makes
the derotated movie sharpest, i.e. leaves the least residual motion between
angle-binned mean images (:class:`~napari_derotation.center.ResidualMotion`,
about a fixed centre): a coarse scan over ``[-max_shift_lines,
max_shift_lines]`` followed by a bounded Brent search around the best point.
:func:`shift_angles` applies it.

The shift is only observable while the sample turns at varying speed or in
both directions, or with still frames to compare against: a trace that is
mostly plateaus (stepwise rotation) constrains it weakly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from ..engine import check_angles, check_center, check_movie
from ..errors import Cancelled, DerotationError
from ..frames import delay_angles
from .bayesian import ResidualMotion

__all__ = ["OffsetResult", "estimate_angle_offset", "shift_angles"]


def shift_angles(angles_per_line, shift: float) -> np.ndarray:
    """Angles delayed by ``shift`` lines: ``out[i] = angles[i - shift]``.

    Fractional shifts interpolate linearly between lines (across a wrap at
    +-360 degrees as a continuous turn); beyond either end the first or
    last angle is held. A positive shift means that each line
    was really scanned at the angle recorded ``shift`` lines earlier (the
    angle signal runs ahead of the scan).
    """
    a = np.asarray(angles_per_line, dtype=np.float64)
    if a.ndim != 1:
        raise DerotationError(f"angles_per_line must be 1-D; got shape {a.shape}")
    try:
        s = float(shift)
    except (TypeError, ValueError):
        s = float("nan")
    if not math.isfinite(s):
        raise DerotationError(f"shift must be a finite number of lines; got {shift!r}")
    return delay_angles(a, s)


@dataclass
class OffsetResult:
    """Outcome of :func:`estimate_angle_offset`.

    Attributes
    ----------
    shift : float
        Lines; ``shift_angles(angles, shift)`` gives the sharpest movie.
    objective : float
        Residual motion with that shift.
    shifts, objectives : ndarray
        Every shift tried and its residual motion.
    n_evaluations : int
    elapsed : float
        Seconds.
    """

    shift: float
    objective: float
    shifts: np.ndarray
    objectives: np.ndarray
    n_evaluations: int
    elapsed: float


def estimate_angle_offset(
    movie,
    angles_per_line,
    center=None,
    *,
    max_shift_lines=128.0,
    n_grid=17,
    tolerance=0.25,
    max_frames=64,
    bin_degrees=15.0,
    sigma=1.0,
    progress: Callable | None = None,
) -> OffsetResult:
    """Estimate the constant shift between the angle signal and the lines.

    Parameters
    ----------
    movie : array (frames, rows, cols)
        The raw (rotating) movie; not modified.
    angles_per_line : 1-D array
        The recorded angle of every scanned line, in degrees.
    center : (row, col), optional
        Centre of rotation (find it first); default the frame centre.
    max_shift_lines : float
        Shifts in ``[-max_shift_lines, max_shift_lines]`` are searched.
    n_grid : int
        Points of the coarse scan (odd numbers include 0).
    tolerance : float
        Lines: precision of the final bounded search.
    max_frames, bin_degrees, sigma
        Passed to :class:`~napari_derotation.center.ResidualMotion`.
    progress : callable(done, total) -> bool | None, optional
        Called after each evaluation; returning ``False`` cancels with
        :class:`~napari_derotation.errors.Cancelled`.

    Returns
    -------
    OffsetResult

    Raises
    ------
    DerotationError
        Bad movie, angles or centre, a non-positive ``max_shift_lines``, or a
        movie that does not rotate.
    """
    t0 = time.perf_counter()
    movie = check_movie(movie)
    n, rows, _ = movie.shape
    angles = check_angles(angles_per_line, n * rows, rows)
    center = check_center(center, movie.shape)
    try:
        span = float(max_shift_lines)
    except (TypeError, ValueError):
        span = float("nan")
    if not (math.isfinite(span) and span > 0):
        raise DerotationError(
            f"max_shift_lines must be a positive number; got {max_shift_lines!r}"
        )
    n_grid = max(3, int(n_grid))
    objective = ResidualMotion(
        movie,
        angles,
        region_center=center,
        bin_degrees=bin_degrees,
        max_frames=max_frames,
        sigma=sigma,
    )
    cache: dict[float, float] = {}
    budget = n_grid + 30

    def f(s):
        s = float(s)
        if s not in cache:
            cache[s] = objective(center, shift_angles(angles, s))
            if progress is not None and progress(len(cache), budget) is False:
                raise Cancelled(
                    f"angle offset search cancelled after {len(cache)} evaluations"
                )
        return cache[s]

    grid = np.linspace(-span, span, n_grid)
    values = [f(s) for s in grid]
    k = int(np.argmin(values))
    step = grid[1] - grid[0]
    lo, hi = max(-span, grid[k] - step), min(span, grid[k] + step)
    optimize.minimize_scalar(
        f,
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": float(tolerance), "maxiter": 30},
    )
    shifts = np.array(list(cache.keys()))
    objs = np.array(list(cache.values()))
    i = int(np.argmin(objs))
    return OffsetResult(
        shift=float(shifts[i]),
        objective=float(objs[i]),
        shifts=shifts,
        objectives=objs,
        n_evaluations=len(cache),
        elapsed=time.perf_counter() - t0,
    )
