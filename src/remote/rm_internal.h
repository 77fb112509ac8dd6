/*
 * rm_internal.h — the remote backend's private state: the connection
 * (framing, timeouts, the one lock), the per-hive key and value tables, the
 * parked batch reply, the event queues of watches. Files, each calling only
 * those above it in this list (tools/check_c_cycles.py):
 *
 *   rm_transport.c  fd pair (POSIX, poll) and HANDLE pair (Windows) streams
 *   rm_conn.c       frames, timeouts, kill, HELLO, calls, event queues, scratch
 *   rm_keys.c       key entries (paths, agent handles, LRU) and value tokens
 *   rm_batch.c      READ_VALUES straight into the caller's columns and arena
 *   rm_watch.c      rf_watch over WATCH / UNWATCH and event frames
 *   rm_backend.c    the method table and the other ops; rf_remote_open
 */
#ifndef RM_INTERNAL_H
#define RM_INTERNAL_H

#include <stdint.h>
#include <stddef.h>

#include "core/rf_internal.h"
#include "regfast/regfast_backend.h"
#include "regfast/regfast_remote.h"
#include "agent/ag_proto.h"

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
typedef CRITICAL_SECTION rm_mutex;
#define rm_mutex_init(m) InitializeCriticalSection(m)
#define rm_mutex_free(m) DeleteCriticalSection(m)
#define rm_lock(m) EnterCriticalSection(m)
#define rm_unlock(m) LeaveCriticalSection(m)
#else
#include <pthread.h>
typedef pthread_mutex_t rm_mutex;
#define rm_mutex_init(m) pthread_mutex_init((m), NULL)
#define rm_mutex_free(m) pthread_mutex_destroy(m)
#define rm_lock(m) pthread_mutex_lock(m)
#define rm_unlock(m) pthread_mutex_unlock(m)
#endif

#define RM_NONE 0xFFFFFFFFu

/* The longest subkey name a listing (SUBKEYS) hands out, in chars. Windows
 * allows 255 (and rf_key_open refuses longer components, as RegOpenKeyExW
 * does); Wine 8's server allows 256 (MAX_NAME_LEN: `wine reg add` makes a
 * 256-char key and NtEnumerateKey lists it, measured here). Such a key is
 * listed by name, but its Key's own calls fail with 161: they reopen it by
 * path, and no backend opens a component over 255. A longer name fails
 * that listing only; the connection stays up. */
#define RM_MAX_LISTED_NAME 256u

/* The protocol versions this client speaks (ag_ops.def): the CRC trailer of
 * version 3 and the payload layouts of 4 (column READ_VALUES, KEY_INFO's
 * stored name, SET_SECURITY_SD, volatile OPEN_KEY) from RM_VERSION_MIN; the
 * links of 5 (SUBKEYS' hints, KEY_IS_LINK) when the agent has them (with an
 * agent of 4, rf_key_is_link answers 120 and hints are 0: walks go through
 * links, down to their depth limit). */
#define RM_VERSION_MIN AG_V_LAYOUTS
#define RM_VERSION     AG_V_LINKS

/* ---- events of a watch (rm_conn.c owns the queue; rm_watch.c the rf_watch) */

typedef struct rm_event {
    uint32_t  kind, index;
    uint64_t  seq, time_ns;
    rf_status status;
    rf_bytes  snap;
} rm_event;

/* The queue of one agent watch: at most one CHANGE and one LOST per key
 * (a newer snapshot replaces a queued one), so 2n + 1 entries suffice. */
typedef struct rm_evq {
    uint32_t  agent_id;     /* the agent's watch id */
    uint32_t  n;            /* keys */
    rm_event *q;
    uint32_t  cap, head, len;
    int      *queued;       /* per key: the queue slot of its CHANGE, or -1 */
    uint32_t  lost;
    int       ended;        /* an ENDED event came, or the connection died */
    struct rm_evq *next;
} rm_evq;

/* ---- the parked part of a batch reply (rm_batch.c) ------------------------ */

typedef struct rm_park {
    int       active;
    rf_hive  *hive;
    uint8_t  *req;          /* the request it answers (payload bytes) */
    size_t    req_len;
    uint32_t  rows, arena_len, names_len;
    uint8_t  *cols;         /* rows x 28 bytes: the column block as received */
    uint8_t  *names;        /* names_len bytes */
    size_t    arena_left;   /* arena bytes still in the stream */
} rm_park;

/* ---- the connection (rm_conn.c) -------------------------------------------- */

struct rf_remote {
    rf_transport t;
    int       t_open;
    rm_mutex  lock;          /* one request at a time; guards everything below */
    uint32_t  timeout_ms;
    int       refs;          /* the caller's + one per hive */
    rf_status dead;          /* 0, or RF_E_CONNECTION / RF_E_CONNECTION_CUT once killed */
    char      why[200];
    uint32_t  next_id;
    uint32_t  version, pid, max_request, max_response;   /* version 0 until HELLO's reply */
    uint32_t  rx_crc;        /* CRC-32 of the payload read so far of the frame in progress */
    int       rx_open;       /* that frame's trailer is still to be read (version >= 3) */
    char      description[160];
    uint64_t  requests, bytes_in, bytes_out;
    uint64_t  seq;           /* bumped per request: caches are valid for one seq */
    uint8_t  *req;           /* AG_HEADER bytes reserved, then the payload being built */
    size_t    req_len, req_cap;
    int       req_oom;
    uint8_t  *rep;           /* a reply's payload (after the status) */
    size_t    rep_cap;
    rm_park   park;
    rm_evq   *evqs;
    struct rm_hive *hives;   /* every open hive of the connection (cache invalidation) */
};

/* Monotonic milliseconds (deadlines). */
uint64_t rm_now_ms(void);

/* Fails with the connection's death status and reason when it is dead. */
rf_status rm_alive(rf_remote *c);
/* Kills the connection (closes the transport) and fails with RF_E_CONNECTION:
 * the agent gone, no memory, the caller's kill. */
rf_status rm_kill(rf_remote *c, const char *fmt, ...) RF_PRINTF(2, 3);
/* The same with RF_E_CONNECTION_CUT: a frame cut in either direction, a CRC
 * that does not match, a frame or reply that does not parse. */
rf_status rm_cut(rf_remote *c, const char *fmt, ...) RF_PRINTF(2, 3);

/* Request building: rm_begin() resets the payload; rm_put*() append. */
void rm_begin(rf_remote *c);
void rm_put(rf_remote *c, const void *p, size_t n);
void rm_put32(rf_remote *c, uint32_t v);
void rm_put16s(rf_remote *c, const uint16_t *s, size_t nchars);    /* str16 */
void rm_put_name(rf_remote *c, const rf_name *n);                   /* str16 of a stored name */

/* A call in progress: the reply's payload bytes not yet read. */
typedef struct rm_reply {
    uint16_t op;
    uint32_t left;
    uint64_t deadline;
} rm_reply;

/*
 * Sends the request built since rm_begin(), then reads frames until its reply
 * (routing events to their watches, dropping late replies of timed-out
 * requests) and its status. RF_OK: r->left payload bytes follow, to be read
 * with rm_recv/rm_skip and checked with rm_end. Else the agent's status with
 * its message in rf_last_error() (the reply consumed), or RF_E_TIMEOUT (the
 * request went out, no reply yet: the connection stays), or RF_E_CONNECTION.
 * Drains a parked batch reply first. Caller holds the lock.
 */
rf_status rm_call(rf_remote *c, uint16_t op, rm_reply *r);
/* Reads n bytes of the reply straight into dst (NULL: discards them); with
 * the last byte of the payload, its CRC trailer is read and checked. */
rf_status rm_recv(rf_remote *c, rm_reply *r, void *dst, size_t n);
/* The reply must be fully read now: anything left is a malformed reply. */
rf_status rm_end(rf_remote *c, rm_reply *r);
/* rm_call, then the whole reply into c->rep: *p, *n (bounded by the frame). */
rf_status rm_call_buf(rf_remote *c, uint16_t op, const uint8_t **p, size_t *n);
/* A malformed reply to `op`: kills the connection (RF_E_CONNECTION_CUT). */
rf_status rm_malformed(rf_remote *c, uint16_t op, const char *what);

/* Reads frames for up to `ms` with no request outstanding (watches);
 * RF_OK when one or more arrived, RF_E_TIMEOUT when none did. */
rf_status rm_pump(rf_remote *c, uint32_t ms);

/* Event queues of agent watches, filled by rm_call/rm_pump as frames come. */
rm_evq *rm_evq_add(rf_remote *c, uint32_t agent_id, uint32_t n);
void rm_evq_remove(rf_remote *c, rm_evq *q);
/* Pops the oldest event into *e (its snapshot moves to e->snap): 1, or 0 if none. */
int rm_evq_pop(rm_evq *q, rm_event *e);

/* Per-thread scratch (borrowed results: names, value data, descriptors):
 * valid until the next call into any remote hive from the same thread.
 * One buffer per use that can be live at once: a rm_tls() call may move the
 * buffer it returns (RM_TLS_META holds a batch's name offsets while its
 * names are widened in RM_TLS_AUX). */
enum { RM_TLS_NAME, RM_TLS_DATA, RM_TLS_AUX, RM_TLS_META, RM_TLS_COUNT };
void *rm_tls(int which, size_t need);

/* Little-endian readers over a reply held in memory. */
typedef struct rm_rd { const uint8_t *p; size_t n, pos; int bad; } rm_rd;
uint32_t rm_rd32(rm_rd *r);
uint64_t rm_rd64(rm_rd *r);
const uint8_t *rm_rdn(rm_rd *r, size_t n);
/* A str16: its bytes (even count) and chars. */
const uint16_t *rm_rd16s(rm_rd *r, size_t *nchars);

/* The connection of a remote hive. */
void rm_conn_ref(rf_remote *c);
void rm_conn_unref(rf_remote *c);

/* ---- key entries and value tokens (rm_keys.c) ------------------------------- */

typedef struct rm_entry {
    uint16_t *path;         /* root-relative, as opened (or as stored once known) */
    uint32_t  plen;         /* chars */
    uint32_t  gen;
    uint32_t  handle;       /* the agent's key handle; 0 = not open */
    uint32_t  hash, hnext;  /* upcased-path index */
    uint32_t  lprev, lnext; /* LRU of live entries (recycling) */
    uint32_t  oprev, onext; /* LRU of open handles (closing) */
    uint32_t  pins;         /* watches using its handle */
    uint8_t   state;        /* RM_FREE, RM_LIVE, RM_DELETED */
    uint8_t   stored_name;  /* the last component is the name to show: as stored, or
                               as a WOW64 view presents it (rm_backend.c reconcile_name) */
    uint8_t   unloaded;     /* its handle was closed by an unload of its hive: a
                               reopen that finds no key says 2, not 1018 */
    uint8_t   link;         /* RM_LINK_*: a symbolic link? as KEY_IS_LINK said
                               (a listing that names the key forgets it) */
} rm_entry;

enum { RM_LINK_UNKNOWN = 0, RM_LINK_NO = 1, RM_LINK_YES = 2 };

enum { RM_FREE = 0, RM_LIVE = 1, RM_DELETED = 2 };

typedef struct rm_vent {
    uint16_t *name;
    uint32_t  nchars, key_idx, key_gen, gen, hash, hnext;
    uint8_t   used;
} rm_vent;

typedef struct rm_hive {
    rf_hive    base;        /* must be first */
    rf_remote *c;
    struct rm_hive *sibling; /* the connection's next hive (rf_remote.hives) */
    uint32_t   root, view, access;
    uint16_t   tag;
    rm_entry  *e;
    uint32_t   nalloc, nused_hw, free_head, used, max_entries;
    uint32_t  *buckets;
    uint32_t   nbuckets;
    uint32_t   l_head, l_tail, o_head, o_tail;
    uint32_t   handles_open, max_handles;
    rm_vent   *v;
    uint32_t   vcap, vnext;
    uint32_t  *vbuckets;
    /* the last GET_VALUE, for value_info/value_read right after value_find */
    uint64_t   vc_seq;
    rf_value   vc_token;
    uint32_t   vc_type;
    uint8_t   *vc_data;
    size_t     vc_len, vc_cap;
    /* the last SUBKEYS / value list, for the retry right after a count */
    uint64_t   list_seq;
    rf_key     list_key;
    int        list_values;
    int        list_hinted;  /* a SUBKEYS list with the agent's hints (list_hint) */
    uint64_t  *list;
    uint8_t   *list_hint;
    size_t     list_n, list_cap;
} rm_hive;

#define RM_VALUE_BIT (UINT64_C(1) << 47)

/* Whether two names are the same name as the registry compares them (each
 * UTF-16 unit upcased). */
int       rm_same_name(const uint16_t *a, size_t na, const uint16_t *b, size_t nb);
rf_status rm_keys_init(rm_hive *h);
void      rm_keys_free(rm_hive *h);
rf_key    rm_root_token(rm_hive *h);
/* Entry of a key token (checked: tag, generation, state). */
rf_status rm_entry_of(rm_hive *h, rf_key k, uint32_t *idx);
/* The entry of a root-relative path, found or made (no agent handle). */
rf_status rm_entry_for(rm_hive *h, const uint16_t *path, size_t n, uint32_t *idx);
/* parent's path + '\' + rel, in TLS scratch. */
rf_status rm_join(rm_hive *h, uint32_t parent, const uint16_t *rel, size_t n, uint16_t **out, size_t *out_n);
rf_key    rm_token(rm_hive *h, uint32_t idx);
/* The entry's agent handle, opened (OPEN_KEY) when it has none. */
rf_status rm_handle(rm_hive *h, uint32_t idx, uint32_t *handle);
/* The agent no longer knows the entry's handle (6): drop it without CLOSE_KEY. */
void      rm_forget_handle(rm_hive *h, uint32_t idx);
/* Adopts an agent handle for an entry (closing one it had). */
rf_status rm_adopt(rm_hive *h, uint32_t idx, uint32_t handle);
/* After an agent error on an entry's handle: 1018/2 make it a tombstone. */
void      rm_after_error(rm_hive *h, uint32_t idx, rf_status st);
/* Tombstones the entry of `path` and every entry below it (delete, rename),
 * in every hive of the connection with the same root: another (view,
 * access) of it may have cached a handle that would follow a renamed key. */
void      rm_forget_subtree(rm_hive *h, const uint16_t *path, size_t n);
/* Closes the agent handles of the entries at and below `path` (this hive and
 * every sibling on its root) but keeps the entries: their next use reopens
 * by path, and the agent says whether the key is there (an unload). */
void      rm_close_subtree_handles(rm_hive *h, const uint16_t *path, size_t n);
/* Value tokens: (key entry, name) interned. */
rf_status rm_value_intern(rm_hive *h, uint32_t key_idx, const uint16_t *name, size_t n, rf_value *out);
rf_status rm_value_resolve(rm_hive *h, rf_value v, uint32_t *key_idx, const uint16_t **name, size_t *n);

/* ---- batches (rm_batch.c) and watches (rm_watch.c) --------------------------- */

rf_status rm_read_values(rf_hive *h, rf_key k, const rf_name *names, size_t n, const uint32_t *types,
                         size_t n_types, uint32_t flags, rf_batch *b);
rf_status rm_watch_open(rf_hive *h, const rf_key *keys, size_t n, const rf_watch_opts *o, rf_bytes *baselines,
                        rf_watch **out);
rf_status rm_watch_next(rf_watch *w, uint32_t timeout_ms, rf_watch_event *ev);
void      rm_watch_stop(rf_watch *w);
void      rm_watch_close(rf_watch *w);

/* Backend name check without a table reference (no call cycle). */
static inline rm_hive *rm_cast(rf_hive *h)
{
    const char *n = h && h->ops ? h->ops->name : NULL;
    return (n && n[0] == 'r' && n[1] == 'e' && n[2] == 'm' && n[3] == 'o' && n[4] == 't' && n[5] == 'e' && !n[6])
               ? (rm_hive *)h : NULL;
}

#endif
