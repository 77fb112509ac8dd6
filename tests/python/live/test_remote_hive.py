"""The live registry through the remote backend as a regfast Hive:
``regfast._native.Hive._remote(fd_read, fd_write, timeout)`` connects the C
remote backend (src/remote) to regfast-agent under Wine, and the offline
Key / Value / ValueBatch classes — one decoder — work over it.

The batched read lands in the ValueBatch's arena straight from the pipe: its
tracemalloc peak stays within 1.2x the data (10,000 values of 256 bytes).
Its time against today's ``regfast.connect()`` batch is printed (run with
-s), never asserted: speed is bench/'s business.
"""
from __future__ import annotations

import subprocess
import time
import tracemalloc

import numpy as np
import pytest

from regfast._native import Hive
from regfast.exceptions import RegistryConnectionError
from wine_session import BASE, registry, wine  # noqa: F401  (shared fixtures)

N_VALUES = 10_000
SIZE = 256


def _spawn(wine):  # noqa: F811
    return subprocess.Popen(wine.cmd, env=wine.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, bufsize=0)


@pytest.fixture(scope="module")
def big_key(registry):  # noqa: F811
    """HKCU\\...\\remote-batch with 10,000 REG_BINARY values of 256 bytes
    (written once through the Python agent client)."""
    path = BASE + r"\remote-batch"
    key = registry.create_key("HKCU", path)
    for i in range(N_VALUES):
        key.set_value(f"v{i:05d}", bytes([i % 251]) * SIZE)
    key.set_value("text", "hello")
    key.create_key(r"Sub\Deeper").set_value("n", 7)
    yield path
    key.close()
    registry.delete_key("HKCU", path, tree=True)


@pytest.fixture
def remote(wine):  # noqa: F811
    proc = _spawn(wine)
    hive = Hive._remote(proc.stdout.fileno(), proc.stdin.fileno(), 60.0)
    yield hive, proc
    hive.close()
    proc.stdin.close()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()


def test_key_value_and_batch_classes_over_the_remote_backend(remote, big_key):
    hive, _ = remote
    key = hive.open(big_key)
    assert type(key).__module__ == "regfast._native"            # the offline Key class
    assert key.name == "remote-batch"
    assert key["text"] == "hello"
    assert key.value("v00003").data.tobytes() == bytes([3]) * SIZE
    assert sorted(key.subkey_names()) == ["Sub"]
    sub = key.open(r"sub\DEEPER")
    assert sub.name == "Deeper" and sub["n"] == 7             # the name as stored
    assert sub.parent.name == "Sub"
    info = key.info()
    assert info.values == N_VALUES + 1 and info.subkeys == 1
    with pytest.raises(FileNotFoundError):
        key["nope"]
    with pytest.raises(FileNotFoundError):
        hive.open(big_key + r"\nope")
    b = key.read_values(["v00000", "missing", "text"])
    assert b.status.tolist() == [0, 2, 0]
    assert b.values()[0] == bytes([0]) * SIZE and b.values()[2] == "hello"
    assert b.to_dict() == {"v00000": bytes(SIZE), "text": "hello"}
    every = key.read_values()
    assert len(every) == N_VALUES + 1 and set(every.names) >= {"text", "v09999"}
    vals = {v.name: v for v in sub.values()}
    assert vals["n"].value == 7


def test_batch_of_10000_values_peaks_within_1_2x_its_data(remote, big_key, registry):  # noqa: F811
    hive, _ = remote
    key = hive.open(big_key)
    names = [f"v{i:05d}" for i in range(N_VALUES)]
    key.read_values(names[:10])                                  # warm: handles, imports
    tracemalloc.start()
    b = key.read_values(names)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    data = N_VALUES * SIZE
    print(f"\nremote batch of {N_VALUES} x {SIZE} B: tracemalloc peak {peak} B = {peak / data:.3f}x the data")
    assert (b.status == 0).all() and (b.length == SIZE).all()
    assert b.arena is not None and b.arena.nbytes == data      # the data, compacted, no record headers
    assert bytes(b.buffer(1234)) == bytes([1234 % 251]) * SIZE
    assert peak <= 1.2 * data, f"peak {peak} B is {peak / data:.2f}x the {data} B of data"

    # the same batch through today's regfast.connect() client, side by side (printed, not asserted)
    live_key = registry.open_key("HKCU", big_key)
    tracemalloc.start()
    old = live_key.read_values(names)
    _, old_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert old.values()[:50] == b.values()[:50]
    t_new, t_old = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        key.read_values(names)
        t_new.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        live_key.read_values(names)
        t_old.append(time.perf_counter() - t0)
    live_key.close()
    print(f"regfast.connect() batch: peak {old_peak / data:.3f}x the data; best of 5: "
          f"remote backend {min(t_new) * 1e3:.1f} ms, connect() {min(t_old) * 1e3:.1f} ms, "
          f"ratio new/old {min(t_new) / min(t_old):.2f}")


def test_dead_agent_gives_connection_errors(wine, big_key):  # noqa: F811
    proc = _spawn(wine)
    hive = Hive._remote(proc.stdout.fileno(), proc.stdin.fileno(), 30.0)
    key = hive.open(big_key)
    proc.kill()
    proc.wait()
    with pytest.raises(RegistryConnectionError) as e:
        key.read_values(["v00001"])
    assert isinstance(e.value, ConnectionError)
    t0 = time.monotonic()
    with pytest.raises(ConnectionError):
        key.info()                                               # dead: at once
    assert time.monotonic() - t0 < 1
    hive.close()
    proc.stdin.close()
    proc.stdout.close()


def test_no_agent_behind_the_pipe(tmp_path):
    """A stream that closes before the handshake is a clean ConnectionError."""
    p = subprocess.Popen(["true"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    p.wait()
    with pytest.raises(ConnectionError):
        Hive._remote(p.stdout.fileno(), p.stdin.fileno(), 5.0)
    p.stdin.close()
    p.stdout.close()
    assert np.dtype(np.uint8).itemsize == 1



# Plays regfast-agent on stdin/stdout (a process of its own, like the real one).
# HELLO agrees on version 4; from then on every frame carries the CRC
# trailer, checked on each request (counts on stderr at the end). OPEN_KEY
# is answered well; anything else with a reply whose trailer is one bit off.
_FAKE_AGENT = r"""
import struct, sys, zlib
from regfast.live import _agent_ops as ops
from regfast.live import protocol as A
rf, wf = open(0, "rb", buffering=0, closefd=False), open(1, "wb", buffering=0, closefd=False)
def read(n):
    b = b""
    while len(b) < n:
        k = rf.read(n - len(b))
        if not k:
            raise EOFError
        b += k
    return b
framed, requests, bad_crc, hello = False, 0, 0, None
try:
    while True:
        _, op, n, rid = struct.unpack_from("<HHII", read(A.HEADER))
        payload = read(n)
        if framed:
            requests += 1
            bad_crc += struct.unpack("<I", read(4))[0] != zlib.crc32(payload)
        if op == ops.OP_HELLO:
            hello = struct.unpack_from("<HH", payload, 4)
            body = struct.pack("<iHIIII", 0, 4, A.MAX_REQUEST, A.MAX_RESPONSE, 1, 0) + struct.pack("<I", 4) + b"fake"
            wf.write(A.frame(op | A.RESPONSE, rid, body))
            framed = True
        elif op == ops.OP_OPEN_KEY:
            wf.write(A.frame(op | A.RESPONSE, rid, struct.pack("<iII", 0, 7, 2), version=3))
        else:
            bad = bytearray(A.frame(op | A.RESPONSE, rid, struct.pack("<i", 0) + bytes(48), version=3))
            bad[-1] ^= 0x01
            wf.write(bytes(bad))
except EOFError:
    pass
sys.stderr.write(f"hello={hello} requests={requests} bad_crc={bad_crc}\n")
"""


def test_a_reply_failing_its_crc_is_a_cut_connection():
    """The C remote backend frames as agent.py does (protocol 3's trailer,
    here under version 4): a reply whose CRC does not match kills the
    connection with status 1236, which Python raises as ConnectionCutError
    — a RegistryConnectionError, winerror 1236, errno ECONNABORTED — at once
    for every later call too. The fake agent saw every request's trailer
    match, and was asked for version 4 only."""
    import errno
    import sys

    from regfast.exceptions import ConnectionCutError

    proc = subprocess.Popen([sys.executable, "-c", _FAKE_AGENT], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    hive = Hive._remote(proc.stdout.fileno(), proc.stdin.fileno(), 10.0)
    try:
        root = hive.open("")
        with pytest.raises(ConnectionCutError) as e:
            root.info()
        assert isinstance(e.value, RegistryConnectionError) and isinstance(e.value, ConnectionAbortedError)
        assert e.value.winerror == 1236 and e.value.errno == errno.ECONNABORTED
        assert "payload check" in str(e.value)
        t0 = time.monotonic()
        with pytest.raises(ConnectionCutError):
            root.info()                                          # dead: at once
        assert time.monotonic() - t0 < 1
    finally:
        hive.close()
        proc.stdin.close()
        out = proc.stderr.read().decode()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert "hello=(4, 5) requests=2 bad_crc=0" in out, out   # the client speaks 4..5; the fake answers 4
