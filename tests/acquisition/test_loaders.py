"""Analog signal and stimulus table readers (.npy, .bin, .csv, .mat)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import savemat

from napari_derotation.acquisition.loaders import (
    DEFAULT_CHANNEL_NAMES,
    counts_to_volts,
    load_analog,
    load_stimulus,
)
from napari_derotation.acquisition.signals import process_signals
from napari_derotation.errors import DerotationError
from napari_derotation.simulate.recorder import simulate_recording


@pytest.fixture(scope="module")
def rec():
    return simulate_recording(speeds=(200,), directions=(1,), noise=0.1)


def test_npy_rows_in_reference_order(rec, tmp_path):
    path = rec.write_npy(tmp_path / "a.npy")
    sig = load_analog(path)
    for i, ch in enumerate(sig.as_tuple()):
        assert np.array_equal(np.asarray(ch), rec.signals[i])
    assert sig.n_samples == rec.signals.shape[1]
    # another row order
    np.save(tmp_path / "b.npy", rec.signals[[3, 2, 1, 0]])
    sig = load_analog(tmp_path / "b.npy", rows=(3, 2, 1, 0))
    assert np.array_equal(np.asarray(sig.rotation_ticks), rec.signals[3])


def test_npy_wrong_shape_errors(rec, tmp_path):
    np.save(tmp_path / "t.npy", rec.signals.T)
    with pytest.raises(DerotationError, match="shape \\(4, samples\\).*transposed"):
        load_analog(tmp_path / "t.npy")
    np.save(tmp_path / "three.npy", rec.signals[:3])
    with pytest.raises(DerotationError, match="found shape \\(3, "):
        load_analog(tmp_path / "three.npy")
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(DerotationError, match="expected .npy or .bin"):
        load_analog(tmp_path / "x.txt")
    with pytest.raises(DerotationError, match="not found"):
        load_analog(tmp_path / "missing.npy")


def test_bin_named_channels_to_volts(rec, tmp_path):
    path = rec.write_bin(tmp_path / "a.bin")
    sig = load_analog(path)
    q = 20 / 2**16
    for i, ch in enumerate(sig.as_tuple()):
        v = np.asarray(ch)
        assert v.dtype == np.float64
        assert np.abs(v - np.clip(rec.signals[i], -10, 10 - q)).max() <= q
    # slicing converts only the slice
    assert np.allclose(sig.line_clock[100:200], np.asarray(sig.line_clock)[100:200])
    # the whole pipeline runs on the lazily converted channels
    res = process_signals(
        *sig.as_tuple(), direction=rec.direction, n_lines=rec.n_frames * rec.rows
    )
    err = (res.angles_per_line - rec.angles_per_line + 180) % 360 - 180
    assert np.abs(err).max() < 0.2


def test_bin_custom_channel_order(rec, tmp_path):
    names = [
        "PI_rotticks",
        "x",
        "scanimage_lineclock",
        "PI_rotON",
        "scanimage_frameclock",
    ]
    path = rec.write_bin(tmp_path / "c.bin", names)
    sig = load_analog(path, channel_names=names)
    assert np.abs(np.asarray(sig.rotation_ticks) - rec.signals[3]).max() < 1e-3
    mapping = {
        "frame_clock": "scanimage_frameclock",
        "line_clock": "x",
        "rotation_on": "PI_rotON",
        "rotation_ticks": "PI_rotticks",
    }
    sig = load_analog(path, channel_names=names, channels=mapping)
    assert np.all(np.asarray(sig.line_clock) == counts_to_volts(0))


def test_bin_errors_name_the_channels(rec, tmp_path):
    path = rec.write_bin(tmp_path / "a.bin")
    n_values = path.stat().st_size // 2
    wrong = next(k for k in (4, 5, 7, 8, 9, 11) if n_values % k)
    names = [f"c{i}" for i in range(wrong)]
    with pytest.raises(
        DerotationError, match=f"not a multiple of the {wrong} channels"
    ):
        load_analog(path, channel_names=names)
    with pytest.raises(DerotationError, match="'PI_rotON' is not in channel_names"):
        load_analog(
            path, channel_names=[*DEFAULT_CHANNEL_NAMES[:4], "on", "PI_rotticks"]
        )
    with pytest.raises(DerotationError, match="distinct"):
        load_analog(path, channel_names=["a", "a", "b", "c", "d", "e"])


def test_counts_to_volts_as_reference(tmp_path):
    from derotation.load_data.custom_data_loaders import convert_to_volts

    c = np.array([-(2**15), -1, 0, 1, 2**15 - 1], np.int32)
    assert np.allclose(counts_to_volts(c), convert_to_volts(c))
    assert counts_to_volts(-(2**15)) == -10.0


def test_bin_matches_reference_reader(rec, tmp_path):
    from derotation.load_data.custom_data_loaders import get_analog_signals

    path = rec.write_bin(tmp_path / "a.bin")
    ref = get_analog_signals(str(path), list(DEFAULT_CHANNEL_NAMES))
    ours = load_analog(path).as_tuple()
    for r, o in zip(ref, ours, strict=True):
        assert np.array_equal(r, np.asarray(o))


def test_stimulus_csv(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("direction,speed,note\n-1,200,a\n1,50.5,b\n\n")
    speed, direction = load_stimulus(p)
    assert speed.tolist() == [200, 50.5] and direction.tolist() == [-1, 1]
    assert direction.dtype == np.int64


def test_stimulus_shared_example_file():
    """The reference's example table (a copy of shared/data's, shipped here)."""
    from pathlib import Path

    speed, direction = load_stimulus(
        Path(__file__).parents[1] / "data" / "stimulus_randperm.csv"
    )
    assert speed.tolist() == [200, 200] and direction.tolist() == [-1, 1]


@pytest.mark.parametrize(
    "text, match",
    [
        ("speed,dir\n1,1\n", "columns speed and direction"),
        ("speed,direction\n200,2\n", "row 1 has 2"),
        ("speed,direction\n200,left\n", "line 2: expected numbers"),
        ("speed,direction\n", "has no rows"),
        ("", "is empty"),
    ],
)
def test_stimulus_csv_errors(tmp_path, text, match):
    p = tmp_path / "s.csv"
    p.write_text(text)
    with pytest.raises(DerotationError, match=match):
        load_stimulus(p)


def test_stimulus_mat_as_reference(tmp_path):
    from derotation.load_data.custom_data_loaders import read_randomized_stim_table

    table = np.array([[200, 0, 1], [100, 0, -1], [50, 0, 0]], float)
    p = tmp_path / "stim.mat"
    savemat(p, {"stimulus_random": table})
    speed, direction = load_stimulus(p)
    assert speed.tolist() == [200, 100, 50]
    assert direction.tolist() == [-1, 1, 1]
    ref_dir, ref_speed = read_randomized_stim_table(str(p))
    assert np.array_equal(ref_dir, direction) and np.array_equal(ref_speed, speed)
    savemat(tmp_path / "bad.mat", {"other": table})
    with pytest.raises(DerotationError, match="no variable stimulus_random"):
        load_stimulus(tmp_path / "bad.mat")
    savemat(tmp_path / "narrow.mat", {"stimulus_random": table[:, :2]})
    with pytest.raises(DerotationError, match="at least 3 columns"):
        load_stimulus(tmp_path / "narrow.mat")
