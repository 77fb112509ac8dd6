"""Hives as a Dask DataFrame: the rows of :func:`regfast.scan_many` on a cluster.

::

    from distributed import Client
    import regfast.dask

    client = Client("scheduler:8786")              # or distributed.LocalCluster()
    df = regfast.dask.read_hives(paths)            # one partition per hive
    runs = df[df.key_path.str.endswith(r"\\CurrentVersion\\Run")]
    runs[["source", "value_name", "data_str"]].compute()

Built with ``dask.dataframe.from_map``: each task gets a path (only the path
travels), opens and scans that hive on the worker, and returns its rows as a
pandas DataFrame (Arrow-backed dtypes by default; see ``dtype_backend``); the
meta is declared from :data:`regfast.arrow.SCHEMA`, so nothing is read to
build the graph. A hive that cannot be read is its error row, as in
scan_many.

Needs the ``dask`` extra (dask[dataframe], distributed, pyarrow, pandas).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
from dask.dataframe.utils import clear_known_categories

from regfast import arrow
from regfast.io.fleet import _opts, expand_paths, hive_batches

__all__ = ["read_hives", "meta", "BACKENDS"]


BACKENDS = ("pyarrow", "numpy")


def _arrow_frame(table: pa.Table) -> pd.DataFrame:
    # dictionary columns decoded to strings: pandas' ArrowDtype handles
    # strings fully (.str, comparisons), dictionaries hardly
    cols = [c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.Table.from_arrays(cols, names=table.column_names).to_pandas(types_mapper=pd.ArrowDtype)


def meta(dtype_backend: str = "pyarrow") -> pd.DataFrame:
    """The empty DataFrame every partition matches."""
    empty = arrow.SCHEMA.empty_table()
    if dtype_backend == "pyarrow":
        return _arrow_frame(empty)
    return clear_known_categories(arrow.to_pandas(empty))


def _read_hives(paths: list[str], opts: dict[str, Any], dtype_backend: str) -> pd.DataFrame:
    """One partition: the rows of one hive (or of a group of small ones)."""
    # read into memory, not mapped: a task may run in the caller's process
    # (dask's threaded scheduler), where a hive cut short would fault (see
    # regfast.io.fleet._open)
    opts = dict(opts, copy=True)
    batches = [b for p in paths for b in hive_batches(p, opts)]
    table = pa.Table.from_batches(batches, schema=arrow.SCHEMA)
    return _arrow_frame(table) if dtype_backend == "pyarrow" else arrow.to_pandas(table)


def _groups(paths: list[str], partition_bytes: int | None) -> list[list[str]]:
    if not partition_bytes:
        return [[p] for p in paths]
    out: list[list[str]] = []
    cur: list[str] = []
    acc = 0
    for p in paths:
        try:
            n = os.stat(p).st_size
        except OSError:
            n = 0  # (its error row is made on the worker)
        if cur and acc + n > partition_bytes:
            out.append(cur)
            cur, acc = [], 0
        cur.append(p)
        acc += n
    if cur:
        out.append(cur)
    return out


def read_hives(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    decode: bool = True,
    errors: str = "skip",
    include_deleted: bool = False,
    logs: str | None = "auto",
    batch_rows: int = 65_536,
    dtype_backend: str = "pyarrow",
    partition_bytes: int | None = None,
) -> Any:
    """A ``dask.dataframe.DataFrame`` of the hives' rows, one partition per hive.

    Parameters are those of :func:`regfast.scan_many` (``paths``: files, a
    directory or a glob, expanded here, on the client), and:

    dtype_backend
        ``"pyarrow"`` (default): every column an Arrow-backed pandas dtype
        (``string[pyarrow]``, ``timestamp[us, tz=UTC][pyarrow]``,
        ``uint64[pyarrow]`` (data_int), ``binary[pyarrow]``, ``list<string>[pyarrow]``):
        a partition is a view of the Arrow rows (~1 ms for a small hive).
        ``"numpy"``: the types of :func:`regfast.arrow.to_pandas`
        (datetime64[ns, UTC], categoricals with unknown categories, UInt64 data_int),
        ~10x the conversion cost per partition.
    partition_bytes
        None (default): one partition per hive. A size: consecutive small
        hives share a partition until their files add up to it (a bigger hive
        stays alone) — a Dask task costs about a millisecond of scheduling
        (tens on a loaded machine), more than scanning an 8 KB hive.

    Rows within a partition are in key order; partitions in the order of ``paths``.
    """
    if dtype_backend not in BACKENDS:
        raise ValueError(f"dtype_backend must be one of {BACKENDS}, got {dtype_backend!r}")
    opts = _opts(decode, errors, include_deleted, logs, batch_rows)
    plist = expand_paths(paths)
    if not plist:
        raise ValueError(f"no hive in {paths!r}")
    return dd.from_map(
        _read_hives,
        _groups(plist, partition_bytes),
        opts=opts,
        dtype_backend=dtype_backend,
        meta=meta(dtype_backend),
        label="read-hives",
        enforce_metadata=True,
    )
