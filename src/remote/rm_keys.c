/*
 * rm_keys.c — the remote backend's key table (what rf_key tokens name) and
 * value table (what rf_value tokens name).
 *
 * An entry is a root-relative path (components as opened, or as stored once
 * the agent said so) and, while in use, the agent's key handle for it. The
 * agent opens a handle per OPEN_KEY, so entries open theirs on first use and
 * at most `max_handles` stay open (least recently used closed first, with
 * CLOSE_KEY; watched ones are pinned). Entries are bounded too
 * (`max_entries`, least recently used recycled first): a recycled entry's
 * tokens then fail with RF_E_INVALID_HANDLE, never name another key — the nt
 * backend's contract (regfast_nt.h). Tokens:
 *     bits 63..48 hive tag | bit 47 value | bits 46..24 generation | bits 23..0 index + 1
 * A delete or rename makes the entries of that subtree tombstones (their
 * tokens answer RF_E_KEY_DELETED, the path opens afresh).
 */
#include <stdlib.h>
#include <string.h>

#include "remote/rm_internal.h"

#define GEN_MASK 0x7FFFFFu
#define DEFAULT_MAX_ENTRIES 65536u
#define DEFAULT_MAX_HANDLES 1024u
#define MAX_VALUES 65536u

static volatile uint32_t next_tag = 1;

static uint32_t path_hash(const uint16_t *p, size_t n)
{
    uint32_t h = 0x811C9DC5u;
    for (size_t i = 0; i < n; i++) h = (h ^ rf_upcase(p[i])) * 0x01000193u;
    return h;
}

int rm_same_name(const uint16_t *a, size_t na, const uint16_t *b, size_t nb)
{
    if (na != nb) return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i] != b[i] && rf_upcase(a[i]) != rf_upcase(b[i])) return 0;
    return 1;
}

rf_key rm_token(rm_hive *h, uint32_t idx)
{
    return ((uint64_t)h->tag << 48) | ((uint64_t)(h->e[idx].gen & GEN_MASK) << 24) | (uint64_t)(idx + 1);
}

rf_key rm_root_token(rm_hive *h) { return rm_token(h, 0); }

/* ---- lists ------------------------------------------------------------ */

static void l_unlink(rm_hive *h, uint32_t i)
{
    rm_entry *e = &h->e[i];
    if (e->lprev != RM_NONE) h->e[e->lprev].lnext = e->lnext; else h->l_head = e->lnext;
    if (e->lnext != RM_NONE) h->e[e->lnext].lprev = e->lprev; else h->l_tail = e->lprev;
    e->lprev = e->lnext = RM_NONE;
}

static void l_push(rm_hive *h, uint32_t i)
{
    rm_entry *e = &h->e[i];
    e->lnext = RM_NONE;
    e->lprev = h->l_tail;
    if (h->l_tail != RM_NONE) h->e[h->l_tail].lnext = i; else h->l_head = i;
    h->l_tail = i;
}

static void o_unlink(rm_hive *h, uint32_t i)
{
    rm_entry *e = &h->e[i];
    if (e->oprev != RM_NONE) h->e[e->oprev].onext = e->onext; else h->o_head = e->onext;
    if (e->onext != RM_NONE) h->e[e->onext].oprev = e->oprev; else h->o_tail = e->oprev;
    e->oprev = e->onext = RM_NONE;
}

static void o_push(rm_hive *h, uint32_t i)
{
    rm_entry *e = &h->e[i];
    e->onext = RM_NONE;
    e->oprev = h->o_tail;
    if (h->o_tail != RM_NONE) h->e[h->o_tail].onext = i; else h->o_head = i;
    h->o_tail = i;
}

static void touch(rm_hive *h, uint32_t i)
{
    if (i == 0) return;   /* the root is never recycled */
    l_unlink(h, i);
    l_push(h, i);
    if (h->e[i].handle) {
        o_unlink(h, i);
        o_push(h, i);
    }
}

/* ---- index --------------------------------------------------------------- */

static void idx_insert(rm_hive *h, uint32_t i)
{
    uint32_t b = h->e[i].hash & (h->nbuckets - 1);
    h->e[i].hnext = h->buckets[b];
    h->buckets[b] = i;
}

static void idx_remove(rm_hive *h, uint32_t i)
{
    uint32_t *pp = &h->buckets[h->e[i].hash & (h->nbuckets - 1)];
    while (*pp != RM_NONE && *pp != i) pp = &h->e[*pp].hnext;
    if (*pp == i) *pp = h->e[i].hnext;
}

static uint32_t idx_find(rm_hive *h, const uint16_t *p, size_t n, uint32_t hash)
{
    for (uint32_t i = h->buckets[hash & (h->nbuckets - 1)]; i != RM_NONE; i = h->e[i].hnext)
        if (h->e[i].hash == hash && h->e[i].state == RM_LIVE && rm_same_name(h->e[i].path, h->e[i].plen, p, n)) return i;
    return RM_NONE;
}

/* ---- agent handles --------------------------------------------------------- */

static void close_handle(rm_hive *h, uint32_t i)
{
    rm_entry *e = &h->e[i];
    if (!e->handle) return;
    uint32_t hd = e->handle;
    o_unlink(h, i);
    e->handle = 0;
    h->handles_open--;
    rf_error saved = *rf_last_error();
    rm_begin(h->c);
    rm_put32(h->c, hd);
    const uint8_t *p;
    size_t n;
    rm_call_buf(h->c, AG_OP_CLOSE_KEY, &p, &n);   /* a failure here changes nothing for the caller */
    if (saved.code) rfi_fail(saved.code, saved.offset, saved.native, "%s", saved.message);
    else rf_clear_error();
}

static void evict_handles(rm_hive *h)
{
    uint32_t i = h->o_head;
    while (h->handles_open > h->max_handles && i != RM_NONE) {
        uint32_t next = h->e[i].onext;
        if (!h->e[i].pins && i != 0) close_handle(h, i);
        i = next;
    }
}

void rm_forget_handle(rm_hive *h, uint32_t idx)
{
    if (!h->e[idx].handle) return;
    o_unlink(h, idx);
    h->e[idx].handle = 0;
    h->handles_open--;
}

rf_status rm_adopt(rm_hive *h, uint32_t idx, uint32_t handle)
{
    rm_entry *e = &h->e[idx];
    if (e->handle == handle) return RF_OK;
    if (e->handle) close_handle(h, idx);
    e->handle = handle;
    e->unloaded = 0;   /* reopened: the hive is loaded again */
    h->handles_open++;
    o_push(h, idx);
    e->pins++;          /* the new handle survives its own eviction pass */
    evict_handles(h);
    e->pins--;
    return RF_OK;
}

rf_status rm_handle(rm_hive *h, uint32_t idx, uint32_t *handle)
{
    rm_entry *e = &h->e[idx];
    if (e->handle) {
        touch(h, idx);
        *handle = e->handle;
        return RF_OK;
    }
    rm_begin(h->c);
    rm_put32(h->c, h->root);
    rm_put32(h->c, h->view);
    rm_put32(h->c, h->access);
    rm_put32(h->c, 0);
    rm_put16s(h->c, e->path, e->plen);
    const uint8_t *p;
    size_t n;
    rf_status st = rm_call_buf(h->c, AG_OP_OPEN_KEY, &p, &n);
    if (st) return st;
    if (n != 8) return rm_malformed(h->c, AG_OP_OPEN_KEY, "8 bytes expected");
    uint32_t hd = rf_le32(p);
    if (!hd) return rm_malformed(h->c, AG_OP_OPEN_KEY, "handle 0");
    rm_adopt(h, idx, hd);
    touch(h, idx);
    *handle = hd;
    return RF_OK;
}

/* ---- entries -------------------------------------------------------------- */

static void tombstone(rm_hive *h, uint32_t i)
{
    rm_entry *e = &h->e[i];
    if (i == 0 || e->state != RM_LIVE) return;
    idx_remove(h, i);
    e->state = RM_DELETED;
    if (!e->pins) close_handle(h, i);
}

void rm_after_error(rm_hive *h, uint32_t idx, rf_status st)
{
    if (st == RF_E_KEY_DELETED || st == RF_E_NOT_FOUND) tombstone(h, idx);
}

static void forget_in(rm_hive *h, const uint16_t *path, size_t n)
{
    for (uint32_t i = 1; i < h->nused_hw; i++) {
        rm_entry *e = &h->e[i];
        if (e->state != RM_LIVE || e->plen < n) continue;
        if (rm_same_name(e->path, n, path, n) && (e->plen == n || e->path[n] == '\\')) tombstone(h, i);
    }
}

static void close_in(rm_hive *h, const uint16_t *path, size_t n)
{
    for (uint32_t i = 1; i < h->nused_hw; i++) {
        rm_entry *e = &h->e[i];
        if (e->state != RM_LIVE || e->plen < n || !e->handle || e->pins) continue;
        if (rm_same_name(e->path, n, path, n) && (e->plen == n || e->path[n] == '\\')) {
            close_handle(h, i);
            e->unloaded = 1;
        }
    }
}

void rm_close_subtree_handles(rm_hive *h, const uint16_t *path, size_t n)
{
    close_in(h, path, n);
    for (rm_hive *g = h->c->hives; g; g = g->sibling)
        if (g != h && g->root == h->root) close_in(g, path, n);
}

void rm_forget_subtree(rm_hive *h, const uint16_t *path, size_t n)
{
    forget_in(h, path, n);
    for (rm_hive *g = h->c->hives; g; g = g->sibling)
        if (g != h && g->root == h->root) forget_in(g, path, n);
}

static void recycle(rm_hive *h, uint32_t i)
{
    rm_entry *e = &h->e[i];
    if (e->handle) close_handle(h, i);
    if (e->state == RM_LIVE) idx_remove(h, i);
    l_unlink(h, i);
    free(e->path);
    e->path = NULL;
    e->plen = 0;
    e->gen = e->gen % GEN_MASK + 1;
    e->state = RM_FREE;
    e->hnext = h->free_head;
    h->free_head = i;
    h->used--;
}

rf_status rm_entry_for(rm_hive *h, const uint16_t *path, size_t n, uint32_t *idx)
{
    uint32_t hash = path_hash(path, n);
    uint32_t f = n ? idx_find(h, path, n, hash) : 0;
    if (f != RM_NONE) {
        touch(h, f);
        *idx = f;
        return RF_OK;
    }
    /* room: recycle the least recently used entries nobody pins */
    for (uint32_t i = h->l_head; h->used >= h->max_entries && i != RM_NONE;) {
        uint32_t next = h->e[i].lnext;
        if (!h->e[i].pins) recycle(h, i);
        i = next;
    }
    if (h->used >= h->max_entries)
        return rfi_fail(RF_E_LIMIT, RF_NO_OFFSET, 0, "remote key table full (%u entries, all watched)", h->used);
    uint16_t *copy = malloc((n ? n : 1) * sizeof *copy);
    if (!copy) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a key path");
    memcpy(copy, path, n * sizeof *copy);
    uint32_t i;
    if (h->free_head != RM_NONE) {
        i = h->free_head;
        h->free_head = h->e[i].hnext;
    } else {
        if (h->nused_hw == h->nalloc) {
            uint32_t cap = h->nalloc * 2;
            rm_entry *ne = realloc(h->e, cap * sizeof *ne);
            if (!ne) {
                free(copy);
                return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for key entries");
            }
            memset(ne + h->nalloc, 0, (cap - h->nalloc) * sizeof *ne);
            for (uint32_t k = h->nalloc; k < cap; k++) ne[k].gen = 1;
            h->e = ne;
            h->nalloc = cap;
        }
        i = h->nused_hw++;
    }
    rm_entry *e = &h->e[i];
    uint32_t gen = e->gen;
    memset(e, 0, sizeof *e);
    e->gen = gen;
    e->path = copy;
    e->plen = (uint32_t)n;
    e->hash = hash;
    e->state = RM_LIVE;
    e->lprev = e->lnext = e->oprev = e->onext = e->hnext = RM_NONE;
    idx_insert(h, i);
    l_push(h, i);
    h->used++;
    *idx = i;
    return RF_OK;
}

rf_status rm_entry_of(rm_hive *h, rf_key k, uint32_t *idx)
{
    uint32_t i = (uint32_t)(k & 0xFFFFFFu);
    if ((uint16_t)(k >> 48) != h->tag || (k & RM_VALUE_BIT) || i == 0 || i - 1 >= h->nused_hw)
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "0x%016llx is not a key token of this remote hive",
                        (unsigned long long)k);
    rm_entry *e = &h->e[i - 1];
    if (e->gen != ((uint32_t)(k >> 24) & GEN_MASK) || e->state == RM_FREE)
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "key token is stale: its entry was recycled");
    if (e->state == RM_DELETED)
        return rfi_fail(RF_E_KEY_DELETED, RF_NO_OFFSET, 0, "the key was deleted or renamed");
    *idx = i - 1;
    return RF_OK;
}

rf_status rm_join(rm_hive *h, uint32_t parent, const uint16_t *rel, size_t n, uint16_t **out, size_t *out_n)
{
    rm_entry *e = &h->e[parent];
    size_t total = e->plen + (e->plen && n ? 1 : 0) + n;
    if (total > AG_MAX_PATH_CHARS)
        return rfi_fail(RF_E_BAD_PATHNAME, RF_NO_OFFSET, 0, "a key path of %zu chars is too long", total);
    uint16_t *p = rm_tls(RM_TLS_NAME, (total + 1) * 2);
    if (!p) return RF_E_NO_MEMORY;
    memcpy(p, e->path, e->plen * 2);
    size_t at = e->plen;
    if (e->plen && n) p[at++] = '\\';
    memcpy(p + at, rel, n * 2);
    *out = p;
    *out_n = total;
    return RF_OK;
}

/* ---- values ------------------------------------------------------------------ */

rf_status rm_value_intern(rm_hive *h, uint32_t key_idx, const uint16_t *name, size_t n, rf_value *out)
{
    if (!h->v) {
        h->vcap = MAX_VALUES;
        h->v = calloc(h->vcap, sizeof *h->v);
        h->vbuckets = malloc(h->vcap * sizeof *h->vbuckets);
        if (!h->v || !h->vbuckets) {
            free(h->v); free(h->vbuckets);
            h->v = NULL; h->vbuckets = NULL;
            return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the value table");
        }
        for (uint32_t i = 0; i < h->vcap; i++) { h->vbuckets[i] = RM_NONE; h->v[i].gen = 1; }
    }
    uint32_t kgen = h->e[key_idx].gen;
    uint32_t hash = path_hash(name, n) ^ (key_idx * 0x9E3779B1u) ^ kgen;
    uint32_t b = hash & (h->vcap - 1);
    for (uint32_t i = h->vbuckets[b]; i != RM_NONE; i = h->v[i].hnext) {
        rm_vent *v = &h->v[i];
        if (v->used && v->hash == hash && v->key_idx == key_idx && v->key_gen == kgen &&
            rm_same_name(v->name, v->nchars, name, n)) {
            *out = ((uint64_t)h->tag << 48) | RM_VALUE_BIT | ((uint64_t)(v->gen & GEN_MASK) << 24) | (uint64_t)(i + 1);
            return RF_OK;
        }
    }
    uint16_t *copy = malloc((n ? n : 1) * 2);
    if (!copy) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a value name");
    memcpy(copy, name, n * 2);
    uint32_t i = h->vnext;            /* the oldest entry goes: a ring */
    h->vnext = (h->vnext + 1) % h->vcap;
    rm_vent *v = &h->v[i];
    if (v->used) {
        uint32_t *pp = &h->vbuckets[v->hash & (h->vcap - 1)];
        while (*pp != RM_NONE && *pp != i) pp = &h->v[*pp].hnext;
        if (*pp == i) *pp = v->hnext;
        free(v->name);
        v->gen = v->gen % GEN_MASK + 1;
    }
    v->name = copy;
    v->nchars = (uint32_t)n;
    v->key_idx = key_idx;
    v->key_gen = kgen;
    v->hash = hash;
    v->used = 1;
    v->hnext = h->vbuckets[b];
    h->vbuckets[b] = i;
    *out = ((uint64_t)h->tag << 48) | RM_VALUE_BIT | ((uint64_t)(v->gen & GEN_MASK) << 24) | (uint64_t)(i + 1);
    return RF_OK;
}

rf_status rm_value_resolve(rm_hive *h, rf_value val, uint32_t *key_idx, const uint16_t **name, size_t *n)
{
    uint32_t i = (uint32_t)(val & 0xFFFFFFu);
    if ((uint16_t)(val >> 48) != h->tag || !(val & RM_VALUE_BIT) || i == 0 || !h->v || i - 1 >= h->vcap)
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "0x%016llx is not a value token of this remote hive",
                        (unsigned long long)val);
    rm_vent *v = &h->v[i - 1];
    if (!v->used || v->gen != ((uint32_t)(val >> 24) & GEN_MASK))
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "value token is stale (its entry was recycled)");
    rm_entry *e = &h->e[v->key_idx];
    if (e->gen != v->key_gen || e->state == RM_FREE)
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "the value's key token is stale");
    if (e->state == RM_DELETED) return rfi_fail(RF_E_KEY_DELETED, RF_NO_OFFSET, 0, "the value's key was deleted");
    *key_idx = v->key_idx;
    *name = v->name;
    *n = v->nchars;
    return RF_OK;
}

/* ---- life ------------------------------------------------------------------------ */

rf_status rm_keys_init(rm_hive *h)
{
    h->tag = (uint16_t)(next_tag++ & 0xFFFFu);
    if (!h->tag) h->tag = (uint16_t)(next_tag++ & 0xFFFFu);
    h->nalloc = 64;
    h->nbuckets = 4096;
    h->max_entries = DEFAULT_MAX_ENTRIES;
    h->max_handles = DEFAULT_MAX_HANDLES;
    h->e = calloc(h->nalloc, sizeof *h->e);
    h->buckets = malloc(h->nbuckets * sizeof *h->buckets);
    if (!h->e || !h->buckets) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a remote hive");
    for (uint32_t i = 0; i < h->nbuckets; i++) h->buckets[i] = RM_NONE;
    for (uint32_t i = 0; i < h->nalloc; i++) h->e[i].gen = 1;
    h->free_head = h->l_head = h->l_tail = h->o_head = h->o_tail = RM_NONE;
    rm_entry *root = &h->e[0];
    root->path = malloc(2);
    if (!root->path) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a remote hive");
    root->state = RM_LIVE;
    root->stored_name = 0;
    root->lprev = root->lnext = root->oprev = root->onext = root->hnext = RM_NONE;
    root->hash = path_hash(NULL, 0);
    h->nused_hw = 1;
    h->used = 1;
    return RF_OK;
}

void rm_keys_free(rm_hive *h)
{
    /* the agent handles die with the connection or are closed here */
    for (uint32_t i = 0; i < h->nused_hw; i++) {
        if (h->e[i].handle && !h->c->dead) close_handle(h, i);
        free(h->e[i].path);
    }
    if (h->v)
        for (uint32_t i = 0; i < h->vcap; i++) free(h->v[i].name);
    free(h->e);
    free(h->buckets);
    free(h->v);
    free(h->vbuckets);
    free(h->vc_data);
    free(h->list);
    free(h->list_hint);
}
