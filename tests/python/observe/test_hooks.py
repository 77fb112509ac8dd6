"""regfast.hooks (pre/post callbacks, veto) and regfast.profile() through
regfast-agent under Wine: exact counts of a scripted workload, a veto that
really keeps the write out of the registry (checked with `wine reg query`,
another process), and `regfast profile -- python script.py`.

That the hook point costs nothing measurable when off is a benchmark, not a
test: bench/bench_hooks.py.
"""
from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import regfast
from regfast.live import _agent_ops as ops
from regfast import hooks
from regfast.observe.hooks import HookVeto, HookWarning
from wine_session import registry, sandbox, wine  # noqa: F401  (shared fixtures)


@pytest.fixture(autouse=True)
def no_hooks_left():
    assert not hooks.active()
    # every rf_* call is recorded, a hive closed by the garbage collector too:
    # collect what earlier tests left now, not during this test's profile
    gc.collect()
    yield
    assert not hooks.active(), "a test left a hook or profiler installed"


def test_profile_records_a_scripted_workload_exactly(registry, sandbox):
    path = sandbox.path + r"\P"
    with regfast.profile(capacity=16) as prof:          # 36 rows: the columns grow twice
        k = registry.create_key("HKCU", path)            # hive_root, create_key
        for i in range(3):
            k.set_value(f"v{i}", "x" * (i + 1))          # 3 set_value
        for _ in range(4):                               # open-each: 4 x (open, get, close)
            with registry.open_key("HKCU", path) as kk:  # hive_root, open_key ... close_key
                assert kk["v0"] == "x"                   # get_value, value_info, read_value
        k.read_values(["v0", "v1"])                      # read_values (its MORE_DATA retry merged)
        with pytest.raises(FileNotFoundError):
            k.value("missing")                           # get_value, status 2
        k.delete_value("v2")                             # delete_value
        k.close()                                        # close_key
        registry.open_key("HKCU", sandbox.path).close()  # another key: hive_root, open + close
    sandbox.set_value("after", 1)                        # not recorded: the profiler is off
    # One row per rf_* call the binding made, as issue 12 puts hooks at the
    # rf_* entry: hive_root (each open starts at the root token), the value's
    # type and data reads after its lookup are calls of their own; their
    # round_trips column (0: the backend's caches) says what they cost. A
    # buffer negotiation (RF_E_MORE_DATA, then the retry) is one call.
    expected = {"hive_root": 6, "create_key": 1, "open_key": 5, "close_key": 6, "set_value": 3,
                "get_value": 5, "value_info": 4, "read_value": 4, "read_values": 1, "delete_value": 1}
    assert prof.counts() == expected
    n = sum(expected.values())
    assert len(prof) == n == 36
    c = prof.columns
    assert all(a.shape == (n,) for a in c.values())
    assert c["op"].dtype == np.uint16 and c["duration_ns"].dtype == np.int64
    names = prof.op_names()
    # statuses: exactly the missing value failed, with 2
    assert c["status"].tolist().count(2) == 1 and names[int(np.flatnonzero(c["status"])[0])] == "get_value"
    assert (c["status"] != 0).sum() == 1
    # value names and the data bytes of the writes (REG_SZ: UTF-16 with its NUL)
    sets = [i for i, nm in enumerate(names) if nm == "set_value"]
    assert [prof.strings[c["value"][i]] for i in sets] == ["v0", "v1", "v2"]
    for j, i in enumerate(sets):
        assert c["bytes_out"][i] == 2 * (j + 1) + 2
    # paths in the hive (rf_* rows: no root); hive_root's is the root's ""
    roots = [i for i, nm in enumerate(names) if nm == "hive_root"]
    assert all(prof.strings[c["path"][i]] == "" for i in roots)
    assert all(prof.strings[c["path"][i]] == path for i in range(n - 3) if i not in roots)
    assert [prof.strings[p] for p in c["path"][-2:]] == [sandbox.path] * 2
    assert c["create"].tolist() == [False, True] + [False] * (n - 2)
    assert (c["duration_ns"] > 0).all() and (np.diff(c["start_ns"]) > 0).all()
    rep = prof.report()
    assert rep.operations == n and rep.hottest[0][:2] == (path, n - 6 - 2)
    (oe,) = rep.open_each                                # only P: the other key was opened once
    assert (oe.path, oe.opens, oe.cycles, oe.removable) == (path, 5, 5, 4)
    text = str(rep)
    assert "open-each patterns" in text and path in text
    assert dict((r[0], (r[1], r[3])) for r in rep.per_op)["get_value"] == (5, 1)


def test_pre_hook_veto_keeps_the_write_out(wine, registry, sandbox):
    seen: list[hooks.Operation] = []

    def guard(op: hooks.Operation):
        if op.is_write and op.value == "blocked":
            return False
        return None

    with hooks.pre(guard), hooks.post(seen.append):
        with pytest.raises(HookVeto) as e:
            sandbox.set_value("blocked", "should never land")
        sandbox.set_value("allowed", "yes")
        with pytest.raises(PermissionError):
            sandbox.delete_value("blocked")
    assert e.value.winerror == 5 and isinstance(e.value, regfast.RegistryPermissionError)
    assert "vetoed by hook" in e.value.strerror and "guard" in e.value.strerror
    out = wine.reg("query", sandbox.full_path).stdout
    assert "allowed" in out and "blocked" not in out
    vetoed = [op for op in seen if op.vetoed]
    assert [(op.name, op.value, op.status, op.duration_ns) for op in vetoed] == [
        ("set_value", "blocked", 5, 0), ("delete_value", "blocked", 5, 0)]
    ok = [op for op in seen if op.name == "set_value" and not op.vetoed]
    assert ok and ok[0].status == 0 and ok[0].duration_ns > 0 and ok[0].response_bytes == 0
    # removed: the same write goes through now
    sandbox.set_value("blocked", "now allowed")
    assert "now allowed" in wine.reg("query", sandbox.full_path).stdout


def test_raising_pre_hook_aborts_and_post_hook_errors_only_warn(wine, registry, sandbox):
    class Stop(Exception):
        pass

    def boom(op):
        if op.name == "set_value":
            raise Stop(op.value)

    with hooks.pre(boom):
        with pytest.raises(Stop):
            sandbox.set_value("x", 1)
    assert "x" not in sandbox

    def bad_observer(op):
        raise RuntimeError("observer bug")

    h = hooks.post(bad_observer)
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            sandbox.set_value("y", 2)
            assert sandbox["y"] == 2
        assert any(issubclass(x.category, HookWarning) and "observer bug" in str(x.message) for x in w)
    finally:
        h.remove()
        h.remove()                                       # idempotent
    with pytest.raises(TypeError):
        hooks.pre("not callable")                        # type: ignore[arg-type]


def test_paths_of_keys_opened_before_the_hooks_are_unknown(registry, sandbox):
    early = registry.open_key("HKCU", sandbox.path, access=regfast.KEY_ALL_ACCESS)
    seen: list[hooks.Operation] = []
    with hooks.post(seen.append):
        early.set_value("a", 1)
        late = registry.open_key("HKCU", sandbox.path, access=regfast.KEY_ALL_ACCESS)
        late.set_value("b", 2)
        late.close()
    early.close()
    # rf_* rows name a key by its token; the log learns a token's path from
    # the opens it sees (a remote key's path is never asked of the agent)
    seen = [op for op in seen if op.name != "hive_root"]
    a, op_open, b, close = seen
    assert (a.name, a.path, a.value) == ("set_value", None, "a") and a.token
    assert (op_open.name, op_open.path) == ("open_key", sandbox.path)
    assert (b.path, b.value) == (sandbox.path, "b") and b.token
    assert (close.name, close.path, close.token) == ("close_key", sandbox.path, b.token)


PROFILED = textwrap.dedent("""
    import json, os, sys
    import regfast
    cfg = json.loads(os.environ["RF_TEST_CFG"])
    reg = regfast.connect(cfg["cmd"], env=cfg["env"])
    for i in range(7):                                   # the open-each anti-pattern
        with reg.open_key("HKCU", cfg["path"]) as k:
            k.get("v")
    with reg.create_key("HKCU", cfg["path"] + "\\\\Hot") as k:
        for i in range(12):
            k.set_value("n", i)
    reg.close()
    print("script done", sys.argv[1:])
    sys.exit(4)
""")


def test_cli_profile_runs_a_script_and_reports(wine, registry, sandbox, tmp_path):
    script = tmp_path / "workload.py"
    script.write_text(PROFILED)
    env = dict(wine.env, RF_TEST_CFG=json.dumps({"cmd": wine.cmd, "env": wine.env, "path": sandbox.path}))
    r = subprocess.run([sys.executable, "-m", "regfast.cli", "profile", "--", "python", str(script), "arg1"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 4, r.stderr[-3000:]                 # the script's exit code
    assert r.stdout.strip() == "script done ['arg1']"
    err = r.stderr
    full = sandbox.path                                        # rf_* rows: the path in its hive
    # open-each: 7 opens and 7 open/close cycles of the same key
    oe = err.split("open-each patterns")[1].splitlines()
    assert any(line.split()[:2] == ["7", "7"] and line.endswith(full) for line in oe), err
    hot = err.split("hottest keys")[1].split("open-each")[0]
    assert any(line.split()[0] == "14" and line.endswith(full + "\\Hot") for line in hot.splitlines()[2:]), err
    per_op = err.split("per operation:")[1].split("hottest")[0]
    counts = {ln.split()[0]: int(ln.split()[1].replace(",", "")) for ln in per_op.splitlines()[2:] if ln.strip()}
    assert counts["set_value"] == 12 and counts["get_value"] == 7 and counts["open_key"] == 7
    assert counts["create_key"] == 1 and counts["close_key"] == 8
    # the connection's hives (rf_remote_open), every one closed by reg.close()
    assert counts["hive_open"] == counts["hive_close"] >= 1
    r = subprocess.run([sys.executable, "-m", "regfast.cli", "profile"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "needs a script" in r.stderr


def test_profiler_sees_transaction_journal_traffic(registry, sandbox, tmp_path):
    with regfast.profile() as prof:
        with regfast.transaction(registry, journal=tmp_path / "j.rfj", mode="journal") as tx:
            tx.open_key("HKCU", sandbox.path).set_value("t", 1)
    counts = prof.counts()
    assert counts["set_value"] == 1 and counts["get_value"] == 1   # the journal read what it overwrites
    assert hooks.C_OP_BASE + hooks.RF_OPS["value_set"] in prof.columns["op"]   # rf_value_set


def test_offline_open_hive_is_hooked_and_can_be_vetoed(make_hive, tmp_path):
    built = make_hive({"k": {"v": 1}})
    with regfast.profile() as prof:
        with regfast.open_hive(built.path) as hive:
            assert hive.open("k")["v"] == 1                # Key reads: the C log's rows
        with pytest.raises(FileNotFoundError):
            regfast.open_hive(tmp_path / "missing.hiv")
    counts = prof.counts()
    # regfast.open_hive's hook point, then the rf_hive_open it leads to
    assert (counts["open_hive"], counts["hive_open"], counts["hive_close"]) == (2, 2, 1)
    assert (counts["open_key"], counts["get_value"]) == (1, 1)
    c = prof.columns
    offline = np.flatnonzero(c["op"] == hooks.OP_OPEN_HIVE)
    assert [prof.strings[c["path"][i]] for i in offline] == [str(built.path), str(tmp_path / "missing.hiv")]
    assert c["status"][offline].tolist() == [0, 2]
    files = np.flatnonzero(c["op"] == hooks.C_OP_BASE + hooks.RF_OPS["hive_open"])   # the file too
    assert [prof.strings[c["path"][i]] for i in files] == [str(built.path), str(tmp_path / "missing.hiv")]
    with hooks.pre(lambda op: op.name != "open_hive"):
        with pytest.raises(HookVeto):
            regfast.open_hive(built.path)
    with regfast.open_hive(built.path) as hive:          # removed: opens again
        assert hive.open("k")["v"] == 1


# ---------------------------------------------------------------------------
# Administration ops (agent ops 32..46): named, writes flagged, vetoable
# ---------------------------------------------------------------------------

def test_admin_writes_are_seen_and_vetoed_per_kind(wine, registry, sandbox, tmp_path):
    import struct
    from regfast.live.protocol import str16
    sub = registry.create_key("HKCU", sandbox.path + r"\Guarded")
    sub.set_value("v", "kept")
    sddl_before = sub.security()                        # before any hook: the independent reading
    privs_before = registry.privilege_state("SeBackupPrivilege")
    guarded = sandbox.path + r"\Guarded"
    seen: list[hooks.Operation] = []

    def guard(op: hooks.Operation):
        # the documented policy shape: writes on a path, or writes with no key at all
        if op.is_write and (op.path is None or op.path.startswith(guarded) or op.path == "rf-mount"):
            return False
        return None

    with hooks.pre(guard), hooks.post(seen.append):
        sub.close()                                     # opened again with the hooks on: its path is known
        sub = registry.open_key("HKCU", guarded, access=regfast.KEY_ALL_ACCESS)
        # a handle op with a new name
        with pytest.raises(HookVeto):
            sub.rename("Renamed")
        # handle ops whose payload is SDDL / an ACE / nothing
        with pytest.raises(HookVeto):
            sub.set_security("D:P(A;;KA;;;WD)")
        with pytest.raises(HookVeto):
            sub.grant("Everyone", "full")
        with pytest.raises(HookVeto):
            sub.take_ownership()
        # handle ops with files (raw requests on the key's agent handle, which
        # rf_remote_request puts first: the Python helpers refuse Wine's stubs first)
        with pytest.raises(HookVeto):
            sub._remote_request(ops.OP_RESTORE_KEY, struct.pack("<I", 8) + str16(r"C:\x.hiv"))
        with pytest.raises(HookVeto):
            sub._remote_request(ops.OP_REPLACE_KEY, str16(r"C:\new.hiv") + str16(r"C:\old.hiv"))
        # root + subkey ops
        with pytest.raises(HookVeto):
            registry.load_hive("HKCU", "rf-mount", tmp_path / "h.hiv")
        with pytest.raises(HookVeto):
            registry.unload_hive("HKCU", "rf-mount")
        # no key at all: the agent's token
        with pytest.raises(HookVeto):
            admin_set_privileges(registry, ["SeBackupPrivilege"], True)
        # reads go through, with their path
        assert sub.security() == sddl_before
    vetoed = {op.name: op for op in seen if op.vetoed}
    assert sorted(vetoed) == sorted(["rename", "set_security", "grant", "take_ownership", "restore_key",
                                     "replace_key", "load_hive", "unload_hive", "set_privileges"])
    assert all(op.is_write and op.status == 5 for op in vetoed.values())
    assert (vetoed["rename"].path, vetoed["rename"].value) == (guarded, "Renamed")
    assert vetoed["set_security"].path == guarded       # rf_* rows: the path in its hive
    assert vetoed["restore_key"].file == r"C:\x.hiv" and vetoed["replace_key"].file == r"C:\new.hiv"
    lh = vetoed["load_hive"]
    assert (lh.root, lh.path) == (0x80000001, "rf-mount") and lh.file.endswith("\\h.hiv")   # as the agent sees it
    assert vetoed["set_privileges"].value == "SeBackupPrivilege"
    reads = [op for op in seen if op.name == "get_security"]
    assert reads and not reads[0].is_write and reads[0].path == guarded
    # nothing reached the registry: checked from another process and after the hooks
    out = wine.reg("query", "HKCU\\" + sandbox.path).stdout
    assert "Guarded" in out and "Renamed" not in out
    assert "kept" in wine.reg("query", "HKCU\\" + guarded).stdout
    assert wine.reg("query", r"HKCU\rf-mount", check=False).returncode != 0
    assert sub.security() == sddl_before
    assert registry.privilege_state("SeBackupPrivilege") == privs_before
    sub.close()


def admin_set_privileges(reg, names, enable):
    from regfast.live import admin
    return admin.set_privileges(reg, names, enable)


# ---------------------------------------------------------------------------
# The hook layer's bookkeeping, over a scripted connection (no agent needed)
# ---------------------------------------------------------------------------

class ScriptedConn:
    """Answers requests as the agent would, from a function: the hook layer
    and the profiler are what is under test here, not the agent."""

    def __init__(self, answer):
        self.answer = answer

    def start(self, op, payload):
        return 1, (op, payload)

    def finish(self, rid, p, op, timeout, filename):
        return self.answer(op, p[1])


def dispatch(conn, op, payload=b""):
    return hooks._dispatch(conn, op, payload, None, None)


def _open_req(path: str, tx: int | None = None) -> bytes:
    import struct
    from regfast.live.protocol import str16
    head = struct.pack("<I", tx) if tx is not None else b""
    return head + struct.pack("<IIII", 0x80000001, 0, 0xF003F, 0) + str16(path)


def test_transaction_end_forgets_its_keys():
    import struct
    ids = iter(range(1, 100))

    def answer(op, payload):
        if op == ops.OP_TX_ROLLBACK:
            raise regfast.RegistryError(22, "rollback failed", None, winerror=6701)
        return struct.pack("<II", next(ids), 2) if op == ops.OP_TX_OPEN_KEY else b""

    conn = ScriptedConn(answer)
    seen: list[hooks.Operation] = []
    with hooks.post(seen.append):
        for tx, path in ((7, "a"), (7, "b"), (8, "c")):
            dispatch(conn, ops.OP_TX_OPEN_KEY, _open_req(path, tx))
        assert hooks._tx_paths_of(conn) == {1: (0x80000001, "a", 7), 2: (0x80000001, "b", 7),
                                            3: (0x80000001, "c", 8)}
        dispatch(conn, ops.OP_TX_COMMIT, struct.pack("<I", 7))
        assert set(hooks._tx_paths_of(conn)) == {3}     # 1 and 2 were tx 7's
        dispatch(conn, ops.OP_TX_SET_VALUE, struct.pack("<II", 1, 4) + b"\0\0\0\0" + b"\0\0\0\0")
        assert seen[-1].path is None                    # key 1 died with its transaction
        with pytest.raises(OSError):                    # the agent closes the keys even then
            dispatch(conn, ops.OP_TX_ROLLBACK, struct.pack("<I", 8))
        assert not hooks._tx_paths_of(conn)
    assert seen[3].tx == 7 and seen[3].name == "tx_commit"


def test_a_failing_profiler_does_not_change_the_outcome():
    ntstatus = 0xC0000023                                 # > 2**31: does not fit the int32 column

    def answer(op, payload):
        raise regfast.RegistryError(22, "failed", None, winerror=ntstatus)

    conn = ScriptedConn(answer)
    prof = regfast.profile()
    prof._STAGE = 1                                       # store each row as it comes
    with prof:
        with pytest.raises(regfast.RegistryError) as e:
            dispatch(conn, ops.OP_GET_VALUE, b"\1\0\0\0" + b"\0\0\0\0")
    assert e.value.winerror == ntstatus                   # the operation's own error, not the profiler's
    assert prof.columns["status"].tolist() == [ntstatus - 2**32]

    class Broken:
        def _add(self, rec):
            raise RuntimeError("profiler bug")

    h = hooks._add_sink(Broken())
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            assert dispatch(ScriptedConn(lambda op, p: b"pong"), ops.OP_PING) == b"pong"
        assert any(issubclass(x.category, HookWarning) and "profiler bug" in str(x.message) for x in w)
    finally:
        h.remove()
    # a flush that fails keeps the staged rows (and the columns) as they were
    prof2 = regfast.profile()
    with prof2:
        dispatch(ScriptedConn(lambda op, p: b""), ops.OP_PING)
    prof2._stage.append(("not a number",) * len(prof2._stage[0]))
    with pytest.raises(ValueError):
        prof2.columns
    assert len(prof2) == 2 and len(prof2._stage) == 2
    prof2._stage.pop()
    assert prof2.counts() == {"ping": 1}


def test_open_each_pairs_opens_and_closes_per_connection():
    import struct
    # two connections, each numbering its handles from 1: the same numbers
    a = ScriptedConn(lambda op, p: struct.pack("<I", 1) if op == ops.OP_OPEN_KEY else b"")
    b = ScriptedConn(lambda op, p: struct.pack("<I", 1) if op == ops.OP_OPEN_KEY else b"")
    close1 = struct.pack("<I", 1)
    with regfast.profile() as prof:
        dispatch(a, ops.OP_OPEN_KEY, _open_req("X"))
        dispatch(b, ops.OP_OPEN_KEY, _open_req("Y"))
        dispatch(a, ops.OP_CLOSE_KEY, close1)
        dispatch(b, ops.OP_CLOSE_KEY, close1)
        for conn, path in ((a, "X"), (b, "Y")):
            dispatch(conn, ops.OP_OPEN_KEY, _open_req(path))
            dispatch(conn, ops.OP_CLOSE_KEY, close1)
    assert prof.columns["conn"].tolist() == [1, 2, 1, 2, 1, 1, 2, 2]
    got = {(o.path, o.opens, o.cycles) for o in prof.report().open_each}
    assert got == {("HKCU\\X", 2, 2), ("HKCU\\Y", 2, 2)}
