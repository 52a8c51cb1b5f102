"""Centre of rotation: error and time of each method, ours and the reference's.

On the same simulated 256x256 movies of cells (noise added, centre of
rotation off the frame centre), in one run: our Bayesian search
(``find_center_bayesian``), our ellipse fit from one clicked cell
(``fit_center_ellipse``) and the reference's ``BO_for_derotation``
(``derotation`` 0.1.6, the ``bench`` extra; 12 whole-movie derotations,
integer centres, blob peak-to-peak). Goals: error <= 0.5 px; a Bayesian
search on 300 frames of 256x256 in <= 5 s. A last case tilts the rotation
plane: the ellipse fit measures it, then the Bayesian search corrects it.

    python benchmarks/bench_center.py [--frames 300] [--quick] [--no-reference]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

#: (name, trace, centre offset (row, col), noise, plane tilt, orientation)
CASES = [
    ("real trace", "real", (-7.0, 9.5), 10.0, 0.0, 0.0),
    ("stepwise", "incremental", (12.0, 0.0), 10.0, 0.0, 0.0),
    ("sinusoid", "sine", (3.0, -11.0), 10.0, 0.0, 0.0),
    ("real, tilted 30/40", "real", (-5.0, 6.0), 10.0, 30.0, 40.0),
]
SEARCH = 13  # search radius (ours) and delta (reference), pixels


def make_case(trace, offset, noise, tilt, orientation, frames, size=256):
    from napari_derotation.simulate import make_cells, make_trace, rotate_by_line

    img = make_cells((size, size), seed=5, n_cells=size * size // 1600)
    angles = make_trace(trace, frames * size, size)
    center = (size // 2 + offset[0], size // 2 + offset[1])
    movie = rotate_by_line(
        img,
        angles,
        center,
        n_frames=frames,
        plane_tilt=tilt,
        plane_orientation=orientation,
        fill_value=float(img.min()),
    )
    rng = np.random.default_rng(1)
    movie = np.clip(
        np.rint(movie + rng.normal(0, noise, movie.shape)), 0, 65535
    ).astype(np.uint16)
    return movie, angles, center, img


def seed_cell(img, center, rmin=50.0, rmax=100.0):
    """A bright isolated cell of the sample (where a user would click)."""
    labels, n = ndimage.label(img > 0.5 * (img.max() + np.median(img)))
    index = range(1, n + 1)
    for c, size in zip(
        ndimage.center_of_mass(img, labels, index),
        ndimage.sum(np.ones_like(img), labels, index),
        strict=True,
    ):
        if (
            rmin < np.hypot(c[0] - center[0], c[1] - center[1]) < rmax
            and 30 < size < 150
        ):
            return c
    raise RuntimeError("no bright cell to seed the ellipse fit")


def ours_bayesian(movie, angles, plane=None):
    from napari_derotation.center import find_center_bayesian

    t0 = time.perf_counter()
    res = find_center_bayesian(movie, angles, search_radius=SEARCH, **(plane or {}))
    note = (
        ""
        if not plane
        else (
            f"plane from the ellipse fit ({plane['plane_tilt']:.1f}/"
            f"{plane['plane_orientation']:.1f})"
        )
    )
    return res.center, time.perf_counter() - t0, res.n_evaluations, note


def ours_ellipse(movie, angles, seed):
    from napari_derotation.center.ellipse import fit_center_ellipse

    t0 = time.perf_counter()
    fit = fit_center_ellipse(movie, angles, seed, frame=0)
    note = (
        f"tilt {fit.tilt:.1f}, orientation {fit.plane_orientation:.1f}; "
        f"{len(fit.positions)} positions"
    )
    PLANE.update(plane_tilt=fit.tilt, plane_orientation=fit.plane_orientation)
    return fit.center, time.perf_counter() - t0, len(fit.positions), note


#: the plane the last ellipse fit measured (for the tilted case)
PLANE: dict = {}


def reference_bo(movie, angles):
    from derotation.analysis.bayesian_optimization import BO_for_derotation

    rows, cols = movie.shape[1:]
    per_frame = angles.reshape(-1, rows)[:, 0]
    t0 = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as tmp,
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        bo = BO_for_derotation(
            movie,
            angles,
            per_frame,
            0.0,
            (cols // 2, rows // 2),
            SEARCH,
            debug_plots_folder=Path(tmp),
        )
        try:
            best = bo.optimize()
        except Exception as exc:  # the reference has no blob guard
            return None, time.perf_counter() - t0, 12, f"failed: {exc!r}"[:60]
    # it evaluates int(x), int(y) but reports the float optimum: score what
    # it derotated with, and note the float it returns
    x, y = best["params"]["x"], best["params"]["y"]
    note = f"returns ({y:.2f}, {x:.2f}); target {best['target']:.0f}"
    return (float(int(y)), float(int(x))), time.perf_counter() - t0, 12, note


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument(
        "--quick", action="store_true", help="100 frames, no tilted case (a smoke run)"
    )
    ap.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the reference's BO_for_derotation (slow)",
    )
    args = ap.parse_args(argv)
    frames = 100 if args.quick else args.frames
    cases = CASES[:2] if args.quick else CASES

    # warm up: numba kernels and imports outside the timings
    from napari_derotation.center import find_center_bayesian

    warm, wa, _, _ = make_case("real", (0, 0), 0, 0, 0, 40, size=64)
    find_center_bayesian(warm, wa, n_calls=4)

    head = (
        f"{'movie':<19} {'method':<22} {'error px':>8} {'time s':>7} {'evals':>5}  note"
    )
    print(f"256x256, {frames} frames, noise sd 10, search radius {SEARCH} px")
    print(head)
    print("-" * len(head))
    for name, trace, offset, noise, tilt, orient in cases:
        movie, angles, center, img = make_case(
            trace, offset, noise, tilt, orient, frames
        )
        seed = seed_cell(img, center)
        runs = [
            ("ours: Bayesian", ours_bayesian, (movie, angles)),
            ("ours: ellipse (1 cell)", ours_ellipse, (movie, angles, seed)),
        ]
        if tilt:  # the ellipse measures the plane; the search then uses it
            runs = [runs[1], ("ours: Bayesian", ours_bayesian, (movie, angles, PLANE))]
        if not args.no_reference and not tilt:
            runs.append(("reference BO", reference_bo, (movie, angles)))
        for method, fn, fargs in runs:
            found, secs, evals, note = fn(*fargs)
            err = (
                np.hypot(found[0] - center[0], found[1] - center[1])
                if found is not None
                else float("nan")
            )
            if tilt and "tilt" in note:
                note += f" (true {tilt:g}/{orient:g})"
            print(
                f"{name:<19} {method:<22} {err:8.3f} {secs:7.2f} {evals:>5}  {note}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
