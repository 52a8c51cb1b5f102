import pytest


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
