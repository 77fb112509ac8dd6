"""Key paths as practitioners write them, for offline hives (Hive.open).

People copy paths from regedit, from documentation and from live-system
tools: ``HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip``. An offline hive
knows neither part:

* A hive-root prefix says where Windows mounts the hive: ``HKLM\\SOFTWARE``
  is the SOFTWARE hive, ``HKCU`` a user's NTUSER.DAT. It is stripped when it
  matches the hive's type (:func:`regfast.hive.forensics.detect_hive_type`), and
  refused when it does not, or when the type is unknown: a SOFTWARE path
  looked up in a SYSTEM hive is a mistake to report, not a guess to make.
* ``CurrentControlSet`` exists only on a running system, as a link to the
  ``ControlSet00N`` that ``Select\\Current`` names; it is resolved the same
  way here, and only that way (no fallback to another control set).

A key the hive really stores under such a name (a hive exported from a live
system may have a ``CurrentControlSet`` key) is always what the path means.
"""

from __future__ import annotations

import weakref
from typing import Any

from regfast._types import upcase_name
from regfast.exceptions import error_from_status
from regfast.hive.forensics import detect_hive_type

__all__ = ["ROOT_WORDS", "resolve_path", "current_control_set", "hive_type"]

_HKLM = ("HKLM", "HKEY_LOCAL_MACHINE")
_HKCU = ("HKCU", "HKEY_CURRENT_USER")
_HKU = ("HKU", "HKEY_USERS")
_VIEWS = {  # root keys that are no single hive
    "HKCR": "HKEY_CLASSES_ROOT is a merged view of SOFTWARE\\Classes and the user's UsrClass.dat",
    "HKEY_CLASSES_ROOT": "HKEY_CLASSES_ROOT is a merged view of SOFTWARE\\Classes and the user's "
    "UsrClass.dat",
    "HKCC": "HKEY_CURRENT_CONFIG is a link into SYSTEM\\CurrentControlSet\\Hardware Profiles\\Current",
    "HKEY_CURRENT_CONFIG": "HKEY_CURRENT_CONFIG is a link into SYSTEM\\CurrentControlSet\\Hardware "
    "Profiles\\Current",
}
_CCS = "CURRENTCONTROLSET"

#: First path components (upper case) that resolve_path rewrites.
ROOT_WORDS = frozenset(_HKLM + _HKCU + _HKU + tuple(_VIEWS) + (_CCS,))

# HKLM\<NAME>: the hive types (as detect_hive_type names them) Windows mounts there.
_HKLM_HIVES: dict[str, tuple[str, ...]] = {
    "SOFTWARE": ("SOFTWARE",),
    "SYSTEM": ("SYSTEM",),
    "SAM": ("SAM",),
    "SECURITY": ("SECURITY",),
    "BCD00000000": ("BCD",),
    "COMPONENTS": ("COMPONENTS",),
    "DRIVERS": ("DRIVERS",),
}
# NTUSER.DAT and DEFAULT have the same keys; only the stored file name tells them apart.
_USER: tuple[str, ...] = ("NTUSER", "DEFAULT")

_types: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def hive_type(hive: Any) -> str:
    """The hive's type as regfast.hive.forensics.detect_hive_type names it
    ("SYSTEM", "SOFTWARE", ..., "unknown"), found once per Hive."""
    t = _types.get(hive)
    if t is None:
        t = _types[hive] = detect_hive_type(hive).name
    return t


def _not_found(path: str, why: str) -> OSError:
    return error_from_status(2, f"{path}: {why}", path)


def _stores(hive: Any, name: str) -> bool:
    """True when the root has a subkey called `name` (case-insensitively)."""
    try:
        hive.root.subkey(name)
        return True
    except FileNotFoundError:
        return False


def _prefix(hive: Any, path: str, parts: list[str]) -> int:
    """How many leading components of `parts` are a hive-root prefix that
    matches this hive (0 when there is none); raises when one does not match."""
    first = upcase_name(parts[0])
    if first in _VIEWS:
        raise _not_found(path, _VIEWS[first] + ", not one hive: open the path inside the hive")
    if first in _HKLM:
        second = upcase_name(parts[1]) if len(parts) > 1 else ""
        if second not in _HKLM_HIVES:
            known = ", ".join(f"{parts[0]}\\{n}" for n in _HKLM_HIVES)
            raise _not_found(path, f"not a hive Windows mounts under {parts[0]} ({known})")
        n, want, where = 2, _HKLM_HIVES[second], f"{parts[0]}\\{parts[1]}"
    elif first in _HKCU:
        n, want, where = 1, _USER, parts[0]
    else:  # HKEY_USERS\<SID>, <SID>_Classes or .DEFAULT
        if len(parts) < 2:
            raise _not_found(path, f"{parts[0]} names no hive by itself (write {parts[0]}\\<SID>\\...)")
        second = upcase_name(parts[1])
        want = ("UsrClass",) if second.endswith("_CLASSES") else _USER
        n, where = 2, f"{parts[0]}\\{parts[1]}"
    have = hive_type(hive)
    if have not in want:
        mounted = " or ".join(want)
        if have == "unknown":
            raise _not_found(
                path,
                f"{where} is where a {mounted} hive is mounted, but this hive's type "
                "is unknown (neither its stored file name nor its root keys tell): "
                "open the path without the prefix",
            )
        raise _not_found(path, f"{where} is where a {mounted} hive is mounted, but this is a {have} hive")
    return n


def current_control_set(hive: Any, path: str = "CurrentControlSet") -> str:
    """The name of the ControlSet00N that ``Select\\Current`` names in a
    SYSTEM hive. Raises FileNotFoundError (winerror 2) when the hive has no
    ``Select\\Current`` or not the set it names: nothing else is tried."""
    try:
        current = hive.root.subkey("Select").value("Current")
    except FileNotFoundError:
        raise _not_found(
            path,
            "CurrentControlSet stands for the ControlSet that Select\\Current "
            "names, and this hive has no Select\\Current (not a SYSTEM hive?)",
        ) from None
    n = current.value
    if not isinstance(n, int) or not 0 < n < 1000:
        raise _not_found(path, f"Select\\Current is {n!r}, which names no ControlSet00N")
    name = f"ControlSet{n:03d}"
    if not _stores(hive, name):
        raise _not_found(path, f"Select\\Current names {name}, which this hive does not have")
    return name


def resolve_path(hive: Any, path: str) -> str:
    """`path` with a matching hive-root prefix stripped and a leading
    ``CurrentControlSet`` replaced by the ControlSet00N it stands for (see the
    module docstring). Other paths come back as they are."""
    parts = path.strip("\\").split("\\")
    first = upcase_name(parts[0])
    if first in ROOT_WORDS and first != _CCS and not _stores(hive, parts[0]):
        del parts[: _prefix(hive, path, parts)]
    if parts and upcase_name(parts[0]) == _CCS and not _stores(hive, parts[0]):
        parts[0] = current_control_set(hive, path)
    return "\\".join(parts)
