"""Derotation speed and memory: napari-derotation vs the reference package.

Times ``napari_derotation.derotate`` and the reference's
``derotate_an_image_array_line_by_line`` (``derotation`` 0.1.6, the ``bench``
extra) on the same movies in the same run, and prints a table with the ratios.
Each measurement runs in a fresh subprocess so that peak memory (VmHWM, reset
after the input is made) belongs to the derotation alone.

    python benchmarks/bench_derotate.py [--frames 200] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CASES = [
    (size, dtype, trace)
    for size in (256, 512)
    for dtype in ("uint16", "float32")
    for trace in ("ramp", "real")
]


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def make_movie(size: int, frames: int, dtype: str, trace: str):
    import numpy as np

    from napari_derotation.simulate import (
        constant_speed_trace,
        make_cells,
        real_trace,
        rotate_by_line,
    )

    n = frames * size
    if trace == "ramp":
        angles = constant_speed_trace(n, degrees_per_line=360.0 / n)
    else:
        angles = real_trace()
        if angles.size < n:
            angles = np.concatenate([angles, np.zeros(n - angles.size)])
        # the real trace has 256 lines per frame: at another size, take the
        # same number of frames from the recording (rows of it per frame)
        angles = angles[:n]
    img = make_cells((size, size), dtype=np.float32)
    movie = rotate_by_line(img, angles, n_frames=frames)
    return movie.astype(dtype), angles


def child(
    impl: str, size: int, frames: int, dtype: str, trace: str, repeat: int
) -> dict:
    import contextlib
    import io

    import numpy as np

    movie, angles = make_movie(size, frames, dtype, trace)
    if impl == "ours":
        from napari_derotation import derotate

        derotate(movie[:2], angles)  # compile first

        def run():
            return derotate(movie, angles)
    else:
        from derotation.derotate_by_line import (
            derotate_an_image_array_line_by_line as ref,
        )

        def run():
            with contextlib.redirect_stderr(io.StringIO()):
                return ref(movie, angles)

    times = []
    base = peak = 0
    for _ in range(repeat):
        base = _status("VmRSS")
        _reset_peak()
        t0 = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t0)
        peak = max(peak, _status("VmHWM") - base)
        del out
    copies = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        dup = np.array(movie, copy=True)
        copies.append(time.perf_counter() - t0)
        del dup
    return {
        "seconds": min(times),
        "extra_bytes": peak,
        "movie_bytes": int(np.asarray(movie).nbytes),
        "copy_seconds": min(copies),
    }


def measure(impl, size, frames, dtype, trace, repeat) -> dict:
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); "
        "import bench_derotate as b; "
        f"print(json.dumps(b.child({impl!r}, {size}, {frames}, {dtype!r}, "
        f"{trace!r}, {repeat})))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--quick", action="store_true", help="256x256 only, 50 frames (a smoke run)"
    )
    args = ap.parse_args(argv)
    cases = CASES
    frames = args.frames
    if args.quick:
        cases = [c for c in CASES if c[0] == 256]
        frames = 50
    mb = 2**20
    head = (
        f"{'size':>7} {'dtype':>7} {'angles':>6} | {'ours fps':>9} "
        f"{'ref fps':>8} {'speed-up':>8} {'copy bound':>10} | "
        f"{'ours extra MB':>13} "
        f"{'ref extra MB':>12} {'movie MB':>8} {'ours - out MB':>13}"
    )
    print(
        f"{frames} frames per movie; best of {args.repeat}; "
        f"'extra' = peak resident memory above the input; 'copy bound' = "
        f"the speed-up of a bare copy of the movie into new memory, which "
        f"no derotation returning a new array can beat"
    )
    print(head)
    print("-" * len(head))
    for size, dtype, trace in cases:
        ours = measure("ours", size, frames, dtype, trace, args.repeat)
        ref = measure(
            "reference", size, frames, dtype, trace, 2 if size == 512 else args.repeat
        )
        fps_o = frames / ours["seconds"]
        fps_r = frames / ref["seconds"]
        bound = frames / ours["copy_seconds"] / fps_r
        print(
            f"{size:>4}^2 {dtype:>7} {trace:>6} | {fps_o:9.0f} {fps_r:8.0f} "
            f"{fps_o / fps_r:7.1f}x {bound:9.1f}x | "
            f"{ours['extra_bytes'] / mb:13.1f} "
            f"{ref['extra_bytes'] / mb:12.1f} {ours['movie_bytes'] / mb:8.1f} "
            f"{(ours['extra_bytes'] - ours['movie_bytes']) / mb:13.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
