"""``napari-derotation run CONFIG``: the whole pipeline on one dataset."""

from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path

from ..errors import DerotationError
from ._common import Progress, add_overwrite_argument, add_threads_argument

NAME = "run"
ORDER = 30
HELP = (
    "Run the pipeline on one dataset from a config file (the reference's "
    "YAML works): angles from the analog signals, blank value, centre, "
    "derotation; writes the derotated TIFF, angles_per_line.npy, the "
    "per-frame CSV and a JSON record."
)
#: How this command says to replace outputs (see ``cli.describe_error``).
OVERWRITE_HINT = "use --overwrite (or paths_write.overwrite: true)"


def add_arguments(p):
    add_threads_argument(p)
    p.add_argument(
        "config", type=Path, help="config file (.yml, .yaml, .toml) or a dataset folder"
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="DIR",
        help="output folder (default: paths_write."
        "derotated_tiff_folder, else <movie folder>/derotation)",
    )
    p.add_argument(
        "--plots",
        action=__import__("argparse").BooleanOptionalAction,
        default=None,
        help="write debug PNGs (default: the config's debugging_plots)",
    )
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar or stage messages"
    )
    add_overwrite_argument(p)


class Reporter:
    """Stage messages and a progress bar sharing stderr without clobbering."""

    def __init__(self, desc: str, quiet: bool = False, stream=None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.bar = Progress(desc, stream=self, unit=None)
        self._mid_line = False

    def write(self, text):  # used by the Progress bar
        self.stream.write(text)
        self._mid_line = not text.endswith("\n")

    def flush(self):
        self.stream.flush()

    def log(self, message: str):
        if self.quiet:
            return
        if self._mid_line:
            self.stream.write("\n")
            self._mid_line = False
        self.stream.write(message + "\n")
        self.stream.flush()

    def progress(self, done, total):
        if not self.quiet:
            self.bar(done, total)


@contextlib.contextmanager
def warnings_to(report):
    """Show warnings as one ``warning:`` line each through ``report``."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        old = warnings.showwarning
        warnings.showwarning = lambda m, *a, **k: report(f"warning: {m}")
        try:
            yield
        finally:
            warnings.showwarning = old


def load_dataset(path: Path, report):
    """A config file or a dataset folder -> Dataset."""
    # here, not at the top: the pipeline imports scipy.signal (seconds)
    from ..pipeline import Dataset
    from ..pipeline.config import load_config

    if path.is_dir():
        ds = Dataset.from_folder(path)
    else:
        cfg = load_config(path, warn=False)
        ds = Dataset(cfg)
    for note in ds.config.warnings:
        report(f"warning: {path.name}: {note}")
    return ds


def run(args) -> int:
    from ..pipeline import run_dataset

    if not args.config.exists():
        raise DerotationError(f"config file not found: {args.config}")
    rep = Reporter("derotation", quiet=args.quiet)
    with warnings_to(lambda m: print(m, file=sys.stderr)):
        ds = load_dataset(args.config, lambda m: print(m, file=sys.stderr))
        rec = run_dataset(
            ds,
            args.output,
            progress=rep.progress,
            log=rep.log,
            plots=args.plots,
            overwrite=args.overwrite or None,
        )
    print(rec["output"])
    return 0
