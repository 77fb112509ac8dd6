"""Forensic helpers: which hive is this, and the virtual CurrentControlSet.

* :func:`detect_hive_type` names a hive (SYSTEM, SOFTWARE, SAM, SECURITY,
  NTUSER, DEFAULT, UsrClass, Amcache, BCD, COMPONENTS, DRIVERS, APP) from two
  independent clues — the file name Windows stores in the base block
  (offset 0x30, the tail of the path it loaded the hive from, e.g.
  ``emRoot\\System32\\Config\\SYSTEM``) and the root's characteristic
  subkeys — and says how sure it is.
* ``CurrentControlSet`` exists only in a running system: it is a link to
  ``ControlSet00N`` where N is ``Select\\Current``. :func:`resolve_path`
  rewrites such paths for an offline SYSTEM hive; :func:`open_key` opens
  them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from regfast.exceptions import error_from_status

if TYPE_CHECKING:  # regfast.paths, which _native imports, imports this module: types only
    from regfast._native import Hive, Key

__all__ = ["HiveType", "HIVE_TYPES", "detect_hive_type", "current_control_set", "resolve_path", "open_key"]


@dataclass(frozen=True)
class _Signature:
    name: str
    file_names: tuple[str, ...]  # last path component, lower case (exact or regex)
    root_keys: tuple[str, ...]  # characteristic subkeys of the root (lower case)
    deep_keys: tuple[str, ...] = ()  # deeper paths ({cs}: a ControlSetNNN); one present counts
    # as one more root key
    weight: float = 1.0  # tie-breaker for look-alikes (DEFAULT looks like NTUSER)


# Root-key sets are what a real hive of that kind has at its root (observed
# on XP..11 hives); a hive need not have them all.
_SIGNATURES: tuple[_Signature, ...] = (
    _Signature(
        "SYSTEM",
        ("system",),
        (
            "select",
            "controlset001",
            "mounteddevices",
            "setup",
            "driverdatabase",
            "hardwareconfig",
            "wpa",
            "rng",
        ),
        ("{cs}\\services", "{cs}\\control"),
    ),
    _Signature(
        "SOFTWARE",
        ("software",),
        ("microsoft", "classes", "policies", "clients", "registeredapplications", "wow6432node", "odbc"),
        ("microsoft\\windows nt\\currentversion",),
    ),
    _Signature("SAM", ("sam",), ("sam",), ("sam\\domains",)),
    _Signature("SECURITY", ("security",), ("policy", "rxact", "cache", "sam"), ("policy\\secrets",)),
    _Signature(
        "NTUSER",
        ("ntuser.dat", "ntuser.man"),
        (
            "software",
            "control panel",
            "environment",
            "console",
            "keyboard layout",
            "appevents",
            "network",
            "printers",
            "eudc",
            "system",
            "identities",
        ),
        ("software\\microsoft\\windows\\currentversion\\explorer",),
    ),
    _Signature(
        "DEFAULT",
        ("default",),
        (
            "software",
            "control panel",
            "environment",
            "console",
            "keyboard layout",
            "appevents",
            "network",
            "printers",
            "eudc",
            "system",
            "identities",
        ),
        ("software\\microsoft\\windows\\currentversion\\explorer",),
        weight=0.9,
    ),
    _Signature(
        "UsrClass",
        ("usrclass.dat",),
        ("local settings", "clsid", "*", "interface", "appid", "typelib", "directory"),
        ("local settings\\software\\microsoft\\windows\\shell",),
    ),
    _Signature(
        "Amcache",
        ("amcache.hve",),
        ("root",),
        ("root\\inventoryapplicationfile", "root\\file", "root\\programs", "root\\inventoryapplication"),
    ),
    _Signature("BCD", ("bcd", r"bcd\d{8}"), ("description", "objects")),
    _Signature("COMPONENTS", ("components",), ("canonicaldata", "deriveddata", "servicingstackversions")),
    _Signature(
        "DRIVERS", ("drivers",), ("driverdatabase",), ("driverdatabase\\driverinffiles",), weight=0.95
    ),
    _Signature(
        "APP",
        ("settings.dat", "user.dat", "userclasses.dat", "activationstore.dat", "syscache.hve"),
        ("localstate", "roamingstate"),
    ),
)

# compiled once: detect_hive_type runs per hive of a fleet (scan_many), and
# re's cache lookup per call was most of its time on a hive of 100 root keys
_CONTROL_SET = re.compile(r"controlset\d{3}")
_FILE_NAMES = {s.name: [re.compile(p) for p in s.file_names] for s in _SIGNATURES}

#: Names :func:`detect_hive_type` can return (plus "unknown").
HIVE_TYPES = tuple(s.name for s in _SIGNATURES)

_NAME_WEIGHT = 0.7  # a matching stored file name alone
_KEYS_WEIGHT = 0.8  # all characteristic root keys alone


@dataclass(frozen=True)
class HiveType:
    """A hive's kind. ``confidence`` is 0..1: about 0.7 from the stored file
    name alone, up to 0.8 from the root keys alone, over 0.9 from both."""

    name: str
    confidence: float
    evidence: tuple[str, ...] = ()
    alternatives: tuple[tuple[str, float], ...] = ()

    def __str__(self) -> str:
        return f"{self.name} ({self.confidence:.0%})"


def _stored_name(hive: Hive) -> str:
    name = hive.info().file_name.split("\0", 1)[0].strip()
    return re.split(r"[\\/]", name)[-1].lower() if name else ""


def _exists(hive: Hive, path: str) -> bool:
    try:
        hive.open(path)
        return True
    except FileNotFoundError:
        return False
    except OSError:
        return False


def detect_hive_type(hive: Hive) -> HiveType:
    """Guesses what hive this is; "unknown" with confidence 0 when nothing fits."""
    stored = _stored_name(hive)
    try:
        roots = {k.name.lower() for k in hive.root.subkeys()}
    except OSError:
        roots = set()
    sets = sorted(r for r in roots if _CONTROL_SET.fullmatch(r))
    has_controlset = bool(sets)
    n_dot = sum(1 for r in roots if r.startswith("."))
    scored: list[tuple[float, str, list[str]]] = []
    for sig in _SIGNATURES:
        evidence = []
        name_hit = bool(stored) and any(p.fullmatch(stored) for p in _FILE_NAMES[sig.name])
        if name_hit:
            evidence.append(f"stored file name {stored!r}")
        wanted = list(sig.root_keys)
        present = [k for k in wanted if k in roots or (k == "controlset001" and has_controlset)]
        total = len(wanted) + (1 if sig.deep_keys else 0)
        hits = len(present)
        if sig.deep_keys and present:
            deep = [
                d.replace("{cs}", sets[0]) if "{cs}" in d else d
                for d in sig.deep_keys
                if sets or "{cs}" not in d
            ]
            deep = [d for d in deep if _exists(hive, d)]
            if deep:
                hits += 1
                evidence.append(f"key {deep[0]!r}")
        if sig.name == "UsrClass" and n_dot >= 3 and "local settings" in roots:
            hits = min(total, hits + 1)
            evidence.append(f"{n_dot} file-extension keys at the root")
        # three characteristic keys are as good as all of them: a real hive
        # need not have every key listed, a minimal one has a few
        key_frac = min(1.0, hits / min(total, 3)) if total else 0.0
        if present:
            evidence.append("root keys " + ", ".join(present))
        conf = 1 - (1 - _NAME_WEIGHT * name_hit) * (1 - _KEYS_WEIGHT * key_frac * sig.weight)
        scored.append((round(conf, 3), sig.name, evidence))
    scored.sort(key=lambda t: -t[0])
    best, name, evidence = scored[0]
    others = tuple((n, c) for c, n, _ in scored[1:4] if c > 0)
    if best < 0.25:
        return HiveType("unknown", 0.0, tuple(evidence), tuple((n, c) for c, n, _ in scored[:3] if c > 0))
    return HiveType(name, best, tuple(evidence), others)


_CCS = re.compile(r"^(?:(?:HKLM|HKEY_LOCAL_MACHINE)\\SYSTEM\\)?(CurrentControlSet)(?=\\|$)", re.I)


def current_control_set(hive: Hive) -> str | None:
    """The key name ``CurrentControlSet`` stands for in a SYSTEM hive:
    ``ControlSet00N`` for N = ``Select\\Current`` (then ``Default``,
    ``LastKnownGood``, when that set is missing), else the lowest-numbered
    ControlSet present; None when the hive has no control set."""
    try:
        select = hive.open("Select")
    except FileNotFoundError:
        select = None
    if select is not None:
        for name in ("Current", "Default", "LastKnownGood"):
            try:
                n = select.value(name).value
            except (FileNotFoundError, ValueError):
                continue
            if isinstance(n, int) and 0 < n < 1000:
                cs = f"ControlSet{n:03d}"
                if _exists(hive, cs):
                    return cs
    sets = sorted(k.name for k in hive.root.subkeys() if re.fullmatch(r"(?i)controlset\d{3}", k.name))
    return sets[0] if sets else None


def resolve_path(hive: Hive, path: str) -> str:
    """Rewrites a leading ``CurrentControlSet`` (also spelled
    ``HKLM\\SYSTEM\\CurrentControlSet``, any case) to the ControlSet00N it
    stands for; other paths come back unchanged (less a leading backslash).

    Raises FileNotFoundError (winerror 2) when the path names
    CurrentControlSet and the hive has no control set.
    """
    p = path.lstrip("\\")
    m = _CCS.match(p)
    if not m:
        return p
    cs = current_control_set(hive)
    if cs is None:
        raise error_from_status(2, f"{path}: the hive has no ControlSet for CurrentControlSet", path)
    return cs + p[m.end() :]


def open_key(hive: Hive, path: str) -> Key:
    """``hive.open(resolve_path(hive, path))``."""
    return hive.open(resolve_path(hive, path))
