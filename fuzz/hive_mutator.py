"""A field-aware mutator for regf hives.

It knows the structure it damages: the base block, hbin headers, cell size
fields and the fields of nk, vk, lf/lh/li/ri, db and sk records (offsets as in
tests/python/conftest.py FIELDS and the writer's HiveLayout). It finds them by
walking the hive's own hbins and cells, so it works the same on writer-made
hives and on real ones (/work/shared/corpus), and writes the values that
break parsers: 0, 1, -1, 0x7fffffff, 0x80000000, the sizes of neighbouring
cells, offsets into other cells, into the middle of a cell, into an hbin
header or past the end, big-data boundaries (16344), odd UTF-16 lengths.

A mutation is a list of operations, so that it can be applied to a copy (a
damaged file opened afterwards) or to the live bytes of a hive already open
(the file changing under the reader), and saved to reproduce a finding:
    ("put", file_offset, bytes)   overwrite
    ("cut", length)               truncate the file
"""
from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from typing import Iterator

BASE = 4096
NONE = 0xFFFFFFFF
BIG_SEGMENT = 16344


@dataclass
class Cell:
    off: int            # file offset of the size field
    raw: int            # signed size as stored
    sig: bytes          # first two payload bytes ("nk", "vk", ...), or b""

    @property
    def size(self) -> int:
        return abs(self.raw)


@dataclass
class Structure:
    data: bytes
    hbins: list[tuple[int, int]]        # (file offset, size)
    cells: list[Cell]

    @property
    def bins_len(self) -> int:
        return (self.hbins[-1][0] + self.hbins[-1][1] - BASE) if self.hbins else 0


def _u32(b, o):
    return struct.unpack_from("<I", b, o)[0]


def parse(data: bytes) -> Structure:
    """The hbins and cells of a hive, as far as they can be walked (a bad
    hbin or cell ends that hbin; the walk resumes at the next 4 KiB boundary
    holding "hbin"): damaged corpus hives still yield their good parts."""
    hbins, cells = [], []
    n = len(data)
    off = BASE
    while off + 32 <= n:
        if data[off:off + 4] != b"hbin":
            off = (off + 4096) & ~4095
            continue
        hsize = _u32(data, off + 8)
        if hsize < 4096 or hsize % 4096 or off + hsize > n:
            off += 4096
            continue
        hbins.append((off, hsize))
        c = off + 32
        while c + 8 <= off + hsize:
            raw = struct.unpack_from("<i", data, c)[0]
            size = abs(raw)
            if size < 8 or size % 8 or c + size > off + hsize:
                break
            cells.append(Cell(c, raw, bytes(data[c + 4:c + 6])))
            c += size
        off += hsize
    return Structure(bytes(data), hbins, cells)


# Fields by record: (offset in the payload, struct format, kind). Kinds pick
# the values: "off" a cell offset, "len" a length or count, "sig", "flags",
# "type", "time", "any".
RECORD_FIELDS = {
    b"nk": [(0x00, "<H", "sig"), (0x02, "<H", "flags"), (0x04, "<Q", "time"), (0x10, "<I", "off"),
            (0x14, "<I", "len"), (0x18, "<I", "len"), (0x1C, "<I", "off"), (0x20, "<I", "off"),
            (0x24, "<I", "len"), (0x28, "<I", "off"), (0x2C, "<I", "off"), (0x30, "<I", "off"),
            (0x34, "<I", "len"), (0x38, "<I", "len"), (0x3C, "<I", "len"), (0x40, "<I", "len"),
            (0x48, "<H", "len"), (0x4A, "<H", "len")],
    b"vk": [(0x00, "<H", "sig"), (0x02, "<H", "len"), (0x04, "<I", "datalen"), (0x08, "<I", "off"),
            (0x0C, "<I", "type"), (0x10, "<H", "flags")],
    b"db": [(0x00, "<H", "sig"), (0x02, "<H", "len"), (0x04, "<I", "off")],
    b"sk": [(0x00, "<H", "sig"), (0x04, "<I", "off"), (0x08, "<I", "off"), (0x0C, "<I", "len"),
            (0x10, "<I", "len")],
}
LISTS = {b"lf": 8, b"lh": 8, b"li": 4, b"ri": 4}
SIGS = [b"nk", b"vk", b"lf", b"lh", b"li", b"ri", b"db", b"sk", b"hb", b"\0\0"]
BASE_FIELDS = [(0x04, "<I", "seq"), (0x08, "<I", "seq"), (0x14, "<I", "ver"), (0x18, "<I", "ver"),
               (0x1C, "<I", "ver"), (0x20, "<I", "ver"), (0x24, "<I", "off"), (0x28, "<I", "hbins"),
               (0x2C, "<I", "ver")]
BOUNDARY = [0, 1, 2, 3, 4, 5, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
            BIG_SEGMENT - 1, BIG_SEGMENT, BIG_SEGMENT + 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
            0x80000001, 0x80000004, 0x80000005, 0xFFFFFFF8]


class Mutator:
    """Makes mutations of one hive. `rng` decides everything, so a seed
    reproduces a run."""

    def __init__(self, data: bytes, rng: random.Random):
        self.s = parse(data)
        self.data = self.s.data
        self.rng = rng

    # --- values ------------------------------------------------------------------

    def _cell(self) -> Cell | None:
        return self.rng.choice(self.s.cells) if self.s.cells else None

    def offset_value(self, here: Cell | None) -> int:
        """A cell offset (relative to the first hbin) that is wrong in an
        interesting way, or right for another cell."""
        r = self.rng
        other = self._cell()
        bins_len = self.s.bins_len
        picks = [0, NONE, 0x7FFFFFFF, 0x80000000, bins_len, bins_len - 8, bins_len + 8, bins_len - 4,
                 len(self.data) - BASE, len(self.data), 1, 4, 0x20]
        if other:
            rel = other.off - BASE
            picks += [rel, rel, rel, rel + r.choice((2, 4, 8, 12, 16, 0x20)), rel + other.size,
                      rel + r.randrange(other.size) if other.size else rel, rel - 8]
        if here:
            picks += [here.off - BASE, here.off - BASE + 4]
        if self.s.hbins:
            picks += [r.choice(self.s.hbins)[0] - BASE, r.choice(self.s.hbins)[0] - BASE + 0x20]
        return r.choice(picks)

    def length_value(self, old: int, here: Cell | None) -> int:
        r = self.rng
        picks = list(BOUNDARY) + [old + 1, old - 1, old * 2, old + 8, old ^ 1, r.getrandbits(32)]
        if here:
            room = here.size - 4
            picks += [room, room + 1, room - 1, room + 4, room + 8, room // 2, room * 2]
            nxt = self._neighbour(here)
            if nxt:
                picks += [room + nxt.size, nxt.size]
        return r.choice(picks)

    def _neighbour(self, cell: Cell) -> Cell | None:
        for c in self.s.cells:
            if c.off == cell.off + cell.size:
                return c
        return None

    def size_value(self, cell: Cell) -> int:
        """A new size field for `cell` (signed)."""
        r = self.rng
        nxt = self._neighbour(cell)
        hbin_end = next((o + s for o, s in self.s.hbins if o <= cell.off < o + s), len(self.data))
        left = hbin_end - cell.off
        sign = -1 if cell.raw < 0 else 1
        picks = [-cell.raw, sign * (cell.size + 8), sign * (cell.size - 8), 0, 1, -1, 4, -4, 8, -8, 3, -3,
                 -0x7FFFFFF8, 0x7FFFFFF8, -0x80000000, 0x7FFFFFFF, sign * left, sign * (left + 8),
                 sign * (left + 4096), sign * (cell.size // 2 & ~7), sign * (len(self.data) - cell.off)]
        if nxt:
            picks += [sign * (cell.size + nxt.size), -(cell.size + nxt.size), sign * nxt.size]
        return r.choice(picks)

    # --- operations --------------------------------------------------------------

    def _put(self, off: int, fmt: str, value: int) -> tuple:
        width = struct.calcsize(fmt)
        value &= (1 << (8 * width)) - 1
        if fmt.endswith(("i", "h", "q")):
            value = value - (1 << (8 * width)) if value >> (8 * width - 1) else value
        return ("put", off, struct.pack(fmt, value))

    def _record_fields(self, cell: Cell) -> list[tuple[int, str, str]]:
        payload = cell.off + 4
        fields = [(payload + o, f, k) for o, f, k in RECORD_FIELDS.get(cell.sig, [])
                  if o + struct.calcsize(f) <= cell.size - 4]
        stride = LISTS.get(cell.sig)
        if stride:
            fields.append((payload + 2, "<H", "len"))
            count = struct.unpack_from("<H", self.data, payload + 2)[0] if cell.size >= 8 else 0
            room = (cell.size - 8) // stride
            for i in range(min(count, room, 64)):
                fields.append((payload + 4 + i * stride, "<I", "off"))
                if stride == 8:
                    fields.append((payload + 8 + i * stride, "<I", "any"))
        if cell.sig == b"nk" and cell.size >= 4 + 0x4C:
            fields.append((payload + 0x48, "<H", "namelen"))
        if cell.sig == b"vk" and cell.size >= 4 + 0x14:
            fields.append((payload + 0x02, "<H", "namelen"))
        if not fields and cell.size >= 12:           # value lists, data cells: any 4-byte slot
            fields = [(payload + 4 * i, "<I", "off") for i in range(min((cell.size - 4) // 4, 32))]
        return fields

    def field_op(self) -> tuple | None:
        """One record field of one cell set to a chosen value."""
        r = self.rng
        cell = self._cell()
        if cell is None:
            return None
        fields = self._record_fields(cell)
        if not fields:
            return None
        off, fmt, kind = r.choice(fields)
        old = struct.unpack_from(fmt, self.data, off)[0]
        if kind == "off":
            value = self.offset_value(cell)
        elif kind in ("len", "datalen"):
            value = self.length_value(old, cell)
            if kind == "datalen" and r.random() < 0.3:
                value = (value & 0x7FFFFFFF) | r.choice((0, 0x80000000))
        elif kind == "namelen":
            value = r.choice([old + 1, old | 1, 0, 0xFFFF, cell.size, cell.size - 4 - 0x4C + 1,
                              cell.size - 4 - 0x14 + 1, old * 2 + 1, self.length_value(old, cell)])
        elif kind == "sig":
            value = struct.unpack("<H", r.choice(SIGS))[0]
        elif kind == "flags":
            value = old ^ r.choice((0x20, 0x04, 0x01, 0x08, 0xFFFF))
        elif kind == "type":
            value = r.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 0xFFFF0012, 0xFFFFFFFF, old ^ 1])
        elif kind == "time":
            value = r.choice([0, 0xFFFFFFFFFFFFFFFF, 2650467743999999991, 1 << 63, old + 1])
        else:
            value = r.choice(BOUNDARY + [r.getrandbits(32)])
        return self._put(off, fmt, value)

    def size_op(self) -> tuple | None:
        cell = self._cell()
        return None if cell is None else self._put(cell.off, "<i", self.size_value(cell))

    def hbin_op(self) -> tuple | None:
        r = self.rng
        if not self.s.hbins:
            return None
        off, size = r.choice(self.s.hbins)
        which = r.randrange(3)
        if which == 0:
            return ("put", off, r.choice([b"hbim", b"\0\0\0\0", b"regf", b"HBIN"]))
        if which == 1:
            return self._put(off + 4, "<I", r.choice([0, off - BASE + 4096, off - BASE - 4096, 1, NONE]))
        return self._put(off + 8, "<I", r.choice([0, 4096, size + 4096, size * 2, size - 4096, 0x7FFFF000,
                                                  size + 8, len(self.data)]))

    def base_ops(self) -> list[tuple]:
        """A base-block field changed, the checksum fixed most of the time."""
        r = self.rng
        off, fmt, kind = r.choice(BASE_FIELDS)
        old = struct.unpack_from(fmt, self.data, off)[0]
        if kind == "off":
            value = self.offset_value(None)
        elif kind == "hbins":
            value = r.choice([0, 4096, self.s.bins_len + 4096, self.s.bins_len - 4096, self.s.bins_len + 1,
                              0xFFFFF000, 0x80000000, old * 2])
        elif kind == "seq":
            value = old + r.choice((1, -1, 0x7FFFFFFF))
        else:
            value = r.choice([0, 1, 2, 3, 4, 5, 6, 7, NONE])
        ops = [self._put(off, fmt, value)]
        if r.random() < 0.7:
            image = bytearray(self.data[:512])
            apply(image, ops, allow_cut=False)
            x = 0
            for i in range(0, 0x1FC, 4):
                x ^= _u32(image, i)
            x = 1 if x == 0 else 0xFFFFFFFE if x == NONE else x
            ops.append(self._put(0x1FC, "<I", x))
        return ops

    def graft_op(self) -> tuple | None:
        """One cell's payload copied over another's (a record where a
        different one, or data, was expected)."""
        a, b = self._cell(), self._cell()
        if a is None or b is None or a.off == b.off:
            return None
        n = min(a.size, b.size) - 4
        return ("put", b.off + 4, self.data[a.off + 4:a.off + 4 + n])

    def cut_op(self) -> tuple:
        r = self.rng
        n = len(self.data)
        picks = [r.randrange(BASE, n), n - 1, n - 4096, BASE + 4096, BASE + 32, BASE + 8]
        if self.s.cells:
            picks.append(r.choice(self.s.cells).off + r.choice((0, 4, 8)))
        return ("cut", max(0, min(n, r.choice(picks))))

    def flip_op(self) -> tuple:
        off = self.rng.randrange(len(self.data))
        return ("put", off, bytes([self.data[off] ^ (1 << self.rng.randrange(8))]))

    def mutation(self, *, allow_cut: bool = True) -> list[tuple]:
        """1 to 4 operations; field and size changes dominate."""
        r = self.rng
        ops: list[tuple] = []
        for _ in range(r.choice((1, 1, 1, 2, 2, 3, 4))):
            roll = r.random()
            if roll < 0.45:
                op = self.field_op()
            elif roll < 0.65:
                op = self.size_op()
            elif roll < 0.72:
                op = self.hbin_op()
            elif roll < 0.80:
                ops += self.base_ops()
                continue
            elif roll < 0.88:
                op = self.graft_op()
            elif roll < 0.93 and allow_cut:
                op = self.cut_op()
            else:
                op = self.flip_op()
            if op is not None:
                ops.append(op)
        return ops


def apply(buf, ops: list[tuple], *, allow_cut: bool = True):
    """Applies operations to `buf` (a bytearray, or a writable memoryview when
    `allow_cut` is False) in place: writes past the end are clipped; a cut is
    skipped when `allow_cut` is False (a buffer held open cannot shrink)."""
    for op in ops:
        if op[0] == "put":
            off, b = op[1], op[2]
            if off < len(buf):
                b = b[:len(buf) - off]
                buf[off:off + len(b)] = b
        elif op[0] == "cut" and allow_cut:
            del buf[op[1]:]
    return buf


def ops_to_json(ops: list[tuple]) -> list:
    return [[o[0], o[1], o[2].hex()] if o[0] == "put" else list(o) for o in ops]


def ops_from_json(items: list) -> list[tuple]:
    return [("put", o[1], bytes.fromhex(o[2])) if o[0] == "put" else tuple(o) for o in items]


def mutations(data: bytes, rng: random.Random) -> Iterator[list[tuple]]:
    m = Mutator(data, rng)
    while True:
        yield m.mutation()
