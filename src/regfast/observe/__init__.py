"""Seeing what regfast does: :mod:`~regfast.observe.hooks` (pre/post callbacks
on every live operation and on ``open_hive``, with vetoes) and
:mod:`~regfast.observe.profile` (``regfast.profile()``: an access profiler
over the same hook points).

Imports nothing itself (the public names are re-exported by :mod:`regfast`).
"""
