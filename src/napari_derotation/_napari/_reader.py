"""Reader: TIFF movies (with their rotation signals) and dataset folders.

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
from pathlib import Path

from ..errors import DerotationError
from ..io import MovieFile, load_angles, read_movie, sidecar_path
from . import _meta

SUFFIXES = (".tif", ".tiff")
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
    if p.is_dir():
        return _dataset(p, quiet=True) is not None
    return p.suffix.lower() in SUFFIXES


def read_path(path) -> list:
    """Read one path or a list of paths into napari layer data."""
    paths = path if isinstance(path, list | tuple) else [path]
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
    path = Path(path)
    pending = None
    if path.is_dir():
        ds = _dataset(path)
        if ds is None:
            raise DerotationError(
                f"{path.name}: expected a dataset folder (analog signals, "
                f"stimulus table, config); found none")
        data = open_movie(ds.movie_path)
        found, pending = None, (ds, path)
        name = Path(ds.movie_path).stem
    else:
        data = open_movie(path)
        found = find_angles(path)
        if found is None:
            pending = _movie_dataset(path)
        name = path.stem
    meta = {"movie_path": str(path.resolve())}
    if found is not None:
        angles, source = found[0], found[1]
        meta.update(angles_per_line=angles, angles_source=source)
    record = _record(path) if path.is_file() else None
    if record is not None:
        meta["record"] = record
        meta["derotated"] = True
        if record.get("center_row_col"):
            meta["center"] = list(record["center_row_col"])
    if pending is not None:
        from ._pending import compute_angles

        compute_angles(meta, *pending)
    return data, {"name": name, "metadata": {_meta.KEY: meta}}, "image"


def open_movie(path):
    """The movie as a read-only array, never memory-mapped: read into memory
    when small, a dask array of frame chunks read on demand when large."""
    path = Path(path)
    if path.is_file() and path.stat().st_size > LAZY_BYTES:
        return _dask_movie(path)
    return read_movie(path, mmap=False)


def _dask_movie(path: Path):
    import dask
    import dask.array as da

    with MovieFile(path) as mf:
        shape, dtype = mf.shape, mf.dtype
    step = max(1, min(shape[0], (32 * 2**20) // (shape[1] * shape[2]
                                                  * dtype.itemsize)))

    def read(start, stop):
        with MovieFile(path) as mf:
            return mf.read(start, stop)

    blocks = [da.from_delayed(dask.delayed(read)(s, min(s + step, shape[0])),
                              (min(s + step, shape[0]) - s, *shape[1:]), dtype)
              for s in range(0, shape[0], step)]
    return da.concatenate(blocks, axis=0)


def sidecar_candidates(movie_path) -> list[Path]:
    """Files that may hold a movie's per-line angles, in order of preference."""
    p = Path(movie_path)
    return [p.with_name(f"{p.stem}_angles{s}") for s in (".npy", ".csv", ".txt")
            ] + [p.with_name("angles_per_line.npy")]


def find_angles(movie_path):
    """``(angles_per_line, source)`` from a file beside a movie, or
    ``None``. A sidecar that exists but cannot be read is reported."""
    for cand in sidecar_candidates(movie_path):
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
    """The napari-derotation JSON beside a TIFF, if there is one (its
    sidecar, else ``OUT.json`` as earlier versions named it)."""
    for js in dict.fromkeys((sidecar_path(path), path.with_suffix(".json"))):
        if not js.is_file():
            continue
        try:
            rec = json.loads(js.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and \
                rec.get("software") == "napari-derotation":
            return rec
    return None


def _notify_error(message: str) -> None:
    from napari.utils.notifications import show_error

    show_error(message)


def _notify_warning(message: str) -> None:
    from napari.utils.notifications import show_warning

    show_warning(message)
