"""One set of derotation parameters, validated once, from every entry point
to every output.

:class:`DerotationParams` holds what, besides the movie and its angles,
decides a derotated movie: the centre of rotation, the interpolation, the
fill value of pixels no line covered, the rotation plane (tilt,
orientation of the tilt axis, and whether the result is given in the imaging
or in the rotation plane) and the delay between the angle signal and the
scanned lines. It is frozen and checked when made; the checks
that need the movie (the centre inside the frame, the fill value inside the
dtype's range) are made by :meth:`DerotationParams.resolve` before any work
starts.

The API (``derotate(..., params=...)``), the CLI (``--center``,
``--plane-tilt``, ``--plane-orientation``, ``--params FILE.json``),
``run``/``batch`` configs, the streaming, lazy and cluster paths and the
napari widget all build one and pass it unchanged; every JSON record stores
:meth:`DerotationParams.to_record`, which :meth:`DerotationParams.from_json`
reads back (as it reads what ``find-center --json`` prints).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import DerotationError

__all__ = [
    "DerotationParams",
    "KernelArgs",
    "INTERPOLATION_CODES",
    "PLANE_OUTPUTS",
    "plane_matrix",
    "default_center",
    "check_center",
]

#: interpolation name -> the kernels' code (see :mod:`._kernels`)
INTERPOLATION_CODES = {"nearest": 0, "bilinear": 1, "cubic": 2}
PLANE_OUTPUTS = ("imaging", "rotation")

#: The keyword arguments that :func:`~napari_derotation.derotate` and every
#: other entry point accept in place of ``params``.
FIELDS = (
    "center",
    "interpolation",
    "fill_value",
    "plane_tilt",
    "plane_orientation",
    "plane_output",
    "angle_delay",
)


def default_center(shape: Sequence[int]) -> tuple[float, float]:
    """The reference's default centre: ``(rows // 2, cols // 2)``."""
    return float(shape[-2] // 2), float(shape[-1] // 2)


def _two_numbers(center) -> tuple[float, float]:
    try:
        r, c = (float(v) for v in center)
    except (TypeError, ValueError):
        raise DerotationError(
            f"center must be two numbers (row, col); got {center!r}"
        ) from None
    if not (math.isfinite(r) and math.isfinite(c)):
        raise DerotationError(f"center must be finite; got ({r}, {c})")
    return r, c


def check_center(center, shape: Sequence[int]) -> tuple[float, float]:
    """Return ``center`` as ``(row, col)`` floats inside the frame, or raise."""
    rows, cols = shape[-2], shape[-1]
    if center is None:
        return default_center(shape)
    r, c = _two_numbers(center)
    if not (0 <= r <= rows - 1 and 0 <= c <= cols - 1):
        raise DerotationError(
            f"center (row, col) = ({r:g}, {c:g}) is outside the frame: "
            f"expected 0 <= row <= {rows - 1} and 0 <= col <= {cols - 1}"
        )
    return r, c


def _degrees(name: str, value) -> float:
    try:
        v = float(value)
        ok = math.isfinite(v) and not isinstance(value, bool)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DerotationError(
            f"{name} must be a finite number of degrees; got {value!r}"
        )
    return v


def _number(name: str, value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DerotationError(f"{name} must be a number; got {value!r}") from None


def _fill(value) -> float | tuple[float, ...]:
    """A fill value: a number, or one number per channel (a tuple; one
    value is kept as a plain number)."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        return _number("fill_value", value)
    values = tuple(_number("fill_value", v) for v in np.ravel(value))
    if not values:
        raise DerotationError(
            "fill_value: expected a number or one number "
            "per channel; got an empty sequence"
        )
    return values[0] if len(values) == 1 else values


def _lines(name: str, value) -> float:
    try:
        v = float(value)
        ok = math.isfinite(v) and not isinstance(value, bool)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DerotationError(f"{name} must be a finite number of lines; got {value!r}")
    return v


def plane_matrix(tilt: float, orientation: float) -> np.ndarray:
    """2x2 map (row, col) from the rotation plane to the imaging plane.

    The rotation plane is tilted by ``tilt`` degrees about the in-image axis
    ``(row, col) = (cos o, sin o)`` for ``o = orientation`` degrees: lengths
    across that axis shrink by ``cos(tilt)``. ``A = R(o) diag(1, cos tilt)
    R(o)^T`` with ``R(o) = [[cos o, -sin o], [sin o, cos o]]``: the same
    (tilt, orientation) as the reference ``Rotator(rotation_plane_angle,
    rotation_plane_orientation)`` simulates.
    """
    t = np.deg2rad(float(tilt))
    o = np.deg2rad(float(orientation))
    r = np.array([[np.cos(o), -np.sin(o)], [np.sin(o), np.cos(o)]])
    return r @ np.diag([1.0, np.cos(t)]) @ r.T


class KernelArgs(NamedTuple):
    """What the compiled kernels take, made once from resolved parameters."""

    cr: float  # centre row
    cc: float  # centre col
    plane: np.ndarray  # (A00, A01, A10, A11, E00, E01, E10, E11)
    mode: int  # interpolation code
    fill: float
    lo: float  # the dtype's range (integer outputs are
    hi: float  # rounded and clipped to it)
    is_int: bool


@dataclasses.dataclass(frozen=True)
class DerotationParams:
    """Everything but the movie and its angles that decides a derotation.

    Parameters
    ----------
    center : (row, col) or None
        Centre of rotation in pixels, sub-pixel allowed; ``None`` is the
        reference's default ``(rows // 2, cols // 2)`` of the movie.
    interpolation : {"bilinear", "nearest", "cubic"}
        ``"cubic"`` is Catmull-Rom cubic convolution: it keeps the samples
        exactly and smooths less than bilinear, needs no prefilter (see
        :data:`napari_derotation.engine._kernels.CUBIC`); integer outputs
        are rounded and clipped to the dtype's range.
    fill_value : float or sequence of floats
        Value of pixels that no scanned line covered (NaN for float movies);
        one per channel for a movie with channels (each channel's own
        background), or one for all.
    plane_tilt, plane_orientation : float
        Degrees: the tilt of the rotation plane from the imaging plane, in
        [0, 90), and the orientation of its tilt axis (see
        :func:`plane_matrix`).
    plane_output : {"imaging", "rotation"}
        With a tilt, give the result in the imaging plane (default) or in
        the rotation plane (as the reference leaves it).
    angle_delay : float
        Lines (sub-line, may be negative) between the angle signal and the
        scan: line ``i`` is derotated with the recorded angle of line ``i -
        angle_delay`` (linear interpolation, ends held; see
        :func:`napari_derotation.frames.delay_angles`). Positive: the image
        lags the angle signal. ``find-center --delay`` estimates it.

    Raises
    ------
    DerotationError
        When made with a value that no movie could take. The centre inside
        the frame and a fill value the dtype holds are checked by
        :meth:`resolve`.
    """

    center: tuple[float, float] | None = None
    interpolation: str = "bilinear"
    fill_value: float | tuple[float, ...] = 0.0
    plane_tilt: float = 0.0
    plane_orientation: float = 0.0
    plane_output: str = "imaging"
    angle_delay: float = 0.0

    def __post_init__(self):
        put = object.__setattr__
        if self.center is not None:
            put(self, "center", _two_numbers(self.center))
        if self.interpolation not in INTERPOLATION_CODES:
            raise DerotationError(
                f"interpolation must be one of {sorted(INTERPOLATION_CODES)}; "
                f"got {self.interpolation!r}"
            )
        put(self, "fill_value", _fill(self.fill_value))
        tilt = _degrees("plane_tilt", self.plane_tilt)
        if not 0 <= tilt < 90:
            raise DerotationError(
                f"plane_tilt must be in [0, 90) degrees; got {tilt:g}"
            )
        put(self, "plane_tilt", tilt)
        put(
            self,
            "plane_orientation",
            _degrees("plane_orientation", self.plane_orientation),
        )
        if self.plane_output not in PLANE_OUTPUTS:
            raise DerotationError(
                f"plane_output must be one of {list(PLANE_OUTPUTS)}; got "
                f"{self.plane_output!r}"
            )
        put(self, "angle_delay", _lines("angle_delay", self.angle_delay))

    # ------------------------------------------------------------ building

    @classmethod
    def build(
        cls, params: DerotationParams | None = None, /, **given
    ) -> DerotationParams:
        """``params`` (default: all defaults) with every keyword that was
        given replacing its field: the one rule by which every entry point
        accepts both ``params=`` and the field keywords. A keyword is given
        when it is not None, so an explicit default applies too
        (``plane_tilt=0`` removes the tilt of ``params``)."""
        unknown = set(given) - set(FIELDS)
        if unknown:
            raise TypeError(
                f"unknown derotation parameters: {sorted(unknown)}; expected "
                f"some of {list(FIELDS)}"
            )
        if params is not None and not isinstance(params, cls):
            raise DerotationError(
                f"params must be a DerotationParams; got {type(params).__name__}"
            )
        base = params if params is not None else cls()
        changes = {k: v for k, v in given.items() if v is not None}
        return dataclasses.replace(base, **changes) if changes else base

    def replace(self, **changes) -> DerotationParams:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    # ----------------------------------------------------------- resolving

    def resolve(
        self, shape: Sequence[int], dtype, channels: int = 1
    ) -> DerotationParams:
        """These parameters for a movie of ``shape`` (its frames' rows and
        cols last), ``dtype`` and ``channels``: the default centre made
        explicit, the centre checked inside the frame, the fill values
        checked against the dtype (one per channel, or one for all). Raises
        :class:`DerotationError` naming what is wrong."""
        center = check_center(self.center, shape)
        fills = self.fills(channels)
        for f in fills:
            _check_fill(f, np.dtype(dtype))
        return (
            self if center == self.center else dataclasses.replace(self, center=center)
        )

    def fills(self, channels: int = 1) -> tuple[float, ...]:
        """The fill value of each of ``channels`` channels."""
        if not isinstance(self.fill_value, tuple):
            return (self.fill_value,) * int(channels)
        if len(self.fill_value) != int(channels):
            raise DerotationError(
                f"fill_value: {len(self.fill_value)} values for a movie of "
                f"{channels} channel(s); give one per channel or one for all"
            )
        return self.fill_value

    def without_delay(self) -> DerotationParams:
        """These parameters for angles that already have the delay applied
        (what a whole-movie entry point hands its chunks)."""
        if self.angle_delay == 0:
            return self
        return dataclasses.replace(self, angle_delay=0.0)

    def for_channel(self, channel: int) -> DerotationParams:
        """These parameters with channel ``channel``'s fill value."""
        if not isinstance(self.fill_value, tuple):
            return self
        return dataclasses.replace(self, fill_value=self.fill_value[int(channel)])

    @property
    def identity_plane(self) -> bool:
        """True when the plane leaves lines at angle 0 where they are."""
        return self.plane_output == "imaging" or self.plane_tilt == 0

    def plane(self) -> np.ndarray:
        """The kernels' plane matrices: ``A`` (rotation plane -> image) then
        ``E`` (output -> rotation plane), flattened."""
        a = plane_matrix(self.plane_tilt, self.plane_orientation)
        e = np.linalg.inv(a) if self.plane_output == "imaging" else np.eye(2)
        return np.concatenate([a.ravel(), e.ravel()])

    def kernel_args(self, dtype) -> KernelArgs:
        """The compiled kernels' arguments for a movie of ``dtype`` (the
        parameters must be resolved: the centre explicit)."""
        if self.center is None:
            raise DerotationError("resolve the parameters for a movie first")
        if isinstance(self.fill_value, tuple):
            raise DerotationError(
                "one fill value per channel: derotate each channel with "
                "params.for_channel(c)"
            )
        dt = np.dtype(dtype)
        if dt.kind in "ui":
            info = np.iinfo(dt)
            lo, hi, is_int = float(info.min), float(info.max), True
        else:
            lo, hi, is_int = -np.inf, np.inf, False
        return KernelArgs(
            self.center[0],
            self.center[1],
            self.plane(),
            INTERPOLATION_CODES[self.interpolation],
            self.fill_value,
            lo,
            hi,
            is_int,
        )

    # ----------------------------------------------------------- recording

    def to_record(self) -> dict:
        """The JSON form written in every record (and read by
        :meth:`from_record`)."""
        return {
            "center_row_col": None
            if self.center is None
            else [float(self.center[0]), float(self.center[1])],
            "interpolation": self.interpolation,
            "fill_value": list(self.fill_value)
            if isinstance(self.fill_value, tuple)
            else self.fill_value,
            "plane": {
                "tilt": self.plane_tilt,
                "orientation": self.plane_orientation,
                "output": self.plane_output,
            },
            "angle_delay": self.angle_delay,
        }

    @classmethod
    def from_record(cls, data: Mapping) -> DerotationParams:
        """Parameters from a record, a ``find-center --json`` result or a
        plain mapping of the field names.

        Understood keys: ``center_row_col`` or ``center``; ``interpolation``;
        ``fill_value``; ``plane: {tilt, orientation, output}`` or
        ``plane_tilt``/``plane_orientation``/``plane_output``;
        ``angle_delay`` (lines; what ``find-center --delay --json``
        prints too); and, from
        ``find-center --method ellipse --json``, ``tilt`` and
        ``orientation`` (applied when ``tilt_significant`` is not false).
        """
        if not isinstance(data, Mapping):
            raise DerotationError(
                f"parameters must be a JSON object; got {type(data).__name__}"
            )
        kw: dict = {}
        center = data.get("center_row_col", data.get("center"))
        if center is not None:
            kw["center"] = center
        for key in (
            "interpolation",
            "fill_value",
            "plane_tilt",
            "plane_orientation",
            "plane_output",
            "angle_delay",
        ):
            if data.get(key) is not None:
                kw[key] = data[key]
        plane = data.get("plane")
        if isinstance(plane, Mapping):
            for key in ("tilt", "orientation", "output"):
                if plane.get(key) is not None:
                    kw[f"plane_{key}"] = plane[key]
        elif (
            data.get("method") == "ellipse"
            and data.get("tilt") is not None
            and data.get("tilt_significant", True)
        ):
            kw["plane_tilt"] = data["tilt"]
            kw["plane_orientation"] = data.get("orientation", 0.0)
        fill = kw.get("fill_value")
        if isinstance(fill, str):
            kw["fill_value"] = _number("fill_value", fill)
        elif isinstance(fill, list):
            kw["fill_value"] = tuple(_number("fill_value", v) for v in fill)
        return cls(**kw)

    @classmethod
    def from_json(cls, path) -> DerotationParams:
        """Parameters from a JSON file (see :meth:`from_record`)."""
        path = Path(path)
        try:
            text = path.read_text()
            if not text.strip():
                raise DerotationError(
                    f"parameters file {path} is empty; it holds what "
                    f"find-center --json prints (or an output's record)"
                )
            data = json.loads(text)
        except FileNotFoundError:
            raise DerotationError(f"parameters file not found: {path}") from None
        except RecursionError:
            raise DerotationError(
                f"cannot read parameters from {path.name}: nested too deeply"
            ) from None
        except DerotationError:
            raise
        except (OSError, ValueError) as exc:
            raise DerotationError(
                f"cannot read parameters from {path.name}: {exc}"
            ) from None
        try:
            return cls.from_record(data)
        except DerotationError as exc:
            raise DerotationError(f"{path.name}: {exc}") from None


def _check_fill(fill: float, dtype: np.dtype) -> None:
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        if not math.isfinite(fill):
            raise DerotationError(
                f"fill_value {fill} cannot be stored in a {dtype} movie; use a "
                f"number in [{info.min}, {info.max}] or a float movie"
            )
        if not info.min <= fill <= info.max:
            raise DerotationError(
                f"fill_value {fill:g} is outside the range of the movie's "
                f"dtype {dtype} [{info.min}, {info.max}]"
            )
