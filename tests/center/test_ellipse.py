"""Centre of rotation from an ellipse fitted to one tracked cell."""

from __future__ import annotations

import contextlib
import io
import json
from functools import cache

import numpy as np
import pytest
from scipy import ndimage

from napari_derotation.center.ellipse import (
    ellipse_to_plane,
    fit_center_ellipse,
    fit_ellipse,
)
from napari_derotation.cli import main
from napari_derotation.engine.params import DerotationParams
from napari_derotation.errors import Cancelled, DerotationError
from napari_derotation.io import write_tiff
from napari_derotation.simulate import (
    make_cells,
    make_trace,
    rotate_by_line,
    simulate_movie,
)


@cache
def movie(trace="real", n_frames=40, offset=(-7.0, 9.5), noise=10.0, size=256):
    return simulate_movie(
        (size, size), n_frames, trace=trace, center_offset=offset, noise=noise, seed=5
    )


def bright_cell(sim, rmin=50.0, rmax=100.0):
    """A bright, isolated cell of the sample, ``rmin``-``rmax`` px from the
    centre of rotation: its (row, col)."""
    s = sim.sample.astype(float)
    labels, n = ndimage.label(s > 0.5 * (s.max() + np.median(s)))
    index = range(1, n + 1)
    for c, size in zip(
        ndimage.center_of_mass(s, labels, index),
        ndimage.sum(np.ones_like(s), labels, index),
        strict=True,
    ):
        d = np.hypot(c[0] - sim.center[0], c[1] - sim.center[1])
        if rmin < d < rmax and 30 < size < 150:
            return c
    raise AssertionError("no bright cell in range")


def raw_position(sim, cell, frame):
    """Where ``cell`` (a sample position) shows in ``frame`` of the raw movie:
    the forward model, solved for the line that scans it."""
    rows = sim.movie.shape[1]
    a = sim.angles_per_line.reshape(-1, rows)[frame]
    c = np.asarray(sim.center)
    p, w = np.array(cell, float), np.asarray(cell) - c
    for _ in range(6):
        t = np.deg2rad(np.interp(p[0], np.arange(rows), a))
        p = c + np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]]) @ w
    return p


def error(center, truth) -> float:
    return float(np.hypot(center[0] - truth[0], center[1] - truth[1]))


@pytest.mark.parametrize(
    "trace, n_frames, offset, noise",
    [
        ("real", 40, (-7.0, 9.5), 10.0),
        ("real", 40, (12.0, 0.0), 20.0),
        ("incremental", 72, (3.0, -11.0), 10.0),
        ("sine", 40, (-8.0, -8.0), 10.0),
    ],
)
def test_center_within_half_a_pixel_from_a_clicked_cell(trace, n_frames, offset, noise):
    sim = movie(trace, n_frames, offset, noise)
    frame = 5
    seed = raw_position(sim, bright_cell(sim), frame)
    # a click a little off the cell's middle
    fit = fit_center_ellipse(
        sim.movie, sim.angles_per_line, (seed[0] + 1.3, seed[1] - 0.8), frame=frame
    )
    assert error(fit.center, sim.center) < 0.5
    assert error(fit.seed, seed) < 2.0  # the middle of the cell, not the click
    radius = error(bright_cell(sim), sim.center)
    assert fit.axes[0] == pytest.approx(radius, abs=2.0)
    assert fit.axes[0] >= fit.axes[1]
    assert fit.tilt < 5.0  # a circle: the plane is not tilted
    assert not fit.tilt_significant  # ... and the fit knows it is noise
    assert 0 < fit.tilt_uncertainty < 2.0
    assert 0 < max(fit.center_uncertainty) < 0.1
    assert fit.residual < 0.3
    assert len(fit.positions) >= 15 and len(fit.angles) == len(fit.positions)
    assert fit.lost_frames.size == 0 and fit.messages == []
    # the tracked positions lie on the fitted ellipse
    pts = fit.ellipse_points(720)
    d = np.hypot(*(fit.positions[:, None] - pts[None]).transpose(2, 0, 1))
    assert d.min(axis=1).max() < 1.0


def test_geometric_fit_recovers_a_known_ellipse():
    rng = np.random.default_rng(0)
    t = rng.uniform(0, 2 * np.pi, 60)
    o = np.deg2rad(25.0)
    u, v = np.array([np.cos(o), np.sin(o)]), np.array([-np.sin(o), np.cos(o)])
    pts = (
        np.array([100.0, 120.0])
        + 50 * np.cos(t)[:, None] * u
        + 30 * np.sin(t)[:, None] * v
        + rng.normal(0, 0.2, (60, 2))
    )
    for angles in (None, np.degrees(t)):
        center, axes, orientation, rms, _ = fit_ellipse(pts, angles)
        assert error(center, (100, 120)) < 0.15
        assert axes == pytest.approx((50, 30), abs=0.2)
        assert orientation == pytest.approx(25.0, abs=1.0)
        assert rms < 0.35
    assert ellipse_to_plane((50, 25)) == pytest.approx(60.0)
    with pytest.raises(DerotationError, match="at least 5"):
        fit_ellipse(pts[:4])


def test_lost_frames_are_reported():
    sim = movie()
    damaged = sim.movie.copy()
    damaged[20:23] = np.median(sim.movie)  # three blank frames
    seed = bright_cell(sim)
    fit = fit_center_ellipse(damaged, sim.angles_per_line, seed, frame=0)
    assert {20, 21, 22} <= set(fit.lost_frames.tolist())
    assert "lost in" in fit.messages[0]
    assert error(fit.center, sim.center) < 0.5


@pytest.mark.parametrize(
    "seed, frame, words",
    [
        ((300.0, 10.0), 0, ["seed", "outside the frame"]),
        ((-1.0, 10.0), 0, ["seed", "outside the frame"]),
        ((10.0,), 0, ["seed must be two numbers"]),
        ((100.0, 100.0), 40, ["frame must be an integer in [0, 39]"]),
        ((100.0, 100.0), 1.5, ["frame must be an integer"]),
        ((2.0, 2.0), 0, ["no bright cell at the seed"]),
    ],
)
def test_bad_seed_or_frame(seed, frame, words):
    sim = movie()
    with pytest.raises(DerotationError) as info:
        fit_center_ellipse(sim.movie, sim.angles_per_line, seed, frame=frame)
    for w in words:
        assert w in str(info.value)


def test_movie_without_rotation_is_refused():
    sim = movie()
    with pytest.raises(DerotationError, match="does not rotate"):
        fit_center_ellipse(
            sim.movie, np.zeros_like(sim.angles_per_line), bright_cell(sim)
        )


def test_too_few_positions_names_the_count():
    sim = movie(noise=0.0)
    flat = np.full_like(sim.movie, 80)
    flat[0] = sim.movie[0]  # the cell exists only where it was clicked
    with pytest.raises(DerotationError) as info:
        fit_center_ellipse(flat, sim.angles_per_line, bright_cell(sim))
    msg = str(info.value)
    assert "too few tracked positions" in msg and "expected at least 8" in msg


def test_progress_and_cancel():
    sim = movie()
    calls = []
    fit_center_ellipse(
        sim.movie,
        sim.angles_per_line,
        bright_cell(sim),
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls[-1] == (40, 40)
    with pytest.raises(Cancelled):
        fit_center_ellipse(
            sim.movie,
            sim.angles_per_line,
            bright_cell(sim),
            progress=lambda d, t: d < 5,
        )


def test_cli_ellipse_prints_centre_tilt_and_orientation(tmp_path, capsys):
    sim = movie()
    write_tiff(tmp_path / "m.tif", sim.movie)
    np.save(tmp_path / "a.npy", sim.angles_per_line)
    r, c = bright_cell(sim)
    code = main(
        [
            "find-center",
            str(tmp_path / "m.tif"),
            "--angles",
            str(tmp_path / "a.npy"),
            "--method",
            "ellipse",
            "--seed",
            str(r),
            str(c),
            "--frame",
            "0",
            "--json",
            "--quiet",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "ellipse"
    assert error(out["center"], sim.center) < 0.5
    assert set(out["ellipse"]) == {"center", "axes", "orientation", "residual"}
    assert 0 <= out["tilt"] < 5 and "orientation" in out
    assert out["tilt_significant"] is False and out["tilt_uncertainty"] > 0
    assert len(out["center_uncertainty"]) == 2
    assert 0 < max(out["center_uncertainty"]) < 0.1
    # derotate --params reads it: the centre, and no tilt (not significant)
    params = DerotationParams.from_record(out)
    assert params.center == tuple(out["center"]) and params.plane_tilt == 0
    assert (
        main(
            [
                "find-center",
                str(tmp_path / "m.tif"),
                "--angles",
                str(tmp_path / "a.npy"),
                "--method",
                "ellipse",
                "--seed",
                str(r),
                str(c),
                "--quiet",
            ]
        )
        == 0
    )
    assert "not significant" in capsys.readouterr().out
    assert (
        main(
            [
                "find-center",
                str(tmp_path / "m.tif"),
                "--angles",
                str(tmp_path / "a.npy"),
                "--method",
                "ellipse",
                "--seed",
                "999",
                "5",
                "--quiet",
            ]
        )
        == 2
    )
    assert "outside the frame" in capsys.readouterr().err


# --- on the reference's own simulated movies (its Rotator and SyntheticData)


@cache
def reference_movie(cell_xy=(50, 10), offset=(0, 0), n_frames=100):
    """The reference's synthetic data: a flat bright disc (radius 5, value
    255 on 80) at ``cell_xy`` (x, y) and a dimmer one, 100x100, turned in 36
    steps of 10 degrees by its ``Rotator`` about the frame centre plus
    ``offset`` (row, col). Returns movie, angles, centre (row, col)."""
    from derotation.simulate.line_scanning_microscope import Rotator
    from derotation.simulate.synthetic_data import SyntheticData

    data = SyntheticData(
        center_of_bright_cell=cell_xy,
        num_frames=n_frames,
        center_of_rotation_offset=offset,
    )
    data.image = data.create_sample_image_with_cells()
    stack = data.create_image_stack()
    angles, _ = data.create_rotation_angles(stack.shape)
    rotator = Rotator(angles, stack, center_offset=offset)
    with contextlib.redirect_stderr(io.StringIO()):  # its progress bar
        movie = rotator.rotate_by_line()
    return movie, angles, tuple(float(v) for v in rotator.post_homography_center)


def test_a_bright_cell_near_the_frames_edge_is_followed():
    # the reference's default: the bright cell 10 px from the top edge (it
    # finds the centre within 1.4 px; this fit refused the cell)
    movie_, angles, center = reference_movie()
    fit = fit_center_ellipse(movie_, angles, (10.0, 50.0))
    assert error(fit.center, center) < 0.1
    assert error(fit.seed, (10, 50)) < 0.2
    assert fit.axes[0] == pytest.approx(40.0, abs=0.5)
    assert len(fit.positions) >= 30 and not fit.tilt_significant


@pytest.mark.parametrize(
    "click",
    [(15.0, 50.0), (5.0, 50.0), (10.0, 55.0), (10.0, 45.0), (13.5, 53.5), (16.0, 50.0)],
)
def test_a_click_anywhere_on_a_flat_topped_cell_snaps_to_it(click):
    # on its edge, 5 px from its middle (or just outside): the fit found it
    # at 1 angle and lost it in the rest
    movie_, angles, center = reference_movie()
    fit = fit_center_ellipse(movie_, angles, click)
    assert error(fit.seed, (10, 50)) < 0.2
    assert error(fit.center, center) < 0.1


def test_a_cell_partly_outside_the_frame_is_followed():
    # the cell's top rows are cut off at the seed, and it rides the frame's
    # edges as it turns
    movie_, angles, center = reference_movie(cell_xy=(50, 3))
    seed = (3.0, 50.0)
    assert (movie_[0, 0, 47:54] > 200).all()  # cut by the edge
    fit = fit_center_ellipse(movie_, angles, seed)
    assert error(fit.center, center) < 0.3
    assert fit.axes[0] == pytest.approx(47.0, abs=1.0)
    assert len(fit.positions) >= 30


def test_a_cell_that_leaves_the_frame_is_fitted_where_it_is_seen():
    # centre 20 px right of the middle: the cell leaves through the right
    # edge for part of the turn
    movie_, angles, center = reference_movie(cell_xy=(50, 22), offset=(0, 20))
    rows = movie_.shape[1]
    fit = fit_center_ellipse(movie_, angles, (22.0, 50.0))
    assert error(fit.center, center) < 0.3
    assert fit.lost_frames.size >= 5
    assert any("out of view" in m for m in fit.messages)
    assert fit.positions[:, 1].max() < rows  # only where it was seen
    assert max(fit.center_uncertainty) < 0.2


def test_angles_that_do_not_constrain_an_ellipse_are_refused():
    # the sample turns through 40 degrees only
    rows, n = 96, 30
    img = make_cells(
        (rows, rows), cells=[(30.0, 48.0, 4.0, 255.0)], background=80, dtype=np.float32
    )
    angles = np.linspace(0, 40, n * rows)
    mov = rotate_by_line(img, angles, (48.0, 48.0), n_frames=n)
    with pytest.raises(DerotationError) as info:
        fit_center_ellipse(mov, angles, (30.0, 48.0))
    msg = str(info.value)
    assert "do not constrain an ellipse" in msg
    assert "distinct angles spanning 39 degrees" in msg


@pytest.mark.parametrize("tilt, orientation", [(30.0, 40.0), (0.0, 0.0)])
def test_tilt_with_its_uncertainty_and_significance(tilt, orientation):
    rows, n = 256, 40
    cells = [(60.0, 150.0, 5.0, 255.0)]
    img = np.maximum(
        make_cells((rows, rows), seed=2, n_cells=30, dtype=np.float32),
        make_cells((rows, rows), cells=cells, background=0, dtype=np.float32),
    )
    angles = make_trace("real", n * rows, rows)
    center = (122.5, 136.3)
    mov = rotate_by_line(
        img,
        angles,
        center,
        n_frames=n,
        plane_tilt=tilt,
        plane_orientation=orientation,
        fill_value=80,
    )
    mov = mov + np.random.default_rng(3).normal(0, 10, mov.shape)
    fit = fit_center_ellipse(mov, angles, cells[0][:2])
    assert error(fit.center, center) < 0.1
    assert fit.tilt_uncertainty > 0
    if tilt:
        assert fit.tilt_significant
        assert abs(fit.tilt - tilt) <= 3 * fit.tilt_uncertainty
        assert fit.tilt_uncertainty < 0.5
    else:
        assert not fit.tilt_significant and fit.tilt < 3.0
