/*
 * rm_batch.c — rf_read_values over the agent: one READ_VALUES request with
 * the columns flag (protocol 3), whose reply is
 *
 *   rows:u32 arena_len:u32 names_len:u32
 *   type:u32[rows] status:i32[rows] length:u32[rows] offset:u64[rows]
 *   name_off:u32[rows] name_len:u32[rows] names:u8[names_len] arena:u8[arena_len]
 *
 * and is received straight into the caller's rf_batch: each column by one
 * read into its array, the data arena by one read into the caller's arena.
 * Nothing is copied in between; offsets and lengths are checked after (a
 * row pointing outside the arena makes the reply malformed, which kills the
 * connection: a server we cannot trust must not be read further).
 *
 * When the caller's row capacity or arena is too small, the columns (and
 * names) are read into a parked block and the arena is left in the stream:
 * RF_E_MORE_DATA says the sizes, and the same request repeated next — what
 * every caller does after growing its arena — is answered from the parked
 * columns and the stream, without a second request. Any other call first
 * reads and drops the parked arena (rm_call).
 */
#include <stdlib.h>
#include <string.h>

#include "remote/rm_internal.h"

#define ROW_BYTES 28u   /* type + status + length + offset(8) + name_off + name_len */

static size_t up8(size_t n) { return (n + 7u) & ~(size_t)7; }

/* Checks every row of a column block against the arena and names sizes. */
static int rows_ok(const uint8_t *status, const uint8_t *length, const uint8_t *offset, const uint8_t *noff,
                   const uint8_t *nlen, uint32_t rows, uint32_t arena_len, uint32_t names_len)
{
    for (uint32_t i = 0; i < rows; i++) {
        int32_t s = (int32_t)rf_le32(status + 4 * i);
        uint64_t off = rf_le64(offset + 8 * i), len = rf_le32(length + 4 * i);
        if (s == 0 && (off > arena_len || len > arena_len - off)) return 0;
        uint64_t no = rf_le32(noff + 4 * i), nl = rf_le32(nlen + 4 * i) & 0x7FFFFFFFu;
        if (no > names_len || nl > names_len - no) return 0;
    }
    return 1;
}

/* Fills the name and token columns (and makes the offsets arena offsets).
 * `names_at`: where the names block is (the caller's arena, or scratch). */
static rf_status finish_rows(rm_hive *h, uint32_t idx, const rf_name *req, rf_batch *b, uint32_t rows,
                             const uint8_t *noff, const uint8_t *nlen, const uint8_t *names_at)
{
    int tokens = b->struct_size >= sizeof(rf_batch) && b->token;
    for (uint32_t i = 0; i < rows; i++) {
        if (b->status[i] == 0) b->offset[i] |= RF_BATCH_IN_ARENA;
        else b->offset[i] = 0;
        rf_name nm;
        if (req) {
            nm = req[i];
        } else {
            uint32_t nl = rf_le32(nlen + 4 * i);
            nm.ptr = names_at + rf_le32(noff + 4 * i);
            nm.nbytes = nl & 0x7FFFFFFFu;
            nm.utf16 = (nl & 0x80000000u) ? 0 : 1;
        }
        if (b->name) b->name[i] = nm;
        if (tokens) {
            b->token[i] = 0;
            if (b->status[i] != RF_E_NOT_FOUND) {
                /* interned by their UTF-16 name; a Latin-1 one is widened first */
                const uint16_t *w = nm.ptr;
                size_t nc = nm.nbytes / 2;
                if (!nm.utf16 || ((uintptr_t)nm.ptr & 1)) {
                    uint16_t *t = rm_tls(RM_TLS_AUX, (size_t)nm.nbytes * 2 + 2);
                    if (!t) return RF_E_NO_MEMORY;
                    nc = nm.utf16 ? nm.nbytes / 2 : nm.nbytes;
                    for (size_t j = 0; j < nc; j++)
                        t[j] = nm.utf16 ? rf_le16((const uint8_t *)nm.ptr + 2 * j) : ((const uint8_t *)nm.ptr)[j];
                    w = t;
                }
                rf_status st = rm_value_intern(h, idx, w, nc, &b->token[i]);
                if (st) return st;
            }
        }
    }
    return RF_OK;
}

/* Columns held in memory (parked) into the caller's arrays. */
static void copy_cols(rf_batch *b, const uint8_t *cols, uint32_t rows)
{
    memcpy(b->type, cols, rows * 4u);
    memcpy(b->status, cols + rows * 4u, rows * 4u);
    memcpy(b->length, cols + rows * 8u, rows * 4u);
    memcpy(b->offset, cols + rows * 12u, rows * 8u);
}

/* The parked reply into a caller whose arena now fits it. */
static rf_status resume(rm_hive *h, uint32_t idx, const rf_name *req, rf_batch *b)
{
    rf_remote *c = h->c;
    rm_park *k = &c->park;
    uint32_t rows = k->rows;
    copy_cols(b, k->cols, rows);
    const uint8_t *noff = k->cols + rows * 20u, *nlen = k->cols + rows * 24u;
    uint8_t *names_at = NULL;
    if (!req && k->names_len) {
        names_at = b->arena + up8(k->arena_len);
        memcpy(names_at, k->names, k->names_len);
    }
    k->active = 0;
    rm_reply r = { AG_OP_READ_VALUES, (uint32_t)k->arena_left, rm_now_ms() + c->timeout_ms };
    rf_status st = rm_recv(c, &r, b->arena, k->arena_left);
    if (st) return st;
    b->n = rows;
    b->arena_used = up8(k->arena_len) + k->names_len;
    return finish_rows(h, idx, req, b, rows, noff, nlen, names_at);
}

/* The request's payload: a parked reply answers only the very same bytes. */
static void encode(rf_remote *c, uint32_t handle, const rf_name *names, size_t n, const uint32_t *types,
                   size_t n_types, uint32_t flags)
{
    rm_begin(c);
    rm_put32(c, handle);
    rm_put32(c, AG_RV_COLUMNS | ((flags & RF_BATCH_FULL) ? AG_RV_FULL : 0));
    rm_put32(c, names ? (uint32_t)n : AG_ALL);
    for (size_t i = 0; names && i < n; i++) rm_put_name(c, &names[i]);
    rm_put32(c, (uint32_t)n_types);
    for (size_t i = 0; i < n_types; i++) rm_put32(c, types[i]);
}

static int same_request(rf_remote *c)
{
    rm_park *k = &c->park;
    size_t len = c->req_len - AG_HEADER;
    return k->req_len == len && memcmp(k->req, c->req + AG_HEADER, len) == 0;
}

static rf_status read_reply(rm_hive *h, uint32_t idx, const rf_name *req, size_t n, rf_batch *b)
{
    rf_remote *c = h->c;
    rm_reply r;
    rf_status st = rm_call(c, AG_OP_READ_VALUES, &r);
    if (st) return st;
    uint8_t hd[12];
    if ((st = rm_recv(c, &r, hd, 12))) return st;
    uint32_t rows = rf_le32(hd), arena_len = rf_le32(hd + 4), names_len = rf_le32(hd + 8);
    if ((uint64_t)rows * ROW_BYTES + names_len + arena_len != r.left || (req && rows != n) ||
        (arena_len & 7) || (req && names_len))
        return rm_malformed(c, AG_OP_READ_VALUES, "its sizes do not add up");
    size_t names8 = up8(arena_len) + names_len;   /* names after the data, in the arena */
    int fits = rows <= b->cap && arena_len <= b->arena_cap && (req || names8 <= b->arena_cap);
    if (fits) {
        /* straight into the caller's columns and arena; the name offsets in
         * their own scratch (finish_rows widens names in RM_TLS_AUX) */
        uint8_t *nmeta = rm_tls(RM_TLS_META, (size_t)rows * 8 + 8);
        if (!nmeta) return RF_E_NO_MEMORY;
        uint8_t *names_at = req ? NULL : b->arena + arena_len;
        if ((st = rm_recv(c, &r, b->type, rows * 4u)) || (st = rm_recv(c, &r, b->status, rows * 4u)) ||
            (st = rm_recv(c, &r, b->length, rows * 4u)) || (st = rm_recv(c, &r, b->offset, rows * 8u)) ||
            (st = rm_recv(c, &r, nmeta, rows * 8u)))
            return st;
        /* names land after the data: received first into their place */
        if ((st = rm_recv(c, &r, names_at, names_len)) || (st = rm_recv(c, &r, b->arena, arena_len)) ||
            (st = rm_end(c, &r)))
            return st;
        if (!rows_ok((const uint8_t *)b->status, (const uint8_t *)b->length, (const uint8_t *)b->offset, nmeta,
                     nmeta + rows * 4u, rows, arena_len, names_len))
            return rm_malformed(c, AG_OP_READ_VALUES, "a row points outside the data");
        b->n = rows;
        b->arena_used = req ? arena_len : arena_len + names_len;
        return finish_rows(h, idx, req, b, rows, nmeta, nmeta + rows * 4u, names_at);
    }
    /* park: columns and names into memory, the arena stays in the stream */
    rm_park *k = &c->park;
    free(k->cols);
    free(k->names);
    k->cols = malloc((size_t)rows * ROW_BYTES + 8);
    k->names = malloc(names_len + 8);
    if (!k->cols || !k->names) return rm_kill(c, "no memory to park a %u-row reply", rows);
    if ((st = rm_recv(c, &r, k->cols, (size_t)rows * ROW_BYTES)) || (st = rm_recv(c, &r, k->names, names_len)))
        return st;
    const uint8_t *cols = k->cols;
    if (!rows_ok(cols + rows * 4u, cols + rows * 8u, cols + rows * 12u, cols + rows * 20u, cols + rows * 24u, rows,
                 arena_len, names_len))
        return rm_malformed(c, AG_OP_READ_VALUES, "a row points outside the data");
    size_t len = c->req_len - AG_HEADER;
    uint8_t *q = realloc(k->req, len ? len : 1);
    if (!q) return rm_kill(c, "no memory to park a reply");
    k->req = q;
    memcpy(k->req, c->req + AG_HEADER, len);
    k->req_len = len;
    k->rows = rows;
    k->arena_len = arena_len;
    k->names_len = names_len;
    k->arena_left = r.left;
    k->hive = &h->base;
    k->active = 1;
    b->n = rows;
    b->arena_used = req ? arena_len : names8;
    if (rows <= b->cap) {
        /* what fits now: every row, its data not in an arena too small for
         * it (status 234, length needed); names in per-thread scratch */
        copy_cols(b, cols, rows);
        for (uint32_t i = 0; i < rows; i++)
            if (b->status[i] == 0) b->status[i] = RF_E_MORE_DATA;
        uint8_t *names_at = NULL;
        if (!req) {
            names_at = rm_tls(RM_TLS_DATA, names_len + 8);
            if (!names_at) return RF_E_NO_MEMORY;
            memcpy(names_at, k->names, names_len);
        }
        if ((st = finish_rows(h, idx, req, b, rows, cols + rows * 20u, cols + rows * 24u, names_at))) return st;
    }
    return rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0,
                    "%u rows and %zu arena bytes needed (%zu rows, %zu bytes given)", rows, (size_t)b->arena_used,
                    b->cap, b->arena_cap);
}

rf_status rm_read_values(rf_hive *base, rf_key key, const rf_name *names, size_t n, const uint32_t *types,
                         size_t n_types, uint32_t flags, rf_batch *b)
{
    rm_hive *h = (rm_hive *)base;
    rf_remote *c = h->c;
    b->n = 0;
    b->arena_used = 0;
    if (names && n > AG_MAX_REQUEST / 4)
        return rfi_fail(RF_E_LIMIT, RF_NO_OFFSET, 0, "%zu names in one batch", n);
    rm_lock(&c->lock);
    uint32_t idx = 0, handle;
    rf_status st = rm_alive(c);
    if (!st) st = rm_entry_of(h, key, &idx);
    if (!st && c->park.active && c->park.hive == base && h->e[idx].handle) {
        encode(c, h->e[idx].handle, names, n, types, n_types, flags);
        if (same_request(c)) {
            size_t need = c->park.names_len && !names ? up8(c->park.arena_len) + c->park.names_len : c->park.arena_len;
            if (c->park.rows > b->cap || need > b->arena_cap) {
                b->n = c->park.rows;
                b->arena_used = need;
                st = rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "%u rows and %zu arena bytes needed", c->park.rows, need);
            } else {
                st = resume(h, idx, names, b);
            }
            rm_unlock(&c->lock);
            return st;
        }
    }
    for (int attempt = 0; !st && attempt < 2; attempt++) {
        if ((st = rm_handle(h, idx, &handle))) break;
        encode(c, handle, names, n, types, n_types, flags);
        st = read_reply(h, idx, names, n, b);
        if (st == RF_E_INVALID_HANDLE && attempt == 0 && !c->dead) {
            rm_forget_handle(h, idx);   /* the agent no longer knows it: open again */
            st = RF_OK;
            continue;
        }
        break;
    }
    if (st && st != RF_E_MORE_DATA) rm_after_error(h, idx, st);
    rm_unlock(&c->lock);
    return st;
}
