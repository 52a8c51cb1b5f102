"""Regenerate the napari screenshots in docs/images/ (run under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py

Opens napari with the sample "Rotating cells (synthetic)" and the Derotation
widget, drives each step of the widget and saves a screenshot of the whole
window after each one.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from qtpy.QtWidgets import QApplication
from scipy import ndimage

from napari_derotation.cli.gui import launch

OUT = Path(__file__).resolve().parent / "images"
FRAME = 20          # a frame in the middle of the sample's first rotation


def settle(seconds: float = 0.3) -> None:
    app = QApplication.instance()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def wait(worker, timeout: float = 120) -> None:
    end = time.perf_counter() + timeout
    while not worker.done:
        if time.perf_counter() > end:
            raise TimeoutError("worker did not finish")
        QApplication.instance().processEvents()
        time.sleep(0.01)
    settle()


def shot(viewer, name: str) -> None:
    settle(1.0)             # the sections refit once their labels wrapped
    path = OUT / name
    viewer.screenshot(str(path), canvas_only=False)
    print(f"wrote {path}")


def main() -> int:
    OUT.mkdir(exist_ok=True)
    viewer, w = launch()
    viewer.window.resize(1600, 1000)
    viewer.dims.set_current_step(0, FRAME)
    settle(1.0)
    raw = w.session.layer

    # 1. Data: the sample with its angles
    shot(viewer, "napari_1_data.png")

    # 2. Centre: the frame centre is wrong, the preview is smeared
    w.expand("center")
    w.center.reset_center()
    viewer.reset_view()
    shot(viewer, "napari_2_centre_wrong.png")

    # ... derotated about it anyway: the agreement is low, the widget says
    # so and offers the centre search
    w.expand("derotate")
    wait(w.derotate.start())
    shot(viewer, "napari_9_low_agreement.png")
    w.derotate.set_side_by_side(False)
    w.expand("center")
    viewer.dims.set_current_step(0, FRAME)

    # ... a click on a bright cell: tracked positions, fitted ellipse
    frame = np.asarray(raw.data[FRAME], float)
    smooth = ndimage.gaussian_filter(frame, 2)
    seed = np.unravel_index(np.argmax(smooth), smooth.shape)
    wait(w.center.fit_from_seed((float(seed[0]), float(seed[1])), FRAME))
    viewer.layers.selection.active = viewer.layers["centre of rotation"]
    shot(viewer, "napari_3_centre_ellipse.png")

    # ... or a Bayesian search from the frame centre; while it runs, its
    # item in napari's activity dock
    w.center.reset_center()
    w.center.calls_spin.setValue(30)
    worker = w.center.start_search()
    dialog = viewer.window._qt_window._activity_dialog
    dialog.show()
    while worker.pbar.n < 8 and not worker.done:
        settle(0.05)
    shot(viewer, "napari_8_activity.png")
    wait(worker)
    dialog.hide()
    shot(viewer, "napari_4_centre_bayesian.png")

    # 3. Derotate: raw and derotated side by side, then the mean images
    w.expand("derotate")
    wait(w.derotate.start())      # the grid resets the camera and labels
    shot(viewer, "napari_5_derotated.png")
    w.derotate.means_checkbox.setChecked(True)
    settle()
    shot(viewer, "napari_6_means.png")

    # 4. Export
    w.expand("export")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "exported"
        folder.mkdir()
        w.export.folder_edit.setText(str(folder))
        wait(w.export.start())
        shot(viewer, "napari_7_export.png")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
