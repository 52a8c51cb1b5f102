"""Compiled loops of the engine and the simulator (numba).

Everything here works on plain arrays and is called by :mod:`.engine` and
:mod:`.simulate`, which validate input first. Coordinates are (row, col).

The scan model shared by both directions: line ``k`` of a frame, acquired at
angle ``theta_k``, sampled the sample (the static image) at

    P(k, x) = c + R(theta_k) @ ((k, x) - c),   R(t) = [[cos t, -sin t],
                                                        [sin t,  cos t]]

Derotation inverts this per output pixel ``q``: it looks for the fractional
line ``s`` at which the scan passed over ``q``. With cos/sin interpolated
linearly between lines, ``g(s) = c_r + C(s) d_r + S(s) d_c - s`` (``d = q - c``)
is piecewise linear, so the crossing inside a segment is exact. A walk from a
guess (the previous pixel's answer) finds the segment in one or two steps.
"""

from __future__ import annotations

import math

import numba
import numpy as np

NEAREST = 0
BILINEAR = 1

#: Floating-point shortcuts that keep NaN and infinity semantics (movies may
#: hold NaN).
FAST = {"contract", "arcp", "nsz", "reassoc", "afn"}

#: The plane matrices (see :func:`_coefficients`) for an untilted plane.
IDENTITY = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0])


@numba.njit(cache=True, inline="always")
def _cast(v, lo, hi, is_int):
    """A float sample ready to store: rounded and clipped to [lo, hi] for
    integer outputs, unchanged for float outputs."""
    if is_int:
        v = min(max(math.floor(v + 0.5), lo), hi)
    return v


@numba.njit(cache=True, inline="always", error_model="numpy")
def _sample(img, y, x, nrows, ncols, mode):
    """Sample the 2-D ``img`` at (y, x), both already inside the frame
    extended by half a pixel; edges are clamped."""
    if y < 0.0:
        y = 0.0
    elif y > nrows - 1:
        y = nrows - 1.0
    if x < 0.0:
        x = 0.0
    elif x > ncols - 1:
        x = ncols - 1.0
    # y, x >= 0 here, so int() truncation is floor()
    if mode == NEAREST:
        return float(img[int(y + 0.5), int(x + 0.5)])
    y0 = int(y)
    x0 = int(x)
    fy = y - y0
    fx = x - x0
    y1 = y0 + 1 if y0 + 1 < nrows else y0
    x1 = x0 + 1 if x0 + 1 < ncols else x0
    a = float(img[y0, x0]) * (1.0 - fx) + float(img[y0, x1]) * fx
    b = float(img[y1, x0]) * (1.0 - fx) + float(img[y1, x1]) * fx
    return a * (1.0 - fy) + b * fy


@numba.njit(cache=True, inline="always")
def _coefficients(dr, dc, pm):
    """Scanned point of output offset (dr, dc) at angle t, as
    ``(cos t * a_r + sin t * b_r, cos t * a_c + sin t * b_c)``.

    ``pm = (A00, A01, A10, A11, E00, E01, E10, E11)``: ``E`` takes the output
    offset into the rotation plane, ``A`` takes the rotation plane to the
    image. Without tilt both are the identity and this is
    ``(dr, dc, dc, -dr)``. Returns ``(a_r, b_r, a_c, b_c)``.
    """
    er = pm[4] * dr + pm[5] * dc
    ec = pm[6] * dr + pm[7] * dc
    return (pm[0] * er + pm[1] * ec, pm[0] * ec - pm[1] * er,
            pm[2] * er + pm[3] * ec, pm[2] * ec - pm[3] * er)


@numba.njit(cache=True, error_model="numpy", fastmath=FAST)
def _root(ct, st, cr, cc, qr, qc, guess, nrows, maxstep, pm):
    """Where the scan of one frame passed over output pixel (qr, qc).

    ``ct``/``st``: cos/sin of the frame's per-line angles. Returns ``(s, x)``:
    the fractional line ``s`` whose scan crossed the pixel and the position
    ``x`` along it. Beyond the first and last lines the scan is continued
    with their angles, so a crossing always exists; the pixel was really
    scanned only if :func:`_covered` says so. The walk starts at line
    ``guess``. ``maxstep`` is the largest turn between two lines of the frame
    (radians): when it moves this pixel by less than a line, g decreases, and
    the first and last lines alone tell when the crossing is beyond them.

    ``pm`` describes a tilted rotation plane (see :func:`_coefficients`);
    without tilt the scanned point is ``c + R(-theta) (q - c)``.
    """
    dr, dc, ac, bc = _coefficients(qr - cr, qc - cc, pm)
    last = nrows - 1
    if nrows == 1 or maxstep * maxstep * (dr * dr + dc * dc) < 0.998:
        g0 = cr + ct[0] * dr + st[0] * dc
        if g0 < 0.0 or nrows == 1:
            return g0, cc + ct[0] * ac + st[0] * bc
        gl = cr + ct[last] * dr + st[last] * dc - last
        if gl > 0.0:
            return last + gl, cc + ct[last] * ac + st[last] * bc
    k = int(guess + 1.0) - 1
    if k > nrows - 2:
        k = nrows - 2
    if k < 0:
        k = 0
    c0 = ct[k]
    s0 = st[k]
    c1 = ct[k + 1]
    s1 = st[k + 1]
    gk = cr + c0 * dr + s0 * dc - k
    gk1 = cr + c1 * dr + s1 * dc - (k + 1)
    while True:
        if gk < 0.0:
            if k == 0:
                return gk, cc + c0 * ac + s0 * bc
            k -= 1
            gk1 = gk
            c1 = c0
            s1 = s0
            c0 = ct[k]
            s0 = st[k]
            gk = cr + c0 * dr + s0 * dc - k
        elif gk1 > 0.0:
            if k + 1 == last:
                return last + gk1, cc + c1 * ac + s1 * bc
            k += 1
            gk = gk1
            c0 = c1
            s0 = s1
            c1 = ct[k + 1]
            s1 = st[k + 1]
            gk1 = cr + c1 * dr + s1 * dc - (k + 1)
        else:
            den = gk - gk1
            t = gk / den if den > 0.0 else 0.0
            return k + t, (cc + (c0 + (c1 - c0) * t) * ac
                           + (s0 + (s1 - s0) * t) * bc)


@numba.njit(cache=True, inline="always")
def _covered(s, x, nrows, ncols):
    """True when (s, x) lies on the frame's scanned area (half a pixel
    beyond the first and last lines and columns included)."""
    return -0.5 <= s <= nrows - 0.5 and -0.5 <= x <= ncols - 0.5


#: Output pixels are mapped in cells of CELL x CELL: the exact inverse is found
#: at the cell corners and centre; where the map is smooth (the centre agrees
#: with the corners' interpolation within TOL px, and no angle kink is nearby)
#: it is interpolated inside the cell, otherwise solved for every pixel.
CELL = 8
TOL = 0.05


@numba.njit(cache=True, error_model="numpy", fastmath=FAST)
def _knot_row(ct, st, cr, cc, qr, nknots, nrows, maxstep, pm, ks, kx):
    g = qr
    for j in range(nknots):
        if j >= 2:                      # extrapolate the crossing along the row
            g = 2.0 * ks[j - 1] - ks[j - 2]
        s, x = _root(ct, st, cr, cc, qr, float(j * CELL), g, nrows, maxstep,
                     pm)
        ks[j] = s
        kx[j] = x
        g = s


@numba.njit(cache=True, error_model="numpy", fastmath=FAST)
def _cell_is_smooth(ct, st, rf, cr, cc, r0, c0, a, b, c, d, xa, xb, xc, xd,
                    nrows, maxstep, pm):
    """True when the map inside the cell may be interpolated from its corners
    (crossings a, b, c, d at positions xa..xd: top-left, top-right,
    bottom-left, bottom-right)."""
    kmin = max(int(min(min(a, b), min(c, d)) + 1.0) - 2, 0)
    kmax = min(int(max(max(a, b), max(c, d))) + 2, nrows - 1)
    for k in range(kmin, kmax + 1):
        if rf[k]:
            return False
    si = 0.25 * (a + b + c + d)
    xi = 0.25 * (xa + xb + xc + xd)
    sm, xm = _root(ct, st, cr, cc, r0 + 0.5 * CELL, c0 + 0.5 * CELL, si, nrows,
                   maxstep, pm)
    return abs(sm - si) < TOL and abs(xm - xi) < TOL


@numba.njit(cache=True, parallel=True, error_model="numpy", fastmath=FAST)
def derotate_frames(movie, cos_t, sin_t, rough, maxstep, still, cr, cc, pm,
                    mode, fill, lo, hi, is_int, out):
    """Derotate every frame of ``movie`` into ``out`` (same shape).

    ``cos_t``/``sin_t``: (frames, rows) per-line tables; ``rough[f, k]`` marks
    lines where the angle's second difference is large (a kink or a jump);
    ``maxstep[f]``: the largest turn between two lines of frame ``f``;
    ``still[f]`` is True when every line of frame ``f`` has angle 0 (the frame
    is copied, unless ``pm`` tilts the plane); ``pm``: see
    :func:`_coefficients`.
    """
    nf, nrows, ncols = movie.shape
    nbr = (nrows + CELL - 1) // CELL
    nbc = (ncols + CELL - 1) // CELL
    # exact crossings on the grid of cell corners, each knot row once
    ks = np.empty((nf, nbr + 1, nbc + 1))
    kx = np.empty((nf, nbr + 1, nbc + 1))
    for idx in numba.prange(nf * (nbr + 1)):
        f = idx // (nbr + 1)
        k = idx % (nbr + 1)
        if not still[f]:
            _knot_row(cos_t[f], sin_t[f], cr, cc, float(k * CELL), nbc + 1,
                      nrows, maxstep[f], pm, ks[f, k], kx[f, k])
    for idx in numba.prange(nf * nbr):
        f = idx // nbr
        b = idx % nbr
        _derotate_block(movie[f], cos_t[f], sin_t[f], rough[f], maxstep[f],
                        still[f], b * CELL, nbc, cr, cc, pm, mode, fill, lo, hi,
                        is_int, ks[f, b], kx[f, b], ks[f, b + 1], kx[f, b + 1],
                        out[f])


@numba.njit(cache=True, error_model="numpy", fastmath=FAST)
def _derotate_block(img, ct, st, rf, maxstep, still, r0, nbc, cr, cc, pm,
                    mode, fill, lo, hi, is_int, ks_t, kx_t, ks_b, kx_b, out):
    """Rows r0 .. r0 + CELL of one frame, between the knot rows ``(ks_t,
    kx_t)`` (row r0) and ``(ks_b, kx_b)`` (row r0 + CELL). (A function of its
    own: numba's parallel loops mis-compile this much control flow inlined.)"""
    nrows, ncols = img.shape
    B = CELL
    r1 = min(r0 + B, nrows)
    if still:
        for qr in range(r0, r1):
            for qc in range(ncols):
                out[qr, qc] = img[qr, qc]
        return
    smooth = np.empty(nbc, np.bool_)
    for j in range(nbc):
        smooth[j] = _cell_is_smooth(ct, st, rf, cr, cc, r0, j * B, ks_t[j],
                                    ks_t[j + 1], ks_b[j], ks_b[j + 1], kx_t[j],
                                    kx_t[j + 1], kx_b[j], kx_b[j + 1], nrows,
                                    maxstep, pm)
    # per output row: where each pixel was scanned (S, X), then sample them
    S = np.empty(ncols)
    X = np.empty(ncols)
    scratch = _scratch(ncols)
    inv = 1.0 / B
    for qr in range(r0, r1):
        w = (qr - r0) * inv
        for j in range(nbc):
            c0 = j * B
            c1 = min(c0 + B, ncols)
            if smooth[j]:
                sl = ks_t[j] + (ks_b[j] - ks_t[j]) * w
                sr = ks_t[j + 1] + (ks_b[j + 1] - ks_t[j + 1]) * w
                xl = kx_t[j] + (kx_b[j] - kx_t[j]) * w
                xr = kx_t[j + 1] + (kx_b[j + 1] - kx_t[j + 1]) * w
                ds = (sr - sl) * inv
                dx = (xr - xl) * inv
                for qc in range(c0, c1):
                    S[qc] = sl + ds * (qc - c0)
                    X[qc] = xl + dx * (qc - c0)
            else:
                # solve every pixel, walking from the pixel above (or the
                # cell's corner on the block's first row)
                g = ks_t[j]
                for qc in range(c0, c1):
                    if qr > r0:
                        g = S[qc]
                    s, x = _root(ct, st, cr, cc, float(qr), float(qc), g, nrows,
                                 maxstep, pm)
                    S[qc] = s
                    X[qc] = x
                    g = s
        _sample_row(img, S, X, mode, fill, lo, hi, is_int, scratch, out[qr])


@numba.njit(cache=True, inline="always")
def _scratch(n):
    return (np.empty(n, np.int64), np.empty(n), np.empty(n), np.empty(n),
            np.empty(n), np.empty(n), np.empty(n), np.empty(n, np.bool_))


@numba.njit(cache=True, error_model="numpy", fastmath=FAST)
def _sample_row(img, S, X, mode, fill, lo, hi, is_int, scratch, out):
    """``out[i] = img`` sampled at ``(S[i], X[i])``, or ``fill`` where that
    point was not scanned. Three passes (positions, gathers, blends) so the
    arithmetic runs on vectors; the gathers are the only scalar part."""
    nrows, ncols = img.shape
    n = S.size
    idx, fy, fx, a, b, c, d, cov = scratch
    flat = img.ravel()
    if nrows < 2 or ncols < 2 or mode == NEAREST:
        for i in range(n):
            s = S[i]
            x = X[i]
            if _covered(s, x, nrows, ncols):
                out[i] = _cast(_sample(img, s, x, nrows, ncols, mode), lo, hi,
                               is_int)
            else:
                out[i] = fill
        return
    smax = nrows - 1.0
    xmax = ncols - 1.0
    for i in range(n):
        s = S[i]
        x = X[i]
        cov[i] = (s >= -0.5) & (s <= nrows - 0.5) & (x >= -0.5) & \
            (x <= ncols - 0.5)
        s = min(max(s, 0.0), smax)
        x = min(max(x, 0.0), xmax)
        y0 = min(np.int64(s), nrows - 2)
        x0 = min(np.int64(x), ncols - 2)
        fy[i] = s - y0
        fx[i] = x - x0
        idx[i] = y0 * ncols + x0
    for i in range(n):
        k = idx[i]
        a[i] = flat[k]
        b[i] = flat[k + 1]
        c[i] = flat[k + ncols]
        d[i] = flat[k + ncols + 1]
    for i in range(n):
        # (1 - f) weights: exact at f = 0 and f = 1 (still lines, edges)
        top = a[i] * (1.0 - fx[i]) + b[i] * fx[i]
        bot = c[i] * (1.0 - fx[i]) + d[i] * fx[i]
        v = _cast(top * (1.0 - fy[i]) + bot * fy[i], lo, hi, is_int)
        out[i] = v if cov[i] else fill


@numba.njit(cache=True, parallel=True)
def rotate_lines(images, image_index, cos_t, sin_t, cr, cc, pm, mode, fill, lo,
                 hi, is_int, out):
    """Forward model: line ``r`` of output frame ``f`` samples image
    ``images[image_index[f]]`` along the scan line rotated by that line's angle.
    """
    nf, nrows, ncols = out.shape
    for idx in numba.prange(nf * nrows):
        f = idx // nrows
        r = idx % nrows
        src = image_index[f]
        cs = cos_t[f, r]
        sn = sin_t[f, r]
        for c in range(ncols):
            # E = inverse of A takes the scanned offset into the rotation
            # plane; turn it by +theta; A brings it back to the image
            er = pm[4] * (r - cr) + pm[5] * (c - cc)
            ec = pm[6] * (r - cr) + pm[7] * (c - cc)
            ur = cs * er - sn * ec
            uc = sn * er + cs * ec
            y = cr + pm[0] * ur + pm[1] * uc
            x = cc + pm[2] * ur + pm[3] * uc
            if y < -0.5 or y > nrows - 0.5 or x < -0.5 or x > ncols - 0.5:
                out[f, r, c] = fill
                continue
            v = _sample(images[src], y, x, nrows, ncols, mode)
            out[f, r, c] = _cast(v, lo, hi, is_int)
