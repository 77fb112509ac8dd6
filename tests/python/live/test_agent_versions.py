"""regfast-agent's protocol versions, one superset chain (src/agent/ag_ops.def,
AG_PROTO): 2 the oldest served; 3 = every frame after HELLO's reply carries a
CRC-32 trailer, payloads as in 2 (what src/regfast/live/protocol.py speaks); 4 = the
trailer plus the layouts of the C remote backend (column READ_VALUES,
KEY_INFO's stored name, SET_SECURITY_SD, volatile OPEN_KEY). Raw frames
against the real agent under Wine: HELLO agrees on the highest version both
sides speak, the first HELLO fixes it, and a session answers in its own
version's layouts and refuses what a later version adds.
"""
from __future__ import annotations

import struct
import subprocess
import threading
import zlib

import pytest

from regfast.live import _agent_ops as ops
from regfast.live import protocol as A
from regfast.live import registry as live

from wine_session import registry, sandbox, wine  # noqa: F401  (shared fixtures)


class _Raw:
    """One agent process driven frame by frame."""

    def __init__(self, wine) -> None:  # noqa: F811
        self.p = subprocess.Popen(wine.cmd, env=wine.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
        self.watchdog = threading.Timer(90, self.p.kill)
        self.watchdog.start()
        self.version = 2            # the framing until a HELLO reply agrees on another
        self.rid = 0

    def ask(self, op: int, payload: bytes = b"") -> tuple[int, bytes]:
        """(status, the reply after it); checks the reply's trailer when framed."""
        self.rid += 1
        self.p.stdin.write(A.frame(op, self.rid, payload, self.version))
        self.p.stdin.flush()
        head = self.p.stdout.read(A.HEADER)
        _, rop, n, rid = struct.unpack_from("<HHII", head)
        body = self.p.stdout.read(n)
        if self.version >= ops.V_TRAILER:
            assert struct.unpack("<I", self.p.stdout.read(4))[0] == zlib.crc32(body)
        assert (rop, rid) == (op | A.RESPONSE, self.rid)
        return struct.unpack_from("<i", body)[0], body[4:]

    def hello(self, lo: int, hi: int) -> int:
        st, body = self.ask(ops.OP_HELLO, b"RFAG" + struct.pack("<HH", lo, hi))
        if st == 0:
            self.version = struct.unpack_from("<H", body)[0]
            assert f"protocol {self.version} on".encode() in body
        return st if st else -self.version

    def open(self, path: str, flags: int = 0) -> tuple[int, int]:
        st, body = self.ask(ops.OP_OPEN_KEY, struct.pack("<IIII", live.HKCU, 0, live.KEY_ALL_ACCESS, flags)
                            + A.str16(path))
        return st, (struct.unpack_from("<I", body)[0] if st == 0 else 0)

    def close(self) -> None:
        self.watchdog.cancel()
        self.p.kill()
        self.p.wait()
        self.p.stdin.close()
        self.p.stdout.close()


@pytest.fixture
def raw(wine):  # noqa: F811
    r = _Raw(wine)
    yield r
    r.close()


@pytest.mark.parametrize("lo, hi, agreed", [(2, 4, 4), (2, 3, 3), (3, 3, 3), (2, 2, 2), (4, 9, 5), (2, 5, 5)])
def test_hello_agrees_on_the_highest_shared_version(raw, lo, hi, agreed):
    assert raw.hello(lo, hi) == -agreed
    st, body = raw.ask(ops.OP_PING, b"framed as agreed")       # the framing switched for both sides
    assert st == 0 and body == b"framed as agreed"


def test_hello_outside_the_served_range_is_refused(raw):
    assert raw.hello(ops.VERSION_MAX + 1, 9) == 120
    assert raw.hello(1, 1) == 120
    assert raw.hello(ops.VERSION_MIN, ops.VERSION_MAX) == -ops.VERSION_MAX


def test_the_first_hello_fixes_the_version(raw):
    assert raw.hello(2, 4) == -4
    assert raw.hello(2, 3) == 120            # a later HELLO cannot change it...
    assert raw.hello(3, 4) == -4             # ...only agree with it
    assert raw.ask(ops.OP_PING, b"x") == (0, b"x")


def _key_info_name(body: bytes) -> tuple[int, bytes]:
    """(class bytes, what follows the class) of a KEY_INFO reply."""
    (n_class,) = struct.unpack_from("<I", body, 36)
    return n_class, body[40 + n_class:]


def test_version_3_answers_in_version_2_layouts(raw, sandbox):
    """agent.py's version: the trailer, and nothing of version 4."""
    assert raw.hello(2, 3) == -3
    st, h = raw.open(sandbox.path)
    assert st == 0
    st, body = raw.ask(ops.OP_KEY_INFO, struct.pack("<I", h))
    assert st == 0 and _key_info_name(body)[1] == b""                  # no stored name
    st, _ = raw.ask(ops.OP_READ_VALUES, struct.pack("<IIII", h, 0x100, A.ALL, 0))
    assert st == 87                                                    # no column replies
    st, _ = raw.open(sandbox.path + r"\volatile", flags=1 | 2)
    assert st == 87                                                    # no volatile OPEN_KEY
    st, body = raw.ask(ops.OP_SET_SECURITY_SD, struct.pack("<II", h, 4) + bytes(20))
    assert st == 120 and b"protocol 4" in body                         # no such op before 4
    st, _ = raw.ask(ops.OP_READ_VALUES, struct.pack("<IIII", h, 0, A.ALL, 0))
    assert st == 0                                                     # rows, as in 2


def test_version_4_adds_the_remote_layouts(raw, sandbox):
    assert raw.hello(4, 4) == -4
    st, h = raw.open(sandbox.path)
    st, body = raw.ask(ops.OP_KEY_INFO, struct.pack("<I", h))
    name = sandbox.path.rsplit("\\", 1)[1].encode("utf-16-le")
    assert st == 0 and _key_info_name(body)[1] == struct.pack("<I", len(name)) + name
    st, body = raw.ask(ops.OP_READ_VALUES, struct.pack("<IIII", h, 0x100, A.ALL, 0))
    assert st == 0 and struct.unpack_from("<III", body) == (0, 0, 0)  # columns: no rows, no arena, no names
    st, _ = raw.open(sandbox.path + r"\volatile", flags=1 | 2)
    assert st == 0


def test_version_4_has_no_links(raw, sandbox):
    assert raw.hello(4, 4) == -4
    st, h = raw.open(sandbox.path)
    raw.open(sandbox.path + r"\sub", flags=1)
    st, body = raw.ask(ops.OP_SUBKEYS, struct.pack("<I", h))
    name = "sub".encode("utf-16-le")
    assert st == 0 and body == struct.pack("<IQI", 1, struct.unpack_from("<Q", body, 4)[0], len(name)) + name
    st, body = raw.ask(ops.OP_SUBKEYS, struct.pack("<II", h, 1))
    assert st == 87                                                    # no flags before 5
    st, body = raw.ask(ops.OP_KEY_IS_LINK, struct.pack("<I", h) + A.str16("sub"))
    assert st == 120 and b"protocol 5" in body                         # no such op before 5


def test_version_5_hints_and_tells_links(raw, sandbox):
    assert raw.hello(5, 5) == -5
    st, h = raw.open(sandbox.path)
    raw.open(sandbox.path + r"\inner\deeper", flags=1)
    raw.open(sandbox.path + r"\leaf", flags=1)

    def entries(body):
        (n,), at, out = struct.unpack_from("<I", body), 4, []
        for _ in range(n):
            ln = struct.unpack_from("<I", body, at + 8)[0]
            name = body[at + 12:at + 12 + ln].decode("utf-16-le")
            out.append((name, struct.unpack_from("<I", body, at + 12 + ln)[0]))
            at += 16 + ln
        assert at == len(body)
        return sorted(out)
    st, body = raw.ask(ops.OP_SUBKEYS, struct.pack("<II", h, 0))
    assert st == 0 and entries(body) == [("inner", 0), ("leaf", 0)]       # not asked: 0s
    st, body = raw.ask(ops.OP_SUBKEYS, struct.pack("<II", h, 1))
    assert st == 0 and entries(body) == [("inner", 2), ("leaf", 1)]       # leaf's node lists none, inner's some
    st, _ = raw.ask(ops.OP_SUBKEYS, struct.pack("<II", h, 2))
    assert st == 87                                                    # an unknown flag
    st, _ = raw.ask(ops.OP_SUBKEYS, struct.pack("<I", h))
    assert st == 87                                                    # the flags are not optional
    st, body = raw.ask(ops.OP_KEY_IS_LINK, struct.pack("<I", h) + A.str16("leaf"))
    assert st == 0 and body == struct.pack("<I", 0)
    st, body = raw.ask(ops.OP_KEY_IS_LINK, struct.pack("<I", h) + A.str16("missing"))
    assert st == 2
    st, body = raw.ask(ops.OP_KEY_IS_LINK, struct.pack("<I", h) + A.str16(""))
    assert st == 87


def test_version_5_gives_no_hints_where_hives_are_mounted(raw):
    """Windows mounts each hive on a link node under \\REGISTRY\\MACHINE and
    \\REGISTRY\\USER that lists no subkeys of its own, so a hint there would
    make SOFTWARE a leaf to the walk. Wine has no mount nodes: a leaf made
    right under HKU stands for one."""
    assert raw.hello(5, 5) == -5
    st, body = raw.ask(ops.OP_OPEN_KEY, struct.pack("<IIII", live.HKU, 0, live.KEY_ALL_ACCESS, 1)
                       + A.str16("regfast-mount-test"))
    assert st == 0
    st, body = raw.ask(ops.OP_OPEN_KEY, struct.pack("<IIII", live.HKU, 0, live.KEY_ALL_ACCESS, 0) + A.str16(""))
    assert st == 0
    (hku,) = struct.unpack_from("<I", body)
    try:
        st, body = raw.ask(ops.OP_SUBKEYS, struct.pack("<II", hku, 1))
        assert st == 0
        (n,), at, flags = struct.unpack_from("<I", body), 4, {}
        for _ in range(n):
            ln = struct.unpack_from("<I", body, at + 8)[0]
            flags[body[at + 12:at + 12 + ln].decode("utf-16-le")] = struct.unpack_from("<I", body, at + 12 + ln)[0]
            at += 16 + ln
        assert flags["regfast-mount-test"] == 0 and set(flags.values()) == {0}
    finally:
        st, _ = raw.ask(ops.OP_DELETE_KEY, struct.pack("<II", hku, 0) + A.str16("regfast-mount-test"))
        assert st == 0
