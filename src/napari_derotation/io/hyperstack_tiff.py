"""A ``(T, Z, C, Y, X)`` movie written to one TIFF as an ImageJ hyperstack,
chunk by chunk and atomically.

Pages are in scan order (time, then plane, then channel), which is also
ImageJ's page order, so the file opens in ImageJ/Fiji, tifffile and napari
with its axes ("TCYX", "TZYX", "TZCYX") and is what suite2p reads with
``nplanes``/``nchannels``.
"""

from __future__ import annotations

import numpy as np
import tifffile

from ..errors import DerotationError
from .tiff import TiffStreamWriter

__all__ = ["HyperstackTiffWriter", "hyperstack_description"]


def hyperstack_description(shape5, *, frame_rate=None) -> str:
    """The ImageJ description of a ``(T, Z, C, Y, X)`` movie."""
    extra = {"finterval": 1.0 / frame_rate} if frame_rate else {}
    return tifffile.imagej_description(tuple(shape5), axes="TZCYX", **extra)


class HyperstackTiffWriter:
    """Write ``(n, Z, C, Y, X)`` chunks in time order into an ImageJ
    hyperstack TIFF; the file appears under its name only when complete
    (see :class:`~.tiff.TiffStreamWriter`)."""

    def __init__(self, path, shape5, dtype, *, frame_rate=None):
        self.shape5 = tuple(int(v) for v in shape5)
        t, z, c, rows, cols = self.shape5
        self.path = path
        self._inner = TiffStreamWriter(
            path,
            (t * z * c, rows, cols),
            dtype,
            description=hyperstack_description(self.shape5, frame_rate=frame_rate),
        )

    def __enter__(self):
        self._inner.__enter__()
        return self

    def write(self, chunk) -> None:
        chunk = check_chunk5(chunk, self.shape5)
        self._inner.write(chunk.reshape(-1, *self.shape5[3:]))

    def __exit__(self, exc_type, exc, tb):
        return self._inner.__exit__(exc_type, exc, tb)


def check_chunk5(chunk, shape5) -> np.ndarray:
    """``chunk`` as an array of ``(n, Z, C, Y, X)`` time points of a movie of
    ``shape5``, or :class:`DerotationError` naming the shape found."""
    chunk = np.asarray(chunk)
    if chunk.ndim != 5 or chunk.shape[1:] != tuple(shape5[1:]):
        raise DerotationError(
            f"chunks must be (n, {', '.join(map(str, shape5[1:]))}); got {chunk.shape}"
        )
    return chunk
