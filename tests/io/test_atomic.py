"""Nothing a user has is overwritten without asking; bad and unlucky inputs
end in one clear line with nothing left behind.

Each test fails on the code before these changes: existing outputs replaced
silently, records named ``OUT.json`` (colliding with an input's), raw OS
messages naming temporary files, orphan partials after SIGTERM, a
multi-series TIFF read as its first series, angles used silently when there
are too many or they are in radians, ``saving_name`` escaping its folder.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_derotation.cli import main
from napari_derotation.engine.files import derotate_file
from napari_derotation.errors import DerotationError
from napari_derotation.frames import angle_warnings
from napari_derotation.io import TiffStreamWriter, atomic, open_movie, read_movie
from napari_derotation.io.atomic import (
    atomic_path,
    check_writable,
    describe_os_error,
    remove_stale_partials,
    write_json,
)
from napari_derotation.io.provenance import sidecar_path
from napari_derotation.pipeline.config import Config, load_config

FRAMES, ROWS, COLS = 6, 16, 20
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _movie():
    return (
        (np.arange(FRAMES * ROWS * COLS) % 900)
        .astype(np.uint16)
        .reshape(FRAMES, ROWS, COLS)
    )


@pytest.fixture
def folder(tmp_path):
    tifffile.imwrite(tmp_path / "m.tif", _movie())
    np.save(tmp_path / "angles.npy", np.linspace(0, 90, FRAMES * ROWS))
    return tmp_path


def _derotate(capsys, folder, *extra, out="out.tif", angles="angles.npy"):
    rc = main(
        [
            "derotate",
            str(folder / "m.tif"),
            "--angles",
            str(folder / angles),
            "-o",
            str(folder / out),
            "--quiet",
            *map(str, extra),
        ]
    )
    return rc, capsys.readouterr().err


def _one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("napari-derotation: error")


def _files(folder) -> dict:
    return {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}


# --- existing outputs are refused unless asked ------------------------------


def test_derotate_twice_refuses_then_overwrite_replaces(folder, capsys):
    rc, _ = _derotate(capsys, folder)
    assert rc == 0
    assert sorted(_files(folder)) == [
        "angles.npy",
        "m.tif",
        "out.derotation.json",
        "out.tif",
    ]
    before = _files(folder)
    rc, err = _derotate(capsys, folder)
    assert rc == 2 and _one_line(err), err
    assert "out.tif" in err and "out.derotation.json" in err
    assert "--overwrite" in err
    assert _files(folder) == before
    # only the record existing is refused too
    (folder / "out.tif").unlink()
    rc, err = _derotate(capsys, folder)
    assert rc == 2 and "out.derotation.json" in err and "out.tif," not in err
    rc, err = _derotate(capsys, folder, "--overwrite")
    assert rc == 0, err
    assert (folder / "out.tif").is_file()


def test_derotate_file_refuses_existing_output(folder):
    angles = np.load(folder / "angles.npy")
    (folder / "out.tif").write_bytes(b"mine")
    with pytest.raises(DerotationError, match="refusing to replace"):
        derotate_file(folder / "m.tif", angles, folder / "out.tif")
    assert (folder / "out.tif").read_bytes() == b"mine"
    derotate_file(folder / "m.tif", angles, folder / "out.tif", overwrite=True)
    assert tifffile.imread(folder / "out.tif").shape == (FRAMES, ROWS, COLS)


def test_record_does_not_take_the_inputs_json(folder, capsys):
    """``derotate m.tif -o m.tiff`` used to overwrite m.json."""
    (folder / "m.json").write_text('{"mine": true}')
    rc, err = _derotate(capsys, folder, out="m.tiff")
    assert rc == 0, err
    assert json.loads((folder / "m.json").read_text()) == {"mine": True}
    rec = json.loads((folder / "m.derotation.json").read_text())
    assert rec["software"] == "napari-derotation"


def test_sidecar_name():
    assert sidecar_path("/a/out.tif") == Path("/a/out.derotation.json")
    assert sidecar_path("x.y.tiff") == Path("x.y.derotation.json")


def test_reader_reads_new_and_old_record_names(folder):
    from napari_derotation._napari._reader import _record

    rec = {"software": "napari-derotation", "center_row_col": [1.0, 2.0]}
    (folder / "old.tif").write_bytes(b"")
    (folder / "old.json").write_text(json.dumps(rec))
    assert _record(folder / "old.tif") == rec
    new = dict(rec, center_row_col=[3.0, 4.0])
    (folder / "old.derotation.json").write_text(json.dumps(new))
    assert _record(folder / "old.tif") == new  # the new name first
    (folder / "other.json").write_text('{"software": "else"}')
    assert _record(folder / "other.tif") is None


def test_check_writable_lists_every_existing_file(tmp_path):
    (tmp_path / "a.tif").write_bytes(b"")
    (tmp_path / "b.csv").write_bytes(b"")
    paths = [tmp_path / n for n in ("a.tif", "new.json", "b.csv")]
    with pytest.raises(DerotationError) as info:
        check_writable(paths)
    msg = str(info.value)
    assert "a.tif" in msg and "b.csv" in msg and "new.json" not in msg
    # the library says what is wrong; the command line adds its flag
    assert "--overwrite" not in msg and "\n" not in msg
    assert "use --overwrite to replace them" in info.value.with_hint("use --overwrite")
    assert check_writable(paths, overwrite=True) == paths
    with pytest.raises(DerotationError, match="does not exist"):
        check_writable([tmp_path / "nope" / "x.tif"], overwrite=True)
    (tmp_path / "dir.tif").mkdir()
    with pytest.raises(DerotationError, match="is a folder"):
        check_writable([tmp_path / "dir.tif"], overwrite=True)


def test_nothing_is_written_when_a_later_file_exists(folder, capsys):
    """Every file is checked before the first is written: an existing record
    stops the run before the TIFF is made."""
    (folder / "out.derotation.json").write_text("{}")
    rc, err = _derotate(capsys, folder)
    assert rc == 2 and not (folder / "out.tif").exists()
    assert not any(p.name.endswith(".partial") for p in folder.iterdir())


# --- the pipeline: run and batch --------------------------------------------


@pytest.fixture(scope="module")
def recording():
    from napari_derotation.simulate import simulate_recording

    return simulate_recording(
        speeds=(200,), directions=(1,), rows=24, frame_rate=25, seed=0
    )


@pytest.fixture
def dataset(tmp_path, recording):
    from napari_derotation.io import write_tiff
    from napari_derotation.simulate import make_texture, rotate_by_line

    folder = tmp_path / "ds"
    folder.mkdir()
    img = make_texture((24, 24), seed=3, low=100, high=3000)
    movie = rotate_by_line(
        img,
        recording.angles_per_line,
        (12.0, 12.0),
        n_frames=recording.n_frames,
        fill_value=100.0,
    )
    write_tiff(folder / "movie.tif", np.rint(movie).astype(np.uint16))
    recording.write_npy(folder / "analog_signals.npy")
    recording.write_stimulus(folder / "stimulus_randperm.csv")
    return folder


def _write_config(folder: Path, **write) -> Path:
    import yaml

    cfg = {
        "paths_read": {
            "path_to_tif": "movie.tif",
            "path_to_aux": "analog_signals.npy",
            "path_to_randperm": "stimulus_randperm.csv",
        },
        "paths_write": {"derotated_tiff_folder": "out", **write},
    }
    path = folder / "cfg.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_run_twice_refuses_then_overwrite(dataset, capsys):
    config = _write_config(dataset, saving_name="movie")
    out = dataset / "out"
    out.mkdir()
    (out / "movie.json").write_text('{"mine": 1}')  # another file's JSON
    assert main(["run", str(config), "--quiet"]) == 0
    capsys.readouterr()
    assert json.loads((out / "movie.json").read_text()) == {"mine": 1}
    assert (out / "movie.derotation.json").is_file()
    before = _files(out)
    rc = main(["run", str(config), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and _one_line(err), err
    assert "movie.tif" in err and "angles_per_line.npy" in err
    assert "movie.csv" in err and "--overwrite" in err
    assert _files(out) == before
    assert main(["run", str(config), "--quiet", "--overwrite"]) == 0
    capsys.readouterr()
    config = _write_config(dataset, saving_name="movie", overwrite=True)
    assert load_config(config, warn=False).overwrite is True
    assert main(["run", str(config), "--quiet"]) == 0


def test_batch_refuses_existing_outputs(dataset, capsys):
    config = _write_config(dataset)
    root = dataset.parent / "root"
    args = ["batch", str(config), str(dataset), "--output-root", str(root), "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 1
    assert "--overwrite" in capsys.readouterr().out
    assert main([*args, "--overwrite"]) == 0


@pytest.mark.parametrize(
    "name", ["../../escaped", "", "  ", "a/b", "..", ".", ".hidden", "a\\b"]
)
def test_saving_name_must_be_a_plain_name(name, tmp_path, capsys):
    with pytest.raises(DerotationError, match="saving_name"):
        Config(saving_name=name).check()
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"paths_write:\n  saving_name: {json.dumps(name)}\n")
    rc = main(["run", str(cfg), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and _one_line(err) and "saving_name" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yml"]


def test_plain_saving_names_are_fine():
    for name in ("derotated", "my movie", "a..b", "run-2"):
        assert Config(saving_name=name).check().saving_name == name


# --- simulate and demo --------------------------------------------------------


def test_simulate_onto_a_file_and_twice(tmp_path, capsys):
    target = tmp_path / "f"
    target.write_text("mine")
    args = ["simulate", "--size", "32", "32", "--frames", "2"]
    rc = main([*args, "-o", str(target)])
    err = capsys.readouterr().err
    assert rc == 2 and _one_line(err) and "File exists" not in err
    assert "a file of that name exists" in err and str(target) in err
    assert target.read_text() == "mine"
    out = tmp_path / "sim"
    assert main([*args, "-o", str(out)]) == 0
    capsys.readouterr()
    before = _files(out)
    assert main([*args, "-o", str(out), "--seed", "3"]) == 2
    err = capsys.readouterr().err
    assert "movie.tif" in err and "--overwrite" in err
    assert _files(out) == before
    assert main([*args, "-o", str(out), "--seed", "3", "--overwrite"]) == 0
    assert _files(out) != before


def test_demo_refuses_existing_outputs(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "derotated.tif").write_bytes(b"mine")
    rc = main(["demo", "-o", str(out), "--frames", "4", "--size", "32"])
    err = capsys.readouterr().err
    assert rc == 2 and _one_line(err) and "derotated.tif" in err
    assert sorted(p.name for p in out.iterdir()) == ["derotated.tif"]


# --- OS errors in words, naming the path, never the temporary name ---------


@pytest.mark.parametrize(
    "message",
    [
        "122880 requested and 61336 written",  # numpy 1
        "Not enough free space to write 67108864 bytes after offset 208",
    ],
)
def test_full_disk_short_write_is_named(folder, capsys, monkeypatch, message):
    def short_write(self, *a, **k):
        # what numpy's tofile raises (under tifffile) when the disk is full
        raise OSError(message)

    monkeypatch.setattr(tifffile.TiffWriter, "write", short_write)
    before = _files(folder)
    rc, err = _derotate(capsys, folder)
    assert rc == 2 and _one_line(err), err
    assert f"no space left on the device holding {folder}" in err
    assert "requested" not in err and ".partial" not in err
    assert _files(folder) == before


@pytest.mark.parametrize(
    "code, words",
    [
        (errno.ENOSPC, "no space left on the device holding {folder}"),
        (
            errno.EACCES,
            "cannot write to {folder}: permission denied; choose another folder",
        ),
        (
            errno.EPERM,
            "cannot write to {folder}: permission denied; choose another folder",
        ),
        (errno.EROFS, "cannot write to {folder}: the file system is read-only"),
        (errno.EDQUOT, "disk quota exceeded on {folder}"),
    ],
)
def test_os_errors_in_words(tmp_path, code, words):
    path = tmp_path / "bigmovie_derotated.tif"
    exc = OSError(
        code,
        os.strerror(code),
        str(tmp_path / ".bigmovie_derotated.tif.i8pkkni2.partial"),
    )
    msg = describe_os_error(exc, path)
    assert words.format(folder=tmp_path) in msg
    assert ".partial" not in msg and "\n" not in msg


def test_read_only_file_system_is_named(folder, capsys, monkeypatch):
    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    monkeypatch.setattr(os, "statvfs", lambda p: ReadOnly())
    before = _files(folder)
    rc, err = _derotate(capsys, folder)
    assert rc == 2 and _one_line(err)
    assert f"cannot write to {folder}: the file system is read-only" in err
    assert _files(folder) == before


def _full_disk_on(name, monkeypatch):
    """Atomic writes of files called ``name`` fail as on a full disk."""
    import napari_derotation.io.atomic as atomic

    real = atomic._create_temp

    def create(path, *a, **k):
        if path.name == name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, *a, **k)

    monkeypatch.setattr(atomic, "_create_temp", create)


def test_simulate_failing_leaves_nothing_not_even_its_folder(
    tmp_path, capsys, monkeypatch
):
    _full_disk_on("movie.json", monkeypatch)  # the last of three files
    out = tmp_path / "new" / "sim"
    rc = main(["simulate", "--size", "32", "32", "--frames", "2", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and _one_line(err) and "no space left" in err
    assert list(tmp_path.iterdir()) == []


def test_run_failing_leaves_nothing_not_even_its_folder(dataset, capsys, monkeypatch):
    _full_disk_on("derotated.derotation.json", monkeypatch)  # the last file
    before = sorted(p.name for p in dataset.iterdir())
    config = _write_config(dataset)
    rc = main(["run", str(config), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and _one_line(err) and "no space left" in err
    assert "derotated.derotation.json" in err
    assert sorted(p.name for p in dataset.iterdir()) == sorted([*before, "cfg.yml"])


def test_export_into_a_folder_one_cannot_write(tmp_path, monkeypatch):
    """The napari Export writes through TiffStreamWriter: the message names
    the folder, in words, and nothing is left behind."""

    def denied(*a, **k):
        raise PermissionError(
            errno.EPERM,
            "Operation not permitted",
            str(tmp_path / ".x.tif.i8pkkni2.partial"),
        )

    monkeypatch.setattr("napari_derotation.io.atomic._create_temp", denied)
    with (
        pytest.raises(DerotationError) as info,
        TiffStreamWriter(tmp_path / "x.tif", (2, 4, 4), np.uint8) as w,
    ):
        w.write(np.zeros((2, 4, 4), np.uint8))
    assert str(info.value) == (
        f"cannot write to {tmp_path}: permission denied; choose another folder"
    )
    assert list(tmp_path.iterdir()) == []


def test_os_error_inside_an_atomic_write_names_the_final_path(tmp_path):
    with (
        pytest.raises(DerotationError) as info,
        atomic_path(tmp_path / "r.json") as tmp,
    ):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert str(tmp_path / "r.json") in str(info.value)
    assert ".partial" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
    write_json(tmp_path / "x.json", {"a": 1}, overwrite=False)
    with pytest.raises(DerotationError, match="refusing"):
        write_json(tmp_path / "x.json", {}, overwrite=False)
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}


# --- stale partials and SIGTERM ------------------------------------------------


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_partials_of_the_same_output_are_removed(folder, capsys):
    from napari_derotation.io.atomic import _writer_tag

    dead = _dead_pid()
    stale = folder / f".out.tif.{_writer_tag(dead)}.ab12cd34.partial"
    live = folder / f".out.tif.{_writer_tag(os.getppid())}.ef56gh78.partial"
    other_host = folder / f".out.tif.otherhost-{dead}.ab12cd34.partial"
    other_output = folder / f".other.tif.{_writer_tag(dead)}.ab12cd34.partial"
    old_style = folder / ".out.tif.ab12cd34.partial"
    for p in (stale, live, other_host, other_output, old_style):
        p.write_bytes(b"x" * 100)
    rc, err = _derotate(capsys, folder)
    assert rc == 0, err
    assert not stale.exists()
    for p in (live, other_host, other_output, old_style):
        assert p.exists(), p.name
    assert remove_stale_partials(folder / "other.tif") == [other_output]


def _run_until_written(tmp_path, folder):
    """A derotation in a child process, slowed down so that it is still
    writing when signalled; returns the process once a partial exists."""
    script = textwrap.dedent(f"""
        import sys, time
        import napari_derotation.engine.files as f
        real = f.derotate_into
        def slow(*a, **k):
            out = real(*a, **k)
            print("chunk", flush=True)
            time.sleep(0.3)
            return out
        f.derotate_into = slow
        from napari_derotation.cli import main
        sys.exit(main(["derotate", {str(folder / "m.tif")!r}, "--angles",
                       {str(folder / "angles.npy")!r}, "-o",
                       {str(folder / "out.tif")!r}, "--chunk-frames", "1",
                       "--quiet"]))
    """)
    env = dict(
        os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(2):
        assert proc.stdout.readline() == "chunk\n"
    assert any(p.name.endswith(".partial") for p in folder.iterdir())
    return proc


def test_sigterm_exits_143_and_leaves_nothing(tmp_path, folder):
    before = sorted(p.name for p in folder.iterdir())
    proc = _run_until_written(tmp_path, folder)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == [
        "napari-derotation: terminated (SIGTERM); no output written"
    ]
    assert sorted(p.name for p in folder.iterdir()) == before


def test_sigkill_partial_is_cleaned_on_the_next_run(tmp_path, folder, capsys):
    proc = _run_until_written(tmp_path, folder)
    proc.kill()
    proc.communicate(timeout=60)
    partials = [p for p in folder.iterdir() if p.name.endswith(".partial")]
    assert partials  # SIGKILL cannot clean up
    deadline = time.time() + 10
    while any(p.exists() for p in partials) and time.time() < deadline:
        rc, err = _derotate(capsys, folder, "--overwrite")
        assert rc == 0, err
    assert not any(p.name.endswith(".partial") for p in folder.iterdir())


def test_sigterm_handler_is_restored(folder, capsys):
    previous = signal.getsignal(signal.SIGTERM)
    assert _derotate(capsys, folder)[0] == 0
    assert signal.getsignal(signal.SIGTERM) is previous


# --- a TIFF of two series ---------------------------------------------------


def test_two_series_tiff_is_refused(folder, capsys):
    path = folder / "two.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(np.zeros((15, 64, 64), np.uint16))
        tif.write(np.zeros((15, 32, 32), np.uint16))
    for read in (read_movie, open_movie):
        with pytest.raises(DerotationError) as info:
            read(path)
        msg = str(info.value)
        assert "2 image series" in msg
        assert "(15, 64, 64)" in msg and "(15, 32, 32)" in msg
    np.save(folder / "a.npy", np.linspace(0, 90, 15 * 64))
    rc = main(
        [
            "derotate",
            str(path),
            "--angles",
            str(folder / "a.npy"),
            "-o",
            str(folder / "o.tif"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and _one_line(err) and "series" in err
    assert not (folder / "o.tif").exists()


def test_frames_written_one_by_one_are_refused_not_cut(tmp_path):
    """Frames appended one call at a time are separate series: reading the
    first alone would give a one-frame movie."""
    path = tmp_path / "appended.tif"
    for _ in range(3):
        tifffile.imwrite(path, np.zeros((8, 8), np.uint16), append=True)
    with pytest.raises(DerotationError, match=r"3 image series \(each"):
        read_movie(path)


# --- angle warnings ---------------------------------------------------------


def test_angle_warnings_library():
    shape = (FRAMES, ROWS, COLS)
    n = FRAMES * ROWS
    good = np.linspace(0, 90, n)
    assert angle_warnings(good, shape) == []
    twice = angle_warnings(np.linspace(0, 90, 2 * n), shape)
    assert len(twice) == 1 and f"{2 * n} angles for {n} lines" in twice[0]
    assert "2 times" in twice[0]
    assert angle_warnings(np.linspace(0, 90, 2 * n), shape, extra_lines_ok=True) == []
    radians = angle_warnings(np.linspace(0, 1.1, n), shape)
    assert len(radians) == 1 and "radians" in radians[0]
    assert angle_warnings(np.linspace(0, 90, n - 1), shape) == []  # an error
    five_d = (FRAMES, 2, 1, ROWS, COLS)  # T Z C Y X
    assert angle_warnings(np.linspace(0, 90, 2 * n), five_d) == []
    assert len(angle_warnings(np.linspace(0, 90, 3 * n), five_d)) == 1


def test_cli_warns_of_too_many_angles(folder, capsys):
    np.save(folder / "twice.npy", np.linspace(0, 90, 2 * FRAMES * ROWS))
    rc, err = _derotate(capsys, folder, angles="twice.npy")
    assert rc == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ")
    assert "--extra-angles-ok" in lines[0]
    rc, err = _derotate(
        capsys, folder, "--extra-angles-ok", "--overwrite", angles="twice.npy"
    )
    assert rc == 0 and err == ""


def test_cli_warns_of_radians(folder, capsys):
    np.save(folder / "rad.npy", np.linspace(0, 1.1, FRAMES * ROWS))
    rc, err = _derotate(capsys, folder, angles="rad.npy")
    assert rc == 0
    assert err.startswith("warning: ") and "radians" in err
    assert err.count("\n") == 1


def test_find_center_warns_too(folder, capsys):
    np.save(folder / "twice.npy", np.linspace(0, 90, 2 * FRAMES * ROWS))
    rc = main(
        [
            "find-center",
            str(folder / "m.tif"),
            "--angles",
            str(folder / "twice.npy"),
            "--calls",
            "3",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0 and "warning: " in err and "lines" in err


def test_gui_keeps_the_default_sigterm():
    """An event loop would not see the exception: napari ends on SIGTERM."""
    from napari_derotation.cli import build_parser

    assert build_parser().parse_args(["gui"])._sigterm is False
    assert build_parser().parse_args(["demo"])._sigterm is True


@pytest.mark.parametrize("what", ["file", "store"])
def test_ctrl_c_the_moment_a_temporary_name_is_created(tmp_path, monkeypatch, what):
    """A Ctrl-C that arrives just as the temporary file or folder is created
    (before its name is known to the clean-up) leaves nothing behind."""
    real = atomic._create_temp

    def then_ctrl_c(*args, **kwargs):
        tmp = real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs here unless it is held
        return tmp

    monkeypatch.setattr(atomic, "_create_temp", then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        if what == "file":
            atomic.write_json(tmp_path / "out.json", {"a": 1})
        else:
            atomic.temp_dir(tmp_path / "out.zarr")
    assert list(tmp_path.iterdir()) == []
