"""One job description: what is derotated, with which angles and
parameters, into which outputs; validated once, run by one runner.

Every entry point (``derotate_file`` and ``derotate_file_distributed`` in
Python, the ``derotate`` command, ``run``/``batch``, the napari widget's
export and the napari writer) builds a :class:`Job` with :func:`describe`
and hands it to :func:`run` (or, for a movie already derotated in memory,
to :func:`write_result`), so the rules are written once, here:

- the movie is opened by :func:`napari_derotation.io.sources.open_movie`
  and its axes, shape and dtype are fixed in the job;
- the angles are checked against the movie's lines, and their warnings
  (:func:`napari_derotation.frames.angle_warnings`) kept in the job;
- the parameters are resolved for the movie (centre in the frame, one fill
  value per channel in the dtype's range, the plane);
- every file the job writes is named by :meth:`Job.files` and checked
  before the first is written: not an input, a writable folder, not
  existing unless ``overwrite``;
- a name a user types (an export name, a config's ``saving_name``) goes
  through :func:`napari_derotation.checks.file_stem`;
- the record written with the outputs is :func:`job_record`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .checks import file_stem, whole_number
from .engine._driver import check_angles
from .engine.params import DerotationParams
from .errors import DerotationError
from .io.atomic import OutputExists, check_not_input, check_writable
from .io.outputs import output_format, with_format
from .io.provenance import sidecar_path

__all__ = [
    "Job",
    "MovieSpec",
    "OutputSpec",
    "describe",
    "run",
    "output_spec",
    "job_record",
    "write_result",
]


@dataclasses.dataclass(frozen=True)
class MovieSpec:
    """A movie as :func:`~napari_derotation.io.sources.open_movie` reads it
    (``source``: a file, folder, glob, list of files or Zarr store; None for
    a movie held in memory), with what opening it found."""

    source: object
    shape: tuple[int, int, int, int, int]  # (T, Z, C, Y, X)
    dtype: np.dtype
    axes: str = "TYX"
    channels: int | None = None  # as given for plain stacks
    planes: int | None = None
    paths: tuple[Path, ...] = ()
    metadata: Mapping = dataclasses.field(default_factory=dict)
    allow_missing_chunks: bool = False  # a Zarr store written sparse

    @property
    def scan_shape(self) -> tuple[int, int, int]:
        """``(frames in scan order, rows, cols)``: what the angles cover."""
        t, z, _, rows, cols = self.shape
        return t * z, rows, cols

    @property
    def path(self) -> Path | None:
        return self.paths[0] if self.paths else None

    @classmethod
    def open(
        cls, source, *, channels=None, planes=None, allow_missing_chunks: bool = False
    ) -> MovieSpec:
        """Open ``source`` once to learn its axes, shape and dtype."""
        from .io.sources import open_movie

        with open_movie(
            source,
            channels=channels,
            planes=planes,
            allow_missing_chunks=allow_missing_chunks,
        ) as src:
            return cls(
                source=source,
                shape=tuple(int(s) for s in src.shape),
                dtype=np.dtype(src.dtype),
                axes=src.axes,
                channels=channels,
                planes=planes,
                paths=tuple(Path(p) for p in src.paths),
                metadata=dict(src.metadata),
                allow_missing_chunks=bool(allow_missing_chunks),
            )

    @classmethod
    def in_memory(
        cls,
        shape5,
        dtype,
        axes: str = "TYX",
        *,
        path=None,
        metadata: Mapping | None = None,
    ) -> MovieSpec:
        """A movie held in memory (a napari layer) of ``(T, Z, C, Y, X)``
        ``shape5``; ``path`` is the file it was read from, if any."""
        return cls(
            source=None,
            shape=tuple(int(s) for s in shape5),
            dtype=np.dtype(dtype),
            axes=axes,
            paths=() if path is None else (Path(path),),
            metadata=dict(metadata or {}),
        )

    def open_source(self):
        """The movie's :class:`~napari_derotation.io.sources.MovieSource`."""
        from .io.sources import open_movie

        if self.source is None:
            raise DerotationError("this movie is held in memory, not in a file")
        return open_movie(
            self.source,
            channels=self.channels,
            planes=self.planes,
            allow_missing_chunks=self.allow_missing_chunks,
        )


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """Where a job writes: ``path`` in ``format`` (``tif``, ``zarr``,
    ``nwb``, or ``split``: a folder of one TIFF per plane and channel),
    with a JSON record (beside a TIFF, inside a store or NWB file) when
    ``record``; ``tables`` adds the per-frame CSV and per-line angles of an
    export. ``options`` go to the writer (``frame_rate``, ``raw``,
    ``nwb_metadata``...)."""

    path: Path
    format: str
    overwrite: bool = False
    record: bool = True
    tables: bool = False
    options: Mapping = dataclasses.field(default_factory=dict)

    @property
    def stem(self) -> str:
        """The output's name without its format's suffix."""
        return self.path.name[: -len(_suffix(self.path))]

    @property
    def record_path(self) -> Path | None:
        """The JSON record beside the output: beside a TIFF, and beside
        every export (with ``tables``); None when kept only inside a store
        or NWB file."""
        if (
            not self.record
            or self.format == "split"
            or (self.format != "tif" and not self.tables)
        ):
            return None
        return sidecar_path(self.path.with_name(self.stem + ".tif"))

    def table_paths(self) -> dict:
        """The per-frame CSV and per-line angles an export writes."""
        if not self.tables:
            return {}
        folder = self.path.parent
        return {
            "frames": folder / f"{self.stem}_frames.csv",
            "angles": folder / f"{self.stem}_angles_per_line.npy",
        }

    def files(self) -> list[Path]:
        """Every file (or store) this output puts in place."""
        if self.format == "split":
            return [self.path]
        out = [self.path]
        if self.record_path is not None:
            out.append(self.record_path)
        return out + list(self.table_paths().values())


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in (".ome.zarr", ".zarr", ".tiff", ".tif", ".nwb"):
        if name.endswith(s):
            return s
    return path.suffix


def output_spec(
    path=None,
    *,
    folder=None,
    name=None,
    fmt=None,
    split=False,
    overwrite=False,
    record=True,
    tables=False,
    **options,
) -> OutputSpec:
    """The output of a job: a ``path`` whose suffix says the format, or a
    ``folder`` and a ``name`` typed by a user (checked by
    :func:`~napari_derotation.checks.file_stem`; a movie suffix it already
    ends with is not added twice) in format ``fmt`` (default ``tif``)."""
    if path is None:
        if folder is None or name is None:
            raise DerotationError("an output needs a path, or a folder and a name")
        stem = file_stem("the output name", name)
        lowered = stem.lower()
        for suffix, f in (
            (".ome.zarr", "zarr"),
            (".zarr", "zarr"),
            (".tiff", "tif"),
            (".tif", "tif"),
            (".nwb", "nwb"),
        ):
            if (
                lowered.endswith(suffix)
                and len(stem) > len(suffix)
                and (fmt is None or fmt == f)
            ):
                stem, fmt = stem[: -len(suffix)], f
                break
        path = with_format(Path(folder) / stem, fmt or "tif")
    path = Path(path)
    fmt = "split" if split else output_format(path)
    options = {k: v for k, v in options.items() if v is not None}
    return OutputSpec(
        path=path,
        format=fmt,
        overwrite=bool(overwrite),
        record=bool(record),
        tables=bool(tables),
        options=options,
    )


@dataclasses.dataclass(frozen=True)
class Job:
    """A derotation, fully described and validated (see :func:`describe`).

    ``angles`` are the per-line angles (every value given; the first
    ``frames x rows`` in scan order are used), ``params`` the parameters
    resolved for the movie (explicit centre, one fill value per channel),
    ``warnings`` what looks wrong but does not stop the job.
    """

    movie: MovieSpec
    angles: np.ndarray
    params: DerotationParams
    output: OutputSpec | None = None
    angles_source: str | None = None
    chunk_frames: int | None = None
    scheduler: str | None = None
    workers: int | None = None
    warnings: tuple[str, ...] = ()

    @property
    def distributed(self) -> bool:
        return bool(self.scheduler) or self.workers is not None

    @property
    def used_angles(self) -> np.ndarray:
        """The angles of the movie's lines, in scan order (float64)."""
        n, rows, _ = self.movie.scan_shape
        return check_angles(self.angles, n * rows, rows)

    def line_angles(self) -> tuple[np.ndarray, DerotationParams]:
        """``(angles, params)`` the engine derotates the lines with: the
        used angles delayed by ``params.angle_delay`` and the parameters
        without it (see :func:`napari_derotation.engine.line_angles`)."""
        from .engine._driver import line_angles

        return line_angles(self.angles, self.movie.scan_shape, self.params)

    def files(self) -> list[Path]:
        """Every file this job puts in place."""
        return [] if self.output is None else self.output.files()


def describe(
    movie,
    angles_per_line,
    output=None,
    *,
    params: DerotationParams | None = None,
    angles_source=None,
    channels=None,
    planes=None,
    chunk_frames=None,
    scheduler=None,
    workers=None,
    extra_angles_ok: bool = False,
    check_files: bool = True,
    allow_missing_chunks: bool = False,
    **overrides,
) -> Job:
    """Build and validate a :class:`Job`, before any work or output starts.

    ``movie`` is what :func:`~napari_derotation.io.sources.open_movie`
    opens (or a :class:`MovieSpec`); ``output`` an :class:`OutputSpec`
    (:func:`output_spec`), a path, or None (derotate in memory).
    ``params`` with ``overrides`` (the field keywords of
    :class:`~napari_derotation.engine.params.DerotationParams`, each applied
    when given). ``allow_missing_chunks`` reads a Zarr store written sparse
    on purpose (else a missing chunk is refused). Raises
    :class:`DerotationError` naming the first problem.
    """
    spec = (
        movie
        if isinstance(movie, MovieSpec)
        else MovieSpec.open(
            movie,
            channels=channels,
            planes=planes,
            allow_missing_chunks=allow_missing_chunks,
        )
    )
    if output is not None and not isinstance(output, OutputSpec):
        output = output_spec(output)
    params = DerotationParams.build(params, **overrides)
    if chunk_frames is not None:
        chunk_frames = whole_number("chunk_frames", chunk_frames)
    if workers is not None:
        workers = whole_number("workers", workers)
    if scheduler and workers is not None:
        raise DerotationError(
            "give either a scheduler address or a number of local workers, not both"
        )
    if scheduler or workers is not None:
        _check_distributed(spec, output)
    angles = np.asarray(angles_per_line)
    n, rows, cols = spec.scan_shape
    check_angles(angles, n * rows, rows)
    params = params.resolve(spec.scan_shape, spec.dtype, channels=spec.shape[2])
    job = Job(
        movie=spec,
        angles=angles,
        params=params,
        output=output,
        angles_source=None if angles_source is None else _absolute(angles_source),
        chunk_frames=chunk_frames,
        scheduler=scheduler,
        workers=workers,
    )
    if output is not None and check_files:
        check_job_files(job)
    from .frames import angle_warnings

    notes = angle_warnings(angles, spec.scan_shape, extra_lines_ok=extra_angles_ok)
    return dataclasses.replace(job, warnings=tuple(notes))


def _absolute(source) -> str:
    """An angle source as recorded: a file's absolute path, else as given
    (``"sample"``, ``"metadata"``)."""
    p = Path(str(source))
    return str(p.resolve()) if p.exists() else str(source)


def _check_distributed(movie: MovieSpec, out: OutputSpec | None) -> None:
    """What a cluster can do: one single-channel, single-plane movie from
    one file or store, into a TIFF or an OME-Zarr store."""
    if out is not None and out.format not in ("tif", "zarr"):
        raise DerotationError(
            f"a cluster writes .tif or .zarr; write .{out.format} without "
            f"--workers/--scheduler"
            if out.format != "split"
            else "a cluster writes .tif or .zarr; --split runs without "
            "--workers/--scheduler"
        )
    if movie.source is None or len(movie.paths) != 1 or movie.shape[1:3] != (1, 1):
        raise DerotationError(
            "--scheduler/--workers take one single-channel movie; derotate "
            "sequences, channels and planes without them"
        )


def check_job_files(job: Job, hint: str | None = None) -> list[Path]:
    """Every file the job writes, checked before the first is written: none
    is an input, their folder is writable, none exists unless the output
    says ``overwrite``. The split writer checks its folder's files itself."""
    inputs = list(job.movie.paths)
    if job.angles_source and Path(job.angles_source).exists():
        inputs.append(Path(job.angles_source))
    files = job.files()
    for p in files:
        check_not_input(p, *inputs)
    if job.output.format == "split":
        return files
    try:
        return check_writable(files, overwrite=job.output.overwrite)
    except OutputExists as exc:
        if hint is None:  # the caller adds how to replace them
            raise
        raise DerotationError(f"{exc}; {hint}") from None


def run(job: Job, progress=None) -> dict:
    """Run ``job``: its movie derotated chunk by chunk (on a dask cluster
    when it names one) into its output; returns the record (also written
    with the output when ``job.output.record``). ``progress(done, total)``
    may return ``False`` to cancel; nothing is left behind."""
    if job.output is None:
        raise DerotationError(
            "this job has no output; derotate in memory with napari_derotation.derotate"
        )
    if job.distributed:
        from .engine.cluster import run_distributed

        return run_distributed(job, progress)
    from .engine.files import run_local

    return run_local(job, progress)


def job_record(job: Job, *, checksum: bool = True, **extra) -> dict:
    """The JSON record of ``job``'s output (the one function every output's
    record comes from)."""
    from .io.provenance import record

    t, z, c, rows, cols = job.movie.shape
    shape = (t, rows, cols) if z == c == 1 else job.movie.shape
    out = None if job.output is None else job.output.path
    rec = record(
        movie_path=job.movie.path,
        out_path=out,
        shape=shape,
        dtype=job.movie.dtype,
        params=job.params,
        angles_source=job.angles_source,
        n_angles=int(np.size(job.angles)),
        checksum=checksum and job.movie.source is not None,
        **extra,
    )
    rec["angles"]["used"] = t * z * rows
    if job.movie.axes != "TYX":
        rec["axes"] = job.movie.axes
    if len(job.movie.paths) > 1:
        from .io.atomic import file_sha256

        rec["input"]["files"] = [
            {
                "path": str(p.resolve()),
                **({"sha256": file_sha256(p)} if checksum else {}),
            }
            for p in job.movie.paths
        ]
    rec.update(
        acquisition_record(
            (job.output.options if job.output else {}).get(
                "frame_rate", job.movie.metadata.get("frame_rate")
            ),
            z,
            c,
        )
    )
    return rec


def acquisition_record(frame_rate, nplanes: int = 1, nchannels: int = 1) -> dict:
    """What a next step needs to know of the movie, kept in the record:
    ``frame_rate`` (Hz, or None when unknown) and, under ``suite2p``, the
    ``fs``, ``nplanes`` and ``nchannels`` of suite2p's ops for this file."""
    fs = None if frame_rate is None else float(frame_rate)
    return {
        "frame_rate": fs,
        "suite2p": {"fs": fs, "nplanes": int(nplanes), "nchannels": int(nchannels)},
    }


def write_result(job: Job, derotated, *, chunk_frames=64, frame_angles=None, **extra):
    """Write ``derotated`` (the job's movie already derotated in memory, in
    the movie's axes) to the job's output with its record and, when the
    output has ``tables``, the per-frame CSV and per-line angles.

    A generator: yields ``(done, total)`` time points while the movie is
    streamed and returns the paths written; closing it early (a cancel)
    leaves no file behind.
    """
    from .engine.hyperstack import to_tzcyx
    from .frames import frame_angles as first_line_angles
    from .io import OutputSet, frame_table, save_angles, write_frame_csv
    from .io.atomic import write_json
    from .io.outputs import open_writer

    out = job.output
    tables = out.table_paths()
    if tables:
        extra = dict(
            extra,
            per_frame_csv=tables["frames"].name,
            angles_file=tables["angles"].name,
        )
    rec = job_record(job, checksum=False, **extra)
    if job.movie.path is not None:
        rec["input"]["path"] = str(Path(job.movie.path).resolve())
    axes = job.movie.axes
    t = job.movie.shape[0]
    n, rows, _ = job.movie.scan_shape
    five = axes != "TYX"
    shape = job.movie.shape if five else job.movie.scan_shape
    with OutputSet(overwrite=out.overwrite) as done:
        with open_writer(
            out.path,
            shape,
            job.movie.dtype,
            axes=axes if five else None,
            record=rec,
            overwrite=True,
            **out.options,
        ) as writer:
            for start in range(0, t, chunk_frames):
                stop = min(t, start + chunk_frames)
                chunk = np.asarray(derotated[start:stop])
                writer.write(to_tzcyx(chunk, axes) if five else chunk)
                yield stop, t
        done.add(out.path)
        if out.record_path is not None:
            done.add(write_json(out.record_path, rec))
        if tables:
            angles = job.used_angles
            per_frame = (
                frame_angles
                if frame_angles is not None and np.size(frame_angles) >= n
                else None
            )
            per_frame = (
                np.asarray(per_frame, np.float64)[:n]
                if per_frame is not None
                else first_line_angles(angles, n, rows)
            )
            done.add(write_frame_csv(tables["frames"], frame_table(per_frame)))
            done.add(save_angles(tables["angles"], angles))
    return [str(p) for p in done.written]
