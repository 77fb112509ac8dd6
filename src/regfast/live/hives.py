"""Registries whose keys are :class:`regfast.Key`: each (root, view, access)
of the live registry is a :class:`regfast.Hive` of its own, behind a backend
of the C library — the remote one (:mod:`regfast.live.remote`, through
regfast-agent) or the NT one in this process (:mod:`regfast.live.local`,
Windows). :class:`HiveRegistry` is what they share: opening roots, keys by
path, the agent-protocol requests the ``rf_*`` API has no call for
(``conn.request``, what :mod:`regfast.live.admin` uses) and closing.
"""

from __future__ import annotations

import threading
from typing import Any

from regfast._native import Hive, Key
from regfast.live import _agent_ops as _ops
from regfast.live import admin
from regfast.live.protocol import Reader, connection_gone
from regfast.live.roots import KEY_ALL_ACCESS, KEY_READ, ROOT_NAMES, _root, _split_path, _view

__all__ = ["HiveRegistry", "Where"]

Where = tuple[int, int, int]  # (root, view, access) of a Hive


class HiveRegistry:
    """The live registry as one regfast.Hive per (root, view, access).

    Subclasses open a root (:meth:`_open_root`), say whether they are
    closed, answer :meth:`key_request` and end their transport
    (:meth:`_end`); they set ``conn`` (an object with ``request(op,
    payload, *, timeout=None, filename=None)`` and ``closed``) and
    ``description``.
    """

    conn: Any
    description: str = ""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hives: dict[Where, Hive] = {}
        self._where: dict[int, Where] = {}
        self._closed = False

    # --- what a backend provides ---------------------------------------------

    def _open_root(self, where: Where) -> Hive:
        raise NotImplementedError

    def _end(self, timeout: float) -> None:
        """Releases the transport once every hive is closed."""

    def key_request(
        self, key: Key, op: int, body: bytes = b"", access: int = 0, *, filename: object = None
    ) -> bytes:
        """An agent request on `key` (its handle, then `body`); `access`: the
        rights the op needs."""
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        return self._closed

    # --- roots ---------------------------------------------------------------

    def _add(self, where: Where, hive: Hive) -> None:
        self._hives[where] = hive
        self._where[id(hive)] = where
        admin.own(hive, self)

    def hive(self, root: int | str, *, view: int | str | None = None, access: int = KEY_READ) -> Hive:
        """The Hive of a root in a view with an access mask (opened at the
        first use, then shared by every key of it)."""
        where = (_root(root), _view(view), int(access))
        with self._lock:
            if self._closed:
                raise connection_gone("the registry connection is closed")
            h = self._hives.get(where)
            if h is None:
                h = self._open_root(where)
                self._add(where, h)
            return h

    def where(self, key: Key) -> Where:
        """(root, view, access) of a key of this registry."""
        try:
            return self._where[id(key.hive)]
        except KeyError:
            raise ValueError(f"{key!r} is not a key of {self!r}") from None

    def full_path(self, key: Key) -> str:
        """ "HKEY_CURRENT_USER\\Software\\..." of a key of this registry."""
        r = ROOT_NAMES.get(self.where(key)[0], "?")
        return f"{r}\\{key.path}" if key.path else r

    # --- keys --------------------------------------------------------------

    def open_key(
        self, root: int | str, path: str = "", *, view: int | str | None = None, access: int = KEY_READ
    ) -> Key:
        """Opens a key (a :class:`regfast.Key`). `root`: HKLM, HKCU, HKU,
        HKCR, HKCC or their names; `view`: 'native', 64 or 32; `access`:
        KEY_READ by default, KEY_ALL_ACCESS to write.

        Raises FileNotFoundError (winerror 2) for a missing key,
        PermissionError (5) when access is denied."""
        root_key = self.hive(root, view=view, access=access).root
        p = _split_path(path)
        return root_key.open(p) if p else root_key

    def create_key(
        self,
        root: int | str,
        path: str,
        *,
        view: int | str | None = None,
        access: int = KEY_ALL_ACCESS,
        volatile: bool = False,
    ) -> Key:
        """Creates a key and its missing parents, or opens it (RegCreateKeyExW)."""
        return self.hive(root, view=view, access=access).root.create_key(_split_path(path), volatile=volatile)

    def delete_key(
        self, root: int | str, path: str, *, view: int | str | None = None, tree: bool = False
    ) -> None:
        """Deletes a key (with `tree`, its whole subtree)."""
        self.hive(root, view=view, access=KEY_ALL_ACCESS).root.delete_key(_split_path(path), tree=tree)

    # --- over the connection (no rf_* call for these) ---------------------------

    def ping(self, data: bytes = b"", timeout: float | None = None) -> bytes:
        """The agent (or the in-process handler) echoes `data`."""
        return bytes(self.conn.request(_ops.OP_PING, data, timeout=timeout))

    def stats(self) -> dict[str, int]:
        """The serving side's counters."""
        r = Reader(self.conn.request(_ops.OP_STATS))
        return {"handles_open": r.u32(), "watches": r.u32(), "frames": r.u64(), "bad_frames": r.u64()}

    def privileges(self, *names: str) -> Any:
        """As :meth:`regfast.live.registry.Registry.privileges` (the serving process's token)."""
        return admin.privileges(self, *names)

    def privilege_state(self, *names: str) -> dict[str, tuple[bool, bool]]:
        """{name: (held, enabled)} for the serving process's token."""
        return admin.privilege_state(self, *names)

    def load_hive(self, root: int | str, name: str, path: Any) -> Key:
        """regfast.load_hive(self, root, name, path)."""
        key: Key = admin.load_hive(self, root, name, path)
        return key

    def unload_hive(self, root: int | str, name: str) -> None:
        """regfast.unload_hive(self, root, name)."""
        admin.unload_hive(self, root, name)

    def load_app_hive(self, path: Any, **kw: Any) -> Any:
        """regfast.load_app_hive(self, path)."""
        return admin.load_app_hive(self, path, **kw)

    # --- closing ---------------------------------------------------------------

    def close(self, timeout: float = 5.0) -> None:
        """Closes every hive, then the transport. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            hives = list(self._hives.values())
            self._hives.clear()
        for h in hives:
            h.close()
        self._end(timeout)

    def __enter__(self) -> HiveRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
