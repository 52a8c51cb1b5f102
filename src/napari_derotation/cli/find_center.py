"""``napari-derotation find-center MOVIE.tif --angles A.npy [--method ...]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..errors import DerotationError
from ..io import load_angles
from ._common import (
    Progress,
    add_angle_check_argument,
    add_movie_arguments,
    add_params_arguments,
    add_threads_argument,
    finite_float,
    params_from_args,
    positive_float,
    positive_int,
    warn_angles,
    whole,
)

NAME = "find-center"
ORDER = 25
HELP = (
    "Find the centre of rotation of a raw movie: a Bayesian search "
    "(default) or an ellipse fitted to a cell you name with --seed; "
    "prints ROW COL, or JSON with --json."
)


def add_arguments(p):
    add_threads_argument(p)
    p.add_argument(
        "movie",
        type=Path,
        nargs="+",
        help="raw TIFF movie (T[Z][C]YX), or the files, folder or "
        "glob of one acquisition",
    )
    p.add_argument(
        "--angles",
        type=Path,
        required=True,
        help="per-line angles in degrees: .npy, .csv or .txt",
    )
    p.add_argument(
        "--method",
        choices=("bayesian", "ellipse"),
        default="bayesian",
        help="bayesian: search the centre that leaves the least "
        "residual motion; ellipse: follow the cell at --seed "
        "and fit the ellipse it traces (also gives the tilt "
        "of the rotation plane)",
    )
    p.add_argument(
        "--seed",
        type=finite_float,
        nargs=2,
        metavar=("ROW", "COL"),
        help="a bright cell in frame --frame of the raw movie "
        "(required by --method ellipse)",
    )
    p.add_argument(
        "--frame",
        type=whole(0),
        default=0,
        metavar="N",
        help="frame where --seed was picked (default 0)",
    )
    p.add_argument(
        "--initial",
        type=finite_float,
        nargs=2,
        metavar=("ROW", "COL"),
        help="start of the search (default: rows//2, cols//2)",
    )
    p.add_argument(
        "--search-radius",
        type=positive_float,
        default=10.0,
        metavar="PX",
        help="bayesian: search within this many pixels of --initial (default 10)",
    )
    p.add_argument(
        "--calls",
        type=positive_int,
        default=30,
        metavar="N",
        help="bayesian: objective evaluations (default 30)",
    )
    add_movie_arguments(p)
    p.add_argument(
        "--channel",
        type=whole(0),
        default=None,
        metavar="C",
        help="channel to search on (default 0; name the "
        "structural one); the centre applies to all",
    )
    p.add_argument(
        "--plane",
        type=whole(0),
        default=None,
        metavar="Z",
        help="plane to search on (default 0); the centre applies to all",
    )
    p.add_argument(
        "--delay",
        action="store_true",
        help="bayesian: also find the delay between the angle "
        "signal and the scan (lines, with its uncertainty; "
        "derotate --params applies it), in turn with the "
        "centre; refused when the movie cannot tell it (every "
        "frame turning at one speed one way)",
    )
    p.add_argument(
        "--max-delay",
        type=float,
        default=32.0,
        metavar="LINES",
        help="--delay: search delays within this many lines of 0 (default 32)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_angle_check_argument(p)
    add_params_arguments(
        p, ("--interpolation", "--plane-tilt", "--plane-orientation", "--angle-delay")
    )


def load_plane(args, angles):
    """``(movie (T, Y, X), its angles, where)``: the channel and plane the
    search works on; a single-channel TIFF is memory-mapped as before.
    ``where`` (None for a plain movie) also holds, under ``"_lines"``, the
    indices of the movie's lines in ``angles``."""
    from ..engine.hyperstack import line_index, pick_plane, plane_angles
    from ..io.sources import open_movie

    paths = args.movie[0] if len(args.movie) == 1 else args.movie
    with open_movie(
        paths,
        channels=args.channels,
        planes=args.planes,
        allow_missing_chunks=args.allow_missing_chunks,
    ) as src:
        warn_angles(angles, src.shape, args)
        t, z, c, rows, _ = src.shape
        if (
            src.axes == "TYX"
            and len(src.paths) == 1
            and not args.channel
            and not args.plane
        ):
            return src.frames(mmap=True), angles, None
        movie, ch, pl = pick_plane(src, channel=args.channel, plane=args.plane)
    tt, row = np.meshgrid(np.arange(t), np.arange(rows), indexing="ij")
    lines = line_index(tt, pl, row, z, rows).ravel()
    return (
        movie,
        plane_angles(angles, t, z, rows, pl),
        {"channel": ch, "plane": pl, "_lines": lines},
    )


def run(args) -> int:
    recorded = load_angles(args.angles)
    params = params_from_args(args)
    movie, angles, where = load_plane(args, recorded)
    lines = None if where is None else where.pop("_lines")
    if args.delay and args.method != "bayesian":
        raise DerotationError(
            "--delay is found with --method bayesian (the centre and the delay in turn)"
        )
    start_delay = params.angle_delay
    if lines is not None and params.angle_delay:
        # the delay runs along the scan of every plane: applied before the
        # plane's lines are picked
        from ..frames import delay_angles

        angles = delay_angles(recorded, params.angle_delay)[lines]
        params = params.without_delay()
    if args.method == "ellipse":
        from ..center.ellipse import fit_center_ellipse

        if args.seed is None:
            raise DerotationError(
                "--method ellipse needs --seed ROW COL (a bright cell in frame "
                "--frame of the raw movie)"
            )
        fit = fit_center_ellipse(
            movie,
            angles,
            tuple(args.seed),
            frame=args.frame,
            initial=args.initial,
            progress=None if args.quiet else Progress("following the cell"),
        )
        if not args.quiet:
            for msg in fit.messages:
                sys.stderr.write(f"warning: {msg}\n")
        result = fit.to_record(args.frame)
    else:
        from ..center import find_center_bayesian

        if args.seed is not None:
            raise DerotationError("--seed is only used by --method ellipse")
        if args.delay:
            result = _center_and_delay(
                args, movie, recorded, lines, params, start_delay
            )
        else:
            res = find_center_bayesian(
                movie,
                angles,
                initial=args.initial if args.initial else params.center,
                search_radius=args.search_radius,
                n_calls=args.calls,
                params=params,
                progress=None
                if args.quiet
                else Progress("searching the centre", unit=None),
            )
            result = res.to_record()
            if params.plane_tilt:
                result["plane"] = params.to_record()["plane"]
    if where is not None:
        result.update(where)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        r, c = result["center"]
        line = f"{r:.2f} {c:.2f}"
        if args.method == "ellipse":
            sig = "" if result["tilt_significant"] else ", not significant"
            line += (
                f"  (tilt {result['tilt']:.1f} +- "
                f"{result['tilt_uncertainty']:.1f} deg{sig}, "
                f"orientation {result['orientation']:.1f} deg)"
            )
        if "angle_delay" in result:
            line += (
                f"  delay {result['angle_delay']:.2f} +- "
                f"{result['angle_delay_uncertainty']:.2f} lines"
            )
        print(line)
    return 0


def _center_and_delay(args, movie, recorded, lines, params, start) -> dict:
    """``--delay``: the centre and the angle delay in turn (the delay search
    starts from ``start``, e.g. what ``--params`` or ``--angle-delay``
    said)."""
    from ..center.delay import find_center_and_delay

    res = find_center_and_delay(
        movie,
        recorded,
        initial=args.initial if args.initial else params.center,
        search_radius=args.search_radius,
        n_calls=args.calls,
        max_delay=args.max_delay,
        delay=start,
        lines=lines,
        params=params,
        progress=None
        if args.quiet
        else Progress("searching the centre and the delay", unit=None),
    )
    out = res.to_record()
    if params.plane_tilt:
        out["plane"] = params.to_record()["plane"]
    return out
