"""The delay between the angle signal and the scan, found with the centre.

A delay of ``d`` lines (:attr:`~napari_derotation.engine.params.
DerotationParams.angle_delay`; line ``i`` takes the recorded angle of line
``i - d``) that is not corrected leaves every line turned by about ``omega *
d`` too little or too much, ``omega`` being the speed (degrees per line) at
that line. What the images can tell:

- the derotated frames are compared with each other (the residual motion
  between angle bins, :class:`~napari_derotation.center.ResidualMotion`), so
  only *differences* between the frames' errors ``omega_f * d`` are seen;
- when every frame compared turns at the same speed in the same direction
  (a constant-speed rotation one way, no still frames), every frame is
  turned by the same ``omega * d``: the derotated movie is sharp, only
  turned as a whole, and no measure on the images can tell the delay from
  a rotation offset of the angles (nor does the delay harm anything but
  the output's orientation);
- still frames (``omega = 0``), changes of speed, or both directions make
  the errors differ between frames, and the delay is observable: a delay
  error of ``e`` lines moves points at radius ``R`` of the compared disc
  by up to ``R * (omega_max - omega_min) * e`` (radians) between frames.

:func:`delay_sensitivity` is that displacement per line of delay;
:func:`find_center_and_delay` refuses to report a delay when it is under
:data:`MIN_SENSITIVITY_PX` per line, or when the search does not pin it
down (its uncertainty above ``max_uncertainty`` lines).
:func:`find_center_and_delay` finds the centre and the delay in turn: a
centre search with the delay so far, then a delay search about that centre,
until neither moves (each delay search ends with a parabola through the
objective, whose jackknife over the angle bins gives the uncertainty).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..engine import check_angles, check_center, check_movie
from ..engine.params import DerotationParams
from ..errors import Cancelled, DerotationError
from ..frames import delay_angles, inscribed_radius
from .bayesian import ResidualMotion, find_center_bayesian

__all__ = [
    "DelayResult",
    "find_center_and_delay",
    "estimate_delay",
    "delay_sensitivity",
    "frame_speeds",
    "MIN_SENSITIVITY_PX",
]

#: A delay that moves the compared disc's edge by less than this (pixels)
#: per line between the frames compared is not reported.
MIN_SENSITIVITY_PX = 0.02
#: Error (lines) of the delay that is not noise, added in quadrature to
#: the jackknife (interpolation of the angles and of the images).
SYSTEMATIC_LINES = 0.03


@dataclass
class DelayResult:
    """Outcome of :func:`find_center_and_delay` (and :func:`estimate_delay`,
    which leaves the centre as given).

    Attributes
    ----------
    delay : float
        Lines (``DerotationParams.angle_delay``).
    uncertainty : float
        Standard deviation (lines): a jackknife over the angle bins, and
        :data:`SYSTEMATIC_LINES` in quadrature.
    center : (row, col)
    center_uncertainty : (row, col) or None
        From the last centre search.
    objective : float
        Residual motion with that centre and delay.
    sensitivity : float
        Pixels that one line of delay moves the compared disc's edge
        between the frames compared (:func:`delay_sensitivity`).
    delays, objectives : ndarray
        Every delay tried (in the last delay search) and its objective.
    n_evaluations : int
        Objective evaluations in all (centre and delay searches).
    rounds : int
    elapsed : float
        Seconds.
    """

    delay: float
    uncertainty: float
    center: tuple[float, float]
    center_uncertainty: tuple[float, float] | None
    objective: float
    sensitivity: float
    delays: np.ndarray = field(repr=False)
    objectives: np.ndarray = field(repr=False)
    n_evaluations: int = 0
    rounds: int = 0
    elapsed: float = 0.0

    def to_record(self) -> dict:
        """JSON-ready values: what ``find-center --delay --json`` prints
        (``derotate --params`` reads ``center`` and ``angle_delay``)."""
        return {
            "method": "bayesian",
            "center": [float(v) for v in self.center],
            "uncertainty": None
            if self.center_uncertainty is None
            else [float(v) for v in self.center_uncertainty],
            "angle_delay": float(self.delay),
            "angle_delay_uncertainty": float(self.uncertainty),
            "delay_sensitivity_px_per_line": float(self.sensitivity),
            "objective": float(self.objective),
            "n_evaluations": int(self.n_evaluations),
            "rounds": int(self.rounds),
            "seconds": round(float(self.elapsed), 3),
        }


def frame_speeds(angles_per_line, n_frames: int, rows: int) -> np.ndarray:
    """Median speed (degrees per line, signed) of every frame's lines."""
    a = np.asarray(angles_per_line, np.float64)[: n_frames * rows].reshape(
        n_frames, rows
    )
    if rows < 2:
        return np.zeros(n_frames)
    step = np.diff(a, axis=1)
    step = (step + 180.0) % 360.0 - 180.0
    return np.median(step, axis=1)


def delay_sensitivity(
    angles_per_line, shape, center, frames=None, radius=None
) -> float:
    """Pixels that one line of delay moves points at ``radius`` (default:
    the inscribed disc about ``center``) between the frames (default all)
    that turn fastest one way and the other: ``radius * (max - min of the
    frames' speeds)`` in radians. Near 0 when every frame turns at the same
    speed the same way: the delay is then not observable (see the module
    docstring)."""
    n, rows = int(shape[0]), int(shape[1])
    speeds = frame_speeds(angles_per_line, n, rows)
    if frames is not None:
        speeds = speeds[np.asarray(frames, np.intp)]
    r = inscribed_radius(shape[-2:], center) if radius is None else radius
    spread = float(speeds.max() - speeds.min()) if speeds.size else 0.0
    return float(r * np.deg2rad(spread))


def _refuse_unobservable(sensitivity, speeds) -> None:
    if sensitivity < MIN_SENSITIVITY_PX:
        speed = float(np.median(speeds)) if np.size(speeds) else 0.0
        raise DerotationError(
            "the delay cannot be found from this movie: the frames compared "
            f"all turn at about {speed:.3g} deg/line the same way, so a delay "
            "only turns the whole derotated movie (like an offset of the "
            "angles) and leaves it sharp; it needs still frames, changes of "
            "speed or both directions of rotation (see docs/center.md)"
        )


class _Counter:
    """Evaluations counted against a planned ``budget`` for ``progress``
    (returning ``False`` cancels)."""

    def __init__(self, progress, budget):
        self.progress, self.budget, self.count = progress, budget, 0

    def __call__(self):
        self.count += 1
        if (
            self.progress is not None
            and self.progress(min(self.count, self.budget - 1), self.budget) is False
        ):
            raise Cancelled(f"delay search cancelled after {self.count} evaluations")

    def finish(self):
        if self.progress is not None:
            self.progress(self.budget, self.budget)


def _refuse_uncertain(delay, sd, max_uncertainty) -> None:
    if sd is None or sd > max_uncertainty:
        what = "no clear minimum" if sd is None else f"+- {sd:.2g} lines"
        raise DerotationError(
            f"the delay is not constrained by this movie ({what} about "
            f"{delay:.2f} lines; expected an uncertainty under "
            f"{max_uncertainty:g}): it needs still frames, changes of speed "
            "or both directions of rotation (see docs/center.md)"
        )


def _check_observable(f, angles, shape) -> float:
    """The delay's sensitivity over the frames ``f`` compares; refused
    when too small."""
    frames = f.objective.frames
    sens = delay_sensitivity(
        angles, shape, f.center, frames=frames, radius=f.objective.region_radius
    )
    _refuse_unobservable(sens, frame_speeds(angles, shape[0], shape[1])[frames])
    return sens


class _DelayObjective:
    """The residual motion about a fixed centre as a function of the delay
    (with the jackknife over bins), its evaluations kept."""

    def __init__(
        self,
        movie,
        angles,
        center,
        lines,
        bin_degrees,
        max_frames,
        sigma,
        report,
        params=None,
    ):
        self.angles = angles  # the recorded trace, every line
        self.lines = lines  # the movie's lines in that trace
        self.center = center
        self.objective = ResidualMotion(
            movie,
            self.at(0.0) if lines is not None else angles,
            region_center=center,
            region_margin=3 * sigma,
            bin_degrees=bin_degrees,
            max_frames=max_frames,
            sigma=sigma,
            params=params,
        )
        self.cache: dict[float, tuple[float, np.ndarray]] = {}
        self.report = report

    def at(self, delay: float) -> np.ndarray:
        a = delay_angles(self.angles, delay)
        return a if self.lines is None else a[self.lines]

    def __call__(self, delay: float) -> float:
        d = round(float(delay), 6)
        if d not in self.cache:
            self.cache[d] = self.objective.with_jackknife(self.center, self.at(d))
            if self.report is not None:
                self.report()
        return self.cache[d][0]

    def arrays(self):
        d = np.array(sorted(self.cache))
        return (
            d,
            np.array([self.cache[k][0] for k in d]),
            np.array([self.cache[k][1] for k in d]),
        )


def _parabola_min(x, y):
    """Vertex of the parabola fitted to ``(x, y)``, or None if not convex."""
    if len(x) < 3:
        return None
    c2, c1, _ = np.polyfit(x, y, 2)
    if not c2 > 0:
        return None
    return -c1 / (2 * c2)


def _search_delay(
    f: _DelayObjective, lo: float, hi: float, step: float
) -> tuple[float, float | None]:
    """Coarse grid over [lo, hi] at ``step``, then finer grids down to half a
    line, then a parabola through the points within 1.5 lines of the best:
    ``(delay, jackknife sd or None)``."""
    grid = np.arange(lo, hi + step / 2, step)
    for d in grid:
        f(d)
    while step > 0.5:
        d, v, _ = f.arrays()
        best = d[int(np.argmin(v))]
        step = max(0.5, step / 4)
        for k in range(-4, 5):
            f(best + k * step)
    d, v, loo = f.arrays()
    best = d[int(np.argmin(v))]
    near = np.abs(d - best) <= 1.5 + 1e-9
    vertex = _parabola_min(d[near], v[near])
    if vertex is None or abs(vertex - best) > 1.5:
        return float(best), None
    minima = []
    for column in loo[near].T:
        m = _parabola_min(d[near], column)
        if m is None or abs(m - best) > 3:
            return float(vertex), None
        minima.append(m)
    minima = np.array(minima)
    b = minima.size
    var = (b - 1) / b * np.square(minima - minima.mean()).sum() if b > 2 else np.inf
    return float(vertex), float(math.sqrt(var + SYSTEMATIC_LINES**2))


def _recorded(angles_per_line, lines, n_lines, rows, reach):
    """``(recorded trace, line indices or None)``, checked: the movie's
    lines' angles finite; recorded lines beyond the movie's (up to
    ``reach`` lines) kept when finite, for delays that reach them."""
    recorded = np.asarray(angles_per_line, np.float64)
    if lines is None:
        check_angles(recorded, n_lines, rows)
        keep = n_lines + int(math.ceil(reach)) + 4
        tail = recorded[n_lines:keep]
        return recorded[: keep if np.isfinite(tail).all() else n_lines], None
    idx = np.asarray(lines, np.intp).ravel()
    if idx.size != n_lines:
        raise DerotationError(
            f"lines: expected {n_lines} line indices (frames x rows); got {idx.size}"
        )
    check_angles(recorded[idx], n_lines, rows)
    return recorded, idx


def _check_lines(value, name="max_delay") -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (math.isfinite(v) and v > 0):
        raise DerotationError(
            f"{name} must be a positive number of lines; got {value!r}"
        )
    return v


def estimate_delay(
    movie,
    angles_per_line,
    center=None,
    *,
    max_delay=32.0,
    lines=None,
    max_frames=64,
    bin_degrees=15.0,
    sigma=1.0,
    max_uncertainty=1.0,
    params: DerotationParams | None = None,
    progress: Callable | None = None,
) -> DelayResult:
    """The delay (lines) that leaves the least residual motion about a
    fixed ``center``, searched in ``[-max_delay, max_delay]``; refused
    (:class:`DerotationError`) when the movie cannot constrain it (see the
    module docstring). ``lines``: the movie's lines' indices in
    ``angles_per_line`` (for one plane of a multi-plane recording; default
    the first ``frames * rows``)."""
    return find_center_and_delay(
        movie,
        angles_per_line,
        initial=center,
        fit_center=False,
        max_delay=max_delay,
        lines=lines,
        max_frames=max_frames,
        bin_degrees=bin_degrees,
        sigma=sigma,
        max_uncertainty=max_uncertainty,
        params=params,
        progress=progress,
    )


def find_center_and_delay(
    movie,
    angles_per_line,
    *,
    initial=None,
    search_radius=10.0,
    n_calls=30,
    max_delay=32.0,
    delay=0.0,
    lines=None,
    max_rounds=4,
    fit_center=True,
    max_frames=64,
    bin_degrees=15.0,
    sigma=1.0,
    max_uncertainty=1.0,
    params: DerotationParams | None = None,
    progress: Callable | None = None,
) -> DelayResult:
    """Find the centre of rotation and the angle delay in turn.

    Parameters
    ----------
    movie : array (frames, rows, cols)
        The raw (rotating) movie; not modified.
    angles_per_line : 1-D array
        The recorded angle of every scanned line (degrees).
    initial, search_radius, n_calls
        The first centre search (:func:`~napari_derotation.center.
        find_center_bayesian`); later rounds search within 2 px of the
        centre found. With ``fit_center=False`` the centre stays
        ``initial`` (default the frame centre).
    max_delay : float
        The first delay search covers ``[delay - max_delay, delay +
        max_delay]`` lines; later ones 3 lines about the delay found.
    delay : float
        Where the delay search starts (lines).
    lines : array of int, optional
        The movie's lines' indices in ``angles_per_line`` (one plane of a
        multi-plane recording); default the first ``frames * rows``.
    max_rounds : int
        Centre and delay searches, in turn, until the centre moves by less
        than 0.02 px and the delay by less than 0.1 line, or this many.
    max_uncertainty : float
        Lines: a delay less certain than this is refused.
    params : DerotationParams, optional
        How candidates are derotated (a tilted plane, the interpolation);
        its centre and delay are ignored (``initial``, ``delay``).
    progress : callable(done, total) -> bool | None, optional
        Returning ``False`` cancels (:class:`~napari_derotation.errors.
        Cancelled`).

    Raises
    ------
    DerotationError
        Bad inputs; a movie that does not rotate; a delay the movie cannot
        constrain (every frame at the same speed the same way, or an
        uncertainty above ``max_uncertainty``), saying why.
    """
    t0 = time.perf_counter()
    movie = check_movie(movie)
    n, rows, cols = movie.shape
    span = _check_lines(max_delay)
    recorded, lines_idx = _recorded(
        angles_per_line, lines, n * rows, rows, span + abs(float(delay))
    )
    d0 = float(delay)
    centre = check_center(initial, movie.shape)
    params = (params or DerotationParams()).replace(center=None, angle_delay=0.0)
    tick = _Counter(progress, (n_calls + 40) * (2 if fit_center else 1) + 20)

    def movie_angles(d):
        a = delay_angles(recorded, d)
        return a[lines_idx] if lines_idx is not None else a[: n * rows]

    centre_sd = None
    result = None
    radius, calls = float(search_radius), int(n_calls)
    for rnd in range(1, max(1, int(max_rounds)) + 1):
        moved = 0.0
        if fit_center:
            res = find_center_bayesian(
                movie,
                movie_angles(d0),
                initial=centre,
                search_radius=radius,
                n_calls=calls,
                max_frames=max_frames,
                bin_degrees=bin_degrees,
                sigma=sigma,
                params=params,
                progress=lambda done, total: tick(),
            )
            moved = math.hypot(res.center[0] - centre[0], res.center[1] - centre[1])
            centre, centre_sd = res.center, res.uncertainty
            radius, calls = min(radius, 2.0), max(16, calls * 2 // 3)
        f = _DelayObjective(
            movie,
            recorded,
            centre,
            lines_idx,
            bin_degrees,
            max_frames,
            sigma,
            tick,
            params,
        )
        if rnd == 1:
            sens = _check_observable(f, movie_angles(d0), movie.shape)
            lo, hi, step = d0 - span, d0 + span, max(1.0, span / 8)
        else:
            lo, hi, step = d0 - 3.0, d0 + 3.0, 1.0
        d1, sd = _search_delay(f, lo, hi, step)
        shift, d0 = abs(d1 - d0), d1
        result = (d1, sd, f)
        if not fit_center or (rnd > 1 and moved < 0.02 and shift < 0.1):
            break
    d1, sd, f = result
    _refuse_uncertain(d1, sd, max_uncertainty)
    delays, values, _ = f.arrays()
    tick.finish()
    return DelayResult(
        delay=d1,
        uncertainty=sd,
        center=(float(centre[0]), float(centre[1])),
        center_uncertainty=centre_sd,
        objective=float(f(d1)),
        sensitivity=sens,
        delays=delays,
        objectives=values,
        n_evaluations=tick.count,
        rounds=rnd,
        elapsed=time.perf_counter() - t0,
    )
