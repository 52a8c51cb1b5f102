"""Against the reference package ``derotation`` 0.1.6 (the ``bench`` extra),
used only as an oracle: same conventions, better results."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from derotation.derotate_by_line import (  # the oracle
    derotate_an_image_array_line_by_line as reference_derotate,
)
from derotation.simulate.line_scanning_microscope import Rotator

from napari_derotation import derotate
from napari_derotation.compat import derotate_an_image_array_line_by_line
from napari_derotation.simulate import (
    constant_speed_trace,
    make_cells,
    make_texture,
    rotate_by_line,
)

from helpers import frame_scores, inscribed_disk


def quiet(fn, *args, **kwargs):
    """Call the reference with its tqdm bars silenced."""
    with contextlib.redirect_stderr(io.StringIO()):
        return fn(*args, **kwargs)


def reference_movie(img, n_frames, angles, offset=(0, 0)):
    stack = np.repeat(img[np.newaxis], n_frames, axis=0)
    return quiet(Rotator(angles, stack, center_offset=offset).rotate_by_line)


@pytest.mark.parametrize("offset", [(0, 0), (7, -4)])
def test_movie_from_reference_rotator_is_corrected_with_same_angles(offset):
    rows = 64
    img = make_texture((rows, rows), sigma=3)
    n = 6
    angles = constant_speed_trace(n * rows, degrees_per_line=0.25)
    movie = reference_movie(img, n, angles, offset)
    center = (rows // 2 + offset[0], rows // 2 + offset[1])
    ours = derotate(movie, angles, center, fill_value=np.nan)
    disk = inscribed_disk(img.shape, center)
    assert frame_scores(ours, img, disk).min() > 0.97


def test_our_simulator_matches_the_reference_rotator():
    rows = 48
    img = make_cells((rows, rows), n_cells=8, blur=0, dtype=np.uint8)
    angles = constant_speed_trace(3 * rows, degrees_per_line=0.7)
    ref = reference_movie(img, 3, angles, (3, -2))
    ours = rotate_by_line(
        img,
        angles,
        (rows // 2 + 3, rows // 2 - 2),
        interpolation="nearest",
        fill_value=int(img.min()),
    )
    # nearest-neighbour both: identical but for rounding ties
    assert (ours == ref).mean() > 0.98


def test_we_score_better_than_the_reference_on_every_frame():
    rows = 96
    img = make_texture((rows, rows), sigma=2.5)
    n = 8
    angles = constant_speed_trace(n * rows, degrees_per_line=0.12)
    movie = reference_movie(img, n, angles)
    center = (rows // 2, rows // 2)
    ours = derotate(movie, angles, center)
    theirs = quiet(reference_derotate, movie, angles, center=(rows // 2, rows // 2))
    disk = inscribed_disk(img.shape, center)
    rot = np.any(angles.reshape(n, rows) != 0, axis=1)
    s_ours = frame_scores(ours[rot], img, disk)
    s_theirs = frame_scores(theirs[rot], img, disk)
    assert (s_ours > s_theirs).all()
    # and the reference leaves holes (blank pixels) where we leave none
    blank_theirs = (theirs[rot][:, disk] == 0).mean()
    blank_ours = (ours[rot][:, disk] == 0).mean()
    assert blank_ours == 0 and blank_theirs > 0.005


def test_compat_takes_x_y_centres_like_the_reference():
    rows = 60
    img = make_texture((rows, rows))
    n = 4
    angles = constant_speed_trace(n * rows, degrees_per_line=0.3)
    offset = (5, -8)  # (row, col)
    movie = reference_movie(img, n, angles, offset)
    row, col = rows // 2 + offset[0], rows // 2 + offset[1]
    via_compat = derotate_an_image_array_line_by_line(movie, angles, center=(col, row))
    np.testing.assert_array_equal(via_compat, derotate(movie, angles, (row, col)))
    # the reference itself, same (x, y) call, agrees with us where it has no holes
    theirs = quiet(reference_derotate, movie, angles, center=(col, row))
    disk = inscribed_disk(img.shape, (row, col))
    assert (
        frame_scores(via_compat, img, disk).min()
        > frame_scores(theirs, img, disk).min()
    )


def test_compat_rejects_a_bad_centre():
    from napari_derotation import DerotationError

    with pytest.raises(DerotationError, match="x, y"):
        derotate_an_image_array_line_by_line(np.zeros((1, 4, 4)), np.zeros(4), center=5)
