"""Atomic writes: every output appears under its final name only when complete.

Each output is written to a temporary name in its destination folder and
renamed into place; a failure or a cancel leaves nothing behind. Also the
guard that keeps an output off its inputs, the check that every file a
command will write may be written (before the first is), one-line words for
OS errors, and checksums of inputs.

Temporary names are ``.NAME.<host>-<pid>.XXXXXXXX.partial``: a writer killed
outright (SIGKILL, power cut) leaves one behind, and the next write of the
same ``NAME`` on the same host removes it once that process is gone.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..errors import DerotationError

__all__ = ["atomic_path", "write_json", "file_sha256", "check_not_input",
           "OutputSet", "check_writable", "describe_os_error", "write_error",
           "remove_stale_partials", "make_folder"]

#: The hint of :func:`check_writable`'s error when files exist.
OVERWRITE_HINT = "use --overwrite to replace them"


@contextlib.contextmanager
def atomic_path(path, *, overwrite: bool = True,
                suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (``.NAME.<host>-<pid>.XXXX
    .partial`` + ``suffix``, for writers that want an extension); rename it
    to ``path`` when the block completes, delete it if the block raises.

    An OS error (a full disk, a folder one may not write) becomes a
    :class:`DerotationError` naming ``path`` (never the temporary name) and
    the cause in words. With ``overwrite=False`` an existing ``path`` is
    refused first (:func:`check_writable`).
    """
    path = Path(path)
    check_writable([path], overwrite=overwrite)
    remove_stale_partials(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_writer_tag()}.",
                                   suffix=".partial" + suffix,
                                   dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise DerotationError(describe_os_error(exc, path)) from None
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        error = write_error(exc, path)
        if error is not None:
            raise error from None
        raise


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _writer_tag(pid: int | None = None) -> str:
    return f"{_host()}-{os.getpid() if pid is None else pid}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):     # someone else's process: alive
        return True
    return True


def remove_stale_partials(path) -> list[Path]:
    """Remove temporary files of ``path`` left by writers that are gone.

    Only names of the form ``.NAME.<this host>-<pid>.XXXXXXXX.partial``
    whose ``pid`` is not a running process are removed; nothing else (not
    another host's temporary files on a shared folder, not a live writer's).
    Returns the files removed.
    """
    path = Path(path)
    pattern = re.compile(
        rf"^\.{re.escape(path.name)}\.{re.escape(_host())}-(\d+)\."
        rf"[A-Za-z0-9_]+\.partial(\.[A-Za-z0-9]+)?$")
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
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def check_writable(paths: Iterable, *, overwrite: bool = False,
                   hint: str = OVERWRITE_HINT) -> list[Path]:
    """Check, before the first is written, that every one of ``paths`` may
    be written: its folder exists and is writable, it is not a folder, and
    it does not exist (unless ``overwrite``).

    Raises one :class:`DerotationError` naming every existing file (ending
    with ``hint``), or the folder that is missing or not writable. Returns
    the paths.
    """
    paths = [Path(p) for p in paths]
    existing = []
    for p in paths:
        folder = p.parent
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise DerotationError(f"cannot write {p.name}: the output folder "
                                  f"{folder} {what}")
        if not os.access(folder, os.W_OK | os.X_OK):
            code = errno.EROFS if _read_only(folder) else errno.EACCES
            raise DerotationError(describe_os_error(
                OSError(code, os.strerror(code)), p))
        if p.is_dir() and not p.name.lower().endswith(".zarr"):
            raise DerotationError(f"cannot write {p}: it is a folder")
        if os.path.lexists(p):
            existing.append(p)
    if existing and not overwrite:
        names = ", ".join(str(p) for p in existing)
        many = len(existing) > 1
        raise DerotationError(
            f"refusing to replace {'existing files' if many else 'an existing file'}"
            f": {names}; {hint if many else hint.replace(' them', ' it')}")
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
    made = [p for p in (*reversed(folder.parents), folder)
            if not os.path.lexists(p)]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # the deepest part of the path that exists says what went wrong
        missing = folder
        while missing.parent != missing and not os.path.lexists(missing.parent):
            missing = missing.parent
        found = folder if os.path.lexists(folder) else missing.parent
        if not found.is_dir():
            what = ("a file of that name exists" if found == folder
                    else f"{found} is a file, not a folder")
            raise DerotationError(
                f"cannot create the folder {folder}: {what}") from None
        raise DerotationError(describe_os_error(exc, missing)) from None
    return made


def describe_os_error(exc: OSError, path) -> str:
    """One line: what could not be done to ``path`` and why, in words."""
    path = Path(path)
    folder = path.parent
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        why = ("no space left on the device holding" if code == errno.ENOSPC
               else "disk quota exceeded on")
        return (f"cannot write {path}: {why} {folder}; free some space or "
                f"choose another folder")
    if code in (errno.EACCES, errno.EPERM):
        return (f"cannot write to {folder}: permission denied; choose another "
                f"folder")
    if code == errno.EROFS:
        return (f"cannot write to {folder}: the file system is read-only; "
                f"choose another folder")
    if code == errno.EEXIST:
        return f"cannot create {path}: a file of that name exists"
    if code == errno.ENOENT:
        return f"cannot write {path}: the folder {folder} does not exist"
    if code == errno.ENOTDIR:
        return f"cannot write {path}: {folder} is not a folder"
    if code == errno.EISDIR:
        return f"cannot write {path}: it is a folder"
    if code == errno.EFBIG:
        return (f"cannot write {path}: the file is too large for the file "
                f"system holding {folder}")
    if code == errno.EIO:
        return f"cannot write {path}: input/output error on the device"
    if code == errno.ENAMETOOLONG:
        return f"cannot write {path}: the name is too long"
    return f"cannot write {path}: {exc.strerror or exc}"


#: numpy's (``tofile``, under tifffile) messages when the disk takes fewer
#: bytes than it was given: an OSError without an errno (numpy 1 and 2).
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written|"
                          r"[Nn]ot enough free space to write")


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
        if out == _resolved(inp) or (out.exists() and inp.exists()
                                    and os.path.samefile(out, inp)):
            raise DerotationError(
                f"refusing to overwrite the input {inp.name}: choose another "
                f"output path")


def _resolved(path) -> Path:
    """``path`` resolved; a symbolic link loop is a DerotationError."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as exc:      # "Symlink loop", ELOOP
        raise DerotationError(
            f"{path} is a symbolic link loop ({exc}); expected a file or "
            f"folder") from None


class OutputSet:
    """Files that belong together (a movie, its record, its tables): used as
    a context manager, a failure or a cancel removes every file already
    written through :meth:`add`, so no output is left without the others.

    >>> with OutputSet() as out:                    # doctest: +SKIP
    ...     out.add(write_tiff(path, movie))
    ...     out.add(write_json(record_path, rec))   # fails: the TIFF goes too
    """

    def __init__(self):
        self.written: list[Path] = []
        self.folders: list[Path] = []

    def add(self, path) -> Path:
        """Note ``path`` as written (returned unchanged)."""
        self.written.append(Path(path))
        return Path(path)

    def add_folders(self, folders) -> None:
        """Note folders made for these outputs (:func:`make_folder`): on a
        failure they are removed too, if empty."""
        self.folders += [Path(f) for f in folders]

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            for p in reversed(self.written):
                with contextlib.suppress(OSError):
                    if p.is_dir():          # a Zarr store
                        shutil.rmtree(p)
                    else:
                        p.unlink()
            for f in reversed(self.folders):
                with contextlib.suppress(OSError):
                    f.rmdir()           # only if empty
        return False
