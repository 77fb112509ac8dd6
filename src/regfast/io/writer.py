"""Pure-Python writer for Windows registry hive files (regf format).

This module builds a complete, self-consistent primary hive file from a
plain Python tree of keys and values.  It deliberately shares no code with
the reader (only the REG_* numbers, which Windows fixes, from
``regfast._types``), so that it serves as an independent fixture generator
for the reader's tests and benchmarks; hivex checks what it writes.

Quick start
-----------
>>> from regfast.io.writer import Key, Value, build_hive, REG_EXPAND_SZ
>>> tree = {
...     "Software": {
...         "Vendor": {
...             "": "default value",                  # REG_SZ
...             "Count": 3,                           # REG_DWORD
...             "Path": Value(REG_EXPAND_SZ, "%SystemRoot%"),
...         },
...     },
... }
>>> data, layout = build_hive(tree, timestamp=0)
>>> data[:4]
b'regf'

File layout produced
--------------------
* A 4096-byte base block (``regf``) with a correct XOR-32 checksum.
* Hive bins (``hbin``), 4096 bytes each, except that a cell too large for a
  normal bin gets its own bin whose size is the cell size rounded up to a
  multiple of 4096.  Cells are allocated sequentially ("next fit"); the
  unused tail of every bin is written as a single free cell (positive size).
* The root key is always the first cell of the first bin (offset 0x20).
* Keys are written depth first.  For every key, in this order: its class
  name cell, its security cell (first use only), its value list, each
  value's ``vk`` cell followed by its data cell(s), the ``nk`` cells of all
  of its subkeys, then its subkey list (leaf lists followed by the ``ri``
  root, if any).

Format choices (the ones a reader might care about)
--------------------------------------------------
* Names that fit in Latin-1 are stored "compressed" (``nk`` flag 0x20,
  ``vk`` flag 0x0001); all other names are stored as UTF-16LE. Windows does
  not check UTF-16, so neither does the writer: a lone surrogate (U+D800..
  U+DFFF in a Python str) is stored as that one code unit, in names, classes
  and string data alike, and reads back as the same str. Names Windows
  cannot hold (empty key names, a backslash in a key name, more than 255 /
  16,383 UTF-16 units) raise ValueError.
* Value data of 0..4 bytes is stored inline in the ``vk`` data-offset field
  with bit 31 of the data length set (this is how Windows stores DWORDs and
  empty values).  Larger data goes to a data cell; data larger than
  :data:`BIG_DATA_SEGMENT` (16344) bytes is stored as ``db`` big data when
  ``minor >= 4`` and as one plain data cell when ``minor == 3``.
* Big-data segments hold exactly 16344 bytes except the last one.  The
  last segment's cell is padded so that its data area is at least
  ``len + 4`` bytes: hivex computes the usable size of a segment as
  ``cell_size - 8``, so a tightly sized last segment would be read short
  by hivex.  Cell padding is explicitly allowed by the format.
* Subkey lists are sorted the way Windows sorts them: by the upcased name
  compared as UTF-16 code units.  ``lh`` hashes use the same upcasing.
  ``lf`` hints hold the first four characters of the name as bytes (zero
  padded); if one of those characters is above U+00FF the hint is zero.
* The root key's parent-offset field points at the root key itself (an
  allocated ``nk`` cell, which ``hivex_node_parent`` accepts); its flags
  are 0x2C (KEY_HIVE_ENTRY | KEY_NO_DELETE | KEY_COMP_NAME), or 0x0C when
  the root name is not Latin-1.
* ``Largest subkey name length`` and ``Largest value name length`` are in
  bytes as UTF-16 (characters * 2, whatever the on-disk encoding is);
  ``Largest subkey class length`` and ``Largest value data size`` are in
  bytes.
* All security descriptors are deduplicated: keys with byte-identical
  descriptors share one ``sk`` cell whose reference count is the number of
  keys using it.  All ``sk`` cells form one circular doubly linked list in
  allocation order.
"""

from __future__ import annotations

import datetime as _dt
import os
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import reduce
from operator import xor
from typing import Any

__all__ = [
    "REG_NONE",
    "REG_SZ",
    "REG_EXPAND_SZ",
    "REG_BINARY",
    "REG_DWORD",
    "REG_DWORD_LITTLE_ENDIAN",
    "REG_DWORD_BIG_ENDIAN",
    "REG_LINK",
    "REG_MULTI_SZ",
    "REG_RESOURCE_LIST",
    "REG_FULL_RESOURCE_DESCRIPTOR",
    "REG_RESOURCE_REQUIREMENTS_LIST",
    "REG_QWORD",
    "REG_QWORD_LITTLE_ENDIAN",
    "BIG_DATA_SEGMENT",
    "Key",
    "Value",
    "HiveLayout",
    "build_hive",
    "write_hive",
    "encode_value_data",
    "filetime",
    "sid_to_bytes",
    "build_security_descriptor",
    "default_security_descriptor",
    "DEFAULT_SECURITY_DESCRIPTOR",
    "lh_hash",
    "upcase_name",
]

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

from regfast._files import atomic_output
from regfast._types import (
    REG_BINARY,
    REG_DWORD,
    REG_DWORD_BIG_ENDIAN,
    REG_DWORD_LITTLE_ENDIAN,
    REG_EXPAND_SZ,
    REG_FULL_RESOURCE_DESCRIPTOR,
    REG_LINK,
    REG_MULTI_SZ,
    REG_NONE,
    REG_QWORD,
    REG_QWORD_LITTLE_ENDIAN,
    REG_RESOURCE_LIST,
    REG_RESOURCE_REQUIREMENTS_LIST,
    REG_SZ,
    encode_value,
    encode_value_data,
    upcase_name,
    value_shorthand,
)

#: Maximum number of bytes of value data held by one big-data segment, and
#: the largest value that is stored in a single data cell when minor >= 4.
BIG_DATA_SEGMENT = 16344

BASE_BLOCK_SIZE = 4096
HBIN_SIZE = 4096
HBIN_HEADER_SIZE = 0x20

KEY_VOLATILE = 0x0001
KEY_HIVE_EXIT = 0x0002
KEY_HIVE_ENTRY = 0x0004
KEY_NO_DELETE = 0x0008
KEY_SYM_LINK = 0x0010
KEY_COMP_NAME = 0x0020
VALUE_COMP_NAME = 0x0001

MAX_KEY_NAME_CHARS = 255
MAX_VALUE_NAME_CHARS = 16383
#: "A registry tree can be 512 levels deep" (Registry Element Size Limits):
#: the deepest key a hive may hold, the root being level 0 (regfast's reader
#: refuses deeper ones as Windows does, so the writer does not write them).
MAX_KEY_DEPTH = 512
_MAX_DATA_LEN = 0x7FFFFFFF
_NONE = 0xFFFFFFFF
_NK_FIXED = 0x4C  # size of the nk record before the name
_VK_FIXED = 0x14  # size of the vk record before the name
_SK_FIXED = 0x14  # size of the sk record before the descriptor

_FILETIME_EPOCH = _dt.datetime(1601, 1, 1, tzinfo=_dt.timezone.utc)

# Precompiled structures.  Every record structure starts with the cell's
# int32 size field so that a whole cell header + record is one pack_into.
_S_NK = struct.Struct("<i2sHQ15IHH")
_S_VK = struct.Struct("<i2sHIIIHH")
_S_SK = struct.Struct("<i2sHIIII")
_S_DB = struct.Struct("<i2sHI")
_S_LIST_HDR = struct.Struct("<i2sH")
_S_I32 = struct.Struct("<i")
_S_U32 = struct.Struct("<I")
_S_HBIN = struct.Struct("<4sIIQQI")
_S_BASE = struct.Struct("<4sIIQIIIIIII")

# --------------------------------------------------------------------------
# Public data model
# --------------------------------------------------------------------------


@dataclass
class Value:
    """A registry value.

    Parameters
    ----------
    type : int
        The value type, any unsigned 32-bit integer (``REG_*`` constants or
        e.g. ``0xFFFF0012`` device-property types).
    data : object
        ``bytes``/``bytearray``/``memoryview`` are stored verbatim whatever
        the type.  Otherwise the data is encoded according to ``type``
        (see :func:`encode_value_data`).  ``None`` means empty data.
    """

    type: int
    data: object = b""


@dataclass
class Key:
    """A registry key.

    Parameters
    ----------
    subkeys : dict
        Subkey name -> :class:`Key` or dict shorthand.
    values : dict
        Value name -> :class:`Value` or shorthand (``str`` -> REG_SZ,
        ``int`` -> REG_DWORD / REG_QWORD, ``bytes`` -> REG_BINARY, list of
        ``str`` -> REG_MULTI_SZ).  The empty name ``""`` is the default
        value.
    class_name : str or None
        The key's class name, stored UTF-16LE in its own cell.  ``None`` and
        ``""`` both mean "no class".
    last_write : int, datetime or None
        Last-write time as a FILETIME integer or a timezone-aware
        ``datetime``; ``None`` uses the hive timestamp.
    security : bytes or None
        A self-relative security descriptor; ``None`` uses
        :data:`DEFAULT_SECURITY_DESCRIPTOR`.
    symlink : bool
        A registry symbolic link: the nk flag KEY_SYM_LINK (0x10), as
        Windows marks a key made with REG_OPTION_CREATE_LINK. Its target goes
        in the REG_LINK value ``"SymbolicLinkValue"`` (a ``Value`` of type 6),
        which the caller gives; a link has no subkeys of its own (Windows
        follows it instead), so subkeys are refused. Not for the root.
    """

    subkeys: dict[str, Key | dict[str, Any]] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    class_name: str | None = None
    last_write: int | _dt.datetime | None = None
    security: bytes | None = None
    symlink: bool = False


@dataclass
class HiveLayout:
    """Where the writer put things.

    All offsets are absolute file offsets (from the start of the file,
    i.e. ``4096 + cell offset``) pointing at a cell's 4-byte size field.
    Key paths are relative to the root, joined with ``"\\\\"``; the root is
    ``""``.  Names are spelled as given in the input tree.

    Attributes
    ----------
    nk : dict[str, int]
        Key path -> ``nk`` cell.
    vk : dict[tuple[str, str], int]
        (key path, value name) -> ``vk`` cell.
    data : dict[tuple[str, str], int]
        (key path, value name) -> data cell, or ``db`` cell for big data.
        Absent for inline data (0..4 bytes).
    subkey_list : dict[str, int]
        Key path -> root of its subkey list (``lh``/``lf``/``li``/``ri``).
        Absent for keys without subkeys.
    value_list : dict[str, int]
        Key path -> value list cell.  Absent for keys without values.
    sk : list[int]
        All ``sk`` cells, in list (allocation) order.
    hbins : list[tuple[int, int]]
        (file offset, size) of every hive bin.
    root : int
        The root ``nk`` cell (always ``4096 + 0x20``).
    size : int
        Total file size in bytes.
    class_name : dict[str, int]
        Key path -> class-name cell (keys with a class only).
    sk_of : dict[str, int]
        Key path -> the ``sk`` cell the key uses.
    free : list[tuple[int, int]]
        (file offset, size) of every free cell.
    """

    nk: dict[str, int] = field(default_factory=dict)
    vk: dict[tuple[str, str], int] = field(default_factory=dict)
    data: dict[tuple[str, str], int] = field(default_factory=dict)
    subkey_list: dict[str, int] = field(default_factory=dict)
    value_list: dict[str, int] = field(default_factory=dict)
    sk: list[int] = field(default_factory=list)
    hbins: list[tuple[int, int]] = field(default_factory=list)
    root: int = 0
    size: int = 0
    class_name: dict[str, int] = field(default_factory=dict)
    sk_of: dict[str, int] = field(default_factory=dict)
    free: list[tuple[int, int]] = field(default_factory=list)


# --------------------------------------------------------------------------
# Helpers: time, security descriptors, names
# --------------------------------------------------------------------------


def filetime(value: int | _dt.datetime | None) -> int:
    """Convert a timestamp to a FILETIME integer.

    Parameters
    ----------
    value : int, datetime or None
        A FILETIME (100 ns intervals since 1601-01-01 UTC), a
        timezone-aware ``datetime``, or ``None`` for "now".

    Returns
    -------
    int
        The FILETIME value.

    Raises
    ------
    ValueError
        For a naive datetime or an int outside ``[0, 2**64)``.
    TypeError
        For any other type.
    """
    if value is None:
        value = _dt.datetime.now(_dt.timezone.utc)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError("timestamps must be timezone-aware datetimes (or FILETIME ints)")
        delta = value - _FILETIME_EPOCH
        ft = (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10
        if ft < 0:
            raise ValueError(f"datetime {value!r} is before 1601-01-01")
        return ft
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"timestamp must be an int FILETIME or a datetime, not {type(value).__name__}")
    if not 0 <= value < 1 << 64:
        raise ValueError(f"FILETIME {value} out of range [0, 2**64)")
    return value


def _check_security_descriptor(sd: bytes, path: str) -> None:
    """Refuses a descriptor that is not a well-formed self-relative one:
    Windows checks every sk at hive load (CmpValidateHiveSecurityDescriptors,
    SeValidSecurityDescriptor) and refuses the hive or resets the whole
    hive's security to the root's. The rules of the decompiled
    SeValidSecurityDescriptor and RtlValidAcl (an SDDL printer knows fewer
    ACE types than Windows accepts: conditional, resource-attribute and
    other ACEs are written as given): revision 1, SE_SELF_RELATIVE, an owner
    SID, every part at a 4-byte aligned offset inside the buffer, each ACL
    at a non-zero offset (revision 2 to 4) and its AceCount ACEs, each
    inside its ACL and as its type requires (_ace_problem)."""

    def bad(why: str) -> ValueError:
        return ValueError(f"security of {path!r} is not a valid self-relative security descriptor: {why}")

    def check_offset(at: int, what: str) -> None:
        if at < 20 or at % 4:
            raise bad(f"the {what} offset 0x{at:x} is in the 20-byte header or not 4-byte aligned")

    if len(sd) < 20:
        raise bad(f"{len(sd)} bytes, shorter than the 20-byte header")
    revision, _, control, owner, group, sacl, dacl = struct.unpack_from("<BBHIIII", sd)
    if revision != 1:
        raise bad(f"revision {revision} is not 1")
    if not control & 0x8000:
        raise bad(f"control 0x{control:04x} lacks SE_SELF_RELATIVE (0x8000)")
    if not owner:
        raise bad("it has no owner SID (Windows requires one)")
    for what, at in (("owner", owner), ("group", group)):
        if at:
            check_offset(at, f"{what} SID")
            # (at least 12 bytes left: SeValidSecurityDescriptor's minimum)
            if at + 12 > len(sd) or not _sid_length(sd, at, len(sd)):
                raise bad(f"the {what} SID at 0x{at:x} is no SID inside its {max(len(sd) - at, 0)} bytes")
    for what, at in (("SACL", sacl), ("DACL", dacl)):
        if not at:  # absent, or a NULL ACL when its "present" bit is set
            continue
        check_offset(at, what)  # (a non-zero offset is checked even without its "present" bit)
        if at + 8 > len(sd):
            raise bad(f"the {what} at 0x{at:x} lies outside the descriptor's {len(sd)} bytes")
        acl_rev, _, size, count = struct.unpack_from("<BBHH", sd, at)
        if not 2 <= acl_rev <= 4 or size < 8 or at + size > len(sd):
            raise bad(f"the {what} at 0x{at:x} (revision {acl_rev}, {size} bytes) is malformed or truncated")
        ace, end = at + 8, at + size
        for i in range(count):
            # RtlValidAcl: room for an ACE header (and AceSize 2-byte aligned)
            if end - ace <= 6 or (ace - at) % 2:
                raise bad(f"the {what} at 0x{at:x} ends before its ACE {i} of {count}")
            ace_type, _, ace_size = struct.unpack_from("<BBH", sd, ace)
            if ace + ace_size > end:
                raise bad(f"ACE {i} of the {what} at 0x{ace:x} has a size of {ace_size} bytes")
            why = _ace_problem(sd, ace, ace_type, ace_size, acl_rev)
            if why:
                raise bad(f"ACE {i} of the {what} at 0x{ace:x} (type 0x{ace_type:02x}) {why}")
            ace += ace_size


def _sid_length(sd: bytes, at: int, end: int) -> int:
    """The length of the SID at `at` when one (revision 1, at most 15
    sub-authorities) lies inside [at, end), else 0."""
    if at + 8 > end or sd[at] != 1 or sd[at + 1] > 15:
        return 0
    n = 8 + 4 * sd[at + 1]
    return n if at + n <= end else 0


def _ace_problem(sd: bytes, ace: int, ace_type: int, size: int, acl_rev: int) -> str | None:
    """What RtlValidAcl (decompiled, with its RtlpValid*Ace helpers) finds
    wrong with one ACE, or None. Known types: a size that is a multiple of
    4 and holds their fixed part and SIDs; unknown types: 4 bytes at least."""
    end = ace + size
    if ace_type in _ACE_TYPES_SID_AFTER_MASK:
        sid = _sid_length(sd, ace + 8, end)
        if size % 4 or size < 16 or not sid:
            return "holds no SID after its mask"
    elif ace_type == 0x04:  # compound (impersonation): server SID, then client SID
        if acl_rev < 3:
            return f"needs ACL revision 3+, not {acl_rev}"
        server = _sid_length(sd, ace + 12, end) if size >= 0x18 else 0
        client = _sid_length(sd, ace + 12 + server, end) if server else 0
        if size % 4 or not client or size < server + 24 or struct.unpack_from("<H", sd, ace + 8)[0] != 1:
            return "is no compound impersonation ACE with a server and a client SID"
    elif ace_type in _OBJECT_ACE_TYPES:
        if acl_rev < 4:
            return f"needs ACL revision 4, not {acl_rev}"
        if size % 4 or size < 12:
            return "is too short for an object ACE"
        flags = struct.unpack_from("<I", sd, ace + 8)[0]
        guids = 16 * (flags & 1) + 16 * (flags >> 1 & 1)
        sid = _sid_length(sd, ace + 12 + guids, end) if size >= guids + 24 else 0
        if not sid or size < guids + sid + 12:
            return "holds no SID after its GUIDs"
    elif ace_type == 0x12:  # resource attribute: SID, then a CLAIM_SECURITY_ATTRIBUTE_RELATIVE_V1
        sid = _sid_length(sd, ace + 8, end)
        if size % 4 or size < 16 or not sid or size < sid + 28:
            return "holds no SID and attribute after its mask"
    elif ace_type == 0x15:  # access filter: SID, then a conditional expression ("artx")
        sid = _sid_length(sd, ace + 8, end)
        condition = sd[ace + 8 + sid : ace + 12 + sid] if sid else b""
        if size % 4 or size < 16 or not sid or size - sid - 8 < 6 or condition != b"artx":
            return "holds no SID and condition after its mask"
    elif size < 4:
        return "is shorter than an ACE header"
    return None


#: ACCESS_ALLOWED/DENIED, SYSTEM_AUDIT/ALARM, their callback forms,
#: SYSTEM_MANDATORY_LABEL, SYSTEM_SCOPED_POLICY_ID, SYSTEM_PROCESS_TRUST_LABEL:
#: header, mask, then the SID ([MS-DTYP] 2.4.4); a callback form's
#: application data follows it.
_ACE_TYPES_SID_AFTER_MASK = frozenset({0x00, 0x01, 0x02, 0x03, 0x09, 0x0A, 0x0D, 0x0E, 0x11, 0x13, 0x14})
#: Object ACEs (and their callback forms): header, mask, flags, the GUIDs
#: the flags say are there (ACE_OBJECT_TYPE_PRESENT 1,
#: ACE_INHERITED_OBJECT_TYPE_PRESENT 2), then the SID ([MS-DTYP] 2.4.4.3).
_OBJECT_ACE_TYPES = frozenset({0x05, 0x06, 0x07, 0x08, 0x0B, 0x0C, 0x0F, 0x10})


def _in_range(what: str, v: int, bits: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what} must be an int, not {type(v).__name__}")
    if not 0 <= v < 1 << bits:
        raise ValueError(f"{what} {v} out of range [0, 2**{bits})")
    return v


def sid_to_bytes(sid: str) -> bytes:
    """Encode a SID string such as ``"S-1-5-32-544"`` in binary form.

    Parameters
    ----------
    sid : str
        ``S-<revision>-<authority>-<sub1>-...``.

    Returns
    -------
    bytes
        Revision, sub-authority count, 48-bit big-endian identifier
        authority, then little-endian 32-bit sub-authorities.
    """
    parts = sid.split("-")
    if len(parts) < 3 or parts[0].upper() != "S":
        raise ValueError(f"malformed SID string {sid!r}")
    rev = _in_range(f"SID {sid!r}: revision", int(parts[1]), 8)
    auth = _in_range(f"SID {sid!r}: identifier authority", int(parts[2]), 48)
    subs = [_in_range(f"SID {sid!r}: sub-authority", int(p), 32) for p in parts[3:]]
    if len(subs) > 15:
        raise ValueError(f"SID {sid!r} has more than 15 sub-authorities")
    return bytes((rev, len(subs))) + auth.to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


def build_security_descriptor(
    owner: str,
    group: str,
    aces: Iterable[tuple[int, int, int, str]],
    control: int = 0x8004,
) -> bytes:
    """Build a self-relative security descriptor with a DACL.

    Parameters
    ----------
    owner, group : str
        SID strings.
    aces : iterable of (ace_type, ace_flags, access_mask, sid)
        ``ace_type`` 0 = ACCESS_ALLOWED, 1 = ACCESS_DENIED; flags e.g.
        0x02 CONTAINER_INHERIT_ACE.
    control : int
        Control bits; the default is SE_SELF_RELATIVE | SE_DACL_PRESENT.

    Returns
    -------
    bytes
        Layout: 20-byte header, DACL, owner SID, group SID (no SACL).
    """
    ace_blobs = []
    for i, (ace_type, ace_flags, mask, sid) in enumerate(aces):
        sid_b = sid_to_bytes(sid)
        ace_blobs.append(
            struct.pack(
                "<BBHI",
                _in_range(f"ACE {i}: type", ace_type, 8),
                _in_range(f"ACE {i}: flags", ace_flags, 8),
                8 + len(sid_b),
                _in_range(f"ACE {i}: access mask", mask, 32),
            )
            + sid_b
        )
    ace_list = b"".join(ace_blobs)
    if 8 + len(ace_list) > 0xFFFF:  # AclSize is 16 bits (so is AceCount)
        raise ValueError(
            f"the DACL's {len(ace_blobs)} ACEs take {8 + len(ace_list)} bytes; an ACL holds at most 65535"
        )
    acl = struct.pack("<BBHHH", 2, 0, 8 + len(ace_list), len(ace_blobs), 0) + ace_list
    owner_b = sid_to_bytes(owner)
    group_b = sid_to_bytes(group)
    dacl_off = 20
    owner_off = dacl_off + len(acl)
    group_off = owner_off + len(owner_b)
    header = struct.pack(
        "<BBHIIII", 1, 0, _in_range("control", control, 16), owner_off, group_off, 0, dacl_off
    )
    return header + acl + owner_b + group_b


KEY_ALL_ACCESS = 0x000F003F
KEY_READ = 0x00020019


def default_security_descriptor() -> bytes:
    """Return the default security descriptor used for keys without one.

    It is ``O:BAG:SYD:(A;CI;KA;;;BA)(A;CI;KA;;;SY)(A;CI;KR;;;BU)``: owner
    BUILTIN\\Administrators, group SYSTEM, and a DACL granting full control
    to Administrators and SYSTEM and read access to Users, all inherited by
    subkeys (container inherit).
    """
    return build_security_descriptor(
        "S-1-5-32-544",
        "S-1-5-18",
        [
            (0, 0x02, KEY_ALL_ACCESS, "S-1-5-32-544"),
            (0, 0x02, KEY_ALL_ACCESS, "S-1-5-18"),
            (0, 0x02, KEY_READ, "S-1-5-32-545"),
        ],
    )


#: Bytes of :func:`default_security_descriptor`.
DEFAULT_SECURITY_DESCRIPTOR: bytes = default_security_descriptor()


def lh_hash(name: str) -> int:
    """Return the ``lh`` hash of a key name.

    ``h = h * 37 + unit`` over the UTF-16 code units of the upcased name,
    starting from 0, modulo 2**32.
    """
    return _lh_hash_upper(upcase_name(name))


def _lh_hash_upper(up: str) -> int:
    h = 0
    if up.isascii():
        for c in up.encode("ascii"):
            h = h * 37 + c
    else:
        raw = up.encode("utf-16-le", "surrogatepass")  # a lone surrogate is one code unit
        for c in struct.unpack(f"<{len(raw) // 2}H", raw):
            h = h * 37 + c
    return h & 0xFFFFFFFF


def _lf_hint(name: str) -> bytes:
    head = name[:4]
    try:
        return head.encode("latin-1").ljust(4, b"\0")
    except UnicodeEncodeError:
        return b"\0\0\0\0"


def _sort_key_fn(names: list[str]) -> Callable[[str], str | bytes]:
    # Upcased names compared as UTF-16 code units.  For names without
    # astral characters Python's code-point order is identical; otherwise
    # compare big-endian UTF-16 bytes (byte order == code-unit order).
    for n in names:
        if not n.isascii() and any(ord(c) > 0xFFFF for c in n):
            return lambda n: upcase_name(n).encode("utf-16-be", "surrogatepass")
    return upcase_name


# --------------------------------------------------------------------------
# Value encoding
# --------------------------------------------------------------------------


def _shorthand_value(v: object) -> tuple[int, bytes]:
    """Map a shorthand value (or a writer Value) to (type, bytes)."""
    if isinstance(v, Value):
        return encode_value(v.data, v.type)
    return value_shorthand(v)


# --------------------------------------------------------------------------
# Tree normalisation
# --------------------------------------------------------------------------


# (subkeys, values, class_name, last_write, security) of a node
_Parts = tuple[Mapping[str, Any], Mapping[str, Any], str | None, int | _dt.datetime | None, bytes | None]


def _split(node: object, path: str) -> _Parts:
    """Return (subkeys, values, class_name, last_write, security) of a node."""
    if isinstance(node, Key):
        subkeys, values = node.subkeys, node.values
        if not isinstance(subkeys, Mapping):
            raise TypeError(f"Key.subkeys of {path!r} must be a dict")
        if not isinstance(values, Mapping):
            raise TypeError(f"Key.values of {path!r} must be a dict")
        for k, v in subkeys.items():
            if not isinstance(v, (Key, dict)):
                raise TypeError(f"subkey {k!r} of {path!r} must be a Key or dict, not {type(v).__name__}")
        for k, v in values.items():
            if isinstance(v, (Key, dict)):
                raise TypeError(
                    f"value {k!r} of {path!r} is a {type(v).__name__}; put subkeys in Key.subkeys"
                )
        return subkeys, values, node.class_name, node.last_write, node.security
    if isinstance(node, dict):
        subkeys = {}
        values = {}
        for k, v in node.items():
            if isinstance(v, (dict, Key)):
                subkeys[k] = v
            else:
                values[k] = v
        return subkeys, values, None, None, None
    raise TypeError(f"expected a Key or dict for {path or 'the root'!r}, got {type(node).__name__}")


# a node's id and its parent's ancestry, up to the root's (None)
_Ancestry = tuple[int, Any] | None


def _check_deep_key(path: str, node: int, ancestry: _Ancestry, depth: int, max_depth: int | None) -> None:
    """A key more than MAX_KEY_DEPTH levels down (depth first, a tree that
    contains itself gets there after 512 keys): ValueError when the node is
    one of its own ancestors, or when `depth` passes `max_depth`."""
    shown = path if len(path) <= 120 else "..." + path[-120:]
    while ancestry is not None:
        if ancestry[0] == node:
            raise ValueError(f"the tree contains itself (a key holds one of its ancestors): {shown!r}")
        ancestry = ancestry[1]
    if max_depth is not None and depth > max_depth:
        raise ValueError(
            f"the key {shown!r} is {depth} levels below the root, past {max_depth}: the registry's "
            "limit is 512 (Windows refuses deeper keys, and so does regfast's reader)"
        )


def _encode_name(name: object, what: str, path: str) -> tuple[bytes, bool]:
    if not isinstance(name, str):
        raise TypeError(f"{what} names must be str, got {type(name).__name__} in {path!r}")
    try:
        return name.encode("latin-1"), True
    except UnicodeEncodeError:
        return name.encode("utf-16-le", "surrogatepass"), False


def _name_key(name: str) -> str:
    """The name as the registry tells names apart: upcased, and a surrogate
    pair given as two lone surrogates read as the character it encodes (the
    two are the same UTF-16: "\\U0001F600" and "\\ud83d\\ude00" are one name)."""
    if name.isascii():
        return name.upper()
    return upcase_name(name.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass"))


def _align8(n: int) -> int:
    return (n + 7) & ~7


# --------------------------------------------------------------------------
# Builder
# --------------------------------------------------------------------------


def _build(
    tree: object,
    *,
    minor: int = 5,
    root_name: str = "ROOT",
    index: str = "auto",
    leaf_max: int = 512,
    timestamp: int | _dt.datetime | None = None,
    sequence: tuple[int, int] = (1, 1),
    file_name: str = "",
    value_list_order: str = "given",
    max_depth: int | None = MAX_KEY_DEPTH,
) -> tuple[bytearray, HiveLayout]:
    # ---- parameter validation ------------------------------------------
    if isinstance(minor, bool) or not isinstance(minor, int) or not 3 <= minor <= 6:
        raise ValueError(f"minor version must be 3, 4, 5 or 6, got {minor!r}")
    if index == "auto":
        index = "lh" if minor >= 5 else "lf"
    if index not in ("lh", "lf", "li"):
        raise ValueError(f"index must be 'auto', 'lh', 'lf' or 'li', got {index!r}")
    if isinstance(leaf_max, bool) or not isinstance(leaf_max, int) or not 1 <= leaf_max <= 0xFFFF:
        raise ValueError(f"leaf_max must be an int in [1, 65535], got {leaf_max!r}")
    if value_list_order not in ("given", "sorted"):
        raise ValueError(f"value_list_order must be 'given' or 'sorted', got {value_list_order!r}")
    if max_depth is not None and (
        isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0
    ):
        raise ValueError(f"max_depth must be None or an int >= 0, got {max_depth!r}")
    try:
        seq1, seq2 = sequence
    except (TypeError, ValueError):
        raise TypeError("sequence must be a pair of ints") from None
    for s in (seq1, seq2):
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= 0xFFFFFFFF:
            raise ValueError(f"sequence numbers must be ints in [0, 2**32), got {sequence!r}")
    if not isinstance(file_name, str):
        raise TypeError("file_name must be str")
    hive_ts = filetime(timestamp)
    _check_key_name(root_name, "")

    big_data = minor >= 4
    # keys deeper than this are checked (a cycle, max_depth) as they are made
    check_past = MAX_KEY_DEPTH if max_depth is None else min(max_depth, MAX_KEY_DEPTH)
    leaf_sig = index.encode("ascii")
    leaf_entry = 4 if index == "li" else 8
    sorted_values = value_list_order == "sorted"
    default_sd = DEFAULT_SECURITY_DESCRIPTOR

    layout = HiveLayout()
    lay_nk = layout.nk
    lay_vk = layout.vk
    lay_data = layout.data
    lay_vl = layout.value_list
    lay_sl = layout.subkey_list
    lay_cls = layout.class_name
    lay_skof = layout.sk_of
    hbins = layout.hbins
    free_cells = layout.free

    buf = bytearray(BASE_BLOCK_SIZE)
    pack_nk = _S_NK.pack_into
    pack_vk = _S_VK.pack_into
    pack_i32 = _S_I32.pack_into
    pack_hdr = _S_LIST_HDR.pack_into
    pack_hbin = _S_HBIN.pack_into

    # Allocator state: file offsets of the next free byte and of the end of
    # the current bin.  Both are absolute file offsets.
    state = [BASE_BLOCK_SIZE, BASE_BLOCK_SIZE]

    def new_bin(cell_size: int) -> None:
        cur, end = state
        if end > cur:
            pack_i32(buf, cur, end - cur)  # free cell (positive size)
            free_cells.append((cur, end - cur))
        need = cell_size + HBIN_HEADER_SIZE
        size = HBIN_SIZE if need <= HBIN_SIZE else (need + HBIN_SIZE - 1) // HBIN_SIZE * HBIN_SIZE
        start = len(buf)
        buf.extend(bytes(size))
        pack_hbin(
            buf,
            start,
            b"hbin",
            start - BASE_BLOCK_SIZE,
            size,
            0,
            hive_ts if start == BASE_BLOCK_SIZE else 0,
            0,
        )
        hbins.append((start, size))
        state[0] = start + HBIN_HEADER_SIZE
        state[1] = start + size

    def alloc(size: int) -> int:
        """Reserve an allocated cell of ``size`` bytes (multiple of 8)."""
        off = state[0]
        if off + size > state[1]:
            new_bin(size)
            off = state[0]
        state[0] = off + size
        return off

    def alloc_blob(data: bytes) -> int:
        """Allocate a cell holding ``data``; write its header; return it."""
        size = (len(data) + 11) & ~7
        off = state[0]
        if off + size > state[1]:
            new_bin(size)
            off = state[0]
        state[0] = off + size
        pack_i32(buf, off, -size)
        buf[off + 4 : off + 4 + len(data)] = data
        return off

    # Security descriptors: bytes -> [cell offset, refcount]
    sk_cells: dict[bytes, list[int]] = {}

    def get_sk(sd: bytes | None, path: str) -> int:
        if sd is None:
            sd = default_sd
        elif not isinstance(sd, (bytes, bytearray, memoryview)):
            raise TypeError(f"security of {path!r} must be bytes, not {type(sd).__name__}")
        else:
            sd = bytes(sd)
            if not sd:
                raise ValueError(f"security descriptor of {path!r} is empty")
        ent = sk_cells.get(sd)
        if ent is None:
            if sd is not default_sd:
                _check_security_descriptor(sd, path)
            off = alloc((len(sd) + _SK_FIXED + 4 + 7) & ~7)
            ent = sk_cells[sd] = [off, 0]
        ent[1] += 1
        return ent[0]

    def write_value_data(data: bytes) -> int:
        """Store out-of-line data; return the data (or db) cell offset."""
        n = len(data)
        if n <= BIG_DATA_SEGMENT or not big_data:
            return alloc_blob(data)
        nseg = (n + BIG_DATA_SEGMENT - 1) // BIG_DATA_SEGMENT
        if nseg > 0xFFFF:
            raise ValueError(f"value data of {n} bytes needs more than 65535 big-data segments")
        db_off = alloc(16)
        list_off = alloc((4 * nseg + 11) & ~7)
        segs = []
        for i in range(nseg):
            chunk = data[i * BIG_DATA_SEGMENT : (i + 1) * BIG_DATA_SEGMENT]
            if len(chunk) == BIG_DATA_SEGMENT:
                segs.append(alloc_blob(chunk) - BASE_BLOCK_SIZE)
            else:
                # pad so that cell_size - 8 >= len(chunk) (see module doc)
                size = (len(chunk) + 15) & ~7
                off = alloc(size)
                pack_i32(buf, off, -size)
                buf[off + 4 : off + 4 + len(chunk)] = chunk
                segs.append(off - BASE_BLOCK_SIZE)
        _S_DB.pack_into(buf, db_off, -16, b"db", nseg, list_off - BASE_BLOCK_SIZE)
        size = (4 * nseg + 11) & ~7
        pack_i32(buf, list_off, -size)
        struct.pack_into(f"<{nseg}I", buf, list_off + 4, *segs)
        return db_off

    def nk_size(enc_name: bytes) -> int:
        return (len(enc_name) + _NK_FIXED + 4 + 7) & ~7

    # ---- root ------------------------------------------------------------
    root_enc, root_comp = _encode_name(root_name, "key", "")
    root_info = _split(tree, "")
    if isinstance(tree, Key) and tree.symlink:
        raise ValueError("the root key cannot be a symbolic link")
    root_off = alloc(nk_size(root_enc))
    layout.root = root_off
    root_flags = KEY_HIVE_ENTRY | KEY_NO_DELETE | (KEY_COMP_NAME if root_comp else 0)

    # Stack entries: (info, path, enc_name, flags, nk_off, parent_off, depth,
    # ancestry: (id of the node, the parent's ancestry), to name a cycle)
    stack: list[tuple[_Parts, str, bytes, int, int, int, int, _Ancestry]] = [
        (root_info, "", root_enc, root_flags, root_off, root_off, 0, (id(tree), None))
    ]

    while stack:
        info, path, enc_name, flags, nk_off, parent_off, depth, ancestry = stack.pop()
        subkeys, values, class_name, last_write, security = info
        lay_nk[path] = nk_off

        # class name
        if class_name:
            if not isinstance(class_name, str):
                raise TypeError(f"class_name of {path!r} must be str, not {type(class_name).__name__}")
            cls_b = class_name.encode("utf-16-le", "surrogatepass")
            if len(cls_b) > 0xFFFF:
                raise ValueError(f"class name of {path!r} is too long")
            cls_off = alloc_blob(cls_b)
            lay_cls[path] = cls_off
            cls_rel = cls_off - BASE_BLOCK_SIZE
            cls_len = len(cls_b)
        else:
            cls_rel = _NONE
            cls_len = 0

        ts = hive_ts if last_write is None else filetime(last_write)
        sk_off = get_sk(security, path)
        lay_skof[path] = sk_off

        # values
        nvals = len(values)
        max_vname = 0
        max_vdata = 0
        if nvals:
            vl_size = (4 * nvals + 11) & ~7
            vl_off = alloc(vl_size)
            lay_vl[path] = vl_off
            vl_rel = vl_off - BASE_BLOCK_SIZE
            items = list(values.items())
            seen = set()
            for vname, _ in items:
                if not isinstance(vname, str):
                    raise TypeError(f"value names must be str, got {type(vname).__name__} in {path!r}")
                if _utf16_units(vname) > MAX_VALUE_NAME_CHARS:
                    raise ValueError(
                        f"value name in {path!r} is {_utf16_units(vname)} UTF-16 units long "
                        f"(max {MAX_VALUE_NAME_CHARS})"
                    )
                up = _name_key(vname)
                if up in seen:
                    raise ValueError(
                        f"duplicate value name {vname!r} in {path!r} (value names are case-insensitive)"
                    )
                seen.add(up)
            if sorted_values:
                keyf = _sort_key_fn([n for n, _ in items])
                items.sort(key=lambda it: keyf(it[0]))
            vk_rels = []
            for vname, v in items:
                if type(v) is str:
                    vtype = REG_SZ
                    data = v.encode("utf-16-le", "surrogatepass") + b"\0\0"
                else:
                    try:
                        vtype, data = _shorthand_value(v)
                    except (TypeError, ValueError) as e:
                        raise type(e)(f"value {vname!r} of {path!r}: {e}") from None
                try:
                    name_b = vname.encode("latin-1")
                    vflags = VALUE_COMP_NAME
                    ulen = len(name_b) * 2
                except UnicodeEncodeError:
                    name_b = vname.encode("utf-16-le", "surrogatepass")
                    vflags = 0
                    ulen = len(name_b)
                if ulen > max_vname:
                    max_vname = ulen
                dlen = len(data)
                if dlen > max_vdata:
                    max_vdata = dlen
                vk_size = (len(name_b) + _VK_FIXED + 4 + 7) & ~7
                vk_off = alloc(vk_size)
                if dlen <= 4:
                    pack_vk(
                        buf,
                        vk_off,
                        -vk_size,
                        b"vk",
                        len(name_b),
                        dlen | 0x80000000,
                        int.from_bytes(data, "little"),
                        vtype,
                        vflags,
                        0,
                    )
                else:
                    if dlen > _MAX_DATA_LEN:
                        raise ValueError(f"value {vname!r} of {path!r}: data too large ({dlen} bytes)")
                    d_off = write_value_data(data)
                    lay_data[(path, vname)] = d_off
                    pack_vk(
                        buf,
                        vk_off,
                        -vk_size,
                        b"vk",
                        len(name_b),
                        dlen,
                        d_off - BASE_BLOCK_SIZE,
                        vtype,
                        vflags,
                        0,
                    )
                if name_b:
                    buf[vk_off + 4 + _VK_FIXED : vk_off + 4 + _VK_FIXED + len(name_b)] = name_b
                lay_vk[(path, vname)] = vk_off
                vk_rels.append(vk_off - BASE_BLOCK_SIZE)
            pack_i32(buf, vl_off, -vl_size)
            struct.pack_into(f"<{nvals}I", buf, vl_off + 4, *vk_rels)
        else:
            vl_rel = _NONE

        # subkeys
        nsub = len(subkeys)
        max_sname = 0
        max_sclass = 0
        if nsub:
            names = list(subkeys)
            ups: dict[str, str] = {}
            for n in names:
                _check_key_name(n, path)
                up = _name_key(n)
                if up in ups:
                    raise ValueError(
                        f"duplicate subkey name {n!r} in {path!r} "
                        f"(conflicts with {ups[up]!r}; key names are case-insensitive)"
                    )
                ups[up] = n
            keyf = _sort_key_fn(names)
            names.sort(key=keyf)
            child_entries = []
            offs = []
            for n in names:
                child = subkeys[n]
                cpath = n if not path else path + "\\" + n
                if depth + 1 > check_past:
                    _check_deep_key(cpath, id(child), ancestry, depth + 1, max_depth)
                cinfo = _split(child, cpath)
                try:
                    cenc = n.encode("latin-1")
                    cflags = KEY_COMP_NAME
                    ulen = len(cenc) * 2
                except UnicodeEncodeError:
                    cenc = n.encode("utf-16-le", "surrogatepass")
                    cflags = 0
                    ulen = len(cenc)
                if isinstance(child, Key) and child.symlink:
                    if cinfo[0]:
                        raise ValueError(f"key {cpath!r} is a symbolic link: it cannot have subkeys")
                    cflags |= KEY_SYM_LINK
                if ulen > max_sname:
                    max_sname = ulen
                ccls = cinfo[2]
                if ccls:
                    clen = len(ccls.encode("utf-16-le", "surrogatepass")) if isinstance(ccls, str) else 0
                    if clen > max_sclass:
                        max_sclass = clen
                coff = alloc(nk_size(cenc))
                offs.append(coff)
                child_entries.append(
                    (cinfo, cpath, cenc, cflags, coff, nk_off, depth + 1, (id(child), ancestry))
                )
            # subkey list(s)
            leaves = []
            for start in range(0, nsub, leaf_max):
                chunk_names = names[start : start + leaf_max]
                chunk_offs = offs[start : start + leaf_max]
                cnt = len(chunk_names)
                size = (4 + 4 + cnt * leaf_entry + 7) & ~7
                loff = alloc(size)
                pack_hdr(buf, loff, -size, leaf_sig, cnt)
                if index == "li":
                    struct.pack_into(f"<{cnt}I", buf, loff + 8, *[o - BASE_BLOCK_SIZE for o in chunk_offs])
                else:
                    flat = []
                    if index == "lh":
                        for n, o in zip(chunk_names, chunk_offs, strict=True):
                            flat.append(o - BASE_BLOCK_SIZE)
                            flat.append(_lh_hash_upper(n.upper() if n.isascii() else upcase_name(n)))
                        struct.pack_into(f"<{2 * cnt}I", buf, loff + 8, *flat)
                    else:
                        parts = []
                        for n, o in zip(chunk_names, chunk_offs, strict=True):
                            parts.append(_S_U32.pack(o - BASE_BLOCK_SIZE))
                            parts.append(_lf_hint(n))
                        blob = b"".join(parts)
                        buf[loff + 8 : loff + 8 + len(blob)] = blob
                leaves.append(loff)
            if len(leaves) == 1:
                sl_off = leaves[0]
            else:
                if len(leaves) > 0xFFFF:
                    raise ValueError(f"too many subkeys in {path!r} for one index root")
                size = (4 + 4 + 4 * len(leaves) + 7) & ~7
                sl_off = alloc(size)
                pack_hdr(buf, sl_off, -size, b"ri", len(leaves))
                struct.pack_into(f"<{len(leaves)}I", buf, sl_off + 8, *[o - BASE_BLOCK_SIZE for o in leaves])
            lay_sl[path] = sl_off
            sl_rel = sl_off - BASE_BLOCK_SIZE
            # depth first, children in sorted order
            child_entries.reverse()
            stack.extend(child_entries)
        else:
            sl_rel = _NONE

        size = nk_size(enc_name)
        pack_nk(
            buf,
            nk_off,
            -size,
            b"nk",
            flags,
            ts,
            0,  # access bits
            parent_off - BASE_BLOCK_SIZE,
            nsub,
            0,
            sl_rel,
            _NONE,
            nvals,
            vl_rel,
            sk_off - BASE_BLOCK_SIZE,
            cls_rel,
            max_sname,
            max_sclass,
            max_vname,
            max_vdata,
            0,  # workvar
            len(enc_name),
            cls_len,
        )
        buf[nk_off + 4 + _NK_FIXED : nk_off + 4 + _NK_FIXED + len(enc_name)] = enc_name

    # ---- security cells: now that refcounts are known -------------------
    sk_list = list(sk_cells.items())
    nsk = len(sk_list)
    for i, (sd, (off, refs)) in enumerate(sk_list):
        flink = sk_list[(i + 1) % nsk][1][0]
        blink = sk_list[(i - 1) % nsk][1][0]
        size = (len(sd) + _SK_FIXED + 4 + 7) & ~7
        _S_SK.pack_into(
            buf, off, -size, b"sk", 0, flink - BASE_BLOCK_SIZE, blink - BASE_BLOCK_SIZE, refs, len(sd)
        )
        buf[off + 4 + _SK_FIXED : off + 4 + _SK_FIXED + len(sd)] = sd
        layout.sk.append(off)

    # close the last bin
    cur, end = state
    if end > cur:
        pack_i32(buf, cur, end - cur)
        free_cells.append((cur, end - cur))

    # ---- base block ------------------------------------------------------
    hbins_size = len(buf) - BASE_BLOCK_SIZE
    _S_BASE.pack_into(
        buf, 0, b"regf", seq1, seq2, hive_ts, 1, minor, 0, 1, root_off - BASE_BLOCK_SIZE, hbins_size, 1
    )
    fn = file_name.encode("utf-16-le", "surrogatepass")[:64]
    buf[0x30 : 0x30 + len(fn)] = fn
    _S_U32.pack_into(buf, 0x1FC, _checksum(buf))
    layout.size = len(buf)
    return buf, layout


def _checksum(block: bytes | bytearray) -> int:
    """XOR-32 checksum of the first 508 bytes of a base block.

    Windows maps a result of 0 to 1 and 0xFFFFFFFF to 0xFFFFFFFE.
    """
    c = reduce(xor, struct.unpack_from("<127I", block, 0), 0)
    if c == 0:
        return 1
    if c == 0xFFFFFFFF:
        return 0xFFFFFFFE
    return c


def _utf16_units(name: str) -> int:
    """Length in UTF-16 code units, what Windows' name limits count: a
    character past U+FFFF takes two, a lone surrogate one."""
    return len(name) if name.isascii() else len(name) + sum(1 for c in name if ord(c) > 0xFFFF)


def _check_key_name(name: object, parent: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"key names must be str, got {type(name).__name__} under {parent!r}")
    if not name:
        raise ValueError(f"empty key name under {parent!r}")
    if _utf16_units(name) > MAX_KEY_NAME_CHARS:
        raise ValueError(
            f"key name {name[:20]!r}... under {parent!r} is {_utf16_units(name)} UTF-16 units long "
            f"(max {MAX_KEY_NAME_CHARS})"
        )
    if "\\" in name:
        raise ValueError(f"key name {name!r} under {parent!r} contains a backslash")


def build_hive(
    tree: Key | dict[str, Any],
    *,
    minor: int = 5,
    root_name: str = "ROOT",
    index: str = "auto",
    leaf_max: int = 512,
    timestamp: int | _dt.datetime | None = None,
    sequence: tuple[int, int] = (1, 1),
    file_name: str = "",
    value_list_order: str = "given",
    max_depth: int | None = MAX_KEY_DEPTH,
) -> tuple[bytes, HiveLayout]:
    """Build a hive file in memory.

    Parameters
    ----------
    tree : Key or dict
        The root key's contents.  In a dict, entries whose value is a dict
        or :class:`Key` are subkeys and everything else is a value.
    minor : int
        Minor format version, 3..6.  Selects the default index kind and
        whether big data (``db``) is used (minor >= 4).
    root_name : str
        Name of the root key.
    index : {"auto", "lh", "lf", "li"}
        Leaf list kind; ``"auto"`` is ``lh`` for minor >= 5 and ``lf``
        otherwise.
    leaf_max : int
        Maximum entries per leaf list.  A key with more subkeys gets an
        ``ri`` index root over ``ceil(n / leaf_max)`` leaf lists.
    timestamp : int, datetime or None
        Hive timestamp (base block, first hbin, and every key without its
        own ``last_write``).  ``None`` = now.
    sequence : (int, int)
        Primary and secondary sequence numbers; unequal values make a
        "dirty" hive.
    file_name : str
        Stored (UTF-16LE, truncated to 64 bytes) in the base block.
    value_list_order : {"given", "sorted"}
        Order of each key's value list: insertion order or sorted by
        upcased name.
    max_depth : int or None
        The deepest key written (the root is level 0): 512 by default, the
        registry's limit, past which Windows and regfast's reader call a
        hive corrupt. ``None`` writes any depth (to make such a hive for a
        test). A tree that contains itself is refused either way.

    Returns
    -------
    data : bytes
        The complete hive file.
    layout : HiveLayout
        File offsets of the cells written.

    Raises
    ------
    ValueError
        Invalid names (empty, too long, backslash in a key name,
        case-insensitive duplicates), out-of-range numbers or parameters, a
        key deeper than `max_depth`, a tree that contains itself, or a
        REG_MULTI_SZ that would not read back as given.
    TypeError
        Values or nodes of unsupported types.
    """
    buf, layout = _build(
        tree,
        minor=minor,
        root_name=root_name,
        index=index,
        leaf_max=leaf_max,
        timestamp=timestamp,
        sequence=sequence,
        file_name=file_name,
        value_list_order=value_list_order,
        max_depth=max_depth,
    )
    return bytes(buf), layout


def write_hive(path: str | os.PathLike[str], tree: Key | dict[str, Any], **kwargs: Any) -> HiveLayout:
    """Build a hive and write it to ``path`` atomically.

    The file is written to a temporary file in the same directory, flushed
    and fsynced, then moved over ``path`` with :func:`os.replace`; a ``path``
    that exists and is not a regular file (a device, a FIFO) is written
    directly, and a directory is refused (IsADirectoryError).

    Parameters
    ----------
    path : str or PathLike
        Destination file.
    tree : Key or dict
        See :func:`build_hive`.
    **kwargs
        Same keyword arguments as :func:`build_hive`.

    Returns
    -------
    HiveLayout
    """
    buf, layout = _build(tree, **kwargs)
    # regfast._files.atomic_output, as the exports: a replaced file keeps its
    # mode, a symbolic link is written through, and a target that is not a
    # regular file (/dev/null, a FIFO) is written, never renamed over (a
    # rename replaced a device node such as /dev/full with a plain file)
    with atomic_output(path, "wb") as f:
        f.write(buf)
    return layout
