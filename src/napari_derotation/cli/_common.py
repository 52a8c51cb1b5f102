"""Helpers shared by the subcommands: progress on stderr, argument types."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

from ..engine.threads import ENV as THREADS_ENV
from ..errors import DerotationError


class Progress:
    """A one-line progress bar on stderr: ``progress(done, total)``."""

    def __init__(
        self, desc: str, stream=None, width: int = 30, unit: str | None = "/s"
    ):
        self.desc = desc
        self.unit = unit
        self.stream = stream or sys.stderr
        self.width = width
        self.t0 = time.perf_counter()
        self._last = -1.0

    def __call__(self, done: int, total: int):
        now = time.perf_counter()
        if done < total and now - self._last < 0.1:
            return None
        self._last = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * self.width)
        end = "\n" if done >= total else ""
        if self.unit:
            rate = done / max(now - self.t0, 1e-9)
            count = f"{done}/{total} ({rate:.0f}{self.unit})"
        else:
            count = f"{100 * frac:.0f}%"
        self.stream.write(f"\r{self.desc}: [{bar:<{self.width}}] {count}{end}")
        self.stream.flush()
        return None


def _print_compile_notice(line: str) -> None:
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()


def install_compile_notice() -> None:
    """Say on stderr, once, when a command is about to compile the
    derotation kernels (the first run after installing)."""
    from ..engine._driver import set_compile_notice

    set_compile_notice(_print_compile_notice)


class _ThreadsAction(argparse.Action):
    """``--threads N``: applied as soon as it is parsed."""

    def __call__(self, parser, namespace, values, option_string=None):
        from ..engine.threads import set_threads

        setattr(namespace, self.dest, values)
        set_threads(values)
        # and for worker processes this command starts
        os.environ[THREADS_ENV] = str(values)


def add_threads_argument(p) -> None:
    """``--threads N``: the derotation kernels' thread count (default: the
    CPUs this process may use; see :mod:`napari_derotation.engine.threads`)."""
    p.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        action=_ThreadsAction,
        help="threads for the derotation (default: the CPUs this "
        "process may use, from its affinity and cgroup quota; "
        "or NAPARI_DEROTATION_THREADS)",
    )


def whole(minimum: int = 1, maximum: int | None = None):
    """An argparse type: a whole number in ``[minimum, maximum]``; argparse
    names the option in its one-line error."""

    def convert(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number; got {text!r}"
            ) from None
        if v < minimum or (maximum is not None and v > maximum):
            upper = "" if maximum is None else f" and <= {maximum}"
            raise argparse.ArgumentTypeError(f"must be >= {minimum}{upper}; got {v}")
        return v

    convert.__name__ = "whole number"
    return convert


#: argparse type: a whole number >= 1.
positive_int = whole(1)


def number(*, positive: bool = False, minimum: float | None = None):
    """An argparse type: a finite number (``inf`` and ``nan`` refused),
    ``> 0`` with ``positive``, ``>= minimum`` when given; every number an
    option takes goes through one of these."""

    def convert(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a number; got {text!r}"
            ) from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}")
        if positive and not v > 0:
            raise argparse.ArgumentTypeError(f"must be > 0; got {text!r}")
        if minimum is not None and v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum:g}; got {text!r}")
        return v

    convert.__name__ = "number"
    return convert


#: argparse types: any finite number; a finite number > 0; one >= 0.
finite_float = number()
positive_float = number(positive=True)
nonnegative_float = number(minimum=0.0)


def available_memory() -> int | None:
    """Bytes this process may still allocate: the smaller of the memory
    the system has available and the address-space limit; ``None`` when
    neither is known."""
    limits = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            limits.append(soft)
    except (ImportError, OSError, ValueError):
        pass
    return min(limits) if limits else None


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return ""  # pragma: no cover


def check_memory(nbytes: float, what: str) -> None:
    """Refuse, before allocating, a step that needs more than this process
    may allocate: one :class:`DerotationError` naming ``what`` and both
    sizes."""
    free = available_memory()
    if free is not None and nbytes > free:
        raise DerotationError(
            f"{what} needs about {_size(nbytes)} of memory; {_size(free)} is available"
        )


def add_overwrite_argument(p) -> None:
    """``--overwrite``: without it, a command whose outputs exist stops
    before writing anything."""
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files (default: refuse, "
        "before anything is written)",
    )


def add_angle_check_argument(p) -> None:
    """``--extra-angles-ok``: the option that silences the warning about
    more angles than the movie has lines (read by :func:`warn_angles`)."""
    p.add_argument(
        "--extra-angles-ok",
        action="store_true",
        help="the angle file has more values than the movie has "
        "lines on purpose: do not warn (only the first "
        "frames x rows are used)",
    )


def print_warnings(notes, extra_hint: str | None = None, stream=None) -> list[str]:
    """Print ``notes`` (a job's warnings) as one ``warning:`` line each on
    stderr; ``extra_hint`` is added to the one about extra angles."""
    stream = stream or sys.stderr
    for note in notes:
        if extra_hint and "only the first" in note:
            note = f"{note} ({extra_hint})"
        stream.write(f"warning: {note}\n")
    stream.flush()
    return list(notes)


def warn_angles(angles, shape, args, stream=None) -> list[str]:
    """Print :func:`~napari_derotation.frames.angle_warnings` of ``angles``
    for a movie of ``shape`` (the commands without a job: find-center)."""
    from ..frames import angle_warnings

    notes = angle_warnings(
        angles, shape, extra_lines_ok=getattr(args, "extra_angles_ok", False)
    )
    return print_warnings(
        notes, "--extra-angles-ok if the extra lines are expected", stream
    )


def add_movie_arguments(p) -> None:
    """``--channels``/``--planes``: how to read a plain stack of interleaved
    pages (page order t, then z, then c)."""
    g = p.add_argument_group(
        "movie layout",
        "for plain stacks; ImageJ, OME and ScanImage files say it themselves",
    )
    g.add_argument(
        "--channels",
        type=positive_int,
        metavar="N",
        help="channels interleaved page by page (default 1)",
    )
    g.add_argument(
        "--planes",
        type=positive_int,
        metavar="Z",
        help="planes scanned one after another (default 1)",
    )
    g.add_argument(
        "--allow-missing-chunks",
        action="store_true",
        help="an OME-Zarr store written sparse on purpose: read "
        "its missing chunks as the fill value (else refused)",
    )


#: option -> (DerotationParams field, argparse keywords); the one list of
#: the parameters' options, shared by every command that takes them.
PARAM_OPTIONS = {
    "--center": (
        "center",
        dict(
            type=finite_float,
            nargs=2,
            metavar=("ROW", "COL"),
            help="centre of rotation (default: rows//2, cols//2)",
        ),
    ),
    "--interpolation": (
        "interpolation",
        dict(choices=None, default=None, help="default bilinear"),
    ),
    "--fill": (
        "fill_value",
        dict(
            type=finite_float,
            default=None,
            metavar="VALUE",
            help="value of pixels no scanned line covered (default 0)",
        ),
    ),
    "--plane-tilt": (
        "plane_tilt",
        dict(
            type=finite_float,
            default=None,
            metavar="DEG",
            help="tilt of the rotation plane from the imaging plane (degrees, "
            "default 0; find-center --method ellipse measures it)",
        ),
    ),
    "--plane-orientation": (
        "plane_orientation",
        dict(
            type=finite_float,
            default=None,
            metavar="DEG",
            help="orientation of the tilt axis (degrees, default 0)",
        ),
    ),
    "--angle-delay": (
        "angle_delay",
        dict(
            type=float,
            default=None,
            metavar="LINES",
            help="delay between the angle signal and the scan (lines, sub-line, "
            "may be negative): line i takes the recorded angle of line i - "
            "LINES; positive when the image lags the angle signal (default "
            "0; find-center --delay measures it)",
        ),
    ),
    "--plane-output": (
        "plane_output",
        dict(
            choices=None,
            default=None,
            help="with a tilt: the result in the imaging plane (default) or the "
            "rotation plane",
        ),
    ),
}


def add_params_arguments(p, options=tuple(PARAM_OPTIONS)) -> None:
    """The derotation parameters (:class:`DerotationParams`) as options
    (``options``: which of :data:`PARAM_OPTIONS`), and ``--params FILE``;
    read back by :func:`params_from_args`."""
    from ..engine.params import INTERPOLATION_CODES, PLANE_OUTPUTS

    choices = {
        "--interpolation": sorted(INTERPOLATION_CODES),
        "--plane-output": list(PLANE_OUTPUTS),
    }
    g = p.add_argument_group(
        "derotation parameters", "given options override those read with --params"
    )
    g.add_argument(
        "--params",
        type=Path,
        metavar="FILE.json",
        help="parameters from a JSON file: what find-center --json "
        "printed (the centre, the delay with --delay, and the "
        "plane tilt of an ellipse fit when significant), or "
        "an output's record",
    )
    for option in options:
        kw = dict(PARAM_OPTIONS[option][1])
        if option in choices:
            kw["choices"] = choices[option]
        g.add_argument(option, **kw)


def params_from_args(args):
    """The :class:`DerotationParams` the options of
    :func:`add_params_arguments` ask for: ``--params`` with every option
    given replacing its field."""
    from ..engine.params import DerotationParams

    base = DerotationParams.from_json(args.params) if args.params else None
    given = {
        field: getattr(args, option[2:].replace("-", "_"), None)
        for option, (field, _) in PARAM_OPTIONS.items()
    }
    return DerotationParams.build(base, **given)


# Only the command line imports this module: its derotations say when they
# compile the kernels (the first run after installing waits ~15 s).
install_compile_notice()
