"""The blank value: the dark level of a movie, the fill value of the pixels
no scanned line covers (``DerotationParams.fill_value``)."""

from __future__ import annotations

import numpy as np

from ..errors import DerotationError

__all__ = ["estimate_blank"]


def estimate_blank(
    frame, *, components: int = 7, max_samples: int = 1 << 18, iterations: int = 200
) -> float:
    """The dark level of a frame: the lowest mean of a Gaussian mixture.

    Fits ``components`` 1-D Gaussians (EM, deterministic start at evenly
    spaced quantiles) to every pixel of ``frame`` (subsampled evenly above
    ``max_samples``) and returns the smallest component mean, as the
    reference's ``find_image_offset`` does with its first row only.
    """
    x = np.asarray(frame, np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise DerotationError("the first frame has no finite pixels")
    if x.size > max_samples:
        x = x[:: int(np.ceil(x.size / max_samples))]
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return lo
    k = components
    means = np.quantile(x, (np.arange(k) + 0.5) / k)
    floor = ((hi - lo) / 1000.0) ** 2
    var = np.full(k, max(x.var() / k**2, floor))
    weights = np.full(k, 1.0 / k)
    for _ in range(iterations):
        logp = (
            -0.5 * (x[:, None] - means) ** 2 / var
            - 0.5 * np.log(2 * np.pi * var)
            + np.log(weights)
        )
        logp -= logp.max(axis=1, keepdims=True)
        resp = np.exp(logp)
        resp /= resp.sum(axis=1, keepdims=True)
        nk = resp.sum(axis=0) + 1e-12
        new = (resp * x[:, None]).sum(axis=0) / nk
        var = np.maximum((resp * (x[:, None] - new) ** 2).sum(axis=0) / nk, floor)
        weights = nk / nk.sum()
        done = np.max(np.abs(new - means)) < 1e-6 * (hi - lo)
        means = new
        if done:
            break
    return float(means[weights > 1e-3].min())
