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
        raise DerotationError(
            "no movie: open a TIFF stack or the sample "
            "(File > Open Sample > napari-derotation)"
        )
    if np.ndim(data) != 3:
        raise DerotationError(
            f"{movie_problem(np.shape(data))}; the selected layer is "
            f"{np.ndim(data)}-D with shape {tuple(np.shape(data))}"
        )
    check_movie(data)
    if angles is None:
        raise DerotationError(
            "no rotation angles for this movie: load a per-line angles file "
            "or compute them from the analog signals (Data section)"
        )
    n, rows, _ = data.shape
    angles = check_angles(angles, n * rows, rows)
    return angles, check_center(center, data.shape)


def movie_problem(shape, rgb: bool = False) -> str | None:
    """Why a layer of ``shape`` (in scan frames, :func:`scan_frames`) cannot
    be derotated, in words, or ``None`` for a movie (frames, rows, cols)."""
    need = "derotation needs a movie (frames, rows, cols)"
    if shape is None:
        return None
    if rgb:
        return f"a single RGB image: {need}"
    if len(shape) == 2:
        return f"a single image: {need}"
    if len(shape) != 3:
        return f"a {len(shape)}-D layer: {need}"
    return None


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
        return [
            f"{angles.size} angles for a movie of {need} lines ({shape[0]} "
            f"frames x {shape[1]} rows): the movie cannot be derotated "
            f"with them; check that these angles belong to this movie"
        ]
    return frames_angle_warnings(angles, shape)


def fill_value(data, mode: str) -> float:
    """``"zero"`` -> 0; ``"background"`` -> median of the first frame."""
    if mode == "zero":
        return 0.0
    return float(np.median(np.asarray(data[0])))


def fill_values(datas, mode: str) -> float | tuple[float, ...]:
    """The fill of a movie's channels (``datas``, one array each), each
    computed from its own channel by :func:`fill_value`: one number for a
    single channel, else a tuple, one per channel
    (:class:`~napari_derotation.engine.params.DerotationParams`'s form)."""
    fills = tuple(fill_value(d, mode) for d in datas)
    return fills[0] if len(fills) == 1 else fills


def preview_frames(
    angles, n_frames: int, rows: int, k: int = PREVIEW_FRAMES
) -> np.ndarray:
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


def preview_image(data, angles, frames, params: DerotationParams) -> np.ndarray:
    """Mean of ``frames`` derotated with ``params`` (float32)."""
    n, rows, cols = data.shape
    angles, params = line_angles(angles, data.shape, params)
    sub = np.ascontiguousarray(np.asarray(data[frames]))
    lines = (np.asarray(frames)[:, None] * rows + np.arange(rows)).ravel()
    out = np.empty_like(sub)
    derotate_into(sub, np.asarray(angles)[lines], out=out, params=params)
    return out.mean(axis=0, dtype=np.float32)


def find_delay(
    data,
    angles,
    params: DerotationParams,
    *,
    search_radius=3.0,
    n_calls=30,
    progress=None,
):
    """The angle delay (lines) found with the centre, in turn, from the
    centre of ``params`` (what the Centre section's *Find delay* runs in a
    worker): a :class:`~napari_derotation.center.delay.DelayResult`."""
    from ..center.delay import find_center_and_delay

    return find_center_and_delay(
        data,
        angles,
        initial=params.center,
        search_radius=search_radius,
        n_calls=n_calls,
        delay=params.angle_delay,
        params=params,
        progress=progress,
    )


def derotate_steps(
    data,
    angles,
    params: DerotationParams,
    *,
    chunk_frames=CHUNK_FRAMES,
    score: Agreement | None = None,
):
    """Generator: derotate a movie chunk by chunk with ``params``.

    Yields ``(done, total)`` after each chunk and returns the derotated
    array (same dtype). Closing the generator early discards everything.
    Given an :class:`Agreement`, each chunk is added to it, raw and
    derotated.
    """
    n, rows, cols = data.shape
    angles, params = line_angles(angles, data.shape, params)
    out = np.empty((n, rows, cols), np.dtype(data.dtype))
    for start in range(0, n, chunk_frames):
        stop = min(n, start + chunk_frames)
        chunk = np.ascontiguousarray(np.asarray(data[start:stop]))
        derotate_into(
            chunk,
            angles[start * rows : stop * rows],
            out=out[start:stop],
            params=params,
        )
        if score is not None:
            score.add(start, chunk, out[start:stop])
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
        if (
            e.get("movie_path") == d.get("movie_path")
            and "channel" in e
            and e.get("channels") == d["channels"]
            and not e.get("derotated")
        ):
            found.setdefault(int(e["channel"]), ly)
    return [found[c] for c in sorted(found)] if layer in found.values() else [layer]


def derotate_group_steps(
    datas, angles, params: DerotationParams, *, chunk_frames=CHUNK_FRAMES, scores=None
):
    """Generator: derotate every channel of a movie (``datas``, the same
    frames and angles) with :func:`derotate_steps`, channel ``k`` with its
    own fill value (``params.for_channel(k)``); yields ``(done, total)``
    frames over all channels and returns the list of results. ``scores``:
    an :class:`Agreement` (or None) per channel."""
    n = datas[0].shape[0]
    total = n * len(datas)
    scores = list(scores) if scores is not None else [None] * len(datas)
    outs = []
    for k, data in enumerate(datas):
        gen = derotate_steps(
            data,
            angles,
            params.for_channel(k),
            chunk_frames=chunk_frames,
            score=scores[k],
        )
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
        return np.stack([np.asarray(d[index]) for d in self.datas], axis=self.c_axis)


def mean_images(raw, derotated, frames, center=None):
    """Mean raw and mean derotated images over ``frames`` (float32), and
    the :func:`agreement` of each set of frames."""
    raw_f = np.asarray(raw[frames])
    out_f = np.asarray(derotated[frames])
    return (
        raw_f.mean(0, dtype=np.float32),
        out_f.mean(0, dtype=np.float32),
        agreement(raw_f, center),
        agreement(out_f, center),
    )


def agreement(frames, center=None) -> float:
    """How much the frames agree: the variance of their mean image over the
    mean variance of a frame, inside the inscribed disk about ``center``.

    About 1 when every frame shows the sample in the same place (only noise
    averages away); much lower when cells move from frame to frame and the
    mean smears them into arcs.
    """
    frames = np.asarray(frames)
    meter = AgreementMeter(frames.shape[1:], np.arange(len(frames)), center)
    meter.add(0, frames)
    return meter.value()


#: Below this frame agreement of the derotated movie the widget says the
#: centre may be off and offers the centre search (a right centre gives
#: about 0.9 on the sample, the frame centre 0.2).
AGREEMENT_LOW = 0.5


class AgreementMeter:
    """The :func:`agreement` of the frames ``frames`` of a movie, summed a
    chunk of frames at a time (as a derotation produces them), so the
    whole movie is never held twice: :meth:`add` each chunk, then
    :meth:`value`."""

    def __init__(self, frame_shape, frames, center=None):
        rows, cols = (int(v) for v in frame_shape)
        if center is None:
            center = ((rows - 1) / 2, (cols - 1) / 2)
        self.mask = disc_mask((rows, cols), center)
        self.frames = np.unique(np.asarray(frames, np.int64))
        self.total = np.zeros(int(self.mask.sum()), np.float64)
        self.frame_var = 0.0
        self.n = 0

    def add(self, start: int, chunk) -> None:
        """Frames ``start ..`` of the movie (those among ``frames`` count)."""
        stop = start + len(chunk)
        lo, hi = np.searchsorted(self.frames, (start, stop))
        if hi <= lo:
            return
        inside = np.asarray(chunk)[self.frames[lo:hi] - start][:, self.mask]
        inside = inside.astype(np.float64)
        self.total += inside.sum(axis=0)
        self.frame_var += float(inside.var(axis=1).sum())
        self.n += hi - lo

    def value(self) -> float:
        if self.n == 0 or self.frame_var <= 0:
            return 0.0
        return float((self.total / self.n).var() / (self.frame_var / self.n))


class Agreement:
    """The frame agreement of a movie before and after derotation,
    measured while it is derotated (:func:`derotate_steps`'s ``score``):
    the rotating frames (all frames when none rotates), about the
    centre."""

    def __init__(self, angles, shape, center):
        n, rows, cols = shape
        frames = rotating_frames(angles, n, rows)
        if frames.size == 0:
            frames = np.arange(n)
        self.n_frames = int(frames.size)
        self.raw = AgreementMeter((rows, cols), frames, center)
        self.derotated = AgreementMeter((rows, cols), frames, center)

    def add(self, start: int, raw, derotated) -> None:
        self.raw.add(start, raw)
        self.derotated.add(start, derotated)

    def values(self) -> tuple[float, float]:
        """``(raw, derotated)``."""
        return self.raw.value(), self.derotated.value()


def agreement_message(raw: float, derotated: float) -> tuple[str, bool]:
    """What the agreement after a derotation says, in words, and whether
    it is low (below :data:`AGREEMENT_LOW`: the centre may be off)."""
    text = (
        f"frame agreement {derotated:.2f} (raw {raw:.2f}; 1 = the "
        f"rotating frames all alike)"
    )
    low = derotated < AGREEMENT_LOW
    if low:
        text += "; low: cells still move, so the centre of rotation is probably off"
    return text, low


def showcase_frame(angles, n_frames: int, rows: int, current: int) -> int:
    """The frame to show raw and derotated side by side: ``current`` when
    it rotates, else the rotating frame turned farthest from upright
    (where a wrong centre shows most); ``current`` when none rotates."""
    frames = rotating_frames(angles, n_frames, rows)
    if frames.size == 0 or int(current) in set(frames.tolist()):
        return int(current)
    mid = np.asarray(angles, np.float64)[frames * rows + rows // 2]
    turned = np.abs((mid + 180.0) % 360.0 - 180.0)
    return int(frames[int(np.argmax(turned))])


def export_job(
    folder, name, derotated, metadata, *, overwrite=False, fmt="tif", check_files=True
):
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
        shape = (
            shape[0],
            *to_tzcyx(np.empty((1, *shape[1:]), np.bool_), axes).shape[1:],
        )
    else:
        shape = (shape[0], 1, 1, *shape[1:])
        axes = "TYX"
    input_path = d.get("input_path")
    movie = MovieSpec.in_memory(
        shape,
        derotated.dtype,
        axes,
        path=input_path if input_path and Path(input_path).is_file() else None,
    )
    out = output_spec(
        folder=folder, name=name, fmt=fmt, overwrite=overwrite, tables=True
    )
    job = describe(
        movie,
        d.get("angles_per_line"),
        out,
        params=_meta.params(metadata),
        angles_source=d.get("angles_source"),
        extra_angles_ok=True,
        check_files=False,
    )
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
    return (
        yield from write_result(
            job,
            derotated,
            chunk_frames=chunk_frames,
            frame_angles=d.get("angles_per_frame"),
            source_layer=d.get("source_layer"),
        )
    )


def derotated_metadata(
    source_meta, params: DerotationParams, *, source_layer, channel: int | None = None
) -> dict:
    """Metadata of a derotated layer (so its export and save know how).

    ``params`` may hold one fill value per channel: the layer of channel
    ``channel`` records its own as ``fill_value`` and every channel's as
    ``fill_values`` (channel order); without ``channel``, ``fill_value``
    holds them all (the metadata of the whole movie)."""
    d = dict(_meta.get(source_meta))
    raw_path = d.pop("movie_path", None)
    for key in ("record", "angles_looked_for", "angles_found_by"):
        d.pop(key, None)
    fills = params.fill_value
    if isinstance(fills, tuple):
        d["fill_values"] = list(fills)
        if channel is not None:
            params = params.for_channel(channel)
    else:
        d.pop("fill_values", None)
    d.update(
        _meta.from_params(params),
        derotated=True,
        source_layer=source_layer,
        version=__version__,
        input_path=raw_path,
    )
    return {_meta.KEY: d}


def group_metadata(metadata) -> dict:
    """The metadata of a multi-channel movie's derotated layer for the
    export of all its channels: ``fill_value`` is every channel's
    (``fill_values``)."""
    d = dict(_meta.get(metadata))
    if d.get("fill_values") is not None:
        d["fill_value"] = list(d["fill_values"])
    return {**dict(metadata or {}), _meta.KEY: d}
