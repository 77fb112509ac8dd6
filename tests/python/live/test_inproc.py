"""The live registry in-process, the path regfast.open_key() takes on Windows:
regfast.live.local.LocalRegistry, whose keys are regfast.Key objects served
by the NT backend through rf_* calls (no request bytes), and, for what rf_*
has no call for (privileges, hive files, MUI strings), the agent's C request
handler (agent_dispatch.c, ag_dispatch) called in this process through
regfast.live.inproc.InProcessConnection.

Key reads, writes, batches and watches in-process need the NT backend, which
exists only on Windows: those tests run in the Windows workflow (the same
Key API runs here over the remote backend: tests/python/test_key_api.py).

Where it runs:
- Windows (the wheel job of .github/workflows/windows.yml runs this file):
  the compiled handler, regfast._live, against the machine's registry, with
  the stdlib's winreg as the independent oracle.
- Here (Linux), for the request handler: regfast._live cannot load, so `AgentCore` stands in for it —
  the same C handler, run in regfast-agent under Wine, fed the same request
  payloads one call at a time, its event sink forwarded. That exercises
  everything of the in-process path but the ~40 lines of Cython glue, which
  only the Windows job can run; `wine reg` is the oracle. The C side of the
  in-process contract (ag_init's sink, ag_dispatch without frames,
  ag_shutdown, a second session) is tests/c/nt/test_agent_core.c under Wine.
"""
from __future__ import annotations

import io
import struct
import sys
import time

import pytest

import regfast
from regfast.live import _agent_ops as ops
from regfast.live import protocol as A
from regfast.live import registry as live
from regfast.exceptions import RegistryError, RegistryNotFoundError
from regfast.live.inproc import InProcessConnection
from regfast.live.local import LocalRegistry

ON_WINDOWS = sys.platform == "win32"
if not ON_WINDOWS:
    from wine_session import wine  # noqa: F401  (shared fixture: private prefix + agent)

BASE = r"Software\regfast-tests"


class AgentCore:
    """Stands in for regfast._live off Windows: the same request handler in
    regfast-agent under Wine, driven one request at a time with the payloads
    InProcessConnection builds; events go to the sink with their EVENT bits,
    as the native sink delivers them."""

    def __init__(self, session) -> None:
        self.sink = None
        self.requests = 0
        outer = self

        class _Conn(A.Connection):
            def _route_event(self, op: int, wid: int, payload: bytes) -> None:
                if outer.sink is not None:
                    outer.sink(op | A.EVENT, wid, payload)

        self.conn = _Conn(session.cmd, env=session.env)

    def set_event_sink(self, sink) -> None:
        self.sink = sink

    def dispatch(self, op: int, rid: int, payload: bytes) -> bytes:
        self.requests += 1
        _, p = self.conn.start(op, payload)
        assert p.event.wait(60), "the agent did not answer"
        if p.error is not None:
            raise p.error
        return struct.pack("<I", p.status) + p.payload

    def shutdown(self) -> None:
        self.conn.close()       # QUIT: the handler ends its watches (ENDED events), then exits


class Oracle:
    """What another writer sees: winreg on Windows, `wine reg` here."""

    def __init__(self, session) -> None:
        self.session = session

    def query(self, path: str, name: str) -> str | None:
        if ON_WINDOWS:
            import winreg
            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, path) as k:
                    return str(winreg.QueryValueEx(k, name)[0])
            except FileNotFoundError:
                return None
        r = self.session.reg("query", "HKCU\\" + path, "/v", name, check=False)
        if r.returncode != 0:
            return None
        line = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith(name))
        data = line.split(None, 2)[2] if len(line.split(None, 2)) > 2 else ""
        return str(int(data, 16)) if data.startswith("0x") else data

    def set_sz(self, path: str, name: str, data: str) -> None:
        if ON_WINDOWS:
            import winreg
            with winreg.CreateKey(winreg.HKEY_CURRENT_USER, path) as k:
                winreg.SetValueEx(k, name, 0, winreg.REG_SZ, data)
        else:
            self.session.reg("add", "HKCU\\" + path, "/v", name, "/t", "REG_SZ", "/d", data, "/f")


@pytest.fixture
def core(request):
    """(dispatcher, oracle): the native handler on Windows, AgentCore here."""
    if ON_WINDOWS:
        from regfast.live.inproc import native_dispatcher
        yield native_dispatcher(), Oracle(None)
    else:
        session = request.getfixturevalue("wine")
        disp = AgentCore(session)
        yield disp, Oracle(session)
        if not disp.conn.closed:
            disp.conn.close()


windows_only = pytest.mark.skipif(
    not ON_WINDOWS, reason="keys in-process are the NT backend's (rf_live_open): Windows only; "
    "test_key_api.py runs the same Key API over the remote backend here")


@pytest.fixture
def reg(core):
    """The in-process registry: the NT backend for keys, the handler (or its
    stand-in) for the requests rf_* has no call for."""
    disp, _ = core
    r = LocalRegistry(InProcessConnection(disp))
    yield r
    r.close()


_n = iter(range(1_000_000))


@pytest.fixture
def sandbox(reg, request):
    if not ON_WINDOWS:
        pytest.skip("keys in-process are the NT backend's: Windows only")
    path = f"{BASE}\\inproc-{request.node.name[:40]}-{next(_n)}"
    key = reg.create_key("HKCU", path)
    yield key
    if not reg.closed:
        key.close()
        try:
            reg.delete_key("HKCU", path, tree=True)
        except OSError:
            pass


def test_handshake_is_in_process_on_windows(reg):
    assert isinstance(reg.conn, InProcessConnection)
    assert reg.conn.version == A.VERSION and reg.conn.max_request == A.MAX_REQUEST
    assert reg.ping(b"in") == b"in" and reg.stats()["frames"] >= 0
    if ON_WINDOWS:
        import os
        assert reg.conn.pid == os.getpid()          # the handler runs in this very process


@windows_only
def test_reads_writes_and_batches_match_another_reader(core, reg, sandbox):
    _, oracle = core
    sandbox.set_value("s", "text")          # ASCII: `wine reg` prints the OEM code page
    sandbox.set_value("u", "é\u4e2d\U0001f600")
    sandbox.set_value("d", 7)
    sandbox.set_value("q", 1 << 40, type=regfast.io.writer.REG_QWORD)
    sandbox.set_value("m", ["a", "b"])
    sandbox.set_value("b", b"\x00\x01" * 5000)     # 10 KB: over the small-buffer paths
    assert oracle.query(sandbox.path, "s") == "text"
    assert oracle.query(sandbox.path, "d") == "7"
    oracle.set_sz(sandbox.path, "from_outside", "hello")
    assert sandbox["from_outside"] == "hello"
    assert (sandbox["s"], sandbox["d"], sandbox["q"], sandbox["m"]) == ("text", 7, 1 << 40, ["a", "b"])
    assert sandbox["u"] == "é\u4e2d\U0001f600"
    assert bytes(sandbox.value("b").data) == b"\x00\x01" * 5000
    batch = sandbox.read_values(["d", "s", "nope", "q"])
    assert list(batch.status) == [0, 0, 2, 0]
    assert batch.to_dict() == {"d": 7, "s": "text", "q": 1 << 40}
    assert sorted(v.name for v in sandbox.values()) == ["b", "d", "from_outside", "m", "q", "s", "u"]
    child = sandbox.create_key("child")
    assert [k.name for k in sandbox.subkeys()] == ["child"]
    assert sandbox.info().subkeys == 1 and sandbox.info().values == 7
    child.close()


@windows_only
def test_errors_are_the_backends_errors(reg, sandbox):
    with pytest.raises(RegistryNotFoundError) as e:
        sandbox["missing"]
    assert e.value.winerror == 2
    with pytest.raises(RegistryNotFoundError):
        reg.open_key("HKCU", BASE + r"\no\such\key")
    k = reg.open_key("HKCU", sandbox.path)
    k.close()
    with pytest.raises(RegistryError) as e:
        k["s"]                                       # a closed key: refused before any call
    assert e.value.winerror == 6


@windows_only
def test_watch_diffs_arrive_from_the_nt_backend(core, reg, sandbox):
    _, oracle = core
    sandbox.set_value("v", "a")
    with regfast.watch(sandbox) as w:
        oracle.set_sz(sandbox.path, "v", "b")       # another writer
        d = w.get(15)
        assert d is not None, "no change event from the in-process rf_watch"
        (c,) = list(d)
        assert (c.kind, c.name) == ("value_changed", "v")


@windows_only
def test_closing_the_registry_ends_watches_cleanly(core):
    disp, _ = core
    r = LocalRegistry(InProcessConnection(disp))
    path = f"{BASE}\\inproc-close-{next(_n)}"
    key = r.create_key("HKCU", path)
    w = regfast.watch(key)
    assert not w.stopped
    r.close()
    deadline = time.monotonic() + 20
    while not w.stopped and time.monotonic() < deadline:
        w.get(0.5)
    assert w.stopped, "the watch did not end when its connection closed"
    assert list(w) == []                             # iteration ends, it does not hang
    with pytest.raises(ConnectionError):
        r.open_key("HKCU", path)
    live.local().delete_key("HKCU", path, tree=True)


def test_one_connection_per_core_and_no_frames(core):
    disp, _ = core
    c = InProcessConnection(disp)
    try:
        with pytest.raises(RuntimeError, match="already serves"):
            InProcessConnection(disp)
        with pytest.raises(io.UnsupportedOperation):
            c.send_raw(b"x")
    finally:
        c.close()
    c.close()                                        # twice: a no-op
    with pytest.raises(ConnectionError):
        c.request(ops.OP_PING, b"x")


class _Broken:
    """A handler whose answers are malformed: the connection must say so."""

    def __init__(self, answers):
        self.answers = list(answers)

    def set_event_sink(self, sink):
        pass

    def shutdown(self):
        pass

    def dispatch(self, op, rid, payload):
        if op == ops.OP_HELLO:
            return struct.pack("<IHIIII", 0, 1, A.MAX_REQUEST, A.MAX_RESPONSE, 1, 0) + \
                struct.pack("<I", 4) + b"fake"
        return self.answers.pop(0)


def test_malformed_answers_raise_clear_errors():
    c = InProcessConnection(_Broken([b"", b"\x05\x00\x00\x00", b"\x05\x00\x00\x00" + b"\xff" * 3]))
    with pytest.raises(RegistryError) as e:
        c.request(ops.OP_PING)                          # no status at all
    assert e.value.winerror == 13
    with pytest.raises(PermissionError) as e:
        c.request(ops.OP_PING)                          # status 5, no details
    assert e.value.winerror == 5
    with pytest.raises(PermissionError, match="malformed error answer"):
        c.request(ops.OP_PING)                          # status 5, truncated details
    with pytest.raises(RegistryError):
        c.request(ops.OP_PING, b"\0" * (A.MAX_REQUEST + 1))   # over the request limit, not sent
    c.close()


def test_open_key_takes_the_in_process_path_on_windows(monkeypatch):
    """On Windows regfast.open_key() opens through local(): the NT backend
    (Hive._live), never an agent. Off Windows that backend answers 120, which
    shows the route without a Windows registry."""
    monkeypatch.setattr(live, "_local", None)
    monkeypatch.setattr(live.sys, "platform", "win32")
    monkeypatch.setattr(live, "connect", lambda *a, **k: pytest.fail("open_key used the agent"))
    if ON_WINDOWS:
        k = regfast.open_key("HKCU", "Software")
        assert k.name == "Software" and isinstance(k, regfast.Key)
        assert isinstance(live.local(), LocalRegistry) and live.local().where(k)[0] == live.HKCU
        k.close()
        return
    with pytest.raises(OSError) as e:
        regfast.open_key("HKCU", "Software")
    assert e.value.winerror == 120
    assert isinstance(live._local, LocalRegistry)


@pytest.mark.skipif(not ON_WINDOWS, reason="Wine never fires SECURITY/ATTRIBUTES notifications "
                    "(../shared/reference/wine-registry.md); this runs in the Windows wheel job, "
                    "and test_watch.py checks the snapshot side under Wine")
@pytest.mark.parametrize("flt", ["SECURITY", "ATTRIBUTES"])
def test_security_filters_fire_with_a_diff_on_windows(reg, sandbox, flt):
    from regfast.live import watch as W
    with regfast.watch(sandbox, filter=getattr(W, flt)) as w:
        sandbox.set_value("v", 1)                    # not a security change
        assert w.get(1.0) is None
        sandbox.grant("S-1-1-0", "read", inherit=False)
        d = w.get(15)
        assert d is not None, f"{flt} did not fire on a DACL change"
        assert [c.kind for c in d] == ["security_changed"]
