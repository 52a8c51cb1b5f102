"""``napari-derotation demo``: the headless main job on simulated data."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..frames import disc_mask, rotating_frames
from ..io import OutputSet, file_sha256, write_json, write_tiff
from ..io.atomic import check_writable, make_folder
from ._common import (
    Progress,
    add_overwrite_argument,
    check_memory,
    positive_int,
    whole,
)
from .simulate import simulation_paths, write_simulation

#: The smallest frame the demo's off-centre rotation fits in.
MIN_SIZE = 32

NAME = "demo"
ORDER = 5
HELP = (
    "Simulate a rotating movie, derotate it and write raw and derotated "
    "TIFFs plus a PNG comparing their mean images (no display needed). "
    "Files of an earlier demo in the folder are replaced; any other file "
    "is refused unless --overwrite."
)

#: The record the demo writes beside its files, and the name it signs with:
#: a later demo replaces the files this record lists (unchanged since).
RECORD = "demo.json"
WRITER = "napari-derotation demo"


def add_arguments(p):
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("derotation-demo"),
        help="output folder (default ./derotation-demo)",
    )
    p.add_argument("--frames", type=positive_int, default=160)
    p.add_argument(
        "--size",
        type=whole(MIN_SIZE),
        default=256,
        help=f"frame rows and columns (>= {MIN_SIZE}; default 256)",
    )
    add_overwrite_argument(p)


def _to_uint8(img: np.ndarray, lo: float, hi: float) -> np.ndarray:
    scaled = (img.astype(np.float64) - lo) / max(hi - lo, 1e-12)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def comparison_png(
    path: Path, left: np.ndarray, right: np.ndarray, gap: int = 8
) -> Path:
    """Write two images side by side (shared contrast) as a PNG."""
    import imageio.v3 as iio

    from ..io import atomic_path

    lo = float(np.percentile(np.concatenate([left.ravel(), right.ravel()]), 1))
    hi = float(np.percentile(np.concatenate([left.ravel(), right.ravel()]), 99.7))
    rows = max(left.shape[0], right.shape[0])
    canvas = np.full((rows, left.shape[1] + gap + right.shape[1]), 255, np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = _to_uint8(left, lo, hi)
    canvas[: right.shape[0], left.shape[1] + gap :] = _to_uint8(right, lo, hi)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, canvas, extension=".png")
    return path


def earlier_demo_files(out: Path) -> set[Path]:
    """The files in ``out`` that an earlier demo wrote, unchanged since:
    those its record (:data:`RECORD`, signed :data:`WRITER`) lists with the
    same SHA-256, and the record itself. Nothing if there is no such
    record."""
    record = out / RECORD
    try:
        rec = json.loads(record.read_text())
    except (OSError, ValueError):
        return set()
    if (
        not isinstance(rec, dict)
        or rec.get("written_by") != WRITER
        or not isinstance(rec.get("files"), dict)
    ):
        return set()
    own = {record}
    for name, sha in rec["files"].items():
        path = out / str(name)
        if Path(str(name)).name == name and path.is_file() and file_sha256(path) == sha:
            own.add(path)
    return own


def run(args) -> int:
    out: Path = args.output
    t0 = time.perf_counter()
    from ..engine import derotate
    from ..simulate import simulate_movie
    from .simulate import SIMULATION_BYTES_PER_PIXEL

    # the simulation, then the derotated copy in float64
    check_memory(
        (SIMULATION_BYTES_PER_PIXEL + 8) * args.size**2 * args.frames,
        f"the demo's {args.frames} frames of {args.size}x{args.size}",
    )
    sim = simulate_movie(
        (args.size, args.size),
        args.frames,
        trace="real",
        center_offset=(6.0, -9.0),
        noise=4.0,
        seed=1,
    )
    names = {
        "derotated": out / "derotated.tif",
        "png": out / "raw_vs_derotated_mean.png",
    }
    record = out / RECORD
    # a failure or Ctrl-C removes every file written (and the folder if made)
    with OutputSet() as written:
        written.add_folders(make_folder(out))
        # an earlier demo's files are replaced, any other file is refused
        own = earlier_demo_files(out)
        targets = [*simulation_paths(out, "raw").values(), *names.values(), record]
        check_writable([p for p in targets if p not in own], overwrite=args.overwrite)
        paths = write_simulation(out, sim, "raw", overwrite=True, outputs=written)
        # pixels no line covered get the background (most of a frame is
        # background)
        blank = float(np.median(sim.movie[0]))
        fixed = derotate(
            sim.movie,
            sim.angles_per_line,
            sim.center,
            fill_value=blank,
            progress=Progress("derotating"),
        )
        derotated = written.add(write_tiff(names["derotated"], fixed))
        rotating = rotating_frames(sim.angles_per_line, args.frames, args.size)
        frames = rotating if rotating.size else np.arange(args.frames)
        png = written.add(
            comparison_png(
                names["png"], sim.movie[frames].mean(0), fixed[frames].mean(0)
            )
        )
        written.add(
            write_json(
                record,
                {
                    "written_by": WRITER,
                    "version": __version__,
                    "files": {
                        p.name: file_sha256(p)
                        for p in (*paths.values(), derotated, png)
                    },
                },
            )
        )
    disk = disc_mask(sim.sample.shape, sim.center)
    r_raw = _corr(sim.movie[frames].mean(0)[disk], sim.sample[disk])
    r_fix = _corr(fixed[frames].mean(0)[disk], sim.sample[disk])
    print(
        f"simulated {args.frames} frames of {args.size}x{args.size}, "
        f"centre of rotation (row, col) = {sim.center}"
    )
    print(f"raw movie:       {paths['movie']}")
    print(f"per-line angles: {paths['angles']}")
    print(f"derotated movie: {derotated}")
    print(f"mean images:     {png}  (left raw, right derotated; frames that rotate)")
    print(
        f"correlation of the mean image with the true sample (inside the "
        f"scanned disk): raw {r_raw:.3f}, derotated {r_fix:.3f}  "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    return 0


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel().astype(np.float64))[0, 1])
