/*
 * agent.h — regfast-agent: the rf_* API of the nt backend (reads, writes,
 * security, snapshots, change notification, administration) served over
 * stdin/stdout.
 *
 * Frames, both ways: a 16-byte header, then `length` payload bytes, then
 * (protocol version 3 and later) a 4-byte trailer.
 *   u16 magic  AG_MAGIC ("Rf")
 *   u16 op     request op; response: op | AG_RESPONSE; event: op | AG_EVENT
 *   u32 length payload bytes (requests: at most AG_MAX_REQUEST)
 *   u32 id     request id (echoed); events: the watch id
 *   u32 check  FNV-1a 32 of the 12 bytes before it
 *   payload
 *   u32 crc    (version >= 3) CRC-32 (zlib's) of the payload
 * Integers little-endian. str16 = u32 byte count + UTF-16LE; str8 = u32 byte
 * count + UTF-8. Every response payload starts with i32 status (Win32 code);
 * an error response goes on with i64 native + str8 message.
 *
 * Versions (the list and what each adds: ag_ops.def's AG_PROTO entries; the
 * constants: ag_proto.h): HELLO asks for a range; the agent answers the
 * highest it speaks in it (AG_VERSION_MIN..AG_VERSION). The HELLO request and
 * its response are always framed as version 2 (no trailer); every frame
 * after the response, both ways, uses the agreed version's framing (the CRC
 * trailer from AG_V_TRAILER = 3 on), so a client sends nothing after HELLO
 * until its response is in. Only the first HELLO of a session fixes the
 * version: a later one must accept it (or fails with 120). Payloads are
 * answered in the agreed version's layouts (AG_V_LAYOUTS = 4 adds the
 * column READ_VALUES, KEY_INFO's stored name, SET_SECURITY_SD, volatile
 * OPEN_KEY; AG_V_LINKS = 5 SUBKEYS' hints and KEY_IS_LINK); a request for
 * something newer than the session is refused.
 *
 * A CUT FRAME KILLS THE CONNECTION (every transport must keep this): a byte
 * stream gives no way to finish a frame that was cut half-way — by a write
 * timeout, an interrupt, a crash — and anything written after it would be
 * read as the rest of it (a 15 MB set_value once stored another request's
 * header and data as its own). So:
 *   - the clients (src/regfast/agent.py, src/remote): a request whose frame
 *     was not written whole leaves the connection dead — every later call
 *     fails at once (Python: ConnectionCutError, winerror 1236; C:
 *     RF_E_CONNECTION_CUT) and the agent's input is closed, so the agent
 *     sees EOF in the middle of the frame; a response cut, malformed or
 *     failing its CRC on the read side does the same;
 *   - the agent: applies a request only once its whole frame is in (EOF
 *     mid-frame: discard it and exit); from version 3, a payload whose CRC
 *     does not match (a spliced stream) is answered with 13 and the agent
 *     stops reading — nothing after it can be trusted to be aligned. A
 *     header whose magic or check fails is skipped byte by byte (resync):
 *     a whole, checked frame is still needed before anything is applied.
 *
 * The agent is a codec: decode a request, call rf_* on the nt backend (or
 * the rf_live_* of regfast_nt.h for what only the live registry has),
 * encode the reply. Ops, their numbers and payloads: ag_ops.def. The C
 * client is src/remote; the Python one src/regfast/agent.py.
 */
#ifndef REGFAST_AGENT_H
#define REGFAST_AGENT_H

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#include <stddef.h>
#include <stdint.h>

#include "regfast/regfast.h"
#include "regfast/regfast_nt.h"

#include "ag_proto.h"

/* Snapshots (SNAPSHOT, WATCH and SNAPSHOT_RF responses, change events) are
 * rf_key_snapshot()'s format (regfast.h): one serializer for every backend. */
#define AG_SNAP_SUBTREE   RF_SNAP_SUBTREE     /* request flags */
#define AG_SNAP_KEEP_DATA RF_SNAP_KEEP_DATA
#define AG_SNAP_TRUNCATED RF_SNAP_TRUNCATED   /* snapshot header flags */
#define AG_SNAP_DATA      RF_SNAP_DATA

#define AG_NOTIFY_VALID   RF_NOTIFY_ALL

/* Bench methods (AG_OP_BENCH); each reads the n names `reps` times. */
enum {
    AG_BENCH_REGQUERYVALUEEX = 1, AG_BENCH_REGGETVALUE = 2, AG_BENCH_NT_PARTIAL = 3,
    AG_BENCH_NT_FULL = 4, AG_BENCH_RF_SINGLE = 5, AG_BENCH_RF_BATCH = 6, AG_BENCH_RF_BATCH_FULL = 7,
    AG_BENCH_OPEN_EACH = 8, AG_BENCH_REGGETVALUE_PATH = 9, AG_BENCH_RF_OPEN_EACH = 10,
    AG_BENCH_MAX = 10
};

/* ---- wire (agent_wire.c): buffers, errors, events -------------------------- */

typedef struct obuf { uint8_t *p; size_t n, cap; int oom; } obuf;
typedef struct ibuf { const uint8_t *p; size_t n, pos; int bad; } ibuf;

void ob_put(obuf *b, const void *src, size_t n);
void ob_u16(obuf *b, uint16_t v);
void ob_u32(obuf *b, uint32_t v);
void ob_u64(obuf *b, uint64_t v);
void ob_str16(obuf *b, const wchar_t *s, size_t nchars);
void ob_str8(obuf *b, const char *s, size_t n);
/** Makes room for n more bytes and returns where they go (NULL on oom);
 *  the caller writes them and adds n to b->n. */
uint8_t *ob_room(obuf *b, size_t n);
void ob_free(obuf *b);
uint32_t ib_u32(ibuf *b);
/** A str16 as a fresh NUL-terminated wchar_t copy (malloc; NULL + bad on error). */
wchar_t *ib_str16(ibuf *b, size_t max_chars, size_t *nchars);

/* What the next error response says */
rf_status ag_fail(rf_status st, int64_t native, const char *fmt, ...);
rf_status ag_fail_rf(rf_status st);   /* details from rf_last_error() */
rf_status ag_last(void);              /* the status of the last ag_fail on this thread */
void ag_clear_error(void);
/** The status of the error the next reply would carry, 0 if none was set. */
rf_status ag_error_status(void);
/** The error response for the last ag_fail on this thread, into *reply. */
void ag_error_payload(rf_status st, obuf *reply);

/** Where watch events go: op is AG_OP_WATCH | AG_EVENT, id the watch id.
 *  Called from watch threads; must not call back into ag_dispatch. */
typedef void (*ag_event_sink)(uint16_t op, uint32_t id, const uint8_t *payload, size_t n, void *ctx);
/** Once per process, before the first ag_dispatch. */
void ag_init(ag_event_sink sink, void *ctx);
/** An event frame for the host (the sink given to ag_init). */
void send_frame(uint16_t op, uint32_t id, const uint8_t *payload, size_t n);
uint64_t ag_now_ns(void);
/** Counters for STATS: frames handled, frames refused as malformed. */
extern uint64_t ag_frames, ag_bad_frames;

/* ---- key handles (agent_handles.c) -------------------------------------- */
typedef struct khandle {
    int       used;
    uint32_t  gen;
    uint32_t  root, view, access;
    wchar_t  *path;         /* relative to the root, NUL-terminated ("" = the root) */
    size_t    plen;
    rf_hive  *hive;         /* shared per (root, view, access) */
    rf_key    key;          /* 0 until opened */
    HKEY      hk;           /* Win32 handle for BENCH's Win32 methods, opened on first use */
} khandle;

khandle *kh_get(uint32_t id);
uint32_t kh_id(const khandle *kh);
/** A new handle (a copy of *tmp, which it owns from here on), or NULL (ag_fail'ed). */
khandle *kh_add(const khandle *tmp);
void kh_release(khandle *kh);
uint32_t kh_open_count(void);
/** The live hive of (root, view, access), opened once. */
rf_status ag_get_hive(uint32_t root, uint32_t view, uint32_t access, rf_hive **out);
/** The i-th live hive the agent opened (one per root, view, access), or NULL
 *  past the last: admin ops that change a key's name invalidate it in all. */
rf_hive *ag_hive(uint32_t i, uint32_t *root);
HKEY root_hkey(uint32_t root);
rf_status kh_key(khandle *kh, rf_key *out);
rf_status kh_win32(khandle *kh, HKEY *out);
/** Every handle on `root` whose path is `path` or below it closes its Win32
 *  handle and forgets its token (reopened by path on next use): after a
 *  rename or before an unload of that subtree (agent_admin.c). */
void kh_forget_subtree(uint32_t root, const wchar_t *path, size_t plen);
/** Closes every handle and hive (ag_shutdown). */
void kh_shutdown(void);

/* An rf_* call on a handle's key, retried once with a fresh token when the
 * slot was recycled by the nt backend's bounded cache (RF_E_INVALID_HANDLE).
 * Sets `st` (ag_fail_rf'ed). */
#define KH_CALL(st, kh, k, call)                                 \
    do {                                                         \
        (st) = kh_key((kh), &(k));                               \
        if (st) break;                                           \
        (st) = (call);                                           \
        if ((st) == RF_E_INVALID_HANDLE) {                       \
            (kh)->key = 0;                                       \
            if (((st) = kh_key((kh), &(k))) != RF_OK) break;     \
            (st) = (call);                                       \
        }                                                        \
        if (st) (st) = ag_fail_rf(st);                           \
    } while (0)

/* ---- the request handler, shared by its two hosts: agent_main.c (frames
 *      over stdin/stdout) and the Windows Python extension regfast._live
 *      (in-process requests). One request at a time: the host serializes
 *      calls to ag_dispatch; watch threads only emit events through the sink.
 * ------------------------------------------------------------------------ */

/** What a handler may tell the dispatcher besides its status. */
typedef struct ag_call {
    uint32_t id;         /* the request id */
    uint32_t version;    /* the protocol version agreed (0 before HELLO) */
    uint32_t hello;      /* HELLO: the version agreed */
    int      deferred;   /* the host must call watch_after_reply() once the reply is out */
    int      quit;       /* QUIT */
} ag_call;

/* One handler per op of ag_ops.def: ag_op_<name>(payload, reply after the
 * status, call). They live in agent_ops.c, agent_watch.c, agent_admin.c,
 * agent_tx.c and agent_bench.c; agent_dispatch.c maps numbers to them. */
#define AG_OP(num, NAME, name, write, req, rep) rf_status ag_op_##name(ibuf *in, obuf *out, ag_call *call);
#include "ag_ops.def"
#undef AG_OP

/**
 * Handles one request (op, id, payload) and leaves its response payload in
 * *reply (i32 status first; an error goes on with i64 native + str8 message).
 * *deferred: the host must call watch_after_reply() once the reply is out
 * (a watch's first events must follow its reply). Returns 1 after QUIT.
 */
int ag_dispatch(uint16_t op, uint32_t id, const uint8_t *payload, size_t len, obuf *reply,
                int *deferred);
/** Ends every watch, closes every handle and hive; HELLO is needed again. */
void ag_shutdown(void);
/** The protocol version the session's HELLO agreed on (0 before HELLO):
 *  the host frames everything after the HELLO response with it. */
extern uint32_t ag_version;

/* ---- watches (agent_watch.c) --------------------------------------------- */
void watch_after_reply(void);
void watch_handle_closed(uint32_t handle_id);
void watch_stop_all(uint32_t reason);
uint32_t watch_count(void);

/* ---- transactions (agent_tx.c) -------------------------------------------- */
/** Ends every open transaction uncommitted (KTM rolls back a closed one). */
void tx_shutdown(void);

#endif /* REGFAST_AGENT_H */
