"""``napari-derotation derotate MOVIE.tif --angles A.npy -o OUT.tif``."""

from __future__ import annotations

from pathlib import Path

from ..engine import INTERPOLATIONS
from ..engine.files import derotate_file
from ..errors import DerotationError
from ..io import load_angles
from ._common import Progress

NAME = "derotate"
ORDER = 10
HELP = ("Derotate a TIFF movie with its per-line angles; writes OUT.tif and "
        "OUT.json (parameters, versions, input checksum).")


def add_arguments(p):
    p.add_argument("movie", type=Path, help="input TIFF (frames, rows, cols)")
    p.add_argument("--angles", type=Path, required=True,
                   help="per-line angles in degrees: .npy, .csv or .txt")
    p.add_argument("--center", type=float, nargs=2, metavar=("ROW", "COL"),
                   help="centre of rotation (default: rows//2, cols//2)")
    p.add_argument("--interpolation", choices=sorted(INTERPOLATIONS),
                   default="bilinear")
    p.add_argument("--fill", type=float, default=0.0, metavar="VALUE",
                   help="value of pixels no scanned line covered (default 0)")
    p.add_argument("--chunk-frames", type=int, default=None, metavar="N",
                   help="frames per chunk (default: about 64 MB); memory use "
                        "is bounded by the chunk, not the movie")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output TIFF")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="derotate on a running dask.distributed cluster "
                            "(e.g. tcp://10.0.0.5:8786); workers must see the "
                            "movie at the same path")
    where.add_argument("--workers", type=int, metavar="N",
                       help="derotate on a local dask cluster of N worker "
                            "processes")


def run(args) -> int:
    if args.output.suffix.lower() not in (".tif", ".tiff"):
        raise DerotationError(
            f"output must end in .tif or .tiff; got {args.output.name}")
    if args.chunk_frames is not None and args.chunk_frames < 1:
        raise DerotationError(
            f"--chunk-frames must be >= 1; got {args.chunk_frames}")
    angles = load_angles(args.angles)
    progress = None if args.quiet else Progress("derotating")
    if args.scheduler or args.workers is not None:
        from ..engine.cluster import derotate_file_distributed

        derotate_file_distributed(
            args.movie, angles, args.output, args.center,
            scheduler=args.scheduler, workers=args.workers,
            interpolation=args.interpolation, fill_value=args.fill,
            chunk_frames=args.chunk_frames, progress=progress,
            angles_source=args.angles)
        print(args.output)
        return 0
    derotate_file(args.movie, angles, args.output, args.center,
                  interpolation=args.interpolation, fill_value=args.fill,
                  chunk_frames=args.chunk_frames, progress=progress,
                  angles_source=args.angles)
    print(args.output)
    return 0
