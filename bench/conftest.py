"""Shared machinery of the regfast benchmarks (pytest-benchmark).

* Hives are generated once (bench/hives.py) and cached; before any timing,
  every hive is cross-checked: regfast's key/value counts (Key walk and
  scan()) must equal hivex's and the generator's, and every value of a
  0xFFFF00xx type must be exactly as long as its vk says (regfast asserted,
  hivex reported).
* Each scenario is one ``benchmark.group``; rows are implementations.
* Rounds adapt to a time budget per row (``--bench-budget``, default 6 s):
  one untimed warm-up run (which also checks the result), then as many rounds
  as fit, between 1 and 200. A row whose warm-up alone exceeds the budget is
  reported from that single run.
* Out-of-process rows (hivex under /usr/bin/python3, the C floor) time
  themselves; their seconds are fed to pytest-benchmark through a virtual
  clock, so they land in the same table and JSON as everything else.

Run (from the repository root)::

    pytest bench/ --benchmark-json=bench/.cache/results.json
    python bench/make_table.py bench/.cache/results.json --update bench/README.md
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import hives  # noqa: E402
from peers import impls  # noqa: E402
from peers.hivex_client import HivexUnavailable, HivexWorker  # noqa: E402

# stable machine_info, per-run facts in the JSON, and --bench-gate (ratios to a
# baseline row of the same run): see ratio_gate.py
pytest_plugins = ["ratio_gate"]

#: reasons printed loudly at the end of the run (unavailable peers, mismatches)
_LOUD: list[str] = []


def loud(msg: str) -> None:
    if msg not in _LOUD:
        _LOUD.append(msg)
        warnings.warn(msg)


# ---------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------

def pytest_addoption(parser):
    g = parser.getgroup("regfast bench")
    g.addoption("--bench-budget", type=float, default=float(os.environ.get("REGFAST_BENCH_BUDGET", 6)),
                help="seconds of timed rounds per row (default 6)")
    g.addoption("--bench-hives", default=os.environ.get("REGFAST_BENCH_HIVES", ""),
                help="comma-separated hive names to restrict the walk benchmarks to "
                     f"(of {', '.join(hives.SOFTWARE_SPECS)})")
    g.addoption("--fleet-gb", type=float, default=float(os.environ.get("REGFAST_FLEET_GB", 1)),
                help="size of the replicated corpus of bench_fleet.py, in GB (default 1)")


def selected_hives(config) -> list[str]:
    want = [h.strip() for h in (config.getoption("--bench-hives") or "").split(",") if h.strip()]
    return [h for h in hives.SOFTWARE_SPECS if not want or h in want]


# ---------------------------------------------------------------------------
# machine info (lands in --benchmark-json; make_table.py prints it)
# ---------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _dpkg_version(pkg: str) -> str | None:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def pytest_benchmark_update_machine_info(config, machine_info):
    # What identifies the machine and the software: equal between two runs on
    # one machine, so --benchmark-compare compares like with like. What changes
    # per run (date, load, commit, budget) is in the JSON's "regfast_run".
    machine_info["regfast_bench"] = {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": sys.version.split()[0],
        "regfast": _version("regfast"),
        "numpy": _version("numpy"),
        "peers": {
            "hivex (python3-hivex, Debian)": _dpkg_version("python3-hivex"),
            "regipy": _version("regipy"),
            "regipy-rs": _version("regipy-rs"),
            "libregf-python (pyregf)": _version("libregf-python"),
            "python-registry": _version("python-registry"),
        },
        "gen_version": hives.GEN_VERSION,
    }


def pytest_benchmark_update_json(config, benchmarks, output_json):
    # (ratio_gate adds the date, load average and commit)
    output_json.setdefault("regfast_run", {})["budget_s"] = config.getoption("--bench-budget")


def pytest_terminal_summary(terminalreporter):
    if _LOUD:
        terminalreporter.section("regfast bench: unavailable peers and disagreements", sep="!")
        for m in _LOUD:
            terminalreporter.write_line("!! " + m)


# ---------------------------------------------------------------------------
# hives, checked once per session
# ---------------------------------------------------------------------------

class BenchHive:
    def __init__(self, name: str, path: Path, meta: dict):
        self.name, self.path, self.meta = name, path, meta
        self.size = path.stat().st_size
        self.keys = meta["keys"]
        self.values = meta["values"]

    @property
    def label(self) -> str:
        return self.name.split("-", 1)[-1]          # "100MB"


@pytest.fixture(scope="session")
def hivex_worker():
    try:
        w = HivexWorker()
    except HivexUnavailable as e:
        loud(f"PEER UNAVAILABLE: hivex: {e}")
        yield None
        return
    yield w
    w.close()


_checked: dict[str, BenchHive] = {}


@pytest.fixture(scope="session")
def bench_hive(hivex_worker):
    """bench_hive(name) -> BenchHive, generated if needed and checked once."""

    def get(name: str) -> BenchHive:
        if name not in _checked:
            path, meta = hives.ensure(name, log=lambda m: print(m, file=sys.stderr))
            bh = BenchHive(name, path, meta)
            check_hive(bh, hivex_worker)
            _checked[name] = bh
        return _checked[name]

    return get


def check_hive(bh: BenchHive, worker) -> None:
    """Correctness before speed (see the module docstring)."""
    import regfast
    p = str(bh.path)
    # regfast, Key objects
    got = impls.walk_regfast_keys(p)
    assert (got["keys"], got["values"]) == (bh.keys, bh.values), \
        f"{bh.name}: regfast walk found {got}, the generator wrote {bh.keys} keys, {bh.values} values"
    # regfast, scan()
    if impls.unavailable("regfast-scan") is None:
        got = impls.walk_regfast_scan(p)
        assert (got["keys"], got["values"]) == (bh.keys, bh.values), f"{bh.name}: scan() found {got}"
    # hivex, the oracle
    if worker is not None:
        hx = worker.call("walk", hive=p)
        assert (hx["keys"], hx["values"]) == (bh.keys, bh.values), \
            f"{bh.name}: hivex counts {hx} differ from regfast's and the generator's"
    # 0xFFFF00xx device properties and big data: exact lengths
    devprops = bh.meta["devprops"]
    with regfast.open_hive(p) as h:
        for item in devprops:
            v = h.open(item["path"]).value(item["name"])
            assert v.type == item["type"], (item, v)
            assert v.size == item["length"], f"{bh.name}: {item} but the vk says {v.size}"
            n = len(v.data)
            assert n == item["length"], f"{bh.name}: {item} but regfast read {n} bytes"
        for item in bh.meta["big"]:
            v = h.open(item["path"]).value(item["name"])
            assert len(v.data) == v.size == item["length"], (item, v.size)
        if devprops and impls.unavailable("regfast-scan") is None:
            import numpy as np
            t = h.scan()
            mask = (t.value_type & np.uint32(0xFFFF0000)) == np.uint32(0xFFFF0000)
            assert sorted(t.value_length[mask].tolist()) == sorted(d["length"] for d in devprops)
            del t, mask
    if worker is not None and devprops:
        rep = worker.call("lengths", hive=p, items=[[d["path"], d["name"]] for d in devprops])
        bad = [(d, r) for d, r in zip(devprops, rep["lengths"])
               if r is None or r != [d["type"], d["length"], d["length"]]]
        if bad:
            loud(f"hivex reads {len(bad)} of {len(devprops)} 0xFFFF00xx values of {bh.name} "
                 f"with a wrong length, e.g. {bad[0]}")


# ---------------------------------------------------------------------------
# timing helpers
# ---------------------------------------------------------------------------

@pytest.fixture
def budget(request) -> float:
    return request.config.getoption("--bench-budget")


def _rounds_for(seconds: float, budget: float, max_rounds: int = 200) -> int:
    return max(1, min(max_rounds, int(budget / max(seconds, 1e-6))))


class _Cap(Exception):
    pass


def _call_capped(fn, cap):
    if not cap or not hasattr(signal, "SIGALRM"):
        return fn()

    def alarm(signum, frame):
        raise _Cap()

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(cap))
    try:
        return fn()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def measure(benchmark, fn, budget: float, cap: float | None = None) -> dict:
    """Warm-up run (result returned, for checks), then adaptive rounds."""
    t0 = time.perf_counter()
    try:
        first = _call_capped(fn, cap)
    except _Cap:
        pytest.skip(f"over the {cap:.0f} s cap for one run")
    t = time.perf_counter() - t0
    if t > budget:
        benchmark.extra_info["rounds_note"] = "one run (it took longer than the budget)"
        feed(benchmark, [t], external=False)
    else:
        benchmark.pedantic(fn, rounds=_rounds_for(t, budget), iterations=1)
    return first


def feed(benchmark, seconds: list[float], external: bool = True) -> None:
    """Puts round times measured elsewhere (another process, or a run already
    timed here) into pytest-benchmark's stats: a virtual clock advances by
    each time as its round "runs"."""
    clock = [0.0]
    todo = list(seconds)

    def external_clock():
        return clock[0]

    def one_round():
        clock[0] += todo.pop(0)

    benchmark._timer = external_clock           # pytest-benchmark reads it per round
    if external:
        benchmark.extra_info["timed_by"] = "external"
    benchmark.pedantic(one_round, rounds=len(seconds), iterations=1)


def measure_external(benchmark, call, budget: float) -> dict:
    """call() -> reply with "seconds" (timed where it ran). Warm-up, then
    as many calls as fit in the budget, fed through the virtual clock."""
    first = call()
    n = _rounds_for(first["seconds"], budget)
    times = []
    for _ in range(n):
        times.append(call()["seconds"])
    feed(benchmark, times)
    return first


# ---------------------------------------------------------------------------
# the C rows: the floor (bench/raw_walk.c: the structure read straight through
# the mapping, no validation) and regfast's C API (bench/walk_floor.c), built
# with the project's CMake
# ---------------------------------------------------------------------------

_floor: dict = {}


def _build_c_rows() -> dict:
    """{"walk_floor": path or None, "raw_walk": path or None}, built once
    into the cache (a loud reason when they cannot be)."""
    if _floor:
        return _floor
    _floor.update(walk_floor=None, raw_walk=None)
    cmake = shutil.which("cmake")
    if not cmake:
        loud("C FLOOR UNAVAILABLE: cmake is not on PATH")
        return _floor
    build = hives.cache_dir() / "walk_floor-build"
    cfg = [cmake, "-S", str(HERE.parent), "-B", str(build), "-DREGFAST_BUILD_BENCH=ON",
           "-DCMAKE_BUILD_TYPE=Release"]
    for cmd in (cfg, [cmake, "--build", str(build), "--target", "walk_floor", "raw_walk", "-j2"]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            loud(f"C FLOOR UNAVAILABLE: {' '.join(cmd[:3])} ... failed:\n{(r.stdout + r.stderr)[-2000:]}")
            return _floor
    for name in ("walk_floor", "raw_walk"):
        exe = build / "bench" / (name + (".exe" if os.name == "nt" else ""))
        _floor[name] = exe if exe.exists() else None
    return _floor


@pytest.fixture(scope="session")
def walk_floor():
    """Path of the walk_floor binary (regfast's C API rows), or None (with a
    loud reason) when it cannot be built."""
    return _build_c_rows()["walk_floor"]


@pytest.fixture(scope="session")
def raw_walk():
    """Path of the raw_walk binary (the floor rows), or None (loudly)."""
    return _build_c_rows()["raw_walk"]


def run_floor(exe, mode: str, hive_path, rounds: int) -> dict:
    r = subprocess.run([str(exe), mode, str(hive_path), str(rounds)], capture_output=True,
                       text=True, timeout=600)
    if r.returncode:
        raise RuntimeError(f"{Path(str(exe)).name} {mode} failed: {r.stderr}")
    return json.loads(r.stdout)
