"""Small shared helpers for the tests (no fixtures, plain functions)."""

from __future__ import annotations

import numpy as np


def inscribed_disk(shape, center) -> np.ndarray:
    """Mask of the largest disk about ``center`` that fits in the frame."""
    r = min(center[0], shape[0] - 1 - center[0], center[1], shape[1] - 1 - center[1])
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= r * r


def pearson(a, b) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def frame_scores(movie, sample, mask) -> np.ndarray:
    """Pearson r of every frame with the static sample inside ``mask``."""
    return np.array([pearson(f[mask], sample[mask]) for f in movie])


def two_channel_movie(t=6, z=1, c=2, rows=24, cols=20, seed=0):
    """A ``(T, Z, C, Y, X)`` uint16 movie of the simulator's rotating
    samples (one sample per channel) and its per-line angles, in scan
    order: frame ``t * Z + z`` of each channel's stack is plane ``z`` at
    time ``t``."""
    from napari_derotation.simulate import simulate_movie

    sims = [
        simulate_movie((rows, cols), n_frames=t * z, seed=seed + k) for k in range(c)
    ]
    movie = np.stack([s.movie.reshape(t, z, rows, cols) for s in sims], 2)
    return movie, sims[0].angles_per_line[: t * z * rows]


def write_scanimage(path, movie5, *, frame_rate=30.0, line_period=6.3e-5, header=True):
    """Write ``(T, Z, C, Y, X)`` as ScanImage does (a page per channel,
    plane and time point): frame data in the Software tag (tifffile's
    ``scanimage_metadata`` source when the BigTIFF header is absent) and a
    ``frameTimestamps_sec`` line in each page's description."""
    import tifffile

    t, z, c = movie5.shape[:3]
    save = "[" + ";".join(str(i + 1) for i in range(c)) + "]"
    software = (
        f"SI.hChannels.channelSave = {save}\n"
        f"SI.hStackManager.enable = {'true' if z > 1 else 'false'}\n"
        f"SI.hStackManager.numSlices = {z}\n"
        f"SI.hRoiManager.linePeriod = {line_period}\n"
        f"SI.hRoiManager.scanFrameRate = {frame_rate * z}\n"
        f"SI.hRoiManager.scanVolumeRate = {frame_rate}\n"
        f"SI.VERSION_MAJOR = '2020'"
    )
    flat = movie5.reshape(-1, *movie5.shape[3:])
    with tifffile.TiffWriter(path, bigtiff=header) as tw:
        for i, page in enumerate(flat):
            stamp = (i // (z * c)) / frame_rate
            tw.write(
                page,
                software=software,
                metadata=None,
                photometric="minisblack",
                description=f"frameNumbers = {i + 1}\n"
                f"frameTimestamps_sec = {stamp:.6f}\n",
            )


def written_simulation(folder, shape, n_frames, **kw):
    """A simulated movie written as ``folder/movie.tif`` with its angles
    (``folder/angles.npy``) and the in-memory derotation to expect."""
    import tifffile

    from napari_derotation import derotate
    from napari_derotation.simulate import simulate_movie

    s = simulate_movie(shape, n_frames, **kw)
    s.path = folder / "movie.tif"
    tifffile.imwrite(s.path, s.movie)
    s.angles_file = folder / "angles.npy"
    np.save(s.angles_file, s.angles_per_line)
    s.expected = derotate(s.movie, s.angles_per_line, s.center)
    return s
