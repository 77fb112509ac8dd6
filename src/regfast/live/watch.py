"""Change notification on live keys: :func:`watch` and :func:`awatch`.

RegNotifyChangeKeyValue says *that* something changed under a key, never
*what* (the reference chapter's own caveat). regfast-agent arms it on every
watched key (any number of keys: one wait thread per 63), re-arms it as soon
as it fires, *then* snapshots the subtree, and sends the snapshot; this
module diffs it against the previous one (:mod:`regfast.hive.diff`) and yields
the :class:`~regfast.hive.diff.Diff`::

    for change in regfast.watch([key1, key2], subtree=True):
        for c in change:            # Change(kind, path, name, old, new, ...)
            print(c.describe())

    async for change in regfast.awatch(keys): ...

    w = regfast.watch(keys, timeout=5)  # ends after 5 s without a change
    w.stop()                            # from any thread; closing a watched key ends it too

Memory stays bounded: snapshots carry 64-bit hashes of value data, not the
data (``keep_data=True`` keeps it, for old/new values in each Change), and
notifications that arrive faster than they are consumed are merged: each
key keeps its newest snapshot and the one last reported, never more.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from regfast._native import Key, _watch_open
from regfast.exceptions import error_from_status
from regfast.hive.diff import Diff, Snapshot, diff_snapshots
from regfast.live import admin
from regfast.live import protocol as _agent
from regfast.live.snapshot import parse_snapshot

__all__ = [
    "NAME",
    "ATTRIBUTES",
    "LAST_SET",
    "SECURITY",
    "ALL",
    "watch",
    "awatch",
    "Watch",
    "AsyncWatch",
    "check_filter",
    "check_timeout",
]

NAME = 0x1  # REG_NOTIFY_CHANGE_NAME: a subkey added or deleted
ATTRIBUTES = 0x2  # REG_NOTIFY_CHANGE_ATTRIBUTES
LAST_SET = 0x4  # REG_NOTIFY_CHANGE_LAST_SET: a value added, deleted or changed
SECURITY = 0x8  # REG_NOTIFY_CHANGE_SECURITY
ALL = NAME | ATTRIBUTES | LAST_SET | SECURITY


def check_filter(flt: int) -> int:
    """A notify filter, checked: NAME|ATTRIBUTES|LAST_SET|SECURITY bits only,
    at least one. (Wine accepts 0 or 0x40 and a wait on it never ends.)

    Raises
    ------
    OSError
        winerror 87 (ERROR_INVALID_PARAMETER) for anything else.
    """
    if isinstance(flt, bool) or not isinstance(flt, int) or flt <= 0 or flt & ~ALL:
        raise error_from_status(
            87, f"notify filter {flt!r}: give NAME (1), ATTRIBUTES (2), LAST_SET (4) and/or SECURITY (8)"
        )
    return flt


def check_timeout(timeout: float | None) -> float | None:
    """A watch's idle timeout or get()'s wait, checked: None (no limit) or a
    real number of seconds; 0 or less polls once.

    Raises
    ------
    OSError
        winerror 87 for NaN or a non-number (NaN compares false with
        everything: a wait on it spun forever).
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout != timeout:
        raise error_from_status(87, f"timeout {timeout!r}: give seconds (a number) or None")
    return float(timeout)


class _KeyState:
    __slots__ = ("key", "base", "latest", "seq", "dirty", "lost", "received")

    def __init__(self, key: Any, base: Snapshot) -> None:
        self.key = key
        self.base = base  # what was last reported
        self.latest = base  # the newest snapshot from the agent
        self.seq = 0
        self.dirty = False
        self.lost: int | None = None
        self.received = 0.0


class _Group:
    """The keys of one watch that share an agent connection (or, for keys of
    backend="remote", one remote hive: an rf_watch and the thread reading it)."""

    __slots__ = ("reg", "wid", "first", "count", "ended", "rfw", "thread", "closed")

    def __init__(self, reg: Any, wid: int, first: int, count: int) -> None:
        self.reg = reg
        self.wid = wid
        self.first = first
        self.count = count
        self.ended = False
        self.rfw: Any = None
        self.thread: threading.Thread | None = None
        self.closed = False  # its rf_watch stopped and closed (Watch.stop)


def _is_live_key(obj: object) -> bool:
    """A :class:`regfast.Key` of a live registry (one a RemoteRegistry or a
    LocalRegistry opened: a hive file's keys have nothing to watch)."""
    return admin._OWNERS.get(getattr(obj, "hive", None)) is not None if isinstance(obj, Key) else False


def _label(key: Any) -> str:
    """The key's full path, as snapshots name their root."""
    return str(admin._reg_of(key).full_path(key))


class _MalformedSnapshot(Exception):
    """A change notification's snapshot that does not parse (see _pump)."""


class Watch:
    """A running watch (see :func:`watch`). Iterate it for Diffs; ``get()``
    for one with a timeout; ``stop()`` to end it (from any thread)."""

    def __init__(
        self,
        keys: Any,
        *,
        subtree: bool = True,
        filter: int = ALL,
        timeout: float | None = None,
        keep_data: bool = False,
        max_keys: int = 100000,
        _delay_ms: int = 0,
    ) -> None:
        if _is_live_key(keys):
            keys = [keys]
        keys = list(keys)
        if not keys:
            raise ValueError("watch() needs at least one key")
        for k in keys:
            if not _is_live_key(k):
                raise TypeError(
                    f"only live keys can be watched (regfast.connect().open_key()), "
                    f"not {type(k).__name__}; for offline hives use regfast.diff()"
                )
        self.filter = check_filter(filter)
        self.subtree = subtree
        self.timeout = check_timeout(timeout)
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or not 0 <= max_keys <= 0xFFFFFFFF:
            raise error_from_status(87, f"max_keys {max_keys!r}: give a count from 0 to 4294967295")
        self.keep_data = keep_data
        self.keys = keys
        self._cond = threading.Condition()
        self._ready: list[int] = []
        self._states: list[_KeyState | None] = [None] * len(keys)
        self._groups: list[_Group] = []
        self._error: BaseException | None = None
        self._stopped = False
        self._wakeups: list[Any] = []  # extra callables run on every state change (awatch)
        flags = (_agent.SNAP_SUBTREE if subtree else 0) | (_agent.SNAP_KEEP_DATA if keep_data else 0)
        by_reg: dict[int, list[int]] = {}
        for i, k in enumerate(keys):
            by_reg.setdefault(id(k.hive), []).append(i)
        try:
            for idx in by_reg.values():
                reg = keys[idx[0]].hive
                self._start_rf_watch(reg, idx, flags, max_keys, _delay_ms)
        except BaseException:
            self.stop()
            raise

    # --- keys of backend="remote": an rf_watch per hive, read by a thread --------

    def _start_rf_watch(self, hive: Any, idx: list[int], flags: int, max_keys: int, delay_ms: int) -> None:
        w, baselines = _watch_open([self.keys[i] for i in idx], flags, self.filter, max_keys, delay_ms)
        try:
            for i, b in zip(idx, baselines, strict=True):
                label = _label(self.keys[i])
                try:
                    base = parse_snapshot(_agent.Reader(b), label)
                except (ValueError, struct.error) as e:
                    raise error_from_status(13, f"the baseline snapshot of {label} is malformed: {e}") from e
                self._states[i] = _KeyState(self.keys[i], base)
        except BaseException:
            w.stop()  # (not in _groups yet: stop() would not close it)
            w.close()
            raise
        g = _Group(hive, 0, 0, 0)
        g.rfw = w
        g.thread = threading.Thread(target=self._pump, args=(g, idx), name="regfast-watch", daemon=True)
        self._groups.append(g)
        g.thread.start()

    def _pump(self, g: _Group, idx: list[int]) -> None:
        """The thread of one rf_watch: its events into the shared state."""
        while True:
            try:
                ev = g.rfw.next(0.25)
            except OSError as e:  # 259: the watch is over (stopped, ended, every key lost)
                self._finish(g, None if getattr(e, "winerror", None) == 259 else e)
                return
            if ev is None:
                # Closing every watched key of the group ends its watch (the
                # key objects are the watch's handles, as for a Win32 handle):
                # seen within one slice of next(). So does closing their hive
                # (the registry's close()): then the rf_watch is freed here,
                # since it pins the hive and with it the agent's connection,
                # which close() waits for (it killed the agent after 5 s).
                if g.reg.closed:
                    g.rfw.stop()
                    g.rfw.close()
                    g.closed = True
                    self._finish(g, None)
                    return
                if all(self.keys[i].closed for i in idx):
                    g.rfw.stop()
                    self._finish(g, None)
                    return
                continue
            kind, index, seq, status, snap = ev
            try:
                self._event(idx, kind, index, seq, status, _agent.Reader(snap))
            except _MalformedSnapshot as e:
                # (cut short, bytes left over): the watch ends with that
                # error, raised to its reader. Left to end this thread, the
                # watch went silent.
                g.rfw.stop()
                self._finish(g, error_from_status(13, f"a change notification's snapshot is malformed: {e}"))
                return
            except Exception as e:  # (a bug, a wakeup that raises): the same, with that error
                g.rfw.stop()
                self._finish(g, e)
                return

    def _event(self, idx: list[int], kind: int, index: int, seq: int, status: int, r: _agent.Reader) -> None:
        """A change (the key's new snapshot in `r`) or a lost key (`status`),
        from either transport (EV_CHANGE / EV_LOST = RF_WATCH_CHANGE / _LOST)."""
        if index >= len(idx):
            return
        st = self._states[idx[index]]
        assert st is not None
        if kind == _agent.EV_LOST:
            with self._cond:
                st.lost = status
                self._notify()
            return
        label = _label(st.key)
        try:
            snap = parse_snapshot(r, label)
        except (ValueError, struct.error) as e:
            raise _MalformedSnapshot(str(e)) from e
        now = time.perf_counter()
        with self._cond:
            st.latest = snap
            st.seq = seq
            st.received = now
            if not st.dirty:
                st.dirty = True
                self._ready.append(idx[index])
            self._notify()

    def _notify(self) -> None:
        self._cond.notify_all()
        for w in list(self._wakeups):  # a wakeup may remove itself
            w()

    def _finish(self, g: _Group, err: BaseException | None) -> None:
        with self._cond:
            g.ended = True
            if err is not None and not self._stopped and self._error is None:
                self._error = err
            self._notify()

    # --- consumer side ---------------------------------------------------------

    def _ended(self) -> bool:
        return (
            self._stopped
            or all(g.ended for g in self._groups)
            or all(s is not None and s.lost is not None for s in self._states)
        )

    def _poll(self) -> Diff | None | type[StopIteration]:
        """One Diff if one is ready, None if none yet, StopIteration if the
        watch is over (raises its error, if it died). Caller holds _cond."""
        while self._ready:
            i = self._ready.pop(0)
            st = self._states[i]
            assert st is not None
            st.dirty = False
            new = st.latest
            d = diff_snapshots(st.base, new)
            st.base = new
            if d:
                d.key = st.key
                d.seq = st.seq
                d.received = st.received
                return d
        if self._error is not None and not self._stopped:
            err, self._error = self._error, None
            self._stopped = True
            raise err
        if self._ended():
            return StopIteration
        return None

    def get(self, timeout: float | None = None) -> Diff | None:
        """The next Diff, waiting up to `timeout` seconds (None: forever);
        None on timeout or when the watch is over.

        Raises
        ------
        ConnectionError
            The agent went away.
        """
        timeout = check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            return self._get(deadline)
        except BaseException:
            if self._stopped:  # the watch died with this error: end every group now
                self.stop()
            raise

    def _get(self, deadline: float | None) -> Diff | None:
        with self._cond:
            while True:
                item = self._poll()
                if item is StopIteration:
                    return None
                if item is not None:
                    return item  # type: ignore[return-value]
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)

    def __iter__(self) -> Iterator[Diff]:
        return self

    def __next__(self) -> Diff:
        d = self.get(self.timeout)
        if d is None:
            raise StopIteration
        return d

    @property
    def lost(self) -> dict[Any, int]:
        """Keys that cannot be watched any more (deleted...), with the status."""
        return {s.key: s.lost for s in self._states if s is not None and s.lost is not None}

    @property
    def stopped(self) -> bool:
        with self._cond:
            return self._ended()

    def snapshot(self, key: Any) -> Snapshot:
        """The last snapshot reported for `key` (the baseline of the next Diff)."""
        for s in self._states:
            if s is not None and s.key is key:
                return s.base
        raise KeyError(key)

    def stop(self, timeout: float = 10.0) -> None:
        """Ends the watch (from any thread; again is harmless). Iteration
        ends. Each group's rf_watch is stopped, and closed once its reader
        thread has ended: a group closed is done, and a later stop() (or
        the watch's collection) finishes what one could not (interrupted,
        or called from a reader thread's wakeup, which cannot join the
        threads). After the watch died with an error (raised by get()), the
        error path only marks it stopped (it holds the condition, where the
        threads cannot be joined): this still ends every group; returning at
        once here left the other groups' threads running, the hive pinned."""
        woke: BaseException | None = None
        with self._cond:
            if not self._stopped:  # (the first stop wakes the readers of the watch; others need not)
                self._stopped = True
                try:
                    self._notify()
                except Exception as e:  # (a wakeup that raises: the groups end all the same)
                    woke = e
        for g in self._groups:
            if g.closed:
                continue
            g.rfw.stop()
            if g.thread is not None and g.thread is not threading.current_thread():
                g.thread.join(timeout)
                if not g.thread.is_alive():
                    g.rfw.close()
                    g.closed = True
        if woke is not None:
            raise woke

    close = stop

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        try:
            if any(not g.closed for g in self._groups):
                self.stop(timeout=1.0)
        except Exception:
            pass


def watch(
    keys: Any,
    *,
    subtree: bool = True,
    filter: int = ALL,
    timeout: float | None = None,
    keep_data: bool = False,
    max_keys: int = 100000,
) -> Watch:
    """Watches live keys for changes; iterate the result for Diffs.

    Parameters
    ----------
    keys
        A live Key or an iterable of them (from regfast.connect(): one or
        several connections). No limit of 64: the agent waits on 63 keys per
        thread.
    subtree
        Watch each key's whole subtree (else the key alone).
    filter
        REG_NOTIFY_CHANGE_* bits: NAME (subkeys added/deleted), LAST_SET
        (values), ATTRIBUTES, SECURITY. 0 or other bits raise OSError 87.
    timeout
        Iteration ends after this many seconds without a change (None: never).
    keep_data
        Keep value data in the snapshots, so each Change has old and new data
        (else old data is known by hash only; new data is always readable
        from the key).
    max_keys
        Largest subtree snapshotted per key (the Diff says ``truncated``).

    Returns
    -------
    Watch
        An iterator of :class:`regfast.Diff` (``.key``, ``.seq`` and the
        changes), a context manager, with ``get(timeout)`` and ``stop()``.
    """
    return Watch(
        keys, subtree=subtree, filter=filter, timeout=timeout, keep_data=keep_data, max_keys=max_keys
    )


def _loop_wakeup(w: Watch, loop: asyncio.AbstractEventLoop, ev: asyncio.Event) -> Callable[[], None]:
    """The wakeup an AsyncWatch adds to its Watch: sets `ev` in `loop`. The
    watch may outlive the loop (it lives as long as its keys, and an `async
    for` that ended by its idle timeout does not stop it): once the loop is
    closed nobody can await `ev`, so the wakeup removes itself."""

    def wake() -> None:
        try:
            loop.call_soon_threadsafe(ev.set)
        except RuntimeError:  # "Event loop is closed"
            try:
                w._wakeups.remove(wake)
            except ValueError:
                pass

    return wake


class AsyncWatch:
    """``async for change in regfast.awatch(keys)``: the asyncio face of Watch."""

    def __init__(self, keys: Any, **kwargs: Any) -> None:
        self._keys = keys
        self._kwargs = kwargs
        self._w: Watch | None = None
        self._event: asyncio.Event | None = None
        self.timeout = kwargs.get("timeout")

    async def _start(self) -> Watch:
        if self._w is None:
            loop = asyncio.get_running_loop()
            self._event = asyncio.Event()
            ev = self._event
            w = await loop.run_in_executor(None, lambda: Watch(self._keys, **self._kwargs))
            w._wakeups.append(_loop_wakeup(w, loop, ev))
            self._w = w
        return self._w

    def __aiter__(self) -> AsyncIterator[Diff]:
        return self

    async def __anext__(self) -> Diff:
        w = await self._start()
        ev = self._event
        assert ev is not None
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            ev.clear()
            try:
                with w._cond:
                    item = w._poll()
            except BaseException:
                if w._stopped:  # died with this error: end every group (see Watch.stop)
                    await asyncio.get_running_loop().run_in_executor(None, w.stop)
                raise
            if item is StopIteration:
                raise StopAsyncIteration
            if item is not None:
                return item  # type: ignore[return-value]
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise StopAsyncIteration
            try:
                await asyncio.wait_for(ev.wait(), left)
            except asyncio.TimeoutError:
                raise StopAsyncIteration from None

    async def stop(self) -> None:
        if self._w is not None:
            w = self._w
            await asyncio.get_running_loop().run_in_executor(None, w.stop)

    async def __aenter__(self) -> AsyncWatch:
        await self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def awatch(keys: Any, **kwargs: Any) -> AsyncWatch:
    """``async for change in regfast.awatch(keys, ...)``: same arguments as
    :func:`watch`. The watch starts at the first iteration (or ``async with``)."""
    if "filter" in kwargs:
        check_filter(kwargs["filter"])
    if "timeout" in kwargs:
        kwargs["timeout"] = check_timeout(kwargs["timeout"])
    return AsyncWatch(keys, **kwargs)
