"""Administration of the live registry: rename, security, privileges, hive
files, app hives, MUI strings — through regfast-agent (the ``rf_live_*``
functions of src/nt/nt_admin.c, ops 32..47 of src/agent/agent_admin.c).

The methods of :class:`regfast.live.registry.Key` and :class:`regfast.live.registry.Registry`
(``key.rename()``, ``key.security()``, ``reg.privileges()``...) call the
functions here; :func:`save_key`, :func:`load_hive`, :func:`unload_hive`,
:func:`restore_key`, :func:`replace_key` and :func:`load_app_hive` are also
exported by :mod:`regfast`.

Privileges are those of the token of the process that makes the calls:
regfast-agent's for :func:`regfast.connect` (run it elevated for
SeBackupPrivilege and friends), but **the Python process's own** for the
in-process registry (:func:`regfast.live.registry.local`, the default on Windows):
``reg.privileges(...)`` then enables them in the Python program's process
token, for every thread, until the ``with`` block ends. Only
:meth:`Key.take_ownership` keeps its privilege (SeTakeOwnershipPrivilege) to
the calling thread (a private impersonation token for the one call). Under
Wine every privilege Wine grants is held but disabled.

Auditing (SACL)
---------------
To audit reads of a key, enable SeSecurityPrivilege, set a SACL and turn on
the "Audit Registry" subcategory (``auditpol /set /subcategory:"Registry"
/success:enable``)::

    with reg.privileges("SeSecurityPrivilege"):
        key.set_security("S:(AU;SA;KR;;;WD)")     # audit successful reads by Everyone
        key.security()                             # now includes the S: part

Each audited open then logs event **4663** ("An attempt was made to access
an object", Object Type "Key", Object Name ``\\REGISTRY\\USER\\...``, the
Accesses asked) in the Security log. Reading a SACL needs the privilege
enabled: without it :meth:`Key.security` returns owner, group and DACL only.
Wine keeps SACLs but writes no audit events.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from regfast._native import Key as NativeKey
from regfast.exceptions import NotAHiveError, error_from_status
from regfast.io.writer import Key as WKey
from regfast.io.writer import Value as WValue
from regfast.io.writer import write_hive
from regfast.live import _agent_ops as _ops
from regfast.live import protocol as _agent
from regfast.live.protocol import Reader, str16
from regfast.live.roots import _root
from regfast.live.snapshot import parse_snapshot

if TYPE_CHECKING:  # regfast.live.hives imports this module: its methods call the functions here
    from regfast.hive.diff import Snapshot
    from regfast.live.hives import HiveRegistry as Registry

Key = NativeKey

__all__ = [
    "RIGHTS",
    "SI_OWNER",
    "SI_GROUP",
    "SI_DACL",
    "SI_SACL",
    "SavedHive",
    "save_key",
    "load_hive",
    "unload_hive",
    "restore_key",
    "replace_key",
    "load_app_hive",
    "parse_rights",
]

SI_OWNER, SI_GROUP, SI_DACL, SI_SACL = 0x1, 0x2, 0x4, 0x8
CONTAINER_INHERIT_ACE, OBJECT_INHERIT_ACE, NO_PROPAGATE_INHERIT_ACE, INHERIT_ONLY_ACE = 0x2, 0x1, 0x4, 0x8
REG_FORCE_RESTORE = 0x8
REG_STANDARD_FORMAT, REG_LATEST_FORMAT, REG_NO_COMPRESSION = 1, 2, 4

#: Access-right names accepted by :meth:`Key.grant` (Win32 values).
RIGHTS: dict[str, int] = {
    "query": 0x0001,
    "set": 0x0002,
    "create_subkey": 0x0004,
    "enumerate": 0x0008,
    "notify": 0x0010,
    "create_link": 0x0020,
    "delete": 0x10000,
    "read_control": 0x20000,
    "write_dac": 0x40000,
    "write_owner": 0x80000,
    "read": 0x20019,
    "execute": 0x20019,
    "write": 0x20006,
    "full": 0xF003F,
    "all": 0xF003F,
}
_MODES = {"grant": 1, "set": 2, "deny": 3, "revoke": 4}
_FORMATS = {_agent.FILE_REGF: "regf", _agent.FILE_WINE: "wine", _agent.FILE_OTHER: "other"}


def parse_rights(rights: int | str | Iterable[str]) -> int:
    """An access mask from an int, a name (``"read"``, ``"full"``...), names
    joined with ``|`` or a list of names (see :data:`RIGHTS`)."""
    if isinstance(rights, bool):
        raise TypeError("rights must be an int or right names, not a bool")
    if isinstance(rights, int):
        if not 0 < rights <= 0xFFFFFFFF:
            raise ValueError(f"access mask {rights:#x} out of range (1..0xFFFFFFFF)")
        return rights
    names = rights.split("|") if isinstance(rights, str) else list(rights)
    mask = 0
    for n in names:
        key = n.strip().lower().replace("-", "_")
        if key not in RIGHTS:
            raise ValueError(f"unknown access right {n!r}; known: {', '.join(sorted(RIGHTS))}")
        mask |= RIGHTS[key]
    if not mask:
        raise ValueError("no access rights given")
    return mask


def agent_path(reg: Registry, path: str | os.PathLike[str]) -> str:
    """A file path as the agent sees it: under Wine on this machine, an
    absolute POSIX path becomes ``Z:\\...`` (Wine maps Z: to /). Relative
    paths are passed as they are (and refused by the agent)."""
    p = os.fspath(path)
    if sys.platform != "win32" and "Wine" in reg.description and p.startswith("/"):
        return "Z:" + p.replace("/", "\\")
    return p


# ---------------------------------------------------------------------------
# Keys: handles with the access an operation needs
# ---------------------------------------------------------------------------


# Keys of regfast.connect(..., backend="remote") are the binding's regfast.Key:
# each remote Hive is registered here by the RemoteRegistry that opened it
# (regfast.live.remote imports this module, not the other way round).
_OWNERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def own(hive: Any, reg: Any) -> None:
    """Records that `hive` (a remote regfast.Hive) belongs to `reg` (a RemoteRegistry)."""
    _OWNERS[hive] = reg


def _reg_of(key: Any) -> Any:
    """The registry serving `key` (a regfast.Key of a live registry)."""
    reg = _OWNERS.get(key.hive) if isinstance(key, NativeKey) else None
    if reg is None:
        raise error_from_status(
            120, "not a key of the live registry (a hive file has no agent to ask)", key.path
        )
    return reg


def _req(key: Key, op: int, access: int, body: bytes = b"", filename: object = None) -> bytes:
    """An agent request on the key's handle (the backend's), through a hive
    opened with `access` when the key's lacks it."""
    return bytes(_reg_of(key).key_request(key, op, body, access, filename=filename))


def rename(key: Key, new_name: str) -> None:
    if not isinstance(new_name, str):
        raise TypeError("new_name must be a str")
    key.rename(new_name)  # rf_key_rename: the name is checked before any call


def get_security(key: Key, si: int = 0) -> tuple[int, bytes, str]:
    r = Reader(_req(key, _ops.OP_GET_SECURITY, 0x20000, struct.pack("<I", si)))
    got = r.u32()
    sd = r.raw(r.u32())
    return got, sd, r.str8()


def set_security(key: Key, sddl: str) -> int:
    if not isinstance(sddl, str):
        raise TypeError("sddl must be a str")
    return Reader(_req(key, _ops.OP_SET_SECURITY, 0x20000, str16(sddl))).u32()


def grant(
    key: Key, trustee: str, rights: int | str | Iterable[str], inherit: bool | int = True, mode: str = "grant"
) -> None:
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {', '.join(_MODES)}, not {mode!r}")
    mask = 0 if mode == "revoke" else parse_rights(rights)
    flags = CONTAINER_INHERIT_ACE if inherit is True else 0 if inherit is False else int(inherit)
    _req(key, _ops.OP_GRANT, 0x20000, struct.pack("<III", mask, _MODES[mode], flags) + str16(trustee))


def take_ownership(key: Key) -> None:
    _req(key, _ops.OP_TAKE_OWNERSHIP, 0x20000)


def mui_string(key: Key, name: str) -> str:
    return Reader(_req(key, _ops.OP_MUI_STRING, 0x20019, str16(name), filename=name)).str16()


# ---------------------------------------------------------------------------
# Privileges
# ---------------------------------------------------------------------------


def privilege_state(reg: Registry, *names: str) -> dict[str, tuple[bool, bool]]:
    """{name: (held, enabled)} for the token of the process serving `reg`
    (the agent's; Python's own for regfast.live.registry.local()); an unknown
    name raises (winerror 1313, ERROR_NO_SUCH_PRIVILEGE)."""
    body = struct.pack("<I", len(names)) + b"".join(str16(n) for n in names)
    r = Reader(reg.conn.request(_ops.OP_PRIVILEGES, body))
    out = {}
    for n in names:
        st, held, en = r.u32(), r.u32(), r.u32()
        if st:
            raise error_from_status(
                st,
                f"{n!r} is not a privilege name (e.g. SeBackupPrivilege)"
                if st == 1313
                else f"querying {n} failed",
                n,
            )
        out[n] = (bool(held), bool(en))
    return out


def set_privileges(reg: Registry, names: Iterable[str], enable: bool) -> list[bool]:
    """Enables or disables privileges, all or nothing; returns whether each
    was enabled before."""
    names = list(names)
    body = struct.pack("<II", 1 if enable else 0, len(names)) + b"".join(str16(n) for n in names)
    r = Reader(reg.conn.request(_ops.OP_SET_PRIVILEGES, body))
    return [bool(r.u32()) for _ in names]


@contextlib.contextmanager
def privileges(reg: Registry, *names: str) -> Iterator[Registry]:
    """Enables privileges of the agent's token for a ``with`` block and puts
    each back as it was (see :meth:`regfast.live.registry.Registry.privileges`)."""
    if not names:
        raise ValueError("name at least one privilege, e.g. 'SeBackupPrivilege'")
    was = set_privileges(reg, names, True)
    try:
        yield reg
    finally:
        back = [n for n, w in zip(names, was, strict=True) if not w]
        if back and not reg.conn.closed:
            set_privileges(reg, back, False)


# ---------------------------------------------------------------------------
# Hive files
# ---------------------------------------------------------------------------


class SavedHive(NamedTuple):
    """What :func:`save_key` wrote: the file, its format ("regf", or "wine"
    when Wine's RegSaveKeyExW wrote its own text format, which no regf
    reader opens), and how many keys and values ("regfast" method only)."""

    path: str
    format: str
    keys: int = 0
    values: int = 0


def key_is_link(key: Key) -> bool:
    """Key.is_link; False where the agent cannot tell (protocol 4: 120)."""
    try:
        return key.is_link
    except OSError as e:
        if getattr(e, "winerror", None) == 120:
            return False
        raise


def _snapshot_tree(key: Key) -> tuple[Any, int, int]:
    """The live subtree as a regfast.io.writer tree (values, classes, last-write
    times, security descriptors), read key by key through the agent."""
    counts = [0, 0]

    def build(k: Key) -> WKey:
        info = k.info()
        values: dict[str, Any] = {}
        for v in k.values():
            values[v.name] = WValue(v.type, v.raw())
        _, sd, _ = get_security(k, SI_OWNER | SI_GROUP | SI_DACL)
        subs: dict[str, WKey | dict[str, Any]] = {}
        for child in k.subkeys():
            try:
                if key_is_link(child):
                    # opened, a link is its target: saving what it opens as
                    # copied another tree in (and a link back up the tree
                    # never ended). RegSaveKeyExW keeps it as a link, whose
                    # target this method cannot read yet: say so, save nothing.
                    raise error_from_status(
                        120,
                        f"{child.path!r} is a registry symbolic link: method='regfast' cannot save it "
                        "as one yet (method='native' can)",
                    )
                subs[child.name] = build(child)
            finally:
                child.close()
        counts[0] += 1
        counts[1] += len(values)
        return WKey(
            subkeys=subs, values=values, class_name=info.class_name, last_write=info.last_write, security=sd
        )

    tree = build(key)
    return tree, counts[0], counts[1]


def save_key(
    key: Key, path: str | os.PathLike[str], method: str = "regfast", *, format: int = REG_LATEST_FORMAT
) -> SavedHive:
    """Saves a live key and its subtree to a hive file.

    Parameters
    ----------
    key
        A live :class:`regfast.live.registry.Key`.
    path
        The file to write. ``method="regfast"`` replaces it atomically
        (temporary file + rename: on any error nothing is left half-written);
        ``method="native"`` needs a path that does not exist (183).
    method
        ``"regfast"`` (default): enumerate the subtree through the agent
        (values, classes, last-write times, owner/group/DACL) and write a regf
        hive with :mod:`regfast.io.writer` — no SeBackupPrivilege needed, works
        on every system, and the file opens with :func:`regfast.open_hive`
        and hivex. ``"native"``: RegSaveKeyExW in the agent, which needs
        SeBackupPrivilege enabled (``with reg.privileges("SeBackupPrivilege")``)
        and gives PermissionError (1314) without it. On Windows it writes a
        regf hive; Wine writes its own text format, reported as
        ``format == "wine"`` (regfast.open_hive refuses such a file with
        NotAHiveError; Wine's RegLoadKeyW loads it).
    format
        ``method="native"`` only: REG_STANDARD_FORMAT (1), REG_LATEST_FORMAT
        (2), optionally | REG_NO_COMPRESSION (4).

    Returns
    -------
    SavedHive
        (path, format, keys, values).

    Raises
    ------
    PermissionError
        1314 without SeBackupPrivilege (native), 5 on an unreadable key.
    FileExistsError-like RegistryError
        winerror 183: the file exists (native).
    """
    if method == "regfast":
        tree, nk, nv = _snapshot_tree(key)
        name = key.name if key.path else "ROOT"
        write_hive(path, tree, root_name=name)
        return SavedHive(os.fspath(path), "regf", nk, nv)
    if method != "native":
        raise ValueError(f"method must be 'regfast' or 'native', not {method!r}")
    if format & ~0x7 or not format & 0x3:
        raise ValueError("format: REG_STANDARD_FORMAT (1) or REG_LATEST_FORMAT (2), | REG_NO_COMPRESSION (4)")
    wpath = agent_path(_reg_of(key), path)
    r = Reader(
        _req(
            key, _ops.OP_SAVE_KEY, 0x20019, struct.pack("<I", format) + str16(wpath), filename=os.fspath(path)
        )
    )
    return SavedHive(os.fspath(path), _FORMATS.get(r.u32(), "other"))


def _root_id(root: int | str) -> int:
    return _root(root)


def load_hive(reg: Registry, root: int | str, name: str, path: str | os.PathLike[str]) -> Key:
    """Loads a hive file as ``root\\name`` (RegLoadKeyW; root HKLM or HKU) and
    returns that key. Needs SeBackupPrivilege and SeRestorePrivilege enabled
    (``with reg.privileges("SeBackupPrivilege", "SeRestorePrivilege")``).

    Raises
    ------
    NotAHiveError
        winerror 1017: the file is not a hive — checked before the call; under
        Wine also for a regf hive, as Wine loads only its own text format.
    FileNotFoundError
        The file does not exist (2).
    OSError
        87 for a relative path or a bad mount name; 1314 without privileges.
    """
    r = _root_id(root)
    try:
        reg.conn.request(
            _ops.OP_LOAD_HIVE,
            struct.pack("<I", r) + str16(name) + str16(agent_path(reg, path)),
            filename=os.fspath(path),
        )
    except OSError as e:
        if getattr(e, "winerror", 0) == 1017:
            raise NotAHiveError(
                e.errno or 22,
                str(e.args[1] if len(e.args) > 1 else e),
                os.fspath(path),
                winerror=1017,
                status=1017,
            ) from None
        raise
    return reg.open_key(r, name)


def unload_hive(reg: Registry, root: int | str, name: str) -> None:
    """Unloads a hive loaded with :func:`load_hive` (RegUnLoadKeyW). Close
    the keys opened below it first (the agent keeps their handles)."""
    reg.conn.request(_ops.OP_UNLOAD_HIVE, struct.pack("<I", _root_id(root)) + str16(name), filename=name)


def restore_key(key: Key, path: str | os.PathLike[str], *, force: bool = True, flags: int = 0) -> None:
    """Replaces the key's subtree with a regf hive file's (RegRestoreKeyW,
    with REG_FORCE_RESTORE when `force`). Needs SeRestorePrivilege enabled.
    The file is checked first: 1017 if it is not a regf hive, 2 if missing.
    Under Wine RegRestoreKeyW is a stub that does nothing: regfast refuses
    to call it (winerror 120) rather than report a fake success."""
    f = flags | (REG_FORCE_RESTORE if force else 0)
    _req(
        key,
        _ops.OP_RESTORE_KEY,
        0xF003F,
        struct.pack("<I", f) + str16(agent_path(_reg_of(key), path)),
        filename=os.fspath(path),
    )


def replace_key(key: Key, new_path: str | os.PathLike[str], old_path: str | os.PathLike[str]) -> None:
    """RegReplaceKeyW: at the next boot the hive that holds `key` is replaced
    by `new_path` (a regf hive) and the current file kept as `old_path`
    (which must not exist). Needs SeRestorePrivilege. Wine's is a stub:
    regfast refuses to call it (winerror 120)."""
    reg = _reg_of(key)
    _req(
        key,
        _ops.OP_REPLACE_KEY,
        0x20019,
        str16(agent_path(reg, new_path)) + str16(agent_path(reg, old_path)),
        filename=os.fspath(new_path),
    )


def load_app_hive(reg: Registry, path: str | os.PathLike[str], *, max_keys: int = 100000) -> Snapshot:
    """Reads a private application hive (RegLoadAppKeyW: no admin rights, no
    privilege, invisible to other processes) and returns its content as a
    :class:`regfast.Snapshot` with data. The hive is unloaded afterwards.

    Raises
    ------
    NotAHiveError-like RegistryError
        1017: not a regf hive (checked before the call); 2: missing file.
    RegistryError
        winerror 120 when RegLoadAppKeyW is a stub (Wine 8 returns success
        with a handle every call rejects): detected, never a fake hive.
    """
    payload = reg.conn.request(
        _ops.OP_LOAD_APP_HIVE,
        struct.pack("<I", max_keys) + str16(agent_path(reg, path)),
        filename=os.fspath(path),
    )
    return parse_snapshot(Reader(payload), os.fspath(path))


def file_kind(reg: Registry, path: str | os.PathLike[str]) -> str:
    """ "regf", "wine" or "other": what the agent sees at the start of a file."""
    r = Reader(reg.conn.request(_ops.OP_FILE_KIND, str16(agent_path(reg, path)), filename=os.fspath(path)))
    return _FORMATS.get(r.u32(), "other")
