"""Bulk reads: Key.read_values, Hive.scan, Hive.get_many — checked against
what the writer wrote and against per-value reads."""
from __future__ import annotations

import numpy as np
import pytest

import regfast
from regfast.io.writer import (REG_BINARY, REG_DWORD, REG_DWORD_BIG_ENDIAN, REG_EXPAND_SZ, REG_QWORD,
                            REG_SZ, Key, Value)

from conftest import expected_tree

TREE = {
    "Software": {
        "Many": {f"v{i:05d}": "s" * (i % 300) for i in range(3000)},
        "Mixed": {
            "sz": "text", "ex": Value(REG_EXPAND_SZ, "%x%"), "dw": 7, "be": Value(REG_DWORD_BIG_ENDIAN, 258),
            "qw": Value(REG_QWORD, 1 << 40), "bin": b"\x01\x02", "big": b"B" * 70_000,
            "multi": ["a", "b"], "": "default", "devprop": Value(0xFFFF0012, b"\x09"),
        },
        "Deep": {"a": {"b": {"c": {"d": {"leaf": 1}}}}},
    },
    "Empty": {},
}


@pytest.fixture
def hive(make_hive):
    built = make_hive(TREE)
    with regfast.open_hive(built.path) as h:
        yield h


def test_read_values_by_name_matches_single_reads(hive):
    key = hive.open(r"Software\Many")
    names = [f"V{i:05d}" for i in range(0, 3000, 7)] + ["missing", "v00003"]
    batch = key.read_values(names)
    assert len(batch) == len(names)
    assert batch.type.dtype == np.uint32 and batch.status.dtype == np.int32
    assert batch.offset.dtype == np.uint64 and batch.length.dtype == np.uint32
    assert batch.status[-2] == 2 and batch.status[-1] == 0   # missing is a row status, not an error
    got = batch.as_str()
    for i, name in enumerate(names):
        if name == "missing":
            assert got[i] is None
            continue
        assert got[i] == key[name]
        assert bytes(batch.buffer(i)) == key.value(name).raw()
    with pytest.raises(FileNotFoundError):
        batch.buffer(len(names) - 2)


def test_read_values_all_in_stored_order(hive):
    key = hive.open(r"Software\Mixed")
    batch = key.read_values()
    assert batch.names == [v.name for v in key.values()]
    assert (batch.status == 0).all()
    assert batch.to_dict() == {v.name: v.value for v in key.values()}
    assert batch.to_dict()["big"] == b"B" * 70_000            # big data assembled in the arena
    assert batch.values() == [v.value for v in key.values()]


def test_read_values_zero_copy_points_into_the_mapping(hive):
    key = hive.open(r"Software\Mixed")
    batch = key.read_values(["bin", "big"])
    mapping = batch.data
    off = int(batch.offset[0])
    assert off < (1 << 63) and bytes(mapping[off:off + 2]) == b"\x01\x02"
    assert int(batch.offset[1]) & (1 << 63)                   # big data: in the arena
    hive.close()
    assert hive.mapped and bytes(mapping[off:off + 2]) == b"\x01\x02"   # the batch pins the mapping
    del batch, mapping
    assert not hive.mapped


def test_read_values_type_filter_and_ints(hive):
    key = hive.open(r"Software\Mixed")
    batch = key.read_values(["dw", "be", "qw", "sz"], types=[REG_DWORD, REG_DWORD_BIG_ENDIAN, REG_QWORD])
    assert batch.status.tolist() == [0, 0, 0, 13]             # 13 = filtered out by type
    assert batch.type[3] == REG_SZ
    with pytest.raises(ValueError, match="row 3"):
        batch.as_int()
    assert batch.as_int(default=0).tolist() == [7, 258, 1 << 40, 0]
    assert batch.as_str() == [None, None, None, None]


def test_read_values_as_numpy_strings(hive):
    batch = hive.open(r"Software\Mixed").read_values(["sz", "ex", "nope"])
    arr = batch.as_str(array=True)
    assert arr.dtype.kind == "T" and arr[0] == "text" and arr[1] == "%x%"
    assert arr[2] is None or str(arr[2]) == "None" or arr.dtype.na_object is None


def test_read_values_rejects_bad_arguments(hive):
    key = hive.open("Software")
    with pytest.raises(TypeError):
        key.read_values([1, 2])
    with pytest.raises(ValueError):
        key.read_values(errors="maybe")
    empty = hive.open("Empty").read_values()
    assert len(empty) == 0 and empty.to_dict() == {}
    # a type is 32 bits: -1 or 2**40 escaped as numpy's OverflowError, and a
    # float was truncated (1.9 filtered as REG_SZ)
    for bad in (-1, 2 ** 40, 1.9, "1", True, None):
        with pytest.raises(OSError) as e:
            key.read_values(types=[REG_SZ, bad])
        assert e.value.winerror == 87
    mixed = hive.open(r"Software\Mixed")
    assert mixed.read_values(["sz"], types=[np.uint32(REG_SZ)]).status.tolist() == [0]


def test_scan_matches_walk(hive):
    table = hive.scan()
    walked = list(hive.walk())
    assert table.n_keys == len(walked) == len(expected_tree(TREE))
    assert table.key_paths() == [k.path for k in walked]      # same pre-order
    assert table.key_names() == [k.name for k in walked]
    parents = table.key_parent.tolist()
    paths = table.key_paths()
    for i, p in enumerate(parents):
        if p >= 0:
            assert paths[i].rpartition("\\")[0] == paths[p]
            assert table.key_depth[i] == table.key_depth[p] + 1
    expected_values = [(k.path, v.name, v.type, v.raw()) for k in walked for v in k.values()]
    got = [(paths[int(table.value_key[i])], name, int(table.value_type[i]), bytes(table.value_data(i)))
           for i, name in enumerate(table.value_names())]
    assert got == expected_values
    assert table.key_n_values.sum() == table.n_values
    assert table.key_last_write.tolist() == [k.info().last_write for k in walked]


# the columns a scan stores; the rest (key_depth, key_n_values, *_deleted,
# value_malformed, *_name_off) are made from them when asked for
_STORED_KEY_COLUMNS = ("key_token", "key_parent", "key_last_write", "key_name_len", "key_status")
_STORED_VALUE_COLUMNS = ("value_key", "value_token", "value_name_len", "value_type", "value_offset",
                         "value_length", "value_status")


def test_scan_columns_take_24_bytes_a_key_row_and_28_a_value_row(hive):
    t = hive.scan()
    assert sum(getattr(t, c).itemsize for c in _STORED_KEY_COLUMNS) == 24
    assert sum(getattr(t, c).itemsize for c in _STORED_VALUE_COLUMNS) == 28
    block = t.key_token.base
    assert all(getattr(t, c).base is block for c in _STORED_KEY_COLUMNS + _STORED_VALUE_COLUMNS)
    # one allocation for them all (a healthy writer-made hive: its nk and vk
    # cells are exactly the rows), nothing else per row held by the table
    assert block.nbytes <= 24 * t.n_keys + 28 * t.n_values + 12 * 64
    for derived in ("key_depth", "key_n_values", "key_deleted", "value_deleted", "value_malformed",
                    "value_relisted", "key_name_off", "value_name_off"):
        col = getattr(t, derived)
        assert col.base is not block and not col.flags.writeable, derived
    # the name offsets follow from the tokens, as the C API says (rf_scan)
    walked = {k.path: k for k in hive.walk()}
    paths = t.key_paths()
    for i in range(t.n_keys):
        assert hive.token_offset(int(t.key_token[i])) + 4 + 0x4C == t.key_name_off[i]
        assert walked[paths[i]].name == t.key_names()[i]


def test_scan_subtree_without_values_and_stats(hive):
    t = hive.scan(r"Software\Deep", values=False)
    assert t.key_paths() == [r"Software\Deep", r"Software\Deep\a", r"Software\Deep\a\b",
                             r"Software\Deep\a\b\c", r"Software\Deep\a\b\c\d"]
    assert t.n_values == 0
    stats = hive.scan().stats()
    assert stats["values"] == 3000 + 10 + 1 and stats["max_depth"] == 6
    assert stats["types"][0xFFFF0012] == 1
    assert stats["key_errors"] == stats["value_errors"] == 0


def test_scan_progress_callback_and_cancel(make_hive):
    built = make_hive({f"k{i}": {f"s{j}": {} for j in range(10)} for i in range(900)})
    with regfast.open_hive(built.path) as h:
        calls = []
        t = h.scan(progress=lambda done, total: calls.append((done, total)))
        assert calls and calls[-1][0] == t.n_keys == 1 + 900 + 9000
        assert all(total >= t.n_keys for _, total in calls)
        with pytest.raises(KeyboardInterrupt, match="cancelled"):
            h.scan(progress=lambda d, t: False)
        with pytest.raises(ZeroDivisionError):
            h.scan(progress=lambda d, t: 1 / 0)


def test_close_during_a_scan_keeps_the_mapping_until_the_table_goes(make_hive):
    # The scan reads the mapping with the GIL released; its progress callback
    # runs in the middle of it. A close() there (as from another thread) must
    # not unmap under the C code: the scan finishes and its table keeps the
    # mapping, like any table handed out before a close(). Without the pin
    # this read a munmapped hive (a crash, or garbage in the names).
    tree = {f"k{i}": {f"s{j}": {"v": f"d{i}.{j}"} for j in range(10)}
            for i in range(900)}
    built = make_hive(tree)
    with regfast.open_hive(built.path) as ref:
        expected = ref.scan()
        want_paths, want_data = expected.key_paths(), expected.decoded_values()
    h = regfast.open_hive(built.path)
    closed_at = []

    def close_now(done, total):
        if not closed_at:
            closed_at.append(done)
            h.close()

    t = h.scan(progress=close_now)
    assert closed_at and closed_at[0] < t.n_keys     # closed half-way through
    assert h.closed and h.mapped                     # closed, still mapped for the table
    assert t.key_paths() == want_paths and t.decoded_values() == want_data
    with pytest.raises(OSError) as e:
        h.root
    assert e.value.winerror == 6
    del t
    assert not h.mapped


def test_columns_are_read_only_and_names_are_checked(hive):
    # The C code trusts the offset/length columns to stay inside the mapping:
    # a user's write (or one through .base) must be refused, not followed.
    t = hive.scan(include_deleted=True)
    batch = hive.open(r"Software\Mixed").read_values()
    for col in (t.value_offset, t.value_length, t.key_name_off, t.value_status, batch.offset,
                batch.length, batch.status, batch.type):
        with pytest.raises(ValueError, match="read-only"):
            col[0] = 1 << 40
        base = col.base
        while isinstance(base, np.ndarray):
            with pytest.raises(ValueError, match="read-only"):
                base[:8] = 0xFF
            base = base.base
    assert t.decoded_values() == hive.scan(include_deleted=True).decoded_values()
    # nor can they be made writeable again: numpy lets anyone do that to an
    # array that owns its memory (the deleted rows' columns, the malformed
    # flags did), not to a view of a read-only one
    for table in (t, hive.scan()):
        for name in [n for n in dir(table) if n.startswith(("key_", "value_")) and n != "value_names"]:
            col = getattr(table, name)
            if isinstance(col, np.ndarray):
                with pytest.raises(ValueError, match="WRITEABLE"):
                    col.flags.writeable = True
    # the names list is the user's to read; shortened, it is refused by the
    # methods that index it per row (boundscheck is off in the extension)
    n = len(batch)
    del batch.names[1:]
    for call in (batch.to_dict, batch.values, batch.as_str):
        with pytest.raises(ValueError, match=f"1 names for {n} rows"):
            call()


def test_scan_device_property_lengths_are_exact(hive):
    t = hive.scan()
    names = t.value_names()
    i = names.index("devprop")
    assert t.value_type[i] == 0xFFFF0012 and t.value_length[i] == 1 and bytes(t.value_data(i)) == b"\x09"


def test_get_many_shares_key_lookups(hive):
    paths = [r"Software\Mixed\dw", r"software\mixed\SZ", r"Software\Many\v00010", "Software\\Mixed\\",
             r"Software\Deep\a\b\c\d\leaf"]
    assert hive.get_many(paths) == [7, "text", "s" * 10, "default", 1]
    with pytest.raises(FileNotFoundError):
        hive.get_many([r"Software\Mixed\nope"])
    with pytest.raises(FileNotFoundError):
        hive.get_many([r"Nope\x"])
    assert hive.get_many([r"Nope\x", r"Software\Mixed\nope", r"Software\Mixed\dw"], default=None) == [None, None, 7]


def test_scan_to_pandas_and_arrow(hive):
    # pandas and pyarrow are optional for users, but part of the test extras.
    # The typed columns and their types are checked in depth in test_arrow.py.
    table = hive.scan()
    keys, values = table.to_pandas()
    assert len(keys) == table.n_keys and keys["path"].tolist() == table.key_paths()
    assert values.loc[values["name"] == "dw", "data_int"].item() == 7
    assert str(keys["last_write"].dtype) == "datetime64[ns, UTC]"
    assert values["type"].dtype == "category"
    akeys, avalues = table.to_arrow()
    assert akeys.num_rows == table.n_keys and avalues.num_rows == table.n_values
    row = avalues.column("name").to_pylist().index("big")
    assert avalues.column("data_bin")[row].as_py() == b"B" * 70_000


# ---- names and paths built straight from the stored bytes ----------------------
# ScanTable.key_paths/key_names/value_names write each str in place; checked here
# against a slow decoding of the same bytes through Python's codecs, and against
# walk(), on names of every width.

ODD_NAMES = [
    "plain", "Latin-\xe9\xff", "\u03a9mega", "\u4e2d\u6587", "smile\U0001F600", "\U0001F600",
    "lone-high-\ud800", "\ud800", "\udc00-lone-low", "hi\ud800\ud800\udc00lo", "\U0010FFFF",
    "\ud83d", "a\u00ff\u0100", "x" * 255, "\xe9" * 255, "\u4e2d" * 255, "\U0001F600" * 127 + "z",
]
# The writer sorts key names by their UTF-16 form, which lone surrogates do not
# have: keys are written with stand-ins (private-use chars) patched afterwards.
_STAND_IN = {"\ud800": "\ue000", "\udc00": "\ue001", "\ud83d": "\ue002"}


def _stand_in(name):
    for sur, pu in _STAND_IN.items():
        name = name.replace(sur, pu)
    return name


def _patch_stand_ins(built):
    """Writes the lone surrogates over their stand-ins in every stored UTF-16 key name."""
    import struct
    data = bytearray(built.path.read_bytes())
    for off in built.layout.nk.values():
        flags, = struct.unpack_from("<H", data, off + 4 + 0x02)
        n, = struct.unpack_from("<H", data, off + 4 + 0x48)
        if flags & 0x20:
            continue
        name = data[off + 4 + 0x4C:off + 4 + 0x4C + n].decode("utf-16-le", "surrogatepass")
        for sur, pu in _STAND_IN.items():
            name = name.replace(pu, sur)
        data[off + 4 + 0x4C:off + 4 + 0x4C + n] = name.encode("utf-16-le", "surrogatepass")
    # the patched names sort elsewhere (U+D800 before U+D83D...): put each
    # list back in Windows' order, as a strict read checks it
    from regfast.io.writer import upcase_name
    for lst in built.layout.subkey_list.values():
        p = lst + 4
        if data[p:p + 2] not in (b"lh", b"lf", b"li"):
            continue
        count, = struct.unpack_from("<H", data, p + 2)
        stride = 4 if data[p:p + 2] == b"li" else 8
        entries = [bytes(data[p + 4 + i * stride:p + 4 + (i + 1) * stride]) for i in range(count)]

        def order(entry):
            nk = 4096 + struct.unpack_from("<I", entry)[0] + 4
            flags, n = struct.unpack_from("<H", data, nk + 2)[0], struct.unpack_from("<H", data, nk + 0x48)[0]
            raw = bytes(data[nk + 0x4C:nk + 0x4C + n])
            name = raw.decode("latin-1") if flags & 0x20 else raw.decode("utf-16-le", "surrogatepass")
            return upcase_name(name).encode("utf-16-be", "surrogatepass")
        data[p + 4:p + 4 + count * stride] = b"".join(sorted(entries, key=order))
    built.path.write_bytes(data)


def _slow_name(mapping, off, raw):
    data = bytes(mapping[off:off + (raw & 0x7FFFFFFF)])
    return data.decode("utf-16-le", "surrogatepass") if raw & 0x80000000 else data.decode("latin-1")


def _slow_names(t, offs, lens):
    return [_slow_name(t.mapping, int(o), int(n)) for o, n in zip(offs.tolist(), lens.tolist())]


def _slow_paths(t):
    """key_paths() as documented, from the name bytes decoded by Python."""
    names = _slow_names(t, t.key_name_off, t.key_name_len)
    paths = []
    for i, (par, deleted) in enumerate(zip(t.key_parent.tolist(), t.key_deleted.tolist())):
        if par < 0:
            paths.append(None if deleted else t.root_path)
        elif par >= i or paths[par] is None:
            paths.append(None)
        else:
            paths.append(f"{paths[par]}\\{names[i]}" if paths[par] else names[i])
    return paths


def _canonical(strs):
    """Every str has the narrowest storage: CPython's == compares the kind
    first, and isascii() reads the ASCII flag, so a str built too wide (or
    flagged wrong) fails one of these against a copy made by the codecs."""
    for s in strs:
        if s is None:
            continue
        copy = s.encode("utf-32-le", "surrogatepass").decode("utf-32-le", "surrogatepass")
        assert s == copy and s.isascii() == copy.isascii() and hash(s) == hash(copy), ascii(s)


def _keys_one_by_one(key):
    """Pre-order through Key.subkeys(): names by name_str, paths by the parent chain."""
    yield key
    for sub in key.subkeys():
        yield from _keys_one_by_one(sub)


def _odd_tree():
    tree = {}
    for i, name in enumerate(ODD_NAMES):
        sub = {_stand_in(child): {"v": i} for child in ODD_NAMES[(i * 5) % len(ODD_NAMES):][:4]}
        tree[_stand_in(name)] = {**sub, **{vname: i for vname in ODD_NAMES[i:i + 3]}}
    deep = tree["plain"]
    for d in range(60):            # deep, alternating widths: the path buffer widens and narrows
        name = ("d", "\xe9", "\u4e2d", "\U0001F600", "\ue000")[d % 5] + str(d)
        deep[name] = {}
        deep = deep[name]
    deep["leaf"] = {"": "default", "\U0001F600": 1}
    return tree


def test_scan_names_and_paths_of_every_width(make_hive):
    built = make_hive(_odd_tree())
    _patch_stand_ins(built)
    with regfast.open_hive(built.path) as hive:
        t = hive.scan()
        walked = list(_keys_one_by_one(hive.root))
        paths, knames, vnames = t.key_paths(), t.key_names(), t.value_names()
        assert (t.key_name_len >> 31).any() and not (t.key_name_len >> 31).all()   # both encodings
        assert paths == _slow_paths(t) == [k.path for k in walked]
        assert knames == _slow_names(t, t.key_name_off, t.key_name_len) == [k.name for k in walked]
        assert vnames == _slow_names(t, t.value_name_off, t.value_name_len)
        assert vnames == [v.name for k in walked for v in k.values()]
        assert max(len(p) for p in paths) > 300 and "\\".join(ODD_NAMES[-1:]) in knames
        _canonical(paths + knames + vnames)
        # below a start key whose own path is wide (UCS-4), children of any width
        start = "plain\\d0\\\xe91\\\u4e2d2\\\U0001F6003"
        sub = hive.scan(start)
        assert sub.root_path == start
        assert sub.key_paths() == _slow_paths(sub) == [k.path for k in _keys_one_by_one(hive.open(start))]
        assert sub.key_paths()[0] == start and all(p.startswith(start + "\\") for p in sub.key_paths()[1:])
        _canonical(sub.key_paths())


def test_scan_paths_of_deleted_rows(make_hive):
    from test_deleted import _deleted_subtree   # a built hive with a deleted subtree
    built = _deleted_subtree(make_hive)
    with regfast.open_hive(built.path) as hive:
        t = hive.scan(include_deleted=True)
        assert t.key_paths() == _slow_paths(t)
        assert sorted(p for p, d in zip(t.key_paths(), t.key_deleted.tolist()) if d) == [
            "Parent\\Gone", "Parent\\Gone\\Sub"]
    # the deleted key's parent field now names no key: it and its deleted child lose their path
    data = bytearray(built.path.read_bytes())
    import struct
    struct.pack_into("<I", data, built.layout.nk["Parent\\Gone"] + 4 + 0x10, 0x7FFFFF00)
    built.path.write_bytes(data)
    with regfast.open_hive(built.path) as hive:
        t = hive.scan(include_deleted=True)
        paths = t.key_paths()
        assert paths == _slow_paths(t)
        assert [p for p, d in zip(paths, t.key_deleted.tolist()) if d] == [None, None]
        assert sorted(paths[:3]) == ["", "Live", "Parent"]


# ---- Key.read_values: rows read into scratch, columns made on demand ----------

def _value_of(i, n):
    if n % 3 == 0 and i == n - 1:
        return b"B" * 20_000 + bytes([n])     # big data: assembled in an arena (a second read)
    return Value(REG_QWORD, i << 33) if i % 3 == 2 else (i * 7 if i % 2 else f"s{i}\xe9")


def test_read_values_matches_one_value_reads_around_the_scratch_size(make_hive):
    # 16 rows are read before anything is allocated: keys below, at and above
    # that, by stored order and by name, with missing and filtered rows
    counts = (0, 1, 3, 15, 16, 17, 40)
    built = make_hive({f"k{n:02d}": {f"v{i}": _value_of(i, n) for i in range(n)} for n in counts})
    with regfast.open_hive(built.path) as hive:
        for key in hive.root.subkeys():
            vals = list(key.values())
            n = len(vals)
            b = key.read_values()
            assert len(b) == n and b.names == [v.name for v in vals]
            for col, dt in (("type", np.uint32), ("status", np.int32), ("offset", np.uint64),
                            ("length", np.uint32)):
                assert getattr(b, col).dtype == dt and getattr(b, col).shape == (n,)
            assert b.type.tolist() == [v.type for v in vals] and b.status.tolist() == [0] * n
            assert b.length.tolist() == [len(v.raw()) for v in vals]
            assert [bytes(b.buffer(i)) for i in range(n)] == [v.raw() for v in vals]
            assert b.values() == [v.value for v in vals]
            assert b.to_dict() == {v.name: v.value for v in vals}
            assert (b.arena is not None) == (n % 3 == 0 and n > 0)
            names = [v.name.upper() for v in reversed(vals)] + [f"nope{j}" for j in range(n % 4 + 1)]
            bn = key.read_values(names)
            assert bn.names == names and len(bn) == len(names)
            assert bn.status.tolist() == [0] * n + [2] * (n % 4 + 1)
            assert bn.values() == [v.value for v in reversed(vals)] + [None] * (n % 4 + 1)
            bt = key.read_values(types=[REG_QWORD])
            assert bt.status.tolist() == [0 if v.type == REG_QWORD else 13 for v in vals]
            assert bt.as_int(default=1).tolist() == [v.value if v.type == REG_QWORD else 1 for v in vals]
            assert bt.as_str() == [None] * n
            assert key.read_values(types=[REG_SZ]).as_str() == [v.value if v.type == REG_SZ else None
                                                                 for v in vals]


def test_read_values_batch_pins_the_hive_and_columns_outlive_it(make_hive):
    built = make_hive({"K": {"a": 1, "b": "x", "big": b"Z" * 40_000}})
    hive = regfast.open_hive(built.path)
    batch = hive.open("K").read_values()
    status = batch.status
    assert batch.status is status and batch.type is batch.type     # one view per column
    hive.close()
    assert hive.mapped                         # pinned by the batch (no memoryview was made)
    assert batch.to_dict() == {"a": 1, "b": "x", "big": b"Z" * 40_000}
    assert bytes(batch.mapping[int(batch.offset[1]):int(batch.offset[1]) + 4]) == "x\0".encode("utf-16-le")
    del batch
    assert not hive.mapped                     # the last pin went with the batch
    assert status.tolist() == [0, 0, 0]        # a column holds its own rows


# ---- UTF-16 data, decoded four units at a time ----------------------------------

def _py_utf16(raw, stop_at_nul):
    """utf16_str's contract through Python's codec: an odd last byte is
    ignored, REG_SZ ends at the first NUL unit, surrogates pass."""
    units = raw[:len(raw) // 2 * 2]
    if stop_at_nul:
        for i in range(0, len(units), 2):
            if units[i:i + 2] == b"\0\0":
                units = units[:i]
                break
    return units.decode("utf-16-le", "surrogatepass")


def test_string_data_decodes_like_the_codec_at_every_length_and_nul_position(make_hive):
    import random
    from regfast.io.writer import REG_LINK
    rnd = random.Random(1234)
    alphabets = [
        [ord(c) for c in "abcXYZ019 \\."],                 # ASCII
        [ord(c) for c in "ab"] + [0],                     # ASCII with NULs anywhere
        [0x41, 0xE9, 0xFF, 0x80],                          # Latin-1
        [0x41, 0x100, 0x4E2D, 0xFFFF],                     # wider than Latin-1
        [0x41, 0xD800, 0xDC00, 0xDBFF, 0xDFFF, 0],         # surrogates, paired or not
        [0x41, 0x7F, 0x80, 0xFF, 0x100, 0],                # class boundaries
    ]
    values, expected = {}, {}
    for i in range(600):
        units = [rnd.choice(alphabets[i % len(alphabets)]) for _ in range(rnd.randrange(0, 23))]
        raw = b"".join(u.to_bytes(2, "little") for u in units) + (b"\x41" if i % 7 == 0 else b"")
        vtype = REG_LINK if i % 5 == 0 else REG_SZ
        values[f"v{i}"] = Value(vtype, raw)
        expected[f"v{i}"] = _py_utf16(raw, vtype != REG_LINK)
    with regfast.open_hive(make_hive({"K": values}).path) as hive:
        t = hive.scan()
        got = dict(zip(t.value_names(), t.decoded_values()))
        assert got == expected
        _canonical(got.values())
        assert hive.open("K").read_values().to_dict() == expected


def test_decoded_values_leave_the_cyclic_collector_running(make_hive):
    # decoded_values() used to pause the cyclic collector for its loop; that
    # only deferred it: the lists of REG_MULTI_SZ values made meanwhile were
    # all left young, and the next allocation after it collected over them
    # (and the result). Run as usual, the collector leaves fewer young
    # objects than its threshold after the call, never one per list made.
    import gc

    n = 6000
    built = make_hive({"K": {f"m{i:05d}": [f"a{i}", "b"] for i in range(n)}})
    with regfast.open_hive(built.path) as hive:
        t = hive.scan()
        assert gc.isenabled()
        gc.collect()
        values = t.decoded_values()
        young = gc.get_count()[0]
        assert young <= gc.get_threshold()[0], f"{young} young objects left for a deferred collection"
        assert gc.isenabled()
        assert values[:2] == [["a0", "b"], ["a1", "b"]] and len(values) == n


def test_whole_table_results_cost_no_collector_pass(make_hive):
    # A ScanTable's lists (a row each, a million items on a big hive) and its
    # REG_MULTI_SZ lists are not tracked by the cyclic collector: tracked,
    # every collection that met them walked them item by item (18% of scan()
    # + decode on 110 MB). Nothing in them can be part of a cycle. A
    # ValueBatch, a key's worth, keeps ordinary lists.
    import gc

    tree = {"K": {"m": ["a", "b"], "s": "x", "d": 7, "e": []}, "K2": {"b": b"\x01"}}
    with regfast.open_hive(make_hive(tree).path) as hive:
        t = hive.scan()
        results = {"decoded_values": t.decoded_values(), "key_paths": t.key_paths(),
                   "key_names": t.key_names(), "value_names": t.value_names()}
        for what, lst in results.items():
            assert not gc.is_tracked(lst), what
        multi = [v for v in results["decoded_values"] if isinstance(v, list)]
        assert sorted(multi) == [[], ["a", "b"]]
        assert not any(gc.is_tracked(m) for m in multi)
        assert dict(zip(results["value_names"], results["decoded_values"], strict=True)) == {
            "m": ["a", "b"], "s": "x", "d": 7, "e": [], "b": b"\x01"}
        # still lists to the caller: they change and free as lists do
        lst = results["decoded_values"]
        lst.append("more")
        assert lst[-1] == "more"
        batch = hive.open("K").read_values()
        assert gc.is_tracked(batch.values()) and gc.is_tracked(batch.to_dict()["m"])
        assert gc.is_tracked(hive.open("K")["m"])


# ---- equal names share one str ---------------------------------------------------
# decode_names looks each stored name up in a small cache (src/regfast/_strcache.h)
# before building a str: a real hive has a few hundred distinct value names for
# tens of thousands of rows. Shared or not, every name must be the one stored.

def test_equal_value_names_share_one_str_and_stay_exact(make_hive):
    import struct
    # 400 keys with the same few value names (the cache is on), names that
    # differ only in case or in width; then a run of distinct names (the
    # cache sits out) and the repeated ones again.
    tree = {f"K{i:03d}": {"DisplayName": i, "Nam\xe9": 1, "Nam\u0112": 2, "\x00AB": 3, "ab": 4,
                          "sub": {"displayname": "x"}}     # case-insensitive in one key
            for i in range(400)}
    tree.update({f"U{i:04d}": {f"distinct{i:05d}": i} for i in range(3000)})
    tree.update({f"W{i:04d}": {"DisplayName": i} for i in range(6000)})
    # Latin-1 bytes 00 41 42 00 ("\x00AB\x00") and the UTF-16 name "\u4100B"
    # are equal bytes: in the same column (one cache), the first 25 keys'
    # names are made UTF-16 by clearing the vk's compressed-name flag, the
    # next 25 stay Latin-1. Neither may come back as the other.
    for i in range(50):
        tree[f"K{i:03d}"]["\x00AB\x00"] = 5
    built = make_hive(tree)
    data = bytearray(built.path.read_bytes())
    for i in range(25):
        vk = built.layout.vk[(f"K{i:03d}", "\x00AB\x00")] + 4
        flags, = struct.unpack_from("<H", data, vk + 0x10)
        assert flags & 1, "the writer stored the name as Latin-1"
        struct.pack_into("<H", data, vk + 0x10, flags & ~1)
    built.path.write_bytes(bytes(data))
    with regfast.open_hive(built.path) as h:
        t = h.scan()
        names = t.value_names()
        assert names == [v.name for k in h.walk() for v in k.values()]
        assert names.count("\u4100B") == 25 and names.count("\x00AB\x00") == 25
        display = [n for n in names if n == "DisplayName"]
        assert len(display) == 6400
        # shared: one str for the repeated name (fails when every row builds
        # its own), in the first block and again once the distinct names are
        # behind (the cache sits out a while after them)
        assert len({id(n) for n in display[:400]}) == 1
        assert len({id(n) for n in display[-1000:]}) == 1
        for n in ("displayname", "Nam\xe9", "Nam\u0112", "\x00AB", "ab"):
            assert names.count(n) == 400, n
        assert sum(n.startswith("distinct") for n in names) == 3000
