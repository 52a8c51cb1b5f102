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

import llvmlite.binding
import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

NEAREST = 0
BILINEAR = 1
#: Catmull-Rom cubic convolution (Keys' a = -1/2): interpolating (the
#: samples are kept exactly), third-order accurate on smooth images, and
#: local (a 4 x 4 neighbourhood), so a frame needs no prefilter pass, works
#: in tiles and streams like the other modes. A cubic B-spline would need a
#: global prefilter of every frame (a whole-frame copy in float64 and more
#: ringing at the scanned disc's edge) for a smoothing it adds back.
CUBIC = 2

#: The kernels are compiled without fast-math flags: no reassociation, no
#: fused multiply-adds the compiler chooses. With them the last bits of a
#: result depended on how a kernel was compiled (in this process, or loaded
#: from numba's cache; as an int64 or a float64 specialisation), so one
#: movie could give different bytes in two runs. Without them every run
#: computes the operations in the order written here, at the same speed.

#: The name of LLVM's prefetch intrinsic (its pointer suffix changed when
#: LLVM's pointers became opaque, in LLVM 15).
_PREFETCH = (
    "llvm.prefetch.p0"
    if llvmlite.binding.llvm_version_info[0] >= 15
    else "llvm.prefetch.p0i8"
)


def _make_prefetch(write):
    @intrinsic
    def prefetch(typingctx, arr, k):
        def codegen(context, builder, sig, args):
            aryty = sig.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
            byte_ptr = builder.bitcast(ptr, ir.IntType(8).as_pointer())
            i32 = ir.IntType(32)
            fn = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(ir.VoidType(), [byte_ptr.type, i32, i32, i32]),
                _PREFETCH,
            )
            # read or write, kept in every cache level, of data
            builder.call(
                fn,
                [
                    byte_ptr,
                    ir.Constant(i32, int(write)),
                    ir.Constant(i32, 3),
                    ir.Constant(i32, 1),
                ],
            )
            return context.get_dummy_value()

        return types.none(arr, types.intp), codegen

    return prefetch


#: Ask the CPU to start loading ``arr[k]`` into its caches, to read it or to
#: write it, without waiting (hints: no effect on results).
_prefetch = _make_prefetch(False)
_prefetch_write = _make_prefetch(True)


def _make_copy(n):
    @intrinsic
    def copy(typingctx, src, k, dst, j):
        def codegen(context, builder, sig, args):
            sty, _, dty, _ = sig.args
            sa = context.make_array(sty)(context, builder, args[0])
            da = context.make_array(dty)(context, builder, args[2])
            sp = cgutils.get_item_pointer(context, builder, sty, sa, [args[1]])
            dp = cgutils.get_item_pointer(context, builder, dty, da, [args[3]])
            elt = context.get_data_type(sty.dtype)
            vec = ir.VectorType(elt, n).as_pointer()
            align = context.get_abi_sizeof(elt)
            v = builder.load(builder.bitcast(sp, vec), align=align)
            builder.store(v, builder.bitcast(dp, vec), align=align)
            return context.get_dummy_value()

        if src.dtype != dst.dtype:
            return None
        return types.none(src, k, dst, j), codegen

    return copy


#: ``dst[j:j + n] = src[k:k + n]`` with one load and one store (n = 2: the
#: two horizontal neighbours of a bilinear sample; n = 4: a row of a cubic
#: one; n = CELL: a row of a cell's result into the output). Sampling is
#: bound by its stores, so this halves its cost.
_copy_pair = _make_copy(2)
_copy_quad = _make_copy(4)


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
    return (
        pm[0] * er + pm[1] * ec,
        pm[0] * ec - pm[1] * er,
        pm[2] * er + pm[3] * ec,
        pm[2] * ec - pm[3] * er,
    )


@numba.njit(cache=True, error_model="numpy")
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
            return k + t, (cc + (c0 + (c1 - c0) * t) * ac + (s0 + (s1 - s0) * t) * bc)


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
_copy_row = _make_copy(CELL)


@numba.njit(cache=True, error_model="numpy")
def _knot_rows(ct, st, cr, cc, k0, nk, nrows, maxstep, pm, ks, kx):
    """The exact crossings at the knots of knot rows ``k0 .. k0 + nk`` (image
    rows ``k * CELL``, every CELL columns) into rows 0 .. nk of ``ks``/``kx``.
    Along a row each solve starts from the crossing extrapolated from the
    two before it; the rows are independent, so they are solved side by
    side (column by column), which lets the CPU overlap their solves."""
    for j in range(ks.shape[1]):
        qc = float(j * CELL)
        for i in range(nk):
            qr = float((k0 + i) * CELL)
            if j == 0:
                g = qr
            elif j == 1:
                g = ks[i, 0]
            else:  # extrapolate the crossing along the row
                g = 2.0 * ks[i, j - 1] - ks[i, j - 2]
            s, x = _root(ct, st, cr, cc, qr, qc, g, nrows, maxstep, pm)
            ks[i, j] = s
            kx[i, j] = x


@numba.njit(cache=True, error_model="numpy")
def _cell_is_smooth(
    ct, st, rf, cr, cc, r0, c0, a, b, c, d, xa, xb, xc, xd, nrows, maxstep, pm, h=CELL
):
    """True when the map inside the h x h cell at (r0, c0) may be
    interpolated from its corners (crossings a, b, c, d at positions xa..xd:
    top-left, top-right, bottom-left, bottom-right)."""
    if _rough_cell(rf, a, b, c, d):
        return False
    si = 0.25 * (a + b + c + d)
    xi = 0.25 * (xa + xb + xc + xd)
    sm, xm = _root(ct, st, cr, cc, r0 + 0.5 * h, c0 + 0.5 * h, si, nrows, maxstep, pm)
    return abs(sm - si) < TOL and abs(xm - xi) < TOL


def _fetch_add_codegen(context, builder, sig, args):
    aryty = sig.args[0]
    ary = context.make_array(aryty)(context, builder, args[0])
    ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
    return builder.atomic_rmw("add", ptr, args[2], "monotonic")


@intrinsic
def _fetch_add(typingctx, arr, i, n):
    """Atomically add ``n`` to the int64 ``arr[i]``; return its old value
    (the work counter that the engine's threads share)."""
    return types.int64(arr, types.intp, types.int64), _fetch_add_codegen


#: Cell rows of one frame per work unit (even: cells are checked in 2 x 2
#: groups). A unit solves its own knot rows (its top and bottom ones too,
#: which the units above and below solve again, the same way): two threads
#: that share a grid pass its cache lines from core to core, and new memory
#: written by two threads at once serialises on its page faults (a shared
#: grid made the knots no faster on two threads than on one). A unit's last
#: block prefetches nothing of the next unit's rows, which another thread
#: is likely writing.
UNIT_ROWS = 8


@numba.njit(cache=True, inline="always")
def _unit(idx, nunit, nbr):
    """Work unit ``idx``: its frame and its cell rows ``u0 .. u1``."""
    f = idx // nunit
    u0 = UNIT_ROWS * (idx % nunit)
    return f, u0, min(u0 + UNIT_ROWS, nbr)


@numba.njit(cache=True, error_model="numpy")
def _unit_grid(ct, st, rf, cr, cc, nrows, maxstep, pm, u0, u1, nbr, ks, kx, flags):
    """The knots of cell rows ``u0 .. u1`` of one frame (rows 0 .. u1 - u0
    of ``ks``/``kx``: the exact crossings at the cell corners) and which of
    their cells are smooth (rows of ``flags``)."""
    _knot_rows(ct, st, cr, cc, u0, u1 + 1 - u0, nrows, maxstep, pm, ks, kx)
    for p in range(u0, u1, 2):
        _smooth_flags(
            ct, st, rf, cr, cc, p - u0, u0, nbr, nrows, maxstep, pm, ks, kx, flags
        )


@numba.njit(cache=True, inline="always")
def _unit_scratch(ncols):
    """A thread's knot rows and cell flags for one unit."""
    nbc = -(-ncols // CELL)
    return (
        np.empty((UNIT_ROWS + 1, nbc + 1)),
        np.empty((UNIT_ROWS + 1, nbc + 1)),
        np.empty((UNIT_ROWS, nbc), np.bool_),
    )


@numba.njit(cache=True, nogil=True, error_model="numpy")
def derotate_pairs(
    counter,
    movie,
    cos_t,
    sin_t,
    rough,
    maxstep,
    cr,
    cc,
    pm,
    mode,
    fill,
    lo,
    hi,
    is_int,
    wk,
    tab,
    out,
):
    """Derotate every frame of ``movie`` into ``out`` (same shape), nearest
    or bilinear, UNIT_ROWS cell rows (of CELL image rows) per work unit
    taken from ``counter[0]`` (shared by the threads running this at once:
    a slow thread takes fewer units).

    ``cos_t``/``sin_t``: (frames, rows) per-line tables; ``rough[f, k]`` marks
    lines where the angle's second difference is large (a kink or a jump);
    ``maxstep[f]``: the largest turn between two lines of frame ``f``;
    ``pm``: see :func:`_coefficients`; ``wk``/``tab``: see
    :func:`work_tables`. (Frames that do not turn are copied by the engine.)
    """
    nf, nrows, ncols = movie.shape
    nbr = -(-nrows // CELL)
    scratch = _scratch(wk.dtype, movie.dtype, out.dtype)
    ks, kx, flags = _unit_scratch(ncols)
    nunit = -(-nbr // UNIT_ROWS)
    total = nf * nunit
    while True:
        idx = _fetch_add(counter, 0, 1)
        if idx >= total:
            return
        f, u0, u1 = _unit(idx, nunit, nbr)
        ct, st, rf = cos_t[f], sin_t[f], rough[f]
        _unit_grid(
            ct, st, rf, cr, cc, nrows, maxstep[f], pm, u0, u1, nbr, ks, kx, flags
        )
        for b in range(u0, u1):
            i = b - u0
            n = min(i + 2, u1 - u0)
            _derotate_block(
                movie[f],
                ct,
                st,
                rf,
                maxstep[f],
                b * CELL,
                flags[i],
                cr,
                cc,
                pm,
                mode,
                fill,
                lo,
                hi,
                is_int,
                wk,
                tab,
                ks[i],
                kx[i],
                ks[i + 1],
                kx[i + 1],
                ks[n],
                kx[n],
                b + 1 < u1,
                out[f],
                scratch,
            )


@numba.njit(cache=True, error_model="numpy")
def _smooth_flags(ct, st, rf, cr, cc, r, top, nbr, nrows, maxstep, pm, ks, kx, flags):
    """Which cells of cell rows ``top + r`` and ``top + r + 1`` (of the
    frame's ``nbr``) may be interpolated from their corners' crossings
    (``ks``, ``kx``, ``flags``: rows from cell row ``top`` on).

    A 2 x 2 group of cells is smooth at once when no rough line is scanned
    inside it and its five inner knots (edge midpoints and centre) agree
    with the bilinear interpolation of its four outer corners within TOL:
    its cells, interpolated from all nine exact knots, are closer still.
    Otherwise each cell is checked at its centre (:func:`_cell_is_smooth`).
    """
    nbc = flags.shape[1]
    for c in range(0, nbc, 2):
        ok = top + r + 2 <= nbr and c + 2 <= nbc
        if ok:
            lo = ks[r, c]
            hi = lo
            for a in range(3):
                for b in range(3):
                    lo = min(lo, ks[r + a, c + b])
                    hi = max(hi, ks[r + a, c + b])
            ok = not _any_rough(rf, lo, hi)
        if ok:
            ok = _agrees(ks, r, c) and _agrees(kx, r, c)
        for rr in range(r, min(r + 2, nbr - top)):
            for j in range(c, min(c + 2, nbc)):
                flags[rr, j] = ok or _cell_is_smooth(
                    ct,
                    st,
                    rf,
                    cr,
                    cc,
                    (top + rr) * CELL,
                    j * CELL,
                    ks[rr, j],
                    ks[rr, j + 1],
                    ks[rr + 1, j],
                    ks[rr + 1, j + 1],
                    kx[rr, j],
                    kx[rr, j + 1],
                    kx[rr + 1, j],
                    kx[rr + 1, j + 1],
                    nrows,
                    maxstep,
                    pm,
                )


@numba.njit(cache=True, inline="always")
def _any_rough(rf, lo, hi):
    """True when a rough line lies near the crossings in [lo, hi]."""
    for k in range(max(int(lo + 1.0) - 2, 0), min(int(hi) + 2, rf.size - 1) + 1):
        if rf[k]:
            return True
    return False


@numba.njit(cache=True, inline="always")
def _rough_cell(rf, a, b, c, d):
    """True when a rough line lies near a cell whose corners were crossed at
    lines a, b, c, d."""
    return _any_rough(rf, min(min(a, b), min(c, d)), max(max(a, b), max(c, d)))


@numba.njit(cache=True, inline="always")
def _agrees(kk, r, c):
    """The 3 x 3 knots from (r, c): do the inner five match the bilinear
    interpolation of the four corners within TOL?"""
    p00 = kk[r, c]
    p02 = kk[r, c + 2]
    p20 = kk[r + 2, c]
    p22 = kk[r + 2, c + 2]
    return (
        abs(kk[r, c + 1] - 0.5 * (p00 + p02)) < TOL
        and abs(kk[r + 2, c + 1] - 0.5 * (p20 + p22)) < TOL
        and abs(kk[r + 1, c] - 0.5 * (p00 + p20)) < TOL
        and abs(kk[r + 1, c + 2] - 0.5 * (p02 + p22)) < TOL
        and abs(kk[r + 1, c + 1] - 0.25 * (p00 + p02 + p20 + p22)) < TOL
    )


@numba.njit(cache=True, error_model="numpy")
def _refine_cell(
    ct,
    st,
    rf,
    cr,
    cc,
    r0,
    c0,
    rh,
    cw,
    nrows,
    maxstep,
    pm,
    ks_t,
    kx_t,
    ks_b,
    kx_b,
    j,
    S,
    X,
):
    """Where each pixel of cell ``j`` (at r0, c0), which is not smooth, was
    scanned, into S, X (row-major, CELL wide); ``ks_*``, ``kx_*``: the
    crossings at the corners of the cells above (``_t``) and below (``_b``).
    The cell is split into four quarters with exact crossings at their
    corners; a quarter that passes the smoothness check at its own scale is
    interpolated, the others are solved pixel by pixel. Pixels beyond the
    frame (rh, cw) are set to 0 and not used."""
    sa, sb, sc, sd = ks_t[j], ks_t[j + 1], ks_b[j], ks_b[j + 1]
    xa, xb, xc, xd = kx_t[j], kx_t[j + 1], kx_b[j], kx_b[j + 1]
    for i in range(NPX):
        S[i] = 0.0
        X[i] = 0.0
    if _rough_cell(rf, sa, sb, sc, sd):
        # a kink or a jump in the angle: solve the whole cell, walking from
        # pixel to pixel (the crossing nearest the neighbour's)
        _solve_pixels(
            ct, st, cr, cc, r0, c0, 0, rh, 0, cw, sa, nrows, maxstep, pm, S, X
        )
        return
    H = CELL // 2
    ks = np.empty((3, 3))
    kx = np.empty((3, 3))
    ks[0, 0], ks[0, 2], ks[2, 0], ks[2, 2] = sa, sb, sc, sd
    kx[0, 0], kx[0, 2], kx[2, 0], kx[2, 2] = xa, xb, xc, xd
    for a in range(3):
        for b in range(3):
            if a != 1 and b != 1:
                continue
            # guess: the crossing interpolated from the corners
            g = sa + (sb - sa) * 0.5 * b + (sc - sa) * 0.5 * a
            ks[a, b], kx[a, b] = _root(
                ct,
                st,
                cr,
                cc,
                float(r0 + a * H),
                float(c0 + b * H),
                g,
                nrows,
                maxstep,
                pm,
            )
    for a in range(2):
        for b in range(2):
            t0 = a * H
            u0 = b * H
            t1 = min(t0 + H, rh)
            u1 = min(u0 + H, cw)
            if t1 <= t0 or u1 <= u0:
                continue
            p, q, v, w = ks[a, b], ks[a, b + 1], ks[a + 1, b], ks[a + 1, b + 1]
            px, qx, vx, wx = kx[a, b], kx[a, b + 1], kx[a + 1, b], kx[a + 1, b + 1]
            if _cell_is_smooth(
                ct,
                st,
                rf,
                cr,
                cc,
                r0 + t0,
                c0 + u0,
                p,
                q,
                v,
                w,
                px,
                qx,
                vx,
                wx,
                nrows,
                maxstep,
                pm,
                H,
            ):
                for t in range(t0, t1):
                    ft = (t - t0) / H
                    for u in range(u0, u1):
                        fu = (u - u0) / H
                        S[t * CELL + u] = (p * (1.0 - fu) + q * fu) * (1.0 - ft) + (
                            v * (1.0 - fu) + w * fu
                        ) * ft
                        X[t * CELL + u] = (px * (1.0 - fu) + qx * fu) * (1.0 - ft) + (
                            vx * (1.0 - fu) + wx * fu
                        ) * ft
            else:
                _solve_pixels(
                    ct, st, cr, cc, r0, c0, t0, t1, u0, u1, p, nrows, maxstep, pm, S, X
                )


@numba.njit(cache=True, error_model="numpy")
def _solve_pixels(ct, st, cr, cc, r0, c0, t0, t1, u0, u1, g, nrows, maxstep, pm, S, X):
    """Solve rows t0..t1, columns u0..u1 of the cell at (r0, c0) pixel by
    pixel into S, X, walking from the pixel above (or from ``g`` and then
    the pixel to the left, on the first row)."""
    for t in range(t0, t1):
        for u in range(u0, u1):
            if t > t0:
                g = float(S[(t - 1) * CELL + u])
            s, x = _root(
                ct, st, cr, cc, float(r0 + t), float(c0 + u), g, nrows, maxstep, pm
            )
            S[t * CELL + u] = s
            X[t * CELL + u] = x
            g = s


#: At most this many source rows are prefetched per cell.
PREFETCH_ROWS = 24


@numba.njit(cache=True, inline="always")
def _prefetch_cell(flat, nrows, ncols, s0, s1, s2, s3, x0, x1, x2, x3):
    """Prefetch the source pixels of a cell whose corners were scanned at
    lines s0..s3 and positions x0..x3: the first and last of them on each
    line (a cell's span is one or two cache lines). Reading the source in
    rotated order defeats the CPU's own prefetchers."""
    ra = int(min(max(min(min(s0, s1), min(s2, s3)), 0.0), nrows - 1.0))
    rb = int(min(max(max(max(s0, s1), max(s2, s3)), 0.0), nrows - 1.0))
    rb = min(rb + 1, nrows - 1, ra + PREFETCH_ROWS)
    ca = int(min(max(min(min(x0, x1), min(x2, x3)), 0.0), ncols - 1.0))
    cb = int(min(max(max(max(x0, x1), max(x2, x3)), 0.0), ncols - 1.0))
    cb = min(cb + 1, ncols - 1)
    for r in range(ra, rb + 1):
        _prefetch(flat, r * ncols + ca)
        _prefetch(flat, r * ncols + cb)


NPX = CELL * CELL


@numba.njit(cache=True, inline="always")
def _scratch(work, src, dst):
    """One cell's scratch vectors (see :func:`_derotate_block`), made once
    per thread: where each pixel was scanned (S, X), its weights (fy, fx),
    its first source index (frames hold < 2**31 pixels), whether it was
    covered, its top and bottom pairs of source samples and the result."""
    return (
        np.empty(NPX, work),
        np.empty(NPX, work),
        np.empty(NPX, work),
        np.empty(NPX, work),
        np.empty(NPX, np.int32),
        np.empty(NPX, np.bool_),
        np.empty(2 * NPX, src),
        np.empty(2 * NPX, src),
        np.empty(NPX, dst),
    )


_T = np.array([(i // CELL) / CELL for i in range(NPX)])
_U = np.array([(i % CELL) / CELL for i in range(NPX)])
#: Each cell pixel's row and column offsets over CELL, and their product,
#: in float64 (the cubic kernel's working precision; see :func:`work_tables`).
_TAB = np.stack([_T, _U, _T * _U])
_F64 = np.dtype(np.float64)


def work_tables(dtype, nrows, ncols, fill, lo, hi):
    """The sampling loops' constants, in their working precision.

    Movies of at most 16-bit integers, float16 or float32 are sampled in
    float32 (their values are exact in it and the vectors are twice as
    wide); others in float64. Returns ``wk`` (0, 1, 0.5, -0.5, rows - 0.5,
    cols - 0.5, rows - 1, cols - 1, lo, hi, fill) and ``tab``: each cell
    pixel's row and column offset over CELL, and their product.
    """
    dt = np.dtype(dtype)
    narrow = dt.kind == "f" and dt.itemsize <= 4 or dt.kind in "iu" and dt.itemsize <= 2
    work = np.float32 if narrow else np.float64
    wk = np.array(
        [
            0.0,
            1.0,
            0.5,
            -0.5,
            nrows - 0.5,
            ncols - 0.5,
            nrows - 1.0,
            ncols - 1.0,
            lo,
            hi,
            fill,
        ],
        dtype=work,
    )
    return wk, _TAB.astype(work)


@numba.njit(cache=True, inline="always")
def _store_cell(res, r0, c0, rh, cw, out, dst):
    """A cell's results (``res``, CELL wide) into the 2-D ``out`` at (r0,
    c0), ``rh`` x ``cw`` of them (``dst``: ``out`` flat): whole rows with
    one load and one store each."""
    ncols = out.shape[1]
    for t in range(rh):
        if cw == CELL:
            _copy_row(res, t * CELL, dst, (r0 + t) * ncols + c0)
        else:
            for u in range(cw):
                out[r0 + t, c0 + u] = res[t * CELL + u]


@numba.njit(cache=True, error_model="numpy")
def _nearest_cell(img, S, X, fill, lo, hi, is_int, r0, c0, rh, cw, out, scratch):
    """A cell's nearest samples at (S, X) into ``out`` at (r0, c0): indices
    and coverage as vectors, one gather, rows stored whole. (A function of
    its own: inlined, it slows the bilinear loops of its caller.)"""
    nrows, ncols = img.shape
    cov, idx, res = scratch[5], scratch[4], scratch[8]
    flat = img.ravel()
    nc = np.int32(ncols)
    rlim = nrows - 0.5
    clim = ncols - 0.5
    for i in range(NPX):
        s = float(S[i])
        x = float(X[i])
        cov[i] = (s >= -0.5) & (s <= rlim) & (x >= -0.5) & (x <= clim)
        s = min(max(s, 0.0), nrows - 1.0)
        x = min(max(x, 0.0), ncols - 1.0)
        idx[i] = np.int32(s + 0.5) * nc + np.int32(x + 0.5)
    for i in range(NPX):
        v = _cast(float(flat[idx[i]]), lo, hi, is_int)
        res[i] = v if cov[i] else fill
    _store_cell(res, r0, c0, rh, cw, out, out.ravel())


@numba.njit(cache=True, inline="always")
def _lerp_cell(ks_t, kx_t, ks_b, kx_b, j, W, T, U, TU, S, X):
    """Where each pixel of the smooth cell ``j`` was scanned, into ``S``,
    ``X`` (in dtype ``W``): the bilinear interpolation of its corners'
    crossings (``T``, ``U``, ``TU``: the pixels' offsets, see
    :func:`work_tables`)."""
    sa = ks_t[j]
    xa = kx_t[j]
    e0 = W.type(sa)
    e1 = W.type(ks_t[j + 1] - sa)
    e2 = W.type(ks_b[j] - sa)
    e3 = W.type(sa - ks_t[j + 1] - ks_b[j] + ks_b[j + 1])
    f0 = W.type(xa)
    f1 = W.type(kx_t[j + 1] - xa)
    f2 = W.type(kx_b[j] - xa)
    f3 = W.type(xa - kx_t[j + 1] - kx_b[j] + kx_b[j + 1])
    for i in range(NPX):
        S[i] = e0 + e1 * U[i] + e2 * T[i] + e3 * TU[i]
        X[i] = f0 + f1 * U[i] + f2 * T[i] + f3 * TU[i]


@numba.njit(cache=True, error_model="numpy")
def _derotate_block(
    img,
    ct,
    st,
    rf,
    maxstep,
    r0,
    smooth,
    cr,
    cc,
    pm,
    mode,
    fill,
    lo,
    hi,
    is_int,
    wk,
    tab,
    ks_t,
    kx_t,
    ks_b,
    kx_b,
    ks_n,
    kx_n,
    ahead,
    out,
    scratch,
):
    """Rows r0 .. r0 + CELL of one frame, cell by cell, between the knot rows
    ``(ks_t, kx_t)`` (row r0) and ``(ks_b, kx_b)`` (row r0 + CELL); the next
    knot row ``(ks_n, kx_n)`` tells which source pixels the next block will
    read, so that they are prefetched while this one is done.

    Each CELL x CELL cell is done in passes over its pixels so that the
    arithmetic runs on vectors: where each pixel was scanned (interpolated
    in smooth cells, solved in the others), the sample indices and weights,
    the four gathers (the only scalar pass), then the blend. Going cell by
    cell keeps the source pixels it reads in the L1 cache. (A function of its
    own: numba's parallel loops mis-compile this much control flow inlined.)
    """
    nrows, ncols = img.shape
    B = CELL
    rh = min(B, nrows - r0)
    W = wk.dtype
    S, X, fy, fx = scratch[0], scratch[1], scratch[2], scratch[3]
    idx, cov = scratch[4], scratch[5]
    top, bot, res = scratch[6], scratch[7], scratch[8]
    T = tab[0]
    U = tab[1]
    TU = tab[2]
    zero, one, half, mhalf, rlim, clim, smax, xmax, wlo, whi, wfill = (
        wk[0],
        wk[1],
        wk[2],
        wk[3],
        wk[4],
        wk[5],
        wk[6],
        wk[7],
        wk[8],
        wk[9],
        wk[10],
    )
    nr2 = np.int32(nrows - 2)
    nc2 = np.int32(ncols - 2)
    nc = np.int32(ncols)
    flat = img.ravel()
    dst = out.ravel()
    bilinear = mode == BILINEAR and nrows >= 2 and ncols >= 2
    nearest = mode == NEAREST
    for j in range(smooth.size):
        c0 = j * B
        cw = min(B, ncols - c0)
        if ahead:
            _prefetch_cell(
                flat,
                nrows,
                ncols,
                ks_b[j],
                ks_b[j + 1],
                ks_n[j],
                ks_n[j + 1],
                kx_b[j],
                kx_b[j + 1],
                kx_n[j],
                kx_n[j + 1],
            )
            # and the output pixels of the cell below
            for t in range(r0 + B, min(r0 + 2 * B, nrows)):
                _prefetch_write(dst, t * ncols + c0)
        if smooth[j]:
            _lerp_cell(ks_t, kx_t, ks_b, kx_b, j, W, T, U, TU, S, X)
        else:
            _refine_cell(
                ct,
                st,
                rf,
                cr,
                cc,
                r0,
                c0,
                rh,
                cw,
                nrows,
                maxstep,
                pm,
                ks_t,
                kx_t,
                ks_b,
                kx_b,
                j,
                S,
                X,
            )
        if nearest:
            _nearest_cell(img, S, X, fill, lo, hi, is_int, r0, c0, rh, cw, out, scratch)
            continue
        if not bilinear:
            for t in range(rh):
                for u in range(cw):
                    s = float(S[t * B + u])
                    x = float(X[t * B + u])
                    if _covered(s, x, nrows, ncols):
                        out[r0 + t, c0 + u] = _cast(
                            _sample(img, s, x, nrows, ncols, mode), lo, hi, is_int
                        )
                    else:
                        out[r0 + t, c0 + u] = fill
            continue
        for i in range(NPX):
            s = S[i]
            x = X[i]
            cov[i] = (s >= mhalf) & (s <= rlim) & (x >= mhalf) & (x <= clim)
            s = min(max(s, zero), smax)
            x = min(max(x, zero), xmax)
            # s, x >= 0 here, so int() truncation is floor()
            y0 = min(np.int32(s), nr2)
            x0 = min(np.int32(x), nc2)
            fy[i] = s - W.type(y0)
            fx[i] = x - W.type(x0)
            idx[i] = y0 * nc + x0
        for i in range(NPX):
            k = idx[i]
            _copy_pair(flat, k, top, 2 * i)
            _copy_pair(flat, k + ncols, bot, 2 * i)
        for i in range(NPX):
            # (1 - f) weights: exact at f = 0 and f = 1 (still lines, edges)
            gx = one - fx[i]
            a = W.type(top[2 * i]) * gx + W.type(top[2 * i + 1]) * fx[i]
            b = W.type(bot[2 * i]) * gx + W.type(bot[2 * i + 1]) * fx[i]
            v = a * (one - fy[i]) + b * fy[i]
            if is_int:
                v = min(max(np.floor(v + half), wlo), whi)
            res[i] = v if cov[i] else wfill
        _store_cell(res, r0, c0, rh, cw, out, dst)


def will_compile(kernel, args) -> bool:
    """True when ``kernel(*args)`` has to be compiled: neither in memory nor
    in numba's on-disk cache (which numba keeps in ``__pycache__`` beside
    this file, or, where the package's folder is not writable, in the
    user's cache folder, e.g. ``~/.cache/numba``; ``NUMBA_CACHE_DIR``
    overrides both). A guess that costs a small file read; False when
    numba's internals are not as expected."""
    try:
        sig = tuple(kernel.typeof_pyval(a) for a in args)
        if sig in kernel.overloads:
            return False
        cache = kernel._cache
        key = cache._index_key(sig, kernel.targetctx.codegen())
        return key not in cache._cache_file._load_index()
    except Exception:  # noqa: BLE001 - numba's private API changed
        return False


def pair_kernel(mode):
    """The work-unit kernel of :func:`derotate_pairs`' signature for ``mode``
    (each is compiled only when first used)."""
    return derotate_pairs_cubic if mode == CUBIC else derotate_pairs


@numba.njit(cache=True, inline="always")
def _catmull_rom(t):
    """The four Catmull-Rom weights of samples -1, 0, 1, 2 at fraction t."""
    t2 = t * t
    t3 = t2 * t
    return (
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    )


@numba.njit(cache=True, error_model="numpy")
def _sample_cubic(img, flat, y, x, nrows, ncols):
    """Catmull-Rom sample of ``img`` (``flat``: the same C-ordered pixels
    as 1-D) at (y, x), clamped to the frame; the neighbours beyond its
    edges repeat the edge."""
    y = min(max(y, 0.0), nrows - 1.0)
    x = min(max(x, 0.0), ncols - 1.0)
    y0 = int(y)
    x0 = int(x)
    wy0, wy1, wy2, wy3 = _catmull_rom(y - y0)
    wx0, wx1, wx2, wx3 = _catmull_rom(x - x0)
    if y0 >= 1 and y0 + 2 < nrows and x0 >= 1 and x0 + 2 < ncols:
        # inside: four rows of four neighbours, no clamping
        acc = 0.0
        for a in range(4):
            k = (y0 - 1 + a) * ncols + x0 - 1
            row = (
                wx0 * float(flat[k])
                + wx1 * float(flat[k + 1])
                + wx2 * float(flat[k + 2])
                + wx3 * float(flat[k + 3])
            )
            w = wy0 if a == 0 else wy1 if a == 1 else wy2 if a == 2 else wy3
            acc += w * row
        return acc
    c0 = max(x0 - 1, 0)
    c2 = min(x0 + 1, ncols - 1)
    c3 = min(x0 + 2, ncols - 1)
    acc = 0.0
    for a in range(4):
        r = min(max(y0 - 1 + a, 0), nrows - 1)
        row = (
            wx0 * float(img[r, c0])
            + wx1 * float(img[r, x0])
            + wx2 * float(img[r, c2])
            + wx3 * float(img[r, c3])
        )
        w = wy0 if a == 0 else wy1 if a == 1 else wy2 if a == 2 else wy3
        acc += w * row
    return acc


@numba.njit(cache=True, nogil=True, error_model="numpy")
def derotate_pairs_cubic(
    counter,
    movie,
    cos_t,
    sin_t,
    rough,
    maxstep,
    cr,
    cc,
    pm,
    mode,
    fill,
    lo,
    hi,
    is_int,
    wk,
    tab,
    out,
):
    """:func:`derotate_pairs` with Catmull-Rom sampling (``mode`` is
    ignored): the same crossings, sampled in float64, integers rounded and
    clipped to ``[lo, hi]``."""
    nf, nrows, ncols = movie.shape
    nbr = -(-nrows // CELL)
    S = np.empty(NPX)
    X = np.empty(NPX)
    WT = np.empty((8, NPX))
    KI = np.empty(NPX, np.int32)
    G = np.empty(16 * NPX, movie.dtype)
    V = np.empty(NPX)
    R = np.empty(NPX, out.dtype)
    ks, kx, flags = _unit_scratch(ncols)
    nunit = -(-nbr // UNIT_ROWS)
    total = nf * nunit
    while True:
        idx = _fetch_add(counter, 0, 1)
        if idx >= total:
            return
        f, u0, u1 = _unit(idx, nunit, nbr)
        ct, st, rf = cos_t[f], sin_t[f], rough[f]
        _unit_grid(
            ct, st, rf, cr, cc, nrows, maxstep[f], pm, u0, u1, nbr, ks, kx, flags
        )
        for b in range(u0, u1):
            i = b - u0
            _cubic_block(
                movie[f],
                ct,
                st,
                rf,
                maxstep[f],
                b * CELL,
                flags[i],
                cr,
                cc,
                pm,
                fill,
                lo,
                hi,
                is_int,
                ks[i],
                kx[i],
                ks[i + 1],
                kx[i + 1],
                out[f],
                S,
                X,
                WT,
                KI,
                G,
                V,
                R,
            )


@numba.njit(cache=True, inline="always")
def _row4(flat, k, WT, i):
    """``flat[k:k + 4]`` weighted by pixel ``i``'s column weights (rows 4-7
    of ``WT``)."""
    return (
        WT[4, i] * float(flat[k])
        + WT[5, i] * float(flat[k + 1])
        + WT[6, i] * float(flat[k + 2])
        + WT[7, i] * float(flat[k + 3])
    )


@numba.njit(cache=True, error_model="numpy")
def _cubic_block(
    img,
    ct,
    st,
    rf,
    maxstep,
    r0,
    smooth,
    cr,
    cc,
    pm,
    fill,
    lo,
    hi,
    is_int,
    ks_t,
    kx_t,
    ks_b,
    kx_b,
    out,
    S,
    X,
    WT,
    KI,
    G,
    V,
    R,
):
    """Rows r0 .. r0 + CELL of one frame, Catmull-Rom (see
    :func:`_derotate_block` for the cells). Each cell's weights (``WT``:
    four row and four column weights per pixel) and first source indices
    (``KI``, -1 where the 4 x 4 neighbourhood leaves the frame) are made in
    a vector pass, the 16 neighbours copied four at a time, then blended."""
    nrows, ncols = img.shape
    rh = min(CELL, nrows - r0)
    rlim = nrows - 0.5
    clim = ncols - 0.5
    n32 = np.int32(nrows)
    c32 = np.int32(ncols)
    flat = img.ravel()
    dst = out.ravel()
    for j in range(smooth.size):
        c0 = j * CELL
        cw = min(CELL, ncols - c0)
        if smooth[j]:
            _lerp_cell(ks_t, kx_t, ks_b, kx_b, j, _F64, _TAB[0], _TAB[1], _TAB[2], S, X)
        else:
            _refine_cell(
                ct,
                st,
                rf,
                cr,
                cc,
                r0,
                c0,
                rh,
                cw,
                nrows,
                maxstep,
                pm,
                ks_t,
                kx_t,
                ks_b,
                kx_b,
                j,
                S,
                X,
            )
        # weights and first indices as vectors; inner pixels (the
        # 4 x 4 neighbourhood inside the frame) get index >= 0
        for i in range(NPX):
            s = min(max(S[i], 0.0), nrows - 1.0)
            x = min(max(X[i], 0.0), ncols - 1.0)
            # int32 (frames hold < 2**31 pixels): converted as vectors
            y0 = np.int32(s)
            x0 = np.int32(x)
            ty = s - y0
            tx = x - x0
            ty2 = ty * ty
            tx2 = tx * tx
            WT[0, i] = 0.5 * (-ty2 * ty + 2.0 * ty2 - ty)
            WT[1, i] = 0.5 * (3.0 * ty2 * ty - 5.0 * ty2 + 2.0)
            WT[2, i] = 0.5 * (-3.0 * ty2 * ty + 4.0 * ty2 + ty)
            WT[3, i] = 0.5 * (ty2 * ty - ty2)
            WT[4, i] = 0.5 * (-tx2 * tx + 2.0 * tx2 - tx)
            WT[5, i] = 0.5 * (3.0 * tx2 * tx - 5.0 * tx2 + 2.0)
            WT[6, i] = 0.5 * (-3.0 * tx2 * tx + 4.0 * tx2 + tx)
            WT[7, i] = 0.5 * (tx2 * tx - tx2)
            inner = (y0 >= 1) & (y0 + 2 < n32) & (x0 >= 1) & (x0 + 2 < c32)
            KI[i] = (y0 - 1) * c32 + x0 - 1 if inner else -1
        # the 4 x 4 neighbours of inner pixels: four rows of four, each
        # with one load and one store (G: 16 per pixel), then their blend
        for i in range(NPX):
            k = KI[i]
            if k >= 0:
                _copy_quad(flat, k, G, 16 * i)
                _copy_quad(flat, k + ncols, G, 16 * i + 4)
                _copy_quad(flat, k + 2 * ncols, G, 16 * i + 8)
                _copy_quad(flat, k + 3 * ncols, G, 16 * i + 12)
        for i in range(NPX):
            g = 16 * i
            a0 = _row4(G, g, WT, i)
            a1 = _row4(G, g + 4, WT, i)
            a2 = _row4(G, g + 8, WT, i)
            a3 = _row4(G, g + 12, WT, i)
            V[i] = WT[0, i] * a0 + WT[1, i] * a1 + WT[2, i] * a2 + WT[3, i] * a3
        # the results as vectors, then the covered pixels near an edge
        # (neighbours clamped) one by one
        for i in range(NPX):
            s = S[i]
            x = X[i]
            cov = (s >= -0.5) & (s <= rlim) & (x >= -0.5) & (x <= clim)
            R[i] = _cast(V[i], lo, hi, is_int) if cov else fill
        for i in range(NPX):
            if KI[i] < 0 and _covered(S[i], X[i], nrows, ncols):
                v = _sample_cubic(img, flat, S[i], X[i], nrows, ncols)
                R[i] = _cast(v, lo, hi, is_int)
        _store_cell(R, r0, c0, rh, cw, out, dst)


@numba.njit(cache=True, parallel=True)
def rotate_lines(
    images, image_index, cos_t, sin_t, cr, cc, pm, mode, fill, lo, hi, is_int, out
):
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
            if mode == CUBIC:
                v = _sample_cubic(images[src], images[src].ravel(), y, x, nrows, ncols)
            else:
                v = _sample(images[src], y, x, nrows, ncols, mode)
            out[f, r, c] = _cast(v, lo, hi, is_int)
