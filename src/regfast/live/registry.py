"""Opening the live registry: :func:`connect`, :func:`local`, :func:`open_key`.

::

    reg = regfast.connect()                       # wine regfast-agent.exe here; the exe on Windows
    reg = regfast.connect(["ssh", "host", "regfast-agent.exe"])
    with reg.open_key(regfast.HKLM, r"Software\\Microsoft\\Windows NT\\CurrentVersion") as key:
        key["ProductName"]                        # str / int / list[str] / bytes, as offline
        batch = key.read_values(names)            # one request, columns + one data arena
        for change in key.watch():                # regfast.watch(): what changed, not only that
            ...

Every key these return is a :class:`regfast.Key` — the class
:func:`regfast.open_hive` returns, with the same decoder, batches
(:class:`regfast.ValueBatch`) and errors — served by a backend of the C
library: the remote backend through regfast-agent (:mod:`regfast.live.remote`)
or, on Windows in this process, the NT backend (:mod:`regfast.live.local`).
Live keys add writes (set_value, create_key, delete_key, delete_value,
rename, security, snapshots) and watch().
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

from regfast._native import Key
from regfast.live import agent as _exe
from regfast.live import keyops as _keyops  # noqa: F401  (registers the live Key methods)
from regfast.live.hives import HiveRegistry
from regfast.live.local import LocalRegistry
from regfast.live.remote import RemoteRegistry
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
    KEY_NOTIFY,
    KEY_READ,
    KEY_WRITE,
)

__all__ = [
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
    "KEY_NOTIFY",
    "connect",
    "local",
    "open_key",
    "Registry",
]

#: What :func:`connect` and :func:`local` return: a registry whose keys are
#: :class:`regfast.Key` (the name user code has always used).
Registry = HiveRegistry


def connect(
    cmd: Sequence[str] | None = None,
    *,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
    backend: str = "remote",
) -> RemoteRegistry:
    """Starts regfast-agent and returns the live registry it serves, through
    the C remote backend (a :class:`regfast.live.remote.RemoteRegistry`: its
    keys are :class:`regfast.Key` objects).

    Parameters
    ----------
    cmd
        The command that runs the agent: e.g. ``["wine", path]``,
        ``["ssh", "host", "regfast-agent.exe"]``. Default: the agent found by
        :func:`regfast.live.agent.agent_path`, run directly on Windows and with
        Wine elsewhere.
    timeout
        Seconds any request may wait for its answer (TimeoutError after; the
        connection is then cut: see :mod:`regfast.live.remote`).
    env
        Environment of the agent process (e.g. WINEPREFIX, WINEDEBUG).
    backend
        "remote", the only one (kept so that code written for the opt-in
        release keeps working).

    Raises
    ------
    ConnectionError
        The agent could not be started or did not complete the handshake.
    FileNotFoundError
        No cmd and no agent built (``python -m regfast.live.agent build``).
    OSError
        winerror 87: `timeout` is not a positive number (0, negative, NaN).
    """
    if backend != "remote":
        raise ValueError(f"backend must be 'remote', not {backend!r}")
    return RemoteRegistry(cmd or _exe.default_command(), timeout=timeout, env=env)


_default: RemoteRegistry | None = None
_local: LocalRegistry | None = None
_default_lock = threading.Lock()


def local(backend: str = "nt") -> LocalRegistry:
    """The live registry of this machine in this process (Windows): a
    :class:`regfast.live.local.LocalRegistry`, whose keys are
    :class:`regfast.Key` objects served by the NT backend through ``rf_*``
    calls (no request bytes, no agent process). One per process, shared by
    every call (a new one once it is closed).

    Raises
    ------
    OSError
        Off Windows: winerror 120 at the first open_key (use :func:`connect`
        and regfast-agent there).
    """
    global _local
    if backend != "nt":
        raise ValueError(f"backend must be 'nt', not {backend!r}")
    with _default_lock:
        if _local is None or _local.closed:
            _local = LocalRegistry()
        return _local


def open_key(
    root: int | str, path: str = "", *, view: int | str | None = None, access: int = KEY_READ
) -> Key:
    """Opens a live key of this machine: on Windows in-process through the
    NT backend (:func:`local`); elsewhere through a process-wide default
    agent started at the first call with :func:`connect`'s defaults (Wine)."""
    global _default
    if sys.platform == "win32":
        return local().open_key(root, path, view=view, access=access)
    with _default_lock:
        if _default is None or _default.closed:
            _default = connect()
        reg = _default
    return reg.open_key(root, path, view=view, access=access)
