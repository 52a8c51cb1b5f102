"""Derotate a TIFF file into a TIFF file, a chunk of frames at a time.

Memory stays bounded by the chunk, not the movie, so movies larger than
memory work; frames are independent, so the result is identical to
:func:`napari_derotation.derotate` on the whole movie. The output TIFF and
its JSON sidecar appear only when complete.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..checks import whole_number
from ..io import check_not_input, record, sidecar_path
from ..io.outputs import open_writer, output_format
from ..io.provenance import write_sidecar
from ..io.zarr_store import open_frames
from ._driver import check_parameters, derotate_into, frames_per_chunk
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
                  params: DerotationParams | None = None, overwrite=False,
                  output_options: dict | None = None) -> dict:
    """Derotate the movie ``movie_path`` (TIFF or Zarr) into ``out_path``
    chunk by chunk.

    Writes ``out_path`` (same dtype; ``.tif``, ``.zarr``/``.ome.zarr`` or
    ``.nwb``, :func:`~napari_derotation.io.outputs.open_writer`) and, with
    ``sidecar``, the record with the parameters, versions and the input's
    SHA-256: ``OUT.json`` beside a TIFF, inside a Zarr store or NWB file;
    atomically. ``overwrite`` allows replacing an existing Zarr store or NWB
    file; ``output_options`` go to the writer (``frame_rate``, ``raw``...).
    Memory use is about two chunks of ``chunk_frames`` frames (default: about
    64 MB of movie), whatever the movie's length. ``progress(done_frames,
    total_frames)`` may return ``False`` to cancel (raises
    :class:`Cancelled`, nothing is left behind). Returns the record.
    """
    params = DerotationParams.build(
        params, center=center, interpolation=interpolation,
        fill_value=fill_value, plane_tilt=plane_tilt,
        plane_orientation=plane_orientation, plane_output=plane_output)
    out_path = Path(out_path)
    tiff_out = output_format(out_path) == "tif"
    check_not_input(out_path, movie_path)
    if sidecar and tiff_out:
        check_not_input(sidecar_path(out_path), movie_path)
    with open_frames(movie_path) as mf:
        n, rows, cols = mf.shape
        angles, params = check_parameters(mf.shape, mf.dtype, angles_per_line,
                                          params)
        step = check_chunk_frames(chunk_frames, mf.shape, mf.dtype)
        rec = record(movie_path=movie_path, out_path=out_path, shape=mf.shape,
                     dtype=mf.dtype, params=params, angles_source=angles_source,
                     n_angles=np.size(angles_per_line), checksum=sidecar,
                     chunk_frames=step)
        buf = np.empty((step, rows, cols), mf.dtype)
        options = writer_options(mf, angles, movie_path, output_options)
        rec.update(acquisition_record(options.get("frame_rate")))
        with open_writer(out_path, mf.shape, mf.dtype, record=rec,
                         overwrite=overwrite, **options) as writer:
            for start in range(0, n, step):
                stop = min(n, start + step)
                chunk = mf.read(start, stop)
                dst = buf[: stop - start]
                derotate_into(chunk, angles[start * rows: stop * rows], out=dst,
                              params=params, progress=progress,
                              frame_offset=start, total_frames=n)
                del chunk
                writer.write(dst)
    if sidecar and tiff_out:
        write_sidecar(out_path, rec)
    return rec


def writer_options(source, angles, movie_path, given=None) -> dict:
    """What a writer may record beyond the frames: the angles used, the raw
    movie to link, and the input's frame rate unless ``given`` says."""
    options = {"angles_per_line": angles, "raw_path": movie_path}
    meta = getattr(source, "metadata", None) or {}
    for key in ("frame_rate", "frame_timestamps", "line_period"):
        if meta.get(key) is not None:
            options[key] = meta[key]
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


def derotate_chunk(movie_path, start, stop, angles_per_line,
                   params: DerotationParams) -> np.ndarray:
    """Read frames ``start:stop`` of a TIFF or Zarr movie and derotate them.

    ``angles_per_line`` holds the angles of those frames' lines only
    (``(stop - start) * rows`` values). What a cluster worker runs: it opens
    the file itself, so only paths and angles travel over the network.
    """
    with open_frames(movie_path) as mf:
        chunk = mf.read(start, stop)
    out = np.empty_like(chunk)
    derotate_into(chunk, angles_per_line, out=out, params=params)
    return out


__all__ = ["derotate_file", "derotate_chunk", "default_chunk_frames",
           "writer_options", "acquisition_record",
           "check_chunk_frames", "frames_per_chunk"]
