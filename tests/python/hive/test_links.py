"""Key.is_link on hive files: the nk flag KEY_SYM_LINK (0x10).

No hive of the corpus holds a link (Windows keeps its links in volatile
keys, CurrentControlSet and HKCC, which no hive file stores), so the
writer makes them; hivex reads the same file back as an independent check
that the flag changes nothing else. Offline nothing follows a link: it is a
key holding its target's path in the REG_LINK value SymbolicLinkValue.
"""
from __future__ import annotations

import struct

import pytest

import regfast
from oracle import hivex_info, require_hivex
from regfast.io.writer import REG_LINK, Key, Value, build_hive

TARGET = "\\Registry\\Machine\\SOFTWARE\\Target"


def tree():
    target = Value(REG_LINK, TARGET.encode("utf-16-le"))
    return {
        "Top": Key(subkeys={
            "Link": Key(values={"SymbolicLinkValue": target}, symlink=True),
            "Plain": {"SymbolicLinkValue": "only a value of that name"},
        }),
    }


def test_is_link_reads_the_nk_flag(tmp_path):
    data, layout = build_hive(tree())
    path = tmp_path / "links.hiv"
    path.write_bytes(data)
    # the writer's cells, read as bytes: only Link carries 0x10
    flags = {p: struct.unpack_from("<H", data, off + 4 + 2)[0] for p, off in layout.nk.items()}
    assert flags["Top\\Link"] & 0x10 and not flags["Top\\Plain"] & 0x10 and not flags["Top"] & 0x10
    with regfast.open_hive(path) as h:
        got = {k.path: k.is_link for k in h.walk()}
        assert got == {"": False, "Top": False, "Top\\Link": True, "Top\\Plain": False}
        link = h.open("Top\\Link")
        assert link.info().flags & 0x10
        # nothing is followed offline: the link is a key with its target's path
        assert link.subkey_names() == [] and link.value("SymbolicLinkValue").type == REG_LINK
        assert link["SymbolicLinkValue"] == TARGET
    require_hivex()
    keys = hivex_info(path)["keys"]
    assert keys["Top\\Link"]["values"]["SymbolicLinkValue"] == (REG_LINK, TARGET.encode("utf-16-le"))
    assert keys["Top"]["children"] == ["Link", "Plain"]


def test_a_link_with_subkeys_or_as_root_is_refused():
    with pytest.raises(ValueError, match="cannot have subkeys"):
        build_hive({"L": Key(subkeys={"child": {}}, symlink=True)})
    with pytest.raises(ValueError, match="root"):
        build_hive(Key(symlink=True))


def test_is_link_of_a_closed_hive_raises(tmp_path):
    data, _ = build_hive(tree())
    path = tmp_path / "links.hiv"
    path.write_bytes(data)
    h = regfast.open_hive(path)
    k = h.open("Top\\Link")
    h.close()
    with pytest.raises(OSError):
        _ = k.is_link


def test_is_link_is_seen_by_the_profiler(tmp_path):
    """A hook point of its own (RF_OP_KEY_IS_LINK): live, each is a request."""
    data, _ = build_hive(tree())
    path = tmp_path / "links.hiv"
    path.write_bytes(data)
    with regfast.open_hive(path) as h:
        link, plain = h.open("Top\\Link"), h.open("Top\\Plain")
        with regfast.profile() as prof:
            assert link.is_link and not plain.is_link
    assert prof.count("key_is_link") == 2
    assert prof.count("key_is_link", path="Top\\Link") == 1


def test_a_snapshot_of_a_hive_file_lists_below_a_flagged_key(tmp_path):
    """Offline nothing is followed, so a node's subkeys are its own even if
    it carries the link flag (a crafted hive). The snapshot walk asked each
    key rf_key_is_link, as live, and left out what was below one: keys a
    snapshot-based diff then never saw, while the walk and scan list them."""
    from regfast.hive.diff import fold
    from regfast.live.protocol import Reader
    from regfast.live.snapshot import parse_snapshot

    data, layout = build_hive({"Top": {"Flagged": {"Child": {"v": 1}}, "Other": {}}})
    buf = bytearray(data)
    at = layout.nk["Top\\Flagged"] + 4 + 2
    struct.pack_into("<H", buf, at, struct.unpack_from("<H", buf, at)[0] | 0x10)
    path = tmp_path / "flagged.hiv"
    path.write_bytes(bytes(buf))
    with regfast.open_hive(path) as h:
        assert h.open("Top\\Flagged").is_link
        walked = sorted(k.path for k in h.walk())
        snap = parse_snapshot(Reader(h.root.snapshot_bytes()), str(path))
    assert "Top\\Flagged\\Child" in walked
    assert sorted(snap.keys) == sorted(fold(p) for p in walked)      # the root's path is ""
