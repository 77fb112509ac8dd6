"""Plain-Python types shared by the binding and the API: REG_* constants,
information records, FILETIME conversion, value data encoding (the one
encoder: Key.set_value, the hive writer, transactions)."""

from __future__ import annotations

import datetime as _dt
import operator as _operator
import struct
from typing import NamedTuple

from regfast._upcase import UPCASE

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


def _as_int(x: object, what: str) -> int:
    """`x` as an int (numpy integers too: anything with __index__), else
    TypeError naming `what` (a bool is refused: True is no count or type)."""
    if isinstance(x, bool):
        raise TypeError(f"{what} is an int, not bool")
    try:
        return _operator.index(x)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} is an int, not {type(x).__name__}") from None


def type_name(t: int) -> str:
    """``REG_SZ`` for 1, ``0xffff0012`` for a type without a name (a value
    type is a 32-bit unsigned number: anything else is a ValueError)."""
    if type(t) is not int:  # (the check first: True or 1.0 would find REG_SZ)
        t = _as_int(t, "a value type")
    name = TYPE_NAMES.get(t)
    if name is not None:
        return name
    if not 0 <= t <= 0xFFFFFFFF:
        raise ValueError(f"a value type is a 32-bit unsigned number, got {t}")
    return f"0x{t:08x}"


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
    ft = _as_int(ft, "a FILETIME")
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
    """Damage a tolerant open found and reads step past (see Hive.problems)."""

    offset: int  # file offset where the damage starts
    length: int  # bytes skipped from there (0: nothing skipped)
    kind: str  # "checksum", "base_block", "truncated", "hbin", "cell", "root", "subkeys", "values"
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
    # "empty", "inline", "free" (likely intact), "reused", "lost", or "unread"
    # (located, not copied: see Hive.deleted's bound)
    data_state: str
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


# ---------------------------------------------------------------------------
# Value data encoding
# ---------------------------------------------------------------------------

_S_DWORD = struct.Struct("<I")
_S_DWORD_SIGNED = struct.Struct("<i")
_S_DWORD_BE = struct.Struct(">I")
_S_DWORD_BE_SIGNED = struct.Struct(">i")
_S_QWORD = struct.Struct("<Q")
_S_QWORD_SIGNED = struct.Struct("<q")


def _int_bytes(v: object, unsigned: struct.Struct, signed: struct.Struct, bits: int, what: str) -> bytes:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what} data must be an int, not {type(v).__name__}")
    if 0 <= v < 1 << bits:
        return unsigned.pack(v)
    if -(1 << (bits - 1)) <= v < 0:
        return signed.pack(v)
    raise ValueError(f"{what} data {v} does not fit in {bits} bits")


def encode_value_data(vtype: int, data: object) -> bytes:
    """Encode value data as stored in the hive.

    Parameters
    ----------
    vtype : int
        Value type.
    data : object
        ``bytes``-like: stored verbatim (for any type).  ``None``: empty.
        Otherwise by type: REG_SZ / REG_EXPAND_SZ: ``str`` -> UTF-16LE plus
        a NUL terminator; REG_LINK: ``str`` -> UTF-16LE without terminator;
        REG_DWORD / REG_DWORD_BIG_ENDIAN: ``int`` (negative values down to
        -2**31 are stored two's complement); REG_QWORD: ``int`` (likewise
        down to -2**63); REG_MULTI_SZ: list/tuple of ``str`` -> each string
        plus NUL, then a final extra NUL (an item holding a NUL, or a
        list of one empty string, would not read back: ValueError).

    Returns
    -------
    bytes

    Raises
    ------
    TypeError
        If ``data`` has a type that cannot be encoded as ``vtype``.
    ValueError
        If an integer is out of range, or a REG_MULTI_SZ list would not
        read back as given.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if data is None:
        return b""
    if vtype in (REG_SZ, REG_EXPAND_SZ):
        if isinstance(data, str):
            return data.encode("utf-16-le", "surrogatepass") + b"\0\0"
    elif vtype == REG_LINK:
        if isinstance(data, str):
            return data.encode("utf-16-le", "surrogatepass")
    elif vtype == REG_DWORD:
        return _int_bytes(data, _S_DWORD, _S_DWORD_SIGNED, 32, "REG_DWORD")
    elif vtype == REG_DWORD_BIG_ENDIAN:
        return _int_bytes(data, _S_DWORD_BE, _S_DWORD_BE_SIGNED, 32, "REG_DWORD_BIG_ENDIAN")
    elif vtype == REG_QWORD:
        return _int_bytes(data, _S_QWORD, _S_QWORD_SIGNED, 64, "REG_QWORD")
    elif vtype == REG_MULTI_SZ and isinstance(data, (list, tuple)):
        for s in data:
            if not isinstance(s, str):
                raise TypeError(f"REG_MULTI_SZ items must be str, not {type(s).__name__}")
            if "\0" in s:
                # a NUL ends an item: it would read back as two (winreg refuses
                # it too: "embedded null character")
                raise ValueError(f"REG_MULTI_SZ item {s[:50]!r} contains a NUL character")
        if len(data) == 1 and not data[0]:
            # stored as two NULs, which is also how an empty list is stored:
            # it would read back as []
            raise ValueError("a REG_MULTI_SZ of one empty string cannot be told from an empty one; pass []")
        return "".join([s + "\0" for s in data]).encode("utf-16-le", "surrogatepass") + b"\0\0"
    raise TypeError(f"cannot encode {type(data).__name__} data for value type {vtype:#x}; pass bytes")


def value_shorthand(v: object) -> tuple[int, bytes]:
    """(type, bytes) of a plain Python value: str -> REG_SZ, int -> REG_DWORD
    (REG_QWORD past 32 bits; negative ints have no shorthand), bytes-like ->
    REG_BINARY, list/tuple of str -> REG_MULTI_SZ."""
    if isinstance(v, str):
        return REG_SZ, v.encode("utf-16-le", "surrogatepass") + b"\0\0"
    if isinstance(v, bool):
        raise TypeError("bool is not a valid value shorthand; use int or Value(REG_DWORD, ...)")
    if isinstance(v, int):
        if v < 0:
            raise ValueError(
                f"negative int {v} has no shorthand encoding; use Value(REG_DWORD/REG_QWORD, ...)"
            )
        if v < 1 << 32:
            return REG_DWORD, _S_DWORD.pack(v)
        if v < 1 << 64:
            return REG_QWORD, _S_QWORD.pack(v)
        raise ValueError(f"int {v} does not fit in a REG_QWORD")
    if isinstance(v, (bytes, bytearray, memoryview)):
        return REG_BINARY, bytes(v)
    if isinstance(v, (list, tuple)):
        return REG_MULTI_SZ, encode_value_data(REG_MULTI_SZ, v)
    raise TypeError(f"unsupported value {type(v).__name__!s}: use str, int, bytes, list[str] or Value")


def encode_value(data: object, vtype: int | None = None) -> tuple[int, bytes]:
    """(type, bytes) to store: value_shorthand(data) without a type, else
    (vtype, encode_value_data(vtype, data)). The type is checked to be a
    32-bit number."""
    if vtype is None:
        return value_shorthand(data)
    if isinstance(vtype, bool) or not isinstance(vtype, int) or not 0 <= vtype <= 0xFFFFFFFF:
        raise ValueError(f"value type must be an int in [0, 2**32), got {vtype!r}")
    return vtype, encode_value_data(vtype, data)


# ---------------------------------------------------------------------------
# Names as the registry compares them (here, below every layer that compares:
# the writer, .reg import and export, diff)
# ---------------------------------------------------------------------------


def upcase_name(name: str) -> str:
    """Upcase a key/value name the way Windows compares names.

    Each UTF-16 code unit is upcased independently, as RtlUpcaseUnicodeChar
    does (a one-to-one mapping), so the result always has the same length as
    the input: no expansions ("ß" stays "ß"), no one-way folds ("ı", "µ" and
    final "ς" stay), nothing outside the BMP and no lone surrogate changes.
    The map is the C core's (both generated by tools/gen_upcase.py in one
    run), not this interpreter's str.upper(), which differs from Windows in
    54 units and between Python versions: a writer or diff folding otherwise
    than the reader would see two names where it sees one.
    """
    if name.isascii():
        return name.upper()
    return name.translate(UPCASE)
