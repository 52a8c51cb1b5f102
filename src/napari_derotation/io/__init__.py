"""Files in and out: TIFF movies, angle files, atomic writes, provenance.

Raw data is never modified, and every output appears under its final name
only when complete.
"""

from .angles import ANGLE_SUFFIXES, load_angles, save_angles
from .atomic import OutputSet, atomic_path, check_not_input, file_sha256, write_json
from .frame_table import FRAME_COLUMNS, frame_table, write_frame_csv
from .provenance import record, sidecar_path, write_sidecar
from .tiff import MovieFile, TiffStreamWriter, read_movie, write_tiff

__all__ = ["read_movie", "load_angles", "save_angles", "atomic_path",
           "write_tiff", "TiffStreamWriter", "write_json", "sidecar_path",
           "file_sha256", "check_not_input", "ANGLE_SUFFIXES", "MovieFile",
           "record", "write_sidecar", "OutputSet", "FRAME_COLUMNS",
           "frame_table", "write_frame_csv"]
