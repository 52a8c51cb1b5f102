"""Lag between the angle signal and the scanned lines (offset.py)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from napari_derotation.center.offset import estimate_angle_offset, shift_angles
from napari_derotation.errors import Cancelled, DerotationError
from napari_derotation.simulate import simulate_movie


@cache
def movie():
    return simulate_movie(
        (256, 256), 40, trace="real", center_offset=(4, -6), noise=10, seed=5
    )


def test_shift_angles_delays_by_whole_and_fractional_lines():
    a = np.array([0.0, 1.0, 2.0, 4.0, 8.0])
    np.testing.assert_array_equal(shift_angles(a, 0), a)
    np.testing.assert_array_equal(shift_angles(a, 2), [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(shift_angles(a, -1), [1, 2, 4, 8, 8])
    np.testing.assert_allclose(shift_angles(a, 0.5), [0, 0.5, 1.5, 3, 6])
    # shifting back and forth by whole lines restores the middle
    np.testing.assert_array_equal(shift_angles(shift_angles(a, 1), -1)[:-1], a[:-1])


def test_shift_angles_interpolates_across_a_wrap():
    a = np.array([350.0, 356.0, 2.0 - 360.0, 8.0 - 360.0])  # wraps at +-360
    out = shift_angles(a, 0.5)
    # the turn is continuous: half way from 356 to 362 is 359, never ~0
    np.testing.assert_allclose(np.mod(out, 360.0), [350, 353, 359, 5])
    # and every value stays on the branch of the recorded angle it replaces
    assert np.abs(out - a).max() < 180


@pytest.mark.parametrize("bad", [np.nan, np.inf, "x"])
def test_shift_angles_refuses_bad_shifts(bad):
    with pytest.raises(DerotationError, match="shift"):
        shift_angles(np.zeros(5), bad)


@pytest.mark.parametrize("true_shift", [0.0, 23.5, -60.0])
def test_estimated_offset_within_a_line(true_shift):
    sim = movie()
    recorded = shift_angles(sim.angles_per_line, -true_shift)
    res = estimate_angle_offset(sim.movie, recorded, sim.center)
    assert res.shift == pytest.approx(true_shift, abs=1.0)
    assert res.objective == pytest.approx(res.objectives.min())
    assert res.n_evaluations == len(res.shifts) <= 17 + 30
    # applying it corrects the angles
    fixed = shift_angles(recorded, res.shift)
    err = np.abs(fixed - sim.angles_per_line)[100:-100]
    assert np.percentile(err, 99) < 0.2


def test_offset_errors_and_cancel():
    sim = movie()
    with pytest.raises(DerotationError, match="max_shift_lines"):
        estimate_angle_offset(
            sim.movie, sim.angles_per_line, sim.center, max_shift_lines=0
        )
    with pytest.raises(DerotationError, match="does not rotate"):
        estimate_angle_offset(sim.movie, np.zeros_like(sim.angles_per_line))
    with pytest.raises(Cancelled):
        estimate_angle_offset(
            sim.movie,
            sim.angles_per_line,
            sim.center,
            progress=lambda done, total: done < 2,
        )
