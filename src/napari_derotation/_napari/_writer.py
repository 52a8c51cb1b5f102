"""Writer: an image layer to ``.tif``/``.tiff`` with its derotation record.

napari offers it in File > Save Selected Layer(s) as "napari-derotation TIFF
with derotation record". The TIFF keeps the layer's dtype. A derotated
layer's JSON record (:func:`~napari_derotation.io.sidecar_path`) is the same
one the widget's Export writes (:func:`napari_derotation.job.write_result`). Another
layer with derotation metadata (:mod:`._meta`) gets a JSON with its centre,
angles' source and the package version, and a raw movie's per-line angles
go to ``OUT_angles.npy``, where the reader finds them again. Every file is
written atomically; the layer's own source file is never overwritten.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..engine.params import FIELDS
from ..errors import DerotationError
from ..io import (
    OutputSet,
    check_not_input,
    save_angles,
    sidecar_path,
    write_json,
    write_tiff,
)
from ..io.provenance import header
from ..io.sources import TIFF_SUFFIXES
from ..job import check_job_files, output_spec
from . import _meta, _model


def write_image(path: str, data, meta: dict) -> list[str]:
    """npe2 single-layer writer: returns the paths written."""
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        # a name typed in the save dialog: the one rule of names, ".tif" added
        path = output_spec(folder=path.parent, name=path.name, fmt="tif").path
    metadata = (meta or {}).get("metadata") or {}
    d = _meta.get(metadata)
    arr = np.asarray(data)
    if arr.ndim < 2:
        raise DerotationError(
            f"expected an image (2-D or a stack of frames); got shape {arr.shape}"
        )
    if d.get("derotated") and d.get("source_layer") and arr.ndim >= 3:
        return _write_derotated(path, arr, metadata, (meta or {}).get("name"))
    sources = (d.get("movie_path"), d.get("input_path"))
    check_not_input(path, *sources)
    if d:
        check_not_input(sidecar_path(path), *sources)
    with OutputSet() as out:
        out.add(write_tiff(path, arr))
        if d:
            out.add(write_json(sidecar_path(path), layer_record(path, arr, meta)))
            found = _meta.angles(metadata)
            if found is not None and not d.get("derotated"):
                out.add(
                    save_angles(path.with_name(f"{path.stem}_angles.npy"), found[0])
                )
    return [str(p) for p in out.written]


def _write_derotated(path, arr, metadata, layer_name) -> list[str]:
    """A derotated layer: the same job as the widget's Export, into one
    TIFF and its record (napari's dialog has asked before replacing)."""
    from ..job import write_result

    job = _model.export_job(
        path.parent, path.name, arr, metadata, overwrite=True, check_files=False
    )
    job = dataclasses.replace(job, output=output_spec(path, overwrite=True))
    check_job_files(job)
    steps = write_result(
        job, arr, source_layer=_meta.get(metadata).get("source_layer"), layer=layer_name
    )
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def layer_record(path, data, meta: dict) -> dict:
    """The JSON written beside a layer's TIFF: the package's header, the
    layer and its derotation parameters (as every record holds them)."""
    metadata = (meta or {}).get("metadata") or {}
    d = _meta.get(metadata)
    rec = {
        **header(),
        "output": str(Path(path).resolve()),
        "layer": (meta or {}).get("name"),
        "shape": list(np.shape(data)),
        "dtype": str(np.asarray(data).dtype),
    }
    extra = _meta.parameters(metadata)
    for key in FIELDS:
        extra.pop(key, None)
    extra.pop("center_row_col", None)
    rec.update(extra)
    rec.update(_meta.params(metadata).to_record())
    if d.get("center") is None:
        rec["center_row_col"] = None
    return rec
