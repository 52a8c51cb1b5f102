"""Every movie read whole or refused: a ScanImage sequence keeps
its planes, an ImageJ hyperstack whose pages do not fill it, Zarr stores
with missing, corrupt or escaping chunks, sizes too large to hold, ScanImage
metadata out of range, gaps in a sequence and symbolic link loops. Each
refusal is one line naming what was found."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest
import tifffile

from napari_derotation.cli import main
from napari_derotation.errors import DerotationError
from napari_derotation.io import check_not_input, read_movie
from napari_derotation.io import sources as io_sources
from napari_derotation.io.sources import open_movie
from napari_derotation.io.zarr_store import ZarrWriter

from helpers import two_channel_movie, write_scanimage


def _one_line_exit_2(capsys, argv) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _angles(path, n):
    np.save(path, np.linspace(0, 90, n))
    return path


# --- a ScanImage sequence keeps its planes ---------------------------------


def test_scanimage_sequence_of_one_volume_per_file_keeps_its_planes(tmp_path, capsys):
    m5, angles = two_channel_movie(t=4, z=3, c=1)
    seq = tmp_path / "seq"
    seq.mkdir()
    for t in range(4):
        write_scanimage(seq / f"rec_{t + 1:05d}.tif", m5[t : t + 1])
    write_scanimage(tmp_path / "one.tif", m5)
    with open_movie(seq) as a, open_movie(tmp_path / "one.tif") as b:
        assert a.axes == b.axes == "TZYX"
        assert a.shape == b.shape == m5.shape
        np.testing.assert_array_equal(a.read(0, 4), m5)
    np.save(tmp_path / "a.npy", angles)
    out = tmp_path / "split"
    assert (
        main(
            [
                "derotate",
                str(seq),
                "--angles",
                str(tmp_path / "a.npy"),
                "-o",
                str(out),
                "--split",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "plane0",
        "plane1",
        "plane2",
    ]


# --- an ImageJ hyperstack whose pages do not fill it ---------------------


@pytest.mark.parametrize("channels, frames, pages", [(3, 3, 10), (2, 5, 11)])
def test_imagej_hyperstack_not_filled_is_refused(
    tmp_path, capsys, channels, frames, pages
):
    path = tmp_path / "ij.tif"
    desc = (
        f"ImageJ=1.11a\nimages={pages}\nchannels={channels}\n"
        f"frames={frames}\nhyperstack=true\n"
    )
    with tifffile.TiffWriter(path) as tw:
        for i in range(pages):
            tw.write(
                np.full((8, 8), i, np.uint16),
                contiguous=False,
                description=desc if i == 0 else None,
                metadata=None,
            )
    with pytest.raises(DerotationError) as info:
        open_movie(path)
    msg = str(info.value)
    assert f"images={pages}" in msg and str(channels * frames) in msg
    err = _one_line_exit_2(
        capsys,
        [
            "derotate",
            str(path),
            "--angles",
            str(_angles(tmp_path / "a.npy", pages * 8)),
            "-o",
            str(tmp_path / "out.tif"),
        ],
    )
    assert f"images={pages}" in err
    assert not (tmp_path / "out.tif").exists()


def test_imagej_page_count_beyond_the_header_is_refused(tmp_path):
    """``images`` agrees with the axes but the file holds more pages."""
    path = tmp_path / "ij.tif"
    desc = "ImageJ=1.11a\nimages=9\nchannels=3\nframes=3\nhyperstack=true\n"
    with tifffile.TiffWriter(path) as tw:
        for i in range(10):
            tw.write(
                np.full((8, 8), i, np.uint16),
                contiguous=False,
                description=desc if i == 0 else None,
                metadata=None,
            )
    with pytest.raises(DerotationError, match="10 pages do not fill"):
        open_movie(path)


def test_filled_imagej_hyperstack_still_reads(tmp_path):
    data = np.arange(3 * 2 * 8 * 8, dtype=np.uint16).reshape(3, 2, 8, 8)
    tifffile.imwrite(tmp_path / "ij.tif", data, imagej=True, metadata={"axes": "TCYX"})
    with open_movie(tmp_path / "ij.tif") as src:
        np.testing.assert_array_equal(src.read(0, 3)[:, 0], data)


# --- Zarr stores: missing, corrupt and escaping chunks --------------------


@pytest.fixture
def store(tmp_path):
    movie = np.arange(1, 6 * 8 * 8 + 1, dtype=np.uint16).reshape(6, 8, 8)
    path = tmp_path / "m.zarr"
    with ZarrWriter(path, movie.shape, movie.dtype, chunk_frames=2) as w:
        w.write(movie)
    _angles(tmp_path / "a.npy", 6 * 8)
    return path, movie


def test_missing_chunk_is_refused_naming_it(store, capsys):
    path, movie = store
    (path / "0" / "1.0.0").unlink()
    with pytest.raises(DerotationError) as info:
        open_movie(path)
    assert "0/1.0.0" in str(info.value) and "1 of 3" in str(info.value)
    with open_movie(path, allow_missing_chunks=True) as src:
        got = src.read(0, 6)[:, 0, 0]
    np.testing.assert_array_equal(got[2:4], 0)
    np.testing.assert_array_equal(got[[0, 1, 4, 5]], movie[[0, 1, 4, 5]])
    folder = path.parent
    base = ["derotate", str(path), "--angles", str(folder / "a.npy"), "--quiet"]
    err = _one_line_exit_2(capsys, [*base, "-o", str(folder / "o.tif")])
    assert "0/1.0.0" in err and "--allow-missing-chunks" in err
    assert not (folder / "o.tif").exists()
    err = _one_line_exit_2(
        capsys, ["find-center", str(path), "--angles", str(folder / "a.npy"), "--quiet"]
    )
    assert "0/1.0.0" in err
    assert main([*base, "-o", str(folder / "o.tif"), "--allow-missing-chunks"]) == 0
    assert (
        main(
            [
                *base,
                "-o",
                str(folder / "o.zarr"),
                "--workers",
                "1",
                "--allow-missing-chunks",
            ]
        )
        == 0
    )
    capsys.readouterr()
    with open_movie(folder / "o.zarr") as a, open_movie(folder / "o.tif") as b:
        np.testing.assert_array_equal(a.read(0, 6), b.read(0, 6))


@pytest.mark.parametrize("how", ["corrupt", "symlink"])
def test_undecodable_chunk_is_one_line_naming_it(store, capsys, how, tmp_path):
    path, _ = store
    chunk = path / "0" / "2.0.0"
    chunk.unlink()
    if how == "corrupt":
        chunk.write_bytes(b"not blosc" * 20)
    else:
        other = tmp_path / "elsewhere.bin"
        other.write_bytes(b"some other file\n" * 8)
        os.symlink(other, chunk)
    with open_movie(path) as src:
        np.testing.assert_array_equal(src.read(0, 2).shape, (2, 1, 1, 8, 8))
        with pytest.raises(DerotationError) as info:
            src.read(0, 6)
    assert "m.zarr" in str(info.value) and "0/2.0.0" in str(info.value)
    err = _one_line_exit_2(
        capsys,
        [
            "derotate",
            str(path),
            "--angles",
            str(path.parent / "a.npy"),
            "-o",
            str(tmp_path / "o.tif"),
            "--quiet",
        ],
    )
    assert "0/2.0.0" in err
    assert not (tmp_path / "o.tif").exists()


def _edit_store(path, *, zarray=None, dataset=None):
    if zarray is not None:
        f = path / "0" / ".zarray"
        meta = json.loads(f.read_text())
        meta.update(zarray)
        f.write_text(json.dumps(meta))
    if dataset is not None:
        f = path / ".zattrs"
        attrs = json.loads(f.read_text())
        attrs["multiscales"][0]["datasets"][0]["path"] = dataset
        f.write_text(json.dumps(attrs))


@pytest.mark.parametrize(
    "edit, expect",
    [
        ({"dataset": "../../../../etc"}, "no '..'"),
        ({"dataset": "/etc"}, "not absolute"),
        ({"zarray": {"dtype": "|O"}}, "m.zarr"),
    ],
)
def test_bad_store_metadata_is_one_line(store, capsys, edit, expect):
    path, _ = store
    _edit_store(path, **edit)
    with pytest.raises(DerotationError, match=expect):
        open_movie(path)
    _one_line_exit_2(
        capsys,
        [
            "derotate",
            str(path),
            "--angles",
            str(path.parent / "a.npy"),
            "-o",
            str(path.parent / "o.tif"),
        ],
    )


# --- sizes too large to hold ----------------------------------------------


def test_huge_zarr_frames_refused_before_reading(store, capsys):
    path, _ = store
    _edit_store(
        path, zarray={"shape": [1, 100000, 100000], "chunks": [1, 100000, 100000]}
    )
    t0 = time.perf_counter()
    with pytest.raises(DerotationError, match="100000 x 100000"):
        open_movie(path)
    assert time.perf_counter() - t0 < 5


def test_huge_sparse_tiff_refused_before_hashing(tmp_path, capsys):
    path = tmp_path / "huge.tif"
    tifffile.imwrite(
        path, shape=(65535, 65535), dtype="float64", bigtiff=True
    )  # 32 GiB claimed, sparse on disk
    assert path.stat().st_size > 2**34
    t0 = time.perf_counter()
    with pytest.raises(DerotationError, match="65535 x 65535"):
        open_movie(path)
    err = _one_line_exit_2(
        capsys,
        [
            "derotate",
            str(path),
            "--angles",
            str(_angles(tmp_path / "a.npy", 65535)),
            "-o",
            str(tmp_path / "o.tif"),
        ],
    )
    assert "65535 x 65535" in err
    assert time.perf_counter() - t0 < 10  # no hashing of 32 GiB


def test_time_point_larger_than_memory_is_refused(tmp_path, monkeypatch):
    data = np.zeros((2, 3, 64, 64), np.float64)
    tifffile.imwrite(
        tmp_path / "z.tif", data, photometric="minisblack", metadata={"axes": "TZYX"}
    )
    monkeypatch.setattr(io_sources, "available_memory", lambda: 100_000)
    with pytest.raises(DerotationError) as info:
        open_movie(tmp_path / "z.tif")
    msg = str(info.value)
    assert "64 x 64 x 3 planes float64" in msg and "available" in msg


def test_whole_movie_larger_than_memory_is_refused(tmp_path, monkeypatch):
    data = np.zeros((50, 64, 64), np.uint16)
    tifffile.imwrite(tmp_path / "z.tif", data, compression="zlib")
    with open_movie(tmp_path / "z.tif") as src:
        monkeypatch.setattr(io_sources, "available_memory", lambda: 200_000)
        with pytest.raises(DerotationError, match="50 x 64 x 64 uint16"):
            src.frames()
        assert src.read(0, 2).shape == (2, 1, 1, 64, 64)  # by chunks: fine


def test_header_claiming_more_than_the_file_holds(tmp_path):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, np.ones((10, 32, 32), np.uint16))
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size - 3000)
    with pytest.raises(DerotationError, match="truncated"):
        open_movie(path)


# --- ScanImage metadata out of range, gaps in a sequence -------------------


def _scanimage(path, pages, **fields):
    lines = {
        "SI.hChannels.channelSave": "1",
        "SI.hStackManager.enable": "true",
        "SI.hStackManager.numSlices": "1",
        "SI.hRoiManager.linePeriod": "6.3e-05",
        "SI.hRoiManager.scanFrameRate": "30",
        "SI.VERSION_MAJOR": "'2020'",
    }
    lines.update({f"SI.{k.replace('__', '.')}": v for k, v in fields.items()})
    software = "\n".join(f"{k} = {v}" for k, v in lines.items())
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        for i in range(pages):
            tw.write(
                np.full((8, 8), i, np.uint16),
                software=software,
                metadata=None,
                photometric="minisblack",
                description=f"frameNumbers = {i + 1}\n",
            )


@pytest.mark.parametrize("slices", ["-3", "1000000", "2.5"])
def test_scanimage_slices_out_of_range_refused(tmp_path, slices):
    _scanimage(tmp_path / "s.tif", 6, hStackManager__numSlices=slices)
    with pytest.raises(DerotationError, match=f"numSlices = {slices}"):
        open_movie(tmp_path / "s.tif")


@pytest.mark.parametrize(
    "key, value, meta",
    [
        ("hRoiManager__linePeriod", "-1", "line_period"),
        ("hRoiManager__scanFrameRate", "-30", "frame_rate"),
    ],
)
def test_scanimage_rates_out_of_range_warned_and_unused(tmp_path, key, value, meta):
    _scanimage(tmp_path / "s.tif", 6, **{key: value})
    name = key.split("__")[1]
    with (
        pytest.warns(UserWarning, match=f"{name} = {value}"),
        open_movie(tmp_path / "s.tif") as src,
    ):
        assert meta not in src.metadata


def test_scanimage_numslices_larger_than_the_pages(tmp_path):
    _scanimage(tmp_path / "s.tif", 6, hStackManager__numSlices="4")
    with pytest.raises(DerotationError, match="4 plane"):
        open_movie(tmp_path / "s.tif")


def test_gap_in_a_sequence_is_warned_naming_the_number(tmp_path):
    for n in (1, 3, 4):
        tifffile.imwrite(tmp_path / f"rec_{n:05d}.tif", np.zeros((2, 8, 8), np.uint16))
    with pytest.warns(UserWarning, match="number 00002"), open_movie(tmp_path) as src:
        assert src.shape[0] == 6


# --- symbolic link loops ---------------------------------------------------


def test_symlink_loop_as_movie_is_one_line(tmp_path, capsys):
    loop = tmp_path / "loop.tif"
    os.symlink(loop, loop)
    with pytest.raises(DerotationError, match="symbolic link loop"):
        open_movie(loop)
    err = _one_line_exit_2(
        capsys,
        [
            "derotate",
            str(loop),
            "--angles",
            str(_angles(tmp_path / "a.npy", 64)),
            "-o",
            str(tmp_path / "o.tif"),
        ],
    )
    assert "symbolic link loop" in err
    with pytest.raises(DerotationError, match="symbolic link loop"):
        check_not_input(tmp_path / "o.tif", loop)
    with pytest.raises(DerotationError, match="symbolic link loop"):
        check_not_input(loop, tmp_path / "x.tif")
    z = tmp_path / "loop.zarr"
    os.symlink(z, z)
    with pytest.raises(DerotationError, match="symbolic link loop"):
        open_movie(z)


# --- the one reader keeps what read_movie gave ---------------------------


def test_read_movie_still_memory_maps_through_open_movie(tmp_path):
    data = np.arange(5 * 6 * 7, dtype=np.uint16).reshape(5, 6, 7)
    tifffile.imwrite(tmp_path / "m.tif", data)
    mapped = read_movie(tmp_path / "m.tif")
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, data)
    copy = read_movie(tmp_path / "m.tif", mmap=False)
    assert not isinstance(copy, np.memmap)
    np.testing.assert_array_equal(copy, data)
    shutil.copy(tmp_path / "m.tif", tmp_path / "n.tif")
    tifffile.imwrite(tmp_path / "z.tif", data, compression="zlib")
    np.testing.assert_array_equal(read_movie(tmp_path / "z.tif"), data)


def test_a_classic_tiff_of_an_older_scanimage_reads_its_frame_times(tmp_path):
    """ScanImage before 2016 wrote classic TIFFs, whose pages tifffile
    reads as light frames without descriptions: the frame times are read
    from whole pages."""
    import tifffile

    path = tmp_path / "si_00001.tif"
    software = (
        "SI.hChannels.channelSave = 1\n"
        "SI.hStackManager.enable = false\n"
        "SI.hRoiManager.scanFrameRate = 25\n"
        "SI.VERSION_MAJOR = '2015'"
    )
    movie = np.arange(6 * 16 * 16, dtype=np.uint16).reshape(6, 16, 16)
    with tifffile.TiffWriter(path, bigtiff=False) as tw:
        for i, page in enumerate(movie):
            # equal-length descriptions, as ScanImage writes them
            tw.write(
                page,
                software=software,
                metadata=None,
                photometric="minisblack",
                description=f"frameNumbers = {i + 1:06d}\n"
                f"frameTimestamps_sec = {i / 25:.6f}\n",
            )
    try:
        src = open_movie(path)
    except DerotationError as exc:
        # tifffile's ScanImage layout does not fit this file's pages: the
        # movie is refused, naming both counts, never read short
        assert "page chain holds 6 pages" in str(exc)
        return
    with src:
        assert src.shape == (6, 1, 1, 16, 16)
        np.testing.assert_allclose(src.metadata["frame_timestamps"], np.arange(6) / 25)
        np.testing.assert_array_equal(src.read(0, 6)[:, 0, 0], movie)
