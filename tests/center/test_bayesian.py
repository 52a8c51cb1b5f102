"""Bayesian search of the centre of rotation (napari_derotation.center)."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache

import numpy as np
import pytest

from napari_derotation.center import ResidualMotion, find_center_bayesian
from napari_derotation.center._gp import BoxGP, latin_hypercube
from napari_derotation.cli import main
from napari_derotation.errors import Cancelled, DerotationError
from napari_derotation.io import write_tiff
from napari_derotation.simulate import simulate_movie


@cache
def movie(trace="real", n_frames=40, offset=(-7.0, 9.5), noise=10.0, size=256):
    return simulate_movie(
        (size, size), n_frames, trace=trace, center_offset=offset, noise=noise, seed=5
    )


def error(center, truth) -> float:
    return float(np.hypot(center[0] - truth[0], center[1] - truth[1]))


@pytest.mark.parametrize(
    "trace, n_frames, offset, radius",
    [
        ("real", 40, (-7.0, 9.5), 10),  # 11.9 px off the frame centre
        ("incremental", 72, (12.0, 0.0), 14),  # stepwise, 12 px off
    ],
)
def test_bayesian_center_within_half_a_pixel_on_noisy_256_movies(
    trace, n_frames, offset, radius
):
    sim = movie(trace, n_frames, offset)
    res = find_center_bayesian(sim.movie, sim.angles_per_line, search_radius=radius)
    assert error(res.center, sim.center) < 0.5
    assert res.n_evaluations <= 30
    assert res.centers.shape == (res.n_evaluations, 2)
    assert res.objectives.shape == (res.n_evaluations,)
    assert res.objective == pytest.approx(res.objectives.min())
    # the search starts at the frame centre and stays in its box
    assert tuple(res.centers[0]) == (128.0, 128.0)
    assert np.all(np.abs(res.centers - 128.0) <= radius + 1e-9)


def test_residual_motion_grows_with_the_centre_error():
    sim = movie()
    obj = ResidualMotion(sim.movie, sim.angles_per_line)
    r, c = sim.center
    values = [obj((r + d * 0.6, c - d * 0.8)) for d in (0, 0.5, 1, 2, 4, 8)]
    assert values[0] < 0.05
    assert np.all(np.diff(values) > 0)
    # a well-spread subset of frames: every angle bin holds frames
    assert obj.n_bins >= 12 and obj.frames.size <= 64


def test_residual_motion_ignores_brightness_changes_between_frames():
    sim = movie()
    gains = np.random.default_rng(1).uniform(0.5, 1.5, sim.movie.shape[0])
    dimmed = sim.movie * gains[:, None, None].astype(np.float32) + 30
    a = ResidualMotion(sim.movie, sim.angles_per_line)
    b = ResidualMotion(dimmed, sim.angles_per_line)
    good, bad = sim.center, (sim.center[0] + 1.5, sim.center[1])
    assert b(good) == pytest.approx(a(good), abs=0.01)
    assert b(good) < b(bad)


def test_progress_is_done_total_and_the_best_centre_comes_apart():
    sim = movie()
    seen, best = [], []

    def progress(done, total):
        seen.append((done, total))
        return None

    res = find_center_bayesian(
        sim.movie,
        sim.angles_per_line,
        n_calls=12,
        progress=progress,
        on_best=best.append,
    )
    assert [s[0] for s in seen] == list(range(1, res.n_evaluations + 1))
    assert all(s[1] == 12 for s in seen)
    assert len(best) == res.n_evaluations
    assert best[-1] == pytest.approx(res.center)

    calls = []

    def stop(done, total):
        calls.append(done)
        return done < 3

    with pytest.raises(Cancelled):
        find_center_bayesian(sim.movie, sim.angles_per_line, progress=stop)
    assert calls == [1, 2, 3]


def test_search_is_reproducible():
    sim = movie()
    a = find_center_bayesian(sim.movie, sim.angles_per_line, n_calls=10)
    b = find_center_bayesian(sim.movie, sim.angles_per_line, n_calls=10)
    np.testing.assert_array_equal(a.centers, b.centers)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"search_radius": 0}, ["search_radius", "positive"]),
        ({"search_radius": "x"}, ["search_radius"]),
        ({"n_calls": 2}, ["n_calls", ">= 3"]),
        ({"initial": (300, 10)}, ["outside the frame"]),
    ],
)
def test_bad_arguments_are_named(kwargs, words):
    sim = movie()
    with pytest.raises(DerotationError) as info:
        find_center_bayesian(sim.movie, sim.angles_per_line, **kwargs)
    for w in words:
        assert w in str(info.value)


def test_movie_without_rotation_is_refused():
    sim = movie()
    with pytest.raises(DerotationError, match="does not rotate"):
        find_center_bayesian(sim.movie, np.zeros_like(sim.angles_per_line))
    with pytest.raises(DerotationError, match="at least"):
        find_center_bayesian(sim.movie, sim.angles_per_line[:100])


def test_cli_find_center_prints_json(tmp_path, capsys):
    sim = movie("real", 30, (3.0, -4.0), 5.0, 128)
    write_tiff(tmp_path / "m.tif", sim.movie)
    np.save(tmp_path / "a.npy", sim.angles_per_line)
    code = main(
        [
            "find-center",
            str(tmp_path / "m.tif"),
            "--angles",
            str(tmp_path / "a.npy"),
            "--json",
            "--quiet",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "bayesian"
    assert error(out["center"], sim.center) < 0.5
    assert out["n_evaluations"] <= 30
    # plain output: "ROW COL"
    main(
        [
            "find-center",
            str(tmp_path / "m.tif"),
            "--angles",
            str(tmp_path / "a.npy"),
            "--quiet",
            "--calls",
            "20",
        ]
    )
    row, col = (float(v) for v in capsys.readouterr().out.split())
    assert error((row, col), sim.center) < 1


def test_cli_find_center_user_errors_exit_2(tmp_path, capsys):
    sim = movie("real", 30, (3.0, -4.0), 5.0, 128)
    write_tiff(tmp_path / "m.tif", sim.movie)
    np.save(tmp_path / "a.npy", sim.angles_per_line)
    base = [
        "find-center",
        str(tmp_path / "m.tif"),
        "--angles",
        str(tmp_path / "a.npy"),
        "--quiet",
    ]
    assert main(base + ["--method", "ellipse"]) == 2
    assert "--seed" in capsys.readouterr().err
    assert main(base + ["--seed", "10", "10"]) == 2
    assert "only used by --method ellipse" in capsys.readouterr().err
    np.save(tmp_path / "z.npy", np.zeros_like(sim.angles_per_line))
    assert main(base[:3] + [str(tmp_path / "z.npy"), "--quiet"]) == 2
    assert "does not rotate" in capsys.readouterr().err


@pytest.mark.parametrize(
    "trace, n_frames, offset",
    [
        ("real", 40, (-7.0, 9.5)),
        ("incremental", 72, (12.0, 0.0)),
    ],
)
def test_uncertainty_covers_the_true_centre_and_shrinks_with_less_noise(
    trace, n_frames, offset
):
    sds = []
    for noise in (2.0, 30.0):
        sim = movie(trace, n_frames, offset, noise)
        res = find_center_bayesian(sim.movie, sim.angles_per_line, search_radius=14)
        assert res.uncertainty is not None
        sd = np.array(res.uncertainty)
        assert np.all(sd > 0) and np.all(sd < 0.1)
        # the true centre within 3 sigma in row and in col
        assert np.all(np.abs(np.subtract(res.center, sim.center)) < 3 * sd)
        sds.append(sd)
    assert np.all(sds[0] < sds[1])


def test_no_polish_no_uncertainty():
    sim = movie()
    res = find_center_bayesian(sim.movie, sim.angles_per_line, n_calls=12, polish=False)
    assert res.uncertainty is None and res.n_evaluations == 12


def test_jackknife_objectives_are_the_objective_without_each_bin():
    from scipy import ndimage

    sim = movie()
    obj = ResidualMotion(sim.movie, sim.angles_per_line)
    center = (sim.center[0] + 0.7, sim.center[1] - 0.4)
    value, loo = obj.with_jackknife(center)
    assert value == obj(center) and loo.shape == (obj.n_bins,)
    # by brute force: the same normalised bin images, one bin dropped
    img = obj.bin_images(center)
    missing = np.isnan(img[0])
    img[:, missing] = img[:, ~missing].mean(axis=1)[:, None]
    img = ndimage.gaussian_filter(img, (0, 1, 1))
    z = img[:, obj._mask & ~missing].astype(np.float64)
    z = (z - z.mean(axis=1, keepdims=True)) / z.std(axis=1, keepdims=True)
    for b in range(obj.n_bins):
        rest = np.delete(z, b, axis=0)
        expected = np.square(rest - rest.mean(axis=0)).sum() / np.square(rest).sum()
        assert loo[b] == pytest.approx(expected, rel=1e-4)
    assert np.ptp(loo) > 0


def test_find_center_command_imports_no_pipeline_dask_or_optimiser_library():
    code = (
        "import sys\n"
        "from napari_derotation.cli import build_parser\n"
        "from napari_derotation.cli import find_center\n"
        "from napari_derotation.center import find_center_bayesian\n"
        "build_parser()\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('dask', "
        "'napari', 'skopt', 'sklearn', 'matplotlib') or k.startswith("
        "('scipy.signal', 'scipy.stats', 'napari_derotation.pipeline')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_gaussian_process_search_approaches_a_bowl_minimum():
    truth = np.array([3.3, -6.1])

    def f(x):
        d = np.subtract(x, truth)
        return float(1 - np.exp(-(d @ d) / 20))

    gp = BoxGP([(-10, 10), (-10, 10)], random_state=1)
    for u in latin_hypercube(6, np.random.default_rng(0)):
        x = -10 + 20 * u
        gp.tell(x, f(x))
    for _ in range(10):
        x = gp.ask()
        assert np.all(np.abs(x) <= 10)
        gp.tell(x, f(x))
    best = np.array(gp.from_unit(gp.x[int(np.argmin(gp.y))]))
    assert np.hypot(*(best - truth)) < 0.5
    mean, sd = gp.predict(np.array(gp.x))
    np.testing.assert_allclose(mean, gp.y, atol=0.05)
    assert np.all(sd >= 0)


def test_latin_hypercube_has_one_point_per_stripe():
    pts = latin_hypercube(7, np.random.default_rng(3))
    for k in range(2):
        assert sorted(np.floor(pts[:, k] * 7).astype(int)) == list(range(7))


def test_gaussian_process_survives_a_flat_objective_and_repeated_points():
    gp = BoxGP([(0, 4), (0, 4)])
    for x in [(2, 2), (2, 2), (1, 3), (3, 0.5)]:
        gp.tell(x, 1.0)
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        x = gp.ask()
    assert np.all((x >= 0) & (x <= 4))
