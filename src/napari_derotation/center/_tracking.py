"""Follow one cell through a rotating movie (for :mod:`.ellipse`).

The pieces, each small:

- :class:`GroupedMovie` averages runs of frames with the same angles and
  hands out smoothed crops, ``NaN`` where the crop leaves the frame;
- :func:`snap_seed` moves a click anywhere on a cell to the cell (the
  centroid of the bright blob that contains the click, or is nearest to it);
- :class:`CellTemplate` is the cell as first seen, with a mask of the pixels
  that were inside the frame; it matches itself, turned by the change of
  angle, by a *masked* normalised cross-correlation, so a cell partly outside
  the frame is still found from the part that is inside;
- :class:`CellTracker` walks the groups in time order from the seed, both
  ways, predicting where the cell goes from the angles (about a first guess
  of the centre, then from the path fitted so far) and recording where it is
  found and where not.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft, ndimage

from ..errors import Cancelled, DerotationError

#: Fewest visible fraction of the template's contrast for a match to count.
MIN_VISIBLE = 0.6


def _rot(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def angle_at_row(angles_row: np.ndarray, row: float) -> float:
    """Angle of the line that scanned ``row`` (interpolated, clipped)."""
    r = min(max(row, 0.0), angles_row.size - 1.0)
    return float(np.interp(r, np.arange(angles_row.size), angles_row))


class GroupedMovie:
    """Runs of consecutive frames whose per-line angles agree within ``tol``
    (at most ``max_len`` long), averaged and smoothed on demand, crop by
    crop (the whole frame is never smoothed)."""

    def __init__(self, movie, angles2d, tol: float, max_len: int, smooth: float):
        self.movie, self.angles, self.smooth = movie, angles2d, smooth
        self.shape = movie.shape[1:]
        self.groups, start = [], 0
        n = angles2d.shape[0]
        for f in range(1, n + 1):
            if (
                f == n
                or f - start >= max_len
                or np.abs(angles2d[f] - angles2d[start]).max() > tol
            ):
                self.groups.append((start, f))
                start = f

    def group_of(self, frame: int) -> int:
        return next(i for i, (a, b) in enumerate(self.groups) if a <= frame < b)

    def crop(self, gi: int, r0: int, c0: int, size_r: int, size_c: int):
        """Rows ``r0:r0+size_r``, cols ``c0:c0+size_c`` of the smoothed mean
        of group ``gi``: float64, ``NaN`` outside the frame."""
        rows, cols = self.shape
        pad = int(math.ceil(3 * self.smooth)) + 1 if self.smooth else 0
        lo_r, hi_r = max(r0 - pad, 0), min(r0 + size_r + pad, rows)
        lo_c, hi_c = max(c0 - pad, 0), min(c0 + size_c + pad, cols)
        out = np.full((size_r, size_c), np.nan)
        if lo_r >= hi_r or lo_c >= hi_c:
            return out
        a, b = self.groups[gi]
        img = np.asarray(self.movie[a:b, lo_r:hi_r, lo_c:hi_c], np.float32).mean(
            axis=0, dtype=np.float64
        )
        if self.smooth:
            img = ndimage.gaussian_filter(img, self.smooth, mode="nearest")
        ir0, ir1 = max(r0, 0), min(r0 + size_r, rows)
        ic0, ic1 = max(c0, 0), min(c0 + size_c, cols)
        if ir0 < ir1 and ic0 < ic1:
            out[ir0 - r0 : ir1 - r0, ic0 - c0 : ic1 - c0] = img[
                ir0 - lo_r : ir1 - lo_r, ic0 - lo_c : ic1 - lo_c
            ]
        return out


def snap_seed(frames: GroupedMovie, gi: int, seed, radius=None):
    """The cell at or near ``seed`` in group ``gi``: its centroid and radius.

    The blob is the connected region above half-way between the local
    background (median of a 49x49 patch) and the brightest point within
    ``max(8, 1.5 radius)`` px of the click; the one containing the click is
    taken, else the nearest. Raises when nothing there stands out."""
    h = 24 if radius is None else max(24, int(math.ceil(3 * radius)))
    r0, c0 = int(round(seed[0])) - h, int(round(seed[1])) - h
    patch = frames.crop(gi, r0, c0, 2 * h + 1, 2 * h + 1)
    ok = np.isfinite(patch)
    bg = float(np.median(patch[ok]))
    spread = 1.4826 * float(np.median(np.abs(patch[ok] - bg)))
    yy, xx = np.mgrid[r0 : r0 + 2 * h + 1, c0 : c0 + 2 * h + 1]
    d = np.hypot(yy - seed[0], xx - seed[1])
    near = ok & (d <= max(8.0, 1.5 * (radius or 0)))
    peak = float(patch[near].max()) if near.any() else bg
    if not peak - bg > max(4 * spread, 1e-6 * abs(bg), 1e-9):
        raise DerotationError(
            f"no bright cell at the seed ({seed[0]:g}, {seed[1]:g}): the "
            f"brightest point within 8 px is {peak - bg:.3g} above the "
            f"background, expected more than {max(4 * spread, 1e-9):.3g}; "
            "click on a bright cell"
        )
    thr = bg + 0.5 * (peak - bg)
    labels, _ = ndimage.label(np.where(ok, patch, -np.inf) > thr)
    on = labels > 0
    dist = np.where(on, d, np.inf)
    cell = labels == labels.flat[int(np.argmin(dist))]
    w = np.where(cell, patch - bg, 0.0)
    pos = np.array([(w * yy).sum(), (w * xx).sum()]) / w.sum()
    est = math.sqrt(cell.sum() / math.pi)
    return pos, float(radius) if radius else float(np.clip(est, 2.0, 15.0))


class CellTemplate:
    """The cell around ``pos`` in group ``gi``, on a disc of radius ``h``,
    with the mask of the pixels inside the frame."""

    def __init__(self, frames: GroupedMovie, gi: int, pos, radius: float):
        self.h = h = int(math.ceil(2.0 * radius)) + 2
        self.q = np.mgrid[-h : h + 1, -h : h + 1].astype(float)
        self.disc = np.hypot(*self.q) <= h + 0.5
        r0, c0 = int(math.floor(pos[0])) - h - 2, int(math.floor(pos[1])) - h - 2
        crop = frames.crop(gi, r0, c0, 2 * h + 6, 2 * h + 6)
        pts = self.q + (np.asarray(pos, float) - (r0, c0))[:, None, None]
        self.values = _sample(crop, pts)
        self.values[~self.disc] = np.nan
        self.energy = float(np.nansum((self.values - np.nanmean(self.values)) ** 2))

    def rotated(self, dtheta: float) -> np.ndarray:
        """The template as the cell looks after the sample turned by
        ``dtheta`` degrees (``NaN`` where unknown)."""
        if abs(dtheta) < 1e-6:
            return self.values
        rq = np.tensordot(_rot(dtheta), self.q, axes=1) + self.h
        out = _sample(self.values, rq)
        out[~self.disc] = np.nan
        return out

    def find(self, frames: GroupedMovie, gi: int, pred, window: int, dtheta: float):
        """Best match near ``pred``: ``(position, score, in_view)``;
        position None when no offset in the window shows enough of the cell
        (``score`` NaN) or the best match is on the window's edge;
        ``in_view`` says whether the cell would be in view at ``pred``."""
        tpl = self.rotated(dtheta)
        h = self.h
        r0, c0 = int(round(pred[0])), int(round(pred[1]))
        lo_r, lo_c = r0 - window - h, c0 - window - h
        size = 2 * (window + h) + 1
        win = frames.crop(gi, lo_r, lo_c, size, size)
        ncc = masked_ncc(win, tpl)
        in_view = bool(np.isfinite(ncc[window, window]))
        if not np.isfinite(ncc).any():
            return None, float("nan"), in_view
        i, j = np.unravel_index(int(np.nanargmax(ncc)), ncc.shape)
        score = float(ncc[i, j])
        if not (0 < i < ncc.shape[0] - 1 and 0 < j < ncc.shape[1] - 1):
            return None, score, in_view
        pos = refine(win, np.array([h + i, h + j], float), tpl, self.q)
        return pos + (lo_r, lo_c), score, in_view


def _sample(img, pts):
    """Cubic interpolation of ``img`` (``NaN`` = unknown) at ``pts``;
    ``NaN`` wherever a pixel within one of the point is unknown."""
    ok = np.isfinite(img)
    fill = np.where(ok, img, np.nanmean(img) if ok.any() else 0.0)
    v = ndimage.map_coordinates(fill, pts, order=3, mode="nearest")
    bad = ndimage.map_coordinates(
        (~ok).astype(float), pts, order=1, mode="constant", cval=1.0
    )
    v[bad > 1e-6] = np.nan
    return v


def masked_ncc(win: np.ndarray, tpl: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of ``tpl`` at every offset that keeps it
    inside ``win``, over the pixels known in both (``NaN`` = unknown).
    Offsets where less than :data:`MIN_VISIBLE` of the template's contrast
    is visible are ``NaN``."""
    mi, mt = np.isfinite(win), np.isfinite(tpl)
    if not mi.any():
        return np.full(
            (win.shape[0] - tpl.shape[0] + 1, win.shape[1] - tpl.shape[1] + 1), np.nan
        )
    # less round-off in the sums below: both about zero
    img = np.where(mi, win - win[mi].mean(), 0.0)
    t = np.where(mt, tpl - tpl[mt].mean(), 0.0)
    shape = win.shape
    kr, kc = tpl.shape
    out = (shape[0] - kr + 1, shape[1] - kc + 1)
    energy = t * t
    # all six correlations in three batched transforms
    f_img = fft.rfft2(np.stack([img, img * img, mi.astype(float)]), shape)
    f_k = np.conj(fft.rfft2(np.stack([mt.astype(float), t, energy]), shape))
    pairs = ((2, 0), (0, 0), (1, 0), (2, 1), (2, 2), (0, 1))
    prod = np.stack([f_img[a] * f_k[b] for a, b in pairs])
    n, s_i, s_ii, s_t, s_tt, s_ti = fft.irfft2(prod, shape)[:, : out[0], : out[1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.maximum(n, 1e-9)
        var_t = s_tt - s_t * s_t / n
        var_i = s_ii - s_i * s_i / n
        ncc = (s_ti - s_t * s_i / n) / np.sqrt(var_t * var_i)
    # a flat patch (no contrast, as in a noiseless background) matches nothing
    flat = (var_i <= 1e-9 * np.maximum(s_ii, 1e-300)) | (var_t <= 0)
    ncc[flat] = 0.0
    visible = s_tt / max(float(energy.sum()), 1e-12)
    ncc[(visible < MIN_VISIBLE) | (n < 0.3 * mt.sum())] = np.nan
    return ncc


def refine(win, pos, tpl, q, iterations: int = 8):
    """Sub-pixel position near the integer ``pos`` in ``win``: Gauss-Newton
    match ``win(q + x) = a * tpl(q) + b`` over the template pixels that fall
    at least two pixels inside the known part of ``win`` (the gradient of
    the image at the match taken as ``a`` times the template's)."""
    ok = np.isfinite(win)
    inner = ndimage.binary_erosion(ok, iterations=2, border_value=0)
    hi = np.array(win.shape)[:, None, None] - 1
    ri = np.clip(np.rint(q + pos[:, None, None]).astype(int), 0, hi)
    grad = np.gradient(tpl)
    use = (
        np.isfinite(tpl)
        & np.isfinite(grad[0])
        & np.isfinite(grad[1])
        & inner[ri[0], ri[1]]
    )
    if use.sum() < 9:
        return pos
    coeffs = ndimage.spline_filter(np.where(ok, win, np.nanmean(win)), order=3)
    t, gr, gc, qq = tpl[use], grad[0][use], grad[1][use], q[:, use]
    x = np.asarray(pos, float).copy()
    a, b = 1.0, 0.0
    for k in range(iterations):
        v = ndimage.map_coordinates(
            coeffs, qq + x[:, None], order=3, mode="nearest", prefilter=False
        )
        if k == 0:  # the photometric part first
            tv = t - t.mean()
            a = max(float(tv @ (v - v.mean())) / max(float(tv @ tv), 1e-12), 1e-3)
            b = float(v.mean() - a * t.mean())
        r = v - a * t - b
        jac = np.stack([a * gr, a * gc, -t, -np.ones_like(t)], axis=1)
        step = np.linalg.lstsq(jac, -r, rcond=None)[0]
        x += step[:2]
        a, b = a + step[2], b + step[3]
        if not np.all(np.isfinite(x)) or np.hypot(*(x - pos)) > 1.5:
            return pos
        if np.hypot(*step[:2]) < 1e-3:
            break
    return x


class CellTracker:
    """Follows one cell group by group and keeps what it saw.

    ``found`` holds ``(row, col, theta, first frame)`` per sighting,
    ``lost`` the frames where the cell was in view but not found, ``hidden``
    those where it was not found and its predicted place is out of view
    (the search window there does not widen)."""

    def __init__(
        self,
        frames: GroupedMovie,
        template: CellTemplate,
        center_guess,
        window: int,
        min_correlation: float,
        progress=None,
    ):
        self.frames, self.template = frames, template
        self.c_est = np.asarray(center_guess, float)
        self.window, self.min_correlation = window, min_correlation
        self.progress, self.done = progress, 0
        self.found: list[tuple[float, float, float, int]] = []
        self.lost: list[int] = []
        self.hidden: list[int] = []
        self.model = None

    def follow(self, seed_gi: int, seed_pos, seed_theta: float) -> None:
        """Walk forwards from the seed's group, then backwards from it."""
        a, b = self.frames.groups[seed_gi]
        self.found.append((seed_pos[0], seed_pos[1], seed_theta, a))
        self._tick(b - a)
        n = len(self.frames.groups)
        for order in (range(seed_gi + 1, n), range(seed_gi - 1, -1, -1)):
            pos, theta, misses = np.asarray(seed_pos, float), seed_theta, 0
            for gi in order:
                pos, theta, misses = self._step(gi, pos, theta, misses, seed_theta)

    def _step(self, gi, pos, theta, misses, seed_theta):
        a, b = self.frames.groups[gi]
        rows = self.frames.angles
        pred, th = pos, theta
        for _ in range(3):  # the line that scans the cell <-> its angle
            th = angle_at_row(rows[a], float(pred[0]))
            pred = self.predict(pos, theta, th)
        hit, score, in_view = self.template.find(
            self.frames, gi, pred, self.window + 2 * misses, th - seed_theta
        )
        self._tick(b - a)
        if hit is not None and score >= self.min_correlation:
            th = angle_at_row(rows[a], float(hit[0]))
            self.found.append((float(hit[0]), float(hit[1]), th, a))
            if len(self.found) % 4 == 0:
                model = self.fit_model()
                self.model = self.model if model is None else model
            return hit, th, 0
        if not in_view:
            self.hidden.extend(range(a, b))
            return pos, theta, misses
        self.lost.extend(range(a, b))
        return pos, theta, min(misses + 1, 5)

    def predict(self, prev_pos, prev_theta: float, theta: float):
        """Where the cell seen at ``prev_pos`` (angle ``prev_theta``) is at
        ``theta``: along the path fitted so far, else about the guess."""
        if self.model is None:
            return self.c_est + _rot(prev_theta - theta) @ (prev_pos - self.c_est)
        th0, th1 = np.deg2rad(prev_theta), np.deg2rad(theta)
        return prev_pos + self.model @ np.array(
            [np.cos(th1) - np.cos(th0), np.sin(th1) - np.sin(th0)]
        )

    def fit_model(self):
        """The matrix ``M`` of ``p = c + M (cos, sin)`` from the sightings
        so far: a general ellipse over 40 degrees or more, a circle (an
        untilted plane) over 10 or more; None before."""
        if len(self.found) < 4:
            return None
        a = np.array(self.found)
        th = np.deg2rad(a[:, 2])
        span = np.ptp(np.unwrap(th))
        cos, sin = np.cos(th), np.sin(th)
        one, zero = np.ones_like(th), np.zeros_like(th)
        if len(a) >= 6 and span >= np.deg2rad(40):
            design = np.stack([one, cos, sin], axis=1)
            coef = np.linalg.lstsq(design, a[:, :2], rcond=None)[0]
            return coef[1:].T
        if span < np.deg2rad(10):
            return None
        # circle: p - c = (wr cos + wc sin, wc cos - wr sin)
        design = np.block(
            [
                [one[:, None], zero[:, None], cos[:, None], sin[:, None]],
                [zero[:, None], one[:, None], -sin[:, None], cos[:, None]],
            ]
        )
        x = np.linalg.lstsq(design, np.concatenate([a[:, 0], a[:, 1]]), rcond=None)[0]
        wr, wc = x[2], x[3]
        return np.array([[wr, wc], [wc, -wr]])

    def _tick(self, k: int) -> None:
        self.done += k
        if (
            self.progress is not None
            and self.progress(self.done, self.frames.angles.shape[0]) is False
        ):
            raise Cancelled(
                f"ellipse fit cancelled after {self.done} of "
                f"{self.frames.angles.shape[0]} frames"
            )
