"""The quality report: its measures, its warnings naming the cause, the
``qc`` command, and the report ``run`` writes beside its outputs."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_derotation import derotate
from napari_derotation.cli import main
from napari_derotation.quality import (
    assess,
    register_rotation,
    register_shift,
    report_paths,
)
from napari_derotation.simulate import make_cells, rotate_by_line, simulate_movie

SIZE, FRAMES = 112, 48


@cache
def sim(trace, delay=0.0):
    return simulate_movie(
        (SIZE, SIZE),
        FRAMES,
        trace=trace,
        delay=delay,
        center_offset=(3.3, -4.6),
        noise=5,
        seed=2,
    )


def report(trace, case):
    s = sim(trace, 10.0 if case == "delay" else 0.0)
    angles, center = s.angles_per_line, s.center
    if case == "centre":
        center = (center[0] + 3.0, center[1] + 4.0)  # 5 px off
    elif case == "flipped":
        angles = -angles
    out = derotate(s.movie, angles, center)
    return assess(s.movie, out, angles[: FRAMES * SIZE], center)


def test_registration_measures_rotation_and_shift():
    img = make_cells((96, 96), seed=1)
    c = (44.0, 50.0)
    frames = [
        rotate_by_line(img, np.full(96, a), c)[0] for a in (0.0, 2.5, -12.0, 100.0)
    ]
    np.testing.assert_allclose(
        register_rotation(frames, img, c), [0, 2.5, -12, 100], atol=0.1
    )
    moved = np.roll(np.roll(img, 2, 0), -3, 1)
    np.testing.assert_allclose(register_shift([moved], img), [[2, -3]], atol=0.1)


@pytest.mark.parametrize("trace", ["sine", "real"])
def test_a_right_derotation_warns_of_nothing(trace):
    rep = report(trace, "right")
    assert rep["warnings"] == []
    assert rep["residual_motion"]["overall"] < 0.05
    assert rep["residual_rotation"]["sd"] < 0.1
    assert 0 < rep["blank_share"] < 0.5
    assert len(rep["residual_rotation"]["degrees"]) == FRAMES


@pytest.mark.parametrize("trace", ["sine", "real"])
@pytest.mark.parametrize(
    ("case", "cause"),
    [("centre", "wrong centre"), ("delay", "delay"), ("flipped", "wrong sign")],
)
def test_the_warning_names_the_cause(trace, case, cause):
    rep = report(trace, case)
    assert len(rep["warnings"]) == 1, rep["warnings"]
    assert rep["warnings"][0].startswith(cause + ":")
    if case == "delay":
        assert "+10." in rep["warnings"][0] or "+9." in rep["warnings"][0]
        assert rep["fits"]["rotation_vs_speed_lines"] == pytest.approx(10, abs=1)
    if case == "centre":
        err = rep["fits"]["center_error_px"]
        assert np.hypot(*err) == pytest.approx(5, abs=1)
        np.testing.assert_allclose(
            np.add(rep["center_row_col"], err), sim(trace).center, atol=1
        )


def test_qc_command_writes_png_and_json(tmp_path, capsys):
    s = sim("sine", 10.0)
    tifffile.imwrite(tmp_path / "m.tif", s.movie)
    np.save(tmp_path / "a.npy", s.angles_per_line)
    out = tmp_path / "o.tif"
    args = [
        "derotate",
        str(tmp_path / "m.tif"),
        "--angles",
        str(tmp_path / "a.npy"),
        "--center",
        *map(str, s.center),
        "-o",
        str(out),
        "--quiet",
    ]
    assert main(args[:-1]) == 0
    capsys.readouterr()
    assert main(["qc", str(out)]) == 0
    captured = capsys.readouterr()
    assert "warning: delay:" in captured.err
    js, png = report_paths(out)
    assert js.name == "o.qc.json" and png.name == "o.qc.png"
    data = json.loads(js.read_text())
    assert data["warnings"][0].startswith("delay:")
    assert data["angle_delay"] == 0 and data["center_row_col"] == list(s.center)
    assert {
        "residual_motion",
        "residual_rotation",
        "blank_share",
        "center_uncertainty",
    } <= set(data)
    assert png.read_bytes()[:4] == b"\x89PNG"
    # existing reports are kept unless --overwrite
    assert main(["qc", str(out)]) == 2
    assert "exist" in capsys.readouterr().err
    # with the delay corrected, nothing to warn of
    out2 = tmp_path / "fixed.tif"
    assert main(args[:-3] + ["-o", str(out2), "--angle-delay", "10"]) == 0
    capsys.readouterr()
    assert main(["qc", str(out2), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["warnings"] == [] and data["angle_delay"] == 10


def test_qc_needs_the_record(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "o.tif", np.zeros((5, 8, 8), np.uint16))
    assert main(["qc", str(tmp_path / "o.tif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "o.derotation.json" in err[0]


def test_run_writes_the_report_beside_its_outputs(tmp_path, monkeypatch):
    from napari_derotation.io import write_tiff
    from napari_derotation.pipeline import Dataset, run_dataset
    from napari_derotation.simulate import make_texture
    from napari_derotation.simulate.recorder import simulate_recording

    rec = simulate_recording(
        speeds=(200, 150), directions=(1, -1), rows=48, frame_rate=25, seed=2
    )
    img = make_texture((48, 48), seed=3, low=100, high=3000)
    movie = rotate_by_line(
        img, rec.angles_per_line, (25.0, 22.0), n_frames=rec.n_frames, fill_value=100.0
    )
    write_tiff(tmp_path / "movie.tif", np.rint(movie).astype(np.uint16))
    rec.write_npy(tmp_path / "analog_signals.npy")
    rec.write_stimulus(tmp_path / "stimulus_randperm.csv")
    cfg = Dataset.from_folder(tmp_path).config.replace(center=(25.0, 22.0))
    out = run_dataset(cfg, tmp_path / "out")
    qc = out["pipeline"]["qc"]
    assert qc["note"] is None and qc["warnings"] == []
    outputs = out["pipeline"]["outputs"]
    assert sorted(qc["files"]) == sorted([outputs["qc_json"], outputs["qc_png"]])
    assert all(Path(p).is_file() for p in qc["files"])
    assert Path(outputs["qc_json"]).name.endswith(".qc.json")

    # a run that fails after the report removes it with the other outputs
    import napari_derotation.pipeline.run as run_mod

    def fail(path, rec):
        raise OSError("disk full")

    written = []
    monkeypatch.setattr(run_mod, "write_json", fail)
    import napari_derotation.quality as quality

    real = quality.write_report
    monkeypatch.setattr(
        quality,
        "write_report",
        lambda *a, **k: written.extend(real(*a, **k)) or written,
    )
    with pytest.raises(OSError, match="disk full"):
        run_dataset(cfg, tmp_path / "out2")
    assert len(written) == 2 and not any(p.exists() for p in written)


def test_a_blank_output_is_a_note_not_a_failure(tmp_path):
    from napari_derotation.errors import DerotationError
    from napari_derotation.quality import write_beside

    zeros = np.zeros((6, 16, 16), np.uint16)
    angles = np.linspace(0, 90, 6 * 16)
    with pytest.raises(DerotationError, match="nothing to measure"):
        assess(zeros, zeros, angles, (8, 8))
    tifffile.imwrite(tmp_path / "m.tif", zeros)
    tifffile.imwrite(tmp_path / "o.tif", zeros)
    rec = {
        "input": {"path": str(tmp_path / "m.tif")},
        "center_row_col": [8, 8],
        "fill_value": 0,
    }
    out = write_beside(tmp_path / "o.tif", rec, angles)
    assert out["files"] == [] and "nothing to measure" in out["note"]
