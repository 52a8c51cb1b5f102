"""Property-based tests (hypothesis) of the engine's invariants."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_derotation import derotate
from napari_derotation.engine.lazy import derotate_lazy
from napari_derotation.simulate import make_texture, rotate_by_line

from helpers import frame_scores, inscribed_disk

FAST = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

DTYPES = st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64])


@st.composite
def movies(draw, max_frames=4, max_side=14):
    dtype = np.dtype(draw(DTYPES))
    shape = (
        draw(st.integers(1, max_frames)),
        draw(st.integers(2, max_side)),
        draw(st.integers(2, max_side)),
    )
    if dtype.kind == "f":
        elements = st.floats(-1e3, 1e3, width=dtype.itemsize * 8)
    else:
        info = np.iinfo(dtype)
        elements = st.integers(int(info.min), int(info.max))
    return draw(arrays(dtype, shape, elements=elements))


@st.composite
def movie_and_angles(draw):
    movie = draw(movies())
    n = movie.shape[0] * movie.shape[1]
    angles = draw(arrays(np.float64, n, elements=st.floats(-720, 720)))
    rows, cols = movie.shape[1:]
    center = (draw(st.floats(0, rows - 1)), draw(st.floats(0, cols - 1)))
    return movie, angles, center


@FAST
@given(movie_and_angles(), st.sampled_from(["bilinear", "nearest"]))
def test_shape_and_dtype_are_kept_and_input_untouched(case, interpolation):
    movie, angles, center = case
    copy = movie.copy()
    out = derotate(movie, angles, center, interpolation=interpolation)
    assert out.shape == movie.shape and out.dtype == movie.dtype
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(movie, copy)


@FAST
@given(movies(), st.sampled_from(["bilinear", "nearest"]), st.data())
def test_zero_angles_are_the_identity(movie, interpolation, data):
    rows, cols = movie.shape[1:]
    center = (data.draw(st.floats(0, rows - 1)), data.draw(st.floats(0, cols - 1)))
    zeros = np.zeros(movie.shape[0] * rows)
    out = derotate(movie, zeros, center, interpolation=interpolation)
    np.testing.assert_array_equal(out, movie)


@FAST
@given(movie_and_angles(), st.data())
def test_chunked_equals_whole(case, data):
    """Frames are independent: any split into runs of frames, and the lazy
    dask version with any block size, give the same result."""
    movie, angles, center = case
    n, rows = movie.shape[:2]
    whole = derotate(movie, angles, center)
    cuts = (
        sorted(set(data.draw(st.lists(st.integers(1, max(1, n - 1)), max_size=3))))
        if n > 1
        else []
    )
    parts, start = [], 0
    for stop in [*cuts, n]:
        parts.append(
            derotate(movie[start:stop], angles[start * rows : stop * rows], center)
        )
        start = stop
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    block = data.draw(st.integers(1, n))
    lazy = derotate_lazy(movie, angles, center, chunk_frames=block)
    np.testing.assert_array_equal(lazy.compute(), whole)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    rows=st.integers(40, 56),
    cols=st.integers(40, 56),
    dr=st.floats(-4, 4),
    dc=st.floats(-4, 4),
    start=st.floats(-180, 180),
    speed=st.floats(-0.4, 0.4),
    seed=st.integers(0, 2**16),
)
def test_derotate_inverts_the_simulator_inside_the_disk(
    rows, cols, dr, dc, start, speed, seed
):
    """The scan of a smooth sample turning at up to 0.4 degrees per line,
    about an off-centre point, is undone inside the inscribed disk."""
    sample = make_texture((rows, cols), seed=seed, sigma=2.5).astype(np.float64)
    n_frames = 3
    angles = start + speed * np.arange(n_frames * rows)
    center = (rows // 2 + dr, cols // 2 + dc)
    raw = rotate_by_line(sample, angles, center, n_frames=n_frames)
    fixed = derotate(raw, angles, center, fill_value=np.nan)
    disk = inscribed_disk((rows, cols), center)
    assert not np.isnan(fixed[:, disk]).any()
    assert frame_scores(fixed, sample, disk).min() > 0.995
    err = np.abs(fixed[:, disk] - sample[disk]).mean(axis=1)
    assert err.max() < 0.08 * sample[disk].std()
