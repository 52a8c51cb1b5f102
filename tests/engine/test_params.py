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


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(interpolation="quintic"), "interpolation"),
        (dict(plane_tilt=90), r"plane_tilt must be in \[0, 90\)"),
        (dict(plane_tilt=-1), "plane_tilt"),
        (dict(plane_tilt=float("nan")), "plane_tilt must be a finite"),
        (dict(plane_orientation="x"), "plane_orientation"),
        (dict(plane_output="sideways"), "plane_output"),
        (dict(center=(1.0,)), "two numbers"),
        (dict(center=(1.0, math.inf)), "finite"),
        (dict(fill_value="dark"), "fill_value must be a number"),
    ],
)
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
        other,
        derotate(movie, angles, (23.5, 25.0), plane_tilt=10.0, plane_orientation=40.0),
    )


def test_tilt_reaches_every_path(tilted, tmp_path):
    movie, angles, img = tilted
    p = DerotationParams(center=(23.5, 25.0), **TILTED)
    ref = derotate(movie, angles, params=p)
    # the tilt matters: without it the result differs
    assert np.abs(derotate(movie, angles, (23.5, 25.0)) - ref).max() > 1
    np.testing.assert_array_equal(
        np.asarray(derotate_lazy(movie, angles, params=p, chunk_frames=7)), ref
    )
    write_tiff(tmp_path / "m.tif", movie)
    rec = derotate_file(
        tmp_path / "m.tif", angles, tmp_path / "o.tif", params=p, chunk_frames=9
    )
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "o.tif"), ref)
    assert rec["plane"] == {"tilt": 25.0, "orientation": 40.0, "output": "imaging"}
    # the record reads back as the same parameters
    assert DerotationParams.from_record(rec) == p


def test_cli_plane_options_and_params_file(tilted, tmp_path, capsys):
    movie, angles, _ = tilted
    write_tiff(tmp_path / "m.tif", movie)
    save_angles(tmp_path / "a.npy", angles)
    ref = derotate(movie, angles, (23.5, 25.0), **TILTED)
    base = [str(tmp_path / "m.tif"), "--angles", str(tmp_path / "a.npy"), "--quiet"]
    assert (
        main(
            [
                "derotate",
                *base,
                "-o",
                str(tmp_path / "one.tif"),
                "--center",
                "23.5",
                "25",
                "--plane-tilt",
                "25",
                "--plane-orientation",
                "40",
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "one.tif"), ref)
    # what find-center --method ellipse --json prints, as --params
    found = {
        "method": "ellipse",
        "center": [23.5, 25.0],
        "tilt": 25.0,
        "orientation": 40.0,
        "tilt_significant": True,
    }
    (tmp_path / "found.json").write_text(json.dumps(found))
    assert (
        main(
            [
                "derotate",
                *base,
                "-o",
                str(tmp_path / "two.tif"),
                "--params",
                str(tmp_path / "found.json"),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "two.tif"), ref)
    # an output's record, as --params, reproduces the output
    assert (
        main(
            [
                "derotate",
                *base,
                "-o",
                str(tmp_path / "three.tif"),
                "--params",
                str(sidecar_path(tmp_path / "one.tif")),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "three.tif"), ref)
    # a tilt the fit found not significant is not applied
    found["tilt_significant"] = False
    (tmp_path / "weak.json").write_text(json.dumps(found))
    assert (
        main(
            [
                "derotate",
                *base,
                "-o",
                str(tmp_path / "four.tif"),
                "--params",
                str(tmp_path / "weak.json"),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "four.tif"), derotate(movie, angles, (23.5, 25.0))
    )


def test_cli_bad_params_file_is_one_line(tmp_path, capsys):
    sim = simulate_movie((16, 16), 3, trace="constant")
    write_tiff(tmp_path / "m.tif", sim.movie)
    save_angles(tmp_path / "a.npy", sim.angles_per_line)
    (tmp_path / "p.json").write_text('{"plane": {"tilt": 95}}')
    rc = main(
        [
            "derotate",
            str(tmp_path / "m.tif"),
            "--angles",
            str(tmp_path / "a.npy"),
            "-o",
            str(tmp_path / "o.tif"),
            "--params",
            str(tmp_path / "p.json"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "p.json" in err and "plane_tilt" in err
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--workers", "0"], "argument --workers: must be >= 1; got 0"),
        (["--chunk-frames", "0"], "argument --chunk-frames: must be >= 1; got 0"),
    ],
)
def test_cli_whole_numbers(tmp_path, capsys, argv, match):
    sim = simulate_movie((16, 16), 3, trace="constant")
    write_tiff(tmp_path / "m.tif", sim.movie)
    save_angles(tmp_path / "a.npy", sim.angles_per_line)
    rc = main(
        [
            "derotate",
            str(tmp_path / "m.tif"),
            "--angles",
            str(tmp_path / "a.npy"),
            "-o",
            str(tmp_path / "o.tif"),
            *argv,
        ]
    )
    assert rc == 2 and match in capsys.readouterr().err


# -- one rule for keywords beside params -------------------------


def test_a_keyword_given_applies_even_with_the_default_value(tilted):
    movie, angles, _ = tilted
    p = DerotationParams(center=(23.5, 25.0), **TILTED)
    untilted = derotate(movie, angles, (23.5, 25.0))
    np.testing.assert_array_equal(
        derotate(movie, angles, params=p, plane_tilt=0.0), untilted
    )
    np.testing.assert_array_equal(
        np.asarray(derotate_lazy(movie, angles, params=p, plane_tilt=0)), untilted
    )
    assert (
        DerotationParams.build(p, interpolation="bilinear", plane_tilt=0).plane_tilt
        == 0
    )
    # not given (None) keeps the field
    assert DerotationParams.build(p, plane_tilt=None).plane_tilt == 25.0
    with pytest.raises(TypeError, match="unknown derotation parameters"):
        derotate(movie, angles, params=p, plane_tilts=0)


def test_one_fill_value_per_channel():
    p = DerotationParams(fill_value=[80, 340])
    assert p.fill_value == (80.0, 340.0)
    assert p.for_channel(1).fill_value == 340.0
    assert p.to_record()["fill_value"] == [80.0, 340.0]
    assert DerotationParams.from_record(p.to_record()).fill_value == (80.0, 340.0)
    with pytest.raises(DerotationError, match="2 values for a movie of 3"):
        p.resolve((4, 8, 8), np.uint16, channels=3)
    with pytest.raises(DerotationError, match="outside the range"):
        DerotationParams(fill_value=[0, 70000]).resolve(
            (4, 8, 8), np.uint16, channels=2
        )
    movie = np.full((3, 2, 16, 16), 5, np.uint16)  # T C Y X
    movie[:, 1] = 9
    out = derotate(movie, np.linspace(0, 40, 48), axes="TCYX", fill_value=(80, 340))
    corner = out[-1, :, 0, 0]
    assert corner.tolist() == [80, 340]


def test_the_search_corrects_the_plane_it_is_given(tilted):
    from napari_derotation.center.bayesian import ResidualMotion

    movie, angles, _ = tilted
    flat = ResidualMotion(movie, angles)
    plane = ResidualMotion(movie, angles, params=DerotationParams(**TILTED))
    center = (23.5, 25.0)
    # the movie was scanned in a tilted plane: only the search that knows
    # the plane sees it still at the true centre
    assert plane(center) < 0.5 * flat(center)


def test_find_center_takes_the_plane_and_prints_the_uncertainty(
    tilted, tmp_path, capsys
):
    movie, angles, _ = tilted
    write_tiff(tmp_path / "m.tif", movie)
    save_angles(tmp_path / "a.npy", angles)
    base = [
        "find-center",
        str(tmp_path / "m.tif"),
        "--angles",
        str(tmp_path / "a.npy"),
        "--json",
        "--quiet",
        "--search-radius",
        "4",
        "--initial",
        "24",
        "24",
    ]
    assert main(base + ["--plane-tilt", "25", "--plane-orientation", "40"]) == 0
    fit = json.loads(capsys.readouterr().out)
    assert fit["uncertainty"] is not None and len(fit["uncertainty"]) == 2
    assert fit["plane"]["tilt"] == 25.0
    assert math.dist(fit["center"], (23.5, 25.0)) < 0.3
    # what it printed is what derotate --params reads: the plane comes along
    (tmp_path / "fit.json").write_text(json.dumps(fit))
    p = DerotationParams.from_json(tmp_path / "fit.json")
    assert (p.plane_tilt, p.plane_orientation) == (25.0, 40.0)
