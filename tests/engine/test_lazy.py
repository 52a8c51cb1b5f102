"""Lazy derotation of dask arrays: same result as the engine, frame by frame."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import tifffile

import napari_derotation
from napari_derotation import DerotationError, derotate
from napari_derotation.engine.lazy import derotate_lazy
from napari_derotation.simulate import simulate_movie


@pytest.fixture(scope="module")
def sim():
    s = simulate_movie((24, 30), 11, trace="real", center_offset=(1.5, -2.0), seed=4)
    s.expected = derotate(s.movie, s.angles_per_line, s.center)
    return s


def test_exported_from_package():
    assert napari_derotation.derotate_lazy is derotate_lazy


def test_numpy_input_is_lazy_and_exact(sim):
    lazy = derotate_lazy(sim.movie, sim.angles_per_line, sim.center)
    assert isinstance(lazy, da.Array)
    assert lazy.shape == sim.movie.shape and lazy.dtype == sim.movie.dtype
    np.testing.assert_array_equal(lazy.compute(), sim.expected)


@pytest.mark.parametrize("chunks", [(1, 24, 30), (3, 7, 11), (4, 24, 5), (11, 24, 30)])
def test_dask_input_any_chunking(sim, chunks):
    arr = da.from_array(sim.movie, chunks=chunks)
    lazy = derotate_lazy(arr, sim.angles_per_line, sim.center)
    # whole frames per block, the input's frame chunks kept
    assert lazy.chunks[1:] == ((24,), (30,))
    assert lazy.chunks[0] == arr.chunks[0]
    np.testing.assert_array_equal(lazy.compute(), sim.expected)


@pytest.mark.parametrize("frames", [1, 2, 5, 100])
def test_chunk_frames_option(sim, frames):
    lazy = derotate_lazy(
        sim.movie, sim.angles_per_line, sim.center, chunk_frames=frames
    )
    assert max(lazy.chunks[0]) == min(frames, 11)
    np.testing.assert_array_equal(lazy.compute(), sim.expected)


def test_memmap_input_and_single_frame_access(sim, tmp_path):
    path = tmp_path / "m.tif"
    tifffile.imwrite(path, sim.movie)
    mm = tifffile.memmap(path, mode="r")
    lazy = derotate_lazy(mm, sim.angles_per_line, sim.center, chunk_frames=1)
    calls = []

    def count(key, *a, **k):
        calls.append(key)

    # a napari-style access of one frame computes exactly one block
    with dask.config.set(scheduler="sync"):
        from dask.callbacks import Callback

        with Callback(pretask=lambda key, dsk, state: count(key)):
            frame = np.asarray(lazy[6])
    np.testing.assert_array_equal(frame, sim.expected[6])
    assert sum(1 for k in calls if "derotate" in str(k)) == 1
    np.testing.assert_array_equal(np.asarray(mm), sim.movie)  # untouched


def test_options_are_forwarded(sim):
    movie = sim.movie.astype(np.float32)
    kw = {
        "interpolation": "nearest",
        "fill_value": np.nan,
        "plane_tilt": 20.0,
        "plane_orientation": 30.0,
        "plane_output": "rotation",
    }
    lazy = derotate_lazy(movie, sim.angles_per_line, sim.center, chunk_frames=3, **kw)
    np.testing.assert_array_equal(
        lazy.compute(), derotate(movie, sim.angles_per_line, sim.center, **kw)
    )


def test_rotation_starting_and_ending_on_block_boundaries():
    rows, cols = 16, 20
    angles = np.zeros((8, rows))
    angles[2:4] = np.linspace(0, 25, 2 * rows).reshape(2, rows)
    angles[4:] = 25
    sim = simulate_movie((rows, cols), 8, trace="sine", seed=1)
    lazy = derotate_lazy(sim.movie, angles.ravel(), chunk_frames=2)
    np.testing.assert_array_equal(lazy.compute(), derotate(sim.movie, angles.ravel()))
    np.testing.assert_array_equal(lazy[:2].compute(), sim.movie[:2])  # still


def test_extra_angles_are_ignored(sim):
    more = np.concatenate([sim.angles_per_line, np.full(100, 5.0)])
    np.testing.assert_array_equal(
        derotate_lazy(sim.movie, more, sim.center).compute(), sim.expected
    )


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"angles": np.zeros(10)}, "angles_per_line has 10 values"),
        ({"angles": np.full(11 * 24, np.nan)}, "finite"),
        ({"center": (100, 3)}, "outside the frame"),
        ({"interpolation": "quintic"}, "interpolation"),
        ({"fill_value": -1}, "fill_value"),
        ({"chunk_frames": 0}, "chunk_frames"),
        ({"chunk_frames": 2.5}, "chunk_frames"),
        ({"chunk_frames": "many"}, "chunk_frames"),
        ({"plane_tilt": 95}, "plane_tilt"),
    ],
)
def test_bad_arguments_fail_at_once(sim, bad, match):
    kw = {"angles": sim.angles_per_line, "center": sim.center}
    kw.update(bad)
    angles = kw.pop("angles")
    with pytest.raises(DerotationError, match=match):
        derotate_lazy(sim.movie, angles, **kw)


@pytest.mark.parametrize("shape", [(24, 30), (2, 1, 24, 30), (0, 24, 30)])
def test_bad_shapes(shape):
    with pytest.raises(DerotationError, match="3-D|empty"):
        derotate_lazy(da.zeros(shape, np.uint16), np.zeros(10_000))
