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

This module only re-exports the public names. The layers, lowest first
(docs/ARCHITECTURE.md): the binding (``_native``, ``_bulk``, ``_columns``,
``_types``, ``exceptions``, ``paths``, ``arrow``), then :mod:`regfast.hive`,
:mod:`regfast.io`, :mod:`regfast.live`, :mod:`regfast.observe` and
:mod:`regfast.cli`; ``regfast.dask`` and ``regfast.pytest_plugin`` plug
regfast into those libraries. A module imports only from layers below it.
"""

from __future__ import annotations

from regfast._bulk import ScanTable, ValueBatch
from regfast._native import Hive, Key, Value, sd_to_sddl
from regfast._types import (
    REG_BINARY,
    REG_DWORD,
    REG_DWORD_BIG_ENDIAN,
    REG_DWORD_LITTLE_ENDIAN,
    REG_EXPAND_SZ,
    REG_FULL_RESOURCE_DESCRIPTOR,
    REG_LINK,
    REG_MULTI_SZ,
    REG_NONE,
    REG_QWORD,
    REG_QWORD_LITTLE_ENDIAN,
    REG_RESOURCE_LIST,
    REG_RESOURCE_REQUIREMENTS_LIST,
    REG_SZ,
    CellSlack,
    DeletedKey,
    DeletedValue,
    HiveInfo,
    HiveProblem,
    KeyInfo,
    filetime_to_datetime,
    type_name,
)
from regfast.exceptions import (
    ConnectionCutError,
    NotAHiveError,
    RegistryConnectionError,
    RegistryCorruptError,
    RegistryError,
    RegistryNotFoundError,
    RegistryPermissionError,
    RegistryTimeoutError,
)
from regfast.hive.compare import diff
from regfast.hive.diff import Change, Diff, Snapshot
from regfast.hive.logs import DirtyHiveWarning, RecoveryReport, recover, recovery_of
from regfast.hive.open import open_hive
from regfast.io.fleet import scan_many  # many hives -> Arrow; pyarrow imported when called
from regfast.live.admin import (
    load_app_hive,
    load_hive,
    replace_key,
    restore_key,
    save_key,
    unload_hive,
)
from regfast.live.registry import Registry, connect, open_key
from regfast.live.roots import (
    HKCC,
    HKCR,
    HKCU,
    HKEY_CLASSES_ROOT,
    HKEY_CURRENT_CONFIG,
    HKEY_CURRENT_USER,
    HKEY_LOCAL_MACHINE,
    HKEY_USERS,
    HKLM,
    HKU,
    KEY_ALL_ACCESS,
    KEY_READ,
    KEY_WRITE,
)
from regfast.live.transaction import (
    JournalCorruptError,
    TransactionConflictError,
    TransactionError,
    transaction,
)
from regfast.live.watch import awatch, watch
from regfast.observe import hooks  # the module: regfast.hooks.pre / post
from regfast.observe.profile import profile

__version__ = "0.1.0"

__all__ = [
    "open_hive",
    "Hive",
    "Key",
    "Value",
    "ValueBatch",
    "ScanTable",
    "HiveInfo",
    "HiveProblem",
    "KeyInfo",
    "DeletedKey",
    "DeletedValue",
    "CellSlack",
    "sd_to_sddl",
    "RegistryError",
    "RegistryNotFoundError",
    "RegistryPermissionError",
    "RegistryCorruptError",
    "NotAHiveError",
    "RegistryConnectionError",
    "ConnectionCutError",
    "RegistryTimeoutError",
    "filetime_to_datetime",
    "type_name",
    "REG_NONE",
    "REG_SZ",
    "REG_EXPAND_SZ",
    "REG_BINARY",
    "REG_DWORD",
    "REG_DWORD_LITTLE_ENDIAN",
    "REG_DWORD_BIG_ENDIAN",
    "REG_LINK",
    "REG_MULTI_SZ",
    "REG_RESOURCE_LIST",
    "REG_FULL_RESOURCE_DESCRIPTOR",
    "REG_RESOURCE_REQUIREMENTS_LIST",
    "REG_QWORD",
    "REG_QWORD_LITTLE_ENDIAN",
    "recover",
    "recovery_of",
    "RecoveryReport",
    "DirtyHiveWarning",
    "diff",
    "Diff",
    "Change",
    "Snapshot",
    "connect",
    "open_key",
    "Registry",
    "watch",
    "awatch",
    "transaction",
    "TransactionError",
    "TransactionConflictError",
    "JournalCorruptError",
    "hooks",
    "profile",
    "scan_many",
    "save_key",
    "load_hive",
    "unload_hive",
    "restore_key",
    "replace_key",
    "load_app_hive",
    "HKEY_CLASSES_ROOT",
    "HKEY_CURRENT_USER",
    "HKEY_LOCAL_MACHINE",
    "HKEY_USERS",
    "HKEY_CURRENT_CONFIG",
    "HKCR",
    "HKCU",
    "HKLM",
    "HKU",
    "HKCC",
    "KEY_READ",
    "KEY_WRITE",
    "KEY_ALL_ACCESS",
]
