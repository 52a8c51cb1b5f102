"""Out-of-core derotation: a movie larger than the memory it may use.

Generates a uint16 TIFF of ``--size-gb`` GB (default 4) chunk by chunk with
the project's simulator (cells scanned while turning as in the recorded real
trace, tiled), never holding it in memory, then runs ``napari-derotation
derotate`` on it in a subprocess and reports the subprocess's peak resident
memory (VmHWM of the child) and the throughput. A few frames of the
output are checked against the in-memory engine. Generated files are deleted
at the end (unless ``--keep``).

    python benchmarks/bench_stream.py [--size-gb 4] [--side 512]
        [--chunk-frames N] [--limit-gb 1] [--dir DIR] [--json OUT.json]

Exit code 1 if the peak RSS exceeds ``--limit-gb``.
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

from napari_derotation import derotate
from napari_derotation.io import TiffStreamWriter, open_movie
from napari_derotation.simulate import make_cells, real_trace, rotate_by_line

MB = 2**20


def generate(path: Path, n_frames: int, side: int, *, step: int = 64) -> np.ndarray:
    """Write the simulated movie chunk by chunk; return its angles."""
    angles = np.resize(real_trace(), n_frames * side)
    sample = make_cells((side, side), seed=0, dtype=np.float32)
    with TiffStreamWriter(path, (n_frames, side, side), np.uint16) as w:
        for s in range(0, n_frames, step):
            e = min(n_frames, s + step)
            chunk = rotate_by_line(sample, angles[s * side : e * side], n_frames=e - s)
            w.write(np.clip(np.rint(chunk), 0, 65535).astype(np.uint16))
            print(f"\rgenerating: {e}/{n_frames} frames", end="", file=sys.stderr)
    print(file=sys.stderr)
    return angles


#: Runs the CLI in a fresh interpreter, then prints its own peak RSS. VmHWM
#: is per address space, new at exec; ``ru_maxrss`` of a child is not (on
#: Linux it starts from the parent's peak at fork).
CHILD = """
import sys
from napari_derotation.cli import main
rc = main(sys.argv[1:])
for line in open("/proc/self/status"):
    if line.startswith(("VmHWM", "VmRSS")):
        print(line.strip())
sys.exit(rc)
"""


def _peaks(stdout: str) -> dict:
    return {
        ln.split(":")[0]: int(ln.split()[1]) * 1024
        for ln in stdout.splitlines()
        if ln.startswith(("VmHWM", "VmRSS"))
    }


def run_cli(movie: Path, angles: Path, out: Path, chunk_frames) -> dict:
    """``napari-derotation derotate`` in a fresh process: time and peak RSS."""
    argv = [
        sys.executable,
        "-c",
        CHILD,
        "derotate",
        str(movie),
        "--angles",
        str(angles),
        "-o",
        str(out),
        "--quiet",
    ]
    if chunk_frames:
        argv += ["--chunk-frames", str(chunk_frames)]
    t0 = time.perf_counter()
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_rss_bytes": _peaks(done.stdout)["VmHWM"]}


def startup_rss() -> int:
    """Peak RSS of a process that only imports the CLI (for reference)."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD],  # usage, exit 2
        capture_output=True,
        text=True,
    )
    return _peaks(done.stdout)["VmHWM"]


def spot_check(movie: Path, out: Path, angles: np.ndarray, side: int) -> None:
    with open_movie(movie) as mi, open_movie(out) as mo:
        n = mi.shape[0]
        for start in (0, n // 3, n - 3):
            raw = mi.read(start, start + 3)[:, 0, 0]
            expected = derotate(raw, angles[start * side : (start + 3) * side])
            np.testing.assert_array_equal(mo.read(start, start + 3)[:, 0, 0], expected)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=4.0)
    ap.add_argument("--side", type=int, default=512, help="frame rows = cols")
    ap.add_argument("--chunk-frames", type=int, default=None)
    ap.add_argument("--limit-gb", type=float, default=1.0)
    ap.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where to write the files (default: a temp folder)",
    )
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    frame_bytes = args.side * args.side * 2
    n_frames = max(1, int(args.size_gb * 2**30 // frame_bytes))
    folder = Path(tempfile.mkdtemp(prefix="bench_stream_", dir=args.dir))
    try:
        movie, out = folder / "movie.tif", folder / "derotated.tif"
        t0 = time.perf_counter()
        angles = generate(movie, n_frames, args.side)
        gen_s = time.perf_counter() - t0
        np.save(folder / "angles.npy", angles)
        movie_bytes = movie.stat().st_size
        res = run_cli(movie, folder / "angles.npy", out, args.chunk_frames)
        spot_check(movie, out, angles, args.side)
        base = startup_rss()
        result = {
            "frames": n_frames,
            "side": args.side,
            "dtype": "uint16",
            "movie_gb": movie_bytes / 2**30,
            "chunk_frames": args.chunk_frames or "default (~64 MB)",
            "generate_seconds": gen_s,
            "derotate_seconds": res["seconds"],
            "frames_per_second": n_frames / res["seconds"],
            "mb_per_second": movie_bytes / MB / res["seconds"],
            "peak_rss_mb": res["peak_rss_bytes"] / MB,
            "startup_rss_mb": base / MB,
            "limit_mb": args.limit_gb * 1024,
        }
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(
        f"movie: {n_frames} frames of {args.side}x{args.side} uint16 = "
        f"{result['movie_gb']:.2f} GB (generated in {gen_s:.0f} s)"
    )
    print(
        f"napari-derotation derotate: {res['seconds']:.1f} s, "
        f"{result['frames_per_second']:.0f} frames/s, "
        f"{result['mb_per_second']:.0f} MB/s (includes the input checksum)"
    )
    print(
        f"peak RSS: {result['peak_rss_mb']:.0f} MB (limit "
        f"{result['limit_mb']:.0f} MB; a process importing the package: "
        f"{result['startup_rss_mb']:.0f} MB)"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["peak_rss_mb"] <= result["limit_mb"] else 1


if __name__ == "__main__":
    sys.exit(main())
