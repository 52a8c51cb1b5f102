"""Writer: an image layer to ``.tif``/``.tiff`` with its derotation record.

napari offers it in File > Save Selected Layer(s) as "napari-derotation TIFF
with derotation record". The TIFF keeps the layer's dtype. A derotated
layer's JSON record (:func:`~napari_derotation.io.sidecar_path`) is the same
one the widget's Export writes (:func:`._model.derotated_record`). Another
layer with derotation metadata (:mod:`._meta`) gets a JSON with its centre,
angles' source and the package version, and a raw movie's per-line angles
go to ``OUT_angles.npy``, where the reader finds them again. Every file is
written atomically; the layer's own source file is never overwritten.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import DerotationError
from ..io import (
    TIFF_SUFFIXES,
    OutputSet,
    check_not_input,
    save_angles,
    sidecar_path,
    write_json,
    write_tiff,
)
from . import _meta, _model

SUFFIXES = TIFF_SUFFIXES


def write_image(path: str, data, meta: dict) -> list[str]:
    """npe2 single-layer writer: returns the paths written."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        path = path.with_name(path.name + ".tif")
    metadata = (meta or {}).get("metadata") or {}
    d = _meta.get(metadata)
    arr = np.asarray(data)
    if arr.ndim < 2:
        raise DerotationError(
            f"expected an image (2-D or a stack of frames); got shape "
            f"{arr.shape}")
    sources = (d.get("movie_path"), d.get("input_path"))
    check_not_input(path, *sources)
    if d:
        check_not_input(sidecar_path(path), *sources)
    with OutputSet() as out:
        out.add(write_tiff(path, arr))
        if d.get("derotated") and d.get("source_layer"):
            rec = _model.derotated_record(path, arr, metadata,
                                          input_path=d.get("input_path"),
                                          layer=(meta or {}).get("name"))
            out.add(write_json(sidecar_path(path), rec))
        elif d:
            out.add(write_json(sidecar_path(path),
                               layer_record(path, arr, meta)))
            found = _meta.angles(metadata)
            if found is not None and not d.get("derotated"):
                out.add(save_angles(
                    path.with_name(f"{path.stem}_angles.npy"), found[0]))
    return [str(p) for p in out.written]


def layer_record(path, data, meta: dict) -> dict:
    """The JSON written beside a layer's TIFF."""
    metadata = (meta or {}).get("metadata") or {}
    params = _meta.parameters(metadata)
    rec = {
        "software": "napari-derotation",
        "version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"),
        "output": str(Path(path).resolve()),
        "layer": (meta or {}).get("name"),
        "shape": list(np.shape(data)),
        "dtype": str(np.asarray(data).dtype),
    }
    rec.update(params)
    return rec
