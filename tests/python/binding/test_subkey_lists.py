"""Subkey lists that must be reported, not smoothed over (issue 16 §5).

Windows keeps lf/lh/li lists (and an ri's leaves, in turn) sorted by upcased
name and checks it when it loads a hive: CmpCheckRegistry2 compares each
subkey with the one before it (CmpCheckLexicographicalOrder: the earlier name
must sort strictly lower, so a key listed twice fails too) and CmpCheckKey
checks that each subkey's parent field names the key whose list holds it;
with self-healing on, the offending entry is yanked from the list (WRK
base/ntos/config/cmchek.c). yarp's walk raises "Duplicate subkey" and "Wrong
order of subkeys" (Registry.RegistryKey.subkeys).

regfast: a strict read raises RegistryCorruptError where the damage is,
naming the fix (errors="tolerant"); a tolerant open lists every such problem
in hive.problems (kind "subkeys") and its reads give each key once, under the
parent its record names. Lookups by name never rely on the order (a linear
scan with the lh hash), so they find every key of an out-of-order list.
Hives are writer-made, patched after writing.
"""
from __future__ import annotations

import struct

import pytest

import regfast
from regfast.io.writer import build_hive

from conftest import corpus_path

BASE = 4096
RF_E_CORRUPT = 0x20000001
KIDS = ["alpha", "Bravo", "charlie", "DELTA", "echo", "Foxtrot"]
TREE = {"P": {k: {"v": i} for i, k in enumerate(KIDS)}, "Q": {"other": {"w": 1}}, "Z": {}}


def build(index="lh", leaf_max=512):
    data, layout = build_hive(TREE, index=index, leaf_max=leaf_max, timestamp=133444736000000000)
    return bytearray(data), layout


def entries(data, lst):
    """(leaf cell, entry index) of every entry of the list at file offset lst."""
    p = lst + 4
    n = struct.unpack_from("<H", data, p + 2)[0]
    if bytes(data[p:p + 2]) == b"ri":
        out = []
        for i in range(n):
            out += entries(data, BASE + struct.unpack_from("<I", data, p + 4 + 4 * i)[0])
        return out
    return [(lst, i) for i in range(n)]


def entry_slot(data, leaf, i):
    p = leaf + 4
    stride = 4 if bytes(data[p:p + 2]) == b"li" else 8
    return p + 4 + i * stride, stride


def swap(data, layout, a, b):
    """Swaps entries a and b of P's list (hash and all): out of order."""
    es = entries(data, layout.subkey_list["P"])
    (la, ia), (lb, ib) = es[a], es[b]
    pa, stride = entry_slot(data, la, ia)
    pb, _ = entry_slot(data, lb, ib)
    data[pa:pa + stride], data[pb:pb + stride] = bytes(data[pb:pb + stride]), bytes(data[pa:pa + stride])


def strict(data):
    return regfast.Hive.from_buffer(bytes(data))


def tolerant(data):
    return regfast.Hive.from_buffer(bytes(data), errors="tolerant")


def raises_at(fn, offset, *words):
    with pytest.raises(regfast.RegistryCorruptError) as e:
        fn()
    assert e.value.offset == offset, str(e.value)
    for w in words:
        assert w in str(e.value), str(e.value)
    return e.value


@pytest.mark.parametrize("index,leaf_max", [("lh", 512), ("lf", 512), ("li", 512), ("lh", 2)])
def test_out_of_order_list(index, leaf_max):
    data, layout = build(index, leaf_max)
    swap(data, layout, 1, 4)                 # Bravo <-> echo: 'echo' then 'charlie'...
    stored = [KIDS[i] for i in (0, 4, 2, 3, 1, 5)]
    culprit = layout.nk["P\\charlie"]        # the first entry that sorts before its predecessor
    with strict(data) as hive:
        e = raises_at(lambda: hive.open("P").subkey_names(), culprit, "out of order", 'errors="tolerant"')
        assert "'charlie' (0x" in str(e) and "after 'echo'" in str(e)
        raises_at(lambda: list(hive.walk()), culprit, "out of order")
        raises_at(lambda: hive.scan(), culprit, "out of order")
        t = hive.scan(errors="skip")         # skip: every key, the damage in the status column
        status = dict(zip(t.key_paths(), t.key_status.tolist()))
        assert status["P"] == RF_E_CORRUPT and all(status[f"P\\{k}"] == 0 for k in KIDS)
        # lookups never trust the order: every key is found, in any case
        for k in KIDS:
            assert hive.open(f"p\\{k.swapcase()}").name == k
        assert hive.problems == []
    with tolerant(data) as hive:
        assert hive.open("P").subkey_names() == stored
        assert [k.path for k in hive.walk()] == ["", "P"] + [f"P\\{k}" for k in stored] + ["Q", "Q\\other", "Z"]
        (p,) = hive.problems
        assert (p.kind, p.offset) == ("subkeys", culprit) and "out of order" in p.reason
        assert all(hive.open(f"P\\{k}").name == k for k in KIDS)


@pytest.mark.parametrize("index,leaf_max", [("lh", 512), ("li", 512), ("lh", 2)])
def test_key_listed_twice(index, leaf_max):
    data, layout = build(index, leaf_max)
    es = entries(data, layout.subkey_list["P"])
    (l2, i2), (l3, i3) = es[2], es[3]
    p2, stride = entry_slot(data, l2, i2)
    p3, _ = entry_slot(data, l3, i3)
    data[p3:p3 + stride] = bytes(data[p2:p2 + stride])      # charlie, charlie (DELTA gone)
    with strict(data) as hive:
        raises_at(lambda: hive.open("P").subkey_names(), l3, "'charlie' twice", 'errors="tolerant"')
        raises_at(lambda: list(hive.walk()), l3, "twice")
    with tolerant(data) as hive:
        assert hive.open("P").subkey_names() == ["alpha", "Bravo", "charlie", "echo", "Foxtrot"]
        paths = [k.path for k in hive.walk()]
        assert paths.count("P\\charlie") == 1 and "P\\DELTA" not in paths
        (p,) = hive.problems
        assert (p.kind, p.offset) == ("subkeys", l3) and "listed twice" in p.reason
        # DELTA, listed nowhere now, is carved as an unreferenced key
        assert [(r.name, r.source) for r in hive.deleted() if isinstance(r, regfast.DeletedKey)] == \
            [("DELTA", "unreferenced")]


def test_two_keys_of_one_name():
    data, layout = build()
    nk = layout.nk["P\\DELTA"] + 4
    struct.pack_into("<H", data, nk + 0x48, 7)
    data[nk + 0x4C:nk + 0x4C + 7] = b"CHARLIE"               # 'charlie', 'CHARLIE': one name
    with strict(data) as hive:
        raises_at(lambda: hive.open("P").subkey_names(), layout.nk["P\\DELTA"], "two keys named 'CHARLIE'")
    with tolerant(data) as hive:
        assert hive.open("P").subkey_names() == ["alpha", "Bravo", "charlie", "CHARLIE", "echo", "Foxtrot"]
        (p,) = hive.problems
        assert "two keys of one name" in p.reason


def test_key_listed_under_two_parents():
    data, layout = build()
    # Q's list names P\echo instead of Q\other: echo's parent field says P
    lst = layout.subkey_list["Q"]
    slot, _ = entry_slot(data, lst, 0)
    src, _ = entry_slot(data, layout.subkey_list["P"], 4)
    data[slot:slot + 8] = bytes(data[src:src + 8])          # offset and lh hash
    echo = layout.nk["P\\echo"]
    with strict(data) as hive:
        raises_at(lambda: hive.open("Q").subkey_names(), echo, "parent field", 'errors="tolerant"')
        raises_at(lambda: hive.open("Q\\echo"), echo, "parent field")
        raises_at(lambda: list(hive.walk()), echo, "parent field")
        assert hive.open("P\\echo").name == "echo"
    with tolerant(data) as hive:
        assert hive.open("Q").subkey_names() == []          # read under its own parent only
        assert "echo" in hive.open("P").subkey_names()
        with pytest.raises(FileNotFoundError):
            hive.open("Q\\echo")
        paths = [k.path for k in hive.walk()]
        assert paths.count("P\\echo") == 1 and not any(p.startswith("Q\\") for p in paths)
        (p,) = hive.problems
        assert (p.kind, p.offset) == ("subkeys", lst) and "whose parent is" in p.reason
        assert f"0x{layout.nk['P']:x}" in p.reason


@pytest.mark.parametrize("field", ["4 bytes off", "itself", "zero"])
def test_a_parent_field_that_names_no_key_is_read_where_listed(field):
    """A parent field naming no key (damage in the field itself: 4 bytes
    off its key, the key itself, 0) leaves one place the key can belong, the
    list that holds it: a tolerant open reads it and its subtree there (as
    Windows' self-healing check resets the field to that key), and its
    path and parent say so; before, the whole subtree was read nowhere.
    A strict read names the field and the way past it."""
    data, layout = build()
    p = layout.nk["P"]
    echo = layout.nk["P\\echo"]
    bad = {"4 bytes off": p + 4 - BASE, "itself": echo - BASE, "zero": 0}[field]
    struct.pack_into("<I", data, echo + 4 + 0x10, bad)
    with strict(data) as hive:
        raises_at(lambda: hive.open("P").subkey_names(), echo, "which is no key", "where it is listed")
    with tolerant(data) as hive:
        assert hive.open("P").subkey_names() == KIDS
        echo_key = hive.open("P\\echo")
        assert echo_key["v"] == 4 and echo_key.path == "P\\echo" and echo_key.parent.path == "P"
        paths = [k.path for k in hive.walk()]
        assert paths.count("P\\echo") == 1 and len(paths) == 11
        assert hive.scan().key_paths() == paths
        (prob,) = hive.problems
        assert prob.kind == "subkeys" and prob.offset == echo and "read here" in prob.reason


def _li_hive():
    data, layout = build_hive({"P1": {"X": {"sub": {"v": 1}}}, "P2": {"Y": {}}, "R": {}},
                              index="li", timestamp=133444736000000000)
    return bytearray(data), layout


def test_a_key_without_a_parent_has_one_parent_however_often_listed():
    """X's parent field names no key, and P2's list (and X's own: X under
    itself) hold X too. A tolerant open reads X where the scan meets it
    first, P1 (stored pre-order), and only there: accepted under every list,
    X under X under X... would run 512 levels deep, and two such keys
    listing each other would double at each level. Key.parent, Key.path, the
    walk and open() agree."""
    data, layout = _li_hive()
    x, p1, p2 = layout.nk["P1\\X"], layout.nk["P1"], layout.nk["P2"]
    struct.pack_into("<I", data, x + 4 + 0x10, 0x7FFFFFF0)
    struct.pack_into("<I", data, layout.subkey_list["P2"] + 8, x - BASE)            # P2 lists X
    struct.pack_into("<I", data, layout.subkey_list["P1\\X"] + 8, x - BASE)        # X lists X
    with tolerant(data) as hive:
        paths = [k.path for k in hive.walk()]
        assert paths == ["", "P1", "P1\\X", "P2", "R"], paths
        assert hive.scan().key_paths() == paths
        xk = hive.open("P1\\X")
        assert xk.parent.path == "P1" and xk.parent.offset == p1 - BASE and xk.path == "P1\\X"
        assert hive.open("P2").subkey_names() == [] and hive.open("P1\\X").subkey_names() == []
        with pytest.raises(FileNotFoundError):
            hive.open("P2\\X")
        # a key-by-key walk (as `regfast ls -r` does) ends, each key once
        seen, todo = [], [hive.root]
        while todo:
            k = todo.pop()
            seen.append(k.path)
            todo.extend(k.subkeys())
        assert sorted(seen) == sorted(paths)
        assert p2 - BASE not in {k.offset for k in hive.open("P1").subkeys()}
        # the problems say where it is read: at the key for its first list, at the entry for P2's
        why = [(p.offset, p.reason) for p in hive.problems]
        assert any(o == x and f"read here, under the nk at 0x{p1:x}" in r for o, r in why), why
        assert any(o == layout.subkey_list["P2"] and f"read under the nk at 0x{p1:x}" in r for o, r in why), why


@pytest.mark.parametrize("field", ["itself", "no key"])
def test_a_key_listed_under_itself_is_never_its_own_subkey(field):
    """X's list holds X. With X's parent field naming X itself, the parent
    check passed under X: X was its own subkey without end (`ls -r`: 512
    levels; two such keys: 131,330 lines). A key is never a subkey of
    itself, strict or tolerant; under P it is read once."""
    data, layout = _li_hive()
    x = layout.nk["P1\\X"]
    struct.pack_into("<I", data, x + 4 + 0x10, (x - BASE) if field == "itself" else 0x7FFFFFF0)
    struct.pack_into("<I", data, layout.subkey_list["P1\\X"] + 8, x - BASE)        # X lists X
    for open_ in (strict, tolerant):
        with open_(data) as hive:
            if open_ is strict:
                raises_at(lambda: hive.open("P1").subkey_names(), x, "no key")
                continue
            xk = hive.open("P1\\X")
            assert xk.subkey_names() == []      # the entry is listed in problems, and stepped over
            with pytest.raises(FileNotFoundError):
                hive.open("P1\\X\\X")
            assert [k.path for k in hive.walk()] == ["", "P1", "P1\\X", "P2", "P2\\Y", "R"]
            reasons = [p.reason for p in hive.problems]
            assert any("is not a usable key" in r for r in reasons), reasons


def test_two_keys_without_parents_listing_each_other_stay_a_tree():
    data, layout = _li_hive()
    x, y = layout.nk["P1\\X"], layout.nk["P2\\Y"]
    for k in (x, y):
        struct.pack_into("<I", data, k + 4 + 0x10, 0x7FFFFFF0)
    # X's list names Y, P2's list names X (and Y): each is read once, where met first
    struct.pack_into("<I", data, layout.subkey_list["P1\\X"] + 8, y - BASE)
    with tolerant(data) as hive:
        paths = [k.path for k in hive.walk()]
        # Y is met first under X (pre-order: P1, X, then P2): read there only
        assert paths == ["", "P1", "P1\\X", "P1\\X\\Y", "P2", "R"], paths
        assert hive.open("P1\\X\\Y").parent.path == "P1\\X"


def test_healthy_lists_cost_nothing_and_report_nothing():
    data, layout = build("lh", 2)
    with strict(data) as hive:
        assert [k.name for k in hive.open("P").subkeys()] == KIDS
        assert len(list(hive.walk())) == 11
    with tolerant(data) as hive:
        assert hive.problems == []


# ---- the real corpus ----------------------------------------------------------

def test_plaso_corrupt_sub_key_list():
    # log2timeline/plaso test_data/regf/corrupt_sub_key_list.hiv: a root with
    # 100 subkeys "1".."100" in one lf list, entry 16 (key "16") pointing into
    # the middle of a cell (0x5480): a bad entry, not an order problem.
    path = corpus_path("plaso__regf_corrupt_sub_key_list.hiv")
    with regfast.open_hive(path) as hive:
        e = raises_at(lambda: hive.root.subkey_names(), 0x5480, "not the start of a cell", 'errors="tolerant"')
        raises_at(lambda: list(hive.walk()), 0x5480)
        assert hive.open("15").name == "15"
        raises_at(lambda: hive.open("17"), 0x5480)      # strict: the lookup stops at the bad entry
        t = hive.scan(errors="skip")
        assert t.n_keys == 100 and t.key_status[0] == RF_E_CORRUPT
    with regfast.open_hive(path, errors="tolerant") as hive:
        (p,) = hive.problems
        assert p.kind == "subkeys" and "entry 0x5480 is not a usable key" in p.reason
        assert len(list(hive.walk())) == 100
        assert hive.open("17").name == "17" and hive.open("99").name == "99"
        # a name not found may be the bad entry's: "cannot tell", not "missing"
        raises_at(lambda: hive.open("16"), 0x5480)
        raises_at(lambda: hive.open("101"), 0x5480)
        (lost,) = [r for r in hive.deleted() if isinstance(r, regfast.DeletedKey)]
        assert (lost.name, lost.source, lost.parent_path) == ("16", "unreferenced", "")


def test_sam_dupename():
    # EricZimmerman/Registry Hives/SAM_DUPENAME: no list in it names a key
    # twice or out of order, and no key has two values of one name (checked
    # below through strict reads, which would raise). What sets it apart is
    # its size: 0x40000 bytes for 0xA000 bytes of hbins (EZ's test
    # HBinSizeShouldNotMatchReadSize); the 216 KiB after the hbins hold no
    # hbin and no record.
    path = corpus_path("ez__SAM_DUPENAME")
    with regfast.open_hive(path) as hive:
        info = hive.info()
        assert (info.file_size, info.hbins_size) == (0x40000, 0xA000)
        keys = list(hive.walk())
        assert len(keys) == 112
        for key in keys:
            names = [v.name.upper() for v in key.values()]
            assert len(names) == len(set(names))
        assert hive.deleted() == []
    with regfast.open_hive(path, errors="tolerant") as hive:
        assert hive.problems == []


def test_a_key_of_no_name_is_damage_as_windows_finds_it():
    """A name length of 0: Windows' check finds the key damaged and removes
    it from its list (CM_CHECK_REGISTRY_KEY_NAME_LENGTH_ZERO in ReactOS's
    reimplementation of CmCheckRegistry). Read, it took its parent's path:
    a root child's path was "" (the root's) from the walk, and its subkey
    "C" read as a root child. Strict: RegistryCorruptError at its nk;
    tolerant: stepped over with its subtree, and listed."""
    data, layout = build_hive({"A": {"C": {"v": 1}}, "B": {}}, timestamp=0)
    data = bytearray(data)
    a = layout.nk["A"]
    struct.pack_into("<H", data, a + 4 + 0x48, 0)
    with strict(data) as hive:
        raises_at(lambda: list(hive.walk()), a, "a key name of 0 bytes")
        raises_at(lambda: hive.root.subkey_names(), a, "a key name of 0 bytes")
    with tolerant(data) as hive:
        assert [k.path for k in hive.walk()] == ["", "B"]
        assert hive.scan().key_paths() == ["", "B"]
        assert hive.root.subkey_names() == ["B"]
        (p,) = hive.problems
        assert p.kind == "subkeys" and p.offset == a and "a key of no name" in p.reason


def test_a_tolerant_subkey_listing_steps_over_an_entry_that_is_no_key():
    """An entry pointing at a value record: the walk stepped over it, but a
    tolerant Key.subkeys() raised there (and the key's other subkeys were not
    listed). It steps over it too; the open lists it."""
    data, layout = build()
    (leaf, i) = entries(data, layout.subkey_list["P"])[2]
    slot, _ = entry_slot(data, leaf, i)
    struct.pack_into("<I", data, slot, layout.vk[("P\\alpha", "v")] - BASE)
    want = [k for j, k in enumerate(sorted(KIDS, key=str.upper)) if j != 2]
    with strict(data) as hive:
        raises_at(lambda: hive.open("P").subkey_names(), layout.vk[("P\\alpha", "v")], "nk")
    with tolerant(data) as hive:
        assert hive.open("P").subkey_names() == want
        assert [k.name for k in hive.walk("P")][1:] == want
        assert any("is not a usable key" in p.reason for p in hive.problems)
