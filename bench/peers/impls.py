"""Every implementation the benchmarks compare, doing each task its own
idiomatic way. hivex runs out of process (see hivex.py); everything else runs
here, in the bench venv.

Tasks
-----
walk(path) -> {"keys", "values", "errors"}
    Open the hive, visit every key (name and last-write time, through the
    implementation's usual accessor) and every value (name, type, decoded
    data), close it. ``errors`` counts values the implementation could not
    decode (read raw instead).
open_hive(path) -> handle, then lookup(handle, paths) -> {"found", "missing"}
    1,000 point lookups "key path + value name" -> decoded data, on a hive
    opened once (the open is not timed).
read_key(handle, key, names) -> {"values"}
    All values of one key, decoded.
open_root(path)
    Open the hive, get the root key, close.

Decoding rule for every implementation: strings for REG_SZ / EXPAND_SZ /
LINK, ints for DWORD / DWORD_BIG_ENDIAN / QWORD, lists for MULTI_SZ, bytes
for everything else, through the accessors each library offers.
"""
from __future__ import annotations

import importlib
import logging

SZ, EXPAND_SZ, LINK, DWORD, DWORD_BE, MULTI_SZ, QWORD = 1, 2, 6, 4, 5, 7, 11

#: PyPI distribution of each in-process peer (what `pip install` needs).
PEER_PACKAGES = {
    "regipy-rs": "regipy-rs (+ regipy)",
    "regipy-rs-api": "regipy-rs (+ regipy)",
    "regipy": "regipy",
    "pyregf": "libregf-python",
    "python-registry": "python-registry",
}

#: Only these hives are given to the very slow pure-Python regipy (the cap).
REGIPY_PURE_HIVES = ("software-1MB",)
#: ... and a wall-clock cap (seconds) for any one of its runs.
REGIPY_PURE_CAP_S = 300


def unavailable(name: str) -> str | None:
    """Why implementation `name` cannot run here, or None when it can."""
    mods = ["regfast"] if name.startswith("regfast") else {
        "regipy-rs": ["regipy_rs"], "regipy-rs-api": ["regipy_rs", "regipy.registry_rs"],
        "regipy": ["regipy.registry"], "pyregf": ["pyregf"],
        "python-registry": ["Registry.Registry"],
    }.get(name, [])
    for m in mods:
        try:
            importlib.import_module(m)
        except Exception as e:  # ImportError, or a broken extension
            pkg = PEER_PACKAGES.get(name, m)
            return f"cannot import {m} ({type(e).__name__}: {e}); pip install {pkg}"
    if name.startswith("regfast"):
        import regfast
        for needle, (cls, attr) in (("read_values", ("Key", "read_values")),
                                    ("scan", ("Hive", "scan")),
                                    ("get_many", ("Hive", "get_many"))):
            if needle in name and not hasattr(getattr(regfast, cls), attr):
                return f"regfast.{cls}.{attr} does not exist yet in the installed regfast"
    return None


# ---------------------------------------------------------------------------
# regfast
# ---------------------------------------------------------------------------

def walk_regfast_keys(path):
    """Key and Value objects: hive.walk(), key.values(), value.value."""
    import regfast
    keys = values = 0
    with regfast.open_hive(path) as h:
        for key in h.walk():
            key.name
            key.last_write
            keys += 1
            for v in key.values():
                v.name
                v.type
                v.value
                values += 1
    return {"keys": keys, "values": values, "errors": 0}


def walk_regfast_read_values(path):
    """Keys from hive.walk(); each key's values in one read_values() call,
    decoded with ValueBatch.to_dict()."""
    import regfast
    keys = values = 0
    with regfast.open_hive(path) as h:
        for key in h.walk():
            key.name
            key.last_write
            keys += 1
            values += len(key.read_values().to_dict())
    return {"keys": keys, "values": values, "errors": 0}


def walk_regfast_scan(path):
    """hive.scan(): every key and value as numpy columns, one C pass; names
    and data stay in the mapping (nothing decoded)."""
    import regfast
    with regfast.open_hive(path) as h:
        t = h.scan()
        out = {"keys": int(t.n_keys), "values": int(t.n_values), "errors": 0}
        del t
    return out


def walk_regfast_scan_decoded(path):
    """hive.scan(), then every key name, key path, value name and decoded
    value as Python objects (key_paths(), value_names(), decoded_values())."""
    import regfast
    with regfast.open_hive(path) as h:
        t = h.scan()
        names = t.key_paths()
        last_write = t.key_last_write.tolist()
        vnames = t.value_names()
        data = t.decoded_values()
        out = {"keys": len(names), "values": len(data), "errors": 0}
        del t, names, last_write, vnames, data
    return out


def open_regfast(path):
    import regfast
    return regfast.open_hive(path)


def lookup_regfast_open(h, paths):
    """hive.open(key_path)[value_name] per lookup."""
    found = missing = 0
    for kp, vn in paths:
        try:
            h.open(kp)[vn]
            found += 1
        except FileNotFoundError:
            missing += 1
    return {"found": found, "missing": missing}


def prepare_get_many(paths):
    return [kp + "\\" + vn for kp, vn in paths]


def lookup_regfast_get_many(h, joined):
    """hive.get_many(["key\\value", ...]): one call, each key resolved once."""
    sentinel = object()
    got = h.get_many(joined, default=sentinel)
    missing = sum(1 for x in got if x is sentinel)
    return {"found": len(got) - missing, "missing": missing}


def read_regfast_getitem(h, key, names):
    """The baseline: a Python loop of key[name]."""
    k = h.open(key)
    out = [k[n] for n in names]
    return {"values": len(out)}


def read_regfast_read_values_names(h, key, names):
    """key.read_values(names).as_str(): one C call for all rows."""
    out = h.open(key).read_values(names).as_str()
    return {"values": len(out)}


def read_regfast_read_values_all(h, key, names):
    """key.read_values().to_dict(): every value, names included."""
    out = h.open(key).read_values().to_dict()
    return {"values": len(out)}


def read_regfast_values_iter(h, key, names):
    """{v.name: v.value for v in key.values()}."""
    out = {v.name: v.value for v in h.open(key).values()}
    return {"values": len(out)}


def open_root_regfast(path):
    import regfast
    with regfast.open_hive(path) as h:
        h.root


# ---------------------------------------------------------------------------
# regipy-rs (native), regipy-rs through the regipy API, pure-Python regipy
# ---------------------------------------------------------------------------

def walk_regipy_rs(path):
    """regipy_rs.RegistryHive(path).recurse(): tuples (name, path, timestamp,
    values_count, [(name, type, decoded value, corrupted, is_filetime)], ...)."""
    import regipy_rs
    h = regipy_rs.RegistryHive(path)
    keys = values = errors = 0
    for rec in h.recurse():
        keys += 1
        vals = rec[4]
        values += len(vals)
        for v in vals:
            errors += bool(v[3])
        if rec[5]:
            errors += 1
    del h
    return {"keys": keys, "values": values, "errors": errors}


def _regipy_walk(cls, path):
    logging.getLogger("regipy").setLevel(logging.CRITICAL)
    reg = cls(path)
    keys = values = errors = 0
    for sk in reg.recurse_subkeys(as_json=False):
        sk.subkey_name
        sk.timestamp
        keys += 1
        for v in sk.values:
            v.name
            v.value
            values += 1
            errors += bool(v.is_corrupted)
    return {"keys": keys, "values": values, "errors": errors}


def walk_regipy_rs_api(path):
    """regipy.registry_rs.RegistryHive(path).recurse_subkeys(): the regipy API
    (Subkey/Value dataclasses) over the Rust core."""
    from regipy.registry_rs import RegistryHive
    return _regipy_walk(RegistryHive, path)


def walk_regipy(path):
    """Pure-Python regipy: RegistryHive(path).recurse_subkeys()."""
    from regipy.registry import RegistryHive
    return _regipy_walk(RegistryHive, path)


def open_regipy_rs_api(path):
    logging.getLogger("regipy").setLevel(logging.CRITICAL)
    from regipy.registry_rs import RegistryHive
    return RegistryHive(path)


def open_regipy(path):
    logging.getLogger("regipy").setLevel(logging.CRITICAL)
    from regipy.registry import RegistryHive
    return RegistryHive(path)


def _regipy_key(kp):
    return "\\" + kp


def lookup_regipy(reg, paths):
    """reg.get_key("\\\\" + key_path).get_value(name or "(default)")."""
    from regipy.exceptions import RegistryKeyNotFoundException
    found = missing = 0
    for kp, vn in paths:
        try:
            v = reg.get_key(_regipy_key(kp)).get_value(vn or "(default)")
        except RegistryKeyNotFoundException:
            v = None
        if v is None:
            missing += 1
        else:
            found += 1
    return {"found": found, "missing": missing}


def read_regipy(reg, key, names):
    out = {v.name: v.value for v in reg.get_key(_regipy_key(key)).iter_values(trim_values=False)}
    return {"values": len(out)}


def open_regipy_rs(path):
    import regipy_rs
    return regipy_rs.RegistryHive(path)


def read_regipy_rs(h, key, names):
    """Native: root().find_subkey() per component, then NKRecord.values()."""
    k = h.root()
    for part in key.split("\\"):
        k = k.find_subkey(part)
    vals, err = k.values()
    return {"values": len(vals)}


def open_root_regipy_rs(path):
    import regipy_rs
    h = regipy_rs.RegistryHive(path)
    h.root()
    del h


# ---------------------------------------------------------------------------
# libregf-python (pyregf)
# ---------------------------------------------------------------------------

def _pyregf_decode(v):
    t = v.type
    try:
        if t in (SZ, EXPAND_SZ, LINK):
            return v.data_as_string, 0
        if t in (DWORD, DWORD_BE, QWORD):
            return v.data_as_integer, 0
        if t == MULTI_SZ:
            return v.data_as_multi_string, 0
    except (IOError, OSError, ValueError, TypeError):
        return v.data, 1
    return v.data, 0


def walk_pyregf(path):
    """pyregf.file(): key.sub_keys / key.values, data_as_string /
    data_as_integer / data_as_multi_string / data by type."""
    import pyregf
    f = pyregf.file()
    f.open(path)
    keys = values = errors = 0
    stack = [f.get_root_key()]
    while stack:
        k = stack.pop()
        k.name
        k.last_written_time
        keys += 1
        for v in k.values:
            v.name
            _, err = _pyregf_decode(v)
            values += 1
            errors += err
        stack.extend(k.sub_keys)
    f.close()
    return {"keys": keys, "values": values, "errors": errors}


def open_pyregf(path):
    import pyregf
    f = pyregf.file()
    f.open(path)
    return f


def lookup_pyregf(f, paths):
    """f.get_key_by_path(key_path).get_value_by_name(name), decoded."""
    found = missing = 0
    for kp, vn in paths:
        k = f.get_key_by_path(kp)
        v = k.get_value_by_name(vn) if k is not None else None
        if v is None:
            missing += 1
        else:
            _pyregf_decode(v)
            found += 1
    return {"found": found, "missing": missing}


def read_pyregf(f, key, names):
    out = {v.name: _pyregf_decode(v)[0] for v in f.get_key_by_path(key).values}
    return {"values": len(out)}


def open_root_pyregf(path):
    f = open_pyregf(path)
    f.get_root_key()
    f.close()


# ---------------------------------------------------------------------------
# python-registry
# ---------------------------------------------------------------------------

def walk_python_registry(path):
    """Registry.Registry(path): key.subkeys(), key.values(), value.value()."""
    from Registry import Registry
    reg = Registry.Registry(path)
    keys = values = errors = 0
    stack = [reg.root()]
    while stack:
        k = stack.pop()
        k.name()
        k.timestamp()
        keys += 1
        for v in k.values():
            v.name()
            v.value_type()
            try:
                v.value()
            except Exception:
                v.raw_data()
                errors += 1
            values += 1
        stack.extend(k.subkeys())
    return {"keys": keys, "values": values, "errors": errors}


def open_python_registry(path):
    from Registry import Registry
    return Registry.Registry(path)


def lookup_python_registry(reg, paths):
    """reg.open(key_path).value(name).value()."""
    from Registry.Registry import RegistryKeyNotFoundException, RegistryValueNotFoundException
    found = missing = errors = 0
    for kp, vn in paths:
        try:
            v = reg.open(kp).value(vn)
        except (RegistryKeyNotFoundException, RegistryValueNotFoundException):
            missing += 1
            continue
        try:
            v.value()
        except Exception:      # e.g. UnknownTypeException on 0xFFFF00xx types
            v.raw_data()
            errors += 1
        found += 1
    return {"found": found, "missing": missing, "errors": errors}


def read_python_registry(reg, key, names):
    out = {v.name(): v.value() for v in reg.open(key).values()}   # all REG_SZ here
    return {"values": len(out)}


def open_root_python_registry(path):
    from Registry import Registry
    Registry.Registry(path).root()


# ---------------------------------------------------------------------------
# tables: implementation name -> functions, in the order rows are listed
# ---------------------------------------------------------------------------

WALK = {
    "regfast-scan": walk_regfast_scan,
    "regfast-scan-decoded": walk_regfast_scan_decoded,
    "regfast-read_values": walk_regfast_read_values,
    "regfast-keys": walk_regfast_keys,
    "regipy-rs": walk_regipy_rs,
    "regipy-rs-api": walk_regipy_rs_api,
    "pyregf": walk_pyregf,
    "python-registry": walk_python_registry,
    "regipy": walk_regipy,
}

#: name -> (open(path) -> handle, prepare(paths) -> arg, lookup(handle, arg))
LOOKUP = {
    "regfast-open": (open_regfast, None, lookup_regfast_open),
    "regfast-get_many": (open_regfast, prepare_get_many, lookup_regfast_get_many),
    "regipy-rs-api": (open_regipy_rs_api, None, lookup_regipy),
    "pyregf": (open_pyregf, None, lookup_pyregf),
    "python-registry": (open_python_registry, None, lookup_python_registry),
    "regipy": (open_regipy, None, lookup_regipy),
}

#: name -> (open(path) -> handle, read(handle, key, names))
READ_KEY = {
    "regfast-getitem-loop": (open_regfast, read_regfast_getitem),
    "regfast-read_values-names": (open_regfast, read_regfast_read_values_names),
    "regfast-read_values-all": (open_regfast, read_regfast_read_values_all),
    "regfast-values-iter": (open_regfast, read_regfast_values_iter),
    "regipy-rs": (open_regipy_rs, read_regipy_rs),
    "regipy-rs-api": (open_regipy_rs_api, read_regipy),
    "pyregf": (open_pyregf, read_pyregf),
    "python-registry": (open_python_registry, read_python_registry),
}

OPEN_ROOT = {
    "regfast": open_root_regfast,
    "regipy-rs": open_root_regipy_rs,
    "pyregf": open_root_pyregf,
    "python-registry": open_root_python_registry,
}


def close(handle):
    for m in ("close",):
        fn = getattr(handle, m, None)
        if fn is not None:
            fn()
