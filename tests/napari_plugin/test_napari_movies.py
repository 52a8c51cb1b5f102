"""napari: a two-channel, two-plane movie opens as one layer per channel
with the plane as a slider; the widget derotates and exports every channel."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_derotation import derotate
from napari_derotation._napari._widget import DerotationWidget
from napari_derotation.io import sidecar_path

from helpers import two_channel_movie, write_scanimage

pytestmark = pytest.mark.gui

CENTER = (12.0, 10.0)


def run(qtbot, worker, timeout=60_000):
    assert worker is not None
    qtbot.waitUntil(lambda: worker.done, timeout=timeout)
    qtbot.wait(20)


def test_reader_one_layer_per_channel_planes_as_slider(make_napari_viewer, tmp_path):
    m5, angles = two_channel_movie(t=6, z=2, c=2)
    raw = tmp_path / "seq"
    raw.mkdir()
    for i in range(3):
        write_scanimage(raw / f"rec_{i + 1:05d}.tif", m5[2 * i : 2 * i + 2])
    np.save(raw / "angles_per_line.npy", angles)
    viewer = make_napari_viewer()
    layers = viewer.open(str(raw), plugin="napari-derotation")
    assert [ly.name for ly in layers] == ["rec channel 1", "rec channel 2"]
    for c, ly in enumerate(layers):
        assert ly.data.shape == (6, 2, *m5.shape[3:])
        np.testing.assert_array_equal(np.asarray(ly.data), m5[:, :, c])
        d = ly.metadata["derotation"]
        assert (d["channel"], d["channels"], d["planes"]) == (c, 2, 2)
        np.testing.assert_array_equal(d["angles_per_line"], angles)
    assert viewer.dims.ndim == 4  # time and plane sliders


def test_widget_derotates_and_exports_all_channels(make_napari_viewer, qtbot, tmp_path):
    m5, angles = two_channel_movie(t=6, z=2, c=2)
    tifffile.imwrite(tmp_path / "two.tif", m5, imagej=True, metadata={"axes": "TZCYX"})
    np.save(tmp_path / "two_angles.npy", angles)
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "two.tif"), plugin="napari-derotation")
    w = DerotationWidget(viewer)
    w.session.set_layer(viewer.layers["two ch0"])
    w.session.set_center(*CENTER)
    w.derotate.fill_combo.setCurrentText("zero")
    run(qtbot, w.derotate.start())
    ref = derotate(m5, angles, center=CENTER, axes="TZCYX")
    for c in range(2):
        out = viewer.layers[f"two ch{c} derotated"]
        assert out.data.shape == (6, 2, *m5.shape[3:])
        np.testing.assert_array_equal(out.data, ref[:, :, c])

    folder = tmp_path / "out"
    folder.mkdir()
    w.export.folder_edit.setText(str(folder))
    w.export.name_edit.setText("fixed")
    run(qtbot, w.export.start())
    with tifffile.TiffFile(folder / "fixed.tif") as tif:
        assert tif.series[0].axes == "TZCYX"
        np.testing.assert_array_equal(tif.asarray(), ref)
    rec = json.loads(sidecar_path(folder / "fixed.tif").read_text())
    assert rec["axes"] == "TZCYX" and rec["angles"]["used"] == angles.size
    assert len((folder / "fixed_frames.csv").read_text().splitlines()) == 13


def two_channel_file(folder, t=8):
    """``twoch.tif``: a TCYX ImageJ hyperstack whose channels have
    different backgrounds (channel 1 about 4x channel 0), with its angles."""
    m5, angles = two_channel_movie(t=t, z=1, c=2, rows=32, cols=28)
    movie = m5[:, 0].copy()
    movie[:, 1] = movie[:, 1] * 4 + 20
    tifffile.imwrite(
        folder / "twoch.tif", movie, imagej=True, metadata={"axes": "TCYX"}
    )
    np.save(folder / "twoch_angles.npy", angles)
    return movie, angles


def test_two_channels_each_filled_with_its_own_background(
    make_napari_viewer, qtbot, tmp_path
):
    movie, angles = two_channel_file(tmp_path)
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "twoch.tif"), plugin="napari-derotation")
    w = DerotationWidget(viewer)
    assert w.session.layer.name == "twoch ch1"
    w.session.set_center(*CENTER)
    run(qtbot, w.derotate.start())  # Fill: background (the default)
    fills = [float(np.median(movie[0, c])) for c in range(2)]
    assert fills[1] > 2 * fills[0]
    for c in range(2):
        out = viewer.layers[f"twoch ch{c} derotated"]
        d = out.metadata["derotation"]
        assert d["fill_value"] == fills[c]
        assert d["fill_values"] == fills
        np.testing.assert_array_equal(
            out.data, derotate(movie[:, c], angles, center=CENTER, fill_value=fills[c])
        )
    # the export records every channel's fill
    (tmp_path / "out").mkdir()
    w.export.folder_edit.setText(str(tmp_path / "out"))
    run(qtbot, w.export.start())
    rec = json.loads(sidecar_path(tmp_path / "out" / "twoch_derotated.tif").read_text())
    assert rec["fill_value"] == fills


def test_two_channels_side_by_side_named_after_the_movie_and_reopened(
    make_napari_viewer, qtbot, tmp_path
):
    two_channel_file(tmp_path)
    viewer = make_napari_viewer()
    raw = viewer.open(str(tmp_path / "twoch.tif"), plugin="napari-derotation")
    w = DerotationWidget(viewer)
    w.session.set_center(*CENTER)
    run(qtbot, w.derotate.start())
    outs = [viewer.layers[f"twoch ch{c} derotated"] for c in range(2)]
    # every channel of both movies, the input's colours and blending
    assert viewer.canvas.grid.enabled
    visible = [ly for ly in viewer.layers if ly.visible]
    assert visible == [*raw, *outs]
    assert viewer.canvas.grid.stride == 2  # one cell per movie
    assert viewer.canvas.grid.actual_shape(viewer.layers) == (1, 2)
    for a, b in zip(raw, outs, strict=True):
        assert b.colormap.name == a.colormap.name
        assert b.blending == a.blending
        assert b.contrast_limits == a.contrast_limits
        assert a.name_overlay.visible and b.name_overlay.visible
    # the export holds both channels: named after the movie
    assert w.export.name_edit.text() == "twoch_derotated"
    (tmp_path / "out").mkdir()
    w.export.folder_edit.setText(str(tmp_path / "out"))
    run(qtbot, w.export.start())
    # reopened, the export is a derotated movie with its record: not
    # offered as a raw movie, and the widget stays on the raw one
    back = viewer.open(
        str(tmp_path / "out" / "twoch_derotated.tif"), plugin="napari-derotation"
    )
    assert len(back) == 2
    for ly in back:
        d = ly.metadata["derotation"]
        assert d["derotated"] and d["record"]["software"] == "napari-derotation"
        assert d["center"] == list(CENTER)
    assert w.session.layer is raw[1]
    offered = [
        w.data.movie_combo.itemText(i) for i in range(w.data.movie_combo.count())
    ]
    assert offered == ["twoch ch0", "twoch ch1"]
