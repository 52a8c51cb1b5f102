"""State shared by the widget's sections: the movie, its angles, the centre.

The movie's angles and chosen centre live in the layer's metadata
(``layer.metadata["derotation"]``), so they travel with the layer (and are
saved with it); :class:`Session` reads and writes them there and tells the
sections when they change.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
from napari.layers import Image
from qtpy.QtCore import QObject, Signal

from ..engine import default_center
from ..engine.params import DerotationParams
from ..errors import DerotationError
from . import _meta, _model
from ._common import notify


class Session(QObject):
    """The movie layer in use, with its angles and centre of rotation."""

    #: the movie layer changed (the layer or None)
    movie_changed = Signal(object)
    #: the angles of the movie changed
    angles_changed = Signal()
    #: the centre changed: (row, col)
    center_changed = Signal(float, float)
    #: the rotation plane changed: (tilt, orientation), degrees
    plane_changed = Signal(float, float)

    def __init__(self, viewer, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.layer: Image | None = None
        self._warned: set = set()
        from ._pending import RELAY

        RELAY.arrived.connect(self._on_arrived)

    def close(self) -> None:
        """Stop listening for angles (the widget closed)."""
        from ._pending import RELAY

        with contextlib.suppress(TypeError, RuntimeError):
            RELAY.arrived.disconnect(self._on_arrived)

    # -- movie ------------------------------------------------------------
    def set_layer(self, layer) -> None:
        if layer is self.layer:
            return
        self.layer = layer
        if layer is not None and self.is_movie():
            self.find_angles()
        self.movie_changed.emit(layer)
        self.angles_changed.emit()
        if self.layer is not None and self.is_movie():
            r, c = self.center
            self.center_changed.emit(r, c)
            self.plane_changed.emit(*self.plane)
            self.warn_about_angles()

    def is_movie(self) -> bool:
        return self.layer is not None and self.problem() is None

    def problem(self) -> str | None:
        """Why the layer cannot be derotated (a single image, ...), or
        ``None`` for a movie."""
        if self.layer is None:
            return None
        return _model.movie_problem(
            np.shape(self.data), bool(getattr(self.layer, "rgb", False))
        )

    def source_path(self) -> Path | None:
        """The file napari read the layer from (whichever reader did)."""
        path = getattr(getattr(self.layer, "source", None), "path", None)
        return Path(path) if path else None

    def find_angles(self) -> None:
        """A movie without angles that napari read from a file (its builtin
        reader, say): look for them beside the file the way the plugin's
        reader does (:func:`._reader.attach_angles`, one rule) and say
        where they came from."""
        d = _meta.get(self.layer.metadata)
        path = self.source_path()
        if (
            path is None
            or d.get("angles_per_line") is not None
            or d.get("angles_pending")
            or d.get("angles_looked_for")
        ):
            return
        from ._reader import attach_angles

        d = self.metadata
        d["angles_looked_for"] = True  # once per layer
        d.setdefault("movie_path", str(path.resolve()))
        if attach_angles(d, path):
            d["angles_found_by"] = f"found beside {path.name}"
            what = (
                "being computed from the analog signals in "
                + Path(d["angles_pending"]).name
                if d.get("angles_pending")
                else f"from {Path(d['angles_source']).name}"
            )
            notify(
                "info",
                f"{self.name()}: rotation angles {what}, found beside {path.name}",
            )

    @property
    def data(self):
        """The movie as frames in scan order: a multi-plane layer
        ``(T, Z, Y, X)`` as ``(T * Z, Y, X)`` (:func:`_model.scan_frames`),
        so the angles index it as a single-plane movie."""
        if self.layer is None:
            return None
        return _model.scan_frames(self.layer.data, _meta.get(self.layer.metadata))

    @property
    def metadata(self) -> dict:
        d = self.layer.metadata.get(_meta.KEY)
        if not isinstance(d, dict):
            d = {}
            self.layer.metadata[_meta.KEY] = d
        return d

    # -- angles -----------------------------------------------------------
    def pending(self) -> str | None:
        """The dataset folder whose signals are still being turned into
        this movie's angles, or ``None``."""
        if self.layer is None:
            return None
        return _meta.get(self.layer.metadata).get("angles_pending")

    def _on_arrived(self, d) -> None:
        if self.layer is not None and _meta.get(self.layer.metadata) is d:
            self.angles_changed.emit()
            self.warn_about_angles()

    def warn_about_angles(self) -> None:
        """One warning per movie and angles when their count is not the
        movie's line count or they hardly rotate."""
        found = self.angles()
        if found is None or not self.is_movie():
            return
        key = (id(self.layer), found[1], found[0].size)
        if key in self._warned:
            return
        self._warned.add(key)
        for message in _model.angle_warnings(found[0], self.shape()):
            notify("warning", f"{self.name()}: {message}")

    def angles(self):
        """``(angles_per_line, source)`` of the movie, or ``None``."""
        if self.layer is None:
            return None
        return _meta.angles(self.layer.metadata)

    def set_angles(self, angles, source: str, per_frame=None) -> bool:
        """Attach angles to the movie after checking their number; a wrong
        number is a notification and nothing changes."""
        if self.layer is None:
            notify("error", "choose a movie layer first")
            return False
        try:
            _model.check_inputs(self.data, angles)
        except DerotationError as exc:
            name = Path(str(source)).name or str(source)
            notify("error", f"{name}: {exc}; these angles do not fit {self.name()}")
            return False
        d = self.metadata
        d["angles_per_line"] = np.asarray(angles, np.float64)
        d["angles_source"] = source
        if per_frame is not None:
            d["angles_per_frame"] = np.asarray(per_frame, np.float64)
        else:
            d.pop("angles_per_frame", None)
        self.angles_changed.emit()
        self.warn_about_angles()
        return True

    # -- centre -----------------------------------------------------------
    @property
    def center(self) -> tuple[float, float]:
        """The chosen centre, else the frame centre (as the reference)."""
        if self.layer is None:
            return (0.0, 0.0)
        c = _meta.get(self.layer.metadata).get("center")
        if c is not None:
            return float(c[0]), float(c[1])
        return default_center(self.layer.data.shape)

    def set_center(self, row: float, col: float) -> None:
        if self.layer is None:
            return
        row, col = float(row), float(col)
        if (row, col) == self.center and "center" in self.metadata:
            return
        self.metadata["center"] = [row, col]
        self.center_changed.emit(row, col)

    # -- rotation plane -------------------------------------------------------
    @property
    def plane(self) -> tuple[float, float]:
        """``(tilt, orientation)`` of the rotation plane, degrees."""
        if self.layer is None:
            return (0.0, 0.0)
        d = _meta.get(self.layer.metadata)
        return (float(d.get("plane_tilt", 0.0)), float(d.get("plane_orientation", 0.0)))

    def set_plane(self, tilt: float, orientation: float) -> None:
        if self.layer is None or (float(tilt), float(orientation)) == self.plane:
            return
        self.metadata["plane_tilt"] = float(tilt)
        self.metadata["plane_orientation"] = float(orientation)
        self.plane_changed.emit(float(tilt), float(orientation))

    def params(self) -> DerotationParams:
        """The movie's centre and rotation plane as derotation parameters
        (interpolation and fill are the Derotate section's)."""
        return _meta.params(self.layer.metadata if self.layer else None).replace(
            center=self.center
        )

    def inputs(self):
        """``(data, angles, params)`` ready for the engine, or ``None`` after
        a notification saying what is missing."""
        found = self.angles()
        if self.pending():
            notify(
                "info",
                f"the angles of {self.name()} are still being "
                f"computed from the analog signals in "
                f"{self.pending()}; wait for them (activity dock)",
            )
            return None
        try:
            if self.layer is None:
                _model.check_inputs(None, None)
            if self.problem():
                raise DerotationError(f"{self.name()}: {self.problem()}")
            angles, center = _model.check_inputs(
                self.data, None if found is None else found[0], self.center
            )
        except DerotationError as exc:
            notify("error", str(exc))
            return None
        return self.data, angles, self.params().replace(center=center)

    def shape(self):
        return None if self.layer is None else tuple(self.layer.data.shape)

    def name(self) -> str:
        return "" if self.layer is None else self.layer.name
