"""The hand-off to suite2p (not a dependency): the TIFF ``derotate`` writes
reads as suite2p reads a TIFF, one (Y, X) page per frame in time order, and
its record holds the ``fs``, ``nplanes`` and ``nchannels`` suite2p's ops
need."""

from __future__ import annotations

import json

import numpy as np
import tifffile

from napari_derotation import derotate
from napari_derotation.cli import main
from napari_derotation.io import sidecar_path
from napari_derotation.simulate import simulate_movie


def _suite2p_style_read(path, batch):
    """What suite2p's TIFF conversion does: count the pages, then read them
    ``batch`` at a time with ``tifffile.imread(key=range(...))``."""
    with tifffile.TiffFile(path) as tif:
        n_pages = len(tif.pages)
    frames = []
    for start in range(0, n_pages, batch):
        block = tifffile.imread(path, key=range(start, min(start + batch, n_pages)))
        if block.ndim == 2:
            block = block[np.newaxis]
        frames.append(block)
    return n_pages, np.concatenate(frames)


def test_derotated_tiff_reads_as_suite2p_reads_it(tmp_path):
    sim = simulate_movie((24, 32), 10, trace="sine", seed=7)
    src = tmp_path / "movie.tif"
    tifffile.imwrite(src, sim.movie, photometric="minisblack")
    np.save(tmp_path / "a.npy", sim.angles_per_line)
    out = tmp_path / "derotated.tif"
    assert (
        main(
            [
                "derotate",
                str(src),
                "--angles",
                str(tmp_path / "a.npy"),
                "--center",
                *map(str, sim.center),
                "-o",
                str(out),
                "--frame-rate",
                "30.5",
                "--quiet",
                "--chunk-frames",
                "3",
            ]
        )
        == 0
    )

    n_pages, frames = _suite2p_style_read(out, batch=4)
    assert n_pages == 10
    assert frames.shape == (10, 24, 32) and frames.dtype == sim.movie.dtype
    np.testing.assert_array_equal(
        frames, derotate(sim.movie, sim.angles_per_line, sim.center)
    )
    with tifffile.TiffFile(out) as tif:
        assert all(p.shape == (24, 32) for p in tif.pages)

    rec = json.loads(sidecar_path(out).read_text())
    assert rec["frame_rate"] == 30.5
    assert rec["suite2p"] == {"fs": 30.5, "nplanes": 1, "nchannels": 1}
    ops = {"data_path": [str(tmp_path)], "tiff_list": [out.name], **rec["suite2p"]}
    assert ops["fs"] == 30.5 and ops["nplanes"] == 1


def test_frame_rate_unknown_is_recorded_as_unknown(tmp_path):
    sim = simulate_movie((16, 16), 4, trace="sine", seed=1)
    src = tmp_path / "m.tif"
    tifffile.imwrite(src, sim.movie, photometric="minisblack")
    np.save(tmp_path / "a.npy", sim.angles_per_line)
    out = tmp_path / "o.tif"
    assert (
        main(
            [
                "derotate",
                str(src),
                "--angles",
                str(tmp_path / "a.npy"),
                "-o",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    rec = json.loads(sidecar_path(out).read_text())
    assert rec["frame_rate"] is None and rec["suite2p"]["fs"] is None
