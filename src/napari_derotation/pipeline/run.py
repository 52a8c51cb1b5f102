"""One dataset end to end: signals -> angles -> centre -> derotated movie.

:func:`run_dataset` reads the movie, the analog signals and the stimulus
table named by a :class:`~napari_derotation.pipeline.config.Config`,
computes the per-line angles (:mod:`napari_derotation.acquisition.signals`),
the blank value (from each channel's first frame, or given), the centre
(given, or searched), derotates the movie chunk by chunk and writes, each
atomically, into the output folder:

- ``<saving_name>.tif``: the derotated movie, in the input dtype (or
  ``.zarr``/``.nwb`` with ``paths_write.output_format: zarr|nwb``, the record
  also inside; an existing store or NWB file is refused);
- ``angles_per_line.npy`` and ``angles_per_frame.npy``;
- ``<saving_name>.csv``: one row per frame with the reference's columns
  ``frame, rotation_angle, clock, direction, speed, rotation_count``;
- ``<saving_name>.derotation.json``: every parameter, the centre, versions
  and input checksums;
- optional debug PNGs (needs matplotlib, the ``plots`` extra).

Every file it will write is checked before the first is written: an
existing one is refused unless ``paths_write.overwrite`` (or
``overwrite=True``). It never deletes a file it did not write.
:class:`Dataset` finds the pieces of a dataset in a folder (used by
``napari-derotation batch`` and the napari plugin).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from ..acquisition.signals import AnglesResult
from ..engine import check_center, default_center
from ..engine.blank import estimate_blank
from ..errors import DerotationError
from ..io import (
    OutputSet,
    atomic_path,
    check_not_input,
    sidecar_path,
    write_frame_csv,
    write_json,
)
from ..io.atomic import check_writable, make_folder
from ..io.outputs import FORMATS
from ..io.sources import open_movie
from ..job import describe, job_record, output_spec
from ..job import run as run_job
from ..progress import Stages
from ..quality import report_paths
from . import plots as debug_plots
from .config import load_config
from .dataset import (
    OUTPUT_SUBFOLDER,
    Dataset,
    angles_summary,
    check_inputs,
    describe_source,
    input_checksums,
)

__all__ = ["run_dataset", "write_frame_csv"]


def run_dataset(
    config,
    output_folder=None,
    progress=None,
    *,
    log=None,
    plots: bool | None = None,
    overwrite: bool | None = None,
) -> dict:
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
    overwrite : bool, optional
        Replace existing outputs; default ``config.overwrite``
        (``paths_write.overwrite``). Without it, a run whose outputs exist
        stops before writing anything.
    """
    t0 = time.perf_counter()
    if isinstance(config, str | Path):
        config = load_config(config)
    ds = config if isinstance(config, Dataset) else Dataset(config)
    cfg = ds.config
    say = log or (lambda msg: None)
    make_plots = cfg.debugging_plots if plots is None else plots
    if overwrite is None:
        overwrite = cfg.overwrite
    bayes = cfg.center_method != "given"
    stages = Stages(
        progress,
        {"signals": 5, "center": 30 if bayes else 0, "derotate": 60, "outputs": 5},
    )
    source_file = check_inputs(cfg)
    nwb_meta = _nwb_metadata(cfg)
    with OutputSet(overwrite=overwrite) as out:
        paths = _output_paths(
            cfg, output_folder, source_file, make_plots, overwrite, out
        )
        say(f"[1/5] angles from {source_file.name} ({describe_source(cfg)})")
        angles = _angles(ds, stages.stage("signals"), say)
        shape, dtype, first = _movie_layout(cfg)
        say(
            f"      {len(angles.direction)} rotations, {len(angles.ticks)} "
            f"ticks, {len(angles.angles_per_line)} lines, {shape[0]} frames"
        )
        blank = _blank(cfg, first, dtype)
        say(f"[2/5] blank value {_numbers(blank['value'])} ({blank['source']})")
        found = _center(cfg, angles, shape, stages.stage("center"), say)
        params = cfg.derotation_params(
            center=found["row_col"],
            fill_value=blank["value"],
            plane=found.get("plane"),
            angle_delay=found.get("delay", {}).get("angle_delay"),
        )
        say(
            f"[3/5] centre (row, col) = ({params.center[0]:.2f}, "
            f"{params.center[1]:.2f}) ({cfg.center_method})"
        )
        say(f"[4/5] derotating {shape[0]} frames -> {paths['movie'].name}")
        job = describe(
            cfg.movie,
            angles.angles_per_line,
            output_spec(
                paths["movie"],
                overwrite=overwrite,
                record=False,
                frame_rate=cfg.frame_rate,
                nwb_metadata=nwb_meta,
            ),
            params=params,
            angles_source=source_file,
            channels=cfg.movie_channels,
            planes=cfg.movie_planes,
            extra_angles_ok=True,
            check_files=False,
        )
        run_job(job, stages.stage("derotate"))
        out.add(paths["movie"])
        say(f"[5/5] writing tables to {paths['movie'].parent}")
        _write_tables(paths, angles, out)
        plot_files, plot_note = _plots(
            cfg, ds, angles, paths, params, make_plots, out, say
        )
        stages.stage("outputs")(1, 1)
        rec = job_record(
            job,
            checksum=True,
            pipeline={
                "config_file": str(cfg.source) if cfg.source else None,
                "config": cfg.to_dict(),
                "config_warnings": list(cfg.warnings),
                "blank_value": blank,
                "center": {
                    "row_col": list(params.center),
                    "method": cfg.center_method,
                    "search": found.get("search"),
                },
                "angle_delay": {
                    "lines": params.angle_delay,
                    "source": "auto" if "delay" in found else "config",
                    "search": found.get("delay"),
                },
                "signals": angles_summary(angles),
                "inputs": input_checksums(cfg),
                "outputs": {k: str(v) for k, v in paths.items()},
                "plots": [str(p) for p in plot_files],
                "plots_note": plot_note,
                "seconds": round(time.perf_counter() - t0, 3),
            },
        )
        rec["pipeline"]["qc"] = _quality(paths, rec, angles, out, say)
        out.add(write_json(paths["record"], rec))
    say(f"done in {time.perf_counter() - t0:.1f} s: {paths['movie']}")
    return rec


def _quality(paths, rec, angles, out: OutputSet, say) -> dict:
    """The quality report beside the movie (``OUT.qc.json``/``.png``),
    registered in ``out``; its warnings said."""
    from ..quality import write_beside

    qc = write_beside(paths["movie"], rec, angles.angles_per_line, on_written=out.add)
    for w in qc["warnings"]:
        say(f"      quality warning: {w}")
    return qc


def _nwb_metadata(cfg):
    """An NWB output's metadata (paths_write.nwb_metadata), checked before
    any work: one without a subject is refused."""
    if cfg.output_format != "nwb":
        return None
    from ..io.nwb import pynwb_module
    from ..io.nwb_metadata import SUBJECT_HINT, load_nwb_metadata

    pynwb_module()
    if cfg.nwb_metadata is None:
        raise DerotationError(SUBJECT_HINT)
    return load_nwb_metadata(cfg.nwb_metadata)


def _output_paths(
    cfg,
    output_folder,
    source_file,
    plots=False,
    overwrite=False,
    out_set: OutputSet | None = None,
) -> dict:
    """Where a run writes, checked against its inputs and (every file, debug
    plots too) against existing files before anything is written; the
    folder is made (and noted in ``out_set``, which removes it again if the
    run fails)."""
    out, plots_folder = cfg.output_folders(
        output_folder or None, cfg.movie.parent / OUTPUT_SUBFOLDER
    )
    made = make_folder(out)
    if out_set is not None:
        out_set.add_folders(made)
    movie = output_spec(folder=out, name=cfg.saving_name, fmt=cfg.output_format).path
    stem = movie.name[: -len(FORMATS[cfg.output_format])]
    paths = {
        "movie": movie,
        "angles_per_line": out / "angles_per_line.npy",
        "angles_per_frame": out / "angles_per_frame.npy",
        "table": out / f"{stem}.csv",
        "record": sidecar_path(movie),
    }
    paths["qc_json"], paths["qc_png"] = report_paths(movie)
    inputs = [cfg.movie, cfg.signals, cfg.stimulus, cfg.source, source_file]
    for p in paths.values():
        check_not_input(p, *inputs)
    planned = list(paths.values())
    if plots and plots_folder.is_dir():
        planned += [plots_folder / n for n in debug_plots.PLOT_NAMES]
    check_writable(planned, overwrite=overwrite)
    return paths


def _angles(ds: Dataset, progress, say) -> AnglesResult:
    """Step 1: the per-line angles from the dataset's signals."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        angles = ds.compute_angles(progress=progress)
    for w in caught:
        say(f"      warning: {w.message}")
    return angles


def _blank(cfg, first_frames, dtype) -> dict:
    """Step 2: the fill value of uncovered pixels: given, or each channel's
    dark level in its first frame (one value per channel), rounded into an
    integer dtype's range."""
    if cfg.blank_value is None:
        values = [estimate_blank(f) for f in first_frames]
        source = "first frame" if len(values) == 1 else "first frame of each channel"
    else:
        values, source = [float(cfg.blank_value)], "config"
    if np.dtype(dtype).kind in "ui":
        info = np.iinfo(dtype)
        values = [float(np.clip(np.rint(v), info.min, info.max)) for v in values]
    value = values[0] if len(values) == 1 else values
    return {"value": value, "source": source}


def _write_tables(paths, angles: AnglesResult, out: OutputSet) -> None:
    """Step 5: per-line and per-frame angles and the per-frame CSV."""
    for key in ("angles_per_line", "angles_per_frame"):
        with atomic_path(paths[key]) as tmp, open(tmp, "wb") as fh:
            np.save(fh, getattr(angles, key))
        out.add(paths[key])
    out.add(write_frame_csv(paths["table"], angles.frame_table()))


def _plots(cfg, ds, angles, paths, params, plots, out: OutputSet, say):
    """Optional debug PNGs: ``(files, note)``; a note says why none."""
    if not plots:
        return [], None
    folder = cfg.debug_plots_folder or paths["movie"].parent / "debug_plots"
    try:
        import matplotlib  # noqa: F401 - before making the folder
    except ImportError:
        note = (
            "debug plots skipped: matplotlib is not installed "
            "(pip install 'napari-derotation[plots]')"
        )
        say(f"      warning: {note}")
        return [], note
    out.add_folders(make_folder(folder))
    files = debug_plots.write_debug_plots(
        folder, ds, angles, paths["movie"], params.center, on_written=out.add
    )
    return files, None


def _center(cfg, angles, shape, progress, say) -> dict:
    """Step 3: the centre of rotation, given, searched or fitted from a
    cell; ``{"row_col", "search", "plane", "delay"}`` (``plane``: the fitted
    (tilt, orientation) to apply, when ``ellipse.apply_plane`` and the fit
    found a significant tilt; ``delay``: the angle delay to apply and how
    it was found, with ``angle_delay: auto``)."""
    given = cfg.center_row_col()
    auto = cfg.angle_delay == "auto"
    if cfg.center_method == "given" and not auto:
        return {"row_col": check_center(given, shape)}
    from .. import center
    from ..frames import delay_angles

    # the centre is found with the configured delay applied to the whole
    # trace (before a plane's lines are picked)
    trace = (
        angles.angles_per_line
        if auto or not cfg.angle_delay
        else delay_angles(angles.angles_per_line, cfg.angle_delay)
    )
    params = cfg.derotation_params(angle_delay=0.0)
    movie, lines = _center_movie(cfg, trace)
    initial = check_center(given, shape) if given else default_center(shape)
    if cfg.center_method == "ellipse":
        found = _center_from_cell(cfg, movie, lines, shape, progress, say)
    elif cfg.center_method == "bayesian" and not auto:
        say(
            f"      searching the centre within {cfg.delta_center:g} px of "
            f"({initial[0]:g}, {initial[1]:g})"
        )
        res = center.find_center_bayesian(
            movie,
            lines,
            initial=initial,
            search_radius=cfg.delta_center,
            params=params,
            progress=progress,
        )
        return {"row_col": check_center(res.center, shape), "search": res.to_record()}
    else:
        found = {"row_col": initial}
    if auto:
        found = _center_and_delay(
            cfg, movie, angles.angles_per_line, shape, found, params, progress, say
        )
    return found


def _center_and_delay(cfg, movie, trace, shape, found, params, progress, say) -> dict:
    """``angle_delay: auto``: the delay found with the centre (searched in
    turn with ``center_method: bayesian``, else about the centre found)."""
    from ..center.delay import find_center_and_delay

    bayes = cfg.center_method == "bayesian"
    say("      searching the " + ("centre and " if bayes else "") + "angle delay")
    res = find_center_and_delay(
        movie,
        trace,
        initial=found["row_col"],
        fit_center=bayes,
        search_radius=cfg.delta_center,
        lines=_plane_lines(cfg, shape),
        params=params
        if "plane" not in found
        else params.replace(
            plane_tilt=found["plane"][0], plane_orientation=found["plane"][1]
        ),
        progress=progress,
    )
    say(f"      angle delay {res.delay:.2f} +- {res.uncertainty:.2f} lines")
    out = dict(found, delay=res.to_record())
    if bayes:
        out.update(row_col=check_center(res.center, shape), search=res.to_record())
    return out


def _plane_lines(cfg, shape):
    """Indices, in the recorded trace, of the lines of the plane the centre
    is found on (None for a movie of one plane)."""
    if len(shape) != 5 or shape[1] == 1:
        return None
    from ..engine.hyperstack import line_index

    t, z, _, rows, _ = shape
    tt, row = np.meshgrid(np.arange(t), np.arange(rows), indexing="ij")
    return line_index(tt, cfg.center_plane or 0, row, z, rows).ravel()


def _movie_layout(cfg):
    """``(shape, dtype, first frames)`` of the movie: shape ``(T, rows,
    cols)`` of a plain movie, ``(T, Z, C, rows, cols)`` with planes or
    channels; the first frame of the centre plane, one per channel."""
    with open_movie(
        cfg.movie, channels=cfg.movie_channels, planes=cfg.movie_planes
    ) as src:
        t, z, c, rows, cols = src.shape
        ch, pl = cfg.structural_channel or 0, cfg.center_plane or 0
        if ch >= c or pl >= z:
            raise DerotationError(
                f"movie.structural_channel {ch} / movie.center_plane {pl}: "
                f"the movie has {c} channel(s) and {z} plane(s)"
            )
        first = src.read(0, 1)[0, pl]
        shape = (t, rows, cols) if z == c == 1 else tuple(src.shape)
        return shape, src.dtype, list(first)


def _numbers(value) -> str:
    return ", ".join(f"{v:g}" for v in np.ravel(value))


def _center_movie(cfg, angles_per_line):
    """The movie the centre is found on and its angles: the structural
    channel (``movie.structural_channel``, default 0) and plane
    ``movie.center_plane`` (default 0); the result applies to all."""
    from ..engine.hyperstack import pick_plane, plane_angles
    from ..io import read_movie

    with open_movie(
        cfg.movie, channels=cfg.movie_channels, planes=cfg.movie_planes
    ) as src:
        t, z, _, rows, _ = src.shape
        if src.axes == "TYX" and len(src.paths) == 1:
            return read_movie(src.path), angles_per_line
        movie, _, plane = pick_plane(
            src, channel=cfg.structural_channel, plane=cfg.center_plane
        )
    return movie, plane_angles(angles_per_line, t, z, rows, plane)


def _center_from_cell(cfg, movie, lines, shape, progress, say) -> dict:
    """The ellipse a bright cell traces: its centre, and the plane's tilt."""
    from ..center.ellipse import fit_center_ellipse

    say(
        f"      following the cell at ({cfg.ellipse_seed[0]:g}, "
        f"{cfg.ellipse_seed[1]:g}) of frame {cfg.ellipse_frame}"
    )
    fit = fit_center_ellipse(
        movie, lines, cfg.ellipse_seed, frame=cfg.ellipse_frame, progress=progress
    )
    apply = cfg.apply_fitted_plane and fit.tilt_significant
    info = dict(fit.to_record(cfg.ellipse_frame), plane_applied=bool(apply))
    say(
        f"      tilt {fit.tilt:.1f} ± {fit.tilt_uncertainty:.1f} deg: "
        f"{'applied' if apply else 'not applied'}"
    )
    found = {"row_col": check_center(fit.center, shape), "search": info}
    if apply:
        found["plane"] = (fit.tilt, fit.plane_orientation)
    return found


# ------------------------------------------------------------------ plots
