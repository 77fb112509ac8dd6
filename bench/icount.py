"""Instructions per full walk, counted by callgrind: a load-independent
complement to the timings on a shared, noisy machine.

    python bench/icount.py [--hive software-1MB] [--repeat 2] [IMPL ...]

Each implementation's walk (the same functions bench_walk.py times) runs
``--repeat`` times under ``valgrind --tool=callgrind``; a run of the same
interpreter that only imports everything is subtracted. hivex runs under
/usr/bin/python3 (its own baseline), the C rows as plain processes
(``floor``: raw_walk.c, the structure read with no validation; ``C-*``:
walk_floor.c, regfast's C API). Counts
say nothing of cache misses (the scan is memory-bound on big hives): read
them next to the timings, not instead of them.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

DEFAULT = ["regfast-scan", "regfast-scan-decoded", "regfast-keys", "regfast-read_values",
           "floor", "C-walk", "C-scan", "hivex", "regipy-rs", "regipy-rs-api", "pyregf", "python-registry"]


def child(impl: str, hive: str, repeat: int) -> None:
    """Runs inside valgrind: import everything, then `repeat` walks."""
    if impl == "hivex-none" or impl == "hivex":
        sys.path.insert(0, str(HERE / "peers"))
        import hivex_worker
        for _ in range(repeat if impl == "hivex" else 0):
            hivex_worker.walk(hive)
        return
    from peers import impls
    import numpy  # noqa: F401  (every regfast row has it loaded)
    import regfast  # noqa: F401
    for mod in ("regipy_rs", "regipy.registry_rs", "pyregf", "Registry.Registry"):
        try:
            __import__(mod)
        except ImportError:
            pass
    if impl == "none":
        return
    for _ in range(repeat):
        impls.WALK[impl](hive)


def callgrind(cmd: list[str]) -> int:
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={d}/cg.out"] + cmd,
                           capture_output=True, text=True)
    m = re.search(r"Collected : (\d+)", r.stderr)
    if r.returncode or not m:
        raise RuntimeError(f"{' '.join(cmd)} failed under callgrind:\n{r.stderr[-1500:]}")
    return int(m.group(1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("impls", nargs="*", default=DEFAULT)
    ap.add_argument("--hive", default="software-1MB")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--child", nargs=3, metavar=("IMPL", "HIVE", "REPEAT"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        child(a.child[0], a.child[1], int(a.child[2]))
        return 0
    if not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    import hives
    path, meta = hives.ensure(a.hive)
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    system_python = os.environ.get("REGFAST_BENCH_HIVEX_PYTHON", "/usr/bin/python3")
    base = {}
    rows = []
    for impl in a.impls:
        try:
            if impl == "floor":
                exe = hives.cache_dir() / "walk_floor-build" / "bench" / "raw_walk"
                if not exe.exists():
                    raise RuntimeError("raw_walk is not built yet: run `pytest bench/ -k floor` once")
                # raw_walk walks once untimed before its rounds: "walk 0" is that walk + start-up
                n = callgrind([str(exe), "walk", str(path), str(a.repeat)]) - \
                    callgrind([str(exe), "walk", str(path), "0"])
            elif impl.startswith("C-"):
                exe = hives.cache_dir() / "walk_floor-build" / "bench" / "walk_floor"
                if not exe.exists():
                    raise RuntimeError("walk_floor is not built yet: run `pytest bench/ -k C-walk` once")
                mode = impl[2:]
                total = callgrind([str(exe), mode, str(path), str(a.repeat)])
                if "C" not in base:
                    base["C"] = callgrind([str(exe), "walk", str(path), "0"])
                n = total - base["C"]
            elif impl == "hivex":
                if "hivex" not in base:
                    base["hivex"] = callgrind([system_python, *me[1:], "hivex-none", str(path), "0"])
                n = callgrind([system_python, *me[1:], "hivex", str(path), str(a.repeat)]) - base["hivex"]
            else:
                if "py" not in base:
                    base["py"] = callgrind(me + ["none", str(path), "0"])
                n = callgrind(me + [impl, str(path), str(a.repeat)]) - base["py"]
        except Exception as e:
            print(f"{impl}: skipped: {e}", file=sys.stderr)
            continue
        per_walk = n / a.repeat
        rows.append((impl, per_walk))
        print(f"{impl:24s} {per_walk / 1e6:9.1f} M instructions / walk", file=sys.stderr)
    records = meta["keys"] + meta["values"]
    print(f"\n#### Instructions per full walk of `{a.hive}` ({meta['size'] / 1e6:.1f} MB, "
          f"{meta['keys']:,} keys, {meta['values']:,} values; callgrind, {a.repeat} walks, "
          "start-up subtracted)\n")
    print("| implementation | M instructions / walk | per key or value | ÷ regfast-keys |")
    print("|---|---:|---:|---:|")
    ref = dict(rows).get("regfast-keys")
    for impl, n in sorted(rows, key=lambda r: r[1]):
        print(f"| `{impl}` | {n / 1e6:.1f} | {n / records:,.0f} | "
              f"{(n / ref) if ref else float('nan'):.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
