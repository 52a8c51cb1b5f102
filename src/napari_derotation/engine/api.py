"""The engine's public entry: :func:`derotate` of a movie in memory, with
or without planes and channels (the 3-D engine in :mod:`._driver`, the
hyperstack in :mod:`.hyperstack`)."""

from __future__ import annotations

import numpy as np

from ._driver import Progress, check_movie, derotate_into
from .hyperstack import derotate_axes
from .params import DerotationParams

__all__ = ["derotate"]


def derotate(
    movie,
    angles_per_line,
    center=None,
    *,
    params: DerotationParams | None = None,
    progress: Progress | None = None,
    axes: str | None = None,
    **overrides,
) -> np.ndarray:
    """Derotate a movie line by line.

    Parameters
    ----------
    movie : array (frames, rows, cols)
        Any real dtype; a numpy array or memmap (never modified). Frames need
        not be square.
    angles_per_line : 1-D array
        Rotation angle in degrees of every scanned line, in acquisition order;
        at least ``frames * rows`` values (extra ones are ignored). Sign as in
        the reference package (see the module docstring).
    center : (row, col), optional
        Centre of rotation in pixels, sub-pixel allowed. Default
        ``(rows // 2, cols // 2)`` as in the reference.
    interpolation : {"bilinear", "nearest", "cubic"}
        How the raw frame is sampled where the scan crossed each pixel
        (``"cubic"``: Catmull-Rom, sharper than bilinear, integers clipped
        to the dtype's range).
    fill_value : float
        Value of pixels that no scanned line covered. NaN is allowed for
        float movies.
    progress : callable(done_frames, total_frames) -> bool | None, optional
        Called as frames complete; returning ``False`` stops the work and
        raises :class:`~napari_derotation.errors.Cancelled` (no output).
    plane_tilt, plane_orientation : float
        Degrees. When the sample rotates in a plane tilted from the imaging
        plane (stationary cells trace ellipses, not circles), the tilt and
        the orientation of the tilt axis (see :func:`plane_matrix`).
    plane_output : {"imaging", "rotation"}
        With a tilt: give the result in the imaging plane (default; the
        movie keeps its acquired geometry) or in the rotation plane
        (stretched across the tilt axis, as the reference leaves it).
    params : DerotationParams, optional
        All of the above but ``progress`` in one object (what the CLI,
        configs and the widget pass); each of those keywords that is given
        (not None) replaces its field, even with the default value
        (``plane_tilt=0`` removes a tilt of ``params``).
    axes : str, optional
        For a movie with planes and/or channels: its dimensions, from T, Z,
        C, Y, X (e.g. ``"TCYX"``, ``"TZCYX"``). Line ``row`` of plane ``z``
        at time ``t`` has angle ``angles_per_line[(t * Z + z) * rows +
        row]``, shared by every channel (see
        :mod:`napari_derotation.engine.hyperstack`). Default: a 3-D movie
        (frames, rows, cols).

    Returns
    -------
    ndarray
        A new array with the movie's shape and dtype (integer output is
        rounded and clipped to the dtype's range).

    Raises
    ------
    DerotationError (a ValueError)
        For a movie that is not 3-D or is empty, fewer angles than lines, NaN
        or infinite angles, a centre outside the frame, an unknown
        interpolation or a fill value the dtype cannot hold.
    Cancelled
        When ``progress`` returned ``False``.

    Notes
    -----
    See the module docstring for how each output pixel is found.
    """
    params = DerotationParams.build(params, center=center, **overrides)
    if axes is not None and (np.ndim(movie) != 3 or str(axes).upper() != "TYX"):
        return derotate_axes(
            movie, angles_per_line, axes, params=params, progress=progress
        )
    movie = check_movie(movie)
    out = np.empty(movie.shape, movie.dtype)
    derotate_into(
        movie, angles_per_line, out=out, params=params, progress=progress, _fresh=True
    )
    return out
