"""The signal simulator ("recorder"): consistent signals, table and truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks

from napari_derotation import simulate
from napari_derotation.acquisition.loaders import load_stimulus
from napari_derotation.errors import DerotationError
from napari_derotation.simulate.recorder import simulate_recording


def test_reexported_from_simulate():
    assert simulate.simulate_recording is simulate_recording


def test_signals_are_consistent_with_the_profile():
    rec = simulate_recording(
        speeds=(200, 100),
        directions=(1, -1),
        rows=16,
        frame_rate=50,
        sampling_rate=20_000,
    )
    fc, lc, on, ticks = rec.signals
    assert rec.signals.shape[0] == 4 and rec.signals.dtype == np.float64
    # one tick per 0.2 degrees, at the true crossing samples
    peaks = find_peaks(ticks, height=4, distance=5)[0]
    assert np.array_equal(peaks, rec.tick_samples)
    assert len(peaks) == 2 * 1800
    # line and frame clocks: one pulse per line / frame, rising at the starts
    rising = np.flatnonzero(np.diff((lc > 2.5).astype(int)) == 1) + 1
    assert np.array_equal(rising, rec.line_starts)
    assert len(rec.line_starts) == rec.n_frames * rec.rows
    assert np.array_equal(rec.frame_starts, rec.line_starts[::16])
    # rotation on covers each movement
    for a, b in rec.motion:
        assert np.all(on[a:b] > 2.5)
    # the rotation takes rot_deg / speed seconds
    dur = (rec.motion[:, 1] - rec.motion[:, 0]) / rec.sampling_rate
    assert np.allclose(dur, 360 / np.array([200, 100]), atol=1e-3)
    # the motion covers the movie: lines before, during and after
    assert rec.line_starts[0] < rec.motion[0, 0]
    assert rec.line_starts[-1] > rec.motion[-1, 1]


def test_true_angles_sign_and_speed():
    rec = simulate_recording(speeds=(200, 100), directions=(1, -1))
    a0, b0 = rec.motion[0]
    a1, b1 = rec.motion[1]
    first = (rec.line_starts > a0) & (rec.line_starts < b0)
    second = (rec.line_starts > a1) & (rec.line_starts < b1)
    # direction +1 -> 0 .. -360; direction -1 -> 0 .. +360
    assert rec.angles_per_line[first].min() > -360 - 1e-9
    assert rec.angles_per_line[first].max() <= 0
    assert rec.angles_per_line[second].min() >= 0
    # angle changes at the commanded speed (degrees per sample)
    t = rec.line_starts[second]
    slope = np.polyfit(t, rec.angles_per_line[second], 1)[0]
    assert slope * rec.sampling_rate == pytest.approx(100, rel=1e-6)
    # still between rotations
    between = (rec.line_starts > b0) & (rec.line_starts < a1)
    assert np.all(rec.angles_per_line[between] == 0)


def test_incremental_profile_accumulates():
    rec = simulate_recording(
        protocol="incremental", speeds=(100,), directions=(-1,), step=30, pause=0.1
    )
    assert len(rec.motion) == 12 and len(rec.speed) == 12
    a = rec.angles_per_line
    assert np.all(np.diff(a[rec.line_starts < rec.motion[-1, 1]]) >= 0)
    pauses = [(rec.motion[i, 1], rec.motion[i + 1, 0]) for i in range(11)]
    for k, (s, e) in enumerate(pauses):
        held = rec.angle_at(np.arange(s + 1, e, 100))
        assert np.allclose(held, 30 * (k + 1))


def test_dropped_and_extra_ticks():
    base = simulate_recording(speeds=(200,), directions=(1,))
    dropped = simulate_recording(
        speeds=(200,), directions=(1,), dropped_ticks=5, seed=1
    )
    extra = simulate_recording(speeds=(200,), directions=(1,), extra_ticks=3, seed=1)
    assert len(dropped.tick_samples) == len(base.tick_samples) - 5
    assert set(dropped.tick_samples) < set(base.tick_samples)
    assert len(extra.tick_samples) == len(base.tick_samples) + 3
    # truth does not depend on the recording errors
    assert np.array_equal(dropped.angles_per_line, base.angles_per_line)


def test_noise_is_seeded():
    a = simulate_recording(speeds=(200,), directions=(1,), noise=0.2, seed=3)
    b = simulate_recording(speeds=(200,), directions=(1,), noise=0.2, seed=3)
    c = simulate_recording(speeds=(200,), directions=(1,), noise=0.2, seed=4)
    assert np.array_equal(a.signals, b.signals)
    assert not np.array_equal(a.signals, c.signals)
    assert np.std(a.signals[0][a.signals[0] < 2.5]) == pytest.approx(0.2, rel=0.1)


def test_writes_stimulus_table(tmp_path):
    rec = simulate_recording(speeds=(200, 50.5), directions=(-1, 1))
    path = rec.write_stimulus(tmp_path / "stim.csv")
    assert path.read_text().splitlines()[:3] == ["speed,direction", "200,-1", "50.5,1"]
    speed, direction = load_stimulus(path)
    assert speed.tolist() == [200, 50.5] and direction.tolist() == [-1, 1]


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"speeds": (1, 2), "directions": (1,)}, "same length"),
        ({"speeds": (0,), "directions": (1,)}, "speeds must be > 0"),
        ({"speeds": (1,), "directions": (2,)}, "directions \\+1 or -1"),
        ({"increment": 0}, "must be > 0"),
        ({"protocol": "spin"}, "'full' or 'incremental'"),
    ],
)
def test_bad_arguments(kw, match):
    with pytest.raises(DerotationError, match=match):
        simulate_recording(**kw)
