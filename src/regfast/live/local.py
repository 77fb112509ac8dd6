"""This machine's live registry in this process, through the NT backend
(Windows): the one Key class.

::

    reg = regfast.live.registry.local(backend="nt")
    key = reg.open_key("HKLM", r"Software\\Microsoft\\Windows NT\\CurrentVersion")
    key["ProductName"]                      # a regfast.Key: rf_* calls on the NT backend

:class:`LocalRegistry` opens each (root, view, access) with ``rf_live_open``
(``Hive._live``): reads, batches (NtQueryValueKey into the ValueBatch's
arena), writes, renames, security and snapshots are ``rf_*`` calls in this
process, no request bytes. What ``rf_*`` has no call for (privileges, hive
files, MUI strings, transactions) goes to the agent's request handler
compiled into ``regfast._live`` (:class:`regfast.live.inproc.InProcessConnection`),
with the key reopened there by path for key-level ops.

Built and tested only in the Windows workflow: off Windows, opening a root
raises OSError winerror 120.
"""

from __future__ import annotations

import struct
from typing import Any

from regfast._native import Hive, Key
from regfast.live import _agent_ops as _ops
from regfast.live.hives import HiveRegistry, Where
from regfast.live.inproc import InProcessConnection
from regfast.live.protocol import str16

__all__ = ["LocalRegistry"]


class LocalRegistry(HiveRegistry):
    """The live registry of this machine, in-process (see the module docstring)."""

    def __init__(self, conn: Any = None) -> None:
        super().__init__()
        self.description = "regfast NT backend in-process"
        self._conn = conn

    @property
    def conn(self) -> Any:
        """The in-process agent handler (regfast._live), made at first use."""
        if self._conn is None:
            self._conn = InProcessConnection()  # ImportError off Windows
        return self._conn

    def _open_root(self, where: Where) -> Hive:
        return Hive._live(*where)

    def key_request(
        self, key: Key, op: int, body: bytes = b"", access: int = 0, *, filename: object = None
    ) -> bytes:
        """An agent-protocol request on `key`: the key is opened by path in
        the in-process handler (with `access` added), used, and closed."""
        root, view, have = self.where(key)
        conn = self.conn
        opened = conn.request(
            _ops.OP_OPEN_KEY,
            struct.pack("<IIII", root, view, have | access, 0) + str16(key.path),
            filename=filename or self.full_path(key),
        )
        hid = struct.unpack_from("<I", opened)[0]
        try:
            return bytes(
                conn.request(op, struct.pack("<I", hid) + body, filename=filename or self.full_path(key))
            )
        finally:
            try:
                conn.request(_ops.OP_CLOSE_KEY, struct.pack("<I", hid))
            except OSError:
                pass

    def _end(self, timeout: float) -> None:
        if self._conn is not None:
            self._conn.close(timeout)

    def __repr__(self) -> str:
        return f"<regfast.live.local.LocalRegistry {'closed' if self._closed else 'open'}>"
