"""Fleet scale: the real-hive corpus replicated to >= 1 GB, read by
regfast.scan_many with 1 and 2 worker processes, by regfast.dask.read_hives on
a distributed.LocalCluster of 2 workers, and written as a Parquet dataset
(regfast scan-many's path) — rows per second, side by side in one run.

The copies live in a temporary directory (``$REGFAST_FLEET_DIR`` or
``/tmp/regfast-fleet-bench``), never in the repository: the corpus files
(../shared/corpus, 29 files, ~10 MB: 26 hives, 3 files that are not, which
become error rows) are copied until the set passes ``--fleet-gb`` (1 GB).
Each copy is a file of its own, so each is mapped and paged in on its own.

    pytest bench/bench_fleet.py                          # in the bench tables (group fleet-1GB)
    python bench/bench_fleet.py [--gb 1] [--runs 3]      # the figures alone, rows interleaved

Rows: "1 worker" / "2 workers" (scan_many, every record batch brought back
to this process), "dask 2 workers" (read_hives on a 2-worker LocalCluster,
one partition per hive, partitions counted where they are: the Dask way),
"dask 2 workers (64 MB partitions)" (read_hives(partition_bytes=64 MB): small
hives share partitions), "parquet 2 workers" (write_parquet_dataset: each
worker writes its hives' files).
Targets (issue 14): 2 workers >= 1.8x one worker on 2 cores; Dask <= 1.2x the
plain pool. Read them as ratios: the machine is shared.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = Path(os.environ.get("REGFAST_CORPUS") or HERE.parents[1] / "shared" / "corpus")


def fleet_dir(gb: float) -> tuple[Path, list[str], int]:
    """The replicated corpus (made once, reused): (directory, paths, bytes)."""
    root = Path(os.environ.get("REGFAST_FLEET_DIR") or Path(tempfile.gettempdir()) / "regfast-fleet-bench")
    src = sorted(f for f in CORPUS.iterdir() if f.is_file() and not f.name.endswith(".md"))
    if not src:
        raise FileNotFoundError(2, f"the corpus is not at {CORPUS} (set REGFAST_CORPUS)", str(CORPUS))
    per_copy = sum(f.stat().st_size for f in src)
    copies = max(1, int(-(-gb * 1e9 // per_copy)))
    done = root / f".complete-{copies}"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        for i in range(copies):
            d = root / f"m{i:04d}"
            d.mkdir(parents=True)
            for f in src:
                shutil.copyfile(f, d / f.name)
        done.touch()
    paths = sorted(str(p) for p in root.glob("m*/*"))
    return root, paths, per_copy * copies


def run_pool(paths: list[str], workers: int) -> int:
    import regfast
    return sum(b.num_rows for b in regfast.scan_many(paths, workers=workers, progress=False))


def run_parquet(paths: list[str], workers: int, out: Path) -> int:
    from regfast.io.fleet import write_parquet_dataset
    res = write_parquet_dataset(paths, out, workers=workers, progress=False, overwrite=True)
    return sum(r.rows for r in res)


class DaskCluster:
    def __init__(self, workers: int = 2) -> None:
        import distributed
        self.cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                dashboard_address=None, silence_logs=logging.ERROR)
        self.client = distributed.Client(self.cluster)

    def run(self, paths: list[str], partition_bytes: int | None = None) -> int:
        import regfast.dask
        df = regfast.dask.read_hives(paths, partition_bytes=partition_bytes)
        return int(df.map_partitions(len).compute().sum())

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


ROWS = ["1 worker", "2 workers", "dask 2 workers", "dask 2 workers (64 MB partitions)", "parquet 2 workers"]


def measure_all(paths: list[str], runs: int, out: Path, rows: list[str] = ROWS) -> dict[str, list[tuple[float, int]]]:
    """Every row `runs` times, interleaved run by run (load changes hit all
    rows alike): row -> [(seconds, rows)]."""
    times: dict[str, list[tuple[float, int]]] = {r: [] for r in rows}
    dask = DaskCluster(2) if any(r.startswith("dask") for r in rows) else None
    fns = {
        "1 worker": lambda: run_pool(paths, 1),
        "2 workers": lambda: run_pool(paths, 2),
        "dask 2 workers": lambda: dask.run(paths),
        "dask 2 workers (64 MB partitions)": lambda: dask.run(paths, 64 << 20),
        "parquet 2 workers": lambda: run_parquet(paths, 2, out),
    }
    try:
        for r in rows:                      # warm-up: page cache, forkserver, cluster imports
            fns[r]()
        for _ in range(runs):
            for r in rows:
                t0 = time.perf_counter()
                n = fns[r]()
                times[r].append((time.perf_counter() - t0, n))
    finally:
        if dask is not None:
            dask.close()
    return times


def table(times: dict[str, list[tuple[float, int]]], nbytes: int) -> str:
    best = {r: min(s for s, _ in v) for r, v in times.items() if v}

    def vs(ref: str, r: str, inverse: bool) -> str:
        if ref not in best:
            return "-"
        return f"{(best[ref] / best[r]) if inverse else (best[r] / best[ref]):.2f}x"

    lines = ["| row | best s | median s | spread (max/min) | rows | Mrows/s | MB/s | speed vs 1 worker "
             "| time vs 2-worker pool |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r, v in times.items():
        secs = [s for s, _ in v]
        n = v[0][1]
        lines.append(f"| {r} | {min(secs):.2f} | {statistics.median(secs):.2f} | {max(secs) / min(secs):.2f} | "
                     f"{n:,} | {n / min(secs) / 1e6:.2f} | {nbytes / min(secs) / 1e6:.0f} | "
                     f"{vs('1 worker', r, True)} | {vs('2 workers', r, False)} |")
    return "\n".join(lines)


# --- under pytest-benchmark ------------------------------------------------------

try:
    import pytest
except ImportError:                # (the script needs no pytest)
    pytest = None

if pytest is not None:
    _RESULTS: dict = {}

    def _fleet(request):
        gb = float(request.config.getoption("--fleet-gb", default=1.0) or 1.0)
        if "times" not in _RESULTS:
            try:
                import distributed  # noqa: F401
                import pyarrow  # noqa: F401
            except ImportError as e:
                pytest.skip(f"the fleet benchmark needs the dask and arrow extras: {e}")
            _, paths, nbytes = fleet_dir(gb)
            out = Path(tempfile.mkdtemp(prefix="regfast-fleet-parquet-"))
            try:
                _RESULTS["times"] = measure_all(paths, 3, out)
            finally:
                shutil.rmtree(out, ignore_errors=True)
            _RESULTS["bytes"] = nbytes
            print("\n" + table(_RESULTS["times"], nbytes))
        return _RESULTS

    @pytest.mark.parametrize("row", ROWS)
    def bench_fleet(benchmark, request, row):
        from conftest import feed
        res = _fleet(request)
        benchmark.group = f"fleet-{float(request.config.getoption('--fleet-gb', default=1.0) or 1.0):g}GB"
        runs = res["times"][row]
        feed(benchmark, [s for s, _ in runs], external=False)
        best = min(s for s, _ in runs)
        one = min(s for s, _ in res["times"]["1 worker"])
        benchmark.extra_info.update(rows=runs[0][1], rows_per_s=round(runs[0][1] / best),
                                    mb_per_s=round(res["bytes"] / best / 1e6), vs_1_worker=round(one / best, 2))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gb", type=float, default=1.0, help="size of the replicated corpus (default 1)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per row, interleaved (default 3)")
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows to run")
    a = ap.parse_args(argv)
    root, paths, nbytes = fleet_dir(a.gb)
    print(f"{len(paths):,} files, {nbytes / 1e9:.2f} GB in {root}; load average {os.getloadavg()}",
          file=sys.stderr)
    out = Path(tempfile.mkdtemp(prefix="regfast-fleet-parquet-"))
    try:
        times = measure_all(paths, a.runs, out, [r.strip() for r in a.rows.split(",")])
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(table(times, nbytes))
    print(f"\nload average at the end {os.getloadavg()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
