"""Out-of-core derotation: chunked file-to-file equals the in-memory engine."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile

from napari_derotation import Cancelled, DerotationError, derotate
from napari_derotation.engine.files import derotate_chunk, derotate_file
from napari_derotation.engine.params import DerotationParams
from napari_derotation.io import TiffStreamWriter, file_sha256, open_movie
from napari_derotation.simulate import make_cells, rotate_by_line, simulate_movie

ROWS, COLS, FRAMES = 24, 32, 12


def _boundary_angles():
    """Still for frames 0-2, turning during 3-5 (starts and ends exactly on a
    chunk boundary of 3), still 6-7, turning from mid-frame 8 to mid-frame 10,
    then still at the reached angle."""
    a = np.zeros((FRAMES, ROWS))
    a[3:6] = np.linspace(0, 40, 3 * ROWS).reshape(3, ROWS)
    a[6:8] = 0
    ramp = np.linspace(0, -30, 2 * ROWS)
    a.ravel()[8 * ROWS + ROWS // 2 : 10 * ROWS + ROWS // 2] = ramp
    a.ravel()[10 * ROWS + ROWS // 2 :] = -30
    return a.ravel()


@pytest.fixture(scope="module")
def movie_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream")
    angles = _boundary_angles()
    sample = make_cells((ROWS, COLS), n_cells=6, seed=3, dtype=np.float32)
    movie = rotate_by_line(sample, angles, (11.5, 17.0), n_frames=FRAMES)
    movie = np.clip(np.rint(movie), 0, 65535).astype(np.uint16)
    path = folder / "movie.tif"
    tifffile.imwrite(path, movie)
    return path, movie, angles


@pytest.mark.parametrize("chunk", [None, 1, 2, 3, 5, 7, FRAMES, 100])
def test_chunked_equals_in_memory(movie_file, tmp_path, chunk):
    path, movie, angles = movie_file
    expected = derotate(movie, angles, (11.5, 17.0))
    out = tmp_path / "out.tif"
    rec = derotate_file(path, angles, out, (11.5, 17.0), chunk_frames=chunk)
    np.testing.assert_array_equal(tifffile.imread(out), expected)
    assert rec["chunk_frames"] == min(chunk or FRAMES, FRAMES)
    meta = json.loads(out.with_suffix(".derotation.json").read_text())
    assert meta["input"]["sha256"] == file_sha256(path)


def test_float_nearest_and_fill_equal_in_memory(tmp_path):
    sim = simulate_movie(
        (20, 28), 9, trace="sine", center_offset=(1.5, -2), dtype=np.float32, seed=2
    )
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, sim.movie)
    out = tmp_path / "o.tif"
    derotate_file(
        path,
        sim.angles_per_line,
        out,
        sim.center,
        chunk_frames=4,
        interpolation="nearest",
        fill_value=np.nan,
        sidecar=False,
    )
    expected = derotate(
        sim.movie,
        sim.angles_per_line,
        sim.center,
        interpolation="nearest",
        fill_value=np.nan,
    )
    np.testing.assert_array_equal(tifffile.imread(out), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.tif", "o.tif"]


def test_compressed_and_page_per_frame_input(movie_file, tmp_path):
    """Not memory-mappable: frames are decoded page by page."""
    path, movie, angles = movie_file
    packed = tmp_path / "packed.tif"
    tifffile.imwrite(packed, movie, compression="zlib")
    with open_movie(packed) as mf:
        assert mf._parts[0].offset is None
        assert mf.shape == (movie.shape[0], 1, 1, *movie.shape[1:])
        np.testing.assert_array_equal(mf.read(4, 9)[:, 0, 0], movie[4:9])
    out = tmp_path / "out.tif"
    derotate_file(packed, angles, out, (11.5, 17.0), chunk_frames=5)
    np.testing.assert_array_equal(
        tifffile.imread(out), derotate(movie, angles, (11.5, 17.0))
    )


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_big_endian_file(movie_file, tmp_path, compression):
    path, movie, angles = movie_file
    be = tmp_path / "be.tif"
    tifffile.imwrite(be, movie, byteorder=">", compression=compression)
    with open_movie(be) as mf:
        assert mf.dtype == np.uint16 and mf.dtype.isnative
        np.testing.assert_array_equal(mf.read(2, 5)[:, 0, 0], movie[2:5])
    out = tmp_path / "out.tif"
    derotate_file(be, angles, out, (11.5, 17.0), chunk_frames=5, sidecar=False)
    np.testing.assert_array_equal(
        tifffile.imread(out), derotate(movie, angles, (11.5, 17.0))
    )


def test_singleton_axes_are_dropped(tmp_path):
    data = np.arange(5 * 1 * 6 * 7, dtype=np.uint16).reshape(5, 1, 6, 7)
    path = tmp_path / "tzyx.tif"
    tifffile.imwrite(path, data, metadata={"axes": "TZYX"})
    with open_movie(path) as mf:
        assert mf.shape == (5, 1, 1, 6, 7)
        np.testing.assert_array_equal(mf.read(1, 3)[:, 0, 0], data[1:3, 0])
        with pytest.raises(DerotationError, match="not a range"):
            mf.read(3, 9)


def test_derotate_chunk_matches_slice(movie_file):
    path, movie, angles = movie_file
    part = derotate_chunk(
        path, 3, 8, angles[3 * ROWS : 8 * ROWS], DerotationParams(center=(11.5, 17.0))
    )
    np.testing.assert_array_equal(part, derotate(movie, angles, (11.5, 17.0))[3:8])


def test_cancel_mid_run_leaves_nothing(movie_file, tmp_path):
    path, _, angles = movie_file
    before = file_sha256(path)
    seen = []

    def progress(done, total):
        seen.append(done)
        return done < 6

    with pytest.raises(Cancelled):
        derotate_file(
            path, angles, tmp_path / "out.tif", chunk_frames=3, progress=progress
        )
    assert seen[0] == 3 and seen[-1] == 6 and max(seen) < FRAMES
    assert list(tmp_path.iterdir()) == []
    assert file_sha256(path) == before


def test_full_disk_while_writing_leaves_nothing(movie_file, tmp_path, monkeypatch):
    path, _, angles = movie_file
    real = tifffile.TiffWriter.write
    calls = []

    def failing(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(tifffile.TiffWriter, "write", failing)
    with pytest.raises(DerotationError, match="no space left on the device"):
        derotate_file(path, angles, tmp_path / "out.tif", chunk_frames=4)
    assert list(tmp_path.iterdir()) == []


def test_failure_when_closing_is_not_committed(tmp_path, monkeypatch):
    def failing_close(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tifffile.TiffWriter, "close", failing_close)
    with (
        pytest.raises(DerotationError, match="x.tif: no space left"),
        TiffStreamWriter(tmp_path / "x.tif", (2, 4, 4), np.uint8) as w,
    ):
        w.write(np.zeros((2, 4, 4), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_wrong_frame_counts(tmp_path):
    with (
        pytest.raises(DerotationError, match="wrote 1 of 3"),
        TiffStreamWriter(tmp_path / "x.tif", (3, 4, 4), np.uint8) as w,
    ):
        w.write(np.zeros((4, 4), np.uint8))
    with (
        pytest.raises(DerotationError, match="expected 3"),
        TiffStreamWriter(tmp_path / "x.tif", (3, 4, 4), np.uint8) as w,
    ):
        w.write(np.zeros((4, 4, 4), np.uint8))
    with (
        pytest.raises(DerotationError, match=r"\(4, 4\)"),
        TiffStreamWriter(tmp_path / "x.tif", (3, 4, 4), np.uint8) as w,
    ):
        w.write(np.zeros((1, 5, 4), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_writer_that_cannot_start_leaves_nothing(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise OSError("cannot open")

    monkeypatch.setattr(tifffile, "TiffWriter", broken)
    with (
        pytest.raises(DerotationError, match="x.tif: cannot open"),
        TiffStreamWriter(tmp_path / "x.tif", (3, 4, 4), np.uint8),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [0, -2, 2.5, "x"])
def test_bad_chunk_frames(movie_file, tmp_path, bad):
    path, _, angles = movie_file
    with pytest.raises(DerotationError, match="chunk_frames"):
        derotate_file(path, angles, tmp_path / "o.tif", chunk_frames=bad)
    assert list(tmp_path.iterdir()) == []


def test_bad_interpolation_fails_before_writing(movie_file, tmp_path):
    path, _, angles = movie_file
    with pytest.raises(DerotationError, match="interpolation"):
        derotate_file(path, angles, tmp_path / "o.tif", interpolation="quintic")
    with pytest.raises(DerotationError, match="fill_value"):
        derotate_file(path, angles, tmp_path / "o.tif", fill_value=-1)
    assert list(tmp_path.iterdir()) == []


def test_peak_memory_is_bounded_by_the_chunk(tmp_path):
    """A 64 MB movie derotated in 2 MB chunks: peak RSS grows by far less
    than the movie (measured in a fresh process, after a warm-up)."""
    script = textwrap.dedent(f"""
        import numpy as np
        from pathlib import Path
        from napari_derotation.io import TiffStreamWriter
        from napari_derotation.simulate import make_cells, rotate_by_line
        from napari_derotation.engine.files import derotate_file
        folder = Path({str(tmp_path)!r})
        n, size, step = 512, 256, 16
        angles = np.linspace(0, 720, n * size)
        img = make_cells((size, size), seed=0)
        with TiffStreamWriter(folder / "big.tif", (n, size, size), "uint16") as w:
            for s in range(0, n, step):
                w.write(rotate_by_line(img, angles[s * size:(s + step) * size],
                                       n_frames=step))
        with TiffStreamWriter(folder / "small.tif", (step, size, size),
                              "uint16") as w:
            w.write(rotate_by_line(img, angles[:step * size], n_frames=step))
        derotate_file(folder / "small.tif", angles, folder / "warm.tif",
                      chunk_frames=step)
        def hwm():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) / 1024
        for sidecar in (False, True):   # the checksum reads 16 MB blocks
            open("/proc/self/clear_refs", "w").write("5")
            base = hwm()
            derotate_file(folder / "big.tif", angles, folder / "out.tif",
                          chunk_frames=step, sidecar=sidecar, overwrite=True)
            print(hwm() - base)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    bare, with_sidecar = (float(v) for v in done.stdout.split()[-2:])
    assert bare < 12, bare  # the movie is 64 MB
    assert with_sidecar < 48, with_sidecar
    out = tifffile.TiffFile(tmp_path / "out.tif")
    assert out.series[0].shape == (512, 256, 256)
    out.close()
