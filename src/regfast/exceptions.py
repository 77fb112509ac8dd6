"""regfast's exceptions.

Every error is an :class:`OSError` carrying ``winerror`` (the Win32 error
code), so code written against the standard library's :mod:`winreg` keeps
working: a missing key or value is a :class:`FileNotFoundError` with
``winerror == 2``, access denied a :class:`PermissionError` with 5, and so on.
CPython fills ``OSError.winerror`` only on Windows, so regfast sets it
explicitly everywhere.

All of them also derive from :class:`RegistryError`, so one ``except`` clause
can catch everything regfast raises.
"""

from __future__ import annotations

import errno as _errno
import threading as _threading

__all__ = [
    "RegistryError",
    "RegistryNotFoundError",
    "RegistryPermissionError",
    "RegistryCorruptError",
    "NotAHiveError",
    "RegistryConnectionError",
    "ConnectionCutError",
    "RegistryTimeoutError",
    "error_from_status",
]

# regfast's own status codes (bit 29, the "customer" bit, is set).
RF_CUSTOMER_BIT = 0x20000000
RF_E_CORRUPT = RF_CUSTOMER_BIT | 1
RF_E_UNSUPPORTED_FORMAT = RF_CUSTOMER_BIT | 2
RF_E_IO = RF_CUSTOMER_BIT | 3
RF_E_LIMIT = RF_CUSTOMER_BIT | 4
RF_E_CONNECTION = RF_CUSTOMER_BIT | 5  # the connection to regfast-agent is broken (final)
ERROR_TIMEOUT = 1460  # no answer in time (the connection stays)

# The Win32 code reported as .winerror for regfast's own statuses.
ERROR_REGISTRY_CORRUPT = 1015
ERROR_NOT_REGISTRY_FILE = 1017
ERROR_CONNECTION_ABORTED = 1236
ERROR_IO_DEVICE = 1117  # RF_E_IO: the file could not be read (or vanished under the mapping)
ERROR_NO_SYSTEM_RESOURCES = 1450  # RF_E_LIMIT: a configured limit (max_values...) was reached

# RF_E_IO with the OS's errno: the Win32 code Windows gives the same failure
_IO_WINERROR = {
    _errno.ENAMETOOLONG: 206,  # ERROR_FILENAME_EXCED_RANGE
    _errno.ENOTDIR: 3,  # ERROR_PATH_NOT_FOUND
    _errno.ELOOP: 1921,  # ERROR_CANT_RESOLVE_FILENAME
    _errno.EMFILE: 4,  # ERROR_TOO_MANY_OPEN_FILES
    _errno.ENFILE: 4,
    _errno.ENOMEM: 8,  # ERROR_NOT_ENOUGH_MEMORY
    _errno.ENOSPC: 112,  # ERROR_DISK_FULL
}


class RegistryError(OSError):
    """Base class of every error regfast raises.

    Attributes
    ----------
    winerror : int
        The Win32 error code (``ERROR_FILE_NOT_FOUND`` = 2, ...).
    status : int
        regfast's status code: equal to ``winerror`` for system codes, or one of
        regfast's own codes (bit 29 set) such as ``RF_E_CORRUPT``.
    offset : int or None
        Byte offset in the hive file of the structure at fault, when known.
    """

    winerror: int
    status: int
    offset: int | None

    def __init__(
        self,
        err: int,
        message: str,
        filename: object = None,
        *,
        winerror: int = 0,
        status: int = 0,
        offset: int | None = None,
    ) -> None:
        if filename is None:
            super().__init__(err, message)
        else:
            super().__init__(err, message, filename)
        self.winerror = winerror
        self.status = status or winerror
        self.offset = offset


class RegistryNotFoundError(RegistryError, FileNotFoundError):
    """A key or value does not exist (winerror 2)."""


class RegistryPermissionError(RegistryError, PermissionError):
    """Access denied (winerror 5) or a privilege not held (winerror 1314)."""


class RegistryCorruptError(RegistryError):
    """The hive is damaged. ``offset`` is the file offset of the bad structure
    and ``reason`` says what is wrong with it (winerror 1015)."""

    reason: str

    def __init__(
        self,
        err: int,
        message: str,
        filename: object = None,
        *,
        winerror: int = ERROR_REGISTRY_CORRUPT,
        status: int = RF_E_CORRUPT,
        offset: int | None = None,
    ) -> None:
        super().__init__(err, message, filename, winerror=winerror, status=status, offset=offset)
        self.reason = message


class NotAHiveError(RegistryError):
    """The file is not a regf hive, or a version regfast does not read
    (winerror 1017, ERROR_NOT_REGISTRY_FILE)."""


class RegistryConnectionError(RegistryError, ConnectionError):
    """The connection to regfast-agent is broken: it closed, a frame was cut
    (:class:`ConnectionCutError`, a subclass), or it sent a reply that does
    not parse. Final: every later call on that connection raises it too, so
    one ``except RegistryConnectionError`` catches every dead connection."""


class ConnectionCutError(RegistryConnectionError, ConnectionAbortedError):
    """A frame to or from regfast-agent was cut half-way — a write that timed
    out or was interrupted after its first byte, a response that ended or
    broke mid-frame, a payload whose CRC does not match — so the byte stream
    is out of step and the connection is dead: the call that cut it and
    every later call on it raise this at once (winerror 1236,
    ERROR_CONNECTION_ABORTED; errno ECONNABORTED). The agent discards the
    cut request; connect again to go on. ``__cause__`` holds what cut it
    (Python's agent client); the C remote backend reports it as status 1236."""

    def __init__(
        self,
        err: int,
        message: str,
        filename: object = None,
        *,
        winerror: int = ERROR_CONNECTION_ABORTED,
        status: int = 0,
        offset: int | None = None,
    ) -> None:
        super().__init__(err, message, filename, winerror=winerror, status=status, offset=offset)


class RegistryTimeoutError(RegistryError, TimeoutError):
    """No answer in time (winerror 1460, ERROR_TIMEOUT); the connection stays."""


_ERRNO = {
    2: _errno.ENOENT,
    5: _errno.EACCES,
    6: _errno.EBADF,
    8: _errno.ENOMEM,
    87: _errno.EINVAL,
    161: _errno.EINVAL,
    1314: _errno.EPERM,
}


def error_from_status(
    status: int, message: str, filename: object = None, offset: int | None = None, native: int = 0
) -> RegistryError:
    """Builds the exception for a regfast status code (the one mapping point)."""
    if status == RF_E_CORRUPT:
        where = f" (hive offset 0x{offset:x})" if offset is not None else ""
        return RegistryCorruptError(_errno.EIO, message + where, filename, offset=offset)
    if status == RF_E_UNSUPPORTED_FORMAT:
        # native: EISDIR / ENODEV when the path is a directory, a FIFO or a device
        return NotAHiveError(
            native or _errno.EINVAL,
            message,
            filename,
            winerror=ERROR_NOT_REGISTRY_FILE,
            status=status,
            offset=offset,
        )
    if status == RF_E_IO:
        # also a page of the mapping that vanished (the file truncated while open):
        # errno EIO, the offset of the page
        err = native or _errno.EIO
        win = _IO_WINERROR.get(err, ERROR_IO_DEVICE)
        return RegistryError(err, message, filename, winerror=win, status=status, offset=offset)
    if status == RF_E_CONNECTION:
        return RegistryConnectionError(_errno.EPIPE, message, filename, winerror=0, status=status)
    if status == ERROR_CONNECTION_ABORTED:  # the C remote backend's RF_E_CONNECTION_CUT
        return ConnectionCutError(_errno.ECONNABORTED, message, filename)
    if status == ERROR_TIMEOUT:
        return RegistryTimeoutError(_errno.ETIMEDOUT, message, filename, winerror=status, status=status)
    if status == RF_E_LIMIT:
        return RegistryError(
            _errno.E2BIG, message, filename, winerror=ERROR_NO_SYSTEM_RESOURCES, status=status, offset=offset
        )
    cls: type[RegistryError] = RegistryError
    if status == 2:
        cls = RegistryNotFoundError
    elif status in (5, 1314):
        cls = RegistryPermissionError
    return cls(
        _ERRNO.get(status, _errno.EINVAL), message, filename, winerror=status, status=status, offset=offset
    )


# A Python pre hook (regfast.observe.hooks) that vetoes an rf_* call leaves
# the exception to raise here: the C call only returns 5, "... vetoed by a
# hook" (rf_hook.c), and the binding's check() takes it back.
_hook_veto = _threading.local()


def set_hook_veto(exc: BaseException | None) -> None:
    """Leaves `exc` for the calling thread's next :func:`take_hook_veto`."""
    _hook_veto.exc = exc


def take_hook_veto(message: str) -> BaseException | None:
    """The exception a Python pre hook left for the rf_* call that failed
    with `message` (status 5), once; None when that failure was not a veto."""
    exc: BaseException | None = getattr(_hook_veto, "exc", None)
    if exc is None or "vetoed by a hook" not in message:
        return None
    _hook_veto.exc = None
    return exc
