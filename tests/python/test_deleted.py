"""Deleted data: records left in free cells, and slack space."""
from __future__ import annotations

import struct

import pytest

import regfast
from regfast.writer import Key, Value, REG_BINARY

WHEN = 133444736000000000  # 2023-11-16


def free_cell(data: bytearray, off: int) -> None:
    """Mark the cell at file offset `off` free, as Windows does on delete."""
    size, = struct.unpack_from("<i", data, off)
    assert size < 0
    struct.pack_into("<i", data, off, -size)


def delete_key(built, parent: str, child: str, value_names=()) -> bytes:
    """Unlink `parent\\child` (its parent's only subkey) and free its cells."""
    data = bytearray(built.path.read_bytes())
    lay = built.layout
    path = f"{parent}\\{child}" if parent else child
    struct.pack_into("<I", data, lay.nk[parent] + 4 + 0x14, 0)          # parent: 0 subkeys
    free_cell(data, lay.subkey_list[parent])
    free_cell(data, lay.nk[path])
    if value_names:
        free_cell(data, lay.value_list[path])
    for name in value_names:
        free_cell(data, lay.vk[(path, name)])
        if (path, name) in lay.data:
            free_cell(data, lay.data[(path, name)])
    built.path.write_bytes(data)
    return bytes(data)


def test_deleted_key_and_values_come_back_from_free_cells(make_hive):
    tree = Key(subkeys={"Parent": Key(subkeys={"Gone": Key(values={
        "text": "secret payload", "num": 0x1234, "blob": Value(REG_BINARY, b"\xAA" * 40)},
        last_write=WHEN)})})
    built = make_hive(tree)
    delete_key(built, "Parent", "Gone", ["text", "num", "blob"])
    with regfast.open_hive(built.path) as hive:
        assert hive.open("Parent").subkey_names() == []          # really gone from the tree
        found = hive.deleted()
        keys = [r for r in found if isinstance(r, regfast.DeletedKey)]
        vals = {r.name: r for r in found if isinstance(r, regfast.DeletedValue)}
    assert [(k.name, k.parent_path, k.last_write, k.n_values) for k in keys] == [("Gone", "Parent", WHEN, 3)]
    assert keys[0].offset == built.layout.nk["Parent\\Gone"] and keys[0].confidence == 100
    assert vals["text"].data == "secret payload\0".encode("utf-16-le") and vals["text"].data_state == "free"
    assert vals["num"].data == struct.pack("<I", 0x1234) and vals["num"].data_state == "inline"
    assert vals["blob"].data == b"\xAA" * 40 and vals["blob"].type == REG_BINARY
    assert all(v.confidence == 100 for v in vals.values())


def test_live_hive_has_no_deleted_records(make_hive):
    built = make_hive({"A": {"v": "x"}, "B": {}})
    with regfast.open_hive(built.path) as hive:
        assert hive.deleted() == []


def test_reused_data_cell_lowers_confidence(make_hive):
    built = make_hive({"P": {"K": {"v": "abcdefgh"}}})
    data = bytearray(built.path.read_bytes())
    lay = built.layout
    # free the vk but leave its data cell allocated: as if the space were reused
    struct.pack_into("<I", data, lay.nk["P\\K"] + 4 + 0x24, 0)            # K: 0 values
    free_cell(data, lay.value_list["P\\K"])
    free_cell(data, lay.vk[("P\\K", "v")])
    built.path.write_bytes(data)
    with regfast.open_hive(built.path) as hive:
        (rec,) = hive.deleted()
    assert rec.name == "v" and rec.data_state == "reused" and rec.confidence < 100


def test_damaged_deleted_record_is_scored_not_trusted(make_hive):
    built = make_hive({"P": {"K": {}}})
    data = bytes(delete_key(built, "P", "K"))
    data = bytearray(data)
    nk = built.layout.nk["P\\K"] + 4
    struct.pack_into("<I", data, nk + 0x10, 0x7FFFFFF0)                # parent: nowhere
    struct.pack_into("<Q", data, nk + 0x04, 1)                          # timestamp: 1601
    built.path.write_bytes(data)
    with regfast.open_hive(built.path) as hive:
        (rec,) = hive.deleted()
    assert rec.parent_path is None and rec.confidence == 60             # only name + structure


def test_cell_access_and_slack(make_hive):
    built = make_hive({"K": {"v": "abc"}})
    with regfast.open_hive(built.path) as hive:
        key = hive.open("K")
        payload, allocated = hive.cell(key.offset + 4096)
        assert allocated and bytes(payload[:2]) == b"nk"
        assert bytes(key.slack()) == bytes(payload[0x4C + 1:])
        vk_slack, data_slack = key.value("v").slack()
        assert len(data_slack) == len(hive.cell(built.layout.data[("K", "v")])[0]) - 8
        with pytest.raises(FileNotFoundError):
            hive.cell(key.offset + 4096 + 8)                            # not a cell start
        free = built.layout.free[0][0]
        payload, allocated = hive.cell(free)
        assert not allocated
        del payload, vk_slack, data_slack
