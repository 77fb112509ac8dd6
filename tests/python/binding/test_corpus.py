"""Every real hive of the corpus (../shared/corpus: hives Windows wrote, from
the public test data of plaso, dfwinreg, Eric Zimmerman's Registry, hivex and
python-registry; provenance and licences in its SOURCES.md) opens — or, for
the files that are not primary hives, is refused with a clear OSError
subclass — walks, scans, decodes and exports to reg/json/csv without an
exception; where hivex reads a hive, the keys and values per key are the ones
hivex finds.

A hive that strict mode refuses for damage (RegistryCorruptError, which must
name the offset) is read again with errors="tolerant" and scan/walk
errors="skip": then a key whose values sit in a damaged region may refuse a
per-key read, with RegistryCorruptError at an offset, exactly where the scan's
key_status says so.
"""
from __future__ import annotations

import collections
import csv
import io
import json
import sys
import warnings

import numpy as np
import pytest

import regfast
from regfast.io.export import export, export_to_file

from conftest import CORPUS_NOT_HIVES, corpus_names, corpus_path
from oracle import HivexError, hivex_counts, hivex_info, require_hivex

# Hives damaged on purpose by their source project: strict mode may refuse them.
DAMAGED = {
    "ez__SAMBadHBinHeader",                    # an hbin with a bad header
    "plaso__regf_corrupt_sub_key_list.hiv",    # a subkey list entry that is not a key
}


def _open(path, errors):
    with warnings.catch_warnings():
        # a dirty hive without its logs (Amcache) warns; that is not the point here
        warnings.simplefilter("ignore", regfast.DirtyHiveWarning)
        return regfast.open_hive(path, errors=errors)


def exercise(path, errors, tmp_path) -> list[tuple[str, int]]:
    """Everything a user would do with a hive; returns (key path, n values) per key."""
    skip = "skip" if errors == "tolerant" else "strict"
    with _open(path, errors) as hive:
        hive.info()
        keys = list(hive.walk(errors=skip))
        t = hive.scan(errors=skip)
        assert t.n_keys == len(keys)
        paths = t.key_paths()
        assert paths == [k.path for k in keys]
        # tolerant reads of damaged hives: where the scan found damage, per-key
        # reads may refuse (with the offset); everywhere else they must work
        status = t.key_status.tolist()
        parent = t.key_parent.tolist()
        bad_values = set(t.value_key[(t.value_status != 0) & ~t.value_malformed].tolist())

        def damaged_here(row: int) -> bool:
            return status[row] != 0 or row in bad_values

        def damaged_path(row: int) -> bool:       # a lookup by path goes through every ancestor
            while row >= 0:
                if status[row] != 0:
                    return True
                row = parent[row]
            return False

        # decoded_values(): None exactly on rows without data
        dec = t.decoded_values()
        has_data = (t.value_status == 0) | t.value_malformed
        for i, d in enumerate(dec):
            assert (d is None) == (not has_data[i]), (i, int(t.value_status[i]))
        assert not ((t.value_status != 0) & ~t.value_malformed).any() or errors == "tolerant"
        keys_df, values_df = t.to_pandas()
        assert len(keys_df) == t.n_keys and len(values_df) == t.n_values

        # per key: read_values, key.get, get_many (pairs and strings), Value objects
        names = t.value_names()
        vkey = t.value_key.tolist()
        by_key = collections.defaultdict(list)
        for i, k in enumerate(vkey):
            by_key[k].append(i)
        for row, key in enumerate(keys):
            try:
                batch = key.read_values()
                d = batch.to_dict()
                key.read_values(errors="skip").values()
                vals = list(key.values())
            except regfast.RegistryCorruptError as e:
                assert damaged_here(row) and e.offset is not None, (key.path, e)
                continue
            rows = by_key.get(row, [])
            assert len(batch) == len(rows) == len(vals)
            first = {}
            for i in rows:
                first.setdefault(names[i].upper(), i)          # lookups find the first of duplicates
            for i in rows:
                name = names[i]
                got = key.get(name, "<missing>")
                assert got is not None or not has_data[i]
                j = first[name.upper()]
                assert got == (dec[j] if has_data[j] else "<missing>") or not has_data[j]
                assert name in d
            pairs = [(key.path, names[i]) for i in rows]
            strings = [key.path + "\\" + names[i] for i in rows if "\\" not in names[i]]
            try:
                assert hive.open(key.path) == key
            except regfast.RegistryCorruptError as e:
                assert damaged_path(row) and e.offset is not None, (key.path, e)
                continue
            got_pairs = hive.get_many(pairs, default="<missing>")
            assert got_pairs == [key.get(n, "<missing>") for _, n in pairs]
            assert hive.get_many(strings, default="<missing>") == [
                key.get(s.rpartition("\\")[2], "<missing>") for s in strings]

        # exports, to files and parsed back
        n_exported = int(has_data.sum())
        for fmt in ("reg", "json", "csv"):
            out = tmp_path / f"out.{fmt}"
            nk, nv = export_to_file(hive, str(out), fmt, errors=skip)
            assert (nk, nv) == (t.n_keys, n_exported), fmt
        recs = json.loads((tmp_path / "out.json").read_text("utf-8"))
        assert len(recs) == t.n_keys
        assert sum(len(r["values"]) for r in recs) <= n_exported     # duplicate names share a slot
        csv.field_size_limit(sys.maxsize)      # real hives hold values of megabytes
        rows = list(csv.reader(io.StringIO((tmp_path / "out.csv").read_text("utf-8"))))
        assert len(rows) > t.n_keys // 2
        reg = (tmp_path / "out.reg").read_bytes()
        assert reg.startswith(b"\xff\xfe") and reg.decode("utf-16-le").count("\r\n[") == t.n_keys

        return list(zip(paths, t.key_n_values.tolist()))


@pytest.mark.parametrize("name", corpus_names())
def test_corpus_hive(name, tmp_path):
    path = corpus_path(name)
    if name in CORPUS_NOT_HIVES:
        for errors in ("strict", "tolerant"):
            with pytest.raises(OSError) as e:
                _open(path, errors)
            assert isinstance(e.value, regfast.NotAHiveError), e.value
            assert e.value.winerror == 1017 and e.value.strerror
        return
    try:
        counts = exercise(path, "strict", tmp_path)
    except regfast.RegistryCorruptError as e:
        assert name in DAMAGED, f"strict mode refuses a hive not known to be damaged: {e}"
        assert e.offset is not None and e.offset > 0
        counts = exercise(path, "tolerant", tmp_path)
    assert counts, "no keys at all"

    require_hivex()
    try:
        theirs = hivex_counts(path)
    except HivexError:
        # hivex refuses it (ez__SAMBadHBinHeader, plaso__regf_corrupt_sub_key_list.hiv)
        assert name in DAMAGED, f"hivex cannot read {name}"
        return
    assert sorted(p for p, _ in theirs) == sorted(p for p, _ in counts), "key paths differ from hivex's"
    assert sorted(theirs) == sorted(counts), "values per key differ from hivex's"


def test_corpus_is_all_there():
    """The corpus has its 29 files; a missing one would silently shrink the test above."""
    names = [n for n in corpus_names() if n != "<corpus absent>"]
    if not names:
        corpus_path("SOURCES.md")       # skips loudly (fails in CI)
    assert len(names) == 29, names
    assert set(CORPUS_NOT_HIVES) <= set(names) and DAMAGED <= set(names)


def test_corpus_malformed_values_are_counted():
    """The real hives with values whose size does not fit their type (plaso's
    Windows 7 NTUSER.DAT, two of Eric Zimmerman's SAM test hives)."""
    want = {"plaso__NTUSER-WIN7.DAT": 3, "ez__SAM_DUPENAME": 1, "ez__SAM_hasBigEndianDWord": 2}
    for name, n in want.items():
        with _open(corpus_path(name), "strict") as h:
            t = h.scan()
            assert t.stats()["malformed_values"] == n, name
            assert np.all(t.value_status[t.value_malformed] == 13)


@pytest.mark.parametrize("name", [n for n in corpus_names() if n not in CORPUS_NOT_HIVES])
def test_corpus_hive_from_buffer(name):
    """The same hives from memory: under AddressSanitizer (tools/asan_pytest.sh)
    a bytes buffer has redzones where an mmap has none, so every read of real
    data is checked there."""
    data = corpus_path(name).read_bytes()
    errors = "tolerant" if name in DAMAGED else "strict"
    skip = "skip" if name in DAMAGED else "strict"
    with regfast.Hive.from_buffer(data, errors=errors) as hive:
        t = hive.scan(errors=skip)
        dec = t.decoded_values()
        assert sum(d is not None for d in dec) == int(((t.value_status == 0) | t.value_malformed).sum())
        t.key_paths(), t.value_names()
        for key in hive.walk(errors=skip):
            try:
                for v in key.values():
                    v.value, v.well_formed
            except regfast.RegistryCorruptError as e:
                assert name in DAMAGED and e.offset is not None


@pytest.mark.parametrize("name", [n for n in corpus_names() if n not in CORPUS_NOT_HIVES])
def test_corpus_values_times_and_classes_equal_hivex(name):
    """Beyond the counts above: every value's type and raw bytes, every
    key's last-write FILETIME and class name, key by key, as hivex reads
    them from the same real hive (hivex_info: python3-hivex out of process,
    which refuses a key listing one value name twice: none of these does)."""
    path = corpus_path(name)
    require_hivex()
    try:
        theirs = hivex_info(path)["keys"]
    except HivexError:
        assert name in DAMAGED, f"hivex cannot read {name}"
        return
    with _open(path, "tolerant") as hive:
        ours = {}
        for key in hive.walk(errors="skip"):
            ours[key.path] = key
        assert set(ours) == set(theirs), "key paths differ from hivex's"
        n_values = 0
        for p, hk in theirs.items():
            key = ours[p]
            vals = list(key.values())
            got = {v.name: (v.type, v.raw()) for v in vals}
            assert len(got) == len(vals) and got == hk["values"], p
            assert key.last_write_raw == hk["timestamp"], p
            assert key.class_name == hk["class"], p
            n_values += len(got)
    assert n_values or len(theirs) < 10
