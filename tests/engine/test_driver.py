"""The derotation engine: accuracy, semantics, conventions and errors."""

from __future__ import annotations

import numpy as np
import pytest

from napari_derotation import Cancelled, DerotationError, derotate, derotate_into
from napari_derotation.simulate import (
    constant_speed_trace,
    make_texture,
    real_trace,
    rotate_by_line,
    simulate_movie,
    sine_trace,
)
from napari_derotation.simulate.movie import REAL_TRACE_FIRST_ROTATION

from helpers import frame_scores, inscribed_disk, pearson

TRACES = ["incremental", "sine", "real", "constant"]


@pytest.mark.parametrize("trace", TRACES)
@pytest.mark.parametrize(
    "shape, offset",
    [
        ((128, 128), (0, 0)),
        ((128, 128), (12, -12)),
        ((96, 160), (7, -12)),
        ((160, 96), (-9, 5)),
    ],
)
def test_recovers_static_sample_without_holes(trace, shape, offset):
    sim = simulate_movie(
        shape, 24, trace=trace, center_offset=offset, sample="texture", dtype=np.float32
    )
    fixed = derotate(sim.movie, sim.angles_per_line, sim.center, fill_value=np.nan)
    disk = inscribed_disk(shape, sim.center)
    assert not np.isnan(fixed[:, disk]).any(), "holes inside the scanned disk"
    rotating = np.any(sim.angles_per_line.reshape(24, -1) != 0, axis=1)
    scores = frame_scores(fixed[rotating], sim.sample, disk)
    assert scores.min() >= 0.99
    # and the raw movie was really distorted
    assert frame_scores(sim.movie[rotating], sim.sample, disk).min() < 0.9


def test_full_size_real_trace_uint16():
    sim = simulate_movie(
        (256, 256),
        12,
        trace="real",
        center_offset=(6, -9),
        sample="texture",
        dtype=np.uint16,
    )
    fixed = derotate(sim.movie, sim.angles_per_line, sim.center)
    assert fixed.dtype == np.uint16 and fixed.shape == sim.movie.shape
    disk = inscribed_disk((256, 256), sim.center)
    assert frame_scores(fixed, sim.sample, disk).min() >= 0.99


@pytest.mark.parametrize("angle", [90.0, 180.0, -90.0, 270.0])
def test_nearest_at_right_angles_is_exact(angle):
    img = np.random.default_rng(3).integers(0, 60000, (64, 64)).astype(np.uint16)
    angles = np.full(4 * 64, angle)
    movie = rotate_by_line(img, angles, interpolation="nearest", fill_value=0)
    fixed = derotate(movie, angles, interpolation="nearest", fill_value=0)
    # every pixel that went out of the frame and came back is exact
    covered = np.ones_like(img, bool)
    covered &= (
        derotate(
            rotate_by_line(
                np.ones_like(img), angles, interpolation="nearest", fill_value=0
            ),
            angles,
            interpolation="nearest",
        )[0]
        == 1
    )
    assert covered.mean() > 0.9
    np.testing.assert_array_equal(
        fixed[:, covered], np.broadcast_to(img[covered], (4, covered.sum()))
    )


def test_off_centre_rotation_needs_row_col_not_col_row():
    sim = simulate_movie(
        (128, 128),
        16,
        trace="real",
        center_offset=(10, -6),
        sample="texture",
        dtype=np.float32,
    )
    r, c = sim.center
    assert r != c
    good = derotate(sim.movie, sim.angles_per_line, (r, c))
    swapped = derotate(sim.movie, sim.angles_per_line, (c, r))
    disk = inscribed_disk((128, 128), (r, c))
    rot = np.any(sim.angles_per_line.reshape(16, -1) != 0, axis=1)
    assert frame_scores(good[rot], sim.sample, disk).min() > 0.99
    assert frame_scores(swapped[rot], sim.sample, disk).mean() < 0.9


def test_subpixel_centre_is_honoured():
    img = make_texture((96, 96), sigma=4)
    center = (47.3, 48.6)
    angles = constant_speed_trace(12 * 96, degrees_per_line=0.2)
    movie = rotate_by_line(img, angles, center)
    disk = inscribed_disk((96, 96), center)
    exact = frame_scores(derotate(movie, angles, center), img, disk)
    rounded = frame_scores(derotate(movie, angles, (47, 49)), img, disk)
    assert exact.min() > 0.995
    assert (exact > rounded).all()


def brute_force_frame(frame, angles, center):
    """Independent slow inverse mapping: scan every segment, first crossing."""
    from scipy.ndimage import map_coordinates

    rows, cols = frame.shape
    cr, cc = center
    th = np.deg2rad(angles)
    ct, st = np.cos(th), np.sin(th)
    out = np.full(frame.shape, np.nan)
    lines = np.arange(rows)
    for qr in range(rows):
        for qc in range(cols):
            dr, dc = qr - cr, qc - cc
            g = cr + ct * dr + st * dc - lines
            s = None
            if g[0] < 0:
                s = g[0] if g[0] >= -0.5 else None
            else:
                cross = np.flatnonzero((g[:-1] >= 0) & (g[1:] <= 0) & (g[:-1] > g[1:]))
                if cross.size:
                    k = cross[0]
                    s = k + g[k] / (g[k] - g[k + 1])
                elif g[-1] <= 0.5:
                    s = rows - 1 + g[-1]
            if s is None:
                continue
            k = int(np.clip(np.floor(s), 0, rows - 2))
            t = np.clip(s - k, 0, 1)
            cs = ct[k] * (1 - t) + ct[k + 1] * t
            sn = st[k] * (1 - t) + st[k + 1] * t
            x = cc - sn * dr + cs * dc
            if -0.5 <= x <= cols - 0.5:
                out[qr, qc] = map_coordinates(
                    frame,
                    [[np.clip(s, 0, rows - 1)], [np.clip(x, 0, cols - 1)]],
                    order=1,
                )[0]
    return out


@pytest.mark.parametrize("trace", ["real", "constant", "sine"])
def test_matches_an_independent_brute_force_inverse(trace):
    """Where the scan crossed every pixel once (rotation slow enough for the
    crossing to be unique), the fast path equals the exact inverse."""
    rows, n = 40, 6
    img = make_texture((rows, 48), sigma=2)
    if trace == "real":
        angles = real_trace(n * rows, start_line=REAL_TRACE_FIRST_ROTATION + 900)
    elif trace == "constant":
        angles = constant_speed_trace(n * rows, degrees_per_line=0.4)
    else:
        angles = sine_trace(n * rows, amplitude=60)
    center = (22.0, 21.0)
    movie = rotate_by_line(img, angles, center)
    fixed = derotate(movie, angles, center, fill_value=np.nan)
    for f in range(n):
        frame = movie[f].astype(np.float64)
        ref = brute_force_frame(frame, angles[f * rows : (f + 1) * rows], center)
        both = ~np.isnan(ref) & ~np.isnan(fixed[f])
        # coverage agrees except within a hair of the scanned area's edge
        assert (np.isnan(ref) != np.isnan(fixed[f])).mean() < 0.01
        # values agree up to the interpolation tolerance of the fast path
        grad = max(
            np.abs(np.diff(frame, axis=0)).max(), np.abs(np.diff(frame, axis=1)).max()
        )
        assert np.abs(fixed[f][both] - ref[both]).max() <= 0.1 * grad + 1e-9


# --- semantics -------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64]
)
def test_zero_angles_is_identity_and_dtype_kept(dtype):
    movie = (np.random.default_rng(0).random((3, 20, 30)) * 100).astype(dtype)
    out = derotate(movie, np.zeros(3 * 20))
    assert out.dtype == movie.dtype and out is not movie
    np.testing.assert_array_equal(out, movie)


def test_lines_at_angle_zero_stay_as_acquired_when_rotation_starts_mid_frame():
    rows = 64
    img = make_texture((rows, 64))
    angles = np.zeros(3 * rows)
    start = rows + 40  # rotation starts at line 40 of frame 1
    angles[start:] = 0.3 * np.arange(angles.size - start)
    movie = rotate_by_line(img, angles)
    fixed = derotate(movie, angles, fill_value=np.nan)
    np.testing.assert_array_equal(fixed[0], movie[0])  # still frame
    # rows scanned before the start are exact copies of the raw rows
    np.testing.assert_array_equal(fixed[1, :38], movie[1, :38])
    disk = inscribed_disk(img.shape, (32, 32))
    assert pearson(fixed[1][disk], img[disk]) > 0.99
    assert pearson(fixed[2][disk], img[disk]) > 0.99


@pytest.mark.parametrize("end_in_frame", [30, 0])
def test_rotation_ending_mid_frame_or_on_a_boundary(end_in_frame):
    """A full turn ending mid-frame (or exactly at a frame boundary): lines
    after it are copies, the first still line is not blank (reference bug 1),
    and nothing leaks into the next frame (reference bug 2)."""
    rows = 48
    img = make_texture((rows, rows))
    n = 4
    angles = np.zeros(n * rows)
    end = 2 * rows + end_in_frame
    angles[:end] = np.linspace(0, 360, end, endpoint=False)
    angles[end:] = 0
    movie = rotate_by_line(img, angles)
    fixed = derotate(movie, angles, fill_value=np.nan)
    f = end // rows
    if end_in_frame:
        np.testing.assert_array_equal(
            fixed[f, end_in_frame + 2 :], movie[f, end_in_frame + 2 :]
        )
        assert not np.isnan(fixed[f, end_in_frame]).any()
    np.testing.assert_array_equal(fixed[f + 1 :], movie[f + 1 :])
    disk = inscribed_disk(img.shape, (24, 24))
    assert frame_scores(fixed[: f + 1], img, disk).min() > 0.98


def test_extra_angles_are_ignored():
    sim = simulate_movie((32, 32), 4, trace="constant", dtype=np.float32)
    a = derotate(sim.movie, sim.angles_per_line)
    b = derotate(sim.movie, np.concatenate([sim.angles_per_line, [45.0] * 100]))
    np.testing.assert_array_equal(a, b)


def test_wrapped_angles_equal_unwrapped():
    sim = simulate_movie((48, 48), 6, trace="constant", dtype=np.float32)
    wrapped = (sim.angles_per_line + 180) % 360 - 180
    np.testing.assert_allclose(
        derotate(sim.movie, wrapped),
        derotate(sim.movie, sim.angles_per_line),
        atol=1e-3,
    )


def test_integer_output_is_rounded_and_clipped():
    img = np.full((32, 32), 65535.0, np.float64)
    img[::2] = 0
    movie = rotate_by_line(img, np.full(64, 33.0), fill_value=0).astype(np.uint16)
    out = derotate(movie, np.full(64, 33.0), fill_value=65535)
    assert out.dtype == np.uint16
    assert out.max() <= 65535 and out.min() >= 0


def test_input_memmap_is_not_modified(tmp_path):
    sim = simulate_movie((32, 32), 5, trace="constant", dtype=np.uint16)
    path = tmp_path / "m.npy"
    np.save(path, sim.movie)
    mm = np.load(path, mmap_mode="r")
    out = derotate(mm, sim.angles_per_line)
    assert out.shape == mm.shape
    np.testing.assert_array_equal(np.load(path), sim.movie)


def test_progress_reports_and_cancel_raises():
    sim = simulate_movie((64, 64), 40, trace="constant", dtype=np.float32)
    seen = []
    import napari_derotation.engine._driver as eng

    old = eng.CHUNK_PIXELS
    eng.CHUNK_PIXELS = 64 * 64 * 7  # several chunks
    try:
        derotate(
            sim.movie, sim.angles_per_line, progress=lambda d, t: seen.append((d, t))
        )
        assert seen[-1] == (40, 40)
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
        assert len(seen) > 3
        with pytest.raises(Cancelled):
            derotate(sim.movie, sim.angles_per_line, progress=lambda d, t: d < 10)
    finally:
        eng.CHUNK_PIXELS = old


def test_derotate_into_matches_derotate():
    sim = simulate_movie((40, 40), 6, trace="sine", dtype=np.int16)
    out = np.empty_like(sim.movie)
    derotate_into(sim.movie, sim.angles_per_line, sim.center, out)
    np.testing.assert_array_equal(
        out, derotate(sim.movie, sim.angles_per_line, sim.center)
    )


# --- bad input ---------------------------------------------------------------


@pytest.mark.parametrize(
    "movie, angles, kwargs, words",
    [
        (np.zeros((2, 8, 8)), np.zeros(15), {}, ["15", "16"]),
        (
            np.zeros((2, 8, 8)),
            np.r_[np.zeros(10), np.nan, np.zeros(5)],
            {},
            ["finite", "line 10", "frame 1", "row 2"],
        ),
        (np.zeros((2, 8, 8)), np.r_[np.inf, np.zeros(15)], {}, ["finite"]),
        (np.zeros((8, 8)), np.zeros(8), {}, ["3-D", "2-D"]),
        (np.zeros((2, 4, 8, 8)), np.zeros(64), {}, ["3-D", "4-D"]),
        (np.zeros((0, 8, 8)), np.zeros(8), {}, ["empty"]),
        (np.zeros((2, 8, 8)), np.zeros(16), {"center": (8.5, 3)}, ["outside", "8.5"]),
        (np.zeros((2, 8, 8)), np.zeros(16), {"center": (3,)}, ["two numbers"]),
        (
            np.zeros((2, 8, 8)),
            np.zeros(16),
            {"interpolation": "quintic"},
            ["bilinear", "cubic", "quintic"],
        ),
        (
            np.zeros((2, 8, 8), np.uint16),
            np.zeros(16),
            {"fill_value": np.nan},
            ["uint16"],
        ),
        (
            np.zeros((2, 8, 8), np.uint8),
            np.zeros(16),
            {"fill_value": -1},
            ["range", "uint8"],
        ),
        (np.zeros((2, 8, 8)), np.zeros((4, 4)), {}, ["1-D"]),
        (np.zeros((2, 8, 8), complex), np.zeros(16), {}, ["real"]),
        (np.zeros((2, 8, 8)), np.zeros(16), {"plane_tilt": 95}, ["plane_tilt"]),
    ],
)
def test_bad_input_raises_clear_errors(movie, angles, kwargs, words):
    with pytest.raises(DerotationError) as err:
        derotate(movie, angles, **kwargs)
    for w in words:
        assert w in str(err.value)
    assert isinstance(err.value, ValueError)


def test_warmup_compiles_the_kernel_for_each_dtype():
    from napari_derotation.engine import _kernels, warmup

    warmup([np.int8])
    kinds = {str(sig[1].dtype) for sig in _kernels.derotate_pairs.signatures}
    assert "int8" in kinds


def _exact_positions(angles, rows, cols, center):
    """(line, position) where each pixel of one frame was scanned, solved
    pixel by pixel (no interpolation between grid knots)."""
    from napari_derotation.engine import _kernels
    from napari_derotation.engine._driver import _tables

    ct, st, _, maxstep = _tables(np.asarray(angles, float), 1, rows)
    s = np.empty((rows, cols))
    x = np.empty((rows, cols))
    for r in range(rows):
        for c in range(cols):
            s[r, c], x[r, c] = _kernels._root(
                ct[0],
                st[0],
                center[0],
                center[1],
                float(r),
                float(c),
                float(r),
                rows,
                maxstep[0],
                _kernels.IDENTITY,
            )
    return s, x


@pytest.mark.parametrize(
    "name", ["slow ramp", "sine", "real", "real x3", "jump", "real, 256x256"]
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_interpolated_scan_positions_match_the_exact_solve(name, dtype):
    """Inside smooth cells the engine interpolates where each pixel was
    scanned instead of solving for it: that shortcut stays within a tenth of
    a pixel of the exact answer (checked on the traces' unique crossings:
    every line turns by less than a pixel at the frame's corners). A movie
    linear in (line, column) makes the derotated value a readout of the
    sampled position."""
    rows, cols = (256, 256) if name == "real, 256x256" else (72, 88)
    center = (rows / 2 - 0.5, cols / 2 + 3.25)
    rotating = real_trace()[REAL_TRACE_FIRST_ROTATION + 300 :][:rows]
    angles = {
        "real, 256x256": rotating,  # far corners: larger errors
        "slow ramp": constant_speed_trace(rows, degrees_per_line=0.02) + 40,
        "sine": sine_trace(rows, amplitude=6.0, cycles=1.0) + 120,
        "real": rotating,
        "real x3": rotating * 3,  # a faster, bumpier rotation
        "jump": np.where(np.arange(rows) < 30, 10.0, 35.0),
    }[name]
    s, x = _exact_positions(angles, rows, cols, center)
    # away from the clamped border, bilinear sampling of a linear movie is exact
    inner = (s >= 0) & (s <= rows - 1) & (x >= 0) & (x <= cols - 1)
    line, col = np.indices((rows, cols), dtype=float)
    for weight_s, weight_x in ((1.0, 1000.0), (1000.0, 1.0)):
        movie = (weight_s * line + weight_x * col)[None].astype(dtype)
        out = derotate(movie, angles, center, fill_value=np.nan)[0].astype(float)
        assert not np.isnan(out[inner]).any()
        big = max(weight_s, weight_x)
        err = np.abs(out - (weight_s * s + weight_x * x))[inner] / big
        assert np.median(err) < 0.02
        assert err.max() < 0.1


def test_float16_movies_are_derotated_in_float32_and_returned_as_float16():
    sim = simulate_movie((40, 48), 3, trace="sine", dtype=np.float32)
    movie = (sim.movie / sim.movie.max() * 100).astype(np.float16)
    out = derotate(movie, sim.angles_per_line, sim.center)
    assert out.dtype == np.float16
    as32 = derotate(movie.astype(np.float32), sim.angles_per_line, sim.center)
    np.testing.assert_array_equal(out, as32.astype(np.float16))


def test_frames_of_2_31_pixels_or_more_are_refused_before_any_work():
    # a broadcast view: no memory behind it
    huge = np.broadcast_to(np.zeros((1, 1, 1), np.uint8), (1, 2**16, 2**15))
    with pytest.raises(DerotationError, match="2\\*\\*31 pixels"):
        derotate(huge, np.zeros(2**16))


def test_kernels_compiled_without_fast_math():
    """Fast-math lets the compiler regroup sums differently in each compile
    (in this process, or loaded from numba's cache), so one movie gave
    different bytes in two runs; every kernel is plain IEEE arithmetic."""
    import numba

    from napari_derotation.engine import _kernels

    kernels = [
        v
        for v in vars(_kernels).values()
        if isinstance(v, numba.core.registry.CPUDispatcher)
    ]
    assert len(kernels) > 20
    flagged = [k.__name__ for k in kernels if k.targetoptions.get("fastmath")]
    assert flagged == []


def test_out_sharing_memory_with_the_movie_is_refused():
    sim = simulate_movie((24, 24), 3, trace="constant", dtype=np.float32)
    movie = sim.movie.copy()
    before = movie.copy()
    with pytest.raises(DerotationError, match="share memory"):
        derotate_into(movie, sim.angles_per_line, out=movie)
    np.testing.assert_array_equal(movie, before)
    # two channels of one interleaved buffer share no element: allowed
    buf = np.zeros(movie.shape + (2,), np.float32)
    buf[..., 0] = movie
    derotate_into(buf[..., 0], sim.angles_per_line, out=buf[..., 1])
    np.testing.assert_array_equal(buf[..., 1], derotate(movie, sim.angles_per_line))
