"""The delay between the angle signal and the scan (angle_delay): applied
the same way on every path, estimated with the centre, refused when the
movie cannot tell it."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest
import tifffile

from napari_derotation import DerotationParams, derotate, derotate_into
from napari_derotation.center.delay import (
    delay_sensitivity,
    estimate_delay,
    find_center_and_delay,
)
from napari_derotation.cli import main
from napari_derotation.errors import DerotationError
from napari_derotation.frames import delay_angles
from napari_derotation.simulate import simulate_movie

ROWS, FRAMES = 96, 40
LINES = ROWS * FRAMES


def triangle():
    """Constant speed one way, then back: both directions, one speed."""
    half = LINES // 2
    return np.concatenate(
        [np.linspace(0, 300, half), np.linspace(300, 0, LINES - half)]
    )


@cache
def sim(trace="sine", delay=0.0, noise=5.0):
    tr = (
        triangle()
        if trace == "triangle"
        else (np.linspace(0, 300, LINES) if trace == "constant" else trace)
    )
    return simulate_movie(
        (ROWS, ROWS),
        FRAMES,
        trace=tr,
        delay=delay,
        center_offset=(3.3, -4.6),
        noise=noise,
    )


# ---------------------------------------------------------------- params


def test_params_carry_the_delay_in_records():
    p = DerotationParams(center=(10, 12), angle_delay=-2.5)
    rec = p.to_record()
    assert rec["angle_delay"] == -2.5
    assert DerotationParams.from_record(json.loads(json.dumps(rec))) == p
    assert DerotationParams.build(p, angle_delay=0).angle_delay == 0
    assert DerotationParams().to_record()["angle_delay"] == 0
    assert p.without_delay() == p.replace(angle_delay=0.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, "x", True])
def test_params_refuse_a_delay_that_is_not_a_number_of_lines(bad):
    with pytest.raises(DerotationError, match="angle_delay must be a finite"):
        DerotationParams(angle_delay=bad)


def test_delay_convention():
    a = np.array([0.0, 1.0, 2.0, 4.0, 8.0])
    # line i takes the recorded angle of line i - delay (ends held)
    np.testing.assert_array_equal(delay_angles(a, 2), [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(delay_angles(a, -1), [1, 2, 4, 8, 8])
    np.testing.assert_allclose(delay_angles(a, 0.5), [0, 0.5, 1.5, 3, 6])
    # the simulator's recorded trace, delayed back, is the true one
    s = sim("sine", 10.0)
    np.testing.assert_array_equal(
        delay_angles(s.angles_per_line, 10)[10:], s.true_angles[10:]
    )


# ------------------------------------------------------ applied everywhere


def test_every_path_applies_the_delay_once(tmp_path):
    from napari_derotation._napari._model import derotate_steps, preview_image
    from napari_derotation.engine.files import derotate_file
    from napari_derotation.engine.lazy import derotate_lazy

    s = sim("sine", 7.5, 0.0)
    recorded = s.angles_per_line
    p = DerotationParams(center=s.center, angle_delay=7.5)
    truth = derotate(s.movie, delay_angles(recorded, 7.5), s.center)
    without = derotate(s.movie, recorded, s.center)
    assert np.abs(truth.astype(float) - without).max() > 50
    np.testing.assert_array_equal(derotate(s.movie, recorded, params=p), truth)
    np.testing.assert_array_equal(
        derotate(s.movie, recorded, s.center, angle_delay=7.5), truth
    )
    out = np.empty_like(s.movie)
    derotate_into(s.movie, recorded, out=out, params=p)
    np.testing.assert_array_equal(out, truth)
    lazy = derotate_lazy(s.movie, recorded, params=p, chunk_frames=7)
    np.testing.assert_array_equal(lazy.compute(), truth)
    # a file, in chunks: the delay runs across chunk boundaries
    tifffile.imwrite(tmp_path / "m.tif", s.movie)
    rec = derotate_file(
        tmp_path / "m.tif", recorded, tmp_path / "o.tif", params=p, chunk_frames=3
    )
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "o.tif"), truth)
    assert rec["angle_delay"] == 7.5
    # the widget's preview and its chunked derotation
    frames = np.arange(5, 30, 4)
    np.testing.assert_allclose(
        preview_image(s.movie, recorded, frames, p),
        truth[frames].mean(axis=0, dtype=np.float32),
        rtol=1e-6,
    )
    steps = derotate_steps(s.movie, recorded, p, chunk_frames=6)
    try:
        while True:
            next(steps)
    except StopIteration as stop:
        np.testing.assert_array_equal(stop.value, truth)


def test_planes_delay_along_the_scan():
    # two planes: line row of plane z at time t is scan line (t*2+z)*rows+row
    s = sim("sine", 4.0, 0.0)
    movie5 = s.movie.reshape(FRAMES // 2, 2, 1, ROWS, ROWS)
    p = DerotationParams(center=s.center, angle_delay=4.0)
    out = derotate(movie5, s.angles_per_line, params=p, axes="TZCYX")
    truth = derotate(s.movie, delay_angles(s.angles_per_line, 4.0), s.center)
    np.testing.assert_array_equal(out.reshape(s.movie.shape), truth)


# -------------------------------------------------------------- estimated


@pytest.mark.parametrize(
    ("trace", "delay"),
    [("sine", 0.0), ("triangle", 10.5), ("sine", 20.0), ("triangle", -6.0)],
)
def test_centre_and_delay_found_together(trace, delay):
    s = sim(trace, delay)
    res = find_center_and_delay(s.movie, s.angles_per_line)
    assert res.delay == pytest.approx(delay, abs=0.2)
    assert np.hypot(*np.subtract(res.center, s.center)) < 0.05
    assert 0 < res.uncertainty < 0.5
    rec = res.to_record()
    assert DerotationParams.from_record(rec).angle_delay == res.delay


def test_delay_about_a_given_centre():
    s = sim("triangle", 12.0)
    res = estimate_delay(s.movie, s.angles_per_line, s.center)
    assert res.delay == pytest.approx(12.0, abs=0.2)
    assert res.center == s.center


def test_a_delay_the_movie_cannot_tell_is_refused():
    # one direction at one speed: a delay only turns the whole movie
    s = sim("constant", 10.0)
    assert delay_sensitivity(s.angles_per_line, s.movie.shape, s.center) < 0.02
    with pytest.raises(
        DerotationError, match="cannot be found from this movie.*same way"
    ):
        estimate_delay(s.movie, s.angles_per_line, s.center)
    # still frames make it observable again
    still = np.concatenate(
        [np.zeros(10 * ROWS), np.linspace(0, 300, LINES - 10 * ROWS)]
    )
    assert delay_sensitivity(still, s.movie.shape, s.center) > 0.05


# -------------------------------------------------------------------- CLI


def test_cli_find_center_delay_feeds_derotate(tmp_path, capsys):
    s = sim("triangle", 10.5)
    movie, angles = tmp_path / "m.tif", tmp_path / "a.npy"
    tifffile.imwrite(movie, s.movie)
    np.save(angles, s.angles_per_line)
    assert (
        main(["find-center", str(movie), "--angles", str(angles), "--delay", "--quiet"])
        == 0
    )
    text = capsys.readouterr().out
    assert "delay 10." in text and "lines" in text and "+-" in text
    assert (
        main(
            [
                "find-center",
                str(movie),
                "--angles",
                str(angles),
                "--delay",
                "--json",
                "--quiet",
            ]
        )
        == 0
    )
    found = json.loads(capsys.readouterr().out)
    assert found["angle_delay"] == pytest.approx(10.5, abs=0.2)
    assert found["angle_delay_uncertainty"] > 0
    (tmp_path / "fit.json").write_text(json.dumps(found))
    out = tmp_path / "o.tif"
    assert (
        main(
            [
                "derotate",
                str(movie),
                "--angles",
                str(angles),
                "--params",
                str(tmp_path / "fit.json"),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    rec = json.loads((tmp_path / "o.derotation.json").read_text())
    assert rec["angle_delay"] == found["angle_delay"]
    # --angle-delay overrides the file's
    out2 = tmp_path / "o2.tif"
    assert (
        main(
            [
                "derotate",
                str(movie),
                "--angles",
                str(angles),
                "--params",
                str(tmp_path / "fit.json"),
                "--angle-delay",
                "10.5",
                "-o",
                str(out2),
            ]
        )
        == 0
    )
    truth = derotate(s.movie, s.true_angles, found["center"])
    got = tifffile.imread(out2).astype(float)
    assert np.abs(got - truth)[1:].max() <= 1


def test_cli_refuses_an_unobservable_delay(tmp_path, capsys):
    s = sim("constant", 10.0)
    tifffile.imwrite(tmp_path / "m.tif", s.movie)
    np.save(tmp_path / "a.npy", s.angles_per_line)
    assert (
        main(
            [
                "find-center",
                str(tmp_path / "m.tif"),
                "--angles",
                str(tmp_path / "a.npy"),
                "--delay",
                "--quiet",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "delay cannot be found" in err[0]


def test_config_angle_delay():
    from napari_derotation.pipeline.config import Config

    assert Config.from_dict({"angle_delay": 3.5}).derotation_params().angle_delay == 3.5
    assert Config.from_dict({"angle_delay": "auto"}).angle_delay == "auto"
    with pytest.raises(DerotationError, match="angle_delay"):
        Config.from_dict({"angle_delay": "soon"})


def test_run_with_angle_delay_auto_records_it(tmp_path, monkeypatch):
    """``angle_delay: auto`` in a run: the centre and the delay searched in
    turn (here a stand-in search), applied and recorded."""
    import napari_derotation.center.delay as delay_mod
    from napari_derotation.center.delay import DelayResult
    from napari_derotation.io import write_tiff
    from napari_derotation.pipeline import Dataset, run_dataset
    from napari_derotation.simulate.recorder import simulate_recording

    rec = simulate_recording(
        speeds=(200,), directions=(1,), rows=32, frame_rate=25, seed=1
    )
    write_tiff(tmp_path / "movie.tif", np.zeros((rec.n_frames, 32, 32), np.uint16))
    rec.write_npy(tmp_path / "analog_signals.npy")
    rec.write_stimulus(tmp_path / "stimulus_randperm.csv")
    calls = {}

    def fake(movie, trace, **kw):
        calls.update(kw, n=len(trace))
        return DelayResult(
            delay=3.25,
            uncertainty=0.1,
            center=(15.5, 16.5),
            center_uncertainty=(0.01, 0.02),
            objective=0.1,
            sensitivity=0.3,
            delays=np.zeros(1),
            objectives=np.zeros(1),
            n_evaluations=5,
        )

    monkeypatch.setattr(delay_mod, "find_center_and_delay", fake)
    cfg = Dataset.from_folder(tmp_path).config.replace(
        center_method="bayesian", angle_delay="auto"
    )
    out = run_dataset(cfg, tmp_path / "out")
    assert calls["fit_center"] and calls["n"] == len(rec.angles_per_line)
    assert out["angle_delay"] == 3.25 and out["center_row_col"] == [15.5, 16.5]
    entry = out["pipeline"]["angle_delay"]
    assert entry["source"] == "auto"
    assert entry["search"]["angle_delay_uncertainty"] == 0.1


def test_delay_search_reports_progress_and_cancels():
    from napari_derotation.errors import Cancelled

    s = sim("triangle", 5.0)
    seen = []
    with pytest.raises(Cancelled):
        find_center_and_delay(
            s.movie,
            s.angles_per_line,
            progress=lambda d, t: seen.append((d, t)) or d < 5,
        )
    assert seen[-1][0] == 5 and all(d < t for d, t in seen)
