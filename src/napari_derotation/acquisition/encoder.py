"""Angles from a quadrature encoder's A and B channels (x4 decoding).

Each channel is high above the level midway between its lowest and highest
value. The two bits form the Gray state ``(A, B) = 00, 10, 11, 01`` that
steps forward (+1 count) or back (-1) at every edge of either channel, so
``counts_per_turn`` counts make 360 degrees. The angle of a sample is
``direction * count * 360 / counts_per_turn`` with count 0 at the first
sample. A sample where both channels change at once is a glitch: the count
cannot know which way it went, so it is left unchanged, and every glitch is
counted and reported (never silently absorbed).

Streamed in chunks; only the edges (a few per count) are kept, so memory is
bounded by the motion, not the recording's length.
"""

from __future__ import annotations

import numpy as np

from ..errors import DerotationError
from .signals import CHUNK

__all__ = ["decode_quadrature", "encoder_angles", "MIN_SWING"]

#: A channel whose values span less than this many volts never changes.
MIN_SWING = 0.5

# step of the count for (new state - old state) % 4; 2 is a glitch
_STEP = np.array([0, 1, 0, -1], np.int64)


def _level(signal, name, chunk):
    lo, hi = np.inf, -np.inf
    for a in range(0, len(signal), chunk):
        x = np.asarray(signal[a : a + chunk])
        lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
    if not hi - lo >= MIN_SWING:
        raise DerotationError(
            f"encoder {name} never changes: expected a quadrature square wave "
            f"swinging at least {MIN_SWING:g} V; found values within "
            f"{lo:.4g}..{hi:.4g} V over {len(signal)} samples"
        )
    return 0.5 * (lo + hi)


def decode_quadrature(a, b, *, names=("channel A", "channel B"), chunk: int = CHUNK):
    """Edges of a quadrature signal: ``(samples, counts, glitches)``.

    ``samples`` (int64) are where the count changes, ``counts`` the count
    from that sample on (0 before the first), ``glitches`` the samples
    where both channels changed at once. Raises :class:`DerotationError`
    for channels of different lengths or a channel that never changes.
    """
    n = len(a)
    if len(b) != n:
        raise DerotationError(
            f"encoder {names[0]} and {names[1]}: expected the same number of "
            f"samples; found {n} and {len(b)}"
        )
    if n == 0:
        raise DerotationError(f"encoder {names[0]} is empty")
    la, lb = _level(a, names[0], chunk), _level(b, names[1], chunk)
    edges, steps, glitches = [], [], []
    flips = [0, 0]
    prev = None
    for s in range(0, n, chunk):
        ha = np.asarray(a[s : s + chunk]) > la
        hb = np.asarray(b[s : s + chunk]) > lb
        if prev is None:
            prev = (ha[0], hb[0])
        flips[0] += int(np.count_nonzero(ha[1:] != ha[:-1]) + (ha[0] != prev[0]))
        flips[1] += int(np.count_nonzero(hb[1:] != hb[:-1]) + (hb[0] != prev[1]))
        state = (ha ^ hb).view(np.int8) | (hb.view(np.int8) << 1)
        first = (prev[0] ^ prev[1]) | (prev[1] << 1)
        d = np.diff(state, prepend=np.int8(first)) & 3
        idx = np.flatnonzero(d)
        dd = d[idx]
        glitches.append(idx[dd == 2] + s)
        good = dd != 2
        edges.append(idx[good] + s)
        steps.append(_STEP[dd[good]])
        prev = (ha[-1], hb[-1])
    for name, f in zip(names, flips, strict=True):
        if f == 0:
            raise DerotationError(
                f"encoder {name} never changes: expected a quadrature square "
                f"wave; it never crosses its mid level over {n} samples"
            )
    edges = np.concatenate(edges).astype(np.int64)
    glitches = np.concatenate(glitches).astype(np.int64)
    if edges.size == 0 and glitches.size:
        raise DerotationError(
            f"encoder {names[0]} and {names[1]} change together at every one "
            f"of their {glitches.size} edges: expected two square waves a "
            f"quarter period apart; found the same signal twice (the same "
            f"channel named for both?)"
        )
    counts = np.cumsum(np.concatenate(steps))
    return edges, counts, glitches


def encoder_angles(
    a,
    b,
    samples,
    *,
    counts_per_turn,
    direction=1,
    names=("channel A", "channel B"),
    chunk: int = CHUNK,
):
    """Degrees at any sample indices, and notes (glitches).

    ``counts_per_turn`` must be a finite number > 0.

    Returns ``(angles, notes, info)``: ``info`` has ``glitches`` (count),
    ``glitch_samples`` (the first 100), ``edges`` and ``final_count``.
    """
    cpt = float(counts_per_turn)
    if not 0 < cpt < np.inf:
        raise DerotationError(
            f"encoder counts_per_turn must be a finite number > 0; got "
            f"{counts_per_turn}"
        )
    edges, counts, glitches = decode_quadrature(a, b, names=names, chunk=chunk)
    samples = np.asarray(samples, np.int64)
    i = np.searchsorted(edges, samples, side="right") - 1
    count = np.where(i >= 0, counts[np.maximum(i, 0)] if counts.size else 0, 0)
    angles = float(direction) * count * (360.0 / float(counts_per_turn))
    notes = []
    if glitches.size:
        first = ", ".join(str(int(g)) for g in glitches[:5])
        notes.append(
            f"encoder: {glitches.size} glitches (both channels changed in one "
            f"sample; the count was left unchanged, each may be 2 counts = "
            f"{720.0 / float(counts_per_turn):.3g} degrees off) at samples "
            f"{first}{', ...' if glitches.size > 5 else ''}"
        )
    info = {
        "glitches": int(glitches.size),
        "glitch_samples": glitches[:100].tolist(),
        "edges": int(edges.size),
        "final_count": int(counts[-1]) if counts.size else 0,
    }
    return angles, notes, info
