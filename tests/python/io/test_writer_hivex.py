"""Round-trip tests for regfast.io.writer, checked against hivex.

Every hive built here is written to disk and read back by hivex (an
independent regf implementation, see oracle.py); the complete tree hivex
reports is compared with the tree that was written.  Structural details
that hivex does not expose (cell sizes, list kinds, hashes, sk reference
counts, the base block) are checked by parsing the file in this module,
starting from the offsets recorded in HiveLayout.  Expected values are
computed here independently of the writer's own encoding helpers.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import struct
from functools import reduce
from operator import xor

import pytest

import regfast

from oracle import (
    HivexError,
    hivex_info,
    hivex_tree,
    hivexget_key,
    hivexget_value,
    hivexml_tree,
    require_hivex,
    require_hivexget,
    require_hivexml,
)
from regfast.io.writer import (
    REG_BINARY,
    REG_DWORD,
    REG_DWORD_BIG_ENDIAN,
    REG_EXPAND_SZ,
    REG_FULL_RESOURCE_DESCRIPTOR,
    REG_LINK,
    REG_MULTI_SZ,
    REG_NONE,
    REG_QWORD,
    REG_RESOURCE_LIST,
    REG_RESOURCE_REQUIREMENTS_LIST,
    REG_SZ,
    HiveLayout,
    Key,
    Value,
    build_hive,
    build_security_descriptor,
    sid_to_bytes,
    write_hive,
)

TS = 132_000_000_000_000_000  # 2019-04-17T18:40:00Z as FILETIME
SEG = 16344

# --------------------------------------------------------------------------
# independent expectations and raw parsing
# --------------------------------------------------------------------------


def _enc_expected(v):
    """Expected (type, bytes) for a value as written, computed independently."""
    if isinstance(v, Value):
        d = v.data
        if isinstance(d, (bytes, bytearray, memoryview)):
            return v.type, bytes(d)
        if d is None:
            return v.type, b""
        if v.type in (REG_SZ, REG_EXPAND_SZ):
            return v.type, d.encode("utf-16-le") + b"\0\0"
        if v.type == REG_LINK:
            return v.type, d.encode("utf-16-le")
        if v.type == REG_DWORD:
            return v.type, struct.pack("<I", d % 2**32)
        if v.type == REG_DWORD_BIG_ENDIAN:
            return v.type, struct.pack(">I", d % 2**32)
        if v.type == REG_QWORD:
            return v.type, struct.pack("<Q", d % 2**64)
        if v.type == REG_MULTI_SZ:
            return v.type, b"".join(s.encode("utf-16-le") + b"\0\0" for s in d) + b"\0\0"
        raise AssertionError(f"test cannot encode {v!r}")
    if isinstance(v, str):
        return REG_SZ, v.encode("utf-16-le") + b"\0\0"
    if isinstance(v, int):
        return (REG_DWORD, struct.pack("<I", v)) if v < 2**32 else (REG_QWORD, struct.pack("<Q", v))
    if isinstance(v, (bytes, bytearray)):
        return REG_BINARY, bytes(v)
    if isinstance(v, list):
        return REG_MULTI_SZ, b"".join(s.encode("utf-16-le") + b"\0\0" for s in v) + b"\0\0"
    raise AssertionError(f"test cannot encode {v!r}")


def _parts(node):
    if isinstance(node, Key):
        return node.subkeys, node.values, node.class_name or None
    subs = {k: v for k, v in node.items() if isinstance(v, (dict, Key))}
    vals = {k: v for k, v in node.items() if not isinstance(v, (dict, Key))}
    return subs, vals, None


def expected_tree(tree):
    """The hivex_tree() a correct writer must produce for ``tree``."""
    out = {}
    stack = [("", tree)]
    while stack:
        path, node = stack.pop()
        subs, vals, cls = _parts(node)
        out[path] = {"values": {n: _enc_expected(v) for n, v in vals.items()}, "class": cls}
        for n, child in subs.items():
            stack.append((n if not path else path + "\\" + n, child))
    return out


def expected_children(tree):
    """path -> subkey names sorted the Windows way (ASCII upcase order)."""
    out = {}
    stack = [("", tree)]
    while stack:
        path, node = stack.pop()
        subs, _, _ = _parts(node)
        out[path] = sorted(subs, key=_upper_units)
        for n, child in subs.items():
            stack.append((n if not path else path + "\\" + n, child))
    return out


def _upper_units(name):
    # upcase per character when it maps to a single BMP character
    up = "".join(c.upper() if len(c.upper()) == 1 and ord(c) < 0x10000 else c for c in name)
    return up.encode("utf-16-be")


def roundtrip(tmp_path, tree, name="hive.dat", **kw):
    require_hivex()
    kw.setdefault("timestamp", TS)
    path = tmp_path / name
    layout = write_hive(path, tree, **kw)
    raw = path.read_bytes()
    return path, raw, layout


def assert_same_tree(path, tree):
    got = hivex_tree(path)
    exp = expected_tree(tree)
    assert set(got) == set(exp), (
        f"key sets differ: missing {sorted(set(exp) - set(got))[:5]}, "
        f"extra {sorted(set(got) - set(exp))[:5]}"
    )
    for p in exp:
        assert got[p]["class"] == exp[p]["class"], p
        assert got[p]["values"] == exp[p]["values"], p
    return got


def i32(b, o):
    return struct.unpack_from("<i", b, o)[0]


def u32(b, o):
    return struct.unpack_from("<I", b, o)[0]


def u16(b, o):
    return struct.unpack_from("<H", b, o)[0]


def cell(raw, off):
    """Payload of the allocated cell at file offset ``off``."""
    size = i32(raw, off)
    assert size < 0, f"cell at {off:#x} is not allocated (size {size})"
    assert -size % 8 == 0 and off % 8 == 0
    return raw[off + 4:off - size]


NK_FMT = struct.Struct("<2sHQ15IHH")
NK_NAMES = ("sig flags ts access parent nsub nvol subl voll nval vall sk cls "
            "maxsn maxsc maxvn maxvd workvar namelen clslen").split()


def nk(raw, off):
    c = cell(raw, off)
    f = dict(zip(NK_NAMES, NK_FMT.unpack_from(c, 0)))
    assert f["sig"] == b"nk"
    f["name_raw"] = c[0x4C:0x4C + f["namelen"]]
    return f


def vk(raw, off):
    c = cell(raw, off)
    sig, namelen, dlen, doff, vtype, flags = struct.unpack_from("<2sHIIIH", c, 0)
    assert sig == b"vk"
    return {"namelen": namelen, "dlen": dlen, "doff": doff, "type": vtype,
            "flags": flags, "name_raw": c[20:20 + namelen]}


def lh_hash(name):
    up = "".join(c.upper() if len(c.upper()) == 1 else c for c in name)
    b = up.encode("utf-16-le")
    h = 0
    for unit in struct.unpack("<%dH" % (len(b) // 2), b):
        h = (h * 37 + unit) % 2**32
    return h


def subkey_leaves(raw, list_off):
    """Return [(sig, [(nk_off, extra_bytes)])] for a subkey list root."""
    c = cell(raw, list_off)
    sig, n = c[:2], u16(c, 2)
    if sig == b"ri":
        leaves = []
        for i in range(n):
            leaves.extend(subkey_leaves(raw, 4096 + u32(c, 4 + 4 * i)))
        return leaves
    entries = []
    width = 4 if sig == b"li" else 8
    for i in range(n):
        entries.append((4096 + u32(c, 4 + width * i), c[8 + width * i:4 + width * (i + 1)] if width == 8 else b""))
    return [(sig, entries)]


def checksum(raw):
    c = reduce(xor, struct.unpack_from("<127I", raw, 0))
    return {0: 1, 0xFFFFFFFF: 0xFFFFFFFE}.get(c, c)


# --------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------

ALL_TYPES_TREE = {
    "Types": Key(values={
        "none": Value(REG_NONE, b"\x01\x02\x03\x04\x05\x06"),
        "sz": Value(REG_SZ, "hello wörld"),
        "expand": Value(REG_EXPAND_SZ, "%SystemRoot%\\system32"),
        "binary": Value(REG_BINARY, bytes(range(40))),
        "dword": Value(REG_DWORD, 0x12345678),
        "dword_be": Value(REG_DWORD_BIG_ENDIAN, 0x12345678),
        "link": Value(REG_LINK, "\\Registry\\Machine\\Software"),
        "multi": Value(REG_MULTI_SZ, ["one", "two", "", "Ω"]),
        "resource_list": Value(REG_RESOURCE_LIST, b"\x01\x00\x00\x00" + bytes(range(20, 60))),
        "full_resource": Value(REG_FULL_RESOURCE_DESCRIPTOR, bytes(range(9, 33))),
        "requirements": Value(REG_RESOURCE_REQUIREMENTS_LIST, bytes(range(100, 148))),
        "qword": Value(REG_QWORD, 0x0102030405060708),
        "devprop": Value(0xFFFF0012, b"\x10\x20\x30\x40\x50\x60"),
        "weird": Value(0x12345678, b"\xde\xad\xbe\xef\x00\x01"),
    }),
}

ALL_TYPES_BYTES = {
    "none": (0, b"\x01\x02\x03\x04\x05\x06"),
    "sz": (1, "hello wörld\0".encode("utf-16-le")),
    "expand": (2, "%SystemRoot%\\system32\0".encode("utf-16-le")),
    "binary": (3, bytes(range(40))),
    "dword": (4, b"\x78\x56\x34\x12"),
    "dword_be": (5, b"\x12\x34\x56\x78"),
    "link": (6, "\\Registry\\Machine\\Software".encode("utf-16-le")),
    "multi": (7, "one\0two\0\0Ω\0\0".encode("utf-16-le")),
    "resource_list": (8, b"\x01\x00\x00\x00" + bytes(range(20, 60))),
    "full_resource": (9, bytes(range(9, 33))),
    "requirements": (10, bytes(range(100, 148))),
    "qword": (11, b"\x08\x07\x06\x05\x04\x03\x02\x01"),
    "devprop": (0xFFFF0012, b"\x10\x20\x30\x40\x50\x60"),
    "weird": (0x12345678, b"\xde\xad\xbe\xef\x00\x01"),
}


def test_every_value_type(tmp_path):
    path, raw, layout = roundtrip(tmp_path, ALL_TYPES_TREE)
    got = assert_same_tree(path, ALL_TYPES_TREE)
    assert got["Types"]["values"] == ALL_TYPES_BYTES
    # and in the order given
    assert list(hivex_info(path)["keys"]["Types"]["values"]) == list(ALL_TYPES_BYTES)
    for name, (t, _) in ALL_TYPES_BYTES.items():
        assert vk(raw, layout.vk[("Types", name)])["type"] == t


def test_small_type_variants(tmp_path):
    tree = {"K": Key(values={
        "dw0": Value(REG_DWORD, 0),
        "dwmax": Value(REG_DWORD, 0xFFFFFFFF),
        "dwneg": Value(REG_DWORD, -2),
        "be1": Value(REG_DWORD_BIG_ENDIAN, 1),
        "qwneg": Value(REG_QWORD, -1),
        "sz_empty": Value(REG_SZ, ""),
        "multi_empty": Value(REG_MULTI_SZ, []),
        "none_empty": Value(REG_NONE, None),
        "link_empty": Value(REG_LINK, ""),
        "raw_sz": Value(REG_SZ, b"no terminator"),
    })}
    path, raw, layout = roundtrip(tmp_path, tree)
    vals = hivex_tree(path)["K"]["values"]
    assert vals == {
        "dw0": (4, b"\0\0\0\0"),
        "dwmax": (4, b"\xff\xff\xff\xff"),
        "dwneg": (4, b"\xfe\xff\xff\xff"),
        "be1": (5, b"\0\0\0\x01"),
        "qwneg": (11, b"\xff" * 8),
        "sz_empty": (1, b"\0\0"),
        "multi_empty": (7, b"\0\0"),
        "none_empty": (0, b""),
        "link_empty": (6, b""),
        "raw_sz": (1, b"no terminator"),
    }


def test_dict_shorthand(tmp_path):
    tree = {
        "S": "text",
        "D": 7,
        "D_max": 2**32 - 1,
        "Q": 2**32,
        "Q_max": 2**64 - 1,
        "B": b"\x00\x01",
        "M": ["a", "b"],
        "V": Value(REG_EXPAND_SZ, "%x%"),
        "Sub": {"inner": 1},
        "SubKey": Key(values={"x": "y"}),
    }
    path, raw, layout = roundtrip(tmp_path, tree)
    got = assert_same_tree(path, tree)
    assert got[""]["values"] == {
        "S": (1, "text\0".encode("utf-16-le")),
        "D": (4, b"\x07\0\0\0"),
        "D_max": (4, b"\xff\xff\xff\xff"),
        "Q": (11, b"\0\0\0\0\x01\0\0\0"),
        "Q_max": (11, b"\xff" * 8),
        "B": (3, b"\x00\x01"),
        "M": (7, "a\0b\0\0".encode("utf-16-le")),
        "V": (2, "%x%\0".encode("utf-16-le")),
    }
    assert set(got) == {"", "Sub", "SubKey"}


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5])
def test_inline_vs_cell_data(tmp_path, size):
    data = bytes(range(0xA1, 0xA1 + size))
    tree = {"K": {"v": Value(REG_BINARY, data), "sz": Value(REG_NONE, data)}}
    path, raw, layout = roundtrip(tmp_path, tree)
    assert_same_tree(path, tree)
    rec = vk(raw, layout.vk[("K", "v")])
    if size <= 4:
        assert rec["dlen"] == 0x80000000 | size
        assert struct.pack("<I", rec["doff"])[:size] == data
        assert ("K", "v") not in layout.data
    else:
        assert rec["dlen"] == size
        assert 4096 + rec["doff"] == layout.data[("K", "v")]
        assert cell(raw, layout.data[("K", "v")])[:size] == data


@pytest.mark.parametrize("minor", [3, 5, 6])
@pytest.mark.parametrize("size", [SEG, SEG + 1, 100_000, 1 << 20])
def test_big_data(tmp_path, minor, size):
    data = random.Random(size).randbytes(size)
    tree = {"Big": {"blob": Value(REG_BINARY, data), "after": "x", "small": b"12345"}}
    path, raw, layout = roundtrip(tmp_path, tree, minor=minor)
    got = assert_same_tree(path, tree)
    assert got["Big"]["values"]["blob"] == (REG_BINARY, data)
    rec = vk(raw, layout.vk[("Big", "blob")])
    assert rec["dlen"] == size
    dcell = cell(raw, layout.data[("Big", "blob")])
    if minor >= 4 and size > SEG:
        assert dcell[:2] == b"db"
        nseg = u16(dcell, 2)
        assert nseg == -(-size // SEG)
        seglist = cell(raw, 4096 + u32(dcell, 4))
        joined = b""
        for i in range(nseg):
            seg = cell(raw, 4096 + u32(seglist, 4 * i))
            want = min(SEG, size - i * SEG)
            assert len(seg) >= want
            joined += seg[:want]
        assert joined == data
    else:
        assert dcell[:size] == data
    nkf = nk(raw, layout.nk["Big"])
    assert nkf["maxvd"] == size


def test_value_data_in_large_hbin(tmp_path):
    # a cell larger than a normal bin gets its own, larger bin
    data = bytes(range(256)) * 40  # 10240 bytes
    tree = {"K": {"big": data, "next": "after"}}
    path, raw, layout = roundtrip(tmp_path, tree)
    assert_same_tree(path, tree)
    off = layout.data[("K", "big")]
    bins = [b for b in layout.hbins if b[0] <= off < b[0] + b[1]]
    assert len(bins) == 1 and bins[0][1] == 12288


# --------------------------------------------------------------------------
# keys, lists, names
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 5000])
def test_subkey_counts(tmp_path, n):
    rnd = random.Random(n)
    names = set()
    while len(names) < n:
        names.add("Key%06d_%s" % (rnd.randrange(10**6), rnd.choice(["a", "B", "c"])))
    tree = {"Parent": {nm: {"id": i} for i, nm in enumerate(sorted(names))}}
    path, raw, layout = roundtrip(tmp_path, tree)
    assert_same_tree(path, tree)
    info = hivex_info(path)
    assert info["keys"]["Parent"]["children"] == sorted(names, key=str.upper)
    f = nk(raw, layout.nk["Parent"])
    assert f["nsub"] == n
    if n == 0:
        assert f["subl"] == 0xFFFFFFFF and "Parent" not in layout.subkey_list
        return
    assert 4096 + f["subl"] == layout.subkey_list["Parent"]
    root = cell(raw, layout.subkey_list["Parent"])
    leaves = subkey_leaves(raw, layout.subkey_list["Parent"])
    if n == 5000:
        assert root[:2] == b"ri" and u16(root, 2) == 10
        assert [len(e) for _, e in leaves] == [512] * 9 + [392]
    else:
        assert root[:2] == b"lh"
    offs = [o for _, e in leaves for o, _ in e]
    assert offs == [layout.nk["Parent\\" + nm] for nm in sorted(names, key=str.upper)]
    assert all(sig == b"lh" for sig, _ in leaves)


@pytest.mark.parametrize("index", ["lh", "lf", "li"])
@pytest.mark.parametrize("leaf_max", [512, 3])
def test_forced_index_kinds(tmp_path, index, leaf_max):
    names = ["zeta", "Alpha", "beta", "Éclair", "ΩMega", "日本", "ab", "AC", "x" * 255, "Ab1"]
    tree = {"P": {nm: {"n": nm} for nm in names}}
    path, raw, layout = roundtrip(tmp_path, tree, index=index, leaf_max=leaf_max)
    assert_same_tree(path, tree)
    leaves = subkey_leaves(raw, layout.subkey_list["P"])
    root_sig = cell(raw, layout.subkey_list["P"])[:2]
    assert root_sig == (b"ri" if leaf_max == 3 else index.encode())
    assert len(leaves) == (4 if leaf_max == 3 else 1)
    order = sorted(names, key=_upper_units)
    entries = [e for _, es in leaves for e in es]
    assert [o for o, _ in entries] == [layout.nk["P\\" + nm] for nm in order]
    assert hivex_info(path)["keys"]["P"]["children"] == order
    for (sig, es) in leaves:
        assert sig == index.encode()
    for (o, extra), nm in zip(entries, order):
        if index == "lh":
            assert u32(extra, 0) == lh_hash(nm), nm
        elif index == "lf":
            head = nm[:4]
            want = head.encode("latin-1").ljust(4, b"\0") if all(ord(c) < 256 for c in head) else b"\0" * 4
            assert extra == want, nm


@pytest.mark.parametrize("minor,kind", [(3, b"lf"), (4, b"lf"), (5, b"lh"), (6, b"lh")])
def test_auto_index_by_minor(tmp_path, minor, kind):
    tree = {"P": {"a": {}, "b": {}}}
    path, raw, layout = roundtrip(tmp_path, tree, minor=minor)
    assert_same_tree(path, tree)
    assert cell(raw, layout.subkey_list["P"])[:2] == kind
    assert u32(raw, 0x18) == minor


def test_non_ascii_names(tmp_path):
    tree = {
        "é": {"café": "latin", "": "default"},
        "Ω": {"Ωmega": "utf16", "日本": 1},
        "日本": Key(values={"名前": "値"}),
        "plain": {},
    }
    path, raw, layout = roundtrip(tmp_path, tree)
    assert_same_tree(path, tree)
    e = nk(raw, layout.nk["é"])
    assert e["flags"] & 0x20 and e["name_raw"] == b"\xe9"
    o = nk(raw, layout.nk["Ω"])
    assert not o["flags"] & 0x20 and o["name_raw"] == "Ω".encode("utf-16-le")
    j = nk(raw, layout.nk["日本"])
    assert not j["flags"] & 0x20 and j["name_raw"] == "日本".encode("utf-16-le")
    v = vk(raw, layout.vk[("é", "café")])
    assert v["flags"] & 1 and v["name_raw"] == b"caf\xe9"
    v = vk(raw, layout.vk[("Ω", "Ωmega")])
    assert not v["flags"] & 1 and v["name_raw"] == "Ωmega".encode("utf-16-le")
    # max name lengths are in UTF-16 bytes whatever the storage
    root = nk(raw, layout.root)
    assert root["maxsn"] == 2 * len("plain")
    assert nk(raw, layout.nk["Ω"])["maxvn"] == 2 * len("Ωmega")
    assert nk(raw, layout.nk["é"])["maxvn"] == 2 * len("café")


def test_names_edge_lengths(tmp_path):
    tree = {"k" * 255: {"v" * 16383: "long value name", "": 1}}
    path, raw, layout = roundtrip(tmp_path, tree)
    assert_same_tree(path, tree)
    assert nk(raw, layout.root)["maxsn"] == 510
    assert nk(raw, layout.nk["k" * 255])["maxvn"] == 2 * 16383


def test_classes(tmp_path):
    tree = Key(
        class_name="RootClass",
        subkeys={
            "A": Key(class_name="Shell"),
            "B": Key(class_name="Ωclass日本", values={"x": 1}),
            "C": Key(),
            "D": Key(class_name=""),
        },
    )
    path, raw, layout = roundtrip(tmp_path, tree)
    got = assert_same_tree(path, tree)
    assert got[""]["class"] == "RootClass"
    assert got["B"]["class"] == "Ωclass日本"
    assert got["C"]["class"] is None and got["D"]["class"] is None
    root = nk(raw, layout.root)
    assert root["maxsc"] == len("Ωclass日本".encode("utf-16-le"))
    b = nk(raw, layout.nk["B"])
    assert b["clslen"] == len("Ωclass日本".encode("utf-16-le"))
    assert 4096 + b["cls"] == layout.class_name["B"]
    assert nk(raw, layout.nk["C"])["cls"] == 0xFFFFFFFF


def test_timestamps(tmp_path):
    when = dt.datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc)
    when_ft = 132224078456789010  # 100 ns ticks since 1601-01-01 UTC
    assert when_ft == (when - dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1) * 10
    tree = Key(subkeys={
        "int": Key(last_write=116444736000000000),  # 1970-01-01
        "dt": Key(last_write=when),
        "inherit": Key(),
    })
    path, raw, layout = roundtrip(tmp_path, tree, timestamp=TS)
    info = hivex_info(path)
    assert info["last_modified"] == TS
    assert info["keys"][""]["timestamp"] == TS
    assert info["keys"]["int"]["timestamp"] == 116444736000000000
    assert info["keys"]["dt"]["timestamp"] == when_ft
    assert info["keys"]["inherit"]["timestamp"] == TS
    assert struct.unpack_from("<Q", raw, 12)[0] == TS
    assert struct.unpack_from("<Q", raw, 4096 + 20)[0] == TS  # first hbin


def test_default_and_empty_values(tmp_path):
    tree = {
        "": "root default",
        "K": {"": b"", "e_bin": b"", "e_sz": "", "e_multi": [], "z": 0},
        "D": {"": Value(REG_DWORD, 5)},
    }
    path, raw, layout = roundtrip(tmp_path, tree)
    got = assert_same_tree(path, tree)
    assert got[""]["values"][""] == (1, "root default\0".encode("utf-16-le"))
    assert got["K"]["values"][""] == (3, b"")
    assert got["D"]["values"][""] == (4, b"\x05\0\0\0")
    v = vk(raw, layout.vk[("K", "")])
    assert v["namelen"] == 0 and v["dlen"] == 0x80000000


@pytest.mark.parametrize("order", ["given", "sorted"])
def test_many_values(tmp_path, order):
    rnd = random.Random(5)
    names = [f"val{rnd.randrange(10**9):09d}" for _ in range(3000)]
    names = list(dict.fromkeys(names))
    vals = {}
    for i, nm in enumerate(names):
        vals[nm] = [i, f"string {i}", bytes([i % 256]) * (i % 13), [str(i)]][i % 4]
    tree = {"Many": vals}
    path, raw, layout = roundtrip(tmp_path, tree, value_list_order=order)
    assert_same_tree(path, tree)
    hv_order = list(hivex_info(path)["keys"]["Many"]["values"])
    assert hv_order == (names if order == "given" else sorted(names, key=str.upper))
    f = nk(raw, layout.nk["Many"])
    assert f["nval"] == len(names)
    assert f["maxvn"] == 2 * max(len(n) for n in names)
    assert f["maxvd"] == max(len(_enc_expected(v)[1]) for v in vals.values())
    vl = cell(raw, layout.value_list["Many"])
    assert [4096 + u32(vl, 4 * i) for i in range(len(names))] == [
        layout.vk[("Many", n)] for n in hv_order]


def test_deep_path(tmp_path):
    tree = {}
    node = tree
    for depth in range(100):
        child = {"depth": depth}
        node[f"L{depth}"] = child
        node = child
    path, raw, layout = roundtrip(tmp_path, tree)
    got = assert_same_tree(path, tree)
    deepest = "\\".join(f"L{i}" for i in range(100))
    assert got[deepest]["values"] == {"depth": (4, struct.pack("<I", 99))}
    # parent pointers chain up to the root
    p = deepest
    while p:
        parent = p.rpartition("\\")[0]
        assert 4096 + nk(raw, layout.nk[p])["parent"] == layout.nk[parent]
        p = parent


def test_nk_fields_and_root(tmp_path):
    tree = {"A": {"x": "1234567890", "yy": 1, "B": {}, "Longer": {}}, "v": b"\x01"}
    path, raw, layout = roundtrip(tmp_path, tree, root_name="CMI-CreateHive{TEST}")
    assert_same_tree(path, tree)
    info = hivex_info(path)
    assert info["root_name"] == "CMI-CreateHive{TEST}"
    root = nk(raw, layout.root)
    assert layout.root == 4096 + 0x20
    assert u32(raw, 0x24) == layout.root - 4096
    assert root["flags"] == 0x2C
    assert 4096 + root["parent"] == layout.root  # documented choice
    assert root["nsub"] == 1 and root["nval"] == 1 and root["nvol"] == 0
    assert root["voll"] == 0xFFFFFFFF
    assert root["name_raw"] == b"CMI-CreateHive{TEST}"
    a = nk(raw, layout.nk["A"])
    assert a["flags"] == 0x20
    assert 4096 + a["parent"] == layout.root
    assert a["nsub"] == 2 and a["nval"] == 2
    assert a["maxsn"] == 2 * len("Longer")
    assert a["maxvn"] == 2 * len("yy")
    assert a["maxvd"] == len("1234567890\0".encode("utf-16-le"))
    assert 4096 + a["vall"] == layout.value_list["A"]
    b = nk(raw, layout.nk["A\\B"])
    assert b["nsub"] == 0 and b["subl"] == 0xFFFFFFFF and b["vall"] == 0xFFFFFFFF
    assert b["maxsn"] == b["maxvn"] == b["maxvd"] == 0


# --------------------------------------------------------------------------
# security
# --------------------------------------------------------------------------

SID_BA = b"\x01\x02\x00\x00\x00\x00\x00\x05" + struct.pack("<II", 32, 544)
SID_SY = b"\x01\x01\x00\x00\x00\x00\x00\x05" + struct.pack("<I", 18)
SID_BU = b"\x01\x02\x00\x00\x00\x00\x00\x05" + struct.pack("<II", 32, 545)


def parse_sk_cells(raw, layout):
    out = {}
    for off in layout.sk:
        c = cell(raw, off)
        assert c[:2] == b"sk"
        flink, blink, refs, sdlen = struct.unpack_from("<IIII", c, 4)
        out[off] = {"flink": 4096 + flink, "blink": 4096 + blink, "refs": refs, "sd": c[20:20 + sdlen]}
    return out


def test_default_security_descriptor(tmp_path):
    path, raw, layout = roundtrip(tmp_path, {"A": {}, "B": {"C": {}}})
    sks = parse_sk_cells(raw, layout)
    assert len(sks) == 1
    (off, sk), = sks.items()
    assert sk["refs"] == 4 and sk["flink"] == off and sk["blink"] == off
    sd = sk["sd"]
    rev, _, control, o_owner, o_group, o_sacl, o_dacl = struct.unpack_from("<BBHIIII", sd, 0)
    assert rev == 1 and control & 0x8004 == 0x8004 and o_sacl == 0
    assert sd[o_owner:o_owner + len(SID_BA)] == SID_BA
    assert sd[o_group:o_group + len(SID_SY)] == SID_SY
    acl_rev, _, acl_size, ace_count = struct.unpack_from("<BBHH", sd, o_dacl)
    assert ace_count == 3 and o_dacl + acl_size <= len(sd)
    pos = o_dacl + 8
    seen = []
    for _ in range(ace_count):
        t, fl, size, mask = struct.unpack_from("<BBHI", sd, pos)
        seen.append((t, fl, mask, sd[pos + 8:pos + size]))
        pos += size
    assert seen == [(0, 2, 0xF003F, SID_BA), (0, 2, 0xF003F, SID_SY), (0, 2, 0x20019, SID_BU)]
    for p in ("", "A", "B", "B\\C"):
        assert 4096 + nk(raw, layout.nk[p])["sk"] == off


def test_shared_security_descriptors(tmp_path):
    sd_a = build_security_descriptor("S-1-5-18", "S-1-5-18", [(0, 2, 0xF003F, "S-1-5-18")])
    sd_b = build_security_descriptor("S-1-5-32-544", "S-1-5-18",
                                     [(0, 2, 0x20019, "S-1-1-0"), (1, 0, 0x2, "S-1-5-7")])
    tree = Key(security=sd_a, subkeys={
        "a1": Key(security=sd_a),
        "a2": Key(security=bytes(sd_a)),
        "b1": Key(security=sd_b, subkeys={"b2": Key(security=sd_b), "d": Key()}),
        "d1": Key(),
    })
    path, raw, layout = roundtrip(tmp_path, tree)
    assert_same_tree(path, tree)
    sks = parse_sk_cells(raw, layout)
    by_sd = {v["sd"]: (off, v) for off, v in sks.items()}
    assert set(by_sd) == {sd_a, sd_b, layout_default_sd(raw, layout)}
    assert by_sd[sd_a][1]["refs"] == 3
    assert by_sd[sd_b][1]["refs"] == 2
    assert sum(v["refs"] for v in sks.values()) == len(layout.nk) == 7
    # circular doubly linked list through all sk cells
    start = layout.sk[0]
    seen = [start]
    cur = sks[start]["flink"]
    while cur != start:
        seen.append(cur)
        cur = sks[cur]["flink"]
    assert sorted(seen) == sorted(sks)
    for off, v in sks.items():
        assert sks[v["flink"]]["blink"] == off
    # each key points at the cell holding its descriptor
    want = {"": sd_a, "a1": sd_a, "a2": sd_a, "b1": sd_b, "b1\\b2": sd_b}
    for p, sd in want.items():
        assert 4096 + nk(raw, layout.nk[p])["sk"] == by_sd[sd][0]
    assert layout.sk_of["d1"] == layout.sk_of["b1\\d"] != by_sd[sd_a][0]


_GOOD_SD = build_security_descriptor("S-1-5-18", "S-1-5-18", [(0, 2, 0xF003F, "S-1-5-18")])


@pytest.mark.parametrize("sd, why", [
    (b"junk", "shorter than the 20-byte header"),
    (b"\x02" + _GOOD_SD[1:], "revision 2"),
    (_GOOD_SD[:2] + struct.pack("<H", 0x0004) + _GOOD_SD[4:], "SE_SELF_RELATIVE"),
    (_GOOD_SD[:4] + struct.pack("<I", len(_GOOD_SD) - 4) + _GOOD_SD[8:], "owner"),   # SID past the end
    (_GOOD_SD[:-1], "group"),                                                       # group SID cut short
])
def test_invalid_security_descriptor_refused(tmp_path, sd, why):
    """Windows checks every sk at load (SeValidSecurityDescriptor) and refuses
    the hive or resets its whole security: the writer refuses such bytes, with
    the reader's own reason, instead of writing them."""
    with pytest.raises(ValueError, match=f"'K'.*not a valid self-relative.*{why}"):
        build_hive(Key(subkeys={"K": Key(security=sd)}), timestamp=TS)
    path = tmp_path / "ok.hiv"      # the same tree with a valid one reads back
    write_hive(path, Key(subkeys={"K": Key(security=_GOOD_SD)}), timestamp=TS)
    with regfast.open_hive(path) as h:
        assert h.open("K").security_descriptor() == _GOOD_SD


def _sd_with_aces(*aces: bytes, acl_rev: int = 2) -> bytes:
    """A self-relative SD (owner, group, DACL of `aces` as given)."""
    body = b"".join(aces)
    acl = struct.pack("<BBHHH", acl_rev, 0, 8 + len(body), len(aces), 0) + body
    owner = sid_to_bytes("S-1-5-32-544")
    return struct.pack("<BBHIIII", 1, 0, 0x8004, 20 + len(acl), 0, 0, 20) + acl + owner


def _ace(ace_type: int, sid: str, extra: bytes = b"", pre: bytes = b"") -> bytes:
    body = pre + sid_to_bytes(sid) + extra
    body += b"\0" * (-(8 + len(body)) % 4)
    return struct.pack("<BBHI", ace_type, 0, 8 + len(body), 0x20019) + body


_CONDITION = b"artx" + b"\xf8" + struct.pack("<I", 28) + "WIN://SYSAPPID".encode("utf-16-le") + b"\x87"


@pytest.mark.parametrize("sd", [
    _sd_with_aces(_ace(0x09, "S-1-15-2-1", _CONDITION), _ace(0, "S-1-5-18")),   # conditional (XA)
    _sd_with_aces(_ace(0x0A, "S-1-1-0", _CONDITION)),                             # conditional (XD)
    _sd_with_aces(_ace(0x05, "S-1-1-0", pre=struct.pack("<I", 1) + bytes(16)), acl_rev=4),   # object ACE
    _sd_with_aces(_ace(0x0B, "S-1-1-0", pre=struct.pack("<I", 3) + bytes(32)), acl_rev=4),   # callback object
    _sd_with_aces(_ace(0x04, "S-1-5-18", sid_to_bytes("S-1-1-0"), struct.pack("<HH", 1, 0)), acl_rev=3),
    _sd_with_aces(_ace(0x12, "S-1-1-0", bytes(20))),                              # resource attribute
    _sd_with_aces(struct.pack("<BBH", 0x16, 0, 6) + bytes(4)),                    # unknown type, 6 bytes
    _sd_with_aces(_ace(0x15, "S-1-1-0", _CONDITION)),                             # access filter
    _sd_with_aces(),                                                              # empty DACL
    _sd_with_aces(_ace(0, "S-1-1-0"), acl_rev=4),
], ids=["XA", "XD", "object", "callback-object", "compound", "attribute", "unknown-type", "filter", "empty",
        "acl-rev-4"])
def test_valid_descriptors_sddl_cannot_print_are_written(tmp_path, sd):
    """The check is Windows' structural one (RtlValidAcl), not an SDDL
    printer's: a conditional ACE on a live key (save_key) was refused."""
    path = tmp_path / "sd.hiv"
    write_hive(path, Key(subkeys={"K": Key(security=sd)}), timestamp=TS)
    with regfast.open_hive(path) as h:
        assert h.open("K").security_descriptor() == sd


@pytest.mark.parametrize("sd, why", [
    (_sd_with_aces(_ace(0, "S-1-1-0"), acl_rev=5), "revision 5"),
    (_sd_with_aces(_ace(0, "S-1-1-0")[:2] + struct.pack("<H", 14) + _ace(0, "S-1-1-0")[4:]), "type 0x00. holds no SID"),
    (_sd_with_aces(_ace(0, "S-1-1-0")[:2] + struct.pack("<H", 400) + _ace(0, "S-1-1-0")[4:]), "size of 400"),
    (_sd_with_aces(_ace(0, "S-1-1-0")[:9] + b"\x0f" + _ace(0, "S-1-1-0")[10:]), "holds no SID after its mask"),
    # SeValidSecurityDescriptor's own rules: an owner, 4-byte aligned parts,
    # any ACL at a non-zero offset; RtlValidAcl's: object ACEs in revision 4
    # ACLs (their SID after the GUIDs), compound ones in revision 3
    (_sd_with_aces()[:4] + bytes(4) + _sd_with_aces()[8:], "no owner SID"),
    (_sd_with_aces()[:4] + struct.pack("<I", 30) + _sd_with_aces()[8:], "owner SID offset 0x1e"),
    (_sd_with_aces()[:2] + struct.pack("<H", 0x8000) + _sd_with_aces()[4:16] + struct.pack("<I", 28)
     + _sd_with_aces()[20:] + b"\x07\x00\xff\xff\x09\x00\x00\x00", "DACL at 0x1c"),
    (_sd_with_aces(_ace(0x05, "S-1-1-0", pre=struct.pack("<I", 1) + bytes(16))), "needs ACL revision 4"),
    (_sd_with_aces(_ace(0x04, "S-1-1-0", pre=struct.pack("<HH", 1, 0))), "needs ACL revision 3"),
    (_sd_with_aces(_ace(0x04, "S-1-1-0", pre=struct.pack("<HH", 1, 0)), acl_rev=3), "a server and a client SID"),
    (_sd_with_aces(_ace(0x15, "S-1-1-0", b"xxxx\0\0\0\0")), "condition"),
    (_sd_with_aces(_ace(0x12, "S-1-1-0", bytes(4))), "attribute"),
    (_sd_with_aces(struct.pack("<BBH", 0x16, 0, 4)), "ends before its ACE 0"),     # no room for a header
    # a 4-byte compound ACE closing the buffer (its CompoundAceType was read past the end: struct.error)
    (struct.pack("<BBHIIII", 1, 0, 0x8004, 20, 0, 0, 32) + sid_to_bytes("S-1-5-18")
     + struct.pack("<BBHHHBBH", 3, 0, 15, 1, 0, 4, 0, 4) + bytes(3), "compound impersonation"),
    (_sd_with_aces(_ace(0x05, "S-1-1-0", pre=struct.pack("<I", 3) + bytes(16)), acl_rev=4), "no SID after its GUIDs"),
])
def test_malformed_aces_are_refused(sd, why):
    with pytest.raises(ValueError, match=f"not a valid self-relative.*{why}"):
        build_hive(Key(subkeys={"K": Key(security=sd)}), timestamp=TS)


@pytest.mark.parametrize("call, what", [
    (lambda: sid_to_bytes("S-1-5-4294967296"), "sub-authority"),
    (lambda: sid_to_bytes("S-1-281474976710656-1"), "identifier authority"),
    (lambda: sid_to_bytes("S-256-5-18"), "revision"),
    (lambda: build_security_descriptor("S-1-5-18", "S-1-5-18", [(256, 0, 1, "S-1-5-18")]), "ACE 0: type"),
    (lambda: build_security_descriptor("S-1-5-18", "S-1-5-18", [(0, 0, 1 << 32, "S-1-5-18")]), "access mask"),
    (lambda: build_security_descriptor("S-1-5-18", "S-1-5-18", [(0, 0, 1, "S-1-5-18")] * 3300), "65535"),
    (lambda: build_security_descriptor("S-1-5-18", "S-1-5-18", [], control=1 << 16), "control"),
])
def test_security_helpers_name_the_bad_field(call, what):
    with pytest.raises(ValueError, match=what):
        call()


def layout_default_sd(raw, layout):
    return parse_sk_cells(raw, layout)[layout.sk_of["d1"]]["sd"]


# --------------------------------------------------------------------------
# base block and file structure
# --------------------------------------------------------------------------


def test_base_block(tmp_path):
    tree = {"A": {"v": 1}, "B": {"w": "x" * 5000}}
    path, raw, layout = roundtrip(tmp_path, tree, minor=6, file_name="\\??\\C:\\Test\\HIVE.DAT")
    assert raw[:4] == b"regf"
    assert u32(raw, 4) == u32(raw, 8) == 1
    assert u32(raw, 0x14) == 1 and u32(raw, 0x18) == 6
    assert u32(raw, 0x1C) == 0 and u32(raw, 0x20) == 1
    assert u32(raw, 0x28) == len(raw) - 4096 == layout.size - 4096
    assert u32(raw, 0x2C) == 1
    assert raw[0x30:0x30 + 64] == "\\??\\C:\\Test\\HIVE.DAT".encode("utf-16-le").ljust(64, b"\0")[:64]
    assert u32(raw, 0x1FC) == checksum(raw)
    assert u32(raw, 0x1FC) != 0
    assert_same_tree(path, tree)


def test_long_file_name_truncated(tmp_path):
    path, raw, layout = roundtrip(tmp_path, {}, file_name="x" * 100)
    assert raw[0x30:0x70] == ("x" * 32).encode("utf-16-le")
    assert raw[0x70:0x80] == b"\0" * 16
    assert u32(raw, 0x1FC) == checksum(raw)
    assert_same_tree(path, {})


def test_dirty_sequence_numbers(tmp_path):
    tree = {"K": {"v": "dirty"}}
    path, raw, layout = roundtrip(tmp_path, tree, sequence=(7, 6))
    assert u32(raw, 4) == 7 and u32(raw, 8) == 6
    assert u32(raw, 0x1FC) == checksum(raw)
    assert_same_tree(path, tree)  # hivex ignores the dirty state


def test_bad_checksum_rejected_by_hivex(tmp_path):
    # proves the oracle checks the checksum, so the checksum tests mean something
    path, raw, layout = roundtrip(tmp_path, {"K": {}})
    bad = bytearray(raw)
    struct.pack_into("<I", bad, 0x1FC, u32(raw, 0x1FC) ^ 1)
    p2 = tmp_path / "bad.dat"
    p2.write_bytes(bytes(bad))
    with pytest.raises(HivexError, match="checksum"):
        hivex_tree(p2)


def test_hbin_and_cell_structure(tmp_path):
    rnd = random.Random(9)
    tree = {f"K{i}": {f"v{j}": rnd.randbytes(rnd.randrange(0, 3000)) for j in range(20)}
            for i in range(30)}
    tree["Huge"] = {"h": rnd.randbytes(9000)}
    path, raw, layout = roundtrip(tmp_path, tree, minor=3)
    assert_same_tree(path, tree)
    pos = 4096
    allocated = set()
    free = []
    for off, size in layout.hbins:
        assert off == pos and size % 4096 == 0
        assert raw[off:off + 4] == b"hbin" and u32(raw, off + 4) == off - 4096 and u32(raw, off + 8) == size
        c = off + 32
        while c < off + size:
            s = i32(raw, c)
            assert s != 0 and abs(s) % 8 == 0 and c % 8 == 0
            (allocated.add(c) if s < 0 else free.append((c, s)))
            c += abs(s)
        assert c == off + size, "cells must exactly fill the bin"
        pos += size
    assert pos == len(raw)
    assert any(size > 4096 for _, size in layout.hbins)
    assert sorted(free) == sorted(layout.free)
    recorded = (set(layout.nk.values()) | set(layout.vk.values()) | set(layout.data.values())
                | set(layout.subkey_list.values()) | set(layout.value_list.values()) | set(layout.sk))
    assert recorded <= allocated


def test_write_hive_atomic_and_build_hive_identical(tmp_path):
    tree = {"A": {"x": 1}}
    target = tmp_path / "out.hiv"
    target.write_bytes(b"old content")
    layout = write_hive(target, tree, timestamp=TS)
    data, layout2 = build_hive(tree, timestamp=TS)
    assert target.read_bytes() == data
    assert isinstance(layout, HiveLayout) and layout == layout2
    assert os.listdir(tmp_path) == ["out.hiv"]


# --------------------------------------------------------------------------
# hivexml / hivexget
# --------------------------------------------------------------------------

HIVEXML_TYPES = {
    0: "none", 1: "string", 2: "expand", 3: "binary", 4: "int32", 5: "int32",
    6: "link", 7: "string-list", 8: "resource-list", 9: "resource-description",
    10: "resource-requirements", 11: "int64",
}


def test_hivexml_matches(tmp_path):
    require_hivexml()
    tree = dict(ALL_TYPES_TREE)
    tree["Ω日本"] = {"é": "accent", "n": 42, "neg": Value(REG_DWORD, -5),
                    "q": Value(REG_QWORD, 2**40), "": "dflt"}
    tree["Deep"] = {"Er": {"Ste": {"m": ["x", "yz"]}}}
    path, raw, layout = roundtrip(tmp_path, tree, root_name="XmlRoot")
    xml = hivexml_tree(path)
    exp = expected_tree(tree)
    assert set(xml) == set(exp)
    assert xml[""]["root_name"] == "XmlRoot"
    for p, e in exp.items():
        assert set(xml[p]["values"]) == set(e["values"]), p
        for name, (t, data) in e["values"].items():
            assert xml[p]["values"][name][0] == HIVEXML_TYPES.get(t, "unknown"), (p, name)
    v = xml["Ω日本"]["values"]
    assert v["é"] == ("string", "accent")
    assert v["n"] == ("int32", "42")
    assert v["neg"] == ("int32", "-5")
    assert v["q"] == ("int64", str(2**40))
    assert v[""] == ("string", "dflt")
    t = xml["Types"]["values"]
    assert t["sz"] == ("string", "hello wörld")
    assert t["dword_be"] == ("int32", str(0x12345678))
    assert t["binary"] == ("binary", bytes(range(40)))
    assert t["devprop"] == ("unknown", b"\x10\x20\x30\x40\x50\x60")
    assert xml["Deep\\Er\\Ste"]["values"]["m"][0] == "string-list"
    assert xml["Deep\\Er\\Ste"]["values"]["m"][1][:2] == ["x", "yz"]
    assert xml["Deep"]["mtime"] == "2019-04-17T18:40:00Z"


def test_hivexget_spot_checks(tmp_path):
    require_hivexget()
    tree = {"Software": {"Vendor": {"": "the default", "Count": 12345, "Name": "Wörld",
                                    "List": ["a", "b"]}}}
    path, raw, layout = roundtrip(tmp_path, tree)
    assert hivexget_value(path, "Software\\Vendor", "Name") == "Wörld"
    assert hivexget_value(path, "Software\\Vendor", "Count") == "12345"
    assert hivexget_value(path, "Software\\Vendor", "") == "the default"
    # hivex 1.3.x quirk: value_multiple_strings also returns the empty string
    # formed by the final terminating NUL, so hivexget prints an extra line.
    assert hivexget_value(path, "Software\\Vendor", "List") in ("a\nb", "a\nb\n")
    listing = hivexget_key(path, "Software\\Vendor")
    assert '"Count"=dword:00003039' in listing
    assert '"@"="the default"' in listing


# --------------------------------------------------------------------------
# validation (no hivex needed)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("tree,match", [
    ({"": {}}, "empty key name"),
    ({"a\\b": {}}, "backslash"),
    ({"k" * 256: {}}, "255"),
    ({"k": {"v" * 16384: 1}}, "16383"),
    ({"Key": {}, "KEY": {}}, "duplicate subkey"),
    ({"é": {}, "É": {}}, "duplicate subkey"),
    ({"Ω": {}, "ω": {}}, "duplicate subkey"),
    ({"K": {"Value": 1, "vALUE": 2}}, "duplicate value"),
    ({"K": {"n": -1}}, "negative"),
    ({"K": {"n": 2**64}}, "QWORD"),
    ({"K": {"d": Value(REG_DWORD, 2**32)}}, "32 bits"),
    ({"K": {"d": Value(-1, b"")}}, "value type"),
    ({"K": {"d": Value(2**32, b"")}}, "value type"),
    ({"K": {"m": ["a\0b"]}}, "contains a NUL"),          # would read back as ['a', 'b']
    ({"K": {"m": ("ok", "\0")}}, "contains a NUL"),
    ({"K": {"m": [""]}}, "one empty string"),             # stored as [] is: would read back as []
    (Key(subkeys={"a": Key(last_write=dt.datetime(2020, 1, 1))}), "timezone"),
    (Key(subkeys={"a": Key(last_write=-1)}), "FILETIME"),
    (Key(security=b""), "empty"),
])
def test_value_errors(tree, match):
    with pytest.raises(ValueError, match=match):
        build_hive(tree, timestamp=TS)


@pytest.mark.parametrize("tree", [
    {"K": {"v": object()}},
    {"K": {"v": True}},
    {"K": {"v": ["a", 1]}},
    {"K": {"v": Value(REG_DWORD, "1")}},
    {"K": {"v": Value(REG_SZ, 5)}},
    {"K": {"v": Value(0x99, "text")}},
    {1: {}},
    Key(subkeys={"a": 5}),
    Key(values={"a": {}}),
    Key(values={2: "x"}),
    "not a tree",
])
def test_type_errors(tree):
    with pytest.raises(TypeError):
        build_hive(tree, timestamp=TS)


@pytest.mark.parametrize("kw", [
    {"minor": 2}, {"minor": 7}, {"index": "ri"}, {"leaf_max": 0}, {"leaf_max": 65536},
    {"value_list_order": "random"}, {"sequence": (-1, 0)}, {"root_name": ""},
    {"root_name": "a\\b"}, {"timestamp": dt.datetime(2020, 1, 1)},
])
def test_parameter_errors(kw):
    with pytest.raises(ValueError):
        build_hive({}, **kw)


def test_error_message_names_the_key():
    with pytest.raises(ValueError, match=r"Outer\\\\Inner"):
        build_hive({"Outer": {"Inner": {"x": 1, "X": 2}}})


def _chain(levels):
    tree = node = {}
    for _ in range(levels):
        node["d"] = node = {}
    return tree


def test_a_tree_of_the_registrys_depth_is_written_and_one_deeper_refused():
    """Windows keeps keys up to 512 levels below the root, and regfast's
    reader refuses deeper ones: the writer writes 512 levels (read back whole)
    and refuses 513 with a ValueError, as it must not write a hive its own
    reader calls corrupt."""
    import regfast
    data, _ = build_hive(_chain(512), timestamp=TS)
    with regfast.Hive.from_buffer(data) as hive:
        assert hive.scan().key_depth.max() == 512
    with pytest.raises(ValueError, match="513 levels below the root, past 512"):
        build_hive(_chain(513), timestamp=TS)
    with pytest.raises(ValueError, match="past 3"):
        build_hive(_chain(4), timestamp=TS, max_depth=3)
    # None writes it anyway (a test's damaged hive), which the reader refuses
    data, _ = build_hive(_chain(513), timestamp=TS, max_depth=None)
    with regfast.Hive.from_buffer(data) as hive:
        with pytest.raises(regfast.RegistryCorruptError, match="deeper than 512"):
            hive.scan()


@pytest.mark.parametrize("shape", ["self", "wide", "indirect"])
def test_a_tree_that_contains_itself_is_refused(shape):
    """A tree holding one of its own ancestors has no end: ValueError, in
    bounded time and memory, instead of a build that grows until killed
    (also when each level holds the cycle twice: depth first, the build
    reaches the limit after 513 keys, not 2**513)."""
    tree: dict = {}
    if shape == "self":
        tree["me"] = tree
    elif shape == "wide":
        tree["a"] = tree
        tree["b"] = tree
    else:
        tree["x"] = {"y": Key(subkeys={"z": tree})}
    with pytest.raises(ValueError, match="contains itself"):
        build_hive(tree, timestamp=TS)
    with pytest.raises(ValueError, match="contains itself"):
        build_hive(tree, timestamp=TS, max_depth=None)


def test_a_subtree_used_twice_is_no_cycle():
    """The same dict under two names is two keys, not a cycle."""
    shared = {"v": 1}
    data, _ = build_hive({"a": shared, "b": {"c": shared}}, timestamp=TS)
    import regfast
    with regfast.Hive.from_buffer(data) as hive:
        assert hive.open("b\\c")["v"] == 1 and hive.open("a")["v"] == 1
