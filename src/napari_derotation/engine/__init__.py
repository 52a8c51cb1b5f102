"""The derotation engine: in memory, lazily, file to file and on a cluster.

- :mod:`.api` (:func:`derotate`) and :mod:`._driver`
  (:func:`derotate_into`) validate and drive the compiled kernels of
  :mod:`._kernels`; :mod:`.hyperstack` adds planes and channels;
- :mod:`.lazy`: a dask array derotated block by block as it is read;
- :mod:`.files`: a TIFF derotated into a TIFF, a chunk at a time;
- :mod:`.cluster`: the same on a dask.distributed cluster.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:  # what the names are, for readers and the API docs
    from ._driver import (
        KERNEL_LOCK,
        check_angles,
        check_center,
        check_movie,
        check_parameters,
        default_center,
        derotate_into,
        frames_per_chunk,
        plane_matrix,
        warmup,
    )
    from .api import derotate

# loaded on first use: numba comes with the driver, and what needs only
# .params (the command line's parser) should not wait for it
__getattr__, __dir__ = lazy_names(
    __name__,
    globals(),
    {
        **dict.fromkeys(
            (
                "KERNEL_LOCK",
                "check_angles",
                "check_center",
                "check_movie",
                "check_parameters",
                "default_center",
                "derotate_into",
                "frames_per_chunk",
                "plane_matrix",
                "warmup",
            ),
            "_driver",
        ),
        "derotate": "api",
    },
)

__all__ = [
    "derotate",
    "derotate_into",
    "check_movie",
    "check_angles",
    "check_center",
    "check_parameters",
    "default_center",
    "plane_matrix",
    "warmup",
    "frames_per_chunk",
    "KERNEL_LOCK",
]
