"""regfast.arrow: ScanTable -> Arrow rows, one schema for every hive.

The oracle is a slow decoder written here from the raw bytes (value_data)
and Python's codecs, following the rules the module documents; on hives
where the binding's own decoder (decoded_values) accepts every row it is
checked against that too. Real hives come from the corpus."""
from __future__ import annotations

import collections
import contextlib
import csv
import io
import json
import struct

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

import regfast  # noqa: E402
from regfast import arrow  # noqa: E402
from regfast.io.export import export_to_string  # noqa: E402
from regfast.io.writer import (REG_DWORD, REG_DWORD_BIG_ENDIAN, REG_EXPAND_SZ,  # noqa: E402
                            REG_LINK, REG_MULTI_SZ, REG_QWORD, REG_SZ, Key, Value)

from conftest import CORPUS_NOT_HIVES, corpus_names, corpus_path  # noqa: E402
from test_bulk import _odd_tree, _patch_stand_ins  # noqa: E402

FFFF = 0xFFFFFFFFFFFFFFFF


@contextlib.contextmanager
def _nothing():
    yield


def _utf8_safe(s: str) -> str:
    """What Arrow can hold of a str: lone surrogates as U+FFFD."""
    return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _slow_decode(t: int, raw: bytes):
    """(column, value, status) as regfast.arrow documents it, from the bytes."""
    if t in (REG_SZ, REG_EXPAND_SZ, REG_LINK):
        units = raw[:len(raw) // 2 * 2]
        s = units.decode("utf-16-le", "surrogatepass")
        if t != REG_LINK and "\0" in s:
            s = s[:s.index("\0")]
        safe = _utf8_safe(s)
        return "data_str", safe, 13 if (len(raw) % 2 or safe != s) else 0
    if t in (REG_DWORD, REG_DWORD_BIG_ENDIAN, REG_QWORD):
        w = 8 if t == REG_QWORD else 4
        word = (raw + bytes(8))[:w]
        v = int.from_bytes(word, "big" if t == REG_DWORD_BIG_ENDIAN else "little")   # unsigned
        return "data_int", v, 0 if len(raw) == w else 13
    if t == REG_MULTI_SZ:
        s = raw[:len(raw) // 2 * 2].decode("utf-16-le", "surrogatepass")
        if s.endswith("\0\0"):
            s = s[:-2]
        elif s.endswith("\0"):
            s = s[:-1]
        items = s.split("\0") if s else []
        safe = [_utf8_safe(x) for x in items]
        return "data_multi", safe, 13 if (len(raw) % 2 or safe != items) else 0
    return "data_bin", raw, 0


DATA = ("data_str", "data_int", "data_bin", "data_multi")


def _check_rows(t, rows: list[dict], source: str) -> None:
    """Every row of table_batches against the ScanTable, the slow way: the
    rows are the keys in order, each key's own row (when it has no value, or
    a status) before its values, then the values of no known key."""
    paths = t.key_paths()
    names = t.value_names()
    vkey = t.value_key.tolist()
    malformed = getattr(t, "value_malformed", np.zeros(t.n_values, bool))
    values_of = collections.defaultdict(list)
    for i, k in enumerate(vkey):
        values_of[k].append(i)
    expected = []
    for k in range(t.n_keys):
        if not values_of[k] or t.key_status[k]:
            expected.append((k, None))
        expected += [(k, i) for i in values_of[k]]
    expected += [(-1, i) for i in values_of[-1]]
    assert len(rows) == len(expected)
    for r, (k, i) in zip(rows, expected):
        assert r["source"] == source and r["tolerant"] is False
        if k >= 0:
            assert r["key_path"] == (_utf8_safe(paths[k]) if paths[k] is not None else None)
            ft = int(t.key_last_write[k])
            assert r["key_last_write_raw"] == (ft - (1 << 64) if ft >= 1 << 63 else ft)
        else:
            assert r["key_path"] is None and r["key_last_write_raw"] is None
        if i is None:                                   # the key's own row
            assert r["value_name"] is None and r["value_type"] is None
            assert r["deleted"] == bool(t.key_deleted[k])
            assert r["status"] == int(arrow.win32_status(np.array([t.key_status[k]]))[0])
            assert all(r[c] is None for c in DATA)
            continue
        assert r["value_name"] == _utf8_safe(names[i]) and r["deleted"] == bool(t.value_deleted[i])
        assert r["value_size"] == int(t.value_length[i])
        assert r["value_type"] == regfast.type_name(int(t.value_type[i]))
        st = int(t.value_status[i])
        if st and bool(malformed[i]):
            st = 0                 # (a binding that flags malformed rows: their data is there)
        if st:
            assert r["status"] == int(arrow.win32_status(np.array([st]))[0])
            assert all(r[c] is None for c in DATA)
            continue
        raw = bytes(t.value_data(i))
        col, want, status = _slow_decode(int(t.value_type[i]), raw)
        assert r[col] == want, (source, i, col)
        assert r["status"] == status
        for other in DATA:
            if other == col:
                continue
            if other == "data_bin" and status == 13:
                assert r["data_bin"] == raw          # malformed: the raw bytes kept too
            else:
                assert r[other] is None, (source, i, other)


@pytest.mark.parametrize("name", [n for n in corpus_names() if n not in CORPUS_NOT_HIVES])
def test_rows_match_a_slow_decoder_on_real_hives(name):
    # (the corpus files that are not hives are scan_many's error rows: test_fleet.py)
    path = corpus_path(name)
    try:
        with pytest.warns() if name == "plaso__winreg_Amcache.hve" else _nothing():
            hive = regfast.open_hive(path, validate=True)  # (dirty, no logs in the corpus)
    except regfast.RegistryCorruptError:
        hive = regfast.open_hive(path, errors="tolerant")
    with hive:
        t = hive.scan(errors="skip", include_deleted=True)
        batches = list(arrow.table_batches(t, source=name, hive_type="x", batch_rows=997))
        assert all(b.schema == arrow.SCHEMA for b in batches)
        rows = pa.Table.from_batches(batches, schema=arrow.SCHEMA).to_pylist()
        _check_rows(t, rows, name)
        # and the binding's decoder, where it takes every row
        try:
            decoded = t.decoded_values()
        except ValueError:
            return
        keys, values = t.to_arrow()
        got = values.to_pylist()
        for i, v in enumerate(decoded):
            if v is None:
                continue
            r = got[i]
            if isinstance(v, str):
                assert r["data_str"] == _utf8_safe(v)
            elif isinstance(v, int):
                assert r["data_int"] == v          # unsigned: a QWORD of 2**64-1 is not -1
            elif isinstance(v, list):
                assert r["data_multi"] == [_utf8_safe(x) for x in v]
            else:
                assert r["data_bin"] == v


def test_row_plan_in_one_pass_equals_the_sorted_plan_on_real_hives():
    # _columns.row_plan places rows in one pass when the scan's order holds;
    # the sort over every row (_row_plan_sorted) is its oracle
    fast = sorted_only = 0
    for name in corpus_names():
        if name in CORPUS_NOT_HIVES:
            continue
        try:
            hive = regfast.open_hive(corpus_path(name), logs=None, validate=True)
        except regfast.RegistryCorruptError:
            hive = regfast.open_hive(corpus_path(name), errors="tolerant", logs=None)
        with hive:
            for deleted in (False, True):
                t = hive.scan(errors="skip", include_deleted=deleted)
                status = arrow.win32_status(t.key_status)
                want = arrow._row_plan_sorted(t, status)
                got = arrow._columns.row_plan(t.value_key, status, t.n_keys)
                if got is None:
                    # only a table out of the scan's order: values of no known key
                    assert (t.value_key < 0).any(), name
                    sorted_only += 1
                    got = arrow._row_plan(t, status)
                else:
                    fast += 1
                assert [a.tolist() for a in got] == [a.tolist() for a in want], (name, deleted)
    assert fast >= 26 and sorted_only >= 1


def test_column_builders_refuse_columns_of_mismatched_lengths():
    # _columns runs without bounds checks: lengths are checked up front
    # (a short key_status once read far past its end: a segfault)
    from regfast import _columns
    with pytest.raises(ValueError):
        _columns.row_plan(np.arange(2_000_000, dtype=np.int32), np.zeros(1, np.int32), 2_000_000)
    rk = np.arange(4, dtype=np.int64)
    cols = dict(key_last_write=np.zeros(4, np.uint64), key_status=np.zeros(4, np.int32),
                key_deleted=np.zeros(4, np.uint8), path_off=np.zeros(5, np.int64),
                value_type=np.zeros(4, np.uint32), value_length=np.zeros(4, np.uint32),
                value_deleted=np.zeros(4, np.uint8), value_name_len=np.zeros(4, np.uint32))
    assert _columns.row_columns(rk, rk, *cols.values())["cost"].tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError):
        _columns.row_columns(rk, np.zeros(0, np.int64), *cols.values())
    with pytest.raises(IndexError):
        _columns.row_columns(rk + 1, rk, *cols.values())            # key row 4 of 4
    with pytest.raises(ValueError):
        _columns.row_columns(rk, rk, *{**cols, "value_deleted": np.zeros(2, np.uint8)}.values())


def test_malformed_values_decode_winreg_style_with_status_13(make_hive):
    tree = {
        "K": {
            "dw0": Value(REG_DWORD, b""), "dw2": Value(REG_DWORD, b"\x01\x02"),
            "dw8": Value(REG_DWORD, b"\x01\0\0\0\xff\xff\xff\xff"), "dw": 7,
            "be": Value(REG_DWORD_BIG_ENDIAN, b"\x00\x00\x01\x02"),
            "be2": Value(REG_DWORD_BIG_ENDIAN, b"\x01\x02"),
            "qw0": Value(REG_QWORD, b""), "qwtop": Value(REG_QWORD, FFFF),
            "odd": Value(REG_SZ, "ab".encode("utf-16-le") + b"c"),
            "lone": Value(REG_SZ, "x\ud800y\0".encode("utf-16-le", "surrogatepass")),
            "pair": Value(REG_SZ, "\U0001F600\0"), "nul": Value(REG_SZ, "a\0b\0".encode("utf-16-le")),
            "link": Value(REG_LINK, "a\0b".encode("utf-16-le")),
            "multi": ["a", "", "b"], "empty_multi": Value(REG_MULTI_SZ, b""),
            "big": b"B" * 70_000, "dev": Value(0xFFFF0012, b"\x05"), "none": Value(0, b""),
        },
        "Empty": {},
    }
    built = make_hive(tree)
    with regfast.open_hive(built.path) as hive:
        t = hive.scan()
        listed = pa.Table.from_batches(list(arrow.table_batches(t, source="s"))).to_pylist()
        _check_rows(t, listed, "s")
    rows = {(r["key_path"], r["value_name"]): r for r in listed}
    k = lambda n: rows[("K", n)]  # noqa: E731
    assert (k("dw0")["data_int"], k("dw0")["status"], k("dw0")["data_bin"]) == (0, 13, b"")
    assert (k("dw2")["data_int"], k("dw2")["status"]) == (0x0201, 13)
    assert (k("dw8")["data_int"], k("dw8")["data_bin"]) == (1, b"\x01\0\0\0\xff\xff\xff\xff")
    assert (k("dw")["data_int"], k("dw")["status"], k("dw")["data_bin"]) == (7, 0, None)
    assert (k("be")["data_int"], k("be2")["data_int"], k("be2")["status"]) == (0x102, 0x01020000, 13)
    assert (k("qw0")["data_int"], k("qwtop")["data_int"], k("qwtop")["status"]) == (0, (1 << 64) - 1, 0)
    assert (k("odd")["data_str"], k("odd")["status"]) == ("ab", 13)
    assert (k("lone")["data_str"], k("lone")["status"]) == ("x\ufffdy", 13)
    assert k("lone")["data_bin"] == "x\ud800y\0".encode("utf-16-le", "surrogatepass")
    assert (k("pair")["data_str"], k("pair")["status"]) == ("\U0001F600", 0)
    assert (k("nul")["data_str"], k("link")["data_str"]) == ("a", "a\0b")
    assert (k("multi")["data_multi"], k("empty_multi")["data_multi"]) == (["a", "", "b"], [])
    assert k("big")["data_bin"] == b"B" * 70_000 and k("big")["value_size"] == 70_000
    assert (k("dev")["value_type"], k("dev")["data_bin"]) == ("0xffff0012", b"\x05")
    assert (k("none")["value_type"], k("none")["data_bin"]) == ("REG_NONE", b"")
    # a key without values is a row of its own; so is the root
    assert rows[("Empty", None)]["status"] == 0 and ("", None) in rows


def test_schema_types_and_pandas_types(make_hive):
    built = make_hive({"K": {"s": "x", "n": 5}})
    with regfast.open_hive(built.path) as hive:
        t = hive.scan()
    batch = next(arrow.table_batches(t, source="src", hive_type="SOFTWARE"))
    types = {f.name: str(f.type) for f in batch.schema}
    assert types["key_last_write"] == "timestamp[us, tz=UTC]"
    assert types["value_type"] == "dictionary<values=string, indices=int32, ordered=0>"
    assert types["data_str"] == "string" and types["data_int"] == "uint64"
    assert types["data_bin"] == "binary" and types["data_multi"] == "list<item: string>"
    df = arrow.to_pandas(batch)
    assert str(df["key_last_write"].dtype) == "datetime64[ns, UTC]"
    assert df["value_type"].dtype == "category" and df["source"].dtype == "category"
    assert str(df["data_int"].dtype) == "UInt64"
    # ScanTable.to_arrow / to_pandas: the same types; values carry their key's path
    keys, values = t.to_arrow()
    assert keys.schema == arrow.KEY_SCHEMA and values.schema == arrow.VALUE_SCHEMA
    assert values.schema.field("type").type == batch.schema.field("value_type").type
    assert keys.schema.field("last_write").type == batch.schema.field("key_last_write").type
    kdf, vdf = t.to_pandas()
    assert str(kdf["last_write"].dtype) == "datetime64[ns, UTC]" and vdf["type"].dtype == "category"
    assert vdf.set_index("name").loc["n", "key_path"] == "K"
    assert vdf.merge(kdf, left_on="key_path", right_on="path")["path"].tolist() == ["K", "K"]


def test_out_of_range_filetimes_are_null_with_the_raw_value(make_hive):
    tree = Key(subkeys={
        "Future": Key(values={"v": 1}, last_write=FFFF),
        "Y9999": Key(last_write=2_650_467_743_999_999_990),      # 9999-12-31 23:59:59.999999
        "Y1601": Key(last_write=0),
        "Y2000": Key(last_write=125_911_584_000_000_000),
    })
    built = make_hive(tree)
    with regfast.open_hive(built.path) as hive:
        t = hive.scan()
        rows = {r["key_path"]: r for r in
                pa.Table.from_batches(list(arrow.table_batches(t, source="s"))).to_pylist()}
        assert rows["Future"]["key_last_write"] is None and rows["Future"]["key_last_write_raw"] == -1
        assert rows["Y9999"]["key_last_write"].year == 9999
        assert rows["Y1601"]["key_last_write"].year == 1601
        assert rows["Y2000"]["key_last_write"].isoformat() == "2000-01-01T00:00:00+00:00"
        keys, _ = t.to_pandas()
        when = dict(zip(keys["path"], keys["last_write"]))
        raw = dict(zip(keys["path"], keys["last_write_raw"]))
        # datetime64[ns] spans 1677-2262: the others are NaT, the raw column keeps them
        assert pd.isna(when["Future"]) and pd.isna(when["Y9999"]) and pd.isna(when["Y1601"])
        assert raw["Future"] == -1 and raw["Y1601"] == 0
        assert when["Y2000"] == pd.Timestamp("2000-01-01", tz="UTC")
        recs = {r["path"]: r for r in json.loads(export_to_string(hive, "json"))}
        assert recs["Future"]["last_write"] is None and recs["Future"]["last_write_filetime"] == FFFF
        assert recs["Y2000"]["last_write"] == "2000-01-01T00:00:00+00:00"
        csv_rows = {r["key"]: r for r in csv.DictReader(io.StringIO(export_to_string(hive, "csv")))}
        assert csv_rows["Future"]["last_write"] == "" and csv_rows["Future"]["value"] == "v"
        assert csv_rows["Y2000"]["last_write"] == "2000-01-01T00:00:00+00:00"


def test_names_with_lone_surrogates_become_replacement_chars(make_hive):
    built = make_hive(_odd_tree())
    _patch_stand_ins(built)
    with regfast.open_hive(built.path) as hive:
        t = hive.scan()
        keys, values = t.to_arrow()
        assert keys.column("path").to_pylist() == [_utf8_safe(p) for p in t.key_paths()]
        assert keys.column("name").to_pylist() == [_utf8_safe(n) for n in t.key_names()]
        assert values.column("name").to_pylist() == [_utf8_safe(n) for n in t.value_names()]
        rows = pa.Table.from_batches(list(arrow.table_batches(t, source="s", batch_rows=7))).to_pylist()
        _check_rows(t, rows, "s")


def test_deleted_rows_and_batches_bounded(make_hive):
    built = make_hive({"P": {"K": {"text": "secret payload", "num": 5}}, "Q": {"w": b"x" * 100}})
    data = bytearray(built.path.read_bytes())
    lay = built.layout
    # delete P\K: P has no subkey any more, and K's cells are free
    struct.pack_into("<I", data, lay.nk["P"] + 4 + 0x14, 0)
    for off in (lay.nk["P\\K"], lay.vk[("P\\K", "text")], lay.vk[("P\\K", "num")], lay.value_list["P\\K"],
                lay.data[("P\\K", "text")]):
        size, = struct.unpack_from("<i", data, off)
        struct.pack_into("<i", data, off, abs(size))
    built.path.write_bytes(data)
    with regfast.open_hive(built.path) as hive:
        t = hive.scan(include_deleted=True)
        assert t.key_deleted.any()
        batches = list(arrow.table_batches(t, source="s", batch_rows=2))
        assert all(b.num_rows <= 2 for b in batches)
        rows = pa.Table.from_batches(batches).to_pylist()
        _check_rows(t, rows, "s")
        gone = [r for r in rows if r["deleted"] and r["value_name"] == "text"]
        assert gone and gone[0]["data_str"] == "secret payload" and gone[0]["key_path"] == "P\\K"


def test_error_batch_has_the_schema():
    b = arrow.error_batch("/x/SYSTEM", 1017, "NotAHiveError: ...")
    assert b.schema == arrow.SCHEMA and b.num_rows == 1
    r = b.to_pylist()[0]
    assert (r["source"], r["status"], r["key_path"], r["value_name"]) == ("/x/SYSTEM", 1017, None, None)


def test_decode_false_keeps_raw_bytes_only(make_hive):
    built = make_hive({"K": {"s": "text", "n": 5}})
    with regfast.open_hive(built.path) as hive:
        t = hive.scan()
        rows = pa.Table.from_batches(list(arrow.table_batches(t, source="s", decode=False))).to_pylist()
    vals = {r["value_name"]: r for r in rows if r["value_name"]}
    assert vals["s"]["data_bin"] == "text\0".encode("utf-16-le") and vals["s"]["data_str"] is None
    assert vals["n"]["data_bin"] == b"\x05\0\0\0" and vals["n"]["data_int"] is None


def _assert_unique_dictionary(col):
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    d = col.dictionary.to_pylist()
    assert None not in d and len(set(d)) == len(d), [x for x in d if d.count(x) > 1][:3]


@pytest.mark.parametrize("name", [n for n in corpus_names() if n not in CORPUS_NOT_HIVES])
@pytest.mark.filterwarnings("ignore::regfast.DirtyHiveWarning")
def test_key_path_dictionaries_hold_each_path_once(name):
    """A deleted key may have the path of a live one (deleted, then made
    again) or none (its parent unknown): key_path's dictionary still holds
    each path once and no null, so pandas makes categories of it and Arrow's
    group_by counts each path once; the rows' paths stay what they were."""
    with regfast.open_hive(corpus_path(name), errors="tolerant") as hive:
        t = hive.scan(errors="skip", include_deleted=True)
        paths = t.key_paths()
        vkey = t.value_key.tolist()
        want = [paths[k] if k >= 0 else None for k in vkey]
        batches = list(arrow.table_batches(t, source=name, batch_rows=997))
        for b in batches:
            _assert_unique_dictionary(b.column("key_path"))
        _, values = t.to_arrow()
        _assert_unique_dictionary(values.column("key_path"))
        assert values.column("key_path").to_pylist() == want
        table = pa.Table.from_batches(batches, schema=arrow.SCHEMA).unify_dictionaries()
        _assert_unique_dictionary(table.column("key_path").chunk(0))
        plain = table.column("key_path").cast(pa.string())
        groups = table.group_by("key_path").aggregate([("key_path", "count")]).num_rows
        assert groups == len(set(plain.to_pylist()))
        t.to_pandas()                   # (categories must be unique and not null)
        arrow.to_pandas(table)


def test_siblings_of_one_name_in_a_damaged_hive_share_one_entry(make_hive):
    """Two subkeys of one name under one parent (damage: the list's order
    breaks, which a scan skipping errors reports as the parent's status):
    their rows name the same path, which the dictionary holds once."""
    built = make_hive({"P": {"aa": {"x": 1}, "ab": {"y": 2}}})
    data = bytearray(built.path.read_bytes())
    nk = built.layout.nk["P\\ab"]
    name_at = nk + 4 + 0x4C
    assert data[name_at:name_at + 2] == b"ab"
    data[name_at + 1:name_at + 2] = b"a"            # "ab" -> "aa"
    built.path.write_bytes(data)
    with regfast.open_hive(built.path) as hive:
        t = hive.scan(errors="skip")
        assert t.key_paths().count("P\\aa") == 2
        (b,) = arrow.table_batches(t, source="s")
        _assert_unique_dictionary(b.column("key_path"))
        assert sorted(r for r in b.column("key_path").to_pylist() if r != "P" and r) == ["P\\aa", "P\\aa"]
        _, values = t.to_arrow()
        _assert_unique_dictionary(values.column("key_path"))
        t.to_pandas()


@pytest.mark.parametrize("name", [n for n in corpus_names() if n not in CORPUS_NOT_HIVES])
@pytest.mark.filterwarnings("ignore::regfast.DirtyHiveWarning")
def test_key_paths_say_distinct_exactly_when_no_path_repeats(name):
    """_columns.key_paths' `distinct` (from hashes of the paths) lets the
    dictionaries skip the unique pass: it must never be True when a path
    repeats, and (no name here is empty or holds a backslash) must be True
    when none does."""
    with regfast.open_hive(corpus_path(name), errors="tolerant") as hive:
        t = hive.scan(errors="skip", include_deleted=True)
        off, data, ok, distinct = arrow._key_paths(t)
        paths = [bytes(data[off[i]:off[i + 1]]) for i in range(len(ok)) if ok[i]]
        assert distinct == (len(set(paths)) == len(paths))


def test_two_root_children_of_one_name_share_one_dictionary_entry(make_hive):
    """Two keys of one name in one list (damage a tolerant open reads, both
    of them, as hivex does) have one path: one dictionary entry for both.
    (This test used a root child of no name, whose path was the root's; such
    a key is now damage Windows' check removes, read by no open.)"""
    built = make_hive({"A": {"x": 1}, "B": {"y": 2}})
    data = bytearray(built.path.read_bytes())
    nk_b = built.layout.nk["B"]
    assert data[nk_b + 4 + 0x4C:nk_b + 4 + 0x4D] == b"B"
    data[nk_b + 4 + 0x4C] = ord("A")
    built.path.write_bytes(data)
    with regfast.open_hive(built.path, errors="tolerant") as hive:
        t = hive.scan()
        assert t.key_paths() == ["", "A", "A"]
        assert not arrow._key_paths(t)[3]
        (b,) = arrow.table_batches(t, source="s")
        _assert_unique_dictionary(b.column("key_path"))
        _, values = t.to_arrow()
        _assert_unique_dictionary(values.column("key_path"))
        keys, vals = t.to_pandas()
        assert list(vals["key_path"]) == ["A", "A"]
