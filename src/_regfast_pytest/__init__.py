"""The entry point of regfast's pytest plugin (``pytest11``; the fixtures
and their documentation are in :mod:`regfast.pytest_plugin`).

pytest loads this module in every run in an environment where regfast is
installed, so it imports neither regfast nor numpy (~0.3 s): each fixture
imports regfast.pytest_plugin when a test first asks for it — the reason
hypothesis's plugin is a separate top-level module too. It defines fixtures
only; no hook, no option, nothing runs unless a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def hive_factory(tmp_path: Any) -> Iterator[Any]:
    """Throwaway hives from a dict or .reg text: ``hive_factory(spec)`` -> an
    open regfast.Hive, ``hive_factory.path(spec)`` -> its file."""
    from regfast.pytest_plugin import HiveFactory

    factory = HiveFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="session")
def wine_prefix() -> Iterator[Any]:
    """A private Wine prefix with regfast-agent (regfast.pytest_plugin.WinePrefix),
    booted once per session; skips, saying why, where Wine or the agent is missing."""
    from regfast.pytest_plugin import WinePrefix, wine_unavailable

    why = wine_unavailable()
    if why:
        pytest.skip(why)
    prefix = WinePrefix()
    try:
        yield prefix
    finally:
        prefix.close()


@pytest.fixture(scope="session")
def wine_registry(wine_prefix: Any) -> Any:
    """The live registry of the session's Wine prefix: a regfast.Registry."""
    return wine_prefix.connect()


@pytest.fixture
def registry_profile() -> Iterator[Any]:
    """A regfast.observe.profile.Profiler recording the test's regfast operations
    (count(), round_trips(), open_each(), report())."""
    from regfast.pytest_plugin import profile_during

    yield from profile_during()
