# _native.pxd — the cdef classes' fields and C-level methods (asyncpg style):
# the whole internal interface of the binding in one file.
from cpython.buffer cimport Py_buffer
from libc.stdint cimport uint8_t, uint32_t
from regfast.regfast cimport rf_hive, rf_key, rf_value, rf_status, rf_name, rf_deleted

# Shared with _bulk.pyx (exported through the module's C-API capsule).
cdef int check(rf_status st) except -1
cdef str name_str(const rf_name *n)
cdef str utf16_str(const uint8_t *p, size_t nbytes, bint stop_at_nul)
cdef object decode_data(uint32_t t, const uint8_t *p, size_t n, object name)
cdef object view_of(Hive hive, const uint8_t *p, size_t n)
cdef rf_deleted *deleted_records(Hive hive, size_t *n_out) except NULL
cdef str deleted_name(const rf_name *nm)

cdef class Hive:
    cdef rf_hive *_h
    cdef object _path          # str path, or None for from_buffer()
    cdef Py_buffer _buf        # held for the life of the hive (from_buffer)
    cdef bint _has_buf
    cdef Py_ssize_t _exports   # live zero-copy views into the mapping
    cdef bint _closing         # close() called; unmap when _exports drops to 0
    cdef bint _tolerant        # opened with errors="tolerant": walks skip bad rows
    cdef object __weakref__
    cdef rf_hive *handle(self) except NULL
    cdef rf_hive *pin(self) except NULL
    cdef void unpin(self)
    cdef void _release(self)
    cdef Key make_key(self, rf_key k, object path)

cdef class Key:
    cdef readonly Hive hive
    cdef rf_key _k
    cdef object _path          # str, or None until computed
    cdef object _name          # cached str
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
    cdef bytes _big_bytes(self)

cdef class _Export:
    """A read-only buffer over hive memory that keeps the hive open."""
    cdef Hive hive
    cdef const char *ptr
    cdef Py_ssize_t length
    cdef Py_ssize_t shape[1]
    cdef Py_ssize_t strides[1]
