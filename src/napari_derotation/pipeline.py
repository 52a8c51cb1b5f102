"""One dataset end to end: signals -> angles -> centre -> derotated movie.

:func:`run_dataset` reads the movie, the analog signals and the stimulus
table named by a :class:`~napari_derotation.config.Config`, computes the
per-line angles (:mod:`napari_derotation.signals`), the blank value (from the
whole first frame, or given), the centre (given, or searched), derotates the
movie chunk by chunk and writes, each atomically, into the output folder:

- ``<saving_name>.tif``: the derotated movie, in the input dtype;
- ``angles_per_line.npy`` and ``angles_per_frame.npy``;
- ``<saving_name>.csv``: one row per frame with the reference's columns
  ``frame, rotation_angle, clock, direction, speed, rotation_count``;
- ``<saving_name>.json``: every parameter, the centre, versions and input
  checksums;
- optional debug PNGs (needs matplotlib, the ``plots`` extra).

It never deletes a file it did not write. :class:`Dataset` finds the pieces
of a dataset in a folder (used by ``napari-derotation batch`` and the napari
plugin).
"""

from __future__ import annotations

import contextlib
import csv
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import CONFIG_SUFFIXES, Config, load_config
from .engine import check_center, default_center
from .errors import Cancelled, DerotationError
from .io import MovieFile, atomic_path, check_not_input, file_sha256, write_json
from .loaders import AnalogSignals, load_analog, load_stimulus
from .signals import AnglesResult, process_signals

__all__ = ["Dataset", "AnglesResult", "run_dataset", "estimate_blank",
           "write_frame_csv", "OUTPUT_SUBFOLDER"]

#: Where ``batch`` writes a dataset's outputs, inside the dataset folder.
OUTPUT_SUBFOLDER = "derotation"
_MOVIE_SUFFIXES = (".tif", ".tiff")


# ------------------------------------------------------------------ dataset


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
                ("stimulus", _stimuli(folder), cfg.stimulus)):
            owned = local is not None and current is not None and \
                current.is_file()
            changes[kind] = current if owned else _pick(
                folder, kind, found, current, fallback=kind == "stimulus")
        if changes["movie"] is None:
            raise DerotationError(f"not a dataset: no movie TIFF in {folder}")
        if changes["signals"] is None:
            raise DerotationError(
                f"not a dataset: no analog signals (.bin, or .npy of shape "
                f"(4, samples)) in {folder}")
        if changes["stimulus"] is None and cfg.pipeline_type == "full":
            raise DerotationError(
                f"not a dataset: no stimulus table (.csv with speed,direction "
                f"or .mat) in {folder}; the full pipeline needs one")
        ds = cls(cfg.replace(**changes), folder)
        ds.config.warnings = list(cfg.warnings)
        return ds

    def load_signals(self) -> AnalogSignals:
        c = self.config
        if c.signals is None:
            raise DerotationError("no analog signals file given (path_to_aux)")
        return load_analog(c.signals, channel_names=c.channel_names,
                           channels=c.channels, rows=c.npy_rows)

    def load_stimulus(self):
        """``(speed, direction)``, or ``(None, None)`` when not needed."""
        c = self.config
        if c.stimulus is None:
            if c.pipeline_type == "full":
                raise DerotationError(
                    "the full pipeline needs a stimulus table "
                    "(paths_read.path_to_randperm)")
            return None, None
        return load_stimulus(c.stimulus)

    def movie_shape(self) -> tuple[int, int, int]:
        if self.config.movie is None:
            raise DerotationError("no movie given (paths_read.path_to_tif)")
        with MovieFile(self.config.movie) as mf:
            return tuple(mf.shape)

    def compute_angles(self, progress=None) -> AnglesResult:
        """Per-line and per-frame angles, checked against the movie."""
        n, rows, _ = self.movie_shape()
        sig = self.load_signals()
        speed, direction = self.load_stimulus()
        c = self.config
        return process_signals(*sig.as_tuple(), params=c.signal_params(),
                               direction=direction, speed=speed,
                               n_lines=n * rows, n_frames=n,
                               sampling_rate=c.sampling_rate,
                               frame_rate=c.frame_rate, progress=progress)


def _configs(folder):
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in CONFIG_SUFFIXES)


def _files(folder, suffixes):
    out = [p for p in folder.iterdir()
           if p.is_file() and p.suffix.lower() in suffixes
           and not p.name.startswith(".")]
    if not out:  # one level down, skipping our own outputs
        out = [p for p in folder.glob("*/*")
               if p.is_file() and p.suffix.lower() in suffixes
               and p.parent.name != OUTPUT_SUBFOLDER
               and not p.name.startswith(".")]
    return sorted(out)


def _movies(folder, cfg):
    skip = ("derotated", cfg.saving_name)
    return [p for p in _files(folder, _MOVIE_SUFFIXES)
            if not p.stem.startswith(skip)]


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
            head = {h.strip() for h in fh.readline().lower().split(",")}
            # not our own per-frame table, which also has these columns
            if {"speed", "direction"} <= head and "rotation_angle" not in head:
                out.append(p)
    return out


def _pick(folder, kind, found, current, *, fallback):
    if current is not None and current.is_file() and \
            folder.resolve() in current.resolve().parents:
        return current
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise DerotationError(
            f"{folder}: more than one {kind} file ({', '.join(p.name for p in found)}"
            f"); name the one to use in the dataset's config")
    # only a shared stimulus table may live outside the dataset folder
    ok = fallback and current is not None and current.is_file()
    return current if ok else None


# ------------------------------------------------------------- blank value


def estimate_blank(frame, *, components: int = 7, max_samples: int = 1 << 18,
                   iterations: int = 200) -> float:
    """The dark level of a frame: the lowest mean of a Gaussian mixture.

    Fits ``components`` 1-D Gaussians (EM, deterministic start at evenly
    spaced quantiles) to every pixel of ``frame`` (subsampled evenly above
    ``max_samples``) and returns the smallest component mean, as the
    reference's ``find_image_offset`` does with its first row only.
    """
    x = np.asarray(frame, np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise DerotationError("the first frame has no finite pixels")
    if x.size > max_samples:
        x = x[:: int(np.ceil(x.size / max_samples))]
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return lo
    k = components
    means = np.quantile(x, (np.arange(k) + 0.5) / k)
    floor = ((hi - lo) / 1000.0) ** 2
    var = np.full(k, max(x.var() / k**2, floor))
    weights = np.full(k, 1.0 / k)
    for _ in range(iterations):
        logp = (-0.5 * (x[:, None] - means) ** 2 / var
                - 0.5 * np.log(2 * np.pi * var) + np.log(weights))
        logp -= logp.max(axis=1, keepdims=True)
        resp = np.exp(logp)
        resp /= resp.sum(axis=1, keepdims=True)
        nk = resp.sum(axis=0) + 1e-12
        new = (resp * x[:, None]).sum(axis=0) / nk
        var = np.maximum((resp * (x[:, None] - new) ** 2).sum(axis=0) / nk,
                         floor)
        weights = nk / nk.sum()
        done = np.max(np.abs(new - means)) < 1e-6 * (hi - lo)
        means = new
        if done:
            break
    return float(means[weights > 1e-3].min())


# ----------------------------------------------------------------- outputs


def write_frame_csv(path, table: dict) -> Path:
    """The per-frame CSV, with the reference's columns (NaN written empty)."""
    cols = ["frame", "rotation_angle", "clock", "direction", "speed",
            "rotation_count"]

    def cell(name, v):
        v = float(v)
        if np.isnan(v):
            return ""
        if name == "rotation_angle":
            return f"{v:.6f}"
        return str(int(v)) if v.is_integer() else f"{v:g}"

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for row in zip(*(table[c] for c in cols), strict=True):
            w.writerow([cell(c, v) for c, v in zip(cols, row, strict=True)])
    return Path(path)


class _Progress:
    """Overall progress in [0, 1000] across weighted stages."""

    def __init__(self, callback, weights: dict):
        self.callback = callback
        total = sum(weights.values())
        self.spans, start = {}, 0.0
        for name, w in weights.items():
            self.spans[name] = (start, w / total * 1000)
            start += w / total * 1000

    def stage(self, name):
        start, width = self.spans.get(name, (0.0, 0.0))

        def report(done, total):
            if self.callback is None:
                return None
            value = int(start + width * (done / total if total else 1.0))
            if self.callback(min(value, 1000), 1000) is False:
                raise Cancelled(f"cancelled during {name}")
            return None
        return report


def run_dataset(config, output_folder=None, progress=None, *, log=None,
                plots: bool | None = None) -> dict:
    """Run the whole pipeline on one dataset; return the JSON record.

    Parameters
    ----------
    config : Config, Dataset, or path of a config file
    output_folder : path, optional
        Default: ``paths_write.derotated_tiff_folder``, else a
        ``derotation`` folder beside the movie. Created if missing.
    progress : callable(done, total), optional
        Overall progress (``total`` is 1000); returning ``False`` cancels
        (raises :class:`Cancelled`; files written by this run are removed).
    log : callable(str), optional
        Receives one message per stage (the CLI prints them on stderr).
    plots : bool, optional
        Write debug PNGs; default ``config.debugging_plots``.
    """
    t0 = time.perf_counter()
    if isinstance(config, str | Path):
        config = load_config(config)
    ds = config if isinstance(config, Dataset) else Dataset(config)
    cfg = ds.config
    say = log or (lambda msg: None)
    for name, key in (("movie", "path_to_tif"), ("signals", "path_to_aux")):
        if getattr(cfg, name) is None:
            raise DerotationError(
                f"no {name} file given in the config (paths_read.{key})")
    out = Path(output_folder or cfg.output_folder or
               cfg.movie.parent / OUTPUT_SUBFOLDER)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"movie": out / f"{cfg.saving_name}.tif",
             "angles_per_line": out / "angles_per_line.npy",
             "angles_per_frame": out / "angles_per_frame.npy",
             "table": out / f"{cfg.saving_name}.csv",
             "record": out / f"{cfg.saving_name}.json"}
    inputs = [cfg.movie, cfg.signals, cfg.stimulus, cfg.source]
    for p in paths.values():
        check_not_input(p, *inputs)
    bayes = cfg.center_method == "bayesian"
    stages = _Progress(progress, {"signals": 5, "center": 30 if bayes else 0,
                                  "derotate": 60, "outputs": 5})
    written: list[Path] = []
    try:
        say(f"[1/5] angles from {cfg.signals.name} ({cfg.pipeline_type} "
            f"pipeline)")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            angles = ds.compute_angles(progress=stages.stage("signals"))
        for w in caught:
            say(f"      warning: {w.message}")
        with MovieFile(cfg.movie) as mf:
            shape, dtype = tuple(mf.shape), mf.dtype
            first = mf.read(0, 1)[0]
        say(f"      {len(angles.direction)} rotations, {len(angles.ticks)} "
            f"ticks, {len(angles.angles_per_line)} lines, {shape[0]} frames")

        if cfg.blank_value is None:
            blank, blank_source = estimate_blank(first), "first frame"
        else:
            blank, blank_source = float(cfg.blank_value), "config"
        if np.dtype(dtype).kind in "ui":
            info = np.iinfo(dtype)
            blank = float(np.clip(np.rint(blank), info.min, info.max))
        say(f"[2/5] blank value {blank:g} ({blank_source})")

        center, search = _center(cfg, angles, shape, stages.stage("center"),
                                 say)
        say(f"[3/5] centre (row, col) = ({center[0]:.2f}, {center[1]:.2f}) "
            f"({cfg.center_method})")

        say(f"[4/5] derotating {shape[0]} frames -> {paths['movie'].name}")
        from .stream import derotate_file, record

        derotate_file(cfg.movie, angles.angles_per_line, paths["movie"], center,
                      interpolation=cfg.resampling, fill_value=blank,
                      progress=stages.stage("derotate"),
                      angles_source=cfg.signals, sidecar=False)
        written.append(paths["movie"])

        say(f"[5/5] writing tables to {out}")
        for key in ("angles_per_line", "angles_per_frame"):
            with atomic_path(paths[key]) as tmp, open(tmp, "wb") as fh:
                np.save(fh, getattr(angles, key))
            written.append(paths[key])
        write_frame_csv(paths["table"], angles.frame_table())
        written.append(paths["table"])
        want_plots = cfg.debugging_plots if plots is None else plots
        plot_files, plot_note = [], None
        if want_plots:
            plot_folder = cfg.debug_plots_folder or out / "debug_plots"
            try:
                plot_files = write_debug_plots(plot_folder, ds, angles,
                                               paths["movie"], center)
                written.extend(plot_files)
            except ImportError:
                plot_note = ("debug plots skipped: matplotlib is not installed "
                             "(pip install 'napari-derotation[plots]')")
                say(f"      warning: {plot_note}")
        stages.stage("outputs")(1, 1)
        rec = record(
            movie_path=cfg.movie, out_path=paths["movie"], shape=shape,
            dtype=dtype, center=center, interpolation=cfg.resampling,
            fill_value=blank, angles_source=cfg.signals,
            n_angles=len(angles.angles_per_line), checksum=True,
            pipeline={
                "config_file": str(cfg.source) if cfg.source else None,
                "config": cfg.to_dict(),
                "config_warnings": list(cfg.warnings),
                "blank_value": {"value": blank, "source": blank_source},
                "center": {"row_col": list(center),
                           "method": cfg.center_method, "search": search},
                "signals": _summary(angles),
                "inputs": {k: _checksum(v) for k, v in (
                    ("signals", cfg.signals), ("stimulus", cfg.stimulus),
                    ("config", cfg.source)) if v is not None},
                "outputs": {k: str(v) for k, v in paths.items()},
                "plots": [str(p) for p in plot_files],
                "plots_note": plot_note,
                "seconds": round(time.perf_counter() - t0, 3),
            })
        write_json(paths["record"], rec)
        written.append(paths["record"])
    except BaseException:
        for p in written:
            with contextlib.suppress(OSError):
                p.unlink()
        raise
    say(f"done in {time.perf_counter() - t0:.1f} s: {paths['movie']}")
    return rec


def _checksum(path):
    return {"path": str(Path(path).resolve()), "sha256": file_sha256(path)}


def _summary(a: AnglesResult) -> dict:
    return {
        "protocol": a.protocol,
        "samples": int(a.n_samples),
        "sampling_rate": a.sampling_rate,
        "rotations": [
            {"start": int(s), "end": int(e), "direction": int(d),
             "speed": None if np.isnan(v) else float(v),
             "measured_speed": None if np.isnan(m) else round(float(m), 3),
             "ticks": int(t), "increment": float(i)}
            for s, e, d, v, m, t, i in zip(
                a.rotation_starts, a.rotation_ends, a.direction, a.speed,
                a.measured_speed, a.ticks_per_rotation, a.increments,
                strict=True)],
        "lines": int(len(a.angles_per_line)),
        "frames": int(len(a.angles_per_frame)),
        "warnings": list(a.warnings),
    }


def _center(cfg, angles, shape, progress, say):
    given = cfg.center_row_col()
    if cfg.center_method != "bayesian":
        return check_center(given, shape), None
    try:
        from .center import find_center_bayesian
    except ImportError as exc:
        raise DerotationError(
            f"center_method: bayesian needs napari_derotation.center."
            f"find_center_bayesian, which is not available here ({exc})"
        ) from None
    from .io import read_movie

    movie = read_movie(cfg.movie)
    initial = check_center(given, shape) if given else default_center(shape)
    say(f"      searching the centre within {cfg.delta_center:g} px of "
        f"({initial[0]:g}, {initial[1]:g})")
    res = find_center_bayesian(movie, angles.angles_per_line, initial=initial,
                               search_radius=cfg.delta_center,
                               progress=progress)
    info = {"initial": list(initial), "search_radius": cfg.delta_center}
    for name in ("score", "n_evaluations", "uncertainty"):
        v = getattr(res, name, None)
        if isinstance(v, int | float | np.floating | np.integer):
            info[name] = float(v)
    return check_center(res.center, shape), info


# ------------------------------------------------------------------ plots


def write_debug_plots(folder, ds: Dataset, angles: AnglesResult, derotated,
                      center) -> list[Path]:
    """Debug PNGs (needs matplotlib; raises ImportError without it).

    ``rotation_ticks_and_rotation_on.png``, ``rotation_angles.png``,
    ``all_speeds.png``, ``mean_image_with_center.png`` and
    ``derotated_mean_image_with_center.png``. Existing files are replaced,
    nothing else in ``folder`` is touched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name):
        FigureCanvasAgg(fig)
        path = folder / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        written.append(path)

    sig = ds.load_signals()
    n = sig.n_samples
    stride = max(1, n // 20000)
    x = np.arange(0, n, stride)
    fig = Figure(figsize=(12, 4))
    ax = fig.add_subplot()
    ax.plot(x, np.asarray(sig.rotation_on[::stride], np.float64),
            color="navy", lw=0.8, label="rotation on (V)")
    ax.plot(x, angles.angle_at(x) / 90.0, color="black", lw=0.8,
            label="angle / 90 deg")
    ax.scatter(angles.ticks, np.full(len(angles.ticks), -0.5), s=2,
               color="orange", label="ticks")
    ax.set_xlabel("sample")
    ax.legend(loc="upper right")
    ax.set_title("Rotation-on signal, ticks and angle")
    save(fig, "rotation_ticks_and_rotation_on.png")

    fig = Figure(figsize=(12, 4))
    ax = fig.add_subplot()
    ax.plot(angles.angles_per_line, lw=0.8, label="per line")
    rows = len(angles.angles_per_line) // max(len(angles.angles_per_frame), 1)
    ax.plot(np.arange(len(angles.angles_per_frame)) * rows,
            angles.angles_per_frame, ".", ms=3, label="per frame")
    ax.set_xlabel("line")
    ax.set_ylabel("angle (degrees)")
    ax.legend(loc="upper right")
    save(fig, "rotation_angles.png")

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    idx = np.arange(len(angles.direction))
    ax.plot(idx, angles.measured_speed, "o", label="measured from ticks")
    ax.plot(idx, angles.speed, "x", label="stimulus table")
    ax.set_xlabel("rotation")
    ax.set_ylabel("speed (degrees / s)")
    ax.legend()
    save(fig, "all_speeds.png")

    for name, path in (("mean_image_with_center.png", ds.config.movie),
                       ("derotated_mean_image_with_center.png", derotated)):
        with MovieFile(path) as mf:
            total = np.zeros(mf.shape[1:])
            step = max(1, (64 << 20) // max(total.nbytes, 1))
            for a in range(0, mf.shape[0], step):
                total += mf.read(a, min(a + step, mf.shape[0])).sum(axis=0)
            mean = total / mf.shape[0]
        fig = Figure(figsize=(5, 5))
        ax = fig.add_subplot()
        ax.imshow(mean, cmap="gray")
        ax.plot(center[1], center[0], "r+", ms=12)
        ax.set_title(name[:-4].replace("_", " "))
        save(fig, name)
    return written
