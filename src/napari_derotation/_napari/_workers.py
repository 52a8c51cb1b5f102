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

A user error (:class:`DerotationError`) inside a worker is returned as a
:class:`Failure`, so the widget shows it as a notification, not a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

from napari.qt.threading import thread_worker
from qtpy.QtCore import QObject, Signal

from ..errors import Cancelled, DerotationError


@dataclass
class Failure:
    """A user error raised in a worker, returned instead of a result."""

    message: str


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


def steps_worker(gen_func, *args, **kwargs):
    """A ``GeneratorWorker`` (not started) around ``gen_func(*args, **kwargs)``.

    ``gen_func`` yields ``(done, total)``; its return value is emitted by
    ``returned`` (or a :class:`Failure`).
    """

    def run():
        try:
            result = yield from gen_func(*args, **kwargs)
        except DerotationError as exc:
            return Failure(str(exc))
        return result

    return _track(thread_worker(run, start_thread=False)())


def _track(worker):
    """Give a worker a ``done`` flag, set in the GUI thread when it finished
    (whether it returned, failed or was cancelled)."""
    worker.done = False
    worker.finished.connect(lambda: setattr(worker, "done", True))
    if hasattr(worker, "aborted"):
        # superqt stops a cancelled generator without closing it: close it
        # now (the worker thread has let go of it), so its ``finally`` and
        # ``with`` blocks remove partial output at once, not at garbage
        # collection
        worker.aborted.connect(lambda: worker._gen.close())
    return worker


def callback_worker(func, *args, **kwargs):
    """A ``FunctionWorker`` (not started) around ``func(*args, progress=cb,
    **kwargs)``; ``worker.relay.progressed`` emits the callback's arguments
    as a tuple. Returns ``None`` through ``returned`` when cancelled."""
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

    worker = _track(thread_worker(run, start_thread=False)())
    holder["worker"] = worker
    worker.relay = relay
    return worker


def function_worker(func, *args, **kwargs):
    """A ``FunctionWorker`` (not started) for a quick call without progress;
    user errors come back as a :class:`Failure`."""

    def run():
        try:
            return func(*args, **kwargs)
        except DerotationError as exc:
            return Failure(str(exc))

    return _track(thread_worker(run, start_thread=False)())
