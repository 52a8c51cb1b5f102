"""Figures of docs/science.md, made with the project's own simulator.

    python docs/make_figures.py        # writes docs/images/science_*.png

Needs matplotlib (the ``plots`` extra). Deterministic: same seeds, same PNGs.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from napari_derotation import derotate  # noqa: E402
from napari_derotation.simulate import (  # noqa: E402
    make_cells,
    rotate_by_line,
    sine_trace,
)

OUT = Path(__file__).parent / "images"
SIDE = 128
CENTER = (SIDE // 2 + 6.0, SIDE // 2 - 8.0)      # off the frame's middle


def _panel(ax, img, title, cmap="gray", **kw):
    im = ax.imshow(img, cmap=cmap, interpolation="nearest", **kw)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def _save(fig, name):
    OUT.mkdir(exist_ok=True)
    fig.savefig(OUT / name, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(OUT / name)


def _mark_center(ax, center, color="tab:red"):
    ax.plot(center[1], center[0], "+", color=color, ms=10, mew=2)


def figure_scan(sample):
    """One frame scanned while the sample turns 0.4 degrees per line."""
    angles = 0.4 * np.arange(SIDE)                      # 51 degrees in a frame
    raw = rotate_by_line(sample, angles, CENTER, n_frames=1)[0]
    fixed = derotate(raw[None], angles, CENTER, fill_value=np.nan)[0]
    still = rotate_by_line(sample, np.full(SIDE, angles[SIDE // 2]), CENTER,
                           n_frames=1)[0]
    fig, axes = plt.subplots(1, 4, figsize=(11, 3))
    _panel(axes[0], sample, "the sample (angle 0)")
    _panel(axes[1], still, "a camera at the mid-frame angle")
    _panel(axes[2], raw, "line scan: one angle per line")
    _panel(axes[3], fixed, "derotated line by line")
    for ax in axes:
        _mark_center(ax, CENTER)
    _save(fig, "science_scan.png")


def figure_inverse():
    """For every point of the sample, the (fractional) line that scanned it."""
    angles = 0.4 * np.arange(SIDE)
    line_index = np.repeat(np.arange(SIDE, dtype=np.float64)[:, None], SIDE, 1)
    found = derotate(line_index[None], angles, CENTER, fill_value=np.nan)[0]
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.4))
    _panel(axes[0], line_index, "raw frame: line index", cmap="viridis")
    im = _panel(axes[1], found, "line that scanned each output pixel",
                cmap="viridis")
    axes[1].contour(found, levels=np.arange(8, SIDE, 16), colors="w",
                    linewidths=0.6)
    for ax in axes:
        _mark_center(ax, CENTER)
    fig.colorbar(im, ax=axes, shrink=0.8, label="line (row of the raw frame)")
    _save(fig, "science_inverse.png")


def figure_center(sample):
    """Mean of a full turn derotated about the right and a wrong centre."""
    n = 36
    angles = np.linspace(0, 360, n * SIDE, endpoint=False)
    movie = rotate_by_line(sample, angles, CENTER, n_frames=n)
    wrong = (CENTER[0] - 5, CENTER[1] + 4)
    fig, axes = plt.subplots(1, 3, figsize=(8.5, 3))
    _panel(axes[0], movie.mean(0), "raw: mean over one turn")
    _panel(axes[1], derotate(movie, angles, wrong).mean(0),
           "derotated about a centre 6 px off")
    _panel(axes[2], derotate(movie, angles, CENTER).mean(0),
           "derotated about the true centre")
    _mark_center(axes[0], CENTER)
    _mark_center(axes[1], wrong, "tab:orange")
    _mark_center(axes[2], CENTER)
    _save(fig, "science_center.png")


def figure_plane(sample):
    """A rotation plane tilted 35 degrees: cells trace ellipses."""
    n = 36
    tilt, orient = 35.0, 30.0
    angles = np.linspace(0, 360, n * SIDE, endpoint=False)
    movie = rotate_by_line(sample, angles, CENTER, n_frames=n, plane_tilt=tilt,
                           plane_orientation=orient)
    flat = derotate(movie, angles, CENTER)
    tilted = derotate(movie, angles, CENTER, plane_tilt=tilt,
                      plane_orientation=orient)
    yy, xx = np.mgrid[:SIDE, :SIDE]
    one = np.exp(-((yy - CENTER[0] + 34) ** 2 + (xx - CENTER[1] - 20) ** 2) / 8)
    track = rotate_by_line(one.astype(np.float32), angles, CENTER, n_frames=n,
                           plane_tilt=tilt, plane_orientation=orient)
    fig, axes = plt.subplots(1, 3, figsize=(8.5, 3))
    _panel(axes[0], track.max(0), "one cell over a turn: an ellipse")
    _panel(axes[1], flat.mean(0), "derotated in the imaging plane")
    _panel(axes[2], tilted.mean(0), f"derotated, plane tilted {tilt:g} deg")
    for ax in axes:
        _mark_center(ax, CENTER)
    _save(fig, "science_plane.png")


def figure_trace():
    """A per-line angle trace and how it falls on frames."""
    n_frames = 12
    t = sine_trace(n_frames * SIDE, amplitude=60, cycles=0.5)
    fig, ax = plt.subplots(figsize=(7.5, 2.4))
    ax.plot(np.arange(t.size) / SIDE, t, lw=1)
    for f in range(n_frames + 1):
        ax.axvline(f, color="0.85", lw=0.6, zorder=0)
    ax.set_xlabel("frame (each frame is 128 lines)")
    ax.set_ylabel("angle (degrees)")
    ax.set_title("one angle per scanned line", fontsize=9)
    _save(fig, "science_trace.png")


def main() -> None:
    sample = make_cells((SIDE, SIDE), n_cells=22, seed=3, dtype=np.float32)
    figure_trace()
    figure_scan(sample)
    figure_inverse()
    figure_center(sample)
    figure_plane(sample)


if __name__ == "__main__":
    main()
