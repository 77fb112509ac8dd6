"""Files the library reads and writes, handled the careful way.

Reading: ``open(path, "rb")`` on a FIFO blocks until some process opens it for
writing (forever, if none does), and a device may never end. Hives and
transaction logs are regular files, so anything else is refused with the error
the C reader gives for it (src/hive/regf_open.c): NotAHiveError, winerror 1017
(ERROR_NOT_REGISTRY_FILE), errno EISDIR for a directory, ENODEV otherwise.

Writing all-or-nothing: an export, a recovered hive or a sample either appears
whole under its name or not at all: the bytes go to a temporary file beside the
target (same directory, so same file system) and an ``os.replace`` puts it in
place only after the last byte was written and flushed to disk. Any failure on
the way (a full disk, a damaged hive met half-way, Ctrl-C) removes the
temporary file and leaves a previous file of that name untouched.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import stat
from collections.abc import Iterator
from typing import IO, Any

from regfast.exceptions import RF_E_UNSUPPORTED_FORMAT, error_from_status

__all__ = ["atomic_output", "not_regular_error", "open_regular"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def not_regular_error(path: str | os.PathLike[str], mode: int) -> OSError:
    """The NotAHiveError for a path whose st_mode is not a regular file."""
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    return error_from_status(
        RF_E_UNSUPPORTED_FORMAT,
        f"{os.fspath(path)!s} is not a regular file ({kind}): hives are read from files",
        os.fspath(path),
        native=errno.EISDIR if stat.S_ISDIR(mode) else errno.ENODEV,
    )


def open_regular(path: str | os.PathLike[str]) -> io.BufferedReader:
    """Opens `path` for binary reading, refusing anything but a regular file
    (NotAHiveError) without blocking: the open is non-blocking, then checked
    with fstat, then made blocking again."""
    nonblock = getattr(os, "O_NONBLOCK", 0)  # Windows has no FIFOs to wait on
    fd = os.open(path, os.O_RDONLY | nonblock | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise not_regular_error(path, mode)
        if nonblock:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


_TMP_SUFFIX = ".regfast-tmp"


def _open_flags() -> int:
    return (
        os.O_WRONLY
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_BINARY", 0)
        | getattr(os, "O_CLOEXEC", 0)
        | getattr(os, "O_NOINHERIT", 0)
    )


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str],
    mode: str = "w",
    *,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    durable: bool = True,
) -> Iterator[IO[Any]]:
    """A file object to write `path` through, all or nothing.

    On a clean exit of the ``with`` block the file is flushed (``fsync`` with
    `durable`, so a crash right after cannot leave an empty file under the
    name) and renamed over `path`; on any exception, KeyboardInterrupt
    included, the temporary file is removed and `path` is left as it was.

    The result behaves like ``open(path, mode)``: a new file gets the mode
    ``open`` would give it (0o666 less the umask), a replaced one keeps its
    mode, a symbolic link is written through (its target is replaced), and an
    existing file that is not writable, or a directory, is refused at once
    with the error ``open`` would raise. A target that exists and is not a
    regular file (``/dev/null``, a FIFO, a terminal) is written directly:
    there is nothing to replace atomically there.

    Parameters
    ----------
    mode
        "w" (text, with `encoding`, `errors`, `newline`) or "wb".
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    text_kw: dict[str, Any] = (
        {} if mode == "wb" else {"encoding": encoding or "utf-8", "errors": errors, "newline": newline}
    )
    target = os.path.realpath(os.fspath(path))
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
    if st is not None and not stat.S_ISREG(st.st_mode):
        with open(target, mode, **text_kw) as f:  # a device or a pipe: write straight in
            yield f
        return
    if st is not None and not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
    folder, base = os.path.split(target)
    while True:
        tmp = os.path.join(folder, f".{base}.{secrets.token_hex(4)}{_TMP_SUFFIX}")
        try:
            # 0o666 through the umask: the permissions open() would give
            fd = os.open(tmp, _open_flags(), 0o666)
            break
        except FileExistsError:
            continue
        except OSError as e:  # name the file the caller gave, and where we tried to write
            raise type(e)(
                e.errno, f"{e.strerror} (creating a temporary file in {folder or '.'})", os.fspath(path)
            ) from None
    try:
        if st is not None and os.name == "posix":
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
        with os.fdopen(fd, mode, **text_kw) as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
