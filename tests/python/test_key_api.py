"""The Key API, one suite over every backend (issue 12): the same tree read
through a hive file (regf over mmap) and through the live registry under
Wine (the C remote backend, regfast.connect(..., backend="remote")) gives
the same answers from the same classes — regfast.Key, regfast.Value,
regfast.ValueBatch — and the same errors.

Over the NT backend in-process too where it exists (the Windows workflow):
``regfast.live.registry.local(backend="nt")``; never run here.
"""
from __future__ import annotations

import datetime as dt
import sys

import numpy as np
import pytest

import regfast
from regfast.io.writer import Value as WValue
from regfast.hive.diff import fold
from regfast.io.writer import write_hive
from regfast.live.protocol import Reader
from regfast.live.registry import local
from regfast.live.snapshot import parse_snapshot
from wine_session import BASE, wine  # noqa: F401  (the shared Wine session)

MANY = 300
VALUES = {
    "": "the default",
    "sz": "hello",
    "exp": WValue(regfast.REG_EXPAND_SZ, "%SystemRoot%\\x"),
    "dw": 7,
    "qw": 1 << 40,
    "be": WValue(regfast.REG_DWORD_BIG_ENDIAN, 0x01020304),
    "bin": b"\x00\xff\x10",
    "multi": ["a", "b"],
    "odd": WValue(0xFFFF0012, b"\x01\x02\x03"),
    "short": WValue(regfast.REG_DWORD, b"\x01\x02"),          # malformed: a 2-byte DWORD
}
DECODED = {
    "": "the default", "sz": "hello", "exp": "%SystemRoot%\\x", "dw": 7, "qw": 1 << 40,
    "be": 0x01020304, "bin": b"\x00\xff\x10", "multi": ["a", "b"], "odd": b"\x01\x02\x03", "short": 0x0201,
}
TREE = {
    **VALUES,
    "Alpha": {"x": 1, "Deep": {"Deeper": {"y": "z"}}},
    "Beta": {},
    "Many": {f"v{i:03d}": i for i in range(MANY)},
}


def _fill(key: regfast.Key, tree: dict) -> None:
    """Writes `tree` below a live key with the Key's own write methods."""
    for name, v in tree.items():
        if isinstance(v, dict):
            _fill(key.create_key(name), v)
        elif isinstance(v, WValue):
            key.set_value(name, v.data, v.type)
        else:
            key.set_value(name, v)


# The NT backend in-process exists only in Windows builds (the Windows
# workflow's pytest run); elsewhere it is not a backend of this build.
BACKENDS = ["file", "remote"] + (["nt"] if sys.platform == "win32" else [])


@pytest.fixture(scope="module", params=BACKENDS)
def api(request, tmp_path_factory):
    """The key "api" holding TREE, from a hive file or from the live registry."""
    if request.param == "file":
        path = tmp_path_factory.mktemp("keyapi") / "api.hiv"
        write_hive(path, {"api": TREE})
        hive = regfast.open_hive(path)
        yield hive.open("api")
        hive.close()
        return
    if request.param == "nt":
        reg = local(backend="nt")
    else:
        session = request.getfixturevalue("wine")
        reg = session.connect(backend="remote")
    where = BASE + rf"\keyapi-{request.param}"
    try:
        reg.delete_key("HKCU", where, tree=True)
    except FileNotFoundError:
        pass
    _fill(reg.create_key("HKCU", where + r"\api"), TREE)
    yield reg.open_key("HKCU", where + r"\api")
    reg.delete_key("HKCU", where, tree=True)
    reg.close()


def test_the_classes_are_the_binding_ones(api):
    assert type(api) is regfast.Key
    assert type(api.value("sz")) is regfast.Value
    assert type(api.read_values(["sz"])) is regfast.ValueBatch
    assert type(api.hive) is regfast.Hive


def test_open_subkeys_and_names(api):
    assert api.name == "api"
    assert sorted(api.subkey_names()) == ["Alpha", "Beta", "Many"]
    assert sorted(k.name for k in api.subkeys()) == ["Alpha", "Beta", "Many"]
    deeper = api.open(r"alpha\DEEP\deeper")                   # case-insensitive
    assert deeper.name == "Deeper" and deeper["y"] == "z"     # the name as stored
    assert deeper.parent.name == "Deep" and deeper.parent.parent.name == "Alpha"
    assert api.subkey("Beta").subkey_names() == []
    assert deeper.path.endswith(r"api\Alpha\Deep\Deeper")
    with pytest.raises(ValueError):
        api.subkey(r"Alpha\Deep")
    assert api.open("Alpha") == api.subkey("ALPHA")


def test_values_value_getitem_get_contains(api):
    got = {v.name: v.value for v in api.values()}
    assert got == DECODED
    v = api.value("bin")
    assert (v.name, v.type, v.size) == ("bin", regfast.REG_BINARY, 3)
    assert bytes(v.data) == b"\x00\xff\x10" and v.raw() == b"\x00\xff\x10"
    vtype, raw = api.value_raw("dw")
    assert vtype == regfast.REG_DWORD and bytes(raw) == b"\x07\x00\x00\x00"
    assert api.value("").value == "the default" and api[""] == "the default"
    assert api.value("SZ").name == "sz"                       # case-insensitive, stored name
    assert api["multi"] == ["a", "b"] and api["qw"] == 1 << 40 and api["be"] == 0x01020304
    assert api.value("exp").type == regfast.REG_EXPAND_SZ
    assert api.value("odd").type == 0xFFFF0012
    assert not api.value("short").well_formed and api.value("dw").well_formed
    assert api.get("nope") is None and api.get("nope", 5) == 5 and api.get("dw") == 7
    assert "dw" in api and "DW" in api and "nope" not in api


def test_read_values_batches(api):
    b = api.read_values(["sz", "nope", "dw", "multi", "short"])
    assert len(b) == 5 and b.names == ["sz", "nope", "dw", "multi", "short"]
    assert b.status.tolist() == [0, 2, 0, 0, 13]              # missing: 2; malformed: 13
    assert b.malformed.tolist() == [False, False, False, False, True]
    assert b.values() == ["hello", None, 7, ["a", "b"], 0x0201]
    assert b.to_dict() == {"sz": "hello", "dw": 7, "multi": ["a", "b"], "short": 0x0201}
    assert b.as_str() == ["hello", None, None, None, None]
    assert b.as_int(default=0).tolist() == [0, 0, 7, 0, 0x0201]
    with pytest.raises(ValueError):
        b.as_int()
    assert bytes(b.buffer(0)) == "hello\0".encode("utf-16-le")
    typed = api.read_values(["sz", "dw"], types=[regfast.REG_DWORD])
    assert typed.status.tolist() == [13, 0]
    many = api.open("Many")
    every = many.read_values()
    assert len(every) == MANY and sorted(every.names) == [f"v{i:03d}" for i in range(MANY)]
    assert dict(zip(every.names, every.as_int().tolist(), strict=True)) == {f"v{i:03d}": i for i in range(MANY)}
    some = many.read_values([f"v{i:03d}" for i in range(0, MANY, 7)])
    assert some.as_int().tolist() == list(range(0, MANY, 7))
    # the columns are views of one block, not copies
    base = some.type.base
    assert base is not None and all(c.base is base for c in (some.status, some.offset, some.length))
    with pytest.raises(ValueError):
        api.read_values(["sz"], errors="bogus")


def test_walk_visits_every_key_parents_first(api):
    keys = list(api.hive.walk(api.path))
    rel = [k.path[len(api.path):].lstrip("\\") for k in keys]
    assert sorted(rel) == sorted(["", "Alpha", r"Alpha\Deep", r"Alpha\Deep\Deeper", "Beta", "Many"])
    for i, p in enumerate(rel):                               # every parent before its children
        if p:
            assert rel.index(p.rpartition("\\")[0]) < i


def test_info_and_last_write(api):
    info = api.info()
    assert (info.subkeys, info.values) == (3, len(VALUES))
    assert info.class_name is None and api.class_name is None
    lw = api.last_write
    assert isinstance(lw, dt.datetime) and lw.tzinfo is not None
    assert dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc) < lw < dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    assert isinstance(api.last_write_raw, int) and regfast.filetime_to_datetime(api.last_write_raw) == lw
    assert api.open("Many").info().values == MANY


def test_errors_carry_winerror_and_name(api):
    with pytest.raises(FileNotFoundError) as e:
        api.open(r"Alpha\nope")
    assert e.value.winerror == 2 and e.value.filename == r"Alpha\nope"
    with pytest.raises(FileNotFoundError) as e:
        api["nope"]
    assert e.value.winerror == 2 and e.value.filename == "nope"
    with pytest.raises(FileNotFoundError):
        api.value("nope")
    assert isinstance(e.value, regfast.RegistryNotFoundError)
    closed = api.open("Alpha")
    closed.close()
    with pytest.raises(OSError) as e:
        closed["x"]
    assert e.value.winerror == 6


def test_wrong_argument_types_are_type_errors(api):
    """A key path or value name that is not a str is a TypeError, as in
    winreg, on every backend (it was an AttributeError from str.encode); one
    str where an iterable of names goes is refused, not read as its
    characters."""
    for call in (lambda: api.open(5), lambda: api.open(None), lambda: api.open(b"Alpha"),
                 lambda: api.value(None), lambda: api[5], lambda: api.get(5), lambda: 5 in api):
        with pytest.raises(TypeError, match="must be a str"):
            call()
    with pytest.raises(TypeError, match=r"pass \['sz'\]"):
        api.read_values("sz")
    assert api.read_values(["sz"]).to_dict() == {"sz": "hello"}


def test_snapshot_bytes_agree_across_backends(api):
    snap = parse_snapshot(Reader(api.snapshot_bytes()), "api")
    want = ["", "Alpha", r"Alpha\Deep", r"Alpha\Deep\Deeper", "Beta", "Many"]
    assert sorted(snap.keys) == sorted(fold(p) for p in want)
    assert sorted(k.path for k in snap.keys.values()) == sorted(want)     # paths as stored
    assert snap.keys[fold("Many")].values[fold("v042")].size == 4
    top = snap.keys[""].values
    assert {v.name for v in top.values()} == set(VALUES)


def test_cells_exist_only_in_hive_files(api, request):
    """Slack and token offsets are cells of a hive file (rf_key_slack,
    rf_value_slack, rf_hive_token_offset); a live backend's tokens are
    handles: winerror 120, never a made-up offset."""
    value = api.value("sz")
    if request.node.callspec.params["api"] == "file":
        at = api.hive.token_offset(api.offset)
        assert at == api.offset + 4096                  # a hive file: the nk's file offset
        assert bytes(api.hive.cell(at)[0][:2]) == b"nk"
        api.slack()
        value.slack()
        return
    for call in (api.slack, value.slack, lambda: api.hive.token_offset(api.offset)):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.winerror == 120
