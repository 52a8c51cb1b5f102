"""Centre of rotation (and tilt of the rotation plane) from one tracked cell.

A stationary point of the sample turning about centre ``c`` by angle
``theta`` appears in the raw movie at ``p(theta) = c + M (cos theta,
sin theta)`` for a fixed 2x2 matrix ``M``: a circle when the sample turns in
the imaging plane, an ellipse when its rotation plane is tilted. The centre
of that ellipse is the centre of rotation; the ratio of its axes gives the
tilt, ``tilt = arccos(minor / major)``, and its major axis the orientation of
the tilt axis.

:func:`fit_center_ellipse` follows the cell a user clicked through the raw
movie:

1. consecutive frames whose angles are the same (a still period, a plateau of
   a stepwise rotation) are averaged into one image, which lowers the noise;
2. from the seed, the cell is followed group by group, in time order, both
   ways. Its position in the next group is predicted from the last one and
   the change of angle (about the current estimate of the centre, then from
   the ellipse fitted so far), using the angle of the line that scanned the
   cell. It is found there by normalised cross-correlation with a template
   cut around the seed (turned by the change of angle) and refined to a
   fraction of a pixel by a least-squares match of the template; a match
   below ``min_correlation`` or outside the frame counts as lost;
3. positions with the same angle are averaged; an ellipse is fitted to them
   geometrically (orthogonal distances, robust loss), starting from the
   linear known-angle fit.

The tilt and orientation are returned in the convention of
:func:`~napari_derotation.derotate`'s ``plane_tilt``/``plane_orientation``
(see :func:`~napari_derotation.engine.plane_matrix`): passing them corrects
the movie.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, optimize, sparse

from ..engine import check_angles, check_center, check_movie, default_center
from ..errors import Cancelled, DerotationError
from .bayesian import MIN_ROTATION_DEGREES

__all__ = ["EllipseFit", "fit_center_ellipse", "fit_ellipse",
           "ellipse_to_plane"]


@dataclass
class EllipseFit:
    """Outcome of :func:`fit_center_ellipse` (pixels and degrees).

    Attributes
    ----------
    center : (row, col)
        Centre of the ellipse: the centre of rotation.
    axes : (major, minor)
        Semi-axes of the ellipse.
    orientation : float
        Direction of the major axis, degrees in (-90, 90]: the axis points
        along ``(row, col) = (cos o, sin o)``.
    tilt : float
        ``degrees(arccos(minor / major))``: tilt of the rotation plane.
    plane_orientation : float
        Orientation of the tilt axis for ``derotate(plane_orientation=...)``
        (the major axis: the same number as ``orientation``).
    positions : ndarray (n, 2)
        Tracked positions ``(row, col)`` (averaged per angle).
    angles : ndarray (n,)
        Angle (degrees) of the line that scanned the cell at each position.
    residual : float
        Root-mean-square distance of the positions from the ellipse.
    frames : ndarray (n,)
        First frame where each position was seen.
    lost_frames : ndarray
        Frames where the cell was not found.
    messages : list of str
        Warnings for the user (e.g. where the cell was lost).
    """

    center: tuple[float, float]
    axes: tuple[float, float]
    orientation: float
    tilt: float
    plane_orientation: float
    positions: np.ndarray
    angles: np.ndarray
    residual: float
    frames: np.ndarray
    lost_frames: np.ndarray
    seed: tuple[float, float]
    cell_radius: float
    messages: list = field(default_factory=list)

    def ellipse_points(self, n: int = 180) -> np.ndarray:
        """``n`` points ``(row, col)`` on the fitted ellipse (for drawing)."""
        return _ellipse_xy(self.center, self.axes, self.orientation,
                           np.linspace(0, 2 * np.pi, n, endpoint=False))


# --- ellipse geometry ----------------------------------------------------

def _ellipse_xy(center, axes, orientation_deg, t) -> np.ndarray:
    o = np.deg2rad(orientation_deg)
    u = np.array([np.cos(o), np.sin(o)])          # major axis (row, col)
    v = np.array([-np.sin(o), np.cos(o)])
    return (np.asarray(center, float)[None] + axes[0] * np.cos(t)[:, None] * u
            + axes[1] * np.sin(t)[:, None] * v)


def _wrap_orientation(deg: float) -> float:
    o = (deg + 90.0) % 180.0 - 90.0
    return 90.0 if o == -90.0 else o


def ellipse_to_plane(axes) -> float:
    """Tilt (degrees) of the rotation plane that makes a circle look like an
    ellipse with semi-axes ``(major, minor)``."""
    major, minor = max(axes), min(axes)
    return float(np.degrees(np.arccos(np.clip(minor / major, 0.0, 1.0))))


def _known_angle_fit(points, angles_deg, weights=None):
    """Linear least squares ``p = c + P cos(theta) + Q sin(theta)``: returns
    ``(c, M = [P Q])`` and the residual vectors."""
    th = np.deg2rad(angles_deg)
    design = np.stack([np.ones_like(th), np.cos(th), np.sin(th)], axis=1)
    w = np.ones_like(th) if weights is None else weights
    coef, *_ = np.linalg.lstsq(design * w[:, None], points * w[:, None],
                               rcond=None)
    c, m = coef[0], coef[1:].T
    return c, m, points - design @ coef


def _ellipse_from_matrix(c, m):
    """Centre, semi-axes (major, minor) and orientation of ``c + M (cos,
    sin)``, and the phase offset taking ``theta`` to the ellipse's ``t``."""
    u, s, vt = np.linalg.svd(m)
    orientation = np.degrees(math.atan2(u[1, 0], u[0, 0]))
    # the ellipse parameter is t = angle of V^T (cos theta, sin theta); as
    # (cos t, sin t) must match (u0 . , u1 .) with u's sign, keep vt as is
    return (float(c[0]), float(c[1])), (float(s[0]), float(s[1])), \
        orientation, u, vt


def fit_ellipse(points, angles_deg=None, *, loss="soft_l1", f_scale=0.5):
    """Geometric (orthogonal-distance) ellipse fit.

    Parameters
    ----------
    points : array (n, 2)
        ``(row, col)`` positions, n >= 5.
    angles_deg : array (n,), optional
        The rotation angle at each point, if known: used for the starting
        guess (a linear fit), which then needs no iterations to be close.
    loss, f_scale
        Robust loss of :func:`scipy.optimize.least_squares` (pixels).

    Returns
    -------
    center, axes (major, minor), orientation (degrees, major axis along
    ``(cos o, sin o)`` in (row, col)), rms orthogonal distance, phases t.
    """
    p = np.asarray(points, float)
    n = len(p)
    if n < 5:
        raise DerotationError(
            f"an ellipse needs at least 5 positions; got {n}")
    if angles_deg is not None:
        c, m, _ = _known_angle_fit(p, np.asarray(angles_deg, float))
        center, axes, orient, u, vt = _ellipse_from_matrix(c, m)
        th = np.deg2rad(angles_deg)
        cs = vt @ np.stack([np.cos(th), np.sin(th)])
        # keep the sign of u consistent with the parametrisation below
        t = np.arctan2(cs[1] * np.sign(np.linalg.det(u) or 1.0), cs[0])
    else:
        center = tuple(p.mean(axis=0))
        cov = np.cov((p - center).T)
        evals, evecs = np.linalg.eigh(cov)
        axes = (math.sqrt(2 * max(evals[1], 1e-9)),
                math.sqrt(2 * max(evals[0], 1e-9)))
        orient = np.degrees(math.atan2(evecs[1, 1], evecs[0, 1]))
        d = p - center
        o = np.deg2rad(orient)
        t = np.arctan2((-np.sin(o) * d[:, 0] + np.cos(o) * d[:, 1]) / axes[1],
                       (np.cos(o) * d[:, 0] + np.sin(o) * d[:, 1]) / axes[0])
    x0 = np.concatenate([[center[0], center[1], axes[0], max(axes[1], 1e-3),
                          np.deg2rad(orient)], t])

    def resid(x):
        xy = _ellipse_xy(x[:2], x[2:4], np.degrees(x[4]), x[5:])
        return (xy - p).ravel()

    sparsity = sparse.lil_matrix((2 * n, 5 + n), dtype=int)
    sparsity[:, :5] = 1
    for i in range(n):
        sparsity[2 * i: 2 * i + 2, 5 + i] = 1
    sol = optimize.least_squares(resid, x0, jac_sparsity=sparsity, loss=loss,
                                 f_scale=f_scale, x_scale="jac", method="trf")
    x = sol.x
    a, b, o = abs(x[2]), abs(x[3]), np.degrees(x[4])
    if b > a:
        a, b, o = b, a, o + 90.0
    r = resid(x).reshape(n, 2)
    rms = float(np.sqrt(np.mean(np.sum(r * r, axis=1))))
    return (float(x[0]), float(x[1])), (float(a), float(b)), \
        _wrap_orientation(float(o)), rms, x[5:]


# --- tracking ------------------------------------------------------------

def _groups(angles2d: np.ndarray, tol: float, max_len: int):
    """Runs of consecutive frames whose per-line angles agree within tol."""
    groups, start = [], 0
    n = angles2d.shape[0]
    for f in range(1, n + 1):
        if (f == n or f - start >= max_len
                or np.abs(angles2d[f] - angles2d[start]).max() > tol):
            groups.append((start, f))
            start = f
    return groups


def _angle_at_row(angles_row: np.ndarray, row: float) -> float:
    return float(np.interp(row, np.arange(angles_row.size), angles_row))


def _rot(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def _estimate_radius(img, pos) -> float:
    """Blob radius at ``pos`` by scale-normalised Laplacian of Gaussian."""
    best, radius = -np.inf, 4.0
    r, c = int(round(pos[0])), int(round(pos[1]))
    h = 24
    patch = img[max(r - h, 0): r + h + 1, max(c - h, 0): c + h + 1]
    pr, pc = r - max(r - h, 0), c - max(c - h, 0)
    for s in np.arange(1.0, 8.01, 0.5):
        v = -s * s * ndimage.gaussian_laplace(patch, s)[pr, pc]
        if v > best:
            best, radius = v, s * math.sqrt(2)
    return float(np.clip(radius, 2.0, 15.0))


def _centroid(img, pos, radius) -> np.ndarray:
    """Intensity-weighted centroid of the blob at ``pos`` (above the median
    of a surrounding ring), at most a radius from ``pos``."""
    h = int(math.ceil(2 * radius)) + 1
    r0, c0 = int(round(pos[0])), int(round(pos[1]))
    lo_r, lo_c = max(r0 - h, 0), max(c0 - h, 0)
    patch = img[lo_r: r0 + h + 1, lo_c: c0 + h + 1].astype(np.float64)
    yy, xx = np.mgrid[: patch.shape[0], : patch.shape[1]]
    d = np.hypot(yy + lo_r - pos[0], xx + lo_c - pos[1])
    ring = patch[(d > 1.5 * radius) & (d <= 2 * radius + 1)]
    w = np.where(d <= radius, patch - (np.median(ring) if ring.size else 0), 0)
    w = np.clip(w, 0, None)
    if w.sum() <= 0:
        return np.asarray(pos, float)
    out = np.array([(w * (yy + lo_r)).sum(), (w * (xx + lo_c)).sum()]) / w.sum()
    return out if np.hypot(*(out - pos)) <= radius else np.asarray(pos, float)


class _Tracker:
    """Finds the seed cell's template in an image near a predicted position."""

    def __init__(self, image, seed, radius):
        self.radius = radius
        self.h = int(math.ceil(2.0 * radius)) + 2
        h = self.h
        self.q = np.mgrid[-h:h + 1, -h:h + 1].astype(float)   # offsets
        self.template = ndimage.map_coordinates(
            image, self.q + np.asarray(seed, float)[:, None, None], order=3,
            mode="nearest")

    def rotated(self, dtheta):
        """Template as the cell looks after the sample turned by dtheta."""
        if abs(dtheta) < 1e-6:
            return self.template
        rq = np.tensordot(_rot(dtheta), self.q, axes=1) + self.h
        return ndimage.map_coordinates(self.template, rq, order=3,
                                       mode="nearest")

    def find(self, image, pred, window, dtheta):
        """Best match ``(row, col)``, correlation; None when out of view."""
        tpl = self.rotated(dtheta)
        h = self.h
        rows, cols = image.shape
        r0, c0 = int(round(pred[0])), int(round(pred[1]))
        lo_r, hi_r = r0 - window - h, r0 + window + h + 1
        lo_c, hi_c = c0 - window - h, c0 + window + h + 1
        if lo_r < 0 or lo_c < 0 or hi_r > rows or hi_c > cols:
            return None, 0.0
        win = image[lo_r:hi_r, lo_c:hi_c]
        ncc = _ncc(win, tpl)
        i, j = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
        score = float(ncc[i, j])
        if not (0 < i < ncc.shape[0] - 1 and 0 < j < ncc.shape[1] - 1):
            return None, score                      # peak on the border
        pos = np.array([lo_r + h + i, lo_c + h + j], float)
        return self.refine(image, pos, tpl), score

    def refine(self, image, pos, tpl):
        """Sub-pixel position: least-squares match ``a * tpl + b``."""
        h = self.h
        r0, c0 = int(round(pos[0])), int(round(pos[1]))
        m = h + 3
        lo_r, lo_c = max(r0 - m, 0), max(c0 - m, 0)
        crop = image[lo_r: r0 + m + 1, lo_c: c0 + m + 1]
        coeffs = ndimage.spline_filter(crop.astype(np.float64), order=3)
        t = tpl.ravel()
        start = pos - (lo_r, lo_c)

        def resid(x):
            pts = self.q + np.array([x[0], x[1]])[:, None, None]
            v = ndimage.map_coordinates(coeffs, pts, order=3, mode="nearest",
                                        prefilter=False).ravel()
            return v - (x[2] * t + x[3])

        x0 = np.array([start[0], start[1], 1.0, 0.0])
        tv = t - t.mean()
        v0 = resid(np.array([start[0], start[1], 0.0, 0.0]))
        x0[2] = max(float(tv @ (v0 - v0.mean())) / max(tv @ tv, 1e-12), 1e-3)
        x0[3] = float(v0.mean() - x0[2] * t.mean())
        sol = optimize.least_squares(resid, x0, method="lm", max_nfev=60)
        d = sol.x[:2] - start
        if not np.all(np.isfinite(sol.x)) or np.hypot(*d) > 1.5:
            return pos
        return sol.x[:2] + (lo_r, lo_c)


def _ncc(win, tpl):
    """Normalised cross-correlation of ``tpl`` at every position in ``win``
    (valid positions only)."""
    from skimage.feature import match_template
    return match_template(win, tpl)


# --- the public function -------------------------------------------------

def fit_center_ellipse(movie, angles_per_line, seed, *, frame=0,
                       cell_radius=None, initial=None, min_correlation=0.5,
                       search=None, group_degrees=0.05, max_group=16,
                       min_positions=8, smooth=1.0,
                       progress: Callable | None = None) -> EllipseFit:
    """Fit the ellipse traced by one cell to find the centre of rotation.

    Parameters
    ----------
    movie : array (frames, rows, cols)
        The raw (rotating) movie; not modified.
    angles_per_line : 1-D array
        Angle in degrees of every scanned line.
    seed : (row, col)
        A bright cell in frame ``frame`` of the raw movie (a click near its
        middle is enough: the brightest point within ``cell_radius`` of the
        click is taken).
    frame : int
        The frame the seed was picked in.
    cell_radius : float, optional
        Radius of the cell in pixels; default estimated from the seed.
    initial : (row, col), optional
        First guess of the centre, used to predict where the cell goes until
        an ellipse can be fitted; default the frame centre.
    min_correlation : float
        A match with a lower normalised correlation counts as lost.
    search : float, optional
        Half-size (pixels) of the search window around each prediction;
        default ``max(8, 2 * cell_radius)``.
    group_degrees, max_group
        Consecutive frames whose angles differ by less than
        ``group_degrees`` on every line are averaged, at most ``max_group``
        at a time.
    min_positions : int
        Fewest distinct tracked angles accepted.
    smooth : float
        Gaussian smoothing (pixels) of the images before matching.
    progress : callable(done, total) -> bool | None, optional
        Called as frames are processed; returning ``False`` cancels with
        :class:`~napari_derotation.errors.Cancelled`.

    Returns
    -------
    EllipseFit

    Raises
    ------
    DerotationError
        A seed outside the frame, ``frame`` out of range, a movie that does
        not rotate, or too few tracked positions for an ellipse (the cell
        was lost; the message says how many were found).
    Cancelled
        When ``progress`` returned ``False``.
    """
    movie = check_movie(movie)
    n, rows, cols = movie.shape
    angles = check_angles(angles_per_line, n * rows, rows).reshape(n, rows)
    try:
        sr, sc = (float(v) for v in seed)
    except (TypeError, ValueError):
        raise DerotationError(
            f"seed must be two numbers (row, col); got {seed!r}") from None
    if not (0 <= sr <= rows - 1 and 0 <= sc <= cols - 1):
        raise DerotationError(
            f"seed (row, col) = ({sr:g}, {sc:g}) is outside the frame: "
            f"expected 0 <= row <= {rows - 1} and 0 <= col <= {cols - 1}")
    if not (isinstance(frame, (int, np.integer)) and 0 <= frame < n):
        raise DerotationError(
            f"frame must be an integer in [0, {n - 1}]; got {frame!r}")
    if np.abs(angles).max() < MIN_ROTATION_DEGREES:
        raise DerotationError(
            "the movie does not rotate: expected angles beyond "
            f"+-{MIN_ROTATION_DEGREES:g} degrees; the largest is "
            f"{float(np.abs(angles).max()):g}")
    c_est = np.array(check_center(initial if initial is not None else
                                  default_center(movie.shape), movie.shape))

    groups = _groups(angles, group_degrees, max_group)
    gi_seed = next(i for i, (a, b) in enumerate(groups) if a <= frame < b)
    cache: dict[int, np.ndarray] = {}

    def image(gi):
        if gi not in cache:
            a, b = groups[gi]
            img = np.asarray(movie[a:b], dtype=np.float32).mean(axis=0)
            if smooth:
                img = ndimage.gaussian_filter(img, smooth)
            if len(cache) > 4:
                cache.pop(next(iter(cache)))
            cache[gi] = img
        return cache[gi]

    # the seed: the single clicked frame, refined to the cell's middle
    seed_img = np.asarray(movie[frame], dtype=np.float32)
    if smooth:
        seed_img = ndimage.gaussian_filter(seed_img, smooth)
    radius = float(cell_radius) if cell_radius else _estimate_radius(
        seed_img, (sr, sc))
    k = max(2, int(math.ceil(radius)))
    r_lo, c_lo = max(int(round(sr)) - k, 0), max(int(round(sc)) - k, 0)
    patch = seed_img[r_lo: int(round(sr)) + k + 1, c_lo: int(round(sc)) + k + 1]
    i, j = np.unravel_index(int(np.argmax(patch)), patch.shape)
    peak = np.array([r_lo + i, c_lo + j], float)
    tracker = _Tracker(seed_img, peak, radius)
    m = tracker.h + 2
    if not (m <= peak[0] <= rows - 1 - m and m <= peak[1] <= cols - 1 - m):
        raise DerotationError(
            f"the seed cell at ({peak[0]:g}, {peak[1]:g}) is too close to the "
            f"frame's edge (within {m} px) to be followed")
    seed_pos = _centroid(seed_img, peak, radius)
    tracker = _Tracker(seed_img, seed_pos, radius)
    theta_seed = _angle_at_row(angles[frame], seed_pos[0])
    window = int(math.ceil(search if search else max(8.0, 2.0 * radius)))

    found = []          # (row, col, theta, first frame)
    lost: list[int] = []
    done = 0
    total = n

    def predict(prev_pos, prev_theta, theta, model):
        if model is not None:
            c, mm = model
            th0, th1 = np.deg2rad(prev_theta), np.deg2rad(theta)
            return prev_pos + mm @ (np.array([np.cos(th1), np.sin(th1)])
                                    - np.array([np.cos(th0), np.sin(th0)]))
        return c_est + _rot(prev_theta - theta) @ (prev_pos - c_est)

    def fit_model():
        if len(found) < 6:
            return None
        a = np.array(found)
        th = a[:, 2]
        span = np.ptp(np.unwrap(np.deg2rad(th)))
        if span < np.deg2rad(40):
            return None
        c, mm, _ = _known_angle_fit(a[:, :2], th)
        return c, mm

    for direction in (1, -1):
        pos, theta = seed_pos.copy(), theta_seed
        model = fit_model()
        order = (range(gi_seed, len(groups)) if direction == 1
                 else range(gi_seed - 1, -1, -1))
        misses = 0
        for gi in order:
            a, b = groups[gi]
            img = image(gi)
            # the angle of the line that scanned the cell: iterate row <-> angle
            pred, th = pos, theta
            for _ in range(3):
                th = _angle_at_row(angles[a], float(np.clip(pred[0], 0, rows - 1)))
                pred = predict(pos, theta, th, model)
            if gi == gi_seed and a <= frame < b:
                hit, score = (seed_pos.copy(), 1.0) if b - a == 1 else \
                    tracker.find(img, pred, window, th - theta_seed)
            else:
                hit, score = tracker.find(img, pred, window + 2 * misses,
                                          th - theta_seed)
            if hit is None or score < min_correlation:
                lost.extend(range(a, b))
                misses = min(misses + 1, 5)
            else:
                th = _angle_at_row(angles[a], float(hit[0]))
                found.append((hit[0], hit[1], th, a))
                pos, theta, misses = hit, th, 0
                if len(found) % 4 == 0:
                    model = fit_model() or model
            done += b - a
            if progress is not None and progress(done, total) is False:
                raise Cancelled(f"ellipse fit cancelled after {done} of "
                                f"{total} frames")

    messages = []
    lost_frames = np.array(sorted(set(lost)), dtype=np.intp)
    if lost_frames.size:
        messages.append(
            f"the cell was lost in {lost_frames.size} of {n} frames "
            f"(first at frame {lost_frames[0]})")
    if not found:
        raise DerotationError(
            "the seed cell could not be followed in any frame; pick a bright, "
            "isolated cell")
    pts = np.array(found)
    # one position per angle: average repeats (still periods, plateaus, the
    # same angle on the way back)
    key = np.round(np.mod(pts[:, 2], 360.0) / 0.5).astype(np.int64) % 720
    uniq, inv = np.unique(key, return_inverse=True)
    count = np.bincount(inv).astype(float)
    positions = np.stack([np.bincount(inv, pts[:, 0]) / count,
                          np.bincount(inv, pts[:, 1]) / count], axis=1)
    first = np.full(uniq.size, np.iinfo(np.intp).max, np.intp)
    np.minimum.at(first, inv, pts[:, 3].astype(np.intp))
    # the angle of the first sighting (not a circular mean: same bin)
    ang = np.zeros(uniq.size)
    ang[inv[::-1]] = pts[::-1, 2]
    if uniq.size < min_positions:
        raise DerotationError(
            f"too few tracked positions for an ellipse: the cell was found at "
            f"{uniq.size} distinct angles, expected at least {min_positions} "
            f"(lost in {lost_frames.size} of {n} frames); pick a brighter, "
            f"more isolated cell or a movie that rotates further")
    gaps = np.diff(np.sort(np.mod(ang, 360.0)))
    cover = 360.0 - max(float(gaps.max()) if gaps.size else 360.0,
                        360.0 - float(np.ptp(np.mod(ang, 360.0))))
    if cover < 60.0:
        raise DerotationError(
            f"the tracked positions cover only {cover:.0f} degrees of the "
            "rotation; expected at least 60 to fit an ellipse")
    # drop gross outliers of the known-angle fit before the geometric fit
    c, mm, res = _known_angle_fit(positions, ang)
    dist = np.hypot(res[:, 0], res[:, 1])
    mad = np.median(dist) * 1.4826 + 1e-6
    keep = dist <= max(5 * mad, 1.0)
    if keep.sum() >= min_positions:
        positions, ang, first = positions[keep], ang[keep], first[keep]
    center, axes, orientation, rms, _ = fit_ellipse(positions, ang)
    tilt = ellipse_to_plane(axes)
    return EllipseFit(center=center, axes=axes, orientation=orientation,
                      tilt=tilt, plane_orientation=orientation,
                      positions=positions, angles=ang, residual=rms,
                      frames=first, lost_frames=lost_frames,
                      seed=(float(seed_pos[0]), float(seed_pos[1])),
                      cell_radius=radius, messages=messages)
