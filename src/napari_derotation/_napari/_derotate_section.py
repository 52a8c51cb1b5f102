"""Section 3, Derotate: the whole movie in a worker, raw and derotated side
by side, and a comparison of their mean images."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
)

from ..frames import rotating_frames
from . import _meta, _model
from ._common import ProgressRow, Section, guarded, named, notify
from ._workers import Failure, steps_worker

FILL_MODES = {"background (median of frame 0)": "background", "zero": "zero"}


class DerotateSection(Section):
    """Derotate button with progress/cancel, side-by-side and mean views."""

    def __init__(self, viewer, session, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.session = session
        self.worker = None
        self._hidden_for_grid: list = []
        self.agreement: tuple[float, float] | None = None
        form = QFormLayout(self)

        self.interp_combo = named(QComboBox(), "interpolation_combo",
                                  "How pixels between samples are read")
        self.interp_combo.addItems(["bilinear", "nearest", "cubic"])
        form.addRow("Interpolation", self.interp_combo)
        self.fill_combo = named(QComboBox(), "fill_combo",
                                "Value of pixels no scanned line covered")
        self.fill_combo.addItems(list(FILL_MODES))
        form.addRow("Fill", self.fill_combo)

        plane = QHBoxLayout()
        self.tilt_spin = named(QDoubleSpinBox(), "tilt_spin",
                               "Tilt of the rotation plane (degrees); 0 when "
                               "the sample turns in the imaging plane. The "
                               "ellipse fit sets it when it finds one.")
        self.tilt_spin.setRange(0, 80)
        self.orient_spin = named(QDoubleSpinBox(), "orientation_spin",
                                 "Direction of the tilt axis (degrees)")
        self.orient_spin.setRange(-90, 90)
        for label, spin in (("tilt", self.tilt_spin),
                            ("axis", self.orient_spin)):
            spin.setDecimals(1)
            spin.setSuffix("°")
            spin.setKeyboardTracking(False)
            plane.addWidget(QLabel(label))
            plane.addWidget(spin, 1)
        form.addRow("Plane", plane)

        self.derotate_button = named(QPushButton("Derotate"),
                                     "derotate_button",
                                     "Derotate every frame about the centre")
        self.lazy_button = named(
            QPushButton("Derotate as you scrub"), "lazy_button",
            "Add the derotated movie at once, computing each frame when it is "
            "shown (for movies too large to derotate in memory)")
        buttons = QHBoxLayout()
        buttons.addWidget(self.derotate_button, 1)
        buttons.addWidget(self.lazy_button, 1)
        form.addRow(buttons)
        self.progress = ProgressRow("derotate")
        form.addRow(self.progress)

        views = QHBoxLayout()
        self.grid_checkbox = named(QCheckBox("Side by side"), "grid_checkbox",
                                   "Raw and derotated in a grid, one time "
                                   "slider for both")
        self.means_checkbox = named(QCheckBox("Mean images"),
                                    "means_checkbox",
                                    "Mean of the rotating frames, raw and "
                                    "derotated")
        views.addWidget(self.grid_checkbox)
        views.addWidget(self.means_checkbox)
        form.addRow(views)
        self.result_label = named(QLabel(""), "derotate_result_label")
        self.result_label.setWordWrap(True)
        form.addRow(self.result_label)

        self.derotate_button.clicked.connect(self.start)
        self.lazy_button.clicked.connect(self.start_lazy)
        self.tilt_spin.valueChanged.connect(self._on_plane_spin)
        self.orient_spin.valueChanged.connect(self._on_plane_spin)
        session.plane_changed.connect(self._on_plane)
        self.progress.cancel.clicked.connect(self.cancel)
        self.grid_checkbox.toggled.connect(self.set_side_by_side)
        self.means_checkbox.toggled.connect(self.show_means)
        session.angles_changed.connect(self._on_angles)
        viewer.canvas.grid.events.enabled.connect(self._on_grid)

    def _on_angles(self) -> None:
        """Derotate waits while the angles are being computed."""
        busy = self.worker is not None and not self.worker.done
        wait = bool(self.session.pending())
        self.derotate_button.setEnabled(not wait and not busy)
        self.lazy_button.setEnabled(not wait)

    def _on_grid(self, event=None) -> None:
        """Whenever the grid turns on or off, show every cell whole (napari
        keeps the camera of the single view otherwise), each labelled with
        its layer's name: the raw movie and "… derotated"."""
        on = self.viewer.canvas.grid.enabled
        keep = self._grid_names()
        for ly in self.viewer.layers:
            if ly.name in keep:
                ly.name_overlay.visible = on
        # once napari has laid the grid out (and the preview has gone)
        QTimer.singleShot(0, guarded(self.viewer.reset_view))

    def _grid_names(self) -> set:
        return {self.session.name(), self.output_name(),
                f"{self.session.name()} mean", f"{self.output_name()} mean"}

    def _on_plane_spin(self, _value=None) -> None:
        self.session.set_plane(self.tilt_spin.value(), self.orient_spin.value())

    def _on_plane(self, tilt: float, orientation: float) -> None:
        for spin, value in ((self.tilt_spin, tilt),
                            (self.orient_spin, orientation)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)

    def output_name(self) -> str:
        return f"{self.session.name()} derotated"

    def _layer(self, name):
        return next((ly for ly in self.viewer.layers if ly.name == name), None)

    def derotated_layer(self):
        return self._layer(self.output_name())

    # -- run ---------------------------------------------------------------
    def _inputs(self):
        """``(data, angles, params)`` with this section's interpolation and
        fill, or None after a notification."""
        found = self.session.inputs()
        if found is None:
            return None
        data, angles, params = found
        fill = _model.fill_value(data, FILL_MODES[self.fill_combo.currentText()])
        return data, angles, params.replace(
            interpolation=self.interp_combo.currentText(), fill_value=fill)

    def start(self):
        """Derotate the movie in a worker; returns it (started) or None
        after a notification."""
        inputs = self._inputs()
        if inputs is None:
            return None
        data, angles, params = inputs
        group = self.channel_layers()
        self.derotate_button.setEnabled(False)
        self.progress.start(data.shape[0] * len(group))
        self.result_label.setText("derotating…")
        layer = self.session.layer
        desc = f"derotating {layer.name}"
        if len(group) == 1:
            self.worker = steps_worker(_model.derotate_steps, data, angles,
                                       params, desc=desc)
        else:        # every channel of the movie, with the same angles
            datas = [_model.scan_frames(ly.data, _meta.get(ly.metadata))
                     for ly in group]
            self.worker = steps_worker(_model.derotate_group_steps, datas,
                                       angles, params, desc=desc)
        return self.progress.run(
            self.worker, on_done=lambda out: self._on_done(out, layer, params,
                                                           group),
            on_finished=self._on_finished, label=self.result_label,
            cancelled="cancelled; nothing was added")

    def start_lazy(self):
        """Add the derotated movie as a dask array: nothing is computed until
        a frame is shown, so it appears at once whatever the movie's size.
        Returns the layer, or None after a notification."""
        inputs = self._inputs()
        if inputs is None:
            return None
        from ..engine.lazy import derotate_lazy
        from ..errors import DerotationError

        data, angles, params = inputs
        try:
            lazies = [derotate_lazy(
                _model.scan_frames(ly.data, _meta.get(ly.metadata)), angles,
                params=params) for ly in self.channel_layers()]
        except DerotationError as exc:
            notify("error", str(exc))
            return None
        layers = [self._add_result(lazy, ly, params) for lazy, ly in
                  zip(lazies, self.channel_layers(), strict=True)]
        layer = layers[self.channel_layers().index(self.session.layer)]
        self.result_label.setText(
            "added; frames are derotated as they are shown")
        return layer

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.quit()

    def _on_finished(self) -> None:
        self.progress.stop()
        self.derotate_button.setEnabled(not self.session.pending())

    def channel_layers(self) -> list:
        """The layers of every channel of the movie (the movie's layer
        alone when it has one channel)."""
        if self.session.layer is None:
            return []
        return _model.channel_group(self.viewer.layers, self.session.layer)

    def _on_done(self, out, layer, params, group=None) -> None:
        if isinstance(out, Failure):
            notify("error", out.message)
            self.result_label.setText(out.message)
            return
        if isinstance(out, list):
            for data, ly in zip(out, group, strict=True):
                self._add_result(data, ly, params)
        else:
            self._add_result(out, layer, params)
        r, c = params.center
        self.result_label.setText(f"derotated about ({r:.2f}, {c:.2f})")
        self.set_side_by_side(True)
        if self.means_checkbox.isChecked():
            self.show_means(True)

    def _add_result(self, out, layer, params):
        """Add or update "<movie> derotated" with its parameters."""
        meta = _model.derotated_metadata(layer.metadata, params,
                                         source_layer=layer.name)
        if tuple(out.shape) != tuple(layer.data.shape):    # planes: T, Z
            out = out.reshape(layer.data.shape)
        name = f"{layer.name} derotated"
        existing = self._layer(name)
        if existing is not None:
            existing.data = out
            existing.metadata = meta
            return existing
        return self.viewer.add_image(out, name=name, metadata=meta,
                                     colormap=layer.colormap.name,
                                     contrast_limits=layer.contrast_limits,
                                     translate=layer.translate,
                                     scale=layer.scale)

    # -- views -------------------------------------------------------------
    def set_side_by_side(self, on: bool) -> None:
        """Raw and derotated movies in napari's grid (helper layers hidden,
        and shown again when the grid is turned off)."""
        if self.grid_checkbox.isChecked() != on:
            self.grid_checkbox.setChecked(on)   # re-enters through toggled
            return
        grid = self.viewer.canvas.grid
        if on:
            keep = self._grid_names()
            self._hidden_for_grid = [ly for ly in self.viewer.layers
                                     if ly.visible and ly.name not in keep]
            for ly in self._hidden_for_grid:
                ly.visible = False
            grid.stride = 1        # first layer top-left: raw, then derotated
            grid.enabled = True
            self._on_grid()        # also when it was on already
        else:
            grid.enabled = False
            for ly in self._hidden_for_grid:
                if ly in self.viewer.layers:
                    ly.visible = True
            self._hidden_for_grid = []

    def show_means(self, on: bool) -> None:
        """Add (or remove) the mean images of the rotating frames, raw and
        derotated, and report how much sharper the derotated one is."""
        names = (f"{self.session.name()} mean", f"{self.output_name()} mean")
        if not on:
            for n in names:
                if n in self.viewer.layers:
                    self.viewer.layers.remove(n)
            return
        out = self.derotated_layer()
        if out is None or not self.session.is_movie():
            notify("warning", "derotate first: there is no derotated movie "
                              "to compare")
            self.means_checkbox.setChecked(False)
            return
        raw = self.session.data
        found = self.session.angles()
        n, rows, _ = raw.shape
        frames = rotating_frames(found[0], n, rows)
        if frames.size == 0:
            frames = np.arange(n)
        center = _meta.get(out.metadata).get("center")
        m_raw, m_out, s_raw, s_out = _model.mean_images(
            raw, _model.scan_frames(out.data, _meta.get(out.metadata)),
            frames, center)
        self.agreement = (s_raw, s_out)
        for name, img in zip(names, (m_raw, m_out), strict=True):
            layer = self._layer(name)
            meta = {_meta.KEY: {"helper": True}}
            if layer is None:
                self.viewer.add_image(img, name=name, metadata=meta,
                                      colormap=out.colormap.name,
                                      contrast_limits=out.contrast_limits,
                                      translate=out.translate[-2:],
                                      scale=out.scale[-2:])
            else:
                layer.data = img
        if self.viewer.canvas.grid.enabled:
            self._on_grid()
        self.result_label.setText(
            f"mean of {frames.size} rotating frames; frame agreement "
            f"(1 = perfectly still): raw {s_raw:.2f}, derotated {s_out:.2f}")
