"""regfast.transaction under Wine: the journal fallback (commit, rollback on
exception, failure half-way, a crashed process recovered from its journal,
damaged journals, conflicts), and the KTM probe reporting 120 for the right
reason. KTM itself (which Wine only stubs) is tested on the Windows CI.

The independent oracle is `wine reg query`, another process reading the
prefix's registry (WineSession.reg).
"""
from __future__ import annotations

import json
import os
import zlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import regfast
from regfast.live import _agent_ops as ops
from regfast.live import protocol as A
from regfast.live import registry as live
from regfast.live.transaction import (
    JournalCorruptError, Transaction, TransactionConflictError, TransactionError, ktm_status,
    read_journal, rollback_journal,
)
from regfast.io.writer import REG_BINARY, REG_EXPAND_SZ, REG_MULTI_SZ, REG_QWORD, REG_DWORD
from wine_session import registry, sandbox, wine  # noqa: F401  (shared fixtures)

BIG = bytes(range(256)) * 300 + b"\x00\xff"        # 76,802 bytes: a big-data value


def query(wine, key: live.Key) -> str:
    """`wine reg query KEY /s`: the subtree as another process sees it."""
    r = wine.reg("query", key.full_path, "/s", check=False)
    return r.stdout if r.returncode == 0 else f"<missing: {r.returncode}>"


def fill(key: live.Key) -> None:
    key.set_value("keep", "original")
    key.set_value("multi", ["a", "", "c"])
    key.set_value("big", BIG, REG_BINARY)
    key.set_value("exp", "%PATH%;x", REG_EXPAND_SZ)
    with key.create_key(r"Old\Deep") as d:
        d.set_value("bin", b"\x00\x01\x02", REG_BINARY)
        d.set_value("q", 1 << 40, REG_QWORD)
    with key.create_key("Old") as o:
        o.set_value("", "default")


def on_wine(registry) -> bool:
    return " on Wine" in registry.description


# ---------------------------------------------------------------------------
# Choosing the engine
# ---------------------------------------------------------------------------

def test_ktm_probe_reports_120_under_wine_and_auto_falls_back(registry, sandbox, tmp_path):
    if not on_wine(registry):
        pytest.skip("Windows has KTM: test_ktm_commit_rollback_isolation covers it")
    # the agent's probe itself: 120, because RegCreateKeyTransactedW said so
    with pytest.raises(regfast.RegistryError) as e:
        registry.conn.request(ops.OP_TX_PROBE)
    assert e.value.winerror == 120
    assert "RegCreateKeyTransactedW returned 120" in e.value.strerror
    err = ktm_status(registry)
    assert err is not None and err.winerror == 120
    with pytest.raises(regfast.RegistryError) as e2:
        regfast.transaction(registry, mode="ktm")
    assert e2.value.winerror == 120
    tx = regfast.transaction(registry, journal=tmp_path / "j.rfj")
    assert tx.mode == "journal" and "RegCreateKeyTransactedW returned 120" in tx.reason
    tx.rollback()
    # no probe key leaked into HKCU\Software
    assert not [n for n in registry.open_key("HKCU", "Software").subkey_names() if "ktm-probe" in n]
    with pytest.raises(ValueError):
        regfast.transaction(registry, mode="kTm")


# ---------------------------------------------------------------------------
# Journal: commit, rollback
# ---------------------------------------------------------------------------

def test_commit_makes_writes_visible_and_removes_the_journal(wine, registry, sandbox, tmp_path):
    sandbox.set_value("gone", "x")
    j = tmp_path / "commit.rfj"
    with regfast.transaction(registry, journal=j, mode="journal") as tx:
        k = tx.open_key("HKCU", sandbox.path)
        k.set_value("s", "hello")
        k.set_value("d", 0x1234, REG_DWORD)
        k.delete_value("gone")
        sub = k.create_key(r"New\Sub")
        sub.set_value("m", ["x", "y"], REG_MULTI_SZ)
        assert j.exists() and sub["m"] == ["x", "y"]
        assert len(read_journal(j).records) == 5      # 4 value writes + 1 key creation (New, New\Sub)
    assert tx.state == "committed" and not j.exists()
    out = query(wine, sandbox)
    assert "hello" in out and "0x1234" in out and "gone" not in out
    assert "New\\Sub" in out and "x\\0y" in out
    with pytest.raises(TransactionError):
        k.set_value("late", 1)          # the transaction is over


def test_exception_undoes_everything(wine, registry, sandbox, tmp_path):
    fill(sandbox)
    before = query(wine, sandbox)
    before_snap = sandbox.snapshot(keep_data=True)
    j = tmp_path / "undo.rfj"
    with pytest.raises(RuntimeError, match="boom"):
        with regfast.transaction(registry, journal=j) as tx:
            k = tx.open_key("HKCU", sandbox.path)
            k.set_value("keep", "changed")
            k.set_value("keep", "changed twice")
            k.set_value("added", BIG[::-1], REG_BINARY)
            k.delete_value("multi")
            k.delete_value("big")
            k.set_value("exp", 7)                       # a type change
            k.delete_key("Old", tree=True)
            n = tx.create_key("HKCU", sandbox.path + r"\Brand\New\Chain")
            n.set_value("v", "in a created key")
            assert "changed twice" in query(wine, sandbox)   # the journal does not isolate
            raise RuntimeError("boom")
    assert tx.state == "rolled back" and not j.exists()
    assert query(wine, sandbox) == before
    after = sandbox.snapshot(keep_data=True)
    assert set(after.keys) == set(before_snap.keys)
    for p, ks in before_snap.keys.items():
        got = after.keys[p].values
        assert {n: (v.type, v.data) for n, v in got.items()} == {n: (v.type, v.data) for n, v in ks.values.items()}
    assert sandbox.value("big").raw() == BIG and sandbox.value("big").type == REG_BINARY


@pytest.mark.parametrize("how", ["bad-data", "key-deleted-by-another-process"])
def test_failure_half_way_undoes_the_first_steps(wine, registry, sandbox, tmp_path, how):
    sandbox.set_value("a", "A0")
    other = sandbox.create_key("Other")
    other_path = other.full_path                  # a closed regfast.Key answers nothing (6)
    other.close()
    before = query(wine, sandbox)
    j = tmp_path / "half.rfj"
    with pytest.raises(Exception) as e:
        with regfast.transaction(registry, journal=j) as tx:
            k = tx.open_key("HKCU", sandbox.path)
            o = tx.open_key("HKCU", sandbox.path + r"\Other")
            k.set_value("a", "A1")                                      # step 1
            k.set_value("b", "B1")                                      # step 2
            if how == "bad-data":
                o.set_value("c", "not a number", REG_DWORD)             # step 3: invalid data
            else:
                wine.reg("delete", other_path, "/f")
                o.set_value("c", "C")                                   # step 3: its key is gone
            k.set_value("d", "D")                                       # steps 4, 5: never run
            k.set_value("e", "E")
    if how == "bad-data":
        assert isinstance(e.value, (ValueError, TypeError))
        assert query(wine, sandbox) == before
    else:
        assert isinstance(e.value, OSError) and e.value.winerror in (1018, 2)
        # steps 1-2 undone; Other stays deleted (another process did that, not us)
        snap = sandbox.snapshot(keep_data=True)
        assert list(snap.keys) == [""]
        assert {v.name: v.value for v in snap.keys[""].values.values()} == {"a": "A0"}
        assert "A1" not in query(wine, sandbox) and "B1" not in query(wine, sandbox)
    assert not j.exists()


def test_rollback_reports_conflicts_and_keeps_the_other_write(wine, registry, sandbox, tmp_path):
    sandbox.set_value("mine", "0")
    sandbox.set_value("shared", "0")
    j = tmp_path / "conflict.rfj"
    tx = regfast.transaction(registry, journal=j)
    k = tx.open_key("HKCU", sandbox.path)
    k.set_value("mine", "1")
    k.set_value("shared", "1")
    c = k.create_key("made")
    c.close()
    # another process writes after us: a value, and into the key we created
    wine.reg("add", sandbox.full_path, "/v", "shared", "/t", "REG_SZ", "/d", "theirs", "/f")
    wine.reg("add", sandbox.full_path + r"\made", "/v", "x", "/t", "REG_SZ", "/d", "theirs", "/f")
    with pytest.raises(TransactionConflictError) as e:
        tx.rollback()
    assert e.value.winerror == 6800 and len(e.value.conflicts) == 2
    assert e.value.report.undone == 1
    live_key = registry.open_key("HKCU", sandbox.path)
    assert live_key["mine"] == "0" and live_key["shared"] == "theirs"
    assert live_key.open("made")["x"] == "theirs"
    assert j.exists() and tx.state == "failed"        # kept for inspection


# ---------------------------------------------------------------------------
# A crashed process, recovered from its journal
# ---------------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import json, os, sys
    import regfast
    from regfast.io.writer import REG_BINARY
    cfg = json.loads(sys.argv[1])
    reg = regfast.connect(cfg["cmd"], env=cfg["env"])
    tx = regfast.transaction(reg, journal=cfg["journal"])
    k = tx.open_key("HKCU", cfg["path"])
    k.set_value("keep", "overwritten by the crashed process")
    k.delete_value("multi")
    k.set_value("big", b"small now", REG_BINARY)
    k.delete_key("Old", tree=True)
    tx.create_key("HKCU", cfg["path"] + r"\\Crash\\Made").set_value("x", 1)
    print("written", flush=True)
    os._exit(9)          # no commit, no rollback, no cleanup: a crash
""")


def crash_child(wine, sandbox, journal: Path) -> None:
    cfg = {"cmd": wine.cmd, "env": wine.env, "journal": str(journal), "path": sandbox.path}
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 9 and r.stdout.strip() == "written", r.stderr[-3000:]


def test_crashed_transaction_is_rolled_back_by_regfast_recover(wine, registry, sandbox, tmp_path,
                                                               monkeypatch, capsys):
    fill(sandbox)
    before = query(wine, sandbox)
    j = tmp_path / "crash.rfj"
    crash_child(wine, sandbox, j)
    crashed = query(wine, sandbox)
    assert crashed != before and "overwritten by the crashed process" in crashed   # half-written
    assert j.exists() and read_journal(j).state == "open" and len(read_journal(j).records) == 6
    # `regfast recover --journal FILE`, through the default agent of this environment
    monkeypatch.setenv("REGFAST_AGENT", str(wine.exe))
    for k in ("WINEPREFIX", "WINEDEBUG", "WINEDLLOVERRIDES"):
        monkeypatch.setenv(k, wine.env[k])
    from regfast.cli import commands as cli
    try:
        assert cli.main(["recover", "--journal", str(j)]) == 0
    finally:
        if live._default is not None:
            live._default.close()
            live._default = None
    assert "6 writes undone" in capsys.readouterr().out
    assert query(wine, sandbox) == before
    assert not j.exists()
    assert cli.main(["recover", "--journal", str(j)]) == 1        # gone: a clear error, not a crash
    assert "crash.rfj" in capsys.readouterr().err


def _as_if_written_by(j: Path, pid: int) -> None:
    """Rewrites a journal's begin record as if process `pid` had written it."""
    from regfast.live.journal import _line
    lines = j.read_bytes().splitlines(keepends=True)
    head = json.loads(lines[0].split(b" ", 1)[1])
    lines[0] = _line(dict(head, pid=pid))
    j.write_bytes(b"".join(lines))


def test_recover_pending_skips_journals_whose_process_runs(wine, registry, sandbox, tmp_path,
                                                          monkeypatch, capsys):
    monkeypatch.setenv("REGFAST_CACHE_DIR", str(tmp_path / "cache"))
    sandbox.set_value("v0", "old0")
    sandbox.set_value("v1", "old1")
    txs = []
    for name in ("v0", "v1"):
        tx = regfast.transaction(registry)              # journal=None: the default directory
        assert tx.journal_path.parent == tmp_path / "cache" / "journals"
        tx.open_key("HKCU", sandbox.path).set_value(name, "new")
        tx._j.close()                                  # abandoned, as a crash leaves it: no lock held
        tx.state = "abandoned (test)"
        txs.append(tx)
    # v1's writer is gone (a process that has exited); v0's is this one, still running
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _as_if_written_by(txs[1].journal_path, dead.pid)
    from regfast.live.transaction import pending_journals
    assert pending_journals() == sorted(t.journal_path for t in txs)
    monkeypatch.setenv("REGFAST_AGENT", str(wine.exe))
    for k in ("WINEPREFIX", "WINEDEBUG", "WINEDLLOVERRIDES"):
        monkeypatch.setenv(k, wine.env[k])
    from regfast.cli import commands as cli
    try:
        assert cli.main(["recover", "--pending"]) == 1
        out, err = capsys.readouterr()
        assert "1 writes undone" in out and f"its process {os.getpid()} still runs" in err
        assert sandbox["v0"] == "new" and sandbox["v1"] == "old1"
        assert pending_journals() == [txs[0].journal_path]
        assert cli.main(["recover", "--pending", "--force"]) == 0       # the user says it is dead
    finally:
        if live._default is not None:
            live._default.close()
            live._default = None
    assert "1 writes undone" in capsys.readouterr().out
    assert sandbox["v0"] == "old0" and pending_journals() == []
    assert cli.main(["recover"]) == 2                   # neither a hive nor a journal


def test_writer_alive():
    from regfast.live.transaction import writer_alive
    import socket
    host = socket.gethostname()
    assert writer_alive({"pid": os.getpid(), "host": host}) is True
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert writer_alive({"pid": p.pid, "host": host}) is True
    finally:
        p.kill()
        p.wait()
    assert writer_alive({"pid": p.pid, "host": host}) is False
    assert writer_alive({"pid": os.getpid(), "host": host + "-elsewhere"}) is None
    assert writer_alive({"host": host}) is None


def test_agent_tx_ops_refuse_bad_requests(registry):
    import struct
    conn = registry.conn
    if on_wine(registry):
        with pytest.raises(regfast.RegistryError) as e:
            conn.request(ops.OP_TX_BEGIN, struct.pack("<I", 0) + A.str16("x"))
        assert e.value.winerror == 120                  # no transaction is handed out by a stub
    for op, payload, code in [
        (ops.OP_TX_COMMIT, struct.pack("<I", 0x10001), 6),                 # no such transaction
        (ops.OP_TX_ROLLBACK, struct.pack("<I", 0), 6),
        (ops.OP_TX_OPEN_KEY, struct.pack("<IIIII", 0x10001, 0x80000001, 0, 0, 0) + A.str16("x"), 6),
        (ops.OP_TX_SET_VALUE, struct.pack("<II", 0x10001, 1) + A.str16("n") + struct.pack("<I", 0), 6),
        (ops.OP_TX_CLOSE_KEY, struct.pack("<I", 0xFFFF), 6),
        (ops.OP_TX_COMMIT, b"\x01", 87),                                    # malformed
        (ops.OP_TX_PROBE, b"junk", 87),
        (ops.OP_TX_SET_VALUE, struct.pack("<II", 1, 1) + A.str16("n") + struct.pack("<I", 99), 87),
        (79, b"", 120),                                                  # unknown op in the tx range
        # KTM's MAX_TRANSACTION_DESCRIPTION_LENGTH (64 WCHARs with the NUL):
        # refused before KTM is asked, so the same 87 under Wine and Windows
        (ops.OP_TX_BEGIN, struct.pack("<I", 0) + A.str16("d" * 64), 87),
    ]:
        with pytest.raises(OSError) as e:
            conn.request(op, payload)
        assert e.value.winerror == code, (op, e.value)
    assert registry.ping(b"still serving") == b"still serving"


def test_a_running_transaction_cannot_be_recovered_under_it(registry, sandbox, tmp_path):
    j = tmp_path / "running.rfj"
    tx = regfast.transaction(registry, journal=j)
    tx.open_key("HKCU", sandbox.path).set_value("v", 1)
    r = subprocess.run([sys.executable, "-c",
                        "import sys; from regfast.live.transaction import rollback_journal\n"
                        "try:\n rollback_journal(sys.argv[1])\nexcept OSError as e:\n"
                        " print(e.winerror, e.strerror); sys.exit(3)", str(j)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3 and "still running" in r.stdout, r.stdout + r.stderr
    tx.rollback()
    assert "v" not in sandbox


LOCK_HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from regfast.live.journal import _Journal
    j = _Journal(Path(sys.argv[1]), {"pid": 0, "host": "test"})
    j.append({"kind": "set_value", "root": 0x80000001, "view": 0, "path": "x", "name": "n", "old": None,
              "new": [1, "0" * 64]})
    print("locked", flush=True)
    sys.stdin.readline()                    # holds the journal (and its lock) until told
""")


def test_journal_lock_holds_on_every_platform(tmp_path):
    """No registry needed: the lock alone (flock on POSIX, msvcrt.locking on
    Windows, where this runs in the Windows CI job) keeps a recovery off a
    journal whose transaction runs — and must not keep anyone from reading it."""
    from regfast.live.transaction import TransactionError
    j = tmp_path / "held.rfj"
    p = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(j)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        with pytest.raises(TransactionError) as e:
            rollback_journal(j)
        assert "still running" in e.value.strerror
        assert len(read_journal(j).records) == 1            # readable while locked (Windows: mandatory locks)
    finally:
        p.communicate("done\n", timeout=60)
    assert p.returncode == 0
    from regfast.live.journal import _lock
    with open(j, "rb") as f:                                 # the holder exited: the lock went with it
        assert _lock(f)


def test_journal_creation_failure_leaves_no_file_and_no_fd(tmp_path, monkeypatch):
    T = sys.modules["regfast.live.transaction"]        # (regfast.transaction is the function)
    j = tmp_path / "fails.rfj"
    fds = set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None

    def no_fsync(fd):
        raise OSError(5, "simulated I/O error")

    monkeypatch.setattr(T.os, "fsync", no_fsync)
    with pytest.raises(OSError):
        T._Journal(j, {"pid": os.getpid()})
    monkeypatch.undo()
    assert not j.exists()                                    # (Windows: an open file could not go)
    if fds is not None:
        assert set(os.listdir("/proc/self/fd")) == fds


def test_journal_records_survive_short_writes(tmp_path, monkeypatch):
    T = sys.modules["regfast.live.transaction"]        # (regfast.transaction is the function)
    real_write = os.write
    calls = []

    def short_write(fd, data):                               # at most 7 bytes per call
        calls.append(len(data))
        return real_write(fd, bytes(data[:7]))

    monkeypatch.setattr(T.os, "write", short_write)
    j = T._Journal(tmp_path / "short.rfj", {"pid": os.getpid()})
    j.append({"kind": "set_value", "root": 0x80000001, "view": 0, "path": "x", "name": "n", "old": None,
              "new": [1, "0" * 64]})
    j.close()
    monkeypatch.undo()
    assert len(calls) > 2
    got = read_journal(tmp_path / "short.rfj")
    assert got.damage is None and not got.torn_tail and [r["name"] for r in got.records] == ["n"]


# ---------------------------------------------------------------------------
# Damaged journals
# ---------------------------------------------------------------------------

def abandoned(registry, sandbox, j: Path) -> None:
    """A transaction of five writes left as a crash leaves it (in-process)."""
    tx = regfast.transaction(registry, journal=j)
    k = tx.open_key("HKCU", sandbox.path)
    for i in range(5):
        k.set_value(f"v{i}", f"new{i}")
    tx._j.close()
    tx.state = "abandoned (test)"


def test_torn_last_record_is_ignored(wine, registry, sandbox, tmp_path):
    for i in range(5):
        sandbox.set_value(f"v{i}", f"old{i}")
    before = query(wine, sandbox)
    j = tmp_path / "torn.rfj"
    abandoned(registry, sandbox, j)
    with open(j, "ab") as f:
        f.write(b'1234abcd {"kind":"set_value","na')     # died while appending the 7th line
    rep = rollback_journal(j, registry)
    assert rep.undone == 5 and not rep.conflicts
    assert query(wine, sandbox) == before and not j.exists()


@pytest.mark.parametrize("damage", ["flipped-byte", "truncated-line", "seq-gap"])
def test_damaged_journal_undoes_only_the_valid_prefix(registry, sandbox, tmp_path, damage):
    for i in range(5):
        sandbox.set_value(f"v{i}", f"old{i}")
    j = tmp_path / "bad.rfj"
    abandoned(registry, sandbox, j)
    lines = j.read_bytes().splitlines(keepends=True)
    assert len(lines) == 6                                 # begin + 5 writes
    bad_at = sum(len(x) for x in lines[:3])                # line 3 = the 3rd write (v2)
    if damage == "flipped-byte":
        lines[3] = lines[3].replace(b'"v2"', b'"v9"')   # one byte: the CRC no longer matches
    elif damage == "truncated-line":
        lines[3] = lines[3][:20] + b"\n"
    else:
        del lines[3]                                        # a record went missing: seq 4 after 2
    j.write_bytes(b"".join(lines))
    with pytest.raises(JournalCorruptError) as e:
        rollback_journal(j, registry)
    assert e.value.winerror == 13 and e.value.offset == bad_at
    assert e.value.report is not None and e.value.report.undone == 2
    k = registry.open_key("HKCU", sandbox.path)
    # the valid prefix (v0, v1) is undone, nothing past the damage is
    assert [k[f"v{i}"] for i in range(5)] == ["old0", "old1", "new2", "new3", "new4"]
    assert j.exists()
    # what followed the damage was moved aside, and the undos marked: a later
    # recovery does not undo v0 again (someone set it to "new0" since)
    aside = j.with_name(j.name + ".damaged")
    assert aside.read_bytes() == b"".join(lines[3:]) and str(aside) in e.value.strerror
    assert os.name != "posix" or aside.stat().st_mode & 0o077 == 0      # old data: private, as journals
    # ... and reports the damage again (the writes past it were never undone)
    sandbox.set_value("v0", "new0")
    with pytest.raises(JournalCorruptError) as again:
        rollback_journal(j, registry)
    assert "earlier recovery" in again.value.strerror and again.value.report.undone == 0
    assert again.value.report.already == 2 and j.exists()
    assert k["v0"] == "new0" and k["v1"] == "old1"


def test_garbage_journal_applies_nothing(registry, sandbox, tmp_path):
    sandbox.set_value("v", "old")
    j = tmp_path / "garbage.rfj"
    j.write_bytes(b"\x00\x01 this is not a journal\n")
    with pytest.raises(JournalCorruptError) as e:
        rollback_journal(j, registry)
    assert e.value.offset == 0 and e.value.report is None
    j.write_bytes(b"")
    with pytest.raises(JournalCorruptError):
        rollback_journal(j, registry)
    with pytest.raises(FileNotFoundError):
        rollback_journal(tmp_path / "missing.rfj", registry)
    assert sandbox["v"] == "old"


def test_committed_journal_is_not_undone(registry, sandbox, tmp_path):
    j = tmp_path / "done.rfj"
    tx = regfast.transaction(registry, journal=j)
    tx.open_key("HKCU", sandbox.path).set_value("v", "committed")
    # a crash after the commit mark but before the unlink
    tx._j.append({"kind": "commit"})
    tx._j.close()
    rep = rollback_journal(j, registry)
    assert rep.committed and rep.undone == 0 and sandbox["v"] == "committed"
    with pytest.raises(FileExistsError):      # a journal is never reused
        j.write_bytes(b"x")
        regfast.transaction(registry, journal=j)


# ---------------------------------------------------------------------------
# Found by review: a journal undone twice, keys brought back, hostile records
# ---------------------------------------------------------------------------

def test_a_kept_journal_never_undoes_a_record_twice(wine, registry, sandbox, tmp_path):
    """tx1's rollback undid x and kept the journal (a conflict on y). The app
    then set x again in tx2 and committed. Recovering tx1's journal undid x a
    second time: tx2's committed write was silently reverted."""
    sandbox.set_value("x", "A")
    sandbox.set_value("y", "A")
    j = tmp_path / "kept.rfj"
    tx1 = regfast.transaction(registry, journal=j)
    k = tx1.open_key("HKCU", sandbox.path)
    k.set_value("x", "NEW")
    k.set_value("y", "NEW")
    wine.reg("add", sandbox.full_path, "/v", "y", "/t", "REG_SZ", "/d", "theirs", "/f")
    with pytest.raises(TransactionConflictError):
        tx1.rollback()
    assert sandbox["x"] == "A" and j.exists()
    with regfast.transaction(registry, journal=tmp_path / "tx2.rfj") as tx2:
        tx2.open_key("HKCU", sandbox.path).set_value("x", "NEW")
    with pytest.raises(TransactionConflictError) as e:       # y: still someone else's
        rollback_journal(j, registry)
    assert e.value.report.undone == 0 and len(e.value.conflicts) == 1
    assert sandbox["x"] == "NEW" and sandbox["y"] == "theirs"


def test_a_journal_that_ends_in_rollback_is_finished(registry, sandbox, tmp_path):
    """A crash between the rollback mark and the unlink: the journal was
    undone again in full (and with it any later write of the same data)."""
    sandbox.set_value("v", "old")
    j = tmp_path / "rolled.rfj"
    tx = regfast.transaction(registry, journal=j)
    tx.open_key("HKCU", sandbox.path).set_value("v", "new")
    tx._j.append({"kind": "rollback"})      # as if the undo ran, then "new" was written again
    tx._j.close()
    tx.state = "abandoned (test)"
    rep = rollback_journal(j, registry)
    assert rep.rolled_back and rep.undone == 0 and "rolled back" in rep.summary()
    assert sandbox["v"] == "new" and not j.exists()


def test_an_interrupted_rollback_finishes_later_without_false_conflicts(
        registry, sandbox, tmp_path, monkeypatch):
    """Ctrl-C between two undos: x had been written twice (A -> 1 -> 2) and both
    were undone; recovery compared the later record again and called x = A
    "changed after this transaction wrote it", forever."""
    from regfast.live import undo as T
    sandbox.set_value("x", "A")
    sandbox.set_value("y", "A")
    j = tmp_path / "intr.rfj"
    tx = regfast.transaction(registry, journal=j)
    k = tx.open_key("HKCU", sandbox.path)
    k.set_value("y", "1")
    k.set_value("x", "1")
    k.set_value("x", "2")
    real, calls = T._write_value, []

    def interrupted(*a):
        calls.append(a)
        if len(calls) == 3:                 # before the third undo (y's) writes
            raise KeyboardInterrupt
        real(*a)

    monkeypatch.setattr(T, "_write_value", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tx.rollback()
    monkeypatch.setattr(T, "_write_value", real)
    assert sandbox["x"] == "A" and sandbox["y"] == "1" and tx.state == "failed"
    rep = rollback_journal(j, registry)
    assert rep.undone == 1 and rep.already == 2 and not rep.conflicts
    assert sandbox["x"] == "A" and sandbox["y"] == "A" and not j.exists()


def test_a_rollback_does_not_bring_back_a_key_deleted_since(wine, registry, sandbox, tmp_path):
    """The transaction deleted a value; someone else then deleted its key's
    parent. The rollback re-created the keys and the value, and said nothing."""
    with sandbox.create_key(r"App\Settings") as s:
        s.set_value("token", "secret")
    tx = regfast.transaction(registry, journal=tmp_path / "res.rfj")
    tx.open_key("HKCU", sandbox.path + r"\App\Settings").delete_value("token")
    wine.reg("delete", sandbox.full_path + r"\App", "/f")
    with pytest.raises(TransactionConflictError) as e:
        tx.rollback()
    assert "deleted after this transaction" in e.value.conflicts[0][1]
    assert sandbox.subkey_names() == []


def _journal(path: Path, records: list[dict]) -> None:
    from regfast.live.journal import _line
    import socket
    begin = {"kind": "begin", "v": 1, "pid": 999999, "host": socket.gethostname()}
    path.write_bytes(b"".join(_line(dict(r, seq=i)) for i, r in enumerate([begin] + records)))


def _drop(key):
    return lambda r: {k: v for k, v in r.items() if k != key}


@pytest.mark.parametrize("spoil", [
    _drop("path"),
    lambda r: dict(r, old=[1, "!!!"]),
    lambda r: dict(r, old=[1]),
    lambda r: dict(r, root="HKCU"),
    lambda r: dict(r, view=7),
    lambda r: dict(r, new="x"),
    lambda r: {"kind": "delete_key", "root": r["root"], "view": 0, "path": r["path"], "snapshot": [["a", "b"]]},
    lambda r: {"kind": "create_key", "root": r["root"], "view": 0, "path": r["path"], "created": [1]},
], ids=["no-path", "bad-base64", "short-old", "root-name", "bad-view", "bad-new", "bad-snapshot",
        "bad-created"])
def test_a_record_of_the_wrong_shape_is_damage_before_any_undo(registry, sandbox, tmp_path, spoil):
    """Records a, bad, c (CRCs valid): c was undone, then bad raised KeyError,
    IndexError, binascii.Error... out of the rollback, a left as written."""
    import base64
    from regfast.live.journal import _digest
    old = base64.b64encode("old\0".encode("utf-16-le")).decode()
    new = [1, _digest(1, "new\0".encode("utf-16-le"))]
    for n in "abc":
        sandbox.set_value(n, "new")

    def rec(name):
        return {"kind": "set_value", "root": 0x80000001, "view": 0, "path": sandbox.path, "name": name,
                "old": [1, old], "new": new}

    j = tmp_path / "shape.rfj"
    _journal(j, [rec("a"), spoil(rec("b")), rec("c")])
    lines = j.read_bytes().splitlines(keepends=True)
    with pytest.raises(JournalCorruptError) as e:
        rollback_journal(j, registry)
    assert e.value.offset == len(lines[0]) + len(lines[1]) and e.value.report.undone == 1
    assert [sandbox[n] for n in "abc"] == ["old", "new", "new"]
    assert j.exists()


def test_a_half_done_create_key_undo_is_not_redone(wine, registry, sandbox, tmp_path):
    """The undo of a create_key deleted A\\B\\C and A\\B, then stopped at A
    (someone had written into it): a conflict, so the record was not marked
    and a later recovery deleted an A\\B made legitimately since."""
    j = tmp_path / "half.rfj"
    tx = regfast.transaction(registry, journal=j)
    tx.create_key("HKCU", sandbox.path + r"\A\B\C").close()
    wine.reg("add", sandbox.full_path + r"\A", "/v", "x", "/t", "REG_SZ", "/d", "theirs", "/f")
    with pytest.raises(TransactionConflictError):
        tx.rollback()
    assert sandbox.subkey("A").subkey_names() == []
    registry.create_key("HKCU", sandbox.path + r"\A\B").close()       # legitimately, later
    with pytest.raises(TransactionConflictError) as e:                  # reported again, not acted on
        rollback_journal(j, registry)
    assert "earlier rollback" in e.value.conflicts[0][1] and e.value.report.undone == 0
    assert sandbox.subkey("A").subkey_names() == ["B"]


def test_a_delete_key_undo_does_not_bring_back_a_deleted_parent(wine, registry, sandbox, tmp_path):
    with sandbox.create_key(r"App\Sub") as s:
        s.set_value("v", 1)
    tx = regfast.transaction(registry, journal=tmp_path / "parent.rfj")
    tx.open_key("HKCU", sandbox.path + r"\App").delete_key("Sub", tree=True)
    wine.reg("delete", sandbox.full_path + r"\App", "/f")              # uninstalled meanwhile
    with pytest.raises(TransactionConflictError) as e:
        tx.rollback()
    assert "parent was deleted" in e.value.conflicts[0][1]
    assert sandbox.subkey_names() == []


def test_a_failed_append_leaves_no_torn_bytes_in_the_journal(tmp_path, monkeypatch):
    """A write that failed half-way (a full disk) left its bytes: the next
    record (a rollback's undone mark) followed them on the same line, the
    journal read as damaged from there, and the marks were lost."""
    from regfast.live import journal as J
    rec = {"kind": "set_value", "root": 0x80000001, "view": 0, "path": "x", "name": "n", "old": None,
           "new": [1, "0" * 64]}
    j = J._Journal(tmp_path / "full.rfj", {"pid": os.getpid()})
    j.append(rec)
    real_write = os.write

    def disk_full(fd, data):
        real_write(fd, bytes(data[:9]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(J.os, "write", disk_full)
    with pytest.raises(OSError):
        j.append(dict(rec, name="m"))
    monkeypatch.undo()
    j.append({"kind": "undone", "of": 1})
    j.close()
    got = read_journal(tmp_path / "full.rfj")
    assert got.damage is None and not got.torn_tail and got.undone == {1: None}


def test_a_damaged_journal_whose_damage_cannot_be_set_aside_is_undone_unmarked(
        registry, sandbox, tmp_path, monkeypatch):
    """No room or no right for <journal>.damaged: the recovery undid nothing
    at all (review); now its valid part is undone as before, unmarked."""
    from regfast.live import undo as J
    for i in range(3):
        sandbox.set_value(f"v{i}", f"old{i}")
    j = tmp_path / "noroom.rfj"
    abandoned(registry, sandbox, j)
    with open(j, "ab") as f:
        f.write(b"garbage line\n")

    def no_room(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(J, "_set_aside", no_room)
    with pytest.raises(JournalCorruptError) as e:
        rollback_journal(j, registry)
    assert e.value.report.undone == 5 and "could not be set aside" in e.value.strerror
    assert [sandbox[f"v{i}"] for i in range(3)] == ["old0", "old1", "old2"]
    assert not list(tmp_path.glob("*.damaged*"))


def test_a_read_only_journal_is_still_recovered(registry, sandbox, tmp_path, monkeypatch):
    """Recovery opens the journal to append its marks; one it cannot write
    (a read-only mount, the read-only attribute) is undone as before."""
    from regfast.live import undo as J
    sandbox.set_value("v0", "old0")
    j = tmp_path / "ro.rfj"
    tx = regfast.transaction(registry, journal=j)
    tx.open_key("HKCU", sandbox.path).set_value("v0", "new0")
    tx._j.close()
    tx.state = "abandoned (test)"
    real = J._open_journal

    def read_only(p, mode):
        if "+" in mode:
            raise PermissionError(13, "Permission denied", str(p))
        return real(p, mode)

    monkeypatch.setattr(J, "_open_journal", read_only)
    rep = rollback_journal(j, registry, keep=True)
    assert rep.undone == 1 and sandbox["v0"] == "old0"


def test_journals_open_where_there_is_no_o_nonblock(tmp_path, monkeypatch):
    """Windows has no O_NONBLOCK, and its os.set_blocking (Python 3.12+) works
    on pipes only: calling it on the journal failed every recovery there."""
    from regfast.live import journal as J
    j = J._Journal(tmp_path / "w.rfj", {"pid": os.getpid()})
    j.close()
    monkeypatch.delattr(J.os, "O_NONBLOCK", raising=False)

    def pipes_only(fd, blocking):
        raise OSError(6, "The handle is invalid")

    monkeypatch.setattr(J.os, "set_blocking", pipes_only, raising=False)
    assert read_journal(tmp_path / "w.rfj").records == []


@pytest.mark.parametrize("of", ["true", "1.0", '"1"'])
def test_an_undone_mark_must_name_a_record_by_its_integer_seq(tmp_path, of):
    from regfast.live import journal as J
    rec = {"kind": "set_value", "root": 0x80000001, "view": 0, "path": "x", "name": "n", "old": None,
           "new": [1, "0" * 64]}
    j = J._Journal(tmp_path / "m.rfj", {"pid": os.getpid()})
    j.append(rec)
    j.close()
    text = '{"kind":"undone","of":%s,"seq":2}' % of
    with open(tmp_path / "m.rfj", "ab") as f:
        f.write(f"{zlib.crc32(text.encode()):08x} {text}\n".encode())
    got = read_journal(tmp_path / "m.rfj")
    assert got.damage is not None and "undone mark" in got.damage[1] and got.undone == {}


def test_two_leftover_journals_of_one_key_both_recover(registry, sandbox, tmp_path):
    """Two crashed runs that each created K\\S and set v: the first recovery
    deleted K\\S; the second met the handle cache's one-time 1018
    (STATUS_KEY_DELETED) for a path under it and failed instead of finding
    nothing to undo."""
    from regfast.live.journal import _digest
    path = sandbox.path + r"\K\S"
    registry.create_key("HKCU", path).set_value("v", 1)
    recs = [{"kind": "create_key", "root": 0x80000001, "view": 0, "path": path,
             "created": [sandbox.path + r"\K", path]},
            {"kind": "set_value", "root": 0x80000001, "view": 0, "path": path, "name": "v", "old": None,
             "new": [4, _digest(4, (1).to_bytes(4, "little"))]}]
    _journal(tmp_path / "j1.rfj", recs)
    _journal(tmp_path / "j2.rfj", recs)
    assert rollback_journal(tmp_path / "j1.rfj", registry).undone == 2
    rep = rollback_journal(tmp_path / "j2.rfj", registry)
    assert rep.undone == 0 and rep.already == 2
    assert sandbox.subkey_names() == []


def test_what_is_not_a_journal_file_is_refused_without_reading_it(tmp_path):
    """A FIFO named *.rfj held `recover --pending` forever; a link to
    /dev/zero read until memory ran out."""
    fifo = tmp_path / "a.rfj"
    os.mkfifo(fifo)
    zero = tmp_path / "z.rfj"
    zero.symlink_to("/dev/zero")
    for p in (fifo, zero):
        with pytest.raises(JournalCorruptError, match="not a regular file"):
            rollback_journal(p)
        with pytest.raises(JournalCorruptError, match="not a regular file"):
            read_journal(p)


def test_txkey_set_value_checks_its_arguments(registry, sandbox, tmp_path):
    with regfast.transaction(registry, journal=tmp_path / "args.rfj") as tx:
        k = tx.open_key("HKCU", sandbox.path)
        for t in (-1, 2 ** 32):
            with pytest.raises(ValueError, match="32"):
                k.set_value("v", b"x", t)
        with pytest.raises(TypeError):
            k.set_value(5, "x")
        with pytest.raises(TypeError):
            k.delete_value(None)


# ---------------------------------------------------------------------------
# KTM itself: Windows CI only (Wine stubs it)
# ---------------------------------------------------------------------------

@pytest.fixture
def native_sandbox():
    """Windows: a regfast-agent of this machine and a fresh key under HKCU (the
    Wine fixtures of test_agent.py skip there)."""
    reg = regfast.connect()
    path = rf"Software\regfast-tests\ktm-{os.getpid()}"
    key = reg.create_key("HKCU", path)
    yield reg, key
    key.close()
    try:
        reg.delete_key("HKCU", path, tree=True)
    finally:
        reg.close()


@pytest.mark.windows
@pytest.mark.skipif(sys.platform != "win32", reason="KTM needs Windows (Wine only stubs it)")
def test_ktm_commit_rollback_isolation(native_sandbox):
    registry, sandbox = native_sandbox
    assert ktm_status(registry) is None
    other = regfast.connect()                 # another process: the isolation oracle
    try:
        with regfast.transaction(registry) as tx:                 # auto picks KTM here
            assert isinstance(tx, Transaction) and tx.mode == "ktm" and tx.journal_path is None
            k = tx.open_key("HKCU", sandbox.path)
            k.set_value("v", "in tx")
            k.create_key("Sub").set_value("x", 1)
            k.create_key(r"Tree\A\B").set_value("deep", 1)
            k.create_key(r"Tree\C").set_value("c", 2)
            assert k["v"] == "in tx"
            assert "v" not in other.open_key("HKCU", sandbox.path)     # not visible before the commit
        assert other.open_key("HKCU", sandbox.path)["v"] == "in tx"
        assert other.open_key("HKCU", sandbox.path + r"\Sub")["x"] == 1
        tx = regfast.transaction(registry, mode="ktm")
        k = tx.open_key("HKCU", sandbox.path)
        k.set_value("v", "rolled back")
        k.delete_key("Sub")
        k.delete_key("Tree", tree=True)          # agent_tx.c: every child deleted in the transaction
        assert other.open_key("HKCU", sandbox.path + r"\Tree\A\B")["deep"] == 1   # isolated
        tx.rollback()
        assert other.open_key("HKCU", sandbox.path)["v"] == "in tx"
        assert other.open_key("HKCU", sandbox.path + r"\Sub")["x"] == 1
        assert other.open_key("HKCU", sandbox.path + r"\Tree\A\B")["deep"] == 1   # the whole tree is back
        assert other.open_key("HKCU", sandbox.path + r"\Tree\C")["c"] == 2
        with regfast.transaction(registry, mode="ktm") as tx:                    # and a committed one
            tx.open_key("HKCU", sandbox.path).delete_key("Tree", tree=True)
        with pytest.raises(FileNotFoundError):
            other.open_key("HKCU", sandbox.path + r"\Tree")
        with pytest.raises(RuntimeError):
            with regfast.transaction(registry, mode="ktm") as tx:
                tx.open_key("HKCU", sandbox.path).set_value("v", "exception")
                raise RuntimeError("undo")
        assert other.open_key("HKCU", sandbox.path)["v"] == "in tx"
    finally:
        other.close()
