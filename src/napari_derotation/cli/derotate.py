"""``napari-derotation derotate MOVIE --angles A.npy -o OUT.tif|.zarr|.nwb``.

MOVIE may be several files, a folder or a glob (one acquisition split over
files, taken in natural order), with channels and planes (ImageJ, OME,
ScanImage metadata, or ``--channels``/``--planes`` for interleaved pages),
or an OME-Zarr store.
"""

from __future__ import annotations

from pathlib import Path

from ..checks import whole_number
from ..engine.files import check_outputs, derotate_file
from ..errors import DerotationError
from ..io import load_angles
from ..io.nwb import pynwb_module
from ..io.outputs import output_format
from ..io.sources import open_movie
from ..io.zarr_store import is_zarr_path
from ._common import (
    Progress,
    add_angle_check_argument,
    add_movie_arguments,
    add_overwrite_argument,
    add_params_arguments,
    add_threads_argument,
    params_from_args,
    warn_angles,
)

NAME = "derotate"
ORDER = 10
HELP = ("Derotate a TIFF or OME-Zarr movie (any channels and planes, one file "
        "or a sequence) with its per-line angles; writes OUT.tif and "
        "OUT.derotation.json (parameters, versions, input checksum), or an "
        "OME-Zarr store (OUT.zarr) or NWB file (OUT.nwb) holding the record.")


def add_arguments(p):
    p.add_argument("movie", type=Path, nargs="+",
                   help="input TIFF (T[Z][C]YX) or OME-Zarr store, or the "
                        "files, folder or glob of one acquisition "
                        "(name_00001.tif, ...), read in natural order")
    p.add_argument("--angles", type=Path, required=True,
                   help="per-line angles in degrees: .npy, .csv or .txt")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output: .tif/.tiff (the input's axes), .zarr/.ome.zarr "
                        "(OME-Zarr) or .nwb (needs the nwb extra); with "
                        "--split a folder")
    add_movie_arguments(p)
    p.add_argument("--split", action="store_true",
                   help="write one TIFF per plane and channel into the "
                        "folder -o, as suite2p reads them (OUT/plane0/"
                        "chan0.tif, ...) with OUT/derotation_split.json")
    p.add_argument("--frame-rate", type=float, default=None, metavar="HZ",
                   help="frames per second, recorded in a Zarr or NWB output "
                        "(NWB needs it unless the movie says it)")
    p.add_argument("--raw", choices=("link", "omit"), default="link",
                   help="NWB: link the raw movie from the file (default) or "
                        "omit it")
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
    add_threads_argument(p)


def _check_options(args) -> str:
    """The output's format, once every option is checked."""
    fmt = "split" if args.split else output_format(args.output)
    cluster = args.scheduler or args.workers is not None
    if fmt == "nwb":
        pynwb_module()
        if cluster:
            raise DerotationError(
                "a cluster writes .tif or .zarr; write .nwb without "
                "--workers/--scheduler")
    if args.frame_rate is not None and not args.frame_rate > 0:
        raise DerotationError(
            f"--frame-rate must be > 0; got {args.frame_rate:g}")
    for option in ("chunk_frames", "workers"):
        if getattr(args, option) is not None:
            whole_number(f"--{option.replace('_', '-')}", getattr(args, option))
    one = len(args.movie) == 1 and (args.movie[0].is_file()
                                    or is_zarr_path(args.movie[0]))
    if cluster and (not one or args.split or args.channels or args.planes):
        raise DerotationError(
            "--scheduler/--workers take one single-channel movie; derotate "
            "sequences, channels and planes without them")
    return fmt


def run(args) -> int:
    fmt = _check_options(args)
    movie = args.movie[0] if len(args.movie) == 1 else args.movie
    params = params_from_args(args)
    if fmt != "split":
        check_outputs(args.output, *args.movie, sidecar=fmt == "tif",
                      overwrite=args.overwrite)
    angles = load_angles(args.angles)
    with open_movie(movie, channels=args.channels, planes=args.planes) as src:
        warn_angles(angles, src.shape, args)
    progress = None if args.quiet else Progress("derotating")
    if args.scheduler or args.workers is not None:
        from ..engine.cluster import derotate_file_distributed

        derotate_file_distributed(
            movie, angles, args.output, params=params,
            scheduler=args.scheduler, workers=args.workers,
            chunk_frames=args.chunk_frames, progress=progress,
            angles_source=args.angles, overwrite=args.overwrite,
            frame_rate=args.frame_rate)
    else:
        derotate_file(movie, angles, args.output, params=params,
                      chunk_frames=args.chunk_frames, progress=progress,
                      angles_source=args.angles, channels=args.channels,
                      planes=args.planes, split=args.split,
                      overwrite=args.overwrite,
                      output_options={"frame_rate": args.frame_rate,
                                      "raw": args.raw})
    print(args.output)
    return 0
