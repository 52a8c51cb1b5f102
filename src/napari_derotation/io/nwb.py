"""NWB output: the derotated movie in a Neurodata Without Borders file that
the NWB Inspector (what DANDI runs) accepts.

The file holds, validated by ``pynwb``:

- the session's metadata (experimenter, lab, institution, keywords...) and
  its subject, from a metadata YAML laid out as neuroconv's
  (:mod:`napari_derotation.io.nwb_metadata`); an NWB output without a
  subject is refused. The session starts at the YAML's
  ``session_start_time``, else when ScanImage started the acquisition, else
  now;
- ``processing/ophys/TwoPhotonSeriesDerotated``: the derotated movie (one
  series per plane and channel when there are several), each with its imaging
  plane (the YAML's ``Ophys`` device, plane, indicator and optical channels)
  and the frame rate or, where irregular, the frame timestamps. NWB orders
  an image series' axes ``(frames, x, y)``: frames are stored transposed from
  the movie's ``(rows, cols)``, so ``x`` is the column index. Its
  ``comments`` hold the run's whole JSON record;
- ``acquisition/TwoPhotonSeries``: the raw movie as a link to its file(s)
  (``format="external"``, paths relative to the NWB file), or nothing with
  ``raw="omit"``;
- ``processing/ophys/rotation_angle``: the per-line angle (degrees), with
  line timestamps when the line period is known, else the nominal line rate;
- ``processing/ophys/derotation_parameters``: one row of scalars: the
  centre of rotation, the plane tilt and orientation, interpolation, fill
  value, the software version and the input's checksum.

``pynwb`` is imported only when a ``.nwb`` output is asked for (the ``nwb``
extra); without it a :class:`DerotationError` says what to install. The file
is written under a temporary name and renamed when complete; a full disk
(before: the free space is checked; or during the write) is one
:class:`DerotationError` and leaves no file.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import json
import os
import re
import shutil
import sys
import uuid
from pathlib import Path

import numpy as np

from ..errors import DerotationError
from .atomic import _json_default, atomic_path, write_error
from .nwb_metadata import nwb_metadata, scanimage_start_time

__all__ = ["NWBWriter", "pynwb_module"]

#: Frames per HDF5 chunk of the derotated series (at most).
CHUNK_FRAMES = 64
#: Room kept free beyond the movie's bytes (the file's metadata, angles).
MARGIN_BYTES = 4 << 20


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
    X)`` (or ``(n, Y, X)``) chunks. ``nwb_metadata`` (a YAML path, a mapping
    in its layout or an :class:`~.nwb_metadata.NWBMetadata`) must give the
    subject. ``frame_rate`` (Hz; time points per second) is required unless
    ``frame_timestamps`` are given (or the metadata's imaging rate).
    ``angles_per_line`` (the angles used, one per scanned line) and
    ``record`` (the run's JSON record) go into the ``ophys`` module.
    """

    def __init__(
        self,
        path,
        shape,
        dtype,
        *,
        axes=None,
        record=None,
        overwrite=False,
        frame_rate=None,
        frame_timestamps=None,
        line_period=None,
        angles_per_line=None,
        raw="link",
        raw_path=None,
        chunk_frames=None,
        **options,
    ):
        self.pynwb = pynwb_module()
        self.meta = nwb_metadata(options.get("nwb_metadata"))
        self.path = Path(path)
        shape = tuple(int(s) for s in shape)
        self.shape5 = (shape[0], 1, 1, *shape[1:]) if len(shape) == 3 else shape
        self.dtype = np.dtype(dtype).newbyteorder("=")
        self.record = record or {}
        self.overwrite = overwrite
        if raw not in ("link", "omit"):
            raise DerotationError(f"raw must be 'link' or 'omit'; got {raw!r}")
        self.raw, self.raw_path = raw, raw_path
        rates = {
            p["imaging_rate"] for p in self.meta.imaging_planes if "imaging_rate" in p
        }
        if frame_rate is None and frame_timestamps is None and len(rates) == 1:
            frame_rate = rates.pop()
            rates = set()
        self.timing = _frame_timing(self.shape5[0], frame_rate, frame_timestamps)
        self.rate = self.timing.get("rate") or _mean_rate(self.timing)
        for r in rates:
            if not np.isclose(r, self.rate, rtol=1e-6):
                raise DerotationError(
                    f"{self.meta.source}: Ophys.ImagingPlane imaging_rate "
                    f"{r:g} Hz disagrees with the movie's {self.rate:g} Hz "
                    f"(--frame-rate or its metadata); correct or remove it"
                )
        self.line_period = line_period
        self.angles = (
            None if angles_per_line is None else np.asarray(angles_per_line, np.float64)
        )
        self.chunk_frames = int(min(chunk_frames or CHUNK_FRAMES, self.shape5[0]))
        self.written = 0
        self._datasets: dict = {}
        self._ctx = self._io = None
        self._broken = None

    def __enter__(self):
        self._check_space()
        self._ctx = atomic_path(self.path, overwrite=self.overwrite, suffix=".nwb")
        tmp = self._ctx.__enter__()
        try:
            nwb, self._datasets = self._build()
            self._io = self.pynwb.NWBHDF5IO(str(tmp), "w")
            self._io.write(nwb)
            self._datasets = {k: v.dataset for k, v in self._datasets.items()}
        except BaseException as exc:
            error = self._abandon(exc)
            self._ctx.__exit__(type(error), error, error.__traceback__)
            if error is exc:
                raise
            raise error from None
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
                f"got {a.shape}"
            )
        n = a.shape[0]
        if self.written + n > self.shape5[0]:
            raise DerotationError(
                f"{self.path.name}: {self.written + n} time points written; "
                f"expected {self.shape5[0]}"
            )
        if self._broken is not None:
            raise self._broken
        try:
            for (z, c), ds in self._datasets.items():
                ds[self.written : self.written + n] = np.swapaxes(
                    a[:, z, c], 1, 2
                ).astype(self.dtype, copy=False)
        except Exception as exc:
            self._broken = _h5_error(exc, self.path)
            raise self._broken from None
        self.written += n

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and self._broken is None:
            error = self._close_io()
            if error is None and self.written != self.shape5[0]:
                error = DerotationError(
                    f"{self.path.name}: wrote {self.written} of "
                    f"{self.shape5[0]} time points"
                )
        else:
            error = self._abandon(exc if exc is not None else self._broken)
        if exc_type is not None:
            self._ctx.__exit__(exc_type, exc, tb)
            return False
        if error is not None:
            self._ctx.__exit__(type(error), error, error.__traceback__)
            raise error
        return self._ctx.__exit__(None, None, None)

    # ------------------------------------------------------------ closing
    def _check_space(self) -> None:
        """Refuse at once a file the disk cannot hold (its frames are
        stored uncompressed: their bytes are the file's size)."""
        folder = self.path.parent
        need = int(np.prod(self.shape5)) * self.dtype.itemsize + MARGIN_BYTES
        if self.angles is not None:
            need += 2 * self.angles.size * 8
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            return
        if self.overwrite and self.path.is_file():
            free += self.path.stat().st_size
        if free < need:
            raise DerotationError(
                f"cannot write {self.path}: it needs about {_mb(need)} and "
                f"{_mb(free)} are free on the device holding {folder}; free "
                f"some space or choose another folder"
            )

    def _close_io(self):
        """Flush and close the file; the error (as a DerotationError) if
        the disk refused the data, after the file is abandoned cleanly."""
        if self._io is None:
            return None
        try:
            self._io._file.flush()
            self._datasets = {}
            self._io.close()
        except Exception as exc:  # a full disk: the file is discarded
            return self._abandon(exc)
        self._io = None
        return None

    def _abandon(self, exc):
        """Close a file that is being discarded, without letting HDF5 crash.

        After HDF5 failed to flush (a full disk), closing its objects later
        -- by the garbage collector or at exit -- can crash the process. So
        the file's descriptor is pointed at the null device (the file is
        deleted anyway: what HDF5 still writes goes nowhere), then every
        object is closed now, in order. Returns ``exc`` as the error to
        raise (an OS error as one line)."""
        error = _h5_error(exc, self.path) if isinstance(exc, Exception) else exc
        io, self._io = self._io, None
        self._datasets = {}
        if io is None:
            return error
        h5 = getattr(io, "_file", None)
        with contextlib.suppress(Exception):
            if h5 is not None and h5.id.valid:
                fd = h5.id.get_vfd_handle()
                if isinstance(fd, int) and fd > 2:
                    sink = os.open(os.devnull, os.O_WRONLY)
                    try:
                        os.dup2(sink, fd)
                    finally:
                        os.close(sink)
        hook = sys.unraisablehook
        sys.unraisablehook = lambda _unraisable: None  # h5py's dealloc notes
        try:
            with contextlib.suppress(Exception):
                io.close()
            del io, h5
            gc.collect()
        finally:
            sys.unraisablehook = hook
        return error

    # ------------------------------------------------------------ content
    def _build(self):
        """The NWBFile, and the empty derotated datasets to fill."""
        pynwb = self.pynwb
        t, nz, nc, rows, cols = self.shape5
        meta = self.meta
        nwb = pynwb.NWBFile(**self._file_fields())
        nwb.subject = pynwb.file.Subject(**meta.subject)
        planes = self._planes(nwb)
        series = dict(meta.two_photon_series[0]) if meta.two_photon_series else {}
        dimension = series.pop("dimension", None)
        if dimension is not None and [int(d) for d in dimension] != [cols, rows]:
            raise DerotationError(
                f"{meta.source}: Ophys.TwoPhotonSeries dimension "
                f"{[int(d) for d in dimension]}; the movie's frames are "
                f"[{cols}, {rows}] (x = columns, y = rows)"
            )
        optics = {
            k: series[k]
            for k in ("field_of_view", "pmt_gain", "scan_line_rate")
            if k in series
        }
        if "scan_line_rate" not in optics and self.line_period:
            optics["scan_line_rate"] = 1.0 / float(self.line_period)
        ophys = nwb.create_processing_module(
            name="ophys",
            description="the derotated two-photon movie, the "
            "rotation angle of every scanned line "
            "and the derotation's parameters "
            "(napari-derotation)",
        )
        record_text = json.dumps(self.record, default=_json_default)
        datasets = {}
        for z in range(nz):
            for c in range(nc):
                data = self._empty((t, cols, rows))
                suffix = "" if nz * nc == 1 else f"Plane{z}Channel{c}"
                ophys.add(
                    pynwb.ophys.TwoPhotonSeries(
                        name=f"TwoPhotonSeriesDerotated{suffix}",
                        data=data,
                        imaging_plane=planes[z],
                        unit=series.get("unit", "n.a."),
                        description=f"derotated movie, plane {z}, channel {c}; "
                        "axes (frames, x=cols, y=rows)",
                        comments="napari-derotation record (JSON): " + record_text,
                        **optics,
                        **self.timing,
                    )
                )
                datasets[(z, c)] = data
        self._add_raw(nwb, planes[0], rows, cols, series, optics)
        self._add_derotation(ophys)
        return nwb, datasets

    def _file_fields(self) -> dict:
        """NWBFile's fields: the metadata's, with defaults for the rest."""
        fields = dict(self.meta.nwbfile)
        rec_in = self.record.get("input") or {}
        name = Path(rec_in["path"]).name if rec_in.get("path") else "a movie"
        fields.setdefault(
            "session_description",
            f"two-photon movie {name}, derotated by napari-derotation",
        )
        fields.setdefault("identifier", str(uuid.uuid4()))
        if "session_start_time" not in fields:
            start = (
                None if self.raw_path is None else scanimage_start_time(self.raw_path)
            )
            fields["session_start_time"] = start or datetime.datetime.now(datetime.UTC)
        version = str(self.record.get("version", ""))
        fields.update(
            source_script="napari-derotation " + version,
            source_script_file_name="napari-derotation",
            was_generated_by=[["napari-derotation", version]],
        )
        return fields

    def _planes(self, nwb) -> dict:
        """One imaging plane per plane of the movie, from the metadata's
        ``Ophys`` (one entry for all planes, or one per plane)."""
        from pynwb.ophys import OpticalChannel

        t, nz, nc, rows, cols = self.shape5
        meta = self.meta
        given = meta.imaging_planes
        if len(given) not in (0, 1, nz):
            raise DerotationError(
                f"{meta.source}: Ophys.ImagingPlane: {len(given)} entries; "
                f"the movie has {nz} plane{'s' * (nz > 1)} (give 1 or {nz})"
            )
        devices = {}
        for d in meta.devices or [
            {"name": "Microscope", "description": "two-photon microscope"}
        ]:
            d = {"name": "Microscope", "description": "two-photon microscope", **d}
            devices[d["name"]] = _device(nwb, d)
        first = next(iter(devices.values()))
        planes = {}
        for z in range(nz):
            p = dict(given[z if len(given) == nz else 0]) if given else {}
            p.pop("imaging_rate", None)
            device = p.pop("device", None)
            if device is not None and device not in devices:
                raise DerotationError(
                    f"{meta.source}: Ophys.ImagingPlane device {device!r} is "
                    f"not one of the devices given ({', '.join(devices)})"
                )
            chans = p.pop("optical_channel", [])
            if len(chans) not in (0, nc):
                raise DerotationError(
                    f"{meta.source}: Ophys.ImagingPlane optical_channel: "
                    f"{len(chans)} entries; the movie has {nc} channel"
                    f"{'s' * (nc > 1)}"
                )
            channels = [
                OpticalChannel(
                    **{
                        "name": f"OpticalChannel{c}" if nc > 1 else "OpticalChannel",
                        "description": f"channel {c}",
                        "emission_lambda": float("nan"),
                        **(chans[c] if chans else {}),
                    }
                )
                for c in range(nc)
            ]
            name = p.pop("name", "ImagingPlane")
            if nz > 1 and len(given) != nz:
                name = f"{name}{z}"
            planes[z] = nwb.create_imaging_plane(
                name=name,
                optical_channel=channels,
                imaging_rate=float(self.rate),
                device=devices[device] if device is not None else first,
                **{
                    "description": f"plane {z} of {nz}",
                    "excitation_lambda": float("nan"),
                    "indicator": "unknown",
                    "location": "unknown",
                    **p,
                },
            )
        return planes

    def _empty(self, shape):
        from hdmf.backends.hdf5 import H5DataIO

        return H5DataIO(
            shape=shape, dtype=self.dtype, chunks=(self.chunk_frames, *shape[1:])
        )

    def _raw_files(self) -> tuple[list[str], list[int]]:
        """The raw movie's files, relative to the NWB file's folder, and
        the time point each starts at; none for a Zarr store."""
        if self.raw == "omit" or not self.raw_path:
            return [], []
        from .sources import TIFF_SUFFIXES, movie_files

        try:
            files = movie_files(self.raw_path)
        except DerotationError:
            return [], []
        if any(f.suffix.lower() not in TIFF_SUFFIXES for f in files):
            return [], []
        starts, at = [], 0
        per_t = self.shape5[1] * self.shape5[2]
        if len(files) > 1:
            import tifffile

            for f in files:
                starts.append(at)
                with tifffile.TiffFile(f) as tif:
                    at += len(tif.pages) // per_t
        else:
            starts = [0]
        folder = self.path.parent.resolve()
        names = []
        for f in files:
            try:
                names.append(Path(os.path.relpath(f.resolve(), folder)).as_posix())
            except ValueError:  # another drive (Windows)
                names.append(str(f.resolve()))
        return names, starts

    def _add_raw(self, nwb, plane, rows, cols, series, optics) -> None:
        files, starts = self._raw_files()
        if not files:
            return
        nz, nc = self.shape5[1:3]
        order = (
            ""
            if nz * nc == 1
            else (
                f"; its pages interleave {nz} plane(s) and {nc} channel(s) "
                "(time, then plane, then channel)"
            )
        )
        nwb.add_acquisition(
            self.pynwb.ophys.TwoPhotonSeries(
                name=series.get("name", "TwoPhotonSeries"),
                imaging_plane=plane,
                unit=series.get("unit", "n.a."),
                external_file=files,
                format="external",
                starting_frame=starts,
                dimension=[cols, rows],
                num_samples=self.shape5[0],
                description=series.get(
                    "description", "the raw movie, linked (not copied)"
                )
                + order,
                **optics,
                **self.timing,
            )
        )

    def _add_derotation(self, module) -> None:
        from hdmf.common import DynamicTable

        if self.angles is not None and self.angles.size:
            module.add(
                self.pynwb.TimeSeries(
                    name="rotation_angle",
                    data=self.angles,
                    unit="degrees",
                    description="rotation angle of each scanned line used to "
                    "derotate (the reference's sign)",
                    **self._line_timing(),
                )
            )
        rec = self.record
        center = rec.get("center_row_col") or [np.nan, np.nan]
        plane = rec.get("plane") or {}
        fill = rec.get("fill_value", 0.0)
        fill = fill[0] if isinstance(fill, list | tuple) and len(fill) == 1 else fill
        values = {
            "center_row": (float(center[0]), "centre of rotation, row (px)"),
            "center_col": (float(center[1]), "centre of rotation, col (px)"),
            "plane_tilt": (
                float(plane.get("tilt", 0.0)),
                "tilt of the rotation plane (degrees)",
            ),
            "plane_orientation": (
                float(plane.get("orientation", 0.0)),
                "orientation of the tilt axis (degrees)",
            ),
            "plane_output": (
                str(plane.get("output", "imaging")),
                "plane the result is resampled in",
            ),
            "interpolation": (
                str(rec.get("interpolation", "")) or "n.a.",
                "interpolation",
            ),
            "fill_value": (
                _fill_text(fill),
                "value of pixels no line covered (one per channel when they differ)",
            ),
            "software_version": (
                str(rec.get("version", "")) or "n.a.",
                "napari-derotation version",
            ),
            "input_sha256": (
                str((rec.get("input") or {}).get("sha256", "")) or "n.a.",
                "SHA-256 of the raw movie",
            ),
        }
        table = DynamicTable(
            name="derotation_parameters",
            description="derotation parameters (one row; the whole record is "
            "the derotated series' comments, as JSON)",
        )
        for name, (_, doc) in values.items():
            table.add_column(name=name, description=doc)
        table.add_row(**{k: v for k, (v, _) in values.items()})
        module.add(table)

    def _line_timing(self) -> dict:
        """Timestamps of every line when the line period is known, else the
        nominal rate (lines evenly spread over each frame)."""
        t, nz, _, rows, _ = self.shape5
        n = self.angles.size
        rate = self.rate
        if self.line_period:
            if "timestamps" in self.timing:
                stamps = self.timing["timestamps"]
            else:
                stamps = self.timing["starting_time"] + np.arange(t) / rate
            # planes of a volume are scanned one after another
            frames = (
                np.asarray(stamps, np.float64)[:, None] + np.arange(nz) / (rate * nz)
            ).ravel()
            line_t = (
                frames[:, None] + np.arange(rows) * float(self.line_period)
            ).ravel()
            if line_t.size >= n and np.all(np.diff(line_t[:n]) > 0):
                return _regular_or_stamps(line_t[:n])
        return {
            "rate": float(rate) * nz * rows,
            "starting_time": float(self.timing.get("starting_time", 0.0)),
        }


def _device(nwb, d: dict):
    """A device; its maker and model as a DeviceModel where pynwb has them
    (NWB 2.9), else on the device."""
    model = {
        k: d.pop(k) for k in ("manufacturer", "model_number", "model_name") if k in d
    }
    if model and hasattr(nwb, "create_device_model"):
        name = model.pop("model_name", None) or f"{d['name']}Model"
        d["model"] = nwb.create_device_model(
            name=name, description=f"model of {d['name']}", **model
        )
    else:
        d.update(model)
    return nwb.create_device(**d)


def _fill_text(fill):
    if isinstance(fill, list | tuple):
        return json.dumps([float(v) for v in fill])[1:-1]
    return float(fill)


def _frame_timing(n, frame_rate, frame_timestamps) -> dict:
    if frame_timestamps is not None:
        ts = np.asarray(frame_timestamps, np.float64).ravel()
        if (
            ts.size != n
            or (n > 1 and np.any(np.diff(ts) <= 0))
            or not np.all(np.isfinite(ts))
        ):
            raise DerotationError(
                f"frame timestamps: expected {n} increasing values; got {ts.size}"
            )
        return _regular_or_stamps(ts)
    if frame_rate is None:
        raise DerotationError(
            "NWB output needs the frame rate: give --frame-rate HZ (or "
            "frame_rate in the config)"
        )
    if not (np.isfinite(float(frame_rate)) and float(frame_rate) > 0):
        raise DerotationError(f"frame rate must be > 0; got {frame_rate}")
    return {"rate": float(frame_rate), "starting_time": 0.0}


def _regular_or_stamps(ts) -> dict:
    """A rate and a start for evenly spaced times (to the nanosecond, as
    the NWB Inspector asks), else the times themselves."""
    if ts.size > 2:
        steps = np.unique(np.round(np.diff(ts), 9))
        if steps.size == 1 and steps[0] > 0:
            return {"rate": float(1.0 / steps[0]), "starting_time": float(ts[0])}
    return {"timestamps": ts}


def _mean_rate(timing) -> float:
    ts = timing["timestamps"]
    return 1.0 / float(np.diff(ts).mean()) if ts.size > 1 else 1.0


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


_H5_ERRNO = re.compile(r"errno = (\d+)")


def _h5_error(exc, path):
    """``exc`` as the error to raise: an OS error met by HDF5 (an
    ``OSError``, or a ``RuntimeError`` naming an errno) as one
    :class:`DerotationError` line; any other error as it is."""
    if isinstance(exc, DerotationError):
        return exc
    code = getattr(exc, "errno", None)
    if code is None and isinstance(exc, RuntimeError | OSError):
        m = _H5_ERRNO.search(str(exc))
        code = int(m.group(1)) if m else None
    if code is not None:
        return write_error(OSError(code, os.strerror(code)), path) or exc
    return exc
