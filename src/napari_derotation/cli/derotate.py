"""``napari-derotation derotate MOVIE --angles A.npy -o OUT.tif|.zarr|.nwb``."""

from __future__ import annotations

from pathlib import Path

from ..checks import whole_number
from ..engine.files import derotate_file
from ..errors import DerotationError
from ..io import load_angles
from ..io.nwb import pynwb_module
from ..io.outputs import output_format
from ._common import Progress, add_params_arguments, params_from_args

NAME = "derotate"
ORDER = 10
HELP = ("Derotate a TIFF or OME-Zarr movie with its per-line angles; writes "
        "OUT.tif and OUT.json (parameters, versions, input checksum), or an "
        "OME-Zarr store (OUT.zarr) or NWB file (OUT.nwb) holding the record.")


def add_arguments(p):
    p.add_argument("movie", type=Path,
                   help="input TIFF (frames, rows, cols) or OME-Zarr store")
    p.add_argument("--angles", type=Path, required=True,
                   help="per-line angles in degrees: .npy, .csv or .txt")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output: .tif/.tiff, .zarr/.ome.zarr (OME-Zarr) or "
                        ".nwb (needs the nwb extra)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing Zarr store or NWB file")
    p.add_argument("--frame-rate", type=float, default=None, metavar="HZ",
                   help="frames per second, recorded in a Zarr or NWB output "
                        "(NWB needs it)")
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
    add_params_arguments(p)


def run(args) -> int:
    fmt = output_format(args.output)
    if fmt != "tif" and args.output.exists() and not args.overwrite:
        raise DerotationError(
            f"{args.output} already exists: choose another output name or "
            f"pass --overwrite")
    if fmt == "nwb":
        pynwb_module()
        if args.scheduler or args.workers is not None:
            raise DerotationError(
                "a cluster writes .tif or .zarr; write .nwb without "
                "--workers/--scheduler")
    if args.frame_rate is not None and not args.frame_rate > 0:
        raise DerotationError(
            f"--frame-rate must be > 0; got {args.frame_rate:g}")
    for option in ("chunk_frames", "workers"):
        if getattr(args, option) is not None:
            whole_number(f"--{option.replace('_', '-')}", getattr(args, option))
    params = params_from_args(args)
    angles = load_angles(args.angles)
    progress = None if args.quiet else Progress("derotating")
    if args.scheduler or args.workers is not None:
        from ..engine.cluster import derotate_file_distributed

        derotate_file_distributed(
            args.movie, angles, args.output, params=params,
            scheduler=args.scheduler, workers=args.workers,
            chunk_frames=args.chunk_frames, progress=progress,
            angles_source=args.angles, overwrite=args.overwrite,
            frame_rate=args.frame_rate)
    else:
        derotate_file(args.movie, angles, args.output, params=params,
                      chunk_frames=args.chunk_frames, progress=progress,
                      angles_source=args.angles, overwrite=args.overwrite,
                      output_options={"frame_rate": args.frame_rate,
                                      "raw": args.raw})
    print(args.output)
    return 0
