"""``--split``: one TIFF per plane and channel, in the folder layout suite2p
reads, plus ``derotation_split.json`` listing them.

Layout of ``OUT/``::

    plane0/chan0.tif  plane0/chan1.tif  plane1/chan0.tif ...
    derotation_split.json   {"files": [...], "nplanes": Z, "nchannels": C,
                             "fs": frames per second or null, ...}

Each ``planeZ/`` folder is a suite2p ``data_path`` for one plane
(``nplanes=1``; see ``docs/suite2p.md``). Every file is written to a
temporary name and renamed when complete; a failure or a cancel leaves none
of them, and the JSON is written last.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from ..errors import DerotationError
from .atomic import check_writable, write_json
from .hyperstack_tiff import check_chunk5
from .tiff import TiffStreamWriter

__all__ = ["SplitWriter", "split_paths", "SPLIT_JSON"]

SPLIT_JSON = "derotation_split.json"


def split_paths(folder, planes: int, channels: int) -> dict:
    """``{(z, c): OUT/plane{z}/chan{c}.tif}``."""
    folder = Path(folder)
    return {
        (z, c): folder / f"plane{z}" / f"chan{c}.tif"
        for z in range(planes)
        for c in range(channels)
    }


class SplitWriter:
    """Write ``(n, Z, C, Y, X)`` chunks in time order into one TIFF per
    plane and channel (a context manager, like the single-file writers).

    ``record`` (a dict) is added to the JSON as ``"record"``.
    """

    def __init__(
        self,
        folder,
        shape5,
        dtype,
        *,
        frame_rate=None,
        channel_names=None,
        record=None,
        overwrite=False,
    ):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise DerotationError(f"--split needs a folder; {self.folder} is a file")
        self.shape5 = tuple(int(v) for v in shape5)
        self.dtype = np.dtype(dtype)
        self.frame_rate = frame_rate
        self.channel_names = channel_names
        self.record = record
        t, z, c, rows, cols = self.shape5
        self.paths = split_paths(self.folder, z, c)
        self.overwrite = overwrite
        self._stack = None
        self._writers = {}
        self._made: list[Path] = []

    def __enter__(self):
        existing = [
            p for p in [*self.paths.values(), self.folder / SPLIT_JSON] if p.exists()
        ]
        if existing:  # every file checked before the first is written
            check_writable(existing, overwrite=self.overwrite)
        for d in [self.folder, *sorted({p.parent for p in self.paths.values()})]:
            if not d.exists():
                d.mkdir(parents=True)
                self._made.append(d)
        self._stack = contextlib.ExitStack()
        t, _, _, rows, cols = self.shape5
        try:
            for key, path in self.paths.items():
                self._writers[key] = self._stack.enter_context(
                    TiffStreamWriter(path, (t, rows, cols), self.dtype)
                )
        except BaseException:
            self._stack.close()
            self._remove_dirs()
            raise
        return self

    def write(self, chunk) -> None:
        chunk = check_chunk5(chunk, self.shape5)
        for (z, c), w in self._writers.items():
            w.write(chunk[:, z, c])

    def __exit__(self, exc_type, exc, tb):
        try:
            self._stack.__exit__(exc_type, exc, tb)
        except BaseException:
            self._remove_dirs()
            raise
        if exc_type is not None:
            self._remove_dirs()
            return False
        write_json(self.folder / SPLIT_JSON, self.summary())
        return False

    def summary(self) -> dict:
        """What ``derotation_split.json`` holds."""
        _, z, c, rows, cols = self.shape5
        out = {
            "files": [str(p.relative_to(self.folder)) for p in self.paths.values()],
            "layout": "plane{z}/chan{c}.tif",
            "nplanes": z,
            "nchannels": c,
            "fs": self.frame_rate,
            "frames": self.shape5[0],
            "rows": rows,
            "cols": cols,
            "dtype": str(self.dtype),
        }
        if self.channel_names:
            out["channel_names"] = list(self.channel_names)
        if self.record is not None:
            out["record"] = self.record
        return out

    def _remove_dirs(self) -> None:
        for d in reversed(self._made):
            with contextlib.suppress(OSError):
                d.rmdir()
