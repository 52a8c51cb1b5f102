"""Files: movies, angle traces, sidecar JSON; every output written atomically.

Raw data is never modified: movies are opened read-only (memory-mapped where
the TIFF allows it), and every output is written to a temporary name in the
destination folder and renamed into place only when complete, so a failure or
a cancel leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile

from .errors import DerotationError

__all__ = ["read_movie", "load_angles", "save_angles", "atomic_path",
           "write_tiff", "TiffStreamWriter", "write_json", "sidecar_path",
           "file_sha256", "check_not_input", "ANGLE_SUFFIXES"]

ANGLE_SUFFIXES = (".npy", ".csv", ".txt")


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


def _read_tiff(path: Path, mmap: bool) -> np.ndarray:
    if mmap:
        try:
            return tifffile.memmap(path, mode="r")
        except (ValueError, OSError, RuntimeError, IndexError):
            pass
    return tifffile.imread(path)


def load_angles(path) -> np.ndarray:
    """Per-line angles (degrees) from ``.npy``, ``.csv`` or ``.txt``.

    CSV/TXT: one number per line or row, comma or whitespace separated; a
    header row is skipped; with several columns, the one named ``angle`` (or
    ``angles``, ``rotation_angle``, ``angle_deg``) or else the last is used.
    """
    path = Path(path)
    if not path.is_file():
        raise DerotationError(f"angles file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            a = np.load(path, allow_pickle=False)
        elif suffix in (".csv", ".txt"):
            a = _load_text_column(path)
        else:
            raise DerotationError(
                f"angles file {path.name}: expected one of "
                f"{', '.join(ANGLE_SUFFIXES)}; got {suffix or 'no suffix'}")
    except DerotationError:
        raise
    except Exception as exc:
        raise DerotationError(f"cannot read angles from {path.name}: {exc}") \
            from None
    a = np.asarray(a)
    if a.dtype.kind not in "uif":
        raise DerotationError(
            f"angles in {path.name} must be numbers; found dtype {a.dtype}")
    a = np.squeeze(a)
    if a.ndim != 1:
        raise DerotationError(
            f"angles in {path.name} must be 1-D (one per line); found shape "
            f"{a.shape}")
    return a.astype(np.float64)


def _load_text_column(path: Path) -> np.ndarray:
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        raise DerotationError(f"angles file {path.name} is empty")
    sep = "," if "," in lines[0] else None
    header = [h.strip().lower() for h in lines[0].split(sep)]
    column = len(header) - 1
    try:
        [float(h) for h in header]
        body = lines
    except ValueError:
        body = lines[1:]
        for name in ("angle", "angles", "rotation_angle", "angle_deg",
                     "angles_per_line"):
            if name in header:
                column = header.index(name)
                break
    values = []
    for n, ln in enumerate(body, start=len(lines) - len(body) + 1):
        parts = ln.split(sep)
        try:
            values.append(float(parts[column]))
        except (ValueError, IndexError):
            raise DerotationError(
                f"{path.name}, line {n}: expected a number in column "
                f"{column + 1}; found {ln!r}") from None
    return np.asarray(values)


def save_angles(path, angles) -> Path:
    """Write per-line angles as ``.npy`` (or one per line as ``.csv``/``.txt``)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, np.asarray(angles, np.float64))
        else:
            np.savetxt(tmp, np.asarray(angles, np.float64), fmt="%.6f",
                       header="angle", comments="")
    return path


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the
    block completes, delete it if the block raises."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DerotationError(f"output folder does not exist: {path.parent}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial",
                               dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_tiff(path, data, *, description: str | None = None) -> Path:
    """Write an array to a TIFF atomically (BigTIFF when larger than 2 GB)."""
    data = np.asarray(data)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, data, bigtiff=data.nbytes > 2**31,
                         description=description, photometric="minisblack")
    return Path(path)


class TiffStreamWriter:
    """Write a ``(frames, rows, cols)`` TIFF chunk by chunk, atomically.

    Use as a context manager; call :meth:`write` with consecutive frame
    chunks. The file appears under its final name only if the block completes
    and every frame was written; otherwise the partial file is removed.
    """

    def __init__(self, path, shape, dtype, *, description: str | None = None):
        self.path = Path(path)
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.description = description
        self.written = 0
        self._ctx = None
        self._tif = None

    def __enter__(self):
        self._ctx = atomic_path(self.path)
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


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    return Path(path)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def sidecar_path(path) -> Path:
    """``OUT.tif`` -> ``OUT.json``: where an output's parameters are written."""
    return Path(path).with_suffix(".json")


def file_sha256(path, *, chunk: int = 1 << 24) -> str:
    """SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_not_input(output, *inputs) -> None:
    """Refuse to write ``output`` over any of ``inputs``."""
    out = Path(output).resolve()
    for inp in inputs:
        if inp is None:
            continue
        inp = Path(inp)
        if out == inp.resolve() or (out.exists() and inp.exists()
                                    and os.path.samefile(out, inp)):
            raise DerotationError(
                f"refusing to overwrite the input {inp.name}: choose another "
                f"output path")


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
