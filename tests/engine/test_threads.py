"""Thread count from the CPUs the process may use, dynamic work units, and
the one-line compile notice."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from napari_derotation import derotate
from napari_derotation.engine import _driver, _kernels, threads
from napari_derotation.errors import Cancelled, DerotationError


@pytest.fixture(autouse=True)
def _automatic(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    yield
    threads.set_threads(None)


def test_cgroup_quota_limits_the_thread_count(tmp_path, monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.available_cpus(tmp_path) == 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.available_cpus(tmp_path) == 4
    (tmp_path / "cpu.max").unlink()
    assert threads.available_cpus(tmp_path) == 4
    v1 = tmp_path / "cpu"
    v1.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("50000")
    (v1 / "cpu.cfs_period_us").write_text("100000")
    assert threads.available_cpus(tmp_path) == 1


def test_affinity_sets_the_default(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {3})
    monkeypatch.setattr(threads, "_cgroup_quota", lambda root=None: None)
    assert threads.thread_count() == 1


def test_overrides_in_order(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 8)
    monkeypatch.setenv("NUMBA_NUM_THREADS", "2")
    assert threads.thread_count() == 2
    monkeypatch.setenv(threads.ENV, "5")
    assert threads.thread_count() == 5
    threads.set_threads(3)
    assert threads.thread_count() == 3
    monkeypatch.setenv(threads.ENV, "zero")
    threads.set_threads(None)
    with pytest.raises(DerotationError, match=threads.ENV):
        threads.thread_count()


def test_cli_threads_option(monkeypatch):
    import argparse

    from napari_derotation.cli._common import add_threads_argument

    p = argparse.ArgumentParser()
    add_threads_argument(p)
    p.parse_args(["--threads", "3"])
    assert threads.thread_count() == 3
    monkeypatch.delenv(threads.ENV)


def test_output_is_the_same_on_any_number_of_threads():
    rng = np.random.default_rng(0)
    movie = rng.integers(0, 4000, (5, 70, 90)).astype(np.uint16)
    angles = np.linspace(0, 200, 5 * 70)
    threads.set_threads(1)
    one = derotate(movie, angles)
    for n in (2, 3, 7):
        threads.set_threads(n)
        np.testing.assert_array_equal(derotate(movie, angles), one)


def test_a_slow_thread_takes_fewer_units():
    """Work units are taken from a shared counter: a thread that does not
    run leaves its share to the others (no static split)."""
    done = []
    lock = threading.Lock()

    def kernel(counter, total, gate):
        mine = 0
        if threading.current_thread() is not threading.main_thread():
            gate.wait(5)  # this thread starts late
        while True:
            with lock:
                i = int(counter[0])
                counter[0] += 1
            if i >= total:
                break
            mine += 1
        done.append(mine)

    gate = threading.Event()
    t = threading.Timer(0.3, gate.set)
    t.start()
    threads.run(kernel, 1000, gate, threads=2)
    t.join()
    assert sorted(done) == [0, 1000]


def test_meanwhile_runs_while_the_other_threads_work():
    """The next chunk is prepared by this thread while the others derotate
    the current one: ``meanwhile`` runs after they have started, before this
    thread joins them, and its result is returned."""
    started = threading.Event()
    seen = []

    def kernel(counter, total):
        if threading.current_thread() is not threading.main_thread():
            started.set()
        while _take(counter) < total:
            pass

    def meanwhile():
        seen.append(started.wait(5))
        return "next"

    assert threads.run(kernel, 50, threads=2, meanwhile=meanwhile) == "next"
    assert seen == [True]
    # on one thread: after the kernel, the same result
    assert threads.run(kernel, 50, threads=1, meanwhile=lambda: 7) == 7
    assert threads.run(kernel, 50, threads=1) is None


_take_lock = threading.Lock()


def _take(counter) -> int:
    """The next work unit from ``counter``, as the kernels take it."""
    with _take_lock:
        i = int(counter[0])
        counter[0] += 1
    return i


def test_chunks_prepared_ahead_give_the_same_output(monkeypatch):
    """Runs of still and turning frames over many chunks, each prepared
    while the one before is derotated, on one and two threads: the same
    bytes as one chunk on one thread, and progress in order."""
    rng = np.random.default_rng(1)
    movie = rng.integers(0, 4000, (12, 40, 50)).astype(np.uint16)
    angles = np.linspace(0, 300, 12 * 40)
    angles[2 * 40 : 5 * 40] = 0.0  # still frames between turning ones
    angles[9 * 40 :] = 0.0
    threads.set_threads(1)
    one = derotate(movie, angles)
    monkeypatch.setattr(_driver, "CHUNK_PIXELS", 40 * 50 * 2 + 1)
    for n in (1, 2):
        threads.set_threads(n)
        seen: list[int] = []
        got = derotate(movie, angles, progress=lambda d, t, s=seen: s.append(d))
        np.testing.assert_array_equal(got, one)
        assert seen == [2, 4, 6, 8, 10, 12]
        # a strided output and a strided input too
        out = np.zeros((12, 40, 50, 2), np.uint16)[..., 0]
        _driver.derotate_into(movie[:, :, ::-1][:, :, ::-1], angles, out=out)
        np.testing.assert_array_equal(out, one)


def test_progress_reports_only_frames_that_are_written(monkeypatch):
    """Runs overlap (a thread starts the next run before the others finish
    their last unit): a frame is reported done only once every thread is
    done with it, and after a cancel no thread writes any more."""
    rng = np.random.default_rng(2)
    movie = rng.integers(0, 4000, (16, 48, 40)).astype(np.uint16)
    angles = np.linspace(0, 400, 16 * 48)
    want = derotate(movie, angles)
    monkeypatch.setattr(_driver, "CHUNK_PIXELS", 48 * 40 * 2)
    threads.set_threads(2)
    out = np.zeros_like(movie)
    checked = []

    def progress(done, total):
        np.testing.assert_array_equal(out[:done], want[:done])
        checked.append(done)

    _driver.derotate_into(movie, angles, out=out, progress=progress)
    assert checked == list(range(2, 17, 2))
    # the worst case: this thread takes no unit, the other starts late
    real = _kernels.pair_kernel

    def late(mode):
        def kernel(counter, *args):
            if threading.current_thread() is not threading.main_thread():
                time.sleep(0.02)
                real(mode)(counter, *args)

        return kernel

    monkeypatch.setattr(_kernels, "pair_kernel", late)
    out[...] = 0
    checked.clear()
    _driver.derotate_into(movie, angles, out=out, progress=progress)
    assert checked == list(range(2, 17, 2))
    out[...] = 0
    with pytest.raises(Cancelled):
        _driver.derotate_into(movie, angles, out=out, progress=lambda d, t: d < 6)
    after = out.copy()
    time.sleep(0.2)
    np.testing.assert_array_equal(out, after)
    np.testing.assert_array_equal(out[:6], want[:6])


def test_progress_and_cancel_through_frames_that_do_not_turn(monkeypatch):
    """Frames copied as they are (no turn) report progress chunk by chunk,
    after a turning start too, and a cancel stops the copy there."""
    rng = np.random.default_rng(3)
    movie = rng.integers(0, 4000, (12, 32, 32)).astype(np.uint16)
    monkeypatch.setattr(_driver, "CHUNK_PIXELS", 32 * 32 * 2)
    threads.set_threads(2)
    for turning in (0, 3):
        angles = np.zeros(12 * 32)
        angles[: turning * 32] = np.linspace(0, 40, turning * 32)
        seen: list[int] = []
        out = np.zeros_like(movie)
        with pytest.raises(Cancelled):
            _driver.derotate_into(
                movie,
                angles,
                out=out,
                progress=lambda d, t, s=seen: s.append(d) or d < 6,
            )
        assert seen == [2, 4, 6]
        np.testing.assert_array_equal(out[turning:6], movie[turning:6])
        assert not out[8:].any()


def test_compile_notice_once(monkeypatch):
    lines = []
    monkeypatch.setattr(_kernels, "will_compile", lambda kernel, args: True)
    _driver.set_compile_notice(lines.append)
    try:
        movie = np.zeros((2, 8, 8), np.float32)
        angles = np.linspace(0, 10, 16)
        derotate(movie, angles)
        derotate(movie, angles)
    finally:
        _driver.set_compile_notice(None)
    assert len(lines) == 1
    assert lines[0].startswith("compiling the derotation kernels (once, ~")


def test_will_compile_is_false_once_compiled(monkeypatch):
    """Once a kernel ran for a dtype, the guess says no compile is needed
    for the same call (the arguments the engine really passes)."""
    calls = []
    monkeypatch.setattr(_driver, "_notice_compile", lambda *c: calls.extend(c))
    movie = np.zeros((2, 8, 8), np.uint16)
    derotate(movie, np.linspace(0, 10, 16))
    assert [kernel for kernel, _ in calls] == [_kernels.derotate_pairs]
    for kernel, args in calls:
        assert _kernels.will_compile(kernel, args) is False
