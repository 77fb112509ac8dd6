/*
 * agent.h — regfast-agent: the rf_* API (plus the few Win32 writes tests
 * need, and change notification) served over stdin/stdout.
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
 * Versions: HELLO asks for a range; the agent answers the highest it speaks
 * in it (AG_MIN_VERSION..AG_VERSION). The HELLO request and its response are
 * always framed as version 2 (no trailer); every frame after the response,
 * both ways, uses the negotiated version's framing, so a client sends nothing
 * after HELLO until its response is in.
 *
 * A CUT FRAME KILLS THE CONNECTION (every transport must keep this): a byte
 * stream gives no way to finish a frame that was cut half-way — by a write
 * timeout, an interrupt, a crash — and anything written after it would be
 * read as the rest of it (a 15 MB set_value once stored another request's
 * header and data as its own). So:
 *   - the client: a request whose frame was not written whole leaves the
 *     connection dead — every later call fails at once (ConnectionCutError,
 *     winerror 1236 in Python) and the agent's input is closed, so the agent
 *     sees EOF in the middle of the frame; a response cut or malformed on
 *     the read side does the same;
 *   - the agent: applies a request only once its whole frame is in (EOF
 *     mid-frame: discard it and exit); from version 3, a payload whose CRC
 *     does not match (a spliced stream) is answered with 13 and the agent
 *     stops reading — nothing after it can be trusted to be aligned. A
 *     header whose magic or check fails is skipped byte by byte (resync):
 *     a whole, checked frame is still needed before anything is applied.
 *
 * The Python side of this protocol is src/regfast/agent.py (same numbers).
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

#define AG_MAGIC          0x6652u
#define AG_VERSION        3u   /* 3: payload CRC trailer; 2: snapshots carry a security-descriptor hash */
#define AG_MIN_VERSION    2u   /* oldest version still served (HELLO negotiates) */
#define AG_TRAILER        4u   /* version >= 3: u32 CRC-32 of the payload after it */
#define AG_HEADER         16u
#define AG_RESPONSE       0x8000u
#define AG_EVENT          0xC000u
#define AG_MAX_REQUEST    (16u << 20)   /* bigger frames: RF_E_LIMIT, payload skipped */
#define AG_MAX_RESPONSE   (64u << 20)   /* bigger answers: RF_E_LIMIT instead */
#define AG_MAX_HANDLES    65535u
#define AG_MAX_NAME_CHARS 16383u        /* value names (Windows: 16,383) */
#define AG_MAX_PATH_CHARS 32767u

/* Ops. Request payload -> response payload after the i32 status. */
enum {
    AG_OP_HELLO       = 1,  /* "RFAG" u16 min u16 max -> u16 version u32 max_request u32 max_response
                               u32 pid u32 caps str8 description */
    AG_OP_PING        = 2,  /* bytes -> the same bytes */
    AG_OP_OPEN_KEY    = 3,  /* u32 root u32 view u32 access u32 flags(1 create) str16 path
                               -> u32 handle u32 disposition (1 created, 2 opened) */
    AG_OP_CLOSE_KEY   = 4,  /* u32 handle -> (ends the watches that use it) */
    AG_OP_KEY_INFO    = 5,  /* u32 handle -> u64 last_write u32 subkeys values max_name max_class
                               max_value_name max_value_data flags str16 class */
    AG_OP_SUBKEYS     = 6,  /* u32 handle -> u32 n, n x (u64 last_write str16 name) */
    AG_OP_GET_VALUE   = 7,  /* u32 handle str16 name -> u32 type u32 len bytes */
    AG_OP_READ_VALUES = 8,  /* u32 handle u32 flags u32 n (AG_ALL = every value) n x str16
                               u32 n_types n_types x u32 -> u32 rows u32 arena_len,
                               rows x {u32 type i32 status u32 length u32 data_off
                               u32 name_off u32 name_len}, arena */
    AG_OP_SET_VALUE   = 9,  /* u32 handle u32 type str16 name u32 len bytes -> */
    AG_OP_DELETE_VALUE= 10, /* u32 handle str16 name -> */
    AG_OP_DELETE_KEY  = 11, /* u32 handle u32 flags(1 tree) str16 subkey -> */
    AG_OP_SNAPSHOT    = 12, /* u32 handle u32 flags u32 max_keys -> snapshot */
    AG_OP_WATCH       = 13, /* u32 flags u32 filter u32 max_keys u32 delay_ms u32 n n x u32 handle
                               -> u32 watch_id u32 threads, n x snapshot */
    AG_OP_UNWATCH     = 14, /* u32 watch_id -> */
    AG_OP_BENCH       = 15, /* u32 method u32 handle u32 reps u32 n n x str16
                               -> u64 elapsed_ns u64 reads_ok i32 multi_state */
    AG_OP_STATS       = 16, /* -> u32 handles_open u32 watches u64 frames u64 bad_frames */
    AG_OP_QUIT        = 17, /* -> (then the agent exits) */
};

#define AG_ALL 0xFFFFFFFFu

/* Snapshot (SNAPSHOT response, WATCH response, change events):
 *   u32 n_keys u32 flags (AG_SNAP_TRUNCATED, AG_SNAP_DATA)
 *   n_keys x { str16 rel_path u64 last_write u64 sd_hash u32 n_values
 *              n_values x { str16 name u32 type u32 size u64 fnv1a64 [str8 data] } }
 * Keys in depth-first pre-order; rel_path "" is the snapshot's root. */
#define AG_SNAP_SUBTREE   0x1u   /* request flags */
#define AG_SNAP_KEEP_DATA 0x2u
#define AG_SNAP_TRUNCATED 0x1u   /* response flags */
#define AG_SNAP_DATA      0x2u

/* Watch events (op AG_OP_WATCH | AG_EVENT, id = watch id):
 *   u32 kind u32 index u64 seq u64 agent_time_ns, then
 *   kind AG_EV_CHANGE: a snapshot of key `index`;
 *   kind AG_EV_LOST:   i32 status (the key cannot be watched any more: deleted...);
 *   kind AG_EV_ENDED:  u32 reason (AG_END_*) — the last event of a watch. */
enum { AG_EV_CHANGE = 1, AG_EV_LOST = 2, AG_EV_ENDED = 3 };
enum { AG_END_UNWATCH = 1, AG_END_KEY_CLOSED = 2, AG_END_QUIT = 3 };

#define AG_NOTIFY_VALID   0x0000000Fu   /* NAME | ATTRIBUTES | LAST_SET | SECURITY */

/* Bench methods (AG_OP_BENCH); each reads the n names `reps` times. */
enum {
    AG_BENCH_REGQUERYVALUEEX = 1, AG_BENCH_REGGETVALUE = 2, AG_BENCH_NT_PARTIAL = 3,
    AG_BENCH_NT_FULL = 4, AG_BENCH_RF_SINGLE = 5, AG_BENCH_RF_BATCH = 6, AG_BENCH_RF_BATCH_FULL = 7,
    AG_BENCH_OPEN_EACH = 8, AG_BENCH_REGGETVALUE_PATH = 9, AG_BENCH_RF_OPEN_EACH = 10,
    AG_BENCH_MAX = 10
};

/* ---- buffers (agent_main.c) ---------------------------------------------- */

typedef struct obuf { uint8_t *p; size_t n, cap; int oom; } obuf;
typedef struct ibuf { const uint8_t *p; size_t n, pos; int bad; } ibuf;

void ob_put(obuf *b, const void *src, size_t n);
void ob_u16(obuf *b, uint16_t v);
void ob_u32(obuf *b, uint32_t v);
void ob_u64(obuf *b, uint64_t v);
void ob_str16(obuf *b, const wchar_t *s, size_t nchars);
void ob_str8(obuf *b, const char *s, size_t n);
void ob_free(obuf *b);
uint32_t ib_u32(ibuf *b);
/** A str16 as a fresh NUL-terminated wchar_t copy (malloc; NULL + bad on error). */
wchar_t *ib_str16(ibuf *b, size_t max_chars, size_t *nchars);

/* ---- errors: what the next error response says ------------------------- */
rf_status ag_fail(rf_status st, int64_t native, const char *fmt, ...);
rf_status ag_fail_rf(rf_status st);   /* details from rf_last_error() */
rf_status ag_last(void);              /* the status of the last ag_fail on this thread */

/* ---- handles (agent_main.c) ---------------------------------------------- */
typedef struct khandle {
    int       used;
    uint32_t  gen;
    uint32_t  root, view, access;
    wchar_t  *path;         /* relative to the root, NUL-terminated ("" = the root) */
    size_t    plen;
    rf_hive  *hive;         /* shared per (root, view, access) */
    rf_key    key;          /* 0 until opened */
    HKEY      hk;           /* Win32 handle for writes, opened on first use */
} khandle;

khandle *kh_get(uint32_t id);
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

/* ---- the request handler (agent_core.c), shared by its two hosts:
 *      agent_main.c (frames over stdin/stdout) and the Windows Python
 *      extension regfast._live (in-process requests). One request at a time:
 *      the host serializes calls to ag_dispatch; watch threads only emit
 *      events through the sink. ------------------------------------------ */

/** Where watch events go: op is AG_OP_WATCH | AG_EVENT, id the watch id.
 *  Called from watch threads; must not call back into ag_dispatch. */
typedef void (*ag_event_sink)(uint16_t op, uint32_t id, const uint8_t *payload, size_t n, void *ctx);

/** Once per process, before the first ag_dispatch. */
void ag_init(ag_event_sink sink, void *ctx);
/**
 * Handles one request (op, id, payload) and leaves its response payload in
 * *reply (i32 status first; an error goes on with i64 native + str8 message).
 * *deferred: the host must call watch_after_reply() once the reply is out
 * (a watch's first events must follow its reply). Returns 1 after QUIT.
 */
int ag_dispatch(uint16_t op, uint32_t id, const uint8_t *payload, size_t len, obuf *reply,
                int *deferred);
/** The error response for the last ag_fail on this thread, into *reply. */
void ag_error_payload(rf_status st, obuf *reply);
/** Ends every watch, closes every handle and hive; HELLO is needed again. */
void ag_shutdown(void);
/** Counters for STATS: frames handled, frames refused as malformed. */
extern uint64_t ag_frames, ag_bad_frames;
/** The protocol version the last HELLO agreed on (0 before HELLO): the host
 *  frames everything after the HELLO response with it. */
extern uint32_t ag_version;

/* ---- output --------------------------------------------------------------- */
/** An event frame for the host (the sink given to ag_init). */
void send_frame(uint16_t op, uint32_t id, const uint8_t *payload, size_t n);
uint64_t ag_now_ns(void);

/* ---- snapshots and watches (agent_watch.c) ------------------------------- */
uint64_t fnv1a64(const void *p, size_t n);
/** Appends a snapshot of the subtree at `hk` (at most max_keys keys). */
rf_status snapshot_key(HKEY hk, uint32_t flags, uint32_t max_keys, obuf *out);
rf_status op_snapshot(ibuf *in, obuf *out);
rf_status op_watch(ibuf *in, obuf *out, uint32_t req_id, int *deferred);
void watch_after_reply(void);
rf_status op_unwatch(ibuf *in, obuf *out);
void watch_handle_closed(uint32_t handle_id);
void watch_stop_all(uint32_t reason);
uint32_t watch_count(void);

/* ---- bench (agent_bench.c) ------------------------------------------------ */
rf_status op_bench(ibuf *in, obuf *out);

/* ---- administration (agent_admin.c): rename, security, privileges, hives,
 *      MUI strings. Ops AG_OP_ADMIN_FIRST..LAST, listed in agent_admin.c. ---- */
#define AG_OP_ADMIN_FIRST 32u
#define AG_OP_ADMIN_LAST  63u
rf_status op_admin(uint16_t op, ibuf *in, obuf *out);

/* ---- transactions (agent_tx.c): KTM where the system has it. Ops
 *      AG_OP_TX_FIRST..LAST, listed in agent_tx.c. ------------------------- */
#define AG_OP_TX_FIRST 64u
#define AG_OP_TX_LAST  79u
rf_status op_tx(uint16_t op, ibuf *in, obuf *out);
/** Ends every open transaction uncommitted (KTM rolls back a closed one). */
void tx_shutdown(void);

#endif /* REGFAST_AGENT_H */
