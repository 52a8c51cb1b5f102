"""Angles from analog signals: napari-derotation vs the reference.

Ten minutes (``--minutes``) of four-channel signals at 50 kHz (``--rate``)
from the recorder: full rotations at 100-200 deg/s in both directions, 2 s
pauses, 256-line frames at 6.74 Hz, 0.05 V noise, one dropped tick per
rotation. Times :func:`napari_derotation.acquisition.signals.process_signals` (and its
peak memory, by ``tracemalloc``, against the size of the signal array), and
the reference's ``FullPipeline.process_analog_signals`` on the same signals
in the same run, driven on a stub object. Prints a table; exits 1 if ours
takes more than 10 s or more than 3x the signal array.

Then the other angle sources on the same recording (``rotation_source``
``encoder``: 8000-count quadrature A/B channels; ``position``: an analog
position channel at 40 degrees/V, both with 5 mV noise): their times against
the tick path's (the same line and frame clocks are decoded by each), with
the ratio; exits 1 if either takes longer than the tick path.

    python benchmarks/bench_signals.py [--minutes 10] [--skip-reference]
                                       [--reference-memory] [--skip-sources]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import logging
import sys
import time
import tracemalloc
import warnings

import numpy as np

from napari_derotation.acquisition.encoder import encoder_angles
from napari_derotation.acquisition.linetimes import line_clock_times
from napari_derotation.acquisition.position import position_angles
from napari_derotation.acquisition.signals import SignalParams, process_signals
from napari_derotation.simulate.recorder import simulate_recording

LIMIT_SECONDS = 10.0
LIMIT_MEMORY = 3.0


def make_recording(minutes: float, rate: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    lead, tail, pause = 2.0, 2.0, 2.0
    speeds, t = [], lead + tail
    while True:
        v = float(rng.choice([100.0, 150.0, 200.0]))
        if t + 360.0 / v + pause > minutes * 60:
            break
        speeds.append(v)
        t += 360.0 / v + pause
    directions = rng.choice([-1, 1], len(speeds))
    n_frames = int((minutes * 60 - lead) * 6.74)
    return simulate_recording(
        speeds=speeds,
        directions=directions,
        rows=256,
        frame_rate=6.74,
        sampling_rate=rate,
        pause=pause,
        lead=lead,
        tail=tail,
        n_frames=n_frames,
        noise=0.05,
        dropped_ticks=1,
        seed=seed,
    )


def ours(rec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return process_signals(
            *rec.signals,
            params=SignalParams(),
            direction=rec.direction,
            speed=rec.speed,
            n_lines=rec.n_frames * rec.rows,
            n_frames=rec.n_frames,
        )


def source_angles(rec, kind, extra):
    """The encoder or position source's work on in-memory signals."""
    times = line_clock_times(
        rec.signals[1],
        rec.signals[0],
        SignalParams(),
        n_lines=rec.n_frames * rec.rows,
        n_frames=rec.n_frames,
        sampling_rate=rec.sampling_rate,
    )
    idx = np.concatenate((times.line_clock, times.frame_clock))
    if kind == "encoder":
        out = encoder_angles(*extra, idx, counts_per_turn=8000)[0]
    else:
        out = position_angles(extra, idx, degrees_per_volt=40.0)[0]
    return out[: len(times.line_clock)]


def sources_table(rec, t_ticks) -> bool:
    """Time encoder and position against the tick path; True if both are
    at most as slow."""
    print("\nangle sources on the same recording (vs the tick path):", flush=True)
    rows, ok = [], True
    for kind in ("encoder", "position"):
        extra = (
            rec.encoder(8000, noise=0.005)
            if kind == "encoder"
            else rec.position(40.0, noise=0.005)
        )
        _, t1, _ = timed(source_angles, rec, kind, extra)
        res, t2, _ = timed(source_angles, rec, kind, extra)
        t = min(t1, t2)
        err = np.abs((res - rec.angles_per_line + 180) % 360 - 180)
        moving = np.zeros(len(err), bool)
        for a, b in rec.motion:
            lo, hi = np.searchsorted(rec.line_starts, (a, b + 1))
            moving[lo:hi] = True
        rows.append((kind, t, t / t_ticks, float(np.mean(err[moving] <= 0.1))))
        ok &= t <= t_ticks
        del extra
    print(
        f"| {'source':10} | {'time (s)':>8} | {'/ ticks':>8} | "
        f"{'lines <= 0.1 deg':>16} |"
    )
    print("|" + "-" * 55 + "|")
    print(f"| {'ticks':10} | {t_ticks:8.2f} | {1.0:8.2f} | {'':>16} |")
    for kind, t, ratio, frac in rows:
        print(f"| {kind:10} | {t:8.2f} | {ratio:8.2f} | {100 * frac:15.2f}% |")
    print(f"sources at most as slow as the tick path: {'met' if ok else 'NOT met'}")
    return ok


def reference(rec):
    from derotation.analysis.full_derotation_pipeline import FullPipeline

    p = FullPipeline.__new__(FullPipeline)
    p.config = {
        "analog_signals_processing": {
            "find_rotation_ticks_peaks": {"height": 4, "distance": 20},
            "angle_interpolation_artifact_threshold": 0.15,
        }
    }
    p.frame_clock, p.line_clock, p.full_rotation, p.rotation_ticks = rec.signals
    p.total_clock_time = rec.signals.shape[1]
    p.direction, p.speed = rec.direction, rec.speed
    p.number_of_rotations = len(rec.direction)
    p.std_coef, p.inter_rotation_interval_min_len = 0, 1000
    p.rotation_increment, p.rot_deg = 0.2, 360
    p.line_use_start = p.frame_use_start = True
    p.num_total_lines, p.num_frames = rec.n_frames * rec.rows, rec.n_frames
    p.debugging_plots = False
    logging.disable(logging.CRITICAL)
    with contextlib.redirect_stderr(io.StringIO()):
        p.process_analog_signals()
    return p


def timed(fn, *args, memory=False):
    gc.collect()
    if memory:
        tracemalloc.start()
    t0 = time.perf_counter()
    out = fn(*args)
    dt = time.perf_counter() - t0
    peak = None
    if memory:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return out, dt, peak


def errors(angles, rec):
    n = min(len(angles), len(rec.angles_per_line))
    d = (np.asarray(angles[:n]) - rec.angles_per_line[:n] + 180) % 360 - 180
    return float(np.abs(d).max()), float(np.abs(d).mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=50_000.0)
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument(
        "--skip-sources",
        action="store_true",
        help="do not time the encoder and position sources",
    )
    ap.add_argument(
        "--reference-memory",
        action="store_true",
        help="also measure the reference's peak memory (slow: "
        "tracemalloc on its Python loops)",
    )
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    rec = make_recording(args.minutes, args.rate)
    n = rec.signals.shape[1]
    mb = rec.signals.nbytes / 2**20
    print(
        f"signals: 4 x {n:,} samples ({n / args.rate / 60:.1f} min at "
        f"{args.rate / 1000:g} kHz, float64, {mb:,.0f} MB); "
        f"{len(rec.direction)} rotations, {rec.n_frames:,} frames, "
        f"{rec.n_frames * rec.rows:,} lines; made in "
        f"{time.perf_counter() - t0:.1f} s",
        flush=True,
    )

    res, t_ours, _ = timed(ours, rec)
    _, t_ours2, _ = timed(ours, rec)
    t_ours = min(t_ours, t_ours2)
    _, _, peak = timed(ours, rec, memory=True)
    e_ours = errors(res.angles_per_line, rec)

    rows = [
        ("time (s)", f"{t_ours:.2f}"),
        ("peak memory (MB)", f"{peak / 2**20:.0f}"),
        ("peak / signal array", f"{peak / rec.signals.nbytes:.3f}"),
        ("max |error| (deg)", f"{e_ours[0]:.3f}"),
        ("mean |error| (deg)", f"{e_ours[1]:.5f}"),
    ]
    ref_cols = None
    if not args.skip_reference:
        print("running the reference (slow)...", flush=True)
        p, t_ref, _ = timed(reference, rec)
        e_ref = errors(p.rot_deg_line, rec)
        del p
        ref_peak = None
        if args.reference_memory:
            _, _, ref_peak = timed(reference, rec, memory=True)
        mem = (
            (
                f"{ref_peak / 2**20:.0f}",
                f"{ref_peak / rec.signals.nbytes:.3f}",
                f"{ref_peak / peak:.0f}x less",
            )
            if ref_peak
            else ("-", "-", "")
        )
        ref_cols = [
            f"{t_ref:.2f}",
            mem[0],
            mem[1],
            f"{e_ref[0]:.3f}",
            f"{e_ref[1]:.5f}",
        ]
        ratio = [f"{t_ref / t_ours:.1f}x faster", mem[2], "", "", ""]

    print()
    head = f"| {'':22} | {'napari-derotation':>17} |"
    if ref_cols:
        head += f" {'reference 0.1.6':>15} | {'ratio':>14} |"
    print(head)
    print("|" + "-" * (len(head) - 2) + "|")
    for i, (name, value) in enumerate(rows):
        line = f"| {name:22} | {value:>17} |"
        if ref_cols:
            line += f" {ref_cols[i]:>15} | {ratio[i]:>14} |"
        print(line)
    ok = t_ours <= LIMIT_SECONDS and peak <= LIMIT_MEMORY * rec.signals.nbytes
    print(
        f"\nlimits: <= {LIMIT_SECONDS:g} s and <= {LIMIT_MEMORY:g}x the signal "
        f"array: {'met' if ok else 'NOT met'}"
    )
    if not args.skip_sources:
        ok &= sources_table(rec, t_ours)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
