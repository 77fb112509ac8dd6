# cython: language_level=3, boundscheck=False, wraparound=False
"""The binding of the C operation log (src/core/rf_oplog.c) for
regfast.observe: hooks and the profiler fed by the typed records of the
rf_* entry points (src/core/rf_hook.c), whatever the backend.

* ``configure(keep_rows, pre, post)`` installs the log in every extension
  module's copy of the core (each links the static library and so has its
  own rf_hook_set; _native and _bulk export theirs as a capsule) or removes
  it. With nothing installed an rf_* call costs what it cost before: one
  load and a branch (rf_hive.c).
* With ``keep_rows`` the log keeps one 72-byte row per operation in C;
  ``take()`` hands them over as one numpy structured array (``ROW_DTYPE``),
  and the ``on_full`` callable is called when 65,536 rows wait, so memory
  stays bounded without a Python call per operation.
* With ``pre`` / ``post`` the ``callback`` is called per operation (with
  the GIL, in the calling thread): that is what a Python hook asks for.

Paths and value names are string ids into the log's table (``string(id)``).
"""

from cpython.pycapsule cimport PyCapsule_GetPointer
from cpython.unicode cimport PyUnicode_DecodeUTF16
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

from regfast.regfast cimport rf_hook_fn, rf_op_record, rf_op_name

cdef extern from "regfast/regfast.h" nogil:
    enum:
        RF_HOOK_PRE
        RF_HOOK_POST
        RF_OP_MAX
        RF_OPREC_WRITE

cdef extern from "core/rf_oplog.h" nogil:
    enum:
        RF_OPLOG_VETOED
        RF_OPLOG_FILE
        RF_OPLOG_PAYLOAD
    ctypedef struct rf_oprow:
        uint64_t start_ns
        uint64_t duration_ns
        uint64_t count
        uint64_t bytes
        uint64_t key
        uint32_t hive
        int32_t path
        int32_t value
        int32_t status
        uint16_t op
        uint8_t backend
        uint8_t flags
        uint32_t round_trips
        uint8_t phase
        uint16_t request_op
    ctypedef struct rf_oplog:
        pass
    ctypedef int (*rf_oplog_fn)(void *ctx, const rf_oprow *row) noexcept
    ctypedef void (*rf_oplog_full_fn)(void *ctx) noexcept
    rf_oplog *rf_oplog_new()
    void rf_oplog_config(rf_oplog *L, int keep_rows, size_t full_at, rf_oplog_fn fn,
                         rf_oplog_full_fn full_fn, void *ctx, uint32_t fn_phases)
    int rf_oplog_hook(void *ctx, const rf_op_record *rec)
    size_t rf_oplog_count(rf_oplog *L)
    size_t rf_oplog_take(rf_oplog *L, rf_oprow *out, size_t cap, uint64_t *lost_out)
    void rf_oplog_release(rf_oplog *L)
    size_t rf_oplog_nstrings(rf_oplog *L)
    int rf_oplog_string(rf_oplog *L, int32_t id, const void **p, size_t *nbytes, int *utf16)
    void rf_oplog_forget(rf_oplog *L)

ctypedef void (*hook_set_fn)(rf_hook_fn fn, void *ctx, uint32_t phases) noexcept nogil

import importlib
import os

import numpy as np

PRE = RF_HOOK_PRE
POST = RF_HOOK_POST
WRITE = RF_OPREC_WRITE
VETOED = RF_OPLOG_VETOED
FILE = RF_OPLOG_FILE
PAYLOAD = RF_OPLOG_PAYLOAD
OP_MAX = RF_OP_MAX
#: the rf_oprow layout (rf_oplog.h), one numpy record per operation
ROW_DTYPE = np.dtype([
    ("start_ns", "<u8"), ("duration_ns", "<u8"), ("count", "<u8"), ("bytes", "<u8"), ("key", "<u8"),
    ("hive", "<u4"), ("path", "<i4"), ("value", "<i4"), ("status", "<i4"),
    ("op", "<u2"), ("backend", "u1"), ("flags", "u1"), ("round_trips", "<u4"), ("phase", "u1"),
    ("_pad1", "V1"), ("request_op", "<u2"), ("_pad", "V4"),
])
if ROW_DTYPE.itemsize != sizeof(rf_oprow):
    raise ImportError(f"regfast._hooks: ROW_DTYPE is {ROW_DTYPE.itemsize} bytes, rf_oprow {sizeof(rf_oprow)}")
#: rows kept in C before on_full is called
FULL_AT = 65536
#: rf_oprow.backend -> name
BACKENDS = {0: None, 1: "regf", 2: "nt", 3: "remote", 4: "other"}

cdef rf_oplog *_log = rf_oplog_new()
if _log == NULL:
    raise MemoryError("regfast._hooks: no memory for the operation log")

# the modules whose copy of the core the log is installed in
MODULES = ["regfast._native", "regfast._bulk"]
cdef list _setters = []          # their rf_hook_set, as integers (addresses)
cdef bint _installed = False
cdef list _strings = []          # id -> str, as far as fetched
cdef object _callback = None
cdef object _on_full = None


def op_name(uint32_t op):
    """rf_op_name(op): "key_open", "value_read"... ("?" unknown)."""
    return rf_op_name(op).decode()


cdef _fetch_strings():
    cdef size_t n = rf_oplog_nstrings(_log)
    cdef const void *p
    cdef size_t nbytes
    cdef int utf16
    cdef int order
    cdef Py_ssize_t i
    while True:
        # os.fsdecode is Python code: another thread may fetch meanwhile, so
        # a string is appended only where it belongs (index == id)
        i = len(_strings)
        if i >= <Py_ssize_t>n or not rf_oplog_string(_log, <int32_t>i, &p, &nbytes, &utf16):
            break
        if utf16:
            order = -1
            s = PyUnicode_DecodeUTF16(<const char *>p, <Py_ssize_t>nbytes, "surrogatepass", &order)
        else:
            b = PyBytes_FromStringAndSize(<const char *>p, <Py_ssize_t>nbytes)
            try:
                s = os.fsdecode(b)
            except UnicodeDecodeError:
                # a request payload (RF_OPLOG_PAYLOAD) is not a file name:
                # payload() gives its bytes; the str is only a placeholder
                s = b.decode("latin-1")
        if len(_strings) == i:
            _strings.append(s)


def string(int32_t sid):
    """The string of id `sid` (a key path, value name or file), None for -1
    or an id the log no longer has."""
    if sid < 0:
        return None
    if sid >= len(_strings):
        _fetch_strings()
        if sid >= len(_strings):
            return None
    return _strings[sid]


def payload(int32_t sid):
    """The bytes of string `sid` as the log keeps them (a request's payload,
    RF_OPLOG_PAYLOAD), None for -1 or an unknown id."""
    cdef const void *p
    cdef size_t nbytes
    cdef int utf16
    if sid < 0 or not rf_oplog_string(_log, sid, &p, &nbytes, &utf16):
        return None
    return PyBytes_FromStringAndSize(<const char *>p, <Py_ssize_t>nbytes)


# Python callbacks running inside rf_* calls, all threads (counted with the
# GIL held). While any runs, some thread is inside an rf_* call that may hold
# its hive's handle without a pin (calls made with the GIL held do not pin),
# and the callback's Python code can let another thread run: Hive.close()
# then only marks the hive closed (regfast._native asks dispatching()).
cdef Py_ssize_t _depth = 0


def dispatching():
    """True while a hook or on_full callback runs inside an rf_* call (any thread)."""
    return _depth > 0


cdef int _row_cb(void *ctx, const rf_oprow *row) noexcept with gil:
    global _depth
    cb = _callback
    if cb is None:
        return 0
    _depth += 1
    try:
        value = payload(row.value) if row.flags & RF_OPLOG_PAYLOAD else string(row.value)
        return 1 if cb(row.phase, row.op, row.hive, row.backend, row.flags, row.key, string(row.path),
                       value, row.status, row.start_ns, row.duration_ns, row.count,
                       row.bytes, row.round_trips, row.request_op) else 0
    except BaseException:
        # the dispatcher (regfast.observe.hooks) handles its callbacks'
        # exceptions itself; one escaping it vetoes a PRE (fail closed)
        return 1 if row.phase == RF_HOOK_PRE else 0
    finally:
        _depth -= 1


cdef void _full_cb(void *ctx) noexcept with gil:
    global _depth
    f = _on_full
    if f is not None:
        _depth += 1
        try:
            f()
        except BaseException:
            pass        # the rows stay in the log for the next take()
        finally:
            _depth -= 1


cdef _load_setters():
    cdef void *p
    for name in MODULES:
        mod = importlib.import_module(name)
        p = PyCapsule_GetPointer(mod._rf_hook_set, b"regfast.rf_hook_set")
        _setters.append(<size_t>p)


def set_callbacks(callback, on_full):
    """callback(phase, op, hive, backend, flags, key, path, value, status,
    start_ns, duration_ns, count, bytes, round_trips) -> veto (PRE); on_full()."""
    global _callback, _on_full
    _callback = callback
    _on_full = on_full


def configure(bint keep_rows, bint pre, bint post):
    """Installs the log (anything true) or removes it (all false: the rows
    not taken and the strings are dropped)."""
    global _installed
    cdef uint32_t phases = (RF_HOOK_PRE if pre else 0) | (RF_HOOK_POST if post else 0)
    cdef bint on = keep_rows or phases != 0
    cdef hook_set_fn setter
    cdef rf_oplog_fn fn = NULL
    cdef rf_oplog_full_fn full_fn = NULL
    cdef rf_hook_fn hook = NULL
    if phases:
        fn = _row_cb
    if keep_rows:
        full_fn = _full_cb
    if on:
        hook = rf_oplog_hook
    if not _setters:
        _load_setters()
    rf_oplog_config(_log, keep_rows, FULL_AT, fn, full_fn, NULL, phases)
    if on != _installed:
        for addr in _setters:
            setter = <hook_set_fn><size_t>addr
            # PRE always: a close must be seen before the hive is freed
            setter(hook, _log, RF_HOOK_PRE | RF_HOOK_POST)
        _installed = on
        if not on:
            rf_oplog_release(_log)
            rf_oplog_forget(_log)
            del _strings[:]


def installed():
    """Whether the log is installed."""
    return _installed


def take():
    """The rows kept since the last take, as (numpy array of ROW_DTYPE or
    None when there are none, rows lost for want of memory)."""
    cdef uint64_t lost = 0
    cdef size_t n = rf_oplog_count(_log)
    cdef uint8_t[::1] dst
    if n == 0:
        rf_oplog_take(_log, NULL, 0, &lost)
        return None, lost
    out = np.empty(n, ROW_DTYPE)
    dst = out.view(np.uint8)
    n = rf_oplog_take(_log, <rf_oprow *>&dst[0], n, &lost)     # more may have come: they wait
    return out[:n], lost


def strings(ids):
    """string(i) for each id of the int32 array `ids` (a list)."""
    cdef const int32_t[::1] v = np.ascontiguousarray(ids, dtype=np.int32)
    cdef Py_ssize_t i, n = v.shape[0]
    cdef int32_t sid
    if n and np.max(v) >= len(_strings):
        _fetch_strings()
    cdef Py_ssize_t have = len(_strings)
    out = [None] * n
    for i in range(n):
        sid = v[i]
        if 0 <= sid < have:
            out[i] = _strings[sid]
    return out
