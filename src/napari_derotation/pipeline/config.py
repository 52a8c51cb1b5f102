"""Pipeline configuration: the reference's YAML keys, plus a few of our own.

A lab's existing ``config_template.yml`` for the reference package loads
unchanged. Keys the reference reads but ignores are reported (not silently
dropped), and so are unknown keys. The same nested layout is accepted from
YAML (``.yml``/``.yaml``) or TOML (``.toml``). Every key, its default and its
meaning: ``docs/config.md``. Relative paths are relative to the config file.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..acquisition.loaders import (
    DEFAULT_CHANNEL_NAMES,
    DEFAULT_CHANNELS,
    DEFAULT_ROWS,
    ROLES,
)
from ..acquisition.signals import SignalParams
from ..checks import file_stem
from ..engine.params import DerotationParams
from ..errors import DerotationError

__all__ = ["Config", "load_config", "KEYS", "SOURCE_KEYS", "ROTATION_SOURCES",
           "CONFIG_SUFFIXES"]

CONFIG_SUFFIXES = (".yml", ".yaml", ".toml")

#: File key path -> Config field (None: accepted but not used).
KEYS: dict[tuple[str, ...], str | None] = {
    ("pipeline_type",): "pipeline_type",
    ("paths_read", "path_to_tif"): "movie",
    ("paths_read", "path_to_aux"): "signals",
    ("paths_read", "path_to_randperm"): "stimulus",
    ("paths_write", "derotated_tiff_folder"): "output_folder",
    ("paths_write", "saving_name"): "saving_name",
    ("paths_write", "debug_plots_folder"): "debug_plots_folder",
    ("paths_write", "logs_folder"): None,
    ("paths_write", "overwrite"): "overwrite",
    ("paths_write", "output_format"): "output_format",
    ("channel_names",): "channel_names",
    ("channels",): "channels",
    ("npy_rows",): "npy_rows",
    ("rotation_increment",): "rotation_increment",
    ("adjust_increment",): None,
    ("rot_deg",): "rot_deg",
    ("incremental_step",): "incremental_step",
    ("incremental_direction",): "incremental_direction",
    ("debugging_plots",): "debugging_plots",
    ("frame_rate",): "frame_rate",
    ("sampling_rate",): "sampling_rate",
    ("analog_signals_processing", "find_rotation_ticks_peaks", "height"):
        "tick_height",
    ("analog_signals_processing", "find_rotation_ticks_peaks", "distance"):
        "tick_distance",
    ("analog_signals_processing", "squared_pulse_k"): "squared_pulse_k",
    ("analog_signals_processing", "pulse_threshold"): "pulse_threshold",
    ("analog_signals_processing", "inter_rotation_interval_min_len"):
        "inter_rotation_interval_min_len",
    ("analog_signals_processing", "angle_interpolation_artifact_threshold"):
        "artifact_threshold",
    ("analog_signals_processing", "repair_ticks"): "repair_ticks",
    ("analog_signals_processing", "line_count_mismatch"): "line_count_mismatch",
    ("interpolation", "line_use_start"): "line_use_start",
    ("interpolation", "frame_use_start"): "frame_use_start",
    ("biased_center",): "biased_center",
    ("center",): "center",
    ("center_method",): "center_method",
    ("delta_center",): "delta_center",
    ("angle_delay",): "angle_delay",
    ("init_points",): None,
    ("n_iter",): None,
    ("blank_value",): "blank_value",
    ("resampling",): "resampling",
    # the rotation plane (issue: one parameter path) and the cell fit
    ("rotation_plane", "tilt"): "plane_tilt",
    ("rotation_plane", "orientation"): "plane_orientation",
    ("rotation_plane", "output"): "plane_output",
    ("ellipse", "seed"): "ellipse_seed",
    ("ellipse", "frame"): "ellipse_frame",
    ("ellipse", "apply_plane"): "apply_fitted_plane",
    # movies with channels and planes (issue #11); "channels" above is the
    # analog signals' channel map, so the movie's layout is nested here
    ("movie", "channels"): "movie_channels",
    ("movie", "planes"): "movie_planes",
    ("movie", "structural_channel"): "structural_channel",
    ("movie", "center_plane"): "center_plane",
}

# --- angle sources (rotation_source; docs/sources.md) -----------------------
#: Keys of the angle sources other than the reference's ticks.
SOURCE_KEYS: dict[tuple[str, ...], str] = {
    ("rotation_source",): "rotation_source",
    ("encoder", "channel_a"): "encoder_channel_a",
    ("encoder", "channel_b"): "encoder_channel_b",
    ("encoder", "counts_per_turn"): "encoder_counts_per_turn",
    ("encoder", "direction"): "encoder_direction",
    ("position", "channel"): "position_channel",
    ("position", "degrees_per_volt"): "position_degrees_per_volt",
    ("position", "offset_volts"): "position_offset_volts",
    ("position", "range_volts"): "position_range_volts",
    ("position", "smoothing_samples"): "position_smoothing_samples",
    ("log", "path"): "log_path",
    ("log", "time_column"): "log_time_column",
    ("log", "angle_column"): "log_angle_column",
    ("log", "clock"): "log_clock",
    ("log", "log_offset_s"): "log_offset_s",
    ("frame_angles", "path"): "frame_angles_path",
    ("frame_angles", "clock"): "frame_angles_clock",
}
KEYS.update(SOURCE_KEYS)
ROTATION_SOURCES = ("ticks", "encoder", "position", "log", "frame_angles")
LINE_CLOCKS = ("line_clock", "scanimage", "frame_rate")
#: What each source needs in the config (field, file key).
_SOURCE_REQUIRED = {
    "encoder": ("encoder_channel_a", "encoder_channel_b",
                "encoder_counts_per_turn"),
    "position": ("position_channel", "position_degrees_per_volt"),
    "log": ("log_path",),
    "frame_angles": ("frame_angles_path",),
}

_IGNORED = {
    ("paths_write", "logs_folder"):
        "not used: progress goes to stderr and every parameter to the JSON "
        "record",
    ("adjust_increment",):
        "not used: the increment is always adjusted per rotation (as in the "
        "reference since 0.1, which ignores this key too)",
    ("init_points",):
        "not used: the Bayesian centre search sets its own budget",
    ("n_iter",):
        "not used: the Bayesian centre search sets its own budget",
}
_FILE_KEY = {v: ".".join(k) for k, v in KEYS.items() if v}
#: the movie-layout keys and their smallest values
_MOVIE_LAYOUT = {"movie_channels": 1, "movie_planes": 1,
                 "structural_channel": 0, "center_plane": 0}
_PATHS = ("movie", "signals", "stimulus", "output_folder", "debug_plots_folder",
          "log_path", "frame_angles_path")


@dataclass
class Config:
    """Everything the pipeline needs, with defaults (see ``docs/config.md``)."""

    pipeline_type: str = "full"
    movie: Path | None = None
    signals: Path | None = None
    stimulus: Path | None = None
    output_folder: Path | None = None
    saving_name: str = "derotated"
    overwrite: bool = False
    output_format: str = "tif"
    debug_plots_folder: Path | None = None
    channel_names: tuple = DEFAULT_CHANNEL_NAMES
    channels: dict = field(default_factory=lambda: dict(DEFAULT_CHANNELS))
    npy_rows: tuple = DEFAULT_ROWS
    rotation_increment: float = 0.2
    rot_deg: float = 360.0
    incremental_step: float = 10.0
    incremental_direction: int = -1
    debugging_plots: bool = False
    frame_rate: float | None = None
    sampling_rate: float | None = None
    tick_height: float = 4.0
    tick_distance: int = 20
    squared_pulse_k: float = 0.0
    pulse_threshold: str = "auto"
    inter_rotation_interval_min_len: int = 1000
    artifact_threshold: float = 0.15
    repair_ticks: bool = True
    line_count_mismatch: str = "error"
    line_use_start: bool = True
    frame_use_start: bool = True
    biased_center: tuple | None = None
    center: tuple | None = None
    center_method: str = "given"
    delta_center: float = 7.0
    angle_delay: float | str = 0.0
    blank_value: float | None = None
    resampling: str = "bilinear"
    plane_tilt: float = 0.0
    plane_orientation: float = 0.0
    plane_output: str = "imaging"
    ellipse_seed: tuple | None = None
    ellipse_frame: int = 0
    apply_fitted_plane: bool = True
    # angle sources (SOURCE_KEYS)
    rotation_source: str = "ticks"
    encoder_channel_a: str | int | None = None
    encoder_channel_b: str | int | None = None
    encoder_counts_per_turn: float | None = None
    encoder_direction: int = 1
    position_channel: str | int | None = None
    position_degrees_per_volt: float | None = None
    position_offset_volts: float = 0.0
    position_range_volts: tuple = (-10.0, 10.0)
    position_smoothing_samples: int = 101
    log_path: Path | None = None
    log_time_column: str = "time_s"
    log_angle_column: str = "angle_deg"
    log_clock: str = "line_clock"
    log_offset_s: float = 0.0
    frame_angles_path: Path | None = None
    frame_angles_clock: str = "frame_rate"
    movie_channels: int | None = None
    movie_planes: int | None = None
    structural_channel: int | None = None
    center_plane: int | None = None
    source: Path | None = None
    warnings: list = field(default_factory=list, compare=False)

    # ------------------------------------------------------------ building
    @classmethod
    def from_dict(cls, data: dict, base: Path | None = None) -> Config:
        """Build from a nested dict in the file layout; record warnings."""
        if not isinstance(data, dict):
            raise DerotationError(
                f"a config must be a mapping of keys to values; got "
                f"{type(data).__name__}")
        values, notes = {}, []
        for key, value in _flatten(data):
            name = ".".join(key)
            if key in _IGNORED:
                notes.append(f"{name}: {_IGNORED[key]}")
            elif key not in KEYS:
                notes.append(f"{name}: unknown key, ignored")
            else:
                values[KEYS[key]] = value
        values = {k: _coerce(k, v, base) for k, v in values.items()}
        cfg = cls(**values)
        if ("analog_signals_processing",
                "angle_interpolation_artifact_threshold") in dict(_flatten(data)):
            notes.append(
                "angle_interpolation_artifact_threshold: used as given "
                f"({cfg.artifact_threshold:g} degrees); the reference ignores "
                "it and uses 0.2")
        if "pipeline_type" in values:
            notes.append(
                f"pipeline_type: selects the pipeline here "
                f"({cfg.pipeline_type!r}); the reference ignores this key")
        if "squared_pulse_k" in values and cfg.pulse_threshold == "auto":
            notes.append(
                "squared_pulse_k: not used: pulses are detected midway between "
                "each signal's low and high levels (set analog_signals_"
                "processing.pulse_threshold: mean_std to use mean + k * std as "
                "the reference)")
        if "delta_center" in values and cfg.center_method != "bayesian":
            notes.append(
                "delta_center: used only with center_method: bayesian (the "
                "reference always searched; here the given centre is used)")
        cfg.warnings = notes
        return cfg.check()

    def check(self) -> Config:
        """Validate values; raise :class:`DerotationError` naming the key."""
        _choice("pipeline_type", self.pipeline_type, ("full", "incremental"))
        _choice("center_method", self.center_method,
                ("given", "bayesian", "ellipse"))
        if self.center_method == "ellipse" and self.ellipse_seed is None:
            raise DerotationError(
                "center_method: ellipse needs ellipse.seed: [row, col], a "
                "bright cell in frame ellipse.frame of the raw movie")
        _choice("pulse_threshold", self.pulse_threshold, ("auto", "mean_std"))
        _choice("resampling", self.resampling, ("bilinear", "nearest"))
        _choice("paths_write.output_format", self.output_format,
                ("tif", "zarr", "nwb"))
        for role in ROLES:
            if role not in self.channels:
                raise DerotationError(
                    f"channels: expected a channel name for each of "
                    f"{', '.join(ROLES)}; {role} is missing")
        if len(self.npy_rows) != 4:
            raise DerotationError(
                f"npy_rows: expected 4 row numbers; got {list(self.npy_rows)}")
        self.derotation_params()
        for name in ("center", "biased_center", "ellipse_seed"):
            v = getattr(self, name)
            if v is not None and len(v) != 2:
                raise DerotationError(f"{name}: expected 2 numbers; got {v}")
        file_stem("paths_write.saving_name", self.saving_name)
        if self.frame_rate is not None and not self.frame_rate > 0:
            raise DerotationError(f"frame_rate must be > 0; got {self.frame_rate}")
        self.signal_params()
        self._check_source()
        return self

    def _check_source(self):
        """The keys of the chosen ``rotation_source`` (see SOURCE_KEYS)."""
        _choice("rotation_source", self.rotation_source, ROTATION_SOURCES)
        _choice("log.clock", self.log_clock, LINE_CLOCKS)
        _choice("frame_angles.clock", self.frame_angles_clock, LINE_CLOCKS)
        for name in _SOURCE_REQUIRED.get(self.rotation_source, ()):
            if getattr(self, name) is None:
                raise DerotationError(
                    f"{_FILE_KEY[name]}: required with rotation_source: "
                    f"{self.rotation_source}; not given")
        if self.encoder_direction not in (-1, 1):
            raise DerotationError(
                f"encoder.direction: expected 1 or -1; got "
                f"{self.encoder_direction}")
        cpt = self.encoder_counts_per_turn
        if cpt is not None and not cpt > 0:
            raise DerotationError(
                f"encoder.counts_per_turn: expected a number > 0; got {cpt}")
        dpv = self.position_degrees_per_volt
        if dpv is not None and (dpv == 0 or dpv != dpv):
            raise DerotationError(
                f"position.degrees_per_volt: expected a non-zero number; got "
                f"{dpv}")
        lo_hi = tuple(self.position_range_volts)
        if len(lo_hi) != 2 or not lo_hi[0] < lo_hi[1]:
            raise DerotationError(
                f"position.range_volts: expected [low, high] with low < high; "
                f"got {list(lo_hi)}")
        if self.position_smoothing_samples < 1:
            raise DerotationError(
                f"position.smoothing_samples: expected a whole number >= 1; "
                f"got {self.position_smoothing_samples}")

    def signal_params(self) -> SignalParams:
        """The parameters of
        :func:`napari_derotation.acquisition.signals.process_signals`."""
        return SignalParams(
            protocol=self.pipeline_type, rot_deg=self.rot_deg,
            increment=self.rotation_increment, step=self.incremental_step,
            incremental_direction=self.incremental_direction,
            tick_height=self.tick_height, tick_distance=self.tick_distance,
            threshold_k=(self.squared_pulse_k if self.pulse_threshold ==
                         "mean_std" else None),
            min_off_samples=self.inter_rotation_interval_min_len,
            artifact_threshold=self.artifact_threshold,
            repair_ticks=self.repair_ticks, line_use_start=self.line_use_start,
            frame_use_start=self.frame_use_start,
            line_count_mismatch=self.line_count_mismatch).check()

    def derotation_params(self, *, center=None, fill_value=0.0,
                          plane=None, angle_delay=None) -> DerotationParams:
        """The :class:`DerotationParams` this config asks for, with the
        centre and fill value found by the pipeline; ``plane`` (tilt,
        orientation) replaces the configured one (a fitted plane) and
        ``angle_delay`` the configured one (``auto``: found by the run)."""
        if angle_delay is None:
            angle_delay = 0.0 if self.angle_delay == "auto" else \
                self.angle_delay
        tilt, orientation = plane if plane is not None else (
            self.plane_tilt, self.plane_orientation)
        try:
            return DerotationParams(
                center=center, interpolation=self.resampling,
                fill_value=fill_value, plane_tilt=tilt,
                plane_orientation=orientation, plane_output=self.plane_output,
                angle_delay=angle_delay)
        except DerotationError as exc:
            raise DerotationError(f"config: {exc}") from None

    def center_row_col(self) -> tuple[float, float] | None:
        """``center`` (row, col), else ``biased_center`` (x, y) reversed."""
        if self.center is not None:
            return (float(self.center[0]), float(self.center[1]))
        if self.biased_center is not None:
            return (float(self.biased_center[1]), float(self.biased_center[0]))
        return None

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes).check()

    def to_dict(self) -> dict:
        """Nested dict in the file layout (paths as strings)."""
        out: dict = {}
        for key, name in KEYS.items():
            if name is None or not self._writes(key):
                continue
            value = getattr(self, name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            d = out
            for k in key[:-1]:
                d = d.setdefault(k, {})
            d[key[-1]] = value
        return out


    def _writes(self, key) -> bool:
        """Source keys are written only for the chosen non-tick source, so a
        tick config's record is what it was before sources existed."""
        if key not in SOURCE_KEYS or self.rotation_source == "ticks":
            return key not in SOURCE_KEYS
        return key == ("rotation_source",) or key[0] == self.rotation_source


def load_config(path, *, warn: bool = True) -> Config:
    """Read a YAML or TOML config; relative paths are relative to its folder.

    With ``warn``, every note in :attr:`Config.warnings` (ignored and unknown
    keys) is also issued as a :class:`UserWarning`.
    """
    path = Path(path)
    if not path.is_file():
        raise DerotationError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    text = path.read_text()
    try:
        if suffix in (".yml", ".yaml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            raise DerotationError(
                f"config {path.name}: expected .yml, .yaml or .toml; got "
                f"{suffix or 'no suffix'}")
    except DerotationError:
        raise
    except Exception as exc:
        raise DerotationError(f"cannot parse {path.name}: {exc}") from None
    cfg = Config.from_dict(data, base=path.parent)
    cfg.source = path
    if warn:
        for note in cfg.warnings:
            warnings.warn(f"{path.name}: {note}", UserWarning, stacklevel=2)
    return cfg


# ------------------------------------------------------------------ helpers


def _flatten(data: dict, prefix=()):
    for k, v in data.items():
        key = (*prefix, str(k))
        if isinstance(v, dict) and key not in KEYS:
            yield from _flatten(v, key)
        else:
            yield key, v


def _choice(name, value, options):
    if value not in options:
        raise DerotationError(
            f"{name}: expected one of {', '.join(map(repr, options))}; got "
            f"{value!r}")


_SOURCE_CHANNELS = ("encoder_channel_a", "encoder_channel_b",
                    "position_channel")


def _coerce(name, value, base):
    if value is None:
        return None
    try:
        if name in _PATHS:
            p = Path(str(value)).expanduser()
            return p if p.is_absolute() or base is None else base / p
        if name in _SOURCE_CHANNELS:
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise TypeError("expected a channel name (.bin) or row "
                                "number (.npy)")
            return value
        if name in ("channel_names", "npy_rows", "center", "biased_center",
                    "position_range_volts", "ellipse_seed"):
            if not isinstance(value, list | tuple):
                raise TypeError("expected a list")
            cast = str if name == "channel_names" else (
                int if name == "npy_rows" else float)
            return tuple(cast(v) for v in value)
        if name == "channels":
            if not isinstance(value, dict):
                raise TypeError("expected a mapping of signal to channel name")
            return {str(k): str(v) for k, v in value.items()}
        if name in ("debugging_plots", "repair_ticks", "line_use_start",
                    "frame_use_start", "apply_fitted_plane", "overwrite"):
            if not isinstance(value, bool):
                raise TypeError("expected true or false")
            return value
        if name == "angle_delay":
            if value == "auto":
                return value
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError("expected auto or a number of lines")
            return float(value)
        if name in ("tick_distance", "inter_rotation_interval_min_len",
                    "incremental_direction", "encoder_direction",
                    "position_smoothing_samples", "ellipse_frame"):
            if isinstance(value, bool) or float(value) != int(value):
                raise TypeError("expected a whole number")
            return int(value)
        if name in _MOVIE_LAYOUT:
            if isinstance(value, bool) or float(value) != int(value) or \
                    int(value) < _MOVIE_LAYOUT[name]:
                raise TypeError(f"expected a whole number >= "
                                f"{_MOVIE_LAYOUT[name]}")
            return int(value)
        if name in ("pipeline_type", "saving_name", "pulse_threshold",
                    "center_method", "resampling", "line_count_mismatch",
                    "rotation_source", "log_time_column", "log_angle_column",
                    "log_clock", "frame_angles_clock", "plane_output",
                    "output_format"):
            return str(value)
        if isinstance(value, bool):
            raise TypeError("expected a number")
        return float(value)
    except (TypeError, ValueError) as exc:
        raise DerotationError(
            f"config key {_FILE_KEY.get(name, name)}: {exc}; got {value!r}"
        ) from None
