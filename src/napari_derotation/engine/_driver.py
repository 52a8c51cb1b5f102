"""The line-by-line derotation engine.

A line-scanning microscope acquires a frame one line at a time. When the
sample rotates during acquisition, each line is taken at its own angle, so a
frame is a fan of lines cut from a turning sample. :func:`derotate` rebuilds
every frame as the sample looked at angle 0.

Semantics (the same for every frame, whatever happened in other frames):

* Every output pixel takes the value of the raw frame *at the place where the
  scan passed over that point of the sample during that frame*. It is found
  by inverse mapping: the fractional line ``s`` whose rotated scan line goes
  through the pixel, and the position ``x`` along it; the raw frame is then
  sampled at ``(s, x)`` (bilinear or nearest). The angle between two lines is
  interpolated, so the output has no holes.
* Frames are independent: a frame only uses its own lines. A rotation that
  starts or ends mid-frame, or exactly on a frame boundary, needs no special
  case: lines at angle 0 map to themselves, so they stay exactly as acquired,
  and a frame whose lines are all at angle 0 is copied unchanged.
* Pixels that no scanned line of the frame passed over (corners that were
  outside the field of view while rotated) get ``fill_value``.
* Where the scan passed over a pixel more than once in one frame (very fast
  rotation), the crossing nearest the neighbouring pixel's is used.
* Speed: ``(s, x)`` is solved exactly every 8 pixels and interpolated in
  between wherever the map is smooth (no kink in the angle trace nearby,
  the scan's ends included, and the exact solutions in between agree);
  elsewhere on a 4-pixel grid where that is smooth, else at every pixel.
  The tests bound the shortcut at 0.1 px (median under 0.02 px). Movies of
  16-bit or narrower integers and float32 are blended in float32, others in
  float64.

Angle sign and centre follow the reference package ``derotation``: a movie
made by its ``Rotator(angles, stack, center_offset=(dr, dc))`` is corrected
by ``derotate(movie, angles, center=(rows // 2 + dr, cols // 2 + dc))``.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import mmap
import sys
import threading
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from ..errors import Cancelled, DerotationError
from ..frames import delay_angles, unturned_frames
from ..progress import Progress
from . import _kernels, threads
from .params import (
    DerotationParams,
    KernelArgs,
    check_center,
    default_center,
    plane_matrix,
)

__all__ = [
    "derotate_into",
    "check_movie",
    "check_angles",
    "check_center",
    "check_parameters",
    "line_angles",
    "default_center",
    "plane_matrix",
    "warmup",
    "DerotationParams",
]

#: Kernels run one at a time (a GUI preview while a worker derotates): each
#: already uses every core it may (see :mod:`.threads`).
KERNEL_LOCK = threading.Lock()

#: Pixels per kernel call: bounds the scratch memory and sets how often
#: ``progress`` is called.
CHUNK_PIXELS = 1 << 21


def check_movie(movie) -> np.ndarray:
    """Return ``movie`` as an array (no copy), or raise naming what is wrong."""
    if not hasattr(movie, "shape") or not hasattr(movie, "dtype"):
        movie = np.asarray(movie)
    if movie.ndim != 3:
        raise DerotationError(
            f"movie must be 3-D (frames, rows, cols); got {movie.ndim}-D "
            f"with shape {tuple(movie.shape)}"
        )
    if 0 in movie.shape:
        raise DerotationError(
            f"movie is empty: shape {tuple(movie.shape)} (frames, rows, cols)"
        )
    if movie.shape[1] * movie.shape[2] >= 2**31:
        raise DerotationError(
            f"frames must hold fewer than 2**31 pixels; got {movie.shape[1]} x "
            f"{movie.shape[2]}"
        )
    dt = np.dtype(movie.dtype)
    if dt.kind not in "uif" or dt.itemsize > 8:
        raise DerotationError(
            f"movie must hold real numbers (integer or float); got dtype {dt}"
        )
    if not dt.isnative:
        # e.g. a big-endian TIFF: the kernels read native byte order only
        movie = np.asarray(movie).astype(dt.newbyteorder("="))
    return movie


def check_angles(
    angles_per_line, n_lines: int, rows: int | None = None, delay: float = 0.0
) -> np.ndarray:
    """Return the first ``n_lines`` angles as float64, or raise.

    ``rows`` (lines per frame) only makes error messages name the frame.
    ``delay`` (lines): the angles of the lines with the signal's delay
    applied (:func:`napari_derotation.frames.delay_angles`; recorded values
    beyond ``n_lines`` are used when finite, else the last is held).
    """
    a = np.asarray(angles_per_line)
    if a.ndim != 1:
        a = np.squeeze(a)
    if a.ndim != 1:
        raise DerotationError(
            f"angles_per_line must be 1-D (one angle per scanned line); got "
            f"shape {np.shape(angles_per_line)}"
        )
    if a.dtype.kind not in "uif":
        raise DerotationError(
            f"angles_per_line must be numbers in degrees; got dtype {a.dtype}"
        )
    if a.size < n_lines:
        raise DerotationError(
            f"angles_per_line has {a.size} values but the movie has "
            f"{n_lines} lines (frames x rows); expected at least {n_lines}"
        )
    full = a
    a = a[:n_lines].astype(np.float64, copy=False)
    bad = ~np.isfinite(a)
    if bad.any():
        first = int(np.argmax(bad))
        where = f"line {first}"
        if rows:
            where += f" (frame {first // rows}, row {first % rows})"
        raise DerotationError(
            f"angles_per_line must be finite; found {int(bad.sum())} NaN or "
            f"infinite values, the first at {where}"
        )
    if delay:
        extra = np.asarray(
            full[n_lines : n_lines + int(np.ceil(abs(delay))) + 1], np.float64
        )
        if extra.size and np.isfinite(extra).all():
            return delay_angles(np.concatenate([a, extra]), delay)[:n_lines]
        return delay_angles(a, delay)
    return a


#: A line where the angle's second difference exceeds this (degrees) is a
#: kink or a jump: pixels scanned near it are solved exactly, not interpolated.
ROUGH_DEGREES = 0.02


def _tables(angles_deg: np.ndarray, n_frames: int, rows: int):
    """Per-line cos/sin, "rough" lines and the largest turn between lines,
    per frame, for :func:`._kernels.derotate_frames`."""
    a = angles_deg.reshape(n_frames, rows)
    rad = np.deg2rad(a)
    if rows > 1:
        # turn between consecutive lines, wrapped to (-pi, pi]
        step = np.diff(rad, axis=1)
        step = (step + np.pi) % (2 * np.pi) - np.pi
        maxstep = np.abs(step).max(axis=1)
    else:
        step = np.zeros((n_frames, 0))
        maxstep = np.zeros(n_frames)
    rough = np.zeros(a.shape, np.bool_)
    if rows > 2:
        kink = np.abs(np.diff(step, axis=1)) > np.deg2rad(ROUGH_DEGREES)
        rough[:, 1:-1] = kink
        rough[:, :-2] |= kink
        rough[:, 2:] |= kink
    if rows > 1:
        # beyond the first and last lines the scan is continued at their
        # angles: a kink there too when the angle was still changing
        limit = np.deg2rad(ROUGH_DEGREES)
        rough[:, :2] |= (np.abs(step[:, 0]) > limit)[:, None]
        rough[:, -2:] |= (np.abs(step[:, -1]) > limit)[:, None]
    return np.cos(rad), np.sin(rad), rough, maxstep


def check_parameters(
    shape, dtype, angles_per_line, params: DerotationParams
) -> tuple[np.ndarray, DerotationParams]:
    """Check the angles and ``params`` for a movie of ``shape`` and ``dtype``
    at once, before any work or output starts: the angles of the ``frames *
    rows`` lines as float64 (with ``params.angle_delay`` applied: the one
    place every derotation applies it, see :func:`line_angles`) and the
    parameters resolved for the movie and for those angles (see
    :meth:`DerotationParams.resolve`; their ``angle_delay`` is 0, so chunks
    handed on are not delayed twice). Raises :class:`DerotationError`
    naming the first bad one."""
    angles, params = line_angles(angles_per_line, shape, params)
    return angles, params.resolve(shape, dtype)


def line_angles(
    angles_per_line, shape, params: DerotationParams
) -> tuple[np.ndarray, DerotationParams]:
    """``(angles, params)`` for the lines of a movie of ``shape`` (frames in
    scan order, rows, ...): the recorded angles checked and delayed by
    ``params.angle_delay`` (line ``i`` takes the recorded angle of line ``i
    - angle_delay``), and ``params`` without the delay, for those angles.
    Every path (:func:`derotate`, :func:`derotate_into`, lazy, files,
    cluster, hyperstack, the widget's preview) goes through it once."""
    n, rows = shape[0], shape[1]
    angles = check_angles(angles_per_line, n * rows, rows, delay=params.angle_delay)
    return angles, params.without_delay()


def frames_per_chunk(shape: Sequence[int]) -> int:
    """Frames handled per kernel call (and per ``progress`` call)."""
    return max(1, CHUNK_PIXELS // (shape[-2] * shape[-1]))


def derotate_into(
    movie,
    angles_per_line,
    center=None,
    out=None,
    *,
    params: DerotationParams | None = None,
    progress: Progress | None = None,
    frame_offset: int = 0,
    total_frames: int | None = None,
    _fresh: bool = False,
    **overrides,
) -> None:
    """Derotate ``movie`` into the preallocated ``out`` (same shape and dtype).

    The engine behind :func:`derotate`, for callers that own the output (a
    memory-mapped file, a napari layer's buffer). Arguments are validated as
    in :func:`derotate`. ``frame_offset``/``total_frames`` only shift what
    ``progress`` reports, for callers that process a movie in pieces.
    """
    params = DerotationParams.build(params, center=center, **overrides)
    movie = check_movie(movie)
    n, rows, cols = movie.shape
    if (
        out is None
        or tuple(out.shape) != tuple(movie.shape)
        or out.dtype != movie.dtype
    ):
        found = "None" if out is None else f"{tuple(out.shape)} {out.dtype}"
        raise DerotationError(
            f"out must match the movie: expected {tuple(movie.shape)} "
            f"{movie.dtype}, got {found}"
        )
    if _overlaps(movie, out):
        raise DerotationError(
            "out must not share memory with the movie (a derotation reads each "
            "raw frame whole while it writes): pass a new array, e.g. "
            "numpy.empty_like(movie)"
        )
    angles, params = check_parameters(movie.shape, movie.dtype, angles_per_line, params)
    k = params.kernel_args(movie.dtype)
    wk, tab = _kernels.work_tables(movie.dtype, rows, cols, k.fill, k.lo, k.hi)
    total = n if total_frames is None else total_frames
    step = frames_per_chunk(movie.shape)
    # frames whose lines are all at angle 0 are copied as they are (unless
    # the plane is tilted); the kernel gets the runs of turning frames
    still = (
        unturned_frames(angles, n, rows)
        if params.identity_plane
        else np.zeros(n, np.bool_)
    )
    # (a, b, copy, frames done after it or None): runs of frames to copy
    # or to derotate, chunk by chunk
    steps = []
    for start in range(0, n, step):
        stop = min(n, start + step)
        runs = _runs(still, start, stop)
        steps += [(*run, None) for run in runs[:-1]]
        steps.append((*runs[-1], stop))
    turning = iter([(a, b) for a, b, copy, _ in steps if not copy])

    def prepare_next() -> _Run | None:
        ab = next(turning, None)
        if ab is None:
            return None
        return _prepare_run(movie, angles, out, k, wk, tab, _fresh, *ab)

    def report(done: int) -> None:
        if progress is not None and progress(frame_offset + done, total) is False:
            raise Cancelled(
                f"derotation cancelled after {frame_offset + done} of {total} frames"
            )

    # Each run is started on the other threads, the next one prepared here
    # meanwhile, then this thread joins in. It does not wait for the others'
    # last work unit: it starts the next run (or copies the next frames),
    # and waits for the previous run only then. Frames done are reported
    # once no thread works on them (``held``: waiting for ``running``).
    ready = None
    running: _Started | None = None
    held: list[int] = []
    try:
        for a, b, copy, done in steps:
            if copy:
                out[a:b] = movie[a:b]
                previous, running = running, None
            else:
                started, ready = _start_run(ready or prepare_next(), prepare_next)
                previous, running = running, started
            _finish_run(previous)
            for d in held:
                report(d)
            held.clear()
            if done is not None:
                if running is None:
                    report(done)
                else:
                    held.append(done)
        _finish_run(running)
        running = None
        for d in held:
            report(d)
    finally:
        if running is not None:  # an error: no thread writes once we return
            running.launch.wait()


def _overlaps(a, b) -> bool:
    """True when arrays ``a`` and ``b`` share memory (exactly, not only
    their bounds: two channels of one interleaved buffer do not)."""
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return False
    return bool(np.may_share_memory(a, b) and np.shares_memory(a, b))


def _runs(flags: np.ndarray, start: int, stop: int):
    """``(a, b, flag)`` for each run of equal ``flags`` in [start, stop)."""
    cuts = np.flatnonzero(flags[start + 1 : stop] != flags[start : stop - 1])
    edges = [start, *(start + 1 + cuts).tolist(), stop]
    return [(a, b, bool(flags[a])) for a, b in itertools.pairwise(edges)]


class _Run(NamedTuple):
    """Frames of a movie ready for the kernel (see :func:`_prepare_run`)."""

    kernel: Callable
    args: tuple
    buf: np.ndarray
    dst: np.ndarray


def _prepare_run(
    movie, angles, out, k: KernelArgs, wk, tab, fresh, start, stop
) -> _Run:
    """Everything the kernel needs for frames ``start:stop`` of ``movie``
    into ``out``: the frames read, the per-line tables, the output's memory
    faulted in (``fresh``: it was never written; see :func:`fault_in`).
    Done while the threads derotate the frames before (:func:`_start_run`),
    so that none of it is serial."""
    rows = movie.shape[1]
    cos_t, sin_t, rough, maxstep = _tables(
        angles[start * rows : stop * rows], stop - start, rows
    )
    src = np.ascontiguousarray(movie[start:stop])
    if src.dtype == np.float16:
        # the compiled kernels have no float16: work on a float32 copy
        src = src.astype(np.float32)
    dst = out[start:stop]
    if fresh:
        fault_in(dst)
    buf = dst
    if not (dst.flags.c_contiguous and dst.flags.writeable and dst.dtype == src.dtype):
        buf = np.empty_like(src)
        fault_in(buf)
    args = (
        src,
        cos_t,
        sin_t,
        rough,
        maxstep,
        k.cr,
        k.cc,
        k.plane,
        k.mode,
        k.fill,
        k.lo,
        k.hi,
        k.is_int,
        wk,
        tab,
        buf,
    )
    return _Run(_kernels.pair_kernel(k.mode), args, buf, dst)


#: A work counter past every unit: the kernel returns at once.
_NO_UNIT_LEFT = 1 << 62


class _Started(NamedTuple):
    """A run whose work this thread has done; the others may not have."""

    launch: threads.Launch
    job: _Run


def _start_run(
    job: _Run, meanwhile: Callable[[], _Run | None]
) -> tuple[_Started, _Run | None]:
    """Start ``job`` on the engine's threads, call ``meanwhile()`` (the next
    run's preparation) while they work, then join them until no work unit is
    left. Returns the run started and what ``meanwhile`` returned."""
    with KERNEL_LOCK:
        _notice_compile((job.kernel, (np.zeros(1, np.int64), *job.args)))
        # Compiled, or loaded from numba's cache, on this thread before any
        # other calls it: numba's loading is not safe to race (two threads
        # at once failed in it), and a Ctrl-C in the middle of it must not
        # leave another thread blocked there. (No work unit is left to take.)
        job.kernel(np.full(1, _NO_UNIT_LEFT, np.int64), *job.args)
        launch = threads.start(job.kernel, *job.args)
        try:
            nxt = meanwhile()
            launch.work()
        except BaseException:
            launch.wait()
            raise
    return _Started(launch, job), nxt


def _finish_run(started: _Started | None) -> None:
    """Wait until every thread is done with a started run, and copy its
    frames to their place when they were derotated in a buffer."""
    if started is None:
        return
    started.launch.wait()
    job = started.job
    if job.buf is not job.dst:
        job.dst[...] = job.buf


#: Called with one line when a derotation is about to compile its kernels
#: (the CLI prints it on stderr; see :func:`set_compile_notice`).
_compile_notice: Callable[[str], None] | None = None

#: Seconds a cold compile of one dtype's kernels takes here, roughly (quiet
#: 2-core machine; ``benchmarks/bench_cold_start.py`` measures it).
COMPILE_SECONDS = 15


def set_compile_notice(notice: Callable[[str], None] | None) -> None:
    """Have ``notice(line)`` called once per process, before the first
    derotation that must compile kernels missing from numba's cache."""
    global _compile_notice
    _compile_notice = notice


def _notice_compile(*calls) -> None:
    global _compile_notice
    notice = _compile_notice
    if notice is None:
        return
    if any(_kernels.will_compile(kernel, args) for kernel, args in calls):
        _compile_notice = None
        notice(f"compiling the derotation kernels (once, ~{COMPILE_SECONDS} s)")


#: Linux's madvise advice that faults pages in, writable, without writing.
_MADV_POPULATE_WRITE = 23


@functools.cache
def _madvise():
    """libc's ``madvise``, or None where there is none."""
    try:
        madvise = ctypes.CDLL(None).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return madvise


def fault_in(array: np.ndarray) -> None:
    """Fault a new array's memory in before the engine's threads write it.

    Page faults taken by two threads at once cost more than the same faults
    taken in one pass (10-15% of a derotation at 256x256 here). On Linux
    5.14+ the kernel maps the pages without a write; elsewhere, or if it
    refuses, zeros are written.
    """
    madvise = _madvise() if sys.platform.startswith("linux") else None
    if madvise is not None and array.nbytes >= 1 << 22:
        page = mmap.PAGESIZE
        addr = array.ctypes.data
        start = -(-addr // page) * page
        end = (addr + array.nbytes) // page * page
        if madvise(start, end - start, _MADV_POPULATE_WRITE) == 0:
            return
    array.fill(0)


def warmup(dtypes=(np.uint16, np.float32)) -> None:
    """Compile the engine for movies of ``dtypes`` now (a few seconds each
    the first time after installing, well under a second once cached), so
    that the first real call, e.g. a live preview in the GUI, does not wait.
    """
    angles = np.linspace(0.0, 10.0, 4)
    for dt in dtypes:
        movie = np.zeros((1, 4, 4), dt)
        derotate_into(movie, angles, out=np.empty_like(movie))
