"""napari-derotation: line-by-line derotation of multiphoton movies.

The core (this package minus its ``_napari`` subpackage and the ``gui``
command) imports neither napari nor Qt, so scripts and cluster jobs use it
directly:

>>> from napari_derotation import derotate
>>> fixed = derotate(movie, angles_per_line, center=(row, col))  # doctest: +SKIP

Heavier parts (centre finding, dask, signals) load on first use.
"""

from __future__ import annotations

import importlib

from .engine import derotate, derotate_into
from .errors import Cancelled, DerotationError

__version__ = "0.1.0"

#: public name -> module that defines it (imported when first used)
_LAZY = {
    "find_center_bayesian": "center",
    "fit_center_ellipse": "ellipse",
    "estimate_angle_offset": "offset",
    "derotate_lazy": "lazy",
    "derotate_file": "stream",
    "simulate_movie": "simulate",
    "rotate_by_line": "simulate",
    "run_dataset": "pipeline",
    "Dataset": "pipeline",
}

__all__ = ["derotate", "derotate_into", "Cancelled", "DerotationError",
           "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
