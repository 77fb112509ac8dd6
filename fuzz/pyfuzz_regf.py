#!/usr/bin/env python3
"""Field-aware fuzzing of regfast through its Python API.

    python fuzz/pyfuzz_regf.py SECONDS [--seed N] [--work DIR] [--corpus DIR]
    python fuzz/pyfuzz_regf.py --replay FINDING.json

Seeds are the writer-made hives of fuzz/make_corpus.py (plus two with
deleted keys in free cells) and the real hives of the corpus folder
(/work/shared/corpus: --corpus, or REGFAST_CORPUS). Each input is a seed
mutated by fuzz/hive_mutator.py (nk/vk/lf/lh/li/ri/db/sk fields, cell sizes,
hbin headers, the base block), then read through every call of the Python
API (fuzz/exercise.py: open strict/tolerant/lenient, walk, keys and values,
scan + decoded_values, read_values, get_many, deleted(), cells, export to
json/reg/csv), in one of these ways:

    file             the damaged file, opened strictly (mmap)
    tolerant         the damaged file, errors="tolerant"
    lenient          the damaged file, lenient=True
    buffer           the damaged bytes through Hive.from_buffer (tolerant)
    after-open       the healthy seed opened from a bytearray, then damaged
                     in place: the file changing under an open reader
    file-after-open  the same through the mapping, truncations included

Run it under the AddressSanitizer build (tools/asan_pytest.sh runs
tests/python/binding/test_field_fuzz.py, which calls run() here): a crash, an ASan
report, a hang or an exception other than OSError/ValueError is a finding.

A supervisor runs the inputs in a worker process and restarts it after a
crash; the input being read is always in WORK/current.json, which a finding
keeps (WORK/findings/) so that --replay reproduces it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from hive_mutator import Mutator, apply, ops_from_json, ops_to_json  # noqa: E402

MODES = ("file", "tolerant", "lenient", "buffer", "after-open", "file-after-open")
NOT_HIVES = {"dfwinreg__NTUSER.DAT.LOG", "dfwinreg__USER.DAT_win9x_creg", "ez__NotAHive"}


# --- seeds ----------------------------------------------------------------------------

def _deleted_seed(w, subtree: bool):
    """A hive whose key "P\\Gone" (and its values) was deleted: cells freed the
    way Windows frees them, so deleted() and the carving paths have work."""
    tree = {"P": {"Gone": {"text": "secret payload", "num": 0x1234, "blob": b"\xAA" * 40,
                           "Sub": {"x": "y"} if subtree else {}}, "Stay": {"v": 1}}}
    data, lay = w.build_hive(tree, timestamp=0x01D0000000000000)
    data = bytearray(data)

    def free(off):
        size = struct.unpack_from("<i", data, off)[0]
        struct.pack_into("<i", data, off, abs(size))

    free(lay.nk["P\\Gone"])
    free(lay.value_list["P\\Gone"])
    for name in ("text", "num", "blob"):
        free(lay.vk[("P\\Gone", name)])
        if ("P\\Gone", name) in lay.data:
            free(lay.data[("P\\Gone", name)])
    return bytes(data)


def writer_seeds() -> dict[str, bytes]:
    import make_corpus
    w = make_corpus.load_writer()
    out = {}
    for name, tree, kwargs in make_corpus.seeds(w):
        out[f"writer:{name}"] = w.build_hive(tree, timestamp=0x01D0000000000000, **kwargs)[0]
    out["writer:deleted"] = _deleted_seed(w, False)
    out["writer:deleted-subtree"] = _deleted_seed(w, True)
    return out


def corpus_dir(given: str | None) -> Path | None:
    for cand in (given, os.environ.get("REGFAST_CORPUS"), HERE.parents[1] / "shared" / "corpus"):
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


def all_seeds(corpus: Path | None) -> dict[str, str]:
    """name -> path of every seed (writer seeds are written under a temp dir)."""
    d = Path(tempfile.mkdtemp(prefix="pyfuzz-seeds-"))
    out = {}
    for name, data in writer_seeds().items():
        p = d / (name.split(":", 1)[1] + ".hiv")
        p.write_bytes(data)
        out[name] = str(p)
    if corpus:
        for f in sorted(corpus.iterdir()):
            if f.is_file() and f.name not in NOT_HIVES and not f.name.endswith(".md"):
                out[f"corpus:{f.name}"] = str(f)
    return out


# --- one input ------------------------------------------------------------------------

def exact_buffer(data) -> "memoryview":
    """A writable copy of `data` in an allocation of exactly its size (numpy
    allocates with malloc, nothing more): ASan then catches a read one byte
    past the end, which a bytearray's trailing NUL byte would absorb."""
    import numpy as np
    return memoryview(np.frombuffer(bytes(data), dtype=np.uint8).copy())


def run_case(seed: bytes, mode: str, ops: list, tmp: Path) -> int:
    """Reads one mutated input every way `mode` says; returns a count of
    things read. Raises only for findings (an unexpected exception)."""
    import regfast
    from exercise import EXPECTED, exercise

    small = len(seed) <= 64 * 1024
    kw = dict(max_keys=200 if small else 40, heavy=small)
    path = tmp / "input.hiv"
    if mode in ("file", "tolerant", "lenient", "buffer"):
        data = apply(bytearray(seed), ops)
        if mode == "buffer":
            try:
                hive = regfast.Hive.from_buffer(exact_buffer(data), errors="tolerant")
            except EXPECTED:
                return 0
        else:
            path.write_bytes(data)
            try:
                hive = regfast.open_hive(path, logs=None, errors="tolerant" if mode == "tolerant" else "strict",
                                         lenient=mode == "lenient")
            except EXPECTED:
                return 0
        with hive:
            return exercise(hive, **kw)
    if mode == "after-open":
        buf = exact_buffer(seed)
        try:
            hive = regfast.Hive.from_buffer(buf, errors="tolerant")
        except EXPECTED:
            return 0
        table = hive.scan(errors="skip")
        apply(buf, ops, allow_cut=False)         # a buffer held open cannot shrink
        from exercise import exercise_table
        n = exercise_table(table)
        with hive:
            return n + exercise(hive, **kw)
    if mode == "file-after-open":
        path.write_bytes(seed)
        try:
            hive = regfast.open_hive(path, logs=None, errors="tolerant")
        except EXPECTED:
            return 0
        table = hive.scan(errors="skip")
        with open(path, "r+b") as f:
            for op in ops:
                if op[0] == "put":
                    f.seek(op[1])
                    f.write(op[2])
                else:
                    f.truncate(op[1])
        from exercise import exercise_table
        n = exercise_table(table)
        with hive:
            return n + exercise(hive, **kw)
    raise ValueError(mode)


# --- the worker -----------------------------------------------------------------------

def worker(args) -> int:
    import warnings
    from regfast import DirtyHiveWarning
    warnings.simplefilter("ignore", DirtyHiveWarning)    # damaged base blocks say so on every open
    seeds = json.loads(Path(args.seeds).read_text())
    names = sorted(seeds)
    data = {n: Path(seeds[n]).read_bytes() for n in names}
    # small seeds are cheap to read whole: favour them, but reach every one
    weights = [4.0 if len(data[n]) <= 64 * 1024 else 1.0 for n in names]
    rng = random.Random(args.seed)
    mutators = {}
    work = Path(args.work)
    tmp = Path(tempfile.mkdtemp(prefix="pyfuzz-", dir=work))
    deadline = time.monotonic() + args.seconds
    execs = found = 0
    while time.monotonic() < deadline:
        name = rng.choices(names, weights)[0]
        m = mutators.get(name) or mutators.setdefault(name, Mutator(data[name], random.Random(rng.random())))
        mode = rng.choice(MODES)
        ops = m.mutation(allow_cut=mode != "after-open")
        case = {"seed": name, "seed_path": seeds[name], "mode": mode, "ops": ops_to_json(ops)}
        (work / "current.json").write_text(json.dumps(case))
        try:
            run_case(data[name], mode, ops, tmp)
        except Exception:
            found += 1
            case["traceback"] = traceback.format_exc()
            digest = hashlib.sha1(json.dumps(case["ops"]).encode()).hexdigest()[:12]
            (work / "findings").mkdir(exist_ok=True)
            (work / "findings" / f"exception-{digest}.json").write_text(json.dumps(case, indent=1))
            print("FINDING exception", digest, case["traceback"].strip().splitlines()[-1], flush=True)
        execs += 1
        print("HB", execs, flush=True)
    print("DONE", execs, found, flush=True)
    return 0


# --- the supervisor ---------------------------------------------------------------------

def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    preload = os.environ.get("REGFAST_ASAN_PRELOAD")     # asan_pytest.sh keeps it here
    if preload:
        env["LD_PRELOAD"] = preload
    return env


def run(seconds: float, *, seed: int = 1, work: Path, corpus: str | None = None, hang: float = 60,
        log=print) -> dict:
    """Fuzzes for `seconds` in worker processes; returns {"execs", "restarts",
    "findings": [paths], "seeds"}. Findings land in work/findings/."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "findings").mkdir(exist_ok=True)
    seeds = all_seeds(corpus_dir(corpus))
    (work / "seeds.json").write_text(json.dumps(seeds))
    deadline = time.monotonic() + seconds
    execs = restarts = 0
    findings: list[str] = []
    rng = random.Random(seed)
    while time.monotonic() < deadline - 1:
        left = deadline - time.monotonic()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--seeds", str(work / "seeds.json"),
               "--work", str(work), "--seed", str(rng.getrandbits(32)), str(left)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_child_env())
        last = time.monotonic()
        buf = b""
        err_chunks: list[bytes] = []
        hung = False
        open_streams = [proc.stdout, proc.stderr]
        while open_streams:
            ready, _, _ = select.select(open_streams, [], [], 1.0)
            for stream in ready:
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:                       # EOF: the worker is gone or going
                    open_streams.remove(stream)
                    continue
                if stream is proc.stderr:
                    if chunk:
                        err_chunks.append(chunk)
                        del err_chunks[:-64]
                    continue
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.startswith(b"HB "):
                        execs += 1
                        last = time.monotonic()
                    elif line.startswith(b"FINDING"):
                        log(line.decode(errors="replace"))
                        findings.append(line.decode(errors="replace"))
            if time.monotonic() - last > hang:
                hung = True
                proc.kill()
                proc.wait()
                break
        status = proc.wait()
        stderr = b"".join(err_chunks).decode(errors="replace")
        if status != 0 or hung:
            restarts += 1
            current = work / "current.json"
            case = json.loads(current.read_text()) if current.exists() else {}
            how = "hang" if hung else (f"signal-{signal.Signals(-status).name}" if status < 0 else f"exit-{status}")
            case["stderr"] = stderr[-8000:]
            digest = hashlib.sha1(json.dumps(case.get("ops", [])).encode()).hexdigest()[:12]
            out = work / "findings" / f"{how}-{digest}.json"
            out.write_text(json.dumps(case, indent=1))
            log(f"FINDING {how} {out}")
            findings.append(str(out))
    return {"execs": execs, "restarts": restarts, "findings": findings, "seeds": len(seeds)}


def replay(path: str) -> int:
    case = json.loads(Path(path).read_text())
    seed = Path(case["seed_path"]).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        n = run_case(seed, case["mode"], ops_from_json(case["ops"]), Path(tmp))
    print(f"replayed {case['seed']} ({case['mode']}): read {n} things, no finding")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seconds", nargs="?", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", default=None)
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--seeds", help=argparse.SUPPRESS)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--replay", metavar="FINDING.json")
    args = ap.parse_args(argv)
    if args.replay:
        return replay(args.replay)
    if args.worker:
        return worker(args)
    work = Path(args.work or tempfile.mkdtemp(prefix="pyfuzz-regf-"))
    stats = run(args.seconds, seed=args.seed, work=work, corpus=args.corpus)
    print(f"pyfuzz_regf: {stats['execs']} inputs from {stats['seeds']} seeds in {args.seconds:.0f} s, "
          f"{stats['restarts']} worker restarts, {len(stats['findings'])} findings (work: {work})")
    return 1 if stats["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
