"""Simulator speed: ``napari_derotation.simulate.rotate_by_line`` vs the
reference's ``Rotator.rotate_by_line`` on the same input, same run.

    python benchmarks/bench_simulate.py [--frames 20] [--size 256]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument(
        "--tilt",
        type=float,
        default=0.0,
        help="rotation-plane tilt in degrees (out of plane)",
    )
    args = ap.parse_args(argv)

    from derotation.simulate.line_scanning_microscope import Rotator

    from napari_derotation.simulate import (
        constant_speed_trace,
        make_cells,
        rotate_by_line,
    )

    n, size = args.frames, args.size
    img = make_cells((size, size), dtype=np.uint16)
    angles = constant_speed_trace(n * size, degrees_per_line=360 / (n * size))
    stack = np.repeat(img[np.newaxis], n, axis=0)

    kw = dict(interpolation="nearest", plane_tilt=args.tilt)
    rotate_by_line(img, angles[: 2 * size], n_frames=2, **kw)  # compile
    t0 = time.perf_counter()
    rotate_by_line(img, angles, n_frames=n, **kw)
    ours = time.perf_counter() - t0

    ref_kw = {}
    if args.tilt:
        ref_kw = dict(rotation_plane_angle=args.tilt, rotation_plane_orientation=0)
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        Rotator(angles, stack, **ref_kw).rotate_by_line()
    ref = time.perf_counter() - t0
    print(f"{n} frames of {size}x{size}, tilt {args.tilt:g} deg")
    print(f"{'':12} {'frames/s':>10}")
    print(f"{'ours':12} {n / ours:10.1f}")
    print(f"{'reference':12} {n / ref:10.1f}")
    print(f"speed-up {ref / ours:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
