"""Registry transactions: ``with regfast.transaction() as tx:``.

::

    with regfast.transaction(reg) as tx:
        k = tx.create_key("HKCU", r"Software\\MyApp")
        k.set_value("Version", "2.0")
        k.delete_value("Obsolete")
        k.create_key("Plugins").set_value("x", 1)
    # committed here; an exception inside the block rolls everything back

Two engines, chosen by ``mode``:

``"ktm"``
    The Kernel Transaction Manager (CreateTransaction, RegCreateKeyTransactedW,
    RegOpenKeyTransactedW, CommitTransaction / RollbackTransaction) inside
    regfast-agent: real atomicity and isolation. KTM is deprecated, and Wine
    does not implement it (RegCreateKeyTransactedW returns 120), so the agent
    *probes* it (a volatile key created in a transaction must be invisible
    outside it and gone after a rollback) and reports 120 when it fails.

``"journal"``
    regfast's own undo journal, used when KTM is missing (``"auto"``, the
    default, picks KTM when the probe passes, else this). Before each write,
    a record of what the write will overwrite is appended to the journal
    file and fsync'd: the old type and data of a value (or that it was
    absent), which keys a create_key made, and for delete_key a snapshot of
    the whole subtree with its data. Then the write is done. Rollback applies
    the undo records in reverse order; commit appends a commit mark and
    deletes the file. If the process dies mid-transaction the journal stays:
    ``regfast recover --journal FILE`` or :func:`rollback_journal` undoes it.

What the journal cannot give, by design (KTM gives all of these):

* **isolation** — other processes see each write as soon as it is made, and
  can write the same keys meanwhile;
* **atomic visibility** — a crash leaves the writes made so far in place until
  the journal is rolled back;
* key metadata — classes, security descriptors, volatility and last-write
  times of keys a rollback re-creates are not restored (values and subkeys
  are): a deleted volatile key comes back non-volatile.

The journal file, its format and compare-and-undo: :mod:`regfast.live.journal`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from regfast._native import Key
from regfast._types import encode_value
from regfast.exceptions import RegistryError, error_from_status
from regfast.hive.diff import decode_data, fold
from regfast.live import _agent_ops as _ops
from regfast.live import registry as _live
from regfast.live.admin import key_is_link
from regfast.live.journal import (
    ERROR_TRANSACTION_NOT_ACTIVE,
    MAX_SNAPSHOT_KEYS,
    JournalCorruptError,
    RollbackReport,
    TransactionConflictError,
    TransactionError,
    _b64,
    _digest,
    _Journal,
    _undone_mark,
    default_journal_dir,
    pending_journals,
    read_journal,
    writer_alive,
)
from regfast.live.protocol import Reader, str16
from regfast.live.roots import KEY_ALL_ACCESS, ROOT_NAMES, _root, _split_path, _view
from regfast.live.snapshot import parse_snapshot
from regfast.live.undo import _default_registry, _key_exists, _read_value, _undo, rollback_journal

__all__ = [
    "transaction",
    "Transaction",
    "TxKey",
    "rollback_journal",
    "read_journal",
    "ktm_status",
    "TransactionError",
    "TransactionConflictError",
    "JournalCorruptError",
    "RollbackReport",
    "default_journal_dir",
    "pending_journals",
    "writer_alive",
]

# ---------------------------------------------------------------------------
# KTM
# ---------------------------------------------------------------------------


def ktm_status(reg: _live.Registry) -> RegistryError | None:
    """None when KTM really works behind `reg` (the agent's probe passed),
    else the agent's error — winerror 120 with the reason (under Wine:
    RegCreateKeyTransactedW returned 120). Asked once per connection."""
    conn = reg.conn
    if hasattr(conn, "_regfast_ktm"):
        cached: RegistryError | None = conn._regfast_ktm
        return cached
    err: RegistryError | None = None
    try:
        conn.request(_ops.OP_TX_PROBE)
    except RegistryError as e:
        if e.winerror != 120:
            raise
        err = e
    conn._regfast_ktm = err
    return err


# ---------------------------------------------------------------------------
# Transaction objects
# ---------------------------------------------------------------------------


def _encode(name: object, data: Any, vtype: int | None) -> tuple[int, bytes]:
    """(type, bytes) as Key.set_value stores them: the type checked to be a
    32-bit number (-1 or 2**32 reached struct.pack: struct.error), the name
    to be a str."""
    if not isinstance(name, str):
        raise TypeError(f"a value name must be a str, not {type(name).__name__}")
    return encode_value(data, vtype)


def _gone(e: OSError) -> bool:
    """Not found, or deleted under its handle (1018)."""
    return isinstance(e, FileNotFoundError) or getattr(e, "winerror", None) == 1018


def _link_refused(where: str) -> RegistryError:
    return error_from_status(
        120,
        f"{where} is a registry symbolic link: a journaled delete_key cannot re-create a link on rollback "
        "(delete it outside the transaction, or use mode='ktm')",
        where,
    )


class TxKey:
    """A key whose writes belong to a transaction: set_value, delete_value,
    create_key, delete_key; reads (value, get, []) see the transaction's own
    writes. From :meth:`Transaction.create_key` / :meth:`Transaction.open_key`."""

    def __init__(self, tx: Transaction, root: int, view: int, path: str, tkey: int | None = None) -> None:
        self.tx = tx
        self.root = root
        self.view = view
        self.path = path
        self._tkey = tkey  # KTM: the agent's transacted key id
        self._key: Key | None = None  # journal: a live key for the writes

    @property
    def full_path(self) -> str:
        return f"{ROOT_NAMES.get(self.root, hex(self.root))}\\{self.path}"

    def __repr__(self) -> str:
        return f"<regfast.live.transaction.TxKey {self.full_path!r} ({self.tx.mode})>"

    def _sub(self, path: str) -> str:
        rel = _split_path(path)
        return rel if not self.path else self.path + "\\" + rel

    def _live_key(self) -> Key:
        if self._key is None:
            self._key = self.tx.reg.open_key(self.root, self.path, view=self.view, access=KEY_ALL_ACCESS)
        return self._key

    def _treq(self, op: int, body: bytes, filename: object = None) -> bytes:
        return bytes(
            self.tx.reg.conn.request(
                op, struct.pack("<I", self._tkey) + body, filename=filename or self.full_path
            )
        )

    # --- writes -----------------------------------------------------------

    def set_value(self, name: str, data: Any, type: int | None = None) -> None:
        """Sets a value (same conversions as regfast.live.registry.Key.set_value)."""
        vtype, raw = _encode(name, data, type)
        tx = self.tx._check()
        body = struct.pack("<I", vtype) + str16(name) + struct.pack("<I", len(raw)) + raw
        if tx.mode == "ktm":
            self._treq(_ops.OP_TX_SET_VALUE, body, name)
            return
        cur = _read_value(tx.reg, self.root, self.view, self.path, name)
        tx._journal_write(
            {
                "kind": "set_value",
                "root": self.root,
                "view": self.view,
                "path": self.path,
                "name": name,
                "old": None if cur is None else [cur[0], _b64(cur[1])],
                "new": [vtype, _digest(vtype, raw)],
            }
        )
        self._live_key().set_value(name, raw, vtype)  # bytes with a type: stored as given

    def delete_value(self, name: str) -> None:
        """Deletes a value (FileNotFoundError if there is none)."""
        if not isinstance(name, str):
            raise TypeError(f"a value name must be a str, not {type(name).__name__}")
        tx = self.tx._check()
        if tx.mode == "ktm":
            self._treq(_ops.OP_TX_DELETE_VALUE, str16(name), name)
            return
        cur = _read_value(tx.reg, self.root, self.view, self.path, name)
        if cur is None:
            raise error_from_status(2, "the value does not exist", name)
        tx._journal_write(
            {
                "kind": "delete_value",
                "root": self.root,
                "view": self.view,
                "path": self.path,
                "name": name,
                "old": [cur[0], _b64(cur[1])],
            }
        )
        self._live_key().delete_value(name)

    def create_key(self, path: str) -> TxKey:
        """Creates (or opens) a subkey path inside the transaction."""
        return self.tx.create_key(self.root, self._sub(path), view=self.view)

    def open_key(self, path: str) -> TxKey:
        return self.tx.open_key(self.root, self._sub(path), view=self.view)

    def delete_key(self, path: str, *, tree: bool = False) -> None:
        """Deletes a subkey (with tree, its subtree). The journal keeps a
        snapshot of the subtree (with data) to re-create it on rollback."""
        tx = self.tx._check()
        rel = _split_path(path)
        if not rel:
            raise ValueError("give the subkey to delete")
        if tx.mode == "ktm":
            self._treq(_ops.OP_TX_DELETE_KEY, struct.pack("<I", 1 if tree else 0) + str16(rel), path)
            return
        full = self._sub(rel)
        where = f"{ROOT_NAMES.get(self.root, hex(self.root))}\\{full}"
        parent, _, last = full.rpartition("\\")
        if self._links_among(parent, {fold(last)}):
            raise _link_refused(where)
        with tx.reg.open_key(self.root, full, view=self.view) as k:
            if key_is_link(k):  # a listing that did not name it: asked as opened
                raise _link_refused(where)
            # the snapshot writer's bytes: a regfast.Key (backend="remote") and
            # a regfast.live.registry.Key both give them
            raw = k.snapshot_bytes(subtree=True, keep_data=True, max_keys=MAX_SNAPSHOT_KEYS)
        snap = parse_snapshot(Reader(raw), where)
        if snap.truncated:
            raise error_from_status(
                0x20000004, f"{where} has more than {MAX_SNAPSHOT_KEYS} keys: too big to journal", where
            )
        if not tree and len(snap.keys) > 1:
            raise error_from_status(
                5,
                f"the key has {len(snap.keys) - 1} subkeys in its subtree (delete them first, or tree=True)",
                where,
            )
        self._refuse_links(snap, full, where)
        keys = [
            [ks.path, [[v.name, v.type, _b64(v.data or b"")] for v in ks.values.values()]]
            for ks in snap.keys.values()
        ]
        tx._journal_write(
            {"kind": "delete_key", "root": self.root, "view": self.view, "path": full, "snapshot": keys}
        )
        self._live_key().delete_key(rel, tree=tree)

    def _refuse_links(self, snap: Any, full: str, where: str) -> None:
        """Raises 120 if a key of the snapshot is a registry symbolic link.

        A snapshot lists a link without going through it, but its row is
        the key as it opens: its target's values. Re-created from that on
        rollback, the link came back as a plain key holding copies of them
        (and, before snapshots stopped at links, with its target's subtree
        under it). regfast has no call that makes a link, so the journal
        refuses instead, before anything is deleted. A link's own node
        lists no subkeys, and the snapshot lists none below a link (the
        hint, else it asks): only the snapshot's leaves can be links. Each
        leaf's parent is listed and the leaves in the listing are asked
        (KEY_IS_LINK, looking at the key itself: opened by path, a link
        whose target went since would not open, and slip through; an agent
        of protocol 4 cannot tell, and nothing is refused, as before). A
        leaf or parent deleted since is passed over: the delete cannot take
        it. A link whose target was already gone does not open, so it is in
        no snapshot: a rollback does not bring it back (the one thing a
        journaled delete loses)."""
        parents = {p.rpartition("\\")[0] for p in snap.keys if p}
        leaves: dict[str, set[str]] = {}
        for folded in snap.keys:
            if folded and folded not in parents:
                parent, _, name = folded.rpartition("\\")
                leaves.setdefault(parent, set()).add(name)
        for parent, names in leaves.items():
            rel = snap.keys[parent].path
            links = self._links_among(f"{full}\\{rel}" if rel else full, names)
            if links:
                raise _link_refused("\\".join(p for p in (where, rel, links[0]) if p))

    def _links_among(self, parent: str, names: set[str]) -> list[str]:
        """The subkeys of `parent` (a path below the root; "" the root) whose
        folded names are in `names` and that are symbolic links, asked from
        the parent's listing as themselves. A listing names a key afresh, so
        no earlier answer (the remote client keeps one per key) stands for
        a key another program has since replaced by a link. Keys gone
        meanwhile are passed over."""
        links = []
        try:
            with self.tx.reg.open_key(self.root, parent, view=self.view) as k:
                for child in k.subkeys():
                    try:
                        if fold(child.name) in names and key_is_link(child):
                            links.append(child.name)
                    except OSError as e:
                        if not _gone(e):
                            raise
                    finally:
                        child.close()
        except OSError as e:
            if not _gone(e):
                raise
        return links

    # --- reads --------------------------------------------------------------

    def value_raw(self, name: str = "") -> tuple[int, bytes]:
        """(type, data) of a value as this transaction sees it."""
        tx = self.tx._check()
        if tx.mode == "ktm":
            r = Reader(self._treq(_ops.OP_TX_GET_VALUE, str16(name), name))
            t, n = r.u32(), r.u32()
            return t, r.raw(n)
        v = self._live_key().value(name)
        return v.type, v.raw()

    def __getitem__(self, name: str) -> Any:
        t, d = self.value_raw(name)
        return decode_data(t, d, name)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except FileNotFoundError:
            return default

    def close(self) -> None:
        if self._key is not None:
            self._key.close()
            self._key = None
        if self._tkey is not None and self.tx.state == "active":
            with contextlib.suppress(OSError):
                self.tx.reg.conn.request(_ops.OP_TX_CLOSE_KEY, struct.pack("<I", self._tkey))
            self._tkey = None

    def __enter__(self) -> TxKey:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transaction:
    """One registry transaction (see :func:`transaction`).

    Attributes
    ----------
    mode : "ktm" or "journal"
    reason : str
        Why this mode was chosen (the KTM probe's error under Wine).
    journal_path : Path or None
        The journal file (journal mode) while the transaction is active.
    state : "active", "committed", "rolled back" or "failed"
    """

    def __init__(
        self, reg: _live.Registry, mode: str, reason: str, journal: Path | None, timeout_ms: int = 0
    ) -> None:
        self.reg = reg
        self.mode = mode
        self.reason = reason
        self.state = "active"
        self._keys: list[TxKey] = []
        self._j: _Journal | None = None
        self.journal_path: Path | None = None
        self._tx: int | None = None
        if mode == "ktm":
            r = Reader(
                reg.conn.request(
                    _ops.OP_TX_BEGIN, struct.pack("<I", timeout_ms) + str16("regfast transaction")
                )
            )
            self._tx = r.u32()
        else:
            jp = journal or default_journal_dir() / f"tx-{os.getpid()}-{uuid.uuid4().hex[:12]}.rfj"
            self._j = _Journal(
                Path(jp),
                {
                    "id": uuid.uuid4().hex,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "time": time.time(),
                    "agent": reg.description,
                },
            )
            self.journal_path = self._j.path

    def __repr__(self) -> str:
        return f"<regfast.Transaction {self.mode} {self.state}>"

    def _check(self) -> Transaction:
        if self.state != "active":
            raise TransactionError(
                22, f"the transaction is {self.state}", None, winerror=ERROR_TRANSACTION_NOT_ACTIVE
            )
        return self

    def _journal_write(self, rec: dict[str, Any]) -> None:
        assert self._j is not None
        self._j.append(rec)

    def _open(self, root: int | str, path: str, view: int | str | None, create: bool) -> TxKey:
        self._check()
        r, v, p = _root(root), _view(view), _split_path(path)
        if self.mode == "ktm":
            body = struct.pack("<IIIII", self._tx, r, v, KEY_ALL_ACCESS, 1 if create else 0) + str16(p)
            rr = Reader(self.reg.conn.request(_ops.OP_TX_OPEN_KEY, body, filename=p))
            k = TxKey(self, r, v, p, rr.u32())
        elif create:
            # Which components do not exist yet: those are what a rollback removes.
            comps = p.split("\\") if p else []
            missing: list[str] = []
            for i in range(len(comps), 0, -1):
                sub = "\\".join(comps[:i])
                if _key_exists(self.reg, r, v, sub):
                    break
                missing.insert(0, sub)
            if missing:
                self._journal_write(
                    {"kind": "create_key", "root": r, "view": v, "path": p, "created": missing}
                )
            k = TxKey(self, r, v, p)
            k._key = self.reg.create_key(r, p, view=v)
        else:
            k = TxKey(self, r, v, p)
            k._live_key()
        self._keys.append(k)
        return k

    def create_key(self, root: int | str, path: str, *, view: int | str | None = None) -> TxKey:
        """Creates (with missing parents) or opens a key inside the transaction."""
        return self._open(root, path, view, True)

    def open_key(self, root: int | str, path: str, *, view: int | str | None = None) -> TxKey:
        """Opens an existing key for writes inside the transaction (FileNotFoundError if none)."""
        return self._open(root, path, view, False)

    def _close_keys(self) -> None:
        for k in self._keys:
            with contextlib.suppress(OSError):
                k.close()
        self._keys.clear()

    def commit(self) -> None:
        """Makes every write permanent (KTM: CommitTransaction; journal: the
        commit mark, then the journal is deleted)."""
        self._check()
        try:
            if self.mode == "ktm":
                self.reg.conn.request(_ops.OP_TX_COMMIT, struct.pack("<I", self._tx))
            else:
                assert self._j is not None
                self._close_keys()
                self._j.finish("commit")
        except BaseException:
            self.state = "failed"
            raise
        self.state = "committed"
        self._close_keys()

    def rollback(self) -> RollbackReport:
        """Undoes every write (KTM: RollbackTransaction; journal: the undo
        records in reverse order, compare-and-undo).

        Raises
        ------
        TransactionConflictError
            Journal mode: some writes were overwritten by someone else since;
            they were left as they are, the rest was undone. The journal is kept.
        """
        self._check()
        self._close_keys()
        if self.mode == "ktm":
            try:
                self.reg.conn.request(_ops.OP_TX_ROLLBACK, struct.pack("<I", self._tx))
            except BaseException:
                self.state = "failed"
                raise
            self.state = "rolled back"
            return RollbackReport()
        assert self._j is not None
        try:
            j = self._j

            report = _undo(self.reg, j.records, lambda of, conflict: j.append(_undone_mark(of, conflict)))
        except BaseException:
            self.state = "failed"  # the journal stays: regfast recover --journal can finish it
            self._j.close()
            raise
        if report.conflicts:
            self.state = "failed"
            self._j.close()
            raise TransactionConflictError(
                f"rollback left {len(report.conflicts)} conflicts (journal kept at {self._j.path}): "
                + "; ".join(r for _, r in report.conflicts),
                report,
                str(self._j.path),
            )
        self._j.finish("rollback")
        self.state = "rolled back"
        return report

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        if self.state != "active":
            return
        if et is None:
            self.commit()
        else:
            self.rollback()  # a conflict raises from here, chained to the original error


def transaction(
    reg: _live.Registry | None = None,
    *,
    journal: str | os.PathLike[str] | None = None,
    mode: str = "auto",
    timeout_ms: int = 0,
) -> Transaction:
    """A registry transaction; use as ``with regfast.transaction(reg) as tx:``.

    Parameters
    ----------
    reg
        The live registry (default: the process-wide one of regfast.open_key).
    journal
        Journal file for the fallback (default: a new file in
        :func:`default_journal_dir`). It must not exist.
    mode
        ``"auto"`` (KTM when the agent's probe says it works, else the
        journal), ``"ktm"`` (fail with winerror 120 without KTM) or
        ``"journal"``.
    timeout_ms
        KTM only: the transaction's timeout (0 = none).

    Raises
    ------
    RegistryError
        winerror 120 with ``mode="ktm"`` where KTM does not work.
    FileExistsError
        The journal file exists.
    """
    if mode not in ("auto", "ktm", "journal"):
        raise ValueError(f"mode must be 'auto', 'ktm' or 'journal', not {mode!r}")
    reg = reg or _default_registry()
    reason = "asked for"
    if mode != "journal":
        err = ktm_status(reg)
        if err is None:
            mode, reason = "ktm", "KTM works here (the agent's probe passed)"
        elif mode == "ktm":
            raise err
        else:
            mode, reason = "journal", f"KTM is not available: {err.strerror}"
    return Transaction(reg, mode, reason, Path(journal) if journal else None, timeout_ms)


# `regfast.transaction` is this function (it shadows the module in the package
# namespace, as regfast.diff and regfast.watch do); the recovery entry point
# stays reachable as regfast.transaction.rollback_journal.
transaction.rollback_journal = rollback_journal  # type: ignore[attr-defined]
transaction.read_journal = read_journal  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# CLI: regfast recover --journal FILE
# ---------------------------------------------------------------------------


def cli_rollback(
    journals: list[str], force_pending: bool = False, *, pending: list[str] | None = None
) -> int:
    """`regfast recover --journal FILE... [--pending [--force]]`: rolls each
    journal back; prints a line per journal. 0 when all were undone cleanly,
    1 otherwise.

    ``pending`` journals (found by --pending, not named by the user) whose
    writing process still runs on this host, or was on another host, are
    skipped unless ``force_pending``: their transaction may be running (on
    Windows before regfast locked journals there, nothing else tells). A
    journal locked by its transaction is never rolled back, forced or not.
    """
    rc = 0
    todo = [(j, False) for j in journals] + [(j, True) for j in (pending or [])]
    if not todo:
        print("regfast: no journal to roll back", file=sys.stderr)
    for j, found in todo:
        try:
            if found and not force_pending:
                header = read_journal(j).header
                alive = writer_alive(header)
                if alive is not False:
                    why = (
                        f"its process {header.get('pid')} still runs"
                        if alive
                        else f"it was written on host {header.get('host')!r}, "
                        "whose processes this one cannot see"
                    )
                    print(
                        f"regfast: {j}: skipped, {why}: the transaction may still be running "
                        f"(--force to roll it back anyway)",
                        file=sys.stderr,
                    )
                    rc = 1
                    continue
            rep = rollback_journal(j)
            print(f"{j}: {rep.summary()}")
        except TransactionConflictError as e:
            print(f"{j}: {e.report.summary()}; journal kept", file=sys.stderr)
            for _, why in e.conflicts:
                print(f"  conflict: {why}", file=sys.stderr)
            rc = 1
        except JournalCorruptError as e:
            print(f"regfast: {e.strerror} (winerror {e.winerror})", file=sys.stderr)
            rc = 1
        except OSError as e:
            win = getattr(e, "winerror", None)
            if win is None and isinstance(e, FileNotFoundError):
                win = 2  # (what Windows says; CPython sets winerror on Windows only)
            code = f" (winerror {win})" if win is not None else ""
            print(f"regfast: {j}: {e.strerror or e}{code}", file=sys.stderr)
            rc = 1
    return rc


def iter_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The undo records of a journal, in write order (for inspection)."""
    yield from read_journal(path).records
