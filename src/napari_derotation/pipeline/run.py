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
from pathlib import Path

import numpy as np

from ..acquisition.signals import AnglesResult
from ..engine import check_center, default_center
from ..engine.params import DerotationParams
from ..errors import Cancelled, DerotationError
from ..io import (
    MovieFile,
    atomic_path,
    check_not_input,
    file_sha256,
    record,
    write_json,
)
from . import plots as debug_plots
from .config import load_config
from .dataset import OUTPUT_SUBFOLDER, Dataset

__all__ = ["run_dataset", "estimate_blank", "write_frame_csv"]


# ------------------------------------------------------------------ dataset


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
    source_file = _check_inputs(cfg)
    out = Path(output_folder or cfg.output_folder or
               cfg.movie.parent / OUTPUT_SUBFOLDER)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"movie": out / f"{cfg.saving_name}.tif",
             "angles_per_line": out / "angles_per_line.npy",
             "angles_per_frame": out / "angles_per_frame.npy",
             "table": out / f"{cfg.saving_name}.csv",
             "record": out / f"{cfg.saving_name}.json"}
    inputs = [cfg.movie, cfg.signals, cfg.stimulus, cfg.source, source_file]
    for p in paths.values():
        check_not_input(p, *inputs)
    bayes = cfg.center_method == "bayesian"
    stages = _Progress(progress, {"signals": 5, "center": 30 if bayes else 0,
                                  "derotate": 60, "outputs": 5})
    written: list[Path] = []
    try:
        say(f"[1/5] angles from {source_file.name} ({_what(cfg)})")
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
        from ..engine.files import derotate_file

        params = DerotationParams(center=center, interpolation=cfg.resampling,
                                  fill_value=blank)
        derotate_file(cfg.movie, angles.angles_per_line, paths["movie"],
                      params=params, progress=stages.stage("derotate"),
                      angles_source=source_file, sidecar=False)
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
                plot_files = debug_plots.write_debug_plots(plot_folder, ds, angles,
                                               paths["movie"], center)
                written.extend(plot_files)
            except ImportError:
                plot_note = ("debug plots skipped: matplotlib is not installed "
                             "(pip install 'napari-derotation[plots]')")
                say(f"      warning: {plot_note}")
        stages.stage("outputs")(1, 1)
        rec = record(
            movie_path=cfg.movie, out_path=paths["movie"], shape=shape,
            dtype=dtype, params=params, angles_source=source_file,
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
                    ("config", cfg.source), *_source_input(cfg))
                    if v is not None},
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


def _check_inputs(cfg) -> Path:
    """The movie and the source's file must be named; returns the latter."""
    from ..acquisition.sources import angles_input, needs_analog

    wanted = [("movie", "path_to_tif")]
    if needs_analog(cfg):
        wanted.append(("signals", "path_to_aux"))
    for name, key in wanted:
        if getattr(cfg, name) is None:
            raise DerotationError(
                f"no {name} file given in the config (paths_read.{key})")
    return angles_input(cfg)


def _what(cfg) -> str:
    if cfg.rotation_source == "ticks":
        return f"{cfg.pipeline_type} pipeline"
    return f"rotation_source {cfg.rotation_source}"


def _source_input(cfg):
    """The source's own input file for the record (none for ticks)."""
    from ..acquisition.sources import angles_input

    if cfg.rotation_source in ("ticks", "encoder", "position"):
        return ()
    return ((cfg.rotation_source, angles_input(cfg)),)


def _checksum(path):
    return {"path": str(Path(path).resolve()), "sha256": file_sha256(path)}


def _summary(a: AnglesResult) -> dict:
    out = {
        "protocol": a.protocol,
        "samples": int(a.n_samples),
        "sampling_rate": a.sampling_rate,
        "rotations": [
            {"start": int(s), "end": int(e), "direction": int(d),
             "speed": None if np.isnan(v) else float(v),
             "measured_speed": None if np.isnan(m) else round(float(m), 3),
             "ticks": int(t), "increment": None if np.isnan(i) else float(i)}
            for s, e, d, v, m, t, i in zip(
                a.rotation_starts, a.rotation_ends, a.direction, a.speed,
                a.measured_speed, a.ticks_per_rotation, a.increments,
                strict=True)],
        "lines": int(len(a.angles_per_line)),
        "frames": int(len(a.angles_per_frame)),
        "warnings": list(a.warnings),
    }
    if a.source != "ticks":
        out["source"] = {"rotation_source": a.source, **a.details}
    return out


def _center(cfg, angles, shape, progress, say):
    given = cfg.center_row_col()
    if cfg.center_method != "bayesian":
        return check_center(given, shape), None
    from .. import center
    from ..io import read_movie

    movie = read_movie(cfg.movie)
    initial = check_center(given, shape) if given else default_center(shape)
    say(f"      searching the centre within {cfg.delta_center:g} px of "
        f"({initial[0]:g}, {initial[1]:g})")
    res = center.find_center_bayesian(
        movie, angles.angles_per_line, initial=initial,
        search_radius=cfg.delta_center, progress=progress)
    info = {"initial": list(initial), "search_radius": cfg.delta_center,
            "objective": float(res.objective),
            "n_evaluations": int(res.n_evaluations),
            "n_frames": int(res.n_frames), "seconds": round(res.elapsed, 3)}
    return check_center(res.center, shape), info


# ------------------------------------------------------------------ plots


