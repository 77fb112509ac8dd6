#!/usr/bin/env python3
"""Writes the fuzz seed corpus: small valid hives, one per construct.

    python fuzz/make_corpus.py OUTDIR

Each seed is built by regfast's own writer (src/regfast/io/writer.py), loaded by
file path so that no compiled extension is needed. Seeds are kept small
(a few hbins) so mutations stay cheap; only the big-data seeds go past 16 KB.
Every construct the reader handles appears in at least one seed: format
versions 1.3-1.6, lh/lf/li leaves and ri roots, Latin-1 and UTF-16 names,
classes, shared and custom security descriptors, inline/cell/big-data values
of every type, a dirty base block, several hbins, deep nesting.
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WRITER = HERE.parent / "src" / "regfast" / "io" / "writer.py"


def load_writer():
    spec = importlib.util.spec_from_file_location("regfast_writer_standalone", WRITER)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


def seeds(w):
    """(name, tree, build_hive kwargs) for every seed."""
    Key, Value = w.Key, w.Value
    all_types = {
        "": "default",
        "sz": "text",
        "expand": Value(w.REG_EXPAND_SZ, "%SystemRoot%\\x"),
        "bin": b"\x00\x01\x02\xff" * 3,
        "dword": 0xDEADBEEF,
        "be": Value(w.REG_DWORD_BIG_ENDIAN, 0x01020304),
        "link": Value(w.REG_LINK, "\\Registry\\Machine"),
        "multi": ["one", "", "three"],
        "res": Value(w.REG_RESOURCE_LIST, b"\x01\x00\x00\x00" * 2),
        "qword": Value(w.REG_QWORD, 2**63 + 5),
        "none": Value(w.REG_NONE, b""),
        "dev": Value(0xFFFF0012, b"\x07"),
        "i0": b"", "i1": b"a", "i4": b"abcd", "c5": b"abcde",
    }
    sd = w.build_security_descriptor(
        "S-1-5-18", "S-1-5-18",
        [(0, 0x03, 0x000F003F, "S-1-5-18"), (1, 0x02, 0x00020019, "S-1-1-0")], control=0x8C04)
    yield "empty", {}, {}
    yield "one-key", {"A": {}}, {}
    for minor in (3, 4, 5, 6):
        yield f"types-1.{minor}", {"T": all_types}, {"minor": minor}
    for index in ("lh", "lf", "li"):
        yield f"ri-{index}", {"P": {f"k{i}": {"v": i} for i in range(7)}}, {"index": index, "leaf_max": 2}
        yield f"leaf-{index}", {"P": {f"k{i}": {} for i in range(3)}, "Q": {"x": {}}}, {"index": index}
    yield "names", {
        "Café": {"Ünïcode": {"naïve": "résumé"}},
        "日本": {"Ωmega": {"名前": "値", "ω": 1}},
        "\U0001F600astral": {"\U0001F600": b"x"},
    }, {}
    yield "class-security", Key(subkeys={
        "C": Key(class_name="VendorClass", values={"v": 1}, security=sd),
        "D": Key(class_name="Другой"),
        "E": {},
    }), {}
    yield "dirty", {"A": {"v": "x"}}, {"sequence": (7, 6), "file_name": "SYSTEM"}
    yield "deep", _deep(12), {}
    yield "multi-hbin", {f"K{i:02d}": {"blob": bytes([i]) * 700} for i in range(14)}, {}
    yield "big-data-1.5", {"B": {"big": bytes(range(256)) * 80, "small": 1}}, {"minor": 5}
    yield "big-data-1.3", {"B": {"big": bytes(range(256)) * 70}}, {"minor": 3}
    yield "sorted-values", {"V": {f"n{i}": i for i in range(12)}}, {"value_list_order": "sorted"}
    # keys whose parent field names no key, listed again under other keys and
    # under themselves (a tolerant open reads each once, where first met:
    # the walk's parent-chain check fails if a key is read under two lists)
    yield "relisted", {"P1": {"X": {"s": {"v": 1}}}, "P2": {"Y": {}}, "R": {}}, {"index": "li"}
    yield "relisted-self", {"P1": {"X": {"s": {"v": 1}}}, "P2": {"Y": {}}, "R": {}}, {"index": "li"}
    # a db record of 0 segments whose list is a key's nk: the carver met that
    # nk as a record "in slack" at its own cell's start (libFuzzer)
    yield "db-list-is-a-key", {"A": {"big": bytes(range(256)) * 80, "C": {"w": 1}}}, {}
    # a value whose data is lost, a vk that is no vk, a key of no name
    yield "values-damaged", {"K": {"a": "alpha", "b": "beta", "d": "delta"}, "N": {"x": {}}}, {}


def patch(name, data, layout):
    """Damage written into a seed after it is built (see seeds)."""
    import struct
    if name == "db-list-is-a-key":
        db, c = layout.data[("A", "big")], layout.nk["A\\C"]
        struct.pack_into("<HI", data, db + 4 + 2, 0, c - 4096)
    if name == "values-damaged":
        struct.pack_into("<I", data, layout.vk[("K", "b")] + 4 + 0x08, 0x12344)   # data at no cell
        data[layout.vk[("K", "d")] + 4:layout.vk[("K", "d")] + 6] = b"xx"         # not a vk
        struct.pack_into("<H", data, layout.nk["N"] + 4 + 0x48, 0)                 # a key of no name
    if name.startswith("relisted"):
        x, y = layout.nk["P1\\X"], layout.nk["P2\\Y"]
        for k in (x, y):  # parent field: no key, or (-self) the key itself
            struct.pack_into("<I", data, k + 4 + 0x10, k - 4096 if name.endswith("-self") else 0x7FFFFFF0)
        struct.pack_into("<I", data, layout.subkey_list["P2"] + 8, x - 4096)     # P2 lists X
        struct.pack_into("<I", data, layout.subkey_list["P1\\X"] + 8, x - 4096)  # X lists X


def _deep(n):
    tree = {"leaf": 1}
    for i in range(n):
        tree = {f"d{i}": tree, "v": i}
    return tree


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    w = load_writer()
    n = 0
    for name, tree, kwargs in seeds(w):
        data, layout = w.build_hive(tree, timestamp=0x01D0000000000000, **kwargs)
        data = bytearray(data)
        patch(name, data, layout)
        data = bytes(data)
        digest = hashlib.sha1(data).hexdigest()[:12]
        (out / f"{name}-{digest}.hiv").write_bytes(data)
        n += 1
    print(f"wrote {n} seeds to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
