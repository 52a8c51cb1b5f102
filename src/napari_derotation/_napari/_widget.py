"""The "Derotation" dock widget: four collapsible sections sharing one
:class:`~._session.Session` (the movie, its angles, its centre).

1. Data: the movie layer and its angles (metadata, file, analog signals).
2. Centre: centre point, Pick cell (ellipse fit), Bayesian search, preview.
3. Derotate: the whole movie in a worker; side by side; mean images.
4. Export: TIFF + JSON, per-frame CSV and per-line angles.

Closing the widget (its dock's close button, or the viewer) cancels the work
it started, so nothing is added or written after it closed. While it is open
the viewer has its keybindings (:data:`KEYS`).
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QEvent, Qt
from qtpy.QtWidgets import QVBoxLayout, QWidget
from superqt import QCollapsible

from ._center_section import CenterSection
from ._data_section import DataSection
from ._derotate_section import DerotateSection
from ._export_section import ExportSection
from ._session import Session
from ._workers import warmup_worker

#: napari keybindings of the main actions (viewer keymap, while the widget
#: is open): key -> (method name, what it does).
KEYS = {
    "Shift-D": ("key_derotate", "derotate the movie (Derotate)"),
    "Shift-C": (
        "key_pick_cell",
        "pick a cell: the next click fits the ellipse it traces (Pick cell)",
    ),
    "Shift-G": ("key_side_by_side", "toggle raw and derotated side by side"),
}


class Sections(QWidget):
    """Collapsible sections stacked top-down, one open at a time (superqt's
    ``QCollapsible``: napari's own dependency, so the plugin needs nothing
    napari does not bring)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setAlignment(Qt.AlignmentFlag.AlignTop)
        layout.setSpacing(0)
        layout.setContentsMargins(0, 0, 0, 0)
        self.collapsible_widgets: list[QCollapsible] = []

    def add_widget(
        self, widget, collapsible: bool = True, widget_title: str = ""
    ) -> None:
        box = QCollapsible(widget_title, self, expandedIcon="▼", collapsedIcon="▶")
        box.setContent(widget)
        box.collapse(animate=False)
        box.toggled.connect(lambda state, box=box: self._only(box, state))
        self.collapsible_widgets.append(box)
        self.layout().addWidget(box, 0, Qt.AlignmentFlag.AlignTop)

    def _only(self, opened: QCollapsible, state: bool) -> None:
        if not state:  # the content keeps no height (Section.refit)
            opened.content().setMinimumHeight(0)
        if state:
            for box in self.collapsible_widgets:
                if box is not opened:
                    box.collapse(animate=False)


class DerotationWidget(Sections):
    """Dock widget: derotate a movie recorded while the sample rotated."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.setObjectName("derotation_widget")
        self.viewer = napari_viewer
        self.session = Session(napari_viewer, parent=self)
        self.data = DataSection(napari_viewer, self.session, parent=self)
        self.center = CenterSection(napari_viewer, self.session, parent=self)
        self.derotate = DerotateSection(napari_viewer, self.session, parent=self)
        self.export = ExportSection(
            napari_viewer, self.session, self.derotate, parent=self
        )
        for title, section in (
            ("1. Data", self.data),
            ("2. Centre of rotation", self.center),
            ("3. Derotate", self.derotate),
            ("4. Export", self.export),
        ):
            self.add_widget(section, collapsible=True, widget_title=title)
        for box, name in zip(
            self.collapsible_widgets,
            ("data", "center", "derotate", "export"),
            strict=True,
        ):
            box.setObjectName(f"{name}_section")
            box.toggleButton().setObjectName(f"{name}_section_toggle")
        self.derotate.grid_checkbox.toggled.connect(self.center.suspend_preview)
        self.derotate.search_requested.connect(self.search_center)
        self.session.angles_changed.connect(self._on_angles)
        self.closed = False
        for key, (method, _) in KEYS.items():
            napari_viewer.bind_key(key, getattr(self, method), overwrite=True)
        self.collapsible_widgets[0].expand(animate=False)
        self._warmup = warmup_worker(self._dtypes())
        # the sections were built before the layers they may find
        self.data.refresh()
        if self.session.layer is not None:
            self.session.movie_changed.emit(self.session.layer)
            self.session.angles_changed.emit()
            self.session.center_changed.emit(*self.session.center)
            self.session.plane_changed.emit(*self.session.plane)

    # -- keybindings ------------------------------------------------------
    def key_derotate(self, viewer=None):
        self.expand("derotate")
        return self.derotate.start()

    def key_pick_cell(self, viewer=None):
        self.expand("center")
        self.center.pick_button.setChecked(not self.center.pick_button.isChecked())

    def key_side_by_side(self, viewer=None):
        box = self.derotate.grid_checkbox
        box.setChecked(not box.isChecked())

    def search_center(self):
        """The Bayesian centre search, from the Derotate section's
        suggestion (a low agreement): opens the Centre section and starts
        it; returns the worker (started) or None."""
        self.derotate.set_side_by_side(False)  # the cross and the preview
        self.expand("center")
        return self.center.start_search()

    # -- angles still being computed ---------------------------------------
    def _on_angles(self) -> None:
        """The centre search and pick wait for angles being computed; Pick
        cell needs a movie (not a single image)."""
        wait = bool(self.session.pending())
        searching = (
            self.center.bayes_worker is not None and not self.center.bayes_worker.done
        )
        self.center.bayes_button.setEnabled(not wait and not searching)
        fitting = self.center.fit_worker is not None and not self.center.fit_worker.done
        self.center.pick_button.setEnabled(
            not wait and not fitting and self.session.is_movie()
        )
        if not self.session.is_movie():
            self.center.pick_button.setChecked(False)

    # -- closing ------------------------------------------------------------
    def event(self, e):
        # napari's dock close button takes the widget out of its dock
        if (
            e.type() == QEvent.Type.ParentChange
            and self.parent() is None
            and self._was_docked
        ):
            self.shutdown()
        elif e.type() == QEvent.Type.ParentChange:
            self._was_docked = self.parent() is not None
        return super().event(e)

    _was_docked = False

    def closeEvent(self, e):
        self.shutdown()
        super().closeEvent(e)

    def shutdown(self) -> None:
        """Cancel the work this widget started and drop its keybindings:
        nothing is added or written once it is closed."""
        if self.closed:
            return
        self.closed = True
        for worker in self.workers():
            worker.quit()
        self.session.close()
        for key, (method, _) in KEYS.items():
            unbound = self.viewer.bind_key(key, None)
            if unbound is not None and unbound != getattr(self, method):
                self.viewer.bind_key(key, unbound)  # another widget's

    def workers(self) -> list:
        """The widget's workers still running."""
        found = (
            self.derotate.worker,
            self.export.worker,
            self.data.worker,
            self.center.bayes_worker,
            self.center.fit_worker,
            self.center.delay_worker,
        )
        return [w for w in found if w is not None and not w.done]

    def _dtypes(self):
        layer = self.session.layer
        movie = getattr(getattr(layer, "data", None), "dtype", None)
        return tuple(
            dict.fromkeys(
                d
                for d in (movie, np.dtype(np.uint16), np.dtype(np.float32))
                if d is not None
            )
        )

    def expand(self, name: str) -> None:
        """Open one section ("data", "center", "derotate", "export")."""
        for box in self.collapsible_widgets:
            if box.objectName() == f"{name}_section":
                box.expand(animate=False)
