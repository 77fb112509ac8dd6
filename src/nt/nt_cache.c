/*
 * nt_cache.c — the key slot table, which is both the rf_key token space and
 * the open-once handle cache, plus the value interning table and the
 * per-thread scratch buffers.
 *
 * A slot is one key path of the hive, stored as (parent slot, component
 * name), so looking up a child is one hash probe on (parent, upcased name)
 * and the table is a tree: a slot is recycled only when no slot names it as
 * parent, so every live slot's chain of ancestors is intact and a slot whose
 * handle was evicted can always be re-opened — in one NtOpenKeyEx, relative
 * to the deepest ancestor that still holds a handle.
 *
 * Two bounds, two LRU lists (head = least recently used):
 *  - handles (max_handles): evicting closes the handle, keeps the slot;
 *  - slots (max_slots): recycling frees the slot for another path and bumps
 *    its generation, so old tokens of it fail with RF_E_INVALID_HANDLE.
 * A slot with pins > 0 is never evicted nor recycled: pinned means a thread
 * is inside a system call with its handle. Windows reuses handle values at
 * once, so closing a handle another thread is using could make that thread
 * read a different key; pins rule it out.
 */
#include <stdlib.h>
#include "nt/nt_internal.h"

#define SLOT(h, i) (&(h)->chunks[(i) >> NT_CHUNK_BITS][(i) & (NT_CHUNK - 1)])

/* Longest relative path one open call takes: UNICODE_STRING.Length is a USHORT. */
#define NT_MAX_OPEN_CHARS 32766u

/* ------------------------------------------------------------------------ */
/* Per-thread scratch                                                        */
/* ------------------------------------------------------------------------ */

typedef struct nt_tls {
    void  *buf[NT_BUF_COUNT];
    size_t cap[NT_BUF_COUNT];
} nt_tls;

static DWORD tls_index = FLS_OUT_OF_INDEXES;
static INIT_ONCE tls_once = INIT_ONCE_STATIC_INIT;

/* Runs at thread exit (FlsAlloc callback) so scratch never leaks. */
static void WINAPI tls_free(void *p)
{
    nt_tls *t = p;
    if (!t) return;
    for (int i = 0; i < NT_BUF_COUNT; i++) free(t->buf[i]);
    free(t);
}

static BOOL CALLBACK tls_init(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    (void)once; (void)param; (void)ctx;
    tls_index = FlsAlloc(tls_free);
    return TRUE;
}

void *nt_scratch(int which, size_t need, size_t *cap_out)
{
    InitOnceExecuteOnce(&tls_once, tls_init, NULL, NULL);
    nt_tls *t = tls_index == FLS_OUT_OF_INDEXES ? NULL : FlsGetValue(tls_index);
    if (!t) {
        if (tls_index == FLS_OUT_OF_INDEXES || !(t = calloc(1, sizeof *t)) || !FlsSetValue(tls_index, t)) {
            free(t);
            rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no per-thread scratch for the live registry");
            return NULL;
        }
    }
    if (t->cap[which] < need) {
        size_t cap = need < 4096 ? 4096 : need + need / 2;
        if (cap < need) cap = need; /* overflow */
        void *p = malloc(cap);
        if (!p) {
            rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a %zu-byte scratch buffer", need);
            return NULL;
        }
        free(t->buf[which]);
        t->buf[which] = p;
        t->cap[which] = cap;
    }
    if (cap_out) *cap_out = t->cap[which];
    return t->buf[which];
}

/* ------------------------------------------------------------------------ */
/* Handles closed once the lock is released                                  */
/* ------------------------------------------------------------------------ */

typedef struct closer { HANDLE h[8]; int n; } closer;

static void closer_add(closer *c, HANDLE hd)
{
    if (c->n < 8) c->h[c->n++] = hd;
    else nt.Close(hd); /* rare: more than 8 closes in one operation */
}

static void closer_run(closer *c)
{
    for (int i = 0; i < c->n; i++) nt.Close(c->h[i]);
    c->n = 0;
}

static void lock_x(nt_hive *h) { AcquireSRWLockExclusive(&h->lock); }
static void unlock_x(nt_hive *h, closer *c)
{
    ReleaseSRWLockExclusive(&h->lock);
    if (c) closer_run(c);
}

#define BUMP(field) InterlockedIncrement64(&h->st.field)

/* ------------------------------------------------------------------------ */
/* Names and the index                                                       */
/* ------------------------------------------------------------------------ */

static uint32_t name_hash(uint32_t parent, const uint16_t *name, size_t n)
{
    uint32_t x = 2166136261u ^ (parent * 0x9E3779B1u);
    for (size_t i = 0; i < n; i++) x = (x ^ rf_upcase(name[i])) * 16777619u;
    return x;
}

int nt_name_eq(const uint16_t *a, size_t na, const uint16_t *b, size_t nb)
{
    if (na != nb) return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i] != b[i] && rf_upcase(a[i]) != rf_upcase(b[i])) return 0;
    return 1;
}

static uint32_t idx_find(nt_hive *h, uint32_t parent, const uint16_t *name, size_t n, uint32_t hash)
{
    for (uint32_t i = h->buckets[hash & (h->nbuckets - 1)]; i != NT_NONE; i = SLOT(h, i)->hnext) {
        nt_slot *s = SLOT(h, i);
        if (s->hash == hash && s->parent == parent && s->state == SLOT_LIVE &&
            nt_name_eq(s->name, s->name_len, name, n))
            return i;
    }
    return NT_NONE;
}

static void idx_insert(nt_hive *h, uint32_t i)
{
    nt_slot *s = SLOT(h, i);
    uint32_t *b = &h->buckets[s->hash & (h->nbuckets - 1)];
    s->hnext = *b;
    *b = i;
}

static void idx_remove(nt_hive *h, uint32_t i)
{
    nt_slot *s = SLOT(h, i);
    uint32_t *p = &h->buckets[s->hash & (h->nbuckets - 1)];
    while (*p != NT_NONE && *p != i) p = &SLOT(h, *p)->hnext;
    if (*p == i) *p = s->hnext;
    s->hnext = NT_NONE;
}

static rf_status rehash(nt_hive *h, uint32_t want)
{
    uint32_t nb = 1024;
    while (nb < want && nb < (1u << 25)) nb <<= 1;
    if (nb <= h->nbuckets) return RF_OK;
    uint32_t *b = malloc(nb * sizeof *b);
    if (!b) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the key index");
    memset(b, 0xFF, nb * sizeof *b);
    free(h->buckets);
    h->buckets = b;
    h->nbuckets = nb;
    for (uint32_t i = 0; i < h->nused_hw; i++) {
        nt_slot *s = SLOT(h, i);
        if (s->state == SLOT_LIVE && i != 0) idx_insert(h, i);
    }
    return RF_OK;
}

/* ------------------------------------------------------------------------ */
/* LRU lists                                                                 */
/* ------------------------------------------------------------------------ */

static void slru_unlink(nt_hive *h, uint32_t i)
{
    nt_slot *s = SLOT(h, i);
    if (s->sprev != NT_NONE) SLOT(h, s->sprev)->snext = s->snext; else h->s_head = s->snext;
    if (s->snext != NT_NONE) SLOT(h, s->snext)->sprev = s->sprev; else h->s_tail = s->sprev;
    s->sprev = s->snext = NT_NONE;
}

static void slru_push(nt_hive *h, uint32_t i)
{
    nt_slot *s = SLOT(h, i);
    s->snext = NT_NONE;
    s->sprev = h->s_tail;
    if (h->s_tail != NT_NONE) SLOT(h, h->s_tail)->snext = i; else h->s_head = i;
    h->s_tail = i;
}

static void slru_touch(nt_hive *h, uint32_t i)
{
    if (i == 0 || h->s_tail == i) return;
    slru_unlink(h, i);
    slru_push(h, i);
}

static void hlru_unlink(nt_hive *h, uint32_t i)
{
    nt_slot *s = SLOT(h, i);
    if (!s->in_hlru) return;
    if (s->hprev != NT_NONE) SLOT(h, s->hprev)->hnext_ = s->hnext_; else h->h_head = s->hnext_;
    if (s->hnext_ != NT_NONE) SLOT(h, s->hnext_)->hprev = s->hprev; else h->h_tail = s->hprev;
    s->hprev = s->hnext_ = NT_NONE;
    s->in_hlru = 0;
}

static void hlru_push(nt_hive *h, uint32_t i, int at_head)
{
    nt_slot *s = SLOT(h, i);
    if (i == 0) return; /* the root's handle is never evicted */
    hlru_unlink(h, i);
    if (at_head) {
        s->hprev = NT_NONE;
        s->hnext_ = h->h_head;
        if (h->h_head != NT_NONE) SLOT(h, h->h_head)->hprev = i; else h->h_tail = i;
        h->h_head = i;
    } else {
        s->hnext_ = NT_NONE;
        s->hprev = h->h_tail;
        if (h->h_tail != NT_NONE) SLOT(h, h->h_tail)->hnext_ = i; else h->h_head = i;
        h->h_tail = i;
    }
    s->in_hlru = 1;
}

/* Drops a slot's handle: closed after the lock is released. */
static void drop_handle(nt_hive *h, uint32_t i, closer *c)
{
    nt_slot *s = SLOT(h, i);
    if (!s->handle) return;
    closer_add(c, s->handle);
    s->handle = NULL;
    s->max_data = NT_NONE; /* the hint is cached per handle */
    hlru_unlink(h, i);
    h->handles_open--;
}

/* Closes least recently used handles until the bound holds; pinned ones stay. */
static void evict_handles(nt_hive *h, closer *c)
{
    uint32_t i = h->h_head;
    while (h->handles_open > h->max_handles && i != NT_NONE) {
        uint32_t next = SLOT(h, i)->hnext_;
        if (SLOT(h, i)->pins == 0) {
            drop_handle(h, i, c);
            BUMP(handle_evictions);
        }
        i = next;
    }
}

static void install_handle(nt_hive *h, uint32_t i, HANDLE hd, closer *c)
{
    nt_slot *s = SLOT(h, i);
    s->handle = hd;
    s->max_data = NT_NONE;
    h->handles_open++;
    hlru_push(h, i, 0);
    InterlockedIncrement(&s->pins); /* the new handle must survive its own eviction pass */
    evict_handles(h, c);
    InterlockedDecrement(&s->pins);
}

/* A slot whose key was deleted: out of the index (the next open of the path
 * opens afresh), its tokens answer RF_E_KEY_DELETED, its handle goes to the
 * front of the eviction line. */
static void tombstone(nt_hive *h, uint32_t i)
{
    nt_slot *s = SLOT(h, i);
    if (i == 0 || s->state != SLOT_LIVE) return;
    idx_remove(h, i);
    s->state = SLOT_DELETED;
    if (s->handle) hlru_push(h, i, 1);
    BUMP(invalidations);
}

/* ------------------------------------------------------------------------ */
/* Slot allocation                                                           */
/* ------------------------------------------------------------------------ */

static void recycle(nt_hive *h, uint32_t i, closer *c)
{
    nt_slot *s = SLOT(h, i);
    drop_handle(h, i, c);
    if (s->state == SLOT_LIVE) idx_remove(h, i);
    slru_unlink(h, i);
    if (s->parent != NT_NONE) SLOT(h, s->parent)->nchildren--;
    free(s->name);
    s->name = NULL;
    s->name_len = 0;
    s->gen = s->gen % NT_GEN_MASK + 1;
    s->state = SLOT_FREE;
    s->hnext = h->free_head;
    h->free_head = i;
    h->slots_used--;
    BUMP(slot_recycles);
}

/* Recycles least recently used leaves until there is room for one more. */
static rf_status make_room(nt_hive *h, closer *c)
{
    uint32_t i = h->s_head;
    while (h->slots_used >= h->max_slots && i != NT_NONE) {
        uint32_t next = SLOT(h, i)->snext;
        nt_slot *s = SLOT(h, i);
        if (s->nchildren == 0 && s->pins == 0) recycle(h, i, c);
        i = next;
    }
    if (h->slots_used >= h->max_slots)
        return rfi_fail(RF_E_LIMIT, RF_NO_OFFSET, 0,
                        "live key table full: %u slots in use, none recyclable (raise max_slots "
                        "with rf_live_set_limits)", h->slots_used);
    return RF_OK;
}

/* A fresh slot, LIVE, linked under `parent` (which the caller keeps pinned),
 * in the index and at the MRU end of the slot list; no handle. */
static rf_status new_slot(nt_hive *h, uint32_t parent, const uint16_t *name, size_t n, uint32_t hash,
                          closer *c, uint32_t *out)
{
    rf_status st = make_room(h, c);
    if (st) return st;
    uint16_t *copy = malloc((n ? n : 1) * sizeof *copy);
    if (!copy) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a key name");
    memcpy(copy, name, n * sizeof *copy);
    uint32_t i;
    if (h->free_head != NT_NONE) {
        i = h->free_head;
        h->free_head = SLOT(h, i)->hnext;
    } else {
        if (h->nused_hw == h->nalloc) {
            uint32_t ch = h->nalloc >> NT_CHUNK_BITS;
            if (h->nalloc >= NT_IDX_MAX || !(h->chunks[ch] = calloc(NT_CHUNK, sizeof(nt_slot)))) {
                free(copy);
                return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for key slots");
            }
            for (uint32_t k = 0; k < NT_CHUNK; k++) h->chunks[ch][k].gen = 1;
            h->nalloc += NT_CHUNK;
        }
        i = h->nused_hw++;
    }
    nt_slot *s = SLOT(h, i);
    uint32_t gen = s->gen;
    memset(s, 0, sizeof *s);
    s->gen = gen;
    s->name = copy;
    s->name_len = (uint32_t)n;
    s->parent = parent;
    s->hash = hash;
    s->max_data = NT_NONE;
    s->state = SLOT_LIVE;
    s->sprev = s->snext = s->hprev = s->hnext_ = s->hnext = NT_NONE;
    SLOT(h, parent)->nchildren++;
    idx_insert(h, i);
    slru_push(h, i);
    h->slots_used++;
    *out = i;
    return RF_OK;
}

/* ------------------------------------------------------------------------ */
/* Opening                                                                   */
/* ------------------------------------------------------------------------ */

/* One open call of a relative path (`rel` NUL-terminated, n chars). */
static rf_status do_open(nt_hive *h, HANDLE parent, const uint16_t *rel, size_t n, HANDLE *out)
{
    *out = NULL;
    if (h->reg_open) {
        /* A WOW64 view: RegOpenKeyExW applies the Wow6432Node redirection.
         * Measured under Wine 8: NtOpenKeyEx ignores KEY_WOW64_32KEY (the
         * redirection lives in RegOpenKeyExW), and RegOpenKeyExW composes per
         * component (opening "Software" in the 32 view yields
         * Software\Wow6432Node, and relative opens from that handle stay there). */
        HKEY hk = NULL;
        LONG e = RegOpenKeyExW((HKEY)parent, (LPCWSTR)rel, 0, h->access, &hk);
        if (e != ERROR_SUCCESS) return nt_fail_win32(e, "RegOpenKeyExW", rel, n);
        *out = hk;
        return RF_OK;
    }
    nt_ustr us = { (USHORT)(n * 2), (USHORT)(n * 2), (PWSTR)rel };
    nt_oattr oa = { sizeof oa, parent, &us, NT_OBJ_CASE_INSENSITIVE, NULL, NULL };
    NTSTATUS st = nt.OpenKeyEx ? nt.OpenKeyEx(out, h->access, &oa, 0) : nt.OpenKey(out, h->access, &oa);
    if (!NT_SUCCESS(st)) {
        *out = NULL;
        return nt_fail(st, "NtOpenKeyEx", rel, n);
    }
    return RF_OK;
}

/* Chars of the path from ancestor `a` down to `t` (exclusive of a). */
static size_t chain_chars(nt_hive *h, uint32_t a, uint32_t t)
{
    size_t n = 0;
    for (uint32_t i = t; i != a; i = SLOT(h, i)->parent) n += SLOT(h, i)->name_len + 1;
    return n ? n - 1 : 0;
}

/* Writes the path a -> t into buf (n chars from chain_chars), no NUL. */
static void chain_write(nt_hive *h, uint32_t a, uint32_t t, uint16_t *buf, size_t n)
{
    size_t end = n;
    for (uint32_t i = t; i != a; i = SLOT(h, i)->parent) {
        nt_slot *s = SLOT(h, i);
        end -= s->name_len;
        memcpy(buf + end, s->name, s->name_len * sizeof *buf);
        if (end) buf[--end] = '\\';
    }
}

static uint32_t open_ancestor(nt_hive *h, uint32_t i)
{
    uint32_t a = SLOT(h, i)->parent;
    while (!SLOT(h, a)->handle) a = SLOT(h, a)->parent; /* the root always has one */
    return a;
}

/*
 * Makes slot `idx` hold a handle and pins it. Called and returns with the
 * lock held (dropped around the open call). A slot without a handle is
 * opened relative to its deepest ancestor with one, in one call when the
 * path fits a UNICODE_STRING (else through the deepest intermediate that
 * does, which then gets its own handle).
 */
static rf_status ensure_pinned(nt_hive *h, uint32_t idx, closer *c)
{
    nt_slot *s = SLOT(h, idx);
    uint32_t gen = s->gen;
    for (;;) {
        if (s->gen != gen || s->state == SLOT_FREE)
            return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "key token is stale (its slot was recycled)");
        if (s->state == SLOT_DELETED)
            return rfi_fail(RF_E_KEY_DELETED, RF_NO_OFFSET, (int64_t)(uint32_t)NT_STATUS_KEY_DELETED,
                            "the key was deleted (a call on its handle returned STATUS_KEY_DELETED)");
        if (s->handle) {
            InterlockedIncrement(&s->pins);
            hlru_push(h, idx, 0);
            return RF_OK;
        }
        uint32_t a = open_ancestor(h, idx), t = idx;
        size_t n = chain_chars(h, a, t);
        while (n > NT_MAX_OPEN_CHARS) { /* open an intermediate first */
            t = SLOT(h, t)->parent;
            n = chain_chars(h, a, t);
        }
        uint16_t *path = nt_scratch(NT_BUF_PATH, (n + 1) * sizeof(uint16_t), NULL);
        if (!path) return RF_E_NO_MEMORY;
        chain_write(h, a, t, path, n);
        path[n] = 0;
        uint32_t ncomp = 1;
        for (size_t k = 0; k < n; k++) ncomp += path[k] == '\\';
        nt_slot *as = SLOT(h, a), *ts = SLOT(h, t);
        uint32_t tgen = ts->gen;
        InterlockedIncrement(&as->pins);
        HANDLE parent = as->handle, nh;
        ReleaseSRWLockExclusive(&h->lock);
        rf_status st = do_open(h, parent, path, n, &nh);
        AcquireSRWLockExclusive(&h->lock);
        InterlockedDecrement(&as->pins);
        if (st == RF_OK) {
            BUMP(opens);
            BUMP(reopens);
            InterlockedExchange(&h->st.last_open_components, (LONG)ncomp);
            if (ts->gen != tgen || ts->state != SLOT_LIVE || ts->handle) closer_add(c, nh); /* lost a race */
            else install_handle(h, t, nh, c);
            continue;
        }
        if (st == RF_E_NOT_FOUND || st == RF_E_KEY_DELETED) {
            /* The path existed when the slot was made: the key is gone. */
            if (st == RF_E_KEY_DELETED) tombstone(h, a);
            if (ts->gen == tgen) tombstone(h, t);
            if (s->gen == gen) tombstone(h, idx);
            char nm[96];
            nt_name_utf8(path, n, nm, sizeof nm);
            return rfi_fail(RF_E_KEY_DELETED, RF_NO_OFFSET, rf_last_error()->native,
                            "key %s was deleted since it was opened or enumerated", nm);
        }
        return st;
    }
}

static rf_status decode_key(nt_hive *h, rf_key k, uint32_t *idx, uint32_t *gen)
{
    uint32_t i = (uint32_t)(k & 0xFFFFFFu);
    if ((uint16_t)(k >> 48) != h->tag || (k & NT_VALUE_BIT) || i == 0 || i - 1 >= h->nused_hw)
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0,
                        "0x%016llx is not a key token of this live hive", (unsigned long long)k);
    *idx = i - 1;
    *gen = (uint32_t)(k >> 24) & NT_GEN_MASK;
    return RF_OK;
}

static rf_status check_slot(nt_hive *h, uint32_t idx, uint32_t gen)
{
    nt_slot *s = SLOT(h, idx);
    if (s->gen != gen || s->state == SLOT_FREE)
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0,
                        "key token is stale: its slot was recycled (generation %u, now %u)", gen, s->gen);
    if (s->state == SLOT_DELETED)
        return rfi_fail(RF_E_KEY_DELETED, RF_NO_OFFSET, (int64_t)(uint32_t)NT_STATUS_KEY_DELETED,
                        "the key was deleted (a call on its handle returned STATUS_KEY_DELETED)");
    return RF_OK;
}

rf_status nt_acquire(nt_hive *h, rf_key k, nt_ref *ref)
{
    uint32_t idx, gen;
    closer c = { { 0 }, 0 };
    ref->handle = NULL;
    rf_status st = decode_key(h, k, &idx, &gen);
    if (st) return st;
    lock_x(h);
    if ((st = check_slot(h, idx, gen)) == RF_OK) {
        slru_touch(h, idx);
        if ((st = ensure_pinned(h, idx, &c)) == RF_OK) {
            ref->idx = idx;
            ref->gen = gen;
            ref->handle = SLOT(h, idx)->handle;
        }
    }
    unlock_x(h, &c);
    return st;
}

void nt_release(nt_hive *h, nt_ref *ref)
{
    if (ref->handle) InterlockedDecrement(&SLOT(h, ref->idx)->pins); /* chunks never move */
    ref->handle = NULL;
}

int nt_after_call(nt_hive *h, nt_ref *ref, NTSTATUS st)
{
    int retry = 0;
    if (st != NT_STATUS_KEY_DELETED && st != NT_STATUS_INVALID_HANDLE) return 0;
    closer c = { { 0 }, 0 };
    lock_x(h);
    nt_slot *s = SLOT(h, ref->idx);
    if (s->gen == ref->gen && !(ref->idx == 0 && st == NT_STATUS_INVALID_HANDLE)) {
        if (st == NT_STATUS_KEY_DELETED) {
            tombstone(h, ref->idx);
        } else if (s->handle == ref->handle) {
            /* Closed behind our back: forget it (never close it again, the
             * value may already name another object) and re-open. */
            s->handle = NULL;
            hlru_unlink(h, ref->idx);
            h->handles_open--;
            retry = 1;
        }
    }
    unlock_x(h, &c);
    return retry;
}

uint32_t nt_slot_hint(nt_hive *h, const nt_ref *ref)
{
    return SLOT(h, ref->idx)->max_data; /* a racy read of a hint is harmless */
}

void nt_slot_set_hint(nt_hive *h, const nt_ref *ref, uint32_t max_data, int raise_only)
{
    nt_slot *s = SLOT(h, ref->idx);
    if (s->gen != ref->gen) return;
    if (!raise_only || s->max_data == NT_NONE || max_data > s->max_data) s->max_data = max_data;
}

/* ------------------------------------------------------------------------ */
/* Path opens                                                                */
/* ------------------------------------------------------------------------ */

/* Next component of path[pos..end): sets *j to its end. */
static rf_status component(const uint16_t *path, size_t pos, size_t end, size_t *j)
{
    size_t k = pos;
    while (k < end && path[k] != '\\') k++;
    if (k == pos || k - pos > 255)
        return rfi_fail(RF_E_BAD_PATHNAME, RF_NO_OFFSET, 0,
                        k == pos ? "empty component at char %zu of the key path"
                                 : "component at char %zu of the key path is over 255 chars", pos);
    *j = k;
    return RF_OK;
}

static rf_status key_open(nt_hive *h, rf_key parent, const uint16_t *path, size_t nchars, int single,
                          rf_key *out)
{
    uint32_t pidx, pgen;
    closer c = { { 0 }, 0 };
    *out = 0;
    rf_status st = decode_key(h, parent, &pidx, &pgen);
    if (st) return st;
    size_t pos = 0, end = nchars;
    if (!single) {
        if (end && path[0] == '\\') pos = 1;            /* "\Software" == "Software" */
        if (end > pos && path[end - 1] == '\\') end--;  /* one trailing '\' is tolerated */
    } else {
        for (size_t k = 0; k < nchars; k++)
            if (path[k] == '\\')
                return rfi_fail(RF_E_BAD_PATHNAME, RF_NO_OFFSET, 0, "a key name cannot contain '\\'");
        if (nchars == 0 || nchars > 255)
            return rfi_fail(RF_E_BAD_PATHNAME, RF_NO_OFFSET, 0, "key name of %zu chars (1..255 allowed)", nchars);
    }
    /* Fast path, shared lock: every component cached and the result either
     * has children (never recycled, so its LRU position does not matter) or
     * is already the most recently used. rf_key_open() walks a deep path
     * one component at a time through here. */
    AcquireSRWLockShared(&h->lock);
    if (check_slot(h, pidx, pgen) == RF_OK) {
        uint32_t cur = pidx;
        size_t q = pos, j;
        while (q < end && component(path, q, end, &j) == RF_OK) {
            cur = idx_find(h, cur, path + q, j - q, name_hash(cur, path + q, j - q));
            if (cur == NT_NONE) break;
            q = j + 1;
        }
        if (q >= end && cur != NT_NONE && (SLOT(h, cur)->nchildren > 0 || h->s_tail == cur || cur == 0)) {
            *out = nt_token(h->tag, 0, SLOT(h, cur)->gen, cur);
            ReleaseSRWLockShared(&h->lock);
            BUMP(hits);
            return RF_OK;
        }
    }
    ReleaseSRWLockShared(&h->lock);

    lock_x(h);
    const size_t pos0 = pos;
    int retries = 0;
again:
    pos = pos0;
    if ((st = check_slot(h, pidx, pgen)) != RF_OK) goto done;
    uint32_t cur = pidx;
    while (pos < end) {
        size_t j;
        if ((st = component(path, pos, end, &j)) != RF_OK) goto done;
        uint32_t f = idx_find(h, cur, path + pos, j - pos, name_hash(cur, path + pos, j - pos));
        if (f == NT_NONE) break;
        cur = f;
        pos = j + 1;
    }
    if (pos >= end) { /* every component cached */
        BUMP(hits);
        slru_touch(h, cur);
        *out = nt_token(h->tag, 0, SLOT(h, cur)->gen, cur);
        goto done;
    }
    BUMP(misses);
    /* Open the rest relative to the deepest ancestor holding a handle; as many
     * components per call as fit a UNICODE_STRING. */
    while (pos < end) {
        nt_slot *cs = SLOT(h, cur);
        InterlockedIncrement(&cs->pins); /* cur is not recycled while we work below it */
        uint32_t a = cur;
        if (!cs->handle) a = open_ancestor(h, cur);
        size_t pre = chain_chars(h, a, cur);
        if (pre + 1 + 255 > NT_MAX_OPEN_CHARS) { /* give cur its own handle first */
            st = ensure_pinned(h, cur, &c);
            InterlockedDecrement(&cs->pins);
            if (st) goto done;
            a = cur;
            pre = 0;
        }
        /* take components while they fit */
        size_t take_end = pos, k = pos;
        while (k < end) {
            size_t j;
            if ((st = component(path, k, end, &j)) != RF_OK) { InterlockedDecrement(&cs->pins); goto done; }
            size_t total = (pre ? pre + 1 : 0) + (j - pos);
            if (total > NT_MAX_OPEN_CHARS) break;
            take_end = j;
            k = j + 1;
        }
        size_t n = (pre ? pre + 1 : 0) + (take_end - pos);
        uint16_t *rel = nt_scratch(NT_BUF_PATH, (n + 1) * sizeof(uint16_t), NULL);
        if (!rel) { st = RF_E_NO_MEMORY; InterlockedDecrement(&cs->pins); goto done; }
        if (pre) { chain_write(h, a, cur, rel, pre); rel[pre] = '\\'; }
        memcpy(rel + (pre ? pre + 1 : 0), path + pos, (take_end - pos) * sizeof(uint16_t));
        rel[n] = 0;
        nt_slot *as = SLOT(h, a);
        InterlockedIncrement(&as->pins);
        HANDLE ph = as->handle, nh;
        ReleaseSRWLockExclusive(&h->lock);
        st = do_open(h, ph, rel, n, &nh);
        AcquireSRWLockExclusive(&h->lock);
        InterlockedDecrement(&as->pins);
        if (st) {
            InterlockedDecrement(&cs->pins);
            if (st == RF_E_KEY_DELETED) {
                /* a's handle is of a deleted key, and cur lies below it: forget
                 * both so the next open goes to the kernel afresh. A plain "not
                 * found" says nothing about cur (only the rest may be missing). */
                int below_parent = 0;   /* is `a` a cached key under the caller's parent? */
                for (uint32_t i = cur; i != pidx && i != NT_NONE; i = SLOT(h, i)->parent)
                    if (i == a) below_parent = 1;
                tombstone(h, a);
                tombstone(h, cur);
                /* then the caller's parent stands and only a handle this cache
                 * kept went stale (the key was deleted, perhaps made again, by
                 * someone else, or it was reached through a link whose target
                 * went): the path is opened again from the parent. Each retry
                 * forgets a slot below the parent, so they are bounded too. */
                if (below_parent && ++retries <= 64) goto again;
            }
            goto done;
        }
        BUMP(opens);
        {
            LONG comps = 1; /* components in the whole relative path, for the stats */
            for (size_t q = 0; q < n; q++) comps += rel[q] == '\\';
            InterlockedExchange(&h->st.last_open_components, comps);
        }
        /* slots for the components just opened: intermediates without a handle */
        while (pos < take_end) {
            size_t j;
            component(path, pos, take_end, &j);
            uint32_t hash = name_hash(cur, path + pos, j - pos);
            uint32_t f = idx_find(h, cur, path + pos, j - pos, hash);
            if (f == NT_NONE && (st = new_slot(h, cur, path + pos, j - pos, hash, &c, &f)) != RF_OK) {
                InterlockedDecrement(&cs->pins);
                closer_add(&c, nh);
                goto done;
            }
            InterlockedDecrement(&cs->pins);
            cur = f;
            cs = SLOT(h, cur);
            InterlockedIncrement(&cs->pins);
            pos = j + 1;
        }
        if (cs->handle) closer_add(&c, nh); /* another thread opened it meanwhile */
        else install_handle(h, cur, nh, &c);
        InterlockedDecrement(&cs->pins);
    }
    *out = nt_token(h->tag, 0, SLOT(h, cur)->gen, cur);
done:
    unlock_x(h, &c);
    return st;
}

rf_status nt_key_open(nt_hive *h, rf_key parent, const uint16_t *path, size_t nchars, rf_key *out)
{
    return key_open(h, parent, path, nchars, 0, out);
}

/* The backend's key_child: one component, through the same cache. */
rf_status nt_key_child_op(rf_hive *base, rf_key parent, const uint16_t *name, size_t nchars, rf_key *out)
{
    return key_open((nt_hive *)base, parent, name, nchars, 1, out);
}

rf_status nt_child_slot(nt_hive *h, rf_key parent, const uint16_t *name, size_t nchars, rf_key *out)
{
    uint32_t pidx, pgen;
    closer c = { { 0 }, 0 };
    *out = 0;
    rf_status st = decode_key(h, parent, &pidx, &pgen);
    if (st) return st;
    lock_x(h);
    if ((st = check_slot(h, pidx, pgen)) == RF_OK) {
        uint32_t hash = name_hash(pidx, name, nchars);
        uint32_t f = idx_find(h, pidx, name, nchars, hash);
        if (f == NT_NONE) {
            InterlockedIncrement(&SLOT(h, pidx)->pins);
            st = new_slot(h, pidx, name, nchars, hash, &c, &f);
            InterlockedDecrement(&SLOT(h, pidx)->pins);
        }
        if (st == RF_OK) *out = nt_token(h->tag, 0, SLOT(h, f)->gen, f);
    }
    unlock_x(h, &c);
    return st;
}

rf_status nt_key_parent_of(nt_hive *h, rf_key k, rf_key *out)
{
    uint32_t idx, gen;
    *out = 0;
    rf_status st = decode_key(h, k, &idx, &gen);
    if (st) return st;
    AcquireSRWLockShared(&h->lock);
    if ((st = check_slot(h, idx, gen)) == RF_OK) {
        uint32_t p = SLOT(h, idx)->parent;
        if (p == NT_NONE) st = rfi_fail(RF_E_NOT_FOUND, RF_NO_OFFSET, 0, "the root key has no parent");
        else *out = nt_token(h->tag, 0, SLOT(h, p)->gen, p);
    }
    ReleaseSRWLockShared(&h->lock);
    return st;
}

/* A slot's parent token and a malloc'd copy of its name (one or more
 * components: the last is the key); *name NULL for the root. */
rf_status nt_slot_name(nt_hive *h, rf_key k, rf_key *parent, uint16_t **name, size_t *n)
{
    uint32_t idx, gen;
    *parent = 0;
    *name = NULL;
    *n = 0;
    rf_status st = decode_key(h, k, &idx, &gen);
    if (st) return st;
    AcquireSRWLockShared(&h->lock);
    if ((st = check_slot(h, idx, gen)) == RF_OK && SLOT(h, idx)->parent != NT_NONE) {
        nt_slot *s = SLOT(h, idx);
        *parent = nt_token(h->tag, 0, SLOT(h, s->parent)->gen, s->parent);
        *n = s->name_len;
        if (!(*name = malloc((*n ? *n : 1) * sizeof **name)))
            st = rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
        else memcpy(*name, s->name, *n * sizeof **name);
    }
    ReleaseSRWLockShared(&h->lock);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Values                                                                    */
/* ------------------------------------------------------------------------ */

#define VSLOT(h, i) (&(h)->vslots[i])

static rf_status vrehash(nt_hive *h, uint32_t want)
{
    uint32_t nb = 1024;
    while (nb < want && nb < (1u << 25)) nb <<= 1;
    if (nb <= h->nvbuckets) return RF_OK;
    uint32_t *b = malloc(nb * sizeof *b);
    if (!b) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the value index");
    memset(b, 0xFF, nb * sizeof *b);
    free(h->vbuckets);
    h->vbuckets = b;
    h->nvbuckets = nb;
    for (uint32_t i = 0; i < h->vused; i++) {
        nt_vslot *v = VSLOT(h, i);
        if (!v->used) continue;
        v->hnext = b[v->hash & (nb - 1)];
        b[v->hash & (nb - 1)] = i;
    }
    return RF_OK;
}

static void vevict(nt_hive *h, uint32_t i)
{
    nt_vslot *v = VSLOT(h, i);
    if (!v->used) return;
    uint32_t *p = &h->vbuckets[v->hash & (h->nvbuckets - 1)];
    while (*p != NT_NONE && *p != i) p = &VSLOT(h, *p)->hnext;
    if (*p == i) *p = v->hnext;
    free(v->name);
    v->name = NULL;
    v->used = 0;
    v->gen = v->gen % NT_GEN_MASK + 1;
}

rf_status nt_value_intern(nt_hive *h, const nt_ref *key, const uint16_t *name, size_t nchars, rf_value *out)
{
    uint32_t hash = name_hash(key->idx ^ (key->gen << 8), name, nchars);
    rf_status st = RF_OK;
    *out = 0;
    lock_x(h);
    for (uint32_t i = h->vbuckets[hash & (h->nvbuckets - 1)]; i != NT_NONE; i = VSLOT(h, i)->hnext) {
        nt_vslot *v = VSLOT(h, i);
        if (v->hash == hash && v->key_idx == key->idx && v->key_gen == key->gen &&
            nt_name_eq(v->name, v->name_len, name, nchars)) {
            *out = nt_token(h->tag, 1, v->gen, i);
            goto done;
        }
    }
    uint16_t *copy = malloc((nchars ? nchars : 1) * sizeof *copy);
    if (!copy) { st = rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a value name"); goto done; }
    memcpy(copy, name, nchars * sizeof *copy);
    uint32_t i;
    if (h->vused < h->max_values) {
        if (h->vused == h->vnalloc) {
            uint32_t na = h->vnalloc ? h->vnalloc * 2 : 256;
            if (na > h->max_values) na = h->max_values;
            nt_vslot *nv = realloc(h->vslots, (size_t)na * sizeof *nv);
            if (!nv) { free(copy); st = rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for value slots"); goto done; }
            for (uint32_t k = h->vnalloc; k < na; k++) { memset(&nv[k], 0, sizeof nv[k]); nv[k].gen = 1; }
            h->vslots = nv;
            h->vnalloc = na;
        }
        i = h->vused++;
    } else { /* full: recycle the oldest (a ring over the table) */
        i = h->vhand;
        h->vhand = (h->vhand + 1) % h->max_values;
        vevict(h, i);
    }
    nt_vslot *v = VSLOT(h, i);
    v->name = copy;
    v->name_len = (uint32_t)nchars;
    v->key_idx = key->idx;
    v->key_gen = key->gen;
    v->hash = hash;
    v->used = 1;
    v->hnext = h->vbuckets[hash & (h->nvbuckets - 1)];
    h->vbuckets[hash & (h->nvbuckets - 1)] = i;
    *out = nt_token(h->tag, 1, v->gen, i);
done:
    unlock_x(h, NULL);
    return st;
}

rf_status nt_value_resolve(nt_hive *h, rf_value val, rf_key *key, const uint16_t **name, size_t *nchars)
{
    uint32_t i = (uint32_t)(val & 0xFFFFFFu), gen = (uint32_t)(val >> 24) & NT_GEN_MASK;
    rf_status st = RF_OK;
    if ((uint16_t)(val >> 48) != h->tag || !(val & NT_VALUE_BIT) || i == 0)
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0,
                        "0x%016llx is not a value token of this live hive", (unsigned long long)val);
    i--;
    AcquireSRWLockShared(&h->lock);
    nt_vslot *v = i < h->vused ? VSLOT(h, i) : NULL;
    if (!v || !v->used || v->gen != gen) {
        st = rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0,
                      "value token is stale: its entry was recycled (raise max_values)");
    } else {
        uint16_t *copy = nt_scratch(NT_BUF_NAME, (v->name_len + 1) * sizeof(uint16_t), NULL);
        if (!copy) st = RF_E_NO_MEMORY;
        else {
            memcpy(copy, v->name, v->name_len * sizeof *copy);
            copy[v->name_len] = 0;
            *name = copy;
            *nchars = v->name_len;
            *key = nt_token(h->tag, 0, v->key_gen, v->key_idx);
        }
    }
    ReleaseSRWLockShared(&h->lock);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Life cycle, limits, stats                                                 */
/* ------------------------------------------------------------------------ */

rf_status nt_cache_init(nt_hive *h, HANDLE root)
{
    static volatile LONG tags;
    InitializeSRWLock(&h->lock);
    LONG t;
    do t = InterlockedIncrement(&tags) & 0xFFFF; while (t == 0);
    h->tag = (uint16_t)t;
    h->max_handles = 1024;
    h->max_slots = 65536;
    h->max_values = 65536;
    h->free_head = h->s_head = h->s_tail = h->h_head = h->h_tail = NT_NONE;
    rf_status st = rehash(h, h->max_slots);
    if (!st) st = vrehash(h, h->max_values);
    if (st) return st;
    if (!(h->chunks[0] = calloc(NT_CHUNK, sizeof(nt_slot))))
        return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for key slots");
    for (uint32_t k = 0; k < NT_CHUNK; k++) h->chunks[0][k].gen = 1;
    h->nalloc = NT_CHUNK;
    nt_slot *r = SLOT(h, 0);
    r->handle = root;
    r->parent = NT_NONE;
    r->state = SLOT_LIVE;
    r->max_data = NT_NONE;
    r->sprev = r->snext = r->hprev = r->hnext_ = r->hnext = NT_NONE;
    h->nused_hw = 1;
    h->slots_used = 1;
    h->handles_open = 1;
    return RF_OK;
}

void nt_cache_free(nt_hive *h)
{
    for (uint32_t i = 0; i < h->nused_hw; i++) {
        nt_slot *s = SLOT(h, i);
        if (s->handle) nt.Close(s->handle);
        free(s->name);
    }
    for (uint32_t ch = 0; ch < NT_MAX_CHUNKS && h->chunks[ch]; ch++) {
        free(h->chunks[ch]);
        h->chunks[ch] = NULL;   /* callers test chunks[0] to learn whether the root was adopted */
    }
    h->nused_hw = 0;
    for (uint32_t i = 0; i < h->vused; i++) free(h->vslots[i].name);
    free(h->vslots);
    free(h->buckets);
    free(h->vbuckets);
    h->vslots = NULL;
    h->buckets = h->vbuckets = NULL;
    h->vused = 0;
}

/* Tombstones slot `top` and every slot below it, closing their handles
 * unless in use. Called with the lock held. */
static void invalidate_locked(nt_hive *h, uint32_t top, closer *c)
{
    /* A linear pass with a walk up each slot's parents: slots do not list
     * their children, and this runs once per rename, delete or unload.
     * Tombstones count too: a slot deleted earlier may still hold a handle
     * into the subtree (that is what keeps a hive from unloading). */
    for (uint32_t i = 0; i < h->nused_hw; i++) {
        nt_slot *s = SLOT(h, i);
        if (s->state == SLOT_FREE) continue;
        uint32_t a = i;
        while (a != top && a != NT_NONE) a = SLOT(h, a)->parent;
        if (a != top) continue;
        tombstone(h, i);                   /* never the root (slot 0) */
        /* a pinned handle is in use by another thread right now: it stays,
         * and goes first when handles are evicted (tombstone) */
        if (i != 0 && s->handle && s->pins == 0) drop_handle(h, i, c);
    }
}

rf_status rf_live_key_invalidate_subtree(rf_hive *base, rf_key k)
{
    nt_hive *h = nt_cast(base);
    if (!h) return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "not a live hive (rf_live_open)");
    uint32_t top, gen;
    rf_status st = decode_key(h, k, &top, &gen);
    if (st) return st;
    closer c = { { 0 }, 0 };
    lock_x(h);
    nt_slot *t = SLOT(h, top);
    if (t->gen != gen || t->state == SLOT_FREE) {
        unlock_x(h, &c);
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0,
                        "key token is stale: its slot was recycled (generation %u, now %u)", gen, t->gen);
    }
    invalidate_locked(h, top, &c);
    unlock_x(h, &c);
    return RF_OK;
}

void nt_forget_path(nt_hive *h, rf_key parent, const uint16_t *path, size_t nchars)
{
    uint32_t cur, gen;
    if (decode_key(h, parent, &cur, &gen) != RF_OK) return;
    closer c = { { 0 }, 0 };
    lock_x(h);
    if (check_slot(h, cur, gen) == RF_OK) {
        size_t pos = 0, j;
        while (pos < nchars && cur != NT_NONE && component(path, pos, nchars, &j) == RF_OK) {
            cur = idx_find(h, cur, path + pos, j - pos, name_hash(cur, path + pos, j - pos));
            pos = j + 1;
        }
        if (pos >= nchars && cur != NT_NONE && cur != 0) invalidate_locked(h, cur, &c);
    }
    unlock_x(h, &c);
    rf_clear_error();
}

rf_status nt_set_limits(nt_hive *h, uint32_t max_handles, uint32_t max_slots, uint32_t max_values)
{
    if ((max_handles && max_handles < 4) || (max_slots && (max_slots < 64 || max_slots > NT_IDX_MAX)) ||
        (max_values && (max_values < 64 || max_values > NT_IDX_MAX)))
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                        "limits out of range: handles >= 4, slots and values in 64..%u", NT_IDX_MAX);
    closer c = { { 0 }, 0 };
    rf_status st = RF_OK;
    lock_x(h);
    if (max_slots && (st = rehash(h, max_slots)) != RF_OK) goto done;
    if (max_values && (st = vrehash(h, max_values)) != RF_OK) goto done;
    if (max_handles) h->max_handles = max_handles;
    if (max_slots) h->max_slots = max_slots;
    if (max_values && max_values != h->max_values) {
        for (uint32_t i = max_values; i < h->vused; i++) vevict(h, i);
        if (h->vused > max_values) h->vused = max_values;
        h->max_values = max_values;
        h->vhand = 0;
    }
    evict_handles(h, &c);
done:
    unlock_x(h, &c);
    return st;
}

rf_status nt_stats(nt_hive *h, rf_live_stats *out)
{
    if (out->struct_size < sizeof *out)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "rf_live_stats.struct_size is %zu, need %zu",
                        out->struct_size, sizeof *out);
    AcquireSRWLockShared(&h->lock);
    out->lookups = (uint64_t)(h->st.hits + h->st.misses);
    out->hits = (uint64_t)h->st.hits;
    out->opens = (uint64_t)h->st.opens;
    out->reopens = (uint64_t)h->st.reopens;
    out->handle_evictions = (uint64_t)h->st.handle_evictions;
    out->slot_recycles = (uint64_t)h->st.slot_recycles;
    out->invalidations = (uint64_t)h->st.invalidations;
    out->buffer_grows = (uint64_t)h->st.buffer_grows;
    out->regrows = (uint64_t)h->st.regrows;
    out->multi_batches = (uint64_t)h->st.multi_batches;
    out->handles_open = h->handles_open;
    out->slots_used = h->slots_used;
    out->max_handles = h->max_handles;
    out->max_slots = h->max_slots;
    out->max_values = h->max_values;
    out->last_open_components = (uint32_t)h->st.last_open_components;
    ReleaseSRWLockShared(&h->lock);
    return RF_OK;
}
