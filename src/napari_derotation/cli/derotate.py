"""``napari-derotation derotate MOVIE --angles A.npy -o OUT.tif|.zarr|.nwb``.

MOVIE may be several files, a folder or a glob (one acquisition split over
files, taken in natural order), with channels and planes (ImageJ, OME,
ScanImage metadata, or ``--channels``/``--planes`` for interleaved pages),
or an OME-Zarr store.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..checks import whole_number
from ..errors import DerotationError
from ..io import load_angles
from ..io.nwb import pynwb_module
from ._common import (
    Progress,
    add_angle_check_argument,
    add_movie_arguments,
    add_overwrite_argument,
    add_params_arguments,
    add_threads_argument,
    params_from_args,
    positive_float,
    positive_int,
    print_warnings,
)

NAME = "derotate"
ORDER = 10
HELP = (
    "Derotate a TIFF or OME-Zarr movie (any channels and planes, one file "
    "or a sequence) with its per-line angles; writes OUT.tif and "
    "OUT.derotation.json (parameters, versions, input checksum), or an "
    "OME-Zarr store (OUT.zarr) or NWB file (OUT.nwb) holding the record."
)


def add_arguments(p):
    p.add_argument(
        "movie",
        type=Path,
        nargs="+",
        help="input TIFF (T[Z][C]YX) or OME-Zarr store, or the "
        "files, folder or glob of one acquisition "
        "(name_00001.tif, ...), read in natural order",
    )
    p.add_argument(
        "--angles",
        type=Path,
        required=True,
        help="per-line angles in degrees: .npy, .csv or .txt",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output: .tif/.tiff (the input's axes), .zarr/.ome.zarr "
        "(OME-Zarr) or .nwb (needs the nwb extra); with "
        "--split a folder",
    )
    add_movie_arguments(p)
    p.add_argument(
        "--split",
        action="store_true",
        help="write one TIFF per plane and channel into the "
        "folder -o, as suite2p reads them (OUT/plane0/"
        "chan0.tif, ...) with OUT/derotation_split.json",
    )
    p.add_argument(
        "--frame-rate",
        type=positive_float,
        default=None,
        metavar="HZ",
        help="frames per second, recorded in a Zarr or NWB output "
        "(NWB needs it unless the movie says it)",
    )
    p.add_argument(
        "--raw",
        choices=("link", "omit"),
        default="link",
        help="NWB: link the raw movie from the file (default) or omit it",
    )
    p.add_argument(
        "--nwb-metadata",
        type=Path,
        default=None,
        metavar="FILE.yaml",
        help="NWB: the session's metadata (NWBFile, Subject, Ophys "
        "as in neuroconv's metadata YAML); required for .nwb",
    )
    p.add_argument(
        "--chunk-frames",
        type=positive_int,
        default=None,
        metavar="N",
        help="frames per chunk (default: about 64 MB); memory use "
        "is bounded by the chunk, not the movie",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="derotate on a running dask.distributed cluster "
        "(e.g. tcp://10.0.0.5:8786); workers must see the "
        "movie at the same path",
    )
    where.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="derotate on a local dask cluster of N worker processes",
    )
    add_overwrite_argument(p)
    add_angle_check_argument(p)
    add_params_arguments(p)
    add_threads_argument(p)


def job_from_args(args):
    """The :class:`~napari_derotation.job.Job` the options describe
    (validated: the movie, angles, parameters and every output file)."""
    from ..job import describe, output_spec

    if args.frame_rate is not None and not args.frame_rate > 0:
        raise DerotationError(f"--frame-rate must be > 0; got {args.frame_rate:g}")
    if args.chunk_frames is not None:
        whole_number("--chunk-frames", args.chunk_frames)
    if args.workers is not None:
        whole_number("--workers", args.workers)
    out = output_spec(
        args.output,
        split=args.split,
        overwrite=args.overwrite,
        frame_rate=args.frame_rate,
        raw=args.raw,
        nwb_metadata=_nwb_metadata(args),
    )
    movie = args.movie[0] if len(args.movie) == 1 else args.movie
    return describe(
        movie,
        load_angles(args.angles),
        out,
        params=params_from_args(args),
        angles_source=args.angles,
        channels=args.channels,
        planes=args.planes,
        allow_missing_chunks=args.allow_missing_chunks,
        chunk_frames=args.chunk_frames,
        scheduler=args.scheduler,
        workers=args.workers,
        extra_angles_ok=args.extra_angles_ok,
    )


def _nwb_metadata(args):
    """The checked ``--nwb-metadata`` of a .nwb output (required)."""
    nwb = not args.split and str(args.output).lower().endswith(".nwb")
    if not nwb:
        if args.nwb_metadata is not None:
            raise DerotationError(
                f"--nwb-metadata is for a .nwb output; got -o {args.output}"
            )
        return None
    pynwb_module()
    from ..io.nwb_metadata import SUBJECT_HINT, load_nwb_metadata

    if args.nwb_metadata is None:
        raise DerotationError(SUBJECT_HINT)
    meta = load_nwb_metadata(args.nwb_metadata)
    for section in meta.ignored:
        print(
            f"warning: {meta.source}: {section} is not used in the NWB output",
            file=sys.stderr,
        )
    return meta


def run(args) -> int:
    from ..job import run as run_job

    job = job_from_args(args)
    print_warnings(job.warnings, "--extra-angles-ok if the extra lines are expected")
    run_job(job, None if args.quiet else Progress("derotating"))
    print(args.output)
    return 0
