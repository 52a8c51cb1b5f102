"""``napari-derotation find-center MOVIE.tif --angles A.npy [--method ...]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import DerotationError
from ..io import load_angles
from ..io.zarr_store import read_frames

NAME = "find-center"
ORDER = 25
HELP = ("Find the centre of rotation of a raw movie: a Bayesian search "
        "(default) or an ellipse fitted to a cell you name with --seed; "
        "prints ROW COL, or JSON with --json.")


def add_arguments(p):
    p.add_argument("movie", type=Path,
                   help="raw TIFF movie (frames, rows, cols) or OME-Zarr store")
    p.add_argument("--angles", type=Path, required=True,
                   help="per-line angles in degrees: .npy, .csv or .txt")
    p.add_argument("--method", choices=("bayesian", "ellipse"),
                   default="bayesian",
                   help="bayesian: search the centre that leaves the least "
                        "residual motion; ellipse: follow the cell at --seed "
                        "and fit the ellipse it traces (also gives the tilt "
                        "of the rotation plane)")
    p.add_argument("--seed", type=float, nargs=2, metavar=("ROW", "COL"),
                   help="a bright cell in frame --frame of the raw movie "
                        "(required by --method ellipse)")
    p.add_argument("--frame", type=int, default=0, metavar="N",
                   help="frame where --seed was picked (default 0)")
    p.add_argument("--initial", type=float, nargs=2, metavar=("ROW", "COL"),
                   help="start of the search (default: rows//2, cols//2)")
    p.add_argument("--search-radius", type=float, default=10.0, metavar="PX",
                   help="bayesian: search within this many pixels of "
                        "--initial (default 10)")
    p.add_argument("--calls", type=int, default=30, metavar="N",
                   help="bayesian: objective evaluations (default 30)")
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _bar(desc: str):
    def progress(done, total, *best):
        extra = ""
        if best:
            extra = f" best ({best[0][0]:.2f}, {best[0][1]:.2f})"
        sys.stderr.write(f"\r{desc}: {done}/{total}{extra}   ")
        sys.stderr.flush()
    return progress


def run(args) -> int:
    movie = read_frames(args.movie)
    angles = load_angles(args.angles)
    if args.method == "ellipse":
        from ..center.ellipse import fit_center_ellipse

        if args.seed is None:
            raise DerotationError(
                "--method ellipse needs --seed ROW COL (a bright cell in frame "
                "--frame of the raw movie)")
        fit = fit_center_ellipse(
            movie, angles, tuple(args.seed), frame=args.frame,
            initial=args.initial,
            progress=None if args.quiet else _bar("following the cell"))
        if not args.quiet:
            sys.stderr.write("\n")
            for msg in fit.messages:
                sys.stderr.write(f"warning: {msg}\n")
        result = {
            "method": "ellipse",
            "center": list(fit.center),
            "ellipse": {"center": list(fit.center), "axes": list(fit.axes),
                        "orientation": fit.orientation,
                        "residual": fit.residual},
            "tilt": fit.tilt,
            "orientation": fit.plane_orientation,
            "n_positions": int(len(fit.positions)),
            "lost_frames": int(fit.lost_frames.size),
            "seed": list(fit.seed),
            "frame": args.frame,
        }
    else:
        from ..center import find_center_bayesian

        if args.seed is not None:
            raise DerotationError("--seed is only used by --method ellipse")
        res = find_center_bayesian(
            movie, angles, initial=args.initial,
            search_radius=args.search_radius, n_calls=args.calls,
            progress=None if args.quiet else _bar("searching the centre"))
        if not args.quiet:
            sys.stderr.write("\n")
        result = {
            "method": "bayesian",
            "center": list(res.center),
            "objective": res.objective,
            "n_evaluations": res.n_evaluations,
            "n_frames": res.n_frames,
            "initial": list(res.initial),
            "search_radius": res.search_radius,
            "seconds": round(res.elapsed, 3),
        }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        r, c = result["center"]
        line = f"{r:.2f} {c:.2f}"
        if args.method == "ellipse":
            line += (f"  (tilt {result['tilt']:.1f} deg, orientation "
                     f"{result['orientation']:.1f} deg)")
        print(line)
    return 0
