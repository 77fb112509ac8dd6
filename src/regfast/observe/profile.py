"""``regfast.profile()``: an access profiler for regfast — hive files and the live registry.

::

    with regfast.profile() as prof:
        run_my_code()
    print(prof.report())            # hottest keys, counts per op, open-each patterns
    prof.columns["duration_ns"]     # numpy columns, one row per operation

It records every operation that regfast.hooks sees (every rf_* call of the C
library — offline Key reads included —, every live-registry request of the
Python protocol, every open_hive; see :mod:`regfast.observe.hooks`) into
preallocated numpy columns that double when full — no Python object is kept
per operation. rf_* operations are logged in C (src/core/rf_oplog.c) and
arrive in bulk as one numpy array per batch; protocol requests are staged
256 at a time as tuples. Strings (key paths, value names) are interned once
into a table; the columns hold their index (-1 = none/unknown).

Columns: ``op`` (u16, agent op), ``path`` (i32, into ``strings``: the root
and key path, e.g. ``HKCU\\Software\\X``), ``value`` (i32, value name),
``handle`` (u32), ``conn`` (u32: which connection, numbered from 1 in the
order first seen; 0 = offline), ``create`` (bool), ``bytes_out`` /
``bytes_in`` (u64: request and answer payload bytes), ``status`` (i32: 0 or
the Win32 code; 5 for a veto; a code above 2**31-1, e.g. an NTSTATUS, is
stored as its low 32 bits read as signed), ``start_ns`` / ``duration_ns``
(i64, the monotonic clock: perf_counter_ns), ``vetoed`` (bool: a pre hook
stopped it; nothing was sent), ``backend`` (u8: 0 a protocol request or
open_hive, 1 regf, 2 nt, 3 remote — an rf_* operation), ``count`` (u64:
rf_* rows, subkeys or keys the operation returned), ``round_trips`` (u32:
requests that went to the registry for it — 1 for a protocol request not
vetoed; for an rf_* operation of the C remote backend its agent round trips,
often 0 thanks to its caches; 0 on a hive file).

For rf_* operations ``path`` is the key's path inside its hive (no root:
``Software\\X``; ``count(path=...)`` matches it with or without one) and
``op`` is ``hooks.C_OP_BASE + RF_OP_*``, named as the agent's op where it
is the same one (``open_key``, ``get_value``, ``subkeys``...).
``round_trips()`` is the sum of that column.

Kept and compared (a CI gate on access patterns)::

    from regfast.observe.profile import Profiler, compare
    text = prof.to_json()                   # Profiler.from_json(text) gives it back
    compare(base, new)                      # what got worse: a ProfileComparison

    $ regfast profile --json new.json -- python script.py
    $ regfast profile compare base.json new.json --max-extra-round-trips 0 --no-new-open-each

When no profiler and no hook is active, the cost is one global check per
request (bench/bench_hooks.py) and one pointer test per rf_* call.

Command line: ``regfast profile [--json OUT] -- python script.py args...``
runs the script in this process (runpy) with a profiler on, prints the report
to stderr and saves the profile; ``regfast profile compare BASE NEW`` (see
:func:`regfast.cli.profile.cmd_compare`) prints what got worse and exits 1 past a threshold.
"""

from __future__ import annotations

import json
import threading
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from regfast import _hooks as _core
from regfast._types import upcase_name
from regfast.live import _agent_ops as _ops
from regfast.observe import hooks as _hooks

__all__ = ["profile", "Profiler", "ProfileReport", "OpenEach", "ProfileComparison", "compare"]

_DTYPES = {
    "op": np.uint16,
    "path": np.int32,
    "value": np.int32,
    "handle": np.uint32,
    "conn": np.uint32,
    "create": np.bool_,
    "bytes_out": np.uint64,
    "bytes_in": np.uint64,
    "status": np.int32,
    "start_ns": np.int64,
    "duration_ns": np.int64,
    "vetoed": np.bool_,
    "backend": np.uint8,
    "count": np.uint64,
    "round_trips": np.uint32,
}
# columns a profile saved before they existed may lack (from_json fills them;
# round_trips from conn and vetoed, what round_trips() counted then)
_OPTIONAL = {"vetoed": False, "backend": 0, "count": 0, "round_trips": 0}


@dataclass
class OpenEach:
    """A key opened and closed again and again: with the handle cache (an
    open-once handle kept), ``opens - 1`` opens and as many closes go away."""

    path: str
    opens: int
    cycles: int  # open followed by the close of that handle, before the next open
    time_ns: int  # spent in those opens and closes

    @property
    def removable(self) -> int:
        return self.opens - 1


@dataclass
class ProfileReport:
    """What :meth:`Profiler.report` returns; ``str()`` gives the text table."""

    operations: int
    total_ns: int
    bytes: int
    per_op: list[tuple[str, int, int, int]]  # (op name, count, total ns, errors)
    hottest: list[tuple[str, int, int, int]]  # (key path, count, total ns, bytes)
    open_each: list[OpenEach]

    def __str__(self) -> str:
        out = [
            f"regfast profile: {self.operations:,} operations, {self.total_ns / 1e6:.1f} ms in "
            f"registry calls, {self.bytes:,} bytes"
        ]
        if self.per_op:
            out.append("\nper operation:")
            out.append(f"  {'op':<16} {'count':>8} {'total ms':>10} {'mean us':>9} {'errors':>7}")
            for name, n, ns, err in self.per_op:
                out.append(f"  {name:<16} {n:>8,} {ns / 1e6:>10.2f} {ns / n / 1e3:>9.1f} {err:>7,}")
        if self.hottest:
            out.append("\nhottest keys (by time):")
            out.append(f"  {'count':>8} {'total ms':>10} {'bytes':>12}  key")
            for path, n, ns, b in self.hottest:  # a root key's path is "": say which key that is
                out.append(f"  {n:>8,} {ns / 1e6:>10.2f} {b:>12,}  {path or '(root)'}")
        if self.open_each:
            out.append("\nopen-each patterns (the handle cache would remove opens-1 opens and closes):")
            out.append(f"  {'opens':>8} {'cycles':>8} {'ms':>8}  key")
            for o in self.open_each:
                out.append(f"  {o.opens:>8,} {o.cycles:>8,} {o.time_ns / 1e6:>8.2f}  {o.path}")
        else:
            out.append("\nno open-each pattern")
        return "\n".join(out)


class Profiler:
    """Records operations into numpy columns while active (a context manager;
    or start() / stop()). Thread-safe: rows are appended under a lock."""

    def __init__(self, capacity: int = 1024) -> None:
        self._cap = max(16, int(capacity))
        self._n = 0
        self._cols: dict[str, np.ndarray] = {k: np.zeros(self._cap, dtype=t) for k, t in _DTYPES.items()}
        self.strings: list[str] = []
        self._ids: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stage: list[tuple[Any, ...]] = []
        self._unsorted = False
        self._cmap = np.full(0, -2, np.int32)  # the C log's string ids -> ours (-2: not yet)
        self._conn_ids: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self._handle: _hooks.HookHandle | None = None
        self._names: dict[int, str] = _hooks.OP_NAMES  # op number -> name

    # --- recording --------------------------------------------------------

    def start(self) -> Profiler:
        if self._handle is None:
            # the C log's string ids are valid while it stays installed,
            # which it does from here until stop() at least
            self._cmap = np.full(0, -2, np.int32)
            self._handle = _hooks._add_sink(self)
        return self

    def stop(self) -> None:
        if self._handle is not None:
            _hooks._drain()  # what the C log kept so far is this profile's too
            self._handle.remove()
            self._handle = None

    def __enter__(self) -> Profiler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _intern(self, s: str | None) -> int:
        if s is None:
            return -1
        i = self._ids.get(s)
        if i is None:
            with self._lock:
                i = self._ids.get(s)
                if i is None:
                    i = self._ids[s] = len(self.strings)
                    self.strings.append(s)
        return i

    def _intern_many(self, strs: list[str | None]) -> list[int]:
        """_intern over a batch (caller holds the lock)."""
        ids, table = self._ids, self.strings
        out = []
        for s in strs:
            if s is None:
                out.append(-1)
                continue
            i = ids.get(s)
            if i is None:
                i = ids[s] = len(table)
                table.append(s)
            out.append(i)
        return out

    _STAGE = 256

    def _conn_id(self, conn: Any) -> int:
        if conn is None:
            return 0
        i = self._conn_ids.get(conn)
        if i is None:
            with self._lock:
                i = self._conn_ids.setdefault(conn, len(self._conn_ids) + 1)
        return i

    def _add(self, rec: _hooks.Operation) -> None:
        # One tuple into a bounded staging list (no numpy scalar stores per
        # op: ten of those cost ~5 us); _flush() moves 256 rows at a time
        # into the columns with one vectorized assignment per column. Every
        # field is brought into its column's range here, so that a flush can
        # not fail on one odd row (an NTSTATUS as status, say) and lose the
        # 255 others.
        st = int(rec.status)
        if not -0x80000000 <= st <= 0x7FFFFFFF:
            st = ((st & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
        row = (
            rec.op & 0xFFFF,
            self._intern(rec.full_path),
            self._intern(rec.value),
            (rec.handle or 0) & 0xFFFFFFFF,
            self._conn_id(rec.conn),
            bool(rec.create),
            max(rec.request_bytes, 0),
            max(rec.response_bytes, 0),
            st,
            rec.start_ns,
            rec.duration_ns,
            bool(rec.vetoed),
            0,
            0,
            min(max(rec.round_trips, 0), 0xFFFFFFFF),
        )
        with self._lock:
            self._stage.append(row)
            if len(self._stage) >= self._STAGE:
                self._flush()

    def _add_core(self, rows: np.ndarray | None, lost: int) -> None:
        """rf_* operations from the C log (regfast._hooks.ROW_DTYPE rows), in
        bulk: one vectorized conversion per column, one intern per distinct
        string of the batch."""
        if lost:
            warnings.warn(
                f"regfast profiler: {lost:,} rf_* operations were not recorded (no memory)",
                RuntimeWarning,
                stacklevel=2,
            )
        if rows is None or not len(rows):
            return
        write = (rows["flags"] & _core.WRITE) != 0
        nbytes = rows["bytes"]
        # under the lock throughout: two threads may drain at once (one
        # calling columns, one whose rf_* call filled the log), and _cmap
        # must grow and fill in one piece
        with self._lock:
            self._flush()  # protocol rows staged before these come first
            self._store(self._core_columns(rows, write, nbytes))

    def _core_columns(self, rows: np.ndarray, write: np.ndarray, nbytes: np.ndarray) -> dict[str, np.ndarray]:
        """The columns of a batch of the C log's rows (caller holds the lock)."""
        # an agent request through rf_remote_request is profiled as the agent
        # op it is (set_security, load_hive...); its payload is not a name
        request = rows["op"] == _hooks.RF_OP_REQUEST
        payload = (rows["flags"] & _core.PAYLOAD) != 0
        return {
            "op": np.where(
                request, rows["request_op"], rows["op"].astype(np.uint16) + _hooks.C_OP_BASE
            ).astype(np.uint16),
            "path": self._intern_ids(rows["path"]),
            "value": self._intern_ids(np.where(payload, -1, rows["value"]).astype(np.int32)),
            "handle": np.zeros(len(rows), np.uint32),
            "conn": np.zeros(len(rows), np.uint32),
            "create": rows["op"] == _hooks.OP_KEY_CREATE - _hooks.C_OP_BASE,
            "bytes_out": np.where(write, nbytes, 0).astype(np.uint64),
            "bytes_in": np.where(write, 0, nbytes).astype(np.uint64),
            "status": rows["status"],
            "start_ns": rows["start_ns"].astype(np.int64),
            "duration_ns": rows["duration_ns"].astype(np.int64),
            "vetoed": (rows["flags"] & _core.VETOED) != 0,
            "backend": rows["backend"],
            "count": rows["count"],
            "round_trips": rows["round_trips"],
        }

    def _intern_ids(self, ids: np.ndarray) -> np.ndarray:
        """The C log's string ids as ids of this profile's table: a gather
        through ``_cmap`` (log id -> id here, -2 not yet seen); only ids new
        to this profile cost a Python intern (caller holds the lock)."""
        if not len(ids):
            return np.zeros(0, np.int32)
        top = int(ids.max())
        if top >= len(self._cmap):
            grown = np.full(max(top + 1, 2 * len(self._cmap)), -2, np.int32)
            grown[: len(self._cmap)] = self._cmap
            self._cmap = grown
        known = ids >= 0
        fresh = np.unique(ids[known][self._cmap[ids[known]] == -2])
        if len(fresh):
            self._cmap[fresh] = self._intern_many(_core.strings(fresh))
        out = np.full(len(ids), -1, np.int32)  # (-1 stays -1: no string; _cmap may still be empty)
        out[known] = self._cmap[ids[known]]
        return out

    def _flush(self) -> None:
        """Moves staged rows into the columns (caller holds the lock). The
        staged rows are dropped only once they are stored: a failure leaves
        the columns and the stage as they were."""
        rows = self._stage
        if not rows:
            return
        # convert every column before storing any (rows i.. are free space)
        new: dict[str, np.ndarray] = {
            name: np.array([r[j] for r in rows], dtype=_DTYPES[name]) for j, name in enumerate(_DTYPES)
        }
        self._store(new)
        self._stage = []

    def _store(self, new: dict[str, np.ndarray]) -> None:
        """Appends converted rows, one array per column (caller holds the lock)."""
        i, k = self._n, len(new["op"])
        cols = self._cols
        if i + k > self._cap:
            cap = self._cap
            while i + k > cap:
                cap *= 2
            cols = {}
            for name, a in self._cols.items():
                b = np.zeros(cap, dtype=a.dtype)
                b[:i] = a[:i]
                cols[name] = b
        else:
            cap = self._cap
        for name, a in new.items():
            cols[name][i : i + k] = a
        # rf_* rows arrive in batches, protocol rows one by one, and an
        # operation is recorded when it ends: kept in order of start (one
        # clock for both, the monotonic one) when the columns are read
        st = cols["start_ns"]
        if k and ((i and st[i] < st[i - 1]) or (k > 1 and bool((np.diff(st[i : i + k]) < 0).any()))):
            self._unsorted = True
        self._cols, self._cap, self._n = cols, cap, i + k

    # --- results ------------------------------------------------------------

    def __len__(self) -> int:
        if self._handle is not None:
            _hooks._drain()
        return self._n + len(self._stage)

    @property
    def columns(self) -> dict[str, np.ndarray]:
        """The recorded rows, one numpy array per column (views: copy to keep)."""
        if self._handle is not None:
            _hooks._drain()  # rf_* rows the C log still holds
        with self._lock:
            self._flush()
            n = self._n
            if self._unsorted:
                order = np.argsort(self._cols["start_ns"][:n], kind="stable")
                for a in self._cols.values():
                    a[:n] = a[:n][order]
                self._unsorted = False
            return {k: a[:n] for k, a in self._cols.items()}

    def op_names(self) -> list[str]:
        return [self._names.get(int(o), f"op{o}") for o in self.columns["op"]]

    def counts(self) -> dict[str, int]:
        """Operations per op name."""
        ops = self.columns["op"]
        u, n = np.unique(ops, return_counts=True)
        return {self._names.get(int(o), f"op{o}"): int(c) for o, c in zip(u, n, strict=True)}

    def _op_codes(self, op: str | int | Sequence[str | int] | None) -> list[int] | None:
        if op is None:
            return None
        ops = [op] if isinstance(op, (str, int)) else list(op)
        codes = []
        for o in ops:
            if isinstance(o, str):
                found = [k for k, name in self._names.items() if name == o]
                if not found:
                    raise ValueError(f"unknown operation {o!r} (one of {sorted(self._names.values())})")
                codes += found
            else:
                codes.append(int(o))
        return codes

    def _path_ids(self, path: str) -> list[int]:
        # names compared as the registry compares them (str.lower() made the
        # Kelvin sign and "k" one name, which the registry does not)
        want = upcase_name(path.strip("\\"))
        ids = []
        for i, s in enumerate(self.strings):
            up = upcase_name(s.strip("\\"))
            if up == want:
                ids.append(i)
            elif "\\" in up:
                root, rest = up.split("\\", 1)
                if rest == want and root in _hooks.ROOTS.values():
                    ids.append(i)  # "Software\\X" matches "HKCU\\Software\\X"
        return ids

    def count(
        self,
        op: str | int | Sequence[str | int] | None = None,
        *,
        path: str | None = None,
        value: str | None = None,
        failed: bool | None = None,
    ) -> int:
        """Operations recorded, optionally only of `op` (a name such as
        ``"open_key"``, a number, or several), on key `path` (case-insensitive;
        with or without the root: ``"Software\\X"`` matches ``HKCU\\Software\\X``;
        for open_hive the file), of value `value`, that failed (status != 0)
        or not."""
        c = self.columns
        m = np.ones(len(c["op"]), bool)
        codes = self._op_codes(op)
        if codes is not None:
            m &= np.isin(c["op"], codes)
        if path is not None:
            m &= np.isin(c["path"], self._path_ids(path))
        if value is not None:
            want = upcase_name(value)
            vid = [i for i, s in enumerate(self.strings) if upcase_name(s) == want]
            m &= np.isin(c["value"], vid)
        if failed is not None:
            m &= (c["status"] != 0) == failed
        return int(m.sum())

    def round_trips(self) -> int:
        """Requests that reached the registry through a connection: every
        request of the Python agent client not vetoed (the agent's pipe or
        the in-process core), and the agent round trips the C remote backend
        made for its rf_* operations (column ``round_trips``). A hive file's
        operations make none."""
        return int(self.columns["round_trips"].sum())

    def open_each(self) -> list[OpenEach]:
        """Keys opened and closed again and again (see :class:`OpenEach`)."""
        return self._open_each()

    def operations(self) -> list[tuple[str, str | None, str | None, int]]:
        """Every recorded operation as (op name, key path, value name, status), in order."""
        c = self.columns
        s = self.strings
        return [
            (self._names.get(int(o), f"op{o}"), s[p] if p >= 0 else None, s[v] if v >= 0 else None, int(st))
            for o, p, v, st in zip(
                c["op"].tolist(), c["path"].tolist(), c["value"].tolist(), c["status"].tolist(), strict=True
            )
        ]

    # --- keeping a profile -------------------------------------------------

    FORMAT = "regfast-profile"
    VERSION = 1

    def to_json(self, *, indent: int | None = None) -> str:
        """The whole profile as JSON (columns as lists, the string table, op
        names), for :meth:`from_json` or ``regfast profile compare``."""
        c = self.columns
        doc = {
            "format": self.FORMAT,
            "version": self.VERSION,
            "op_names": {str(k): v for k, v in self._names.items()},
            "strings": list(self.strings),
            "columns": {k: a.tolist() for k, a in c.items()},
        }
        return json.dumps(doc, indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Profiler:
        """A profile saved by :meth:`to_json` (stopped; report(), count()... work).

        Raises
        ------
        ValueError
            Not a regfast profile, a newer format, or columns that disagree.
        """
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"not a regfast profile (JSON error: {e})") from None
        except UnicodeDecodeError:
            raise ValueError("not a regfast profile (not UTF-8 text)") from None
        if not isinstance(doc, dict) or doc.get("format") != cls.FORMAT:
            raise ValueError('not a regfast profile (no "format": "regfast-profile")')
        try:
            return cls._from_doc(doc)
        except (TypeError, AttributeError, OverflowError) as e:
            # a field of the wrong JSON type (a list for a mapping, null for
            # a column, a number past 64 bits): the file's fault, not ours
            raise ValueError(f"malformed regfast profile: {e}") from None

    @classmethod
    def _from_doc(cls, doc: dict[str, Any]) -> Profiler:
        if int(doc.get("version", 0)) > cls.VERSION:
            raise ValueError(
                f"profile format version {doc.get('version')} is newer than this "
                f"regfast reads ({cls.VERSION})"
            )
        cols = doc.get("columns") or {}
        strings = [str(x) for x in doc.get("strings") or []]
        n = len(cols.get("op", []))
        prof = cls(capacity=max(16, n))
        for name, dt in _DTYPES.items():
            vals = cols.get(name)
            if vals is None:
                if name in _OPTIONAL:  # (absent before it was recorded)
                    vals = [_OPTIONAL[name]] * n
                else:
                    raise ValueError(f"profile lacks the {name!r} column")
            if len(vals) != n:
                raise ValueError(f"profile column {name!r} has {len(vals)} rows, 'op' has {n}")
            prof._cols[name][:n] = np.asarray(vals, dtype=dt)
        if cols.get("round_trips") is None:  # before the column: what round_trips() counted then
            prof._cols["round_trips"][:n] = (prof._cols["conn"][:n] != 0) & ~prof._cols["vetoed"][:n]
        for name in ("path", "value"):
            a = prof._cols[name][:n]
            if n and (a.max() >= len(strings) or a.min() < -1):
                raise ValueError(f"profile column {name!r} names a string that is not in its table")
        # op numbers are kept; names the profile knew and this version does not come along
        prof._names = {**{int(k): str(v) for k, v in (doc.get("op_names") or {}).items()}, **_hooks.OP_NAMES}
        prof._n = n
        prof.strings = strings
        prof._ids = {s: i for i, s in enumerate(strings)}
        return prof

    def report(self, top: int = 10) -> ProfileReport:
        c = self.columns
        n = len(c["op"])
        dur = c["duration_ns"]
        by = c["bytes_out"] + c["bytes_in"]
        per_op = []
        for o in np.unique(c["op"]):
            m = c["op"] == o
            per_op.append(
                (
                    self._names.get(int(o), f"op{o}"),
                    int(m.sum()),
                    int(dur[m].sum()),
                    int((c["status"][m] != 0).sum()),
                )
            )
        per_op.sort(key=lambda r: (-r[2], r[0]))
        hottest = []
        ids = c["path"]
        known = ids >= 0
        if known.any():
            k = len(self.strings)
            cnt = np.bincount(ids[known], minlength=k)
            tim = np.bincount(ids[known], weights=dur[known], minlength=k)
            byt = np.bincount(ids[known], weights=by[known], minlength=k)
            order = np.lexsort((-cnt, -tim))
            hottest = [
                (self.strings[i], int(cnt[i]), int(tim[i]), int(byt[i])) for i in order[:top] if cnt[i]
            ]
        return ProfileReport(n, int(dur.sum()), int(by.sum()), per_op, hottest, self._open_each()[:top])

    def _open_each(self) -> list[OpenEach]:
        """Keys opened, closed, and opened again. Protocol rows (OPEN_KEY /
        CLOSE_KEY) pair by connection and handle (each connection numbers its
        handles itself). rf_* rows (key_open, key_child, key_create, then
        Key.close()'s key_close) pair by path: a token names the same key for
        every Key object of it, so a close ends one open of its path."""
        c = self.columns
        ops, paths, handles, conns, dur = c["op"], c["path"], c["handle"], c["conn"], c["duration_ns"]
        core_opens = np.isin(ops, _CORE_OPENS)
        rows = np.flatnonzero(
            (
                (ops == _ops.OP_OPEN_KEY)
                | (ops == _ops.OP_CLOSE_KEY)
                | core_opens
                | (ops == _hooks.OP_KEY_CLOSE)
            )
            & (c["status"] == 0)
        )
        open_of: dict[tuple[int, int], int] = {}  # (conn, handle) -> path id, while open
        core_open: dict[int, int] = {}  # path id -> rf_* opens not closed yet
        opens: dict[int, int] = {}
        cycles: dict[int, int] = {}
        tns: dict[int, int] = {}
        for r in rows.tolist():
            op = int(ops[r])
            p = int(paths[r])
            if op == _ops.OP_OPEN_KEY or core_opens[r]:
                if p < 0:
                    continue
                if core_opens[r]:
                    core_open[p] = core_open.get(p, 0) + 1
                else:
                    open_of[(int(conns[r]), int(handles[r]))] = p
                opens[p] = opens.get(p, 0) + 1
                tns[p] = tns.get(p, 0) + int(dur[r])
                continue
            if op == _hooks.OP_KEY_CLOSE:
                if core_open.get(p, 0) <= 0:
                    continue  # opened before the profile, or its path unknown
                core_open[p] -= 1
            else:
                p = open_of.pop((int(conns[r]), int(handles[r])), -1)
                if p < 0:
                    continue
            cycles[p] = cycles.get(p, 0) + 1
            tns[p] += int(dur[r])
        out = [
            OpenEach(self.strings[p], opens[p], cycles.get(p, 0), tns[p])
            for p in opens
            if opens[p] >= 2 and cycles.get(p, 0) >= 2
        ]
        out.sort(key=lambda o: (-o.opens, o.path))
        return out


# rf_* rows that open a key (as the open-each pairing counts them)
_CORE_OPENS = np.array(
    [_hooks.C_OP_BASE + _hooks.RF_OPS[n] for n in ("key_open", "key_child", "key_create")], np.uint16
)


def profile(capacity: int = 1024) -> Profiler:
    """A :class:`Profiler`, to use as ``with regfast.profile() as prof:``."""
    return Profiler(capacity)


# ---------------------------------------------------------------------------
# comparing two profiles
# ---------------------------------------------------------------------------

_OPENS = ("open_key", "tx_open_key")


def _groups(prof: Profiler) -> dict[tuple[str, str | None], np.ndarray]:
    """Durations (ns) of each (op name, key path) and each (op name, None)."""
    c = prof.columns
    out: dict[tuple[str, str | None], np.ndarray] = {}
    if not len(c["op"]):
        return out
    key = c["op"].astype(np.int64) << 32 | (c["path"].astype(np.int64) + 1)
    order = np.argsort(key, kind="stable")
    k, d = key[order], c["duration_ns"][order]
    cuts = np.flatnonzero(np.diff(k)) + 1
    for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(k)]]), strict=True):
        op, pid = int(k[lo] >> 32), int(k[lo] & 0xFFFFFFFF) - 1
        name = prof._names.get(op, f"op{op}")
        out[(name, prof.strings[pid] if pid >= 0 else None)] = d[lo:hi]
    for name in {n for n, _ in out}:
        out[(name, None)] = np.concatenate(
            [v for (n, p), v in out.items() if n == name and p is not None]
            + [out.get((name, None), np.empty(0, np.int64))]
        )
    return out


@dataclass
class ProfileComparison:
    """What :func:`compare` found: everything that got worse from ``base`` to ``new``.

    ``counts``: (op, base, new) for every op whose count changed;
    ``more_opens``: (key path, base, new) where a key was opened more often;
    ``open_each``: (key path, base opens, new opens) for open-each patterns
    that are new or grew; ``slower``: (op, key path or None for the op over
    all keys, base median ns, new median ns, base count, new count) where the
    median got slower, among groups with ``min_count`` samples on both sides."""

    operations: tuple[int, int]
    round_trips: tuple[int, int]
    counts: list[tuple[str, int, int]] = field(default_factory=list)
    more_opens: list[tuple[str, int, int]] = field(default_factory=list)
    open_each: list[tuple[str, int, int]] = field(default_factory=list)
    slower: list[tuple[str, str | None, float, float, int, int]] = field(default_factory=list)

    def violations(
        self,
        *,
        max_extra_round_trips: int | None = None,
        max_extra_opens: int | None = None,
        no_new_open_each: bool = False,
        max_slowdown: float | None = None,
    ) -> list[str]:
        """The thresholds crossed (empty: none). Unset thresholds are not checked."""
        out = []
        b, n = self.round_trips
        if max_extra_round_trips is not None and n - b > max_extra_round_trips:
            out.append(f"round trips {b:,} -> {n:,} (+{n - b:,}, allowed +{max_extra_round_trips:,})")
        if max_extra_opens is not None:
            out += [
                f"opens of {p} {b:,} -> {n:,} (+{n - b:,}, allowed +{max_extra_opens:,})"
                for p, b, n in self.more_opens
                if n - b > max_extra_opens
            ]
        if no_new_open_each:
            out += [f"open-each pattern on {p}: {b:,} -> {n:,} opens" for p, b, n in self.open_each]
        if max_slowdown is not None:
            out += [
                f"{op}{' on ' + p if p else ' (all keys)'}: median {bm / 1e3:.1f} us -> {nm / 1e3:.1f} us "
                f"(x{nm / bm:.2f}, allowed x{max_slowdown:g})"
                for op, p, bm, nm, _, _ in self.slower
                if bm > 0 and nm / bm > max_slowdown
            ]
        return out

    def __str__(self) -> str:
        (bo, no), (bt, nt) = self.operations, self.round_trips
        out = [f"regfast profile compare: {bo:,} -> {no:,} operations, {bt:,} -> {nt:,} round trips"]
        if self.counts:
            out.append("\noperations whose count changed:")
            out += [f"  {op:<16} {b:>8,} -> {n:<8,} ({n - b:+,})" for op, b, n in self.counts]
        if self.more_opens:
            out.append("\nkeys opened more often:")
            out += [f"  {b:>8,} -> {n:<8,} {p}" for p, b, n in self.more_opens]
        if self.open_each:
            out.append("\nopen-each patterns, new or grown (opens):")
            out += [f"  {b:>8,} -> {n:<8,} {p}" for p, b, n in self.open_each]
        if self.slower:
            out.append("\nslower (median per operation):")
            out += [
                f"  {op:<16} {bm / 1e3:>9.1f} us -> {nm / 1e3:>9.1f} us  "
                f"x{nm / bm if bm else float('inf'):.2f}"
                f"  ({bn:,} / {nn:,} ops)  {p or '(all keys)'}"
                for op, p, bm, nm, bn, nn in self.slower
            ]
        if len(out) == 1:
            out.append("nothing got worse")
        return "\n".join(out)


def compare(base: Profiler, new: Profiler, *, min_count: int = 5) -> ProfileComparison:
    """What got worse from `base` to `new`: more operations of a kind, more
    opens of one key, more round trips, open-each patterns that are new or
    grew, and slower operations (by median, per op and per op and key)."""
    gb, gn = _groups(base), _groups(new)
    cb, cn = base.counts(), new.counts()
    counts = sorted(
        ((op, cb.get(op, 0), cn.get(op, 0)) for op in set(cb) | set(cn) if cb.get(op, 0) != cn.get(op, 0)),
        key=lambda r: (-(r[2] - r[1]), r[0]),
    )

    def opens(g: dict[tuple[str, str | None], np.ndarray]) -> dict[str, int]:
        out: dict[str, int] = {}
        for (op, p), d in g.items():
            if op in _OPENS and p is not None:
                out[p] = out.get(p, 0) + len(d)
        return out

    ob, on = opens(gb), opens(gn)
    more_opens = sorted(
        ((p, ob.get(p, 0), n) for p, n in on.items() if n > ob.get(p, 0)),
        key=lambda r: (-(r[2] - r[1]), r[0]),
    )
    eb = {o.path: o.opens for o in base.open_each()}
    open_each = sorted(
        ((o.path, eb.get(o.path, 0), o.opens) for o in new.open_each() if o.opens > eb.get(o.path, 0)),
        key=lambda r: (-(r[2] - r[1]), r[0]),
    )
    slower = []
    for k, dn in gn.items():
        db = gb.get(k)
        if db is None or len(db) < min_count or len(dn) < min_count:
            continue
        bm, nm = float(np.median(db)), float(np.median(dn))
        if nm > bm:
            slower.append((k[0], k[1], bm, nm, len(db), len(dn)))
    slower.sort(key=lambda r: (-(r[3] / r[2]) if r[2] else float("-inf"), r[0], r[1] or ""))
    return ProfileComparison(
        (len(base), len(new)), (base.round_trips(), new.round_trips()), counts, more_opens, open_each, slower
    )
