"""Full walks: every key (name, last write) and every value (name, type,
decoded data), hive open and close included. One group per hive size:
walk-1MB, walk-5MB, walk-100MB.

Rows: regfast (scan() columns, open included and, as regfast-scan-warm, on
a hive already open and scanned once; scan() + every name/path/decoded value
as Python objects; Key objects + read_values(); Key and Value objects), the
floor (raw_walk.c: the structure read straight through the mapping with no
validation; "floor" maps the file each round, as an open does, "floor-warm"
walks a mapping already faulted in), regfast's C API (walk_floor.c: the
public C API walk, and rf_hive_scan), hivex (C, out of process), regipy-rs
(native recurse() and the regipy API over it), libregf-python,
python-registry, and pure-Python regipy on the 1 MB hive only.
"""
import pytest

from conftest import feed, impls, loud, measure, measure_external, run_floor, selected_hives

pytestmark = pytest.mark.filterwarnings("default")


def pytest_generate_tests(metafunc):
    if "walk_case" in metafunc.fixturenames:
        cases = []
        for hive in selected_hives(metafunc.config):
            for impl in list(impls.WALK) + ["regfast-scan-warm", "hivex", "floor", "floor-warm",
                                            "C-walk", "C-scan"]:
                if impl == "regipy" and hive not in impls.REGIPY_PURE_HIVES:
                    continue   # < 1 MB/s: minutes per run on the larger hives
                cases.append(pytest.param((hive, impl), id=f"{hive}-{impl}"))
        metafunc.parametrize("walk_case", cases)


def _check(benchmark, bh, impl, got):
    benchmark.extra_info["counts"] = got
    if (got["keys"], got["values"]) != (bh.keys, bh.values):
        msg = (f"{impl} on {bh.name}: {got['keys']} keys, {got['values']} values; "
               f"hivex and regfast: {bh.keys} keys, {bh.values} values")
        assert not impl.startswith(("regfast", "C-", "floor")), msg
        benchmark.extra_info["mismatch"] = msg
        loud("COUNT MISMATCH: " + msg)
    if got.get("errors"):
        benchmark.extra_info["decode_errors"] = got["errors"]


def _scan_warm(benchmark, p, budget):
    """scan() alone, on a hive opened (and scanned) once outside the timing:
    the mapping is warm and every hbin checked, like floor-warm's mapping."""
    import regfast
    if impls.unavailable("regfast-scan"):
        pytest.skip(impls.unavailable("regfast-scan"))
    with regfast.open_hive(p) as h:
        h.scan()

        def one():
            t = h.scan()
            return {"keys": int(t.n_keys), "values": int(t.n_values), "errors": 0}

        return measure(benchmark, one, budget)


def bench_walk(benchmark, walk_case, bench_hive, hivex_worker, walk_floor, raw_walk, budget):
    hive, impl = walk_case
    bh = bench_hive(hive)
    benchmark.group = f"walk-{bh.label}"
    benchmark.extra_info.update(impl=impl, hive=bh.name, bytes=bh.size, keys=bh.keys,
                                values=bh.values, task="walk")
    p = str(bh.path)
    if impl == "hivex":
        if hivex_worker is None:
            pytest.skip("hivex unavailable (see the summary)")
        got = measure_external(benchmark, lambda: hivex_worker.call("walk", hive=p), budget)
    elif impl.startswith(("C-", "floor")):
        exe = walk_floor if impl.startswith("C-") else raw_walk
        if exe is None:
            pytest.skip("the C rows could not be built (see the summary)")
        mode = impl[2:] if impl.startswith("C-") else ("walk" if impl == "floor-warm" else "open")
        probe = run_floor(exe, mode, p, 1)
        rounds = max(3, min(200, int(budget / max(probe["best"], 1e-6))))
        got = run_floor(exe, mode, p, rounds)
        feed(benchmark, got["times"])
    elif impl == "regfast-scan-warm":
        got = _scan_warm(benchmark, p, budget)
    else:
        why = impls.unavailable(impl)
        if why:
            loud(f"PEER UNAVAILABLE: {impl}: {why}")
            pytest.skip(why)
        fn = impls.WALK[impl]
        cap = impls.REGIPY_PURE_CAP_S if impl == "regipy" else None
        if cap:
            benchmark.extra_info["note"] = (f"pure Python: run on the 1 MB hive only, "
                                            f"capped at {cap} s")
        got = measure(benchmark, lambda: fn(p), budget, cap=cap)
    _check(benchmark, bh, impl, got)
