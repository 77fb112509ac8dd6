"""Property tests (Hypothesis).

(a) Round trip: a random tree (names with ASCII, Latin-1, other BMP and astral
    characters; values of every type including big data; every index kind,
    leaf size and format version) written by regfast's writer reads back
    exactly as written -- through walk/values, through lookups by path, and
    through Hive.scan -- and a sample agrees with hivex.
(b) Robustness: random byte flips, truncations and hostile 4-byte overwrites
    of record fields of valid hives. Opening and reading everything either
    works or raises regfast.RegistryError / ValueError; nothing else, no crash,
    no hang (a faulthandler watchdog per example turns a C-level hang into a
    failure with a traceback).

Normal runs do a few hundred examples (the file stays well under a minute);
``-m slow`` runs the long versions.
"""
from __future__ import annotations

import faulthandler
import functools
import gc
import string
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import regfast
from regfast.io.writer import (REG_BINARY, REG_DWORD, REG_DWORD_BIG_ENDIAN, REG_EXPAND_SZ, REG_LINK,
                            REG_MULTI_SZ, REG_NONE, REG_QWORD, REG_RESOURCE_LIST, REG_SZ, Key, Value,
                            _checksum, build_hive, build_security_descriptor, upcase_name)

from conftest import expected_tree, regfast_tree
from oracle import hivex_available, hivex_tree, require_hivex

# These APIs are part of regfast: their absence must fail, not skip.
HAS_SCAN = True
assert hasattr(regfast.Hive, "scan")
HAS_READ_VALUES = True
assert hasattr(regfast.Key, "read_values")
ALLOWED = (regfast.RegistryError, ValueError)
TS = 0x01D0000000000000


@pytest.fixture
def slow_run():
    """Marks the long versions (also marked slow): they run in the full suite
    and in CI (~2 min); deselect them with -m "not slow" for a quick run."""


class watchdog:
    """Kills the run with every thread's stack if one example takes longer
    than `seconds`: a hang inside C cannot be interrupted any other way."""

    def __init__(self, seconds=30):
        self.seconds = seconds

    def __enter__(self):
        faulthandler.dump_traceback_later(self.seconds, exit=True)

    def __exit__(self, *exc):
        faulthandler.cancel_dump_traceback_later()
        return False


# ---- (a) strategies for trees ----------------------------------------------

def utf16_units(s: str) -> int:
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


NAME_CHAR = st.one_of(
    st.sampled_from(string.ascii_letters + string.digits + " _-.{}$#"),
    st.characters(min_codepoint=0xA0, max_codepoint=0xFF),                      # Latin-1: stored compressed
    st.characters(min_codepoint=0x100, max_codepoint=0x2FFF, exclude_categories=("Cs",)),
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),                  # CJK
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, exclude_categories=("Cs",)),  # astral
)

KEY_NAME = st.one_of(
    st.text(NAME_CHAR, min_size=1, max_size=12),
    st.text(st.sampled_from(string.ascii_letters), min_size=240, max_size=255),    # the 255 limit
    st.text(NAME_CHAR, min_size=100, max_size=200),
).filter(lambda s: "\\" not in s and "\0" not in s and utf16_units(s) <= 255)

VALUE_NAME = st.one_of(
    st.just(""),
    st.text(NAME_CHAR, min_size=1, max_size=16),
    st.text(NAME_CHAR, min_size=256, max_size=400),
).filter(lambda s: "\0" not in s)

TYPES = [REG_NONE, REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_DWORD_BIG_ENDIAN, REG_LINK,
         REG_MULTI_SZ, REG_RESOURCE_LIST, REG_QWORD, 0xFFFF0012, 0x12345678]


def _pattern(n: int, seed: int) -> bytes:
    """n bytes of data without asking Hypothesis for n random bytes."""
    block = bytes((i * 131 + seed) & 0xFF for i in range(256))
    return (block * (n // 256 + 1))[:n]


VALUE_DATA = st.one_of(
    st.text(NAME_CHAR, max_size=40),                                            # REG_SZ
    st.integers(0, 2**32 - 1),                                                  # REG_DWORD
    st.integers(2**32, 2**64 - 1),                                              # REG_QWORD
    st.binary(max_size=40),                                                     # REG_BINARY, inline 0..4
    st.lists(st.text(NAME_CHAR.filter(lambda c: c != "\0"), min_size=1, max_size=8), max_size=4),
    st.builds(Value, st.sampled_from(TYPES) | st.integers(0, 2**32 - 1), st.binary(max_size=64)),
    st.builds(lambda t, n, seed: Value(t, _pattern(n, seed)), st.sampled_from(TYPES),
              st.integers(16340, 16350) | st.integers(16345, 60000), st.integers(0, 255)),
)
# big data is one branch of seven: frequent enough to hit every segment path

CUSTOM_SD = [
    build_security_descriptor("S-1-5-18", "S-1-5-18", [(0, 0x02, 0x000F003F, "S-1-5-18")]),
    build_security_descriptor("S-1-5-32-544", "S-1-5-18",
                              [(1, 0x03, 0x00020019, "S-1-1-0"), (0, 0x02, 0x000F003F, "S-1-5-32-544")],
                              control=0x8C04),
]


@st.composite
def trees(draw, depth=0):
    vnames = draw(st.lists(VALUE_NAME, max_size=4, unique_by=upcase_name))
    values = {n: draw(VALUE_DATA) for n in vnames}
    subkeys = {}
    if depth < 3:
        knames = draw(st.lists(KEY_NAME, max_size=4 if depth < 1 else 2, unique_by=upcase_name))
        for n in knames:
            subkeys[n] = draw(trees(depth + 1))
    class_name = draw(st.none() | st.text(NAME_CHAR, max_size=20))
    security = draw(st.none() | st.sampled_from(CUSTOM_SD))
    return Key(subkeys=subkeys, values=values, class_name=class_name, security=security)


WRITER_OPTIONS = st.fixed_dictionaries({
    "minor": st.sampled_from([3, 4, 5, 6]),
    "index": st.sampled_from(["auto", "lh", "lf", "li"]),
    "leaf_max": st.sampled_from([1, 2, 3, 512]),
    "value_list_order": st.sampled_from(["given", "sorted"]),
    "root_name": st.sampled_from(["ROOT", "CMI-CreateHive{D43B12B8}", "\u6839"]),
})


def scan_tree(hive):
    """The regfast_tree shape, read through one Hive.scan."""
    t = hive.scan()
    paths = t.key_paths()
    names = t.value_names()
    out = {p: {"values": {}, "class": None} for p in paths}
    for i, (row, name, vtype) in enumerate(zip(t.value_key.tolist(), names, t.value_type.tolist())):
        out[paths[row]]["values"][name] = (vtype, bytes(t.value_data(i)))
    for p in paths:
        out[p]["class"] = hive.open(p).class_name if p else hive.root.class_name
    return out


def check_round_trip(tree, options):
    data, _layout = build_hive(tree, timestamp=TS, **options)
    want = expected_tree(tree)
    with watchdog(), regfast.Hive.from_buffer(data) as hive:
        assert hive.info().version == (1, options["minor"])
        assert hive.root.name == options["root_name"]
        assert regfast_tree(hive) == want
        for path, entry in list(want.items())[:25]:
            key = hive.open(path)
            assert key.path == path
            assert key.name == (path.rpartition("\\")[2] if path else options["root_name"])
            # case-insensitive, the way Windows folds (one UTF-16 unit at a time)
            assert hive.open(upcase_name(path)) == key
            assert hive.open(path.lower() if path.isascii() else path) == key
            for vname, (vtype, raw) in list(entry["values"].items())[:5]:
                v = key.value(vname)
                assert (v.type, v.raw(), v.size) == (vtype, raw, len(raw))
                assert key.value(upcase_name(vname)).raw() == raw
            if HAS_READ_VALUES and entry["values"]:
                batch = key.read_values(list(entry["values"]))
                # 13: an integer type whose size does not fit (data still there)
                assert batch.status.tolist() == [
                    13 if (t in (4, 5) and len(raw) != 4) or (t == 11 and len(raw) != 8) else 0
                    for t, raw in entry["values"].values()]
                assert [bytes(batch.buffer(i)) for i in range(len(batch))] == \
                    [raw for _, raw in entry["values"].values()]
        if HAS_SCAN:
            got = scan_tree(hive)
            assert got == want
            del got
    return data


@settings(max_examples=80, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example])
@given(trees(), WRITER_OPTIONS)
@example(Key(subkeys={"a": {}, "A\u00e9": {"\U0001F600": {"v": Value(0xFFFF0012, b"\x07")}}}),
         {"minor": 3, "index": "li", "leaf_max": 1, "value_list_order": "given", "root_name": "ROOT"})
def test_random_trees_read_back_exactly(tree, options):
    check_round_trip(tree, options)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example, HealthCheck.function_scoped_fixture])
@given(trees(), WRITER_OPTIONS)
def test_random_trees_read_back_exactly_long(slow_run, tree, options):
    check_round_trip(tree, options)


@settings(max_examples=12, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example])
@given(trees(), WRITER_OPTIONS)
def test_random_trees_agree_with_hivex(tree, options):
    if not hivex_available():
        require_hivex()          # skips loudly (fails in CI)
    data = check_round_trip(tree, options)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "h.hiv"
        path.write_bytes(data)
        assert hivex_tree(path) == expected_tree(tree)


# ---- (b) damaged hives ------------------------------------------------------------

BASE_TREES = {
    "rich": (Key(subkeys={
        "A": Key(subkeys={f"k{i}": {"v": i, "s": f"s{i}"} for i in range(7)},
                 values={"": "default", "bin": b"\x01\x02\x03", "dw": 5, "multi": ["a", "b"]},
                 class_name="ClassA", security=CUSTOM_SD[1]),
        "Big": {"big": _pattern(40000, 3), "cell": b"c" * 200, "sz": "hello",
                "q": Value(REG_QWORD, 2**40), "dev": Value(0xFFFF0012, b"\x07")},
        "\u03a9mega": {"\u540d\u524d": "\u5024", "x": {"y": {"z": {}}}},
    }), {"leaf_max": 3}),
    "li-1.3": ({"P": {f"n{i:02d}": {"d": b"x" * (i * 40)} for i in range(12)}, "Q": {"v": 1}},
               {"minor": 3, "index": "li", "leaf_max": 4}),
    "lf-multi-hbin": ({f"K{i:02d}": {"blob": bytes([i]) * 700, "n": i} for i in range(14)},
                      {"minor": 4, "index": "lf"}),
}


@functools.lru_cache(maxsize=None)
def base_layout(name):
    tree, kw = BASE_TREES[name]
    return build_hive(tree, timestamp=TS, **kw)


def known_case(name, path, field, value):
    """A base hive with one nk field set: pinned examples for damage that
    random search finds only now and then."""
    data, layout = base_layout(name)
    buf = bytearray(data)
    struct.pack_into("<I", buf, layout.nk[path] + 4 + field, value)
    return bytes(buf)


def known_value_list_entry(name, path, i, value):
    data, layout = base_layout(name)
    buf = bytearray(data)
    struct.pack_into("<I", buf, layout.value_list[path] + 4 + 4 * i, value)
    return bytes(buf)


@functools.lru_cache(maxsize=None)
def base_hive(name):
    data, layout = base_layout(name)
    records = sorted(set(layout.nk.values()) | set(layout.vk.values()) | set(layout.data.values())
                     | set(layout.subkey_list.values()) | set(layout.value_list.values())
                     | set(layout.sk) | set(layout.class_name.values()))
    pointers = [o - 4096 for o in records] + [o - 4096 + 8 for o in records[:8]]
    return data, tuple(records), tuple(pointers)


def attempt(fn):
    try:
        return fn()
    except ALLOWED:
        return None


def read_everything(hive):
    """Every read the API offers, each allowed to fail with a RegistryError or
    ValueError; a damaged part must not stop the rest from being tried."""
    attempt(hive.info)
    attempt(lambda: hive.dirty)
    attempt(lambda: len(list(hive.walk())))
    if HAS_SCAN:
        for errors in ("strict", "skip"):
            t = attempt(lambda: hive.scan(errors=errors))
            if t is not None:
                attempt(t.key_paths)
                attempt(t.value_names)
                attempt(t.decoded_values)
                attempt(t.stats)
            del t
    if hasattr(hive, "deleted"):
        for rec in attempt(hive.deleted) or []:
            cell = attempt(lambda: hive.cell(rec.offset))
            if cell is not None:
                bytes(cell[0])
                cell[0].release()
            del cell
    seen = set()
    stack = [attempt(lambda: hive.root)]
    while stack and len(seen) < 3000:
        k = stack.pop()
        if k is None or k.offset in seen:
            continue
        seen.add(k.offset)
        for op in (lambda: k.name, lambda: k.path, k.info, lambda: k.class_name,
                   lambda: k.last_write, k.security, lambda: k.parent):
            attempt(op)
        sd = attempt(k.security_descriptor)
        if sd is not None:
            bytes(sd)
            sd.release()
        for v in attempt(lambda: list(k.values())) or []:
            attempt(v.raw)
            attempt(lambda: v.value)
            attempt(lambda: (v.name, v.type, v.size, repr(v)))
            attempt(lambda: k.value(v.name))
        if HAS_READ_VALUES:
            for errors in ("strict", "skip"):
                b = attempt(lambda: k.read_values(errors=errors))
                if b is not None:
                    attempt(b.values)
                    attempt(b.as_str)
                    attempt(lambda: b.as_int(default=0))
                del b
            attempt(lambda: k.read_values(["sz", "nope", ""], types=[REG_SZ], errors="skip"))
        kids = attempt(lambda: list(k.subkeys())) or []
        for kid in kids[:4]:
            attempt(lambda: k.open(kid.name))
        stack.extend(kids)


def exercise(data: bytes):
    with watchdog():
        for lenient in (False, True):
            try:
                hive = regfast.Hive.from_buffer(data, lenient=lenient)
            except ALLOWED:
                continue
            read_everything(hive)
            try:
                hive.close()     # every view made above is gone with its frame
            except BufferError:  # unless a reference cycle holds one: collect, then it must close
                gc.collect()
                hive.close()


HOSTILE = st.sampled_from([0, 1, 4, 0x20, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, 0x7FFFFFF0, 0x80000000,
                           0x80000004, 0x80000005, 0x00010000, 0x0000FFF8, 16344, 16345])


@st.composite
def damaged(draw):
    name = draw(st.sampled_from(sorted(BASE_TREES)))
    data, records, pointers = base_hive(name)
    buf = bytearray(data)
    kind = draw(st.sampled_from(["flips", "truncate", "field", "fields", "base"]))
    if kind == "flips":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] ^= draw(st.integers(1, 255))
    elif kind == "truncate":
        buf = buf[:draw(st.integers(0, len(buf) - 1))]
    elif kind in ("field", "fields"):
        for _ in range(1 if kind == "field" else draw(st.integers(2, 5))):
            cell = draw(st.sampled_from(records))
            at = cell + 4 + draw(st.integers(0, 0x13).map(lambda i: 4 * i) | st.integers(0, 0x4C))
            value = draw(HOSTILE | st.sampled_from(pointers) | st.integers(0, 2**32 - 1))
            if at + 4 <= len(buf):
                struct.pack_into("<I", buf, at, value)
    else:   # a base-block field with the checksum kept valid
        at = draw(st.sampled_from([0x04, 0x08, 0x14, 0x18, 0x1C, 0x20, 0x24, 0x28]))
        struct.pack_into("<I", buf, at, draw(HOSTILE | st.integers(0, 2**32 - 1)))
        struct.pack_into("<I", buf, 0x1FC, _checksum(buf))
    return bytes(buf)


DAMAGE_SETTINGS = dict(deadline=5000, database=None,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                              HealthCheck.function_scoped_fixture])


@settings(max_examples=600, **DAMAGE_SETTINGS)
@given(damaged())
@example(known_case("rich", "Big", 0x24, 0xFFFFFFFF))     # value count: a limit, not a 32 GB array
@example(known_case("rich", "A", 0x14, 0xFFFFFFFF))       # subkey count
@example(known_value_list_entry("rich", "Big", 1, 0))     # a zeroed value list entry
def test_damaged_hives_fail_cleanly(data):
    exercise(data)


@pytest.mark.slow
@settings(max_examples=5000, **DAMAGE_SETTINGS)
@given(damaged())
def test_damaged_hives_fail_cleanly_long(slow_run, data):
    exercise(data)


def test_exercise_can_fail():
    """The harness itself: an exception outside the allowed set gets through."""
    data, _, _ = base_hive("rich")

    class Boom(Exception):
        pass

    def bad_read(hive):
        raise Boom()

    with regfast.Hive.from_buffer(data) as hive:
        with pytest.raises(Boom):
            attempt(lambda: bad_read(hive))
