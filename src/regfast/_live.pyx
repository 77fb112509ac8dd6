# cython: language_level=3, boundscheck=False, wraparound=False
"""regfast._live — the live registry served in-process (Windows only).

The request handling of regfast-agent (src/agent: ag_dispatch and its op handlers) compiled into
this extension: :class:`regfast.inproc.InProcessConnection` hands it the same
request payloads it would send the agent over a pipe, and gets the same
response payloads back, so regfast.live.Key has one implementation for both
paths. Only built on Windows (CMakeLists.txt: ``if(WIN32)``).

The C core is process-wide (one handle table, one set of watches), so this
module is a singleton: :func:`dispatch` serves one request at a time (the
caller serializes), with the GIL released while it runs, and watch events
reach the callable given to :func:`set_event_sink` from the core's watch
threads.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from cpython.bytes cimport PyBytes_FromStringAndSize

cdef extern from "agent.h" nogil:
    ctypedef struct obuf:
        uint8_t *p
        size_t n
        size_t cap
        int oom
    ctypedef void (*ag_event_sink)(uint16_t op, uint32_t id, const uint8_t *payload, size_t n,
                                   void *ctx) noexcept nogil
    void ag_init(ag_event_sink sink, void *ctx)
    int ag_dispatch(uint16_t op, uint32_t id, const uint8_t *payload, size_t len, obuf *reply,
                    int *deferred)
    void watch_after_reply()
    void ag_shutdown()
    void ob_free(obuf *b)

cdef object _sink = None
cdef obuf _reply
cdef bint _inited = False


cdef void _on_event(uint16_t op, uint32_t wid, const uint8_t *payload, size_t n,
                    void *ctx) noexcept nogil:
    # A watch thread of the C core: take the GIL for the Python callback.
    with gil:
        sink = _sink
        if sink is None:
            return
        try:
            sink(op, wid, PyBytes_FromStringAndSize(<const char *>payload, <Py_ssize_t>n))
        except BaseException:
            import traceback
            traceback.print_exc()


cdef void _ensure_init():
    global _inited
    if not _inited:
        ag_init(_on_event, NULL)
        _inited = True


def set_event_sink(sink):
    """Routes watch events to ``sink(op, watch_id, payload)`` (None: drop them)."""
    global _sink
    _sink = sink
    _ensure_init()


def dispatch(uint16_t op, uint32_t rid, const uint8_t[::1] payload not None):
    """One request -> its response payload (i32 status first), as bytes.

    The caller serializes calls (the core has one handle table). The GIL is
    released while the request runs; a WATCH's first events are emitted to
    the sink after the reply is built, before this returns.
    """
    cdef int deferred = 0, quit_
    cdef const uint8_t *p = &payload[0] if payload.shape[0] else NULL
    cdef size_t n = <size_t>payload.shape[0]
    _ensure_init()
    with nogil:
        quit_ = ag_dispatch(op, rid, p, n, &_reply, &deferred)
    if _reply.oom:
        raise MemoryError("out of memory building a registry answer")
    res = PyBytes_FromStringAndSize(<const char *>_reply.p, <Py_ssize_t>_reply.n)
    if _reply.cap > (1 << 20):      # keep a big answer's buffer only until the next request
        ob_free(&_reply)
    if deferred:
        with nogil:
            watch_after_reply()
    if quit_:
        shutdown()
    return res


def shutdown():
    """Ends every watch and closes every handle (the next request must be HELLO).

    Waits for the core's watch threads, so it runs without the GIL: they may
    be waiting for it to deliver a last event.
    """
    with nogil:
        ag_shutdown()
