# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Arrow column buffers from a ScanTable's raw columns, built in C loops
with the GIL released: UTF-8 strings (key paths, names, REG_SZ...), int64
integers, raw binary and list<string> for REG_MULTI_SZ.

This module knows the registry's value types and Arrow's buffer layout, not
pyarrow: it returns numpy arrays (offsets, data, validity) that
regfast.arrow wraps with ``pa.Array.from_buffers`` without a copy. Nothing
here touches Python objects per row.

Decoding follows the binding's decoder (``_native.decode_data``, after
CPython's winreg): REG_SZ / REG_EXPAND_SZ end at the first NUL, REG_LINK is
taken whole, REG_MULTI_SZ drops its terminator and splits at NULs (empty
strings inside the list are kept), DWORD / DWORD_BIG_ENDIAN / QWORD are
integers, every other type is raw bytes. Where a value does not fit its type
the row gets status 13 (ERROR_INVALID_DATA), is still decoded the way
winreg reads such data, and its raw bytes go to the binary column too, so
nothing is lost:

* an integer type of the wrong size: the bytes present are copied into a
  zeroed buffer of the type's width (4 or 8 bytes) which is then read
  (winreg reads 0 for an empty REG_DWORD; a longer value keeps its first 4/8
  bytes);
* a string of odd byte length: the stray last byte is ignored (as winreg);
* a string with a lone UTF-16 surrogate, which UTF-8 cannot carry: U+FFFD
  stands in for it.

A name (key or value) with a lone surrogate gets U+FFFD too; its exact form
is in ScanTable.key_names() / value_names() (str with surrogates).
"""
cimport numpy as cnp
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memchr, memcpy, memset

import numpy as np

cnp.import_array()

cdef extern from "regfast/_text.h":
    size_t rf_u16_scan(const uint8_t *p, size_t n, int stop_at_nul, uint16_t *bits_out) noexcept nogil
    void rf_u16_narrow(uint8_t *dst, const uint8_t *p, size_t n) noexcept nogil

cdef extern from "regfast/regfast.h":
    uint32_t RF_NAME_UTF16_BIT
    uint64_t RF_SCAN_KEY_NAME_AT(uint64_t token)
    uint64_t RF_SCAN_VALUE_NAME_AT(uint64_t token)

# A scan table's value_offset: bit 31 set, an offset into its arena (see
# regfast._bulk.SCAN_ARENA_BIT); clear, into the mapping.
cdef uint32_t SCAN_ARENA_BIT = 0x80000000u
# the file offset of a row's stored name is its token plus this (rf_scan)
cdef uint64_t _KEY_NAME_AT = RF_SCAN_KEY_NAME_AT(0)
KEY_NAME_AT = _KEY_NAME_AT
VALUE_NAME_AT = RF_SCAN_VALUE_NAME_AT(0)

# value types (winnt.h)
cdef enum:
    T_SZ = 1
    T_EXPAND_SZ = 2
    T_DWORD = 4
    T_DWORD_BE = 5
    T_LINK = 6
    T_MULTI_SZ = 7
    T_QWORD = 11

# what the data of a row turns into
cdef enum:
    K_NONE = 0          # no data (key-only row, or a row with a status)
    K_STR = 1
    K_INT = 2
    K_BIN = 3
    K_MULTI = 4

# Win32 codes a row can get here; a value too big for one Arrow batch (int32
# offsets) gets ERROR_NOT_ENOUGH_MEMORY and its data is not read (1 GiB: the
# UTF-8 of a string can be 1.5x its UTF-16, and int32 offsets end at 2 GiB)
cdef enum:
    ERROR_INVALID_DATA = 13
    ERROR_NOT_ENOUGH_MEMORY = 8
cdef uint32_t MAX_ROW_BYTES = 1 << 30

INVALID_DATA = ERROR_INVALID_DATA
NOT_ENOUGH_MEMORY = ERROR_NOT_ENOUGH_MEMORY
MAX_ROW = MAX_ROW_BYTES


cdef inline const uint8_t *_ptr(const uint8_t *m, const uint8_t *arena, uint32_t off) noexcept nogil:
    if off & SCAN_ARENA_BIT:
        return arena + (off & ~SCAN_ARENA_BIT)
    return m + off


cdef inline uint32_t _u16(const uint8_t *p, size_t i) noexcept nogil:
    return p[2 * i] | (<uint32_t>p[2 * i + 1] << 8)


cdef size_t _u16_to_u8(const uint8_t *p, size_t units, uint8_t *d, bint *lossy) noexcept nogil:
    """UTF-16LE to UTF-8 (at most 3 bytes a unit); a lone surrogate becomes
    U+FFFD and sets *lossy. Returns the bytes written."""
    cdef uint16_t bits
    rf_u16_scan(p, units, 0, &bits)
    return _u16_bits_to_u8(p, units, bits, d, lossy)


cdef size_t _u16_bits_to_u8(const uint8_t *p, size_t units, uint16_t bits, uint8_t *d,
                            bint *lossy) noexcept nogil:
    """_u16_to_u8 of units whose OR (rf_u16_scan) is `bits`."""
    cdef size_t i = 0, o = 0
    cdef uint32_t c, c2, cp
    if bits < 0x80:
        # ASCII (most registry text): narrowed 8 or 16 units at a time
        # (_text.h), not one at a time below (~40% of a small hive's Arrow columns)
        rf_u16_narrow(d, p, units)
        return units
    while i < units:
        c = _u16(p, i)
        if c < 0x80:
            d[o] = <uint8_t>c
            o += 1
        elif c < 0x800:
            d[o] = <uint8_t>(0xC0 | (c >> 6))
            d[o + 1] = <uint8_t>(0x80 | (c & 0x3F))
            o += 2
        elif c < 0xD800 or c > 0xDFFF:
            d[o] = <uint8_t>(0xE0 | (c >> 12))
            d[o + 1] = <uint8_t>(0x80 | ((c >> 6) & 0x3F))
            d[o + 2] = <uint8_t>(0x80 | (c & 0x3F))
            o += 3
        else:
            c2 = _u16(p, i + 1) if i + 1 < units else 0
            if c <= 0xDBFF and 0xDC00 <= c2 <= 0xDFFF:
                cp = 0x10000 + ((c - 0xD800) << 10) + (c2 - 0xDC00)
                d[o] = <uint8_t>(0xF0 | (cp >> 18))
                d[o + 1] = <uint8_t>(0x80 | ((cp >> 12) & 0x3F))
                d[o + 2] = <uint8_t>(0x80 | ((cp >> 6) & 0x3F))
                d[o + 3] = <uint8_t>(0x80 | (cp & 0x3F))
                o += 4
                i += 1
            else:
                d[o] = 0xEF
                d[o + 1] = 0xBF
                d[o + 2] = 0xBD
                o += 3
                lossy[0] = True
        i += 1
    return o


cdef inline size_t _latin1_to_u8(const uint8_t *p, size_t n, uint8_t *d) noexcept nogil:
    cdef size_t i, o = 0
    for i in range(n):
        if p[i] < 0x80:
            d[o] = p[i]
            o += 1
        else:
            d[o] = <uint8_t>(0xC0 | (p[i] >> 6))
            d[o + 1] = <uint8_t>(0x80 | (p[i] & 0x3F))
            o += 2
    return o


cdef inline size_t _name_bound(uint32_t ln) noexcept nogil:
    if ln & RF_NAME_UTF16_BIT:
        return ((ln & ~RF_NAME_UTF16_BIT) >> 1) * 3
    return <size_t>ln * 2


cdef inline size_t _name_u8(const uint8_t *m, uint64_t off, uint32_t ln, uint8_t *d) noexcept nogil:
    cdef bint lossy = False
    if ln & RF_NAME_UTF16_BIT:
        return _u16_to_u8(m + off, (ln & ~RF_NAME_UTF16_BIT) >> 1, d, &lossy)
    return _latin1_to_u8(m + off, ln, d)


cdef uint8_t _EMPTY[1]


cdef inline const uint8_t *_buf(object mv, Py_ssize_t *n) except NULL:
    """Pointer into a read-only buffer (the hive mapping, an arena) that the
    caller keeps alive; never NULL (memcpy of 0 bytes from NULL is undefined)."""
    cdef const uint8_t[::1] v = mv
    n[0] = v.shape[0]
    if v.shape[0] == 0:
        return _EMPTY
    return &v[0]


def _trim(cnp.ndarray a, Py_ssize_t n):
    """The first n items as an array of their own (drops an over-allocation).
    A copy, not a shrink in place (ndarray.resize): measured over whole
    table_batches and scan_many runs, a shrunk block stayed mapped and the
    next one came from fresh pages, ~9x the page faults and 4-10% slower,
    while a copy's source is freed at once and its pages reused."""
    if n == a.shape[0]:
        return a
    return a[:n].copy()


def names(mapping, const uint32_t[::1] token, uint64_t name_at, const uint32_t[::1] ln,
          const int64_t[::1] rows):
    """UTF-8 string buffers of the stored names of the rows ``rows`` (-1:
    null), each at file offset token + ``name_at`` (KEY_NAME_AT or
    VALUE_NAME_AT) with the length ``ln`` (a key_name_len or value_name_len
    column).
    Returns (offsets int32[n+1], data uint8, valid bool[n])."""
    cdef Py_ssize_t mlen
    cdef const uint8_t *m = _buf(mapping, &mlen)
    cdef Py_ssize_t i, n = rows.shape[0]
    cdef int64_t r
    cdef size_t bound = 0, o = 0
    for i in range(n):
        r = rows[i]
        if r >= 0:
            bound += _name_bound(ln[r])
    cdef cnp.ndarray offsets = np.empty(n + 1, np.int32)
    cdef cnp.ndarray data = np.empty(max(bound, 1), np.uint8)
    cdef cnp.ndarray valid = np.empty(n, np.bool_)
    cdef int32_t *po = <int32_t *>cnp.PyArray_DATA(offsets)
    cdef uint8_t *pd = <uint8_t *>cnp.PyArray_DATA(data)
    cdef uint8_t *pv = <uint8_t *>cnp.PyArray_DATA(valid)
    with nogil:
        for i in range(n):
            po[i] = <int32_t>o
            r = rows[i]
            pv[i] = r >= 0
            if r >= 0:
                o += _name_u8(m, token[r] + name_at, ln[r], pd + o)
        po[n] = <int32_t>o
    return offsets, _trim(data, o), valid


cdef inline uint64_t _bytes_hash(const uint8_t *p, size_t n) noexcept nogil:
    """A multiply-xorshift hash of n bytes, 8 at a time."""
    cdef uint64_t h = (n + 1) * <uint64_t>0x9E3779B97F4A7C15, w = 0
    cdef size_t i = 0
    while i + 8 <= n:
        memcpy(&w, p + i, 8)
        h = (h ^ w) * <uint64_t>0xFF51AFD7ED558CCD
        h ^= h >> 29
        i += 8
    if i < n:
        w = 0
        memcpy(&w, p + i, n - i)
        h = (h ^ w) * <uint64_t>0xFF51AFD7ED558CCD
        h ^= h >> 29
    return h


cdef inline uint64_t _path_hash(uint64_t parent, uint64_t name) noexcept nogil:
    cdef uint64_t h = (parent ^ (name * <uint64_t>0x9E3779B97F4A7C15)) * <uint64_t>0xC4CEB9FE1A85EC53
    return h ^ (h >> 32)


cdef bint _all_distinct(const uint64_t *h, const uint8_t *valid, Py_ssize_t n) noexcept nogil:
    """False when two valid rows have the same hash (maybe the same path: the
    caller then compares the strings), from an open-addressing set of them."""
    cdef size_t cap = 16, mask, j
    cdef Py_ssize_t i
    cdef uint64_t x
    while cap < <size_t>(2 * n):
        cap <<= 1
    mask = cap - 1
    cdef uint64_t *table = <uint64_t *>calloc(cap, sizeof(uint64_t))
    if table == NULL:
        return False                        # (no room to tell: the caller's slow path)
    cdef bint ok = True
    for i in range(n):
        if not valid[i]:
            continue
        x = h[i] | 1                        # 0 marks an empty slot
        j = <size_t>(x >> 17) & mask
        while table[j] != 0 and table[j] != x:
            j = (j + 1) & mask
        if table[j] == x:
            ok = False
            break
        table[j] = x
    free(table)
    return ok


def key_paths(mapping, const int32_t[::1] parent, const uint8_t[::1] deleted,
              const uint32_t[::1] token, const uint32_t[::1] name_len, bytes root):
    """Full UTF-8 path of every key row, by the rules of ScanTable.key_paths():
    parents come before children; the start key's path is ``root``; a deleted
    key whose parent is unknown (or comes later) has none.
    Returns (offsets int64[n+1], data uint8, valid bool[n], distinct): with
    `distinct` True, no two valid paths are equal. Deleted keys may share a
    live key's path (deleted, then made again), and a damaged hive's keys may
    too (two siblings of one name; a root child without a name has the root's
    path ""), so an Arrow dictionary of the paths must be made unique unless
    `distinct`. Each path's hash is its parent's mixed with its name's, so
    it costs a hash of each name and one set of n hashes; a name that is
    empty or holds a '\\' (two such decompositions may spell one path) makes
    the answer False, as does any equal hash (the caller compares strings)."""
    cdef Py_ssize_t mlen
    cdef const uint8_t *m = _buf(mapping, &mlen)
    cdef Py_ssize_t i, n = parent.shape[0]
    cdef int64_t p
    cdef const uint8_t *rp = root
    cdef size_t rlen = len(root)
    # names first (one buffer), then each path = parent's path + "\" + name
    cdef size_t bound = 0, o = 0, nl, pl
    for i in range(n):
        bound += _name_bound(name_len[i])
    cdef cnp.ndarray noff = np.empty(n + 1, np.int64)
    cdef cnp.ndarray ndata = np.empty(max(bound, 1), np.uint8)
    cdef int64_t *pno = <int64_t *>cnp.PyArray_DATA(noff)
    cdef uint8_t *pnd = <uint8_t *>cnp.PyArray_DATA(ndata)
    cdef cnp.ndarray plen = np.empty(n, np.int64)
    cdef int64_t *ppl = <int64_t *>cnp.PyArray_DATA(plen)
    cdef cnp.ndarray valid = np.zeros(n, np.bool_)
    cdef uint8_t *pv = <uint8_t *>cnp.PyArray_DATA(valid)
    cdef cnp.ndarray hashes = np.empty(n, np.uint64)
    cdef uint64_t *ph = <uint64_t *>cnp.PyArray_DATA(hashes)
    cdef uint64_t root_hash = _bytes_hash(rp, rlen)
    cdef bint plain = True                  # no valid name is empty or holds a '\'
    cdef bint distinct
    cdef size_t total = 0
    with nogil:
        for i in range(n):
            pno[i] = o
            o += _name_u8(m, token[i] + _KEY_NAME_AT, name_len[i], pnd + o)
        pno[n] = o
        for i in range(n):
            p = parent[i]
            ppl[i] = 0
            if p < 0:
                if not deleted[i]:
                    pv[i] = 1
                    ppl[i] = rlen
                    ph[i] = root_hash
            elif p < i and pv[p]:
                pv[i] = 1
                nl = pno[i + 1] - pno[i]
                ppl[i] = ppl[p] + 1 + nl if ppl[p] else nl
                ph[i] = _path_hash(ph[p], _bytes_hash(pnd + pno[i], nl))
                if plain and (nl == 0 or memchr(pnd + pno[i], 0x5C, nl) != NULL):
                    plain = False
            total += ppl[i]
        distinct = plain and _all_distinct(ph, pv, n)
    cdef cnp.ndarray offsets = np.empty(n + 1, np.int64)
    cdef cnp.ndarray data = np.empty(max(total, 1), np.uint8)
    cdef int64_t *po = <int64_t *>cnp.PyArray_DATA(offsets)
    cdef uint8_t *pd = <uint8_t *>cnp.PyArray_DATA(data)
    o = 0
    with nogil:
        for i in range(n):
            po[i] = o
            if not pv[i]:
                continue
            p = parent[i]
            if p < 0:
                memcpy(pd + o, rp, rlen)
                o += rlen
                continue
            nl = pno[i + 1] - pno[i]
            pl = ppl[p]
            if pl:
                memcpy(pd + o, pd + po[p], pl)
                pd[o + pl] = 0x5C                  # '\'
                o += pl + 1
            memcpy(pd + o, pnd + pno[i], nl)
            o += nl
        po[n] = o
    return offsets, data[:o] if o else data[:0], valid, bool(distinct)


def gather(const int64_t[::1] offsets, data, const uint8_t[::1] valid, const int64_t[::1] rows):
    """Strings of an (offsets int64, data, valid) column picked by ``rows``
    (-1: null), as a new column with int32 offsets."""
    cdef Py_ssize_t dlen
    cdef const uint8_t *src = _buf(data, &dlen)
    cdef Py_ssize_t i, n = rows.shape[0]
    cdef int64_t r
    cdef size_t total = 0, o = 0, k
    for i in range(n):
        r = rows[i]
        if r >= 0 and valid[r]:
            total += offsets[r + 1] - offsets[r]
    cdef cnp.ndarray out_off = np.empty(n + 1, np.int32)
    cdef cnp.ndarray out = np.empty(max(total, 1), np.uint8)
    cdef cnp.ndarray ok = np.empty(n, np.bool_)
    cdef int32_t *po = <int32_t *>cnp.PyArray_DATA(out_off)
    cdef uint8_t *pd = <uint8_t *>cnp.PyArray_DATA(out)
    cdef uint8_t *pv = <uint8_t *>cnp.PyArray_DATA(ok)
    with nogil:
        for i in range(n):
            po[i] = <int32_t>o
            r = rows[i]
            pv[i] = r >= 0 and valid[r]
            if pv[i]:
                k = offsets[r + 1] - offsets[r]
                memcpy(pd + o, src + offsets[r], k)
                o += k
        po[n] = <int32_t>o
    return out_off, out[:o] if o else out[:0], ok


def row_plan(const int32_t[::1] value_key, const int32_t[::1] key_status, Py_ssize_t n_keys):
    """(row_key, row_val) int64 of every output row when the scan's order
    holds: each value row names a key (>= 0) and value_key never goes down
    (values grouped by key, keys in order). A key's own row (value -1) comes
    before its values when it has none, or a status. None when the order
    does not hold (deleted values of no known key...): regfast.arrow then
    sorts the rows. One pass in place of a dozen numpy ones (~0.1 ms of a
    small hive's ~1 ms of Arrow columns)."""
    cdef Py_ssize_t nv = value_key.shape[0], k, v = 0, j, n = 0, o = 0
    cdef int32_t prev = 0
    if n_keys < 0 or key_status.shape[0] < n_keys:
        raise ValueError("key_status has fewer rows than n_keys")
    for j in range(nv):
        if value_key[j] < prev or value_key[j] >= n_keys:
            return None                             # (-1 included: < prev)
        prev = value_key[j]
    with nogil:                                     # count the rows first
        for k in range(n_keys):
            j = v
            while v < nv and value_key[v] == k:
                v += 1
            n += (v - j) + (1 if (v == j or key_status[k] != 0) else 0)
    cdef cnp.ndarray rk = np.empty(n, np.int64)
    cdef cnp.ndarray rv = np.empty(n, np.int64)
    cdef int64_t *pk = <int64_t *>cnp.PyArray_DATA(rk)
    cdef int64_t *pv = <int64_t *>cnp.PyArray_DATA(rv)
    v = 0
    with nogil:
        for k in range(n_keys):
            j = v
            while v < nv and value_key[v] == k:
                v += 1
            if v == j or key_status[k] != 0:
                pk[o] = k
                pv[o] = -1
                o += 1
            while j < v:
                pk[o] = k
                pv[o] = j
                o += 1
                j += 1
    return rk, rv


# FILETIME -> Unix microseconds: valid up to 9999-12-31 23:59:59.999999, which
# no timestamp type holds past (e.g. 0xFFFFFFFFFFFFFFFF); an invalid one
# gives the value of FILETIME 0, under a null
cdef int64_t _EPOCH_DIFF_US = 11_644_473_600LL * 1_000_000LL
cdef uint64_t _MAX_FILETIME = 2_650_467_743_999_999_990ULL


cdef inline bint _filetime_us(uint64_t ft, int64_t *us) noexcept nogil:
    if ft <= _MAX_FILETIME:
        us[0] = <int64_t>(ft // 10) - _EPOCH_DIFF_US
        return True
    us[0] = -_EPOCH_DIFF_US
    return False


def filetime_us(const uint64_t[::1] ft):
    """(Unix microseconds int64, valid bool) of a FILETIME column
    (regfast.arrow.filetime_to_us)."""
    cdef Py_ssize_t i, n = ft.shape[0]
    cdef cnp.ndarray us = np.empty(n, np.int64)
    cdef cnp.ndarray ok = np.empty(n, np.bool_)
    cdef int64_t *pu = <int64_t *>cnp.PyArray_DATA(us)
    cdef uint8_t *pk = <uint8_t *>cnp.PyArray_DATA(ok)
    with nogil:
        for i in range(n):
            pk[i] = _filetime_us(ft[i], &pu[i])
    return us, ok


def row_columns(const int64_t[::1] row_key, const int64_t[::1] row_val,
                const uint64_t[::1] key_last_write, const int32_t[::1] key_status,
                const uint8_t[::1] key_deleted, const int64_t[::1] path_off,
                const uint32_t[::1] value_type, const uint32_t[::1] value_length,
                const uint8_t[::1] value_deleted, const uint32_t[::1] value_name_len):
    """The plain columns of table_batches' rows, (row_key, row_val) from
    row_plan, in one pass (it was a dozen numpy passes a batch). A dict of:
      us, ts_ok     int64 Unix microseconds of the key's last write, and
                    whether it is one (a key row, FILETIME <= 9999-12-31)
      raw           int64 the FILETIME's bits (key rows)
      vtype, size   uint32 the value's type, int64 its length (value rows)
      kst           int32 the key's status (Win32) on key rows, else 0
      deleted       bool  the value's flag on value rows, else the key's
      cost          int64 bytes the row's path and value name take in a
                    batch (regfast.arrow._cuts adds the data's)
    Columns of rows without a key (or value) hold 0 there."""
    cdef Py_ssize_t i, n = row_key.shape[0]
    cdef int64_t k, v
    cdef uint64_t ft
    out = {name: np.zeros(n, dt) for name, dt in (
        ("us", np.int64), ("ts_ok", np.bool_), ("raw", np.int64), ("vtype", np.uint32),
        ("size", np.int64), ("kst", np.int32), ("deleted", np.bool_), ("cost", np.int64))}
    cdef int64_t *us = <int64_t *>cnp.PyArray_DATA(out["us"])
    cdef uint8_t *ok = <uint8_t *>cnp.PyArray_DATA(out["ts_ok"])
    cdef int64_t *raw = <int64_t *>cnp.PyArray_DATA(out["raw"])
    cdef uint32_t *vt = <uint32_t *>cnp.PyArray_DATA(out["vtype"])
    cdef int64_t *size = <int64_t *>cnp.PyArray_DATA(out["size"])
    cdef int32_t *kst = <int32_t *>cnp.PyArray_DATA(out["kst"])
    cdef uint8_t *dl = <uint8_t *>cnp.PyArray_DATA(out["deleted"])
    cdef int64_t *cost = <int64_t *>cnp.PyArray_DATA(out["cost"])
    cdef Py_ssize_t nk = key_last_write.shape[0], nv = value_type.shape[0]
    if row_val.shape[0] != n:
        raise ValueError("row_key and row_val differ in length")
    for i in range(n):                  # rows name rows of the table: checked once here
        if row_key[i] >= nk or row_val[i] >= nv or (row_key[i] >= 0 and row_key[i] + 1 >= path_off.shape[0]):
            raise IndexError(f"output row {i} names a key or value row the table does not have")
    if key_status.shape[0] < nk or key_deleted.shape[0] < nk or value_length.shape[0] < nv \
            or value_deleted.shape[0] < nv or value_name_len.shape[0] < nv:
        raise ValueError("the table's columns differ in length")
    with nogil:
        for i in range(n):
            k = row_key[i]
            v = row_val[i]
            us[i] = -_EPOCH_DIFF_US
            if k >= 0:
                ft = key_last_write[k]
                ok[i] = _filetime_us(ft, &us[i])
                raw[i] = <int64_t>ft
                kst[i] = key_status[k]
                dl[i] = key_deleted[k]
                cost[i] = path_off[k + 1] - path_off[k]
            if v >= 0:
                vt[i] = value_type[v]
                size[i] = value_length[v]
                dl[i] = value_deleted[v]
                cost[i] += (value_name_len[v] & 0xFFFF) * 2
    return out


cdef inline int _kind(uint32_t t, bint decode) noexcept nogil:
    if not decode:
        return K_BIN
    if t == T_SZ or t == T_EXPAND_SZ or t == T_LINK:
        return K_STR
    if t == T_DWORD or t == T_DWORD_BE or t == T_QWORD:
        return K_INT
    if t == T_MULTI_SZ:
        return K_MULTI
    return K_BIN


def data_bound(const uint32_t[::1] types, const int32_t[::1] status, const uint32_t[::1] length,
               const int64_t[::1] rows, bint decode):
    """Upper bound of the data bytes values(rows) allocates, per row (for
    cutting batches that stay inside int32 offsets)."""
    cdef Py_ssize_t i, n = rows.shape[0]
    cdef int64_t r
    cdef cnp.ndarray out = np.zeros(n, np.int64)
    cdef int64_t *po = <int64_t *>cnp.PyArray_DATA(out)
    cdef int kd
    with nogil:
        for i in range(n):
            r = rows[i]
            if r < 0 or status[r] != 0 or length[r] > MAX_ROW_BYTES:
                continue
            kd = _kind(types[r], decode)
            if kd == K_STR or kd == K_MULTI:
                # UTF-8 of each unit (<= 3 bytes) + the raw bytes if it is malformed
                po[i] = (length[r] >> 1) * 3 + length[r] + (4 * ((length[r] >> 1) + 1) if kd == K_MULTI else 0)
            else:
                po[i] = length[r] + 8
    return out


def values(mapping, arena, const uint32_t[::1] types, const int32_t[::1] status,
           const uint32_t[::1] offset, const uint32_t[::1] length, const int64_t[::1] rows,
           bint decode):
    """Typed data of the value rows ``rows`` (-1: a row without a value).

    Returns a dict of numpy arrays:
      status     int32[n]  0, the row's scan status, 13 (malformed, decoded
                           anyway; see the module docstring) or 8 (too big)
      str_off, str_data, str_valid        REG_SZ / EXPAND_SZ / LINK
      int_val, int_valid                  DWORD / DWORD_BIG_ENDIAN / QWORD
      bin_off, bin_data, bin_valid        other types, and malformed rows' raw bytes
      multi_off, multi_valid, item_off, item_data   REG_MULTI_SZ
    With decode False every value's raw bytes go to bin_* only.
    """
    cdef Py_ssize_t mlen, alen
    cdef const uint8_t *m = _buf(mapping, &mlen)
    cdef const uint8_t *a = NULL
    if arena is not None:
        a = _buf(arena, &alen)
    cdef Py_ssize_t i, n = rows.shape[0]
    cdef int64_t r
    cdef uint32_t t, ln
    cdef int kd
    # bounds, from the lengths alone
    cdef size_t sb = 0, bb = 0, mb = 0, items = 0
    for i in range(n):
        r = rows[i]
        if r < 0 or status[r] != 0 or length[r] > MAX_ROW_BYTES:
            continue
        ln = length[r]
        kd = _kind(types[r], decode)
        if kd == K_STR:
            sb += (ln >> 1) * 3
            bb += ln              # in case it is malformed
        elif kd == K_MULTI:
            mb += (ln >> 1) * 3
            items += (ln >> 1) + 1
            bb += ln
        else:
            bb += ln
    cdef cnp.ndarray st_out = np.zeros(n, np.int32)
    cdef cnp.ndarray s_off = np.empty(n + 1, np.int32)
    cdef cnp.ndarray s_data = np.empty(max(sb, 1), np.uint8)
    cdef cnp.ndarray s_ok = np.zeros(n, np.bool_)
    cdef cnp.ndarray i_val = np.zeros(n, np.int64)
    cdef cnp.ndarray i_ok = np.zeros(n, np.bool_)
    cdef cnp.ndarray b_off = np.empty(n + 1, np.int32)
    cdef cnp.ndarray b_data = np.empty(max(bb, 1), np.uint8)
    cdef cnp.ndarray b_ok = np.zeros(n, np.bool_)
    cdef cnp.ndarray l_off = np.empty(n + 1, np.int32)
    cdef cnp.ndarray l_ok = np.zeros(n, np.bool_)
    cdef cnp.ndarray it_off = np.empty(items + 1, np.int32)
    cdef cnp.ndarray it_data = np.empty(max(mb, 1), np.uint8)
    cdef int32_t *pst = <int32_t *>cnp.PyArray_DATA(st_out)
    cdef int32_t *pso = <int32_t *>cnp.PyArray_DATA(s_off)
    cdef uint8_t *psd = <uint8_t *>cnp.PyArray_DATA(s_data)
    cdef uint8_t *psv = <uint8_t *>cnp.PyArray_DATA(s_ok)
    cdef int64_t *piv = <int64_t *>cnp.PyArray_DATA(i_val)
    cdef uint8_t *pik = <uint8_t *>cnp.PyArray_DATA(i_ok)
    cdef int32_t *pbo = <int32_t *>cnp.PyArray_DATA(b_off)
    cdef uint8_t *pbd = <uint8_t *>cnp.PyArray_DATA(b_data)
    cdef uint8_t *pbv = <uint8_t *>cnp.PyArray_DATA(b_ok)
    cdef int32_t *plo = <int32_t *>cnp.PyArray_DATA(l_off)
    cdef uint8_t *plv = <uint8_t *>cnp.PyArray_DATA(l_ok)
    cdef int32_t *pio = <int32_t *>cnp.PyArray_DATA(it_off)
    cdef uint8_t *pid = <uint8_t *>cnp.PyArray_DATA(it_data)
    cdef size_t so = 0, bo = 0, mo = 0, nit = 0, units, j, start, w
    cdef const uint8_t *p
    cdef bint bad, lossy
    cdef uint16_t ubits
    cdef uint8_t word[8]
    cdef uint64_t v
    with nogil:
        for i in range(n):
            pso[i] = <int32_t>so
            pbo[i] = <int32_t>bo
            plo[i] = <int32_t>nit
            r = rows[i]
            if r < 0:
                continue
            if status[r] != 0:
                pst[i] = status[r]
                continue
            ln = length[r]
            if ln > MAX_ROW_BYTES:
                pst[i] = ERROR_NOT_ENOUGH_MEMORY
                continue
            t = types[r]
            p = _ptr(m, a, offset[r])
            kd = _kind(t, decode)
            bad = False
            if kd == K_STR:
                # REG_SZ / EXPAND_SZ end at the first NUL, as winreg; LINK is whole
                units = rf_u16_scan(p, ln >> 1, t != T_LINK, &ubits)
                lossy = False
                so += _u16_bits_to_u8(p, units, ubits, psd + so, &lossy)
                psv[i] = 1
                bad = lossy or (ln & 1)
            elif kd == K_INT:
                w = 8 if t == T_QWORD else 4
                memset(word, 0, 8)
                memcpy(word, p, ln if ln < w else w)
                if t == T_DWORD_BE:
                    v = (<uint64_t>word[0] << 24) | (<uint64_t>word[1] << 16) | (<uint64_t>word[2] << 8) | word[3]
                else:
                    v = (word[0] | (<uint64_t>word[1] << 8) | (<uint64_t>word[2] << 16)
                         | (<uint64_t>word[3] << 24) | (<uint64_t>word[4] << 32) | (<uint64_t>word[5] << 40)
                         | (<uint64_t>word[6] << 48) | (<uint64_t>word[7] << 56))
                piv[i] = <int64_t>v                  # a QWORD >= 2**63 keeps its bits
                pik[i] = 1
                bad = ln != w
            elif kd == K_MULTI:
                units = ln >> 1
                # the terminator: "\0" after the last string and "\0" ending the list
                if units >= 2 and _u16(p, units - 1) == 0 and _u16(p, units - 2) == 0:
                    units -= 2
                elif units >= 1 and _u16(p, units - 1) == 0:
                    units -= 1
                lossy = False
                if units:
                    start = 0
                    for j in range(units + 1):
                        if j == units or _u16(p, j) == 0:
                            pio[nit] = <int32_t>mo
                            mo += _u16_to_u8(p + 2 * start, j - start, pid + mo, &lossy)
                            nit += 1
                            start = j + 1
                plv[i] = 1
                bad = lossy or (ln & 1)
            else:
                memcpy(pbd + bo, p, ln)
                bo += ln
                pbv[i] = 1
            if bad:
                pst[i] = ERROR_INVALID_DATA
                memcpy(pbd + bo, p, ln)
                bo += ln
                pbv[i] = 1
        pso[n] = <int32_t>so
        pbo[n] = <int32_t>bo
        plo[n] = <int32_t>nit
        pio[nit] = <int32_t>mo
    return {
        "status": st_out,
        "str_off": s_off, "str_data": _trim(s_data, so), "str_valid": s_ok,
        "int_val": i_val, "int_valid": i_ok,
        "bin_off": b_off, "bin_data": _trim(b_data, bo), "bin_valid": b_ok,
        "multi_off": l_off, "multi_valid": l_ok,
        "item_off": _trim(it_off, nit + 1), "item_data": _trim(it_data, mo),
    }
