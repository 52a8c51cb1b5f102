"""The Derotation dock widget, end to end in a napari viewer (under Xvfb)."""

from __future__ import annotations

import threading
import time
from functools import cache

import numpy as np
import pytest
import tifffile
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QPushButton, QWidget

from napari_derotation._napari._sample_data import make_sample_data, sample_layer
from napari_derotation._napari._widget import DerotationWidget
from napari_derotation._napari._workers import steps_worker
from napari_derotation.io import atomic_path
from napari_derotation.simulate import simulate_movie

from helpers import inscribed_disk, pearson

pytestmark = pytest.mark.gui


@cache
def small_sim():
    """128x128, 60 frames, the real trace, centre 6 px down, 9 px left."""
    return simulate_movie(
        (128, 128), 60, trace="real", center_offset=(6, -9), noise=2.0, seed=1
    )


def build(make_napari_viewer, layers):
    viewer = make_napari_viewer()
    for data, kwargs, _ in layers:
        viewer.add_image(data, **kwargs)
    widget = DerotationWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Derotation")
    return viewer, widget


def run(qtbot, worker, timeout=60_000):
    assert worker is not None
    qtbot.waitUntil(lambda: worker.done, timeout=timeout)
    qtbot.wait(20)  # let the returned/finished slots run


def test_dock_widget_resolves_through_the_manifest(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-derotation", "Derotation")
    assert isinstance(widget, DerotationWidget)
    # every button and input is addressable by name
    for w in widget.findChildren(QPushButton):
        assert w.objectName(), w.text()


def test_end_to_end_on_the_sample(make_napari_viewer, qtbot):
    viewer, w = build(make_napari_viewer, make_sample_data())
    raw = viewer.layers["rotating cells"]
    assert w.session.layer is raw
    assert "30720 lines" in w.data.angles_label.text()
    truth = raw.metadata["derotation"]["true_center"]

    # live preview follows the centre point within 200 ms (256x256)
    points = viewer.layers["centre of rotation"]
    qtbot.waitUntil(lambda: f"{raw.name} preview" in viewer.layers)
    preview = viewer.layers[f"{raw.name} preview"]
    times = []
    for target in ([120.0, 110.0], truth):
        t0 = time.perf_counter()
        points.data = np.array([target])
        qtbot.waitUntil(
            lambda t=target: preview.metadata["derotation"]["center"] == list(t),
            timeout=2000,
        )
        times.append(time.perf_counter() - t0)
    assert max(times) < 0.2, times
    assert w.center.row_spin.value() == truth[0]
    assert w.center.col_spin.value() == truth[1]

    # the spin boxes move the point
    w.center.col_spin.setValue(truth[1] + 1)
    assert points.data[0].tolist() == [truth[0], truth[1] + 1]
    w.center.col_spin.setValue(truth[1])

    run(qtbot, w.derotate.start())
    out = viewer.layers["rotating cells derotated"]
    assert out.data.dtype == raw.data.dtype and out.data.shape == raw.data.shape
    assert out.metadata["derotation"]["center"] == truth
    assert viewer.canvas.grid.enabled
    assert f"{raw.name} preview" not in viewer.layers  # not in the grid
    sim_sample = simulate_movie((256, 256), 1, trace="real", seed=1).sample
    rotating = np.flatnonzero(
        np.ptp(raw.metadata["derotation"]["angles_per_line"].reshape(120, 256), axis=1)
        > 0
    )
    mask = inscribed_disk(raw.data.shape[1:], truth)
    r_raw = np.mean([pearson(raw.data[i][mask], sim_sample[mask]) for i in rotating])
    r_out = np.mean([pearson(out.data[i][mask], sim_sample[mask]) for i in rotating])
    assert r_out > 0.95 and r_out > r_raw + 0.3, (r_raw, r_out)

    w.derotate.means_checkbox.setChecked(True)
    s_raw, s_out = w.derotate.agreement
    assert s_out > 0.9 > 0.5 > s_raw
    w.derotate.grid_checkbox.setChecked(False)
    assert not viewer.canvas.grid.enabled
    assert points.visible
    qtbot.waitUntil(lambda: f"{raw.name} preview" in viewer.layers)
    assert w.export.name_edit.text() == "rotating_cells_derotated"


def test_bayesian_search_from_the_widget(make_napari_viewer, qtbot):
    sim = small_sim()
    viewer, w = build(make_napari_viewer, [sample_layer(sim, "small")])
    w.center.calls_spin.setValue(25)
    moves = []
    w.session.center_changed.connect(lambda r, c: moves.append((r, c)))
    worker = w.center.start_search()
    assert not w.center.bayes_progress.isHidden()
    run(qtbot, worker)
    r, c = w.session.center
    assert np.hypot(r - sim.center[0], c - sim.center[1]) < 1.0
    assert len(moves) > 3  # the point followed the search
    assert viewer.layers["centre of rotation"].data[0].tolist() == [r, c]
    assert w.center.bayes_progress.isHidden()


def start_and_cancel(qtbot, start, cancel):
    """Click a section's start then its Cancel from inside the event loop,
    where napari defers the worker's start: the cancel always wins."""
    box = {}
    QTimer.singleShot(0, lambda: (box.setdefault("w", start()), cancel()))
    qtbot.waitUntil(lambda: "w" in box)
    return box["w"]


def test_steps_worker_cancel_mid_run_removes_partial_output(qtbot, tmp_path):
    gate = threading.Event()

    def steps():
        with atomic_path(tmp_path / "out.bin") as tmp:
            tmp.write_bytes(b"half")
            yield 1, 2
            gate.wait(10)
            yield 2, 2
        return "complete"

    worker = steps_worker(steps)
    returned = []
    worker.returned.connect(returned.append)
    with qtbot.waitSignal(worker.yielded, timeout=5000):
        worker.start()
    worker.quit()
    gate.set()
    qtbot.waitUntil(lambda: worker.done, timeout=5000)
    assert returned == []
    assert list(tmp_path.iterdir()) == []


def test_cancel_derotation_leaves_no_layer(make_napari_viewer, qtbot):
    sim = simulate_movie((64, 64), 200, trace="constant", seed=2)
    viewer, w = build(make_napari_viewer, [sample_layer(sim, "long")])
    worker = start_and_cancel(qtbot, w.derotate.start, w.derotate.progress.cancel.click)
    run(qtbot, worker)
    assert "long derotated" not in viewer.layers
    assert "cancelled" in w.derotate.result_label.text()


def test_export_writes_valid_files_and_protects_the_input(
    make_napari_viewer, qtbot, tmp_path, notes
):
    sim = small_sim()
    raw_path = tmp_path / "raw.tif"
    tifffile.imwrite(raw_path, sim.movie)
    np.save(tmp_path / "raw_angles.npy", sim.angles_per_line)
    viewer = make_napari_viewer()
    viewer.open(str(raw_path), plugin="napari-derotation")
    w = DerotationWidget(viewer)
    assert w.session.layer.name == "raw"
    assert w.export.folder_edit.text() == str(tmp_path)
    w.session.set_center(*sim.center)
    run(qtbot, w.derotate.start())

    # over the raw movie: refused, nothing touched
    before = raw_path.read_bytes()
    w.export.name_edit.setText("raw")
    w.export.overwrite_checkbox.setChecked(True)
    assert w.export.start() is None
    assert any("refusing to overwrite" in m for m in notes)
    assert raw_path.read_bytes() == before

    out = tmp_path / "out"
    out.mkdir()
    w.export.folder_edit.setText(str(out))
    w.export.name_edit.setText("fixed")
    w.export.overwrite_checkbox.setChecked(False)
    run(qtbot, w.export.start())
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "fixed.derotation.json",
        "fixed.tif",
        "fixed_angles_per_line.npy",
        "fixed_frames.csv",
    ]
    back = tifffile.imread(out / "fixed.tif")
    np.testing.assert_array_equal(back, viewer.layers["raw derotated"].data)
    import json

    rec = json.loads((out / "fixed.derotation.json").read_text())
    assert rec["center_row_col"] == list(sim.center)
    assert rec["input"]["path"] == str(raw_path.resolve())
    lines = (out / "fixed_frames.csv").read_text().splitlines()
    # the same per-frame table as `run` writes; the angle of each first line
    assert (
        lines[0] == ("frame,rotation_angle,clock,direction,speed,rotation_count")
        and len(lines) == 61
    )
    rows = sim.movie.shape[1]
    assert lines[3] == f"2,{sim.angles_per_line[2 * rows]:.6f},,,,"
    # existing files are not overwritten unless asked
    assert w.export.start() is None
    assert any("refusing to replace" in m for m in notes)


def test_cancel_export_leaves_no_file(make_napari_viewer, qtbot, tmp_path):
    sim = simulate_movie((64, 64), 200, trace="constant", seed=2)
    viewer, w = build(make_napari_viewer, [sample_layer(sim, "long")])
    run(qtbot, w.derotate.start())
    w.export.folder_edit.setText(str(tmp_path))
    worker = start_and_cancel(qtbot, w.export.start, w.export.progress.cancel.click)
    run(qtbot, worker)
    assert list(tmp_path.iterdir()) == []
    assert "cancelled" in w.export.result_label.text()
    assert w.export.export_button.isEnabled()


def test_bad_inputs_are_notifications(make_napari_viewer, qtbot, tmp_path, notes):
    sim = small_sim()
    viewer = make_napari_viewer()
    w = DerotationWidget(viewer)
    # no movie at all
    assert w.derotate.start() is None
    assert any("no movie" in m for m in notes)
    # a movie without angles
    viewer.add_image(sim.movie, name="no angles")
    assert w.session.layer.name == "no angles"
    assert w.derotate.start() is None
    assert any("no rotation angles" in m for m in notes)
    assert w.center.start_search() is None
    # the wrong number of angles: refused, nothing attached
    np.save(tmp_path / "short.npy", sim.angles_per_line[:100])
    assert not w.data.load_angles_file(tmp_path / "short.npy")
    assert any("has 100 values" in m for m in notes)
    assert w.session.angles() is None
    # a file that is not angles
    (tmp_path / "junk.csv").write_text("a,b\nx,y\n")
    assert not w.data.load_angles_file(tmp_path / "junk.csv")
    # the right ones
    np.save(tmp_path / "good.npy", sim.angles_per_line)
    assert w.data.load_angles_file(tmp_path / "good.npy")
    assert "good.npy" in w.data.angles_label.text()
    # a 2-D image
    viewer.add_image(sim.sample, name="flat")
    w.data.select(viewer.layers["flat"])
    n = len(notes)
    assert w.derotate.start() is None
    assert any("a single image: derotation needs a movie" in m for m in notes[n:])
    assert "flat derotated" not in viewer.layers


@pytest.mark.parametrize("rgb", [False, True])
def test_a_single_image_says_so_and_pick_cell_does_not_arm(
    make_napari_viewer, qtbot, notes, rgb
):
    sim = small_sim()
    viewer, w = build(make_napari_viewer, [sample_layer(sim, "small")])
    image = np.stack([sim.sample] * 3, -1).astype(np.uint8) if rgb else sim.sample
    viewer.add_image(image, name="flat", rgb=rgb)
    w.data.select(viewer.layers["flat"])
    said = "a single RGB image" if rgb else "a single image"
    assert w.data.angles_label.text().startswith(said)
    assert "derotation needs a movie" in w.data.angles_label.text()
    assert not w.center.pick_button.isEnabled()
    w.key_pick_cell()  # Shift-C
    assert not w.center.pick_button.isChecked()
    assert w.center._on_pick_click not in viewer.mouse_drag_callbacks
    n = len(notes)
    assert w.derotate.start() is None and w.center.start_search() is None
    assert all("no rotation angles" not in m for m in notes[n:])
    assert any(said in m for m in notes[n:])
    # back to the movie: Pick cell works again
    w.data.select(viewer.layers["small"])
    assert w.center.pick_button.isEnabled()


def test_click_on_a_cell_fits_the_ellipse(make_napari_viewer, qtbot):
    from types import SimpleNamespace

    from scipy import ndimage

    sim = small_sim()
    viewer, w = build(make_napari_viewer, [sample_layer(sim, "small")])
    smooth = ndimage.gaussian_filter(sim.movie[0].astype(float), 2)
    seed = np.unravel_index(np.argmax(smooth), smooth.shape)  # a bright cell
    w.center.pick_button.click()
    assert w.center._on_pick_click in viewer.mouse_drag_callbacks
    click = SimpleNamespace(
        type="mouse_press", position=(0.0, float(seed[0]), float(seed[1]))
    )
    for callback in list(viewer.mouse_drag_callbacks):
        callback(viewer, click)
    assert not w.center.pick_button.isChecked()  # one click only
    assert w.center._on_pick_click not in viewer.mouse_drag_callbacks
    run(qtbot, w.center.fit_worker)
    fit = w.center.last_fit
    assert np.hypot(*(np.subtract(fit.center, sim.center))) < 1.0
    r, c = w.session.center
    assert np.hypot(r - sim.center[0], c - sim.center[1]) < 1.0
    track = viewer.layers["tracked cell"].data
    assert len(track) >= 8
    ellipse = viewer.layers["fitted ellipse"]
    assert ellipse.shape_type == ["polygon"]
    assert "ellipse centre" in w.center.result_label.text()
    # an untilted plane: the small tilt read from noise is not applied
    assert not fit.tilt_significant
    assert "not significant: not applied" in w.center.result_label.text()
    assert w.session.plane == (0.0, 0.0)


def test_angles_from_analog_signals(make_napari_viewer, qtbot, tmp_path):
    from test_reader_writer import make_dataset

    rec = make_dataset(tmp_path / "exp")
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((rec.n_frames, 32, 32), np.uint16), name="mov")
    w = DerotationWidget(viewer)
    assert w.session.angles() is None
    run(qtbot, w.data.load_dataset(tmp_path / "exp"))
    angles, source = w.session.angles()
    assert angles.size >= rec.n_frames * 32
    assert "analog signals" in source
    assert w.data.signals_button.isEnabled()


def test_dragging_the_centre_point_updates_centre_and_preview(
    make_napari_viewer, qtbot
):
    from napari.utils._test_utils import read_only_mouse_event as mouse
    from napari.utils.interactions import (
        mouse_move_callbacks,
        mouse_press_callbacks,
        mouse_release_callbacks,
    )

    sim = small_sim()
    viewer, w = build(make_napari_viewer, [sample_layer(sim, "small")])
    points = viewer.layers["centre of rotation"]
    assert points.mode == "select"
    start = tuple(points.data[0])
    points.selected_data = {0}
    mouse_press_callbacks(points, mouse(type="mouse_press", position=start))
    seen = []
    for pos in ((66.0, 60.0), (68.0, 57.0), (70.0, 55.0)):
        mouse_move_callbacks(
            points, mouse(type="mouse_move", is_dragging=True, position=pos)
        )
        seen.append(w.session.center)
    mouse_release_callbacks(points, mouse(type="mouse_release", position=(70.0, 55.0)))
    assert len(set(seen)) >= 2  # it followed during the drag
    assert w.session.center == (70.0, 55.0)
    assert (w.center.row_spin.value(), w.center.col_spin.value()) == (70, 55)
    qtbot.waitUntil(lambda: "small preview" in viewer.layers, timeout=2000)
    preview = viewer.layers["small preview"]
    qtbot.waitUntil(
        lambda: preview.metadata["derotation"]["center"] == [70.0, 55.0], timeout=2000
    )


def test_a_tilted_rotation_plane_found_by_the_ellipse_is_applied(
    make_napari_viewer, qtbot
):
    from scipy import ndimage

    from napari_derotation import derotate
    from napari_derotation.simulate import make_cells, make_trace, rotate_by_line

    rows, n, center = 128, 60, (70.0, 55.0)
    cells = make_cells((rows, rows), n_cells=14, seed=3, dtype=np.float32)
    angles = make_trace("real", n * rows, rows)
    movie = rotate_by_line(
        cells, angles, center, n_frames=n, plane_tilt=30.0, plane_orientation=20.0
    )
    movie = np.clip(np.rint(movie), 0, 65535).astype(np.uint16)
    layer = (
        movie,
        {"name": "tilted", "metadata": {"derotation": {"angles_per_line": angles}}},
        "image",
    )
    viewer, w = build(make_napari_viewer, [layer])
    smooth = ndimage.gaussian_filter(movie[0].astype(float), 2)
    far = np.hypot(
        *np.subtract(np.indices(smooth.shape), np.reshape(center, (2, 1, 1)))
    )
    smooth[(far < 20) | (far > 50)] = 0  # a cell far enough to show tilt
    seed = np.unravel_index(np.argmax(smooth), smooth.shape)
    run(qtbot, w.center.fit_from_seed(tuple(map(float, seed)), 0))
    tilt, orientation = w.session.plane
    assert abs(tilt - 30.0) < 3.0, w.center.result_label.text()
    assert w.derotate.tilt_spin.value() == pytest.approx(tilt, abs=0.05)
    assert "(applied: see Derotate)" in w.center.result_label.text()
    run(qtbot, w.derotate.start())
    out = viewer.layers["tilted derotated"]
    d = out.metadata["derotation"]
    assert d["plane_tilt"] == tilt and d["plane_orientation"] == orientation
    expect = derotate(
        movie[:4],
        angles[: 4 * rows],
        w.session.center,
        fill_value=float(np.median(movie[0])),
        plane_tilt=tilt,
        plane_orientation=orientation,
    )
    np.testing.assert_array_equal(out.data[:4], expect)


def test_derotate_as_you_scrub_adds_a_lazy_layer_equal_to_the_engine(
    make_napari_viewer, qtbot
):
    import dask.array as da

    from napari_derotation import derotate

    sim = simulate_movie((64, 64), 30, trace="real", center_offset=(3, -2), seed=2)
    meta = {
        "derotation": {"angles_per_line": sim.angles_per_line, "angles_source": "test"}
    }
    viewer, w = build(
        make_napari_viewer, [(sim.movie, {"name": "m", "metadata": meta}, "image")]
    )
    w.center.row_spin.setValue(sim.center[0])
    w.center.col_spin.setValue(sim.center[1])
    layer = w.derotate.start_lazy()
    assert layer is not None and layer.name == "m derotated"
    assert isinstance(layer.data, da.Array)  # nothing computed yet
    fill = layer.metadata["derotation"]["fill_value"]
    expected = derotate(sim.movie, sim.angles_per_line, sim.center, fill_value=fill)
    np.testing.assert_array_equal(np.asarray(layer.data[25]), expected[25])


def test_widget_compiles_the_engine_in_the_background(make_napari_viewer, qtbot):
    sim = simulate_movie((32, 32), 2, trace="constant", dtype=np.int16)
    viewer, w = build(make_napari_viewer, [(sim.movie, {"name": "m"}, "image")])
    assert np.dtype(np.int16) in w._dtypes()
    qtbot.waitUntil(lambda: w._warmup.done, timeout=60_000)


# -- the widget guides to a right result ---------------------------


def shown(make_napari_viewer, qtbot, layers=()):
    """A viewer on screen (1600x1000) with the widget docked before the
    movies are added, as `napari-derotation gui` and the plugin menu do."""
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    widget = DerotationWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Derotation")
    qtbot.wait(300)  # on screen before the movie comes
    for data, kwargs, _ in layers:
        viewer.add_image(data, **kwargs)
    return viewer, widget


def laid_out(qtbot, section):
    """``section``'s visible children as (widget, rect) once laid out."""
    qtbot.wait(150)
    return [
        (c, c.geometry())
        for c in section.findChildren(QWidget)
        if c.parentWidget() is section and c.isVisible()
    ]


def assert_readable(qtbot, section):
    """No two rows of the section overlap, each wrapped label is as tall
    as its text and the section shows all of them."""
    from qtpy.QtWidgets import QLabel

    rows = laid_out(qtbot, section)
    for c, r in rows:
        if isinstance(c, QLabel) and c.wordWrap() and c.text():
            assert r.height() >= c.heightForWidth(r.width()), (
                c.objectName(),
                r.height(),
                c.heightForWidth(r.width()),
            )
        assert r.bottom() < section.height(), (c.objectName(), r, section.height())
    for i, (a, ra) in enumerate(rows):
        for b, rb in rows[i + 1 :]:
            assert not ra.intersects(rb), (
                a.objectName() or type(a),
                ra,
                b.objectName() or type(b),
                rb,
            )


def test_labels_are_never_clipped_or_overlapped(make_napari_viewer, qtbot):
    viewer, w = shown(make_napari_viewer, qtbot, make_sample_data())
    # the Data section: the hint below the angle plot, after the movie came
    assert_readable(qtbot, w.data)
    other = simulate_movie((64, 64), 12, trace="real", seed=2)
    data, kwargs, _ = sample_layer(other, "other")
    kwargs["metadata"]["derotation"]["angles_source"] = (
        "/data/a/long/folder/of/recordings/2024-05-01/mouse-7/"
        "session-3/angles_of_this_movie"
    )
    viewer.add_image(data, **kwargs)
    assert w.session.layer.name == "other"
    assert_readable(qtbot, w.data)
    w.data.select(viewer.layers["rotating cells"])
    assert_readable(qtbot, w.data)
    # Pick cell on an empty spot: the whole message shows
    w.expand("center")
    qtbot.wait(100)
    assert w.data.height() == 0  # the Data section closed
    corner = (3.0, 3.0)
    run(qtbot, w.center.fit_from_seed(corner, 0))
    assert "no bright cell" in w.center.result_label.text()
    assert_readable(qtbot, w.center)


def test_result_labels_are_cleared_when_the_movie_changes(make_napari_viewer, qtbot):
    sim = small_sim()
    viewer, w = build(make_napari_viewer, [sample_layer(sim, "small")])
    w.session.set_center(*sim.center)
    run(qtbot, w.derotate.start())
    w.center.result_label.setText("ellipse centre (70.00 ± 0.1, ...)")
    w.export.result_label.setText("wrote small_derotated.tif ...")
    assert "derotated about (70.00, 55.00)" in w.derotate.result_label.text()
    other = simulate_movie((64, 64), 12, trace="real", seed=2)
    data, kwargs, _ = sample_layer(other, "other")
    viewer.add_image(data, **kwargs)
    assert w.session.layer.name == "other"
    for label in (
        w.derotate.result_label,
        w.center.result_label,
        w.export.result_label,
    ):
        assert label.text() == "", label.objectName()
    assert w.derotate.agreement is None


def test_every_button_and_box_explains_itself(make_napari_viewer):
    from qtpy.QtWidgets import QAbstractButton, QComboBox, QLineEdit

    viewer, w = build(make_napari_viewer, [])
    for cls in (QAbstractButton, QComboBox, QLineEdit):
        for c in w.findChildren(cls):
            if c.objectName().endswith("_section_toggle") or c.objectName().startswith(
                "qt_"
            ):  # a spin box's own
                continue
            assert c.toolTip(), c.objectName()
    for name in ("export_button", "folder_button", "overwrite_checkbox"):
        assert w.findChild(QWidget, name).toolTip()


def doc_object_names() -> list[str]:
    """The object names the table of docs/napari.md lists."""
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "napari.md").read_text()
    table = doc.split("## Controls by name", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\|[^|]*\|[^|]*\| `([a-z_]+)` \|", table, re.M)


def test_every_object_name_in_the_docs_is_found(make_napari_viewer):
    viewer, w = build(make_napari_viewer, [])
    names = doc_object_names()
    assert {"derotate_button", "row_spin", "bayesian_button"} <= set(names)
    for name in names:
        assert w.findChild(QWidget, name) is not None, name
    # buttons by their class too, as the docs' example does
    assert w.findChild(QPushButton, "derotate_button") is w.derotate.derotate_button
    assert w.findChild(QPushButton, "bayesian_button") is w.center.bayes_button
    # one toggle per section, and every named control is in the docs
    toggles = [
        b.objectName()
        for b in w.findChildren(QPushButton)
        if b.objectName().endswith("_section_toggle")
    ]
    assert sorted(toggles) == sorted(
        f"{s}_section_toggle" for s in ("data", "center", "derotate", "export")
    )
    from qtpy.QtWidgets import (
        QAbstractButton,
        QAbstractSpinBox,
        QComboBox,
        QLineEdit,
    )

    controls = {
        c.objectName()
        for cls in (QAbstractButton, QComboBox, QAbstractSpinBox, QLineEdit)
        for c in w.findChildren(cls)
        if c.objectName() and not c.objectName().startswith("qt_")
    }
    assert controls <= set(names), controls - set(names)


def test_angles_beside_a_movie_opened_by_naparis_own_reader(
    make_napari_viewer, qtbot, tmp_path
):
    sim = small_sim()
    tifffile.imwrite(tmp_path / "session.tif", sim.movie)
    np.save(tmp_path / "session_angles.npy", sim.angles_per_line)
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(tmp_path / "session.tif"), plugin="napari")
    assert "derotation" not in layer.metadata  # the builtin reader
    assert layer.source.path == str(tmp_path / "session.tif")
    w = DerotationWidget(viewer)
    angles, source = w.session.angles()
    np.testing.assert_array_equal(angles, sim.angles_per_line)
    assert source == str(tmp_path / "session_angles.npy")
    text = w.data.angles_label.text()
    assert "session_angles.npy" in text and "found beside session.tif" in text
    # and the export knows the raw movie's folder (and never writes over it)
    assert w.export.folder_edit.text() == str(tmp_path)
    # a movie opened after the widget too
    tifffile.imwrite(tmp_path / "later.tif", sim.movie[:30])
    np.save(tmp_path / "angles_per_line.npy", sim.angles_per_line[: 30 * 128])
    [later] = viewer.open(str(tmp_path / "later.tif"), plugin="napari")
    assert w.session.layer is later
    assert w.session.angles()[1] == str(tmp_path / "angles_per_line.npy")


def test_a_wrong_centre_is_pointed_out_and_searched_in_one_click(
    make_napari_viewer, qtbot
):
    from napari_derotation.frames import rotating_frames

    sim = small_sim()
    viewer, w = build(make_napari_viewer, [sample_layer(sim, "small")])
    rotating = set(rotating_frames(sim.angles_per_line, 60, 128).tolist())
    viewer.dims.set_current_step(0, 0)
    assert 0 not in rotating  # a still frame on screen
    # the frame centre, 6 px above and 9 px right of the true one
    run(qtbot, w.derotate.start())
    assert viewer.canvas.grid.enabled
    assert viewer.dims.current_step[0] in rotating  # a frame that rotates
    raw_a, out_a = w.derotate.agreement
    text = w.derotate.result_label.text()
    assert f"frame agreement {out_a:.2f}" in text and "low" in text, text
    assert out_a < 0.5
    assert not w.derotate.search_button.isHidden()
    # the measure Mean images shows
    w.derotate.means_checkbox.setChecked(True)
    assert w.derotate.agreement == pytest.approx((raw_a, out_a), rel=1e-6)
    w.derotate.means_checkbox.setChecked(False)
    # one click starts the centre search
    w.center.calls_spin.setValue(25)
    w.derotate.search_button.click()
    worker = w.center.bayes_worker
    assert worker is not None and w.collapsible_widgets[1].isExpanded()
    run(qtbot, worker)
    r, c = w.session.center
    assert np.hypot(r - sim.center[0], c - sim.center[1]) < 1.0
    # derotated again about it: the agreement is high, no suggestion
    run(qtbot, w.derotate.start())
    assert w.derotate.agreement[1] > 0.9
    assert "low" not in w.derotate.result_label.text()
    assert w.derotate.search_button.isHidden()


def test_find_delay_from_the_widget(make_napari_viewer, qtbot):
    """*Find delay*: the centre and the angle delay in a worker, with
    progress; the delay then reaches the preview and the derotation; a
    cancel keeps the centre and the delay as they were."""
    sim = simulate_movie(
        (96, 96), 40, trace="sine", center_offset=(3, -4), noise=2.0, seed=1, delay=8.0
    )
    viewer, w = build(make_napari_viewer, [sample_layer(sim, "delayed")])
    w.session.set_center(*sim.center)
    worker = w.center.start_delay()
    assert not w.center.delay_progress.isHidden()
    run(qtbot, worker, timeout=180_000)
    assert w.center.delay_progress.isHidden()
    assert w.center.last_delay.delay == pytest.approx(8.0, abs=0.3)
    params = w.session.params()
    assert params.angle_delay == w.center.last_delay.delay
    assert (
        "delay 8." in w.center.result_label.text()
        or "delay 7.9" in w.center.result_label.text()
    )
    assert np.hypot(*np.subtract(w.session.center, sim.center)) < 0.1
    assert w.center.delay_worker not in w.workers()  # done

    w.session.metadata["angle_delay"] = 1.0
    worker = start_and_cancel(qtbot, w.center.start_delay, w.center.cancel_delay)
    run(qtbot, worker)
    assert w.session.params().angle_delay == 1.0
    assert "cancelled" in w.center.result_label.text()
