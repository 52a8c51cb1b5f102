"""The widget exports OME-Zarr, and napari opens it back lazily."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from test_widget import run, small_sim

from napari_derotation._napari._widget import DerotationWidget
from napari_derotation.io.zarr_store import ZarrSource

pytestmark = pytest.mark.gui


def test_export_as_zarr_and_open_it_lazily(make_napari_viewer, qtbot, tmp_path, notes):
    sim = small_sim()
    raw = tmp_path / "raw.tif"
    tifffile.imwrite(raw, sim.movie)
    np.save(tmp_path / "raw_angles.npy", sim.angles_per_line)
    viewer = make_napari_viewer()
    viewer.open(str(raw), plugin="napari-derotation")
    w = DerotationWidget(viewer)
    w.session.set_center(*sim.center)
    run(qtbot, w.derotate.start())
    out = tmp_path / "out"
    out.mkdir()
    w.export.folder_edit.setText(str(out))
    w.export.name_edit.setText("fixed")
    w.export.format_combo.setCurrentIndex(w.export.format_combo.findData("zarr"))
    run(qtbot, w.export.start())
    assert sorted(p.name for p in out.iterdir()) == [
        "fixed.derotation.json",
        "fixed.zarr",
        "fixed_angles_per_line.npy",
        "fixed_frames.csv",
    ]
    derotated = viewer.layers["raw derotated"].data
    src = ZarrSource(out / "fixed.zarr")
    assert src.record["center_row_col"] == list(sim.center)
    np.testing.assert_array_equal(src.read(0, src.shape[0])[:, 0, 0], derotated)
    # exported again under the same name: refused unless asked
    assert w.export.start() is None
    assert any("refusing to replace" in m for m in notes)

    [layer] = viewer.open(str(out / "fixed.zarr"), plugin="napari-derotation")
    assert type(layer.data).__name__ == "Array"  # dask: read lazily
    np.testing.assert_array_equal(np.asarray(layer.data[5]), derotated[5])
