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
from ..io import (
    TiffStreamWriter,
    check_not_input,
    file_sha256,
    record,
    sidecar_path,
)
from ..io.atomic import check_writable
from ..io.outputs import open_writer, output_format
from ..io.provenance import write_sidecar
from ..io.sources import open_movie
from ..io.split import SplitWriter
from ._driver import check_parameters, derotate_into, frames_per_chunk
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


def derotate_file(movie_path, angles_per_line, out_path, center=None, *,
                  interpolation="bilinear", fill_value=0, chunk_frames=None,
                  progress=None, angles_source=None, sidecar=True,
                  plane_tilt=0.0, plane_orientation=0.0,
                  plane_output="imaging",
                  params: DerotationParams | None = None, channels=None,
                  planes=None, split: bool = False,
                  overwrite: bool = False,
                  output_options: dict | None = None) -> dict:
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
    behind). Returns the record.

    ``out_path`` may also be an OME-Zarr store (``.zarr``/``.ome.zarr``) or
    an NWB file (``.nwb``; :func:`napari_derotation.io.outputs.open_writer`),
    which keep the record inside; ``movie_path`` may be a Zarr store too.
    ``output_options`` go to the writer (``frame_rate``, ``raw``...).
    """
    params = DerotationParams.build(
        params, center=center, interpolation=interpolation,
        fill_value=fill_value, plane_tilt=plane_tilt,
        plane_orientation=plane_orientation, plane_output=plane_output)
    out_path = Path(out_path)
    with open_movie(movie_path, channels=channels, planes=planes) as src:
        tiff_out = not split and output_format(out_path) == "tif"
        if split:
            check_not_input(out_path, *src.paths)
        else:
            check_outputs(out_path, *src.paths, sidecar=sidecar and tiff_out,
                          overwrite=overwrite)
        options = writer_options(src, movie_path, output_options)
        if src.shape[1:3] == (1, 1) and tiff_out:
            rec = _derotate_frames(src, angles_per_line, out_path, params,
                                   chunk_frames, progress, angles_source,
                                   sidecar, options)
        else:
            rec = _derotate_hyperstack(
                src, angles_per_line, out_path, params, chunk_frames, progress,
                angles_source, sidecar and not split, split, overwrite, options)
    if sidecar and tiff_out:
        write_sidecar(out_path, rec)
    return rec


def check_outputs(out_path, *inputs, sidecar=True,
                  overwrite=False) -> list[Path]:
    """The files a derotation into ``out_path`` writes (the TIFF, with
    ``sidecar`` its record), checked before the first is written: none is
    the input, their folder is writable, none exists unless ``overwrite``."""
    paths = [Path(out_path)] + ([sidecar_path(out_path)] if sidecar else [])
    for p in paths:
        check_not_input(p, *inputs)
    return check_writable(paths, overwrite=overwrite)
def _derotate_frames(src, angles_per_line, out_path, params, chunk_frames,
                     progress, angles_source, checksum, options) -> dict:
    """One channel, one plane: frames straight through the engine."""
    t, _, _, rows, cols = src.shape
    shape = (t, rows, cols)
    angles, params = check_parameters(shape, src.dtype, angles_per_line,
                                      params)
    step = check_chunk_frames(chunk_frames, shape, src.dtype)
    rec = _record(src, out_path, shape, params, angles_source,
                  angles_per_line, checksum, step, options)
    buf = np.empty((step, rows, cols), src.dtype)
    with TiffStreamWriter(out_path, shape, src.dtype) as writer:
        for start in range(0, t, step):
            stop = min(t, start + step)
            chunk = src.read(start, stop).reshape(stop - start, rows, cols)
            dst = buf[: stop - start]
            derotate_into(chunk, angles[start * rows: stop * rows], out=dst,
                          params=params, progress=progress,
                          frame_offset=start, total_frames=t)
            del chunk
            writer.write(dst)
    return rec


def _derotate_hyperstack(src, angles_per_line, out_path, params, chunk_frames,
                         progress, angles_source, checksum, split, overwrite,
                         options) -> dict:
    """Planes and/or channels: each chunk of time points through
    :func:`derotate_hyperstack`, written with the input's axes."""
    t, z, c, rows, cols = src.shape
    angles, params = check_parameters((t * z, rows, cols), src.dtype,
                                      angles_per_line, params)
    step = check_chunk_frames(chunk_frames, src.shape, src.dtype)
    rec = _record(src, out_path, src.shape, params, angles_source,
                  angles_per_line, checksum, step, options)
    rec["angles"]["used"] = t * z * rows
    per_t = z * rows
    buf = np.empty((step, z, c, rows, cols), src.dtype)
    with open_output(out_path, src, split=split, record=rec,
                     overwrite=overwrite,
                     **dict(options, angles_per_line=angles)) as writer:
        for start in range(0, t, step):
            stop = min(t, start + step)
            chunk = src.read(start, stop)
            dst = buf[: stop - start]
            derotate_hyperstack(chunk, angles[start * per_t: stop * per_t],
                                out=dst, params=params, progress=progress,
                                frame_offset=start, total_frames=t)
            del chunk
            writer.write(dst)
    return rec


def open_output(out_path, src, *, split=False, record=None, overwrite=False,
                **options):
    """The writer of a derotated ``(T, Z, C, Y, X)`` movie: ``.write()``
    takes ``(n, Z, C, Y, X)`` chunks in time order. The one place that picks
    it: a ``--split`` folder, or by suffix an ImageJ hyperstack TIFF, an
    OME-Zarr store or an NWB file
    (:func:`~napari_derotation.io.outputs.open_writer`)."""
    if split:
        return SplitWriter(out_path, src.shape, src.dtype,
                           frame_rate=options.get("frame_rate"),
                           channel_names=src.metadata.get("channel_names"),
                           record=record, overwrite=overwrite)
    return open_writer(out_path, src.shape, src.dtype, axes=src.axes,
                       record=record, overwrite=overwrite, **options)


def writer_options(src, movie_path, given=None) -> dict:
    """What a writer may record beyond the frames: the raw movie to link and
    the input's frame rate, frame times and line period, unless ``given``
    says otherwise."""
    options = {"raw_path": movie_path if isinstance(movie_path, str | Path)
               else None}
    for key in ("frame_rate", "frame_timestamps", "line_period"):
        if src.metadata.get(key) is not None:
            options[key] = src.metadata[key]
    options.update({k: v for k, v in (given or {}).items() if v is not None})
    return options


def acquisition_record(frame_rate, nplanes: int = 1,
                       nchannels: int = 1) -> dict:
    """What a next step needs to know of the movie, kept in the record:
    ``frame_rate`` (Hz, or None when unknown) and, under ``suite2p``, the
    ``fs``, ``nplanes`` and ``nchannels`` of suite2p's ops for this file."""
    fs = None if frame_rate is None else float(frame_rate)
    return {"frame_rate": fs,
            "suite2p": {"fs": fs, "nplanes": int(nplanes),
                        "nchannels": int(nchannels)}}


def _record(src, out_path, shape, params, angles_source, angles_per_line,
            checksum, step, options) -> dict:
    extra = {} if src.axes == "TYX" else {"axes": src.axes}
    rec = record(movie_path=src.path, out_path=out_path, shape=shape,
                 dtype=src.dtype, params=params, angles_source=angles_source,
                 n_angles=np.size(angles_per_line), checksum=checksum,
                 chunk_frames=step, **extra)
    t, z, c = src.shape[:3]
    rec.update(acquisition_record(options.get("frame_rate"), z, c))
    if len(src.paths) > 1:
        rec["input"]["files"] = [
            {"path": str(p.resolve()),
             **({"sha256": file_sha256(p)} if checksum else {})}
            for p in src.paths]
    return rec


def derotate_chunk(movie_path, start, stop, angles_per_line,
                   params: DerotationParams) -> np.ndarray:
    """Read frames ``start:stop`` of a single-plane, single-channel movie
    (TIFF or Zarr) and derotate them.

    ``angles_per_line`` holds the angles of those frames' lines only
    (``(stop - start) * rows`` values). What a cluster worker runs: it opens
    the file itself, so only paths and angles travel over the network.
    """
    with open_movie(movie_path) as src:
        rows, cols = src.shape[3:]
        chunk = src.read(start, stop).reshape(stop - start, rows, cols)
    out = np.empty_like(chunk)
    derotate_into(chunk, angles_per_line, out=out, params=params)
    return out


__all__ = ["derotate_file", "derotate_chunk", "default_chunk_frames",
           "check_outputs", "writer_options", "acquisition_record",
           "check_chunk_frames", "frames_per_chunk"]
