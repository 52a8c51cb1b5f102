"""``napari-derotation qc OUT``: the quality report of a derotated output."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ._common import add_overwrite_argument

NAME = "qc"
ORDER = 27
HELP = (
    "Quality report of a derotated output (TIFF or OME-Zarr) and its "
    "record: writes OUT.qc.png and OUT.qc.json (mean images raw and "
    "derotated, residual motion per angle bin, residual rotation per "
    "frame, blank share, centre, delay) and prints the warnings: a "
    "delay, a flipped sign or a wrong centre."
)


def add_arguments(p):
    p.add_argument(
        "output",
        type=Path,
        help="a derotated output with its record beside it "
        "(OUT.derotation.json) or inside it (Zarr)",
    )
    p.add_argument(
        "--angles",
        type=Path,
        default=None,
        help="the per-line angles, when the record's angle source "
        "is not a per-line angles file",
    )
    p.add_argument(
        "--max-frames",
        type=int,
        default=256,
        metavar="N",
        help="frames measured, spread over the movie (default 256)",
    )
    p.add_argument(
        "--json", action="store_true", help="print the report (without images) as JSON"
    )
    add_overwrite_argument(p)


def run(args) -> int:
    from ..checks import whole_number
    from ..io import load_angles
    from ..quality import report_for_output, write_report

    angles = load_angles(args.angles) if args.angles else None
    rep = report_for_output(
        args.output,
        angles_per_line=angles,
        max_frames=whole_number("--max-frames", args.max_frames),
    )
    written = write_report(rep, args.output, overwrite=args.overwrite)
    if args.json:
        print(
            json.dumps(
                {k: v for k, v in rep.items() if not k.startswith("_")}, indent=2
            )
        )
    else:
        for w in rep["warnings"]:
            print(f"warning: {w}", file=sys.stderr)
        if not rep["warnings"]:
            print("no warnings", file=sys.stderr)
        for p in written:
            print(p)
    return 0
