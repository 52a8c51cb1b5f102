"""Sample data: "Rotating cells (synthetic)".

A simulated movie of cells rotating about a known off-centre point, with the
real recorded angle trace; its per-line angles and the true centre are in
the layer's metadata, so every step of the widget can be tried at once.
"""

from __future__ import annotations

from ..simulate import simulate_movie
from . import _meta

#: Offset (rows, cols) of the sample's centre of rotation from the frame centre.
SAMPLE_OFFSET = (6.0, -9.0)


def sample_movie(
    shape=(256, 256), n_frames: int = 120, *, seed: int = 1, noise: float = 4.0
):
    """The simulated movie behind the sample (a ``SimulatedMovie``)."""
    return simulate_movie(
        shape,
        n_frames,
        trace="real",
        center_offset=SAMPLE_OFFSET,
        noise=noise,
        seed=seed,
    )


def sample_layer(sim, name: str = "rotating cells") -> tuple:
    """``(movie, kwargs, "image")`` for a simulated movie."""
    meta = {
        "angles_per_line": sim.angles_per_line,
        "angles_source": "simulated (real recorded trace)",
        "true_center": [float(c) for c in sim.center],
    }
    return sim.movie, {"name": name, "metadata": {_meta.KEY: meta}}, "image"


def make_sample_data() -> list:
    """npe2 sample-data command: 120 frames of 256x256 uint16 cells rotating
    about (134, 119), i.e. 6 px below and 9 px left of the frame centre."""
    return [sample_layer(sample_movie())]
