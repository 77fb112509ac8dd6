"""The ``regfast`` command line (the ``regfast`` script runs :func:`main`).

The top layer: it uses the library and nothing below imports it.

* :mod:`~regfast.cli.commands` -- the parser, the offline commands (info,
  recover, ls, get, export, scan, sample) and :func:`main`
* :mod:`~regfast.cli.diff`, :mod:`~regfast.cli.live` (agent-path, save-key,
  key-security), :mod:`~regfast.cli.profile`, :mod:`~regfast.cli.fleet`
  (scan-many) -- one module per area
* :mod:`~regfast.cli.support` (exit statuses, error lines, terminal text) and
  :mod:`~regfast.cli.logs` (log replay said on stderr) -- what they share
"""

from __future__ import annotations

from regfast.cli.commands import main

__all__ = ["main"]
