"""The benchmarks as a CI gate that noise alone does not trip (a pytest plugin,
loaded by bench/conftest.py).

pytest-benchmark's ``--benchmark-compare-fail=min:10%`` compares absolute
times with a saved run: on a shared or throttled machine every row of a run
can be 30 % slower than the day before, and the gate fails with nothing
changed. Here each row is measured against a **baseline row of its group
measured in the same run** (a peer, a raw Win32 call, the C floor: code a
regfast change does not touch), and the gate compares those ratios::

    pytest bench/ --benchmark-autosave                          # on main
    pytest bench/ --benchmark-compare --bench-gate=1.25         # on the branch

fails (exit 1) when a row's time relative to its group's baseline grew by
more than 1.25x from the compared run; a machine that got slower as a whole
moves both and passes. ``--bench-baseline GROUP=ROW`` picks another baseline
(ROW: the test id's parameter, or its last ``-`` part).

It also keeps ``machine_info`` stable between runs on one machine, so that
``--benchmark-compare`` does not warn that every run is a different machine:
the CPU's current clock (py-cpuinfo's ``hz_actual``) is dropped from it, and
what changes per run (date, load average, commit, budget) goes to the JSON's
``regfast_run`` instead (see :func:`run_info`).
"""
from __future__ import annotations

import datetime as _dt
import fnmatch
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pytest

#: (group glob, baseline candidates in order of preference), first match wins
BASELINES: list[tuple[str, list[str]]] = [
    ("api-table", ["RegQueryValueEx"]),
    ("open-pattern", ["open once + RegQueryValueEx"]),
    ("key-depth", ["open-each-1"]),
    ("agent-roundtrip", ["single: one request per value"]),
    ("hooks-overhead*", ["no hook point"]),
    ("fleet-*", ["1 worker"]),
    ("*", ["hivex", "C-walk", "C-scan", "C-open"]),
]

# machine_info fields that change from run to run on one machine
_VOLATILE_CPU = ("hz_actual", "hz_actual_friendly", "hz_actual_raw")



def run_info(rootdir: Path) -> dict[str, Any]:
    """What changes from run to run (saved as the JSON's "regfast_run")."""
    commit = None
    try:
        out = subprocess.run(["git", "-C", str(rootdir), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(rootdir), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        commit = (out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")) or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "git_commit": commit,
    }


def pytest_addoption(parser: Any) -> None:
    g = parser.getgroup("regfast bench gate")
    g.addoption("--bench-gate", type=float, default=None, metavar="RATIO",
                help="with --benchmark-compare: fail when a row's time relative to its group's "
                     "baseline row (same run) grew by more than RATIO (e.g. 1.25)")
    g.addoption("--bench-baseline", action="append", default=[], metavar="GROUP=ROW",
                help="the baseline row of a group (default: see bench/ratio_gate.py BASELINES)")


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict) -> None:
    cpu = machine_info.get("cpu")
    if isinstance(cpu, dict):
        for k in _VOLATILE_CPU:
            cpu.pop(k, None)


def pytest_benchmark_update_json(config: Any, benchmarks: Any, output_json: dict) -> None:
    output_json.setdefault("regfast_run", {}).update(run_info(Path(str(config.rootpath))))


# --- the gate -------------------------------------------------------------------

def param_of(name: str) -> str:
    """``bench_walk[software-5MB-hivex]`` -> ``software-5MB-hivex``."""
    return name[name.index("[") + 1:-1] if "[" in name and name.endswith("]") else name


def _is(name: str, row: str) -> bool:
    p = param_of(name)
    return p == row or p.endswith("-" + row)


def baseline_of(group: str, names: Iterable[str], overrides: dict[str, str]) -> str | None:
    """The name of the group's baseline row among `names`, or None."""
    names = list(names)
    cands = [overrides[group]] if group in overrides else next(
        (c for g, c in BASELINES if fnmatch.fnmatchcase(group, g)), [])
    for c in cands:
        for n in names:
            if _is(n, c):
                return n
    return None


@dataclass
class Row:
    group: str
    name: str
    baseline: str
    ratio_then: float     # row min / baseline min, in the compared run
    ratio_now: float      # the same, in this run

    @property
    def change(self) -> float:
        return self.ratio_now / self.ratio_then


def gate(now: dict[tuple[str, str], float], then: dict[tuple[str, str], float],
         overrides: dict[str, str] | None = None) -> tuple[list[Row], list[str]]:
    """Ratios of every row to its group's baseline, now and then.
    now / then: (group, name) -> best seconds. Returns (rows compared,
    groups left out with the reason)."""
    overrides = overrides or {}
    rows, skipped = [], []
    for group in sorted({g for g, _ in now}):
        names = [n for g, n in now if g == group]
        base = baseline_of(group, names, overrides)
        if base is None:
            skipped.append(f"{group}: no baseline row in this run")
            continue
        if (group, base) not in then:
            skipped.append(f"{group}: baseline {param_of(base)!r} not in the compared run")
            continue
        b_now, b_then = now[(group, base)], then[(group, base)]
        if b_now <= 0 or b_then <= 0:
            skipped.append(f"{group}: baseline time is 0")
            continue
        for n in names:
            if n == base or (group, n) not in then or then[(group, n)] <= 0:
                continue
            rows.append(Row(group, n, base, then[(group, n)] / b_then, now[(group, n)] / b_now))
    return rows, skipped


def _overrides(config: Any) -> dict[str, str]:
    out = {}
    for spec in config.getoption("--bench-baseline") or []:
        if "=" not in spec:
            raise pytest.UsageError(f"--bench-baseline wants GROUP=ROW, got {spec!r}")
        g, r = spec.split("=", 1)
        out[g] = r
    return out


def _times(config: Any) -> tuple[dict, dict] | None:
    """(now, then) from pytest-benchmark's session: this run's rows and the
    run --benchmark-compare loaded (the newest, if several)."""
    bs = getattr(config, "_benchmarksession", None)
    if bs is None or not bs.compared_mapping:
        return None
    now = {}
    for b in bs.benchmarks:
        if b and getattr(b, "stats", None) is not None and b.group is not None:
            now[(b.group, b.name)] = float(b.stats.min)
    path = sorted(bs.compared_mapping)[-1]
    then = {(d.get("group"), d["name"]): float(d["stats"]["min"])
            for d in bs.compared_mapping[path].values() if d.get("stats")}
    return now, then


_RESULT = pytest.StashKey[dict]()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    limit = session.config.getoption("--bench-gate")
    if limit is None:
        return
    got = _times(session.config)
    if got is None:
        session.config.stash[_RESULT] = {
            "error": "--bench-gate needs --benchmark-compare with a saved run to compare"}
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
        return
    rows, skipped = gate(*got, overrides=_overrides(session.config))
    bad = [r for r in rows if r.change > limit]
    session.config.stash[_RESULT] = {"rows": rows, "skipped": skipped, "bad": bad, "limit": limit}
    if bad and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    res = terminalreporter.config.stash.get(_RESULT, None)
    if not res:
        return
    if "error" in res:
        terminalreporter.section("regfast bench gate", sep="!")
        terminalreporter.write_line(res["error"])
        return
    tr, limit = terminalreporter, res["limit"]
    tr.section(f"regfast bench gate: time relative to the group's baseline row, allowed x{limit:g}")
    for r in sorted(res["rows"], key=lambda r: (r.group, r.name)):
        mark = "REGRESSED" if r in res["bad"] else "ok"
        tr.write_line(f"{mark:>9}  x{r.change:5.2f}  ({r.ratio_then:8.3f} -> {r.ratio_now:8.3f} of "
                      f"{param_of(r.baseline)})  {r.group} / {param_of(r.name)}")
    for s in res["skipped"]:
        tr.write_line(f"  not gated: {s}")
    if res["bad"]:
        tr.write_line(f"{len(res['bad'])} row(s) regressed against their baseline by more than x{limit:g}",
                      red=True)
