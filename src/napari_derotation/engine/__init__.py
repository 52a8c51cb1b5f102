"""The derotation engine: in memory, lazily, file to file and on a cluster.

- :mod:`._driver` (:func:`derotate`, :func:`derotate_into`) validates and
  drives the compiled kernels of :mod:`._kernels`;
- :mod:`.lazy`: a dask array derotated block by block as it is read;
- :mod:`.files`: a TIFF derotated into a TIFF, a chunk at a time;
- :mod:`.cluster`: the same on a dask.distributed cluster.
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:       # what the names are, for readers and the API docs
    from ._driver import (
        INTERPOLATIONS,
        KERNEL_LOCK,
        check_angles,
        check_center,
        check_movie,
        check_parameters,
        default_center,
        derotate,
        derotate_into,
        frames_per_chunk,
        plane_matrix,
        warmup,
    )

#: names of :mod:`._driver`, imported when first used: numba loads with it,
#: and what needs only :mod:`.params` (the command line's parser) should
#: not wait for it
_DRIVER = frozenset({
    "INTERPOLATIONS", "KERNEL_LOCK", "check_angles", "check_center",
    "check_movie", "check_parameters", "default_center", "derotate",
    "derotate_into", "frames_per_chunk", "plane_matrix", "warmup"})


def __getattr__(name: str):
    if name in _DRIVER:
        return getattr(importlib.import_module("._driver", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["derotate", "derotate_into", "check_movie", "check_angles",
           "check_center", "check_parameters", "default_center",
           "plane_matrix", "warmup", "frames_per_chunk", "INTERPOLATIONS",
           "KERNEL_LOCK"]
