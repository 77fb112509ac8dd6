"""Registry symbolic links: deletes never follow one out of the tree, and a
walk lists links without going through them (Key.is_link).

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
import threading

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


def fresh(reg, path):
    try:
        reg.delete_key("HKCU", path, tree=True)
    except FileNotFoundError:
        pass


def test_a_walk_through_a_link_to_an_ancestor_lists_the_link_and_ends(reg, mklink):
    """Before links were told apart, the walk went round the loop: "strict"
    raised 1450 at 512 levels, "skip" yielded 513 keys."""
    top = BASE + r"\link-loop"
    fresh(reg, top)
    reg.create_key("HKCU", top + r"\a").set_value("v", 1)
    mklink(top + r"\a\back", top)
    try:
        start = reg.open_key("HKCU", top)
        for errors in ("strict", "skip"):
            keys = list(start.hive.walk(start.path, errors=errors))
            assert [k.path for k in keys] == [top, top + r"\a", top + r"\a\back"]
            assert [k.is_link for k in keys] == [False, False, True]
    finally:
        reg.delete_key("HKCU", top, tree=True)
    with pytest.raises(FileNotFoundError):
        reg.open_key("HKCU", top)


def test_two_loops_do_not_multiply(reg, mklink):
    """Two links back up the tree: going through them, each level doubled
    the keys (2**512 paths, a walk that never ended)."""
    top = BASE + r"\link-loops"
    fresh(reg, top)
    reg.create_key("HKCU", top + r"\a\b")
    mklink(top + r"\a\up", top)
    mklink(top + r"\a\b\up", top + r"\a")
    try:
        keys = list(reg.open_key("HKCU", top).hive.walk(top))
        assert sorted(k.path for k in keys) == sorted(
            [top, top + r"\a", top + r"\a\b", top + r"\a\b\up", top + r"\a\up"])
    finally:
        reg.delete_key("HKCU", top, tree=True)


def test_a_walk_lists_a_link_out_of_the_tree_without_its_targets_keys(reg, places):
    """The target is another tree: through the link, the walk listed it as
    if it were inside (HKLM\\SYSTEM walked ControlSet001 twice, the second
    time as CurrentControlSet)."""
    tree, target = places
    keys = {k.path: k for k in reg.open_key("HKCU", tree).hive.walk(tree)}
    assert sorted(keys) == sorted([tree, tree + r"\link", tree + r"\plain", tree + r"\plain\link"])
    assert keys[tree + r"\link"].is_link and keys[tree + r"\plain\link"].is_link
    assert not keys[tree + r"\plain"].is_link and not keys[tree].is_link
    # the link opens as its target, as Windows' tools see it
    assert keys[tree + r"\link"]["top"] == 1 and keys[tree + r"\link"].subkey_names() == ["child"]
    # named as the start, a link is walked: the caller asked for it
    assert [k.name for k in reg.open_key("HKCU", tree).hive.walk(tree + r"\link")] == ["link", "child"]
    # follow_links: through them, the target's keys where each link is
    followed = [k.path for k in reg.open_key("HKCU", tree).hive.walk(tree, follow_links=True)]
    assert sorted(followed) == sorted([tree, tree + r"\link", tree + r"\link\child", tree + r"\plain",
                                       tree + r"\plain\link", tree + r"\plain\link\child"])


def test_follow_links_goes_round_a_loop_to_the_depth_limit(reg, mklink):
    """As os.walk(followlinks=True): asked to, the walk goes through a link
    back up the tree, until Windows' nesting limit stops it."""
    top = BASE + r"\link-loop-followed"
    fresh(reg, top)
    reg.create_key("HKCU", top + r"\a")
    mklink(top + r"\a\back", top)
    try:
        hive = reg.open_key("HKCU", top).hive
        with pytest.raises(OSError) as e:
            for _ in hive.walk(top, follow_links=True):
                pass
        assert e.value.winerror == 1450 and "symbolic link" in str(e.value)
        keys = list(hive.walk(top, errors="skip", follow_links=True))
        assert len(keys) == 1 + 512 and [k.name for k in keys[1:3]] == ["a", "back"]
    finally:
        reg.delete_key("HKCU", top, tree=True)


def test_a_walk_lists_no_leaf(reg, wine):  # noqa: F811
    """The hints: a subkey whose node lists no subkeys is yielded without a
    listing of its own (a leaf's is empty, a link's would be its target's),
    which also spares a request per leaf."""
    top = BASE + r"\leaves"
    fresh(reg, top)
    for p in (r"\a\x", r"\a\y", r"\b"):
        reg.create_key("HKCU", top + p).close()
    try:
        want = sorted([top, top + r"\a", top + r"\a\x", top + r"\a\y", top + r"\b"])
        frames = {}
        for follow in (True, False):
            r = wine.connect()                  # a fresh connection: no key cached
            before = r.stats()["frames"]
            assert sorted(k.path for k in r.open_key("HKCU", top).hive.walk(top, follow_links=follow)) == want
            frames[follow] = r.stats()["frames"] - before
            r.close()
        # listing every key: 5 SUBKEYS; hinted: top's and a's only (3 fewer
        # requests, and no handle opened for a leaf)
        assert frames[True] - frames[False] >= 3, frames
    finally:
        reg.delete_key("HKCU", top, tree=True)


def test_is_link_of_a_key_opened_by_path(reg, places, wine):  # noqa: F811
    """Not learnt from a listing: the agent looks at the key as itself."""
    tree, target = places
    assert reg.open_key("HKCU", tree + r"\link").is_link is True
    assert reg.open_key("HKCU", tree + r"\plain\link").is_link is True
    assert reg.open_key("HKCU", tree + r"\plain").is_link is False
    assert reg.open_key("HKCU", target).is_link is False
    # through the link: the target's child, a plain key
    assert reg.open_key("HKCU", tree + r"\link\child").is_link is False
    assert reg.open_key("HKCU", tree).hive.root.is_link is False
    # deleted by another program: the agent finds no key there
    reg.create_key("HKCU", tree + r"\gone").close()
    gone = reg.open_key("HKCU", tree + r"\gone")
    wine.reg("delete", rf"HKCU\{tree}\gone", "/f")
    with pytest.raises(OSError) as e:
        _ = gone.is_link
    assert e.value.winerror == 1018


def test_saving_a_tree_with_a_link_says_so_instead_of_copying_its_target(reg, places, tmp_path):
    """save_key(method="regfast") read each key as it opens: a link inside
    the tree saved its target's keys under the link's name, and a link back
    up the tree recursed until a path was too long. RegSaveKeyExW keeps a
    link as a link; this method cannot read a link's target yet, so it
    refuses, and writes nothing."""
    import regfast

    tree, target = places
    out = tmp_path / "tree.hiv"
    with pytest.raises(OSError) as e:
        regfast.save_key(reg.open_key("HKCU", tree), out)
    assert e.value.winerror == 120 and "symbolic link" in str(e.value)
    assert not out.exists()
    # the target alone holds no link: it saves as before
    res = regfast.save_key(reg.open_key("HKCU", target), out)
    assert res.keys == 2 and out.exists()


def test_a_snapshot_lists_a_link_without_going_through_it(reg, places, mklink):
    """rf_snapshot.c (snapshots, watches) listed the subkeys of every key it
    opened, so it went through links: a link out of the tree took in its
    target's keys (a watch on the tree reported the target's changes as the
    tree's), and a link back up the tree went round the loop until the key
    limit (a truncated snapshot of a three-key tree)."""
    tree, target = places
    snap = reg.open_key("HKCU", tree).snapshot()
    # keys by folded path, the link by its own name (the NT backend named it
    # by its handle: its target's name, "LINK-TARGET")
    assert sorted(snap.keys) == ["", "LINK", "PLAIN", "PLAIN\\LINK"] and not snap.truncated
    # the link's row is the key as it opens: its target's values
    assert snap.keys["PLAIN\\LINK"].path == "plain\\link"
    assert list(snap.keys["LINK"].values) == ["TOP"]
    top = BASE + r"\link-loop-snapshot"
    fresh(reg, top)
    reg.create_key("HKCU", top + r"\a").set_value("v", 1)
    mklink(top + r"\a\back", top)
    try:
        for keep_data in (False, True):
            snap = reg.open_key("HKCU", top).snapshot(keep_data=keep_data, max_keys=1000)
            assert sorted(snap.keys) == ["", "A", "A\\BACK"] and not snap.truncated
    finally:
        reg.delete_key("HKCU", top, tree=True)


def test_a_journaled_delete_refuses_a_link_it_could_not_bring_back(reg, places, tmp_path):
    """The journal keeps a deleted subtree as a snapshot and re-creates it on
    rollback: a link inside came back as a plain key holding copies of its
    target's values (before snapshots stopped at links, with its target's
    subtree too), and a link deleted by itself came back as a plain key.
    regfast has no call that makes a link: the journal refuses, deletes
    nothing, and a tree without links is journaled as before."""
    import regfast

    tree, target = places
    for parent, name, subtree in ((tree, "plain", True), (tree, "link", False), (BASE, "link-tree", True)):
        j = tmp_path / f"{name}.rfj"
        with pytest.raises(OSError) as e:
            with regfast.transaction(reg, journal=j, mode="journal") as tx:
                tx.open_key("HKCU", parent).delete_key(name, tree=subtree)
        assert e.value.winerror == 120 and "symbolic link" in str(e.value), e.value
        assert not j.exists()
    assert reg.open_key("HKCU", tree + r"\link").is_link
    assert reg.open_key("HKCU", tree + r"\plain\link").is_link
    target_intact(reg, target)
    # no link below: deleted, and brought back by the rollback
    with pytest.raises(RuntimeError):
        with regfast.transaction(reg, journal=tmp_path / "t.rfj", mode="journal") as tx:
            tx.open_key("HKCU", target).delete_key("child", tree=True)
            raise RuntimeError("roll back")
    target_intact(reg, target)


def test_a_journaled_delete_passes_over_a_leaf_deleted_meanwhile(reg, wine, tmp_path, monkeypatch):  # noqa: F811
    """Another program deletes a leaf between the snapshot and its link
    check: the check raised 1018 naming a key the caller never gave, and
    the delete failed; the leaf is gone, nothing to refuse."""
    import regfast
    from regfast.live import transaction

    top = BASE + r"\vanish"
    fresh(reg, top)
    for p in ("a", "b"):
        reg.create_key("HKCU", top + "\\" + p).close()
    real = transaction.key_is_link

    def racing(key):
        if key.path.endswith("\\a"):
            wine.reg("delete", rf"HKCU\{top}\a", "/f")
        return real(key)

    monkeypatch.setattr(transaction, "key_is_link", racing)
    with regfast.transaction(reg, journal=tmp_path / "v.rfj", mode="journal") as tx:
        tx.open_key("HKCU", BASE).delete_key("vanish", tree=True)
    with pytest.raises(FileNotFoundError):
        reg.open_key("HKCU", top)


def test_a_walk_given_no_hints_asks_before_going_through_a_link(reg, wine, mklink):  # noqa: F811
    """Hints are best effort: the agent gives none for a listing during
    which the parent changed (its count and last write are read before and
    after). Another program writes a value on the link's parent all the
    time: the walk listed every subkey with no hint, the link too, and went
    round the loop. A subkey with no hint is now asked Key.is_link first;
    one whose node lists subkeys comes marked as no link (the second hint)."""
    top = BASE + r"\link-busy"
    fresh(reg, top)
    reg.create_key("HKCU", top + r"\a\deeper\leaf").close()
    for i in range(60):
        reg.create_key("HKCU", top + rf"\a\k{i:02d}").close()
    mklink(top + r"\a\back", top)
    want = sorted([top, top + r"\a", top + r"\a\back", top + r"\a\deeper", top + r"\a\deeper\leaf"]
                  + [top + rf"\a\k{i:02d}" for i in range(60)])
    stop, writing = threading.Event(), threading.Event()
    writer = wine.connect()
    writes = []

    def hammer():
        k = writer.create_key("HKCU", top + r"\a")     # opened for writing
        n = 0
        while not stop.is_set():
            n += 1
            k.set_value("x", n)
            writing.set()
        writes.append(n)

    t = threading.Thread(target=hammer)
    t.start()
    try:
        assert writing.wait(60)
        for _ in range(10):
            got = sorted(k.path for k in reg.open_key("HKCU", top).hive.walk(top, errors="skip"))
            assert got == want
    finally:
        stop.set()
        t.join()
        writer.close()
        reg.delete_key("HKCU", top, tree=True)
    assert writes and writes[0] > 10         # the parent did change during the walks


def test_a_journaled_delete_refuses_a_link_whose_target_went_meanwhile(reg, places, wine, tmp_path, monkeypatch):  # noqa: F811
    """The link check opened each leaf by path, which follows a link: its
    target deleted after the snapshot, the link did not open, was passed
    over as gone, and deleted, to come back from a rollback as a plain key.
    The leaves are now asked from their parent's listing, as themselves."""
    import regfast
    from regfast.live import transaction

    tree, target = places
    real = transaction.parse_snapshot

    def racing(*args, **kwargs):
        snap = real(*args, **kwargs)
        wine.reg("delete", rf"HKCU\{target}", "/f")
        return snap

    monkeypatch.setattr(transaction, "parse_snapshot", racing)
    with pytest.raises(OSError) as e:
        with regfast.transaction(reg, journal=tmp_path / "g.rfj", mode="journal") as tx:
            tx.open_key("HKCU", BASE).delete_key("link-tree", tree=True)
    assert e.value.winerror == 120 and "symbolic link" in str(e.value), e.value
    assert sorted(reg.open_key("HKCU", tree).subkey_names()) == ["link", "plain"]


@pytest.mark.parametrize("seen", ["listed", "asked"])
def test_a_journaled_delete_refuses_a_key_replaced_by_a_link_since(reg, wine, mklink, tmp_path, seen):  # noqa: F811
    """The remote client kept a listing's hint "its node lists subkeys" as
    the key's link state ("listed"), and it outlived another program
    replacing the key by a link: the journaled delete was not refused, and
    its rollback lost the link. The journal now asks the key, like the
    leaves, from its parent's listing, which names each key afresh. "asked"
    (an earlier is_link answer, which the client does keep) passed before
    too, as the open by path renews it: it guards the listing's way."""
    import regfast

    top = BASE + r"\replaced"
    fresh(reg, top)
    reg.create_key("HKCU", top + r"\c\sub").close()
    reg.create_key("HKCU", top + r"\x\y").close()
    walking = iter(())
    try:
        if seen == "listed":
            # the walk stopped right after c: listed with its hint, not yet opened
            walking = reg.open_key("HKCU", top).hive.walk(top)
            assert [next(walking).name for _ in range(2)] == ["replaced", "c"]
        else:
            assert reg.open_key("HKCU", top + r"\c").is_link is False
        wine.reg("delete", rf"HKCU\{top}\c", "/f")
        mklink(top + r"\c", top + r"\x")
        with pytest.raises(OSError) as e:
            with regfast.transaction(reg, journal=tmp_path / "r.rfj", mode="journal") as tx:
                tx.open_key("HKCU", top).delete_key("c", tree=True)
        assert e.value.winerror == 120 and "symbolic link" in str(e.value), e.value
        assert reg.open_key("HKCU", top).subkey_names() == ["c", "x"]
    finally:
        if hasattr(walking, "close"):
            walking.close()
        reg.delete_key("HKCU", top, tree=True)
