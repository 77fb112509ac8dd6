"""hivex peer, run as a subprocess under the system Python.

Debian's ``python3-hivex`` is built for /usr/bin/python3 only, so the bench
(in its own venv) starts this script with /usr/bin/python3 and talks to it
over stdin/stdout, one JSON object per line. Every task is timed *inside*
this process with ``time.perf_counter`` and the seconds are sent back: the
pipe round trip and JSON encoding are never part of a measurement.

Requests ``{"op": ..., ...}`` and replies:

* ``hello`` -> ``{"python": ..., "hivex": path}``
* ``walk`` (hive) -> open + full walk + close: every key (name, timestamp),
  every value (name, type, decoded data); ``{"seconds", "keys", "values",
  "errors"}``. Decoding: ``value_string`` for SZ/EXPAND_SZ/LINK,
  ``value_dword`` / ``value_qword``, ``value_multiple_strings``, else the raw
  bytes of ``value_value``; a value hivex refuses to decode counts in
  ``errors`` and is read raw instead.
* ``open`` (hive) -> open + root + close.
* ``lookup`` (hive, paths [[key, value], ...]) -> the hive is opened once and
  kept; the timed part is the lookups: ``node_get_child`` per component,
  ``node_get_value``, decode. ``{"seconds", "found", "missing"}``.
* ``first_value`` (hive, key, value) -> open + one lookup (decoded) + close.
* ``read_key`` (hive, key) -> every value of one key, decoded (hive kept open).
* ``lengths`` (hive, items [[key, value], ...]) -> ``[[type, vk length,
  len(value_value)], ...]`` for the 0xFFFF00xx correctness check (untimed).
"""
import json
import sys
import time

import hivex

SZ, EXPAND_SZ, LINK, DWORD, DWORD_BE, MULTI_SZ, QWORD = 1, 2, 6, 4, 5, 7, 11

_open = {}


def handle(path):
    h = _open.get(path)
    if h is None:
        h = _open[path] = hivex.Hivex(path)
    return h


def decode(h, v):
    t, _ = h.value_type(v)
    try:
        if t in (SZ, EXPAND_SZ, LINK):
            return h.value_string(v), 0
        if t in (DWORD, DWORD_BE):
            return h.value_dword(v), 0
        if t == QWORD:
            return h.value_qword(v), 0
        if t == MULTI_SZ:
            return h.value_multiple_strings(v), 0
    except RuntimeError:
        return h.value_value(v)[1], 1
    return h.value_value(v)[1], 0


def walk(path):
    t0 = time.perf_counter()
    h = hivex.Hivex(path)
    keys = values = errors = 0
    stack = [h.root()]
    name, stamp, nvalues, key_of, children = (h.node_name, h.node_timestamp, h.node_values,
                                              h.value_key, h.node_children)
    while stack:
        node = stack.pop()
        name(node)
        stamp(node)
        keys += 1
        for v in nvalues(node):
            key_of(v)
            _, err = decode(h, v)
            values += 1
            errors += err
        kids = children(node)
        kids.reverse()
        stack.extend(kids)
    del h
    return {"seconds": time.perf_counter() - t0, "keys": keys, "values": values,
            "errors": errors}


def open_only(path):
    t0 = time.perf_counter()
    h = hivex.Hivex(path)
    h.root()
    del h
    return {"seconds": time.perf_counter() - t0}


def find(h, key_path, value_name):
    node = h.root()
    for part in key_path.split("\\"):
        if part:
            node = h.node_get_child(node, part)
            if node is None:
                return None
    try:
        return h.node_get_value(node, value_name)
    except RuntimeError:       # hivex reports a missing value as an error
        return None


def lookup(path, paths):
    h = handle(path)
    found = missing = 0
    t0 = time.perf_counter()
    for key_path, value_name in paths:
        v = find(h, key_path, value_name)
        if v is None:
            missing += 1
        else:
            decode(h, v)
            found += 1
    return {"seconds": time.perf_counter() - t0, "found": found, "missing": missing}


def first_value(path, key_path, value_name):
    """Open, one lookup (decoded), close: the time to a first answer."""
    t0 = time.perf_counter()
    h = hivex.Hivex(path)
    v = find(h, key_path, value_name)
    if v is not None:
        decode(h, v)
    del h
    return {"seconds": time.perf_counter() - t0, "found": int(v is not None)}


def read_key(path, key_path):
    h = handle(path)
    t0 = time.perf_counter()
    node = h.root()
    for part in key_path.split("\\"):
        node = h.node_get_child(node, part)
    out = [decode(h, v)[0] for v in h.node_values(node)]
    return {"seconds": time.perf_counter() - t0, "values": len(out)}


def lengths(path, items):
    h = handle(path)
    out = []
    for key_path, value_name in items:
        v = find(h, key_path, value_name)
        if v is None:
            out.append(None)
            continue
        t, n = h.value_type(v)
        out.append([t, n, len(h.value_value(v)[1])])
    return {"lengths": out}


def main():
    out = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        try:
            if op == "hello":
                rep = {"python": sys.version.split()[0], "hivex": hivex.__file__}
            elif op == "walk":
                rep = walk(req["hive"])
            elif op == "open":
                rep = open_only(req["hive"])
            elif op == "lookup":
                rep = lookup(req["hive"], req["paths"])
            elif op == "first_value":
                rep = first_value(req["hive"], req["key"], req["value"])
            elif op == "read_key":
                rep = read_key(req["hive"], req["key"])
            elif op == "lengths":
                rep = lengths(req["hive"], req["items"])
            else:
                rep = {"error": f"unknown op {op!r}"}
        except Exception as e:  # report, keep serving
            rep = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(rep) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
