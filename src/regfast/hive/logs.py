"""Dirty hives and transaction-log replay.

Windows writes changes to a hive's transaction logs (``SYSTEM.LOG1``,
``SYSTEM.LOG2``; ``SYSTEM.LOG`` before Windows 8.1) before it writes them to
the primary file. When it stops in between, the primary file is *dirty* (its
base block's sequence numbers differ, or its checksum is wrong) and its
newest data is only in the logs. This module finds the logs and replays them
into a private copy of the hive — never touching the user's files — the way
the kernel does when it loads the hive. The file formats are read by
:mod:`regfast.hive.logs_format`; this module decides what to apply.

The rules come from the format's specification (msuhanov/regf, "Windows
registry file format specification"; cited below as *spec*) and, where it is
silent or looser, from yarp (msuhanov/yarp ``RegistryFile.py`` /
``Registry.py``, by the same author; cited as *yarp*):

* **new format** (HvLE entries): each log holds a run of entries in file
  order, the first carrying the log base block's sequence number, each next
  one the previous plus one. With a valid primary base block the first log
  applied is the earliest one whose sequence number is not less than the
  primary's secondary sequence number — a gap between the two is normal after
  a partial reconcile — and a second log follows if it starts right after
  the last entry applied. With an invalid primary base block only the log
  with the latest entries is applied, and the primary's base block is
  rebuilt from it. Replay stops at the first entry whose hashes or hive bins
  data size are wrong.
* **old format** (DIRT vector): one log, the latest by its last-written
  timestamp, applied when that timestamp is not older than the primary's (the
  first hive bin's when the base block is invalid); every dirty hive bin must
  check out, and replay stops before the first one that does not.

Every size a log states is bounded before anything is allocated: by the
format (a multiple of 4096 below 4 GiB) and by what the primary file and
the logs can fill (a log that says the hive has 4 GB of hive bins but
carries 300 KB of pages is not believed). Such an entry is invalid, with its
offset in the log.

Replay happens in memory: the primary file is mapped copy-on-write
(``mmap.ACCESS_COPY``, MAP_PRIVATE) — or copied into a bytearray when the
log grows the hive — the pages are written there, the base block is fixed
(sequence numbers equal, hive bins data size, checksum) and the result is
opened with :meth:`Hive.from_buffer`.

What happened is in a :class:`RecoveryReport`: :func:`recover` returns it
with the hive, and :func:`recovery_of` finds it for any hive opened by
``regfast.open_hive(..., logs=...)`` (kept in a WeakKeyDictionary: ``Hive``
is an extension type without a ``__dict__``, so no attribute can be set on
it, and a Python subclass cannot be produced by ``Hive.from_buffer``).
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Sequence

from regfast._files import open_regular
from regfast._native import Hive
from regfast.exceptions import RegistryError
from regfast.hive.logs_format import (  # noqa: F401  (re-exported: regfast.hive.logs is the public module)
    _NATIVE_MARVIN,
    BASE_BLOCK_SIZE,
    FILE_TYPE_PRIMARY,
    HBIN_ALIGN,
    LOG_BASE_BLOCK_SIZE,
    MARVIN32_SEED,
    MAX_HBINS_SIZE,
    BaseBlock,
    LogEntry,
    LogFile,
    _marvin32_py,
    base_block_checksum,
    find_logs,
    marvin32,
    read_log,
    seq_delta,
    seq_ge,
)
from regfast.hive.logs_report import (
    _REPORTS,
    DirtyHiveWarning,
    LogReport,
    RecoveryReport,
    _note_open,
    _report_from_info,
    _warn_stale,
    recovery_of,
)

#: A path as open_hive and recover take it.
PathArg = str | bytes | os.PathLike[str] | os.PathLike[bytes]
#: The logs to replay: "auto" (found next to the hive), one path, a list of them, or None.
LogsArg = PathArg | Sequence[PathArg] | None
#: A replayed hive image: a copy-on-write mapping of the primary, or a bytearray.
Image = mmap.mmap | bytearray

__all__ = [
    "MARVIN32_SEED",
    "DirtyHiveWarning",
    "BaseBlock",
    "LogEntry",
    "LogFile",
    "LogReport",
    "RecoveryReport",
    "marvin32",
    "base_block_checksum",
    "find_logs",
    "read_log",
    "replay",
    "recover",
    "open_with_logs",
    "recovery_of",
]

_M32 = 0xFFFFFFFF


# --------------------------------------------------------------------------
# The primary file
# --------------------------------------------------------------------------


class _Primary:
    """The primary file: its base block and how much hive bins data it holds."""

    def __init__(self, path: str) -> None:
        self.path = path
        with open_regular(path) as f:
            self.size = os.fstat(f.fileno()).st_size
            self.head = f.read(BASE_BLOCK_SIZE + 32)
        self.base = BaseBlock.parse(self.head)
        #: Hive bins data the file can hold, whatever its base block says
        #: (yarp guesses the same way when the base block is invalid).
        self.hbins_cap = max(0, self.size - BASE_BLOCK_SIZE) // HBIN_ALIGN * HBIN_ALIGN

    @property
    def valid_base(self) -> BaseBlock | None:
        """The base block when it is there and its checksum matches."""
        return self.base if self.base is not None and self.base.checksum_ok else None

    @property
    def valid(self) -> bool:
        return self.valid_base is not None

    @property
    def hbins_size(self) -> int:
        """The hive bins data size to start from: the base block's when it is
        valid, bounded by the file (a primary truncated, or one whose size
        field lies, cannot make replay allocate what the file does not hold)."""
        base = self.valid_base
        if base is not None and base.hbins_size % HBIN_ALIGN == 0:
            return min(base.hbins_size, self.hbins_cap)
        return self.hbins_cap

    @property
    def claimed_size(self) -> int:
        """The file size its valid base block says (0 without one)."""
        base = self.valid_base
        return BASE_BLOCK_SIZE + base.hbins_size if base is not None else 0

    def first_hbin_timestamp(self) -> int | None:
        """The first hive bin's timestamp, a backup of the base block's
        last-written timestamp (spec, "Hive bin" note 3)."""
        if (
            len(self.head) >= BASE_BLOCK_SIZE + 28
            and self.head[BASE_BLOCK_SIZE : BASE_BLOCK_SIZE + 4] == b"hbin"
        ):
            (ts,) = struct.unpack_from("<Q", self.head, BASE_BLOCK_SIZE + 20)
            return int(ts)
        return None

    def copy_on_write(self, need: int) -> Image:
        """A private, writable image of the primary file of at least `need`
        bytes: a MAP_PRIVATE mapping when the file is large enough, else a
        bytearray (the hive grew through the log). `need` is bounded by the
        caller (the primary's size plus what the logs carry)."""
        if self.size >= need:
            with open_regular(self.path) as f:
                return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        buf = bytearray(need)
        with open_regular(self.path) as f:
            f.readinto(memoryview(buf)[: self.size])
        return buf


def _fix_base_block(
    buf: Image, *, template: bytes | None, sequence: int, hbins_size: int, flags: int | None
) -> None:
    if template is not None:
        # the primary's base block was unusable: take the log's (its first
        # 512 bytes are all a log keeps), the rest of the block zeroed, the
        # file type set back to 0 (spec, old format note 4; yarp's
        # save_recovered_hive)
        buf[0:BASE_BLOCK_SIZE] = bytes(template[:LOG_BASE_BLOCK_SIZE]).ljust(BASE_BLOCK_SIZE, b"\0")
    struct.pack_into("<II", buf, 4, sequence, sequence)
    struct.pack_into("<I", buf, 28, FILE_TYPE_PRIMARY)
    struct.pack_into("<I", buf, 40, hbins_size)
    if flags is not None:
        struct.pack_into("<I", buf, 144, flags)
    struct.pack_into("<I", buf, 508, base_block_checksum(buf))


def _note_unfilled(
    report: RecoveryReport, file_size: int, claimed: int, end: int, written: list[tuple[int, int]]
) -> None:
    """Lists in `report` the bytes of the replayed image below `end` that
    neither the primary file (its first `file_size` bytes) nor any applied
    log page gave: they are zeros. A hive grown through its logs has every
    new page in them: a gap means the primary was cut short (a copy, a disk:
    it holds less than the `claimed` bytes its base block says) or the
    replay stopped before the pages that held them; their hive bins are
    lost, not empty."""
    gaps: list[tuple[int, int]] = []
    at = file_size
    for start, stop in sorted(written):
        if at >= end:
            break
        if start > at:
            gaps.append((at, min(start, end) - at))
        at = max(at, stop)
    if at < end:
        gaps.append((at, end - at))
    if gaps:
        report.zero_filled = gaps
        total = sum(n for _, n in gaps)
        first = gaps[0][0]
        cut = ", shorter than its base block says: cut short?" if file_size < claimed else ""
        report.warnings.append(
            f"{total:,} bytes of the hive bins (from file offset 0x{first:x}, in {len(gaps)} "
            f"range{'s' * (len(gaps) != 1)}) are in neither the primary file ({file_size:,} bytes{cut}) "
            "nor an applied log page: zero-filled"
        )


def _round_up(n: int, to: int = HBIN_ALIGN) -> int:
    return (n + to - 1) // to * to


# --------------------------------------------------------------------------
# New format
# --------------------------------------------------------------------------


def _entry_hash_problem(log: LogFile, e: LogEntry) -> str | None:
    """spec, new format notes 1-3: hash-2 over the first 32 bytes, hash-1
    over the rest of the entry."""
    with memoryview(log.data) as mv:
        with mv[e.offset : e.offset + 32] as head:
            if marvin32(head) != e.hash2:
                return "hash-2 (entry header) mismatch"
        with mv[e.offset + 40 : e.offset + e.size] as body:
            if marvin32(body) != e.hash1:
                return "hash-1 (page data) mismatch"
    return None


def _where(e: LogEntry) -> str:
    return f"{os.path.basename(e.log)} @0x{e.offset:x}, sequence {e.sequence}"


def _valid_run(lg: LogFile, limit: int, start: int = 0) -> tuple[list[LogEntry], LogEntry | None, str | None]:
    """The entries of `lg` from its entry `start` on that may be applied
    (up to the first invalid one), that entry and why it is invalid (None,
    None when the run ends normally). Entries before `start` are in the
    primary already: whether they are intact does not matter."""
    out: list[LogEntry] = []
    for e in lg.entries[start:]:
        why = e.problem
        if why is None and e.hbins_size > limit:
            # the log bomb: a size no page of the logs can fill
            why = (
                f"hive bins data size 0x{e.hbins_size:x} (at 0x{e.offset + 16:x}) exceeds what the "
                f"primary file and the logs hold (0x{limit:x} bytes)"
            )
        if why is None:
            why = _entry_hash_problem(lg, e)
        if why is not None:
            return out, e, f"invalid log entry: {_where(e)}: {why}"
        out.append(e)
    return out, None, None


def _by_sequence(logs: list[LogFile]) -> list[LogFile]:
    """Earliest log first by its base block's sequence number, wrap-around
    aware (yarp's ``is_starting_log``). The spec: "the first transaction log
    file isn't guaranteed to contain earlier log entries"."""
    ref = logs[0].header.primary_sequence

    def signed(lg: LogFile) -> int:
        d = seq_delta(lg.header.primary_sequence, ref)
        return d - (1 << 32) if d >= 0x80000000 else d

    return sorted(logs, key=signed)


def _plan_new(
    prim: _Primary, order: list[LogFile], reps: dict[str, LogReport], report: RecoveryReport
) -> tuple[int, int] | None:
    """(index in `order` of the first log to apply, index of its first entry
    to apply), or None with report.stop_reason set."""
    base = prim.valid_base
    if base is None:
        # spec, "Multiple transaction log files / New format": with an invalid
        # base block "only the transaction log file with latest log entries
        # is used"; yarp's apply_new_log_files applies only the later log
        # ("This is how Windows works"). Its base block replaces the
        # primary's (spec, new format note 6).
        for lg in order[:-1]:
            reps[lg.path].stopped = (
                "not used: with the primary's base block invalid, only the log "
                "with the latest entries is applied"
            )
        return len(order) - 1, 0
    if base.dirty:
        # spec, new format notes 4-5: a log "may contain ... old (already
        # applied) log entries", and "only subsequent log entries are
        # applied": those numbered from the secondary sequence number s on.
        # A log whose entries start at s or later is applied from its first
        # (a gap is normal: real primaries lag their reused logs); one that
        # starts before s from its entry s, when its run reaches that far.
        # (yarp refuses such a log as NotEligible and tries the other one:
        # its pending entries were lost, and the hive read stale.)
        s = base.secondary_sequence
        for i, lg in enumerate(order):
            b = lg.header.primary_sequence
            if seq_ge(b, s):
                return i, 0
            if seq_delta(s, b) < len(lg.entries):
                return i, seq_delta(s, b)
            reps[lg.path].stopped = (
                f"not used: its {len(lg.entries)} entries from sequence {b} end before the primary's "
                f"secondary sequence number {s} (already in the primary file)"
            )
        starts = ", ".join(str(lg.header.primary_sequence) for lg in order)
        report.stop_reason = (
            f"no log continues the primary file: the logs start at sequence {starts}, "
            f"before its secondary sequence number {s}"
        )
        return None
    # A clean primary (mode "forensic", an extension: Windows ignores such
    # entries — spec, "Dirty state of a hive"). Only entries that continue
    # it exactly are applied: no gap is accepted without the dirty state
    # vouching for it. The entry that continues a clean primary at P is P,
    # as Windows numbers them: the corpus's dfwinreg NTUSER.DAT, clean at
    # 132, holds its .LOG's entry 131 (and the dirty path starts at the
    # secondary sequence number: spec, new format note 7). Starting at
    # P + 1 skipped a pending entry P and applied P + 1 alone, a state that
    # never was; a log starting at P + 1 is that same gap. (An entry P that
    # the primary holds already is applied again: it rewrites the same pages.)
    want = base.primary_sequence
    for i, lg in enumerate(order):
        k = seq_delta(want, lg.header.primary_sequence)
        if k < len(lg.entries):
            return i, k
    for lg in order:
        reps[lg.path].stopped = (
            f"not used: none of its {len(lg.entries)} entries from sequence "
            f"{lg.header.primary_sequence} continues the clean primary ({base.primary_sequence})"
        )
    newer = [lg for lg in order if lg.entries and seq_ge(lg.header.primary_sequence, want)]
    if newer:
        # entries after P without P itself: the write between is lost
        report.stop_reason = (
            f"the hive is clean at sequence {want} and no log holds entry {want}: the logs start at "
            + ", ".join(str(lg.header.primary_sequence) for lg in newer)
            + " (a gap), so their entries are not applied"
        )
        report.warnings.append(
            f"{sum(len(lg.entries) for lg in newer)} log entries newer than the clean primary are not "
            f"applied: entry {want} between them and it is missing"
        )
    else:
        report.stop_reason = "the hive is clean and no log entry is newer than it"
    return None


def _replay_new(
    prim: _Primary, logs: list[LogFile], reps: dict[str, LogReport], report: RecoveryReport
) -> tuple[Image, int] | None:
    """Returns (buffer, final hbins size) or None. A clean primary gets here
    only in mode "forensic"."""
    usable = [lg for lg in logs if lg.format == "new" and lg.problem is None]
    if not usable:
        return None
    order = _by_sequence(usable)
    plan = _plan_new(prim, order, reps, report)
    if plan is None:
        return None
    first, skip = plan
    # Bound for every hive bins data size: what the primary file holds plus
    # every byte the logs carry (growth of the hive arrives as pages).
    limit = min(MAX_HBINS_SIZE, _round_up(prim.hbins_cap + sum(lg.size for lg in usable)))

    chain: list[tuple[LogFile, list[LogEntry]]] = []
    last: int | None = None
    bad: LogEntry | None = None  # the invalid entry replay stopped at, if it did
    why_bad = ""
    broken = ""
    pool = order[first:] if prim.valid else order[first : first + 1]  # the logs replay may use
    for n, lg in enumerate(pool):
        b = lg.header.primary_sequence
        if n:
            # spec, "Multiple transaction log files / New format": the next
            # log continues with N + 1, N the last entry applied (yarp: a
            # second log is applied only then, not when the first applied
            # nothing). It may hold entries up to N as well (new format
            # note 4): it is entered at its entry N + 1.
            want = (last + 1) & _M32 if last is not None else None
            skip = seq_delta(want, b) if want is not None else len(lg.entries)
            if skip >= len(lg.entries):
                if want is None:
                    why_not = "the log before it applied no entry"
                elif not lg.entries:
                    why_not = "it holds no entry"
                else:
                    why_not = f"its {len(lg.entries)} entries from sequence {b} do not hold {want}"
                reps[lg.path].stopped = f"not used: {why_not}"
                broken = f" ({lg.name}: {why_not})"
                break
        run, e_bad, why = _valid_run(lg, limit, skip)
        skip = 0
        reps[lg.path].stopped = why or f"end of its entries: {lg.end}"
        if run:
            chain.append((lg, run))
            last = run[-1].sequence
        if e_bad is not None:
            bad, why_bad = e_bad, why or ""
    # The last invalid entry seen stopped the replay unless a later log
    # carried it past that entry: then only entries of its own log beyond
    # what was applied are lost to it (another log's gap is no fault of it).
    later: set[int] = set()
    beyond = False
    if bad is not None:
        beyond = last is None or 0 < seq_delta(bad.sequence, last) < 0x80000000
        ref = bad.sequence if beyond or last is None else last
        later = {
            e.sequence
            for lg in pool
            for e in lg.entries
            if (beyond or e.log == bad.log) and 0 < seq_delta(e.sequence, ref) < 0x80000000
        }
    if bad is not None and (beyond or later):
        report.stop_reason = why_bad
        if later:
            report.warnings.append(
                f"{len(later)} later log entries ignored after the invalid one (sequence {bad.sequence})"
            )
    elif last is not None:
        report.stop_reason = f"no log entry with sequence {(last + 1) & _M32}: end of the logs{broken}"
    if not chain:
        if not report.stop_reason:
            lg = order[first]
            report.stop_reason = f"no log entry to apply in {lg.name}: {lg.end}"
        return None

    entries = [e for _, run in chain for e in run]
    hb_final = entries[-1].hbins_size
    need = BASE_BLOCK_SIZE + max(prim.hbins_size, max(e.hbins_size for e in entries))
    buf = prim.copy_on_write(need)
    written: list[tuple[int, int]] = []  # (start, end) of each page applied
    flags = None
    for lg, run in chain:
        # yarp's apply_new_log_file: the flags come from the log's base block,
        # bit 0 from each entry (spec, new format note 11)
        flags = lg.header.flags
        data = lg.data
        r = reps[lg.path]
        for e in run:
            src = e.data_offset
            for off, psize in e.pages(data):
                dst = BASE_BLOCK_SIZE + off
                buf[dst : dst + psize] = data[src : src + psize]
                written.append((dst, dst + psize))
                src += psize
            flags = (flags | 1) if e.flags & 1 else (flags & ~1 & _M32)
            r.entries_applied += 1
            r.pages_applied += e.count
            if r.first_sequence is None:
                r.first_sequence = e.sequence
            r.last_sequence = e.sequence
            report.pages_applied += e.count
    template = None
    if not prim.valid:
        template = bytes(chain[0][0].data[:LOG_BASE_BLOCK_SIZE])
        report.base_block_from_log = True
    assert last is not None  # set with every run added to chain, and chain is not empty
    _fix_base_block(buf, template=template, sequence=last, hbins_size=hb_final, flags=flags)
    _note_unfilled(report, prim.size, prim.claimed_size, BASE_BLOCK_SIZE + hb_final, written)
    report.format = "new"
    report.entries_applied = len(entries)
    report.last_sequence = last
    valid = prim.valid_base
    report.newer_than_clean = valid is not None and not valid.dirty
    return buf, hb_final


# --------------------------------------------------------------------------
# Old format
# --------------------------------------------------------------------------


def _pick_old(cands: list[LogFile]) -> LogFile:
    """yarp's recover_auto: the dual-logging files (.LOG1/.LOG2) before a
    single .LOG, and of two the one with the later last-written timestamp
    (LOG1 on a tie)."""

    def rank(lg: LogFile) -> int:
        name = lg.path.lower()
        return 0 if name.endswith(".log1") else 1 if name.endswith(".log2") else 2

    dual = [lg for lg in cands if rank(lg) < 2]
    pool = sorted(dual or cands, key=rank)
    best = pool[0]
    for lg in pool[1:]:
        if lg.header.last_write > best.header.last_write:
            best = lg
    return best


def _old_stop_offset(buf: Image, log: LogFile, hb: int, dirty: dict[int, int]) -> tuple[int, str | None]:
    """Where the dirty pages stop being applied (hive bins data offset), and
    why. spec, "Dirty pages": "a dirty hive bin is verified for correctness
    (its Signature must be correct, its Size must not be less than 4096
    bytes, its Offset must match ...); recovery stops if a dirty hive bin is
    invalid, an invalid dirty hive bin is ignored." Past a bin that cannot
    be measured no later bin can be located, so its dirty pages cannot be
    verified either: replay stops there too."""
    data = log.data
    last_dirty = max(dirty) if dirty else -1
    off = 0
    while off < hb and off // 512 <= last_dirty:
        page = off // 512
        src = dirty.get(page)
        head = (
            bytes(data[src : src + 12])
            if src is not None
            else bytes(buf[BASE_BLOCK_SIZE + off : BASE_BLOCK_SIZE + off + 12])
        )
        sig, boff, bsize = struct.unpack("<4sII", head.ljust(12, b"\0"))
        if sig == b"hbin" and boff == off and bsize >= HBIN_ALIGN and bsize % HBIN_ALIGN == 0:
            off += bsize
            continue
        what = "dirty hive bin" if src is not None else "hive bin (not dirty)"
        return off, (
            f"{log.name}: the {what} at 0x{off:x} is invalid (signature {sig!r}, offset 0x{boff:x}, "
            f"size 0x{bsize:x}): recovery stopped there"
        )
    return hb, None


def _replay_old(
    prim: _Primary, logs: list[LogFile], reps: dict[str, LogReport], report: RecoveryReport
) -> tuple[Image, int] | None:
    cands = [lg for lg in logs if lg.format == "old" and lg.problem is None]
    if not cands:
        return None
    base = prim.valid_base
    if base is not None and not base.dirty:
        report.stop_reason = "the hive is clean: old-format logs are not applied"
        return None
    log = _pick_old(cands)
    for lg in cands:
        if lg is not log:
            reps[lg.path].stopped = "not used: another log is later (yarp: the latest one is applied)"
    # spec, old format note 3: applicable when the timestamps are equal (the
    # first hive bin's when the base block is invalid); yarp's
    # apply_old_log_file only refuses a log older than the primary file.
    primary_ts = base.last_write if base is not None else prim.first_hbin_timestamp()
    r = reps[log.path]
    if primary_ts is None:
        r.stopped = (
            "not used: the primary's last-written timestamp is unknown (invalid base block, no hive bin)"
        )
        report.stop_reason = r.stopped
        return None
    if log.header.last_write < primary_ts:
        r.stopped = (
            "not used: its last-written timestamp is older than the primary file's: it belongs "
            "to an earlier write"
        )
        report.stop_reason = f"{log.name}: {r.stopped[10:]}"
        return None
    hb = log.header.hbins_size
    pages = log.dirty_pages
    limit = min(MAX_HBINS_SIZE, _round_up(prim.hbins_cap + 512 * len(pages)))
    if hb > limit:
        r.stopped = (
            f"not used: hive bins data size 0x{hb:x} (at 0x28) exceeds what the primary file and "
            f"its {len(pages)} dirty pages hold (0x{limit:x} bytes)"
        )
        report.stop_reason = f"{log.name}: {r.stopped[10:]}"
        return None
    need = BASE_BLOCK_SIZE + max(hb, prim.hbins_size)
    buf = prim.copy_on_write(need)
    dirty = {page: log.pages_offset + 512 * i for i, page in enumerate(pages)}
    stop, why = _old_stop_offset(buf, log, hb, dirty)
    data = log.data
    applied = 0
    written: list[tuple[int, int]] = []
    for page, src in dirty.items():
        if page * 512 >= stop:
            break
        dst = BASE_BLOCK_SIZE + 512 * page
        buf[dst : dst + 512] = data[src : src + 512]
        written.append((dst, dst + 512))
        applied += 1
    if not applied:
        if isinstance(buf, mmap.mmap):
            buf.close()
        r.stopped = why or "no dirty page"
        report.stop_reason = why or f"{log.name}: no dirty page"
        return None
    template = None
    if base is None:
        template = bytes(data[:LOG_BASE_BLOCK_SIZE])
        report.base_block_from_log = True
        seq = log.header.primary_sequence
    else:
        # yarp's save_recovered_hive: the primary's primary sequence number
        seq = base.primary_sequence
    _fix_base_block(buf, template=template, sequence=seq, hbins_size=hb, flags=None)
    _note_unfilled(report, prim.size, prim.claimed_size, BASE_BLOCK_SIZE + hb, written)
    r.pages_applied = applied
    r.stopped = why or "all dirty pages applied"
    report.format = "old"
    report.pages_applied = applied
    report.last_sequence = seq
    report.stop_reason = why or "all dirty pages applied"
    if why:
        report.warnings.append(f"{len(pages) - applied} of {len(pages)} dirty pages not applied")
    return buf, hb


# --------------------------------------------------------------------------
# Replay
# --------------------------------------------------------------------------

_MODES = ("forensic", "windows")


def _log_paths(path: str, logs: PathArg | Sequence[PathArg]) -> list[str]:
    if isinstance(logs, str) and logs == "auto":
        return find_logs(path)
    if isinstance(logs, (str, bytes, os.PathLike)):
        return [os.fsdecode(logs)]
    return list(dict.fromkeys(os.fsdecode(p) for p in logs))


def replay(
    path: PathArg, logs: LogsArg = "auto", *, mode: str = "forensic"
) -> tuple[Image | None, RecoveryReport]:
    """Replays a hive's transaction logs into a private copy.

    Parameters
    ----------
    path
        The primary hive file. It is only read.
    logs
        ``"auto"`` (``path`` + .LOG/.LOG1/.LOG2, any case), a list of log
        paths (their format is read from their content, not their names),
        or None (no replay).
    mode
        ``"forensic"`` (default): as Windows, and also replay log entries
        that continue a *clean* primary file (a crash after the log was
        written but before the primary was touched leaves such entries;
        Windows ignores them). ``"windows"``: replay only dirty hives.

    Returns
    -------
    (buffer or None, RecoveryReport)
        The buffer (a copy-on-write mmap or a bytearray, holding the
        replayed hive from offset 0; its hive bins data size is
        ``report.hbins_size_after``) — None when nothing was replayed. Its
        size is bounded by the primary file's plus the logs'.
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    path = os.fsdecode(os.fspath(path))
    prim = _Primary(path)
    base = prim.base
    report = RecoveryReport(
        path,
        dirty=base is None or base.dirty,
        sequence=base.sequence if base else (0, 0),
        checksum_ok=bool(base and base.checksum_ok),
    )
    if base is not None:
        if not base.checksum_ok:
            report.dirty_reasons.append("base block checksum mismatch")
        if base.primary_sequence != base.secondary_sequence:
            report.dirty_reasons.append(
                f"sequence numbers differ ({base.primary_sequence} / {base.secondary_sequence})"
            )
        report.hbins_size_before = report.hbins_size_after = base.hbins_size
    else:
        report.dirty_reasons.append("no usable base block")
    if logs is None:
        report.stop_reason = "log replay not requested"
        return None, report
    if base is None:
        report.stop_reason = "the primary file has no 'regf' base block"
        return None, report
    paths = _log_paths(path, logs)
    if not paths:
        report.stop_reason = "no transaction logs found" if logs == "auto" else "no logs given"
        return None, report

    opened: list[LogFile] = []
    try:
        for p in paths:
            lg = read_log(p)
            opened.append(lg)
            report.logs.append(
                LogReport(
                    p,
                    lg.format,
                    lg.base.primary_sequence if lg.base else None,
                    len(lg.entries),
                    problem=lg.problem,
                )
            )
        reps = {r.path: r for r in report.logs}
        if base.checksum_ok and not base.dirty and mode == "windows":
            report.stop_reason = "the hive is clean: logs not applied"
            return None, report
        result = _replay_new(prim, opened, reps, report)
        if result is None and report.format is None:
            new_reason = report.stop_reason
            result = _replay_old(prim, opened, reps, report)
            if (
                result is None
                and new_reason
                and not any(lg.format == "old" and lg.problem is None for lg in opened)
            ):
                report.stop_reason = new_reason
        if result is None:
            if not report.stop_reason:
                probs = [f"{os.path.basename(r.path)}: {r.problem}" for r in report.logs if r.problem]
                report.stop_reason = "no usable log" + (" (" + "; ".join(probs) + ")" if probs else "")
            return None, report
        buf, final_hb = result
        report.applied = True
        report.hbins_size_after = final_hb
        return buf, report
    finally:
        for lg in opened:
            lg.close()


# --------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------


def recover(
    path: PathArg,
    logs: LogsArg = "auto",
    *,
    lenient: bool = False,
    mode: str = "forensic",
    errors: str = "strict",
    copy: bool = False,
) -> tuple[Hive, RecoveryReport]:
    """Opens a hive with its transaction logs replayed.

    Returns ``(Hive, RecoveryReport)``. The hive is opened from the
    replayed in-memory image (``Hive.from_buffer``; its ``path`` is None)
    when something was replayed, else from the file as usual. The user's
    files are never written. No warning is issued: the report says all.
    See :func:`replay` for `logs` and `mode`; `errors` ("strict" or
    "tolerant") and `copy` as for :func:`regfast.open_hive`. With "tolerant", a primary
    too damaged to replay logs onto is opened as it is, and the report's
    stop_reason says why nothing was replayed.
    """
    try:
        buf, report = replay(path, logs, mode=mode)
    except RegistryError:
        raise
    except OSError as e:
        # the primary itself cannot be read: let the reader raise its own
        # error (FileNotFoundError with winerror 2, PermissionError, ...)
        hive = Hive.from_file(path, lenient=lenient, errors=errors, copy=copy)
        if errors != "tolerant":
            hive.close()
            raise
        report = _report_from_info(
            path, hive, f"logs not replayed: the primary is damaged ({e.strerror or e})"
        )
        _REPORTS[hive] = report
        return hive, report
    if buf is None:
        hive = Hive.from_file(path, lenient=lenient, errors=errors, copy=copy)
    else:
        # copy: the replayed image is a copy-on-write mapping of the primary
        # whose untouched pages still read the file; make it all private
        hive = Hive.from_buffer(
            bytearray(buf) if copy and not isinstance(buf, bytearray) else buf, lenient=lenient, errors=errors
        )
    _REPORTS[hive] = report
    return hive, report


def open_with_logs(
    path: str,
    logs: LogsArg,
    lenient: bool = False,
    *,
    errors: str = "strict",
    stacklevel: int = 1,
    copy: bool = False,
) -> Hive:
    """``open_hive``'s implementation: recover() plus a DirtyHiveWarning when
    a dirty hive is read without its logged changes (`stacklevel`: frames
    above this function's caller to blame, as for warnings.warn)."""
    if logs is None:
        stop_reason = "log replay not requested"
    elif isinstance(logs, str) and logs == "auto" and not find_logs(path):
        # The common case, a hive with no logs beside it: replay could only
        # report, from a second read of the base block (two thirds of a
        # small hive's open). The same report from the mapping's base block.
        # A primary that cannot be opened raises what recover() would: with
        # no logs it ends in this same call.
        stop_reason = "no transaction logs found"
    else:
        hive, report = recover(path, logs, lenient=lenient, errors=errors, copy=copy)
        _warn_stale(report, stacklevel + 2)
        return hive
    hive = Hive.from_file(path, lenient=lenient, errors=errors, copy=copy)
    try:
        _note_open(path, hive, stop_reason, stacklevel + 2)
    except BaseException:
        hive.close()
        raise
    return hive
