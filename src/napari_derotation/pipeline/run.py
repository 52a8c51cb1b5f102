"""One dataset end to end: signals -> angles -> centre -> derotated movie.

:func:`run_dataset` reads the movie, the analog signals and the stimulus
table named by a :class:`~napari_derotation.config.Config`, computes the
per-line angles (:mod:`napari_derotation.signals`), the blank value (from the
whole first frame, or given), the centre (given, or searched), derotates the
movie chunk by chunk and writes, each atomically, into the output folder:

- ``<saving_name>.tif``: the derotated movie, in the input dtype (or
  ``.zarr``/``.nwb`` with ``paths_write.output_format: zarr|nwb``, the record
  also inside; an existing store or NWB file is refused);
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

import time
import warnings
from pathlib import Path

import numpy as np

from ..acquisition.signals import AnglesResult
from ..engine import check_center, default_center
from ..errors import Cancelled, DerotationError
from ..io import (
    MovieFile,
    OutputSet,
    atomic_path,
    check_not_input,
    file_sha256,
    record,
    write_frame_csv,
    write_json,
)
from ..io.outputs import with_format
from . import plots as debug_plots
from .config import load_config
from .dataset import OUTPUT_SUBFOLDER, Dataset

__all__ = ["run_dataset", "estimate_blank", "write_frame_csv"]


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
    paths = _output_paths(cfg, output_folder)
    bayes = cfg.center_method != "given"
    stages = _Progress(progress, {"signals": 5, "center": 30 if bayes else 0,
                                  "derotate": 60, "outputs": 5})
    with OutputSet() as out:
        angles = _angles(ds, stages.stage("signals"), say)
        with MovieFile(cfg.movie) as mf:
            shape, dtype = tuple(mf.shape), mf.dtype
            first = mf.read(0, 1)[0]
        say(f"      {len(angles.direction)} rotations, {len(angles.ticks)} "
            f"ticks, {len(angles.angles_per_line)} lines, {shape[0]} frames")
        blank = _blank(cfg, first, dtype)
        say(f"[2/5] blank value {blank['value']:g} ({blank['source']})")
        found = _center(cfg, angles, shape, stages.stage("center"), say)
        params = cfg.derotation_params(center=found["row_col"],
                                       fill_value=blank["value"],
                                       plane=found.get("plane"))
        say(f"[3/5] centre (row, col) = ({params.center[0]:.2f}, "
            f"{params.center[1]:.2f}) ({cfg.center_method})")
        say(f"[4/5] derotating {shape[0]} frames -> {paths['movie'].name}")
        from ..engine.files import derotate_file

        derotate_file(cfg.movie, angles.angles_per_line, paths["movie"],
                      params=params, progress=stages.stage("derotate"),
                      angles_source=cfg.signals, sidecar=False,
                      output_options={"frame_rate": cfg.frame_rate})
        out.add(paths["movie"])
        say(f"[5/5] writing tables to {paths['movie'].parent}")
        _write_tables(paths, angles, out)
        plot_files, plot_note = _plots(cfg, ds, angles, paths, params, plots,
                                       out, say)
        stages.stage("outputs")(1, 1)
        rec = record(
            movie_path=cfg.movie, out_path=paths["movie"], shape=shape,
            dtype=dtype, params=params, angles_source=cfg.signals,
            n_angles=len(angles.angles_per_line), checksum=True,
            pipeline={
                "config_file": str(cfg.source) if cfg.source else None,
                "config": cfg.to_dict(),
                "config_warnings": list(cfg.warnings),
                "blank_value": blank,
                "center": {"row_col": list(params.center),
                           "method": cfg.center_method,
                           "search": found.get("search")},
                "signals": _summary(angles),
                "inputs": {k: _checksum(v) for k, v in (
                    ("signals", cfg.signals), ("stimulus", cfg.stimulus),
                    ("config", cfg.source)) if v is not None},
                "outputs": {k: str(v) for k, v in paths.items()},
                "plots": [str(p) for p in plot_files],
                "plots_note": plot_note,
                "seconds": round(time.perf_counter() - t0, 3),
            })
        out.add(write_json(paths["record"], rec))
    say(f"done in {time.perf_counter() - t0:.1f} s: {paths['movie']}")
    return rec


def _output_paths(cfg, output_folder) -> dict:
    """Where a run writes, checked against its inputs; the folder is made."""
    for name, key in (("movie", "path_to_tif"), ("signals", "path_to_aux")):
        if getattr(cfg, name) is None:
            raise DerotationError(
                f"no {name} file given in the config (paths_read.{key})")
    out = Path(output_folder or cfg.output_folder or
               cfg.movie.parent / OUTPUT_SUBFOLDER)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"movie": with_format(out / cfg.saving_name, cfg.output_format),
             "angles_per_line": out / "angles_per_line.npy",
             "angles_per_frame": out / "angles_per_frame.npy",
             "table": out / f"{cfg.saving_name}.csv",
             "record": out / f"{cfg.saving_name}.json"}
    inputs = [cfg.movie, cfg.signals, cfg.stimulus, cfg.source]
    for p in paths.values():
        check_not_input(p, *inputs)
    return paths


def _angles(ds: Dataset, progress, say) -> AnglesResult:
    """Step 1: the per-line angles from the dataset's signals."""
    cfg = ds.config
    say(f"[1/5] angles from {cfg.signals.name} ({cfg.pipeline_type} "
        f"pipeline)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        angles = ds.compute_angles(progress=progress)
    for w in caught:
        say(f"      warning: {w.message}")
    return angles


def _blank(cfg, first_frame, dtype) -> dict:
    """Step 2: the fill value of uncovered pixels (given, or the first
    frame's dark level), rounded into an integer dtype's range."""
    if cfg.blank_value is None:
        blank, source = estimate_blank(first_frame), "first frame"
    else:
        blank, source = float(cfg.blank_value), "config"
    if np.dtype(dtype).kind in "ui":
        info = np.iinfo(dtype)
        blank = float(np.clip(np.rint(blank), info.min, info.max))
    return {"value": blank, "source": source}


def _write_tables(paths, angles: AnglesResult, out: OutputSet) -> None:
    """Step 5: per-line and per-frame angles and the per-frame CSV."""
    for key in ("angles_per_line", "angles_per_frame"):
        with atomic_path(paths[key]) as tmp, open(tmp, "wb") as fh:
            np.save(fh, getattr(angles, key))
        out.add(paths[key])
    out.add(write_frame_csv(paths["table"], angles.frame_table()))


def _plots(cfg, ds, angles, paths, params, plots, out: OutputSet, say):
    """Optional debug PNGs: ``(files, note)``; a note says why none."""
    if not (cfg.debugging_plots if plots is None else plots):
        return [], None
    folder = cfg.debug_plots_folder or paths["movie"].parent / "debug_plots"
    try:
        files = debug_plots.write_debug_plots(folder, ds, angles, paths["movie"],
                                              params.center)
    except ImportError:
        note = ("debug plots skipped: matplotlib is not installed "
                "(pip install 'napari-derotation[plots]')")
        say(f"      warning: {note}")
        return [], note
    for f in files:
        out.add(f)
    return files, None


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


def _center(cfg, angles, shape, progress, say) -> dict:
    """Step 3: the centre of rotation, given, searched or fitted from a
    cell; ``{"row_col", "search", "plane"}`` (``plane``: the fitted
    (tilt, orientation) to apply, when ``ellipse.apply_plane`` and the fit
    found a significant tilt)."""
    given = cfg.center_row_col()
    if cfg.center_method == "given":
        return {"row_col": check_center(given, shape)}
    from .. import center
    from ..io import read_movie

    movie = read_movie(cfg.movie)
    if cfg.center_method == "ellipse":
        return _center_from_cell(cfg, movie, angles, shape, progress, say)
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
    return {"row_col": check_center(res.center, shape), "search": info}


def _center_from_cell(cfg, movie, angles, shape, progress, say) -> dict:
    """The ellipse a bright cell traces: its centre, and the plane's tilt."""
    from ..center.ellipse import fit_center_ellipse

    say(f"      following the cell at ({cfg.ellipse_seed[0]:g}, "
        f"{cfg.ellipse_seed[1]:g}) of frame {cfg.ellipse_frame}")
    fit = fit_center_ellipse(movie, angles.angles_per_line, cfg.ellipse_seed,
                             frame=cfg.ellipse_frame, progress=progress)
    apply = cfg.apply_fitted_plane and fit.tilt_significant
    info = {"seed": list(cfg.ellipse_seed), "frame": cfg.ellipse_frame,
            "tilt": fit.tilt, "tilt_uncertainty": fit.tilt_uncertainty,
            "tilt_significant": bool(fit.tilt_significant),
            "orientation": fit.plane_orientation, "plane_applied": bool(apply),
            "center_uncertainty": list(fit.center_uncertainty)}
    say(f"      tilt {fit.tilt:.1f} ± {fit.tilt_uncertainty:.1f} deg: "
        f"{'applied' if apply else 'not applied'}")
    found = {"row_col": check_center(fit.center, shape), "search": info}
    if apply:
        found["plane"] = (fit.tilt, fit.plane_orientation)
    return found


# ------------------------------------------------------------------ plots


