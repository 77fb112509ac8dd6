"""A hive closed while one of its calls runs — by Python code that runs
inside the call (a generator passed as `names`, a hook or profiler
callback) or by another thread — must never leave the call reading an
unmapped hive or a freed handle: the call finishes (or raises winerror 6)
and the mapping goes once nothing uses it.

Each case runs in a child interpreter (tests/python/isolated.py): before
the fixes these died of SIGSEGV (Key.values() and Key.read_values() read
the value names from the mapping after unpinning it; read_values() took
the handle before consuming `names`/`types`; a hook's close() unmapped a
hive that the running rf_* call used unpinned)."""
from __future__ import annotations

import pytest
from conftest import corpus_path
from isolated import run_isolated

#: a real hive with a key of 236 values (more than any stack scratch)
HIVE = "plaso__NTUSER-WIN7.DAT"

PRELUDE = r"""
import sys, regfast
h = regfast.open_hive(sys.argv[1])
k = h.root.open(r"Software\Microsoft\Office\14.0\Common\MathFonts")
vals = list(k.values())
assert len(vals) == 236
small = h.root.open(r"Software\Microsoft\Office\14.0\Common")
"""

CASES = {
    # Python code run by read_values itself, before its C call
    "names_generator": r"""
def names():
    h.close()
    yield vals[0].name
try:
    k.read_values(names=names())
except OSError as e:
    assert e.winerror == 6, e
""",
    "types_generator": r"""
def types():
    h.close()
    yield regfast.REG_SZ
try:
    k.read_values(types=types())
except OSError as e:
    assert e.winerror == 6, e
""",
    # a hook's callback closing the hive during the call
    "post_hook_read_values": r"""
with regfast.hooks.post(lambda op: h.close()):
    try:
        vb = k.read_values()
        assert vb.names[0] == vals[0].name and len(vb.names) == 236
    except OSError as e:
        assert e.winerror == 6, e
""",
    "post_hook_values": r"""
with regfast.hooks.post(lambda op: h.close()):
    try:
        got = [v.name for v in k.values()]
        assert got == [v.name for v in vals]
    except OSError as e:
        assert e.winerror == 6, e
""",
    # calls made with the GIL held use the handle unpinned: a PRE hook's
    # close() used to free it before the C code ran
    "pre_hook_unpinned_calls": r"""
calls = [lambda: small.name, lambda: small.path, lambda: small.class_name, lambda: small.info(),
         lambda: small.read_values(), lambda: small.security(), lambda: list(small.subkeys()),
         lambda: small.open("MathFonts"), lambda: vals[0].key.value(vals[0].name).value]
for call in calls:
    h = regfast.open_hive(sys.argv[1])
    small = h.root.open(r"Software\Microsoft\Office\14.0\Common")
    vals = list(h.root.open(r"Software\Microsoft\Office\14.0\Common\MathFonts").values())
    with regfast.hooks.pre(lambda op: h.close()):
        try:
            call()
        except OSError as e:
            assert e.winerror == 6, e
    assert h.closed
    del small, vals
    h.close()                   # completes a close deferred by the hook
    assert not h.mapped
""",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_close_inside_a_call(case: str) -> None:
    path = corpus_path(HIVE)
    r = run_isolated(PRELUDE + CASES[case] + "\nprint('ok')\n", str(path), timeout=120)
    assert r.stdout.strip().endswith("ok")


THREADS = r"""
import random, threading, time
src = sys.argv[1]
rnd = random.Random(7)
for it in range(int(sys.argv[2])):
    h = regfast.open_hive(src)
    keys = list(h.walk())[:200]
    stop = threading.Event()
    def work(seed):
        r = random.Random(seed)
        while not stop.is_set():
            for key in keys[:40]:
                try:
                    if r.random() < 0.5:
                        key.read_values()
                    else:
                        [v.name for v in key.values()]
                except OSError as e:
                    assert e.winerror == 6, e
    ts = [threading.Thread(target=work, args=(it * 10 + j,)) for j in range(3)]
    for t in ts:
        t.start()
    time.sleep(rnd.random() * 0.01)
    h.close()
    time.sleep(0.003)
    stop.set()
    for t in ts:
        t.join()
print("ok")
"""


@pytest.mark.parametrize("hooked", [False, True])
def test_close_from_another_thread(hooked: bool) -> None:
    """Readers in three threads while the main thread closes the hive (a
    profiler on: its C log runs inside every rf_* call)."""
    path = corpus_path("ez__UsrClassDeletedBags.dat")
    code = THREADS
    if hooked:
        code = "prof = regfast.profile().start()\n" + code + "prof.stop()\n"
    r = run_isolated("import sys, regfast\n" + code, str(path), "60", timeout=300)
    assert r.stdout.strip().endswith("ok")
