"""The widget's computations, free of Qt and napari so they test alone.

Workers (:mod:`._workers`) run the slow ones in threads; the sections call
the quick ones (the live preview) directly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import __version__
from ..engine import check_angles, check_center, check_movie, derotate_into
from ..engine.params import DerotationParams
from ..errors import DerotationError
from ..frames import frame_angles, rotating_frames
from ..io import (
    OutputSet,
    TiffStreamWriter,
    check_not_input,
    frame_table,
    record,
    save_angles,
    sidecar_path,
    write_frame_csv,
    write_json,
)
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


#: A trace whose whole range is under this (degrees) hardly rotates.
MIN_SPAN_DEGREES = 2.0


def angle_warnings(angles, shape) -> list[str]:
    """What looks wrong about a movie's per-line angles, in words: their
    count is not the movie's line count, or the whole trace spans under
    :data:`MIN_SPAN_DEGREES` (probably the wrong trace or a still movie).

    A local check for the widget; the library's own check for the CLI may
    replace it.
    """
    out = []
    if angles is None or shape is None or len(shape) != 3:
        return out
    angles = np.asarray(angles, np.float64)
    n, rows = int(shape[0]), int(shape[1])
    need = n * rows
    if angles.size != need:
        more = "extra are ignored" if angles.size > need else \
            "movie cannot be derotated with them"
        out.append(f"{angles.size} angles for a movie of {need} lines "
                   f"({n} frames x {rows} rows): the {more}; check that "
                   f"these angles belong to this movie")
    used = angles[:need]
    span = float(np.nanmax(used) - np.nanmin(used)) if used.size else 0.0
    if span < MIN_SPAN_DEGREES:
        out.append(f"the angles span only {span:.2f} degrees over the whole "
                   f"movie: it hardly rotates; check that these are the "
                   f"rotation angles in degrees")
    return out


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
    sub = np.ascontiguousarray(np.asarray(data[frames]))
    lines = (np.asarray(frames)[:, None] * rows + np.arange(rows)).ravel()
    out = np.empty_like(sub)
    derotate_into(sub, np.asarray(angles)[lines], out=out, params=params)
    return out.mean(axis=0, dtype=np.float32)


def derotate_steps(data, angles, params: DerotationParams, *,
                   chunk_frames=CHUNK_FRAMES):
    """Generator: derotate a movie chunk by chunk with ``params``.

    Yields ``(done, total)`` after each chunk and returns the derotated
    array (same dtype). Closing the generator early discards everything.
    """
    n, rows, cols = data.shape
    out = np.empty((n, rows, cols), np.dtype(data.dtype))
    for start in range(0, n, chunk_frames):
        stop = min(n, start + chunk_frames)
        chunk = np.ascontiguousarray(np.asarray(data[start:stop]))
        derotate_into(chunk, angles[start * rows: stop * rows],
                      out=out[start:stop], params=params)
        yield stop, n
    return out


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
    cr, cc = center if center is not None else ((rows - 1) / 2, (cols - 1) / 2)
    r = min(cr, rows - 1 - cr, cc, cols - 1 - cc)
    yy, xx = np.mgrid[:rows, :cols]
    disk = (yy - cr) ** 2 + (xx - cc) ** 2 <= r * r
    inside = frames[:, disk]
    per_frame = float(inside.var(axis=1).mean())
    return float(inside.mean(axis=0).var() / per_frame) if per_frame > 0 \
        else 0.0


def export_paths(folder, stem) -> dict:
    folder = Path(folder)
    return {"movie": folder / f"{stem}.tif",
            "json": sidecar_path(folder / f"{stem}.tif"),
            "frames": folder / f"{stem}_frames.csv",
            "angles": folder / f"{stem}_angles_per_line.npy"}


def check_export(folder, stem, inputs, overwrite=False) -> dict:
    """Paths an export will write; raises if one is an input, or exists and
    ``overwrite`` is off, or the folder is missing."""
    if not str(stem).strip():
        raise DerotationError("export: the file name is empty")
    folder = Path(folder)
    if not folder.is_dir():
        raise DerotationError(f"export folder does not exist: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DerotationError(f"cannot write to {folder}: permission "
                              f"denied; choose another folder")
    paths = export_paths(folder, stem)
    for p in paths.values():
        check_not_input(p, *inputs)
    if not overwrite:
        existing = [p.name for p in paths.values() if p.exists()]
        if existing:
            raise DerotationError(
                f"export: {', '.join(existing)} already exist in {folder}; "
                f"choose another name or tick 'overwrite'")
    return paths


def export_steps(paths: dict, derotated, metadata, *, input_path=None,
                 chunk_frames=64):
    """Generator: write an export, yielding ``(done, total)`` frames.

    The TIFF is streamed chunk by chunk and appears only when complete; the
    JSON, per-frame CSV and per-line angles are written after it. Closing
    the generator before the end leaves no file behind.
    """
    d = _meta.get(metadata)
    n, rows, cols = derotated.shape
    angles = np.asarray(d["angles_per_line"], np.float64)
    with OutputSet() as out:
        with TiffStreamWriter(paths["movie"], derotated.shape,
                              derotated.dtype) as writer:
            for start in range(0, n, chunk_frames):
                stop = min(n, start + chunk_frames)
                writer.write(np.asarray(derotated[start:stop]))
                yield stop, n
        out.add(paths["movie"])
        rec = derotated_record(paths["movie"], derotated, metadata,
                               input_path=input_path,
                               per_frame_csv=paths["frames"].name,
                               angles_file=paths["angles"].name)
        out.add(write_json(paths["json"], rec))
        out.add(write_frame_csv(paths["frames"], frame_table(
            _frame_angles(angles, n, rows, d.get("angles_per_frame")))))
        out.add(save_angles(paths["angles"], angles[: n * rows]))
    return [str(p) for p in out.written]


def derotated_record(out_path, derotated, metadata, *, input_path=None,
                     **extra) -> dict:
    """The JSON record of a derotated layer saved as ``out_path``: the one
    both the Export section and the napari writer (File > Save) write."""
    d = _meta.get(metadata)
    angles = d.get("angles_per_line")
    rec = record(movie_path=input_path if input_path and
                 Path(input_path).is_file() else None,
                 out_path=out_path, shape=derotated.shape,
                 dtype=derotated.dtype, params=_meta.params(metadata),
                 angles_source=d.get("angles_source"),
                 n_angles=0 if angles is None else np.size(angles),
                 checksum=False, source_layer=d.get("source_layer"), **extra)
    if input_path:
        rec["input"]["path"] = str(input_path)
    return rec


def _frame_angles(angles, n_frames, rows, per_frame=None) -> np.ndarray:
    """The per-frame angles the signals gave, else each frame's first line
    (:func:`napari_derotation.frames.frame_angles`)."""
    if per_frame is not None and np.size(per_frame) >= n_frames:
        return np.asarray(per_frame, np.float64)[:n_frames]
    return frame_angles(angles, n_frames, rows)


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
