"""Bad inputs at every entry point: a clear error, the input untouched, no
partial output.

Entry points: the Python API (``derotate``, ``derotate_file``,
``derotate_lazy``, ``read_movie``, ``open_movie``), the command line
(``napari-derotation derotate``: exit code 2 and one line on stderr) and the
napari reader (no layer, one notification).
"""

from __future__ import annotations

import errno
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_derotation import Cancelled, DerotationError, derotate
from napari_derotation.cli import main
from napari_derotation.engine.files import derotate_file
from napari_derotation.engine.lazy import derotate_lazy
from napari_derotation.io import file_sha256, open_movie, read_movie

FRAMES, ROWS, COLS = 6, 16, 20


def _movie():
    return (
        (np.arange(FRAMES * ROWS * COLS) % 900)
        .astype(np.uint16)
        .reshape(FRAMES, ROWS, COLS)
    )


def _angles(n=FRAMES * ROWS):
    return np.linspace(0, 90, n)


def _tiff_bytes(data, **kw) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = f"{d}/x.tif"
        tifffile.imwrite(path, data, **kw)
        return open(path, "rb").read()


def _bad_tiffs() -> dict[str, bytes]:
    good = _tiff_bytes(_movie())
    packed = _tiff_bytes(_movie(), compression="zlib")
    return {
        "empty": b"",
        "not_a_tiff": b"frame,angle\n1,2\n",
        "header_only": good[:8],
        "truncated": good[: len(good) // 2],
        "truncated_compressed": packed[: len(packed) // 2],
        "bad_first_ifd": good[:4] + struct.pack("<I", 10**8) + good[8:],
        "garbage": b"II*\x00" + bytes(range(256)) * 8,
        # a 4-D movie of planes (TZYX) is a movie now; an axis
        # that is not time, plane or channel is not
        "four_d": _tiff_bytes(
            np.zeros((3, 2, ROWS, COLS), np.uint16), metadata={"axes": "TEYX"}
        ),
        "rgb": _tiff_bytes(np.zeros((3, ROWS, COLS, 3), np.uint8), photometric="rgb"),
    }


BAD_TIFFS = _bad_tiffs()


class Folder(type(Path())):
    """A test folder that remembers its files' checksums."""

    def snapshot(self) -> dict:
        return {p.name: file_sha256(p) for p in self.iterdir()}

    def unchanged(self) -> bool:
        """Inputs untouched and nothing else left behind."""
        return self.snapshot() == self.before


@pytest.fixture
def folder(tmp_path):
    """A folder with a good movie and its angles."""
    tifffile.imwrite(tmp_path / "movie.tif", _movie())
    np.save(tmp_path / "angles.npy", _angles())
    f = Folder(tmp_path)
    f.before = f.snapshot()
    return f


def _cli(capsys, *argv):
    rc = main(["derotate", *map(str, argv), "--quiet"])
    err = capsys.readouterr().err
    return rc, err


def _one_line(err: str) -> bool:
    # "napari-derotation: error:" or, for an option argparse checks,
    # "napari-derotation derotate: error: argument --x: ..."
    return err.count("\n") == 1 and err.startswith("napari-derotation")


# --- corrupt, truncated, empty and wrongly shaped TIFFs --------------------


@pytest.mark.parametrize("name", sorted(BAD_TIFFS))
def test_bad_tiff_api(folder, name):
    bad = folder / f"{name}.tif"
    bad.write_bytes(BAD_TIFFS[name])
    digest = file_sha256(bad)
    for call in (
        lambda: read_movie(bad),
        lambda: read_movie(bad, mmap=False),
        lambda: open_movie(bad).read(0, FRAMES),
        lambda: derotate_file(bad, _angles(), folder / "out.tif"),
    ):
        with pytest.raises(DerotationError, match=bad.name):
            call()
    assert file_sha256(bad) == digest
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*folder.before, bad.name]
    )


@pytest.mark.parametrize("name", sorted(BAD_TIFFS))
def test_bad_tiff_cli(folder, capsys, name):
    bad = folder / f"{name}.tif"
    bad.write_bytes(BAD_TIFFS[name])
    digest = file_sha256(bad)
    rc, err = _cli(
        capsys, bad, "--angles", folder / "angles.npy", "-o", folder / "out.tif"
    )
    assert rc == 2 and _one_line(err), err
    assert bad.name in err
    assert file_sha256(bad) == digest
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*folder.before, bad.name]
    )


@pytest.mark.parametrize("name", sorted(BAD_TIFFS))
def test_bad_tiff_reader(folder, monkeypatch, name):
    from napari_derotation._napari import _reader

    bad = folder / f"{name}.tif"
    bad.write_bytes(BAD_TIFFS[name])
    digest = file_sha256(bad)
    notes = []
    monkeypatch.setattr(_reader, "_notify_error", notes.append)
    monkeypatch.setattr(_reader, "_notify_warning", notes.append)
    read = _reader.napari_get_reader(str(bad))
    assert read is not None  # a .tif: the reader tries
    assert read(str(bad)) == []  # ... and gives no layer
    assert len(notes) == 1 and bad.name in notes[0], notes
    assert file_sha256(bad) == digest


def test_reader_refuses_what_it_cannot_read(folder):
    from napari_derotation._napari import _reader

    (folder / "notes.txt").write_text("x")
    assert _reader.napari_get_reader(str(folder / "notes.txt")) is None
    assert _reader.napari_get_reader(str(folder / "missing.png")) is None
    assert _reader.napari_get_reader(None) is None
    assert _reader.napari_get_reader([]) is None


def test_two_d_tiff_is_one_frame(folder, capsys):
    """A single image is a movie of one frame, not an error."""
    tifffile.imwrite(folder / "one.tif", _movie()[2])
    np.save(folder / "one.npy", _angles(ROWS))
    rc, err = _cli(
        capsys,
        folder / "one.tif",
        "--angles",
        folder / "one.npy",
        "-o",
        folder / "out.tif",
    )
    assert rc == 0, err
    np.testing.assert_array_equal(
        tifffile.imread(folder / "out.tif"), derotate(_movie()[2:3], _angles(ROWS))[0]
    )


# --- arrays with the wrong shape or content --------------------------------

BAD_ARRAYS = {
    "2-D": np.zeros((ROWS, COLS)),
    "4-D": np.zeros((2, FRAMES, ROWS, COLS)),
    "1-D": np.zeros(ROWS),
    "empty": np.zeros((0, ROWS, COLS)),
    "complex": np.zeros((FRAMES, ROWS, COLS), complex),
    "strings": np.full((FRAMES, ROWS, COLS), "a"),
    "objects": np.full((FRAMES, ROWS, COLS), None, object),
}


@pytest.mark.parametrize("name", sorted(BAD_ARRAYS))
def test_bad_arrays_api(name):
    arr = BAD_ARRAYS[name]
    copy = arr.copy()
    for fn in (derotate, derotate_lazy):
        with pytest.raises(DerotationError) as exc:
            fn(arr, _angles(10**4))
        assert "shape" in str(exc.value) or "dtype" in str(exc.value)
    np.testing.assert_array_equal(arr, copy)


def test_non_array_input():
    with pytest.raises(DerotationError, match="3-D"):
        derotate("movie.tif", _angles())


# --- angles: NaN, infinite, too few, wrong shape, unreadable files ---------

BAD_ANGLES = {
    "nan": (np.r_[_angles()[:50], np.nan, _angles()[51:]], "NaN.*line 50"),
    "inf": (np.r_[np.inf, _angles()[1:]], "finite"),
    "too_few": (_angles()[:-1], f"{FRAMES * ROWS - 1} values.*{FRAMES * ROWS} lines"),
    "empty": (np.zeros(0), "0 values"),
    "two_columns": (np.zeros((FRAMES * ROWS, 2)), "1-D"),
    "text": (np.array(["a"] * (FRAMES * ROWS)), "numbers"),
}


@pytest.mark.parametrize("name", sorted(BAD_ANGLES))
def test_bad_angles_api(folder, name):
    angles, match = BAD_ANGLES[name]
    with pytest.raises(DerotationError, match=match):
        derotate(_movie(), angles)
    with pytest.raises(DerotationError, match=match):
        derotate_lazy(_movie(), angles)
    with pytest.raises(DerotationError, match=match):
        derotate_file(folder / "movie.tif", angles, folder / "out.tif")
    assert folder.unchanged()


@pytest.mark.parametrize(
    "name, content",
    [
        ("nan.csv", "angle\n" + "\n".join(["1.0"] * 40 + ["nan"] * 56)),
        ("short.txt", "\n".join(["1.0"] * 10)),
        ("words.csv", "angle\n1.0\nfast\n2.0\n"),
        ("empty.csv", ""),
        ("bad.npy", "not numpy"),
        ("angles.json", "[1, 2]"),
        ("missing.npy", None),
    ],
)
def test_bad_angle_files_cli(folder, capsys, name, content):
    path = folder / name
    if content is not None:
        path.write_text(content)
    before = {p.name: file_sha256(p) for p in folder.iterdir()}
    rc, err = _cli(
        capsys, folder / "movie.tif", "--angles", path, "-o", folder / "out.tif"
    )
    assert rc == 2 and _one_line(err), err
    assert {p.name: file_sha256(p) for p in folder.iterdir()} == before


# --- other arguments ---------------------------------------------------------


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--center", "nan", "3"], "finite"),
        (["--center", "100", "3"], "outside the frame"),
        (["--fill", "-5"], "fill_value"),
        (["--fill", "inf"], "argument --fill: must be a finite number"),
        (["--chunk-frames", "0"], "chunk-frames"),
        (["--workers", "0"], "workers"),
    ],
)
def test_bad_options_cli(folder, capsys, argv, match):
    rc, err = _cli(
        capsys,
        folder / "movie.tif",
        "--angles",
        folder / "angles.npy",
        "-o",
        folder / "out.tif",
        *argv,
    )
    assert rc == 2 and _one_line(err), err
    assert match in err
    assert folder.unchanged()


def test_missing_movie_cli(folder, capsys):
    rc, err = _cli(
        capsys,
        folder / "nope.tif",
        "--angles",
        folder / "angles.npy",
        "-o",
        folder / "out.tif",
    )
    assert rc == 2 and _one_line(err) and "nope.tif" in err
    assert folder.unchanged()


# --- outputs: where they cannot go ------------------------------------------


def test_output_over_input_is_refused(folder, capsys):
    for out in (folder / "movie.tif", folder / "." / "movie.tif"):
        rc, err = _cli(
            capsys, folder / "movie.tif", "--angles", folder / "angles.npy", "-o", out
        )
        assert rc == 2 and _one_line(err) and "refusing" in err
        with pytest.raises(DerotationError, match="refusing"):
            derotate_file(folder / "movie.tif", _angles(), out)
    assert folder.unchanged()


@pytest.mark.parametrize(
    "where", ["missing_folder", "parent_is_a_file", "not_a_tiff_suffix"]
)
def test_unwritable_destinations(folder, capsys, where):
    out = {
        "missing_folder": folder / "no" / "out.tif",
        "parent_is_a_file": folder / "movie.tif" / "out.tif",
        "not_a_tiff_suffix": folder / "out.png",
    }[where]
    rc, err = _cli(
        capsys, folder / "movie.tif", "--angles", folder / "angles.npy", "-o", out
    )
    assert rc == 2 and _one_line(err), err
    if where != "not_a_tiff_suffix":
        with pytest.raises(DerotationError):
            derotate_file(folder / "movie.tif", _angles(), out)
    assert folder.unchanged()


def test_permission_denied(folder, capsys, monkeypatch):
    """A folder we may not write to (simulated: the tests may run as root)."""

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(folder))

    monkeypatch.setattr("napari_derotation.io.atomic._create_temp", denied)
    rc, err = _cli(
        capsys,
        folder / "movie.tif",
        "--angles",
        folder / "angles.npy",
        "-o",
        folder / "out.tif",
    )
    assert rc == 2 and _one_line(err) and "permission denied" in err
    assert f"cannot write to {folder}" in err and ".partial" not in err
    with pytest.raises(DerotationError, match="permission denied"):
        derotate_file(folder / "movie.tif", _angles(), folder / "out.tif")
    assert folder.unchanged()


def _fail_on_call(n):
    real = tifffile.TiffWriter.write
    calls = []

    def write(self, *a, **k):
        calls.append(1)
        if len(calls) >= n:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *a, **k)

    return write


@pytest.mark.parametrize("fail_at", [1, 3])
def test_full_disk_while_writing_movie(folder, capsys, monkeypatch, fail_at):
    monkeypatch.setattr(tifffile.TiffWriter, "write", _fail_on_call(fail_at))
    rc, err = _cli(
        capsys,
        folder / "movie.tif",
        "--angles",
        folder / "angles.npy",
        "-o",
        folder / "out.tif",
        "--chunk-frames",
        "2",
    )
    assert rc == 2 and _one_line(err) and "no space left on the device" in err
    assert folder.unchanged()
    monkeypatch.setattr(tifffile.TiffWriter, "write", _fail_on_call(fail_at))
    with pytest.raises(DerotationError, match="no space left"):
        derotate_file(
            folder / "movie.tif", _angles(), folder / "out.tif", chunk_frames=2
        )
    assert folder.unchanged()


def test_full_disk_while_writing_sidecar(folder, capsys, monkeypatch):
    """The TIFF is complete but its JSON cannot be written: neither stays."""
    real = Path.write_text

    def write_text(self, *a, **k):
        if self.name.endswith(".partial") and ".out.derotation.json" in self.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", write_text)
    rc, err = _cli(
        capsys,
        folder / "movie.tif",
        "--angles",
        folder / "angles.npy",
        "-o",
        folder / "out.tif",
    )
    assert rc == 2 and _one_line(err) and "no space left" in err
    assert "out.derotation.json" in err and ".partial" not in err
    assert folder.unchanged()


def test_lazy_result_failing_later_leaves_input(folder):
    """A lazy derotation of a memmap only reads the file."""
    mm = tifffile.memmap(folder / "movie.tif", mode="r")
    lazy = derotate_lazy(mm, _angles(), chunk_frames=2)
    assert lazy.compute().shape == mm.shape
    del mm
    assert folder.unchanged()


# --- cancellation ------------------------------------------------------------


def test_cancel_api(folder):
    with pytest.raises(Cancelled):
        derotate(_movie(), _angles(), progress=lambda d, t: False)
    with pytest.raises(Cancelled):
        derotate_file(
            folder / "movie.tif",
            _angles(),
            folder / "out.tif",
            chunk_frames=1,
            progress=lambda d, t: d < 3,
        )
    assert folder.unchanged()


def test_interrupt_cli(folder, capsys, monkeypatch):
    """Ctrl-C mid-run: exit 130, one line, nothing written."""
    from napari_derotation.cli import derotate as cmd

    class Interrupt:
        def __init__(self, *a, **k):
            pass

        def __call__(self, done, total):
            if done >= 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(cmd, "Progress", Interrupt)
    rc = main(
        [
            "derotate",
            str(folder / "movie.tif"),
            "--angles",
            str(folder / "angles.npy"),
            "-o",
            str(folder / "out.tif"),
            "--chunk-frames",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 130 and _one_line(err) and "cancelled" in err
    assert folder.unchanged()
