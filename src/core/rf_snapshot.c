/*
 * rf_snapshot.c — rf_key_snapshot(): one serializer, over rf_* only, for
 * every backend (hive files, the live registry in-process, app hives, and
 * through regfast-agent the registry of another process). Watches take
 * their snapshots here too, so every snapshot regfast makes hashes values
 * and descriptors the same way. The format is in regfast.h.
 *
 * Per key: rf_key_get_info (last-write time), rf_key_get_security (owner +
 * group + DACL, hashed), one rf_read_values of every value, then the
 * last-write time again: if it moved while the values were read, the row is
 * taken again (up to 8 times), so a snapshot never pairs an old time with
 * new values and the next diff does not report a change that already was.
 * Subkeys come from rf_key_subkeys_hinted, their names from rf_key_name; one
 * that is deleted while the walk runs is left out (the next snapshot says
 * so). A subkey whose own node lists no subkeys (the hint) or that is a
 * symbolic link (asked where there is no hint) is taken without a listing
 * of its own: a leaf's would be empty, and a link's would be its target's,
 * so a snapshot does not go through a link (a link back up the tree made a
 * loop; one out of it took in another tree), as the walk does not
 * (Key.walk). The link's own row is the key as it opens.
 *
 * Scratch buffers (columns, arena, descriptor, path) live for one call and
 * only grow, so a snapshot costs O(depth) allocations, not one per key.
 */
#include <stdlib.h>

#include "core/rf_internal.h"

#define MAX_DEPTH    512
#define MAX_ATTEMPTS 8
#define DEFAULT_MAX_KEYS 100000u

uint64_t rf_fnv1a64(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = UINT64_C(0xCBF29CE484222325);
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * UINT64_C(0x100000001B3);
    return h;
}

/* A level's subkey list and hints, kept for the next sibling at that depth,
 * and the name of the sibling walked last (UTF-16, `last_n` units). */
typedef struct level {
    rf_key   *keys;
    uint8_t  *hints;
    size_t    cap;
    uint16_t *last;
    size_t    last_n, last_cap;
} level;

typedef struct rfi_snap {
    rf_hive  *h;
    rf_bytes *out;
    uint32_t  flags, max_keys, n_keys;
    int       truncated;
    const uint8_t *map;           /* rf_hive_mapping: base of non-arena offsets */
    uint16_t *path;               /* current relative path (chars) */
    size_t    plen, pcap;
    /* rf_read_values columns and arena, reused from key to key */
    size_t    cap;
    uint32_t *type, *length;
    int32_t  *status;
    uint64_t *offset;
    rf_name  *name;
    uint8_t  *arena;
    size_t    arena_cap;
    uint8_t  *sd;
    size_t    sd_cap;
    level     levels[MAX_DEPTH + 1];   /* subkey lists by depth: all freed by snap_free */
} snap;

static void snap_free(snap *s)
{
    for (int i = 0; i <= MAX_DEPTH; i++) {
        free(s->levels[i].keys);
        free(s->levels[i].hints);
        free(s->levels[i].last);
    }
    free(s->path);
    free(s->type);
    free(s->length);
    free(s->status);
    free(s->offset);
    free(s->name);
    free(s->arena);
    free(s->sd);
}

static rf_status grow_cols(snap *s, size_t cap)
{
    if (cap <= s->cap) return RF_OK;
    free(s->type); free(s->length); free(s->status); free(s->offset); free(s->name);
    s->type = malloc(cap * sizeof *s->type);
    s->length = malloc(cap * sizeof *s->length);
    s->status = malloc(cap * sizeof *s->status);
    s->offset = malloc(cap * sizeof *s->offset);
    s->name = malloc(cap * sizeof *s->name);
    if (!s->type || !s->length || !s->status || !s->offset || !s->name) {
        s->cap = 0;
        return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for %zu snapshot rows", cap);
    }
    s->cap = cap;
    return RF_OK;
}

static rf_status grow_buf(uint8_t **p, size_t *cap, size_t want)
{
    if (want <= *cap) return RF_OK;
    uint8_t *n = realloc(*p, want);
    if (!n) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for %zu snapshot bytes", want);
    *p = n;
    *cap = want;
    return RF_OK;
}

/* str16 of a stored name: UTF-16 as is, Latin-1 widened unit by unit. */
static rf_status put_name(rf_bytes *o, const rf_name *n)
{
    if (n->utf16) {
        rf_status st = rfi_bytes_u32(o, n->nbytes & ~1u);
        return st ? st : rfi_bytes_put(o, n->ptr, n->nbytes & ~1u);
    }
    rf_status st = rfi_bytes_u32(o, n->nbytes * 2u);
    if (st || (st = rfi_bytes_reserve(o, (size_t)n->nbytes * 2u))) return st;
    const uint8_t *p = n->ptr;
    for (uint32_t i = 0; i < n->nbytes; i++) {
        o->data[o->len++] = p[i];
        o->data[o->len++] = 0;
    }
    return RF_OK;
}

/* FNV-1a 64 of owner + group + DACL, never 0; 0 when it cannot be read. */
static uint64_t sd_hash(snap *s, rf_key k)
{
    for (int tries = 0; tries < 4; tries++) {
        size_t len = 0;
        rf_status st = rf_key_get_security(s->h, k, RF_SI_OWNER | RF_SI_GROUP | RF_SI_DACL, s->sd, s->sd_cap,
                                           &len, NULL);
        if (st == RF_OK) return rf_fnv1a64(s->sd, len) | 1;
        if (st != RF_E_MORE_DATA || grow_buf(&s->sd, &s->sd_cap, len + 64)) break;
    }
    rf_clear_error();
    return 0;
}

/* Every value of k into the columns and arena; *n = rows. */
static rf_status read_all(snap *s, rf_key k, const rf_key_info *ki, size_t *n)
{
    /* n_values is the key's count field (a hive file's, or the agent's): a
     * first guess only, or one damaged nk asks for 16 GiB of columns (fuzz_regf).
     * The batch says how many rows there are (RF_E_MORE_DATA) when it is more. */
    rf_status st = grow_cols(s, (ki->n_values < 4096 ? (size_t)ki->n_values : 4096) + 8);
    if (st) return st;
    if (!s->map && !s->arena_cap) {
        /* a live key: every row lands in the arena (Full records) */
        uint64_t hint = (uint64_t)(ki->n_values + 1) * (64u + ki->max_value_name_len + ki->max_value_data_len);
        if ((st = grow_buf(&s->arena, &s->arena_cap, hint > (16u << 20) ? (16u << 20) : (size_t)hint + 4096)))
            return st;
    }
    for (int attempt = 0; attempt < 16; attempt++) {
        rf_batch b;
        memset(&b, 0, sizeof b);
        b.struct_size = sizeof b;
        b.cap = s->cap;
        b.type = s->type;
        b.status = s->status;
        b.offset = s->offset;
        b.length = s->length;
        b.name = s->name;
        b.arena = s->arena;
        b.arena_cap = s->arena_cap;
        st = rf_read_values(s->h, k, NULL, 0, NULL, 0, RF_BATCH_FULL, &b);
        if (st != RF_E_MORE_DATA) {
            *n = b.n;
            return st;
        }
        if (b.n > s->cap && (st = grow_cols(s, b.n + 8))) return st;
        if (b.arena_used > b.arena_cap && (st = grow_buf(&s->arena, &s->arena_cap, b.arena_used + 4096))) return st;
    }
    return rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "the key's values kept growing while a snapshot read them");
}

static int gone(rf_status st)
{
    return st == RF_E_KEY_DELETED || st == RF_E_NOT_FOUND;
}

/* One key's row: header, values. Rolls `out` back on failure. */
static rf_status key_row(snap *s, rf_key k, rf_key_info *ki)
{
    rf_bytes *o = s->out;
    for (int attempt = 0;; attempt++) {
        rf_status st = rf_key_get_info(s->h, k, ki);
        if (st) return st;
        size_t row_at = o->len, rows = 0;
        uint64_t sdh = sd_hash(s, k);
        if ((st = rfi_bytes_u32(o, (uint32_t)(s->plen * 2))) || (st = rfi_bytes_put(o, s->path, s->plen * 2)) ||
            (st = rfi_bytes_u64(o, ki->last_write)) || (st = rfi_bytes_u64(o, sdh)) || (st = rfi_bytes_u32(o, 0)))
            return st;
        size_t count_at = o->len - 4;
        if ((st = read_all(s, k, ki, &rows))) {
            o->len = row_at;
            return st;
        }
        for (size_t i = 0; i < rows; i++) {
            if (s->status[i]) {
                /* The batch's last error is its last bad row's, with the
                 * offset where the damage is: report that row when it is
                 * one (each RF_E_CORRUPT says where). */
                size_t j = rows;
                while (j-- > i && !s->status[j]) {}
                const rf_error *e = rf_last_error();
                o->len = row_at;
                if (e->code == s->status[j])
                    return rfi_fail(e->code, e->offset, e->native, "a snapshot could not read value %zu of a key: %s",
                                    j, e->message);
                return rfi_fail(s->status[i], RF_NO_OFFSET, 0, "a snapshot could not read value %zu of a key: %s",
                                i, rf_status_text(s->status[i]));
            }
            uint64_t off = s->offset[i];
            if (!(off & RF_BATCH_IN_ARENA) && !s->map) {
                o->len = row_at;
                return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0, "a batch row points into a mapping "
                                "the %s backend does not have", s->h->ops->name);
            }
            const uint8_t *d = (off & RF_BATCH_IN_ARENA) ? s->arena + (off & ~RF_BATCH_IN_ARENA) : s->map + off;
            uint32_t len = s->length[i];
            if ((st = put_name(o, &s->name[i])) || (st = rfi_bytes_u32(o, s->type[i])) ||
                (st = rfi_bytes_u32(o, len)) || (st = rfi_bytes_u64(o, rf_fnv1a64(d, len))))
                return st;
            if ((s->flags & RF_SNAP_KEEP_DATA) && ((st = rfi_bytes_u32(o, len)) || (st = rfi_bytes_put(o, d, len))))
                return st;
        }
        rfi_put32(o->data + count_at, (uint32_t)rows);
        rf_key_info again;
        if (attempt + 1 < MAX_ATTEMPTS && rf_key_get_info(s->h, k, &again) == RF_OK &&
            again.last_write != ki->last_write) {
            o->len = row_at; /* written to meanwhile: take the row again */
            continue;
        }
        return RF_OK;
    }
}

static rf_status push_name(snap *s, const rf_name *n, size_t *saved)
{
    size_t nc = n->utf16 ? n->nbytes / 2 : n->nbytes;
    size_t need = s->plen + 1 + nc + 1;
    *saved = s->plen;
    if (need > s->pcap) {
        size_t cap = need * 2;
        uint16_t *p = realloc(s->path, cap * sizeof *p);
        if (!p) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a snapshot path");
        s->path = p;
        s->pcap = cap;
    }
    if (s->plen) s->path[s->plen++] = '\\';
    if (n->utf16) memcpy(s->path + s->plen, n->ptr, nc * 2);
    else for (size_t i = 0; i < nc; i++) s->path[s->plen + i] = ((const uint8_t *)n->ptr)[i];
    s->plen += nc;
    return RF_OK;
}

/* Keeps the path's last component (the sibling about to be walked) as the
 * level's last name. */
static rf_status keep_last(snap *s, level *lv, size_t saved)
{
    size_t from = saved ? saved + 1 : 0, n = s->plen - from;
    if (n > lv->last_cap) {
        uint16_t *p = realloc(lv->last, n * sizeof *p);
        if (!p) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a snapshot name");
        lv->last = p;
        lv->last_cap = n;
    }
    if (n) memcpy(lv->last, s->path + from, n * sizeof *lv->last);
    lv->last_n = n;
    return RF_OK;
}

/* Is k named exactly as the level's last name? (No on any error.) */
static int named_last(snap *s, const level *lv, rf_key k)
{
    rf_name nm;
    if (rf_key_name(s->h, k, &nm) != RF_OK) {
        rf_clear_error();
        return 0;
    }
    const uint8_t *p = nm.ptr;
    size_t nc = nm.utf16 ? nm.nbytes / 2 : nm.nbytes;
    if (nc != lv->last_n) return 0;
    for (size_t i = 0; i < nc; i++) {
        uint16_t c = nm.utf16 ? (uint16_t)(p[2 * i] | p[2 * i + 1] << 8) : p[i];
        if (c != lv->last[i]) return 0;
    }
    return 1;
}

/* A subkey to list? Not one whose own node lists none (the hint), nor a
 * symbolic link; one whose node lists some (the other hint) is no link.
 * Hints are best effort (none under a hive mount container, none when the
 * parent changed during the listing), so a live subkey without one is
 * asked (rf_key_is_link: an open as itself). A failed ask lists it, as
 * before links were told apart. */
static int lists_subkeys(snap *s, const level *lv, size_t i)
{
    if (lv->hints[i] & RF_SUBKEY_NO_SUBKEYS) return 0;
    if (lv->hints[i] & RF_SUBKEY_HAS_SUBKEYS) return 1;
    /* A hive file follows nothing: a node's subkeys are its own even if it
     * has the link flag (a crafted hive could so hide keys from a snapshot
     * that its scan and walk list) */
    if (s->map) return 1;
    int link = 0;
    if (rf_key_is_link(s->h, lv->keys[i], &link) != RF_OK) {
        rf_clear_error();
        return 1;
    }
    return !link;
}

/* The subkeys of k into the list of its level (kept in *s, so that nothing
 * is lost when a guard jumps out of the walk). */
static rf_status list_subkeys(snap *s, level *lv, rf_key k, size_t *n)
{
    *n = 0;
    for (int attempt = 0; attempt < 8; attempt++) {
        rf_status st = rf_key_subkeys_hinted(s->h, k, lv->keys, lv->hints, lv->cap, n);
        if (st != RF_E_MORE_DATA) return st;
        size_t cap = *n + 16;
        free(lv->keys);
        free(lv->hints);
        lv->cap = 0;
        lv->keys = malloc(cap * sizeof *lv->keys);
        lv->hints = malloc(cap);
        if (!lv->keys || !lv->hints)
            return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for %zu subkeys", cap);
        lv->cap = cap;
    }
    return rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "subkeys kept being added while a snapshot listed them");
}

/* `leaf`: not to be listed (its node lists no subkeys, or it is a link):
 * its row only. */
static rf_status snap_key(snap *s, rf_key k, int depth, int leaf)
{
    if (s->n_keys >= s->max_keys) {
        s->truncated = 1;
        return RF_OK;
    }
    rf_key_info ki;
    rf_status st = key_row(s, k, &ki);
    if (st) return st;
    s->n_keys++;
    if (!(s->flags & RF_SNAP_SUBTREE) || leaf) return RF_OK;
    if (depth >= MAX_DEPTH) return rfi_fail(RF_E_LIMIT, RF_NO_OFFSET, 0, "subtree deeper than %d levels", MAX_DEPTH);
    level *lv = &s->levels[depth];
    size_t n = 0;
    if ((st = list_subkeys(s, lv, k, &n))) return st;
    /* A live backend's slot table is bounded (the NT backend recycles least
     * recently used leaves): below a big sibling, the siblings listed but
     * not yet walked are recycled first, and their tokens go stale (6). The
     * level is listed again and the walk goes on at the same index if the
     * list still lines up: the same count, and the sibling before the index
     * is the one walked last, by name (live listings are in name order). A
     * level that changed starts over with its rows dropped (before, they
     * stayed and were written again). A second stale token at one index, or
     * a fifth start, is the error. */
    int restarts = 0;
    size_t stale_at = (size_t)-1, walked_at = (size_t)-1;
    size_t rows_at = s->out->len;
    uint32_t count_at = s->n_keys;
    for (size_t i = 0; i < n && !st && !s->truncated; i++) {
        rf_name nm;
        size_t saved;
        st = rf_key_name(s->h, lv->keys[i], &nm);
        if (st == RF_E_INVALID_HANDLE && stale_at != i && restarts < 4) {
            size_t was = n;
            if ((st = list_subkeys(s, lv, k, &n))) break;
            rf_clear_error();
            if (n == was && (i == 0 || (walked_at == i - 1 && named_last(s, lv, lv->keys[i - 1])))) {
                stale_at = i;
                i--;
            } else {
                restarts++;
                stale_at = walked_at = (size_t)-1;
                s->out->len = rows_at;
                s->n_keys = count_at;
                i = (size_t)-1;
            }
            continue;
        }
        if (gone(st)) { rf_clear_error(); st = RF_OK; continue; }
        if (st || (st = push_name(s, &nm, &saved)) || (st = keep_last(s, lv, saved))) break;
        walked_at = i;
        size_t out_at = s->out->len;
        uint32_t keys_at = s->n_keys;
        st = snap_key(s, lv->keys[i], depth + 1, !lists_subkeys(s, lv, i));
        if (gone(st)) { /* deleted while we looked: the next snapshot will say */
            s->out->len = out_at;
            s->n_keys = keys_at;
            rf_clear_error();
            st = RF_OK;
        }
        s->plen = saved;
    }
    return st;
}

rf_status rfi_snapshot_walk(rf_hive *h, rf_key k, uint32_t flags, uint32_t max_keys, rf_bytes *out,
                            rfi_snap **scratch)
{
    /* on the heap (a level table of ~24 KB), handed to the caller at once */
    snap *s = *scratch = calloc(1, sizeof *s);
    if (!s) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a snapshot");
    s->h = h;
    s->out = out;
    s->flags = flags;
    s->max_keys = max_keys ? max_keys : DEFAULT_MAX_KEYS;
    size_t map_len;
    rf_status st = rf_hive_mapping(h, &s->map, &map_len);
    if (st) return st;
    if (k == 0 && (st = rf_hive_root(h, &k))) return st;
    size_t head = out->len;
    if ((st = rfi_bytes_u32(out, 0)) || (st = rfi_bytes_u32(out, 0))) return st;
    st = snap_key(s, k, 0, 0);         /* the start is listed, link or not: it was asked for */
    if (st) {
        out->len = head;
    } else {
        rfi_put32(out->data + head, s->n_keys);
        rfi_put32(out->data + head + 4, (s->truncated ? RF_SNAP_TRUNCATED : 0) |
                                        ((flags & RF_SNAP_KEEP_DATA) ? RF_SNAP_DATA : 0));
    }
    return st;
}

void rfi_snapshot_release(rfi_snap *s)
{
    if (!s) return;
    snap_free(s);
    free(s);
}

static rf_status walk(rf_hive *h, rf_key k, uint32_t flags, uint32_t max_keys, rf_bytes *out)
{
    rfi_snap *scratch = NULL;
    rf_status st = rfi_snapshot_walk(h, k, flags, max_keys, out, &scratch);
    rfi_snapshot_release(scratch);
    return st;
}

/* ---- the entry point ------------------------------------------------------- */

static rf_status key_snapshot(rf_hive *h, rf_key k, uint32_t flags, uint32_t max_keys, rf_bytes *out)
{
    if (!h || !h->ops) return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "hive handle is NULL or closed");
    if (!out) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "out is NULL");
    if (flags & ~(uint32_t)(RF_SNAP_SUBTREE | RF_SNAP_KEEP_DATA))
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "flags has bits other than RF_SNAP_SUBTREE/KEEP_DATA");
    /* the remote backend has the agent run this same walk next to the registry */
    if (RF_OPS_HAS(h->ops, snapshot)) return h->ops->snapshot(h, k, flags, max_keys, out);
    return walk(h, k, flags, max_keys, out);
}

rf_status rf_key_snapshot(rf_hive *h, rf_key k, uint32_t flags, uint32_t max_keys, rf_bytes *out)
{
    if (!rfi_hooks_on()) return key_snapshot(h, k, flags, max_keys, out);
    rf_op_record r;
    rfi_rec_init(&r, RF_OP_SNAPSHOT, h, k);
    if (rfi_hook_pre(&r)) return rfi_vetoed(&r);
    size_t before = out ? out->len : 0;
    rf_status st = key_snapshot(h, k, flags, max_keys, out);
    if (!st) r.bytes = out->len - before;
    return rfi_hook_post(&r, st);
}

/* ---- validation ---------------------------------------------------------- */

typedef struct rd { const uint8_t *p; size_t n, pos; int bad; } rd;

static uint32_t rd32(rd *r)
{
    if (r->bad || r->n - r->pos < 4) { r->bad = 1; return 0; }
    uint32_t v = rf_le32(r->p + r->pos);
    r->pos += 4;
    return v;
}

static void skip(rd *r, size_t n)
{
    if (r->bad || r->n - r->pos < n) { r->bad = 1; return; }
    r->pos += n;
}

static uint32_t rd_str(rd *r, int even)
{
    uint32_t n = rd32(r);
    if (even && (n & 1)) r->bad = 1;
    skip(r, n);
    return n;
}

rf_status rf_snapshot_size(const uint8_t *p, size_t len, size_t *size_out)
{
    rd r = { p, p ? len : 0, 0, 0 };
    if (size_out) *size_out = 0;
    uint32_t n_keys = rd32(&r), flags = rd32(&r);
    if (flags & ~(uint32_t)(RF_SNAP_TRUNCATED | RF_SNAP_DATA)) r.bad = 1;
    for (uint32_t i = 0; i < n_keys && !r.bad; i++) {
        rd_str(&r, 1);
        skip(&r, 16);
        uint32_t nv = rd32(&r);
        for (uint32_t j = 0; j < nv && !r.bad; j++) {
            rd_str(&r, 1);
            skip(&r, 4);
            uint32_t size = rd32(&r);
            skip(&r, 8);
            if ((flags & RF_SNAP_DATA) && rd_str(&r, 0) != size) r.bad = 1;
        }
    }
    if (r.bad)
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0, "malformed snapshot near byte %zu of %zu", r.pos, len);
    if (size_out) *size_out = r.pos;
    return RF_OK;
}
