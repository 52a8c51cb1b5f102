"""Pipeline configuration: the reference's YAML keys, plus a few of our own.

A lab's existing ``config_template.yml`` for the reference package loads
unchanged. Keys the reference reads but ignores are reported (not silently
dropped), and so are unknown keys. The same nested layout is accepted from
YAML (``.yml``/``.yaml``) or TOML (``.toml``), read with bounds
(:func:`napari_derotation.io.text.load_yaml`). Every key, its default and its
meaning: ``docs/config.md``. Relative paths are relative to the config file.

Each :class:`Config` field says, next to it, its file key, how a file's
value is converted (and checked: finite numbers, whole numbers, lists of a
length) and, for a closed set of values, which are allowed
(``metadata={"key", "convert", "check"}``).
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
from ..io.text import load_toml, load_yaml
from .fields import (
    channel,
    flag,
    mapping,
    names,
    number,
    numbers,
    one_of,
    path_setting,
    setting,
    sign,
    text,
    whole,
)

__all__ = [
    "Config",
    "load_config",
    "load_yaml",
    "KEYS",
    "SOURCE_KEYS",
    "ROTATION_SOURCES",
    "CONFIG_SUFFIXES",
]

CONFIG_SUFFIXES = (".yml", ".yaml", ".toml")
ROTATION_SOURCES = ("ticks", "encoder", "position", "log", "frame_angles")
LINE_CLOCKS = ("line_clock", "scanimage", "frame_rate")


def _lines_or_auto(value):
    """``angle_delay``: ``auto`` or a number of lines."""
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected auto or a number of lines")
    return float(value)


@dataclass
class Config:
    """Everything the pipeline needs, with defaults (see ``docs/config.md``).

    The fields come in the order of the file's keys (``to_dict`` writes them
    in this order).
    """

    pipeline_type: str = setting(
        "pipeline_type", "full", text, check=one_of("full", "incremental")
    )
    movie: Path | None = path_setting("paths_read.path_to_tif")
    signals: Path | None = path_setting("paths_read.path_to_aux")
    stimulus: Path | None = path_setting("paths_read.path_to_randperm")
    output_folder: Path | None = path_setting("paths_write.derotated_tiff_folder")
    saving_name: str = setting("paths_write.saving_name", "derotated", text)
    debug_plots_folder: Path | None = path_setting("paths_write.debug_plots_folder")
    overwrite: bool = setting("paths_write.overwrite", False, flag)
    output_format: str = setting(
        "paths_write.output_format", "tif", text, check=one_of("tif", "zarr", "nwb")
    )
    nwb_metadata: Path | None = path_setting("paths_write.nwb_metadata")
    channel_names: tuple = setting("channel_names", DEFAULT_CHANNEL_NAMES, names)
    channels: dict = setting(
        "channels", None, mapping, factory=lambda: dict(DEFAULT_CHANNELS)
    )
    npy_rows: tuple = setting("npy_rows", DEFAULT_ROWS, numbers(integers=True))
    rotation_increment: float = setting(
        "rotation_increment", 0.2, number(positive=True)
    )
    rot_deg: float = setting("rot_deg", 360.0, number(positive=True))
    incremental_step: float = setting("incremental_step", 10.0, number(positive=True))
    incremental_direction: int = setting(
        "incremental_direction", -1, whole(), check=sign
    )
    debugging_plots: bool = setting("debugging_plots", False, flag)
    frame_rate: float | None = setting("frame_rate", None, number(positive=True))
    sampling_rate: float | None = setting("sampling_rate", None, number(positive=True))
    tick_height: float = setting(
        "analog_signals_processing.find_rotation_ticks_peaks.height", 4.0, number()
    )
    tick_distance: int = setting(
        "analog_signals_processing.find_rotation_ticks_peaks.distance", 20, whole(1)
    )
    squared_pulse_k: float = setting(
        "analog_signals_processing.squared_pulse_k", 0.0, number()
    )
    pulse_threshold: str = setting(
        "analog_signals_processing.pulse_threshold",
        "auto",
        text,
        check=one_of("auto", "mean_std"),
    )
    inter_rotation_interval_min_len: int = setting(
        "analog_signals_processing.inter_rotation_interval_min_len", 1000, whole(0)
    )
    artifact_threshold: float = setting(
        "analog_signals_processing.angle_interpolation_artifact_threshold",
        0.15,
        number(minimum=0),
    )
    repair_ticks: bool = setting("analog_signals_processing.repair_ticks", True, flag)
    line_count_mismatch: str = setting(
        "analog_signals_processing.line_count_mismatch",
        "error",
        text,
        check=one_of("error", "trim"),
    )
    line_use_start: bool = setting("interpolation.line_use_start", True, flag)
    frame_use_start: bool = setting("interpolation.frame_use_start", True, flag)
    biased_center: tuple | None = setting("biased_center", None, numbers(2))
    center: tuple | None = setting("center", None, numbers(2))
    center_method: str = setting(
        "center_method", "given", text, check=one_of("given", "bayesian", "ellipse")
    )
    delta_center: float = setting("delta_center", 7.0, number(positive=True))
    angle_delay: float | str = setting("angle_delay", 0.0, _lines_or_auto)
    blank_value: float | None = setting("blank_value", None, number())
    resampling: str = setting(
        "resampling", "bilinear", text, check=one_of("bilinear", "nearest", "cubic")
    )
    plane_tilt: float = setting("rotation_plane.tilt", 0.0, number())
    plane_orientation: float = setting("rotation_plane.orientation", 0.0, number())
    plane_output: str = setting("rotation_plane.output", "imaging", text)
    ellipse_seed: tuple | None = setting("ellipse.seed", None, numbers(2))
    ellipse_frame: int = setting("ellipse.frame", 0, whole(0))
    apply_fitted_plane: bool = setting("ellipse.apply_plane", True, flag)
    # the movie's layout; the top-level "channels" maps the analog signals
    movie_channels: int | None = setting("movie.channels", None, whole(1))
    movie_planes: int | None = setting("movie.planes", None, whole(1))
    structural_channel: int | None = setting("movie.structural_channel", None, whole(0))
    center_plane: int | None = setting("movie.center_plane", None, whole(0))
    # angle sources other than the reference's ticks (docs/sources.md)
    rotation_source: str = setting(
        "rotation_source", "ticks", text, check=one_of(*ROTATION_SOURCES)
    )
    encoder_channel_a: str | int | None = setting("encoder.channel_a", None, channel)
    encoder_channel_b: str | int | None = setting("encoder.channel_b", None, channel)
    encoder_counts_per_turn: float | None = setting(
        "encoder.counts_per_turn", None, number(positive=True)
    )
    encoder_direction: int = setting("encoder.direction", 1, whole(), check=sign)
    position_channel: str | int | None = setting("position.channel", None, channel)
    position_degrees_per_volt: float | None = setting(
        "position.degrees_per_volt", None, number(nonzero=True)
    )
    position_offset_volts: float = setting("position.offset_volts", 0.0, number())
    position_range_volts: tuple = setting(
        "position.range_volts", (-10.0, 10.0), numbers(2)
    )
    position_smoothing_samples: int = setting(
        "position.smoothing_samples", 101, whole(1)
    )
    log_path: Path | None = path_setting("log.path")
    log_time_column: str = setting("log.time_column", "time_s", text)
    log_angle_column: str = setting("log.angle_column", "angle_deg", text)
    log_clock: str = setting(
        "log.clock", "line_clock", text, check=one_of(*LINE_CLOCKS)
    )
    log_offset_s: float = setting("log.log_offset_s", 0.0, number())
    frame_angles_path: Path | None = path_setting("frame_angles.path")
    frame_angles_clock: str = setting(
        "frame_angles.clock", "frame_rate", text, check=one_of(*LINE_CLOCKS)
    )
    # not from the file
    source: Path | None = None
    warnings: list = field(default_factory=list, compare=False)

    # ------------------------------------------------------------ building
    @classmethod
    def from_dict(cls, data: dict, base: Path | None = None) -> Config:
        """Build from a nested dict in the file layout; record warnings."""
        if not isinstance(data, dict):
            raise DerotationError(
                f"a config must be a mapping of keys to values; got "
                f"{type(data).__name__}"
            )
        values, notes = {}, []
        flat = dict(_flatten(data))
        for key, value in flat.items():
            name = ".".join(key)
            if key in _IGNORED:
                notes.append(f"{name}: {_IGNORED[key]}")
            elif key not in KEYS:
                notes.append(f"{name}: unknown key, ignored")
            else:
                values[KEYS[key]] = _convert(_FIELDS[KEYS[key]], value, base)
        cfg = cls(**values)
        if (
            "analog_signals_processing",
            "angle_interpolation_artifact_threshold",
        ) in flat:
            notes.append(
                "angle_interpolation_artifact_threshold: used as given "
                f"({cfg.artifact_threshold:g} degrees); the reference ignores "
                "it and uses 0.2"
            )
        if "pipeline_type" in values:
            notes.append(
                f"pipeline_type: selects the pipeline here "
                f"({cfg.pipeline_type!r}); the reference ignores this key"
            )
        if "squared_pulse_k" in values and cfg.pulse_threshold == "auto":
            notes.append(
                "squared_pulse_k: not used: pulses are detected midway between "
                "each signal's low and high levels (set analog_signals_"
                "processing.pulse_threshold: mean_std to use mean + k * std as "
                "the reference)"
            )
        if "delta_center" in values and cfg.center_method != "bayesian":
            notes.append(
                "delta_center: used only with center_method: bayesian (the "
                "reference always searched; here the given centre is used)"
            )
        cfg.warnings = notes
        return cfg.check()

    def check(self) -> Config:
        """Validate values; raise :class:`DerotationError` naming the key.

        Every field goes through its converter again, so a config built in
        Python (``Config(sampling_rate=0)``, :meth:`replace`) is held to the
        rules of a file.
        """
        for f in _FIELDS.values():
            setattr(self, f.name, _convert(f, getattr(self, f.name)))
        if self.center_method == "ellipse" and self.ellipse_seed is None:
            raise DerotationError(
                "center_method: ellipse needs ellipse.seed: [row, col], a "
                "bright cell in frame ellipse.frame of the raw movie"
            )
        for role in ROLES:
            if role not in self.channels:
                raise DerotationError(
                    f"channels: expected a channel name for each of "
                    f"{', '.join(ROLES)}; {role} is missing"
                )
        if len(self.npy_rows) != 4:
            raise DerotationError(
                f"npy_rows: expected 4 row numbers; got {list(self.npy_rows)}"
            )
        self.derotation_params()
        file_stem("paths_write.saving_name", self.saving_name)
        self.signal_params()
        self._check_source()
        return self

    def _check_source(self):
        """The keys the chosen ``rotation_source`` needs."""
        for name in _SOURCE_REQUIRED.get(self.rotation_source, ()):
            if getattr(self, name) is None:
                raise DerotationError(
                    f"{_FILE_KEY[name]}: required with rotation_source: "
                    f"{self.rotation_source}; not given"
                )
        a, b = self.encoder_channel_a, self.encoder_channel_b
        if self.rotation_source == "encoder" and a == b:
            raise DerotationError(
                f"encoder.channel_a and encoder.channel_b: expected two "
                f"different channels (A and B of the quadrature encoder); "
                f"both are {a!r}"
            )
        lo_hi = tuple(self.position_range_volts)
        if not lo_hi[0] < lo_hi[1]:
            raise DerotationError(
                f"position.range_volts: expected [low, high] with low < high; "
                f"got {list(lo_hi)}"
            )

    def signal_params(self) -> SignalParams:
        """The parameters of
        :func:`napari_derotation.acquisition.signals.process_signals`."""
        return SignalParams(
            protocol=self.pipeline_type,
            rot_deg=self.rot_deg,
            increment=self.rotation_increment,
            step=self.incremental_step,
            incremental_direction=self.incremental_direction,
            tick_height=self.tick_height,
            tick_distance=self.tick_distance,
            threshold_k=(
                self.squared_pulse_k if self.pulse_threshold == "mean_std" else None
            ),
            min_off_samples=self.inter_rotation_interval_min_len,
            artifact_threshold=self.artifact_threshold,
            repair_ticks=self.repair_ticks,
            line_use_start=self.line_use_start,
            frame_use_start=self.frame_use_start,
            line_count_mismatch=self.line_count_mismatch,
        ).check()

    def derotation_params(
        self, *, center=None, fill_value=0.0, plane=None, angle_delay=None
    ) -> DerotationParams:
        """The :class:`DerotationParams` this config asks for, with the
        centre and fill value found by the pipeline; ``plane`` (tilt,
        orientation) replaces the configured one (a fitted plane) and
        ``angle_delay`` the configured one (``auto``: found by the run)."""
        tilt, orientation = (
            plane if plane is not None else (self.plane_tilt, self.plane_orientation)
        )
        if angle_delay is None:
            angle_delay = 0.0 if self.angle_delay == "auto" else self.angle_delay
        try:
            return DerotationParams(
                center=center,
                interpolation=self.resampling,
                fill_value=fill_value,
                plane_tilt=tilt,
                plane_orientation=orientation,
                plane_output=self.plane_output,
                angle_delay=angle_delay,
            )
        except DerotationError as exc:
            raise DerotationError(f"config: {exc}") from None

    def center_row_col(self) -> tuple[float, float] | None:
        """``center`` (row, col), else ``biased_center`` (x, y) reversed."""
        if self.center is not None:
            return (float(self.center[0]), float(self.center[1]))
        if self.biased_center is not None:
            return (float(self.biased_center[1]), float(self.biased_center[0]))
        return None

    def output_folders(self, given=None, default=None) -> tuple[Path, Path]:
        """``(output folder, debug plots folder)`` of a run.

        ``given`` (the command line's ``--output``) wins over
        ``paths_write.derotated_tiff_folder``, else ``default``. A folder
        named by a config file must lie inside the config's folder (a
        shared or downloaded config cannot write elsewhere); the debug plots
        folder may also lie inside ``given``. Raises
        :class:`DerotationError` naming the key otherwise.
        """
        if given is not None:
            out = Path(given)
        else:
            self._inside("output_folder", self.output_folder)
            out = Path(self.output_folder or default)
        extra = () if given is None else (Path(given),)
        self._inside("debug_plots_folder", self.debug_plots_folder, *extra)
        return out, Path(self.debug_plots_folder or out / "debug_plots")

    def _inside(self, name, folder, *also) -> None:
        if folder is None or self.source is None:
            return
        home = Path(self.source).parent.resolve()
        where = Path(folder).resolve()
        for root in (home, *(Path(a).resolve() for a in also)):
            if where == root or root in where.parents:
                return
        option = (
            "" if name != "output_folder" else " (run -o DIR, batch --output-root DIR)"
        )
        raise DerotationError(
            f"{_FILE_KEY[name]}: {folder} is outside the config's folder "
            f"{home}; a config writes only inside its own folder: give the "
            f"folder on the command line{option} to write there"
        )

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
        tick config's record holds only the reference's and our own keys."""
        if key not in SOURCE_KEYS or self.rotation_source == "ticks":
            return key not in SOURCE_KEYS
        return key == ("rotation_source",) or key[0] == self.rotation_source


#: Config fields read from a file, by name.
_FIELDS = {f.name: f for f in dataclasses.fields(Config) if "key" in f.metadata}
_IGNORED = {
    (
        "paths_write",
        "logs_folder",
    ): "not used: progress goes to stderr and every parameter to the JSON record",
    (
        "adjust_increment",
    ): "not used: the increment is always adjusted per rotation (as in the "
    "reference since 0.1, which ignores this key too)",
    ("init_points",): "not used: the Bayesian centre search sets its own budget",
    ("n_iter",): "not used: the Bayesian centre search sets its own budget",
}
#: File key path -> Config field (None: accepted but not used).
KEYS: dict[tuple[str, ...], str | None] = {
    **{f.metadata["key"]: name for name, f in _FIELDS.items()},
    **dict.fromkeys(_IGNORED),
}
_SOURCE_GROUPS = ("rotation_source", "encoder", "position", "log", "frame_angles")
#: Keys of the angle sources other than the reference's ticks.
SOURCE_KEYS: dict[tuple[str, ...], str] = {
    k: v for k, v in KEYS.items() if v and k[0] in _SOURCE_GROUPS
}
_FILE_KEY = {v: ".".join(k) for k, v in KEYS.items() if v}
#: What each source needs in the config.
_SOURCE_REQUIRED = {
    "encoder": ("encoder_channel_a", "encoder_channel_b", "encoder_counts_per_turn"),
    "position": ("position_channel", "position_degrees_per_volt"),
    "log": ("log_path",),
    "frame_angles": ("frame_angles_path",),
}


def _convert(f, value, base=None):
    """A field's value from a file's (or Python's) value, checked."""
    if value is None and f.default is None:
        return None
    convert, check = f.metadata["convert"], f.metadata["check"]
    key = ".".join(f.metadata["key"])
    try:
        value = convert(value, base) if f.metadata["path"] else convert(value)
    except (TypeError, ValueError) as exc:
        raise DerotationError(f"config key {key}: {exc}; got {_show(value)}") from None
    expected = check(value) if check is not None else None
    if expected is not None:
        raise DerotationError(f"{key}: expected {expected}; got {value!r}")
    return value


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"... ({len(text)} chars)"


def load_config(path, *, warn: bool = True) -> Config:
    """Read a YAML or TOML config; relative paths are relative to its folder.

    With ``warn``, every note in :attr:`Config.warnings` (ignored and unknown
    keys) is also issued as a :class:`UserWarning`.
    """
    path = Path(path)
    if not path.is_file():
        raise DerotationError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".yml", ".yaml"):
        data = load_yaml(path, "config") or {}
    elif suffix == ".toml":
        data = load_toml(path, "config")
    else:
        raise DerotationError(
            f"config {path.name}: expected .yml, .yaml or .toml; got "
            f"{suffix or 'no suffix'}"
        )
    cfg = Config.from_dict(data, base=path.parent)
    cfg.source = path
    if warn:
        for note in cfg.warnings:
            warnings.warn(f"{path.name}: {note}", UserWarning, stacklevel=2)
    return cfg


def _flatten(data: dict, prefix=()):
    for k, v in data.items():
        key = (*prefix, str(k))
        if isinstance(v, dict) and key not in KEYS:
            yield from _flatten(v, key)
        else:
            yield key, v
