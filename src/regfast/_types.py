"""Plain-Python types shared by the binding and the API: REG_* constants,
information records, FILETIME conversion."""

from __future__ import annotations

import datetime as _dt
from typing import NamedTuple

REG_NONE = 0
REG_SZ = 1
REG_EXPAND_SZ = 2
REG_BINARY = 3
REG_DWORD = 4
REG_DWORD_LITTLE_ENDIAN = 4
REG_DWORD_BIG_ENDIAN = 5
REG_LINK = 6
REG_MULTI_SZ = 7
REG_RESOURCE_LIST = 8
REG_FULL_RESOURCE_DESCRIPTOR = 9
REG_RESOURCE_REQUIREMENTS_LIST = 10
REG_QWORD = 11
REG_QWORD_LITTLE_ENDIAN = 11

TYPE_NAMES = {
    REG_NONE: "REG_NONE",
    REG_SZ: "REG_SZ",
    REG_EXPAND_SZ: "REG_EXPAND_SZ",
    REG_BINARY: "REG_BINARY",
    REG_DWORD: "REG_DWORD",
    REG_DWORD_BIG_ENDIAN: "REG_DWORD_BIG_ENDIAN",
    REG_LINK: "REG_LINK",
    REG_MULTI_SZ: "REG_MULTI_SZ",
    REG_RESOURCE_LIST: "REG_RESOURCE_LIST",
    REG_FULL_RESOURCE_DESCRIPTOR: "REG_FULL_RESOURCE_DESCRIPTOR",
    REG_RESOURCE_REQUIREMENTS_LIST: "REG_RESOURCE_REQUIREMENTS_LIST",
    REG_QWORD: "REG_QWORD",
}


def type_name(t: int) -> str:
    """``REG_SZ`` for 1, ``0xffff0012`` for a type without a name."""
    return TYPE_NAMES.get(t, f"0x{t:08x}")


_EPOCH = _dt.datetime(1601, 1, 1, tzinfo=_dt.timezone.utc)
# The last FILETIME whose microsecond a datetime holds (9999-12-31 23:59:59.999999 UTC).
_MAX_FILETIME = (_dt.datetime.max.replace(tzinfo=_dt.timezone.utc) - _EPOCH) // _dt.timedelta(
    microseconds=1
) * 10 + 9


def filetime_to_datetime(ft: int) -> _dt.datetime | None:
    """Converts a FILETIME (100 ns ticks since 1601-01-01 UTC) to an aware
    datetime (to the microsecond).

    Returns None past 9999-12-31, where no datetime goes: damaged or crafted
    hives hold such times (0xFFFFFFFFFFFFFFFF is common). The raw FILETIME
    stays where it came from (HiveInfo.last_write, Key.last_write_raw, the
    scan's key_last_write); a clamped date would pass off a made-up time as
    evidence. A negative number is no FILETIME: ValueError."""
    if ft < 0:
        raise ValueError(f"a FILETIME is unsigned, got {ft}")
    if ft > _MAX_FILETIME:
        return None
    return _EPOCH + _dt.timedelta(microseconds=ft // 10)


def datetime_to_filetime(when: _dt.datetime) -> int:
    """Converts an aware datetime to a FILETIME (naive datetimes are rejected)."""
    if when.tzinfo is None:
        raise ValueError("a naive datetime is ambiguous; pass an aware one (e.g. tzinfo=timezone.utc)")
    return (when - _EPOCH) // _dt.timedelta(microseconds=1) * 10


class HiveInfo(NamedTuple):
    """What a hive's base block and its open-time scan say."""

    version: tuple[int, int]
    dirty: bool
    sequence: tuple[int, int]
    checksum_ok: bool
    last_write: int  # FILETIME
    file_name: str
    file_size: int
    hbins_size: int
    hbins_found: int
    cells_allocated: int
    cells_free: int


class HiveProblem(NamedTuple):
    """A damaged region a tolerant open skipped (see Hive.problems)."""

    offset: int  # file offset where the damage starts
    length: int  # bytes skipped from there (0: nothing skipped)
    kind: str  # "checksum", "base_block", "truncated", "hbin", "cell", "root"
    reason: str  # what was wrong, with offsets and values


class KeyInfo(NamedTuple):
    """Key information, shaped like NtQueryKey's KEY_FULL_INFORMATION."""

    last_write: int  # FILETIME
    subkeys: int
    values: int
    max_name_len: int  # bytes (UTF-16)
    max_class_len: int
    max_value_name_len: int
    max_value_data_len: int
    class_name: str | None  # None: the key has no class
    flags: int


class DeletedKey(NamedTuple):
    """A key record found intact in free, unreferenced or slack space (see Hive.deleted)."""

    offset: int  # file offset of the (former) cell holding the record
    name: str
    last_write: int  # FILETIME
    parent_path: str | None  # path of the recorded parent if it still exists
    n_values: int  # values the record claims (their list may be gone)
    confidence: int  # 0..100
    source: str = "free"  # "free", "unreferenced", "slack" or "remnant" (see Hive.deleted)


class DeletedValue(NamedTuple):
    """A value record found intact in free, unreferenced or slack space (see Hive.deleted)."""

    offset: int  # file offset of the (former) cell holding the record
    name: str
    type: int
    size: int  # data length the record claims
    data: bytes | None  # the data when it could be located (big data assembled)
    data_state: str  # "empty", "inline", "free" (likely intact), "reused", "lost"
    confidence: int  # 0..100
    source: str = "free"  # where the record was found, as DeletedKey.source
    key_offset: int | None = None  # offset of the DeletedKey whose value list names it


class CellSlack(NamedTuple):
    """The unused tail of a cell reachable from the root (see Hive.slack)."""

    cell: int  # file offset of the cell
    kind: str  # "nk", "vk", "subkey_list", "value_list", "data", "db",
    # "db_list", "db_segment", "sk" or "class"
    offset: int  # file offset of the first slack byte
    data: bytes  # the slack bytes
