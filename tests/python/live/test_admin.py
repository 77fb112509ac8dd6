"""Administration of the live registry through regfast-agent, under Wine:
rename, security (SDDL get/set, grant, ownership), privileges, hive files
(regfast's own save_key, RegSaveKeyExW/RegLoadKeyW as Wine really does them),
MUI strings — and bad input everywhere.

What Wine only stubs (RegRestoreKeyW, RegReplaceKeyW, RegLoadAppKeyW return
success and do nothing; shared/reference/wine-registry.md) is never tested
for success here: under Wine the tests check that regfast *refuses* to
report a stub's success (winerror 120) and rejects bad input before any
call; the real behaviour is tested by the Windows-only tests at the end
(run natively by the wheel job of .github/workflows/windows.yml).
"""
from __future__ import annotations

import os
import re
import struct
import sys
import threading
import time

import pytest

import regfast
from regfast.live.snapshot import parse_snapshot
from conftest import regfast_tree
from regfast.live import admin
from regfast.live import _agent_ops as ops
from regfast.live import protocol as A
from regfast.live import registry as live
from regfast.live.protocol import Reader
from regfast.exceptions import NotAHiveError
from regfast.io.writer import (
    REG_BINARY, REG_DWORD, REG_EXPAND_SZ, REG_MULTI_SZ, REG_QWORD, REG_SZ, write_hive,
)
from wine_session import registry, sandbox, wine  # noqa: F401  (shared fixtures)

def _winerror(excinfo) -> int:
    return getattr(excinfo.value, "winerror", None)


def _owner(key: live.Key) -> str:
    """The key's owner (Wine: Administrators, BA, for keys its processes create)."""
    m = re.match(r"O:(S-[0-9-]+|[A-Z]{2})", key.security())
    assert m, key.security()
    return m.group(1)


def _dacl(sddl: str) -> str:
    return sddl[sddl.index("D:"):].split("S:")[0]


# ---------------------------------------------------------------------------
# Rename
# ---------------------------------------------------------------------------

def test_rename_keeps_values_and_subkeys_and_the_old_name_is_gone(registry, sandbox):
    k = sandbox.create_key("old")
    k.set_value("s", "text")
    k.set_value("n", 7)
    k.create_key("child").close()
    # a read-only handle of the same agent caches the old path first
    ro = registry.open_key("HKCU", k.path)
    assert ro["s"] == "text"
    ro.close()
    old_path = k.path
    k.rename("new")
    assert k.path == sandbox.path + "\\new"
    assert k["s"] == "text"                      # the Key follows its key
    with registry.open_key("HKCU", sandbox.path + "\\new") as n:
        assert n["n"] == 7 and n.subkey_names() == ["child"]
    with pytest.raises(FileNotFoundError) as e:
        registry.open_key("HKCU", old_path)
    assert _winerror(e) == 2
    assert sandbox.subkey_names() == ["new"]


def test_rename_other_handles_on_the_old_path_stop_writing(wine, registry, sandbox):
    """Other agent handles on the old path (or below it) that already hold a
    Win32 handle for writes must not go on writing into the renamed key while
    their reads fail: after the rename they all say 1018 (the key they
    named is gone: regfast.Key.rename's contract) or 2."""
    k = sandbox.create_key("old")
    k.create_key("child").close()
    same = registry.open_key("HKCU", k.path, access=live.KEY_ALL_ACCESS)
    below = registry.open_key("HKCU", k.path + "\\child", access=live.KEY_ALL_ACCESS)
    same.set_value("before", 1)                  # each caches its Win32 write handle
    below.set_value("before", 1)
    k.rename("new")
    for h in (same, below):
        for write in (lambda: h.set_value("after", 2), lambda: h.delete_value("before")):
            with pytest.raises(OSError) as e:
                write()
            assert _winerror(e) in (1018, 2)
        with pytest.raises(OSError) as e:
            list(h.values())
        assert _winerror(e) in (1018, 2)
    same.close()
    below.close()
    # checked by another process: the renamed keys got nothing after the rename
    other = wine.connect()
    try:
        for p in ("new", "new\\child"):
            with other.open_key("HKCU", sandbox.path + "\\" + p) as n:
                assert n["before"] == 1 and "after" not in n
    finally:
        other.close()


def test_rename_clash_is_183_and_changes_nothing(sandbox):
    a = sandbox.create_key("a")
    a.set_value("v", 1)
    sandbox.create_key("b").close()
    with pytest.raises(OSError) as e:
        a.rename("B")                                # names compare case-insensitively
    assert _winerror(e) == 183
    assert sorted(sandbox.subkey_names()) == ["a", "b"]
    assert a["v"] == 1 and a.path.endswith("\\a")


@pytest.mark.parametrize("bad", ["", "x\\y", "n" * 256, "nul\0in"])
def test_rename_invalid_names_are_87_before_any_call(registry, sandbox, bad):
    k = sandbox.create_key("keep")
    with pytest.raises(OSError) as e:
        k.rename(bad)
    assert _winerror(e) == 87
    # and the agent checks too, whatever a client sends
    with pytest.raises(OSError) as e:
        registry.key_request(k, ops.OP_RENAME, A.str16(bad))   # the key's handle, then the name
    assert _winerror(e) == 87
    assert sandbox.subkey_names() == ["keep"]


# ---------------------------------------------------------------------------
# Security
# ---------------------------------------------------------------------------

def test_security_set_read_back_and_dacl_enforced(wine, registry, sandbox):
    k = sandbox.create_key("sec")
    me = _owner(k)
    want = f"D:P(D;CI;KR;;;WD)(A;CI;KA;;;{me})"
    k.set_security(want)
    assert _dacl(k.security()) == want
    # Wine enforces DACLs at open time: a fresh process is denied reading
    other = wine.connect()
    try:
        with pytest.raises(PermissionError) as e:
            other.open_key("HKCU", k.path)
        assert _winerror(e) == 5
        k.set_security(f"D:(A;CI;KA;;;WD)")
        assert _dacl(k.security()) == "D:(A;CI;KA;;;WD)"
        with other.open_key("HKCU", k.path) as ok:
            assert ok.values() is not None
    finally:
        other.close()


def test_security_descriptor_bytes_convert_alike_offline_and_live(registry, sandbox, tmp_path):
    """One converter: the live key's SD bytes stored in a hive by regfast's
    writer print the same SDDL offline as live."""
    k = sandbox.create_key("ident")
    k.set_security(f"D:AI(A;CI;KA;;;{_owner(k)})(A;CIIO;KR;;;BU)(A;;0x1;;;S-1-5-21-1-2-3-4)")
    live_sddl = k.security()
    assert "0x1" not in live_sddl or "KR" in live_sddl
    path = tmp_path / "sd.hiv"
    write_hive(path, regfast.io.writer.Key(subkeys={"x": regfast.io.writer.Key(security=k.security_descriptor())}))
    with regfast.open_hive(path) as h:
        assert h.open("x").security() == live_sddl
    assert regfast.sd_to_sddl(k.security_descriptor()) == live_sddl


def test_grant_adds_aces_by_name_and_sid(sandbox):
    k = sandbox.create_key("g")
    before = k.security()
    assert "(A;CI;KR;;;BU)" not in before
    k.grant("Users", "read")
    k.grant("S-1-5-32-544", ["query", "set"], inherit=False)
    after = _dacl(k.security())
    assert "(A;CI;KR;;;BU)" in after
    assert "(A;;CCDC;;;BA)" in after or "(A;;0x3;;;BA)" in after
    k.grant("Users", 0, mode="revoke")
    assert ";;;BU)" not in _dacl(k.security())


def test_grant_bad_trustees_and_rights(sandbox):
    k = sandbox.create_key("gb")
    before = k.security()
    with pytest.raises(OSError) as e:
        k.grant("no-such-account-here", "read")
    assert _winerror(e) == 1332
    with pytest.raises(OSError) as e:
        k.grant("S-1-x-2", "read")
    assert _winerror(e) == 1337
    with pytest.raises(ValueError):
        k.grant("Users", "readish")
    assert k.security() == before


@pytest.mark.parametrize("bad, code", [("", 87), ("D:(A;;XX;;;WD)", 1336), ("not sddl", 1336),
                                       ("D:(A;;KA;;;S-1-nope)", 1336), ("O:BAÿ", 1336)])
def test_invalid_sddl_is_refused_and_the_descriptor_unchanged(sandbox, bad, code):
    k = sandbox.create_key("inv")
    before = k.security_descriptor()
    with pytest.raises(OSError) as e:
        k.set_security(bad)
    assert _winerror(e) == code
    assert k.security_descriptor() == before


def test_take_ownership(registry, sandbox):
    k = sandbox.create_key("own")
    k.set_security("O:SY")
    assert _owner(k) == "SY"
    k.take_ownership()
    # the agent's user: the SID HKEY_USERS lists for the logged-on user
    with registry.open_key("HKU") as users:
        sids = [n for n in users.subkey_names() if n.startswith("S-1-5-21-") and not n.endswith("_Classes")]
    assert _owner(k) in sids and len(sids) == 1


def test_sacl_only_with_security_privilege(registry, sandbox):
    # (Windows refuses writing a SACL without the privilege, 1314; Wine 8
    # grants ACCESS_SYSTEM_SECURITY to anyone — test_nt_windows checks it)
    k = sandbox.create_key("sacl")
    assert "S:" not in k.security()
    with registry.privileges("SeSecurityPrivilege"):
        k.set_security("S:(AU;SA;KR;;;WD)")
        assert k.security().endswith("S:(AU;SA;KR;;;WD)")
    assert "S:" not in k.security()                 # privilege off again: left out


# ---------------------------------------------------------------------------
# Privileges (the agent process's token)
# ---------------------------------------------------------------------------

def test_privileges_enable_inside_and_restore_after(registry):
    names = ("SeBackupPrivilege", "SeRestorePrivilege")
    assert registry.privilege_state(*names) == {n: (True, False) for n in names}
    with registry.privileges(*names):
        assert registry.privilege_state(*names) == {n: (True, True) for n in names}
        with registry.privileges("SeBackupPrivilege"):     # already on: stays on after
            pass
        assert registry.privilege_state("SeBackupPrivilege")["SeBackupPrivilege"] == (True, True)
    assert registry.privilege_state(*names) == {n: (True, False) for n in names}
    with pytest.raises(KeyError):                   # restored when the block raises, too
        with registry.privileges("SeRestorePrivilege"):
            raise KeyError("x")
    assert registry.privilege_state("SeRestorePrivilege")["SeRestorePrivilege"] == (True, False)


def test_privilege_not_held_is_1314_all_or_nothing(registry):
    assert registry.privilege_state("SeCreateTokenPrivilege")["SeCreateTokenPrivilege"] == (False, False)
    with pytest.raises(PermissionError) as e:
        with registry.privileges("SeBackupPrivilege", "SeCreateTokenPrivilege"):
            pytest.fail("entered the block without the privilege")
    assert _winerror(e) == 1314
    assert registry.privilege_state("SeBackupPrivilege")["SeBackupPrivilege"] == (True, False)
    with pytest.raises(OSError) as e:
        registry.privilege_state("SeNoSuchPrivilege")
    assert _winerror(e) == 1313
    with pytest.raises(OSError) as e:
        with registry.privileges("SeNoSuchPrivilege"):
            pass
    assert _winerror(e) == 1313


# ---------------------------------------------------------------------------
# save_key: regfast's own writer (works everywhere)
# ---------------------------------------------------------------------------

def _fill(k: live.Key) -> None:
    k.set_value("", "default")
    k.set_value("sz", "hello")
    k.set_value("expand", "%SystemRoot%\\x", type=REG_EXPAND_SZ)
    k.set_value("multi", ["a", "bé", ""], type=REG_MULTI_SZ)
    k.set_value("dword", 0xDEADBEEF, type=REG_DWORD)
    k.set_value("qword", 1 << 40, type=REG_QWORD)
    k.set_value("bin", bytes(range(256)) * 3, type=REG_BINARY)
    k.set_value("big", os.urandom(40000), type=REG_BINARY)        # > 16 KB: db cells
    k.set_value("größe €", "unicode name", type=REG_SZ)
    k.set_value("empty", b"", type=REG_BINARY)
    c = k.create_key("kind\u00e9r")
    c.set_value("n", 1)
    g = c.create_key("日本")
    g.set_value("deep", "yes")
    g.close()
    c.close()
    k.create_key("leer").close()


def _live_tree(k: live.Key, path: str = "") -> dict:
    out = {path: {"values": {v.name: (v.type, v.raw()) for v in k.values()}, "class": k.class_name or None}}
    for c in k.subkeys():
        out.update(_live_tree(c, c.name if not path else path + "\\" + c.name))
        c.close()
    return out


def test_save_key_regfast_reads_back_equal_offline_and_with_hivex(sandbox, tmp_path):
    from oracle import hivex_tree, require_hivex
    top = sandbox.create_key("tree")
    _fill(top)
    want = _live_tree(top)
    path = tmp_path / "saved.hiv"
    res = regfast.save_key(top, path)
    assert res.format == "regf" and res.keys == 4 and res.values == len(want[""]["values"]) + 2
    with regfast.open_hive(path) as h:
        assert regfast_tree(h) == want
        for rel in want:
            live_key = top.open(rel) if rel else top
            assert h.open(rel).security() == live_key.security(), rel
            assert h.open(rel).last_write == live_key.last_write
    require_hivex()
    assert hivex_tree(path) == want


def test_save_key_regfast_is_atomic(registry, sandbox, tmp_path):
    path = tmp_path / "keep.hiv"
    path.write_bytes(b"previous content")
    gone = sandbox.create_key("gone")
    registry.delete_key("HKCU", gone.path)
    with pytest.raises(OSError):
        regfast.save_key(gone, path)
    assert path.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.hiv"]
    with pytest.raises(ValueError):
        regfast.save_key(sandbox, path, method="copy")


def test_cli_save_key_and_key_security(wine, sandbox, tmp_path, monkeypatch, capsys):
    from regfast.cli import commands as cli
    sandbox.set_value("cli", "yes")
    monkeypatch.setenv("REGFAST_AGENT", str(wine.exe))
    for k, v in wine.env.items():
        if k.startswith("WINE"):
            monkeypatch.setenv(k, v)
    out = tmp_path / "cli.hiv"
    assert cli.main(["save-key", "HKCU\\" + sandbox.path, str(out)]) == 0
    assert "regf: 1 keys, 1 values" in capsys.readouterr().out
    with regfast.open_hive(out) as h:
        assert h.root["cli"] == "yes"
    assert cli.main(["key-security", "HKCU\\" + sandbox.path]) == 0
    assert capsys.readouterr().out.strip() == sandbox.security()
    assert cli.main(["save-key", "--native", "HKCU\\" + sandbox.path, str(tmp_path / "n.reg")]) == 0
    assert "not a regf hive" in capsys.readouterr().out
    assert cli.main(["key-security", "HKCU\\" + sandbox.path + "\\missing"]) == 1
    assert "winerror 2" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# RegSaveKeyExW / RegLoadKeyW as Wine does them
# ---------------------------------------------------------------------------

def test_native_save_needs_backup_privilege_and_leaves_nothing(registry, sandbox, tmp_path):
    path = tmp_path / "native.reg"
    with pytest.raises(PermissionError) as e:
        regfast.save_key(sandbox, path, method="native")
    assert _winerror(e) == 1314
    assert not path.exists()               # Wine leaves a 0-byte file: removed
    with registry.privileges("SeBackupPrivilege"):
        with pytest.raises(OSError) as e:
            regfast.save_key(sandbox, "relative.reg", method="native")
        assert _winerror(e) == 87
    assert not os.path.exists("relative.reg")


def test_failed_native_save_never_deletes_a_file_it_did_not_create(registry, sandbox, tmp_path):
    """Another process creating `path` while a native save runs (after the
    agent saw no file there) keeps its file: the system writes a temporary
    file of the agent's, and only that one is deleted when the save fails
    (here 1314: SeBackupPrivilege is disabled). The old code deleted `path`.
    A race, so many tries with the creation spread over the save's duration."""
    path = tmp_path / "theirs.reg"
    t0 = time.perf_counter()
    with pytest.raises(PermissionError):
        regfast.save_key(sandbox, path, method="native")
    span = time.perf_counter() - t0
    assert not path.exists()
    created = lost = 0
    for i in range(160):
        made = []

        def create(delay: float = span * (i % 16) / 12) -> None:
            time.sleep(delay)
            try:
                with open(path, "xb") as f:
                    f.write(b"theirs")
                made.append(1)
            except FileExistsError:        # the old code's own file: not theirs
                pass

        t = threading.Thread(target=create)
        t.start()
        try:
            regfast.save_key(sandbox, path, method="native")
        except OSError as e:
            assert e.winerror in (1314, 183)
        t.join()
        if made:
            created += 1
            if not path.exists() or path.read_bytes() != b"theirs":
                lost += 1
        if path.exists():
            path.unlink()
    assert created >= 80
    assert lost == 0, f"{lost} of {created} files created during a failed save were deleted or emptied"
    assert list(tmp_path.iterdir()) == []           # no temporary left behind
    # a successful save leaves the file only
    ok = tmp_path / "ok.reg"
    with registry.privileges("SeBackupPrivilege"):
        assert regfast.save_key(sandbox, ok, method="native").format == "wine"
    assert [p.name for p in tmp_path.iterdir()] == ["ok.reg"]

def test_native_save_under_wine_is_flagged_not_regf_then_loads(registry, sandbox, tmp_path):
    sandbox.set_value("loaded", "from a Wine-format hive")
    sandbox.create_key("sub").close()
    path = tmp_path / "native.reg"
    with registry.privileges("SeBackupPrivilege"):
        res = regfast.save_key(sandbox, path, method="native")
        with pytest.raises(OSError) as e:
            regfast.save_key(sandbox, path, method="native")
        assert _winerror(e) == 183
    assert res.format == "wine"
    assert path.read_bytes().startswith(b"WINE REGISTRY Version 2")
    with pytest.raises(NotAHiveError):
        regfast.open_hive(path)
    with pytest.raises(PermissionError) as e:
        registry.load_hive("HKU", "regfast-load", path)
    assert _winerror(e) == 1314
    with registry.privileges("SeBackupPrivilege", "SeRestorePrivilege"):
        k = registry.load_hive("HKU", "regfast-load", path)
        try:
            assert k["loaded"] == "from a Wine-format hive"
            assert k.subkey_names() == ["sub"]
        finally:
            k.close()
            registry.unload_hive("HKU", "regfast-load")
    with pytest.raises(FileNotFoundError):
        registry.open_key("HKU", "regfast-load\\sub")


def _unload_with_handles_open(reg, key, tmp_path, name: str) -> None:
    """Loads a hive saved from `key`, keeps agent handles open on the mount
    key and below it, each with a cached Win32 handle (a write) and cached NT
    handles (reads), and unloads: the agent closes them first, and each then
    says 2."""
    key.set_value("v", 1)
    for i in range(6):
        key.create_key(f"sub\\d{i}").close()
    path = tmp_path / "mount.hiv"
    with reg.privileges("SeBackupPrivilege", "SeRestorePrivilege"):
        regfast.save_key(key, path, method="native")
        mount = reg.load_hive("HKU", name, path)
        handles = [reg.open_key("HKU", name, access=live.KEY_ALL_ACCESS)] + \
            [reg.open_key("HKU", f"{name}\\sub\\d{i}", access=live.KEY_ALL_ACCESS) for i in range(6)]
        try:
            for h in handles:
                h.set_value("w", 1)
                assert h["w"] == 1 and h.subkey_names() is not None
            assert mount["w"] == 1 and mount["v"] == 1
            reg.unload_hive("HKU", name)
            for h in handles:
                with pytest.raises(FileNotFoundError):
                    h.set_value("w", 2)
            for h in [mount] + handles:
                with pytest.raises(FileNotFoundError):
                    list(h.values())
        finally:
            for h in [mount] + handles:
                h.close()
    with pytest.raises(FileNotFoundError):
        reg.open_key("HKU", name)


def test_unload_hive_closes_the_agents_handles_at_and_below_the_mount(registry, sandbox, tmp_path):
    # Wine refuses to unload a mount key with a handle open on it
    # (STATUS_CANNOT_DELETE); Windows also counts handles below it (run
    # natively by test_windows_unload_hive_with_handles_open)
    _unload_with_handles_open(registry, sandbox, tmp_path, "regfast-unload-open")


def test_load_hive_bad_files(registry, sandbox, tmp_path):
    regf = tmp_path / "real.hiv"
    regfast.save_key(sandbox, regf)
    text = tmp_path / "text.txt"
    text.write_text("hello, not a hive\n")
    with registry.privileges("SeBackupPrivilege", "SeRestorePrivilege"):
        with pytest.raises(NotAHiveError) as e:            # Wine loads only its own format
            registry.load_hive("HKU", "regfast-bad", regf)
        assert _winerror(e) == 1017 and "Wine" in str(e.value)
        with pytest.raises(NotAHiveError) as e:            # refused before the call
            registry.load_hive("HKU", "regfast-bad", text)
        assert _winerror(e) == 1017
        with pytest.raises(FileNotFoundError):
            registry.load_hive("HKU", "regfast-bad", tmp_path / "missing.hiv")
        with pytest.raises(OSError) as e:
            registry.load_hive("HKU", "regfast-bad", "relative\\x.hiv")
        assert _winerror(e) == 87
        with pytest.raises(OSError) as e:
            registry.load_hive("HKCU", "regfast-bad", regf)
        assert _winerror(e) == 87
        with pytest.raises(OSError) as e:
            registry.load_hive("HKU", "a\\b", regf)
        assert _winerror(e) == 87
    with pytest.raises(FileNotFoundError):
        registry.open_key("HKU", "regfast-bad")


# ---------------------------------------------------------------------------
# Stubs under Wine: detected, never a fake success
# ---------------------------------------------------------------------------

def test_restore_replace_app_hive_stubs_are_refused_under_wine(registry, sandbox, tmp_path):
    src = tmp_path / "src.hiv"
    write_hive(src, {"v": "from file", "k": {}})
    sandbox.set_value("mine", 1)
    with registry.privileges("SeBackupPrivilege", "SeRestorePrivilege"):
        with pytest.raises(OSError) as e:
            regfast.restore_key(sandbox, src)
        assert _winerror(e) == 120 and "stub" in str(e.value)
        with pytest.raises(OSError) as e:
            regfast.replace_key(sandbox, src, tmp_path / "old.hiv")
        assert _winerror(e) == 120
    assert sandbox.value("mine").value == 1 and "v" not in sandbox   # untouched
    with pytest.raises(OSError) as e:
        regfast.load_app_hive(registry, src)
    assert _winerror(e) == 120 and "stub" in str(e.value)


# agent_admin.c op 47: LOAD_APP_HIVE's serializer fed an open key
OP_SNAPSHOT_RF = ops.OP_SNAPSHOT_RF


def test_app_hive_snapshot_format_is_the_snapshot_format(registry, sandbox):
    """LOAD_APP_HIVE's serializer (Wine stubs app hives, so it is fed a normal
    live key through op 47) writes what SNAPSHOT writes: protocol 2 with the
    security-descriptor hash after last_write, same keys, values and data."""
    sandbox.set_value("s", "text")
    sandbox.set_value("n", 7)
    c = sandbox.create_key("child")
    c.set_value("b", b"\x01\x02\x03", REG_BINARY)
    c.create_key("leaf").close()
    c.close()
    want = sandbox.snapshot(keep_data=True)
    payload = registry.key_request(sandbox, OP_SNAPSHOT_RF, struct.pack("<I", 0))
    r = Reader(payload)
    got = parse_snapshot(r, sandbox.full_path)
    assert r.pos == len(payload)                          # nothing left over
    assert sorted(got.keys) == sorted(want.keys)
    assert sorted(k.path for k in got.keys.values()) == ["", "child", "child\\leaf"]
    for p, w in want.keys.items():
        g = got.keys[p]
        assert (g.path, g.last_write, g.security) == (w.path, w.last_write, w.security)
        assert g.security is not None
        assert {n: (v.name, v.type, v.size, v.data) for n, v in g.values.items()} == \
               {n: (v.name, v.type, v.size, v.data) for n, v in w.values.items()}
    # the limit: truncated, and still well-formed
    payload = registry.key_request(sandbox, OP_SNAPSHOT_RF, struct.pack("<I", 1))
    r = Reader(payload)
    one = parse_snapshot(r, sandbox.full_path)
    assert r.pos == len(payload) and one.truncated and list(one.keys) == [""]


def test_hive_file_bad_input_before_any_call(registry, sandbox, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("not a hive")
    src = tmp_path / "src.hiv"
    write_hive(src, {"v": 1})
    wine_fmt = tmp_path / "w.reg"
    wine_fmt.write_bytes(b"WINE REGISTRY Version 2\n")
    for call in (lambda p: regfast.restore_key(sandbox, p), lambda p: regfast.load_app_hive(registry, p),
                 lambda p: regfast.replace_key(sandbox, p, tmp_path / "old.hiv")):
        for bad, code in ((text, 1017), (wine_fmt, 1017), (tmp_path / "missing.hiv", 2),
                          ("rel\\x.hiv", 87), (tmp_path, 5)):
            with pytest.raises(OSError) as e:
                call(bad)
            assert _winerror(e) == code, (bad, str(e.value))
    with pytest.raises(OSError) as e:                     # the backup file must not exist
        regfast.replace_key(sandbox, src, text)
    assert _winerror(e) == 183
    assert admin.file_kind(registry, src) == "regf" and admin.file_kind(registry, wine_fmt) == "wine"


# ---------------------------------------------------------------------------
# MUI strings
# ---------------------------------------------------------------------------

def test_mui_string_resolves_like_wines_own_registry(registry, sandbox):
    tz = registry.open_key("HKLM", r"Software\Microsoft\Windows NT\CurrentVersion\Time Zones"
                                   r"\Afghanistan Standard Time")
    display, ref = tz["Display"], tz["MUI_Display"]
    tz.close()
    assert ref.startswith("@tzres.dll,-")
    sandbox.set_value("tz", "@%SystemRoot%\\system32\\" + ref[1:], type=REG_EXPAND_SZ)
    assert sandbox.mui_string("tz") == display
    sandbox.set_value("trash", "@%SystemRoot%\\system32\\shell32.dll,-8964", type=REG_SZ)
    s = sandbox.mui_string("trash")
    assert s and not s.startswith("@")
    sandbox.set_value("plain", "just text")
    assert sandbox.mui_string("plain") == "just text"
    with pytest.raises(FileNotFoundError) as e:
        sandbox.mui_string("missing")
    assert _winerror(e) == 2
    sandbox.set_value("nores", "@%SystemRoot%\\system32\\shell32.dll,-65000")
    with pytest.raises(OSError) as e:
        sandbox.mui_string("nores")
    assert _winerror(e) == 1814


# ---------------------------------------------------------------------------
# Windows only: what Wine stubs (run natively by the Windows wheel job)
# ---------------------------------------------------------------------------

def win_only(f):
    """Windows-only (Wine stubs these): runs natively in the Windows wheel job."""
    f = pytest.mark.windows(f)
    return pytest.mark.skipif(sys.platform != "win32", reason="Windows-only: Wine stubs these")(f)


@pytest.fixture
def native_reg():
    reg = regfast.connect()
    yield reg
    reg.close()


@pytest.fixture
def native_key(native_reg, request):
    path = f"Software\\regfast-tests\\admin-{request.node.name[:40]}-{os.getpid()}"
    key = native_reg.create_key("HKCU", path)
    yield key
    key.close()
    native_reg.delete_key("HKCU", path, tree=True)


@win_only
def test_windows_native_save_is_regf_and_app_hive_reads_it(native_reg, native_key, tmp_path):
    native_key.set_value("v", "native")
    native_key.create_key("c").close()
    path = tmp_path / "n.hiv"
    # GitHub's Windows runners are elevated: the privilege is held
    with native_reg.privileges("SeBackupPrivilege"):
        res = regfast.save_key(native_key, path, method="native")
    assert res.format == "regf"
    with regfast.open_hive(path) as h:
        assert h.root["v"] == "native" and h.root.subkey_names() == ["c"]
    snap = regfast.load_app_hive(native_reg, path)
    assert {k.path for k in snap.keys.values()} == {"", "c"}


@win_only
def test_windows_restore_key_replaces_the_subtree(native_reg, native_key, tmp_path):
    src = tmp_path / "src.hiv"
    write_hive(src, {"restored": "yes", "k": {}})
    native_key.set_value("old", 1)
    with native_reg.privileges("SeBackupPrivilege", "SeRestorePrivilege"):
        regfast.restore_key(native_key, src)
    assert native_key["restored"] == "yes" and "old" not in native_key
    assert native_key.subkey_names() == ["k"]


@win_only
def test_windows_load_hive_of_a_regf_file(native_reg, native_key, tmp_path):
    path = tmp_path / "mount.hiv"
    regfast.save_key(native_key, path)                    # regfast's writer: a regf hive
    native_key.set_value("after", 1)                      # not in the file
    with native_reg.privileges("SeBackupPrivilege", "SeRestorePrivilege"):
        k = native_reg.load_hive("HKU", f"regfast-mount-{os.getpid()}", path)
        try:
            assert "after" not in k
        finally:
            k.close()
            native_reg.unload_hive("HKU", f"regfast-mount-{os.getpid()}")
    with pytest.raises(FileNotFoundError):
        native_reg.open_key("HKU", f"regfast-mount-{os.getpid()}")



@win_only
def test_windows_unload_hive_with_handles_open(native_reg, native_key, tmp_path):
    _unload_with_handles_open(native_reg, native_key, tmp_path, f"regfast-unload-{os.getpid()}")
