"""The ``napari-derotation`` command.

Every module in this package that defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int`` is a subcommand; they are
found automatically. Bad input ends with one line on stderr and exit code 2;
Ctrl-C (SIGINT) ends with exit code 130 and SIGTERM (what ``kill``,
``timeout``, SLURM and ``docker stop`` send) with 143, both after removing
every partial output.
"""

from __future__ import annotations

# only what is needed before main() runs: Ctrl-C is handled from there on,
# so the rest is imported inside it
import contextlib
import os
import signal
import sys
import threading

from .. import __version__
from ..errors import Cancelled, DerotationError

PROG = "napari-derotation"


def _commands():
    import importlib
    import pkgutil

    mods = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    return sorted(mods, key=lambda m: getattr(m, "ORDER", 50))


def _parser_class():
    import argparse

    class _Parser(argparse.ArgumentParser):
        """Usage errors as one line on stderr and exit code 2, like every
        other bad input (``--help`` still prints the full usage)."""

        def error(self, message):
            self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    return _Parser


def build_parser():
    """The ``argparse`` parser of the command and its subcommands."""
    _Parser = _parser_class()
    parser = _Parser(
        prog=PROG,
        description="Line-by-line derotation of multiphoton movies recorded "
        "while the sample rotated.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for mod in _commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(
            _run=mod.run,
            _sigterm=getattr(mod, "SIGTERM_CLEANUP", True),
            _overwrite_hint=getattr(mod, "OVERWRITE_HINT", OVERWRITE_HINT),
        )
    return parser


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so that every ``with`` block
    (atomic writes, output sets) cleans up as on Ctrl-C."""


def _on_term(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once; not in cleanup
    raise Terminated()


@contextlib.contextmanager
def _sigterm_raises(enabled: bool = True):
    """While in the block, SIGTERM raises :class:`Terminated` (once; a
    second SIGTERM during the cleanup is ignored). The previous handler is
    restored after. Only in the main thread (signals go there), and not for
    a command that sets ``SIGTERM_CLEANUP = False`` (the napari GUI)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


#: How a command line says to replace outputs (a command may say more:
#: ``OVERWRITE_HINT`` in its module).
OVERWRITE_HINT = "use --overwrite"


def describe_error(exc: BaseException, hint: str = OVERWRITE_HINT) -> str | None:
    """One line for an error a command ends with (bad input, the system
    refusing, input too big or too deep to read), or ``None`` for a bug,
    which keeps its traceback."""
    from ..io.atomic import OutputExists

    if isinstance(exc, OutputExists):
        return exc.with_hint(hint)
    if isinstance(exc, DerotationError):
        return str(exc)
    if isinstance(exc, OSError):
        if exc.strerror and exc.filename:
            return f"{exc.strerror}: {exc.filename}"
        return str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        return "out of memory: a step needs more memory than this machine gives" + (
            f" ({exc})" if str(exc) else ""
        )
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to read"
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"cannot read a text input: byte {exc.start} is not "
            f"{exc.encoding} ({exc.reason})"
        )
    return None


def _one_line_warnings(message, category, filename, lineno, file=None, line=None):
    (file or sys.stderr).write(f"warning: {message}\n")


def main(argv=None) -> int:
    script = argv is None
    # Ctrl-C is KeyboardInterrupt (Python's own handler) and SIGTERM
    # Terminated from here on, also while the commands' modules are
    # imported: this module and the package import little
    with _sigterm_raises(), _warnings_one_line(script):
        try:
            return _main(argv)
        except Terminated:
            print(f"{PROG}: terminated (SIGTERM); no output written", file=sys.stderr)
            return 143
        except (Cancelled, KeyboardInterrupt):
            print(f"{PROG}: cancelled; no output written", file=sys.stderr)
            return 130
        except ImportError as exc:
            # a signal that lands while a compiled module is imported comes
            # out as that module's ImportError: still the signal
            cause = _interrupt_in(exc)
            if cause is None:
                raise
            if isinstance(cause, Terminated):
                print(
                    f"{PROG}: terminated (SIGTERM); no output written", file=sys.stderr
                )
                return 143
            print(f"{PROG}: cancelled; no output written", file=sys.stderr)
            return 130
        finally:
            if script:  # done: a late signal changes nothing now
                _ignore_signals()


def _interrupt_in(exc: BaseException):
    """The KeyboardInterrupt (or Terminated) in ``exc``'s chain, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, KeyboardInterrupt):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _ignore_signals() -> None:
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


@contextlib.contextmanager
def _warnings_one_line(enabled: bool = True):
    """Python's warnings as one ``warning:`` line each (the console script;
    a caller of :func:`main` keeps its own way of showing them)."""
    import warnings

    if not enabled:
        yield
        return

    previous = warnings.showwarning
    warnings.showwarning = _one_line_warnings
    try:
        yield
    finally:
        warnings.showwarning = previous


def _main(argv) -> int:
    # numba's OpenMP threads spin after every parallel region by default; on
    # a machine shared with other jobs the spinning takes the CPU from the
    # work (the centre search, about 30 short derotations, ran twice as slow
    # under load). OpenMP reads this when it loads, at the first derotation,
    # so setting it here is in time; a value the user set wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error
        return int(exc.code or 0)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    if not getattr(args, "_sigterm", True):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        return int(args._run(args) or 0)
    except (
        DerotationError,
        OSError,
        MemoryError,
        RecursionError,
        UnicodeDecodeError,
    ) as exc:
        return fail(
            describe_error(exc, getattr(args, "_overwrite_hint", OVERWRITE_HINT))
        )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
