"""Independent hive reading through hivex, used as a test oracle.

hivex (libguestfs) is a separate, mature implementation of the regf
format.  Tests write hives with regfast's tools and read them back here,
never through regfast itself.

Three hivex front ends are used:

* the ``hivex`` Python binding (Debian ``python3-hivex``).  It is only
  importable by the system interpreter (``/usr/bin/python3``, override with
  the ``HIVEX_PYTHON`` environment variable), not by the project's Python,
  so a small script is run in a subprocess and its JSON output parsed.
  This gives exact raw bytes for every value: the most faithful oracle.
* ``hivexml`` (XML dump of the whole hive), parsed with ElementTree.
* ``hivexget`` (one key or value, regedit-style text).

hivex has no API for key class names.  The subprocess therefore reads
the class of each key directly from the file, starting from the ``nk``
cell offset that hivex returns as the node handle (fields at nk+0x30
class offset and nk+0x4A class length; the class cell is UTF-16LE).  Only
that field is decoded outside hivex.

When hivex is missing, :func:`require_hivex` skips the calling test with a
loud reason, except in CI (``CI`` environment variable set to true/1/yes),
where it fails with "hivex is required in CI".
"""

from __future__ import annotations

import base64
import functools
import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from typing import Dict, List, Tuple

__all__ = [
    "HivexError",
    "hivex_available",
    "hivexml_available",
    "hivexget_available",
    "require_hivex",
    "require_hivexml",
    "require_hivexget",
    "in_ci",
    "hivex_info",
    "hivex_tree",
    "hivex_timestamps",
    "hivex_counts",
    "hivexml_tree",
    "hivexget_value",
    "hivexget_key",
]

HIVEX_PYTHON = os.environ.get("HIVEX_PYTHON", "/usr/bin/python3")
_TIMEOUT = 600


class HivexError(RuntimeError):
    """hivex refused to open or walk a hive."""


_WALK_SCRIPT = r"""
import json, struct, sys
import hivex

path = sys.argv[1]
try:
    h = hivex.Hivex(path)
except Exception as e:
    sys.stderr.write("hivex open failed: %s\n" % (e,))
    sys.stderr.flush()
    try:  # again, verbosely: libhivex prints the precise reason to stderr
        hivex.Hivex(path, verbose=True)
    except Exception:
        pass
    sys.stderr.flush()
    sys.exit(3)
with open(path, "rb") as f:
    raw = f.read()

def class_of(node):
    # hivex has no class-name API: read nk+0x30 (offset) and nk+0x4A (len).
    cls_off, = struct.unpack_from("<I", raw, node + 4 + 0x30)
    cls_len, = struct.unpack_from("<H", raw, node + 4 + 0x4A)
    if cls_off == 0xFFFFFFFF:
        return None
    start = 0x1000 + cls_off + 4
    return raw[start:start + cls_len].decode("utf-16-le", "surrogatepass")

out = {"root_name": None, "last_modified": None, "keys": []}
try:
    root = h.root()
    out["root_name"] = h.node_name(root)
    out["last_modified"] = h.last_modified()
    stack = [(root, "")]
    while stack:
        node, kpath = stack.pop()
        values = []
        for v in h.node_values(node):
            t, data = h.value_value(v)
            values.append([h.value_key(v), t, data.hex()])
        children = h.node_children(node)
        names = [h.node_name(c) for c in children]
        out["keys"].append({
            "path": kpath,
            "name": h.node_name(node),
            "class": class_of(node),
            "timestamp": h.node_timestamp(node),
            "children": names,
            "values": values,
            "offset": node,
        })
        for c, n in reversed(list(zip(children, names))):
            stack.append((c, n if not kpath else kpath + "\\" + n))
except Exception as e:
    sys.stderr.write("hivex walk failed: %s\n" % (e,))
    sys.exit(4)
sys.stdout.write(json.dumps(out))
"""


def in_ci() -> bool:
    """True when running in CI (``CI`` env var is true/1/yes)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@functools.lru_cache(maxsize=None)
def hivex_available() -> bool:
    """Whether the hivex Python binding can be used (via the system Python)."""
    if not (os.path.isfile(HIVEX_PYTHON) and os.access(HIVEX_PYTHON, os.X_OK)):
        return False
    try:
        r = subprocess.run([HIVEX_PYTHON, "-c", "import hivex"],
                           capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


@functools.lru_cache(maxsize=None)
def hivexml_available() -> bool:
    """Whether the ``hivexml`` tool is on PATH."""
    return shutil.which("hivexml") is not None


@functools.lru_cache(maxsize=None)
def hivexget_available() -> bool:
    """Whether the ``hivexget`` tool is on PATH."""
    return shutil.which("hivexget") is not None


def _require(ok: bool, what: str) -> None:
    if ok:
        return
    import pytest

    if in_ci():
        pytest.fail(f"hivex is required in CI ({what} not available)", pytrace=False)
    pytest.skip(
        f"!!! {what} NOT AVAILABLE: hivex oracle tests SKIPPED "
        "(install Debian packages libhivex-bin and python3-hivex) !!!"
    )


def require_hivex() -> None:
    """Skip (or fail in CI) unless the hivex Python binding works."""
    _require(hivex_available(), f"hivex Python binding ({HIVEX_PYTHON} -c 'import hivex')")


def require_hivexml() -> None:
    """Skip (or fail in CI) unless ``hivexml`` is installed."""
    _require(hivexml_available(), "hivexml")


def require_hivexget() -> None:
    """Skip (or fail in CI) unless ``hivexget`` is installed."""
    _require(hivexget_available(), "hivexget")


def hivex_info(path: "os.PathLike | str") -> dict:
    """Walk a hive with hivex and return everything it reports.

    Returns
    -------
    dict
        ``{"root_name": str, "last_modified": int, "keys": {key_path:
        {"name", "class", "timestamp", "children", "values", "offset"}}}``
        where ``values`` is an ordered dict ``{name: (type, bytes)}`` in
        on-disk value-list order, ``children`` the subkey names in
        on-disk order and ``offset`` the hivex node handle (file offset of
        the ``nk`` cell).  ``keys`` is in depth-first order.

    Raises
    ------
    HivexError
        If hivex cannot open or walk the hive.
    """
    r = subprocess.run(
        [HIVEX_PYTHON, "-c", _WALK_SCRIPT, os.fspath(path)],
        capture_output=True, timeout=_TIMEOUT,
    )
    if r.returncode != 0:
        raise HivexError(r.stderr.decode("utf-8", "replace").strip() or f"exit {r.returncode}")
    raw = json.loads(r.stdout)
    keys: Dict[str, dict] = {}
    for k in raw["keys"]:
        vals: Dict[str, Tuple[int, bytes]] = {}
        for name, t, hexdata in k["values"]:
            if name in vals:
                raise HivexError(f"hivex reports value {name!r} twice in {k['path']!r}")
            vals[name] = (t, bytes.fromhex(hexdata))
        if k["path"] in keys:
            raise HivexError(f"hivex reports key {k['path']!r} twice")
        keys[k["path"]] = {
            "name": k["name"],
            "class": k["class"],
            "timestamp": k["timestamp"],
            "children": k["children"],
            "values": vals,
            "offset": k["offset"],
        }
    return {"root_name": raw["root_name"], "last_modified": raw["last_modified"], "keys": keys}


def hivex_tree(path: "os.PathLike | str") -> Dict[str, dict]:
    """Read every key of a hive with hivex into a normalized structure.

    Returns
    -------
    dict
        ``{key_path: {"values": {name: (type, data_bytes)}, "class":
        str | None}}`` for every key.  Key paths are relative to the root
        and joined with ``"\\\\"``; the root is ``""``.
    """
    info = hivex_info(path)
    return {p: {"values": k["values"], "class": k["class"]} for p, k in info["keys"].items()}


def hivex_timestamps(path: "os.PathLike | str") -> Dict[str, int]:
    """Key path -> last-write FILETIME, as reported by hivex."""
    return {p: k["timestamp"] for p, k in hivex_info(path)["keys"].items()}


_COUNT_SCRIPT = r"""
import json, sys
import hivex

try:
    h = hivex.Hivex(sys.argv[1])
except Exception as e:
    sys.stderr.write("hivex open failed: %s\n" % (e,))
    sys.exit(3)
out = []
try:
    stack = [(h.root(), "")]
    while stack:
        node, kpath = stack.pop()
        out.append([kpath, len(h.node_values(node))])
        for c in reversed(h.node_children(node)):
            n = h.node_name(c)
            stack.append((c, n if not kpath else kpath + "\\" + n))
except Exception as e:
    sys.stderr.write("hivex walk failed: %s\n" % (e,))
    sys.exit(4)
sys.stdout.write(json.dumps(out))
"""


def hivex_counts(path: "os.PathLike | str") -> List[Tuple[str, int]]:
    """(key path, number of values) for every key hivex walks, depth first.

    Unlike :func:`hivex_info` this keeps what hivex reports as is: keys
    listed twice and values with duplicate names (real hives have both)
    are counted, not refused.

    Raises
    ------
    HivexError
        If hivex cannot open or walk the hive.
    """
    r = subprocess.run([HIVEX_PYTHON, "-c", _COUNT_SCRIPT, os.fspath(path)],
                       capture_output=True, timeout=_TIMEOUT)
    if r.returncode != 0:
        raise HivexError(r.stderr.decode("utf-8", "replace").strip() or f"exit {r.returncode}")
    return [(p, n) for p, n in json.loads(r.stdout)]


def _xml_value(el: ET.Element):
    enc = el.get("encoding")
    if el.get("type") == "string-list":
        return [s.text or "" for s in el.findall("string")]
    val = el.get("value")
    if val is None:
        return None
    if enc == "base64":
        return base64.b64decode(val)
    return val


def hivexml_tree(path: "os.PathLike | str") -> Dict[str, dict]:
    """Read a hive with ``hivexml`` and normalize the XML.

    Returns
    -------
    dict
        ``{key_path: {"values": {name: (type_name, value)}, "mtime": str}}``
        where ``type_name`` is hivexml's type attribute (``"string"``,
        ``"int32"``, ``"binary"``, ...) and ``value`` is the decoded
        ``value`` attribute: ``bytes`` for base64-encoded values, a list of
        strings for ``string-list`` (hivexml's own splitting), a ``str``
        otherwise, or ``None`` when absent.  The default value is keyed
        ``""``.  The root key's name is stored under ``""`` as
        ``"root_name"``.
    """
    r = subprocess.run(["hivexml", os.fspath(path)], capture_output=True, timeout=_TIMEOUT)
    if r.returncode != 0:
        raise HivexError("hivexml failed: " + r.stderr.decode("utf-8", "replace").strip())
    doc = ET.fromstring(r.stdout)
    out: Dict[str, dict] = {}
    top = doc.find("node")
    if top is None:
        raise HivexError("hivexml output has no root node")
    stack: List[Tuple[ET.Element, str]] = [(top, "")]
    while stack:
        node, kpath = stack.pop()
        values = {}
        for v in node.findall("value"):
            name = "" if v.get("default") == "1" else (v.get("key") or "")
            values[name] = (v.get("type"), _xml_value(v))
        mt = node.find("mtime")
        entry = {"values": values, "mtime": mt.text if mt is not None else None}
        if kpath == "":
            entry["root_name"] = node.get("name")
        out[kpath] = entry
        for child in reversed(node.findall("node")):
            n = child.get("name")
            stack.append((child, n if not kpath else kpath + "\\" + n))
    return out


def hivexget_value(path: "os.PathLike | str", key_path: str, name: str) -> str:
    """Return ``hivexget``'s text for one value (trailing newline removed).

    ``key_path`` uses ``"\\\\"`` separators relative to the root (``""`` or
    ``"\\\\"`` for the root).  ``name`` ``""`` is passed as ``@``, hivexget's
    spelling of the default value.
    """
    kp = "\\" + key_path if not key_path.startswith("\\") else key_path
    r = subprocess.run(["hivexget", os.fspath(path), kp, name if name else "@"],
                       capture_output=True, timeout=_TIMEOUT)
    if r.returncode != 0:
        raise HivexError("hivexget failed: " + r.stderr.decode("utf-8", "replace").strip())
    out = r.stdout.decode("utf-8", "surrogateescape")
    return out[:-1] if out.endswith("\n") else out


def hivexget_key(path: "os.PathLike | str", key_path: str) -> str:
    """Return ``hivexget``'s regedit-style listing of all values of a key."""
    kp = "\\" + key_path if not key_path.startswith("\\") else key_path
    r = subprocess.run(["hivexget", os.fspath(path), kp], capture_output=True, timeout=_TIMEOUT)
    if r.returncode != 0:
        raise HivexError("hivexget failed: " + r.stderr.decode("utf-8", "replace").strip())
    return r.stdout.decode("utf-8", "surrogateescape")
