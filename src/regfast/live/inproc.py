"""The live registry in-process: regfast-agent's request handling without the agent.

On Windows the wheel carries ``regfast._live``, an extension built from the
agent's request handler (src/agent/agent_dispatch.c: ``ag_dispatch``) — the same
C code, the same request and response payloads, but called directly in this
process with the GIL released, instead of framed over a pipe to another
process. :class:`InProcessConnection` puts it behind the interface of
:class:`regfast.live.protocol.Connection`, so :mod:`regfast.live.registry`'s ``Registry`` and
``Key`` (reads, batches, writes, watches with diffs) are one implementation
for both paths::

    reg = regfast.live.registry.local()          # Windows: in-process, no agent
    reg = regfast.connect()             # anywhere: regfast-agent (Wine here)
    regfast.open_key(regfast.HKLM, r"Software\\Microsoft")   # local() on Windows

What differs from the agent: there are no frames (``send_raw`` is refused),
the token is this process's (privileges, access checks), and the C core is
process-wide — one handle table, one set of watches — so there is one
in-process connection per process (:func:`regfast.live.registry.local` shares it).
"""

from __future__ import annotations

import io
import struct
import threading
from typing import Any

from regfast.exceptions import error_from_status
from regfast.live.protocol import EVENT, MAX_REQUEST, Connection, _Pending, connection_gone

try:  # Windows wheels only (CMakeLists.txt: if(WIN32)); elsewhere native_dispatcher() says why
    from regfast import _live as _native_live

    _NO_NATIVE = ""
except ImportError as e:
    _native_live = None  # type: ignore[assignment]
    _NO_NATIVE = str(e)

__all__ = ["InProcessConnection", "native_dispatcher"]

_U32 = struct.Struct("<I")


def native_dispatcher() -> Any:
    """The compiled in-process request handler (``regfast._live``).

    Raises
    ------
    ImportError
        Not on Windows, or a build without the extension.
    """
    if _native_live is None:
        raise ImportError(_NO_NATIVE)
    return _native_live


class InProcessConnection(Connection):
    """A :class:`~regfast.live.protocol.Connection` whose requests run in this process.

    Parameters
    ----------
    dispatcher
        The request handler: an object with ``dispatch(op, id, payload) ->
        response payload``, ``set_event_sink(fn(op, watch_id, payload))`` and
        ``shutdown()``. Default: :func:`native_dispatcher` (Windows).
    timeout
        Kept for interface parity: an in-process request cannot be abandoned
        half-way, so it is not a deadline here.

    Raises
    ------
    ImportError
        No dispatcher given and no native one in this build.
    RuntimeError
        The dispatcher already serves another open connection (its C core
        is process-wide).
    """

    _in_use: dict[int, InProcessConnection] = {}
    _in_use_lock = threading.Lock()

    def __init__(self, dispatcher: Any = None, *, timeout: float = 30.0) -> None:
        disp = dispatcher if dispatcher is not None else native_dispatcher()
        with InProcessConnection._in_use_lock:
            other = InProcessConnection._in_use.get(id(disp))
            if other is not None and not other.closed:
                raise RuntimeError(
                    "the in-process registry core already serves an open connection; "
                    "share it (regfast.live.registry.local()) or close it first"
                )
            InProcessConnection._in_use[id(disp)] = self
        self.cmd: list[str] = []
        self.proc = None  # type: ignore[assignment]   # no agent process
        self._disp = disp
        self._init_state(timeout)
        disp.set_event_sink(self._route_event)
        try:
            self._hello(timeout)
        except BaseException:
            self._release()
            raise

    # --- the Connection interface --------------------------------------

    def start(self, op: int, payload: bytes = b"") -> tuple[int, _Pending]:
        """Runs the request now; the returned pending is already complete."""
        if len(payload) > MAX_REQUEST:
            raise error_from_status(
                0x20000004, f"request of {len(payload)} bytes is over the {MAX_REQUEST}-byte limit"
            )
        rid = next(self._ids) & 0xFFFFFFFF or next(self._ids)
        p = _Pending()
        with self._wlock:  # the core handles one request at a time
            if self._closed is not None:
                raise self._closed
            reply = self._disp.dispatch(op, rid, bytes(payload))
        if len(reply) >= 4:
            p.status = _U32.unpack_from(reply, 0)[0]
            p.payload = reply[4:]
        else:  # the core always answers with a status; never trust it blindly
            p.status, p.payload = 13, b""
        p.event.set()
        return rid, p

    def send_raw(self, data: bytes, timeout: float | None = None) -> None:
        raise io.UnsupportedOperation("an in-process connection has no frames to send")

    def close(self, timeout: float = 5.0) -> None:
        """Ends every watch (their watchers get the ENDED event, then the
        end-of-connection call ``cb(-1, b"")``) and closes every handle."""
        with self._wlock:
            if self._closed is not None:
                return
            try:
                self._disp.shutdown()
            finally:
                with self._lock:
                    self._closed = connection_gone("the in-process registry connection is closed")
                    watchers, self._watchers = self._watchers, {}
                self._release()
        for cb in watchers.values():
            try:
                cb(-1, b"")
            except Exception:
                pass

    def _release(self) -> None:
        self._disp.set_event_sink(None)
        with InProcessConnection._in_use_lock:
            if InProcessConnection._in_use.get(id(self._disp)) is self:
                del InProcessConnection._in_use[id(self._disp)]

    def _route_event(self, op: int, watch_id: int, payload: bytes) -> None:
        # The core's sink gives the event op with its EVENT bits set.
        super()._route_event(op & ~EVENT & 0xFFFF, watch_id, payload)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<InProcessConnection {getattr(self, 'description', '?')!r} {state}>"
