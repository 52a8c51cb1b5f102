"""Derotation speed on a quiet and on a busy machine, against one thread, a
plain gather and the reference, all measured in one run.

Cases (bilinear unless said, every frame turning, a constant-speed turn):

* ours on 1 thread and on every CPU the process may use, quiet;
* the same while one other CPU-bound process runs (a busy loop started by
  this script);
* a plain ``np.take`` of the same source pixels (the nearest-neighbour
  indices of the same derotation), one thread: the memory-bound floor;
* the reference ``derotation`` 0.1.6 (``derotate_an_image_array_line_by_line``);
* ours with ``--interpolation cubic``.

Prints frames per second, ns per output pixel per core, and the ratios the
issue asks for: busy N threads / quiet 1 thread (goal >= 1), quiet N / 1
(goal >= 1.8 on 2 cores), ours / reference (goal >= 40), ours / gather per
core (goal <= 3), cubic / reference bilinear (goal >= 10).

    python benchmarks/bench_load.py [--size 512] [--frames 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import time

import numpy as np


def make_movie(size, frames):
    from napari_derotation.simulate import (
        constant_speed_trace,
        make_cells,
        rotate_by_line,
    )

    n = frames * size
    angles = constant_speed_trace(n, degrees_per_line=360.0 / n)
    img = make_cells((size, size), dtype=np.float32)
    return rotate_by_line(img, angles, n_frames=frames).astype(np.uint16), angles


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


@contextlib.contextmanager
def competitor():
    """One other CPU-bound process for the duration."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-reference", action="store_true")
    args = ap.parse_args(argv)

    from napari_derotation import derotate
    from napari_derotation.engine import threads

    movie, angles = make_movie(args.size, args.frames)
    nf, rows, cols = movie.shape
    px = nf * rows * cols
    ncpu = threads.available_cpus()
    derotate(movie[:2], angles)  # compile
    derotate(movie[:2], angles, interpolation="cubic")

    def ours(n, interp="bilinear"):
        threads.set_threads(n)
        return best(lambda: derotate(movie, angles, interpolation=interp), args.repeat)

    t = {}
    t["quiet 1"] = ours(1)
    t[f"quiet {ncpu}"] = ours(ncpu)
    t["cubic"] = ours(ncpu, "cubic")
    with competitor():
        t["busy 1"] = ours(1)
        t[f"busy {ncpu}"] = ours(ncpu)
    threads.set_threads(None)

    # the same source pixels, gathered with np.take (one thread)
    index = np.arange(rows * cols, dtype=np.float64).reshape(rows, cols)
    idx = (
        derotate(
            np.broadcast_to(index, movie.shape).copy(), angles, interpolation="nearest"
        )
        .astype(np.intp)
        .reshape(nf, -1)
    )
    flat = movie.reshape(nf, -1)
    dst = np.empty_like(flat)

    def gather():
        for f in range(nf):
            np.take(flat[f], idx[f], out=dst[f])

    t["take 1"] = best(gather, args.repeat)

    if not args.no_reference:
        from derotation.derotate_by_line import (
            derotate_an_image_array_line_by_line as ref,
        )

        def run_ref():
            with contextlib.redirect_stderr(io.StringIO()):
                ref(movie, angles)

        t["reference"] = best(run_ref, 2)

    print(
        f"{nf} frames of {rows}x{cols} uint16, constant-speed turn; best of "
        f"{args.repeat}; {ncpu} CPUs usable; the machine may be shared"
    )
    print(f"{'case':>12} | {'fps':>8} | {'ns/px':>7} | {'ns/px/core':>10}")
    for name, sec in t.items():
        cores = (
            int(name.split()[-1])
            if name.split()[-1].isdigit()
            else (ncpu if name == "cubic" else 1)
        )
        print(
            f"{name:>12} | {nf / sec:8.0f} | {sec / px * 1e9:7.2f} | "
            f"{sec / px * 1e9 * cores:10.2f}"
        )
    q1, qn = t["quiet 1"], t[f"quiet {ncpu}"]
    print(f"quiet {ncpu} threads / 1 thread: {q1 / qn:.2f}x (goal >= 1.8)")
    print(
        f"busy {ncpu} threads / quiet 1 thread: {q1 / t[f'busy {ncpu}']:.2f}x"
        f"; busy {ncpu} / busy 1: {t['busy 1'] / t[f'busy {ncpu}']:.2f}x "
        "(goal >= 1)"
    )
    print(f"1 thread / np.take gather (1 thread): {q1 / t['take 1']:.2f}x (goal <= 3)")
    if "reference" in t:
        r = t["reference"]
        print(
            f"ours {ncpu} threads / reference: {r / qn:.1f}x (goal >= 40); "
            f"busy: {r / t[f'busy {ncpu}']:.1f}x; cubic / reference "
            f"bilinear: {r / t['cubic']:.1f}x (goal >= 10)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
