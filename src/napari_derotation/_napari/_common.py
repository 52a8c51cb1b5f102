"""Small Qt helpers shared by the widget's sections."""

from __future__ import annotations

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QEvent, QTimer
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)


def named(widget: QWidget, name: str, tip: str | None = None) -> QWidget:
    """Give a control its object name (tests and styles find it by name)."""
    widget.setObjectName(name)
    if tip:
        widget.setToolTip(tip)
    return widget


def guarded(func):
    """``func`` as a slot that does nothing once its widget is gone (the
    viewer closed while a worker still ran: its last signals arrive after
    the widget was deleted)."""

    def slot(*args):
        try:
            return func(*args)
        except RuntimeError as exc:
            if "deleted" not in str(exc):
                raise
            return None

    return slot


def notify(level: str, message: str) -> None:
    """A napari notification: ``level`` is "error", "warning" or "info"."""
    {"error": show_error, "warning": show_warning, "info": show_info}[level](message)


class ProgressRow(QWidget):
    """A progress bar with a Cancel button, hidden while idle.

    While a worker runs it mirrors the worker's napari progress (the item in
    napari's activity dock, :class:`._workers.WorkerProgress`), and its
    Cancel cancels that progress, which quits the worker: the two places
    show one progress and either stops the work.
    """

    def __init__(self, prefix: str, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.bar = named(QProgressBar(), f"{prefix}_progress")
        self.bar.setTextVisible(True)
        self.cancel = named(
            QPushButton("Cancel"), f"{prefix}_cancel_button", "Stop; nothing is kept"
        )
        lay.addWidget(self.bar, 1)
        lay.addWidget(self.cancel)
        self.pbar = None
        self.cancel.clicked.connect(self._cancel)
        self.setVisible(False)

    def start(self, total: int = 0) -> None:
        self.bar.setRange(0, total)
        self.bar.setValue(0)
        self.setVisible(True)

    def update(self, done: int, total: int) -> None:
        self.bar.setRange(0, int(total))
        self.bar.setValue(int(done))

    def stop(self) -> None:
        if self.pbar is not None:
            self.pbar.events.value.disconnect(self._on_value)
            self.pbar.events.total.disconnect(self._on_total)
        self.pbar = None
        self.setVisible(False)

    def follow(self, pbar) -> None:
        """Mirror ``pbar`` (a napari progress) in this bar until stopped."""
        self.pbar = pbar
        if pbar.total:
            self.bar.setRange(0, int(pbar.total))
        pbar.events.value.connect(self._on_value)
        pbar.events.total.connect(self._on_total)

    def _on_value(self, event) -> None:
        self.bar.setValue(int(event.value))

    def _on_total(self, event) -> None:
        self.bar.setRange(0, int(event.value))

    def _cancel(self) -> None:
        if self.pbar is not None:
            self.pbar.cancel()

    def run(self, worker, *, on_done, on_finished, label: QLabel, cancelled: str):
        """Start a steps worker reporting ``(done, total)`` into this bar
        (through its ``worker.pbar``): its result goes to ``on_done``
        unless it was cancelled, a cancel writes ``cancelled`` into
        ``label``, and ``on_finished`` runs in every case."""
        if worker.pbar is not None:
            self.follow(worker.pbar)
        else:
            worker.yielded.connect(lambda s: self.update(*s))
        worker.returned.connect(
            guarded(lambda out: None if worker.abort_requested else on_done(out))
        )
        worker.aborted.connect(guarded(lambda: label.setText(cancelled)))
        worker.finished.connect(guarded(on_finished))
        worker.start()
        return worker


class WrapLabel(QLabel):
    """A word-wrapped label that is never shorter than its text: a form
    layout gives a wrapped label the height of its size hint, which is
    too short once the text wraps over more lines (clipped at the top and
    bottom, or overlapping the row below)."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self.setWordWrap(True)

    def resizeEvent(self, e):  # noqa: N802 (Qt API)
        super().resizeEvent(e)
        self._fit()

    def setText(self, text: str) -> None:  # noqa: N802 (Qt API)
        super().setText(text)
        self._fit()

    def _fit(self) -> None:
        height = self.heightForWidth(self.width()) if self.width() > 0 else -1
        if height > 0 and height != self.minimumHeight():
            self.setMinimumHeight(height)


def wrapped(name: str, text: str = "", tip: str | None = None) -> WrapLabel:
    """A word-wrapped label with its object name."""
    return named(WrapLabel(text), name, tip)


def hint(text: str, name: str) -> QLabel:
    """A grey, word-wrapped label."""
    label = wrapped(name, text)
    label.setStyleSheet("color: grey;")
    return label


class Section(QWidget):
    """A section of the widget that keeps its collapsible box as tall as it
    needs: a collapsible fixes its content's height when it opens, so labels
    that grow or progress bars that appear later would be clipped."""

    def event(self, e):
        if e.type() == QEvent.Type.LayoutRequest:
            QTimer.singleShot(0, guarded(self.refit))
        return super().event(e)

    def sizeHint(self):  # noqa: N802 (Qt API)
        """As tall as the wrapped labels need at the current width (the
        collapsible opens its content to this height)."""
        hint_ = super().sizeHint()
        layout = self.layout()
        if layout is not None and layout.hasHeightForWidth() and self.width() > 0:
            hint_.setHeight(max(hint_.height(), layout.heightForWidth(self.width())))
        return hint_

    def refit(self) -> None:
        parent = self.parentWidget()
        while parent is not None and not hasattr(parent, "isExpanded"):
            parent = parent.parentWidget()
        if (
            parent is not None
            and parent.isExpanded()
            and not getattr(parent, "_is_animating", False)
        ):
            content = parent.content()
            height = content.sizeHint().height()
            # the minimum too: the box above lays the content out from a
            # size hint it cached before the labels wrapped
            content.setMinimumHeight(height)
            content.setMaximumHeight(height + 10)
