"""Channels, planes and sequences from the CLI and the run/batch configs:
one-line errors with exit 2, nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_derotation import derotate
from napari_derotation.cli import main
from napari_derotation.pipeline import Dataset, run_dataset
from napari_derotation.pipeline.config import Config
from napari_derotation.simulate import make_texture, rotate_by_line
from napari_derotation.simulate.recorder import simulate_recording

from helpers import two_channel_movie, write_scanimage

CENTER = (12.0, 10.0)


def _run(capsys, *argv):
    rc = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("napari-derotation")


def test_two_channel_tiff_from_the_issue(tmp_path, capsys):
    m5, angles = two_channel_movie(t=8, z=1, c=2)
    tifffile.imwrite(
        tmp_path / "two_ch.tif", m5[:, 0], imagej=True, metadata={"axes": "TCYX"}
    )
    np.save(tmp_path / "two_ch_angles.npy", angles)
    rc, out, err = _run(
        capsys,
        "derotate",
        tmp_path / "two_ch.tif",
        "--angles",
        tmp_path / "two_ch_angles.npy",
        "-o",
        tmp_path / "out.tif",
        "--center",
        *CENTER,
        "--quiet",
    )
    assert rc == 0, err
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.series[0].axes == "TCYX"
        got = tif.asarray()
    np.testing.assert_array_equal(
        got, derotate(m5[:, 0], angles, center=CENTER, axes="TCYX")
    )


def test_sequence_arguments_and_split(tmp_path, capsys):
    m5, angles = two_channel_movie(t=6, z=2, c=2)
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(3):
        write_scanimage(
            raw / f"rec_{i + 1:05d}.tif", m5[2 * i : 2 * i + 2], frame_rate=4.0
        )
    np.save(tmp_path / "a.npy", angles)
    files = sorted(raw.iterdir())
    rc, _, err = _run(
        capsys,
        "derotate",
        *files[::-1],
        "--angles",
        tmp_path / "a.npy",
        "-o",
        tmp_path / "split",
        "--split",
        "--center",
        *CENTER,
        "--quiet",
    )
    assert rc == 0, err
    info = json.loads((tmp_path / "split" / "derotation_split.json").read_text())
    assert (info["nplanes"], info["nchannels"], info["fs"]) == (2, 2, 4.0)
    ref = derotate(m5, angles, center=CENTER, axes="TZCYX")
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "split" / "plane1" / "chan0.tif"), ref[:, 1, 0]
    )
    # a second split into the same folder is refused unless asked
    before = (tmp_path / "split" / "plane1" / "chan0.tif").stat().st_mtime_ns
    rc, _, err = _run(
        capsys,
        "derotate",
        raw,
        "--angles",
        tmp_path / "a.npy",
        "-o",
        tmp_path / "split",
        "--split",
        "--quiet",
    )
    assert rc == 2 and "--overwrite" in err and "chan0.tif" in err
    assert (tmp_path / "split" / "plane1" / "chan0.tif").stat().st_mtime_ns == before
    rc, _, err = _run(
        capsys,
        "derotate",
        raw,
        "--angles",
        tmp_path / "a.npy",
        "-o",
        tmp_path / "split",
        "--split",
        "--quiet",
        "--center",
        *CENTER,
        "--overwrite",
    )
    assert rc == 0, err
    rc, _, err = _run(
        capsys,
        "derotate",
        raw,
        "--angles",
        tmp_path / "a.npy",
        "-o",
        tmp_path / "all.tif",
        "--center",
        *CENTER,
        "--quiet",
    )
    assert rc == 0, err
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "all.tif"), ref)


@pytest.mark.parametrize("case", ["channels", "frame_size", "dtype", "workers"])
def test_bad_layouts_one_line_exit_2_nothing_written(tmp_path, capsys, case):
    m5, angles = two_channel_movie(t=3, z=1, c=2)
    np.save(tmp_path / "a.npy", angles)
    flat = m5.reshape(-1, *m5.shape[3:])
    args = ["--channels", "4"] if case == "channels" else []
    if case in ("channels", "workers"):
        tifffile.imwrite(tmp_path / "m_1.tif", flat)
        if case == "workers":
            tifffile.imwrite(tmp_path / "m_2.tif", flat)
            args = ["--workers", "1"]
    else:
        tifffile.imwrite(tmp_path / "m_1.tif", flat)
        other = flat[:, :, :-1] if case == "frame_size" else flat.astype(np.float32)
        tifffile.imwrite(tmp_path / "m_2.tif", np.ascontiguousarray(other))
    before = sorted(p.name for p in tmp_path.iterdir())
    movie = (
        [tmp_path / "m_1.tif"] if case == "channels" else [str(tmp_path / "m_*.tif")]
    )
    rc, _, err = _run(
        capsys,
        "derotate",
        *movie,
        "--angles",
        tmp_path / "a.npy",
        "-o",
        tmp_path / "o.tif",
        *args,
        "--quiet",
    )
    assert rc == 2 and _one_line(err), err
    expect = {
        "channels": "6 pages do not divide into 1 plane(s) x 4 channel(s)",
        "frame_size": "same frame size",
        "dtype": "same dtype",
        "workers": "--scheduler/--workers take one",
    }[case]
    assert expect in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_find_center_on_a_channel_and_plane(tmp_path, capsys):
    m5, angles = two_channel_movie(t=10, z=2, c=2, rows=32, cols=32)
    tifffile.imwrite(tmp_path / "m.tif", m5, imagej=True, metadata={"axes": "TZCYX"})
    np.save(tmp_path / "a.npy", angles)
    rc, out, err = _run(
        capsys,
        "find-center",
        tmp_path / "m.tif",
        "--angles",
        tmp_path / "a.npy",
        "--channel",
        "1",
        "--plane",
        "1",
        "--calls",
        "12",
        "--search-radius",
        "3",
        "--json",
        "--quiet",
    )
    assert rc == 0, err
    res = json.loads(out)
    assert (res["channel"], res["plane"]) == (1, 1)
    assert np.hypot(res["center"][0] - 16, res["center"][1] - 16) < 1.5
    rc, _, err = _run(
        capsys,
        "find-center",
        tmp_path / "m.tif",
        "--angles",
        tmp_path / "a.npy",
        "--plane",
        "2",
        "--quiet",
    )
    assert rc == 2 and "--plane 2 is not in the movie" in err


def test_config_movie_keys():
    cfg = Config.from_dict(
        {"movie": {"channels": 2, "planes": 3, "structural_channel": 1}}
    )
    assert (cfg.movie_channels, cfg.movie_planes, cfg.structural_channel) == (2, 3, 1)
    assert not cfg.warnings
    assert cfg.to_dict()["movie"]["planes"] == 3
    with pytest.raises(Exception, match="movie.planes: expected a whole number >= 1"):
        Config.from_dict({"movie": {"planes": 0}})


def test_run_dataset_two_channels_two_planes(tmp_path):
    """The signals' frame clock ticks once per plane: T * Z scanned frames;
    every channel derotated with the same lines' angles."""
    size, z = 32, 2
    rec = simulate_recording(
        speeds=(250,), directions=(1,), rows=size, frame_rate=30, seed=4
    )
    n = rec.n_frames - rec.n_frames % z
    img = make_texture((size, size), seed=3, low=100, high=3000)
    chans = [
        rotate_by_line(
            im, rec.angles_per_line[: n * size], CENTER, n_frames=n, fill_value=100.0
        )
        for im in (img, img[::-1].copy())
    ]
    m5 = np.stack(
        [np.rint(c).astype(np.uint16).reshape(n // z, z, size, size) for c in chans], 2
    )
    tifffile.imwrite(tmp_path / "movie.tif", m5.reshape(-1, size, size))
    rec.write_npy(tmp_path / "analog_signals.npy")
    rec.write_stimulus(tmp_path / "stimulus_randperm.csv")
    ds = Dataset.from_folder(tmp_path)
    cfg = ds.config.replace(
        center=CENTER, movie_channels=2, movie_planes=z, line_count_mismatch="trim"
    )
    out = run_dataset(Dataset(cfg), tmp_path / "out", plots=False)
    assert out["input"]["shape"] == list(m5.shape)
    got = tifffile.imread(tmp_path / "out" / "derotated.tif")
    assert got.shape == m5.shape
    lines = np.load(tmp_path / "out" / "angles_per_line.npy")
    assert out["angles"]["used"] == n * size
    ref = derotate(m5, lines, center=CENTER, fill_value=out["fill_value"], axes="TZCYX")
    np.testing.assert_array_equal(got, ref)


def test_unnamed_4d_array_asks_for_the_layout(tmp_path, capsys):
    """The issue's (20, 2, 64, 64) array saved with tifffile's shape only:
    ambiguous without --channels/--planes, derotated with them."""
    m5, angles = two_channel_movie(t=20, z=1, c=2, rows=64, cols=64)
    tifffile.imwrite(tmp_path / "two_ch.tif", m5[:, 0])
    np.save(tmp_path / "two_ch_angles.npy", angles)
    argv = [
        "derotate",
        tmp_path / "two_ch.tif",
        "--angles",
        tmp_path / "two_ch_angles.npy",
        "-o",
        tmp_path / "out.tif",
        "--quiet",
    ]
    rc, _, err = _run(capsys, *argv)
    assert rc == 2 and _one_line(err)
    assert "(20, 2, 64, 64) does not say which axis" in err
    assert not (tmp_path / "out.tif").exists()
    rc, _, err = _run(capsys, *argv, "--channels", "2")
    assert rc == 0, err
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.series[0].axes == "TCYX"
        np.testing.assert_array_equal(
            tif.asarray(), derotate(m5[:, 0], angles, axes="TCYX")
        )
