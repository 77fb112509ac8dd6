"""Rolling back a journaled transaction: compare-and-undo of the records
:mod:`regfast.live.journal` reads, each record's undo marked in the journal
(see that module's docstring for the rules), and :func:`rollback_journal`,
what ``regfast recover`` runs on a journal a crashed process left."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from regfast.live import registry as _live
from regfast.live.journal import (
    ERROR_TRANSACTION_NOT_ACTIVE,
    JournalCorruptError,
    RollbackReport,
    TransactionConflictError,
    TransactionError,
    _digest,
    _line,
    _lock,
    _open_journal,
    _parse_journal,
    _unb64,
    _undone_mark,
    _write_all,
)
from regfast.live.roots import ROOT_NAMES

__all__ = ["rollback_journal"]

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
        # Not under a parent someone deleted since (the writes below would
        # make it again, and its parents).
        parent = path.rpartition("\\")[0]
        if parent and not _key_exists(reg, root, view, parent):
            report.conflicts.append(
                (rec, f"{where}: its parent was deleted after this transaction deleted it; not re-created")
            )
            return
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
    mark: Callable[[int, str | None], None],
    done: dict[int, str | None] | None = None,
) -> RollbackReport:
    """Undoes `records` in reverse, but those an earlier rollback dealt with
    (`done`: seq -> the conflict it left, or None). `mark(seq, conflict)`
    records each one as dealt with once its undo ran, conflict or not: a
    record is never undone again, since someone wrote there after this
    transaction (a conflict), or its undo is done — undoing it later would
    revert a later write of the same data, or re-delete a key deleted and
    made again since. A conflict found before is reported again."""
    report = RollbackReport()
    for rec in reversed(records):
        if done is not None and rec["seq"] in done:
            why = done[rec["seq"]]
            if why is None:
                report.already += 1
            else:
                report.conflicts.append((rec, why + " (found by an earlier rollback)"))
            continue
        before = len(report.conflicts)
        _undo_one(reg, rec, report)
        found = report.conflicts[before:]
        mark(rec["seq"], "; ".join(why for _, why in found) if found else None)
    return report


def _set_aside(p: Path, fd: int, at: int) -> Path:
    """Copies the journal's bytes from `at` (past the last valid record:
    never undone) to a new file beside it (mode 0600, as journals: it holds
    old value data), fsync'd with its directory entry, then cuts them off.
    Returns the new file; on failure nothing is cut and no file is left."""
    for n in range(1000):
        aside = p.with_name(p.name + (".damaged" if n == 0 else f".damaged{n}"))
        try:
            out = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
            break
        except (FileExistsError, IsADirectoryError):
            continue
    else:
        raise FileExistsError(17, "no free name beside the journal for its damaged part", str(p))
    try:
        os.lseek(fd, at, os.SEEK_SET)
        while chunk := os.read(fd, 1 << 20):
            _write_all(out, chunk)
        os.fsync(out)
    except BaseException:
        os.close(out)
        with contextlib.suppress(OSError):
            os.unlink(aside)
        raise
    os.close(out)
    if hasattr(os, "O_DIRECTORY"):
        dfd = os.open(p.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    os.ftruncate(fd, at)
    os.fsync(fd)
    return aside


def rollback_journal(
    path: str | os.PathLike[str], reg: _live.Registry | None = None, *, keep: bool = False
) -> RollbackReport:
    """Undoes what a transaction that did not finish (a crash, a killed
    process) left in the registry, from its journal.

    The valid prefix of the journal is undone with compare-and-undo (see the
    module docstring), each record once: the undone marks go into the
    journal (not into one this process cannot write: then it is undone as
    before, unmarked). The file is deleted afterwards unless ``keep`` or a
    conflict or damage was found (then it stays, for inspection; damage:
    what follows the last whole record moves to ``<journal>.damaged``). A
    journal that already says ``commit`` or ``rollback`` is not undone: its
    file is just removed.

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
    try:
        f = _open_journal(p, "r+b")  # (a recovery appends its undone marks)
        writable = True
    except PermissionError:  # a read-only file (or mount): undone as before, nothing marked
        f, writable = _open_journal(p, "rb"), False
    except OSError as e:
        if e.errno != errno.EROFS:
            raise
        f, writable = _open_journal(p, "rb"), False
    aside: Path | None = None
    aside_error: OSError | None = None
    with f:
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

            def append(rec: dict[str, Any]) -> None:
                # after the last whole record (a torn tail, or what the
                # set-aside copied, is dropped first: each record starts a
                # line of its own), fsync'd as every record
                nonlocal at, seq
                os.ftruncate(fd, at)
                os.lseek(fd, at, os.SEEK_SET)
                line = _line(dict(rec, seq=seq))
                _write_all(fd, line)
                os.fsync(fd)
                at += len(line)
                seq += 1

            if writable and j.damage is not None and not j.damage_set_aside:
                # The marks go after the last valid record, so what follows
                # it (never undone) moves to <journal>.damaged, for
                # inspection: a damaged journal kept as found would have its
                # valid part undone again by every later recovery. A record
                # of the damage stays, so later recoveries report it again.
                try:
                    aside = _set_aside(p, fd, at)
                except OSError as e:  # (no room, no right): undone unmarked, as before
                    writable, aside_error = False, e
                else:
                    append(
                        {"kind": "damaged", "offset": j.damage[0], "reason": j.damage[1], "aside": aside.name}
                    )

            def mark(of: int, conflict: str | None) -> None:
                if writable:
                    append(_undone_mark(of, conflict))

            report = _undo(reg, j.records, mark, j.undone)
    if j.damage is not None:
        moved = f" (moved to {aside})" if aside else ""
        if aside_error is not None:
            moved = f" (could not be set aside: {aside_error}; nothing was marked undone)"
        raise JournalCorruptError(
            f"{p}: {j.damage[1]}; the {len(j.records)} records before it were "
            f"undone ({report.summary()}), nothing after it{moved}",
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
