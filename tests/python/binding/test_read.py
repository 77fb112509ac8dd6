"""Reading hives: regfast against what the writer wrote and against hivex."""
from __future__ import annotations

import datetime as dt
import errno
import struct

import pytest

import regfast
from regfast.io.writer import (REG_BINARY, REG_DWORD, REG_DWORD_BIG_ENDIAN, REG_EXPAND_SZ, REG_LINK,
                            REG_MULTI_SZ, REG_NONE, REG_QWORD, REG_RESOURCE_LIST, REG_SZ, Key, Value,
                            build_hive)

from conftest import expected_tree, regfast_tree
from oracle import hivex_tree, require_hivex

UTC = dt.timezone.utc

RICH_TREE = Key(
    subkeys={
        "Software": {
            "Vendor": Key(
                values={
                    "": "default value",
                    "sz": "hello",
                    "expand": Value(REG_EXPAND_SZ, "%SystemRoot%\\x"),
                    "bin": b"\x00\x01\x02\xff" * 10,
                    "dword": 0xDEADBEEF,
                    "be": Value(REG_DWORD_BIG_ENDIAN, 0x01020304),
                    "link": Value(REG_LINK, "\\Registry\\Machine\\Software"),
                    "multi": ["one", "", "three"],
                    "res": Value(REG_RESOURCE_LIST, b"\x01\x00\x00\x00" * 5),
                    "qword": Value(REG_QWORD, 2**63 + 5),
                    "none": Value(REG_NONE, b""),
                    "devprop": Value(0xFFFF0012, b"\x07"),
                    "odd type": Value(0x12345678, b"abcdefgh"),
                },
                class_name="VendorClass",
                last_write=dt.datetime(2020, 2, 29, 12, 34, 56, tzinfo=UTC),
            ),
            "Empty": {},
        },
        "Café": {"Ünïcode": {"naïve": "résumé"}},
        "日本": {"Ωmega": {"名前": "値", "ω": 1}},
    },
)


def open_built(built):
    return regfast.open_hive(built.path)


@pytest.mark.parametrize("minor", [3, 4, 5, 6])
def test_rich_tree_matches_writer_and_hivex(make_hive, minor):
    built = make_hive(RICH_TREE, minor=minor)
    with open_built(built) as hive:
        got = regfast_tree(hive)
        assert hive.info().version == (1, minor)
    want = expected_tree(RICH_TREE)
    assert got == want
    require_hivex()
    assert hivex_tree(built.path) == got


def test_every_value_type_decodes(make_hive):
    built = make_hive(RICH_TREE)
    with open_built(built) as hive:
        k = hive.open(r"Software\Vendor")
        assert k[""] == "default value"
        assert k["sz"] == "hello"
        assert k["expand"] == "%SystemRoot%\\x"          # not expanded
        assert k["bin"] == b"\x00\x01\x02\xff" * 10
        assert k["dword"] == 0xDEADBEEF
        assert k["be"] == 0x01020304
        assert k["link"] == "\\Registry\\Machine\\Software"
        assert k["multi"] == ["one", "", "three"]        # nothing after "" is dropped
        assert k["res"] == b"\x01\x00\x00\x00" * 5
        assert k["qword"] == 2**63 + 5
        assert k["none"] == b""
        assert k["devprop"] == b"\x07"
        assert k["odd type"] == b"abcdefgh"
        types = {v.name: v.type for v in k.values()}
        assert types["expand"] == REG_EXPAND_SZ and types["devprop"] == 0xFFFF0012
        assert types["be"] == REG_DWORD_BIG_ENDIAN and types["multi"] == REG_MULTI_SZ


def test_device_property_value_is_exactly_as_long_as_its_vk_says(make_hive):
    # Peer trap: one parser reads 0xFFFF00xx values to the end of the file.
    tree = {"Properties": {f"{{p}}\\{i:04d}": {} for i in range(0)} | {
        "P": {"00": Value(0xFFFF0011, b"\x01"), "01": Value(0xFFFF0012, "x".encode("utf-16-le")),
              "02": Value(0xFFFF0007, b"z" * 40)}}}
    built = make_hive(tree)
    with open_built(built) as hive:
        vals = {v.name: (v.type, v.size, v.raw()) for v in hive.open(r"Properties\P").values()}
    assert vals == {"00": (0xFFFF0011, 1, b"\x01"), "01": (0xFFFF0012, 2, b"x\x00"),
                    "02": (0xFFFF0007, 40, b"z" * 40)}


@pytest.mark.parametrize("size", [0, 1, 4, 5, 16344, 16345, 100_000, 1 << 20])
@pytest.mark.parametrize("minor", [3, 5, 6])
def test_value_sizes_inline_cell_and_big_data(make_hive, size, minor):
    payload = bytes((i * 7 + 3) & 0xFF for i in range(size))
    built = make_hive({"K": {"v": payload}}, minor=minor)
    with open_built(built) as hive:
        v = hive.open("K").value("v")
        assert v.size == size
        assert v.raw() == payload
        assert bytes(hive.open("K").value_raw("v")[1]) == payload
    if size > 16344 and minor >= 4:
        with open(built.path, "rb") as f:
            f.seek(built.layout.data[("K", "v")] + 4)
            assert f.read(2) == b"db"
    require_hivex()
    assert hivex_tree(built.path)["K"]["values"]["v"] == (REG_BINARY, payload)


def test_5000_subkeys_ri_root_lookup_and_order(make_hive):
    names = [f"Sub{i:05d}" for i in range(5000)]
    built = make_hive({"Big": {n: {"i": i} for i, n in enumerate(names)}})
    with open(built.path, "rb") as f:
        f.seek(built.layout.subkey_list["Big"] + 4)
        assert f.read(2) == b"ri"
    with open_built(built) as hive:
        big = hive.open("Big")
        assert big.info().subkeys == 5000
        assert big.subkey_names() == sorted(names, key=str.upper)
        for i in range(0, 5000, 97):
            assert hive.open(f"big\\sub{i:05d}")["i"] == i
            assert hive.open(f"BIG\\SUB{i:05d}")["I"] == i
        with pytest.raises(FileNotFoundError):
            hive.open(r"Big\Sub05000")
    require_hivex()
    assert set(hivex_tree(built.path)) == {""} | {"Big"} | {"Big\\" + n for n in names}


@pytest.mark.parametrize("index", ["lh", "lf", "li"])
def test_each_leaf_index_kind(make_hive, index):
    tree = {"P": {f"k{i}": {"v": i} for i in range(40)}}
    built = make_hive(tree, index=index, leaf_max=16)   # ri over 3 leaves
    with open(built.path, "rb") as f:
        f.seek(built.layout.subkey_list["P"] + 4)
        assert f.read(2) == b"ri"
    with open_built(built) as hive:
        assert regfast_tree(hive) == expected_tree(tree)
        assert hive.open("p\\K39")["v"] == 39


def test_non_ascii_names_and_case_insensitive_lookup(make_hive):
    built = make_hive(RICH_TREE)
    with open_built(built) as hive:
        assert hive.open("CAFÉ\\ünïCODE")["NAÏVE"] == "résumé"
        assert hive.open("café").name == "Café"                 # stored case is kept
        assert hive.open("日本\\ΩMEGA")["名前"] == "値"
        assert hive.open("日本\\ωmega")["Ω"] == 1               # omega folds both ways
        assert "NaÏve" in hive.open("Café\\Ünïcode")
    # "Café" fits Latin-1: stored compressed (flag 0x20), one byte per char.
    data = built.path.read_bytes()
    nk = built.layout.nk["Café"] + 4
    flags, = struct.unpack_from("<H", data, nk + 2)
    name_len, = struct.unpack_from("<H", data, nk + 0x48)
    assert flags & 0x20 and name_len == 4 and data[nk + 0x4C:nk + 0x50] == "Café".encode("latin-1")


def test_key_info_like_key_full_information(make_hive):
    built = make_hive(RICH_TREE)
    with open_built(built) as hive:
        k = hive.open(r"Software\Vendor")
        info = k.info()
        assert info.subkeys == 0 and info.values == 13
        assert info.class_name == k.class_name == "VendorClass"
        assert info.max_value_name_len == len("odd type") * 2
        assert info.max_value_data_len == max(v.size for v in k.values()) == 52   # the REG_LINK
        assert k.last_write == dt.datetime(2020, 2, 29, 12, 34, 56, tzinfo=UTC)
        sw = hive.open("Software")
        assert sw.info().max_name_len == len("Vendor") * 2
        assert sw.class_name is None
        assert k.parent == sw and k.parent.path == "Software"
        assert hive.root.parent is None
        assert k.path == r"Software\Vendor"
        child = next(iter(hive.open("日本").subkeys()))
        assert child.path == "日本\\Ωmega"


def test_security_descriptor_bytes_are_those_written(make_hive):
    from regfast.io.writer import default_security_descriptor
    custom = bytes(default_security_descriptor())
    built = make_hive(Key(subkeys={"A": Key(security=custom), "B": {}}))
    with open_built(built) as hive:
        sd = hive.open("A").security_descriptor()
        assert bytes(sd) == custom
        del sd


def test_dirty_hive_is_reported(make_hive):
    built = make_hive({"A": {}}, sequence=(7, 6))
    with open_built(built) as hive:
        info = hive.info()
        assert hive.dirty and info.dirty and info.sequence == (7, 6)
    clean = make_hive({"A": {}})
    with open_built(clean) as hive:
        assert not hive.dirty


# ---- strings that peers get wrong -----------------------------------------

@pytest.mark.parametrize("raw,expected", [
    ("abc\0".encode("utf-16-le"), "abc"),
    ("abc".encode("utf-16-le"), "abc"),                   # no NUL terminator
    ("abc".encode("utf-16-le") + b"\x00", "abc"),         # odd byte length
    ("ab\0cd\0".encode("utf-16-le"), "ab"),               # embedded NUL: ends there, as winreg
    (b"", ""),
])
def test_reg_sz_edge_cases(make_hive, raw, expected):
    built = make_hive({"K": {"s": Value(REG_SZ, raw)}})
    with open_built(built) as hive:
        k = hive.open("K")
        assert k["s"] == expected
        assert bytes(k.value_raw("s")[1]) == raw           # the raw bytes are all there


@pytest.mark.parametrize("raw,expected", [
    ("a\0b\0\0".encode("utf-16-le"), ["a", "b"]),
    ("a\0b\0".encode("utf-16-le"), ["a", "b"]),           # missing final NUL
    ("a\0b".encode("utf-16-le"), ["a", "b"]),             # missing both
    ("\0".encode("utf-16-le"), []),
    (b"", []),
    ("a\0\0b\0\0".encode("utf-16-le"), ["a", "", "b"]),   # empty string kept, b not lost
])
def test_multi_sz_edge_cases(make_hive, raw, expected):
    built = make_hive({"K": {"m": Value(REG_MULTI_SZ, raw)}})
    with open_built(built) as hive:
        assert hive.open("K")["m"] == expected


@pytest.mark.parametrize("vtype,raw,want", [(REG_DWORD, b"\x01\x02\x03", 0x030201),
                                            (REG_QWORD, b"\x01" * 4, 0x01010101),
                                            (REG_DWORD_BIG_ENDIAN, b"", 0)])
def test_integer_with_wrong_size_decodes_as_winreg(make_hive, vtype, raw, want):
    # every size and every path: test_decode.py
    built = make_hive({"K": {"n": Value(vtype, raw)}})
    with open_built(built) as hive:
        k = hive.open("K")
        assert k["n"] == want and not k.value("n").well_formed
        assert bytes(k.value_raw("n")[1]) == raw


# ---- zero copy and lifetimes ---------------------------------------------

def test_memoryview_is_zero_copy_and_close_defers_unmapping(make_hive):
    built = make_hive({"K": {"v": b"Z" * 100}})
    hive = regfast.open_hive(built.path)
    t, mv = hive.open("K").value_raw("v")
    assert t == REG_BINARY and mv.readonly and mv.nbytes == 100
    with pytest.raises(TypeError):
        mv[0] = 1                           # read-only
    hive.close()
    assert hive.closed and hive.mapped      # closed for calls, still mapped for the view
    assert bytes(mv) == b"Z" * 100          # still readable: nothing was unmapped
    with pytest.raises(OSError) as e:
        hive.root
    assert e.value.winerror == 6
    mv.release()
    assert not hive.mapped                  # the last view released the mapping


def test_view_outlives_dropped_hive_reference(make_hive):
    built = make_hive({"K": {"v": b"Q" * 64}})
    mv = regfast.open_hive(built.path).open("K").value("v").data
    import gc
    gc.collect()
    assert bytes(mv) == b"Q" * 64           # the view holds the hive


def test_closed_hive_raises_invalid_handle(make_hive):
    built = make_hive({"K": {"v": 1}})
    hive = regfast.open_hive(built.path)
    key = hive.open("K")
    token = key.offset
    hive.close()
    for op in (lambda: key["v"], lambda: list(key.subkeys()), lambda: hive.root, key.info):
        with pytest.raises(OSError) as e:
            op()
        assert e.value.winerror == 6
    hive.close()                            # closing twice is fine
    # a repr never raises: this key's path was never read, and the closed hive cannot tell it
    assert repr(key) == f"<regfast.Key token 0x{token:x} (hive closed)>"


def test_io_errors_carry_a_win32_code(tmp_path):
    """regfast's I/O and limit statuses have Win32 twins (those scan_many's
    rows give): a name too long for the OS is ERROR_FILENAME_EXCED_RANGE
    (206), not winerror 0."""
    with pytest.raises(regfast.RegistryError) as e:
        regfast.open_hive(str(tmp_path / ("a" * 5000)))
    assert e.value.winerror == 206 and e.value.errno == errno.ENAMETOOLONG
    from regfast.exceptions import RF_E_IO, RF_E_LIMIT, error_from_status
    assert error_from_status(RF_E_IO, "x").winerror == 1117            # ERROR_IO_DEVICE
    assert error_from_status(RF_E_LIMIT, "x").winerror == 1450         # ERROR_NO_SYSTEM_RESOURCES


def test_walk_under_way_ends_when_the_hive_closes(make_hive):
    # A walk started before close() used to run to its end, yielding keys
    # that raised only once used; it raises winerror 6 like every other call.
    built = make_hive({f"K{i}": {"S": {"v": i}} for i in range(600)})   # more than one batch ahead
    hive = regfast.open_hive(built.path)
    walk = hive.walk()
    assert next(walk).path == ""
    assert next(walk).name == "K0"
    hive.close()
    with pytest.raises(OSError) as e:
        next(walk)
    assert e.value.winerror == 6


def test_from_buffer_bytes_and_bytearray(make_hive):
    data, _ = build_hive(RICH_TREE)
    hive = regfast.Hive.from_buffer(data)
    assert hive.open(r"Software\Vendor")["dword"] == 0xDEADBEEF
    assert hive.path is None
    hive.close()
    ba = bytearray(data)
    hive = regfast.Hive.from_buffer(ba)
    with pytest.raises(BufferError):
        ba.extend(b"x")                     # held, not copied: cannot be resized
    hive.close()
    ba.extend(b"x")


# ---- errors are winreg-compatible OSErrors ---------------------------------

def test_missing_key_and_value_are_file_not_found(make_hive):
    built = make_hive(RICH_TREE)
    with open_built(built) as hive:
        with pytest.raises(FileNotFoundError) as e:
            hive.open(r"Software\Nope")
        assert e.value.winerror == 2 and e.value.filename == r"Software\Nope"
        assert isinstance(e.value, regfast.RegistryError)
        with pytest.raises(FileNotFoundError) as e:
            hive.open("Software")["nope"]
        assert e.value.winerror == 2
        assert hive.open("Software").get("nope", 42) == 42
        assert "nope" not in hive.open("Software")


@pytest.mark.parametrize("path", ["A\\\\B", "x" * 256, "\\\\"])
def test_bad_paths(make_hive, path):
    built = make_hive({"A": {"B": {}}})
    with open_built(built) as hive:
        with pytest.raises(OSError) as e:
            hive.open(path)
        assert e.value.winerror == 161


def test_leading_and_trailing_separators(make_hive):
    built = make_hive({"A": {"B": {}}})
    with open_built(built) as hive:
        assert hive.open("\\A\\B").path == "A\\B"
        assert hive.open("A\\B\\").name == "B"
        assert hive.open("").path == ""


def test_missing_file():
    with pytest.raises(FileNotFoundError) as e:
        regfast.open_hive("/nonexistent/hive")
    assert e.value.filename == "/nonexistent/hive"


def test_walk_visits_every_key_once_parents_first(make_hive):
    built = make_hive(RICH_TREE)
    with open_built(built) as hive:
        paths = [k.path for k in hive.walk()]
        assert len(paths) == len(set(paths)) == len(expected_tree(RICH_TREE))
        seen = set()
        for p in paths:
            assert p == "" or p.rpartition("\\")[0] in seen
            seen.add(p)
        assert [k.path for k in hive.walk("Café")] == ["Café", "Café\\Ünïcode"]


def test_last_write_conversion_matches_reference_over_the_whole_range(make_hive):
    # The binding builds datetimes with its own civil-from-days code; check it
    # against the plain epoch + timedelta reference at edges and at random.
    import random
    from regfast._types import filetime_to_datetime
    rnd = random.Random(7)
    fts = [0, 1, 9, 10, 864_000_000_000 - 1, 116444736000000000, 133444736123456789,
           2650467743999999990] + [rnd.randrange(0, 2650467743999999990) for _ in range(500)]
    built = make_hive(Key(subkeys={f"k{i}": Key(last_write=ft) for i, ft in enumerate(fts)}))
    with regfast.open_hive(built.path) as hive:
        for i, ft in enumerate(fts):
            assert hive.open(f"k{i}").last_write == filetime_to_datetime(ft), ft
        # Hive.walk's keys carry the time their scan read: the same answers
        walked = {k.name: k for k in hive.walk() if k.path}
        assert len(walked) == len(fts)
        for i, ft in enumerate(fts):
            assert walked[f"k{i}"].last_write_raw == ft
            assert walked[f"k{i}"].last_write == filetime_to_datetime(ft), ft
    with pytest.raises(regfast.RegistryError):   # and a closed hive still raises
        walked["k0"].last_write


def test_last_write_past_year_9999_is_none(make_hive):
    # more cases (and regfast info): test_limits.py
    built = make_hive(Key(subkeys={"k": Key(last_write=2650467743999999991),
                                   "past": Key(last_write=2650467744000000000)}))
    with regfast.open_hive(built.path) as hive:
        assert hive.open("k").last_write.year == 9999       # still that microsecond
        assert hive.open("past").last_write is None
        assert hive.open("past").last_write_raw == 2650467744000000000


def test_values_listed_before_close_fail_cleanly_after(make_hive):
    built = make_hive({"K": {"a": "x", "big": b"b" * 20000}})
    hive = regfast.open_hive(built.path)
    vals = list(hive.open("K").values())
    assert [v.value for v in vals] == ["x", b"b" * 20000]
    hive.close()
    for v in vals:                          # their cached data pointers are never used
        for op in (lambda: v.value, lambda: v.data):
            with pytest.raises(OSError) as e:
                op()
            assert e.value.winerror == 6
    assert not hive.mapped


# REG_SZ/EXPAND_SZ/LINK/MULTI_SZ decoding takes a narrow fast path for ASCII and
# Latin-1 text and CPython's UTF-16 decoder for the rest: both must agree with
# the reference decoding (utf-16-le, surrogatepass; REG_SZ ends at the first NUL).
_TEXTS = ["", "a", "plain ascii \x7f", "é Latin-1 \xa0\xff", "\x80", "Ā above Latin-1", "中文",
          "emoji \U0001F600", "lone \ud800 surrogate", "nul\x00inside", "\x00leading nul",
          "x" * 5000 + "é"]


@pytest.mark.parametrize("text", _TEXTS)
def test_string_decoding_matches_the_reference(make_hive, text):
    from regfast.io.writer import REG_EXPAND_SZ, REG_LINK, REG_MULTI_SZ, REG_SZ, Value
    raw = text.encode("utf-16-le", "surrogatepass")
    tree = {"K": {"sz": Value(REG_SZ, raw + b"\0\0"), "odd": Value(REG_SZ, raw + b"A"),
                  "exp": Value(REG_EXPAND_SZ, raw), "link": Value(REG_LINK, raw),
                  "multi": Value(REG_MULTI_SZ, raw + b"\0\0" + raw + b"\0\0\0\0")}}
    built = make_hive(tree)
    want_sz = text.split("\0")[0]
    with regfast.open_hive(built.path) as hive:
        k = hive.open("K")
        assert k["sz"] == want_sz
        assert k["odd"] == want_sz                 # an odd trailing byte is not a character
        assert k["exp"] == want_sz
        assert k["link"] == text                   # REG_LINK keeps NULs: it is counted, not terminated
        assert k["multi"] == (text.split("\0") + text.split("\0"))
        t = hive.scan("K")
        by_name = dict(zip(t.value_names(), t.decoded_values()))
        assert by_name == {"sz": want_sz, "odd": want_sz, "exp": want_sz, "link": text,
                           "multi": text.split("\0") + text.split("\0")}
        # the narrow path must build well-formed strings: a Latin-1 string
        # flagged ASCII would compare equal yet encode to invalid UTF-8
        for got, want in ((k["sz"], want_sz), (k["link"], text)):
            assert got.isascii() == want.isascii()
            assert got.encode("utf-8", "surrogatepass") == want.encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("call,exc,words", [
    (lambda h, k, b: k.subkey(None), TypeError, "a subkey name is a str, not NoneType"),
    (lambda h, k, b: k.subkey(b"x"), TypeError, "a subkey name is a str, not bytes"),
    (lambda h, k, b: h.slack("x"), TypeError, "min_length is an int, not str"),
    (lambda h, k, b: h.slack(1.5), TypeError, "min_length is an int, not float"),
    (lambda h, k, b: regfast.type_name(-1), ValueError, "32-bit unsigned"),
    (lambda h, k, b: regfast.type_name(None), TypeError, "a value type is an int, not NoneType"),
    (lambda h, k, b: regfast.filetime_to_datetime("x"), TypeError, "a FILETIME is an int, not str"),
    (lambda h, k, b: b.buffer(len(b)), IndexError, "row 1 of a batch of 1 rows"),
    (lambda h, k, b: b.as_int(default=-1), ValueError, "default must be in [0, 2**64)"),
])
def test_wrong_arguments_say_what_was_expected(make_hive, call, exc, words):
    """A wrong argument is the caller's: TypeError/ValueError/IndexError
    naming it, not an error from deep inside (a '<' between str and int, a
    numpy index message, a uint64_t conversion)."""
    import numpy as np
    built = make_hive({"K": {"v": 1}})
    with regfast.open_hive(built.path) as hive:
        key = hive.open("K")
        with pytest.raises(exc) as e:
            call(hive, key, key.read_values())
        assert words in str(e.value)
    assert regfast.type_name(np.uint32(4)) == "REG_DWORD" and regfast.type_name(np.uint32(99)) == "0x00000063"


def test_numpy_integers_are_ints(make_hive):
    """What the checks above refuse is the type, not numpy: numpy integers
    (anything with __index__) pass as ints; bool and float do not."""
    import numpy as np
    built = make_hive({"K": {"v": 1, "s": "x"}})
    with regfast.open_hive(built.path) as hive:
        assert isinstance(hive.slack(np.int64(24)), list)
        assert hive.open("K").read_values().as_int(default=np.uint64(7)).tolist() == [1, 7]
    for bad in (True, 1.0, [1]):
        with pytest.raises(TypeError, match="a value type is an int"):
            regfast.type_name(bad)
