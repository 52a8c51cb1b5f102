"""``napari-derotation simulate -o DIR``: a synthetic rotating movie."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..checks import file_stem
from ..errors import DerotationError
from ..io import OutputSet, save_angles, write_json, write_tiff
from ..io.atomic import check_writable, make_folder
from ._common import (
    add_overwrite_argument,
    check_memory,
    finite_float,
    nonnegative_float,
    positive_float,
    positive_int,
    whole,
)

#: The traces of :func:`~napari_derotation.simulate.simulate_movie` (its
#: ``TRACES``; named here so that building the parser loads no numba).
TRACES = ("incremental", "sine", "constant", "real")
#: Bytes per simulated pixel at the peak: the float64 movie, its uint16
#: copy and the sample being rotated.
SIMULATION_BYTES_PER_PIXEL = 20

NAME = "simulate"
ORDER = 20
HELP = (
    "Simulate a line-scanned movie of cells rotating about a known centre; "
    "writes movie.tif, movie_angles.npy and movie.json (true centre). "
    "With --signals: a dataset folder as a rig leaves it (movie, analog "
    "signals, stimulus table and a config.yml that run, batch and angles "
    "take as it is)."
)

#: Files of a ``--signals`` dataset (besides the movie and its truth).
DATASET_FILES = {
    "signals": "analog_signals.npy",
    "stimulus": "stimulus_randperm.csv",
    "config": "config.yml",
    "angles": "true_angles_per_line.npy",
}
FRAME_RATE = 30.0


def add_arguments(p):
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output folder (created if missing)",
    )
    p.add_argument(
        "--size", type=whole(2), nargs=2, default=(256, 256), metavar=("ROWS", "COLS")
    )
    p.add_argument(
        "--frames",
        type=positive_int,
        default=None,
        help="frames (default 100; with --signals, as many as the rotations take)",
    )
    p.add_argument(
        "--trace",
        choices=TRACES,
        default=None,
        help="the angle trace (default real: a recorded one)",
    )
    p.add_argument(
        "--signals",
        action="store_true",
        help="write a dataset folder instead: the movie scanned "
        "during one full turn per --speeds entry (directions "
        "alternate), the analog signals (frame clock, line "
        "clock, rotation on, motor ticks) as "
        "analog_signals.npy, stimulus_randperm.csv, "
        "config.yml for run/batch/angles, and the true angles "
        "as true_angles_per_line.npy",
    )
    p.add_argument(
        "--speeds",
        type=positive_float,
        nargs="+",
        default=None,
        metavar="DEG_PER_S",
        help="with --signals: the speed of every turn (default 200 200)",
    )
    p.add_argument(
        "--center-offset",
        type=finite_float,
        nargs=2,
        default=(0.0, 0.0),
        metavar=("DR", "DC"),
        help="centre of rotation relative to (rows//2, cols//2)",
    )
    p.add_argument(
        "--noise",
        type=nonnegative_float,
        default=0.0,
        help="Gaussian noise standard deviation (>= 0)",
    )
    p.add_argument(
        "--delay",
        type=float,
        default=0.0,
        metavar="LINES",
        help="record the angles with this delay (lines): the movie "
        "is scanned at the true angles and derotate "
        "--angle-delay LINES restores them (default 0)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="movie", help="file stem (default movie)")
    add_overwrite_argument(p)


def simulation_paths(out: Path, name: str = "movie") -> dict:
    """The files :func:`write_simulation` writes into ``out``."""
    name = file_stem("--name", name)
    return {
        "movie": out / f"{name}.tif",
        "angles": out / f"{name}_angles.npy",
        "truth": out / f"{name}.json",
    }


def write_simulation(
    out: Path,
    sim,
    name: str = "movie",
    *,
    overwrite: bool = False,
    also=(),
    outputs: OutputSet | None = None,
) -> dict:
    """Write the movie, its angles and its truth into ``out`` (made if
    missing); every file (and those in ``also``, written afterwards by the
    caller) is checked first: an existing one is refused unless
    ``overwrite``. A failure removes what was written, and the folder if it
    was made (also later, when the caller's ``outputs`` fails)."""
    paths = simulation_paths(out, name)
    with OutputSet(overwrite=overwrite) as own:
        written = outputs if outputs is not None else own
        written.add_folders(make_folder(out))
        check_writable([*paths.values(), *also], overwrite=overwrite)
        written.add(write_tiff(paths["movie"], sim.movie))
        written.add(save_angles(paths["angles"], sim.angles_per_line))
        written.add(
            write_json(
                paths["truth"],
                {
                    "center_row_col": list(sim.center),
                    "shape": list(sim.movie.shape),
                    "dtype": str(sim.movie.dtype),
                    **sim.params,
                },
            )
        )
    return paths


def run(args) -> int:
    rows, cols = args.size
    frames = 100 if args.frames is None else args.frames
    if rows < 2 or cols < 2 or frames < 1:
        raise DerotationError(
            f"--size needs at least 2x2 and --frames at least 1; got "
            f"{rows}x{cols}, {frames} frames"
        )
    dr, dc = args.center_offset
    if not (0 <= rows // 2 + dr <= rows - 1 and 0 <= cols // 2 + dc <= cols - 1):
        raise DerotationError(
            f"--center-offset {dr:g} {dc:g} puts the centre outside the "
            f"{rows}x{cols} frame"
        )
    if args.signals:
        paths = write_dataset(args, (rows, cols), (dr, dc))
    else:
        if args.speeds is not None:
            raise DerotationError("--speeds needs --signals")
        from ..simulate import simulate_movie

        check_memory(
            SIMULATION_BYTES_PER_PIXEL * rows * cols * frames,
            f"simulating {frames} frames of {rows}x{cols}",
        )
        sim = simulate_movie(
            (rows, cols),
            frames,
            trace=args.trace or "real",
            center_offset=(dr, dc),
            noise=args.noise,
            seed=args.seed,
            dtype=np.uint16,
            delay=args.delay,
        )
        paths = write_simulation(args.output, sim, args.name, overwrite=args.overwrite)
    for p in paths.values():
        print(p)
    return 0


def write_dataset(args, shape, offset) -> dict:
    """``simulate --signals``: the movie scanned while the recorded motor
    turns, with the files the pipeline reads; every file checked first."""
    for flag, value in (("--frames", args.frames), ("--trace", args.trace)):
        if value is not None:
            raise DerotationError(
                f"{flag} is set by the rotations with --signals (use --speeds)"
                f"; got {flag} {value}"
            )
    speeds = tuple(args.speeds or (200.0, 200.0))
    if any(not np.isfinite(v) or v <= 0 for v in speeds):
        raise DerotationError(
            f"--speeds: expected degrees per second > 0; got "
            f"{' '.join(f'{v:g}' for v in speeds)}"
        )
    from ..simulate import make_cells, rotate_by_line, simulate_recording

    rows, cols = shape
    rec = simulate_recording(
        speeds=speeds,
        directions=[(-1) ** (i + 1) for i in range(len(speeds))],
        rows=rows,
        frame_rate=FRAME_RATE,
        seed=args.seed,
    )
    center = (rows // 2 + offset[0], cols // 2 + offset[1])
    img = make_cells(shape, seed=args.seed, n_cells=max(8, rows * cols // 1600))
    movie = rotate_by_line(
        img,
        rec.angles_per_line,
        center,
        n_frames=rec.n_frames,
        fill_value=float(img.min()),
    )
    if args.noise:
        rng = np.random.default_rng(args.seed + 1)
        movie = movie + rng.normal(0, args.noise, movie.shape)
    movie = np.clip(np.rint(movie), 0, 65535).astype(np.uint16)
    out = args.output
    stem = file_stem("--name", args.name)
    paths = {
        "movie": out / f"{stem}.tif",
        "truth": out / f"{stem}.json",
        **{k: out / v for k, v in DATASET_FILES.items()},
    }
    with OutputSet(overwrite=args.overwrite) as written:
        written.add_folders(make_folder(out))
        check_writable(paths.values(), overwrite=args.overwrite)
        written.add(write_tiff(paths["movie"], movie))
        written.add(rec.write_npy(paths["signals"]))
        written.add(rec.write_stimulus(paths["stimulus"]))
        written.add(save_angles(paths["angles"], rec.angles_per_line))
        written.add(
            write_json(
                paths["truth"],
                {
                    "center_row_col": list(center),
                    "shape": list(movie.shape),
                    "dtype": str(movie.dtype),
                    "center_offset": list(offset),
                    "noise": args.noise,
                    "sample": "cells",
                    "recording": rec.params,
                },
            )
        )
        written.add(
            rec.write_config(
                paths["config"],
                movie=paths["movie"].name,
                signals=paths["signals"].name,
                stimulus=paths["stimulus"].name,
            )
        )
    return paths
