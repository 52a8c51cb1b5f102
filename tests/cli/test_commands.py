"""The command line: derotate, simulate, demo; errors are one line, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_derotation import derotate
from napari_derotation.cli import main
from napari_derotation.io import file_sha256
from napari_derotation.simulate import simulate_movie

from helpers import frame_scores, inscribed_disk


@pytest.fixture
def simulated(tmp_path):
    out = tmp_path / "sim"
    assert (
        main(
            [
                "simulate",
                "-o",
                str(out),
                "--frames",
                "12",
                "--size",
                "48",
                "64",
                "--center-offset",
                "3",
                "-5",
                "--trace",
                "real",
            ]
        )
        == 0
    )
    return out


def test_simulate_writes_movie_angles_and_truth(simulated):
    movie = tifffile.imread(simulated / "movie.tif")
    angles = np.load(simulated / "movie_angles.npy")
    truth = json.loads((simulated / "movie.json").read_text())
    assert movie.shape == (12, 48, 64) and movie.dtype == np.uint16
    assert angles.size == 12 * 48 and np.any(angles != 0)
    assert truth["center_row_col"] == [27.0, 27.0]


def test_derotate_writes_tiff_and_json(simulated, capsys):
    src = simulated / "movie.tif"
    before = file_sha256(src)
    out = simulated / "out.tif"
    rc = main(
        [
            "derotate",
            str(src),
            "--angles",
            str(simulated / "movie_angles.npy"),
            "--center",
            "27",
            "27",
            "-o",
            str(out),
            "--chunk-frames",
            "5",
        ]
    )
    assert rc == 0
    err = capsys.readouterr().err
    assert "12/12" in err  # progress on stderr
    result = tifffile.imread(out)
    movie = tifffile.imread(src)
    angles = np.load(simulated / "movie_angles.npy")
    np.testing.assert_array_equal(result, derotate(movie, angles, (27, 27)))
    meta = json.loads(out.with_suffix(".derotation.json").read_text())
    assert meta["center_row_col"] == [27.0, 27.0]
    assert meta["input"]["sha256"] == before == file_sha256(src)
    assert meta["version"]
    assert sorted(p.name for p in simulated.iterdir()) == sorted(
        [
            "movie.tif",
            "movie_angles.npy",
            "movie.json",
            "out.derotation.json",
            "out.tif",
        ]
    )


def test_derotate_accepts_csv_and_txt_angles(simulated, tmp_path):
    angles = np.load(simulated / "movie_angles.npy")
    csv = tmp_path / "a.csv"
    csv.write_text("angle\n" + "\n".join(f"{a:.6f}" for a in angles))
    txt = tmp_path / "a.txt"
    np.savetxt(txt, angles)
    for i, path in enumerate((csv, txt)):
        out = tmp_path / f"o{i}.tif"
        assert (
            main(
                [
                    "derotate",
                    str(simulated / "movie.tif"),
                    "--angles",
                    str(path),
                    "-o",
                    str(out),
                    "--quiet",
                ]
            )
            == 0
        )
        assert tifffile.imread(out).shape == (12, 48, 64)


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ["--angles", "{d}/movie_angles.npy", "-o", "{d}/movie.tif"],
            "refusing to overwrite",
        ),
        (["--angles", "{d}/missing.npy", "-o", "{d}/o.tif"], "not found"),
        (["--angles", "{d}/movie.json", "-o", "{d}/o.tif"], ".npy"),
        (["--angles", "{d}/short.npy", "-o", "{d}/o.tif"], "expected at least 576"),
        (
            [
                "--angles",
                "{d}/movie_angles.npy",
                "--center",
                "100",
                "3",
                "-o",
                "{d}/o.tif",
            ],
            "outside the frame",
        ),
        (["--angles", "{d}/movie_angles.npy", "-o", "{d}/o.png"], ".tif"),
        (
            ["--angles", "{d}/movie_angles.npy", "-o", "{d}/nodir/o.tif"],
            "does not exist",
        ),
        (
            ["--angles", "{d}/movie_angles.npy", "--fill", "-5", "-o", "{d}/o.tif"],
            "range",
        ),
    ],
)
def test_derotate_bad_input_is_one_line_and_exit_2(simulated, capsys, args, words):
    np.save(simulated / "short.npy", np.zeros(10))
    before = sorted(p.name for p in simulated.iterdir())
    argv = ["derotate", str(simulated / "movie.tif")] + [
        a.format(d=simulated) for a in args
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("napari-derotation: error:")
    assert words in err[0]
    assert "Traceback" not in err[0]
    assert sorted(p.name for p in simulated.iterdir()) == before


def test_derotate_rejects_a_file_that_is_not_a_tiff(tmp_path, capsys):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff at all")
    np.save(tmp_path / "a.npy", np.zeros(100))
    assert (
        main(
            [
                "derotate",
                str(bad),
                "--angles",
                str(tmp_path / "a.npy"),
                "-o",
                str(tmp_path / "o.tif"),
            ]
        )
        == 2
    )
    assert "cannot read bad.tif" in capsys.readouterr().err


def test_demo_writes_outputs_and_improves_the_mean_image(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--frames", "60", "--size", "96"]) == 0
    text = capsys.readouterr().out
    for name in (
        "raw.tif",
        "derotated.tif",
        "raw_angles.npy",
        "raw_vs_derotated_mean.png",
    ):
        assert (out / name).is_file()
        assert name in text
    raw = tifffile.imread(out / "raw.tif").astype(float)
    fixed = tifffile.imread(out / "derotated.tif").astype(float)
    center = tuple(json.loads((out / "raw.json").read_text())["center_row_col"])
    disk = inscribed_disk(raw.shape[1:], center)
    ref = raw[0]  # the first frames do not rotate
    assert (
        frame_scores(fixed[-20:].mean(0, keepdims=True), ref, disk)[0]
        > frame_scores(raw[-20:].mean(0, keepdims=True), ref, disk)[0]
    )


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "derotate" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["derotate", "m.tif", "-o", "o.tif"],
        ["derotate", "m.tif", "--angles", "a.npy", "-o", "o.tif", "--center", "1"],
        ["nonsense"],
        ["simulate", "-o", "x", "--frames", "ten"],
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("napari-derotation")
    assert "error:" in err[0]


def test_big_endian_movie_is_derotated_like_native():
    sim = simulate_movie((32, 32), 4, trace="constant", dtype=np.uint16)
    big = sim.movie.astype(">u2")
    np.testing.assert_array_equal(
        derotate(big, sim.angles_per_line), derotate(sim.movie, sim.angles_per_line)
    )
