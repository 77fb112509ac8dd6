"""In-process hooks on regfast operations — the user-mode analog of the
kernel's CmRegisterCallbackEx pre/post registry callbacks.

::

    def no_writes_under_policies(op):
        if op.is_write and op.path and op.path.lower().startswith("software\\\\policies"):
            return False                      # veto: the op raises HookVeto (winerror 5)

    with regfast.hooks.pre(no_writes_under_policies):
        ...

    h = regfast.hooks.post(lambda op: print(op.name, op.full_path, op.status, op.duration_ns))
    ...
    h.remove()

What is covered — three hook points, one :class:`Operation` type:

* **every rf_* call** of the C library, whatever the backend: the offline
  :class:`regfast.Hive` / :class:`regfast.Key` / ``scan()`` reads of a hive
  file, and the hives behind the C remote backend (``Hive._remote``: the
  live registry through regfast-agent) and the NT backend. These come from
  the typed records of the rf_* entry points (src/core/rf_hook.c), turned
  into rows by the C operation log (src/core/rf_oplog.c, bound by
  :mod:`regfast._hooks`): ``op.backend`` is ``"regf"``, ``"remote"`` or
  ``"nt"``, ``op.op`` is ``C_OP_BASE + RF_OP_*``, ``op.path`` the key's path
  in its hive and ``op.value`` the value name — nothing is re-parsed. The
  names follow the agent's where the operation is the same (``open_key``,
  ``get_value`` for a value looked up by name, ``subkeys``, ``read_values``,
  ``set_value``...; table ``C_OP_NAMES``).
* **every request of the Python agent protocol**, i.e. every request that
  goes through :meth:`regfast.live.protocol.Connection.request` (the agent's
  pipe and the in-process core alike) — Registry.open_key / create_key /
  delete_key, every live Key method of :mod:`regfast.live.registry`, watch
  set-up, the administration ops of regfast.live.admin (rename, security,
  privileges, hive save / load / unload / restore / replace, app hives, MUI
  strings: the mutating ones have ``is_write``), regfast.transaction (its
  journal reads and writes, and the KTM ops). ``op.backend`` is None, and
  ``op.op`` an agent op number. These requests do not go through rf_* (they
  are encoded in Python), so they are seen here once, not twice.
* :func:`regfast.open_hive` (op ``"open_hive"``, ``path`` = the file,
  ``root`` None; a veto keeps the file from being opened) — before the
  rf_* ``hive_open`` it leads to.

Cost when no hook and no profiler is active: ``Connection.request`` checks one
module global (``regfast.live.protocol._hook``) and goes on (bench/bench_hooks.py);
an rf_* call tests one pointer (rf_hive.c; bench/hook_cost.c). With only a
profiler on, rf_* calls are logged in C and handed over in bulk: no Python
call per operation. A Python pre or post hook is called per operation.

Semantics
---------
* ``pre`` callbacks run, in registration order, before the request is sent;
  returning ``False`` vetoes the operation (:class:`HookVeto`, a
  PermissionError with winerror 5); raising any exception aborts it with
  that exception. Nothing is sent to the agent.
* ``post`` callbacks run after the answer (or the failure, or the veto) with
  ``status`` (0 or the Win32 code), ``duration_ns`` and ``response_bytes``
  filled in. They observe only: an exception in one is reported as a
  :class:`HookWarning` and the operation's outcome stands.
* Paths of protocol requests come from the OPEN_KEY requests the hook layer
  saw: a key opened while no hook or profiler was active shows ``path=None``
  (its handle is in ``op.handle``). Paths of rf_* operations are learnt the
  same way by the C log (opens, the root, subkey lists and names); for a
  hive file a key's path is also found by walking its parents, so offline
  paths are always known. A veto policy that must not be bypassed should be
  installed before the keys it guards are opened, or veto ``path is None``
  writes.
* A veto of an rf_* operation makes the C call fail with 5 ("vetoed by a
  hook"); the binding raises the :class:`HookVeto` (or the hook's own
  exception) in its place.
* Callbacks run in the thread making the request (for rf_* operations, also
  a backend's watch thread); keep them short.
"""

from __future__ import annotations

import functools
import struct
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from typing import Any

from regfast import _hooks as _core
from regfast.exceptions import RegistryPermissionError, set_hook_veto
from regfast.hive import open as _open_hive
from regfast.live import _agent_ops as _ops
from regfast.live import protocol as _agent

__all__ = [
    "pre",
    "post",
    "HookVeto",
    "HookWarning",
    "HookHandle",
    "Operation",
    "OP_NAMES",
    "C_OP_BASE",
    "C_OP_NAMES",
    "active",
]

OP_NAMES: dict[int, str] = dict(_ops.NAMES)  # from src/agent/ag_ops.def
# Not agent ops: the offline entry points hooked (regfast.open_hive).
OP_OPEN_HIVE = 0x1000
OP_NAMES[OP_OPEN_HIVE] = "open_hive"
# The rf_* operations (RF_OP_* of regfast.h) are numbered from here, above
# the agent's ops (< 0x100), so one u16 column holds both.
C_OP_BASE = 0x200
# RF_OP_* name (rf_op_name) -> the name hooks and profiles use: the agent's
# where the operation is the same, so that count("open_key") or
# count("get_value") means the same on a hive file and on the live registry.
C_OP_NAMES: dict[str, str] = {
    "hive_open": "hive_open",  # (regfast.open_hive's own "open_hive" comes first)
    "hive_close": "hive_close",
    "hive_info": "hive_info",
    "hive_root": "hive_root",
    "key_open": "open_key",
    "key_child": "open_key",  # one component: an open too
    "key_name": "key_name",
    "key_class": "key_class",
    "key_parent": "key_parent",
    "key_info": "key_info",
    "key_subkeys": "subkeys",
    "key_values": "key_values",
    "key_security": "get_security",
    "value_open": "get_value",  # a value looked up by name (RegQueryValueEx)
    "value_info": "value_info",
    "value_read": "read_value",
    "read_values": "read_values",
    "scan": "scan",
    "value_set": "set_value",
    "value_delete": "delete_value",
    "key_create": "create_key",
    "key_delete": "delete_key",
    "key_rename": "rename",
    "key_set_security": "set_security",
    "snapshot": "snapshot",
    "watch_open": "watch",
    "key_close": "close_key",  # Key.close(): pairs with open_key (open-each patterns)
    # rf_remote_request: an Operation carries the agent op's number and name
    # (set_security, grant, load_hive...), this name only the C log's
    "remote_request": "remote_request",
    "key_is_link": "key_is_link",  # Key.is_link (KEY_IS_LINK on the live registry)
}
# RF_OP_* by its C name (rf_op_name), so nothing here copies the enum's numbers
RF_OPS: dict[str, int] = {_core.op_name(_i): _i for _i in range(1, _core.OP_MAX)}
for _name, _i in RF_OPS.items():
    OP_NAMES[C_OP_BASE + _i] = C_OP_NAMES.get(_name, _name)
OP_HIVE_CLOSE = C_OP_BASE + RF_OPS["hive_close"]  # a close cannot be vetoed (it frees)
OP_KEY_CREATE = C_OP_BASE + RF_OPS["key_create"]
OP_KEY_CLOSE = C_OP_BASE + RF_OPS["key_close"]  # nor can a key's
RF_OP_REQUEST = RF_OPS["remote_request"]
# Everything that changes the registry (or, set_privileges, the agent's
# token): what a veto policy on ``op.is_write`` must see. save_key writes a
# file but only reads the registry; it is not here (its ``file`` is set).
# rf_* writes carry their own flag (RF_OPREC_WRITE).
WRITE_OPS = _ops.WRITE_OPS
# ops whose payload starts with a key handle (u32), then what follows it:
# t a u32 skipped, s a value name (-> value), n a new key name (-> value),
# k a subkey (-> value, appended to path), p a file path (-> file),
# x a str16 skipped — derived from the request layouts of ag_ops.def
_HANDLE_OPS = _ops.HANDLE_SHAPES
_TX_HANDLE_OPS = _ops.TX_HANDLE_SHAPES
ROOTS = {0x80000000: "HKCR", 0x80000001: "HKCU", 0x80000002: "HKLM", 0x80000003: "HKU", 0x80000005: "HKCC"}


class HookVeto(RegistryPermissionError):
    """A pre hook vetoed the operation (winerror 5, like an access denied)."""


class HookWarning(RuntimeWarning):
    """A post hook raised; the operation's outcome is unchanged."""


class Operation:
    """One operation, as hooks and the profiler see it.

    Attributes
    ----------
    op : int            agent op number (regfast.live._agent_ops.OP_*), or
                        C_OP_BASE + RF_OP_* for an rf_* operation
    name : str          "open_key", "set_value"... (OP_NAMES)
    backend : str or None  rf_* operations: "regf", "remote", "nt"; None for
                        a protocol request and open_hive
    hive : int          rf_* operations: which hive (1, 2... per hive seen
                        while hooks were on); 0 otherwise
    token : int         rf_* operations: the key token (the parent for opens)
    count : int         rf_* operations, post: rows, subkeys, keys... (RF_OP_*)
    round_trips : int   post: requests sent to the registry for it (a protocol
                        request: 1 unless vetoed; the C remote backend: its
                        agent round trips, which its caches often make 0;
                        a hive file: 0)
    root : int or None  predefined root of the key (HKCU = 0x80000001...)
    path : str or None  key path below the root (None: opened before hooks were on)
    value : str or None value name (get/set/delete_value, mui_string), deleted
                        subkey name, new name (rename), or the privilege names
                        joined by "," (privileges, set_privileges)
    file : str or None  the file a hive op reads or writes (save_key, load_hive,
                        restore_key, replace_key's new file, load_app_hive,
                        file_kind; open_hive: also ``path``)
    handle : int or None the agent's key handle the op uses / returns
    tx : int or None    the transaction of tx_open_key / tx_commit / tx_rollback
    create : bool       open_key that creates (RegCreateKeyExW)
    request_bytes : int payload bytes sent (rf_* writes: the data written)
    status : int        post only: 0, or the Win32 code of the failure (5 for a veto)
    response_bytes : int post only (rf_* reads: the data read)
    duration_ns : int   post only: request to answer, in this process
    vetoed : bool
    """

    __slots__ = (
        "op",
        "name",
        "root",
        "path",
        "value",
        "file",
        "handle",
        "tx",
        "create",
        "request_bytes",
        "status",
        "response_bytes",
        "duration_ns",
        "start_ns",
        "vetoed",
        "conn",
        "backend",
        "hive",
        "token",
        "count",
        "round_trips",
        "_write",
    )

    def __init__(self, conn: Any, op: int, payload: bytes) -> None:
        self.conn = conn
        self.op = op
        self.name = OP_NAMES.get(op, f"op{op}")
        self.root: int | None = None
        self.path: str | None = None
        self.value: str | None = None
        self.file: str | None = None
        self.handle: int | None = None
        self.tx: int | None = None
        self.create = False
        self.request_bytes = len(payload)
        self.status = 0
        self.response_bytes = 0
        self.duration_ns = 0
        self.start_ns = 0
        self.vetoed = False
        self.backend: str | None = None
        self.hive = 0
        self.token = 0
        self.count = 0
        self.round_trips = 0
        self._write = False
        try:
            self._parse(payload)
        except (struct.error, ValueError, UnicodeDecodeError):
            pass  # a malformed request: the agent will say so

    @classmethod
    def _from_core(
        cls,
        op: int,
        hive: int,
        backend: int,
        flags: int,
        token: int,
        path: str | None,
        value: str | bytes | None,
        request_op: int = 0,
    ) -> Operation:
        """An rf_* operation from the C log's row (typed fields, nothing parsed
        but an agent request's payload, below)."""
        if op == RF_OP_REQUEST:
            return cls._from_request(request_op, hive, backend, flags, token, path, value)
        rec = cls(None, C_OP_BASE + op, b"")
        rec.backend = _core.BACKENDS.get(backend, "other")
        rec.hive = hive
        rec.token = token
        rec._write = bool(flags & _core.WRITE)
        rec.create = rec.op == OP_KEY_CREATE
        if flags & _core.FILE:
            rec.file = path
        rec.path = path
        rec.value = value if isinstance(value, str) else None
        return rec

    @classmethod
    def _from_request(
        cls, op: int, hive: int, backend: int, flags: int, token: int, path: str | None, payload: object
    ) -> Operation:
        """rf_remote_request (RF_OP_REQUEST): what rf_* has no call for (security,
        grant, ownership, privileges, hive files...), named as the agent op it
        is. The payload is the one place its arguments are (the caller built
        it; there is no typed call to take them from), so they are read from
        it by the op table's request layout. On a key (token != 0) the
        backend puts the key's handle in front and ``path`` is the key's."""
        rec = cls(None, op, b"")
        rec.backend = _core.BACKENDS.get(backend, "other")
        rec.hive = hive
        rec.token = token
        rec._write = bool(flags & _core.WRITE)
        b = payload if isinstance(payload, bytes) else b""
        try:
            if token and op in _HANDLE_OPS:
                rec.path = path
                rec._parse_shape(b, 0, _HANDLE_OPS[op])
            elif op in _HANDLE_OPS:  # a raw request carrying an agent handle: no path known
                rec.handle = struct.unpack_from("<I", b, 0)[0]
                rec._parse_shape(b, 4, _HANDLE_OPS[op])
            else:
                rec._parse(b)
        except (struct.error, ValueError, UnicodeDecodeError):
            pass  # a malformed request: the agent will say so
        rec.request_bytes = len(b)
        return rec

    @property
    def is_write(self) -> bool:
        return (
            self._write
            or self.op in WRITE_OPS
            or (self.create and self.op in (_ops.OP_OPEN_KEY, _ops.OP_TX_OPEN_KEY))
        )

    @property
    def full_path(self) -> str | None:
        if self.path is None or self.root is None:
            return self.path  # offline: the hive file
        r = ROOTS.get(self.root, hex(self.root))
        return f"{r}\\{self.path}" if self.path else r

    def __repr__(self) -> str:
        return (
            f"<regfast.hooks.Operation {self.name} {self.full_path!r} value={self.value!r} "
            f"status={self.status}>"
        )

    def _parse(self, b: bytes) -> None:
        op = self.op
        if op in (_ops.OP_OPEN_KEY, _ops.OP_TX_OPEN_KEY):
            off = 4 if op == _ops.OP_TX_OPEN_KEY else 0
            if off:
                self.tx = struct.unpack_from("<I", b, 0)[0]
            self.root, _view, _acc, flags = struct.unpack_from("<IIII", b, off)
            self.create = bool(flags & 1)
            self.path = _str16(b, off + 16)[0].strip("\\")
            return
        if op in (_ops.OP_TX_COMMIT, _ops.OP_TX_ROLLBACK):
            self.tx = struct.unpack_from("<I", b, 0)[0]
            return
        if op in (_ops.OP_LOAD_HIVE, _ops.OP_UNLOAD_HIVE):  # u32 root str16 subkey [str16 file]
            self.root = struct.unpack_from("<I", b, 0)[0]
            sub, pos = _str16(b, 4)
            self.path = sub.strip("\\")
            if op == _ops.OP_LOAD_HIVE:
                self.file = _str16(b, pos)[0]
            return
        if op in (_ops.OP_LOAD_APP_HIVE, _ops.OP_FILE_KIND):  # [u32 max_keys] str16 file
            self.file = _str16(b, 4 if op == _ops.OP_LOAD_APP_HIVE else 0)[0]
            return
        if op in (_ops.OP_PRIVILEGES, _ops.OP_SET_PRIVILEGES):  # [u32 enable] u32 n, n x str16
            pos = 4 if op == _ops.OP_SET_PRIVILEGES else 0
            n = struct.unpack_from("<I", b, pos)[0]
            pos += 4
            names = []
            for _ in range(min(n, 64)):
                name, pos = _str16(b, pos)
                names.append(name)
            self.value = ",".join(names)
            return
        where: tuple[Any, ...] | None
        if op in _HANDLE_OPS:
            shape = _HANDLE_OPS[op]
            self.handle = struct.unpack_from("<I", b, 0)[0]
            where = _paths_of(self.conn).get(self.handle)
        elif op in _TX_HANDLE_OPS:
            shape = _TX_HANDLE_OPS[op]
            self.handle = struct.unpack_from("<I", b, 0)[0]
            where = _tx_paths_of(self.conn).get(self.handle)
        else:
            return
        if where is not None:
            self.root, self.path = where[0], where[1]
        self._parse_shape(b, 4, shape)

    def _parse_shape(self, b: bytes, pos: int, shape: str) -> None:
        """The fields after a key handle, by the op's shape (_HANDLE_OPS)."""
        for c in shape:
            if c in "tf":
                pos += 4
            elif c in "sn":
                self.value, pos = _str16(b, pos)
            elif c == "p":
                self.file, pos = _str16(b, pos)
            elif c == "x":
                pos = _str16(b, pos)[1]
            elif c == "k":
                sub, pos = _str16(b, pos)
                self.value = sub
                if self.path is not None:
                    self.path = f"{self.path}\\{sub}" if self.path else sub


def _str16(b: bytes, pos: int) -> tuple[str, int]:
    n = struct.unpack_from("<I", b, pos)[0]
    end = pos + 4 + n
    if end > len(b):
        raise ValueError("truncated")
    return b[pos + 4 : end].decode("utf-16-le", "surrogatepass"), end


# handle -> (root, path), per connection, learnt from OPEN_KEY answers;
# transacted key -> (root, path, tx), forgotten when the key is closed or its
# transaction ends (commit / rollback close the keys in the agent)
_handle_paths: weakref.WeakKeyDictionary[Any, dict[int, tuple[int, str]]] = weakref.WeakKeyDictionary()
_tx_handle_paths: weakref.WeakKeyDictionary[Any, dict[int, tuple[int, str, int]]] = (
    weakref.WeakKeyDictionary()
)


def _paths_of(conn: Any) -> dict[int, tuple[int, str]]:
    d = _handle_paths.get(conn)
    if d is None:
        d = _handle_paths.setdefault(conn, {})
    return d


def _tx_paths_of(conn: Any) -> dict[int, tuple[int, str, int]]:
    d = _tx_handle_paths.get(conn)
    if d is None:
        d = _tx_handle_paths.setdefault(conn, {})
    return d


# --- registration (copy-on-write tuples: dispatch reads them without a lock) --

_lock = threading.Lock()
_pre: tuple[Callable[[Operation], Any], ...] = ()
_post: tuple[Callable[[Operation], Any], ...] = ()
_sinks: tuple[Any, ...] = ()  # profilers: objects with _add(Operation)


def active() -> bool:
    """Whether any hook or profiler is installed (Connection.request then
    goes through the hook layer)."""
    return _agent._hook is not None


def _update() -> None:
    on = bool(_pre or _post or _sinks)
    # the three hook points: every live request, regfast.open_hive (hive.open
    # calls its hook as hook(path, open); a partial adds no stack frame, so the
    # DirtyHiveWarning's stacklevel still points at open_hive's caller), and
    # every rf_* call (the C log: rows kept for the profilers, a Python call
    # per operation only for pre / post hooks)
    if not _sinks:
        _drain()  # the last profiler is gone: nothing keeps what is left
    _core.set_callbacks(_core_op, _drain)
    _core.configure(bool(_sinks), bool(_pre), bool(_post))
    _agent._hook = _dispatch if on else None
    _open_hive._hook = functools.partial(run_offline, OP_OPEN_HIVE) if on else None


def _drain() -> None:
    """Hands the rows the C log kept to every profiler (bulk: numpy)."""
    rows, lost = _core.take()
    if rows is None and not lost:
        return
    for s in _sinks:
        try:
            s._add_core(rows, lost)
        except Exception as e:  # a profiler is an observer: the outcome stands
            warnings.warn(
                f"regfast profiler {s!r} failed to record rf_* rows: {e!r}", HookWarning, stacklevel=2
            )


def _core_op(
    phase: int,
    op: int,
    hive: int,
    backend: int,
    flags: int,
    token: int,
    path: str | None,
    value: str | bytes | None,
    status: int,
    start_ns: int,
    duration_ns: int,
    count: int,
    nbytes: int,
    round_trips: int,
    request_op: int = 0,
) -> bool:
    """An rf_* operation, from the C log (regfast._hooks), in the calling
    thread: runs the pre hooks (True vetoes: the exception to raise is left
    for the binding's check()) or the post hooks."""
    rec = Operation._from_core(op, hive, backend, flags, token, path, value, request_op)
    rec.start_ns = start_ns
    if phase == _core.PRE and rec.op in (OP_HIVE_CLOSE, OP_KEY_CLOSE):
        for cb in _pre:  # told, but a close goes on whatever they say (rf_hive_close)
            try:
                cb(rec)
            except Exception as e:
                warnings.warn(
                    f"regfast pre hook {getattr(cb, '__qualname__', cb)!r} raised {e!r} on a close, "
                    "which cannot be vetoed",
                    HookWarning,
                    stacklevel=2,
                )
        return False
    if phase == _core.PRE:
        for cb in _pre:
            try:
                verdict = cb(rec)
            except BaseException as e:  # aborts the op with this exception
                set_hook_veto(e)
                return True
            if verdict is False:
                set_hook_veto(
                    HookVeto(
                        13,
                        f"{rec.name} on {rec.full_path or 'a key'}"
                        f"{f' (value {rec.value!r})' if rec.value is not None else ''} "
                        f"vetoed by hook {getattr(cb, '__qualname__', cb)!r}",
                        None,
                        winerror=5,
                    )
                )
                return True
        return False
    rec.status = status
    rec.duration_ns = duration_ns
    rec.count = count
    rec.round_trips = round_trips
    rec.vetoed = bool(flags & _core.VETOED)
    if rec.is_write:
        rec.request_bytes = nbytes
    else:
        rec.response_bytes = nbytes
    for cb in _post:
        try:
            cb(rec)
        except Exception as e:  # observers must not change the outcome
            warnings.warn(
                f"regfast post hook {getattr(cb, '__qualname__', cb)!r} raised {e!r}",
                HookWarning,
                stacklevel=2,
            )
    return False


class HookHandle:
    """A registered callback; ``remove()`` (idempotent) or use it as a
    context manager to unregister it."""

    def __init__(self, kind: str, cb: Any) -> None:
        self.kind = kind
        self.callback = cb
        self.removed = False

    def remove(self) -> None:
        global _pre, _post, _sinks
        with _lock:
            if self.removed:
                return
            self.removed = True
            if self.kind == "pre":
                _pre = tuple(c for c in _pre if c is not self.callback)
            elif self.kind == "post":
                _post = tuple(c for c in _post if c is not self.callback)
            else:
                _sinks = tuple(c for c in _sinks if c is not self.callback)
            _update()

    def __enter__(self) -> HookHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def pre(callback: Callable[[Operation], Any]) -> HookHandle:
    """Registers a pre-operation callback: ``callback(op)`` before the request
    is sent; ``return False`` (or raise) vetoes it."""
    global _pre
    if not callable(callback):
        raise TypeError("callback must be callable")
    with _lock:
        _pre = _pre + (callback,)
        _update()
    return HookHandle("pre", callback)


def post(callback: Callable[[Operation], Any]) -> HookHandle:
    """Registers a post-operation callback: ``callback(op)`` after the answer,
    with op.status / op.duration_ns / op.response_bytes set."""
    global _post
    if not callable(callback):
        raise TypeError("callback must be callable")
    with _lock:
        _post = _post + (callback,)
        _update()
    return HookHandle("post", callback)


def _add_sink(sink: Any) -> HookHandle:
    global _sinks
    with _lock:
        _drain()  # rows logged before this profiler started belong to the others
        _sinks = _sinks + (sink,)
        _update()
    return HookHandle("sink", sink)


# --- the hook point: Connection.request calls this while anything is installed


def _run(
    rec: Operation,
    call: Callable[[], Any],
    filename: object,
    after: Callable[[Operation, Any], None] | None = None,
) -> Any:
    """Runs the pre hooks, `call()` (then `after(rec, result)`, before anyone
    sees the record), then the sinks and post hooks."""
    rec.start_ns = time.perf_counter_ns()
    pre_cbs, post_cbs = _pre, _post
    try:
        for cb in pre_cbs:
            if cb(rec) is False:
                rec.vetoed = True
                rec.status = 5
                raise HookVeto(
                    13,
                    f"{rec.name} on {rec.full_path or 'a key'}"
                    f"{f' (value {rec.value!r})' if rec.value is not None else ''} "
                    f"vetoed by hook {getattr(cb, '__qualname__', cb)!r}",
                    filename,
                    winerror=5,
                )
        resp = None
        rec.round_trips = 1 if rec.conn is not None else 0  # a protocol request goes out
        try:
            resp = call()
        except OSError as e:
            rec.status = getattr(e, "winerror", 0) or getattr(e, "status", 0) or -1
            raise
        except BaseException:
            rec.status = -1
            raise
        finally:
            rec.duration_ns = time.perf_counter_ns() - rec.start_ns
            if isinstance(resp, (bytes, bytearray)):
                rec.response_bytes = len(resp)
        if after is not None:
            after(rec, resp)
        return resp
    except BaseException:
        if rec.status == 0:
            rec.status = -1  # a pre hook raised
        raise
    finally:
        sinks = _sinks
        if sinks:
            _drain()  # rf_* rows logged before this request come first
        for s in sinks:
            try:
                s._add(rec)
            except Exception as e:  # a profiler is an observer too: the outcome stands
                warnings.warn(
                    f"regfast profiler {s!r} failed to record {rec!r}: {e!r}", HookWarning, stacklevel=2
                )
        for cb in post_cbs:
            try:
                cb(rec)
            except Exception as e:  # observers must not change the outcome
                warnings.warn(
                    f"regfast post hook {getattr(cb, '__qualname__', cb)!r} raised {e!r}",
                    HookWarning,
                    stacklevel=2,
                )


def _dispatch(conn: Any, op: int, payload: bytes, timeout: float | None, filename: object) -> bytes:
    rec = Operation(conn, op, payload)

    def call() -> bytes:
        rid, p = conn.start(op, payload)
        reply: bytes = conn.finish(rid, p, op, timeout, filename)
        return reply

    try:
        resp: bytes = _run(rec, call, filename, _learn if op in _LEARN_OPS else None)
    finally:
        if op in (_ops.OP_TX_COMMIT, _ops.OP_TX_ROLLBACK) and rec.tx is not None and not rec.vetoed:
            # the agent closes the transaction's keys whether the commit
            # succeeded or not (agent_tx.c op_end): their ids are dead
            m = _tx_paths_of(conn)
            for h in [h for h, (_r, _p, t) in m.items() if t == rec.tx]:
                del m[h]
    return resp


_LEARN_OPS = frozenset({_ops.OP_OPEN_KEY, _ops.OP_TX_OPEN_KEY, _ops.OP_CLOSE_KEY, _ops.OP_TX_CLOSE_KEY})


def _learn(rec: Operation, resp: bytes) -> None:
    """Keeps the handle -> path maps in step with the opens and closes."""
    op, conn = rec.op, rec.conn
    if op == _ops.OP_OPEN_KEY:
        if len(resp) >= 4 and rec.path is not None:
            rec.handle = struct.unpack_from("<I", resp, 0)[0]
            _paths_of(conn)[rec.handle] = (rec.root or 0, rec.path)
    elif op == _ops.OP_TX_OPEN_KEY:
        if len(resp) >= 4 and rec.path is not None:
            rec.handle = struct.unpack_from("<I", resp, 0)[0]
            _tx_paths_of(conn)[rec.handle] = (rec.root or 0, rec.path, rec.tx or 0)
    elif rec.handle is not None:
        (_paths_of(conn) if op == _ops.OP_CLOSE_KEY else _tx_paths_of(conn)).pop(rec.handle, None)


def run_offline(op: int, path: Any, call: Callable[[], Any]) -> Any:
    """The hook point of an offline entry point (regfast.open_hive): hooks see
    an Operation with ``path`` = the file and ``root`` None."""
    rec = Operation(None, op, b"")
    rec.path = str(path)
    return _run(rec, call, path)
