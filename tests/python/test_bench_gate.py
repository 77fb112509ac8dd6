"""bench/ratio_gate.py, the benchmarks' CI gate: a machine that got slower as
a whole passes, a row that got slower against its group's baseline row
fails; and machine_info stays the same between runs on one machine. Run
through pytester with pytest-benchmark, on rows that spin for set times."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytest_benchmark")
BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import ratio_gate  # noqa: E402

pytest_plugins = ["pytester"]

ROWS = '''
import os, time, pytest

def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass

@pytest.mark.parametrize("row", ["hivex", "regfast-scan", "regfast-keys"])
def test_walk(benchmark, row):
    benchmark.group = "walk-1MB"
    machine = float(os.environ["GATE_MACHINE"])          # the whole machine slower
    subject = float(os.environ["GATE_SUBJECT"]) if row == "regfast-scan" else 1.0
    benchmark.pedantic(spin, args=(0.002 * machine * subject,), rounds=9, iterations=1)
'''


@pytest.fixture
def project(pytester):
    pytester.makeconftest(f"import sys\nsys.path.insert(0, {str(BENCH)!r})\npytest_plugins = ['ratio_gate']\n")
    pytester.makepyfile(test_rows=ROWS)
    return pytester


def _run(p, monkeypatch, machine: float, subject: float, *args: str):
    monkeypatch.setenv("GATE_MACHINE", str(machine))
    monkeypatch.setenv("GATE_SUBJECT", str(subject))
    return p.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", "--benchmark-storage=store",
                       "-W", "ignore::pytest.PytestAssertRewriteWarning", *args)


def test_noise_passes_a_real_regression_fails(project, monkeypatch):
    # the first run: saved; the gate has nothing to compare with and says so
    r = _run(project, monkeypatch, 1, 1, "--benchmark-autosave", "--bench-gate=1.5")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stdout.fnmatch_lines(["*--bench-gate needs --benchmark-compare*"])
    # every row 3x slower (a loaded machine): absolute comparison fails, ratios pass
    r = _run(project, monkeypatch, 3, 1, "--benchmark-compare", "--benchmark-compare-fail=min:50%")
    assert r.ret != 0
    r = _run(project, monkeypatch, 3, 1, "--benchmark-compare", "--bench-gate=1.5", "--benchmark-autosave")
    assert r.ret == 0, r.stdout.str()
    r.stdout.fnmatch_lines(["*ok*walk-1MB / regfast-keys*", "*ok*walk-1MB / regfast-scan*"])
    assert "machine_info is different" not in r.stdout.str() + r.stderr.str()
    # one row 3x slower against the baseline, on an unchanged machine: fails
    r = _run(project, monkeypatch, 1, 3, "--benchmark-compare", "--bench-gate=1.5")
    assert r.ret == 1
    r.stdout.fnmatch_lines(["*REGRESSED*walk-1MB / regfast-scan*", "*1 row(s) regressed*"])
    assert "REGRESSED" not in "".join(line for line in r.stdout.lines if "regfast-keys" in line)
    # the saved runs: the same machine_info, the per-run facts beside it
    saved = sorted((project.path / "store").rglob("*.json"))
    infos = [json.loads(f.read_text())["machine_info"] for f in saved]
    assert len(infos) == 2 and infos[0] == infos[1]
    assert "regfast_run" in json.loads(saved[0].read_text())


def test_baseline_choice():
    names = ["bench_walk[software-1MB-hivex]", "bench_walk[software-1MB-C-walk]",
             "bench_walk[software-1MB-regfast-scan]"]
    assert ratio_gate.baseline_of("walk-1MB", names, {}) == names[0]
    assert ratio_gate.baseline_of("walk-1MB", names[1:], {}) == names[1]          # no hivex: the C floor
    assert ratio_gate.baseline_of("walk-1MB", names, {"walk-1MB": "regfast-scan"}) == names[2]
    assert ratio_gate.baseline_of("api-table", ["test_api_table[RegGetValue]", "test_api_table[RegQueryValueEx]"],
                                  {}) == "test_api_table[RegQueryValueEx]"
    rows, skipped = ratio_gate.gate({("g", "x[a]"): 1.0}, {("g", "x[a]"): 1.0})
    assert rows == [] and skipped == ["g: no baseline row in this run"]
