"""TIFF movies: read (memory-mapped or chunk by chunk) and written atomically.

Raw data is never modified: movies are opened read-only (memory-mapped where
the TIFF allows it); outputs go through :func:`.atomic.atomic_path`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile

from ..errors import DerotationError
from .atomic import atomic_path

__all__ = ["read_movie", "write_tiff", "TiffStreamWriter", "MovieFile"]


def read_movie(path, *, mmap: bool = True) -> np.ndarray:
    """Open a TIFF stack as a read-only ``(frames, rows, cols)`` array.

    Memory-mapped when the file's layout allows (uncompressed, contiguous),
    otherwise read into memory. A 2-D TIFF is one frame. Raises
    :class:`DerotationError` for a file that is missing, not a TIFF, empty or
    not 2-/3-D.
    """
    path = Path(path)
    if not path.is_file():
        raise DerotationError(f"movie file not found: {path}")
    try:
        with _tiff_problems(path):
            with tifffile.TiffFile(path) as tif:
                check_one_series(tif, path)
            data = _read_tiff(path, mmap)
    except DerotationError:
        raise
    except Exception as exc:  # tifffile raises many types for bad files
        raise DerotationError(
            f"cannot read {path.name} as a TIFF movie: {exc}") from None
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.ndim != 3:
        raise DerotationError(
            f"{path.name}: expected a stack of 2-D frames (frames, rows, cols); "
            f"found shape {data.shape}")
    if 0 in data.shape:
        raise DerotationError(f"{path.name} is empty: shape {data.shape}")
    return data


def check_one_series(tif, path) -> None:
    """Refuse a TIFF holding more than one series (images of different
    shapes, or several movies): reading only the first would silently drop
    the others."""
    series = tif.series
    if len(series) <= 1:
        return
    kinds = [f"{tuple(s.shape)} {np.dtype(s.dtype)}" for s in series]
    if len(set(kinds)) == 1:
        found = f"each {kinds[0]}"
    else:
        found = "; ".join(f"series {i}: {k}" for i, k in enumerate(kinds[:4]))
        found += "; ..." if len(kinds) > 4 else ""
    raise DerotationError(
        f"{Path(path).name} holds {len(series)} image series ({found}); "
        f"expected one movie in one series: save each series as its own "
        f"TIFF, or the frames as one stack")


def _read_tiff(path: Path, mmap: bool) -> np.ndarray:
    if mmap:
        try:
            return tifffile.memmap(path, mode="r")
        except (ValueError, OSError, RuntimeError, IndexError):
            pass
    return tifffile.imread(path)


def write_tiff(path, data, *, description: str | None = None,
               overwrite: bool = True) -> Path:
    """Write an array to a TIFF atomically (BigTIFF when larger than 2 GB);
    with ``overwrite=False`` an existing ``path`` is refused."""
    data = np.asarray(data)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(tmp, data, bigtiff=data.nbytes > 2**31,
                         description=description, photometric="minisblack")
    return Path(path)


class TiffStreamWriter:
    """Write a ``(frames, rows, cols)`` TIFF chunk by chunk, atomically.

    Use as a context manager; call :meth:`write` with consecutive frame
    chunks. The file appears under its final name only if the block completes
    and every frame was written; otherwise the partial file is removed. A
    full disk or another OS error is a :class:`DerotationError` naming
    ``path``; with ``overwrite=False`` an existing ``path`` is refused.
    """

    def __init__(self, path, shape, dtype, *, description: str | None = None,
                 overwrite: bool = True):
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
                f"chunk frames must be {self.shape[1:]}; got {frames.shape[1:]}")
        if self.written + frames.shape[0] > self.shape[0]:
            raise DerotationError(
                f"{self.path.name}: {self.written + frames.shape[0]} frames "
                f"written; expected {self.shape[0]}")
        first = self.written == 0
        self._tif.write(frames, contiguous=True, photometric="minisblack",
                        description=self.description if first else None,
                        metadata=None)
        self.written += frames.shape[0]

    def __exit__(self, exc_type, exc, tb):
        # Close first: closing flushes, and a failure there (a full disk)
        # must discard the file, not commit it.
        error = None
        try:
            self._tif.close()
        except Exception as close_exc:
            error = close_exc
        if exc_type is not None:        # the block failed: discard, propagate
            self._ctx.__exit__(exc_type, exc, tb)
            return False
        if error is None and self.written != self.shape[0]:
            error = DerotationError(
                f"{self.path.name}: wrote {self.written} of {self.shape[0]} "
                f"frames")
        if error is not None:
            self._ctx.__exit__(type(error), error, error.__traceback__)
            raise error
        return self._ctx.__exit__(None, None, None)


#: What tifffile logs (instead of raising) when a file is cut short or broken.
_CORRUPT = ("invalid page offset", "invalid offset to first page",
            "failed to reshape", "corrupted", "truncated")


@contextlib.contextmanager
def _tiff_problems(path: Path) -> Iterator[None]:
    """Turn what tifffile only logs about a truncated or corrupt file (it
    then returns the frames it could read) into a :class:`DerotationError`.

    Records from this thread are kept out of the log (the error says it).
    """
    found: list[str] = []
    me = threading.get_ident()

    def keep(record: logging.LogRecord) -> bool:
        if record.thread != me:
            return True
        msg = record.getMessage()
        if any(k in msg for k in _CORRUPT):
            found.append(msg)
            return False
        return True

    def problem() -> DerotationError:
        detail = found[0].split("> ", 1)[-1]
        return DerotationError(f"{path.name} is truncated or corrupt: {detail}")

    logger = logging.getLogger("tifffile")
    logger.addFilter(keep)
    try:
        yield
    except DerotationError:
        raise
    except Exception:
        if found:       # the logged cause says more than the exception
            raise problem() from None
        raise
    finally:
        logger.removeFilter(keep)
    if found:
        raise problem()


class MovieFile:
    """A TIFF movie read in chunks of frames, for movies larger than memory.

    ``shape`` and ``dtype`` are known on opening; :meth:`read` returns frames
    ``start:stop`` as a new array, read straight from the file (not through a
    memory map, so the process's resident memory stays bounded by the chunk).
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DerotationError(f"movie file not found: {self.path}")
        try:
            with _tiff_problems(self.path):
                self._tif = tifffile.TiffFile(self.path)
                check_one_series(self._tif, self.path)
                series = self._tif.series[0]
                shape = tuple(series.shape)
                self.dtype = np.dtype(series.dtype)
                self._offset = series.dataoffset
                if self._offset is None:
                    series.pages  # noqa: B018 - loads every page: finds cuts
        except Exception as exc:
            if hasattr(self, "_tif"):
                self._tif.close()
            if isinstance(exc, DerotationError):
                raise
            raise DerotationError(
                f"cannot read {self.path.name} as a TIFF movie: {exc}") from None
        if len(shape) == 2:
            shape = (1, *shape)
        while len(shape) > 3 and 1 in shape[:-2]:   # (T, 1, Y, X) -> (T, Y, X)
            lead = list(shape[:-2])
            lead.remove(1)
            shape = (*lead, *shape[-2:])
        if len(shape) != 3:
            self._tif.close()
            raise DerotationError(
                f"{self.path.name}: expected a stack of 2-D frames (frames, "
                f"rows, cols); found shape {tuple(series.shape)}")
        if 0 in shape:
            self._tif.close()
            raise DerotationError(f"{self.path.name} is empty: shape {shape}")
        self.shape = shape
        self._pages = None if self._offset is not None else series.pages
        # raw bytes are in the file's byte order; frames are returned native
        self._raw_dtype = self.dtype.newbyteorder(self._tif.byteorder)
        self.dtype = self.dtype.newbyteorder("=")

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` as a new ``(stop - start, rows, cols)`` array."""
        rows, cols = self.shape[1:]
        start, stop = int(start), int(stop)
        if not 0 <= start < stop <= self.shape[0]:
            raise DerotationError(
                f"{self.path.name}: frames {start}:{stop} are not a range in "
                f"[0, {self.shape[0]}]")
        n = stop - start
        try:
            if self._offset is not None:
                frame_bytes = rows * cols * self.dtype.itemsize
                with open(self.path, "rb") as fh:
                    fh.seek(self._offset + start * frame_bytes)
                    buf = np.fromfile(fh, self._raw_dtype, n * rows * cols)
                if buf.size != n * rows * cols:
                    raise DerotationError(
                        f"{self.path.name} is truncated: frames {start}-{stop} "
                        f"missing")
                if buf.dtype != self.dtype:          # big-endian file
                    buf = buf.astype(self.dtype)
                return buf.reshape(n, rows, cols)
            out = np.empty((n, rows, cols), self.dtype)
            for i in range(n):
                out[i] = self._pages[start + i].asarray().reshape(rows, cols)
            return out
        except DerotationError:
            raise
        except Exception as exc:
            raise DerotationError(
                f"cannot read frames {start}-{stop} of {self.path.name}: "
                f"{exc}") from None

    def close(self) -> None:
        self._tif.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
