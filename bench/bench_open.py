"""Opening a hive: open + root key + close, on the largest selected hive
(group open-100MB by default). regfast validates every hbin and cell header
at open; hivex does a similar pass; some peers read only the base block."""
import pytest

from conftest import feed, impls, loud, measure, measure_external, run_floor, selected_hives


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
