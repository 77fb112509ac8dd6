"""Registry rows as Apache Arrow: one schema for every hive.

:data:`SCHEMA` is what :func:`regfast.scan_many`, ``regfast scan-many`` (Parquet)
and :func:`regfast.dask.read_hives` produce, one row per value (plus a row per
key that has no value or whose values could not all be read, and one row per
hive that could not be read at all):

======================  ==============================  ========================================
column                  type                            meaning
======================  ==============================  ========================================
source                  dictionary<int32, string>       the hive file, as given (a name's bytes
                                                        that are not UTF-8 as \\udcXX: source_text)
hive_type               dictionary<int32, string>       SYSTEM, SOFTWARE, NTUSER... or "unknown"
                                                        (regfast.hive.forensics.detect_hive_type)
key_path                dictionary<int32, string>       key path from the hive root ("" = root;
                                                        null: a deleted key whose parent is unknown)
key_last_write          timestamp[us, tz=UTC]           null when the FILETIME is past 9999
key_last_write_raw      int64                           the FILETIME as stored (its 64 bits)
value_name              string                          null on key rows and error rows;
                                                        "" is the default value
value_type              dictionary<int32, string>       REG_SZ, REG_DWORD... "0xffff0012" for
                                                        types without a name
value_size              int64                           data bytes the value record declares
data_str                string                          REG_SZ, REG_EXPAND_SZ, REG_LINK
data_int                uint64                          REG_DWORD, REG_DWORD_BIG_ENDIAN, REG_QWORD
                                                        (unsigned, as Windows stores them: a QWORD of
                                                        2**64-1 stays 2**64-1, never -1)
                                                        (a QWORD >= 2**63 keeps its 64 bits)
data_bin                binary                          every other type; also the raw bytes of
                                                        a value with status 13
data_multi              list<string>                    REG_MULTI_SZ
status                  int32                           0, or a Win32 code (below)
error                   string                          what went wrong, on rows with a status
                                                        that is not about the data
deleted                 bool                            a record found in a free cell
                                                        (include_deleted=True)
tolerant                bool                            read from a hive opened in tolerant mode
                                                        (damaged regions skipped)
======================  ==============================  ========================================

Status codes (Win32):

* 0 — the value decoded cleanly.
* 13 (ERROR_INVALID_DATA) — the data does not fit its type (a REG_DWORD of 0
  or 8 bytes, a string of odd length or with a lone surrogate): decoded the
  way winreg reads such data (see :mod:`regfast._columns`) **and** kept raw in
  ``data_bin``. On a deleted value: its data cell was allocated again (the
  bytes are likely someone else's now; not read).
* 2 (ERROR_FILE_NOT_FOUND) — a deleted value whose data is lost.
* 8 (ERROR_NOT_ENOUGH_MEMORY) — a value over 1 GiB: not put in a batch.
* 1015 (ERROR_REGISTRY_CORRUPT) — on a key row: its subkey or value list is
  damaged (``hive.scan(errors="skip")``); on a value row: the value record or
  its data is; on an error row: the hive.
* 1017 (ERROR_NOT_REGISTRY_FILE), 2, 5, 1117 (ERROR_IO_DEVICE), 1450 (a
  regfast limit) ... — on an error row (``key_path`` null): the hive could
  not be read; ``error`` says why. 1067 (ERROR_PROCESS_ABORTED): the worker
  process reading it died, twice; 31 (ERROR_GEN_FAILURE): an unexpected
  exception (a bug; its type and place are in ``error``).

Strings are UTF-8. A key or value name with a lone UTF-16 surrogate (which
UTF-8 cannot carry) shows U+FFFD in its place; ``ScanTable.key_names()``
keeps the exact form.

pandas (:func:`to_pandas`): timestamps become ``datetime64[ns, UTC]`` (NaT
outside 1677-2262, the raw column keeps the FILETIME), dictionary columns
``category``, int64 / uint64 columns pandas' nullable ``Int64`` / ``UInt64``, binary and
list<string> ``ArrowDtype`` columns.

This module needs pyarrow (the ``arrow`` extra); ``import regfast`` does not
import it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

try:
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError as e:  # an optional dependency: say which extra brings it
    raise ImportError(f"regfast's Arrow output needs pyarrow (pip install 'regfast[arrow]'): {e}") from e

from regfast import _columns
from regfast._types import TYPE_NAMES, type_name
from regfast.exceptions import (
    ERROR_IO_DEVICE,
    ERROR_NO_SYSTEM_RESOURCES,
    ERROR_NOT_REGISTRY_FILE,
    ERROR_REGISTRY_CORRUPT,
    RF_E_CORRUPT,
    RF_E_IO,
    RF_E_LIMIT,
    RF_E_UNSUPPORTED_FORMAT,
)

__all__ = [
    "SCHEMA",
    "KEY_SCHEMA",
    "VALUE_SCHEMA",
    "table_batches",
    "error_batch",
    "scan_table_to_arrow",
    "to_pandas",
    "filetime_to_us",
    "win32_status",
    "source_text",
]

_DICT = pa.dictionary(pa.int32(), pa.string())
_TS = pa.timestamp("us", tz="UTC")

SCHEMA = pa.schema(
    [
        ("source", _DICT),
        ("hive_type", _DICT),
        ("key_path", _DICT),
        ("key_last_write", _TS),
        ("key_last_write_raw", pa.int64()),
        ("value_name", pa.string()),
        ("value_type", _DICT),
        ("value_size", pa.int64()),
        ("data_str", pa.string()),
        ("data_int", pa.uint64()),
        ("data_bin", pa.binary()),
        ("data_multi", pa.list_(pa.string())),
        ("status", pa.int32()),
        ("error", pa.string()),
        ("deleted", pa.bool_()),
        ("tolerant", pa.bool_()),
    ]
)

#: ScanTable.to_arrow()'s key table
KEY_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("name", pa.string()),
        ("parent", pa.int64()),
        ("depth", pa.int32()),
        ("last_write", _TS),
        ("last_write_raw", pa.int64()),
        ("n_values", pa.int64()),
        ("status", pa.int32()),
        ("deleted", pa.bool_()),
    ]
)

#: ScanTable.to_arrow()'s value table: ``key`` is the row of the key table,
#: ``key_path`` its path (a join key that survives concatenating tables)
VALUE_SCHEMA = pa.schema(
    [
        ("key", pa.int64()),
        ("key_path", _DICT),
        ("name", pa.string()),
        ("type", _DICT),
        ("size", pa.int64()),
        ("data_str", pa.string()),
        ("data_int", pa.uint64()),
        ("data_bin", pa.binary()),
        ("data_multi", pa.list_(pa.string())),
        ("status", pa.int32()),
        ("deleted", pa.bool_()),
    ]
)

#: rows per batch at most; batches are also cut so that no column's data
#: passes _MAX_BATCH_BYTES (Arrow's string/binary offsets are int32)
BATCH_ROWS = 65_536
_MAX_BATCH_BYTES = 512 << 20

_TYPE_NAMES = [TYPE_NAMES[t] for t in range(12)]  # dictionary index == type for 0..11


def filetime_to_us(ft: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FILETIME column (uint64) -> (Unix microseconds int64, valid bool).
    Invalid: past 9999-12-31 (e.g. 0xFFFFFFFFFFFFFFFF), which no timestamp holds.
    (The rule is _columns._filetime_us's, which table_batches uses too.)"""
    us, ok = _columns.filetime_us(np.ascontiguousarray(ft, dtype=np.uint64))
    return us, ok


def win32_status(st: np.ndarray) -> np.ndarray:
    """regfast status codes (bit 29 set for its own) -> the Win32 codes
    RegistryError.winerror reports, as int32."""
    st = np.asarray(st).astype(np.int64)
    out = st.copy()
    out[st == RF_E_CORRUPT] = ERROR_REGISTRY_CORRUPT
    out[st == RF_E_UNSUPPORTED_FORMAT] = ERROR_NOT_REGISTRY_FILE
    out[st == RF_E_IO] = ERROR_IO_DEVICE
    out[st == RF_E_LIMIT] = ERROR_NO_SYSTEM_RESOURCES
    result: np.ndarray = out.astype(np.int32)
    return result


def _bitmap(valid: np.ndarray) -> tuple[pa.Buffer | None, int]:
    nulls = int(valid.size - np.count_nonzero(valid))
    if nulls == 0:
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), nulls


def _strings(typ: pa.DataType, off: np.ndarray, data: np.ndarray, valid: np.ndarray) -> pa.Array:
    bm, nulls = _bitmap(valid)
    return pa.Array.from_buffers(typ, len(valid), [bm, pa.py_buffer(off), pa.py_buffer(data)], nulls)


# Arrays are made from buffers, never with pa.array(): that one imports pandas
# when it is installed (~0.5 s and tens of MB in every worker process).
_NP = {pa.int32(): np.int32, pa.int64(): np.int64, pa.uint64(): np.uint64}
_INT64 = pa.int64()


def _num(vals: np.ndarray, typ: pa.DataType = _INT64, valid: np.ndarray | None = None) -> pa.Array:
    """A primitive array over a numpy array (no copy when the dtype fits)."""
    vals = np.ascontiguousarray(vals, dtype=_NP[typ])
    bm, nulls = _bitmap(valid) if valid is not None else (None, 0)
    return pa.Array.from_buffers(typ, len(vals), [bm, pa.py_buffer(vals)], nulls)


def _ints(vals: np.ndarray, valid: np.ndarray | None, typ: pa.DataType = _INT64) -> pa.Array:
    return _num(vals, typ, valid)


def _bools(vals: np.ndarray | bool, n: int | None = None) -> pa.Array:
    a = np.full(n, bool(vals)) if n is not None else np.asarray(vals, dtype=bool)
    return pa.Array.from_buffers(pa.bool_(), len(a), [None, pa.py_buffer(np.packbits(a, bitorder="little"))])


def source_text(path: str) -> str:
    """A file name as the ``source`` column (and scan-many's summary) spells
    it: os.fsdecode'd names hold each byte that is not UTF-8 as a lone
    surrogate (U+DC80..U+DCFF), which UTF-8 cannot carry; each is written
    ``\\udcXX``, as Python's repr shows it. Replaced by U+FFFD, two files
    whose names differ only there (J\\xe9r\\xf4me and J\\xe8r\\xf6me,
    Latin-1 names on a UTF-8 system) were one source."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8")


def _str_list(items: Sequence[str | None]) -> pa.Array:
    """A string array from a few Python strs (dictionaries, error rows)."""
    raw = [
        b"" if x is None else x.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode()
        for x in items
    ]
    off = np.zeros(len(raw) + 1, np.int32)
    np.cumsum([len(b) for b in raw], out=off[1:])
    data = np.frombuffer(b"".join(raw), np.uint8) if any(raw) else np.zeros(0, np.uint8)
    return _strings(pa.string(), off, data, np.array([x is not None for x in items], bool))


def _timestamps(ft: np.ndarray, present: np.ndarray) -> tuple[pa.Array, pa.Array]:
    us, ok = filetime_to_us(ft)
    # from buffers: pa.array() with a time zone imports pandas (~0.5 s a worker)
    bm, nulls = _bitmap(ok & present)
    ts = pa.Array.from_buffers(_TS, len(us), [bm, pa.py_buffer(us)], nulls)
    raw = _num(np.asarray(ft, dtype=np.uint64).view(np.int64), pa.int64(), present)
    return ts, raw


# The dictionary of the twelve standard types, made once: most batches hold
# no other type (building it per batch cost ~9 us, of a small hive's ~200).
_TYPE_DICTIONARY = _str_list(_TYPE_NAMES)


def _type_dictionary(types: np.ndarray, present: np.ndarray) -> pa.Array:
    """value_type: indices 0..11 are the types themselves; other types get
    names after them ("0xffff0012"), in numeric order."""
    if not len(types) or int(types.max()) < 12:
        # only standard types (most batches): the index is the type itself
        return pa.DictionaryArray.from_arrays(_num(types, pa.int32(), present), _TYPE_DICTIONARY)
    t = types.astype(np.int64)
    other = np.unique(t[present & (t >= 12)])
    names = _str_list(_TYPE_NAMES + [type_name(int(x)) for x in other]) if len(other) else _TYPE_DICTIONARY
    idx = np.where(t < 12, t, 12 + np.searchsorted(other, t)).astype(np.int32)
    return pa.DictionaryArray.from_arrays(_num(idx, pa.int32(), present), names)


def _const_dictionary(value: str | None, n: int) -> pa.Array:
    if value is None:
        return pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()), _str_list([]))
    return pa.DictionaryArray.from_arrays(_num(np.zeros(n, np.int32), pa.int32()), _str_list([value]))


def _data_status(table: Any) -> np.ndarray:
    """value_status, except 0 where the scan marked a value malformed (a
    binding that flags them: status 13 + ``value_malformed``, data present):
    _columns decodes those and gives them status 13 itself, raw bytes kept."""
    mal = getattr(table, "value_malformed", None)
    if mal is None or not mal.any():
        status: np.ndarray = table.value_status
        return status
    result: np.ndarray = np.where(mal, 0, table.value_status).astype(np.int32)
    return result


def _data_arrays(
    table: Any, data_status: np.ndarray, vrows: np.ndarray, decode: bool
) -> tuple[list[pa.Array], np.ndarray]:
    """(data_str, data_int, data_bin, data_multi), status (Win32) of value
    rows; ``data_status`` is _data_status(table)."""
    d = _columns.values(
        table.mapping,
        table.arena,
        table.value_type,
        data_status,
        table.value_offset,
        table.value_length,
        vrows,
        decode,
    )
    items = _strings(pa.string(), d["item_off"], d["item_data"], np.ones(len(d["item_off"]) - 1, bool))
    bm, nulls = _bitmap(d["multi_valid"])
    multi = pa.Array.from_buffers(
        pa.list_(pa.string()), len(vrows), [bm, pa.py_buffer(d["multi_off"])], nulls, children=[items]
    )
    arrays = [
        _strings(pa.string(), d["str_off"], d["str_data"], d["str_valid"]),
        _ints(d["int_val"].view(np.uint64), d["int_valid"], pa.uint64()),
        _strings(pa.binary(), d["bin_off"], d["bin_data"], d["bin_valid"]),
        multi,
    ]
    return arrays, win32_status(d["status"])


def _cuts(cost: np.ndarray, max_rows: int) -> list[tuple[int, int]]:
    """Row ranges of at most max_rows rows and _MAX_BATCH_BYTES of cost."""
    n = len(cost)
    out, lo = [], 0
    csum = np.cumsum(cost, dtype=np.int64)
    while lo < n:
        base = csum[lo - 1] if lo else 0
        hi = int(np.searchsorted(csum, base + _MAX_BATCH_BYTES, side="right"))
        hi = max(lo + 1, min(hi, lo + max_rows, n))
        out.append((lo, hi))
        lo = hi
    return out


def _root_bytes(root: str) -> bytes:
    return root.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace").encode("utf-8")


def _key_paths(table: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    return _columns.key_paths(
        table.mapping,
        table.key_parent,
        table.key_deleted.view(np.uint8),
        table.key_token,
        table.key_name_len,
        _root_bytes(table.root_path or ""),
    )


def _row_plan(table: Any, key_status: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(key row, value row or -1) of every output row: keys in order, a key's
    own row (when it has no value, or a status) before its values; values of
    no known key last."""
    # the scan's order (values grouped by key, keys in order): each row
    # placed in one C pass instead of sorting a million of them
    plan = _columns.row_plan(
        np.ascontiguousarray(table.value_key, dtype=np.int32),
        np.ascontiguousarray(key_status, np.int32),
        table.n_keys,
    )
    return plan if plan is not None else _row_plan_sorted(table, key_status)


def _row_plan_sorted(table: Any, key_status: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """_row_plan for a table in any order: every row placed, then sorted."""
    nk, nv = table.n_keys, table.n_values
    vkey = np.asarray(table.value_key, dtype=np.int64)
    known = vkey >= 0
    counts = np.bincount(vkey[known], minlength=nk)[:nk]
    own = (counts == 0) | (key_status != 0)
    key_only = np.flatnonzero(own)
    row_key = np.concatenate([key_only, vkey])
    row_val = np.concatenate([np.full(len(key_only), -1, np.int64), np.arange(nv, dtype=np.int64)])
    order = np.argsort(np.where(row_key >= 0, row_key, nk), kind="stable")
    return row_key[order], row_val[order]


def _unique_dictionary(d: pa.Array, idx: np.ndarray, ok: np.ndarray) -> pa.DictionaryArray:
    """Rows pointing at `idx` in the strings `d` (null where not `ok` or where
    d is null), as a dictionary column whose dictionary holds each string
    once and no null: pandas refuses duplicate or null categories, and
    Arrow's group_by would count one path twice."""
    enc = pc.dictionary_encode(d)
    where = pc.fill_null(enc.indices, -1).to_numpy()
    at = where[idx]
    ok = ok & (at >= 0)
    return pa.DictionaryArray.from_arrays(
        _num(np.where(ok, at, 0).astype(np.int32), pa.int32(), ok), enc.dictionary
    )


def _path_dictionary(
    p_off: np.ndarray, p_data: np.ndarray, p_ok: np.ndarray, rk: np.ndarray, distinct: bool = True
) -> pa.Array:
    """key_path of a batch: indices into the paths of the key rows it spans
    (a batch covers a run of consecutive keys: the dictionary is a slice of
    the hive's paths, not a copy per row). Unless the paths are `distinct`
    (each known, none twice: _columns.key_paths tells), the slice is made
    unique first."""
    has = rk >= 0
    if not has.any():
        return pa.DictionaryArray.from_arrays(pa.nulls(len(rk), pa.int32()), _str_list([]))
    lo, hi = int(rk[has].min()), int(rk[has].max()) + 1
    off = p_off[lo : hi + 1]
    idx = np.where(has, rk - lo, 0).astype(np.int32)
    ok = has & p_ok[np.where(has, rk, 0)]
    rel = (off - off[0]).astype(np.int32)
    if not distinct:
        return _unique_dictionary(_strings(pa.string(), rel, p_data[off[0] : off[-1]], p_ok[lo:hi]), idx, ok)
    d = _strings(pa.string(), rel, p_data[off[0] : off[-1]], np.ones(hi - lo, bool))
    return pa.DictionaryArray.from_arrays(_num(idx, pa.int32(), ok), d)


_DAMAGED_LIST = "the key's subkey or value list is damaged; what could be read is in the other rows"


def table_batches(
    table: Any,
    *,
    source: str,
    hive_type: str | None = None,
    tolerant: bool = False,
    decode: bool = True,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """A ScanTable as record batches of :data:`SCHEMA`: the values in key order,
    each key without values (or with a status) as a row of its own."""
    key_status = win32_status(table.key_status)
    row_key, row_val = _row_plan(table, key_status)
    p_off, p_data, p_ok, distinct = _key_paths(table)
    distinct = distinct and bool(p_ok.all())
    has_k, has_v = row_key >= 0, row_val >= 0
    data_status = _data_status(table)
    # every row's plain columns in one C pass; each batch takes its slice
    c = _columns.row_columns(
        row_key,
        row_val,
        np.ascontiguousarray(table.key_last_write, np.uint64),
        key_status,
        table.key_deleted.view(np.uint8),
        p_off,
        np.ascontiguousarray(table.value_type, np.uint32),
        np.ascontiguousarray(table.value_length, np.uint32),
        table.value_deleted.view(np.uint8),
        np.ascontiguousarray(table.value_name_len, np.uint32),
    )
    cost = c["cost"] + _columns.data_bound(table.value_type, data_status, table.value_length, row_val, decode)
    cuts = _cuts(cost, batch_rows)
    for lo, hi in cuts:
        rk, rv = row_key[lo:hi], row_val[lo:hi]
        hk, hv = has_k[lo:hi], has_v[lo:hi]
        n = hi - lo
        # A batch's columns of its own when there are several: a slice would
        # keep every row's column alive for as long as one batch is kept.
        own = {k: c[k][lo:hi].copy() if len(cuts) > 1 else c[k] for k in ("us", "raw", "size")}
        bm, nulls = _bitmap(c["ts_ok"][lo:hi])
        ts = pa.Array.from_buffers(_TS, n, [bm, pa.py_buffer(own["us"])], nulls)
        raw = _num(own["raw"], pa.int64(), hk)
        vn = _strings(
            pa.string(),
            *_columns.names(
                table.mapping, table.value_token, _columns.VALUE_NAME_AT, table.value_name_len, rv
            ),
        )
        vt = _type_dictionary(c["vtype"][lo:hi], hv)
        size = _ints(own["size"], hv)
        data, vstatus = _data_arrays(table, data_status, rv, decode)
        kst = c["kst"][lo:hi]  # 0 but on key rows
        status = np.where(hv, vstatus, kst).astype(np.int32)
        err_rows = ~hv & (kst != 0)
        error = (
            _str_list([_DAMAGED_LIST if e else None for e in err_rows.tolist()])
            if err_rows.any()
            else pa.nulls(n, pa.string())
        )
        yield pa.RecordBatch.from_arrays(
            [
                _const_dictionary(source_text(source), n),
                _const_dictionary(hive_type, n),
                _path_dictionary(p_off, p_data, p_ok, rk, distinct),
                ts,
                raw,
                vn,
                vt,
                size,
                *data,
                _num(status, pa.int32()),
                error,
                _bools(c["deleted"][lo:hi]),
                _bools(tolerant, n),
            ],
            schema=SCHEMA,
        )


def error_batch(
    source: str, status: int, error: str, *, hive_type: str | None = None, tolerant: bool = False
) -> pa.RecordBatch:
    """The one row that stands for a hive that could not be read."""
    cols: list[pa.Array] = []
    for f in SCHEMA:
        if f.name == "source":
            cols.append(_const_dictionary(source_text(source), 1))
        elif f.name == "hive_type":
            cols.append(_const_dictionary(hive_type, 1))
        elif f.name == "status":
            cols.append(_num(np.array([status]), pa.int32()))
        elif f.name == "error":
            cols.append(_str_list([error]))
        elif f.name == "deleted":
            cols.append(_bools(False, 1))
        elif f.name == "tolerant":
            cols.append(_bools(tolerant, 1))
        else:
            cols.append(pa.nulls(1, f.type))
    return pa.RecordBatch.from_arrays(cols, schema=SCHEMA)


def scan_table_to_arrow(table: Any, decode: bool = True) -> tuple[pa.Table, pa.Table]:
    """ScanTable.to_arrow(): (keys, values) with :data:`KEY_SCHEMA` and
    :data:`VALUE_SCHEMA` (the types of :data:`SCHEMA`)."""
    nk, nv = table.n_keys, table.n_values
    p_off, p_data, p_ok, distinct = _key_paths(table)
    if p_off[-1] > 0x7FFFFFFF:
        raise ValueError(
            f"the key paths of this table take {int(p_off[-1]):,} bytes, more than one Arrow "
            "string array holds; use regfast.arrow.table_batches (batches)"
        )
    paths = _strings(pa.string(), p_off.astype(np.int32), p_data, p_ok)
    every_key = np.arange(nk, dtype=np.int64)
    ts, raw = _timestamps(table.key_last_write, np.ones(nk, bool))
    keys = pa.Table.from_arrays(
        [
            paths,
            _strings(
                pa.string(),
                *_columns.names(
                    table.mapping, table.key_token, _columns.KEY_NAME_AT, table.key_name_len, every_key
                ),
            ),
            _num(table.key_parent),
            _num(table.key_depth, pa.int32()),
            ts,
            raw,
            _num(table.key_n_values),
            _num(win32_status(table.key_status), pa.int32()),
            _bools(table.key_deleted),
        ],
        schema=KEY_SCHEMA,
    )
    every_value = np.arange(nv, dtype=np.int64)
    vkey = np.asarray(table.value_key, dtype=np.int64)
    linked = vkey >= 0
    ok = linked & p_ok[np.where(linked, vkey, 0)] if nk else linked
    idx = np.where(linked, vkey, 0).astype(np.int32)
    if distinct and p_ok.all():
        key_path = pa.DictionaryArray.from_arrays(_num(idx, pa.int32(), ok), paths)
    else:
        key_path = _unique_dictionary(paths, idx, ok)
    data, status = _data_arrays(table, _data_status(table), every_value, decode)
    values = pa.Table.from_arrays(
        [
            _num(vkey),
            key_path,
            _strings(
                pa.string(),
                *_columns.names(
                    table.mapping,
                    table.value_token,
                    _columns.VALUE_NAME_AT,
                    table.value_name_len,
                    every_value,
                ),
            ),
            _type_dictionary(table.value_type, np.ones(nv, bool)),
            _num(table.value_length),
            *data,
            _num(status, pa.int32()),
            _bools(table.value_deleted),
        ],
        schema=VALUE_SCHEMA,
    )
    return keys, values


# pandas' datetime64[ns] spans 1677-09-21 .. 2262-04-11
_NS_MIN_US = -9_223_372_036_854_775 + 1
_NS_MAX_US = 9_223_372_036_854_775 - 1


def _ns_safe(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """timestamp[us] -> timestamp[ns]; null where ns cannot hold it."""
    as_int = pc.cast(col, pa.int64())
    fits = pc.and_(pc.greater_equal(as_int, _NS_MIN_US), pc.less_equal(as_int, _NS_MAX_US))
    kept = pc.if_else(fits, col, pa.scalar(None, col.type))
    return pc.cast(kept, pa.timestamp("ns", tz="UTC"))


def _pandas_type(t: pa.DataType) -> Any:
    import pandas as pd

    if t == pa.int64():
        return pd.Int64Dtype()
    if t == pa.uint64():
        return pd.UInt64Dtype()
    if pa.types.is_list(t) or pa.types.is_binary(t):
        # Arrow-backed: lists stay lists, and bytes stay bytes (an object
        # column of bytes is taken for strings by Dask's string conversion)
        return pd.ArrowDtype(t)
    return None


def to_pandas(data: pa.Table | pa.RecordBatch) -> Any:
    """A table of these schemas as a pandas DataFrame with the types the
    module docstring lists (pandas must be installed)."""
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    for i, f in enumerate(data.schema):
        if pa.types.is_timestamp(f.type):
            data = data.set_column(i, f.name, _ns_safe(data.column(i)))
    import pandas as pd

    df = data.to_pandas(types_mapper=_pandas_type)
    # an empty dictionary (a column all null) gives object categories, the
    # others pandas' string dtype: one dtype, so that partitions concatenate
    str_dtype = pd.Index([""]).dtype
    for name in df.columns:
        col = df[name]
        if isinstance(col.dtype, pd.CategoricalDtype) and col.cat.categories.dtype != str_dtype:
            df[name] = col.cat.set_categories(col.cat.categories.astype(str_dtype))
    return df
