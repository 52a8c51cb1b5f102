"""End to end: recorder -> files -> pipeline (API and CLI) -> outputs."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest
import tifffile

from napari_derotation import derotate
from napari_derotation.cli import main
from napari_derotation.engine.blank import estimate_blank
from napari_derotation.errors import Cancelled, DerotationError
from napari_derotation.io import write_tiff
from napari_derotation.pipeline import Dataset, run_dataset
from napari_derotation.pipeline.config import Config
from napari_derotation.simulate import make_cells, make_texture, rotate_by_line
from napari_derotation.simulate.recorder import simulate_recording

from helpers import inscribed_disk

SIZE = 40
CENTER = (21.0, 18.0)


def wrap(d):
    return (np.asarray(d) + 180.0) % 360.0 - 180.0


def make_dataset(
    folder, rec, *, signals="npy", stimulus="csv", dtype=np.uint16, frames=None
):
    """Write a movie scanned with the recording's true angles, and its files."""
    folder.mkdir(parents=True, exist_ok=True)
    img = make_texture((SIZE, SIZE), seed=3, low=100, high=3000)
    n = rec.n_frames if frames is None else frames
    movie = rotate_by_line(
        img, rec.angles_per_line[: n * SIZE], CENTER, n_frames=n, fill_value=100.0
    )
    write_tiff(folder / "movie.tif", np.rint(movie).astype(dtype))
    if signals == "npy":
        rec.write_npy(folder / "analog_signals.npy")
    else:
        rec.write_bin(folder / "rotation.bin")
    if stimulus == "csv":
        rec.write_stimulus(folder / "stimulus_randperm.csv")
    elif stimulus == "mat":
        from scipy.io import savemat

        table = np.zeros((len(rec.speed), 3))
        table[:, 0] = rec.speed
        table[:, 2] = np.where(rec.direction < 0, 1, -1)
        savemat(folder / "stim.mat", {"stimulus_random": table})
    return img


def away_from_edges(rec, samples, ticks=2):
    inc, fs = rec.params["increment"], rec.sampling_rate
    ok = np.ones(len(samples), bool)
    for (a, b), v in zip(
        rec.motion, np.resize(rec.speed, len(rec.motion)), strict=True
    ):
        m = np.ceil(ticks * inc / v * fs)
        ok &= (np.abs(samples - a) > m) & (np.abs(samples - b) > m)
    return ok


@pytest.fixture(scope="module")
def full_rec():
    return simulate_recording(
        speeds=(200, 150),
        directions=(1, -1),
        rows=SIZE,
        frame_rate=25,
        noise=0.2,
        dropped_ticks=1,
        seed=2,
    )


@pytest.fixture(scope="module")
def full_run(full_rec, tmp_path_factory):
    folder = tmp_path_factory.mktemp("full")
    img = make_dataset(folder, full_rec)
    ds = Dataset.from_folder(folder)
    messages = []
    rec = run_dataset(
        Dataset(ds.config.replace(center=CENTER)),
        folder / "out",
        log=messages.append,
        plots=False,
    )
    return folder, img, rec, messages


def test_full_protocol_angles_within_a_tenth_of_a_degree(full_rec, full_run):
    folder, _, _, _ = full_run
    angles = np.load(folder / "out" / "angles_per_line.npy")
    assert angles.shape == full_rec.angles_per_line.shape
    ok = away_from_edges(full_rec, full_rec.line_starts)
    err = np.abs(wrap(angles - full_rec.angles_per_line))
    assert ok.mean() > 0.9
    assert err[ok].max() < 0.1
    frames = np.load(folder / "out" / "angles_per_frame.npy")
    assert len(frames) == full_rec.n_frames


def test_full_protocol_derotated_movie(full_rec, full_run):
    folder, img, rec, _ = full_run
    raw = tifffile.imread(folder / "movie.tif")
    out = tifffile.imread(folder / "out" / "derotated.tif")
    assert out.dtype == raw.dtype == np.uint16 and out.shape == raw.shape
    # the same as derotating with the true angles
    truth = derotate(
        raw, full_rec.angles_per_line, CENTER, fill_value=rec["fill_value"]
    )
    inner = inscribed_disk(raw.shape[1:], CENTER)
    diff = np.abs(out.astype(float) - truth.astype(float))[:, inner]
    assert np.percentile(diff, 99) <= 30  # of a 100..3000 range
    # and the sample is back in place in every frame
    rotating = np.abs(full_rec.angles_per_frame) > 1
    raw_err = np.abs(raw[rotating][:, inner] - img[inner]).mean()
    out_err = np.abs(out[rotating][:, inner].astype(float) - img[inner]).mean()
    assert out_err < raw_err / 5


def test_full_protocol_tables_and_record(full_rec, full_run):
    folder, _, rec, messages = full_run
    with open(folder / "out" / "derotated.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "frame",
        "rotation_angle",
        "clock",
        "direction",
        "speed",
        "rotation_count",
    ]
    assert len(rows) == full_rec.n_frames
    assert [int(r["clock"]) for r in rows] == full_rec.frame_starts.tolist()
    moving = [r for r in rows if float(r["rotation_angle"]) != 0]
    assert {(r["direction"], r["speed"], r["rotation_count"]) for r in moving} == {
        ("1", "200", "0"),
        ("-1", "150", "1"),
    }
    still = [r for r in rows if float(r["rotation_angle"]) == 0]
    assert all(r["direction"] == "" for r in still)
    saved = json.loads((folder / "out" / "derotated.derotation.json").read_text())
    assert saved == json.loads(json.dumps(saved))
    assert saved["center_row_col"] == list(CENTER)
    p = saved["pipeline"]
    assert set(p["inputs"]) == {"signals", "stimulus"}
    assert len(p["inputs"]["signals"]["sha256"]) == 64
    assert len(saved["input"]["sha256"]) == 64
    assert p["config"]["rotation_increment"] == 0.2
    assert [r["ticks"] for r in p["signals"]["rotations"]] == [1800, 1800]
    assert p["blank_value"]["source"] == "first frame"
    assert "numpy" in saved["environment"]
    assert rec["pipeline"]["outputs"]["movie"].endswith("derotated.tif")
    assert any(m.startswith("[4/5] derotating") for m in messages)


def test_given_centre_blank_value_and_nearest(full_rec, tmp_path):
    make_dataset(tmp_path / "d", full_rec, frames=full_rec.n_frames)
    ds = Dataset.from_folder(tmp_path / "d")
    cfg = ds.config.replace(center=CENTER, blank_value=7, resampling="nearest")
    rec = run_dataset(Dataset(cfg), tmp_path / "o")
    assert rec["center_row_col"] == list(CENTER)
    assert rec["fill_value"] == 7 and rec["interpolation"] == "nearest"
    out = tifffile.imread(tmp_path / "o" / "derotated.tif")
    assert (out == 7).any()


def test_incremental_protocol_from_toml_config(tmp_path):
    rec = simulate_recording(
        protocol="incremental",
        speeds=(150,),
        directions=(1,),
        step=20,
        pause=0.1,
        rows=SIZE,
        frame_rate=25,
        noise=0.1,
        seed=1,
    )
    make_dataset(tmp_path, rec, stimulus=None)
    (tmp_path / "derotation.toml").write_text(
        'pipeline_type = "incremental"\nincremental_step = 20\n'
        "incremental_direction = 1\ncenter = [21, 18]\n"
        '[paths_write]\nsaving_name = "inc"\n'
    )
    ds = Dataset.from_folder(tmp_path)
    assert ds.config.stimulus is None and ds.config.pipeline_type == "incremental"
    out = run_dataset(ds)
    folder = tmp_path / "derotation"
    angles = np.load(folder / "angles_per_line.npy")
    ok = away_from_edges(rec, rec.line_starts)
    assert np.abs(wrap(angles - rec.angles_per_line))[ok].max() < 0.1
    assert len(out["pipeline"]["signals"]["rotations"]) == 18
    assert (folder / "inc.tif").is_file() and (folder / "inc.csv").is_file()
    with open(folder / "inc.csv") as fh:
        counts = {r["rotation_count"] for r in csv.DictReader(fh)}
    assert {"0", "17"} <= counts


def test_cli_run_with_reference_style_yaml_bin_and_mat(tmp_path, capsys):
    rec = simulate_recording(
        speeds=(200,), directions=(-1,), rows=SIZE, frame_rate=25, seed=4
    )
    data = tmp_path / "data"
    make_dataset(data, rec, signals="bin", stimulus="mat")
    cfg = tmp_path / "config.yml"
    cfg.write_text(
        "pipeline_type: full\n"
        "paths_read:\n  path_to_randperm: data/stim.mat\n"
        "  path_to_aux: data/rotation.bin\n  path_to_tif: data/movie.tif\n"
        "paths_write:\n  debug_plots_folder: out/plots\n  logs_folder: logs/\n"
        "  derotated_tiff_folder: out/\n  saving_name: derotated_stack\n"
        "channel_names: [camera, scanimage_frameclock, scanimage_lineclock, "
        "photodiode2, PI_rotON, PI_rotticks]\n"
        "rotation_increment: 0.2\nadjust_increment: True\nrot_deg: 360\n"
        "debugging_plots: False\nframe_rate: 25\n"
        "analog_signals_processing:\n  find_rotation_ticks_peaks:\n"
        "    height: 4\n    distance: 20\n  squared_pulse_k: 0\n"
        "  inter_rotation_interval_min_len: 1000\n"
        "  angle_interpolation_artifact_threshold: 0.15\n"
        "interpolation:\n  line_use_start: True\n  frame_use_start: True\n"
        "biased_center: [18, 21]\ndelta_center: 7\ninit_points: 2\n"
        "n_iter: 10\n"
    )
    assert main(["run", str(cfg)]) == 0
    captured = capsys.readouterr()
    out = tmp_path / "out"
    assert captured.out.strip() == str((out / "derotated_stack.tif").resolve())
    assert "warning: config.yml: adjust_increment" in captured.err
    assert "[5/5]" in captured.err
    saved = json.loads((out / "derotated_stack.derotation.json").read_text())
    assert saved["center_row_col"] == [21.0, 18.0]  # (x, y) -> (row, col)
    assert saved["pipeline"]["signals"]["rotations"][0]["direction"] == -1
    m = saved["pipeline"]["signals"]["rotations"][0]["measured_speed"]
    assert m == pytest.approx(200, rel=0.01)
    angles = np.load(out / "angles_per_line.npy")
    ok = away_from_edges(rec, rec.line_starts)
    assert np.abs(wrap(angles - rec.angles_per_line))[ok].max() < 0.1
    assert not (tmp_path / "logs").exists()


def test_blank_value_uses_the_whole_first_frame():
    from derotation.analysis.full_derotation_pipeline import FullPipeline

    frame = make_cells((64, 64), background=80, n_cells=12, seed=2)
    frame[:4] = 255.0  # a bright structure along the first row
    frame += np.random.default_rng(0).normal(0, 2, frame.shape)
    assert estimate_blank(frame) == pytest.approx(80, abs=2)
    assert FullPipeline.find_image_offset(frame) > 150  # the reference: row 0
    assert estimate_blank(np.full((4, 4), 3.0)) == 3.0


def test_line_count_mismatch_writes_nothing(full_rec, tmp_path):
    make_dataset(tmp_path, full_rec, frames=full_rec.n_frames - 3)
    foreign = tmp_path / "derotation" / "notes.txt"
    foreign.parent.mkdir()
    foreign.write_text("mine")
    n_lines = full_rec.n_frames * SIZE
    with pytest.raises(
        DerotationError,
        match=f"line clock has {n_lines} pulses but the movie "
        f"has {n_lines - 3 * SIZE} lines",
    ):
        run_dataset(Dataset.from_folder(tmp_path))
    assert sorted(p.name for p in foreign.parent.iterdir()) == ["notes.txt"]


def test_cancel_removes_this_runs_files_only(full_rec, full_run, tmp_path):
    folder = full_run[0]
    plots = tmp_path / "debug_plots"
    plots.mkdir()
    (plots / "old.png").write_bytes(b"not ours")

    def progress(done, total):
        return done < 500

    with pytest.raises(Cancelled):
        run_dataset(
            Dataset.from_folder(folder), tmp_path, progress=progress, plots=True
        )
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["debug_plots", "old.png"]


def test_plots_are_optional(full_run, tmp_path, monkeypatch):
    folder = full_run[0]
    (tmp_path / "debug_plots").mkdir()
    (tmp_path / "debug_plots" / "old.png").write_bytes(b"not ours")
    rec = run_dataset(Dataset.from_folder(folder), tmp_path, plots=True)
    names = sorted(p.name for p in (tmp_path / "debug_plots").iterdir())
    assert names == [
        "all_speeds.png",
        "derotated_mean_image_with_center.png",
        "mean_image_with_center.png",
        "old.png",
        "rotation_angles.png",
        "rotation_ticks_and_rotation_on.png",
    ]
    assert (tmp_path / "debug_plots" / "old.png").read_bytes() == b"not ours"
    assert len(rec["pipeline"]["plots"]) == 5
    for mod in [m for m in sys.modules if m.startswith("matplotlib")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rec = run_dataset(Dataset.from_folder(folder), tmp_path / "b", plots=True)
    assert "matplotlib is not installed" in rec["pipeline"]["plots_note"]
    assert (tmp_path / "b" / "derotated.tif").is_file()


def test_refuses_to_overwrite_inputs(full_run):
    folder = full_run[0]
    cfg = Dataset.from_folder(folder).config.replace(saving_name="movie")
    with pytest.raises(DerotationError, match="refusing to overwrite the input"):
        run_dataset(cfg, folder)


def test_dataset_discovery(full_run, tmp_path):
    folder = full_run[0]
    ds = Dataset.from_folder(folder)
    assert ds.movie_path.name == "movie.tif"  # not the derotated outputs
    assert ds.config.signals.name == "analog_signals.npy"
    assert ds.config.stimulus.name == "stimulus_randperm.csv"
    with pytest.warns(UserWarning, match="inserted 1 missing tick"):
        res = ds.compute_angles()
    assert len(res.angles_per_line) == len(res.angles_per_frame) * SIZE
    with pytest.raises(DerotationError, match="not a dataset folder"):
        Dataset.from_folder(tmp_path / "missing")
    with pytest.raises(DerotationError, match="no movie TIFF"):
        Dataset.from_folder(tmp_path)
    write_tiff(tmp_path / "a.tif", np.zeros((2, 4, 4), np.uint8))
    write_tiff(tmp_path / "b.tif", np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(
        DerotationError, match="more than one movie file \\(a.tif, b.tif\\)"
    ):
        Dataset.from_folder(tmp_path)
    (tmp_path / "c.yml").write_text("paths_read: {path_to_tif: b.tif}\n")
    with pytest.raises(DerotationError, match="no analog signals"):
        Dataset.from_folder(tmp_path)
    np.save(tmp_path / "signals.npy", np.zeros((4, 100)))
    with pytest.raises(DerotationError, match="no stimulus table"):
        Dataset.from_folder(tmp_path)
    (tmp_path / "s.csv").write_text("speed,direction\n1,1\n")
    # an earlier run's per-frame table is not a stimulus table
    (tmp_path / "derotated.csv").write_text(
        "frame,rotation_angle,clock,direction,speed,rotation_count\n"
    )
    ds = Dataset.from_folder(tmp_path)
    assert ds.movie_path.name == "b.tif" and ds.config.stimulus.name == "s.csv"


def test_bayesian_centre(full_run, tmp_path, monkeypatch):
    import napari_derotation.center as center_pkg
    from napari_derotation.center import CenterResult

    folder = full_run[0]
    cfg = Dataset.from_folder(folder).config.replace(
        center_method="bayesian", center=(19, 19), delta_center=4
    )
    calls = {}

    def fake(movie, angles, *, initial, search_radius, params, progress):
        calls.update(
            shape=movie.shape,
            n=len(angles),
            initial=initial,
            radius=search_radius,
            params=params,
        )
        progress(1, 1)
        return CenterResult(
            center=(20.5, 18.5),
            objective=0.1,
            centers=np.zeros((3, 2)),
            objectives=np.zeros(3),
            n_evaluations=3,
            n_frames=12,
            initial=initial,
            search_radius=search_radius,
            elapsed=0.5,
            uncertainty=(0.02, 0.03),
        )

    monkeypatch.setattr(center_pkg, "find_center_bayesian", fake)
    rec = run_dataset(cfg, tmp_path / "a")
    assert rec["center_row_col"] == [20.5, 18.5]
    assert calls["initial"] == (19.0, 19.0) and calls["radius"] == 4
    # the search derotates with the configured plane
    assert calls["params"] == cfg.derotation_params()
    assert calls["n"] == calls["shape"][0] * SIZE
    search = rec["pipeline"]["center"]["search"]
    assert search["objective"] == 0.1 and search["n_evaluations"] == 3
    assert search["n_frames"] == 12 and search["uncertainty"] == [0.02, 0.03]


def test_cli_batch_keeps_going_and_reports(full_rec, tmp_path, capsys):
    good = [tmp_path / "one", tmp_path / "two"]
    for f in good:
        make_dataset(f, full_rec)
    bad = tmp_path / "bad"
    bad.mkdir()
    cfg = tmp_path / "c.toml"
    cfg.write_text("center = [21, 18]\n")
    code = main(["batch", str(cfg), str(good[0]), str(bad), str(good[1]), "--quiet"])
    out = capsys.readouterr()
    assert code == 1
    lines = out.out.strip().splitlines()
    assert lines[0].startswith(f"ok      {good[0]}")
    assert lines[1] == f"FAILED  {bad}: not a dataset: no movie TIFF in {bad}"
    assert lines[2].startswith(f"ok      {good[1]}")
    assert "2 of 3 datasets derotated" in out.err
    for f in good:
        saved = json.loads((f / "derotation" / "derotated.derotation.json").read_text())
        assert saved["center_row_col"] == [21.0, 18.0]
    # all good -> 0, outputs under --output-root
    code = main(
        [
            "batch",
            str(cfg),
            *map(str, good),
            "--output-root",
            str(tmp_path / "root"),
            "--quiet",
        ]
    )
    assert code == 0
    assert (tmp_path / "root" / "two" / "derotated.tif").is_file()


def test_cli_batch_on_a_local_dask_cluster(full_rec, tmp_path, capsys):
    folders = [tmp_path / "a", tmp_path / "b"]
    for f in folders:
        make_dataset(f, full_rec, frames=20)
    (tmp_path / "b" / "movie.tif").unlink()
    cfg = tmp_path / "c.yml"
    cfg.write_text(
        "line_count_mismatch: trim\n".replace(
            "line_count_mismatch", "analog_signals_processing:\n  line_count_mismatch"
        )
    )
    code = main(["batch", str(cfg), *map(str, folders), "--workers", "2", "--quiet"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 1
    assert out[0].startswith(f"ok      {folders[0]}")
    assert out[1].startswith(f"FAILED  {folders[1]}: not a dataset")
    assert tifffile.imread(folders[0] / "derotation" / "derotated.tif").shape == (
        20,
        SIZE,
        SIZE,
    )


def test_config_object_with_missing_inputs(tmp_path):
    with pytest.raises(DerotationError, match="no movie file given"):
        run_dataset(Config(), tmp_path)
    with pytest.raises(DerotationError, match="movie file not found"):
        run_dataset(
            Config(movie=tmp_path / "m.tif", signals=tmp_path / "s.npy"), tmp_path
        )


def test_rotation_plane_keys_reach_the_derotation(full_run, tmp_path):
    """``rotation_plane`` in a config is applied and recorded like
    ``derotate --plane-tilt/--plane-orientation``."""
    from napari_derotation.pipeline.config import Config

    folder = full_run[0]
    base = Dataset.from_folder(folder).config.to_dict()
    base["rotation_plane"] = {"tilt": 20, "orientation": 30}
    base["center"] = list(CENTER)
    cfg = Config.from_dict(base)
    assert (cfg.plane_tilt, cfg.plane_orientation) == (20.0, 30.0)
    rec = run_dataset(cfg, tmp_path / "tilted")
    assert rec["plane"] == {"tilt": 20.0, "orientation": 30.0, "output": "imaging"}
    raw = tifffile.imread(folder / "movie.tif")
    angles = np.load(tmp_path / "tilted" / "angles_per_line.npy")
    expected = derotate(
        raw,
        angles,
        CENTER,
        fill_value=rec["fill_value"],
        plane_tilt=20,
        plane_orientation=30,
    )
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "tilted" / "derotated.tif"), expected
    )
    base["rotation_plane"] = {"tilt": 120}
    with pytest.raises(DerotationError, match="plane_tilt"):
        Config.from_dict(base)
    base["rotation_plane"] = {"tilt": 0}
    base["center_method"] = "ellipse"
    with pytest.raises(DerotationError, match="ellipse.seed"):
        Config.from_dict(base)
