"""Writes registry transaction logs: dirty hives for tests and experiments.

Given successive images of a hive — e.g. ``build_hive(tree_v1)``,
``build_hive(tree_v2)``, ... from :mod:`regfast.io.writer`, or page-level
edits of one image — this produces what Windows leaves on disk when it
stops between writing its logs and writing the primary file:

* a primary file holding the *first* image, with dirty sequence numbers
  (primary = secondary + 1, as after a write that started and never
  finished), optionally with some pages of the next image already written
  ("torn");
* new-format logs (``.LOG1``/``.LOG2``, Windows 8.1+): one ``HvLE`` entry per
  later image, holding the 4096-byte pages that changed, with sequence
  numbers counting up from the primary's and both Marvin32 hashes; the
  entries can be spread over the two files in any order;
* or an old-format log (``.LOG``, XP to 8.0): a base block, a ``DIRT``
  bitmap of the changed 512-byte pages and those pages, taking the primary
  from the first image to the last in one step.

Sequence numbers follow the spec ("Sequence number ... will be written both
to a primary sequence number and to a secondary sequence number of a base
block when applying a transaction"): the first image has sequence N (its
base block's), the entry making image i has N + i, and a hive recovered
up to image i has N + i in both fields.

Everything here is plain bytes: nothing is read back through regfast.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from regfast.hive.logs_format import base_block_checksum, marvin32

__all__ = [
    "PAGE_SIZE",
    "changed_pages",
    "log_base_block",
    "encode_entry",
    "new_format_log",
    "old_format_log",
    "entry_offsets",
    "DirtyHive",
    "make_dirty_hive",
    "set_sequence",
    "rehash_entry",
    "reseal_log",
]

PAGE_SIZE = 4096
_BASE = 4096
_M32 = 0xFFFFFFFF


def _hbins_size(image: bytes) -> int:
    (size,) = struct.unpack_from("<I", image, 40)
    return int(size)


def set_sequence(image: bytes | bytearray, primary: int, secondary: int) -> bytearray:
    """A copy of a hive image with new sequence numbers and a fixed checksum."""
    out = bytearray(image)
    struct.pack_into("<II", out, 4, primary & _M32, secondary & _M32)
    struct.pack_into("<I", out, 508, base_block_checksum(out))
    return out


def changed_pages(old: bytes, new: bytes, page_size: int = PAGE_SIZE) -> list[tuple[int, bytes]]:
    """The pages of `new`'s hive bins data that differ from `old`'s, as
    (offset in the hive bins data, bytes). Pages past the end of `old`'s
    hive bins data are all changed (the hive grew)."""
    old_hb = old[_BASE : _BASE + _hbins_size(old)]
    new_hb = new[_BASE : _BASE + _hbins_size(new)]
    out = []
    for off in range(0, len(new_hb), page_size):
        page = new_hb[off : off + page_size]
        if old_hb[off : off + page_size] != page:
            out.append((off, bytes(page)))
    return out


def log_base_block(
    image: bytes, *, sequence: int, file_type: int = 6, last_write: int | None = None
) -> bytes:
    """The 512-byte base block a log starts with: the first sector of the
    hive's base block, with the file type of a log (6 new, 1 old), both
    sequence numbers set and the checksum recomputed."""
    b = bytearray(image[:512])
    struct.pack_into("<II", b, 4, sequence & _M32, sequence & _M32)
    if last_write is not None:
        struct.pack_into("<Q", b, 12, last_write)
    struct.pack_into("<I", b, 28, file_type)
    struct.pack_into("<I", b, 508, base_block_checksum(b))
    return bytes(b)


def encode_entry(
    sequence: int, hbins_size: int, pages: Sequence[tuple[int, bytes]], flags: int = 0, *, hashes: bool = True
) -> bytes:
    """One HvLE log entry (size rounded up to 512 bytes, hashes computed;
    ``hashes=False`` leaves them zero — an invalid entry, quicker to make)."""
    if not pages:
        raise ValueError("a log entry needs at least one dirty page")
    refs = b"".join(struct.pack("<II", off, len(data)) for off, data in pages)
    body = refs + b"".join(data for _, data in pages)
    size = (40 + len(body) + 511) // 512 * 512
    entry = bytearray(size)
    struct.pack_into("<4sIIIII", entry, 0, b"HvLE", size, flags, sequence & _M32, hbins_size, len(pages))
    entry[40 : 40 + len(body)] = body
    if hashes:
        struct.pack_into("<Q", entry, 24, marvin32(memoryview(entry)[40:]))
        struct.pack_into("<Q", entry, 32, marvin32(memoryview(entry)[:32]))
    return bytes(entry)


def new_format_log(
    base_image: bytes, entries: Sequence[bytes], *, sequence: int | None = None, tail: bytes = b""
) -> bytes:
    """A whole new-format log: a base block made from `base_image` (the hive
    as it was when the log was started) with `sequence` (default: the first
    entry's), then the entries back to back, then `tail` (remnants)."""
    if sequence is None:
        sequence = (
            struct.unpack_from("<I", entries[0], 12)[0]
            if entries
            else struct.unpack_from("<I", base_image, 4)[0]
        )
    return log_base_block(base_image, sequence=sequence, file_type=6) + b"".join(entries) + tail


def old_format_log(
    old: bytes, new: bytes, *, sequence: int | None = None, page_size: int = PAGE_SIZE, file_type: int = 1
) -> bytes:
    """An old-format log taking the primary from `old` to `new`: base block
    (`new`'s, with `old`'s last-written timestamp — the one the log is
    matched with), ``DIRT`` + bitmap of 512-byte pages (set in runs of
    `page_size`, as Windows tracks 4 KiB blocks), the dirty pages."""
    hb = _hbins_size(new)
    if sequence is None:
        sequence = struct.unpack_from("<I", old, 4)[0] + 1
    last_write = struct.unpack_from("<Q", old, 12)[0]
    bits = bytearray(hb // 4096)
    pages = []
    new_hb = new[_BASE : _BASE + hb]
    for off, _ in changed_pages(old, new, page_size):
        for sub in range(off, min(off + page_size, hb), 512):
            n = sub // 512
            bits[n // 8] |= 1 << (n % 8)
            pages.append(new_hb[sub : sub + 512])
    head = log_base_block(new, sequence=sequence, file_type=file_type, last_write=last_write)
    vector = b"DIRT" + bytes(bits)
    vector += bytes(-(len(head) + len(vector)) % 512)
    return head + vector + b"".join(pages)


def entry_offsets(log: bytes) -> list[int]:
    """File offsets of the HvLE entries of a new-format log, in file order
    (for tests that damage one)."""
    out = []
    pos = 512
    while pos + 40 <= len(log) and log[pos : pos + 4] == b"HvLE":
        out.append(pos)
        size = struct.unpack_from("<I", log, pos + 4)[0]
        if size < 512:
            break
        pos += size
    return out


def rehash_entry(log: bytearray, offset: int) -> bool:
    """Recomputes both hashes of the HvLE entry at `offset` of a log held in
    a bytearray, in place (after a test or a fuzzer changed a field, so
    that the change gets past the hash check). False when the entry's size
    field does not fit the file (nothing to hash)."""
    size = struct.unpack_from("<I", log, offset + 4)[0]
    if size < 40 or offset + size > len(log):
        return False
    struct.pack_into("<Q", log, offset + 24, marvin32(memoryview(log)[offset + 40 : offset + size]))
    struct.pack_into("<Q", log, offset + 32, marvin32(memoryview(log)[offset : offset + 32]))
    return True


def reseal_log(log: bytearray, offsets: Sequence[int] | None = None) -> bytearray:
    """Recomputes the base block checksum of a log (or primary) image and the
    hashes of its HvLE entries (those at `offsets`, default: those
    :func:`entry_offsets` finds), in place; returns `log`."""
    if len(log) >= 512 and log[:4] == b"regf":
        struct.pack_into("<I", log, 508, base_block_checksum(log))
    for off in entry_offsets(bytes(log)) if offsets is None else offsets:
        rehash_entry(log, off)
    return log


@dataclass
class DirtyHive:
    """A primary file and its logs, as bytes; ``write(path)`` puts them on disk."""

    primary: bytes
    logs: dict[str, bytes]  # suffix (".LOG1") -> file content
    states: list[bytes]
    sequences: list[int]  # sequence number of each state (state 0: the primary's)
    entry_log: list[str | None] = field(default_factory=list)  # suffix holding each state's entry

    def write(self, path: str | os.PathLike[str]) -> dict[str, str]:
        """Writes the primary to `path` and each log to `path` + suffix;
        returns {suffix: log path}."""
        path = os.fspath(path)
        with open(path, "wb") as f:
            f.write(self.primary)
        out = {}
        for suffix, data in self.logs.items():
            with open(path + suffix, "wb") as f:
                f.write(data)
            out[suffix] = path + suffix
        return out


def make_dirty_hive(
    states: Sequence[bytes],
    *,
    logs: Sequence[str] | None = None,
    format: str = "new",
    dirty: bool = True,
    torn: int = 0,
    page_size: int = PAGE_SIZE,
    base_sequence: int | None = None,
    primary_sequence: tuple[int, int] | None = None,
) -> DirtyHive:
    """Builds a dirty primary file and logs from successive hive images.

    Parameters
    ----------
    states
        Hive images (whole files, e.g. from ``writer.build_hive``), oldest
        first. ``states[0]`` is what the primary file holds.
    logs
        New format: for each later image, the log suffix its entry goes to
        (".LOG1" or ".LOG2", any order: ``[".LOG2", ".LOG1", ".LOG2"]``
        interleaves them). Default: all in ".LOG1".
    format
        "new" (HvLE entries) or "old" (one ".LOG" with a DIRT vector taking
        states[0] straight to states[-1]).
    dirty
        False writes a clean primary (both sequence numbers equal) holding
        the *last* image: the logs are then stale — already applied.
    torn
        Also write the first `torn` changed pages of states[1] into the
        primary (a write that stopped half way).
    base_sequence
        Sequence number of states[0] (default: its base block's primary
        sequence number).
    primary_sequence
        (primary, secondary) sequence numbers of the dirty primary file
        (default: N + 1, N). Real primaries often lag far behind their logs
        (a SYSTEM hive at 1622 / 1621 whose logs start at 2107): entries
        before the logs' were reconciled and the logs reused.
    """
    if len(states) < 2:
        raise ValueError("need at least two hive images")
    n0 = struct.unpack_from("<I", states[0], 4)[0] if base_sequence is None else base_sequence
    seqs = [(n0 + i) & _M32 for i in range(len(states))]
    entry_log: list[str | None] = [None]
    out_logs: dict[str, bytes] = {}
    if format == "new":
        where = list(logs) if logs is not None else [".LOG1"] * (len(states) - 1)
        if len(where) != len(states) - 1:
            raise ValueError("logs= needs one suffix per later image")
        per_log: dict[str, list[tuple[int, bytes]]] = {}
        for i in range(1, len(states)):
            pages = changed_pages(states[i - 1], states[i], page_size)
            if not pages:  # an entry needs a page: log the first one unchanged
                pages = [(0, bytes(states[i][_BASE : _BASE + page_size]))]
            entry = encode_entry(seqs[i], _hbins_size(states[i]), pages)
            per_log.setdefault(where[i - 1], []).append((i, entry))
            entry_log.append(where[i - 1])
        for suffix in sorted(per_log):
            items = per_log[suffix]
            first = items[0][0]
            out_logs[suffix] = new_format_log(states[first - 1], [e for _, e in items], sequence=seqs[first])
    elif format == "old":
        out_logs[".LOG"] = old_format_log(states[0], states[-1], sequence=seqs[1], page_size=page_size)
        entry_log += [".LOG"] * (len(states) - 1)
    else:
        raise ValueError(f"format must be 'new' or 'old', got {format!r}")

    if dirty:
        primary = bytearray(states[0])
        if torn:
            for off, data in changed_pages(states[0], states[1], page_size)[:torn]:
                if _BASE + off + len(data) <= len(primary):
                    primary[_BASE + off : _BASE + off + len(data)] = data
        p, q = primary_sequence if primary_sequence is not None else (seqs[1], seqs[0])
        primary = set_sequence(primary, p, q)
    else:
        # a primary that holds entry N is at N + 1 (Windows numbers so: the
        # corpus's dfwinreg NTUSER.DAT, clean at 132, holds its entry 131);
        # at N its entry N would be pending (recover's forensic mode)
        last = (seqs[-1] + 1) & _M32 if format == "new" else seqs[1]
        primary = set_sequence(states[-1], last, last)
    return DirtyHive(bytes(primary), out_logs, list(states), seqs, entry_log)
