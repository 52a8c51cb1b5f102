"""The whole ``find-center --method bayesian`` command vs one reference derotation.

Times, in one run, on the same simulated movie (294 frames of 256x256
uint16, the recorded angle trace, the centre (-7, 9.5) px off the frame
centre, noise sd 10):

* ``napari-derotation find-center MOVIE.tif --angles A.npy --json`` end to
  end: a fresh Python process, its imports, reading the TIFF and the search
  (wall clock of the subprocess);
* the reference's plain derotation of that movie
  (``derotate_an_image_array_line_by_line`` of ``derotation`` 0.1.6, the
  ``bench`` extra) at its default centre, in this process.

Each is repeated, interleaved (``--repeat``), and the medians are compared.
Goal: the search costs at most 5 reference derotations on a quiet machine,
at most 8 with ``--busy`` (one other CPU-bound process runs the whole time,
for both). A first, untimed command run fills numba's cache.

    python benchmarks/bench_find_center_cli.py [--repeat 5] [--frames 294] [--busy]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OFFSET = (-7.0, 9.5)
#: At most this many reference derotations: quiet, and with --busy.
GOAL = 5.0
GOAL_BUSY = 8.0


def make_movie(folder: Path, frames: int):
    from napari_derotation.io import write_tiff
    from napari_derotation.simulate import simulate_movie

    sim = simulate_movie(
        (256, 256), frames, trace="real", center_offset=OFFSET, noise=10.0, seed=0
    )
    write_tiff(folder / "movie.tif", sim.movie)
    np.save(folder / "angles.npy", sim.angles_per_line)
    return sim


def cli_search(folder: Path) -> tuple[float, dict]:
    # what the console script runs
    cmd = [
        sys.executable,
        "-c",
        "import sys; from napari_derotation.cli import main; sys.exit(main())",
        "find-center",
        str(folder / "movie.tif"),
        "--angles",
        str(folder / "angles.npy"),
        "--json",
        "--quiet",
    ]
    t0 = time.perf_counter()
    out = subprocess.run(
        cmd, capture_output=True, text=True, check=True, env=dict(os.environ)
    )
    secs = time.perf_counter() - t0
    return secs, json.loads(out.stdout)


def reference_derotation(movie, angles) -> float:
    from derotation.derotate_by_line import (
        derotate_an_image_array_line_by_line as ref,
    )

    t0 = time.perf_counter()
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        ref(movie, angles)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--frames", type=int, default=294)
    ap.add_argument(
        "--busy", action="store_true", help="with one competing CPU-bound process"
    )
    args = ap.parse_args(argv)
    from bench_load import competitor

    goal = GOAL_BUSY if args.busy else GOAL
    load = competitor() if args.busy else contextlib.nullcontext()
    with tempfile.TemporaryDirectory() as tmp, load:
        folder = Path(tmp)
        sim = make_movie(folder, args.frames)
        cli_search(folder)  # fills numba's cache
        reference_derotation(sim.movie, sim.angles_per_line)
        cli, ref, found = [], [], None
        for _ in range(args.repeat):
            secs, found = cli_search(folder)
            cli.append(secs)
            ref.append(reference_derotation(sim.movie, sim.angles_per_line))
    err = float(
        np.hypot(found["center"][0] - sim.center[0], found["center"][1] - sim.center[1])
    )
    c, r = statistics.median(cli), statistics.median(ref)
    print(
        f"256x256, {args.frames} frames, recorded trace, noise sd 10, "
        f"{args.repeat} interleaved runs (median; min)"
        + ("; one competing process" if args.busy else "; quiet")
    )
    print(
        f"find-center CLI (whole process)  {c:6.2f} s ; {min(cli):.2f} s   "
        f"search {found['seconds']:.2f} s, {found['n_evaluations']} "
        f"evaluations, error {err:.3f} px"
    )
    print(f"reference plain derotation       {r:6.2f} s ; {min(ref):.2f} s")
    ratio = c / r
    print(
        f"ratio {ratio:.1f} reference derotations (min/min "
        f"{min(cli) / min(ref):.1f}); goal <= {goal:g}: "
        f"{'met' if ratio <= goal else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
