"""Atomic writes: every output appears under its final name only when complete.

Each output is written to a temporary name in its destination folder and
renamed into place; a failure or a cancel leaves nothing behind. Also the
guard that keeps an output off its inputs, and checksums of inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import DerotationError

__all__ = ["atomic_path", "write_json", "file_sha256", "check_not_input",
           "OutputSet"]


@contextlib.contextmanager
def atomic_path(path, *, suffix: str = ".partial") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (ending in ``suffix``); rename
    it to ``path`` when the block completes, delete it if the block raises."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DerotationError(f"output folder does not exist: {path.parent}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix,
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


class OutputSet:
    """Files that belong together (a movie, its record, its tables): used as
    a context manager, a failure or a cancel removes every file already
    written through :meth:`add`, so no output is left without the others.

    >>> with OutputSet() as out:                    # doctest: +SKIP
    ...     out.add(write_tiff(path, movie))
    ...     out.add(write_json(record_path, rec))   # fails: the TIFF goes too
    """

    def __init__(self):
        self.written: list[Path] = []

    def add(self, path) -> Path:
        """Note ``path`` as written (returned unchanged)."""
        self.written.append(Path(path))
        return Path(path)

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            for p in reversed(self.written):
                with contextlib.suppress(OSError):
                    if p.is_dir():          # a Zarr store
                        shutil.rmtree(p)
                    else:
                        p.unlink()
        return False
