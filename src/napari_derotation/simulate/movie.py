"""Simulated line-scanning acquisitions of a rotating sample.

The forward model of the microscope: each line of each frame is scanned at its
own angle (:func:`rotate_by_line`), plus synthetic samples (cells, smooth
textures) and angle traces (stepwise, sinusoidal, constant speed, and a real
recorded trace). Tests, benchmarks, the demo and the napari sample data are
all made here; nothing is downloaded.

Conventions: the inverse of :func:`napari_derotation.derotate` for the same
angles and centre, and the same model as the reference package's ``Rotator``
(a positive angle turns the content clockwise on screen).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import numpy as np
from scipy import ndimage

from ..engine import _kernels
from ..engine._driver import KERNEL_LOCK, check_parameters
from ..engine.params import DerotationParams
from ..errors import DerotationError
from ..frames import delay_angles

__all__ = [
    "rotate_by_line",
    "make_cells",
    "make_texture",
    "incremental_trace",
    "sine_trace",
    "constant_speed_trace",
    "real_trace",
    "SimulatedMovie",
    "simulate_movie",
    "TRACES",
]


def rotate_by_line(
    images,
    angles_per_line,
    center=None,
    *,
    n_frames=None,
    interpolation="bilinear",
    fill_value=None,
    plane_tilt=0.0,
    plane_orientation=0.0,
) -> np.ndarray:
    """Scan a static sample line by line while it rotates.

    Parameters
    ----------
    images : array (rows, cols) or (frames, rows, cols)
        The sample: one image for every frame, or one image per frame.
    angles_per_line : 1-D array
        Angle in degrees of every scanned line.
    center : (row, col), optional
        Centre of rotation; default ``(rows // 2, cols // 2)``.
    n_frames : int, optional
        Frames to acquire from a single 2-D image; default as many as the
        angles fill (``len(angles) // rows``).
    interpolation : {"bilinear", "nearest", "cubic"}
        ``"nearest"`` reproduces the reference ``Rotator`` exactly.
    fill_value : float, optional
        Value of scanned points outside the sample; default its minimum (as
        the reference ``Rotator``).
    plane_tilt, plane_orientation : float
        Degrees: the sample turns in a plane tilted from the imaging plane
        (see :func:`napari_derotation.engine.plane_matrix`); ``images`` is
        the sample as imaged at angle 0.

    Returns
    -------
    ndarray (frames, rows, cols) with the dtype of ``images``.
    """
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[np.newaxis]
        single = True
    elif images.ndim == 3:
        single = False
    else:
        raise DerotationError(
            f"images must be 2-D (rows, cols) or 3-D (frames, rows, cols); "
            f"got shape {images.shape}"
        )
    if 0 in images.shape:
        raise DerotationError(f"images are empty: shape {images.shape}")
    _, rows, cols = images.shape
    angles_in = np.asarray(angles_per_line)
    if single:
        if n_frames is None:
            n_frames = angles_in.size // rows
        if n_frames < 1:
            raise DerotationError(
                f"angles_per_line has {angles_in.size} values, fewer than one "
                f"frame of {rows} lines"
            )
        index = np.zeros(n_frames, np.intp)
    else:
        n_frames = images.shape[0]
        index = np.arange(n_frames, dtype=np.intp)
    if fill_value is None:
        fill_value = images.min()
    angles, params = check_parameters(
        (n_frames, rows, cols),
        images.dtype,
        angles_in,
        DerotationParams(
            center=center,
            interpolation=interpolation,
            fill_value=fill_value,
            plane_tilt=plane_tilt,
            plane_orientation=plane_orientation,
        ),
    )
    k = params.kernel_args(images.dtype)
    rad = np.deg2rad(angles).reshape(n_frames, rows)
    out = np.empty((n_frames, rows, cols), images.dtype)
    with KERNEL_LOCK:
        _kernels.rotate_lines(
            np.ascontiguousarray(images),
            index,
            np.cos(rad),
            np.sin(rad),
            k.cr,
            k.cc,
            k.plane,
            k.mode,
            k.fill,
            k.lo,
            k.hi,
            k.is_int,
            out,
        )
    return out


# --- samples -------------------------------------------------------------


def make_texture(
    shape=(256, 256), *, sigma=3.0, seed=0, low=20.0, high=220.0
) -> np.ndarray:
    """A smooth random texture (float32), features about ``sigma`` px wide."""
    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    img -= img.min()
    img /= max(img.max(), 1e-12)
    return (low + (high - low) * img).astype(np.float32)


def make_cells(
    shape=(256, 256),
    *,
    n_cells=40,
    radius=(3.0, 6.0),
    background=80.0,
    bright=255.0,
    dim=140.0,
    bright_fraction=0.25,
    seed=0,
    blur=1.0,
    noise=0.0,
    dtype=np.float32,
    cells=None,
) -> np.ndarray:
    """A field of bright and dim discs ("cells") on a flat background.

    ``cells`` may give explicit ``(row, col, radius, value)`` tuples instead of
    random ones. Values are clipped to ``dtype``'s range for integer dtypes.
    """
    rng = np.random.default_rng(seed)
    rows, cols = shape
    img = np.full(shape, background, np.float64)
    if cells is None:
        cells = []
        for i in range(n_cells):
            r = rng.uniform(radius[0], radius[1])
            value = bright if i < round(bright_fraction * n_cells) else dim
            cells.append((rng.uniform(r, rows - r), rng.uniform(r, cols - r), r, value))
    yy, xx = np.mgrid[:rows, :cols]
    for cy, cx, r, value in cells:
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = value
    if blur:
        img = ndimage.gaussian_filter(img, blur)
    if noise:
        img += rng.normal(0, noise, img.shape)
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        info = np.iinfo(dt)
        img = np.clip(np.rint(img), info.min, info.max)
    return img.astype(dt)


# --- angle traces --------------------------------------------------------


def incremental_trace(
    n_lines: int, *, step=10.0, n_steps=36, ramp_lines=0
) -> np.ndarray:
    """Stepwise rotation: ``n_steps`` plateaus at 0, step, 2*step, ... degrees
    spread evenly over ``n_lines`` (the reference's "incremental" protocol).
    ``ramp_lines`` > 0 makes each step a linear ramp of that many lines instead
    of a jump."""
    i = np.arange(n_lines)
    plateau = np.minimum(i * n_steps // max(n_lines, 1), n_steps - 1)
    trace = plateau * float(step)
    if ramp_lines > 0:
        seg = n_lines / n_steps
        pos = i - plateau * seg  # position inside the plateau
        start = seg - ramp_lines  # ramp to the next step at the end
        ramp = np.clip((pos - start) / ramp_lines, 0, 1)
        trace = trace + np.where(plateau < n_steps - 1, ramp * step, 0.0)
    return trace.astype(np.float64)


def sine_trace(n_lines: int, *, amplitude=360.0, cycles=1.0) -> np.ndarray:
    """``amplitude * sin`` over ``cycles`` periods (the reference's sinusoid)."""
    return amplitude * np.sin(np.linspace(0, 2 * np.pi * cycles, n_lines))


def constant_speed_trace(
    n_lines: int, *, degrees_per_line=0.05, start_line=0, stop_line=None
) -> np.ndarray:
    """Rotation at constant speed from ``start_line`` to ``stop_line`` (0 before,
    held after)."""
    stop_line = n_lines if stop_line is None else stop_line
    i = np.clip(np.arange(n_lines), start_line, stop_line) - start_line
    return i * float(degrees_per_line)


def real_trace(n_lines: int | None = None, *, start_line=0) -> np.ndarray:
    """A per-line angle trace recorded in a real 3-photon rotation experiment.

    75,471 lines (256 lines per frame) with two full rotations, one each way,
    at lines 33045-38269 and 59013-64224 (public example data of the
    ``derotation`` package, BSD-3). ``n_lines`` values from ``start_line``;
    asking for more than recorded raises.
    """
    ref = resources.files("napari_derotation") / "data" / "real_trace.npz"
    with ref.open("rb") as fh:
        trace = np.load(fh)["angles_per_line"]
    stop = trace.size if n_lines is None else start_line + n_lines
    if stop > trace.size:
        raise DerotationError(
            f"the real trace has {trace.size} lines; asked for lines "
            f"{start_line} to {stop}"
        )
    return trace[start_line:stop].astype(np.float64)


#: Line of the real trace where its first rotation begins.
REAL_TRACE_FIRST_ROTATION = 33045

TRACES = ("incremental", "sine", "constant", "real")


def make_trace(kind: str, n_lines: int, rows: int = 256) -> np.ndarray:
    """One of :data:`TRACES` over ``n_lines`` lines.

    ``"real"`` takes the recorded trace around its first rotation, so a short
    movie still rotates.
    """
    if kind == "incremental":
        return incremental_trace(n_lines)
    if kind == "sine":
        return sine_trace(n_lines)
    if kind == "constant":
        return constant_speed_trace(n_lines, degrees_per_line=360.0 / n_lines)
    if kind == "real":
        full = real_trace()
        # a few still frames, then the first rotation
        lead = min(8 * rows, n_lines // 4)
        start = max(0, REAL_TRACE_FIRST_ROTATION - lead)
        start = min(start, full.size - n_lines)
        if start < 0:
            return np.concatenate([full, np.zeros(n_lines - full.size)])
        return full[start : start + n_lines].copy()
    raise DerotationError(f"trace must be one of {list(TRACES)}; got {kind!r}")


@dataclass
class SimulatedMovie:
    """A simulated acquisition and everything needed to check a correction."""

    movie: np.ndarray
    angles_per_line: np.ndarray
    center: tuple[float, float]
    sample: np.ndarray
    params: dict = field(default_factory=dict)
    #: the angle each line was really scanned at (``angles_per_line`` is
    #: what was recorded: the same unless simulated with a ``delay``)
    true_angles: np.ndarray | None = None


def simulate_movie(
    shape=(256, 256),
    n_frames=100,
    *,
    trace="real",
    center_offset=(0.0, 0.0),
    sample="cells",
    seed=0,
    noise=0.0,
    dtype=np.uint16,
    interpolation="bilinear",
    delay=0.0,
) -> SimulatedMovie:
    """Cells (or a texture) scanned while rotating about an off-centre point.

    The centre is ``(rows // 2 + dr, cols // 2 + dc)`` for ``center_offset =
    (dr, dc)``, as the reference's ``Rotator(center_offset=...)``.
    ``trace`` is one of :data:`TRACES` or the per-line angles themselves.
    ``delay`` (lines) simulates an angle signal off from the scan: the movie
    is scanned at the true angles (:attr:`SimulatedMovie.true_angles`) and
    ``angles_per_line`` is what a signal recorded with that delay reads, so
    that ``derotate(movie, angles_per_line, angle_delay=delay)`` uses the
    true angles again (``delay_angles(recorded, delay) == true`` but for
    the first ``delay`` lines, which the recording does not cover).
    """
    rows, cols = shape
    if sample == "cells":
        img = make_cells(
            shape, seed=seed, n_cells=max(8, rows * cols // 1600), dtype=np.float32
        )
    elif sample == "texture":
        img = make_texture(shape, seed=seed)
    else:
        raise DerotationError(f"sample must be 'cells' or 'texture'; got {sample!r}")
    if isinstance(trace, str):
        angles = make_trace(trace, n_frames * rows, rows)
    else:
        angles = np.asarray(trace, np.float64)
        if angles.shape != (n_frames * rows,):
            raise DerotationError(
                f"trace: expected a trace name or {n_frames * rows} angles "
                f"(frames x rows); got shape {angles.shape}"
            )
    center = (rows // 2 + float(center_offset[0]), cols // 2 + float(center_offset[1]))
    movie = rotate_by_line(
        img,
        angles,
        center,
        n_frames=n_frames,
        interpolation=interpolation,
        fill_value=float(img.min()),
    )
    if noise:
        rng = np.random.default_rng(seed + 1)
        movie = movie + rng.normal(0, noise, movie.shape).astype(np.float32)
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        info = np.iinfo(dt)
        movie = np.clip(np.rint(movie), info.min, info.max)
        img = np.clip(np.rint(img), info.min, info.max)
    recorded = delay_angles(angles, -float(delay)) if delay else angles
    return SimulatedMovie(
        movie.astype(dt),
        recorded,
        center,
        img.astype(dt),
        dict(
            trace=trace if isinstance(trace, str) else "given",
            center_offset=list(center_offset),
            seed=seed,
            noise=noise,
            sample=sample,
            delay=float(delay),
        ),
        true_angles=angles,
    )
