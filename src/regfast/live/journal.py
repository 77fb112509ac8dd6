"""The undo journal of regfast's own transactions (``mode="journal"``, see
:mod:`regfast.live.transaction`): its file, written by ``_Journal`` and read
by :func:`read_journal`. Rolling it back: :mod:`regfast.live.undo`.

What the journal does instead of blind undo: **compare-and-undo**. Each undo first reads
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

A rollback appends an ``undone`` record (``of`` = the seq of the record it
dealt with; ``conflict`` = the conflict it left, if any) after each record's
undo, so a journal kept after a conflict or an interrupted rollback is never
undone twice: undoing a record again would revert a later, legitimate write
of the same data (compare-and-undo cannot tell it from this transaction's),
or delete a key made again since. A record left with a conflict is reported
again by later recoveries, never acted on. A recovery of a damaged journal
moves what follows its last valid record (never undone, though its writes
may have been made) to ``<journal>.damaged`` (``.damaged1``... if taken)
and records the damage, so that its marks can follow and later recoveries
report the damage again. A journal kept for a conflict or damage is never
finished by a recovery: inspect it, then delete it (and its ``.damaged``
file). A journal ending in ``rollback`` or ``commit`` is finished: a
recovery only removes it.
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
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regfast.exceptions import RegistryError
from regfast.live.agent import cache_dir
from regfast.live.roots import ROOT_NAMES

__all__ = [
    "read_journal",
    "TransactionError",
    "TransactionConflictError",
    "JournalCorruptError",
    "RollbackReport",
    "JournalContents",
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
            self.size = 0  # bytes of whole records
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
        """Appends one record, fsync'd. A write that fails half-way (a full
        disk) is cut off again: later records (a rollback's undone marks)
        must start a line of their own, or the journal reads as damaged from
        there and its marks are lost."""
        rec = dict(rec, seq=self.seq)
        fd = self.f.fileno()
        try:
            _write_all(fd, _line(rec))
            os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self.size)
                os.lseek(fd, self.size, os.SEEK_SET)
            raise
        self.size = os.lseek(fd, 0, os.SEEK_CUR)
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
    ``undone``: the seqs of records an earlier rollback already dealt with
    (they are not undone again), each with the conflict it left (None: it
    was undone, or had nothing to undo); ``end``: the byte offset past the
    last whole record, and ``next_seq`` the seq a record appended there gets."""

    header: dict[str, Any]
    records: list[dict[str, Any]]
    state: str
    damage: tuple[int, str] | None
    torn_tail: bool
    undone: dict[int, str | None] = field(default_factory=dict)
    end: int = 0
    next_seq: int = 0
    damage_set_aside: bool = False  # `damage` was found and set aside by an earlier recovery


_KINDS = {"set_value", "delete_value", "create_key", "delete_key"}
_VIEWS = (0, 0x100, 0x200)


def _undone_mark(of: int, conflict: str | None) -> dict[str, Any]:
    """The record that says the undo record `of` was dealt with, and the
    conflict it left (if any): what a rollback appends after each undo."""
    rec: dict[str, Any] = {"kind": "undone", "of": of}
    if conflict is not None:
        rec["conflict"] = conflict
    return rec


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
    nonblock = getattr(os, "O_NONBLOCK", 0)  # (POSIX only: Windows opens no FIFO this way)
    flags = (os.O_RDWR if "+" in mode else os.O_RDONLY) | nonblock | getattr(os, "O_BINARY", 0)
    fd = os.open(p, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise JournalCorruptError(f"{p}: not a regular file: not a regfast journal", 0, str(p))
        if nonblock:
            # (not on Windows: there Python 3.12+ has set_blocking for pipes
            # only, and it fails on a file)
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
    undone: dict[int, str | None] = {}
    earlier: tuple[int, str] | None = None  # damage a recovery set aside before
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
                of, conflict = rec.get("of"), rec.get("conflict")
                if type(of) is not int or of not in undoable:
                    why = f"an undone mark for {of!r}, which is no undo record before it"
                elif conflict is not None and not isinstance(conflict, str):
                    why = f"an undone mark with a conflict of {type(conflict).__name__}, not a string"
                else:
                    undone[of] = conflict
            elif kind == "damaged" and state == "open":
                off, reason, aside = rec.get("offset"), rec.get("reason"), rec.get("aside")
                if type(off) is not int or not isinstance(reason, str) or not isinstance(aside, str):
                    why = "a damaged record that is not {offset, reason, aside}"
                else:
                    earlier = (
                        off,
                        f"{reason} (found by an earlier recovery, which moved what followed to {aside})",
                    )
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
    if damage is None and earlier is not None:
        return JournalContents(header, records, state, earlier, torn, undone, pos, seq, damage_set_aside=True)
    return JournalContents(header, records, state, damage, torn, undone, pos, seq)
