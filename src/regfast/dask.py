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
pandas DataFrame with the types of :func:`regfast.arrow.to_pandas`; the meta
is declared from :data:`regfast.arrow.SCHEMA`, so nothing is read to build
the graph. A hive that cannot be read is its error row, as in scan_many.
The dictionary columns are categoricals whose categories differ between
partitions (declared unknown in the meta: ``.cat.as_known()`` collects
them).

Needs the ``dask`` extra (dask[dataframe], distributed, pyarrow, pandas).
"""
from __future__ import annotations

import os
from typing import Any, Iterable

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
from dask.dataframe.utils import clear_known_categories

from regfast import arrow
from regfast.fleet import _opts, expand_paths, hive_batches

__all__ = ["read_hives", "meta"]


def meta() -> pd.DataFrame:
    """The empty DataFrame every partition matches (categories unknown)."""
    return clear_known_categories(arrow.to_pandas(arrow.SCHEMA.empty_table()))


def _read_hive(path: str, opts: dict) -> pd.DataFrame:
    table = pa.Table.from_batches(list(hive_batches(path, opts)), schema=arrow.SCHEMA)
    return arrow.to_pandas(table)


def read_hives(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *, decode: bool = True,
               errors: str = "skip", include_deleted: bool = False, logs: str | None = "auto",
               batch_rows: int = 65_536) -> Any:
    """A ``dask.dataframe.DataFrame`` of the hives' rows, one partition per hive.

    Parameters are those of :func:`regfast.scan_many` (``paths``: files, a
    directory or a glob, expanded here, on the client). Rows within a
    partition are in key order; partitions in the order of ``paths``.
    """
    opts = _opts(decode, errors, include_deleted, logs, batch_rows)
    plist = expand_paths(paths)
    if not plist:
        raise ValueError(f"no hive in {paths!r}")
    return dd.from_map(_read_hive, plist, opts=opts, meta=meta(), label="read-hives",
                       enforce_metadata=True)
