"""A tiny plot of the angle of every scanned line (no plotting library).

The trace is reduced to a min/max envelope per horizontal pixel, so a
million lines draw as fast as a hundred; a vertical marker shows the frame
on screen.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QPointF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget


class AnglePlot(QWidget):
    """Angle (degrees) against line number, with the current frame marked."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("angle_plot")
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.angles: np.ndarray | None = None
        self.rows = 1
        self.frame: int | None = None
        self.empty = "no angles"

    def set_angles(self, angles, rows: int = 1, empty: str = "no angles") -> None:
        """Plot ``angles`` (one per line, ``rows`` lines a frame); without
        angles the plot says ``empty``."""
        self.angles = None if angles is None else np.asarray(angles, float)
        self.rows = max(1, int(rows))
        self.empty = empty
        self.update()

    def set_frame(self, frame: int | None) -> None:
        self.frame = frame
        self.update()

    def envelope(self, width: int):
        """Per-pixel (min, max) of the angles over ``width`` columns."""
        a = self.angles
        edges = np.linspace(0, a.size, width + 1).astype(int)
        edges[-1] = a.size
        starts = np.minimum(edges[:-1], a.size - 1)
        return np.minimum.reduceat(a, starts), np.maximum.reduceat(a, starts)

    def paintEvent(self, event):  # noqa: N802 (Qt API)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        pad_l, pad_r, pad_t, pad_b = 34, 6, 6, 14
        pw, ph = max(1, w - pad_l - pad_r), max(1, h - pad_t - pad_b)
        p.fillRect(self.rect(), QColor(38, 41, 48))
        fg = QColor(200, 200, 200)
        p.setPen(fg)
        if self.angles is None or self.angles.size == 0:
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.empty)
            return
        lo, hi = self.envelope(pw)
        vmin, vmax = float(lo.min()), float(hi.max())
        if vmax - vmin < 1e-9:
            vmin, vmax = vmin - 1, vmax + 1

        def y(v):
            return pad_t + ph * (vmax - v) / (vmax - vmin)

        font = p.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.75))
        p.setFont(font)
        p.drawText(2, int(y(vmax)) + 8, f"{vmax:.0f}°")
        p.drawText(2, int(y(vmin)), f"{vmin:.0f}°")
        p.drawText(pad_l, h - 2, "line")
        p.drawText(w - pad_r - 60, h - 2, f"{self.angles.size}")
        p.setPen(QPen(QColor(90, 90, 90), 1))
        p.drawRect(pad_l, pad_t, pw, ph)
        # envelope as a polyline going right along the max and back on the min
        pts = [QPointF(pad_l + i + 0.5, y(v)) for i, v in enumerate(hi)]
        pts += [
            QPointF(pad_l + i + 0.5, y(v)) for i, v in reversed(list(enumerate(lo)))
        ]
        p.setPen(QPen(QColor(80, 190, 255), 1.2))
        p.drawPolyline(QPolygonF(pts))
        if self.frame is not None:
            x = pad_l + pw * (self.frame * self.rows) / self.angles.size
            p.setPen(QPen(QColor(255, 170, 0), 1))
            p.drawLine(QPointF(x, pad_t), QPointF(x, pad_t + ph))
        p.end()
