"""Files in and out: movies (TIFF, sequences, OME-Zarr), angle files, atomic
writes, provenance.

Raw data is never modified, and every output appears under its final name
only when complete.
"""

from .angles import ANGLE_SUFFIXES, load_angles, save_angles
from .atomic import OutputSet, atomic_path, check_not_input, file_sha256, write_json
from .frame_table import FRAME_COLUMNS, frame_table, write_frame_csv
from .provenance import record, sidecar_path, write_sidecar
from .sources import TIFF_SUFFIXES, open_movie, read_movie
from .tiff import TiffStreamWriter, write_tiff

__all__ = [
    "read_movie",
    "load_angles",
    "save_angles",
    "atomic_path",
    "write_tiff",
    "TiffStreamWriter",
    "write_json",
    "sidecar_path",
    "file_sha256",
    "check_not_input",
    "ANGLE_SUFFIXES",
    "open_movie",
    "record",
    "write_sidecar",
    "OutputSet",
    "FRAME_COLUMNS",
    "frame_table",
    "write_frame_csv",
    "TIFF_SUFFIXES",
]
