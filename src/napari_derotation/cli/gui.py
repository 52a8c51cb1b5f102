"""``napari-derotation gui [MOVIE]``: napari with the Derotation widget.

Opens napari with the plugin's "Derotation" widget docked and the sample
"Rotating cells (synthetic)" loaded, or the given movie (a TIFF, with its
angles found beside it, or a dataset folder). Without a display it says so,
points to ``napari-derotation demo`` and exits with code 3.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import DerotationError

NAME = "gui"
ORDER = 1
HELP = (
    "Start napari with the Derotation widget docked and the sample "
    "movie loaded (or MOVIE: a TIFF or a dataset folder)."
)
NO_DISPLAY = 3
#: SIGTERM keeps its default (end the process): an event loop would not see
#: the exception the other commands raise to clean up.
SIGTERM_CLEANUP = False


def add_arguments(p):
    p.add_argument(
        "movie",
        nargs="?",
        type=Path,
        default=None,
        help="a TIFF movie (its angles are looked for beside it) "
        "or a dataset folder; default the synthetic sample",
    )


def has_display() -> bool:
    """False on Linux/BSD without an X11 or Wayland display."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd")):
        return True
    if os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def check_movie_path(movie: Path) -> None:
    if not movie.exists():
        raise DerotationError(f"movie not found: {movie}")
    from .._napari._reader import napari_get_reader

    if napari_get_reader(str(movie)) is None:
        raise DerotationError(
            f"{movie.name}: expected a .tif/.tiff movie or a dataset folder "
            f"(analog signals, stimulus table, config)"
        )


def launch(movie: Path | None = None, *, show: bool = True):
    """A napari viewer with the Derotation widget docked and the movie (or
    the sample) opened; returns ``(viewer, widget)``."""
    import napari

    viewer = napari.Viewer(title="napari-derotation", show=show)
    if movie is None:
        viewer.open_sample("napari-derotation", "rotating_cells")
    else:
        viewer.open(str(movie), plugin="napari-derotation")
    _, widget = viewer.window.add_plugin_dock_widget("napari-derotation", "Derotation")
    return viewer, widget


def require_napari() -> None:
    """Raise a one-line :class:`DerotationError` saying what to install when
    napari or a Qt binding is missing (the core needs neither)."""
    import importlib.util

    if importlib.util.find_spec("napari") is None:
        raise DerotationError(
            "napari is not installed: pip install 'napari-derotation[qt]' "
            "(napari with PyQt6), or run the headless 'napari-derotation demo'"
        )
    if not any(
        importlib.util.find_spec(b) for b in ("PyQt6", "PyQt5", "PySide6", "PySide2")
    ):
        raise DerotationError(
            "napari needs a Qt binding: pip install PyQt6 (or "
            "'napari-derotation[qt]'), or run the headless "
            "'napari-derotation demo'"
        )


def run(args) -> int:
    require_napari()
    if args.movie is not None:
        check_movie_path(args.movie)
    if not has_display():
        print(
            "napari-derotation gui: no display found (DISPLAY and "
            "WAYLAND_DISPLAY are unset); run 'napari-derotation demo' for "
            "the same correction without a window",
            file=sys.stderr,
        )
        return NO_DISPLAY
    import napari

    launch(args.movie)
    napari.run()
    return 0
