"""regfast.diff / `regfast diff`: the offline twin of watch(), on hives built
by regfast's writer (and, for damage, on real hives of the corpus)."""
from __future__ import annotations

import json
import struct

import pytest

import regfast
from regfast.cli import commands as cli
from regfast.hive.diff import Snapshot, ValueState, diff_snapshots, fnv1a64
from regfast.live.protocol import SNAP_DATA, Reader
from regfast.live.snapshot import parse_snapshot
from regfast.io.writer import REG_BINARY, REG_EXPAND_SZ, REG_QWORD, REG_SZ, Key, Value, build_security_descriptor
from conftest import corpus_path

T0 = 133_000_000_000_000_000
T1 = T0 + 10_000_000

BASE = {
    "Software": {
        "Vendor": {
            "": "default",
            "Name": "regfast",
            "Count": 3,
            "Blob": b"\x01\x02\x03",
            "Paths": ["a", "b"],
            "Gone": 7,
            "Big": Value(REG_BINARY, bytes(range(256)) * 100),   # 25,600 bytes: big data
            "Sub": {"Deep": {"x": 1}},
        },
        "Other": {"keep": "same"},
        "Old": {"Child": {"v": "bye"}, "w": 2},
    },
}


def _new_tree():
    return {
        "Software": {
            "Vendor": {
                "": "default",
                "NAME": "regfast 2",                     # case differs: same value, changed data
                "Count": Value(REG_QWORD, 3),            # type changed
                "Blob": b"\x01\x02\x03",
                "Paths": ["a", "b", "c"],
                "Fresh": Value(REG_EXPAND_SZ, "%TEMP%"),
                "Big": Value(REG_BINARY, bytes(range(256)) * 99 + bytes(256)),
                "Sub": {"Deep": {"x": 1}},
            },
            "Other": {"keep": "same"},
            "New": {"Kid": {"k": "hello"}},
        },
    }


def test_fnv1a64_reference_vectors():
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8


def test_identical_hives_have_no_difference(make_hive):
    a = make_hive(BASE, timestamp=T0)
    b = make_hive(BASE, timestamp=T0)
    d = regfast.diff(str(a.path), str(b.path))
    assert not d and len(d) == 0 and d.summary() == "no differences"
    assert cli.main(["diff", str(a.path), str(b.path)]) == 0


def test_every_kind_of_change(make_hive):
    a = make_hive(BASE, timestamp=T0)
    b = make_hive(_new_tree(), timestamp=T0)
    with regfast.open_hive(a.path) as ha, regfast.open_hive(b.path) as hb:
        d = regfast.diff(ha, hb)
    got = {(c.kind, c.path, c.name) for c in d}
    assert got == {
        ("key_added", r"Software\New", None),
        ("key_added", r"Software\New\Kid", None),
        ("key_removed", r"Software\Old", None),
        ("key_removed", r"Software\Old\Child", None),
        ("value_added", r"Software\New\Kid", "k"),
        ("value_removed", r"Software\Old", "w"),
        ("value_removed", r"Software\Old\Child", "v"),
        ("value_added", r"Software\Vendor", "Fresh"),
        ("value_removed", r"Software\Vendor", "Gone"),
        ("value_changed", r"Software\Vendor", "NAME"),
        ("value_changed", r"Software\Vendor", "Count"),
        ("value_changed", r"Software\Vendor", "Paths"),
        ("value_changed", r"Software\Vendor", "Big"),
    }
    by = {(c.kind, c.name): c for c in d}
    name = by["value_changed", "NAME"]
    assert (name.old.name, name.old_value, name.new_value) == ("Name", "regfast", "regfast 2")
    count = by["value_changed", "Count"]
    assert (count.old.type, count.old_value, count.new.type, count.new_value) == (4, 3, REG_QWORD, 3)
    assert by["value_changed", "Paths"].new_value == ["a", "b", "c"]
    assert by["value_added", "Fresh"].new_value == "%TEMP%"
    assert by["value_removed", "Gone"].old_value == 7 and by["value_removed", "Gone"].new is None
    big = by["value_changed", "Big"]
    assert big.old.size == 25_600 and big.new.size == 25_600
    assert big.old.data == bytes(range(256)) * 100 and big.new.data[-256:] == bytes(256)
    assert big.old.hash == fnv1a64(big.old.data) != big.new.hash
    # keys first (added parents before children), then values by path
    kinds = [c.kind for c in d]
    assert kinds.index("key_added") < kinds.index("value_added")
    assert [c.path for c in d.keys_added] == [r"Software\New", r"Software\New\Kid"]
    assert len(d.values_changed) == 4 and len(d.values_added) == 2 and len(d.values_removed) == 3
    assert d.summary() == "2 keys added, 2 keys removed, 2 values added, 3 values removed, 4 values changed"


def test_diff_outlives_the_hives(make_hive):
    a = make_hive(BASE, timestamp=T0)
    b = make_hive(_new_tree(), timestamp=T0)
    d = regfast.diff(a.path, b.path)                 # opened and closed inside
    c = next(c for c in d.values_changed if c.name == "Big")
    assert c.new.data[:3] == b"\x00\x01\x02"


def test_subtree_and_missing_path(make_hive):
    a = make_hive(BASE, timestamp=T0)
    b = make_hive(_new_tree(), timestamp=T0)
    d = regfast.diff(a.path, b.path, r"software\other")
    assert not d and d.root == r"Software\Other"
    d = regfast.diff(a.path, b.path, r"Software\Vendor")
    assert d.root == r"Software\Vendor"
    assert {c.path for c in d} == {r"Software\Vendor"}
    with pytest.raises(FileNotFoundError) as e:
        regfast.diff(a.path, b.path, r"Software\Old")
    assert e.value.winerror == 2


def test_touched_keys(make_hive):
    a = make_hive({"K": Key(values={"v": 1}, last_write=T0), "L": Key(last_write=T0)}, timestamp=T0)
    b = make_hive({"K": Key(values={"v": 1}, last_write=T1), "L": Key(last_write=T0)}, timestamp=T0)
    d = regfast.diff(a.path, b.path)
    assert [(c.kind, c.path, c.old_time, c.new_time) for c in d] == [("key_touched", "K", T0, T1)]
    assert not regfast.diff(a.path, b.path, touched=False)
    # a key whose child came or went is not "touched": the child says why
    c = make_hive({"K": Key(values={"v": 1}, last_write=T1, subkeys={"N": {}})}, timestamp=T0)
    a2 = make_hive({"K": Key(values={"v": 1}, last_write=T0)}, timestamp=T0)
    d = regfast.diff(a2.path, c.path)
    assert [(x.kind, x.path) for x in d] == [("key_added", r"K\N")]


def test_hash_only_snapshots_compare_by_hash():
    def snap(data: bytes, keep: bool) -> Snapshot:
        from regfast.hive.diff import KeyState
        vs = ValueState("v", REG_BINARY, len(data), fnv1a64(data), data if keep else None)
        return Snapshot("HKCU\\X", {"": KeyState("", 1, {"V": vs})}, keep_data=keep)

    assert not diff_snapshots(snap(b"abc", False), snap(b"abc", False))
    d = diff_snapshots(snap(b"abc", False), snap(b"abd", False))
    (c,) = d
    assert c.kind == "value_changed" and c.path == "HKCU\\X" and c.old.data is None
    assert c.old.hash == fnv1a64(b"abc") and c.new.hash == fnv1a64(b"abd")
    # one side hashed only, the other with data: the data is hashed to compare
    assert not diff_snapshots(snap(b"abc", False), snap(b"abc", True))
    assert diff_snapshots(snap(b"abc", True), snap(b"xyz", False))


def test_cli_text_and_json(make_hive, capsys):
    a = make_hive(BASE, timestamp=T0)
    b = make_hive(_new_tree(), timestamp=T0)
    assert cli.main(["diff", str(a.path), str(b.path), r"Software\Vendor"]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert r'~ value  Software\Vendor : NAME : REG_SZ "regfast" -> REG_SZ "regfast 2"' in lines
    assert r'+ value  Software\Vendor : Fresh = REG_EXPAND_SZ "%TEMP%"' in lines
    assert r"- value  Software\Vendor : Gone = REG_DWORD 7" in lines
    assert "1 values added, 1 values removed, 4 values changed" in err
    assert cli.main(["diff", str(a.path), str(b.path), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["root"] == ""
    ch = {(c["kind"], c["path"], c.get("name")): c for c in doc["changes"]}
    gone = ch["value_removed", r"Software\Vendor", "Gone"]
    assert gone["old"] == {"type": 4, "size": 4, "hash": f"{fnv1a64((7).to_bytes(4, 'little')):016x}",
                           "data": 7}
    assert ch["key_added", r"Software\New", None]["new_time"] == T0


def test_cli_errors_exit_2(make_hive, tmp_path, capsys):
    a = make_hive(BASE, timestamp=T0)
    assert cli.main(["diff", str(a.path), str(tmp_path / "missing.hiv")]) == 2
    assert cli.main(["diff", str(a.path), str(a.path), "No\\Such"]) == 2
    assert "winerror 2" in capsys.readouterr().err


ADMINS_ONLY = build_security_descriptor("S-1-5-32-544", "S-1-5-18", [(0, 2, 0xF003F, "S-1-5-32-544")])
EVERYONE_FULL = build_security_descriptor("S-1-5-32-544", "S-1-5-18", [(0, 2, 0xF003F, "S-1-1-0")])


def test_class_names_and_security_descriptors_are_compared(make_hive, capsys):
    """A key's class name or security descriptor changing, and nothing else
    (same last-write time: setting a key's security does not move it), is a
    difference. Before, offline snapshots read neither: a DACL granting
    Everyone full control diffed as "no differences", exit 0."""
    old = {
        "Svc": Key(values={"v": 1}, class_name="Old", security=ADMINS_ONLY),
        "Cls": Key(class_name="Gone"),
        "Same": Key(values={"w": 2}, class_name="Kept", security=EVERYONE_FULL),
    }
    new = {
        "Svc": Key(values={"v": 1}, class_name="New", security=EVERYONE_FULL),
        "Cls": Key(),
        # a descriptor in a cell of another offset, the same bytes: the same
        "Same": Key(values={"w": 2}, class_name="Kept", security=EVERYONE_FULL),
    }
    a, b = make_hive(old, timestamp=T0), make_hive(new, timestamp=T0)
    with regfast.open_hive(a.path) as ha, regfast.open_hive(b.path) as hb:
        assert ha.open("Same").security() == hb.open("Same").security()
        assert a.layout.sk_of["Same"] != b.layout.sk_of["Same"]
    d = regfast.diff(a.path, b.path)
    got = {(c.kind, c.path, c.old_text, c.new_text) for c in d}
    assert got == {
        ("security_changed", "Svc", "O:BAG:SYD:(A;CI;KA;;;BA)", "O:BAG:SYD:(A;CI;KA;;;WD)"),
        ("class_changed", "Svc", "Old", "New"),
        ("class_changed", "Cls", "Gone", ""),
    }
    assert d.summary() == "1 security descriptors changed, 2 class names changed"
    assert len(d.security_changed) == 1 and len(d.classes_changed) == 2
    assert cli.main(["diff", str(a.path), str(b.path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "~ key    Svc (security descriptor) : O:BAG:SYD:(A;CI;KA;;;BA) -> O:BAG:SYD:(A;CI;KA;;;WD)" in lines
    assert '~ key    Svc (class name) : "Old" -> "New"' in lines
    assert cli.main(["diff", str(a.path), str(b.path), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert {"kind": "class_changed", "path": "Cls", "old_time": T0, "new_time": T0,
            "old_text": "Gone", "new_text": ""} in doc["changes"]
    # a change of either is not "touched only", and no change is no change
    assert not regfast.diff(a.path, a.path)


@pytest.mark.parametrize("corrupt", [("nk.security", "K", 0x7878), ("nk.class_len", "K", 5)])
def test_unreadable_security_or_class_names_its_key(make_hive, corrupt, capsys):
    """A key whose sk offset points at no cell, or whose UTF-16 class name
    has an odd length: no listing or export reads them, so a diff does not
    fail on them (it did, strict, where `ls` and `export` read the hive): it
    compares the rest, names the key damaged, and exits 2 ("the same" is not
    known), saying what was not compared."""
    tree = {"K": Key(values={"v": 1}, class_name="Cls"), "L": {}}
    good = make_hive(tree, timestamp=T0)
    bad = make_hive(tree, timestamp=T0, corrupt=corrupt)
    for mode in ("strict", "tolerant"):
        with regfast.open_hive(bad.path, errors=mode) as h:
            d = regfast.diff(h, good.path)
        assert list(d) == [] and d.damaged == [("old", "K")]
    assert cli.main(["diff", str(bad.path), str(good.path)]) == 2
    assert "damaged subkeys, values, class name or security under K not compared" in capsys.readouterr().err


def test_snapshots_of_both_kinds_compare(make_hive):
    """Key.snapshot() (the snapshot bytes every backend writes, the agent's
    too) and Snapshot.from_hive record the same security hash: the same hive
    snapshotted both ways has no difference (the first version of offline
    security hashed the whole descriptor: every key differed)."""
    from regfast.live.protocol import Reader
    from regfast.live.snapshot import parse_snapshot
    h_path = corpus_path("plaso__NTUSER.DAT")
    with regfast.open_hive(h_path) as h:
        live_kind = parse_snapshot(Reader(h.root.snapshot_bytes(subtree=True, keep_data=True)), "")
        offline = Snapshot.from_hive(h)
    assert all(k.security is not None and k.sd is None for k in live_kind.keys.values())
    d = diff_snapshots(live_kind, offline, touched=False)
    assert not d, d.summary()
    assert not diff_snapshots(offline, live_kind, touched=False)


def test_descriptors_laid_out_apart_are_one_and_a_sacl_counts(make_hive):
    """Security compares the descriptor rebuilt from its parts: two laid out
    differently but saying the same are not a change; a SACL added (an
    auditing change, outside the snapshot hash) is, shown in SDDL."""
    dacl_first = build_security_descriptor("S-1-5-32-544", "S-1-5-18", [(0, 2, 0xF003F, "S-1-1-0")])
    # the same parts, owner and group first: header, owner, group, DACL
    hdr, dacl = dacl_first[:20], dacl_first[20:]
    acl_len = int.from_bytes(dacl[2:4], "little")
    acl, sids = dacl[:acl_len], dacl[acl_len:]
    owner_len = 8 + 4 * sids[1]
    owner, group = sids[:owner_len], sids[owner_len:]
    moved = bytearray(hdr)
    moved[4:8] = (20).to_bytes(4, "little")                              # owner
    moved[8:12] = (20 + len(owner)).to_bytes(4, "little")                # group
    moved[16:20] = (20 + len(owner) + len(group)).to_bytes(4, "little")  # DACL
    owner_first = bytes(moved) + owner + group + acl
    assert owner_first != dacl_first and regfast.sd_to_sddl(owner_first) == regfast.sd_to_sddl(dacl_first)
    a = make_hive({"K": Key(security=dacl_first)}, timestamp=T0)
    b = make_hive({"K": Key(security=owner_first)}, timestamp=T0)
    assert not regfast.diff(a.path, b.path)
    # a SACL: control SE_SACL_PRESENT, an audit ACE (type 2) for Everyone
    sacl_ace = bytes([2, 0xC0, 20, 0]) + (0xF003F).to_bytes(4, "little") + bytes([1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
    sacl = bytes([2, 0]) + (8 + len(sacl_ace)).to_bytes(2, "little") + (1).to_bytes(2, "little") + bytes(2) + sacl_ace
    audited = bytearray(owner_first + sacl)
    audited[2:4] = (0x8014).to_bytes(2, "little")                        # + SE_SACL_PRESENT
    audited[12:16] = len(owner_first).to_bytes(4, "little")
    c = make_hive({"K": Key(security=bytes(audited))}, timestamp=T0)
    (change,) = regfast.diff(b.path, c.path)
    assert change.kind == "security_changed" and "S:" in change.new_text and "S:" not in change.old_text




def test_current_control_set_resolved_apart_is_labelled_as_given(make_hive, capsys):
    """CurrentControlSet follows each hive's own Select\\Current. When they
    differ, the changes are spelled from the path as given and the two keys
    compared are named: before, the change below was reported at
    ControlSet002\\Services\\S, whose Start is 3 in both files."""
    sets = {"ControlSet001": {"Services": {"S": {"Start": 2}}},
            "ControlSet002": {"Services": {"S": {"Start": 3}}}}
    a, b = (make_hive({"Select": {"Current": cur}, **sets}, timestamp=T0) for cur in (1, 2))
    d = regfast.diff(a.path, b.path, r"CurrentControlSet\Services")
    assert d.roots == (r"ControlSet001\Services", r"ControlSet002\Services")
    assert d.root == r"CurrentControlSet\Services"
    assert [(c.kind, c.path, c.old_value, c.new_value) for c in d] == [
        ("value_changed", r"CurrentControlSet\Services\S", 2, 3)]
    assert cli.main(["diff", str(a.path), str(b.path), r"CurrentControlSet\Services"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [r"~ value  CurrentControlSet\Services\S : Start : REG_DWORD 2 -> REG_DWORD 3"]
    assert (rf"regfast: note: CurrentControlSet\Services is ControlSet001\Services in {a.path.name} and "
            rf"ControlSet002\Services in {b.path.name}: those two keys are compared") in err
    assert cli.main(["diff", str(a.path), str(b.path), r"CurrentControlSet\Services", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["roots"] == {"old": r"ControlSet001\Services", "new": r"ControlSet002\Services"}
    # one control set on both sides: nothing to say, concrete paths as before
    same = regfast.diff(a.path, a.path, r"CurrentControlSet\Services")
    assert same.roots is None and not same


def test_a_change_the_decoded_data_hides_shows_its_bytes(make_hive, capsys):
    """Bytes after a REG_SZ's NUL, or its terminator: detected (exit 1), but
    printed as REG_SZ "ab" -> REG_SZ "ab" before. Now the bytes from the
    first difference on each side (and in JSON, "raw" beside "data")."""
    big = bytes(range(256)) * 100
    cases = {
        "nul": (Value(REG_SZ, "ab\0x".encode("utf-16-le")), Value(REG_SZ, "ab\0y".encode("utf-16-le")),
                "REG_SZ bytes 61 00 62 00 00 00 78 00 (8 bytes) -> REG_SZ bytes 61 00 62 00 00 00 79 00 (8 bytes)"),
        "end": (Value(REG_SZ, "ab".encode("utf-16-le")), Value(REG_SZ, "ab\0".encode("utf-16-le")),
                "REG_SZ bytes 61 00 62 00 (4 bytes) -> REG_SZ bytes 61 00 62 00 00 00 (6 bytes)"),
        "big": (Value(REG_BINARY, big), Value(REG_BINARY, big[:-1] + b"\0"),
                "REG_BINARY bytes @0x63f0: f0 f1 f2 f3 f4 f5 f6 f7 f8 f9 fa fb fc fd fe ff (25600 bytes) -> "
                "REG_BINARY bytes @0x63f0: f0 f1 f2 f3 f4 f5 f6 f7 f8 f9 fa fb fc fd fe 00 (25600 bytes)"),
    }
    for name, (old, new, shown) in cases.items():
        a, b = make_hive({"K": {"v": old}}, timestamp=T0), make_hive({"K": {"v": new}}, timestamp=T0)
        (c,) = regfast.diff(a.path, b.path)
        assert c.describe() == f"~ value  K : v : {shown}", name
        assert cli.main(["diff", str(a.path), str(b.path), "--json"]) == 1
        (j,) = json.loads(capsys.readouterr().out)["changes"]
        if name != "big":       # (its data is bytes, in hex already)
            assert j["old"]["data"] == j["new"]["data"] == "ab"
            assert (j["old"]["raw"], j["new"]["raw"]) == (bytes(old.data).hex(), bytes(new.data).hex())
    # decoded data that differs is shown decoded, as before
    a, b = make_hive({"K": {"v": "x"}}, timestamp=T0), make_hive({"K": {"v": "y"}}, timestamp=T0)
    assert [c.describe() for c in regfast.diff(a.path, b.path)] == ['~ value  K : v : REG_SZ "x" -> REG_SZ "y"']


def _snap_key(path, vals, lw=1):
    """One key of the agent's snapshot format (src/agent/agent.h), with data."""
    def s16(text):
        b = text.encode("utf-16-le")
        return struct.pack("<I", len(b)) + b
    out = s16(path) + struct.pack("<QQI", lw, 0, len(vals))
    for name, data in vals:
        out += s16(name) + struct.pack("<IIQ", 4, len(data), 0) + struct.pack("<I", len(data)) + data
    return out


def _snap(keys, n=None):
    return struct.pack("<II", len(keys) if n is None else n, SNAP_DATA) + b"".join(keys)


def test_a_live_snapshot_payload_is_read_whole_and_pairs_flagged():
    """parse_snapshot: bytes after the keys it was told of raise (a count too
    small dropped the rest unseen), and two keys or values of one folded name
    keep the first and name the key damaged (the later one replaced it)."""
    one = _snap_key("K", [("v", b"\1\0\0\0")])
    good = parse_snapshot(Reader(_snap([_snap_key("", []), one])), "HKCU\\X")
    assert good.damaged == () and list(good.keys) == ["", "K"]
    with pytest.raises(ValueError, match=f"{len(one)} bytes after its 1 keys"):
        parse_snapshot(Reader(_snap([_snap_key("", []), one], n=1)), "HKCU\\X")
    with pytest.raises(ValueError, match="truncated"):
        parse_snapshot(Reader(_snap([_snap_key("", []), one])[:-3]), "HKCU\\X")
    twice = parse_snapshot(Reader(_snap([_snap_key("", []), one, _snap_key("k", [("v", b"\2\0\0\0")])])),
                           "HKCU\\X")
    assert twice.damaged == ("k",) and twice.keys["K"].values["V"].data == b"\1\0\0\0"
    d = diff_snapshots(good, twice)
    assert not d and d.damaged == [("new", "HKCU\\X\\k")]
    vals = parse_snapshot(Reader(_snap([_snap_key("K", [("v", b"\1"), ("V", b"\2")])])), "R")
    assert vals.damaged == ("K",) and vals.keys["K"].values["V"].data == b"\1"


# ---- damaged hives ---------------------------------------------------------------


def _parent(path):
    return path.rpartition("\\")[0]


def test_damaged_real_hive_compares_as_far_as_it_reads(capsys):
    """ez__SAMBadHBinHeader is ez__SAM (both written by Windows) with the
    header of the hbin at 0x2000 zeroed. Opened strictly, the diff stops at
    that hbin and names the way out. Opened tolerantly, it compares what can
    be read: the keys and values of the lost hbin show as added, and every
    one of those changes lies in a key Diff.damaged names on the old side
    (nothing is reported that the damage does not explain)."""
    bad, good = corpus_path("ez__SAMBadHBinHeader"), corpus_path("ez__SAM")
    with pytest.raises(regfast.RegistryCorruptError) as e:
        regfast.diff(bad, good)
    assert e.value.offset == 0x2000 and 'errors="tolerant"' in str(e.value)
    with regfast.open_hive(bad, errors="tolerant") as a, regfast.open_hive(good) as b:
        d = regfast.diff(a, b)
        assert regfast.diff(b, b).damaged == []
    assert d.keys_added and d.values_added
    assert not (d.keys_removed or d.values_removed or d.values_changed)
    sides = {side for side, _ in d.damaged}
    assert sides == {"old"}
    # each change sits in a damaged key, or in a key that is itself added
    explained = {path for _, path in d.damaged} | {c.path for c in d.keys_added}
    for c in d:
        assert (_parent(c.path) if c.kind == "key_added" else c.path) in explained, c
    assert f"({len(d.damaged)} damaged keys not fully compared)" in d.summary()
    # the command line: strict fails (2) naming --tolerant; --tolerant compares (1) and says where
    assert cli.main(["diff", str(bad), str(good)]) == 2
    err = capsys.readouterr().err
    assert "rerun with --tolerant to read the rest" in err and "winerror 1015" in err
    assert cli.main(["diff", str(bad), str(good), "--tolerant", "--json"]) == 1
    out, err = capsys.readouterr()
    assert "old side: 1 damaged spot read past" in err
    assert "old side (ez__SAMBadHBinHeader): damaged subkeys, values, class name or security under SAM\\Domains" in err
    doc = json.loads(out)
    assert [(x["side"], x["path"]) for x in doc["damaged"]] == d.damaged
    # nothing read differs, but keys could not be compared: not "the same" (0), but 2
    sub = str(corpus_path("plaso__regf_corrupt_sub_key_list.hiv"))
    assert cli.main(["diff", sub, sub, "--tolerant"]) == 2
    err = capsys.readouterr().err
    assert "no differences (2 damaged keys not fully compared)" in err


def test_unreadable_value_is_left_out_and_its_key_named(make_hive):
    """A vk whose signature is broken: a tolerant hive's scan skips it (status
    on its row); the snapshot leaves that row out instead of comparing an
    empty name, and the diff names its key as damaged."""
    good = make_hive(BASE, timestamp=T0)
    bad = make_hive(BASE, timestamp=T0, corrupt=("vk.sig", (r"Software\Vendor", "Gone"), 0x7878))
    with regfast.open_hive(bad.path) as h, pytest.raises(regfast.RegistryCorruptError):
        regfast.diff(h, good.path)
    with regfast.open_hive(bad.path, errors="tolerant") as a:
        table = a.scan()                    # a tolerant hive's scan skips by default
        assert (table.value_status != 0).sum() == 1
        d = regfast.diff(a, good.path)
        assert [(c.kind, c.path, c.name) for c in d] == [("value_added", r"Software\Vendor", "Gone")]
        assert d.damaged == [("old", r"Software\Vendor")]
        assert "1 damaged key not fully compared" in d.summary()
        back = regfast.diff(good.path, a)
        assert [(c.kind, c.name) for c in back] == [("value_removed", "Gone")]
        assert back.damaged == [("new", r"Software\Vendor")]


def _rename_value(data: bytes, old: bytes, new: bytes) -> bytes:
    """The vk named `old` (compressed, same length) renamed `new` in place."""
    data = bytearray(data)
    i = data.find(b"vk" + len(old).to_bytes(2, "little"))
    while data[i + 20:i + 20 + len(old)] != old:
        i = data.find(b"vk" + len(old).to_bytes(2, "little"), i + 1)
    data[i + 20:i + 20 + len(old)] = new
    return bytes(data)


def test_a_value_named_twice_is_compared_once_and_named_damaged(tmp_path, capsys):
    # Found by review: the new side's key holds "V" (2) beside "v" (1); a
    # lookup of "v" finds 2 (the first), it was 1 before, yet diff said "no
    # differences" and exit 0: the later "v" silently replaced "V".
    from regfast.io.writer import build_hive
    old, _ = build_hive({"K": {"v": 1}}, timestamp=T0)
    new, _ = build_hive({"K": {"W": 2, "v": 1}}, timestamp=T0)
    (tmp_path / "old.hiv").write_bytes(old)
    (tmp_path / "new.hiv").write_bytes(_rename_value(new, b"W", b"V"))
    with regfast.open_hive(tmp_path / "new.hiv") as h:
        assert [v.name for v in h.open("K").values()] == ["V", "v"] and h.open("K")["v"] == 2
    d = regfast.diff(tmp_path / "old.hiv", tmp_path / "new.hiv", touched=False)
    assert [(c.kind, c.name, c.new.type) for c in d.changes] == [("value_changed", "V", 4)]
    assert d.damaged == [("new", "K")]
    assert cli.main(["diff", str(tmp_path / "old.hiv"), str(tmp_path / "new.hiv")]) == 1
    assert "damaged subkeys, values, class name or security under K" in capsys.readouterr().err


def test_names_outside_the_bmp_are_two_names_as_in_the_registry(tmp_path):
    # Found by the review of the fix above: fold() used str.upper(), which
    # makes U+10428 and U+10400 one name (Windows upcases UTF-16 units, and
    # nothing outside the BMP): a valid hive holding both was reported as
    # damaged and the second key's change went unreported.
    from regfast.io.writer import build_hive
    a, b = "\U00010400", "\U00010428"
    for name, tree in (("old", {a: {"v": 1}, b: {"v": 2}}), ("new", {a: {"v": 1}, b: {"v": 99}})):
        (tmp_path / f"{name}.hiv").write_bytes(build_hive(tree, timestamp=T0)[0])
    d = regfast.diff(tmp_path / "old.hiv", tmp_path / "new.hiv", touched=False)
    assert [(c.kind, c.path) for c in d.changes] == [("value_changed", b)] and d.damaged == []


def test_a_vk_listed_twice_is_one_value_not_damage(tmp_path):
    # as the exports read it: the same vk again is that one value
    from regfast.io.writer import build_hive
    data, layout = build_hive({"K": {"a": 1, "b": 2}}, timestamp=T0)
    data = bytearray(data)
    lst = layout.value_list["K"]
    data[lst + 8:lst + 12] = data[lst + 4:lst + 8]                    # list: a, a
    (tmp_path / "twice.hiv").write_bytes(data)
    d = regfast.diff(tmp_path / "twice.hiv", tmp_path / "twice.hiv")
    assert d.changes == [] and d.damaged == []
