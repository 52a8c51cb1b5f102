"""NWB output: read back with pynwb, accepted by pynwb's validator, atomic,
and one clear line when pynwb is missing or the frame rate unknown."""

from __future__ import annotations

import builtins
import json
import os

import numpy as np
import pynwb
import pytest

from napari_derotation import DerotationError, derotate
from napari_derotation.cli import main
from napari_derotation.engine.files import derotate_file
from napari_derotation.io.outputs import open_writer

from helpers import written_simulation


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return written_simulation(tmp_path_factory.mktemp("nwb"),
                              (20, 26), 9, trace="sine",
                              center_offset=(1, -1), seed=4)


def _read(path):
    io = pynwb.NWBHDF5IO(str(path), "r")
    return io, io.read()


def test_cli_nwb_holds_movie_angles_and_parameters_and_validates(sim,
                                                                tmp_path):
    out = tmp_path / "o.nwb"
    assert main(["derotate", str(sim.path), "--angles", str(sim.angles_file),
                 "--center", *map(str, sim.center), "-o", str(out),
                 "--frame-rate", "15", "--quiet", "--plane-tilt", "5"]) == 0
    assert pynwb.validate(path=str(out)) == []
    io, nwb = _read(out)
    with io:
        series = nwb.processing["ophys"]["TwoPhotonSeriesDerotated"]
        data = series.data[:]
        assert data.dtype == sim.movie.dtype
        # NWB orders (frames, x, y): x is the column index
        expected = derotate(sim.movie, sim.angles_per_line, sim.center,
                            plane_tilt=5.0)
        np.testing.assert_array_equal(np.swapaxes(data, 1, 2), expected)
        assert series.rate == 15.0
        assert series.imaging_plane.imaging_rate == 15.0
        raw = nwb.acquisition["TwoPhotonSeries"]
        assert raw.format == "external"
        assert raw.external_file[0] == str(sim.path.resolve())
        angle = nwb.processing["derotation"]["rotation_angle"]
        np.testing.assert_array_equal(angle.data[:], sim.angles_per_line[
            : sim.movie.shape[0] * sim.movie.shape[1]])
        assert angle.unit == "degrees" and angle.rate == 15.0 * 20
        table = nwb.processing["derotation"]["parameters"].to_dataframe()
        assert table["center_row"][0] == sim.center[0]
        assert table["center_col"][0] == sim.center[1]
        assert table["plane_tilt"][0] == 5.0
        assert json.loads(table["record"][0])["input"]["sha256"]
    assert sorted(os.listdir(tmp_path)) == ["o.nwb"]


def test_raw_omitted_and_line_timestamps_from_frame_times(sim, tmp_path):
    out = tmp_path / "t.nwb"
    stamps = np.cumsum(np.full(sim.movie.shape[0], 0.1)) + 2.0
    derotate_file(sim.path, sim.angles_per_line, out, sim.center,
                  output_options={"raw": "omit", "frame_timestamps": stamps,
                                  "line_period": 0.004})
    assert pynwb.validate(path=str(out)) == []
    io, nwb = _read(out)
    with io:
        assert "TwoPhotonSeries" not in nwb.acquisition
        series = nwb.processing["ophys"]["TwoPhotonSeriesDerotated"]
        np.testing.assert_allclose(series.timestamps[:], stamps)
        lines = nwb.processing["derotation"]["rotation_angle"].timestamps[:]
        np.testing.assert_allclose(lines[:3], 2.1 + 0.004 * np.arange(3))
        np.testing.assert_allclose(lines[20], 2.2)        # next frame's start


def test_planes_and_channels_are_series_each(tmp_path):
    movie = np.arange(4 * 2 * 2 * 3 * 5, dtype=np.float32).reshape(4, 2, 2, 3, 5)
    out = tmp_path / "p.nwb"
    with open_writer(out, movie.shape, movie.dtype, axes="TZCYX",
                     frame_rate=2.0, angles_per_line=np.zeros(4 * 2 * 3)) as w:
        w.write(movie[:1])
        w.write(movie[1:])
    assert pynwb.validate(path=str(out)) == []
    io, nwb = _read(out)
    with io:
        s = nwb.processing["ophys"]["TwoPhotonSeriesDerotatedPlane1Channel0"]
        np.testing.assert_array_equal(np.swapaxes(s.data[:], 1, 2),
                                      movie[:, 1, 0])
        assert s.imaging_plane.name == "ImagingPlane1"


def test_failure_leaves_nothing_and_existing_is_refused(tmp_path):
    movie = np.zeros((3, 4, 5), np.uint16)
    with pytest.raises(RuntimeError), \
            open_writer(tmp_path / "f.nwb", movie.shape, movie.dtype,
                        frame_rate=1.0) as w:
        w.write(movie[:1])
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    (tmp_path / "e.nwb").write_bytes(b"")
    with pytest.raises(DerotationError, match="refusing to replace"):
        open_writer(tmp_path / "e.nwb", movie.shape, movie.dtype,
                    frame_rate=1.0).__enter__()


def test_no_frame_rate_is_one_clear_line(sim, tmp_path, capsys):
    assert main(["derotate", str(sim.path), "--angles", str(sim.angles_file),
                 "-o", str(tmp_path / "o.nwb"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--frame-rate" in err[0]
    assert os.listdir(tmp_path) == []


def test_missing_pynwb_names_the_extra(sim, tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_pynwb(name, *args, **kwargs):
        if name == "pynwb" or name.startswith("pynwb."):
            raise ImportError("No module named 'pynwb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pynwb)
    assert main(["derotate", str(sim.path), "--angles", str(sim.angles_file),
                 "-o", str(tmp_path / "o.nwb"), "--frame-rate", "10"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'napari-derotation[nwb]'" in err[0]
    assert os.listdir(tmp_path) == []
