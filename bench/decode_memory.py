"""What decoding a whole hive holds, and what it cost on the way: scan() and
every key path, value name, last-write time and decoded value as Python
objects (what bench_walk.py's regfast-scan-decoded row times).

    python bench/decode_memory.py [--hive software-100MB] [HIVE_FILE ...]

Each hive is read in a fresh process under tracemalloc (numpy's columns and
every Python object are traced; the file's mapping is not: it is the page
cache's, shared, and dropped with the hive). Printed per hive:

* ``held``: traced memory right after the decode, results and columns alive;
* ``peak``: the most traced at any point of it: ``peak / held`` is what the
  decode needed beyond what it returns (1.00: nothing);
* ``objects``: the returned lists and their items by sys.getsizeof (list
  headers and slots, str, int, bytes; REG_MULTI_SZ lists and their strings),
  and ``columns``: the ScanTable's numpy arrays. ``held - objects - columns``
  is what else the table keeps (small);
* ``gc``: collections the cyclic collector ran during the decode, by
  generation (gc.callbacks). The ScanTable's results are untracked: none of
  them walks the results;
* the resident set, in a second fresh process without tracemalloc: how far
  it grew by its peak (VmHWM) and by the end, results alive; equal figures
  mean nothing transient. Of the growth held, anonymous memory (objects and
  columns) and file pages (the hive's mapping, in the page cache).

Timing is left to bench_walk.py (tracemalloc slows allocation several-fold).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# what a ScanTable stores (24 bytes a key row, 28 a value row; see ScanTable)
STORED_COLUMNS = ("key_token", "key_parent", "key_last_write", "key_name_len", "key_status",
                  "value_key", "value_token", "value_name_len", "value_type", "value_offset",
                  "value_length", "value_status")


def _status() -> dict[str, int]:
    """VmHWM (peak RSS), VmRSS, RssAnon, RssFile of this process, in bytes (Linux)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0]) * 1024
    return out


def child_rss(path: str) -> dict:
    """The same decode without tracemalloc (its traces would be in the RSS):
    the resident set before, at its peak and after, results alive. RssFile
    is mostly the hive's mapping, the page cache's pages."""
    import regfast

    h = regfast.open_hive(path)
    before = _status()
    t = h.scan()
    paths = t.key_paths()
    last_write = t.key_last_write.tolist()
    names = t.value_names()
    data = t.decoded_values()
    after = _status()
    del paths, last_write, names, data, t
    return {"before": before, "after": after}


def child(path: str) -> dict:
    import gc
    import tracemalloc

    import regfast

    collections: list[int] = []

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    h = regfast.open_hive(path)
    gc.collect()
    tracemalloc.start()
    gc.callbacks.append(on_gc)
    t = h.scan()
    paths = t.key_paths()
    last_write = t.key_last_write.tolist()
    names = t.value_names()
    data = t.decoded_values()
    gc.callbacks.remove(on_gc)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    def size(obj: object) -> int:
        n = sys.getsizeof(obj)
        if isinstance(obj, list):
            n += sum(size(x) for x in obj)
        return n

    # ints and short strs may be shared (small-int cache, interned ""):
    # counted once per slot, an upper bound of what the lists own
    objects = sum(size(x) for x in (paths, last_write, names, data))
    # the stored columns (one block) and the arena; not the columns the
    # table would make from them if asked (key_depth, *_deleted...)
    blocks = {id(a.base if a.base is not None else a): (a.base if a.base is not None else a)
              for a in (getattr(t, c) for c in STORED_COLUMNS)}
    columns = sum(b.nbytes for b in blocks.values()) + (t.arena.nbytes if t.arena is not None else 0)
    return {"hive": path, "keys": len(paths), "values": len(data), "held": held, "peak": peak,
            "objects": objects, "columns": columns,
            "gc": {str(g): collections.count(g) for g in (0, 1, 2)},
            "tracked": sum(gc.is_tracked(x) for x in (paths, names, data))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hive", action="append", default=[], help="a bench hive by name (bench/hives.py)")
    ap.add_argument("files", nargs="*", help="hive files")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-rss", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child)))
        return
    if a.child_rss:
        print(json.dumps(child_rss(a.child_rss)))
        return
    files = list(a.files)
    if a.hive or not files:
        import hives
        files += [str(hives.ensure(n, log=lambda *x: None)[0]) for n in (a.hive or ["software-100MB"])]
    print("| hive | keys | values | held MB | peak MB | peak / held | objects MB | columns MB | "
          "collections (gen 0/1/2) | RSS growth to peak MB | RSS growth held MB | of it anon / file MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|")
    mb = 1 << 20

    def run(flag: str, f: str) -> dict:
        out = subprocess.run([sys.executable, __file__, flag, f], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    for f in files:
        r = run("--child", f)
        m = run("--child-rss", f)
        b, e = m["before"], m["after"]
        g = r["gc"]
        print(f"| {Path(f).name} | {r['keys']:,} | {r['values']:,} | {r['held'] / mb:.1f} | "
              f"{r['peak'] / mb:.1f} | {r['peak'] / r['held']:.3f} | {r['objects'] / mb:.1f} | "
              f"{r['columns'] / mb:.1f} | {g['0']}/{g['1']}/{g['2']} | "
              f"{(e['VmHWM'] - b['VmRSS']) / mb:.1f} | {(e['VmRSS'] - b['VmRSS']) / mb:.1f} | "
              f"{(e['RssAnon'] - b['RssAnon']) / mb:.1f} / {(e['RssFile'] - b['RssFile']) / mb:.1f} |")


if __name__ == "__main__":
    main()
