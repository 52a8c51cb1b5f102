"""Debug plots of a pipeline run (matplotlib, the ``plots`` extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..acquisition.signals import AnglesResult
from ..io import atomic_path
from ..io.atomic import make_folder
from ..io.sources import open_movie
from .dataset import Dataset

__all__ = ["write_debug_plots", "PLOT_NAMES"]

#: The files :func:`write_debug_plots` writes (checked before a run writes).
PLOT_NAMES = (
    "rotation_ticks_and_rotation_on.png",
    "rotation_angles.png",
    "all_speeds.png",
    "mean_image_with_center.png",
    "derotated_mean_image_with_center.png",
)


def write_debug_plots(
    folder, ds: Dataset, angles: AnglesResult, derotated, center, on_written=None
) -> list[Path]:
    """Debug PNGs (needs matplotlib; raises ImportError without it).

    ``rotation_ticks_and_rotation_on.png``, ``rotation_angles.png``,
    ``all_speeds.png``, ``mean_image_with_center.png`` and
    ``derotated_mean_image_with_center.png`` (:data:`PLOT_NAMES`). Existing
    files are replaced (``run_dataset`` refuses them first unless asked to
    overwrite); nothing else in ``folder`` is touched. ``on_written(path)``
    is called as each file is complete (an :class:`~..io.OutputSet` removes
    them if a later step fails).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder = Path(folder)
    make_folder(folder)
    written = []

    def save(fig, name):
        FigureCanvasAgg(fig)
        path = folder / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        written.append(path)
        if on_written is not None:
            on_written(path)

    if angles.source == "ticks":  # the tick source's own signals
        sig = ds.load_signals()
        n = sig.n_samples
        stride = max(1, n // 20000)
        x = np.arange(0, n, stride)
        fig = Figure(figsize=(12, 4))
        ax = fig.add_subplot()
        ax.plot(
            x,
            np.asarray(sig.rotation_on[::stride], np.float64),
            color="navy",
            lw=0.8,
            label="rotation on (V)",
        )
        ax.plot(
            x, angles.angle_at(x) / 90.0, color="black", lw=0.8, label="angle / 90 deg"
        )
        ax.scatter(
            angles.ticks,
            np.full(len(angles.ticks), -0.5),
            s=2,
            color="orange",
            label="ticks",
        )
        ax.set_xlabel("sample")
        ax.legend(loc="upper right")
        ax.set_title("Rotation-on signal, ticks and angle")
        save(fig, "rotation_ticks_and_rotation_on.png")

    fig = Figure(figsize=(12, 4))
    ax = fig.add_subplot()
    ax.plot(angles.angles_per_line, lw=0.8, label="per line")
    rows = len(angles.angles_per_line) // max(len(angles.angles_per_frame), 1)
    ax.plot(
        np.arange(len(angles.angles_per_frame)) * rows,
        angles.angles_per_frame,
        ".",
        ms=3,
        label="per frame",
    )
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

    for name, path in (
        ("mean_image_with_center.png", ds.config.movie),
        ("derotated_mean_image_with_center.png", derotated),
    ):
        if str(path).lower().endswith(".nwb"):
            continue  # an NWB output is not read back here
        mean = _mean_image(path, ds.config)
        fig = Figure(figsize=(5, 5))
        ax = fig.add_subplot()
        ax.imshow(mean, cmap="gray")
        ax.plot(center[1], center[0], "r+", ms=12)
        ax.set_title(name[:-4].replace("_", " "))
        save(fig, name)
    return written


def _mean_image(path, cfg) -> np.ndarray:
    """Mean frame of the structural channel's centre plane, chunk by chunk."""
    ch, pl = cfg.structural_channel or 0, cfg.center_plane or 0
    with open_movie(path, channels=cfg.movie_channels, planes=cfg.movie_planes) as src:
        t, z, c, rows, cols = src.shape
        total = np.zeros((rows, cols))
        step = max(1, (64 << 20) // max(z * c * rows * cols * 8, 1))
        for a in range(0, t, step):
            total += src.read(a, min(a + step, t))[:, pl, ch].sum(axis=0)
    return total / t
