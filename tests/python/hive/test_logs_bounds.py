"""Hostile transaction logs (issue 15 #2, the log bomb, and the log-set
mutator of "Keep it found"): every size a log states is bounded before
anything is allocated, and a mutated log set ends in a result or a clean
OSError, in bounded memory and time.

The bounded runs happen in a subprocess whose address space is capped
(RLIMIT_AS: its size after imports + 256 MB) and whose Python allocations
are traced (tracemalloc): before the bounds, the 350 KB hive below made
regfast allocate 4.2 GB.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

from regfast.io.logwriter import entry_offsets, make_dirty_hive, reseal_log, set_sequence
from regfast.io.writer import build_hive

from conftest import ROOT, corpus_path

TS = 132_500_000_000_000_000
SEQ0 = 10
REPO = ROOT


def _images(n: int, extra: int):
    trees = [{"Data": {f"K{j:04d}": {"v": f"{i}:{j}" * 8, "n": j} for j in range(extra)},
              "App": {"Counter": i}} for i in range(n)]
    return [build_hive(t, timestamp=TS, sequence=(SEQ0, SEQ0), file_name="SYSTEM")[0] for t in trees]


_BIG = None


def _big_dirty(fmt: str = "new"):
    """A ~350 KB dirty hive with its logs (the size of the issue's case)."""
    global _BIG
    if _BIG is None:
        _BIG = _images(3, 1400)
    assert 300_000 < len(_BIG[0]) < 450_000
    return make_dirty_hive(_BIG, format=fmt, logs=[".LOG1", ".LOG2"] if fmt == "new" else None)


_RUNNER = textwrap.dedent(r"""
    import contextlib, io, json, os, resource, sys, tracemalloc, warnings
    import regfast, regfast.cli
    vm = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:")][0]
    resource.setrlimit(resource.RLIMIT_AS, (vm + 256 * 2**20, resource.RLIM_INFINITY))
    primary, out = sys.argv[1], sys.argv[2]
    res = {}
    tracemalloc.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with regfast.open_hive(primary, errors="tolerant") as hive:
                rep = regfast.recovery_of(hive)
                res["applied"], res["stop"] = rep.applied, rep.stop_reason
                res["logs"] = {l.name: [l.problem, l.stopped, l.entries_applied] for l in rep.logs}
                res["keys"] = hive.scan(errors="skip").stats()["keys"]
        res["warnings"] = [str(w.message) for w in caught]
        for cmd in (["info", primary], ["recover", primary, "-o", out]):
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                res[cmd[0]] = regfast.cli.main(cmd)
            res[cmd[0] + "_err"] = err.getvalue()
    except MemoryError:
        res["error"] = "MemoryError"
    res["peak"] = tracemalloc.get_traced_memory()[1]
    res["out_size"] = os.path.getsize(out) if os.path.exists(out) else None
    print(json.dumps(res))
""")


def child_env() -> dict:
    """The environment for a Python child that imports regfast: under
    tools/asan_pytest.sh the extension is instrumented and the child needs
    ASan's runtime preloaded as this process has it (the script's
    sitecustomize takes LD_PRELOAD out of the environment)."""
    env = dict(os.environ)
    try:
        with open("/proc/self/maps") as f:
            asan = [line.split()[-1] for line in f if "libasan" in line and line.split()[-1].startswith("/")]
    except OSError:
        asan = []
    if asan:
        env["LD_PRELOAD"] = asan[0]
    return env


def _bounded(primary: Path) -> dict:
    out = primary.parent / "recovered.hiv"
    p = subprocess.run([sys.executable, "-c", _RUNNER, str(primary), str(out)],
                       capture_output=True, text=True, timeout=120, env=child_env())
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def _input_size(primary: Path) -> int:
    return sum(f.stat().st_size for f in primary.parent.glob(primary.name + "*"))


def _assert_bounded(res: dict, primary: Path) -> None:
    assert "error" not in res, res
    assert res["peak"] < 4 * _input_size(primary) + (8 << 20), res["peak"]
    assert res["out_size"] is None or res["out_size"] <= _input_size(primary), res["out_size"]


def test_log_bomb_entry_hive_bins_size(tmp_path):
    """issue 15 #2: only the hive bins data size of LOG2's entry changed
    (0xFFFFF000, a multiple of 4096 as the format wants), hashes
    recomputed. The entry is invalid — replay stops before it (spec, new
    format note 8) with its offset in the log — and LOG1's entry applies."""
    dh = _big_dirty()
    log2 = bytearray(dh.logs[".LOG2"])
    off = entry_offsets(bytes(log2))[0]
    struct.pack_into("<I", log2, off + 16, 0xFFFFF000)
    dh.logs[".LOG2"] = bytes(reseal_log(log2))
    dh.write(tmp_path / "SYSTEM")
    res = _bounded(tmp_path / "SYSTEM")
    _assert_bounded(res, tmp_path / "SYSTEM")
    assert res["applied"] and res["logs"]["SYSTEM.LOG1"][2] == 1 and res["logs"]["SYSTEM.LOG2"][2] == 0
    assert f"SYSTEM.LOG2 @0x{off:x}" in res["stop"] and f"(at 0x{off + 16:x})" in res["stop"]
    assert "hive bins data size 0xfffff000" in res["stop"] and "exceeds" in res["stop"]
    assert any("invalid entry" in w for w in res["warnings"])
    assert res["info"] == 0 and res["recover"] == 0
    assert res["out_size"] == 4096 + struct.unpack_from("<I", _BIG[1], 40)[0]


def test_log_bomb_old_format_hive_bins_size(tmp_path):
    """The old format's hive bins data size (log base block, 0x28) sizes
    the dirty vector and the hive: 0xFFFFF000 with a 1 MB vector that marks
    the same pages. Refused with the offset; nothing replayed."""
    dh = _big_dirty("old")
    log = bytearray(dh.logs[".LOG"])
    hb = struct.unpack_from("<I", log, 40)[0]
    first = (516 + hb // 4096 + 511) // 512 * 512
    bits, pages = log[516:516 + hb // 4096], log[first:]
    big = 0xFFFFF000
    new_first = (516 + big // 4096 + 511) // 512 * 512
    log = bytearray(log[:516]) + bits + bytes(new_first - 516 - len(bits)) + pages
    struct.pack_into("<I", log, 40, big)
    dh.logs[".LOG"] = bytes(reseal_log(log))
    dh.write(tmp_path / "SYSTEM")
    res = _bounded(tmp_path / "SYSTEM")
    _assert_bounded(res, tmp_path / "SYSTEM")
    assert not res["applied"] and "0xfffff000 (at 0x28) exceeds" in res["stop"]
    assert res["recover"] == 1 and res["out_size"] is None
    assert "0xfffff000 (at 0x28) exceeds" in res["recover_err"]


def test_primary_hive_bins_size_is_bounded_by_its_file(tmp_path):
    """The primary's own hive bins data size (valid checksum, dirty) cannot
    size the replay buffer either."""
    dh = _big_dirty()
    dh.primary = bytes(set_sequence(bytearray(dh.primary[:40]) + struct.pack("<I", 0xFFFFF000)
                                    + dh.primary[44:], SEQ0 + 1, SEQ0))
    dh.write(tmp_path / "SYSTEM")
    res = _bounded(tmp_path / "SYSTEM")
    _assert_bounded(res, tmp_path / "SYSTEM")
    assert res["applied"] and res["recover"] == 0


def test_dirty_vector_marking_more_pages_than_the_log_holds(tmp_path):
    dh = make_dirty_hive(_images(2, 300), format="old")
    log = bytearray(dh.logs[".LOG"])
    hb = struct.unpack_from("<I", log, 40)[0]
    log[516:516 + hb // 4096] = b"\xff" * (hb // 4096)
    dh.logs[".LOG"] = bytes(reseal_log(log))
    dh.write(tmp_path / "SYSTEM")
    res = _bounded(tmp_path / "SYSTEM")
    _assert_bounded(res, tmp_path / "SYSTEM")
    problem = res["logs"]["SYSTEM.LOG"][0]
    assert not res["applied"] and f"marks {hb // 512} pages; the file holds" in problem


# --------------------------------------------------------------------------
# The log-set mutator
# --------------------------------------------------------------------------

def test_log_set_mutator_deterministic_run(tmp_path):
    """300 seeded cases of fuzz/fuzz_logs.py (the CI runs it time-boxed):
    every one ends in a result or an OSError, under RLIMIT_AS, in time."""
    corpus_path("dfwinreg__NTUSER.DAT.LOG")        # the real-log seeds are part of the run
    p = subprocess.run([sys.executable, str(REPO / "fuzz" / "fuzz_logs.py"), "--cases", "300", "--seed", "16",
                        "--crashes", str(tmp_path / "crashes")],
                       capture_output=True, text=True, timeout=600,
                       env={**child_env(), "REGFAST_CORPUS": str(Path(corpus_path("dfwinreg__NTUSER.DAT")).parent)})
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-6000:]
    assert "300 cases" in p.stdout and "0 failures" in p.stdout
    assert "9 seed sets" in p.stdout
    # the cases reach replay and refusals alike
    assert "strict:applied" in p.stdout and "RegistryCorruptError" in p.stdout


def test_fifos_never_block_replay(tmp_path):
    """open(2) of a FIFO waits for a writer: the primary and its logs are
    opened non-blocking and refused unless they are regular files."""
    dh = make_dirty_hive(_images(2, 5))
    dh.write(tmp_path / "SYSTEM")
    os.mkfifo(tmp_path / "pipe.LOG1")
    code = textwrap.dedent("""
        import sys, warnings, regfast
        from regfast.hive.logs import recover
        warnings.simplefilter("ignore")
        hive, rep = recover(sys.argv[1], [sys.argv[2]])
        print(rep.logs[0].problem)
        try:
            regfast.open_hive(sys.argv[2])
        except regfast.NotAHiveError as e:
            print("refused", e.winerror)
    """)
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path / "SYSTEM"), str(tmp_path / "pipe.LOG1")],
                       capture_output=True, text=True, timeout=60, env=child_env())
    assert p.returncode == 0, p.stderr
    problem, refused = p.stdout.split("\n")[:2]
    assert problem.startswith("cannot read it: ") and "not a regular file (a FIFO)" in problem, problem
    assert refused == "refused 1017"
