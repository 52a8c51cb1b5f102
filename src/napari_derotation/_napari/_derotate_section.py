"""Section 3, Derotate: the whole movie in a worker, raw and derotated side
by side, and a comparison of their mean images."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QTimer, Signal
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
from ._common import ProgressRow, Section, guarded, named, notify, wrapped
from ._workers import Failure, steps_worker

FILL_MODES = {"background (median of frame 0)": "background", "zero": "zero"}


class DerotateSection(Section):
    """Derotate button with progress/cancel, side-by-side and mean views."""

    #: the user asked for the centre search (the agreement was low)
    search_requested = Signal()

    def __init__(self, viewer, session, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.session = session
        self.worker = None
        #: what the grid changed (to undo when it goes): the layers'
        #: order and visibility before, the layers it labelled
        self._before_grid: dict | None = None
        self._labelled: list = []
        #: (raw, derotated) frame agreement of the last derotation (or of
        #: the mean images)
        self.agreement: tuple[float, float] | None = None
        self._score = None
        self._worked_on = None  # the movie the labels describe
        form = QFormLayout(self)

        self.interp_combo = named(
            QComboBox(), "interpolation_combo", "How pixels between samples are read"
        )
        self.interp_combo.addItems(["bilinear", "nearest", "cubic"])
        form.addRow("Interpolation", self.interp_combo)
        self.fill_combo = named(
            QComboBox(), "fill_combo", "Value of pixels no scanned line covered"
        )
        self.fill_combo.addItems(list(FILL_MODES))
        form.addRow("Fill", self.fill_combo)

        plane = QHBoxLayout()
        self.tilt_spin = named(
            QDoubleSpinBox(),
            "tilt_spin",
            "Tilt of the rotation plane (degrees); 0 when "
            "the sample turns in the imaging plane. The "
            "ellipse fit sets it when it finds one.",
        )
        self.tilt_spin.setRange(0, 80)
        self.orient_spin = named(
            QDoubleSpinBox(), "orientation_spin", "Direction of the tilt axis (degrees)"
        )
        self.orient_spin.setRange(-90, 90)
        for label, spin in (("tilt", self.tilt_spin), ("axis", self.orient_spin)):
            spin.setDecimals(1)
            spin.setSuffix("°")
            spin.setKeyboardTracking(False)
            plane.addWidget(QLabel(label))
            plane.addWidget(spin, 1)
        form.addRow("Plane", plane)

        self.derotate_button = named(
            QPushButton("Derotate"),
            "derotate_button",
            "Derotate every frame about the centre",
        )
        self.lazy_button = named(
            QPushButton("Derotate as you scrub"),
            "lazy_button",
            "Add the derotated movie at once, computing each frame when it is "
            "shown (for movies too large to derotate in memory)",
        )
        buttons = QHBoxLayout()
        buttons.addWidget(self.derotate_button, 1)
        buttons.addWidget(self.lazy_button, 1)
        form.addRow(buttons)
        self.progress = ProgressRow("derotate")
        form.addRow(self.progress)

        views = QHBoxLayout()
        self.grid_checkbox = named(
            QCheckBox("Side by side"),
            "grid_checkbox",
            "Raw and derotated in a grid, one time slider for both",
        )
        self.means_checkbox = named(
            QCheckBox("Mean images"),
            "means_checkbox",
            "Mean of the rotating frames, raw and derotated",
        )
        views.addWidget(self.grid_checkbox)
        views.addWidget(self.means_checkbox)
        form.addRow(views)
        self.result_label = wrapped("derotate_result_label")
        form.addRow(self.result_label)
        self.search_button = named(
            QPushButton("Search the centre (Bayesian)"),
            "suggest_search_button",
            "Start the Bayesian centre search about the current centre "
            "(Centre of rotation section), then derotate again",
        )
        self.search_button.setVisible(False)
        form.addRow(self.search_button)

        self.derotate_button.clicked.connect(self.start)
        self.lazy_button.clicked.connect(self.start_lazy)
        self.tilt_spin.valueChanged.connect(self._on_plane_spin)
        self.orient_spin.valueChanged.connect(self._on_plane_spin)
        session.plane_changed.connect(self._on_plane)
        self.progress.cancel.clicked.connect(self.cancel)
        self.grid_checkbox.toggled.connect(self.set_side_by_side)
        self.means_checkbox.toggled.connect(self.show_means)
        self.search_button.clicked.connect(self._on_search_clicked)
        session.angles_changed.connect(self._on_angles)
        session.movie_changed.connect(self._on_movie)
        viewer.canvas.grid.events.enabled.connect(self._on_grid)

    def _on_movie(self, layer) -> None:
        """Another movie: what the labels said was about the previous one."""
        if layer is self._worked_on:
            return
        self._worked_on = layer
        self.result_label.setText("")
        self.search_button.setVisible(False)
        self.agreement = None

    def _on_search_clicked(self) -> None:
        self.search_button.setVisible(False)
        self.search_requested.emit()

    def _on_angles(self) -> None:
        """Derotate waits while the angles are being computed."""
        busy = self.worker is not None and not self.worker.done
        wait = bool(self.session.pending())
        self.derotate_button.setEnabled(not wait and not busy)
        self.lazy_button.setEnabled(not wait)

    def _on_grid(self, event=None) -> None:
        """Whenever the grid turns on or off, show every cell whole (napari
        keeps the camera of the single view otherwise), each labelled with
        its layer's name while it is on. napari's own grid button turning
        it off ends Side by side too."""
        on = self.viewer.canvas.grid.enabled
        if not on and self.grid_checkbox.isChecked():
            self.grid_checkbox.setChecked(False)  # restores the layers
        self._label_grid(on and self.grid_checkbox.isChecked())
        # once napari has laid the grid out (and the preview has gone)
        QTimer.singleShot(0, guarded(self.viewer.reset_view))

    def _label_grid(self, on: bool) -> None:
        for ly in self._labelled:
            ly.name_overlay.visible = False
        self._labelled = [ly for box in self.grid_boxes() for ly in box] if on else []
        for ly in self._labelled:
            ly.name_overlay.visible = True

    def grid_boxes(self) -> list[list]:
        """The grid's cells, each the layers of every channel (overlaid as
        the input shows them): the raw movie, the derotated movie, and,
        when shown, their mean images."""
        group = self.channel_layers()
        if not group:
            return []
        names = (
            [ly.name for ly in group],
            [f"{ly.name} derotated" for ly in group],
            [f"{ly.name} mean" for ly in group],
            [f"{ly.name} derotated mean" for ly in group],
        )
        boxes = []
        for box in names:
            found = [self._layer(n) for n in box]
            if all(ly is not None for ly in found):
                boxes.append(found)
        return boxes if len(boxes) > 1 else []

    def _on_plane_spin(self, _value=None) -> None:
        self.session.set_plane(self.tilt_spin.value(), self.orient_spin.value())

    def _on_plane(self, tilt: float, orientation: float) -> None:
        for spin, value in ((self.tilt_spin, tilt), (self.orient_spin, orientation)):
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
        fill, or None after a notification. The background fill is each
        channel's own (one value per channel for a multi-channel movie)."""
        found = self.session.inputs()
        if found is None:
            return None
        data, angles, params = found
        datas = [
            _model.scan_frames(ly.data, _meta.get(ly.metadata))
            for ly in self.channel_layers()
        ] or [data]
        fill = _model.fill_values(datas, FILL_MODES[self.fill_combo.currentText()])
        return (
            data,
            angles,
            params.replace(
                interpolation=self.interp_combo.currentText(), fill_value=fill
            ),
        )

    def start(self):
        """Derotate the movie in a worker; returns it (started) or None
        after a notification."""
        inputs = self._inputs()
        if inputs is None:
            return None
        data, angles, params = inputs
        group = self.channel_layers()
        self.derotate_button.setEnabled(False)
        self.search_button.setVisible(False)
        self.progress.start(data.shape[0] * len(group))
        self.result_label.setText("derotating…")
        layer = self.session.layer
        desc = f"derotating {layer.name}"
        # the agreement of the channel on screen, measured as it derotates
        self._score = _model.Agreement(angles, data.shape, params.center)
        if len(group) == 1:
            self.worker = steps_worker(
                _model.derotate_steps,
                data,
                angles,
                params,
                score=self._score,
                desc=desc,
            )
        else:  # every channel of the movie, with the same angles
            datas = [
                _model.scan_frames(ly.data, _meta.get(ly.metadata)) for ly in group
            ]
            scores = [self._score if ly is layer else None for ly in group]
            self.worker = steps_worker(
                _model.derotate_group_steps,
                datas,
                angles,
                params,
                scores=scores,
                desc=desc,
            )
        score = self._score
        return self.progress.run(
            self.worker,
            on_done=lambda out: self._on_done(out, layer, params, group, score),
            on_finished=self._on_finished,
            label=self.result_label,
            cancelled="cancelled; nothing was added",
        )

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
        group = self.channel_layers()
        try:
            lazies = [
                derotate_lazy(
                    _model.scan_frames(ly.data, _meta.get(ly.metadata)),
                    angles,
                    params=params.for_channel(k),
                )
                for k, ly in enumerate(group)
            ]
        except DerotationError as exc:
            notify("error", str(exc))
            return None
        layers = [
            self._add_result(lazy, ly, params, k)
            for k, (lazy, ly) in enumerate(zip(lazies, group, strict=True))
        ]
        layer = layers[group.index(self.session.layer)]
        self.search_button.setVisible(False)
        self.result_label.setText("added; frames are derotated as they are shown")
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

    def _on_done(self, out, layer, params, group=None, score=None) -> None:
        if isinstance(out, Failure):
            notify("error", out.message)
            self.result_label.setText(out.message)
            return
        if isinstance(out, list):
            for k, (data, ly) in enumerate(zip(out, group, strict=True)):
                self._add_result(data, ly, params, k)
        else:
            self._add_result(out, layer, params)
        if self.session.layer is not layer:
            return  # the user switched movies meanwhile
        r, c = params.center
        text = f"derotated about ({r:.2f}, {c:.2f})"
        low = False
        if score is not None:
            self.agreement = score.values()
            said, low = _model.agreement_message(*self.agreement)
            text += f"; {said}"
            if low:
                text += ": search it?"
        self.result_label.setText(text)
        self.search_button.setVisible(low)
        self.set_side_by_side(True)
        if self.means_checkbox.isChecked():
            self.show_means(True, report=False)

    def _add_result(self, out, layer, params, channel: int | None = None):
        """Add or update "<movie> derotated" with its parameters, shown as
        the input is (its colormap, contrast and blending)."""
        meta = _model.derotated_metadata(
            layer.metadata, params, source_layer=layer.name, channel=channel
        )
        if tuple(out.shape) != tuple(layer.data.shape):  # planes: T, Z
            out = out.reshape(layer.data.shape)
        name = f"{layer.name} derotated"
        existing = self._layer(name)
        if existing is not None:
            existing.data = out
            existing.metadata = meta
            return existing
        return self.viewer.add_image(out, name=name, metadata=meta, **_looks(layer))

    # -- views -------------------------------------------------------------
    def set_side_by_side(self, on: bool) -> None:
        """Raw and derotated movies in napari's grid, every channel of
        each in one cell as the input shows them (other layers hidden);
        turning it off puts the layers back in their order and visibility
        and hides the derotated ones, which would cover the raw movie."""
        if self.grid_checkbox.isChecked() != on:
            self.grid_checkbox.setChecked(on)  # re-enters through toggled
            return
        if on:
            self._grid_on()
        else:
            self._grid_off()

    def _grid_on(self) -> None:
        layers = self.viewer.layers
        if self._before_grid is None:
            self._before_grid = {"order": list(layers), "visible": {}}
        seen = self._before_grid["visible"]
        for ly in layers:  # layers added since keep theirs
            seen.setdefault(ly, ly.visible)
        boxes = self.grid_boxes() or [self.channel_layers()]
        shown = [ly for box in boxes for ly in box]
        # the cells, in order, at the bottom of the layer list: napari puts
        # `stride` consecutive layers in each cell, first cell top-left
        for i, ly in enumerate(shown):
            j = layers.index(ly)
            if j != i:
                layers.move(j, i)
        for ly in layers:
            ly.visible = ly in shown
        grid = self.viewer.canvas.grid
        grid.stride = max(1, len(boxes[0])) if boxes else 1
        if not grid.enabled:
            grid.enabled = True  # labels through _on_grid
        else:
            self._on_grid()
        self._show_rotating_frame()

    def _grid_off(self) -> None:
        grid = self.viewer.canvas.grid
        grid.enabled = False
        before, self._before_grid = self._before_grid, None
        self._label_grid(False)
        if before is None:
            return
        layers = self.viewer.layers
        order = [ly for ly in before["order"] if ly in layers]
        for i, ly in enumerate(order):
            j = layers.index(ly)
            if j != i:
                layers.move(j, i)
        boxes = self.grid_boxes()
        made = {ly for box in boxes[1:] for ly in box}
        for ly in layers:
            if ly in made:
                ly.visible = False  # over the raw movie it hides it
            elif ly in before["visible"]:
                ly.visible = before["visible"][ly]
        # each made layer just above its raw channel (under the cross, the
        # preview and the fit, should it be shown)
        for box in boxes[1:]:
            for raw, ly in zip(boxes[0], box, strict=True):
                j, i = layers.index(ly), layers.index(raw)
                if j != i + 1:
                    layers.move(j, i + 1)  # before index i + 1

    def _show_rotating_frame(self) -> None:
        """Put the time slider on a frame that rotates (on a still frame
        raw and derotated look the same)."""
        found = self.session.angles()
        if found is None or not self.session.is_movie():
            return
        n, rows, _ = self.session.data.shape
        planes = max(1, n // max(1, self.session.layer.data.shape[0]))
        step = self.viewer.dims.current_step
        if not step:
            return
        plane = int(step[1]) if planes > 1 and len(step) > 1 else 0
        current = int(step[0]) * planes + plane
        try:
            frame = _model.showcase_frame(found[0], n, rows, current)
        except (IndexError, ValueError):
            return
        if frame != current:
            self.viewer.dims.set_current_step(0, frame // planes)

    def show_means(self, on: bool, report: bool = True) -> None:
        """Add (or remove) the mean images of the rotating frames, raw and
        derotated, of every channel, and report how much sharper the
        derotated one is (the channel on screen)."""
        group = self.channel_layers()
        names = [
            n for ly in group for n in (f"{ly.name} mean", f"{ly.name} derotated mean")
        ]
        if not on:
            for n in names:
                if n in self.viewer.layers:
                    self.viewer.layers.remove(n)
            if self.grid_checkbox.isChecked():
                self._grid_on()
            return
        out = self.derotated_layer()
        if out is None or not self.session.is_movie():
            notify("warning", "derotate first: there is no derotated movie to compare")
            self.means_checkbox.setChecked(False)
            return
        found = self.session.angles()
        n, rows, _ = self.session.data.shape
        frames = rotating_frames(found[0], n, rows)
        if frames.size == 0:
            frames = np.arange(n)
        for ly in group:
            done = self._layer(f"{ly.name} derotated")
            if done is None:
                continue
            center = _meta.get(done.metadata).get("center")
            m_raw, m_out, s_raw, s_out = _model.mean_images(
                _model.scan_frames(ly.data, _meta.get(ly.metadata)),
                _model.scan_frames(done.data, _meta.get(done.metadata)),
                frames,
                center,
            )
            if ly is self.session.layer:
                self.agreement = (s_raw, s_out)
            for name, img in (
                (f"{ly.name} mean", m_raw),
                (f"{ly.name} derotated mean", m_out),
            ):
                layer = self._layer(name)
                if layer is None:
                    looks = _looks(ly)
                    looks.update(
                        translate=looks["translate"][-2:], scale=looks["scale"][-2:]
                    )
                    self.viewer.add_image(
                        img, name=name, metadata={_meta.KEY: {"helper": True}}, **looks
                    )
                else:
                    layer.data = img
        if self.grid_checkbox.isChecked():
            self._grid_on()
        else:
            self.set_side_by_side(True)  # they overlap outside the grid
        if report:
            s_raw, s_out = self.agreement
            self.result_label.setText(
                f"mean of {frames.size} rotating frames; frame agreement "
                f"(1 = perfectly still): raw {s_raw:.2f}, derotated "
                f"{s_out:.2f}"
            )


def _looks(layer) -> dict:
    """How ``layer`` is shown (for a layer made from it)."""
    return {
        "colormap": layer.colormap,
        "contrast_limits": layer.contrast_limits,
        "blending": layer.blending,
        "gamma": layer.gamma,
        "translate": layer.translate,
        "scale": layer.scale,
    }
