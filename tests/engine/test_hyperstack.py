"""Movies with channels, planes and file sequences: reading,
the angle of each line, derotation file to file, --split."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_derotation import derotate
from napari_derotation.engine.files import derotate_file
from napari_derotation.engine.hyperstack import (
    derotate_hyperstack,
    from_tzcyx,
    line_index,
    to_tzcyx,
)
from napari_derotation.errors import DerotationError
from napari_derotation.io.sources import movie_files, natural_key, open_movie

from helpers import two_channel_movie, write_scanimage

CENTER = (11.5, 10.0)


# --- reading ---------------------------------------------------------------


@pytest.mark.parametrize("axes", ["TZCYX", "TCYX", "TZYX"])
def test_imagej_hyperstack(tmp_path, axes):
    m5, _ = two_channel_movie(t=4, z=2, c=2)
    data = m5
    if axes == "TCYX":
        data = m5[:, 0]
    elif axes == "TZYX":
        data = m5[:, :, 0]
    tifffile.imwrite(
        tmp_path / "m.tif",
        data,
        imagej=True,
        metadata={"axes": axes, "finterval": 0.25},
    )
    with open_movie(tmp_path / "m.tif") as src:
        assert src.axes == axes
        assert src.metadata["frame_rate"] == pytest.approx(4.0)
        got = src.read(1, 3)
        assert got.shape == (2, *src.shape[1:])
        np.testing.assert_array_equal(from_tzcyx(got, axes), data[1:3])


def test_ome_any_dimension_order(tmp_path):
    m5, _ = two_channel_movie(t=3, z=2, c=2)
    tifffile.imwrite(
        tmp_path / "a.ome.tif",
        m5,
        ome=True,
        metadata={
            "axes": "TZCYX",
            "TimeIncrement": 0.5,
            "Channel": {"Name": ["gcamp", "tdtomato"]},
        },
    )
    tifffile.imwrite(
        tmp_path / "b.ome.tif",
        np.ascontiguousarray(m5.transpose(0, 2, 1, 3, 4)),
        ome=True,
        metadata={"axes": "TCZYX"},
    )
    for name in ("a.ome.tif", "b.ome.tif"):
        with open_movie(tmp_path / name) as src:
            assert src.shape == m5.shape and src.axes == "TZCYX"
            np.testing.assert_array_equal(src.read(0, 3), m5)
    with open_movie(tmp_path / "a.ome.tif") as src:
        assert src.metadata["channel_names"] == ["gcamp", "tdtomato"]
        assert src.metadata["frame_rate"] == pytest.approx(2.0)


def test_scanimage(tmp_path):
    m5, _ = two_channel_movie(t=5, z=2, c=2)
    write_scanimage(tmp_path / "si_00001.tif", m5, frame_rate=10.0)
    with open_movie(tmp_path / "si_00001.tif") as src:
        assert src.shape == m5.shape and src.axes == "TZCYX"
        np.testing.assert_array_equal(src.read(0, 5), m5)
        meta = src.metadata
    assert meta["frame_rate"] == 10.0
    assert meta["line_period"] == pytest.approx(6.3e-5)
    np.testing.assert_allclose(meta["frame_timestamps"], np.arange(5) / 10)
    assert meta["channel_names"] == ["channel 1", "channel 2"]


def test_interleaved_pages_by_options(tmp_path):
    m5, _ = two_channel_movie(t=4, z=2, c=2)
    tifffile.imwrite(tmp_path / "flat.tif", m5.reshape(-1, *m5.shape[3:]))
    with open_movie(tmp_path / "flat.tif", channels=2, planes=2) as src:
        assert src.shape == m5.shape
        np.testing.assert_array_equal(src.read(2, 4), m5[2:4])
    with open_movie(tmp_path / "flat.tif") as src:  # a plain stack
        assert src.shape == (16, 1, 1, *m5.shape[3:]) and src.axes == "TYX"
    with pytest.raises(
        DerotationError,
        match=r"16 pages do not divide into 1 plane\(s\) x "
        r"3 channel\(s\)",
    ):
        open_movie(tmp_path / "flat.tif", channels=3)


def test_options_must_agree_with_metadata(tmp_path):
    m5, _ = two_channel_movie(t=2, z=1, c=2)
    tifffile.imwrite(
        tmp_path / "ij.tif", m5[:, 0], imagej=True, metadata={"axes": "TCYX"}
    )
    with pytest.raises(DerotationError, match="gives 2 channels; --channels 3"):
        open_movie(tmp_path / "ij.tif", channels=3)
    with open_movie(tmp_path / "ij.tif", channels=2) as src:
        assert src.axes == "TCYX"


def test_sequence_natural_order_pages_continue(tmp_path):
    """Files split inside a time point; name_10 after name_9."""
    m5, _ = two_channel_movie(t=4, z=2, c=2)
    flat = m5.reshape(-1, *m5.shape[3:])
    for name, (a, b) in (
        ("rec_8.tif", (0, 5)),
        ("rec_9.tif", (5, 11)),
        ("rec_10.tif", (11, 16)),
    ):
        tifffile.imwrite(tmp_path / name, flat[a:b])
    assert [p.name for p in movie_files(tmp_path)] == [
        "rec_8.tif",
        "rec_9.tif",
        "rec_10.tif",
    ]
    for spec in (
        tmp_path,
        str(tmp_path / "rec_*.tif"),
        [tmp_path / "rec_10.tif", tmp_path / "rec_9.tif", tmp_path / "rec_8.tif"],
    ):
        with open_movie(spec, channels=2, planes=2) as src:
            assert src.shape == m5.shape and len(src.paths) == 3
            np.testing.assert_array_equal(src.read(1, 3), m5[1:3])
            np.testing.assert_array_equal(src.read(0, 4), m5)
    assert natural_key("a_9.tif") < natural_key("a_10.tif")


def test_sequence_mismatch_errors(tmp_path):
    tifffile.imwrite(tmp_path / "a_1.tif", np.zeros((5, 8, 8), np.uint16))
    tifffile.imwrite(tmp_path / "a_2.tif", np.zeros((5, 8, 9), np.uint16))
    tifffile.imwrite(tmp_path / "b_1.tif", np.zeros((5, 8, 8), np.uint16))
    tifffile.imwrite(tmp_path / "b_2.tif", np.zeros((5, 8, 8), np.float32))
    with pytest.raises(DerotationError, match=r"same frame size .* a_2.tif"):
        open_movie(str(tmp_path / "a_*.tif"))
    with pytest.raises(
        DerotationError,
        match=r"same dtype: b_1.tif has "
        r"uint16, b_2.tif has float32",
    ):
        open_movie(str(tmp_path / "b_*.tif"))
    with pytest.raises(DerotationError, match="no files match"):
        open_movie(str(tmp_path / "c_*.tif"))


# --- the angle of each line --------------------------------------------------


def test_line_index_is_scan_order():
    """Plane z of time t is frame t * Z + z of the scan."""
    t, z, row = np.meshgrid(np.arange(3), np.arange(2), np.arange(5), indexing="ij")
    idx = line_index(t, z, row, planes=2, rows=5)
    np.testing.assert_array_equal(idx.ravel(), np.arange(30))


def test_each_line_uses_its_plane_and_time_angle():
    """Only the lines of (t=2, z=1) turn: only that plane of that time point
    changes, in every channel, and as the 3-D engine derotates it."""
    m5, _ = two_channel_movie(t=4, z=2, c=2)
    rows = m5.shape[3]
    angles = np.zeros(4 * 2 * rows)
    first = line_index(2, 1, 0, planes=2, rows=rows)
    angles[first : first + rows] = np.linspace(10, 30, rows)
    out = derotate_hyperstack(m5, angles)
    changed = np.any(out != m5, axis=(3, 4))
    expect = np.zeros((4, 2, 2), bool)
    expect[2, 1, :] = True
    np.testing.assert_array_equal(changed, expect)
    for c in range(2):
        np.testing.assert_array_equal(
            out[2, 1, c], derotate(m5[2:3, 1, c], angles[first : first + rows])[0]
        )


def test_derotate_axes_matches_channels_one_by_one():
    m5, angles = two_channel_movie(t=3, z=2, c=2)
    for axes in ("TZCYX", "CTZYX"):
        movie = (
            from_tzcyx(m5, "TZCYX")
            if axes == "TZCYX"
            else np.ascontiguousarray(m5.transpose(2, 0, 1, 3, 4))
        )
        out = derotate(movie, angles, center=CENTER, axes=axes)
        five = to_tzcyx(out, axes)
        for c in range(2):
            stack = m5[:, :, c].reshape(-1, *m5.shape[3:])
            ref = derotate(stack, angles, center=CENTER)
            np.testing.assert_array_equal(five[:, :, c].reshape(stack.shape), ref)
    with pytest.raises(DerotationError, match="axes must name"):
        derotate(m5, angles, axes="TZYX")


# --- file to file --------------------------------------------------------------


def test_single_channel_file_unchanged(tmp_path):
    """A plain stack stays on the 3-D path: no hyperstack metadata, the
    same values as derotate()."""
    m5, angles = two_channel_movie(t=8, z=1, c=1)
    movie = m5[:, 0, 0]
    tifffile.imwrite(tmp_path / "m.tif", movie)
    rec = derotate_file(
        tmp_path / "m.tif", angles, tmp_path / "o.tif", center=CENTER, chunk_frames=3
    )
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        assert not tif.is_imagej and len(tif.pages) == 8
        np.testing.assert_array_equal(
            tif.asarray(), derotate(movie, angles, center=CENTER)
        )
    assert rec["input"]["shape"] == list(movie.shape) and "axes" not in rec


def test_two_channel_file_keeps_axes(tmp_path):
    m5, angles = two_channel_movie(t=7, z=1, c=2)
    tifffile.imwrite(
        tmp_path / "two_ch.tif", m5[:, 0], imagej=True, metadata={"axes": "TCYX"}
    )
    rec = derotate_file(
        tmp_path / "two_ch.tif",
        angles,
        tmp_path / "o.tif",
        center=CENTER,
        chunk_frames=2,
    )
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        assert tif.series[0].axes == "TCYX"
        got = tif.asarray()
    for c in range(2):
        np.testing.assert_array_equal(
            got[:, c], derotate(m5[:, 0, c], angles, center=CENTER)
        )
    assert rec["axes"] == "TCYX" and rec["angles"]["used"] == angles.size
    assert json.loads((tmp_path / "o.derotation.json").read_text())["axes"] == "TCYX"


def test_sequence_file_to_file_and_split(tmp_path):
    m5, angles = two_channel_movie(t=6, z=2, c=2)
    for i in range(3):
        write_scanimage(
            tmp_path / f"rec_{i + 1:05d}.tif", m5[2 * i : 2 * i + 2], frame_rate=5.0
        )
    ref = derotate(m5, angles, center=CENTER, axes="TZCYX")
    rec = derotate_file(
        tmp_path, angles, tmp_path.parent / "seq.tif", center=CENTER, chunk_frames=4
    )
    np.testing.assert_array_equal(tifffile.imread(tmp_path.parent / "seq.tif"), ref)
    assert len(rec["input"]["files"]) == 3
    out = tmp_path.parent / "split"
    derotate_file(str(tmp_path / "rec_*.tif"), angles, out, center=CENTER, split=True)
    info = json.loads((out / "derotation_split.json").read_text())
    assert info["nplanes"] == 2 and info["nchannels"] == 2
    assert info["fs"] == 5.0
    assert info["files"] == [
        "plane0/chan0.tif",
        "plane0/chan1.tif",
        "plane1/chan0.tif",
        "plane1/chan1.tif",
    ]
    for z in range(2):
        for c in range(2):
            np.testing.assert_array_equal(
                tifffile.imread(out / f"plane{z}" / f"chan{c}.tif"), ref[:, z, c]
            )


def test_bad_inputs_write_nothing(tmp_path):
    m5, angles = two_channel_movie(t=3, z=1, c=2)
    tifffile.imwrite(tmp_path / "flat.tif", m5.reshape(-1, *m5.shape[3:]))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DerotationError, match="6 pages do not divide"):
        derotate_file(tmp_path / "flat.tif", angles, out / "o.tif", channels=4)
    with pytest.raises(DerotationError, match="angles_per_line has"):
        derotate_file(
            tmp_path / "flat.tif", angles[:10], out / "split", channels=2, split=True
        )
    assert list(out.iterdir()) == []
