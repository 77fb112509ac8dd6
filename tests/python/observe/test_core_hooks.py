"""Hooks and the profiler fed by the C hook records at the rf_* entry
(src/core/rf_hook.c, batched by src/core/rf_oplog.c, bound by
regfast._hooks): offline Key reads are seen, with key paths and value names
as typed records (no request bytes), and Python pre hooks can veto them."""
from __future__ import annotations

import pytest

import regfast
from regfast import hooks


@pytest.fixture(autouse=True)
def no_hooks_left():
    assert not hooks.active()
    yield
    assert not hooks.active(), "a test left a hook or profiler installed"


TREE = {"Software": {"App": {"Name": "x", "Count": 3, "Sub": {"Deep": {"v": 1}}}}, "Other": {}}


def test_offline_key_reads_are_profiled_with_paths(make_hive):
    built = make_hive(TREE)
    with regfast.open_hive(built.path) as hive:
        with regfast.profile() as prof:
            app = hive.open(r"Software\App")
            assert app["Name"] == "x" and app["Count"] == 3
            assert app.open(r"Sub\Deep")["v"] == 1
            assert [k.name for k in app.subkeys()] == ["Sub"]
    assert prof.count("open_key") == 2
    assert prof.count("open_key", path=r"Software\App") == 1
    assert prof.count("open_key", path=r"Software\App\Sub\Deep") == 1
    assert prof.count("get_value", path=r"Software\App") == 2
    assert prof.count("get_value", path=r"Software\App", value="count") == 1
    assert prof.count("get_value", path=r"Software\App\Sub\Deep", value="v") == 1
    assert prof.count("subkeys", path=r"Software\App") >= 1
    assert prof.round_trips() == 0
