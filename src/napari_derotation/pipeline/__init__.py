"""The whole pipeline of one experiment, as the reference runs it.

- :mod:`.config`: the YAML/TOML config (the reference's keys work);
- :mod:`.dataset`: a dataset's files, found in a folder or named by a config;
- :mod:`.run`: signals -> angles -> centre -> derotated movie and records
  (:func:`run_dataset`);
- :mod:`.plots`: optional debug plots.
"""

from ..acquisition.signals import AnglesResult
from .config import Config, load_config
from .dataset import OUTPUT_SUBFOLDER, Dataset
from .run import run_dataset, write_frame_csv

__all__ = [
    "Dataset",
    "AnglesResult",
    "run_dataset",
    "write_frame_csv",
    "OUTPUT_SUBFOLDER",
    "Config",
    "load_config",
]
