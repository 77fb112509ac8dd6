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

What it does instead of blind undo: **compare-and-undo**. Each undo first reads
the current state; it restores the old state only when the current one is
exactly what this transaction wrote (type and a SHA-256 of the data), does
nothing when the old state is already there (the write never happened, e.g. a
crash between the journal record and the write), and otherwise reports a
**conflict** — someone else wrote there since — without touching it
(:class:`TransactionConflictError`, ``.conflicts``). A key the transaction
created is removed only while it is empty.

Journal format (version 1): UTF-8 lines ``<crc32 hex8> <json>\\n``; the CRC-32
covers the JSON text; each record carries ``seq`` = its line index. Line 0 is
the ``begin`` record; a torn last line (no newline: the process died while
appending it) is ignored, since its write was never made. Any other damage —
a line that does not parse, a record of the wrong shape — stops reading: the
records before it are undone and :class:`JournalCorruptError` (winerror 13,
``.offset`` = byte offset in the journal) is raised; nothing past the damage
is applied.

A rollback appends an ``undone`` record (``of`` = the seq it undid, or found
already undone) after each undo, so a journal kept after a conflict or an
interrupted rollback is never undone twice: undoing a record again would
revert a later, legitimate write of the same data (compare-and-undo cannot
tell it from this transaction's). A journal ending in ``rollback`` or
``commit`` is finished: a recovery only removes it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import socket
import stat
import struct
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regfast._native import Key
from regfast._types import encode_value
from regfast.exceptions import RegistryError, error_from_status
from regfast.hive.diff import decode_data
from regfast.live import _agent_ops as _ops
from regfast.live import registry as _live
from regfast.live.agent import cache_dir
from regfast.live.protocol import Reader, str16
from regfast.live.roots import KEY_ALL_ACCESS, ROOT_NAMES, _root, _split_path, _view
from regfast.live.snapshot import parse_snapshot

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

ERROR_INVALID_DATA = 13
ERROR_TRANSACTIONAL_CONFLICT = 6800
ERROR_TRANSACTION_NOT_ACTIVE = 6701
JOURNAL_VERSION = 1
MAX_SNAPSHOT_KEYS = 100_000


class TransactionError(RegistryError):
    """A transaction could not do what was asked (see the subclasses)."""


class TransactionConflictError(TransactionError):
    """Rolling back found values or keys that someone else changed after this
    transaction wrote them; those were left alone (winerror 6800,
    ERROR_TRANSACTIONAL_CONFLICT). ``.conflicts`` lists them; ``.report`` is
    the whole :class:`RollbackReport`."""

    def __init__(self, message: str, report: RollbackReport, filename: object = None) -> None:
        super().__init__(22, message, filename, winerror=ERROR_TRANSACTIONAL_CONFLICT)
        self.report = report
        self.conflicts = report.conflicts


class JournalCorruptError(TransactionError):
    """The journal is damaged (winerror 13). ``.offset`` is the byte offset of
    the first bad record; ``.report`` what was undone from the valid prefix
    (None when nothing was)."""

    def __init__(
        self, message: str, offset: int, filename: object = None, report: RollbackReport | None = None
    ) -> None:
        super().__init__(
            22, message + f" (journal offset {offset})", filename, winerror=ERROR_INVALID_DATA, offset=offset
        )
        self.report = report


@dataclass
class RollbackReport:
    """What a rollback did: records undone, records with nothing to undo
    (the write never happened or was already undone), and conflicts
    (``(record, reason)``), left untouched."""

    undone: int = 0
    already: int = 0
    conflicts: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    committed: bool = False
    rolled_back: bool = False

    def summary(self) -> str:
        if self.committed:
            return "the transaction had committed: nothing to undo"
        if self.rolled_back:
            return "the transaction had been rolled back: nothing to undo"
        s = f"{self.undone} writes undone, {self.already} had nothing to undo"
        if self.conflicts:
            s += f", {len(self.conflicts)} conflicts left as they are"
        return s


# ---------------------------------------------------------------------------
# Journal file
# ---------------------------------------------------------------------------


def default_journal_dir() -> Path:
    """Where journals go by default: <regfast cache>/journals."""
    return cache_dir() / "journals"


def pending_journals(directory: str | os.PathLike[str] | None = None) -> list[Path]:
    """Journals left by transactions that neither committed nor rolled back."""
    d = Path(directory) if directory else default_journal_dir()
    return sorted(d.glob("*.rfj")) if d.is_dir() else []


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(s: str) -> bytes:
    return base64.b64decode(s.encode("ascii"), validate=True)


def _digest(vtype: int, data: bytes) -> str:
    return hashlib.sha256(struct.pack("<I", vtype) + data).hexdigest()


def _line(rec: dict[str, Any]) -> bytes:
    text = json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"{zlib.crc32(text.encode('ascii')):08x} {text}\n".encode("ascii")


# Windows: msvcrt.locking locks a byte range, and LockFile locks are
# mandatory — a lock on byte 0 would make read_journal's own read of the
# file fail. So the lock is on one byte far past any journal's end (locking
# past EOF is allowed and does not grow the file).
_LOCK_OFFSET = 1 << 40


def _lock(f: Any) -> bool:
    """An exclusive lock on the journal while its transaction lives, so that
    a recovery cannot undo a transaction still running: flock on POSIX,
    msvcrt.locking (LK_NBLCK, one byte at _LOCK_OFFSET) on Windows; both die
    with the process. False when another process (or, on Windows, another
    handle) holds it."""
    fd = f.fileno()
    if sys.platform == "win32":
        import msvcrt

        pos = os.lseek(fd, 0, os.SEEK_CUR)
        try:
            os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                return False
        finally:
            os.lseek(fd, pos, os.SEEK_SET)
    else:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False


def _unlock(f: Any) -> None:
    """Windows: unlocks before the close (the system frees the locks of a
    closed handle only eventually). POSIX: the close does it."""
    if sys.platform == "win32" and not f.closed:
        import msvcrt

        fd = f.fileno()
        with contextlib.suppress(OSError):
            os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a write may be short: a signal,
    a full disk); a record only half on disk would be a torn line."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(28, "the journal write wrote nothing (disk full?)")
        view = view[n:]


def writer_alive(header: dict[str, Any]) -> bool | None:
    """Whether the process that wrote a journal (its begin record's pid and
    host) still runs: True, False, or None when that cannot be told (another
    host, no pid). A pid can be reused by an unrelated process: True then
    errs on the safe side."""
    pid, host = header.get("pid"), header.get("host")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or host != socket.gethostname():
        return None
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        import ctypes
        from ctypes import wintypes

        k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        k32.OpenProcess.restype = wintypes.HANDLE
        k32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
        k32.GetExitCodeProcess.argtypes = (wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD))
        k32.CloseHandle.argtypes = (wintypes.HANDLE,)
        h = k32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not h:
            return ctypes.get_last_error() == 5  # access denied: it exists; 87: no such pid
        try:
            code = wintypes.DWORD()
            if not k32.GetExitCodeProcess(h, ctypes.byref(code)):
                return True
            return code.value == 259  # STILL_ACTIVE
        finally:
            k32.CloseHandle(h)
    else:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:  # EPERM: it exists, not ours
            return True
        return True


class _Journal:
    """The append-only, fsync'd journal file of one transaction."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        try:
            self.f = os.fdopen(fd, "ab", buffering=0)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        try:
            _lock(self.f)
            self.seq = 0
            self.records: list[dict[str, Any]] = []
            self.append(dict(header, kind="begin", v=JOURNAL_VERSION))
            if hasattr(os, "O_DIRECTORY"):  # the new file's directory entry must survive a crash too
                dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        except BaseException:
            # no write was made yet: a journal without its begin record would
            # only make `recover --pending` report a corrupt file
            self.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise

    def append(self, rec: dict[str, Any]) -> None:
        rec = dict(rec, seq=self.seq)
        _write_all(self.f.fileno(), _line(rec))
        os.fsync(self.f.fileno())
        self.seq += 1
        if rec["kind"] in _KINDS:  # (not the begin record, end marks or undone marks)
            self.records.append(rec)

    def finish(self, kind: str) -> None:
        """Marks the end (commit / rolled back), then deletes the file."""
        self.append({"kind": kind})
        self.close()
        os.unlink(self.path)

    def close(self) -> None:
        if not self.f.closed:
            _unlock(self.f)
            self.f.close()


@dataclass
class JournalContents:
    """A parsed journal: header, undo records (in write order), how it ended
    ("open", "commit", "rollback"), and damage (offset, reason) or None.
    ``torn_tail`` is True when the last line was cut short (ignored).
    ``undone``: the seqs of records an earlier rollback already undid (they
    are not undone again); ``end``: the byte offset past the last whole
    record, and ``next_seq`` the seq a record appended there gets."""

    header: dict[str, Any]
    records: list[dict[str, Any]]
    state: str
    damage: tuple[int, str] | None
    torn_tail: bool
    undone: set[int] = field(default_factory=set)
    end: int = 0
    next_seq: int = 0


_KINDS = {"set_value", "delete_value", "create_key", "delete_key"}
_VIEWS = (0, 0x100, 0x200)


def _is_u32(x: object) -> bool:
    return type(x) is int and 0 <= x <= 0xFFFFFFFF


def _is_b64(x: object) -> bool:
    if not isinstance(x, str):
        return False
    try:
        _unb64(x)
        return True
    except ValueError:  # (binascii.Error is one)
        return False


def _is_old(x: object) -> bool:
    """None, or [type, base64 data]: a value's state before a write."""
    return x is None or (isinstance(x, list) and len(x) == 2 and _is_u32(x[0]) and _is_b64(x[1]))


def _record_problem(rec: dict[str, Any]) -> str | None:
    """Why an undo record cannot be undone as written (None: it can). Every
    record is checked before the first undo: a record of the wrong shape
    raised KeyError/IndexError half-way through a rollback (the records after
    it in file order undone, those before it not)."""
    kind = rec["kind"]
    if not (_is_u32(rec.get("root")) and rec["root"] in ROOT_NAMES):
        return f"{kind} record: root {rec.get('root')!r} is not a root key"
    if type(rec.get("view")) is not int or rec["view"] not in _VIEWS:
        return f"{kind} record: view {rec.get('view')!r} is not 0, 0x100 or 0x200"
    if not isinstance(rec.get("path"), str):
        return f"{kind} record: path {rec.get('path')!r} is not a string"
    if kind in ("set_value", "delete_value"):
        if not isinstance(rec.get("name"), str):
            return f"{kind} record: value name {rec.get('name')!r} is not a string"
        if not _is_old(rec.get("old")) or (kind == "delete_value" and rec["old"] is None):
            return f"{kind} record: its old state is not [type, base64 data]"
        new = rec.get("new")
        if kind == "set_value" and not (
            isinstance(new, list) and len(new) == 2 and _is_u32(new[0]) and isinstance(new[1], str)
        ):
            return "set_value record: its new state is not [type, SHA-256]"
    elif kind == "create_key":
        made = rec.get("created")
        if not isinstance(made, list) or not all(isinstance(m, str) and m for m in made):
            return "create_key record: 'created' is not a list of key paths"
    else:  # delete_key
        snap = rec.get("snapshot")
        if not isinstance(snap, list):
            return "delete_key record: its snapshot is not a list"
        for item in snap:
            if not (
                isinstance(item, list)
                and len(item) == 2
                and isinstance(item[0], str)
                and isinstance(item[1], list)
            ):
                return "delete_key record: a snapshot key is not [path, values]"
            for v in item[1]:
                if not (
                    isinstance(v, list)
                    and len(v) == 3
                    and isinstance(v[0], str)
                    and _is_u32(v[1])
                    and _is_b64(v[2])
                ):
                    return "delete_key record: a snapshot value is not [name, type, base64 data]"
    return None


def _open_journal(p: Path, mode: str) -> Any:
    """The journal file, opened without blocking on what is not a file (a
    FIFO named *.rfj held `recover --pending` forever; a link to /dev/zero
    read until memory ran out): anything but a regular file is refused."""
    flags = (
        (os.O_RDWR if "+" in mode else os.O_RDONLY)
        | getattr(os, "O_NONBLOCK", 0)
        | getattr(os, "O_BINARY", 0)
    )
    fd = os.open(p, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise JournalCorruptError(f"{p}: not a regular file: not a regfast journal", 0, str(p))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, mode, buffering=0)
    except BaseException:
        os.close(fd)
        raise


def read_journal(path: str | os.PathLike[str]) -> JournalContents:
    """Parses a journal, stopping at the first damaged record.

    Raises
    ------
    FileNotFoundError
        No such file.
    JournalCorruptError
        The begin record itself is missing or damaged (nothing usable).
    """
    p = Path(path)
    with _open_journal(p, "rb") as f:
        return _parse_journal(p, f)


def _parse_journal(p: Path, f: Any) -> JournalContents:
    """read_journal on an open file, read a line at a time (memory: the
    longest record, not the file)."""
    reader = io.BufferedReader(f, 1 << 16)
    try:
        return _parse_lines(p, reader)
    finally:
        reader.detach()  # the caller's file stays open (a recovery appends its marks to it)


def _parse_lines(p: Path, reader: Any) -> JournalContents:
    records: list[dict[str, Any]] = []
    undoable: set[int] = set()
    undone: set[int] = set()
    header: dict[str, Any] | None = None
    state = "open"
    damage: tuple[int, str] | None = None
    torn = False
    pos = 0
    seq = 0
    while True:
        raw = reader.readline()
        if not raw:
            break
        if not raw.endswith(b"\n"):
            torn = True  # the process died while appending: that write never happened
            break
        line = raw[:-1]
        why = None
        rec: dict[str, Any] | None = None
        if len(line) < 10 or line[8:9] != b" ":
            why = "not a journal record"
        else:
            try:
                crc = int(line[:8].decode("ascii"), 16)
                text = line[9:]
                if zlib.crc32(text) != crc:
                    why = f"checksum mismatch (stored {crc:08x}, computed {zlib.crc32(text):08x})"
                else:
                    rec = json.loads(text.decode("ascii"))
                    if not isinstance(rec, dict) or rec.get("seq") != seq:
                        why = f"record out of sequence (expected seq {seq})"
                        rec = None
            except (ValueError, UnicodeDecodeError, RecursionError) as e:
                why = f"unreadable record: {type(e).__name__}: {e}"[:300]
                rec = None
        if rec is not None:
            kind = rec.get("kind")
            if seq == 0:
                if kind != "begin" or rec.get("v") != JOURNAL_VERSION:
                    why = f"the first record is not a version-{JOURNAL_VERSION} begin record"
                else:
                    header = rec
            elif kind in ("commit", "rollback") and state == "open":
                state = kind
            elif kind in _KINDS and state == "open":
                why = _record_problem(rec)
                if why is None:
                    records.append(rec)
                    undoable.add(seq)
            elif kind == "undone" and state == "open":
                if rec.get("of") not in undoable:
                    why = f"an undone mark for {rec.get('of')!r}, which is no undo record before it"
                else:
                    undone.add(rec["of"])
            else:
                why = f"unexpected record kind {kind!r}" + (" after the end mark" if state != "open" else "")
        if why is not None:
            if header is None:
                raise JournalCorruptError(f"{p}: not a regfast journal: {why}", pos, str(p))
            damage = (pos, why)
            break
        pos += len(raw)
        seq += 1
    if header is None:
        raise JournalCorruptError(f"{p}: empty journal (no begin record)", 0, str(p))
    return JournalContents(header, records, state, damage, torn, undone, pos, seq)


# ---------------------------------------------------------------------------
# Undo (compare-and-undo)
# ---------------------------------------------------------------------------


ERROR_KEY_DELETED = 1018
_NO_KEY = (-1, b"")  # _value_now: the key itself does not exist


def _open_now(reg: _live.Registry, root: int, view: int, path: str) -> Any:
    """reg.open_key, or None when the key does not exist. A backend's handle
    cache answers 1018 (STATUS_KEY_DELETED) once for a path under a key
    deleted since it was cached (regfast_nt.h): the open is tried again."""
    for attempt in range(2):
        try:
            return reg.open_key(root, path, view=view)
        except FileNotFoundError:
            return None
        except OSError as e:
            if getattr(e, "winerror", None) != ERROR_KEY_DELETED or attempt:
                raise
    return None


def _value_now(reg: _live.Registry, root: int, view: int, path: str, name: str) -> tuple[int, bytes] | None:
    """The value now; None when its key has no such value; _NO_KEY when the
    key itself does not exist."""
    k = _open_now(reg, root, view, path)
    if k is None:
        return _NO_KEY
    with k:
        try:
            v = k.value(name)
            return v.type, v.raw()
        except FileNotFoundError:
            return None


def _read_value(reg: _live.Registry, root: int, view: int, path: str, name: str) -> tuple[int, bytes] | None:
    """The value now, or None when it (or its key) does not exist."""
    cur = _value_now(reg, root, view, path, name)
    return None if cur is _NO_KEY else cur


def _key_exists(reg: _live.Registry, root: int, view: int, path: str) -> bool:
    k = _open_now(reg, root, view, path)
    if k is None:
        return False
    k.close()
    return True


def _write_value(
    reg: _live.Registry, root: int, view: int, path: str, name: str, val: tuple[int, bytes] | None
) -> None:
    with reg.create_key(root, path, view=view) as k:
        if val is None:
            k.delete_value(name)
        else:
            k.set_value(name, val[1], val[0])  # bytes with a type: stored as given


def _old(rec: dict[str, Any]) -> tuple[int, bytes] | None:
    o = rec.get("old")
    return None if o is None else (int(o[0]), _unb64(o[1]))


def _undo_one(reg: _live.Registry, rec: dict[str, Any], report: RollbackReport) -> None:
    kind = rec["kind"]
    root, view, path = int(rec["root"]), int(rec["view"]), rec["path"]
    where = f"{ROOT_NAMES.get(root, hex(root))}\\{path}"
    if kind in ("set_value", "delete_value"):
        name = rec["name"]
        old = _old(rec)
        cur = _value_now(reg, root, view, path, name)
        if cur is _NO_KEY and old is not None:
            # someone deleted the key since: restoring the value would bring
            # the key (and its parents) back
            report.conflicts.append(
                (rec, f"{where} was deleted after this transaction wrote value {name!r}; left deleted")
            )
            return
        if cur is _NO_KEY or cur == old:
            report.already += 1
            return
        if kind == "set_value":
            ours = cur is not None and [cur[0], _digest(*cur)] == rec["new"]
        else:
            ours = cur is None
        if not ours:
            report.conflicts.append(
                (rec, f"{where} value {name!r} changed after this transaction wrote it; left as it is")
            )
            return
        _write_value(reg, root, view, path, name, old)
        report.undone += 1
    elif kind == "create_key":
        made = rec["created"]  # shallowest first
        if not made or not _key_exists(reg, root, view, made[0]):
            report.already += 1
            return
        for p in reversed(made):
            if not _key_exists(reg, root, view, p):
                continue
            with reg.open_key(root, p, view=view) as k:
                info = k.info()
            if info.subkeys or info.values:
                report.conflicts.append(
                    (
                        rec,
                        f"{ROOT_NAMES.get(root, hex(root))}\\{p} was created by "
                        f"this transaction but is not empty now ({info.subkeys} subkeys, "
                        f"{info.values} values); left in place",
                    )
                )
                return
            reg.delete_key(root, p, view=view)
        report.undone += 1
    elif kind == "delete_key":
        # Re-create what the snapshot held: missing keys and values are put
        # back; a value someone set meanwhile (different data) is a conflict.
        changed = 0
        bad: list[str] = []
        for kpath, values in rec["snapshot"]:
            full = path + ("\\" + kpath if kpath else "")
            for vname, vtype, b64 in values:
                want = (int(vtype), _unb64(b64))
                cur = _read_value(reg, root, view, full, vname)
                if cur == want:
                    continue
                if cur is not None:
                    bad.append(f"{full} value {vname!r}")
                    continue
                _write_value(reg, root, view, full, vname, want)
                changed += 1
            if not values and not _key_exists(reg, root, view, full):
                reg.create_key(root, full, view=view).close()
                changed += 1
        if bad:
            report.conflicts.append(
                (
                    rec,
                    f"{where}: re-created, but {', '.join(bad)} had been set by "
                    f"someone else since; left as they are",
                )
            )
        if changed:
            report.undone += 1
        elif not bad:
            report.already += 1
    else:  # read_journal only passes the kinds above
        raise AssertionError(kind)


def _undo(
    reg: _live.Registry,
    records: list[dict[str, Any]],
    mark: Callable[[int], None],
    skip: set[int] | frozenset[int] = frozenset(),
) -> RollbackReport:
    """Undoes `records` in reverse, but those in `skip` (undone before).
    `mark(seq)` records each one undone or found with nothing to undo (not
    a conflict: a later recovery compares it again)."""
    report = RollbackReport()
    for rec in reversed(records):
        if rec["seq"] in skip:
            report.already += 1
            continue
        before = len(report.conflicts)
        _undo_one(reg, rec, report)
        if len(report.conflicts) == before:
            mark(rec["seq"])
    return report


def rollback_journal(
    path: str | os.PathLike[str], reg: _live.Registry | None = None, *, keep: bool = False
) -> RollbackReport:
    """Undoes what a transaction that did not finish (a crash, a killed
    process) left in the registry, from its journal.

    The valid prefix of the journal is undone with compare-and-undo (see the
    module docstring). The file is deleted afterwards unless ``keep`` or a
    conflict or damage was found (then it stays, for inspection). A journal
    that already says ``commit`` is not undone: its file is just removed.

    Raises
    ------
    FileNotFoundError
        No such journal.
    JournalCorruptError
        The journal is damaged: records before the damage were undone
        (``.report``), nothing after it was.
    TransactionConflictError
        Some writes had been overwritten by someone else since; they were
        left as they are (``.conflicts``), everything else was undone.
    TransactionError
        The transaction is still running (its process holds the journal lock).
    """
    p = Path(path)
    with _open_journal(p, "r+b") as f:
        if not _lock(f):
            raise TransactionError(
                16,
                f"{p}: the transaction is still running (its journal is locked)",
                str(p),
                winerror=ERROR_TRANSACTION_NOT_ACTIVE,
            )
        j = _parse_journal(p, f)
        if j.state != "open":
            report = RollbackReport(committed=j.state == "commit", rolled_back=j.state == "rollback")
        else:
            reg = reg or _default_registry()
            fd, at, seq = f.fileno(), j.end, j.next_seq

            def mark(of: int) -> None:
                # after the last whole record (a torn tail is dropped first:
                # the mark must start a line of its own), fsync'd as every record
                nonlocal at, seq
                if j.damage is not None:
                    return  # nothing is appended past damage: the file stays as found
                os.ftruncate(fd, at)
                os.lseek(fd, at, os.SEEK_SET)
                line = _line({"kind": "undone", "of": of, "seq": seq})
                _write_all(fd, line)
                os.fsync(fd)
                at += len(line)
                seq += 1

            report = _undo(reg, j.records, mark, j.undone)
    if j.damage is not None:
        raise JournalCorruptError(
            f"{p}: {j.damage[1]}; the {len(j.records)} records before it were "
            f"undone ({report.summary()}), nothing after it",
            j.damage[0],
            str(p),
            report,
        )
    if report.conflicts:
        raise TransactionConflictError(
            f"{p}: rollback left {len(report.conflicts)} conflicts: "
            + "; ".join(r for _, r in report.conflicts),
            report,
            str(p),
        )
    if not keep:
        p.unlink()
    return report


def _default_registry() -> _live.Registry:
    with _live._default_lock:
        if _live._default is None or _live._default.closed:
            _live._default = _live.connect()
        return _live._default


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
        with tx.reg.open_key(self.root, full, view=self.view) as k:
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
        keys = [
            [ks.path, [[v.name, v.type, _b64(v.data or b"")] for v in ks.values.values()]]
            for ks in snap.keys.values()
        ]
        tx._journal_write(
            {"kind": "delete_key", "root": self.root, "view": self.view, "path": full, "snapshot": keys}
        )
        self._live_key().delete_key(rel, tree=tree)

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
            report = _undo(self.reg, j.records, lambda of: j.append({"kind": "undone", "of": of}))
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
