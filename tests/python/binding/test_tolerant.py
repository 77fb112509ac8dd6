"""Damaged hives opened with errors="tolerant" (issue 5).

Each test builds a hive with regfast's writer, damages it at offsets taken
from the writer's HiveLayout (a zeroed page, a bad hbin header, a truncation,
a bad cell size), then checks three things against what the writer put there:

* a strict open refuses the hive with RegistryCorruptError at the damage --
  at open when it lies in the base block or the root's hbin, else (hbins are
  checked on first use) in Hive.validate() and in the first read reaching it;
* a tolerant open succeeds and ``hive.problems`` names exactly the damaged
  regions (offsets compared with where the test damaged the file);
* ``hive.scan(errors="skip")`` returns every key and value whose cells lie
  outside the damaged hbins, byte for byte, and every key it cannot return is
  accounted for: its nearest returned ancestor carries an error status. Nothing
  is dropped silently.
"""
from __future__ import annotations

import faulthandler
import functools
import operator
import random
import re
import struct

import pytest

import regfast
from regfast.io.writer import build_hive

from conftest import expected_tree

BASE = 4096
TS = 0x01D0000000000000
RF_E_CORRUPT = 0x20000001

# 24 keys with two levels below each: 7+ hbins of 4 KiB, so that every
# hbin holds keys, lists and values of several subtrees.
TREE = {f"K{i:02d}": {"blob": bytes([i]) * 500, "n": i, "s": f"text {i}",
                      "Sub": {"v": f"sub {i}", "Deep": {"d": i * 3, "raw": bytes([i, 1, 2, 3, 4, 5])}}}
        for i in range(24)}
EXPECTED = expected_tree(TREE)


@pytest.fixture(autouse=True)
def watchdog():
    """A C-level hang would stop the suite: dump the stacks and exit instead."""
    faulthandler.dump_traceback_later(60, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def build(tree=TREE):
    data, layout = build_hive(tree, timestamp=TS)
    return bytearray(data), layout


def hbin_index(layout, off):
    """Index of the hbin holding file offset `off` (len(hbins) if past them)."""
    for i, (s, z) in enumerate(layout.hbins):
        if s <= off < s + z:
            return i
    return len(layout.hbins)


def touched(layout, ranges):
    """Indices of the hbins a list of damaged [start, end) ranges touches."""
    return {i for i, (s, z) in enumerate(layout.hbins) for a, b in ranges if a < s + z and s < b}


def ancestors(path):
    parts = path.split("\\") if path else []
    return ["\\".join(parts[:i]) for i in range(len(parts))]


def key_cells(layout, path):
    """Cells a key is reached through: its nk, and the nk and subkey list of
    every ancestor."""
    cells = [layout.nk[path]]
    for a in ancestors(path):
        cells += [layout.nk[a], layout.subkey_list[a]]
    return cells


def value_cells(layout, path, name):
    cells = [layout.value_list[path], layout.vk[(path, name)]]
    if (path, name) in layout.data:
        cells.append(layout.data[(path, name)])
    return cells


def scan_rows(hive):
    """The skip-scan as plain lists: paths, key status, nk file offsets, parent
    rows, and value rows (key row, name, type, data or None on error)."""
    t = hive.scan(errors="skip")
    assert not t.key_deleted.any() and not t.value_deleted.any()
    vals = [(k, name, int(t.value_type[i]), bytes(t.value_data(i)) if t.value_status[i] == 0 else None)
            for i, (k, name) in enumerate(zip(t.value_key.tolist(), t.value_names()))]
    return (t.key_paths(), t.key_status.tolist(), [tok + BASE for tok in t.key_token.tolist()],
            t.key_parent.tolist(), vals)


def check_recovery(data, layout, bad, expected=EXPECTED, content_damage=False):
    """Tolerant open + skip-scan of `data` against the writer's tree; `bad`:
    indices of the damaged hbins. Returns the problems.

    With content_damage (random bytes zeroed), a record inside a damaged hbin
    may survive with altered fields (a zeroed name, a zeroed subkey count):
    nothing can tell that from a real hive, so only rows reached through
    intact records are compared, and the "reported, not dropped" checks only
    cover keys whose own records are all intact."""
    def clean(off):
        return hbin_index(layout, off) not in bad and off < len(data)

    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        problems = hive.problems
        assert hive.problems_total == len(problems)
        if any(p.kind == "root" for p in problems):
            with pytest.raises(regfast.RegistryCorruptError):
                hive.root
            return problems
        paths, key_status, nk, parent, vals = scan_rows(hive)
    # rows reached from the root through intact nk records only
    chain_clean = []
    for row in range(len(paths)):
        chain_clean.append(clean(nk[row]) and (parent[row] < 0 or chain_clean[parent[row]]))
    rows = [r for r in range(len(paths)) if chain_clean[r] or not content_damage]
    if not content_damage:
        assert len(paths) == len(set(paths))
    for r in rows:          # nothing is invented: a key reached through intact records was written
        if chain_clean[r]:
            assert paths[r] in expected, f"{paths[r]!r} was never written"
    status = {paths[r]: key_status[r] for r in rows}
    values = {paths[r]: {} for r in rows}
    bad_rows = {paths[r]: 0 for r in rows}
    keep = set(rows)
    for k, name, vtype, raw in vals:
        if k in keep:
            if raw is None:
                bad_rows[paths[k]] += 1
            else:
                values[paths[k]][name] = (vtype, raw)
    found = set(status)
    for path, want in expected.items():
        reached = all(clean(c) for c in key_cells(layout, path))
        if reached:
            assert path in found, f"{path!r} lies outside the damage but was not returned"
            for name, (vtype, raw) in want["values"].items():
                if all(clean(c) for c in value_cells(layout, path, name)):
                    assert values[path].get(name) == (vtype, raw), f"{path!r} value {name!r}"
        if path in found and (not content_damage or (reached and clean(layout.value_list.get(path, BASE)))):
            # a value the scan could not return is reported, never just absent
            missing = set(want["values"]) - set(values[path])
            assert not missing or status[path] != 0 or bad_rows[path], (path, missing)
        elif path not in found and not content_damage:
            # a lost key: its nearest returned ancestor says its subkeys were damaged
            anc = next(a for a in reversed(ancestors(path)) if a in found)
            assert status[anc] != 0, f"{path!r} was dropped without an error at {anc!r}"
    return problems
def expect_strict_failure(data, offset):
    """A strict open fails at `offset`: at once when the damage lies in the
    base block or the root's hbin; otherwise the hbin is checked when first
    used, so validate() and a scan (which checks every hbin) fail there, the
    same error every time."""
    def validated():
        with regfast.Hive.from_buffer(bytes(data)) as hive:
            hive.validate()

    def scanned():
        with regfast.Hive.from_buffer(bytes(data)) as hive:
            hive.scan()

    for fn in (validated, scanned):
        with pytest.raises(regfast.RegistryCorruptError) as e:
            fn()
        assert e.value.offset == offset, str(e.value)
        assert e.value.winerror == 1015


# ---- whole pages and hbin headers ------------------------------------------------

def test_layout_has_many_small_hbins():
    _, layout = build()
    assert len(layout.hbins) >= 7 and all(z == 4096 for _, z in layout.hbins)


def test_healthy_hive_has_no_problems():
    data, layout = build()
    assert check_recovery(data, layout, set()) == []
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        t = hive.scan()                          # strict scan: nothing to skip
        assert set(t.key_paths()) == set(EXPECTED)


@pytest.mark.parametrize("which", range(1, 7))
def test_zeroed_page(which):
    data, layout = build()
    start, size = layout.hbins[which]
    data[start:start + 4096] = bytes(4096)
    expect_strict_failure(data, start)
    problems = check_recovery(data, layout, {which})
    assert [(p.offset, p.length, p.kind) for p in problems] == [(start, 4096, "hbin")]
    assert "bad hbin signature" in problems[0].reason and f"0x{start:x}" in problems[0].reason


def test_zeroed_first_page_loses_the_root_but_opens():
    data, layout = build()
    data[BASE:BASE + 4096] = bytes(4096)
    problems = check_recovery(data, layout, {0})
    assert [(p.offset, p.kind) for p in problems] == [(BASE, "hbin"), (layout.root, "root")]
    elsewhere = next(off for off in layout.nk.values() if hbin_index(layout, off) > 0)
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        with pytest.raises(regfast.RegistryCorruptError) as e:
            hive.scan(errors="skip")
        assert e.value.offset == layout.root
        # what the other hbins hold is still reachable as cells
        payload, allocated = hive.cell(elsewhere)
        assert allocated and bytes(payload[:2]) == b"nk"


@pytest.mark.parametrize("field,value,words", [
    (0, b"hbiN", "bad hbin signature"),
    (4, 0x00FF0000, "offset field does not match"),
    (8, 0, "bad hbin size"),
    (8, 4097, "bad hbin size"),
    (8, 0x7FFFF000, "bad hbin size"),
])
def test_bad_hbin_header(field, value, words):
    data, layout = build()
    which = 3
    start = layout.hbins[which][0]
    if isinstance(value, bytes):
        data[start:start + 4] = value
    else:
        struct.pack_into("<I", data, start + field, value)
    expect_strict_failure(data, start)
    problems = check_recovery(data, layout, {which})
    assert [(p.offset, p.length, p.kind) for p in problems] == [(start, 4096, "hbin")]
    assert words in problems[0].reason


def test_hbin_size_swallowing_its_neighbour_is_blamed_on_the_size():
    data, layout = build()
    (s0, z0), (s1, z1) = layout.hbins[2], layout.hbins[3]
    struct.pack_into("<I", data, s0 + 8, z0 + z1)
    expect_strict_failure(data, s1)        # strict: the next header, read as a cell, is refused
    problems = check_recovery(data, layout, set())   # nothing is lost: the walk resumes at s1
    assert [(p.offset, p.length, p.kind) for p in problems] == [(s0, 0, "hbin")]
    assert f"runs over the hbin at 0x{s1:x}" in problems[0].reason


def test_several_damaged_regions():
    data, layout = build()
    bad = {1, 4, 5}
    for i in bad:
        s, _ = layout.hbins[i]
        data[s:s + 64] = bytes(64)
    expect_strict_failure(data, layout.hbins[1][0])
    problems = check_recovery(data, layout, bad)
    # hbins 4 and 5 in a row: one region, skipped in one go
    assert [(p.offset, p.length) for p in problems] == [(layout.hbins[1][0], 4096),
                                                        (layout.hbins[4][0], 8192)]


# ---- truncation ---------------------------------------------------------------

def test_truncated_at_every_hbin_boundary():
    data, layout = build()
    declared = len(data) - BASE
    for i, (start, _) in enumerate(layout.hbins):
        cut = data[:start]
        expect_strict_failure(cut, start)
        problems = check_recovery(cut, layout, set(range(i, len(layout.hbins))))
        kinds = [(p.offset, p.length, p.kind) for p in problems]
        want = [(start, declared - (start - BASE), "truncated")]
        if i == 0:   # the root cell is not in the file: blamed on the base block field naming it
            want.insert(0, (0x24, 0, "root"))
        assert kinds == want


def test_truncated_inside_hbins():
    data, layout = build()
    rng = random.Random(5)
    for i, (start, size) in enumerate(layout.hbins):
        for at in [start + 1, start + 0x1F, start + 0x20] + [start + rng.randrange(0x21, size) for _ in range(5)]:
            cut = data[:at]
            expect_strict_failure(cut, at)
            problems = check_recovery(cut, layout, set(range(i, len(layout.hbins))))
            assert [p[:3] for p in problems if p.kind == "truncated"] == [(at, len(data) - at, "truncated")]
            for p in problems:                # a cut header, or a cell the cut runs through
                assert (p.kind == "root" and i == 0) or start <= p.offset <= at, p


def test_truncated_inside_an_hbin_keeps_its_whole_cells():
    # Cut in the middle of the hbin holding K10's nk: K10 and its cells before the
    # cut are kept, because the cell walk stops at the cut, not at the hbin start.
    data, layout = build()
    nk = layout.nk["K10"]
    i = hbin_index(layout, nk)
    cells = sorted(c for c in key_cells(layout, "K10") if hbin_index(layout, c) == i)
    cut = data[:max(cells) + 0x100]
    with regfast.Hive.from_buffer(bytes(cut), errors="tolerant") as hive:
        assert hive.open("K10").name == "K10"
        assert hive.info().hbins_found == len(cut) - BASE


# ---- cells and the base block ------------------------------------------------------

@pytest.mark.parametrize("size", [0, 3, -4, -0x61, 0x7FFFFFF8])
def test_bad_cell_size(size):
    data, layout = build()
    cell = layout.nk["K07\\Sub"]
    which = hbin_index(layout, cell)
    start, hsize = layout.hbins[which]
    struct.pack_into("<i", data, cell, size)
    expect_strict_failure(data, cell)
    problems = check_recovery(data, layout, {which})
    assert [(p.offset, p.length, p.kind) for p in problems] == [(cell, start + hsize - cell, "cell")]
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        t = hive.scan(errors="skip")
        status = dict(zip(t.key_paths(), t.key_status.tolist()))
        assert status["K07"] == RF_E_CORRUPT and "K07\\Sub" not in status   # reported where it hangs
        with pytest.raises(regfast.RegistryCorruptError) as e:
            hive.open("K07\\Sub")
        assert cell <= e.value.offset < start + hsize      # a cell in the skipped part


def test_bad_checksum_and_hbins_size():
    data, layout = build()
    struct.pack_into("<I", data, 0x1FC, struct.unpack_from("<I", data, 0x1FC)[0] ^ 1)
    expect_strict_failure(data, 0x1FC)
    problems = check_recovery(data, layout, set())
    assert [(p.offset, p.kind) for p in problems] == [(0x1FC, "checksum")]
    # with the checksum bad, a nonsense hbins size is replaced by what the file holds
    struct.pack_into("<I", data, 0x28, 0x7FFFF000)
    problems = check_recovery(data, layout, set())
    assert [(p.offset, p.kind) for p in problems] == [(0x28, "base_block"), (0x1FC, "checksum")]


@pytest.mark.parametrize("delta", [-4, +1, -4095])
def test_hbins_size_off_a_page_boundary_loses_no_hbin(delta):
    """A hbins size that is no multiple of 4096 (damage, checksum made to
    match): which way it is off is a guess, so a tolerant open reads it
    rounded up, as far as the file goes. Rounded down (as before), 4 short
    of the end dropped the whole last hbin."""
    data, layout = build()
    size = struct.unpack_from("<I", data, 0x28)[0]
    struct.pack_into("<I", data, 0x28, size + delta)
    struct.pack_into("<I", data, 0x1FC, 0)
    struct.pack_into("<I", data, 0x1FC, functools.reduce(operator.xor, struct.unpack_from("<127I", data, 0)))
    expect_strict_failure(data, 0x28)
    problems = check_recovery(data, layout, set())
    assert [(p.offset, p.kind) for p in problems] == [(0x28, "base_block")]
    assert f"read as 0x{size if delta < 0 else min(size + 4096, len(data) - 4096):x}" in problems[0].reason


@pytest.mark.parametrize("delta", [+1, -4])
def test_an_unaligned_hbins_size_of_a_cut_file_still_reports_the_cut(delta):
    """The file ends inside the last hbin: whichever way the size field is
    off, the cut is reported (as with an intact field) and the cut hbin read
    up to the cut; rounding to what the file holds hid it."""
    data, layout = build()
    size = struct.unpack_from("<I", data, 0x28)[0]
    struct.pack_into("<I", data, 0x28, size + delta)
    struct.pack_into("<I", data, 0x1FC, 0)
    struct.pack_into("<I", data, 0x1FC, functools.reduce(operator.xor, struct.unpack_from("<127I", data, 0)))
    cut = bytes(data[: len(data) - 0x800])
    with regfast.Hive.from_buffer(cut, errors="tolerant") as hive:
        kinds = [p.kind for p in hive.problems]
        assert "truncated" in kinds and "base_block" in kinds, hive.problems


# ---- many random damages ------------------------------------------------------------

def test_random_zeroed_ranges():
    """A few hundred hives with 1-3 random byte ranges zeroed: no crash, every
    key and value outside the damaged hbins found, every problem inside them."""
    data0, layout = build()
    rng = random.Random(1234)
    for _ in range(300):
        data = bytearray(data0)
        ranges = []
        for _ in range(rng.randint(1, 3)):
            a = rng.randrange(BASE, len(data))
            b = min(len(data), a + rng.choice([1, 4, 16, 200, 3000, 9000]))
            data[a:b] = bytes(b - a)
            ranges.append((a, b))
        bad = touched(layout, ranges)
        problems = check_recovery(data, layout, bad, content_damage=True)
        for p in problems:
            if p.kind in ("subkeys", "values"):
                # a list problem joins two places (a key or list, and what it
                # points at): one of those that it names lies in the damage
                named = [p.offset] + [int(x, 16) for x in re.findall(r"0x([0-9a-f]+)", p.reason)]
                assert any(hbin_index(layout, o) in bad for o in named), (p, ranges)
            else:
                assert hbin_index(layout, p.offset) in bad, (p, ranges)


def test_a_subkey_count_mismatch_names_the_list_too():
    """A list whose entry count was zeroed (its bytes are the damage) made
    the problem "nk at X: subkey count 1 but its lists hold 0 entries",
    naming only the intact nk: the list is named too (it failed
    test_random_zeroed_ranges's rule on 6 seeds in 3,000)."""
    data, layout = build()
    lst = layout.subkey_list["K05"]
    struct.pack_into("<H", data, lst + 4 + 2, 0)
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        (p,) = [p for p in hive.problems if p.kind == "subkeys"]
        assert "subkey count 1 but its lists hold 0 entries" in p.reason
        assert f"list at 0x{lst:x}" in p.reason, p.reason


# ---- the Python surface -------------------------------------------------------------

def test_errors_argument_is_validated(tmp_path):
    data, _ = build()
    path = tmp_path / "h.hiv"
    path.write_bytes(data)
    for bad in ("skip", "TOLERANT", None, True):
        with pytest.raises(ValueError):
            regfast.open_hive(path, errors=bad)
        with pytest.raises(ValueError):
            regfast.Hive.from_buffer(bytes(data), errors=bad)


def test_open_hive_tolerant_from_a_file(tmp_path):
    data, layout = build()
    start = layout.hbins[2][0]
    data[start:start + 4096] = bytes(4096)
    path = tmp_path / "h.hiv"
    path.write_bytes(data)
    with pytest.raises(regfast.RegistryCorruptError) as e:
        regfast.open_hive(path, validate=True)
    assert e.value.offset == start
    with regfast.open_hive(path, errors="tolerant") as hive:
        assert [p.offset for p in hive.problems] == [start]
        assert isinstance(hive.problems[0], regfast.HiveProblem)
        assert regfast.recovery_of(hive) is not None
    with regfast.open_hive(path, errors="tolerant", logs=None) as hive:
        assert [p.offset for p in hive.problems] == [start]


def test_strict_open_checks_an_hbin_before_the_first_read_into_it(tmp_path):
    # Strict opens check an hbin's header chain and cells the first time an
    # offset inside it is used (not all at open): keys elsewhere read as
    # usual, and every read reaching into the damaged hbin -- its key, by
    # path or through its parent, or a raw cell -- fails at the hbin's
    # offset, never returning a byte of it. (A broken hbin header also ends
    # the chain of hbins: the hbins after it are as unreachable as in a
    # strict open before; keys are taken from the hbins before it.)
    data, layout = build()
    which = 3
    start, _ = layout.hbins[which]
    inside = sorted(k for k, off in layout.nk.items() if hbin_index(layout, off) == which)
    outside = sorted(k for k in layout.nk if k and all(hbin_index(layout, c) < which for c in key_cells(layout, k)))
    assert inside and outside
    data[start:start + 4] = b"hbiN"
    path = tmp_path / "h.hiv"
    path.write_bytes(data)
    with regfast.open_hive(path) as hive:
        for name in outside:
            assert hive.open(name).name == name.rsplit("\\", 1)[-1]
        for name in inside:
            with pytest.raises(regfast.RegistryCorruptError) as e:
                hive.open(name)
            assert e.value.offset == start and "bad hbin signature" in str(e.value)
        with pytest.raises(regfast.RegistryCorruptError) as e:
            hive.cell(layout.nk[inside[0]])
        assert e.value.offset == start
        for name in outside:    # the damage does not spread
            assert hive.open(name).name == name.rsplit("\\", 1)[-1]
    # the open's recovery report and `dirty` read the base block, not info()
    # (whose cell counts check every hbin): no open waits for a full check
    for logs in (None, "auto"):
        with regfast.open_hive(path, logs=logs) as hive:
            assert hive.dirty is False
            report = regfast.recovery_of(hive)
            assert report is not None and not report.dirty and report.checksum_ok
            assert hive.open(outside[0]).name == outside[0].rsplit("\\", 1)[-1]
            with pytest.raises(regfast.RegistryCorruptError):
                hive.info()


def test_cli_tolerant(tmp_path, capsys):
    from regfast.cli import main

    data, layout = build()
    start = layout.hbins[3][0]
    data[start:start + 4096] = bytes(4096)
    path = tmp_path / "h.hiv"
    path.write_bytes(data)
    assert main(["info", str(path)]) == 1                       # strict: refused
    capsys.readouterr()
    assert main(["info", "--tolerant", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 damaged spot read past" in out and f"0x{start:x} +0x1000 hbin" in out
    assert main(["scan", "--tolerant", str(path)]) == 0
    captured = capsys.readouterr()
    assert "damaged spot" in captured.err and "skipped:" in captured.out
    assert main(["ls", "--tolerant", "-r", str(path)]) == 0
    assert "<damaged:" in capsys.readouterr().out
    assert main(["export", "--tolerant", "-f", "csv", str(path)]) == 0
    assert "K00" in capsys.readouterr().out


def test_walk_of_a_tolerant_hive_skips_damage_a_strict_walk_stops_at():
    """Hive.walk() keeps the promise of a tolerant open (everything reachable):
    its default becomes errors="skip"; a strict walk of the same hive raises."""
    data, layout = build()
    start, _ = layout.hbins[3]
    data[start:start + 4096] = bytes(4096)
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        want = set(hive.scan(errors="skip").key_paths())
        with pytest.raises(regfast.RegistryCorruptError):
            list(hive.walk(errors="strict"))
        got = [k.path for k in hive.walk()]
        assert set(got) == want and len(got) == len(want)
        assert len(want) > 1 and want < set(EXPECTED)
    with regfast.Hive.from_buffer(bytes(data), lenient=True) as hive:
        with pytest.raises(regfast.RegistryCorruptError):
            list(hive.walk())                      # lenient (prefix-only) keeps strict walks


def test_damage_errors_name_the_way_out_that_fits_the_open():
    """Each error of damage says how to read past it. A hive opened strictly
    is told to open it with errors="tolerant" (a bad hbin header, a bad cell
    size: the lazy check's errors too, not only a subkey list's). A hive
    opened tolerantly already was: a strict read that still stops at a
    damaged entry tells it errors="skip", never the open it made; and its
    scan() defaults to errors="skip", as its walk() does."""
    data, layout = build()
    start, _ = layout.hbins[3]
    bad_header = bytearray(data)
    bad_header[start:start + 4] = b"hbiN"
    bad_cell = bytearray(data)
    struct.pack_into("<i", bad_cell, layout.nk["K07\\Sub"], 3)
    for damaged in (bad_header, bad_cell):
        with regfast.Hive.from_buffer(bytes(damaged)) as hive:
            with pytest.raises(regfast.RegistryCorruptError) as e:
                hive.scan()
            assert 'open the hive with errors="tolerant" to read the rest' in str(e.value), str(e.value)
    with pytest.raises(regfast.RegistryCorruptError) as e:     # a truncated file: at the open
        regfast.Hive.from_buffer(bytes(data[:start]))
    assert "truncated" in str(e.value) and 'open the hive with errors="tolerant"' in str(e.value)
    zeroed = bytearray(data)
    zeroed[start:start + 4096] = bytes(4096)
    with regfast.Hive.from_buffer(bytes(zeroed), errors="tolerant") as hive:
        with pytest.raises(regfast.RegistryCorruptError) as e:
            hive.scan(errors="strict")
        msg = str(e.value)
        assert 'scan or walk with errors="skip" to go on past it' in msg and "tolerant" not in msg, msg
        skipped, default = hive.scan(errors="skip"), hive.scan()
        assert default.key_paths() == skipped.key_paths()
        assert default.key_status.tolist() == skipped.key_status.tolist()
        assert default.stats()["key_errors"] >= 1
    with regfast.Hive.from_buffer(bytes(zeroed)) as hive:   # strict: no change
        with pytest.raises(regfast.RegistryCorruptError) as e:
            hive.scan()
        assert 'errors="tolerant"' in str(e.value)


def test_a_value_whose_data_is_damaged_keeps_its_name_and_type_in_a_scan():
    """Only the data of a value whose vk reads is lost: its scan row keeps
    the name and type next to its status (hivex names it too); before, the
    row's name was "" and its type 0."""
    from regfast import arrow
    data, layout = build_hive({"K": {"a": 1, "b": "text", "c": 3}}, timestamp=0)
    data = bytearray(data)
    struct.pack_into("<I", data, layout.vk[("K", "b")] + 4 + 4, 0x80000005)   # inline, 5 > 4 bytes
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        t = hive.scan(errors="skip")
        rows = dict(zip(t.value_names(), zip(t.value_type.tolist(), t.value_status.tolist())))
        assert rows == {"a": (4, 0), "b": (1, 0x20000001), "c": (4, 0)}
        assert t.decoded_values() == [1, None, 3]
        (b,) = arrow.table_batches(t, source="s")
        got = {r["value_name"]: (r["value_type"], r["status"]) for r in b.to_pylist() if r["value_name"]}
        assert got == {"a": ("REG_DWORD", 0), "b": ("REG_SZ", 1015), "c": ("REG_DWORD", 0)}


@pytest.mark.parametrize("nbytes,name", [(9, "Ωmeg"), (1, "©")])     # (Ω is A9 03: one byte, 0xA9, is ©)
def test_a_key_whose_utf16_name_has_an_odd_length_keeps_its_place(nbytes, name):
    """A UTF-16 name of an odd byte count (damage: a strict read raises) reads
    as its whole units in a skipping scan, next to the key's status (a name
    of one byte, with no whole unit: that byte): not "" (which gave a root
    child the root's path and put its subkeys under the root)."""
    data, layout = build_hive({"Ωmega": {"sub": {"v": 1}}, "other": {}}, timestamp=0)
    data = bytearray(data)
    struct.pack_into("<H", data, layout.nk["Ωmega"] + 4 + 0x48, nbytes)       # 10 bytes -> odd
    with regfast.Hive.from_buffer(bytes(data), errors="tolerant") as hive:
        t = hive.scan(errors="skip")
        paths = t.key_paths()
        assert sorted(paths) == sorted(["", "other", name, name + "\\sub"])
        status = dict(zip(paths, t.key_status.tolist()))
        assert status[name] == 0x20000001 and status[name + "\\sub"] == 0
        assert [k.path for k in hive.walk()] == paths
