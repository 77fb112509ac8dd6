"""Values of a hive opened with errors="tolerant": everything readable comes
back, and what cannot is listed in ``hive.problems`` (README, "Forensics").

Before, one value with damaged data made its key's ``values()`` raise, in a
tolerant hive too: a walk over a damaged hive stopped there (or lost every
value of the key), where hivex names the value and fails only its data.
Each test damages a writer-made hive at offsets from the writer's layout.
"""
from __future__ import annotations

import json
import struct
import subprocess
import time

import pytest

import regfast
from regfast.io.writer import build_hive

from conftest import CORPUS_NOT_HIVES, corpus_names, corpus_path
from oracle import HIVEX_PYTHON, require_hivex

VK_DATA_LEN, VK_DATA = 4 + 0x04, 4 + 0x08           # fields of a vk, from its cell's size field
VALUES = {"a": "alpha", "b": "beta-beta-beta", "c": 7, "d": "delta"}


def damaged(tree=None):
    """K's value "b" points its data at no cell; "d"'s vk has a bad signature."""
    data, layout = build_hive(tree or {"K": dict(VALUES), "L": {"x": 1}}, timestamp=0)
    data = bytearray(data)
    struct.pack_into("<I", data, layout.vk[("K", "b")] + VK_DATA, 0x12344)
    vk_d = layout.vk[("K", "d")]
    data[vk_d + 4:vk_d + 6] = b"xx"
    return bytes(data), layout


def test_tolerant_values_name_a_value_whose_data_is_lost_and_step_over_a_broken_vk():
    data, layout = damaged()
    with regfast.Hive.from_buffer(data, errors="tolerant") as hive:
        key = hive.open("K")
        vals = list(key.values())
        assert [(v.name, v.type) for v in vals] == [("a", 1), ("b", 1), ("c", 4)]
        a, b, c = vals
        assert (a.value, c.value) == ("alpha", 7)
        assert b.size == len("beta-beta-beta\0".encode("utf-16-le"))     # as the vk records it
        for read in (lambda: b.value, lambda: b.data, b.raw):
            with pytest.raises(regfast.RegistryCorruptError) as e:
                read()
            assert e.value.winerror == 1015 and e.value.offset == 0x1000 + 0x12344, str(e.value)
        # the walk's values are the same (its scan rows fall back to this read)
        walked = {k.path: [(v.name, v.type) for v in k.values()] for k in hive.walk()}
        assert walked == {"": [], "K": [("a", 1), ("b", 1), ("c", 4)], "L": [("x", 4)]}
        # each loss is listed: where the damage is, and what a read does with it
        probs = [p for p in hive.problems if p.kind == "values"]
        assert [(p.offset, p.length) for p in probs] == [(layout.vk[("K", "b")], 0), (layout.vk[("K", "d")], 0)]
        assert probs[0].reason.startswith(f"vk at 0x{layout.vk[('K', 'b')]:x} of nk at 0x{layout.nk['K']:x}, "
                                          "its data lost: value data at 0x13344: not the start of a cell")
        assert probs[1].reason.startswith(f"value list at 0x{layout.value_list['K']:x} of nk at "
                                          f"0x{layout.nk['K']:x}, an entry stepped over: expected 'vk'")


def test_a_strict_open_still_raises_at_the_first_damaged_value():
    data, layout = damaged()
    with regfast.Hive.from_buffer(data) as hive:
        with pytest.raises(regfast.RegistryCorruptError) as e:
            list(hive.open("K").values())
        assert e.value.offset == 0x1000 + 0x12344
        with pytest.raises(regfast.RegistryCorruptError):
            [list(k.values()) for k in hive.walk()]
        assert hive.problems == []


def test_the_batch_keeps_the_name_and_type_of_a_value_whose_data_is_lost():
    """rf_read_values' row of a value whose vk was read keeps its name, type
    and length next to the error (before: "" and type 0), as the scan's row
    does; a row whose vk is unusable has no name."""
    data, _ = damaged()
    with regfast.Hive.from_buffer(data, errors="tolerant") as hive:
        vb = hive.open("K").read_values(errors="skip")
        assert vb.names == ["a", "b", "c", ""]
        assert vb.type.tolist() == [1, 1, 4, 0]
        assert vb.status.tolist()[1] == vb.status.tolist()[3] == 0x20000001
        assert vb.to_dict() == {"a": "alpha", "c": 7}


def test_tolerant_values_agree_with_hivex(tmp_path):
    """hivex lists all four entries, names three, and fails "b"'s data and
    everything of "d": regfast hands out the same three names and types, the
    same good data, and the same failure for "b"'s data."""
    require_hivex()
    data, _ = damaged()
    p = tmp_path / "damaged.hiv"
    p.write_bytes(data)
    script = r"""
import hivex, json, sys
h = hivex.Hivex(sys.argv[1])
out = []
for v in h.node_values(h.node_get_child(h.root(), "K")):
    row = {}
    for f in ("value_key", "value_type", "value_value"):
        try:
            r = getattr(h, f)(v)
            row[f] = list(r) if isinstance(r, tuple) else r
            if f == "value_value":
                row[f] = [r[0], r[1].hex()]
        except Exception:
            row[f] = None
    out.append(row)
print(json.dumps(out))
"""
    rows = json.loads(subprocess.run([HIVEX_PYTHON, "-c", script, str(p)], check=True,
                                     capture_output=True, text=True).stdout)
    named = [r for r in rows if r["value_key"] is not None]
    assert len(rows) == 4 and len(named) == 3
    with regfast.open_hive(p, errors="tolerant") as hive:
        vals = list(hive.open("K").values())
        assert [(v.name, v.type) for v in vals] == [(r["value_key"], r["value_type"][0]) for r in named]
        for v, r in zip(vals, named):
            if r["value_value"] is None:
                with pytest.raises(regfast.RegistryCorruptError):
                    v.data
            else:
                assert bytes(v.data).hex() == r["value_value"][1]


def test_an_unusable_value_list_reads_as_no_values_and_is_listed():
    data, layout = build_hive({"K": {"a": 1, "b": 2}, "L": {"x": 1}}, timestamp=0)
    data = bytearray(data)
    struct.pack_into("<I", data, layout.nk["K"] + 4 + 0x24, 5000)          # 5000 values in an 8-byte list
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        assert list(hive.open("K").values()) == []
        assert [(k.path, len(list(k.values()))) for k in hive.walk()] == [("", 0), ("K", 0), ("L", 1)]
        (p,) = [p for p in hive.problems if p.kind == "values"]
        assert p.offset == layout.value_list["K"] and "5000 values do not fit" in p.reason
    with regfast.Hive.from_buffer(bytes(data)) as hive:
        with pytest.raises(regfast.RegistryCorruptError):
            list(hive.open("K").values())


def test_a_value_of_an_odd_length_utf16_name_is_read_by_its_whole_units():
    data, layout = build_hive({"K": {"Ωmega": 5, "z": 1}}, timestamp=0)
    data = bytearray(data)
    vk = layout.vk[("K", "Ωmega")]
    struct.pack_into("<H", data, vk + 4 + 0x02, 9)                           # 10 bytes of UTF-16 -> 9
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        vals = list(hive.open("K").values())
        assert [(v.name, v.value) for v in vals] == [("Ωmeg", 5), ("z", 1)]   # its data is intact
        (p,) = [p for p in hive.problems if p.kind == "values"]
        assert p.offset == vk and "odd length" in p.reason


def test_a_big_data_value_with_a_damaged_segment_raises_only_from_its_data():
    big = bytes(range(256)) * 100                                              # 25,600 bytes: 2 segments
    data, layout = build_hive({"K": {"big": big, "small": 3}}, timestamp=0)
    data = bytearray(data)
    db = layout.data[("K", "big")]
    (seglist,) = struct.unpack_from("<I", data, db + 4 + 4)
    struct.pack_into("<I", data, 0x1000 + seglist + 4 + 4, 0x12344)           # the second segment
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        big_v, small = hive.open("K").values()
        assert (big_v.name, big_v.size, small.value) == ("big", len(big), 3)
        with pytest.raises(regfast.RegistryCorruptError) as e:
            big_v.value
        assert e.value.offset == 0x1000 + 0x12344
        (p,) = [p for p in hive.problems if p.kind == "values"]
        assert p.offset == layout.vk[("K", "big")] and "db segment" in p.reason


def test_a_data_length_the_hive_cannot_hold_is_not_allocated():
    """A damaged value's data length can say 2 GB: reading its data raises
    without a buffer of that size first (the row is not read as big data)."""
    import tracemalloc
    data, layout = build_hive({"K": {"a": "x" * 40}}, timestamp=0)
    data = bytearray(data)
    struct.pack_into("<I", data, layout.vk[("K", "a")] + VK_DATA_LEN, 0x7FFFFFF0)
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        (v,) = hive.open("K").values()
        tracemalloc.start()
        try:
            with pytest.raises(regfast.RegistryCorruptError):
                v.value
            assert tracemalloc.get_traced_memory()[1] < 1 << 20
        finally:
            tracemalloc.stop()


def test_a_list_of_many_broken_entries_opens_quickly_and_caps_its_problems():
    """100,000 entries naming no cell: each is listed (up to the 10,000 kept,
    all counted) in time linear in the entries."""
    n = 100_000
    data, layout = build_hive({"K": {f"v{i}": i for i in range(n)}}, timestamp=0)
    data = bytearray(data)
    lst = layout.value_list["K"]
    struct.pack_into(f"<{n}I", data, lst + 4, *([0x10] * n))      # inside the first hbin's header
    t0 = time.process_time()
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        elapsed = time.process_time() - t0
        assert hive.problems_total == n and len(hive.problems) == 10_000
        assert {p.offset for p in hive.problems} == {lst}           # the list holds the bad pointers
        assert list(hive.open("K").values()) == []
    assert elapsed < 30, elapsed                  # a hang guard, not a speed measure


@pytest.mark.parametrize("name", [n for n in corpus_names() if n not in CORPUS_NOT_HIVES])
def test_real_hives_read_the_same_values_tolerant_or_strict(name):
    """No false alarms on real hives: a tolerant open lists no value problem,
    and every key a strict open reads has the same values either way."""
    path = corpus_path(name)
    with regfast.open_hive(path, errors="tolerant") as tol, regfast.open_hive(path) as strict:
        assert not [p for p in tol.problems if p.kind == "values"]
        compared = 0
        for key in tol.walk():
            try:
                want = [(v.name, v.type, bytes(v.data)) for v in strict.open(key.path).values()]
            except regfast.RegistryCorruptError:
                continue            # damage on the strict way there (a bad hbin on its path)
            assert [(v.name, v.type, bytes(v.data)) for v in key.values()] == want, key.path
            compared += 1
        assert compared >= 1


def test_cli_lists_the_values_of_a_damaged_key(tmp_path, capsys):
    """`regfast ls -v --tolerant` prints every value of the key, the one whose
    data is lost as <damaged: ...>, and says on stderr what it read past;
    strictly it stops there (exit 1), as before."""
    from regfast.cli import main
    data, _ = damaged()
    p = tmp_path / "d.hiv"
    p.write_bytes(data)
    assert main(["ls", "-r", "-v", "--tolerant", str(p)]) == 0
    out, err = capsys.readouterr()
    lines = [line.strip() for line in out.splitlines()]
    assert 'a = REG_SZ "alpha"' in lines and "c = REG_DWORD 7" in lines
    assert any(line.startswith("b = REG_SZ <damaged: value data at 0x13344") for line in lines), out
    assert not any(line.startswith("d = ") for line in lines)
    assert "2 damaged spots read past" in err
    assert main(["ls", "-r", "-v", str(p)]) == 1


def test_a_value_list_shared_by_thousands_of_keys_is_checked_once():
    """A hostile hive: 2,000 keys share one list of 40,001 entries, all naming
    one 2 MB big-data value. The open's value check re-read the list for
    each key, and the value's 123 segments for each entry: seconds to hours
    (found by review: 5.95 s for 500 keys). Each entry, vk and db is checked
    once per open."""
    vals = {f"v{i}": i for i in range(40_000)}
    vals["big"] = b"\x01" * 2_000_000
    tree = {"K": vals, **{f"S{j}": {} for j in range(2_000)}}
    data, layout = build_hive(tree, timestamp=0)
    data = bytearray(data)
    big_vk = layout.vk[("K", "big")] - 0x1000
    struct.pack_into(f"<{40_001}I", data, layout.value_list["K"] + 4, *([big_vk] * 40_001))
    count_and_list = bytes(data[layout.nk["K"] + 4 + 0x24:layout.nk["K"] + 4 + 0x2C])
    for j in range(2_000):
        at = layout.nk[f"S{j}"] + 4 + 0x24
        data[at:at + 8] = count_and_list                     # S_j's values: K's list
    t0 = time.process_time()
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        elapsed = time.process_time() - t0
        assert hive.problems == []
        assert len(list(hive.open("S7").values())) == 40_001
    assert elapsed < 5, elapsed                   # a hang guard (0.02 s here), not a speed measure


def test_values_whose_rows_read_as_errors_but_whose_data_is_whole_read_back():
    """Two rows a batch refuses though the data is there: a vk whose UTF-16
    name has an odd length (its data big), and big-data values listed again
    past what the hbins hold. A tolerant values() handed them out as values
    whose data was lost, and reading them raised winerror 234 ("more data")
    instead of returning it; `regfast ls --tolerant -v` stopped there."""
    big = bytes(range(256)) * 80                                 # 20,480 bytes: big data
    data, layout = build_hive({"K": {"b\u20ac": big}}, timestamp=0)
    data = bytearray(data)
    vk = layout.vk[("K", "b\u20ac")]
    struct.pack_into("<H", data, vk + 4 + 0x02, 3)               # 4 bytes of UTF-16 -> 3
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        (v,) = hive.open("K").values()
        assert (v.name, bytes(v.data), v.value) == ("b", big, big)
    names = {f"v{i}": i for i in range(12)}
    names["big"] = big
    data, layout = build_hive({"K": names}, timestamp=0)
    data = bytearray(data)
    struct.pack_into("<13I", data, layout.value_list["K"] + 4, *([layout.vk[("K", "big")] - 0x1000] * 13))
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        assert [bytes(v.data) for v in hive.open("K").values()] == [big] * 13
    with regfast.Hive.from_buffer(bytes(data)) as hive:
        with pytest.raises(regfast.RegistryCorruptError):
            list(hive.open("K").values())


def test_values_sharing_a_db_are_each_checked_for_their_own_length():
    """b names a's db with a longer length (4 segments where a needs 3 and a
    half): a's data reads, b's fourth segment is too short. The check keyed
    a db as "seen" by its first value and left b's loss unlisted (found by a
    second review); it is listed, as b's read raises."""
    big = bytes(range(256)) * 200                                    # 51,200 bytes: 4 segments
    data, layout = build_hive({"K": {"a": big, "b": b"x" * 40_000}}, timestamp=0)
    data = bytearray(data)
    vka, vkb = layout.vk[("K", "a")], layout.vk[("K", "b")]
    struct.pack_into("<I", data, vkb + 4 + 0x08, struct.unpack_from("<I", data, vka + 4 + 0x08)[0])
    struct.pack_into("<I", data, vkb + VK_DATA_LEN, 4 * 16_344)
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        a, b = hive.open("K").values()
        assert bytes(a.data) == big
        with pytest.raises(regfast.RegistryCorruptError) as e:
            b.data
        (p,) = hive.problems
        assert p.offset == e.value.offset and "db segment 3" in p.reason and f"vk at 0x{vkb:x}" in p.reason


def test_many_values_sharing_one_segment_list_check_it_once():
    """6,000 values, each with its own db of 1,200 segments, all naming one
    segment list (whose entries all name one cell): each value walked the
    list (0.35 s at 27 MB, 3.1 s at 81 MB: quadratic). The list's full prefix
    is found once."""
    n, k = 6_000, 1_200
    vals = {f"v{i:05d}": b"12345678" for i in range(n)}
    vals["big"] = b"\x01" * (16_344 * k)
    data, layout = build_hive({"K": vals}, timestamp=0)
    data = bytearray(data)
    db = struct.unpack_from("<I", data, layout.vk[("K", "big")] + 4 + 0x08)[0] + 0x1000
    seglist = struct.unpack_from("<I", data, db + 4 + 4)[0]
    seg0 = struct.unpack_from("<I", data, seglist + 0x1000 + 4)[0]
    struct.pack_into(f"<{k}I", data, seglist + 0x1000 + 4, *([seg0] * k))
    for i in range(n):
        cell = layout.data[("K", f"v{i:05d}")]                       # a 16-byte data cell becomes a db
        struct.pack_into("<2sHI", data, cell + 4, b"db", k, seglist)
        struct.pack_into("<I", data, layout.vk[("K", f"v{i:05d}")] + VK_DATA_LEN, 16_344 * k)
    t0 = time.process_time()
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        elapsed = time.process_time() - t0
        assert hive.problems == []
    assert elapsed < 5, elapsed                   # a hang guard (0.01 s here), not a speed measure


def test_a_tolerant_lookup_answers_as_values_does():
    # Left open last session: values() gave "b" (its data lost) and the
    # values after a broken vk, but value(name), key[name], `in` and get()
    # raised at the damage. They answer as values() now; what no readable
    # value is called still raises the damage (it may be the broken vk's).
    data, layout = damaged({"K": {"d": "delta", "a": "alpha", "b": "beta-beta-beta", "c": 7}, "L": {"x": 1}})
    with regfast.Hive.from_buffer(data, errors="tolerant") as hive:
        key = hive.open("K")
        assert [v.name for v in key.values()] == ["a", "b", "c"]       # "d"'s vk is broken, listed first
        assert key.value("A").value == "alpha" and key["c"] == 7 and key.get("C") == 7
        assert "a" in key and "B" in key
        b = key.value("b")
        assert (b.name, b.type, b.offset) == ("b", 1, layout.vk[("K", "b")] - 0x1000)
        with pytest.raises(regfast.RegistryCorruptError) as e:
            b.value
        assert e.value.offset == 0x1000 + 0x12344
        for lookup in (lambda: key.value("d"), lambda: "zz" in key, lambda: key.get("zz")):
            with pytest.raises(regfast.RegistryCorruptError) as e:
                lookup()
            assert e.value.offset == layout.vk[("K", "d")]
    with regfast.Hive.from_buffer(data) as hive:                        # strict: as before
        with pytest.raises(regfast.RegistryCorruptError):
            hive.open("K").value("a")
