"""The napari plugin: reader, writer, sample data and the Derotation widget.

Everything napari- or Qt-specific lives in this subpackage; the manifest
(``napari_derotation/napari.yaml``) points at the functions re-exported here.
"""

from .._lazy import lazy_names
from ._reader import napari_get_reader
from ._sample_data import make_sample_data
from ._writer import write_image

__all__ = ["napari_get_reader", "write_image", "make_sample_data", "DerotationWidget"]


# the widget imports Qt: loaded only when napari asks for it
__getattr__, __dir__ = lazy_names(__name__, globals(), {"DerotationWidget": "_widget"})
