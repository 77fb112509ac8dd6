"""Files regfast writes, and hives read many at a time.

* :mod:`~regfast.io.writer` -- regf hives built from a tree (the tests' oracle,
  ``save_key``'s writer); :mod:`~regfast.io.logwriter` -- transaction logs
* :mod:`~regfast.io.export` -- .reg / JSON / CSV export;
  :mod:`~regfast.io.regfile` -- .reg text to a writer tree;
  :mod:`~regfast.io.sample` -- ``regfast sample``
* :mod:`~regfast.io.fleet` -- ``regfast.scan_many``: many hives in worker
  processes, Arrow record batches or a Parquet dataset out

Imports nothing itself (the public names are re-exported by :mod:`regfast`).
"""
