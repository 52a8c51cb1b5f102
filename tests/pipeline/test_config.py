"""Config files: the reference's template unchanged, our own keys, YAML/TOML."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from napari_derotation.errors import DerotationError
from napari_derotation.pipeline.config import KEYS, Config, load_config

TEMPLATE = (
    Path(__import__("derotation").__file__).parent / "config" / "config_template.yml"
)


def test_reference_template_loads_unchanged(tmp_path):
    path = tmp_path / "config_template.yml"
    shutil.copy(TEMPLATE, path)
    with pytest.warns(UserWarning) as caught:
        cfg = load_config(path)
    assert cfg.movie == tmp_path / "your_path_to" / "rotation.tif"
    assert cfg.signals.name == "rotation.bin"
    assert cfg.stimulus.name == "stimlus_randperm.mat"
    assert cfg.output_folder == tmp_path / "your_path_to" / "data_folder"
    assert cfg.saving_name == "derotated_image_stack"
    assert cfg.channel_names[4:] == ("PI_rotON", "PI_rotticks")
    assert cfg.rotation_increment == 0.2 and cfg.rot_deg == 360
    assert cfg.debugging_plots is True and cfg.frame_rate == 6.74
    assert cfg.tick_height == 4 and cfg.tick_distance == 20
    assert cfg.inter_rotation_interval_min_len == 1000
    assert cfg.artifact_threshold == 0.15  # used, unlike the reference
    assert cfg.line_use_start and cfg.frame_use_start
    # biased_center is (x, y) as in the reference; our centre is (row, col)
    assert cfg.center_row_col() == (121.0, 129.0)
    messages = " ".join(str(w.message) for w in caught)
    for key in (
        "adjust_increment",
        "logs_folder",
        "init_points",
        "n_iter",
        "angle_interpolation_artifact_threshold",
        "pipeline_type",
        "squared_pulse_k",
        "delta_center",
    ):
        assert key in messages
    assert len(cfg.warnings) == len(caught)


def test_own_keys_in_toml_and_yaml_agree(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text(
        'pipeline_type = "incremental"\nincremental_step = 15\n'
        "incremental_direction = 1\ncenter = [10.5, 20]\nblank_value = -3\n"
        'resampling = "nearest"\nsampling_rate = 50000\n'
        '[paths_read]\npath_to_tif = "m.tif"\n'
        "[analog_signals_processing]\nrepair_ticks = false\n"
        'pulse_threshold = "mean_std"\nsquared_pulse_k = 0.5\n'
        'line_count_mismatch = "trim"\n'
        '[channels]\nframe_clock = "f"\nline_clock = "l"\nrotation_on = "o"\n'
        'rotation_ticks = "t"\n'
    )
    yml = tmp_path / "c.yaml"
    yml.write_text(
        "pipeline_type: incremental\nincremental_step: 15\n"
        "incremental_direction: 1\ncenter: [10.5, 20]\nblank_value: -3\n"
        "resampling: nearest\nsampling_rate: 50000\n"
        "paths_read: {path_to_tif: m.tif}\n"
        "analog_signals_processing:\n  repair_ticks: false\n"
        "  pulse_threshold: mean_std\n  squared_pulse_k: 0.5\n"
        "  line_count_mismatch: trim\n"
        "channels: {frame_clock: f, line_clock: l, rotation_on: o, "
        "rotation_ticks: t}\n"
    )
    a, b = load_config(toml, warn=False), load_config(yml, warn=False)
    assert a.replace(source=None) == b.replace(source=None)
    assert a.movie == tmp_path / "m.tif"
    assert a.center_row_col() == (10.5, 20.0)
    assert a.channels["line_clock"] == "l"
    p = a.signal_params()
    assert p.protocol == "incremental" and p.step == 15
    assert p.incremental_direction == 1 and not p.repair_ticks
    assert p.threshold_k == 0.5 and p.line_count_mismatch == "trim"
    # the only note: the reference would have ignored pipeline_type
    assert len(a.warnings) == 1 and a.warnings[0].startswith("pipeline_type")


def test_defaults_and_round_trip():
    cfg = Config()
    assert cfg.signal_params().threshold_k is None  # midway between levels
    assert cfg.center_row_col() is None and cfg.blank_value is None
    again = Config.from_dict(cfg.to_dict())
    assert again == cfg
    # every documented key maps to a field or is explicitly ignored
    fields = set(Config.__dataclass_fields__)
    assert {v for v in KEYS.values() if v} <= fields


def test_unknown_keys_are_reported_not_dropped():
    cfg = Config.from_dict({"rot_degs": 360, "interpolation": {"line_use": 1}})
    assert "rot_degs: unknown key, ignored" in cfg.warnings
    assert "interpolation.line_use: unknown key, ignored" in cfg.warnings


@pytest.mark.parametrize(
    "data, match",
    [
        (
            {"pipeline_type": "spin"},
            "pipeline_type: expected one of 'full', 'incremental'; got 'spin'",
        ),
        ({"rot_deg": "a lot"}, "config key rot_deg: .*'a lot'"),
        ({"debugging_plots": "yes"}, "debugging_plots: expected true or false"),
        (
            {
                "analog_signals_processing": {
                    "find_rotation_ticks_peaks": {"distance": 2.5}
                }
            },
            "find_rotation_ticks_peaks.distance: expected a whole number",
        ),
        ({"biased_center": [1, 2, 3]}, "biased_center: expected 2 numbers"),
        ({"channels": {"frame_clock": "a"}}, "line_clock is missing"),
        (
            {"rotation_increment": 0},
            "rotation_increment: expected a finite number > 0; got 0",
        ),
        ({"center_method": "guess"}, "center_method"),
        ({"frame_rate": -1}, "frame_rate: expected a finite number > 0"),
    ],
)
def test_bad_values_name_the_key(data, match):
    with pytest.raises(DerotationError, match=match):
        Config.from_dict(data)


def test_file_errors(tmp_path):
    with pytest.raises(DerotationError, match="not found"):
        load_config(tmp_path / "none.yml")
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(DerotationError, match="expected .yml, .yaml or .toml"):
        load_config(tmp_path / "c.json")
    (tmp_path / "c.yml").write_text("rot_deg: [1,\n")
    with pytest.raises(DerotationError, match=r"c.yml: line 2, column 1: "):
        load_config(tmp_path / "c.yml")
    (tmp_path / "l.yml").write_text("- 1\n- 2\n")
    with pytest.raises(DerotationError, match="must be a mapping"):
        load_config(tmp_path / "l.yml")


def test_records_keep_the_key_order():
    """``to_dict`` (the record's ``config``) writes the keys in the order of
    the file layout, whatever the fields' metadata says."""
    d = Config().to_dict()
    assert list(d) == [
        "pipeline_type",
        "paths_read",
        "paths_write",
        "channel_names",
        "channels",
        "npy_rows",
        "rotation_increment",
        "rot_deg",
        "incremental_step",
        "incremental_direction",
        "debugging_plots",
        "frame_rate",
        "sampling_rate",
        "analog_signals_processing",
        "interpolation",
        "biased_center",
        "center",
        "center_method",
        "delta_center",
        "angle_delay",
        "blank_value",
        "resampling",
        "rotation_plane",
        "ellipse",
        "movie",
    ]
    assert list(d["paths_write"]) == [
        "derotated_tiff_folder",
        "saving_name",
        "debug_plots_folder",
        "overwrite",
        "output_format",
        "nwb_metadata",
    ]
    enc = Config.from_dict(
        {
            "rotation_source": "encoder",
            "encoder": {"channel_a": 1, "channel_b": 2, "counts_per_turn": 8},
        }
    ).to_dict()
    assert list(enc)[-2:] == ["rotation_source", "encoder"]
    assert enc["encoder"] == {
        "channel_a": 1,
        "channel_b": 2,
        "counts_per_turn": 8.0,
        "direction": 1,
    }
