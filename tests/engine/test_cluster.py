"""Derotation on a dask.distributed cluster: same file as the in-memory engine."""

from __future__ import annotations

import json
import time

import distributed
import numpy as np
import pytest
import tifffile

from napari_derotation import Cancelled, DerotationError, derotate
from napari_derotation.cli import main
from napari_derotation.engine import cluster as cluster_mod
from napari_derotation.engine.cluster import derotate_file_distributed
from napari_derotation.io import file_sha256
from napari_derotation.simulate import simulate_movie


@pytest.fixture(scope="module")
def local():
    """Two in-process workers on a TCP scheduler (reachable by address)."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            protocol="tcp",
            dashboard_address=":0",
        ) as c,
        distributed.Client(c) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster")
    sim = simulate_movie((28, 36), 13, trace="real", center_offset=(2, -1.5), seed=5)
    path = folder / "movie.tif"
    tifffile.imwrite(path, sim.movie)
    np.save(folder / "angles.npy", sim.angles_per_line)
    sim.path = path
    sim.expected = derotate(sim.movie, sim.angles_per_line, sim.center)
    return sim


@pytest.mark.parametrize("chunk, ahead", [(1, None), (4, 1), (5, 3), (13, None)])
def test_distributed_equals_in_memory(local, movie, tmp_path, chunk, ahead):
    out = tmp_path / "out.tif"
    seen = []
    rec = derotate_file_distributed(
        movie.path,
        movie.angles_per_line,
        out,
        movie.center,
        client=local,
        chunk_frames=chunk,
        in_flight=ahead,
        progress=lambda done, total: seen.append((done, total)),
    )
    np.testing.assert_array_equal(tifffile.imread(out), movie.expected)
    assert rec["cluster"]["workers"] == 2
    assert seen[-1] == (13, 13) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    meta = json.loads(out.with_suffix(".derotation.json").read_text())
    assert meta["input"]["sha256"] == file_sha256(movie.path)
    assert meta["chunk_frames"] == chunk
    # nothing is kept on the cluster afterwards (released asynchronously)
    deadline = time.monotonic() + 5
    while any(local.who_has().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(local.who_has().values())


def test_both_workers_take_part(local, movie, tmp_path):
    derotate_file_distributed(
        movie.path,
        movie.angles_per_line,
        tmp_path / "o.tif",
        movie.center,
        client=local,
        chunk_frames=1,
        sidecar=False,
    )
    log = local.run(
        lambda dask_worker: (
            len(dask_worker.data)
            + sum(1 for t in dask_worker.state.log if "derotate_chunk" in str(t))
        )
    )
    assert len(log) == 2 and all(v > 0 for v in log.values())


def test_cancel_cancels_and_leaves_nothing(local, movie, tmp_path):
    with pytest.raises(Cancelled):
        derotate_file_distributed(
            movie.path,
            movie.angles_per_line,
            tmp_path / "o.tif",
            movie.center,
            client=local,
            chunk_frames=2,
            progress=lambda done, total: done < 4,
        )
    assert list(tmp_path.iterdir()) == []


def test_worker_error_leaves_nothing(local, movie, tmp_path, monkeypatch):
    def broken(*a, **k):
        raise DerotationError("worker could not read the movie")

    monkeypatch.setattr(cluster_mod, "derotate_chunk", broken)
    with pytest.raises(DerotationError, match="worker could not read"):
        derotate_file_distributed(
            movie.path,
            movie.angles_per_line,
            tmp_path / "o.tif",
            client=local,
            chunk_frames=4,
        )
    assert list(tmp_path.iterdir()) == []


def test_bad_input_fails_before_submitting(local, movie, tmp_path):
    with pytest.raises(DerotationError, match="angles_per_line has 5 values"):
        derotate_file_distributed(
            movie.path, np.zeros(5), tmp_path / "o.tif", client=local
        )
    with pytest.raises(DerotationError, match="workers"):
        derotate_file_distributed(
            movie.path, movie.angles_per_line, tmp_path / "o.tif", workers=0
        )
    with pytest.raises(DerotationError, match="not both"):
        derotate_file_distributed(
            movie.path,
            movie.angles_per_line,
            tmp_path / "o.tif",
            client=local,
            workers=2,
        )
    with pytest.raises(DerotationError, match="does not exist"):
        derotate_file_distributed(
            movie.path, movie.angles_per_line, tmp_path / "nope" / "o.tif", client=local
        )
    assert list(tmp_path.iterdir()) == []


def test_cli_scheduler_address(local, movie, tmp_path, capsys):
    out = tmp_path / "out.tif"
    rc = main(
        [
            "derotate",
            str(movie.path),
            "--angles",
            str(movie.path.parent / "angles.npy"),
            "--center",
            *map(str, movie.center),
            "--chunk-frames",
            "3",
            "-o",
            str(out),
            "--scheduler",
            local.scheduler.address,
            "--quiet",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    np.testing.assert_array_equal(tifffile.imread(out), movie.expected)
    meta = json.loads(out.with_suffix(".derotation.json").read_text())
    assert meta["cluster"]["scheduler"] == local.scheduler.address


def test_cli_local_workers(movie, tmp_path, capsys):
    """A local cluster of two worker processes, started and stopped."""
    out = tmp_path / "out.tif"
    rc = main(
        [
            "derotate",
            str(movie.path),
            "--angles",
            str(movie.path.parent / "angles.npy"),
            "--center",
            *map(str, movie.center),
            "--chunk-frames",
            "4",
            "-o",
            str(out),
            "--workers",
            "2",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "13/13" in captured.err
    np.testing.assert_array_equal(tifffile.imread(out), movie.expected)
    meta = json.loads(out.with_suffix(".derotation.json").read_text())
    assert meta["cluster"]["workers"] == 2


def test_cli_unreachable_scheduler(movie, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cluster_mod, "CONNECT_TIMEOUT", "1s")
    rc = main(
        [
            "derotate",
            str(movie.path),
            "--angles",
            str(movie.path.parent / "angles.npy"),
            "-o",
            str(tmp_path / "o.tif"),
            "--scheduler",
            "tcp://127.0.0.1:9",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    lines = [ln for ln in err.splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and "cannot connect" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_cli_workers_and_scheduler_are_exclusive(movie, tmp_path, capsys):
    assert (
        main(
            [
                "derotate",
                str(movie.path),
                "--angles",
                "a.npy",
                "-o",
                str(tmp_path / "o.tif"),
                "--scheduler",
                "tcp://x:1",
                "--workers",
                "2",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not allowed with" in err[0]
