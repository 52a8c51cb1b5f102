"""What the plugin keeps in ``layer.metadata["derotation"]`` (no Qt here).

Keys (all optional):

``angles_per_line``
    1-D float array, degrees, one per scanned line.
``angles_source``
    Where the angles came from (a file path, ``"sample"``, a dataset folder).
``angles_per_frame``
    1-D float array, one angle per frame, when the source gave one.
``movie_path``
    The TIFF (or dataset folder) the layer was read from.
``movie_name``
    A multi-channel movie's name (each channel's layer is "NAME chK").
``angles_found_by``
    How the widget found the angles of a movie napari's own reader opened
    ("found beside FILE"); ``angles_looked_for`` says it looked once.
``center``
    ``[row, col]``: the centre of rotation chosen for this movie, or, for a
    derotated layer, the centre it was derotated about.
``plane_tilt``, ``plane_orientation``, ``plane_output``
    Degrees: the tilt of the rotation plane and the direction of its tilt
    axis (``derotate(plane_tilt=..., plane_orientation=...)``), 0 for a
    rotation in the imaging plane; the plane the result is given in.
``true_center``
    ``[row, col]``: the known centre of a simulated movie.
``derotated``
    True for a layer made by derotation; then ``interpolation``,
    ``fill_value``, ``source_layer`` and ``version`` say how; a channel of a
    multi-channel movie has its own ``fill_value`` and every channel's in
    ``fill_values`` (channel order).
``input_path``
    For a derotated layer: the raw movie's file (never overwritten).
``record``
    The JSON sidecar found beside a derotated TIFF.
"""

from __future__ import annotations

import numpy as np

from ..engine.params import FIELDS, DerotationParams

KEY = "derotation"


def get(metadata) -> dict:
    """The plugin's dict in a layer's metadata (empty if absent)."""
    value = (metadata or {}).get(KEY)
    return value if isinstance(value, dict) else {}


def angles(metadata):
    """``(angles_per_line, source)`` from a layer's metadata, or ``None``."""
    d = get(metadata)
    a = d.get("angles_per_line")
    if a is None:
        return None
    return np.asarray(a, np.float64), str(d.get("angles_source") or "metadata")


def params(metadata) -> DerotationParams:
    """The derotation parameters a layer was (or will be) derotated with:
    its keys named as :class:`DerotationParams`' fields, the others at
    their defaults."""
    d = get(metadata)
    given = {k: d.get(k) for k in FIELDS}
    for k in ("center", "fill_value"):
        if isinstance(given[k], np.ndarray | list):
            given[k] = tuple(float(v) for v in given[k])
    return DerotationParams.build(None, **given)


def from_params(params: DerotationParams) -> dict:
    """The metadata keys that hold ``params`` (read back by :func:`params`)."""
    out = {k: getattr(params, k) for k in FIELDS}
    for k in ("center", "fill_value"):
        if isinstance(out[k], tuple):
            out[k] = list(out[k])
    return out


def parameters(metadata) -> dict:
    """The derotation parameters worth saving beside an image (JSON-ready)."""
    d = get(metadata)
    out = {}
    for key in (
        "center",
        "true_center",
        "angles_source",
        "interpolation",
        "fill_value",
        "derotated",
        "source_layer",
        "version",
        "movie_path",
        "input_path",
        "plane_tilt",
        "plane_orientation",
        "plane_output",
    ):
        if d.get(key) is not None:
            v = d[key]
            out[key] = v.tolist() if isinstance(v, np.ndarray) else v
    if "center" in out:
        out["center_row_col"] = [float(x) for x in out.pop("center")]
    if d.get("angles_per_line") is not None:
        out["n_angles"] = int(np.size(d["angles_per_line"]))
    return out
