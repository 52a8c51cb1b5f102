"""``simulate --signals``: a dataset folder that run, batch and angles take
as it is."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_derotation.cli import main


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim") / "ds"
    assert (
        main(
            [
                "simulate",
                "--signals",
                "-o",
                str(folder),
                "--size",
                "48",
                "40",
                "--speeds",
                "400",
                "300",
                "--noise",
                "2",
            ]
        )
        == 0
    )
    return folder


def wrap(d):
    return (np.asarray(d) + 180.0) % 360.0 - 180.0


def test_dataset_files(dataset):
    assert sorted(p.name for p in dataset.iterdir()) == [
        "analog_signals.npy",
        "config.yml",
        "movie.json",
        "movie.tif",
        "stimulus_randperm.csv",
        "true_angles_per_line.npy",
    ]
    movie = tifffile.imread(dataset / "movie.tif")
    truth = np.load(dataset / "true_angles_per_line.npy")
    assert movie.dtype == np.uint16 and movie.shape[1:] == (48, 40)
    assert truth.shape == (movie.shape[0] * 48,) and np.ptp(truth) > 700
    assert json.loads((dataset / "movie.json").read_text())["center_row_col"] == [
        24.0,
        20.0,
    ]


def test_angles_from_the_config_match_the_truth(dataset, tmp_path, capsys):
    out = tmp_path / "a.npy"
    assert main(["angles", str(dataset / "config.yml"), "-o", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    err = np.abs(wrap(np.load(out) - np.load(dataset / "true_angles_per_line.npy")))
    assert np.percentile(err, 99) < 0.05 and err.max() < 0.5


def test_run_and_batch_take_the_config_as_it_is(dataset, tmp_path, capsys):
    assert main(["run", str(dataset / "config.yml"), "-o", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err
    movie = tifffile.imread(dataset / "movie.tif")
    fixed = tifffile.imread(tmp_path / "run" / "derotated.tif")
    assert fixed.shape == movie.shape
    # the sample stands still after derotation: every frame like the mean
    inner = np.s_[:, 14:34, 10:30]
    spread = lambda m: m[inner].astype(float).std(0).mean()  # noqa: E731
    assert spread(fixed) < spread(movie) / 2
    assert (
        main(
            [
                "batch",
                str(dataset / "config.yml"),
                str(dataset),
                "--output-root",
                str(tmp_path / "batch"),
            ]
        )
        == 0
    )
    assert (tmp_path / "batch" / "ds" / "derotated.tif").is_file()


def test_signals_options_are_checked(tmp_path, capsys):
    for argv in (
        ["--signals", "--frames", "10"],
        ["--signals", "--trace", "sine"],
        ["--speeds", "100"],
        ["--signals", "--speeds", "0"],
    ):
        assert main(["simulate", "-o", str(tmp_path / "x"), *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
    assert not (tmp_path / "x").exists()
