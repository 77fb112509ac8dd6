"""Offline hive files above the binding: opening them, their transaction logs,
what kind of hive they are, and the differences between two of them.

* :mod:`~regfast.hive.open` -- ``regfast.open_hive`` (logs replayed when dirty)
* :mod:`~regfast.hive.logs` -- log replay and recovery (``regfast.recover``);
  :mod:`~regfast.hive.logs_format` reads the log files,
  :mod:`~regfast.hive.logs_report` says what was replayed
* :mod:`~regfast.hive.forensics` -- which hive is this, CurrentControlSet
* :mod:`~regfast.hive.diff` -- snapshots and diffs (offline and live alike)

Imports nothing itself: ``regfast.paths``, which the compiled ``_native``
imports, uses :mod:`~regfast.hive.forensics`, and this package's modules
import ``_native`` (the public names are re-exported by :mod:`regfast`).
"""
