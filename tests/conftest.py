"""Shared fixtures. The tests are laid out like the package, one folder
per part; a test module may use another's fixtures and data makers by its
name (``from test_run import make_dataset``), so every folder is on the
import path."""

import sys
from pathlib import Path

import pytest

for _folder in sorted(Path(__file__).parent.iterdir()):
    if _folder.is_dir() and _folder.name not in ("data", "__pycache__"):
        sys.path.insert(0, str(_folder))


@pytest.fixture
def notes():
    """Messages of the napari notifications shown during a test."""
    from napari.utils.notifications import notification_manager

    seen = []

    def grab(event):
        seen.append(
            str(event.message if hasattr(event, "message") else event.value.message)
        )

    notification_manager.notification_ready.connect(grab)
    yield seen
    notification_manager.notification_ready.disconnect(grab)
