"""The quality report's picture in docs/quality.md, from a simulated case.

    python docs/make_qc_figure.py   # writes docs/images/qc.png

A movie of cells turning back and forth (a sinusoid, 128 x 128, 60
frames, noise), whose angle signal was recorded with a delay of 10 lines,
derotated without the delay: what ``napari-derotation qc`` writes for it.
Needs matplotlib.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import tifffile

from napari_derotation.engine.files import derotate_file
from napari_derotation.quality import report_for_output, report_paths, write_report
from napari_derotation.simulate import simulate_movie

OUT = Path(__file__).parent / "images" / "qc.png"


def main() -> Path:
    sim = simulate_movie((128, 128), 60, trace="sine", center_offset=(3.3, -4.6),
                         noise=5, seed=2, delay=10.0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tifffile.imwrite(tmp / "movie.tif", sim.movie)
        np.save(tmp / "angles.npy", sim.angles_per_line)
        out = tmp / "derotated.tif"
        derotate_file(tmp / "movie.tif", sim.angles_per_line, out,
                      center=sim.center, angles_source=tmp / "angles.npy")
        write_report(report_for_output(out), out)
        shutil.copyfile(report_paths(out)[1], OUT)
    return OUT


if __name__ == "__main__":
    print(main())
