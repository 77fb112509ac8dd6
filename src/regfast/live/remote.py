"""The live registry through the C remote backend: the one Key class.

::

    reg = regfast.connect(["wine", "regfast-agent.exe"], backend="remote")
    key = reg.open_key("HKCU", r"Software\\Vendor")   # a regfast.Key, as open_hive gives
    key["Version"]                                    # the one decoder
    batch = key.read_values(names)                    # columns straight from the pipe
    key.set_value("Installed", 1)                     # rf_value_set through the agent

:class:`RemoteRegistry` starts regfast-agent and hands its stdin/stdout to
the remote backend (src/remote, ``Hive._remote``): every ``Key``, ``Value``
and ``ValueBatch`` it returns is the binding's own (regfast._native,
regfast._bulk), the same classes :func:`regfast.open_hive` returns, served by
``rf_*`` calls that the backend turns into agent requests (protocol version
5: CRC trailers, column batch replies read into the caller's block, links). Each
(root, view, access) is a Hive of its own over the one connection.

What the ``rf_*`` API has no call for (privileges, hive files, MUI strings,
STATS, PING, transactions) goes over the same connection as raw agent
requests (``rf_remote_request``): :attr:`RemoteRegistry.conn` offers the
``request(op, payload)`` that :mod:`regfast.live.admin` uses.

The cut-frame rule is the backend's (src/remote/rm_conn.c): a frame cut by
a timeout, a reply that fails its CRC or does not parse kills the
connection; the failing call and every later one raise
:class:`~regfast.exceptions.ConnectionCutError` (winerror 1236) at once, and
the agent, whose input is closed, never applies a request it did not
receive whole. Every call releases the GIL while it waits on the agent.
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Sequence
from typing import Any

from regfast._native import Hive, Key
from regfast.exceptions import error_from_status
from regfast.live import _agent_ops as _ops
from regfast.live import agent as _exe
from regfast.live.hives import HiveRegistry, Where
from regfast.live.protocol import (
    BENCH_METHODS,
    MAX_REQUEST,
    Reader,
    StderrTail,
    connection_gone,
    start_agent,
    str16,
)
from regfast.live.roots import KEY_READ

__all__ = ["RemoteRegistry", "RemoteConnection", "connect_remote"]


def _check_timeout(timeout: float) -> float:
    """A request timeout, checked: a positive number of seconds. The backend
    rounds up to 1 ms, so 0, a negative number or NaN used to become 1 ms:
    a failed handshake for connect(), a cut connection for a slow request."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise error_from_status(87, f"timeout {timeout!r}: give a positive number of seconds")
    return float(timeout)


class RemoteConnection:
    """Raw agent requests over a :class:`RemoteRegistry`'s connection, with
    the ``request()`` / ``closed`` / ``version`` interface of
    :class:`regfast.live.protocol.Connection` that the admin functions use.
    Payloads are the agreed protocol version's, 4 or 5 (src/agent/ag_ops.def)."""

    def __init__(self, reg: RemoteRegistry) -> None:
        self._reg = reg

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        return self._reg.proc

    @property
    def closed(self) -> bool:
        return self._reg.closed

    @property
    def version(self) -> int:
        return int(self._reg._info()["version"])

    @property
    def description(self) -> str:
        return self._reg.description

    @property
    def pid(self) -> int:
        return self._reg.pid

    @property
    def max_request(self) -> int:
        return int(self._reg._info()["max_request"])

    def request(
        self, op: int, payload: bytes = b"", *, timeout: float | None = None, filename: object = None
    ) -> bytes:
        """One request; the reply's payload after its status, or the agent's
        error (an OSError subclass with its winerror). `timeout`: seconds
        for this call instead of the connection's (calls of other threads
        made meanwhile get it too: the connection has one timeout)."""
        if len(payload) > MAX_REQUEST:
            raise error_from_status(
                0x20000004, f"request of {len(payload)} bytes is over the {MAX_REQUEST}-byte frame limit"
            )
        if timeout is not None:
            timeout = _check_timeout(timeout)
        hive = self._reg._anchor()
        if timeout is not None:
            hive._remote_set_timeout(timeout)
        try:
            return hive._remote_request(op, payload)
        except OSError as e:
            if filename is not None and e.filename is None:
                e.filename = filename
            raise
        finally:
            if timeout is not None:
                try:
                    hive._remote_set_timeout(self._reg.timeout)
                except OSError:
                    pass


class RemoteRegistry(HiveRegistry):
    """The live registry behind one regfast-agent, through the C remote
    backend (see the module docstring and :func:`connect_remote`).

    Keys are :class:`regfast.Key` objects: ``key.hive`` is the remote Hive of
    its (root, view, access); :meth:`where` says which. Opening, keys and
    the connection's ops: :class:`regfast.live.hives.HiveRegistry`.
    """

    def __init__(
        self, cmd: Sequence[str], *, timeout: float = 30.0, env: dict[str, str] | None = None
    ) -> None:
        super().__init__()
        self.cmd = list(cmd)
        self.timeout = _check_timeout(timeout)
        self.proc = start_agent(self.cmd, env)
        out, rd, err = self.proc.stdin, self.proc.stdout, self.proc.stderr
        assert out is not None and rd is not None and err is not None  # start_agent checked
        self._stderr = StderrTail(err)
        first = (0x80000001, 0, KEY_READ)  # HKCU: every user may read its own root
        try:
            hive = Hive._remote(rd.fileno(), out.fileno(), timeout, *first)
        except OSError as e:
            self._end(5.0)
            e.strerror = self._stderr.describe(str(e.strerror), self.proc.poll())
            raise
        finally:
            # The backend owns duplicates of both pipe ends: ours must go, so
            # that a connection the backend kills (a cut frame) closes the
            # agent's input for good and the agent reads end of file.
            out.close()
            rd.close()
        self._add(first, hive)
        info = hive._remote_info()
        self.description = str(info["description"])
        self.pid: int = info["pid"]
        self.conn = RemoteConnection(self)

    # --- plumbing ----------------------------------------------------------

    def _anchor(self) -> Hive:
        """A hive of the connection (any: they share it)."""
        with self._lock:
            if self._closed:
                raise connection_gone("the connection to regfast-agent is closed")
            return next(iter(self._hives.values()))

    def _open_root(self, where: Where) -> Hive:
        return next(iter(self._hives.values()))._remote_root(*where)  # called under the lock

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = self._anchor()._remote_info()
        return info

    def key_request(
        self, key: Key, op: int, body: bytes = b"", access: int = 0, *, filename: object = None
    ) -> bytes:
        """An agent request on `key`'s handle (the handle, then `body`). When
        `access` asks for rights the key's hive was not opened with, the
        same path is used through a hive that has them."""
        root, view, have = self.where(key)
        if access and (have & access) != access:
            key = self.open_key(root, key.path, view=view, access=have | access)
        try:
            return key._remote_request(op, body)
        except OSError as e:
            if e.filename is None:
                e.filename = filename if filename is not None else self.full_path(key)
            raise

    def bench(self, method: str | int, key: Key, names: Sequence[str], reps: int = 1) -> tuple[float, int]:
        """Has the agent read `names` of `key` `reps` times with a named method
        (:data:`regfast.live.protocol.BENCH_METHODS`) and returns (seconds,
        reads that succeeded): the agent's own clock, so the pipe is not in
        the figure. The connection's timeout applies (a timeout cuts it)."""
        m = BENCH_METHODS[method] if isinstance(method, str) else int(method)
        body = struct.pack("<III", m, reps, len(names)) + b"".join(str16(n) for n in names)
        r = Reader(self.key_request(key, _ops.OP_BENCH, body))  # the handle goes after the method
        ns, ok = r.u64(), r.u64()
        return ns / 1e9, ok

    @property
    def closed(self) -> bool:
        """True after close(), or once the connection died (agent gone, frame cut)."""
        if self._closed:
            return True
        try:
            return bool(self._info()["dead"])
        except OSError:
            return True

    def _end(self, timeout: float) -> None:
        """The last hive closed the stream: the agent reads end of file and
        exits; waited for, killed after `timeout`."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)
        self._stderr.join(min(timeout, 1.0))

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"pid {self.pid}"
        return f"<regfast.live.remote.RemoteRegistry {self.description!r} {state}>"


def connect_remote(
    cmd: Sequence[str] | None = None, *, timeout: float = 30.0, env: dict[str, str] | None = None
) -> RemoteRegistry:
    """Starts regfast-agent (``cmd`` as for :func:`regfast.connect`) and
    returns the :class:`RemoteRegistry` the C remote backend serves."""
    return RemoteRegistry(cmd or _exe.default_command(), timeout=timeout, env=env)
