"""Frames of a movie and their angles: one definition of each, used by the
engine, the centre search, the pipeline, the CLI and the plugin.

- A frame's angle is the angle of its **first line** (the line the frame
  clock starts), unless the rotation signals give one per frame.
- A **rotating frame** is one in which some line is more than
  :data:`MIN_ROTATION_DEGREES` from 0 (mod 360): the sample turned during or
  before it. A movie without one has no rotation to correct or to fit.
- An **unturned frame** has every line at exactly 0 degrees: the engine
  copies it as it is.
- A **delay** of ``d`` lines between the angle signal and the scan
  (:func:`delay_angles`): line ``i`` takes the recorded angle of line
  ``i - d``. A positive delay means the image lags the angle signal (each
  line shows the sample as it was when the angle ``d`` lines earlier was
  recorded); a negative one, that the angle signal lags the image.
- The **inscribed disc** about a centre is the largest disc about it inside
  the frame: the region every rotation keeps in view.

:func:`angle_warnings` says when angles are probably not the movie's: more
values than the movie has lines, or a trace too flat to be degrees.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MIN_ROTATION_DEGREES",
    "frame_angles",
    "rotating_frames",
    "unturned_frames",
    "wrap_degrees",
    "disc_mask",
    "inscribed_radius",
    "angle_warnings",
    "MIN_SPAN_DEGREES",
    "delay_angles",
]

#: A line more than this many degrees (mod 360) from 0 has turned.
MIN_ROTATION_DEGREES = 1.0

#: A trace whose used angles span less than this (degrees) warns: radians?
MIN_SPAN_DEGREES = 2.0


def _per_frame(angles_per_line, n_frames: int, rows: int) -> np.ndarray:
    return np.asarray(angles_per_line, np.float64)[: n_frames * rows].reshape(
        n_frames, rows
    )


def wrap_degrees(a) -> np.ndarray:
    """Angles wrapped to [-180, 180)."""
    return (np.asarray(a, np.float64) + 180.0) % 360.0 - 180.0


def frame_angles(angles_per_line, n_frames: int, rows: int) -> np.ndarray:
    """One angle per frame: the angle of the frame's first line."""
    return _per_frame(angles_per_line, n_frames, rows)[:, 0].copy()


def rotating_frames(angles_per_line, n_frames: int, rows: int) -> np.ndarray:
    """Indices of the frames with a line more than
    :data:`MIN_ROTATION_DEGREES` from 0 (mod 360)."""
    turned = np.abs(wrap_degrees(_per_frame(angles_per_line, n_frames, rows)))
    return np.flatnonzero(turned.max(axis=1) > MIN_ROTATION_DEGREES)


def unturned_frames(angles_per_line, n_frames: int, rows: int) -> np.ndarray:
    """Boolean per frame: every line at exactly 0 degrees."""
    return ~np.any(_per_frame(angles_per_line, n_frames, rows) != 0, axis=1)


def delay_angles(angles_per_line, delay: float) -> np.ndarray:
    """The recorded angles delayed by ``delay`` lines: ``out[i] =
    angles[i - delay]`` (float64, a new array).

    Fractional delays interpolate linearly between lines (across a wrap at
    +-360 degrees as the continuous turn it is); beyond either end the
    first or last angle is held. The one definition of the angle delay
    (:attr:`~napari_derotation.engine.params.DerotationParams.angle_delay`):
    a positive delay means the image lags the angle signal.
    """
    a = np.asarray(angles_per_line, dtype=np.float64)
    s = float(delay)
    if s == 0 or a.size == 0:
        return a.copy()
    i = np.arange(a.size, dtype=np.float64)
    # interpolate across wraps (+-360) as the continuous turn they are, then
    # put every value back on the branch of the recorded angle it replaces
    out = np.interp(i - s, i, np.unwrap(a, period=360.0))
    near = a[np.clip(np.rint(i - s), 0, a.size - 1).astype(np.intp)]
    return out - 360.0 * np.rint((out - near) / 360.0)


def inscribed_radius(shape, center) -> float:
    """Radius of the largest disc about ``center`` (row, col) inside a frame
    of ``shape`` (..., rows, cols)."""
    rows, cols = shape[-2], shape[-1]
    r, c = center
    return float(min(r, rows - 1 - r, c, cols - 1 - c))


def disc_mask(shape, center, radius=None) -> np.ndarray:
    """Boolean (rows, cols): pixels within ``radius`` of ``center`` (default
    the inscribed radius)."""
    rows, cols = shape[-2], shape[-1]
    if radius is None:
        radius = inscribed_radius(shape, center)
    yy, xx = np.mgrid[:rows, :cols]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius * radius


#: A trace wholly within [-RADIANS_BOUND, RADIANS_BOUND] (and spanning more
#: than 1) looks like radians.
RADIANS_BOUND = 2 * np.pi


def angle_warnings(
    angles_per_line, shape, *, extra_lines_ok: bool = False, extra_hint: str = ""
) -> list[str]:
    """Warnings (one sentence each) about per-line angles that derotate
    without error but probably not as meant; empty when all is well.

    ``shape`` is the movie's ``(frames, rows, cols)`` or ``(T, Z, C, Y, X)``
    (lines: ``T * Z * Y``). Warns when there are more angles than lines
    (a trace of another movie, or of twice the frames; unless
    ``extra_lines_ok``: the extra lines are expected, e.g. flyback lines),
    when the angles used span less than :data:`MIN_SPAN_DEGREES`, and when
    the whole trace lies within [-2 pi, 2 pi] yet spans more than 1 (both:
    angles in radians look like this). ``extra_hint`` ends the first warning (how
    the caller silences it, e.g. an option's name). Fewer angles than lines
    is an error, not a warning
    (:func:`~napari_derotation.engine.check_angles`), and so are non-finite
    angles: no warning then.
    """
    shape = tuple(int(v) for v in shape)
    n_lines = (
        shape[0] * shape[1] * shape[3] if len(shape) == 5 else shape[0] * shape[-2]
    )
    try:
        a = np.asarray(angles_per_line, np.float64).ravel()
    except (TypeError, ValueError):
        return []  # not numbers: an error, which says it
    if a.size < n_lines or not np.isfinite(a[:n_lines]).all():
        return []  # an error, which says it (check_angles)
    out = []
    if a.size > n_lines and not extra_lines_ok:
        ratio = a.size / n_lines
        times = f" ({ratio:g} times as many)" if ratio.is_integer() else ""
        out.append(
            f"{a.size} angles for {n_lines} lines (frames x rows)"
            f"{times}: only the first {n_lines} are used; are these "
            f"the angles of this movie?{extra_hint}"
        )
    used = a[:n_lines]
    if used.size:
        span = float(used.max() - used.min())
        if span < MIN_SPAN_DEGREES:
            out.append(
                f"the angles used span only {span:.3g} degrees "
                f"(largest {float(np.abs(used).max()):.3g}): the "
                f"output will look almost like the input; angles must "
                f"be in degrees (radians?)"
            )
        elif span > 1 and np.abs(a).max() <= RADIANS_BOUND:
            out.append(
                f"the angles lie within [-2 pi, 2 pi] "
                f"({float(a.min()):.3g} to {float(a.max()):.3g}): "
                f"these look like radians; the angles must be degrees"
            )
    return out
