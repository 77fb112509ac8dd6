# _native.pxd — the cdef classes' fields and C-level methods (asyncpg style):
# the whole internal interface of the binding in one file.
from cpython.buffer cimport Py_buffer
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy
from regfast.regfast cimport (rf_hive, rf_remote, rf_key, rf_value, rf_status, rf_name, rf_deleted, rf_slack, RF_REG_DWORD,
                              RF_REG_DWORD_BIG_ENDIAN, RF_REG_QWORD)

# Shared with _bulk.pyx (exported through the module's C-API capsule).
cdef int check(rf_status st) except -1
cdef str name_str(const rf_name *n)
cdef str utf16_str(const uint8_t *p, size_t nbytes, bint stop_at_nul)
cdef object decode_data(uint32_t t, const uint8_t *p, size_t n)


# ---- little-endian fields of the hive's bytes (unaligned: byte by byte) -----

cdef inline uint16_t u16_at(const uint8_t *p, size_t i) noexcept nogil:
    """UTF-16LE unit i of p."""
    return p[2 * i] | (<uint16_t>p[2 * i + 1] << 8)


cdef inline uint32_t le32(const uint8_t *p) noexcept nogil:
    """The little-endian dword at p."""
    return (<uint32_t>p[0]) | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)

# ---- the integer types: the one place their size rules live ----------------
# Inline here so that every decoder (Value.value, the batch and scan loops,
# as_int without the GIL, the live registry's through decode_value) shares them.

cdef inline bint reg_is_int(uint32_t t) noexcept nogil:
    """REG_DWORD, REG_DWORD_BIG_ENDIAN or REG_QWORD: decoded to an int."""
    return t == RF_REG_DWORD or t == RF_REG_DWORD_BIG_ENDIAN or t == RF_REG_QWORD


cdef inline bint reg_well_formed(uint32_t t, size_t n) noexcept nogil:
    """False only for an integer type whose data is not 4 (DWORD) or 8
    (QWORD) bytes: the one malformation a decoder can see (Windows stores any
    bytes under any type)."""
    if t == RF_REG_DWORD or t == RF_REG_DWORD_BIG_ENDIAN:
        return n == 4
    if t == RF_REG_QWORD:
        return n == 8
    return True


cdef inline uint64_t reg_int(uint32_t t, const uint8_t *p, size_t n) noexcept nogil:
    """A REG_DWORD / REG_DWORD_BIG_ENDIAN / REG_QWORD of any size, as CPython's
    winreg decodes REG_DWORD and REG_QWORD (Reg2Py, PC/winreg.c): 0 bytes is 0;
    otherwise it reads the first 4 / 8 bytes, so a longer value gives its
    first 4 / 8 bytes. A shorter non-empty one makes winreg read past the data
    into the rest of its buffer; here it is zero-extended instead (what a
    NUL-padded buffer would give). REG_DWORD_BIG_ENDIAN (bytes in winreg; an
    int in regipy and python-registry) takes the same size rules, big-endian."""
    cdef uint8_t b[8]
    cdef size_t width = 8 if t == RF_REG_QWORD else 4
    b[0] = b[1] = b[2] = b[3] = b[4] = b[5] = b[6] = b[7] = 0
    if n > width:
        n = width
    if n:
        memcpy(b, p, n)
    if t == RF_REG_DWORD_BIG_ENDIAN:
        return (<uint64_t>b[0] << 24) | (<uint64_t>b[1] << 16) | (<uint64_t>b[2] << 8) | b[3]
    return (b[0] | (<uint64_t>b[1] << 8) | (<uint64_t>b[2] << 16) | (<uint64_t>b[3] << 24)
            | (<uint64_t>b[4] << 32) | (<uint64_t>b[5] << 40) | (<uint64_t>b[6] << 48)
            | (<uint64_t>b[7] << 56))
cdef object view_of(Hive hive, const uint8_t *p, size_t n)
cdef rf_deleted *deleted_records(Hive hive, size_t *n_out) except NULL
cdef str deleted_name(const rf_name *nm)

# Mapping reads outside C (the decoders) first ask whether the file still
# covers the whole mapping: a truncated file then raises instead of SIGBUS
# (src/hive/regf_guard.h says what that does and does not cover).
cdef extern from "hive/regf_guard.h" nogil:
    rf_status regf_probe_end(const uint8_t *base, size_t len)
    void regf_guard_install()

# Whether a hook or the profiler is installed in this module's copy of the
# core (src/core/rf_hook.c): Hive.walk then reads values key by key, so that
# they see every read the caller's code makes.
cdef extern from "core/rf_internal.h" nogil:
    bint rfi_hooks_on()

cdef class Hive:
    cdef rf_hive *_h
    cdef object _path          # str path, or None for from_buffer()
    cdef Py_buffer _buf        # held for the life of the hive (from_buffer)
    cdef bint _has_buf
    cdef Py_ssize_t _exports   # live zero-copy views into the mapping
    cdef bint _closing         # close() called; unmap when _exports drops to 0
    cdef bint _tolerant        # opened with errors="tolerant": walks skip bad rows
    cdef bint _lenient         # opened with lenient=True (kept for pickling)
    cdef bint _copy            # opened with copy=True: a private heap copy, not a mapping
    cdef bint _can_fault       # its bytes may vanish (a file mapping): the decoders probe first
    cdef bint _blocks          # a remote hive: every call may wait on the agent (GIL released)
    cdef bint _few_values      # the last values() read of a file found <= 1 value (Key._value_list)
    cdef const uint8_t *_map   # the bytes the hive reads (mapping, copy or caller's buffer)
    cdef size_t _map_len
    cdef object __weakref__
    cdef rf_hive *handle(self) except NULL
    cdef rf_hive *pin(self) except NULL
    cdef void unpin(self)
    cdef void _release(self)
    cdef int probe(self) except -1
    cdef Key make_key(self, rf_key k, object path)
    cdef rf_remote *_conn(self) except NULL
    cdef object _slack_view(self, const rf_slack *sl)
    cdef bytes _request(self, rf_key k, int op, payload)

cdef class _WalkValues:
    cdef object owner          # the walk's scan table (its columns' memory); None once the walk ended
    cdef const uint32_t *token
    cdef const uint32_t *name_len
    cdef const uint32_t *type
    cdef const uint32_t *offset
    cdef const uint32_t *length
    cdef const int32_t *status

cdef class Key:
    cdef readonly Hive hive
    cdef rf_key _k
    cdef object _path          # str, or None until computed
    cdef Key _up               # Hive.walk: the parent whose path this key's extends (built when asked)
    cdef object _name          # cached str
    cdef uint64_t _lw          # last-write FILETIME, when _has_lw (Hive.walk has it from its scan)
    cdef bint _has_lw
    cdef bint _closed          # close() called (Key.close / with): every later call raises 6
    cdef _WalkValues _wv       # Hive.walk(): its scan's value rows, while the walk runs (else None)
    cdef Py_ssize_t _vrow      # the first of this key's rows there
    cdef Py_ssize_t _vn        # how many
    cdef Hive _hv(self)
    cdef rf_hive *_h(self) except NULL
    cdef object _known_path(self)
    cdef str _path_from_hive(self)
    cdef list _keys_from(self, rf_key *buf, size_t n)
    cdef list _subkey_list(self)
    cdef int _is_link(self, int *out) except -1
    cdef tuple _hinted_subkey_list(self)
    cdef int _name_children(self, list keys) except -1
    cdef list _value_list(self)
    cdef object _tolerant_value(self, Hive hive, str name)
    cdef list _read_value_list(self)
    cdef list _walk_value_list(self, _WalkValues wv)

cdef class Value:
    cdef readonly Hive hive
    cdef rf_value _v
    cdef readonly Key key
    cdef object _name          # cached str
    cdef uint32_t _type
    cdef uint32_t _len
    cdef uint32_t _flags
    cdef const uint8_t *_ptr   # contiguous data in the mapping when known, else NULL
    cdef Hive _hv(self)
    cdef rf_hive *_h(self) except NULL
    cdef bytes _big_bytes(self)
    cdef bint _read_flat(self, const uint8_t **p, size_t *n) except -1
    cdef object _decoded(self)

cdef class _Export:
    """A read-only buffer over hive memory that keeps the hive open."""
    cdef Hive hive
    cdef const char *ptr
    cdef Py_ssize_t length
    cdef Py_ssize_t shape[1]
    cdef Py_ssize_t strides[1]
