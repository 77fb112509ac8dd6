"""The agent's snapshot format (src/agent/agent.h) read into a
:class:`regfast.hive.diff.Snapshot`: what Key.snapshot(), watches and app
hives return."""

from __future__ import annotations

import struct

from regfast.hive.diff import KeyState, Snapshot, ValueState, fold
from regfast.live import protocol as _agent
from regfast.live.protocol import Reader

__all__ = ["parse_snapshot"]


def parse_snapshot(r: Reader, root: str) -> Snapshot:
    n_keys = r.u32()
    flags = r.u32()
    has_data = bool(flags & _agent.SNAP_DATA)
    keys: dict[str, KeyState] = {}
    b = r.b
    unpack = struct.unpack_from
    for _ in range(n_keys):
        path = r.str16()
        lw, sd, nv = unpack("<QQI", b, r.pos)
        r.pos += 20
        vals: dict[str, ValueState] = {}
        for _ in range(nv):
            name = r.str16()
            vtype, size, h = unpack("<IIQ", b, r.pos)
            r.pos += 16
            data = r.raw(r.u32()) if has_data else None
            vals[fold(name)] = ValueState(name, vtype, size, h, data)
        keys[fold(path)] = KeyState(path, lw, vals, sd or None)
    return Snapshot(root, keys, keep_data=has_data, truncated=bool(flags & _agent.SNAP_TRUNCATED))
