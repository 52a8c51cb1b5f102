"""Rotation angles from the analog signals recorded beside the movie.

Four signals, sampled together: the frame clock, the line clock, the
rotation-on signal (high while the motor turns) and the motor's tick pulses
(one every ``increment`` degrees). :func:`process_signals` turns them into the
angle of every scanned line and frame, in the sign
:func:`napari_derotation.derotate` expects.

Steps (each vectorised and streamed over the signal in chunks, so memory is
bounded by the number of ticks and lines, not by the number of samples):

1. ticks: peaks of the tick channel at least ``tick_height`` volts high and
   ``tick_distance`` samples apart (as :func:`scipy.signal.find_peaks`);
2. rotation blocks: where the rotation-on signal is high (above the level
   midway between its low and high levels, or ``mean + k * std``);
   blocks separated by at most ``min_off_samples`` are merged;
3. the number of blocks is checked against the stimulus table (full) or
   ``rot_deg / step`` (incremental); if it differs, rotations are recovered
   from the ticks (split at the largest gaps between ticks);
4. ticks outside every block are dropped; a block's missing or spurious
   ticks are repaired where the gaps make it unambiguous, and its increment
   is then ``degrees / ticks`` (always, so a right count needs no special
   case);
5. the motor angle is piecewise linear through the ticks (tick ``k`` of a
   block is at ``k * increment``), starts one tick interval before the first
   tick and is signed by the block's direction: angle = ``-direction * motor``;
6. angles with magnitude <= ``artifact_threshold`` are set to 0;
7. it is sampled at the rising (or falling) edge of every line- and
   frame-clock pulse, and the counts are checked against the movie.

The angle is never materialised per sample: it is evaluated only where needed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import find_peaks

from ..errors import Cancelled, DerotationError

__all__ = [
    "SignalParams",
    "AnglesResult",
    "process_signals",
    "find_ticks",
    "pulse_edges",
    "merge_brief_off",
    "threshold",
    "blocks_from_ticks",
    "repair_ticks",
    "clock_samples",
    "rotation_of",
    "CHUNK",
]

#: Samples per chunk when streaming over a signal.
CHUNK = 1 << 21


@dataclass(frozen=True)
class SignalParams:
    """Parameters of :func:`process_signals` (see ``docs/config.md``)."""

    protocol: str = "full"
    rot_deg: float = 360.0
    increment: float = 0.2
    step: float = 10.0
    incremental_direction: int = -1
    tick_height: float = 4.0
    tick_distance: int = 20
    threshold_k: float | None = None
    min_off_samples: int = 1000
    artifact_threshold: float = 0.15
    repair_ticks: bool = True
    line_use_start: bool = True
    frame_use_start: bool = True
    line_count_mismatch: str = "error"

    def check(self) -> SignalParams:
        if self.protocol not in ("full", "incremental"):
            raise DerotationError(
                f"pipeline type must be 'full' or 'incremental'; got {self.protocol!r}"
            )
        for name in ("rot_deg", "increment", "step"):
            if not 0 < getattr(self, name) < np.inf:
                raise DerotationError(
                    f"{name} must be a finite number > 0; got {getattr(self, name)}"
                )
        for name in ("tick_height", "artifact_threshold"):
            if not np.isfinite(getattr(self, name)):
                raise DerotationError(
                    f"{name} must be a finite number; got {getattr(self, name)}"
                )
        if self.threshold_k is not None and not np.isfinite(self.threshold_k):
            raise DerotationError(
                f"the pulse threshold's k must be a finite number; got "
                f"{self.threshold_k}"
            )
        if self.incremental_direction not in (-1, 1):
            raise DerotationError(
                f"incremental direction must be +1 or -1; got "
                f"{self.incremental_direction}"
            )
        if self.tick_distance < 1:
            raise DerotationError(
                f"tick distance must be >= 1 sample; got {self.tick_distance}"
            )
        if self.min_off_samples < 0 or self.artifact_threshold < 0:
            raise DerotationError(
                "inter_rotation_interval_min_len and the artifact threshold "
                "must be >= 0"
            )
        if self.line_count_mismatch not in ("error", "trim"):
            raise DerotationError(
                f"line_count_mismatch must be 'error' or 'trim'; got "
                f"{self.line_count_mismatch!r}"
            )
        return self

    @property
    def degrees_per_block(self) -> float:
        return self.rot_deg if self.protocol == "full" else self.step


@dataclass
class AnglesResult:
    """Angles and everything found on the way (see :func:`process_signals`).

    Attributes
    ----------
    angles_per_line, angles_per_frame : ndarray of float64
        Degrees, in the sign :func:`napari_derotation.derotate` expects.
    line_clock, frame_clock : ndarray of int64
        The sample at which each line's / frame's angle was taken.
    rotation_starts, rotation_ends : ndarray of int64
        Sample range ``[start, end)`` of every rotation (or step).
    direction, speed : ndarray
        Stimulus of every rotation (``speed`` NaN when unknown).
    ticks : ndarray of int64
        Tick samples used (after dropping and repairs).
    ticks_per_rotation : ndarray of int64
    increments : ndarray of float64
        Degrees per tick of every rotation.
    rotation_of_frame : ndarray of int64
        Index of the rotation each frame's clock sample falls in, -1 if none.
    measured_speed : ndarray of float64
        Degrees per second of every rotation, from its ticks (NaN if the
        sampling rate is unknown).
    n_samples : int
    protocol : str
    warnings : list of str
    source : str
        The ``rotation_source`` the angles came from (see
        :mod:`napari_derotation.acquisition.angle_sources`).
    details : dict
        What that source found (e.g. the encoder's glitches).
    """

    angles_per_line: np.ndarray
    angles_per_frame: np.ndarray
    line_clock: np.ndarray
    frame_clock: np.ndarray
    rotation_starts: np.ndarray
    rotation_ends: np.ndarray
    direction: np.ndarray
    speed: np.ndarray
    ticks: np.ndarray
    ticks_per_rotation: np.ndarray
    increments: np.ndarray
    rotation_of_frame: np.ndarray
    measured_speed: np.ndarray
    n_samples: int
    protocol: str = "full"
    warnings: list = field(default_factory=list)
    knots: tuple = field(default=(), repr=False)
    artifact_threshold: float = 0.0
    sampling_rate: float | None = None
    source: str = "ticks"
    details: dict = field(default_factory=dict)

    def angle_at(self, samples) -> np.ndarray:
        """The signed angle (degrees) at any sample indices."""
        a = np.interp(np.asarray(samples, np.float64), *self.knots)
        a[np.abs(a) <= self.artifact_threshold] = 0.0
        return a

    def frame_table(self) -> dict:
        """Columns of the per-frame CSV (the reference's names)."""
        n = len(self.angles_per_frame)
        rot = self.rotation_of_frame
        on = (rot >= 0) & (self.angles_per_frame != 0)
        direction = np.full(n, np.nan)
        speed = np.full(n, np.nan)
        count = np.full(n, np.nan)
        direction[on] = self.direction[rot[on]]
        speed[on] = self.speed[rot[on]]
        count[on] = rot[on]
        return {
            "frame": np.arange(n),
            "rotation_angle": self.angles_per_frame,
            "clock": self.frame_clock,
            "direction": direction,
            "speed": speed,
            "rotation_count": count,
        }


# ----------------------------------------------------------------- primitives


def threshold(signal, k: float | None = None, *, chunk: int = CHUNK) -> float:
    """The level separating a square wave's low and high samples.

    ``k=None`` (default): midway between the signal's low and high levels
    (two-class k-means on a 1024-bin histogram), whatever the duty cycle and
    robust to noise. A number: ``mean + k * std``, as the reference.
    Accumulated chunk by chunk.
    """
    n = len(signal)
    if n == 0:
        raise DerotationError("signal is empty")
    s = s2 = 0.0
    lo, hi = np.inf, -np.inf
    for a in range(0, n, chunk):
        x = np.asarray(signal[a : a + chunk], np.float64)
        s += float(x.sum())
        if k is None:
            lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
        elif k:
            s2 += float(np.dot(x, x))
    mean = s / n
    if k is not None:
        return mean + k * float(np.sqrt(max(s2 / n - mean * mean, 0.0)))
    if not hi > lo:
        return hi
    bins = 1024
    hist = np.zeros(bins, np.int64)
    scale = (bins - 1) / (hi - lo)
    for a in range(0, n, chunk):
        x = np.asarray(signal[a : a + chunk], np.float64)
        hist += np.bincount(((x - lo) * scale).astype(np.intp), minlength=bins)
    centres = lo + np.arange(bins) / scale
    level = mean
    for _ in range(100):
        below = centres <= level
        w0, w1 = hist[below].sum(), hist[~below].sum()
        if not w0 or not w1:
            break
        m0 = (hist[below] * centres[below]).sum() / w0
        m1 = (hist[~below] * centres[~below]).sum() / w1
        new = 0.5 * (m0 + m1)
        if abs(new - level) < 0.5 / scale:
            level = new
            break
        level = new
    return float(level)


def pulse_edges(
    signal, k: float | None = None, *, level: float | None = None, chunk: int = CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends of the pulses of a square-wave signal.

    A sample is high if it exceeds ``level`` (default: :func:`threshold`).
    Returns ``(starts, ends)``: the first high sample of every pulse and the
    first low sample after it (``len(signal)`` if it is still high at the
    end), so pulse ``i`` is ``signal[starts[i]:ends[i]]``.
    """
    n = len(signal)
    if level is None:
        level = threshold(signal, k, chunk=chunk)
    starts, ends = [], []
    prev = False
    for a in range(0, n, chunk):
        high = np.asarray(signal[a : a + chunk]) > level
        change = np.flatnonzero(high[1:] != high[:-1]) + 1
        if high[0] != prev:
            change = np.concatenate(([0], change))
        if change.size:
            rising = high[change]
            starts.append(change[rising] + a)
            ends.append(change[~rising] + a)
        prev = bool(high[-1])
    starts = np.concatenate(starts) if starts else np.zeros(0, np.int64)
    ends = np.concatenate(ends) if ends else np.zeros(0, np.int64)
    if prev:
        ends = np.append(ends, n)
    return starts.astype(np.int64), ends.astype(np.int64)


def find_ticks(
    signal, height: float = 4.0, distance: int = 20, *, chunk: int = CHUNK
) -> np.ndarray:
    """Samples of the tick peaks: as ``find_peaks(signal, height, distance)``.

    Streamed in overlapping chunks; a peak is kept by the chunk that owns it.
    """
    n = len(signal)
    pad = 4 * int(distance) + 2
    out = []
    for a in range(0, n, chunk):
        lo, hi = max(a - pad, 0), min(a + chunk + pad, n)
        x = np.asarray(signal[lo:hi])
        if not x.size or x.max() < height:
            continue
        p = find_peaks(x, height=height, distance=distance)[0] + lo
        out.append(p[(p >= a) & (p < a + chunk)])
    peaks = np.concatenate(out) if out else np.zeros(0, np.int64)
    return peaks.astype(np.int64)


def merge_brief_off(starts, ends, min_off: int):
    """Merge pulses separated by at most ``min_off`` samples."""
    starts, ends = np.asarray(starts), np.asarray(ends)
    if len(starts) < 2:
        return starts, ends
    keep = np.concatenate(([True], starts[1:] - ends[:-1] > min_off))
    last = np.concatenate((keep[1:], [True]))
    return starts[keep], ends[last]


def blocks_from_ticks(ticks, n_blocks: int):
    """Split ticks into ``n_blocks`` groups at the largest gaps.

    Returns ``(starts, ends)``: a block starts one median tick interval before
    its first tick and ends just after its last.
    """
    ticks = np.asarray(ticks)
    if len(ticks) < max(n_blocks, 1):
        raise DerotationError(
            f"cannot recover {n_blocks} rotations from {len(ticks)} ticks"
        )
    gaps = np.diff(ticks)
    cut = (
        np.sort(
            np.argpartition(gaps, len(gaps) - n_blocks + 1)[len(gaps) - n_blocks + 1 :]
        )
        if n_blocks > 1
        else np.zeros(0, int)
    )
    first = np.concatenate(([0], cut + 1))
    last = np.concatenate((cut, [len(ticks) - 1]))
    step = np.array(
        [
            np.median(np.diff(ticks[f : e + 1])) if e > f else 0
            for f, e in zip(first, last, strict=True)
        ]
    )
    starts = np.maximum(ticks[first] - np.round(step).astype(np.int64), 0)
    if n_blocks > 1:
        starts[1:] = np.maximum(starts[1:], ticks[last[:-1]] + 1)
    return starts.astype(np.int64), (ticks[last] + 1).astype(np.int64)


def repair_ticks(ticks, expected: int) -> tuple[np.ndarray, str]:
    """Insert missing / remove spurious ticks of one rotation if unambiguous.

    A gap ``r`` times the local median interval hides ``round(r) - 1`` ticks;
    a tick splitting one interval into two short ones is spurious. Repairs
    are applied only if they account for exactly the difference between the
    ticks found and ``expected``. Returns ``(ticks, note)``.
    """
    t = np.asarray(ticks, np.int64)
    c = len(t)
    if c == expected or c < 3:
        return t, ""
    d = np.diff(t).astype(np.float64)
    ref = median_filter(d, size=min(15, len(d) | 1), mode="mirror")
    if c < expected:
        missing = np.where(d / ref > 1.5, np.round(d / ref) - 1, 0).astype(int)
        if missing.sum() != expected - c:
            return t, ""
        extra = [
            t[i] + np.round(np.arange(1, m + 1) * d[i] / (m + 1))
            for i, m in zip(np.flatnonzero(missing), missing[missing > 0], strict=True)
        ]
        fixed = np.sort(np.concatenate([t, *extra]).astype(np.int64))
        return fixed, f"inserted {expected - c} missing tick(s)"
    short_before = d[:-1] < 0.6 * ref[:-1]
    short_after = d[1:] < 0.6 * ref[1:]
    whole = np.abs(d[:-1] + d[1:] - ref[1:]) < 0.4 * ref[1:]
    spurious = np.flatnonzero((short_before | short_after) & whole) + 1
    if spurious.size:
        spurious = spurious[np.concatenate(([True], np.diff(spurious) > 1))]
    if len(spurious) != c - expected:
        return t, ""
    return np.delete(t, spurious), f"removed {c - expected} spurious tick(s)"


# ------------------------------------------------------------------ pipeline


def process_signals(
    frame_clock,
    line_clock,
    rotation_on,
    rotation_ticks,
    *,
    params: SignalParams = SignalParams(),
    direction=None,
    speed=None,
    n_lines: int | None = None,
    n_frames: int | None = None,
    sampling_rate: float | None = None,
    frame_rate: float | None = None,
    progress=None,
) -> AnglesResult:
    """Per-line and per-frame angles from the four analog signals.

    Parameters
    ----------
    frame_clock, line_clock, rotation_on, rotation_ticks : 1-D arrays
        The signals (volts), all the same length; may be memory-mapped.
    params : SignalParams
    direction, speed : 1-D arrays, optional
        The stimulus table (one row per rotation); ``direction`` is required
        for the full protocol. ``+1`` gives negative angles.
    n_lines, n_frames : int, optional
        Lines (``frames * rows``) and frames in the movie: the clock pulses
        are checked against them.
    sampling_rate : float, optional
        Samples per second, to report each rotation's measured speed.
    frame_rate : float, optional
        Frames per second: without ``sampling_rate``, it is estimated as
        ``frame_rate`` times the median frame-clock period in samples.
    progress : callable(done, total), optional
        Called after each of the 4 stages; returning ``False`` cancels.

    Returns
    -------
    AnglesResult

    Raises
    ------
    DerotationError
        Signals of different lengths, no ticks, no rotation, rotations that
        cannot be matched to the stimulus table, clock pulses that do not
        match the movie.
    """
    p = params.check()
    for name, rate in (("sampling_rate", sampling_rate), ("frame_rate", frame_rate)):
        if rate is not None and not 0 < rate < np.inf:
            raise DerotationError(
                f"{name} must be a finite number > 0 (per second); got {rate}"
            )
    chans = [frame_clock, line_clock, rotation_on, rotation_ticks]
    lengths = {len(c) for c in chans}
    if len(lengths) != 1:
        raise DerotationError(
            f"the four signals must have the same number of samples; got "
            f"{[len(c) for c in chans]}"
        )
    n = lengths.pop()
    notes: list[str] = []

    def step(done):
        if progress is not None and progress(done, 4) is False:
            raise Cancelled("angle computation cancelled")

    full = p.protocol == "full"
    direction, speed_arr = _stimulus(p, direction, speed)
    n_expected = len(direction)
    ticks = _detect_ticks(rotation_ticks, p, n)
    step(1)
    starts, ends, n_found = _rotation_blocks(rotation_on, ticks, p, n_expected, notes)
    step(2)
    per_block = _ticks_per_block(ticks, starts, ends, p, n_found, notes)
    per_block = _repair_blocks(per_block, p, notes)
    counts = np.array([len(t) for t in per_block], np.int64)
    deg = p.degrees_per_block
    increments = deg / counts
    ticks = np.concatenate(per_block)
    starts = np.minimum(starts, [t[0] for t in per_block])
    ends = np.maximum(ends, [t[-1] + 1 for t in per_block])
    knots = _knots(per_block, starts, ends, direction, increments, deg, n, full)
    step(3)
    lines, frames = clock_samples(
        line_clock, frame_clock, p, n_lines=n_lines, n_frames=n_frames, notes=notes
    )
    step(4)

    def sample(idx):
        a = np.interp(idx.astype(np.float64), *knots)
        a[np.abs(a) <= p.artifact_threshold] = 0.0
        return a

    rot = rotation_of(frames, starts, ends)
    if not sampling_rate and frame_rate and len(frames) > 1:
        sampling_rate = frame_rate * float(np.median(np.diff(frames)))
    measured = _measured_speed(per_block, increments, sampling_rate)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return AnglesResult(
        angles_per_line=sample(lines),
        angles_per_frame=sample(frames),
        line_clock=lines,
        frame_clock=frames,
        rotation_starts=starts,
        rotation_ends=ends,
        direction=direction,
        speed=speed_arr,
        ticks=ticks,
        ticks_per_rotation=counts,
        increments=increments,
        rotation_of_frame=rot,
        measured_speed=measured,
        n_samples=n,
        protocol=p.protocol,
        warnings=notes,
        knots=knots,
        artifact_threshold=p.artifact_threshold,
        sampling_rate=sampling_rate,
    )


# ------------------------------------------------------ the pipeline's steps


def _stimulus(p: SignalParams, direction, speed):
    """``(direction, speed)`` of every rotation, checked (NaN speed: unknown).

    Full protocol: the stimulus table's; incremental: one row per step in
    ``incremental_direction``.
    """
    full = p.protocol == "full"
    if full:
        if direction is None:
            raise DerotationError(
                "the full protocol needs the stimulus table (one row per "
                "rotation: speed, direction); none was given"
            )
        direction = np.asarray(direction).astype(np.int64).ravel()
        if not np.all(np.isin(direction, (-1, 1))):
            raise DerotationError(
                f"directions must be +1 or -1; found {sorted(set(direction.tolist()))}"
            )
        n_expected = len(direction)
    else:
        n_expected = int(round(p.rot_deg / p.step))
        direction = np.full(n_expected, p.incremental_direction, np.int64)
    speed_arr = np.full(n_expected, np.nan)
    if speed is not None:
        speed = np.asarray(speed, np.float64).ravel()
        if len(speed) == n_expected:
            speed_arr = speed
        elif full:
            raise DerotationError(
                f"the stimulus table has {len(direction)} directions but "
                f"{len(speed)} speeds"
            )
    return direction, speed_arr


def _detect_ticks(rotation_ticks, p: SignalParams, n: int) -> np.ndarray:
    """Step 1: the tick samples; an error if there are none."""
    ticks = find_ticks(rotation_ticks, p.tick_height, p.tick_distance)
    if len(ticks) == 0:
        top = max(
            float(np.max(rotation_ticks[a : a + CHUNK])) for a in range(0, n, CHUNK)
        )
        raise DerotationError(
            f"no rotation ticks: the tick signal never reaches the peak height "
            f"{p.tick_height} V (its maximum is {top:.3g} V)"
        )
    return ticks


def _expected_what(p: SignalParams, n_expected: int) -> str:
    if p.protocol == "full":
        return "rows in the stimulus table"
    return f"steps of {p.step:g} degrees in {p.rot_deg:g}"


def _rotation_blocks(rotation_on, ticks, p: SignalParams, n_expected: int, notes: list):
    """Steps 2-3: ``(starts, ends, n_found)`` of the rotations.

    From the rotation-on pulses (brief off periods merged); if their number
    is not ``n_expected``, recovered from the ticks (``n_found`` is then the
    number of pulses found, else ``None``).
    """
    starts, ends = pulse_edges(rotation_on, p.threshold_k)
    starts, ends = merge_brief_off(starts, ends, p.min_off_samples)
    if len(starts) == n_expected:
        return starts, ends, None
    what = _expected_what(p, n_expected)
    notes.append(
        f"the rotation-on signal has {len(starts)} rotations but there are "
        f"{n_expected} {what}; rotations recovered from the ticks"
    )
    if len(ticks) < n_expected:
        raise DerotationError(
            f"found {len(starts)} rotations and {len(ticks)} ticks; "
            f"expected {n_expected} rotations ({what})"
        )
    n_found = len(starts)
    starts, ends = blocks_from_ticks(ticks, n_expected)
    return starts, ends, n_found


def _ticks_per_block(ticks, starts, ends, p: SignalParams, n_found, notes):
    """Step 4a: the ticks of every rotation; ticks outside all are dropped.

    A tick belongs to rotation ``i`` if ``starts[i] <= tick < ends[i]`` (a
    rotation stops before its first low sample).
    """
    n_expected = len(starts)
    block = np.searchsorted(starts, ticks, side="right") - 1
    inside = (block >= 0) & (ticks < ends[np.maximum(block, 0)])
    if (~inside).sum():
        notes.append(f"dropped {int((~inside).sum())} ticks outside rotations")
    ticks, block = ticks[inside], block[inside]
    counts = np.bincount(block, minlength=n_expected)
    expected_ticks = int(round(p.degrees_per_block / p.increment))
    if n_found is not None and np.any(
        np.abs(counts - expected_ticks) > 0.5 * expected_ticks
    ):
        what = _expected_what(p, n_expected)
        raise DerotationError(
            f"found {n_found} rotations in the rotation-on signal but there "
            f"are {n_expected} {what}; splitting the ticks into {n_expected} "
            f"rotations gives {counts.tolist()} ticks, expected about "
            f"{expected_ticks} each"
        )
    if np.any(counts == 0):
        i = int(np.flatnonzero(counts == 0)[0])
        raise DerotationError(
            f"rotation {i} (samples {starts[i]}-{ends[i]}) has no ticks"
        )
    bounds = np.concatenate(([0], np.cumsum(counts)))
    return [ticks[bounds[i] : bounds[i + 1]] for i in range(n_expected)]


def _repair_blocks(per_block, p: SignalParams, notes):
    """Step 4b: repair each rotation's ticks where unambiguous; note the rest."""
    deg = p.degrees_per_block
    expected_ticks = int(round(deg / p.increment))
    per_block = list(per_block)
    for i, t in enumerate(per_block):
        if len(t) == expected_ticks:
            continue
        note = ""
        if p.repair_ticks:
            per_block[i], note = repair_ticks(t, expected_ticks)
        if not note:
            note = f"increment adjusted to {deg / len(t):.5g} degrees"
        notes.append(f"rotation {i}: {len(t)} ticks, expected {expected_ticks}; {note}")
        if abs(len(per_block[i]) - expected_ticks) > 0.1 * expected_ticks:
            notes.append(
                f"rotation {i}: tick count {len(per_block[i])} is more "
                f"than 10% off the expected {expected_ticks}"
            )
    return per_block


def clock_samples(
    line_clock,
    frame_clock,
    p: SignalParams = SignalParams(),
    *,
    n_lines: int | None = None,
    n_frames: int | None = None,
    notes: list | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Step 7: ``(lines, frames)``, the sample of every line and frame.

    The rising (``line_use_start``/``frame_use_start``) or falling edge of
    every clock pulse. The line count must be ``n_lines`` (extra pulses at
    the end are dropped with ``line_count_mismatch="trim"``); if the frame
    pulses do not match ``n_frames``, frame times are taken from the line
    clock. Notes go to ``notes``. Used by every angle source.
    """
    notes = [] if notes is None else notes
    lines = _clock(line_clock, p.threshold_k, p.line_use_start)
    if n_lines is not None and len(lines) != n_lines:
        if len(lines) > n_lines and p.line_count_mismatch == "trim":
            notes.append(
                f"the line clock has {len(lines)} pulses; the movie "
                f"has {n_lines} lines: the first {n_lines} are used"
            )
            lines = lines[:n_lines]
        else:
            raise DerotationError(
                f"the line clock has {len(lines)} pulses but the movie has "
                f"{n_lines} lines (frames x rows)"
            )
    frames = _clock(frame_clock, p.threshold_k, p.frame_use_start)
    if n_frames is not None and len(frames) != n_frames:
        rows = len(lines) // n_frames if n_frames else 0
        if rows < 1:
            raise DerotationError(
                f"the frame clock has {len(frames)} pulses and the line clock "
                f"{len(lines)}; the movie has {n_frames} frames"
            )
        notes.append(
            f"the frame clock has {len(frames)} pulses but the movie "
            f"has {n_frames} frames; frame times taken from the line "
            f"clock"
        )
        frames = lines[::rows] if p.frame_use_start else lines[rows - 1 :: rows]
    return lines, frames


def rotation_of(frames, starts, ends) -> np.ndarray:
    """Index of the rotation ``[start, end)`` each frame falls in, -1 if none."""
    rot = np.searchsorted(starts, frames, side="right") - 1
    if not len(starts):
        return rot
    rot[(rot < 0) | (frames >= ends[np.maximum(rot, 0)])] = -1
    return rot


def _measured_speed(per_block, increments, sampling_rate):
    """Degrees per second of every rotation from its ticks (NaN if unknown)."""
    counts = np.array([len(t) for t in per_block], np.int64)
    if not sampling_rate:
        return np.full(len(per_block), np.nan)
    duration = np.array([t[-1] - t[0] for t in per_block], np.float64)
    return np.where(
        counts > 1,
        increments * (counts - 1) / np.maximum(duration, 1) * sampling_rate,
        np.nan,
    )


def _clock(signal, k, use_start):
    starts, ends = pulse_edges(signal, k)
    if not len(starts):
        raise DerotationError("a clock signal has no pulses")
    if use_start:
        return starts
    # a pulse still high when the recording stops has no end: not counted
    return ends[ends < len(signal)] if len(ends) else ends


def _knots(per_block, starts, ends, direction, increments, deg, n, full):
    """Knots ``(samples, degrees)`` of the piecewise-linear signed angle."""
    kt, ka = [np.array([0.0])], [np.array([0.0])]
    offset = 0.0
    prev_end = 0.0
    for i, t in enumerate(per_block):
        sign = -float(direction[i])
        first = float(t[0])
        lead = float(t[1] - t[0]) if len(t) > 1 else 1.0
        zero = min(max(first - lead, float(starts[i]), prev_end + 0.25), first - 0.5)
        k = np.arange(1, len(t) + 1)
        motor = offset + k * increments[i]
        last = float(ends[i]) - 1.0
        bt = [[zero], t.astype(np.float64)]
        ba = [[offset], motor]
        if last > t[-1]:
            bt.append([last])
            ba.append([offset + deg])
        if full:
            bt.append([max(last, float(t[-1])) + 0.5])
            ba.append([0.0])
            prev_end = max(last, float(t[-1])) + 0.5
        else:
            offset += deg
            prev_end = max(last, float(t[-1]))
        kt += [np.asarray(x, np.float64) for x in bt]
        ka += [sign * np.asarray(x, np.float64) for x in ba]
    if not full:
        final = 0.0 if offset % 360 == 0 else -float(direction[-1]) * offset
        kt.append(np.array([prev_end + 0.5]))
        ka.append(np.array([final]))
    kt.append(np.array([max(float(n), prev_end + 1.0)]))
    ka.append(ka[-1][-1:])
    kt, ka = np.concatenate(kt), np.concatenate(ka)
    bad = np.flatnonzero(np.diff(kt) <= 0)
    if bad.size:
        raise DerotationError(
            f"rotations overlap near sample {int(kt[bad[0]])}: check the "
            f"rotation-on signal and inter_rotation_interval_min_len"
        )
    return kt, ka
