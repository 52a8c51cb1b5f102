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
HELP = ("Simulate a line-scanned movie of cells rotating about a known centre; "
        "writes movie.tif, movie_angles.npy and movie.json (true centre).")


def add_arguments(p):
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output folder (created if missing)")
    p.add_argument("--size", type=whole(2), nargs=2, default=(256, 256),
                   metavar=("ROWS", "COLS"))
    p.add_argument("--frames", type=positive_int, default=100)
    p.add_argument("--trace", choices=TRACES, default="real")
    p.add_argument("--center-offset", type=finite_float, nargs=2, default=(0.0, 0.0),
                   metavar=("DR", "DC"),
                   help="centre of rotation relative to (rows//2, cols//2)")
    p.add_argument("--noise", type=nonnegative_float, default=0.0,
                   help="Gaussian noise standard deviation (>= 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="movie", help="file stem (default movie)")
    add_overwrite_argument(p)


def simulation_paths(out: Path, name: str = "movie") -> dict:
    """The files :func:`write_simulation` writes into ``out``."""
    name = file_stem("--name", name)
    return {"movie": out / f"{name}.tif", "angles": out / f"{name}_angles.npy",
            "truth": out / f"{name}.json"}


def write_simulation(out: Path, sim, name: str = "movie", *,
                     overwrite: bool = False, also=(),
                     outputs: OutputSet | None = None) -> dict:
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
        written.add(write_json(paths["truth"], {
            "center_row_col": list(sim.center), "shape": list(sim.movie.shape),
            "dtype": str(sim.movie.dtype), **sim.params}))
    return paths


def run(args) -> int:
    rows, cols = args.size
    if rows < 2 or cols < 2 or args.frames < 1:
        raise DerotationError(
            f"--size needs at least 2x2 and --frames at least 1; got "
            f"{rows}x{cols}, {args.frames} frames")
    dr, dc = args.center_offset
    if not (0 <= rows // 2 + dr <= rows - 1 and 0 <= cols // 2 + dc <= cols - 1):
        raise DerotationError(
            f"--center-offset {dr:g} {dc:g} puts the centre outside the "
            f"{rows}x{cols} frame")
    from ..simulate import simulate_movie

    check_memory(SIMULATION_BYTES_PER_PIXEL * rows * cols * args.frames,
                 f"simulating {args.frames} frames of {rows}x{cols}")
    sim = simulate_movie((rows, cols), args.frames, trace=args.trace,
                         center_offset=(dr, dc), noise=args.noise,
                         seed=args.seed, dtype=np.uint16)
    paths = write_simulation(args.output, sim, args.name,
                             overwrite=args.overwrite)
    for p in paths.values():
        print(p)
    return 0
