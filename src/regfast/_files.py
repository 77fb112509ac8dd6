"""Opening files the reader did not create: refuse what is not a regular file
before reading a byte of it.

``open(path, "rb")`` on a FIFO blocks until some process opens it for writing
(forever, if none does), and a device may never end. Hives and transaction
logs are regular files, so anything else is refused with the error the C
reader gives for it (src/hive/regf_open.c): NotAHiveError, winerror 1017
(ERROR_NOT_REGISTRY_FILE), errno EISDIR for a directory, ENODEV otherwise.
"""
from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

from regfast.exceptions import RF_E_UNSUPPORTED_FORMAT, error_from_status

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def not_regular_error(path: str | os.PathLike, mode: int) -> OSError:
    """The NotAHiveError for a path whose st_mode is not a regular file."""
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    return error_from_status(RF_E_UNSUPPORTED_FORMAT,
                             f"{os.fspath(path)!s} is not a regular file ({kind}): hives are read from files",
                             os.fspath(path), native=errno.EISDIR if stat.S_ISDIR(mode) else errno.ENODEV)


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """Opens `path` for binary reading, refusing anything but a regular file
    (NotAHiveError) without blocking: the open is non-blocking, then checked
    with fstat, then made blocking again."""
    nonblock = getattr(os, "O_NONBLOCK", 0)      # Windows has no FIFOs to wait on
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
