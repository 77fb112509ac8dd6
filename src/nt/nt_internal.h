/*
 * nt_internal.h — the nt backend's private state: the NT native API it calls
 * (declared here, loaded from ntdll with GetProcAddress so one missing export
 * can never stop a program from loading), the key slot table that is also
 * the open-once handle cache, the value interning table, and the per-thread
 * scratch buffers borrowed pointers point into.
 *
 * Locking: one SRWLOCK per hive guards both tables. It is never held across
 * a system call that talks to the registry: a caller pins the slot whose
 * handle it uses (pins > 0 keeps the handle open and the slot alive), drops
 * the lock, makes the call, and unpins. Handles evicted or recycled while the
 * lock is held are closed after it is released.
 */
#ifndef NT_INTERNAL_H
#define NT_INTERNAL_H

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#include <wchar.h>

#include "core/rf_internal.h"
#include "regfast/regfast_backend.h"
#include "regfast/regfast_nt.h"

/* ------------------------------------------------------------------------ */
/* NT native API (ntdll), as documented in the WDK                           */
/* ------------------------------------------------------------------------ */

typedef LONG NTSTATUS;

#define NT_SUCCESS(s)                  ((NTSTATUS)(s) >= 0)
#define NT_STATUS_SUCCESS              ((NTSTATUS)0x00000000L)
#define NT_STATUS_BUFFER_OVERFLOW      ((NTSTATUS)0x80000005L)
#define NT_STATUS_NO_MORE_ENTRIES      ((NTSTATUS)0x8000001AL)
#define NT_STATUS_INVALID_HANDLE       ((NTSTATUS)0xC0000008L)
#define NT_STATUS_INVALID_PARAMETER    ((NTSTATUS)0xC000000DL)
#define NT_STATUS_ACCESS_DENIED        ((NTSTATUS)0xC0000022L)
#define NT_STATUS_BUFFER_TOO_SMALL     ((NTSTATUS)0xC0000023L)
#define NT_STATUS_OBJECT_NAME_NOT_FOUND ((NTSTATUS)0xC0000034L)
#define NT_STATUS_KEY_DELETED          ((NTSTATUS)0xC000017CL)

typedef struct nt_ustr {          /* UNICODE_STRING */
    USHORT Length, MaximumLength; /* bytes */
    PWSTR  Buffer;
} nt_ustr;

typedef struct nt_oattr {         /* OBJECT_ATTRIBUTES */
    ULONG    Length;
    HANDLE   RootDirectory;
    nt_ustr *ObjectName;
    ULONG    Attributes;
    PVOID    SecurityDescriptor, SecurityQualityOfService;
} nt_oattr;
#define NT_OBJ_CASE_INSENSITIVE 0x40
#define NT_OBJ_OPENLINK         0x100   /* the last component as itself, not its link target */

/* KEY_INFORMATION_CLASS */
enum { KeyBasicInformation = 0, KeyNodeInformation = 1, KeyFullInformation = 2, KeyNameInformation = 3 };
/* KEY_VALUE_INFORMATION_CLASS */
enum { KeyValueBasicInformation = 0, KeyValueFullInformation = 1, KeyValuePartialInformation = 2 };

typedef struct nt_key_basic { LARGE_INTEGER LastWriteTime; ULONG TitleIndex, NameLength; WCHAR Name[1]; } nt_key_basic;
typedef struct nt_key_full {
    LARGE_INTEGER LastWriteTime;
    ULONG TitleIndex, ClassOffset, ClassLength, SubKeys, MaxNameLen, MaxClassLen, Values,
          MaxValueNameLen, MaxValueDataLen;
    WCHAR Class[1];
} nt_key_full;
typedef struct nt_key_name_info { ULONG NameLength; WCHAR Name[1]; } nt_key_name_info;
typedef struct nt_kv_basic { ULONG TitleIndex, Type, NameLength; WCHAR Name[1]; } nt_kv_basic;
typedef struct nt_kv_full { ULONG TitleIndex, Type, DataOffset, DataLength, NameLength; WCHAR Name[1]; } nt_kv_full;
typedef struct nt_kv_partial { ULONG TitleIndex, Type, DataLength; UCHAR Data[1]; } nt_kv_partial;
typedef struct nt_kv_entry { nt_ustr *ValueName; ULONG DataLength, DataOffset, Type; } nt_kv_entry;

#define NT_KV_PARTIAL_HDR 12u  /* offsetof(KEY_VALUE_PARTIAL_INFORMATION, Data) */
#define NT_KV_FULL_HDR    20u  /* offsetof(KEY_VALUE_FULL_INFORMATION, Name) */
#define NT_KV_BASIC_HDR   12u
#define NT_KEY_FULL_HDR   48u  /* offsetof(KEY_FULL_INFORMATION, Class) */
#define NT_KEY_BASIC_HDR  16u

typedef struct nt_api {
    NTSTATUS (NTAPI *OpenKeyEx)(HANDLE *, ACCESS_MASK, nt_oattr *, ULONG);     /* Win7+ */
    NTSTATUS (NTAPI *OpenKey)(HANDLE *, ACCESS_MASK, nt_oattr *);
    NTSTATUS (NTAPI *QueryValueKey)(HANDLE, nt_ustr *, ULONG, PVOID, ULONG, ULONG *);
    NTSTATUS (NTAPI *QueryKey)(HANDLE, ULONG, PVOID, ULONG, ULONG *);
    NTSTATUS (NTAPI *EnumerateKey)(HANDLE, ULONG, ULONG, PVOID, ULONG, ULONG *);
    NTSTATUS (NTAPI *EnumerateValueKey)(HANDLE, ULONG, ULONG, PVOID, ULONG, ULONG *);
    NTSTATUS (NTAPI *QueryMultipleValueKey)(HANDLE, nt_kv_entry *, ULONG, PVOID, ULONG *, ULONG *);
    NTSTATUS (NTAPI *QuerySecurityObject)(HANDLE, ULONG, PVOID, ULONG, ULONG *);
    NTSTATUS (NTAPI *Close)(HANDLE);
    ULONG    (NTAPI *RtlNtStatusToDosError)(NTSTATUS);
    NTSTATUS (NTAPI *RtlFormatCurrentUserKeyPath)(nt_ustr *);
    VOID     (NTAPI *RtlFreeUnicodeString)(nt_ustr *);
    NTSTATUS (NTAPI *SetValueKey)(HANDLE, nt_ustr *, ULONG, ULONG, PVOID, ULONG);
    NTSTATUS (NTAPI *DeleteValueKey)(HANDLE, nt_ustr *);
    NTSTATUS (NTAPI *DeleteKey)(HANDLE);
} nt_api;

/* ---- nt_api.c: the ntdll table, loaded once -------------------------------- */

extern nt_api nt;

/* Loads `nt` once; RF_E_NOT_SUPPORTED if ntdll lacks a required export. */
rf_status nt_load_api(void);

/* An optional export (GetProcAddress; the DLL loaded if needed), or NULL. */
FARPROC nt_proc(const wchar_t *dll, const char *name);

static inline size_t nt_wlen(const uint16_t *s) { return s ? wcslen((const wchar_t *)s) : 0; }

/* Win32 codes the backend returns by name */
#define ERR_ALREADY_EXISTS     183
#define ERR_NOT_REGISTRY_FILE  1017
#define ERR_NO_SUCH_PRIVILEGE  1313
#define ERR_INVALID_ACL        1336

/* ------------------------------------------------------------------------ */
/* Status mapping (nt_status.c: the one NTSTATUS -> Win32 table)             */
/* ------------------------------------------------------------------------ */

rf_status nt_error(NTSTATUS st);

/* Row i of the table (for tests); 0 past the end. */
int nt_status_row(size_t i, uint32_t *status, rf_status *win32, const char **name);

/* rfi_fail() with the mapped code, the NTSTATUS as `native`, and
 * "<api>(<name>): <status text> (NTSTATUS 0x...)" as the message. */
rf_status nt_fail(NTSTATUS st, const char *api, const uint16_t *name, size_t nchars);

/* rfi_fail() for a Win32 error code returned by a Reg* / Win32 call. */
rf_status nt_fail_win32(LONG err, const char *api, const uint16_t *name, size_t nchars);
/* A NUL-terminated malloc'd copy of a counted path for the Reg* calls; a NUL
 * inside is refused with 87 (nt_write.c). */
rf_status nt_zcopy(const uint16_t *s, size_t n, wchar_t **out);

/* A name as UTF-8 for messages, truncated to fit `cap`. */
void nt_name_utf8(const uint16_t *name, size_t nchars, char *out, size_t cap);

/* ------------------------------------------------------------------------ */
/* Tokens                                                                    */
/* ------------------------------------------------------------------------ */

#define NT_NONE        0xFFFFFFFFu
#define NT_GEN_MASK    0x7FFFFFu
#define NT_IDX_MAX     0xFFFFFEu   /* idx + 1 fits 24 bits */
#define NT_VALUE_BIT   (UINT64_C(1) << 47)

static inline uint64_t nt_token(uint16_t tag, int value, uint32_t gen, uint32_t idx)
{
    return ((uint64_t)tag << 48) | (value ? NT_VALUE_BIT : 0) | ((uint64_t)(gen & NT_GEN_MASK) << 24) |
           (uint64_t)(idx + 1);
}

/* ------------------------------------------------------------------------ */
/* Key slots (nt_cache.c)                                                    */
/* ------------------------------------------------------------------------ */

enum { SLOT_FREE = 0, SLOT_LIVE = 1, SLOT_DELETED = 2 };

typedef struct nt_slot {
    HANDLE        handle;     /* NULL: not open (never opened, or evicted) */
    uint16_t     *name;       /* this component, as first opened/enumerated (malloc) */
    uint32_t      name_len;   /* chars */
    uint32_t      gen;        /* 1..NT_GEN_MASK */
    uint32_t      parent;     /* slot index; NT_NONE for the root */
    uint32_t      nchildren;  /* live slots whose parent this is: a slot is recycled only at 0 */
    uint32_t      hash;       /* of (parent, upcased name) */
    uint32_t      hnext;      /* index chain */
    uint32_t      sprev, snext; /* slot LRU (every used slot but the root) */
    uint32_t      hprev, hnext_; /* handle LRU (slots with a handle, but the root) */
    uint32_t      max_data;   /* KeyFullInformation.MaxValueDataLen hint; NT_NONE unknown */
    volatile LONG pins;       /* users of `handle` right now */
    uint8_t       state;      /* SLOT_* */
    uint8_t       in_hlru;
} nt_slot;

#define NT_CHUNK_BITS 12u
#define NT_CHUNK      (1u << NT_CHUNK_BITS)
#define NT_MAX_CHUNKS ((NT_IDX_MAX + NT_CHUNK) / NT_CHUNK)

typedef struct nt_vslot {     /* an interned (key slot, value name) */
    uint16_t *name;           /* as stored (malloc) */
    uint32_t  name_len;       /* chars */
    uint32_t  key_idx, key_gen;
    uint32_t  gen;
    uint32_t  hash, hnext;
    uint8_t   used;
} nt_vslot;

typedef struct nt_stats_c {   /* counters bumped outside the lock: Interlocked */
    volatile LONG64 misses, hits, opens, reopens, handle_evictions, slot_recycles, invalidations,
                    buffer_grows, regrows, multi_batches;
    volatile LONG   last_open_components;
} nt_stats_c;

typedef struct nt_hive {
    rf_hive     base;          /* must be first: the core sees only this */
    uint32_t    root_id;       /* RF_HKEY_* */
    uint32_t    view;          /* RF_VIEW_* */
    ACCESS_MASK access;        /* desired access | view flag */
    int         reg_open;      /* 1: open through RegOpenKeyExW (a WOW64 view) */
    uint16_t    tag;
    SRWLOCK     lock;

    nt_slot    *chunks[NT_MAX_CHUNKS]; /* slot i is chunks[i >> NT_CHUNK_BITS][i & mask];
                                          chunks never move, so a pinned slot can be
                                          unpinned without the lock. Slot 0 is the root. */
    uint32_t    nalloc, nused_hw; /* allocated entries; high-water mark of used indices */
    uint32_t    slots_used, max_slots;
    uint32_t    free_head;     /* free slot list through hnext */
    uint32_t   *buckets;       /* key index heads */
    uint32_t    nbuckets;      /* power of two */
    uint32_t    s_head, s_tail;/* slot LRU: head = least recently used */
    uint32_t    h_head, h_tail;/* handle LRU */
    uint32_t    handles_open, max_handles;

    nt_vslot   *vslots;
    uint32_t    vnalloc, vused, max_values, vhand;
    uint32_t   *vbuckets;
    uint32_t    nvbuckets;

    nt_stats_c  st;
} nt_hive;

extern const rf_backend_ops nt_ops;

/* A pinned handle: valid until nt_release(). */
typedef struct nt_ref {
    uint32_t idx, gen;
    HANDLE   handle;
} nt_ref;

rf_status nt_cache_init(nt_hive *h, HANDLE root);
void      nt_cache_free(nt_hive *h);

/* Resolves a key token, opens its handle if needed, pins it. */
rf_status nt_acquire(nt_hive *h, rf_key k, nt_ref *ref);
void      nt_release(nt_hive *h, nt_ref *ref);

/* After `st` came back from a call on ref->handle: STATUS_KEY_DELETED turns
 * the slot into a tombstone; STATUS_INVALID_HANDLE forgets the handle (the
 * caller may acquire again). Returns nonzero when the caller should retry. */
int       nt_after_call(nt_hive *h, nt_ref *ref, NTSTATUS st);

/* Opens `path` below `parent` (see rf_live_key_open). */
rf_status nt_key_open(nt_hive *h, rf_key parent, const uint16_t *path, size_t nchars, rf_key *out);
rf_status nt_key_child_op(rf_hive *h, rf_key parent, const uint16_t *name, size_t nchars, rf_key *out);

/* Finds or creates (unopened) the slot of parent's child `name`. */
rf_status nt_child_slot(nt_hive *h, rf_key parent, const uint16_t *name, size_t nchars, rf_key *out);

rf_status nt_key_parent_of(nt_hive *h, rf_key k, rf_key *out);
/* Names equal as the registry compares them (upcased, rf_upcase). */
int nt_name_eq(const uint16_t *a, size_t na, const uint16_t *b, size_t nb);

/* A slot's parent token and a malloc'd copy of its name (NULL for the root). */
rf_status nt_slot_name(nt_hive *h, rf_key k, rf_key *parent, uint16_t **name, size_t *n);
uint32_t  nt_slot_hint(nt_hive *h, const nt_ref *ref);
void      nt_slot_set_hint(nt_hive *h, const nt_ref *ref, uint32_t max_data, int raise_only);

/* Value interning (nt_cache.c) */
rf_status nt_value_intern(nt_hive *h, const nt_ref *key, const uint16_t *name, size_t nchars,
                          rf_value *out);
/* Resolves a value token into its key token and a copy of its name (in the
 * calling thread's name scratch). */
rf_status nt_value_resolve(nt_hive *h, rf_value v, rf_key *key, const uint16_t **name,
                           size_t *nchars);

rf_status nt_stats(nt_hive *h, rf_live_stats *out);
rf_status nt_set_limits(nt_hive *h, uint32_t max_handles, uint32_t max_slots, uint32_t max_values);

/* By the backend's name, not by &nt_ops: a reference to the table from the
 * files the table refers to would tie them in one call cycle
 * (tools/check_c_cycles.py). Backend names are unique. */
static inline nt_hive *nt_cast(rf_hive *h)
{
    const char *n = h && h->ops ? h->ops->name : NULL;
    return (n && n[0] == 'n' && n[1] == 't' && n[2] == 0) ? (nt_hive *)h : NULL;
}

/* Forgets a cached path below `parent` and everything under it (tombstones:
 * tokens answer 1018, the path reopens afresh); nothing when not cached.
 * After a delete. Opens nothing. */
void nt_forget_path(nt_hive *h, rf_key parent, const uint16_t *path, size_t nchars);

/* ------------------------------------------------------------------------ */
/* Per-thread scratch (nt_cache.c)                                           */
/* ------------------------------------------------------------------------ */

enum { NT_BUF_DATA, NT_BUF_NAME, NT_BUF_PATH, NT_BUF_AUX, NT_BUF_SD, NT_BUF_COUNT };

/* A per-thread buffer of at least `need` bytes (8-aligned), grown and never
 * shrunk; NULL on out-of-memory (rf_last_error set). *cap_out = its size. */
void *nt_scratch(int which, size_t need, size_t *cap_out);

/* ------------------------------------------------------------------------ */
/* Values (nt_value.c)                                                       */
/* ------------------------------------------------------------------------ */

/* The one buffer-negotiation loop, for every variable-size NT query. */
enum { NT_Q_VALUE, NT_Q_KEY, NT_Q_ENUM_KEY, NT_Q_ENUM_VALUE, NT_Q_SECURITY };
typedef struct nt_q {
    int      op;       /* NT_Q_* */
    HANDLE   hd;
    ULONG    cls;      /* information class, or SECURITY_INFORMATION */
    ULONG    index;    /* enumerations */
    nt_ustr *name;     /* NT_Q_VALUE */
} nt_q;

/* Calls the query into the thread's `which` scratch, first offering `first`
 * bytes, then growing to ResultLength on STATUS_BUFFER_OVERFLOW/TOO_SMALL
 * until the answer fits (counting grows and regrows in h's stats when h is
 * not NULL). Returns the final NTSTATUS; *rec is the record on success. */
NTSTATUS nt_grow(nt_hive *h, const nt_q *q, int which, size_t first, void **rec, ULONG *rec_len);

/* Fails a call made on a pinned key handle: nt_after_call(), then nt_fail()
 * (an endless overflow becomes RF_E_MORE_DATA). */
rf_status nt_call_fail(nt_hive *h, nt_ref *r, NTSTATUS s, const char *api, const uint16_t *name, size_t n);

/* Reads a value with `cls` (Partial or Full) into the thread's data scratch,
 * growing on STATUS_BUFFER_OVERFLOW/TOO_SMALL from ResultLength and retrying
 * when the value grew between two calls. Never truncates. *rec receives the
 * record. The key slot's MaxValueDataLen hint sizes the first try. */
rf_status nt_query_value(nt_hive *h, nt_ref *key, const uint16_t *name, size_t nchars, ULONG cls,
                         void **rec, ULONG *rec_len);

/* Test hook: called between two attempts of nt_query_value after a
 * too-small result (tests grow the value there). NULL in production. */
extern void (*nt_test_between_attempts)(void);

/* Key information (nt_backend.c); into the thread's AUX scratch. */
rf_status nt_query_key(nt_hive *h, nt_ref *key, ULONG cls, void **rec, ULONG *rec_len);
/** A key's subkey (values = 0) or value (values = 1) count, checked against
 *  the caller's array (RF_E_MORE_DATA with *n_out = the count) and against
 *  half the backend's table (RF_E_LIMIT: enumerating it would evict every
 *  other slot). */
rf_status nt_child_count(nt_hive *h, nt_ref *r, int values, size_t cap, size_t *n_out);

rf_status nt_read_values(rf_hive *h, rf_key k, const rf_name *names, size_t n, const uint32_t *types,
                         size_t n_types, uint32_t flags, rf_batch *b);
rf_status nt_value_find(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars, rf_value *out);
rf_status nt_value_info(rf_hive *h, rf_value v, rf_value_info *out);
rf_status nt_value_read(rf_hive *h, rf_value v, void *buf, size_t cap, const uint8_t **data_out,
                        size_t *len_out);
rf_status nt_key_values(rf_hive *h, rf_key k, rf_value *out, size_t cap, size_t *n_out);

/* Fills a UNICODE_STRING for a name; copies into the AUX... scratch when the
 * buffer is misaligned. RF_E_INVALID_PARAMETER when it is over 32767 chars. */
rf_status nt_make_ustr(nt_ustr *us, const uint16_t *name, size_t nchars, int scratch_which);

/* ------------------------------------------------------------------------ */
/* Writes and security (nt_write.c), privileges (nt_priv.c), watches         */
/* (nt_watch.c): the version-2 slots of the method table                    */
/* ------------------------------------------------------------------------ */

/* A second handle to the key behind `r` with exactly `access`. */
rf_status nt_reopen(nt_ref *r, ACCESS_MASK access, HKEY *out);

rf_status nt_value_set(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars, uint32_t type,
                       const void *data, size_t len);
rf_status nt_value_delete(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars);
rf_status nt_key_create(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars, uint32_t flags,
                        rf_key *out, uint32_t *disposition);
rf_status nt_key_delete(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars, uint32_t flags);

/* How a delete opens each key: RegOpenKeyExW, or RegOpenKeyTransactedW
 * inside a transaction (nt_tx.c). */
typedef LONG (*nt_open_fn)(void *ctx, HKEY parent, const wchar_t *name, DWORD options, REGSAM access, HKEY *out);

typedef struct nt_tree_delete {
    nt_open_fn open;
    void *ctx;
    const char *open_api;   /* its name, for errors */
    const char *call;   /* out: the call that failed */
    int depth;          /* out: where it failed, 0 = the key asked for */
    rf_status st;       /* out: set (with its message) when regfast itself stopped */
} nt_tree_delete;

/* Deletes `name` under `parent`, with everything below it when `tree`,
 * never following a symbolic link out of the tree (nt_write.c). Returns a
 * Win32 error; d->call, d->depth say where, d->st is set when regfast
 * stopped the delete itself (too deep, subkeys that keep coming). */
LONG nt_delete_key_at(HKEY parent, const wchar_t *name, REGSAM view, int tree, int depth, nt_tree_delete *d);
rf_status nt_key_rename(rf_hive *h, rf_key k, const uint16_t *new_name, size_t nchars);
rf_status nt_key_get_security(rf_hive *h, rf_key k, uint32_t si, void *buf, size_t cap, size_t *len_out,
                              uint32_t *si_out);
rf_status nt_key_set_security(rf_hive *h, rf_key k, uint32_t si, const void *sd, size_t len);

rf_status nt_watch_open(rf_hive *h, const rf_key *keys, size_t n, const rf_watch_opts *o, rf_bytes *baselines,
                        rf_watch **out);
rf_status nt_watch_next(rf_watch *w, uint32_t timeout_ms, rf_watch_event *ev);
void      nt_watch_stop(rf_watch *w);
void      nt_watch_close(rf_watch *w);

/* A privilege enabled for the calling thread only (an impersonation copy of
 * its token): enter, make the call, leave. */
typedef struct nt_thread_priv { HANDLE saved, dup; } nt_thread_priv;
rf_status nt_thread_priv_enter(nt_thread_priv *t, const wchar_t *name);
void      nt_thread_priv_leave(nt_thread_priv *t);

#endif
