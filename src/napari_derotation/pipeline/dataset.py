"""A dataset: the files of one experiment (movie, analog signals, stimulus
table, config), found in a folder or named by a config."""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..acquisition.loaders import AnalogSignals, load_analog, load_stimulus
from ..acquisition.signals import AnglesResult, process_signals
from ..errors import DerotationError
from ..io.sources import TIFF_SUFFIXES, open_movie
from .config import CONFIG_SUFFIXES, Config, load_config

__all__ = [
    "Dataset",
    "OUTPUT_SUBFOLDER",
    "check_inputs",
    "describe_source",
    "source_inputs",
    "input_checksums",
    "angles_summary",
]


#: Where ``batch`` writes a dataset's outputs, inside the dataset folder.
OUTPUT_SUBFOLDER = "derotation"


_MOVIE_SUFFIXES = TIFF_SUFFIXES


@dataclass
class Dataset:
    """The inputs of one experiment: movie, analog signals, stimulus, config."""

    config: Config
    folder: Path | None = None

    @property
    def movie_path(self) -> Path | None:
        return self.config.movie

    @classmethod
    def from_folder(cls, path, config: Config | None = None) -> Dataset:
        """Find a dataset's files in ``path``.

        The movie is the folder's TIFF, the signals its ``.bin`` or
        ``(4, samples)`` ``.npy``, the stimulus table its ``.csv`` with
        ``speed,direction`` columns or ``.mat``, and the config its
        ``.yml``/``.yaml``/``.toml`` (else ``config``, else defaults). Files
        named in the folder's own config win; previous outputs (``derotated*``
        files and the ``derotation`` subfolder) are skipped. Raises
        :class:`DerotationError` if the folder is not a dataset.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise DerotationError(f"not a dataset folder: {folder}")
        local = _pick(folder, "config", _configs(folder), None, fallback=False)
        if local is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cfg = load_config(local)
        else:
            cfg = config if config is not None else Config()
        changes = {}
        for kind, found, current in (
            ("movie", _movies(folder, cfg), cfg.movie),
            ("signals", _signal_files(folder), cfg.signals),
            ("stimulus", _stimuli(folder), cfg.stimulus),
        ):
            owned = local is not None and current is not None and current.is_file()
            changes[kind] = (
                current
                if owned
                else _pick(folder, kind, found, current, fallback=kind == "stimulus")
            )
        if changes["movie"] is None:
            raise DerotationError(f"not a dataset: no movie TIFF in {folder}")
        from ..acquisition.angle_sources import needs_analog

        if changes["signals"] is None and needs_analog(cfg):
            raise DerotationError(
                f"not a dataset: no analog signals (.bin, or .npy of shape "
                f"(4, samples)) in {folder}"
            )
        if (
            changes["stimulus"] is None
            and cfg.pipeline_type == "full"
            and cfg.rotation_source == "ticks"
        ):
            raise DerotationError(
                f"not a dataset: no stimulus table (.csv with speed,direction "
                f"or .mat) in {folder}; the full pipeline needs one"
            )
        changes.update(_source_files(folder, cfg))
        ds = cls(cfg.replace(**changes), folder)
        ds.config.warnings = list(cfg.warnings)
        return ds

    def load_signals(self) -> AnalogSignals:
        c = self.config
        if c.signals is None:
            raise DerotationError("no analog signals file given (path_to_aux)")
        return load_analog(
            c.signals,
            channel_names=c.channel_names,
            channels=c.channels,
            rows=c.npy_rows,
        )

    def load_stimulus(self):
        """``(speed, direction)``, or ``(None, None)`` when not needed."""
        c = self.config
        if c.stimulus is None:
            if c.pipeline_type == "full":
                raise DerotationError(
                    "the full pipeline needs a stimulus table "
                    "(paths_read.path_to_randperm)"
                )
            return None, None
        return load_stimulus(c.stimulus)

    def movie_shape(self) -> tuple[int, int, int]:
        """``(scanned frames, rows, cols)``: a movie with planes has T * Z
        frames (the signals' frame clock ticks once per plane)."""
        if self.config.movie is None:
            raise DerotationError("no movie given (paths_read.path_to_tif)")
        c = self.config
        with open_movie(
            c.movie, channels=c.movie_channels, planes=c.movie_planes
        ) as src:
            t, z, _, rows, cols = src.shape
        return (t * z, rows, cols)  # scanned frames: planes in turn

    def compute_angles(self, progress=None) -> AnglesResult:
        """Per-line and per-frame angles, checked against the movie.

        From the config's ``rotation_source``: the ticks here, any other
        source through :func:`napari_derotation.acquisition.angle_sources.
        compute_angles`.
        """
        n, rows, _ = self.movie_shape()
        c = self.config
        if c.rotation_source != "ticks":
            from ..acquisition.angle_sources import compute_angles

            return compute_angles(c, n_frames=n, rows=rows, progress=progress)
        sig = self.load_signals()
        speed, direction = self.load_stimulus()
        return process_signals(
            *sig.as_tuple(),
            params=c.signal_params(),
            direction=direction,
            speed=speed,
            n_lines=n * rows,
            n_frames=n,
            sampling_rate=c.sampling_rate,
            frame_rate=c.frame_rate,
            progress=progress,
        )


# ------------------------------------- a dataset's inputs, for runs and records


def check_inputs(cfg) -> Path:
    """The movie and the angle source's file must be named; returns the
    latter."""
    from ..acquisition.angle_sources import angles_input, needs_analog

    wanted = [("movie", "path_to_tif")]
    if needs_analog(cfg):
        wanted.append(("signals", "path_to_aux"))
    for name, key in wanted:
        if getattr(cfg, name) is None:
            raise DerotationError(
                f"no {name} file given in the config (paths_read.{key})"
            )
    return angles_input(cfg)


def describe_source(cfg) -> str:
    """Where the angles come from, in a few words (progress messages)."""
    if cfg.rotation_source == "ticks":
        return f"{cfg.pipeline_type} pipeline"
    return f"rotation_source {cfg.rotation_source}"


def source_inputs(cfg) -> tuple:
    """``((name, path),)``: the angle source's own input file (none for the
    ticks, the encoder and the position signal, which are analog signals)."""
    from ..acquisition.angle_sources import angles_input

    if cfg.rotation_source in ("ticks", "encoder", "position"):
        return ()
    return ((cfg.rotation_source, angles_input(cfg)),)


def input_checksums(cfg) -> dict:
    """``{name: {"path", "sha256"}}`` of every input file of a config (the
    signals, the stimulus table, the config, the source's file)."""
    from ..io import file_sha256

    named = (
        ("signals", cfg.signals),
        ("stimulus", cfg.stimulus),
        ("config", cfg.source),
        *source_inputs(cfg),
    )
    return {
        k: {"path": str(Path(v).resolve()), "sha256": file_sha256(v)}
        for k, v in named
        if v is not None and Path(v).is_file()
    }


def angles_summary(a: AnglesResult) -> dict:
    """What the signals held, for a record: per rotation its samples,
    direction, speed, measured speed, ticks and increment."""
    out = {
        "protocol": a.protocol,
        "samples": int(a.n_samples),
        "sampling_rate": a.sampling_rate,
        "rotations": [
            {
                "start": int(s),
                "end": int(e),
                "direction": int(d),
                "speed": None if np.isnan(v) else float(v),
                "measured_speed": None if np.isnan(m) else round(float(m), 3),
                "ticks": int(t),
                "increment": None if np.isnan(i) else float(i),
            }
            for s, e, d, v, m, t, i in zip(
                a.rotation_starts,
                a.rotation_ends,
                a.direction,
                a.speed,
                a.measured_speed,
                a.ticks_per_rotation,
                a.increments,
                strict=True,
            )
        ],
        "lines": int(len(a.angles_per_line)),
        "frames": int(len(a.angles_per_frame)),
        "warnings": list(a.warnings),
    }
    if a.source != "ticks":
        out["source"] = {"rotation_source": a.source, **a.details}
    return out


def _source_files(folder, cfg) -> dict:
    """A log or frame-angles file named in the config, found in the folder.

    A shared config names the file (``log.path: rotation_log.csv``); each
    dataset folder has its own: the folder's file of that name wins.
    """
    out = {}
    for name in ("log_path", "frame_angles_path"):
        path = getattr(cfg, name)
        if path is not None and (folder / path.name).is_file():
            out[name] = folder / path.name
    return out


def _configs(folder):
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in CONFIG_SUFFIXES
    )


def _files(folder, suffixes):
    out = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")
    ]
    if not out:  # one level down, skipping our own outputs
        out = [
            p
            for p in folder.glob("*/*")
            if p.is_file()
            and p.suffix.lower() in suffixes
            and p.parent.name != OUTPUT_SUBFOLDER
            and not p.name.startswith(".")
        ]
    return sorted(out)


def _movies(folder, cfg):
    skip = ("derotated", cfg.saving_name)
    return [p for p in _files(folder, _MOVIE_SUFFIXES) if not p.stem.startswith(skip)]


def _signal_files(folder):
    out = []
    for p in _files(folder, (".bin", ".npy")):
        if p.suffix.lower() == ".bin":
            out.append(p)
            continue
        with contextlib.suppress(Exception):
            shape = np.load(p, mmap_mode="r", allow_pickle=False).shape
            if len(shape) == 2 and shape[0] >= 4 and shape[1] > shape[0]:
                out.append(p)
    return out


def _stimuli(folder):
    out = []
    for p in _files(folder, (".csv", ".mat")):
        if p.suffix.lower() == ".mat":
            out.append(p)
            continue
        with contextlib.suppress(Exception), open(p) as fh:
            # the header only: a file with no line break is not read whole
            head = {h.strip() for h in fh.readline(4096).lower().split(",")}
            # not our own per-frame table, which also has these columns
            if {"speed", "direction"} <= head and "rotation_angle" not in head:
                out.append(p)
    return out


def _pick(folder, kind, found, current, *, fallback):
    if (
        current is not None
        and current.is_file()
        and folder.resolve() in current.resolve().parents
    ):
        return current
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise DerotationError(
            f"{folder}: more than one {kind} file ({', '.join(p.name for p in found)}"
            f"); name the one to use in the dataset's config"
        )
    # only a shared stimulus table may live outside the dataset folder
    ok = fallback and current is not None and current.is_file()
    return current if ok else None
