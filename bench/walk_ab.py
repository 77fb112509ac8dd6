"""Side by side, in one run: the Key/Value walk (impls.walk_regfast_keys) of
this environment's regfast and of other regfast builds, next to regipy-rs
(walk_regipy_rs) and hivex (the out-of-process worker), on the hives given.

    python bench/walk_ab.py [--rounds N] [--tree NAME=DIR ...] HIVE...

Each ``--tree`` is a directory holding another ``regfast`` package (say main's
build: ``pip install --target /tmp/main-build .`` from a main checkout); it
runs in a worker process of its own with that directory first on sys.path.
Rounds are interleaved (one walk of every row per round) and the best of
rounds is kept, so a loaded machine disturbs every row alike. Prints ms and
the ratios peer / regfast; the ns/row column is per key + value.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import impls  # noqa: E402
from peers.hivex_client import HivexUnavailable, HivexWorker  # noqa: E402

WORKER = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
sys.path.insert(1, sys.argv[1])
from peers import impls
for line in sys.stdin:
    t = time.perf_counter()
    impls.walk_regfast_keys(json.loads(line))
    print(json.dumps(time.perf_counter() - t), flush=True)
"""


def timed(fn, *args):
    t = time.perf_counter()
    got = fn(*args)
    return time.perf_counter() - t, got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hives", nargs="+")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--tree", action="append", default=[], help="NAME=DIR holding another regfast package")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    trees = [t.split("=", 1) for t in a.tree]
    workers = []
    for _, d in trees:
        env = dict(os.environ, PYTHONPATH=os.path.abspath(d))
        workers.append(subprocess.Popen([sys.executable, "-c", WORKER, str(HERE)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env, cwd="/"))
    try:
        hx: HivexWorker | None = HivexWorker()
    except HivexUnavailable as e:
        print(f"hivex unavailable: {e}", file=sys.stderr)
        hx = None
    rows = ["regfast"] + [name for name, _ in trees] + ["regipy-rs"] + (["hivex"] if hx else [])
    print(f"{'hive':34s} {'rows':>8s} " + " ".join(f"{r + ' ms':>12s}" for r in rows)
          + "  " + " ".join(f"{r + '/rf':>12s}" for r in rows[1:]) + "  ns/row")
    for p in a.hives:
        best = dict.fromkeys(rows, float("inf"))
        got = None
        for _ in range(a.rounds):
            s, got = timed(impls.walk_regfast_keys, p)
            best["regfast"] = min(best["regfast"], s)
            for (name, _), w in zip(trees, workers):
                w.stdin.write(json.dumps(p) + "\n")
                w.stdin.flush()
                best[name] = min(best[name], json.loads(w.stdout.readline()))
            best["regipy-rs"] = min(best["regipy-rs"], timed(impls.walk_regipy_rs, p)[0])
            if hx:
                best["hivex"] = min(best["hivex"], hx.call("walk", hive=os.path.abspath(p))["seconds"])
        n = got["keys"] + got["values"]
        print(f"{Path(p).name[:34]:34s} {n:8d} " + " ".join(f"{best[r] * 1e3:12.2f}" for r in rows)
              + "  " + " ".join(f"{best[r] / best['regfast']:11.2f}x" for r in rows[1:])
              + f"  {best['regfast'] * 1e9 / n:6.0f}", flush=True)
    for w in workers:
        w.stdin.close()
        w.wait()
    if hx:
        hx.close()


if __name__ == "__main__":
    main()
