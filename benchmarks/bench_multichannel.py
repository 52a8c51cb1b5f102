"""Peak memory of a 2-channel, 2-plane movie split over files, derotated
file to file.

Writes a uint16 movie of ``--size-gb`` GB (default 4), ``--channels`` 2 and
``--planes`` 2, as ScanImage writes it (one page per channel, plane and time
point; frame data in each page's Software tag; ``rec_00001.tif``, ...) over
``--files`` files (default 8), chunk by chunk, never holding it in memory.
The raw movie is a block of simulated frames (cells scanned while turning as
in the recorded trace) repeated in time, with its angles repeated to match.
Then ``napari-derotation derotate FOLDER`` runs in a fresh process, which
reports its peak resident memory (VmHWM); a few time points of the output
are checked against the in-memory engine. Files are deleted at the end.

    python benchmarks/bench_multichannel.py [--size-gb 4] [--side 512]
        [--files 8] [--limit-mb 512] [--dir DIR] [--json OUT.json]

Exit code 1 if the peak RSS exceeds ``--limit-mb``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from napari_derotation.engine.hyperstack import derotate_hyperstack
from napari_derotation.io.sources import open_movie
from napari_derotation.simulate import make_cells, real_trace, rotate_by_line

MB = 2**20
BLOCK = 32  # time points simulated, then repeated

#: Runs the CLI in a fresh interpreter and prints its own peak RSS (VmHWM is
#: per address space, new at exec).
CHILD = """
import sys
from napari_derotation.cli import main
rc = main(sys.argv[1:])
for line in open("/proc/self/status"):
    if line.startswith(("VmHWM", "VmRSS")):
        print(line.strip())
sys.exit(rc)
"""


def _peak(stdout: str) -> int:
    return next(
        int(ln.split()[1]) * 1024
        for ln in stdout.splitlines()
        if ln.startswith("VmHWM")
    )


def simulate_block(side: int, planes: int, channels: int):
    """``(BLOCK, Z, C, side, side)`` uint16 and its per-line angles."""
    frames = BLOCK * planes
    angles = np.resize(real_trace(), frames * side)
    chans = []
    for c in range(channels):
        sample = make_cells((side, side), seed=c, dtype=np.float32)
        movie = rotate_by_line(sample, angles, n_frames=frames)
        chans.append(
            np.clip(np.rint(movie), 0, 65535)
            .astype(np.uint16)
            .reshape(BLOCK, planes, side, side)
        )
    return np.stack(chans, axis=2), angles


def write_sequence(folder: Path, block, n_time: int, n_files: int) -> list:
    """ScanImage-style files holding ``n_time`` time points in turn."""
    _, z, c = block.shape[:3]
    saved = ";".join(str(i + 1) for i in range(c))
    software = (
        f"SI.hChannels.channelSave = [{saved}]\n"
        f"SI.hStackManager.enable = true\n"
        f"SI.hStackManager.numSlices = {z}\n"
        f"SI.hRoiManager.scanVolumeRate = 15.0"
    )
    per_file = -(-n_time // n_files)
    paths = []
    for f in range(n_files):
        lo, hi = f * per_file, min(n_time, (f + 1) * per_file)
        path = folder / f"rec_{f + 1:05d}.tif"
        with tifffile.TiffWriter(path, bigtiff=True) as tw:
            for t in range(lo, hi):
                for page in block[t % BLOCK].reshape(-1, *block.shape[3:]):
                    tw.write(
                        page,
                        software=software,
                        metadata=None,
                        photometric="minisblack",
                        description=f"frameTimestamps_sec = {t / 15:.6f}",
                    )
        paths.append(path)
        print(f"\rwriting: {f + 1}/{n_files} files", end="", file=sys.stderr)
    print(file=sys.stderr)
    return paths


def run_cli(folder: Path, angles: Path, out: Path) -> tuple[float, int]:
    argv = [
        sys.executable,
        "-c",
        CHILD,
        "derotate",
        str(folder),
        "--angles",
        str(angles),
        "-o",
        str(out),
        "--quiet",
    ]
    t0 = time.perf_counter()
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0, _peak(done.stdout)


def spot_check(out: Path, block, angles_block, n_time: int) -> None:
    """A few time points of the output against the in-memory engine."""
    _, z, _, rows, _ = block.shape
    with open_movie(out) as src:
        assert src.shape == (n_time, *block.shape[1:]), src.shape
        for t in (0, n_time // 3, n_time - 2):
            got = src.read(t, t + 2)
            b = t % BLOCK
            if b + 2 > BLOCK:
                continue
            ref = derotate_hyperstack(
                block[b : b + 2], angles_block[b * z * rows : (b + 2) * z * rows]
            )
            np.testing.assert_array_equal(got, ref)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=4.0)
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--planes", type=int, default=2)
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--limit-mb", type=float, default=512)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    z, c, side = args.planes, args.channels, args.side
    n_time = max(BLOCK, int(args.size_gb * 2**30 // (z * c * side * side * 2)))
    folder = Path(tempfile.mkdtemp(prefix="bench_multichannel_", dir=args.dir))
    try:
        block, angles_block = simulate_block(side, z, c)
        raw = folder / "raw"
        raw.mkdir()
        t0 = time.perf_counter()
        files = write_sequence(raw, block, n_time, args.files)
        gen_s = time.perf_counter() - t0
        reps = -(-n_time // BLOCK)
        np.save(folder / "angles.npy", np.tile(angles_block, reps))
        movie_bytes = sum(p.stat().st_size for p in files)
        seconds, peak = run_cli(raw, folder / "angles.npy", folder / "derotated.tif")
        spot_check(folder / "derotated.tif", block, angles_block, n_time)
        result = {
            "time_points": n_time,
            "planes": z,
            "channels": c,
            "side": side,
            "files": len(files),
            "movie_gb": movie_bytes / 2**30,
            "write_seconds": gen_s,
            "derotate_seconds": seconds,
            "mb_per_second": movie_bytes / MB / seconds,
            "peak_rss_mb": peak / MB,
            "limit_mb": args.limit_mb,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"movie: {n_time} time points x {z} planes x {c} channels of "
        f"{side}x{side} uint16 = {result['movie_gb']:.2f} GB in "
        f"{len(files)} files"
    )
    print(
        f"napari-derotation derotate FOLDER: {seconds:.1f} s, "
        f"{result['mb_per_second']:.0f} MB/s (includes the inputs' "
        f"checksums)"
    )
    print(f"peak RSS: {result['peak_rss_mb']:.0f} MB (limit {args.limit_mb:.0f} MB)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["peak_rss_mb"] <= args.limit_mb else 1


if __name__ == "__main__":
    sys.exit(main())
