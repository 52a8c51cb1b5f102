"""Centre of rotation (and tilt of the rotation plane) from one tracked cell.

A stationary point of the sample turning about centre ``c`` by angle
``theta`` appears in the raw movie at ``p(theta) = c + M (cos theta,
sin theta)`` for a fixed 2x2 matrix ``M``: a circle when the sample turns in
the imaging plane, an ellipse when its rotation plane is tilted. The centre
of that ellipse is the centre of rotation; the ratio of its axes gives the
tilt, ``tilt = arccos(minor / major)``, and its major axis the orientation of
the tilt axis.

:func:`fit_center_ellipse` follows the cell a user clicked through the raw
movie, in named steps:

1. :func:`_check_inputs`; consecutive frames whose angles are the same (a
   still period, a plateau of a stepwise rotation) are averaged into one
   image, which lowers the noise (:class:`._tracking.GroupedMovie`);
2. the click is snapped to the cell it is on or next to (the centroid of
   the bright blob, :func:`._tracking.snap_seed`) and a template of the cell
   is cut there, with a mask of the pixels inside the frame;
3. from the seed the cell is followed group by group, in time order, both
   ways (:class:`._tracking.CellTracker`): its position is predicted from the
   change of angle of the line that scans it (about the first guess of the
   centre, then along the path fitted so far), found by a *masked*
   normalised cross-correlation with the turned template (so a cell partly
   outside the frame is still found from its visible part, and one wholly
   outside is waited for) and refined to a fraction of a pixel;
4. positions with the same angle are averaged (:func:`_per_angle`); the
   angles where the cell was seen must span enough of the turn to constrain
   an ellipse (:func:`_check_coverage`);
5. ``c`` and ``M`` are fitted by linear least squares at the known angles,
   with outliers dropped (:func:`_fit_path`); the residuals give their
   covariance, hence the uncertainty of the centre and of the tilt, and
   whether the tilt is significant (:func:`_tilt_statistics`).

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
from scipy import optimize, sparse

from ..engine import check_angles, check_center, check_movie, default_center
from ..errors import DerotationError
from ._tracking import CellTemplate, CellTracker, GroupedMovie, angle_at_row, snap_seed
from .bayesian import MIN_ROTATION_DEGREES

__all__ = ["EllipseFit", "fit_center_ellipse", "fit_ellipse", "ellipse_to_plane"]

#: ``chi2(2 dof).isf(0.0027)``: the 3-sigma level of the test of the tilt.
TILT_CHI2 = -2.0 * math.log(0.0027)


@dataclass
class EllipseFit:
    """Outcome of :func:`fit_center_ellipse` (pixels and degrees).

    Attributes
    ----------
    center : (row, col)
        Centre of the ellipse: the centre of rotation.
    center_uncertainty : (row, col)
        Standard errors of ``center`` (pixels), from the scatter of the
        positions about the fitted path.
    axes : (major, minor)
        Semi-axes of the ellipse.
    orientation : float
        Direction of the major axis, degrees in (-90, 90]: the axis points
        along ``(row, col) = (cos o, sin o)``.
    tilt : float
        ``degrees(arccos(minor / major))``: tilt of the rotation plane.
    tilt_uncertainty : float
        Standard error of ``tilt`` (degrees), propagated from that of the
        ellipse's shape. Near zero the error of a tilt is one-sided (noise
        alone makes a circle look slightly elliptical, never less than
        round), so whether a tilt is real is read from ``tilt_significant``,
        not from ``tilt / tilt_uncertainty``.
    tilt_significant : bool
        The ellipse differs from a circle by more than noise: the part of
        ``M`` that a tilt adds (zero for an untilted plane) is tested against
        zero with its covariance, chi-square with 2 degrees of freedom, at
        the 3-sigma level (p < 0.27 %, :data:`TILT_CHI2`). Only then is the
        tilt worth applying.
    plane_orientation : float
        Orientation of the tilt axis for ``derotate(plane_orientation=...)``
        (the major axis: the same number as ``orientation``).
    positions : ndarray (n, 2)
        Tracked positions ``(row, col)`` (averaged per angle) used in the fit.
    angles : ndarray (n,)
        Angle (degrees) of the line that scanned the cell at each position.
    residual : float
        Root-mean-square distance of the positions from the fitted path
        (each from the path's point at its angle).
    frames : ndarray (n,)
        First frame where each position was seen.
    lost_frames : ndarray
        Frames where the cell was not found (out of view, or in view but
        not matched).
    seed : (row, col)
        The clicked cell's position, snapped to the cell.
    cell_radius : float
        Radius of the cell (pixels).
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
    center_uncertainty: tuple[float, float] = (0.0, 0.0)
    tilt_uncertainty: float = 0.0
    tilt_significant: bool = False
    messages: list = field(default_factory=list)

    def to_record(self, frame: int = 0) -> dict:
        """The fit as JSON-ready values (``frame``: where the seed was
        picked): what ``find-center --method ellipse --json`` prints and a
        ``run`` record keeps under ``center.search``."""
        return {
            "method": "ellipse",
            "center": [float(v) for v in self.center],
            "ellipse": {
                "center": [float(v) for v in self.center],
                "axes": [float(v) for v in self.axes],
                "orientation": float(self.orientation),
                "residual": float(self.residual),
            },
            "center_uncertainty": [float(v) for v in self.center_uncertainty],
            "tilt": float(self.tilt),
            "tilt_uncertainty": float(self.tilt_uncertainty),
            "tilt_significant": bool(self.tilt_significant),
            "orientation": float(self.plane_orientation),
            "n_positions": int(len(self.positions)),
            "lost_frames": int(self.lost_frames.size),
            "seed": [float(v) for v in self.seed],
            "frame": int(frame),
        }

    def ellipse_points(self, n: int = 180) -> np.ndarray:
        """``n`` points ``(row, col)`` on the fitted ellipse (for drawing)."""
        return _ellipse_xy(
            self.center,
            self.axes,
            self.orientation,
            np.linspace(0, 2 * np.pi, n, endpoint=False),
        )


# --- ellipse geometry ----------------------------------------------------


def _ellipse_xy(center, axes, orientation_deg, t) -> np.ndarray:
    o = np.deg2rad(orientation_deg)
    u = np.array([np.cos(o), np.sin(o)])  # major axis (row, col)
    v = np.array([-np.sin(o), np.cos(o)])
    return (
        np.asarray(center, float)[None]
        + axes[0] * np.cos(t)[:, None] * u
        + axes[1] * np.sin(t)[:, None] * v
    )


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
    coef, *_ = np.linalg.lstsq(design * w[:, None], points * w[:, None], rcond=None)
    c, m = coef[0], coef[1:].T
    return c, m, points - design @ coef


def _ellipse_from_matrix(c, m):
    """Centre, semi-axes (major, minor) and orientation of ``c + M (cos,
    sin)``, and the phase offset taking ``theta`` to the ellipse's ``t``."""
    u, s, vt = np.linalg.svd(m)
    orientation = np.degrees(math.atan2(u[1, 0], u[0, 0]))
    # the ellipse parameter is t = angle of V^T (cos theta, sin theta); as
    # (cos t, sin t) must match (u0 . , u1 .) with u's sign, keep vt as is
    return (float(c[0]), float(c[1])), (float(s[0]), float(s[1])), orientation, u, vt


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
        raise DerotationError(f"an ellipse needs at least 5 positions; got {n}")
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
        axes = (math.sqrt(2 * max(evals[1], 1e-9)), math.sqrt(2 * max(evals[0], 1e-9)))
        orient = np.degrees(math.atan2(evecs[1, 1], evecs[0, 1]))
        d = p - center
        o = np.deg2rad(orient)
        t = np.arctan2(
            (-np.sin(o) * d[:, 0] + np.cos(o) * d[:, 1]) / axes[1],
            (np.cos(o) * d[:, 0] + np.sin(o) * d[:, 1]) / axes[0],
        )
    x0 = np.concatenate(
        [[center[0], center[1], axes[0], max(axes[1], 1e-3), np.deg2rad(orient)], t]
    )

    def resid(x):
        xy = _ellipse_xy(x[:2], x[2:4], np.degrees(x[4]), x[5:])
        return (xy - p).ravel()

    sparsity = sparse.lil_matrix((2 * n, 5 + n), dtype=int)
    sparsity[:, :5] = 1
    for i in range(n):
        sparsity[2 * i : 2 * i + 2, 5 + i] = 1
    sol = optimize.least_squares(
        resid,
        x0,
        jac_sparsity=sparsity,
        loss=loss,
        f_scale=f_scale,
        x_scale="jac",
        method="trf",
    )
    x = sol.x
    a, b, o = abs(x[2]), abs(x[3]), np.degrees(x[4])
    if b > a:
        a, b, o = b, a, o + 90.0
    r = resid(x).reshape(n, 2)
    rms = float(np.sqrt(np.mean(np.sum(r * r, axis=1))))
    return (
        (float(x[0]), float(x[1])),
        (float(a), float(b)),
        _wrap_orientation(float(o)),
        rms,
        x[5:],
    )


# --- the steps of fit_center_ellipse ---------------------------------------


def _check_inputs(movie, angles_per_line, seed, frame):
    """The movie, its angles as (frames, rows) and the seed, or raise."""
    movie = check_movie(movie)
    n, rows, cols = movie.shape
    angles = check_angles(angles_per_line, n * rows, rows).reshape(n, rows)
    try:
        sr, sc = (float(v) for v in seed)
    except (TypeError, ValueError):
        raise DerotationError(
            f"seed must be two numbers (row, col); got {seed!r}"
        ) from None
    if not (0 <= sr <= rows - 1 and 0 <= sc <= cols - 1):
        raise DerotationError(
            f"seed (row, col) = ({sr:g}, {sc:g}) is outside the frame: "
            f"expected 0 <= row <= {rows - 1} and 0 <= col <= {cols - 1}"
        )
    if not (isinstance(frame, (int, np.integer)) and 0 <= frame < n):
        raise DerotationError(
            f"frame must be an integer in [0, {n - 1}]; got {frame!r}"
        )
    if np.abs(angles).max() < MIN_ROTATION_DEGREES:
        raise DerotationError(
            "the movie does not rotate: expected angles beyond "
            f"+-{MIN_ROTATION_DEGREES:g} degrees; the largest is "
            f"{float(np.abs(angles).max()):g}"
        )
    return movie, angles, (sr, sc)


def _per_angle(found):
    """One position per angle (0.5-degree bins): repeats (still periods,
    plateaus, the same angle on the way back) averaged. Returns positions,
    the angle of the first sighting in each bin, and its frame."""
    pts = np.array(found, float)
    key = np.round(np.mod(pts[:, 2], 360.0) / 0.5).astype(np.int64) % 720
    uniq, inv = np.unique(key, return_inverse=True)
    count = np.bincount(inv).astype(float)
    positions = np.stack(
        [np.bincount(inv, pts[:, 0]) / count, np.bincount(inv, pts[:, 1]) / count],
        axis=1,
    )
    first = np.full(uniq.size, np.iinfo(np.intp).max, np.intp)
    np.minimum.at(first, inv, pts[:, 3].astype(np.intp))
    ang = np.zeros(uniq.size)
    ang[inv[::-1]] = pts[::-1, 2]
    return positions, ang, first


def _coverage(angles_deg) -> float:
    """Degrees of the turn covered by ``angles_deg`` (360 minus the largest
    gap between them, modulo 360)."""
    a = np.sort(np.mod(angles_deg, 360.0))
    if a.size < 2:
        return 0.0
    gaps = np.diff(np.concatenate([a, a[:1] + 360.0]))
    return float(360.0 - gaps.max())


def _check_coverage(ang, n_frames, n_lost, min_positions, min_span=60.0):
    """Raise unless the angles where the cell was seen constrain an
    ellipse: at least ``min_positions`` distinct ones over ``min_span``
    degrees or more."""
    cover = _coverage(ang)
    seen = (
        f"the cell was found at {ang.size} distinct angles spanning "
        f"{cover:.0f} degrees (lost in {n_lost} of {n_frames} frames)"
    )
    if ang.size < min_positions:
        raise DerotationError(
            f"too few tracked positions for an ellipse: {seen}; expected at "
            f"least {min_positions} angles; pick a brighter, more isolated "
            "cell or a movie that rotates further"
        )
    if cover < min_span:
        raise DerotationError(
            f"the tracked positions do not constrain an ellipse: {seen}; "
            f"expected a span of at least {min_span:g} degrees; pick a cell "
            "that stays in view over more of the rotation"
        )


def _fit_path(points, angles_deg, min_positions):
    """``p = c + M (cos theta, sin theta)`` by least squares at the known
    angles, dropping positions more than 3 times the median distance (about
    3.5 sigma) from the fit, twice. Returns ``keep`` (mask), the
    coefficients ``(3, 2)`` (rows: c, first and second column of ``M``;
    columns: row and col), their covariance per coordinate ``(2, 3, 3)`` and
    the residual vectors of the kept positions."""
    th = np.deg2rad(angles_deg)
    design = np.stack([np.ones_like(th), np.cos(th), np.sin(th)], axis=1)
    keep = np.ones(len(points), bool)
    for _ in range(3):
        coef = np.linalg.lstsq(design[keep], points[keep], rcond=None)[0]
        dist = np.hypot(*(points - design @ coef).T)
        new = dist <= max(3.0 * float(np.median(dist[keep])), 0.25)
        if new.sum() < min_positions or np.array_equal(new, keep):
            break
        keep = new
    coef = np.linalg.lstsq(design[keep], points[keep], rcond=None)[0]
    res = points[keep] - design[keep] @ coef
    dof = max(int(keep.sum()) - 3, 1)
    gram = np.linalg.pinv(design[keep].T @ design[keep])
    var = (res * res).sum(axis=0) / dof  # per coordinate
    cov = var[:, None, None] * gram[None]
    return keep, coef, cov, res


#: Rows: the 6 coefficients (c_r, M00, M01, c_c, M10, M11); the circle part
#: (zero when the sample turns the other way) and the mirrored part of M.
_SHAPE_PARTS = (
    np.array([[0, 0.5, 0, 0, 0, 0.5], [0, 0, -0.5, 0, 0.5, 0]]),
    np.array([[0, 0.5, 0, 0, 0, -0.5], [0, 0, 0.5, 0, 0.5, 0]]),
)


def _tilt_statistics(coef, cov):
    """Tilt, its standard error and significance from ``M``'s covariance.

    ``M`` splits into a rotation-like part ``[[p, -q], [q, p]]`` and a
    mirror-like part ``[[r, s], [s, -r]]``; its singular values are
    ``A + B`` and ``A - B`` with ``A``, ``B`` the norms of the larger and
    the smaller part. A circle (untilted plane) has ``B = 0``; the tilt is
    ``arccos((A - B) / (A + B))``. ``B``'s 2-vector is tested against zero
    (chi-square, :data:`TILT_CHI2`); the standard error of the tilt is
    ``dtilt/dB`` times that of ``B`` (``B`` floored at its own error, where
    the derivative is finite)."""
    x = np.concatenate([coef[:, 0], coef[:, 1]])
    full = np.zeros((6, 6))
    full[:3, :3], full[3:, 3:] = cov[0], cov[1]
    parts = [(lin @ x, lin @ full @ lin.T) for lin in _SHAPE_PARTS]
    (va, _), (vb, sb) = sorted(parts, key=lambda p: -np.hypot(*p[0]))
    a_norm, b_norm = float(np.hypot(*va)), float(np.hypot(*vb))
    try:
        chi2 = float(vb @ np.linalg.solve(sb, vb))
    except np.linalg.LinAlgError:
        chi2 = math.inf if b_norm > 0 else 0.0
    u = vb / b_norm if b_norm > 0 else np.array([math.sqrt(0.5)] * 2)
    sigma_b = float(np.sqrt(max(u @ sb @ u, 0.0)))
    b_eff = min(max(b_norm, sigma_b), 0.999 * a_norm)
    cos_t = (a_norm - b_eff) / (a_norm + b_eff)
    slope = (
        2 * a_norm / (a_norm + b_eff) ** 2 / math.sqrt(1 - cos_t**2)
        if b_eff > 0
        else 0.0
    )
    tilt_se = float(np.degrees(slope * sigma_b))
    return tilt_se, bool(chi2 > TILT_CHI2)


# --- the public function -------------------------------------------------


def fit_center_ellipse(
    movie,
    angles_per_line,
    seed,
    *,
    frame=0,
    cell_radius=None,
    initial=None,
    min_correlation=0.5,
    search=None,
    group_degrees=0.05,
    max_group=16,
    min_positions=8,
    smooth=1.0,
    progress: Callable | None = None,
) -> EllipseFit:
    """Fit the ellipse traced by one cell to find the centre of rotation.

    Parameters
    ----------
    movie : array (frames, rows, cols)
        The raw (rotating) movie; not modified.
    angles_per_line : 1-D array
        Angle in degrees of every scanned line.
    seed : (row, col)
        A click anywhere on a bright cell (or just beside it) in frame
        ``frame`` of the raw movie: it is snapped to the centroid of the
        cell. The cell may be partly outside the frame, and may leave it at
        some angles: the fit uses the angles where it is seen, if they span
        60 degrees or more.
    frame : int
        The frame the seed was picked in.
    cell_radius : float, optional
        Radius of the cell in pixels; default estimated from the seed.
    initial : (row, col), optional
        First guess of the centre, used to predict where the cell goes until
        its path can be fitted; default the frame centre.
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
        With the uncertainty of the centre and the tilt, and whether the
        tilt is significant.

    Raises
    ------
    DerotationError
        A seed outside the frame or on no cell, ``frame`` out of range, a
        movie that does not rotate, or positions that do not constrain an
        ellipse (the message says at how many angles, over what span, the
        cell was seen).
    Cancelled
        When ``progress`` returned ``False``.
    """
    movie, angles, seed = _check_inputs(movie, angles_per_line, seed, frame)
    n = movie.shape[0]
    c_est = check_center(
        initial if initial is not None else default_center(movie.shape), movie.shape
    )
    frames = GroupedMovie(movie, angles, group_degrees, max_group, smooth)
    gi = frames.group_of(frame)
    seed_pos, radius = snap_seed(frames, gi, seed, cell_radius)
    template = CellTemplate(frames, gi, seed_pos, radius)
    window = int(math.ceil(search if search else max(8.0, 2.0 * radius)))
    tracker = CellTracker(frames, template, c_est, window, min_correlation, progress)
    tracker.follow(gi, seed_pos, angle_at_row(angles[frame], seed_pos[0]))

    lost = np.array(sorted(set(tracker.lost) | set(tracker.hidden)), np.intp)
    positions, ang, first = _per_angle(tracker.found)
    _check_coverage(ang, n, lost.size, min_positions)
    keep, coef, cov, res = _fit_path(positions, ang, min_positions)
    positions, ang, first = positions[keep], ang[keep], first[keep]
    center, axes, orientation, _, _ = _ellipse_from_matrix(coef[0], coef[1:].T)
    center_se = tuple(float(np.sqrt(cov[k, 0, 0])) for k in range(2))
    tilt_se, significant = _tilt_statistics(coef, cov)
    messages = _messages(n, tracker, center_se)
    orientation = _wrap_orientation(orientation)
    return EllipseFit(
        center=center,
        axes=axes,
        orientation=orientation,
        tilt=ellipse_to_plane(axes),
        plane_orientation=orientation,
        positions=positions,
        angles=ang,
        residual=float(np.sqrt(np.mean(np.sum(res * res, axis=1)))),
        frames=first,
        lost_frames=lost,
        seed=(float(seed_pos[0]), float(seed_pos[1])),
        cell_radius=radius,
        center_uncertainty=center_se,
        tilt_uncertainty=tilt_se,
        tilt_significant=significant,
        messages=messages,
    )


def _messages(n, tracker: CellTracker, center_se) -> list[str]:
    """Warnings: frames where the cell was lost or out of view, a centre
    known to worse than a pixel."""
    out = []
    lost, hidden = sorted(set(tracker.lost)), sorted(set(tracker.hidden))
    if lost:
        out.append(
            f"the cell was lost in {len(lost)} of {n} frames (first at frame {lost[0]})"
        )
    if hidden:
        out.append(
            f"the cell was out of view in {len(hidden)} of {n} frames "
            f"(first at frame {hidden[0]}); the fit uses the others"
        )
    if max(center_se) > 1.0:
        out.append(
            f"the centre is uncertain by +-({center_se[0]:.1f}, "
            f"{center_se[1]:.1f}) px: the cell was seen over too "
            "little of the rotation, or followed poorly"
        )
    return out
