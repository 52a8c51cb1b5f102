"""Angles from a dataset's analog signals, computed in the background.

The reader returns a dataset's movie at once, so opening a dataset folder
never freezes the viewer: the layer's derotation metadata says
``angles_pending`` (the folder) while :func:`compute_angles` computes the
angles in a worker (an item in napari's activity dock, with its Cancel).
When they arrive they are written into that same metadata dict and
:data:`RELAY` emits ``arrived(dict)``, so the widget, if open, shows them
and lets Derotate run. A failure or a cancel is one notification.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtCore import QObject, Signal

from ..errors import Cancelled, DerotationError
from ._common import notify
from ._workers import Failure, callback_worker


class _Relay(QObject):
    """Tells the widget that a metadata dict got (or gave up on) angles."""

    arrived = Signal(object)


RELAY = _Relay()
#: Running workers (kept referenced until they finish).
RUNNING: list = []


def compute_angles(meta: dict, ds, folder):
    """Compute ``ds``'s angles in a worker and write them into ``meta``
    (a layer's derotation dict); returns the worker (started)."""
    folder = Path(folder)
    meta["angles_pending"] = str(folder)
    worker = callback_worker(
        _compute, ds, folder, desc=f"angles from the signals in {folder.name}"
    )
    worker.returned.connect(lambda result: _arrived(meta, result, folder))
    worker.finished.connect(lambda: _finished(meta, worker))
    RUNNING.append(worker)
    worker.start()
    return worker


def folder_angles(folder, progress=None):
    """The angles of the dataset in ``folder`` (for the Data section's
    "From signals…"), with the same plain errors as :func:`_compute`."""
    from ..pipeline import Dataset

    folder = Path(folder)
    try:
        ds = Dataset.from_folder(folder)
    except DerotationError:
        raise
    except Exception as exc:
        raise DerotationError(
            f"{folder.name}: cannot read it as a dataset folder ({exc})"
        ) from None
    return _compute(ds, folder, progress)


def _compute(ds, folder: Path, progress=None):
    """The dataset's angles; a broken signal file becomes a
    :class:`DerotationError` naming the folder (never a traceback)."""
    try:
        return ds.compute_angles(progress=progress)
    except Cancelled:
        raise
    except Exception as exc:
        raise DerotationError(
            f"cannot compute the angles from the analog signals in {folder}: "
            f"{exc}; check its signal files, or load per-line angles in the "
            f"Data section"
        ) from None


def _arrived(meta: dict, result, folder: Path) -> None:
    if result is None:
        notify(
            "warning",
            f"{folder.name}: computing the angles was "
            f"cancelled; load them in the Data section",
        )
        return
    if isinstance(result, Failure):
        notify("error", result.message)
        return
    meta["angles_per_line"] = np.asarray(result.angles_per_line, np.float64)
    meta["angles_source"] = f"analog signals in {folder}"
    per_frame = getattr(result, "angles_per_frame", None)
    if per_frame is not None:
        meta["angles_per_frame"] = np.asarray(per_frame, np.float64)


def _finished(meta: dict, worker) -> None:
    meta.pop("angles_pending", None)
    if worker in RUNNING:
        RUNNING.remove(worker)
    RELAY.arrived.emit(meta)
