"""How many threads the engine's kernels use, and running them.

The count is, first of all that are set:

1. :func:`set_threads` (the CLI's ``--threads``);
2. the environment variable ``NAPARI_DEROTATION_THREADS``;
3. ``NUMBA_NUM_THREADS`` (what a cluster worker limited to one core sets);
4. the CPUs this process may use: its affinity mask
   (``os.sched_getaffinity``) and, in a container or a batch job, its cgroup
   CPU quota (``cpu.max``, or ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``),
   rounded up.

The kernels take their work in small units from a shared counter
(:func:`run`), so a thread that shares its core with another process simply
does fewer units: on a busy machine the work is never slower than on one
thread, and on a quiet one every core is used. While the other threads
start on a chunk of frames, the calling thread prepares the next one (its
per-line tables, its output's memory) and then joins them; when it runs
out of units it starts the next chunk (:func:`start`) instead of waiting
for the others' last ones. So no part of a derotation runs on one core
alone, and no thread waits at the end of each chunk.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import threading
from pathlib import Path

import numpy as np

from ..errors import DerotationError

__all__ = ["available_cpus", "thread_count", "set_threads", "start", "run", "Launch"]

ENV = "NAPARI_DEROTATION_THREADS"

_override: int | None = None
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by this process's cgroup quota, or None (no quota)."""
    try:
        fields = (root / "cpu.max").read_text().split()  # cgroup v2
        if fields and fields[0] != "max":
            return int(fields[0]) / int(fields[1])
        return None
    except (OSError, ValueError, IndexError, ZeroDivisionError):
        pass
    try:  # cgroup v1
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def available_cpus(root: Path = Path("/sys/fs/cgroup")) -> int:
    """The number of CPUs this process may run on (affinity mask, cgroup
    quota), at least 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_quota(root)
    if quota is not None:
        n = min(n, math.ceil(quota))
    return max(1, n)


def _parse(name: str, text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise DerotationError(
            f"{name} must be a whole number of threads >= 1; got {text!r}"
        )
    return n


def set_threads(n: int | None) -> None:
    """Use ``n`` threads from now on (None: back to the automatic choice)."""
    global _override
    _override = None if n is None else _parse("the thread count", str(n))


def thread_count() -> int:
    """The number of threads the kernels use (see the module docstring)."""
    if _override is not None:
        return _override
    text = os.environ.get(ENV, "").strip()
    if text:
        return _parse(ENV, text)
    text = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if text.isdigit() and int(text) >= 1:
        return min(int(text), available_cpus())
    return available_cpus()


def _executor(n: int) -> concurrent.futures.ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < n:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = concurrent.futures.ThreadPoolExecutor(
                n, thread_name_prefix="derotation"
            )
            _pool_size = n
        return _pool


class Launch:
    """A kernel started on the engine's other threads (:func:`start`): this
    thread joins them with :meth:`work` and waits for them with
    :meth:`wait`. Between the two it may start the next launch, so that no
    thread waits for the others' last work unit."""

    def __init__(self, kernel, args, n: int):
        self._kernel = kernel
        self._args = args
        self._counter = np.zeros(1, np.int64)
        self._futures = []
        if n > 1:
            pool = _executor(n - 1)
            self._futures = [
                pool.submit(kernel, self._counter, *args) for _ in range(n - 1)
            ]

    def work(self) -> None:
        """Take work units on this thread until none are left."""
        self._kernel(self._counter, *self._args)

    def wait(self) -> None:
        """Return when the other threads are all done, then raise what the
        first of them raised."""
        concurrent.futures.wait(self._futures)
        for f in self._futures:
            f.result()


def start(kernel, *args, threads: int | None = None) -> Launch:
    """Start ``kernel(counter, *args)`` on ``threads - 1`` of the engine's
    threads; the kernel releases the GIL and takes its work units from the
    shared ``counter`` until none are left."""
    return Launch(kernel, args, thread_count() if threads is None else threads)


def run(kernel, *args, threads: int | None = None, meanwhile=None):
    """Call ``kernel(counter, *args)`` on ``threads`` threads at once (this
    one included) and return when all are done (see :func:`start`).

    ``meanwhile``: called by this thread once the others have started and
    before it joins them, so that its work overlaps theirs; its result is
    returned."""
    launch = start(kernel, *args, threads=threads)
    try:
        result = None if meanwhile is None else meanwhile()
        launch.work()
    finally:
        launch.wait()
    return result
