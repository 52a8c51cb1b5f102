"""A small Gaussian-process ask/tell minimiser for a 2-D box (numpy only).

The centre search needs tens of evaluations of a smooth objective in two
dimensions, so the model is small and cheap to refit after every point:

* a Matérn 5/2 kernel with one length scale per dimension, a signal variance
  and a noise (nugget) variance, on inputs scaled to the unit box and values
  scaled to zero mean and unit variance;
* the hyper-parameters maximise the marginal likelihood over a fixed grid of
  length scales and noise ratios (all Cholesky factors in one batched call;
  the signal variance has a closed form given the rest), so a fit takes
  milliseconds and is deterministic;
* the next point maximises expected improvement over a fixed random set of
  candidates in the box plus a cloud around the best point so far.

This replaces scikit-optimize's ``Optimizer`` here: importing it and
scikit-learn took seconds, longer than the search itself.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

__all__ = ["BoxGP", "latin_hypercube"]

#: length scales tried, in units of the box's side
LENGTH_SCALES = np.geomspace(0.05, 3.0, 10)
#: noise variance / signal variance tried
NOISE_RATIOS = np.array([1e-6, 1e-4, 1e-3, 1e-2, 1e-1])
#: expected improvement's exploration margin (in units of the values' sd)
XI = 0.01

_SQRT5 = np.sqrt(5.0)


def latin_hypercube(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points in the unit square, one in each row and column stripe."""
    cols = [(rng.permutation(n) + rng.random(n)) / n for _ in range(2)]
    return np.stack(cols, axis=1)


def _matern(d2):
    """Matérn 5/2 correlation of squared scaled distances ``d2``."""
    r = np.sqrt(np.maximum(d2, 0.0)) * _SQRT5
    return (1.0 + r + r * r / 3.0) * np.exp(-r)


class BoxGP:
    """Gaussian-process minimiser over ``bounds = [(lo, hi), (lo, hi)]``.

    ``tell(x, y)`` adds an evaluation; ``ask()`` returns the candidate with
    the largest expected improvement under the model fitted to all of them.
    """

    def __init__(self, bounds, random_state=0, n_candidates=2000):
        b = np.asarray(bounds, np.float64)
        self.lo = b[:, 0]
        self.span = np.maximum(b[:, 1] - b[:, 0], 1e-9)
        self.rng = np.random.default_rng(random_state)
        self.candidates = self.rng.random((n_candidates, 2))
        self.x: list[np.ndarray] = []
        self.y: list[float] = []
        ls = (
            np.array(
                np.meshgrid(LENGTH_SCALES, LENGTH_SCALES, NOISE_RATIOS, indexing="ij")
            )
            .reshape(3, -1)
            .T
        )
        self._grid = ls  # (length row, length col, noise ratio)

    def to_unit(self, x) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.lo) / self.span

    def from_unit(self, u) -> np.ndarray:
        return self.lo + np.asarray(u, np.float64) * self.span

    def tell(self, x, y) -> None:
        self.x.append(self.to_unit(x))
        self.y.append(float(y))

    def fit(self):
        """The maximum-likelihood model: (length scales, noise ratio,
        Cholesky factor, weights, value mean, value sd, signal sd in value
        sds)."""
        x = np.array(self.x)
        y = np.array(self.y)
        mu, sd = y.mean(), y.std()
        sd = sd if sd > 0 else 1.0
        z = (y - mu) / sd
        n = len(z)
        diff2 = (x[:, None, :] - x[None, :, :]) ** 2  # (n, n, 2)
        g = self._grid
        while True:
            d2 = (
                diff2[None, :, :, 0] / g[:, 0, None, None] ** 2
                + diff2[None, :, :, 1] / g[:, 1, None, None] ** 2
            )
            k = _matern(d2) + g[:, 2, None, None] * np.eye(n)
            try:
                chol = np.linalg.cholesky(k)  # (m, n, n)
                break
            except np.linalg.LinAlgError:
                # (nearly) repeated points: drop the smallest nugget
                g = g[g[:, 2] > g[:, 2].min()]
                if g.size == 0:
                    raise
        alpha = np.linalg.solve(chol, np.broadcast_to(z, (len(g), n))[..., None])
        # z' K^-1 z (floored: a constant objective has z = 0)
        quad = np.maximum(np.square(alpha[..., 0]).sum(axis=1), 1e-300)
        logdet = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        # signal variance at its optimum quad / n: the profile likelihood
        loglik = -0.5 * n * np.log(quad / n) - 0.5 * logdet
        i = int(np.argmax(loglik))
        weights = np.linalg.solve(chol[i].T, alpha[i, :, 0])  # K^-1 z
        return g[i, :2], g[i, 2], chol[i], weights, mu, sd, np.sqrt(quad[i] / n)

    def predict(self, u, model=None):
        """Mean and sd of the latent objective at unit-box points ``u``."""
        ls, _, chol, weights, mu, sd, amp = model if model is not None else self.fit()
        x = np.array(self.x)
        d2 = (((u[:, None, :] - x[None, :, :]) / ls) ** 2).sum(axis=2)
        ks = _matern(d2)
        mean = ks @ weights
        v = np.linalg.solve(chol, ks.T)
        var = np.maximum(1.0 - np.square(v).sum(axis=0), 1e-12)
        return mu + sd * mean, sd * amp * np.sqrt(var)

    def ask(self) -> np.ndarray:
        """The next point to evaluate (in the caller's units)."""
        model = self.fit()
        x = np.array(self.x)
        best = x[int(np.argmin(self.y))]
        local = best + 0.05 * self.rng.standard_normal((200, 2))
        u = np.clip(np.concatenate([self.candidates, local]), 0.0, 1.0)
        mean, sd = self.predict(u, model)
        gap = min(self.y) - mean - XI * model[5]
        sd = np.maximum(sd, 1e-300)
        t = gap / sd
        ei = gap * ndtr(t) + sd * np.exp(-0.5 * t * t) / np.sqrt(2 * np.pi)
        # never ask for (almost) a point already evaluated
        near = (((u[:, None, :] - x[None, :, :]) ** 2).sum(axis=2) < 1e-6).any(axis=1)
        ei[near] = -np.inf
        return self.from_unit(u[int(np.argmax(ei))])
