"""The widget's computations, free of Qt and napari so they test alone.

Workers (:mod:`._workers`) run the slow ones in threads; the sections call
the quick ones (the live preview) directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import __version__
from ..engine import check_angles, check_center, check_movie, derotate_into
from ..engine._driver import line_angles
from ..engine.hyperstack import to_tzcyx
from ..engine.params import DerotationParams
from ..errors import DerotationError
from ..frames import angle_warnings as frames_angle_warnings
from ..frames import disc_mask, rotating_frames
from . import _meta

#: Frames derotated for the live preview (~10 ms at 256x256).
PREVIEW_FRAMES = 32
#: Frames derotated per step of a worker (one progress update, one chance to
#: cancel).
CHUNK_FRAMES = 16


def check_inputs(data, angles, center=None):
    """Validate a movie, its angles and a centre together.

    Returns ``(angles_used, center)``; raises :class:`DerotationError`
    naming what is wrong (a 2-D image, too few angles, a centre outside).
    """
    if data is None:
        raise DerotationError("no movie: open a TIFF stack or the sample "
                              "(File > Open Sample > napari-derotation)")
    if np.ndim(data) != 3:
        raise DerotationError(
            f"the movie must be a stack of frames (frames, rows, cols); the "
            f"selected layer is {np.ndim(data)}-D with shape "
            f"{tuple(np.shape(data))}")
    check_movie(data)
    if angles is None:
        raise DerotationError(
            "no rotation angles for this movie: load a per-line angles file "
            "or compute them from the analog signals (Data section)")
    n, rows, _ = data.shape
    angles = check_angles(angles, n * rows, rows)
    return angles, check_center(center, data.shape)



def angle_warnings(angles, shape) -> list[str]:
    """What looks wrong about a movie's per-line angles, in words: the
    library's :func:`napari_derotation.frames.angle_warnings` (more angles
    than lines, a trace spanning under 2 degrees), plus too few angles,
    which the widget shows as a warning when the angles are loaded (the
    Derotate button then says it is an error)."""
    if angles is None or shape is None or len(shape) != 3:
        return []
    angles = np.asarray(angles, np.float64)
    need = int(shape[0]) * int(shape[1])
    if angles.size < need:
        return [f"{angles.size} angles for a movie of {need} lines ({shape[0]} "
                f"frames x {shape[1]} rows): the movie cannot be derotated "
                f"with them; check that these angles belong to this movie"]
    return frames_angle_warnings(angles, shape)


def fill_value(data, mode: str) -> float:
    """``"zero"`` -> 0; ``"background"`` -> median of the first frame."""
    if mode == "zero":
        return 0.0
    return float(np.median(np.asarray(data[0])))


def preview_frames(angles, n_frames: int, rows: int,
                   k: int = PREVIEW_FRAMES) -> np.ndarray:
    """Up to ``k`` frames spread evenly over the angles the movie visits.

    Their derotated mean is sharp only when the centre is right: with a
    wrong one, every cell is smeared along an arc.
    """
    frames = rotating_frames(angles, n_frames, rows)
    if frames.size == 0:
        frames = np.arange(n_frames)
    mid = np.asarray(angles, np.float64)[frames * rows + rows // 2] % 360.0
    order = frames[np.argsort(mid, kind="stable")]
    if order.size <= k:
        return np.sort(order)
    pick = np.linspace(0, order.size - 1, k).round().astype(int)
    return np.sort(order[np.unique(pick)])


def preview_image(data, angles, frames, params: DerotationParams
                  ) -> np.ndarray:
    """Mean of ``frames`` derotated with ``params`` (float32)."""
    n, rows, cols = data.shape
    angles, params = line_angles(angles, data.shape, params)
    sub = np.ascontiguousarray(np.asarray(data[frames]))
    lines = (np.asarray(frames)[:, None] * rows + np.arange(rows)).ravel()
    out = np.empty_like(sub)
    derotate_into(sub, np.asarray(angles)[lines], out=out, params=params)
    return out.mean(axis=0, dtype=np.float32)


def find_delay(data, angles, params: DerotationParams, *, search_radius=3.0,
               n_calls=30, progress=None):
    """The angle delay (lines) found with the centre, in turn, from the
    centre of ``params`` (what the Centre section's *Find delay* runs in a
    worker): a :class:`~napari_derotation.center.delay.DelayResult`."""
    from ..center.delay import find_center_and_delay

    return find_center_and_delay(
        data, angles, initial=params.center, search_radius=search_radius,
        n_calls=n_calls, delay=params.angle_delay, params=params,
        progress=progress)


def derotate_steps(data, angles, params: DerotationParams, *,
                   chunk_frames=CHUNK_FRAMES):
    """Generator: derotate a movie chunk by chunk with ``params``.

    Yields ``(done, total)`` after each chunk and returns the derotated
    array (same dtype). Closing the generator early discards everything.
    """
    n, rows, cols = data.shape
    angles, params = line_angles(angles, data.shape, params)
    out = np.empty((n, rows, cols), np.dtype(data.dtype))
    for start in range(0, n, chunk_frames):
        stop = min(n, start + chunk_frames)
        chunk = np.ascontiguousarray(np.asarray(data[start:stop]))
        derotate_into(chunk, angles[start * rows: stop * rows],
                      out=out[start:stop], params=params)
        yield stop, n
    return out


def scan_frames(data, meta: dict):
    """A movie layer as frames in scan order: a ``(T, Z, Y, X)`` layer of a
    movie with ``planes`` (its metadata) becomes ``(T * Z, Y, X)`` (a view
    where the layout allows), frame ``t * Z + z`` being plane ``z`` at time
    ``t``, which is the order of the per-line angles; others unchanged."""
    planes = int(meta.get("planes", 1) or 1)
    if np.ndim(data) == 4 and planes > 1 and data.shape[1] == planes:
        t, z, rows, cols = data.shape
        return data.reshape(t * z, rows, cols)
    return data


def channel_group(layers, layer) -> list:
    """The raw layers of the channels of ``layer``'s movie (the reader
    opens a multi-channel movie as one layer per channel), in channel
    order; ``[layer]`` for a single-channel movie."""
    d = _meta.get(layer.metadata)
    if int(d.get("channels", 1) or 1) < 2 or "channel" not in d:
        return [layer]
    found = {}
    for ly in layers:
        e = _meta.get(getattr(ly, "metadata", None))
        if e.get("movie_path") == d.get("movie_path") and "channel" in e \
                and e.get("channels") == d["channels"] \
                and not e.get("derotated"):
            found.setdefault(int(e["channel"]), ly)
    return [found[c] for c in sorted(found)] if layer in found.values() \
        else [layer]


def derotate_group_steps(datas, angles, params: DerotationParams, *,
                         chunk_frames=CHUNK_FRAMES):
    """Generator: derotate every channel of a movie (``datas``, the same
    frames and angles) with :func:`derotate_steps`, each with its own fill
    value when ``params`` has one per channel; yields ``(done,
    total)`` frames over all channels and returns the list of results."""
    n = datas[0].shape[0]
    total = n * len(datas)
    outs = []
    for k, data in enumerate(datas):
        gen = derotate_steps(data, angles, params.for_channel(k),
                             chunk_frames=chunk_frames)
        try:
            while True:
                done, _ = next(gen)
                yield k * n + done, total
        except StopIteration as stop:
            outs.append(stop.value)
    return outs


class ChannelStack:
    """Derotated channel layers read as one ``axes``-shaped movie, a chunk
    of time points at a time (what the export writes)."""

    def __init__(self, datas, axes: str):
        self.datas, self.axes = list(datas), axes
        self.c_axis = axes.index("C")
        shape = list(datas[0].shape)
        shape.insert(self.c_axis, len(self.datas))
        self.shape = tuple(shape)
        self.dtype = np.dtype(datas[0].dtype)
        self.ndim = len(shape)

    def __getitem__(self, index):
        return np.stack([np.asarray(d[index]) for d in self.datas],
                        axis=self.c_axis)


def mean_images(raw, derotated, frames, center=None):
    """Mean raw and mean derotated images over ``frames`` (float32), and
    the :func:`agreement` of each set of frames."""
    raw_f = np.asarray(raw[frames])
    out_f = np.asarray(derotated[frames])
    return (raw_f.mean(0, dtype=np.float32), out_f.mean(0, dtype=np.float32),
            agreement(raw_f, center), agreement(out_f, center))


def agreement(frames, center=None) -> float:
    """How much the frames agree: the variance of their mean image over the
    mean variance of a frame, inside the inscribed disk about ``center``.

    About 1 when every frame shows the sample in the same place (only noise
    averages away); much lower when cells move from frame to frame and the
    mean smears them into arcs.
    """
    frames = np.asarray(frames, np.float32)
    rows, cols = frames.shape[1:]
    if center is None:
        center = ((rows - 1) / 2, (cols - 1) / 2)
    inside = frames[:, disc_mask((rows, cols), center)]
    per_frame = float(inside.var(axis=1).mean())
    return float(inside.mean(axis=0).var() / per_frame) if per_frame > 0 \
        else 0.0


def export_job(folder, name, derotated, metadata, *, overwrite=False,
               fmt="tif", check_files=True):
    """The :class:`~napari_derotation.job.Job` of exporting a derotated
    layer (``derotated``: its data, every channel in the input's axes) as
    ``name`` in ``folder``: the movie (TIFF or OME-Zarr), its record, the
    per-frame CSV and the per-line angles. The name goes through the one
    rule of names a user types; every file is checked (not an input, the
    folder writable, not existing unless ``overwrite``)."""
    from ..job import MovieSpec, check_job_files, describe, output_spec

    d = _meta.get(metadata)
    axes = d.get("axes") if np.ndim(derotated) > 3 else None
    shape = tuple(derotated.shape)
    if axes:
        shape = (shape[0], *to_tzcyx(np.empty((1, *shape[1:]), np.bool_),
                                     axes).shape[1:])
    else:
        shape = (shape[0], 1, 1, *shape[1:])
        axes = "TYX"
    input_path = d.get("input_path")
    movie = MovieSpec.in_memory(
        shape, derotated.dtype, axes, path=input_path if input_path and
        Path(input_path).is_file() else None)
    out = output_spec(folder=folder, name=name, fmt=fmt, overwrite=overwrite,
                      tables=True)
    job = describe(movie, d.get("angles_per_line"), out,
                   params=_meta.params(metadata),
                   angles_source=d.get("angles_source"),
                   extra_angles_ok=True, check_files=False)
    if check_files:
        folder = Path(folder)
        if not folder.is_dir():
            raise DerotationError(f"export folder does not exist: {folder}")
        check_job_files(job, hint="choose another name or tick 'overwrite'")
    return job


def export_steps(job, derotated, metadata, *, chunk_frames=64):
    """Generator: write an export (:func:`export_job`), yielding ``(done,
    total)`` time points; returns the paths written. The movie is streamed
    chunk by chunk and appears only when complete; closing the generator
    before the end leaves no file behind."""
    from ..job import write_result

    d = _meta.get(metadata)
    return (yield from write_result(
        job, derotated, chunk_frames=chunk_frames,
        frame_angles=d.get("angles_per_frame"),
        source_layer=d.get("source_layer")))


def derotated_metadata(source_meta, params: DerotationParams, *,
                       source_layer) -> dict:
    """Metadata of a derotated layer (so its export and save know how)."""
    d = dict(_meta.get(source_meta))
    raw_path = d.pop("movie_path", None)
    d.pop("record", None)
    d.update(_meta.from_params(params), derotated=True,
             source_layer=source_layer, version=__version__,
             input_path=raw_path)
    return {_meta.KEY: d}
