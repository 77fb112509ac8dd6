"""The pytest plugin's ``registry_profile`` over offline hives, run as a
user's project runs it (pytester): Key reads of a hive file are operations
it counts, by key path, so an access-pattern regression fails the test.
(The live registry through the plugin: tests/python/test_pytest_plugin.py.)"""
from __future__ import annotations

import regfast

pytest_plugins = ["pytester"]


def test_registry_profile_counts_offline_key_reads(pytester):
    pytester.makepyfile(r'''
        import regfast

        def load(hive, names):
            return {n: hive.open(r"Vendor\App")[n] for n in names}     # one open per setting

        def test_counts_what_a_hive_walk_does(hive_factory, registry_profile):
            hive = hive_factory({"Vendor": {"App": {"a": 1, "b": "two", "Sub": {}}}})
            assert load(hive, ["a", "b"]) == {"a": 1, "b": "two"}
            assert registry_profile.count("open_key", path=r"Vendor\App") == 2
            assert registry_profile.count("get_value", path=r"Vendor\App", value="b") == 1
            assert [k.name for k in hive.open("Vendor").subkeys()] == ["App"]
            assert registry_profile.count("subkeys", path="Vendor") >= 1
            assert registry_profile.round_trips() == 0

        def test_open_once_regression_fails(hive_factory, registry_profile):
            hive = hive_factory({"Vendor": {"App": {"a": 1, "b": "two"}}})
            load(hive, ["a", "b", "a"])
            assert registry_profile.count("open_key", path=r"vendor\app") <= 1
    ''')
    r = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    r.assert_outcomes(passed=1, failed=1)
    r.stdout.fnmatch_lines(["*assert 3 <= 1*"])
    assert not regfast.hooks.active()


def test_registry_profile_is_empty_for_code_outside_the_test(pytester):
    # what a fixture does before the profiler starts is not counted
    pytester.makepyfile(r'''
        import pytest
        import regfast

        @pytest.fixture
        def app(hive_factory):
            hive = hive_factory({"App": {"a": 1}})
            hive.open("App")["a"]
            return hive

        def test_only_the_test_body(app, registry_profile):
            assert registry_profile.count("open_key") == 0
            app.open("App")["a"]
            assert registry_profile.count("open_key", path="App") == 1
    ''')
    r = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    r.assert_outcomes(passed=1)


def test_registry_profile_does_not_inherit_an_earlier_tests_garbage(pytester):
    # a hive the first test leaves in a reference cycle is closed by the
    # garbage collector; that close (an rf_* operation) must not land in the
    # second test's profile
    pytester.makepyfile(r'''
        import gc

        def test_leaves_a_cycle(hive_factory):
            gc.disable()                             # keep the cycle until the next test
            hive = hive_factory.path({"K": {}})
            import regfast
            h = regfast.open_hive(hive)
            cycle = [h]
            cycle.append(cycle)

        def test_profiles_only_itself(registry_profile):
            gc.enable()
            gc.collect()
            assert registry_profile.count("hive_close") == 0
    ''')
    r = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    r.assert_outcomes(passed=2)
