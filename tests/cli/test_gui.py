"""``napari-derotation gui``: the main command."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_derotation.cli import gui, main

CALL = "import sys; from napari_derotation.cli import main; sys.exit(main())"


def test_gui_without_display_points_to_demo():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    res = subprocess.run(
        [sys.executable, "-c", CALL, "gui"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == gui.NO_DISPLAY
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0]
    assert "napari-derotation demo" in lines[0]


def test_gui_rejects_a_missing_or_foreign_movie(tmp_path, capsys):
    assert main(["gui", str(tmp_path / "nope.tif")]) == 2
    (tmp_path / "notes.txt").write_text("x")
    assert main(["gui", str(tmp_path / "notes.txt")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "expected a .tif" in err


@pytest.mark.gui
def test_launch_docks_the_widget_with_the_sample_or_a_movie(qtbot, tmp_path):
    from napari_derotation._napari._widget import DerotationWidget

    viewer, widget = gui.launch(show=False)
    try:
        assert isinstance(widget, DerotationWidget)
        assert widget.session.layer.name == "rotating cells"
        assert widget.session.angles() is not None
    finally:
        viewer.close()
    movie = np.zeros((4, 8, 8), np.uint16)
    tifffile.imwrite(tmp_path / "m.tif", movie, photometric="minisblack")
    np.save(tmp_path / "m_angles.npy", np.zeros(32))
    viewer, widget = gui.launch(tmp_path / "m.tif", show=False)
    try:
        assert widget.session.layer.name == "m"
        assert widget.session.angles()[0].size == 32
    finally:
        viewer.close()


@pytest.mark.gui
def test_launch_with_a_dataset_folder(qtbot, tmp_path):
    from test_reader_writer import make_dataset

    rec = make_dataset(tmp_path / "exp")
    viewer, widget = gui.launch(tmp_path / "exp", show=False)
    try:
        assert widget.session.layer.name == "movie"
        qtbot.waitUntil(lambda: widget.session.angles() is not None, timeout=30_000)
        assert widget.session.angles()[0].size >= rec.n_frames * 32
        assert "analog signals" in widget.session.angles()[1]
    finally:
        viewer.close()
