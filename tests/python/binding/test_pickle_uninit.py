"""Pickling, copying and uninitialised extension objects (issue 15, item 6).

Cython's generated pickling of a ScanTable read raw pointers as C strings,
and methods of objects made by ``cls.__new__(cls)`` followed NULL pointers:
both segfaulted. Now every extension type either pickles correctly or
refuses with TypeError, and an uninitialised object raises RegistryError
winerror 6 ("not initialised").

The classes and their members are found by introspection, so a method added
later is covered without editing this file. Every probe runs in a child
interpreter (tests/python/isolated.py): a crash fails the test, naming the
last member tried.

Decisions (documented in the classes' docstrings):
  Hive       pickles/copies as a re-open: its path with the same options, or
             a copy of its buffer; closed -> RegistryError winerror 6.
  Key        its hive (re-opened) + token, checked to be a key there.
  Value      its key + token, checked to be a value there.
  ScanTable, ValueBatch, _Export (memoryviews)  refuse: TypeError, they
             point into a mapping (to_pandas()/to_arrow() make a copy).
  internals  (_Rows, _NameArray, _ProgressCtx) refuse: TypeError.
"""
from __future__ import annotations

import json

import pytest

import regfast
from regfast import _bulk, _native
from isolated import run_isolated
from regfast.io.writer import build_hive


def extension_classes() -> list[str]:
    """module.Class for every class the compiled modules define."""
    out = []
    for mod in (_native, _bulk):
        for name, obj in vars(mod).items():
            if isinstance(obj, type) and obj.__module__ == mod.__name__:
                out.append(f"{mod.__name__}.{name}")
    return sorted(out)


def test_every_class_is_listed():
    """The introspection finds the classes this file's decisions are about."""
    names = {c.rsplit(".", 1)[1] for c in extension_classes()}
    assert {"Hive", "Key", "Value", "_Export", "ScanTable", "ValueBatch", "_Rows"} <= names


PROBE = r"""
import copy, importlib, inspect, json, pickle, sys
import regfast
from regfast import RegistryError

modname, clsname = sys.argv[1].rsplit(".", 1)
cls = getattr(importlib.import_module(modname), clsname)
results = {}

ARGS = {"path": "A", "name": "v", "names": ["v"], "i": 0, "offset": 4096, "paths": ["A\\v"],
        "default": None, "array": False, "errors": "skip", "types": None, "values": True,
        "progress": None, "include_deleted": False, "data": b"", "key": None}
DUNDER = {"__repr__": (), "__str__": (), "__len__": (), "__iter__": (), "__hash__": (), "__bool__": (),
          "__getitem__": ("v",), "__contains__": ("v",), "__enter__": (), "__exit__": (None, None, None),
          "__eq__": (None,), "__reduce__": (), "__reduce_ex__": (2,), "__copy__": (), "__deepcopy__": ({},),
          "__getstate__": (), "__reduce_cython__": (), "__setstate_cython__": (None,),
          "__setstate__": (None,)}

def outcome(fn):
    try:
        r = fn()
        if hasattr(r, "__next__"):              # a generator raises when first resumed
            r = next(r)
    except RegistryError as e:
        return f"raise RegistryError winerror={e.winerror}"
    except Exception as e:
        return f"raise {type(e).__name__}: {e}"[:160]
    if r is None or isinstance(r, (bool, int, float, str)):
        return f"return {r!r}"[:160]
    return f"return object {type(r).__name__}"

def record(member, fn):
    print("trying", member, flush=True)         # the last line names the culprit of a crash
    results[member] = outcome(fn)

try:
    obj = cls.__new__(cls)
except TypeError as e:                          # needs constructor arguments: cannot be made empty
    print(json.dumps({"__new__": f"raise TypeError: {e}"}))
    sys.exit(0)

for name in sorted(dir(cls)):
    if name.startswith("__") and name not in DUNDER:
        continue
    static = inspect.getattr_static(cls, name)
    if isinstance(static, staticmethod):        # a constructor: uses no instance
        continue
    if not callable(static) or isinstance(static, property) or type(static).__name__ in (
            "getset_descriptor", "member_descriptor"):
        record(name, lambda: getattr(obj, name))
        continue
    if name in DUNDER:
        record(name, lambda: getattr(obj, name)(*DUNDER[name]))
        continue
    bound = getattr(obj, name)
    try:
        params = [p for p in inspect.signature(bound).parameters.values()
                  if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        args = [ARGS.get(p.name, 0) for p in params]
    except (TypeError, ValueError):
        args = []
    record(name, lambda: bound(*args))
record("memoryview()", lambda: memoryview(obj))
record("pickle.dumps", lambda: pickle.dumps(obj))
record("copy.copy", lambda: copy.copy(obj))
record("copy.deepcopy", lambda: copy.deepcopy(obj))
print(json.dumps(results))
"""

# Members of an uninitialised object that may answer instead of raising:
# plain attributes that are None until filled, and state that is true of an
# object never opened.
MAY_ANSWER = {
    "Hive": {"path": "return None", "closed": "return True", "mapped": "return False", "close": "return None",
             "__exit__": "return False", "__hash__": None},
}
# What object's defaults answer for any instance: identity equality and hash,
# no state to pickle. (Pickling itself is checked separately.)
DEFAULTS = {"__eq__": "return object NotImplementedType", "__getstate__": "return None"}
# Attributes that stay None on an object made by __new__ (readonly fields).
NONE_FIELDS = {"hive", "key", "names", "arena", "root_path"} | {
    f"{t}_{c}" for t in ("key", "value") for c in (
        "token", "parent", "depth", "last_write", "n_values", "name_off", "name_len", "status", "deleted",
        "key", "type", "offset", "length", "malformed")}


@pytest.mark.parametrize("cls", extension_classes())
def test_uninitialised_object_raises_and_never_crashes(cls):
    r = run_isolated(PROBE, cls, timeout=120)
    results = json.loads(r.stdout.strip().splitlines()[-1])
    if "__new__" in results:                # cannot be made without arguments: nothing to probe
        assert results["__new__"].startswith("raise TypeError")
        return
    short = cls.rsplit(".", 1)[1]
    for member in ("pickle.dumps", "copy.copy", "copy.deepcopy"):
        assert results[member].startswith("raise"), (member, results[member])
    bad = {}
    for member, got in results.items():
        if got.startswith("raise RegistryError winerror=6") or got.startswith("raise TypeError: cannot pickle"):
            continue
        if member in NONE_FIELDS and got == "return None":
            continue
        allowed = MAY_ANSWER.get(short, {})
        if member in allowed and (allowed[member] is None or got == allowed[member]):
            continue
        if DEFAULTS.get(member) == got or (member == "__hash__" and got.startswith("return ")):
            continue
        if member in ("__repr__", "__str__") and got.startswith("return '") and (
                "not initialised" in got or "(closed)" in got):
            continue
        if member == "memoryview()" and got.startswith("raise TypeError"):
            continue                            # not a buffer: the Python error is the right one
        if short.startswith("_") and got.startswith(("raise TypeError", "raise ValueError", "return")):
            continue                            # internals: not crashing is the promise
        bad[member] = got
    assert not bad, f"{cls}: members of an uninitialised object that neither raise winerror 6 nor " \
                    f"answer harmlessly: {bad}"


# --- pickling and copying live objects (in children too: a crash must fail) ----

@pytest.fixture
def hive_path(tmp_path):
    data, _ = build_hive({"A": {"v": "x", "n": 7, "B": {"w": b"\x01\x02"}}, "C": {}})
    path = tmp_path / "p.hiv"
    path.write_bytes(data)
    return path


ROUND_TRIP = r"""
import copy, pickle, sys
import regfast

path, how, opened = sys.argv[1:4]
if opened == "buffer":
    hive = regfast.Hive.from_buffer(open(path, "rb").read())
else:
    hive = regfast.open_hive(path, copy=opened == "copy", errors="tolerant" if opened == "tolerant" else "strict")
key = hive.open(r"A\B")
value = hive.open("A").value("n")
dup = {"pickle": lambda o: pickle.loads(pickle.dumps(o)), "copy": copy.copy, "deepcopy": copy.deepcopy}[how]
h2 = dup(hive)
assert h2 is not hive and h2.path == hive.path and not h2.closed
assert [k.path for k in h2.walk()] == [k.path for k in hive.walk()]
k2 = dup(key)
assert k2.path == "A\\B" and k2["w"] == b"\x01\x02"
assert k2.offset == key.offset
assert (k2.hive is key.hive) == (how == "copy")     # a shallow copy shares the hive
v2 = dup(value)
assert (v2.name, v2.value, v2.type) == ("n", 7, regfast.REG_DWORD)
h2.close()
hive.close()
assert hive.closed and not h2.mapped
print("ok")
"""


@pytest.mark.parametrize("how", ["pickle", "copy", "deepcopy"])
@pytest.mark.parametrize("opened", ["file", "buffer", "copy", "tolerant"])
def test_hive_key_value_round_trip(hive_path, how, opened):
    """A Hive re-opens (path + options, or its bytes), a Key and a Value are
    found again by token; the copies are independent of the original."""
    assert run_isolated(ROUND_TRIP, str(hive_path), how, opened).stdout.strip() == "ok"


def test_closed_hive_views_and_tables_refuse(hive_path):
    """A closed hive (and its keys) cannot be re-opened from a pickle: winerror
    6; tables, batches and memoryview exports refuse with TypeError."""
    r = run_isolated(r"""
        import copy, pickle, sys
        import regfast
        hive = regfast.open_hive(sys.argv[1])
        table = hive.scan()
        batch = hive.open("A").read_values()
        view = hive.open("A").value("v").data
        for obj in (table, batch, view.obj):
            for fn in (pickle.dumps, copy.copy, copy.deepcopy):
                try:
                    fn(obj)
                except TypeError as e:
                    assert "cannot pickle or copy" in str(e), e
                else:
                    raise AssertionError(f"{fn.__name__}({type(obj).__name__}) did not refuse")
        try:
            pickle.dumps(table)
        except TypeError as e:
            assert "to_pandas" in str(e)
        key = hive.open("A")
        hive.close()
        for obj in (hive, key):
            try:
                pickle.dumps(obj)
            except regfast.RegistryError as e:
                assert e.winerror == 6
            else:
                raise AssertionError("a closed hive pickled")
        print("ok")
    """, str(hive_path))
    assert r.stdout.strip() == "ok"


def test_a_pickled_key_reads_in_another_process(hive_path):
    """What multiprocessing does: the Key crosses a process boundary and the
    child re-opens the hive by path."""
    r = run_isolated(r"""
        import pickle, sys
        import regfast
        with regfast.open_hive(sys.argv[1]) as hive:
            print(pickle.dumps([hive.open(r"A\B"), hive.open("A").value("v")]).hex())
    """, str(hive_path))
    r = run_isolated(r"""
        import pickle, sys
        key, value = pickle.loads(bytes.fromhex(sys.argv[1]))
        print(key.path, key["w"].hex(), value.value)
    """, r.stdout.strip())
    assert r.stdout.split() == ["A\\B", "0102", "x"]
