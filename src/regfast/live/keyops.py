"""The live registry's methods of :class:`regfast.Key`: ``key.set_security``,
``grant``, ``take_ownership``, ``mui_string``, ``watch``, ``snapshot`` and
``save`` are defined on the binding's Key and call the functions here, which
this module registers with the binding at import (:mod:`regfast.live.registry`
imports it), so the binding imports nothing of :mod:`regfast.live`.
"""

from __future__ import annotations

from regfast._native import Key, _set_live_methods
from regfast.hive.diff import Snapshot
from regfast.live import admin
from regfast.live.protocol import Reader
from regfast.live.snapshot import parse_snapshot
from regfast.live.watch import watch

__all__ = ["snapshot"]

set_security = admin.set_security
grant = admin.grant
take_ownership = admin.take_ownership
mui_string = admin.mui_string
save_key = admin.save_key


def full_path(key: Key) -> str:
    """HKEY_...\\path for a live key; a hive file's key: its path."""
    reg = admin._OWNERS.get(key.hive)
    return str(reg.full_path(key)) if reg is not None else key.path


def snapshot(key: Key, *, subtree: bool = True, keep_data: bool = False, max_keys: int = 100000) -> Snapshot:
    """A Snapshot of `key` from the core's snapshot writer (any backend)."""
    label = full_path(key)
    data = key.snapshot_bytes(subtree=subtree, keep_data=keep_data, max_keys=max_keys)
    return parse_snapshot(Reader(data), label)


class _Methods:
    """The attribute table the binding looks methods up in."""

    set_security = staticmethod(set_security)
    grant = staticmethod(grant)
    take_ownership = staticmethod(take_ownership)
    mui_string = staticmethod(mui_string)
    save_key = staticmethod(save_key)
    snapshot = staticmethod(snapshot)
    full_path = staticmethod(full_path)
    watch = staticmethod(watch)


_set_live_methods(_Methods)
