"""Long work in napari: the activity dock, cancelling, closing, the reader's
background angles, and the errors a user can cause, each through the real
widget in a real viewer (under Xvfb)."""

from __future__ import annotations

import errno
import json
import threading
import time

import numpy as np
import pytest
import tifffile
from napari._qt.widgets.qt_progress_bar import QtLabeledProgressBar
from napari.utils import progress

from napari_derotation._napari._reader import napari_get_reader
from napari_derotation._napari._sample_data import sample_layer
from napari_derotation._napari._widget import KEYS, DerotationWidget
from napari_derotation.io import sidecar_path
from napari_derotation.simulate import simulate_movie

pytestmark = pytest.mark.gui


def long_sim(n=200):
    return simulate_movie((64, 64), n, trace="real", seed=2)


@pytest.fixture
def slow(monkeypatch):
    """Each derotated chunk takes 50 ms, each written one 300 ms, so a run
    lasts long enough to be cancelled or closed midway."""
    from napari_derotation._napari import _model
    from napari_derotation.io import TiffStreamWriter

    derotate_into, write = _model.derotate_into, TiffStreamWriter.write

    def slow_derotate(*args, **kwargs):
        time.sleep(0.05)
        return derotate_into(*args, **kwargs)

    def slow_write(self, frames):
        time.sleep(0.3)
        return write(self, frames)

    monkeypatch.setattr(_model, "derotate_into", slow_derotate)
    monkeypatch.setattr(TiffStreamWriter, "write", slow_write)


def docked(make_napari_viewer, layers=()):
    viewer = make_napari_viewer()
    for data, kwargs, _ in layers:
        viewer.add_image(data, **kwargs)
    widget = DerotationWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Derotation")
    return viewer, widget


def dock_items(viewer) -> list:
    """The progress items in the viewer's activity dock."""
    dialog = viewer.window._qt_window._activity_dialog
    return [
        b
        for b in dialog.findChildren(QtLabeledProgressBar)
        if b.progress in progress._all_instances
    ]


def wait_done(qtbot, worker, timeout=60_000):
    qtbot.waitUntil(lambda: worker.done, timeout=timeout)
    qtbot.wait(50)


def no_traceback(capfd):
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err, (out + err)[-3000:]


def test_derotation_shows_in_the_activity_dock_and_none_after(
    make_napari_viewer, qtbot, slow
):
    viewer, w = docked(make_napari_viewer, [sample_layer(long_sim(), "m")])
    seen = []
    worker = w.derotate.start()

    def sample():  # polled from the event loop while the worker runs
        if not worker.done and worker.pbar.n:
            seen.append(
                (
                    [b.progress.desc for b in dock_items(viewer)],
                    w.derotate.progress.bar.value(),
                    worker.pbar.n,
                )
            )
        return worker.done

    qtbot.waitUntil(sample, timeout=60_000)
    qtbot.wait(50)
    assert len(seen) > 3
    assert all(items == ["derotating m"] for items, *_ in seen)
    # the widget's bar shows the dock item's progress
    assert all(bar == n for _, bar, n in seen), seen
    assert dock_items(viewer) == []
    assert not any(p.desc == "derotating m" for p in progress._all_instances)
    assert "m derotated" in viewer.layers


@pytest.mark.parametrize("where", ["dock", "widget"])
def test_cancel_from_the_dock_or_the_widget_stops_the_work(
    make_napari_viewer, qtbot, slow, where
):
    viewer, w = docked(make_napari_viewer, [sample_layer(long_sim(), "m")])
    worker = w.derotate.start()
    with qtbot.waitSignal(worker.yielded, timeout=30_000):
        pass
    if where == "dock":
        [item] = dock_items(viewer)
        item.cancel_button.click()
    else:
        w.derotate.progress.cancel.click()
    wait_done(qtbot, worker)
    assert worker.abort_requested
    assert "m derotated" not in viewer.layers
    assert "cancelled" in w.derotate.result_label.text()
    assert dock_items(viewer) == []


def test_bayesian_search_and_export_show_in_the_dock(
    make_napari_viewer, qtbot, tmp_path
):
    sim = simulate_movie((64, 64), 30, trace="real", center_offset=(3, -2), seed=2)
    viewer, w = docked(make_napari_viewer, [sample_layer(sim, "m")])
    w.center.calls_spin.setValue(14)
    worker = w.center.start_search()
    assert [p.desc for p in progress._all_instances] == ["Bayesian centre search"]
    wait_done(qtbot, worker)
    assert dock_items(viewer) == []
    wait_done(qtbot, w.derotate.start())
    w.export.folder_edit.setText(str(tmp_path))
    worker = w.export.start()
    assert [p.desc for p in progress._all_instances] == ["exporting m_derotated.tif"]
    wait_done(qtbot, worker)
    assert not list(progress._all_instances)
    assert (tmp_path / "m_derotated.tif").is_file()


def test_closing_the_widget_cancels_its_work(make_napari_viewer, qtbot, slow):
    viewer, w = docked(make_napari_viewer, [sample_layer(long_sim(), "m")])
    worker = w.derotate.start()
    with qtbot.waitSignal(worker.yielded, timeout=30_000):
        pass
    viewer.window.remove_dock_widget(w)  # the dock's close button
    assert w.closed
    wait_done(qtbot, worker)
    qtbot.wait(200)
    assert "m derotated" not in viewer.layers
    assert not viewer.canvas.grid.enabled
    assert dock_items(viewer) == []
    # and its keybindings went with it
    assert all(viewer.bind_key(k, None) is None for k in KEYS)


def test_closing_the_viewer_during_an_export_writes_nothing(
    make_napari_viewer, qtbot, tmp_path, capfd, slow
):
    viewer, w = docked(make_napari_viewer, [sample_layer(long_sim(), "m")])
    wait_done(qtbot, w.derotate.start())
    w.export.folder_edit.setText(str(tmp_path))
    worker = w.export.start()
    with qtbot.waitSignal(worker.yielded, timeout=30_000):
        pass
    viewer.close()
    qtbot.waitUntil(lambda: worker.done, timeout=30_000)
    qtbot.wait(100)
    assert list(tmp_path.iterdir()) == []
    no_traceback(capfd)


def test_opening_a_dataset_returns_at_once_and_derotate_waits(
    make_napari_viewer, qtbot, tmp_path, monkeypatch, notes
):
    from test_reader_writer import make_dataset

    from napari_derotation.pipeline import Dataset

    rec = make_dataset(tmp_path / "exp")
    gate = threading.Event()
    compute = Dataset.compute_angles

    def slow(self, progress=None):
        gate.wait(30)
        return compute(self, progress=progress)

    monkeypatch.setattr(Dataset, "compute_angles", slow)
    viewer, w = docked(make_napari_viewer)
    # the reader returns at once, the angles still being computed
    for _ in range(2):  # the first one imports
        t0 = time.perf_counter()
        [(data, kwargs, _)] = napari_get_reader(str(tmp_path / "exp"))(
            str(tmp_path / "exp")
        )
        took = time.perf_counter() - t0
    assert took < 0.2, took
    assert "angles_pending" in kwargs["metadata"]["derotation"]
    # so opening the folder takes no longer than opening its movie alone
    plain = tmp_path / "plain"
    plain.mkdir()
    tifffile.imwrite(plain / "movie.tif", np.asarray(data))
    np.save(plain / "movie_angles.npy", np.zeros(data.shape[0] * 32))

    def opening(path):
        viewer.layers.clear()
        t0 = time.perf_counter()
        viewer.open(str(path), plugin="napari-derotation")
        return time.perf_counter() - t0

    baseline = min(opening(plain / "movie.tif") for _ in range(2))
    elapsed = min(opening(tmp_path / "exp") for _ in range(2))
    assert elapsed < baseline + 0.2, (elapsed, baseline)
    assert w.session.layer.name == "movie"
    assert "computing" in w.data.angles_label.text()
    assert not w.derotate.derotate_button.isEnabled()
    assert not w.center.bayes_button.isEnabled()
    assert w.derotate.start() is None
    assert any("still being computed" in m for m in notes)
    assert [p.desc for p in progress._all_instances] == [
        "angles from the signals in exp"
    ] * 4  # the four reads above
    gate.set()
    qtbot.waitUntil(
        lambda: w.session.angles() is not None and not progress._all_instances,
        timeout=30_000,
    )
    assert w.session.angles()[0].size >= rec.n_frames * 32
    assert w.derotate.derotate_button.isEnabled()
    assert w.center.bayes_button.isEnabled()
    assert "analog signals" in w.data.angles_label.text()


def test_a_dataset_with_broken_signals_is_one_notification(
    make_napari_viewer, qtbot, tmp_path, notes, capfd
):
    from test_reader_writer import make_dataset

    make_dataset(tmp_path / "exp")
    np.save(tmp_path / "exp" / "signals.npy", np.zeros((4, 500)))
    viewer, w = docked(make_napari_viewer)
    n = len(notes)
    viewer.open(str(tmp_path / "exp"), plugin="napari-derotation")
    qtbot.waitUntil(lambda: not progress._all_instances, timeout=30_000)
    qtbot.wait(50)
    assert w.session.layer.name == "movie" and w.session.angles() is None
    assert len(notes) == n + 1 and "exp" in notes[-1], notes[n:]
    assert "none" in w.data.angles_label.text()
    # the same folder through "From signals…"
    wait_done(qtbot, w.data.load_dataset(tmp_path / "exp"))
    assert len(notes) == n + 2 and "exp" in notes[-1], notes[n:]
    no_traceback(capfd)


def export_ready(make_napari_viewer, qtbot, tmp_path):
    sim = simulate_movie((64, 64), 70, trace="real", seed=2)
    viewer, w = docked(make_napari_viewer, [sample_layer(sim, "m")])
    wait_done(qtbot, w.derotate.start())
    w.export.folder_edit.setText(str(tmp_path))
    return viewer, w


def test_export_into_a_folder_it_cannot_write(
    make_napari_viewer, qtbot, tmp_path, monkeypatch, notes, capfd
):
    viewer, w = export_ready(make_napari_viewer, qtbot, tmp_path)

    def refuse(path, suffix="", **kwargs):
        raise PermissionError(
            errno.EPERM,
            "Operation not permitted",
            f"{path.parent}/.{path.name}.i8pkkni2{suffix}",
        )

    # the folder's permissions say no (as a user, not as root): refused
    # before any work; or the OS refuses when the file is created
    monkeypatch.setattr("os.access", lambda *a, **k: False)
    n = len(notes)
    assert w.export.start() is None
    monkeypatch.undo()
    monkeypatch.setattr("napari_derotation.io.atomic._create_temp", refuse)
    wait_done(qtbot, w.export.start())
    expect = f"cannot write to {tmp_path}: permission denied; choose another folder"
    assert notes[n:] == [expect, expect]
    assert list(tmp_path.iterdir()) == []
    assert w.export.export_button.isEnabled()
    no_traceback(capfd)


def test_export_onto_a_full_disk_leaves_nothing(
    make_napari_viewer, qtbot, tmp_path, monkeypatch, notes, capfd
):
    from napari_derotation.io import TiffStreamWriter

    viewer, w = export_ready(make_napari_viewer, qtbot, tmp_path)
    write = TiffStreamWriter.write

    def full(self, frames):
        if self.written:
            raise OSError(
                errno.ENOSPC,
                "No space left on device",
                str(tmp_path / ".m_derotated.tif.x1.partial"),
            )
        write(self, frames)

    monkeypatch.setattr(TiffStreamWriter, "write", full)
    n = len(notes)
    wait_done(qtbot, w.export.start())
    assert len(notes[n:]) == 1
    assert (
        f"no space left on the device holding {tmp_path}; free some "
        f"space or choose another folder" in notes[n]
    )
    assert ".partial" not in notes[n]
    assert list(tmp_path.iterdir()) == []
    no_traceback(capfd)


def test_missing_short_and_unfitting_angles_are_one_notification_each(
    make_napari_viewer, qtbot, tmp_path, notes, capfd
):
    sim = simulate_movie((32, 32), 10, trace="real", seed=2)
    viewer, w = docked(make_napari_viewer)
    viewer.add_image(sim.movie, name="m")
    cases = {
        "missing.npy": None,
        "short.npy": sim.angles_per_line[:50],
        "other_movie.npy": np.zeros(7),
    }
    for name, values in cases.items():
        if values is not None:
            np.save(tmp_path / name, values)
        n = len(notes)
        assert not w.data.load_angles_file(tmp_path / name)
        assert len(notes) == n + 1, notes[n:]
        assert name in notes[-1] or "has 50 values" in notes[-1], notes[-1]
        assert w.session.angles() is None
    no_traceback(capfd)


def test_odd_angles_warn(make_napari_viewer, qtbot, tmp_path, notes):
    sim = simulate_movie((32, 32), 10, trace="real", seed=2)
    viewer, w = docked(make_napari_viewer)
    viewer.add_image(sim.movie, name="m")
    np.save(tmp_path / "more.npy", np.r_[np.linspace(0, 90, 320), np.zeros(64)])
    n = len(notes)
    assert w.data.load_angles_file(tmp_path / "more.npy")
    assert len(notes) == n + 1
    assert "384 angles for 320 lines" in notes[-1]
    np.save(tmp_path / "still.npy", np.linspace(0, 1.5, 320))
    assert w.data.load_angles_file(tmp_path / "still.npy")
    assert len(notes) == n + 2
    assert "span only 1.5 degrees" in notes[-1]
    np.save(tmp_path / "radians.npy", np.linspace(0, 2 * np.pi, 320))
    assert w.data.load_angles_file(tmp_path / "radians.npy")
    assert len(notes) == n + 3
    assert "look like radians" in notes[-1]
    np.save(tmp_path / "good.npy", np.linspace(0, 90, 320))
    assert w.data.load_angles_file(tmp_path / "good.npy")
    assert len(notes) == n + 3


def assert_whole_view(viewer, qtbot):
    """The camera is where Home (reset view) puts it."""
    qtbot.wait(50)
    center, zoom = tuple(viewer.scene.camera.center), viewer.scene.camera.zoom
    viewer.reset_view()
    assert tuple(viewer.scene.camera.center) == pytest.approx(center)
    assert viewer.scene.camera.zoom == pytest.approx(zoom)


def test_side_by_side_shows_both_movies_whole_and_labelled(make_napari_viewer, qtbot):
    sim = simulate_movie((64, 64), 12, trace="real", seed=2)
    viewer, w = docked(make_napari_viewer, [sample_layer(sim, "m")])
    viewer.scene.camera.zoom = 8.0  # a close-up before the grid opens
    wait_done(qtbot, w.derotate.start())
    assert viewer.canvas.grid.enabled
    assert_whole_view(viewer, qtbot)
    assert viewer.layers["m"].name_overlay.visible
    assert viewer.layers["m derotated"].name_overlay.visible
    w.derotate.grid_checkbox.setChecked(False)
    assert not viewer.layers["m"].name_overlay.visible
    viewer.scene.camera.zoom = 8.0
    w.derotate.grid_checkbox.setChecked(True)
    assert_whole_view(viewer, qtbot)


def test_keybindings_drive_the_main_actions(make_napari_viewer, qtbot):
    sim = simulate_movie((64, 64), 12, trace="real", seed=2)
    viewer, w = docked(make_napari_viewer, [sample_layer(sim, "m")])
    keys = viewer.window._qt_viewer._key_map_handler
    keys.press_key("Shift-C")
    keys.release_key("Shift-C")
    assert w.center.pick_button.isChecked()
    keys.press_key("Shift-C")
    keys.release_key("Shift-C")
    assert not w.center.pick_button.isChecked()
    keys.press_key("Shift-D")
    keys.release_key("Shift-D")
    wait_done(qtbot, w.derotate.worker)
    assert "m derotated" in viewer.layers and viewer.canvas.grid.enabled
    keys.press_key("Shift-G")
    keys.release_key("Shift-G")
    assert not viewer.canvas.grid.enabled
    # and the docs list them
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "napari.md").read_text()
    assert all(f"| `{key}` |" in doc for key in KEYS)


def test_save_selected_with_the_plugin_writes_the_exports_files(
    make_napari_viewer, qtbot, tmp_path
):
    sim = simulate_movie((64, 64), 12, trace="real", seed=2)
    viewer, w = docked(make_napari_viewer, [sample_layer(sim, "m")])
    wait_done(qtbot, w.derotate.start())
    out = viewer.layers["m derotated"]
    viewer.layers.selection = {out}
    # File > Save Selected Layer(s) offers the plugin's writer
    from napari.plugins._npe2 import file_extensions_string_for_layers

    filters, _ = file_extensions_string_for_layers([out])
    assert (
        "napari-derotation TIFF with derotation record (*.tif *.tiff)"
        in filters.split(";;")
    )
    saved = viewer.layers.save(
        str(tmp_path / "saved.tif"), selected=True, plugin="napari-derotation"
    )
    assert sorted(saved) == sorted(
        [str(tmp_path / "saved.tif"), str(sidecar_path(tmp_path / "saved.tif"))]
    )
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "saved.tif"), out.data)
    (tmp_path / "export").mkdir()
    w.export.folder_edit.setText(str(tmp_path / "export"))
    wait_done(qtbot, w.export.start())
    saved = json.loads(sidecar_path(tmp_path / "saved.tif").read_text())
    exported = json.loads(
        sidecar_path(tmp_path / "export" / "m_derotated.tif").read_text()
    )
    assert set(exported) - set(saved) == {"per_frame_csv", "angles_file"}
    for key in (
        "center_row_col",
        "interpolation",
        "fill_value",
        "input",
        "angles",
        "software",
        "source_layer",
    ):
        assert saved[key] == exported[key], key


def test_side_by_side_twice_then_off_puts_every_layer_back(make_napari_viewer, qtbot):
    sim = simulate_movie((64, 64), 12, trace="real", seed=2)
    viewer, w = docked(make_napari_viewer, [sample_layer(sim, "m")])
    qtbot.waitUntil(lambda: "m preview" in viewer.layers)
    before = [ly.name for ly in viewer.layers]
    assert before == ["m", "centre of rotation", "m preview"]
    wait_done(qtbot, w.derotate.start())
    w.session.set_center(33.0, 30.0)
    wait_done(qtbot, w.derotate.start())  # again, grid still on
    assert viewer.canvas.grid.enabled
    assert [ly.name for ly in viewer.layers if ly.visible] == ["m", "m derotated"]
    w.derotate.grid_checkbox.setChecked(False)
    qtbot.waitUntil(lambda: "m preview" in viewer.layers)
    layers = viewer.layers
    assert layers["centre of rotation"].visible and layers["m"].visible
    # the derotated movie would cover the raw one: hidden, under the cross
    assert not layers["m derotated"].visible
    names = [ly.name for ly in layers]
    assert names.index("m") < names.index("centre of rotation")
    assert names.index("m derotated") < names.index("centre of rotation")
    assert not any(ly.name_overlay.visible for ly in layers)
    # napari's own grid button ends Side by side the same way
    w.derotate.grid_checkbox.setChecked(True)
    assert layers["m"].name_overlay.visible
    viewer.canvas.grid.enabled = False
    assert not w.derotate.grid_checkbox.isChecked()
    assert layers["centre of rotation"].visible
    assert not any(ly.name_overlay.visible for ly in layers)
