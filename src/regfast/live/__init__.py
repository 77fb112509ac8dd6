"""The live registry, through regfast-agent (a pipe, Wine, ssh) or in-process
on Windows.

* :mod:`~regfast.live.registry` -- ``Registry``, ``Key``, ``connect``,
  ``open_key``, ``local`` (the protocol client: what regfast.hooks sees today)
* :mod:`~regfast.live.remote` (``connect(..., backend="remote")``: the C remote
  backend) and :mod:`~regfast.live.local` (``local(backend="nt")``: the NT
  backend in-process, Windows) -- registries whose keys are the one
  :class:`regfast.Key`, on the shared :mod:`~regfast.live.hives` base
* :mod:`~regfast.live.admin` (rename, security, privileges, hive files),
  :mod:`~regfast.live.watch` (change notification as diffs),
  :mod:`~regfast.live.transaction` (KTM or a journal: :mod:`~regfast.live.journal`,
  :mod:`~regfast.live.undo`)
* :mod:`~regfast.live.protocol` -- frames and the ``Connection`` to the agent
  (op numbers: the generated :mod:`~regfast.live._agent_ops`);
  :mod:`~regfast.live.inproc` -- the same requests in this process (Windows);
  :mod:`~regfast.live.agent` -- building and finding regfast-agent.exe
* :mod:`~regfast.live.roots` (root keys, access masks, views) and
  :mod:`~regfast.live.snapshot` (the agent's snapshot format) -- shared names

Imports nothing itself (the public names are re-exported by :mod:`regfast`).
"""
