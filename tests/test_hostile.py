"""Hostile and faulty inputs through the command line, each in a subprocess.

Every case asserts what ``docs/faults.md`` promises: one line on stderr
(``warning:`` lines aside), exit code 2 (130 for Ctrl-C, 143 for SIGTERM),
no traceback, no input changed, nothing under a final name that is not
complete with its record, no temporary file left, memory under a bound
(``RLIMIT_AS`` in the child).

Movies are tiny and the numba cache is shared, so the whole file stays
within a few minutes on a loaded machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_derotation.errors import DerotationError
from napari_derotation.io.atomic import (
    OutputExists,
    OutputSet,
    atomic_path,
    publish,
    remove_stale_partials,
    temp_dir,
    write_json,
)

#: The console script, exactly as installed (``napari_derotation.cli:main``).
CLI = [
    sys.executable,
    "-c",
    "import sys; from napari_derotation.cli import main; sys.exit(main())",
]
#: The child's address-space limit: bad input must not take more.
MEMORY_LIMIT = 3 << 30
FRAMES, ROWS, COLS = 6, 32, 32


def _limit_memory():
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def start(args, cwd, *, limit=True, group=False):
    """The command started in ``cwd`` (its own process group with
    ``group``, as a terminal's Ctrl-C reaches the whole group)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    return subprocess.Popen(
        [*CLI, *map(str, args)],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_limit_memory if limit else None,
        start_new_session=group,
    )


def cli(args, cwd, *, timeout=120, limit=True):
    proc = start(args, cwd, limit=limit)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def errors(err: str) -> list[str]:
    """stderr's lines that are not warnings or progress bars."""
    lines = [ln.rsplit("\r", 1)[-1] for ln in err.splitlines()]
    return [
        ln
        for ln in lines
        if ln.strip()
        and not ln.startswith("warning:")
        and not ln.startswith("derotating:")
    ]


def assert_one_line(err: str, rc: int, expected: int = 2) -> str:
    assert "Traceback" not in err, err
    lines = errors(err)
    assert rc == expected and len(lines) == 1, (rc, err)
    return lines[0]


def tree_hashes(folder: Path) -> dict:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_outputs_whole(folder: Path) -> None:
    """No temporary file; every TIFF output with its record, every store
    with the record inside."""
    partial = [p for p in folder.rglob("*") if ".partial" in p.name]
    assert not partial, partial
    for tif in folder.glob("out*.tif"):
        rec = tif.with_name(tif.stem + ".derotation.json")
        assert rec.is_file(), f"{tif.name} without its record"
        assert json.loads(rec.read_text())["software"] == "napari-derotation"
        assert tifffile.imread(tif).shape == (FRAMES, ROWS, COLS)
    for rec in folder.glob("out*.derotation.json"):
        assert rec.with_name(rec.name.replace(".derotation.json", ".tif")).is_file()
    for store in folder.glob("out*.zarr"):
        attrs = json.loads((store / ".zattrs").read_text())
        assert "napari_derotation" in attrs, f"{store.name} without record"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A small movie that rotates through 330 degrees, its angles, and a
    few hostile files beside them."""
    folder = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    movie = (rng.random((FRAMES, ROWS, COLS)) * 1000).astype(np.uint16)
    tifffile.imwrite(folder / "m.tif", movie)
    np.save(folder / "angles.npy", np.linspace(0, 330, FRAMES * ROWS))
    np.save(folder / "radians.npy", np.linspace(0, 6.28, FRAMES * ROWS))
    sat = movie.copy()
    yy, xx = np.mgrid[:ROWS, :COLS]
    sat[:, (yy - ROWS / 2) ** 2 + (xx - COLS / 2) ** 2 < 15**2] = 65535
    tifffile.imwrite(folder / "saturated.tif", sat)
    (folder / "deep.json").write_text("[" * 100000 + "]" * 100000)
    (folder / "empty.json").write_text("")
    (folder / "latin1.csv").write_bytes(b"angle\n\xe9\xff\xfe1.0\n")
    return folder


@pytest.fixture
def work(data, tmp_path) -> Path:
    """A fresh folder with links to the module's inputs."""
    for p in data.iterdir():
        (tmp_path / p.name).symlink_to(p)
    return tmp_path


DEROTATE = ["derotate", "m.tif", "--angles", "angles.npy", "--quiet"]

#: name -> (arguments, a word the one error line must hold)
CASES = {
    "params nested 100000 deep": (
        [*DEROTATE, "-o", "out.tif", "--params", "deep.json"],
        "deeply",
    ),
    "params file empty (find-center --json > fit.json failed)": (
        [*DEROTATE, "-o", "out.tif", "--params", "empty.json"],
        "find-center --json",
    ),
    "simulate --noise -1": (["simulate", "-o", "sim", "--noise", "-1"], "--noise"),
    "simulate --noise nan": (["simulate", "-o", "sim", "--noise", "nan"], "--noise"),
    "simulate --size 100000 100000": (
        ["simulate", "-o", "sim", "--size", "100000", "100000"],
        "memory",
    ),
    "simulate --frames 1000000000": (
        ["simulate", "-o", "sim", "--frames", "1000000000"],
        "memory",
    ),
    "simulate --size 0 5": (["simulate", "-o", "sim", "--size", "0", "5"], "--size"),
    "demo --size 0": (["demo", "-o", "demo", "--size", "0"], "--size"),
    "demo --frames 1000000000": (
        ["demo", "-o", "demo", "--frames", "1000000000"],
        "memory",
    ),
    "derotate --frame-rate inf": (
        [*DEROTATE, "-o", "out.nwb", "--frame-rate", "inf"],
        "--frame-rate",
    ),
    "derotate --frame-rate -5": (
        [*DEROTATE, "-o", "out.zarr", "--frame-rate", "-5"],
        "--frame-rate",
    ),
    "derotate --workers 0": (
        [*DEROTATE, "-o", "out.tif", "--workers", "0"],
        "--workers",
    ),
    "derotate --chunk-frames nan": (
        [*DEROTATE, "-o", "out.tif", "--chunk-frames", "nan"],
        "--chunk-frames",
    ),
    "find-center --search-radius inf": (
        ["find-center", "m.tif", "--angles", "angles.npy", "--search-radius", "inf"],
        "--search-radius",
    ),
    "find-center --initial nan nan": (
        ["find-center", "m.tif", "--angles", "angles.npy", "--initial", "nan", "nan"],
        "--initial",
    ),
    "find-center --calls 0": (
        ["find-center", "m.tif", "--angles", "angles.npy", "--calls", "0"],
        "--calls",
    ),
    "find-center on a saturated movie": (
        [
            "find-center",
            "saturated.tif",
            "--angles",
            "angles.npy",
            "--quiet",
            "--calls",
            "8",
        ],
        "saturated",
    ),
    "angles file not UTF-8": (
        [*DEROTATE, "-o", "out.tif", "--angles", "latin1.csv"],
        "",
    ),
    "batch with one dataset twice": (
        ["batch", "nope.yml", "ds", "./ds", "--workers", "2"],
        "twice",
    ),
}


def _link_inputs(data: Path, folder: Path) -> Path:
    folder.mkdir()
    for p in data.iterdir():
        (folder / p.name).symlink_to(p)
    (folder / "ds").mkdir()
    return folder


@pytest.fixture(scope="module")
def case_results(data, tmp_path_factory) -> dict:
    """Every case of :data:`CASES` started at once, each in its own folder
    (the machine's cores are shared, not waited for one case at a time):
    name -> (exit code, stderr, folder, hashes before, hashes after)."""
    root = tmp_path_factory.mktemp("cases")
    started = {}
    for i, (name, (args, _)) in enumerate(CASES.items()):
        folder = _link_inputs(data, root / f"case{i}")
        started[name] = (start(args, folder), folder, tree_hashes(folder))
    results = {}
    for name, (proc, folder, before) in started.items():
        _, err = proc.communicate(timeout=300)
        results[name] = (proc.returncode, err, folder, before, tree_hashes(folder))
    return results


@pytest.mark.parametrize("name", list(CASES))
def test_case_is_one_line_and_exit_2(name, case_results):
    rc, err, folder, before, after = case_results[name]
    line = assert_one_line(err, rc)
    assert CASES[name][1] in line, line
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) == set(before), "something was written"
    assert_outputs_whole(folder)


def test_radians_are_warned_about(work):
    rc, _, err = cli([*DEROTATE, "-o", "out.tif", "--angles", "radians.npy"], work)
    assert rc == 0, err
    notes = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert any(
        "these look like radians; the angles must be degrees" in n for n in notes
    ), err
    assert_outputs_whole(work)


def test_degrees_are_not_warned_about():
    from napari_derotation.frames import angle_warnings

    assert angle_warnings(np.linspace(0, 330, 60), (2, 30, 30)) == []
    assert angle_warnings(np.linspace(0, 6.28, 60), (2, 30, 30))


# ------------------------------------------------------------ schedulers


class _Impostor:
    """A TCP server that answers every connection with bytes that are not
    dask's protocol (an HTTP server on the port, say)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"\xff" * 4096)
                time.sleep(0.2)


def test_scheduler_address_where_another_server_answers(work):
    server = _Impostor()
    try:
        rc, _, err = cli(
            [
                *DEROTATE,
                "-o",
                "out.tif",
                "--scheduler",
                f"tcp://127.0.0.1:{server.port}",
            ],
            work,
        )
    finally:
        server.sock.close()
    line = assert_one_line(err, rc)
    assert "dask scheduler" in line, line
    assert not (work / "out.tif").exists()


# ------------------------------------------------------------ signals


@pytest.mark.parametrize("delay", [0.3, 0.7])
def test_ctrl_c_while_starting(work, delay):
    proc = start([*DEROTATE, "-o", "out.tif"], work)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:  # finished first: whole, then
        assert_outputs_whole(work)
        return
    line = assert_one_line(err, proc.returncode, 130)
    assert "cancelled" in line
    assert_outputs_whole(work)


def test_sigterm_while_starting(work):
    proc = start([*DEROTATE, "-o", "out.tif"], work)
    time.sleep(0.4)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    line = assert_one_line(err, proc.returncode, 143)
    assert "SIGTERM" in line
    assert_outputs_whole(work)


def test_ctrl_c_the_moment_the_tiff_appears(work):
    """The TIFF and its record appear together or neither does."""
    for attempt in range(2):
        out = work / f"out{attempt}.tif"
        proc = start([*DEROTATE, "-o", out.name], work)
        while proc.poll() is None and not out.exists():
            time.sleep(0.0005)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, err
        assert proc.returncode in (0, 130), err
        if proc.returncode == 130:
            assert_one_line(err, proc.returncode, 130)
        assert_outputs_whole(work)


def _wait_for(pred, timeout=120.0):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_ctrl_c_on_a_local_cluster_writing_zarr(tmp_path):
    """Ctrl-C to the whole process group while workers write a store: one
    line, exit 130, quickly, nothing left (not even the temporary store)."""
    rng = np.random.default_rng(1)
    frames = 400
    tifffile.imwrite(
        tmp_path / "big.tif", (rng.random((frames, 64, 64)) * 1000).astype(np.uint16)
    )
    np.save(tmp_path / "a.npy", np.linspace(0, 360, frames * 64))
    proc = start(
        [
            "derotate",
            "big.tif",
            "--angles",
            "a.npy",
            "-o",
            "out.zarr",
            "--workers",
            "2",
            "--chunk-frames",
            "4",
            "--quiet",
        ],
        tmp_path,
        limit=False,
        group=True,
    )
    # interrupt once the workers write into the temporary store
    _wait_for(
        lambda: (
            proc.poll() is not None
            or any(p.name.startswith(".out.zarr.") for p in tmp_path.iterdir())
        )
    )
    time.sleep(1.0)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=45)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("Ctrl-C did not end the run") from None
    if proc.returncode == 0:
        assert (tmp_path / "out.zarr").is_dir()
        return
    assert time.monotonic() - t0 < 45
    line = assert_one_line(err, proc.returncode, 130)
    assert "cancelled" in line
    assert not (tmp_path / "out.zarr").exists()
    _wait_for(
        lambda: not any(".partial" in p.name for p in tmp_path.iterdir()), timeout=20
    )


def test_workers_capped_at_the_cpus(monkeypatch):
    from napari_derotation.engine import cluster

    monkeypatch.setattr(cluster, "available_cpus", lambda: 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cluster.local_workers(1000) == 2
        assert cluster.local_workers(None) == 2
        assert cluster.local_workers(1) == 1
    assert len(caught) == 1 and "1000 workers" in str(caught[0].message)


# ------------------------------------------------------------ racing writers


def test_two_identical_derotations_at_once(work):
    """Exactly one writer wins; the other says why, in one line."""
    procs = [start([*DEROTATE, "-o", "out.tif"], work) for _ in range(2)]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    err = next(e for rc, e in results if rc == 2)
    line = assert_one_line(err, 2)
    assert "--overwrite" in line and "out.tif" in line
    assert_outputs_whole(work)


def test_two_identical_zarr_derotations_at_once(work):
    procs = [start([*DEROTATE, "-o", "out.zarr"], work) for _ in range(2)]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 2], results
    err = next(e for rc, e in results if rc == 2)
    assert "--overwrite" in assert_one_line(err, 2)
    assert_outputs_whole(work)


def test_a_file_created_meanwhile_is_not_replaced(work):
    """Another program writes out.tif while the derotation runs."""
    rng = np.random.default_rng(2)
    frames = 300
    tifffile.imwrite(
        work / "long.tif", (rng.random((frames, 64, 64)) * 1000).astype(np.uint16)
    )
    np.save(work / "long.npy", np.linspace(0, 360, frames * 64))
    proc = start(
        [
            "derotate",
            "long.tif",
            "--angles",
            "long.npy",
            "-o",
            "out.tif",
            "--quiet",
            "--chunk-frames",
            "2",
        ],
        work,
    )
    _wait_for(
        lambda: (
            proc.poll() is not None
            or any(p.name.startswith(".out.tif.") for p in work.iterdir())
        )
    )
    (work / "out.tif").write_bytes(b"theirs")
    _, err = proc.communicate(timeout=120)
    line = assert_one_line(err, proc.returncode)
    assert line.endswith(
        "out.tif appeared while derotating; not replaced (use --overwrite)"
    ), line
    assert (work / "out.tif").read_bytes() == b"theirs"
    assert not (work / "out.derotation.json").exists()
    assert not any(".partial" in p.name for p in work.iterdir())


def test_publish_never_replaces_without_overwrite(tmp_path):
    final = tmp_path / "x.tif"
    with atomic_path(final) as tmp:
        tmp.write_bytes(b"mine")
    assert final.read_bytes() == b"mine"
    with (
        pytest.raises(OutputExists, match="appeared while derotating"),
        OutputSet(overwrite=False),
        atomic_path(final) as tmp,
    ):
        tmp.write_bytes(b"second")
    assert final.read_bytes() == b"mine"
    assert [p.name for p in tmp_path.iterdir()] == ["x.tif"]
    with atomic_path(final, overwrite=True) as tmp:  # asked for
        tmp.write_bytes(b"new")
    assert final.read_bytes() == b"new"


def test_publish_a_store_onto_an_empty_folder_is_refused(tmp_path):
    """rename() would replace an empty folder: a store is never put in
    place over anything."""
    final = tmp_path / "s.zarr"
    final.mkdir()
    store = temp_dir(final)
    (store / ".zattrs").write_text("{}")
    with pytest.raises(OutputExists):
        publish(store, final)
    assert final.is_dir() and not any(final.iterdir())
    publish(store, final, overwrite=True)
    assert (final / ".zattrs").is_file()


def test_racing_threads_one_winner(tmp_path):
    final = tmp_path / "race.json"
    outcome = []

    def write(i):
        try:
            with OutputSet(overwrite=False):
                write_json(final, {"writer": i}, overwrite=True)
            outcome.append(i)
        except OutputExists:
            outcome.append(-1)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i in outcome if i >= 0]
    assert len(winners) == 1
    assert json.loads(final.read_text()) == {"writer": winners[0]}


def test_temporary_files_get_the_mode_of_a_plain_open(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    with atomic_path(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"x")
    assert (tmp_path / "a.bin").stat().st_mode == plain.stat().st_mode
    store = temp_dir(tmp_path / "s.zarr")
    (tmp_path / "d").mkdir()
    assert store.stat().st_mode == (tmp_path / "d").stat().st_mode


def test_the_umask_is_never_changed(tmp_path, monkeypatch):
    def refuse(mask):
        raise AssertionError("os.umask called")

    monkeypatch.setattr(os, "umask", refuse)
    with atomic_path(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"x")
    publish(temp_dir(tmp_path / "s.zarr"), tmp_path / "s.zarr")


def test_a_dead_writers_store_is_removed(work):
    """A writer killed during -o out.zarr (SIGKILL) leaves its temporary
    store; the next write of out.zarr removes it."""
    from napari_derotation.io.atomic import _writer_tag

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = work / f".out.zarr.{_writer_tag(dead.pid)}.deadbeef.partial"
    (stale / "0").mkdir(parents=True)
    (stale / "0" / "0.0.0").write_bytes(b"chunk")
    rc, _, err = cli([*DEROTATE, "-o", "out.zarr"], work)
    assert rc == 0, err
    assert not stale.exists()
    assert_outputs_whole(work)


def test_a_live_writers_store_is_kept(tmp_path):
    from napari_derotation.io.atomic import _writer_tag

    live = tmp_path / f".out.zarr.{_writer_tag(os.getppid())}.cafe.partial"
    live.mkdir()
    remove_stale_partials(tmp_path / "out.zarr")
    assert live.is_dir()


def test_an_interrupted_set_removes_what_it_published(tmp_path):
    with pytest.raises(KeyboardInterrupt), OutputSet(overwrite=False):
        write_json(tmp_path / "a.json", {})
        write_json(tmp_path / "b.json", {})
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_overwrite_wording_is_the_command_lines():
    """The library says what is wrong; the command line adds its flag."""
    err = OutputExists("refusing to replace an existing file: a.tif", ["a.tif"])
    assert "--overwrite" not in str(err)
    from napari_derotation.cli import describe_error

    assert describe_error(err) == (
        "refusing to replace an existing file: a.tif; use --overwrite to replace it"
    )


# ------------------------------------------------------------ hypothesis


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    blob=st.binary(max_size=600),
    suffix=st.sampled_from([".tif", ".npy", ".csv", ".txt", ".json"]),
)
def test_random_bytes_as_an_input(tmp_path_factory, blob, suffix, capsys):
    """Random bytes as the movie, the angles or the parameters: one line
    and exit 2 (run in this process: many examples, no subprocess each)."""
    from napari_derotation.cli import main

    folder = tmp_path_factory.mktemp("blob")
    junk = folder / f"junk{suffix}"
    junk.write_bytes(blob)
    good_movie = folder / "m.tif"
    tifffile.imwrite(good_movie, np.zeros((2, 8, 8), np.uint16))
    np.save(folder / "a.npy", np.linspace(0, 90, 16))
    if suffix == ".tif":
        args = [str(junk), "--angles", str(folder / "a.npy")]
    elif suffix == ".json":
        args = [
            str(good_movie),
            "--angles",
            str(folder / "a.npy"),
            "--params",
            str(junk),
        ]
    else:
        args = [str(good_movie), "--angles", str(junk)]
    before = junk.read_bytes()
    rc = main(["derotate", *args, "-o", str(folder / "out.tif"), "--quiet"])
    err = capsys.readouterr().err
    assert junk.read_bytes() == before
    if rc == 0:  # the bytes happened to be a valid input
        return
    assert_one_line(err, rc)
    assert not (folder / "out.tif").exists()


def test_derotation_error_is_the_library_error():
    assert issubclass(OutputExists, DerotationError)


def test_the_objective_stays_finite_without_contrast():
    """Bin images with no contrast used to give 0 / 0 (NaN)."""
    from napari_derotation.center.bayesian import ResidualMotion

    movie = np.full((8, 32, 32), 65535, np.uint16)
    objective = ResidualMotion(movie, np.linspace(0, 330, 8 * 32))
    value, loo = objective.with_jackknife((16.0, 16.0))
    assert value == 1.0 and np.isfinite(loo).all()
    share, note = objective.contrast
    assert share == 1.0 and "100% of the compared pixels are saturated" in note
