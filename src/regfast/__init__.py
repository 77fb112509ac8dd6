"""regfast — fast Windows Registry access for Python.

Offline hives (regf files: SYSTEM, SOFTWARE, NTUSER.DAT, Amcache.hve ...) are
read on any OS straight from an mmap, without copies::

    import regfast
    with regfast.open_hive("SOFTWARE") as hive:
        key = hive.open(r"Microsoft\\Windows NT\\CurrentVersion")
        key["ProductName"]                    # str / int / list[str] / bytes
        key.value_raw("DigitalProductId")     # (type, memoryview into the hive)

Errors are OSError subclasses carrying ``winerror``, as with the stdlib
``winreg``: a missing key or value raises FileNotFoundError (winerror 2).
"""
from __future__ import annotations

import os

from regfast._bulk import ScanTable, ValueBatch
from regfast._native import Hive, Key, Value, sd_to_sddl
from regfast._types import (
    REG_BINARY, REG_DWORD, REG_DWORD_BIG_ENDIAN, REG_DWORD_LITTLE_ENDIAN, REG_EXPAND_SZ,
    REG_FULL_RESOURCE_DESCRIPTOR, REG_LINK, REG_MULTI_SZ, REG_NONE, REG_QWORD,
    REG_QWORD_LITTLE_ENDIAN, REG_RESOURCE_LIST, REG_RESOURCE_REQUIREMENTS_LIST, REG_SZ,
    CellSlack, DeletedKey, DeletedValue, HiveInfo, HiveProblem, KeyInfo, filetime_to_datetime, type_name,
)
from regfast.exceptions import (
    ConnectionCutError, NotAHiveError, RegistryConnectionError, RegistryCorruptError, RegistryError,
    RegistryNotFoundError, RegistryPermissionError, RegistryTimeoutError,
)
from regfast.logs import DirtyHiveWarning, RecoveryReport, recover, recovery_of
from regfast.diff import Change, Diff, Snapshot, diff  # noqa: E402  (the function shadows the module)
from regfast.live import (  # noqa: E402  (the live registry, through regfast-agent)
    HKCC, HKCR, HKCU, HKEY_CLASSES_ROOT, HKEY_CURRENT_CONFIG, HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE,
    HKEY_USERS, HKLM, HKU, KEY_ALL_ACCESS, KEY_READ, KEY_WRITE, Registry, connect, open_key,
)
from regfast.watch import awatch, watch  # noqa: E402  (the function shadows the module)
from regfast.transaction import (  # noqa: E402  (the function shadows the module)
    JournalCorruptError, TransactionConflictError, TransactionError, transaction,
)
from regfast import hooks  # noqa: E402  (pre/post callbacks on live operations)
from regfast.profile import profile  # noqa: E402  (the function shadows the module)
from regfast.admin import (  # noqa: E402  (live-registry administration)
    load_app_hive, load_hive, replace_key, restore_key, save_key, unload_hive,
)
from regfast.fleet import scan_many  # noqa: E402  (many hives -> Arrow; pyarrow imported when called)

__version__ = "0.1.0"

__all__ = [
    "open_hive", "Hive", "Key", "Value", "ValueBatch", "ScanTable", "HiveInfo", "HiveProblem", "KeyInfo", "DeletedKey", "DeletedValue", "CellSlack", "sd_to_sddl",
    "RegistryError", "RegistryNotFoundError", "RegistryPermissionError",
    "RegistryCorruptError", "NotAHiveError", "RegistryConnectionError", "ConnectionCutError",
    "RegistryTimeoutError", "filetime_to_datetime", "type_name",
    "REG_NONE", "REG_SZ", "REG_EXPAND_SZ", "REG_BINARY", "REG_DWORD", "REG_DWORD_LITTLE_ENDIAN",
    "REG_DWORD_BIG_ENDIAN", "REG_LINK", "REG_MULTI_SZ", "REG_RESOURCE_LIST",
    "REG_FULL_RESOURCE_DESCRIPTOR", "REG_RESOURCE_REQUIREMENTS_LIST", "REG_QWORD",
    "REG_QWORD_LITTLE_ENDIAN",
    "recover", "recovery_of", "RecoveryReport", "DirtyHiveWarning",
    "diff", "Diff", "Change", "Snapshot",
    "connect", "open_key", "Registry", "watch", "awatch",
    "transaction", "TransactionError", "TransactionConflictError", "JournalCorruptError",
    "hooks", "profile", "scan_many",
    "save_key", "load_hive", "unload_hive", "restore_key", "replace_key", "load_app_hive",
    "HKEY_CLASSES_ROOT", "HKEY_CURRENT_USER", "HKEY_LOCAL_MACHINE", "HKEY_USERS", "HKEY_CURRENT_CONFIG",
    "HKCR", "HKCU", "HKLM", "HKU", "HKCC", "KEY_READ", "KEY_WRITE", "KEY_ALL_ACCESS",
]


def open_hive(path: str | bytes | os.PathLike[str] | os.PathLike[bytes], *, errors: str = "strict",
              lenient: bool = False, logs: str | list | None = "auto", copy: bool = False,
              validate: bool = False) -> Hive:
    """Opens an offline hive file read-only (mmap, zero-copy).

    Parameters
    ----------
    path
        The hive file (SYSTEM, SOFTWARE, NTUSER.DAT, ...): str, bytes (as
        os.fsencode gives) or a path-like object.
    errors
        ``"strict"`` (default): a damaged base block, hbin or cell header
        raises RegistryCorruptError — the base block and the root's hbin at
        open, any other hbin the first time a read reaches into it (the open
        of a 100 MB hive takes microseconds; ``validate=True`` or
        :meth:`Hive.validate` checks them all at once). ``"tolerant"``: forensic mode — a bad
        checksum, a truncated file, bad hbin headers, zeroed pages and cells
        with bad sizes are skipped (the reader resynchronises on the next
        valid hbin) and listed in :attr:`Hive.problems`; everything reachable
        through good cells stays readable. Pair it with
        ``hive.scan(errors="skip")``, which reports keys whose subkeys or
        values sit in a damaged region in its status columns.
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
        :mod:`regfast.logs`.
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
        RegistryCorruptError here, as opens did before (~10 ms per 100 MB).

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
    from regfast.logs import open_with_logs
    from regfast import agent as _agent
    if _agent._hook is not None:     # regfast.hooks / regfast.profile() are on: let them see it
        # stacklevel 5: the lambda, hooks._run, hooks.run_offline, open_hive, its caller
        hive = hooks.run_offline(hooks.OP_OPEN_HIVE, path, lambda: open_with_logs(
            path, logs, lenient, errors=errors, stacklevel=5, copy=copy))
    else:
        hive = open_with_logs(path, logs, lenient, errors=errors, stacklevel=2, copy=copy)
    if validate:
        try:
            hive.validate()
        except BaseException:
            hive.close()
            raise
    return hive
