"""Derotation of movies with planes and channels (axes T, Z, C, Y, X).

Scan order decides which angle each line gets: all channels of a line are
acquired at once, and the planes of a time point are scanned one after
another. So line ``row`` of plane ``z`` at time ``t`` has the angle

    angles_per_line[(t * Z + z) * rows + row]

and every channel of that line uses it. A ``(T, Z, C, Y, X)`` movie is
therefore, per channel, a ``(T * Z, Y, X)`` stack of frames in scan order,
derotated by the single-channel engine (:func:`derotate_into`) with the
same angles; nothing about a single-channel movie changes.
"""

from __future__ import annotations

import numpy as np

from ..errors import Cancelled, DerotationError
from ._driver import check_angles, derotate_into, line_angles
from .params import DerotationParams

__all__ = [
    "derotate_hyperstack",
    "derotate_axes",
    "to_tzcyx",
    "from_tzcyx",
    "line_index",
    "plane_angles",
    "pick_plane",
]

AXES = "TZCYX"


def line_index(t, z, row, planes: int, rows: int):
    """Index into ``angles_per_line`` of line ``row`` of plane ``z`` at time
    ``t`` (works on arrays): ``(t * planes + z) * rows + row``."""
    return (np.asarray(t) * planes + np.asarray(z)) * rows + np.asarray(row)


def check_axes(axes: str, ndim: int) -> str:
    """``axes`` upper-cased, checked: T, optional Z, optional C, then Y, X,
    one letter per dimension."""
    a = str(axes).upper()
    if (
        len(a) != ndim
        or len(set(a)) != len(a)
        or not a.endswith("YX")
        or set(a) - set(AXES)
        or "T" not in a
    ):
        raise DerotationError(
            f"axes must name each of the movie's {ndim} dimensions once, from "
            f"T, Z, C, Y, X with Y, X last (e.g. 'TCYX', 'TZCYX'); got "
            f"{axes!r}"
        )
    return a


def to_tzcyx(movie, axes: str):
    """A view of ``movie`` with axes ``axes`` as ``(T, Z, C, Y, X)``."""
    a = check_axes(axes, np.ndim(movie))
    for ax in "ZC":
        if ax not in a:
            movie = movie[..., np.newaxis, :, :]
            a = a[:-2] + ax + "YX"
    return np.transpose(movie, [a.index(ax) for ax in AXES])


def from_tzcyx(movie5, axes: str):
    """The inverse of :func:`to_tzcyx` (a view)."""
    a = check_axes(axes, len(axes))
    kept = [ax for ax in AXES if ax in a]
    out = movie5
    for ax in "CZ":
        if ax not in a:
            out = out.squeeze(AXES.index(ax))
    return np.transpose(out, [kept.index(ax) for ax in a])


def derotate_hyperstack(
    movie5,
    angles_per_line,
    out=None,
    *,
    params: DerotationParams | None = None,
    progress=None,
    frame_offset: int = 0,
    total_frames: int | None = None,
) -> np.ndarray:
    """Derotate a ``(T, Z, C, Y, X)`` movie; every channel and plane with
    the same per-line angles (see the module docstring for the indexing),
    each channel with its own fill value when ``params`` has one per channel.

    ``out`` (same shape and dtype) is filled and returned (a new array if
    omitted). ``progress(done_time_points, total)`` is called once per
    channel pass; returning ``False`` raises :class:`Cancelled`.
    """
    params = params or DerotationParams()
    movie5 = np.asarray(movie5)
    if movie5.ndim != 5:
        raise DerotationError(
            f"expected a (T, Z, C, Y, X) movie; got shape {movie5.shape}"
        )
    t, z, c, rows, cols = movie5.shape
    if out is None:
        out = np.empty(movie5.shape, movie5.dtype)
    elif out.shape != movie5.shape or out.dtype != movie5.dtype:
        raise DerotationError(
            f"out must match the movie: expected {movie5.shape} "
            f"{movie5.dtype}, got {out.shape} {out.dtype}"
        )
    angles, params = line_angles(angles_per_line, (t * z, rows), params)
    total = t if total_frames is None else total_frames
    scratch = np.empty((t * z, rows, cols), movie5.dtype)
    for ch in range(c):
        stack = np.ascontiguousarray(movie5[:, :, ch]).reshape(t * z, rows, cols)
        derotate_into(stack, angles, out=scratch, params=params.for_channel(ch))
        out[:, :, ch] = scratch.reshape(t, z, rows, cols)
        del stack
        if (
            progress is not None
            and progress(frame_offset + t * (ch + 1) // c, total) is False
        ):
            raise Cancelled(f"derotation cancelled after channel {ch + 1} of {c}")
    return out


def derotate_axes(
    movie,
    angles_per_line,
    axes: str,
    *,
    params: DerotationParams | None = None,
    progress=None,
) -> np.ndarray:
    """Derotate a movie whose dimensions are named by ``axes`` (e.g.
    ``"TCYX"``, ``"TZCYX"``, ``"CTYX"``); returns a new array in the same
    layout."""
    a = check_axes(axes, np.ndim(movie))
    movie = np.asarray(movie)
    five = to_tzcyx(movie, a)
    res = derotate_hyperstack(five, angles_per_line, params=params, progress=progress)
    return np.ascontiguousarray(from_tzcyx(res, a))


def plane_angles(
    angles_per_line, frames: int, planes: int, rows: int, plane: int
) -> np.ndarray:
    """The per-line angles of plane ``plane``'s frames, in time order: what
    the centre search and the ellipse fit need for a ``(T, Y, X)`` stack of
    one plane (``line_index(t, plane, row)`` for every ``t``, ``row``)."""
    angles = check_angles(angles_per_line, frames * planes * rows, rows)
    if planes == 1:
        return angles
    t, row = np.meshgrid(np.arange(frames), np.arange(rows), indexing="ij")
    return angles[line_index(t, plane, row, planes, rows).ravel()]


def pick_plane(src, *, channel=None, plane=None):
    """``(movie (T, Y, X), channel, plane)``: one channel and plane of a
    :class:`~napari_derotation.io.sources.MovieSource`, read chunk by chunk
    (the centre search and the ellipse fit work on it; their result applies
    to every channel and plane). Defaults: the first of each."""
    t, z, c, rows, cols = src.shape
    channel = 0 if channel is None else int(channel)
    plane = 0 if plane is None else int(plane)
    for name, v, n in (("channel", channel, c), ("plane", plane, z)):
        if not 0 <= v < n:
            raise DerotationError(
                f"--{name} {v} is not in the movie: it has {n} {name}s (0 to {n - 1})"
            )
    out = np.empty((t, rows, cols), src.dtype)
    step = max(1, (64 << 20) // max(1, z * c * rows * cols * src.dtype.itemsize))
    for a in range(0, t, step):
        b = min(t, a + step)
        out[a:b] = src.read(a, b)[:, plane, channel]
    return out, channel, plane
