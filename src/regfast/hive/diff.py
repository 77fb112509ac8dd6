"""Snapshots of a registry subtree and the differences between two of them.

One model serves both kinds of registry:

* offline: ``regfast.diff(hive_a, hive_b, path)`` snapshots the same subtree
  of two hive files (one C scan each) and compares them;
* live: :func:`regfast.watch` keeps a snapshot of every watched subtree (made
  by ``regfast-agent`` next to the registry, see :mod:`regfast.live.protocol`) and,
  at each change notification, yields the :class:`Diff` between the previous
  snapshot and the new one.

A snapshot records, per key, its path and last-write time, and per value its
name, type, size and a 64-bit FNV-1a hash of its data -- not the data itself,
so a long-running watch holds a bounded amount of memory -- unless the data
was kept (``keep_data=True``, or an offline hive, whose data stays in the
mapping and costs nothing to keep). A value whose data was not kept shows
in a diff with ``data`` None on that side; its type, size and hash are
always there.

Names compare case-insensitively, as the registry does; paths in a
:class:`Diff` are spelled as stored (the newer spelling for keys present on
both sides).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from regfast._bulk import ScanTable
from regfast._native import decode_value as _decode_value
from regfast._native import sd_to_sddl
from regfast._types import type_name, upcase_name

__all__ = [
    "FNV64_OFFSET",
    "FNV64_PRIME",
    "fnv1a64",
    "decode_data",
    "fold",
    "ValueState",
    "KeyState",
    "Snapshot",
    "Change",
    "Diff",
    "diff_snapshots",
    "snapshot_hive",
]

FNV64_OFFSET = 0xCBF29CE484222325
FNV64_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1


def fnv1a64(data: bytes | bytearray | memoryview) -> int:
    """64-bit FNV-1a of `data`: the hash regfast-agent computes for every
    value in a snapshot (src/agent/agent_snapshot.c). Pure Python, so only
    used where a hash is missing on one side of a comparison, and by tests."""
    h = FNV64_OFFSET
    for b in bytes(data):
        h = ((h ^ b) * FNV64_PRIME) & _MASK64
    return h


def path_order(path: str) -> tuple[list[str], str]:
    """Sort key of paths in a Diff: by folded parts (parents first), then as
    stored (two paths that fold alike: a set's order would vary by run)."""
    return fold(path).split("\\"), path


def full_path(root: str, rel: str) -> str:
    """A key's path as a Diff shows it: `rel` (relative to a snapshot's root,
    "" for the root itself) below `root`."""
    if not rel:
        return root
    return f"{root}\\{rel}" if root else rel


def fold(name: str) -> str:
    """The form names are matched by: the registry compares names by each
    UTF-16 unit upcased (``upcase_name``): str.upper() would make one name
    of two the registry tells apart (U+10428 and U+10400: outside the BMP,
    nothing is upcased)."""
    return upcase_name(name)


def decode_data(vtype: int, data: bytes | bytearray | memoryview, name: object = None) -> Any:
    """Typed decoding by the offline binding's decoder itself (Value.value):
    str for REG_SZ / REG_EXPAND_SZ (up to the first NUL, not expanded) and
    REG_LINK, int for REG_DWORD / REG_DWORD_BIG_ENDIAN / REG_QWORD (of any
    size, as winreg: see regfast.Value.value), list[str] for REG_MULTI_SZ,
    bytes for everything else. The live registry's values decode here.
    `name` is accepted for older callers and unused: this never fails."""
    return _decode_value(vtype, data)


# ---------------------------------------------------------------------------
# Snapshots
# ---------------------------------------------------------------------------


class ValueState:
    """One value as a snapshot saw it: name, type, size, hash and (when kept)
    the data. ``data`` is bytes or None; ``value`` is the decoded data or None."""

    __slots__ = ("name", "type", "size", "_hash", "_data", "_src", "_row")

    def __init__(
        self,
        name: str,
        type: int,
        size: int,
        hash: int | None = None,
        data: bytes | None = None,
        src: ScanTable | None = None,
        row: int = -1,
    ) -> None:
        self.name = name
        self.type = type
        self.size = size
        self._hash = hash
        self._data = data
        self._src = src  # a ScanTable the data lives in (offline: zero copy)
        self._row = row

    def raw(self) -> memoryview | bytes | None:
        """The data without copying (a view into a hive mapping), or None."""
        if self._data is not None:
            return self._data
        if self._src is not None:
            return self._src.value_data(self._row)
        return None

    @property
    def data(self) -> bytes | None:
        raw = self.raw()
        return None if raw is None else bytes(raw)

    @property
    def hash(self) -> int:
        """FNV-1a 64 of the data (computed on demand when only the data is known)."""
        if self._hash is None:
            raw = self.raw()
            self._hash = fnv1a64(raw if raw is not None else b"")
        return self._hash

    @property
    def value(self) -> Any:
        raw = self.raw()
        if raw is None:
            return None
        return decode_data(self.type, raw)

    def same_as(self, other: ValueState) -> bool:
        if self.type != other.type or self.size != other.size:
            return False
        a, b = self.raw(), other.raw()
        if a is not None and b is not None:
            return a == b
        if self._hash is None and a is None or other._hash is None and b is None:
            return False  # nothing to compare with: report it changed
        return self.hash == other.hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValueState):
            return NotImplemented
        return self.name == other.name and self.same_as(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ValueState({self.name!r}, {type_name(self.type)}, {self.size} bytes, hash={self.hash:#018x})"


class KeyState(NamedTuple):
    """One key of a snapshot: path relative to the snapshot root (as stored),
    last-write FILETIME, values by folded name, a hash of the key's security
    descriptor where the snapshot could read it (None otherwise: live keys
    without READ_CONTROL), and its class name where the snapshot read it
    ("" when the key has none; None when not read: live snapshots).

    The hash is the one every snapshot records, live or offline (the agent's
    and Key.snapshot(): FNV-1a 64 of owner + group + DACL), so snapshots of
    both kinds compare. An offline snapshot also keeps ``sd``, the whole
    descriptor as stored (its SACL too: auditing changes count); None where
    not read (live). See security_differs."""

    path: str
    last_write: int
    values: dict[str, ValueState]
    security: int | None = None
    class_name: str | None = None
    sd: bytes | None = None


class Snapshot:
    """A subtree at one moment: keys by folded relative path ('' = the root).

    Attributes
    ----------
    root : str
        Display path of the subtree's root (``HKCU\\Software\\X``, or the path
        inside an offline hive).
    keys : dict[str, KeyState]
    keep_data : bool
        Whether value data is held (else only hashes).
    truncated : bool
        The subtree was larger than the snapshot's key limit; keys past it are
        missing (a diff against it reports nothing about them).
    damaged : tuple[str, ...]
        Relative paths of keys whose subkeys or values could not all be read
        (a hive opened with errors="tolerant": its scan skips damaged
        entries), that hold two values of one name, or whose class name or
        security descriptor does not read (see from_hive). What is missing
        below them is not in ``keys``, so a diff may report it as added or
        removed.
    """

    __slots__ = ("root", "keys", "keep_data", "truncated", "damaged")

    def __init__(
        self,
        root: str,
        keys: dict[str, KeyState],
        keep_data: bool = False,
        truncated: bool = False,
        damaged: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.keys = keys
        self.keep_data = keep_data
        self.truncated = truncated
        self.damaged = damaged

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        n = sum(len(k.values) for k in self.keys.values())
        return f"<regfast.Snapshot {self.root!r}: {len(self.keys)} keys, {n} values>"

    def full_path(self, rel: str) -> str:
        return full_path(self.root, rel)

    @classmethod
    def from_hive(cls, hive: Any, path: str | None = None) -> Snapshot:
        """Snapshot of an offline hive's subtree at `path` (default: the root),
        from one C scan. Value data stays in the hive mapping (no copy).

        A hive opened with errors="tolerant" is scanned with errors="skip"
        (the scan's default for it): keys whose subkeys or values could not
        all be read are listed in ``damaged``, and the unreadable value rows
        are left out. A hive opened strictly raises at the first damage,
        but for what a strict read lets pass: a key holding two values of one
        name (which lookups answer with the first; two subkeys of one name
        make a strict scan raise): only the first is compared, and the key
        is listed in ``damaged``; a key whose class name or security
        descriptor does not read (no listing or export reads them): not
        compared, and the key is listed in ``damaged``."""
        table = hive.scan(path)
        root = table.root_path  # spelled as stored, like every scan path
        cut = len(root) + 1 if root else 0
        paths = table.key_paths()
        lw = table.key_last_write.tolist()
        # Security descriptors and class names are compared too: a DACL
        # granting Everyone full control is a change a CI diff must not pass
        # as "the same" (setting a key's security does not move its
        # last-write time). Read once per sk cell, which keys share; a key
        # whose descriptor or class cannot be read is named damaged.
        sds, hashes, classes, unreadable = table._key_meta()
        keys: dict[str, KeyState] = {}
        by_row: list[dict[str, ValueState]] = []
        rels: list[str] = []
        # Two keys of one path, or two values of one name in a key (names
        # compare case-insensitively, and a damaged hive can hold "V" beside
        # "v"): the first is compared (the one a lookup finds), and the key is
        # listed in `damaged`; keyed by name alone, the later one silently
        # replaced the first and a change to either could go unreported.
        twice: set[str] = set()
        for i, p in enumerate(paths):
            rel = p[cut:] if i else ""
            vals: dict[str, ValueState] = {}
            folded = fold(rel)
            if folded in keys:
                twice.add(rel)
            else:
                keys[folded] = KeyState(rel, lw[i], vals, hashes[i], classes[i], sds[i])
            by_row.append(vals)
            rels.append(rel)
        # Rows with a status (a skipping scan only): on a key, some of its
        # subkeys or values were skipped; on a value, the value could not be
        # read (a malformed one, status 13, was read: its data is there).
        damaged = twice | {rels[i] for i in table.key_status.nonzero()[0].tolist()}
        damaged.update(rels[i] for i in unreadable)
        unread = (table.value_status != 0) & ~table.value_malformed
        bad_values = set(unread.nonzero()[0].tolist())
        names = table.value_names()
        relisted = table.value_relisted.tolist()  # the same vk again: one value, compared once
        vkey = table.value_key.tolist()
        vtype = table.value_type.tolist()
        vlen = table.value_length.tolist()
        for j, name in enumerate(names):
            if bad_values and j in bad_values:
                damaged.add(rels[vkey[j]])
                continue
            if relisted[j]:
                continue
            row, folded = by_row[vkey[j]], fold(name)
            if folded in row:
                damaged.add(rels[vkey[j]])
                continue
            row[folded] = ValueState(name, vtype[j], vlen[j], None, None, table, j)
        return cls(root, keys, keep_data=True, damaged=tuple(sorted(damaged, key=path_order)))


def security_differs(old: KeyState, new: KeyState) -> bool:
    """Whether a key's security differs. Where both sides kept the whole
    descriptor (offline), by it: other bytes whose SDDL reads the same (the
    parts laid out in another order) are the same security, SACL
    included. Else by the snapshot hashes (owner, group, DACL), which every
    kind of snapshot records. None on a side: not read there, not compared."""
    if old.sd is not None and new.sd is not None:
        return old.sd != new.sd and not same_sddl(old.sd, new.sd)
    return old.security is not None and new.security is not None and old.security != new.security


def same_sddl(a: bytes, b: bytes) -> bool:
    """Two descriptors whose SDDL is the same (False when either does not parse)."""
    try:
        return bool(sd_to_sddl(a) == sd_to_sddl(b))
    except (OSError, ValueError):
        return False


def sd_texts(old: bytes | None, new: bytes | None) -> tuple[str | None, str | None]:
    """Both sides of a security change as a diff line shows them: SDDL
    (None where the snapshot kept no descriptor: live), or the bytes in hex
    when the SDDL reads the same on both sides or does not parse."""

    def hexed(sd: bytes) -> str:
        return f"{len(sd)} bytes {sd[:64].hex()}{'...' if len(sd) > 64 else ''}"

    def sddl(sd: bytes) -> str:
        try:
            return sd_to_sddl(sd)
        except (OSError, ValueError):
            return f"(not a valid descriptor: {hexed(sd)})"

    a = None if old is None else sddl(old)
    b = None if new is None else sddl(new)
    if old is not None and new is not None and a == b:
        a, b = hexed(old), hexed(new)
    return a, b


def snapshot_hive(hive: Any, path: str | None = None) -> Snapshot:
    """Snapshot.from_hive(hive, path)."""
    return Snapshot.from_hive(hive, path)


# ---------------------------------------------------------------------------
# Differences
# ---------------------------------------------------------------------------

KEY_ADDED = "key_added"
KEY_REMOVED = "key_removed"
KEY_TOUCHED = "key_touched"
KEY_SECURITY = "security_changed"
KEY_CLASS = "class_changed"
VALUE_ADDED = "value_added"
VALUE_REMOVED = "value_removed"
VALUE_CHANGED = "value_changed"


class Change(NamedTuple):
    """One difference.

    kind : "key_added" | "key_removed" | "key_touched" (last-write time changed,
        nothing else seen in that key) | "security_changed" (the key's security
        descriptor changed: live, its owner, group or DACL; offline, any of
        it, SACL included) | "class_changed" (the key's class name; offline
        diffs only: live snapshots do not read it) | "value_added" |
        "value_removed" | "value_changed"
    path : the key's full path
    name : the value's name (None for key changes; "" is the default value)
    old, new : ValueState on each side (None where it does not exist); for
        key changes, None
    old_time, new_time : the key's last-write FILETIMEs (None where it does not exist)
    old_text, new_text : for "security_changed" offline, the descriptor on
        each side as SDDL, or in hex where the SDDL reads the same (live:
        None, read the new one with ``key.security()``); for
        "class_changed", the class name on each side ("" for none)
    """

    kind: str
    path: str
    name: str | None = None
    old: ValueState | None = None
    new: ValueState | None = None
    old_time: int | None = None
    new_time: int | None = None
    old_text: str | None = None
    new_text: str | None = None

    @property
    def old_value(self) -> Any:
        return None if self.old is None else self.old.value

    @property
    def new_value(self) -> Any:
        return None if self.new is None else self.new.value

    def describe(self) -> str:
        """One line, as `regfast diff` prints it."""
        where = self.path if self.name is None else f"{self.path} : {self.name or '(default)'}"
        if self.kind == KEY_ADDED:
            return f"+ key    {self.path}"
        if self.kind == KEY_REMOVED:
            return f"- key    {self.path}"
        if self.kind == KEY_TOUCHED:
            return f"~ key    {self.path} (last write only)"
        if self.kind == KEY_SECURITY:
            if self.old_text is None or self.new_text is None:
                return f"~ key    {self.path} (security descriptor)"
            return f"~ key    {self.path} (security descriptor) : {self.old_text} -> {self.new_text}"
        if self.kind == KEY_CLASS:
            old, new = (json.dumps(t, ensure_ascii=False) for t in (self.old_text, self.new_text))
            return f"~ key    {self.path} (class name) : {old} -> {new}"
        if self.kind == VALUE_ADDED:
            return f"+ value  {where} = {_show(self.new)}"
        if self.kind == VALUE_REMOVED:
            return f"- value  {where} = {_show(self.old)}"
        old, new = _show(self.old), _show(self.new)
        if old == new:  # what differs is not in what a decoder shows
            old, new = _show_raw_pair(self.old, self.new)
        return f"~ value  {where} : {old} -> {new}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (data as hex when it is not text or a number)."""
        d: dict[str, Any] = {"kind": self.kind, "path": self.path}
        if self.name is not None:
            d["name"] = self.name
        for side, vs in (("old", self.old), ("new", self.new)):
            if vs is not None:
                d[side] = _json_state(vs)
        if self.kind == VALUE_CHANGED and "data" in d["old"] and d["old"].get("data") == d["new"].get("data"):
            # the same decoded data, other bytes (after a REG_SZ's NUL, its
            # terminator): the bytes, so the change can be seen
            for side, vs in (("old", self.old), ("new", self.new)):
                raw = vs.raw() if vs is not None else None
                if raw is not None:
                    d[side]["raw"] = bytes(raw).hex()
        for side, t in (("old_time", self.old_time), ("new_time", self.new_time)):
            if t is not None and self.name is None:
                d[side] = t
        for side, text in (("old_text", self.old_text), ("new_text", self.new_text)):
            if text is not None:
                d[side] = text
        return d


def _show(vs: ValueState | None) -> str:
    if vs is None:
        return "-"
    v = vs.value
    if v is None:
        return f"{type_name(vs.type)} ({vs.size} bytes, hash {vs.hash:016x})"
    if isinstance(v, bytes):
        text = v[:32].hex(" ") + (f" ... ({len(v)} bytes)" if len(v) > 32 else "")
    else:
        text = json.dumps(v, ensure_ascii=False) if isinstance(v, (str, list)) else str(v)
    return f"{type_name(vs.type)} {text}"


_RAW_SHOWN = 16


def _first_difference(a: bytes, b: bytes) -> int:
    """The offset of the first byte where a and b differ (the shorter one's
    length when one begins the other): halving with slice compares, which
    run at memcmp speed (a byte loop took seconds on a 30 MB value)."""
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while hi - lo > 1:  # a[lo:hi] differs from b[lo:hi]; a[:lo] == b[:lo]
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def _show_raw_pair(old: ValueState | None, new: ValueState | None) -> tuple[str, str]:
    """Both sides' bytes where they first differ, for a change whose decoded
    data reads the same ("ab" after a REG_SZ's NUL, without its terminator,
    a big value's last segment): 16 bytes from the first difference."""
    a = old.raw() if old is not None else None
    b = new.raw() if new is not None else None
    if a is None or b is None or old is None or new is None:
        return _show(old), _show(new)
    a, b = bytes(a), bytes(b)
    at = _first_difference(a, b)
    # short data whole; longer from the 16-byte line holding the first difference
    at = 0 if max(len(a), len(b)) <= _RAW_SHOWN else at - at % _RAW_SHOWN

    def one(vs: ValueState, raw: bytes) -> str:
        window = raw[at : at + _RAW_SHOWN].hex(" ") or "(end)"
        more = " ..." if len(raw) > at + _RAW_SHOWN else ""
        where = f"@{at:#x}: " if at else ""
        return f"{type_name(vs.type)} bytes {where}{window}{more} ({len(raw)} bytes)"

    return one(old, a), one(new, b)


def _json_state(vs: ValueState) -> dict[str, Any]:
    d: dict[str, Any] = {"type": vs.type, "size": vs.size, "hash": f"{vs.hash:016x}"}
    v = vs.value
    if v is not None:
        d["data"] = v.hex() if isinstance(v, bytes) else v
    return d


class Diff:
    """What changed between two snapshots of one subtree.

    Iterating gives :class:`Change` records: keys added (parents first), keys
    removed, then value changes, each group sorted by path. The lists
    ``keys_added``, ``keys_removed``, ``keys_touched``, ``values_added``,
    ``values_removed`` and ``values_changed`` hold the same records by kind.
    A watch notification carries, besides, the watched ``key`` it came from,
    the notification's sequence number ``seq`` and when it arrived
    (``received``, a time.perf_counter() value).

    ``damaged`` lists ``(side, path)`` pairs, side "old" or "new": keys of a
    damaged hive whose subkeys or values could not all be read (opened with
    errors="tolerant"), that hold two values of one name, or whose class
    name or security descriptor does not read (any open). Changes at and
    below such a key may come from the damage rather than from an edit;
    summary() says how many there are.

    ``roots`` is None, or, when the compared path stood for a different key
    in each hive (``CurrentControlSet`` follows each hive's own
    ``Select\\Current``), the pair (old, new) of keys actually compared: the
    changes' paths are then spelled from the path as given (``root``), since
    neither side's key names both.
    """

    __slots__ = ("root", "changes", "key", "seq", "truncated", "received", "damaged", "roots")

    def __init__(
        self,
        root: str,
        changes: list[Change],
        key: Any = None,
        seq: int = 0,
        truncated: bool = False,
        damaged: list[tuple[str, str]] | None = None,
    ) -> None:
        self.root = root
        self.changes = changes
        self.key = key  # watch: the watched key it came from
        self.seq = seq  # watch: the agent's notification number for that key
        self.truncated = truncated
        self.received = 0.0  # watch: time.perf_counter() when the notification arrived
        self.damaged = damaged if damaged is not None else []
        self.roots: tuple[str, str] | None = None

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def _kind(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    keys_added = property(lambda self: self._kind(KEY_ADDED))
    keys_removed = property(lambda self: self._kind(KEY_REMOVED))
    keys_touched = property(lambda self: self._kind(KEY_TOUCHED))
    security_changed = property(lambda self: self._kind(KEY_SECURITY))
    classes_changed = property(lambda self: self._kind(KEY_CLASS))
    values_added = property(lambda self: self._kind(VALUE_ADDED))
    values_removed = property(lambda self: self._kind(VALUE_REMOVED))
    values_changed = property(lambda self: self._kind(VALUE_CHANGED))

    def summary(self) -> str:
        counts = [
            (len(self._kind(k)), label)
            for k, label in (
                (KEY_ADDED, "keys added"),
                (KEY_REMOVED, "keys removed"),
                (VALUE_ADDED, "values added"),
                (VALUE_REMOVED, "values removed"),
                (VALUE_CHANGED, "values changed"),
                (KEY_SECURITY, "security descriptors changed"),
                (KEY_CLASS, "class names changed"),
                (KEY_TOUCHED, "keys touched"),
            )
        ]
        parts = [f"{n} {label}" for n, label in counts if n]
        text = ", ".join(parts) if parts else "no differences"
        if self.damaged:
            n = len(self.damaged)
            text += f" ({n} damaged key{'s' if n != 1 else ''} not fully compared)"
        return text

    def to_list(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.changes]

    def __repr__(self) -> str:
        return f"<regfast.Diff {self.root!r}: {self.summary()}>"


def diff_snapshots(old: Snapshot, new: Snapshot, *, touched: bool = True) -> Diff:
    """The differences from snapshot `old` to snapshot `new` (of one subtree).

    Values of added and removed keys are reported too (as value_added /
    value_removed), so nothing that appeared or vanished goes unsaid. With
    ``touched``, keys present on both sides whose last-write time moved
    without any other difference inside them are reported as key_touched.
    """
    root = new.root
    full = new.full_path
    changes_k: list[Change] = []
    changes_v: list[Change] = []
    ok, nk = old.keys, new.keys
    for fk, ks in nk.items():
        if fk not in ok:
            changes_k.append(Change(KEY_ADDED, full(ks.path), new_time=ks.last_write))
            for vs in ks.values.values():
                changes_v.append(Change(VALUE_ADDED, full(ks.path), vs.name, None, vs))
    for fk, ks in ok.items():
        if fk not in nk:
            changes_k.append(Change(KEY_REMOVED, full(ks.path), old_time=ks.last_write))
            for vs in ks.values.values():
                changes_v.append(Change(VALUE_REMOVED, full(ks.path), vs.name, vs, None))
    # keys whose direct children came or went: their last-write moved for a reason
    parents_changed = set()
    for c in changes_k:
        parents_changed.add(fold(c.path.rpartition("\\")[0]))
    for fk, nks in nk.items():
        oks = ok.get(fk)
        if oks is None:
            continue
        path = full(nks.path)
        before = len(changes_v)
        ov, nv = oks.values, nks.values
        for fn, vs in nv.items():
            o = ov.get(fn)
            if o is None:
                changes_v.append(Change(VALUE_ADDED, path, vs.name, None, vs))
            elif not o.same_as(vs):
                changes_v.append(Change(VALUE_CHANGED, path, vs.name, o, vs))
        for fn, vs in ov.items():
            if fn not in nv:
                changes_v.append(Change(VALUE_REMOVED, path, vs.name, vs, None))
        # None: not read on that side (live without READ_CONTROL; live
        # snapshots read no class), so not compared
        sd_changed = security_differs(oks, nks)
        if sd_changed:
            old_text, new_text = sd_texts(oks.sd, nks.sd)
            changes_k.append(
                Change(
                    KEY_SECURITY,
                    path,
                    old_time=oks.last_write,
                    new_time=nks.last_write,
                    old_text=old_text,
                    new_text=new_text,
                )
            )
        class_changed = (
            oks.class_name is not None and nks.class_name is not None and oks.class_name != nks.class_name
        )
        if class_changed:
            changes_k.append(
                Change(
                    KEY_CLASS,
                    path,
                    old_time=oks.last_write,
                    new_time=nks.last_write,
                    old_text=oks.class_name,
                    new_text=nks.class_name,
                )
            )
        if (
            touched
            and len(changes_v) == before
            and not sd_changed
            and not class_changed
            and oks.last_write != nks.last_write
            and fold(path) not in parents_changed
        ):
            changes_k.append(Change(KEY_TOUCHED, path, old_time=oks.last_write, new_time=nks.last_write))
    order = {KEY_ADDED: 0, KEY_REMOVED: 1, KEY_SECURITY: 2, KEY_CLASS: 3, KEY_TOUCHED: 4}
    changes_k.sort(key=lambda c: (order[c.kind], path_order(c.path)))
    vorder = {VALUE_ADDED: 0, VALUE_REMOVED: 1, VALUE_CHANGED: 2}
    changes_v.sort(key=lambda c: (path_order(c.path), vorder[c.kind], fold(c.name or "")))
    damaged = [("old", old.full_path(p)) for p in old.damaged] + [("new", full(p)) for p in new.damaged]
    return Diff(root, changes_k + changes_v, truncated=old.truncated or new.truncated, damaged=damaged)


def changes_of(diffs: Iterable[Diff]) -> Iterator[Change]:
    """Every Change of a sequence of Diffs, in order."""
    for d in diffs:
        yield from d
