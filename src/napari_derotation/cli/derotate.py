"""``napari-derotation derotate MOVIE.tif --angles A.npy -o OUT.tif``."""

from __future__ import annotations

from pathlib import Path

from ..checks import whole_number
from ..engine.files import check_outputs, derotate_file
from ..errors import DerotationError
from ..io import MovieFile, load_angles
from ._common import (
    Progress,
    add_angle_check_argument,
    add_overwrite_argument,
    add_params_arguments,
    params_from_args,
    warn_angles,
)

NAME = "derotate"
ORDER = 10
HELP = ("Derotate a TIFF movie with its per-line angles; writes OUT.tif and "
        "OUT.derotation.json (parameters, versions, input checksum).")


def add_arguments(p):
    p.add_argument("movie", type=Path, help="input TIFF (frames, rows, cols)")
    p.add_argument("--angles", type=Path, required=True,
                   help="per-line angles in degrees: .npy, .csv or .txt")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output TIFF")
    p.add_argument("--chunk-frames", type=int, default=None,
                   metavar="N",
                   help="frames per chunk (default: about 64 MB); memory use "
                        "is bounded by the chunk, not the movie")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="derotate on a running dask.distributed cluster "
                            "(e.g. tcp://10.0.0.5:8786); workers must see the "
                            "movie at the same path")
    where.add_argument("--workers", type=int, metavar="N",
                       help="derotate on a local dask cluster of N worker "
                            "processes")
    add_overwrite_argument(p)
    add_angle_check_argument(p)
    add_params_arguments(p)


def run(args) -> int:
    if args.output.suffix.lower() not in (".tif", ".tiff"):
        raise DerotationError(
            f"output must end in .tif or .tiff; got {args.output.name}")
    for option in ("chunk_frames", "workers"):
        if getattr(args, option) is not None:
            whole_number(f"--{option.replace('_', '-')}", getattr(args, option))
    params = params_from_args(args)
    check_outputs(args.output, args.movie, overwrite=args.overwrite)
    angles = load_angles(args.angles)
    with MovieFile(args.movie) as mf:
        shape = mf.shape
    warn_angles(angles, shape, args)
    progress = None if args.quiet else Progress("derotating")
    if args.scheduler or args.workers is not None:
        from ..engine.cluster import derotate_file_distributed

        derotate_file_distributed(
            args.movie, angles, args.output, params=params,
            scheduler=args.scheduler, workers=args.workers,
            chunk_frames=args.chunk_frames, progress=progress,
            angles_source=args.angles, overwrite=args.overwrite)
    else:
        derotate_file(args.movie, angles, args.output, params=params,
                      chunk_frames=args.chunk_frames, progress=progress,
                      angles_source=args.angles, overwrite=args.overwrite)
    print(args.output)
    return 0
