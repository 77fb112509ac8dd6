"""``regfast.profile()``: an access profiler for the live registry.

::

    with regfast.profile() as prof:
        run_my_code()
    print(prof.report())            # hottest keys, counts per op, open-each patterns
    prof.columns["duration_ns"]     # numpy columns, one row per operation

It records every operation that regfast.hooks sees (every live-registry
request; see :mod:`regfast.hooks` for what is covered) into preallocated
numpy columns that double when full — no Python object is kept per
operation (rows are staged 256 at a time as tuples, then stored with one
vectorized assignment per column). Strings (key paths, value names) are interned once into a table;
the columns hold their index (-1 = none/unknown).

Columns: ``op`` (u16, agent op), ``path`` (i32, into ``strings``: the root
and key path, e.g. ``HKCU\\Software\\X``), ``value`` (i32, value name),
``handle`` (u32), ``conn`` (u32: which connection, numbered from 1 in the
order first seen; 0 = offline), ``create`` (bool), ``bytes_out`` /
``bytes_in`` (u64: request and answer payload bytes), ``status`` (i32: 0 or
the Win32 code; 5 for a veto; a code above 2**31-1, e.g. an NTSTATUS, is
stored as its low 32 bits read as signed), ``start_ns`` / ``duration_ns``
(i64, perf_counter_ns).

When no profiler and no hook is active, the cost is one global check per
request (bench/bench_hooks.py).

Command line: ``regfast profile -- python script.py args...`` runs the
script in this process (runpy) with a profiler on and prints the report to
stderr.
"""
from __future__ import annotations

import argparse
import os
import runpy
import sys
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from regfast import agent as _agent
from regfast import hooks as _hooks

__all__ = ["profile", "Profiler", "ProfileReport", "OpenEach"]

_DTYPES = {
    "op": np.uint16, "path": np.int32, "value": np.int32, "handle": np.uint32, "conn": np.uint32, "create": np.bool_,
    "bytes_out": np.uint64, "bytes_in": np.uint64, "status": np.int32, "start_ns": np.int64,
    "duration_ns": np.int64,
}


@dataclass
class OpenEach:
    """A key opened and closed again and again: with the handle cache (an
    open-once handle kept), ``opens - 1`` opens and as many closes go away."""
    path: str
    opens: int
    cycles: int          # open followed by the close of that handle, before the next open
    time_ns: int         # spent in those opens and closes

    @property
    def removable(self) -> int:
        return self.opens - 1


@dataclass
class ProfileReport:
    """What :meth:`Profiler.report` returns; ``str()`` gives the text table."""
    operations: int
    total_ns: int
    bytes: int
    per_op: list[tuple[str, int, int, int]]          # (op name, count, total ns, errors)
    hottest: list[tuple[str, int, int, int]]         # (key path, count, total ns, bytes)
    open_each: list[OpenEach]

    def __str__(self) -> str:
        out = [f"regfast profile: {self.operations:,} operations, {self.total_ns / 1e6:.1f} ms in "
               f"registry calls, {self.bytes:,} bytes"]
        if self.per_op:
            out.append("\nper operation:")
            out.append(f"  {'op':<16} {'count':>8} {'total ms':>10} {'mean us':>9} {'errors':>7}")
            for name, n, ns, err in self.per_op:
                out.append(f"  {name:<16} {n:>8,} {ns / 1e6:>10.2f} {ns / n / 1e3:>9.1f} {err:>7,}")
        if self.hottest:
            out.append("\nhottest keys (by time):")
            out.append(f"  {'count':>8} {'total ms':>10} {'bytes':>12}  key")
            for path, n, ns, b in self.hottest:
                out.append(f"  {n:>8,} {ns / 1e6:>10.2f} {b:>12,}  {path}")
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
        self._conn_ids: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self._handle: _hooks.HookHandle | None = None

    # --- recording --------------------------------------------------------

    def start(self) -> Profiler:
        if self._handle is None:
            self._handle = _hooks._add_sink(self)
        return self

    def stop(self) -> None:
        if self._handle is not None:
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
        row = (rec.op & 0xFFFF, self._intern(rec.full_path), self._intern(rec.value),
               (rec.handle or 0) & 0xFFFFFFFF, self._conn_id(rec.conn), bool(rec.create),
               max(rec.request_bytes, 0), max(rec.response_bytes, 0), st, rec.start_ns, rec.duration_ns)
        with self._lock:
            self._stage.append(row)
            if len(self._stage) >= self._STAGE:
                self._flush()

    def _flush(self) -> None:
        """Moves staged rows into the columns (caller holds the lock). The
        staged rows are dropped only once they are stored: a failure leaves
        the columns and the stage as they were."""
        rows = self._stage
        if not rows:
            return
        i, k = self._n, len(rows)
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
        # convert every column before storing any (rows i.. are free space)
        new: dict[str, np.ndarray] = {name: np.array([r[j] for r in rows], dtype=_DTYPES[name]) for j, name in enumerate(_DTYPES)}
        for name, a in new.items():
            cols[name][i:i + k] = a
        self._cols, self._cap, self._n = cols, cap, i + k
        self._stage = []

    # --- results ------------------------------------------------------------

    def __len__(self) -> int:
        return self._n + len(self._stage)

    @property
    def columns(self) -> dict[str, np.ndarray]:
        """The recorded rows, one numpy array per column (views: copy to keep)."""
        with self._lock:
            self._flush()
            n = self._n
            return {k: a[:n] for k, a in self._cols.items()}

    def op_names(self) -> list[str]:
        return [_hooks.OP_NAMES.get(int(o), f"op{o}") for o in self.columns["op"]]

    def counts(self) -> dict[str, int]:
        """Operations per op name."""
        ops = self.columns["op"]
        u, n = np.unique(ops, return_counts=True)
        return {_hooks.OP_NAMES.get(int(o), f"op{o}"): int(c) for o, c in zip(u, n)}

    def report(self, top: int = 10) -> ProfileReport:
        c = self.columns
        n = len(c["op"])
        dur = c["duration_ns"]
        by = c["bytes_out"] + c["bytes_in"]
        per_op = []
        for o in np.unique(c["op"]):
            m = c["op"] == o
            per_op.append((_hooks.OP_NAMES.get(int(o), f"op{o}"), int(m.sum()), int(dur[m].sum()),
                           int((c["status"][m] != 0).sum())))
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
            hottest = [(self.strings[i], int(cnt[i]), int(tim[i]), int(byt[i]))
                       for i in order[:top] if cnt[i]]
        return ProfileReport(n, int(dur.sum()), int(by.sum()), per_op, hottest,
                             self._open_each()[:top])

    def _open_each(self) -> list[OpenEach]:
        """Keys opened, closed, and opened again (successful OPEN_KEY / CLOSE_KEY
        rows, in order, paired by connection and handle: each connection
        numbers its handles itself)."""
        c = self.columns
        rows = np.flatnonzero(((c["op"] == _agent.OP_OPEN_KEY) | (c["op"] == _agent.OP_CLOSE_KEY))
                              & (c["status"] == 0))
        open_of: dict[tuple[int, int], int] = {}   # (conn, handle) -> path id, while open
        opens: dict[int, int] = {}
        cycles: dict[int, int] = {}
        tns: dict[int, int] = {}
        ops, paths, handles, conns, dur = c["op"], c["path"], c["handle"], c["conn"], c["duration_ns"]
        for r in rows.tolist():
            h = (int(conns[r]), int(handles[r]))
            if ops[r] == _agent.OP_OPEN_KEY:
                p = int(paths[r])
                if p < 0:
                    continue
                open_of[h] = p
                opens[p] = opens.get(p, 0) + 1
                tns[p] = tns.get(p, 0) + int(dur[r])
            else:
                p = open_of.pop(h, -1)
                if p >= 0:
                    cycles[p] = cycles.get(p, 0) + 1
                    tns[p] += int(dur[r])
        out = [OpenEach(self.strings[p], opens[p], cycles.get(p, 0), tns[p])
               for p in opens if opens[p] >= 2 and cycles.get(p, 0) >= 2]
        out.sort(key=lambda o: (-o.opens, o.path))
        return out


def profile(capacity: int = 1024) -> Profiler:
    """A :class:`Profiler`, to use as ``with regfast.profile() as prof:``."""
    return Profiler(capacity)


# ---------------------------------------------------------------------------
# CLI: regfast profile -- python script.py args...
# ---------------------------------------------------------------------------

def cmd_profile(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if cmd and os.path.basename(cmd[0]).lower().startswith("python"):
        cmd = cmd[1:]                  # `python script.py`: the script runs in this interpreter
    if not cmd or (cmd[0] == "-m" and len(cmd) < 2):
        print("regfast: profile needs a script: regfast profile -- python script.py [args]", file=sys.stderr)
        return 2
    rc = 0
    saved = sys.argv[:]
    prof = Profiler()
    try:
        with prof:
            try:
                if cmd[0] == "-m":
                    sys.argv = cmd[1:]
                    runpy.run_module(cmd[1], run_name="__main__", alter_sys=True)
                else:
                    sys.argv = cmd[:]
                    runpy.run_path(cmd[0], run_name="__main__")
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved
        print(prof.report(top=args.top), file=sys.stderr)
    return rc


def add_cli_parser(sub: Any) -> None:
    """Registers `profile` on the regfast CLI's subparsers."""
    s = sub.add_parser("profile", help="run a Python script with the registry access profiler on "
                                       "and print the hottest keys and open-each patterns")
    s.add_argument("--top", type=int, default=10, help="rows per table (default 10)")
    s.add_argument("cmd", nargs=argparse.REMAINDER, help="-- python script.py [args] (or -m module)")
    s.set_defaults(func=cmd_profile)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="regfast profile")
    add_cli_parser(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(["profile", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args))
