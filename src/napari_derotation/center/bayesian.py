"""Find the centre of rotation by a Bayesian search over sub-pixel centres.

With the right centre, a stationary sample looks the same in every derotated
frame; with a centre ``e`` pixels off, the frame derotated from angle
``theta`` is displaced by ``|R(theta) - I| e = 2 |e| sin(theta / 2)``, so the
sample seen at different angles disagrees. :class:`ResidualMotion` measures
that disagreement cheaply and robustly:

1. frames are grouped by their angle (bins of ``bin_degrees``, modulo 360)
   and at most ``max_frames`` of them, spread over the bins, are kept;
2. for a candidate centre, only those frames are derotated and averaged per
   bin (one mean image per angle bin, missing pixels left out);
3. each bin image is lightly smoothed, normalised (zero mean, unit variance
   inside a disc that every candidate centre covers at every angle) and the
   objective is the fraction of their variance not shared by all bins:
   ``sum_b |Z_b - mean(Z)|^2 / sum_b |Z_b|^2``, 0 when every bin agrees.

Normalising each bin makes the measure insensitive to brightness changes
between bins (bleaching, activity, an offset). Unlike the reference's blob
peak-to-peak, it needs no blob to be detected and is a smooth function of a
continuous centre, which the Gaussian-process search exploits.

:func:`find_center_bayesian` minimises it inside ``search_radius`` pixels
of ``initial`` in named steps: an initial design (``initial`` and a Latin
hypercube), a Gaussian-process search with expected improvement
(:class:`~napari_derotation.center._gp.BoxGP`, numpy only: importing
scikit-optimize took longer than the search), and a polish, a hexagon
pattern search ending at the minimum of a local quadratic fit. The spread of
that minimum over the objective without each angle bin in turn gives
:attr:`CenterResult.uncertainty`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..engine import (
    check_center,
    check_movie,
    default_center,
    derotate_into,
)
from ..engine._driver import line_angles
from ..engine.params import DerotationParams
from ..errors import Cancelled, DerotationError
from ..frames import (
    MIN_ROTATION_DEGREES,
    delay_angles,
    disc_mask,
    inscribed_radius,
)
from ._gp import BoxGP, latin_hypercube

__all__ = [
    "ResidualMotion",
    "CenterResult",
    "find_center_bayesian",
    "MIN_ROTATION_DEGREES",
]


class ResidualMotion:
    """Residual motion left in a movie derotated about a given centre.

    Calling the object with a centre ``(row, col)`` returns the disagreement
    between angle-binned mean images of the derotated frames (0 when all
    angles agree; about ``1 - 1/n_bins`` when they are unrelated).

    Parameters
    ----------
    movie : array (frames, rows, cols)
        The raw movie (not modified; only the selected frames are read).
    angles_per_line : 1-D array
        Angle in degrees of every scanned line.
    region_center : (row, col), optional
        Centre of the disc in which bins are compared; default the frame
        centre.
    region_margin : float
        The disc's radius is the largest that fits in the frame about
        ``region_center`` minus this margin (pixels), so that every candidate
        centre within about ``region_margin / 2`` of it covers the disc at
        every angle.
    bin_degrees : float
        Width of the angle bins.
    max_frames : int
        Frames derotated per evaluation, spread evenly over the bins.
    sigma : float
        Gaussian smoothing (pixels) of the bin images before comparing them.
    frames : sequence of int, optional
        Only consider these frames.
    params : DerotationParams, optional
        How candidates are derotated but for their centre and fill: a
        tilted rotation plane (e.g. from the ellipse fit), the
        interpolation; the field keywords apply when given.

    Raises
    ------
    DerotationError
        When the movie does not rotate (every angle within
        :data:`MIN_ROTATION_DEGREES` of 0, or fewer than two angle bins).
    """

    def __init__(
        self,
        movie,
        angles_per_line,
        *,
        region_center=None,
        region_margin=0.0,
        bin_degrees=15.0,
        max_frames=64,
        sigma=1.0,
        frames=None,
        params: DerotationParams | None = None,
        **overrides,
    ):
        movie = check_movie(movie)
        n, rows, cols = movie.shape
        given = DerotationParams.build(params, **overrides)
        self._delay = given.angle_delay
        # the delay is applied to the whole trace, before frames are picked
        # (line_angles); the picked frames are then derotated without it
        angles, given = line_angles(angles_per_line, movie.shape, given)
        if not bin_degrees > 0:
            raise DerotationError(f"bin_degrees must be > 0; got {bin_degrees}")
        if int(max_frames) < 2:
            raise DerotationError(f"max_frames must be >= 2; got {max_frames}")
        candidates = (
            np.arange(n)
            if frames is None
            else np.unique(np.asarray(frames, dtype=np.intp))
        )
        if candidates.size and (candidates[0] < 0 or candidates[-1] >= n):
            raise DerotationError(
                f"frames must be in [0, {n - 1}]; got {candidates[0]} to "
                f"{candidates[-1]}"
            )
        per_line = angles.reshape(n, rows)[candidates]
        if candidates.size == 0 or np.abs(per_line).max() < MIN_ROTATION_DEGREES:
            top = float(np.abs(per_line).max()) if candidates.size else 0.0
            raise DerotationError(
                "the movie does not rotate: expected angles beyond "
                f"+-{MIN_ROTATION_DEGREES:g} degrees; the largest is {top:g}"
            )
        fa = np.mod(per_line[:, rows // 2], 360.0)
        nb = max(2, int(round(360.0 / bin_degrees)))
        bins = np.floor(fa / (360.0 / nb) + 0.5).astype(np.intp) % nb
        used = np.unique(bins)
        if used.size < 2:
            raise DerotationError(
                "the movie's frames all have about the same angle "
                f"({float(np.median(fa)):.1f} degrees): expected frames at two "
                f"or more angles at least {360.0 / nb:g} degrees apart"
            )
        per_bin = max(1, int(max_frames) // used.size)
        chosen, labels = [], []
        for k, b in enumerate(used):
            members = candidates[bins == b]
            if members.size > per_bin:
                pick = np.linspace(0, members.size - 1, per_bin).round()
                members = members[pick.astype(np.intp)]
            chosen.append(members)
            labels.append(np.full(members.size, k, np.intp))
        # frames sorted by bin, so that bin sums are contiguous reductions
        self.frames = np.concatenate(chosen)
        labels = np.concatenate(labels)
        self.n_bins = int(used.size)
        self.bin_angles = used * (360.0 / nb)
        edges = np.searchsorted(labels, np.arange(self.n_bins + 1))
        self._bounds = list(zip(edges[:-1], edges[1:], strict=True))
        self._counts = np.bincount(labels, minlength=self.n_bins).astype(np.float32)[
            :, None, None
        ]
        self._out = None  # derotated frames, reused by every call
        self.movie = np.ascontiguousarray(movie[self.frames], dtype=np.float32)
        self.angles = angles.reshape(n, rows)[self.frames].ravel()
        self.shape = (rows, cols)
        rc = check_center(region_center, movie.shape)
        inscribed = inscribed_radius(self.shape, rc)
        self.region_radius = max(
            inscribed - float(region_margin), 0.35 * inscribed, 2.0
        )
        mask = disc_mask(self.shape, rc, self.region_radius)
        rr, cc = np.nonzero(mask)
        pad = int(math.ceil(3 * sigma)) + 1
        self._box = (
            slice(max(rr.min() - pad, 0), min(rr.max() + pad + 1, rows)),
            slice(max(cc.min() - pad, 0), min(cc.max() + pad + 1, cols)),
        )
        self._mask = mask[self._box]
        self.flat_calls = 0  # calls that found no contrast at all
        self.contrast = _contrast_note(
            movie.dtype, self.movie[(slice(None),) + self._box][:, self._mask]
        )
        self.sigma = float(sigma)
        # the centre and the fill are the search's own: NaN marks a pixel a
        # frame did not cover
        self.params = given.replace(center=None, fill_value=np.nan)

    def bin_images(self, center, angles_per_line=None) -> np.ndarray:
        """Mean derotated image of every angle bin (inside the compared
        region's bounding box; NaN where a frame did not cover a pixel).

        ``angles_per_line`` (for the whole movie) replaces the angles given
        at construction; the frames and bins stay the same.
        """
        angles = self.angles
        if angles_per_line is not None:
            rows = self.shape[0]
            if self._delay:
                angles_per_line = delay_angles(angles_per_line, self._delay)
            angles = np.asarray(angles_per_line, np.float64)[
                (self.frames[:, None] * rows + np.arange(rows)).ravel()
            ]
        if self._out is None:
            self._out = np.empty_like(self.movie)
        derotate_into(self.movie, angles, center, self._out, params=self.params)
        box = self._out[(slice(None),) + self._box]
        # a pixel that a frame missed is NaN in its bin's sum
        mean = np.empty((self.n_bins,) + box.shape[1:], np.float32)
        for i, (a, b) in enumerate(self._bounds):
            np.sum(box[a:b], axis=0, out=mean[i])
        mean /= self._counts
        missing = np.isnan(mean).any(axis=0)
        if missing.any():
            mean[:, missing] = np.nan  # compare only pixels every frame has
        return mean

    def __call__(self, center, angles_per_line=None) -> float:
        return self.with_jackknife(center, angles_per_line)[0]

    def with_jackknife(self, center, angles_per_line=None):
        """The objective at ``center`` and, for every bin, the objective
        without that bin (an array of ``n_bins``; what the centre's
        uncertainty is estimated from, at no extra derotation).

        With every bin image ``Z_b`` normalised to ``|Z_b|^2 = P`` (pixels
        compared), the objective is ``1 - |S|^2 / (B^2 P)`` for ``S`` the
        sum of the ``B`` bins, so leaving bin ``b`` out only needs
        ``S . Z_b``.
        """
        img = self.bin_images(center, angles_per_line)
        missing = np.isnan(img[0])  # the same pixels in every bin
        if missing.any():
            # uncovered pixels (outside the compared disc unless the search
            # strays far) take their bin's mean, so smoothing cannot spread NaN
            img[:, missing] = img[:, ~missing].mean(axis=1)[:, None]
        if self.sigma > 0:
            img = ndimage.gaussian_filter(img, (0, self.sigma, self.sigma), output=img)
        z = img[:, self._mask & ~missing].astype(np.float64)
        b, n = z.shape
        if n < 16:
            return 1.0, np.ones(b)
        level = np.abs(z.mean(axis=1))
        z -= z.mean(axis=1, keepdims=True)
        sd = np.sqrt(np.einsum("ij,ij->i", z, z) / n)
        # a bin without contrast (rounding aside) compares as zeros
        sd[sd <= 1e-6 * np.maximum(level, 1.0)] = np.inf
        z /= np.maximum(sd, 1e-12)[:, None]
        total = z.sum(axis=0)  # S
        norms = np.einsum("ij,ij->i", z, z)  # |Z_b|^2
        if not norms.sum() > 0:
            # no bin has contrast (a saturated or constant region): nothing
            # to compare, the worst value rather than 0 / 0
            self.flat_calls += 1
            return 1.0, np.ones(b)
        value = (norms.sum() - total @ total / b) / norms.sum()
        if b < 2:
            return float(value), np.ones(1)
        rest = total @ total - 2 * (z @ total) + norms  # |S - Z_b|^2
        kept = norms.sum() - norms
        loo = 1.0 - rest / np.maximum((b - 1) * kept, 1e-300)
        return float(value), loo


#: Shares of saturated or constant pixels in the compared region above
#: which the search warns that the movie shows little of its centre, and
#: refuses to search (what it would find is noise).
FLAT_SHARE_WARNING = 0.5
FLAT_SHARE_REFUSE = 0.9


def _contrast_note(dtype, region) -> tuple[float, str]:
    """The share of the compared region's pixels (``region``: frames x
    pixels) that are saturated (at the integer dtype's largest value) or
    constant over the frames, and a sentence saying it."""
    if region.size == 0:
        return 0.0, ""
    constant = region.max(axis=0) == region.min(axis=0)
    parts = []
    flat = constant
    if np.dtype(dtype).kind in "ui":
        top = np.iinfo(dtype).max
        saturated = (region >= top).mean(axis=0) > 0.5
        flat = constant | saturated
        parts.append(
            f"{100 * saturated.mean():.0f}% of the compared pixels "
            f"are saturated (at {top})"
        )
    parts.append(
        f"{100 * constant.mean():.0f}% are constant over the frames"
        if parts
        else f"{100 * constant.mean():.0f}% of the compared pixels are "
        f"constant over the frames"
    )
    return float(flat.mean()), " and ".join(parts)


def _check_contrast(objective, start, calls=None) -> None:
    """Refuse a compared region that is mostly saturated or constant
    (before the search), or one where no call found contrast (after it,
    ``calls`` made); warn when more than half of it is."""
    share, note = objective.contrast
    where = (
        f"(radius {objective.region_radius:.0f} px about ({start[0]:g}, {start[1]:g}))"
    )
    if calls is None:
        if share >= FLAT_SHARE_REFUSE:
            raise DerotationError(
                f"the movie has too little contrast to "
                f"find the centre with: {note} {where}"
            )
        return
    if objective.flat_calls == calls:
        raise DerotationError(
            f"the movie has no contrast to find the centre with: {note} {where}"
        )
    if share > FLAT_SHARE_WARNING:
        warnings.warn(f"the centre may be poorly defined: {note}", stacklevel=3)


@dataclass
class CenterResult:
    """Outcome of :func:`find_center_bayesian`.

    Attributes
    ----------
    center : (row, col)
        The centre of rotation found.
    objective : float
        Residual motion at ``center`` (see :class:`ResidualMotion`).
    centers : ndarray (n, 2)
        Every evaluated centre, in evaluation order.
    objectives : ndarray (n,)
        The objective at each of them.
    n_evaluations : int
        Number of objective evaluations.
    n_frames : int
        Frames derotated per evaluation.
    initial : (row, col)
        Where the search started.
    search_radius : float
        Half-width (pixels) of the box searched around ``initial``.
    elapsed : float
        Seconds taken.
    uncertainty : (row, col) or None
        Standard deviation (pixels) of ``center`` in row and in col: the
        noise in the movie, by a jackknife over the angle bins of the
        quadratic fitted in the last polish round, and
        :data:`SYSTEMATIC_PX` in quadrature. None without a polish round
        (``polish=False``, too small a budget, or no convex bowl).
    """

    center: tuple[float, float]
    objective: float
    centers: np.ndarray
    objectives: np.ndarray
    n_evaluations: int
    n_frames: int
    initial: tuple[float, float]
    search_radius: float
    elapsed: float = 0.0
    uncertainty: tuple[float, float] | None = None

    def to_record(self) -> dict:
        """The result as JSON-ready values: what ``find-center --json``
        prints and a ``run`` record keeps under ``center.search``."""
        return {
            "method": "bayesian",
            "center": [float(v) for v in self.center],
            "uncertainty": None
            if self.uncertainty is None
            else [float(v) for v in self.uncertainty],
            "objective": float(self.objective),
            "n_evaluations": int(self.n_evaluations),
            "n_frames": int(self.n_frames),
            "initial": [float(v) for v in self.initial],
            "search_radius": float(self.search_radius),
            "seconds": round(float(self.elapsed), 3),
        }


def _quadratic_minimum(points, values, best, radius):
    """Minimum of a quadratic fitted to the evaluations within ``radius`` of
    ``best``, or None when they do not determine a convex bowl there."""
    d = points - best
    near = np.hypot(d[:, 0], d[:, 1]) <= radius
    if near.sum() < 7:
        return None
    x, y, v = d[near, 0], d[near, 1], values[near]
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
    coef, _, rank, _ = np.linalg.lstsq(design, v, rcond=None)
    if rank < 6:
        return None
    h = np.array([[2 * coef[3], coef[4]], [coef[4], 2 * coef[5]]])
    if np.any(np.linalg.eigvalsh(h) <= 0):
        return None
    step = np.linalg.solve(h, -coef[1:3])
    if np.hypot(*step) > radius:
        return None
    return best + step


#: Error (pixels, per coordinate) of the objective's minimum that is not
#: noise: on simulated movies without noise it lies up to ~0.02 px from the
#: true centre (interpolation in the derotation and the simulation).
SYSTEMATIC_PX = 0.01

#: Evaluations kept for the final local refinement (see find_center_bayesian).
POLISH_CALLS = 14
#: Radius (pixels) of the first hexagon of probes around the best centre.
POLISH_STEP = 1.0
#: The polish stops once its hexagon's radius would fall below this (pixels)
POLISH_MIN_STEP = 0.2
#: ... or once the quadratic's minimum is this close (in hexagon radii) to
#: the hexagon's centre, which beat every vertex: well inside the hexagon,
#: where the quadratic interpolates (the next, halved round then moved the
#: result by less than the noise on the simulated movies)
POLISH_CONVERGED = 0.6


class _Search:
    """The evaluations of one search: its box, budget and progress report."""

    def __init__(self, objective, lo, hi, n_calls, progress, on_best=None):
        self.objective = objective
        self.lo, self.hi = lo, hi
        self.n_calls = n_calls
        self.progress = progress
        self.on_best = on_best
        self.xs: list[list[float]] = []
        self.ys: list[float] = []
        self.loo: list[np.ndarray] = []  # objectives leaving one bin out
        self.model = None  # the Gaussian process told of them
        self.fit = None  # (best, radius) of the last quadratic

    def evaluate(self, x) -> None:
        x = [
            float(min(max(x[0], self.lo[0]), self.hi[0])),
            float(min(max(x[1], self.lo[1]), self.hi[1])),
        ]
        y, loo = self.objective.with_jackknife(x)
        self.xs.append(x)
        self.ys.append(y)
        self.loo.append(loo)
        if self.model is not None:
            self.model.tell(x, y)
        best = self.xs[int(np.argmin(self.ys))]
        if self.on_best is not None:
            self.on_best((best[0], best[1]))
        if (
            self.progress is not None
            and self.progress(len(self.xs), self.n_calls) is False
        ):
            raise Cancelled(
                f"centre search cancelled after {len(self.xs)} of "
                f"{self.n_calls} evaluations"
            )

    @property
    def left(self) -> int:
        return self.n_calls - len(self.xs)

    def arrays(self):
        return np.array(self.xs), np.array(self.ys)


def _check_search(shape, initial, search_radius, n_calls):
    """Validated ``(initial, radius, n_calls)``."""
    r0, c0 = check_center(
        initial if initial is not None else default_center(shape), shape
    )
    try:
        radius = float(search_radius)
    except (TypeError, ValueError):
        radius = float("nan")
    if not (math.isfinite(radius) and radius > 0):
        raise DerotationError(
            f"search_radius must be a positive number of pixels; got {search_radius!r}"
        )
    n_calls = int(n_calls)
    if n_calls < 3:
        raise DerotationError(f"n_calls must be >= 3; got {n_calls}")
    return (r0, c0), radius, n_calls


def _initial_design(search, start, n_init, rng) -> None:
    """Evaluate ``start``, then ``n_init`` Latin-hypercube points of the box."""
    search.evaluate(start)
    span = search.hi - search.lo
    for u in latin_hypercube(n_init, rng):
        search.evaluate(search.lo + u * span)


def _gp_search(search, n_steps) -> None:
    """``n_steps`` evaluations, each where the Gaussian process fitted to
    all before it expects the largest improvement."""
    for _ in range(n_steps):
        search.evaluate(search.model.ask())


def _polish(search) -> None:
    """Spend at most what is left of the budget on a hexagon pattern search
    around the best centre (probes already evaluated are reused). Each round
    ends at the minimum of the quadratic through the hexagon and its centre;
    when the centre beat its hexagon the hexagon is halved, and when that
    minimum is also within :data:`POLISH_CONVERGED` of the radius from the
    centre the search has converged and stops."""
    step = POLISH_STEP
    while search.left > 0:
        pts, vals = search.arrays()
        best = pts[int(np.argmin(vals))]
        # (clipped to the box first: at its edge, vertices outside it would
        # all be evaluated on the edge)
        probes = [
            np.clip(
                best + step * np.array([np.cos(a), np.sin(a)]), search.lo, search.hi
            )
            for a in np.arange(6) * np.pi / 3
        ]
        probes = [
            p
            for i, p in enumerate(probes)
            if np.hypot(*(pts - p).T).min() > 0.25 * step
            and all(np.hypot(*(q - p)) > 0.25 * step for q in probes[:i])
        ]
        if len(probes) > search.left:
            break
        for p in probes:
            search.evaluate(p)
        moved = min(search.ys) < vals.min()  # a vertex beat the centre
        if search.left <= 0:
            break
        pts, vals = search.arrays()
        guess = _quadratic_minimum(pts, vals, best, 1.2 * step)
        if guess is not None:
            search.fit = (best, 1.2 * step)
            search.evaluate(guess)
            if not moved and np.hypot(*(guess - best)) < POLISH_CONVERGED * step:
                break
        if not moved:
            step *= 0.5
            if step < POLISH_MIN_STEP:
                break


def _uncertainty(search):
    """Row and col sd of the centre: a jackknife over the angle bins.

    The last polish round's quadratic is refitted to the objective without
    each bin in turn (same evaluations); the spread of those minima,
    ``(B - 1) / B * sum (m_b - mean)^2``, estimates how much the noise in
    the bins moves the minimum. :data:`SYSTEMATIC_PX` is added in
    quadrature for what noise does not explain. None without a polish
    round, with fewer than three bins, or when a refit is not a convex bowl.
    """
    loo = np.array(search.loo)
    if search.fit is None or loo.shape[1] < 3:
        return None
    pts = np.array(search.xs)
    best, radius = search.fit
    minima = []
    for column in loo.T:
        m = _quadratic_minimum(pts, column, best, radius)
        if m is None:
            return None
        minima.append(m)
    minima = np.array(minima)
    b = len(minima)
    var = (b - 1) / b * np.square(minima - minima.mean(axis=0)).sum(axis=0)
    var += SYSTEMATIC_PX**2
    return (float(np.sqrt(var[0])), float(np.sqrt(var[1])))


def find_center_bayesian(
    movie,
    angles_per_line,
    *,
    initial=None,
    search_radius=10.0,
    n_calls=30,
    n_initial_points=8,
    max_frames=64,
    bin_degrees=15.0,
    sigma=1.0,
    polish=True,
    random_state=0,
    params: DerotationParams | None = None,
    progress: Callable | None = None,
    on_best: Callable | None = None,
    **overrides,
) -> CenterResult:
    """Search the centre of rotation that leaves the least residual motion.

    Parameters
    ----------
    movie : array (frames, rows, cols)
        The raw (rotating) movie; not modified.
    angles_per_line : 1-D array
        Angle in degrees of every scanned line (as for
        :func:`~napari_derotation.derotate`).
    initial : (row, col), optional
        Where the search starts and around which it stays; default the frame
        centre ``(rows // 2, cols // 2)``.
    search_radius : float
        Centres within this many pixels of ``initial`` (in row and in col)
        are searched, at sub-pixel resolution.
    n_calls : int
        Objective evaluations in all (each derotates at most ``max_frames``
        frames). The first is ``initial``, the next ``n_initial_points`` are
        spread over the search box (Latin hypercube), then a Gaussian
        process with expected improvement picks each next centre.
    max_frames, bin_degrees, sigma
        Passed to :class:`ResidualMotion`.
    polish : bool
        Keep the last evaluations (up to :data:`POLISH_CALLS`) for a local
        refinement: a hexagon pattern search from the best centre (radius
        :data:`POLISH_STEP`, halved after each success), each round ending
        at the minimum of a quadratic fitted to the hexagon. It may stop
        before ``n_calls`` when converged.
    random_state : int
        Seed of the search (results are reproducible).
    params : DerotationParams, optional
        How each candidate is derotated, but for its centre and fill (the
        rotation plane, the interpolation): the search corrects a tilted
        plane as the derotation will. The field keywords (``plane_tilt``,
        ``plane_orientation``, ...) apply when given, as in
        :func:`~napari_derotation.derotate`.
    progress : callable(done, total) -> bool | None, optional
        Called after each evaluation with the number done and the number
        planned; returning ``False`` cancels the search with
        :class:`~napari_derotation.errors.Cancelled`.
    on_best : callable((row, col)), optional
        Called after each evaluation with the best centre so far (the
        widget moves its point with it).

    Returns
    -------
    CenterResult

    Raises
    ------
    DerotationError
        Bad movie, angles or ``initial``; a non-positive ``search_radius``
        or ``n_calls``; a movie that does not rotate.
    Cancelled
        When ``progress`` returned ``False``.
    """
    t0 = time.perf_counter()
    movie = check_movie(movie)
    (r0, c0), radius, n_calls = _check_search(
        movie.shape, initial, search_radius, n_calls
    )
    rows, cols = movie.shape[1:]
    lo = np.array([max(0.0, r0 - radius), max(0.0, c0 - radius)])
    hi = np.array([min(rows - 1.0, r0 + radius), min(cols - 1.0, c0 + radius)])
    objective = ResidualMotion(
        movie,
        angles_per_line,
        region_center=(r0, c0),
        region_margin=2 * math.sqrt(2) * radius + 3 * sigma,
        bin_degrees=bin_degrees,
        max_frames=max_frames,
        sigma=sigma,
        params=DerotationParams.build(params, **overrides),
    )
    _check_contrast(objective, (r0, c0))
    n_polish = min(POLISH_CALLS, n_calls // 2) if polish else 0
    if n_polish < 7:  # too few for one hexagon and its quadratic
        n_polish = 0
    # at small budgets, leave the Gaussian process half of the global search
    n_init = int(
        min(max(2, n_initial_points), n_calls - 1, max(2, (n_calls - n_polish) // 2))
    )
    n_gp = max(0, n_calls - n_polish - 1 - n_init)
    search = _Search(objective, lo, hi, n_calls, progress, on_best)
    search.model = BoxGP(np.stack([lo, hi], axis=1), random_state=random_state)
    _initial_design(search, (r0, c0), n_init, np.random.default_rng(random_state))
    _gp_search(search, n_gp)
    search.model = None
    _polish(search)
    pts, vals = search.arrays()
    _check_contrast(objective, (r0, c0), calls=len(pts))
    i = int(np.argmin(vals))
    return CenterResult(
        center=(float(pts[i, 0]), float(pts[i, 1])),
        objective=float(vals[i]),
        centers=pts,
        objectives=vals,
        n_evaluations=len(pts),
        n_frames=int(objective.frames.size),
        initial=(r0, c0),
        search_radius=radius,
        elapsed=time.perf_counter() - t0,
        uncertainty=_uncertainty(search),
    )
