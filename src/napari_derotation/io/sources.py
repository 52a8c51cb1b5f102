"""Movies of any rig: channels, planes and file sequences, read lazily.

:func:`open_movie` is the one way a movie is opened: one TIFF, a folder of
TIFFs, a glob or a list of files as one :class:`MovieSource` (an OME-Zarr
store as a :class:`~napari_derotation.io.zarr_store.ZarrSource`) with axes
T, optional Z (planes), optional C (channels), Y, X. Every read returns
``(n, Z, C, Y, X)`` time points straight from disk, so memory is bounded by
the chunk, not the movie; :meth:`MovieSource.frames` (and
:func:`read_movie`) give a single-plane movie whole, memory-mapped where the
file allows.

A movie is read whole or refused: pages that do not fill an ImageJ
hyperstack, a header claiming more than the file holds, ScanImage metadata
out of range, frames too large for the engine or for the memory available
(checked before anything is read or hashed) are a :class:`DerotationError`
of one line naming what was found.

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
is taken in natural sort order; its axes come from its files' metadata as
for one file, its pages continue from file to file (a file may end inside a
time point), and so do the angles. A gap in its numbering is warned about.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import math
import os
import re
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile

from ..errors import DerotationError

__all__ = [
    "open_movie",
    "read_movie",
    "MovieSource",
    "natural_key",
    "movie_files",
    "TIFF_SUFFIXES",
    "check_time_point",
    "check_whole",
]

TIFF_SUFFIXES = (".tif", ".tiff")
#: The engine indexes a frame's pixels with 32-bit integers.
MAX_FRAME_PIXELS = 2**31 - 1
#: ``name_00001.tif``: a file of a numbered sequence
_NUMBERED = re.compile(r"^(?P<stem>.+)_(?P<n>\d+)$")


def natural_key(path) -> list:
    """Sort key: ``name_2.tif`` before ``name_10.tif``."""
    parts = re.split(r"(\d+)", str(path))
    return [int(p) if p.isdigit() else p.lower() for p in parts]


def movie_files(path_or_paths) -> list[Path]:
    """The files of one acquisition, in natural sort order: a file, a folder
    (its ``.tif``/``.tiff`` files), a glob pattern or a list of these. A gap
    in a numbered sequence (``rec_00001.tif``, ``rec_00003.tif``) is warned
    about, naming the missing number."""
    items = (
        [path_or_paths]
        if isinstance(path_or_paths, str | Path)
        else list(path_or_paths)
    )
    if not items:
        raise DerotationError("no movie given")
    files: list[Path] = []
    for item in items:
        p = Path(item)
        _check_link(p)
        if p.is_dir():
            found = [
                f
                for f in p.iterdir()
                if f.suffix.lower() in TIFF_SUFFIXES and f.is_file()
            ]
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
    files = sorted(dict.fromkeys(files), key=natural_key)
    _warn_gaps(files)
    return files


def _check_link(p: Path) -> None:
    """A symbolic link that leads nowhere: say so (not "not found")."""
    if not p.is_symlink() or p.exists():
        return
    try:
        p.resolve(strict=True)
    except RuntimeError:  # Python < 3.13: "Symlink loop"
        raise DerotationError(
            f"movie {p} is a symbolic link loop: expected a file, folder or Zarr store"
        ) from None
    except OSError as exc:
        if getattr(exc, "errno", None) == 40:  # ELOOP
            raise DerotationError(
                f"movie {p} is a symbolic link loop: expected a file, folder "
                f"or Zarr store"
            ) from None
    raise DerotationError(
        f"movie {p} is a symbolic link to {os.readlink(p)}, which does not exist"
    )


def _warn_gaps(files) -> None:
    """Warn about numbers missing from a numbered sequence of files: its
    pages (and angles) continue from file to file, so a missing file shifts
    every frame after it."""
    groups: dict = {}
    for f in files:
        m = _NUMBERED.match(f.stem)
        if m:
            groups.setdefault((f.parent, m["stem"], f.suffix.lower()), []).append(
                (int(m["n"]), f)
            )
    for items in groups.values():
        numbers = sorted(n for n, _ in items)
        if len(numbers) < 2:
            continue
        missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
        if missing:
            width = len(_NUMBERED.match(items[0][1].stem)["n"])
            shown = ", ".join(f"{n:0{width}d}" for n in missing[:5]) + (
                f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            )
            warnings.warn(
                f"{items[0][1].parent / items[0][1].name}: the sequence "
                f"{numbers[0]:0{width}d}..{numbers[-1]:0{width}d} lacks file "
                f"number {shown}: the frames after a gap are read as if "
                f"it were not there",
                UserWarning,
                stacklevel=3,
            )


def open_movie(
    path_or_paths, *, channels=None, planes=None, allow_missing_chunks: bool = False
) -> MovieSource:
    """Open a movie (one TIFF, a folder, a glob or a list of files, or an
    OME-Zarr store) as a :class:`MovieSource` (a
    :class:`~napari_derotation.io.zarr_store.ZarrSource` for a store).
    ``channels``/``planes`` interpret plain stacks of interleaved pages
    (page order t, then z, then c); where the file's metadata gives them,
    they must agree. A Zarr store with a missing chunk is refused unless
    ``allow_missing_chunks`` (a store written sparse on purpose: its missing
    chunks read as the fill value). Raises :class:`DerotationError`.
    """
    for name, v in (("channels", channels), ("planes", planes)):
        if v is not None and (isinstance(v, bool) or int(v) != v or v < 1):
            raise DerotationError(f"{name} must be a whole number >= 1; got {v!r}")
    if isinstance(path_or_paths, str | Path):
        from .zarr_store import ZarrSource, is_zarr_path

        if is_zarr_path(path_or_paths):
            _check_link(Path(path_or_paths))
            return ZarrSource(path_or_paths, allow_missing_chunks=allow_missing_chunks)
    files = movie_files(path_or_paths)
    parts = []
    try:
        for f in files:
            parts.append(_TiffPages(f))
    except BaseException:
        for p in parts:
            p.close()
        raise
    return MovieSource(parts, channels=channels, planes=planes)


def read_movie(path, *, mmap: bool = True) -> np.ndarray:
    """A movie of one plane and one channel as a read-only ``(frames, rows,
    cols)`` array, through :func:`open_movie`: memory-mapped when ``mmap``
    and the file's layout allows it (one uncompressed, contiguous TIFF in
    the machine's byte order), otherwise read into memory. A 2-D TIFF is
    one frame. Raises :class:`DerotationError`.
    """
    with open_movie(path) as src:
        return src.frames(mmap=mmap)


def available_memory() -> int | None:
    """Bytes of memory available to this process now (Linux
    ``MemAvailable``; elsewhere the physical memory), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def check_whole(name: str, shape, dtype) -> None:
    """Refuse to read a whole movie of ``shape`` into memory when it does
    not fit in the memory available (naming both sizes)."""
    need = math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize
    avail = available_memory()
    if avail is not None and need > avail:
        raise DerotationError(
            f"{name}: the whole movie, {' x '.join(map(str, shape))} "
            f"{np.dtype(dtype)}, is {_gib(need)}, more than the "
            f"{_gib(avail)} of memory available to read it at once"
        )


def check_time_point(name: str, shape5, dtype, *, copies: int = 2) -> None:
    """Refuse a movie whose frames the engine cannot hold: more than
    :data:`MAX_FRAME_PIXELS` pixels in a frame, or one time point (every
    plane and channel, read and derotated: ``copies`` of it) larger than
    the memory available. Checked on opening, before anything is read or
    hashed; the error names the size."""
    _, z, c, rows, cols = (int(s) for s in shape5)
    dtype = np.dtype(dtype)
    size = (
        f"{rows} x {cols}"
        + (f" x {z} planes" if z > 1 else "")
        + (f" x {c} channels" if c > 1 else "")
        + f" {dtype}"
    )
    if rows * cols > MAX_FRAME_PIXELS:
        raise DerotationError(
            f"{name}: frames of {rows} x {cols} = {rows * cols} pixels; "
            f"expected at most {MAX_FRAME_PIXELS} pixels per frame"
        )
    point = math.prod((z, c, rows, cols)) * dtype.itemsize
    avail = available_memory()
    if avail is not None and copies * point > avail:
        raise DerotationError(
            f"{name}: one time point is {size} ({_gib(point)}); reading and "
            f"derotating it needs about {_gib(copies * point)}, more than the "
            f"{_gib(avail)} of memory available"
        )


def check_one_series(tif, path) -> None:
    """Refuse a TIFF holding more than one series (images of different
    shapes, or several movies): reading only the first would silently drop
    the others."""
    series = tif.series
    if len(series) <= 1:
        return
    kinds = [f"{tuple(s.shape)} {np.dtype(s.dtype)}" for s in series]
    if len(set(kinds)) == 1:
        found = f"each {kinds[0]}"
    else:
        found = "; ".join(f"series {i}: {k}" for i, k in enumerate(kinds[:4]))
        found += "; ..." if len(kinds) > 4 else ""
    raise DerotationError(
        f"{Path(path).name} holds {len(series)} image series ({found}); "
        f"expected one movie in one series: save each series as its own "
        f"TIFF, or the frames as one stack"
    )


#: What tifffile logs (instead of raising) when a file is cut short or broken.
_CORRUPT = (
    "invalid page offset",
    "invalid offset to first page",
    "failed to reshape",
    "corrupted",
    "truncated",
)


@contextlib.contextmanager
def _tiff_problems(path: Path) -> Iterator[None]:
    """Turn what tifffile only logs about a truncated or corrupt file (it
    then returns the frames it could read) into a :class:`DerotationError`.

    Records from this thread are kept out of the log (the error says it).
    """
    found: list[str] = []
    me = threading.get_ident()

    def keep(record: logging.LogRecord) -> bool:
        if record.thread != me:
            return True
        msg = record.getMessage()
        if any(k in msg for k in _CORRUPT):
            found.append(msg)
            return False
        return True

    def problem() -> DerotationError:
        detail = found[0].split("> ", 1)[-1]
        return DerotationError(f"{path.name} is truncated or corrupt: {detail}")

    logger = logging.getLogger("tifffile")
    logger.addFilter(keep)
    try:
        yield
    except DerotationError:
        raise
    except Exception:
        if found:  # the logged cause says more than the exception
            raise problem() from None
        raise
    finally:
        logger.removeFilter(keep)
    if found:
        raise problem()


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
                f"cannot read {path.name} as a TIFF movie: {exc}"
            ) from None
        self._tif = None

    def _inspect(self, tif) -> None:
        check_one_series(tif, self.path)
        series = tif.series[0]
        axes, shape = series.axes.upper(), tuple(series.shape)
        self.kind = (
            "scanimage"
            if tif.is_scanimage
            else ("imagej" if tif.is_imagej else "ome" if tif.is_ome else "plain")
        )
        if axes.endswith("S") and shape[-1] > 1:
            raise DerotationError(
                f"{self.path.name}: RGB pages are not supported (axes "
                f"{axes}, shape {shape})"
            )
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
            if not tif.is_bigtiff:
                self._check_virtual_frames()
            lead = self._scanimage(tif)
        else:
            self.n_pages = int(np.prod(shape[:-2], dtype=np.int64))
        # ScanImage's metadata names its planes: one volume per file is
        # one time point of planes, not a movie of planes
        self.order, self.dims = _leading_axes(
            lead, self.path, planes_as_time=self.kind != "scanimage"
        )
        if 0 in self.frame or self.n_pages == 0:
            raise DerotationError(f"{self.path.name} is empty: shape {shape}")
        check_time_point(self.path.name, (1, 1, 1, *self.frame), self.dtype, copies=1)
        self.offset = series.dataoffset if self.kind != "scanimage" else None
        if self.offset is not None:
            self._check_fits()
        elif self.kind != "scanimage":
            series.pages  # noqa: B018 - loads every page: finds cuts
        if self.kind == "imagej":
            ij = tif.imagej_metadata or {}
            self._check_imagej(tif, ij)
            if ij.get("finterval"):
                self.meta["frame_rate"] = 1.0 / float(ij["finterval"])
        if self.kind == "ome":
            self.meta.update(_ome_metadata(tif.ome_metadata))

    def _check_fits(self) -> None:
        """The contiguous pages the header claims lie inside the file."""
        rows, cols = self.frame
        end = self.offset + self.n_pages * rows * cols * self.dtype.itemsize
        size = self.path.stat().st_size
        if end > size:
            raise DerotationError(
                f"{self.path.name} is truncated: its header claims "
                f"{self.n_pages} pages of {rows} x {cols} {self.dtype} "
                f"(ending at byte {end}); the file has {size} bytes"
            )

    def _check_imagej(self, tif, ij: dict) -> None:
        """An ImageJ hyperstack's pages fill it exactly: tifffile reads the
        first channels x slices x frames pages and drops the rest."""
        dims = {k: int(ij.get(k, 1) or 1) for k in ("channels", "slices", "frames")}
        grid = " x ".join(f"{k}={v}" for k, v in dims.items() if v > 1)
        images = ij.get("images")
        if isinstance(images, int | float) and int(images) != self.n_pages:
            raise DerotationError(
                f"{self.path.name}: its ImageJ header says images={images} "
                f"but {grid or 'its axes'} make {self.n_pages}: the pages "
                f"do not fill the hyperstack"
            )
        if self.path.stat().st_size < 2**32:  # else: one IFD may hold all
            n = len(tif.pages)
            if n not in (1, self.n_pages):
                raise DerotationError(
                    f"{self.path.name}: {n} pages do not fill its ImageJ "
                    f"hyperstack of {grid or 'frames'} = {self.n_pages} "
                    f"images"
                )

    def _check_virtual_frames(self) -> None:
        """A classic TIFF of ScanImage before 2016: tifffile counts its
        pages from the first two and the file size, which holds only when
        every page has the same layout; the page chain says how many there
        are. A movie is read whole or refused."""
        with tifffile.TiffFile(self.path, is_scanimage=False) as plain:
            chained = len(plain.pages)
        if chained != self.n_pages:
            raise DerotationError(
                f"{self.path.name}: a ScanImage classic TIFF whose pages are "
                f"not evenly laid out: its page chain holds {chained} pages "
                f"but ScanImage's layout gives {self.n_pages}; resave it as "
                f"a plain TIFF (e.g. tifffile.imwrite)"
            )

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
        stack = (
            fd.get("SI.hStackManager.enable", False)
            or fd.get("SI.hFastZ.enable", False)
            or not any(k in fd for k in ("SI.hStackManager.enable", "SI.hFastZ.enable"))
        )
        n_z = 1
        for key in ("SI.hStackManager.actualNumSlices", "SI.hStackManager.numSlices"):
            if key in fd:
                n_z = self._slices(key, fd[key], stack)
                break
        if not stack:
            n_z = 1
        for key, name in (
            ("SI.hRoiManager.linePeriod", "line_period"),
            ("SI.hRoiManager.scanFrameRate", "frame_rate"),
        ):
            if self._positive(fd, key):
                self.meta[name] = float(fd[key])
        if n_z > 1 and self._positive(fd, "SI.hRoiManager.scanVolumeRate"):
            self.meta["frame_rate"] = float(fd["SI.hRoiManager.scanVolumeRate"])
        if isinstance(save, list | tuple):
            ids = np.ravel(save).tolist()
            self.meta["channel_names"] = [f"channel {c}" for c in ids]
        stamps = []
        # whole pages, not tifffile's light frames (which have no
        # description: classic TIFFs of older ScanImage versions)
        useframes = getattr(tif.pages, "useframes", None)
        if useframes is not None:
            tif.pages.useframes = False
        try:
            descriptions = [
                getattr(tif.pages[i], "description", "") or ""
                for i in range(0, len(tif.pages), n_ch * n_z)
            ]
        finally:
            if useframes is not None:
                tif.pages.useframes = useframes
        for text in descriptions:
            m = re.search(r"frameTimestamps_sec\s*=\s*([-+0-9.eE]+)", text)
            if m is None:
                stamps = []
                break
            stamps.append(float(m.group(1)))
        if stamps:
            self.meta["frame_timestamps"] = stamps
        # a file of a sequence may end inside a time point: the sequence's
        # page count is checked as a whole
        return {"T": max(1, self.n_pages // (n_z * n_ch)), "Z": n_z, "C": n_ch}

    def _slices(self, key: str, value, stack: bool) -> int:
        """ScanImage's number of slices: a whole number from 1 to 100000."""
        ok = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value == int(value)
            and 1 <= value <= 100_000
        )
        if ok:
            return int(value)
        if value in (0, None, []) and not stack:
            return 1
        raise DerotationError(
            f"{self.path.name}: its ScanImage metadata has {key} = {value!r}; "
            f"expected a whole number of planes from 1 to 100000"
        )

    def _positive(self, fd: dict, key: str) -> bool:
        """Whether ScanImage's ``key`` is a usable positive number; a value
        that cannot be right is warned about (and not used)."""
        if key not in fd:
            return False
        v = fd[key]
        if (
            isinstance(v, int | float)
            and not isinstance(v, bool)
            and math.isfinite(v)
            and v > 0
        ):
            return True
        warnings.warn(
            f"{self.path.name}: ignoring its ScanImage {key} = {v!r}: "
            f"expected a positive number",
            UserWarning,
            stacklevel=2,
        )
        return False

    # -- reading -----------------------------------------------------------
    def memmap(self) -> np.ndarray | None:
        """The file's pages as a read-only ``(n, Y, X)`` memory map, or None
        when its layout does not allow one (compressed, scattered pages or
        another byte order)."""
        if self.offset is None or not self.raw_dtype.isnative:
            return None
        return np.memmap(
            self.path,
            self.raw_dtype,
            mode="r",
            offset=self.offset,
            shape=(self.n_pages, *self.frame),
        )

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
                    f"{self.path.name} is truncated: pages {a}-{b} missing"
                )
            if buf.dtype != self.dtype:  # big-endian file
                buf = buf.astype(self.dtype)
            return buf.reshape(n, rows, cols)
        if self._tif is None:
            self._tif = tifffile.TiffFile(self.path)
        pages = (
            self._tif.series[0].pages if self.kind != "scanimage" else self._tif.pages
        )
        out = np.empty((n, rows, cols), self.dtype)
        for i in range(n):
            out[i] = pages[a + i].asarray().reshape(rows, cols)
        return out

    def close(self) -> None:
        if self._tif is not None:
            self._tif.close()
            self._tif = None


def _leading_axes(lead, path: Path, *, planes_as_time: bool = True) -> tuple[str, dict]:
    """The file's leading axes in page order over T, Z, C (singletons
    dropped), and their sizes. Time-like axes (T, I, Q) are time; with
    ``planes_as_time``, a stack with planes but no time axis is a movie of
    its planes (ImageJ often saves a movie as slices)."""
    lead = list(lead.items()) if isinstance(lead, dict) else list(lead)
    dims = {"T": 1, "Z": 1, "C": 1}
    order = ""
    for ax, n in lead:
        # S: samples stored as separate planes (a 3-D plain stack of up to
        # 4 frames may be written so): one page each, like frames
        key = {"T": "T", "I": "T", "Q": "T", "S": "T", "Z": "Z", "C": "C"}.get(ax)
        if n == 1:
            continue
        if key == "T" and order.endswith("T") and ax in "QIS":
            dims["T"] *= int(n)  # unnamed page axes: pages in turn
            continue
        if key is None or key in order:
            raise DerotationError(
                f"{path.name}: axes {''.join(a for a, _ in lead)} with shape "
                f"{tuple(n for _, n in lead)}: expected time, planes and "
                f"channels (T, Z, C) once each"
            )
        dims[key] = int(n)
        order += key
    if planes_as_time and "T" not in order and "Z" in order:
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
                f"--channels N and/or --planes Z (pages in the order t, z, c)"
            )
        for name, key, given in (("channels", "C", channels), ("planes", "Z", planes)):
            if given is None:
                continue
            if plain:
                dims[key] = int(given)
            elif dims[key] != int(given):
                raise DerotationError(
                    f"{first.path.name}: its {first.kind} metadata gives "
                    f"{dims[key]} {name}; --{name} {int(given)} disagrees"
                )
        z, c = dims["Z"], dims["C"]
        self._standard = order.replace("T", "") in ("", "Z", "C", "ZC") and (
            order[:1] == "T" or "T" not in order
        )
        total = sum(p.n_pages for p in parts)
        if not self._standard and len(parts) > 1:
            raise DerotationError(
                f"{first.path.name}: pages in {order} order; a sequence of "
                f"files must have them in time, plane, channel order"
            )
        if total % (z * c):
            raise DerotationError(
                f"{_names(self.paths)}: {total} pages do not divide into "
                f"{z} plane(s) x {c} channel(s) ({z * c} pages per time "
                f"point)"
            )
        t = total // (z * c) if self._standard else dims["T"]
        self.shape = (t, z, c, *first.frame)
        self.axes = "T" + ("Z" if z > 1 else "") + ("C" if c > 1 else "") + "YX"
        check_time_point(_names(self.paths), self.shape, self.dtype)
        self._order = order
        self._starts = np.cumsum([0] + [p.n_pages for p in parts])
        self.metadata = _merge_metadata(parts)

    def __len__(self) -> int:
        return self.shape[0]

    def frames(self, *, mmap: bool = False) -> np.ndarray:
        """The whole movie of one plane and one channel as ``(T, Y, X)``:
        with ``mmap`` a read-only memory map when it is one uncompressed,
        contiguous file in the machine's byte order, else read into
        memory."""
        t, z, c, rows, cols = self.shape
        if z > 1 or c > 1:
            raise DerotationError(
                f"{_names(self.paths)}: {z} planes and {c} channels (axes "
                f"{self.axes}); expected a stack of 2-D frames (frames, "
                f"rows, cols) here"
            )
        if mmap and len(self._parts) == 1:
            mapped = self._parts[0].memmap()
            if mapped is not None:
                return mapped
        check_whole(_names(self.paths), (t, rows, cols), self.dtype)
        return self.read(0, t).reshape(t, rows, cols)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Time points ``start:stop`` as a new ``(n, Z, C, Y, X)`` array."""
        t, z, c, rows, cols = self.shape
        start, stop = int(start), int(stop)
        if not 0 <= start < stop <= t:
            raise DerotationError(
                f"{self.path.name}: time points {start}:{stop} are not a "
                f"range in [0, {t}]"
            )
        try:
            if self._standard:
                pages = self._pages(start * z * c, stop * z * c)
                return pages.reshape(stop - start, z, c, rows, cols)
            return self._read_reordered(start, stop)
        except DerotationError:
            raise
        except Exception as exc:
            raise DerotationError(
                f"cannot read time points {start}-{stop} of {_names(self.paths)}: {exc}"
            ) from None

    def _pages(self, a: int, b: int) -> np.ndarray:
        """Pages ``a:b`` of the whole sequence, across file boundaries."""
        out = []
        for i, part in enumerate(self._parts):
            lo, hi = self._starts[i], self._starts[i + 1]
            if hi <= a or lo >= b:
                continue
            out.append(part.read_pages(max(a, lo) - lo, min(b, hi) - lo))
            if hi < b:
                part.close()  # a file is read once: free its handle
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
        index = np.ravel_multi_index(
            [coords[a] for a in order], [sizes[a] for a in order]
        )
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
    for what, a, b in (
        ("frame size (rows, cols)", first.frame, other.frame),
        ("dtype", first.dtype, other.dtype),
        (
            "planes and channels",
            (first.dims["Z"], first.dims["C"]),
            (other.dims["Z"], other.dims["C"]),
        ),
    ):
        if a != b:
            raise DerotationError(
                f"files of one movie must have the same {what}: "
                f"{first.path.name} has {a}, {other.path.name} has {b}"
            )


def _merge_metadata(parts) -> dict:
    meta = dict(parts[0].meta)
    meta.pop("frame_timestamps", None)
    stamps = [p.meta.get("frame_timestamps") for p in parts]
    if all(s is not None for s in stamps):
        meta["frame_timestamps"] = [v for s in stamps for v in s]
    meta["source_files"] = [str(p.path) for p in parts]
    return meta


def _names(paths) -> str:
    return (
        paths[0].name
        if len(paths) == 1
        else f"{paths[0].name}..{paths[-1].name} ({len(paths)} files)"
    )
