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

What is covered: every operation on the **live** registry, i.e. every request
that goes through :meth:`regfast.live.protocol.Connection.request` (the agent's pipe
and the in-process core alike) — Registry.open_key / create_key / delete_key,
every live Key method (reads, writes, snapshot, close...), watch set-up,
the administration ops of regfast.live.admin (rename, security, privileges, hive
save / load / unload / restore / replace, app hives, MUI strings: the
mutating ones have ``is_write``), regfast.transaction (its journal reads and
writes, and the KTM ops). Offline,
only :func:`regfast.open_hive` is hooked (op ``"open_hive"``, ``path`` = the
file, ``root`` None; a veto keeps the file from being opened). The offline
:class:`regfast.Hive` / :class:`regfast.Key` methods are **not** hooked: they
are compiled (Cython), and a Python hook point on them would cost a Python
call on the very reads the binding exists to make cheap.

Cost when no hook and no profiler is active: ``Connection.request`` checks one
module global (``regfast.live.protocol._hook``) and goes on; bench/bench_hooks.py
measures it against a Connection with no hook point at all.

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
* Paths come from the OPEN_KEY requests the hook layer saw: a key opened
  while no hook or profiler was active shows ``path=None`` (its handle is in
  ``op.handle``). A veto policy that must not be bypassed should be installed
  before the keys it guards are opened, or veto ``path is None`` writes.
* Callbacks run in the thread making the request; keep them short.
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

from regfast.exceptions import RegistryPermissionError
from regfast.hive import open as _open_hive
from regfast.live import _agent_ops as _ops
from regfast.live import protocol as _agent

__all__ = ["pre", "post", "HookVeto", "HookWarning", "HookHandle", "Operation", "OP_NAMES", "active"]

OP_NAMES: dict[int, str] = dict(_ops.NAMES)  # from src/agent/ag_ops.def
# Not agent ops: the offline entry points hooked (regfast.open_hive).
OP_OPEN_HIVE = 0x1000
OP_NAMES[OP_OPEN_HIVE] = "open_hive"
# Everything that changes the registry (or, set_privileges, the agent's
# token): what a veto policy on ``op.is_write`` must see. save_key writes a
# file but only reads the registry; it is not here (its ``file`` is set).
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
    op : int            agent op number (regfast.live._agent_ops.OP_*)
    name : str          "open_key", "set_value"... (OP_NAMES)
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
    request_bytes : int payload bytes sent
    status : int        post only: 0, or the Win32 code of the failure (5 for a veto)
    response_bytes : int post only
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
        try:
            self._parse(payload)
        except (struct.error, ValueError, UnicodeDecodeError):
            pass  # a malformed request: the agent will say so

    @property
    def is_write(self) -> bool:
        return self.op in WRITE_OPS or (self.create and self.op in (_ops.OP_OPEN_KEY, _ops.OP_TX_OPEN_KEY))

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
        pos = 4
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
    # the two hook points: every live request, and regfast.open_hive (hive.open
    # calls its hook as hook(path, open); a partial adds no stack frame, so the
    # DirtyHiveWarning's stacklevel still points at open_hive's caller)
    _agent._hook = _dispatch if on else None
    _open_hive._hook = functools.partial(run_offline, OP_OPEN_HIVE) if on else None


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
        for s in _sinks:
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
