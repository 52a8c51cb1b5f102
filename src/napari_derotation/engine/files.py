"""Derotate a TIFF movie (or a sequence of them) into a TIFF, a chunk of
time points at a time.

Memory stays bounded by the chunk, not the movie, so movies larger than
memory work; frames are independent, so the result is identical to
:func:`napari_derotation.derotate` on the whole movie. The output TIFF and
its JSON sidecar appear only when complete.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..checks import whole_number
from ..io import OutputSet, TiffStreamWriter
from ..io.outputs import open_writer
from ..io.provenance import write_sidecar
from ..io.sources import open_movie
from ..io.split import SplitWriter
from ._driver import derotate_into, frames_per_chunk
from .hyperstack import derotate_hyperstack
from .params import DerotationParams

#: Default bytes of movie per chunk.
CHUNK_BYTES = 64 * 2**20


def default_chunk_frames(shape, dtype) -> int:
    frame = int(np.prod(shape[1:])) * np.dtype(dtype).itemsize
    return max(1, min(CHUNK_BYTES // frame, shape[0]))


def check_chunk_frames(chunk_frames, shape, dtype) -> int:
    """Frames per chunk: ``chunk_frames`` (>= 1) or about 64 MB, at most all."""
    if chunk_frames is None:
        return default_chunk_frames(shape, dtype)
    return min(whole_number("chunk_frames", chunk_frames), shape[0])


def derotate_file(
    movie_path,
    angles_per_line,
    out_path,
    center=None,
    *,
    params: DerotationParams | None = None,
    chunk_frames=None,
    progress=None,
    angles_source=None,
    sidecar=True,
    channels=None,
    planes=None,
    split: bool = False,
    overwrite: bool = False,
    output_options: dict | None = None,
    **overrides,
) -> dict:
    """Derotate the movie ``movie_path`` into ``out_path`` chunk by chunk.

    ``movie_path`` is a TIFF, a folder or glob of TIFFs or a list of files
    of one acquisition (:func:`napari_derotation.io.sources.open_movie`;
    ``channels``/``planes`` interpret plain stacks of interleaved pages).
    Every channel and plane is derotated with the same per-line angles:
    line ``row`` of plane ``z`` at time ``t`` uses
    ``angles_per_line[(t * Z + z) * rows + row]``.

    Writes ``out_path`` (same dtype; an ImageJ hyperstack keeping the
    input's axes when it has planes or channels) and, with ``sidecar``,
    ``OUT.derotation.json`` with the parameters, versions and the input's
    SHA-256; both atomically, and existing files are refused before
    anything is written unless ``overwrite``. With ``split``, ``out_path``
    is a folder with one TIFF per plane and channel
    (:mod:`napari_derotation.io.split`). Memory use is about two chunks of
    ``chunk_frames`` time points (default: about 64 MB of movie), whatever
    the movie's length. ``progress(done, total)`` (time points) may return
    ``False`` to cancel (raises :class:`Cancelled`, nothing is left
    behind). ``params`` and the field keywords (``center``,
    ``interpolation``, ``fill_value``, ``plane_tilt``...; each applied when
    given) as in :func:`napari_derotation.derotate`. Returns the record.

    ``out_path`` may also be an OME-Zarr store (``.zarr``/``.ome.zarr``) or
    an NWB file (``.nwb``; :func:`napari_derotation.io.outputs.open_writer`),
    which keep the record inside; ``movie_path`` may be a Zarr store too.
    ``output_options`` go to the writer (``frame_rate``, ``raw``...).

    This is :func:`napari_derotation.job.describe` then
    :func:`napari_derotation.job.run`.
    """
    from ..job import describe, output_spec, run

    out = output_spec(
        out_path,
        split=split,
        overwrite=overwrite,
        record=sidecar,
        **(output_options or {}),
    )
    job = describe(
        movie_path,
        angles_per_line,
        out,
        params=params,
        center=center,
        angles_source=angles_source,
        channels=channels,
        planes=planes,
        chunk_frames=chunk_frames,
        extra_angles_ok=True,
        **overrides,
    )
    return run(job, progress)


def run_local(job, progress=None) -> dict:
    """Run a :class:`~napari_derotation.job.Job` in this process: each chunk
    of time points read, derotated and written in order; returns the
    record (written beside a TIFF output, inside a store or NWB file)."""
    from ..job import job_record

    out = job.output
    # the movie and its record are one set: both appear, or neither does
    with OutputSet(overwrite=out.overwrite):
        with job.movie.open_source() as src:
            options = writer_options(src, job.movie.source, out.options)
            step = check_chunk_frames(job.chunk_frames, src.shape, src.dtype)
            rec = job_record(job, checksum=out.record, chunk_frames=step)
            if src.shape[1:3] == (1, 1) and out.format == "tif":
                _derotate_frames(src, job, step, out.path, progress)
            else:
                _derotate_hyperstack(src, job, step, rec, options, progress)
        if out.record_path is not None:
            write_sidecar(out.path, rec)
    return rec


def _derotate_frames(src, job, step, out_path, progress) -> None:
    """One channel, one plane: frames straight through the engine."""
    t, _, _, rows, cols = src.shape
    angles, params = job.line_angles()
    buf = np.empty((step, rows, cols), src.dtype)
    with TiffStreamWriter(out_path, (t, rows, cols), src.dtype) as writer:
        for start in range(0, t, step):
            stop = min(t, start + step)
            chunk = src.read(start, stop).reshape(stop - start, rows, cols)
            dst = buf[: stop - start]
            derotate_into(
                chunk,
                angles[start * rows : stop * rows],
                out=dst,
                params=params,
                progress=progress,
                frame_offset=start,
                total_frames=t,
            )
            del chunk
            writer.write(dst)


def _derotate_hyperstack(src, job, step, rec, options, progress) -> None:
    """Planes and/or channels: each chunk of time points through
    :func:`derotate_hyperstack`, written with the input's axes."""
    t, z, c, rows, cols = src.shape
    angles, params = job.line_angles()
    per_t = z * rows
    buf = np.empty((step, z, c, rows, cols), src.dtype)
    out = job.output
    with open_output(
        out.path,
        src,
        split=out.format == "split",
        record=rec,
        overwrite=out.overwrite,
        **dict(options, angles_per_line=job.used_angles),
    ) as writer:
        for start in range(0, t, step):
            stop = min(t, start + step)
            chunk = src.read(start, stop)
            dst = buf[: stop - start]
            derotate_hyperstack(
                chunk,
                angles[start * per_t : stop * per_t],
                out=dst,
                params=params,
                progress=progress,
                frame_offset=start,
                total_frames=t,
            )
            del chunk
            writer.write(dst)


def open_output(out_path, src, *, split=False, record=None, overwrite=False, **options):
    """The writer of a derotated ``(T, Z, C, Y, X)`` movie: ``.write()``
    takes ``(n, Z, C, Y, X)`` chunks in time order. The one place that picks
    it: a ``--split`` folder, or by suffix an ImageJ hyperstack TIFF, an
    OME-Zarr store or an NWB file
    (:func:`~napari_derotation.io.outputs.open_writer`)."""
    if split:
        return SplitWriter(
            out_path,
            src.shape,
            src.dtype,
            frame_rate=options.get("frame_rate"),
            channel_names=src.metadata.get("channel_names"),
            record=record,
            overwrite=overwrite,
        )
    return open_writer(
        out_path,
        src.shape,
        src.dtype,
        axes=src.axes,
        record=record,
        overwrite=overwrite,
        **options,
    )


def writer_options(src, movie_path, given=None) -> dict:
    """What a writer may record beyond the frames: the raw movie to link and
    the input's frame rate, frame times and line period, unless ``given``
    says otherwise."""
    options = {"raw_path": movie_path if isinstance(movie_path, str | Path) else None}
    for key in ("frame_rate", "frame_timestamps", "line_period"):
        if src.metadata.get(key) is not None:
            options[key] = src.metadata[key]
    options.update({k: v for k, v in (given or {}).items() if v is not None})
    return options


def derotate_chunk(
    movie_path, start, stop, angles_per_line, params: DerotationParams
) -> np.ndarray:
    """Read frames ``start:stop`` of a single-plane, single-channel movie
    (TIFF or Zarr) and derotate them.

    ``angles_per_line`` holds the angles of those frames' lines only
    (``(stop - start) * rows`` values). What a cluster worker runs: it opens
    the file itself, so only paths and angles travel over the network.
    """
    # the job checked the store's chunks when it was described
    with open_movie(movie_path, allow_missing_chunks=True) as src:
        rows, cols = src.shape[3:]
        chunk = src.read(start, stop).reshape(stop - start, rows, cols)
    out = np.empty_like(chunk)
    derotate_into(chunk, angles_per_line, out=out, params=params)
    return out


__all__ = [
    "derotate_file",
    "run_local",
    "derotate_chunk",
    "default_chunk_frames",
    "writer_options",
    "check_chunk_frames",
    "frames_per_chunk",
]
