"""Readers for the analog signals and the stimulus table of an experiment.

Analog signals
    ``.npy``: a ``(channels, samples)`` array; by default the reference's
    rows ``0`` frame clock, ``1`` line clock, ``2`` rotation on, ``3``
    rotation ticks (``rows`` changes that). Memory-mapped, never copied whole.

    ``.bin``: interleaved little-endian int16, one column per name in
    ``channel_names`` (the reference's six by default); counts become volts
    as the reference does, ``-10 + 20 * (count + 2**15) / 2**16``, converted
    chunk by chunk when read.

Stimulus table
    ``.csv`` with columns ``speed`` and ``direction`` (header required, any
    order, other columns ignored), one row per rotation. ``.mat`` with the
    variable ``stimulus_random``: speed is column 0; direction is ``-1``
    where column 2 is positive, else ``+1`` (the reference's reading).

Direction convention (the one place it is defined; see ``docs/signals.md``):
``direction = +1`` makes the per-line angles run from 0 to ``-rot_deg``,
``-1`` from 0 to ``+rot_deg``, in the sign :func:`napari_derotation.derotate`
expects (a positive angle is the sample turned clockwise on screen).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DerotationError

__all__ = [
    "AnalogSignals",
    "load_analog",
    "load_channels",
    "load_stimulus",
    "VoltsChannel",
    "ROLES",
    "DEFAULT_CHANNEL_NAMES",
    "DEFAULT_CHANNELS",
    "DEFAULT_ROWS",
    "counts_to_volts",
]

#: Largest stimulus table read (bytes): a few thousand rows are a few kB.
_MAX_TABLE_BYTES = 64 << 20
#: The four signals, in the reference's ``.npy`` row order.
ROLES = ("frame_clock", "line_clock", "rotation_on", "rotation_ticks")
DEFAULT_ROWS = (0, 1, 2, 3)
#: The reference's ``.bin`` channels, in file order.
DEFAULT_CHANNEL_NAMES = (
    "camera",
    "scanimage_frameclock",
    "scanimage_lineclock",
    "photodiode2",
    "PI_rotON",
    "PI_rotticks",
)
#: Which ``.bin`` channel holds each signal.
DEFAULT_CHANNELS = {
    "frame_clock": "scanimage_frameclock",
    "line_clock": "scanimage_lineclock",
    "rotation_on": "PI_rotON",
    "rotation_ticks": "PI_rotticks",
}


def counts_to_volts(counts) -> np.ndarray:
    """int16 counts to volts in [-10, 10), as the reference."""
    return -10.0 + 20.0 * (np.asarray(counts, np.float64) + 2**15) / 2**16


class VoltsChannel:
    """One channel of an int16 ``.bin`` file, read as volts slice by slice.

    Supports ``len()`` and slicing (returns float64 volts), which is all
    :mod:`napari_derotation.acquisition.signals` needs; ``np.asarray`` reads it whole.
    """

    def __init__(self, counts):
        self._counts = counts

    def __len__(self) -> int:
        return len(self._counts)

    def __getitem__(self, key):
        return counts_to_volts(self._counts[key])

    def __array__(self, dtype=None, copy=None):
        a = counts_to_volts(self._counts)
        return a if dtype is None else a.astype(dtype)


@dataclass
class AnalogSignals:
    """The four signals of one recording (1-D, same length)."""

    frame_clock: object
    line_clock: object
    rotation_on: object
    rotation_ticks: object
    path: Path | None = None

    @property
    def n_samples(self) -> int:
        return len(self.frame_clock)

    def as_tuple(self) -> tuple:
        return (
            self.frame_clock,
            self.line_clock,
            self.rotation_on,
            self.rotation_ticks,
        )


def load_analog(
    path, *, channel_names=DEFAULT_CHANNEL_NAMES, channels=None, rows=DEFAULT_ROWS
) -> AnalogSignals:
    """Read the analog signals from ``.npy`` or ``.bin``.

    Parameters
    ----------
    path : path
    channel_names : sequence of str
        ``.bin`` only: the name of every interleaved channel, in file order.
    channels : dict, optional
        ``.bin`` only: role (``frame_clock``, ``line_clock``, ``rotation_on``,
        ``rotation_ticks``) to channel name; default :data:`DEFAULT_CHANNELS`.
    rows : 4 ints
        ``.npy`` only: the row of each role, in :data:`ROLES` order.
    """
    path = Path(path)
    if not path.is_file():
        raise DerotationError(f"analog signals file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _load_npy(path, rows)
    if suffix == ".bin":
        return _load_bin(path, channel_names, channels)
    raise DerotationError(
        f"analog signals {path.name}: expected .npy or .bin; got "
        f"{suffix or 'no suffix'}"
    )


def _load_npy(path: Path, rows) -> AnalogSignals:
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise DerotationError(f"cannot read {path.name}: {exc}") from None
    rows = tuple(int(r) for r in rows)
    if len(rows) != 4:
        raise DerotationError(
            f"expected 4 rows (frame clock, line clock, rotation on, ticks); got {rows}"
        )
    if (
        data.ndim != 2
        or data.shape[0] <= max(rows)
        or min(rows) < 0
        or data.shape[1] <= data.shape[0]
    ):
        hint = ""
        if data.ndim == 2 and data.shape[1] == 4:
            hint = " (it looks transposed: save it as signals.T)"
        raise DerotationError(
            f"{path.name}: expected analog signals of shape (4, samples) with "
            f"rows frame clock, line clock, rotation on, rotation ticks; found "
            f"shape {data.shape}{hint}"
        )
    if data.dtype.kind not in "iuf":
        raise DerotationError(
            f"{path.name}: expected numbers; found dtype {data.dtype}"
        )
    return AnalogSignals(*(data[r] for r in rows), path=path)


def _load_bin(path: Path, channel_names, channels) -> AnalogSignals:
    names = list(channel_names)
    if not names or len(set(names)) != len(names):
        raise DerotationError(
            f"channel_names must be distinct names, one per interleaved "
            f"channel; got {names}"
        )
    channels = dict(DEFAULT_CHANNELS if channels is None else channels)
    missing = [r for r in ROLES if r not in channels]
    if missing:
        raise DerotationError(f"no channel given for {', '.join(missing)}")
    size = path.stat().st_size
    if size == 0 or size % (2 * len(names)):
        raise DerotationError(
            f"{path.name} has {size // 2} int16 values, not a multiple of the "
            f"{len(names)} channels in channel_names: wrong channel count?"
        )
    counts = np.memmap(path, dtype="<i2", mode="r").reshape(-1, len(names))
    out = []
    for role in ROLES:
        name = channels[role]
        if name not in names:
            raise DerotationError(
                f"{role} channel {name!r} is not in channel_names {names}"
            )
        out.append(VoltsChannel(counts[:, names.index(name)]))
    return AnalogSignals(*out, path=path)


def load_channels(path, channels: dict, *, channel_names=DEFAULT_CHANNEL_NAMES) -> dict:
    """Any channels of an analog file, each addressed by name or row.

    Parameters
    ----------
    path : path of a ``.bin`` or ``.npy`` analog file
    channels : dict
        What to call each channel (e.g. ``"encoder.channel_a"``, used in
        error messages) -> its name in ``channel_names`` (``.bin``) or its
        row (``.npy``, a ``(channels, samples)`` array of any row count).
    channel_names : sequence of str
        ``.bin`` only: the name of every interleaved channel, in file order.

    Returns
    -------
    dict
        The same keys -> 1-D volts (memory-mapped rows, or
        :class:`VoltsChannel` for ``.bin``), never read whole here.
    """
    path = Path(path)
    if not path.is_file():
        raise DerotationError(f"analog signals file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        data = _npy_array(path)
        out = {}
        for key, row in channels.items():
            if isinstance(row, bool) or not isinstance(row, int | np.integer):
                raise DerotationError(
                    f"{key}: a .npy file's channels are addressed by row; "
                    f"expected a row number 0-{data.shape[0] - 1}; got {row!r}"
                )
            if not 0 <= row < data.shape[0]:
                raise DerotationError(
                    f"{key}: expected a row 0-{data.shape[0] - 1} of "
                    f"{path.name} (shape {data.shape}); got row {row}"
                )
            out[key] = data[int(row)]
        return out
    if suffix == ".bin":
        names = _check_names(channel_names)
        counts = _bin_counts(path, names)
        out = {}
        for key, name in channels.items():
            if name not in names:
                raise DerotationError(
                    f"{key}: channel {name!r} is not in the file: expected "
                    f"one of channel_names {names} of {path.name}"
                )
            out[key] = VoltsChannel(counts[:, names.index(name)])
        return out
    raise DerotationError(
        f"analog signals {path.name}: expected .npy or .bin; got "
        f"{suffix or 'no suffix'}"
    )


def _npy_array(path: Path):
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise DerotationError(f"cannot read {path.name}: {exc}") from None
    if data.ndim != 2 or data.shape[1] <= data.shape[0]:
        raise DerotationError(
            f"{path.name}: expected analog signals of shape (channels, "
            f"samples); found shape {data.shape}"
        )
    if data.dtype.kind not in "iuf":
        raise DerotationError(
            f"{path.name}: expected numbers; found dtype {data.dtype}"
        )
    return data


def _check_names(channel_names) -> list:
    names = list(channel_names)
    if not names or len(set(names)) != len(names):
        raise DerotationError(
            f"channel_names must be distinct names, one per interleaved "
            f"channel; got {names}"
        )
    return names


def _bin_counts(path: Path, names):
    size = path.stat().st_size
    if size == 0 or size % (2 * len(names)):
        raise DerotationError(
            f"{path.name} has {size // 2} int16 values, not a multiple of the "
            f"{len(names)} channels in channel_names: wrong channel count?"
        )
    return np.memmap(path, dtype="<i2", mode="r").reshape(-1, len(names))


def load_stimulus(path) -> tuple[np.ndarray, np.ndarray]:
    """``(speed, direction)`` from a ``.csv`` or ``.mat`` stimulus table."""
    path = Path(path)
    if not path.is_file():
        raise DerotationError(f"stimulus table not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        speed, direction = _stimulus_csv(path)
    elif suffix == ".mat":
        speed, direction = _stimulus_mat(path)
    else:
        raise DerotationError(
            f"stimulus table {path.name}: expected .csv or .mat; got "
            f"{suffix or 'no suffix'}"
        )
    if len(direction) == 0:
        raise DerotationError(f"stimulus table {path.name} has no rows")
    bad = np.flatnonzero(~np.isin(direction, (-1, 1)))
    if bad.size:
        raise DerotationError(
            f"{path.name}: direction must be 1 or -1; row {bad[0] + 1} has "
            f"{direction[bad[0]]:g}"
        )
    return speed, direction.astype(np.int64)


def _stimulus_csv(path: Path):
    from ..io.text import read_text

    text = read_text(path, "stimulus table", max_bytes=_MAX_TABLE_BYTES)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise DerotationError(f"stimulus table {path.name} is empty") from None
    if "speed" not in header or "direction" not in header:
        raise DerotationError(
            f"{path.name}: expected a header with columns speed and "
            f"direction; found {header}"
        )
    i_s, i_d = header.index("speed"), header.index("direction")
    speed, direction = [], []
    for n, row in enumerate(reader, start=2):
        if not any(c.strip() for c in row):
            continue
        try:
            speed.append(float(row[i_s]))
            direction.append(float(row[i_d]))
        except (ValueError, IndexError):
            raise DerotationError(
                f"{path.name}, line {n}: expected numbers for speed and "
                f"direction; found {row}"
            ) from None
    return np.asarray(speed), np.asarray(direction)


def _stimulus_mat(path: Path):
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except NotImplementedError:
        raise DerotationError(
            f"{path.name} is a MATLAB v7.3 file; save it with -v7"
        ) from None
    except Exception as exc:
        raise DerotationError(f"cannot read {path.name}: {exc}") from None
    table = mat.get("stimulus_random")
    if table is None:
        raise DerotationError(
            f"{path.name} has no variable stimulus_random; found "
            f"{sorted(k for k in mat if not k.startswith('__'))}"
        )
    table = np.asarray(table, np.float64)
    if table.ndim != 2 or table.shape[1] < 3:
        raise DerotationError(
            f"{path.name}: stimulus_random must have at least 3 columns "
            f"(speed, ..., direction); found shape {table.shape}"
        )
    return table[:, 0], np.where(table[:, 2] > 0, -1, 1)
