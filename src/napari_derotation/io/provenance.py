"""Provenance: the JSON record written beside every output.

:func:`record` is the one place that says what an output was made from
(input path, shape, dtype and checksum), with which parameters and by which
software; every writer (file, cluster, pipeline, napari) calls it.
"""

from __future__ import annotations

import datetime
import platform
import sys
from pathlib import Path

import numpy as np

from .. import __version__
from .atomic import file_sha256, write_json
from .zarr_store import store_sha256

__all__ = ["record", "header", "sidecar_path", "write_sidecar", "SIDECAR_SUFFIX"]


def header() -> dict:
    """What every record and JSON output of the package starts with: the
    software, its version and when it was written (UTC)."""
    return {
        "software": "napari-derotation",
        "version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def record(
    *,
    movie_path,
    out_path,
    shape,
    dtype,
    params,
    angles_source,
    n_angles,
    checksum=True,
    **extra,
) -> dict:
    """The parameters and provenance written beside an output.

    ``params`` is the :class:`~napari_derotation.engine.params.DerotationParams`
    used (its :meth:`~.DerotationParams.to_record` keys: ``center_row_col``,
    ``interpolation``, ``fill_value``, ``plane``); ``extra`` entries are
    added as they are.
    """
    import numba
    import scipy
    import tifffile

    rec = {
        **header(),
        "input": {
            "path": str(Path(movie_path).resolve()) if movie_path else None,
            "shape": list(shape),
            "dtype": str(np.dtype(dtype)),
        },
        "output": str(Path(out_path).resolve()) if out_path else None,
        **params.to_record(),
        "angles": {
            "source": _absolute(angles_source),
            "values": int(n_angles),
            "used": int(shape[0] * shape[1]),
        },
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "numba": numba.__version__,
            "tifffile": tifffile.__version__,
            "platform": sys.platform,
        },
    }
    if checksum and movie_path:
        rec["input"]["sha256"] = (
            file_sha256(movie_path)
            if Path(movie_path).is_file()
            else store_sha256(movie_path)
        )
    rec.update(extra)
    return rec


def _absolute(source):
    """A source that names a file, as an absolute path (as ``input.path``);
    a description ("analog signals in ...") as it is."""
    if not source:
        return None
    return str(Path(source).resolve()) if Path(source).exists() else str(source)


def write_sidecar(out_path, rec: dict) -> None:
    """Write ``OUT.derotation.json`` beside a completed ``OUT.tif``; if that
    fails, the TIFF goes too, so an output never exists without its record."""
    try:
        write_json(sidecar_path(out_path), rec)
    except BaseException:
        Path(out_path).unlink(missing_ok=True)
        raise


#: What the record's name adds to the output's stem.
SIDECAR_SUFFIX = ".derotation.json"


def sidecar_path(path) -> Path:
    """``OUT.tif`` -> ``OUT.derotation.json``: where an output's parameters
    are written. Named so that it cannot be another file's ``.json`` (the
    input's ``m.json`` when writing ``m.tiff`` from ``m.tif``)."""
    path = Path(path)
    return path.with_name(path.stem + SIDECAR_SUFFIX)
