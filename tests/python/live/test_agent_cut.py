"""A frame cut half-way must never reach the live registry (issue 15 #1).

The reproduction from the issue, under Wine: the agent stops reading
(SIGSTOP), a 15 MB set_value times out after the first 64 KiB went down the
pipe, the agent resumes and a second 15 MB set_value follows. Before the fix
the agent read the second frame as the rest of the first and stored
``big`` = 65,498 ``y`` + the second frame's header + ``z``..., ``other`` never
existed and the caller saw only timeouts. Now the connection whose frame was
cut is dead at once (every later call raises ConnectionCutError, winerror
1236), the agent sees its input end mid-frame and exits without applying it,
and a spliced stream (a client that writes on after a cut) is refused by the
payload check of protocol version 3.
"""
from __future__ import annotations

import os
import signal
import struct
import subprocess
import threading
import time

import pytest

from regfast.live import _agent_ops as ops

from regfast.live import protocol as A
from regfast.live import registry as live
from regfast.exceptions import ConnectionCutError

from wine_session import registry, sandbox, wine  # noqa: F401  (shared fixtures)

BIG = 15 << 20


def _value(wine, path: str, name: str):
    """The value as a fresh connection sees it (None: absent)."""
    with wine.connect() as reg:
        return reg.open_key("HKCU", path).get(name)


def _wait_exit(proc: subprocess.Popen, seconds: float = 30) -> int | None:
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return None


def test_timed_out_write_kills_the_connection(wine, sandbox):
    sandbox.set_value("keep", "as it was")
    reg = wine.connect(timeout=3)
    try:
        key = reg.open_key("HKCU", sandbox.path, access=live.KEY_ALL_ACCESS)
        proc = reg.proc
        os.kill(proc.pid, signal.SIGSTOP)           # the agent stops reading its input
        try:
            t0 = time.monotonic()
            with pytest.raises(ConnectionCutError) as e:
                key.set_value("big", b"y" * BIG)
            assert time.monotonic() - t0 < 10
            assert e.value.winerror == 1236
            assert "cut after" in str(e.value) and "by the timeout" in str(e.value)
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        # dead at once: no second frame is ever written behind the cut one
        t0 = time.monotonic()
        with pytest.raises(ConnectionCutError) as e:
            key.set_value("other", b"z" * BIG)
        assert time.monotonic() - t0 < 1 and e.value.winerror == 1236
        with pytest.raises(ConnectionCutError):
            reg.ping(b"x")
        assert reg.conn.closed
        assert _wait_exit(proc) is not None          # the agent saw EOF (or was ended): gone
    finally:
        reg.close()
    assert _value(wine, sandbox.path, "big") is None
    assert _value(wine, sandbox.path, "other") is None
    assert _value(wine, sandbox.path, "keep") == "as it was"


def test_interrupted_write_never_splices(wine, sandbox):
    """Ctrl-C half-way through a frame: the C transport writes with the GIL
    released and retries EINTR, so a signal cannot leave a frame half-written
    (only the timeout cuts one, and kills the connection: above). The frame
    completes, KeyboardInterrupt is raised after the call, and the stream
    stays whole: the next frame is read as itself, both values exact."""
    reg = wine.connect(timeout=30)
    try:
        key = reg.open_key("HKCU", sandbox.path, access=live.KEY_ALL_ACCESS)
        proc = reg.proc
        os.kill(proc.pid, signal.SIGSTOP)
        me = os.getpid()
        sigint = threading.Timer(0.5, lambda: os.kill(me, signal.SIGINT))   # while the write is stuck
        resume = threading.Timer(1.5, lambda: os.kill(proc.pid, signal.SIGCONT))
        sigint.start()
        resume.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                key.set_value("big", b"y" * BIG)
        finally:
            sigint.join()
            resume.join()
            os.kill(proc.pid, signal.SIGCONT)
        key.set_value("other", "z")
        assert not reg.closed
    finally:
        reg.close()
    assert _value(wine, sandbox.path, "big") == b"y" * BIG
    assert _value(wine, sandbox.path, "other") == "z"


def test_agent_discards_a_frame_its_input_ends_in(wine, sandbox):
    """EOF mid-payload: the agent applies nothing and exits."""
    with subprocess.Popen(wine.cmd, env=wine.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as p:
        watchdog = threading.Timer(60, p.kill)
        watchdog.start()
        try:
            def ask(op, rid, payload):
                p.stdin.write(A.frame(op, rid, payload))
                p.stdin.flush()
                head = p.stdout.read(A.HEADER)
                n = struct.unpack_from("<I", head, 4)[0]
                body = p.stdout.read(n)
                assert struct.unpack_from("<i", body)[0] == 0, body
                return body[4:]

            ask(ops.OP_HELLO, 1, b"RFAG" + struct.pack("<HH", 2, 2))           # v2: no payload check
            h = struct.unpack_from("<I", ask(ops.OP_OPEN_KEY, 2, struct.pack("<IIII", live.HKCU, 0, live.KEY_ALL_ACCESS, 0)
                                              + A.str16(sandbox.path)))[0]
            raw = b"w" * 100_000
            body = struct.pack("<II", h, 3) + A.str16("torn") + struct.pack("<I", len(raw)) + raw
            whole = A.frame(ops.OP_SET_VALUE, 3, body)
            p.stdin.write(whole[:len(whole) // 2])
            p.stdin.flush()
            p.stdin.close()
            assert p.wait(timeout=30) is not None
        finally:
            watchdog.cancel()
            p.kill()
    assert _value(wine, sandbox.path, "torn") is None


def test_payload_check_refuses_a_spliced_stream(wine, sandbox):
    """A client that wrote on after cutting a frame (what the old transport
    did): under version 3 the agent's payload check sees the splice, answers
    13 and stops; nothing of either frame is applied."""
    # a raw-frame client (regfast.live.protocol.Connection, protocol 3): the
    # library's C transport never writes on after a cut
    c = wine.raw_connection(timeout=30)
    try:
        assert c.version == 3
        opened = c.request(ops.OP_OPEN_KEY, struct.pack("<IIII", live.HKCU, 0, live.KEY_ALL_ACCESS, 0)
                           + A.str16(sandbox.path))
        h = struct.unpack_from("<I", opened)[0]

        def set_frame(rid, name, fill):
            raw = fill * 200_000
            body = struct.pack("<II", h, 3) + A.str16(name) + struct.pack("<I", len(raw)) + raw
            return A.frame(ops.OP_SET_VALUE, rid, body, version=3)

        first, second = set_frame(901, "big", b"y"), set_frame(902, "other", b"z")
        p = A._Pending()
        with c._lock:
            c._pending[901] = p
        with pytest.raises(OSError) as e:
            # cut, then the next frame; the agent may see the splice and stop
            # reading before all of it is written (EPIPE here: a cut too)
            c.send_raw(first[:65_514] + second)
            c.finish(901, p, ops.OP_SET_VALUE, timeout=30)
        assert getattr(e.value, "winerror", None) == 13 or isinstance(e.value, ConnectionError), e.value
        assert _wait_exit(c.proc) is not None                      # it stopped serving the stream
    finally:
        c.close()
    assert _value(wine, sandbox.path, "big") is None
    assert _value(wine, sandbox.path, "other") is None


def test_version_2_clients_are_still_served(wine):
    """HELLO negotiation: a client that speaks only version 2 gets version 2
    (frames without the payload check) and is served."""
    with subprocess.Popen(wine.cmd, env=wine.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as p:
        watchdog = threading.Timer(60, p.kill)
        watchdog.start()
        try:
            p.stdin.write(A.frame(ops.OP_HELLO, 1, b"RFAG" + struct.pack("<HH", 2, 2)))
            p.stdin.write(A.frame(ops.OP_PING, 2, b"v2 ping"))
            p.stdin.flush()
            for want_id in (1, 2):
                head = p.stdout.read(A.HEADER)
                _, op, n, rid = struct.unpack_from("<HHII", head)
                body = p.stdout.read(n)
                assert rid == want_id and struct.unpack_from("<i", body)[0] == 0
                if rid == 1:
                    assert struct.unpack_from("<H", body, 4)[0] == 2
                else:
                    assert body[4:] == b"v2 ping"
        finally:
            watchdog.cancel()
            p.kill()
