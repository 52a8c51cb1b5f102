"""Hostile and faulty configs: refused in one line, fast, bounded.

Each case runs through the CLI in a subprocess (one line on stderr, exit 2,
no traceback, nothing written, memory and time bounded) or, for the values
themselves, through :meth:`Config.from_dict`.
"""

from __future__ import annotations

import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from napari_derotation.acquisition.encoder import decode_quadrature
from napari_derotation.acquisition.loaders import load_stimulus
from napari_derotation.errors import DerotationError
from napari_derotation.io.text import MAX_NODES, load_yaml
from napari_derotation.pipeline.config import Config, load_config

#: 9 levels of 9 aliases: 9**9 (387 million) values once expanded
BOMB = "\n".join(
    ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    + ["rot_deg: *a8"]
)
LIST_BOMB = "\n".join(
    ["x0: &a0 [x, x, x, x, x, x, x, x, x]"]
    + [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    + ["channel_names: *a8"]
)
CLI = "import sys; from napari_derotation.cli import main; sys.exit(main())"
GIB = 1 << 30


def cli(*args, cwd=None, timeout=60, memory=3 * GIB):
    """``(exit code, stderr lines, seconds)`` of the CLI in a subprocess
    whose address space is bounded (a bomb fails instead of filling RAM)."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CLI, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        preexec_fn=limit,
    )
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    return done.returncode, lines, time.perf_counter() - t0


def one_line(code, lines, *, contains=()):
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    for text in contains:
        assert text in lines[0], lines[0]


# ------------------------------------------------------------- alias bombs


@pytest.mark.parametrize("text", [BOMB, LIST_BOMB], ids=["dict", "list"])
def test_alias_bomb_is_refused_in_under_a_second(tmp_path, text):
    path = tmp_path / "bomb.yml"
    path.write_text(text)
    t0 = time.perf_counter()
    with pytest.raises(DerotationError, match="alias") as exc:
        load_config(path)
    assert time.perf_counter() - t0 < 1.0
    assert "\n" not in str(exc.value) and "bomb.yml" in str(exc.value)


@pytest.mark.parametrize("command", ["run", "batch", "angles"])
def test_alias_bomb_through_the_cli(tmp_path, command):
    (tmp_path / "bomb.yml").write_text(LIST_BOMB)
    (tmp_path / "ds").mkdir()
    args = {
        "run": ("run", "bomb.yml"),
        "batch": ("batch", "bomb.yml", "ds"),
        "angles": ("angles", "bomb.yml", "-o", "a.npy"),
    }[command]
    code, lines, seconds = cli(*args, cwd=tmp_path)
    one_line(code, lines, contains=("bomb.yml", f"more than {MAX_NODES}"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.yml", "ds"]
    assert not any((tmp_path / "ds").iterdir())


def test_napari_reader_with_a_bomb_in_the_dataset_folder(tmp_path):
    (tmp_path / "config.yml").write_text(BOMB)
    code = (
        "import sys, time; "
        "from napari_derotation._napari._reader import _dataset; "
        "import napari_derotation.pipeline; t = time.perf_counter(); "
        f"d = _dataset(__import__('pathlib').Path({str(tmp_path)!r}), "
        "quiet=True); print(d, time.perf_counter() - t)"
    )

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 * GIB, 3 * GIB))

    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
    )
    assert done.returncode == 0, done.stderr
    found, seconds = done.stdout.split()
    assert found == "None" and float(seconds) < 1


def test_deep_nesting_and_recursive_aliases(tmp_path):
    deep = tmp_path / "deep.yml"
    deep.write_text("rot_deg: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(DerotationError, match="nested"):
        load_config(deep)
    loop = tmp_path / "loop.yml"
    loop.write_text("a: &a [*a]\n")
    with pytest.raises(DerotationError, match="contains it"):
        load_yaml(loop)
    big = tmp_path / "big.yml"
    big.write_text("a: '" + "x" * (2 << 20) + "'\n")
    with pytest.raises(DerotationError, match="at most 1048576 bytes"):
        load_config(big)
    # what a config needs is well inside the bounds
    ok = tmp_path / "ok.yml"
    ok.write_text(
        "defaults: &d {height: 3}\nanalog_signals_processing:\n"
        "  find_rotation_ticks_peaks: *d\n"
    )
    assert load_config(ok, warn=False).tick_height == 3.0


# -------------------------------------------- syntax, tags and encodings


def test_yaml_syntax_error_and_python_tag_are_one_line(tmp_path):
    (tmp_path / "syntax.yml").write_text("rot_deg: 360\nchannels: [a,\n")
    (tmp_path / "tag.yml").write_text(
        "rot_deg: !!python/object/apply:os.system ['touch pwned']\n"
    )
    code, lines, _ = cli("run", "syntax.yml", cwd=tmp_path)
    one_line(code, lines, contains=("syntax.yml", "line 3, column 1"))
    code, lines, _ = cli("run", "tag.yml", cwd=tmp_path)
    one_line(
        code, lines, contains=("tag.yml", "line 1, column 10", "python/object/apply")
    )
    assert not (tmp_path / "pwned").exists()


def test_config_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "latin.yml"
    path.write_bytes("saving_name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(
        DerotationError, match=r"latin.yml: expected UTF-8 text; byte 16 "
    ):
        load_config(path)
    code, lines, _ = cli("run", "latin.yml", cwd=tmp_path)
    one_line(code, lines, contains=("latin.yml", "byte 16"))


def test_stimulus_csv_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "stim.csv"
    path.write_bytes(b"speed,direction\n100,1\n\xff\xfe,1\n")
    with pytest.raises(
        DerotationError,
        match=r"stimulus table .*stim.csv: expected UTF-8 "
        r"text; byte 22 \(0xff\)",
    ):
        load_stimulus(path)


# --------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "data, match",
    [
        ({"rot_deg": math.inf}, "config key rot_deg: expected a finite number > 0"),
        ({"rot_deg": math.nan}, "config key rot_deg: expected a finite number"),
        (
            {
                "analog_signals_processing": {
                    "find_rotation_ticks_peaks": {"distance": 10**400}
                }
            },
            "distance: expected a whole number >= 1; got 1000",
        ),
        (
            {
                "analog_signals_processing": {
                    "find_rotation_ticks_peaks": {"height": 10**400}
                }
            },
            "height: expected a finite number",
        ),
        (
            {"encoder": {"counts_per_turn": math.inf}},
            "encoder.counts_per_turn: expected a finite number > 0",
        ),
        ({"sampling_rate": 0}, "sampling_rate: expected a finite number > 0"),
        ({"sampling_rate": -50000}, "sampling_rate: expected a finite number > 0"),
        ({"frame_rate": math.inf}, "frame_rate: expected a finite number > 0"),
        ({"blank_value": math.nan}, "blank_value: expected a finite number"),
        ({"center": [1, math.inf]}, "center: expected 2 numbers, each finite"),
        ({"delta_center": 0}, "delta_center: expected a finite number > 0"),
        ({"rotation_plane": {"tilt": math.nan}}, "rotation_plane.tilt"),
        (
            {"position": {"degrees_per_volt": math.inf}},
            "position.degrees_per_volt: expected a finite non-zero number",
        ),
        ({"log": {"log_offset_s": -math.inf}}, "log.log_offset_s"),
        (
            {"analog_signals_processing": {"inter_rotation_interval_min_len": 1e300}},
            "inter_rotation_interval_min_len: expected a whole number",
        ),
        ({"rot_deg": None}, "config key rot_deg: expected a number; got None"),
        ({"paths_write": {"saving_name": None}}, "saving_name: expected a text"),
    ],
)
def test_every_number_is_checked_naming_the_key(data, match):
    with pytest.raises(DerotationError, match=match) as exc:
        Config.from_dict(data)
    assert "\n" not in str(exc.value) and len(str(exc.value)) < 300


def test_python_built_configs_meet_the_same_rules():
    with pytest.raises(DerotationError, match="sampling_rate"):
        Config(sampling_rate=0).check()
    with pytest.raises(DerotationError, match="rot_deg"):
        Config().replace(rot_deg=math.inf)
    cfg = Config(channel_names=["a", "b", "c", "d"], center=[1, 2]).check()
    assert cfg.channel_names == ("a", "b", "c", "d") and cfg.center == (1, 2)


def test_overflowing_numbers_through_the_cli(tmp_path):
    (tmp_path / "inf.yml").write_text("rot_deg: .inf\n")
    (tmp_path / "digits.yml").write_text(
        "analog_signals_processing:\n  find_rotation_ticks_peaks:\n"
        f"    distance: {'9' * 400}\n"
    )
    for name, key in (("inf.yml", "rot_deg"), ("digits.yml", "distance")):
        code, lines, _ = cli("run", name, cwd=tmp_path)
        one_line(code, lines, contains=(key,))


def test_equal_encoder_channels_are_refused():
    with pytest.raises(
        DerotationError,
        match="encoder.channel_a and encoder.channel_b: "
        "expected two different channels",
    ):
        Config.from_dict(
            {
                "rotation_source": "encoder",
                "encoder": {"channel_a": 4, "channel_b": 4, "counts_per_turn": 1000},
            }
        )
    # the same signal under two names: every edge is a glitch
    square = np.tile(np.r_[np.zeros(5), np.full(5, 5.0)], 20)
    with pytest.raises(DerotationError, match="change together at every"):
        decode_quadrature(square, square.copy())


# ---------------------------------------------------------- output folders


def test_output_folders_stay_in_the_configs_folder(tmp_path):
    home = tmp_path / "cfg"
    home.mkdir()
    (home / "up.yml").write_text("paths_write: {debug_plots_folder: ../../x}\n")
    (home / "abs.yml").write_text(
        f"paths_write: {{derotated_tiff_folder: {tmp_path / 'elsewhere'}}}\n"
    )
    (home / "in.yml").write_text(
        "paths_write: {derotated_tiff_folder: out, debug_plots_folder: p}\n"
    )
    up, absolute = load_config(home / "up.yml"), load_config(home / "abs.yml")
    with pytest.raises(
        DerotationError,
        match="paths_write.debug_plots_folder: .* is outside the config's folder",
    ):
        up.output_folders(None, home / "derotation")
    with pytest.raises(
        DerotationError,
        match="derotated_tiff_folder: .*elsewhere is outside.*run -o DIR",
    ):
        absolute.output_folders(None, home / "derotation")
    # given on the command line, a folder anywhere is fine
    assert absolute.output_folders(tmp_path / "cli", None) == (
        tmp_path / "cli",
        tmp_path / "cli" / "debug_plots",
    )
    assert load_config(home / "in.yml").output_folders(None, None) == (
        home / "out",
        home / "p",
    )
    # a config built in Python has no folder to stay in
    assert (
        Config(output_folder=tmp_path / "x").output_folders(None, None)[0]
        == tmp_path / "x"
    )


def test_run_refuses_a_config_writing_outside_its_folder(tmp_path):
    """Through ``run``: nothing is written where the config points."""
    home = tmp_path / "cfg"
    home.mkdir()
    (home / "movie.tif").write_bytes(b"")
    (home / "a.npy").write_bytes(b"")
    (home / "c.yml").write_text(
        "paths_read: {path_to_tif: movie.tif, path_to_aux: a.npy}\n"
        "paths_write: {debug_plots_folder: ../../x}\n"
    )
    code, lines, _ = cli("run", "c.yml", cwd=home)
    one_line(code, lines, contains=("debug_plots_folder", "outside"))
    assert not (tmp_path.parent / "x").exists()
    assert sorted(p.name for p in home.iterdir()) == ["a.npy", "c.yml", "movie.tif"]


def test_unsupported_bytes_in_a_yaml_are_one_line(tmp_path):
    path = tmp_path / "ctl.yml"
    path.write_text("rot_deg: 360\nname: \x07\n")
    with pytest.raises(DerotationError, match=r"ctl.yml: line 2, column 7: ") as exc:
        load_config(path)
    assert "\n" not in str(exc.value)


def test_a_dataset_folder_with_a_bad_config_says_so(tmp_path):
    (tmp_path / "config.yml").write_bytes(b"\xff\n")
    from napari_derotation.pipeline import Dataset

    with pytest.raises(DerotationError, match="byte 0"):
        Dataset.from_folder(tmp_path)
    assert Path(tmp_path / "config.yml").read_bytes() == b"\xff\n"


def test_numpy_vectors_from_python_are_numbers():
    cfg = Config().replace(center=np.array([3.0, 4.0]))
    assert cfg.center == (3.0, 4.0) and type(cfg.center[0]) is float
