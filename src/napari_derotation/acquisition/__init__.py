"""What the rig recorded: analog signals, stimulus tables, and the per-line
angles computed from them.

- :mod:`.loaders`: the analog file (``.bin``/``.npy``) and the stimulus table;
- :mod:`.signals`: clocks, rotation-on and motor ticks -> angle per line;
- :mod:`.angle_sources`: the config's ``rotation_source`` (ticks, or
  :mod:`.encoder`, :mod:`.position`, :mod:`.log`, :mod:`.frame_angles`,
  timed by :mod:`.linetimes`) -> the same result.
"""

from .loaders import AnalogSignals, load_analog, load_stimulus
from .signals import AnglesResult, SignalParams, process_signals

__all__ = [
    "AnalogSignals",
    "load_analog",
    "load_stimulus",
    "AnglesResult",
    "SignalParams",
    "process_signals",
]
