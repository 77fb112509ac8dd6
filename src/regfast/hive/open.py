"""``regfast.open_hive``: an offline hive file, its transaction logs replayed
when it is dirty (:mod:`regfast.hive.logs`), as a :class:`regfast.Hive`."""

from __future__ import annotations

import os
from collections.abc import Callable

from regfast._native import Hive
from regfast.hive.logs import LogsArg, PathArg, open_with_logs

__all__ = ["open_hive"]

# The hook point of the one hooked offline operation. regfast.observe.hooks
# sets it while a hook or a profiler is active (and back to None after), so
# that this layer does not import the one above it; called as
# _hook(path, open) where open() opens the hive.
_hook: Callable[[str, Callable[[], Hive]], Hive] | None = None


def open_hive(
    path: PathArg,
    *,
    errors: str = "strict",
    lenient: bool = False,
    logs: LogsArg = "auto",
    copy: bool = False,
    validate: bool = False,
) -> Hive:
    """Opens an offline hive file read-only (mmap, zero-copy).

    Parameters
    ----------
    path
        The hive file (SYSTEM, SOFTWARE, NTUSER.DAT, ...): str, bytes (as
        os.fsencode gives) or a path-like object.
    errors
        ``"strict"`` (default): a damaged base block, hbin or cell header
        raises RegistryCorruptError -- the base block and the root's hbin at
        open, any other hbin the first time a read reaches into it (so the
        open of a 100 MB hive takes microseconds; ``validate=True`` or
        :meth:`Hive.validate` checks them all at once). ``"tolerant"``: forensic mode — a bad
        checksum, a truncated file, bad hbin headers, zeroed pages and cells
        with bad sizes are skipped (the reader resynchronises on the next
        valid hbin) and listed in :attr:`Hive.problems`; everything reachable
        through good cells stays readable. Such a hive's ``scan()`` and
        ``walk()`` default to ``errors="skip"``: the scan reports keys whose
        subkeys or values sit in a damaged region in its status columns.
    lenient
        Deprecated form of tolerance, kept for compatibility: keeps only the
        readable prefix of the hbins (stops at the first bad one) and records
        nothing. Prefer ``errors="tolerant"``.
    logs
        Transaction logs to replay into a private in-memory copy when the
        hive is dirty (or when they hold entries newer than it): "auto"
        (``path`` + .LOG/.LOG1/.LOG2, any case), a list of log paths, or
        None (no replay). Files are never written. A dirty hive read
        without its logged changes gives a :class:`DirtyHiveWarning`.
        What happened: :func:`regfast.recovery_of` (hive) — see
        :mod:`regfast.hive.logs`.
    copy
        Read the file into a private in-memory copy instead of mapping it.
        A mapped hive reads the file as it is: another process changing it
        in place gives wrong answers or RegistryCorruptError (never a read
        outside the file), and one truncating it makes the reads of the lost
        pages raise RegistryError (errno EIO) from regfast's C code and its
        decoders -- but a memoryview you hold into the mapping (Value.data,
        value_raw, Hive.cell, ScanTable.value_data) ends the process with
        SIGBUS when touched after such a truncation. A copy sees none of
        that, at the cost of reading the whole file up front.
    validate
        Check every hbin and cell header before returning (strict opens
        check each hbin when first used): a damaged hive then raises
        RegistryCorruptError here, as every strict open did before lazy
        checking (~10 ms per 100 MB).

    Returns
    -------
    Hive
        A context manager; use ``with regfast.open_hive(p) as hive:``.

    Raises
    ------
    ValueError
        `errors` is neither "strict" nor "tolerant".
    FileNotFoundError
        The file does not exist (winerror 2).
    NotAHiveError
        The file is not a regf hive, or a version other than 1.3-1.6, or
        not a regular file at all (a FIFO, a directory, a device: refused
        before reading, errno ENODEV / EISDIR).
    RegistryCorruptError
        The base block or the root's hbin (with validate=True: any hbin) is
        damaged; ``.offset`` says where (with errors="tolerant": only when
        not even the base block is usable).
    """
    if errors not in ("strict", "tolerant"):
        raise ValueError(f"errors must be 'strict' or 'tolerant', got {errors!r}")
    # one spelling from here on (the log search works on str): bytes and
    # bytes path-likes decode as the OS encodes them, so they round-trip
    path = os.fsdecode(os.fspath(path))
    if "\0" in path:  # refused as open() does: C would open the file named before it
        raise ValueError("embedded null byte")
    hook = _hook
    if hook is not None:  # regfast.hooks / regfast.profile() are on: let them see it
        # stacklevel 5: the lambda, hooks._run, hooks.run_offline (the hook: a
        # functools.partial adds no frame), open_hive, its caller
        hive = hook(path, lambda: open_with_logs(path, logs, lenient, errors=errors, stacklevel=5, copy=copy))
    else:
        hive = open_with_logs(path, logs, lenient, errors=errors, stacklevel=2, copy=copy)
    if validate:
        try:
            hive.validate()
        except BaseException:
            hive.close()
            raise
    return hive
