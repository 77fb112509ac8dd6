"""Shared fixtures: hives built by regfast's writer, optionally corrupted at
an exact field, and a reader that turns a hive into the same normalized shape
as the hivex oracle (tests/python/oracle.py); where the suite keeps what it
builds (:func:`artefact_dir`) and finds the real-hive corpus.

The tests live in folders that follow the package (hive/, live/, io/, ...);
this directory holds what they share (this file, oracle.py, isolated.py,
carving.py). pytest puts it on sys.path for every test below it (rootdir
conftest, "prepend" import mode), so any test imports them as
``from conftest import ...``. Test file names stay unique across folders
(no __init__.py: pytest imports each by its base name)."""
from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

import regfast
from regfast.io.writer import REG_EXPAND_SZ, REG_QWORD, REG_SZ, HiveLayout, Value, _shorthand_value, _split, build_hive

#: the repository (tests/python/conftest.py -> ../..)
ROOT = Path(__file__).resolve().parents[2]

# Fields tests can corrupt: "record.field" -> (offset inside the cell payload, struct format).
# Cell payload = after the 4-byte size field (the spec's offsets).
FIELDS: dict[str, tuple[int, str]] = {
    "cell.size": (-4, "<i"),
    "nk.sig": (0x00, "<H"), "nk.flags": (0x02, "<H"), "nk.parent": (0x10, "<I"),
    "nk.n_subkeys": (0x14, "<I"), "nk.subkeys": (0x1C, "<I"), "nk.n_values": (0x24, "<I"),
    "nk.values": (0x28, "<I"), "nk.security": (0x2C, "<I"), "nk.class": (0x30, "<I"),
    "nk.name_len": (0x48, "<H"), "nk.class_len": (0x4A, "<H"),
    "vk.sig": (0x00, "<H"), "vk.name_len": (0x02, "<H"), "vk.data_len": (0x04, "<I"),
    "vk.data": (0x08, "<I"), "vk.type": (0x0C, "<I"),
    "list.sig": (0x00, "<H"), "list.count": (0x02, "<H"), "list.entry0": (0x04, "<I"),
    "list.entry1": (0x0C, "<I"),
    "values.entry0": (0x00, "<I"),
    "db.count": (0x02, "<H"), "db.list": (0x04, "<I"),
    "sk.size": (0x10, "<I"),
}


# A small tree with every value type and names the exports must escape: the
# CLI's tests and the pytest plugin's build it.
MIXED_TREE = {
    "App": {
        "": "default",
        "Name": 'quote " and \\ backslash',
        "Count": 42,
        "Blob": bytes(range(200)),
        "Path": Value(REG_EXPAND_SZ, "%ProgramFiles%\\App"),
        "List": ["x", "y", "ü"],
        "Big": Value(REG_QWORD, 1 << 50),
        "NoNul": Value(REG_SZ, "abc".encode("utf-16-le")),     # must round-trip as hex(1)
        "Dev": Value(0xFFFF0012, b"\x05"),
        "Sub": {"Deeper": {"Ω": "omega"}},
    },
    "Empty": {},
}


class BuiltHive(NamedTuple):
    path: Path
    layout: HiveLayout


def cell_of(layout: HiveLayout, record: str, target: Any) -> int:
    """File offset of the cell a corruption spec names."""
    if record == "nk":
        return layout.nk[target]
    if record == "vk":
        return layout.vk[tuple(target)]
    if record == "db":
        return layout.data[tuple(target)]
    if record == "list":
        return layout.subkey_list[target]
    if record == "values":
        return layout.value_list[target]
    if record == "sk":
        return layout.sk_of[target]
    if record == "cell":
        return layout.nk[target]
    raise KeyError(record)


def corrupt_bytes(data: bytearray, layout: HiveLayout, field: str, target: Any, value: int) -> int:
    """Writes `value` into `field` of the record at `target`; returns the file
    offset of the cell written to."""
    record = field.split(".")[0]
    rel, fmt = FIELDS[field]
    cell = cell_of(layout, record, target)
    struct.pack_into(fmt, data, cell + 4 + rel, value)
    return cell


@pytest.fixture
def make_hive(tmp_path):
    """make_hive(tree, corrupt=("nk.name_len", r"A\\B", 0xFFFF), **writer_kwargs)
    -> BuiltHive(path, layout). Several corruptions: pass a list of triples."""
    counter = iter(range(1_000_000))

    def make(tree, corrupt=None, name=None, **kwargs) -> BuiltHive:
        data, layout = build_hive(tree, **kwargs)
        data = bytearray(data)
        if corrupt:
            specs = [corrupt] if isinstance(corrupt[0], str) else corrupt
            for field, target, value in specs:
                corrupt_bytes(data, layout, field, target, value)
        path = tmp_path / (name or f"hive{next(counter)}.hiv")
        path.write_bytes(data)
        return BuiltHive(path, layout)

    return make


def regfast_tree(hive: regfast.Hive) -> dict[str, dict]:
    """Every key as {path: {"values": {name: (type, bytes)}, "class": str|None}},
    the shape oracle.hivex_tree() returns."""
    out = {}
    for key in hive.walk():
        out[key.path] = {
            "values": {v.name: (v.type, v.raw()) for v in key.values()},
            "class": key.class_name,
        }
    return out


def expected_tree(tree, path: str = "") -> dict[str, dict]:
    """What the writer was asked to write, in the same normalized shape."""
    subkeys, values, cls, _, _ = _split(tree, path)
    vals = {name: _shorthand_value(v) for name, v in values.items()}
    out = {path: {"values": vals, "class": cls or None}}
    for name, sub in subkeys.items():
        out.update(expected_tree(sub, name if not path else path + "\\" + name))
    return out


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def artefact_dir(name: str) -> Path:
    """A directory, kept between runs, for what the suite builds: ctest build
    trees, their Wine prefixes, the test agent. Never inside the source tree:
    a Wine prefix's dosdevices/z: links to /, so a prefix in the tree makes
    every walk of the tree (``python -m build --sdist``, ``grep -r``) walk the
    whole disk. $REGFAST_TEST_CACHE, else ``<tmp>/regfast-test-<hash>`` where
    the hash is this checkout's path (two checkouts never share a build)."""
    base = os.environ.get("REGFAST_TEST_CACHE")
    if not base:
        tag = hashlib.sha1(str(ROOT).encode()).hexdigest()[:12]
        base = os.path.join(tempfile.gettempdir(), f"regfast-test-{tag}")
    path = Path(base) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


# Hypothesis keeps what it learns between runs (the examples it found,
# failures first; its Unicode tables): in the artefact directory, not in
# .hypothesis/ under the working directory.
set_hypothesis_home_dir(str(artefact_dir("hypothesis")))


# --- the real-hive corpus ----------------------------------------------------
# Real hives written by Windows, from other projects' public test data
# (provenance and licences: SOURCES.md there). They live beside the project,
# never inside it: tests read them in place and never copy them into the tree.
CORPUS_DIR = Path(os.environ.get("REGFAST_CORPUS")
                  or ROOT.parent / "shared" / "corpus")
# Files of the corpus that are not regf primary hives (tests that expect a
# hive to open treat these as "refused with a clear error" instead).
CORPUS_NOT_HIVES = {
    "dfwinreg__NTUSER.DAT.LOG": "a transaction log, not a primary file",
    "dfwinreg__USER.DAT_win9x_creg": "Windows 9x CREG format",
    "ez__NotAHive": "a PE executable",
}


def corpus_names() -> list[str]:
    """Every corpus file name (for parametrize); one placeholder when the
    folder is absent, so the test that uses it reports the absence loudly
    instead of pytest collecting an empty parameter set."""
    if not CORPUS_DIR.is_dir():
        return ["<corpus absent>"]
    return sorted(f.name for f in CORPUS_DIR.iterdir() if f.is_file() and not f.name.endswith(".md"))


def corpus_path(name: str) -> Path:
    """Path of one corpus file; skips loudly when the corpus is absent (fails under CI=true)."""
    path = CORPUS_DIR / name
    if not path.is_file():
        msg = f"real-hive corpus file {path} is absent (set REGFAST_CORPUS to the corpus folder)"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return path
