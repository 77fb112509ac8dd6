"""The Key/Value walk's fast paths answer exactly as the slow ones.

- Key.values() reads a hive file's key with the GIL held when the previous
  read found at most one value, else with it released at once: every order of
  0, 1, few, many (> the 32 stack rows) and big-data values, and a damaged
  key after either kind, must give the same Values and the same errors.
- Value.name/type/value skip the generic attribute lookup for exact Values.
- UTF-16 data is scanned and narrowed 8 or 16 units at a time (SSE2).
- Short Latin-1 names come from a cache of recent names, which must never
  hand out a different name of the same hash.
- While Hive.walk() runs, its keys' values() answer from the walk's scan
  (no read per key): the same Values and the same errors as a key read on
  its own, on every real hive of the corpus; the rows go when the walk ends;
  with a hook or the profiler on, each values() reads its key again.
"""
from __future__ import annotations

import gc
import pickle
import random
import struct
import sys
import tracemalloc

import pytest

import regfast
from regfast._native import decode_value
from regfast.exceptions import RegistryCorruptError, RegistryError
from regfast.io.writer import REG_BINARY, REG_DWORD, REG_SZ, Value, build_hive
from conftest import corpus_names, corpus_path
from isolated import run_isolated

BIG = bytes(range(256)) * 80            # 20 KB: a big-data (db) value in a minor-5 hive


def _values(n, tag, big_at=None):
    vals = {}
    for i in range(n):
        if i == big_at:
            vals[f"{tag}big{i}"] = Value(REG_BINARY, BIG)
        elif i % 3 == 0:
            vals[f"{tag}s{i}"] = f"text {tag} {i} " * (i % 5)
        elif i % 3 == 1:
            vals[f"{tag}d{i}"] = Value(REG_DWORD, i * 7919)
        else:
            vals[f"{tag}b{i}"] = bytes([i % 256]) * (i % 9)
    return vals


# value counts in walk order: every transition between "none or one" and
# "several", a key past the stack's 32 rows after each kind, big data alone,
# big data among several and past the stack
COUNTS = [0, 1, 2, 1, 0, 40, 1, 33, 3, 1, 0, 0, 5, 5, 1, ("big", 1, 0), ("big", 4, 2), 0,
          ("big", 45, 44), 2, 1, 32, 1]


def make_hive_bytes(tree):
    return bytes(build_hive(tree)[0])


def _tree():
    tree = {}
    for i, spec in enumerate(COUNTS):
        n, big = (spec[1], spec[2]) if isinstance(spec, tuple) else (spec, None)
        tree[f"K{i:02d}"] = _values(n, f"k{i}_", big)
    return tree


def _expected(tree):
    from regfast.io.writer import _shorthand_value
    return {name: [(vn, *_shorthand_value(v)) for vn, v in vals.items()] for name, vals in tree.items()}


@pytest.mark.parametrize("copy", [False, True])
def test_values_of_every_count_in_every_order(make_hive, copy):
    tree = _tree()
    built = make_hive(tree)
    want = _expected(tree)
    with regfast.open_hive(built.path, copy=copy) as hive:
        for order in (list(want), list(reversed(want)), random.Random(5).sample(list(want), len(want))):
            for name in order:
                got = [(v.name, v.type, v.raw()) for v in hive.open(name).values()]
                assert got == want[name], name
        # the walk, reading every value's decoded data as the bench does
        for key in hive.walk():
            if not key.path:
                continue
            vals = list(key.values())
            assert [(v.name, v.type) for v in vals] == [(n, t) for n, t, _ in want[key.name]]
            for v, (_, t, raw) in zip(vals, want[key.name]):
                assert v.value == decode_value(t, raw)
                assert v.size == len(raw)


@pytest.mark.parametrize("before", ["K00", "K01", "K05"])   # none, one, many values read just before
@pytest.mark.parametrize("damage", [("values.entry0", 0x7FFFFFF8), ("nk.values", 0x7FFFFFF8)])
def test_a_damaged_key_raises_the_same_after_any_key(make_hive, before, damage):
    tree = _tree()
    tree["K99"] = _values(4, "bad")
    field, value = damage
    target = "K99"
    built = make_hive(tree, corrupt=(field, target, value))
    errors = set()
    for first in (None, before):
        with regfast.open_hive(built.path) as hive:
            if first:
                list(hive.open(first).values())
            with pytest.raises(RegistryCorruptError) as ei:
                list(hive.open("K99").values())
            errors.add((ei.value.winerror, ei.value.offset, str(ei.value)))
            # the hive goes on answering after the error
            assert [v.name for v in hive.open("K01").values()] == ["k1_s0"]
    assert len(errors) == 1, errors


def test_value_attributes_keep_their_rules(make_hive):
    built = make_hive({"A": {"s": "x", "n": 7}})
    hive = regfast.open_hive(built.path)
    s, n = hive.open("A").values()
    assert (s.name, s.type, s.value, n.name, n.type, n.value) == ("s", REG_SZ, "x", "n", REG_DWORD, 7)
    assert getattr(s, "name") == "s" and getattr(s, "size") == 4
    with pytest.raises(AttributeError):
        s.nonexistent  # noqa: B018
    hive.close()
    assert s.name == "s" and s.type == REG_SZ       # plain fields: answer after close, as before
    with pytest.raises(RegistryError) as ei:
        s.value                                     # noqa: B018  (reads the closed hive)
    assert ei.value.winerror == 6


def test_a_value_subclass_keeps_its_own_attributes():
    class Renamed(regfast.Value):
        @property
        def name(self):
            return "renamed"

    v = Renamed.__new__(Renamed)
    assert v.name == "renamed"
    with pytest.raises(RegistryError) as ei:
        v.type                                      # noqa: B018
    assert ei.value.winerror == 6


def _reference(t, raw):
    """What decode_value promises (Value.value's docstring, CPython winreg)."""
    s = raw[: len(raw) // 2 * 2].decode("utf-16-le", "surrogatepass")
    if t in (1, 2):
        return s.split("\0")[0]
    if t == 6:
        return s
    if s.endswith("\0\0"):
        s = s[:-2]
    elif s.endswith("\0"):
        s = s[:-1]
    return s.split("\0") if s else []


def test_utf16_decoding_at_every_length_and_nul_position():
    rnd = random.Random(13)
    alphabets = ["ab", "a\xe9", "a\u20ac", "a\ud800", "a\U0001f600", "a\x7f\x80\xff\u0100"]
    for n in range(0, 72):
        for alphabet in alphabets:
            for nul_at in (None, 0, n // 2, n - 1, n):
                chars = [rnd.choice(alphabet) for _ in range(n)]
                if nul_at is not None and 0 <= nul_at < n:
                    chars[nul_at] = "\0"
                raw = "".join(chars).encode("utf-16-le", "surrogatepass")
                for tail in (b"", b"\x41"):             # an odd trailing byte is ignored
                    for t in (1, 2, 6, 7):
                        assert decode_value(t, raw + tail) == _reference(t, raw + tail), (t, raw + tail)


def test_names_that_share_a_cache_slot_stay_distinct(make_hive):
    # same length, same first and last 8 bytes: the same slot of the name
    # cache; Latin-1 and ASCII names; names too long to be cached
    names = [f"AAAAAAAA{c}BBBBBBBB" for c in "abcdefgh"] + [f"AAAAAAAA{c}{c}BBBBBBBB" for c in "xyz"]
    names += ["caf\xe9", "cafe", "\xe9t\xe9", "x" * 48, "x" * 49, "y" * 49, "", "0", "1"]
    tree = {f"K{i}": {n: i for n in names[i % 3:] + names[: i % 3]} for i in range(6)}
    built = make_hive(tree)
    with regfast.open_hive(built.path) as hive:
        for _ in range(2):                              # the second pass reads the cached names
            for key in hive.walk():
                if key.path:
                    i = int(key.name[1:])
                    assert [v.name for v in key.values()] == names[i % 3:] + names[: i % 3]


# ---- values() from the walk's scan ------------------------------------------------

# corpus files that are no hive: a PE file, a transaction log, a Windows 9x CREG file
NOT_HIVES = {"ez__NotAHive", "dfwinreg__NTUSER.DAT.LOG", "dfwinreg__USER.DAT_win9x_creg"}


def _record(v):
    return v.name, v.type, v.size, v.offset, v.well_formed, v.raw(), v.value


def _values_or_error(key):
    try:
        return [_record(v) for v in key.values()]
    except RegistryError as e:
        return ("error", e.winerror, e.offset, str(e))


@pytest.mark.parametrize("mode", ["strict", "tolerant", "copy", "skip-walk", "subtree"])
@pytest.mark.parametrize("name", corpus_names())
@pytest.mark.filterwarnings("ignore::regfast.DirtyHiveWarning")
def test_walked_values_equal_values_read_key_by_key(name, mode):
    """Every corpus hive (written by Windows): each key's values() during the
    walk (from its scan) equals the same key's values() after the walk (a
    read of that key alone), Value by Value, errors included; over a strict
    and a tolerant open, a private copy (copy=True), a strict open walked
    with errors="skip", and the walk of a subtree."""
    try:
        hive = regfast.open_hive(corpus_path(name), copy=mode == "copy",
                                 errors="tolerant" if mode in ("tolerant", "subtree") else "strict")
    except RegistryError:
        assert name in NOT_HIVES        # nothing to walk (test_corpus checks how they fail)
        return
    with hive:
        path = None
        if mode == "subtree":           # the first key below the root that has subkeys
            t = hive.scan(values=False)
            paths, depth = t.key_paths(), t.key_depth.tolist()
            parents = set(t.key_parent.tolist())
            path = next((paths[i] for i in range(len(paths)) if depth[i] == 1 and i in parents), None)
            if path is None:
                return                  # (a hive of one level: the other modes walk it)
        during, keys = [], []
        try:
            for key in hive.walk(path, errors="skip" if mode == "skip-walk" else None):
                keys.append(key)
                during.append(_values_or_error(key))
        except RegistryCorruptError:
            assert mode not in ("tolerant", "subtree")  # a strict open stops at a bad hbin, a strict walk
                                                         # at a bad list too
        after = [_values_or_error(key) for key in keys]
        assert during == after


@pytest.mark.parametrize("damage", [("vk.sig", ("K05", "k5_d1"), 0x7878), ("values.entry0", "K05", 0x7FFFFFF8),
                                    ("nk.values", "K05", 0x7FFFFFF8)])
def test_a_damaged_value_fails_only_its_keys_values_during_a_walk(make_hive, damage):
    """A strict walk's scan records a damaged value (or value list) instead
    of failing: every key is yielded, the damaged key's values() raises what
    a read of that key alone raises, and the other keys read fine."""
    tree = _tree()
    built = make_hive(tree, corrupt=damage)
    with regfast.open_hive(built.path) as hive:
        with pytest.raises(RegistryCorruptError) as alone:
            list(hive.open("K05").values())
        with pytest.raises(RegistryCorruptError):
            hive.scan()                         # a strict scan still stops there
        seen = []
        for key in hive.walk():
            seen.append(key.name)
            if key.name == "K05":
                with pytest.raises(RegistryCorruptError) as during:
                    list(key.values())
                assert (during.value.offset, str(during.value)) == (alone.value.offset, str(alone.value))
            elif key.path:
                assert len(list(key.values())) == len(tree[key.name])
        assert seen[1:] == list(tree)


def test_a_walk_of_keys_sharing_value_lists_reads_them_key_by_key():
    """Damage no real hive shows: 300 keys whose nk names another key's
    list of 200 values. More value rows than a scan holds (4x the hive's
    cells): scan() fails, and the walk, which did not scan values before,
    must not: it reads such keys' values one by one (the same Values)."""
    tree = {"A": {f"v{i}": i for i in range(200)}}
    tree.update({f"K{i:03d}": {} for i in range(300)})
    data, layout = build_hive(tree)
    data = bytearray(data)
    for i in range(300):                # value count 200, value list A's
        struct.pack_into("<II", data, layout.nk[f"K{i:03d}"] + 4 + 0x24, 200, layout.value_list["A"] - 4096)
    for errors in ("strict", "tolerant"):
        with regfast.Hive.from_buffer(bytes(data), errors=errors) as hive:
            with pytest.raises(RegistryCorruptError, match="more records than the hive can hold"):
                hive.scan(errors="skip")
            want = [(v.name, v.value) for v in hive.open("A").values()]
            seen = 0
            for key in hive.walk():
                if key.name.startswith("K"):
                    assert [(v.name, v.value) for v in key.values()] == want
                    seen += 1
            assert seen == 300


def test_a_scan_tables_keys_read_their_values():
    """_walk_keys of a table scan() made (not the walk's own: its big data
    sits in an arena, its offsets carry the arena bit) yields keys that read
    their values themselves: the walk's rows are never read from another
    kind of table."""
    built = make_hive_bytes(_tree())
    with regfast.Hive.from_buffer(built) as hive:
        table = hive.scan(include_deleted=True)
        got = {k.name: [_record(v) for v in k.values()] for k in table._walk_keys() if k.path}
        want = {k.name: [_record(v) for v in k.values()] for k in hive.root.subkeys()}
        assert got == want and any(v[2] > 16344 for vals in want.values() for v in vals)


def test_the_walks_rows_go_when_the_walk_ends():
    """A walk holds its scan's value columns only while it runs: closing it
    frees them though one of its Keys lives on, and that Key still answers
    (by reading its key)."""
    path = corpus_path("plaso__regf_UsrClass.dat")         # 19,987 values: ~560 KB of columns
    with regfast.open_hive(path) as hive:
        gc.collect()
        tracemalloc.start()
        try:
            walk = hive.walk()
            root = next(walk)
            held = tracemalloc.get_traced_memory()[0]
            walk.close()
            gc.collect()
            left = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert held - left > 19_987 * 24, (held, left)
        assert [_record(v) for v in root.values()] == [_record(v) for v in hive.root.values()]


def test_a_profiled_walk_reads_each_keys_values(make_hive):
    """With the profiler on, a walk's values() read their keys (as the
    caller's code asks), so the profile shows one value read per key; with
    it off, the walk's one scan read them all."""
    tree = _tree()
    built = make_hive(tree)
    with regfast.open_hive(built.path) as hive:
        with regfast.profile() as prof:
            got = [[_record(v) for v in key.values()] for key in hive.walk()]
        names = prof.op_names()
        reads = sum(1 for n in names if n in ("read_values", "key_values"))
        assert reads == len(tree) + 1                           # every key, the root too
        with regfast.profile() as prof:
            assert [[_record(v) for v in key.values()] for key in hive.walk()] == got
        # (the profiler off while the walk started: its scan answered)
        assert [[_record(v) for v in key.values()] for key in hive.walk()] == got


def test_a_walk_collected_while_its_key_reads_values(make_hive):
    """A walk generator left in a reference cycle ends when the collector
    finds it, and the allocation of a key's values() list can be what runs
    the collector (here made sure of: the collector off while the cycle is
    made, a threshold of 1, the list free list emptied). The call holds the
    rows it reads for its own length, so it still answers right; it read
    through the dropped columns before (a crash: hence a child process)."""
    built = make_hive(_tree())
    run_isolated("""
        import gc, sys
        import regfast

        class Holder:
            pass

        with regfast.open_hive(sys.argv[1]) as hive:
            for name in ("K01", "K05", "K07", "K15"):       # 1, 40, 33 values; big data
                want = [(v.name, v.type, v.raw()) for v in hive.open(name).values()]
                gc.collect()
                gc.disable()                    # the cycle below stays in the youngest generation
                h = Holder()
                h.me, h.walk = h, hive.walk()
                key = next(k for k in h.walk if k.name == name)
                hold = [[] for _ in range(200)] # no list left in the free list
                del h                           # the generator lives on in the cycle alone
                gc.set_threshold(1)
                gc.enable()
                got = key.values()              # its list's allocation collects the cycle
                gc.set_threshold(700, 10, 10)
                assert [(v.name, v.type, v.raw()) for v in got] == want, name
                del hold
        print("ok")
    """, str(built.path))


@pytest.mark.parametrize("name", corpus_names())
@pytest.mark.filterwarnings("ignore::regfast.DirtyHiveWarning")
def test_walked_paths_asked_in_any_order_after_close(name):
    """Hive.walk builds no path up front: each Key links to its parent and
    builds its path when asked. On every corpus hive, the walked keys'
    paths, asked in a random order after the hive is closed, are the scan's
    key paths; those of a subtree's walk are its part of them."""
    try:
        hive = regfast.open_hive(corpus_path(name), errors="tolerant")
    except RegistryError:
        assert name in NOT_HIVES        # nothing to walk (test_corpus checks how they fail)
        return
    with hive:
        t = hive.scan(values=False, errors="skip")
        want, depth = t.key_paths(), t.key_depth.tolist()
        keys = list(hive.walk(errors="skip"))
        sub = next((want[i] for i in range(len(want)) if depth[i] == 1
                    and i + 1 < len(want) and depth[i + 1] == 2), None)
        sub_keys = list(hive.walk(sub, errors="skip")) if sub is not None else []
    order = list(range(len(keys)))
    random.Random(name).shuffle(order)
    got = [None] * len(keys)
    for i in order:
        got[i] = keys[i].path
    assert got == want
    if sub is not None:
        assert [k.path for k in reversed(sub_keys)][::-1] == [
            p for p in want if p == sub or p.startswith(sub + "\\")]


def test_a_walk_builds_paths_only_when_asked():
    """A walk's keys carry no path until one is asked for (a path nobody
    reads was ~5% of a Key walk): asking for them all afterwards allocates
    them then, and a key's repr and pickle still name its path."""
    path = corpus_path("plaso__NTUSER-WIN7.DAT")
    with regfast.open_hive(path) as hive:
        keys = list(hive.walk())
        gc.collect()
        tracemalloc.start()
        try:
            paths = [k.path for k in keys]
            grown = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        built = sum(sys.getsizeof(p) for p in paths if "\\" in p)   # (a root child's path is its name)
        assert grown >= built > 100_000, (grown, built)
        deep = list(hive.walk())[-1]
        assert pickle.loads(pickle.dumps(deep)).path == paths[-1]
        assert repr(deep) == f"<regfast.Key {paths[-1]!r}>"
