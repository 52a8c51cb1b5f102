"""Section 1, Data: the movie layer and its per-line rotation angles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.layers import Image
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QPushButton,
)

from ..errors import DerotationError
from ..io import load_angles
from . import _meta, _model
from ._angle_plot import AnglePlot
from ._common import Section, guarded, hint, named, notify, wrapped
from ._workers import Failure, callback_worker


def is_movie_candidate(layer) -> bool:
    """Image layers the user may derotate (not the plugin's own outputs)."""
    if not isinstance(layer, Image):
        return False
    d = _meta.get(layer.metadata)
    return not (d.get("derotated") or d.get("helper"))


def is_movie(layer) -> bool:
    """A candidate that is a movie (frames, rows, cols), not one image."""
    return (
        is_movie_candidate(layer)
        and _model.movie_problem(
            np.shape(_model.scan_frames(layer.data, _meta.get(layer.metadata))),
            bool(layer.rgb),
        )
        is None
    )


class DataSection(Section):
    """Movie combo, angle sources and a plot of the angles."""

    def __init__(self, viewer, session, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.session = session
        self.worker = None
        form = QFormLayout(self)

        self.movie_combo = named(
            QComboBox(), "movie_combo", "The raw movie (frames, rows, cols)"
        )
        form.addRow("Movie", self.movie_combo)

        self.angles_label = wrapped("angles_label", "no angles")
        form.addRow("Angles", self.angles_label)

        buttons = QHBoxLayout()
        self.load_angles_button = named(
            QPushButton("From file…"),
            "load_angles_button",
            "Per-line angles in degrees: .npy, or .csv/.txt with one per line",
        )
        self.signals_button = named(
            QPushButton("From signals…"),
            "signals_button",
            "A dataset folder with the analog signals, the stimulus table "
            "and a config: the angles are computed from them",
        )
        buttons.addWidget(self.load_angles_button)
        buttons.addWidget(self.signals_button)
        form.addRow("", buttons)

        self.plot = AnglePlot()
        form.addRow(self.plot)
        form.addRow(
            hint(
                "Angles beside a movie (NAME_angles.npy/.csv, "
                "angles_per_line.npy, dataset signals) load with it.",
                "data_hint",
            )
        )

        self.movie_combo.currentIndexChanged.connect(self._on_combo)
        self.load_angles_button.clicked.connect(self._choose_angles_file)
        self.signals_button.clicked.connect(self._choose_dataset)
        session.angles_changed.connect(self._show_angles)
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self.refresh)
        viewer.layers.events.moved.connect(self.refresh)
        viewer.dims.events.current_step.connect(self._on_step)
        self.refresh()

    # -- movie combo ------------------------------------------------------
    def candidates(self) -> list:
        return [ly for ly in self.viewer.layers if is_movie_candidate(ly)]

    def refresh(self, event=None) -> None:
        layers = self.candidates()
        current = self.session.layer
        self.movie_combo.blockSignals(True)
        self.movie_combo.clear()
        for layer in layers:
            self.movie_combo.addItem(layer.name)
        self.movie_combo.blockSignals(False)
        if current in layers:
            self.movie_combo.setCurrentIndex(layers.index(current))
        elif layers:
            movies = [ly for ly in layers if is_movie(ly)]
            pick = movies[-1] if movies else layers[-1]
            self.movie_combo.setCurrentIndex(layers.index(pick))
            self.session.set_layer(pick)
        else:
            self.session.set_layer(None)

    def _on_inserted(self, event) -> None:
        layer = event.value
        if is_movie_candidate(layer):
            layer.events.name.connect(self.refresh)
        self.refresh()
        if is_movie(layer):
            self.select(layer)

    def select(self, layer) -> None:
        layers = self.candidates()
        if layer in layers:
            self.movie_combo.setCurrentIndex(layers.index(layer))
            self.session.set_layer(layer)

    def _on_combo(self, index: int) -> None:
        layers = self.candidates()
        if 0 <= index < len(layers):
            self.session.set_layer(layers[index])
            if self.session.problem():
                notify("warning", f"'{layers[index].name}' is {self.session.problem()}")

    # -- angles -----------------------------------------------------------
    def _show_angles(self) -> None:
        found = self.session.angles()
        shape = self.session.shape()
        pending = self.session.pending()
        if self.session.problem():
            self.angles_label.setText(self.session.problem())
            self.angles_label.setToolTip("")
            self.plot.set_angles(None, empty="not a movie")
            return
        if pending and found is None:
            self.angles_label.setText(
                f"computing from the analog signals in {Path(pending).name}"
                f"… (Derotate waits for them)"
            )
            self.angles_label.setToolTip(pending)
            self.plot.set_angles(None)
            return
        if found is None:
            self.angles_label.setText(
                "none: load them from a file or the analog signals"
            )
            self.plot.set_angles(None)
            return
        angles, source = found
        text = f"{angles.size} lines from {_short(source)}"
        beside = _meta.get(self.session.layer.metadata).get("angles_found_by")
        if beside:
            text += f" ({beside})"
        if shape is not None and len(shape) == 3:
            need = shape[0] * shape[1]
            if angles.size < need:
                text += f" — too few: the movie has {need} lines"
        self.angles_label.setText(text)
        self.angles_label.setToolTip(source)
        self.plot.set_angles(angles, shape[1] if shape and len(shape) == 3 else 1)
        self._on_step()

    def _on_step(self, event=None) -> None:
        step = self.viewer.dims.current_step
        self.plot.set_frame(int(step[0]) if len(step) >= 3 else None)

    def _choose_angles_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Per-line angles", "", "Angles (*.npy *.csv *.txt)"
        )
        if path:
            self.load_angles_file(path)

    def load_angles_file(self, path) -> bool:
        """Load per-line angles from a file into the movie's metadata."""
        try:
            angles = load_angles(path)
        except DerotationError as exc:
            notify("error", str(exc))
            return False
        return self.session.set_angles(angles, str(path))

    def _choose_dataset(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Dataset folder (analog signals, stimulus table, config)"
        )
        if folder:
            self.load_dataset(folder)

    def load_dataset(self, folder):
        """Compute the angles from a dataset folder's signals, in a worker.
        Returns the worker (started), or None after a notification."""
        from ._pending import folder_angles

        if self.session.layer is None:
            notify("error", "choose a movie layer first")
            return None

        self.signals_button.setEnabled(False)
        self.worker = callback_worker(
            folder_angles,
            Path(folder),
            desc=f"angles from the signals in {Path(folder).name}",
        )
        self.worker.returned.connect(lambda result: self._on_dataset(result, folder))
        self.worker.finished.connect(
            guarded(lambda: self.signals_button.setEnabled(True))
        )
        self.worker.start()
        return self.worker

    def _on_dataset(self, result, folder) -> None:
        if result is None:  # cancelled
            return
        if isinstance(result, Failure):
            notify("error", result.message)
            return
        self.session.set_angles(
            result.angles_per_line,
            f"analog signals in {folder}",
            getattr(result, "angles_per_frame", None),
        )


def _short(source: str) -> str:
    p = Path(source)
    return p.name if p.suffix else source
