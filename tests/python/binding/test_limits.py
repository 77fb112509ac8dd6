"""Edges of the API that must give a defined answer (issue 15, items 8, 9, 11):

* a value name longer than any value name can be (16,383 characters) in a
  batch read is the caller's error (winerror 87), not a damaged hive;
* FILETIMEs a datetime cannot hold (past 9999-12-31) keep their raw value and
  give None as a datetime, never an exception — in the API and in `regfast info`;
* open_hive(bytes path), Hive.cell(-1);
* a lookup by name in a key of many values goes through a per-key name index
  (built in C past a threshold) and finds what the linear search finds: the
  first of duplicate names, compared with Windows' upcase table.
"""
from __future__ import annotations

import datetime as dt
import os
import struct

import pytest

import regfast
from regfast.cli import main
from regfast.io.writer import REG_SZ, Value, build_hive

# FILETIME of 9999-12-31 23:59:59.999999 UTC (the last instant a datetime holds)
# and the first tick that is a whole microsecond past it (10000-01-01).
LAST_OK = 2650467743999999999
PAST_9999 = 2650467744000000000


# --- value names over 16,383 characters (15 #8) ----------------------------------

@pytest.fixture
def small(make_hive):
    with regfast.open_hive(make_hive({"K": {"a": "x", "b": 2}}).path) as h:
        yield h


def test_long_value_name_in_a_batch_is_a_parameter_error(small):
    key = small.open("K")
    long_name = "n" * 16384
    for call in (lambda: key.read_values(["a", long_name]),
                 lambda: small.get_many(["K\\" + long_name]),
                 lambda: small.get_many([("K", long_name)], default=None)):
        with pytest.raises(regfast.RegistryError) as e:
            call()
        assert not isinstance(e.value, regfast.RegistryCorruptError)
        assert e.value.winerror == 87 and "16,383" in str(e.value)
    # as a single lookup does
    with pytest.raises(regfast.RegistryError) as e:
        key.value(long_name)
    assert e.value.winerror == 87
    # errors="skip" leaves it in the status column
    b = key.read_values(["a", long_name, "b"], errors="skip")
    assert b.status.tolist() == [0, 87, 0] and b.values() == ["x", None, 2]
    # 16,383 characters is a valid (missing) name
    assert key.read_values(["n" * 16383]).status.tolist() == [2]


def test_zeroed_value_list_entry_is_still_corruption(make_hive):
    built = make_hive({"K": {"a": "x"}}, corrupt=("values.entry0", "K", 0))
    with regfast.open_hive(built.path) as h:
        with pytest.raises(regfast.RegistryCorruptError):
            h.open("K").read_values()


# --- out-of-range FILETIMEs (15 #9) ---------------------------------------------------

@pytest.mark.parametrize("ft", [0xFFFFFFFFFFFFFFFF, PAST_9999])
def test_key_last_write_out_of_range(make_hive, ft):
    built = make_hive({"K": regfast.io.writer.Key(last_write=ft), "Ok": regfast.io.writer.Key(last_write=LAST_OK)})
    with regfast.open_hive(built.path) as h:
        k = h.open("K")
        assert k.last_write is None
        assert k.last_write_raw == ft == k.info().last_write
        ok = h.open("Ok")
        assert ok.last_write == dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc)
        assert ok.last_write_raw == LAST_OK
        t = h.scan()
        assert int(t.key_last_write[t.key_paths().index("K")]) == ft
    assert regfast.filetime_to_datetime(ft) is None
    assert regfast.filetime_to_datetime(LAST_OK).year == 9999


@pytest.mark.parametrize("ft", [0xFFFFFFFFFFFFFFFF, PAST_9999])
def test_info_prints_hive_with_out_of_range_timestamp(tmp_path, capsys, ft):
    data, _ = build_hive({"K": {"v": 1}}, timestamp=ft)
    p = tmp_path / "ts.hiv"
    p.write_bytes(data)
    with regfast.open_hive(p) as h:
        assert h.info().last_write == ft
        assert h.root.last_write is None and h.root.last_write_raw == ft
    assert main(["info", str(p)]) == 0
    out = capsys.readouterr().out
    [line] = [ln for ln in out.splitlines() if ln.startswith("last written")]
    assert f"0x{ft:016x}" in line


def test_filetime_to_datetime_bounds():
    assert regfast.filetime_to_datetime(0) == dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)
    with pytest.raises(ValueError):
        regfast.filetime_to_datetime(-1)       # not a FILETIME at all


# --- small ones (15 #11) ------------------------------------------------------------------

def test_open_hive_accepts_bytes_paths(make_hive):
    p = make_hive({"K": {"v": 1}}).path
    for arg in (os.fsencode(p), os.fsencode(str(p))):
        with regfast.open_hive(arg) as h:
            assert h.open("K")["v"] == 1
            assert h.path == str(p)


def test_open_hive_bytes_path_finds_logs(make_hive):
    p = make_hive({"K": {"v": 1}}, sequence=(2, 1)).path      # dirty, no logs beside it
    with pytest.warns(regfast.DirtyHiveWarning):
        with regfast.open_hive(os.fsencode(p)) as h:
            assert regfast.recovery_of(h).dirty


@pytest.mark.parametrize("off", [-1, -4096, 2 ** 64, 2 ** 70])
def test_cell_bad_offset_is_a_parameter_error(small, off):
    with pytest.raises(regfast.RegistryError) as e:
        small.cell(off)
    assert e.value.winerror == 87
    with pytest.raises(TypeError):
        small.cell("0x1000")


def test_cell_valid_offset_still_works(small):
    payload, allocated = small.cell(0x1020)
    assert allocated and bytes(payload[:2]) == b"nk"
    with pytest.raises(FileNotFoundError):
        small.cell(0x1021)


# --- the per-key value-name index ------------------------------------------------------------

N_BIG = 70_000


@pytest.fixture(scope="module")
def big_key_hive(tmp_path_factory):
    values = {f"value{i:06d}": i for i in range(N_BIG)}
    # names that only Windows' upcase table folds (Greek, Cyrillic, Latin-1), stored in UTF-16
    values.update({"straße": "ss", "Σίσυφος": "greek", "ёлка": "cyr", "Ärger": "latin1"})
    values.update({"dupA": "first", "dupB": "second", "": "default"})
    data, layout = build_hive({"Big": values, "Small": {"dupA": "first", "dupB": "second"}})
    data = bytearray(data)
    # make "dupB" a second "DUPA" (same length): duplicate names, as damaged or odd hives have
    for key in ("Big", "Small"):
        vk = layout.vk[(key, "dupB")]
        assert data[vk + 4 + 0x14:vk + 4 + 0x18] == b"dupB"
        data[vk + 4 + 0x14:vk + 4 + 0x18] = b"DUPA"
    path = tmp_path_factory.mktemp("index") / "big.hiv"
    path.write_bytes(data)
    return path


def test_name_index_finds_what_a_linear_search_finds(big_key_hive):
    with regfast.open_hive(big_key_hive) as h:
        big = h.open("Big")
        for i in list(range(0, N_BIG, 997)) + [N_BIG - 1]:
            assert big[f"VALUE{i:06d}"] == i
            assert big.value(f"value{i:06d}").name == f"value{i:06d}"
        # (RtlUpcaseUnicodeChar leaves the final ς alone: "ΣΊΣΥΦΟΣ" is another name)
        for name, want in (("STRASSE", None), ("STRAßE", "ss"), ("σίσυφος", "greek"), ("ΣΊΣΥΦΟς", "greek"),
                           ("ΣΊΣΥΦΟΣ", None), ("ЁЛКА", "cyr"), ("ärger", "latin1"), ("äRGER", "latin1"),
                           ("", "default")):
            assert big.get(name) == want, name
        # duplicates: the first in the value list wins, as without the index
        assert big["dupa"] == "first" == h.open("Small")["dupa"]
        assert big.value("DUPA").name == "dupA"
        assert "value070000" not in big and big.get("value") is None and big.get("value0000001") is None
        assert "Value000123" in big
        # the batch path agrees
        assert big.read_values(["DUPA", "value000005"]).values() == ["first", 5]


def test_name_index_on_a_damaged_list_fails_like_the_linear_search(tmp_path):
    values = {f"v{i:05d}": i for i in range(3000)}
    data, layout = build_hive({"Big": values})
    data = bytearray(data)
    vk = layout.vk[("Big", "v01500")]
    data[vk + 4:vk + 6] = b"xx"            # the vk signature
    p = tmp_path / "bad.hiv"
    p.write_bytes(data)
    with regfast.open_hive(p) as h:
        big = h.open("Big")
        for _ in range(2):                 # the second lookup would use an index
            assert big["v00007"] == 7      # before the damage: found
            with pytest.raises(regfast.RegistryCorruptError) as e:
                big["v02000"]              # after it: the linear search meets the bad vk first
            assert e.value.offset == vk


# --- allocations the file does not bound ---------------------------------------

def _one_big_value_listed_many_times(tmp_path, times=20000):
    """A 0.9 MB hive whose key lists one 200 KB big-data value 20,001 times
    (its value list rewritten): healthy hives never share data, so the big
    data of every listed value used to be summed and allocated as one arena
    (3.7 GiB here)."""
    vals = {"big": bytes(range(256)) * 800}
    vals.update({f"s{i:05d}": i for i in range(times)})
    data, layout = build_hive({"K": vals})
    data = bytearray(data)
    vl, big = layout.value_list["K"], layout.vk[("K", "big")]
    for i in range(times + 1):
        struct.pack_into("<I", data, vl + 4 + 4 * i, big - 4096)
    return bytes(data), big


def test_shared_big_data_is_not_summed_into_one_arena(tmp_path):
    from isolated import run_isolated
    data, big = _one_big_value_listed_many_times(tmp_path)
    path = tmp_path / "shared.hiv"
    path.write_bytes(data)
    r = run_isolated(r"""
        import resource, sys
        import regfast
        # far more than the file, far less than what the sum asked for (4 GB);
        # above the address space already mapped, so that ASan's shadow fits
        vm = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:")][0]
        resource.setrlimit(resource.RLIMIT_AS, (vm + (768 << 20), resource.RLIM_INFINITY))
        h = regfast.Hive.from_file(sys.argv[1])
        want = bytes(range(256)) * 800
        t = h.scan()                               # one vk listed again: read once
        assert t.n_values == 20001 and (t.value_status == 0).all()
        assert bytes(t.value_data(0)) == want and bytes(t.value_data(20000)) == want
        assert len(set(t.value_offset.tolist())) == 1          # the rows share its bytes
        # read_values copies each listed value: past what the file holds, the
        # rows are corruption at their vk (strict raises, skip marks them)
        try:
            h.open("K").read_values()
        except regfast.RegistryCorruptError as e:
            assert e.offset == int(sys.argv[2]) and "sharing data" in str(e), repr(e)
        else:
            raise AssertionError("read_values() of 20,001 copies of one value returned")
        b = h.open("K").read_values(errors="skip")
        assert b.values()[0] == want and len(b) == 20001
        print("ok")
    """, str(path), str(big))
    assert r.stdout.strip().endswith("ok")
