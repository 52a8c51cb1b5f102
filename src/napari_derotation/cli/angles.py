"""``napari-derotation angles CONFIG -o angles_per_line.npy``: the angles alone.

The same code as ``run`` and ``batch`` (:meth:`Dataset.compute_angles`, which
dispatches on the config's ``rotation_source``), without the centre or the
derotation: to check a rig's angles before derotating anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..errors import DerotationError

NAME = "angles"
ORDER = 28
HELP = (
    "Compute the per-line angles of one dataset from its config (any "
    "rotation_source: ticks, encoder, position, log, frame_angles) and "
    "write them as a .npy, optionally with a plot; nothing else is done."
)


def add_arguments(p):
    p.add_argument(
        "config", type=Path, help="config file (.yml, .yaml, .toml) or a dataset folder"
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="ANGLES.npy",
        help="where to write the per-line angles (degrees, one per "
        "scanned line; .npy, or .csv/.txt one per line); a "
        "JSON record is written beside it",
    )
    p.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="PNG",
        help="also plot the angles per line and per frame (needs matplotlib)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace existing output files"
    )


def run(args) -> int:
    from ..io import atomic_path, check_not_input, sidecar_path
    from ..io.angles import save_angles
    from ..io.atomic import OutputSet, check_writable, make_folder
    from .run import load_dataset, warnings_to

    if not args.config.exists():
        raise DerotationError(f"config file not found: {args.config}")
    from ..io.angles import ANGLE_SUFFIXES

    if args.output.suffix.lower() not in ANGLE_SUFFIXES:
        raise DerotationError(
            f"--output: expected a {', '.join(ANGLE_SUFFIXES)} file; got "
            f"{args.output.name}"
        )
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise DerotationError(f"--plot: expected a .png file; got {args.plot.name}")
    say = lambda m: print(m, file=sys.stderr)  # noqa: E731
    with warnings_to(say):
        ds = load_dataset(args.config, say)
        cfg = ds.config
        from ..acquisition.angle_sources import angles_input

        inputs = (cfg.movie, cfg.signals, cfg.stimulus, cfg.source, angles_input(cfg))
        planned = [
            p
            for p in (args.output, args.plot, sidecar_path(args.output))
            if p is not None
        ]
        for out in planned:
            check_not_input(out, *inputs)
        with OutputSet() as made:  # a folder made in vain is removed
            made.add_folders(make_folder(args.output.parent))
            check_writable(planned, overwrite=args.overwrite)
        angles = ds.compute_angles()
    png = _plot(angles, cfg.rotation_source) if args.plot else None
    save_angles(args.output, angles.angles_per_line)
    _write_record(args.output, cfg, angles)
    if png is not None:
        with atomic_path(args.plot) as tmp:
            tmp.write_bytes(png)
    a = angles.angles_per_line
    say(
        f"{cfg.rotation_source}: {len(a)} lines, {len(angles.angles_per_frame)} "
        f"frames, {len(angles.rotation_starts)} rotations, angles "
        f"{a.min():.3f} to {a.max():.3f} degrees"
    )
    print(args.output)
    return 0


def _write_record(out, cfg, angles):
    """The record beside the angles: config, source, inputs, summary."""
    from ..io import sidecar_path, write_json
    from ..io.provenance import header
    from ..pipeline.dataset import angles_summary, input_checksums

    rec = {
        **header(),
        "output": str(Path(out).resolve()),
        "config": cfg.to_dict(),
        "config_warnings": list(cfg.warnings),
        "inputs": input_checksums(cfg),
        "signals": angles_summary(angles),
    }
    try:
        write_json(sidecar_path(out), rec)
    except BaseException:
        Path(out).unlink(missing_ok=True)
        raise


def _plot(angles, source) -> bytes:
    """The PNG of the angles per line and per frame (in memory)."""
    import io

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise DerotationError(
            "--plot needs matplotlib (pip install 'napari-derotation[plots]')"
        ) from None
    fig = Figure(figsize=(12, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    lines = angles.angles_per_line
    rows = len(lines) // max(len(angles.angles_per_frame), 1)
    ax.plot(lines, lw=0.8, label="per line")
    ax.plot(
        np.arange(len(angles.angles_per_frame)) * rows,
        angles.angles_per_frame,
        ".",
        ms=3,
        label="per frame",
    )
    ax.set_xlabel("line")
    ax.set_ylabel("angle (degrees)")
    ax.set_title(f"Angles from rotation_source: {source}")
    ax.legend(loc="upper right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
