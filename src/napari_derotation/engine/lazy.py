"""Lazy derotation of a dask array: frames are derotated when asked for.

napari shows a dask array at once and computes only the frames on screen, so
:func:`derotate_lazy` gives a derotated layer immediately, whatever the
movie's length, and derotates frames as the user scrubs. Frames are
independent, so every block (a run of whole frames) is derotated with its own
slice of the angles and the result is identical to
:func:`napari_derotation.derotate` on the whole movie.
"""

from __future__ import annotations

import numpy as np

from ..checks import whole_number
from ._driver import check_movie, check_parameters
from .api import derotate
from .params import DerotationParams

__all__ = ["derotate_lazy", "BLOCK_BYTES"]

#: Default bytes of movie per block when the input is not already chunked.
BLOCK_BYTES = 8 * 2**20


def _derotate_block(block, angles, *, params):
    # ``angles`` is the (frames, rows, 1) slice that belongs to this block
    return derotate(block, angles.ravel(), params=params)


def derotate_lazy(
    array,
    angles_per_line,
    center=None,
    *,
    chunk_frames=None,
    params: DerotationParams | None = None,
    **overrides,
):
    """Derotate a movie lazily, one block of whole frames at a time.

    Parameters
    ----------
    array : numpy array, memmap or dask array (frames, rows, cols)
        The raw movie; never modified nor loaded as a whole.
    angles_per_line, center, params, **overrides
        As in :func:`napari_derotation.derotate`; checked here, at once.
    chunk_frames : int, optional
        Frames per block. Default: a dask input keeps its frame chunks (rows
        and columns are merged so each block holds whole frames); a numpy
        input gets blocks of about 8 MB. Smaller blocks show a frame sooner
        when scrubbing; larger ones compute a whole movie faster.

    Returns
    -------
    dask.array.Array
        Same shape and dtype as ``array``; nothing is computed until asked
        (``.compute()``, ``np.asarray``, a napari layer showing a frame).

    Raises
    ------
    DerotationError
        For the same bad inputs as :func:`~napari_derotation.derotate`, and
        a ``chunk_frames`` that is not a whole number >= 1.
    """
    import dask.array as da

    params = DerotationParams.build(params, center=center, **overrides)
    movie = check_movie(array)
    n, rows, cols = movie.shape
    dtype = np.dtype(movie.dtype)
    angles, params = check_parameters(movie.shape, dtype, angles_per_line, params)

    if chunk_frames is not None:
        frames = whole_number("chunk_frames", chunk_frames)
    elif isinstance(movie, da.Array):
        frames = None  # keep the input's frame chunks
    else:
        frames = max(1, BLOCK_BYTES // (rows * cols * dtype.itemsize))
    if isinstance(movie, da.Array):
        lazy = movie.rechunk(
            {0: min(frames, n) if frames else movie.chunks[0], 1: -1, 2: -1}
        )
    else:
        lazy = da.from_array(
            movie, chunks=(min(frames, n), rows, cols), asarray=True, name=False
        )
    per_block = da.from_array(
        angles.reshape(n, rows, 1), chunks=(lazy.chunks[0], rows, 1)
    )
    return da.map_blocks(
        _derotate_block,
        lazy,
        per_block,
        dtype=dtype,
        chunks=lazy.chunks,
        params=params,
        token="derotate",
    )
