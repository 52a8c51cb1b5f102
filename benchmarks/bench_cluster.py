"""Cluster derotation: speed-up of 2 dask workers over 1 on this machine.

Generates a simulated uint16 movie (``--frames`` frames of ``--side`` squared,
written chunk by chunk), then derotates it with
:func:`napari_derotation.engine.cluster.derotate_file_distributed` on a local
``dask.distributed`` cluster of 1 and then 2 worker processes (one thread
each, numba limited to ``--numba-threads`` threads per worker, so a worker is
one core), and with the single-process streaming engine (numba on every
core) for reference. Cluster start-up and a warm-up run (numba loading its
compiled kernels in each worker) are not timed. Outputs are compared with
each other; files are deleted at the end.

    python benchmarks/bench_cluster.py [--frames 1024] [--side 512]
        [--chunk-frames 32] [--repeat 2] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_derotation.engine.cluster import derotate_file_distributed
from napari_derotation.engine.files import derotate_file
from napari_derotation.io import TiffStreamWriter, open_movie
from napari_derotation.simulate import make_cells, real_trace, rotate_by_line


def generate(path: Path, n_frames: int, side: int) -> np.ndarray:
    angles = np.resize(real_trace(), n_frames * side)
    sample = make_cells((side, side), seed=0, dtype=np.float32)
    with TiffStreamWriter(path, (n_frames, side, side), np.uint16) as w:
        for s in range(0, n_frames, 64):
            e = min(n_frames, s + 64)
            chunk = rotate_by_line(sample, angles[s * side : e * side], n_frames=e - s)
            w.write(np.clip(np.rint(chunk), 0, 65535).astype(np.uint16))
    return angles


def time_cluster(n_workers, movie, angles, out, chunk, repeat, numba_threads):
    import distributed

    old = os.environ.get("NUMBA_NUM_THREADS")
    os.environ["NUMBA_NUM_THREADS"] = str(numba_threads)  # inherited by workers
    try:
        with (
            distributed.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
            ) as c,
            distributed.Client(c) as client,
        ):
            derotate_file_distributed(
                movie, angles, out, client=client, chunk_frames=chunk, sidecar=False
            )  # warm
            best = np.inf
            for _ in range(repeat):
                t0 = time.perf_counter()
                derotate_file_distributed(
                    movie, angles, out, client=client, chunk_frames=chunk, sidecar=False
                )
                best = min(best, time.perf_counter() - t0)
    finally:
        if old is None:
            os.environ.pop("NUMBA_NUM_THREADS", None)
        else:
            os.environ["NUMBA_NUM_THREADS"] = old
    return best


def time_local(movie, angles, out, chunk, repeat):
    derotate_file(movie, angles, out, chunk_frames=chunk, sidecar=False)
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        derotate_file(movie, angles, out, chunk_frames=chunk, sidecar=False)
        best = min(best, time.perf_counter() - t0)
    return best


def same(a: Path, b: Path) -> bool:
    with open_movie(a) as fa, open_movie(b) as fb:
        n = fa.shape[0]
        return fa.shape == fb.shape and all(
            np.array_equal(fa.read(s, min(n, s + 64)), fb.read(s, min(n, s + 64)))
            for s in range(0, n, 64)
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1024)
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--chunk-frames", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument(
        "--numba-threads",
        type=int,
        default=1,
        help="numba threads per worker (default 1: one core each)",
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="bench_cluster_"))
    try:
        movie = folder / "movie.tif"
        angles = generate(movie, args.frames, args.side)
        outs = {k: folder / f"{k}.tif" for k in ("w1", "w2", "local")}
        t1 = time_cluster(
            1,
            movie,
            angles,
            outs["w1"],
            args.chunk_frames,
            args.repeat,
            args.numba_threads,
        )
        t2 = time_cluster(
            2,
            movie,
            angles,
            outs["w2"],
            args.chunk_frames,
            args.repeat,
            args.numba_threads,
        )
        tl = time_local(movie, angles, outs["local"], args.chunk_frames, args.repeat)
        identical = same(outs["w1"], outs["w2"]) and same(outs["w1"], outs["local"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    n = args.frames
    result = {
        "frames": n,
        "side": args.side,
        "chunk_frames": args.chunk_frames,
        "cpus": os.cpu_count(),
        "numba_threads_per_worker": args.numba_threads,
        "seconds_1_worker": t1,
        "seconds_2_workers": t2,
        "seconds_single_process": tl,
        "speedup_2_over_1": t1 / t2,
        "fps_1_worker": n / t1,
        "fps_2_workers": n / t2,
        "fps_single_process": n / tl,
        "outputs_identical": identical,
    }
    print(
        f"{n} frames of {args.side}x{args.side} uint16, chunks of "
        f"{args.chunk_frames} frames, {os.cpu_count()} CPUs, best of "
        f"{args.repeat}"
    )
    print(f"1 worker : {t1:6.2f} s  {n / t1:6.0f} frames/s")
    print(f"2 workers: {t2:6.2f} s  {n / t2:6.0f} frames/s  speed-up {t1 / t2:.2f}x")
    print(f"single process (numba on all cores): {tl:6.2f} s  {n / tl:6.0f} frames/s")
    print(f"outputs identical: {identical}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
