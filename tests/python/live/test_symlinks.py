"""Registry symbolic links: deletes never follow one out of the tree, and a
walk through a link loop ends.

A symbolic link (a key made with REG_OPTION_CREATE_LINK whose REG_LINK
value "SymbolicLinkValue" names its target) opens as its target unless
REG_OPTION_OPEN_LINK is given. regfast deleted trees with RegDeleteTreeW and
keys with RegDeleteKeyExW, which open without it: a link inside the tree
had its target's subkeys deleted, keys that were never in the tree, and a
link deleted by name took its target with it. Found by review. And the live
walk follows links (as Windows' tools do), so a link to an ancestor took it
~4,700 levels down the loop, until a path passed 32,767 characters (error
161, "a key path of 32771 chars is too long").

regfast has no call that makes a link (Windows keeps them to itself: HKLM\\
SYSTEM\\CurrentControlSet, HKCC), so a mingw probe makes them, as a program
on the machine would.
"""
from __future__ import annotations

import shutil
import subprocess

import pytest

from wine_session import BASE, wine  # noqa: F401  (shared fixtures)

MKLINK = r"""
#include <windows.h>
#include <sddl.h>
#include <stdio.h>
#include <wchar.h>
/* mklink.exe LINK TARGET: makes HKCU\LINK a symbolic link to HKCU\TARGET */
int wmain(int argc, wchar_t **argv)
{
    if (argc != 3) return 2;
    HANDLE tok; BYTE buf[256]; DWORD n; wchar_t *sid, target[1024];
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok) ||
        !GetTokenInformation(tok, TokenUser, buf, sizeof buf, &n) ||
        !ConvertSidToStringSidW(((TOKEN_USER *)buf)->User.Sid, &sid)) return 3;
    swprintf(target, 1024, L"\\Registry\\User\\%ls\\%ls", sid, argv[2]);
    HKEY k;
    LONG e = RegCreateKeyExW(HKEY_CURRENT_USER, argv[1], 0, NULL, REG_OPTION_CREATE_LINK,
                             KEY_ALL_ACCESS, NULL, &k, NULL);
    if (e) { printf("RegCreateKeyExW %ld\n", e); return 4; }
    e = RegSetValueExW(k, L"SymbolicLinkValue", 0, REG_LINK, (const BYTE *)target,
                       (DWORD)(wcslen(target) * sizeof(wchar_t)));   /* no NUL: MS-RRP 3.1.1.11 */
    RegCloseKey(k);
    if (e) { printf("RegSetValueExW %ld\n", e); return 5; }
    return 0;
}
"""


@pytest.fixture(scope="module")
def mklink(wine, tmp_path_factory):  # noqa: F811
    cc = shutil.which("x86_64-w64-mingw32-gcc")
    assert cc, "mingw-w64 is installed wherever the wine fixture runs (it builds the agent)"
    d = tmp_path_factory.mktemp("mklink")
    (d / "mklink.c").write_text(MKLINK)
    exe = d / "mklink.exe"
    subprocess.run([cc, "-O2", "-municode", "-o", str(exe), str(d / "mklink.c"), "-ladvapi32"],
                   check=True, capture_output=True, timeout=120)

    def make(link: str, target: str) -> None:
        r = subprocess.run(["wine", str(exe), link, target], env=wine.env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-2000:])
    return make


@pytest.fixture(scope="module")
def reg(wine):  # noqa: F811
    r = wine.connect()
    yield r
    r.close()


@pytest.fixture
def places(reg, mklink):
    """A tree holding a link to a target outside it, the target with a
    subkey and values; both removed afterwards."""
    tree, target = BASE + r"\link-tree", BASE + r"\link-target"
    for p in (tree, target):
        try:
            reg.delete_key("HKCU", p, tree=True)
        except FileNotFoundError:
            pass
    t = reg.create_key("HKCU", target + r"\child")
    t.set_value("keep", "me")
    reg.create_key("HKCU", target).set_value("top", 1)
    reg.create_key("HKCU", tree + r"\plain").set_value("v", 1)
    mklink(tree + r"\plain\link", target)
    mklink(tree + r"\link", target)
    # the links work: through them, the target's keys
    assert reg.open_key("HKCU", tree + r"\link\child")["keep"] == "me"
    assert reg.open_key("HKCU", tree + r"\plain\link")["top"] == 1
    yield tree, target
    for p in (tree, target):
        try:
            reg.delete_key("HKCU", p, tree=True)
        except FileNotFoundError:
            pass


def target_intact(reg, target):
    k = reg.open_key("HKCU", target)
    assert k["top"] == 1 and k.subkey_names() == ["child"]
    assert reg.open_key("HKCU", target + r"\child")["keep"] == "me"


def test_a_tree_delete_deletes_the_links_inside_not_their_targets(reg, places):
    tree, target = places
    reg.delete_key("HKCU", tree, tree=True)
    with pytest.raises(FileNotFoundError):
        reg.open_key("HKCU", tree)
    target_intact(reg, target)


def test_deleting_a_link_deletes_the_link_not_its_target(reg, places):
    tree, target = places
    reg.delete_key("HKCU", tree + r"\link")                 # no subkeys of its own: no tree needed
    assert reg.open_key("HKCU", tree).subkey_names() == ["plain"]
    target_intact(reg, target)
    reg.open_key("HKCU", tree + r"\plain").delete_key("link", tree=True)
    assert reg.open_key("HKCU", tree + r"\plain").subkey_names() == []
    target_intact(reg, target)


def test_a_walk_through_a_link_to_an_ancestor_ends(reg, mklink):
    top = BASE + r"\link-loop"
    try:
        reg.delete_key("HKCU", top, tree=True)
    except FileNotFoundError:
        pass
    reg.create_key("HKCU", top + r"\a").set_value("v", 1)
    mklink(top + r"\a\back", top)
    try:
        start = reg.open_key("HKCU", top)
        with pytest.raises(OSError) as e:
            for _ in start.hive.walk(start.path):
                pass
        assert e.value.winerror == 1450 and "symbolic link" in str(e.value)
        # skipping: every level once, then the walk ends at Windows' depth limit
        keys = list(start.hive.walk(start.path, errors="skip"))
        assert len(keys) == 1 + 512 and keys[1].name == "a" and keys[2].name == "back"
    finally:
        reg.delete_key("HKCU", top, tree=True)
    with pytest.raises(FileNotFoundError):
        reg.open_key("HKCU", top)
