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
