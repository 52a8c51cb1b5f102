"""``napari-derotation derotate MOVIE.tif --angles A.npy -o OUT.tif``.

MOVIE may be several files, a folder or a glob (one acquisition split over
files, taken in natural order), with channels and planes (ImageJ, OME,
ScanImage metadata, or ``--channels``/``--planes`` for interleaved pages).
"""

from __future__ import annotations

from pathlib import Path

from ..checks import whole_number
from ..engine.files import check_outputs, derotate_file
from ..errors import DerotationError
from ..io import load_angles
from ..io.sources import open_movie
from ._common import (
    Progress,
    add_angle_check_argument,
    add_movie_arguments,
    add_overwrite_argument,
    add_params_arguments,
    params_from_args,
    warn_angles,
)

NAME = "derotate"
ORDER = 10
HELP = ("Derotate a TIFF movie (any channels and planes, one file or a "
        "sequence) with its per-line angles; writes OUT.tif and "
        "OUT.derotation.json (parameters, versions, input checksum).")


def add_arguments(p):
    p.add_argument("movie", type=Path, nargs="+",
                   help="input TIFF (T[Z][C]YX), or the files, folder or glob "
                        "of one acquisition (name_00001.tif, ...), read in "
                        "natural order")
    p.add_argument("--angles", type=Path, required=True,
                   help="per-line angles in degrees: .npy, .csv or .txt")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output TIFF (the input's axes), or with --split a "
                        "folder")
    add_movie_arguments(p)
    p.add_argument("--split", action="store_true",
                   help="write one TIFF per plane and channel into the "
                        "folder -o, as suite2p reads them (OUT/plane0/"
                        "chan0.tif, ...) with OUT/derotation_split.json")
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
    if not args.split and args.output.suffix.lower() not in (".tif", ".tiff"):
        raise DerotationError(
            f"output must end in .tif or .tiff; got {args.output.name}")
    movie = args.movie[0] if len(args.movie) == 1 else args.movie
    for option in ("chunk_frames", "workers"):
        if getattr(args, option) is not None:
            whole_number(f"--{option.replace('_', '-')}", getattr(args, option))
    params = params_from_args(args)
    if not args.split:
        check_outputs(args.output, *args.movie, overwrite=args.overwrite)
    angles = load_angles(args.angles)
    with open_movie(movie, channels=args.channels, planes=args.planes) as src:
        warn_angles(angles, src.shape, args)
    progress = None if args.quiet else Progress("derotating")
    if args.scheduler or args.workers is not None:
        if len(args.movie) > 1 or not args.movie[0].is_file() or \
                args.split or args.channels or args.planes:
            raise DerotationError(
                "--scheduler/--workers take one single-channel TIFF; derotate "
                "sequences, channels and planes without them")
        from ..engine.cluster import derotate_file_distributed

        derotate_file_distributed(
            movie, angles, args.output, params=params,
            scheduler=args.scheduler, workers=args.workers,
            chunk_frames=args.chunk_frames, progress=progress,
            angles_source=args.angles, overwrite=args.overwrite)
    else:
        derotate_file(movie, angles, args.output, params=params,
                      chunk_frames=args.chunk_frames, progress=progress,
                      angles_source=args.angles, channels=args.channels,
                      planes=args.planes, split=args.split,
                      overwrite=args.overwrite)
    print(args.output)
    return 0
