# _native.pxd — the cdef classes' fields and C-level methods (asyncpg style):
# the whole internal interface of the binding in one file.
from cpython.buffer cimport Py_buffer
from libc.stdint cimport uint8_t, uint32_t
from regfast.regfast cimport rf_hive, rf_key, rf_value, rf_status, rf_name

# Shared with _bulk.pyx (exported through the module's C-API capsule).
cdef int check(rf_status st) except -1
cdef str name_str(const rf_name *n)
cdef str utf16_str(const uint8_t *p, size_t nbytes, bint stop_at_nul)
cdef object decode_data(uint32_t t, const uint8_t *p, size_t n, object name)
cdef object view_of(Hive hive, const uint8_t *p, size_t n)

# Mapping reads outside C (the decoders) first ask whether the file still
# covers the whole mapping: a truncated file then raises instead of SIGBUS
# (src/hive/regf_guard.h says what that does and does not cover).
cdef extern from "hive/regf_guard.h" nogil:
    rf_status regf_probe_end(const uint8_t *base, size_t len)
    void regf_guard_install()

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
    cdef const uint8_t *_map   # the bytes the hive reads (mapping, copy or caller's buffer)
    cdef size_t _map_len
    cdef object __weakref__
    cdef rf_hive *handle(self) except NULL
    cdef rf_hive *pin(self) except NULL
    cdef void unpin(self)
    cdef void _release(self)
    cdef int probe(self) except -1
    cdef Key make_key(self, rf_key k, object path)

cdef class Key:
    cdef readonly Hive hive
    cdef rf_key _k
    cdef object _path          # str, or None until computed
    cdef object _name          # cached str
    cdef Hive _hv(self)
    cdef rf_hive *_h(self) except NULL
    cdef list _keys_from(self, rf_key *buf, size_t n)
    cdef list _subkey_list(self)
    cdef list _value_list(self)

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

cdef class _Export:
    """A read-only buffer over hive memory that keeps the hive open."""
    cdef Hive hive
    cdef const char *ptr
    cdef Py_ssize_t length
    cdef Py_ssize_t shape[1]
    cdef Py_ssize_t strides[1]
