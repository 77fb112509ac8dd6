"""Dirty hives and transaction-log replay.

Windows writes changes to a hive's transaction logs (``SYSTEM.LOG1``,
``SYSTEM.LOG2``; ``SYSTEM.LOG`` before Windows 8.1) before it writes them to
the primary file. When it stops in between, the primary file is *dirty* (its
base block's sequence numbers differ, or its checksum is wrong) and its
newest data is only in the logs. This module finds the logs, checks them and
replays them into a private copy of the hive — never touching the user's
files — the way the kernel does when it loads the hive.

Two log formats (msuhanov/regf, "Format of transaction log files"):

* **new** (Windows 8.1+): a 512-byte base block (file type 6) followed by
  ``HvLE`` log entries, each with a sequence number, the hive bins data size
  at that time, page references and the pages, protected by two Marvin32
  hashes. Entries of LOG1 and LOG2 are applied by sequence number (not in
  file order), starting where the primary file left off, and replay stops at
  the first entry that is missing or does not verify.
* **old** (XP to 8.0): a base block (file type 1 or 2), a ``DIRT`` dirty
  vector (one bit per 512-byte page of the hive bins data) and the dirty
  pages. Applied when its last-written timestamp matches the primary's;
  aborted if a dirty hive bin does not check out.

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

import array
import mmap
import os
import struct
import sys
import warnings
import weakref
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

from regfast._files import open_regular

__all__ = [
    "MARVIN32_SEED", "DirtyHiveWarning", "BaseBlock", "LogEntry", "LogFile", "LogReport",
    "RecoveryReport", "marvin32", "base_block_checksum", "find_logs", "read_log", "replay",
    "recover", "open_with_logs", "recovery_of",
]

#: Seed of the Marvin32 hashes of HvLE log entries (the spec's 14219357686671994754).
MARVIN32_SEED = 0x82EF4D887A4E55C5

BASE_BLOCK_SIZE = 4096
LOG_BASE_BLOCK_SIZE = 512
HBIN_ALIGN = 4096
FILE_TYPE_PRIMARY = 0
FILE_TYPE_LOG_OLD = 1
FILE_TYPE_LOG_VERYOLD = 2
FILE_TYPE_LOG_NEW = 6
_M32 = 0xFFFFFFFF
_LOG_SUFFIXES = (".LOG", ".LOG1", ".LOG2")

_S_HVLE = struct.Struct("<4sIIIIIQQ")       # signature .. hash-2 (40 bytes)


class DirtyHiveWarning(UserWarning):
    """A dirty hive is being read without (all of) its logged changes."""


# --------------------------------------------------------------------------
# Marvin32 and the base block
# --------------------------------------------------------------------------

def _marvin32_py(data, seed: int) -> int:
    lo = seed & _M32
    hi = (seed >> 32) & _M32
    n = len(data)
    nw = n >> 2
    words = array.array("I")
    if words.itemsize != 4:  # pragma: no cover - every CPython platform has a 4-byte "I"
        words = array.array("L")
    mv = memoryview(data).cast("B")
    words.frombytes(mv[:nw * 4])
    if sys.byteorder != "little":  # pragma: no cover
        words.byteswap()
    # rotl32(x, r) == (x * 0x100000001 >> (32 - r)) & M for x < 2**32
    for v in words:
        lo = (lo + v) & 0xFFFFFFFF
        hi ^= lo
        lo = ((lo * 0x100000001 >> 12) + hi) & 0xFFFFFFFF
        hi = (hi * 0x100000001 >> 23) & 0xFFFFFFFF ^ lo
        lo = ((lo * 0x100000001 >> 5) + hi) & 0xFFFFFFFF
        hi = (hi * 0x100000001 >> 13) & 0xFFFFFFFF
    final = 0x80
    for b in reversed(bytes(mv[nw * 4:])):
        final = (final << 8) | b
    for v in (final, 0):
        lo = (lo + v) & 0xFFFFFFFF
        hi ^= lo
        lo = ((lo * 0x100000001 >> 12) + hi) & 0xFFFFFFFF
        hi = (hi * 0x100000001 >> 23) & 0xFFFFFFFF ^ lo
        lo = ((lo * 0x100000001 >> 5) + hi) & 0xFFFFFFFF
        hi = (hi * 0x100000001 >> 13) & 0xFFFFFFFF
    return (hi << 32) | lo


def _find_native_marvin():
    try:
        from regfast import _native
    except ImportError:  # pragma: no cover
        return None
    return getattr(_native, "marvin32", None)


_NATIVE_MARVIN = _find_native_marvin()


def marvin32(data, seed: int = MARVIN32_SEED) -> int:
    """The 64-bit Marvin32 hash of `data` (any bytes-like object), as
    ``(high state << 32) | low state`` — the form stored in HvLE entries.

    Implemented from the published algorithm (SymCrypt's reference: two
    32-bit lanes, rotations 20/9/27/19, a 0x80 end marker); checked against
    the .NET/SymCrypt test vectors. Uses ``regfast._native.marvin32`` when
    the extension provides it, else pure Python (~1 us per 4 bytes).
    """
    if _NATIVE_MARVIN is not None:
        return _NATIVE_MARVIN(data, seed)
    return _marvin32_py(data, seed)


def base_block_checksum(block) -> int:
    """XOR-32 of the first 508 bytes; 0 becomes 1 and 0xFFFFFFFF 0xFFFFFFFE."""
    c = 0
    for w in struct.unpack_from("<127I", block, 0):
        c ^= w
    if c == 0:
        return 1
    if c == _M32:
        return 0xFFFFFFFE
    return c


def _seq_delta(a: int, b: int) -> int:
    """How far sequence number `a` is after `b`, modulo 2**32."""
    return (a - b) & _M32


def _seq_ge(a: int, b: int) -> bool:
    return _seq_delta(a, b) < 0x80000000


@dataclass(frozen=True)
class BaseBlock:
    """The fields of a base block (of a primary file or of a log) that
    recovery uses."""
    primary_sequence: int
    secondary_sequence: int
    last_write: int
    major: int
    minor: int
    file_type: int
    root_offset: int
    hbins_size: int
    flags: int
    checksum: int
    checksum_ok: bool

    @property
    def sequence(self) -> Tuple[int, int]:
        return self.primary_sequence, self.secondary_sequence

    @property
    def dirty(self) -> bool:
        """Dirty by the spec: wrong checksum, or unequal sequence numbers."""
        return not self.checksum_ok or self.primary_sequence != self.secondary_sequence

    @classmethod
    def parse(cls, data) -> Optional["BaseBlock"]:
        """None unless `data` starts with a ``regf`` block of >= 512 bytes."""
        if len(data) < LOG_BASE_BLOCK_SIZE or bytes(data[:4]) != b"regf":
            return None
        p, s, ts, major, minor, ftype, _fmt, root, hb = struct.unpack_from("<IIQIIIIII", data, 4)
        flags, = struct.unpack_from("<I", data, 144)
        stored, = struct.unpack_from("<I", data, 508)
        return cls(p, s, ts, major, minor, ftype, root, hb, flags, stored,
                   stored == base_block_checksum(data))


# --------------------------------------------------------------------------
# Reading logs
# --------------------------------------------------------------------------

@dataclass
class LogEntry:
    """One HvLE entry of a new-format log, as found (hashes not yet checked)."""
    log: str
    offset: int                  # of the entry in the log file
    size: int
    flags: int
    sequence: int
    hbins_size: int
    pages: List[Tuple[int, int]]  # (offset in the hive bins data, size)
    hash1: int
    hash2: int
    problem: Optional[str] = None  # a structural defect: the entry is unusable

    @property
    def data_offset(self) -> int:
        """Where the first page's bytes are in the log file."""
        return self.offset + 40 + 8 * len(self.pages)


@dataclass
class LogFile:
    """A transaction log file, parsed: base block, entries or dirty pages."""
    path: str
    size: int
    format: str                         # "new", "old", "empty" or "invalid"
    base: Optional[BaseBlock] = None
    problem: Optional[str] = None       # why it cannot be used at all
    entries: List[LogEntry] = field(default_factory=list)       # new format
    dirty_pages: List[int] = field(default_factory=list)        # old format: 512-byte page numbers
    pages_offset: int = 0               # old format: first dirty page in the file
    data: object = None                 # the file's bytes (an mmap or bytes)

    def close(self) -> None:
        d, self.data = self.data, None
        if isinstance(d, mmap.mmap):
            d.close()


def _map_file(path: str):
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return b"", 0
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), size


def read_log(path: Union[str, os.PathLike]) -> LogFile:
    """Parses a log file's structure (base block, entry headers or dirty
    vector) without checking entry hashes. The file stays mapped: call
    ``close()`` on the result."""
    path = os.fspath(path)
    try:
        data, size = _map_file(path)
    except OSError as e:
        return LogFile(path, 0, "invalid", problem=f"cannot read it: {e.strerror or e}")
    log = LogFile(path, size, "invalid", data=data)
    if size == 0:
        log.format, log.problem = "empty", "the file is empty"
        return log
    base = BaseBlock.parse(data)
    log.base = base
    if base is None:
        log.problem = "no 'regf' base block at 0x0"
        return log
    if base.file_type == FILE_TYPE_LOG_NEW:
        log.format = "new"
    elif base.file_type in (FILE_TYPE_LOG_OLD, FILE_TYPE_LOG_VERYOLD):
        log.format = "old"
    else:
        log.problem = f"base block file type {base.file_type} is not a transaction log"
        return log
    if not base.checksum_ok:
        log.problem = "log base block checksum mismatch"
        return log
    if base.primary_sequence != base.secondary_sequence:
        log.problem = (f"log base block sequence numbers differ ({base.primary_sequence} / "
                       f"{base.secondary_sequence}): the log itself was not written completely")
        return log
    if log.format == "new":
        _scan_entries(log)
    else:
        _scan_dirty_vector(log)
    return log


def _scan_entries(log: LogFile) -> None:
    data, size = log.data, log.size
    pos = LOG_BASE_BLOCK_SIZE
    while pos + 40 <= size:
        sig, esize, flags, seq, hb, count, h1, h2 = _S_HVLE.unpack_from(data, pos)
        if sig != b"HvLE":
            break                                   # end of entries (zeros or remnants)
        e = LogEntry(log.path, pos, esize, flags, seq, hb, [], h1, h2)
        log.entries.append(e)
        if esize < 512 or esize % 512 or pos + esize > size:
            e.problem = (f"entry size 0x{esize:x} is invalid" if esize < 512 or esize % 512 else
                         f"entry of 0x{esize:x} bytes is truncated by the end of the file")
            break                                   # the next entry cannot be located
        pos += esize
        if hb == 0 or hb % HBIN_ALIGN:
            e.problem = f"hive bins data size 0x{hb:x} is not a positive multiple of 4096"
            continue
        if count == 0 or 40 + 8 * count > esize:
            e.problem = f"dirty pages count {count} does not fit the entry"
            continue
        refs = struct.unpack_from(f"<{2 * count}I", data, e.offset + 40)
        total = 0
        for i in range(count):
            off, psize = refs[2 * i], refs[2 * i + 1]
            if psize == 0 or off + psize > hb:
                e.problem = (f"dirty page {i} (offset 0x{off:x}, 0x{psize:x} bytes) lies outside the "
                             f"hive bins data (0x{hb:x} bytes)")
                break
            e.pages.append((off, psize))
            total += psize
        if e.problem is None and 40 + 8 * count + total > esize:
            e.problem = "dirty pages overrun the entry"


def _scan_dirty_vector(log: LogFile) -> None:
    data, size, hb = log.data, log.size, log.base.hbins_size
    if hb == 0 or hb % HBIN_ALIGN:
        log.problem = f"hive bins data size 0x{hb:x} is not a positive multiple of 4096"
        return
    nbytes = hb // 4096                               # hb / 512 bits
    if size < LOG_BASE_BLOCK_SIZE + 4 + nbytes or bytes(data[512:516]) != b"DIRT":
        log.problem = "no 'DIRT' dirty vector at 0x200"
        return
    bitmap = bytes(data[516:516 + nbytes])
    pages = []
    for i, byte in enumerate(bitmap):
        if byte:
            for bit in range(8):
                if byte >> bit & 1:
                    pages.append(i * 8 + bit)
    log.dirty_pages = pages
    log.pages_offset = (LOG_BASE_BLOCK_SIZE + 4 + nbytes + 511) // 512 * 512


def find_logs(path: Union[str, os.PathLike]) -> List[str]:
    """The transaction logs next to a hive: ``path`` + ``.LOG``, ``.LOG1``,
    ``.LOG2``, matched case-insensitively (Windows writes ``SYSTEM.LOG1``
    but copies often come as ``system.log1``), in that order."""
    path = os.fspath(path)
    directory, name = os.path.split(path)
    try:
        listing = os.listdir(directory or ".")
    except OSError:
        return []
    wanted = {(name + s).lower(): i for i, s in enumerate(_LOG_SUFFIXES)}
    found = []
    for entry in listing:
        rank = wanted.get(entry.lower())
        if rank is not None:
            full = os.path.join(directory, entry)
            if os.path.isfile(full):
                found.append((rank, entry, full))
    return [full for _, _, full in sorted(found)]


# --------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------

@dataclass
class LogReport:
    """What replay made of one log file."""
    path: str
    format: str                       # "new", "old", "empty", "invalid"
    sequence: Optional[int] = None    # its base block's sequence number
    entries_found: int = 0            # HvLE entries with a header (new format)
    entries_applied: int = 0
    pages_applied: int = 0
    first_sequence: Optional[int] = None
    last_sequence: Optional[int] = None
    problem: Optional[str] = None     # why the whole file was unusable


@dataclass
class RecoveryReport:
    """What happened when a hive was opened with its logs.

    ``dirty``/``sequence``/``checksum_ok`` describe the primary file as it is
    on disk; ``applied`` says whether anything from the logs was replayed;
    ``stop_reason`` why replay stopped (or why it did not happen).
    """
    path: str
    dirty: bool
    sequence: Tuple[int, int]
    checksum_ok: bool
    dirty_reasons: List[str] = field(default_factory=list)
    logs: List[LogReport] = field(default_factory=list)
    format: Optional[str] = None      # format of the logs replayed: "new" or "old"
    applied: bool = False
    entries_applied: int = 0
    pages_applied: int = 0
    last_sequence: Optional[int] = None
    stop_reason: str = ""
    hbins_size_before: int = 0
    hbins_size_after: int = 0
    base_block_from_log: bool = False
    newer_than_clean: bool = False    # entries were replayed onto a clean hive (mode="forensic")
    warnings: List[str] = field(default_factory=list)

    @property
    def logs_used(self) -> List[str]:
        return [lg.path for lg in self.logs if lg.entries_applied or lg.pages_applied]

    @property
    def stale(self) -> bool:
        """True when the hive is dirty and nothing could be replayed: what
        you read may miss the newest changes."""
        return self.dirty and not self.applied

    @property
    def image_size(self) -> int:
        """Size of the replayed hive file (base block + hive bins data)."""
        return BASE_BLOCK_SIZE + self.hbins_size_after

    def summary(self) -> str:
        """One line for humans (used by ``regfast info``)."""
        if not self.logs:
            found = "none found"
        else:
            found = ", ".join(os.path.basename(lg.path) + (f" ({lg.problem})" if lg.problem and
                                                         lg.format in ("empty", "invalid") else "")
                              for lg in self.logs)
        if self.applied:
            what = (f"{self.entries_applied} entr{'y' if self.entries_applied == 1 else 'ies'} applied "
                    f"up to sequence {self.last_sequence}"
                    if self.format == "new" else f"{self.pages_applied} dirty pages applied")
            return f"{found}; replayed ({self.format} format): {what}; stopped: {self.stop_reason}"
        return f"{found}; not applied: {self.stop_reason}"


# --------------------------------------------------------------------------
# Replay
# --------------------------------------------------------------------------

class _Primary:
    def __init__(self, path: str):
        self.path = path
        with open_regular(path) as f:
            self.size = os.fstat(f.fileno()).st_size
            self.head = f.read(BASE_BLOCK_SIZE + 32)
        self.base = BaseBlock.parse(self.head)

    def copy_on_write(self, need: int):
        """A private, writable image of the primary file of at least `need`
        bytes: a MAP_PRIVATE mapping when the file is large enough, else a
        bytearray (the hive grew through the log)."""
        if self.size >= need:
            with open_regular(self.path) as f:
                return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        buf = bytearray(need)
        with open_regular(self.path) as f:
            f.readinto(memoryview(buf)[:self.size])
        return buf


def _fix_base_block(buf, *, template: Optional[bytes], sequence: int, hbins_size: int,
                    flags: Optional[int]) -> None:
    if template is not None:
        # the primary's base block was unusable: take the log's (its first
        # 512 bytes are all a log keeps), the rest of the block zeroed
        buf[0:BASE_BLOCK_SIZE] = bytes(template[:LOG_BASE_BLOCK_SIZE]).ljust(BASE_BLOCK_SIZE, b"\0")
    struct.pack_into("<II", buf, 4, sequence, sequence)
    struct.pack_into("<I", buf, 28, FILE_TYPE_PRIMARY)
    struct.pack_into("<I", buf, 40, hbins_size)
    if flags is not None:
        struct.pack_into("<I", buf, 144, flags)
    struct.pack_into("<I", buf, 508, base_block_checksum(buf))


def _entry_hash_problem(log: LogFile, e: LogEntry) -> Optional[str]:
    with memoryview(log.data) as mv:
        if marvin32(mv[e.offset:e.offset + 32]) != e.hash2:
            return "hash-2 (entry header) mismatch"
        if marvin32(mv[e.offset + 40:e.offset + e.size]) != e.hash1:
            return "hash-1 (page data) mismatch"
    return None


def _where(e: LogEntry) -> str:
    return f"{os.path.basename(e.log)} @0x{e.offset:x}, sequence {e.sequence}"


def _replay_new(prim: _Primary, logs: List[LogFile], reps: dict, report: RecoveryReport, mode: str):
    """Returns (buffer, final hbins size) or None."""
    usable = [lg for lg in logs if lg.format == "new" and lg.problem is None]
    if not usable:
        return None
    base = prim.base
    template = None
    if base is not None and base.checksum_ok:
        p, s = base.primary_sequence, base.secondary_sequence
        if p != s:
            lowest, highest = s, p           # entries S..P continue the primary
        elif mode == "forensic":
            lowest = highest = (p + 1) & _M32  # only entries newer than a clean hive
        else:
            return None
    else:
        # Base block unusable: start from the newest log's base block (what
        # Windows does: that log began after the primary was last written whole).
        newest = usable[0]
        for lg in usable[1:]:
            if _seq_delta(lg.base.primary_sequence, newest.base.primary_sequence) < 0x80000000:
                newest = lg
        template = bytes(newest.data[:LOG_BASE_BLOCK_SIZE])
        lowest = highest = newest.base.primary_sequence
        report.base_block_from_log = True

    by_seq: dict = {}
    for lg in usable:
        for e in lg.entries:
            by_seq.setdefault(e.sequence, []).append((lg, e))

    # the first entry: the lowest sequence number in [lowest, highest]
    start = None
    span = _seq_delta(highest, lowest)
    for seq in by_seq:
        d = _seq_delta(seq, lowest)
        if d <= span and (start is None or d < _seq_delta(start, lowest)):
            start = seq
    if start is None:
        newer = [q for q in by_seq if _seq_ge(q, lowest)]
        if not newer and base is not None and base.checksum_ok and not base.dirty:
            report.stop_reason = "the hive is clean and no log entry is newer than it"
        elif newer:
            first = min(newer, key=lambda q: _seq_delta(q, lowest))
            report.stop_reason = (f"no log entry continues the primary file (it needs sequence "
                                  f"{lowest}{'..' + str(highest) if highest != lowest else ''}; "
                                  f"the logs resume at {first})")
        else:
            report.stop_reason = "the log entries are all older than the primary file"
        return None

    chain: List[Tuple[LogFile, LogEntry]] = []
    seq = start
    while True:
        cands = by_seq.get(seq)
        if not cands:
            report.stop_reason = f"no log entry with sequence {seq}: end of the logs"
            break
        ok = None
        problems = []
        for lg, e in cands:
            why = e.problem or _entry_hash_problem(lg, e)
            if why is None:
                ok = (lg, e)
                break
            problems.append(f"{_where(e)}: {why}")
        if ok is None:
            report.stop_reason = "invalid log entry: " + "; ".join(problems)
            later = sum(1 for q in by_seq if 0 < _seq_delta(q, seq) < 0x80000000)
            if later:
                report.warnings.append(f"{later} later log entries ignored after the invalid one "
                                       f"(sequence {seq})")
            break
        chain.append(ok)
        seq = (seq + 1) & _M32

    if not chain:
        return None

    need = BASE_BLOCK_SIZE + max(e.hbins_size for _, e in chain)
    if base is not None and base.checksum_ok:
        need = max(need, BASE_BLOCK_SIZE + base.hbins_size)
    buf = prim.copy_on_write(need)
    flags = base.flags if base is not None and base.checksum_ok else struct.unpack_from("<I", template, 144)[0]
    for lg, e in chain:
        data = lg.data
        src = e.data_offset
        for off, psize in e.pages:
            dst = BASE_BLOCK_SIZE + off
            buf[dst:dst + psize] = data[src:src + psize]
            src += psize
        flags = (flags | 1) if e.flags & 1 else (flags & ~1 & _M32)
        r = reps[lg.path]
        r.entries_applied += 1
        r.pages_applied += len(e.pages)
        if r.first_sequence is None:
            r.first_sequence = e.sequence
        r.last_sequence = e.sequence
        report.pages_applied += len(e.pages)
    last = chain[-1][1]
    final_hb = last.hbins_size
    _fix_base_block(buf, template=template, sequence=last.sequence, hbins_size=final_hb, flags=flags)
    report.format = "new"
    report.entries_applied = len(chain)
    report.last_sequence = last.sequence
    report.newer_than_clean = base is not None and base.checksum_ok and not base.dirty
    return buf, final_hb


def _replay_old(prim: _Primary, logs: List[LogFile], reps: dict, report: RecoveryReport):
    cands = [lg for lg in logs if lg.format == "old" and lg.problem is None]
    if not cands:
        return None
    base = prim.base
    if base is not None and base.checksum_ok:
        if not base.dirty:
            report.stop_reason = "the hive is clean: old-format logs are not applied"
            return None
        primary_ts = base.last_write
    else:
        # the first hive bin's timestamp backs up the base block's
        primary_ts = struct.unpack_from("<Q", prim.head, BASE_BLOCK_SIZE + 20)[0] \
            if len(prim.head) >= BASE_BLOCK_SIZE + 28 else None
    applicable = [lg for lg in cands if lg.base.last_write == primary_ts]
    for lg in cands:
        if lg not in applicable:
            reps[lg.path].problem = ("its last-written timestamp does not match the primary file's: "
                                     "it belongs to another write")
    if not applicable:
        report.stop_reason = "no old-format log matches the primary file's last-written timestamp"
        return None
    log = applicable[0]
    for lg in applicable[1:]:
        if _seq_ge(lg.base.primary_sequence, log.base.primary_sequence):
            log = lg
    hb = log.base.hbins_size
    pages = log.dirty_pages
    end = log.pages_offset + 512 * len(pages)
    if end > log.size:
        report.stop_reason = (f"{os.path.basename(log.path)}: {len(pages)} dirty pages announced, the "
                              f"file ends after {max(0, (log.size - log.pages_offset) // 512)}: recovery aborted")
        return None
    need = BASE_BLOCK_SIZE + hb
    if base is not None and base.checksum_ok:
        need = max(need, BASE_BLOCK_SIZE + base.hbins_size)
    buf = prim.copy_on_write(need)
    data = log.data
    src = log.pages_offset
    dirty = set(pages)
    for page in pages:
        dst = BASE_BLOCK_SIZE + 512 * page
        buf[dst:dst + 512] = data[src:src + 512]
        src += 512
    # Every hive bin holding a dirty page must check out (signature, offset),
    # or recovery aborts. Past a damaged bin no later bin can be located: if
    # dirty pages lie there, they cannot be verified either.
    off = 0
    while off < hb:
        at = BASE_BLOCK_SIZE + off
        sig = bytes(buf[at:at + 4])
        boff, bsize = struct.unpack_from("<II", buf, at + 4)
        if sig == b"hbin" and boff == off and bsize >= HBIN_ALIGN and bsize % HBIN_ALIGN == 0:
            off += bsize
            continue
        if any(p >= off // 512 for p in dirty):
            if isinstance(buf, mmap.mmap):
                buf.close()
            report.stop_reason = (f"{os.path.basename(log.path)}: the hive bin at 0x{off:x} is invalid "
                                  "after applying the dirty pages: recovery aborted")
            return None
        break
    template = None
    if base is None or not base.checksum_ok:
        template = bytes(data[:LOG_BASE_BLOCK_SIZE])
        report.base_block_from_log = True
        seq = log.base.primary_sequence
    else:
        seq = base.primary_sequence
    _fix_base_block(buf, template=template, sequence=seq, hbins_size=hb, flags=None)
    r = reps[log.path]
    r.pages_applied = len(pages)
    report.format = "old"
    report.pages_applied = len(pages)
    report.last_sequence = seq
    report.stop_reason = "all dirty pages applied"
    return buf, hb


_MODES = ("forensic", "windows")


def replay(path: Union[str, os.PathLike], logs: Union[str, Sequence, None] = "auto", *,
           mode: str = "forensic"):
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
        that are newer than a *clean* primary file (a crash after the log was
        written but before the primary was touched leaves such entries;
        Windows ignores them). ``"windows"``: replay only dirty hives.

    Returns
    -------
    (buffer or None, RecoveryReport)
        The buffer (a copy-on-write mmap or a bytearray, holding the
        replayed hive from offset 0; its hive bins data size is
        ``report.hbins_size_after``) — None when nothing was replayed.
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    path = os.fspath(path)
    prim = _Primary(path)
    base = prim.base
    report = RecoveryReport(path, dirty=base is None or base.dirty,
                            sequence=base.sequence if base else (0, 0),
                            checksum_ok=bool(base and base.checksum_ok))
    if base is not None:
        if not base.checksum_ok:
            report.dirty_reasons.append("base block checksum mismatch")
        if base.primary_sequence != base.secondary_sequence:
            report.dirty_reasons.append(f"sequence numbers differ ({base.primary_sequence} / "
                                        f"{base.secondary_sequence})")
        report.hbins_size_before = report.hbins_size_after = base.hbins_size
    else:
        report.dirty_reasons.append("no usable base block")
    if logs is None:
        report.stop_reason = "log replay not requested (logs=None)"
        return None, report
    if base is None:
        report.stop_reason = "the primary file has no 'regf' base block"
        return None, report
    if isinstance(logs, str) and logs == "auto":
        paths = find_logs(path)
    elif isinstance(logs, (str, bytes, os.PathLike)):
        paths = [os.fsdecode(logs)]
    else:
        paths = list(dict.fromkeys(os.fsdecode(p) for p in logs))
    if not paths:
        report.stop_reason = "no transaction logs found" if logs == "auto" else "no logs given"
        return None, report

    opened: List[LogFile] = []
    try:
        for p in paths:
            lg = read_log(p)
            opened.append(lg)
            report.logs.append(LogReport(p, lg.format, lg.base.primary_sequence if lg.base else None,
                                         len(lg.entries), problem=lg.problem))
        reps = {r.path: r for r in report.logs}
        if base is not None and base.checksum_ok and not base.dirty and mode == "windows":
            report.stop_reason = "the hive is clean: logs not applied"
            return None, report
        result = _replay_new(prim, opened, reps, report, mode)
        if result is None and report.format is None:
            new_reason = report.stop_reason
            result = _replay_old(prim, opened, reps, report)
            if result is None and new_reason and not any(lg.format == "old" and lg.problem is None
                                                          for lg in opened):
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

_REPORTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def recovery_of(hive) -> Optional[RecoveryReport]:
    """The RecoveryReport of a hive opened by ``open_hive(..., logs=...)`` or
    :func:`recover` (None for hives opened otherwise)."""
    try:
        return _REPORTS.get(hive)
    except TypeError:
        return None


def _warn_stale(report: RecoveryReport, stacklevel: int) -> None:
    if report.stale:
        warnings.warn(f"{report.path}: the hive is dirty ({', '.join(report.dirty_reasons)}) and its "
                      f"transaction logs were not replayed ({report.stop_reason}): its newest changes "
                      "may be missing", DirtyHiveWarning, stacklevel=stacklevel)
    elif report.applied and report.stop_reason.startswith("invalid log entry"):
        warnings.warn(f"{report.path}: log replay stopped at an invalid entry ({report.stop_reason})",
                      DirtyHiveWarning, stacklevel=stacklevel)


def recover(path: Union[str, os.PathLike], logs: Union[str, Sequence, None] = "auto", *,
            lenient: bool = False, mode: str = "forensic", errors: str = "strict", copy: bool = False):
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
    from regfast._native import Hive

    try:
        buf, report = replay(path, logs, mode=mode)
    except OSError as e:
        # the primary itself cannot be read: let the reader raise its own
        # error (FileNotFoundError with winerror 2, PermissionError, ...)
        hive = Hive.from_file(path, lenient=lenient, errors=errors, copy=copy)
        if errors != "tolerant":
            hive.close()
            raise
        i = hive.info()
        report = RecoveryReport(os.fspath(path), dirty=i.dirty or not i.checksum_ok, sequence=i.sequence,
                                checksum_ok=i.checksum_ok, hbins_size_before=i.hbins_size,
                                hbins_size_after=i.hbins_size,
                                stop_reason=f"logs not replayed: the primary is damaged ({e.strerror or e})")
        _REPORTS[hive] = report
        return hive, report
    if buf is None:
        hive = Hive.from_file(path, lenient=lenient, errors=errors, copy=copy)
    else:
        # copy: the replayed image is a copy-on-write mapping of the primary
        # whose untouched pages still read the file; make it all private
        hive = Hive.from_buffer(bytearray(buf) if copy and not isinstance(buf, bytearray) else buf,
                                lenient=lenient, errors=errors)
    _REPORTS[hive] = report
    return hive, report


def open_with_logs(path, logs, lenient: bool = False, *, errors: str = "strict", stacklevel: int = 1,
                   copy: bool = False):
    """``open_hive``'s implementation: recover() plus a DirtyHiveWarning when
    a dirty hive is read without its logged changes (`stacklevel`: frames
    above this function's caller to blame, as for warnings.warn)."""
    from regfast._native import Hive

    if logs is None:
        hive = Hive.from_file(path, lenient=lenient, errors=errors, copy=copy)
        i = hive.info()
        report = RecoveryReport(os.fspath(path), dirty=i.dirty or not i.checksum_ok, sequence=i.sequence,
                                checksum_ok=i.checksum_ok, hbins_size_before=i.hbins_size,
                                hbins_size_after=i.hbins_size,
                                stop_reason="log replay not requested (logs=None)")
        if not i.checksum_ok:
            report.dirty_reasons.append("base block checksum mismatch")
        if i.dirty:
            report.dirty_reasons.append(f"sequence numbers differ ({i.sequence[0]} / {i.sequence[1]})")
        _REPORTS[hive] = report
    else:
        hive, report = recover(path, logs, lenient=lenient, errors=errors, copy=copy)
    _warn_stale(report, stacklevel + 2)
    return hive
