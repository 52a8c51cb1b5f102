"""Simulated acquisitions: line-scanned movies of a rotating sample
(:mod:`.movie`) and the analog signals a rig records (:mod:`.recorder`)."""

from .movie import (
    TRACES,
    SimulatedMovie,
    constant_speed_trace,
    incremental_trace,
    make_cells,
    make_texture,
    make_trace,
    real_trace,
    rotate_by_line,
    simulate_movie,
    sine_trace,
)
from .recorder import Recording, simulate_recording

__all__ = [
    "rotate_by_line",
    "make_cells",
    "make_texture",
    "incremental_trace",
    "sine_trace",
    "constant_speed_trace",
    "real_trace",
    "make_trace",
    "SimulatedMovie",
    "simulate_movie",
    "TRACES",
    "Recording",
    "simulate_recording",
]
