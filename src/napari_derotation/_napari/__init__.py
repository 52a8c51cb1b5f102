"""The napari plugin: reader, writer, sample data and the Derotation widget.

Everything napari- or Qt-specific lives in this subpackage; the manifest
(``napari_derotation/napari.yaml``) points at the functions re-exported here.
"""

from ._reader import napari_get_reader
from ._sample_data import make_sample_data
from ._writer import write_image

__all__ = ["napari_get_reader", "write_image", "make_sample_data",
           "DerotationWidget"]


def __getattr__(name):
    # the widget imports Qt; load it only when napari asks for it
    if name == "DerotationWidget":
        from ._widget import DerotationWidget
        return DerotationWidget
    raise AttributeError(name)
