"""regfast's pytest plugin, run the way a user's project runs it: inner
pytest sessions through pytester (the plugin comes in through its pytest11
entry point, as installed). Also regfile.parse_reg, which hive_factory uses
for .reg text, checked against regfast's own .reg export."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

import regfast
from regfast.io.export import export_to_string
from regfast.io.regfile import RegSyntaxError, parse_reg
from regfast.io.writer import REG_EXPAND_SZ, REG_QWORD, REG_SZ, Value

from conftest import MIXED_TREE as TREE
from conftest import in_ci, regfast_tree
from wine_session import build_test_agent

pytest_plugins = ["pytester"]


# --- .reg text ----------------------------------------------------------------

def test_parse_reg_rebuilds_what_export_wrote(make_hive, tmp_path):
    built = make_hive(TREE)
    with regfast.open_hive(built.path) as hive:
        text = export_to_string(hive, "reg", prefix=r"HKEY_LOCAL_MACHINE\SOFTWARE")
        want = regfast_tree(hive)
    again = make_hive(parse_reg(text, prefix=r"HKEY_LOCAL_MACHINE\SOFTWARE"))
    with regfast.open_hive(again.path) as hive:
        got = regfast_tree(hive)
    # every value's type and bytes (the export writes hex(n) for all but clean strings)
    assert {p: v["values"] for p, v in got.items()} == {p: v["values"] for p, v in want.items()}


def test_parse_reg_syntax():
    text = "\ufeffWindows Registry Editor Version 5.00\r\n\r\n; a comment\r\n" \
           "[HKEY_CURRENT_USER\\Software\\A]\r\n@=\"def\"\r\n\"q\\\"uote\"=\"back\\\\slash\"\r\n" \
           "\"n\"=dword:0000002a\r\n\"b\"=hex:01,02,\\\r\n  03\r\n\"x\"=hex(2):25,00,00,00\r\n" \
           "\"gone\"=\"x\"\r\n\"gone\"=-\r\n[HKEY_CURRENT_USER\\Software\\a\\Sub]\r\n" \
           "[HKEY_CURRENT_USER\\Software\\Dead]\r\n[-HKEY_CURRENT_USER\\Software\\Dead]\r\n"
    tree = parse_reg(text)
    a = tree.subkeys["Software"].subkeys["A"]           # keys merge case-insensitively
    assert set(tree.subkeys["Software"].subkeys) == {"A"} and set(a.subkeys) == {"Sub"}
    assert a.values[""] == Value(REG_SZ, "def") and a.values['q"uote'] == Value(REG_SZ, "back\\slash")
    assert a.values["n"] == Value(4, 42) and a.values["b"] == Value(3, b"\x01\x02\x03")
    assert a.values["x"] == Value(REG_EXPAND_SZ, b"%\0\0\0") and "gone" not in a.values
    r4 = parse_reg('REGEDIT4\n[HKEY_LOCAL_MACHINE\\K]\n"e"=hex(2):41,00\n"q"=hex(b):01,00,00,00,00,00,00,00\n')
    assert r4.subkeys["K"].values["e"] == Value(REG_EXPAND_SZ, "A\0".encode("utf-16-le"))
    assert r4.subkeys["K"].values["q"] == Value(REG_QWORD, b"\x01" + bytes(7))
    for bad, line in (("[X]\n", 1), ("REGEDIT4\n\"v\"=\"x\"\n", 2), ("REGEDIT4\n[K]\n\"v\"=dword:xyz\n", 3),
                      ("REGEDIT4\n[K]\n\"v\"=\"open\n", 3), ("REGEDIT4\n[K\n", 2)):
        with pytest.raises(RegSyntaxError) as e:
            parse_reg(bad)
        assert e.value.lineno == line, bad
    with pytest.raises(RegSyntaxError, match="not under the prefix"):
        parse_reg("REGEDIT4\n[HKEY_CURRENT_USER\\K]\n", prefix=r"HKEY_LOCAL_MACHINE\SOFTWARE")


def test_parse_reg_lines_end_only_at_cr_and_lf():
    # str.splitlines() also broke lines at U+2028, U+0085, \v, \f, \x1c-\x1e:
    # a string holding one read as "unterminated", and with a "\" before it
    # the continuation rule changed the data ('C:\\\u2028x' read as 'C:x')
    for sep in ("\u2028", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"):
        text = f'Windows Registry Editor Version 5.00\r\n\r\n[K]\r\n"v"="C:\\\\{sep}x"\r\n"w"="a{sep}b"\r\n'
        vals = parse_reg(text).subkeys["K"].values
        assert vals["v"] == Value(REG_SZ, f"C:\\{sep}x") and vals["w"] == Value(REG_SZ, f"a{sep}b"), repr(sep)
    # what export writes for such strings reads back exactly
    tree = {"K": {"s": Value(REG_SZ, "a\u2028b\x0cc"), "t": "C:\\\u2028x"}}
    from regfast.io.writer import build_hive
    data, _ = build_hive(tree, timestamp=0)
    with regfast.Hive.from_buffer(data) as hive:
        back = parse_reg(export_to_string(hive, "reg")).subkeys["K"].values
    assert back["s"] == Value(REG_SZ, "a\u2028b\x0cc") and back["t"] == Value(REG_SZ, "C:\\\u2028x")


def test_parse_reg_reads_the_512_levels_windows_allows():
    # _Node.to_key recursed (two frames a level): 500 levels raised RecursionError
    path = "\\".join(f"L{i}" for i in range(512))
    key = parse_reg(f"REGEDIT4\n[HKEY_LOCAL_MACHINE\\{path}]\n\"v\"=dword:00000001\n")
    for i in range(512):
        (name, key), = key.subkeys.items()
        assert name == f"L{i}"
    assert key.values["v"] == Value(4, 1)


def test_parse_reg_compares_names_as_the_registry_does():
    # "K" and KELVIN SIGN (U+212A) are two names to the registry's upcase
    # table (str.lower() merged them: a value lost, two keys made one); "a"
    # and "A" are one, the first spelling kept
    kelvin = "\u212a"
    tree = parse_reg(f'REGEDIT4\n[X\\K]\n"K"=dword:1\n"{kelvin}"=dword:2\n"k"=dword:3\n[X\\{kelvin}]\n[X\\k]\n')
    x = tree.subkeys["X"]
    assert set(x.subkeys) == {"K", kelvin}
    # a root spelled with the Kelvin sign is no predefined root: kept as a key
    assert set(parse_reg(f"REGEDIT4\n[H{kelvin}EY_LOCAL_MACHINE\\Soft]\n").subkeys) == {f"H{kelvin}EY_LOCAL_MACHINE"}
    assert x.subkeys["K"].values == {"K": Value(4, 3), kelvin: Value(4, 2)}


@pytest.mark.parametrize("bad", ["0x1", "+2", "1_0", "\u0663"])
def test_parse_reg_refuses_what_is_no_hex_byte(bad):
    # int(h, 16) took "0x1", "+2", "1_0" and Arabic-Indic digits: guessed bytes
    with pytest.raises(RegSyntaxError, match="bad hex byte") as e:
        parse_reg(f"REGEDIT4\n[K]\n\"v\"=hex:01,{bad},02\n")
    assert e.value.lineno == 3


# --- the plugin through pytester ------------------------------------------------

def test_plugin_loads_through_its_entry_point_and_is_inert(pytester):
    pytester.makepyfile("""
        import sys
        def test_nothing_imported():
            # the plugin is loaded, but regfast (and numpy) only when a fixture asks
            assert "_regfast_pytest" in sys.modules
            assert "regfast" not in sys.modules and "numpy" not in sys.modules
    """)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    r.assert_outcomes(passed=1)
    r = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
    for name in ("hive_factory", "wine_registry", "wine_prefix", "registry_profile"):
        assert name in r.stdout.str()


def test_hive_factory_from_dict_and_reg_text(pytester):
    pytester.makepyfile(r'''
        import regfast
        from regfast.io.writer import Value, REG_EXPAND_SZ

        REG = """Windows Registry Editor Version 5.00

        [HKEY_LOCAL_MACHINE\SOFTWARE\Vendor\App]
        "Count"=dword:00000003
        "Path"=hex(2):25,00,41,00,25,00,00,00
        """

        def test_dict(hive_factory):
            hive = hive_factory({"Vendor": {"App": {"Count": 3, "Name": "x",
                                                    "Path": Value(REG_EXPAND_SZ, "%A%")}}},
                                file_name="SOFTWARE")
            key = hive.open(r"Vendor\App")
            assert (key["Count"], key["Name"], key["Path"]) == (3, "x", "%A%")
            assert hive.info().file_name.startswith("SOFTWARE")

        def test_reg_text_as_a_path(hive_factory, tmp_path):
            path = hive_factory.path(REG.replace("        ", ""), prefix=r"HKEY_LOCAL_MACHINE\SOFTWARE")
            assert path.parent == tmp_path and path.read_bytes()[:4] == b"regf"
            with regfast.open_hive(path) as hive:
                assert hive.open(r"Vendor\App")["Count"] == 3
                assert hive.open(r"Vendor\App")["Path"] == "%A%"

        HIVES = []

        def test_opened_hives_close_after_the_test(hive_factory):
            HIVES.append(hive_factory({"K": {}}))
            assert not HIVES[0].closed

        def test_then(hive_factory):
            assert HIVES[0].closed

        def test_bad_spec(hive_factory):
            import pytest
            with pytest.raises(TypeError):
                hive_factory(42)

        def test_a_name_used_again_leaves_the_open_hive_as_it_was(hive_factory):
            # before: the second write went into the file the first hive maps,
            # so "before" read 2.0 too and the two diffed as the same
            before = hive_factory({"App": {"Version": "1.0"}}, name="app.hiv")
            after = hive_factory({"App": {"Version": "2.0"}}, name="app.hiv")
            assert before.path == after.path
            assert before.open("App")["Version"] == "1.0" and after.open("App")["Version"] == "2.0"
            assert [c.kind for c in regfast.diff(before, after)] == ["value_changed"]
            # an automatic name never takes the file of an explicit one
            auto = hive_factory.path({"Other": {}})
            assert auto.name != "app.hiv"
            # the mode a plain write gives (umask), not a temporary file's 0600
            import os
            mask = os.umask(0)
            os.umask(mask)
            assert os.stat(auto).st_mode & 0o777 == 0o666 & ~mask
            assert [p.name for p in auto.parent.iterdir() if p.name.endswith(".tmp")] == []

        def test_a_long_name(hive_factory):
            # the file system's longest name: the temporary file must fit too
            hive = hive_factory({"K": {}}, name="h" * 251 + ".hiv")
            assert hive.open("K").name == "K"

        def test_a_name_elsewhere(hive_factory, tmp_path_factory):
            # an absolute name= on another directory (or file system): written there
            other = tmp_path_factory.mktemp("elsewhere") / "x.hiv"
            hive = hive_factory({"K": {"v": 1}}, name=str(other))
            assert hive.path == str(other) and hive.open("K")["v"] == 1

        def test_one_spec_builds_the_same_bytes(hive_factory):
            # before: every key's last-write time was "now" unless given
            a = hive_factory.path({"K": {"S": {"v": 1}}})
            b = hive_factory.path({"K": {"S": {"v": 1}}})
            assert a != b and a.read_bytes() == b.read_bytes()
            assert not regfast.diff(a, b)
            with regfast.open_hive(a) as h:
                assert h.open(r"K\S").last_write_raw == 132_223_104_000_000_000
    ''')
    r = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    r.assert_outcomes(passed=9)


def test_registry_profile_asserts_on_access_patterns(pytester):
    pytester.makepyfile(r'''
        import regfast

        def test_one_open(hive_factory, registry_profile):
            path = hive_factory.path({"K": {"v": 1}})
            with regfast.open_hive(path) as hive:
                hive.open("K")["v"]
            assert registry_profile.count("open_hive", path=str(path)) == 1
            assert registry_profile.round_trips() == 0          # offline: no round trips

        def test_opened_twice_fails(hive_factory, registry_profile):
            path = hive_factory.path({"K": {}})
            for _ in range(2):
                regfast.open_hive(path).close()
            assert registry_profile.count("open_hive", path=str(path)) <= 1
    ''')
    r = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    r.assert_outcomes(passed=1, failed=1)
    r.stdout.fnmatch_lines(["*assert 2 <= 1*"])
    # the profiler is off again after each test
    assert not regfast.hooks.active()


def _agent_exe() -> Path:
    """The agent the suite builds (wine_session.py), for the inner session."""
    for tool in ("x86_64-w64-mingw32-gcc", "cmake", "wine", "wineboot"):
        if not shutil.which(tool):
            msg = f"{tool} is not installed: the wine_registry fixture cannot run"
            if in_ci():
                pytest.fail(msg)
            pytest.skip(msg)
    return build_test_agent()


WINE_TEST = r'''
    import regfast

    def load_settings(reg, names):
        out = {}
        for n in names:                                   # the open-each anti-pattern
            with reg.open_key("HKCU", r"Software\PluginTest\App") as key:
                out[n] = key[n]
        return out

    def test_live_registry_under_wine(wine_registry, wine_prefix, registry_profile):
        key = wine_registry.create_key("HKCU", r"Software\PluginTest\App")
        key.set_value("a", 1)
        key.set_value("b", "two")
        assert "Wine" in wine_registry.description
        out = wine_prefix.run("reg", "query", r"HKCU\Software\PluginTest\App", "/v", "b").stdout
        assert "two" in out
        registry_profile.stop()
        # the pattern under test: read 3 settings
        with regfast.profile() as prof:
            assert load_settings(wine_registry, ["a", "b", "a"]) == {"a": 1, "b": "two"}
        assert prof.count("open_key", path=r"Software\PluginTest\App") == 3
        assert prof.count("get_value") == 3
        assert [o.path for o in prof.open_each()] == [r"Software\PluginTest\App"]   # rf_* rows: the path in its hive
        # 3 x (open, get): a Key.close() sends nothing (the backend caches the handle)
        assert prof.round_trips() == 6
        assert registry_profile.count("set_value") == 2


    def test_remote_backend_under_wine(wine_registry, wine_prefix, registry_profile):
        # the live registry through the C remote backend: its rf_* operations
        # reach registry_profile from the C hook records, with key paths
        import subprocess
        from regfast._native import Hive
        wine_registry.create_key("HKCU", r"Software\PluginTest\Remote").set_value("a", 1)
        proc = subprocess.Popen([wine_prefix.wine, str(wine_prefix.exe)], env=wine_prefix.env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                bufsize=0)
        hive = Hive._remote(proc.stdout.fileno(), proc.stdin.fileno(), 60.0)
        try:
            for _ in range(2):
                assert hive.open(r"Software\PluginTest\Remote")["a"] == 1
        finally:
            hive.close()
            proc.stdin.close()
            proc.wait(timeout=30)
            proc.stdout.close()
        # the create (rf_key_create of wine_registry's remote backend) and the two opens of the other
        assert registry_profile.count("create_key", path=r"Software\PluginTest\Remote") == 1
        assert registry_profile.count("open_key", path=r"Software\PluginTest\Remote") == 2
        assert (registry_profile.columns["backend"] == 3).sum() > 0
        assert registry_profile.count("get_value", path=r"Software\PluginTest\Remote", value="a") == 2
        # the Python client's create + set_value, then the remote backend's agent round trips
        assert registry_profile.round_trips() >= 2 + 2
'''


def test_wine_registry_fixture_runs_the_live_api(pytester, monkeypatch):
    exe = _agent_exe()
    monkeypatch.setenv("REGFAST_AGENT", str(exe))
    pytester.makepyfile(WINE_TEST)
    r = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    r.assert_outcomes(passed=2)


def test_wine_registry_skips_with_a_reason_without_wine(pytester, monkeypatch, tmp_path):
    # PATH without wine: the fixture skips (and says why) instead of failing
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    monkeypatch.setenv("REGFAST_AGENT", sys.executable)        # an existing file: only Wine is missing
    pytester.makepyfile("def test_needs_wine(wine_registry):\n    pass\n")
    r = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", "-rs")
    r.assert_outcomes(skipped=1)
    r.stdout.fnmatch_lines(["*wine is not installed*"])
