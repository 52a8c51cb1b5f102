"""The ``napari-derotation`` command.

Every module in this package that defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int`` is a subcommand; they are
found automatically. Bad input ends with one line on stderr and exit code 2;
Ctrl-C (SIGINT) ends with exit code 130 and SIGTERM (what ``kill``,
``timeout``, SLURM and ``docker stop`` send) with 143, both after removing
every partial output.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import signal
import sys
import threading

from .. import __version__
from ..errors import Cancelled, DerotationError

PROG = "napari-derotation"


def _commands():
    mods = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    return sorted(mods, key=lambda m: getattr(m, "ORDER", 50))


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit code 2, like every other
    bad input (``--help`` still prints the full usage)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Line-by-line derotation of multiphoton movies recorded "
                    "while the sample rotated.")
    parser.add_argument("--version", action="version",
                        version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                parser_class=_Parser)
    for mod in _commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run,
                       _sigterm=getattr(mod, "SIGTERM_CLEANUP", True))
    return parser


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so that every ``with`` block
    (atomic writes, output sets) cleans up as on Ctrl-C."""


@contextlib.contextmanager
def _sigterm_raises(enabled: bool = True):
    """While in the block, SIGTERM raises :class:`Terminated` (once; a
    second SIGTERM during the cleanup is ignored). The previous handler is
    restored after. Only in the main thread (signals go there), and not for
    a command that sets ``SIGTERM_CLEANUP = False`` (the napari GUI)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    # numba's OpenMP threads spin after every parallel region by default; on
    # a machine shared with other jobs the spinning takes the CPU from the
    # work (the centre search, about 30 short derotations, ran twice as slow
    # under load). OpenMP reads this when it loads, at the first derotation,
    # so setting it here is in time; a value the user set wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:           # --help, --version or a usage error
        return int(exc.code or 0)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        with _sigterm_raises(getattr(args, "_sigterm", True)):
            return int(args._run(args) or 0)
    except DerotationError as exc:
        return fail(str(exc))
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        return fail(f"{exc.strerror}: {exc.filename}")
    except OSError as exc:
        return fail(str(exc))
    except Terminated:
        print(f"{PROG}: terminated (SIGTERM); no output written",
              file=sys.stderr)
        return 143
    except (Cancelled, KeyboardInterrupt):
        print(f"{PROG}: cancelled; no output written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
