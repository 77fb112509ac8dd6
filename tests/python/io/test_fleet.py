"""scan_many over the real corpus: every hive accounted for (rows, or one
error row), the same rows from the process pool as read in this process, a
worker that dies, the Parquet dataset of ``regfast scan-many`` read back by
pyarrow and queried by DuckDB with README's query."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

pa = pytest.importorskip("pyarrow")

import regfast  # noqa: E402
from regfast import arrow  # noqa: E402
from regfast.io import fleet  # noqa: E402
from regfast.cli import main  # noqa: E402

from conftest import CORPUS_DIR, CORPUS_NOT_HIVES, ROOT, corpus_names, corpus_path  # noqa: E402

BAD_HBIN = "ez__SAMBadHBinHeader"        # strict open refuses it; tolerant reads most of it
COLS = ["source", "key_path", "value_name", "value_type", "data_str", "data_int", "data_bin",
        "data_multi", "status", "deleted", "tolerant"]


@pytest.fixture(scope="module")
def corpus_files() -> list[str]:
    files = [str(corpus_path(n)) for n in corpus_names()]
    assert len(files) >= 29
    return files


def _rows(table) -> list[tuple]:
    d = table.select(COLS).to_pydict()
    return sorted(zip(*(d[c] for c in COLS)), key=repr)


def _in_process(path: str, errors: str = "skip") -> list[tuple]:
    """What one hive should give: table_batches in this process, or an error row."""
    sm = fleet.ScanMany([path], fleet._opts(True, errors, False, "auto", 65_536), 0, False)
    return _rows(sm.to_table())


def test_scan_many_pool_matches_in_process_and_accounts_for_every_hive(corpus_files):
    sm = regfast.scan_many(corpus_files, workers=2, progress=False)
    table = sm.to_table()
    assert table.schema == arrow.SCHEMA
    assert sorted(h.source for h in sm.hives) == sorted(corpus_files)
    by_source = {h.source: h for h in sm.hives}
    agg = table.group_by("source").aggregate([("status", "count")]).to_pydict()   # (group_by works:
    counts = dict(zip(agg["source"], agg["status_count"]))                         # dictionaries unified)
    for f in corpus_files:
        name = Path(f).name
        h = by_source[f]
        assert counts[f] == h.rows, name
        if name in CORPUS_NOT_HIVES or name == BAD_HBIN:
            # one error row: no key, the Win32 code, and why
            rows = table.filter(pa.compute.equal(table["source"].cast(pa.string()), f)).to_pylist()
            assert len(rows) == 1 and rows[0]["key_path"] is None and rows[0]["error"], name
            assert rows[0]["status"] == (1015 if name == BAD_HBIN else 1017), rows[0]
            assert h.status == rows[0]["status"]
        else:
            assert h.error is None and h.rows > 0, (name, h.error)
    # the pool's rows are the rows read in this process, hive by hive
    assert _rows(table) == sorted((r for f in corpus_files for r in _in_process(f)), key=repr)
    # values whose size does not fit their type are rows with status 13, not lost
    dupe = table.filter(pa.compute.equal(table["status"], 13)).to_pylist()
    assert {Path(r["source"]).name for r in dupe} >= {"ez__SAM_DUPENAME", "plaso__NTUSER-WIN7.DAT"}
    # the dirty hive read without logs says so
    amcache = by_source[str(CORPUS_DIR / "plaso__winreg_Amcache.hve")]
    assert any("dirty" in w for w in amcache.warnings)


def test_tolerant_and_strict_modes():
    bad = str(corpus_path(BAD_HBIN))
    not_hive = str(corpus_path("ez__NotAHive"))
    good = str(corpus_path("ez__SAM"))
    table = regfast.scan_many([bad, not_hive, good], workers=0, errors="tolerant").to_table()
    rows = table.to_pylist()
    bad_rows = [r for r in rows if r["source"] == bad]
    assert len(bad_rows) > 10 and all(r["tolerant"] for r in bad_rows)
    # no whole-hive error row; keys whose lists sit in the damaged region say so
    assert all(r["key_path"] is not None for r in bad_rows)
    assert {r["status"] for r in bad_rows if r["error"]} == {1015}
    assert [r["status"] for r in rows if r["source"] == not_hive] == [1017]
    assert not any(r["tolerant"] for r in rows if r["source"] == good)
    with pytest.raises(regfast.NotAHiveError):
        regfast.scan_many([good, not_hive], workers=0, errors="strict").to_table()
    with pytest.raises(ValueError):
        regfast.scan_many([good], errors="ignore")


def test_a_worker_that_dies_costs_its_hive_only(corpus_files):
    hives = [f for f in corpus_files if Path(f).name not in CORPUS_NOT_HIVES and BAD_HBIN not in f][:8]
    victim = hives[3]
    opts = dict(fleet._opts(True, "skip", False, "auto", 65_536), crash_on=Path(victim).name)
    sm = fleet.ScanMany(hives, opts, 2, False)
    table = sm.to_table()
    by_source = {h.source: h for h in sm.hives}
    assert sorted(by_source) == sorted(hives)
    assert by_source[victim].status == 1067 and "died" in by_source[victim].error
    vrows = table.filter(pa.compute.equal(table["source"].cast(pa.string()), victim)).to_pylist()
    assert len(vrows) == 1 and vrows[0]["status"] == 1067
    # the hives that were in flight with it were retried, and read in full
    for f in hives:
        if f != victim:
            assert by_source[f].error is None
            got = table.filter(pa.compute.equal(table["source"].cast(pa.string()), f))
            assert _rows(got) == _in_process(f)


def test_a_worker_that_dies_while_the_caller_is_busy(corpus_files):
    # The caller takes its time with each batch, so the worker dies while the
    # generator is suspended: the next submit meets a pool that is already
    # broken (CI saw BrokenProcessPool escape from ScanMany this way).
    hives = [f for f in corpus_files if Path(f).name not in CORPUS_NOT_HIVES and BAD_HBIN not in f][:8]
    victim = hives[3]
    opts = dict(fleet._opts(True, "skip", False, "auto", 65_536), crash_on=Path(victim).name)
    sm = fleet.ScanMany(hives, opts, 2, False)
    batches = []
    for batch in sm:
        batches.append(batch)
        time.sleep(0.4)
    by_source = {h.source: h for h in sm.hives}
    assert sorted(by_source) == sorted(hives)
    assert by_source[victim].status == 1067
    assert all(by_source[f].error is None for f in hives if f != victim)
    table = pa.Table.from_batches(batches, schema=arrow.SCHEMA).unify_dictionaries()
    for f in hives:
        if f != victim:
            got = table.filter(pa.compute.equal(table["source"].cast(pa.string()), f))
            assert _rows(got) == _in_process(f)


def _spools(directory) -> list:
    """scan_many's spool directories there (multiprocessing's own temporary
    directory may appear beside them when a pool starts its forkserver)."""
    return [p for p in directory.iterdir() if p.name.startswith("regfast-scan-many")]


def _spool_maps() -> int:
    """Mappings of scan_many spool files this process holds (Linux)."""
    with open("/proc/self/maps") as f:
        return sum("regfast-scan-many" in line for line in f)


@pytest.mark.parametrize("mapped", [True, False], ids=["mapped", "read"])
def test_pool_batches_keep_their_dictionaries_and_outlive_their_spool_files(corpus_files, tmp_path,
                                                                           monkeypatch, mapped):
    # small batches (each with its own key-path dictionary) come back through
    # spool files, mapped (or, once a process has mapped MAX_SPOOL_MAPS, read)
    # and removed at once: the batches still read after every file (and the
    # directory) is gone, and the mappings go with the last batch
    import gc
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    if not mapped:
        monkeypatch.setattr(fleet, "_maps_made", fleet.MAX_SPOOL_MAPS)
    hives = [f for f in corpus_files if Path(f).name in ("plaso__regf_UsrClass.dat", "ez__SAM", "ez__NotAHive")]
    made = fleet._maps_made
    batches = list(fleet.ScanMany(hives, fleet._opts(True, "skip", False, "auto", 500), 2, False))
    assert _spools(tmp_path) == []
    assert fleet._maps_made == made + (len(hives) if mapped else 0)
    gc.collect()
    if Path("/proc/self/maps").exists():
        assert _spool_maps() == (len(hives) if mapped else 0)
    spooled = pa.Table.from_batches(batches, schema=arrow.SCHEMA).unify_dictionaries()
    direct = fleet.ScanMany(hives, fleet._opts(), 0, False).to_table()
    assert spooled.num_rows == direct.num_rows > 20_000 and len(batches) > 40
    assert _rows(spooled) == _rows(direct)
    del batches, spooled
    gc.collect()
    if Path("/proc/self/maps").exists():
        assert _spool_maps() == 0


def test_an_output_that_cannot_be_written_is_the_hives_error_row(tmp_path, monkeypatch):
    # a full disk under the spool (or the Parquet dataset): that hive's error
    # row says so, the scan goes on; errors="strict" raises
    import errno

    def full(self, batch):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fleet._Sink, "write", full)
    good = str(corpus_path("ez__SAM"))
    res = fleet._scan_one(good, str(tmp_path / "out.arrows"), "ipc", fleet._opts())
    assert res.output is None and res.status == 112 and res.rows == 1
    assert "No space left on device" in res.error and "writing" in res.error
    assert list(tmp_path.iterdir()) == []               # the partial output is gone
    rows = pa.Table.from_batches(list(fleet._read_ipc(res)), schema=arrow.SCHEMA).to_pylist()
    assert len(rows) == 1 and rows[0]["status"] == 112 and rows[0]["source"] == good
    assert rows[0]["key_path"] is None and "No space" in rows[0]["error"]
    with pytest.raises(OSError):
        fleet._scan_one(good, str(tmp_path / "out.arrows"), "ipc", fleet._opts(errors="strict"))
    # in a Parquet dataset the hive has no file, so no row: its summary says why
    res = fleet._scan_one(good, str(tmp_path / "part-0.parquet"), "parquet", fleet._opts())
    assert res.output is None and res.status == 112 and res.rows == 0 and "No space" in res.error
    assert list(tmp_path.iterdir()) == []
    # pyarrow out of memory (ArrowMemoryError is a MemoryError): that hive's
    # error row too (from a worker it used to end the whole run)

    def no_memory(self, batch):
        raise pa.ArrowMemoryError("malloc of size 1048576 failed")

    monkeypatch.setattr(fleet._Sink, "write", no_memory)
    res = fleet._scan_one(good, str(tmp_path / "out.arrows"), "ipc", fleet._opts())
    assert res.output is None and res.status == 8 and "malloc" in res.error


def test_in_process_writes_nothing_to_disk_and_reports_hives_as_the_pool(corpus_files, tmp_path,
                                                                         monkeypatch):
    # workers=0 hands hive_batches' batches straight on: no Arrow IPC stream
    # made and read back, no spool directory (it once went through both)
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    hives = corpus_files[:6] + [str(corpus_path(BAD_HBIN)), str(corpus_path("ez__NotAHive"))]
    local = regfast.scan_many(hives, workers=0, errors="tolerant", progress=False)
    batches = []
    for batch in local:
        assert _spools(tmp_path) == []
        batches.append(batch)
    pool = regfast.scan_many(hives, workers=2, errors="tolerant", progress=False)
    table = pool.to_table()
    assert _rows(pa.Table.from_batches(batches, schema=arrow.SCHEMA)) == _rows(table)

    def facts(h):
        return (h.source, h.rows, h.status, h.error, h.hive_type, h.tolerant, h.warnings, h.output)

    assert [facts(h) for h in local.hives] == sorted((facts(h) for h in pool.hives),
                                                     key=lambda f: hives.index(f[0]))
    assert all(h.seconds > 0 for h in local.hives)


def test_progress_callback_and_tqdm_bar(corpus_files, capsys):
    seen = []
    regfast.scan_many(corpus_files[:5], workers=0, progress=lambda d, t: seen.append((d, t))).to_table()
    assert seen == [(i, 5) for i in range(1, 6)]
    pytest.importorskip("tqdm")
    regfast.scan_many(corpus_files[:3], workers=0, progress=True).to_table()
    err = capsys.readouterr().err
    assert "hives" in err and "3/3" in err


def _not_regf(directory):
    out = []
    for p in sorted(Path(directory).iterdir()):
        if p.is_file() and not re.search(r"\.LOG[12]?$", p.name, re.I):
            with open(p, "rb") as f:
                if f.read(4) != b"regf":
                    out.append(str(p))
    return out


def test_expand_paths_directory_glob_and_list(corpus_files):
    left_out = []
    found = fleet.expand_paths(CORPUS_DIR, left_out=left_out)
    names = {Path(p).name for p in found}
    # a directory: regf primary files only (logs are read with their hive)
    assert "dfwinreg__NTUSER.DAT.LOG" not in names and "ez__NotAHive" not in names
    assert "dfwinreg__NTUSER.DAT" in names and BAD_HBIN in names
    # the others are named to the caller who asks, not dropped unsaid
    assert left_out == _not_regf(CORPUS_DIR)
    assert {"ez__NotAHive", "dfwinreg__USER.DAT_win9x_creg"} <= {Path(p).name for p in left_out}
    assert regfast.scan_many(CORPUS_DIR, workers=0).left_out == left_out
    assert regfast.scan_many(corpus_files[:2], workers=0).left_out == []
    assert fleet.expand_paths(str(CORPUS_DIR / "ez__SAM*")) == sorted(
        str(CORPUS_DIR / n) for n in corpus_names() if n.startswith("ez__SAM"))
    assert fleet.expand_paths(corpus_files[:2]) == corpus_files[:2]


def _readme_sql() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- scan-many-query -->\s*```sql\n(.*?)```", text, re.S)
    assert m, "README.md lost its DuckDB query over the scan-many output"
    return m.group(1)


def test_scan_many_cli_writes_a_parquet_dataset_duckdb_can_query(tmp_path, capsys):
    ds = pytest.importorskip("pyarrow.dataset")
    duckdb = pytest.importorskip("duckdb")
    out = tmp_path / "out"
    # 1: a hive could not be read (its error row is in the dataset all the same)
    assert main(["scan-many", str(CORPUS_DIR), "-o", str(out), "--workers", "2", "-q"]) == 1
    err = capsys.readouterr().err
    assert "(1 hive(s) with an error row)" in err
    expected = fleet.expand_paths(CORPUS_DIR)
    parts = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(parts) == len(expected) and all(p.startswith("hive=") for p in parts)
    assert f"{len(expected)} hives" in err
    summary = json.loads((out / "_scan_many.json").read_text())
    assert summary["hives"] == len(expected)
    assert [f["source"] for f in summary["failed"]] == [str(CORPUS_DIR / BAD_HBIN)]
    # the files it left out are said (stderr and the summary), and its advice is the flag
    assert summary["left_out"] == _not_regf(CORPUS_DIR)
    assert f"{len(summary['left_out'])} entries left out (no 'regf' signature, " in err
    assert "ez__NotAHive" in err
    assert "rerun with --errors tolerant to read the rest" in err and 'errors="tolerant"' not in err
    # round trip: the dataset holds exactly scan_many's rows
    dataset = ds.dataset(out, format="parquet", partitioning="hive")
    back = dataset.to_table()
    assert "hive" in back.column_names
    assert back.num_rows == summary["rows"]
    direct = regfast.scan_many(expected, workers=0).to_table()
    assert _rows(back) == _rows(direct)
    assert back.schema.field("key_last_write").type == pa.timestamp("us", tz="UTC")
    # columns whose values repeat are dictionary-encoded, the data is not
    # (trying it on every column cost a third of the write for nothing)
    import pyarrow.parquet as pq
    meta = pq.ParquetFile(next(out.glob("hive=plaso__NTUSER-WIN7.DAT/*.parquet"))).metadata
    enc = {meta.schema.column(i).path: meta.row_group(0).column(i).encodings for i in range(meta.num_columns)}
    assert all("RLE_DICTIONARY" in enc[c] for c in fleet.PARQUET_DICTIONARY), enc
    assert not any("DICTIONARY" in e for c in ("data_str", "data_bin", "value_size") for e in enc[c]), enc
    # the analysis step README shows: every Run key across all hives
    sql = _readme_sql().replace("out/", str(out) + "/")
    found = duckdb.sql(sql).fetchall()
    sources = {Path(r[0]).name for r in found}
    assert {"dfwinreg__NTUSER.DAT", "plaso__NTUSER-WIN7.DAT", "plaso__NTUSER.DAT"} <= sources
    assert any("Skype.exe" in (r[4] or "") for r in found)
    # a second run refuses to mix with the first, unless told to replace it
    assert main(["scan-many", str(CORPUS_DIR), "-o", str(out), "--workers", "0", "-q"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["scan-many", str(CORPUS_DIR / "ez__SAM"), "-o", str(out), "--workers", "0", "-q",
                 "--overwrite"]) == 0
    assert [p.name for p in out.iterdir() if p.is_dir()] == ["hive=ez__SAM"]


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no FIFOs or symlinks here")
def test_a_directorys_entries_that_are_not_files_are_listed_not_dropped(tmp_path):
    """A FIFO (opening it would wait for a writer), a dangling link and a
    link to a directory (not followed: one back up would loop) are neither
    scanned nor passed over unsaid: they are in left_out, as non-hives are."""
    import os
    (tmp_path / "good.hiv").symlink_to(corpus_path("hivex__minimal"))
    os.mkfifo(tmp_path / "fifo.hiv")
    (tmp_path / "dangling.hiv").symlink_to(tmp_path / "nowhere" / "SYSTEM")
    (tmp_path / "linked_dir").symlink_to(CORPUS_DIR)
    run = regfast.scan_many(tmp_path, workers=0, progress=False)
    run.to_table()
    assert [Path(r.source).name for r in run.hives] == ["good.hiv"]
    assert sorted(Path(p).name for p in run.left_out) == ["dangling.hiv", "fifo.hiv", "linked_dir"]


def test_bytes_paths_are_taken_as_open_hive_takes_them():
    path = corpus_path("hivex__minimal")
    want = regfast.scan_many([str(path)], workers=0, progress=False).to_table().num_rows
    run = regfast.scan_many([bytes(path)], workers=0, progress=False)
    assert run.to_table().num_rows == want and run.hives[0].source == str(path)
    assert regfast.scan_many(bytes(path), workers=0, progress=False).to_table().num_rows == want


def test_numpy_integers_are_taken_for_workers_and_batch_rows():
    import numpy as np
    run = regfast.scan_many([str(corpus_path("hivex__minimal"))], progress=False,
                            workers=np.int64(0), batch_rows=np.int32(5))
    assert run.to_table().num_rows > 0


@pytest.mark.parametrize("kw,exc", [({"workers": "2"}, TypeError), ({"workers": 1.5}, TypeError),
                                    ({"batch_rows": 0}, ValueError), ({"batch_rows": -5}, ValueError),
                                    ({"batch_rows": "10"}, TypeError)])
def test_bad_arguments_say_which(kw, exc):
    with pytest.raises(exc, match=next(iter(kw))):
        regfast.scan_many([str(corpus_path("hivex__minimal"))], progress=False, **kw)


# ---- hostile file sets (review) ------------------------------------------------------


def test_partition_names_are_unique_once_suffixed():
    """``a b``, ``a_b`` and ``a_b-2`` made two hive=a_b-2 directories: one
    hive's rows replaced the other's, the summary counting both. Names that
    differ in case alone are one directory on Windows and macOS."""
    names = fleet._partition_names(["/c/a b", "/c/a_b", "/c/a_b-2", "/c/SYSTEM-2", "/c/system", "/c/System"], "/c")
    assert names == ["hive=a_b", "hive=a_b-2", "hive=a_b-2-2", "hive=SYSTEM-2", "hive=system", "hive=System-3"]
    assert len({n.lower() for n in names}) == len(names)


def test_every_hive_keeps_its_partition(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    src = tmp_path / "in"
    src.mkdir()
    for name, hive in (("a b", "ez__SAM"), ("a_b", "hivex__minimal"), ("a_b-2", "plaso__regf_SAM")):
        (src / name).write_bytes(corpus_path(hive).read_bytes())
    results = fleet.write_parquet_dataset(fleet.expand_paths(src), tmp_path / "out", base=str(src), workers=0)
    rows = {Path(r.source).name: r.rows for r in results}
    parts = sorted(p for p in (tmp_path / "out").iterdir())
    assert len(parts) == 3
    got = {}
    for part in parts:
        t = pq.read_table(part / "part-0.parquet")
        got[Path(t.column("source")[0].as_py()).name] = t.num_rows
    assert got == rows


def test_in_process_scans_read_a_copy_not_the_mapping(tmp_path, monkeypatch):
    """workers=0 (and dask's tasks) run in the caller's process, where a
    hive cut short under the mapping faults the Arrow conversion (SIGBUS,
    outside the C core's guard). They read the file into memory: a file
    truncated after the open still gives all its rows (before: an error
    row here, a killed process when the cut came during the conversion)."""
    path = tmp_path / "SAM"
    path.write_bytes(corpus_path("ez__SAM").read_bytes())
    want = _in_process(str(corpus_path("ez__SAM")))
    real = fleet.detect_hive_type

    def cut_after_open(hive):
        os.truncate(path, 8192)
        return real(hive)

    monkeypatch.setattr(fleet, "detect_hive_type", cut_after_open)
    run = regfast.scan_many([str(path)], workers=0, progress=False)
    got = run.to_table()
    assert run.hives[0].error is None and got.num_rows == len(want)
    path.write_bytes(corpus_path("ez__SAM").read_bytes())
    from regfast import dask as rdask
    frame = rdask._read_hives([str(path)], fleet._opts(), "pyarrow")
    assert len(frame) == len(want) and frame["status"].max() in (0, 13)


def test_files_named_like_logs(tmp_path):
    """A directory's *.LOG files were dropped unsaid: a log is passed over
    only beside its hive, a log with no hive is listed in left_out, and a
    hive whose name ends in .log (its base block says primary) is scanned."""
    hive = corpus_path("dfwinreg__NTUSER.DAT").read_bytes()
    log = corpus_path("dfwinreg__NTUSER.DAT.LOG").read_bytes()
    (tmp_path / "NTUSER.DAT").write_bytes(hive)
    (tmp_path / "ntuser.dat.LOG1").write_bytes(log)          # its hive is here (names without case)
    (tmp_path / "orphan.DAT.LOG2").write_bytes(log)          # no hive beside it
    (tmp_path / "user_profile_backup.log").write_bytes(hive)  # a hive named like a log
    left_out: list[str] = []
    found = fleet.expand_paths(tmp_path, left_out=left_out)
    assert [Path(p).name for p in found] == ["NTUSER.DAT", "user_profile_backup.log"]
    assert [Path(p).name for p in left_out] == ["orphan.DAT.LOG2"]


def test_a_file_whose_name_looks_like_a_pattern(tmp_path):
    d = tmp_path / "case [2023-11]"
    d.mkdir()
    (d / "SAM").write_bytes(corpus_path("ez__SAM").read_bytes())
    assert fleet.expand_paths(str(d / "SAM")) == [str(d / "SAM")]
    assert regfast.scan_many(str(d / "SAM"), workers=0, progress=False).to_table().num_rows == len(
        _in_process(str(corpus_path("ez__SAM"))))
    # a pattern that matches no file as such is still a pattern
    assert fleet.expand_paths(str(tmp_path / "case *" / "SAM")) == [str(d / "SAM")]


def test_cli_exit_status_and_names_that_are_not_utf8(tmp_path, capsys):
    """scan-many exits 1 when a hive fails (0 before, even when all did); a
    hive whose rows cannot be written is said to be missing from the
    dataset; file names that are not UTF-8 stay two sources and the summary
    is written (it failed after the whole scan); an output directory inside
    the input is not scanned on a rerun."""
    pq = pytest.importorskip("pyarrow.parquet")
    src = tmp_path / "case"
    src.mkdir()
    sam = corpus_path("ez__SAM").read_bytes()
    for raw in (b"J\xe9r\xf4me", b"J\xe8r\xf6me"):
        with open(os.path.join(os.fsencode(src), raw), "wb") as f:
            f.write(sam)
    out = src / "out"
    assert main(["scan-many", str(src), "-o", str(out), "--workers", "0", "-q"]) == 0
    capsys.readouterr()
    summary = json.loads((out / "_scan_many.json").read_text(encoding="utf-8"))
    assert summary["hives"] == 2 and summary["left_out"] == []
    sources = set()
    for part in (p for p in out.iterdir() if p.is_dir()):
        sources.add(pq.read_table(part / "part-0.parquet").column("source")[0].as_py())
    assert {Path(s).name for s in sources} == {"J\\udce9r\\udcf4me", "J\\udce8r\\udcf6me"}
    # the rerun, output inside the input: the last run's files are no input
    (src / "bad").write_bytes(b"regf" + bytes(100))
    assert main(["scan-many", str(src), "-o", str(out), "--workers", "0", "-q", "--overwrite"]) == 1
    err = capsys.readouterr().err
    summary = json.loads((out / "_scan_many.json").read_text(encoding="utf-8"))
    assert summary["hives"] == 3 and [Path(f["source"]).name for f in summary["failed"]] == ["bad"]
    assert summary["failed"][0]["in_dataset"] is True and "(1 hive(s) with an error row)" in err
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["hive=J_r_me", "hive=J_r_me-2", "hive=bad"]


def test_in_process_parquet_reads_a_copy_too(tmp_path, monkeypatch):
    """scan-many --workers 0 (write_parquet_dataset in this process) reads
    the file into memory as scan_many(workers=0) does: cut after its open,
    the hive still gives every row (it gave 2,001 rows and an I/O error)."""
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "in" / "SAM"
    path.parent.mkdir()
    path.write_bytes(corpus_path("ez__SAM").read_bytes())
    want = len(_in_process(str(corpus_path("ez__SAM"))))
    real = fleet.detect_hive_type

    def cut_after_open(hive):
        os.truncate(path, 8192)
        return real(hive)

    monkeypatch.setattr(fleet, "detect_hive_type", cut_after_open)
    (res,) = fleet.write_parquet_dataset([str(path)], tmp_path / "out", workers=0)
    assert res.error is None and res.rows == want
    assert pq.read_table(tmp_path / "out" / "hive=SAM" / "part-0.parquet").num_rows == want


def test_an_output_around_the_input(tmp_path, capsys):
    """The output may hold the input (scan-many case/hives -o case): only
    what a run writes (hive=* partitions, the summary) is left out of the
    input, not everything under the output (that scanned nothing, exit 2)."""
    hives = tmp_path / "case" / "hives"
    hives.mkdir(parents=True)
    (hives / "SAM").write_bytes(corpus_path("ez__SAM").read_bytes())
    (hives / "NTUSER.DAT").write_bytes(corpus_path("plaso__NTUSER.DAT").read_bytes())
    for _ in range(2):
        assert main(["scan-many", str(hives), "-o", str(tmp_path / "case"), "--workers", "0", "-q",
                     "--overwrite"]) == 0
        summary = json.loads((tmp_path / "case" / "_scan_many.json").read_text(encoding="utf-8"))
        assert summary["hives"] == 2
    # the output the input itself: a rerun reads the hives, not its partitions
    assert main(["scan-many", str(hives), "-o", str(hives), "--workers", "0", "-q", "--overwrite"]) == 0
    assert main(["scan-many", str(hives), "-o", str(hives), "--workers", "0", "-q", "--overwrite"]) == 0
    capsys.readouterr()
    summary = json.loads((hives / "_scan_many.json").read_text(encoding="utf-8"))
    assert summary["hives"] == 2 and summary["left_out"] == []


def _deny_listing(monkeypatch, locked: Path) -> None:
    """Listing `locked` fails as a directory of mode 000 does for a user
    without CAP_DAC_READ_SEARCH (the suite may run as root, which lists it)."""
    real_scandir, real_listdir = os.scandir, os.listdir

    def deny(p, real):
        if os.path.realpath(os.fsdecode(p)) == os.path.realpath(locked):
            raise PermissionError(13, "Permission denied", os.fsdecode(p))
        return real(p)

    monkeypatch.setattr(os, "scandir", lambda p=".": deny(p, real_scandir))
    monkeypatch.setattr(os, "listdir", lambda p=".": deny(p, real_listdir))


def test_a_directory_that_cannot_be_listed_is_an_error_row(tmp_path, monkeypatch, capsys):
    """os.walk skipped a directory it could not list without a word: its
    hives were missing from the scan, which reported success (exit 0)."""
    src = tmp_path / "case"
    (src / "ok").mkdir(parents=True)
    (src / "locked").mkdir()
    sam = corpus_path("ez__SAM").read_bytes()
    (src / "ok" / "SAM").write_bytes(sam)
    (src / "locked" / "SAM").write_bytes(sam)
    _deny_listing(monkeypatch, src / "locked")
    assert fleet.expand_paths(src) == [str(src / "locked"), str(src / "ok" / "SAM")]
    sm = regfast.scan_many(src, workers=0, progress=False)
    rows = sm.to_table().to_pylist()
    locked = [r for r in rows if r["source"] == str(src / "locked")]
    assert len(locked) == 1 and locked[0]["status"] == 5 and "Permission denied" in locked[0]["error"]
    assert any(r["source"] == str(src / "ok" / "SAM") and r["key_path"] for r in rows)
    assert main(["scan-many", str(src), "-o", str(tmp_path / "out"), "--workers", "0", "-q"]) == 1
    assert "locked" in capsys.readouterr().err


def test_deep_paths_get_partition_names_a_file_system_takes(tmp_path):
    """A hive 230 characters below the input made a partition name over
    NAME_MAX: mkdir failed and the whole run ended before any hive was read."""
    pq = pytest.importorskip("pyarrow.parquet")
    src = tmp_path / "in"
    deep = src / "C" / "Users" / ("u" * 100) / "AppData" / ("Packages" * 8) / ("p" * 70) / "Settings"
    deep.mkdir(parents=True)
    sam = corpus_path("ez__SAM").read_bytes()
    (deep / "settings.dat").write_bytes(sam)
    (deep / "settings2.dat").write_bytes(sam)
    (src / "SAM").write_bytes(sam)
    results = fleet.write_parquet_dataset(fleet.expand_paths(src), tmp_path / "out", base=str(src), workers=0)
    assert [r.error for r in results] == [None] * 3
    parts = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(parts) == 3 and max(len(p.encode()) for p in parts) <= 255
    long = [p for p in parts if p.endswith("settings.dat") or p.endswith("settings2.dat")]
    assert len(long) == 2 and all(p.startswith("hive=C__Users__uuu") for p in long)
    for p in parts:
        assert pq.read_table(tmp_path / "out" / p / "part-0.parquet").num_rows > 0
    again = fleet._partition_names([str(deep / "settings.dat")], str(src))    # the same on every run
    assert again[0] in parts


def test_a_strict_failure_names_its_hive(tmp_path, capsys):
    """With errors="strict" a damaged hbin's error named no file: which of
    hundreds of hives failed was unknown; the CLI's advice named other
    commands' --tolerant instead of scan-many's own --errors tolerant."""
    bad, good = str(corpus_path(BAD_HBIN)), str(corpus_path("ez__SAM"))
    for workers in (0, 1):
        with pytest.raises(regfast.RegistryCorruptError) as ei:
            regfast.scan_many([good, bad], workers=workers, errors="strict", progress=False).to_table()
        assert ei.value.filename == bad
    out = tmp_path / "out"
    src = tmp_path / "case"
    src.mkdir()
    (src / "bad").write_bytes(corpus_path(BAD_HBIN).read_bytes())
    assert main(["scan-many", str(src), "-o", str(out), "--workers", "0", "-q", "--errors", "strict"]) == 1
    err = capsys.readouterr().err
    assert str(src / "bad") in err and "rerun with --errors tolerant" in err, err


def test_run_on_a_scan_many_result_says_what_to_do(corpus_files):
    sm = regfast.scan_many(corpus_files[:2], workers=0, progress=False)
    with pytest.raises(RuntimeError, match="to_table"):
        sm.run()
    assert sm.to_table().num_rows > 0      # still usable
