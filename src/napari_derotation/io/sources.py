"""Movies of any rig: channels, planes and file sequences, read lazily.

:func:`open_movie` opens one TIFF, a folder of TIFFs, a glob or a list of
files as one :class:`MovieSource` with axes T, optional Z (planes), optional
C (channels), Y, X. Every read returns ``(n, Z, C, Y, X)`` time points
straight from disk, so memory is bounded by the chunk, not the movie.

Where the axes come from, first match wins:

* ImageJ hyperstack or OME-TIFF metadata (tifffile's ``series.axes``);
* ScanImage metadata: channels saved (``SI.hChannels.channelSave``), number
  of slices (``SI.hStackManager.numSlices`` when a stack is on), line period
  and frame rate (``SI.hRoiManager``), frame timestamps
  (``frameTimestamps_sec`` of each page's description);
* otherwise the user's ``channels=`` / ``planes=`` for interleaved pages.

Pages are in scan order: time, then plane, then channel (page
``(t * Z + z) * C + c``). All channels of a line are acquired at once and
planes one after another, so the per-line angle of ``(t, z, row)`` is entry
``(t * Z + z) * rows + row`` of the angles, shared by every channel.

A sequence (ScanImage writes ``name_00001.tif``, ``name_00002.tif``, ...)
is taken in natural sort order; its pages continue from file to file (a
file may end inside a time point), and so do the angles.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

import numpy as np
import tifffile

from ..errors import DerotationError
from .tiff import _tiff_problems, check_one_series

__all__ = ["open_movie", "MovieSource", "natural_key", "movie_files",
           "TIFF_SUFFIXES", "SOURCE_OPENERS"]

TIFF_SUFFIXES = (".tif", ".tiff")

#: Other movie formats by suffix (e.g. ``".zarr"``): ``opener(path, *,
#: channels, planes)`` returning an object with MovieSource's interface.
SOURCE_OPENERS: dict = {}


def natural_key(path) -> list:
    """Sort key: ``name_2.tif`` before ``name_10.tif``."""
    parts = re.split(r"(\d+)", str(path))
    return [int(p) if p.isdigit() else p.lower() for p in parts]


def movie_files(path_or_paths) -> list[Path]:
    """The files of one acquisition, in natural sort order: a file, a folder
    (its ``.tif``/``.tiff`` files), a glob pattern or a list of these."""
    items = [path_or_paths] if isinstance(path_or_paths, str | Path) \
        else list(path_or_paths)
    if not items:
        raise DerotationError("no movie given")
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = [f for f in p.iterdir()
                     if f.suffix.lower() in TIFF_SUFFIXES and f.is_file()]
            if not found:
                raise DerotationError(f"no .tif or .tiff files in folder {p}")
            files += found
        elif p.is_file():
            files.append(p)
        elif glob.has_magic(str(item)):
            found = [Path(f) for f in glob.glob(str(item)) if Path(f).is_file()]
            if not found:
                raise DerotationError(f"no files match {item}")
            files += found
        else:
            raise DerotationError(f"movie file not found: {p}")
    return sorted(dict.fromkeys(files), key=natural_key)


def open_movie(path_or_paths, *, channels=None, planes=None) -> MovieSource:
    """Open a movie (one TIFF, a folder, a glob or a list of files) as a
    :class:`MovieSource`. ``channels``/``planes`` interpret plain stacks of
    interleaved pages (page order t, then z, then c); where the file's
    metadata gives them, they must agree. Raises :class:`DerotationError`.
    """
    if isinstance(path_or_paths, str | Path):
        from .zarr_store import ZarrSource, is_zarr_path

        if is_zarr_path(path_or_paths):
            return ZarrSource(path_or_paths)
        opener = SOURCE_OPENERS.get(Path(path_or_paths).suffix.lower())
        if opener is not None:
            return opener(path_or_paths, channels=channels, planes=planes)
    files = movie_files(path_or_paths)
    for name, v in (("channels", channels), ("planes", planes)):
        if v is not None and (isinstance(v, bool) or int(v) != v or v < 1):
            raise DerotationError(f"{name} must be a whole number >= 1; "
                                  f"got {v!r}")
    parts = [_TiffPages(f) for f in files]
    return MovieSource(parts, channels=channels, planes=planes)


class _TiffPages:
    """One TIFF file as a flat list of 2-D pages, with what its metadata
    says about planes and channels."""

    def __init__(self, path: Path):
        self.path = path
        try:
            with _tiff_problems(path), tifffile.TiffFile(path) as tif:
                self._inspect(tif)
        except DerotationError:
            raise
        except Exception as exc:  # tifffile raises many types for bad files
            raise DerotationError(
                f"cannot read {path.name} as a TIFF movie: {exc}") from None
        self._tif = None

    def _inspect(self, tif) -> None:
        check_one_series(tif, self.path)
        series = tif.series[0]
        axes, shape = series.axes.upper(), tuple(series.shape)
        self.kind = "scanimage" if tif.is_scanimage else (
            "imagej" if tif.is_imagej else "ome" if tif.is_ome else "plain")
        if axes.endswith("S") and shape[-1] > 1:
            raise DerotationError(
                f"{self.path.name}: RGB pages are not supported (axes "
                f"{axes}, shape {shape})")
        if axes.endswith("S"):
            axes, shape = axes[:-1], shape[:-1]
        self.frame = shape[-2:]
        self.dtype = np.dtype(series.dtype)
        self.raw_dtype = self.dtype.newbyteorder(tif.byteorder)
        self.dtype = self.dtype.newbyteorder("=")
        self.meta: dict = {}
        lead = list(zip(axes[:-2], shape[:-2], strict=True))
        #: leading sizes that no metadata names (a plain numpy array saved
        #: with its shape, e.g. (20, 2, 64, 64)): which is what is unknown
        self.unnamed = tuple(n for ax, n in lead if ax in "QI" and n > 1)
        if self.kind == "scanimage":
            self.n_pages = len(tif.pages)
            lead = self._scanimage(tif)
        else:
            self.n_pages = int(np.prod(shape[:-2], dtype=np.int64))
        self.order, self.dims = _leading_axes(lead, self.path)
        self.offset = series.dataoffset if self.kind != "scanimage" else None
        if self.offset is None and self.kind != "scanimage":
            series.pages  # noqa: B018 - loads every page: finds cuts
        if 0 in self.frame or self.n_pages == 0:
            raise DerotationError(f"{self.path.name} is empty: shape {shape}")
        if self.kind == "imagej":
            ij = tif.imagej_metadata or {}
            if ij.get("finterval"):
                self.meta["frame_rate"] = 1.0 / float(ij["finterval"])
        if self.kind == "ome":
            self.meta.update(_ome_metadata(tif.ome_metadata))

    def _scanimage(self, tif) -> dict:
        """Planes and channels from ScanImage's frame data (the header, else
        the first page's Software tag), and its timing."""
        meta = tif.scanimage_metadata or {}
        fd = meta.get("FrameData") or {}
        if not fd:
            try:
                fd = tifffile.matlabstr2py(tif.pages.first.software) or {}
            except Exception:
                fd = {}
        save = fd.get("SI.hChannels.channelSave", 1)
        n_ch = len(save) if isinstance(save, list | tuple) else 1
        stack = fd.get("SI.hStackManager.enable", False) or fd.get(
            "SI.hFastZ.enable", False) or not any(
            k in fd for k in ("SI.hStackManager.enable", "SI.hFastZ.enable"))
        n_z = int(fd.get("SI.hStackManager.actualNumSlices",
                         fd.get("SI.hStackManager.numSlices", 1)) or 1) \
            if stack else 1
        for key, name in (("SI.hRoiManager.linePeriod", "line_period"),
                          ("SI.hRoiManager.scanFrameRate", "frame_rate")):
            if isinstance(fd.get(key), int | float):
                self.meta[name] = float(fd[key])
        if n_z > 1 and isinstance(fd.get("SI.hRoiManager.scanVolumeRate"),
                                  int | float):
            self.meta["frame_rate"] = float(fd["SI.hRoiManager.scanVolumeRate"])
        if isinstance(save, list | tuple):
            ids = np.ravel(save).tolist()
            self.meta["channel_names"] = [f"channel {c}" for c in ids]
        stamps = []
        for page in tif.pages[:: n_ch * n_z]:
            m = re.search(r"frameTimestamps_sec\s*=\s*([-+0-9.eE]+)",
                          page.description or "")
            if m is None:
                stamps = []
                break
            stamps.append(float(m.group(1)))
        if stamps:
            self.meta["frame_timestamps"] = stamps
        # a file of a sequence may end inside a time point: the sequence's
        # page count is checked as a whole
        return {"T": max(1, self.n_pages // (n_z * n_ch)), "Z": n_z,
                "C": n_ch}

    # -- reading -----------------------------------------------------------
    def read_pages(self, a: int, b: int) -> np.ndarray:
        """Pages ``a:b`` (in file order) as a new ``(b - a, Y, X)`` array."""
        rows, cols = self.frame
        n = b - a
        if self.offset is not None:
            page = rows * cols * self.raw_dtype.itemsize
            with open(self.path, "rb") as fh:
                fh.seek(self.offset + a * page)
                buf = np.fromfile(fh, self.raw_dtype, n * rows * cols)
            if buf.size != n * rows * cols:
                raise DerotationError(
                    f"{self.path.name} is truncated: pages {a}-{b} missing")
            if buf.dtype != self.dtype:          # big-endian file
                buf = buf.astype(self.dtype)
            return buf.reshape(n, rows, cols)
        if self._tif is None:
            self._tif = tifffile.TiffFile(self.path)
        pages = self._tif.series[0].pages if self.kind != "scanimage" \
            else self._tif.pages
        out = np.empty((n, rows, cols), self.dtype)
        for i in range(n):
            out[i] = pages[a + i].asarray().reshape(rows, cols)
        return out

    def close(self) -> None:
        if self._tif is not None:
            self._tif.close()
            self._tif = None


def _leading_axes(lead, path: Path) -> tuple[str, dict]:
    """The file's leading axes in page order over T, Z, C (singletons
    dropped), and their sizes. Time-like axes (T, I, Q) are time; a stack
    with planes but no time axis is a movie of its planes (ImageJ often
    saves a movie as slices)."""
    lead = list(lead.items()) if isinstance(lead, dict) else list(lead)
    dims = {"T": 1, "Z": 1, "C": 1}
    order = ""
    for ax, n in lead:
        # S: samples stored as separate planes (a 3-D plain stack of up to
        # 4 frames may be written so): one page each, like frames
        key = {"T": "T", "I": "T", "Q": "T", "S": "T", "Z": "Z",
               "C": "C"}.get(ax)
        if n == 1:
            continue
        if key == "T" and order.endswith("T") and ax in "QIS":
            dims["T"] *= int(n)         # unnamed page axes: pages in turn
            continue
        if key is None or key in order:
            raise DerotationError(
                f"{path.name}: axes {''.join(a for a, _ in lead)} with shape "
                f"{tuple(n for _, n in lead)}: expected time, planes and "
                f"channels (T, Z, C) once each")
        dims[key] = int(n)
        order += key
    if "T" not in order and "Z" in order:
        dims["T"], dims["Z"] = dims["Z"], 1
        order = order.replace("Z", "T")
    return order, dims


def _ome_metadata(xml) -> dict:
    """Frame rate and channel names from OME-XML, when given."""
    out: dict = {}
    if not xml:
        return out
    m = re.search(r'TimeIncrement="([0-9.eE+-]+)"', xml)
    if m and float(m.group(1)) > 0:
        out["frame_rate"] = 1.0 / float(m.group(1))
    names = re.findall(r'<Channel [^>]*Name="([^"]*)"', xml)
    if names:
        out["channel_names"] = names
    return out




class MovieSource:
    """A movie over one or more TIFF files, read time point by time point.

    ``shape`` is always ``(T, Z, C, Y, X)``; ``axes`` is the input's axes
    without singleton Z and C (``"TYX"``, ``"TCYX"``, ``"TZCYX"``);
    :meth:`read` returns ``(stop - start, Z, C, Y, X)`` read from disk.
    ``metadata`` may hold ``frame_rate``, ``line_period``,
    ``frame_timestamps``, ``channel_names`` and always ``source_files``.
    Use as a context manager (or call :meth:`close`).
    """

    def __init__(self, parts, *, channels=None, planes=None):
        self._parts = parts
        first = parts[0]
        for p in parts[1:]:
            _check_same(first, p)
        self.dtype = first.dtype
        self.paths = [p.path for p in parts]
        self.path = self.paths[0]
        dims, order = dict(first.dims), first.order
        plain = order in ("", "T")
        if len(first.unnamed) > 1 and channels is None and planes is None:
            raise DerotationError(
                f"{first.path.name}: its shape {first.unnamed + first.frame} "
                f"does not say which axis holds the planes or channels; give "
                f"--channels N and/or --planes Z (pages in the order t, z, c)")
        for name, key, given in (("channels", "C", channels),
                                 ("planes", "Z", planes)):
            if given is None:
                continue
            if plain:
                dims[key] = int(given)
            elif dims[key] != int(given):
                raise DerotationError(
                    f"{first.path.name}: its {first.kind} metadata gives "
                    f"{dims[key]} {name}; --{name} {int(given)} disagrees")
        z, c = dims["Z"], dims["C"]
        self._standard = order.replace("T", "") in ("", "Z", "C", "ZC") and \
            (order[:1] == "T" or "T" not in order)
        total = sum(p.n_pages for p in parts)
        if not self._standard and len(parts) > 1:
            raise DerotationError(
                f"{first.path.name}: pages in {order} order; a sequence of "
                f"files must have them in time, plane, channel order")
        if total % (z * c):
            raise DerotationError(
                f"{_names(self.paths)}: {total} pages do not divide into "
                f"{z} plane(s) x {c} channel(s) ({z * c} pages per time "
                f"point)")
        t = total // (z * c) if self._standard else dims["T"]
        self.shape = (t, z, c, *first.frame)
        self.axes = "T" + ("Z" if z > 1 else "") + ("C" if c > 1 else "") \
            + "YX"
        self._order = order
        self._starts = np.cumsum([0] + [p.n_pages for p in parts])
        self.metadata = _merge_metadata(parts)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Time points ``start:stop`` as a new ``(n, Z, C, Y, X)`` array."""
        t, z, c, rows, cols = self.shape
        start, stop = int(start), int(stop)
        if not 0 <= start < stop <= t:
            raise DerotationError(
                f"{self.path.name}: time points {start}:{stop} are not a "
                f"range in [0, {t}]")
        try:
            if self._standard:
                pages = self._pages(start * z * c, stop * z * c)
                return pages.reshape(stop - start, z, c, rows, cols)
            return self._read_reordered(start, stop)
        except DerotationError:
            raise
        except Exception as exc:
            raise DerotationError(
                f"cannot read time points {start}-{stop} of "
                f"{_names(self.paths)}: {exc}") from None

    def _pages(self, a: int, b: int) -> np.ndarray:
        """Pages ``a:b`` of the whole sequence, across file boundaries."""
        out = []
        for i, part in enumerate(self._parts):
            lo, hi = self._starts[i], self._starts[i + 1]
            if hi <= a or lo >= b:
                continue
            out.append(part.read_pages(max(a, lo) - lo, min(b, hi) - lo))
            if hi < b:
                part.close()        # a file is read once: free its handle
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _read_reordered(self, start: int, stop: int) -> np.ndarray:
        """One file whose pages are not in (t, z, c) order (OME-TIFF may
        store any order): page by page."""
        t, z, c, rows, cols = self.shape
        sizes = {"T": t, "Z": z, "C": c}
        order = self._order
        grid = np.indices((stop - start, z, c))
        grid[0] += start
        coords = {"T": grid[0], "Z": grid[1], "C": grid[2]}
        index = np.ravel_multi_index([coords[a] for a in order],
                                     [sizes[a] for a in order])
        part = self._parts[0]
        out = np.empty((stop - start, z, c, rows, cols), self.dtype)
        for pos, i in np.ndenumerate(index):
            out[pos] = part.read_pages(int(i), int(i) + 1)[0]
        return out

    def close(self) -> None:
        for p in self._parts:
            p.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _check_same(first: _TiffPages, other: _TiffPages) -> None:
    """Files of one sequence: same frame size, dtype and axes."""
    for what, a, b in (("frame size (rows, cols)", first.frame, other.frame),
                       ("dtype", first.dtype, other.dtype),
                       ("planes and channels",
                        (first.dims["Z"], first.dims["C"]),
                        (other.dims["Z"], other.dims["C"]))):
        if a != b:
            raise DerotationError(
                f"files of one movie must have the same {what}: "
                f"{first.path.name} has {a}, {other.path.name} has {b}")


def _merge_metadata(parts) -> dict:
    meta = dict(parts[0].meta)
    meta.pop("frame_timestamps", None)
    stamps = [p.meta.get("frame_timestamps") for p in parts]
    if all(s is not None for s in stamps):
        meta["frame_timestamps"] = [v for s in stamps for v in s]
    meta["source_files"] = [str(p.path) for p in parts]
    return meta


def _names(paths) -> str:
    return paths[0].name if len(paths) == 1 else \
        f"{paths[0].name}..{paths[-1].name} ({len(paths)} files)"
