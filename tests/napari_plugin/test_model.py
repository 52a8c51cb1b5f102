"""The widget's model (``_model``, ``_meta``): Qt-free, tested without a
viewer."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile

from napari_derotation import DerotationParams, derotate
from napari_derotation._napari import _meta, _model
from napari_derotation.errors import DerotationError
from napari_derotation.frames import frame_angles, rotating_frames
from napari_derotation.simulate import simulate_movie


@pytest.fixture(scope="module")
def sim():
    return simulate_movie((40, 44), 24, trace="constant", seed=3, dtype=np.uint16)


def test_check_inputs_names_what_is_wrong(sim):
    with pytest.raises(DerotationError, match="no movie"):
        _model.check_inputs(None, None)
    with pytest.raises(DerotationError, match="2-D"):
        _model.check_inputs(sim.movie[0], sim.angles_per_line)
    with pytest.raises(DerotationError, match="no rotation angles"):
        _model.check_inputs(sim.movie, None)
    with pytest.raises(DerotationError, match="expected at least"):
        _model.check_inputs(sim.movie, sim.angles_per_line[:10])
    angles, center = _model.check_inputs(sim.movie, sim.angles_per_line)
    assert center == (20.0, 22.0) and angles.size == 24 * 40


def test_meta_round_trips_the_parameters():
    p = DerotationParams(
        center=(3.5, 4.25),
        interpolation="nearest",
        fill_value=7,
        plane_tilt=12,
        plane_orientation=-30,
        plane_output="rotation",
    )
    meta = {_meta.KEY: _meta.from_params(p)}
    assert _meta.params(meta) == p
    assert _meta.params({}) == DerotationParams()


def test_derotate_steps_equal_the_engine_and_close_early(sim):
    p = DerotationParams(center=sim.center, plane_tilt=10)
    steps = _model.derotate_steps(sim.movie, sim.angles_per_line, p, chunk_frames=5)
    seen = []
    try:
        while True:
            seen.append(next(steps))
    except StopIteration as stop:
        out = stop.value
    assert seen[-1] == (24, 24) and len(seen) == 5
    np.testing.assert_array_equal(
        out, derotate(sim.movie, sim.angles_per_line, params=p)
    )


def test_preview_is_the_mean_of_the_derotated_frames(sim):
    frames = _model.preview_frames(sim.angles_per_line, 24, 40, k=6)
    assert 1 <= frames.size <= 6
    assert set(frames) <= set(rotating_frames(sim.angles_per_line, 24, 40))
    p = DerotationParams(center=sim.center)
    img = _model.preview_image(sim.movie, sim.angles_per_line, frames, p)
    full = derotate(sim.movie, sim.angles_per_line, params=p)
    np.testing.assert_allclose(img, full[frames].mean(0), rtol=1e-5)


def test_export_writes_the_shared_frame_table_and_record(sim, tmp_path):
    p = DerotationParams(center=sim.center, plane_tilt=5)
    out = derotate(sim.movie, sim.angles_per_line, params=p)
    source = {
        _meta.KEY: {"angles_per_line": sim.angles_per_line, "angles_source": "sample"}
    }
    meta = _model.derotated_metadata(source, p, source_layer="raw")
    job = _model.export_job(tmp_path, "fixed", out, meta)
    steps = _model.export_steps(job, out, meta, chunk_frames=10)
    done = list(steps)
    assert done[-1] == (24, 24)
    tables = job.output.table_paths()
    np.testing.assert_array_equal(tifffile.imread(job.output.path), out)
    rec = json.loads(job.output.record_path.read_text())
    assert DerotationParams.from_record(rec) == p
    with open(tables["frames"]) as fh:
        rows = list(csv.DictReader(fh))
    expected = frame_angles(sim.angles_per_line, 24, 40)
    assert [float(r["rotation_angle"]) for r in rows] == pytest.approx(expected)
    # an existing export is refused unless asked
    with pytest.raises(DerotationError, match="refusing to replace .*tick"):
        _model.export_job(tmp_path, "fixed", out, meta)


def test_closing_an_export_early_leaves_nothing(sim, tmp_path):
    p = DerotationParams(center=sim.center)
    source = {_meta.KEY: {"angles_per_line": sim.angles_per_line}}
    meta = _model.derotated_metadata(source, p, source_layer="raw")
    job = _model.export_job(tmp_path, "fixed", sim.movie, meta)
    steps = _model.export_steps(job, sim.movie, meta, chunk_frames=5)
    next(steps)
    steps.close()
    assert list(tmp_path.iterdir()) == []


def test_agreement_separates_still_from_moving_frames(sim):
    p = DerotationParams(center=sim.center)
    fixed = derotate(sim.movie, sim.angles_per_line, params=p)
    frames = rotating_frames(sim.angles_per_line, 24, 40)
    raw_mean, out_mean, raw_a, out_a = _model.mean_images(
        sim.movie, fixed, frames, sim.center
    )
    assert out_a > raw_a + 0.2
    assert raw_mean.shape == out_mean.shape == (40, 44)


def test_the_agreement_summed_chunk_by_chunk_is_the_mean_images_one(sim):
    p = DerotationParams(center=sim.center)
    score = _model.Agreement(sim.angles_per_line, sim.movie.shape, sim.center)
    out = None
    steps = _model.derotate_steps(
        sim.movie, sim.angles_per_line, p, chunk_frames=5, score=score
    )
    try:
        while True:
            next(steps)
    except StopIteration as stop:
        out = stop.value
    frames = rotating_frames(sim.angles_per_line, 24, 40)
    *_, raw_a, out_a = _model.mean_images(sim.movie, out, frames, sim.center)
    assert score.values() == pytest.approx((raw_a, out_a), rel=1e-9)
    assert score.n_frames == frames.size


def test_agreement_message_says_when_the_centre_is_probably_off():
    text, low = _model.agreement_message(0.07, 0.22)
    assert low and "frame agreement 0.22 (raw 0.07" in text
    assert "centre of rotation is probably off" in text
    text, low = _model.agreement_message(0.07, 0.98)
    assert not low and "off" not in text


def test_showcase_frame_is_a_rotating_one(sim):
    angles = sim.angles_per_line.copy()
    rows = 40
    angles[: 5 * rows] = 0.0  # five still frames first
    frames = set(rotating_frames(angles, 24, rows).tolist())
    assert 0 not in frames
    pick = _model.showcase_frame(angles, 24, rows, current=0)
    assert pick in frames
    assert _model.showcase_frame(angles, 24, rows, current=max(frames)) == max(
        frames
    )  # a rotating one stays
    assert _model.showcase_frame(np.zeros(24 * rows), 24, rows, 3) == 3


def test_fill_values_are_each_channels_own():
    ch0 = np.full((3, 8, 8), 80, np.uint16)
    ch1 = np.full((3, 8, 8), 340, np.uint16)
    assert _model.fill_values([ch0], "background") == 80.0
    assert _model.fill_values([ch0, ch1], "background") == (80.0, 340.0)
    assert _model.fill_values([ch0, ch1], "zero") == (0.0, 0.0)
    p = DerotationParams(center=(4, 4), fill_value=(80.0, 340.0))
    source = {_meta.KEY: {"angles_per_line": np.zeros(24), "channel": 1, "channels": 2}}
    d = _model.derotated_metadata(source, p, source_layer="m ch1", channel=1)[_meta.KEY]
    assert d["fill_value"] == 340.0 and d["fill_values"] == [80.0, 340.0]
    assert _meta.params({_meta.KEY: d}).fill_value == 340.0
    group = _model.group_metadata({_meta.KEY: d})
    assert _meta.params(group).fill_value == (80.0, 340.0)
    # derotating a group gives each channel its own fill
    movie = np.stack([ch0, ch1])
    angles = np.full(3 * 8, 45.0)
    gen = _model.derotate_group_steps(list(movie), angles, p)
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        outs = stop.value
    assert outs[0][0, 0, 0] == 80 and outs[1][0, 0, 0] == 340


def test_movie_problem_names_a_single_image():
    assert _model.movie_problem((5, 8, 8)) is None
    assert _model.movie_problem((8, 8)).startswith("a single image")
    assert _model.movie_problem((8, 8, 3), rgb=True).startswith("a single RGB image")
    assert "derotation needs a movie" in _model.movie_problem((2, 2, 8, 8))
    with pytest.raises(DerotationError, match="a single image"):
        _model.check_inputs(np.zeros((8, 8)), None)


@pytest.mark.parametrize(
    "name, words",
    [
        ("../escaped", "folder separator"),
        ("x" * 250, "bytes long"),
        ("x\ny", "control character"),
        ("", "empty"),
        (".hidden", "starts with '.'"),
    ],
)
def test_an_export_name_goes_through_the_one_name_rule(sim, tmp_path, name, words):
    p = DerotationParams(center=sim.center)
    meta = _model.derotated_metadata(
        {_meta.KEY: {"angles_per_line": sim.angles_per_line}}, p, source_layer="raw"
    )
    with pytest.raises(DerotationError, match=words):
        _model.export_job(tmp_path / "in", name, sim.movie, meta)
    assert not (tmp_path / "escaped.tif").exists()


def test_an_export_name_ending_in_tif_is_not_doubled(sim, tmp_path):
    p = DerotationParams(center=sim.center)
    meta = _model.derotated_metadata(
        {_meta.KEY: {"angles_per_line": sim.angles_per_line}}, p, source_layer="raw"
    )
    job = _model.export_job(tmp_path, "name.tif", sim.movie, meta)
    assert job.output.path.name == "name.tif"
    assert job.output.record_path.name == "name.derotation.json"


def test_a_per_channel_fill_is_recorded_per_channel(sim, tmp_path):
    p = DerotationParams(center=sim.center, fill_value=(80, 340))
    two = np.stack([sim.movie, sim.movie], axis=1)  # T C Y X
    source = {
        _meta.KEY: {
            "angles_per_line": sim.angles_per_line,
            "axes": "TCYX",
            "channels": 2,
        }
    }
    meta = _model.derotated_metadata(source, p, source_layer="raw")
    assert _meta.params(meta).fill_value == (80.0, 340.0)
    job = _model.export_job(tmp_path, "two", two, meta)
    list(_model.export_steps(job, two, meta))
    rec = json.loads(job.output.record_path.read_text())
    assert rec["fill_value"] == [80.0, 340.0] and rec["axes"] == "TCYX"
