"""Rotation out of the imaging plane: plane_matrix, simulator and derotation
agree with each other and with the reference's ``Rotator``; the ellipse fit
measures tilt and orientation in the convention ``derotate`` takes."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from derotation.simulate.line_scanning_microscope import Rotator  # noqa: I001
from scipy import ndimage

from napari_derotation import derotate
from napari_derotation.center import find_center_bayesian
from napari_derotation.center.ellipse import fit_center_ellipse
from napari_derotation.engine import plane_matrix
from napari_derotation.simulate import (
    constant_speed_trace,
    make_cells,
    make_texture,
    make_trace,
    rotate_by_line,
)

from helpers import frame_scores, inscribed_disk


def to_image_plane(sample, center, tilt, orientation, order=1):
    """The rotation-plane ``sample`` as the microscope images it at angle 0:
    ``image(c + A w) = sample(c + w)``."""
    ai = np.linalg.inv(plane_matrix(tilt, orientation))
    c = np.asarray(center, float)
    return ndimage.affine_transform(sample, ai, offset=c - ai @ c, order=order)


@pytest.mark.parametrize(
    "tilt, orientation", [(0, 0), (30, 0), (25, 35), (40, -70), (40, 120)]
)
def test_plane_matrix_keeps_the_tilt_axis_and_shrinks_across_it(tilt, orientation):
    a = plane_matrix(tilt, orientation)
    o, t = np.deg2rad(orientation), np.deg2rad(tilt)
    axis = np.array([np.cos(o), np.sin(o)])
    across = np.array([-np.sin(o), np.cos(o)])
    np.testing.assert_allclose(a @ axis, axis, atol=1e-12)
    np.testing.assert_allclose(a @ across, np.cos(t) * across, atol=1e-12)
    np.testing.assert_allclose(a, a.T, atol=1e-12)
    assert np.linalg.det(a) == pytest.approx(np.cos(t))
    # orientation is an axis: o and o + 180 are the same plane
    np.testing.assert_allclose(plane_matrix(tilt, orientation + 180), a, atol=1e-12)


@pytest.mark.parametrize("tilt", [10, 25, 40])
@pytest.mark.parametrize("orientation", [0, 35, -70])
def test_derotate_inverts_the_simulator_out_of_plane(tilt, orientation):
    rows = 96
    img = make_texture((rows, rows), sigma=2.5)
    n = 4
    angles = constant_speed_trace(n * rows, degrees_per_line=0.3)
    center = (rows // 2 + 3.0, rows // 2 - 2.0)
    movie = rotate_by_line(
        img, angles, center, n_frames=n, plane_tilt=tilt, plane_orientation=orientation
    )
    disk = inscribed_disk(img.shape, center)
    fixed = derotate(
        movie,
        angles,
        center,
        plane_tilt=tilt,
        plane_orientation=orientation,
        fill_value=np.nan,
    )
    # out of plane, the region every angle covers is an ellipse in the disk
    disk &= np.isfinite(fixed).all(axis=0)
    assert disk.mean() > 0.5 * np.cos(np.deg2rad(tilt))
    assert frame_scores(fixed, img, disk).min() > 0.97
    # the wrong orientation or no tilt correction leaves the movie distorted
    wrong = derotate(
        movie,
        angles,
        center,
        plane_tilt=tilt,
        plane_orientation=orientation + 90,
        fill_value=np.nan,
    )
    flat = derotate(movie, angles, center, fill_value=np.nan)
    disk &= np.isfinite(wrong).all(axis=0) & np.isfinite(flat).all(axis=0)
    if tilt >= 25:
        assert frame_scores(wrong, img, disk).mean() < 0.9
        assert frame_scores(flat, img, disk).mean() < 0.93


def test_rotation_plane_output_is_the_sample_in_its_plane():
    rows, tilt, orientation = 96, 35, 20
    center = (rows // 2, rows // 2)
    sample = make_texture((rows, rows), sigma=2.5, seed=3)  # rotation plane
    img = to_image_plane(sample, center, tilt, orientation)
    angles = constant_speed_trace(4 * rows, degrees_per_line=0.3)
    movie = rotate_by_line(
        img, angles, center, n_frames=4, plane_tilt=tilt, plane_orientation=orientation
    )
    out = derotate(
        movie,
        angles,
        center,
        plane_tilt=tilt,
        plane_orientation=orientation,
        plane_output="rotation",
        fill_value=np.nan,
    )
    disk = inscribed_disk(img.shape, center) & (
        ndimage.distance_transform_edt(inscribed_disk(img.shape, center)) > 12
    )
    assert frame_scores(out, sample, disk).min() > 0.97


def quiet(fn, *args, **kwargs):
    with contextlib.redirect_stderr(io.StringIO()):
        return fn(*args, **kwargs)


@pytest.mark.parametrize("tilt, orientation", [(40, 30), (25, -60)])
def test_tilt_and_orientation_mean_what_the_reference_rotator_means(tilt, orientation):
    rows, n = 64, 4
    sample = make_cells(
        (rows, rows),
        cells=[(14, 40, 2.5, 255.0), (44, 20, 3.0, 200.0)],
        blur=1.0,
        background=0,
        dtype=np.float32,
    )
    # every angle non-zero: the reference skips its homography at angle 0
    angles = 1 + np.arange(n * rows) * 300.0 / (n * rows)
    stack = np.repeat(sample[np.newaxis], n, axis=0)
    ref = quiet(
        Rotator(
            angles,
            stack,
            rotation_plane_angle=tilt,
            rotation_plane_orientation=orientation,
            blank_pixel_val=0,
        ).rotate_by_line
    )
    center = (rows // 2, rows // 2)

    def ours(o):
        img = to_image_plane(sample, center, tilt, o)
        return rotate_by_line(
            img,
            angles,
            center,
            n_frames=n,
            plane_tilt=tilt,
            plane_orientation=o,
            fill_value=0,
        )

    same = np.corrcoef(ours(orientation).ravel(), ref.ravel())[0, 1]
    mirrored = np.corrcoef(ours(-orientation).ravel(), ref.ravel())[0, 1]
    assert same > 0.9 and mirrored < 0.8


def tilted_movie(tilt, orientation, seed=0):
    rows, n = 256, 40
    cells = [(60.0, 150.0, 5.0, 255.0), (180.0, 90.0, 4.5, 255.0)]
    img = np.maximum(
        make_cells((rows, rows), seed=2, n_cells=30, dtype=np.float32),
        make_cells((rows, rows), cells=cells, background=0, dtype=np.float32),
    )
    angles = make_trace("real", n * rows, rows)
    center = (128 - 5.5, 128 + 8.3)
    movie = rotate_by_line(
        img,
        angles,
        center,
        n_frames=n,
        plane_tilt=tilt,
        plane_orientation=orientation,
        fill_value=80,
    )
    rng = np.random.default_rng(seed)
    movie = movie + rng.normal(0, 10, movie.shape).astype(np.float32)
    return movie, angles, center, img, cells[0][:2]


def orientation_error(a, b) -> float:
    return abs((a - b + 90) % 180 - 90)


@pytest.mark.parametrize(
    "tilt, orientation", [(15, 30), (30, -60), (40, 80), (40, 135)]
)
def test_ellipse_measures_tilt_and_orientation_that_correct_the_movie(
    tilt, orientation
):
    movie, angles, center, img, seed = tilted_movie(tilt, orientation)
    fit = fit_center_ellipse(movie, angles, seed, frame=0)
    assert np.hypot(*np.subtract(fit.center, center)) < 0.5
    assert fit.tilt == pytest.approx(tilt, abs=3.0)
    assert fit.tilt_significant and abs(fit.tilt - tilt) < 4 * fit.tilt_uncertainty
    assert orientation_error(fit.plane_orientation, orientation) < 3.0
    # passing them to derotate corrects the movie as well as the truth does
    rot = np.abs(angles.reshape(40, -1)).max(axis=1) > 5
    disk = inscribed_disk(img.shape, center) & (
        ndimage.distance_transform_edt(inscribed_disk(img.shape, center)) > 30
    )
    fixed = derotate(
        movie[rot],
        angles.reshape(40, -1)[rot].ravel(),
        fit.center,
        plane_tilt=fit.tilt,
        plane_orientation=fit.plane_orientation,
    )
    flat = derotate(movie[rot], angles.reshape(40, -1)[rot].ravel(), fit.center)
    s_fixed = frame_scores(fixed, img, disk)
    s_flat = frame_scores(flat, img, disk)
    assert s_fixed.min() > 0.85
    assert s_fixed.mean() > s_flat.mean() + 0.05


def test_bayesian_search_with_the_tilted_plane_corrected():
    movie, angles, center, _, _ = tilted_movie(30, 40)
    res = find_center_bayesian(movie, angles, plane_tilt=30, plane_orientation=40)
    assert np.hypot(*np.subtract(res.center, center)) < 0.5
