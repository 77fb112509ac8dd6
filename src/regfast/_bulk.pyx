# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Bulk reads: many values of a key (ValueBatch) and whole subtrees (ScanTable)
as numpy columns, filled by one C call with the GIL released.

Data is not copied: a row's data is an offset into the hive mapping, which
the batch or table keeps open through a zero-copy export (so the hive cannot
be closed under it). Only big-data values, split across segments in the
file, are assembled into an arena; their offsets carry RF_BATCH_IN_ARENA.
"""
cimport numpy as cnp
from cpython.unicode cimport PyUnicode_DecodeLatin1, PyUnicode_DecodeUTF16
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from cpython.list cimport PyList_SET_ITEM
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.ref cimport Py_DECREF, Py_INCREF
from libc.stdlib cimport free, malloc
from cpython.object cimport PyObject
from libc.string cimport memcmp, memcpy

cdef extern from "Python.h":
    # Strings are built in place: PyUnicode_New with the exact widest char
    # (CPython compares strs by kind first, so the kind must be the minimal
    # one), then the characters are written straight into its storage.
    str PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void *PyUnicode_DATA(object o)
    int PyUnicode_KIND(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    Py_UCS4 PyUnicode_MAX_CHAR_VALUE(object o)

cdef extern from *:
    """
    /* Name bytes lie all over a big mapping: asking for the next rows' names
       early overlaps their cache and TLB misses with the work on this one. */
    #if defined(__GNUC__) || defined(__clang__)
    #define rf_prefetch(p) __builtin_prefetch((const void *)(p))
    #else
    #define rf_prefetch(p) ((void)(p))
    #endif
    """
    void rf_prefetch(const void *p) noexcept nogil

cdef extern from *:
    """
    /* The rows a scan gives status 13 "malformed" (_mark_malformed): read
       fine, an integer type whose size does not fit it (reg_well_formed's
       rule: DWORD / DWORD_BIG_ENDIAN of other than 4 bytes, QWORD of other
       than 8). Every scan counts them first and most hives have none, so the
       count is written to vectorize: no branch, restrict columns, a 32-bit
       sum per block (in Cython the loop stayed scalar: 4% of a small scan). */
    #if defined(__GNUC__) && !defined(__clang__)
    __attribute__((optimize("tree-vectorize", "vect-cost-model=cheap")))  /* -O2: "very cheap" only */
    #endif
    static size_t rf_count_ill_sized(size_t n, const uint32_t *__restrict type,
                                     const int32_t *__restrict status,
                                     const uint32_t *__restrict length)
    {
        size_t total = 0;
        for (size_t at = 0; at < n; at += 65536) {
            size_t end = n - at < 65536 ? n : at + 65536;
            uint32_t c = 0;
            for (size_t i = at; i < end; i++) {
                uint32_t t = type[i], l = length[i];
                c += (uint32_t)(status[i] == 0) & (((t - 4u <= 1u) & (l != 4u)) | ((t == 11u) & (l != 8u)));
            }
            total += c;
        }
        return total;
    }
    """
    size_t rf_count_ill_sized(size_t n, const uint32_t *type, const int32_t *status,
                              const uint32_t *length) noexcept nogil

cdef enum:
    PREFETCH_AHEAD = 16     # rows ahead whose name is prefetched
    NAME_CACHE_BYTES = 64   # longest name (in bytes) a name cache keeps

cdef extern from "regfast/_text.h":
    size_t rf_u16_scan(const uint8_t *p, size_t n, int stop_at_nul, uint16_t *bits_out) noexcept nogil
    void rf_u16_narrow(uint8_t *dst, const uint8_t *p, size_t n) noexcept nogil
    uint8_t rf_bytes_or(const uint8_t *p, size_t n) noexcept nogil

cdef extern from "regfast/_strcache.h":
    ctypedef struct rf_str_slot:
        pass
    ctypedef struct rf_str_cache:
        pass
    int rf_strcache_init(rf_str_cache *c, size_t rows, uint32_t max_bytes) noexcept nogil
    void rf_strcache_free(rf_str_cache *c) noexcept nogil
    rf_str_slot *rf_strcache_slot(rf_str_cache *c, const uint8_t *p, uint32_t raw,
                                  uint32_t nbytes) noexcept nogil
    PyObject *rf_strcache_hit(rf_str_cache *c, const rf_str_slot *slot, const uint8_t *p,
                              uint32_t raw, uint32_t nbytes) noexcept nogil
    void rf_strcache_put(rf_str_slot *slot, const uint8_t *p, uint32_t raw, PyObject *s) noexcept nogil

from regfast.regfast cimport *
from regfast._native cimport (Hive, Key, _Export, _WalkValues, check, decode_data, deleted_records, name_str,
                              utf16_str, reg_int, reg_is_int, reg_well_formed, regf_probe_end, u16_at,
                              le32)
cimport cython


import numpy as np

from regfast.exceptions import error_from_status
from regfast._types import _as_int
from regfast._native import _bind_columns, _not_initialised, _reduce_refused

_TABLE_HINT = ("; to_pandas() or to_arrow() make a self-contained copy, or pickle the Hive "
               "and scan it again")

cnp.import_array()


cdef extern from "Python.h":
    void PyObject_GC_UnTrack(void *op)


cdef inline void _set_none_item(list out, Py_ssize_t i, object v) noexcept:
    """out[i] = v where out[i] is the None of [None] * n, without the bounds
    and type checks of a generic item assignment. noexcept: Cython 3 would
    check PyErr_Occurred() after each call of a void function (a row's cost)."""
    Py_INCREF(v)
    Py_DECREF(None)
    PyList_SET_ITEM(out, i, v)


cdef inline list _untracked(list out):
    """`out`, no longer tracked by the cyclic garbage collector.

    For the whole-table results of ScanTable (a list per key or value row, a
    million items on a big hive). Tracked, such a list was walked item by
    item by every collection of the generation it sat in: a young
    collection while it was being filled, then once in each older one, one
    cache miss per item (18% of scan() + decode on a 110 MB hive, a single
    gen-2 pass 75 ms). Its items are str, int, bytes, None and REG_MULTI_SZ
    lists that are themselves untracked and hold only str: nothing in it can
    be part of a reference cycle, so the collector has nothing to find
    there. Only a cycle the caller builds through it later (a list that
    contains itself) would not be collected. CPython untracks tuples and
    dicts of such items itself; lists it cannot, as they may change."""
    PyObject_GC_UnTrack(<void *>out)
    return out

# Status codes a row can carry without being an error of the call.
cdef enum:
    ROW_OK = 0
    ROW_MISSING = 2         # the value does not exist
    ROW_FILTERED = 13       # its type is not among `types`; or, with its malformed
                            # flag set, its size does not fit its type (data still there)

cdef uint64_t ARENA_BIT = RF_BATCH_IN_ARENA
# A scan table's value_offset is 32-bit (rf_scan): bit 31 set, an offset into
# its arena. File offsets never have it: scan() refuses a hive whose rows
# would (Windows' hives end below 2 GiB: bit 31 of a cell index marks
# volatile storage).
cdef uint32_t SCAN_ARENA_BIT = 0x80000000u     # (regfast._columns has its twin)


cdef inline const uint8_t *row_ptr(const uint8_t *mapping, const uint8_t *arena, uint64_t off) noexcept nogil:
    if off & ARENA_BIT:
        return arena + (off & ~ARENA_BIT)
    return mapping + off


cdef inline uint64_t off_at(const uint64_t *off64, const uint32_t *off32, Py_ssize_t i) noexcept nogil:
    """Row i's data offset in the form row_ptr() takes, from a batch's 64-bit
    column (off64) or a scan table's 32-bit one (off32; the other is NULL)."""
    cdef uint32_t o
    if off32 == NULL:
        return off64[i]
    o = off32[i]
    if o & SCAN_ARENA_BIT:
        return ARENA_BIT | (o & ~SCAN_ARENA_BIT)
    return o


cdef inline void *data_of(cnp.ndarray a) noexcept:
    return cnp.PyArray_DATA(a)


@cython.auto_pickle(False)
cdef class _Rows:
    """What ValueBatch and ScanTable share: typed rows over a mapping + arena.

    Neither pickles nor copies (TypeError): rows are offsets into the hive's
    mapping. An object made by ``__new__`` raises winerror 6 from every method."""
    cdef object _pin                 # an _Export over the whole hive file: keeps it mapped
    cdef object _view                # memoryview of _pin, made on first use of .mapping
    cdef readonly object arena       # numpy uint8 array for assembled big data, or None
    cdef const uint8_t *_map
    cdef size_t _map_len
    cdef bint _can_fault             # the hive's bytes may vanish (a file mapping): probe before decoding
    cdef const uint8_t *_arena

    def __reduce__(self):
        _reduce_refused(self, _TABLE_HINT)

    cdef int _ready(self) except -1:
        """Raises unless the rows were filled (not an object from __new__), and
        when the file no longer covers the mapping (truncated since the open):
        every decoder calls it before reading the mapping outside C."""
        if self._pin is None:
            raise _not_initialised(type(self).__name__)
        if self._can_fault and self._map_len:
            check(regf_probe_end(self._map, self._map_len))
        return 0

    cdef int _bind(self, Hive hive, const uint8_t *base, size_t base_len, object arena) except -1:
        # The export alone pins the mapping (Hive counts it); the memoryview
        # over it is made only if someone asks for .mapping: a view per batch
        # was ~15% of a small Key.read_values().
        cdef _Export e = _Export(hive)
        e.ptr = <const char *>base
        e.length = base_len
        self._pin = e
        self._map = base if base_len else NULL
        self._map_len = base_len
        self._can_fault = hive._can_fault
        self.arena = arena
        self._arena = NULL
        if arena is not None and (<cnp.ndarray>arena).shape[0]:
            self._arena = <const uint8_t *>data_of(arena)
        return 0

    @property
    def mapping(self):
        """memoryview of the whole hive file (keeps it open)."""
        self._ready()
        if self._view is None and self._pin is not None:
            self._view = memoryview(self._pin)
        return self._view

    cdef object _decode_rows(self, cnp.ndarray types, cnp.ndarray status, cnp.ndarray offset,
                             cnp.ndarray length, object malformed, bint strings_only):
        """Decoded value per row of a scan table (32-bit offsets); None where
        the row has no value (or, with strings_only, is not a string type).
        `malformed` None: no row is."""
        return self._decode_ptrs(types.shape[0], <uint32_t *>data_of(types), <int32_t *>data_of(status),
                                 NULL, <uint32_t *>data_of(offset), <uint32_t *>data_of(length),
                                 NULL if malformed is None else <const uint8_t *>data_of(malformed),
                                 None, strings_only, True)

    cdef list _decode_ptrs(self, Py_ssize_t n, const uint32_t *t, const int32_t *st, const uint64_t *off64,
                           const uint32_t *off32, const uint32_t *ln, const uint8_t *mal, object names,
                           bint strings_only, bint untrack=False):
        """Offsets: off64 or off32 (see off_at). `mal`: per row, 1 when the
        row's status 13 says "malformed" (the data is there and decodes)
        rather than "filtered out"; NULL when no row is malformed."""
        self._ready()
        _check_names(names, n)
        cdef list out = [None] * n
        # Pausing the cyclic collector here (as once) only deferred it: the
        # next allocation after the loop collected over every REG_MULTI_SZ
        # list made meanwhile. A whole table's result and its lists are
        # untracked instead (see _untracked); a ValueBatch's, a key's worth,
        # stay ordinary lists.
        if untrack:
            _untracked(out)
        self._decode_into(out, n, t, st, off64, off32, ln, mal, strings_only, untrack)
        return out

    cdef void _decode_into(self, list out, Py_ssize_t n, const uint32_t *t, const int32_t *st,
                           const uint64_t *off64, const uint32_t *off32, const uint32_t *ln,
                           const uint8_t *mal, bint strings_only, bint untrack) except *:
        cdef Py_ssize_t i
        cdef uint32_t ty
        cdef const uint8_t *p
        cdef object v
        for i in range(n):
            if i + PREFETCH_AHEAD < n and st[i + PREFETCH_AHEAD] == 0:
                # the data lies anywhere in the hive: ask for its line while
                # the rows before it decode (a prefetch never faults; rows
                # with a status may have no offset, or no arena behind it)
                rf_prefetch(row_ptr(self._map, self._arena, off_at(off64, off32, i + PREFETCH_AHEAD)))
            if st[i] != 0 and (mal == NULL or not mal[i]):
                continue
            ty = t[i]
            p = row_ptr(self._map, self._arena, off_at(off64, off32, i))
            # the two commonest types straight here; decode_data does the rest
            # (as it would these: same results, one call less per row). Equal
            # strings are not shared as names are (decode_names): for values,
            # hashing and comparing the longer data cost what it saved.
            if ty == RF_REG_SZ or ty == RF_REG_EXPAND_SZ:
                v = utf16_str(p, ln[i], True)
            elif strings_only:
                if ty != RF_REG_LINK:
                    continue
                v = utf16_str(p, ln[i], False)
            elif ty == RF_REG_DWORD and ln[i] == 4:
                v = le32(p)
            else:
                v = decode_data(ty, p, ln[i])
                if untrack and ty == RF_REG_MULTI_SZ:
                    _untracked(<list>v)        # only str in it
            _set_none_item(out, i, v)

    cdef object _ints_ptrs(self, Py_ssize_t n, const uint32_t *t, const int32_t *st, const uint64_t *off64,
                           const uint32_t *ln, const uint8_t *mal, object default):
        cdef Py_ssize_t i
        cdef cnp.ndarray out = np.empty(n, dtype=np.uint64)
        cdef uint64_t *o = <uint64_t *>data_of(out)
        cdef uint64_t dflt = 0
        cdef Py_ssize_t bad = -1
        self._ready()
        if default is not None:
            dflt = default
        with nogil:
            for i in range(n):
                if (st[i] == 0 or mal[i]) and reg_is_int(t[i]):
                    o[i] = reg_int(t[i], row_ptr(self._map, self._arena, off64[i]), ln[i])
                else:
                    o[i] = dflt
                    if bad < 0:
                        bad = i
        if bad >= 0 and default is None:
            raise ValueError(f"row {bad} is not a DWORD, DWORD_BIG_ENDIAN or QWORD (type {t[bad]}, "
                             f"status {st[bad]}); pass default= to fill such rows")
        return out

    cdef object _row_view(self, uint64_t off, uint32_t n):
        self._ready()
        if off & ARENA_BIT:
            start = <Py_ssize_t>(off & ~ARENA_BIT)
            return memoryview(self.arena)[start:start + n]
        return self.mapping[<Py_ssize_t>off:<Py_ssize_t>off + n]


cdef inline cnp.ndarray _col_view(cnp.ndarray block, void *p, Py_ssize_t n, int typenum):
    """A read-only column over part of a batch's row block (the block stays
    its base)."""
    cdef cnp.npy_intp dim = n
    cdef cnp.ndarray a = cnp.PyArray_SimpleNewFromData(1, &dim, typenum, p)
    cnp.set_array_base(a, block)
    cnp.PyArray_CLEARFLAGS(a, cnp.NPY_ARRAY_WRITEABLE)
    return a


cdef inline int _check_names(object names, Py_ssize_t n) except -1:
    """Rows index a batch's names unchecked (boundscheck is off): a names list
    shortened by its user must raise, not be read past its end."""
    if names is not None and len(names) < n:
        raise ValueError(f"the batch's names list was changed: {len(names)} names for {n} rows")
    return 0


cdef Py_ssize_t _mark_malformed(Py_ssize_t n, const uint32_t *t, int32_t *st, const uint32_t *ln,
                                uint8_t *mal) noexcept nogil:
    """Rows read fine (status 0) whose size does not fit their type get
    status 13 (ERROR_INVALID_DATA) and their malformed flag: nothing is
    hidden, and their data still decodes. Returns how many."""
    cdef Py_ssize_t i, count = 0
    for i in range(n):
        mal[i] = st[i] == 0 and not reg_well_formed(t[i], ln[i])
        if mal[i]:
            st[i] = ROW_FILTERED
            count += 1
    return count


def malformed_mask(types, lengths):
    """numpy bool array: True where a row's length does not fit its type (a
    REG_DWORD / REG_DWORD_BIG_ENDIAN not of 4 bytes, a REG_QWORD not of 8),
    by the rules every decoder shares (the live registry's batches use it)."""
    cdef const uint32_t[::1] t = np.ascontiguousarray(types, dtype=np.uint32)
    cdef const uint32_t[::1] ln = np.ascontiguousarray(lengths, dtype=np.uint32)
    cdef Py_ssize_t i, n = t.shape[0]
    if ln.shape[0] != n:
        raise ValueError(f"{n} types but {ln.shape[0]} lengths")
    out = np.empty(n, dtype=np.bool_)
    cdef cnp.uint8_t[::1] o = out.view(np.uint8)
    with nogil:
        for i in range(n):
            o[i] = not reg_well_formed(t[i], ln[i])
    return out


cdef cnp.ndarray _locked(cnp.ndarray a):
    """`a` read-only for good, and the arrays it views. The C code trusts
    offsets and lengths in a table's columns to stay inside the mapping: a
    write would send decoded_values() or value_data() astray. An array that
    owns its memory may be made writeable again by anyone (numpy allows it),
    a view of a read-only array may not: such an array comes back as a view
    of itself."""
    if cnp.get_array_base(a) is None:            # (the columns are 1-D and contiguous)
        a = _column(a, 0, <size_t>a.shape[0], a.dtype)
    # PyArray_CLEARFLAGS, not .flags.writeable = False: the attribute goes
    # through numpy's Python-level setflags, ~5 us an array (a small hive's
    # scan spent 40% of its time there)
    cdef cnp.ndarray v = a
    while True:
        cnp.PyArray_CLEARFLAGS(v, cnp.NPY_ARRAY_WRITEABLE)
        base = cnp.get_array_base(v)
        if not isinstance(base, np.ndarray):
            return a
        v = base


@cython.auto_pickle(False)
cdef class ValueBatch(_Rows):
    """Many values of one key, read in one call (see Key.read_values).

    Columns (numpy arrays, one row per requested value):
      ``type`` (uint32), ``status`` (int32: 0 ok, 2 missing, 13 filtered out by
      `types` or malformed, 87 a name no value can have), ``offset`` (uint64,
      into ``mapping`` or, with bit 63 set, into ``arena``), ``length``
      (uint32) and ``malformed`` (bool). ``names`` lists the value names.

    A malformed row (a REG_DWORD / REG_DWORD_BIG_ENDIAN not of 4 bytes, a
    REG_QWORD not of 8, as real hives have) has status 13 and ``malformed``
    True, and its data is still there: values(), to_dict(), as_int() and
    buffer() give it (decoded as Value.value does). A row filtered out by
    `types` has status 13 and no data.
    """
    cdef readonly Key key
    cdef readonly list names
    # The rows live in one uint8 block (offset[n], then type, status, length,
    # malformed); values()/to_dict() read them through these pointers, and the
    # numpy columns are views of the block made on first access: most batches
    # are decoded and dropped, and four arrays a batch were ~0.5 us of a
    # 3-value read (the views hold the block, not the batch: no cycle).
    cdef cnp.ndarray _block
    cdef Py_ssize_t _n
    cdef uint64_t *_off
    cdef uint32_t *_type
    cdef int32_t *_st
    cdef uint32_t *_len
    cdef uint8_t *_mal
    cdef object _a_type, _a_status, _a_offset, _a_length, _a_malformed

    @property
    def type(self):
        """REG_* type per row (uint32)."""
        self._filled()
        if self._a_type is None:
            self._a_type = _col_view(self._block, self._type, self._n, cnp.NPY_UINT32)
        return self._a_type

    @property
    def status(self):
        """Per-row status (int32): 0 ok, 2 missing, 13 filtered out by `types`."""
        self._filled()
        if self._a_status is None:
            self._a_status = _col_view(self._block, self._st, self._n, cnp.NPY_INT32)
        return self._a_status

    @property
    def offset(self):
        """Data offset per row (uint64): into ``mapping``, or with bit 63 into ``arena``."""
        self._filled()
        if self._a_offset is None:
            self._a_offset = _col_view(self._block, self._off, self._n, cnp.NPY_UINT64)
        return self._a_offset

    @property
    def length(self):
        """Data length per row in bytes (uint32)."""
        self._filled()
        if self._a_length is None:
            self._a_length = _col_view(self._block, self._len, self._n, cnp.NPY_UINT32)
        return self._a_length

    @property
    def malformed(self):
        """Per row (bool): the size does not fit the type; status is 13 and
        the data is still read and decoded."""
        self._filled()
        if self._a_malformed is None:
            self._a_malformed = _col_view(self._block, self._mal, self._n, cnp.NPY_BOOL)
        return self._a_malformed

    cdef int _filled(self) except -1:
        if self._block is None:
            raise _not_initialised("ValueBatch")
        return 0

    def __len__(self):
        self._filled()
        return self._n

    def __repr__(self):
        if self._block is None:
            return "<regfast.ValueBatch (not initialised)>"
        ok = int(((self.status == 0) | self.malformed).sum())
        return f"<regfast.ValueBatch {len(self)} rows, {ok} found>"

    @property
    def data(self):
        """The buffer row offsets point into: the hive mapping (zero-copy)."""
        return self.mapping

    def buffer(self, Py_ssize_t i):
        """Row i's raw data as a memoryview (no copy)."""
        self._filled()
        if not 0 <= i < self._n:
            raise IndexError(f"row {i} of a batch of {self._n} rows")
        if self.status[i] != 0 and not self.malformed[i]:
            _check_names(self.names, self._n)
            raise error_from_status(int(self.status[i]), f"value {self.names[i]!r}: no data")
        return self._row_view(self.offset[i], self.length[i])

    def as_str(self, *, array=False):
        """Decoded strings for RF_REG_SZ/EXPAND_SZ/LINK rows, None elsewhere.
        With array=True, a numpy StringDType array (None as the missing marker)."""
        self._filled()
        out = self._decode_ptrs(self._n, self._type, self._st, self._off, NULL, self._len, self._mal,
                                self.names, True)
        if array:
            return np.array(out, dtype=np.dtypes.StringDType(na_object=None))
        return out

    def as_int(self, *, default=None):
        """DWORD / DWORD_BIG_ENDIAN / QWORD rows as a uint64 array, malformed
        ones decoded as Value.value does. Other rows (missing, filtered, other
        types) raise ValueError unless `default` fills them (an int that
        fits uint64)."""
        self._filled()
        if default is not None:
            default = _as_int(default, "default")
            if not 0 <= default < 2**64:
                raise ValueError(f"default must be in [0, 2**64) (the column is uint64), got {default}")
        return self._ints_ptrs(self._n, self._type, self._st, self._off, self._len, self._mal, default)

    def values(self):
        """Decoded value per row (as key[name] would give), None for rows
        without data (missing or filtered)."""
        self._filled()
        return self._decode_ptrs(self._n, self._type, self._st, self._off, NULL, self._len, self._mal,
                                 self.names, False)

    def to_dict(self):
        """{name: decoded value} for the rows that have data (malformed ones
        included); of rows with the same name, the first, as key[name] finds."""
        self._filled()
        cdef list vals = self._decode_ptrs(self._n, self._type, self._st, self._off, NULL, self._len,
                                           self._mal, self.names, False)
        cdef list names = self.names
        cdef int32_t *st = self._st
        cdef uint8_t *mal = self._mal
        cdef Py_ssize_t i
        cdef dict out = {}
        for i in range(self._n):
            if (st[i] == 0 or mal[i]) and names[i] not in out:
                out[names[i]] = vals[i]
        return out


@cython.auto_pickle(False)
cdef class _NameArray:
    """UTF-16 copies of the requested names, laid out for rf_read_values, in
    one C block: no Python object per name (a 10,000-name batch makes none
    that tracemalloc sees), and surrogates pass through as the
    "surrogatepass" codec would."""
    cdef rf_name *names
    cdef uint16_t *units

    def __reduce__(self):
        _reduce_refused(self)

    def __cinit__(self, list names):
        cdef Py_ssize_t i, j, n = len(names), total = 0, ln, k = 0
        cdef int kind
        cdef const void *data
        cdef uint32_t ch     # not Py_UCS4: Cython would make arithmetic on it a str
        self.names = NULL
        self.units = NULL
        for i in range(n):
            name = names[i]
            if not isinstance(name, str):
                raise TypeError(f"value names must be str, got {type(name).__name__} at index {i}")
            ln = PyUnicode_GET_LENGTH(name)
            total += ln
            if PyUnicode_KIND(name) == 4:       # chars past the BMP take two units
                data = PyUnicode_DATA(name)
                for j in range(ln):
                    total += (<const uint32_t *>data)[j] > 0xFFFF
        self.names = <rf_name *>malloc(max(n, 1) * sizeof(rf_name))
        self.units = <uint16_t *>malloc(max(total, 1) * sizeof(uint16_t))
        if self.names == NULL or self.units == NULL:
            raise MemoryError()
        for i in range(n):
            name = names[i]
            ln = PyUnicode_GET_LENGTH(name)
            kind = PyUnicode_KIND(name)
            data = PyUnicode_DATA(name)
            self.names[i].ptr = self.units + k
            self.names[i].utf16 = 1
            if kind == 1:
                for j in range(ln):
                    self.units[k + j] = (<const uint8_t *>data)[j]
                k += ln
            elif kind == 2:
                memcpy(self.units + k, data, ln * 2)
                k += ln
            else:
                for j in range(ln):
                    ch = (<const uint32_t *>data)[j]
                    if ch > 0xFFFF:
                        ch -= 0x10000
                        self.units[k] = <uint16_t>(0xD800 + (ch >> 10))
                        self.units[k + 1] = <uint16_t>(0xDC00 + (ch & 0x3FF))
                        k += 2
                    else:
                        self.units[k] = <uint16_t>ch
                        k += 1
            self.names[i].nbytes = <uint32_t>((<char *>(self.units + k) - <char *>self.names[i].ptr))

    def __dealloc__(self):
        free(self.names)
        free(self.units)


cdef enum:
    SMALL_ROWS = 16         # rows read into stack scratch before any allocation


cdef inline str _rf_name_obj(const rf_name *nm):
    """name_str() through the in-place writer (same output)."""
    cdef _Name m
    _measure(&m, <const uint8_t *>nm.ptr, 0, nm.nbytes | (RF_NAME_UTF16_BIT if nm.utf16 else 0))
    return _name_obj(&m)


def read_values(Key key not None, names=None, types=None, errors="strict"):
    """Implementation of Key.read_values (see its docstring)."""
    # Rows are read into scratch columns (on the stack for a key's usual few
    # values, else one malloc) and copied into exact-size arrays: no count
    # call first, no array that must be sliced. A key that has more values
    # than the scratch holds says how many (RF_E_MORE_DATA, b.n), and is read
    # again into scratch of that size.
    if errors not in ("strict", "skip"):
        raise ValueError("errors must be 'strict' or 'skip'")
    if key.hive is None:
        raise _not_initialised("Key")
    key.hive.handle()       # closed: raise before `names` and `types` are consumed
    cdef rf_key k = key._k
    cdef rf_batch b
    cdef _NameArray req = None
    cdef const rf_name *cnames = NULL
    cdef size_t n = SMALL_ROWS, n_types = 0, i, cap
    cdef uint32_t *ctypes = NULL
    cdef cnp.ndarray type_filter
    cdef rf_status st
    cdef const uint8_t *base
    cdef size_t base_len
    # scratch: type, status, offset, length, name, token for `cap` rows
    cdef uint32_t s_type[SMALL_ROWS]
    cdef int32_t s_status[SMALL_ROWS]
    cdef uint64_t s_offset[SMALL_ROWS]
    cdef uint32_t s_length[SMALL_ROWS]
    cdef rf_name s_name[SMALL_ROWS]
    cdef rf_value s_token[SMALL_ROWS]
    cdef char *heap = NULL
    cdef cnp.npy_intp dim
    if names is not None:
        if isinstance(names, (str, bytes)):     # list("abc") would read values "a", "b", "c"
            raise TypeError(f"names is an iterable of value names, not one {type(names).__name__}: "
                            f"pass [{names!r}]")
        names = list(names)
        req = _NameArray(names)
        cnames = req.names
        n = len(names)
    if types is not None:
        type_filter = np.ascontiguousarray(np.array(_value_types(types), dtype=np.uint32))
        n_types = type_filter.shape[0]
        ctypes = <uint32_t *>data_of(type_filter)

    cdef ValueBatch vb = ValueBatch.__new__(ValueBatch)
    vb.key = key
    arena = None
    b.type, b.status, b.offset, b.length, b.name, b.token = s_type, s_status, s_offset, s_length, s_name, s_token
    cap = SMALL_ROWS
    # Pinned to the end, taken after `names` and `types` ran (Python code: a
    # generator may close the hive): the names are read from the mapping
    # after the call, and a close() meanwhile (another thread, a hook's
    # callback) must not unmap it under them.
    cdef rf_hive *h = key.hive.pin()
    try:
        while True:
            if n > cap:
                free(heap)
                heap = <char *>malloc(n * (sizeof(uint32_t) * 3 + sizeof(int32_t) + sizeof(uint64_t)
                                           + sizeof(rf_name) + sizeof(rf_value)))
                if heap == NULL:
                    raise MemoryError()
                cap = n     # widest items first: every column stays aligned
                b.name = <rf_name *>heap
                b.offset = <uint64_t *>(b.name + cap)
                b.token = <rf_value *>(b.offset + cap)
                b.type = <uint32_t *>(b.token + cap)
                b.status = <int32_t *>(b.type + cap)
                b.length = <uint32_t *>(b.status + cap)
            b.struct_size = sizeof(rf_batch)
            b.cap = n
            b.n = 0
            b.arena = <uint8_t *>data_of(arena) if arena is not None and len(arena) else NULL
            b.arena_cap = len(arena) if arena is not None else 0
            b.arena_used = 0
            if n <= SMALL_ROWS and arena is None:
                # a few rows of an mmapped hive: well under a microsecond,
                # less than releasing and taking back the GIL costs
                st = rf_read_values(h, k, cnames, n, ctypes, n_types, 0, &b)
            else:
                with nogil:
                    st = rf_read_values(h, k, cnames, n, ctypes, n_types, 0, &b)
            if st == RF_E_MORE_DATA and b.n > n:        # more values than scratch rows
                n = b.n
                continue
            if st == RF_E_MORE_DATA:                   # big data needs an arena of this size
                arena = np.empty(b.arena_used, dtype=np.uint8)
                continue
            check(st)
            break
        n = b.n
        dim = <cnp.npy_intp>(n * (sizeof(uint64_t) + 3 * sizeof(uint32_t) + 1))
        vb._block = cnp.PyArray_EMPTY(1, &dim, cnp.NPY_UINT8, 0)    # read-only once filled
        vb._n = n
        vb._off = <uint64_t *>data_of(vb._block)
        vb._type = <uint32_t *>(vb._off + n)
        vb._st = <int32_t *>(vb._type + n)
        vb._len = <uint32_t *>(vb._st + n)
        vb._mal = <uint8_t *>(vb._len + n)
        memcpy(vb._off, b.offset, n * sizeof(uint64_t))
        memcpy(vb._type, b.type, n * sizeof(uint32_t))
        memcpy(vb._st, b.status, n * sizeof(int32_t))
        memcpy(vb._len, b.length, n * sizeof(uint32_t))
        if n > SMALL_ROWS:
            with nogil:
                _mark_malformed(n, vb._type, vb._st, vb._len, vb._mal)
        else:
            _mark_malformed(n, vb._type, vb._st, vb._len, vb._mal)
        cnp.PyArray_CLEARFLAGS(vb._block, cnp.NPY_ARRAY_WRITEABLE)
        check(rf_hive_mapping(h, &base, &base_len))
        if names is None:
            key.hive.probe()                            # the names are read outside C
            names = [_rf_name_obj(&b.name[i]) for i in range(n)]
        vb.names = names
        vb._bind(key.hive, base, base_len, arena)
        if errors == "strict":
            _strict_rows(h, b.status, b.token, n, names)
    finally:
        free(heap)
        key.hive.unpin()
    return vb


cdef list _value_types(types):
    """read_values' `types` as a list of REG_* numbers, checked: a value's
    type is 32 bits, so a negative or wider number (numpy's OverflowError)
    or a float (silently truncated) is the caller's error, winerror 87."""
    out = []
    for t in types:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t <= 0xFFFFFFFF:
            raise error_from_status(RF_E_INVALID_PARAMETER, f"types: {t!r} is not a REG_* type "
                                    "(an integer from 0 to 0xFFFFFFFF)")
        out.append(int(t))
    return out


cdef tuple _vk_at(rf_hive *h, uint64_t token):
    """A value's place for messages: ("vk at 0x...", file offset), or
    ("value token 0x...", None) where tokens are not cells."""
    cdef uint64_t off = RF_NO_OFFSET
    if rf_hive_token_offset(h, token, &off) != RF_OK:
        return f"value token 0x{token:x}", None
    return f"vk at 0x{off:x}", off


cdef int _strict_rows(rf_hive *h, const int32_t *rs, const rf_value *tok, size_t n, list names) except -1:
    """Raises for the first damaged row (missing, filtered-out and malformed
    rows are not errors) or the first name no value can have."""
    cdef size_t i
    cdef rf_value_info vi
    for i in range(n):
        if rs[i] != ROW_OK and rs[i] != ROW_MISSING and rs[i] != ROW_FILTERED:
            if rs[i] == RF_E_INVALID_PARAMETER and not tok[i]:
                # the caller's error, not the hive's: no row was read for it
                raise error_from_status(RF_E_INVALID_PARAMETER, f"value name of {len(names[i]):,} "
                                        "characters: a value name has at most 16,383", names[i][:64])
            # The thread's last error may describe a later row: re-read
            # this one alone so the exception carries its own offset.
            if tok[i]:
                check(rf_value_get_info(h, tok[i], &vi))
                _check_value_data(h, tok[i], vi.data_len)   # big data fails only here
                if rs[i] == RF_E_CORRUPT:   # fine alone: refused for the batch (regf_batch.c fill_row)
                    where, at = _vk_at(h, tok[i])
                    raise error_from_status(RF_E_CORRUPT, f"value {names[i]!r} ({where}): "
                                            "the data of the values read add up to more than the hive "
                                            "holds: values listed again or sharing data cells (damage)",
                                            None, at)
            elif rs[i] == RF_E_CORRUPT:     # a zeroed list entry: cell offset 0 is the first hbin's header
                raise error_from_status(RF_E_CORRUPT, "vk at 0x1000: a value list entry of 0 "
                                        "is not the start of a cell", None, 0x1000)
            raise error_from_status(rs[i], f"value {names[i]!r} is unreadable")
    return 0


# ---------------------------------------------------------------------------
# scan
# ---------------------------------------------------------------------------

@cython.auto_pickle(False)
cdef class _ProgressCtx:
    cdef object fn
    cdef object error

    def __reduce__(self):
        raise TypeError("cannot pickle or copy a _ProgressCtx (scan() internals)")


cdef int _progress_cb(void *ctx, uint64_t done, uint64_t total) noexcept nogil:
    with gil:
        pc = <_ProgressCtx>ctx
        try:
            if pc.fn(done, total) is False:
                pc.error = KeyboardInterrupt("scan cancelled by the progress callback")
                return 1
        except BaseException as e:
            pc.error = e
            return 1
    return 0


cdef int _check_value_data(rf_hive *h, rf_value v, size_t n) except -1:
    """Reads one value's data alone (assembling big data) so that its own error,
    with its own offset, is the one raised."""
    cdef bytearray buf = bytearray(n)
    cdef char *dst = buf
    cdef const uint8_t *p
    cdef size_t got
    check(rf_value_read(h, v, dst, n, &p, &got))
    return 0


# ---- names and paths straight from the stored bytes --------------------------
#
# A table's names are (offset, length) pairs into the mapping: Latin-1 when
# bit 31 of the length is clear, UTF-16LE when it is set. name_str() decodes
# one through CPython's codecs; here a name is first measured (its length in
# characters and its widest character), then written straight into the
# storage of a str made by PyUnicode_New, or at the end of its parent's path.
# The output is identical to name_str(): UTF-16 is decoded as CPython's
# decoder does with "surrogatepass" (a high surrogate followed by a low one is
# one astral character, any other surrogate is kept as a lone code point).

cdef struct _Name:
    const uint8_t *p
    uint32_t nbytes
    bint utf16
    bint pairs          # UTF-16 holding surrogate pairs (then the str is UCS-4)
    Py_ssize_t nchars
    Py_UCS4 maxchar     # 0x7F / 0xFF / 0xFFFF class bound, or exact with surrogates


cdef inline bint _is_high(uint16_t c) noexcept nogil:
    return 0xD800 <= c < 0xDC00


cdef inline bint _is_low(uint16_t c) noexcept nogil:
    return 0xDC00 <= c < 0xE000


cdef int _measure(_Name *nm, const uint8_t *mapping, uint64_t off, uint32_t raw) except -1:
    """Fills nm for the name column entry (off, raw)."""
    cdef size_t i, n
    cdef uint32_t bits = 0
    cdef uint16_t c, sur = 0
    cdef uint32_t cp, mx = 0
    cdef Py_ssize_t nchars = 0
    cdef rf_name bad
    cdef uint16_t ubits = 0
    nm.p = mapping + off
    nm.nbytes = raw & ~(<uint32_t>RF_NAME_UTF16_BIT)
    nm.utf16 = (raw & RF_NAME_UTF16_BIT) != 0
    nm.pairs = False
    if not nm.utf16:
        nm.nchars = nm.nbytes
        nm.maxchar = 0x7F if rf_bytes_or(nm.p, nm.nbytes) < 0x80 else 0xFF
        return 0
    if nm.nbytes & 1:
        # the scan never stores one (it marks the row), but keep name_str's error
        bad.ptr = nm.p
        bad.nbytes = nm.nbytes
        bad.utf16 = 1
        name_str(&bad)
        return -1
    n = nm.nbytes >> 1
    # the OR of the units, 8 at a time: below 0xD800 no unit is a surrogate
    rf_u16_scan(nm.p, n, 0, &ubits)
    if ubits < 0xD800:
        nm.nchars = n
        nm.maxchar = 0x7F if ubits < 0x80 else (0xFF if ubits < 0x100 else 0xFFFF)
        return 0
    for i in range(n):
        c = u16_at(nm.p, i)
        bits |= c
        sur |= (c & 0xF800) == 0xD800
    nm.nchars = n
    if not sur:
        # the OR of the units bounds the widest one's class exactly: bit 7 or a
        # bit above 7 set means some unit is at least 0x80 or 0x100
        nm.maxchar = 0x7F if bits < 0x80 else (0xFF if bits < 0x100 else 0xFFFF)
        return 0
    i = 0
    while i < n:
        c = u16_at(nm.p, i)
        if _is_high(c) and i + 1 < n and _is_low(u16_at(nm.p, i + 1)):
            cp = 0x10000 + ((<uint32_t>(c - 0xD800)) << 10) + (u16_at(nm.p, i + 1) - 0xDC00)
            nm.pairs = True
            i += 2
        else:
            cp = c
            i += 1
        if cp > mx:
            mx = cp
        nchars += 1
    nm.nchars = nchars
    nm.maxchar = mx
    return 0


cdef void _write(const _Name *nm, void *dst, int kind, Py_ssize_t at) noexcept nogil:
    """Writes nm's characters at index `at` of str storage of `kind` (wide
    enough for nm.maxchar)."""
    cdef size_t i, j, n = nm.nbytes
    cdef const uint8_t *p = nm.p
    cdef uint8_t *d1 = <uint8_t *>dst + at
    cdef uint16_t *d2 = <uint16_t *>dst + at
    cdef uint32_t *d4 = <uint32_t *>dst + at
    cdef uint16_t c
    if not nm.utf16:
        if kind == 1:
            memcpy(d1, p, n)
        elif kind == 2:
            for i in range(n):
                d2[i] = p[i]
        else:
            for i in range(n):
                d4[i] = p[i]
        return
    n >>= 1
    if kind == 1:                       # every unit is below 0x100
        rf_u16_narrow(d1, p, n)
    elif kind == 2:                     # no pairs (a pair makes the str UCS-4)
        for i in range(n):
            d2[i] = u16_at(p, i)
    elif not nm.pairs:
        for i in range(n):
            d4[i] = u16_at(p, i)
    else:
        i = 0
        j = 0
        while i < n:
            c = u16_at(p, i)
            if _is_high(c) and i + 1 < n and _is_low(u16_at(p, i + 1)):
                d4[j] = 0x10000 + ((<uint32_t>(c - 0xD800)) << 10) + (u16_at(p, i + 1) - 0xDC00)
                i += 2
            else:
                d4[j] = c
                i += 1
            j += 1


cdef inline str _name_obj(const _Name *nm):
    cdef str s = PyUnicode_New(nm.nchars, nm.maxchar)
    if nm.nchars:
        _write(nm, PyUnicode_DATA(s), PyUnicode_KIND(s), 0)
    return s


cdef inline void _put(void *dst, int kind, Py_ssize_t at, Py_UCS4 ch) noexcept nogil:
    if kind == 1:
        (<uint8_t *>dst)[at] = <uint8_t>ch
    elif kind == 2:
        (<uint16_t *>dst)[at] = <uint16_t>ch
    else:
        (<uint32_t *>dst)[at] = ch


cdef void _copy_str(void *dst, int dkind, const void *src, int skind, Py_ssize_t n) noexcept nogil:
    """Copies n characters of str storage, widening when dkind > skind."""
    cdef Py_ssize_t i
    if dkind == skind:
        memcpy(dst, src, n * dkind)
    elif skind == 1 and dkind == 2:
        for i in range(n):
            (<uint16_t *>dst)[i] = (<const uint8_t *>src)[i]
    elif skind == 1:
        for i in range(n):
            (<uint32_t *>dst)[i] = (<const uint8_t *>src)[i]
    else:
        for i in range(n):
            (<uint32_t *>dst)[i] = (<const uint16_t *>src)[i]


cdef inline int _in_mapping(uint64_t off, uint32_t raw, size_t map_len) except -1:
    """A name column entry lies in the mapping. The columns are read-only and
    the C scan bounded every entry by its cell, so this fails only when a
    column was made writable and changed: cheap insurance at the point of use."""
    cdef uint64_t n = raw & ~(<uint32_t>RF_NAME_UTF16_BIT)
    if n == 0:
        # an error row's empty name: its token (and so `off`) may be anything
        return 0
    if off > map_len or n > map_len - off:
        raise error_from_status(RF_E_CORRUPT, f"name column entry (0x{off:x}, {n}) runs past the "
                                f"0x{map_len:x}-byte hive")
    return 0


cdef str _child_path(object parent, const _Name *nm):
    """parent + '\\' + the measured name, written into one PyUnicode_New of
    the widest class of the two: no str per name, no formatting (~550 ns a
    key before, see _Name)."""
    cdef Py_ssize_t plen = PyUnicode_GET_LENGTH(parent)
    cdef Py_UCS4 mx = PyUnicode_MAX_CHAR_VALUE(parent)   # the parent's class (0x7F/0xFF/0xFFFF/0x10FFFF)
    if nm.maxchar > mx:
        mx = nm.maxchar
    cdef str s = PyUnicode_New(plen + 1 + nm.nchars, mx)
    cdef int kind = PyUnicode_KIND(s)
    cdef void *dst = PyUnicode_DATA(s)
    _copy_str(dst, kind, PyUnicode_DATA(parent), PyUnicode_KIND(parent), plen)
    _put(dst, kind, plen, 0x5C)         # '\\'
    _write(nm, dst, kind, plen + 1)
    return s


cdef enum:
    _WALK_AHEAD = 256   # rows whose names and paths Hive.walk makes ahead of the caller
    _VALUE_ROW_BYTES = 28   # a scan's value row (see ScanTable)

# Hive.walk holds its scan's value rows while it runs: up to this much (2.4
# million values; the 110 MB bench hive's 890k take 25 MB). A bigger hive's
# walk reads each key's values when asked, as before, instead of holding a
# quarter of the hive's size again for the length of the walk.
cdef uint64_t _WALK_VALUES_MAX_BYTES = 64 << 20


cdef list decode_names(const uint8_t *mapping, size_t map_len, cnp.ndarray tokens, uint64_t name_at,
                       cnp.ndarray lens):
    """The names of a name column as a list of str, each at file offset
    token + name_at (rf_scan); equal names mostly share one str (a real hive
    has a few hundred distinct value names for tens of thousands of rows:
    see _strcache.h)."""
    cdef Py_ssize_t i, n = tokens.shape[0]
    cdef uint32_t *tok = <uint32_t *>data_of(tokens)
    cdef uint32_t *l = <uint32_t *>data_of(lens)
    cdef uint64_t at
    cdef _Name nm
    cdef list out = _untracked([None] * n)
    cdef rf_str_cache cache
    cdef rf_str_slot *slot
    cdef PyObject *hit
    cdef uint32_t nbytes
    cdef str s
    if rf_strcache_init(&cache, n, NAME_CACHE_BYTES) < 0:
        raise MemoryError()
    try:
        for i in range(n):
            if i + PREFETCH_AHEAD < n:
                rf_prefetch(mapping + tok[i + PREFETCH_AHEAD] + name_at)
            nbytes = l[i] & ~(<uint32_t>RF_NAME_UTF16_BIT)
            if nbytes == 0:                     # a default value's name, or an error row's
                _set_none_item(out, i, "")
                continue
            at = tok[i] + name_at
            _in_mapping(at, l[i], map_len)
            slot = rf_strcache_slot(&cache, mapping + at, l[i], nbytes)
            if slot != NULL:
                hit = rf_strcache_hit(&cache, slot, mapping + at, l[i], nbytes)
                if hit != NULL:
                    _set_none_item(out, i, <object>hit)
                    continue
            _measure(&nm, mapping, at, l[i])
            s = _name_obj(&nm)
            _set_none_item(out, i, s)
            if slot != NULL:
                # a borrowed reference: `out` holds s until the function returns
                rf_strcache_put(slot, mapping + at, l[i], <PyObject *>s)
    finally:
        rf_strcache_free(&cache)
    return out


cdef cnp.ndarray _depths(cnp.ndarray parents):
    """key_depth from key_parent: rows come after their parent (pre-order;
    deleted rows parents first), so one pass suffices. A parent row that is
    not earlier (never written by scan()) counts as none: depth 0."""
    cdef Py_ssize_t i, n = parents.shape[0]
    cdef const int32_t *p = <const int32_t *>data_of(parents)
    cdef cnp.ndarray out = np.empty(n, dtype=np.uint32)
    cdef uint32_t *d = <uint32_t *>data_of(out)
    with nogil:
        for i in range(n):
            d[i] = d[p[i]] + 1 if 0 <= p[i] < i else 0
    return out


def _relisted(value_key, value_token):
    """ScanTable.value_relisted: rows whose (key row, vk token) pair an
    earlier row has (np.unique keeps the first of each)."""
    pair = (value_key.astype(np.int64).astype(np.uint64) << np.uint64(32)) | value_token.astype(np.uint64)
    out = np.ones(len(pair), dtype=np.bool_)
    out[np.unique(pair, return_index=True)[1]] = False
    out &= value_key >= 0                   # (a deleted row of no known key names no list)
    return out


cdef cnp.ndarray _tail_mask(Py_ssize_t n, Py_ssize_t live):
    """bool[n]: True from row `live` on."""
    cdef cnp.ndarray out = np.zeros(n, dtype=np.bool_)
    out[live:] = True
    return _locked(out)


cdef object _snapshot_sd_hash(rf_hive *h, rf_key k, bytearray buf):
    """The security hash a snapshot of the key records (rf_snapshot.c, the
    agent's): FNV-1a 64 of its owner + group + DACL, never 0; None when the
    descriptor does not read. `buf` is scratch, grown as needed."""
    cdef size_t need = 0
    cdef rf_status st = RF_E_MORE_DATA
    for _ in range(4):
        st = rf_key_get_security(h, k, RF_SI_OWNER | RF_SI_GROUP | RF_SI_DACL, <char *>buf, len(buf), &need, NULL)
        if st != RF_E_MORE_DATA:
            break
        buf.extend(bytes(need + 64 - len(buf)))
    if st != RF_OK:
        return None
    return rf_fnv1a64(<const char *>buf, need) | 1


@cython.auto_pickle(False)
cdef class ScanTable(_Rows):
    """A subtree as two column tables (see Hive.scan).

    Keys, depth-first, parents before children:
      ``key_token`` (uint32: the key's rf_key, its nk cell, whose file offset
      :meth:`Hive.token_offset` gives), ``key_parent`` (int32: row of the
      parent, -1 for the start key), ``key_last_write`` (FILETIME),
      ``key_status`` (0, or why its subkeys/values were skipped with
      errors="skip"), plus stored names via key_names().
    Values:
      ``value_key`` (int32: row of the owning key), ``value_type``,
      ``value_offset`` (uint32: into ``mapping``, or with bit 31 into
      ``arena``), ``value_length``, ``value_status``, ``value_token``
      (uint32), plus value_names().
    Those are the stored columns: 24 bytes a key row and 28 a value row. The
    rest follow from them and are made on first use (then kept): ``key_depth``,
    ``key_n_values``, ``key_deleted``, ``value_deleted``,
    ``value_malformed`` (bool: stored only when some row is malformed),
    ``value_relisted`` (bool: the key's list named the same vk before),
    ``key_name_off`` and ``value_name_off`` (file offsets of the stored
    names: a fixed distance from the token, see rf_scan).

    A value whose size does not fit its type (a REG_DWORD /
    REG_DWORD_BIG_ENDIAN not of 4 bytes, a REG_QWORD not of 8: real hives
    have them) has ``value_status`` 13 and ``value_malformed`` True; its data
    is still there (value_data(), decoded_values(), as Value.value decodes
    it). stats() counts such values as "malformed_values" (a vk its list
    names again once, as value_errors and the exports count it).

    The columns are read-only numpy arrays: offsets and lengths point into
    the mapping, and the decoders trust them.

    Deleted rows (scan(include_deleted=True)) come after the live rows and
    have ``*_deleted`` True; live rows have False. They are the records
    Hive.deleted() carves from free, unreferenced and slack space:
      * a deleted key's ``key_parent`` is the row of the key its nk names as
        parent — a live key, or a deleted key whose row comes earlier — and
        -1 when that key is unknown (then ``key_depth`` is 0 and its path in
        key_paths() is None: where it lived cannot be told);
        ``key_n_values`` counts the deleted value rows linked to it;
        ``key_status`` is 0.
      * a deleted value's ``value_key`` is the row of the deleted key whose
        (freed) value list still names it, else -1 (a value deleted from a
        key, or a list overwritten since). ``value_status`` says what its
        data is worth: 0 when it is inline, empty, or in space nothing live
        uses that fits it (likely intact; big data is assembled into the
        arena); 13 when a piece lies in a cell a live record uses (likely
        other data now: value_data() refuses it); 2 when it is lost (a piece
        is gone or too short, or its big data would take the deleted rows'
        arena past the file's size: records sharing their data).

    A hive whose data lies past 2 GiB (bit 31 of ``value_offset`` marks the
    arena; Windows writes no such hive) is refused by scan() (winerror
    0x20000004, RF_E_LIMIT): read it with Key/Value or Hive.deleted().
    """
    cdef readonly Hive hive
    cdef readonly cnp.ndarray key_token, key_parent, key_last_write, key_name_len, key_status
    cdef readonly cnp.ndarray value_key, value_token, value_name_len
    cdef readonly cnp.ndarray value_type, value_offset, value_length, value_status
    cdef readonly object root_path
    cdef object _malformed          # bool column, or None: no row is malformed
    cdef dict _made                 # the columns made from the stored ones, on first use
    cdef Py_ssize_t _live_keys, _live_values    # rows before the deleted ones
    cdef bint _walk_values          # Hive.walk's own scan, with its value rows (see _walk_keys)

    cdef int _filled(self) except -1:
        if self.hive is None or self.key_token is None or self.value_type is None:
            raise _not_initialised("ScanTable")
        return 0

    @property
    def n_keys(self):
        self._filled()
        return self.key_token.shape[0]

    @property
    def n_values(self):
        self._filled()
        return self.value_type.shape[0]

    cdef object _derived(self, str name):
        """A column made from the stored ones, once (the table never changes)."""
        self._filled()
        if self._made is None:
            self._made = {}
        col = self._made.get(name)
        if col is not None:
            return col
        if name == "key_depth":
            col = _depths(self.key_parent)
        elif name == "key_n_values":
            vk = self.value_key
            col = np.bincount(vk[vk >= 0], minlength=self.n_keys).astype(np.uint32)
        elif name == "key_deleted":
            col = _tail_mask(self.n_keys, self._live_keys)
        elif name == "value_deleted":
            col = _tail_mask(self.n_values, self._live_values)
        elif name == "value_malformed":
            col = np.zeros(self.n_values, dtype=np.bool_) if self._malformed is None else self._malformed
        elif name == "value_relisted":
            col = _relisted(self.value_key, self.value_token)
        elif name == "key_name_off":
            col = self.key_token.astype(np.uint64) + RF_SCAN_KEY_NAME_AT(0)
        else:                                           # value_name_off
            col = self.value_token.astype(np.uint64) + RF_SCAN_VALUE_NAME_AT(0)
        col = _locked(col)
        self._made[name] = col
        return col

    @property
    def key_depth(self):
        """uint32: 0 for the start key, the parent's depth + 1 below it (and
        0 for a deleted key whose parent is unknown). Made from key_parent on
        first use."""
        return self._derived("key_depth")

    @property
    def key_n_values(self):
        """uint32: how many value rows name each key (value_key)."""
        return self._derived("key_n_values")

    @property
    def key_deleted(self):
        """bool: True for the deleted rows (see above), which come last."""
        return self._derived("key_deleted")

    @property
    def value_deleted(self):
        """bool: True for the deleted rows (see above), which come last."""
        return self._derived("value_deleted")

    @property
    def value_malformed(self):
        """bool: True where status 13 means "size does not fit the type" (the
        data is there and decodes)."""
        return self._derived("value_malformed")

    @property
    def value_relisted(self):
        """bool: True on a value row whose key's list named the same vk in an
        earlier row (a damaged list): the same value again, not another one
        of its name. Exports write it once; diff compares it once."""
        return self._derived("value_relisted")

    @property
    def key_name_off(self):
        """uint64: file offset of each key's stored name (token + a constant)."""
        return self._derived("key_name_off")

    @property
    def value_name_off(self):
        """uint64: file offset of each value's stored name (token + a constant)."""
        return self._derived("value_name_off")

    def __repr__(self):
        if self.hive is None:
            return "<regfast.ScanTable (not initialised)>"
        return f"<regfast.ScanTable {self.n_keys} keys, {self.n_values} values>"

    def key_names(self):
        """Stored names of the keys, as a list of str.

        Like every whole-table list here, the result is not tracked by the
        cyclic garbage collector (nothing in it can form a cycle; see
        regfast's README, "Memory")."""
        self._filled()
        self._ready()
        return decode_names(self._map, self._map_len, self.key_token, RF_SCAN_KEY_NAME_AT(0),
                            self.key_name_len)

    def value_names(self):
        """Names of the values, as a list of str ("" for default values).

        Like every whole-table list here, the result is not tracked by the
        cyclic garbage collector (nothing in it can form a cycle; see
        regfast's README, "Memory")."""
        self._filled()
        self._ready()
        return decode_names(self._map, self._map_len, self.value_token, RF_SCAN_VALUE_NAME_AT(0),
                            self.value_name_len)

    def key_paths(self):
        """Full path of every key from the hive root, '\\'-separated.

        Like every whole-table list here, the result is not tracked by the
        cyclic garbage collector (nothing in it can form a cycle; see
        regfast's README, "Memory")."""
        # Each path is the parent's path (parents come first in pre-order),
        # a backslash and the stored name, written into one PyUnicode_New:
        # no str per name, no formatting (~550 ns a key before, see _Name).
        self._filled()
        self._ready()
        cdef Py_ssize_t i, n = self.key_token.shape[0]
        cdef int32_t *parent = <int32_t *>data_of(self.key_parent)
        cdef uint32_t *tok = <uint32_t *>data_of(self.key_token)
        cdef uint64_t name_at = RF_SCAN_KEY_NAME_AT(0), at
        cdef Py_ssize_t live = self._live_keys
        cdef uint32_t *ln = <uint32_t *>data_of(self.key_name_len)
        cdef list paths = _untracked([None] * n)
        cdef object pv
        cdef _Name nm
        for i in range(n):
            if i + PREFETCH_AHEAD < n:
                rf_prefetch(self._map + tok[i + PREFETCH_AHEAD] + name_at)
            if parent[i] < 0:
                # a deleted key whose parent is unknown has no known path
                if i < live:
                    paths[i] = self.root_path
                continue
            if parent[i] >= i:                  # not filled yet: no known path
                continue
            pv = paths[parent[i]]
            if pv is None:
                continue
            at = tok[i] + name_at
            _in_mapping(at, ln[i], self._map_len)
            _measure(&nm, self._map, at, ln[i])
            paths[i] = _name_obj(&nm) if PyUnicode_GET_LENGTH(pv) == 0 else _child_path(pv, &nm)
        return paths

    def _same_values(self, other, rows, other_rows):
        """For diff: a bool array, True where value row rows[i] of this table
        and row other_rows[i] of `other` have the same type, size and bytes.
        A row without data (a status other than 0, or 13 on a malformed
        row) is never the same as anything: diff leaves such rows out. The
        bytes are compared where they lie (mapping or arena), no copy, the
        GIL released: a whole hive's values in one call, not a memoryview
        and a Python compare each."""
        self._filled()                  # (an object from __new__: winerror 6 first)
        if not isinstance(other, ScanTable):
            raise TypeError(f"compares with a ScanTable, not {type(other).__name__}")
        cdef ScanTable b_table = <ScanTable>other
        b_table._filled()
        cdef cnp.ndarray ra = np.ascontiguousarray(rows, dtype=np.intp)
        cdef cnp.ndarray rb = np.ascontiguousarray(other_rows, dtype=np.intp)
        cdef Py_ssize_t n = ra.shape[0], i, a, b
        if rb.shape[0] != n:
            raise ValueError(f"{n} rows against {rb.shape[0]}")
        cdef Py_ssize_t na = self.value_type.shape[0], nb = b_table.value_type.shape[0]
        if n and not (0 <= ra.min() and ra.max() < na and 0 <= rb.min() and rb.max() < nb):
            raise IndexError("a value row past the table")
        cdef cnp.ndarray out = np.zeros(n, dtype=np.bool_)
        cdef cnp.ndarray mal_a = np.ascontiguousarray(self.value_malformed, dtype=np.uint8)
        cdef cnp.ndarray mal_b = np.ascontiguousarray(b_table.value_malformed, dtype=np.uint8)
        cdef const Py_ssize_t *pa = <const Py_ssize_t *>data_of(ra)
        cdef const Py_ssize_t *pb = <const Py_ssize_t *>data_of(rb)
        cdef uint8_t *res = <uint8_t *>data_of(out)
        cdef const uint32_t *ta = <const uint32_t *>data_of(self.value_type)
        cdef const uint32_t *tb = <const uint32_t *>data_of(b_table.value_type)
        cdef const uint32_t *la = <const uint32_t *>data_of(self.value_length)
        cdef const uint32_t *lb = <const uint32_t *>data_of(b_table.value_length)
        cdef const uint32_t *oa = <const uint32_t *>data_of(self.value_offset)
        cdef const uint32_t *ob = <const uint32_t *>data_of(b_table.value_offset)
        cdef const int32_t *sa = <const int32_t *>data_of(self.value_status)
        cdef const int32_t *sb = <const int32_t *>data_of(b_table.value_status)
        cdef const uint8_t *ma = <const uint8_t *>data_of(mal_a)
        cdef const uint8_t *mb = <const uint8_t *>data_of(mal_b)
        cdef const uint8_t *map_a = self._map
        cdef const uint8_t *map_b = b_table._map
        cdef const uint8_t *ar_a = self._arena
        cdef const uint8_t *ar_b = b_table._arena
        self._ready()                   # the bytes are read outside C: both files still whole
        b_table._ready()
        with nogil:
            for i in range(n):
                a, b = pa[i], pb[i]
                if ta[a] != tb[b] or la[a] != lb[b]:
                    continue
                if not ((sa[a] == 0 or (sa[a] == 13 and ma[a])) and (sb[b] == 0 or (sb[b] == 13 and mb[b]))):
                    continue
                res[i] = la[a] == 0 or memcmp(row_ptr(map_a, ar_a, off_at(NULL, oa, a)),
                                              row_ptr(map_b, ar_b, off_at(NULL, ob, b)), la[a]) == 0
        return out

    def _key_meta(self):
        """(descriptors, hashes, classes, bad) for each live key row (deleted
        rows get None, None, ""): what diff compares besides names, values
        and times. Read through rf_key_security / rf_key_get_security /
        rf_key_class, each checked as Key.security_descriptor() and
        Key.class_name check them, once per sk cell (keys that share one
        share its objects):

        - the descriptor as stored (its SACL too);
        - the hash a snapshot of this key records (Key.snapshot(), the
          agent's: FNV-1a 64 of owner + group + DACL, never 0), so offline
          and live snapshots compare;
        - its class name ("" when it has none).

        A key whose descriptor or class cannot be read gets None in all
        three, and its row in `bad` (diff names it damaged). Needs the hive
        open."""
        self._filled()
        cdef rf_hive *h = self.hive.handle()
        cdef Py_ssize_t i, n = self.key_token.shape[0], live = self._live_keys
        cdef const uint32_t *tok = <const uint32_t *>data_of(self.key_token)
        cdef const uint8_t *sd
        cdef size_t sd_len
        cdef rf_name cls
        cdef rf_status st
        cdef list sds = _untracked([None] * n)
        cdef list hashes = _untracked([None] * n)
        cdef list classes = _untracked([""] * n)
        cdef list bad = []
        cdef dict by_cell = {}          # sk cell -> (descriptor, hash), or None: unreadable
        cdef object h_sd
        cdef bytearray buf = bytearray(4096)
        self._ready()                   # the copies below read the mapping outside C
        for i in range(live):
            st = rf_key_security(h, tok[i], &sd, &sd_len)
            got = None
            if st == RF_OK:
                got = by_cell.get(<size_t>sd, False)
                if got is False:
                    h_sd = _snapshot_sd_hash(h, tok[i], buf)
                    got = by_cell[<size_t>sd] = None if h_sd is None else \
                        (PyBytes_FromStringAndSize(<const char *>sd, <Py_ssize_t>sd_len), h_sd)
            if got is not None:
                st = rf_key_class(h, tok[i], &cls)
                if st == RF_OK and cls.nbytes:
                    try:
                        classes[i] = name_str(&cls)     # (a UTF-16 class of an odd length raises)
                    except OSError:
                        got = None
                elif st != RF_OK:
                    got = None
            if got is None:
                rf_clear_error()
                classes[i] = None
                bad.append(i)
                continue
            sds[i], hashes[i] = got
        return sds, hashes, classes, bad

    def _walk_keys(self):
        """The keys of this table as Key objects, in its order, each knowing
        its name, path and last-write time (what Hive.walk yields).

        When the table is Hive.walk's own scan with its value rows
        (_walk_values: made by scan(walk=True) alone, whose rows keep big data
        in place and offsets plain, as Key._walk_value_list reads them),
        each Key answers values() from its rows until the walk ends (a
        _WalkValues). A key's value rows follow each other, in key order,
        so one cursor finds them. A key with a status (its value list was
        damaged; with errors="skip", also its subkeys) reads its values
        itself, which raises if they are damaged, as it always did.

        Names are made a few hundred rows ahead of the caller, not all up
        front: a name made just before its Key is used is still in the cache
        (all up front, a third of a Key walk went to cache misses on strings
        made long before). Paths are not made at all until asked for: each
        Key links to its parent (Key._up), whose path its own extends
        (_path_from_parents). Only the current key's ancestors are kept (a
        stack by depth: in pre-order, a key's parent is the last key one
        level up)."""
        self._filled()
        cdef Hive hive = self.hive
        cdef Py_ssize_t n = self.key_token.shape[0], i = 0, j, end, d
        cdef uint32_t *tok = <uint32_t *>data_of(self.key_token)
        cdef int32_t *parent = <int32_t *>data_of(self.key_parent)
        cdef cnp.ndarray depths = self.key_depth
        cdef uint32_t *depth = <uint32_t *>data_of(depths)
        cdef uint64_t *lw = <uint64_t *>data_of(self.key_last_write)
        cdef uint64_t name_at = RF_SCAN_KEY_NAME_AT(0), at
        cdef uint32_t *ln = <uint32_t *>data_of(self.key_name_len)
        cdef const int32_t *kstatus = <const int32_t *>data_of(self.key_status)
        cdef list stack = []            # the last Key seen at each depth
        cdef list rows = []             # and its row
        cdef list names = [None] * _WALK_AHEAD
        cdef list all_paths = None      # (only if the table were not in pre-order)
        cdef _Name nm
        cdef Key key
        cdef _WalkValues wv = None
        cdef Py_ssize_t v = 0, v0, nv = 0
        cdef const uint32_t *vkey = NULL
        if self._walk_values:
            wv = _WalkValues.__new__(_WalkValues)
            wv.owner = self
            wv.token = <const uint32_t *>data_of(self.value_token)
            wv.name_len = <const uint32_t *>data_of(self.value_name_len)
            wv.type = <const uint32_t *>data_of(self.value_type)
            wv.offset = <const uint32_t *>data_of(self.value_offset)
            wv.length = <const uint32_t *>data_of(self.value_length)
            wv.status = <const int32_t *>data_of(self.value_status)
            vkey = <const uint32_t *>data_of(self.value_key)
            nv = self.value_key.shape[0]
        try:
            while i < n:
                end = i + _WALK_AHEAD if i + _WALK_AHEAD < n else n
                self._ready()               # the file still covers the mapping
                for j in range(i, end):
                    if j + PREFETCH_AHEAD < n:
                        rf_prefetch(self._map + tok[j + PREFETCH_AHEAD] + name_at)
                    at = tok[j] + name_at
                    _in_mapping(at, ln[j], self._map_len)
                    _measure(&nm, self._map, at, ln[j])
                    names[j - i] = _name_obj(&nm)
                for j in range(i, end):
                    # a walk of a hive closed meanwhile ends as every call on it
                    # does (winerror 6), not with keys that raise once used
                    hive.handle()
                    key = hive.make_key(tok[j], None)
                    key._name = names[j - i]
                    d = depth[j]
                    if all_paths is not None:
                        key._path = all_paths[j]
                    elif d == 0:
                        key._path = self.root_path
                    elif d <= len(stack) and rows[d - 1] == parent[j]:
                        key._up = stack[d - 1]
                    else:                   # not pre-order: fall back to every path at once
                        all_paths = self.key_paths()
                        key._path = all_paths[j]
                    if all_paths is None:
                        if d < len(stack):
                            stack[d] = key
                            rows[d] = j
                        else:
                            stack.append(key)
                            rows.append(j)
                    key._lw = lw[j]             # the scan read it: last_write needs no C call
                    key._has_lw = True
                    if wv is not None:
                        v0 = v
                        while v < nv and vkey[v] == <uint32_t>j:
                            v += 1
                        if kstatus[j] == 0:
                            key._wv = wv
                            key._vrow = v0
                            key._vn = v - v0
                    yield key
                i = end
        finally:
            if wv is not None:          # Keys kept past the walk read their values themselves
                wv.release()

    def value_data(self, Py_ssize_t i):
        """Row i's raw data as a memoryview (no copy)."""
        self._filled()
        if self.value_status[i] != 0 and not (self._malformed is not None and self._malformed[i]):
            raise error_from_status(int(self.value_status[i]), f"value row {i} has no data")
        cdef uint32_t off = self.value_offset[i]
        return self._row_view(ARENA_BIT | (off & ~SCAN_ARENA_BIT) if off & SCAN_ARENA_BIT else off,
                              self.value_length[i])

    def decoded_values(self):
        """Decoded data of every value row (str/int/list/bytes; None on error
        rows, the only rows without data). Malformed rows decode as Value.value
        decodes them. The list and its REG_MULTI_SZ lists are not tracked by
        the cyclic garbage collector: a whole hive's values cost no
        collector pass (README, "Memory")."""
        self._filled()
        return self._decode_rows(self.value_type, self.value_status, self.value_offset,
                                 self.value_length, self._malformed, False)

    def stats(self):
        """Counts for a quick look: keys, values, per-type counts, data bytes, depth."""
        self._filled()
        types, counts = np.unique(self.value_type, return_counts=True)
        return {
            "keys": self.n_keys,
            "values": self.n_values,
            "max_depth": int(self.key_depth.max()) if self.n_keys else 0,
            "data_bytes": int(self.value_length.sum(dtype=np.uint64)),
            "types": {int(t): int(c) for t, c in zip(types, counts)},
            "key_errors": int(((self.key_status != 0) & ~self.key_deleted).sum()),
            # (a damaged vk its list names again is one error, as exports count it)
            "value_errors": int(((self.value_status != 0) & ~self.value_deleted & ~self.value_malformed
                                 & ~self.value_relisted).sum()),
            "malformed_values": int((self.value_malformed & ~self.value_deleted & ~self.value_relisted).sum()),
            "deleted_keys": int(self.key_deleted.sum()),
            "deleted_values": int(self.value_deleted.sum()),
        }

    def to_pandas(self, *, decode=True):
        """(keys, values) as two pandas DataFrames, with the types of
        :func:`regfast.scan_many` (see :mod:`regfast.arrow`): ``last_write``
        datetime64[ns, UTC] (NaT when out of range; ``last_write_raw`` keeps
        the FILETIME), ``type`` categorical, typed ``data_*`` columns. Values
        name their key by row (``key``) and by path (``key_path``). Needs
        pandas and pyarrow (the ``pandas`` extra)."""
        self._filled()
        from regfast.arrow import scan_table_to_arrow, to_pandas   # optional dependencies
        keys, values = scan_table_to_arrow(self, decode)
        return to_pandas(keys), to_pandas(values)

    def to_arrow(self, *, decode=True):
        """(keys, values) as two pyarrow Tables (pyarrow must be installed):
        :data:`regfast.arrow.KEY_SCHEMA` and :data:`regfast.arrow.VALUE_SCHEMA`,
        the column types of :func:`regfast.scan_many`. decode=False puts every
        value's raw bytes in ``data_bin`` instead of typed columns."""
        self._filled()
        from regfast.arrow import scan_table_to_arrow              # optional dependency
        return scan_table_to_arrow(self, decode)


def scan(Hive hive not None, path=None, values=True, errors="strict", progress=None,
         include_deleted=False, walk=False):
    """Implementation of Hive.scan (see its docstring). walk=True (Hive.walk
    only: its table is not a scan() table): the walk's scan, whose value rows
    serve its keys' values() (see _walk_keys). A damaged value is a row
    status, not a failure (that key's values() raises it), and big data
    stays where it is (read by its Value). Its value rows are left out
    (keys only, each key read by its values()) when `values` is False, when
    they would take more than _WALK_VALUES_MAX_BYTES, or when the hive
    lists more value rows than a scan holds (a damaged hive whose keys
    share value lists): a walk must not fail where a keys-only walk reads."""
    if errors not in ("strict", "skip"):
        raise ValueError("errors must be 'strict' or 'skip'")
    start = hive.root if path is None else hive.open(path)
    # The mapping stays while the scan reads it with the GIL released, even if
    # the hive is closed meanwhile (another thread, the progress callback):
    # the table then keeps it, like any table handed out before a close().
    cdef rf_hive *h = hive.pin()
    try:
        return _scan_pinned(hive, h, start, path, values, errors, progress, include_deleted, walk)
    finally:
        hive.unpin()


cdef ScanTable _scan_pinned(Hive hive, rf_hive *h, Key start, object path, bint values, str errors,
                            object progress, bint include_deleted, bint walk):
    cdef rf_key k = (<Key>start)._k
    cdef rf_hive_info info
    check(rf_hive_get_info(h, &info))
    # Healthy subtrees need at most nk_cells key rows and vk_cells value rows
    # (each key is visited once). A damaged hive can list more value rows than
    # it has vk signatures (a clobbered vk is still a listed row, or lists
    # share a vk): then the scan is redone with more room, up to a bound.
    if walk and values and <uint64_t>info.vk_cells * _VALUE_ROW_BYTES > _WALK_VALUES_MAX_BYTES:
        values = False          # a huge hive: the walk reads each key's values (bounded memory)
    cdef size_t kc = info.nk_cells, vc = info.vk_cells if values else 0
    cdef size_t vc_limit = max(vc, <size_t>info.cells_allocated) * 4 + 64
    cdef ScanTable t = ScanTable.__new__(ScanTable)
    t.hive = hive
    t.root_path = start.path
    cdef rf_scan s
    cdef _ProgressCtx pc = _ProgressCtx()
    cdef rf_status st
    cdef size_t starts[_N_SCAN_COLUMNS]
    cdef cnp.ndarray block
    while True:
        block = _scan_block(kc, vc, starts)
        _bind_scan(&s, block, starts, kc, vc, values, errors, progress, pc)
        if walk:
            s.flags |= RF_SCAN_SKIP_VALUE_ERRORS
        with nogil:
            st = rf_hive_scan(h, k, &s)
        if pc.error is not None:
            raise pc.error
        if st == RF_E_MORE_DATA and vc < vc_limit:   # value rows ran out (keys cannot: one row per nk)
            vc = min(vc * 2 + 64, vc_limit)
            continue
        if st == RF_E_MORE_DATA and walk and values:
            values, vc = False, 0           # the walk reads such keys' values one by one
            continue
        break
    if st == RF_E_MORE_DATA:
        raise error_from_status(RF_E_CORRUPT, f"scan found more records than the hive can hold "
                                f"({s.n_keys} keys, {s.n_values} values)")
    check(st)
    cdef size_t nk = s.n_keys, nv = s.n_values
    cdef tuple d = _SCAN_DESCRS
    t.key_token, t.key_parent = _column(block, starts[0], nk, d[0]), _column(block, starts[1], nk, d[1])
    t.key_last_write, t.key_name_len = _column(block, starts[2], nk, d[2]), _column(block, starts[3], nk, d[3])
    t.key_status = _column(block, starts[4], nk, d[4])
    t.value_key, t.value_token = _column(block, starts[5], nv, d[5]), _column(block, starts[6], nv, d[6])
    t.value_name_len, t.value_type = _column(block, starts[7], nv, d[7]), _column(block, starts[8], nv, d[8])
    t.value_offset, t.value_length = _column(block, starts[9], nv, d[9]), _column(block, starts[10], nv, d[10])
    t.value_status = _column(block, starts[11], nv, d[11])
    if progress is not None:
        progress(s.n_keys, s.n_keys)

    # Big-data values are not contiguous in the file: assemble them into one arena.
    arena = None
    cdef const uint8_t *p
    cdef size_t got, pos = 0, i
    cdef uint32_t *voff = <uint32_t *>data_of(t.value_offset)
    cdef int32_t *vst = <int32_t *>data_of(t.value_status)
    cdef uint32_t *vtok = <uint32_t *>data_of(t.value_token)
    cdef uint32_t *vlen = <uint32_t *>data_of(t.value_length)
    cdef uint8_t *dst
    cdef const uint8_t *mbase
    cdef size_t mlen
    check(rf_hive_mapping(h, &mbase, &mlen))
    if walk:                            # no arena, no malformed marks: Values do their own
        t._live_keys, t._live_values = nk, nv
        t._walk_values = values
        t._bind(hive, mbase, mlen, None)
        return t
    if mlen > SCAN_ARENA_BIT and nv and int(t.value_offset.max()) & SCAN_ARENA_BIT:
        # Windows writes no such hive (bit 31 of a cell index marks volatile
        # storage), and the 32-bit column keeps that bit for the arena
        raise error_from_status(RF_E_LIMIT, f"the hive's data reaches past 2 GiB (0x{mlen:x}-byte "
                                "mapping): scan() cannot hold its offsets; read it key by key")
    cdef Py_ssize_t n_big = 0
    with nogil:
        for i in range(nv):
            n_big += vst[i] == RF_E_MORE_DATA
    if n_big:       # (counted in C first: numpy's compare and nonzero were 1.8 us of a SAM's 6.2 us scan)
        big = np.flatnonzero(t.value_status == RF_E_MORE_DATA)
        # A value listed again is read once (its rows share the bytes). Past
        # that, healthy hives never share data cells, so the arena fits in the
        # file; more means values sharing segments (damage), and an arena the
        # file does not bound (one 200 KB value listed 20,000 times in a
        # 0.9 MB hive asked for 3.7 GiB): those rows are corrupt.
        first, order, total = {}, [], 0
        for i in big:
            if vtok[i] in first:
                continue
            if total + vlen[i] > mlen or total + vlen[i] > SCAN_ARENA_BIT:
                where, at = _vk_at(h, vtok[i])
                msg = (f"{where}: with its {vlen[i]:,} bytes the big data of the values "
                       f"read add up to more than the hive's {mlen:,} bytes: values share data cells (damage)")
                if errors == "strict":
                    raise error_from_status(RF_E_CORRUPT, msg, None, at)
                vst[i] = RF_E_CORRUPT
                continue
            first[vtok[i]] = i
            order.append(i)
            total += vlen[i]
        arena = np.empty(total, dtype=np.uint8)
        dst = <uint8_t *>data_of(arena)
        for i in order:
            with nogil:
                st = rf_value_read(h, vtok[i], dst + pos, vlen[i], &p, &got)
            if st != RF_OK:
                if errors == "strict":
                    check(st)
                vst[i] = st
                continue
            voff[i] = SCAN_ARENA_BIT | pos
            vst[i] = 0
            pos += got
        for i in big:                                   # the rows of a value listed again
            if vst[i] == RF_E_MORE_DATA and vtok[i] in first:
                voff[i], vst[i] = voff[first[vtok[i]]], vst[first[vtok[i]]]
    t._live_keys, t._live_values = nk, nv
    if include_deleted:
        arena = _append_deleted(t, hive, h, mbase, mlen, path is None, values, arena)
    cdef Py_ssize_t nv_all = t.n_values
    cdef uint32_t *mt = <uint32_t *>data_of(t.value_type)
    cdef int32_t *ms = <int32_t *>data_of(t.value_status)
    cdef uint32_t *ml = <uint32_t *>data_of(t.value_length)
    cdef Py_ssize_t n_malformed
    cdef uint8_t *mm
    with nogil:
        n_malformed = <Py_ssize_t>rf_count_ill_sized(nv_all, mt, ms, ml)
    cdef cnp.ndarray mal
    if n_malformed:                     # (real hives have a few: most tables store no column)
        mal = np.empty(nv_all, dtype=np.bool_)
        mm = <uint8_t *>data_of(mal)
        with nogil:
            _mark_malformed(nv_all, mt, ms, ml, mm)
        t._malformed = _locked(mal)
    t.key_token, t.key_parent = _locked(t.key_token), _locked(t.key_parent)
    t.key_last_write, t.key_name_len = _locked(t.key_last_write), _locked(t.key_name_len)
    t.key_status = _locked(t.key_status)
    t.value_key, t.value_token = _locked(t.value_key), _locked(t.value_token)
    t.value_name_len, t.value_type = _locked(t.value_name_len), _locked(t.value_type)
    t.value_offset, t.value_length = _locked(t.value_offset), _locked(t.value_length)
    t.value_status = _locked(t.value_status)
    if arena is not None:
        arena = _locked(arena)
    t._bind(hive, mbase, mlen, arena)
    return t


cdef object _append_deleted(ScanTable t, Hive hive, rf_hive *h, const uint8_t *base, size_t base_len,
                            bint whole_hive, bint values, object arena):
    """Adds the records Hive.deleted() finds (rf_hive_deleted) as rows marked
    deleted (see ScanTable) and returns the arena, grown by the deleted big
    data it assembled. Only fields inside each record's area are read."""
    cdef size_t n = 0, i, got
    cdef rf_deleted *recs = deleted_records(hive, &n)
    cdef rf_status st
    cdef cnp.ndarray big_buf
    cdef uint8_t *dst
    cdef size_t ki
    try:
        t.hive.probe()                                  # the records are read outside C below
        for i in range(n):
            # the name, read below: inside the mapping, whatever the file
            # says since the open
            if (<const uint8_t *>recs[i].name.ptr < base
                    or recs[i].name.nbytes > base_len
                    or <size_t>(<const uint8_t *>recs[i].name.ptr - base) > base_len - recs[i].name.nbytes):
                raise error_from_status(RF_E_CORRUPT, f"deleted record at 0x{recs[i].offset:x} runs past "
                                        "the end of the hive (the file changed after it was opened?)",
                                        None, recs[i].offset)
        live = {tok: row for row, tok in enumerate(t.key_token.tolist())}
        live_depth = _depths(t.key_parent)
        keys = [i for i in range(n) if recs[i].kind == RF_DELETED_KEY]
        by_tok = {recs[i].token: i for i in keys}
        # parent of each deleted key: ("live", row), ("del", rec index) or None
        parent = {}
        for i in keys:
            p = recs[i].parent_token                      # as recorded: live, deleted or gone
            if p in live:
                parent[i] = ("live", live[p])
            elif p in by_tok and by_tok[p] != i:
                parent[i] = ("del", by_tok[p])
            else:
                parent[i] = None
        # depth through the chain of deleted parents (a cycle ends it: orphan)
        depth, anchored = {}, {}
        for i in keys:
            chain, seen, j2 = [], set(), i
            while j2 not in depth and j2 not in seen:
                seen.add(j2)
                chain.append(j2)
                ref = parent[j2]
                if ref is None or ref[0] == "live":
                    break
                j2 = ref[1]
            else:
                if j2 in seen:                              # a cycle: cut it here
                    parent[j2] = None
            for k in reversed(chain):
                ref = parent[k]
                if ref is None:
                    depth[k], anchored[k] = 0, False
                elif ref[0] == "live":
                    depth[k], anchored[k] = int(live_depth[ref[1]]) + 1, True
                else:
                    depth[k], anchored[k] = depth[ref[1]] + 1, anchored[ref[1]]
        # a subtree scan keeps only what hangs below its keys
        kept = [i for i in keys if whole_hive or anchored[i]]
        # parents first (a stable sort by depth keeps file order within a level)
        kept.sort(key=lambda k: depth[k])
        nk0 = t.n_keys
        row_of = {k: nk0 + r for r, k in enumerate(kept)}
        key_row_by_offset = {recs[k].offset: row_of[k] for k in kept}
        # values: linked through the deleted key whose (freed) value list names
        # them (rf_deleted.owner, found in C wherever that list still lies)
        vals = []
        if values:
            vals = [i for i in range(n) if recs[i].kind == RF_DELETED_VALUE
                    and (whole_hive or recs[i].owner in key_row_by_offset)]
        nk_add, nv_add = len(kept), len(vals)
        # key columns (key_depth, key_n_values: made from these on use)
        tok = np.empty(nk_add, np.uint32); par = np.empty(nk_add, np.int32)
        lw = np.empty(nk_add, np.uint64); nlen = np.empty(nk_add, np.uint32)
        for r, k in enumerate(kept):
            _check_name_at(&recs[k], base, RF_SCAN_KEY_NAME_AT(recs[k].token))
            tok[r] = recs[k].token
            ref = parent[k]
            par[r] = -1 if ref is None else (ref[1] if ref[0] == "live" else row_of.get(ref[1], -1))
            lw[r] = recs[k].last_write
            nlen[r] = _name_len(&recs[k].name)
        # value columns; deleted big data is assembled after the scan's arena
        vkey = np.empty(nv_add, np.int32); vtok = np.empty(nv_add, np.uint32)
        vnlen = np.empty(nv_add, np.uint32)
        vtype = np.empty(nv_add, np.uint32); voff = np.empty(nv_add, np.uint32)
        vlen = np.empty(nv_add, np.uint32); vst = np.empty(nv_add, np.int32)
        arena_pos = 0 if arena is None else arena.shape[0]
        pieces = [] if arena is None else [arena]
        for r, k in enumerate(vals):
            _check_name_at(&recs[k], base, RF_SCAN_VALUE_NAME_AT(recs[k].token))
            vtok[r] = recs[k].token
            row = key_row_by_offset.get(recs[k].owner, -1) if recs[k].owner != RF_NO_OFFSET else -1
            vkey[r] = row
            vnlen[r] = _name_len(&recs[k].name)
            vtype[r] = recs[k].type
            state = recs[k].data_state
            voff[r], vlen[r], vst[r] = 0, recs[k].data_len, RF_E_NOT_FOUND
            if state == 0:                                  # no data
                voff[r], vlen[r], vst[r] = 0, 0, 0
            elif (state <= 3 and recs[k].data_flags & RF_VALUE_BIG_DATA
                    and arena_pos + recs[k].data_len <= min(base_len, SCAN_ARENA_BIT)):
                # (beyond that bound, records share data: lost, as a live
                # scan's big data that would outgrow the file is corrupt)
                ki = k
                big_buf = np.empty(recs[ki].data_len, np.uint8)
                dst = <uint8_t *>data_of(big_buf)
                with nogil:
                    st = rf_hive_deleted_read(h, recs[ki].offset, dst, recs[ki].data_len, &got)
                if st == RF_OK and got == recs[ki].data_len:
                    pieces.append(big_buf)
                    voff[r] = SCAN_ARENA_BIT | arena_pos
                    arena_pos += got
                    vst[r] = 0 if state <= 2 else RF_E_INVALID_DATA
            elif state <= 3 and recs[k].data_offset != RF_NO_OFFSET \
                    and recs[k].data_offset + recs[k].data_len <= base_len:
                if recs[k].data_offset >= SCAN_ARENA_BIT:
                    # bit 31 marks the arena in this column (see SCAN_ARENA_BIT)
                    raise error_from_status(RF_E_LIMIT, f"deleted value at 0x{recs[k].offset:x}: its data "
                                            f"lies at 0x{recs[k].data_offset:x}, past the 2 GiB a scan "
                                            "column holds; Hive.deleted() reads it", None, recs[k].offset)
                voff[r] = recs[k].data_offset
                vst[r] = 0 if state <= 2 else RF_E_INVALID_DATA
        if len(pieces) > (0 if arena is None else 1):
            arena = np.concatenate(pieces)
        t.key_token = np.concatenate([t.key_token, tok])
        t.key_parent = np.concatenate([t.key_parent, par])
        t.key_last_write = np.concatenate([t.key_last_write, lw])
        t.key_name_len = np.concatenate([t.key_name_len, nlen])
        t.key_status = np.concatenate([t.key_status, np.zeros(nk_add, np.int32)])
        t.value_key = np.concatenate([t.value_key, vkey])
        t.value_token = np.concatenate([t.value_token, vtok])
        t.value_name_len = np.concatenate([t.value_name_len, vnlen])
        t.value_type = np.concatenate([t.value_type, vtype])
        t.value_offset = np.concatenate([t.value_offset, voff])
        t.value_length = np.concatenate([t.value_length, vlen])
        t.value_status = np.concatenate([t.value_status, vst])
    finally:
        free(recs)
    return arena


cdef int _check_name_at(const rf_deleted *rec, const uint8_t *base, uint64_t name_at) except -1:
    """A deleted record fits the table's 32-bit columns, and its name lies
    where its token says (the table keeps no name offsets: see rf_scan).
    Past 4 GiB of hbins (a tolerant open of a bigger file) a token cannot
    hold it, and the scan refuses, as for live data there; rf_hive_deleted()
    finds records at their cell, so a name elsewhere is a bug, not damage."""
    if rec.token > 0xFFFFFFFFu:
        raise error_from_status(RF_E_LIMIT, f"deleted record at 0x{rec.offset:x}: past the 4 GiB of "
                                "hbins a scan's token column holds; Hive.deleted() lists it",
                                None, rec.offset)
    if <uint64_t>(<const uint8_t *>rec.name.ptr - base) != name_at:
        raise SystemError(f"deleted record at 0x{rec.offset:x}: its name is at "
                          f"0x{<uint64_t>(<const uint8_t *>rec.name.ptr - base):x}, not 0x{name_at:x}")
    return 0


cdef uint32_t _name_len(const rf_name *nm) noexcept:
    """A name column entry; a deleted UTF-16 name of odd length loses its stray
    last byte, so that it still decodes."""
    if nm.utf16:
        return (nm.nbytes & ~(<uint32_t>1)) | RF_NAME_UTF16_BIT
    return nm.nbytes


cdef tuple _SCAN_COLUMNS = (
    ("key_token", np.uint32, 0), ("key_parent", np.int32, 0), ("key_last_write", np.uint64, 0),
    ("key_name_len", np.uint32, 0), ("key_status", np.int32, 0),
    # value_key is a row number (uint32 in C, below 2**31: a key takes 80
    # bytes of a file under 4 GiB); int32 leaves room for the -1 of deleted
    # values without a known key, at no cost
    ("value_key", np.int32, 1), ("value_token", np.uint32, 1), ("value_name_len", np.uint32, 1),
    ("value_type", np.uint32, 1), ("value_offset", np.uint32, 1), ("value_length", np.uint32, 1),
    ("value_status", np.int32, 1))
cdef tuple _SCAN_DESCRS = tuple(np.dtype(dt) for _, dt, _ in _SCAN_COLUMNS)

cdef enum:
    _N_SCAN_COLUMNS = 12


cdef extern from "numpy/arrayobject.h":
    # (not in numpy's Cython declarations: it steals a reference to descr)
    object PyArray_NewFromDescr(void *subtype, cnp.dtype descr, int nd, cnp.npy_intp *dims,
                                cnp.npy_intp *strides, void *data, int flags, void *obj)


cdef cnp.ndarray _column(cnp.ndarray block, size_t start, size_t n, cnp.dtype descr):
    """n items of `descr` at byte `start` of `block`, a view of it made with
    the C API: the 16 columns a scan had cost ~50 us a table as Python
    slices and .view() calls, most of a small hive's scan."""
    cdef cnp.npy_intp dims[1]
    dims[0] = <cnp.npy_intp>n
    Py_INCREF(descr)                    # PyArray_NewFromDescr steals it
    cdef cnp.ndarray arr = PyArray_NewFromDescr(<void *>np.ndarray, descr, 1, dims, NULL,
                                                <char *>data_of(block) + start, cnp.NPY_ARRAY_CARRAY, NULL)
    cnp.set_array_base(arr, block)
    return arr


cdef cnp.ndarray _scan_block(size_t kc, size_t vc, size_t *starts):
    """One allocation for the scan's 12 columns (`starts`: where each begins,
    64-byte aligned). Separate arrays of fresh memory cost twice as much on a
    big hive (measured with 16 columns: 27 ms vs 14 ms to allocate and fill
    the columns of 280k keys and 890k values): each is mapped and
    page-faulted on its own, in 4 KiB pages, while one block of ~30 MB gets
    the huge pages numpy asks the kernel for."""
    cdef size_t at = 0, nbytes
    cdef Py_ssize_t j
    cdef cnp.dtype d
    for j in range(_N_SCAN_COLUMNS):
        d = _SCAN_DESCRS[j]
        nbytes = (vc if _SCAN_COLUMNS[j][2] else kc) * <size_t>d.itemsize
        starts[j] = at
        at += (nbytes + 63) & ~(<size_t>63)
    return np.empty(max(at, 1), dtype=np.uint8)


cdef void _bind_scan(rf_scan *s, cnp.ndarray block, const size_t *starts, size_t kc, size_t vc, bint values,
                     str errors, object progress, _ProgressCtx pc) except *:
    cdef char *b = <char *>data_of(block)
    s.struct_size = sizeof(rf_scan)
    s.flags = (RF_SCAN_VALUES if values else 0) | (RF_SCAN_SKIP_ERRORS if errors == "skip" else 0)
    s.key_cap = kc                  # (the order of _SCAN_COLUMNS)
    s.key_token = <uint32_t *>(b + starts[0])
    s.key_parent = <int32_t *>(b + starts[1])
    s.key_last_write = <uint64_t *>(b + starts[2])
    s.key_name_len = <uint32_t *>(b + starts[3])
    s.key_status = <int32_t *>(b + starts[4])
    s.key_depth = NULL              # made from key_parent and value_key when asked
    s.key_n_values = NULL
    s.value_cap = vc
    s.value_key = <uint32_t *>(b + starts[5])
    s.value_token = <uint32_t *>(b + starts[6])
    s.value_name_len = <uint32_t *>(b + starts[7])
    s.value_type = <uint32_t *>(b + starts[8])
    s.value_offset = <uint32_t *>(b + starts[9])
    s.value_length = <uint32_t *>(b + starts[10])
    s.value_status = <int32_t *>(b + starts[11])
    s.progress = NULL
    s.progress_ctx = NULL
    if progress is not None:
        pc.fn = progress
        s.progress = _progress_cb
        s.progress_ctx = <void *>pc


# This module's copy of the core has its own hook slot (the static library is
# linked into each extension module): regfast._hooks installs the op log here
# through this capsule, so hooks and the profiler see this module's rf_* calls.
from cpython.pycapsule cimport PyCapsule_New as _PyCapsule_New
_rf_hook_set = _PyCapsule_New(<void *>rf_hook_set, b"regfast.rf_hook_set", NULL)


# Hive.scan/walk/get_many and Key.read_values (regfast._native, the layer
# below) hand their work to this module through these slots.
_bind_columns(scan, read_values)
