"""The centre of rotation (and the tilt of the rotation plane).

- :mod:`.bayesian`: a Bayesian search minimising the residual motion of the
  derotated movie (:func:`find_center_bayesian`);
- :mod:`.ellipse`: one bright cell followed through the rotation; the
  ellipse it traces gives the centre and the plane's tilt
  (:func:`fit_center_ellipse`);
- :mod:`.offset`: a delay between the angle trace and the movie
  (:func:`estimate_angle_offset`);
- :mod:`.delay`: the centre and that delay found in turn, with the delay's
  uncertainty, refused when the movie cannot constrain it
  (:func:`find_center_and_delay`).
"""

from .._lazy import lazy_names
from .bayesian import (
    MIN_ROTATION_DEGREES,
    CenterResult,
    ResidualMotion,
    find_center_bayesian,
)

__all__ = [
    "find_center_bayesian",
    "CenterResult",
    "ResidualMotion",
    "MIN_ROTATION_DEGREES",
    "fit_center_ellipse",
    "EllipseFit",
    "estimate_angle_offset",
    "OffsetResult",
    "find_center_and_delay",
    "estimate_delay",
    "DelayResult",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    globals(),
    {
        "fit_center_ellipse": "ellipse",
        "EllipseFit": "ellipse",
        "estimate_angle_offset": "offset",
        "OffsetResult": "offset",
        "find_center_and_delay": "delay",
        "estimate_delay": "delay",
        "DelayResult": "delay",
    },
)
