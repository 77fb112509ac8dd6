"""regfast.watch / awatch through regfast-agent under Wine: what changed, per
filter, for 100 keys, across the re-arm window, and ends that never hang.

Wine fires NAME and LAST_SET notifications faithfully
(shared/reference/wine-registry.md); it never fires ATTRIBUTES or SECURITY
(not even on RegSetKeySecurity) and does not signal a watched key's own
deletion, so those positive cases are Windows-only here: a Wine stub must
never make a test pass.
"""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

import regfast
from regfast.live import registry as live
from regfast.hive.diff import diff_snapshots
from regfast.live.watch import ATTRIBUTES, LAST_SET, NAME, SECURITY, Watch
from wine_session import registry, sandbox, wine  # noqa: F401  (shared fixtures)

QUIET = 0.8          # seconds without an event that count as "it did not fire"


@pytest.fixture
def writer(wine):
    """A second agent in the same prefix: writes from another process."""
    reg = wine.connect()
    yield reg
    reg.close()


def _other(writer: live.Registry, key: live.Key) -> live.Key:
    return writer.open_key("HKCU", key.path, access=live.KEY_ALL_ACCESS)


def _changes(d) -> set[tuple[str, str, str | None]]:
    root = d.key.full_path
    return {(c.kind, c.path[len(root):].lstrip("\\"), c.name) for c in d}


def test_value_and_key_changes_from_other_processes(wine, writer, sandbox):
    sandbox.set_value("keep", "same")
    sandbox.set_value("old", 1)
    with regfast.watch([sandbox], keep_data=True) as w:
        other = _other(writer, sandbox)
        other.set_value("old", 2)
        d = w.get(10)
        assert d is not None and d.key is sandbox and d.seq >= 1
        (c,) = list(d)
        assert (c.kind, c.name, c.old_value, c.new_value) == ("value_changed", "old", 1, 2)
        assert c.old.hash != c.new.hash
        # `wine reg add`: yet another process
        wine.reg("add", "HKCU\\" + sandbox.path + r"\Sub", "/v", "n", "/t", "REG_SZ", "/d", "hi", "/f")
        got = set()
        while ("value_added", "Sub", "n") not in got:
            d = w.get(10)
            assert d is not None, got
            got |= _changes(d)
        assert ("key_added", "Sub", None) in got
        other.delete_key("Sub", tree=True)
        other.delete_value("old")
        got = set()
        while {("key_removed", "Sub", None), ("value_removed", "", "old")} - got:
            d = w.get(10)
            assert d is not None, got
            got |= _changes(d)
        extra = w.get(QUIET)
        assert extra is None, (got, _changes(extra))


def test_hashes_only_by_default(writer, sandbox):
    sandbox.set_value("v", "a")
    with regfast.watch(sandbox) as w:
        _other(writer, sandbox).set_value("v", "b")
        d = w.get(10)
        (c,) = list(d)
        assert c.kind == "value_changed" and c.old.data is None and c.new.data is None
        assert c.old.size == 4 and c.new.size == 4
        from regfast.hive.diff import fnv1a64
        assert c.old.hash == fnv1a64("a\0".encode("utf-16-le"))
        assert sandbox[c.name] == "b"         # the new data is one read away


def test_each_filter_fires_for_its_own_kind(writer, sandbox):
    keys = {f: sandbox.create_key(n) for f, n in ((NAME, "n"), (LAST_SET, "l"), (ATTRIBUTES, "a"),
                                                 (SECURITY, "s"))}
    watches = {f: regfast.watch(k, filter=f) for f, k in keys.items()}
    try:
        others = {f: _other(writer, k) for f, k in keys.items()}
        for o in others.values():                 # a value: LAST_SET only
            o.set_value("v", 1)
        assert watches[LAST_SET].get(10) is not None
        time.sleep(QUIET)
        for f in (NAME, ATTRIBUTES, SECURITY, LAST_SET):
            assert watches[f].get(0) is None, f"filter {f} fired on a value write"
        for o in others.values():                 # a subkey: NAME only
            o.create_key("child")
        d = watches[NAME].get(10)
        assert d is not None and ("key_added", "child", None) in _changes(d)
        time.sleep(QUIET)
        for f in (NAME, ATTRIBUTES, SECURITY, LAST_SET):
            assert watches[f].get(0) is None, f"filter {f} fired on a subkey creation"
        # subtree: a value in a subkey is a LAST_SET change of the watched tree
        others[LAST_SET].open("child").set_value("deep", 2)
        d = watches[LAST_SET].get(10)
        assert d is not None and ("value_added", "child", "deep") in _changes(d)
    finally:
        for w in watches.values():
            w.stop()


def test_subtree_false_ignores_subkeys(writer, sandbox):
    sandbox.create_key("child")
    with regfast.watch(sandbox, subtree=False) as w:
        writer.open_key("HKCU", sandbox.path + r"\child", access=live.KEY_ALL_ACCESS).set_value("x", 1)
        extra = w.get(QUIET)
        assert extra is None, (got, _changes(extra))
        _other(writer, sandbox).set_value("top", 1)
        d = w.get(10)
        assert _changes(d) == {("value_added", "", "top")}


def test_filter_validation(sandbox):
    for bad in (0, 0x40, 0x10, -1, 0x10000004, True):
        with pytest.raises(OSError) as e:
            regfast.watch(sandbox, filter=bad)
        assert e.value.winerror == 87
    with pytest.raises(OSError) as e:
        regfast.awatch(sandbox, filter=0)
    assert e.value.winerror == 87
    with pytest.raises(TypeError):
        regfast.watch([object()])
    with pytest.raises(ValueError):
        regfast.watch([])


def test_timeout_and_max_keys_validation(sandbox):
    """A NaN timeout used to spin forever in get() (NaN is neither <= 0 nor
    a wait Condition.wait honours); a negative max_keys escaped as
    OverflowError. Both are winerror 87 now, before anything starts."""
    nan = float("nan")
    outcome: list = []

    def iterate(make):
        try:
            outcome.append(next(iter(make()), None))
        except OSError as e:
            outcome.append(e.winerror)

    for make in (lambda: regfast.watch(sandbox, timeout=nan),
                 lambda: [regfast.watch(sandbox, timeout=0.2).get(nan)]):
        outcome.clear()
        t = threading.Thread(target=iterate, args=(make,), daemon=True)
        t.start()
        t.join(10)
        assert not t.is_alive() and outcome == [87], outcome
    for bad in (-1, 2 ** 32, 1.5, True):
        with pytest.raises(OSError) as e:
            regfast.watch(sandbox, max_keys=bad)
        assert e.value.winerror == 87
    for bad in (nan, "1", True):
        with pytest.raises(OSError) as e:
            regfast.awatch(sandbox, timeout=bad)
        assert e.value.winerror == 87
    t0 = time.monotonic()
    assert list(regfast.watch(sandbox, timeout=-1)) == []     # a negative timeout polls once
    assert time.monotonic() - t0 < 5


def test_a_hundred_keys(registry, writer, sandbox):
    keys = [sandbox.create_key(f"k{i:03d}") for i in range(100)]
    with regfast.watch(keys, filter=LAST_SET) as w:
        assert len(w.keys) == 100 and registry.stats()["watches"] >= 1
        targets = [0, 62, 63, 64, 99]            # first, edges of the 63-key wait threads, last
        for i in targets:
            writer.open_key("HKCU", keys[i].path, access=live.KEY_ALL_ACCESS).set_value("hit", i)
        seen = {}
        while len(seen) < len(targets):
            d = w.get(10)
            assert d is not None, seen
            seen[keys.index(d.key)] = _changes(d)
        assert sorted(seen) == targets
        assert all(v == {("value_added", "", "hit")} for v in seen.values())
        extra = w.get(QUIET)
        assert extra is None, (got, _changes(extra))


def test_change_while_rearming_is_not_lost(writer, sandbox):
    """The agent sleeps 400 ms between a signal and the re-arm (a test hook):
    a write made in that window fires nothing, yet must show in the diff,
    because the snapshot is taken after the re-arm."""
    w = Watch([sandbox], filter=LAST_SET, _delay_ms=400)
    try:
        other = _other(writer, sandbox)
        other.set_value("first", 1)
        time.sleep(0.15)                          # the agent is inside the window now
        other.set_value("second", 2)
        got = set()
        deadline = time.monotonic() + 10
        while {("value_added", "", "first"), ("value_added", "", "second")} - got:
            d = w.get(max(0.1, deadline - time.monotonic()))
            assert d is not None, got
            got |= _changes(d)
        # bursts: 40 writes as fast as another process can make them; the
        # notifications merge, no value goes missing, and what was reported
        # adds up to the key's state
        names = {f"b{i:02d}" for i in range(40)}
        for n in sorted(names):
            other.set_value(n, n)
        got = set()
        deadline = time.monotonic() + 15
        while names - got:
            d = w.get(max(0.1, deadline - time.monotonic()))
            assert d is not None, sorted(names - got)
            got |= {c.name for c in d if c.kind == "value_added"}
        assert got == names
        assert w.get(1.0) is None
        assert not diff_snapshots(w.snapshot(sandbox), sandbox.snapshot())
    finally:
        w.stop()


def test_stop_and_close_end_iteration(writer, sandbox):
    k = sandbox.create_key("closing")
    w = regfast.watch(k)
    got: list = []
    t = threading.Thread(target=lambda: got.extend(w), daemon=True)
    t.start()
    _other(writer, k).set_value("x", 1)
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got and _changes(got[0]) == {("value_added", "", "x")}
    k.close()                                     # closing the watched key ends the watch
    t.join(10)
    assert not t.is_alive() and w.stopped
    # stop() from another thread
    w2 = regfast.watch(sandbox)
    t2 = threading.Thread(target=lambda: list(w2), daemon=True)
    t2.start()
    time.sleep(0.2)
    w2.stop()
    t2.join(10)
    assert not t2.is_alive()
    w2.stop()                                     # idempotent
    # an idle timeout ends a for loop
    t0 = time.monotonic()
    assert list(regfast.watch(sandbox, timeout=0.5)) == []
    assert time.monotonic() - t0 < 5


def _iterate_in_thread(w) -> tuple[threading.Thread, list]:
    """Iterates watch `w` in a daemon thread; the list gets its diffs, then
    "ended" when the iteration ends, or the OSError that ended it."""
    got: list = []

    def consume():
        try:
            got.extend(w)
            got.append("ended")
        except OSError as e:
            got.append(e)

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    return t, got


def test_agent_dies_during_watch(wine, sandbox):
    reg = wine.connect()
    k = reg.open_key("HKCU", sandbox.path)
    w = regfast.watch(k)
    t, got = _iterate_in_thread(w)
    time.sleep(0.2)
    reg.conn.proc.kill()
    t.join(10)
    assert not t.is_alive() and got and isinstance(got[-1], ConnectionError), got
    assert "regfast-agent" in str(got[-1])
    w.stop()
    reg.close()


def test_closing_the_registry_ends_a_running_watch(wine, sandbox):
    """reg.close() while another thread iterates a watch of its keys: the
    iteration ends and the agent exits on its own. The watch used to pin the
    hive (and so the connection) until its next() failed: close() waited
    its full 5 s and then killed the agent."""
    reg = wine.connect()
    k = reg.open_key("HKCU", sandbox.path)
    w = regfast.watch(k)
    t, got = _iterate_in_thread(w)
    time.sleep(0.3)
    t0 = time.monotonic()
    reg.close()
    took = time.monotonic() - t0
    t.join(10)
    assert not t.is_alive() and got == ["ended"], got
    assert reg.proc.returncode == 0, reg.proc.returncode      # exited, not killed
    assert took < 4.5, took
    w.stop()


def test_awatch(writer, sandbox):
    async def main():
        other = _other(writer, sandbox)
        seen = []
        async with regfast.awatch(sandbox, timeout=10) as aw:
            loop = asyncio.get_running_loop()
            loop.call_later(0.2, other.set_value, "async", "yes")
            async for d in aw:
                seen.append(d)
                if any(c.name == "async" for c in d):
                    break
        return seen

    seen = asyncio.run(main())
    assert seen and ("value_added", "", "async") in _changes(seen[-1])
    # an idle timeout ends `async for`
    async def idle():
        return [d async for d in regfast.awatch(sandbox, timeout=0.3)]
    assert asyncio.run(idle()) == []


def test_lost_keys_and_multiple_connections(wine, writer, sandbox):
    """Keys of two connections in one watch; each notification names its key."""
    k2 = _other(writer, sandbox).create_key("viaB")
    k1 = sandbox.create_key("viaA")
    with regfast.watch([k1, k2]) as w:
        writer.open_key("HKCU", k1.path, access=live.KEY_ALL_ACCESS).set_value("a", 1)
        sandbox.open("viaB").set_value("b", 2)
        seen = {}
        while len(seen) < 2:
            d = w.get(10)
            assert d is not None, seen
            seen[d.key.path.rpartition("\\")[2]] = _changes(d)
        assert seen == {"viaA": {("value_added", "", "a")}, "viaB": {("value_added", "", "b")}}


def test_snapshots_see_security_descriptor_changes(writer, sandbox):
    """What a SECURITY/ATTRIBUTES notification is about must reach the diff:
    snapshots carry a hash of owner+group+DACL. Wine never *fires* those
    notifications (see test_inproc.py for the positive watch on Windows), so
    here the snapshot and diff machinery is checked directly."""
    child = sandbox.create_key("c")
    before = sandbox.snapshot()
    from regfast.hive.diff import fold
    assert before.keys[""].security is not None and before.keys[fold("c")].security is not None
    _other(writer, child).grant("S-1-1-0", "read", inherit=False)       # Everyone: read
    after = sandbox.snapshot()
    d = diff_snapshots(before, after)
    assert [(c.kind, c.path) for c in d] == [("security_changed", child.full_path)]
    assert "security descriptors changed" in d.summary()
    assert not diff_snapshots(after, sandbox.snapshot())                 # stable when nothing moves
    sandbox.set_value("v", 1)                                            # a value write is not one
    assert [c.kind for c in diff_snapshots(after, sandbox.snapshot())] == ["value_added"]


def test_awatch_outlives_its_event_loop(registry, sandbox):
    """An `async for` that ended by its idle timeout leaves the watch running
    (it lives as long as its keys, as a Win32 handle would); when the keys
    close later, the watch thread's wakeup must not call into the event loop
    asyncio.run() has closed meanwhile (it raised RuntimeError in the
    regfast-watch thread)."""
    key = registry.open_key("HKCU", sandbox.path)      # its own handle: closing it ends the watch
    before = set(threading.enumerate())

    async def idle():
        return [d async for d in regfast.awatch(key, timeout=0.2)]

    assert asyncio.run(idle()) == []
    ours = [t for t in threading.enumerate() if t not in before and t.name == "regfast-watch"]
    assert ours, "the watch thread"
    errors = []
    old, threading.excepthook = threading.excepthook, lambda a: errors.append(a.exc_value)
    try:
        key.close()
        for t in ours:
            t.join(10)
            assert not t.is_alive()
    finally:
        threading.excepthook = old
    assert errors == []


def test_a_malformed_change_snapshot_ends_the_watch_with_its_error():
    """A change notification whose snapshot does not parse (bytes left over,
    cut short) ended the thread reading the rf_watch with an exception the
    reader never saw: the watch went silent. It now ends the watch, and the
    reader gets the error (winerror 13). No Wine needed: the thread's loop
    is driven with a stand-in rf_watch."""
    import struct
    import threading
    import types

    from regfast.live import watch as watch_mod
    from regfast.live.watch import _Group

    class FakeRfWatch:
        def __init__(self, payload):
            self.events = [(1, 0, 1, 0, payload)]
            self.stopped = False

        def next(self, timeout):
            return self.events.pop(0) if self.events else None

        def stop(self):
            self.stopped = True

    good = struct.pack("<II", 1, 0) + struct.pack("<I", 0) + struct.pack("<QQI", 1, 0, 0)
    for payload in (good + b"junk", good[:-3]):
        w = Watch.__new__(Watch)
        w._cond = threading.Condition()
        w._stopped, w._error, w._ready, w._wakeups = False, None, [], []
        w._states = [types.SimpleNamespace(key=None)]
        g = _Group(None, 0, 0, 0)
        g.rfw = FakeRfWatch(payload)
        w._groups = [g]
        real_label = watch_mod._label
        watch_mod._label = lambda key: "HKCU\\X"    # (no live key behind the stand-in)
        try:
            w._pump(g, [0])                 # returns: the watch is over
        finally:
            watch_mod._label = real_label
        assert g.ended and g.rfw.stopped
        assert isinstance(w._error, OSError) and w._error.winerror == 13
        assert "snapshot is malformed" in str(w._error)


def _stand_in_watch(rfws, wakeups=()):
    """A Watch over stand-in rf_watches (one group each), its reader threads
    running: the error paths without Wine."""
    import threading
    import types

    from regfast.live.protocol import Reader
    from regfast.live.snapshot import parse_snapshot
    from regfast.live.watch import _Group

    w = Watch.__new__(Watch)
    w._cond = threading.Condition()
    w._stopped, w._error, w._ready, w._wakeups = False, None, [], list(wakeups)
    w.keys = [types.SimpleNamespace(closed=False) for _ in rfws]
    empty = parse_snapshot(Reader(b"\0" * 8), "HKCU\\X")
    w._states = [types.SimpleNamespace(key=None, lost=None, dirty=False, base=empty, latest=None, seq=0,
                                       received=0) for _ in rfws]
    w._groups = []
    for i, rfw in enumerate(rfws):
        g = _Group(types.SimpleNamespace(closed=False), 0, 0, 0)
        g.rfw = rfw
        g.thread = threading.Thread(target=w._pump, args=(g, [i]), daemon=True)
        w._groups.append(g)
    for g in w._groups:
        g.thread.start()
    return w


class _StandInRfWatch:
    def __init__(self, events=()):
        self.events = list(events)
        self.stopped = self.closed = False

    def next(self, timeout):
        if self.stopped:
            e = OSError("the watch is over")
            e.winerror = 259
            raise e
        if self.events:
            return self.events.pop(0)
        time.sleep(0.01)
        return None

    def stop(self):
        self.stopped = True

    def close(self):
        self.closed = True


def test_a_watch_that_died_still_stops_every_group(monkeypatch):
    """get() raising the error a group died with marked the watch stopped,
    and stop() (what `with` does) then returned at once: the other groups'
    threads ran on and their hives stayed pinned. And an exception from
    anything else in the reader (a wakeup that raises) ended the thread
    with the watch still "running": get() waited forever."""
    import struct

    from regfast.live import watch as watch_mod
    monkeypatch.setattr(watch_mod, "_label", lambda key: "HKCU\\X")
    good = struct.pack("<II", 1, 0) + struct.pack("<I", 0) + struct.pack("<QQI", 1, 0, 0)
    bad, other = _StandInRfWatch([(1, 0, 1, 0, good + b"junk")]), _StandInRfWatch()
    w = _stand_in_watch([bad, other])
    with pytest.raises(OSError) as e:
        w.get(5)
    assert e.value.winerror == 13
    # get() ended the watch with its error: every group stopped, joined, closed
    assert bad.stopped and bad.closed and other.stopped and other.closed
    assert not any(g.thread.is_alive() for g in w._groups)
    w.stop()                                # (idempotent)

    calls = []

    def wake():
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("a wakeup that raises")

    rfw = _StandInRfWatch([(1, 0, 1, 0, good)])
    w = _stand_in_watch([rfw], [wake])
    with pytest.raises(ValueError, match="a wakeup that raises"):
        for _ in range(3):                  # (the change it recorded first, then the error)
            w.get(5)
    assert rfw.stopped and rfw.closed and w.stopped


def test_an_interrupted_stop_is_finished_by_the_next(monkeypatch):
    """stop() marked the whole watch torn down before ending its groups: an
    interrupt on the first (Ctrl-C while it joined a thread), or a wakeup
    that raised, left the others running for good (a later stop() and the
    watch's collection returned at once). Each group now counts as done
    once its rf_watch is closed."""
    from regfast.live import watch as watch_mod
    monkeypatch.setattr(watch_mod, "_label", lambda key: "HKCU\\X")

    class Interrupted(_StandInRfWatch):
        def stop(self):
            super().stop()
            if not getattr(self, "raised", False):
                self.raised = True
                raise KeyboardInterrupt

    first, second, third = Interrupted(), _StandInRfWatch(), _StandInRfWatch()
    w = _stand_in_watch([first, second, third])
    with pytest.raises(KeyboardInterrupt):
        w.stop()
    assert not (second.stopped or third.stopped)
    w.stop()
    assert all(r.stopped and r.closed for r in (first, second, third))

    def wake():
        if threading.current_thread() is threading.main_thread():
            raise ValueError("a wakeup that raises")

    one, two = _StandInRfWatch(), _StandInRfWatch()
    w = _stand_in_watch([one, two], [wake])
    with pytest.raises(ValueError):
        w.stop()
    assert all(r.stopped and r.closed for r in (one, two))
    w.stop()                                # (done: nothing left, nothing raised)
