"""The cost of regfast.hooks' hook point in Connection.request (group
"hooks-overhead"): 10,000 requests per round against an in-process fake
transport, so the ratios show the Python-side cost alone (a real agent round
trip under Wine, ~50-100 us, would hide it in noise).

Rows, side by side in one run:

* ``no hook point``   — request() without the check: start() + finish()
* ``hook point, off`` — Connection.request as shipped, nothing installed: the
  one-global check
* ``profiler on``     — regfast.profile() recording every request
* ``pre+post hooks``  — a no-op pre and a no-op post callback

Run: ``pytest bench/bench_hooks.py`` (no hive, no Wine needed).

Group "hooks-walk": a Key walk (subkeys, values, every value decoded) of a
real corpus hive (../shared/corpus/plaso__regf_UsrClass.dat, 7,505 keys,
~30,000 rf_* calls per walk), side by side:

* ``off``          — nothing installed (one pointer test per rf_* call)
* ``profiler on``  — regfast.profile() around each walk: the C operation log
  (src/core/rf_oplog.c) keeps a row per rf_* call, handed to numpy in bulk;
  each round is a new profile, so key paths are learnt afresh
* ``post hook``    — a no-op Python post hook: one Python call per rf_* call
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

import regfast
from regfast.live import _agent_ops as ops
from regfast.live import protocol as A
from regfast import hooks

N = 10_000
_PAYLOAD = struct.pack("<I", 0x10001) + A.str16("value")       # a GET_VALUE request
_ANSWER = struct.pack("<II", 1, 4) + b"x\0y\0"


class FakeConn:
    """start()/finish() that answer at once: the transport taken out of the figure."""

    def start(self, op: int, payload: bytes = b""):
        return 1, None

    def finish(self, rid, p, op, timeout=None, filename=None) -> bytes:
        return _ANSWER

    request = A.Connection.request        # the real method, hook point included


def _request_without_hook_point(self, op, payload=b"", *, timeout=None, filename=None):
    """Connection.request as it was before the hook point (the baseline)."""
    rid, p = self.start(op, payload)
    return self.finish(rid, p, op, timeout, filename)


def _baseline(conn: FakeConn) -> None:
    req = _request_without_hook_point.__get__(conn)
    for _ in range(N):
        req(ops.OP_GET_VALUE, _PAYLOAD)


def _shipped(conn: FakeConn) -> None:
    req = conn.request
    for _ in range(N):
        req(ops.OP_GET_VALUE, _PAYLOAD)


@pytest.mark.parametrize("row", ["no hook point", "hook point, off", "profiler on", "pre+post hooks"])
def bench_request_hook_overhead(benchmark, row):
    benchmark.group = "hooks-overhead (10,000 requests, fake transport)"
    benchmark.name = row
    conn = FakeConn()
    assert not hooks.active()
    if row == "no hook point":
        benchmark(_baseline, conn)
        return
    if row == "hook point, off":
        benchmark(_shipped, conn)
        return
    if row == "profiler on":
        with regfast.profile(capacity=1 << 16) as prof:
            benchmark.pedantic(_shipped, args=(conn,), rounds=20, warmup_rounds=1)
        assert len(prof) >= 20 * N
        return
    with hooks.pre(lambda op: None), hooks.post(lambda op: None):
        benchmark(_shipped, conn)


CORPUS = Path(os.environ.get("REGFAST_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus")
WALK_HIVE = CORPUS / "plaso__regf_UsrClass.dat"


def _walk(key) -> int:
    n = 1
    for v in key.values():
        v.value
    for sub in key.subkeys():
        n += _walk(sub)
    return n


@pytest.mark.parametrize("row", ["off", "profiler on", "post hook"])
def bench_key_walk_hook_overhead(benchmark, row):
    if not WALK_HIVE.exists():
        pytest.skip(f"{WALK_HIVE} is not here (set REGFAST_CORPUS)")
    benchmark.group = "hooks-walk (Key walk of plaso__regf_UsrClass.dat)"
    benchmark.name = row
    assert not hooks.active()
    with regfast.open_hive(WALK_HIVE) as hive:
        root = hive.root
        if row == "off":
            benchmark(_walk, root)
        elif row == "profiler on":

            def profiled() -> None:
                with regfast.profile() as prof:
                    _walk(root)
                assert len(prof) > 7_000

            benchmark(profiled)
        else:
            with hooks.post(lambda op: None):
                benchmark(_walk, root)
