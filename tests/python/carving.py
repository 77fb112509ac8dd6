"""Deleting keys and values from a writer-made hive the way Windows does, so
that carving can be measured against a known truth.

Windows (CmDeleteKey / CmDeleteValueKey -> HvFreeCell) unlinks the record
from its parent's list (entries after it move up, the count drops; an emptied
list is freed), frees each of its cells by making the size field positive, and
merges every freed cell with the free cells next to it in the same hbin: the
first cell's size grows, the merged cell's size field stays where it was.
Nothing else is erased, so the records lie *inside* larger free cells.
:class:`Deleter` does exactly that on a bytearray, records what it deleted
(the truth), and can then reuse freed space as Windows does when a live
value's data moves (the bytes written there destroy what lay beneath).
"""
from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

BASE = 4096
NONE = 0xFFFFFFFF
SEG = 16344


@dataclass
class Planted:
    """The deleted records a Deleter made, as the carver should find them."""
    keys: dict = field(default_factory=dict)     # nk cell file offset -> (path, name, last_write)
    values: dict = field(default_factory=dict)   # vk cell file offset -> (owner path|None, name, type, data)
    value_key: dict = field(default_factory=dict)  # vk offset -> nk offset of the deleted key owning it
    data_cells: dict = field(default_factory=dict)  # vk offset -> [(file offset, length)] of its data pieces
    extent: dict = field(default_factory=dict)   # record cell offset -> end of its fixed part + name


def _i32(data, off):
    return struct.unpack_from("<i", data, off)[0]


def _u32(data, off):
    return struct.unpack_from("<I", data, off)[0]


def _u16(data, off):
    return struct.unpack_from("<H", data, off)[0]


class Deleter:
    """Deletes keys and values in `data` (a bytearray of a writer-made hive
    whose HiveLayout is `layout`) as Windows does, recording the truth."""

    def __init__(self, data: bytearray, layout) -> None:
        self.data = data
        self.layout = layout
        self.truth = Planted()
        self.parent_of = {}
        for path in layout.nk:
            if path:
                self.parent_of[path] = path.rpartition("\\")[0]

    # -- cells -----------------------------------------------------------------
    def free(self, off: int) -> None:
        size = _i32(self.data, off)
        assert size < 0, f"cell at 0x{off:x} is not allocated"
        struct.pack_into("<i", self.data, off, -size)

    def coalesce(self) -> int:
        """Merges every run of adjacent free cells in each hbin into its first
        cell (HvFreeCell's neighbour merge); returns the merges made."""
        merged = 0
        for start, size in self.layout.hbins:
            off, end, run = start + 0x20, start + size, None
            while off < end:
                csize = _i32(self.data, off)
                step = abs(csize)
                if csize > 0 and run is not None:
                    struct.pack_into("<i", self.data, run, _i32(self.data, run) + csize)
                    merged += 1
                elif csize > 0:
                    run = off
                else:
                    run = None
                off += step
        return merged

    def _payload(self, off: int) -> int:
        return off + 4

    # -- records ---------------------------------------------------------------
    def _data_pieces(self, vk: int) -> list[tuple[int, int]]:
        """(file offset, length) of each cell holding the vk's data: the data
        cell, or the db record, its segment list and its segments."""
        p = self._payload(vk)
        raw, doff = _u32(self.data, p + 4), _u32(self.data, p + 8)
        n = raw & 0x7FFFFFFF
        if raw & 0x80000000 or n == 0:
            return []
        cell = BASE + doff
        minor = _u32(self.data, 0x18)
        if minor >= 4 and n > SEG and self.data[cell + 4:cell + 6] == b"db":
            count, lst = _u16(self.data, cell + 6), BASE + _u32(self.data, cell + 8)
            pieces = [(cell, 8), (lst, 4 * count)]
            left = n
            for i in range(count):
                take = min(left, SEG)
                if take <= 0:
                    break
                pieces.append((BASE + _u32(self.data, lst + 4 + 4 * i), take))
                left -= take
            return pieces
        return [(cell, n)]

    def _value_data(self, vk: int) -> bytes:
        p = self._payload(vk)
        raw = _u32(self.data, p + 4)
        n = raw & 0x7FFFFFFF
        if raw & 0x80000000:
            return bytes(self.data[p + 8:p + 8 + n])
        pieces = self._data_pieces(vk)
        if len(pieces) == 1:
            cell, length = pieces[0]
            return bytes(self.data[cell + 4:cell + 4 + length])
        return b"".join(bytes(self.data[c + 4:c + 4 + ln]) for c, ln in pieces[2:])

    def _free_value(self, vk: int, owner_path, owner_nk) -> None:
        p = self._payload(vk)
        nlen, flags = _u16(self.data, p + 2), _u16(self.data, p + 0x10)
        raw = bytes(self.data[p + 0x14:p + 0x14 + nlen])
        name = raw.decode("latin-1") if flags & 1 else raw.decode("utf-16-le")
        vtype = _u32(self.data, p + 0x0C)
        self.truth.values[vk] = (owner_path, name, vtype, self._value_data(vk))
        self.truth.extent[vk] = p + 0x14 + nlen
        self.truth.data_cells[vk] = self._data_pieces(vk)
        if owner_nk is not None:
            self.truth.value_key[vk] = owner_nk
        for cell, _ in self._data_pieces(vk):
            self.free(cell)
        self.free(vk)

    def _entries(self, lst: int) -> list[tuple[int, int]]:
        """(leaf cell, index) of every entry of a subkey list, in order."""
        p = self._payload(lst)
        sig, n = bytes(self.data[p:p + 2]), _u16(self.data, p + 2)
        if sig == b"ri":
            out = []
            for i in range(n):
                out += self._entries(BASE + _u32(self.data, p + 4 + 4 * i))
            return out
        return [(lst, i) for i in range(n)]

    def _unlink_subkey(self, parent: int, child: int) -> None:
        """Removes `child` from the parent's subkey list: later entries move
        up; an emptied leaf is freed (and dropped from its ri)."""
        pp = self._payload(parent)
        root = BASE + _u32(self.data, pp + 0x1C)
        for leaf, i in self._entries(root):
            lp = self._payload(leaf)
            stride = 4 if self.data[lp + 1:lp + 2] == b"i" else 8
            if BASE + _u32(self.data, lp + 4 + stride * i) != child:
                continue
            n = _u16(self.data, lp + 2)
            tail = self.data[lp + 4 + stride * (i + 1):lp + 4 + stride * n]
            self.data[lp + 4 + stride * i:lp + 4 + stride * (n - 1)] = tail
            struct.pack_into("<H", self.data, lp + 2, n - 1)
            struct.pack_into("<I", self.data, pp + 0x14, _u32(self.data, pp + 0x14) - 1)
            if n - 1 == 0:
                self.free(leaf)
                if leaf == root:
                    struct.pack_into("<I", self.data, pp + 0x1C, NONE)
                else:
                    rp = self._payload(root)
                    rn = _u16(self.data, rp + 2)
                    items = [_u32(self.data, rp + 4 + 4 * j) for j in range(rn)]
                    items.remove(leaf - BASE)
                    for j, item in enumerate(items):
                        struct.pack_into("<I", self.data, rp + 4 + 4 * j, item)
                    struct.pack_into("<H", self.data, rp + 2, rn - 1)
            return
        raise KeyError(f"0x{child:x} is not a subkey of 0x{parent:x}")

    def delete_key(self, path: str) -> None:
        """Deletes the key at `path` and everything below it, children first
        (as RegDeleteTree does), recording each key and value."""
        lay = self.layout
        nk = lay.nk[path]
        p = self._payload(nk)
        while _u32(self.data, p + 0x14):
            first_leaf, _ = self._entries(BASE + _u32(self.data, p + 0x1C))[0]
            lp = self._payload(first_leaf)
            child = BASE + _u32(self.data, lp + 4)
            child_path = next(k for k, v in lay.nk.items() if v == child)
            self.delete_key(child_path)
        nv, vl = _u32(self.data, p + 0x24), _u32(self.data, p + 0x28)
        for i in range(nv):
            self._free_value(BASE + _u32(self.data, BASE + vl + 4 + 4 * i), path, nk)
        if nv:
            self.free(BASE + vl)
        if path in lay.class_name:
            self.free(lay.class_name[path])
        name = path.rpartition("\\")[2]
        self.truth.keys[nk] = (path, name, struct.unpack_from("<Q", self.data, p + 4)[0])
        self.truth.extent[nk] = p + 0x4C + _u16(self.data, p + 0x48)
        self._unlink_subkey(lay.nk[self.parent_of[path]], nk)
        self.free(nk)

    def delete_value(self, path: str, name: str) -> None:
        """Deletes one value of a live key: its list entry goes (later ones
        move up), its vk and data cells are freed."""
        nk = self.layout.nk[path]
        vk = self.layout.vk[(path, name)]
        p = self._payload(nk)
        nv, vl = _u32(self.data, p + 0x24), BASE + _u32(self.data, p + 0x28)
        entries = [_u32(self.data, vl + 4 + 4 * i) for i in range(nv)]
        entries.remove(vk - BASE)
        for i, e in enumerate(entries):
            struct.pack_into("<I", self.data, vl + 4 + 4 * i, e)
        struct.pack_into("<I", self.data, p + 0x24, nv - 1)
        if nv - 1 == 0:
            self.free(vl)
            struct.pack_into("<I", self.data, p + 0x28, NONE)
        self._free_value(vk, path, None)

    # -- reuse -------------------------------------------------------------------
    def free_cells(self) -> list[tuple[int, int]]:
        out = []
        for start, size in self.layout.hbins:
            off, end = start + 0x20, start + size
            while off < end:
                csize = _i32(self.data, off)
                if csize > 0:
                    out.append((off, csize))
                off += abs(csize)
        return out

    def move_value_data(self, path: str, name: str, rng: random.Random) -> list[tuple[int, int]]:
        """Moves a live value's data into the start of a free cell that fits
        it (splitting the rest off as a new free cell) and frees its old cell,
        as Windows does when it reallocates value data: the bytes written
        there destroy what lay beneath. Returns the (offset, length) ranges
        written (none when the data is not in one cell or nothing fits)."""
        vk = self.layout.vk[(path, name)]
        pieces = self._data_pieces(vk)
        if len(pieces) != 1:
            return []
        old, length = pieces[0]
        need = (length + 4 + 7) & ~7
        fits = [(o, s) for o, s in self.free_cells() if s >= need + 8 or s == need]
        if not fits:
            return []
        off, size = rng.choice(fits)
        payload = bytes(self.data[old + 4:old + 4 + length])
        struct.pack_into("<i", self.data, off, -need)
        self.data[off + 4:off + 4 + length] = payload
        self.data[off + 4 + length:off + need] = bytes(need - 4 - length)
        written = [(off, need)]
        if size > need:
            struct.pack_into("<i", self.data, off + need, size - need)
            written.append((off + need, 4))
        struct.pack_into("<I", self.data, self._payload(vk) + 8, off - BASE)
        self.free(old)
        return written


def destroyed(truth: Planted, written: list[tuple[int, int]]) -> set[int]:
    """Records (their cell offsets) whose own bytes a reuse overwrote: the
    fixed part or name of an nk or vk that a written range touches (its former
    size field may be rewritten: a split leaves a new free cell's size there)."""
    return {off for off, end in truth.extent.items() if any(w < end and off + 4 < w + n for w, n in written)}


def plant(seed: int, n_keys: int = 60, minor: int = 5, reuse: int = 0):
    """A writer-made hive with `n_keys` keys holding inline, small and (from
    format 1.4) big-data values, of which random subtrees and single values
    are deleted as Windows does and the free space merged; with `reuse`, that
    many live values then have their data moved into freed space.

    Returns (hive bytes, layout, truth, offsets of destroyed records)."""
    from regfast.io.writer import Key, Value, REG_BINARY, REG_DWORD, REG_SZ, build_hive

    rng = random.Random(seed)
    when = 133444736000000000 + rng.randrange(10**12)

    def values_for(i):
        vals = {}
        for j in range(rng.randrange(0, 5)):
            kind = rng.choice(["dword", "sz", "bin", "big"] if minor >= 4 else ["dword", "sz", "bin"])
            name = f"v{i}_{j}" if rng.random() < 0.8 else f"Wert\u00e4{i}_{j}\u03a9"
            if kind == "dword":
                vals[name] = Value(REG_DWORD, struct.pack("<I", rng.randrange(1 << 32)))
            elif kind == "sz":
                vals[name] = Value(REG_SZ, (f"text {i} {j} " * rng.randrange(1, 30) + "\0").encode("utf-16-le"))
            elif kind == "bin":
                vals[name] = Value(REG_BINARY, rng.randbytes(rng.randrange(5, 3000)))
            else:
                vals[name] = Value(REG_BINARY, rng.randbytes(rng.randrange(SEG + 1, 3 * SEG)))
        return vals

    def build(depth, prefix, budget):
        subs = {}
        while budget[0] > 0 and len(subs) < rng.randrange(1, 6):
            budget[0] -= 1
            i = budget[0]
            name = f"{prefix}K{i}" if rng.random() < 0.8 else f"Schl\u00fcssel{i}\u2603"
            kids = build(depth + 1, name[:3], budget) if depth < 4 and rng.random() < 0.5 else {}
            subs[name] = Key(values=values_for(i), subkeys=kids,
                             last_write=when + i, class_name=f"C{i}" if rng.random() < 0.1 else None)
        return subs

    budget = [n_keys]
    top = {}
    while budget[0] > 0:
        top.update(build(1, "", budget))
    data, layout = build_hive(Key(subkeys=top), minor=minor, timestamp=when)
    data = bytearray(data)
    d = Deleter(data, layout)
    paths = [p for p in layout.nk if p]
    victims = rng.sample(paths, max(1, len(paths) // 4))
    for path in sorted(victims, key=len):
        if path in layout.nk and layout.nk[path] not in d.truth.keys and not any(
                path.startswith(v + "\\") for v in victims if v != path):
            d.delete_key(path)
    gone_keys = {v[0] for v in d.truth.keys.values()}
    live_values = [(p, n) for (p, n) in layout.vk if p not in gone_keys]
    for p, n in rng.sample(live_values, len(live_values) // 6):
        d.delete_value(p, n)
    d.coalesce()
    written = []
    deleted_values = {(v[0], v[1]) for v in d.truth.values.values()}
    movable = [(p, n) for (p, n) in layout.data if p not in gone_keys and (p, n) not in deleted_values]
    for p, n in rng.sample(movable, min(reuse, len(movable))):
        written += d.move_value_data(p, n, rng)
    return bytes(data), layout, d.truth, destroyed(d.truth, written)


def score(records, truth: Planted, gone: set = frozenset()) -> dict:
    """Compares carved records (DeletedKey/DeletedValue-like: offset, name,
    data) with the truth. Records whose bytes were overwritten are not
    expected; a record that matches no planted one is a false positive."""
    keys = {o for o in truth.keys if o not in gone}
    values = {o for o in truth.values if o not in gone}
    found_k = found_v = data_ok = fp = 0
    for r in records:
        if hasattr(r, "last_write"):
            if r.offset in keys and truth.keys[r.offset][1] == r.name:
                found_k += 1
            else:
                fp += 1
        elif r.offset in values and truth.values[r.offset][1] == r.name:
            found_v += 1
            data_ok += r.data == truth.values[r.offset][3]
        else:
            fp += 1
    return {"keys": (found_k, len(keys)), "values": (found_v, len(values)), "data": (data_ok, len(values)),
            "false_positives": fp}
