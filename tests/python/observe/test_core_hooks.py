"""Hooks and the profiler fed by the C hook records at the rf_* entry
(src/core/rf_hook.c, batched by src/core/rf_oplog.c, bound by
regfast._hooks): offline Key reads are seen, with key paths and value names
as typed records (no request bytes), and Python pre hooks can veto them."""
from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

import regfast
from conftest import corpus_path
from regfast import hooks
from regfast._native import Hive
from regfast.exceptions import take_hook_veto
from regfast.observe.hooks import HookVeto, HookWarning, Operation
from regfast.observe.profile import Profiler
from wine_session import registry, sandbox, wine  # noqa: F401  (shared fixtures)


@pytest.fixture(autouse=True)
def no_hooks_left():
    assert not hooks.active()
    # every rf_* call is recorded, a hive closed by the garbage collector too:
    # collect what earlier tests left now, not during this test's profile
    gc.collect()
    yield
    assert not hooks.active(), "a test left a hook or profiler installed"


TREE = {"Software": {"App": {"Name": "x", "Count": 3, "Sub": {"Deep": {"v": 1}}}}, "Other": {}}


def test_offline_key_reads_are_profiled_with_paths(make_hive):
    built = make_hive(TREE)
    with regfast.open_hive(built.path) as hive:
        with regfast.profile() as prof:
            app = hive.open(r"Software\App")
            assert app["Name"] == "x" and app["Count"] == 3
            assert app.open(r"Sub\Deep")["v"] == 1
            assert [k.name for k in app.subkeys()] == ["Sub"]
    assert prof.count("open_key") == 2
    assert prof.count("open_key", path=r"Software\App") == 1
    assert prof.count("open_key", path=r"Software\App\Sub\Deep") == 1
    assert prof.count("get_value", path=r"Software\App") == 2
    assert prof.count("get_value", path=r"Software\App", value="count") == 1
    assert prof.count("get_value", path=r"Software\App\Sub\Deep", value="v") == 1
    assert prof.count("subkeys", path=r"Software\App") >= 1
    assert prof.round_trips() == 0


def test_report_text_names_the_root_key(make_hive):
    """The root key's path is "": the report's table says "(root)" rather
    than ending a row in nothing."""
    built = make_hive(TREE)
    with regfast.open_hive(built.path) as hive:
        with regfast.profile() as prof:
            for _ in range(3):
                list(hive.root.values())
    (n,) = [n for path, n, _, _ in prof.report().hottest if path == ""]
    hot = str(prof.report()).split("hottest keys")[1].split("open-each")[0].splitlines()[2:]
    assert any(line.split()[0] == str(n) and line.endswith("  (root)") for line in hot), hot


def test_key_walk_of_a_corpus_hive_names_every_key(make_hive):
    """Every rf_* row of a whole-tree Key walk carries the key's real path
    (compared with Key.path) — including subkeys reached by enumeration."""
    hive = regfast.open_hive(corpus_path("plaso__NTUSER.DAT"))
    seen = {}

    def walk(k):
        for s in k.subkeys():
            seen[s.path.lower()] = len(list(s.values()))
            walk(s)

    with hive:
        root = hive.root
        with regfast.profile() as prof:
            walk(root)
    assert len(seen) > 1000
    c = prof.columns
    names = prof.op_names()
    value_lists = [i for i, n in enumerate(names) if n in ("key_values", "read_values")]
    paths = {prof.strings[c["path"][i]].lower() for i in value_lists}
    assert paths == set(seen)                        # every key, by its real path
    # (a hive of another test that the garbage collector closes meanwhile is
    # recorded too: a close, without a path)
    mine = np.array([n != "hive_close" for n in names], bool)
    assert (c["path"][mine] >= 0).all()
    assert (c["backend"] == 1).all() and prof.round_trips() == 0
    # k.subkeys() counts (RF_E_MORE_DATA), then fills: one call of the user's,
    # one row (the log merges a negotiation with its retry)
    assert prof.count("subkeys", path=r"Software\Microsoft") == 1
    (i,) = np.flatnonzero(np.array([n == "subkeys" for n in names]) & (c["path"] == prof.strings.index(
        r"Software\Microsoft")))
    assert c["status"][i] == 0 and c["count"][i] > 0


def test_rows_reach_the_profiler_in_bulk_when_the_log_fills(make_hive):
    from regfast import _hooks as core
    built = make_hive({"K": {"v": 1}})
    n = core.FULL_AT + 10
    with regfast.open_hive(built.path) as hive:
        key = hive.open("K")
        with regfast.profile() as prof:
            for _ in range(n):
                key.value("v")
            # on_full ran inside an rf_* call: the first batch is stored already
            assert prof._n >= core.FULL_AT
        assert prof.count("get_value", path="K", value="v") == n


def test_pre_hook_vetoes_an_offline_read_with_hookveto(make_hive):
    built = make_hive(TREE)
    with regfast.open_hive(built.path) as hive:
        app = hive.open(r"Software\App")
        with hooks.pre(lambda op: not (op.name == "get_value" and op.value == "Count")):
            assert app["Name"] == "x"
            with pytest.raises(HookVeto) as ei:
                app["Count"]
            assert ei.value.winerror == 5 and "Software\\App" in str(ei.value)
        assert app["Count"] == 3                                  # removed: reads again

        class Boom(Exception):
            pass

        def boom(op):
            if op.name == "open_key":
                raise Boom(op.path)

        with hooks.pre(boom), regfast.profile() as prof:
            with pytest.raises(Boom, match=r"Software\\App\\Sub"):
                app.open("Sub")
        assert prof.count("open_key", path=r"Software\App\Sub") == 1
        assert prof.columns["vetoed"].tolist() == [True] and prof.count(failed=True) == 1
        # a later access-denied that is no veto is a plain PermissionError, not the stale one
        assert take_hook_veto("access denied") is None


def test_post_hooks_see_typed_records(make_hive):
    built = make_hive(TREE)
    seen = []
    with regfast.open_hive(built.path) as hive:
        with hooks.post(seen.append):
            key = hive.open(r"Software\App\Sub")
            key.open("Deep").value("v").value
            with pytest.raises(FileNotFoundError):
                key.value("missing")
    ops = [(o.name, o.path, o.value, o.status, o.backend) for o in seen
           if o.name not in ("hive_root", "hive_close")]       # (a GC'd hive of another test may close)
    assert ops[:2] == [("open_key", r"Software\App\Sub", None, 0, "regf"),
                       ("open_key", r"Software\App\Sub\Deep", None, 0, "regf")]
    assert ("get_value", r"Software\App\Sub\Deep", "v", 0, "regf") in ops
    assert ops[-1] == ("get_value", r"Software\App\Sub", "missing", 2, "regf")
    assert all(isinstance(o, Operation) and o.duration_ns >= 0 and not o.is_write for o in seen)


def test_scan_and_walk_are_one_operation_each(make_hive):
    built = make_hive(TREE)
    with regfast.open_hive(built.path) as hive, regfast.profile() as prof:
        assert len(list(hive.walk())) == 6
        hive.scan(r"Software\App")
    assert prof.count("scan") == 2
    assert prof.count("scan", path=r"Software\App") == 1
    rows = prof.columns
    scans = rows["op"] == hooks.C_OP_BASE + hooks.RF_OPS["scan"]
    assert sorted(rows["count"][scans].tolist()) == [3, 6]                        # keys


def test_profile_json_keeps_the_new_columns(make_hive):
    built = make_hive(TREE)
    with regfast.open_hive(built.path) as hive, regfast.profile() as prof:
        hive.open(r"Software\App").subkey_names()
    again = Profiler.from_json(prof.to_json())
    assert again.columns["backend"].tolist() == prof.columns["backend"].tolist()
    assert again.count("open_key", path=r"Software\App") == 1
    doc = json.loads(prof.to_json())
    del doc["columns"]["backend"], doc["columns"]["count"]           # a profile from before them
    old = Profiler.from_json(json.dumps(doc))
    assert old.columns["backend"].tolist() == [0] * len(old)


def test_threads_share_the_log(make_hive):
    from regfast import _hooks as core
    built = make_hive(TREE)
    per_thread = core.FULL_AT // 4 + 1000        # the log fills: threads drain it while the main one reads
    with regfast.open_hive(built.path) as hive, regfast.profile() as prof:
        app = hive.open(r"Software\App")

        def work():
            assert hive.open(r"Software\App")["Name"] == "x"
            for _ in range(per_thread - 1):
                app.value("Count")

        ts = [threading.Thread(target=work) for _ in range(4)]
        for t in ts:
            t.start()
        while any(t.is_alive() for t in ts):
            len(prof)                                 # drains too
        for t in ts:
            t.join()
    assert prof.count("open_key", path=r"Software\App") == 5
    assert prof.count("get_value", path=r"Software\App", value="Name") == 4
    assert prof.count("get_value", path=r"Software\App", value="Count") == 4 * (per_thread - 1)
    c = prof.columns
    mine = np.array([n != "hive_close" for n in prof.op_names()], bool)   # (GC'd hives of other tests)
    assert (c["path"][mine] >= 0).all() and (np.diff(c["start_ns"]) >= 0).all()


# ---------------------------------------------------------------------------
# The live registry through the C remote backend under Wine
# ---------------------------------------------------------------------------

def test_remote_backend_operations_are_profiled(wine, registry, sandbox):  # noqa: F811
    sandbox.create_key(r"App\Sub").set_value("n", 7)
    sandbox.create_key("App").set_value("s", "text")
    proc = subprocess.Popen(wine.cmd, env=wine.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, bufsize=0)
    hive = Hive._remote(proc.stdout.fileno(), proc.stdin.fileno(), 60.0)
    base = sandbox.path.split("\\", 0)[0]
    try:
        with regfast.profile() as prof:
            for _ in range(3):
                app = hive.open(base + r"\App")
                assert app["s"] == "text"
            assert [k.name for k in app.subkeys()] == ["Sub"]
            assert [k["n"] for k in app.subkeys()] == [7]
            with pytest.raises(FileNotFoundError):
                app["missing"]
        vetoed = []
        with hooks.pre(lambda op: vetoed.append((op.name, op.path)) or op.name != "get_value"):
            with pytest.raises(HookVeto):
                app["s"]        # opened before: a remote key's path is not looked up (no extra round trip)
            with pytest.raises(HookVeto):
                hive.open(base + r"\App")["s"]
    finally:
        hive.close()
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()
    assert prof.count("open_key", path=base + r"\App") == 3
    assert prof.count("get_value", path=base + r"\App", value="s") == 3
    assert prof.count("get_value", path=base + r"\App\Sub", value="n") == 1   # learnt from subkeys + name
    assert prof.count("get_value", value="missing", failed=True) == 1
    remote = [b for b, n in zip(prof.columns["backend"].tolist(), prof.op_names(), strict=True)
              if n != "hive_close"]                                     # (GC'd hives of other tests)
    assert set(remote) == {3}
    # round trips: what the remote backend sent the agent for each rf_* call
    c, names = prof.columns, prof.op_names()
    lookups = [i for i, n in enumerate(names) if n == "get_value"]
    assert all(c["round_trips"][i] >= 1 for i in lookups)          # a value is asked for each time
    assert all(c["round_trips"][i] == 0 for i, n in enumerate(names) if n in ("hive_root", "key_name"))
    assert prof.round_trips() == int(c["round_trips"].sum()) >= len(lookups) + 1
    assert vetoed[0] == ("get_value", None) and ("get_value", base + r"\App") in vetoed


def test_nested_profiles_see_only_their_own_span(make_hive):
    built = make_hive(TREE)
    with regfast.open_hive(built.path) as hive:
        with regfast.profile() as outer:
            hive.open("Other")
            with regfast.profile() as inner:
                hive.open(r"Software\App")
            hive.open("Other")
    assert inner.count("open_key") == 1 and inner.count("open_key", path="Other") == 0
    assert outer.count("open_key") == 3 and outer.count("open_key", path="Other") == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")
def test_fork_while_another_thread_logs_does_not_hang_the_child(make_hive):
    """The log's lock is held across fork() (pthread_atfork): a child forked
    while another thread is inside the log can still make rf_* calls."""
    built = make_hive(TREE)
    stop = threading.Event()
    with regfast.open_hive(built.path) as hive, regfast.profile():
        def busy():
            while not stop.is_set():
                hive.open(r"Software\App\Sub\Deep")

        t = threading.Thread(target=busy)
        t.start()
        try:
            for _ in range(30):
                pid = os.fork()
                if pid == 0:                                   # the child: one logged call, then out
                    try:
                        hive.open(r"Software\App")
                    finally:
                        os._exit(0)
                deadline = time.monotonic() + 20
                while True:
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        assert os.waitstatus_to_exitcode(status) == 0
                        break
                    if time.monotonic() > deadline:
                        os.kill(pid, signal.SIGKILL)
                        os.waitpid(pid, 0)
                        pytest.fail("the forked child hung on the op log's lock")
                    time.sleep(0.001)
        finally:
            stop.set()
            t.join()


def test_a_close_is_not_vetoed_and_leaves_no_veto_behind(make_hive):
    built = make_hive(TREE)
    hive = regfast.open_hive(built.path)

    def no_close(op):
        if op.name == "hive_close":
            raise RuntimeError("keep it open")

    with hooks.pre(no_close), pytest.warns(HookWarning, match="cannot be vetoed"):
        hive.close()
    assert hive.closed
    assert take_hook_veto("key_info vetoed by a hook") is None     # nothing left for a later call


def test_a_batch_without_any_string_is_recorded(make_hive):
    # the first rf_* rows of a profile may name no key and no value (a close):
    # they are recorded like any others
    built = make_hive(TREE)
    hive = regfast.open_hive(built.path)
    with regfast.profile() as prof:
        hive.close()
    assert prof.counts() == {"hive_close": 1}
    assert prof.columns["path"].tolist() == [-1]
