"""Derotate a movie on a dask.distributed cluster.

The movie is cut into chunks of whole frames. Each worker opens the movie by
its path and reads and derotates its own chunk
(:func:`.files.derotate_chunk`). Then, by the output's format:

- a TIFF: the worker returns the chunk and the client writes the chunks in
  order into one TIFF, so the client's network link and disk bound the run;
- a Zarr store (``.zarr``/``.ome.zarr``): the worker writes its chunk
  straight into the (temporary) store (:func:`derotate_chunk_to_zarr`) and
  returns only the number of frames; the client sends paths, frame ranges
  and the angles of those frames, and renames the store when every chunk is
  in. Chunks are whole Zarr chunks, so no two workers write the same file.

Either way the output appears only when complete and the result is identical
to :func:`napari_derotation.derotate`. Only a few chunks are in flight at a
time, so memory stays bounded on the client and on the workers.

Workers must see the movie (and, for Zarr, the output folder) at the same
path as the client: a shared file system on a cluster. ``distributed`` is
imported only when used (the ``cluster`` extra).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import warnings
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from ..checks import whole_number
from ..errors import Cancelled, DerotationError
from ..io import OutputSet, TiffStreamWriter, write_sidecar
from ..io.zarr_store import ZarrWriter, write_region
from .files import check_chunk_frames, derotate_chunk
from .params import DerotationParams

__all__ = [
    "cluster_client",
    "derotate_file_distributed",
    "run_distributed",
    "check_workers",
    "derotate_chunk_to_zarr",
    "available_cpus",
    "local_workers",
]

#: How long to wait for a scheduler given by address.
CONNECT_TIMEOUT = "10s"


def _distributed():
    try:
        import distributed
    except ImportError:  # pragma: no cover - distributed is in the test env
        raise DerotationError(
            "running on a cluster needs dask.distributed: pip install "
            "'napari-derotation[cluster]'"
        ) from None
    return distributed


def check_workers(workers) -> int | None:
    """``None`` or a whole number >= 1, else :class:`DerotationError`."""
    return None if workers is None else whole_number("workers", workers)


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity, else the count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def local_workers(workers=None) -> int:
    """The worker processes of a local cluster: ``workers`` (default one
    per CPU), at most the CPUs this process may use; asking for more warns
    once and starts that many."""
    cpus = available_cpus()
    workers = check_workers(workers)
    if workers is None:
        return cpus
    if workers > cpus:
        warnings.warn(
            f"{workers} workers asked for; this machine gives "
            f"{cpus} CPU{'s' if cpus > 1 else ''}, so the local "
            f"cluster has {cpus}",
            stacklevel=2,
        )
        return cpus
    return workers


def _quiet_distributed() -> None:
    """No log lines or tracebacks from distributed once the run stops
    early: its comms and nannies complain of every closed connection."""
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


@contextlib.contextmanager
def _workers_ignore_sigint():
    """Worker processes (and the cluster's threads) started in the block
    have SIGINT blocked (the mask is inherited): Ctrl-C in a terminal
    reaches the whole process group, and only this process should handle
    it, by closing the cluster. A Ctrl-C meanwhile waits, not lost."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def cluster_client(
    scheduler=None, workers=None, *, threads_per_worker: int = 1
) -> Iterator:
    """A ``distributed.Client``: connected to ``scheduler`` (an address such as
    ``tcp://10.0.0.5:8786``) or to a new local cluster of ``workers``
    processes (default, and at most, one per CPU this process may use:
    :func:`local_workers`). Closed (with its local cluster) on exit; when
    the block is left by an exception (Ctrl-C, SIGTERM, an error) closed at
    once and without distributed's log lines. An address where no dask
    scheduler answers is one :class:`DerotationError`.
    """
    distributed = _distributed()
    if scheduler and workers:
        raise DerotationError(
            "give either a scheduler address or a number of local workers, not both"
        )
    if scheduler:
        check_workers(workers)
        client = _connect(distributed, str(scheduler))
        try:
            yield client
        except BaseException:
            _quiet_distributed()
            with contextlib.suppress(Exception):
                client.close(timeout=5)
            raise
        client.close()
        return
    n = local_workers(workers)
    cluster = client = None
    log = None
    try:
        with _workers_ignore_sigint(), _workers_stderr() as log:
            cluster = distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=threads_per_worker,
                processes=True,
                dashboard_address=":0",
            )
            client = distributed.Client(cluster)
        yield client
    except BaseException:
        # stopped early (Ctrl-C, SIGTERM, an error): close fast and quietly
        # rather than wait for the workers' tasks
        _quiet_distributed()
        _close(client, cluster, timeout=5)
        raise
    else:
        _close(client, cluster, timeout=30)
    finally:
        if log is not None:
            with contextlib.suppress(OSError):
                os.unlink(log)


@contextlib.contextmanager
def _workers_stderr():
    """Start the local workers with a temporary log file as their stderr
    (yielding its path): what distributed's processes print while they shut
    down (the tracebacks of tasks cancelled by a Ctrl-C) stays out of the
    user's terminal, where the command says what happened in one line."""
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield None
        return
    fd, path = tempfile.mkstemp(prefix="napari-derotation-workers-", suffix=".log")
    try:
        os.dup2(fd, 2)
        yield path
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


def _connect(distributed, address: str):
    """A client of the scheduler at ``address``; anything else that answers
    there, or nothing, is one :class:`DerotationError`."""
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT)
    except Exception as exc:  # comm, handshake, a non-dask server's bytes
        _quiet_distributed()
        why = (
            f"{type(exc).__name__}"
            if isinstance(exc, MemoryError)
            else str(exc).splitlines()[0]
            if str(exc)
            else type(exc).__name__
        )
        raise DerotationError(
            f"cannot connect to a dask scheduler at {address}: {why} (is "
            f"it a dask.distributed scheduler?)"
        ) from None


def _close(client, cluster, *, timeout: float) -> None:
    if client is not None:
        with contextlib.suppress(Exception):
            client.close(timeout=timeout)
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close(timeout=timeout)


def derotate_file_distributed(
    movie_path,
    angles_per_line,
    out_path,
    center=None,
    *,
    scheduler=None,
    workers=None,
    client=None,
    chunk_frames=None,
    progress=None,
    angles_source=None,
    sidecar=True,
    in_flight: int | None = None,
    params: DerotationParams | None = None,
    overwrite=False,
    frame_rate=None,
    **overrides,
) -> dict:
    """Derotate ``movie_path`` into ``out_path`` (``.tif`` or ``.zarr``) on a
    dask cluster.

    Parameters
    ----------
    movie_path, angles_per_line, out_path, center, params, chunk_frames, \
progress, angles_source, sidecar, overwrite, **overrides
        As in :func:`napari_derotation.engine.files.derotate_file`.
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:8786``).
    workers : int, optional
        Without ``scheduler``: the number of worker processes of a local
        cluster started for this call (default: one per CPU).
    client : distributed.Client, optional
        An existing client to use instead (not closed here).
    in_flight : int, optional
        Chunks submitted ahead of the one being written (default: twice the
        number of worker threads); bounds memory.
    overwrite : bool
        Replace an existing Zarr store (else refused).
    frame_rate : float, optional
        Frames per second, kept in the record (and a Zarr store's time axis).

    Returns
    -------
    dict
        The record also written to the JSON sidecar, with a ``cluster`` entry.
    """
    from ..job import describe, output_spec

    if client is not None and (scheduler or workers):
        raise DerotationError("give a client, or a scheduler/workers, not both")
    out = output_spec(
        out_path, overwrite=overwrite, record=sidecar, frame_rate=frame_rate
    )
    job = describe(
        movie_path,
        angles_per_line,
        out,
        params=params,
        center=center,
        angles_source=angles_source,
        chunk_frames=chunk_frames,
        scheduler=scheduler,
        workers=workers if client is None else 1,
        extra_angles_ok=True,
        **overrides,
    )
    return run_distributed(job, progress, client=client, in_flight=in_flight)


def run_distributed(
    job, progress=None, *, client=None, in_flight: int | None = None
) -> dict:
    """Run a :class:`~napari_derotation.job.Job` on a dask cluster (its
    ``scheduler``, or a local cluster of its ``workers``; or ``client``):
    workers read and derotate chunks; a TIFF is written by this process in
    order, an OME-Zarr store by the workers. Returns the record."""
    from ..job import job_record

    movie_path = Path(job.movie.path).resolve()
    out = job.output
    t, _, _, rows, cols = job.movie.shape
    shape, dtype = (t, rows, cols), job.movie.dtype
    angles, params = job.line_angles()
    step = check_chunk_frames(job.chunk_frames, shape, dtype)
    own = client is None
    with OutputSet(overwrite=out.overwrite), contextlib.ExitStack() as stack:
        if own:
            client = stack.enter_context(cluster_client(job.scheduler, job.workers))
        threads = sum(client.nthreads().values()) or 1
        ahead = max(1, in_flight or 2 * threads)
        rec = job_record(
            job,
            checksum=out.record,
            chunk_frames=step,
            cluster={
                "scheduler": client.scheduler_info().get("address"),
                "workers": len(client.nthreads()),
                "threads": threads,
            },
        )
        if out.format == "zarr":
            _run_zarr(
                client,
                movie_path,
                angles,
                params,
                out.path,
                shape,
                dtype,
                step,
                ahead,
                rec,
                progress,
                out.overwrite,
                own,
            )
            return rec
        _run_tiff(
            client,
            movie_path,
            angles,
            params,
            out.path,
            shape,
            dtype,
            step,
            ahead,
            progress,
        )
        if out.record_path is not None:
            write_sidecar(out.path, rec)
    return rec


def _run_tiff(
    client, movie_path, angles, params, out_path, shape, dtype, step, ahead, progress
) -> None:
    """Workers return their chunks; the client writes them in order."""
    n, rows, _ = shape
    starts = iter(range(0, n, step))
    pending: deque = deque()

    def submit_next() -> None:
        start = next(starts, None)
        if start is None:
            return
        stop = min(n, start + step)
        pending.append(
            (
                stop,
                client.submit(
                    derotate_chunk,
                    str(movie_path),
                    start,
                    stop,
                    angles[start * rows : stop * rows],
                    params,
                    pure=False,
                ),
            )
        )

    try:
        with TiffStreamWriter(out_path, shape, dtype) as writer:
            for _ in range(ahead):
                submit_next()
            while pending:
                stop, future = pending.popleft()
                chunk = future.result()
                future.release()
                submit_next()
                writer.write(chunk)
                del chunk
                if progress is not None and progress(stop, n) is False:
                    raise Cancelled(f"derotation cancelled after {stop} of {n} frames")
    finally:
        if pending:
            client.cancel([f for _, f in pending])


def _run_zarr(
    client,
    movie_path,
    angles,
    params,
    out_path,
    shape,
    dtype,
    step,
    ahead,
    rec,
    progress,
    overwrite,
    own=False,
) -> None:
    """Workers write their chunks into the temporary store; the client
    hands out frame ranges, counts completions and renames the store."""
    distributed = _distributed()
    n, rows, _ = shape
    zarr_chunk = ZarrWriter(out_path, shape, dtype).chunk_frames
    zarr_chunk = min(zarr_chunk, step)
    step = -(-step // zarr_chunk) * zarr_chunk  # whole Zarr chunks per task
    rec["chunk_frames"] = step
    with ZarrWriter(
        out_path,
        shape,
        dtype,
        record=rec,
        overwrite=overwrite,
        chunk_frames=zarr_chunk,
        frame_rate=rec.get("frame_rate"),
    ) as writer:
        store = str(writer.temp_path)
        starts = iter(range(0, n, step))
        running = distributed.as_completed(loop=client.loop)
        pending: set = set()

        def submit_next() -> None:
            start = next(starts, None)
            if start is not None:
                stop = min(n, start + step)
                future = client.submit(
                    derotate_chunk_to_zarr,
                    str(movie_path),
                    start,
                    stop,
                    angles[start * rows : stop * rows],
                    params,
                    store,
                    pure=False,
                )
                pending.add(future)
                running.add(future)

        interrupted = True
        try:
            for _ in range(ahead):
                submit_next()
            for future in running:
                done = future.result()
                pending.discard(future)
                future.release()
                writer.mark_written(done)
                submit_next()
                if progress is not None and progress(writer.written, n) is False:
                    raise Cancelled(
                        f"derotation cancelled after {writer.written} of {n} frames"
                    )
            interrupted = False
        except Cancelled:
            interrupted = False  # asked for: the tasks in flight end
            raise
        finally:
            if pending:
                _stop_writers(client, distributed, pending, interrupted and own)


def _stop_writers(client, distributed, pending, shut_down) -> None:
    """Before the temporary store is removed, no task may still write into
    it: a running task cannot be stopped, so let the few in flight end; on
    an interrupt (``shut_down``: Ctrl-C, SIGTERM, an error) the local
    cluster started for this run is shut down at once instead, its workers
    with it."""
    cluster = getattr(client, "cluster", None)
    if shut_down and cluster is not None:
        _quiet_distributed()
        _close(client, cluster, timeout=5)
        return
    distributed.wait(list(pending))


def derotate_chunk_to_zarr(
    movie_path, start, stop, angles_per_line, params, store_path
) -> int:
    """Derotate frames ``start:stop`` and write them into the Zarr store at
    ``store_path``; returns the number of frames (what a worker sends back)."""
    out = derotate_chunk(movie_path, start, stop, angles_per_line, params)
    return write_region(store_path, start, out)
