"""Key and Value calls on a remote hive (the C remote backend behind
``Hive._remote``) against a slow agent: each call waits on a pipe, up to the
timeout, and must wait without the GIL, so that every other Python thread
keeps running meanwhile. And what a remote call hands back lives in
per-thread scratch until the next call: a memoryview must not point there.

The agent is played by a child process (tests need no Wine here): HELLO and
OPEN_KEY are answered at once, GET_VALUE after DELAY with 4 bytes of the
value's first letter, anything else after DELAY with an error reply
(status 2), which keeps the connection alive.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from regfast._native import Hive

DELAY = 0.3

_SLOW_AGENT = r"""
import struct, sys, time
from regfast.live import protocol as A
from regfast.live import _agent_ops as O
delay = float(sys.argv[1])
rf, wf = open(0, "rb", buffering=0, closefd=False), open(1, "wb", buffering=0, closefd=False)
def read(n):
    b = b""
    while len(b) < n:
        k = rf.read(n - len(b))
        if not k:
            raise EOFError
        b += k
    return b
framed = False
try:
    while True:
        _, op, n, rid = struct.unpack_from("<HHII", read(A.HEADER))
        payload = read(n)
        if framed:
            read(4)
        if op == O.OP_HELLO:
            body = struct.pack("<iHIIII", 0, 4, A.MAX_REQUEST, A.MAX_RESPONSE, 1, 0) + struct.pack("<I", 4) + b"slow"
            wf.write(A.frame(op | A.RESPONSE, rid, body))
            framed = True
            continue
        if op == O.OP_OPEN_KEY:
            body = struct.pack("<iII", 0, 7, 2)
        elif op == O.OP_CLOSE_KEY:
            body = struct.pack("<i", 0)
        else:
            time.sleep(delay)
            if op == O.OP_GET_VALUE:
                nb, = struct.unpack_from("<I", payload, 4)
                name = payload[8:8 + nb].decode("utf-16-le")
                data = (name[:1] or "d").encode() * 4
                body = struct.pack("<iII", 0, 3, len(data)) + data
            else:
                msg = b"not here (slow fake agent)"
                body = struct.pack("<iqI", 2, 0, len(msg)) + msg
        wf.write(A.frame(op | A.RESPONSE, rid, body, version=3))
except EOFError:
    pass
"""


@pytest.fixture
def slow_hive():
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_AGENT, str(DELAY)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, bufsize=0)
    hive = Hive._remote(proc.stdout.fileno(), proc.stdin.fileno(), 10.0)
    yield hive
    hive.close()
    proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:       # a view still holds the connection
        proc.kill()
        proc.wait()
    proc.stdout.close()


class _Ticker(threading.Thread):
    """Counts 5 ms sleeps: it can only count while no thread holds the GIL."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.ticks = 0
        self.stop = False

    def run(self) -> None:
        while not self.stop:
            time.sleep(0.005)
            self.ticks += 1


def test_remote_calls_wait_for_the_agent_without_the_gil(slow_hive):
    key = slow_hive.open("Sub")
    value = key.value("a")                  # answered (after DELAY): a Value to read later
    calls = {
        "info": key.info,
        "last_write": lambda: key.last_write,
        "class_name": lambda: key.class_name,
        "name": lambda: key.name,
        "subkey_names": key.subkey_names,
        "values": lambda: list(key.values()),
        "value": lambda: key.value("zz"),
        "contains": lambda: "zz" in key,
        "security_descriptor": key.security_descriptor,
        "value.data": lambda: value.data,   # the cache is stale by now: GET_VALUE again
        "value.value": lambda: value.value,
    }
    ticker = _Ticker()
    ticker.start()
    stalled = {}
    try:
        for what, call in calls.items():
            before, t0 = ticker.ticks, time.monotonic()
            try:
                call()
            except OSError:
                pass                        # the fake's error replies
            took = time.monotonic() - t0
            if took >= DELAY * 0.8 and ticker.ticks - before < 10:
                stalled[what] = (round(took, 2), ticker.ticks - before)
    finally:
        ticker.stop = True
        ticker.join()
    assert not stalled, f"these calls held the GIL while the agent was slow (seconds, ticks): {stalled}"


def test_remote_value_data_is_not_a_view_of_scratch(slow_hive):
    """Value.data of a remote value: the bytes the backend hands back live in
    per-thread scratch that the next remote call reuses, so the memoryview
    must hold its own copy (it showed the next value's bytes, or freed memory)."""
    key = slow_hive.open("Sub")
    a = key.value("a").data
    b = key.value("b").data
    assert bytes(a) == b"aaaa" and bytes(b) == b"bbbb"
    sd = None
    try:
        sd = key.security_descriptor()
    except OSError:
        pass                                # the fake has none to give
    assert sd is None
    assert bytes(a) == b"aaaa"
