"""suite2p end to end: registration of a derotated movie against suite2p on
the raw movie, both scored against the static truth.

A movie of cells is simulated while the sample turns (``--trace``:
``incremental``, the reference's protocol of 10-degree steps with rests, by
default; ``real``, a recorded trace of whole turns at varying speeds with
rests at 0 degrees; or ``sine``), with noise. Then:

1. ``napari-derotation derotate raw.tif --angles ... --center ... --split
   -o derotated/`` (the command, in a fresh process);
2. suite2p's registration on ``derotated/`` exactly as ``docs/suite2p.md``
   shows (:func:`suite2p_on_split`, suite2p 1.x: ``default_db()``,
   ``default_settings()``, ``run_s2p(db=..., settings=...)``), stopping
   after registration (``settings["run"]["do_detection"] = False``);
3. the same suite2p registration on the raw movie.

For each, the registered mean image (suite2p's ``meanImg``) and every
registered frame are compared with the sample at rest (Pearson r inside the
disc every angle covers). The figure (``--figure PNG``) shows the truth,
both mean images and, for the frame the raw registration leaves worst,
that frame registered from each movie.

suite2p is not a dependency (it brings torch, several GB) and this script
is not run in CI. In a separate environment::

    python -m venv s2pvenv
    s2pvenv/bin/pip install torch suite2p -e .
    s2pvenv/bin/python benchmarks/bench_suite2p.py [--size 256] [--frames 360]
        [--trace incremental|real|sine]
        [--noise 20] [--device cpu] [--figure docs/images/suite2p.png]
        [--json OUT.json] [--dir DIR]

Exit code 1 if the derotated movie's registered mean agrees less with the
truth than the raw movie's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from napari_derotation.simulate import simulate_movie

CLI = "import sys; from napari_derotation.cli import main; sys.exit(main())"


def suite2p_on_split(
    out: Path, *, device: str = "cpu", registration_only: bool = True
) -> list[Path]:
    """suite2p on each plane of a ``--split`` folder, as docs/suite2p.md
    says; returns each plane's suite2p output folder."""
    import suite2p

    info = json.loads((out / "derotation_split.json").read_text())
    folders = []
    for z in range(info["nplanes"]):
        db = suite2p.default_db()
        db["data_path"] = [str(out / f"plane{z}")]
        db["file_list"] = ["chan0.tif"]  # the functional channel
        db["save_path0"] = str(out / f"plane{z}")
        db["nplanes"] = 1
        db["nchannels"] = 1
        settings = suite2p.default_settings()
        settings["torch_device"] = device  # "cuda" on a GPU machine
        if info["fs"]:
            settings["fs"] = info["fs"]
        if registration_only:
            settings["run"]["do_detection"] = False
        suite2p.run_s2p(db=db, settings=settings)
        folders.append(out / f"plane{z}" / "suite2p" / "plane0")
    return folders


def suite2p_on_tiff(tiff: Path, *, fs: float, device: str = "cpu") -> Path:
    """The same registration on one raw TIFF."""
    import suite2p

    db = suite2p.default_db()
    db.update(
        data_path=[str(tiff.parent)],
        file_list=[tiff.name],
        save_path0=str(tiff.parent),
        nplanes=1,
        nchannels=1,
    )
    settings = suite2p.default_settings()
    settings["torch_device"] = device
    settings["fs"] = fs
    settings["run"]["do_detection"] = False
    suite2p.run_s2p(db=db, settings=settings)
    return tiff.parent / "suite2p" / "plane0"


def registered(folder: Path, shape) -> tuple[np.ndarray, np.ndarray]:
    """suite2p's registered mean image and frames (its ``data.bin``)."""
    reg = np.load(folder / "reg_outputs.npy", allow_pickle=True).item()
    frames = np.fromfile(folder / "data.bin", np.int16).reshape(shape)
    return np.asarray(reg["meanImg"], np.float64), frames


def disc(shape, center) -> np.ndarray:
    r = (
        min(center[0], shape[0] - 1 - center[0], center[1], shape[1] - 1 - center[1])
        - 2
    )
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= r * r


def pearson(a, b, mask) -> float:
    return float(
        np.corrcoef(np.asarray(a, np.float64)[mask], np.asarray(b, np.float64)[mask])[
            0, 1
        ]
    )


def best_r(image, truth, mask, reach: int = 3) -> float:
    """r with the truth at the best whole-pixel shift within ``reach`` (the
    reference suite2p registers to may sit a pixel or two off)."""
    return max(
        pearson(np.roll(image, (dy, dx), (0, 1)), truth, mask)
        for dy in range(-reach, reach + 1)
        for dx in range(-reach, reach + 1)
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--frames", type=int, default=360)
    p.add_argument(
        "--trace", default="incremental", choices=("incremental", "real", "sine")
    )
    p.add_argument("--noise", type=float, default=20.0)
    p.add_argument("--fs", type=float, default=30.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--figure", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--dir", type=Path, default=None)
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench_s2p_", dir=args.dir))
    sim = simulate_movie(
        (args.size, args.size),
        args.frames,
        trace=args.trace,
        center_offset=(3, -4),
        noise=args.noise,
        seed=args.seed,
    )
    raw = work / "raw" / "raw.tif"
    raw.parent.mkdir()
    tifffile.imwrite(raw, sim.movie)
    angles = work / "angles.npy"
    np.save(angles, sim.angles_per_line)
    turned = np.ptp(sim.angles_per_line[: args.frames * args.size])
    print(
        f"simulated {args.frames} frames of {args.size}x{args.size}, "
        f"noise {args.noise:g}, {args.trace} trace spanning {turned:.0f} "
        "degrees"
    )

    t0 = time.perf_counter()
    out = work / "derotated"
    subprocess.run(
        [
            sys.executable,
            "-c",
            CLI,
            "derotate",
            str(raw),
            "--angles",
            str(angles),
            "--center",
            *map(str, sim.center),
            "--split",
            "-o",
            str(out),
            "--frame-rate",
            str(args.fs),
            "--quiet",
        ],
        check=True,
    )
    t_derotate = time.perf_counter() - t0
    t0 = time.perf_counter()
    [folder] = suite2p_on_split(out, device=args.device)
    t_s2p_derotated = time.perf_counter() - t0
    t0 = time.perf_counter()
    raw_folder = suite2p_on_tiff(raw, fs=args.fs, device=args.device)
    t_s2p_raw = time.perf_counter() - t0

    shape = sim.movie.shape
    mask = disc(shape[1:], sim.center)
    truth = sim.sample.astype(np.float64)
    rows = {}
    for name, f in (("raw", raw_folder), ("derotated", folder)):
        mean, frames = registered(f, shape)
        per_frame = np.array([pearson(fr, truth, mask) for fr in frames])
        rows[name] = {
            "mean_image_r": best_r(mean, truth, mask),
            "frame_r_median": float(np.median(per_frame)),
            "frame_r_p5": float(np.percentile(per_frame, 5)),
            "mean": mean,
            "frames": frames,
            "per_frame": per_frame,
        }
    plain = tifffile.imread(out / "plane0" / "chan0.tif").mean(0)
    rows["derotated, no suite2p"] = {
        "mean_image_r": best_r(plain, truth, mask),
        "mean": plain,
    }

    print(
        f"\n{'movie':24s} {'mean image r':>13s} {'frame r median':>15s} "
        f"{'frame r p5':>11s}"
    )
    for name, r in rows.items():
        extra = (
            f"{r['frame_r_median']:15.3f} {r['frame_r_p5']:11.3f}"
            if "frame_r_median" in r
            else ""
        )
        print(f"{name:24s} {r['mean_image_r']:13.3f} {extra}")
    print(
        f"\nderotate --split {t_derotate:.1f} s; suite2p registration "
        f"{t_s2p_derotated:.1f} s (derotated), {t_s2p_raw:.1f} s (raw), "
        f"device {args.device}"
    )

    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        worst = int(np.argmin(rows["raw"]["per_frame"]))
        fig, axes = plt.subplots(2, 3, figsize=(10.5, 7.4))
        panels = [
            ("the sample at rest (truth)", truth),
            (
                f"suite2p meanImg, raw movie\nr = {rows['raw']['mean_image_r']:.3f}",
                rows["raw"]["mean"],
            ),
            (
                f"suite2p meanImg after derotate --split\nr = "
                f"{rows['derotated']['mean_image_r']:.3f}",
                rows["derotated"]["mean"],
            ),
            (f"angle during frame {worst}", None),
            (
                f"registered frame {worst}, raw movie\nr = "
                f"{rows['raw']['per_frame'][worst]:.3f}",
                rows["raw"]["frames"][worst],
            ),
            (
                f"registered frame {worst}, derotated\nr = "
                f"{rows['derotated']['per_frame'][worst]:.3f}",
                rows["derotated"]["frames"][worst],
            ),
        ]
        for ax, (title, img) in zip(axes.ravel(), panels, strict=True):
            ax.set_title(title, fontsize=10)
            if img is None:
                n = args.size
                lines = sim.angles_per_line[: args.frames * n]
                ax.plot(np.arange(lines.size) / n, lines, lw=0.8)
                ax.axvspan(worst, worst + 1, color="C3", alpha=0.4)
                ax.set_xlabel("frame")
                ax.set_ylabel("angle (degrees)")
                continue
            lo, hi = np.percentile(img[mask], (1, 99.5))
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
            ax.axis("off")
        fig.suptitle(
            f"suite2p registration ({args.trace} trace, "
            f"{args.frames} frames, noise {args.noise:g}); r: "
            "Pearson with the truth in the disc",
            fontsize=10,
        )
        fig.tight_layout(rect=(0, 0, 1, 0.96))
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.figure, dpi=90)
        print(f"figure: {args.figure}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "size": args.size,
                    "frames": args.frames,
                    "noise": args.noise,
                    "device": args.device,
                    "seconds": {
                        "derotate": t_derotate,
                        "suite2p_derotated": t_s2p_derotated,
                        "suite2p_raw": t_s2p_raw,
                    },
                    "trace": args.trace,
                    **{
                        k: {
                            m: v
                            for m, v in r.items()
                            if m not in ("mean", "frames", "per_frame")
                        }
                        for k, r in rows.items()
                    },
                },
                indent=1,
            )
        )
    ok = rows["derotated"]["mean_image_r"] > rows["raw"]["mean_image_r"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
