"""Where the angles come from: the config's ``rotation_source``.

- ``ticks`` (the default, the reference's): the motor's tick pulses and the
  rotation-on signal (:mod:`.signals`);
- ``encoder``: quadrature A/B channels (:mod:`.encoder`);
- ``position``: an analog channel proportional to the angle
  (:mod:`.position`);
- ``log``: a motor controller's log of time and angle (:mod:`.log`);
- ``frame_angles``: one angle per frame (:mod:`.frame_angles`).

:func:`compute_angles` is the one entry point (used by ``run``, ``batch``,
``angles`` and the napari plugin, through
:meth:`napari_derotation.pipeline.Dataset.compute_angles`); every source
returns an :class:`~napari_derotation.acquisition.signals.AnglesResult`.
For sources other than ticks its rotations are found in the angles
themselves (:func:`find_rotations`), it has no ticks, and its ``clock``
fields are analog-file samples when the lines were timed by the line clock,
else line and frame numbers.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import Cancelled, DerotationError
from . import linetimes
from .signals import AnglesResult, rotation_of

__all__ = [
    "compute_angles",
    "needs_analog",
    "angles_input",
    "find_rotations",
    "lines_result",
]

#: Rotations are runs of lines turning by more than this many degrees per
#: frame (for the summary and the per-frame table only).
MOTION_DEGREES = 0.5


def needs_analog(cfg) -> bool:
    """Whether ``cfg``'s source reads the analog file (``path_to_aux``)."""
    src = cfg.rotation_source
    if src in ("ticks", "encoder", "position"):
        return True
    clock = cfg.log_clock if src == "log" else cfg.frame_angles_clock
    return clock == "line_clock"


def angles_input(cfg):
    """The file the angles come from (for messages and the record)."""
    return {"log": cfg.log_path, "frame_angles": cfg.frame_angles_path}.get(
        cfg.rotation_source, cfg.signals
    )


def compute_angles(
    cfg,
    *,
    n_frames: int,
    rows: int,
    progress=None,
    frame_timestamps=None,
    line_period=None,
) -> AnglesResult:
    """Per-line and per-frame angles from the source ``cfg`` names.

    ``cfg`` is a :class:`~napari_derotation.pipeline.Config` (any object with
    its fields). ``n_frames`` and ``rows`` are the movie's. ``clock:
    scanimage`` uses ``frame_timestamps`` and ``line_period`` (seconds) if
    given, else the movie's ScanImage metadata. ``ticks`` is not handled
    here (see :meth:`Dataset.compute_angles`). Notes are issued as warnings.
    """
    src = cfg.rotation_source

    def step(done):
        if progress is not None and progress(done, 2) is False:
            raise Cancelled("angle computation cancelled")

    clock = {"log": cfg.log_clock, "frame_angles": cfg.frame_angles_clock}.get(
        src, "line_clock"
    )
    times = _line_times(cfg, clock, n_frames, rows, frame_timestamps, line_period)
    step(1)
    notes = list(times.notes)
    if src == "encoder":
        lines, frames, info = _encoder(cfg, times, notes)
    elif src == "position":
        lines, frames, info = _position(cfg, times, notes)
    elif src == "log":
        lines, frames, info = _log(cfg, times, notes, clock)
    elif src == "frame_angles":
        lines, frames, info = _frame_angles(cfg, times, notes, n_frames)
    else:
        raise DerotationError(
            f"rotation_source: expected one of encoder, position, log, "
            f"frame_angles here; got {src!r}"
        )
    step(2)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return lines_result(
        lines, frames, times, rows=rows, source=src, notes=notes, details=info
    )


# ------------------------------------------------------------- the sources


def _analog(cfg, wanted: dict) -> dict:
    from .loaders import load_channels

    if cfg.signals is None:
        raise DerotationError(
            f"rotation_source {cfg.rotation_source} reads the analog file; "
            f"none was given (paths_read.path_to_aux)"
        )
    return load_channels(cfg.signals, wanted, channel_names=cfg.channel_names)


def _clock_channels(cfg) -> dict:
    npy = cfg.signals is not None and cfg.signals.suffix.lower() == ".npy"
    if npy:
        return {
            "frame clock (npy_rows[0])": int(cfg.npy_rows[0]),
            "line clock (npy_rows[1])": int(cfg.npy_rows[1]),
        }
    return {
        "channels.frame_clock": cfg.channels["frame_clock"],
        "channels.line_clock": cfg.channels["line_clock"],
    }


def _line_times(cfg, clock, n_frames, rows, frame_timestamps, line_period):
    if clock == "line_clock":
        names = _clock_channels(cfg)
        ch = _analog(cfg, names)
        frame_sig, line_sig = (ch[k] for k in names)
        return linetimes.line_clock_times(
            line_sig,
            frame_sig,
            cfg.signal_params(),
            n_lines=n_frames * rows,
            n_frames=n_frames,
            sampling_rate=cfg.sampling_rate,
        )
    if clock == "scanimage":
        if frame_timestamps is None or line_period is None:
            if cfg.movie is None:
                raise DerotationError(
                    "clock scanimage: cannot align the clocks without "
                    "ScanImage frame timestamps; no movie given"
                )
            frame_timestamps, line_period = linetimes.scanimage_timestamps(cfg.movie)
        if len(frame_timestamps) != n_frames:
            raise DerotationError(
                f"clock scanimage: expected one frame timestamp per frame, "
                f"{n_frames}; found {len(frame_timestamps)}"
            )
        return linetimes.scanimage_line_times(frame_timestamps, line_period, rows)
    if cfg.frame_rate or cfg.rotation_source == "log":
        return linetimes.frame_rate_line_times(n_frames, rows, cfg.frame_rate)
    # frame angles: evenly spaced lines need no rate (times in frames)
    times = linetimes.frame_rate_line_times(n_frames, rows, 1.0)
    times.seconds = False
    return times


def _encoder(cfg, times, notes):
    from .encoder import encoder_angles

    ch = _analog(
        cfg,
        {
            "encoder.channel_a": cfg.encoder_channel_a,
            "encoder.channel_b": cfg.encoder_channel_b,
        },
    )
    a, b = ch["encoder.channel_a"], ch["encoder.channel_b"]
    _same_length(a, times, "encoder.channel_a")
    idx = np.concatenate((times.line_clock, times.frame_clock))
    angles, more, info = encoder_angles(
        a,
        b,
        idx,
        counts_per_turn=cfg.encoder_counts_per_turn,
        direction=cfg.encoder_direction,
        names=(
            f"channel_a {cfg.encoder_channel_a!r}",
            f"channel_b {cfg.encoder_channel_b!r}",
        ),
    )
    notes += more
    n = len(times.line_clock)
    return angles[:n], angles[n:], info


def _position(cfg, times, notes):
    from .position import position_angles

    ch = _analog(cfg, {"position.channel": cfg.position_channel})
    sig = ch["position.channel"]
    _same_length(sig, times, "position.channel")
    idx = np.concatenate((times.line_clock, times.frame_clock))
    angles, more, info = position_angles(
        sig,
        idx,
        degrees_per_volt=cfg.position_degrees_per_volt,
        offset_volts=cfg.position_offset_volts,
        range_volts=cfg.position_range_volts,
        smoothing=cfg.position_smoothing_samples,
        name=f"position channel {cfg.position_channel!r}",
    )
    notes += more
    n = len(times.line_clock)
    return angles[:n], angles[n:], info


def _log(cfg, times, notes, clock):
    from .log import interpolate_log, read_log

    if not times.seconds:
        raise DerotationError(
            "rotation log: cannot align the log's clock with the line clock "
            "without sampling_rate (samples per second of the analog file)"
        )
    t, a = read_log(cfg.log_path, cfg.log_time_column, cfg.log_angle_column)
    name = f"rotation log {cfg.log_path.name}"
    both = np.concatenate((times.lines, times.frames))
    angles, more = interpolate_log(
        t, a, both, offset_s=cfg.log_offset_s, name=name, clock=clock
    )
    notes += more
    n = len(times.lines)
    return (
        angles[:n],
        angles[n:],
        {"log_rows": int(len(t)), "log_offset_s": float(cfg.log_offset_s)},
    )


def _frame_angles(cfg, times, notes, n_frames):
    from .frame_angles import frame_angles_to_lines, read_frame_angles

    a = read_frame_angles(cfg.frame_angles_path, n_frames)
    lines, frames, more, info = frame_angles_to_lines(
        a, times.frames, times.lines, name=f"frame angles {cfg.frame_angles_path.name}"
    )
    notes += more
    return lines, frames, info


def _same_length(sig, times, key):
    if times.n_samples and len(sig) != times.n_samples:
        raise DerotationError(
            f"{key}: expected as many samples as the line clock, "
            f"{times.n_samples}; found {len(sig)}"
        )


# ------------------------------------------------------------------ result


def find_rotations(angles_per_line, rows: int):
    """``(first, last)`` lines of every run of motion (``last`` exclusive).

    A line moves if the angle changes by more than :data:`MOTION_DEGREES`
    over the frame of lines centred on it; runs closer than a frame merge.
    """
    a = np.asarray(angles_per_line, np.float64)
    n = len(a)
    w = max(1, int(rows) // 2)
    if n <= 2 * w:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    moving = np.zeros(n, bool)
    moving[w : n - w] = np.abs(a[2 * w :] - a[: n - 2 * w]) > MOTION_DEGREES
    edges = np.flatnonzero(np.diff(np.concatenate(([0], moving, [0]))))
    first, last = edges[::2], edges[1::2]
    if len(first) > 1:
        keep = np.concatenate(([True], first[1:] - last[:-1] > 2 * w))
        first, last = first[keep], last[np.concatenate((keep[1:], [True]))]
    return first.astype(np.int64), last.astype(np.int64)


def lines_result(
    lines, frames, times, *, rows, source, notes, details=None
) -> AnglesResult:
    """An :class:`AnglesResult` from per-line and per-frame angles.

    Rotations are :func:`find_rotations`; a rotation's direction is ``-1``
    where the angle grows (the tick convention: angle = ``-direction *
    motor``), its speed unknown (NaN), its measured speed the mean rate of
    change when the lines are timed in seconds.
    """
    lines = np.asarray(lines, np.float64)
    frames = np.asarray(frames, np.float64)
    first, last = find_rotations(lines, rows)
    clock = times.line_clock
    starts = clock[first].astype(np.int64)
    ends = (clock[last - 1] + 1).astype(np.int64)
    change = lines[last - 1] - lines[first]
    direction = np.where(change > 0, -1, 1).astype(np.int64)
    if times.seconds:
        dt = times.lines[last - 1] - times.lines[first]
        measured = np.abs(change) / np.maximum(dt, 1e-12)
    else:
        measured = np.full(len(first), np.nan)
    k = len(first)
    knots = (clock.astype(np.float64), lines)
    return AnglesResult(
        angles_per_line=lines,
        angles_per_frame=frames,
        line_clock=clock,
        frame_clock=times.frame_clock,
        rotation_starts=starts,
        rotation_ends=ends,
        direction=direction,
        speed=np.full(k, np.nan),
        ticks=np.zeros(0, np.int64),
        ticks_per_rotation=np.zeros(k, np.int64),
        increments=np.full(k, np.nan),
        rotation_of_frame=rotation_of(times.frame_clock, starts, ends),
        measured_speed=measured,
        n_samples=int(times.n_samples),
        protocol="full",
        warnings=list(notes),
        knots=knots,
        artifact_threshold=0.0,
        sampling_rate=times.sampling_rate,
        source=source,
        details=dict(details or {}),
    )
