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
