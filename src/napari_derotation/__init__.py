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

import importlib
import importlib.abc
import importlib.util
import sys

from .engine import derotate, derotate_into
from .engine.params import DerotationParams
from .errors import Cancelled, DerotationError

__version__ = "0.1.0"

#: public name -> module that defines it (imported when first used)
_LAZY = {
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
}

#: module paths of releases before the package was laid out by concept ->
#: where they live now; ``import napari_derotation.stream`` keeps working.
MOVED_MODULES = {
    "stream": "engine.files",
    "lazy": "engine.lazy",
    "cluster": "engine.cluster",
    "_kernels": "engine._kernels",
    "ellipse": "center.ellipse",
    "offset": "center.offset",
    "loaders": "acquisition.loaders",
    "signals": "acquisition.signals",
    "config": "pipeline.config",
    "recorder": "simulate.recorder",
}

__all__ = ["derotate", "derotate_into", "DerotationParams", "Cancelled",
           "DerotationError", "__version__", *_LAZY]


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``napari_derotation.<old name>`` as the module it moved to."""

    def find_spec(self, fullname, path=None, target=None):
        pkg, _, leaf = fullname.rpartition(".")
        if pkg == __name__ and leaf in MOVED_MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        leaf = spec.name.rpartition(".")[2]
        return importlib.import_module(f"{__name__}.{MOVED_MODULES[leaf]}")

    def exec_module(self, module):
        pass


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    if name in MOVED_MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
