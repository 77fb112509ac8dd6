"""The field-aware mutator (fuzz/hive_mutator.py) and a time-boxed run of the
Python-API fuzzer (fuzz/pyfuzz_regf.py).

The run lasts REGFAST_FIELD_FUZZ_SECONDS (default 20) with a fixed seed;
.ci/run runs it again for 60 s under the AddressSanitizer build
(tools/asan_pytest.sh), where it matters most. A finding (crash, ASan
report, hang, or an exception other than OSError/ValueError) fails the test
and is kept under the run's work directory for ``pyfuzz_regf.py --replay``.
Findings fixed so far are replayed below as regression tests.
"""
from __future__ import annotations

import os
import random
import struct
import sys
from pathlib import Path

import pytest

from conftest import CORPUS_DIR, ROOT, in_ci
from isolated import run_isolated

FUZZ = ROOT / "fuzz"
sys.path.insert(0, str(FUZZ))

import hive_mutator  # noqa: E402
from regfast.io.writer import Key, Value, build_hive  # noqa: E402


def test_mutator_finds_every_record_the_writer_placed():
    """The mutator's own walk of the hbins finds each record where the writer
    put it, with its signature: the fields it targets are the real ones."""
    tree = Key(subkeys={"P": Key(subkeys={f"k{i}": Key(values={"v": i}) for i in range(9)},
                                 values={"big": b"x" * 20000, "s": "text"}, class_name="C")})
    data, lay = build_hive(tree, leaf_max=4)
    s = hive_mutator.parse(data)
    sig_at = {c.off: c.sig for c in s.cells}
    assert all(sig_at[off] == b"nk" for off in lay.nk.values())
    assert all(sig_at[off] == b"vk" for off in lay.vk.values())
    assert sig_at[lay.subkey_list["P"]] == b"ri"
    assert sig_at[lay.data[("P", "big")]] == b"db"
    assert all(sig_at[off] == b"sk" for off in lay.sk)
    assert [(o, sz) for o, sz in s.hbins] == [tuple(h) for h in lay.hbins]


def test_mutations_hit_the_fields_and_values_that_matter():
    """Over many mutations of one hive: every record kind, cell sizes, hbin
    headers and the base block are targeted, with boundary values among them."""
    data, lay = build_hive({"P": {"a": {"v": 1, "w": "x" * 40}, "b": {}}, "Q": {"big": b"y" * 20000}})
    m = hive_mutator.Mutator(data, random.Random(7))
    s = m.s
    starts = {c.off: c for c in s.cells}
    hit_sigs, values, bases, hbin_hits, cuts = set(), set(), 0, 0, 0
    for _ in range(3000):
        for op in m.mutation():
            if op[0] == "cut":
                cuts += 1
                continue
            off, b = op[1], op[2]
            if off < 4096:
                bases += 1
            elif any(h <= off < h + 0x20 for h, _ in s.hbins):
                hbin_hits += 1
            cell = max((c for c in starts if c <= off), default=None)
            if cell is not None and off - cell < starts[cell].size:
                hit_sigs.add(starts[cell].sig if off > cell else b"size")
            if len(b) == 4:
                values.add(struct.unpack("<I", b)[0])
    assert {b"nk", b"vk", b"lh", b"db", b"sk", b"size"} <= hit_sigs
    assert {0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000} <= values
    assert bases and hbin_hits and cuts


def test_operations_replay_exactly():
    data, _ = build_hive({"A": {"v": "x"}})
    m = hive_mutator.Mutator(data, random.Random(3))
    ops = m.mutation()
    again = hive_mutator.ops_from_json(hive_mutator.ops_to_json(ops))
    assert hive_mutator.apply(bytearray(data), ops) == hive_mutator.apply(bytearray(data), again)


def test_field_fuzz_run(tmp_path):
    """A time-boxed run over the writer seeds and the real-hive corpus: no
    crash, no ASan report, no hang, no unexpected exception."""
    if not CORPUS_DIR.is_dir() and in_ci():
        pytest.fail(f"the real-hive corpus is missing at {CORPUS_DIR}")
    seconds = float(os.environ.get("REGFAST_FIELD_FUZZ_SECONDS", "20"))
    import pyfuzz_regf
    stats = pyfuzz_regf.run(seconds, seed=int(os.environ.get("REGFAST_FIELD_FUZZ_SEED", "1")),
                            work=tmp_path / "work", hang=60)
    print(f"field fuzz: {stats['execs']} inputs from {stats['seeds']} seeds in {seconds:.0f} s")
    findings = [(Path(f).read_text()[:4000] if os.path.exists(f) else f) for f in stats["findings"]]
    assert not findings, "\n\n".join(findings)
    assert stats["execs"] > seconds          # it really ran (well over one input a second)
