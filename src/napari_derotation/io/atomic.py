"""Atomic writes: every output appears under its final name only when complete.

Each output is written to a temporary name in its destination folder and
put in place by :func:`publish`, the one function that gives an output its
final name: without ``overwrite`` it never replaces a file or store that
appeared meanwhile (another writer, another process), so of two racing
writers exactly one wins and the other raises :class:`OutputExists`. A
failure or a cancel leaves nothing behind. Also the guard that keeps an
output off its inputs, the check that every file a command will write may
be written (before the first is), one-line words for OS errors, and
checksums of inputs.

Temporary names are ``.NAME.<host>-<pid>.XXXXXXXX.partial`` (files and
Zarr stores): a writer killed outright (SIGKILL, power cut) leaves one
behind, and the next write of the same ``NAME`` on the same host removes it
once that process is gone.

The library says what is wrong; how to fix it (a command-line flag, a
config key) is added by the caller (see :meth:`OutputExists.with_hint`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..errors import DerotationError

__all__ = [
    "atomic_path",
    "write_json",
    "file_sha256",
    "check_not_input",
    "OutputSet",
    "check_writable",
    "describe_os_error",
    "write_error",
    "remove_stale_partials",
    "make_folder",
    "publish",
    "temp_dir",
    "OutputExists",
]


class OutputExists(DerotationError):
    """An output exists (or appeared while it was being written) and
    replacing it was not asked for. ``paths`` are the files; ``appeared``
    says the file was not there when the run started."""

    def __init__(self, message: str, paths, *, appeared: bool = False):
        super().__init__(message)
        self.paths = [Path(p) for p in paths]
        self.appeared = appeared

    def with_hint(self, how: str) -> str:
        """The message with how to replace the files (``how``, e.g. ``"use
        --overwrite"``), as a command line says it."""
        if self.appeared:
            return f"{self} ({how})"
        them = "them" if len(self.paths) > 1 else "it"
        return f"{self}; {how} to replace {them}"


@contextlib.contextmanager
def atomic_path(path, *, overwrite: bool = True, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (``.NAME.<host>-<pid>.XXXX
    .partial`` + ``suffix``, for writers that want an extension); put it in
    place with :func:`publish` when the block completes, delete it if the
    block raises.

    An OS error (a full disk, a folder one may not write) becomes a
    :class:`DerotationError` naming ``path`` (never the temporary name) and
    the cause in words. With ``overwrite=False`` an existing ``path`` is
    refused first (:func:`check_writable`), and one that appears while the
    block runs is not replaced (:class:`OutputExists`).
    """
    path = Path(path)
    check_writable([path], overwrite=overwrite)
    remove_stale_partials(path)
    tmp = None
    try:
        # a Ctrl-C the moment the file is created is acted on only once
        # the clean-up below knows its name
        with _signals_held():
            tmp = _create_temp(path, suffix, directory=False)
        yield tmp
        publish(tmp, path, overwrite=overwrite)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        error = write_error(exc, path)
        if error is not None:
            raise error from None
        raise


def temp_dir(path) -> Path:
    """A new empty folder beside ``path`` to build a store in (named like
    :func:`atomic_path`'s files, so a dead writer's is removed by the next
    write); :func:`publish` puts it in place."""
    path = Path(path)
    remove_stale_partials(path)
    tmp = None
    try:
        with _signals_held():  # a Ctrl-C meanwhile: the folder is removed
            tmp = _create_temp(path, "", directory=True)
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise DerotationError(describe_os_error(exc, path)) from None
        raise
    return tmp


def _create_temp(path: Path, suffix: str, *, directory: bool) -> Path:
    """Create ``.NAME.<tag>.XXXXXXXX.partial<suffix>`` with the mode a plain
    ``open``/``mkdir`` gives (the kernel applies the umask; the process
    umask is never changed)."""
    for _ in range(100):
        tmp = path.parent / (
            f".{path.name}.{_writer_tag()}.{secrets.token_hex(4)}.partial{suffix}"
        )
        try:
            if directory:
                os.mkdir(tmp, 0o777)
            else:
                os.close(
                    os.open(
                        tmp,
                        os.O_WRONLY
                        | os.O_CREAT
                        | os.O_EXCL
                        | getattr(os, "O_CLOEXEC", 0),
                        0o666,
                    )
                )
        except FileExistsError:
            continue
        return tmp
    raise OSError(errno.EEXIST, "no free temporary name", str(path))


# ------------------------------------------------------------ publishing

#: ``renameat2`` flags and the "current folder" descriptor (Linux).
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
_renameat2 = None


def _libc_renameat2():
    global _renameat2
    if _renameat2 is None:
        try:
            fn = ctypes.CDLL(None, use_errno=True).renameat2
            fn.argtypes = [
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_uint,
            ]
            fn.restype = ctypes.c_int
            _renameat2 = fn
        except (AttributeError, OSError):
            _renameat2 = False
    return _renameat2 or None


def _rename_noreplace(src: Path, dst: Path) -> bool:
    """``rename(src, dst)`` that fails with ``FileExistsError`` when ``dst``
    exists; ``False`` when the system or file system cannot do it."""
    fn = _libc_renameat2()
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
    if rc == 0:
        return True
    code = ctypes.get_errno()
    if code in (
        errno.EINVAL,
        errno.ENOSYS,
        errno.ENOTSUP,
        getattr(errno, "EOPNOTSUPP", errno.ENOTSUP),
    ):
        return False
    raise OSError(code, os.strerror(code), str(dst))


@contextlib.contextmanager
def _name_lock(path: Path, timeout: float = 30.0) -> Iterator[None]:
    """A lock file ``.NAME.lock`` beside ``path`` (for file systems with
    neither hard links nor ``renameat2``): check-then-rename under it."""
    lock = path.parent / f".{path.name}.lock"
    t0 = time.monotonic()
    while True:
        try:
            os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            with contextlib.suppress(OSError):
                if time.time() - lock.stat().st_mtime > 120:  # a dead writer's
                    lock.unlink()
                    continue
            if time.monotonic() - t0 > timeout:
                raise OSError(
                    errno.EBUSY, f"{lock} is held by another writer", str(path)
                ) from None
            time.sleep(0.05)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()


def _appeared(path: Path) -> OutputExists:
    return OutputExists(
        f"{path} appeared while derotating; not replaced", [path], appeared=True
    )


def publish(tmp, path, *, overwrite: bool = False) -> Path:
    """Give the finished temporary file or folder ``tmp`` its final name
    ``path`` (the one function that does).

    With ``overwrite`` an existing ``path`` is replaced (a store is moved
    aside first and removed after). Without it (and whenever an enclosing
    :class:`OutputSet` says ``overwrite=False``) an existing ``path`` is
    never replaced: a file is hard-linked to ``path`` then its temporary
    name removed (``renameat2(RENAME_NOREPLACE)`` where links are not
    supported, a lock file as the last resort), a store renamed with
    ``RENAME_NOREPLACE``; one that exists raises :class:`OutputExists`.
    The published path joins the enclosing :class:`OutputSet`; SIGINT and
    SIGTERM are held until it has.
    """
    tmp, path = Path(tmp), Path(path)
    sets = _open_sets()
    overwrite = overwrite and all(s.overwrite for s in sets)
    with _signals_held():
        if tmp.is_dir():
            _publish_dir(tmp, path, overwrite)
        elif overwrite:
            os.replace(tmp, path)
        else:
            _publish_file(tmp, path)
        if sets:
            sets[-1].add(path)
    return path


def _publish_file(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path, follow_symlinks=False)
    except FileExistsError:
        raise _appeared(path) from None
    except OSError as exc:
        if exc.errno not in (
            errno.EPERM,
            errno.ENOTSUP,
            errno.EXDEV,
            errno.EMLINK,
            errno.EACCES,
            getattr(errno, "EOPNOTSUPP", errno.ENOTSUP),
        ):
            raise
        try:
            if _rename_noreplace(tmp, path):
                return
        except FileExistsError:
            raise _appeared(path) from None
        with _name_lock(path):
            if os.path.lexists(path):
                raise _appeared(path) from None
            os.rename(tmp, path)
        return
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _publish_dir(tmp: Path, path: Path, overwrite: bool) -> None:
    old = None
    if overwrite and os.path.lexists(path):
        old = temp_dir(path)  # moved aside, removed after
        os.rename(path, old / path.name)
    try:
        try:
            done = _rename_noreplace(tmp, path)
        except FileExistsError:
            raise _appeared(path) from None
        if not done:
            with _name_lock(path):
                if os.path.lexists(path):
                    raise _appeared(path) from None
                os.rename(tmp, path)
    except BaseException:
        if old is not None and not os.path.lexists(path):
            os.rename(old / path.name, path)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


class _Held:
    signum = None


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT/SIGTERM noted, not acted on, while in the block (the main
    thread only: handlers can be set nowhere else); a noted signal is
    handed to its handler when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = _Held()

    def note(signum, frame):
        held.signum = held.signum or signum

    saved = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):
            saved[sig] = signal.signal(sig, note)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        if held.signum is not None:
            handler = saved.get(held.signum)
            if callable(handler):
                handler(held.signum, None)
            elif handler != signal.SIG_IGN:
                os.kill(os.getpid(), held.signum)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _writer_tag(pid: int | None = None) -> str:
    return f"{_host()}-{os.getpid() if pid is None else pid}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # someone else's process: alive
        return True
    return True


def remove_stale_partials(path) -> list[Path]:
    """Remove temporary files and stores of ``path`` left by writers that
    are gone.

    Only names of the form ``.NAME.<this host>-<pid>.XXXXXXXX.partial``
    whose ``pid`` is not a running process are removed; nothing else (not
    another host's temporary files on a shared folder, not a live writer's).
    Returns what was removed.
    """
    path = Path(path)
    pattern = re.compile(
        rf"^\.{re.escape(path.name)}\.{re.escape(_host())}-(\d+)\."
        rf"[A-Za-z0-9_]+\.partial(\.[A-Za-z0-9]+)?$"
    )
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if not m or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):  # a Zarr store
                shutil.rmtree(entry.path)
                removed.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def check_writable(paths: Iterable, *, overwrite: bool = False) -> list[Path]:
    """Check, before the first is written, that every one of ``paths`` may
    be written: its folder exists and is writable, it is not a folder, and
    it does not exist (unless ``overwrite``).

    Raises one :class:`OutputExists` naming every existing file, or a
    :class:`DerotationError` naming the folder that is missing or not
    writable. Returns the paths.
    """
    paths = [Path(p) for p in paths]
    existing = []
    for p in paths:
        folder = p.parent
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise DerotationError(
                f"cannot write {p.name}: the output folder {folder} {what}"
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            code = errno.EROFS if _read_only(folder) else errno.EACCES
            raise DerotationError(
                describe_os_error(OSError(code, os.strerror(code)), p)
            )
        if p.is_dir() and not p.name.lower().endswith(".zarr"):
            raise DerotationError(f"cannot write {p}: it is a folder")
        if os.path.lexists(p):
            existing.append(p)
    if existing and not overwrite:
        names = ", ".join(str(p) for p in existing)
        many = len(existing) > 1
        raise OutputExists(
            f"refusing to replace {'existing files' if many else 'an existing file'}"
            f": {names}",
            existing,
        )
    return paths


def _read_only(folder) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def make_folder(folder) -> list[Path]:
    """Create ``folder`` and its parents if missing; return the folders
    made (outermost first), which :meth:`OutputSet.add_folders` removes
    again, if still empty, when the outputs fail. An OS error (a file in
    the way, a folder one may not write) becomes a one-line
    :class:`DerotationError`."""
    folder = Path(folder)
    made = [p for p in (*reversed(folder.parents), folder) if not os.path.lexists(p)]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # the deepest part of the path that exists says what went wrong
        missing = folder
        while missing.parent != missing and not os.path.lexists(missing.parent):
            missing = missing.parent
        found = folder if os.path.lexists(folder) else missing.parent
        if not found.is_dir():
            what = (
                "a file of that name exists"
                if found == folder
                else f"{found} is a file, not a folder"
            )
            raise DerotationError(
                f"cannot create the folder {folder}: {what}"
            ) from None
        raise DerotationError(describe_os_error(exc, missing)) from None
    return made


def describe_os_error(exc: OSError, path) -> str:
    """One line: what could not be done to ``path`` and why, in words."""
    path = Path(path)
    folder = path.parent
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        why = (
            "no space left on the device holding"
            if code == errno.ENOSPC
            else "disk quota exceeded on"
        )
        return (
            f"cannot write {path}: {why} {folder}; free some space or "
            f"choose another folder"
        )
    if code in (errno.EACCES, errno.EPERM):
        return f"cannot write to {folder}: permission denied; choose another folder"
    if code == errno.EROFS:
        return (
            f"cannot write to {folder}: the file system is read-only; "
            f"choose another folder"
        )
    if code == errno.EEXIST:
        return f"cannot create {path}: a file of that name exists"
    if code == errno.ENOENT:
        return f"cannot write {path}: the folder {folder} does not exist"
    if code == errno.ENOTDIR:
        return f"cannot write {path}: {folder} is not a folder"
    if code == errno.EISDIR:
        return f"cannot write {path}: it is a folder"
    if code == errno.EFBIG:
        return (
            f"cannot write {path}: the file is too large for the file "
            f"system holding {folder}"
        )
    if code == errno.EIO:
        return f"cannot write {path}: input/output error on the device"
    if code == errno.ENAMETOOLONG:
        return f"cannot write {path}: the name is too long"
    return f"cannot write {path}: {exc.strerror or exc}"


#: numpy's (``tofile``, under tifffile) messages when the disk takes fewer
#: bytes than it was given: an OSError without an errno (numpy 1 and 2).
_SHORT_WRITE = re.compile(
    r"\d+ requested and \d+ written|"
    r"[Nn]ot enough free space to write"
)


def write_error(exc: BaseException, path) -> DerotationError | None:
    """The :class:`DerotationError` an error met while writing ``path``
    becomes (an OS error, or tifffile's short write on a full disk), or
    ``None`` for other errors, which propagate as they are."""
    if isinstance(exc, DerotationError):
        return None
    if isinstance(exc, OSError | ValueError) and _SHORT_WRITE.search(str(exc)):
        exc = OSError(errno.ENOSPC, "No space left on device")
    if isinstance(exc, OSError):
        return DerotationError(describe_os_error(exc, path))
    return None


def write_json(path, obj, *, overwrite: bool = True) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    return Path(path)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def file_sha256(path, *, chunk: int = 1 << 24) -> str:
    """SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_not_input(output, *inputs) -> None:
    """Refuse to write ``output`` over any of ``inputs``."""
    out = _resolved(output)
    for inp in inputs:
        if inp is None:
            continue
        inp = Path(inp)
        if out == _resolved(inp) or (
            out.exists() and inp.exists() and os.path.samefile(out, inp)
        ):
            raise DerotationError(
                f"refusing to overwrite the input {inp.name}: choose another "
                f"output path"
            )


def _resolved(path) -> Path:
    """``path`` resolved; a symbolic link loop is a DerotationError."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as exc:  # "Symlink loop", ELOOP
        raise DerotationError(
            f"{path} is a symbolic link loop ({exc}); expected a file or folder"
        ) from None


_LOCAL = threading.local()


def _open_sets() -> list:
    """The :class:`OutputSet` blocks open in this thread, outermost first."""
    if not hasattr(_LOCAL, "sets"):
        _LOCAL.sets = []
    return _LOCAL.sets


class OutputSet:
    """Files that belong together (a movie, its record, its tables): used as
    a context manager, a failure or a cancel removes every file already
    written, so no output is left without the others. Every file
    :func:`publish` puts in place inside the block (in this thread) joins
    the set; :meth:`add` notes others. With ``overwrite=False`` nothing
    published inside the block replaces an existing file, whatever the
    writer was told (:class:`OutputExists`). A set that completes inside
    another hands its files to the outer one.

    >>> with OutputSet() as out:                    # doctest: +SKIP
    ...     write_tiff(path, movie)
    ...     write_json(record_path, rec)            # fails: the TIFF goes too
    """

    def __init__(self, *, overwrite: bool = True):
        self.written: list[Path] = []
        self.folders: list[Path] = []
        self.overwrite = bool(overwrite)

    def add(self, path) -> Path:
        """Note ``path`` as written (returned unchanged)."""
        if Path(path) not in self.written:
            self.written.append(Path(path))
        return Path(path)

    def add_folders(self, folders) -> None:
        """Note folders made for these outputs (:func:`make_folder`): on a
        failure they are removed too, if empty."""
        self.folders += [Path(f) for f in folders]

    def __enter__(self) -> OutputSet:
        _open_sets().append(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        sets = _open_sets()
        with _signals_held():
            if self in sets:
                sets.remove(self)
            if exc_type is None:
                if sets:  # the outer set owns them now
                    for p in self.written:
                        sets[-1].add(p)
                    sets[-1].folders += self.folders
                return False
            for p in reversed(self.written):
                with contextlib.suppress(OSError):
                    if p.is_dir() and not p.is_symlink():  # a Zarr store
                        shutil.rmtree(p)
                    else:
                        p.unlink()
            for f in reversed(self.folders):
                with contextlib.suppress(OSError):
                    f.rmdir()  # only if empty
        return False
