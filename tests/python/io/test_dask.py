"""regfast.dask.read_hives on a distributed.LocalCluster of 2 worker
processes: one partition per hive, the declared meta, the same rows as
scan_many, and nothing read while the graph is built."""
from __future__ import annotations

import logging
import os

import pytest

from conftest import corpus_names, corpus_path, in_ci


def _need(module: str):
    if in_ci():
        return __import__(module, fromlist=["_"])        # part of the test extra: must be there
    return pytest.importorskip(module)


dd = _need("dask.dataframe")
distributed = _need("distributed")

import pandas as pd  # noqa: E402

import regfast  # noqa: E402
import regfast.dask  # noqa: E402
from regfast import arrow  # noqa: E402

COLS = ["source", "key_path", "value_name", "value_type", "data_str", "data_int", "status", "deleted"]


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as c:
        yield c
    # (both closed here: the worker processes are gone)


def _key(df) -> pd.DataFrame:
    """The rows as plain strings, sorted: comparable across dtype backends."""
    out = pd.DataFrame({c: df[c].astype(object).where(df[c].notna(), "<NA>").astype(str) for c in COLS})
    return out.sort_values(COLS).reset_index(drop=True)


def test_read_hives_on_a_local_cluster(client):
    files = [str(corpus_path(n)) for n in corpus_names()]
    df = regfast.dask.read_hives(files)
    assert df.npartitions == len(files)
    assert list(df.columns) == arrow.SCHEMA.names
    assert str(df["key_last_write"].dtype) == "timestamp[us, tz=UTC][pyarrow]"
    assert str(df["key_path"].dtype) == "string[pyarrow]" and str(df["data_int"].dtype) == "uint64[pyarrow]"
    df = df.persist()                                # read once, on the workers
    got = df.compute()
    # every partition matched the declared meta (dtype by dtype)
    assert dict(got.dtypes.astype(str)) == dict(df.dtypes.astype(str))
    want = arrow.to_pandas(regfast.scan_many(files, workers=0).to_table())
    pd.testing.assert_frame_equal(_key(got), _key(want))
    # the work ran in the worker processes, not here
    pids = set(client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids
    # an analysis on the cluster: every Run key's values, across the hives
    runs = df[df.key_path.str.endswith("CurrentVersion\\Run")].value_name.dropna().compute()
    assert {"Skype", "Google Update", "ctfmon.exe"} <= set(runs)


def test_numpy_backend_has_the_to_pandas_types(client):
    files = [str(corpus_path(n)) for n in ("ez__SAM", "ez__NotAHive", "plaso__NTUSER.DAT")]
    df = regfast.dask.read_hives(files, dtype_backend="numpy")
    assert str(df["key_last_write"].dtype) == "datetime64[ns, UTC]" and str(df["data_int"].dtype) == "UInt64"
    assert df["value_type"].dtype == "category"
    got = df.compute()
    assert dict(got.dtypes.astype(str)) == dict(df.dtypes.astype(str))
    per_type = got[got.value_name.notna()].groupby("hive_type", observed=True).size()
    assert per_type["NTUSER"] > 5000 and per_type["SAM"] > 50
    with pytest.raises(ValueError, match="dtype_backend"):
        regfast.dask.read_hives(files, dtype_backend="arrow")
    # small hives may share partitions (a big one stays alone)
    packed = regfast.dask.read_hives(files, partition_bytes=600_000)
    assert packed.npartitions == 2                         # 262,144 + 17,920 | 786,432 bytes
    assert len(packed) == len(got)


def test_graph_reads_nothing_and_bad_paths_are_error_rows(client, tmp_path):
    missing = str(tmp_path / "no-such-hive")
    df = regfast.dask.read_hives([missing])       # built without touching the file
    rows = df.compute()
    assert len(rows) == 1 and rows["status"].tolist() == [2] and "No such file" in rows["error"].iloc[0]
    with pytest.raises(ValueError):
        regfast.dask.read_hives(str(tmp_path))    # an empty directory: no hive
