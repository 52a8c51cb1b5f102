"""napari plugin: manifest, reader, writer and sample data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

import napari_derotation
from napari_derotation._napari import _reader
from napari_derotation._napari._reader import napari_get_reader, read_path
from napari_derotation._napari._sample_data import SAMPLE_OFFSET, make_sample_data
from napari_derotation._napari._writer import write_image
from napari_derotation.io import save_angles

MANIFEST = Path(napari_derotation.__file__).with_name("napari.yaml")


def movie(n=6, rows=16, cols=20, dtype=np.uint16):
    rng = np.random.default_rng(0)
    return rng.integers(0, 4000, (n, rows, cols)).astype(dtype)


def test_manifest_validates_and_imports():
    from npe2 import PluginManifest

    pm = PluginManifest.from_file(MANIFEST)
    pm.validate_imports()
    contrib = pm.contributions
    assert [w.display_name for w in contrib.widgets] == ["Derotation"]
    assert contrib.readers[0].accepts_directories
    assert contrib.writers[0].filename_extensions == [".tif", ".tiff"]
    assert contrib.sample_data[0].display_name == "Rotating cells (synthetic)"
    menu = pm.contributions.menus["napari/layers/register"]
    assert menu[0].command == "napari-derotation.make_widget"


def test_npe2_cli_validates_the_installed_plugin():
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-derotation", "--imports"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_reader_ignores_foreign_files_and_never_raises(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    assert napari_get_reader(str(tmp_path / "a.png")) is None
    assert napari_get_reader([str(tmp_path / "a.png")]) is None
    assert napari_get_reader(str(tmp_path)) is None  # not a dataset
    assert napari_get_reader(12345) is None  # nonsense


def test_reader_round_trip_with_sidecar_angles(tmp_path):
    data = movie()
    path = tmp_path / "rec.tif"
    tifffile.imwrite(path, data)
    angles = np.linspace(0, 90, data.shape[0] * data.shape[1])
    save_angles(tmp_path / "rec_angles.npy", angles)
    reader = napari_get_reader(str(path))
    assert callable(reader)
    [(arr, kwargs, kind)] = reader(str(path))
    assert kind == "image" and kwargs["name"] == "rec"
    assert not isinstance(arr, np.memmap)  # never mapped: see below
    np.testing.assert_array_equal(arr, data)
    d = kwargs["metadata"]["derotation"]
    np.testing.assert_allclose(d["angles_per_line"], angles)
    assert d["angles_source"].endswith("rec_angles.npy")


@pytest.mark.parametrize("name", ["rec_angles.csv", "angles_per_line.npy"])
def test_reader_finds_other_sidecars(tmp_path, name):
    data = movie(n=3, rows=4, cols=4)
    tifffile.imwrite(tmp_path / "rec.tif", data, photometric="minisblack")
    angles = np.arange(12, dtype=float)
    save_angles(tmp_path / name, angles)
    [(_, kwargs, _)] = read_path(str(tmp_path / "rec.tif"))
    np.testing.assert_allclose(
        kwargs["metadata"]["derotation"]["angles_per_line"], angles
    )


def test_reader_large_compressed_file_opens_as_dask(tmp_path, monkeypatch):
    data = movie(n=10)
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, data, compression="zlib")
    monkeypatch.setattr(_reader, "LAZY_BYTES", 10)
    [(arr, _, _)] = read_path(str(path))
    assert type(arr).__module__.startswith("dask")
    np.testing.assert_array_equal(np.asarray(arr[3:5]), data[3:5])


REPLACE = """
import sys
import numpy as np
from napari_derotation._napari import _reader
_reader.LAZY_BYTES = int(sys.argv[2])
[(arr, _, _)] = _reader.read_path(sys.argv[1])
with open(sys.argv[1], "wb") as f:    # what napari's builtin writer does
    f.write(b"II*\\0")
try:
    print(int(np.asarray(arr[-1]).sum()))
except Exception as exc:
    print("read error:", type(exc).__name__)
"""


@pytest.mark.parametrize("lazy_bytes", [2**40, 10])
def test_replacing_the_raw_file_cannot_crash_the_viewer(tmp_path, lazy_bytes):
    """File > Save (builtin) over the movie the reader opened truncates and
    rewrites it: with a memory map, the next frame shown was a bus error
    (SIGBUS) that killed napari; now it is the frame read before, or a read
    error for a movie too large to read at once."""
    import subprocess
    import sys

    path = tmp_path / "raw.tif"
    data = movie(n=40, rows=64, cols=64)
    tifffile.imwrite(path, data)
    res = subprocess.run(
        [sys.executable, "-c", REPLACE, str(path), str(lazy_bytes)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, (res.returncode, res.stderr[-2000:])
    if lazy_bytes > 2**30:
        assert res.stdout.split() == [str(int(data[-1].sum()))]
    else:
        assert res.stdout.startswith("read error")


def test_broken_file_gives_notification_not_traceback(tmp_path, notes):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"not a tiff at all")
    reader = napari_get_reader(str(bad))
    assert reader(str(bad)) == []
    assert any("broken.tif" in m for m in notes)


def test_writer_round_trip_dtype_metadata_and_json(tmp_path):
    for dtype in (np.uint16, np.float32, np.int16):
        data = movie(dtype=dtype)
        angles = np.linspace(0, 45, data.shape[0] * data.shape[1])
        meta = {
            "name": "m",
            "metadata": {
                "derotation": {
                    "angles_per_line": angles,
                    "angles_source": "somewhere.npy",
                    "center": [7.5, 9.0],
                }
            },
        }
        out = tmp_path / f"m_{np.dtype(dtype).name}.tif"
        written = write_image(str(out), data, meta)
        assert str(out) in written
        back = tifffile.imread(out)
        assert back.dtype == dtype
        np.testing.assert_array_equal(back, data)
        rec = json.loads(out.with_suffix(".derotation.json").read_text())
        assert rec["center_row_col"] == [7.5, 9.0]
        assert rec["angles_source"] == "somewhere.npy"
        assert rec["version"] == napari_derotation.__version__
        # the reader finds the angles written beside it again
        [(_, kwargs, _)] = read_path(str(out))
        np.testing.assert_allclose(
            kwargs["metadata"]["derotation"]["angles_per_line"], angles
        )
        assert kwargs["metadata"]["derotation"]["center"] == [7.5, 9.0]


def test_writer_plain_image_writes_only_the_tiff(tmp_path):
    out = tmp_path / "plain"
    written = write_image(str(out), movie(), {"name": "plain", "metadata": {}})
    assert written == [str(tmp_path / "plain.tif")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.tif"]


def test_writer_refuses_to_overwrite_the_source(tmp_path):
    src = tmp_path / "raw.tif"
    tifffile.imwrite(src, movie())
    before = src.read_bytes()
    meta = {"metadata": {"derotation": {"input_path": str(src)}}}
    with pytest.raises(ValueError, match="refusing to overwrite"):
        write_image(str(src), movie() * 0, meta)
    assert src.read_bytes() == before


def test_sample_data_has_angles_and_true_center():
    [(data, kwargs, kind)] = make_sample_data()
    assert kind == "image" and kwargs["name"] == "rotating cells"
    assert data.shape == (120, 256, 256) and data.dtype == np.uint16
    d = kwargs["metadata"]["derotation"]
    assert d["angles_per_line"].shape == (120 * 256,)
    assert np.ptp(d["angles_per_line"]) > 180  # it really rotates
    assert d["true_center"] == [128 + SAMPLE_OFFSET[0], 128 + SAMPLE_OFFSET[1]]


def make_dataset(folder: Path, rows=32):
    from napari_derotation.simulate.recorder import simulate_recording

    rec = simulate_recording(rows=rows, speeds=(400.0,), directions=(1,), pause=0.2)
    folder.mkdir()
    tifffile.imwrite(folder / "movie.tif", movie(n=rec.n_frames, rows=rows, cols=rows))
    rec.write_npy(folder / "signals.npy")
    rec.write_stimulus(folder / "stimulus.csv")
    return rec


def test_reader_dataset_folder_and_its_movie(tmp_path, qtbot):
    rec = make_dataset(tmp_path / "exp")
    folder = tmp_path / "exp"
    for target in (folder, folder / "movie.tif"):
        reader = napari_get_reader(str(target))
        assert callable(reader), target
        [(arr, kwargs, _)] = reader(str(target))
        assert arr.shape == (rec.n_frames, 32, 32)
        d = kwargs["metadata"]["derotation"]
        # the angles come from a worker; the metadata says so meanwhile
        assert d["angles_pending"] == str(folder)
        qtbot.waitUntil(lambda d=d: "angles_pending" not in d, timeout=30_000)
        assert d["angles_per_line"].size >= rec.n_frames * 32
        assert "analog signals" in d["angles_source"]
        assert d["angles_per_frame"].size == rec.n_frames


def test_angle_warnings_without_a_viewer():
    """The widget's model checks angles Qt-free (no viewer needed)."""
    import subprocess
    import sys

    from napari_derotation._napari._model import angle_warnings

    shape = (10, 32, 32)
    ok = np.linspace(0, 90, 320)
    assert angle_warnings(ok, shape) == []
    [more] = angle_warnings(np.r_[ok, ok[:5]], shape)
    assert "325 angles for 320 lines" in more and "first 320" in more
    [short] = angle_warnings(ok[:300], shape)
    assert "cannot be derotated" in short
    [still] = angle_warnings(np.full(320, 7.0), shape)
    assert "span only 0 degrees" in still
    # the model and its metadata helpers import neither Qt nor napari
    code = (
        "import sys; import napari_derotation._napari._model, "
        "napari_derotation._napari._meta; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'napari')))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0 and res.stdout.strip() == "[]", res


def test_os_errors_in_plain_words(tmp_path):
    import errno

    from napari_derotation._napari._workers import os_message

    partial = str(tmp_path / ".big_derotated.tif.i8pkkni2.partial")
    assert (
        os_message(PermissionError(errno.EPERM, "x", partial))
        == f"cannot write to {tmp_path}: permission denied; choose another folder"
    )
    full = os_message(OSError(errno.ENOSPC, "x", partial))
    assert (
        f"no space left on the device holding {tmp_path}; free some space "
        f"or choose another folder"
        in full
        and ".partial" not in full
    )
    assert (
        os_message(PermissionError(errno.EACCES, "x", str(tmp_path)))
        == f"cannot write to {tmp_path}: permission denied; choose another folder"
    )
