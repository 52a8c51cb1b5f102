"""NWB output: read back with pynwb, accepted by pynwb's validator and the
NWB Inspector (what DANDI runs), the session's metadata from a neuroconv
layout YAML, atomic, and one clear line for every refusal (no subject, bad
metadata, pynwb missing, frame rate unknown, a full disk)."""

from __future__ import annotations

import builtins
import datetime
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pynwb
import pytest
import tifffile
import yaml

from napari_derotation import DerotationError, derotate
from napari_derotation.cli import main
from napari_derotation.engine.files import derotate_file
from napari_derotation.io.nwb_metadata import load_nwb_metadata, nwb_metadata
from napari_derotation.io.outputs import open_writer

from helpers import written_simulation

META = {
    "NWBFile": {
        "session_description": "two-photon imaging of a mouse rotated on a platform",
        "experiment_description": "passive whole-body rotation during "
        "two-photon imaging",
        "session_start_time": "2024-05-02T14:03:11+01:00",
        "experimenter": ["Doe, Jane"],
        "lab": "Rotation Lab",
        "institution": "Example University",
        "keywords": ["two-photon", "rotation", "derotation"],
    },
    "Subject": {
        "subject_id": "m042",
        "species": "Mus musculus",
        "sex": "F",
        "age": "P90D",
        "description": "wild type, head-fixed",
    },
    "Ophys": {
        "Device": [
            {
                "name": "Microscope",
                "description": "resonant two-photon microscope",
                "manufacturer": "Example",
            }
        ],
        "ImagingPlane": [
            {
                "name": "ImagingPlane",
                "description": "layer 2/3",
                "excitation_lambda": 920.0,
                "indicator": "GCaMP6s",
                "location": "RSP",
                "optical_channel": [
                    {
                        "name": "Green",
                        "description": "green PMT",
                        "emission_lambda": 510.0,
                    }
                ],
            }
        ],
        "TwoPhotonSeries": [
            {"name": "TwoPhotonSeries", "description": "the raw movie"}
        ],
    },
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    # more frames than rows or columns: time is the longest axis, as the
    # NWB Inspector expects of a series
    folder = tmp_path_factory.mktemp("nwb")
    s = written_simulation(
        folder, (20, 26), 40, trace="sine", center_offset=(1, -1), seed=4
    )
    s.meta = folder / "meta.yaml"
    s.meta.write_text(yaml.safe_dump(META))
    return s


def _read(path):
    io = pynwb.NWBHDF5IO(str(path), "r")
    return io, io.read()


def _derotate(sim, out, *extra):
    return main(
        [
            "derotate",
            str(sim.path),
            "--angles",
            str(sim.angles_file),
            "--center",
            *map(str, sim.center),
            "-o",
            str(out),
            "--quiet",
            *extra,
        ]
    )


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_cli_nwb_holds_movie_angles_parameters_and_metadata(sim, tmp_path):
    out = tmp_path / "o.nwb"
    assert (
        _derotate(
            sim,
            out,
            "--frame-rate",
            "15",
            "--plane-tilt",
            "5",
            "--nwb-metadata",
            str(sim.meta),
        )
        == 0
    )
    assert pynwb.validate(path=str(out)) == []
    io, nwb = _read(out)
    with io:
        series = nwb.processing["ophys"]["TwoPhotonSeriesDerotated"]
        data = series.data[:]
        assert data.dtype == sim.movie.dtype
        # NWB orders (frames, x, y): x is the column index
        expected = derotate(sim.movie, sim.angles_per_line, sim.center, plane_tilt=5.0)
        np.testing.assert_array_equal(np.swapaxes(data, 1, 2), expected)
        assert series.rate == 15.0
        plane = series.imaging_plane
        assert plane.imaging_rate == 15.0
        assert (plane.indicator, plane.location, plane.excitation_lambda) == (
            "GCaMP6s",
            "RSP",
            920.0,
        )
        assert plane.optical_channel[0].emission_lambda == 510.0
        assert plane.device.model.manufacturer == "Example"
        # the session and the subject from the YAML
        assert nwb.session_start_time == datetime.datetime.fromisoformat(
            "2024-05-02T14:03:11+01:00"
        )
        assert list(nwb.experimenter) == ["Doe, Jane"]
        assert nwb.institution == "Example University"
        assert nwb.lab == "Rotation Lab"
        assert list(nwb.keywords[:]) == ["two-photon", "rotation", "derotation"]
        assert (
            nwb.subject.subject_id,
            nwb.subject.species,
            nwb.subject.sex,
            nwb.subject.age,
        ) == ("m042", "Mus musculus", "F", "P90D")
        # the raw movie: linked relative to the NWB file, which it is
        raw = nwb.acquisition["TwoPhotonSeries"]
        assert raw.format == "external" and raw.description == "the raw movie"
        link = raw.external_file[0]
        assert not Path(link).is_absolute()
        assert (out.parent / link).resolve() == sim.path.resolve()
        angle = nwb.processing["ophys"]["rotation_angle"]
        np.testing.assert_array_equal(
            angle.data[:],
            sim.angles_per_line[: sim.movie.shape[0] * sim.movie.shape[1]],
        )
        assert angle.unit == "degrees" and angle.rate == 15.0 * 20
        table = nwb.processing["ophys"]["derotation_parameters"].to_dataframe()
        assert table["center_row"][0] == sim.center[0]
        assert table["center_col"][0] == sim.center[1]
        assert table["plane_tilt"][0] == 5.0
        record = json.loads(series.comments.split(": ", 1)[1])
        assert record["input"]["sha256"] == table["input_sha256"][0]
        assert set(nwb.processing) == {"ophys"}
    assert sorted(os.listdir(tmp_path)) == ["o.nwb"]


def _inspector() -> str:
    exe = Path(sys.executable).with_name("nwbinspector")
    return str(exe) if exe.exists() else shutil.which("nwbinspector")


def test_nwbinspector_finds_no_critical_and_no_violation(sim, tmp_path):
    """The NWB Inspector, run as a user runs it (its command, every check,
    nothing filtered) and with the DANDI configuration, finds neither a
    CRITICAL issue nor a BEST_PRACTICE_VIOLATION."""
    out = tmp_path / "o.nwb"
    assert (
        _derotate(sim, out, "--frame-rate", "15", "--nwb-metadata", str(sim.meta)) == 0
    )
    report = tmp_path / "report.json"
    run = subprocess.run(
        [_inspector(), str(out), "--json-file-path", str(report)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    found = [
        (m["importance"], m["check_function_name"], m["message"])
        for m in json.loads(report.read_text())["messages"]
    ]
    assert not [
        m
        for m in found
        if m[0] in ("CRITICAL", "ERROR", "PYNWB_VALIDATION", "BEST_PRACTICE_VIOLATION")
    ], found
    from nwbinspector import inspect_nwbfile, load_config

    dandi = [
        (m.importance.name, m.check_function_name, m.message)
        for m in inspect_nwbfile(nwbfile_path=str(out), config=load_config("dandi"))
    ]
    assert not [m for m in dandi if m[0] != "BEST_PRACTICE_SUGGESTION"], dandi
    # what it found on the file written before the metadata: no subject, an
    # absolute raw link, a dict in a table, no experimenter, institution or
    # keywords, a module named 'derotation'; each is gone
    checks = {m[1] for m in found + dandi}
    assert not checks & {
        "check_subject_exists",
        "check_image_series_external_file_relative",
        "check_image_series_external_file_valid",
        "check_table_values_for_dict",
        "check_experimenter_exists",
        "check_institution",
        "check_keywords",
        "check_processing_module_name",
        "check_experiment_description",
        "check_regular_timestamps",
        "check_data_orientation",
    }, checks


def test_no_subject_is_one_line_naming_the_keys(sim, tmp_path, capsys):
    assert _derotate(sim, tmp_path / "o.nwb", "--frame-rate", "10") == 2
    line = _one_line(capsys)
    assert "--nwb-metadata" in line
    assert "Subject: {subject_id, species, sex, age}" in line
    no_subject = tmp_path / "m.yaml"
    no_subject.write_text(yaml.safe_dump({"NWBFile": META["NWBFile"]}))
    assert (
        _derotate(
            sim,
            tmp_path / "o.nwb",
            "--frame-rate",
            "10",
            "--nwb-metadata",
            str(no_subject),
        )
        == 2
    )
    assert "Subject: {subject_id, species, sex, age}" in _one_line(capsys)
    assert sorted(os.listdir(tmp_path)) == ["m.yaml"]
    # the writer itself refuses, for every entry point
    with pytest.raises(DerotationError, match="needs a subject"):
        open_writer(tmp_path / "w.nwb", (3, 4, 5), np.uint16, frame_rate=1.0)


def _with(section, key, value):
    meta = json.loads(json.dumps(META))
    if value is None:
        del meta[section][key]
    else:
        meta[section][key] = value
    return meta


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        (
            _with("NWBFile", "session_start_time", "2 May 2024"),
            "NWBFile.session_start_time: expected an ISO 8601",
        ),
        (
            _with("NWBFile", "session_start_time", "2999-01-01T00:00:00+00:00"),
            "in the future",
        ),
        (_with("Subject", "sex", "female"), "Subject.sex: expected one of M, F"),
        (_with("Subject", "age", "90 days"), "Subject.age: expected an ISO 8601"),
        (_with("Subject", "age", None), "Subject needs age"),
        (_with("Subject", "species", "mouse"), "Subject.species: expected a Latin"),
        (_with("Subject", "subject_id", "a/b"), "must not contain '/'"),
        (_with("Subject", "weight", "25"), "Subject.weight"),
        (
            _with("NWBFile", "experimentor", "Doe, Jane"),
            "NWBFile.experimentor: unknown key",
        ),
        (_with("NWBFile", "keywords", [["nested"]]), "NWBFile.keywords: expected text"),
        (
            {**META, "Ophys": {"ImagingPlane": [{"excitation_lambda": 0.92}]}},
            "excitation_lambda: expected nanometres",
        ),
        (
            {
                **META,
                "Ophys": {
                    "ImagingPlane": [{"optical_channel": [{"emission_lambda": -1}]}]
                },
            },
            "emission_lambda: expected a number > 0",
        ),
    ],
)
def test_bad_metadata_is_one_line_naming_the_key(sim, tmp_path, capsys, meta, words):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(meta))
    assert (
        _derotate(
            sim, tmp_path / "o.nwb", "--frame-rate", "10", "--nwb-metadata", str(path)
        )
        == 2
    )
    line = _one_line(capsys)
    assert words in line and "m.yaml" in line
    assert sorted(os.listdir(tmp_path)) == ["m.yaml"]


@pytest.mark.parametrize(
    "text",
    [
        "NWBFile: {session_description: [unclosed\n",
        "Subject: !!python/object/apply:os.system ['echo no']\n",
        "- just\n- a list\n",
    ],
)
def test_unreadable_metadata_is_one_line(sim, tmp_path, capsys, text):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    assert (
        _derotate(
            sim, tmp_path / "o.nwb", "--frame-rate", "10", "--nwb-metadata", str(path)
        )
        == 2
    )
    assert "m.yaml" in _one_line(capsys)


def test_metadata_only_for_nwb_and_ignored_sections_said(sim, tmp_path, capsys):
    assert _derotate(sim, tmp_path / "o.tif", "--nwb-metadata", str(sim.meta)) == 2
    assert "--nwb-metadata is for a .nwb output" in _one_line(capsys)
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({**META, "Ecephys": {"Device": []}}))
    assert (
        _derotate(
            sim, tmp_path / "o.nwb", "--frame-rate", "10", "--nwb-metadata", str(path)
        )
        == 0
    )
    assert "warning: m.yaml: Ecephys is not used" in capsys.readouterr().err


def test_neuroconv_keyed_layout_is_read_too():
    meta = nwb_metadata(
        {
            "NWBFile": {"session_description": "x"},
            "Subject": META["Subject"],
            "Devices": {"scope_key": {"name": "Bergamo", "description": "2p"}},
            "Ophys": {
                "ImagingPlanes": {
                    "plane_key": {
                        "name": "PlaneV1",
                        "description": "V1",
                        "indicator": "GCaMP8m",
                        "location": "V1",
                        "device_metadata_key": "scope_key",
                        "excitation_lambda": 940.0,
                        "optical_channel": [
                            {
                                "name": "green",
                                "description": "g",
                                "emission_lambda": 520.0,
                            }
                        ],
                    }
                },
                "TwoPhotonSeries": {
                    "series_key": {
                        "name": "TwoPhotonSeriesRaw",
                        "description": "raw",
                        "imaging_plane_metadata_key": "plane_key",
                    }
                },
                "ImageSegmentation": {"name": "ImageSegmentation"},
            },
        }
    )
    assert [d["name"] for d in meta.devices] == ["Bergamo"]
    assert meta.imaging_planes[0]["device"] == "Bergamo"
    assert meta.imaging_planes[0]["indicator"] == "GCaMP8m"
    assert meta.two_photon_series[0] == {
        "name": "TwoPhotonSeriesRaw",
        "description": "raw",
        "imaging_plane": "PlaneV1",
    }
    assert meta.ignored == ("Ophys.ImageSegmentation",)


def test_yaml_timestamps_and_dates_are_taken(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        "NWBFile:\n  session_start_time: 2024-05-02 14:03:11\n"
        "Subject: {subject_id: m1, species: Mus musculus, sex: U,"
        " date_of_birth: 2024-01-31}\n"
    )
    meta = load_nwb_metadata(path)
    start = meta.nwbfile["session_start_time"]
    assert start.tzinfo is not None  # local time, made explicit
    assert start.replace(tzinfo=None) == datetime.datetime(2024, 5, 2, 14, 3, 11)
    assert meta.subject["date_of_birth"].date() == datetime.date(2024, 1, 31)


def _scanimage_movie(path, movie, *, frame_rate, epoch):
    software = (
        "SI.hChannels.channelSave = 1\n"
        "SI.hStackManager.enable = false\n"
        f"SI.hRoiManager.scanFrameRate = {frame_rate}\n"
        "SI.hRoiManager.linePeriod = 6.3e-05\n"
        "SI.VERSION_MAJOR = '2020'"
    )
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        for i, page in enumerate(movie):
            tw.write(
                page,
                software=software,
                metadata=None,
                photometric="minisblack",
                description=f"frameNumbers = {i + 1}\n"
                f"frameTimestamps_sec = {i / frame_rate:.6f}"
                f"\nepoch = {epoch}\n",
            )


def test_session_start_and_frame_rate_from_scanimage(sim, tmp_path):
    movie = tmp_path / "si_00001.tif"
    _scanimage_movie(
        movie, sim.movie, frame_rate=25.0, epoch="[2023  11  7  9  41  12.25]"
    )
    meta = tmp_path / "m.yaml"
    nwbfile = dict(META["NWBFile"])
    del nwbfile["session_start_time"]
    meta.write_text(yaml.safe_dump({**META, "NWBFile": nwbfile}))
    out = tmp_path / "o.nwb"
    assert (
        main(
            [
                "derotate",
                str(movie),
                "--angles",
                str(sim.angles_file),
                "--center",
                *map(str, sim.center),
                "-o",
                str(out),
                "--quiet",
                "--nwb-metadata",
                str(meta),
            ]
        )
        == 0
    )
    io, nwb = _read(out)
    with io:
        assert (
            nwb.session_start_time
            == datetime.datetime(2023, 11, 7, 9, 41, 12, 250000).astimezone()
        )
        series = nwb.processing["ophys"]["TwoPhotonSeriesDerotated"]
        # ScanImage's frame times are regular: a rate, as the Inspector asks
        assert series.rate == pytest.approx(25.0) and series.timestamps is None
        assert series.scan_line_rate == pytest.approx(1 / 6.3e-5)
        assert nwb.acquisition["TwoPhotonSeries"].external_file[0] == "si_00001.tif"


def test_raw_omitted_and_line_timestamps_from_frame_times(sim, tmp_path):
    out = tmp_path / "t.nwb"
    stamps = np.cumsum(np.full(sim.movie.shape[0], 0.1)) + 2.0
    stamps[5:] += 0.01  # a late frame: times, not a rate
    derotate_file(
        sim.path,
        sim.angles_per_line,
        out,
        sim.center,
        output_options={
            "raw": "omit",
            "frame_timestamps": stamps,
            "line_period": 0.004,
            "nwb_metadata": META,
        },
    )
    assert pynwb.validate(path=str(out)) == []
    io, nwb = _read(out)
    with io:
        assert "TwoPhotonSeries" not in nwb.acquisition
        series = nwb.processing["ophys"]["TwoPhotonSeriesDerotated"]
        np.testing.assert_allclose(series.timestamps[:], stamps)
        lines = nwb.processing["ophys"]["rotation_angle"].timestamps[:]
        np.testing.assert_allclose(lines[:3], 2.1 + 0.004 * np.arange(3))
        np.testing.assert_allclose(lines[20], 2.2)  # next frame's start


def test_planes_and_channels_are_series_each(tmp_path):
    movie = np.arange(40 * 2 * 2 * 3 * 5, dtype=np.float32).reshape(40, 2, 2, 3, 5)
    out = tmp_path / "p.nwb"
    meta = json.loads(json.dumps(META))
    meta["Ophys"]["ImagingPlane"][0]["optical_channel"].append(
        {"name": "Red", "description": "red PMT", "emission_lambda": 610.0}
    )
    with open_writer(
        out,
        movie.shape,
        movie.dtype,
        axes="TZCYX",
        frame_rate=2.0,
        angles_per_line=np.zeros(40 * 2 * 3),
        nwb_metadata=meta,
    ) as w:
        w.write(movie[:1])
        w.write(movie[1:])
    assert pynwb.validate(path=str(out)) == []
    io, nwb = _read(out)
    with io:
        s = nwb.processing["ophys"]["TwoPhotonSeriesDerotatedPlane1Channel0"]
        np.testing.assert_array_equal(np.swapaxes(s.data[:], 1, 2), movie[:, 1, 0])
        # one ImagingPlane entry serves every plane, named by plane
        assert s.imaging_plane.name == "ImagingPlane1"
        assert [c.name for c in s.imaging_plane.optical_channel] == ["Green", "Red"]
    with pytest.raises(
        DerotationError, match="optical_channel: 1 entries; the movie has 2 channels"
    ):
        open_writer(
            tmp_path / "q.nwb",
            movie.shape,
            movie.dtype,
            axes="TZCYX",
            frame_rate=2.0,
            nwb_metadata=META,
        ).__enter__()
    assert sorted(os.listdir(tmp_path)) == ["p.nwb"]


def test_imaging_rate_from_metadata_and_checked(tmp_path):
    movie = np.zeros((6, 4, 5), np.uint16)
    meta = json.loads(json.dumps(META))
    meta["Ophys"]["ImagingPlane"][0]["imaging_rate"] = 12.5
    with open_writer(
        tmp_path / "r.nwb", movie.shape, movie.dtype, nwb_metadata=meta
    ) as w:
        w.write(movie)
    io, nwb = _read(tmp_path / "r.nwb")
    with io:
        assert nwb.processing["ophys"]["TwoPhotonSeriesDerotated"].rate == 12.5
    with pytest.raises(
        DerotationError, match="imaging_rate 12.5 Hz disagrees with the movie's 30"
    ):
        open_writer(
            tmp_path / "s.nwb",
            movie.shape,
            movie.dtype,
            frame_rate=30.0,
            nwb_metadata=meta,
        )


def test_failure_leaves_nothing_and_existing_is_refused(tmp_path):
    movie = np.zeros((3, 4, 5), np.uint16)
    with (
        pytest.raises(RuntimeError),
        open_writer(
            tmp_path / "f.nwb",
            movie.shape,
            movie.dtype,
            frame_rate=1.0,
            nwb_metadata=META,
        ) as w,
    ):
        w.write(movie[:1])
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    (tmp_path / "e.nwb").write_bytes(b"")
    with pytest.raises(DerotationError, match="refusing to replace"):
        open_writer(
            tmp_path / "e.nwb",
            movie.shape,
            movie.dtype,
            frame_rate=1.0,
            nwb_metadata=META,
        ).__enter__()


def _file_size_limit(nbytes):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return limit


def test_full_disk_is_one_line_exit_2_no_partial_no_crash(sim, tmp_path):
    """The disk refuses the data when HDF5 flushes it (here: a 2 MB file
    size limit, which HDF5 meets as a full disk): one line, exit 2, no
    file left, and no crash (it segfaulted when h5py's objects were closed
    after the failed flush)."""
    big = tmp_path / "big.tif"
    rng = np.random.default_rng(0)
    tifffile.imwrite(big, rng.integers(0, 60000, (300, 64, 64), np.uint16))
    angles = tmp_path / "a.npy"
    np.save(angles, np.linspace(0, 90, 300 * 64))
    out = tmp_path / "out"
    out.mkdir()
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from napari_derotation.cli import main; "
            "sys.exit(main(sys.argv[1:]))",
            "derotate",
            str(big),
            "--angles",
            str(angles),
            "-o",
            str(out / "o.nwb"),
            "--frame-rate",
            "10",
            "--quiet",
            "--nwb-metadata",
            str(sim.meta),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_file_size_limit(2 << 20),
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2, run.stderr
    assert (
        len(lines) == 1
        and "cannot write" in lines[0]
        and str(out / "o.nwb") in lines[0]
    ), run.stderr
    assert os.listdir(out) == []


def test_disk_full_in_a_write_is_one_line_and_no_file(
    sim, tmp_path, capsys, monkeypatch
):
    """The disk refuses a chunk while it is written (HDF5 raises OSError
    ENOSPC): one line naming the output, exit 2, nothing left."""
    import errno

    import h5py

    real = h5py.Dataset.__setitem__
    calls = []

    def full(self, key, value):
        calls.append(key)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "Can't write data (file write failed)")
        return real(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", full)
    assert (
        _derotate(
            sim,
            tmp_path / "o.nwb",
            "--frame-rate",
            "10",
            "--chunk-frames",
            "8",
            "--nwb-metadata",
            str(sim.meta),
        )
        == 2
    )
    line = _one_line(capsys)
    assert "no space left on the device" in line and "o.nwb" in line
    assert len(calls) == 2 and os.listdir(tmp_path) == []


def test_too_little_free_space_is_refused_before_writing(
    sim, tmp_path, capsys, monkeypatch
):
    from napari_derotation.io import nwb as nwb_module

    monkeypatch.setattr(
        nwb_module.shutil,
        "disk_usage",
        lambda _: shutil._ntuple_diskusage(10**9, 10**9, 1000),
    )
    assert (
        _derotate(
            sim,
            tmp_path / "o.nwb",
            "--frame-rate",
            "10",
            "--nwb-metadata",
            str(sim.meta),
        )
        == 2
    )
    line = _one_line(capsys)
    assert "needs about" in line and "0.0 MB are free" in line
    assert os.listdir(tmp_path) == []


def test_no_frame_rate_is_one_clear_line(sim, tmp_path, capsys):
    assert _derotate(sim, tmp_path / "o.nwb", "--nwb-metadata", str(sim.meta)) == 2
    assert "--frame-rate" in _one_line(capsys)
    assert os.listdir(tmp_path) == []


def test_missing_pynwb_names_the_extra(sim, tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_pynwb(name, *args, **kwargs):
        if name == "pynwb" or name.startswith("pynwb."):
            raise ImportError("No module named 'pynwb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pynwb)
    assert (
        _derotate(
            sim,
            tmp_path / "o.nwb",
            "--frame-rate",
            "10",
            "--nwb-metadata",
            str(sim.meta),
        )
        == 2
    )
    assert "pip install 'napari-derotation[nwb]'" in _one_line(capsys)
    assert os.listdir(tmp_path) == []


def test_pipeline_takes_the_metadata_from_its_config(tmp_path):
    from test_run import CENTER, SIZE, make_dataset

    from napari_derotation.pipeline import Dataset, run_dataset
    from napari_derotation.simulate.recorder import simulate_recording

    rec = simulate_recording(
        speeds=(200,), directions=(1,), rows=SIZE, frame_rate=25, seed=1
    )
    make_dataset(tmp_path / "d", rec)
    cfg = Dataset.from_folder(tmp_path / "d").config.replace(
        center=CENTER, output_format="nwb", frame_rate=25.0
    )
    with pytest.raises(DerotationError, match="needs a subject"):
        run_dataset(Dataset(cfg), tmp_path / "none")
    assert not (tmp_path / "none").exists()
    (tmp_path / "d" / "meta.yaml").write_text(yaml.safe_dump(META))
    cfg = cfg.replace(nwb_metadata=tmp_path / "d" / "meta.yaml")
    assert cfg.to_dict()["paths_write"]["nwb_metadata"].endswith("meta.yaml")
    run_dataset(Dataset(cfg), tmp_path / "nwb")
    io, nwb = _read(tmp_path / "nwb" / "derotated.nwb")
    with io:
        assert nwb.subject.subject_id == "m042"
