"""regfast-agent end to end: the live registry from Python, under Wine.

The Wine session and its fixtures (``wine``, ``registry``, ``sandbox``)
are tests/python/wine_session.py's, shared by every folder.
"""
from __future__ import annotations

import contextlib
import os
import random
import struct
import subprocess
import threading
import time

import numpy as np
import pytest

import regfast
from wine_session import BASE, build_test_agent, registry, sandbox, wine  # noqa: F401  (shared fixtures)
from regfast.live import agent as agent_exe
from regfast.live import _agent_ops as ops
from regfast.live import protocol as A
from regfast.live import registry as live
from regfast.exceptions import (
    RF_E_CONNECTION, ConnectionCutError, RegistryConnectionError, RegistryNotFoundError, RegistryPermissionError,
)
from regfast.io.writer import (
    REG_BINARY, REG_DWORD_BIG_ENDIAN, REG_EXPAND_SZ, REG_LINK, REG_MULTI_SZ, REG_NONE, REG_QWORD, Value,
)

# ---------------------------------------------------------------------------
# Handshake, build, CLI
# ---------------------------------------------------------------------------

def test_handshake_and_agent_path(wine, registry, capsys, monkeypatch):
    assert registry.conn.version == ops.VERSION_MAX   # the C remote backend's protocol: the last
    assert registry.description.startswith(f"regfast-agent 0.1 protocol {ops.VERSION_MAX} on Wine")
    assert registry.pid > 0 and registry.conn.max_request == 16 << 20
    assert registry.ping(b"abc") == b"abc"
    monkeypatch.setenv("REGFAST_AGENT", str(wine.exe))
    assert agent_exe.agent_path() == wine.exe
    from regfast.cli import commands as cli
    assert cli.main(["agent-path"]) == 0
    assert capsys.readouterr().out.strip() == str(wine.exe)
    monkeypatch.setenv("REGFAST_AGENT", str(wine.exe) + ".missing")
    with pytest.raises(FileNotFoundError):
        agent_exe.agent_path()
    assert cli.main(["agent-path"]) == 1


def test_build_is_incremental(wine):
    t0 = time.monotonic()
    again = build_test_agent()
    assert again == wine.exe and time.monotonic() - t0 < 30


# ---------------------------------------------------------------------------
# Reads: the live Key mirrors the offline Key
# ---------------------------------------------------------------------------

TREE = {
    "": "default value",
    "sz": "hello wörld ✓",
    "empty_sz": "",
    "expand": Value(REG_EXPAND_SZ, "%SystemRoot%\\x"),
    "bin": b"\x00\x01\x02\xff",
    "empty_bin": b"",
    "dword": 0xDEADBEEF,
    "dword_be": Value(REG_DWORD_BIG_ENDIAN, 0x01020304),
    "qword": Value(REG_QWORD, 1 << 40),
    "multi": ["a", "", "ccc"],
    "multi_empty": Value(REG_MULTI_SZ, []),
    "link": Value(REG_LINK, "\\Registry\\Machine\\X"),
    "none": Value(REG_NONE, b"\x05"),
    "odd_type": Value(0xFFFF0012, b"devprop"),
    "short_dword": Value(4, b"\x01\x02"),
    "big": Value(REG_BINARY, bytes(range(256)) * 400),        # 102,400 bytes
    "Sub1": {"x": 1, "Deeper": {"y": "z"}},
    "sub2": {},
}


def _fill(key: live.Key, tree: dict) -> None:
    for name, v in tree.items():
        if isinstance(v, dict):
            with key.create_key(name) as child:
                _fill(child, v)
        elif isinstance(v, Value):
            key.set_value(name, v.data, v.type)
        else:
            key.set_value(name, v)


def _decoded(v):
    try:
        return v.value
    except ValueError as e:
        return ("ValueError", str(e).split(";")[0].split("but")[1])


def test_live_key_mirrors_offline_key(sandbox, make_hive):
    _fill(sandbox, TREE)
    built = make_hive(TREE)
    with regfast.open_hive(built.path) as hive:
        off = hive.root
        # same names, same raw data, same decoding (Wine lists values sorted by name)
        lv = {v.name: v for v in sandbox.values()}
        ov = {v.name: v for v in off.values()}
        assert sorted(lv) == sorted(ov)
        for name, o in ov.items():
            v = lv[name]
            assert (v.type, v.raw(), v.size) == (o.type, o.raw(), o.size), name
            assert isinstance(v.data, memoryview) and v.data.readonly
            assert _decoded(v) == _decoded(o), name
            if not isinstance(_decoded(o), tuple):
                assert sandbox[name] == off[name]
                assert sandbox.value_raw(name)[0] == o.type
                assert bytes(sandbox.value_raw(name)[1]) == o.raw()
        assert sorted(sandbox.subkey_names()) == sorted(off.subkey_names()) == ["Sub1", "sub2"]
        assert sandbox.open(r"sub1\DEEPER")["y"] == "z"
        assert sandbox.subkey("Sub1").open("Deeper").path.endswith(r"Sub1\Deeper")
        li, oi = sandbox.info(), off.info()
        assert (li.subkeys, li.values, li.max_value_data_len) == (oi.subkeys, oi.values, oi.max_value_data_len)
        assert li.class_name is None
        assert abs(sandbox.last_write.timestamp() - time.time()) < 600
        # same method names as the offline Key (minus what only a file has)
        offline_only = {"slack", "security", "security_descriptor"}
        public = {n for n in dir(regfast.Key) if not n.startswith("_")}
        assert public - offline_only <= {n for n in dir(live.Key) if not n.startswith("_")}
        assert sandbox.get("nope", 5) == 5 and "SZ" in sandbox and "nope" not in sandbox
        assert sandbox.subkey("Sub1").parent == sandbox


def test_read_values_batch_matches_offline(sandbox, make_hive):
    _fill(sandbox, TREE)
    built = make_hive(TREE)
    names = ["sz", "DWORD", "missing", "multi", "qword", "big", "", "dword_be"]
    with regfast.open_hive(built.path) as hive:
        ob = hive.root.read_values(names)
        lb = sandbox.read_values(names)
        assert isinstance(lb, regfast.ValueBatch) and type(lb) is type(ob) and len(lb) == len(ob) == len(names)
        for col in ("type", "status", "length"):
            assert getattr(lb, col).dtype == getattr(ob, col).dtype
            assert getattr(lb, col).tolist() == getattr(ob, col).tolist(), col
        assert lb.offset.dtype == np.uint64
        assert lb.values() == ob.values()
        assert lb.to_dict() == ob.to_dict()
        assert lb.as_str() == ob.as_str()
        assert lb.as_int(default=7).tolist() == ob.as_int(default=7).tolist()
        with pytest.raises(ValueError):
            lb.as_int()
        assert bytes(lb.buffer(5)) == bytes(range(256)) * 400
        with pytest.raises(FileNotFoundError):
            lb.buffer(2)
        # a type filter refuses rows with 13, keeping their type
        lt = sandbox.read_values(["sz", "dword"], types=[4])
        assert lt.status.tolist() == [13, 0] and lt.type.tolist() == [1, 4]
        # every value, with names
        allb = sandbox.read_values()
        offall = hive.root.read_values()
        assert sorted(allb.names) == sorted(offall.names)
        # the 2-byte REG_DWORD: status 13, flagged, decoded as winreg does, as offline
        assert allb.to_dict() == offall.to_dict()
        lrow = dict(zip(allb.names, zip(allb.status.tolist(), allb.malformed.tolist())))
        assert lrow == dict(zip(offall.names, zip(offall.status.tolist(), offall.malformed.tolist())))
        assert 13 in allb.status.tolist() and allb.malformed.any()
        lstr = dict(zip(allb.names, allb.as_str()))
        assert lstr == dict(zip(offall.names, offall.as_str()))
    with pytest.raises(ValueError):
        sandbox.read_values(errors="bogus")


def test_read_values_many(sandbox):
    names = [f"v{i:05d}" for i in range(2000)]
    data = "x" * 127
    for n in names[:300]:
        sandbox.set_value(n, data)
    b = sandbox.read_values(names)
    assert (b.status[:300] == 0).all() and (b.status[300:] == 2).all()
    assert b.as_str()[:300] == [data] * 300 and b.length[0] == 256
    singles = [sandbox[n] for n in names[:50]]
    assert singles == b.values()[:50]


# ---------------------------------------------------------------------------
# Errors: the same exception classes as offline
# ---------------------------------------------------------------------------

def test_errors(registry, sandbox):
    with pytest.raises(FileNotFoundError) as e:
        registry.open_key("HKCU", BASE + r"\no\such\key")
    assert isinstance(e.value, RegistryNotFoundError) and e.value.winerror == 2
    with pytest.raises(FileNotFoundError) as e:
        sandbox["nope"]
    assert e.value.winerror == 2 and e.value.filename == "nope"
    with pytest.raises(FileNotFoundError):
        sandbox.delete_value("nope")
    with pytest.raises(FileNotFoundError):
        sandbox.delete_key("nope")
    ro = registry.open_key("HKCU", sandbox.path)            # KEY_READ
    with pytest.raises(PermissionError) as e:
        ro.set_value("x", 1)
    assert isinstance(e.value, RegistryPermissionError) and e.value.winerror == 5
    with pytest.raises(OSError) as e:
        registry.open_key(0x80000009, "x")
    assert e.value.winerror == 6
    with pytest.raises(ValueError):
        registry.open_key("HKXX", "x")
    with pytest.raises(ValueError):
        registry.open_key("HKCU", "x", view=16)
    sandbox.create_key(r"p\q")
    with pytest.raises(PermissionError) as e:
        sandbox.delete_key("p")                        # has a subkey
    assert e.value.winerror == 5 and "subkeys" in e.value.strerror
    sandbox.delete_key("p", tree=True)
    with pytest.raises(FileNotFoundError):
        sandbox.open("p")
    ro.close()
    ro.close()
    with pytest.raises(OSError) as e:
        ro.info()
    assert e.value.winerror == 6
    with pytest.raises(TypeError):
        sandbox.set_value("x", object())
    # a key deleted under an open handle: 1018, as Windows says
    k = sandbox.create_key("doomed")
    k.set_value("v", 1)
    sandbox.delete_key("doomed")
    with pytest.raises(OSError) as e:
        k.info()
    assert e.value.winerror in (1018, 2)


# ---------------------------------------------------------------------------
# Writes, and other processes
# ---------------------------------------------------------------------------

def test_writes_seen_by_other_processes(wine, registry, sandbox):
    sandbox.set_value("from_agent", "A")
    sandbox.set_value("n", 5)
    out = wine.reg("query", "HKCU\\" + sandbox.path).stdout
    assert "from_agent" in out and "REG_SZ" in out and "0x5" in out
    wine.reg("add", "HKCU\\" + sandbox.path + "\\byreg", "/v", "w", "/t", "REG_DWORD", "/d", "7", "/f")
    assert sandbox.open("byreg")["w"] == 7
    assert "byreg" in sandbox.subkey_names()
    wine.reg("delete", "HKCU\\" + sandbox.path, "/v", "n", "/f")
    assert "n" not in sandbox
    # a second agent in the same prefix
    with wine.connect() as other:
        k = other.open_key("HKCU", sandbox.path, access=live.KEY_ALL_ACCESS)
        assert k["from_agent"] == "A"
        k.set_value("from_other", ["x", "y"])
    assert sandbox["from_other"] == ["x", "y"]


def test_create_open_delete_and_views(registry, sandbox):
    k = sandbox.create_key(r"a\b\c")
    assert k.full_path == "HKEY_CURRENT_USER\\" + sandbox.path + r"\a\b\c" and k.name == "c"
    k.set_value("", "dflt")
    assert registry.open_key(live.HKCU, sandbox.path + r"\A\B\C")[""] == "dflt"
    sandbox.delete_key(r"a\b\c")
    assert sandbox.open(r"a\b").subkey_names() == []
    # WOW64: the 32-bit view of HKLM\Software is Software\Wow6432Node
    name = f"regfast-view-test-{os.getpid()}"
    k32 = registry.create_key("HKLM", "Software\\" + name, view=32)
    k32.set_value("bits", 32)
    assert registry.open_key("HKLM", "Software\\Wow6432Node\\" + name)["bits"] == 32
    with pytest.raises(FileNotFoundError):
        registry.open_key("HKLM", "Software\\" + name, view=64)
    registry.delete_key("HKLM", "Software\\" + name, view=32)
    with pytest.raises(FileNotFoundError):
        registry.open_key("HKLM", "Software\\Wow6432Node\\" + name)


def test_snapshot_hashes(sandbox):
    from regfast.hive.diff import fnv1a64
    _fill(sandbox, {"a": "x", "Sub": {"b": b"\x01\x02", "Deep": {"c": 3}}})
    s = sandbox.snapshot()
    assert set(s.keys) == {"", "SUB", r"SUB\DEEP"}
    assert s.keys["SUB"].values["B"].hash == fnv1a64(b"\x01\x02")
    assert s.keys[""].values["A"].data is None           # hashes, not copies
    s2 = sandbox.snapshot(keep_data=True, subtree=False)
    assert set(s2.keys) == {""} and s2.keys[""].values["A"].value == "x"
    s3 = sandbox.snapshot(max_keys=2)
    assert s3.truncated and len(s3.keys) == 2


# ---------------------------------------------------------------------------
# Robustness: a dead agent, timeouts, malformed frames
# ---------------------------------------------------------------------------

def test_agent_killed_mid_request(wine, sandbox):
    sandbox.set_value("v", "x" * 127)
    reg = wine.connect(timeout=20)
    key = reg.open_key("HKCU", sandbox.path)
    # a long request (a million reads in the agent), then the agent dies under it
    errors: list = []

    def long_request():
        try:
            reg.bench(1, key, ["v"], reps=1_000_000)
        except BaseException as e:                 # noqa: BLE001  (checked below)
            errors.append(e)

    t = threading.Thread(target=long_request, daemon=True)
    t.start()
    time.sleep(0.3)
    reg.proc.kill()
    t0 = time.monotonic()
    t.join(10)
    assert not t.is_alive() and time.monotonic() - t0 < 5
    (e,) = errors
    assert isinstance(e, ConnectionError) and "regfast-agent" in str(e)
    # gone, not cut: RF_E_CONNECTION
    assert isinstance(e, RegistryConnectionError) and not isinstance(e, ConnectionCutError)
    assert e.status == RF_E_CONNECTION
    with pytest.raises(ConnectionError):
        key["v"]
    with pytest.raises(ConnectionError):
        reg.open_key("HKCU", sandbox.path)
    reg.close()


def test_request_timeout(wine, sandbox):
    """A reply that outlives the timeout raises TimeoutError in time; the
    connection survives (nothing of the reply had come) and the late answer
    is dropped, never taken for a later request's."""
    sandbox.set_value("v", "x")
    with wine.connect(timeout=0.2) as reg:
        key = reg.open_key("HKCU", sandbox.path, access=live.KEY_ALL_ACCESS)
        # ~1 s of reads at this machine's speed (a fixed 40,000 once outlived
        # 0.2 s, until Wine answered them in 0.14 s)
        seconds, done = reg.bench("RegQueryValueEx", key, ["v"], reps=2_000)
        reps = max(40_000, int(done / max(seconds, 1e-9)))
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            reg.bench("RegQueryValueEx", key, ["v"], reps=reps)
        assert time.monotonic() - t0 < 2
        assert reg.ping(b"still", timeout=30) == b"still"
        assert key.get("v") == "x"


def _raw_client(wine) -> A.Connection:
    """The agent's framing tested from outside: a test-side client that
    writes raw frames (protocol 3, regfast.live.protocol.Connection), which
    the library's remote backend never sends."""
    return wine.raw_connection()


def _raw_open(c: A.Connection, path: str, access: int = live.KEY_READ) -> int:
    """An agent key handle of HKCU\\path on a raw client."""
    reply = c.request(ops.OP_OPEN_KEY, struct.pack("<IIII", live.HKCU, 0, access, 0) + A.str16(path))
    return struct.unpack_from("<I", reply)[0]


def _raw_stats(c: A.Connection) -> dict:
    r = A.Reader(c.request(ops.OP_STATS))
    return {"handles_open": r.u32(), "watches": r.u32(), "frames": r.u64(), "bad_frames": r.u64()}


def test_malformed_frames(wine):
    with contextlib.closing(_raw_client(wine)) as c:
        ping = c.request
        # bad magic / check: one error reply (id 0), then the agent finds the next frame
        c.send_raw(b"\x00" * 40 + b"garbage" * 10)
        assert ping(ops.OP_PING, b"1") == b"1"
        # oversized frame: RF_E_LIMIT, payload skipped, agent alive
        big = A.MAX_REQUEST + 1
        head = struct.pack("<HHII", A.MAGIC, ops.OP_PING, big, 4242)
        rid, p = 4242, A._Pending()
        with c._lock:
            c._pending[rid] = p
        trailer = bytes(A.TRAILER) if c.version >= 3 else b""      # skipped with the payload, unchecked
        c.send_raw(head + struct.pack("<I", A.fnv1a32(head)) + bytes(big) + trailer, timeout=60)
        with pytest.raises(OSError) as e:
            c.finish(rid, p, ops.OP_PING, timeout=30)
        assert e.value.status == 0x20000004
        assert ping(ops.OP_PING, b"2") == b"2"
        # unknown op, truncated payloads of every op
        with pytest.raises(OSError) as e:
            c.request(99)
        assert e.value.winerror == 120
        for op in range(3, 17):
            if op == ops.OP_STATS:
                continue
            with pytest.raises(OSError) as e:
                c.request(op, b"\x01\x00")
            assert e.value.winerror in (87, 6, 13), op
        # a filter Wine would hang on, straight to the agent
        hk = _raw_open(c, "Software")
        for flt in (0, 0x40, 0x10000000 | 0x4):
            with pytest.raises(OSError) as e:
                c.request(ops.OP_WATCH, struct.pack("<IIIIII", 1, flt, 0, 0, 1, hk))
            assert e.value.winerror == 87
        st = _raw_stats(c)
        assert st["bad_frames"] >= 16 and st["watches"] == 0
        assert ping(ops.OP_PING, b"3") == b"3"


def test_request_before_hello_is_refused(wine):
    with subprocess.Popen(wine.cmd, env=wine.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as p:
        _before_hello(p)


def _before_hello(p: subprocess.Popen) -> None:
    watchdog = threading.Timer(30, p.kill)         # a silent agent must not hang the test
    watchdog.start()
    try:
        p.stdin.write(A.frame(ops.OP_PING, 7, b"x") + A.frame(ops.OP_HELLO, 8, b"RFAG" + struct.pack("<HH", 9, 9)))
        p.stdin.flush()
        out = p.stdout.read(16 + 4)
        magic, op, n, rid = struct.unpack_from("<HHII", out)
        assert (op, rid, struct.unpack_from("<I", out, 16)[0]) == (ops.OP_PING | A.RESPONSE, 7, 87)
        p.stdout.read(n - 4)
        out = p.stdout.read(20)
        assert struct.unpack_from("<I", out, 16)[0] == 120       # version 9 is not spoken
    finally:
        watchdog.cancel()
        p.kill()
        p.wait()


# Every op but QUIT (ends the agent) and BENCH (runs for as long as asked).
SAFE_OPS = [1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 99, 0, 0xFFFF]
# The administration (agent_admin.c) and transaction (agent_tx.c) ranges, with
# their edges: random bodies against a sandbox key's handle.
ADMIN_TX_OPS = [*range(31, 49), *range(63, 81)]


def _fuzz(c: A.Connection, hid: int, seconds: float, seed: int,
          safe_ops: list[int] = SAFE_OPS) -> int:
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < deadline:
        chunk = []
        for _ in range(50):
            r = rng.random()
            if r < 0.15:                                  # pure garbage
                chunk.append(rng.randbytes(rng.randrange(1, 300)))
            elif r < 0.25:                                # a header with a broken check
                h = bytearray(A.frame(rng.choice(safe_ops), rng.getrandbits(32), rng.randbytes(8), c.version))
                h[rng.randrange(16)] ^= 1 << rng.randrange(8)
                chunk.append(bytes(h))
            else:                                         # a well-framed request with a random body
                op = rng.choice(safe_ops)
                body = rng.randbytes(rng.randrange(0, 120))
                if rng.random() < 0.5:                    # aimed at a real key (a sandbox)
                    body = struct.pack("<I", hid) + body
                if op == 1 and rng.random() < 0.5:
                    body = b"RFAG" + body
                chunk.append(A.frame(op, rng.getrandbits(31) + 1_000_000, body, c.version))
            sent += 1
        c.send_raw(b"".join(chunk))
        assert c.request(ops.OP_PING, b"alive", timeout=30) == b"alive"
    return sent


def test_fuzz_frames_10s(wine, sandbox):
    with contextlib.closing(_raw_client(wine)) as c:
        sent = _fuzz(c, _raw_open(c, sandbox.path, live.KEY_ALL_ACCESS), 10.0, seed=1)
        assert sent > 500
        assert c.proc.poll() is None
        assert _raw_stats(c)["bad_frames"] > 100


def test_fuzz_admin_and_transaction_ops_10s(wine, sandbox):
    """Random bodies for the administration and transaction ops (rename,
    security, privileges, hive files, MUI, KTM...): each gets an answer and
    the agent keeps serving."""
    with contextlib.closing(_raw_client(wine)) as c:
        sent = _fuzz(c, _raw_open(c, sandbox.path, live.KEY_ALL_ACCESS), 10.0, seed=3, safe_ops=ADMIN_TX_OPS)
        assert sent > 500
        assert c.proc.poll() is None
        assert _raw_stats(c)["bad_frames"] > 100


@pytest.mark.slow
def test_fuzz_frames_60s(wine, sandbox):
    with contextlib.closing(_raw_client(wine)) as c:
        _fuzz(c, _raw_open(c, sandbox.path, live.KEY_ALL_ACCESS), 60.0, seed=2, safe_ops=SAFE_OPS + ADMIN_TX_OPS)
        assert c.proc.poll() is None
