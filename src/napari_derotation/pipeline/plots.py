"""Debug plots of a pipeline run (matplotlib, the ``plots`` extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..acquisition.signals import AnglesResult
from ..io import atomic_path
from ..io.zarr_store import open_frames
from .dataset import Dataset

__all__ = ["write_debug_plots"]


def write_debug_plots(folder, ds: Dataset, angles: AnglesResult, derotated,
                      center) -> list[Path]:
    """Debug PNGs (needs matplotlib; raises ImportError without it).

    ``rotation_ticks_and_rotation_on.png``, ``rotation_angles.png``,
    ``all_speeds.png``, ``mean_image_with_center.png`` and
    ``derotated_mean_image_with_center.png``. Existing files are replaced,
    nothing else in ``folder`` is touched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name):
        FigureCanvasAgg(fig)
        path = folder / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        written.append(path)

    sig = ds.load_signals()
    n = sig.n_samples
    stride = max(1, n // 20000)
    x = np.arange(0, n, stride)
    fig = Figure(figsize=(12, 4))
    ax = fig.add_subplot()
    ax.plot(x, np.asarray(sig.rotation_on[::stride], np.float64),
            color="navy", lw=0.8, label="rotation on (V)")
    ax.plot(x, angles.angle_at(x) / 90.0, color="black", lw=0.8,
            label="angle / 90 deg")
    ax.scatter(angles.ticks, np.full(len(angles.ticks), -0.5), s=2,
               color="orange", label="ticks")
    ax.set_xlabel("sample")
    ax.legend(loc="upper right")
    ax.set_title("Rotation-on signal, ticks and angle")
    save(fig, "rotation_ticks_and_rotation_on.png")

    fig = Figure(figsize=(12, 4))
    ax = fig.add_subplot()
    ax.plot(angles.angles_per_line, lw=0.8, label="per line")
    rows = len(angles.angles_per_line) // max(len(angles.angles_per_frame), 1)
    ax.plot(np.arange(len(angles.angles_per_frame)) * rows,
            angles.angles_per_frame, ".", ms=3, label="per frame")
    ax.set_xlabel("line")
    ax.set_ylabel("angle (degrees)")
    ax.legend(loc="upper right")
    save(fig, "rotation_angles.png")

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    idx = np.arange(len(angles.direction))
    ax.plot(idx, angles.measured_speed, "o", label="measured from ticks")
    ax.plot(idx, angles.speed, "x", label="stimulus table")
    ax.set_xlabel("rotation")
    ax.set_ylabel("speed (degrees / s)")
    ax.legend()
    save(fig, "all_speeds.png")

    for name, path in (("mean_image_with_center.png", ds.config.movie),
                       ("derotated_mean_image_with_center.png", derotated)):
        if str(path).lower().endswith(".nwb"):
            continue                      # an NWB output is not read back here
        with open_frames(path) as mf:
            total = np.zeros(mf.shape[1:])
            step = max(1, (64 << 20) // max(total.nbytes, 1))
            for a in range(0, mf.shape[0], step):
                total += mf.read(a, min(a + step, mf.shape[0])).sum(axis=0)
            mean = total / mf.shape[0]
        fig = Figure(figsize=(5, 5))
        ax = fig.add_subplot()
        ax.imshow(mean, cmap="gray")
        ax.plot(center[1], center[0], "r+", ms=12)
        ax.set_title(name[:-4].replace("_", " "))
        save(fig, name)
    return written
