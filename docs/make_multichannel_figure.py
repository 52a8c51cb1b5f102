"""The README's two-channel figure, made with the project's own simulator.

    python docs/make_multichannel_figure.py   # writes docs/images/two_channels.png

A two-channel movie (a functional channel of cells, green; a structural
channel, magenta) scanned while the sample turns about an off-centre point,
as an ImageJ TCYX hyperstack; derotated with ``napari-derotation derotate``'s
engine, both channels with the same per-line angles. Shown: one frame
mid-turn and the mean over the turn, raw and derotated. Needs matplotlib.
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
    make_texture,
    rotate_by_line,
    sine_trace,
)

OUT = Path(__file__).parent / "images" / "two_channels.png"
SIDE, FRAMES = 128, 60
CENTER = (SIDE // 2 + 5.0, SIDE // 2 - 7.0)


def _composite(green, magenta) -> np.ndarray:
    def norm(a):
        lo, hi = np.percentile(a, (1, 99.5))
        return np.clip((a - lo) / (hi - lo + 1e-9), 0, 1)
    g, m = norm(green), norm(magenta)
    return np.dstack([m, g, m])


def main() -> None:
    angles = sine_trace(FRAMES * SIDE, amplitude=120.0, cycles=1.0)
    cells = make_cells((SIDE, SIDE), seed=1, dtype=np.float32)
    tissue = make_texture((SIDE, SIDE), seed=2, low=0, high=1000)
    raw = np.stack([rotate_by_line(im, angles, CENTER, n_frames=FRAMES)
                    for im in (cells, tissue)], axis=1)        # T, C, Y, X
    fixed = derotate(raw.astype(np.float32), angles, center=CENTER,
                     axes="TCYX")
    mid = FRAMES // 3
    fig, axes = plt.subplots(2, 2, figsize=(6.4, 6.6))
    for col, (movie, title) in enumerate(((raw, "raw"), (fixed, "derotated"))):
        frame = _composite(movie[mid, 0], movie[mid, 1])
        mean = _composite(movie[:, 0].mean(0), movie[:, 1].mean(0))
        for row, (img, what) in enumerate(((frame, f"frame {mid}"),
                                           (mean, "mean over the turn"))):
            ax = axes[row, col]
            ax.imshow(img, interpolation="nearest")
            ax.set_title(f"{title}: {what}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("two channels (green: cells, magenta: structure), "
                 "one set of per-line angles", fontsize=9)
    OUT.parent.mkdir(exist_ok=True)
    fig.savefig(OUT, dpi=110, bbox_inches="tight")
    print(OUT)


if __name__ == "__main__":
    main()
