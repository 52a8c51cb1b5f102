"""Section 2, Centre: the centre of rotation, by hand, from a cell, or by a
Bayesian search, with a live derotated preview.

* A points layer "centre of rotation" holds one point; dragging it and the
  row/col spin boxes stay in sync with the session's centre.
* "Pick cell": the next click on the raw movie seeds
  :func:`napari_derotation.center.ellipse.fit_center_ellipse` (in a worker); the
  cell's tracked positions and the fitted ellipse are drawn over the movie
  and the centre moves to the ellipse's centre.
* "Bayesian search": :func:`napari_derotation.center.find_center_bayesian`
  in a worker, with a progress bar and Cancel; the point follows the best
  centre so far.
* Live preview: the mean of a few frames spread over the angles, derotated
  about the current centre, drawn beside the movie; cells are crisp when the
  centre is right and smeared into arcs when it is not.
"""

from __future__ import annotations

import time

import numpy as np
from napari.layers.base import ActionType
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
)

from ..errors import DerotationError
from . import _meta, _model
from ._common import ProgressRow, Section, guarded, hint, named, notify, wrapped
from ._workers import Failure, callback_worker

CENTER_LAYER = "centre of rotation"
TRACK_LAYER = "tracked cell"
ELLIPSE_LAYER = "fitted ellipse"
HELPER = {_meta.KEY: {"helper": True}}


class CenterSection(Section):
    """Centre of rotation: spin boxes, centre point, pick cell, search."""

    def __init__(self, viewer, session, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.session = session
        self.bayes_worker = None
        self.fit_worker = None
        self.last_fit = None
        self.last_search = None
        self._searched = None  # the movie a fit or search is about
        self.preview_ms: float | None = None
        self._syncing = False
        self._preview_frames = None
        self._preview_suspended = False
        self._preview = None  # the preview layer shown
        self._worked_on = None  # the movie the labels describe
        form = QFormLayout(self)

        row = QHBoxLayout()
        self.row_spin = named(
            QDoubleSpinBox(), "row_spin", "Row of the centre of rotation (pixels)"
        )
        self.col_spin = named(
            QDoubleSpinBox(), "col_spin", "Column of the centre of rotation (pixels)"
        )
        for label, spin in (("row", self.row_spin), ("col", self.col_spin)):
            spin.setDecimals(2)
            spin.setSingleStep(0.5)
            spin.setKeyboardTracking(False)
            spin.setMinimumWidth(90)
            row.addWidget(QLabel(label))
            row.addWidget(spin, 1)
        form.addRow("Centre", row)

        self.preview_checkbox = named(
            QCheckBox("Live preview"),
            "preview_checkbox",
            "Beside the movie: the mean of a few frames derotated about the "
            "current centre. Sharp cells mean a good centre.",
        )
        self.preview_checkbox.setChecked(True)
        self.preview_label = named(QLabel(""), "preview_label")
        prev = QHBoxLayout()
        prev.addWidget(self.preview_checkbox)
        prev.addWidget(self.preview_label, 1)
        form.addRow("", prev)

        buttons = QHBoxLayout()
        self.pick_button = named(
            QPushButton("Pick cell"),
            "pick_cell_button",
            "Then click a bright cell in the raw movie: it is followed "
            "through the rotation and an ellipse fitted to its path",
        )
        self.pick_button.setCheckable(True)
        self.reset_button = named(
            QPushButton("Frame centre"),
            "reset_center_button",
            "Back to (rows // 2, cols // 2)",
        )
        buttons.addWidget(self.pick_button)
        buttons.addWidget(self.reset_button)
        form.addRow("", buttons)

        search = QHBoxLayout()
        self.radius_spin = named(
            QDoubleSpinBox(),
            "radius_spin",
            "Search within this many pixels of the current centre",
        )
        self.radius_spin.setRange(1, 200)
        self.radius_spin.setDecimals(1)
        self.radius_spin.setValue(12)
        self.radius_spin.setPrefix("± ")
        self.radius_spin.setSuffix(" px")
        self.calls_spin = named(
            QSpinBox(), "evaluations_spin", "Number of centres evaluated"
        )
        self.calls_spin.setRange(12, 500)
        self.calls_spin.setValue(40)
        self.calls_spin.setSuffix(" evaluations")
        search.addWidget(self.radius_spin)
        search.addWidget(self.calls_spin)
        form.addRow("Search", search)
        self.bayes_button = named(
            QPushButton("Bayesian search"),
            "bayesian_button",
            "Search the centre that leaves the least residual motion",
        )
        form.addRow("", self.bayes_button)
        self.bayes_progress = ProgressRow("bayesian")
        form.addRow(self.bayes_progress)
        self._add_delay_controls(form)
        self.result_label = wrapped("center_result_label")
        form.addRow(self.result_label)
        form.addRow(hint("Drag the orange cross: the preview sharpens.", "center_hint"))

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(0)
        self._preview_timer.timeout.connect(self.update_preview)

        self._connect(session)

    def _connect(self, session) -> None:
        """The controls' and the session's signals to this section."""
        self.row_spin.valueChanged.connect(self._on_spin)
        self.col_spin.valueChanged.connect(self._on_spin)
        self.reset_button.clicked.connect(self.reset_center)
        self.preview_checkbox.toggled.connect(self._on_preview_toggled)
        self.pick_button.toggled.connect(self._on_pick_toggled)
        self.bayes_button.clicked.connect(self.start_search)
        self.bayes_progress.cancel.clicked.connect(self.cancel_search)
        session.movie_changed.connect(self._on_movie)
        session.angles_changed.connect(self._on_angles)
        session.center_changed.connect(self._on_center)
        session.plane_changed.connect(lambda *_: self.schedule_preview())

    # -- layers -------------------------------------------------------------
    def _layer(self, name):
        return next((ly for ly in self.viewer.layers if ly.name == name), None)

    def center_layer(self):
        """The "centre of rotation" points layer (created if needed)."""
        layer = self._layer(CENTER_LAYER)
        if layer is None:
            r, c = self.session.center
            layer = self.viewer.add_points(
                np.array([[r, c]]),
                name=CENTER_LAYER,
                size=9,
                symbol="cross",
                face_color="orange",
                border_color="black",
                border_width=0.1,
                metadata=dict(HELPER),
            )
            layer.events.data.connect(self._on_point_data)
            layer.mouse_drag_callbacks.append(self._on_point_drag)
            layer.mode = "select"
            if self.session.layer is not None:
                self.viewer.layers.selection.active = layer
        return layer

    # -- movie / centre sync ---------------------------------------------------
    def _on_movie(self, layer) -> None:
        """Another movie: the results, fit overlays and preview of the
        previous one go (they do not describe this one)."""
        self._preview_frames = None
        if layer is not self._worked_on:
            self.result_label.setText("")
            self.preview_label.setText("")
            self.last_fit = self.last_search = None
            for name in (TRACK_LAYER, ELLIPSE_LAYER):
                if name in self.viewer.layers:
                    self.viewer.layers.remove(name)
            old = self._preview
            if (
                old is not None
                and old in self.viewer.layers
                and old.name != self.preview_name()
            ):
                self.viewer.layers.remove(old)
            self._worked_on = layer
        if layer is None or layer.data.ndim != 3:
            return
        rows, cols = layer.data.shape[1:]
        self._syncing = True
        self.row_spin.setRange(0, rows - 1)
        self.col_spin.setRange(0, cols - 1)
        self._syncing = False
        self.center_layer()

    def _on_angles(self) -> None:
        self._preview_frames = None
        self.schedule_preview()

    def _on_center(self, row: float, col: float) -> None:
        self._syncing = True
        try:
            self.row_spin.setValue(row)
            self.col_spin.setValue(col)
            if self.session.is_movie():
                layer = self.center_layer()
                if layer.data.shape != (1, 2) or not np.allclose(
                    layer.data[0], (row, col)
                ):
                    layer.data = np.array([[row, col]])
        finally:
            self._syncing = False
        self.schedule_preview()

    def _on_spin(self, _value=None) -> None:
        if not self._syncing:
            self.session.set_center(self.row_spin.value(), self.col_spin.value())

    def _on_point_data(self, event) -> None:
        if self._syncing:
            return
        action = getattr(event, "action", None)
        if action in (ActionType.CHANGING, ActionType.ADDING, ActionType.REMOVING):
            return
        layer = self._layer(CENTER_LAYER)
        data = layer.data
        if len(data) == 0:  # deleted: put the point back
            r, c = self.session.center
            self._syncing = True
            layer.data = np.array([[r, c]])
            self._syncing = False
            return
        r, c = data[-1][-2:]
        if len(data) > 1:  # a new point replaces the old one
            self._syncing = True
            layer.data = np.array([[r, c]])
            self._syncing = False
        self.set_center_clipped(r, c)

    def _on_point_drag(self, layer, event):
        """Follow the point while it is dragged (napari reports the new data
        only on release)."""
        yield
        while event.type == "mouse_move":
            if len(layer.selected_data) and len(layer.data):
                r, c = layer.data[list(layer.selected_data)[0]][-2:]
                self.set_center_clipped(r, c)
            yield

    def set_center_clipped(self, r, c) -> None:
        shape = self.session.shape()
        if shape is None or len(shape) != 3:
            return
        r = float(np.clip(r, 0, shape[1] - 1))
        c = float(np.clip(c, 0, shape[2] - 1))
        self.session.set_center(r, c)

    def reset_center(self) -> None:
        shape = self.session.shape()
        if shape is not None and len(shape) == 3:
            self.session.set_center(shape[1] // 2, shape[2] // 2)

    # -- live preview ---------------------------------------------------------
    def preview_name(self) -> str:
        return f"{self.session.name()} preview"

    def _on_preview_toggled(self, on: bool) -> None:
        layer = self._layer(self.preview_name())
        if layer is not None:
            layer.visible = on
        self.schedule_preview()

    def schedule_preview(self) -> None:
        """Update the preview when the event loop is next free (coalesces a
        burst of centre changes into one update)."""
        if self.preview_checkbox.isChecked() and not self._preview_suspended:
            self._preview_timer.start()

    def suspend_preview(self, suspended: bool) -> None:
        """Remove the preview (and stop updating it) while raw and derotated
        are shown side by side; bring it back afterwards."""
        self._preview_suspended = suspended
        if suspended:
            layer = self._layer(self.preview_name())
            if layer is not None:
                self.viewer.layers.remove(layer)
        else:
            self.schedule_preview()

    def update_preview(self) -> None:
        """Derotate the preview frames about the current centre (~10 ms at
        256x256) and show their mean beside the movie."""
        s = self.session
        if (
            not self.preview_checkbox.isChecked()
            or self._preview_suspended
            or not s.is_movie()
        ):
            return
        found = s.angles()
        if found is None:
            return
        t0 = time.perf_counter()
        data = s.data
        n, rows, cols = data.shape
        try:
            angles, center = _model.check_inputs(data, found[0], s.center)
        except DerotationError:
            return  # the Data section reports bad angles
        if self._preview_frames is None:
            self._preview_frames = _model.preview_frames(angles, n, rows)
            self._fill = _model.fill_value(data, "background")
        img = _model.preview_image(
            data,
            angles,
            self._preview_frames,
            s.params().replace(center=center, fill_value=self._fill),
        )
        name = self.preview_name()
        layer = self._layer(name)
        meta = {_meta.KEY: {"helper": True, "center": list(center)}}
        if layer is None:
            movie = s.layer
            layer = self._preview = self.viewer.add_image(
                img,
                name=name,
                metadata=meta,
                colormap=movie.colormap.name,
                contrast_limits=movie.contrast_limits,
                translate=(movie.translate[-2], movie.translate[-1] + cols * 1.05),
                scale=tuple(movie.scale[-2:]),
            )
            self.viewer.layers.selection.active = self.center_layer()
            self.viewer.reset_view()  # show the movie and its preview
        else:
            layer.data = img
            layer.metadata = meta
        self.preview_ms = (time.perf_counter() - t0) * 1000
        self.preview_label.setText(
            f"{len(self._preview_frames)} frames, {self.preview_ms:.0f} ms"
        )

    # -- pick a cell -------------------------------------------------------------
    def _on_pick_toggled(self, on: bool) -> None:
        callbacks = self.viewer.mouse_drag_callbacks
        if on:
            if not self.session.is_movie():
                notify(
                    "error",
                    self.session.problem()
                    or "choose a movie (frames, rows, cols) first",
                )
                self.pick_button.setChecked(False)
                return
            if self._on_pick_click not in callbacks:
                callbacks.append(self._on_pick_click)
            self.result_label.setText("click a bright cell in the raw movie")
        elif self._on_pick_click in callbacks:
            callbacks.remove(self._on_pick_click)

    def _on_pick_click(self, viewer, event) -> None:
        """Viewer mouse callback while "Pick cell" is on: the click seeds the
        ellipse fit."""
        if event.type != "mouse_press" or not self.session.is_movie():
            return
        layer = self.session.layer
        pos = layer.world_to_data(event.position)
        frame = int(round(pos[0])) if len(pos) >= 3 else 0
        self.pick_button.setChecked(False)
        self.fit_from_seed((float(pos[-2]), float(pos[-1])), frame)

    def fit_from_seed(self, seed, frame: int = 0):
        """Fit the centre from the cell at ``seed`` (row, col) in ``frame``,
        in a worker; returns the worker (started) or None."""
        inputs = self.session.inputs()
        if inputs is None:
            return None
        data, angles, _ = inputs
        from ..center.ellipse import fit_center_ellipse

        n, rows, cols = data.shape
        if not (0 <= seed[0] <= rows - 1 and 0 <= seed[1] <= cols - 1):
            notify(
                "warning",
                f"click inside the movie: ({seed[0]:.0f}, "
                f"{seed[1]:.0f}) is outside {rows}x{cols}",
            )
            return None
        frame = int(np.clip(frame, 0, n - 1))
        self.result_label.setText(
            f"following the cell at ({seed[0]:.1f}, {seed[1]:.1f}), frame {frame}…"
        )
        self.pick_button.setEnabled(False)
        self._searched = self.session.layer
        self.fit_worker = callback_worker(
            fit_center_ellipse,
            data,
            angles,
            seed,
            frame=frame,
            desc="following the cell",
        )
        self.fit_worker.returned.connect(self._on_fit)
        self.fit_worker.finished.connect(
            guarded(lambda: self.pick_button.setEnabled(True))
        )
        self.fit_worker.start()
        return self.fit_worker

    def _on_fit(self, result) -> None:
        if self.session.layer is not self._searched:
            return  # the user switched movies meanwhile
        if result is None:  # cancelled
            self.result_label.setText("ellipse fit cancelled")
            return
        if isinstance(result, Failure):
            notify("warning", f"ellipse fit: {result.message}")
            self.result_label.setText(f"ellipse fit failed: {result.message}")
            return
        self.last_fit = result
        track = np.asarray(result.positions, float).reshape(-1, 2)
        self._replace_points(
            TRACK_LAYER, track, size=5, face_color="cyan", symbol="disc"
        )
        self._replace_shapes(ELLIPSE_LAYER, ellipse_outline(result))
        r, c = (float(v) for v in result.center)
        ur, uc = result.center_uncertainty
        self.set_center_clipped(r, c)
        text = (
            f"ellipse centre ({r:.2f} ± {ur:.2f}, {c:.2f} ± {uc:.2f}) "
            f"from {len(track)} positions; plane tilt "
            f"{result.tilt:.1f} ± {result.tilt_uncertainty:.1f}°"
        )
        # a tilt is applied when the ellipse differs from a circle by more
        # than the fit's noise (EllipseFit.tilt_significant)
        if result.tilt_significant:
            self.session.set_plane(float(result.tilt), float(result.plane_orientation))
            text += " (applied: see Derotate)"
        else:
            text += ", not significant: not applied"
        text += f"; residual {result.residual:.2f} px"
        self.result_label.setText(text)
        for message in result.messages:
            notify("warning", f"ellipse fit: {message}")
        self.viewer.layers.selection.active = self.center_layer()

    def _replace_points(self, name, data, **kwargs) -> None:
        layer = self._layer(name)
        if layer is None:
            self.viewer.add_points(data, name=name, metadata=dict(HELPER), **kwargs)
        else:
            layer.data = data

    def _replace_shapes(self, name, outline) -> None:
        layer = self._layer(name)
        if layer is not None:
            self.viewer.layers.remove(layer)
        self.viewer.add_shapes(
            [outline],
            shape_type="polygon",
            name=name,
            edge_color="cyan",
            edge_width=1,
            face_color="transparent",
            metadata=dict(HELPER),
        )

    # -- Bayesian search ------------------------------------------------------
    def start_search(self):
        """Run the Bayesian search in a worker; returns it (started) or
        None after a notification."""
        inputs = self.session.inputs()
        if inputs is None:
            return None
        data, angles, params = inputs
        center = params.center
        from ..center import find_center_bayesian

        self.bayes_button.setEnabled(False)
        self.bayes_progress.start(self.calls_spin.value())
        self.result_label.setText("searching…")
        self._searched = self.session.layer
        # the search derotates its candidates with the movie's plane
        self._best: list = []
        self.bayes_worker = callback_worker(
            find_center_bayesian,
            data,
            angles,
            initial=center,
            search_radius=self.radius_spin.value(),
            n_calls=self.calls_spin.value(),
            params=params,
            on_best=self._best.append,
            desc="Bayesian centre search",
        )
        self.bayes_progress.follow(self.bayes_worker.pbar)
        self.bayes_worker.relay.progressed.connect(self._on_search_progress)
        self.bayes_worker.returned.connect(self._on_search_done)
        self.bayes_worker.finished.connect(self._on_search_finished)
        self.bayes_worker.start()
        return self.bayes_worker

    def _on_search_progress(self, report) -> None:
        if self.session.layer is not self._searched:
            return
        done, total = report[0], report[1]
        self.bayes_progress.update(done, total)
        if self._best:
            self.set_center_clipped(*self._best[-1])

    def _on_search_done(self, result) -> None:
        if result is None or self.session.layer is not self._searched:
            return
        if isinstance(result, Failure):
            notify("error", f"Bayesian search: {result.message}")
            self.result_label.setText(f"search failed: {result.message}")
            return
        self.last_search = result
        r, c = result.center
        self.set_center_clipped(r, c)
        self.result_label.setText(
            f"best centre ({r:.2f}, {c:.2f}) after {result.n_evaluations} "
            f"evaluations ({result.elapsed:.1f} s)"
        )

    def _on_search_finished(self) -> None:
        self.bayes_progress.stop()
        self.bayes_button.setEnabled(True)
        if self.bayes_worker is not None and self.bayes_worker.abort_requested:
            self.result_label.setText(
                "search cancelled; the centre is the best found so far"
            )

    def cancel_search(self) -> None:
        if self.bayes_worker is not None:
            self.bayes_worker.quit()

    # -- angle delay ---------------------------------------------------------
    def _add_delay_controls(self, form) -> None:
        self.delay_worker = None
        self.delay_button = named(
            QPushButton("Find delay"),
            "delay_button",
            "Find the delay (lines) between the angle signal and the scan, "
            "with the centre (needs still frames, speed changes or both "
            "directions)",
        )
        form.addRow("", self.delay_button)
        self.delay_progress = ProgressRow("delay")
        form.addRow(self.delay_progress)
        self.delay_button.clicked.connect(self.start_delay)
        self.delay_progress.cancel.clicked.connect(self.cancel_delay)

    def start_delay(self):
        """Find the centre and the angle delay in a worker; returns it
        (started) or None after a notification."""
        inputs = self.session.inputs()
        if inputs is None:
            return None
        data, angles, params = inputs
        from ._model import find_delay

        self.delay_button.setEnabled(False)
        self.delay_progress.start(100)
        self.result_label.setText("finding the delay…")
        self.delay_worker = callback_worker(
            find_delay,
            data,
            angles,
            params,
            search_radius=min(3.0, self.radius_spin.value()),
            desc="Angle delay search",
        )
        self.delay_progress.follow(self.delay_worker.pbar)
        self.delay_worker.relay.progressed.connect(
            lambda r: self.delay_progress.update(r[0], r[1])
        )
        self.delay_worker.returned.connect(self._on_delay_done)
        self.delay_worker.finished.connect(self._on_delay_finished)
        self.delay_worker.start()
        return self.delay_worker

    def _on_delay_done(self, result) -> None:
        if result is None:
            return
        if isinstance(result, Failure):
            notify("error", f"Angle delay: {result.message}")
            self.result_label.setText(f"delay not found: {result.message}")
            return
        self.last_delay = result
        self.session.metadata["angle_delay"] = float(result.delay)
        self.set_center_clipped(*result.center)
        self.schedule_preview()
        self.result_label.setText(
            f"delay {result.delay:.2f} ± {result.uncertainty:.2f} lines, "
            f"centre ({result.center[0]:.2f}, {result.center[1]:.2f})"
        )

    def _on_delay_finished(self) -> None:
        self.delay_progress.stop()
        self.delay_button.setEnabled(True)
        if self.delay_worker is not None and self.delay_worker.abort_requested:
            self.result_label.setText("delay search cancelled")

    def cancel_delay(self) -> None:
        if self.delay_worker is not None:
            self.delay_worker.quit()


def ellipse_outline(result, n: int = 120):
    """Points (row, col) around the fitted ellipse."""
    return np.asarray(result.ellipse_points(n), float)
