"""Names and strings holding lone UTF-16 surrogates (issue 15 #7).

Windows does not check the UTF-16 it stores, so a key name, a value name or
a REG_SZ may hold half of a surrogate pair; Python keeps it as a code point
U+D800..U+DFFF. The writer stores it as that one code unit and regfast reads
it back as the same str; every CLI output writes it without failing, exactly
where the format can hold it (.reg: the code unit; JSON: the \\udXXX escape)
and as \\udXXX text where it cannot (the terminal, CSV). Checked against
hivex (structure and raw bytes: hivex itself refuses to decode such names)
and against Wine's reg.exe (import of regfast's .reg, and its own export).
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import struct
import subprocess
import sys

import pytest

import regfast
from regfast.io.writer import REG_BINARY, REG_MULTI_SZ, Value, build_hive, write_hive

from oracle import HIVEX_PYTHON, require_hivex

# lone high, lone low, at either end, next to a real pair (U+1F600); never a
# high followed by a low (that pair *is* the character it encodes)
TREE = {
    "a\ud800b": {"v\udc00": "d\ud83dx", "\ud800": ["m\udc01", "ok"], "n": 7,
                 "Inner\udfff": {"deep\udbff": "z"}},
    "\udc00tail": {},
    "c\U0001F600": {"e\U0001F600": "\U0001F600"},
    "Plain": {"s": "text \udc80 end", "b": Value(REG_BINARY, b"\x01\x02")},
}
NAMES = ["", "a\ud800b", "a\ud800b\\Inner\udfff", "\udc00tail", "c\U0001F600", "Plain"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "regfast.cli", *args], capture_output=True,
                          timeout=120)


def ok(r: subprocess.CompletedProcess) -> None:
    err = r.stderr.decode("utf-8", "backslashreplace")
    assert r.returncode == 0 and "Traceback" not in err, err


@pytest.fixture
def hive(tmp_path):
    path = tmp_path / "SUR.hiv"
    write_hive(path, TREE)
    return path


# ---- the writer and the reader -------------------------------------------------

@pytest.mark.parametrize("index", ["lh", "lf", "li"])
def test_writer_stores_lone_surrogates_exactly(tmp_path, index):
    path = tmp_path / "s.hiv"
    tree = dict(TREE, **{f"k{i}\ud801": {} for i in range(30)})     # enough to sort and hash
    write_hive(path, tree, index=index, leaf_max=8)                   # ri over several leaves
    with regfast.open_hive(path) as h:
        paths = [k.path for k in h.walk()]
        assert set(NAMES) <= set(paths) and len(paths) == len(NAMES) + 30
        key = next(k for k in h.walk() if k.name == "a\ud800b")
        assert {v.name: v.value for v in key.values()} == {
            "v\udc00": "d\ud83dx", "\ud800": ["m\udc01", "ok"], "n": 7}
        raw = {v.name: v.raw() for v in key.values()}
        assert raw["v\udc00"] == "d\ud83dx\0".encode("utf-16-le", "surrogatepass")
        assert [c.name for c in key.subkeys()] == ["Inner\udfff"]
        # stored sorted by upcased UTF-16 code unit, as Windows sorts
        units = [n.upper().encode("utf-16-be", "surrogatepass") for n in h.root.subkey_names()]
        assert units == sorted(units)


def _hivex_raw_names(path) -> list:
    """hivex walks the hive (names read raw from each nk/vk it hands back:
    hivex's own name API refuses lone surrogates with EILSEQ)."""
    script = r"""
import hivex, json, struct, sys
path = sys.argv[1]
raw = open(path, "rb").read()
h = hivex.Hivex(path)
def name(off, at_len, at_flags, flag, at_name):
    n, = struct.unpack_from("<H", raw, off + 4 + at_len)
    fl, = struct.unpack_from("<H", raw, off + 4 + at_flags)
    b = raw[off + 4 + at_name: off + 4 + at_name + n]
    return b.decode("latin-1") if fl & flag else b.decode("utf-16-le", "surrogatepass")
out, stack = [], [(h.root(), "")]
while stack:
    node, p = stack.pop()
    vals = [[name(v, 0x02, 0x10, 1, 0x14), h.value_value(v)[0], h.value_value(v)[1].hex()]
            for v in h.node_values(node)]
    out.append([p, vals])
    for c in reversed(h.node_children(node)):
        n = name(c, 0x48, 0x02, 0x20, 0x4C)
        stack.append((c, n if not p else p + "\\" + n))
sys.stdout.write(json.dumps(out))
"""
    r = subprocess.run([HIVEX_PYTHON, "-c", script, str(path)], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def test_hivex_reads_the_writers_hive(hive):
    require_hivex()
    got = {p: {n: (t, bytes.fromhex(d)) for n, t, d in vals} for p, vals in _hivex_raw_names(hive)}
    with regfast.open_hive(hive) as h:
        want = {k.path: {v.name: (v.type, v.raw()) for v in k.values()} for k in h.walk()}
    assert got == want and set(got) == set(NAMES)


def test_writer_refuses_what_windows_cannot_hold_with_valueerror():
    for bad in ({"\U0001F600" * 128: {}},                 # 256 UTF-16 units > 255
                {"K": {"\U0001F600" * 8192: 1}},          # 16,384 units > 16,383
                {"a\\b": {}}, {"": {}}):
        with pytest.raises(ValueError):
            build_hive(bad)
    build_hive({"\U0001F600" * 127 + "\ud800": {"\U0001F600" * 8191 + "\udc00": 1}})   # at the limits


# ---- every CLI output --------------------------------------------------------------

def test_terminal_output_escapes_them(hive):
    r = run("ls", "-r", "-v", str(hive))
    ok(r)
    out = r.stdout.decode("utf-8")                         # strict: valid UTF-8
    assert "  a\\ud800b\\" in out and '    v\\udc00 = REG_SZ "d\\ud83dx"' in out
    assert "\U0001F600" in out and "Inner\\udfff\\" in out
    r = run("get", str(hive), "Plain", "s")
    ok(r)
    assert r.stdout.decode() == 'REG_SZ "text \\udc80 end"\n'
    ok(run("scan", "--stats", str(hive)))
    ok(run("info", str(hive)))


def test_json_export_round_trips(hive, tmp_path):
    out = tmp_path / "o.json"
    for args in (["-o", str(out)], []):
        r = run("export", "-f", "json", str(hive), *args)
        ok(r)
        text = out.read_bytes().decode("utf-8") if args else r.stdout.decode("utf-8")
        assert "\\ud800" in text                        # the JSON escape
        recs = {rec["path"]: rec["values"] for rec in json.loads(text)}
        assert sorted(recs) == sorted(NAMES)
        assert recs["a\ud800b"]["v\udc00"] == {"type": "REG_SZ", "data": "d\ud83dx"}
        assert recs["a\ud800b"]["\ud800"]["data"] == ["m\udc01", "ok"]
        assert recs["Plain"]["s"]["data"] == "text \udc80 end"


def test_csv_export_writes_them_as_backslash_escapes(hive, tmp_path):
    out = tmp_path / "o.csv"
    r = run("export", "-f", "csv", str(hive), "-o", str(out))
    ok(r)
    # the first four columns (last_write, the fifth, is checked in test_cli)
    rows = [r[:4] for r in csv.reader(io.StringIO(out.read_bytes().decode("utf-8"), newline=""))]
    assert ["a\\ud800b", "v\\udc00", "REG_SZ", "d\\ud83dx"] in rows
    assert ["a\\ud800b", "\\ud800", "REG_MULTI_SZ", "m\\udc01\nok"] in rows
    assert ["c\U0001F600", "e\U0001F600", "REG_SZ", "\U0001F600"] in rows
    r = run("export", "-f", "csv", str(hive))
    ok(r)
    assert r.stdout.decode("utf-8") == out.read_bytes().decode("utf-8")


def _reg_text(path) -> str:
    data = path.read_bytes()
    assert data[:2] == b"\xff\xfe"
    return data[2:].decode("utf-16-le", "surrogatepass")


def test_reg_export_keeps_the_code_units(hive, tmp_path):
    out = tmp_path / "o.reg"
    ok(run("export", str(hive), "-o", str(out)))
    text = _reg_text(out)
    assert "[HKEY_LOCAL_MACHINE\\SUR\\a\ud800b]\r\n" in text
    assert '"v\udc00"="d\ud83dx"\r\n' in text and '"s"="text \udc80 end"\r\n' in text
    assert '[HKEY_LOCAL_MACHINE\\SUR\\a\ud800b\\Inner\udfff]\r\n"deep\udbff"="z"\r\n' in text


def test_diff_outputs(hive, tmp_path):
    empty = tmp_path / "empty.hiv"
    write_hive(empty, {})
    r = run("diff", "--json", str(empty), str(hive))
    assert r.returncode == 1 and b"Traceback" not in r.stderr
    changes = json.loads(r.stdout.decode("utf-8"))["changes"]
    added = {c["path"] for c in changes if c["kind"] == "key_added"}
    assert {"a\ud800b", "\udc00tail", "a\ud800b\\Inner\udfff"} <= added
    r = run("diff", str(empty), str(hive))
    assert r.returncode == 1 and "+ key    a\\ud800b" in r.stdout.decode("utf-8")


# ---- what Windows' reg.exe does with them (Wine's) ----------------------------------

def _parse_reg(text: str) -> dict:
    """{key: set of value lines}, continuation lines joined."""
    text = text.replace("\\\r\n  ", "")
    out: dict = {}
    key = None
    for line in text.split("\r\n"):
        if line.startswith("[") and line.endswith("]"):
            key = line[1:-1]
            out[key] = set()
        elif line and key is not None:
            out[key].add(line)
    return out


def test_wine_reg_import_and_export_agree(hive, tmp_path, wine):
    """regfast's .reg of these names is what Wine's `reg import` takes and
    what its `reg export` writes back: the same keys, names and data."""
    base = f"HKEY_CURRENT_USER\\Software\\regfast-tests\\surrogates-{tmp_path.name[-12:]}"
    mine = tmp_path / "mine.reg"
    ok(run("export", str(hive), "-o", str(mine), "--prefix", base))
    wpath = "Z:" + str(mine).replace("/", "\\")
    wine.reg("import", wpath)
    theirs = tmp_path / "theirs.reg"
    wine.reg("export", base, "Z:" + str(theirs).replace("/", "\\"), "/y")
    try:
        assert _parse_reg(_reg_text(theirs)) == _parse_reg(_reg_text(mine))
    finally:
        wine.reg("delete", base, "/f", check=False)


from wine_session import wine  # noqa: E402,F401  (the shared Wine prefix fixture)


# ---- addressing them: lookups by a name that holds one ---------------------------

def test_lookups_by_names_holding_lone_surrogates(hive):
    """A name the library reads can be given back to it: the binding passes
    names as UTF-8 with lone surrogates encoded as Python's surrogatepass does
    (WTF-8), and the core turns each back into its UTF-16 unit."""
    with regfast.open_hive(hive) as h:
        for path in NAMES[1:]:
            assert h.open(path).path == path
        k = h.open("a\ud800b")
        assert k["v\udc00"] == "d\ud83dx" and k.value("\ud800").value == ["m\udc01", "ok"]
        assert "v\udc00" in k and k.get("v\udc01", 5) == 5
        assert h.open("A\ud800B\\inner\udfff")["DEEP\udbff"] == "z"     # case folds around them
        assert k.read_values(["v\udc00", "\ud800", "n"]).to_dict() == {
            "v\udc00": "d\ud83dx", "\ud800": ["m\udc01", "ok"], "n": 7}
        assert h.get_many([("a\ud800b\\Inner\udfff", "deep\udbff"), "Plain\\s"]) == ["z", "text \udc80 end"]
        with pytest.raises(FileNotFoundError):
            h.open("a\udbffb")
