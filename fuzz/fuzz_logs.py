#!/usr/bin/env python3
"""Log-set mutator: fuzzes transaction-log replay through the Python API.

    python fuzz/fuzz_logs.py --seconds 30            # time-boxed (CI)
    python fuzz/fuzz_logs.py --cases 300 --seed 7    # deterministic (the test suite)
    python fuzz/fuzz_logs.py --replay CASE_DIR       # run one saved case in this process

Seeds are dirty hives with their logs: written by regfast.io.logwriter (two
new-format logs, an old-format log, the "gap" shape of a real SYSTEM hive, a
hive grown through its log) and, when the real-hive corpus is beside the
project (../shared/corpus, or $REGFAST_CORPUS), dfwinreg's NTUSER.DAT with
its real .LOG. Each case mutates 1-4 things: HvLE entry fields (size, flags,
sequence, hive bins data size, page count), page references, page bytes,
log and primary base block fields, DIRT vectors, whole files (truncated,
extended, swapped, emptied) — then recomputes the entry hashes and base
block checksums most of the time, so mutations get past the integrity
checks to the replay rules and the size bounds behind them.

Every case is run by a worker process whose address space is capped
(RLIMIT_AS: its size after imports + --mem-mb) and which must answer within
--timeout seconds: strict and tolerant ``open_hive``, ``recovery_of``, a
scan of what opened, and ``regfast recover`` to a temporary file. The only
acceptable outcomes are a result or an OSError (every RegistryError is one).
Anything else — another exception, MemoryError (an unbounded allocation), a
hang, a crash — is a failure: the case is saved under --crashes and the
exit status is 1.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import select
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
M32 = 0xFFFFFFFF
TS = 132_500_000_000_000_000
INTERESTING32 = [0, 1, 0x1FF, 0x200, 0xFFF, 0x1000, 0x1001, 0x7FFFF000, 0x7FFFFFFF, 0x80000000,
                 0xFFFFF000, 0xFFFFFFFE, 0xFFFFFFFF]

# --------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------


def _tree(i: int, extra: int = 0) -> dict:
    return {
        "Software": {"Vendor": {"App": {"Counter": i, "Note": f"version {i:03d}", "Blob": bytes([i]) * 80}}},
        "System": {"Select": {"Current": 1}, "Bulk": {f"K{j:04d}": {"v": f"{i}:{j}" * 6} for j in range(extra)}},
    }


def _images(n: int, extra=lambda i: 0) -> List[bytes]:
    from regfast.io.writer import build_hive
    return [build_hive(_tree(i, extra(i)), timestamp=TS, sequence=(10, 10), file_name="SYSTEM")[0]
            for i in range(n)]


def _corpus_dir() -> Optional[Path]:
    env = os.environ.get("REGFAST_CORPUS")
    for d in ([Path(env)] if env else []) + [HERE.parent.parent / "shared" / "corpus"]:
        if d.is_dir():
            return d
    return None


def build_seeds() -> Dict[str, Dict[str, bytes]]:
    """name -> {"": primary, ".LOG1": log, ...}."""
    from regfast.io.logwriter import make_dirty_hive, set_sequence

    seeds: Dict[str, Dict[str, bytes]] = {}

    def add(name, dh):
        seeds[name] = {"": dh.primary, **dh.logs}

    imgs = _images(6)
    add("new-dual", make_dirty_hive(imgs, logs=[".LOG1", ".LOG1", ".LOG2", ".LOG2", ".LOG2"]))
    add("new-single", make_dirty_hive(imgs[:3]))
    add("old", make_dirty_hive(imgs[:3], format="old"))
    add("gap", make_dirty_hive(imgs[:5], logs=[".LOG1", ".LOG1", ".LOG2", ".LOG2"], base_sequence=2106,
                               primary_sequence=(1622, 1621)))
    grown = _images(3, extra=lambda i: [0, 60, 150][i])
    add("new-grow", make_dirty_hive(grown, logs=[".LOG2", ".LOG1"]))
    add("old-grow", make_dirty_hive(grown, format="old"))
    clean = make_dirty_hive(imgs[:3])
    clean.primary = bytes(set_sequence(imgs[0], 11, 11))       # forensic mode: newer entries (11, 12)
    add("new-clean", clean)
    corpus = _corpus_dir()
    if corpus is not None and (corpus / "dfwinreg__NTUSER.DAT.LOG").is_file():
        primary = (corpus / "dfwinreg__NTUSER.DAT").read_bytes()
        log = (corpus / "dfwinreg__NTUSER.DAT.LOG").read_bytes()
        seeds["real-ntuser-clean"] = {"": primary, ".LOG": log}
        # made dirty (132 / 131): its real entry 131 then applies
        seeds["real-ntuser-dirty"] = {"": bytes(set_sequence(primary, 132, 131)), ".LOG": log}
    return seeds


# --------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------

def _u32(rng: random.Random, old: int) -> int:
    r = rng.random()
    if r < 0.4:
        return rng.choice(INTERESTING32)
    if r < 0.7:
        return (old + rng.choice([-4096, -512, -1, 1, 512, 4096, 8192])) & M32
    if r < 0.85:
        return (old * rng.choice([2, 16, 256])) & M32
    return rng.getrandbits(32)


def _entries(log: bytearray) -> List[int]:
    from regfast.io.logwriter import entry_offsets
    return entry_offsets(bytes(log)) if log[28:32] == b"\x06\x00\x00\x00" else []


def _mutate_entry(rng, log: bytearray) -> Optional[str]:
    offs = _entries(log)
    if not offs:
        return None
    off = rng.choice(offs)
    size, flags, seq, hb, count = struct.unpack_from("<IIIII", log, off + 4)
    kind = rng.choice(["size", "flags", "sequence", "hbins", "hbins", "count", "ref", "ref", "page",
                       "hash", "dup", "signature"])
    if kind == "size":
        struct.pack_into("<I", log, off + 4, _u32(rng, size))
    elif kind == "flags":
        struct.pack_into("<I", log, off + 8, _u32(rng, flags))
    elif kind == "sequence":
        struct.pack_into("<I", log, off + 12, rng.choice([seq - 1, seq + 1, seq + 2, 0, M32, _u32(rng, seq)]) & M32)
    elif kind == "hbins":
        struct.pack_into("<I", log, off + 16, _u32(rng, hb))
    elif kind == "count":
        struct.pack_into("<I", log, off + 20, _u32(rng, count))
    elif kind == "ref" and count and off + 40 + 8 * min(count, 64) <= len(log):
        i = rng.randrange(min(count, 64))
        at = off + 40 + 8 * i + rng.choice([0, 4])
        struct.pack_into("<I", log, at, _u32(rng, struct.unpack_from("<I", log, at)[0]))
    elif kind == "page" and off + size <= len(log) and size > 48:
        for _ in range(rng.randint(1, 8)):
            at = off + 40 + rng.randrange(size - 40)
            log[at] = rng.getrandbits(8)
    elif kind == "hash":
        struct.pack_into("<Q", log, off + rng.choice([24, 32]), rng.getrandbits(64))
        return kind                           # leave the hashes broken
    elif kind == "dup" and off + size <= len(log):
        log += log[off:off + size]             # the entry again, at the end
    elif kind == "signature":
        log[off:off + 4] = rng.choice([b"HvLF", b"\0\0\0\0", b"hbin"])
    return kind


def _mutate_base(rng, data: bytearray) -> str:
    field = rng.choice([4, 8, 4, 12, 28, 36, 40, 40, 144, 508])
    if field == 12:
        struct.pack_into("<Q", data, 12, TS + rng.choice([-1, 0, 1, 10**9]) if rng.random() < 0.7
                         else rng.getrandbits(64))
    elif field == 508:
        data[508:512] = rng.choice([b"INVL", bytes(4), os.urandom(4)])
        return "checksum"
    else:
        struct.pack_into("<I", data, field, _u32(rng, struct.unpack_from("<I", data, field)[0]))
    return f"base+{field}"


def _mutate_dirt(rng, log: bytearray) -> Optional[str]:
    if log[28:32] not in (b"\x01\x00\x00\x00", b"\x02\x00\x00\x00") or log[512:516] != b"DIRT":
        return None
    hb = struct.unpack_from("<I", log, 40)[0]
    n = min(hb // 4096, len(log) - 516)
    if n <= 0:
        return None
    how = rng.choice(["flip", "fill", "zero", "page"])
    if how == "flip":
        for _ in range(rng.randint(1, 6)):
            i = 516 + rng.randrange(n)
            log[i] ^= 1 << rng.randrange(8)
    elif how == "fill":
        log[516:516 + n] = b"\xff" * n
    elif how == "zero":
        log[516:516 + n] = bytes(n)
    else:
        first = (516 + hb // 4096 + 511) // 512 * 512
        if first + 16 < len(log):
            at = first + rng.randrange(0, len(log) - first - 16) // 512 * 512 + rng.choice([0, 4, 8])
            struct.pack_into("<I", log, at, _u32(rng, struct.unpack_from("<I", log, at)[0]))
    return "dirt-" + how


def _mutate_file(rng, files: Dict[str, bytearray]) -> str:
    logs = [k for k in files if k]
    how = rng.choice(["truncate", "extend", "swap", "empty", "delete", "primary-truncate"])
    if how == "primary-truncate":
        p = files[""]
        del p[rng.randrange(4096, max(4097, len(p))):]
        return how
    if not logs:
        return "none"
    k = rng.choice(logs)
    if how == "truncate":
        del files[k][rng.randrange(0, len(files[k]) + 1):]
    elif how == "extend":
        files[k] += rng.choice([bytes(rng.randrange(1, 9000)), os.urandom(rng.randrange(1, 2000))])
    elif how == "swap" and len(logs) > 1:
        a, b = rng.sample(logs, 2)
        files[a], files[b] = files[b], files[a]
    elif how == "empty":
        files[k] = bytearray()
    elif how == "delete":
        del files[k]
    return how


def mutate(seeds: Dict[str, Dict[str, bytes]], case: int, seed: int):
    """The case `case` of run `seed`: (seed name, {suffix: bytes}, [mutations])."""
    from regfast.io.logwriter import entry_offsets, reseal_log

    rng = random.Random(seed * 1_000_003 + case)
    name = rng.choice(sorted(seeds))
    files = {k: bytearray(v) for k, v in seeds[name].items()}
    done = []
    keep_broken = False
    for _ in range(rng.randint(1, 4)):
        logs = [k for k in files if k and len(files[k]) >= 512]
        r = rng.random()
        what = None
        if r < 0.5 and logs:
            what = _mutate_entry(rng, files[rng.choice(logs)]) or _mutate_dirt(rng, files[rng.choice(logs)])
        elif r < 0.65 and logs:
            what = _mutate_base(rng, files[rng.choice(logs)])
        elif r < 0.8:
            what = _mutate_base(rng, files[""])
        elif r < 0.88 and logs:
            what = _mutate_dirt(rng, files[rng.choice(logs)])
        else:
            what = _mutate_file(rng, files)
        if what in ("hash", "checksum"):
            keep_broken = True
        done.append(what or "noop")
    if not keep_broken and rng.random() < 0.85:
        # get past the integrity checks: entries found by walking the sizes
        # (as mutated) and those at their seed offsets (a mutated size hides
        # the next entry from the walk)
        for k, data in files.items():
            if k and len(data) >= 512 and data[:4] == b"regf":
                offs = set(entry_offsets(bytes(data))) | set(entry_offsets(bytes(seeds[name].get(k, b""))))
                reseal_log(data, sorted(o for o in offs if o + 40 <= len(data)))
        if rng.random() < 0.5 and len(files[""]) >= 512:
            reseal_log(files[""], [])
    return name, {k: bytes(v) for k, v in files.items()}, done


# --------------------------------------------------------------------------
# Running one case (in the worker)
# --------------------------------------------------------------------------

def write_case(directory: Path, files: Dict[str, bytes]) -> Path:
    for p in directory.glob("SYSTEM*"):
        p.unlink()
    primary = directory / "SYSTEM"
    for suffix, data in files.items():
        (directory / ("SYSTEM" + suffix)).write_bytes(data)
    return primary


def run_case(primary: Path, out: Path) -> str:
    """The operations a user runs on a hive with logs; returns a short
    outcome. OSError (every RegistryError) is a clean refusal; anything
    else propagates."""
    import regfast
    from regfast.cli import main as cli_main

    outcomes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for errors in ("strict", "tolerant"):
            try:
                with regfast.open_hive(primary, errors=errors) as hive:
                    rep = regfast.recovery_of(hive)
                    rep.summary()
                    rep.note()
                    hive.info()
                    stats = hive.scan(errors="skip").stats() if errors == "tolerant" else hive.root.info()
                    del stats
                    outcomes.append(f"{errors}:{'applied' if rep.applied else 'as-stored'}")
            except OSError as e:
                outcomes.append(f"{errors}:{type(e).__name__}")
        if out.exists():
            out.unlink()
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            code = cli_main(["recover", str(primary), "-o", str(out), "--force"])
        outcomes.append(f"recover:{code}")
        if out.exists():
            size = out.stat().st_size
            limit = sum(p.stat().st_size for p in primary.parent.glob("SYSTEM*") if p != out) + 4096
            if size > limit:
                raise AssertionError(f"recover wrote {size} bytes from {limit} bytes of input")
            try:
                regfast.open_hive(out, errors="tolerant", logs=None).close()
            except OSError:
                pass
    return " ".join(outcomes)


def _limit_memory(mem_mb: int) -> None:
    import resource
    vm = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                vm = int(line.split()[1]) * 1024
    limit = vm + mem_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


def worker(args) -> int:
    import regfast  # noqa: F401  (imported before the limit: its size is the baseline)
    import regfast.cli  # noqa: F401
    seeds = build_seeds()
    _limit_memory(args.mem_mb)
    work = Path(args.workdir)
    out = work / "recovered.hiv"
    for line in sys.stdin:
        case = int(line)
        try:
            _, files, _ = mutate(seeds, case, args.seed)
            outcome = run_case(write_case(work, files), out)
            msg = {"case": case, "ok": True, "outcome": outcome}
        except BaseException as e:  # noqa: BLE001 - a finding, reported to the parent
            msg = {"case": case, "ok": False, "error": f"{type(e).__name__}: {e}",
                   "traceback": traceback.format_exc(limit=12)}
        sys.stdout.write(json.dumps(msg) + "\n")
        sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------
# The supervisor
# --------------------------------------------------------------------------

def _worker_env() -> dict:
    """The worker's environment: when this process runs with ASan preloaded
    (tools/asan_pytest.sh, whose sitecustomize drops LD_PRELOAD from the
    environment) the worker imports the same instrumented extension and
    needs the runtime too."""
    env = dict(os.environ)
    try:
        with open("/proc/self/maps") as f:
            asan = [line.split()[-1] for line in f if "libasan" in line and line.split()[-1].startswith("/")]
    except OSError:
        asan = []
    if asan:
        env["LD_PRELOAD"] = asan[0]
    return env


class Worker:
    def __init__(self, args, workdir: Path):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", "--seed", str(args.seed), "--mem-mb", str(args.mem_mb),
             "--workdir", str(workdir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=_worker_env())

    def run(self, case: int, timeout: float) -> dict:
        self.proc.stdin.write(f"{case}\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.kill()
            return {"case": case, "ok": False, "error": f"hang: no answer in {timeout:.0f} s"}
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            return {"case": case, "ok": False, "error": f"worker died (exit status {code})"}
        return json.loads(line)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def supervise(args) -> int:
    crashes = Path(args.crashes)
    seeds = build_seeds()
    failures = []
    outcomes: Dict[str, int] = {}
    t0 = time.monotonic()
    n = 0
    with tempfile.TemporaryDirectory(prefix="regfast-fuzz-logs-") as tmp:
        w = Worker(args, Path(tmp))
        try:
            while True:
                if args.cases is not None and n >= args.cases:
                    break
                if args.cases is None and time.monotonic() - t0 >= args.seconds:
                    break
                res = w.run(n, args.timeout)
                if res["ok"]:
                    for o in res["outcome"].split():
                        outcomes[o] = outcomes.get(o, 0) + 1
                else:
                    name, files, done = mutate(seeds, n, args.seed)
                    where = crashes / f"seed{args.seed}-case{n}"
                    where.mkdir(parents=True, exist_ok=True)
                    write_case(where, files)
                    (where / "finding.txt").write_text(
                        f"seed set {name}, mutations {done}\n{res['error']}\n{res.get('traceback', '')}")
                    failures.append((n, name, done, res["error"]))
                    print(f"FAIL case {n} ({name}, {done}): {res['error']}\n{res.get('traceback', '')}",
                          file=sys.stderr)
                    if w.proc.poll() is not None:
                        w = Worker(args, Path(tmp))
                n += 1
        finally:
            w.close()
    elapsed = time.monotonic() - t0
    print(f"fuzz_logs: {n} cases in {elapsed:.1f} s ({n / max(elapsed, 1e-9):.1f} exec/s), seed {args.seed}, "
          f"{len(seeds)} seed sets, {len(failures)} failures")
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    if failures:
        print(f"failing cases saved under {crashes}", file=sys.stderr)
    return 1 if failures else 0


def replay_case(directory: Path) -> int:
    """Runs one saved case in this process (for a debugger)."""
    with tempfile.TemporaryDirectory() as tmp:
        print(run_case(directory / "SYSTEM", Path(tmp) / "recovered.hiv"))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=30.0, help="time box (default 30 s)")
    p.add_argument("--cases", type=int, help="run exactly this many cases instead of a time box")
    p.add_argument("--seed", type=int, default=None, help="run seed (default: random, printed)")
    p.add_argument("--mem-mb", type=int, default=384, help="address space a case may add (default 384 MB)")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds a case may take (default 20)")
    p.add_argument("--crashes", default=os.path.join(tempfile.gettempdir(), "regfast-fuzz-logs-crashes"))
    p.add_argument("--replay", type=Path, help="run one saved case directory")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.replay:
        return replay_case(args.replay)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    if args.worker:
        return worker(args)
    return supervise(args)


if __name__ == "__main__":
    sys.exit(main())
