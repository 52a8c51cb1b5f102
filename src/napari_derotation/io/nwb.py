"""NWB output: the derotated movie in a Neurodata Without Borders file.

What labs share on DANDI. The file holds, validated by ``pynwb``:

- ``processing/ophys/TwoPhotonSeriesDerotated``: the derotated movie (one
  series per plane and channel when there are several), each with its imaging
  plane and the frame rate or, where known, the frame timestamps. NWB orders
  an image series' axes ``(frames, x, y)``: frames are stored transposed from
  the movie's ``(rows, cols)``, so ``x`` is the column index;
- ``acquisition/TwoPhotonSeries``: the raw movie as a link to its file
  (``format="external"``), or nothing with ``raw="omit"``;
- ``processing/derotation/rotation_angle``: the per-line angle (degrees), with
  line timestamps when the line period is known, else the nominal line rate;
- ``processing/derotation/parameters``: the centre of rotation, the plane
  tilt and orientation, interpolation, fill value, and the whole JSON record.

``pynwb`` is imported only when a ``.nwb`` output is asked for (the ``nwb``
extra); without it a :class:`DerotationError` says what to install. The file
is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import datetime
import json
import uuid
from pathlib import Path

import numpy as np

from ..errors import DerotationError
from .atomic import _json_default, atomic_path

__all__ = ["NWBWriter", "pynwb_module"]

#: Frames per HDF5 chunk of the derotated series (at most).
CHUNK_FRAMES = 64


def pynwb_module():
    """``pynwb``, or a :class:`DerotationError` naming the extra to install."""
    try:
        import pynwb
    except ImportError:
        raise DerotationError(
            "writing .nwb needs pynwb: pip install 'napari-derotation[nwb]'"
        ) from None
    return pynwb


class NWBWriter:
    """Write a derotated movie into an NWB file chunk by chunk, atomically.

    The writer interface of :func:`napari_derotation.io.outputs.open_writer`:
    a context manager whose :meth:`write` takes consecutive ``(n, Z, C, Y,
    X)`` (or ``(n, Y, X)``) chunks. ``frame_rate`` (Hz; time points per
    second) is required unless ``frame_timestamps`` are given.
    ``angles_per_line`` (the angles used, one per scanned line) and
    ``record`` (the run's JSON record) go into the ``derotation`` module.
    """

    def __init__(self, path, shape, dtype, *, axes=None, record=None,
                 overwrite=False, frame_rate=None, frame_timestamps=None,
                 line_period=None, angles_per_line=None, raw="link",
                 raw_path=None, chunk_frames=None, **_ignored):
        self.pynwb = pynwb_module()
        self.path = Path(path)
        shape = tuple(int(s) for s in shape)
        self.shape5 = (shape[0], 1, 1, *shape[1:]) if len(shape) == 3 else shape
        self.dtype = np.dtype(dtype).newbyteorder("=")
        self.record = record or {}
        self.overwrite = overwrite
        if raw not in ("link", "omit"):
            raise DerotationError(f"raw must be 'link' or 'omit'; got {raw!r}")
        self.raw, self.raw_path = raw, raw_path
        self.timing = _frame_timing(self.shape5[0], frame_rate,
                                    frame_timestamps)
        self.line_period = line_period
        self.angles = None if angles_per_line is None else np.asarray(
            angles_per_line, np.float64)
        self.chunk_frames = int(min(chunk_frames or CHUNK_FRAMES,
                                    self.shape5[0]))
        self.written = 0
        self._datasets: dict = {}
        self._ctx = self._io = None

    def __enter__(self):
        self._ctx = atomic_path(self.path, overwrite=self.overwrite,
                                suffix=".nwb")
        tmp = self._ctx.__enter__()
        try:
            nwb, self._datasets = self._build()
            self._io = self.pynwb.NWBHDF5IO(str(tmp), "w")
            self._io.write(nwb)
            self._datasets = {k: v.dataset for k, v in self._datasets.items()}
        except BaseException as exc:
            self._close_io()
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def write(self, chunk) -> None:
        """Append ``chunk`` after the time points already written."""
        a = np.asarray(chunk)
        if a.ndim == 2:
            a = a[np.newaxis]
        if a.ndim == 3:
            a = a[:, np.newaxis, np.newaxis]
        if a.shape[1:] != tuple(self.shape5[1:]):
            raise DerotationError(
                f"chunk must be (n, {', '.join(map(str, self.shape5[1:]))}); "
                f"got {a.shape}")
        n = a.shape[0]
        if self.written + n > self.shape5[0]:
            raise DerotationError(
                f"{self.path.name}: {self.written + n} time points written; "
                f"expected {self.shape5[0]}")
        for (z, c), ds in self._datasets.items():
            ds[self.written: self.written + n] = np.swapaxes(
                a[:, z, c], 1, 2).astype(self.dtype, copy=False)
        self.written += n

    def __exit__(self, exc_type, exc, tb):
        error = self._close_io()
        if exc_type is None and error is None and \
                self.written != self.shape5[0]:
            error = DerotationError(
                f"{self.path.name}: wrote {self.written} of {self.shape5[0]} "
                f"time points")
        if exc_type is not None:
            self._ctx.__exit__(exc_type, exc, tb)
            return False
        if error is not None:
            self._ctx.__exit__(type(error), error, error.__traceback__)
            raise error
        return self._ctx.__exit__(None, None, None)

    def _close_io(self):
        if self._io is None:
            return None
        try:
            self._io.close()
        except Exception as exc:       # a full disk: the file is discarded
            return exc
        finally:
            self._io = None
        return None

    # ------------------------------------------------------------ content
    def _build(self):
        """The NWBFile, and the empty derotated datasets to fill."""
        from pynwb.ophys import OpticalChannel

        pynwb = self.pynwb
        t, nz, nc, rows, cols = self.shape5
        rec_in = self.record.get("input") or {}
        nwb = pynwb.NWBFile(
            session_description="derotated by napari-derotation from "
                                f"{rec_in.get('path') or 'a movie'}",
            identifier=str(uuid.uuid4()),
            session_start_time=datetime.datetime.now(datetime.UTC),
            source_script="napari-derotation " + str(
                self.record.get("version", "")),
            source_script_file_name="napari-derotation")
        device = nwb.create_device(name="Microscope",
                                   description="two-photon microscope")
        rate = self.timing.get("rate") or _mean_rate(self.timing)
        planes = {}
        for z in range(nz):
            channels = [OpticalChannel(name=f"OpticalChannel{c}",
                                       description=f"channel {c}",
                                       emission_lambda=float("nan"))
                        for c in range(nc)]
            planes[z] = nwb.create_imaging_plane(
                name="ImagingPlane" if nz == 1 else f"ImagingPlane{z}",
                optical_channel=channels, imaging_rate=float(rate),
                description=f"plane {z} of {nz}", device=device,
                excitation_lambda=float("nan"), indicator="unknown",
                location="unknown")
        ophys = nwb.create_processing_module(
            name="ophys", description="derotated two-photon movie")
        datasets = {}
        for z in range(nz):
            for c in range(nc):
                data = self._empty((t, cols, rows))
                suffix = "" if nz * nc == 1 else f"Plane{z}Channel{c}"
                ophys.add(pynwb.ophys.TwoPhotonSeries(
                    name=f"TwoPhotonSeriesDerotated{suffix}", data=data,
                    imaging_plane=planes[z], unit="n.a.",
                    description=f"derotated movie, plane {z}, channel {c}; "
                                "axes (frames, x=cols, y=rows)",
                    **self.timing))
                datasets[(z, c)] = data
        self._add_raw(nwb, planes[0], rows, cols)
        self._add_derotation(nwb)
        return nwb, datasets

    def _empty(self, shape):
        from hdmf.backends.hdf5 import H5DataIO

        return H5DataIO(shape=shape, dtype=self.dtype,
                        chunks=(self.chunk_frames, *shape[1:]))

    def _add_raw(self, nwb, plane, rows, cols) -> None:
        if self.raw == "omit" or not self.raw_path:
            return
        nwb.add_acquisition(self.pynwb.ophys.TwoPhotonSeries(
            name="TwoPhotonSeries", imaging_plane=plane, unit="n.a.",
            external_file=[str(Path(self.raw_path).resolve())],
            format="external", starting_frame=[0], dimension=[cols, rows],
            num_samples=self.shape5[0],
            description="the raw movie, linked (not copied)", **self.timing))

    def _add_derotation(self, nwb) -> None:
        from hdmf.common import DynamicTable

        module = nwb.create_processing_module(
            name="derotation", description="napari-derotation: the per-line "
                                           "angles and parameters used")
        if self.angles is not None and self.angles.size:
            module.add(self.pynwb.TimeSeries(
                name="rotation_angle", data=self.angles, unit="degrees",
                description="rotation angle of each scanned line (the "
                            "reference's sign)", **self._line_timing()))
        rec = self.record
        center = rec.get("center_row_col") or [np.nan, np.nan]
        plane = rec.get("plane") or {}
        table = DynamicTable(name="parameters",
                             description="derotation parameters (one row)")
        values = {
            "center_row": (float(center[0]), "centre of rotation, row (px)"),
            "center_col": (float(center[1]), "centre of rotation, col (px)"),
            "plane_tilt": (float(plane.get("tilt", 0.0)),
                           "tilt of the rotation plane (degrees)"),
            "plane_orientation": (float(plane.get("orientation", 0.0)),
                                  "orientation of the tilt axis (degrees)"),
            "plane_output": (str(plane.get("output", "imaging")),
                             "plane the result is resampled in"),
            "interpolation": (str(rec.get("interpolation", "")),
                              "interpolation"),
            "fill_value": (float(rec.get("fill_value", 0.0)),
                           "value of pixels no line covered"),
            "record": (json.dumps(rec, default=_json_default),
                       "the full JSON record of the run"),
        }
        for name, (_, doc) in values.items():
            table.add_column(name=name, description=doc)
        table.add_row(**{k: v for k, (v, _) in values.items()})
        module.add(table)

    def _line_timing(self) -> dict:
        """Timestamps of every line when the line period is known, else the
        nominal rate (lines evenly spread over each frame)."""
        t, nz, _, rows, _ = self.shape5
        n = self.angles.size
        rate = self.timing.get("rate") or _mean_rate(self.timing)
        if self.line_period:
            stamps = self.timing.get("timestamps")
            if stamps is None:
                stamps = np.arange(t) / rate
            # planes of a volume are scanned one after another
            frames = (np.asarray(stamps, np.float64)[:, None]
                      + np.arange(nz) / (rate * nz)).ravel()
            line_t = (frames[:, None] + np.arange(rows) * float(
                self.line_period)).ravel()
            if line_t.size >= n and np.all(np.diff(line_t[:n]) > 0):
                return {"timestamps": line_t[:n]}
        return {"rate": float(rate) * nz * rows, "starting_time": 0.0}


def _frame_timing(n, frame_rate, frame_timestamps) -> dict:
    if frame_timestamps is not None:
        ts = np.asarray(frame_timestamps, np.float64).ravel()
        if ts.size != n or (n > 1 and np.any(np.diff(ts) <= 0)):
            raise DerotationError(
                f"frame timestamps: expected {n} increasing values; got "
                f"{ts.size}")
        return {"timestamps": ts}
    if frame_rate is None:
        raise DerotationError(
            "NWB output needs the frame rate: give --frame-rate HZ (or "
            "frame_rate in the config)")
    if not float(frame_rate) > 0:
        raise DerotationError(f"frame rate must be > 0; got {frame_rate}")
    return {"rate": float(frame_rate), "starting_time": 0.0}


def _mean_rate(timing) -> float:
    ts = timing["timestamps"]
    return 1.0 / float(np.diff(ts).mean()) if ts.size > 1 else 1.0
