"""napari-derotation: line-by-line derotation of multiphoton movies.

The core (this package minus its ``_napari`` subpackage) imports neither
napari nor Qt, so scripts and cluster jobs use it directly::

    from napari_derotation import derotate
    fixed = derotate(movie, angles_per_line, center=(row, col))
"""

from .engine import derotate, derotate_into
from .errors import Cancelled, DerotationError

__version__ = "0.1.0"

__all__ = ["derotate", "derotate_into", "Cancelled", "DerotationError",
           "__version__"]


def __getattr__(name):
    # dask is imported only when the lazy API is used
    if name == "derotate_lazy":
        from .lazy import derotate_lazy

        return derotate_lazy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
