"""Reading many values of one key: 10,000 REG_SZ values of 256 bytes in one
key (the wide-10k hive). Group read-values-10k.

regfast rows: a Python loop of key[name] (the baseline), one
key.read_values(names).as_str(), key.read_values().to_dict() (all values, no
names given), and {v.name: v.value for v in key.values()}. Peers read all
values of the key, decoded, their usual way. Opening the key is included;
opening the hive is not.
"""
import pytest

from conftest import impls, loud, measure, measure_external


@pytest.mark.parametrize("impl", list(impls.READ_KEY) + ["hivex"])
def bench_read_values(benchmark, impl, bench_hive, hivex_worker, budget):
    import hives
    bh = bench_hive("wide-10k")
    names = bh.meta["names"]
    key = hives.WIDE_KEY_PATH
    benchmark.group = "read-values-10k"
    benchmark.extra_info.update(impl=impl, hive=bh.name, bytes=bh.size, rows=len(names),
                                task="read_values")
    p = str(bh.path)
    if impl == "hivex":
        if hivex_worker is None:
            pytest.skip("hivex unavailable (see the summary)")
        got = measure_external(benchmark, lambda: hivex_worker.call("read_key", hive=p, key=key),
                               budget)
    else:
        why = impls.unavailable(impl)
        if why:
            loud(f"PEER UNAVAILABLE: {impl}: {why}")
            pytest.skip(why)
        opener, read = impls.READ_KEY[impl]
        handle = opener(p)
        try:
            got = measure(benchmark, lambda: read(handle, key, names), budget)
        finally:
            impls.close(handle)
    benchmark.extra_info["counts"] = got
    assert got["values"] == len(names), (impl, got)
