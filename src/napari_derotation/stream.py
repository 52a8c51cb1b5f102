"""Derotate a TIFF file into a TIFF file, a chunk of frames at a time.

Memory stays bounded by the chunk, not the movie, so movies larger than
memory work; frames are independent, so the result is identical to
:func:`napari_derotation.derotate` on the whole movie. The output TIFF and
its JSON sidecar appear only when complete.
"""

from __future__ import annotations

import datetime
import platform
import sys
from pathlib import Path

import numpy as np

from . import __version__
from .engine import check_parameters, derotate_into, frames_per_chunk
from .errors import DerotationError
from .io import (
    MovieFile,
    TiffStreamWriter,
    check_not_input,
    file_sha256,
    sidecar_path,
    write_json,
)

#: Default bytes of movie per chunk.
CHUNK_BYTES = 64 * 2**20


def default_chunk_frames(shape, dtype) -> int:
    frame = int(np.prod(shape[1:])) * np.dtype(dtype).itemsize
    return max(1, min(CHUNK_BYTES // frame, shape[0]))


def record(*, movie_path, out_path, shape, dtype, center, interpolation,
           fill_value, angles_source, n_angles, checksum=True, **extra) -> dict:
    """The parameters and provenance written beside an output."""
    import numba
    import scipy
    import tifffile

    rec = {
        "software": "napari-derotation",
        "version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"),
        "input": {"path": str(Path(movie_path).resolve()) if movie_path else None,
                  "shape": list(shape), "dtype": str(np.dtype(dtype))},
        "output": str(Path(out_path).resolve()) if out_path else None,
        "center_row_col": [float(center[0]), float(center[1])],
        "interpolation": interpolation,
        "fill_value": float(fill_value),
        "angles": {"source": str(angles_source) if angles_source else None,
                   "values": int(n_angles),
                   "used": int(shape[0] * shape[1])},
        "environment": {"python": platform.python_version(),
                        "numpy": np.__version__, "scipy": scipy.__version__,
                        "numba": numba.__version__,
                        "tifffile": tifffile.__version__,
                        "platform": sys.platform},
    }
    if checksum and movie_path:
        rec["input"]["sha256"] = file_sha256(movie_path)
    rec.update(extra)
    return rec


def check_chunk_frames(chunk_frames, shape, dtype) -> int:
    """Frames per chunk: ``chunk_frames`` (>= 1) or about 64 MB, at most all."""
    if chunk_frames is None:
        return default_chunk_frames(shape, dtype)
    try:
        step = int(chunk_frames)
    except (TypeError, ValueError):
        raise DerotationError(
            f"chunk_frames must be a whole number >= 1; got {chunk_frames!r}"
        ) from None
    if step < 1 or step != chunk_frames:
        raise DerotationError(
            f"chunk_frames must be a whole number >= 1; got {chunk_frames!r}")
    return min(step, shape[0])


def derotate_file(movie_path, angles_per_line, out_path, center=None, *,
                  interpolation="bilinear", fill_value=0, chunk_frames=None,
                  progress=None, angles_source=None, sidecar=True) -> dict:
    """Derotate the TIFF ``movie_path`` into ``out_path`` chunk by chunk.

    Writes ``out_path`` (same dtype) and, with ``sidecar``, ``OUT.json`` with
    the parameters, versions and the input's SHA-256; both atomically.
    Memory use is about two chunks of ``chunk_frames`` frames (default: about
    64 MB of movie), whatever the movie's length. ``progress(done_frames,
    total_frames)`` may return ``False`` to cancel (raises
    :class:`Cancelled`, nothing is left behind). Returns the record.
    """
    out_path = Path(out_path)
    check_not_input(out_path, movie_path)
    if sidecar:
        check_not_input(sidecar_path(out_path), movie_path)
    with MovieFile(movie_path) as mf:
        n, rows, cols = mf.shape
        angles, center, *_ = check_parameters(
            mf.shape, mf.dtype, angles_per_line, center,
            interpolation=interpolation, fill_value=fill_value)
        step = check_chunk_frames(chunk_frames, mf.shape, mf.dtype)
        rec = record(movie_path=movie_path, out_path=out_path, shape=mf.shape,
                     dtype=mf.dtype, center=center, interpolation=interpolation,
                     fill_value=fill_value, angles_source=angles_source,
                     n_angles=np.size(angles_per_line), checksum=sidecar,
                     chunk_frames=step)
        buf = np.empty((step, rows, cols), mf.dtype)
        with TiffStreamWriter(out_path, mf.shape, mf.dtype) as writer:
            for start in range(0, n, step):
                stop = min(n, start + step)
                chunk = mf.read(start, stop)
                dst = buf[: stop - start]
                derotate_into(chunk, angles[start * rows: stop * rows], center,
                              dst, interpolation=interpolation,
                              fill_value=fill_value, progress=progress,
                              frame_offset=start, total_frames=n)
                del chunk
                writer.write(dst)
    if sidecar:
        write_sidecar(out_path, rec)
    return rec


def write_sidecar(out_path, rec: dict) -> None:
    """Write ``OUT.json`` beside a completed ``OUT.tif``; if that fails, the
    TIFF goes too, so an output never exists without its record."""
    try:
        write_json(sidecar_path(out_path), rec)
    except BaseException:
        Path(out_path).unlink(missing_ok=True)
        raise


def derotate_chunk(movie_path, start, stop, angles_per_line, center, *,
                   interpolation="bilinear", fill_value=0) -> np.ndarray:
    """Read frames ``start:stop`` of a TIFF and derotate them.

    ``angles_per_line`` holds the angles of those frames' lines only
    (``(stop - start) * rows`` values). What a cluster worker runs: it opens
    the file itself, so only paths and angles travel over the network.
    """
    with MovieFile(movie_path) as mf:
        chunk = mf.read(start, stop)
    out = np.empty_like(chunk)
    derotate_into(chunk, angles_per_line, center, out,
                  interpolation=interpolation, fill_value=fill_value)
    return out


__all__ = ["derotate_file", "derotate_chunk", "record", "default_chunk_frames",
           "check_chunk_frames", "frames_per_chunk"]
