"""TIFF movies written atomically (one file at once, or chunk by chunk).

Movies are read by :func:`napari_derotation.io.sources.open_movie` (one
reader for every TIFF, sequence and Zarr store); outputs go through
:func:`.atomic.atomic_path`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from ..errors import DerotationError
from .atomic import atomic_path

__all__ = ["write_tiff", "TiffStreamWriter"]


def write_tiff(
    path, data, *, description: str | None = None, overwrite: bool = True
) -> Path:
    """Write an array to a TIFF atomically (BigTIFF when larger than 2 GB);
    with ``overwrite=False`` an existing ``path`` is refused."""
    data = np.asarray(data)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(
            tmp,
            data,
            bigtiff=data.nbytes > 2**31,
            description=description,
            photometric="minisblack",
        )
    return Path(path)


class TiffStreamWriter:
    """Write a ``(frames, rows, cols)`` TIFF chunk by chunk, atomically.

    Use as a context manager; call :meth:`write` with consecutive frame
    chunks. The file appears under its final name only if the block completes
    and every frame was written; otherwise the partial file is removed. A
    full disk or another OS error is a :class:`DerotationError` naming
    ``path``; with ``overwrite=False`` an existing ``path`` is refused.
    """

    def __init__(
        self,
        path,
        shape,
        dtype,
        *,
        description: str | None = None,
        overwrite: bool = True,
    ):
        self.path = Path(path)
        self.overwrite = overwrite
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.description = description
        self.written = 0
        self._ctx = None
        self._tif = None

    def __enter__(self):
        self._ctx = atomic_path(self.path, overwrite=self.overwrite)
        tmp = self._ctx.__enter__()
        nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        try:
            self._tif = tifffile.TiffWriter(tmp, bigtiff=nbytes > 2**31)
        except BaseException as exc:
            # the temporary file exists already: remove it, re-raise
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def write(self, frames) -> None:
        """Append ``frames`` (one 2-D frame or a 3-D chunk) to the file."""
        frames = np.asarray(frames, self.dtype)
        if frames.ndim == 2:
            frames = frames[np.newaxis]
        if frames.ndim != 3 or frames.shape[1:] != self.shape[1:]:
            raise DerotationError(
                f"chunk frames must be {self.shape[1:]}; got {frames.shape[1:]}"
            )
        if self.written + frames.shape[0] > self.shape[0]:
            raise DerotationError(
                f"{self.path.name}: {self.written + frames.shape[0]} frames "
                f"written; expected {self.shape[0]}"
            )
        first = self.written == 0
        self._tif.write(
            frames,
            contiguous=True,
            photometric="minisblack",
            description=self.description if first else None,
            metadata=None,
        )
        self.written += frames.shape[0]

    def __exit__(self, exc_type, exc, tb):
        # Close first: closing flushes, and a failure there (a full disk)
        # must discard the file, not commit it.
        error = None
        try:
            self._tif.close()
        except Exception as close_exc:
            error = close_exc
        if exc_type is not None:  # the block failed: discard, propagate
            self._ctx.__exit__(exc_type, exc, tb)
            return False
        if error is None and self.written != self.shape[0]:
            error = DerotationError(
                f"{self.path.name}: wrote {self.written} of {self.shape[0]} frames"
            )
        if error is not None:
            self._ctx.__exit__(type(error), error, error.__traceback__)
            raise error
        return self._ctx.__exit__(None, None, None)
