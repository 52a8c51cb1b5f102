"""Reader: TIFF movies (with their rotation signals), OME-Zarr stores
(opened lazily, as dask) and dataset folders.

``napari_get_reader(path)`` is the npe2 reader command. It returns ``None``
for anything it cannot read and never raises; a file it accepts but fails to
read gives a napari notification and no layer.

Beside a movie ``rec.tif`` the reader looks for its per-line angles, first
match wins: ``rec_angles.npy``, ``rec_angles.csv``, ``rec_angles.txt``,
``angles_per_line.npy``, then the folder as a dataset (analog signals,
stimulus table and config; :mod:`napari_derotation.pipeline`). A JSON
written by napari-derotation beside a derotated TIFF (its
:func:`~napari_derotation.io.sidecar_path`) is attached as ``record``.

The reader returns at once: a dataset's angles are computed in a worker
(:mod:`._pending`; the layer says ``angles_pending`` until they arrive), and
the movie is never memory-mapped: a small one is read into memory, a large
one is a dask array reading its frames through a file handle when shown.
Replacing the file under napari (File > Save over the raw movie) then gives
a read error, never a bus error that kills the viewer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..errors import DerotationError
from ..io import load_angles, sidecar_path
from ..io.sources import TIFF_SUFFIXES
from ..io.sources import open_movie as open_source
from ..io.zarr_store import is_zarr_path
from . import _meta

SUFFIXES = TIFF_SUFFIXES
#: Files larger than this open as dask arrays (read as frames are shown);
#: smaller ones are read into memory (about 0.1 s).
LAZY_BYTES = 64 * 2**20


def napari_get_reader(path):
    """Return :func:`read_path` if ``path`` is a TIFF movie or a dataset
    folder, else ``None``."""
    try:
        if isinstance(path, list | tuple):
            if not path or not all(_accepts(p) for p in path):
                return None
        elif not _accepts(path):
            return None
    except Exception:  # never raise from a getter
        return None
    return read_path


def _accepts(path) -> bool:
    p = Path(path)
    if is_zarr_path(p):
        return p.is_dir()
    if p.is_dir():
        return _dataset(p, quiet=True) is not None or bool(_tiffs(p))
    return p.suffix.lower() in SUFFIXES


def _tiffs(folder: Path) -> list:
    return [f for f in folder.iterdir() if f.suffix.lower() in SUFFIXES]


#: ``name_00001.tif``: a file of a sequence (the acquisition's ``name``)
_SEQUENCE = re.compile(r"^(?P<stem>.+)_\d+$")


def _sequences(paths) -> list:
    """Group the files of one acquisition (same name but a trailing number,
    same folder) into one list; other paths stay as they are."""
    groups: dict = {}
    for p in paths:
        m = _SEQUENCE.match(Path(p).stem) if Path(p).is_file() else None
        key = (str(Path(p).parent), m.group("stem")) if m else str(p)
        groups.setdefault(key, []).append(p)
    return [g[0] if len(g) == 1 else list(g) for g in groups.values()]


def _hyperstack(path: Path) -> bool:
    """True for a TIFF with planes or channels (ImageJ, OME, ScanImage)."""
    try:
        with open_source(path) as src:
            return src.axes != "TYX"
    except DerotationError:
        return False


def read_hyperstack(path) -> tuple:
    """``(data, kwargs, "image")`` of a movie with planes and/or channels, or
    of a sequence of files: one layer per channel (napari's
    ``channel_axis``), planes as a slider, the angles attached to each
    channel's layer. Every layer's metadata names its ``channel``, the
    movie's ``channels``, ``planes`` and ``axes``."""
    with open_source(path) as src:
        shape, axes, meta_src = src.shape, src.axes, dict(src.metadata)
        paths = list(src.paths)
    data = _hyperstack_data(paths, shape, axes)
    first = paths[0]
    name = (
        first.stem
        if len(paths) == 1
        else (_SEQUENCE.match(first.stem) or re.match("(.*)", first.stem)).group(1)
    )
    found = find_angles(first) if len(paths) == 1 else _folder_angles(paths)
    base = {
        "movie_path": str(first.resolve()),
        "movie_name": name,
        "axes": axes,
        "planes": shape[1],
        "channels": shape[2],
        "source_files": [str(p) for p in paths],
    }
    if meta_src.get("frame_rate"):
        base["frame_rate"] = meta_src["frame_rate"]
    if found is not None:
        base.update(angles_per_line=found[0], angles_source=found[1])
    if len(paths) == 1:
        _attach_record(base, first)
    n_ch = shape[2]
    names = meta_src.get("channel_names") or [f"ch{c}" for c in range(n_ch)]
    kwargs = {"name": name, "metadata": {_meta.KEY: base}}
    if n_ch > 1:
        kwargs = {
            "name": [f"{name} {n}" for n in names],
            "channel_axis": axes.index("C"),
            "metadata": [{_meta.KEY: {**base, "channel": c}} for c in range(n_ch)],
        }
    return data, kwargs, "image"


def _folder_angles(paths):
    """Angles beside a sequence of files: ``<folder>_angles.npy`` or
    ``angles_per_line.npy``."""
    return _first_angles(
        (
            paths[0].with_name(f"{paths[0].parent.name}_angles.npy"),
            paths[0].with_name("angles_per_line.npy"),
        )
    )


def _hyperstack_data(paths, shape, axes):
    """Never memory-mapped (replacing the file must not crash the viewer):
    read into memory when small, else a dask array of chunks of time points
    read through the movie source on demand."""
    import dask
    import dask.array as da

    from ..engine.hyperstack import from_tzcyx

    with open_source(paths, channels=shape[2], planes=shape[1]) as src:
        if int(np.prod(shape)) * src.dtype.itemsize <= LAZY_BYTES:
            return from_tzcyx(src.read(0, shape[0]), axes)
    step = max(1, min(shape[0], (32 << 20) // int(np.prod(shape[1:]) * 2)))
    with open_source(paths) as src:
        dtype = src.dtype
        channels, planes = shape[2], shape[1]

    def read(a, b):
        with open_source(paths, channels=channels, planes=planes) as s:
            return from_tzcyx(s.read(a, b), axes)

    out_shape = from_tzcyx(np.empty((1, *shape[1:]), np.bool_), axes).shape
    blocks = [
        da.from_delayed(
            dask.delayed(read)(a, min(a + step, shape[0])),
            (min(a + step, shape[0]) - a, *out_shape[1:]),
            dtype,
        )
        for a in range(0, shape[0], step)
    ]
    return da.concatenate(blocks, axis=0)


def read_path(path) -> list:
    """Read one path or a list of paths into napari layer data.

    Files of one acquisition (``name_00001.tif``, ``name_00002.tif``, ...)
    open as one movie; a movie with channels gives one layer per channel.
    """
    paths = _sequences(path if isinstance(path, list | tuple) else [path])
    layers = []
    for p in paths:
        try:
            layers.append(read_layer(p))
        except DerotationError as exc:
            _notify_error(str(exc))
        except Exception as exc:  # a broken file: say so, no traceback
            _notify_error(f"cannot open {Path(p).name}: {exc}")
    return layers


def read_layer(path) -> tuple:
    """``(data, kwargs, "image")`` for a movie file or a dataset folder.

    Raises :class:`DerotationError` when it cannot be read.
    """
    if isinstance(path, list):
        return read_hyperstack(path)
    path = Path(path)
    if (
        not is_zarr_path(path)
        and path.is_dir()
        and _dataset(path, quiet=True) is None
        and _tiffs(path)
    ):
        return read_hyperstack(path)
    if path.is_file() and _hyperstack(path):
        return read_hyperstack(path)
    record, pending = None, None
    if is_zarr_path(path):
        with open_source(path) as src:
            data, record = src.dask(), src.record
        found = find_angles(path)
        name = (
            path.name[: -len(".ome.zarr")]
            if path.name.lower().endswith(".ome.zarr")
            else path.stem
        )
    elif path.is_dir():
        ds = _dataset(path)
        if ds is None:
            raise DerotationError(
                f"{path.name}: expected a dataset folder (analog signals, "
                f"stimulus table, config); found none"
            )
        data = open_movie(ds.movie_path)
        found, pending = None, (ds, path)
        name = Path(ds.movie_path).stem
    else:
        data = open_movie(path)
        meta = {"movie_path": str(path.resolve())}
        attach_angles(meta, path)
        _attach_record(meta, path)
        return data, {"name": path.stem, "metadata": {_meta.KEY: meta}}, "image"
    meta = {"movie_path": str(path.resolve())}
    if found is not None:
        meta.update(angles_per_line=found[0], angles_source=found[1])
    if isinstance(record, dict):
        _mark_derotated(meta, record)
    if pending is not None:
        from ._pending import compute_angles

        compute_angles(meta, *pending)
    return data, {"name": name, "metadata": {_meta.KEY: meta}}, "image"


def attach_angles(meta: dict, path) -> bool:
    """Look for the per-line angles of the movie file ``path`` and put them
    in ``meta`` (a layer's derotation dict): a file beside it
    (:func:`find_angles`), else, when it is a dataset folder's movie, the
    folder's analog signals, computed in a worker (``meta`` then says
    ``angles_pending``). The one rule for the reader and for the widget
    (a movie napari's builtin reader opened). Returns whether angles were
    found or are being computed."""
    path = Path(path)
    if not path.is_file():
        return False
    found = find_angles(path)
    if found is not None:
        meta.update(angles_per_line=found[0], angles_source=found[1])
        return True
    pending = _movie_dataset(path)
    if pending is None:
        return False
    from ._pending import compute_angles

    compute_angles(meta, *pending)
    return True


def _attach_record(meta: dict, path: Path) -> None:
    """The record beside a TIFF this package wrote: the layer is then a
    derotated movie (never offered as a raw one)."""
    record = _record(path) if path.is_file() else None
    if isinstance(record, dict):
        _mark_derotated(meta, record)


def _mark_derotated(meta: dict, record: dict) -> None:
    meta["record"] = record
    meta["derotated"] = True
    if record.get("center_row_col"):
        meta["center"] = list(record["center_row_col"])


def open_movie(path):
    """The movie as a read-only array, never memory-mapped: read into memory
    when small, a dask array of frame chunks read on demand when large."""
    path = Path(path)
    if path.is_file() and path.stat().st_size > LAZY_BYTES:
        return _dask_movie(path)
    with open_source(path) as src:
        return src.frames()


def _dask_movie(path: Path):
    import dask
    import dask.array as da

    with open_source(path) as src:
        t, z, c, rows, cols = src.shape
        shape, dtype = (t, rows, cols), src.dtype
        if z > 1 or c > 1:
            src.frames()  # refused: one plane and channel here
    step = max(1, min(shape[0], (32 * 2**20) // (shape[1] * shape[2] * dtype.itemsize)))

    def read(start, stop):
        with open_source(path) as src:
            return src.read(start, stop).reshape(stop - start, *shape[1:])

    blocks = [
        da.from_delayed(
            dask.delayed(read)(s, min(s + step, shape[0])),
            (min(s + step, shape[0]) - s, *shape[1:]),
            dtype,
        )
        for s in range(0, shape[0], step)
    ]
    return da.concatenate(blocks, axis=0)


def sidecar_candidates(movie_path) -> list[Path]:
    """Files that may hold a movie's per-line angles, in order of preference."""
    p = Path(movie_path)
    return [p.with_name(f"{p.stem}_angles{s}") for s in (".npy", ".csv", ".txt")] + [
        p.with_name("angles_per_line.npy")
    ]


def find_angles(movie_path):
    """``(angles_per_line, source)`` from a file beside a movie, or
    ``None``. A sidecar that exists but cannot be read is reported."""
    return _first_angles(sidecar_candidates(movie_path))


def _first_angles(candidates):
    """``(angles, source)`` from the first of ``candidates`` that exists;
    one that exists but cannot be read is reported and skipped."""
    for cand in candidates:
        if cand.is_file():
            try:
                return load_angles(cand), str(cand)
            except DerotationError as exc:
                _notify_warning(f"ignoring {cand.name}: {exc}")
    return None


def _movie_dataset(movie_path):
    """``(dataset, folder)`` when the movie is a dataset folder's movie."""
    folder = Path(movie_path).parent
    ds = _dataset(folder, quiet=True)
    if ds is not None and _same_file(ds.movie_path, movie_path):
        return ds, folder
    return None


def _same_file(a, b) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (TypeError, OSError):
        return False


def _dataset(folder: Path, quiet: bool = False):
    """The pipeline's ``Dataset`` for a folder, or ``None``."""
    from ..pipeline import Dataset

    try:
        return Dataset.from_folder(folder)
    except DerotationError as exc:
        if not quiet:
            _notify_warning(str(exc))
        return None
    except Exception:
        return None


def _record(path: Path):
    """The napari-derotation JSON beside a TIFF, if there is one."""
    # OUT.derotation.json, else the name used before (OUT.json)
    for js in (sidecar_path(path), path.with_suffix(".json")):
        try:
            rec = json.loads(js.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("software") == "napari-derotation":
            return rec
    return None


def _notify_error(message: str) -> None:
    from napari.utils.notifications import show_error

    show_error(message)


def _notify_warning(message: str) -> None:
    from napari.utils.notifications import show_warning

    show_warning(message)
