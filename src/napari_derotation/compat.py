"""Drop-in replacements for the reference package ``derotation`` 0.1.6.

For labs migrating scripts: the same names, arguments and conventions as the
reference, computed by this package's engine. This is the one place where the
reference's ``(x, y)`` centre order is accepted; everything else in
napari-derotation takes ``(row, col)``.
"""

from __future__ import annotations

import numpy as np

from .engine import derotate
from .errors import DerotationError


def derotate_an_image_array_line_by_line(
    image_stack, rot_deg_line, blank_pixels_value=0, center=None
):
    """Derotate ``image_stack`` line by line, as the reference function.

    Parameters are the reference's: ``center`` is **(x, y)**, i.e. (column,
    row), defaulting to ``(cols // 2, rows // 2)``; ``blank_pixels_value``
    fills pixels no line covered.

    What differs from the reference, on purpose:

    * Every output pixel is found by inverse mapping and sampled with bilinear
      interpolation: no holes (the reference leaves up to 17% of the disk
      blank), no half-pixel shift from truncating coordinates, sub-pixel
      centres are honoured (the reference truncates them to integers).
    * Frames are independent: a rotation ending exactly on a frame boundary
      does not leak a row into the next frame, and the first line after a
      rotation is not left blank.
    * Non-square frames work; NaN angles raise instead of being treated as
      "not rotating"; fewer angles than lines raise instead of leaving the
      remaining frames untouched.
    * Plotting hooks and the homography option are not supported here; see
      ``napari_derotation.derotate(..., plane_tilt=...)`` for rotation planes.
    """
    image_stack = np.asarray(image_stack)
    if center is None:
        rc = None
    else:
        try:
            x, y = center
        except (TypeError, ValueError):
            raise DerotationError(
                f"center must be (x, y) as in derotation; got {center!r}"
            ) from None
        rc = (float(y), float(x))
    return derotate(image_stack, rot_deg_line, rc, fill_value=blank_pixels_value)
