"""regfast.diff's column comparison (regfast.hive.compare) against its
reference, Snapshot.from_hive + diff_snapshots (the model live watches use):
the same Diff, change for change, on randomized edits of writer-made hives,
damaged hives read tolerantly, and the real hives of the corpus."""
from __future__ import annotations

import random

import pytest

import regfast
from regfast.hive.compare import diff_tables
from regfast.hive.diff import Snapshot, diff_snapshots
from regfast.io.writer import REG_BINARY, REG_EXPAND_SZ, REG_QWORD, REG_SZ, Key, Value, build_hive, \
    build_security_descriptor
from conftest import corpus_path

T0 = 133_000_000_000_000_000
SDS = [build_security_descriptor("S-1-5-32-544", "S-1-5-18", [(0, 2, 0xF003F, sid)])
       for sid in ("S-1-5-32-544", "S-1-1-0", "S-1-5-11")]
NAMES = ["a", "A", "b", "Bee", "data", "DATA", "x" * 40, "é", "É", "Ω", "ω", "v1", "v2", "", "Zed"]


def _value(rng: random.Random):
    kind = rng.randrange(7)
    if kind == 0:
        return rng.randrange(1 << 32)
    if kind == 1:
        return rng.choice(["", "abc", "ABC", "ünï", "x" * rng.randrange(300)])
    if kind == 2:
        return Value(REG_BINARY, rng.randbytes(rng.choice([0, 3, 4, 5, 100, 17_000])))
    if kind == 3:
        return [rng.choice(["p", "q", "Q"]) for _ in range(rng.randrange(4))]
    if kind == 4:
        return Value(REG_QWORD, rng.randrange(1 << 64))
    if kind == 5:
        return Value(REG_SZ, rng.choice(["ab", "ab\0x", "ab\0y"]).encode("utf-16-le"))
    return Value(REG_EXPAND_SZ, rng.choice(["%A%", "%B%"]))


def _tree(rng: random.Random, depth: int = 0) -> Key:
    values = {}
    for _ in range(rng.randrange(6)):
        name = rng.choice(NAMES)
        if name.upper() not in {n.upper() for n in values}:
            values[name] = _value(rng)
    subkeys = {}
    for _ in range(rng.randrange(4) if depth < 4 else 0):
        name = rng.choice(["K", "k", "Sub", "SUB", "Ä", "ä", "deep", "Other", "x y"])
        if name.upper() not in {n.upper() for n in subkeys}:
            subkeys[name] = _tree(rng, depth + 1)
    return Key(subkeys=subkeys, values=values, class_name=rng.choice([None, None, "C1", "c1"]),
               last_write=T0 + rng.randrange(3), security=rng.choice([None, *SDS]))


def _mutate(rng: random.Random, key: Key, depth: int = 0) -> Key:
    values = dict(key.values)
    for name in list(values):
        r = rng.random()
        if r < 0.1:
            del values[name]
        elif r < 0.2:
            values[name] = _value(rng)
        elif r < 0.25:                      # the same value, its name in another case
            values[name.swapcase() if name.swapcase().upper() == name.upper() else name] = values.pop(name)
    if rng.random() < 0.2:
        name = rng.choice(NAMES)
        if name.upper() not in {n.upper() for n in values}:
            values[name] = _value(rng)
    subkeys = {}
    for name, sub in key.subkeys.items():
        r = rng.random()
        if r < 0.08:
            continue
        if r < 0.12:
            name = name.swapcase() if name.swapcase().upper() == name.upper() else name
        subkeys[name] = _mutate(rng, sub, depth + 1) if isinstance(sub, Key) else sub
    if rng.random() < 0.1 and depth < 4 and "NEW" not in subkeys:
        subkeys["NEW"] = _tree(rng, depth + 1)
    return Key(
        subkeys=subkeys,
        values=values,
        class_name=key.class_name if rng.random() < 0.9 else rng.choice([None, "C2"]),
        last_write=key.last_write if rng.random() < 0.8 else T0 + rng.randrange(3),
        security=key.security if rng.random() < 0.9 else rng.choice(SDS),
    )


def _shape(d) -> tuple:
    """Everything a Diff says, data included."""
    def vs(v):
        return None if v is None else (v.name, v.type, v.size, v.data)
    return (d.root, [(c.kind, c.path, c.name, vs(c.old), vs(c.new), c.old_time, c.new_time, c.old_text,
                      c.new_text) for c in d], d.damaged, d.truncated)


def _both(ha, hb, path=None, touched=True):
    ref = diff_snapshots(Snapshot.from_hive(ha, path), Snapshot.from_hive(hb, path), touched=touched)
    got = diff_tables(ha.scan(path), hb.scan(path), touched=touched)
    return ref, got


@pytest.mark.parametrize("seed", range(40))
def test_column_diff_equals_the_snapshot_diff(seed, tmp_path):
    rng = random.Random(seed)
    base = _tree(rng)
    edited = _mutate(rng, base)
    paths = []
    for name, tree in (("a", base), ("b", edited)):
        p = tmp_path / f"{name}.hiv"
        p.write_bytes(build_hive(tree, timestamp=T0)[0])
        paths.append(p)
    with regfast.open_hive(paths[0]) as ha, regfast.open_hive(paths[1]) as hb:
        for touched in (True, False):
            ref, got = _both(ha, hb, touched=touched)
            assert _shape(got) == _shape(ref)
            back_ref, back = _both(hb, ha, touched=touched)
            assert _shape(back) == _shape(back_ref)
        assert not diff_tables(ha.scan(), ha.scan())
        sub = next((k.name for k in ha.root.subkeys() if hb.root.subkey_names() and
                    k.name.upper() in {n.upper() for n in hb.root.subkey_names()}), None)
        if sub is not None:
            ref, got = _both(ha, hb, sub)
            assert _shape(got) == _shape(ref)


@pytest.mark.parametrize("corrupt", [("vk.sig", ("K", "v"), 0x7878), ("nk.security", "K", 0x7878),
                                     ("list.sig", "K", 0x7878)])
def test_damaged_hives_read_tolerantly_give_the_same_diff(make_hive, corrupt):
    tree = {"K": {"v": 1, "w": "x", "Sub": {"s": 2}}, "L": {"u": 3}}
    good = make_hive(tree, timestamp=T0)
    bad = make_hive(tree, timestamp=T0, corrupt=corrupt)
    with regfast.open_hive(good.path) as hg, regfast.open_hive(bad.path, errors="tolerant") as hb:
        for a, b in ((hg, hb), (hb, hg), (hb, hb)):
            ref, got = _both(a, b)
            assert _shape(got) == _shape(ref) and got.damaged


def test_a_value_named_twice_and_a_vk_listed_twice(tmp_path):
    """Damage a strict read lets pass: two values of one folded name (the
    first compared, the key damaged), one vk listed twice (one value)."""
    tree = {"K": {"V": 1, "W": 2, "x": 3}}
    data, layout = build_hive(tree, timestamp=T0)
    twice = bytearray(data)
    i = twice.find(b"vk\x01\x00")
    while twice[i + 20:i + 21] != b"W":
        i = twice.find(b"vk\x01\x00", i + 1)
    twice[i + 20] = ord("v")             # "W" renamed "v": two values of one folded name
    (tmp_path / "a.hiv").write_bytes(data)
    (tmp_path / "b.hiv").write_bytes(bytes(twice))
    relisted = bytearray(data)
    vl = layout.value_list["K"]
    relisted[vl + 8:vl + 12] = relisted[vl + 4:vl + 8]     # the list names its first vk twice
    (tmp_path / "c.hiv").write_bytes(bytes(relisted))
    with regfast.open_hive(tmp_path / "a.hiv") as a, regfast.open_hive(tmp_path / "b.hiv") as b, \
            regfast.open_hive(tmp_path / "c.hiv") as c:
        for x, y in ((a, b), (b, a), (a, c), (c, a), (b, c), (b, b)):
            ref, got = _both(x, y)
            assert _shape(got) == _shape(ref)
        assert _both(a, b)[1].damaged == [("new", "K")]


@pytest.mark.parametrize("pair", [("ez__SAM", "plaso__regf_SAM"), ("plaso__NTUSER.DAT", "dfwinreg__NTUSER.DAT"),
                                  ("ez__SAM", "ez__SAM_DUPENAME"), ("plaso__NTUSER-WIN7.DAT", "plaso__NTUSER.DAT")])
def test_real_hives(pair):
    a, b = (corpus_path(n) for n in pair)
    with regfast.open_hive(a) as ha, regfast.open_hive(b) as hb:
        ref, got = _both(ha, hb)
        assert _shape(got) == _shape(ref)
        assert regfast.diff(ha, hb).summary() == ref.summary()


def _renamed_key(tree, path: str, new: bytes) -> bytes:
    """The hive of `tree` with the key at `path` renamed in place (its
    compressed name, same length): names the writer refuses."""
    data, layout = build_hive(tree, timestamp=T0)
    b = bytearray(data)
    off = layout.nk[path]
    assert b[off + 4:off + 6] == b"nk" and int.from_bytes(b[off + 0x4C:off + 0x4E], "little") == len(new)
    b[off + 0x50:off + 0x50 + len(new)] = new
    return bytes(b)


def test_a_key_name_holding_a_backslash(tmp_path):
    """A stored name "A\\B" (a crafted hive; Windows' check allows none)
    beside the key A\\B: its path is A\\B's, as snapshots key it. The
    column diff keyed it by (parent, name) and reported a key added that
    both hives hold, or a change the reference leaves to `damaged`."""
    (tmp_path / "plain.hiv").write_bytes(build_hive({"A": {"B": {"v": 1}}}, timestamp=T0)[0])
    for name, v in (("one", 1), ("two", 2)):
        (tmp_path / f"{name}.hiv").write_bytes(
            _renamed_key({"A": {"B": {"v": 1}}, "AxB": {"v": v}}, "AxB", b"A\\B"))
    with regfast.open_hive(tmp_path / "plain.hiv") as p, regfast.open_hive(tmp_path / "one.hiv") as a, \
            regfast.open_hive(tmp_path / "two.hiv") as b:
        assert [k.path for k in a.walk()].count("A\\B") == 2
        for x, y in ((p, a), (a, p), (a, b), (b, a), (a, a)):
            ref, got = _both(x, y)
            assert _shape(got) == _shape(ref)
        assert not _both(p, a)[1] and _both(p, a)[1].damaged == [("new", "A\\B")]
