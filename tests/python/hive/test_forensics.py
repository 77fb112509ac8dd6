"""Hive-type detection and CurrentControlSet resolution (regfast.hive.forensics),
on writer-built hives that mimic each kind of hive: the file name Windows
stores in the base block (the tail of the load path, at most 31
characters) and the characteristic keys at the root."""
from __future__ import annotations

import pytest

import regfast
from regfast.cli import main
from regfast.hive.forensics import (
    HIVE_TYPES, current_control_set, detect_hive_type, open_key, resolve_path,
)
from regfast.io.logwriter import make_dirty_hive
from regfast.io.writer import build_hive

from conftest import expected_tree, regfast_tree

USER = {"AppEvents": {}, "Console": {}, "Control Panel": {"Desktop": {}}, "Environment": {"TEMP": "x"},
        "EUDC": {}, "Keyboard Layout": {}, "Network": {}, "Printers": {}, "System": {},
        "Software": {"Microsoft": {"Windows": {"CurrentVersion": {"Explorer": {}}}}}}

KINDS = {
    "SYSTEM": (r"emRoot\System32\Config\SYSTEM", {
        "Select": {"Current": 1, "Default": 1, "LastKnownGood": 2},
        "ControlSet001": {"Services": {}}, "ControlSet002": {}, "MountedDevices": {}, "Setup": {},
        "DriverDatabase": {}, "HardwareConfig": {}, "WPA": {}, "RNG": {}}),
    "SOFTWARE": (r"emRoot\System32\Config\SOFTWARE", {
        "Microsoft": {"Windows NT": {"CurrentVersion": {"ProductName": "Windows 10 Pro"}}},
        "Classes": {}, "Clients": {}, "ODBC": {}, "Policies": {}, "RegisteredApplications": {},
        "WOW6432Node": {}}),
    "SAM": (r"\SystemRoot\System32\Config\SAM", {"SAM": {"Domains": {"Account": {}}, "LastSkuUpgrade": 0}}),
    "SECURITY": (r"emRoot\System32\Config\SECURITY", {
        "Cache": {}, "Policy": {"Secrets": {}}, "RXACT": {}, "SAM": {}}),
    "NTUSER": (r"\??\C:\Users\alice\ntuser.dat", USER),
    "DEFAULT": (r"emRoot\System32\Config\DEFAULT", USER),
    "UsrClass": (r"\Microsoft\Windows\UsrClass.dat", {
        "*": {}, ".pdf": {}, ".txt": {}, ".zip": {}, "AppID": {}, "CLSID": {}, "Directory": {},
        "Interface": {}, "TypeLib": {},
        "Local Settings": {"Software": {"Microsoft": {"Windows": {"Shell": {}}}}}}),
    "Amcache": (r"ppCompat\Programs\Amcache.hve", {"Root": {"InventoryApplicationFile": {},
                                                           "InventoryApplication": {}}}),
    "BCD": (r"\Device\HarddiskVolume1\BCD", {
        "Description": {"KeyName": "BCD00000000"},
        "Objects": {"{9dea862c-5cdd-4e70-acc1-f32b344d4795}": {"Elements": {}}}}),
    "COMPONENTS": (r"\System32\Config\COMPONENTS", {
        "CanonicalData": {}, "DerivedData": {}, "ServicingStackVersions": {}}),
    "DRIVERS": (r"\System32\Config\DRIVERS", {"DriverDatabase": {"DriverInfFiles": {}}}),
    "APP": (r"\Settings\settings.dat", {"LocalState": {}, "RoamingState": {}}),
}


def _open(tmp_path, tree, file_name="", name="hive"):
    path = tmp_path / name
    path.write_bytes(build_hive(tree, file_name=file_name, timestamp=0)[0])
    return regfast.open_hive(path)


def test_every_kind_has_a_fixture():
    assert set(KINDS) == set(HIVE_TYPES)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_name_and_root_keys_give_high_confidence(tmp_path, kind):
    stored, tree = KINDS[kind]
    assert len(stored) <= 31
    with _open(tmp_path, tree, stored) as hive:
        t = detect_hive_type(hive)
    assert t.name == kind and t.confidence >= 0.9, t
    assert any("stored file name" in e for e in t.evidence) and any("root keys" in e for e in t.evidence)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_stored_name_alone(tmp_path, kind):
    with _open(tmp_path, {"Unrelated": {}}, KINDS[kind][0]) as hive:
        t = detect_hive_type(hive)
    assert t.name == kind and 0.6 <= t.confidence < 0.8, t


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_root_keys_alone(tmp_path, kind):
    with _open(tmp_path, KINDS[kind][1]) as hive:
        t = detect_hive_type(hive)
    # DEFAULT is a user profile hive: by its keys alone it is an NTUSER
    want = "NTUSER" if kind == "DEFAULT" else kind
    assert t.name == want and 0.6 <= t.confidence <= 0.8, t
    assert not any("stored file name" in e for e in t.evidence)


def test_unknown_and_conflicting_clues(tmp_path):
    with _open(tmp_path, {"Foo": {"Bar": {}}}, r"C:\evidence\blob.bin", "a") as hive:
        t = detect_hive_type(hive)
    assert t.name == "unknown" and t.confidence == 0
    # named SYSTEM, shaped like SOFTWARE: the keys win, SYSTEM is the runner-up
    with _open(tmp_path, KINDS["SOFTWARE"][1], KINDS["SYSTEM"][0], "b") as hive:
        t = detect_hive_type(hive)
    assert t.name == "SOFTWARE" and t.alternatives[0][0] == "SYSTEM"
    assert t.confidence > t.alternatives[0][1]
    assert str(t).startswith("SOFTWARE (")


SYSTEM_TREE = {
    "Select": {"Current": 2, "Default": 1, "LastKnownGood": 3, "Failed": 0},
    "ControlSet001": {"Services": {"Tcpip": {"Start": 1}}},
    "ControlSet002": {"Services": {"Tcpip": {"Start": 2}, "Dhcp": {}}},
    "ControlSet003": {"Services": {"Tcpip": {"Start": 3}}},
}


def test_current_control_set_follows_select_current(tmp_path):
    with _open(tmp_path, SYSTEM_TREE, KINDS["SYSTEM"][0]) as hive:
        assert current_control_set(hive) == "ControlSet002"
        assert resolve_path(hive, r"CurrentControlSet\Services\Tcpip") == r"ControlSet002\Services\Tcpip"
        assert resolve_path(hive, r"\currentcontrolset\services") == r"ControlSet002\services"
        assert resolve_path(hive, r"HKLM\SYSTEM\CurrentControlSet\Services") == r"ControlSet002\Services"
        assert resolve_path(hive, r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet") == "ControlSet002"
        assert resolve_path(hive, r"CurrentControlSetX\Services") == r"CurrentControlSetX\Services"
        assert resolve_path(hive, r"ControlSet001\Services") == r"ControlSet001\Services"
        assert open_key(hive, r"CurrentControlSet\Services\Tcpip")["Start"] == 2
        assert open_key(hive, r"CurrentControlSet\Services\Dhcp").path == r"ControlSet002\Services\Dhcp"


def test_current_control_set_fallbacks(tmp_path):
    tree = dict(SYSTEM_TREE, Select={"Current": 7, "Default": 3})      # 7 does not exist
    with _open(tmp_path, tree, name="a") as hive:
        assert current_control_set(hive) == "ControlSet003"
    tree = {k: v for k, v in SYSTEM_TREE.items() if k != "Select"}
    with _open(tmp_path, tree, name="b") as hive:
        assert current_control_set(hive) == "ControlSet001"
    with _open(tmp_path, {"Select": {"Current": 1}}, name="c") as hive:
        assert current_control_set(hive) is None
        assert resolve_path(hive, r"Select") == "Select"
        with pytest.raises(FileNotFoundError) as e:
            resolve_path(hive, r"CurrentControlSet\Services")
        assert e.value.winerror == 2


def test_current_control_set_after_log_replay(tmp_path):
    """The logged change of Select\\Current is what CurrentControlSet follows."""
    old = dict(SYSTEM_TREE, Select={"Current": 1, "Default": 1})
    imgs = [build_hive(t, file_name="SYSTEM", timestamp=0, sequence=(5, 5))[0] for t in (old, SYSTEM_TREE)]
    make_dirty_hive(imgs).write(tmp_path / "SYSTEM")
    with pytest.warns(regfast.DirtyHiveWarning):
        with regfast.open_hive(tmp_path / "SYSTEM", logs=None) as stale:
            assert open_key(stale, r"CurrentControlSet\Services\Tcpip")["Start"] == 1
    with regfast.open_hive(tmp_path / "SYSTEM") as hive:
        assert regfast_tree(hive) == expected_tree(SYSTEM_TREE)
        assert open_key(hive, r"CurrentControlSet\Services\Tcpip")["Start"] == 2
        t = detect_hive_type(hive)
        assert t.name == "SYSTEM" and t.confidence > 0.9


def test_info_cli_prints_the_hive_type(tmp_path, capsys):
    path = tmp_path / "NTUSER.DAT"
    path.write_bytes(build_hive(USER, file_name=KINDS["NTUSER"][0], timestamp=0)[0])
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "hive type     NTUSER (9" in out
    assert "logs          none found; not applied: no transaction logs found" in out
