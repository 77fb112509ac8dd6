"""Damaged hives: every corrupt structure gives a clear error, never a crash,
a hang or a wrong answer.

The contract (STYLE.md §5, issue 2): a damaged structure raises
``regfast.RegistryCorruptError`` (an OSError, ``winerror`` 1015) whose
``.offset`` is the exact file offset of the bad structure and whose message
names the record and that offset; a file that is not a regf hive of a version
regfast reads raises ``NotAHiveError`` (``winerror`` 1017). Each test damages
one field of a hive built by regfast's writer, at an offset taken from the
writer's HiveLayout, and asserts which operation raises (open, open(path),
subkeys/values listing, a value read, walk, scan, read_values) and that intact
sibling data stays readable where the API allows.

Hangs: a watchdog (faulthandler) kills the run with a traceback if one test
takes more than a minute, so an infinite loop in C shows up as a failure.
"""
from __future__ import annotations

import errno
import faulthandler
import random
import struct

import pytest

import regfast
from regfast.io.writer import (REG_BINARY, Key, Value, build_hive, build_security_descriptor,
                            _checksum)

from conftest import expected_tree, regfast_tree

BASE = 4096
RF_E_CORRUPT = 0x20000001
RF_E_UNSUPPORTED_FORMAT = 0x20000002
RF_E_LIMIT = 0x20000004
TS = 0x01D0000000000000

# These APIs are part of regfast: their absence must fail, not skip.
HAS_SCAN = True
assert hasattr(regfast.Hive, "scan")
HAS_READ_VALUES = True
assert hasattr(regfast.Key, "read_values")


@pytest.fixture(autouse=True)
def watchdog():
    """A C-level infinite loop cannot be interrupted from Python: dump the
    stacks and exit instead of hanging the suite."""
    faulthandler.dump_traceback_later(60, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# ---- hives and how to damage them ------------------------------------------

CUSTOM_SD = build_security_descriptor("S-1-5-18", "S-1-5-18", [(0, 0x02, 0x000F003F, "S-1-5-18")])

TREE = Key(subkeys={
    "A": Key(subkeys={"A1": {"x": 1, "Sub": {"deep": "d"}}, "A2": {"y": 2}, "A3": {}},
             values={"va": "a"}, class_name="ClassA", security=CUSTOM_SD),
    "B": {"B1": {"b": b"bb" * 10}, "B2": {}},
    "Big": {"big": bytes(range(256)) * 100, "cell": b"c" * 100, "inl": 7, "str": "hello"},
    "\u03a9mega": {"\u03c9": "omega", "\u540d\u524d": "\u5024"},
})
N_KEYS = len(expected_tree(TREE))

# Several 4 KB hbins plus a big one for the 16344-byte big-data segment.
MULTI = {f"K{i:02d}": {"blob": bytes([i]) * 600, "n": i} for i in range(24)}
MULTI["Big"] = {"big": bytes(range(256)) * 100}


def build(tree=TREE, **kw):
    data, layout = build_hive(tree, timestamp=TS, **kw)
    return bytearray(data), layout


def u16(data, off):
    return struct.unpack_from("<H", data, off)[0]


def u32(data, off):
    return struct.unpack_from("<I", data, off)[0]


def put(data, off, fmt, value):
    struct.pack_into(fmt, data, off, value)


def put_base(data, off, fmt, value):
    """Writes a base-block field and keeps the checksum right, so the field
    itself is what the reader objects to."""
    put(data, off, fmt, value)
    put(data, 0x1FC, "<I", _checksum(data))


def rel(file_offset):
    return file_offset - BASE


# nk/vk/... fields, relative to the cell's payload (after the 4-byte size)
NK_PARENT, NK_N_SUBKEYS, NK_SUBKEYS, NK_N_VALUES, NK_VALUES = 0x10, 0x14, 0x1C, 0x24, 0x28
NK_CLASS, NK_NAME_LEN, NK_CLASS_LEN = 0x30, 0x48, 0x4A
VK_NAME_LEN, VK_DATA_LEN, VK_DATA = 0x02, 0x04, 0x08


def nk_put(data, layout, path, field, fmt, value):
    put(data, layout.nk[path] + 4 + field, fmt, value)


def vk_put(data, layout, key, name, field, fmt, value):
    put(data, layout.vk[(key, name)] + 4 + field, fmt, value)


def list_entries(data, list_file_off):
    """(signature, [entry file offsets]) of a subkey list cell."""
    p = list_file_off + 4
    sig = bytes(data[p:p + 2])
    n = u16(data, p + 2)
    stride = 8 if sig in (b"lf", b"lh") else 4
    return sig, [u32(data, p + 4 + i * stride) + BASE for i in range(n)]


def set_list_entry(data, list_file_off, i, target_file_off):
    p = list_file_off + 4
    stride = 8 if bytes(data[p:p + 2]) in (b"lf", b"lh") else 4
    put(data, p + 4 + i * stride, "<I", rel(target_file_off))


def db_segments(data, db_file_off):
    """(segment list file offset, [segment file offsets]) of a db record."""
    n = u16(data, db_file_off + 4 + 2)
    lst = u32(data, db_file_off + 4 + 4) + BASE
    return lst, [u32(data, lst + 4 + 4 * i) + BASE for i in range(n)]


def opened(data, lenient=False):
    return regfast.Hive.from_buffer(bytes(data), lenient=lenient)


def validated(open_fn):
    """open_fn() then Hive.validate(): every hbin checked, as a strict open
    did before hbins were checked on first use."""
    with open_fn() as hive:
        hive.validate()


def open_both(data, tmp_path, lenient=False):
    """The two ways in: a buffer and a file path (mmap)."""
    path = tmp_path / "damaged.hiv"
    path.write_bytes(bytes(data))
    return [lambda: regfast.Hive.from_buffer(bytes(data), lenient=lenient),
            lambda: regfast.open_hive(path, lenient=lenient)]


def expect_corrupt(fn, offset, *words):
    """fn() raises RegistryCorruptError for the structure at file `offset`,
    with the offset and the words in its message."""
    with pytest.raises(regfast.RegistryCorruptError) as ei:
        fn()
    e = ei.value
    assert isinstance(e, OSError) and isinstance(e, regfast.RegistryError)
    assert e.winerror == 1015 and e.status == RF_E_CORRUPT and e.errno == errno.EIO
    got = None if e.offset is None else hex(e.offset)
    assert e.offset == offset, f"offset {got}, expected {offset:#x}: {e}"
    msg = str(e)
    assert f"0x{offset:x}" in msg, msg
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"
    assert e.reason and e.reason in msg
    return e


def expect_not_a_hive(fn, offset, *words):
    with pytest.raises(regfast.NotAHiveError) as ei:
        fn()
    e = ei.value
    assert isinstance(e, OSError) and e.winerror == 1017 and e.status == RF_E_UNSUPPORTED_FORMAT
    assert e.offset == offset
    for w in words:
        assert w in str(e), str(e)
    return e


def drain(hive):
    """Everything a reader would touch, in walk order; raises on the first damage."""
    return regfast_tree(hive)


# ---- the base block ----------------------------------------------------------

def test_empty_file(tmp_path):
    path = tmp_path / "empty.hiv"
    path.write_bytes(b"")
    e = expect_not_a_hive(lambda: regfast.open_hive(path), 0, "empty")
    assert e.filename == str(path)
    expect_not_a_hive(lambda: regfast.Hive.from_buffer(b""), 0, "empty")


def test_every_size_below_the_base_block():
    data, _ = build()
    for n in range(1, BASE):
        if n < 4:   # not even the signature: not a hive at all
            expect_not_a_hive(lambda: regfast.Hive.from_buffer(bytes(data[:n])), 0, "regf")
        else:       # a hive cut short
            expect_corrupt(lambda: regfast.Hive.from_buffer(bytes(data[:n])), n, "truncated",
                           "4096-byte base block")


@pytest.mark.parametrize("n", [1, 3, 4, 100, 511, 512, 4095])
def test_short_files_by_path(tmp_path, n):
    data, _ = build()
    path = tmp_path / "short.hiv"
    path.write_bytes(bytes(data[:n]))
    if n < 4:
        e = expect_not_a_hive(lambda: regfast.open_hive(path), 0)
    else:
        e = expect_corrupt(lambda: regfast.open_hive(path), n, "truncated")
    assert e.filename == str(path)


def test_junk_files_are_not_hives():
    rng = random.Random(1)
    for n in list(range(1, 64)) + [100, 4095, 4096, 10000]:
        junk = bytes(rng.randrange(256) for _ in range(n))
        if junk[:4] == b"regf":
            continue
        expect_not_a_hive(lambda: regfast.Hive.from_buffer(junk), 0, "regf")


def test_bad_signature(tmp_path):
    data, _ = build()
    data[0:4] = b"regF"
    for op in open_both(data, tmp_path):
        expect_not_a_hive(op, 0, "no 'regf' signature")


@pytest.mark.parametrize("version", [(1, 2), (1, 7), (2, 3), (2, 5), (0, 5), (1, 0)])
def test_unsupported_versions(tmp_path, version):
    data, _ = build()
    put_base(data, 0x14, "<I", version[0])
    put_base(data, 0x18, "<I", version[1])
    for lenient in (False, True):
        for op in open_both(data, tmp_path, lenient=lenient):
            expect_not_a_hive(op, 0x14, f"version {version[0]}.{version[1]}", "0x14")


@pytest.mark.parametrize("file_type", [1, 2, 6])
def test_transaction_log_is_not_a_hive(tmp_path, file_type):
    data, _ = build()
    put_base(data, 0x1C, "<I", file_type)
    for op in open_both(data, tmp_path):
        expect_not_a_hive(op, 0x1C, "transaction log", "0x1c")


@pytest.mark.filterwarnings("ignore:.*the hive is dirty")
def test_bad_checksum_and_lenient(tmp_path):
    data, _ = build()
    put(data, 0x1FC, "<I", u32(data, 0x1FC) ^ 0x10)
    for op in open_both(data, tmp_path):
        expect_corrupt(op, 0x1FC, "checksum")
    for op in open_both(data, tmp_path, lenient=True):
        with op() as hive:
            assert hive.info().checksum_ok is False
            assert drain(hive) == expected_tree(TREE)


def test_hbins_size_not_a_multiple_of_4096(tmp_path):
    data, _ = build()
    put_base(data, 0x28, "<I", u32(data, 0x28) + 1)
    for op in open_both(data, tmp_path):
        expect_corrupt(op, 0x28, "hive bins data size", "multiple of 4096")
    with opened(data, lenient=True) as hive:   # rounded down: nothing lost
        assert drain(hive) == expected_tree(TREE)


# ---- hbins -----------------------------------------------------------------------

def test_multi_hive_has_several_hbins():
    data, layout = build(MULTI)
    assert len(layout.hbins) >= 5 and any(size > 4096 for _, size in layout.hbins)


def _lenient_after_cut(data, cut, kept_hbins_bytes, root_cell):
    """Opening leniently keeps the whole hbins before the damage; reading then
    either finds everything it needs there or reports a cell past the cut."""
    if kept_hbins_bytes == 0:
        expect_corrupt(lambda: opened(data, lenient=True), root_cell, "root key offset")
        return
    with opened(data, lenient=True) as hive:
        assert hive.info().hbins_found == kept_hbins_bytes
        try:
            got = drain(hive)
        except regfast.RegistryCorruptError as e:
            # a cell past the cut, or a db record whose data no longer fits
            assert e.offset is not None, str(e)
            assert e.offset >= BASE + kept_hbins_bytes or "bytes of hbins" in str(e), str(e)
        else:
            assert got == expected_tree(MULTI)


def test_truncated_at_every_hbin_boundary(tmp_path):
    data, layout = build(MULTI)
    for start, _size in layout.hbins:
        cut = data[:start]
        for op in open_both(cut, tmp_path):
            expect_corrupt(op, start, "truncated")
        _lenient_after_cut(cut, start, start - BASE, layout.root)


def test_truncated_inside_hbins():
    data, layout = build(MULTI)
    rng = random.Random(2)
    for start, size in layout.hbins:
        for at in [start + 1, start + 0x1F, start + 0x20] + [start + rng.randrange(1, size) for _ in range(6)]:
            cut = data[:at]
            expect_corrupt(lambda: opened(cut), at, "truncated")
            _lenient_after_cut(cut, at, start - BASE, layout.root)


@pytest.mark.parametrize("field,value,words", [
    (0, b"hbiN", "bad hbin signature"),
    (0, b"\0\0\0\0", "bad hbin signature"),
    (4, 0x00FF0000, "offset field does not match"),
    (8, 0, "bad hbin size"),
    (8, 4095, "bad hbin size"),
    (8, 4097, "bad hbin size"),
    (8, 0x7FFFF000, "bad hbin size"),
])
@pytest.mark.parametrize("which", ["first", "middle", "last"])
def test_bad_hbin_header(tmp_path, field, value, words, which):
    data, layout = build(MULTI)
    index = {"first": 0, "middle": len(layout.hbins) // 2, "last": len(layout.hbins) - 1}[which]
    start = layout.hbins[index][0]
    if isinstance(value, bytes):
        data[start:start + 4] = value
    else:
        put(data, start + field, "<I", value)
    for op in open_both(data, tmp_path):
        expect_corrupt(lambda op=op: validated(op), start, "hbin at", words)
        if which == "first":     # the root's hbin: the open itself fails
            expect_corrupt(op, start, "hbin at", words)
            continue
        # any other hbin is checked when first used: the open succeeds, and
        # every read needing that hbin (or all of them) fails as the open did
        with op() as hive:
            for _ in range(2):   # a damaged hbin stays damaged
                expect_corrupt(hive.info, start, "hbin at", words)
                expect_corrupt(hive.scan, start, "hbin at", words)
    expect_corrupt(lambda: regfast.open_hive(tmp_path / "damaged.hiv", validate=True), start, "hbin at", words)
    _lenient_after_cut(data, start, start - BASE, layout.root)


def test_hbin_size_swallowing_the_next_hbin():
    # The next hbin's header is then read as a cell, and refused where it sits.
    data, layout = build(MULTI)
    (s0, z0), (s1, z1) = layout.hbins[0], layout.hbins[1]
    put(data, s0 + 8, "<I", z0 + z1)
    expect_corrupt(lambda: opened(data), s1, "cell at", f"hbin at 0x{s0:x}")


@pytest.mark.parametrize("size", [-0x61, -0x5C, 0, 3, -4, -0x2000, 0x2000, -0x80000000, 0x7FFFFFF8])
def test_bad_cell_size(size):
    data, layout = build()
    cell = layout.nk["B"]
    put(data, cell, "<i", size)
    expect_corrupt(lambda: opened(data), cell, "cell at", "not a multiple of 8 within its hbin")
    with opened(data, lenient=True) as hive:   # the cells before it are still there
        assert hive.root.name == "ROOT"
        with pytest.raises(regfast.RegistryCorruptError):
            drain(hive)


def test_allocated_cell_marked_free():
    data, layout = build()
    cell = layout.nk["B"]
    put(data, cell, "<i", -struct.unpack_from("<i", data, cell)[0])
    with opened(data) as hive:
        expect_corrupt(lambda: hive.open("B"), cell, "cell is free")
        assert hive.open("A")["va"] == "a"


# ---- the root -------------------------------------------------------------------

@pytest.mark.parametrize("target,words", [
    ("mid-cell", "not the start of a cell"),
    ("unaligned", "not the start of a cell"),
    ("free", "cell is free"),
    ("out-of-file", "not the start of a cell"),
    ("none", "not the start of a cell"),
    ("vk", "expected 'nk'"),
    ("sk", "expected 'nk'"),
])
def test_root_offset(tmp_path, target, words):
    data, layout = build()
    off = {
        "mid-cell": layout.root + 8,
        "unaligned": layout.root + 3,
        "free": layout.free[0][0],
        "out-of-file": BASE + 0x7FFFFFF0,
        "none": BASE + 0xFFFFFFFF,
        "vk": layout.vk[("A", "va")],
        "sk": layout.sk[0],
    }[target]
    put_base(data, 0x24, "<I", rel(off))
    for op in open_both(data, tmp_path):
        e = expect_corrupt(op, off, "root key offset", words)
        assert str(e).count("root key offset") == 1       # the reason is not overwritten


def test_root_name_len_ffff():
    data, layout = build()
    nk_put(data, layout, "", NK_NAME_LEN, "<H", 0xFFFF)
    expect_corrupt(lambda: opened(data), layout.root, "root key offset", "name_len 65535")


# ---- keys and subkey lists ------------------------------------------------------------

def test_nk_name_len_ffff():
    data, layout = build()
    bad = layout.nk["A\\A2"]
    nk_put(data, layout, "A\\A2", NK_NAME_LEN, "<H", 0xFFFF)
    with opened(data) as hive:
        a = hive.open("A")
        assert a["va"] == "a"                          # the parent's own data is intact
        expect_corrupt(lambda: list(a.subkeys()), bad, "nk at", "name_len 65535 exceeds cell size")
        expect_corrupt(lambda: hive.open("A\\A2"), bad, "name_len")
        assert hive.open("A\\A1")["x"] == 1            # lh: the hash skips the damaged sibling
        assert hive.open("A\\A3").name == "A3"
        assert hive.open("B\\B1")["b"] == b"bb" * 10
        expect_corrupt(lambda: list(hive.walk()), bad, "name_len")
        if HAS_SCAN:
            expect_corrupt(lambda: hive.scan(), bad, "name_len")
            t = hive.scan(errors="skip")
            paths = t.key_paths()
            status = dict(zip(paths, t.key_status.tolist()))
            assert status["A"] == RF_E_CORRUPT         # A's damaged entry is reported here
            assert "A\\A1" in paths and "A\\A1\\Sub" in paths   # listed before the damage
            # skipping errors keeps the siblings listed after the bad entry
            assert "A\\A2" not in paths and "A\\A3" in paths
            assert len(paths) == N_KEYS - 1


@pytest.mark.parametrize("target,words", [
    ("out-of-file", "not the start of a cell"),
    ("mid-cell", "not the start of a cell"),
    ("free", "cell is free"),
    ("vk", "no lf/lh/li/ri signature"),
    ("nk", "no lf/lh/li/ri signature"),
])
def test_subkey_list_offset(target, words):
    data, layout = build()
    off = {
        "out-of-file": BASE + 0x7FFFFFF0,
        "mid-cell": layout.subkey_list["A"] + 8,
        "free": layout.free[0][0],
        "vk": layout.vk[("A", "va")],
        "nk": layout.nk["B"],
    }[target]
    nk_put(data, layout, "A", NK_SUBKEYS, "<I", rel(off))
    with opened(data) as hive:
        a = hive.open("A")
        assert a["va"] == "a" and a.class_name == "ClassA"
        expect_corrupt(lambda: list(a.subkeys()), off, words)
        expect_corrupt(lambda: a.subkey_names(), off)
        expect_corrupt(lambda: hive.open("A\\A1"), off, words)
        assert hive.open("B\\B1")["b"] == b"bb" * 10
        expect_corrupt(lambda: list(hive.walk()), off, words)
        assert [k.path for k in hive.walk("B")] == ["B", "B\\B1", "B\\B2"]
        if HAS_SCAN:
            t = hive.scan(errors="skip")
            paths = t.key_paths()
            assert dict(zip(paths, t.key_status.tolist()))["A"] == RF_E_CORRUPT
            assert not any(p.startswith("A\\") for p in paths)
            assert len(paths) == N_KEYS - 4


@pytest.mark.parametrize("count,words", [(4, "subkey count 4 but its lists hold 3 entries"),
                                         (2, "subkey count 2 but its lists hold at least 3"),
                                         (0x7FFF, "32767 subkeys cannot fit in the hive")])
def test_subkey_count_disagrees_with_the_list(count, words):
    data, layout = build()
    nk_put(data, layout, "A", NK_N_SUBKEYS, "<I", count)
    with opened(data) as hive:
        a = hive.open("A")
        expect_corrupt(lambda: list(a.subkeys()), layout.nk["A"], "nk at", words)
        expect_corrupt(lambda: list(hive.walk()), layout.nk["A"], words)
        assert a["va"] == "a"


def test_subkey_count_zero_hides_the_list():
    # Windows enumerates by the count: with 0 the list is never consulted.
    data, layout = build()
    nk_put(data, layout, "A", NK_N_SUBKEYS, "<I", 0)
    with opened(data) as hive:
        assert hive.open("A").subkey_names() == []
        assert len(list(hive.walk())) == N_KEYS - 4


def test_subkey_count_beyond_what_the_hbins_hold_is_damage():
    # Each subkey is an nk cell of 0x50 bytes at least: 2**31 - 1 of them
    # cannot be in this hive, so the count is damage at the nk (winerror
    # 1015, what `except RegistryCorruptError` and tolerant readers take),
    # not the caller's max_subkeys (a limit: tests/c/test_regf.c).
    data, layout = build()
    nk_put(data, layout, "A", NK_N_SUBKEYS, "<I", 0x7FFFFFFF)
    with opened(data) as hive:
        expect_corrupt(lambda: list(hive.open("A").subkeys()), layout.nk["A"], "cannot fit in the hive")


def test_list_entry_count_beyond_its_cell():
    data, layout = build()
    lst = layout.subkey_list["A"]
    put(data, lst + 4 + 2, "<H", 0x7FFF)
    with opened(data) as hive:
        expect_corrupt(lambda: list(hive.open("A").subkeys()), lst, "lh at", "32767 entries do not fit")


def _ri_hive():
    data, layout = build(leaf_max=1)   # A: ri over 3 leaves; B: ri over 2
    for k in ("A", "B"):
        assert data[layout.subkey_list[k] + 4:layout.subkey_list[k] + 6] == b"ri"
    return data, layout


def test_ri_entry_pointing_at_itself():
    data, layout = _ri_hive()
    ri = layout.subkey_list["A"]
    set_list_entry(data, ri, 1, ri)
    with opened(data) as hive:
        expect_corrupt(lambda: list(hive.open("A").subkeys()), ri, "ri at", "nested ri: cycle guard")
        expect_corrupt(lambda: hive.open("A\\A3"), ri, "cycle guard")
        assert hive.open("A\\A1")["x"] == 1           # found in leaf 0, before the loop
        expect_corrupt(lambda: list(hive.walk()), ri, "cycle guard")


def test_ri_entry_pointing_at_another_ri():
    data, layout = _ri_hive()
    ri_a, ri_b = layout.subkey_list["A"], layout.subkey_list["B"]
    set_list_entry(data, ri_a, 2, ri_b)
    with opened(data) as hive:
        expect_corrupt(lambda: list(hive.open("A").subkeys()), ri_b, "nested ri")
        expect_corrupt(lambda: hive.open("A\\A3"), ri_b, "nested ri")
        assert hive.open("B\\B2").name == "B2"


def test_ri_entry_pointing_at_a_foreign_leaf():
    # B's leaf under A's ri: its entries fail the parent check, nothing is grafted
    data, layout = _ri_hive()
    _, b_leaves = list_entries(data, layout.subkey_list["B"])
    set_list_entry(data, layout.subkey_list["A"], 0, b_leaves[0])
    with opened(data) as hive:
        expect_corrupt(lambda: list(hive.open("A").subkeys()), layout.nk["B\\B1"], "parent field")


@pytest.mark.parametrize("foreign", ["B", "B\\B1", "Big"])
def test_li_entry_with_a_foreign_parent_grafts_nothing(foreign):
    # Peer trap: following a corrupt subkey list, one parser "reported 101
    # keys where the hive has 9". A listed child must name its lister as parent.
    data, layout = build(index="li")
    lst = layout.subkey_list["A"]
    sig, entries = list_entries(data, lst)
    assert sig == b"li" and entries[0] == layout.nk["A\\A1"]
    set_list_entry(data, lst, 0, layout.nk[foreign])
    child = layout.nk[foreign]
    parent_field = u32(data, child + 4 + NK_PARENT) + BASE
    with opened(data) as hive:
        e = expect_corrupt(lambda: list(hive.open("A").subkeys()), child, "nk at",
                           f"listed under the key at 0x{layout.nk['A']:x}",
                           f"parent field says 0x{parent_field:x}")
        name = foreign.rpartition("\\")[2]
        expect_corrupt(lambda: hive.open("A\\" + name), child, "parent field")
        expect_corrupt(lambda: list(hive.walk()), child, "parent field")
        assert [k.path for k in hive.walk(foreign)][0] == foreign    # it is fine where it belongs
        if HAS_SCAN:
            t = hive.scan(errors="skip")
            paths = t.key_paths()
            # A1's subtree is lost, its siblings after the bad entry are kept, nothing is added
            assert len(paths) == len(set(paths)) == N_KEYS - 2
            assert not any(p.startswith("A\\A1") for p in paths) and "A\\A3" in paths
            assert len(t.key_token) == len(set(t.key_token.tolist()))


def test_key_listed_twice_is_walked_once():
    # A list naming A1 twice (A2 displaced) breaks the order Windows checks
    # (issue 16 §5): a strict read says so where it is; a tolerant one reads
    # each key once and lists the problem. A2, unlisted, is unreachable.
    data, layout = build(index="li")
    lst = layout.subkey_list["A"]
    set_list_entry(data, lst, 1, layout.nk["A\\A1"])
    with opened(data) as hive:
        expect_corrupt(lambda: hive.open("A").subkey_names(), lst, "twice", 'errors="tolerant"')
        expect_corrupt(lambda: list(hive.walk()), lst, "twice")
        assert hive.open("A\\A1").name == "A1"          # lookups still find it
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        assert hive.open("A").subkey_names() == ["A1", "A3"]
        assert [(p.offset, p.kind) for p in hive.problems] == [(lst, "subkeys")]
        paths = [k.path for k in hive.walk()]
        assert paths.count("A\\A1") == 1 and paths.count("A\\A1\\Sub") == 1
        assert "A\\A2" not in paths and len(paths) == N_KEYS - 1
        assert paths == [p for p in expected_tree(TREE) if p != "A\\A2"]
        if HAS_SCAN:
            t = hive.scan(errors="skip")
            assert t.key_paths() == paths
            assert t.key_status.tolist() == [RF_E_CORRUPT if p == "A" else 0 for p in paths]


def test_root_listed_as_its_own_subkey():
    # The root's parent field names itself, so only an explicit check stops
    # a list holding the root from looping back to the top.
    data, layout = build()
    set_list_entry(data, layout.subkey_list[""], 0, layout.root)
    with opened(data) as hive:
        expect_corrupt(lambda: hive.root.subkey_names(), layout.root, "root key is listed as a subkey")
        expect_corrupt(lambda: list(hive.walk()), layout.root, "root key")


def test_odd_length_utf16_key_name():
    data, layout = build()
    bad = layout.nk["\u03a9mega"]
    nk_put(data, layout, "\u03a9mega", NK_NAME_LEN, "<H", 9)
    with opened(data) as hive:
        expect_corrupt(lambda: hive.root.subkey_names(), bad, "nk at", "odd length of 9 bytes")
        expect_corrupt(lambda: list(hive.walk()), bad, "odd")
        assert hive.open("A")["va"] == "a"


def test_class_len_beyond_its_cell():
    data, layout = build()
    cls = layout.class_name["A"]
    nk_put(data, layout, "A", NK_CLASS_LEN, "<H", 0xFFFF)
    with opened(data) as hive:
        a = hive.open("A")
        expect_corrupt(lambda: a.class_name, cls, "class name at", "class_len 65535 exceeds cell size")
        expect_corrupt(a.info, cls, "class_len")
        assert a["va"] == "a" and a.subkey_names() == ["A1", "A2", "A3"]
        assert len(list(hive.walk())) == N_KEYS                      # walking needs no class


def test_class_offset_out_of_file_and_odd_class_len():
    data, layout = build()
    nk_put(data, layout, "A", NK_CLASS, "<I", 0x7FFFFFF0)
    with opened(data) as hive:
        expect_corrupt(lambda: hive.open("A").class_name, BASE + 0x7FFFFFF0, "class name at")
    data, layout = build()
    nk_put(data, layout, "A", NK_CLASS_LEN, "<H", 11)
    with opened(data) as hive:
        expect_corrupt(lambda: hive.open("A").class_name, layout.class_name["A"], "odd")


def test_sk_size_beyond_its_cell():
    data, layout = build()
    sk = layout.sk_of["A"]
    assert sk != layout.sk_of["B"]
    put(data, sk + 4 + 0x10, "<I", 0xFFFF)
    with opened(data) as hive:
        a = hive.open("A")
        expect_corrupt(a.security, sk, "sk at", "descriptor size 65535 exceeds cell size")
        expect_corrupt(a.security_descriptor, sk, "descriptor size")
        assert a["va"] == "a"
        assert hive.open("B").security().startswith("O:BAG:SY")   # a different sk


def test_security_offset_at_a_non_sk_cell():
    data, layout = build()
    nk_put(data, layout, "B", 0x2C, "<I", rel(layout.nk["B"]))
    with opened(data) as hive:
        expect_corrupt(hive.open("B").security, layout.nk["B"], "expected 'sk'")


# ---- values ------------------------------------------------------------------------

def test_value_list_count_ffffffff_is_damage():
    # a count its list cell cannot hold is damage at the list, however big
    # (it once was the max_values limit, winerror 0, which neither
    # `except RegistryCorruptError` nor `regfast ls --tolerant` took)
    data, layout = build()
    nk_put(data, layout, "Big", NK_N_VALUES, "<I", 0xFFFFFFFF)
    with opened(data) as hive:
        k = hive.open("Big")
        for op in (lambda: list(k.values()), lambda: k.value("str"), lambda: k["inl"]):
            expect_corrupt(op, layout.value_list["Big"], "4294967295 values do not fit")
        assert hive.open("B\\B1")["b"] == b"bb" * 10


def test_value_list_count_beyond_its_cell():
    data, layout = build()
    nk_put(data, layout, "Big", NK_N_VALUES, "<I", 0x00FFFFFF)
    with opened(data) as hive:
        expect_corrupt(lambda: list(hive.open("Big").values()), layout.value_list["Big"],
                       "value list at", "16777215 values do not fit")


def test_value_list_out_of_file():
    data, layout = build()
    nk_put(data, layout, "Big", NK_VALUES, "<I", 0x7FFFFFF0)
    with opened(data) as hive:
        k = hive.open("Big")
        expect_corrupt(lambda: list(k.values()), BASE + 0x7FFFFFF0, "value list at")
        expect_corrupt(lambda: k["str"], BASE + 0x7FFFFFF0, "value list at")
        assert k.subkey_names() == []
        if HAS_READ_VALUES:
            expect_corrupt(lambda: k.read_values(["str"], errors="skip"), BASE + 0x7FFFFFF0)
        if HAS_SCAN:
            t = hive.scan(errors="skip")
            row = t.key_paths().index("Big")
            assert t.key_status[row] == RF_E_CORRUPT and t.key_n_values[row] == 0
            assert t.n_values == sum(len(v["values"]) for p, v in expected_tree(TREE).items() if p != "Big")


def test_value_list_entry_zero():
    # A zeroed list entry is damage, not a caller's bad token (winerror 6).
    data, layout = build()
    put(data, layout.value_list["Big"] + 4 + 4, "<I", 0)
    with opened(data) as hive:
        k = hive.open("Big")
        expect_corrupt(lambda: list(k.values()), BASE, "vk at", "not the start of a cell")
        assert k["big"] == bytes(range(256)) * 100
        if HAS_READ_VALUES:
            assert k.read_values(errors="skip").status.tolist()[1] == RF_E_CORRUPT
            expect_corrupt(lambda: k.read_values(), BASE, "vk at")
        if HAS_SCAN:
            t = hive.scan(errors="skip")
            assert sorted(set(t.value_status.tolist())) == [0, RF_E_CORRUPT]


def test_first_damaged_value_is_the_one_reported():
    # Two damaged values: the error names the first in stored order, with its
    # own offset (not the details of whichever failed last).
    data, layout = build()
    cell = layout.data[("Big", "cell")]
    vk_put(data, layout, "Big", "cell", VK_DATA_LEN, "<I", 0x7FFFFFFF)
    vk_put(data, layout, "Big", "str", VK_DATA_LEN, "<I", 0x80000009)
    assert list(layout.vk)[-6:-2] == [("Big", "big"), ("Big", "cell"), ("Big", "inl"), ("Big", "str")]
    with opened(data) as hive:
        k = hive.open("Big")
        expect_corrupt(lambda: list(k.values()), cell, "expected 'db'")
        if HAS_READ_VALUES:
            expect_corrupt(lambda: k.read_values(), cell, "expected 'db'")
            expect_corrupt(lambda: k.read_values(["str", "cell"]), layout.vk[("Big", "str")], "inline")
        if HAS_SCAN:
            expect_corrupt(lambda: hive.scan(), cell, "expected 'db'")


def test_value_list_entry_not_a_vk():
    data, layout = build()
    put(data, layout.value_list["Big"] + 4 + 4, "<I", rel(layout.nk["B"]))
    with opened(data) as hive:
        k = hive.open("Big")
        expect_corrupt(lambda: list(k.values()), layout.nk["B"], "expected 'vk'")
        assert k["big"] == bytes(range(256)) * 100          # listed before it


@pytest.mark.parametrize("minor,words", [(3, "data_len 2147483647 exceeds cell size"),
                                         (5, "expected 'db'")])
def test_vk_data_len_huge_on_cell_data(minor, words):
    data, layout = build(minor=minor)
    cell = layout.data[("Big", "cell")]
    vk_put(data, layout, "Big", "cell", VK_DATA_LEN, "<I", 0x7FFFFFFF)
    with opened(data) as hive:
        k = hive.open("Big")
        for op in (lambda: list(k.values()), lambda: k.value("cell"), lambda: k["cell"],
                   lambda: k.value_raw("cell")):
            expect_corrupt(op, cell, words)
        assert k["str"] == "hello" and k["inl"] == 7         # siblings read by name
        if HAS_READ_VALUES:
            b = k.read_values(["str", "cell", "inl"], errors="skip")
            assert b.status.tolist() == [0, RF_E_CORRUPT, 0]
            assert b.values()[0] == "hello" and b.values()[2] == 7
            expect_corrupt(lambda: k.read_values(["str", "cell"]), cell, words)
        if HAS_SCAN:
            expect_corrupt(lambda: hive.scan(), cell, words)
            t = hive.scan(errors="skip")
            status = dict(zip(t.value_token.tolist(), t.value_status.tolist()))
            assert status[rel(layout.vk[("Big", "cell")])] == RF_E_CORRUPT
            assert status[rel(layout.vk[("Big", "str")])] == 0


def test_vk_data_len_huge_on_big_data():
    # The length of a db value is checked against its segment count when the
    # value is listed, before anyone sizes a buffer from it (2 GB here).
    data, layout = build()
    db = layout.data[("Big", "big")]
    vk_put(data, layout, "Big", "big", VK_DATA_LEN, "<I", 0x7FFFFFFF)
    with opened(data) as hive:
        k = hive.open("Big")
        expect_corrupt(lambda: k.value("big"), db, "db at", "segments cannot hold 2147483647 bytes")
        expect_corrupt(lambda: list(k.values()), db, "segments")
        assert k["cell"] == b"c" * 100


@pytest.mark.parametrize("length", [5, 8, 0x1000, 0x7FFFFFFF])
def test_inline_length_over_4(length):
    data, layout = build()
    vk = layout.vk[("Big", "inl")]
    vk_put(data, layout, "Big", "inl", VK_DATA_LEN, "<I", 0x80000000 | length)
    with opened(data) as hive:
        k = hive.open("Big")
        expect_corrupt(lambda: k.value("inl"), vk, "vk at", f"inline data length {length} exceeds the 4-byte field")
        expect_corrupt(lambda: list(k.values()), vk, "inline data length")
        assert k["str"] == "hello"
        if HAS_READ_VALUES:
            assert k.read_values(["inl", "str"], errors="skip").status.tolist() == [RF_E_CORRUPT, 0]


def test_vk_name_len_beyond_its_cell():
    data, layout = build()
    vk = layout.vk[("Big", "cell")]
    vk_put(data, layout, "Big", "cell", VK_NAME_LEN, "<H", 0xFFFF)
    with opened(data) as hive:
        k = hive.open("Big")
        expect_corrupt(lambda: list(k.values()), vk, "vk at", "name_len 65535 exceeds cell size")
        assert k["big"] == bytes(range(256)) * 100           # listed before it


def test_value_data_offset_out_of_file():
    data, layout = build()
    vk_put(data, layout, "Big", "cell", VK_DATA, "<I", 0x7FFFFFF0)
    with opened(data) as hive:
        expect_corrupt(lambda: hive.open("Big")["cell"], BASE + 0x7FFFFFF0, "value data at")


def test_odd_length_utf16_value_name():
    data, layout = build()
    key = "\u03a9mega"
    vk = layout.vk[(key, "\u03c9")]
    vk_put(data, layout, key, "\u03c9", VK_NAME_LEN, "<H", 1)
    with opened(data) as hive:
        k = hive.open(key)
        expect_corrupt(lambda: list(k.values()), vk, "vk at", "odd length of 1 bytes")
        assert k["\u540d\u524d"] == "\u5024"                 # a sibling, by name
        if HAS_READ_VALUES:
            expect_corrupt(lambda: k.read_values(), vk, "odd")
        if HAS_SCAN:
            expect_corrupt(lambda: hive.scan().value_names(), vk, "odd")


def test_db_with_too_few_segments():
    data, layout = build()
    db = layout.data[("Big", "big")]
    put(data, db + 4 + 2, "<H", 1)
    with opened(data) as hive:
        k = hive.open("Big")
        expect_corrupt(lambda: k.value("big"), db, "db at", "1 segments cannot hold 25600 bytes (need 2)")
        assert k["cell"] == b"c" * 100


def test_db_segment_list_out_of_file():
    data, layout = build()
    db = layout.data[("Big", "big")]
    put(data, db + 4 + 4, "<I", 0x7FFFFFF0)
    with opened(data) as hive:
        k = hive.open("Big")
        v = k.value("big")                  # the db record itself is fine
        assert v.size == 25600
        for op in (v.raw, lambda: v.value, lambda: v.data, lambda: k["big"]):
            expect_corrupt(op, BASE + 0x7FFFFFF0, "db segment list at")
        if HAS_READ_VALUES:
            assert k.read_values(["big", "cell"], errors="skip").status.tolist() == [RF_E_CORRUPT, 0]
            expect_corrupt(lambda: k.read_values(["big"]), BASE + 0x7FFFFFF0, "db segment list")
        if HAS_SCAN:
            expect_corrupt(lambda: hive.scan(), BASE + 0x7FFFFFF0, "db segment list")
            t = hive.scan(errors="skip")
            status = dict(zip(t.value_token.tolist(), t.value_status.tolist()))
            assert status[rel(layout.vk[("Big", "big")])] == RF_E_CORRUPT


def test_db_segment_list_shorter_than_its_count():
    data, layout = build()
    db = layout.data[("Big", "big")]
    lst, _ = db_segments(data, db)
    put(data, db + 4 + 2, "<H", 500)
    with opened(data) as hive:
        expect_corrupt(lambda: hive.open("Big")["big"], lst, "db segment list at", "500 entries do not fit")


def test_db_segment_too_small():
    data, layout = build()
    db = layout.data[("Big", "big")]
    lst, segs = db_segments(data, db)
    assert len(segs) == 2
    put(data, lst + 4, "<I", rel(segs[1]))       # the short last segment, first
    with opened(data) as hive:
        expect_corrupt(lambda: hive.open("Big")["big"], segs[1], "db segment 0 at", "needs 16344 bytes")


def test_db_segment_not_a_cell():
    data, layout = build()
    db = layout.data[("Big", "big")]
    lst, segs = db_segments(data, db)
    put(data, lst + 8, "<I", rel(segs[1]) + 8)
    with opened(data) as hive:
        expect_corrupt(lambda: hive.open("Big")["big"], segs[1] + 8, "db segment at", "not the start of a cell")


# ---- scan and read_values on damage ---------------------------------------------------

def test_scan_skip_with_a_damaged_vk_signature():
    # A vk whose signature is damaged is not counted in the open-time vk_cells,
    # yet its key still lists it: errors="skip" must give it a status row, not fail.
    data, layout = build()
    vk = layout.vk[("Big", "cell")]
    data[vk + 4:vk + 6] = b"xx"
    with opened(data) as hive:
        expect_corrupt(lambda: hive.scan(), vk, "expected 'vk'")
        t = hive.scan(errors="skip")
        assert t.n_keys == N_KEYS
        bad = t.value_status != 0
        assert int(bad.sum()) == 1 and int(t.value_token[bad][0]) == rel(vk)


def test_scan_skip_with_a_value_listed_twice():
    # Two list entries naming one vk: two rows, more than the hive's vk cells.
    data, layout = build()
    vl = layout.value_list["Big"]
    put(data, vl + 4 + 4, "<I", u32(data, vl + 4))
    with opened(data) as hive:
        for errors in ("strict", "skip"):
            t = hive.scan(errors=errors)
            names = [n for n, r in zip(t.value_names(), t.value_key.tolist())
                     if t.key_paths()[r] == "Big"]
            assert names == ["big", "big", "inl", "str"]


def test_read_values_rows_on_a_healthy_key_of_a_damaged_hive():
    data, layout = build()
    nk_put(data, layout, "A", NK_SUBKEYS, "<I", 0x7FFFFFF0)
    with opened(data) as hive:
        b = hive.open("Big").read_values(["str", "nope", "INL"])
        assert b.status.tolist() == [0, 2, 0]
        assert b.values() == ["hello", None, 7]


# ---- every structure of the layout, one field at a time ------------------------------------

def _all_records(layout):
    for path, off in layout.nk.items():
        yield "nk", off
    for key, off in layout.vk.items():
        yield "vk", off
    for key, off in layout.data.items():
        yield "data", off
    for key, off in layout.subkey_list.items():
        yield "list", off
    for key, off in layout.value_list.items():
        yield "values", off
    for off in layout.sk:
        yield "sk", off


def test_every_record_field_clobbered():
    """Every 4-byte field of the first 0x50 bytes of every record, set to a few
    hostile values: reading everything either works or raises a RegistryError
    (or a ValueError for data that does not decode as its type)."""
    data, layout = build()
    hostile = [0, 0xFFFFFFFF, 0x7FFFFFF0, 0x80000000, 0x00010000, rel(layout.root), rel(layout.nk["A"])]
    outcomes = {"ok": 0, "error": 0}
    no_offset = []
    for kind, off in _all_records(layout):
        for field in range(0, 0x50, 4):
            if off + 4 + field + 4 > len(data):
                continue
            for value in hostile:
                bad = bytearray(data)
                put(bad, off + 4 + field, "<I", value)
                try:
                    with opened(bad) as hive:
                        drain(hive)
                        if HAS_SCAN:
                            hive.scan(errors="skip")
                    outcomes["ok"] += 1
                except regfast.RegistryCorruptError as e:
                    if e.offset is None:
                        no_offset.append(f"{kind}@{off:#x}+{field:#x}={value:#x}: {e}")
                    outcomes["error"] += 1
                except regfast.RegistryError as e:
                    # not corrupt: only the configured limits (values/subkeys counts)
                    assert e.status == RF_E_LIMIT, f"{kind}@{off:#x}+{field:#x}={value:#x}: {e!r}"
                    outcomes["error"] += 1
                except ValueError:
                    outcomes["error"] += 1
    assert not no_offset, f"{len(no_offset)} corrupt errors without an offset:\n" + "\n".join(no_offset[:12])
    assert outcomes["ok"] > 100 and outcomes["error"] > 100


# ---- deleted records (free cells) ---------------------------------------------------------

HAS_DELETED = True
assert hasattr(regfast.Hive, "deleted")

_PARENT_LOOP_SCRIPT = r"""
import resource, struct, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))   # a runaway loop fails, not the machine
import regfast
data = open(sys.argv[1], "rb").read()
recs = regfast.Hive.from_buffer(data).deleted()
for r in recs:
    if isinstance(r, regfast.DeletedKey):
        print(r.offset, r.name, r.parent_path)
"""


def _under_asan() -> bool:
    try:
        with open("/proc/self/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return False


@pytest.mark.skipif(_under_asan(), reason="the child's 1 GB address-space cap cannot hold ASan's shadow memory")
def test_deleted_key_whose_parent_chain_loops(tmp_path):
    # A deleted key names an allocated nk as its parent, but that nk's own
    # parent field points at itself, so the chain never reaches the root.
    # Resolving the parent's path must stop (and give no path), not loop
    # until memory runs out. Run in a child with 1 GB of address space.
    import subprocess
    import sys
    data, layout = build()
    victim, loop = layout.nk["A\\A3"], layout.nk["B\\B2"]
    put(data, victim, "<i", -struct.unpack_from("<i", data, victim)[0])   # A3 is deleted: a free cell
    put(data, victim + 4 + NK_PARENT, "<I", rel(loop))
    put(data, loop + 4 + NK_PARENT, "<I", rel(loop))
    path = tmp_path / "loop.hiv"
    path.write_bytes(bytes(data))
    r = subprocess.run([sys.executable, "-c", _PARENT_LOOP_SCRIPT, str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{victim} A3 None" in r.stdout.splitlines()


def test_deleted_records_of_a_damaged_hive():
    # Free cells are not validated at open: whatever they hold is only read
    # inside the cell. A deleted value whose data offset points anywhere.
    data, layout = build()
    vk = layout.vk[("Big", "cell")]
    put(data, vk, "<i", -struct.unpack_from("<i", data, vk)[0])
    for target in (0x7FFFFFF0, rel(layout.root) + 8, rel(vk)):
        put(data, vk + 4 + VK_DATA, "<I", target)
        with opened(data) as hive:
            recs = [r for r in hive.deleted() if r.offset == vk]
            assert len(recs) == 1 and recs[0].name == "cell"
            payload, allocated = hive.cell(vk)
            assert not allocated and bytes(payload[:2]) == b"vk"
            del payload
        with pytest.raises(FileNotFoundError):
            opened(data).cell(vk + 8)
