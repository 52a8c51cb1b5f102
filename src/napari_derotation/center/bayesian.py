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

:func:`find_center_bayesian` minimises it with scikit-optimize's ask/tell
:class:`skopt.Optimizer` inside ``search_radius`` pixels of ``initial``,
then polishes the best centre with a local quadratic fit of the evaluations
around it.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..engine import check_angles, check_center, check_movie, default_center, derotate
from ..errors import Cancelled, DerotationError

__all__ = ["ResidualMotion", "CenterResult", "find_center_bayesian",
           "frame_angles", "MIN_ROTATION_DEGREES"]

#: A movie whose angles never leave [-this, this] degrees has no rotation.
MIN_ROTATION_DEGREES = 1.0


def frame_angles(angles: np.ndarray, n_frames: int, rows: int) -> np.ndarray:
    """Angle of every frame (degrees): the angle at its middle line."""
    return angles[: n_frames * rows].reshape(n_frames, rows)[:, rows // 2]


def _disc(shape, center, radius) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius * radius


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
    plane_tilt, plane_orientation : float
        A tilted rotation plane, passed to
        :func:`~napari_derotation.derotate` (e.g. from the ellipse fit).

    Raises
    ------
    DerotationError
        When the movie does not rotate (every angle within
        :data:`MIN_ROTATION_DEGREES` of 0, or fewer than two angle bins).
    """

    def __init__(self, movie, angles_per_line, *, region_center=None,
                 region_margin=0.0, bin_degrees=15.0, max_frames=64, sigma=1.0,
                 frames=None, plane_tilt=0.0, plane_orientation=0.0):
        movie = check_movie(movie)
        n, rows, cols = movie.shape
        angles = check_angles(angles_per_line, n * rows, rows)
        if not bin_degrees > 0:
            raise DerotationError(f"bin_degrees must be > 0; got {bin_degrees}")
        if int(max_frames) < 2:
            raise DerotationError(f"max_frames must be >= 2; got {max_frames}")
        candidates = np.arange(n) if frames is None else np.unique(
            np.asarray(frames, dtype=np.intp))
        if candidates.size and (candidates[0] < 0 or candidates[-1] >= n):
            raise DerotationError(
                f"frames must be in [0, {n - 1}]; got {candidates[0]} to "
                f"{candidates[-1]}")
        per_line = angles.reshape(n, rows)[candidates]
        if candidates.size == 0 or np.abs(per_line).max() < MIN_ROTATION_DEGREES:
            top = float(np.abs(per_line).max()) if candidates.size else 0.0
            raise DerotationError(
                "the movie does not rotate: expected angles beyond "
                f"+-{MIN_ROTATION_DEGREES:g} degrees; the largest is {top:g}")
        fa = np.mod(per_line[:, rows // 2], 360.0)
        nb = max(2, int(round(360.0 / bin_degrees)))
        bins = np.floor(fa / (360.0 / nb) + 0.5).astype(np.intp) % nb
        used = np.unique(bins)
        if used.size < 2:
            raise DerotationError(
                "the movie's frames all have about the same angle "
                f"({float(np.median(fa)):.1f} degrees): expected frames at two "
                f"or more angles at least {360.0 / nb:g} degrees apart")
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
        self._counts = np.bincount(labels, minlength=self.n_bins).astype(
            np.float32)[:, None]
        self.movie = np.ascontiguousarray(movie[self.frames], dtype=np.float32)
        self.angles = angles.reshape(n, rows)[self.frames].ravel()
        self.shape = (rows, cols)
        rc = check_center(region_center, movie.shape)
        inscribed = min(rc[0], rows - 1 - rc[0], rc[1], cols - 1 - rc[1])
        self.region_radius = max(inscribed - float(region_margin),
                                 0.35 * inscribed, 2.0)
        mask = _disc(self.shape, rc, self.region_radius)
        rr, cc = np.nonzero(mask)
        pad = int(math.ceil(3 * sigma)) + 1
        self._box = (slice(max(rr.min() - pad, 0), min(rr.max() + pad + 1, rows)),
                     slice(max(cc.min() - pad, 0), min(cc.max() + pad + 1, cols)))
        self._mask = mask[self._box]
        self.sigma = float(sigma)
        self.plane = {"plane_tilt": float(plane_tilt),
                      "plane_orientation": float(plane_orientation)}

    def bin_images(self, center, angles_per_line=None) -> np.ndarray:
        """Mean derotated image of every angle bin (inside the compared
        region's bounding box; NaN where a frame did not cover a pixel).

        ``angles_per_line`` (for the whole movie) replaces the angles given
        at construction; the frames and bins stay the same.
        """
        angles = self.angles
        if angles_per_line is not None:
            rows = self.shape[0]
            angles = np.asarray(angles_per_line, np.float64)[
                (self.frames[:, None] * rows + np.arange(rows)).ravel()]
        d = derotate(self.movie, angles, center, fill_value=np.nan, **self.plane)
        k = d.shape[0]
        h = self._box[0].stop - self._box[0].start
        w = self._box[1].stop - self._box[1].start
        box = np.ascontiguousarray(d[(slice(None),) + self._box]).reshape(k, -1)
        nan = np.isnan(box)
        missing = nan.any(axis=0)
        if missing.any():
            box[nan] = 0.0
        mean = np.empty((self.n_bins, box.shape[1]), np.float32)
        for i, (a, b) in enumerate(self._bounds):
            np.sum(box[a:b], axis=0, out=mean[i])
        mean /= self._counts
        if missing.any():
            mean[:, missing] = np.nan        # compare only pixels every frame has
        return mean.reshape(self.n_bins, h, w)

    def __call__(self, center, angles_per_line=None) -> float:
        img = self.bin_images(center, angles_per_line)
        bad = np.isnan(img)
        if bad.any():
            # uncovered pixels (outside the compared disc unless the search
            # strays far) take their bin's mean, so smoothing cannot spread NaN
            fill = np.nanmean(np.where(bad, np.nan, img), axis=(1, 2))
            img = np.where(bad, np.nan_to_num(fill)[:, None, None], img)
        if self.sigma > 0:
            img = ndimage.gaussian_filter(img, (0, self.sigma, self.sigma))
        z = img[:, self._mask]
        z = z[:, ~bad[:, self._mask].any(axis=0)]
        if z.shape[1] < 16:
            return 1.0
        z = z - z.mean(axis=1, keepdims=True)
        z /= np.maximum(z.std(axis=1, keepdims=True), 1e-12)
        resid = z - z.mean(axis=0)
        return float(np.square(resid, dtype=np.float64).sum()
                     / np.square(z, dtype=np.float64).sum())


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


def _reporter(progress):
    """``progress`` as a function of ``(done, total, best)``: callbacks that
    take only ``(done, total)`` (the package's usual form) are called so."""
    if progress is None:
        return None
    try:
        params = inspect.signature(progress).parameters.values()
    except (TypeError, ValueError):
        return progress
    kinds = [p.kind for p in params]
    if inspect.Parameter.VAR_POSITIONAL in kinds or sum(
            k in (inspect.Parameter.POSITIONAL_ONLY,
                  inspect.Parameter.POSITIONAL_OR_KEYWORD) for k in kinds) >= 3:
        return progress
    return lambda done, total, best: progress(done, total)


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


#: Evaluations kept for the final local refinement (see find_center_bayesian).
POLISH_CALLS = 14
#: Radius (pixels) of the first hexagon of probes around the best centre.
POLISH_STEP = 1.0


def find_center_bayesian(movie, angles_per_line, *, initial=None,
                         search_radius=10.0, n_calls=30, n_initial_points=8,
                         max_frames=64, bin_degrees=15.0, sigma=1.0,
                         polish=True, random_state=0, plane_tilt=0.0,
                         plane_orientation=0.0,
                         progress: Callable | None = None) -> CenterResult:
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
    plane_tilt, plane_orientation : float
        Degrees: search with a tilted rotation plane corrected (see
        :func:`~napari_derotation.derotate`).
    progress : callable(done, total, best_center) -> bool | None, optional
        Called after each evaluation with the number done, the number
        planned and the best ``(row, col)`` so far (a callback that takes
        only ``(done, total)`` is called without the centre); returning
        ``False`` cancels the search with
        :class:`~napari_derotation.errors.Cancelled`.

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
    from skopt import Optimizer
    from skopt.learning import GaussianProcessRegressor
    from skopt.learning.gaussian_process.kernels import ConstantKernel, Matern

    t0 = time.perf_counter()
    report = _reporter(progress)
    movie = check_movie(movie)
    shape = movie.shape
    r0, c0 = check_center(initial if initial is not None else
                          default_center(shape), shape)
    try:
        radius = float(search_radius)
    except (TypeError, ValueError):
        radius = float("nan")
    if not (math.isfinite(radius) and radius > 0):
        raise DerotationError(
            f"search_radius must be a positive number of pixels; got "
            f"{search_radius!r}")
    n_calls = int(n_calls)
    if n_calls < 3:
        raise DerotationError(f"n_calls must be >= 3; got {n_calls}")
    n_init = int(min(max(2, n_initial_points), n_calls - 1))
    rows, cols = shape[1], shape[2]
    lo_r, hi_r = max(0.0, r0 - radius), min(rows - 1.0, r0 + radius)
    lo_c, hi_c = max(0.0, c0 - radius), min(cols - 1.0, c0 + radius)
    objective = ResidualMotion(
        movie, angles_per_line, region_center=(r0, c0),
        region_margin=2 * math.sqrt(2) * radius + 3 * sigma,
        bin_degrees=bin_degrees, max_frames=max_frames, sigma=sigma,
        plane_tilt=plane_tilt, plane_orientation=plane_orientation)
    # skopt's default GP, but its hyper-parameters fitted from one start
    # (the default's restarts cost more than a derotation per step)
    gp = GaussianProcessRegressor(
        kernel=ConstantKernel(1.0, (0.01, 1000.0)) * Matern(
            length_scale=[1.0, 1.0], length_scale_bounds=[(0.01, 100.0)] * 2,
            nu=2.5),
        normalize_y=True, noise="gaussian", n_restarts_optimizer=0,
        random_state=random_state)
    opt = Optimizer([(lo_r, hi_r), (lo_c, hi_c)], base_estimator=gp,
                    n_initial_points=n_init, initial_point_generator="lhs",
                    acq_func="EI", acq_optimizer="sampling",
                    acq_optimizer_kwargs={"n_points": 2000,
                                          "n_restarts_optimizer": 3},
                    random_state=random_state)
    n_polish = min(POLISH_CALLS, n_calls // 2) if polish else 0
    if n_polish < 7:            # too few for one hexagon and its quadratic
        n_polish = 0
    n_search = n_calls - n_polish
    xs, ys = [], []

    def evaluate(x, tell=True):
        x = [float(min(max(x[0], lo_r), hi_r)), float(min(max(x[1], lo_c), hi_c))]
        y = objective(x)
        xs.append(x)
        ys.append(y)
        if tell:
            opt.tell(x, y)
        best = xs[int(np.argmin(ys))]
        if report is not None and report(len(xs), n_calls,
                                         (best[0], best[1])) is False:
            raise Cancelled(f"centre search cancelled after {len(xs)} of "
                            f"{n_calls} evaluations")

    evaluate([r0, c0])
    for _ in range(n_search - 1):
        with warnings.catch_warnings():
            # "evaluated at point ... before, using random point": harmless
            warnings.simplefilter("ignore", UserWarning)
            x = opt.ask()
        evaluate(x)
    # polish: a hexagon pattern search around the best centre (probes that
    # were already evaluated are reused); when the centre beats its hexagon,
    # jump to the minimum of the quadratic through them and halve the step
    step = POLISH_STEP
    while len(xs) < n_calls:
        pts, vals = np.array(xs), np.array(ys)
        best = pts[int(np.argmin(vals))]
        probes = [best + step * np.array([np.cos(a), np.sin(a)])
                  for a in np.arange(6) * np.pi / 3]
        probes = [p for p in probes
                  if np.hypot(*(pts - p).T).min() > 0.25 * step]
        if len(probes) > n_calls - len(xs):
            break
        for p in probes:
            evaluate(p, tell=False)
        if min(ys) < vals.min():
            continue                    # a vertex won: search around it
        if len(xs) >= n_calls:
            break
        pts, vals = np.array(xs), np.array(ys)
        guess = _quadratic_minimum(pts, vals, best, 1.2 * step)
        if guess is not None:
            evaluate(guess, tell=False)
        step *= 0.5
        if step < 0.2:
            break
    pts, vals = np.array(xs), np.array(ys)
    i = int(np.argmin(vals))
    return CenterResult(
        center=(float(pts[i, 0]), float(pts[i, 1])), objective=float(vals[i]),
        centers=pts, objectives=vals, n_evaluations=len(xs),
        n_frames=int(objective.frames.size), initial=(r0, c0),
        search_radius=radius, elapsed=time.perf_counter() - t0)
