"""regfast.connect(..., backend="remote"): the live registry through the C
remote backend, with the binding's own Key / Value / ValueBatch classes —
the ones regfast.open_hive returns — and writes, renames, security and
snapshots as rf_* calls (Key methods), under Wine.

Also the timeout / cut-frame rule of issue 15 #1 on this path: a write whose
frame the agent stopped reading is cut; the connection is dead at once and
the agent applies nothing.
"""
from __future__ import annotations

import os
import sys
import signal
import time

import pytest

import regfast
from regfast._bulk import ValueBatch
from regfast._native import Key, Value
from regfast.exceptions import ConnectionCutError, RegistryConnectionError
from regfast.live import _agent_ops as ops
from regfast.live.protocol import Reader
from regfast.live.remote import RemoteRegistry
from regfast.live.snapshot import parse_snapshot
from wine_session import BASE, registry, sandbox, wine  # noqa: F401  (shared fixtures)


@pytest.fixture(scope="module")
def rreg(wine):  # noqa: F811
    reg = wine.connect(backend="remote")
    yield reg
    reg.close()


@pytest.fixture
def rkey(rreg, request):
    path = f"{BASE}\\remote-{request.node.name[:50]}"
    key = rreg.create_key("HKCU", path)
    yield key
    rreg.delete_key("HKCU", path, tree=True)


def test_connect_returns_the_one_key_class(rreg, rkey):
    assert isinstance(rreg, RemoteRegistry)
    assert type(rkey) is Key and type(rkey) is regfast.Key
    assert f"protocol {ops.VERSION_MAX}" in rreg.description and rreg.pid > 0
    rkey.set_value("s", "text")
    assert type(rkey.value("s")) is Value
    batch = rkey.read_values(["s", "missing"])
    assert type(batch) is ValueBatch and batch.status.tolist() == [0, 2]
    assert rreg.full_path(rkey).startswith("HKEY_CURRENT_USER\\Software\\regfast-tests\\remote-")
    assert rreg.where(rkey)[0] == regfast.HKCU


def test_set_value_types_round_trip(rreg, rkey):
    data = {
        "sz": "hello", "dw": 7, "qw": 1 << 40, "bin": b"\x00\x01", "multi": ["a", "b"],
        "default": "the default",
    }
    for name, v in data.items():
        rkey.set_value("" if name == "default" else name, v)
    rkey.set_value("exp", "%PATH%", regfast.REG_EXPAND_SZ)
    rkey.set_value("odd", b"\x01\x02\x03", 0xFFFF0012)
    again = rreg.open_key("HKCU", rkey.path)
    assert again["sz"] == "hello" and again["dw"] == 7 and again["qw"] == 1 << 40
    assert again["bin"] == b"\x00\x01" and again["multi"] == ["a", "b"]
    assert again[""] == "the default" and again["exp"] == "%PATH%"
    assert again.value("exp").type == regfast.REG_EXPAND_SZ
    assert again.value("odd").type == 0xFFFF0012 and again["odd"] == b"\x01\x02\x03"
    with pytest.raises(TypeError):
        rkey.set_value("bad", object())
    with pytest.raises(ValueError):
        rkey.set_value("neg", -1)
    assert "bad" not in again and "neg" not in again


def test_a_listed_value_reads_its_current_data_after_a_change(rreg, rkey):
    """values() lists names and sizes; the data is read when asked for. A
    value changed in between (by any writer) answered with a bytes of the
    listed size: grown, the tail was uninitialised memory; shrunk, the old
    data's tail. Found by review."""
    rkey.set_value("grows", "short")
    rkey.set_value("shrinks", "x" * 40)
    listed = {v.name: v for v in rkey.values()}
    rkey.set_value("grows", "a much longer string than before")
    rkey.set_value("shrinks", "yy")
    assert listed["grows"].raw() == "a much longer string than before\0".encode("utf-16-le")
    assert listed["grows"].value == "a much longer string than before"
    assert listed["shrinks"].raw() == "yy\0".encode("utf-16-le")
    assert listed["shrinks"].value == "yy"


def test_a_nul_in_a_key_path_is_refused_not_cut(rreg, rkey):
    """The Win32 calls behind create_key/delete_key take NUL-terminated
    paths: "Important\\0-not-this" deleted "Important" (and with tree=True
    its whole subtree), "zero\\0key" created "zero". Found by review."""
    rkey.create_key("Important").set_value("keep", "me")
    rkey.create_key("Tree\\Sub")
    for call in (lambda: rkey.delete_key("Important\0-not-this"),
                 lambda: rkey.delete_key("Tree\0-not-this", tree=True),
                 lambda: rkey.create_key("zero\0key")):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.winerror == 87 and "NUL" in str(e.value)
    assert sorted(rkey.subkey_names()) == ["Important", "Tree"]
    assert rkey.subkey("Important")["keep"] == "me" and rkey.subkey("Tree").subkey_names() == ["Sub"]


def test_a_tree_delete_in_the_32_bit_view_deletes_that_views_key(rreg):
    """delete_key(view=32, tree=True) went to RegDeleteTreeW, which opens
    the path without the view's flag: it deleted the 64-bit view's tree and
    left the 32-bit one. Found by review."""
    path = r"Software\regfast-tests-wow-tree"
    try:
        for view in (64, 32):
            rreg.create_key("HKLM", path + r"\child", view=view).set_value("which", view)
        rreg.delete_key("HKLM", path, view=32, tree=True)
        assert rreg.open_key("HKLM", path + r"\child", view=64)["which"] == 64
        with pytest.raises(FileNotFoundError):
            rreg.open_key("HKLM", path, view=32)
    finally:
        for view in (64, 32):
            try:
                rreg.delete_key("HKLM", path, view=view, tree=True)
            except FileNotFoundError:
                pass


def test_a_tree_delete_takes_values_whose_names_hold_a_nul(rreg, rkey):
    """RegDeleteTreeW(key, NULL) deletes values by NUL-terminated name: one
    named "a\\0b" was not found, and the tree delete failed with 2, "the key
    does not exist", leaving the key. Found by review."""
    t = rkey.create_key("T")
    t.set_value("a\0b", 1)
    t.create_key("Sub").set_value("c\0d", 2)
    rkey.delete_key("T", tree=True)
    assert rkey.subkey_names() == []


def test_delete_value_create_delete_key_and_their_errors(rreg, rkey):
    rkey.set_value("gone", 1)
    rkey.delete_value("gone")
    assert "gone" not in rkey
    with pytest.raises(FileNotFoundError) as e:
        rkey.delete_value("gone")
    assert e.value.winerror == 2 and e.value.filename == "gone"
    sub = rkey.create_key(r"A\B")
    assert type(sub) is Key and sub.name == "B"
    sub.set_value("n", 1)
    assert rkey.subkey_names() == ["A"] and rkey.open(r"a\b")["n"] == 1
    with pytest.raises(PermissionError):
        rkey.delete_key("A")                            # it has subkeys: what Windows says
    rkey.delete_key("A", tree=True)
    assert rkey.subkey_names() == []
    with pytest.raises(FileNotFoundError) as e:
        rkey.open("A")
    assert e.value.winerror == 2
    with pytest.raises(OSError) as e:
        sub["n"]                                        # a token of a deleted key
    assert e.value.winerror in (1018, 2)


def test_a_value_name_past_windows_limit_and_a_path_of_another_type(rreg, rkey):
    """A value name of 16,384 characters is refused before anything is sent,
    with Windows' limit in the message (winerror 87; the agent used to
    answer "malformed"); 16,383 is stored and read back. A key path that is
    not a str is a TypeError naming what it wanted."""
    with pytest.raises(OSError) as e:
        rkey.set_value("n" * 16384, "x")
    assert e.value.winerror == 87 and "at most 16,383" in str(e.value)
    rkey.set_value("n" * 16383, "x")
    assert rkey["n" * 16383] == "x"
    for call in (lambda: rreg.open_key("HKCU", 5), lambda: rreg.create_key("HKCU", None),
                 lambda: rreg.delete_key("HKCU", b"x")):
        with pytest.raises(TypeError, match="a key path must be a str"):
            call()


def test_read_only_access_refuses_writes(rreg, rkey):
    ro = rreg.open_key("HKCU", rkey.path)               # KEY_READ
    with pytest.raises(PermissionError) as e:
        ro.set_value("x", 1)
    assert e.value.winerror == 5


def test_rename_keeps_values_and_follows_the_key(rreg, rkey):
    k = rkey.create_key("Old")
    k.set_value("v", "kept")
    k.rename("New")
    assert k.name == "New" and k["v"] == "kept"
    assert rkey.subkey_names() == ["New"]
    rkey.create_key("Other")
    with pytest.raises(OSError) as e:
        k.rename("Other")
    assert e.value.winerror == 183
    with pytest.raises(OSError) as e:
        k.rename("a\\b")
    assert e.value.winerror == 87


def test_security_descriptor_round_trip(rreg, rkey):
    sd = bytes(rkey.security_descriptor())
    assert rkey.security().startswith("O:")
    rkey.set_security_descriptor(sd)
    assert bytes(rkey.security_descriptor()) == sd
    with pytest.raises(OSError) as e:
        rkey.set_security_descriptor(b"\x01\x00")
    assert e.value.winerror == 87


def test_snapshot_is_the_agents_snapshot(registry, rreg, rkey):  # noqa: F811
    rkey.create_key("S").set_value("x", 5)
    rkey.set_value("top", "t")
    ours = parse_snapshot(Reader(rkey.snapshot_bytes()), rreg.full_path(rkey))
    theirs = registry.open_key("HKCU", rkey.path).snapshot()
    assert ours.keys.keys() == theirs.keys.keys()
    for k, state in theirs.keys.items():
        assert ours.keys[k].values == state.values


def test_connection_ops_privileges_ping_stats(rreg):
    assert rreg.ping(b"abc") == b"abc"
    assert rreg.stats()["handles_open"] >= 1
    state = rreg.privilege_state("SeBackupPrivilege")
    assert set(state) == {"SeBackupPrivilege"}
    with pytest.raises(OSError) as e:
        rreg.privilege_state("NoSuchPrivilege")
    assert e.value.winerror == 1313
    with pytest.raises(OSError) as e:
        rreg.conn.request(ops.OP_CLOSE_KEY, b"\x01\x00\x00\x00")   # the key table's business
    assert e.value.winerror == 87


def test_a_timed_out_write_cuts_the_connection(wine, rreg):  # noqa: F811
    """Issue 15 #1 on the C path: the agent stops reading (SIGSTOP), a 15 MB
    set_value times out part-way through its frame: ConnectionCutError
    (1236) now and at once for every later call; the agent, whose input the
    backend closed, applies nothing."""
    path = f"{BASE}\\remote-cut"
    rreg.create_key("HKCU", path).set_value("keep", "as it was")
    reg = wine.connect(backend="remote", timeout=3)
    try:
        key = reg.open_key("HKCU", path, access=regfast.KEY_ALL_ACCESS)
        key["keep"]
        os.kill(reg.proc.pid, signal.SIGSTOP)               # the agent stops reading its input
        try:
            t0 = time.monotonic()
            with pytest.raises(ConnectionCutError) as e:
                key.set_value("big", b"y" * (15 << 20))
            assert time.monotonic() - t0 < 15
            assert e.value.winerror == 1236
        finally:
            os.kill(reg.proc.pid, signal.SIGCONT)
        t0 = time.monotonic()
        with pytest.raises(ConnectionCutError):
            key.set_value("other", b"z" * 1000)
        with pytest.raises(RegistryConnectionError):
            reg.ping(b"x")
        assert time.monotonic() - t0 < 1
        assert reg.closed
        assert reg.proc.wait(timeout=30) is not None       # end of file inside the frame: it exited
    finally:
        reg.close()
    k = rreg.open_key("HKCU", path)
    assert k.get("big") is None and k.get("other") is None and k["keep"] == "as it was"
    rreg.delete_key("HKCU", path, tree=True)


def test_a_dead_agent_is_a_connection_error_at_once(wine):  # noqa: F811
    reg = wine.connect(backend="remote")
    key = reg.open_key("HKCU", "Software")
    reg.proc.kill()
    reg.proc.wait()
    with pytest.raises(RegistryConnectionError):
        key.subkey_names()
    t0 = time.monotonic()
    with pytest.raises(ConnectionError):
        key.info()
    assert time.monotonic() - t0 < 1 and reg.closed
    reg.close()


def test_timeouts_that_are_not_positive_are_refused(wine, rreg):  # noqa: F811
    """0, a negative number or NaN used to become the backend's 1 ms floor:
    connect() then failed its handshake ("no answer within 1 ms"), and a
    request slower than that would cut the connection. Refused with 87,
    before any agent starts; the connection stays usable."""
    for bad in (0, -1, float("nan"), True):
        with pytest.raises(OSError) as e:
            regfast.connect(wine.cmd, env=wine.env, timeout=bad)
        assert e.value.winerror == 87, e.value
        with pytest.raises(OSError) as e:
            rreg.conn.request(ops.OP_PING, timeout=bad)
        assert e.value.winerror == 87, e.value
    assert rreg.conn.request(ops.OP_PING, timeout=5) == b""
    assert not rreg.closed


def test_hive_files_refuse_writes_with_120(make_hive):
    built = make_hive({"A": {"v": 1}})
    with regfast.open_hive(built.path) as hive:
        key = hive.open("A")
        for call in (lambda: key.set_value("x", 1), lambda: key.delete_value("v"),
                     lambda: key.create_key("B"), lambda: key.delete_key("A"),
                     lambda: key.rename("Z"), lambda: key.set_security_descriptor(bytes(key.security_descriptor()))):
            with pytest.raises(OSError) as e:
                call()
            assert e.value.winerror == 120 and "read-only" in str(e.value)
        assert key["v"] == 1
        with pytest.raises(OSError) as e:
            key._remote_request(ops.OP_PING, b"")
        assert e.value.winerror == 120
        snap = parse_snapshot(Reader(key.snapshot_bytes()), "A")   # snapshots: every backend
        assert [v.name for v in snap.keys[""].values.values()] == ["v"]


def test_closed_key_raises_6_and_with_closes(make_hive):
    built = make_hive({"A": {"v": 1}})
    with regfast.open_hive(built.path) as hive:
        with hive.open("A") as key:
            assert key["v"] == 1 and not key.closed
        assert key.closed and "closed" in repr(key)
        with pytest.raises(OSError) as e:
            key["v"]
        assert e.value.winerror == 6
        assert hive.open("A")["v"] == 1                 # other Key objects are not affected
        hash(key)


def test_admin_functions_take_the_one_key(rreg, rkey, tmp_path):
    """regfast.live.admin over the remote path: what rf_* has (rename) as a
    Key method; the rest as agent requests on the key's handle, reopened
    with the rights the op needs."""
    from regfast.live import admin

    rkey.set_value("sz", "plain")
    rkey.create_key("Sub").set_value("n", 3)
    si, sd, sddl = admin.get_security(rkey)
    assert sddl.startswith("O:") and bytes(rkey.security_descriptor()) == sd and si
    admin.grant(rkey, "Everyone", "read")                   # needs WRITE_DAC: a second hive has it
    assert "WD)" in admin.get_security(rkey)[2]
    assert admin.mui_string(rkey, "sz") == "plain"          # not "@...": as stored
    with pytest.raises(FileNotFoundError) as e:
        admin.mui_string(rkey, "nope")
    assert e.value.winerror == 2
    saved = regfast.save_key(rkey, tmp_path / "saved.hiv")
    assert (saved.keys, saved.values) == (2, 2)
    with regfast.open_hive(saved.path) as h:
        assert h.root["sz"] == "plain" and h.open("Sub")["n"] == 3
    k = rkey.create_key("Before")
    admin.rename(k, "After")
    assert k.name == "After" and sorted(rkey.subkey_names()) == ["After", "Sub"]
    with regfast.open_hive(saved.path) as h:
        with pytest.raises(OSError) as e:
            admin.grant(h.root, "Everyone", "read")
        assert e.value.winerror == 120


def test_watch_of_remote_keys_reports_what_changed(wine, rreg, rkey):  # noqa: F811
    """regfast.watch() over regfast.Key objects of the remote path: an
    rf_watch per hive, its events read by a thread, diffed as for the
    protocol client's keys. Writes come from other processes."""
    rkey.set_value("old", 1)
    sub = rreg.open_key("HKCU", rkey.path)                   # another hive (KEY_READ): its own rf_watch
    with regfast.watch([rkey, sub], keep_data=True) as w:
        writer = wine.connect(backend="remote")
        try:
            writer.open_key("HKCU", rkey.path, access=regfast.KEY_ALL_ACCESS).set_value("old", 2)
            seen = []
            while len(seen) < 2:
                d = w.get(10)
                assert d is not None, seen
                (c,) = list(d)
                assert (c.kind, c.name, c.old_value, c.new_value) == ("value_changed", "old", 1, 2)
                seen.append(d.key)
            assert {id(k) for k in seen} == {id(rkey), id(sub)}
            wine.reg("add", "HKCU\\" + rkey.path + r"\Sub", "/v", "n", "/t", "REG_SZ", "/d", "hi", "/f")
            got = set()
            while ("value_added", "n") not in got:
                d = w.get(10)
                assert d is not None, got
                got |= {(c.kind, c.name) for c in d}
            assert ("key_added", None) in got
        finally:
            writer.close()
    assert w.stopped
    left = [w.get(0.1) for _ in range(3)]                   # diffs queued before the stop, then none
    assert left[-1] is None


def test_watch_refuses_hive_file_keys(make_hive):
    built = make_hive({"A": {"v": 1}})
    with regfast.open_hive(built.path) as hive:
        with pytest.raises(TypeError):
            regfast.watch([hive.open("A")])


def test_journal_transaction_over_the_remote_path(rreg, rkey, tmp_path):
    """regfast.transaction() on a RemoteRegistry (journal mode: Wine has no
    KTM): writes land on commit; an exception rolls them back."""
    rkey.set_value("keep", "k")
    with regfast.transaction(rreg, journal=tmp_path / "j.rfj", mode="journal") as tx:
        k = tx.open_key("HKCU", rkey.path)
        k.set_value("t", 1)
        k.create_key("New").set_value("n", 2)
    assert rkey["t"] == 1 and rkey.open("New")["n"] == 2
    with pytest.raises(RuntimeError):
        with regfast.transaction(rreg, journal=tmp_path / "j2.rfj", mode="journal") as tx:
            k = tx.open_key("HKCU", rkey.path)
            k.set_value("t", 99)
            k.delete_value("keep")
            k.create_key("Gone")
            raise RuntimeError("undo it")
    assert rkey["t"] == 1 and rkey["keep"] == "k" and "Gone" not in rkey.subkey_names()


@pytest.mark.skipif(sys.platform == "win32", reason="the NT backend exists there: test_key_api runs it")
def test_in_process_nt_backend_is_windows_only():
    """local(backend="nt") opens roots with rf_live_open: off Windows that
    says 120 at the first open, with the way round it in the message."""
    from regfast.live.registry import local

    reg = local(backend="nt")
    with pytest.raises(OSError) as e:
        reg.open_key("HKCU", "Software")
    assert e.value.winerror == 120 and "regfast-agent" in str(e.value)
    reg.close()
