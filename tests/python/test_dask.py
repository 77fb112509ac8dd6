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


def _key(df) -> list[tuple]:
    rows = df[COLS].astype(object).where(df[COLS].notna(), None).itertuples(index=False, name=None)
    return sorted(rows, key=repr)


def test_read_hives_on_a_local_cluster(client):
    files = [str(corpus_path(n)) for n in corpus_names()]
    df = regfast.dask.read_hives(files)
    assert df.npartitions == len(files)
    assert list(df.columns) == arrow.SCHEMA.names
    assert str(df["key_last_write"].dtype) == "datetime64[ns, UTC]" and str(df["data_int"].dtype) == "Int64"
    got = df.compute()
    # every partition matched the declared meta (dtype by dtype)
    assert dict(got.dtypes.astype(str)) == dict(df.dtypes.astype(str))
    want = arrow.to_pandas(regfast.scan_many(files, workers=0).to_table())
    assert len(got) == len(want) and _key(got) == _key(want)
    # the work ran in the worker processes, not here
    pids = set(client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids
    # an analysis on the cluster: values per hive type (error rows have none)
    per_type = df[~df.value_name.isna()].groupby("hive_type", observed=True).size().compute()
    assert per_type["NTUSER"] > 10_000 and per_type["SAM"] > 100


def test_graph_reads_nothing_and_bad_paths_are_error_rows(client, tmp_path):
    missing = str(tmp_path / "no-such-hive")
    df = regfast.dask.read_hives([missing])       # built without touching the file
    rows = df.compute()
    assert len(rows) == 1 and rows["status"].tolist() == [2] and "No such file" in rows["error"].iloc[0]
    with pytest.raises(ValueError):
        regfast.dask.read_hives(str(tmp_path))    # an empty directory: no hive
