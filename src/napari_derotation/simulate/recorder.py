"""Simulated analog recordings of a rotation experiment.

:func:`simulate_recording` plays a motor profile (rotations with speeds,
directions and pauses) against a line-scanning acquisition and returns what
the acquisition board would have recorded beside the movie: the frame clock,
the line clock, the rotation-on signal and the motor's tick pulses, in the
reference's ``.npy`` row order, plus the stimulus table and the *true* angle
of every scanned line. It is the ground truth for testing
:mod:`napari_derotation.acquisition.signals` and :mod:`napari_derotation.pipeline`.

Conventions (the same as the rest of the package; see ``docs/signals.md``):
the true per-line angle is ``-direction * motor_angle``, in the sign
:func:`napari_derotation.derotate` expects; a line's angle is the motor angle
at the sample where its line-clock pulse starts (or ends, see
:meth:`Recording.angle_at`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DerotationError

__all__ = ["Recording", "simulate_recording", "ROW_ORDER", "BIN_CHANNELS"]

#: Rows of the analog ``.npy`` array (the reference's order).
ROW_ORDER = ("frame_clock", "line_clock", "rotation_on", "rotation_ticks")

#: The reference's default ``.bin`` channel names, in file order.
BIN_CHANNELS = (
    "camera",
    "scanimage_frameclock",
    "scanimage_lineclock",
    "photodiode2",
    "PI_rotON",
    "PI_rotticks",
)
_BIN_ROLE = {
    "scanimage_frameclock": 0,
    "scanimage_lineclock": 1,
    "PI_rotON": 2,
    "PI_rotticks": 3,
}


@dataclass
class Recording:
    """A simulated recording (see :func:`simulate_recording`).

    Attributes
    ----------
    signals : ndarray (4, samples), float64, volts
        Frame clock, line clock, rotation on, rotation ticks.
    speed, direction : ndarray (rotations,)
        The stimulus table, one row per rotation (or per step).
    angles_per_line, angles_per_frame : ndarray
        True angle (degrees, :func:`~napari_derotation.derotate` sign) at the
        start of every line's and frame's clock pulse.
    line_starts, line_ends, frame_starts, frame_ends : ndarray of int
        Sample index where each pulse goes high, and the first sample after it
        is low again.
    tick_samples : ndarray of int
        Samples of the tick pulses actually recorded (after dropping).
    motion : ndarray (rotations, 2) of int
        First and last sample of every movement.
    """

    signals: np.ndarray
    speed: np.ndarray
    direction: np.ndarray
    angles_per_line: np.ndarray
    angles_per_frame: np.ndarray
    line_starts: np.ndarray
    line_ends: np.ndarray
    frame_starts: np.ndarray
    frame_ends: np.ndarray
    tick_samples: np.ndarray
    motion: np.ndarray
    sampling_rate: float
    rows: int
    n_frames: int
    params: dict = field(default_factory=dict)
    _knots: tuple = field(default=(), repr=False)
    _continuous: tuple = field(default=(), repr=False)

    def angle_at(self, samples) -> np.ndarray:
        """True signed angle (degrees) at the given sample indices."""
        t, a = self._knots
        return np.interp(np.asarray(samples, np.float64), t, a)

    def continuous_angle_at(self, samples) -> np.ndarray:
        """True signed angle never reset after a whole turn (what an encoder
        or a motor controller's log follows); equal to :meth:`angle_at`
        modulo 360 degrees."""
        t, a = self._continuous
        return np.interp(np.asarray(samples, np.float64), t, a)

    def encoder(
        self,
        counts_per_turn: int = 8000,
        *,
        direction: int = 1,
        volts: float = 5.0,
        noise: float = 0.0,
        glitches: int = 0,
        seed: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Quadrature channels ``(A, B)`` (volts) of an encoder on the motor.

        The count is ``floor(direction * angle * counts_per_turn / 360)`` of
        the continuous angle; A and B step through the Gray sequence
        ``00, 10, 11, 01`` as it increases (x4 decoding gives the count
        back). ``glitches`` samples where both channels change at once are
        placed at random inside movements.
        """
        n = self.signals.shape[1]
        rng = np.random.default_rng([seed, 1])
        res = 360.0 / counts_per_turn
        angle = self.continuous_angle_at(np.arange(n))
        phase = np.floor(direction * angle / res).astype(np.int64) % 4
        a = ((phase == 1) | (phase == 2)) * float(volts)
        b = (phase >= 2) * float(volts)
        for _ in range(glitches):
            lo, hi = self.motion[rng.integers(len(self.motion))]
            i = int(rng.integers(lo + 10, hi - 10))
            a[i] = volts - a[i]
            b[i] = volts - b[i]
        if noise:
            a += rng.normal(0.0, noise, n)
            b += rng.normal(0.0, noise, n)
        return a, b

    def position(
        self,
        degrees_per_volt: float = 36.0,
        *,
        offset_volts: float = 0.0,
        noise: float = 0.0,
        seed: int = 0,
    ) -> np.ndarray:
        """An analog position channel: ``offset_volts + angle /
        degrees_per_volt`` of the true angle (back to 0 after a whole turn,
        as a sensor that wraps), plus Gaussian ``noise`` volts."""
        n = self.signals.shape[1]
        volts = offset_volts + self.angle_at(np.arange(n)) / degrees_per_volt
        if noise:
            volts += np.random.default_rng([seed, 2]).normal(0.0, noise, n)
        return volts

    def write_npy(self, path, extra=()) -> Path:
        """Write :attr:`signals` as the reference's ``(4, samples)`` ``.npy``;
        ``extra`` channels (1-D volts) become rows 4, 5, ..."""
        from ..io import atomic_path

        path = Path(path)
        data = (
            self.signals
            if not len(extra)
            else np.vstack(
                [self.signals, *[np.asarray(e, np.float64)[None] for e in extra]]
            )
        )
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, data)
        return path

    def write_bin(self, path, channel_names=BIN_CHANNELS, extra=None) -> Path:
        """Write interleaved int16 in ``channel_names`` order (volts -10..10).

        Channels named as in :data:`BIN_CHANNELS` carry the matching signal,
        channels named in ``extra`` (name -> 1-D volts) that one; any other
        channel is written as zeros.
        """
        from ..io import atomic_path

        extra = dict(extra or {})
        n = self.signals.shape[1]
        data = np.zeros((n, len(channel_names)), np.int16)
        for i, name in enumerate(channel_names):
            volts = extra.get(name)
            if volts is None and name in _BIN_ROLE:
                volts = self.signals[_BIN_ROLE[name]]
            if volts is not None:
                counts = np.round((np.asarray(volts) + 10.0) / 20.0 * 2**16 - 2**15)
                data[:, i] = np.clip(counts, -(2**15), 2**15 - 1)
        path = Path(path)
        with atomic_path(path) as tmp:
            data.tofile(tmp)
        return path

    def log_table(
        self,
        rate: float = 1000.0,
        *,
        offset_s: float = 0.0,
        jitter_s: float = 0.0,
        seed: int = 0,
    ):
        """``(time_s, angle_deg)`` a motor controller would log.

        ``rate`` rows per second over the whole recording of the continuous
        angle; a row's time is the analog file's time plus ``offset_s`` (so
        ``log_offset_s: offset_s`` aligns them), with uniform ``jitter_s``.
        """
        fs = self.sampling_rate
        duration = self.signals.shape[1] / fs
        t = np.arange(0.0, duration, 1.0 / rate)
        if jitter_s:
            rng = np.random.default_rng([seed, 3])
            t = np.sort(t + rng.uniform(-jitter_s, jitter_s, len(t)))
        return t + offset_s, self.continuous_angle_at(t * fs)

    def write_log(
        self,
        path,
        rate: float = 1000.0,
        *,
        offset_s: float = 0.0,
        time_column: str = "time_s",
        angle_column: str = "angle_deg",
        delimiter: str = ",",
        jitter_s: float = 0.0,
    ) -> Path:
        """Write :meth:`log_table` as CSV (or TSV with ``delimiter="\\t"``)."""
        from ..io import atomic_path

        t, a = self.log_table(rate, offset_s=offset_s, jitter_s=jitter_s)
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.writer(fh, delimiter=delimiter)
            w.writerow([time_column, angle_column])
            w.writerows(
                zip(np.round(t, 7).tolist(), np.round(a, 6).tolist(), strict=True)
            )
        return path

    def write_frame_angles(self, path) -> Path:
        """Write :attr:`angles_per_frame` (one true angle per frame) ``.npy``."""
        from ..io import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, self.angles_per_frame)
        return path

    def write_stimulus(self, path) -> Path:
        """Write the stimulus table as CSV ``speed,direction``."""
        from ..io import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["speed", "direction"])
            for s, d in zip(self.speed, self.direction, strict=True):
                w.writerow([_num(s), int(d)])
        return path

    def write_config(
        self,
        path,
        *,
        movie="movie.tif",
        signals="analog_signals.npy",
        stimulus="stimulus_randperm.csv",
    ) -> Path:
        """Write a ``run``/``batch``/``angles`` config (YAML) for this
        recording saved as ``signals`` (:meth:`write_npy`) and ``stimulus``
        (:meth:`write_stimulus`) beside ``movie``, paths relative to the
        config's folder. The full protocol only."""
        from ..io import atomic_path

        if self.params.get("protocol") != "full":
            raise DerotationError(
                "write_config writes the full protocol's "
                "config; got the incremental protocol"
            )
        text = (
            "# A simulated dataset (napari-derotation simulate --signals): the\n"
            "# movie, the analog signals recorded beside it and the stimulus\n"
            "# table. `napari-derotation run` takes this file as it is.\n"
            "paths_read:\n"
            f"  path_to_tif: {movie}\n"
            f"  path_to_aux: {signals}\n"
            f"  path_to_randperm: {stimulus}\n"
            "paths_write:\n"
            "  derotated_tiff_folder: derotation\n"
            "  saving_name: derotated\n"
            f"rotation_increment: {_num(self.params['increment'])}\n"
            f"rot_deg: {_num(self.params['rot_deg'])}\n"
            f"frame_rate: {_num(self.params['frame_rate'])}\n"
            f"sampling_rate: {_num(self.sampling_rate)}\n"
        )
        path = Path(path)
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text)
        return path


def _num(x):
    x = float(x)
    return int(x) if x.is_integer() else x


def _schedule(protocol, speeds, directions, rot_deg, step, pause, lead):
    """(start time s, degrees, speed, direction, offset degrees) per movement."""
    moves = []
    t = lead
    if protocol == "full":
        for s, d in zip(speeds, directions, strict=True):
            moves.append((t, float(rot_deg), float(s), int(d), 0.0))
            t += rot_deg / s + pause
    elif protocol == "incremental":
        n = int(round(rot_deg / step))
        for k in range(n):
            moves.append(
                (t, float(step), float(speeds[0]), int(directions[0]), k * step)
            )
            t += step / speeds[0] + pause
    else:
        raise DerotationError(
            f"protocol must be 'full' or 'incremental'; got {protocol!r}"
        )
    return moves, t - pause


def simulate_recording(
    *,
    protocol: str = "full",
    speeds=(200.0, 200.0),
    directions=(-1, 1),
    rot_deg: float = 360.0,
    increment: float = 0.2,
    step: float = 10.0,
    sampling_rate: float = 50_000.0,
    rows: int = 32,
    frame_rate: float = 30.0,
    n_frames: int | None = None,
    pause: float = 0.5,
    lead: float = 0.3,
    tail: float = 0.3,
    on_lead: float = 0.01,
    on_lag: float = 0.01,
    tick_volts: float = 5.0,
    clock_volts: float = 5.0,
    line_duty: float = 0.5,
    noise: float = 0.0,
    dropped_ticks: int = 0,
    extra_ticks: int = 0,
    seed: int = 0,
) -> Recording:
    """Simulate the analog signals of a rotation experiment.

    Parameters
    ----------
    protocol : {"full", "incremental"}
        ``"full"``: one whole turn of ``rot_deg`` per entry of ``speeds`` /
        ``directions``, separated by ``pause`` seconds. ``"incremental"``:
        ``rot_deg / step`` steps of ``step`` degrees at ``speeds[0]`` in
        direction ``directions[0]``, the angle accumulating across steps.
    speeds, directions : sequences
        Degrees per second and +-1 per rotation (the stimulus table).
        ``direction = +1`` gives negative per-line angles (see
        ``docs/signals.md``).
    rot_deg, increment, step : float
        Degrees per rotation, degrees per motor tick, degrees per step.
    sampling_rate : float
        Samples per second of the analog recording.
    rows, frame_rate, n_frames : scanning
        Lines per frame and frames per second (a line lasts
        ``1 / (frame_rate * rows)``). ``n_frames`` defaults to enough frames
        to cover the whole motor schedule plus ``lead`` and ``tail``.
    pause, lead, tail : float
        Seconds between movements, before the first and after the last.
    on_lead, on_lag : float
        Seconds the rotation-on signal rises before a movement starts and
        falls after it ends.
    tick_volts, clock_volts : float
        Pulse amplitudes.
    line_duty : float
        Fraction of a line period the line clock is high (the frame clock is
        high during a frame's first line).
    noise : float
        Standard deviation (volts) of Gaussian noise added to every channel.
    dropped_ticks, extra_ticks : int
        Ticks removed from inside movements (never a movement's first or last)
        and spurious tick pulses added inside movements, chosen at random.
    seed : int
        Random seed (noise, dropped and extra ticks).

    Returns
    -------
    Recording
    """
    rng = np.random.default_rng(seed)
    speeds, directions = _check_stimulus(
        protocol, speeds, directions, increment, rot_deg, step
    )
    fs = float(sampling_rate)
    moves, t_end = _schedule(protocol, speeds, directions, rot_deg, step, pause, lead)
    line_period = 1.0 / (frame_rate * rows)
    if n_frames is None:
        n_frames = int(np.ceil((t_end + tail) * frame_rate))
    n_lines = n_frames * rows
    t_scan = lead * 0.5
    duration = max(t_end + tail, t_scan + (n_lines + 2) * line_period)
    n = int(np.ceil(duration * fs)) + 4
    signals = np.zeros((4, n))
    motor = _motor(
        signals,
        moves,
        protocol,
        fs,
        increment,
        rng,
        dropped_ticks=dropped_ticks,
        extra_ticks=extra_ticks,
        on_lead=on_lead,
        on_lag=on_lag,
        tick_volts=tick_volts,
        clock_volts=clock_volts,
    )
    clocks = _scan_clocks(
        signals, t_scan, line_period, n_lines, rows, fs, line_duty, clock_volts
    )
    if noise:
        signals += rng.normal(0.0, noise, signals.shape)

    knots = motor["knots"]
    line_starts, frame_starts = clocks["line_starts"], clocks["frame_starts"]
    angles_line = np.interp(line_starts.astype(np.float64), *knots)
    angles_frame = np.interp(frame_starts.astype(np.float64), *knots)
    if protocol == "incremental":
        stim_speed = np.full(len(moves), speeds[0])
        stim_dir = np.full(len(moves), directions[0])
    else:
        stim_speed, stim_dir = speeds, directions
    params = {
        "protocol": protocol,
        "rot_deg": rot_deg,
        "increment": increment,
        "step": step,
        "sampling_rate": fs,
        "rows": rows,
        "frame_rate": frame_rate,
        "n_frames": n_frames,
        "pause": pause,
        "noise": noise,
        "dropped_ticks": dropped_ticks,
        "extra_ticks": extra_ticks,
        "seed": seed,
    }
    return Recording(
        signals=signals,
        speed=stim_speed,
        direction=stim_dir,
        angles_per_line=angles_line,
        angles_per_frame=angles_frame,
        line_starts=line_starts,
        line_ends=clocks["line_ends"],
        frame_starts=frame_starts,
        frame_ends=clocks["frame_ends"],
        tick_samples=motor["ticks"],
        motion=motor["motion"],
        sampling_rate=fs,
        rows=rows,
        n_frames=n_frames,
        params=params,
        _knots=knots,
        _continuous=motor["continuous"],
    )


def _check_stimulus(protocol, speeds, directions, increment, rot_deg, step):
    """The stimulus as arrays, checked."""
    speeds = np.atleast_1d(np.asarray(speeds, np.float64))
    directions = np.atleast_1d(np.asarray(directions, np.int64))
    if protocol == "full" and len(speeds) != len(directions):
        raise DerotationError(
            f"speeds and directions must have the same length; got "
            f"{len(speeds)} and {len(directions)}"
        )
    if np.any(speeds <= 0) or not np.all(np.isin(directions, (-1, 1))):
        raise DerotationError("speeds must be > 0 and directions +1 or -1")
    if increment <= 0 or rot_deg <= 0 or step <= 0:
        raise DerotationError("increment, rot_deg and step must be > 0")
    return speeds, directions


def _motor(
    signals,
    moves,
    protocol,
    fs,
    increment,
    rng,
    *,
    dropped_ticks,
    extra_ticks,
    on_lead,
    on_lag,
    tick_volts,
    clock_volts,
) -> dict:
    """Play the movements: the rotation-on and tick channels of ``signals``.

    Returns the knots (samples, degrees) of the true signed angle (back to 0
    after a whole turn in the full protocol, as the ticks' reading), of the
    continuous angle (what an encoder or a motor log follows: never reset),
    the tick samples and every movement's first and last sample.
    """
    n = signals.shape[1]
    kt, ka, ticks, motion = [0.0], [0.0], [], []
    ct, ca, total = [0.0], [0.0], 0.0
    for t0, deg, v, d, offset in moves:
        s0, s1 = t0 * fs, (t0 + deg / v) * fs
        kt += [s0, s1]
        ka += [-d * offset, -d * (offset + deg)]
        ct += [s0, s1]
        ca += [total, total - d * deg]
        total -= d * deg
        ticks.append(
            _move_ticks(s0, s1, deg, v, fs, increment, rng, dropped_ticks, extra_ticks)
        )
        motion.append((int(np.floor(s0)), int(np.ceil(s1))))
        a_on, a_off = (int(np.floor(s0 - on_lead * fs)), int(np.ceil(s1 + on_lag * fs)))
        signals[2, max(a_on, 0) : a_off] = clock_volts
        if protocol == "full":  # back to 0 after a whole turn
            kt.append(s1 + 1e-6)
            ka.append(0.0 if (deg % 360 == 0) else -d * deg)
    kt.append(float(n))
    ka.append(ka[-1])
    ct.append(float(n))
    ca.append(total)
    ticks = np.concatenate(ticks) if ticks else np.zeros(0, np.int64)
    for off, frac in ((-1, 0.5), (0, 1.0), (1, 0.5)):
        idx = ticks + off
        signals[3, idx[(idx >= 0) & (idx < n)]] = tick_volts * frac
    return {
        "knots": (np.asarray(kt), np.asarray(ka)),
        "continuous": (np.asarray(ct), np.asarray(ca)),
        "ticks": ticks,
        "motion": np.asarray(motion, np.int64),
    }


def _move_ticks(s0, s1, deg, v, fs, increment, rng, dropped, extra):
    """Tick samples of one movement, with ``dropped`` and ``extra`` ticks."""
    n_ticks = int(round(deg / increment))
    k = np.arange(1, n_ticks + 1)
    tk = np.ceil(s0 + k * increment / v * fs).astype(np.int64)
    keep = np.ones(len(tk), bool)
    if dropped and len(tk) > 2:
        keep[
            1 + rng.choice(len(tk) - 2, size=min(dropped, len(tk) - 2), replace=False)
        ] = False
    tk = tk[keep]
    if extra:
        lo, hi = int(s0) + 5, int(s1) - 5
        tk = np.union1d(tk, rng.integers(lo, hi, extra))
    return tk


def _scan_clocks(
    signals, t_scan, line_period, n_lines, rows, fs, line_duty, clock_volts
) -> dict:
    """The line and frame clocks of ``signals``; their pulse starts and ends."""
    t_lines = t_scan + np.arange(n_lines) * line_period
    line_starts = np.ceil(t_lines * fs).astype(np.int64)
    width = max(1, int(round(line_duty * line_period * fs)))
    line_ends = line_starts + width
    frame_starts = line_starts[::rows]
    frame_ends = frame_starts + max(1, int(round(line_period * fs)))
    _pulses(signals[1], line_starts, line_ends, clock_volts)
    _pulses(signals[0], frame_starts, frame_ends, clock_volts)
    return {
        "line_starts": line_starts,
        "line_ends": line_ends,
        "frame_starts": frame_starts,
        "frame_ends": frame_ends,
    }


def _pulses(channel, starts, ends, volts):
    """Set ``channel[starts[i]:ends[i]] = volts`` for every pulse (vectorised)."""
    edges = np.zeros(len(channel) + 1, np.int32)
    np.add.at(edges, starts, 1)
    np.add.at(edges, ends, -1)
    channel[np.cumsum(edges[:-1]) > 0] = volts
