"""The agent's snapshot format (src/agent/agent.h) read into a
:class:`regfast.hive.diff.Snapshot`: what Key.snapshot(), watches and app
hives return."""

from __future__ import annotations

import struct

from regfast.hive.diff import KeyState, Snapshot, ValueState, fold, path_order
from regfast.live import protocol as _agent
from regfast.live.protocol import Reader

__all__ = ["parse_snapshot"]


def parse_snapshot(r: Reader, root: str) -> Snapshot:
    """The snapshot in `r`, which holds it and nothing else: bytes left after
    its keys raise ValueError (a count too small would drop keys unseen), as
    a payload cut short does.

    Two keys of one folded path, or two values of one folded name in a key,
    keep the first (as Snapshot.from_hive does) and list the key in
    ``damaged``: the registry holds no such pair, but the agent's names go
    through Windows' upcase table and ours through regfast's, and the later
    one silently replacing the first could hide a change to either."""
    n_keys = r.u32()
    flags = r.u32()
    has_data = bool(flags & _agent.SNAP_DATA)
    keys: dict[str, KeyState] = {}
    twice: set[str] = set()
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
            folded = fold(name)
            if folded in vals:
                twice.add(path)
            else:
                vals[folded] = ValueState(name, vtype, size, h, data)
        folded = fold(path)
        if folded in keys:
            twice.add(path)
        else:
            keys[folded] = KeyState(path, lw, vals, sd or None)
    if r.pos != len(b):
        raise ValueError(f"snapshot payload: {len(b) - r.pos} bytes after its {n_keys} keys")
    return Snapshot(
        root,
        keys,
        keep_data=has_data,
        truncated=bool(flags & _agent.SNAP_TRUNCATED),
        damaged=tuple(sorted(twice, key=path_order)),
    )
