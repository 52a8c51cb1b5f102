"""One door to every output format: :func:`open_writer` picks the writer by
the output's suffix.

- ``.tif`` / ``.tiff``: a TIFF stack (:class:`~.tiff.TiffStreamWriter`);
- ``.zarr`` / ``.ome.zarr``: an OME-Zarr image (:class:`~.zarr_store.ZarrWriter`);
- ``.nwb``: an NWB file (:class:`~.nwb.NWBWriter`, the ``nwb`` extra).

Every writer is a context manager whose ``write(chunk)`` takes consecutive
``(n, Z, C, Y, X)`` (or ``(n, Y, X)``) chunks, and whose output appears under
its final name only when the block completes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DerotationError

__all__ = ["open_writer", "output_format", "OUTPUT_SUFFIXES", "FORMATS", "with_format"]

#: Output suffix -> format name.
OUTPUT_SUFFIXES = {
    ".tif": "tif",
    ".tiff": "tif",
    ".zarr": "zarr",
    ".ome.zarr": "zarr",
    ".nwb": "nwb",
}
#: Format name -> the suffix written by default.
FORMATS = {"tif": ".tif", "zarr": ".zarr", "nwb": ".nwb"}


def output_format(path) -> str:
    """``"tif"``, ``"zarr"`` or ``"nwb"`` from ``path``'s suffix; any other
    suffix is a :class:`DerotationError` listing the known ones."""
    name = Path(path).name.lower()
    for suffix in sorted(OUTPUT_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return OUTPUT_SUFFIXES[suffix]
    found = Path(path).suffix or "no suffix"
    raise DerotationError(
        f"output {Path(path).name}: unknown output type ({found}); expected "
        f"one of {', '.join(OUTPUT_SUFFIXES)}"
    )


def with_format(stem_path, fmt: str) -> Path:
    """``stem_path`` with the suffix of format ``fmt`` (``tif``, ``zarr``,
    ``nwb``) appended."""
    if fmt not in FORMATS:
        raise DerotationError(
            f"output format: expected one of {', '.join(FORMATS)}; got {fmt!r}"
        )
    p = Path(stem_path)
    return p.with_name(p.name + FORMATS[fmt])


def open_writer(path, shape, dtype, *, axes=None, record=None, overwrite=False, **kw):
    """The writer for ``path``'s format (see the module docstring).

    ``shape`` is ``(T, Z, C, Y, X)`` (or ``(T, Y, X)``); ``axes`` the input's
    axes string (e.g. ``"TZCYX"``); ``record`` the run's JSON record (kept in
    the file by the Zarr and NWB writers). Format-specific options in ``kw``
    (``frame_rate``, ``angles_per_line``, ``raw``, ``raw_path``,
    ``chunk_frames``...) are ignored by the formats that do not use them.
    ``overwrite=False`` refuses an existing Zarr store or NWB file.
    """
    fmt = output_format(path)
    if fmt == "zarr":
        from .zarr_store import ZarrWriter

        return ZarrWriter(
            path, shape, dtype, axes=axes, record=record, overwrite=overwrite, **kw
        )
    if fmt == "nwb":
        from .nwb import NWBWriter

        return NWBWriter(
            path, shape, dtype, axes=axes, record=record, overwrite=overwrite, **kw
        )
    return _tiff_writer(path, shape, dtype, kw.get("frame_rate"))


def _tiff_writer(path, shape, dtype, frame_rate):
    """A TIFF: an ImageJ hyperstack of ``(T, Z, C, Y, X)`` chunks, or a
    plain stack for ``(T, Y, X)``."""
    from .hyperstack_tiff import HyperstackTiffWriter

    shape = tuple(int(s) for s in shape)
    if len(shape) == 5:
        return HyperstackTiffWriter(path, shape, dtype, frame_rate=frame_rate)
    return _TiffFrames(path, shape, dtype)


class _TiffFrames:
    """:class:`~.tiff.TiffStreamWriter` behind the writer interface, for
    ``(n, Y, X)`` chunks of one plane and one channel."""

    def __init__(self, path, shape, dtype):
        from .tiff import TiffStreamWriter

        shape = tuple(int(s) for s in shape)
        if len(shape) == 5:
            t, z, c, y, x = shape
            if z > 1 or c > 1:
                raise DerotationError(
                    f"{Path(path).name}: a TIFF output holds one plane and one "
                    f"channel here; got {z} planes and {c} channels (write "
                    f".zarr or .nwb)"
                )
            shape = (t, y, x)
        self._writer = TiffStreamWriter(path, shape, dtype)
        self.path = self._writer.path

    def __enter__(self):
        self._writer.__enter__()
        return self

    def write(self, chunk) -> None:
        a = np.asarray(chunk)
        if a.ndim == 5:
            a = a[:, 0, 0]
        self._writer.write(a)

    @property
    def written(self) -> int:
        return self._writer.written

    def __exit__(self, *exc):
        return self._writer.__exit__(*exc)
