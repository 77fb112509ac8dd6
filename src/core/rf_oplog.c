/*
 * rf_oplog.c — the operation log behind regfast's Python hooks and profiler
 * (see rf_oplog.h for what it is and why it is C).
 *
 * One mutex guards everything; it is held only while a record becomes a
 * row (hash lookups, at most a pointer walk up a regf key's parents), never
 * while the consumer's callback runs.
 */
#include <stdlib.h>
#include <string.h>

#include "core/rf_internal.h"
#include "core/rf_oplog.h"

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
typedef CRITICAL_SECTION ol_mutex;
#define ol_mutex_init(m) InitializeCriticalSection(m)
#define ol_mutex_free(m) DeleteCriticalSection(m)
#define ol_lock(m) EnterCriticalSection(m)
#define ol_unlock(m) LeaveCriticalSection(m)
#else
#include <pthread.h>
typedef pthread_mutex_t ol_mutex;
#define ol_mutex_init(m) pthread_mutex_init((m), NULL)
#define ol_mutex_free(m) pthread_mutex_destroy(m)
#define ol_lock(m) pthread_mutex_lock(m)
#define ol_unlock(m) pthread_mutex_unlock(m)
#endif

#if defined(_MSC_VER)
#define OL_THREAD_LOCAL __declspec(thread)
#else
#define OL_THREAD_LOCAL _Thread_local
#endif

/* deepest key path resolved by walking parents (Windows allows 512 levels) */
#define MAX_DEPTH 512
/* tok_ent.path of a regf key whose path could not be resolved */
#define UNRESOLVABLE (-2)

typedef struct tok_ent {
    uint64_t tok;      /* 0: empty slot */
    uint64_t parent;   /* learnt from key_subkeys while the path is unknown */
    int32_t  path;     /* keys: the path; values: the key's path */
    int32_t  name;     /* values: the value name */
} tok_ent;

typedef struct tok_map { tok_ent *e; size_t cap, n; } tok_map;

typedef struct hive_ent {
    rf_hive *h;
    uint32_t seq;
    uint8_t  backend;
    rf_key   root;
    tok_map  keys, values;
} hive_ent;

typedef struct str_ent { void *p; uint32_t nbytes; uint32_t hash; uint8_t utf16; } str_ent;

struct rf_oplog {
    ol_mutex mu;
    int keep;
    size_t full_at;
    int full_sent;
    rf_oplog_fn fn;
    rf_oplog_full_fn full_fn;
    void *ctx;
    volatile uint32_t fn_phases;   /* read unlocked by the PRE fast exit */
    rf_oprow *rows;
    size_t nrows, caprows;
    uint64_t lost;
    uint64_t takes;    /* rf_oplog_take calls: a kept row's index is valid while this is unchanged */
    str_ent *strs;
    size_t nstr, capstr;
    int32_t *sidx;     /* open addressing over string ids: id + 1, 0 empty */
    size_t sidx_cap;
    hive_ent *hives;
    size_t nhives, caphives, last;
    uint32_t next_seq;
    uint16_t *scratch;
    size_t scratch_cap;
    uint16_t name_buf[32768];   /* one name widened (a name field is at most 65,535 bytes) */
    int32_t empty_id;
};

/* set while this thread is inside the log: rf_* calls the log makes itself
 * (resolving a regf path) must not be logged */
static OL_THREAD_LOCAL int busy;
/* the record a PRE callback vetoed, and the hive a closing record named:
 * the same rf_op_record (same address) comes back in its POST */
static OL_THREAD_LOCAL const rf_op_record *vetoed_rec;
static OL_THREAD_LOCAL const rf_op_record *closing_rec;
static OL_THREAD_LOCAL uint32_t closing_seq;
/* Buffer negotiation: a call answered RF_E_MORE_DATA ("your buffer is too
 * small, here is the size") is retried by its caller with a bigger one. That
 * is one user operation (one read_values, one subkey list), not a failed one
 * and a second: the retry is merged into the first's kept row (its start,
 * both durations, both round trips, the retry's status and results). The
 * row is found again by index, valid while no take() ran meanwhile. */
static OL_THREAD_LOCAL const rf_oplog *nego_log;
static OL_THREAD_LOCAL size_t nego_index;
static OL_THREAD_LOCAL uint64_t nego_takes;

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    x ^= x >> 33;
    return x;
}

/* ---- token maps ----------------------------------------------------------- */

static tok_ent *tok_find(tok_map *m, uint64_t tok)
{
    if (!m->cap || !tok) return NULL;
    size_t mask = m->cap - 1, i = (size_t)mix64(tok) & mask;
    for (;;) {
        tok_ent *e = &m->e[i];
        if (e->tok == tok) return e;
        if (!e->tok) return NULL;
        i = (i + 1) & mask;
    }
}

static int tok_grow(tok_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 256;
    tok_ent *e = calloc(cap, sizeof *e);
    if (!e) return -1;
    for (size_t j = 0; j < m->cap; j++) {
        if (!m->e[j].tok) continue;
        size_t i = (size_t)mix64(m->e[j].tok) & (cap - 1);
        while (e[i].tok) i = (i + 1) & (cap - 1);
        e[i] = m->e[j];
    }
    free(m->e);
    m->e = e;
    m->cap = cap;
    return 0;
}

/* The entry of `tok`, added (path and name -1) if absent; NULL without memory. */
static tok_ent *tok_put(tok_map *m, uint64_t tok)
{
    if (!tok) return NULL;
    tok_ent *e = tok_find(m, tok);
    if (e) return e;
    if ((m->n + 1) * 10 > m->cap * 7 && tok_grow(m)) return NULL;
    size_t mask = m->cap - 1, i = (size_t)mix64(tok) & mask;
    while (m->e[i].tok) i = (i + 1) & mask;
    e = &m->e[i];
    e->tok = tok;
    e->parent = 0;
    e->path = e->name = -1;
    m->n++;
    return e;
}

static void tok_free(tok_map *m)
{
    free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}

/* ---- interned strings ------------------------------------------------------ */

static uint32_t bytes_hash(const void *p, size_t n, int utf16)
{
    const uint8_t *b = p;
    uint32_t h = utf16 ? 0x811C9DC5u : 0x01000193u;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x01000193u;
    return h ? h : 1;
}

static int sidx_grow(rf_oplog *L)
{
    size_t cap = L->sidx_cap ? L->sidx_cap * 2 : 1024;
    int32_t *t = calloc(cap, sizeof *t);
    if (!t) return -1;
    for (size_t id = 0; id < L->nstr; id++) {
        size_t i = L->strs[id].hash & (cap - 1);
        while (t[i]) i = (i + 1) & (cap - 1);
        t[i] = (int32_t)id + 1;
    }
    free(L->sidx);
    L->sidx = t;
    L->sidx_cap = cap;
    return 0;
}

/* The id of string (p, n bytes), added if new; -1 without memory. */
static int32_t intern(rf_oplog *L, const void *p, size_t n, int utf16)
{
    if (n > UINT32_MAX || L->nstr >= INT32_MAX - 1) return -1;
    uint32_t hash = bytes_hash(p, n, utf16);
    if (L->sidx_cap) {
        size_t mask = L->sidx_cap - 1;
        for (size_t i = hash & mask; L->sidx[i]; i = (i + 1) & mask) {
            str_ent *s = &L->strs[L->sidx[i] - 1];
            if (s->hash == hash && s->nbytes == n && s->utf16 == (utf16 != 0) && (!n || !memcmp(s->p, p, n)))
                return L->sidx[i] - 1;
        }
    }
    if ((L->nstr + 1) * 10 > L->sidx_cap * 7 && sidx_grow(L)) return -1;
    if (L->nstr == L->capstr) {
        size_t cap = L->capstr ? L->capstr * 2 : 256;
        str_ent *s = realloc(L->strs, cap * sizeof *s);
        if (!s) return -1;
        L->strs = s;
        L->capstr = cap;
    }
    void *copy = malloc(n ? n : 1);
    if (!copy) return -1;
    if (n) memcpy(copy, p, n);
    int32_t id = (int32_t)L->nstr++;
    L->strs[id] = (str_ent){ copy, (uint32_t)n, hash, (uint8_t)(utf16 != 0) };
    size_t mask = L->sidx_cap - 1, i = hash & mask;
    while (L->sidx[i]) i = (i + 1) & mask;
    L->sidx[i] = id + 1;
    return id;
}

static uint16_t *scratch(rf_oplog *L, size_t chars)
{
    if (chars > L->scratch_cap) {
        size_t cap = L->scratch_cap ? L->scratch_cap : 512;
        while (cap < chars) cap *= 2;
        uint16_t *p = realloc(L->scratch, cap * sizeof *p);
        if (!p) return NULL;
        L->scratch = p;
        L->scratch_cap = cap;
    }
    return L->scratch;
}

/* base (a UTF-16 string id, "" for the root) + '\' + name, interned. */
static int32_t join16(rf_oplog *L, int32_t base, const uint16_t *name, size_t nchars)
{
    if (base < 0) return -1;
    str_ent b = L->strs[base];
    size_t bn = b.nbytes / 2, sep = bn ? 1 : 0;
    if (!bn) return intern(L, name, nchars * 2, 1);
    uint16_t *s = scratch(L, bn + sep + nchars);
    if (!s) return -1;
    memcpy(s, b.p, bn * 2);
    s[bn] = '\\';
    if (nchars) memcpy(s + bn + 1, name, nchars * 2);
    return intern(L, s, (bn + sep + nchars) * 2, 1);
}

/* An rf_name (Latin-1 or UTF-16) joined to base. */
static int32_t join_name(rf_oplog *L, int32_t base, const rf_name *nm)
{
    if (base < 0 || !nm || (!nm->ptr && nm->nbytes)) return -1;
    size_t n = nm->utf16 ? nm->nbytes / 2 : nm->nbytes;   /* a name is <= 255 chars... */
    if (n > sizeof L->name_buf / sizeof L->name_buf[0]) return -1;   /* ...or damaged */
    if (nm->utf16) {
        if (n) memcpy(L->name_buf, nm->ptr, n * 2);   /* copied: it may sit unaligned in the mapping */
    } else {
        const uint8_t *p = nm->ptr;
        for (size_t i = 0; i < n; i++) L->name_buf[i] = p[i];
    }
    return join16(L, base, L->name_buf, n);
}

/* ---- hives ------------------------------------------------------------------ */

static uint8_t backend_of(const char *name)
{
    if (!name) return RF_OPLOG_NONE;
    if (!strcmp(name, "regf")) return RF_OPLOG_REGF;
    if (!strcmp(name, "nt")) return RF_OPLOG_NT;
    if (!strcmp(name, "remote")) return RF_OPLOG_REMOTE;
    return RF_OPLOG_OTHER;
}

static hive_ent *hive_get(rf_oplog *L, rf_hive *h, const char *backend)
{
    if (L->last < L->nhives && L->hives[L->last].h == h) return &L->hives[L->last];
    for (size_t i = 0; i < L->nhives; i++)
        if (L->hives[i].h == h) return &L->hives[L->last = i];
    if (L->nhives == L->caphives) {
        size_t cap = L->caphives ? L->caphives * 2 : 8;
        hive_ent *p = realloc(L->hives, cap * sizeof *p);
        if (!p) return NULL;
        L->hives = p;
        L->caphives = cap;
    }
    hive_ent *e = &L->hives[L->nhives];
    memset(e, 0, sizeof *e);
    e->h = h;
    e->seq = ++L->next_seq;
    e->backend = backend_of(backend);
    /* every backend answers root from memory (regf: the header; nt, remote:
     * a token), and this copy of the core has no hook: nothing is logged */
    if (rf_hive_root(h, &e->root) != RF_OK) e->root = 0;
    L->last = L->nhives++;
    return e;
}

static void hive_drop(rf_oplog *L, hive_ent *e)
{
    tok_free(&e->keys);
    tok_free(&e->values);
    *e = L->hives[--L->nhives];
    L->last = 0;
}

/* The path id of key `k`, or -1 (see rf_oplog.h: learnt, or for regf resolved). */
static int32_t key_path(rf_oplog *L, hive_ent *hv, rf_key k, int depth)
{
    if (k == 0 || k == hv->root) return L->empty_id;
    tok_ent *e = tok_find(&hv->keys, k);
    if (e && e->path >= 0) return e->path;
    if (e && e->path == UNRESOLVABLE) return -1;
    if (e && e->parent && e->name >= 0 && depth < MAX_DEPTH) {
        int32_t name = e->name;   /* `e` may move: the recursion can grow the map */
        int32_t pp = key_path(L, hv, e->parent, depth + 1);
        if (pp >= 0) {
            str_ent n = L->strs[name];
            int32_t id = join16(L, pp, n.p, n.nbytes / 2);
            if (id >= 0 && (e = tok_find(&hv->keys, k))) e->path = id;
            return id;
        }
    }
    if (hv->backend != RF_OPLOG_REGF || depth >= MAX_DEPTH) return -1;
    rf_key p;
    rf_name nm;
    int32_t id = -1;
    if (rf_key_parent(hv->h, k, &p) == RF_OK && p != 0 && p != k) {
        int32_t pp = key_path(L, hv, p, depth + 1);
        if (pp >= 0 && rf_key_name(hv->h, k, &nm) == RF_OK) id = join_name(L, pp, &nm);
    }
    /* a damaged hive (a parent loop, a bad name) is walked once, not per op */
    if ((e = tok_put(&hv->keys, k))) e->path = id >= 0 ? id : UNRESOLVABLE;
    return id;
}

/* An open's relative path, without the one leading and trailing '\' the
 * core tolerates (rf_hive.c check_path), joined to the parent's path. */
static int32_t rel_path(rf_oplog *L, hive_ent *hv, const rf_op_record *r)
{
    const uint16_t *p = r->name;
    size_t n = r->name_chars;
    if (!p && n) return -1;
    if (n && p[0] == '\\') p++, n--;
    if (n && p[n - 1] == '\\') n--;
    return join16(L, key_path(L, hv, r->key, 0), p, n);
}

static int32_t name_id(rf_oplog *L, const rf_op_record *r)
{
    if (!r->name && r->name_chars) return -1;
    return intern(L, r->name ? (const void *)r->name : "", r->name_chars * 2, 1);
}

static void resolve(rf_oplog *L, hive_ent *hv, const rf_op_record *r, rf_oprow *row)
{
    tok_ent *e;
    switch (r->op) {
    case RF_OP_KEY_OPEN: case RF_OP_KEY_CHILD: case RF_OP_KEY_CREATE: case RF_OP_KEY_DELETE:
        row->path = rel_path(L, hv, r);
        break;
    case RF_OP_VALUE_OPEN: case RF_OP_VALUE_SET: case RF_OP_VALUE_DELETE: case RF_OP_KEY_RENAME:
        row->path = key_path(L, hv, r->key, 0);
        row->value = name_id(L, r);
        break;
    case RF_OP_VALUE_INFO: case RF_OP_VALUE_READ:
        if ((e = tok_find(&hv->values, r->value))) {
            row->path = e->path;
            row->value = e->name;
        }
        break;
    case RF_OP_HIVE_OPEN: case RF_OP_HIVE_CLOSE: case RF_OP_HIVE_INFO: case RF_OP_HIVE_ROOT:
        break;
    case RF_OP_SCAN: case RF_OP_READ_VALUES: /* key 0: from the root */
        row->path = key_path(L, hv, r->key, 0);
        break;
    default:
        if (r->key) row->path = key_path(L, hv, r->key, 0);
        break;
    }
}

/* What a successful operation teaches about tokens (POST, before `row` is kept). */
static void learn(rf_oplog *L, hive_ent *hv, const rf_op_record *r, rf_oprow *row)
{
    tok_ent *e;
    switch (r->op) {
    case RF_OP_HIVE_ROOT:
        hv->root = r->out_key;
        row->path = L->empty_id;
        break;
    case RF_OP_KEY_OPEN: case RF_OP_KEY_CHILD: case RF_OP_KEY_CREATE:
        if (row->path >= 0 && r->out_key && (e = tok_put(&hv->keys, r->out_key)) && e->path < 0)
            e->path = row->path;
        break;
    case RF_OP_KEY_PARENT:
        if (row->path > 0 && r->out_key && (e = tok_put(&hv->keys, r->out_key)) && e->path < 0) {
            str_ent s = L->strs[row->path];
            size_t n = s.nbytes / 2;
            const uint16_t *c = s.p;
            while (n && c[n - 1] != '\\') n--;
            e->path = intern(L, s.p, n ? (n - 1) * 2 : 0, 1);
        }
        break;
    case RF_OP_KEY_SUBKEYS:
        if (r->out_keys)
            for (uint64_t i = 0; i < r->count; i++)
                if ((e = tok_put(&hv->keys, r->out_keys[i])) && e->path < 0) e->parent = r->key;
        break;
    case RF_OP_KEY_NAME:
        if ((e = tok_find(&hv->keys, r->key)) && e->path < 0 && e->parent) {
            rf_name nm = r->out_name;
            int32_t pp = key_path(L, hv, e->parent, 0);
            /* the parent's path, or keep the name: it may be learnt later */
            int32_t id = join_name(L, pp >= 0 ? pp : L->empty_id, &nm);
            if ((e = tok_find(&hv->keys, r->key))) {
                if (pp >= 0) e->path = id;
                else e->name = id;
            }
        }
        row->path = key_path(L, hv, r->key, 0);
        break;
    case RF_OP_VALUE_OPEN:
        if (r->value && (e = tok_put(&hv->values, r->value))) {
            e->path = row->path;
            e->name = row->value;
        }
        break;
    default:
        break;
    }
}

/* ---- the hook ---------------------------------------------------------------- */

static void keep_row(rf_oplog *L, const rf_oprow *row)
{
    if (L->nrows == L->caprows) {
        size_t cap = L->caprows ? L->caprows * 2 : 4096;
        rf_oprow *p = realloc(L->rows, cap * sizeof *p);
        if (!p) {
            L->lost++;
            return;
        }
        L->rows = p;
        L->caprows = cap;
    }
    L->rows[L->nrows++] = *row;
}

int rf_oplog_hook(void *ctx, const rf_op_record *r)
{
    rf_oplog *L = ctx;
    if (busy || !L) return 0;
    /* PRE matters only to a PRE callback, and to a close (the hive is gone
     * at its POST): the other PREs cost this test */
    if (r->phase == RF_HOOK_PRE && r->op != RF_OP_HIVE_CLOSE && !(L->fn_phases & RF_HOOK_PRE)) return 0;
    rf_oprow row;
    memset(&row, 0, sizeof row);
    row.op = (uint16_t)r->op;
    row.phase = (uint8_t)r->phase;
    row.flags = (uint8_t)(r->flags & RF_OPREC_WRITE);
    row.backend = backend_of(r->backend);
    row.key = r->key;
    row.start_ns = r->start_ns;
    row.path = row.value = -1;
    int post = r->phase == RF_HOOK_POST;
    if (post) {
        row.duration_ns = r->duration_ns;
        row.count = r->count;
        row.bytes = r->bytes;
        row.status = r->status;
        row.round_trips = r->round_trips > UINT32_MAX ? UINT32_MAX : (uint32_t)r->round_trips;
        if (r == vetoed_rec) {
            row.flags |= RF_OPLOG_VETOED;
            vetoed_rec = NULL;
        }
    }

    busy = 1;
    ol_lock(&L->mu);
    hive_ent *hv = r->hive ? hive_get(L, r->hive, r->backend) : NULL;
    if (hv) {
        row.hive = hv->seq;
        resolve(L, hv, r, &row);
        if (post && r->status == RF_OK) learn(L, hv, r, &row);
        if (r->op == RF_OP_HIVE_CLOSE) {   /* PRE: the hive is still there; forget it */
            closing_rec = r;
            closing_seq = hv->seq;
            hive_drop(L, hv);
        }
    } else if (r->op == RF_OP_HIVE_CLOSE && post && r == closing_rec) {
        row.hive = closing_seq;
        closing_rec = NULL;
    }
    if (r->op == RF_OP_REQUEST) {
        row.request_op = (uint16_t)r->request_op;
        if (r->payload_len <= RF_OPLOG_MAX_PAYLOAD && (r->payload || !r->payload_len)) {
            row.value = intern(L, r->payload ? r->payload : "", r->payload_len, 0);
            if (row.value >= 0) row.flags |= RF_OPLOG_PAYLOAD;
        }
    }
    if (r->op == RF_OP_HIVE_OPEN && r->text) {
        row.path = intern(L, r->text, strlen(r->text), 0);
        row.flags |= RF_OPLOG_FILE;
    }
    int call_full = 0, merged = 0;
    if (post && L->keep) {
        if (nego_log == L && nego_takes == L->takes && nego_index < L->nrows) {
            rf_oprow *first = &L->rows[nego_index];
            if (first->op == row.op && first->hive == row.hive && first->key == row.key &&
                first->status == RF_E_MORE_DATA && row.start_ns >= first->start_ns) {
                first->duration_ns = row.start_ns + row.duration_ns - first->start_ns;
                first->round_trips += row.round_trips;
                if (first->round_trips < row.round_trips) first->round_trips = UINT32_MAX;
                first->count = row.count;
                first->bytes = row.bytes;
                first->status = row.status;
                first->flags |= row.flags;
                if (first->path < 0) first->path = row.path;
                if (first->value < 0) first->value = row.value;
                row = *first;   /* what a post callback sees: the whole call */
                merged = 1;
            }
        }
        nego_log = NULL;
        if (!merged) keep_row(L, &row);
        if (!merged && row.status == RF_E_MORE_DATA && L->nrows && L->rows[L->nrows - 1].start_ns == row.start_ns) {
            nego_log = L;
            nego_index = L->nrows - 1;
            nego_takes = L->takes;
        }
        if (L->full_fn && L->full_at && L->nrows >= L->full_at && !L->full_sent) {
            L->full_sent = 1;
            call_full = 1;
        }
    }
    /* a post callback sees a negotiated call once, at its retry's end (a
     * callback without kept rows sees each rf_* call as it is) */
    rf_oplog_fn fn = (L->fn_phases & r->phase) && !(post && L->keep && nego_log == L) ? L->fn : NULL;
    rf_oplog_full_fn full_fn = L->full_fn;
    void *fctx = L->ctx;
    ol_unlock(&L->mu);
    busy = 0;

    /* the callback may call rf_* itself: those calls are logged too */
    int veto = 0;
    if (fn) veto = fn(fctx, &row) != 0;
    if (call_full) full_fn(fctx);
    if (veto && !post) vetoed_rec = r;
    return post ? 0 : veto;
}

/* ---- the consumer's side ----------------------------------------------------- */

#ifndef _WIN32
/* fork(): a log another thread held locked at the fork would stay locked in
 * the child, and the child's first logged rf_* call would hang. The logs are
 * locked across the fork and unlocked on both sides (pthread_atfork); the
 * binding makes one log. */
static rf_oplog *fork_logs[16];
static size_t fork_n;
static pthread_mutex_t fork_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    pthread_mutex_lock(&fork_mu);
    for (size_t i = 0; i < fork_n; i++) ol_lock(&fork_logs[i]->mu);
}

static void fork_done(void)
{
    for (size_t i = fork_n; i-- > 0;) ol_unlock(&fork_logs[i]->mu);
    pthread_mutex_unlock(&fork_mu);
}

static void fork_register(void) { pthread_atfork(fork_prepare, fork_done, fork_done); }
#endif

rf_oplog *rf_oplog_new(void)
{
    rf_oplog *L = calloc(1, sizeof *L);
    if (!L) return NULL;
    ol_mutex_init(&L->mu);
    L->empty_id = intern(L, "", 0, 1);
    if (L->empty_id != 0) {
        ol_mutex_free(&L->mu);
        free(L);
        return NULL;
    }
#ifndef _WIN32
    pthread_once(&fork_once, fork_register);
    pthread_mutex_lock(&fork_mu);
    if (fork_n < sizeof fork_logs / sizeof fork_logs[0]) fork_logs[fork_n++] = L;
    pthread_mutex_unlock(&fork_mu);
#endif
    return L;
}

void rf_oplog_config(rf_oplog *L, int keep_rows, size_t full_at, rf_oplog_fn fn, rf_oplog_full_fn full_fn,
                     void *ctx, uint32_t fn_phases)
{
    ol_lock(&L->mu);
    L->keep = keep_rows;
    L->full_at = full_at;
    L->fn = fn;
    L->full_fn = full_fn;
    L->ctx = ctx;
    L->fn_phases = fn ? fn_phases : 0;
    ol_unlock(&L->mu);
}

size_t rf_oplog_count(rf_oplog *L)
{
    ol_lock(&L->mu);
    size_t n = L->nrows;
    ol_unlock(&L->mu);
    return n;
}

size_t rf_oplog_take(rf_oplog *L, rf_oprow *out, size_t cap, uint64_t *lost_out)
{
    ol_lock(&L->mu);
    size_t n = L->nrows < cap ? L->nrows : cap;
    if (lost_out) *lost_out = L->lost;
    if (n) memcpy(out, L->rows, n * sizeof *out);
    /* rows beyond `cap` (logged since the caller counted) move to the front;
     * the buffer is kept: its pages are warm for the next rows */
    if (n < L->nrows) memmove(L->rows, L->rows + n, (L->nrows - n) * sizeof *out);
    L->nrows -= n;
    if (!L->nrows) L->full_sent = 0;
    L->lost = 0;
    L->takes++;
    ol_unlock(&L->mu);
    return n;
}

void rf_oplog_release(rf_oplog *L)
{
    ol_lock(&L->mu);
    free(L->rows);
    L->rows = NULL;
    L->nrows = L->caprows = 0;
    L->full_sent = 0;
    ol_unlock(&L->mu);
}

size_t rf_oplog_nstrings(rf_oplog *L)
{
    ol_lock(&L->mu);
    size_t n = L->nstr;
    ol_unlock(&L->mu);
    return n;
}

int rf_oplog_string(rf_oplog *L, int32_t id, const void **p, size_t *nbytes, int *utf16)
{
    int ok = 0;
    ol_lock(&L->mu);
    if (id >= 0 && (size_t)id < L->nstr) {
        *p = L->strs[id].p;
        *nbytes = L->strs[id].nbytes;
        *utf16 = L->strs[id].utf16;
        ok = 1;
    }
    ol_unlock(&L->mu);
    return ok;
}

void rf_oplog_forget(rf_oplog *L)
{
    ol_lock(&L->mu);
    while (L->nhives) hive_drop(L, &L->hives[L->nhives - 1]);
    for (size_t i = 1; i < L->nstr; i++) free(L->strs[i].p);   /* 0 is "": kept */
    L->nstr = L->nstr ? 1 : 0;
    if (L->sidx) {
        memset(L->sidx, 0, L->sidx_cap * sizeof *L->sidx);
        if (L->nstr) L->sidx[L->strs[0].hash & (L->sidx_cap - 1)] = 1;
    }
    ol_unlock(&L->mu);
}
