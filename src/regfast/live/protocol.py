"""The regfast-agent protocol, client side: frames over a byte stream.

``regfast-agent.exe`` (src/agent; built and found by :mod:`regfast.live.agent`)
reads requests on its stdin and writes responses on its stdout, so anything
that carries a byte stream reaches it: a local process, ``wine
regfast-agent.exe`` on Linux, ``ssh host regfast-agent.exe``. It runs no shell
and touches no file: it only does the registry operations below.
:class:`Connection` speaks to one; :func:`regfast.connect` starts it and
returns a :class:`regfast.live.registry.Registry`.

Protocol (this client speaks versions 2 and 3)
----------------------------------------------
The versions and what each adds are listed once, in src/agent/ag_ops.def
(``VERSIONS`` in the generated :mod:`regfast.live._agent_ops`); each is a superset
of the one before. This client asks for 2..3 — version 3's framing with the
payload layouts of version 2; the agent also serves 4 and 5 (new layouts
and links, used by the C remote backend, src/remote). Every frame, in both directions, is a
16-byte header, a payload and (from version 3) a 4-byte trailer::

    u16 magic   0x6652 ("Rf" little-endian)
    u16 op      request: the operation; response: op | 0x8000; event: op | 0xC000
    u32 length  payload bytes (requests: at most 16 MiB)
    u32 id      request id, echoed by the response (events: the watch's id)
    u32 check   FNV-1a 32 of the 12 bytes before it
    payload
    u32 crc     version >= 3: CRC-32 (zlib.crc32) of the payload

All integers are little-endian. Strings are u32 byte length + UTF-16LE
(names, paths) or UTF-8 (messages). A response payload starts with an i32
status (a Win32 error code, 0 = success); an error's payload goes on with
i64 native (NTSTATUS or Win32 code behind it) and a UTF-8 message.

A header whose magic or check does not match makes the agent reply once with
an error frame of id 0 (status 13) and skip bytes until a valid header; a
frame over the size limit is answered with status 0x20000004 (RF_E_LIMIT)
and its payload skipped; a payload that does not parse is answered with 87
or 13, and the agent keeps serving. Ops and their payloads are in
``_ops`` below and src/agent/agent.h.

The first request must be HELLO, with the range of versions the client
speaks; the agent answers the highest it shares. HELLO and its response are
framed as version 2; every later frame uses the agreed version's framing.

A cut frame kills the connection (src/agent/agent.h says why; any transport
must keep this): when a request's frame could not be written whole — a write
timeout, Ctrl-C, any exception half-way — or a response arrives cut or
malformed, the connection is dead at once: the failing call and every later
one raise :class:`~regfast.exceptions.ConnectionCutError` (winerror 1236),
and the agent's input is closed so that it reads EOF inside the frame and
applies nothing. The agent applies a request only once its whole frame is
in, and from version 3 answers 13 and stops on a payload whose CRC does not
match: the spliced stream of a client that wrote on after a cut.
"""

from __future__ import annotations

import errno
import itertools
import os
import select
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from typing import IO, Any

from regfast.exceptions import RF_E_CONNECTION, ConnectionCutError, RegistryConnectionError, error_from_status

# Op and version numbers come from the one table, src/agent/ag_ops.def (generated module).
from regfast.live._agent_ops import (
    OP_HELLO,
    OP_QUIT,
    V_SD_HASH,
    V_TRAILER,
    VERSION_MIN,
)

__all__ = ["Connection", "Reader", "frame", "fnv1a32", "str16", "connection_gone"]

# --- protocol constants (src/agent/agent.h) ------------------------------------

MAGIC = 0x6652
# The newest version whose payloads this client parses: 3, the CRC trailer
# with version 2's layouts (ag_ops.def's AG_PROTO list says what each adds).
VERSION = V_TRAILER
MIN_VERSION = VERSION_MIN  # the oldest agent this client still talks to (frames without the trailer)
HEADER = 16
TRAILER = 4  # version >= V_TRAILER
RESPONSE = 0x8000
EVENT = 0xC000
MAX_REQUEST = 16 << 20
MAX_RESPONSE = 64 << 20
ALL = 0xFFFFFFFF

FILE_REGF, FILE_WINE, FILE_OTHER = 1, 2, 3  # OP_SAVE_KEY / OP_FILE_KIND answers

SNAP_SUBTREE, SNAP_KEEP_DATA = 0x1, 0x2  # request flags
SNAP_TRUNCATED, SNAP_DATA = 0x1, 0x2  # snapshot flags
EV_CHANGE, EV_LOST, EV_ENDED = 1, 2, 3
END_UNWATCH, END_KEY_CLOSED, END_QUIT = 1, 2, 3

BENCH_METHODS = {
    "RegQueryValueEx": 1,
    "RegGetValue": 2,
    "NtQueryValueKey Partial": 3,
    "NtQueryValueKey Full": 4,
    "regfast single": 5,
    "regfast batch": 6,
    "regfast batch Full": 7,
    "open-each": 8,
    "RegGetValue with path": 9,
    "regfast open-each (cached)": 10,
}

# Set by regfast.hooks while a hook or a profiler is active: called instead of
# the plain start()+finish() as _hook(conn, op, payload, timeout, filename).
_hook: Callable[..., bytes] | None = None

_HDR = struct.Struct("<HHII")
_U32 = struct.Struct("<I")


def fnv1a32(data: bytes) -> int:
    """FNV-1a 32: the header check of a frame."""
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def frame(op: int, rid: int, payload: bytes = b"", version: int = 2) -> bytes:
    """One frame: header (magic, op, length, id, check) + payload, and from
    `version` 3 (V_TRAILER) the payload's CRC-32. HELLO is always framed as
    version 2."""
    head = _HDR.pack(MAGIC, op, len(payload), rid)
    out = head + _U32.pack(fnv1a32(head)) + payload
    if version >= V_TRAILER:
        out += _U32.pack(zlib.crc32(payload))
    return out


class _TornFrame(Exception):
    """The agent's output ended inside a frame."""


def start_agent(cmd: list[str], env: dict[str, str] | None) -> subprocess.Popen[bytes]:
    """regfast-agent with its three pipes, unbuffered (raw files: nothing
    buffered, and no lock a close() would wait on). Shared by both
    transports: this module's Connection and regfast.live.remote's."""
    try:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, bufsize=0
        )
    except OSError as e:
        raise connection_gone(f"cannot start regfast-agent with {cmd!r}: {e}") from e
    if proc.stdin is None or proc.stdout is None or proc.stderr is None:  # never: all three are pipes
        raise connection_gone("regfast-agent was started without its pipes")
    return proc


class StderrTail:
    """The last 8 KiB an agent wrote to stderr, gathered by a daemon thread
    for error messages. The pipe may outlive the agent (Wine's wineserver
    inherits it), so the thread closes it once it ends."""

    def __init__(self, f: IO[bytes]) -> None:
        self._buf = bytearray()
        self._thread = threading.Thread(
            target=self._loop, args=(f,), name="regfast-agent-stderr", daemon=True
        )
        self._thread.start()

    def _loop(self, f: IO[bytes]) -> None:
        try:
            while chunk := f.read(4096):
                self._buf += chunk
                del self._buf[:-8192]
        except (OSError, ValueError):
            pass
        finally:
            f.close()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def describe(self, why: str, code: int | None) -> str:
        """`why`, then the agent's exit code (None: still running) and the
        end of its stderr. Once the agent has exited its stderr is at EOF
        too (unless a wineserver holds it): all of it is waited for, 2 s at
        most, so the message says what the agent (or Wine) printed last."""
        if code is not None:
            self.join(2)
            why += f" (exit code {code})"
        tail = bytes(self._buf).decode("utf-8", "replace").strip()
        return why + (f"; its stderr ends with: {tail[-500:]}" if tail else "")


def connection_gone(message: str) -> RegistryConnectionError:
    """The error of a connection that is gone without a cut frame — the agent
    exited or closed its output at a frame boundary, would not start, or the
    connection was closed — as the C remote backend reports RF_E_CONNECTION.
    A cut frame is ConnectionCutError, a subclass: one ``except
    RegistryConnectionError`` (or the builtin ConnectionError) catches both."""
    return RegistryConnectionError(errno.EPIPE, message, status=RF_E_CONNECTION)


def str16(s: str) -> bytes:
    b = s.encode("utf-16-le", "surrogatepass")
    return _U32.pack(len(b)) + b


class Reader:
    """Parses a little-endian payload."""

    __slots__ = ("b", "pos")

    def __init__(self, b: bytes | memoryview, pos: int = 0) -> None:
        self.b = b
        self.pos = pos

    def u32(self) -> int:
        v: int = _U32.unpack_from(self.b, self.pos)[0]
        self.pos += 4
        return v

    def i32(self) -> int:
        v: int = struct.unpack_from("<i", self.b, self.pos)[0]
        self.pos += 4
        return v

    def u64(self) -> int:
        v: int = struct.unpack_from("<Q", self.b, self.pos)[0]
        self.pos += 8
        return v

    def u16(self) -> int:
        v: int = struct.unpack_from("<H", self.b, self.pos)[0]
        self.pos += 2
        return v

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.b):
            raise ValueError("truncated payload")
        v = bytes(self.b[self.pos : self.pos + n])
        self.pos += n
        return v

    def str16(self) -> str:
        return self.raw(self.u32()).decode("utf-16-le", "surrogatepass")

    def str8(self) -> str:
        return self.raw(self.u32()).decode("utf-8", "replace")


class _Pending:
    __slots__ = ("event", "status", "payload", "error")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.status = 0
        self.payload: bytes = b""
        self.error: BaseException | None = None


class Connection:
    """A running regfast-agent: frames over its stdin/stdout.

    One reader thread routes responses to the waiting requests by id and
    events to their watch. Every wait has a timeout; when the agent exits,
    every waiting and later request raises RegistryConnectionError (a
    ConnectionError; ConnectionCutError when a frame was cut) at once.

    Parameters
    ----------
    cmd
        The command that runs the agent (``["wine", exe]``, ``["ssh", host,
        "regfast-agent.exe"]``...).
    timeout
        Seconds a request may wait for its answer (TimeoutError after).
    env
        Environment for the agent process (e.g. a WINEPREFIX).
    """

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
        connect_timeout: float = 60.0,
    ) -> None:
        self.cmd = list(cmd)
        self._init_state(timeout)
        self.proc = start_agent(self.cmd, env)
        out, rd, err = self.proc.stdin, self.proc.stdout, self.proc.stderr
        assert out is not None and rd is not None and err is not None  # start_agent checked
        self._out: IO[bytes] = out
        self._agent_out: IO[bytes] = rd  # what the agent writes: frames
        self._agent_err: IO[bytes] = err
        self._stderr = StderrTail(err)  # before the reader, whose shutdown reads it
        self._out_fd = self._out.fileno()
        if os.name == "posix":
            os.set_blocking(self._out_fd, False)
        self._reader = threading.Thread(target=self._read_loop, name="regfast-agent-reader", daemon=True)
        self._reader.start()
        self._hello(connect_timeout)

    # --- plumbing ----------------------------------------------------------

    def _init_state(self, timeout: float) -> None:
        """The bookkeeping every transport shares (also regfast.live.inproc's)."""
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._watchers: dict[int, Callable[[int, bytes], None]] = {}
        self._orphans: dict[int, list[tuple[int, bytes]]] = {}  # events before add_watcher
        self._dead: set[int] = set()  # watches removed
        self._lock = threading.RLock()  # _pending, _watchers, _orphans, _closed
        self._wlock = threading.Lock()  # writes
        self._closed: BaseException | None = None
        self.version = V_SD_HASH  # the framing until HELLO agrees on another (agent.h)
        self._rx_version = V_SD_HASH  # the reader thread's copy: switched by the HELLO response itself

    def _hello(self, timeout: float) -> None:
        r = Reader(
            self.request(OP_HELLO, b"RFAG" + struct.pack("<HH", MIN_VERSION, VERSION), timeout=timeout)
        )
        self.version = r.u16()
        self.max_request = r.u32()
        self.max_response = r.u32()
        self.pid = r.u32()
        self.caps = r.u32()
        self.description = r.str8()

    def _read_exact(self, f: Any, n: int, first: bool = False) -> bytes | None:
        """n bytes; None at EOF before the first byte of a frame (`first`),
        _TornFrame at EOF anywhere else."""
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = f.readinto(view[got:])
            if not k:
                if first and got == 0:
                    return None
                raise _TornFrame
            got += k
        return bytes(buf)

    def _read_loop(self) -> None:
        f = self._agent_out
        why = "regfast-agent closed its output"
        cut = False  # the stream broke inside a frame or went out of step
        try:
            while True:
                head = self._read_exact(f, HEADER, first=True)
                if head is None:
                    break
                magic, op, length, rid = _HDR.unpack_from(head)
                cut = True
                if magic != MAGIC or _U32.unpack_from(head, 12)[0] != fnv1a32(head[:12]):
                    why = "regfast-agent sent a malformed frame header"
                    break
                if length > MAX_RESPONSE:
                    why = f"regfast-agent sent a {length}-byte frame, over the {MAX_RESPONSE} limit"
                    break
                payload = self._read_exact(f, length) if length else b""
                assert payload is not None
                if self._rx_version >= V_TRAILER:
                    (crc,) = _U32.unpack(self._read_exact(f, TRAILER) or b"")
                    if crc != zlib.crc32(payload):
                        why = "regfast-agent sent a frame whose payload check does not match"
                        break
                cut = False
                if op & EVENT == EVENT:
                    self._route_event(op & ~EVENT, rid, payload)
                    continue
                if op == OP_HELLO | RESPONSE and payload[:4] == bytes(4) and len(payload) >= 6:
                    # every frame after this one, both ways, uses the version it
                    # agrees on: switched here, before the caller wakes up to send
                    self._rx_version = self.version = struct.unpack_from("<H", payload, 4)[0]
                with self._lock:
                    p = self._pending.pop(rid, None)
                if p is None:
                    continue  # answer to a request that timed out, or id 0 (resync notice)
                p.status = _U32.unpack_from(payload, 0)[0] if len(payload) >= 4 else 13
                p.payload = payload[4:]
                p.event.set()
        except _TornFrame:
            why = "regfast-agent's output ended in the middle of a frame"
        except (OSError, ValueError) as e:
            why = f"reading from regfast-agent failed: {e}"
        self._shutdown(why, cut=cut)

    def _route_event(self, op: int, watch_id: int, payload: bytes) -> None:
        """Hands a watch event to its watcher (the reader thread; in-process:
        a watch thread of the C core)."""
        with self._lock:
            cb = self._watchers.get(watch_id)
            if cb is None and watch_id not in self._dead:
                # a watch's first events can beat add_watcher(): keep them
                q = self._orphans.setdefault(watch_id, [])
                if len(q) < 10000:
                    q.append((op, payload))
        if cb is not None:
            try:
                cb(op, payload)
            except Exception:  # a broken consumer must not kill the connection
                import traceback

                traceback.print_exc()

    def _shutdown(self, why: str, *, cut: bool = False) -> None:
        """The reader is done: the agent's output ended (or broke: `cut`,
        then the agent is ended too, its stream cannot be trusted)."""
        if cut:
            self._end_agent()
        code = None
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        msg = self._stderr.describe(why, code)
        self._fail_all(ConnectionCutError(errno.ECONNABORTED, msg) if cut else connection_gone(msg))

    def _fail_all(self, err: BaseException) -> None:
        """The connection is dead: `err` for every waiting and later call
        (the first cause wins), the end-of-connection call for watchers."""
        with self._lock:
            if self._closed is None:
                self._closed = err
            err = self._closed
            pending, self._pending = self._pending, {}
            watchers, self._watchers = self._watchers, {}
        for p in pending.values():
            p.error = err
            p.event.set()
        for cb in watchers.values():
            try:
                cb(-1, b"")
            except Exception:
                pass

    def _end_agent(self, grace: float = 5.0) -> None:
        """Closes the agent's input, so that it reads EOF (inside the cut
        frame: it discards it and exits), and ends it if it has not exited
        after `grace` seconds (a stopped or hung agent), without waiting here."""
        try:
            self._out.close()
        except OSError:
            pass

        def reap() -> None:
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    self.proc.kill()
                except OSError:
                    pass

        threading.Thread(target=reap, name="regfast-agent-reaper", daemon=True).start()

    def _cut(self, sent: int, total: int, cause: BaseException) -> ConnectionCutError:
        """A frame went out in part: the connection is dead from now on."""
        why = (
            f"a request to regfast-agent was cut after {sent:,} of {total:,} bytes "
            f"({type(cause).__name__}: {cause}); the connection is closed and the agent "
            "discards the cut request"
        )
        err = ConnectionCutError(errno.ECONNABORTED, why)
        self._fail_all(err)
        self._end_agent()
        return err

    def _write(self, data: bytes, deadline: float) -> None:
        """Writes `data` whole, or raises; a failure after the first byte
        kills the connection (see "A cut frame kills the connection")."""
        view = memoryview(data)
        total, sent = len(view), 0
        try:
            while sent < total:
                if os.name == "posix":
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError("regfast-agent is not reading its input")
                    _, w, _ = select.select([], [self._out_fd], [], left)
                    if not w:
                        continue
                    try:
                        n = os.write(self._out_fd, view[sent : sent + (1 << 20)])
                    except BlockingIOError:
                        continue
                else:
                    n = self._out.write(view[sent:]) or 0
                sent += n
        except BaseException as e:
            # Windows' blocking write may have sent part of the frame before
            # failing, and cannot tell how much: count it as cut there.
            if sent == 0 and os.name == "posix":
                raise  # nothing went out: the stream is still in step
            err = self._cut(sent, total, e)
            if isinstance(e, Exception):
                raise err from e
            raise  # KeyboardInterrupt & co. stay what they are

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def send_raw(self, data: bytes, timeout: float | None = None) -> None:
        """Writes bytes as they are (tests: malformed frames)."""
        if self._closed is not None:
            raise self._closed
        with self._wlock:
            if self._closed is not None:  # died while this call waited for the lock
                raise self._closed
            try:
                self._write(data, time.monotonic() + (timeout or self.timeout))
            except ConnectionCutError:
                raise
            except (BrokenPipeError, ConnectionResetError, OSError) as e:
                if isinstance(e, TimeoutError):
                    raise
                raise connection_gone(f"regfast-agent is gone: {e}") from e

    def start(self, op: int, payload: bytes = b"") -> tuple[int, _Pending]:
        """Sends a request; returns (id, pending) to wait on with finish()."""
        if len(payload) > MAX_REQUEST:
            raise error_from_status(
                0x20000004, f"request of {len(payload)} bytes is over the {MAX_REQUEST}-byte frame limit"
            )
        rid = next(self._ids) & 0xFFFFFFFF or next(self._ids)
        p = _Pending()
        with self._lock:
            if self._closed is not None:
                raise self._closed
            self._pending[rid] = p
        try:
            self.send_raw(frame(op, rid, payload, self.version))
        except BaseException:
            with self._lock:
                self._pending.pop(rid, None)
            raise
        return rid, p

    def finish(
        self, rid: int, p: _Pending, op: int, timeout: float | None = None, filename: object = None
    ) -> bytes:
        t = self.timeout if timeout is None else timeout
        if not p.event.wait(t):
            with self._lock:
                self._pending.pop(rid, None)
            if self._closed is not None:
                raise self._closed
            raise TimeoutError(f"regfast-agent did not answer request {rid} (op {op}) within {t:g} s")
        if p.error is not None:
            raise p.error
        if p.status:
            r = Reader(p.payload)
            try:
                native = r.u64()
                message = r.str8()
            except (ValueError, struct.error):
                native, message = 0, "malformed error answer"
            if native >= 1 << 63:
                native -= 1 << 64
            raise error_from_status(p.status, message or f"error {p.status}", filename, None, native)
        return p.payload

    def request(
        self, op: int, payload: bytes = b"", *, timeout: float | None = None, filename: object = None
    ) -> bytes:
        """Sends one request and waits for its answer.

        Raises
        ------
        OSError subclasses from regfast.exceptions (the agent's status),
        TimeoutError (no answer in time), RegistryConnectionError (the agent is
        gone; ConnectionCutError: a frame was cut).
        """
        if _hook is not None:  # regfast.hooks / regfast.profile(): one global check when off
            return _hook(self, op, payload, timeout, filename)
        rid, p = self.start(op, payload)
        return self.finish(rid, p, op, timeout, filename)

    def add_watcher(self, watch_id: int, cb: Callable[[int, bytes], None]) -> None:
        """Routes the events of watch `watch_id` to cb(op, payload) (in the
        reader thread; cb(-1, b"") when the connection dies). Events that
        arrived before this call are replayed first, in order."""
        with self._lock:
            if self._closed is not None:
                raise self._closed
            for op, payload in self._orphans.pop(watch_id, []):
                cb(op, payload)
            self._watchers[watch_id] = cb

    def remove_watcher(self, watch_id: int) -> None:
        with self._lock:
            self._watchers.pop(watch_id, None)
            self._orphans.pop(watch_id, None)
            self._dead.add(watch_id)

    def close(self, timeout: float = 5.0) -> None:
        """Asks the agent to quit, then waits for it (killing it after `timeout`)."""
        if self._closed is None:
            try:
                rid, p = self.start(OP_QUIT)
                p.event.wait(timeout)
            except (OSError, ValueError):
                pass
        try:
            self._out.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)
        self._reader.join(timeout)
        self._stderr.join(timeout)
        for f in (self._agent_out, self._agent_err):
            try:
                f.close()
            except OSError:
                pass
        with self._lock:
            if self._closed is None:
                self._closed = connection_gone("the connection to regfast-agent is closed")

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
