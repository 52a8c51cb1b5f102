"""Thread workers for the slow steps; none of them touches a layer or widget.

* :func:`steps_worker` runs a generator of ``(done, total)`` steps (derotate,
  export) in a napari ``GeneratorWorker``: ``yielded`` drives the progress
  bar and ``worker.quit()`` stops it at the next step, leaving nothing
  behind (the generator's result is never delivered).
* :func:`callback_worker` runs a library function that reports through a
  ``progress`` callback (Bayesian search, ellipse fit) in a
  ``FunctionWorker``; the callback's reports reach the GUI thread through a
  Qt signal (``worker.relay.progressed``), and it returns ``False`` once
  ``worker.quit()`` was called, which cancels the function.

Given a ``desc``, a worker carries a :class:`WorkerProgress`
(``worker.pbar``): a ``napari.utils.progress`` shown in napari's activity
dock with its own Cancel (which quits the worker) while the worker runs, and
closed when it finishes. It is the one progress of the work: the widget's
bar (:class:`._common.ProgressRow`) mirrors it.

A user error (:class:`DerotationError`) inside a worker is returned as a
:class:`Failure`, and so is an operating-system error (a folder that cannot
be written, a full disk) in plain words naming the folder, so the widget
shows a notification, never a traceback.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

from napari.qt.threading import thread_worker
from napari.utils.progress import cancelable_progress
from qtpy.QtCore import QObject, Signal

from ..errors import Cancelled, DerotationError


@dataclass
class Failure:
    """A user error raised in a worker, returned instead of a result."""

    message: str


def os_message(exc: OSError) -> str:
    """An operating-system error in words a user can act on, naming the
    folder (not the hidden temporary file an output is written to first)."""
    from ..io.atomic import describe_os_error

    path = Path(exc.filename) if exc.filename else None
    if path is None:
        return f"cannot write to the output folder: {exc.strerror or exc}"
    if exc.errno == errno.ENOENT and not path.name.endswith(".partial"):
        return f"not found: {path}"
    if path.name.startswith(".") and ".partial" in path.name:
        path = path.parent / "…"  # name the folder, not the temp file
    elif path.is_dir():
        path = path / "…"
    return describe_os_error(exc, path)


class WorkerProgress(cancelable_progress):
    """napari's progress for one worker: an item in the activity dock whose
    Cancel quits the worker; closed when the worker finishes."""

    def __init__(self, worker, desc: str, total: int = 0):
        super().__init__(
            total=int(total), desc=desc, cancel_callback=worker.quit, leave=False
        )
        worker.finished.connect(self.close)

    def cancel(self) -> None:
        """Cancel from the dock (or the widget): stop the worker now (napari
        only stops a progress that wraps an iterable)."""
        super().cancel()
        self.cancel_callback()

    def report(self, done, total) -> None:
        """Set the progress to ``done`` of ``total`` (total 0: busy)."""
        if int(total) != self.total:
            self.total = int(total)
        self.update(int(done) - self.n)

    def close(self) -> None:
        if self in type(self)._all_instances:
            super().close()


class ProgressRelay(QObject):
    """Carries progress reports from a worker thread to the GUI thread."""

    progressed = Signal(object)


def warmup_worker(dtypes):
    """Compile the engine for ``dtypes`` in the background (started), so the
    first live preview or derotation does not pause the GUI."""
    from ..engine import warmup

    worker = _track(thread_worker(warmup, start_thread=False)(dtypes))
    worker.start()
    return worker


def steps_worker(gen_func, *args, desc: str | None = None, **kwargs):
    """A ``GeneratorWorker`` (not started) around ``gen_func(*args, **kwargs)``.

    ``gen_func`` yields ``(done, total)``; its return value is emitted by
    ``returned`` (or a :class:`Failure`). With ``desc``, its steps drive
    ``worker.pbar`` in the activity dock.
    """

    def run():
        try:
            result = yield from gen_func(*args, **kwargs)
        except DerotationError as exc:
            return Failure(str(exc))
        except OSError as exc:
            return Failure(os_message(exc))
        return result

    worker = _track(thread_worker(run, start_thread=False)(), desc)
    if worker.pbar is not None:
        worker.yielded.connect(lambda step: worker.pbar.report(*step))
    return worker


def _track(worker, desc: str | None = None):
    """Give a worker a ``done`` flag, set in the GUI thread when it finished
    (whether it returned, failed or was cancelled), and with ``desc`` its
    :class:`WorkerProgress` (``worker.pbar``, else ``None``)."""
    worker.pbar = None if desc is None else WorkerProgress(worker, desc)
    worker.done = False
    worker.finished.connect(lambda: setattr(worker, "done", True))
    if hasattr(worker, "aborted"):
        # superqt stops a cancelled generator without closing it: close it
        # now (the worker thread has let go of it), so its ``finally`` and
        # ``with`` blocks remove partial output at once, not at garbage
        # collection
        worker.aborted.connect(lambda: worker._gen.close())
    return worker


def callback_worker(func, *args, desc: str | None = None, **kwargs):
    """A ``FunctionWorker`` (not started) around ``func(*args, progress=cb,
    **kwargs)``; ``worker.relay.progressed`` emits the callback's arguments
    as a tuple (and, with ``desc``, drives ``worker.pbar``). Returns
    ``None`` through ``returned`` when cancelled."""
    relay = ProgressRelay()
    holder = {}

    def progress(*report):
        relay.progressed.emit(report)
        return not holder["worker"].abort_requested

    def run():
        try:
            return func(*args, progress=progress, **kwargs)
        except Cancelled:
            return None
        except DerotationError as exc:
            return Failure(str(exc))
        except OSError as exc:
            return Failure(os_message(exc))

    worker = _track(thread_worker(run, start_thread=False)(), desc)
    holder["worker"] = worker
    worker.relay = relay
    if worker.pbar is not None:
        relay.progressed.connect(lambda r: worker.pbar.report(r[0], r[1]))
    return worker
