"""The scan's 32-bit columns at the edges of what a hive file can hold.

A scan table keeps tokens, offsets and row numbers in 32 bits (rf_scan), and
bit 31 of ``value_offset`` marks the arena. Windows writes no hive whose
data lies past 2 GiB; a crafted or damaged one gets a clear RF_E_LIMIT from
scan(), never an offset read as something else. The buffers here are numpy
zeros of 2-4 GiB: untouched pages are the kernel's zero page, so they cost
address space, not memory (each test runs in well under a second).
"""
from __future__ import annotations

import errno
import struct
import warnings

import numpy as np
import pytest

import regfast
from regfast.io.writer import REG_BINARY, Value, build_hive

RF_E_LIMIT = 0x20000004


def _far_hbin(buf: np.ndarray, hbins_off: int, data: bytes) -> None:
    """An hbin at `hbins_off` holding one allocated cell of `data` at +0x20."""
    far = bytearray(0x1000)
    far[0:4] = b"hbin"
    struct.pack_into("<II", far, 4, hbins_off, 0x1000)
    struct.pack_into("<i", far, 0x20, -((4 + len(data) + 7) & ~7))
    far[0x24:0x24 + len(data)] = data
    used = (4 + len(data) + 7) & ~7
    struct.pack_into("<i", far, 0x20 + used, 0x1000 - 0x20 - used)
    buf[4096 + hbins_off:4096 + hbins_off + 0x1000] = np.frombuffer(bytes(far), np.uint8)


def _walked_to_the_end(hbins_off: int) -> tuple[np.ndarray, int]:
    """A hive whose value K\\v has its data in an hbin at `hbins_off`, with
    hbins size 0 and a bad checksum: a tolerant open walks the hbins to the
    end of the buffer (over gaps of zeros, skipped as problems)."""
    data, lay = build_hive({"K": {"v": Value(REG_BINARY, bytes(range(0xA0, 0xB0)))}})
    data = bytearray(data)
    struct.pack_into("<I", data, lay.vk[("K", "v")] + 4 + 0x08, hbins_off + 0x20)
    struct.pack_into("<I", data, 0x28, 0)
    struct.pack_into("<I", data, 0x1FC, 0xDEADBEEF)
    buf = np.zeros(4096 + hbins_off + 0x1000, np.uint8)
    buf[: len(data)] = np.frombuffer(bytes(data), np.uint8)
    _far_hbin(buf, hbins_off, bytes(range(0xA0, 0xB0)))
    return buf, hbins_off


def _tolerant(buf: np.ndarray) -> regfast.Hive:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return regfast.Hive.from_buffer(buf, errors="tolerant")


def _assert_limit(e: pytest.ExceptionInfo[OSError]) -> None:
    assert e.value.status == RF_E_LIMIT and e.value.errno == errno.E2BIG


def test_scan_refuses_live_data_past_2_gib():
    buf, _ = _walked_to_the_end(0x80000000)
    h = _tolerant(buf)
    assert h.open("K").value("v").raw() == bytes(range(0xA0, 0xB0))   # key by key: read
    with pytest.raises(OSError) as e:
        h.scan(errors="skip")
    _assert_limit(e)
    assert "2 GiB" in str(e.value)


def test_a_value_row_past_4_gib_fails_alone():
    # the file offset 0x1_0000_0024 would wrap to 0x24, the base block
    buf, _ = _walked_to_the_end(0xFFFFF000)
    h = _tolerant(buf)
    assert h.open("K").value("v").raw() == bytes(range(0xA0, 0xB0))
    t = h.scan(errors="skip")
    assert t.value_status.tolist() == [RF_E_LIMIT]
    with pytest.raises(OSError) as e:
        t.value_data(0)
    assert e.value.winerror == RF_E_LIMIT or e.value.status == RF_E_LIMIT
    with pytest.raises(OSError) as e:
        h.scan(errors="strict")         # (a tolerant hive's scan() skips: the row above)
    _assert_limit(e)
    assert "4 GiB" in str(e.value)


@pytest.mark.parametrize("with_arena", [False, True])
def test_scan_refuses_deleted_data_past_2_gib(make_hive, with_arena):
    # a deleted value whose data lies past 2 GiB (in the bytes after the
    # last hbin): its offset has bit 31, the arena's mark in the column
    tree = {"P": {"K": {"keep": "x", "gone": "was here"}}}
    if with_arena:
        tree["Big"] = {"b": Value(REG_BINARY, b"\x11" * 20000)}    # big data: an arena exists
    data, lay = build_hive(tree)
    data = bytearray(data)
    struct.pack_into("<I", data, lay.nk["P\\K"] + 4 + 0x24, 1)           # K: 1 value left
    for off in (lay.vk[("P\\K", "gone")], lay.data[("P\\K", "gone")]):    # both cells freed
        size, = struct.unpack_from("<i", data, off)
        struct.pack_into("<i", data, off, abs(size))
    far = 0x80000000
    struct.pack_into("<I", data, lay.vk[("P\\K", "gone")] + 4 + 0x08, far)
    buf = np.zeros(4096 + far + 4096, np.uint8)
    buf[: len(data)] = np.frombuffer(bytes(data), np.uint8)
    buf[4096 + far:4096 + far + 4] = np.frombuffer(struct.pack("<i", 64), np.uint8)
    payload = "was here\0".encode("utf-16-le")
    buf[4096 + far + 4:4096 + far + 4 + len(payload)] = np.frombuffer(payload, np.uint8)
    h = regfast.Hive.from_buffer(buf)
    gone = [r for r in h.deleted() if isinstance(r, regfast.DeletedValue) and r.name == "gone"]
    assert [bytes(r.data) for r in gone] == [payload]                  # Hive.deleted() reads it
    assert h.scan().n_values == (2 if with_arena else 1)               # the live rows alone: fine
    with pytest.raises(OSError) as e:
        h.scan(include_deleted=True)
    _assert_limit(e)


def test_deleted_record_past_4_gib_keeps_its_offset():
    # a vk in the bytes after the last hbin, at file offset 4 GiB + 4 KiB:
    # its offset was computed in 32 bits (0x1000); a token cannot hold it
    data, _ = build_hive({"K": {"v": "x"}})
    data = bytearray(data)
    struct.pack_into("<I", data, 0x28, 0xFFFFF000)
    s = 0
    for i in range(0, 0x1FC, 4):
        s ^= struct.unpack_from("<I", data, i)[0]
    struct.pack_into("<I", data, 0x1FC, 1 if s == 0 else (0xFFFFFFFE if s == 0xFFFFFFFF else s))
    buf = np.zeros(4096 + 0xFFFFF000 + 0x2000, np.uint8)
    buf[: len(data)] = np.frombuffer(bytes(data), np.uint8)
    vk = bytearray(0x40)
    struct.pack_into("<i", vk, 0, 0x40)
    vk[4:6] = b"vk"
    struct.pack_into("<H", vk, 6, 4)
    struct.pack_into("<II", vk, 8, 0x80000004, 0x41414141)
    struct.pack_into("<IHH", vk, 16, REG_BINARY, 1, 0)
    vk[0x18:0x1C] = b"gone"
    q = 4096 + 0x1_0000_0000
    buf[q:q + 0x40] = np.frombuffer(bytes(vk), np.uint8)
    h = _tolerant(buf)
    assert [(r.name, r.offset) for r in h.deleted()] == [("gone", q)]
    with pytest.raises(OSError) as e:
        h.scan(errors="skip", include_deleted=True)
    _assert_limit(e)
    assert h.scan(errors="skip").value_names() == ["v"]


def test_made_columns_are_made_once(make_hive):
    built = make_hive({"A": {"B": {"v": "x"}}, "C": {}})
    with regfast.open_hive(built.path) as hive:
        t = hive.scan()
        for name in ("key_depth", "key_n_values", "key_deleted", "value_deleted", "value_malformed",
                     "value_relisted", "key_name_off", "value_name_off"):
            assert getattr(t, name) is getattr(t, name), name
        assert t.key_depth.tolist() == [0, 1, 2, 1]
        assert t.key_n_values.tolist() == [0, 0, 1, 0]
