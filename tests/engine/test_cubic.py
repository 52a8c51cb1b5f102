"""Cubic (Catmull-Rom) interpolation: accuracy against bilinear on smooth
images scanned by an exact spline forward model, every dtype, every path."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from tests.helpers import inscribed_disk, pearson

from napari_derotation import derotate
from napari_derotation.engine.params import INTERPOLATION_CODES, DerotationParams

ROWS = COLS = 64
FRAMES = 6


def smooth_truth(seed):
    """A smooth random image: a few broad Gaussian blobs on a slope."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:ROWS, :COLS].astype(float)
    img = 200.0 + 2.0 * xx - 1.0 * yy
    for _ in range(12):
        r, c = rng.uniform(8, ROWS - 8, 2)
        s = rng.uniform(2.5, 6.0)
        img += rng.uniform(300, 900) * np.exp(
            -((yy - r) ** 2 + (xx - c) ** 2) / (2 * s * s)
        )
    return img


def spline_scan(truth, angles, center):
    """The scan model with the sample read by a cubic spline: line k of a
    frame samples the truth at c + R(theta_k) ((k, x) - c)."""
    out = np.empty((FRAMES, ROWS, COLS))
    a = np.deg2rad(angles).reshape(FRAMES, ROWS)
    cols = np.arange(COLS, dtype=float)
    for f in range(FRAMES):
        for k in range(ROWS):
            ct, st = np.cos(a[f, k]), np.sin(a[f, k])
            dr, dc = k - center[0], cols - center[1]
            y = center[0] + ct * dr - st * dc
            x = center[1] + st * dr + ct * dc
            out[f, k] = ndimage.map_coordinates(
                truth, [np.full(COLS, y), x], order=3, mode="nearest"
            )
    return out


def high_frequency_power(err):
    """Power of the error above half the Nyquist frequency."""
    spec = np.abs(np.fft.fft2(err)) ** 2
    fy = np.abs(np.fft.fftfreq(err.shape[0]))[:, None]
    fx = np.abs(np.fft.fftfreq(err.shape[1]))[None, :]
    return float(spec[np.hypot(fy, fx) > 0.25].sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cubic_is_at_least_as_accurate_as_bilinear_on_smooth_images(seed):
    truth = smooth_truth(seed)
    center = (ROWS / 2 - 0.3, COLS / 2 + 0.4)
    angles = np.linspace(0.0, 170.0, FRAMES * ROWS)
    movie = spline_scan(truth, angles, center)
    disk = inscribed_disk((ROWS, COLS), center)
    disk &= ndimage.binary_erosion(disk, iterations=3)
    score = {}
    for interp in ("bilinear", "cubic"):
        out = derotate(movie, angles, center, interpolation=interp)
        corr = np.mean([pearson(f[disk], truth[disk]) for f in out])
        hf = sum(high_frequency_power(np.where(disk, f - truth, 0.0)) for f in out)
        score[interp] = corr, hf
    assert score["cubic"][0] >= score["bilinear"][0]
    assert score["cubic"][1] <= score["bilinear"][1]


def test_cubic_keeps_still_frames_and_samples_exactly():
    rng = np.random.default_rng(3)
    movie = rng.uniform(0, 1000, (2, 17, 17))
    angles = np.zeros(2 * 17)
    angles[17:] = 90.0  # integer pixels land on integer pixels
    out = derotate(movie, angles, (8.0, 8.0), interpolation="cubic")
    np.testing.assert_array_equal(out[0], movie[0])
    bil = derotate(movie, angles, (8.0, 8.0), interpolation="bilinear")
    np.testing.assert_allclose(out[1], bil[1], atol=1e-6)
    assert not np.allclose(out[1], movie[1])


@pytest.mark.parametrize(
    "dtype",
    [
        np.uint8,
        np.int8,
        np.uint16,
        np.int16,
        np.uint32,
        np.int32,
        np.int64,
        np.float16,
        np.float32,
        np.float64,
    ],
)
def test_cubic_every_dtype_clipped_to_its_range(dtype):
    """A sharp edge between the extremes of the range overshoots with
    Catmull-Rom: integers are clipped, never wrapped."""
    dt = np.dtype(dtype)
    if dt == np.int64:
        lo, hi = -(2**40), 2**40  # within float64's exact integers
    elif dt.kind in "ui":
        lo, hi = np.iinfo(dt).min, np.iinfo(dt).max
    else:
        lo, hi = -100.0, 100.0
    movie = np.full((2, 32, 32), lo, dt)
    movie[:, :, 16:] = hi
    movie[:, 10:12, :] = hi
    angles = np.linspace(0, 40, 64)
    out = derotate(movie, angles, interpolation="cubic")
    assert out.dtype == dt
    ref = derotate(movie.astype(np.float64), angles, interpolation="cubic")
    if dt == np.int64:
        np.testing.assert_array_equal(out, np.floor(ref + 0.5).astype(dt))
    elif dt.kind in "ui":
        assert ref.max() > hi or ref.min() < lo  # it does overshoot
        expect = np.clip(np.floor(ref + 0.5), lo, hi).astype(dt)
        np.testing.assert_array_equal(out, expect)
    else:
        np.testing.assert_allclose(out, ref.astype(dt), rtol=1e-3, atol=1e-2)


def test_cubic_through_params_cli_and_config():
    from napari_derotation.cli._common import add_params_arguments
    from napari_derotation.pipeline.config import Config

    assert "cubic" in INTERPOLATION_CODES
    assert DerotationParams(interpolation="cubic").interpolation == "cubic"
    import argparse

    p = argparse.ArgumentParser()
    add_params_arguments(p)
    assert p.parse_args(["--interpolation", "cubic"]).interpolation == "cubic"
    assert Config(resampling="cubic").check().resampling == "cubic"


def test_simulator_accepts_cubic():
    from napari_derotation.simulate import rotate_by_line

    img = smooth_truth(0)
    angles = np.linspace(0, 20, 2 * ROWS)
    a = rotate_by_line(img, angles, n_frames=2, interpolation="cubic")
    b = rotate_by_line(img, angles, n_frames=2, interpolation="bilinear")
    assert not np.array_equal(a, b)
    np.testing.assert_allclose(a, b, atol=60)
