"""Exports that never leave a partial file (issue 16 §1), tolerant exports
that report everything they skip (issue 15 #10), and hives deeper than
Windows' 512-level limit (issue 15 #4)."""
from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import struct
import subprocess
import sys

import pytest

import regfast
from regfast.io import export as rexport
from regfast.cli import main
from regfast.io.writer import build_hive, write_hive

RF_E_CORRUPT = 0x20000001
TS = 0x01D0000000000000
TREE = {f"K{i:02d}": {"blob": bytes([i]) * 500, "n": i, "s": f"text {i}",
                      "Sub": {"v": f"sub {i}", "Deep": {"d": i * 3}}} for i in range(24)}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "regfast.cli", *args], capture_output=True,
                          text=True, timeout=300, errors="backslashreplace")


def no_temporaries(folder) -> bool:
    return not [p for p in os.listdir(folder) if p.endswith(".regfast-tmp")]


# ---- all or nothing ------------------------------------------------------------

class DiskFull:
    """A file that takes `room` characters, then fails as a full disk does."""

    def __init__(self, f, room: int) -> None:
        self.f, self.room = f, room

    def write(self, s: str) -> int:
        if len(s) > self.room:
            self.f.write(s[:self.room])
            self.f.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(s)
        return self.f.write(s)

    def __getattr__(self, name):
        return getattr(self.f, name)


@pytest.mark.parametrize("fmt", ["reg", "json", "csv"])
@pytest.mark.parametrize("previous", [False, True])
def test_disk_full_half_way_leaves_no_partial_file(tmp_path, monkeypatch, capsys, fmt, previous):
    path = tmp_path / "h.hiv"
    write_hive(path, TREE, timestamp=TS)
    out = tmp_path / f"out.{fmt}"
    if previous:
        out.write_text("the previous export")
    real = rexport.export
    seen = {}

    def export_then_fill(hive, f, *a, **k):
        seen["tmp"] = [p for p in os.listdir(tmp_path) if p.endswith(".regfast-tmp")]
        return real(hive, DiskFull(f, 3000), *a, **k)          # some rows fit, then ENOSPC

    monkeypatch.setattr(rexport, "export", export_then_fill)
    assert main(["export", "-f", fmt, str(path), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "regfast: error: No space left on device" in err
    assert len(seen["tmp"]) == 1                        # it was writing beside the target...
    assert no_temporaries(tmp_path)                     # ...and cleaned up
    if previous:
        assert out.read_text() == "the previous export"
    else:
        assert not out.exists()


@pytest.mark.parametrize("fmt", ["reg", "json", "csv"])
def test_damaged_hive_leaves_the_previous_export(make_hive, tmp_path, fmt):
    """A real damaged hive (a subkey list with a bad signature): the strict
    export fails and the file from the last good export stays as it was
    (before: truncated to nothing)."""
    good = make_hive(TREE, timestamp=TS)
    bad = make_hive(TREE, corrupt=("list.sig", "K05", 0x4242), timestamp=TS)
    out = tmp_path / f"out.{fmt}"
    assert run("export", "-f", fmt, str(good.path), "-o", str(out)).returncode == 0
    before = out.read_bytes()
    assert len(before) > 10_000
    r = run("export", "-f", fmt, str(bad.path), "-o", str(out))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"0x{bad.layout.subkey_list['K05']:x}" in r.stderr
    assert out.read_bytes() == before and no_temporaries(tmp_path)


def test_export_file_modes_and_links(tmp_path):
    """The rename keeps what open() would give: umask'd mode for a new file,
    the old mode for a replaced one, writes through a symlink."""
    hive = tmp_path / "h.hiv"
    write_hive(hive, {"K": {"v": 1}})
    new = tmp_path / "new.json"
    old_umask = os.umask(0o022)
    try:
        rexport.export_to_file(regfast.open_hive(hive), new, "json")
    finally:
        os.umask(old_umask)
    assert new.stat().st_mode & 0o777 == 0o644
    os.chmod(new, 0o600)
    rexport.export_to_file(regfast.open_hive(hive), new, "csv")
    assert new.stat().st_mode & 0o777 == 0o600 and new.read_text().startswith("key,value")
    link = tmp_path / "link.json"
    link.symlink_to(new)
    rexport.export_to_file(regfast.open_hive(hive), link, "json")
    assert link.is_symlink() and json.loads(new.read_text())[1]["path"] == "K"
    rexport.export_to_file(regfast.open_hive(hive), os.devnull, "json")   # not replaced by a file
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)
    assert no_temporaries(tmp_path)


# ---- tolerant exports say what they skipped -------------------------------------

def damaged(tmp_path):
    """TREE with two 4 KiB hbins zeroed: a tolerant open skips them."""
    data, layout = build_hive(TREE, timestamp=TS)
    data = bytearray(data)
    for i in (2, 5):
        start, size = layout.hbins[i]
        data[start:start + size] = bytes(size)
    path = tmp_path / "damaged.hiv"
    path.write_bytes(data)
    return path, layout


def test_tolerant_export_lists_every_skip(tmp_path):
    path, layout = damaged(tmp_path)
    nk_at = {off: p for p, off in layout.nk.items()}
    with regfast.open_hive(path, errors="tolerant") as hive:
        table = hive.scan(errors="skip")
        want_key_skips = {p for p, st in zip(table.key_paths(), table.key_status.tolist()) if st}
        want_value_skips = int(((table.value_status != 0) & ~table.value_malformed).sum())
        res = rexport.export(hive, open(os.devnull, "w"), "json", errors="skip")
        assert res == (table.n_keys, table.n_values - want_value_skips)
        keys = {s.path for s in res.skipped if s.kind == "key"}
        assert keys == want_key_skips and keys
        assert res.skipped_values == want_value_skips
        for s in res.skipped:
            if s.kind == "key":
                assert nk_at[s.offset] == s.path                    # the offset is that key's nk
                assert s.status == RF_E_CORRUPT
                reason = rexport.skip_reason(hive, s)
                assert re.search(r"0x[0-9a-f]+", reason), reason
    out = tmp_path / "out.json"
    r = run("export", "--tolerant", "-f", "json", str(path), "-o", str(out))
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert f"exported {res.keys:,} keys and {res.values:,} values" in r.stderr
    assert f"{res.skipped_keys:,} damaged key" in r.stderr
    assert f"{res.skipped_values:,} damaged value" in r.stderr
    listed = [line for line in r.stderr.splitlines() if line.startswith("  ")]
    shown = min(len(res.skipped), 10)
    assert len(listed) == shown + (len(res.skipped) > shown)
    for s, line in zip(res.skipped, listed[:shown]):
        assert s.path in line and "0x" in line
    # nothing dropped silently: every key the writer wrote is exported, or
    # lies under a key the report names
    exported = {rec["path"] for rec in json.loads(out.read_text())}
    for p in layout.nk:
        if p not in exported:
            parts = p.split("\\")
            anc = ["\\".join(parts[:i]) for i in range(len(parts))]
            assert any(a in keys for a in anc), p


def test_tolerant_export_to_stdout_reports_too(tmp_path):
    path, _ = damaged(tmp_path)
    r = run("export", "--tolerant", "-f", "csv", str(path))
    assert r.returncode == 0 and r.stdout.startswith("key,value,type,data")
    assert "regfast: warning: skipped what could not be read" in r.stderr
    healthy = tmp_path / "ok.hiv"
    write_hive(healthy, TREE, timestamp=TS)
    r = run("export", "--tolerant", "-f", "csv", str(healthy))
    assert r.returncode == 0 and r.stderr == ""


# ---- deeper than Windows' 512 levels ----------------------------------------------

DEPTH = 1000


@pytest.fixture(scope="module")
def deep(tmp_path_factory):
    tree: dict = {}
    node = tree
    for i in range(DEPTH):
        node[f"L{i}"] = {"v": i}
        node = node[f"L{i}"]
    path = tmp_path_factory.mktemp("deep") / "deep.hiv"
    layout = write_hive(path, tree, max_depth=None)   # (the writer refuses this depth by default)
    at512 = "\\".join(f"L{i}" for i in range(512))     # depth 512: its subkeys would be 513
    return path, layout.nk[at512]


def test_library_depth_limit_is_corruption_at_the_nk(deep):
    path, off = deep
    with regfast.open_hive(path) as hive:
        for call in (lambda: hive.scan(), lambda: list(hive.walk()), lambda: hive.scan(values=False)):
            with pytest.raises(regfast.RegistryCorruptError) as e:
                call()
            assert e.value.offset == off and e.value.winerror == 1015, e.value
            assert "512 levels" in str(e.value)
        # counted from the root, as Windows counts, wherever the scan starts
        mid = "\\".join(f"L{i}" for i in range(500))
        with pytest.raises(regfast.RegistryCorruptError) as e:
            hive.scan(mid)
        assert e.value.offset == off
    with regfast.open_hive(path, errors="tolerant") as hive:
        t = hive.scan(errors="skip")
        assert t.n_keys == 513 and t.key_depth.max() == 512
        assert t.key_status.tolist() == [0] * 512 + [RF_E_CORRUPT]
        assert t.key_token[512] + 4096 == off
        t = hive.scan(mid, errors="skip")
        assert t.n_keys == 13 and t.key_status.tolist() == [0] * 12 + [RF_E_CORRUPT]


def test_ls_recursive_on_a_deep_hive(deep):
    path, off = deep
    r = run("ls", "-r", str(path))
    assert "Traceback" not in r.stderr and "RecursionError" not in r.stderr
    assert r.returncode == 1
    assert f"hive offset 0x{off:x}" in r.stderr and "winerror 1015" in r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1 + 512 and lines[-1].strip() == "L511\\"
    r = run("ls", "-r", "-v", "--tolerant", str(path))
    assert r.returncode == 0 and "Traceback" not in r.stderr
    names = [line.strip() for line in r.stdout.splitlines() if line.strip().endswith("\\")]
    assert names[1:] == [f"L{i}\\" for i in range(512)]
    assert "<damaged: nk at 0x%x" % off in r.stdout
    assert "regfast: warning: 1 damaged spot not listed" in r.stderr and f"0x{off:x}" in r.stderr
    # from a key half-way down, depths count from the root
    start = "\\".join(f"L{i}" for i in range(500))
    r = run("ls", "-r", str(path), start)
    assert r.returncode == 1 and f"0x{off:x}" in r.stderr and len(r.stdout.splitlines()) == 1 + 12


def test_export_and_diff_of_a_deep_hive(deep, tmp_path):
    path, off = deep
    for fmt in ("reg", "json", "csv"):
        r = run("export", "-f", fmt, str(path), "-o", str(tmp_path / f"d.{fmt}"))
        assert r.returncode == 1 and f"0x{off:x}" in r.stderr and "winerror 1015" in r.stderr
        assert not (tmp_path / f"d.{fmt}").exists()
        r = run("export", "--tolerant", "-f", fmt, str(path), "-o", str(tmp_path / f"d.{fmt}"))
        assert r.returncode == 0, r.stderr
        assert "exported 513 keys and 512 values" in r.stderr
        assert "512 levels" in r.stderr and f"0x{off:x}" in r.stderr
        assert max(map(len, r.stderr.splitlines())) < 250          # a 512-level path is shortened
    r = run("diff", str(path), str(path))
    assert r.returncode == 2 and f"0x{off:x}" in r.stderr and "Traceback" not in r.stderr


# ---- names a format cannot carry (found by review) -------------------------------

@pytest.mark.parametrize("bad", ["x]\r\n\r\n[HKEY_CURRENT_USER", "a\nb", "a\rb"])
@pytest.mark.parametrize("where", ["key", "value"])
def test_reg_export_refuses_names_that_would_inject_lines(tmp_path, bad, where):
    # A key named 'x]\r\n\r\n[HKEY_CURRENT_USER' with a subkey Software and
    # a value Run became a [HKEY_CURRENT_USER\Software] section of its own:
    # reg import (and regfast's parse_reg) made keys the hive does not hold.
    tree = {bad: {"Software": {"Run": "calc.exe"}}} if where == "key" else {"K": {bad: "calc.exe"}}
    p = tmp_path / "names.hiv"
    write_hive(p, {"Ok": {"v": 1}, **tree})
    target = tmp_path / "out.reg"
    target.write_text("previous")
    with regfast.open_hive(p) as h:
        with pytest.raises(ValueError, match=rf"{where} .*\(cell at 0x[0-9a-f]+\) holds a line break"):
            rexport.export_to_file(h, str(target), "reg")
        assert target.read_text() == "previous"          # all or nothing
        recs = {r["path"]: r for r in json.loads(rexport.export_to_string(h, "json"))}
        rows = list(csv.reader(io.StringIO(rexport.export_to_string(h, "csv"))))
    # JSON and CSV carry the name exactly
    if where == "key":
        assert f"{bad}\\Software" in recs and any(r[0] == f"{bad}\\Software" for r in rows)
    else:
        assert recs["K"]["values"][bad]["data"] == "calc.exe" and any(r[1] == bad for r in rows)


def test_json_export_keeps_a_value_named_twice(tmp_path):
    data, _ = build_hive({"K": {"AAAA": "first", "BBBB": "second", "C": 3}}, timestamp=TS)
    data = bytearray(data)
    at = data.find(b"BBBB", data.find(b"vk\x04\x00"))
    data[at:at + 4] = b"AAAA"                          # a damaged key: one name, two values
    p = tmp_path / "twice.hiv"
    p.write_bytes(data)
    with regfast.open_hive(p) as h:
        assert [v.name for v in h.open("K").values()] == ["AAAA", "AAAA", "C"]
        text = rexport.export_to_string(h, "json")
    rec = {r["path"]: r for r in json.loads(text)}["K"]
    assert rec["values"]["AAAA"]["data"] == "first" and rec["values"]["C"]["data"] == 3
    assert rec["duplicate_values"] == [{"name": "AAAA", "type": "REG_SZ", "data": "second"}]
    assert "duplicate_values" not in {r["path"]: r for r in json.loads(text)}.get("", {})


def test_reg_export_refuses_a_key_name_holding_a_backslash(tmp_path):
    # Found by review: a root key renamed 'Run\Evil' in the file (Windows'
    # check lets such a name be; only an edit makes one) was exported as
    # [Run\Evil]: on import, key Evil under Run, beside the real one.
    data, _ = build_hive({"Run": {"Evil": {"v": "benign"}}, "RunXEvil": {"v": "calc.exe"}}, timestamp=TS)
    data = bytearray(data)
    at = data.find(b"RunXEvil")
    data[at + 3:at + 4] = b"\\"
    p = tmp_path / "slash.hiv"
    p.write_bytes(data)
    with regfast.open_hive(p) as h:
        assert sorted(k.name for k in h.root.subkeys()) == ["Run", "Run\\Evil"]
        with pytest.raises(ValueError, match=r"key 'Run\\\\Evil' \(cell at 0x[0-9a-f]+\) holds .*backslash"):
            rexport.export_to_string(h, "reg")
        text = rexport.export_to_string(h, "reg", "Run")    # the real Run\\Evil, as before
    assert "[Run]" in text and "[Run\\Evil]" in text


def _slash_or_break_parent(tmp_path):
    evil = "evil]\r\n[HKEY_CURRENT_USER"
    p = tmp_path / "parent.hiv"
    write_hive(p, {evil: {"Run": {"x": "calc.exe"}}, "Ok": {"v": 1}})
    return p, evil


def test_reg_export_checks_what_goes_before_the_paths(tmp_path):
    # Found by the review of the fix: exporting path="<evil>\\Run" wrote a
    # [HKEY_CURRENT_USER\\Run] section (only the exported keys' own names were
    # checked), and the CLI's default prefix, made of the file's name, can
    # hold a line break too.
    p, evil = _slash_or_break_parent(tmp_path)
    with regfast.open_hive(p) as h:
        with pytest.raises(ValueError, match=r"key 'evil\]\\r\\n.*holds a line break"):
            rexport.export_to_string(h, "reg", f"{evil}\\Run")
        with pytest.raises(ValueError, match=r"prefix .* holds a line break"):
            rexport.export_to_string(h, "reg", "Ok", prefix="HKLM\\x\r\n[HKEY_CURRENT_USER")
        assert "[HKLM\\S\\Ok]" in rexport.export_to_string(h, "reg", "Ok", prefix="HKLM\\S")
    named = tmp_path / "x\n[HKEY_CURRENT_USER"
    named.write_bytes(p.read_bytes())
    r = run("export", str(named), "Ok", "-f", "reg", "-o", str(tmp_path / "o.reg"))
    assert r.returncode == 1 and "holds a line break" in r.stderr and not (tmp_path / "o.reg").exists()


def test_reg_export_refuses_a_path_read_as_a_deletion(tmp_path):
    p = tmp_path / "dash.hiv"
    write_hive(p, {"-Run": {"v": 1}, "Run": {"w": 2}})
    with regfast.open_hive(p) as h:
        with pytest.raises(ValueError, match=r"key path '-Run' starts with '-'"):
            rexport.export_to_string(h, "reg")
        assert "[HKLM\\-Run]" in rexport.export_to_string(h, "reg", prefix="HKLM")


def test_reg_export_writes_one_value_of_a_name(tmp_path):
    # reg import keeps the last of two lines of one name; a lookup in the hive
    # finds the first ("AAAA" beside "aaaa" in a damaged key)
    data, _ = build_hive({"K": {"AAAA": "first", "BBBB": "second"}}, timestamp=TS)
    data = bytearray(data)
    at = data.find(b"BBBB", data.find(b"vk\x04\x00"))
    data[at:at + 4] = b"aaaa"
    p = tmp_path / "twice.hiv"
    p.write_bytes(data)
    with regfast.open_hive(p) as h:
        assert h.open("K")["aaaa"] == "first"
        with pytest.raises(ValueError, match=r"key 'K' holds a second value named 'aaaa' \(vk at 0x"):
            rexport.export_to_string(h, "reg")
        buf = io.StringIO(newline="")
        res = rexport.export(h, buf, "reg", errors="skip")
        text = buf.getvalue()
        assert '"AAAA"="first"' in text and "aaaa" not in text
        assert res.values == 1 and [(s.kind, s.path, s.name) for s in res.skipped] == [("value", "K", "aaaa")]
        # not damage: its own status and words (the review of the fix: "vk at ...: damaged")
        assert res.skipped[0].status == rexport.SECOND_OF_NAME
        assert "a second value of its name in the key" in rexport.skip_reason(h, res.skipped[0])
    r = run("export", "--tolerant", str(p), "-f", "reg", "-o", str(tmp_path / "o.reg"))
    assert r.returncode == 0 and "0 damaged values; and 1 value a .reg file cannot hold" in r.stderr
    r = run("export", str(p), "-f", "reg", "-o", str(tmp_path / "o2.reg"))
    assert r.returncode == 1 and "regfast export --tolerant" in r.stderr


def test_json_export_writes_a_relisted_vk_once(tmp_path):
    # Found by review: a value list naming one 1 MB vk 201 times made the JSON
    # export hold 201 copies of its hex (1.4 GB for a 1 MB file)
    data, layout = build_hive({"K": {"a": b"x" * 100, "b": 2}}, timestamp=TS)
    data = bytearray(data)
    lst = layout.value_list["K"]
    a_vk = struct.unpack_from("<I", data, lst + 4)[0]
    struct.pack_into("<I", data, lst + 8, a_vk)          # the list names "a" twice
    p = tmp_path / "relisted.hiv"
    p.write_bytes(data)
    with regfast.open_hive(p) as h:
        assert [v.name for v in h.open("K").values()] == ["a", "a"]
        assert h.scan().value_relisted.tolist() == [False, True]
        out = {}
        for fmt in ("json", "csv", "reg"):                # (the review of the fix: CSV, .reg too)
            buf = io.StringIO(newline="")
            res = rexport.export(h, buf, fmt)               # strict: the same vk is no second value
            assert (res.values, res.skipped) == (1, []), fmt
            out[fmt] = buf.getvalue()
    rec = {r["path"]: r for r in json.loads(out["json"])}["K"]
    assert list(rec["values"]) == ["a"] and "duplicate_values" not in rec
    assert [r[1] for r in csv.reader(io.StringIO(out["csv"])) if r[0] == "K"] == ["a"]
    assert out["reg"].count('"a"=') == 1


def test_a_damaged_vk_listed_twice_is_one_skip_and_its_key_a_csv_row(tmp_path):
    # Found by review: the relisted rule covered written rows only: a damaged
    # vk listed twice was two skips ("2 damaged values"), and CSV left out a
    # key all of whose value rows were skipped
    data, layout = build_hive({"K": {"a": "x", "b": 2}, "L": {"c": 1}}, timestamp=TS)
    data = bytearray(data)
    vk = layout.vk[("K", "a")]
    data[vk + 4:vk + 6] = b"xx"                                       # the vk is damaged
    lst = layout.value_list["K"]
    data[lst + 8:lst + 12] = data[lst + 4:lst + 8]                    # K's list: a, a
    p = tmp_path / "relisted_bad.hiv"
    p.write_bytes(data)
    with regfast.open_hive(p, errors="tolerant") as h:
        buf = io.StringIO(newline="")
        res = rexport.export(h, buf, "csv", errors="skip")
        assert h.scan().stats()["value_errors"] == 1                    # (regfast scan counts it so)
    assert [(s.kind, s.offset) for s in res.skipped if s.kind == "value"] == [("value", vk)]
    assert [r[0] for r in csv.reader(io.StringIO(buf.getvalue()))][1:] == ["", "K", "L"]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_relisted_vk_is_decoded_once_not_per_entry(tmp_path, fmt):
    # Found by review: writing a relisted vk once bounded the output, but
    # decoded_values() still made a str per list entry (one 8 KB REG_SZ listed
    # 4,001 times: 33 MB held for a 172 KB file)
    import tracemalloc
    data, layout = build_hive({"K": {"s": "x" * 4000, **{f"v{i:04d}": i for i in range(2000)}}},
                              timestamp=TS)
    data = bytearray(data)
    lst = layout.value_list["K"]
    first = data[lst + 4:lst + 8]
    for i in range(1, 2001):                                            # every entry names "s"
        data[lst + 4 + 4 * i:lst + 8 + 4 * i] = first
    p = tmp_path / "relisted.hiv"
    p.write_bytes(data)
    with regfast.open_hive(p) as h:
        assert sum(1 for _ in h.open("K").values()) == 2001
        tracemalloc.start()
        try:
            res = rexport.export(h, io.StringIO(newline=""), fmt)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert res.values == 1
    assert peak < 4 << 20, f"{peak / 1e6:.1f} MB"


def test_stats_count_a_relisted_malformed_value_once(tmp_path):
    # Found by review: value_errors counted a relisted vk once, malformed_values
    # once per list entry (regfast info: "3 values" for one)
    from regfast.io.writer import Value
    data, layout = build_hive({"K": {"d": Value(4, b"\x01\x02\x03"), "e": 1, "f": 2}}, timestamp=TS)
    data = bytearray(data)
    lst = layout.value_list["K"]
    first = data[lst + 4:lst + 8]
    data[lst + 8:lst + 12] = first
    data[lst + 12:lst + 16] = first
    p = tmp_path / "malformed.hiv"
    p.write_bytes(data)
    with regfast.open_hive(p) as h:
        st = h.scan().stats()
    assert (st["malformed_values"], st["value_errors"]) == (1, 0)
