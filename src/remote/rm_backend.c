/*
 * rm_backend.c — the remote backend's method table: every rf_* operation as
 * one request to regfast-agent (ops in src/agent/ag_ops.def), its reply
 * decoded into the rf_* out-parameters. Batches are rm_batch.c, watches
 * rm_watch.c, the key and value tables rm_keys.c, the wire rm_conn.c.
 *
 * Every call takes the connection's lock for its request and reply. Errors
 * the agent reports come back as its rf_status with its message in
 * rf_last_error() (native = its NTSTATUS or Win32 code).
 */
#include <stdlib.h>
#include <string.h>

#include "remote/rm_internal.h"

#define LOCKED(h) rf_remote *c = (h)->c; rm_lock(&c->lock); rf_status st = rm_alive(c)
#define UNLOCK_RETURN(x) do { rf_status r_ = (x); rm_unlock(&c->lock); return r_; } while (0)

typedef void (*build_fn)(rf_remote *c, uint32_t handle, const void *ctx);

/*
 * One request on a key's agent handle: opens the handle if needed, builds
 * the request (`build`), calls. The agent forgetting the handle (6) reopens
 * it once; a key deleted under it (1018, or its path gone at the first use:
 * 2) makes the entry a tombstone. The reply is left in c->rep.
 */
static rf_status key_call(rm_hive *h, uint32_t idx, uint16_t op, build_fn build, const void *ctx,
                          const uint8_t **p, size_t *n)
{
    rf_remote *c = h->c;
    for (int attempt = 0;; attempt++) {
        uint32_t hd;
        rf_status st = rm_handle(h, idx, &hd);
        if (st == RF_E_NOT_FOUND && h->e[idx].unloaded) {
            /* its hive was unloaded (UNLOAD_HIVE): the key is not there, as
             * for a fresh open; it was not deleted under the caller. The
             * entry stays (no tombstone): each use asks again, and says 2
             * until the hive is loaded there again */
            return st;
        }
        if (st == RF_E_NOT_FOUND) {
            rm_after_error(h, idx, st);
            return rfi_fail(RF_E_KEY_DELETED, RF_NO_OFFSET, rf_last_error()->native,
                            "the key was deleted since it was opened or enumerated");
        }
        if (st) return st;
        build(c, hd, ctx);
        st = rm_call_buf(c, op, p, n);
        if (st == RF_E_INVALID_HANDLE && attempt == 0 && !c->dead) {
            rm_forget_handle(h, idx);
            continue;
        }
        if (st == RF_E_KEY_DELETED) rm_after_error(h, idx, st);
        return st;
    }
}

static void build_handle(rf_remote *c, uint32_t hd, const void *ctx)
{
    (void)ctx;
    rm_begin(c);
    rm_put32(c, hd);
}

/* a handle and one u32 (ctx: the value, cast) */
static void build_handle_u32(rf_remote *c, uint32_t hd, const void *ctx)
{
    rm_begin(c);
    rm_put32(c, hd);
    rm_put32(c, (uint32_t)(uintptr_t)ctx);
}

typedef struct name_arg { const uint16_t *name; size_t n; uint32_t u32a, u32b; const void *data; size_t len; } name_arg;

static void build_handle_name(rf_remote *c, uint32_t hd, const void *ctx)
{
    const name_arg *a = ctx;
    rm_begin(c);
    rm_put32(c, hd);
    rm_put16s(c, a->name, a->n);
}

/* A copy of `n` chars in per-thread scratch (borrowed results). */
static const uint16_t *tls_copy16(const uint16_t *s, size_t n, int which)
{
    uint16_t *t = rm_tls(which, n * 2 + 2);
    if (t && n) memcpy(t, s, n * 2);
    return t;
}

/* ------------------------------------------------------------------------ */
/* Hive                                                                      */
/* ------------------------------------------------------------------------ */

static void rm_close(rf_hive *base)
{
    rm_hive *h = (rm_hive *)base;
    rf_remote *c = h->c;
    rm_lock(&c->lock);
    if (c->park.active && c->park.hive == base) {
        /* its parked arena is read and dropped by the next call; nothing
         * must point at this hive meanwhile */
        c->park.hive = NULL;
    }
    /* the last user of the connection: closing the stream ends the agent's
     * handles, no CLOSE_KEY round trips needed */
    if (c->refs == 1) rm_kill(c, "the last remote hive was closed");
    for (rm_hive **pp = &c->hives; *pp; pp = &(*pp)->sibling)
        if (*pp == h) {
            *pp = h->sibling;
            break;
        }
    rm_keys_free(h);
    rm_unlock(&c->lock);
    rf_clear_error();
    rm_conn_unref(c);
}

static rf_status rm_get_info(rf_hive *base, rf_hive_info *out)
{
    (void)base;
    memset(out, 0, sizeof *out);
    return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "a live registry root has no base block to describe");
}

static rf_status rm_root(rf_hive *base, rf_key *out)
{
    *out = rm_root_token((rm_hive *)base);
    return RF_OK;
}

static rf_status rm_mapping(rf_hive *base, const uint8_t **map, size_t *len)
{
    (void)base;
    *map = NULL;
    *len = 0;
    return RF_OK;
}

/* ------------------------------------------------------------------------ */
/* Keys                                                                      */
/* ------------------------------------------------------------------------ */

/* A whole path in one step: OPEN_KEY says whether it exists now. A cached
 * entry's handle is checked instead (KEY_INFO, one round trip all the same):
 * RegOpenKeyEx fails with 2 for a key deleted since — by another process,
 * or through another path of it (a WOW64 view) — so an open must not hand
 * out a Key whose every call then fails. */
static rf_status rm_key_open(rf_hive *base, rf_key parent, const uint16_t *path, size_t nchars, rf_key *out)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    uint32_t pidx = 0, idx, hd;
    uint16_t *full;
    size_t fn;
    if (!st && parent) st = rm_entry_of(h, parent, &pidx);
    if (!st) st = rm_join(h, pidx, path, nchars, &full, &fn);
    if (!st) st = rm_entry_for(h, full, fn, &idx);
    if (!st && idx != 0 && h->e[idx].handle) {
        const uint8_t *p;
        size_t n;
        st = key_call(h, idx, AG_OP_KEY_INFO, build_handle, NULL, &p, &n);
        if (st == RF_E_KEY_DELETED || st == RF_E_NOT_FOUND) {   /* tombstoned: the path opens afresh */
            rf_clear_error();
            st = rm_entry_for(h, full, fn, &idx);
        }
    }
    if (!st && (st = rm_handle(h, idx, &hd)) != RF_OK) rm_after_error(h, idx, st);
    if (!st) *out = rm_token(h, idx);
    UNLOCK_RETURN(st);
}

static rf_status rm_key_child(rf_hive *base, rf_key parent, const uint16_t *name, size_t nchars, rf_key *out)
{
    for (size_t i = 0; i < nchars; i++)
        if (name[i] == '\\') return rfi_fail(RF_E_BAD_PATHNAME, RF_NO_OFFSET, 0, "a key name cannot contain '\\'");
    if (nchars == 0 || nchars > 255)
        return rfi_fail(RF_E_BAD_PATHNAME, RF_NO_OFFSET, 0, "key name of %zu chars (1..255 allowed)", nchars);
    return rm_key_open(base, parent, name, nchars, out);
}

/* KEY_INFO decoded; the class and name stay in c->rep (rd positioned). */
typedef struct kinfo { rf_key_info i; const uint16_t *cls, *name; size_t ncls, nname; } kinfo;

static const uint16_t WOW6432NODE[] = { 'W', 'o', 'w', '6', '4', '3', '2', 'N', 'o', 'd', 'e' };

/*
 * The name KEY_INFO reports (the key's own, as stored) against the entry's
 * last component (as the caller typed it, or as a listing of its parent
 * spelt it):
 *  - the same name in another case: the stored spelling replaces the typed
 *    one (Key.path and Key.name are spelt as stored);
 *  - "Wow6432Node" for a component that is not: the view redirected the open
 *    (the 32-bit view of HKLM\Software is HKLM\Software\Wow6432Node). The
 *    key stays the redirected one, but its name and path are the caller's in
 *    that view, as Windows presents them there (RegEnumKeyExW of HKLM in the
 *    32-bit view lists "Software", and no Wow6432Node): a path that says
 *    Wow6432Node would not even open in that view (2, measured under Wine 8);
 *  - any other name (a symbolic link's target, a key renamed under the
 *    handle) is left to key_name, which reports it; the entry's path stays
 *    the one that opens it.
 * The root's name (idx 0) is whatever the agent says.
 */
/* Where the entry's last path component starts (0 for a one-component path). */
static size_t last_component(const rm_entry *e)
{
    size_t last = e->plen;
    while (last > 0 && e->path[last - 1] != '\\') last--;
    return last;
}

static void reconcile_name(rm_hive *h, uint32_t idx, const kinfo *ki)
{
    rm_entry *e = &h->e[idx];
    if (idx == 0) return;
    size_t last = last_component(e);
    const uint16_t *typed = e->path + last;
    size_t ntyped = e->plen - last;
    if (rm_same_name(typed, ntyped, ki->name, ki->nname)) {
        memcpy(e->path + last, ki->name, ki->nname * 2);   /* same length: same name */
        e->stored_name = 1;
    } else if (rm_same_name(ki->name, ki->nname, WOW6432NODE, 11)) {
        e->stored_name = 1;   /* the component as the view presents it */
    }
}

static rf_status key_info(rm_hive *h, uint32_t idx, kinfo *ki)
{
    const uint8_t *p;
    size_t n;
    rf_status st = key_call(h, idx, AG_OP_KEY_INFO, build_handle, NULL, &p, &n);
    if (st) return st;
    rm_rd r = { p, n, 0, 0 };
    memset(ki, 0, sizeof *ki);
    ki->i.last_write = rm_rd64(&r);
    ki->i.n_subkeys = rm_rd32(&r);
    ki->i.n_values = rm_rd32(&r);
    ki->i.max_name_len = rm_rd32(&r);
    ki->i.max_class_len = rm_rd32(&r);
    ki->i.max_value_name_len = rm_rd32(&r);
    ki->i.max_value_data_len = rm_rd32(&r);
    ki->i.flags = rm_rd32(&r);
    ki->cls = rm_rd16s(&r, &ki->ncls);
    ki->cls = ki->cls ? tls_copy16(ki->cls, ki->ncls, RM_TLS_AUX) : NULL;
    ki->name = rm_rd16s(&r, &ki->nname);
    if (r.bad || r.pos != r.n) return rm_malformed(h->c, AG_OP_KEY_INFO, "fields");
    ki->i.class_len = (uint32_t)(ki->ncls * 2);
    ki->i.security_offset = RF_NO_OFFSET;
    reconcile_name(h, idx, ki);
    ki->name = tls_copy16(ki->name, ki->nname, RM_TLS_NAME);
    return ki->name ? RF_OK : RF_E_NO_MEMORY;
}

static rf_status rm_key_info(rf_hive *base, rf_key k, rf_key_info *out)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    uint32_t idx;
    kinfo ki;
    memset(out, 0, sizeof *out);
    if (!st && !(st = rm_entry_of(h, k, &idx)) && !(st = key_info(h, idx, &ki))) *out = ki.i;
    UNLOCK_RETURN(st);
}

static rf_status rm_key_name(rf_hive *base, rf_key k, rf_name *out)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    uint32_t idx;
    kinfo ki = { 0 };
    memset(out, 0, sizeof *out);
    out->utf16 = 1;
    /* KEY_INFO once, until the entry's last component is known to be the
     * name to show (reconcile_name); the root's is the agent's each time */
    if (!st && !(st = rm_entry_of(h, k, &idx)) && !h->e[idx].stored_name) st = key_info(h, idx, &ki);
    if (!st && idx != 0 && h->e[idx].stored_name) {
        rm_entry *e = &h->e[idx];
        size_t last = last_component(e);
        out->ptr = tls_copy16(e->path + last, e->plen - last, RM_TLS_NAME);
        out->nbytes = (uint32_t)((e->plen - last) * 2);
        if (!out->ptr) st = RF_E_NO_MEMORY;
    } else if (!st) {
        out->ptr = ki.name;
        out->nbytes = (uint32_t)(ki.nname * 2);
    }
    UNLOCK_RETURN(st);
}

static rf_status rm_key_class(rf_hive *base, rf_key k, rf_name *out)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    uint32_t idx;
    kinfo ki;
    memset(out, 0, sizeof *out);
    out->utf16 = 1;
    if (!st && !(st = rm_entry_of(h, k, &idx)) && !(st = key_info(h, idx, &ki)) && ki.ncls) {
        out->ptr = ki.cls;
        out->nbytes = (uint32_t)(ki.ncls * 2);
    }
    UNLOCK_RETURN(st);
}

static rf_status rm_key_parent(rf_hive *base, rf_key k, rf_key *out)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    uint32_t idx, pidx;
    if (!st && !(st = rm_entry_of(h, k, &idx))) {
        if (idx == 0) {
            st = rfi_fail(RF_E_NOT_FOUND, RF_NO_OFFSET, 0, "the root key has no parent");
        } else {
            rm_entry *e = &h->e[idx];
            size_t cut = last_component(e);
            const uint16_t *pp = tls_copy16(e->path, cut ? cut - 1 : 0, RM_TLS_AUX);
            if (!pp) st = RF_E_NO_MEMORY;
            else if (!(st = rm_entry_for(h, pp, cut ? cut - 1 : 0, &pidx))) *out = rm_token(h, pidx);
        }
    }
    UNLOCK_RETURN(st);
}

/* The token list of a SUBKEYS or value enumeration (and a hinted SUBKEYS'
 * hints), kept for the caller's next call (a count first, then the array)
 * while no request came between. */
static rf_status list_keep(rm_hive *h, rf_key k, int values, const uint64_t *tokens, const uint8_t *hints, size_t n)
{
    if (h->list_cap < n) {
        uint64_t *p = realloc(h->list, n * sizeof *p);
        if (!p) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
        h->list = p;
        uint8_t *q = realloc(h->list_hint, n);
        if (!q) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
        h->list_hint = q;
        h->list_cap = n;
    }
    if (n) memcpy(h->list, tokens, n * sizeof *tokens);
    if (n && hints) memcpy(h->list_hint, hints, n);
    h->list_n = n;
    h->list_key = k;
    h->list_values = values;
    h->list_hinted = hints != NULL;
    h->list_seq = h->c->seq;
    return RF_OK;
}

static rf_status list_out(rm_hive *h, uint64_t *out, uint8_t *hints, size_t cap, size_t *n_out)
{
    *n_out = h->list_n;
    if (cap < h->list_n)
        return rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "%zu entries, the array holds %zu", h->list_n, cap);
    if (h->list_n) memcpy(out, h->list, h->list_n * sizeof *out);
    if (h->list_n && hints) memcpy(hints, h->list_hint, h->list_n);
    return RF_OK;
}

/* SUBKEYS; with `hinted` (version 5) the agent also says which subkeys'
 * own nodes list no subkeys (one more NtEnumerateKey per subkey there, no
 * more requests). */
static rf_status list_subkeys(rf_hive *base, rf_key k, int hinted, rf_key *out, uint8_t *hints, size_t cap,
                              size_t *n_out)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    uint32_t idx;
    *n_out = 0;
    if (!st && !(st = rm_entry_of(h, k, &idx)) &&
        !(h->list_seq == c->seq && h->list_key == k && !h->list_values && (h->list_hinted || !hinted))) {
        const uint8_t *p;
        size_t n;
        int v5 = c->version >= AG_V_LINKS;
        if (v5) st = key_call(h, idx, AG_OP_SUBKEYS, build_handle_u32,
                              (const void *)(uintptr_t)(hinted ? AG_SUBKEYS_HINTS : 0), &p, &n);
        else st = key_call(h, idx, AG_OP_SUBKEYS, build_handle, NULL, &p, &n);
        uint8_t *copy = NULL, *hint = NULL;
        uint64_t *tokens = NULL;
        if (!st) {
            /* making entries may close handles (requests): the reply is copied first */
            copy = malloc(n ? n : 1);
            if (!copy) st = rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
            else memcpy(copy, p, n);
        }
        uint32_t count = 0;
        if (!st) {
            rm_rd r = { copy, n, 0, 0 };
            count = rm_rd32(&r);
            if (count > n / (v5 ? 16 : 12)) st = rm_malformed(c, AG_OP_SUBKEYS, "more names than bytes");
            else if (!(tokens = malloc((count ? count : 1) * sizeof *tokens)) || !(hint = calloc(count ? count : 1, 1)))
                st = rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
            for (uint32_t i = 0; !st && i < count; i++) {
                size_t nc;
                rm_rd64(&r);
                const uint16_t *nm = rm_rd16s(&r, &nc);
                uint32_t eflags = v5 ? rm_rd32(&r) : 0;
                if (r.bad) { st = rm_malformed(c, AG_OP_SUBKEYS, "a name"); break; }
                if (nc == 0 || nc > RM_MAX_LISTED_NAME) {
                    /* the reply parses (it is copied out): a name no key can
                     * have fails this listing, not the connection */
                    st = rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                                  "subkey %u of the listing has a name of %zu chars (1..%u can be listed)", i, nc,
                                  RM_MAX_LISTED_NAME);
                    break;
                }
                uint16_t *full;
                size_t fn;
                uint32_t ci;
                /* nm may be scratch of rm_rd16s: joined before anything else runs */
                if ((st = rm_join(h, idx, nm, nc, &full, &fn)) || (st = rm_entry_for(h, full, fn, &ci))) break;
                h->e[ci].stored_name = 1;
                h->e[ci].link = RM_LINK_UNKNOWN;   /* listed again: it may be another key by now */
                /* the hint is for this listing's caller only: kept as the
                 * entry's link state, it outlived a replacement by a link */
                if (hinted && (eflags & AG_SUBKEY_NO_SUBKEYS)) hint[i] = RF_SUBKEY_NO_SUBKEYS;
                else if (hinted && (eflags & AG_SUBKEY_HAS_SUBKEYS)) hint[i] = RF_SUBKEY_HAS_SUBKEYS;
                tokens[i] = rm_token(h, ci);
            }
            if (!st && (r.bad || r.pos != r.n)) st = rm_malformed(c, AG_OP_SUBKEYS, "trailing bytes");
        }
        if (!st) st = list_keep(h, k, 0, tokens, hinted ? hint : NULL, count);
        free(copy);
        free(tokens);
        free(hint);
    }
    if (!st) st = list_out(h, out, hints, cap, n_out);
    UNLOCK_RETURN(st);
}

static rf_status rm_key_subkeys(rf_hive *base, rf_key k, rf_key *out, size_t cap, size_t *n_out)
{
    return list_subkeys(base, k, 0, out, NULL, cap, n_out);
}

static rf_status rm_key_subkeys_hinted(rf_hive *base, rf_key k, rf_key *out, uint8_t *hints, size_t cap,
                                       size_t *n_out)
{
    return list_subkeys(base, k, 1, out, hints, cap, n_out);
}

/* KEY_IS_LINK of the path from the root (the last component looked at as
 * itself), once per entry until a listing names it again. The root is a
 * predefined key or a loaded hive's root: never a link to look at. */
static rf_status rm_key_is_link(rf_hive *base, rf_key k, int *out)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    uint32_t idx = 0;
    if (!st && !(st = rm_entry_of(h, k, &idx)) && idx != 0 && h->e[idx].link == RM_LINK_UNKNOWN) {
        const uint8_t *p;
        size_t n;
        name_arg a = { h->e[idx].path, h->e[idx].plen, 0, 0, NULL, 0 };
        if (c->version < AG_V_LINKS) {
            st = rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0,
                          "the agent speaks protocol %u: links are told from version %u", (unsigned)c->version,
                          (unsigned)AG_V_LINKS);
        } else if (!(st = key_call(h, 0, AG_OP_KEY_IS_LINK, build_handle_name, &a, &p, &n))) {
            /* (the path was copied into the request before anything else ran) */
            if (n != 4) st = rm_malformed(c, AG_OP_KEY_IS_LINK, "4 bytes expected");
            else h->e[idx].link = rf_le32(p) ? RM_LINK_YES : RM_LINK_NO;
        } else if (st == RF_E_NOT_FOUND && !h->e[idx].unloaded) {
            /* as for any call on a key deleted under its token (key_call) */
            rm_after_error(h, idx, st);
            st = rfi_fail(RF_E_KEY_DELETED, RF_NO_OFFSET, rf_last_error()->native,
                          "the key was deleted since it was opened or enumerated");
        }
    }
    if (!st) *out = idx != 0 && h->e[idx].link == RM_LINK_YES;
    UNLOCK_RETURN(st);
}

/* Every value's name (READ_VALUES of all, columns; the data is read and dropped). */
static rf_status rm_key_values(rf_hive *base, rf_key k, rf_value *out, size_t cap, size_t *n_out)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    uint32_t idx, hd;
    *n_out = 0;
    if (!st && !(st = rm_entry_of(h, k, &idx)) && !(h->list_seq == c->seq && h->list_key == k && h->list_values)) {
        uint8_t *meta = NULL, *names = NULL;
        uint64_t *tokens = NULL;
        uint32_t rows = 0;
        if ((st = rm_handle(h, idx, &hd)) == RF_E_NOT_FOUND && !h->e[idx].unloaded) {   /* see key_call */
            rm_after_error(h, idx, st);
            st = rfi_fail(RF_E_KEY_DELETED, RF_NO_OFFSET, 0, "the key was deleted since it was opened or enumerated");
        }
        rm_reply r;
        if (!st) {
            rm_begin(c);
            rm_put32(c, hd);
            rm_put32(c, AG_RV_COLUMNS | AG_RV_FULL);
            rm_put32(c, AG_ALL);
            rm_put32(c, 0);
            st = rm_call(c, AG_OP_READ_VALUES, &r);
            if (st == RF_E_KEY_DELETED) rm_after_error(h, idx, st);
        }
        uint8_t hb[12];
        if (!st && !(st = rm_recv(c, &r, hb, 12))) {
            rows = rf_le32(hb);
            uint32_t arena = rf_le32(hb + 4), nlen = rf_le32(hb + 8);
            if ((uint64_t)rows * 28 + nlen + arena != r.left) st = rm_malformed(c, AG_OP_READ_VALUES, "sizes");
            else if (!(meta = malloc((size_t)rows * 8 + 8)) || !(names = malloc(nlen + 8)) ||
                     !(tokens = malloc(((size_t)rows + 1) * sizeof *tokens)))
                st = rm_kill(c, "no memory for %u value names", rows);
            if (!st && !(st = rm_recv(c, &r, NULL, (size_t)rows * 20)) && !(st = rm_recv(c, &r, meta, (size_t)rows * 8)) &&
                !(st = rm_recv(c, &r, names, nlen)) && !(st = rm_recv(c, &r, NULL, arena)))
                st = rm_end(c, &r);
            for (uint32_t i = 0; !st && i < rows; i++) {
                uint32_t no = rf_le32(meta + 4 * i), nl = rf_le32(meta + 4 * rows + 4 * i);
                size_t nb = nl & 0x7FFFFFFFu;
                if (no > nlen || nb > nlen - no) { st = rm_malformed(c, AG_OP_READ_VALUES, "a name"); break; }
                size_t nc = (nl & 0x80000000u) ? nb : nb / 2;
                uint16_t *w = rm_tls(RM_TLS_AUX, nc * 2 + 2);
                if (!w) { st = RF_E_NO_MEMORY; break; }
                for (size_t j = 0; j < nc; j++)
                    w[j] = (nl & 0x80000000u) ? names[no + j] : rf_le16(names + no + 2 * j);
                st = rm_value_intern(h, idx, w, nc, &tokens[i]);
            }
        }
        if (!st) st = list_keep(h, k, 1, tokens, NULL, rows);
        free(meta);
        free(names);
        free(tokens);
    }
    if (!st) st = list_out(h, out, NULL, cap, n_out);
    UNLOCK_RETURN(st);
}

typedef struct sec_arg { uint32_t si; } sec_arg;

static void build_get_security(rf_remote *c, uint32_t hd, const void *ctx)
{
    rm_begin(c);
    rm_put32(c, hd);
    rm_put32(c, ((const sec_arg *)ctx)->si);
}

/* GET_SECURITY: *sd points into c->rep. */
static rf_status get_security(rm_hive *h, uint32_t idx, uint32_t si, const uint8_t **sd, size_t *len, uint32_t *si_out)
{
    const uint8_t *p;
    size_t n;
    sec_arg a = { si };
    rf_status st = key_call(h, idx, AG_OP_GET_SECURITY, build_get_security, &a, &p, &n);
    if (st) return st;
    rm_rd r = { p, n, 0, 0 };
    uint32_t got = rm_rd32(&r), sl = rm_rd32(&r);
    const uint8_t *d = rm_rdn(&r, sl);
    uint32_t tl = rm_rd32(&r);
    rm_rdn(&r, tl);
    uint32_t present;
    if (r.bad || r.pos != r.n || rfi_sd_check(d, sl, &present))
        return rm_malformed(h->c, AG_OP_GET_SECURITY, "not a security descriptor");
    *sd = d;
    *len = sl;
    if (si_out) *si_out = got;
    return RF_OK;
}

static rf_status rm_key_security(rf_hive *base, rf_key k, const uint8_t **sd, size_t *len)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    uint32_t idx;
    const uint8_t *d;
    *sd = NULL;
    *len = 0;
    if (!st && !(st = rm_entry_of(h, k, &idx)) &&
        /* si 0: owner, group, DACL, and the SACL while the agent's token
         * has SeSecurityPrivilege enabled (what a hive file's descriptor
         * holds, as far as the serving process may read it) */
        !(st = get_security(h, idx, 0, &d, len, NULL))) {
        uint8_t *t = rm_tls(RM_TLS_DATA, *len);
        if (!t) st = RF_E_NO_MEMORY;
        else {
            memcpy(t, d, *len);
            *sd = t;
        }
    }
    UNLOCK_RETURN(st);
}

static rf_status rm_key_get_security(rf_hive *base, rf_key k, uint32_t si, void *buf, size_t cap, size_t *len_out,
                                     uint32_t *si_out)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    uint32_t idx;
    const uint8_t *d;
    if (!st && !(st = rm_entry_of(h, k, &idx)) && !(st = get_security(h, idx, si, &d, len_out, si_out))) {
        if (cap < *len_out) st = rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "the descriptor has %zu bytes", *len_out);
        else memcpy(buf, d, *len_out);
    }
    UNLOCK_RETURN(st);
}

/* ------------------------------------------------------------------------ */
/* Values                                                                    */
/* ------------------------------------------------------------------------ */

/* GET_VALUE, kept as the value cache: what value_find learnt serves the
 * value_info and value_read that follow, while no request came between. */
static rf_status get_value(rm_hive *h, uint32_t idx, const uint16_t *name, size_t n, rf_value *tok)
{
    const uint8_t *p;
    size_t len;
    name_arg a = { name, n, 0, 0, NULL, 0 };
    rf_status st = key_call(h, idx, AG_OP_GET_VALUE, build_handle_name, &a, &p, &len);
    if (st) return st;
    if (len < 8 || rf_le32(p + 4) != len - 8) return rm_malformed(h->c, AG_OP_GET_VALUE, "its length");
    if (h->vc_cap < len) {
        uint8_t *q = realloc(h->vc_data, len);
        if (!q) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
        h->vc_data = q;
        h->vc_cap = len;
    }
    h->vc_type = rf_le32(p);
    h->vc_len = len - 8;
    memcpy(h->vc_data, p + 8, h->vc_len);
    if ((st = rm_value_intern(h, idx, name, n, tok))) return st;
    h->vc_token = *tok;
    h->vc_seq = h->c->seq;
    return RF_OK;
}

static rf_status rm_value_find(rf_hive *base, rf_key k, const uint16_t *name, size_t nchars, rf_value *out)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    uint32_t idx;
    if (!st && !(st = rm_entry_of(h, k, &idx))) st = get_value(h, idx, name, nchars, out);
    UNLOCK_RETURN(st);
}

static rf_status cached_value(rm_hive *h, rf_value v, const uint16_t **name, size_t *n)
{
    uint32_t idx;
    rf_status st = rm_value_resolve(h, v, &idx, name, n);
    if (st) return st;
    *name = tls_copy16(*name, *n, RM_TLS_NAME);
    if (!*name) return RF_E_NO_MEMORY;
    if (h->vc_token == v && h->vc_seq == h->c->seq) return RF_OK;
    rf_value again;
    return get_value(h, idx, *name, *n, &again);
}

static rf_status rm_value_info(rf_hive *base, rf_value v, rf_value_info *out)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    const uint16_t *name;
    size_t n;
    memset(out, 0, sizeof *out);
    if (!st && !(st = cached_value(h, v, &name, &n))) {
        out->name.ptr = name;
        out->name.nbytes = (uint32_t)(n * 2);
        out->name.utf16 = 1;
        out->type = h->vc_type;
        out->data_len = (uint32_t)h->vc_len;
    }
    UNLOCK_RETURN(st);
}

static rf_status rm_value_read(rf_hive *base, rf_value v, void *buf, size_t cap, const uint8_t **data_out,
                               size_t *len_out)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    const uint16_t *name;
    size_t n;
    *data_out = NULL;
    *len_out = 0;
    if (!st && !(st = cached_value(h, v, &name, &n))) {
        /* into the caller's buffer when it holds the data (what a caller
         * that passes one expects), else per-thread scratch */
        uint8_t *t = buf && cap >= h->vc_len ? buf : rm_tls(RM_TLS_DATA, h->vc_len);
        if (!t) st = RF_E_NO_MEMORY;
        else {
            memcpy(t, h->vc_data, h->vc_len);
            *data_out = t;
            *len_out = h->vc_len;
        }
    }
    UNLOCK_RETURN(st);
}

/* ------------------------------------------------------------------------ */
/* Writes                                                                    */
/* ------------------------------------------------------------------------ */

static void build_set_value(rf_remote *c, uint32_t hd, const void *ctx)
{
    const name_arg *a = ctx;
    rm_begin(c);
    rm_put32(c, hd);
    rm_put32(c, a->u32a);
    rm_put16s(c, a->name, a->n);
    rm_put32(c, (uint32_t)a->len);
    rm_put(c, a->data, a->len);
}

static rf_status write_call(rm_hive *h, rf_key k, uint16_t op, build_fn build, const name_arg *a, uint32_t *idx_out)
{
    rf_remote *c = h->c;
    uint32_t idx;
    const uint8_t *p;
    size_t n;
    rf_status st = rm_entry_of(h, k, &idx);
    if (!st) st = key_call(h, idx, op, build, a, &p, &n);
    if (!st && n) st = rm_malformed(c, op, "a reply where none was due");
    if (idx_out) *idx_out = idx;
    return st;
}

static rf_status rm_value_set(rf_hive *base, rf_key k, const uint16_t *name, size_t nchars, uint32_t type,
                              const void *data, size_t len)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    name_arg a = { name, nchars, type, 0, data, len };
    if (!st) st = write_call(h, k, AG_OP_SET_VALUE, build_set_value, &a, NULL);
    UNLOCK_RETURN(st);
}

static rf_status rm_value_delete(rf_hive *base, rf_key k, const uint16_t *name, size_t nchars)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    name_arg a = { name, nchars, 0, 0, NULL, 0 };
    if (!st) st = write_call(h, k, AG_OP_DELETE_VALUE, build_handle_name, &a, NULL);
    UNLOCK_RETURN(st);
}

static rf_status rm_key_create(rf_hive *base, rf_key parent, const uint16_t *path, size_t nchars, uint32_t flags,
                               rf_key *out, uint32_t *disposition)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    uint32_t pidx = 0, idx;
    uint16_t *full;
    size_t fn;
    if (!st && parent) st = rm_entry_of(h, parent, &pidx);
    if (!st) st = rm_join(h, pidx, path, nchars, &full, &fn);
    const uint8_t *p;
    size_t n;
    if (!st) {
        rm_begin(c);
        rm_put32(c, h->root);
        rm_put32(c, h->view);
        rm_put32(c, h->access);
        rm_put32(c, AG_OPEN_CREATE | ((flags & RF_CREATE_VOLATILE) ? AG_OPEN_VOLATILE : 0));
        rm_put16s(c, full, fn);
        st = rm_call_buf(c, AG_OP_OPEN_KEY, &p, &n);
    }
    if (!st && (n != 8 || !rf_le32(p) || (rf_le32(p + 4) != 1 && rf_le32(p + 4) != 2)))
        st = rm_malformed(c, AG_OP_OPEN_KEY, "8 bytes expected");
    if (!st) {
        uint32_t hd = rf_le32(p), disp = rf_le32(p + 4);
        /* a cached entry of that path may hold a handle of a key deleted and
         * made again: the new handle replaces it */
        if (!(st = rm_entry_for(h, full, fn, &idx))) {
            rm_adopt(h, idx, hd);
            *out = rm_token(h, idx);
            *disposition = disp == 1 ? RF_CREATED_NEW : RF_OPENED_EXISTING;
        }
    }
    UNLOCK_RETURN(st);
}

static void build_delete_key(rf_remote *c, uint32_t hd, const void *ctx)
{
    const name_arg *a = ctx;
    rm_begin(c);
    rm_put32(c, hd);
    rm_put32(c, a->u32a);
    rm_put16s(c, a->name, a->n);
}

static rf_status rm_key_delete(rf_hive *base, rf_key parent, const uint16_t *path, size_t nchars, uint32_t flags)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    uint32_t pidx = 0;
    name_arg a = { path, nchars, (flags & RF_DELETE_TREE) ? AG_DELETE_TREE : 0, 0, NULL, 0 };
    if (!st) st = write_call(h, parent ? parent : rm_root_token(h), AG_OP_DELETE_KEY, build_delete_key, &a, &pidx);
    if (!st) {
        uint16_t *full;
        size_t fn;
        if (!(st = rm_join(h, pidx, path, nchars, &full, &fn))) rm_forget_subtree(h, full, fn);
    }
    UNLOCK_RETURN(st);
}

static rf_status rm_key_rename(rf_hive *base, rf_key k, const uint16_t *new_name, size_t nchars)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    uint32_t idx = 0;
    name_arg a = { new_name, nchars, 0, 0, NULL, 0 };
    if (!st && k == rm_root_token(h))
        st = rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "the root of a live hive cannot be renamed");
    if (!st) st = write_call(h, k, AG_OP_RENAME, build_handle_name, &a, &idx);
    if (!st) {
        /* the agent's handle follows the key to its new name, which the
         * entry no longer matches: the subtree's entries become tombstones */
        rm_entry *e = &h->e[idx];
        const uint16_t *old = tls_copy16(e->path, e->plen, RM_TLS_AUX);
        if (old) rm_forget_subtree(h, old, e->plen);
    }
    UNLOCK_RETURN(st);
}

static void build_set_security(rf_remote *c, uint32_t hd, const void *ctx)
{
    const name_arg *a = ctx;
    rm_begin(c);
    rm_put32(c, hd);
    rm_put32(c, a->u32a);
    rm_put(c, a->data, a->len);
}

static rf_status rm_key_set_security(rf_hive *base, rf_key k, uint32_t si, const void *sd, size_t len)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    name_arg a = { NULL, 0, si, 0, sd, len };
    if (!st) st = write_call(h, k, AG_OP_SET_SECURITY_SD, build_set_security, &a, NULL);
    UNLOCK_RETURN(st);
}

/* ------------------------------------------------------------------------ */
/* Snapshots: the agent runs the core's walk next to the registry            */
/* ------------------------------------------------------------------------ */

static void build_snapshot(rf_remote *c, uint32_t hd, const void *ctx)
{
    const name_arg *a = ctx;
    rm_begin(c);
    rm_put32(c, hd);
    rm_put32(c, a->u32a);
    rm_put32(c, a->u32b);
}

static rf_status rm_snapshot(rf_hive *base, rf_key k, uint32_t flags, uint32_t max_keys, rf_bytes *out)
{
    rm_hive *h = (rm_hive *)base;
    LOCKED(h);
    uint32_t idx;
    const uint8_t *p;
    size_t n, sz;
    name_arg a = { NULL, 0, flags, max_keys, NULL, 0 };
    if (!st) st = k ? rm_entry_of(h, k, &idx) : (idx = 0, RF_OK);
    if (!st) st = key_call(h, idx, AG_OP_SNAPSHOT, build_snapshot, &a, &p, &n);
    if (!st && (rf_snapshot_size(p, n, &sz) || sz != n)) st = rm_malformed(c, AG_OP_SNAPSHOT, "not a snapshot");
    if (!st) st = rfi_bytes_put(out, p, n);
    UNLOCK_RETURN(st);
}

/* ------------------------------------------------------------------------ */
/* The table and the constructor                                             */
/* ------------------------------------------------------------------------ */

static uint64_t rm_requests(rf_hive *base)
{
    rf_remote *c = ((rm_hive *)base)->c;
    rm_lock(&c->lock);
    uint64_t n = c->requests;
    rm_unlock(&c->lock);
    return n;
}

static const rf_backend_ops rm_ops = {
    .version = RF_BACKEND_OPS_VERSION,
    .hive_size = sizeof(rm_hive),
    .name = "remote",
    .close = rm_close,
    .get_info = rm_get_info,
    .root = rm_root,
    .key_child = rm_key_child,
    .key_name = rm_key_name,
    .key_class = rm_key_class,
    .key_parent = rm_key_parent,
    .key_info = rm_key_info,
    .key_subkeys = rm_key_subkeys,
    .key_values = rm_key_values,
    .key_security = rm_key_security,
    .value_find = rm_value_find,
    .value_info = rm_value_info,
    .value_read = rm_value_read,
    .read_values = rm_read_values,
    .mapping = rm_mapping,
    /* .scan, .cell, .deleted: a live registry has no cells (120) */
    .key_open = rm_key_open,
    /* version 2: .deleted_read, .slack: no cells either (120) */
    .value_set = rm_value_set,
    .value_delete = rm_value_delete,
    .key_create = rm_key_create,
    .key_delete = rm_key_delete,
    .key_rename = rm_key_rename,
    .key_get_security = rm_key_get_security,
    .key_set_security = rm_key_set_security,
    .snapshot = rm_snapshot,
    .watch_open = rm_watch_open,
    .watch_next = rm_watch_next,
    .watch_stop = rm_watch_stop,
    .watch_close = rm_watch_close,
    .requests = rm_requests,
    /* version 5 */
    .key_is_link = rm_key_is_link,
    .key_subkeys_hinted = rm_key_subkeys_hinted,
};

static rf_status remote_open(rf_remote *c, uint32_t root, uint32_t view, uint32_t access, rf_hive **out)
{
    if (!out) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "out is NULL");
    *out = NULL;
    if (!c) return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "the connection is NULL");
    if (view != RF_VIEW_NATIVE && view != RF_VIEW_64 && view != RF_VIEW_32)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "view 0x%x is not RF_VIEW_NATIVE/64/32", view);
    rm_hive *h = calloc(1, rm_ops.hive_size);
    if (!h) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a remote hive");
    h->c = c;
    h->root = root;
    h->view = view;
    h->access = access ? access : 0x20019u;   /* KEY_READ */
    rf_status st = rm_keys_init(h);
    if (!st) {
        /* the root must open: a bad root (6) or access (5) fails here, as
         * rf_live_open does */
        rm_lock(&c->lock);
        uint32_t hd;
        if (!(st = rm_alive(c))) st = rm_handle(h, 0, &hd);
        rm_unlock(&c->lock);
    }
    if (st) {
        rf_error e = *rf_last_error();
        rm_lock(&c->lock);
        rm_keys_free(h);
        rm_unlock(&c->lock);
        free(h);
        return rfi_fail(e.code, e.offset, e.native, "%s", e.message);
    }
    rm_conn_ref(c);
    h->base.ops = &rm_ops;
    rm_lock(&c->lock);
    h->sibling = c->hives;
    c->hives = h;
    rm_unlock(&c->lock);
    *out = &h->base;
    return RF_OK;
}

rf_status rf_remote_open(rf_remote *c, uint32_t root, uint32_t view, uint32_t access, rf_hive **out)
{
    if (!rfi_hooks_on()) return remote_open(c, root, view, access, out);
    rf_op_record r;
    rfi_rec_init(&r, RF_OP_HIVE_OPEN, NULL, 0);
    r.backend = "remote";
    r.count = root;
    if (rfi_hook_pre(&r)) {
        if (out) *out = NULL;
        return rfi_vetoed(&r);
    }
    rf_status st = remote_open(c, root, view, access, out);
    r.hive = st ? NULL : *out;
    return rfi_hook_post(&r, st);
}

rf_remote *rf_remote_of(rf_hive *h)
{
    rm_hive *r = rm_cast(h);
    return r ? r->c : NULL;
}

/* ------------------------------------------------------------------------ */
/* Requests the method table has no slot for (rf_remote_request)             */
/* ------------------------------------------------------------------------ */

typedef struct raw_arg { const void *payload; size_t len; size_t at; } raw_arg;

/* The key's handle goes `at` bytes into the payload: first for every op but
 * BENCH, whose layout puts the method before it (ag_ops.def). */
static void build_raw(rf_remote *c, uint32_t hd, const void *ctx)
{
    const raw_arg *a = ctx;
    size_t at = hd != RM_NONE && a->at <= a->len ? a->at : 0;
    rm_begin(c);
    if (at) rm_put(c, a->payload, at);
    if (hd != RM_NONE) rm_put32(c, hd);
    rm_put(c, (const uint8_t *)a->payload + at, a->len - at);
}

/* Whether op `op` changes the registry (or the agent's token): ag_ops.def's
 * `write` column, the one table the agent and Python's hooks use too. */
static int op_writes(uint16_t op)
{
    switch (op) {
#define AG_OP(num, NAME, name, write, req, rep) case num: return write;
#include "agent/ag_ops.def"
#undef AG_OP
    default: return 0;
    }
}

static rf_status remote_request(rf_hive *base, rf_key k, uint16_t op, const void *payload, size_t len,
                                rf_bytes *reply);

/* The hook point (RF_OP_REQUEST): a policy sees which agent op, on which
 * key, with the caller's payload, and a PRE veto keeps it from being sent. */
static RF_COLD rf_status remote_request_hooked(rf_hive *base, rf_key k, uint16_t op, const void *payload,
                                               size_t len, rf_bytes *reply)
{
    rf_op_record r;
    rfi_rec_init(&r, RF_OP_REQUEST, base, k);
    r.request_op = op;
    r.payload = payload;
    r.payload_len = payload ? len : 0;
    if (op_writes(op)) r.flags |= RF_OPREC_WRITE;
    if (rfi_hook_pre(&r)) return rfi_vetoed(&r);
    size_t before = reply ? reply->len : 0;
    rf_status st = remote_request(base, k, op, payload, len, reply);
    /* bytes: sent for a write (as rf_value_set's data), received for a read */
    if (st == RF_OK) r.bytes = (r.flags & RF_OPREC_WRITE) ? r.payload_len : reply ? reply->len - before : 0;
    return rfi_hook_post(&r, st);
}

rf_status rf_remote_request(rf_hive *base, rf_key k, uint16_t op, const void *payload, size_t len,
                            rf_bytes *reply)
{
    if (rfi_hooks_on()) return remote_request_hooked(base, k, op, payload, len, reply);
    return remote_request(base, k, op, payload, len, reply);
}

/* UNLOAD_HIVE (u32 root, str16 mount name) removed the mount key and its
 * subtree. The agent forgot its own handles there (it reopens them by path,
 * which then says 2); this backend's cached agent handles at and below the
 * mount are closed too, so that an open of the mount path sends OPEN_KEY
 * (answered 2) instead of checking a cached handle, and a Key of it reopens
 * by path and gets 2 as well — not 1018, as for a key deleted under it: an
 * unloaded hive's keys are not found, they were not deleted. Called after
 * the reply was copied out (closing sends CLOSE_KEY requests). */
static void forget_unloaded(rf_remote *c, const void *payload, size_t len)
{
    const uint8_t *b = payload;
    if (len < 8) return;
    uint32_t root = rf_le32(b), nbytes = rf_le32(b + 4);
    if (nbytes > len - 8 || nbytes % 2 || nbytes == 0) return;
    size_t nchars = nbytes / 2;
    uint16_t *name = malloc(nbytes);
    if (!name) return;
    memcpy(name, b + 8, nbytes);   /* aligned: the payload may not be */
    while (nchars && name[nchars - 1] == 0) nchars--;   /* a NUL the caller counted */
    for (rm_hive *g = c->hives; g; g = g->sibling)
        if (g->root == root) {
            rm_close_subtree_handles(g, name, nchars);   /* g and every sibling on that root */
            break;
        }
    free(name);
}

static rf_status remote_request(rf_hive *base, rf_key k, uint16_t op, const void *payload, size_t len,
                                rf_bytes *reply)
{
    rm_hive *h = rm_cast(base);
    if (!h) return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "not a remote hive");
    if (!reply || (len && !payload))
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "NULL payload or reply");
    /* Ops that own connection or cache state go through their rf_* call:
     * HELLO/QUIT frame the session, WATCH/UNWATCH feed rf_watch's queues,
     * READ_VALUES may park a reply, OPEN_KEY/CLOSE_KEY hand out handles the
     * key table does not know (or closes ones it does). */
    if (op == AG_OP_HELLO || op == AG_OP_QUIT || op == AG_OP_WATCH || op == AG_OP_UNWATCH ||
        op == AG_OP_READ_VALUES || op == AG_OP_OPEN_KEY || op == AG_OP_CLOSE_KEY)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                        "op %u has its own rf_* call; rf_remote_request refuses it", (unsigned)op);
    LOCKED(h);
    const uint8_t *p = NULL;
    size_t n = 0;
    raw_arg a = { payload, len, op == AG_OP_BENCH ? 4u : 0u };
    if (!st && k) {
        uint32_t idx;
        st = rm_entry_of(h, k, &idx);
        if (!st) st = key_call(h, idx, op, build_raw, &a, &p, &n);
    } else if (!st) {
        build_raw(c, RM_NONE, &a);
        st = rm_call_buf(c, op, &p, &n);
    }
    if (!st && n) st = rfi_bytes_put(reply, p, n);
    if (!st && op == AG_OP_UNLOAD_HIVE) forget_unloaded(c, payload, len);
    UNLOCK_RETURN(st);
}
