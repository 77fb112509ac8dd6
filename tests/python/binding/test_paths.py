"""Paths as stored and as practitioners write them.

* Names as stored: a key opened as ``control panel`` reports the path the
  hive stores (``Control Panel``), everywhere a path is built.
* ``CurrentControlSet`` resolves through ``Select\\Current`` on a SYSTEM hive.
* An ``HKLM\\SOFTWARE\\``-style prefix that matches the hive's type is
  stripped; one that does not match is an error, not a guess.
* get_many takes (key path, value name) pairs, so value names holding a
  backslash (real SYSTEM hives have ``HTREE\\ROOT\\0``) can be read.

No real hive of the corpus is a SYSTEM or SOFTWARE hive, so these are
writer-made (checked by hivex elsewhere); the NTUSER prefix case uses a real
Windows 7 NTUSER.DAT from plaso's test data.
"""
from __future__ import annotations

import pytest

import regfast
from regfast.cli import main
from regfast.io.writer import REG_SZ, Value

from conftest import corpus_path

SYSTEM_TREE = {
    "Select": {"Current": 2, "Default": 1, "LastKnownGood": 1},
    "ControlSet001": {"Services": {"Old": {"Start": 1}}, "Control": {}},
    "ControlSet002": {"Services": {"Tcpip": {"Start": 2, "Parameters": {"Domain": "corp"}}},
                      "Control": {}, "Enum": {"HTREE\\ROOT\\0": "root device", "0": "zero"}},
    "MountedDevices": {},
    "Setup": {},
}

SOFTWARE_TREE = {
    "Microsoft": {"Windows NT": {"CurrentVersion": {"ProductName": "Windows 10 Pro"}},
                  "Windows": {"CurrentVersion": {}}},
    "Classes": {},
    "Policies": {},
    "Clients": {},
}

USER_TREE = {"Control Panel": {"Desktop": {"Wallpaper": "a.bmp", "Sub": {"Leaf": {"v": 1}}}},
             "Software": {"Microsoft": {"Windows": {"CurrentVersion": {"Explorer": {}}}}},
             "Environment": {}, "Console": {}}


@pytest.fixture
def system(make_hive):
    return make_hive(SYSTEM_TREE, file_name="\\REGISTRY\\MACHINE\\SYSTEM").path


@pytest.fixture
def software(make_hive):
    return make_hive(SOFTWARE_TREE, file_name="SOFTWARE").path


@pytest.fixture
def user(make_hive):
    return make_hive(USER_TREE, file_name="\\??\\C:\\Users\\x\\ntuser.dat").path


# --- names as stored ----------------------------------------------------------

def test_open_returns_stored_spelling(user):
    with regfast.open_hive(user) as h:
        k = h.open("control panel\\DESKTOP")
        assert k.path == "Control Panel\\Desktop"
        assert h.open("\\CONTROL PANEL\\desktop\\").path == "Control Panel\\Desktop"
        assert k.open("sub\\LEAF").path == "Control Panel\\Desktop\\Sub\\Leaf"
        assert k.subkey("SUB").path == "Control Panel\\Desktop\\Sub"
        assert [c.path for c in k.subkeys()] == ["Control Panel\\Desktop\\Sub"]
        assert k.open("sub").parent.path == "Control Panel\\Desktop"
        assert repr(k) == "<regfast.Key 'Control Panel\\\\Desktop'>"
        assert [x.path for x in h.walk("CONTROL PANEL")] == [
            "Control Panel", "Control Panel\\Desktop", "Control Panel\\Desktop\\Sub",
            "Control Panel\\Desktop\\Sub\\Leaf"]
        t = h.scan("control panel\\desktop")
        assert t.root_path == "Control Panel\\Desktop"
        assert t.key_paths() == ["Control Panel\\Desktop", "Control Panel\\Desktop\\Sub",
                                 "Control Panel\\Desktop\\Sub\\Leaf"]
        assert h.root.open("control panel").path == "Control Panel"


def test_ls_prints_stored_spelling(user, capsys):
    assert main(["ls", str(user), "control panel\\desktop"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "\\Control Panel\\Desktop"


# --- CurrentControlSet ----------------------------------------------------------

def test_current_control_set_follows_select_current(system):
    with regfast.open_hive(system) as h:
        k = h.open(r"CurrentControlSet\Services\Tcpip")
        assert k.path == r"ControlSet002\Services\Tcpip"
        assert k["Start"] == 2
        assert h.open("currentcontrolset").path == "ControlSet002"
        assert h.open(r"\CurrentControlSet\Services\TCPIP\Parameters")["Domain"] == "corp"
        assert h.open(r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip").path == r"ControlSet002\Services\Tcpip"
        assert h.open(r"HKEY_LOCAL_MACHINE\System\CurrentControlSet").path == "ControlSet002"
        assert h.get_many([r"CurrentControlSet\Services\Tcpip\Start",
                           (r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip", "Start")]) == [2, 2]
        assert h.scan(r"CurrentControlSet\Services").key_paths()[0] == r"ControlSet002\Services"
        assert [k.path for k in h.walk(r"CurrentControlSet\Services")][0] == r"ControlSet002\Services"
        with pytest.raises(FileNotFoundError):
            h.open(r"CurrentControlSet\Services\Old")          # only in ControlSet001


def test_current_control_set_without_select_is_not_found(make_hive):
    tree = {k: v for k, v in SYSTEM_TREE.items() if k != "Select"}
    with regfast.open_hive(make_hive(tree, file_name="SYSTEM").path) as h:
        with pytest.raises(FileNotFoundError) as e:
            h.open(r"CurrentControlSet\Services")
        assert "Select" in str(e.value)
    tree = dict(SYSTEM_TREE, Select={"Current": 7})                  # names a missing set
    with regfast.open_hive(make_hive(tree, file_name="SYSTEM").path) as h:
        with pytest.raises(FileNotFoundError) as e:
            h.open(r"CurrentControlSet\Services")
        assert "ControlSet007" in str(e.value)


def test_current_control_set_on_other_hives_is_just_a_name(user, make_hive):
    with regfast.open_hive(user) as h:
        with pytest.raises(FileNotFoundError):
            h.open("CurrentControlSet")
    # a hive that stores a real CurrentControlSet key (an export of a live system): it wins
    tree = dict(SYSTEM_TREE, CurrentControlSet={"Services": {}})
    with regfast.open_hive(make_hive(tree, file_name="SYSTEM").path) as h:
        assert h.open(r"CurrentControlSet\Services").path == r"CurrentControlSet\Services"


def test_cli_get_and_ls_resolve_current_control_set(system, capsys):
    assert main(["get", str(system), r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip", "Start"]) == 0
    assert capsys.readouterr().out.strip() == "REG_DWORD 2"
    assert main(["ls", str(system), r"CurrentControlSet\Services"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == r"\ControlSet002\Services" and out[1].strip() == "Tcpip\\"


# --- hive-root prefixes ------------------------------------------------------------

def test_prefix_matching_the_hive_type_is_stripped(software):
    with regfast.open_hive(software) as h:
        want = r"Microsoft\Windows NT\CurrentVersion"
        for p in (r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion",
                  r"HKEY_LOCAL_MACHINE\Software\microsoft\windows nt\currentversion",
                  r"\HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion"):
            assert h.open(p).path == want
        assert h.open(r"HKLM\SOFTWARE") == h.root
        assert h.get_many([r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProductName"]) == [
            "Windows 10 Pro"]


def test_a_stored_key_named_like_a_prefix_is_that_key(make_hive):
    tree = dict(SOFTWARE_TREE, HKLM={"Odd": {"X": 1}})
    with regfast.open_hive(make_hive(tree, file_name="SOFTWARE").path) as h:
        assert h.open(r"hklm\Odd")["X"] == 1
        assert h.open(r"HKLM\Odd").path == r"HKLM\Odd"
        with pytest.raises(FileNotFoundError):
            h.open(r"HKLM\SOFTWARE\Microsoft")


def test_prefix_not_matching_the_hive_type_is_an_error(software, system):
    with regfast.open_hive(software) as h:
        for p in (r"HKLM\SYSTEM\Select", r"HKCU\Software", r"HKEY_USERS\.DEFAULT\Software",
                  r"HKLM\SAM\SAM"):
            with pytest.raises(FileNotFoundError) as e:
                h.open(p)
            assert "SOFTWARE" in str(e.value), p
    with regfast.open_hive(system) as h:
        with pytest.raises(FileNotFoundError) as e:
            h.open(r"HKLM\SOFTWARE\Microsoft")
        assert "SYSTEM" in str(e.value)


def test_prefix_on_a_hive_of_unknown_type_is_an_error(make_hive):
    with regfast.open_hive(make_hive({"Foo": {"Bar": {}}}).path) as h:
        assert h.open(r"Foo\Bar").path == r"Foo\Bar"
        with pytest.raises(FileNotFoundError) as e:
            h.open(r"HKLM\SOFTWARE\Foo")
        assert "type" in str(e.value)


def test_hkcu_prefix_on_a_real_ntuser():
    # plaso test data (Apache-2.0): NTUSER.DAT of a Windows 7 machine
    with regfast.open_hive(corpus_path("plaso__NTUSER-WIN7.DAT")) as h:
        k = h.open(r"HKCU\software\microsoft\windows\currentversion\explorer")
        assert k.path == r"Software\Microsoft\Windows\CurrentVersion\Explorer"
        assert h.open(r"HKEY_CURRENT_USER\Software") == h.open("Software")
        with pytest.raises(FileNotFoundError):
            h.open(r"HKLM\SOFTWARE\Microsoft")


# --- get_many pairs ------------------------------------------------------------------

def test_get_many_pairs_reach_names_with_backslashes(system):
    with regfast.open_hive(system) as h:
        enum = r"ControlSet002\Enum"
        assert h.get_many([(enum, "HTREE\\ROOT\\0")]) == ["root device"]
        assert h.get_many([(enum, "htree\\root\\0"), (enum, "0"), enum + "\\0"]) == [
            "root device", "zero", "zero"]
        # the string form splits at the last backslash: that names key Enum\HTREE\ROOT
        assert h.get_many([enum + "\\HTREE\\ROOT\\0"], default="missing") == ["missing"]
        with pytest.raises(FileNotFoundError):
            h.get_many([enum + "\\HTREE\\ROOT\\0"])
        assert h.get_many([("CurrentControlSet\\Enum", "HTREE\\ROOT\\0"), (enum, "nope")],
                          default=None) == ["root device", None]
        with pytest.raises(TypeError):
            h.get_many([(enum,)])


def test_get_many_pairs_hivex_agrees(system):
    from oracle import hivex_info, require_hivex
    require_hivex()
    vals = hivex_info(system)["keys"][r"ControlSet002\Enum"]["values"]
    t, raw = vals["HTREE\\ROOT\\0"]
    assert t == REG_SZ and raw.decode("utf-16-le").rstrip("\0") == "root device"
