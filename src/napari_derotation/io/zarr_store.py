"""OME-Zarr movies: written chunk by chunk (or region by region from many
workers) and read lazily.

A store is an OME-NGFF 0.4 image: a Zarr (format 2) group whose
``multiscales`` attribute names the axes (``t``, then ``c`` and ``z`` when
present, then ``y``, ``x``: the order NGFF 0.4 requires) and one full
resolution array ``0`` in the movie's dtype, chunked by frames (every plane
and channel of a block of time points in one chunk). The JSON record of the
run is kept in the group's attributes under ``napari_derotation``.

Writes are atomic: the store is built under a temporary name beside its
final one and renamed when complete; a failure or a cancel removes it, so
nothing ever appears under the final name half written. Because chunks are
independent files, many processes can write disjoint blocks of frames into
the one (temporary) store at once (:func:`write_region`): what a cluster
worker does.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import DerotationError
from .atomic import _json_default, check_writable, publish, temp_dir

__all__ = [
    "ZarrWriter",
    "ZarrSource",
    "is_zarr_path",
    "write_region",
    "RECORD_KEY",
    "ZARR_SUFFIXES",
    "store_sha256",
]

ZARR_SUFFIXES = (".zarr", ".ome.zarr")
#: Group attribute holding the run's JSON record.
RECORD_KEY = "napari_derotation"
#: About this many bytes of movie per Zarr chunk (a whole number of frames).
CHUNK_BYTES = 16 * 2**20
#: NGFF 0.4 order of the axes we write, and their types.
_ORDER = "tczyx"
#: Write every chunk (zarr's default compares each with the fill value
#: first, which costs more than compressing it).
_WRITE = {"write_empty_chunks": True}
_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}


def store_sha256(path) -> str:
    """SHA-256 of a store (a folder): of every file's relative path and
    contents, in sorted order, so the same store always gives the same sum."""
    import hashlib

    root = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(1 << 24):
                h.update(block)
    return h.hexdigest()


def is_zarr_path(path) -> bool:
    """Whether ``path`` names a Zarr store (``.zarr`` or ``.ome.zarr``)."""
    return str(path).rstrip("/\\").lower().endswith(".zarr")


def _shape5(shape) -> tuple:
    shape = tuple(int(s) for s in shape)
    if len(shape) == 3:
        return (shape[0], 1, 1, *shape[1:])
    if len(shape) != 5:
        raise DerotationError(
            f"expected a movie shape (T, Y, X) or (T, Z, C, Y, X); got {shape}"
        )
    return shape


def _stored_axes(shape5, axes) -> str:
    """The NGFF axes written for a movie: ``t``, ``c``/``z`` when in
    ``axes`` (default: when larger than 1), ``y``, ``x``."""
    _, z, c, _, _ = shape5
    given = (axes or "").lower()
    keep = {"c": c > 1 or "c" in given, "z": z > 1 or "z" in given}
    return "".join(a for a in _ORDER if keep.get(a, True))


def _to_stored(chunk5, stored: str) -> np.ndarray:
    """``(n, Z, C, Y, X)`` -> the stored axis order (singletons dropped)."""
    perm = [0, 2, 1, 3, 4]  # t c z y x
    out = np.transpose(chunk5, perm)
    drop = tuple(i for i, a in enumerate(_ORDER) if a not in stored)
    return out.reshape([s for i, s in enumerate(out.shape) if i not in drop])


def ngff_multiscales(
    stored: str, *, name: str, frame_rate=None, pixel_size=None
) -> list:
    """The NGFF 0.4 ``multiscales`` attribute of a one-level image."""
    axes, scale = [], []
    for a in stored:
        ax = {"name": a, "type": _TYPES[a]}
        s = 1.0
        if a == "t" and frame_rate:
            ax["unit"], s = "second", 1.0 / float(frame_rate)
        elif a in "yx" and pixel_size:
            ax["unit"], s = "micrometer", float(pixel_size)
        axes.append(ax)
        scale.append(s)
    return [
        {
            "version": "0.4",
            "name": name,
            "axes": axes,
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [{"type": "scale", "scale": scale}],
                }
            ],
        }
    ]


class ZarrWriter:
    """Write a movie into an OME-Zarr store chunk by chunk, atomically.

    Use as a context manager; :meth:`write` takes consecutive time points as
    ``(n, Z, C, Y, X)`` (or ``(n, Y, X)``) arrays. ``shape`` is ``(T, Y, X)``
    or ``(T, Z, C, Y, X)``; ``record`` (the run's JSON record) goes into the
    group's attributes. The store is built at :attr:`temp_path` and renamed
    to ``path`` only when every time point was written.

    For many writers at once (a cluster), enter the writer, have each worker
    call :func:`write_region` on :attr:`temp_path` with blocks of
    :attr:`chunk_frames` time points, then :meth:`mark_written` and exit.
    """

    def __init__(
        self,
        path,
        shape,
        dtype,
        *,
        axes=None,
        record=None,
        overwrite=False,
        chunk_frames=None,
        frame_rate=None,
        pixel_size=None,
        **_ignored,
    ):
        self.path = Path(path)
        self.shape5 = _shape5(shape)
        self.dtype = np.dtype(dtype).newbyteorder("=")
        self.stored = _stored_axes(self.shape5, axes)
        self.record = record
        self.overwrite = overwrite
        self.frame_rate = frame_rate
        self.pixel_size = pixel_size
        frame = int(np.prod(self.shape5[1:])) * self.dtype.itemsize
        n = chunk_frames or max(1, CHUNK_BYTES // frame)
        self.chunk_frames = int(min(max(1, n), self.shape5[0]))
        self.written = 0
        self.temp_path: Path | None = None
        self._array = None

    # ------------------------------------------------------------ writing
    def __enter__(self):
        import zarr

        check_writable([self.path], overwrite=self.overwrite)
        self.temp_path = temp_dir(self.path)
        try:
            group = zarr.open_group(self.temp_path, mode="w", zarr_format=2)
            group.attrs["multiscales"] = ngff_multiscales(
                self.stored,
                name=self.path.name.split(".")[0],
                frame_rate=self.frame_rate,
                pixel_size=self.pixel_size,
            )
            t, z, c, y, x = self.shape5
            full = {"t": t, "c": c, "z": z, "y": y, "x": x}
            shape = tuple(full[a] for a in self.stored)
            self._array = group.create_array(
                "0",
                shape=shape,
                dtype=self.dtype,
                chunks=(self.chunk_frames, *shape[1:]),
                compressors=_compressor(),
                fill_value=0,
            ).with_config(_WRITE)
        except BaseException:
            shutil.rmtree(self.temp_path, ignore_errors=True)
            raise
        return self

    def write(self, chunk) -> None:
        """Append ``chunk`` (``(n, Z, C, Y, X)``, ``(n, Y, X)`` or one
        ``(Y, X)`` frame) after the time points already written."""
        chunk5 = _chunk5(chunk, self.shape5, self.dtype)
        n = chunk5.shape[0]
        if self.written + n > self.shape5[0]:
            raise DerotationError(
                f"{self.path.name}: {self.written + n} time points written; "
                f"expected {self.shape5[0]}"
            )
        self._array[self.written : self.written + n] = _to_stored(chunk5, self.stored)
        self.written += n

    def mark_written(self, n: int) -> None:
        """Count ``n`` time points written by other processes
        (:func:`write_region`)."""
        self.written += int(n)

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None and self.written != self.shape5[0]:
                raise DerotationError(
                    f"{self.path.name}: wrote {self.written} of "
                    f"{self.shape5[0]} time points"
                )
            if exc_type is None:
                self._finish()
        except BaseException:
            shutil.rmtree(self.temp_path, ignore_errors=True)
            raise
        if exc_type is not None:
            shutil.rmtree(self.temp_path, ignore_errors=True)
        return False

    def _finish(self) -> None:
        import zarr

        if self.record is not None:
            group = zarr.open_group(self.temp_path, mode="r+", zarr_format=2)
            group.attrs[RECORD_KEY] = json.loads(
                json.dumps(self.record, default=_json_default)
            )
        publish(self.temp_path, self.path, overwrite=self.overwrite)


def _compressor():
    import numcodecs

    return numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)


def _chunk5(chunk, shape5, dtype) -> np.ndarray:
    a = np.asarray(chunk)
    if a.ndim == 2:
        a = a[np.newaxis]
    if a.ndim == 3:
        a = a[:, np.newaxis, np.newaxis]
    if a.ndim != 5 or a.shape[1:] != tuple(shape5[1:]):
        raise DerotationError(
            f"chunk must be (n, Z, C, Y, X) = (n, {', '.join(map(str, shape5[1:]))})"
            f"; got {a.shape}"
        )
    return a.astype(dtype, copy=False)


def write_region(store_path, start: int, chunk) -> int:
    """Write time points ``start:start + n`` of the store at ``store_path``
    (a :class:`ZarrWriter`'s :attr:`~ZarrWriter.temp_path`); returns ``n``.

    What a cluster worker runs after derotating its block: blocks that begin
    on a chunk boundary never share a chunk, so workers never collide.
    """
    import zarr

    group = zarr.open_group(Path(store_path), mode="r+", zarr_format=2)
    stored = "".join(a["name"] for a in group.attrs["multiscales"][0]["axes"])
    arr = group["0"].with_config(_WRITE)
    t, rest = arr.shape[0], arr.shape[1:]
    full = dict(zip(stored[1:], rest, strict=True))
    shape5 = (t, full.get("z", 1), full.get("c", 1), full["y"], full["x"])
    chunk5 = _chunk5(chunk, shape5, arr.dtype)
    arr[start : start + chunk5.shape[0]] = _to_stored(chunk5, stored)
    return int(chunk5.shape[0])


# ------------------------------------------------------------------ reading


class ZarrSource:
    """An OME-Zarr movie opened for reading (the MovieSource interface);
    open it with :func:`napari_derotation.io.sources.open_movie`.

    ``shape`` is always ``(T, Z, C, Y, X)``; :meth:`read` returns time points
    ``start:stop`` as ``(n, Z, C, Y, X)`` read from the store, and
    :meth:`dask` the whole movie as a lazy dask array. Raises
    :class:`DerotationError` for a store without NGFF axes naming at least
    ``y`` and ``x`` (``t``, ``c``, ``z`` optional; any other axis refused),
    a dtype that is not numeric, frames too large to derotate, and a missing
    chunk (missing data) unless ``allow_missing_chunks``; a chunk that
    cannot be decoded is named when read.
    """

    def __init__(self, path, *, allow_missing_chunks: bool = False):
        import zarr

        from .sources import check_time_point

        self.path = Path(path)
        self.paths = [self.path]
        if not self.path.exists():
            raise DerotationError(f"Zarr store not found: {self.path}")
        try:
            node = zarr.open(self.path, mode="r")
        except Exception as exc:
            raise DerotationError(
                f"cannot open {self.path.name} as a Zarr store: {exc}"
            ) from None
        attrs = node.attrs.asdict()
        ms = attrs.get("multiscales")
        if not isinstance(node, zarr.Group) or not ms:
            what = (
                "a bare array"
                if isinstance(node, zarr.Array)
                else "a group without multiscales"
            )
            raise DerotationError(
                f"{self.path.name}: expected an OME-Zarr image (a group with "
                f"NGFF 'multiscales' axes t, [c], [z], y, x); found "
                f"{what}: write it with napari-derotation or add NGFF 0.4 metadata"
            )
        self.stored, self._array, scale, self._key = _parse_multiscales(
            self.path, node, ms
        )
        full = dict(zip(self.stored, self._array.shape, strict=True))
        self.shape = (
            full.get("t", 1),
            full.get("z", 1),
            full.get("c", 1),
            full["y"],
            full["x"],
        )
        if 0 in self.shape:
            raise DerotationError(f"{self.path.name} is empty: shape {self.shape}")
        dtype = np.dtype(self._array.dtype)
        if dtype.kind not in "biuf":
            raise DerotationError(
                f"{self.path.name}: array {self._key} holds {dtype.str} "
                f"values; expected numbers (integers or floats)"
            )
        self.dtype = dtype.newbyteorder("=")
        check_time_point(self.path.name, self.shape, self.dtype)
        if not allow_missing_chunks:
            _check_chunks(self.path, self._key, self._array)
        self.axes = (
            "T"
            + "".join(a.upper() for a in "zc" if self.shape["tzc".index(a)] > 1)
            + "YX"
        )
        self.record = attrs.get(RECORD_KEY)
        self.metadata = _metadata(self.stored, scale, self.record, attrs)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Time points ``start:stop`` as ``(stop - start, Z, C, Y, X)``."""
        start, stop = int(start), int(stop)
        if not 0 <= start < stop <= self.shape[0]:
            raise DerotationError(
                f"{self.path.name}: time points {start}:{stop} are not a range "
                f"in [0, {self.shape[0]}]"
            )
        try:
            if "t" in self.stored:
                block = np.asarray(self._array[start:stop])
            else:
                block = np.asarray(self._array[...])[np.newaxis]
        except Exception as exc:
            raise self._bad_chunk(start, stop, exc) from None
        return self._to5(block, stop - start)

    def frames(self, *, mmap: bool = False) -> np.ndarray:
        """The whole movie of one plane and one channel as ``(T, Y, X)``,
        read into memory (``mmap`` is accepted for the MovieSource
        interface; a store is never memory-mapped)."""
        t, z, c, y, x = self.shape
        if z > 1 or c > 1:
            raise DerotationError(
                f"{self.path.name}: {z} planes and {c} channels (axes "
                f"{self.axes}); expected a stack of 2-D frames (frames, "
                f"rows, cols) here"
            )
        from .sources import check_whole

        check_whole(self.path.name, (t, y, x), self.dtype)
        return self.read(0, t).reshape(t, y, x)

    def _bad_chunk(self, start: int, stop: int, exc) -> DerotationError:
        """Which chunk of time points ``start:stop`` cannot be decoded."""
        arr = self._array
        first = start // arr.chunks[0] if "t" in self.stored else 0
        last = -(-stop // arr.chunks[0]) if "t" in self.stored else 1
        for coords in np.ndindex(last - first, *arr.cdata_shape[1:]):
            coords = (coords[0] + first, *coords[1:])
            try:
                arr.get_block_selection(coords)
            except Exception as err:
                key = arr.metadata.encode_chunk_key(coords)
                return DerotationError(
                    f"{self.path.name}: chunk {self._key}/{key} cannot be "
                    f"read ({type(err).__name__}: {err}); expected the "
                    f"store's compressed data"
                )
        return DerotationError(
            f"{self.path.name}: time points {start}-{stop} cannot be read: "
            f"{type(exc).__name__}: {exc}"
        )

    def _to5(self, block, n):
        names = ["t"] + [a for a in self.stored if a != "t"]
        for a in "czyx":
            if a not in names:
                names.append(a)
                block = block[..., np.newaxis]
        order = [names.index(a) for a in "tzcyx"]
        out = np.transpose(block, order)
        return np.ascontiguousarray(out.reshape(n, *self.shape[1:]), self.dtype)

    def dask(self, *, squeeze: bool = True):
        """The movie as a lazy dask array: ``(T, Z, C, Y, X)``, or with
        ``squeeze`` the axes of :attr:`axes` only (``(T, Y, X)`` for one
        plane and channel)."""
        import dask.array as da

        arr = da.from_zarr(self._array)
        names = list(self.stored)
        if "t" not in names:
            arr, names = arr[np.newaxis], ["t", *names]
        for a in "zc":
            if a not in names:
                arr, names = arr[..., np.newaxis], [*names, a]
        arr = arr.transpose([names.index(a) for a in "tzcyx"])
        if squeeze:
            idx = tuple(
                0 if a in "zc" and a.upper() not in self.axes else slice(None)
                for a in "tzcyx"
            )
            arr = arr[idx]
        return arr

    def close(self) -> None:
        self._array = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _parse_multiscales(path: Path, group, ms):
    try:
        first = ms[0]
        names = [
            str(a["name"]).lower() if isinstance(a, dict) else str(a).lower()
            for a in first["axes"]
        ]
        ds = first["datasets"][0]
        key = ds["path"]
        scale = next(
            (
                t["scale"]
                for t in ds.get("coordinateTransformations", [])
                if t.get("type") == "scale"
            ),
            [1.0] * len(names),
        )
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise DerotationError(
            f"{path.name}: malformed NGFF 'multiscales' metadata ({exc}); "
            f"expected axes and a dataset path"
        ) from None
    parts = str(key).replace("\\", "/").split("/")
    if (
        not isinstance(key, str)
        or not key
        or key.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise DerotationError(
            f"{path.name}: NGFF dataset path {key!r}; expected the name of an "
            f"array inside the store (no '..', not absolute)"
        )
    try:
        arr = group[key]
    except Exception as exc:
        raise DerotationError(
            f"{path.name}: cannot open its array {key!r}: {exc}"
        ) from None
    if not hasattr(arr, "dtype"):
        raise DerotationError(
            f"{path.name}: NGFF dataset path {key!r} names a group; expected an array"
        )
    unknown = [a for a in names if a not in _ORDER]
    if (
        unknown
        or len(set(names)) != len(names)
        or not {"y", "x"} <= set(names)
        or len(names) != arr.ndim
    ):
        raise DerotationError(
            f"{path.name}: expected NGFF axes drawn from t, c, z, y, x "
            f"(y and x required, one per array dimension); found "
            f"{names} for an array of shape {arr.shape}"
        )
    return "".join(names), arr, list(scale), key


def _check_chunks(path: Path, key: str, arr) -> None:
    """Refuse a store with a missing chunk: zarr reads it as the fill value,
    which would be derotated as if it were data. Lists the array's folder
    once; names the first chunk missing."""
    folder = path / key
    if not folder.is_dir():  # not a local folder store: unchecked
        return
    present = set()
    for root, _dirs, names in os.walk(folder):
        rel = Path(root).relative_to(folder).as_posix()
        for n in names:
            present.add(n if rel == "." else f"{rel}/{n}")
    grid = tuple(arr.cdata_shape)
    encode = arr.metadata.encode_chunk_key
    missing = [k for k in map(encode, np.ndindex(*grid)) if k not in present]
    if missing:
        raise DerotationError(
            f"{path.name}: chunk {key}/{missing[0]} is missing ({len(missing)} "
            f"of {math.prod(grid)} chunks missing): it would read as zeros; "
            f"a store written sparse on purpose can be read with "
            f"--allow-missing-chunks"
        )


def _metadata(stored, scale, record, attrs) -> dict:
    meta: dict = {}
    axes = attrs["multiscales"][0]["axes"]
    for a, s, ax in zip(stored, scale, axes, strict=False):
        if a == "t" and isinstance(ax, dict) and ax.get("unit") == "second" and s:
            meta["frame_rate"] = 1.0 / float(s)
    if (
        isinstance(record, dict)
        and record.get("frame_rate")
        and "frame_rate" not in meta
    ):
        meta["frame_rate"] = float(record["frame_rate"])
    if record is not None:
        meta["record"] = record
    return meta
