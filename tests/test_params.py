"""One set of derotation parameters, from every entry point to every output."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tifffile

from napari_derotation import DerotationParams, derotate
from napari_derotation.cli import main
from napari_derotation.engine.files import derotate_file
from napari_derotation.engine.lazy import derotate_lazy
from napari_derotation.errors import DerotationError
from napari_derotation.io import save_angles, sidecar_path, write_tiff
from napari_derotation.simulate import make_cells, rotate_by_line, simulate_movie

TILTED = dict(plane_tilt=25.0, plane_orientation=40.0)


@pytest.fixture(scope="module")
def tilted():
    """A movie scanned while the sample turned in a tilted plane."""
    img = make_cells((48, 52), n_cells=12, seed=4).astype(np.float32)
    angles = np.linspace(0, 300, 40 * 48)
    movie = rotate_by_line(img, angles, (23.5, 25.0), n_frames=40, **TILTED)
    return movie, angles, img


@pytest.mark.parametrize("bad, match", [
    (dict(interpolation="quintic"), "interpolation"),
    (dict(plane_tilt=90), r"plane_tilt must be in \[0, 90\)"),
    (dict(plane_tilt=-1), "plane_tilt"),
    (dict(plane_tilt=float("nan")), "plane_tilt must be a finite"),
    (dict(plane_orientation="x"), "plane_orientation"),
    (dict(plane_output="sideways"), "plane_output"),
    (dict(center=(1.0,)), "two numbers"),
    (dict(center=(1.0, math.inf)), "finite"),
    (dict(fill_value="dark"), "fill_value must be a number"),
])
def test_bad_parameters_are_refused_when_made(bad, match):
    with pytest.raises(DerotationError, match=match):
        DerotationParams(**bad)


def test_parameters_resolve_against_the_movie():
    p = DerotationParams(fill_value=-1)
    with pytest.raises(DerotationError, match="outside the range"):
        p.resolve((3, 10, 12), np.uint16)
    assert DerotationParams().resolve((3, 10, 12), np.uint16).center == (5.0, 6.0)
    with pytest.raises(DerotationError, match="outside the frame"):
        DerotationParams(center=(10, 3)).resolve((3, 10, 12), np.float32)


def test_params_equal_keywords_and_keywords_override(tilted):
    movie, angles, _ = tilted
    p = DerotationParams(center=(23.5, 25.0), **TILTED)
    by_keywords = derotate(movie, angles, (23.5, 25.0), **TILTED)
    np.testing.assert_array_equal(derotate(movie, angles, params=p), by_keywords)
    # a keyword given with params replaces that field only
    other = derotate(movie, angles, params=p, plane_tilt=10.0)
    np.testing.assert_array_equal(
        other, derotate(movie, angles, (23.5, 25.0), plane_tilt=10.0,
                        plane_orientation=40.0))


def test_tilt_reaches_every_path(tilted, tmp_path):
    movie, angles, img = tilted
    p = DerotationParams(center=(23.5, 25.0), **TILTED)
    ref = derotate(movie, angles, params=p)
    # the tilt matters: without it the result differs
    assert np.abs(derotate(movie, angles, (23.5, 25.0)) - ref).max() > 1
    np.testing.assert_array_equal(
        np.asarray(derotate_lazy(movie, angles, params=p, chunk_frames=7)), ref)
    write_tiff(tmp_path / "m.tif", movie)
    rec = derotate_file(tmp_path / "m.tif", angles, tmp_path / "o.tif",
                        params=p, chunk_frames=9)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "o.tif"), ref)
    assert rec["plane"] == {"tilt": 25.0, "orientation": 40.0,
                            "output": "imaging"}
    # the record reads back as the same parameters
    assert DerotationParams.from_record(rec) == p


def test_cli_plane_options_and_params_file(tilted, tmp_path, capsys):
    movie, angles, _ = tilted
    write_tiff(tmp_path / "m.tif", movie)
    save_angles(tmp_path / "a.npy", angles)
    ref = derotate(movie, angles, (23.5, 25.0), **TILTED)
    base = [str(tmp_path / "m.tif"), "--angles", str(tmp_path / "a.npy"),
            "--quiet"]
    assert main(["derotate", *base, "-o", str(tmp_path / "one.tif"),
                 "--center", "23.5", "25", "--plane-tilt", "25",
                 "--plane-orientation", "40"]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "one.tif"), ref)
    # what find-center --method ellipse --json prints, as --params
    found = {"method": "ellipse", "center": [23.5, 25.0], "tilt": 25.0,
             "orientation": 40.0, "tilt_significant": True}
    (tmp_path / "found.json").write_text(json.dumps(found))
    assert main(["derotate", *base, "-o", str(tmp_path / "two.tif"),
                 "--params", str(tmp_path / "found.json")]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "two.tif"), ref)
    # an output's record, as --params, reproduces the output
    assert main(["derotate", *base, "-o", str(tmp_path / "three.tif"),
                 "--params", str(sidecar_path(tmp_path / "one.tif"))]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "three.tif"), ref)
    # a tilt the fit found not significant is not applied
    found["tilt_significant"] = False
    (tmp_path / "weak.json").write_text(json.dumps(found))
    assert main(["derotate", *base, "-o", str(tmp_path / "four.tif"),
                 "--params", str(tmp_path / "weak.json")]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "four.tif"),
                                  derotate(movie, angles, (23.5, 25.0)))


def test_cli_bad_params_file_is_one_line(tmp_path, capsys):
    sim = simulate_movie((16, 16), 3, trace="constant")
    write_tiff(tmp_path / "m.tif", sim.movie)
    save_angles(tmp_path / "a.npy", sim.angles_per_line)
    (tmp_path / "p.json").write_text('{"plane": {"tilt": 95}}')
    rc = main(["derotate", str(tmp_path / "m.tif"), "--angles",
               str(tmp_path / "a.npy"), "-o", str(tmp_path / "o.tif"),
               "--params", str(tmp_path / "p.json")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "p.json" in err and "plane_tilt" in err
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("argv, match", [
    (["--workers", "0"], "--workers must be a whole number >= 1"),
    (["--chunk-frames", "0"], "--chunk-frames must be a whole number >= 1"),
])
def test_cli_whole_numbers(tmp_path, capsys, argv, match):
    sim = simulate_movie((16, 16), 3, trace="constant")
    write_tiff(tmp_path / "m.tif", sim.movie)
    save_angles(tmp_path / "a.npy", sim.angles_per_line)
    rc = main(["derotate", str(tmp_path / "m.tif"), "--angles",
               str(tmp_path / "a.npy"), "-o", str(tmp_path / "o.tif"), *argv])
    assert rc == 2 and match in capsys.readouterr().err
