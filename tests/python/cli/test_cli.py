"""The regfast command line, and exports checked by independent importers."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess

import pytest

import regfast
from regfast.cli import main
from regfast.io.export import reg_value_line
from regfast.io.writer import REG_BINARY, REG_MULTI_SZ, REG_SZ, build_hive

from conftest import MIXED_TREE as TREE
from conftest import in_ci, regfast_tree
from oracle import hivex_tree, require_hivex


@pytest.fixture
def hive_path(make_hive):
    return make_hive(TREE, file_name="SOFTWARE").path


def test_sample_info_ls_get(tmp_path, capsys):
    out = tmp_path / "s.hiv"
    assert main(["sample", str(out)]) == 0
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "regf 1.5" in text and "checksum      ok" in text and "SOFTWARE" in text
    assert main(["ls", str(out), "-r", "-d", "3"]) == 0
    text = capsys.readouterr().out
    assert "Windows NT\\" in text and "CurrentVersion\\" in text
    assert main(["get", str(out), r"Microsoft\Windows NT\CurrentVersion", "productname"]) == 0
    assert capsys.readouterr().out.strip() == 'REG_SZ "Windows 10 Pro"'


def test_errors_are_one_line_with_winerror(hive_path, capsys):
    assert main(["get", str(hive_path), r"App\Nope", "x"]) == 1
    err = capsys.readouterr().err
    assert "winerror 2" in err and err.count("\n") == 1
    bad = hive_path.with_suffix(".bad")
    bad.write_bytes(b"not a hive at all")
    assert main(["info", str(bad)]) == 1
    assert "winerror 1017" in capsys.readouterr().err


def test_scan_stats(hive_path, capsys):
    assert main(["scan", str(hive_path), "--stats"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("5 keys, 10 values")   # root, App, Sub, Deeper, Empty
    assert "0xffff0012" in out and "GB/s" in out


def test_export_json_and_csv(hive_path, capsys):
    assert main(["export", str(hive_path), "App", "-f", "json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    app = recs[0]["values"]
    assert recs[0]["path"] == "App" and app["Count"] == {"type": "REG_DWORD", "data": 42}
    assert app["Blob"]["data"] == {"hex": bytes(range(200)).hex()}
    assert [r["path"] for r in recs] == ["App", "App\\Sub", "App\\Sub\\Deeper"]
    assert main(["export", str(hive_path), "-f", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["key", "value", "type", "data", "last_write"]      # times: test_arrow.py
    rows = [r[:4] for r in rows]
    assert ["App", "List", "REG_MULTI_SZ", "x\ny\nü"] in rows
    assert ["App\\Sub\\Deeper", "Ω", "REG_SZ", "omega"] in rows


def test_reg_value_lines():
    assert reg_value_line("", REG_SZ, "x\0".encode("utf-16-le")) == '@="x"'
    assert reg_value_line('a"b', REG_SZ, 'c\\d\0'.encode("utf-16-le")) == '"a\\"b"="c\\\\d"'
    assert reg_value_line("n", 4, b"\x2a\0\0\0") == '"n"=dword:0000002a'
    assert reg_value_line("n", 4, b"\x2a\0") == '"n"=hex(4):2a,00'           # wrong size: exact bytes
    assert reg_value_line("b", REG_BINARY, b"\x01\xff") == '"b"=hex:01,ff'
    assert reg_value_line("m", REG_MULTI_SZ, b"a\0\0\0") == '"m"=hex(7):61,00,00,00'
    assert reg_value_line("s", REG_SZ, "a".encode("utf-16-le")) == '"s"=hex(1):61,00'  # no NUL
    long = reg_value_line("b", REG_BINARY, bytes(100)).split("\r\n")
    assert all(len(line) <= 80 for line in long) and all(line.endswith("\\") for line in long[:-1])


def test_reg_export_reimports_with_hivexregedit(hive_path, tmp_path):
    """An independent .reg importer (hivexregedit --merge) rebuilds the same tree."""
    if not shutil.which("hivexregedit"):
        if in_ci():
            pytest.fail("hivexregedit (libwin-hivex-perl) is required in CI")
        pytest.skip("hivexregedit (Debian libwin-hivex-perl) is not installed")
    require_hivex()
    reg = tmp_path / "out.reg"
    assert main(["export", str(hive_path), "-o", str(reg)]) == 0
    data = reg.read_bytes()
    assert data[:2] == b"\xff\xfe"                                    # UTF-16LE BOM
    text = data[2:].decode("utf-16-le")
    assert text.startswith("Windows Registry Editor Version 5.00\r\n")
    assert "[HKEY_LOCAL_MACHINE\\SOFTWARE\\App]" in text or "[HKEY_LOCAL_MACHINE\\HIVE" in text
    # Merge into an empty hive with the same root, then compare everything.
    # hivexregedit parses bytes, not UTF-16 text: hand it the same text as UTF-8
    # (the encoding itself is checked above; the syntax is what it checks here).
    target = tmp_path / "merged.hiv"
    target.write_bytes(build_hive({})[0])
    prefix = text.split("[", 1)[1].split("]", 1)[0]                    # the root key line
    r = subprocess.run(["hivexregedit", "--merge", "--prefix", prefix, str(target)],
                       input=text.encode("utf-8"), capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode("utf-8", "replace")
    with regfast.open_hive(hive_path) as h:
        want = regfast_tree(h)
    got = hivex_tree(target)
    assert {p: v["values"] for p, v in got.items()} == {p: v["values"] for p, v in want.items()}
