"""When each line and frame was scanned, on one of three clocks.

The angle sources that are not sampled with the analog file (a motor log,
one angle per frame) need the time of every scanned line. It comes from:

- ``line_clock``: the line- and frame-clock pulses of the analog file
  (:func:`~napari_derotation.acquisition.signals.clock_samples`), in samples,
  divided by ``sampling_rate`` for seconds;
- ``scanimage``: ScanImage's per-frame timestamps plus ``row * line
  period`` (:func:`scanimage_line_times`; the movie's own metadata through
  :func:`scanimage_timestamps`);
- ``frame_rate``: ``line / (frame_rate * rows)``, for a scanner without
  flyback gaps.

A frame's time is the time of its first line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DerotationError

__all__ = [
    "LineTimes",
    "line_clock_times",
    "scanimage_line_times",
    "frame_rate_line_times",
    "scanimage_timestamps",
]


@dataclass
class LineTimes:
    """The time of every line and frame.

    Attributes
    ----------
    lines, frames : ndarray of float64
        Seconds (or samples when ``seconds`` is False).
    line_clock, frame_clock : ndarray of int64
        Analog-file samples of the lines and frames when they come from the
        line clock, else line and frame numbers (the result's ``clock``).
    seconds : bool
    sampling_rate : float or None
    n_samples : int
        Samples of the analog file (0 without one).
    notes : list of str
    """

    lines: np.ndarray
    frames: np.ndarray
    line_clock: np.ndarray
    frame_clock: np.ndarray
    seconds: bool = True
    sampling_rate: float | None = None
    n_samples: int = 0
    notes: list = field(default_factory=list)


def line_clock_times(
    line_clock, frame_clock, params, *, n_lines, n_frames, sampling_rate=None
) -> LineTimes:
    """Line and frame times from the analog file's clock pulses.

    Seconds if ``sampling_rate`` is given, else samples (``seconds`` False).
    """
    from .signals import clock_samples

    notes: list[str] = []
    lines, frames = clock_samples(
        line_clock, frame_clock, params, n_lines=n_lines, n_frames=n_frames, notes=notes
    )
    fs = float(sampling_rate) if sampling_rate else None
    scale = 1.0 / fs if fs else 1.0
    return LineTimes(
        lines * scale,
        frames * scale,
        lines,
        frames,
        seconds=fs is not None,
        sampling_rate=fs,
        n_samples=len(line_clock),
        notes=notes,
    )


def scanimage_line_times(frame_timestamps, line_period, rows) -> LineTimes:
    """Line times from ScanImage's frame timestamps (s) and line period (s).

    Line ``r`` of frame ``f`` is at ``frame_timestamps[f] + r *
    line_period``.
    """
    ts = np.asarray(frame_timestamps, np.float64).ravel()
    if ts.size == 0 or not np.all(np.isfinite(ts)):
        raise DerotationError(
            "ScanImage frame timestamps: expected one finite time per frame; "
            f"got {ts.size} values"
        )
    if np.any(np.diff(ts) <= 0):
        i = int(np.flatnonzero(np.diff(ts) <= 0)[0])
        raise DerotationError(
            f"ScanImage frame timestamps must increase; frame {i + 1} is at "
            f"{ts[i + 1]:g} s after {ts[i]:g} s"
        )
    lp = float(line_period)
    if not lp > 0 or lp * rows > np.min(np.diff(ts), initial=np.inf) * 1.0001:
        raise DerotationError(
            f"ScanImage line period: expected > 0 s and rows x period within "
            f"a frame; got {lp:g} s for {rows} rows"
        )
    lines = (ts[:, None] + np.arange(rows) * lp).ravel()
    n = len(ts) * rows
    return LineTimes(
        lines,
        ts.copy(),
        np.arange(n, dtype=np.int64),
        np.arange(len(ts), dtype=np.int64) * rows,
    )


def frame_rate_line_times(n_frames, rows, frame_rate) -> LineTimes:
    """Evenly spaced lines: line ``i`` at ``i / (frame_rate * rows)`` s."""
    if not frame_rate or not frame_rate > 0:
        raise DerotationError(
            f"cannot align the clocks from the frame rate: expected "
            f"frame_rate > 0 (frames per second); got {frame_rate}"
        )
    n = int(n_frames) * int(rows)
    idx = np.arange(n, dtype=np.int64)
    lines = idx / (float(frame_rate) * rows)
    return LineTimes(lines, lines[::rows].copy(), idx, idx[::rows].copy())


_TS = re.compile(r"frameTimestamps_sec\s*=\s*([-+0-9.eE]+)")
_LP = ("SI.hRoiManager.linePeriod", "SI.hScan2D.linePeriod")


def scanimage_timestamps(path) -> tuple[np.ndarray, float]:
    """``(frame_timestamps, line_period)`` from a ScanImage TIFF's metadata.

    The per-page ``frameTimestamps_sec`` of the image descriptions and
    ``SI.hRoiManager.linePeriod`` of the file's ScanImage metadata (read
    with tifffile). One timestamp per page: a single-plane, single-channel
    movie. Raises :class:`DerotationError` if either is missing.
    """
    import tifffile

    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            meta = tif.scanimage_metadata or {}
            stamps = []
            for page in tif.pages:
                m = _TS.search(getattr(page, "description", "") or "")
                if m is None:
                    break
                stamps.append(float(m.group(1)))
    except Exception as exc:
        raise DerotationError(f"cannot read {path.name}: {exc}") from None
    frame = meta.get("FrameData", {}) if isinstance(meta, dict) else {}
    period = next((frame[k] for k in _LP if k in frame), None)
    if not stamps or period is None:
        raise DerotationError(
            f"{path.name}: expected ScanImage metadata (frameTimestamps_sec in "
            f"every frame's description and SI.hRoiManager.linePeriod); found "
            f"{len(stamps)} timestamps and "
            f"{'a' if period is not None else 'no'} line period"
        )
    return np.asarray(stamps), float(period)
