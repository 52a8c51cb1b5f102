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
from ..io import MovieFile, TiffStreamWriter, check_not_input, record, sidecar_path
from ..io.atomic import check_writable
from ..io.provenance import write_sidecar
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
                  params: DerotationParams | None = None,
                  overwrite: bool = False) -> dict:
    """Derotate the TIFF ``movie_path`` into ``out_path`` chunk by chunk.

    Writes ``out_path`` (same dtype) and, with ``sidecar``,
    ``OUT.derotation.json`` with the parameters, versions and the input's
    SHA-256; both atomically. Existing files are refused, before anything is
    written, unless ``overwrite``.
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
    check_outputs(out_path, movie_path, sidecar=sidecar, overwrite=overwrite)
    with MovieFile(movie_path) as mf:
        n, rows, cols = mf.shape
        angles, params = check_parameters(mf.shape, mf.dtype, angles_per_line,
                                          params)
        step = check_chunk_frames(chunk_frames, mf.shape, mf.dtype)
        rec = record(movie_path=movie_path, out_path=out_path, shape=mf.shape,
                     dtype=mf.dtype, params=params, angles_source=angles_source,
                     n_angles=np.size(angles_per_line), checksum=sidecar,
                     chunk_frames=step)
        buf = np.empty((step, rows, cols), mf.dtype)
        with TiffStreamWriter(out_path, mf.shape, mf.dtype) as writer:
            for start in range(0, n, step):
                stop = min(n, start + step)
                chunk = mf.read(start, stop)
                dst = buf[: stop - start]
                derotate_into(chunk, angles[start * rows: stop * rows], out=dst,
                              params=params, progress=progress,
                              frame_offset=start, total_frames=n)
                del chunk
                writer.write(dst)
    if sidecar:
        write_sidecar(out_path, rec)
    return rec


def check_outputs(out_path, movie_path, *, sidecar=True,
                  overwrite=False) -> list[Path]:
    """The files a derotation into ``out_path`` writes (the TIFF, with
    ``sidecar`` its record), checked before the first is written: none is
    the input, their folder is writable, none exists unless ``overwrite``."""
    paths = [Path(out_path)] + ([sidecar_path(out_path)] if sidecar else [])
    for p in paths:
        check_not_input(p, movie_path)
    return check_writable(paths, overwrite=overwrite)


def derotate_chunk(movie_path, start, stop, angles_per_line,
                   params: DerotationParams) -> np.ndarray:
    """Read frames ``start:stop`` of a TIFF and derotate them.

    ``angles_per_line`` holds the angles of those frames' lines only
    (``(stop - start) * rows`` values). What a cluster worker runs: it opens
    the file itself, so only paths and angles travel over the network.
    """
    with MovieFile(movie_path) as mf:
        chunk = mf.read(start, stop)
    out = np.empty_like(chunk)
    derotate_into(chunk, angles_per_line, out=out, params=params)
    return out


__all__ = ["derotate_file", "derotate_chunk", "default_chunk_frames",
           "check_outputs",
           "check_chunk_frames", "frames_per_chunk"]
