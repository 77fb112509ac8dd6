"""Profiles kept and compared: Profiler.count/round_trips/open_each,
to_json/from_json, compare() and `regfast profile compare` (exit codes), and
`regfast profile --json OUT -- python script.py`. The live traffic is
scripted (test_hooks.ScriptedConn: the hook layer and the profiler are under
test, not the agent); open_hive is real."""
from __future__ import annotations

import json
import struct
import time

import pytest

import regfast
from regfast.live import _agent_ops as ops
from regfast.cli import main
from regfast.observe.profile import Profiler, compare

from test_hooks import ScriptedConn, _open_req, dispatch
from test_hooks import no_hooks_left  # noqa: F401  (autouse: no hook left, garbage collected first)


def _conn(delay: float = 0.0) -> ScriptedConn:
    handles = iter(range(1, 10_000))

    def answer(op, payload):
        if delay:
            time.sleep(delay)
        if op == ops.OP_OPEN_KEY:
            return struct.pack("<I", next(handles))
        return b"\x04\0\0\0" + struct.pack("<I", 4) + b"\1\0\0\0" if op == ops.OP_GET_VALUE else b""

    return ScriptedConn(answer)


def _get(conn, handle: int, name: str) -> None:
    from regfast.live.protocol import str16
    dispatch(conn, ops.OP_GET_VALUE, struct.pack("<I", handle) + str16(name))


def _once(n: int = 6, delay: float = 0.0) -> Profiler:
    """The good pattern: open App once, read n values, close."""
    conn = _conn(delay)
    with regfast.profile() as prof:
        dispatch(conn, ops.OP_OPEN_KEY, _open_req(r"Software\App"))
        for i in range(n):
            _get(conn, 1, f"v{i}")
        dispatch(conn, ops.OP_CLOSE_KEY, struct.pack("<I", 1))
    return prof


def _each(n: int = 6, delay: float = 0.0) -> Profiler:
    """The regression: open, read, close for every value."""
    conn = _conn(delay)
    with regfast.profile() as prof:
        for i in range(n):
            dispatch(conn, ops.OP_OPEN_KEY, _open_req(r"Software\App"))
            _get(conn, i + 1, f"v{i}")
            dispatch(conn, ops.OP_CLOSE_KEY, struct.pack("<I", i + 1))
    return prof


def test_count_round_trips_and_open_each(make_hive):
    p = _each(4)
    assert p.count("open_key", path=r"Software\App") == 4             # without the root
    assert p.count("open_key", path=r"hkcu\software\app") == 4        # with it, any case
    assert p.count("open_key", path=r"Software\Other") == 0
    assert p.count(["open_key", "close_key"]) == 8 and p.count() == 12
    assert p.count("get_value", value="V2") == 1 and p.count(failed=True) == 0
    assert p.round_trips() == 12
    assert [(o.path, o.opens, o.cycles) for o in p.open_each()] == [(r"HKCU\Software\App", 4, 4)]
    with pytest.raises(ValueError, match="unknown operation"):
        p.count("open_keys")
    # offline: open_hive is seen (then the rf_* calls it makes), but is not a round trip
    built = make_hive({"K": {}})
    with regfast.profile() as off:
        regfast.open_hive(built.path).close()
    assert off.count("open_hive", path=str(built.path)) == 1 and off.round_trips() == 0
    assert off.operations() == [("open_hive", str(built.path), None, 0), ("hive_open", str(built.path), None, 0),
                                ("hive_close", None, None, 0)]


def test_json_round_trip_and_bad_files():
    p = _each(3)
    q = Profiler.from_json(p.to_json())
    for name, col in p.columns.items():
        assert q.columns[name].tolist() == col.tolist(), name
    assert q.strings == p.strings and str(q.report()) == str(p.report())
    assert q.count("open_key", path=r"Software\App") == 3 and q.round_trips() == p.round_trips()
    assert len(Profiler.from_json(Profiler().to_json())) == 0
    doc = json.loads(p.to_json())
    for bad, msg in (("{", "JSON"), ("[]", "not a regfast profile"),
                     (json.dumps({**doc, "version": 99}), "newer"),
                     (json.dumps({**doc, "columns": {**doc["columns"], "op": [1]}}), "rows"),
                     (json.dumps({**doc, "strings": []}), "not in its table"),
                     # fields of the wrong JSON type escaped as AttributeError,
                     # TypeError or OverflowError (`regfast profile compare`
                     # called them internal errors)
                     (json.dumps({**doc, "op_names": [1]}), "malformed"),
                     (json.dumps({**doc, "columns": {**doc["columns"], "op": None}}), "malformed"),
                     (json.dumps({**doc, "columns": [1]}), "malformed"),
                     (json.dumps({**doc, "columns": {**doc["columns"], "bytes_in": [2 ** 70] * len(p)}}),
                      "malformed"),
                     (json.dumps({**doc, "version": None}), "malformed")):
        with pytest.raises(ValueError, match=msg):
            Profiler.from_json(bad)


def test_compare_names_what_got_worse():
    base, new = _once(6), _each(6)
    c = compare(base, new)
    assert c.round_trips == (8, 18)
    assert (r"HKCU\Software\App", 1, 6) in c.more_opens
    assert c.open_each == [(r"HKCU\Software\App", 0, 6)]
    assert ("open_key", 1, 6) in c.counts and ("close_key", 1, 6) in c.counts
    assert "HKCU\\Software\\App" in str(c) and "round trips" in str(c)
    assert c.violations() == []                                   # no threshold, no verdict
    assert c.violations(max_extra_round_trips=10) == []
    assert len(c.violations(max_extra_round_trips=9)) == 1
    assert len(c.violations(max_extra_opens=4)) == 1 and c.violations(max_extra_opens=5) == []
    assert len(c.violations(no_new_open_each=True)) == 1
    # the same pattern again: nothing got worse
    same = compare(_each(6), _each(6))
    assert same.more_opens == [] and same.open_each == [] and same.round_trips == (18, 18)
    assert same.violations(max_extra_round_trips=0, max_extra_opens=0, no_new_open_each=True) == []


def test_compare_slower_operations():
    base, new = _once(8), _once(8, delay=0.003)
    c = compare(base, new)
    slow = {(op, p): nm / bm for op, p, bm, nm, _, _ in c.slower}
    assert slow[("get_value", None)] > 5 and slow[("get_value", r"HKCU\Software\App")] > 5
    assert ("open_key", None) not in slow                         # 1 sample: below min_count
    assert c.violations(max_slowdown=2.0)
    assert compare(base, new, min_count=100).slower == []


def test_cli_profile_json_and_compare_exit_codes(make_hive, tmp_path, capsys):
    built = make_hive({"K": {"v": 1}})
    script = tmp_path / "work.py"
    script.write_text(f"import regfast\nfor _ in range(3):\n    regfast.open_hive({str(built.path)!r}).close()\n")
    out = tmp_path / "p.json"
    assert main(["profile", "--json", str(out), "--", "python", str(script)]) == 0
    assert "open_hive" in capsys.readouterr().err
    saved = Profiler.from_json(out.read_text())
    assert saved.count("open_hive", path=str(built.path)) == 3
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    base.write_text(_once(6).to_json())
    new.write_text(_each(6).to_json())
    assert main(["profile", "compare", str(base), str(new)]) == 0        # report only
    assert "open-each" in capsys.readouterr().out
    assert main(["profile", "compare", str(base), str(new), "--max-extra-round-trips", "0"]) == 1
    assert "round trips 8 -> 18" in capsys.readouterr().err
    assert main(["profile", "compare", str(base), str(new), "--no-new-open-each"]) == 1
    assert main(["profile", "compare", str(base), str(new), "--max-extra-opens", "5",
                 "--max-extra-round-trips", "10"]) == 0
    assert main(["profile", "compare", str(new), str(base), "--max-extra-round-trips", "0",
                 "--no-new-open-each", "--max-extra-opens", "0"]) == 0    # better is fine
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    capsys.readouterr()
    assert main(["profile", "compare", str(base), str(bad)]) == 2
    assert "not a regfast profile" in capsys.readouterr().err
    assert main(["profile", "compare", str(base), str(tmp_path / "missing.json")]) == 2
