"""Transaction-log files as they are on disk: parsing, bounds, no policy.

The two formats (msuhanov/regf, "Windows registry file format
specification", "Format of transaction log files"):

* **old** (XP to 8.0, file type 1; 2 up to Windows 2000): a 512-byte copy of
  the base block, a ``DIRT`` dirty vector at 0x200 (one bit per 512-byte page
  of the hive bins data) and the dirty pages, back to back from the next
  sector.
* **new** (Windows 8.1+, file type 6): the 512-byte base block copy, then
  ``HvLE`` log entries from 0x200, each with a sequence number, the hive bins
  data size at that time, page references, the pages and two Marvin32 hashes.

This module reads a log into a :class:`LogFile` and checks everything that
can be checked without the primary file: the log's own base block (a log
whose base block is invalid is refused: spec, old format note 2, "valid when
it has an expected base block ... and its primary sequence number is equal
to its secondary sequence number"; yarp's ``OldLogFile``/``NewLogFile`` raise
"Dirty state"), and every size and offset against the file itself, so that
nothing read from a log can make a caller allocate more than the log holds.
Which entries are applied, and in what order, is :mod:`regfast.hive.logs`'s job.
"""

from __future__ import annotations

import array
import mmap
import os
import re
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from regfast import _native
from regfast._files import open_regular

__all__ = [
    "MARVIN32_SEED",
    "BASE_BLOCK_SIZE",
    "LOG_BASE_BLOCK_SIZE",
    "HBIN_ALIGN",
    "MAX_HBINS_SIZE",
    "BaseBlock",
    "LogEntry",
    "LogFile",
    "marvin32",
    "base_block_checksum",
    "find_logs",
    "read_log",
    "seq_delta",
    "seq_ge",
]

#: Seed of the Marvin32 hashes of HvLE log entries (the spec's 14219357686671994754).
MARVIN32_SEED = 0x82EF4D887A4E55C5

BASE_BLOCK_SIZE = 4096
LOG_BASE_BLOCK_SIZE = 512
HBIN_ALIGN = 4096
#: The largest hive bins data size a base block or log entry can state: a
#: 32-bit field that must be a multiple of 4096.
MAX_HBINS_SIZE = 0xFFFFF000
FILE_TYPE_PRIMARY = 0
FILE_TYPE_LOG_OLD = 1
FILE_TYPE_LOG_VERYOLD = 2
FILE_TYPE_LOG_NEW = 6
_M32 = 0xFFFFFFFF
_LOG_SUFFIXES = (".LOG", ".LOG1", ".LOG2")
HVLE_HEADER = 40

#: What the readers and hashes here take: any bytes-like object, an mmap included.
BytesLike = bytes | bytearray | memoryview | mmap.mmap

_S_HVLE = struct.Struct("<4sIIIIIQQ")  # signature .. hash-2 (40 bytes)
_NONZERO = re.compile(rb"[^\x00]")


# --------------------------------------------------------------------------
# Marvin32, the base block checksum, sequence arithmetic
# --------------------------------------------------------------------------


def _marvin32_py(data: BytesLike, seed: int) -> int:
    lo = seed & _M32
    hi = (seed >> 32) & _M32
    n = len(data)
    nw = n >> 2
    words = array.array("I")
    if words.itemsize != 4:  # pragma: no cover - every CPython platform has a 4-byte "I"
        words = array.array("L")
    mv = memoryview(data).cast("B")
    words.frombytes(mv[: nw * 4])
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
    for b in reversed(bytes(mv[nw * 4 :])):
        final = (final << 8) | b
    for v in (final, 0):
        lo = (lo + v) & 0xFFFFFFFF
        hi ^= lo
        lo = ((lo * 0x100000001 >> 12) + hi) & 0xFFFFFFFF
        hi = (hi * 0x100000001 >> 23) & 0xFFFFFFFF ^ lo
        lo = ((lo * 0x100000001 >> 5) + hi) & 0xFFFFFFFF
        hi = (hi * 0x100000001 >> 13) & 0xFFFFFFFF
    return (hi << 32) | lo


_NATIVE_MARVIN: Callable[[BytesLike, int], int] | None = getattr(_native, "marvin32", None)


def marvin32(data: BytesLike, seed: int = MARVIN32_SEED) -> int:
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


_FOLDS = tuple((w, (1 << w) - 1) for w in (2048, 1024, 512, 256, 128, 64, 32))


def base_block_checksum(block: BytesLike) -> int:
    """XOR-32 of the first 508 bytes; 0 becomes 1 and 0xFFFFFFFF 0xFFFFFFFE
    (as Windows and yarp's ``calculate_checksum`` do)."""
    # The 127 little-endian words are the 32-bit digits of one integer:
    # folding its halves onto each other XORs them in a few C-speed steps
    # (a Python loop over the words was most of a small hive's open).
    if len(block) < 508:
        raise struct.error(f"a base block has 512 bytes, not {len(block)}")
    c = int.from_bytes(block[:508], "little")
    for width, mask in _FOLDS:
        c = (c >> width) ^ (c & mask)
    if c == 0:
        return 1
    if c == _M32:
        return 0xFFFFFFFE
    return c


def seq_delta(a: int, b: int) -> int:
    """How far sequence number `a` is after `b`, modulo 2**32."""
    return (a - b) & _M32


def seq_ge(a: int, b: int) -> bool:
    """`a` is `b` or later, sequence numbers wrapping at 2**32 (yarp's
    ``is_starting_log`` compares the same way: a delta over 0x7FFFFFFF is
    taken as a wrap-around)."""
    return seq_delta(a, b) < 0x80000000


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
    def sequence(self) -> tuple[int, int]:
        return self.primary_sequence, self.secondary_sequence

    @property
    def dirty(self) -> bool:
        """Dirty by the spec ("Dirty state of a hive"): wrong checksum, or
        unequal sequence numbers."""
        return not self.checksum_ok or self.primary_sequence != self.secondary_sequence

    @classmethod
    def parse(cls, data: BytesLike) -> BaseBlock | None:
        """None unless `data` starts with a ``regf`` block of >= 512 bytes."""
        if len(data) < LOG_BASE_BLOCK_SIZE or bytes(data[:4]) != b"regf":
            return None
        p, s, ts, major, minor, ftype, _fmt, root, hb = struct.unpack_from("<IIQIIIIII", data, 4)
        (flags,) = struct.unpack_from("<I", data, 144)
        (stored,) = struct.unpack_from("<I", data, 508)
        return cls(
            p, s, ts, major, minor, ftype, root, hb, flags, stored, stored == base_block_checksum(data)
        )


# --------------------------------------------------------------------------
# Log files
# --------------------------------------------------------------------------


@dataclass(slots=True)
class LogEntry:
    """One HvLE entry of a new-format log whose header could be read. Its
    page references were checked against the entry and its hive bins data
    size (``problem`` says what is wrong otherwise); hashes are checked by
    the replay, which only hashes the entries it may apply."""

    log: str
    offset: int  # of the entry in the log file
    size: int
    flags: int
    sequence: int
    hbins_size: int
    count: int  # dirty pages
    hash1: int
    hash2: int
    page_bytes: int = 0  # sum of the pages' sizes
    problem: str | None = None  # a structural defect: the entry is unusable

    @property
    def data_offset(self) -> int:
        """Where the first page's bytes are in the log file."""
        return self.offset + HVLE_HEADER + 8 * self.count

    def pages(self, data: BytesLike) -> Iterator[tuple[int, int]]:
        """(offset in the hive bins data, size) of each page, read from the
        log's bytes `data` (checked when the log was read)."""
        # a copy of the references (8 bytes a page): no view of the mapping
        # outlives the call, so the log can be closed at any time
        return struct.iter_unpack("<II", data[self.offset + HVLE_HEADER : self.data_offset])


@dataclass
class LogFile:
    """A transaction log file, parsed: base block, entries or dirty pages."""

    path: str
    size: int
    format: str  # "new", "old", "empty" or "invalid"
    base: BaseBlock | None = None
    problem: str | None = None  # why it cannot be used at all
    # new format: the entries that follow each other from the base block's
    # sequence number, in file order (the last one may carry a problem)
    entries: list[LogEntry] = field(default_factory=list)
    end: str = ""  # new format: why the run of entries ends there
    dirty_pages: list[int] = field(default_factory=list)  # old format: 512-byte page numbers
    pages_offset: int = 0  # old format: first dirty page in the file
    data: Any = None  # the file's bytes (an mmap or bytes; None once closed)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def header(self) -> BaseBlock:
        """The base block, which every log of format "new" or "old" has
        (read_log sets the format only after parsing it)."""
        if self.base is None:
            raise ValueError(f"{self.path}: the log has no base block ({self.problem})")
        return self.base

    def close(self) -> None:
        d, self.data = self.data, None
        if isinstance(d, mmap.mmap):
            d.close()


def _map_file(path: str) -> tuple[bytes | mmap.mmap, int]:
    with open_regular(path) as f:  # non-blocking, regular files only
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return b"", 0
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), size


def read_log(path: str | os.PathLike[str]) -> LogFile:
    """Parses a log file's structure (base block, entry headers or dirty
    vector) without checking entry hashes. The file stays mapped: call
    ``close()`` on the result."""
    path = os.fspath(path)
    try:
        data, size = _map_file(path)
    except (OSError, ValueError) as e:
        return LogFile(path, 0, "invalid", problem=f"cannot read it: {getattr(e, 'strerror', None) or e}")
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
        log.problem = f"base block file type {base.file_type} (at 0x1c) is not a transaction log"
        return log
    # spec, old format note 2 (new format: "in the same way"); yarp refuses
    # such a log ("Dirty state"): its own base block must be valid.
    if not base.checksum_ok:
        log.problem = (
            f"log base block checksum mismatch (stored 0x{base.checksum:08x} at 0x1fc, "
            f"computed 0x{base_block_checksum(data):08x}): the log is refused"
        )
        return log
    if base.primary_sequence != base.secondary_sequence:
        log.problem = (
            f"log base block sequence numbers differ ({base.primary_sequence} / "
            f"{base.secondary_sequence}): the log itself was not written completely"
        )
        return log
    if log.format == "new":
        _scan_entries(log)
    else:
        _scan_dirty_vector(log)
    return log


def _entry_problem(e: LogEntry, data: BytesLike, pos: int) -> str | None:
    """What makes an entry whose size is sound unusable, or None; fills
    ``e.page_bytes``. Everything is checked against the entry itself, so
    replaying it never reads outside it."""
    hb = e.hbins_size
    # spec, new format note 8 / yarp's LogEntry: a hive bins data size that
    # is not a multiple of 4096 (yarp: or less than 4096) stops recovery
    if hb < HBIN_ALIGN or hb % HBIN_ALIGN:
        return f"hive bins data size 0x{hb:x} (at 0x{pos + 16:x}) is not a positive multiple of 4096"
    # yarp's LogEntry: "Invalid dirty pages count" for 0
    if e.count == 0 or HVLE_HEADER + 8 * e.count > e.size:
        return f"dirty pages count {e.count} (at 0x{pos + 20:x}) does not fit the entry"
    total = 0
    room = e.size - HVLE_HEADER - 8 * e.count
    refs = data[pos + HVLE_HEADER : pos + HVLE_HEADER + 8 * e.count]
    for i, (off, psize) in enumerate(struct.iter_unpack("<II", refs)):
        if psize == 0 or off + psize > hb:
            return (
                f"dirty page {i} (reference at 0x{pos + HVLE_HEADER + 8 * i:x}: offset 0x{off:x}, "
                f"0x{psize:x} bytes) lies outside the hive bins data (0x{hb:x} bytes)"
            )
        total += psize
        if total > room:
            return f"dirty pages overrun the entry (page {i} ends 0x{total - room:x} bytes past it)"
    e.page_bytes = total
    return None


def _scan_entries(log: LogFile) -> None:
    """The run of entries that follow each other from the base block's
    sequence number, in file order. yarp's ``NewLogFile.log_entries`` reads
    them the same way: the first entry carries the base block's sequence
    number, each next one the previous plus one; anything else ends the run
    ("We could read garbage at the end of the file, this is normal"):
    older, already applied entries stay behind the newest ones (spec, new
    format note 4)."""
    data, size = log.data, log.size
    expected = log.header.primary_sequence
    pos = LOG_BASE_BLOCK_SIZE
    while True:
        if pos + HVLE_HEADER > size:
            log.end = f"end of the file at 0x{size:x}"
            return
        sig, esize, flags, seq, hb, count, h1, h2 = _S_HVLE.unpack_from(data, pos)
        if sig != b"HvLE":
            log.end = f"no log entry at 0x{pos:x}"
            return
        if seq != expected:
            log.end = (
                f"the entry at 0x{pos:x} holds sequence {seq}, not {expected}: "
                "an older entry (a remnant) or none"
            )
            return
        e = LogEntry(log.path, pos, esize, flags, seq, hb, count, h1, h2)
        log.entries.append(e)
        # yarp's LogEntry: "Invalid size" unless a positive multiple of 512
        if esize < 512 or esize % 512:
            e.problem = f"entry size 0x{esize:x} (at 0x{pos + 4:x}) is not a positive multiple of 512"
        elif esize > size - pos:
            e.problem = (
                f"entry of 0x{esize:x} bytes is truncated by the end of the file "
                f"(0x{size - pos:x} bytes left)"
            )
        else:
            e.problem = _entry_problem(e, data, pos)
        if e.problem is not None and (esize < 512 or esize % 512 or esize > size - pos):
            log.end = f"the entry at 0x{pos:x} cannot be measured"
            return
        pos += esize
        expected = (expected + 1) & _M32


def _scan_dirty_vector(log: LogFile) -> None:
    data, size, hb = log.data, log.size, log.header.hbins_size
    if hb < HBIN_ALIGN or hb % HBIN_ALIGN:
        log.problem = f"hive bins data size 0x{hb:x} (at 0x28) is not a positive multiple of 4096"
        return
    nbytes = hb // 4096  # hb / 512 bits
    if size < LOG_BASE_BLOCK_SIZE + 4 + nbytes:
        log.problem = (
            f"the dirty vector of a 0x{hb:x}-byte hive needs 0x{4 + nbytes:x} bytes at 0x200; "
            f"the file ends at 0x{size:x}"
        )
        return
    if bytes(data[512:516]) != b"DIRT":
        log.problem = "no 'DIRT' dirty vector at 0x200"
        return
    bitmap = bytes(data[516 : 516 + nbytes])
    log.pages_offset = (LOG_BASE_BLOCK_SIZE + 4 + nbytes + 511) // 512 * 512
    # Count before listing: a vector of 0xFF bytes in a short file would
    # otherwise become a list of 8 page numbers per byte of the log.
    announced = int.from_bytes(bitmap, "little").bit_count()
    held = max(0, size - log.pages_offset) // 512
    if announced > held:
        log.problem = (
            f"the dirty vector marks {announced} pages; the file holds {held} from 0x{log.pages_offset:x}"
        )
        return
    pages = []
    for m in _NONZERO.finditer(bitmap):  # skips the zero bytes at C speed
        i, byte = m.start(), bitmap[m.start()]
        for bit in range(8):
            if byte >> bit & 1:
                pages.append(i * 8 + bit)
    log.dirty_pages = pages


# Directories' log names, for find_logs: {directory: (st_dev, st_ino,
# st_mtime_ns, {lowercased name: [names as stored]})}, log-like names only.
_DIR_INDEX: dict[str, tuple[int, int, int, dict[str, list[str]]]] = {}
_DIR_INDEX_MAX = 256
_DIR_INDEX_LOCK = threading.Lock()
# A listing is reused only once its directory's mtime is this far in the past
# (git's "racily clean" rule): a file created in the same clock tick as the
# listing would not move the mtime, and its log would go unseen.
_DIR_SETTLED_NS = 2_000_000_000
_LOG_ENDINGS = tuple(s.lower() for s in _LOG_SUFFIXES)


def _log_names(directory: str) -> dict[str, list[str]] | None:
    """{lowercased name: names as stored} of the log-like files (.log,
    .log1, .log2, any case) in `directory`; None if it cannot be listed.

    A listing is kept while the directory's mtime (and identity) stays what
    it was: a file added, removed or renamed there moves it. Opening each of
    the N hives of one directory listed it N times before: 2 ms an open in a
    directory of 5,000 hives, quadratic over a fleet; now one stat."""
    try:
        st = os.stat(directory)
    except OSError:
        return None
    hit = _DIR_INDEX.get(directory)
    if hit is not None and hit[:3] == (st.st_dev, st.st_ino, st.st_mtime_ns):
        return hit[3]
    try:
        listing = os.listdir(directory)
    except OSError:
        return None
    names: dict[str, list[str]] = {}
    for entry in listing:
        low = entry.lower()
        if low.endswith(_LOG_ENDINGS):
            names.setdefault(low, []).append(entry)
    if time.time_ns() - st.st_mtime_ns > _DIR_SETTLED_NS:
        with _DIR_INDEX_LOCK:  # (threads opening hives of many directories)
            if len(_DIR_INDEX) >= _DIR_INDEX_MAX:
                _DIR_INDEX.pop(next(iter(_DIR_INDEX)))  # the oldest entry
            _DIR_INDEX[directory] = (st.st_dev, st.st_ino, st.st_mtime_ns, names)
    return names


def find_logs(path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> list[str]:
    """The transaction logs next to a hive: ``path`` + ``.LOG``, ``.LOG1``,
    ``.LOG2``, matched case-insensitively (Windows writes ``SYSTEM.LOG1``
    but copies often come as ``system.log1``), in that order. The
    directory's listing is reused while its mtime says nothing changed
    there (see _log_names); whether each log is a file is asked every time."""
    path = os.fsdecode(os.fspath(path))
    directory, name = os.path.split(path)
    names = _log_names(directory or ".")
    if names is None:
        return []
    found = []
    for rank, suffix in enumerate(_LOG_SUFFIXES):
        for entry in names.get((name + suffix).lower(), ()):
            full = os.path.join(directory, entry)
            if os.path.isfile(full):
                found.append((rank, entry, full))
    return [full for _, _, full in sorted(found)]
