"""The one progress protocol of the package.

Every long call (``derotate``, ``derotate_file``, ``run_dataset``, the
centre search, the ellipse fit) takes ``progress``: a plain callable
``progress(done, total)`` called as work completes; returning ``False``
cancels the work, which raises :class:`~napari_derotation.errors.Cancelled`
and leaves nothing behind. It is adapted once for the terminal
(:class:`napari_derotation.cli._common.Progress`) and once for napari
(:class:`napari_derotation._napari._workers.WorkerProgress`).
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import Cancelled

__all__ = ["Progress", "Stages"]

#: ``progress(done, total) -> bool | None``
Progress = Callable[[int, int], "bool | None"]


class Stages:
    """One progress over weighted stages: ``stages.stage(name)`` is the
    progress of one stage, reported to ``callback`` as part of a total of
    1000; a ``False`` from ``callback`` raises :class:`Cancelled` naming
    the stage."""

    def __init__(self, callback: Progress | None, weights: dict):
        self.callback = callback
        total = sum(weights.values())
        self.spans, start = {}, 0.0
        for name, w in weights.items():
            self.spans[name] = (start, w / total * 1000)
            start += w / total * 1000

    def stage(self, name) -> Progress:
        start, width = self.spans.get(name, (0.0, 0.0))

        def report(done, total):
            if self.callback is None:
                return None
            value = int(start + width * (done / total if total else 1.0))
            if self.callback(min(value, 1000), 1000) is False:
                raise Cancelled(f"cancelled during {name}")
            return None

        return report
