"""Cold start: the first derotation after installing (numba compiles the
kernels and writes its cache) against the next process (loads the cache).

Each measurement is a fresh process with ``NUMBA_CACHE_DIR`` pointing at a
new empty folder (cold), then at the same folder again (warm). Times the
import and the first small derotation of each case separately.

    python benchmarks/bench_cold_start.py [--cases uint16:bilinear,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from napari_derotation import derotate
t1 = time.perf_counter()
out = {"import": t1 - t0}
for case in sys.argv[1].split(","):
    dtype, interp = case.split(":")
    t = time.perf_counter()
    derotate(np.zeros((2, 16, 16), dtype), np.linspace(0, 20, 32),
             interpolation=interp)
    out[case] = time.perf_counter() - t
print(json.dumps(out))
"""


def run(cache: str, cases: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    res = subprocess.run(
        [sys.executable, "-c", CHILD, cases],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="uint16:bilinear,float32:bilinear,uint16:cubic")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as cache:
        cold = run(cache, args.cases)
        warm = run(cache, args.cases)
    print(
        "first derotation in a process (seconds); cold = empty numba cache, "
        "warm = the cache the cold run wrote; the machine may be shared"
    )
    print(f"{'step':>18} | {'cold':>7} | {'warm':>7} | {'cold / warm':>11}")
    for key in cold:
        print(
            f"{key:>18} | {cold[key]:7.2f} | {warm[key]:7.2f} | "
            f"{cold[key] / max(warm[key], 1e-9):10.0f}x"
        )
    total_c = sum(cold.values())
    total_w = sum(warm.values())
    print(
        f"{'total':>18} | {total_c:7.2f} | {total_w:7.2f} | "
        f"{total_c / max(total_w, 1e-9):10.0f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
