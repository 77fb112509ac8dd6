"""Value decoding: one decoder for every path, and values whose size does not
fit their type (real hives hold REG_DWORDs of 0 and 8 bytes, REG_QWORDs of 0
bytes, 0-byte REG_DWORD_BIG_ENDIANs) never stop a read.

The rules follow CPython's winreg (Reg2Py in PC/winreg.c): a REG_DWORD /
REG_QWORD of 0 bytes is 0, a longer one is its first 4 / 8 bytes
little-endian, a shorter non-empty one is zero-extended. REG_DWORD_BIG_ENDIAN
stays an int (regipy and python-registry agree) with the same size rules,
big-endian. Every other type keeps its decoding. Such values are flagged
(Value.well_formed, row status 13 with the data still decoded).

The table below is applied to every path that decodes: Key/Value, ValueBatch,
ScanTable, get_many, the exports, and the live registry's Python decoder.
"""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

import regfast
from regfast._native import decode_value
from regfast.hive.diff import decode_data as diff_decode_data
from regfast.cli import main
from regfast.io.export import export
from regfast.io.writer import (REG_BINARY, REG_DWORD, REG_DWORD_BIG_ENDIAN, REG_LINK, REG_MULTI_SZ,
                            REG_NONE, REG_QWORD, REG_SZ, Value)

from conftest import corpus_path
from oracle import hivex_info, require_hivex

B8 = bytes(range(1, 9))               # 01 02 .. 08
B16 = bytes(range(1, 17))
BIG = bytes(range(1, 256)) * 65       # 16,575 bytes: big data (db) in a 1.5 hive

# (type, raw data, decoded value, well_formed)
CASES = [
    (REG_DWORD, b"", 0, False),
    (REG_DWORD, B8[:1], 0x01, False),
    (REG_DWORD, B8[:2], 0x0201, False),
    (REG_DWORD, B8[:3], 0x030201, False),
    (REG_DWORD, B8[:4], 0x04030201, True),
    (REG_DWORD, b"\xff\xff\xff\xff", 0xFFFFFFFF, True),
    (REG_DWORD, B8[:5], 0x04030201, False),
    (REG_DWORD, B8, 0x04030201, False),
    (REG_DWORD_BIG_ENDIAN, b"", 0, False),
    (REG_DWORD_BIG_ENDIAN, B8[:1], 0x01000000, False),
    (REG_DWORD_BIG_ENDIAN, B8[:3], 0x01020300, False),
    (REG_DWORD_BIG_ENDIAN, B8[:4], 0x01020304, True),
    (REG_DWORD_BIG_ENDIAN, B8, 0x01020304, False),
    (REG_QWORD, b"", 0, False),
    (REG_QWORD, B8[:1], 0x01, False),
    (REG_QWORD, B8[:4], 0x04030201, False),
    (REG_QWORD, B8[:7], 0x07060504030201, False),
    (REG_QWORD, B8, 0x0807060504030201, True),
    (REG_QWORD, b"\xff" * 8, 0xFFFFFFFFFFFFFFFF, True),
    (REG_QWORD, B8 + b"\x09", 0x0807060504030201, False),
    (REG_QWORD, B16, 0x0807060504030201, False),
    (REG_QWORD, BIG, 0x0807060504030201, False),
    (REG_DWORD, BIG, 0x04030201, False),
    # every other type decodes as before, whatever its size
    (REG_SZ, "abc\0".encode("utf-16-le"), "abc", True),
    (REG_SZ, b"", "", True),
    (REG_LINK, "\\Registry\\X".encode("utf-16-le"), "\\Registry\\X", True),
    (REG_MULTI_SZ, "a\0b\0\0".encode("utf-16-le"), ["a", "b"], True),
    (REG_BINARY, b"", b"", True),
    (REG_BINARY, B8[:4], B8[:4], True),
    (REG_NONE, B8[:4], B8[:4], True),
    (0x1234, B8[:2], B8[:2], True),                 # unknown type: bytes
    (0xFFFF0007, B8[:4], B8[:4], True),             # device property (DEVPROP_TYPE_UINT32): bytes
    (0xFFFF0011, b"\xff", b"\xff", True),           # device property (DEVPROP_TYPE_BOOLEAN): bytes
]
INT_TYPES = (REG_DWORD, REG_DWORD_BIG_ENDIAN, REG_QWORD)


def case_name(i: int) -> str:
    t, raw, _, _ = CASES[i]
    return f"c{i:02d}_t{t:x}_{len(raw)}"


NAMES = [case_name(i) for i in range(len(CASES))]


@pytest.fixture(scope="module")
def table_hive(tmp_path_factory):
    from regfast.io.writer import build_hive
    values = {case_name(i): Value(t, raw) for i, (t, raw, _, _) in enumerate(CASES)}
    data, _ = build_hive({"T": values}, minor=5)
    path = tmp_path_factory.mktemp("decode") / "table.hiv"
    path.write_bytes(data)
    return path


@pytest.fixture
def hive(table_hive):
    with regfast.open_hive(table_hive) as h:
        yield h


def same(got, want):
    """Equal and of the same Python type (an int is an int, not a numpy scalar)."""
    return type(got) is type(want) and got == want


def test_table_is_what_the_writer_wrote(hive):
    key = hive.open("T")
    for name, (t, raw, _, _) in zip(NAMES, CASES):
        v = key.value(name)
        assert (v.type, v.raw()) == (t, raw), name


def test_value_objects(hive):
    key = hive.open("T")
    by_listing = {v.name: v for v in key.values()}      # located by one batch read
    for name, (t, raw, want, ok) in zip(NAMES, CASES):
        for v in (key.value(name), by_listing[name]):
            assert same(v.value, want), (name, v.value, want)
            assert v.well_formed is ok, name
            assert bytes(v.data) == raw
        assert same(key[name], want)
        assert same(key.get(name, "dflt"), want)
        rt, rdata = key.value_raw(name)
        assert rt == t and bytes(rdata) == raw


def test_value_batch_by_name_and_all(hive):
    key = hive.open("T")
    for batch in (key.read_values(NAMES), key.read_values()):
        assert batch.names == NAMES
        vals = batch.values()
        d = batch.to_dict()
        for i, (t, raw, want, ok) in enumerate(CASES):
            assert same(vals[i], want), (NAMES[i], vals[i], want)
            assert same(d[NAMES[i]], want)
            assert batch.status[i] == (0 if ok else 13), NAMES[i]
            assert bool(batch.malformed[i]) is (not ok)
            assert bytes(batch.buffer(i)) == raw
        ints = batch.as_int(default=7)
        for i, (t, raw, want, ok) in enumerate(CASES):
            assert int(ints[i]) == (want if t in INT_TYPES else 7), NAMES[i]
    with pytest.raises(ValueError):
        key.read_values(NAMES).as_int()     # non-int rows still need a default


def test_value_batch_type_filter_keeps_filtered_rows_apart(hive):
    key = hive.open("T")
    batch = key.read_values(NAMES, types=[REG_DWORD, REG_SZ])
    vals = batch.values()
    for i, (t, raw, want, ok) in enumerate(CASES):
        if t in (REG_DWORD, REG_SZ):
            assert same(vals[i], want) and batch.status[i] == (0 if ok else 13)
            assert bool(batch.malformed[i]) is (not ok)
        else:   # filtered out: status 13 too, but no data
            assert vals[i] is None and batch.status[i] == 13 and not batch.malformed[i]
            with pytest.raises(OSError):
                batch.buffer(i)
    assert set(batch.to_dict()) == {NAMES[i] for i, c in enumerate(CASES) if c[0] in (REG_DWORD, REG_SZ)}


def test_scan_table(hive):
    t = hive.scan()
    names = t.value_names()
    dec = t.decoded_values()
    rows = {n: i for i, n in enumerate(names)}
    for name, (typ, raw, want, ok) in zip(NAMES, CASES):
        i = rows[name]
        assert same(dec[i], want), (name, dec[i], want)
        assert t.value_status[i] == (0 if ok else 13), name
        assert bool(t.value_malformed[i]) is (not ok)
        assert bytes(t.value_data(i)) == raw
    n_bad = sum(1 for c in CASES if not c[3])
    st = t.stats()
    assert st["malformed_values"] == n_bad and st["value_errors"] == 0
    _, values = t.to_pandas()
    for name, (typ, raw, want, ok) in zip(NAMES, CASES):
        got = _typed_data(values, rows[name])
        assert got == want or (isinstance(want, list) and list(got) == want), (name, got, want)


def _typed_data(values, i):
    """The decoded value of row i of to_pandas()'s typed data columns (the int
    column first: a malformed integer keeps its raw bytes in data_bin too)."""
    import pandas as pd
    for col in ("data_int", "data_str", "data_multi", "data_bin"):
        v = values[col][i]
        if v is not None and v is not pd.NA and not (isinstance(v, float) and v != v):
            return list(v) if col == "data_multi" else v
    return None


def test_get_many(hive):
    got = hive.get_many([f"T\\{n}" for n in NAMES])
    got_pairs = hive.get_many([("T", n) for n in NAMES], default=None)
    for i, (_, _, want, _) in enumerate(CASES):
        assert same(got[i], want) and same(got_pairs[i], want), NAMES[i]
    # one path, not in a list: refused (its characters would be read as paths)
    with pytest.raises(TypeError, match="iterable of paths"):
        hive.get_many(f"T\\{NAMES[0]}", default=None)


def test_exports(hive):
    out = io.StringIO()
    export(hive, out, "json")
    rec = {r["path"]: r for r in json.loads(out.getvalue())}["T"]["values"]
    for name, (t, raw, want, ok) in zip(NAMES, CASES):
        v = rec[name]
        if isinstance(want, bytes):
            assert v["data"] == {"hex": raw.hex()}
        else:
            assert v["data"] == want, name
        assert v.get("well_formed", True) is ok
    out = io.StringIO()
    export(hive, out, "csv")
    rows = {r[1]: r for r in csv.reader(io.StringIO(out.getvalue())) if r[0] == "T"}
    for name, (t, raw, want, ok) in zip(NAMES, CASES):
        text = want.hex() if isinstance(want, bytes) else "\n".join(want) if isinstance(want, list) else str(want)
        assert rows[name][3] == text, name
    out = io.StringIO()
    export(hive, out, "reg")
    text = out.getvalue()
    # a malformed DWORD keeps its bytes: hex(4), never a dword: line that would change it
    assert f'"{NAMES[7]}"=hex(4):{",".join(f"{b:02x}" for b in B8)}' in text
    assert f'"{NAMES[0]}"=hex(4):' in text
    assert f'"{NAMES[4]}"=dword:04030201' in text


def test_live_and_diff_decoder_is_the_same(hive):
    """diff.decode_data is what the live registry's values (regfast.live) decode with."""
    for name, (t, raw, want, ok) in zip(NAMES, CASES):
        assert same(diff_decode_data(t, raw, name), want), name
        assert same(diff_decode_data(t, memoryview(raw)), want), name
        assert same(diff_decode_data(t, bytearray(raw)), want), name


def test_live_registry_has_no_second_decoder():
    """One decoder: regfast.live defines no Key, Value or ValueBatch of its
    own (live keys are the binding's, whose values this file checks), and no
    module of it decodes value data."""
    import importlib
    import pkgutil
    import regfast.live
    for m in pkgutil.iter_modules(regfast.live.__path__):
        mod = importlib.import_module(f"regfast.live.{m.name}")
        for name in ("Key", "Value", "ValueBatch"):
            obj = getattr(mod, name, None)
            assert obj is None or obj.__module__ in ("regfast._native", "regfast._bulk"), (m.name, name)
        assert not hasattr(mod, "_ROW"), m.name                 # the old batch's row layout
        dec = getattr(mod, "decode_data", None)                 # only the shared one, if any
        assert dec is None or dec.__module__ == "regfast.hive.diff", m.name


def test_diff_of_hives_with_malformed_values(table_hive, make_hive):
    other = make_hive({"T": {NAMES[7]: Value(REG_DWORD, b"\x01\x00\x00\x00")}}).path
    d = regfast.diff(str(table_hive), str(other))
    [c] = [c for c in d.changes if c.name == NAMES[7]]
    assert (c.kind, c.old_value, c.new_value) == ("value_changed", 0x04030201, 1)


# --- the command line ---------------------------------------------------------

def test_cli_get_says_malformed_on_stderr(table_hive, capsys):
    assert main(["get", str(table_hive), "T", NAMES[7]]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"REG_DWORD {0x04030201}"
    assert "8 bytes" in err and "REG_DWORD" in err and err.count("\n") == 1
    assert main(["get", str(table_hive), "T", NAMES[4]]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"REG_DWORD {0x04030201}" and err == ""


def test_cli_info_counts_malformed_values(table_hive, capsys):
    assert main(["info", str(table_hive)]) == 0
    out = capsys.readouterr().out
    n_bad = sum(1 for c in CASES if not c[3])
    line = [ln for ln in out.splitlines() if ln.startswith("malformed")]
    assert line and f"{n_bad}" in line[0]


# --- real hives written by Windows (corpus) ------------------------------------

REAL = [
    # plaso test data (Apache-2.0): a Windows 7 NTUSER.DAT, Group Policy history
    ("plaso__NTUSER-WIN7.DAT", r"Software\Microsoft\Windows\CurrentVersion\Group Policy\History"
     r"\{35378EAC-683F-11D2-A89A-00C04FBBCFA2}\0", "lParam", REG_DWORD, 8),
    # Eric Zimmerman's Registry test hives (MIT)
    ("ez__SAM_DUPENAME", r"SAM\Domains\Builtin\Aliases\Members\S-1-5-21-4271176276-4210259494-4108073714",
     "", REG_QWORD, 0),
    ("ez__SAM_hasBigEndianDWord", r"SAM\Domains\Account\Aliases", "", REG_DWORD_BIG_ENDIAN, 0),
    ("ez__SAM_hasBigEndianDWord", r"SAM\Domains\Account\Users", "", REG_DWORD, 0),
]


@pytest.mark.parametrize("name,path,value,vtype,size", REAL, ids=[f"{r[0]}:{r[2] or '@'}" for r in REAL])
def test_real_malformed_values(name, path, value, vtype, size):
    p = corpus_path(name)
    with regfast.open_hive(p) as h:
        v = h.open(path).value(value)
        assert (v.type, v.size, v.well_formed) == (vtype, size, False)
        raw = v.raw()
        width = 8 if vtype == REG_QWORD else 4
        order = "big" if vtype == REG_DWORD_BIG_ENDIAN else "little"
        assert v.value == int.from_bytes((raw + bytes(8))[:width], order)
        t = h.scan()
        dec = t.decoded_values()
        assert None not in [d for d, s in zip(dec, t.value_status.tolist()) if s in (0, 13)]
        assert t.stats()["malformed_values"] >= 1
        h.open(path).read_values().to_dict()
        assert h.get_many([(path, value)], default=None) == [v.value]
    require_hivex()
    hv = hivex_info(p)["keys"][path]["values"][value]
    assert hv == (vtype, raw)


def _sz_cases() -> list[tuple[str, bytes]]:
    """REG_SZ data of 0-40 UTF-16 units, the NUL at every position or none,
    ASCII, Latin-1 and wider units: every way a string can end relative to
    the decoder's 8-unit blocks (src/regfast/_text.h)."""
    import random
    rng = random.Random(1)
    out = []
    for n in range(0, 41):
        for nul in [None, *range(n)]:
            for alphabet in ((0x20, 0x7E), (0x20, 0xFF), (0x20, 0x2FFF)):
                units = [rng.randint(*alphabet) for _ in range(n)]
                if nul is not None:
                    units[nul] = 0
                out.append((f"s{len(out)}", b"".join(u.to_bytes(2, "little") for u in units)))
    return out


def test_strings_end_where_their_first_nul_is(make_hive):
    cases = _sz_cases()
    built = make_hive({"S": {name: Value(REG_SZ, raw) for name, raw in cases}})
    want = {name: raw.decode("utf-16-le").split("\0")[0] for name, raw in cases}
    with regfast.open_hive(built.path) as hive:
        key = hive.open("S")
        assert {v.name: v.value for v in key.values()} == want
        assert key.read_values().to_dict() == want
        t = hive.scan("S")
        assert dict(zip(t.value_names(), t.decoded_values())) == want


def test_multi_sz_splits_as_the_whole_string_would():
    # REG_MULTI_SZ strings are made one by one from their units: the result
    # must be what decoding the whole data, stripping its terminator and
    # splitting at NUL gives, for every data: NULs anywhere (leading, doubled,
    # at the end or not), lone and paired surrogates, wide characters, an odd
    # trailing byte.
    import random

    def whole(data):
        s = data[: len(data) // 2 * 2].decode("utf-16-le", "surrogatepass")
        if s.endswith("\0\0"):
            s = s[:-2]
        elif s.endswith("\0"):
            s = s[:-1]
        return s.split("\0") if s else []

    units = [0, 0, 0, 0x41, 0x62, 0xE9, 0xFF, 0x100, 0x3A9, 0x65E5, 0xD83D, 0xDE00, 0xDC00, 0xD800, 0xFFFF]
    rnd = random.Random(5)
    datas = [b"", b"\0", b"\0\0", b"\0\0\0", b"\0\0\0\0", b"a\0", "a\0\0\0".encode("utf-16-le")]
    for _ in range(20000):
        us = [rnd.choice(units) for _ in range(rnd.randrange(0, 12))]
        data = b"".join(u.to_bytes(2, "little") for u in us)
        if rnd.random() < 0.2:
            data += bytes([rnd.randrange(256)])
        datas.append(data)
    for data in datas:
        got = decode_value(REG_MULTI_SZ, data)
        assert got == whole(data) and all(type(x) is str for x in got), data

