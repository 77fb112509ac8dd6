# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The binding: only calls rf_*; knows nothing of cells or Windows.

Lifetimes: every Key, Value and zero-copy view holds a reference to its Hive.
A memoryview into the mapping comes from an _Export object that counts itself
in ``Hive._exports``. ``Hive.close()`` closes the hive for calls at once but
unmaps only when the last export is released, so ``with open_hive(p) as h:
table = h.scan()`` leaves a usable table behind and no pointer ever dangles.

Uninitialised objects (``Key.__new__(Key)``) raise RegistryError winerror 6
from every method instead of following a NULL pointer. Pickling: a Hive
re-opens (its path with the same options, or a copy of its buffer), a Key or
Value is found again in it by token; exports into the mapping refuse
(TypeError) -- see ``_reduce_refused``.
"""
from cpython.buffer cimport PyBUF_FORMAT, PyBUF_WRITABLE, PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF
from cpython.unicode cimport PyUnicode_DecodeUTF16

cdef extern from "Python.h":
    object PyObject_GenericGetAttr(object o, object name)
    str PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void *PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    Py_UCS4 PyUnicode_MAX_CHAR_VALUE(object o)
    int PyUnicode_KIND(object o)
    void PyUnicode_WRITE(int kind, void *data, Py_ssize_t index, Py_UCS4 value)
    Py_ssize_t PyUnicode_CopyCharacters(object to, Py_ssize_t to_start, object src, Py_ssize_t src_start,
                                        Py_ssize_t how_many) except -1
    int PyUnicode_WriteChar(object s, Py_ssize_t i, Py_UCS4 c) except -1
from cpython.datetime cimport import_datetime, datetime_new
cimport cython
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.stdlib cimport calloc, malloc, free
from libc.string cimport memcpy

from regfast.regfast cimport *

cdef extern from "regfast/_text.h":
    size_t rf_u16_scan(const uint8_t *p, size_t n, int stop_at_nul, uint16_t *bits_out) noexcept nogil
    void rf_u16_narrow(uint8_t *dst, const uint8_t *p, size_t n) noexcept nogil
    uint8_t rf_bytes_or(const uint8_t *p, size_t n) noexcept nogil

cdef extern from *:
    """
    /* Key and value names repeat (every Amcache entry has the same ~20 value
       names; a shellbag key its "0", "1", "MRUListEx"...): a direct-mapped
       cache of the last short Latin-1 names made hands out the same str
       again instead of a new one (strs are immutable: only `is` can tell).
       It holds at most RF_NAME_SLOTS small strs; the GIL guards it. */
    #define RF_NAME_SLOTS 512
    #define RF_NAME_CACHED_MAX 48
    static PyObject *rf_name_cache[RF_NAME_SLOTS];

    static inline uint8_t rf_bytes_or(const uint8_t *p, size_t n);

    static PyObject *rf_latin1_name(const uint8_t *p, size_t n)
    {
        PyObject *s;
        size_t slot = 0;
        if (n <= RF_NAME_CACHED_MAX) {
            uint64_t a = 0, b = 0;
            memcpy(&a, p, n < 8 ? n : 8);
            if (n > 8)
                memcpy(&b, p + n - 8, 8);
            slot = (size_t)(((a ^ (b * 0x9E3779B97F4A7C15ULL) ^ n) * 0xFF51AFD7ED558CCDULL) >> 55);
            s = rf_name_cache[slot];
            if (s && (size_t)PyUnicode_GET_LENGTH(s) == n && memcmp(PyUnicode_DATA(s), p, n) == 0) {
                Py_INCREF(s);
                return s;
            }
        }
        s = PyUnicode_New((Py_ssize_t)n, rf_bytes_or(p, n) < 0x80 ? 0x7F : 0xFF);
        if (!s)
            return NULL;
        memcpy(PyUnicode_DATA(s), p, n);
        if (n <= RF_NAME_CACHED_MAX) {
            Py_INCREF(s);
            Py_XSETREF(rf_name_cache[slot], s);
        }
        return s;
    }
    """

    str rf_latin1_name(const uint8_t *p, size_t n)

import datetime as _dt
import gc as _gc
import operator
import os
import sys as _sys

from regfast.exceptions import RegistryCorruptError, error_from_status, take_hook_veto
from regfast._types import (CellSlack, DeletedKey, DeletedValue, HiveInfo, HiveProblem, KeyInfo,
                            _as_int, encode_value, filetime_to_datetime, type_name, upcase_name)
from regfast.paths import ROOT_WORDS, resolve_path


import_datetime()
_UTC = _dt.timezone.utc
regf_guard_install()        # the SIGBUS handler, installed while this import holds the GIL


def _not_initialised(what):
    return error_from_status(RF_E_INVALID_HANDLE, f"this {what} is not initialised: {what}s come from "
                             "an open Hive (regfast.open_hive), never from __new__")


def _reduce_refused(obj, hint=""):
    """The __reduce__ of objects that view the hive's memory: a pickle or a
    copy of one would carry pointers into a mapping that may be gone."""
    raise TypeError(f"cannot pickle or copy a {type(obj).__name__}: it points into the hive's "
                    f"mapping{hint}")

# The last FILETIME whose microsecond a datetime holds: 9999-12-31 23:59:59.999999 UTC.
cdef uint64_t MAX_FILETIME = 2650467743999999999ULL


cdef uint64_t _last_ft = 0
cdef object _last_dt = None


cdef object filetime_dt(uint64_t ft):
    """FILETIME (100 ns ticks since 1601 UTC) to an aware datetime, built
    through the C API: a civil-from-days conversion (H. Hinnant's algorithm)
    instead of epoch + timedelta, which cost ~1 us per key in walks.

    None past 9999-12-31 (damaged or crafted hives; 0xFFFFFFFFFFFFFFFF is
    common), where a datetime cannot go: the caller keeps the raw value, and
    clamping would pass off a made-up date as evidence."""
    global _last_ft, _last_dt
    if ft > MAX_FILETIME:
        return None
    # Keys written together share their FILETIME (half of the keys of the
    # corpus' NTUSER, UsrClass and Amcache hives have their predecessor's in
    # walk order): the datetime made last is handed out again (immutable).
    if ft == _last_ft and _last_dt is not None:
        return _last_dt
    cdef uint64_t us = ft // 10
    cdef int64_t days = <int64_t>(us // 86400000000ULL) - 134774   # days since 1970-01-01
    cdef uint64_t rem = us % 86400000000ULL
    cdef int64_t z = days + 719468
    cdef int64_t era = (z if z >= 0 else z - 146096) // 146097
    cdef int64_t doe = z - era * 146097
    cdef int64_t yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef int64_t doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef int64_t mp = (5 * doy + 2) // 153
    cdef int d = <int>(doy - (153 * mp + 2) // 5 + 1)
    cdef int m = <int>(mp + 3 if mp < 10 else mp - 9)
    cdef int y = <int>(yoe + era * 400 + (1 if m <= 2 else 0))
    dt = datetime_new(y, m, d, <int>(rem // 3600000000ULL), <int>(rem // 60000000ULL % 60),
                      <int>(rem // 1000000ULL % 60), <int>(rem % 1000000ULL), _UTC)
    _last_ft = ft
    _last_dt = dt
    return dt


cdef int check(rf_status st) except -1:
    """The one place a status becomes an exception."""
    if st == RF_OK:
        return 0
    cdef const rf_error *e = rf_last_error()
    message = e.message.decode("utf-8", "replace") if e.code == st and e.message[0] else \
        rf_status_text(st).decode()
    offset = e.offset if e.code == st and e.offset != RF_NO_OFFSET else None
    native = e.native if e.code == st else 0
    if st == RF_E_ACCESS_DENIED:
        vetoed = take_hook_veto(message)    # a Python pre hook's own exception (regfast.observe.hooks)
        if vetoed is not None:
            raise vetoed
    raise error_from_status(st, message, None, offset, native)


cdef str name_str(const rf_name *n):
    """Decodes a stored name: Latin-1 ("compressed") or UTF-16LE. Lone
    surrogates are kept as-is (surrogatepass), so every name round-trips."""
    # Straight into a compact str (what PyUnicode_DecodeLatin1 and the UTF-16
    # decoder end up making, without their layers of calls: ~4% of a walk),
    # or a recent one with the same characters (rf_latin1_name)
    if not n.utf16:
        return rf_latin1_name(<const uint8_t *>n.ptr, n.nbytes)
    if n.nbytes & 1:
        raise error_from_status(RF_E_CORRUPT, f"UTF-16 name has an odd length of {n.nbytes} bytes")
    return utf16_str(<const uint8_t *>n.ptr, n.nbytes, False)


cdef str utf16_str(const uint8_t *p, size_t nbytes, bint stop_at_nul):
    """UTF-16LE data to str. An odd trailing byte cannot be part of a UTF-16
    character and is ignored; with stop_at_nul the string ends at the first
    NUL, as every Win32 caller and the stdlib winreg see it.

    Most registry strings are ASCII or Latin-1: one pass finds the end and an
    upper bound of the characters (their OR), and such strings are narrowed
    straight into a 1-byte str; the rest (and every surrogate) go through
    CPython's UTF-16 decoder."""
    cdef int order = -1
    cdef uint16_t bits = 0
    cdef size_t n = rf_u16_scan(p, nbytes >> 1, stop_at_nul, &bits)
    if bits < 0x100:
        s = PyUnicode_New(<Py_ssize_t>n, 0x7F if bits < 0x80 else 0xFF)
        rf_u16_narrow(<uint8_t *>PyUnicode_DATA(s), p, n)
        return s
    return PyUnicode_DecodeUTF16(<const char *>p, n * 2, "surrogatepass", &order)


cdef object decode_data(uint32_t t, const uint8_t *p, size_t n):
    """Typed decoding, the one decoder of every path (Value.value, ValueBatch,
    ScanTable, the exports, and the live registry's through decode_value):
    str / int / list[str] / bytes. Never fails: any size of any type has an
    answer (reg_int in _native.pxd has the integer types' size rules)."""
    if t == RF_REG_SZ or t == RF_REG_EXPAND_SZ:
        return utf16_str(p, n, True)
    if t == RF_REG_LINK:
        return utf16_str(p, n, False)
    if reg_is_int(t):
        return reg_int(t, p, n)
    if t == RF_REG_MULTI_SZ:
        return multi_sz_list(p, n)
    return PyBytes_FromStringAndSize(<const char *>p, n)


cdef list multi_sz_list(const uint8_t *p, size_t nbytes):
    """REG_MULTI_SZ data as a list of str: the whole data decoded, its
    terminator stripped ("\\0" after the last string and "\\0" ending the
    list: two NUL units at the end, else one), then split at every NUL.
    Unlike winreg we keep strings after an embedded empty one: nothing is
    dropped. Each string is made straight from its units (utf16_str), not cut
    from one str of the whole (that made a str, a slice and split's list:
    decoded_values() of the 1 MB bench hive, 5% of whose values are
    REG_MULTI_SZ, took 0.29 ms then, 0.26 now); a NUL ends no surrogate
    pair, so the strings are the same."""
    cdef size_t n = nbytes >> 1, i, start = 0      # (an odd trailing byte is no unit)
    if n and u16_at(p, n - 1) == 0:
        n -= 2 if n >= 2 and u16_at(p, n - 2) == 0 else 1
    cdef list out = []
    if n == 0:
        return out
    for i in range(n):
        if u16_at(p, i) == 0:
            out.append(utf16_str(p + 2 * start, 2 * (i - start), False))
            start = i + 1
    out.append(utf16_str(p + 2 * start, 2 * (n - start), False))
    return out


def decode_value(uint32_t vtype, data):
    """Decodes raw value data of REG_* type `vtype` exactly as Value.value does
    (the live registry's values and regfast.diff decode through it)."""
    cdef const uint8_t[::1] v
    if isinstance(data, bytes):     # the common case: no buffer export
        return decode_data(vtype, <const uint8_t *>PyBytes_AS_STRING(data), len(<bytes>data))
    v = memoryview(data).cast("B")
    if v.shape[0] == 0:
        return decode_data(vtype, <const uint8_t *>"", 0)
    return decode_data(vtype, &v[0], v.shape[0])


def value_well_formed(uint32_t vtype, size_t size):
    """False when a REG_DWORD / REG_DWORD_BIG_ENDIAN / REG_QWORD does not hold
    4 / 8 bytes (it still decodes, see Value.value); True for any other value."""
    return reg_well_formed(vtype, size)


@cython.no_gc
@cython.auto_pickle(False)
cdef class _Export:
    def __cinit__(self, Hive hive not None):
        self.hive = hive
        hive._exports += 1

    def __reduce__(self):
        _reduce_refused(self)

    def __dealloc__(self):
        if self.hive is not None:
            self.hive.unpin()

    def __getbuffer__(self, Py_buffer *buf, int flags):
        if flags & PyBUF_WRITABLE:
            raise BufferError("hive data is read-only")
        self.shape[0] = self.length
        self.strides[0] = 1
        buf.buf = <void *>self.ptr
        buf.len = self.length
        buf.readonly = 1
        buf.itemsize = 1
        buf.format = NULL
        if flags & PyBUF_FORMAT:
            buf.format = "B"
        buf.ndim = 1
        buf.shape = self.shape
        buf.strides = self.strides
        buf.suboffsets = NULL
        buf.internal = NULL
        buf.obj = self

    def __releasebuffer__(self, Py_buffer *buf):
        pass


cdef int _check_in(const uint8_t *base, size_t base_len, const uint8_t *p, size_t n, uint64_t offset,
                   str what) except -1:
    """Raises RegistryCorruptError unless [p, p + n) lies in the mapping: for
    pointers whose length was read from the file by code that had no cell to
    bound it by (the file may have changed since it was opened)."""
    if p < base or n > base_len or <size_t>(p - base) > base_len - n:
        raise error_from_status(RF_E_CORRUPT, f"{what} at 0x{offset:x}: {n} bytes run past the end of "
                                "the hive (the file changed after it was opened?)", None, offset)
    return 0


cdef object view_of(Hive hive, const uint8_t *p, size_t n):
    """A read-only memoryview of hive memory that keeps the hive open.
    A hive without a mapping (remote: what it hands back is per-thread
    scratch, reused by the next call) gets a view of a copy instead."""
    if hive._map == NULL:
        return memoryview(PyBytes_FromStringAndSize(<const char *>p, n))
    cdef _Export e = _Export(hive)
    e.ptr = <const char *>p
    e.length = n
    return memoryview(e)


# ---- calls that may wait: a remote hive's every call is a request to
# regfast-agent (or waits for the connection another thread's request holds),
# up to the timeout. Those release the GIL, the hive pinned meanwhile, so a
# slow agent stalls only the calling thread. Hive files keep the GIL: their
# calls take well under a microsecond, less than a release would cost.

cdef rf_status _key_name(Hive hv, rf_key k, rf_name *out) except? -1:
    cdef rf_hive *h = hv.handle()
    cdef rf_status st
    if not hv._blocks:
        st = rf_key_name(h, k, out)
        return st
    hv.pin()
    try:
        with nogil:
            st = rf_key_name(h, k, out)
    finally:
        hv.unpin()
    return st


cdef rf_status _key_parent(Hive hv, rf_key k, rf_key *out) except? -1:
    cdef rf_hive *h = hv.handle()
    cdef rf_status st
    if not hv._blocks:
        st = rf_key_parent(h, k, out)
        return st
    hv.pin()
    try:
        with nogil:
            st = rf_key_parent(h, k, out)
    finally:
        hv.unpin()
    return st


cdef rf_status _key_info(Hive hv, rf_key k, rf_key_info *out) except? -1:
    cdef rf_hive *h = hv.handle()
    cdef rf_status st
    if not hv._blocks:
        st = rf_key_get_info(h, k, out)
        return st
    hv.pin()
    try:
        with nogil:
            st = rf_key_get_info(h, k, out)
    finally:
        hv.unpin()
    return st


cdef rf_status _key_class(Hive hv, rf_key k, rf_name *out) except? -1:
    cdef rf_hive *h = hv.handle()
    cdef rf_status st
    if not hv._blocks:
        st = rf_key_class(h, k, out)
        return st
    hv.pin()
    try:
        with nogil:
            st = rf_key_class(h, k, out)
    finally:
        hv.unpin()
    return st


cdef enum:
    _VALUES_ON_STACK = 32   # Key.values(): rows read into columns on the stack first


cdef char *_batch_block(rf_batch *b, size_t n) except NULL:
    """Points b's columns into one malloc'd block for n rows (the caller
    frees it): 16-byte names, then the 8-byte columns, then the 4-byte ones
    (all aligned)."""
    cdef char *mem = <char *>malloc(n * (sizeof(rf_name) + 8 + 8 + 4 + 4 + 4))
    if mem == NULL:
        raise MemoryError()
    b.name = <rf_name *>mem
    b.offset = <uint64_t *>(mem + n * sizeof(rf_name))
    b.token = <rf_value *>(mem + n * (sizeof(rf_name) + 8))
    b.type = <uint32_t *>(mem + n * (sizeof(rf_name) + 16))
    b.status = <int32_t *>(mem + n * (sizeof(rf_name) + 20))
    b.length = <uint32_t *>(mem + n * (sizeof(rf_name) + 24))
    return mem


cdef rf_status _key_count(Hive hv, rf_key k, bint values, size_t *n) except? -1:
    """rf_key_subkeys / rf_key_values asked for the count only."""
    cdef rf_hive *h = hv.handle()
    cdef rf_status st
    if not hv._blocks:
        if values:
            st = rf_key_values(h, k, NULL, 0, n)
        else:
            st = rf_key_subkeys(h, k, NULL, 0, n)
        return st
    hv.pin()
    try:
        with nogil:
            if values:
                st = rf_key_values(h, k, NULL, 0, n)
            else:
                st = rf_key_subkeys(h, k, NULL, 0, n)
    finally:
        hv.unpin()
    return st


cdef rf_status _key_security(Hive hv, rf_key k, const uint8_t **sd, size_t *n) except? -1:
    cdef rf_hive *h = hv.handle()
    cdef rf_status st
    if not hv._blocks:
        st = rf_key_security(h, k, sd, n)
        return st
    hv.pin()
    try:
        with nogil:
            st = rf_key_security(h, k, sd, n)
    finally:
        hv.unpin()
    return st


cdef rf_status _value_open(Hive hv, rf_key k, const char *name, size_t n, rf_value *out) except? -1:
    cdef rf_hive *h = hv.handle()
    cdef rf_status st
    if not hv._blocks:
        st = rf_value_open(h, k, name, n, out)
        return st
    hv.pin()
    try:
        with nogil:
            st = rf_value_open(h, k, name, n, out)
    finally:
        hv.unpin()
    return st


cdef rf_status _value_info(Hive hv, rf_value v, rf_value_info *out) except? -1:
    cdef rf_hive *h = hv.handle()
    cdef rf_status st
    if not hv._blocks:
        st = rf_value_get_info(h, v, out)
        return st
    hv.pin()
    try:
        with nogil:
            st = rf_value_get_info(h, v, out)
    finally:
        hv.unpin()
    return st


cdef rf_status _value_read(Hive hv, rf_value v, const uint8_t **p, size_t *n) except? -1:
    """rf_value_read without a buffer (contiguous data: a pointer back)."""
    cdef rf_hive *h = hv.handle()
    cdef rf_status st
    if not hv._blocks:
        st = rf_value_read(h, v, NULL, 0, p, n)
        return st
    hv.pin()
    try:
        with nogil:
            st = rf_value_read(h, v, NULL, 0, p, n)
    finally:
        hv.unpin()
    return st


_MISSING = object()


cdef inline bytes _utf8_name(object s, str what):
    """A key path or value name as the UTF-8 the C API takes (a lone
    surrogate kept: surrogatepass). Anything but a str is a TypeError, as in
    winreg (it was an AttributeError from .encode)."""
    if not isinstance(s, str):
        raise TypeError(f"{what} must be a str, not {type(s).__name__}")
    return (<str>s).encode("utf-8", "surrogatepass")


cdef bint _special_path(object path) except -1:
    """True when the path's first component is a hive-root word (HKLM, ...)
    or CurrentControlSet, for regfast.paths to resolve: checked here first,
    so that plain paths (nearly all) pay a few comparisons and no call."""
    if type(path) is not str:
        return False
    cdef str s = <str>path
    cdef Py_ssize_t i = 0, n = len(s), j
    while i < n and s[i] == "\\":
        i += 1
    j = s.find("\\", i)
    if j < 0:
        j = n
    if j - i < 3 or j - i > 19:
        return False
    return upcase_name(s[i:j]) in ROOT_WORDS   # (as the registry folds: no "ß" -> "SS")


# The column layer (regfast._bulk: scan(), read_values()) sits above this
# module: it cimports Hive and Key from here. Hive.scan/walk/get_many and
# Key.read_values hand their work up to it through these two slots, which
# _bulk fills when it is imported (regfast/__init__ imports it, so they are
# set before any hive can be opened): no import cycle between the modules,
# and no import statement on the per-call path (one was ~0.25 us of a ~0.8 us
# read of a few values).
cdef object _scan = None
cdef object _read_values = None


def _bind_columns(scan, read_values):
    """Called once by regfast._bulk at its import: the functions the methods
    above hand their work to."""
    global _scan, _read_values
    _scan = scan
    _read_values = read_values


_ERRORS = ("strict", "tolerant")
_PROBLEM_KINDS = {RF_PROBLEM_CHECKSUM: "checksum", RF_PROBLEM_BASE_BLOCK: "base_block",
                  RF_PROBLEM_TRUNCATED: "truncated", RF_PROBLEM_HBIN: "hbin",
                  RF_PROBLEM_CELL: "cell", RF_PROBLEM_ROOT: "root", RF_PROBLEM_SUBKEYS: "subkeys",
                  RF_PROBLEM_VALUES: "values"}
_DELETED_SOURCES = {RF_DELETED_FREE: "free", RF_DELETED_UNREFERENCED: "unreferenced",
                    RF_DELETED_SLACK: "slack", RF_DELETED_REMNANT: "remnant"}
_CELL_KINDS = {RF_CELL_NK: "nk", RF_CELL_VK: "vk", RF_CELL_SUBKEY_LIST: "subkey_list",
               RF_CELL_VALUE_LIST: "value_list", RF_CELL_DATA: "data", RF_CELL_DB: "db",
               RF_CELL_DB_LIST: "db_list", RF_CELL_DB_SEGMENT: "db_segment", RF_CELL_SK: "sk",
               RF_CELL_CLASS: "class"}


cdef rf_deleted *deleted_records(Hive hive, size_t *n_out) except NULL:
    """rf_hive_deleted into a malloc'd array (the caller frees it), with the
    GIL released and the mapping pinned. One carving pass in the common case:
    the first guess at the count is generous, the exact count comes back
    when it was not."""
    cdef rf_hive *h = hive.pin()
    cdef rf_hive_info info
    cdef size_t cap, n = 0
    cdef rf_deleted *recs = NULL
    cdef rf_status st
    try:
        check(rf_hive_get_info(h, &info))
        cap = <size_t>(info.cells_free + info.cells_allocated // 8 + 64)
        while True:
            recs = <rf_deleted *>malloc(cap * sizeof(rf_deleted))
            if recs == NULL:
                raise MemoryError()
            with nogil:
                st = rf_hive_deleted(h, recs, cap, &n)
            if st != RF_E_MORE_DATA:
                break
            free(recs)
            recs = NULL
            cap = n
        if st != RF_OK:
            free(recs)
            check(st)
        n_out[0] = n
        return recs
    finally:
        hive.unpin()


cdef str deleted_name(const rf_name *nm):
    """A carved record's name; a damaged UTF-16 name decodes its whole units
    and shows a stray last byte as \\xNN."""
    if nm.utf16 and nm.nbytes & 1:
        raw = (<const char *>nm.ptr)[:nm.nbytes]
        return raw[:-1].decode("utf-16-le", "surrogatepass") + f"\\x{raw[-1]:02x}"
    return name_str(nm)


cdef bytes _utf16(object s, str what):
    """A name or path as UTF-16LE bytes for the rf_* write calls (a lone
    surrogate passes: stored names are unchecked UTF-16)."""
    if not isinstance(s, str):
        raise TypeError(f"{what} must be a str, not {type(s).__name__}")
    return (<str>s).encode("utf-16-le", "surrogatepass")


cdef int _check_at(rf_status st, object filename) except -1:
    """check(st), with `filename` on the OSError (the name or path the call used)."""
    if st == RF_OK:
        return 0
    try:
        check(st)
    except OSError as e:
        if filename is not None:
            e.filename = filename
        raise
    return 0


cdef rf_open_opts make_opts(bint lenient, object errors, bint copy=False) except *:
    if errors not in _ERRORS:
        raise ValueError(f"errors must be 'strict' or 'tolerant', got {errors!r}")
    cdef rf_open_opts o
    o.struct_size = sizeof(rf_open_opts)
    o.flags = ((RF_OPEN_LENIENT if lenient else 0) | (RF_OPEN_TOLERANT if errors == "tolerant" else 0)
               | (RF_OPEN_COPY if copy else 0))
    o.max_depth = 512
    o.max_subkeys = 1 << 24
    o.max_values = 1 << 24
    return o


cdef bint _hook_running():
    """regfast._hooks.dispatching(), False when that module was never loaded
    (then no hook can run)."""
    m = _sys.modules.get("regfast._hooks")
    return m is not None and m.dispatching()


cdef class Hive:
    """An open offline hive (regf file). Use :func:`regfast.open_hive`.

    A context manager; also closed when garbage-collected. Keys, values and
    memoryviews obtained from it keep it alive.
    """

    def __cinit__(self):
        self._h = NULL
        self._has_buf = False
        self._exports = 0
        self._closing = False
        self._map = NULL
        self._map_len = 0
        self._can_fault = False

    def __dealloc__(self):
        if self._h != NULL:
            rf_hive_close(self._h)
            self._h = NULL
        if self._has_buf:
            PyBuffer_Release(&self._buf)
            self._has_buf = False

    def __init__(self):
        raise TypeError("use regfast.open_hive(path) or Hive.from_buffer(data)")

    @staticmethod
    def from_file(path, *, lenient=False, errors="strict", copy=False):
        """Opens a hive file read-only through mmap (see regfast.open_hive for
        `errors` and `copy`; `lenient` is the older, prefix-only form of
        "tolerant"). Anything but a regular file (a FIFO, a directory, a
        device) is refused with NotAHiveError before a byte is read."""
        cdef rf_open_opts opts = make_opts(lenient, errors, copy)
        cdef Hive self = Hive.__new__(Hive)
        cdef bytes bpath = os.fsencode(path)
        cdef const char *cpath = bpath
        cdef rf_status st
        if b"\0" in bpath:             # C would open the file named by the part before it
            raise ValueError("embedded null byte")      # (what open() and os.stat() say)
        self._tolerant = errors == "tolerant"
        self._lenient = lenient
        self._copy = copy
        with nogil:
            st = rf_hive_open(cpath, &opts, &self._h)
        try:
            check(st)
        except OSError as e:
            e.filename = os.fspath(path)
            raise
        self._path = os.fspath(path)
        check(rf_hive_mapping(self._h, &self._map, &self._map_len))
        self._can_fault = not copy
        return self

    @staticmethod
    def from_buffer(data, *, lenient=False, errors="strict"):
        """Opens a hive held in memory (bytes, bytearray, mmap, numpy array...).

        The buffer is held, not copied, for the life of the Hive: a bytearray
        cannot be resized meanwhile. `errors` as for regfast.open_hive.
        """
        cdef rf_open_opts opts = make_opts(lenient, errors)
        cdef Hive self = Hive.__new__(Hive)
        cdef rf_status st
        self._tolerant = errors == "tolerant"
        self._lenient = lenient
        PyObject_GetBuffer(data, &self._buf, PyBUF_SIMPLE)
        self._has_buf = True
        if self._buf.itemsize != 1:
            raise TypeError("from_buffer() needs a byte buffer (itemsize 1)")
        with nogil:
            st = rf_hive_open_memory(self._buf.buf, <size_t>self._buf.len, &opts, &self._h)
        check(st)
        self._path = None
        check(rf_hive_mapping(self._h, &self._map, &self._map_len))
        # bytes and bytearray live on the heap; anything else (an mmap, a
        # numpy memmap...) may be a file mapping that a truncation can cut
        self._can_fault = type(data) is not bytes and type(data) is not bytearray
        return self

    def __reduce__(self):
        """Pickles (and copies) as a re-open: the same path with the same
        options, or, for a hive opened from a buffer, a copy of its bytes.
        The new Hive is independent (its own mapping; closing one leaves the
        other open). A file changed since reads as it is now."""
        self.handle()       # a closed or uninitialised hive has nothing to re-open
        if self._path is None and self._map == NULL:
            raise TypeError("cannot pickle or copy a Hive served by regfast-agent (a live "
                            "registry): connect again in the other process")
        errors = "tolerant" if self._tolerant else "strict"
        if self._path is not None:
            return _reopen_file, (self._path, self._lenient, errors, self._copy)
        return _reopen_buffer, (bytes(view_of(self, self._map, self._map_len)), self._lenient, errors)

    @staticmethod
    def _remote(int fd_read, int fd_write, double timeout=30.0, uint32_t root=0x80000001u,
                uint32_t view=0, uint32_t access=0):
        """A root of a live registry served by regfast-agent over a byte stream,
        as a Hive: its Key, Value and ValueBatch are this module's, decoded by
        the one decoder, with the remote backend (src/remote) behind rf_*.

        Internal entry point for the live-registry layer (the next step of
        issue 12 builds regfast.connect() on it). `fd_read` / `fd_write` are
        the agent's stdout / stdin; they are duplicated, the copies owned (and
        closed) by the connection, which closes with the Hive. `timeout` is
        every request's, in seconds.

        Raises
        ------
        ConnectionError-like RegistryError (status RF_E_CONNECTION)
            No handshake.
        OSError
            The root does not open (winerror 6 for a bad root, 5 access denied).
        """
        cdef Hive self = Hive.__new__(Hive)
        cdef rf_transport t
        cdef rf_remote *c = NULL
        cdef rf_status st
        cdef uint32_t ms = <uint32_t>max(1.0, min(timeout * 1000.0, 4.0e9))
        cdef int r = os.dup(fd_read)
        cdef int w
        try:
            w = os.dup(fd_write)
        except OSError:
            os.close(r)
            raise
        st = rf_transport_fds(r, w, 1, &t)
        if st != RF_OK:
            os.close(r)
            os.close(w)
            check(st)
        with nogil:
            st = rf_remote_connect(&t, ms, &c)   # owns the fds from here, even on failure
            if st == RF_OK:
                st = rf_remote_open(c, root, view, access, &self._h)
                rf_remote_release(c)             # the hive holds the connection
        check(st)
        self._path = None
        self._blocks = True
        return self

    @staticmethod
    def _live(uint32_t root=0x80000001u, uint32_t view=0, uint32_t access=0):
        """A root of this machine's live registry, served in this process by
        the NT backend (src/nt, rf_live_open), as a Hive: the same Key, Value
        and ValueBatch as a hive file's, with the handle cache, batched
        NtQueryValueKey and writes behind rf_*. Windows only: elsewhere
        OSError winerror 120 (use regfast-agent: Hive._remote)."""
        cdef Hive self = Hive.__new__(Hive)
        cdef rf_status st
        with nogil:
            st = rf_live_open(root, view, access, &self._h)
        check(st)
        self._path = None
        return self

    cdef rf_remote *_conn(self) except NULL:
        cdef rf_remote *c = rf_remote_of(self.handle())
        if c == NULL:
            raise error_from_status(RF_E_NOT_SUPPORTED, "not a live registry served by regfast-agent "
                                    "(a hive file has no connection)")
        return c

    def _remote_root(self, uint32_t root, uint32_t view=0, uint32_t access=0):
        """Another root (or view, or access) of the same agent connection, as
        a Hive of its own: the connection is shared, and lives while any of
        its hives is open."""
        cdef rf_remote *c = self._conn()
        cdef Hive other = Hive.__new__(Hive)
        cdef rf_status st
        self.pin()
        try:
            with nogil:
                st = rf_remote_open(c, root, view, access, &other._h)
        finally:
            self.unpin()
        check(st)
        other._path = None
        other._blocks = True
        return other

    def _remote_info(self):
        """What the handshake said and the connection's state: a dict with
        version, pid, max_request, max_response, description, dead (0, or
        the status that killed it: 1236 a cut frame, RF_E_CONNECTION),
        requests, bytes_in, bytes_out."""
        cdef rf_remote_info i
        i.struct_size = sizeof(rf_remote_info)
        check(rf_remote_get_info(self._conn(), &i))
        return {"version": i.version, "pid": i.pid, "max_request": i.max_request,
                "max_response": i.max_response, "description": i.description.decode("utf-8", "replace"),
                "dead": i.dead, "requests": i.requests, "bytes_in": i.bytes_in, "bytes_out": i.bytes_out}

    def _remote_set_timeout(self, double timeout):
        """Seconds every later request of the connection may take."""
        check(rf_remote_set_timeout(self._conn(), <uint32_t>max(1.0, min(timeout * 1000.0, 4.0e9))))

    def _remote_kill(self, why="closed"):
        """Kills the connection now (its stream closed: the agent sees end of
        file); every later call on its hives raises RegistryConnectionError."""
        cdef bytes b = str(why).encode("utf-8", "replace")
        rf_remote_kill(self._conn(), b)

    def _remote_request(self, int op, payload=b""):
        """One request of the agent protocol (version 4 or 5; ops and payloads in
        src/agent/ag_ops.def, generated into regfast.live._agent_ops) on this
        hive's connection, for what rf_* has no call for: returns the reply
        payload after its status, or raises the agent's error. The framing,
        CRC trailers, timeout and the cut-frame rule are the connection's."""
        return self._request(0, op, payload)

    cdef bytes _request(self, rf_key k, int op, payload):
        cdef bytes b = bytes(memoryview(payload).cast("B"))
        cdef const char *pb = PyBytes_AS_STRING(b)
        cdef size_t n = len(b)
        cdef uint16_t cop
        cdef rf_bytes out
        cdef rf_status st
        self.handle()
        if not 0 < op < 0x8000:
            raise error_from_status(RF_E_INVALID_PARAMETER, f"{op} is not an agent op")
        cop = <uint16_t>op
        out.data = NULL
        out.len = out.cap = 0
        self._conn()
        cdef rf_hive *h = self.pin()
        try:
            with nogil:
                st = rf_remote_request(h, k, cop, pb, n, &out)
            check(st)
            return PyBytes_FromStringAndSize(<const char *>out.data, out.len) if out.len else b""
        finally:
            rf_bytes_free(&out)
            self.unpin()

    cdef rf_hive *handle(self) except NULL:
        if self._h == NULL or self._closing:
            raise error_from_status(RF_E_INVALID_HANDLE, "the hive is closed (or was never opened: "
                                    "use regfast.open_hive)")
        return self._h

    cdef int probe(self) except -1:
        """Raises RegistryError (errno EIO) when the file no longer covers the
        whole mapping (truncated since the open): called before the decoders
        read the mapping outside C, where a vanished page would be SIGBUS.
        Free (no probe) for bytes that cannot vanish: copy=True, or a bytes or
        bytearray buffer."""
        if self._can_fault and self._map_len:
            check(regf_probe_end(self._map, self._map_len))
        return 0

    cdef rf_hive *pin(self) except NULL:
        """handle(), and the mapping stays until unpin(): taken around every
        call that releases the GIL, so a close() from another thread (or from
        a scan's progress callback) while C code reads the hive only marks it
        closed; the unmap waits for unpin()."""
        cdef rf_hive *h = self.handle()
        self._exports += 1
        return h

    cdef void unpin(self):
        self._exports -= 1
        if self._exports == 0 and self._closing and not _hook_running():
            self._release()

    cdef void _release(self):
        """Unmaps the hive and drops the caller's buffer (no views are left)."""
        if self._h != NULL:
            rf_hive_close(self._h)
            self._h = NULL
        self._map = NULL
        self._map_len = 0
        self._can_fault = False
        if self._has_buf:
            PyBuffer_Release(&self._buf)
            self._has_buf = False

    cdef Key make_key(self, rf_key k, object path):
        cdef Key key = Key.__new__(Key)
        key.hive = self
        key._k = k
        key._path = path
        key._has_lw = False
        return key

    @property
    def path(self):
        """The file path, or None for a hive opened from a buffer."""
        return self._path

    @property
    def closed(self):
        """True once close() was called (even while views keep the mapping)."""
        return self._h == NULL or self._closing

    @property
    def mapped(self):
        """True while the file is mapped: until close(), then until the last
        memoryview, ValueBatch or ScanTable into it is released."""
        return self._h != NULL

    def close(self):
        """Closes the hive: every later call on it, its keys and values raises
        OSError (winerror 6). Memoryviews, ValueBatch and ScanTable results
        already handed out stay valid: the mapping is released when the last
        of them goes (check `mapped`), so no pointer ever dangles.

        Called while a hook or profiler callback runs (regfast.observe, in
        any thread), it only marks the hive closed: some thread is then
        inside an rf_* call that may be using the hive unpinned, so the
        mapping is released by a later close() or when the Hive is
        garbage-collected."""
        self._closing = True
        if self._exports == 0 and not _hook_running():
            self._release()

    def __enter__(self):
        self.handle()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        state = "closed" if self._h == NULL else "open"
        return f"<regfast.Hive {self._path or '<buffer>'!s} ({state})>"

    def validate(self):
        """Checks every hbin and cell header of the hive now, and raises
        RegistryCorruptError (with the offset of the first damage, in file
        order) as an open used to when any is damaged.

        A strict open checks only the root's hbin: each other hbin is checked
        the first time an offset in it is used, so a read that reaches damage
        raises there, and the rest of the hive reads as usual. Call this to
        know at once (``regfast.open_hive(..., validate=True)`` does). A
        no-op for tolerant opens, which check everything at open, and after
        the first full check, but for a file truncated since (RegistryError,
        errno EIO, winerror 1117). info(), scan(), deleted() and slack()
        check every hbin themselves. With the GIL released: ~10 ms for 100 MB."""
        cdef rf_hive_info i
        cdef rf_hive *h = self.pin()
        cdef rf_status st
        try:
            with nogil:
                st = rf_hive_get_info(h, &i)
        finally:
            self.unpin()
        check(st)
        # hbins checked before stay checked: a file truncated since then is
        # caught here (errno EIO), as each read of the lost pages would be
        self.probe()

    def info(self):
        """Base-block facts: version, dirty flag, sequence numbers, checksum;
        and the hbin and cell counts, for which every hbin is checked (see
        validate(): a damaged one raises RegistryCorruptError here)."""
        cdef rf_hive_info i
        check(rf_hive_get_info(self.handle(), &i))
        cdef int order = -1
        name = PyUnicode_DecodeUTF16(<const char *>i.file_name, i.file_name_chars * 2,
                                     "surrogatepass", &order)
        return HiveInfo((i.major, i.minor), bool(i.dirty), (i.seq_primary, i.seq_secondary),
                        bool(i.checksum_ok), i.last_write, name, i.file_size, i.hbins_size,
                        i.hbins_found, i.cells_allocated, i.cells_free)

    @property
    def problems(self):
        """Damage a tolerant open (errors="tolerant") found, in file order: a
        list of HiveProblem(offset, length, kind, reason). Kinds: regions
        skipped ("truncated", "hbin", "cell"), "checksum", "base_block",
        "root", subkey-list entries reads step over ("subkeys"), and values
        reads refuse ("values": a list entry stepped over, or a value whose
        data is lost; see Key.values). Empty for a healthy hive (and always
        for strict opens, which raise instead). At most 10,000 are kept;
        problems_total counts them all."""
        cdef const rf_problem *p
        cdef size_t n, i
        check(rf_hive_problems(self.handle(), &p, &n, NULL))
        return [HiveProblem(p[i].offset, p[i].length, _PROBLEM_KINDS.get(p[i].kind, str(p[i].kind)),
                            p[i].reason.decode("utf-8", "replace")) for i in range(n)]

    @property
    def problems_total(self):
        """Problems a tolerant open found, including those past the 10,000 kept
        in `problems` (the list was capped when this is larger than it)."""
        cdef const rf_problem *p
        cdef size_t n
        cdef uint64_t total
        check(rf_hive_problems(self.handle(), &p, &n, &total))
        return total

    def _base_facts(self):
        """(primary sequence, secondary sequence, checksum_ok, hive bins data
        size) of the base block as the hive holds it, or None for a hive with
        no mapping (a remote one): what an open's recovery report and `dirty`
        need (info() would check every hbin for its cell counts, and an open
        must not wait for that). The checksum is the open's
        (rf_base_block_checksum; in Python, logs_format.base_block_checksum).
        In C, from the mapping: parsing a copy of the block in Python was a
        fifth of a small hive's open."""
        self.handle()
        if self._map == NULL or self._map_len < 4096:
            return None
        if self._can_fault:     # read outside the C guard: a cut file raises here
            check(regf_probe_end(self._map, self._map_len))
        cdef const uint8_t *p = self._map
        return (le32(p + 4), le32(p + 8), rf_base_block_checksum(p) == le32(p + 0x1FC),
                le32(p + 0x28))

    @property
    def dirty(self):
        """True when the base block's sequence numbers differ: the hive was not
        written cleanly, and its newest changes may sit in transaction logs."""
        facts = self._base_facts()
        if facts is None:
            return self.info().dirty
        return facts[0] != facts[1]

    @property
    def root(self):
        """The root key."""
        cdef rf_key k
        check(rf_hive_root(self.handle(), &k))
        return self.make_key(k, "")

    def open(self, path):
        """Opens a key by path from the root, case-insensitively. The key's
        ``path`` is spelled as the hive stores it.

        Paths may be written as on a running system: ``CurrentControlSet``
        (first component) stands for the ControlSet00N that ``Select\\Current``
        names, and a hive-root prefix such as ``HKLM\\SOFTWARE\\`` or
        ``HKCU\\`` is stripped when it matches this hive's type (see
        regfast.paths). A key the hive really stores under such a name wins.

        Raises FileNotFoundError (winerror 2) when a component is missing, or
        when the prefix names another kind of hive (or the hive's kind is
        unknown): never a guess.
        """
        if _special_path(path):
            path = resolve_path(self, path)
        return self.root.open(path)

    def scan(self, path=None, *, values=True, errors=None, progress=None, include_deleted=False):
        """Reads a whole subtree in one C pass (GIL released) into columns.

        Parameters
        ----------
        path : str, optional
            Start key (default: the root).
        values : bool
            Fill the value columns too.
        errors : {"strict", "skip"}, optional
            "skip" records damaged keys/values in the status columns and goes
            on; "strict" raises RegistryCorruptError at the first one.
            Default, as walk()'s: "skip" for a hive opened with
            errors="tolerant" (it was opened to read past damage), else
            "strict".
        progress : callable(done, total), optional
            Called now and then with keys done and the hive's key count;
            returning False (or raising) cancels the scan.
        include_deleted : bool
            Also add the deleted keys and values carved from free,
            unreferenced and slack space (see deleted()) as rows after the live ones, marked True in the
            ``key_deleted`` / ``value_deleted`` columns (False for live rows).
            A deleted value whose key is unknown has value_key -1; a deleted
            key whose parent is unknown has key_parent -1 and no path. With a
            `path`, only deleted records linked below that key are added.

        Returns
        -------
        ScanTable
            numpy columns for keys and values; names and data stay in the
            mapping until asked for (key_names(), value_data(i), to_pandas()).
        """
        if errors is None:
            errors = "skip" if self._tolerant else "strict"
        return _scan(self, path, values, errors, progress, include_deleted)

    def get_many(self, paths, default=_MISSING):
        """Reads many values, resolving each distinct key once.

        Each item is a ``"key\\value"`` string, whose part after the last
        backslash is the value name (``"Key\\"`` reads the default value),
        or a ``(key_path, value_name)`` pair, which can name a value whose
        name holds a backslash (``("ControlSet001\\Enum", "HTREE\\ROOT\\0")``).
        Key paths are those of Hive.open. Returns the decoded values in
        order; a missing key or value raises FileNotFoundError unless
        `default` is given. A name no value can have (over 16,383
        characters) raises winerror 87 either way.
        """
        if isinstance(paths, (str, bytes)):     # its characters would be read as paths
            raise TypeError(f"get_many takes an iterable of paths, not one {type(paths).__name__}: "
                            f"pass [{paths!r}]")
        groups = {}
        order = []
        for p in paths:
            if isinstance(p, str):
                kpath, _, vname = p.rpartition("\\")
            elif isinstance(p, (tuple, list)) and len(p) == 2 and isinstance(p[0], str) \
                    and isinstance(p[1], str):
                kpath, vname = p
            else:
                raise TypeError(f"get_many items are 'key\\value' strings or (key_path, value_name) "
                                f"pairs of str, got {p!r}")
            # grouped as the registry compares names (str.upper() would make
            # "Straße" and "STRASSE" one key, and answer both from the first)
            # [key path, value names, (batch, decoded values) or None: no such key]
            slot = groups.setdefault(upcase_name(kpath), [kpath, [], None])
            order.append((slot, len(slot[1])))
            slot[1].append(vname)
        for slot in groups.values():
            try:
                key = self.open(slot[0])
            except FileNotFoundError:
                if default is _MISSING:
                    raise
                continue
            batch = _read_values(key, slot[1], None, "strict")
            slot[2] = (batch, batch.values())
        out = []
        for (kpath, names, got), i in order:
            if got is None or got[1][i] is None:        # decoded data is never None
                if default is _MISSING:
                    raise error_from_status(RF_E_NOT_FOUND, f"{kpath}\\{names[i]} not found", kpath + "\\" + names[i])
                out.append(default)
            else:
                out.append(got[1][i])
        return out

    def token_offset(self, token):
        """The hive file offset of the cell a key or value token names
        (:attr:`Key.offset` and :attr:`Value.offset` are tokens).

        Raises winerror 87 for a negative token or one past 64 bits, 6 for
        one that is no token of this hive, 120 where tokens are not cells
        (the live registry)."""
        cdef uint64_t off
        t = operator.index(token)
        if not 0 <= t < 2 ** 64:
            raise error_from_status(RF_E_INVALID_PARAMETER, f"{t} is not a token")
        check(rf_hive_token_offset(self.handle(), t, &off))
        return off

    def _offset_of(self, uint64_t token):
        """token_offset() for messages: None where tokens are not cells."""
        cdef uint64_t off
        if rf_hive_token_offset(self.handle(), token, &off) != RF_OK:
            return None
        return off

    cdef object _slack_view(self, const rf_slack *sl):
        """The bytes rf_key_slack / rf_value_slack reported (a read-only
        view, no copy); empty for none."""
        self.probe()
        if sl.length == 0 or sl.offset == RF_NO_OFFSET:
            return memoryview(b"")
        if sl.offset > self._map_len or sl.length > self._map_len - sl.offset:
            raise error_from_status(RF_E_CORRUPT, f"cell at 0x{sl.cell:x}: its slack runs past the end of "
                                    "the hive (the file changed after it was opened?)", None, sl.cell)
        return view_of(self, self._map + sl.offset, sl.length)

    def cell(self, offset):
        """Any cell by file offset, allocated or free: (payload, allocated),
        the payload a read-only memoryview after the 4-byte size field.

        Raises FileNotFoundError when no cell starts at `offset`, and winerror
        87 for a negative offset or one past 64 bits.
        """
        cdef const uint8_t *p
        cdef size_t n
        cdef int allocated
        off = operator.index(offset)
        if not 0 <= off < 2 ** 64:
            raise error_from_status(RF_E_INVALID_PARAMETER, f"{off} is not a file offset")
        check(rf_hive_cell(self.handle(), off, &p, &n, &allocated))
        self.probe()
        if p < self._map or n > self._map_len or <size_t>(p - self._map) > self._map_len - n:
            # the cell's size field changed after the open: it no longer fits the file
            raise error_from_status(RF_E_CORRUPT, f"cell at 0x{offset:x}: its size ({n + 4} bytes) runs "
                                    "past the end of the hive (the file changed after it was opened?)",
                                    None, offset)
        return view_of(self, p, n), bool(allocated)

    def deleted(self):
        """Keys and values of deleted data, carved from what the hive no longer uses.

        Windows merges a freed cell with its free neighbours, so deleted
        records sit anywhere inside free cells; self-healing and leaks leave
        allocated cells nothing references. Every 8-byte cell position of free
        cells, of allocated cells unreachable from the root, of the slack of
        reachable cells and of the bytes after the last hbin is tried, and a
        record is kept when it passes the checks a live one does plus yarp's
        plausibility rules (see src/hive/regf_deleted.c).

        Returns a list of DeletedKey / DeletedValue in file order, each with
        the offset of the (former) cell holding it, where it was found
        (``source``: "free", "unreferenced", "slack", "remnant") and a
        confidence from 0 to 100: how much of the record still checks out
        (parent key alive, printable name, plausible timestamp, data intact).
        Value data is copied out when it could be located, big data (db
        segments) included: data_state "inline", "free" (every piece in space
        nothing live uses: likely intact) or "reused" (a piece lies in a cell a
        live record uses: likely other data now); "lost" when it cannot be
        found. A value's ``key_offset`` is the DeletedKey whose value list
        still names it (None when no carved key's list does).

        The data copied out is bounded by twice the mapped file: past that,
        a located value's data is not copied (data None, data_state
        "unread"). Only records that name the same data over and over reach
        it (a hostile hive: 32-byte vk records naming one 1 GB big-data list
        of one repeated segment made a 300 KB file cost 1 GB per record);
        the big-data segment entries the records' checks may read together
        are bounded the same way (twice the file's 4-byte words; "unread"
        past it, and never copied);
        a scan's deleted rows (scan(include_deleted=True)) point into the
        mapping and bound the big data they assemble by the file's size.
        """
        cdef size_t n = 0, i, got, copied = 0, budget
        cdef rf_deleted *recs = NULL
        cdef const uint8_t *base
        cdef size_t base_len
        # pinned to the end: the loop reads the mapping (names, data) around
        # calls that release the GIL, and a close() meanwhile must wait
        cdef rf_hive *h = self.pin()
        cdef rf_status st
        cdef char *dst
        out = []
        states = ("empty", "inline", "free", "reused", "lost", "unread")
        try:
            recs = deleted_records(self, &n)
            check(rf_hive_mapping(h, &base, &base_len))
            self.probe()
            budget = 2 * base_len
            for i in range(n):
                _check_in(base, base_len, <const uint8_t *>recs[i].name.ptr, recs[i].name.nbytes,
                          recs[i].offset, "deleted record")
                name = deleted_name(&recs[i].name)
                source = _DELETED_SOURCES.get(recs[i].source, "free")
                if recs[i].kind == RF_DELETED_KEY:
                    parent_path = None
                    if recs[i].parent != RF_NO_OFFSET:     # an allocated nk: parent_token is a key
                        try:
                            parent_path = self.make_key(recs[i].parent_token, None).path
                        except OSError:
                            parent_path = None
                    out.append(DeletedKey(recs[i].offset, name, recs[i].last_write, parent_path,
                                          recs[i].n_values, recs[i].confidence, source))
                    continue
                data = None
                state = states[recs[i].data_state] if recs[i].data_state < 6 else "lost"
                if 0 < recs[i].data_state <= 3 and recs[i].data_len > budget - copied:
                    state = "unread"                # located, not copied: see the docstring
                elif recs[i].data_state == 0:
                    data = b""
                elif recs[i].data_state <= 3 and recs[i].data_flags & RF_VALUE_BIG_DATA:
                    data = PyBytes_FromStringAndSize(NULL, recs[i].data_len)
                    dst = PyBytes_AS_STRING(data)
                    with nogil:
                        st = rf_hive_deleted_read(h, recs[i].offset, dst, recs[i].data_len, &got)
                    if st != RF_OK or got != recs[i].data_len:
                        data = None
                elif recs[i].data_state <= 3 and recs[i].data_offset != RF_NO_OFFSET \
                        and recs[i].data_offset + recs[i].data_len <= base_len:
                    data = (<const char *>base)[recs[i].data_offset:recs[i].data_offset + recs[i].data_len]
                if data is not None:
                    copied += len(data)
                elif state != "unread":
                    state = "lost"
                owner = recs[i].owner if recs[i].owner != RF_NO_OFFSET else None
                out.append(DeletedValue(recs[i].offset, name, recs[i].type, recs[i].data_len, data,
                                        state, recs[i].confidence, source, owner))
        finally:
            free(recs)
            self.unpin()
        return out

    def slack(self, min_length=1):
        """The slack space of every cell reachable from the root: the bytes
        past what its record uses, which may hold older data. One CellSlack
        (cell, kind, offset, data) per cell with at least `min_length` bytes
        of it, in file order; kinds are "nk", "vk", "subkey_list"
        (lf/lh/li/ri), "value_list", "data", "db", "db_list", "db_segment",
        "sk" and "class". ``data`` is a copy of the bytes (most slack is a
        few bytes of padding: pass e.g. ``min_length=24`` for room enough to
        hold a record).
        """
        min_length = _as_int(min_length, "min_length")
        if min_length < 1:
            raise ValueError("min_length must be at least 1")
        cdef rf_hive *h = self.pin()
        cdef size_t n = 0, cap, i
        cdef rf_slack *arr = NULL
        cdef rf_status st
        cdef const uint8_t *base
        cdef size_t base_len
        cdef uint32_t least = min(<size_t>min_length, 0xFFFFFFFF)
        paused = False
        try:
            cap = 1024
            while True:
                arr = <rf_slack *>malloc(cap * sizeof(rf_slack))
                if arr == NULL:
                    raise MemoryError()
                with nogil:
                    st = rf_hive_slack(h, arr, cap, &n)
                if st != RF_E_MORE_DATA:
                    break
                free(arr)
                arr = NULL
                cap = n
            check(st)
            check(rf_hive_mapping(h, &base, &base_len))
            # a big hive has millions of slack cells: the tuples cannot form
            # cycles, so keep the cyclic collector out of the loop
            paused = n > 4096 and _gc.isenabled()
            if paused:
                _gc.disable()
            out = []
            kinds = _CELL_KINDS
            for i in range(n):
                if arr[i].length < least or arr[i].offset + arr[i].length > base_len:
                    continue
                out.append(CellSlack(arr[i].cell, kinds.get(arr[i].kind, str(arr[i].kind)), arr[i].offset,
                                     PyBytes_FromStringAndSize(<const char *>base + arr[i].offset, arr[i].length)))
            return out
        finally:
            if paused:
                _gc.enable()
            free(arr)
            self.unpin()

    def walk(self, path=None, *, errors=None, follow_links=False):
        """Yields every key of the subtree at `path` (default: the whole hive),
        parents before children, in stored order. Each key is visited once even
        if a damaged hive lists it twice.

        `follow_links` (live registries): a registry symbolic link is yielded
        (Key.is_link) but not gone through unless this is True, as os.walk
        treats links to directories; the start key is walked even if it is
        a link. Going through links walks their targets' keys where the link
        is (HKLM\\SYSTEM\\CurrentControlSet repeats ControlSet001; on Windows
        HKCU\\Software\\Classes is a link to HKU\\<SID>_Classes, which is
        not in HKCU otherwise), and a link back up the tree is a loop, which
        goes round until 512 keys below the start (Windows' nesting limit):
        "strict" then raises 1450, "skip" leaves the deeper keys out. A hive
        file follows nothing: there, a link is a key holding its target's
        path.

        `errors`: "strict" raises at the first damaged subkey list or key;
        "skip" leaves damaged entries out and goes on (the table's per-row
        status is what scan(errors="skip") reports). Default: "skip" for a
        hive opened with errors="tolerant" (everything reachable, as the
        open promised), else "strict" (the older lenient=True included: it
        only keeps the good prefix of the hbins).

        The traversal is one C scan; names are decoded a few hundred keys
        ahead of the caller, so each yielded Key already knows its name. Its
        path is built when first asked for, from its parent's (a walk that
        never reads a path builds none), even after the hive is closed. The
        scan reads every key's values too, and while the walk
        runs a yielded Key's values() answers from it, with no C read of its
        own (a damaged value still raises from that key's values(), as
        before). With a hook or the profiler installed when the walk starts
        (its first key), the scan reads keys only and each values() reads
        its key, so they see the reads the caller's code makes; one
        installed during the walk sees only the keys' later calls. A hive of
        more than ~2.4 million values is walked that way too (see _bulk's
        _WALK_VALUES_MAX_BYTES).
        """
        if errors is None:
            errors = "skip" if self._tolerant else "strict"
        if self._blocks:                # remote: no rf_hive_scan; a listing per key with subkeys
            yield from self._walk_keys(path, errors, follow_links)
            return
        # a generator itself, as before: nothing runs (and nothing raises)
        # until the first key is asked for
        yield from _scan(self, path, not rfi_hooks_on(), errors, None, walk=True)._walk_keys()


    def _walk_keys(self, path, errors, follow_links):
        """walk() for a backend without a one-call scan (the live registry):
        depth-first, parents before children, children in the backend's
        order.

        A symbolic link opens as its target (as for Windows' own tools), so
        going through one walks another tree again, and a link to an
        ancestor is a loop. Unless `follow_links`, each listing comes with
        the backend's hints (rf_key_subkeys_hinted): a subkey whose own node
        lists no subkeys is yielded and not listed. A link's node never
        lists any, so the walk never goes through one, and no leaf costs a
        listing (a request each, remotely). A subkey with no hint (the
        parent changed during the listing, a hive mount container) is asked
        Key.is_link first. An agent of protocol 4 cannot tell: its walk goes
        through links. Windows nests keys at
        most 512 levels deep, so a key deeper than that below the start came
        through links: its subkeys are an error ("strict") or left out
        ("skip")."""
        cdef Key start = self.root if not path else self.open(path)
        cdef bytes hints = None
        cdef Py_ssize_t i
        cdef int hint
        cdef bint tells_links = True
        stack = [(start, 0, True)]
        while stack:
            key, depth, to_list = stack.pop()
            yield key
            if to_list is None:         # no hint: asked, so as not to go through a link
                to_list = True
                if tells_links:
                    try:
                        to_list = not (<Key>key).is_link
                    except OSError as e:
                        if getattr(e, "winerror", None) == RF_E_NOT_SUPPORTED:
                            tells_links = False     # an agent of protocol 4: listed, as before
                        elif errors == "strict":
                            raise
                        else:
                            continue
            if not to_list:             # its own node lists no subkeys: a leaf or a link
                continue
            try:
                if follow_links:
                    subs = (<Key>key)._subkey_list()
                else:
                    subs, hints = (<Key>key)._hinted_subkey_list()
                if subs and depth >= _LIVE_MAX_DEPTH:
                    raise error_from_status(
                        RF_E_LIMIT, f"the walk stopped {_LIVE_MAX_DEPTH} keys below its start (at {key.name!r}), "
                        f"deeper than Windows nests keys: symbolic links led it there (one back up the tree?)")
            except OSError:
                if errors == "strict":
                    raise
                continue
            for i in range(len(subs) - 1, -1, -1):
                if follow_links:
                    stack.append((subs[i], depth + 1, True))
                    continue
                hint = hints[i]
                stack.append((subs[i], depth + 1, False if hint & RF_SUBKEY_NO_SUBKEYS else
                              True if hint & RF_SUBKEY_HAS_SUBKEYS else None))


# Windows refuses to create a key more than 512 levels below its hive's root.
_LIVE_MAX_DEPTH = 512


def _reopen_file(path, lenient, errors, copy):
    """Unpickles a Hive: opens `path` again with the options it had."""
    return Hive.from_file(path, lenient=lenient, errors=errors, copy=copy)


def _reopen_buffer(data, lenient, errors):
    """Unpickles a Hive opened from a buffer: opens the copied bytes."""
    return Hive.from_buffer(data, lenient=lenient, errors=errors)


cdef void _path_from_parents(Key key):
    """Builds key._path from its walk parents (Key._up): up to the nearest
    one whose path is known, then down again, each parent's path kept (its
    other children need it too) and its link dropped. Hive.walk links each
    key to its parent instead of building every path up front (a path
    nobody asks for was ~5% of a Key walk). A chain that reaches no known
    path (a parent renamed since: Key.rename forgets its path) builds
    nothing, and Key.path asks the hive."""
    cdef list chain = []
    cdef Key k = key
    while k._path is None and k._up is not None:
        chain.append(k)
        k = k._up
    cdef object base = k._path
    if base is None:
        return
    for k in reversed(chain):
        # the walk set every name: a parent's path + "\\" + the stored name
        k._path = _child_path_of(base, k._name)
        k._up = None
        base = k._path


cdef inline str _child_path_of(str parent, str name):
    """The path of the key `name` under the key at `parent` ("" for the root)."""
    return name if PyUnicode_GET_LENGTH(parent) == 0 else _join_path(parent, name)


cdef str _join_path(str parent, str name):
    """parent + "\\" + name in one PyUnicode_New (not two concatenations)."""
    cdef Py_ssize_t plen = PyUnicode_GET_LENGTH(parent), nlen = PyUnicode_GET_LENGTH(name)
    cdef Py_UCS4 mx = PyUnicode_MAX_CHAR_VALUE(parent)
    if PyUnicode_MAX_CHAR_VALUE(name) > mx:
        mx = PyUnicode_MAX_CHAR_VALUE(name)
    cdef str s = PyUnicode_New(plen + 1 + nlen, mx)
    cdef int kind = PyUnicode_KIND(s)
    cdef char *dst = <char *>PyUnicode_DATA(s)
    if PyUnicode_KIND(parent) == kind and PyUnicode_KIND(name) == kind:
        # one kind (nearly always: ASCII): the characters are plain copies
        memcpy(dst, PyUnicode_DATA(parent), <size_t>(plen * kind))
        PyUnicode_WRITE(kind, dst, plen, 0x5C)
        memcpy(dst + (plen + 1) * kind, PyUnicode_DATA(name), <size_t>(nlen * kind))
        return s
    PyUnicode_CopyCharacters(s, 0, parent, 0, plen)
    PyUnicode_WriteChar(s, plen, 0x5C)
    PyUnicode_CopyCharacters(s, plen + 1, name, 0, nlen)
    return s


def _restore_key(Hive hive not None, rf_key token, path):
    """Unpickles a Key: its token in the re-opened hive, checked to be a key."""
    cdef rf_key_info i
    check(_key_info(hive, token, &i))
    return hive.make_key(token, path)


def _restore_value(Key key not None, rf_value token):
    """Unpickles a Value: its token in the re-opened hive, checked to be a value."""
    return make_value(key, token)



_LIVE_METHODS = None  # regfast.live.keyops, registered at its import


def _set_live_methods(ns):
    """Called once by regfast.live.keyops: the object whose attributes are
    the live registry's Key methods (see Key.set_security)."""
    global _LIVE_METHODS
    _LIVE_METHODS = ns


cdef object _live_method(str name):
    if _LIVE_METHODS is None:
        raise error_from_status(120, "regfast.live is not imported: no live registry methods")
    return getattr(_LIVE_METHODS, name)


# Interned attribute names for the getattro fast paths (see Value.__getattribute__).
cdef object _A_NAME = _sys.intern("name")
cdef object _A_TYPE = _sys.intern("type")
cdef object _A_VALUE = _sys.intern("value")


@cython.final
@cython.no_gc
@cython.auto_pickle(False)          # (C pointers: "cannot pickle", not Cython's field list)
cdef class _WalkValues:
    """The value rows of the scan behind a running Hive.walk(): the Keys it
    yields answer values() from them (Key._walk_value_list), with no C read
    per key (that read, its guard, its GIL release and its batch were ~15%
    of a Key/Value walk). The walk lets go of them when it ends (its
    generator finishes or is closed): a Key kept past that reads its values
    again, as any Key does, so a kept Key never holds a hive's columns."""

    def __init__(self):
        raise TypeError("made by Hive.walk() only")

    def release(self):
        """Drops the rows (the walk ended)."""
        self.owner = None
        self.token = self.name_len = self.type = self.offset = self.length = NULL
        self.status = NULL


# Keys, values and exports only point toward their Hive (no __dict__, no
# user-settable object fields), so they can never be part of a reference
# cycle: no_gc spares the cyclic collector from tracking ~20k objects per MB
# of hive in a walk (it was ~20% of Key.values() under callgrind).
@cython.no_gc
@cython.freelist(64)
cdef class Key:
    """A key of an open hive. Cheap: a hive reference and a 64-bit token.

    Pickles (and copies) as its hive (re-opened, see Hive.__reduce__) and its
    token; a Key made by ``Key.__new__`` raises winerror 6 from every method."""

    def __init__(self):
        raise TypeError("keys come from Hive.open(), Hive.root or Key.subkeys()")

    cdef inline Hive _hv(self):
        """The hive; raises for a Key that was never initialised (Key.__new__)
        or that was closed (winerror 6 both)."""
        if self.hive is None:
            raise _not_initialised("Key")
        if self._closed:
            raise error_from_status(RF_E_INVALID_HANDLE, "the key is closed", self._known_path())
        return self.hive

    cdef inline rf_hive *_h(self) except NULL:
        return self._hv().handle()

    cdef object _known_path(self):
        """The path if it is known without reading the hive: given when the
        Key was made, or built from the walk's parents (_up), which needs no
        open hive. None when only the hive's parent links can tell."""
        cdef Key up = self._up
        if self._path is None and up is not None:
            if up._path is not None:    # the common case: the parent's path was asked first
                self._path = _child_path_of(up._path, self._name)
                self._up = None
            else:
                _path_from_parents(self)
        return self._path

    def __reduce__(self):
        return _restore_key, (self._hv(), self._k, self._known_path())

    def __eq__(self, other):
        if not isinstance(other, Key):
            return NotImplemented
        return self.hive is (<Key>other).hive and self._k == (<Key>other)._k

    def __hash__(self):
        if self.hive is None:
            raise _not_initialised("Key")
        return hash((id(self.hive), self._k))

    def __repr__(self):
        if self.hive is None:
            return "<regfast.Key (not initialised)>"
        path = self._known_path()
        if self._closed:
            return f"<regfast.Key {path!r} (closed)>"
        if path is None:
            try:
                path = self.path
            except OSError as e:        # a repr never raises: the hive closed, or its links damaged
                why = "hive closed" if self.hive.closed else f"path unreadable, winerror {e.winerror}"
                return f"<regfast.Key token 0x{self._k:x} ({why})>"
        return f"<regfast.Key {path!r}>"

    @property
    def offset(self):
        """The key's token (the nk cell offset for hives)."""
        self._hv()
        return self._k

    @property
    def name(self):
        """The key's name as stored (the root's stored name for the root)."""
        cdef rf_name n
        if self._name is None:
            check(_key_name(self._hv(), self._k, &n))
            self.hive.probe()
            self._name = name_str(&n)
        return self._name

    @property
    def path(self):
        """Path from the hive root, '\\'-separated ('' for the root)."""
        if self._path is None and self._known_path() is None:
            self._path = self._path_from_hive()
        return self._path

    cdef str _path_from_hive(self):
        """The path from the hive's parent links (the names as stored)."""
        cdef rf_key k
        parts = []
        seen = set()
        key = self
        while True:
            st = _key_parent(self._hv(), (<Key>key)._k, &k)
            if st == RF_E_NOT_FOUND:
                break
            check(st)
            # a damaged hive (or a deleted record's stale parent field) can
            # make the parent chain loop: a path is at most 512 keys deep
            if k in seen or len(parts) >= 512:
                at = self._hv()._offset_of(self._k)
                where = f"at 0x{at:x}" if at is not None else f"of token 0x{self._k:x}"
                raise error_from_status(RF_E_CORRUPT, f"the parent chain of the key {where} "
                                        "loops or is deeper than 512 keys", None, at)
            seen.add(k)
            parts.append(key.name)
            key = self.hive.make_key(k, None)
        return "\\".join(reversed(parts))

    @property
    def parent(self):
        """The parent key, or None for the root."""
        cdef rf_key k
        st = _key_parent(self._hv(), self._k, &k)
        if st == RF_E_NOT_FOUND:
            return None
        check(st)
        path = self._known_path()
        if path is not None:
            path = path.rpartition("\\")[0]
        return self.hive.make_key(k, path)

    def info(self):
        """KeyInfo: last write, counts and max lengths (KEY_FULL_INFORMATION)."""
        cdef rf_key_info i
        check(_key_info(self._hv(), self._k, &i))
        return KeyInfo(i.last_write, i.n_subkeys, i.n_values, i.max_name_len, i.max_class_len,
                       i.max_value_name_len, i.max_value_data_len, self.class_name, i.flags)

    @property
    def last_write(self):
        """Last write time as an aware UTC datetime, or None when the stored
        FILETIME is past 9999-12-31, where no datetime goes (damaged or crafted
        hives): last_write_raw keeps it."""
        cdef rf_key_info i
        if self._has_lw:            # from the walk's scan: no C call
            self._hv().handle()     # (a closed hive still raises)
            return filetime_dt(self._lw)
        check(_key_info(self._hv(), self._k, &i))
        return filetime_dt(i.last_write)

    @property
    def last_write_raw(self):
        """Last write time as stored: a FILETIME (100 ns ticks since 1601 UTC)."""
        cdef rf_key_info i
        if self._has_lw:
            self._hv().handle()
            return self._lw
        check(_key_info(self._hv(), self._k, &i))
        return i.last_write

    @property
    def is_link(self):
        """True when the key is a registry symbolic link: made with
        REG_OPTION_CREATE_LINK, its target in the REG_LINK value
        "SymbolicLinkValue". A hive file says so in the key's flags
        (KEY_SYM_LINK); nothing offline follows a link. Live, it is the key
        as its parent lists it: opening a link, and every call on this Key,
        reaches the target (as Windows' own tools do), and walk() lists a
        link without going through it. Raises OSError 120 where the backend
        cannot tell."""
        cdef int out = 0
        check(<rf_status>self._is_link(&out))
        return out != 0

    cdef int _is_link(self, int *out) except -1:
        self._h()
        cdef rf_hive *h = self.hive.pin()
        cdef rf_status st
        try:
            with nogil:
                st = rf_key_is_link(h, self._k, out)
        finally:
            self.hive.unpin()
        return <int>st   # an rf_status: 0 or a positive code

    @property
    def class_name(self):
        """The key's class name, or None when it has none."""
        cdef rf_name n
        check(_key_class(self._hv(), self._k, &n))
        if n.nbytes == 0:
            return None
        self.hive.probe()
        return name_str(&n)

    def open(self, path):
        """Opens a descendant by relative path, case-insensitively."""
        cdef rf_key k
        cdef bytes b = _utf8_name(path, "a key path")
        cdef const char *cb = b
        cdef size_t blen = len(b)
        self._h()
        cdef rf_hive *h = self.hive.pin()
        cdef rf_status st
        try:
            with nogil:
                st = rf_key_open(h, self._k, cb, blen, &k)
        finally:
            self.hive.unpin()
        try:
            check(st)
        except FileNotFoundError as e:
            e.filename = path
            raise
        # No path from the caller's spelling: the key's path is built from
        # the names as stored when asked for (Key.path), like Key.name.
        return self.hive.make_key(k, self._known_path() if k == self._k else None)

    def subkey(self, name):
        """The direct subkey called `name` (no path splitting)."""
        if not isinstance(name, str):
            raise TypeError(f"a subkey name is a str, not {type(name).__name__}")
        if "\\" in name:
            raise ValueError(f"{name!r} contains a backslash; use Key.open() for paths")
        return self.open(name)

    cdef list _keys_from(self, rf_key *buf, size_t n):
        cdef list out = []
        cdef size_t i
        for i in range(n):
            out.append(self.hive.make_key(buf[i], None))
        return out

    cdef list _subkey_list(self):
        cdef rf_hive *h = self._h()
        cdef size_t n = 0, cap = 0
        cdef rf_key *buf = NULL
        cdef rf_status st = _key_count(self.hive, self._k, False, &n)
        if st == RF_OK:
            return []
        if st != RF_E_MORE_DATA:
            check(st)
        cap = n
        buf = <rf_key *>malloc(cap * sizeof(rf_key))
        if buf == NULL:
            raise MemoryError()
        try:
            self.hive.pin()
            try:
                with nogil:
                    st = rf_key_subkeys(h, self._k, buf, cap, &n)
            finally:
                self.hive.unpin()
            check(st)
            keys = self._keys_from(buf, n)
        finally:
            free(buf)
        self._name_children(keys)
        return keys

    cdef int _name_children(self, list keys) except -1:
        """Each listed subkey's path from this key's, when that is known."""
        prefix = self._known_path()
        if prefix is not None:
            for key in keys:
                (<Key>key)._path = key.name if not prefix else prefix + "\\" + key.name
        return 0

    cdef tuple _hinted_subkey_list(self):
        """(subkeys, a hint byte each) for the live walk (rf_key_subkeys_hinted);
        a listing that grew between its count and its array is asked again."""
        cdef rf_hive *h = self._h()
        cdef size_t n = 0, cap = 0
        cdef rf_key *buf = NULL
        cdef uint8_t *hb = NULL
        cdef rf_status st
        cdef int attempt
        self.hive.pin()
        try:
            for attempt in range(4):
                with nogil:
                    st = rf_key_subkeys_hinted(h, self._k, buf, hb, cap, &n)
                if st != RF_E_MORE_DATA:
                    break
                free(buf)
                free(hb)
                cap = n + 16
                buf = <rf_key *>malloc(cap * sizeof(rf_key))
                hb = <uint8_t *>malloc(cap)
                if buf == NULL or hb == NULL:
                    raise MemoryError()
            check(st)
            keys = self._keys_from(buf, n) if n else []
            hints = PyBytes_FromStringAndSize(<const char *>hb, n) if n else b""
        finally:
            self.hive.unpin()
            free(buf)
            free(hb)
        self._name_children(keys)
        return keys, hints

    def subkeys(self):
        """Iterator over the direct subkeys, in stored order."""
        return iter(self._subkey_list())

    def subkey_names(self):
        """List of the direct subkeys' names, in stored order."""
        return [k.name for k in self._subkey_list()]

    cdef list _value_list(self):
        """Value objects for every value: from the running walk's scan when
        this Key came from one, else read now (_read_value_list)."""
        cdef _WalkValues wv = self._wv
        if wv is not None and wv.owner is not None:
            return self._walk_value_list(wv)
        return self._read_value_list()

    cdef list _walk_value_list(self, _WalkValues wv):
        """_value_list from the walk's scan (see Hive.walk), the same Value
        objects _read_value_list makes. The scan recorded a damaged value as
        a row status (RF_SCAN_SKIP_VALUE_ERRORS): a key with such a row is
        read again by _read_value_list, which raises what it always raised.
        The rows are the walk's own (no caller can change them), each name
        bounded by its cell when the scan read it."""
        cdef Hive hive = self._hv()
        # The table and its columns, held for this call: the walk may end
        # while it runs (an allocation below can run the collector, which can
        # finalize a walk generator caught in a cycle: release() then drops
        # the walk's hold), and the table's export keeps the mapping mapped
        # even if the hive is closed meanwhile (as Hive.pin does).
        cdef object owner = wv.owner
        cdef const uint32_t *token = wv.token
        cdef const uint32_t *name_len = wv.name_len
        cdef const uint32_t *vtype = wv.type
        cdef const uint32_t *offset = wv.offset
        cdef const uint32_t *length = wv.length
        cdef const int32_t *status = wv.status
        cdef Py_ssize_t n = self._vn, first = self._vrow, i, r
        cdef const uint8_t *base = hive._map
        cdef rf_name nm
        cdef uint32_t raw
        cdef Value val
        hive.handle()                   # a closed hive raises, as every call on it does
        if n == 0:
            return []
        for r in range(first, first + n):
            if status[r] != RF_OK and status[r] != RF_E_MORE_DATA:
                return self._read_value_list()
        if hive._can_fault:             # Hive.probe, inline: the names are read outside C
            check(regf_probe_end(hive._map, hive._map_len))
        cdef list out = PyList_New(n)   # exact size (NULL slots are safe to drop)
        for i in range(n):
            r = first + i
            raw = name_len[r]
            nm.ptr = base + RF_SCAN_VALUE_NAME_AT(token[r])
            nm.nbytes = raw & ~(<uint32_t>RF_NAME_UTF16_BIT)
            nm.utf16 = (raw & RF_NAME_UTF16_BIT) != 0
            val = row_value(self, hive, &nm, vtype[r], length[r],
                            base + offset[r] if status[r] == RF_OK else NULL, token[r])
            Py_INCREF(val)
            PyList_SET_ITEM(out, i, val)
        return out

    cdef list _read_value_list(self):
        """Value objects for every value, from rf_read_values: names, types
        and data locations arrive together, so no per-value C call.

        The GIL is released around a read of more than one value, as around
        every C loop over values. Releasing and retaking it costs more than
        reading a key of one value, though (~15% of a Key walk of an
        NTUSER.DAT, where three keys in four have none or one), so a key of
        a hive file is read with the GIL held and room for one row when the
        previous read of this hive found at most one value: a key with more
        answers RF_E_MORE_DATA with its count, having touched no value, and
        is read again with the GIL released (the profiler's log merges the
        two: a buffer negotiation). After a key of more values, the next is
        read at once with the GIL released (siblings tend to look alike:
        in Amcache.hve or a UsrClass.dat nearly every key has several).
        Rows go to the stack's columns (up to _VALUES_ON_STACK), or to one
        malloc'd block of the count a first read returned. A live hive's
        read waits on its backend: its count comes first, with the GIL
        released (a read too small for its rows leaves them unfilled)."""
        cdef rf_hive *h = self._h()
        cdef Hive hive = self.hive
        cdef size_t want = 0, n, i
        cdef rf_status st = RF_OK
        cdef const uint8_t *base = hive._map
        cdef rf_batch b
        # the stack's columns, for most keys
        cdef rf_name s_name[_VALUES_ON_STACK]
        cdef uint64_t s_offset[_VALUES_ON_STACK]
        cdef rf_value s_token[_VALUES_ON_STACK]
        cdef uint32_t s_type[_VALUES_ON_STACK]
        cdef int32_t s_status[_VALUES_ON_STACK]
        cdef uint32_t s_length[_VALUES_ON_STACK]
        cdef char *mem = NULL
        b.name, b.offset, b.token = s_name, s_offset, s_token
        b.type, b.status, b.length = s_type, s_status, s_length
        b.struct_size = sizeof(rf_batch)
        b.arena = NULL            # big data stays out: those rows say 234
        b.arena_cap = 0
        b.cap = 0
        b.n = 0
        if base == NULL:
            st = _key_count(hive, self._k, True, &want)
            if st == RF_OK:
                return []
            if st != RF_E_MORE_DATA:
                check(st)
        elif hive._few_values:
            b.cap = 1             # touches at most one value: the GIL stays
            st = rf_read_values(h, self._k, NULL, 0, NULL, 0, 0, &b)
            if st == RF_E_MORE_DATA and b.n > 1:
                want = b.n
        else:
            want = _VALUES_ON_STACK
        # pinned until the rows are decoded: the names below are read from
        # the mapping, and a close() during the call (another thread, or a
        # hook's callback) must not unmap it before then
        hive.pin()
        try:
            while want:
                if want > _VALUES_ON_STACK:
                    mem = _batch_block(&b, want)
                    b.cap = want
                else:
                    b.cap = _VALUES_ON_STACK
                b.n = 0
                with nogil:
                    st = rf_read_values(h, self._k, NULL, 0, NULL, 0, 0, &b)
                # more values than the stack holds: once more, into a block
                want = b.n if st == RF_E_MORE_DATA and b.n > b.cap and mem == NULL else 0
        except BaseException:
            free(mem)
            hive.unpin()
            raise
        if base != NULL:
            hive._few_values = b.n <= 1
        cdef list out
        cdef Value val
        cdef rf_value_info vinfo
        cdef Py_ssize_t kept = 0
        try:
            if st == RF_E_CORRUPT and hive._tolerant and base != NULL:
                return []               # the list itself is unusable (in hive.problems): nothing is left
            if st != RF_E_MORE_DATA or b.n > b.cap:
                check(st)
            n = b.n
            if n == 0:
                return []
            if hive._can_fault:     # Hive.probe, inline: the names are read outside C
                check(regf_probe_end(hive._map, hive._map_len))
            out = PyList_New(<Py_ssize_t>n)      # exact size: no growth (NULL slots are safe to drop)
            for i in range(n):
                if b.status[i] != RF_OK and b.status[i] != RF_E_MORE_DATA:
                    if hive._tolerant and base != NULL:
                        # Read past damage, as the open promised (README,
                        # "Forensics"): its check listed this row in
                        # hive.problems. A row without a name is a list entry
                        # whose vk is unusable: stepped over, as a damaged
                        # subkey entry is. A named row is a value whose data
                        # alone is lost: handed out, its name, type and size
                        # as the vk says; reading its data raises the damage
                        # with its offset (hivex names such a value too).
                        if b.name[i].ptr == NULL:
                            continue
                        val = row_value(self, hive, &b.name[i], b.type[i], b.length[i], NULL, b.token[i])
                        val._flags = 0      # not big data: .data reads it again (no buffer of its size first)
                        Py_INCREF(val)
                        PyList_SET_ITEM(out, kept, val)
                        kept += 1
                        continue
                    # The thread's last error may describe a later row: re-read
                    # this one alone so the exception names its own offset.
                    if b.token[i]:
                        check(_value_info(hive, b.token[i], &vinfo))
                    elif b.status[i] == RF_E_CORRUPT:   # a zeroed list entry: cell 0 is the hbin header
                        raise error_from_status(RF_E_CORRUPT, "vk at 0x1000: a value list entry of 0 "
                                                "is not the start of a cell", None, 0x1000)
                    check(b.status[i])
                val = row_value(self, hive, &b.name[i], b.type[i], b.length[i],
                                base + b.offset[i] if b.status[i] == RF_OK and base != NULL else NULL,
                                b.token[i])
                Py_INCREF(val)
                PyList_SET_ITEM(out, kept, val)
                kept += 1
            if kept < <Py_ssize_t>n:
                del out[kept:]          # the stepped-over rows' slots (NULL)
        finally:
            free(mem)
            hive.unpin()
        return out

    def values(self):
        """Iterator over the key's values (Value objects), in stored order.

        A damaged value raises RegistryCorruptError (with its offset), unless
        the hive was opened with errors="tolerant": then every value comes
        back but a list entry whose vk is unusable (stepped over), and a value
        whose data alone is lost keeps its name, type and size while reading
        its data (``value``, ``data``, ``raw()``) raises. The open lists each
        in ``Hive.problems`` (kind "values")."""
        return iter(self._value_list())

    def value(self, name=""):
        """The Value called `name` ("" is the default value). Case-insensitive.

        Raises FileNotFoundError (winerror 2) if there is none. In a hive
        opened with errors="tolerant", answers as values() does: a value
        whose data alone is lost comes back (reading its data raises), and
        a damaged list entry before it does not hide it; the damage still
        raises when the name is not among the values that can be read.
        """
        cdef rf_value v
        cdef bytes b = _utf8_name(name, "a value name")
        cdef Hive hive = self._hv()
        try:
            check(_value_open(hive, self._k, b, len(b), &v))
            return make_value(self, v)
        except FileNotFoundError as e:
            e.filename = name
            raise
        except RegistryCorruptError:
            found = self._tolerant_value(hive, name)
            if found is None:
                raise
            return found

    cdef object _tolerant_value(self, Hive hive, str name):
        """For a lookup that met damage: in a tolerant hive, the first of
        values() (which steps over unusable entries) called `name`, compared
        as the registry compares names (each UTF-16 unit upcased); None
        otherwise, or when no readable value has that name."""
        if not hive._tolerant:
            return None
        cdef str folded = upcase_name(name)
        for val in self._value_list():
            if upcase_name((<Value>val)._name) == folded:
                return val
        return None

    def __getitem__(self, name):
        """The decoded data of value `name`: str, int, list[str] or bytes."""
        return self.value(name).value

    def get(self, name, default=None):
        """Like key[name], but returns `default` when the value is missing."""
        try:
            return self.value(name).value
        except FileNotFoundError:
            return default

    def __contains__(self, name):
        cdef rf_value v
        cdef bytes b = _utf8_name(name, "a value name")
        cdef Hive hive = self._hv()
        st = _value_open(hive, self._k, b, len(b), &v)
        if st == RF_E_NOT_FOUND:
            return False
        try:
            check(st)                   # (the error made before values() reads set another)
        except RegistryCorruptError:
            if self._tolerant_value(hive, name) is None:
                raise                   # else: as value(name) answers in a tolerant hive
        return True

    def read_values(self, names=None, *, types=None, errors="strict"):
        """Reads many values of this key in one C call (GIL released).

        Parameters
        ----------
        names : iterable of str, optional
            Value names to read (case-insensitive); None reads every value.
        types : iterable of int, optional
            Accepted REG_* types; rows of other types get status 13.
        errors : {"strict", "skip"}
            "strict" raises on a damaged value; "skip" leaves its status in
            the column. Missing values are never errors: their status is 2.

        Returns
        -------
        ValueBatch
            numpy columns type/status/offset/length over the hive mapping
            (zero-copy), with as_str(), as_int(), values(), to_dict().
        """
        self._h()
        return _read_values(self, names, types, errors)

    def value_raw(self, name=""):
        """(type, data) where data is a read-only memoryview into the hive
        mapping, with no copy (big-data values are assembled into a new buffer)."""
        v = self.value(name)
        return v.type, v.data

    def slack(self):
        """Bytes of the key's nk cell past its name: slack space, which may
        hold remnants of earlier data (a read-only memoryview, no copy).
        Winerror 120 on a live registry, which has no cells."""
        cdef Hive hive = self._hv()
        cdef rf_slack sl[1]
        check(rf_key_slack(hive.handle(), self._k, sl))
        return hive._slack_view(&sl[0])

    def security_descriptor(self):
        """The key's self-relative security descriptor (memoryview, no copy)."""
        cdef const uint8_t *sd
        cdef size_t n
        check(_key_security(self._hv(), self._k, &sd, &n))
        self.hive.probe()
        return view_of(self.hive, sd, n)

    def security(self):
        """The key's security descriptor as an SDDL string ("O:BAG:SYD:...")."""
        cdef const uint8_t *sd
        cdef size_t n
        check(_key_security(self._hv(), self._k, &sd, &n))
        self.hive.probe()       # rf_sd_to_sddl reads the mapping outside any guard
        return sd_to_sddl_ptr(sd, n)

    # ---- lifetime: a Key is a token, so closing it only ends its use here
    # (the live registry's handles are the backend's business: its handle
    # cache closes them, and Hive.close() closes them all)

    def close(self):
        """Ends this Key object: every later call on it raises OSError
        winerror 6 ("the key is closed"). Idempotent; other Key objects of the
        same key are not affected. Also what ``with key:`` does on exit."""
        if self.hive is None:
            raise _not_initialised("Key")
        if self._closed:
            return
        self._closed = True
        # the hook point that pairs this key's open with its close (a
        # profiler's open-each patterns); no backend is called
        if self.hive._h != NULL and not self.hive._closing:
            rf_key_close(self.hive._h, self._k)

    @property
    def closed(self):
        """True once close() was called."""
        if self.hive is None:
            raise _not_initialised("Key")
        return self._closed

    def __enter__(self):
        self._hv()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- writes, security, snapshots: rf_* calls every backend answers. A
    # hive file is read-only: its writes raise OSError winerror 120
    # (ERROR_CALL_NOT_IMPLEMENTED, "... not supported by the regf backend");
    # the live registry (remote through regfast-agent, nt in-process) does
    # them. The GIL is released around each call (a remote one waits on the agent).

    def set_value(self, name, data, type=None):
        """Creates or replaces value `name` ("" = the default value).

        Without `type`: str -> REG_SZ, int -> REG_DWORD (REG_QWORD past 32
        bits), list[str] -> REG_MULTI_SZ, bytes -> REG_BINARY. With a type,
        data is encoded for it (bytes-like data is stored as given, for any
        type). Raises TypeError / ValueError for data that does not encode,
        before anything is sent."""
        self._hv()                      # an uninitialised or closed key: 6 before anything
        cdef bytes bn = _utf16(name, "a value name")
        cdef const uint16_t *pn = <const uint16_t *>PyBytes_AS_STRING(bn)
        vtype, raw = encode_value(data, type)
        cdef bytes braw = raw
        cdef const char *praw = PyBytes_AS_STRING(braw)
        cdef uint32_t t = vtype
        cdef size_t nch = len(bn) // 2, nraw = len(braw)
        cdef rf_hive *h = self._hv().pin()
        cdef rf_status st
        try:
            with nogil:
                st = rf_value_set(h, self._k, pn, nch, t, praw, nraw)
        finally:
            self.hive.unpin()
        _check_at(st, name)

    def delete_value(self, name):
        """Deletes value `name`; FileNotFoundError (winerror 2) when there is none."""
        self._hv()                      # an uninitialised or closed key: 6 before anything
        cdef bytes bn = _utf16(name, "a value name")
        cdef const uint16_t *pn = <const uint16_t *>PyBytes_AS_STRING(bn)
        cdef size_t nch = len(bn) // 2
        cdef rf_hive *h = self._hv().pin()
        cdef rf_status st
        try:
            with nogil:
                st = rf_value_delete(h, self._k, pn, nch)
        finally:
            self.hive.unpin()
        _check_at(st, name)

    def create_key(self, path, **options):
        """Creates the key at relative `path` and any missing key above it
        (RegCreateKeyExW), or opens it when it exists, and returns it.
        ``volatile=True``: the keys it creates live in memory only (gone at
        reboot). (A keyword-only option: ``volatile`` is a C keyword.)"""
        self._hv()                      # an uninitialised or closed key: 6 before anything
        cdef bytes bp = _utf16(path, "a key path")
        cdef const uint16_t *pp = <const uint16_t *>PyBytes_AS_STRING(bp)
        cdef size_t nch = len(bp) // 2
        unknown = set(options) - {"volatile"}
        if unknown:
            raise TypeError(f"create_key() got unexpected keyword arguments {sorted(unknown)}")
        cdef uint32_t flags = RF_CREATE_VOLATILE if options.get("volatile") else 0, disp = 0
        cdef rf_key k = 0
        cdef rf_hive *h = self._hv().pin()
        cdef rf_status st
        try:
            with nogil:
                st = rf_key_create(h, self._k, pp, nch, flags, &k, &disp)
        finally:
            self.hive.unpin()
        _check_at(st, path)
        return self.hive.make_key(k, None)

    def delete_key(self, path, *, tree=False):
        """Deletes the key at relative `path` with its values; with `tree`,
        its subkeys first. A key with subkeys and no `tree` raises
        PermissionError (winerror 5), as Windows does. A symbolic link (the
        key itself or one inside the tree) is deleted as the link: its
        target is never followed out of the tree."""
        self._hv()                      # an uninitialised or closed key: 6 before anything
        cdef bytes bp = _utf16(path, "a key path")
        cdef const uint16_t *pp = <const uint16_t *>PyBytes_AS_STRING(bp)
        cdef size_t nch = len(bp) // 2
        cdef uint32_t flags = RF_DELETE_TREE if tree else 0
        cdef rf_hive *h = self._hv().pin()
        cdef rf_status st
        try:
            with nogil:
                st = rf_key_delete(h, self._k, pp, nch, flags)
        finally:
            self.hive.unpin()
        _check_at(st, path)

    def rename(self, new_name):
        """Renames this key in place (NtRenameKey): its values and subkeys
        stay, and this Key names the renamed key afterwards. winerror 183
        when a sibling has that name; 87 for an empty name, a backslash, more
        than 255 characters or the root (checked before any call)."""
        self._hv()                      # an uninitialised or closed key: 6 before anything
        cdef bytes bn = _utf16(new_name, "a key name")
        cdef const uint16_t *pn = <const uint16_t *>PyBytes_AS_STRING(bn)
        cdef size_t nch = len(bn) // 2
        cdef rf_key parent = 0, k = 0
        cdef rf_hive *h = self._hv().pin()
        cdef rf_status st, pst
        try:
            with nogil:
                pst = rf_key_parent(h, self._k, &parent)
                st = rf_key_rename(h, self._k, pn, nch)
                if st == RF_OK and pst == RF_OK:
                    st = rf_key_child(h, parent, pn, nch, &k)
        finally:
            self.hive.unpin()
        _check_at(st, new_name)
        if k:
            self._k = k
            self._name = None
            self._path = None
            self._up = None

    def set_security_descriptor(self, sd, si=0):
        """Writes parts of the key's security descriptor (RegSetKeySecurity)
        from self-relative SECURITY_DESCRIPTOR bytes; `si` the RF_SI_* parts
        (1 owner, 2 group, 4 DACL, 8 SACL), 0 = those present in `sd`. The
        descriptor is checked before any call (winerror 87 when malformed)."""
        self._hv()                      # an uninitialised or closed key: 6 before anything
        cdef bytes b = bytes(memoryview(sd).cast("B"))
        cdef const char *psd = PyBytes_AS_STRING(b)
        cdef uint32_t csi = si
        cdef size_t n = len(b)
        cdef rf_hive *h = self._hv().pin()
        cdef rf_status st
        try:
            with nogil:
                st = rf_key_set_security(h, self._k, csi, psd, n)
        finally:
            self.hive.unpin()
        _check_at(st, self._known_path())

    def snapshot_bytes(self, *, subtree=True, keep_data=False, max_keys=100000):
        """The key (and with `subtree` every key below it) serialized by the
        core's one snapshot writer (rf_key_snapshot, regfast.h says the
        format): the same bytes for a hive file, the live registry and an app
        hive, so snapshots compare across backends. `keep_data` keeps each
        value's data, not only its hash; past `max_keys` keys the snapshot is
        marked truncated. regfast.live.snapshot.parse_snapshot reads it."""
        self._hv()                      # an uninitialised or closed key: 6 before anything
        cdef uint32_t flags = (RF_SNAP_SUBTREE if subtree else 0) | (RF_SNAP_KEEP_DATA if keep_data else 0)
        cdef uint32_t cap = max_keys
        cdef rf_bytes out
        out.data = NULL
        out.len = out.cap = 0
        cdef rf_hive *h = self._hv().pin()
        cdef rf_status st
        try:
            with nogil:
                st = rf_key_snapshot(h, self._k, flags, cap, &out)
            if st == RF_OK:
                return PyBytes_FromStringAndSize(<const char *>out.data, out.len)
            check(st)
        finally:
            rf_bytes_free(&out)
            self.hive.unpin()

    def _remote_request(self, int op, payload=b""):
        """One agent-protocol request on this key's agent handle (the
        handle, then `payload`): see Hive._remote_request."""
        return self._hv()._request(self._k, op, payload)

    # --- the live registry's administration (regfast.live.keyops) -----------
    # Requests with no rf_* call (SDDL, ACEs, ownership, MUI strings), the
    # watch and the hive-file writer live in regfast.live, above the binding:
    # that package registers them here at import (_set_live_methods), so the
    # binding imports nothing of it. A key of a hive file has no serving
    # process to ask: winerror 120 from regfast.live.admin.

    @property
    def full_path(self):
        """The path with its root's name ("HKEY_CURRENT_USER\\Software\\...")
        for a key of the live registry; for a hive file's key, its path."""
        self._hv()                      # an uninitialised or closed key: 6 first
        return _live_method("full_path")(self)

    def snapshot(self, *, subtree=True, keep_data=False, max_keys=100000):
        """A :class:`regfast.Snapshot` of this key (and its subtree): the
        bytes of snapshot_bytes(), parsed."""
        self._hv()                      # an uninitialised or closed key: 6 first
        return _live_method("snapshot")(self, subtree=subtree, keep_data=keep_data, max_keys=max_keys)

    def set_security(self, sddl):
        """Sets the parts of the descriptor an SDDL string has (O:, G:, D:,
        S:) with RegSetKeySecurity. Invalid SDDL raises (winerror 1336, or 87
        for an empty string) before anything is written."""
        self._hv()                      # an uninitialised or closed key: 6 first
        _live_method("set_security")(self, sddl)

    def grant(self, trustee, rights, *, inherit=True, mode="grant"):
        """Adds an ACE to the DACL (SetEntriesInAclW + SetSecurityInfo):
        trustee "S-1-..." or an account name; rights an access mask or names
        (regfast.live.admin.RIGHTS); mode "grant", "set", "deny" or "revoke".
        Unknown account: 1332."""
        self._hv()                      # an uninitialised or closed key: 6 first
        _live_method("grant")(self, trustee, rights, inherit, mode)

    def take_ownership(self):
        """Makes the serving process's user the key's owner, with
        SeTakeOwnershipPrivilege enabled for the call when the token holds it."""
        self._hv()                      # an uninitialised or closed key: 6 first
        _live_method("take_ownership")(self)

    def mui_string(self, name):
        """A value's display string as RegLoadMUIStringW resolves it; a string
        not starting with "@" is returned as stored. Missing value: 2."""
        self._hv()                      # an uninitialised or closed key: 6 first
        return _live_method("mui_string")(self, name)

    def watch(self, **kwargs):
        """regfast.watch([self], **kwargs)."""
        self._hv()                      # an uninitialised or closed key: 6 first
        return _live_method("watch")([self], **kwargs)

    def save(self, path, method="regfast", **kwargs):
        """regfast.save_key(self, path, method)."""
        self._hv()                      # an uninitialised or closed key: 6 first
        return _live_method("save_key")(self, path, method, **kwargs)



cdef str sd_to_sddl_ptr(const uint8_t *sd, size_t n):
    cdef size_t need = 0
    cdef char small[1024]
    cdef bytes big
    st = rf_sd_to_sddl(sd, n, small, sizeof(small), &need)
    if st == RF_OK:
        return small[:need].decode("ascii")
    if st != RF_E_MORE_DATA:
        check(st)
    big = PyBytes_FromStringAndSize(NULL, need + 1)
    check(rf_sd_to_sddl(sd, n, PyBytes_AS_STRING(big), need + 1, &need))
    return big[:need].decode("ascii")


def sd_to_sddl(data):
    """Converts self-relative SECURITY_DESCRIPTOR bytes to an SDDL string."""
    cdef const uint8_t[::1] mv = memoryview(data).cast("B")
    if mv.shape[0] == 0:
        return sd_to_sddl_ptr(<const uint8_t *>"", 0)
    return sd_to_sddl_ptr(&mv[0], mv.shape[0])


cdef inline Value row_value(Key key, Hive hive, const rf_name *nm, uint32_t vtype, uint32_t length,
                            const uint8_t *ptr, rf_value token):
    """The Value of a row read in bulk (Key._read_value_list, or a walk's scan
    rows: Key._walk_value_list): its data at `ptr` in the mapping, or NULL
    when it is not contiguous there (big data, a live registry's), which
    Value.data then reads (RF_VALUE_BIG_DATA)."""
    cdef Value val = Value.__new__(Value)
    val.hive = hive
    val.key = key
    val._name = name_str(nm)
    val._type = vtype
    val._len = length
    val._ptr = ptr
    val._flags = 0 if ptr != NULL else RF_VALUE_BIG_DATA
    val._v = token
    return val


cdef Value make_value(Key key, rf_value v):
    cdef Value val = Value.__new__(Value)
    cdef rf_value_info i
    check(_value_info(key._hv(), v, &i))
    key.hive.probe()
    val.hive = key.hive
    val.key = key
    val._v = v
    val._type = i.type
    val._len = i.data_len
    val._flags = i.flags
    val._name = name_str(&i.name)
    val._ptr = NULL
    return val


@cython.no_gc
@cython.freelist(64)
cdef class Value:
    """A value of a key: name, type, raw data (zero-copy) and decoded data.

    Pickles (and copies) as its key and token (see Key); a Value made by
    ``Value.__new__`` raises winerror 6 from every method."""

    def __init__(self):
        raise TypeError("values come from Key.value() or Key.values()")

    cdef inline Hive _hv(self):
        """The hive; raises for a Value that was never initialised (Value.__new__)."""
        if self.hive is None or self.key is None:
            raise _not_initialised("Value")
        return self.hive

    cdef inline rf_hive *_h(self) except NULL:
        return self._hv().handle()

    def __reduce__(self):
        self._hv()
        return _restore_value, (self.key, self._v)

    def __repr__(self):
        if self.hive is None:
            return "<regfast.Value (not initialised)>"
        return f"<regfast.Value {self._name!r} {type_name(self._type)} {self._len} bytes>"

    @property
    def name(self):
        """The value's name ("" for the default value)."""
        self._hv()
        return self._name

    @property
    def type(self):
        """The REG_* type (any 32-bit number; e.g. 0xFFFF0012 device properties)."""
        self._hv()
        return self._type

    @property
    def size(self):
        """Data length in bytes, as the vk records it."""
        self._hv()
        return self._len

    @property
    def well_formed(self):
        """False when the size does not fit the type: a REG_DWORD /
        REG_DWORD_BIG_ENDIAN of other than 4 bytes, a REG_QWORD of other than
        8 (real hives hold such values). ``value`` still decodes them, as
        winreg does; ``data`` has the bytes as stored."""
        self._hv()
        return reg_well_formed(self._type, self._len)

    @property
    def offset(self):
        """The value's token (the vk cell offset for hives)."""
        self._hv()
        return self._v

    @property
    def data(self):
        """The raw data as a read-only memoryview into the hive (no copy).
        Big-data values (over 16 KB, split in segments) are assembled into a new
        buffer first. The view reads the file's mapping: if the file is
        truncated while you hold it, touching it ends the process with SIGBUS
        (nothing can catch that in Python code); open the hive with
        ``copy=True`` when other processes may cut the file."""
        cdef const uint8_t *p
        cdef size_t n
        cdef rf_hive *h = self._h()             # raises once the hive is closed
        if self._ptr != NULL:
            self.hive.probe()
            return view_of(self.hive, self._ptr, self._len)
        if not (self._flags & RF_VALUE_BIG_DATA):
            if self._read_flat(&p, &n):
                self.hive.probe()
                return view_of(self.hive, p, n)
        return memoryview(self._big_bytes())

    cdef bint _read_flat(self, const uint8_t **p, size_t *n) except -1:
        """The data where it lies in the mapping (True), or False when it is
        big data after all: a tolerant Key.values() hands out a value from a
        row that reads as an error without saying where its data is (a vk
        whose name is damaged, a row past the batch's bound), and only
        reading it says. Raises the damage of a value whose data is lost."""
        cdef rf_status st = _value_read(self.hive, self._v, p, n)
        if st == RF_E_MORE_DATA:
            self._flags |= RF_VALUE_BIG_DATA
            return False
        check(st)
        return True

    cdef bytes _big_bytes(self):
        """Assembles a big-data value's segments into one new bytes object.

        The data read is what rf_value_read says it is (p, n), not the
        buffer it was offered: a live backend hands back data that outgrew
        the buffer in its own scratch, and a live value may have changed
        length since it was listed (a bytes of the listed length held the
        buffer's uninitialised bytes, or the old data's tail)."""
        cdef const uint8_t *p = NULL
        cdef size_t n = 0
        cdef rf_status st
        self._h()
        cdef rf_hive *h = self.hive.pin()
        cdef bytes b
        cdef char *dst
        try:
            b = PyBytes_FromStringAndSize(NULL, self._len)
            dst = PyBytes_AS_STRING(b)
            with nogil:
                st = rf_value_read(h, self._v, dst, self._len, &p, &n)
            check(st)
            if p != <const uint8_t *>dst or n != self._len:
                b = PyBytes_FromStringAndSize(<const char *>p, n)   # copied while pinned
        finally:
            self.hive.unpin()
        return b

    def slack(self):
        """Unused bytes of the value's cells: after the vk's name, and after
        the data in its data cell (inline and big data have no data-cell slack).
        Returns (vk_slack, data_slack) as read-only memoryviews (no copy).

        Raises RegistryCorruptError (with the offset) when the data cell
        cannot be located, as reading the data would; winerror 120 on a live
        registry, which has no cells."""
        cdef Hive hive = self._hv()
        cdef rf_slack sl[2]
        if self._v == 0:
            raise ValueError("this value has no cell token")
        check(rf_value_slack(hive.handle(), self._v, sl))
        return hive._slack_view(&sl[0]), hive._slack_view(&sl[1])

    def raw(self):
        """The raw data as bytes (a copy)."""
        return bytes(self.data)

    @property
    def value(self):
        """The decoded data: str for REG_SZ/EXPAND_SZ/LINK (SZ ends at the first
        NUL, EXPAND_SZ is not expanded), int for DWORD/DWORD_BIG_ENDIAN/QWORD,
        list[str] for MULTI_SZ, bytes for everything else (unknown and
        device-property types 0xFFFF00xx included).

        An integer type whose size does not fit (see well_formed) decodes as
        CPython's winreg decodes REG_DWORD/REG_QWORD: 0 bytes is 0, a longer
        one is its first 4/8 bytes, a shorter one is zero-extended;
        REG_DWORD_BIG_ENDIAN alike, big-endian."""
        return self._decoded()

    def __getattribute__(self, name):
        # The walk's hot attributes without the generic lookup: CPython 3.11+
        # does not specialise attribute loads of getset descriptors, so each
        # v.name went through the type's MRO cache, the descriptor checks and
        # getset_get (~15% of a Key/Value walk under callgrind). The names the
        # interpreter passes are interned, so a pointer compare finds them;
        # anything else (and any subclass, which may override them) takes the
        # generic path, which answers exactly as before.
        if type(self) is Value:
            if name is _A_VALUE:
                return self._decoded()
            if name is _A_NAME:
                self._hv()
                return self._name
            if name is _A_TYPE:
                self._hv()
                return self._type
        return PyObject_GenericGetAttr(self, name)

    cdef object _decoded(self):
        cdef const uint8_t *p
        cdef size_t n
        cdef bytes b
        cdef rf_hive *h = self._h()             # raises once the hive is closed
        if self._ptr != NULL:                   # located by Key.values(): no C call
            p, n = self._ptr, self._len
        elif (self._flags & RF_VALUE_BIG_DATA) or not self._read_flat(&p, &n):
            b = self._big_bytes()
            return decode_data(self._type, <const uint8_t *>PyBytes_AS_STRING(b), len(b))
        if self.hive._can_fault:                # the decoder reads the mapping outside C (Hive.probe)
            check(regf_probe_end(self.hive._map, self.hive._map_len))
        return decode_data(self._type, p, n)


# __dealloc__ unpins the hive: the cyclic collector must not set `hive` to
# None first (a watch thread's group and the watch form a cycle; clearing it
# made __dealloc__ call unpin() through None: a segfault).
@cython.no_gc_clear
@cython.auto_pickle(False)
cdef class _Watch:
    """An rf_watch over keys of one hive (the live registry): what
    regfast.live.watch drives for keys of regfast.connect(..., backend="remote").
    next() from one thread at a time; stop() from any; close() once next()
    is not running. Keeps its hive open (pinned) until close()."""
    cdef rf_watch *_w
    cdef Hive hive
    cdef bint _pinned

    def __cinit__(self):
        self._w = NULL
        self._pinned = False

    def __reduce__(self):
        raise TypeError("cannot pickle or copy a watch")

    def __dealloc__(self):
        if self._w != NULL:
            rf_watch_close(self._w)
            self._w = NULL
        if self._pinned:
            self.hive.unpin()

    def next(self, double timeout):
        """The next event within `timeout` seconds: (kind, index, seq, status,
        snapshot bytes) with kind 1 a change (the key's new snapshot), 2 the
        key lost (status says why); None when none came. Raises OSError
        winerror 259 once the watch is over, RegistryConnectionError when the
        connection died."""
        cdef rf_watch_event ev
        cdef rf_status st
        cdef uint32_t ms = <uint32_t>max(0.0, min(timeout * 1000.0, 4.0e9))
        if self._w == NULL:
            raise error_from_status(RF_E_INVALID_HANDLE, "the watch is closed")
        with nogil:
            st = rf_watch_next(self._w, ms, &ev)
        if st == RF_E_TIMEOUT:
            return None
        check(st)
        snap = PyBytes_FromStringAndSize(<const char *>ev.snapshot, ev.snapshot_len) if ev.snapshot_len else b""
        return ev.kind, ev.index, ev.seq, ev.status, snap

    def stop(self):
        """Ends the watch: a waiting next() raises 259 soon after."""
        if self._w != NULL:
            rf_watch_stop(self._w)

    def close(self):
        """Frees the watch (stop() it and let next() return first)."""
        if self._w != NULL:
            rf_watch_close(self._w)
            self._w = NULL
        if self._pinned:
            self._pinned = False
            self.hive.unpin()


def _watch_open(keys, uint32_t flags, uint32_t filter, uint32_t max_keys=0, uint32_t delay_ms=0):
    """rf_watch_open over `keys` (regfast.Key objects of one hive): returns
    (_Watch, [baseline snapshot bytes per key]). Notifications are armed
    before the baselines are taken, so no change after this returns is
    missed. A hive file raises winerror 120."""
    cdef list ks = list(keys)
    cdef size_t n = len(ks), i
    cdef Hive hive
    cdef rf_key *toks = NULL
    cdef rf_bytes *base = NULL
    cdef rf_watch_opts o
    cdef rf_status st
    cdef _Watch w
    if n == 0:
        raise ValueError("a watch needs at least one key")
    hive = (<Key?>ks[0])._hv()
    for k in ks:
        if (<Key?>k)._hv() is not hive:
            raise ValueError("the keys of one rf_watch belong to one hive")
    toks = <rf_key *>malloc(n * sizeof(rf_key))
    base = <rf_bytes *>calloc(n, sizeof(rf_bytes))
    if toks == NULL or base == NULL:
        free(toks)
        free(base)
        raise MemoryError()
    o.struct_size = sizeof(rf_watch_opts)
    o.flags = flags
    o.filter = filter
    o.max_keys = max_keys
    o.delay_ms = delay_ms
    w = _Watch.__new__(_Watch)
    cdef rf_hive *h = hive.pin()
    w.hive = hive
    w._pinned = True
    try:
        for i in range(n):
            toks[i] = (<Key>ks[i])._k
        with nogil:
            st = rf_watch_open(h, toks, n, &o, base, &w._w)
        check(st)
        baselines = [PyBytes_FromStringAndSize(<const char *>base[i].data, base[i].len) for i in range(n)]
    finally:
        for i in range(n):
            rf_bytes_free(&base[i])
        free(base)
        free(toks)
    return w, baselines


def marvin32(data, uint64_t seed=0x82EF4D887A4E55C5ULL):
    """Marvin32 keyed hash of a bytes-like object: (high lane << 32) | low lane.
    regfast.logs uses it to verify HvLE transaction-log entries (GIL released)."""
    cdef const uint8_t[::1] v = memoryview(data).cast("B")
    cdef size_t n = v.shape[0]
    cdef const uint8_t *p = &v[0] if n else <const uint8_t *>""
    cdef uint64_t h
    with nogil:
        h = rf_marvin32(p, n, seed)
    return h


# This module's copy of the core has its own hook slot (the static library is
# linked into each extension module): regfast._hooks installs the op log here
# through this capsule, so hooks and the profiler see this module's rf_* calls.
from cpython.pycapsule cimport PyCapsule_New as _PyCapsule_New
_rf_hook_set = _PyCapsule_New(<void *>rf_hook_set, b"regfast.rf_hook_set", NULL)
