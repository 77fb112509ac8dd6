"""The live registry, through regfast-agent (see :mod:`regfast.live.protocol`).

::

    reg = regfast.connect()                       # wine regfast-agent.exe here; the exe on Windows
    reg = regfast.connect(["ssh", "host", "regfast-agent.exe"])
    with reg.open_key(regfast.HKLM, r"Software\\Microsoft\\Windows NT\\CurrentVersion") as key:
        key["ProductName"]                        # str / int / list[str] / bytes, as offline
        batch = key.read_values(names)            # one request, columns + one data arena
        for change in key.watch():                # regfast.watch(): what changed, not only that
            ...

A live :class:`Key` has the offline Key's methods and return types (names,
subkeys(), values(), value(), key[name], get(), read_values() -> a batch with
the same columns and methods, info() -> KeyInfo...), and the same errors
(regfast.exceptions, via error_from_status: a missing key or value is a
FileNotFoundError with winerror 2). It adds writes (set_value, create_key,
delete_key, delete_value), watch(), and close().
"""

from __future__ import annotations

import datetime as _dt
import struct
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal, overload

import numpy as np

from regfast._bulk import malformed_mask
from regfast._native import sd_to_sddl, value_well_formed
from regfast._types import (
    REG_DWORD,
    REG_DWORD_BIG_ENDIAN,
    REG_EXPAND_SZ,
    REG_LINK,
    REG_QWORD,
    REG_SZ,
    KeyInfo,
    filetime_to_datetime,
    type_name,
)
from regfast.exceptions import error_from_status
from regfast.hive.diff import Snapshot, decode_data, fold
from regfast.io.writer import _shorthand_value, encode_value_data
from regfast.live import _agent_ops as _ops
from regfast.live import admin
from regfast.live import agent as _exe
from regfast.live import protocol as _agent
from regfast.live.inproc import InProcessConnection
from regfast.live.local import LocalRegistry
from regfast.live.protocol import Connection, Reader, str16
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
    ROOT_NAMES,
    _root,
    _split_path,
    _view,
)
from regfast.live.snapshot import parse_snapshot
from regfast.live.watch import watch

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
    "Key",
    "Value",
    "ValueBatch",
]

# ---------------------------------------------------------------------------
# Values and batches
# ---------------------------------------------------------------------------


class Value:
    """A value read from the live registry: name, type, size, data
    (read-only memoryview of a private copy), value (decoded), raw()."""

    __slots__ = ("key", "name", "type", "_data")

    def __init__(self, key: Key, name: str, vtype: int, data: bytes) -> None:
        self.key = key
        self.name = name
        self.type = vtype
        self._data = data

    @property
    def hive(self) -> Registry:
        return self.key.hive

    @property
    def size(self) -> int:
        return len(self._data)

    @property
    def offset(self) -> int:
        return 0

    @property
    def data(self) -> memoryview:
        return memoryview(self._data).toreadonly()

    @property
    def value(self) -> Any:
        return decode_data(self.type, self._data, self.name)

    @property
    def well_formed(self) -> bool:
        """False when the size does not fit the type (see regfast.Value.well_formed)."""
        return value_well_formed(self.type, len(self._data))

    def raw(self) -> bytes:
        return bytes(self._data)

    def __repr__(self) -> str:
        return f"<regfast.live.registry.Value {self.name!r} {type_name(self.type)} {len(self._data)} bytes>"


_ROW = np.dtype(
    [
        ("type", "<u4"),
        ("status", "<i4"),
        ("length", "<u4"),
        ("data_off", "<u4"),
        ("name_off", "<u4"),
        ("name_len", "<u4"),
    ]
)


class ValueBatch:
    """Many values of one live key, read by one request (Key.read_values):
    the same columns and methods as the offline ValueBatch. ``offset`` points
    into ``mapping`` (the frame's data arena, one buffer for every row).
    Malformed rows (see the offline ValueBatch) have status 13, ``malformed``
    True and their data."""

    def __init__(self, key: Key, names: list[str], rows: np.ndarray, arena: bytes) -> None:
        self.key = key
        self.names = names
        self.type = rows["type"].astype(np.uint32)
        self.status = rows["status"].astype(np.int32)
        self.offset = rows["data_off"].astype(np.uint64)
        self.length = rows["length"].astype(np.uint32)
        self.malformed = malformed_mask(self.type, self.length) & (self.status == 0)
        self.status[self.malformed] = 13
        self._has_data = (self.status == 0) | self.malformed
        self._arena = arena
        self.mapping = memoryview(arena).toreadonly()
        self.arena = None

    def __len__(self) -> int:
        return int(self.type.shape[0])

    def __repr__(self) -> str:
        return f"<regfast.live.registry.ValueBatch {len(self)} rows, {int(self._has_data.sum())} found>"

    @property
    def data(self) -> memoryview:
        return self.mapping

    def _row(self, i: int | np.integer[Any]) -> memoryview:
        o = int(self.offset[i])
        return self.mapping[o : o + int(self.length[i])]

    def buffer(self, i: int) -> memoryview:
        if not self._has_data[i]:
            raise error_from_status(int(self.status[i]), f"value {self.names[i]!r}: no data")
        return self._row(i)

    def as_str(self, *, array: bool = False) -> Any:
        out: list[str | None] = [None] * len(self)
        for i in np.flatnonzero((self.status == 0) & np.isin(self.type, (REG_SZ, REG_EXPAND_SZ, REG_LINK))):
            out[i] = decode_data(int(self.type[i]), self._row(i), self.names[i])
        if array:
            return np.array(out, dtype=np.dtypes.StringDType(na_object=None))
        return out

    def as_int(self, *, default: int | None = None) -> np.ndarray:
        n = len(self)
        out = np.empty(n, dtype=np.uint64)
        bad = -1
        for i in range(n):
            t = int(self.type[i])
            if self._has_data[i] and t in (REG_DWORD, REG_DWORD_BIG_ENDIAN, REG_QWORD):
                out[i] = decode_data(t, self._row(i))
            else:
                out[i] = default or 0
                if bad < 0:
                    bad = i
        if bad >= 0 and default is None:
            raise ValueError(
                f"row {bad} is not a DWORD, DWORD_BIG_ENDIAN or QWORD (type {self.type[bad]}, "
                f"status {self.status[bad]}); pass default= to fill such rows"
            )
        return out

    def values(self) -> list[Any]:
        out: list[Any] = [None] * len(self)
        for i in np.flatnonzero(self._has_data):
            out[i] = decode_data(int(self.type[i]), self._row(i), self.names[i])
        return out

    def to_dict(self) -> dict[str, Any]:
        vals = self.values()
        out: dict[str, Any] = {}
        for i in np.flatnonzero(self._has_data):
            out.setdefault(self.names[i], vals[i])  # the first of duplicate names, as key[name]
        return out


# ---------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------


class Key:
    """A key of the live registry, opened through regfast-agent.

    Cheap until used: a key from subkeys() opens its agent handle at its
    first call. Close it (or use ``with``) to release the handle; closing a
    watched key ends its watches.
    """

    __slots__ = ("_reg", "root", "view", "access", "path", "_hid", "_closed", "__weakref__")

    def __init__(
        self, reg: Registry, root: int, path: str, view: int, access: int, hid: int | None = None
    ) -> None:
        self._reg = reg
        self.root = root
        self.path = path
        self.view = view
        self.access = access
        self._hid = hid
        self._closed = False

    # --- identity ----------------------------------------------------------

    @property
    def hive(self) -> Registry:
        """The Registry (connection) this key belongs to."""
        return self._reg

    @property
    def name(self) -> str:
        return self.path.rpartition("\\")[2] if self.path else ROOT_NAMES.get(self.root, hex(self.root))

    @property
    def full_path(self) -> str:
        r = ROOT_NAMES.get(self.root, hex(self.root))
        return f"{r}\\{self.path}" if self.path else r

    @property
    def offset(self) -> int:
        return self._handle()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def parent(self) -> Key | None:
        if not self.path:
            return None
        return Key(self._reg, self.root, self.path.rpartition("\\")[0], self.view, self.access)

    def __repr__(self) -> str:
        return f"<regfast.live.registry.Key {self.full_path!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return (
            self._reg is other._reg
            and self.root == other.root
            and self.view == other.view
            and fold(self.path) == fold(other.path)
        )

    def __hash__(self) -> int:
        return hash((id(self._reg), self.root, self.view, fold(self.path)))

    # --- handle ------------------------------------------------------------

    def _handle(self) -> int:
        if self._closed:
            raise error_from_status(6, "the key is closed", self.full_path)
        if self._hid is None:
            self._hid = self._reg._open(self.root, self.path, self.view, self.access, False)[0]
        return self._hid

    def _req(self, op: int, payload: bytes = b"", filename: object = None, **kw: Any) -> bytes:
        return self._reg.conn.request(
            op,
            struct.pack("<I", self._handle()) + payload,
            filename=filename if filename is not None else self.full_path,
            **kw,
        )

    def close(self) -> None:
        """Releases the agent handle (ends the watches on this key). Idempotent."""
        if self._closed:
            return
        self._closed = True
        hid, self._hid = self._hid, None
        if hid is not None and not self._reg.conn.closed:
            try:
                self._reg.conn.request(OP_CLOSE_KEY, struct.pack("<I", hid))
            except (ConnectionError, TimeoutError):
                pass

    def __enter__(self) -> Key:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads (the offline Key's methods) ---------------------------------

    def info(self) -> KeyInfo:
        r = Reader(self._req(_ops.OP_KEY_INFO))
        lw = r.u64()
        sub, nval, mn, mc, mvn, mvd, flags = (r.u32() for _ in range(7))
        cls = r.str16()
        return KeyInfo(lw, sub, nval, mn, mc, mvn, mvd, cls or None, flags)

    @property
    def last_write(self) -> _dt.datetime | None:
        """As regfast.Key.last_write: None past 9999-12-31 (last_write_raw has it)."""
        return filetime_to_datetime(self.info().last_write)

    @property
    def last_write_raw(self) -> int:
        """The last write time as a FILETIME."""
        return self.info().last_write

    @property
    def class_name(self) -> str | None:
        return self.info().class_name

    def open(self, path: str) -> Key:
        """Opens a descendant by relative path (case-insensitive)."""
        rel = _split_path(path)
        full = rel if not self.path else (self.path + "\\" + rel if rel else self.path)
        return self._reg.open_key(self.root, full, view=self.view, access=self.access)

    def subkey(self, name: str) -> Key:
        if "\\" in name:
            raise ValueError(f"{name!r} contains a backslash; use Key.open() for paths")
        return self.open(name)

    def _subkey_entries(self) -> list[tuple[str, int]]:
        r = Reader(self._req(_ops.OP_SUBKEYS))
        out = []
        for _ in range(r.u32()):
            lw = r.u64()
            out.append((r.str16(), lw))
        return out

    def subkeys(self) -> Iterator[Key]:
        """Iterator over the direct subkeys (each opens its handle when first used)."""
        base = self.path + "\\" if self.path else ""
        return iter(
            [Key(self._reg, self.root, base + n, self.view, self.access) for n, _ in self._subkey_entries()]
        )

    def subkey_names(self) -> list[str]:
        return [n for n, _ in self._subkey_entries()]

    def _read(
        self, names: list[str] | None, types: Iterable[int] | None, full: bool = False
    ) -> tuple[list[str], np.ndarray, bytes]:
        tl = [] if types is None else [int(t) for t in types]
        if names is None:
            body = struct.pack("<II", 1 if full else 0, _agent.ALL)
        else:
            body = struct.pack("<II", 1 if full else 0, len(names)) + b"".join(str16(n) for n in names)
        body += struct.pack(f"<I{len(tl)}I", len(tl), *tl)
        payload = self._req(_ops.OP_READ_VALUES, body)
        rows_n, arena_len = struct.unpack_from("<II", payload, 0)
        rows = np.frombuffer(payload, dtype=_ROW, count=rows_n, offset=8)
        start = 8 + rows_n * _ROW.itemsize
        arena = payload[start : start + arena_len]
        if names is None:
            names = []
            for i in range(rows_n):
                off, ln = int(rows["name_off"][i]), int(rows["name_len"][i])
                raw = arena[off : off + (ln & 0x7FFFFFFF)]
                names.append(
                    raw.decode("latin-1") if ln & 0x80000000 else raw.decode("utf-16-le", "surrogatepass")
                )
        return names, rows, arena

    def values(self) -> Iterator[Value]:
        """Iterator over the key's values (one request for all of them)."""
        names, rows, arena = self._read(None, None, full=True)
        out = []
        for i, name in enumerate(names):
            st = int(rows["status"][i])
            if st:
                raise error_from_status(st, f"value {name!r} is unreadable", name)
            off, ln = int(rows["data_off"][i]), int(rows["length"][i])
            out.append(Value(self, name, int(rows["type"][i]), arena[off : off + ln]))
        return iter(out)

    def value(self, name: str = "") -> Value:
        """The Value called `name` ("" is the default value); FileNotFoundError if none."""
        r = Reader(self._req(_ops.OP_GET_VALUE, str16(name), filename=name))
        vtype, n = r.u32(), r.u32()
        return Value(self, name, vtype, r.raw(n))

    def __getitem__(self, name: str) -> Any:
        return self.value(name).value

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self.value(name).value
        except FileNotFoundError:
            return default

    def __contains__(self, name: str) -> bool:
        try:
            self.value(name)
        except FileNotFoundError:
            return False
        return True

    def value_raw(self, name: str = "") -> tuple[int, memoryview]:
        v = self.value(name)
        return v.type, v.data

    def read_values(
        self,
        names: Iterable[str] | None = None,
        *,
        types: Iterable[int] | None = None,
        errors: str = "strict",
    ) -> ValueBatch:
        """Reads many values in one request (the agent makes one rf_read_values call).

        Same contract as the offline Key.read_values: missing values are rows
        with status 2, rows refused by `types` status 13; with errors="strict"
        any other row status raises.
        """
        if errors not in ("strict", "skip"):
            raise ValueError("errors must be 'strict' or 'skip'")
        names_l = None if names is None else list(names)
        got, rows, arena = self._read(names_l, types)
        vb = ValueBatch(self, got, rows, arena)
        if errors == "strict":
            bad = np.flatnonzero((vb.status != 0) & (vb.status != 2) & (vb.status != 13))
            if bad.size:
                i = int(bad[0])
                raise error_from_status(int(vb.status[i]), f"value {got[i]!r} is unreadable", got[i])
        return vb

    # --- writes (Win32 Reg* inside the agent) --------------------------------

    def set_value(self, name: str, data: Any, type: int | None = None) -> None:
        """Sets a value (RegSetValueExW). Without `type`: str -> REG_SZ, int ->
        REG_DWORD (REG_QWORD past 32 bits), list[str] -> REG_MULTI_SZ, bytes ->
        REG_BINARY. With a type, data is encoded for it (bytes are stored as given)."""
        if type is None:
            vtype, raw = _shorthand_value(data)
        else:
            vtype, raw = int(type), encode_value_data(int(type), data)
        self._req(
            _ops.OP_SET_VALUE, struct.pack("<I", vtype) + str16(name) + struct.pack("<I", len(raw)) + raw
        )

    def delete_value(self, name: str) -> None:
        self._req(_ops.OP_DELETE_VALUE, str16(name), filename=name)

    def create_key(self, path: str, *, access: int = KEY_ALL_ACCESS) -> Key:
        """Creates (or opens) a subkey path (RegCreateKeyExW) and returns it."""
        rel = _split_path(path)
        full = rel if not self.path else self.path + "\\" + rel
        return self._reg.create_key(self.root, full, view=self.view, access=access)

    def delete_key(self, path: str, *, tree: bool = False) -> None:
        """Deletes a subkey (RegDeleteKeyExW in this key's view); with tree,
        its whole subtree (RegDeleteTreeW). The key handle needs DELETE rights
        for the former only on the subkey, so open this key with KEY_ALL_ACCESS
        or create it with create_key()."""
        self._req(
            _ops.OP_DELETE_KEY, struct.pack("<I", 1 if tree else 0) + str16(_split_path(path)), filename=path
        )

    # --- snapshots and watches ---------------------------------------------

    def snapshot(self, *, subtree: bool = True, keep_data: bool = False, max_keys: int = 100000) -> Snapshot:
        """A Snapshot of this key (and its subtree), made by the agent."""
        flags = (_agent.SNAP_SUBTREE if subtree else 0) | (_agent.SNAP_KEEP_DATA if keep_data else 0)
        payload = self._req(_ops.OP_SNAPSHOT, struct.pack("<II", flags, max_keys))
        return parse_snapshot(Reader(payload), self.full_path)

    def snapshot_bytes(
        self, *, subtree: bool = True, keep_data: bool = False, max_keys: int = 100000
    ) -> bytes:
        """The agent's snapshot of this key as bytes (the format of
        regfast.Key.snapshot_bytes; regfast.live.snapshot.parse_snapshot reads it)."""
        flags = (_agent.SNAP_SUBTREE if subtree else 0) | (_agent.SNAP_KEEP_DATA if keep_data else 0)
        return self._req(_ops.OP_SNAPSHOT, struct.pack("<II", flags, max_keys))

    def set_security_descriptor(self, sd: bytes | bytearray | memoryview, si: int = 0) -> None:
        """Writes the parts of the key's descriptor that `sd` (self-relative
        bytes) has, as SDDL through the agent (this client speaks protocol 3,
        which has no raw-descriptor op). `si` other than 0 is refused (120):
        regfast.connect(..., backend="remote") keys take it."""
        if si:
            raise error_from_status(120, "si is for keys of backend='remote'; this client sets SDDL parts")
        admin.set_security(self, sd_to_sddl(bytes(sd)))

    def watch(self, **kwargs: Any) -> Any:
        """regfast.watch([self], **kwargs)."""
        return watch([self], **kwargs)

    # --- administration (regfast.live.admin; agent ops 32..46) --------------------

    def rename(self, new_name: str) -> None:
        """Renames this key in place (NtRenameKey; RegRenameKey where ntdll
        lacks it): values and subkeys stay. Afterwards this Key names the new
        path. Errors: winerror 183 when a sibling has that name; 87 for an
        empty name, a backslash or more than 255 characters (before any call).
        Other Key objects still naming the old path get 1018 or 2."""
        admin.rename(self, new_name)

    def security(self) -> str:
        """The key's security descriptor as SDDL, converted by regfast's C
        converter — the one offline hives use, so identical descriptors print
        identical strings. Owner, group and DACL; the SACL (S:) only when
        SeSecurityPrivilege is enabled in the agent's token (see
        Registry.privileges): without it the S: part is left out, not empty."""
        return admin.get_security(self)[2]

    def security_descriptor(self) -> bytes:
        """The self-relative SECURITY_DESCRIPTOR bytes behind security()."""
        return admin.get_security(self)[1]

    def set_security(self, sddl: str) -> None:
        """Sets the parts of the descriptor an SDDL string has (O:, G:, D:,
        S:) with RegSetKeySecurity. Invalid SDDL raises (winerror 1336, or 87
        for an empty string) before anything is written. Handles opened before
        keep the access they were granted, as on Windows. Setting S: needs
        SeSecurityPrivilege enabled; see regfast.live.admin for auditing (4663)."""
        admin.set_security(self, sddl)

    def grant(
        self,
        trustee: str,
        rights: int | str | Iterable[str],
        *,
        inherit: bool | int = True,
        mode: str = "grant",
    ) -> None:
        """Adds an ACE to the DACL (SetEntriesInAclW + SetSecurityInfo).

        trustee: "S-1-..." or an account name ("Everyone", "Users"...);
        rights: an access mask or names ("read", "full", "query|set", see
        regfast.live.admin.RIGHTS); inherit: True = subkeys inherit it
        (CONTAINER_INHERIT_ACE), False = this key only, or ACE flags;
        mode: "grant", "set", "deny" or "revoke". Unknown account: 1332."""
        admin.grant(self, trustee, rights, inherit, mode)

    def take_ownership(self) -> None:
        """Makes the agent's user the key's owner, with SeTakeOwnershipPrivilege
        enabled for the call when the token holds it."""
        admin.take_ownership(self)

    def mui_string(self, name: str) -> str:
        """A value's display string as RegLoadMUIStringW resolves it
        ("@%SystemRoot%\\system32\\shell32.dll,-8964" -> the DLL's string).
        A string not starting with "@" is returned as stored (the API itself
        says 13 for those). Missing value: FileNotFoundError (2); a missing
        resource: 1814."""
        return admin.mui_string(self, name)

    def save(self, path: Any, method: str = "regfast", **kw: Any) -> Any:
        """regfast.save_key(self, path, method)."""
        return admin.save_key(self, path, method, **kw)


OP_CLOSE_KEY = _ops.OP_CLOSE_KEY


# ---------------------------------------------------------------------------
# Registry: one agent connection
# ---------------------------------------------------------------------------


class Registry:
    """The live registry behind one regfast-agent (see :func:`connect`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()

    @property
    def description(self) -> str:
        return self.conn.description

    @property
    def pid(self) -> int:
        return self.conn.pid

    def __repr__(self) -> str:
        return f"<regfast.live.registry.Registry {self.conn.description!r} pid {self.conn.pid}>"

    def _open(self, root: int, path: str, view: int, access: int, create: bool) -> tuple[int, bool]:
        payload = self.conn.request(
            _ops.OP_OPEN_KEY,
            struct.pack("<IIII", root, view, access, 1 if create else 0) + str16(path),
            filename=path,
        )
        hid, disp = struct.unpack_from("<II", payload)
        return hid, disp == 1

    def open_key(
        self, root: int | str, path: str = "", *, view: int | str | None = None, access: int = KEY_READ
    ) -> Key:
        """Opens a key of the live registry.

        Parameters
        ----------
        root : HKLM, HKCU, HKU, HKCR, HKCC (or their names)
        path : the path below the root ('' = the root itself)
        view : 'native' (default), 64 or 32 (KEY_WOW64_64KEY / KEY_WOW64_32KEY)
        access : desired access (KEY_READ by default; KEY_ALL_ACCESS to write)

        Raises
        ------
        FileNotFoundError
            The key does not exist (winerror 2).
        PermissionError
            Access denied (winerror 5).
        """
        r, v, p = _root(root), _view(view), _split_path(path)
        hid, _ = self._open(r, p, v, access, False)
        return Key(self, r, p, v, access, hid)

    def create_key(
        self, root: int | str, path: str, *, view: int | str | None = None, access: int = KEY_ALL_ACCESS
    ) -> Key:
        """Creates a key (and its missing parents) or opens it (RegCreateKeyExW)."""
        r, v, p = _root(root), _view(view), _split_path(path)
        hid, _ = self._open(r, p, v, access, True)
        return Key(self, r, p, v, access, hid)

    def delete_key(
        self, root: int | str, path: str, *, view: int | str | None = None, tree: bool = False
    ) -> None:
        """Deletes a key (with tree, its whole subtree)."""
        p = _split_path(path)
        parent, _, leaf = p.rpartition("\\")
        with self.open_key(root, parent, view=view, access=KEY_ALL_ACCESS) as k:
            k.delete_key(leaf, tree=tree)

    def ping(self, data: bytes = b"", timeout: float | None = None) -> bytes:
        return self.conn.request(_ops.OP_PING, data, timeout=timeout)

    def stats(self) -> dict[str, int]:
        r = Reader(self.conn.request(_ops.OP_STATS))
        return {"handles_open": r.u32(), "watches": r.u32(), "frames": r.u64(), "bad_frames": r.u64()}

    def bench(
        self, method: str | int, key: Key, names: Sequence[str], reps: int = 1, timeout: float | None = None
    ) -> tuple[float, int]:
        """Has the agent read `names` of `key` `reps` times with a named method
        (agent.BENCH_METHODS) and returns (seconds, reads that succeeded):
        the agent's own clock, so the pipe is not in the figure."""
        m = _agent.BENCH_METHODS[method] if isinstance(method, str) else int(method)
        body = struct.pack("<IIII", m, key._handle(), reps, len(names)) + b"".join(str16(n) for n in names)
        r = Reader(self.conn.request(_ops.OP_BENCH, body, timeout=timeout))
        ns, ok = r.u64(), r.u64()
        return ns / 1e9, ok

    # --- administration (regfast.live.admin) ------------------------------------

    def privileges(self, *names: str) -> Any:
        """A context manager enabling privileges of the token of the process
        serving this registry (a regfast-agent child for connect(); for the
        in-process local(), the Windows default, Python's own process token,
        for every thread) and restoring each one's previous state on exit::

            with reg.privileges("SeBackupPrivilege", "SeRestorePrivilege"):
                regfast.save_key(key, path, method="native")

        All or nothing: PermissionError (winerror 1314) when the token does
        not hold one of them, 1313 for an unknown name — nothing changed."""
        return admin.privileges(self, *names)

    def privilege_state(self, *names: str) -> dict[str, tuple[bool, bool]]:
        """{name: (held, enabled)} for the agent's token."""
        return admin.privilege_state(self, *names)

    def load_hive(self, root: int | str, name: str, path: Any) -> Key:
        """regfast.load_hive(self, root, name, path)."""
        return admin.load_hive(self, root, name, path)

    def unload_hive(self, root: int | str, name: str) -> None:
        """regfast.unload_hive(self, root, name)."""
        admin.unload_hive(self, root, name)

    def load_app_hive(self, path: Any, **kw: Any) -> Snapshot:
        """regfast.load_app_hive(self, path)."""
        return admin.load_app_hive(self, path, **kw)

    def close(self) -> None:
        self.conn.close()

    @property
    def closed(self) -> bool:
        return self.conn.closed

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@overload
def connect(
    cmd: Sequence[str] | None = None,
    *,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
    backend: Literal["protocol"] = "protocol",
) -> Registry: ...


@overload
def connect(
    cmd: Sequence[str] | None = None,
    *,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
    backend: Literal["remote"],
) -> RemoteRegistry: ...


def connect(
    cmd: Sequence[str] | None = None,
    *,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
    backend: str = "protocol",
) -> Registry | RemoteRegistry:
    """Starts regfast-agent and returns the live :class:`Registry` it serves.

    Parameters
    ----------
    cmd
        The command that runs the agent: e.g. ``["wine", path]``,
        ``["ssh", "host", "regfast-agent.exe"]``. Default: the agent found by
        :func:`regfast.live.agent.agent_path`, run directly on Windows and with
        Wine elsewhere.
    timeout
        Seconds any request may wait for its answer (TimeoutError after).
    env
        Environment of the agent process (e.g. WINEPREFIX, WINEDEBUG).
    backend
        "protocol" (default): this module's :class:`Registry`, whose client
        speaks the agent protocol from Python (what regfast.hooks and
        regfast.profile see today). "remote": a
        :class:`regfast.live.remote.RemoteRegistry`, served by the C remote
        backend: its keys are :class:`regfast.Key` objects, the class
        :func:`regfast.open_hive` returns.

    Raises
    ------
    ConnectionError
        The agent could not be started or did not complete the handshake.
    FileNotFoundError
        No cmd and no agent built (``python -m regfast.live.agent build``).
    """
    if backend == "remote":
        return RemoteRegistry(cmd or _exe.default_command(), timeout=timeout, env=env)
    if backend != "protocol":
        raise ValueError(f"backend must be 'protocol' or 'remote', not {backend!r}")
    return Registry(Connection(cmd or _exe.default_command(), timeout=timeout, env=env))


_default: Registry | None = None
_local: Registry | None = None
_default_lock = threading.Lock()


@overload
def local(backend: Literal["protocol"] = "protocol") -> Registry: ...


@overload
def local(backend: Literal["nt"]) -> LocalRegistry: ...


def local(backend: str = "protocol") -> Registry | LocalRegistry:
    """The live registry of this machine, served in this process (Windows).

    The same :class:`Registry` and :class:`Key` as :func:`connect`, over
    :class:`regfast.live.inproc.InProcessConnection`: the agent's C request
    handler runs here, with no agent process and no pipe. One per process
    (shared by every call).

    ``backend="nt"``: a :class:`regfast.live.local.LocalRegistry` instead,
    whose keys are :class:`regfast.Key` objects served by the NT backend
    through ``rf_*`` (no request bytes); a new one per call. Built and
    tested only in the Windows workflow.

    Raises
    ------
    ImportError
        Not on Windows (use :func:`connect` and regfast-agent there).
    OSError
        backend="nt" off Windows: winerror 120 at the first open_key.
    """
    global _local
    if backend == "nt":
        return LocalRegistry()
    if backend != "protocol":
        raise ValueError(f"backend must be 'protocol' or 'nt', not {backend!r}")
    with _default_lock:
        if _local is None or _local.closed:
            _local = Registry(InProcessConnection())
        return _local


def open_key(
    root: int | str, path: str = "", *, view: int | str | None = None, access: int = KEY_READ
) -> Key:
    """Opens a live key of this machine: on Windows in-process through the
    native module (:func:`local`); elsewhere through a process-wide default
    agent started at the first call with :func:`connect`'s defaults (Wine)."""
    global _default
    if sys.platform == "win32":
        return local().open_key(root, path, view=view, access=access)
    with _default_lock:
        if _default is None or _default.closed:
            _default = connect()
        reg = _default
    return reg.open_key(root, path, view=view, access=access)
