"""The reference chapter's API comparison table, reproduced through
regfast-agent (src/agent), plus batch-vs-single through the agent and the
change-notification latency.

Every row of the table is timed by the agent itself: an AG_OP_BENCH request
names a read method, a key and value names; the agent reads them with that
method and returns the elapsed time on its own clock
(QueryPerformanceCounter), so rows compare methods, not the pipe. Those
seconds go into pytest-benchmark through conftest.feed (a virtual clock).

Run (from the repository root; needs mingw-w64 + Wine, ~2 minutes)::

    pytest bench/test_api_table.py -p no:randomly -s

Groups: api-table (10,000 REG_SZ values of 256 bytes, open once), open-pattern
(2,000 values), key-depth (2,000 open+read at depth 1/5/10/20/50),
agent-roundtrip (10,000 values through the pipe: one batch vs single reads),
notify-latency. The summary (rows relative to RegQueryValueEx = 100, the
chapter's column beside) is printed at the end and written to
bench/.cache/api_table.md when the module ends. The chapter's C# RegistryKey.GetValue (150) and
PowerShell Get-ItemPropertyValue (1200) rows are out of reach: there is no
.NET runtime nor PowerShell in a Wine prefix (wine-mono is not installed, and
mscoree is disabled for the tests), so those rows say so instead of a figure.

Under Wine every registry call is a wineserver round trip (~10-25 us), so the
ratios count server calls; they say nothing about Windows
(shared/reference/wine-registry.md).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import feed

ROOT = Path(__file__).resolve().parents[1]


def _agent_build_dir() -> Path:
    """The agent build tests/python shares (its conftest.artefact_dir("agent-pytest")):
    outside the source tree, one per checkout."""
    base = os.environ.get("REGFAST_TEST_CACHE") or os.path.join(
        tempfile.gettempdir(), "regfast-test-" + hashlib.sha1(str(ROOT).encode()).hexdigest()[:12])
    return Path(base) / "agent-pytest"
N_VALUES = 10_000
N_EACH = 2_000
RUNS = 5
DEPTHS = (1, 5, 10, 20, 50)
BASE = r"Software\regfast-api-table"

_RESULTS: dict[str, dict] = {}


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


class _Env:
    def __init__(self) -> None:
        import regfast
        from regfast.live import agent as A
        for tool in ("x86_64-w64-mingw32-gcc", "cmake", "wine", "wineboot"):
            if not shutil.which(tool):
                msg = f"{tool} is missing: the live-registry benchmark cannot run"
                if _in_ci():
                    pytest.fail(msg)
                pytest.skip(msg)
        build = _agent_build_dir()
        self.exe = A.build_agent(ROOT, build, dest=build / A.EXE_NAME)
        self.prefix = tempfile.mkdtemp(prefix="regfast-bench-wine-")
        self.env = dict(os.environ, WINEPREFIX=self.prefix, WINEDEBUG="-all",
                        WINEDLLOVERRIDES="mscoree,mshtml=")
        subprocess.run(["wineboot", "-i"], env=self.env, capture_output=True, timeout=240, check=True)
        self.reg = regfast.connect([shutil.which("wine"), str(self.exe)], env=self.env, timeout=120)
        self.writer = regfast.connect([shutil.which("wine"), str(self.exe)], env=self.env, timeout=120)
        data = "".join(chr(ord("a") + i % 26) for i in range(127))    # 127 chars + NUL = 256 bytes
        self.names = [f"v{i:05d}" for i in range(N_VALUES)]
        self.values = self.reg.create_key("HKCU", BASE + r"\values")
        for n in self.names:
            self.values.set_value(n, data)
        self.depth = {}
        path = BASE
        for d in range(1, max(DEPTHS) + 1):
            path += f"\\d{d:02d}"
            k = self.reg.create_key("HKCU", path)
            k.set_value("v", data)
            if d in DEPTHS:
                self.depth[d] = k

    def close(self) -> None:
        for r in (self.reg, self.writer):
            try:
                r.close()
            except OSError:
                pass
        ws = shutil.which("wineserver") or "/usr/lib/wine/wineserver"
        subprocess.run([ws, "-k"], env=self.env, capture_output=True, timeout=60)
        shutil.rmtree(self.prefix, ignore_errors=True)


@pytest.fixture(scope="module")
def env():
    e = _Env()
    yield e
    try:
        _report(e)
    finally:
        e.close()


_TIMES: dict[str, dict] = {}


def _group_times(env, group: str, rows: list[tuple]) -> dict:
    """Agent-timed seconds of every row of a group: one warm-up pass, then
    RUNS passes with the rows interleaved run by run (as bench/nt_bench.c
    does), so that load changes on a shared machine hit every row alike.
    rows: (row id, method, key, names, reps). Measured once per group."""
    if group not in _TIMES:
        for _, method, key, names, reps in rows:
            env.reg.bench(method, key, names, reps)
        times: dict = {r[0]: [] for r in rows}
        for _ in range(RUNS):
            for rid, method, key, names, reps in rows:
                secs, ok = env.reg.bench(method, key, names, reps)
                assert ok == len(names) * reps, f"{method}: {ok} of {len(names) * reps} reads succeeded"
                times[rid].append(secs)
        _TIMES[group] = times
    return _TIMES[group]


def _agent_row(benchmark, times: list[float], method: str, reads: int) -> float:
    """Feeds a row's agent-timed seconds to pytest-benchmark; returns the
    best seconds per read."""
    feed(benchmark, times)
    per = min(times) / reads
    benchmark.extra_info.update(method=method, reads=reads, us_per_read=per * 1e6)
    return per


TABLE = [
    # (row label, agent method, chapter figure)
    ("RegQueryValueEx", "RegQueryValueEx", "100"),
    ("RegGetValue", "RegGetValue", "105"),
    ("NtQueryValueKey (Partial)", "NtQueryValueKey Partial", "85"),
    ("NtQueryValueKey (Full)", "NtQueryValueKey Full", "92"),
    ("regfast single reads (rf_live_get_value)", "regfast single", "-"),
    ("regfast batched read (1 rf_read_values, Partial)", "regfast batch", "-"),
    ("regfast batched read (1 rf_read_values, Full)", "regfast batch Full", "-"),
]


@pytest.mark.parametrize("row", [r[0] for r in TABLE])
def test_api_table(benchmark, env, row):
    label, method, chapter = next(r for r in TABLE if r[0] == row)
    benchmark.group = "api-table"
    times = _group_times(env, "api", [(r[0], r[1], env.values, env.names, 1) for r in TABLE])
    per = _agent_row(benchmark, times[row], method, N_VALUES)
    _RESULTS.setdefault("api", {})[label] = (per, chapter)


OPEN = [
    ("open once + RegQueryValueEx", "RegQueryValueEx"),
    ("RegOpenKeyEx + RegQueryValueEx + RegCloseKey per read", "open-each"),
    ("RegGetValue(HKCU, path, name) per read", "RegGetValue with path"),
    ("regfast rf_key_open (handle cache) + rf_live_get_value per read", "regfast open-each (cached)"),
]


@pytest.mark.parametrize("row", [r[0] for r in OPEN])
def test_open_pattern(benchmark, env, row):
    method = dict(OPEN)[row]
    benchmark.group = "open-pattern"
    times = _group_times(env, "open", [(r, m, env.values, env.names[:N_EACH], 1) for r, m in OPEN])
    per = _agent_row(benchmark, times[row], method, N_EACH)
    _RESULTS.setdefault("open", {})[row] = per


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("method", ["open-each", "regfast open-each (cached)"])
def test_key_depth(benchmark, env, depth, method):
    benchmark.group = "key-depth"
    rows = [((m, d), m, env.depth[d], ["v"], N_EACH) for d in DEPTHS
            for m in ("open-each", "regfast open-each (cached)")]
    times = _group_times(env, "depth", rows)
    per = _agent_row(benchmark, times[(method, depth)], method, N_EACH)
    _RESULTS.setdefault("depth", {})[(method, depth)] = per


@pytest.mark.parametrize("how", ["batch: one read_values request", "single: one request per value"])
def test_agent_roundtrip(benchmark, env, how):
    """10,000 values through the pipe: Python wall time, pipe included. The
    single row (run second) checks the batch's advantage."""
    benchmark.group = "agent-roundtrip"
    key, names = env.values, env.names
    if how.startswith("batch"):
        fn = lambda: key.read_values(names).as_str()      # noqa: E731
        rounds = 5
    else:
        fn = lambda: [key[n] for n in names]              # noqa: E731
        rounds = 2
    first = fn()
    assert len(first) == N_VALUES and first[0] == first[-1]
    benchmark.pedantic(fn, rounds=rounds, iterations=1)
    rt = _RESULTS.setdefault("roundtrip", {})
    rt[how.split(":")[0]] = benchmark.stats.stats.min
    if len(rt) == 2:
        ratio = rt["single"] / rt["batch"]
        benchmark.extra_info["batch_speedup"] = round(ratio, 1)
        # The target is 50x. Under Wine it cannot be met: each of the batch's
        # 10,000 reads is itself a wineserver round trip (~12-17 us; Wine's
        # NtQueryMultipleValueKey is a stub), while one request through the
        # pipe costs ~85-200 us, which caps the ratio near (RTT + 15) / 20: 5-10x
        # measured here. Under Wine the floor only checks that batching works.
        # Natively a batch is one NtQueryMultipleValueKey (the backend's probe).
        floor = 3 if "Wine" in env.reg.description else 50
        assert ratio >= floor, f"batch only {ratio:.1f}x faster than single reads (floor {floor}x)"


def test_notify_latency(benchmark, env):
    """Time from a write by another process (its request sent) to the Diff
    reaching Python: 200 samples, p50/p90/p99/max."""
    import regfast
    from regfast.live.watch import LAST_SET
    benchmark.group = "notify-latency"
    key = env.reg.create_key("HKCU", BASE + r"\watched")
    other = env.writer.open_key("HKCU", key.path, access=0xF003F)
    lat = []
    with regfast.watch(key, filter=LAST_SET) as w:
        for i in range(200):
            t0 = time.perf_counter()
            other.set_value("x", i)
            d = w.get(10)
            assert d is not None and d.changes[0].name == "x"
            lat.append(d.received - t0)
            while w.get(0.005) is not None:    # drain a straggler, if any
                pass
    feed(benchmark, lat)
    lat.sort()
    q = {p: lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1e3 for p in (50, 90, 99)}
    q["max"] = lat[-1] * 1e3
    q["mean"] = statistics.fmean(lat) * 1e3
    benchmark.extra_info.update({f"{k}_ms": round(v, 3) for k, v in q.items()})
    _RESULTS["latency"] = q


def _report(env: _Env) -> None:
    """Prints the table and writes bench/.cache/api_table.md (at the end)."""
    api = _RESULTS.get("api", {})
    if "RegQueryValueEx" not in api:
        return
    base = api["RegQueryValueEx"][0]
    lines = [f"# API table through regfast-agent ({env.reg.description})", "",
             f"{N_VALUES:,} REG_SZ values of 256 bytes, open once; best of {RUNS} agent-timed runs; "
             "relative to RegQueryValueEx = 100.", "",
             "| method | us/value | relative (Wine) | chapter (Windows) |", "|---|---:|---:|---:|"]
    for label, (per, chapter) in api.items():
        lines.append(f"| {label} | {per * 1e6:.2f} | {100 * per / base:.0f} | {chapter} |")
    lines.append("| C# RegistryKey.GetValue | out of reach: no .NET runtime in a Wine prefix | - | 150 |")
    lines.append("| PowerShell Get-ItemPropertyValue | out of reach: no PowerShell under Wine | - | 1200 |")
    op = _RESULTS.get("open", {})
    if op:
        once = next(iter(op.values()))
        lines += ["", f"## Open once vs open each ({N_EACH:,} values)", "",
                  "| pattern | us/read | relative |", "|---|---:|---:|"]
        lines += [f"| {k} | {v * 1e6:.2f} | {100 * v / once:.0f} |" for k, v in op.items()]
    dp = _RESULTS.get("depth", {})
    if dp:
        ref = dp.get(("open-each", 1))
        lines += ["", f"## Key depth ({N_EACH:,} open + read + close)", "",
                  "| depth | open-each us | relative | regfast cached us | relative | chapter |",
                  "|---:|---:|---:|---:|---:|---:|"]
        chap = dict(zip(DEPTHS, ("100", "112", "135", "185", "340")))
        for d in DEPTHS:
            a, b = dp.get(("open-each", d)), dp.get(("regfast open-each (cached)", d))
            if a and b and ref:
                lines.append(f"| {d} | {a * 1e6:.2f} | {100 * a / ref:.0f} | {b * 1e6:.2f} | "
                             f"{100 * b / ref:.0f} | {chap[d]} |")
    rt = _RESULTS.get("roundtrip", {})
    if len(rt) == 2:
        lines += ["", "## Through the pipe (Python wall time, 10,000 values)", "",
                  f"- one read_values request: {rt['batch'] * 1e3:.1f} ms",
                  f"- 10,000 single requests: {rt['single'] * 1e3:.0f} ms",
                  f"- batch is {rt['single'] / rt['batch']:.1f}x faster"]
    lat = _RESULTS.get("latency")
    if lat:
        lines += ["", "## Notification latency (write by another process -> Diff in Python, 200 samples)", "",
                  "  ".join(f"{k} {v:.2f} ms" for k, v in lat.items())]
    text = "\n".join(lines) + "\n"
    out = ROOT / "bench" / ".cache"
    out.mkdir(parents=True, exist_ok=True)
    (out / "api_table.md").write_text(text)
    print("\n" + text)
