"""Cluster derotation into OME-Zarr: throughput and bytes through the client.

Writes a movie of about ``--gb`` GB (uint16, 512x512, the recorded rotation
trace tiled) and derotates it on a local dask cluster of 1, 2 and 4 worker
processes, once into a TIFF (workers send their chunks back; the client
writes) and once into a Zarr store (workers write their chunks; the client
only hands out frame ranges). The scheduler and the workers run in their own
processes (``SubprocessCluster``), so every byte read or written on a socket
by this process is the client's: counted by wrapping distributed's TCP comm.

    python benchmarks/bench_cluster_zarr.py --gb 2 --workers 1 2 4

Prints one row per (output, workers): seconds, MB/s of movie, and the bytes
through the client (sent, received, and as a share of the movie).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile


class ClientBytes:
    """Bytes this process writes to and reads from TCP comms."""

    def __init__(self):
        from distributed.comm import tcp

        self.sent = self.received = 0
        write, read_bytes = tcp.TCP.write, tcp.read_bytes_rw
        counter = self

        async def counted_write(comm, *args, **kwargs):
            n = await write(comm, *args, **kwargs)
            counter.sent += n
            return n

        async def counted_read_bytes(stream, n):
            counter.received += n
            return await read_bytes(stream, n)

        tcp.TCP.write = counted_write
        tcp.read_bytes_rw = counted_read_bytes

    def reset(self):
        self.sent = self.received = 0


def make_movie(path: Path, gb: float, size: int = 512):
    from napari_derotation.simulate import simulate_movie

    frame_bytes = size * size * 2
    n = int(gb * 2**30 // frame_bytes)
    sim = simulate_movie((size, size), 64, trace="real", seed=0, noise=20)
    reps = -(-n // 64)
    frames = (f for _ in range(reps) for f in sim.movie)
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(
            frames,
            shape=(reps * 64, size, size),
            dtype=sim.movie.dtype,
            photometric="minisblack",
        )
    angles = np.tile(sim.angles_per_line, reps)
    return reps * 64, angles, sim.center


def _warmup():
    from napari_derotation.engine import warmup

    warmup((np.uint16,))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--outputs", nargs="+", default=["zarr", "tif"])
    ap.add_argument("--folder", type=Path, default=None)
    args = ap.parse_args(argv)

    import distributed
    from distributed.deploy.subprocess import SubprocessCluster

    from napari_derotation.engine.cluster import derotate_file_distributed

    folder = Path(tempfile.mkdtemp(dir=args.folder))
    counter = ClientBytes()
    try:
        movie = folder / "movie.tif"
        n, angles, center = make_movie(movie, args.gb)
        warm = folder / "warm.tif"
        _, warm_angles, _ = make_movie(warm, 0.03)
        nbytes = movie.stat().st_size
        print(
            f"movie: {n} frames 512x512 uint16, {nbytes / 2**30:.2f} GiB; "
            f"angles {angles.nbytes / 2**20:.1f} MiB"
        )
        print(
            "output  workers  seconds   MB/s   client sent   received  share of movie"
        )
        for workers in args.workers:
            with (
                SubprocessCluster(
                    n_workers=workers, threads_per_worker=1, dashboard_address=":0"
                ) as cluster,
                distributed.Client(cluster) as client,
            ):
                client.wait_for_workers(workers)
                client.run(_warmup)
                for fmt in args.outputs:  # untimed: imports, compiling
                    derotate_file_distributed(
                        warm,
                        warm_angles,
                        folder / f"warm_out.{fmt}",
                        center,
                        client=client,
                        sidecar=False,
                        overwrite=True,
                    )
                for fmt in args.outputs:
                    out = folder / f"out.{fmt}"
                    counter.reset()
                    t0 = time.perf_counter()
                    derotate_file_distributed(
                        movie, angles, out, center, client=client, sidecar=False
                    )
                    dt = time.perf_counter() - t0
                    total = counter.sent + counter.received
                    print(
                        f"{fmt:6s}  {workers:7d}  {dt:7.1f}  "
                        f"{nbytes / 2**20 / dt:5.0f}   "
                        f"{counter.sent / 2**20:8.1f} MiB "
                        f"{counter.received / 2**20:8.1f} MiB  "
                        f"{100 * total / nbytes:6.2f} %",
                        flush=True,
                    )
                    if out.is_dir():
                        shutil.rmtree(out)
                    else:
                        out.unlink()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
