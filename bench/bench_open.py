"""Opening a hive, on the largest selected hive:

* open-100MB: open + root key + close. regfast checks an hbin's cells the
  first time an offset in it is used (the root's hbin at open); hivex checks
  every hbin at open; regipy-rs reads only the base block.
* first-value-100MB: open + one lookup (the first of the generator's 1,000
  lookup paths, value decoded) + close: the time to a first answer.
"""
import pytest

from conftest import feed, impls, loud, measure, measure_external, run_floor, selected_hives

#: rows of first-value-*: the lookup implementations (pure-Python regipy is
#: left out: its open alone reads the whole hive into Python objects)
FIRST_VALUE = ["regfast-open", "regipy-rs-api", "pyregf", "python-registry"]


@pytest.mark.parametrize("impl", list(impls.OPEN_ROOT) + ["hivex", "C-open"])
def bench_open(benchmark, request, impl, bench_hive, hivex_worker, walk_floor, budget):
    bh = bench_hive(selected_hives(request.config)[-1])
    benchmark.group = f"open-{bh.label}"
    benchmark.extra_info.update(impl=impl, hive=bh.name, bytes=bh.size, task="open")
    p = str(bh.path)
    if impl == "hivex":
        if hivex_worker is None:
            pytest.skip("hivex unavailable (see the summary)")
        measure_external(benchmark, lambda: hivex_worker.call("open", hive=p), budget)
    elif impl == "C-open":
        if walk_floor is None:
            pytest.skip("walk_floor could not be built (see the summary)")
        probe = run_floor(walk_floor, "open", p, 1)
        rounds = max(3, min(200, int(budget / max(probe["best"], 1e-6))))
        feed(benchmark, run_floor(walk_floor, "open", p, rounds)["times"])
    else:
        why = impls.unavailable(impl if impl != "regfast" else "regfast-keys")
        if why:
            loud(f"PEER UNAVAILABLE: {impl}: {why}")
            pytest.skip(why)
        fn = impls.OPEN_ROOT[impl]
        measure(benchmark, lambda: fn(p), budget)


@pytest.mark.parametrize("impl", FIRST_VALUE + ["hivex"])
def bench_first_value(benchmark, request, impl, bench_hive, hivex_worker, budget):
    bh = bench_hive(selected_hives(request.config)[-1])
    benchmark.group = f"first-value-{bh.label}"
    kp, vn = bh.meta["lookups"][0]
    row = "regfast" if impl == "regfast-open" else impl
    benchmark.extra_info.update(impl=row, hive=bh.name, bytes=bh.size, task="first-value",
                                lookup=[kp, vn])
    p = str(bh.path)
    if impl == "hivex":
        if hivex_worker is None:
            pytest.skip("hivex unavailable (see the summary)")
        got = measure_external(benchmark, lambda: hivex_worker.call("first_value", hive=p, key=kp,
                                                                    value=vn), budget)
    else:
        why = impls.unavailable(impl)
        if why:
            loud(f"PEER UNAVAILABLE: {impl}: {why}")
            pytest.skip(why)
        opener, prepare, lookup = impls.LOOKUP[impl]
        arg = prepare([(kp, vn)]) if prepare else [(kp, vn)]

        def first():
            handle = opener(p)
            try:
                return lookup(handle, arg)
            finally:
                impls.close(handle)

        got = measure(benchmark, first, budget)
    assert got["found"] == 1 or not row.startswith("regfast"), f"{row}: {kp}\\{vn} not found"
