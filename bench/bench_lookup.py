"""1,000 point lookups: open a key by path from the root and read one value,
decoded, 1,000 times (paths drawn uniformly over the hive's values by the
generator). The hive is opened once, outside the timing.

Groups: lookup-1000 (the 100 MB hive), lookup-1000-1MB (the 1 MB hive, where
pure-Python regipy runs too).
"""
import pytest

from conftest import impls, loud, measure, measure_external, selected_hives

LOOKUP_HIVES = {"software-100MB": "lookup-1000", "software-1MB": "lookup-1000-1MB"}


def pytest_generate_tests(metafunc):
    if "lookup_case" in metafunc.fixturenames:
        cases = []
        for hive in selected_hives(metafunc.config):
            if hive not in LOOKUP_HIVES:
                continue
            for impl in list(impls.LOOKUP) + ["hivex"]:
                if impl == "regipy" and hive not in impls.REGIPY_PURE_HIVES:
                    continue
                cases.append(pytest.param((hive, impl), id=f"{hive}-{impl}"))
        metafunc.parametrize("lookup_case", cases)


def bench_lookup(benchmark, lookup_case, bench_hive, hivex_worker, budget):
    hive, impl = lookup_case
    bh = bench_hive(hive)
    paths = [tuple(x) for x in bh.meta["lookups"]]
    benchmark.group = LOOKUP_HIVES[hive]
    benchmark.extra_info.update(impl=impl, hive=bh.name, bytes=bh.size, lookups=len(paths),
                                task="lookup")
    p = str(bh.path)
    if impl == "hivex":
        if hivex_worker is None:
            pytest.skip("hivex unavailable (see the summary)")
        got = measure_external(benchmark,
                               lambda: hivex_worker.call("lookup", hive=p, paths=paths), budget)
    else:
        why = impls.unavailable(impl)
        if why:
            loud(f"PEER UNAVAILABLE: {impl}: {why}")
            pytest.skip(why)
        opener, prepare, lookup = impls.LOOKUP[impl]
        handle = opener(p)
        arg = prepare(paths) if prepare else paths
        cap = impls.REGIPY_PURE_CAP_S if impl == "regipy" else None
        try:
            got = measure(benchmark, lambda: lookup(handle, arg), budget, cap=cap)
        finally:
            impls.close(handle)
    benchmark.extra_info["counts"] = got
    if got.get("errors"):
        benchmark.extra_info["decode_errors"] = got["errors"]
    if got["found"] != len(paths):
        msg = f"{impl} on {bh.name}: found {got['found']} of {len(paths)} values that exist"
        assert not impl.startswith("regfast"), msg
        benchmark.extra_info["mismatch"] = msg
        loud("LOOKUP MISMATCH: " + msg)
