"""napari-derotation: line-by-line derotation of multiphoton movies.

The core (this package minus its ``_napari`` subpackage and the ``gui``
command) imports neither napari nor Qt, so scripts and cluster jobs use it
directly:

>>> from napari_derotation import derotate
>>> fixed = derotate(movie, angles_per_line, center=(row, col))  # doctest: +SKIP

The package is laid out by concept, one level deep: ``engine`` (derotation
in memory, lazily, file to file, on a cluster), ``center`` (centre of
rotation and plane tilt), ``acquisition`` (analog signals -> angles),
``pipeline`` (config, dataset, run), ``io`` (files, atomic writes,
provenance), ``simulate``, ``cli`` and ``_napari`` (the plugin). Heavier
parts (centre finding, dask, signals) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_names
from .errors import Cancelled, DerotationError

if TYPE_CHECKING:  # what the names are, for readers and the API docs
    from .engine import derotate, derotate_into
    from .engine.params import DerotationParams

__version__ = "0.1.0"

# the engine too: the command line starts, and handles Ctrl-C, before
# numba is loaded
__getattr__, __dir__ = lazy_names(
    __name__,
    globals(),
    {
        "derotate": "engine",
        "derotate_into": "engine",
        "DerotationParams": "engine.params",
        "find_center_bayesian": "center.bayesian",
        "fit_center_ellipse": "center.ellipse",
        "estimate_angle_offset": "center.offset",
        "find_center_and_delay": "center.delay",
        "derotate_lazy": "engine.lazy",
        "derotate_file": "engine.files",
        "simulate_movie": "simulate.movie",
        "rotate_by_line": "simulate.movie",
        "run_dataset": "pipeline.run",
        "Dataset": "pipeline.dataset",
        "Job": "job",
        "describe": "job",
    },
)

__all__ = [
    "derotate",
    "derotate_into",
    "DerotationParams",
    "Cancelled",
    "DerotationError",
    "__version__",
    "find_center_bayesian",
    "fit_center_ellipse",
    "estimate_angle_offset",
    "derotate_lazy",
    "derotate_file",
    "simulate_movie",
    "rotate_by_line",
    "run_dataset",
    "Dataset",
    "Job",
    "describe",
]
