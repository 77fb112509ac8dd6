/*
 * regf_batch.c — bulk reads for the regf backend: rf_read_values (many values
 * of one key, into columns) and rf_hive_scan (a whole subtree, one pass).
 *
 * Both fill caller-owned columns and copy nothing that sits contiguously in
 * the mapping: a row's data is an offset into the file. Only big-data (db)
 * values, which are split across segments, are assembled into the batch
 * arena (read_values) or left for the caller to assemble (scan).
 */
#define _POSIX_C_SOURCE 200809L /* sigsetjmp (regf_guard.h) under -std=c11 */
#include <stdlib.h>
#include "hive/regf_internal.h"
#include "hive/regf_guard.h"

rf_status regf_mapping(rf_hive *base, const uint8_t **out, size_t *len)
{
    const regf_hive *h = (const regf_hive *)base;
    *out = h->map;
    *len = h->size;
    return RF_OK;
}

/* ---- rf_read_values ------------------------------------------------------ */

static int type_allowed(uint32_t t, const uint32_t *types, size_t n_types)
{
    if (!types) return 1;
    for (size_t i = 0; i < n_types; i++)
        if (types[i] == t) return 1;
    return 0;
}

typedef struct batch_run {
    const regf_hive *h;
    rf_batch       *b;
    const uint32_t *types;
    size_t          n_types;
    uint32_t        flags;
    size_t          arena_need;   /* bytes the arena lacked */
} batch_run;

static void fill_row(batch_run *r, size_t i, uint32_t voff, int with_name)
{
    const regf_hive *h = r->h;
    rf_batch *b = r->b;
    const uint8_t *vk;
    uint32_t len;
    regf_data_loc d;
    b->type[i] = 0;
    b->offset[i] = 0;
    b->length[i] = 0;
    if (b->token) b->token[i] = voff;
    /* no name: the vk could not be read (as the NT backend's error rows) */
    if (with_name && b->name) { b->name[i].ptr = NULL; b->name[i].nbytes = 0; b->name[i].utf16 = 0; }
    uint32_t nlen;
    rf_status st = regf_vk_named(h, voff, &vk, &len, &nlen);
    if (st) {
        b->status[i] = st;
        return;
    }
    int utf16 = !(rf_le16(vk + VK_FLAGS) & VK_FLAG_COMP_NAME);
    if (utf16 && (nlen & 1))
        st = regf_odd_name_fail(voff, "vk", nlen);
    if (!st) st = regf_locate_fast(h, voff, vk, &d);
    if (with_name && b->name) {
        /* whole UTF-16 units (an odd byte dropped, as the scan does) */
        b->name[i].ptr = vk + VK_NAME;
        b->name[i].nbytes = utf16 ? nlen & ~1u : nlen;
        b->name[i].utf16 = utf16;
    }
    if (st) {
        /* the vk was read: its name, type and data length stay next to the
         * status; only the data is lost (a tolerant Key.values() hands out
         * such a value, whose data raises) */
        b->status[i] = st;
        b->type[i] = rf_le32(vk + VK_TYPE);
        b->length[i] = regf_once32(vk + VK_DATA_LEN) & ~VK_DATA_INLINE;
        return;
    }
    uint32_t t = rf_le32(vk + VK_TYPE);
    if (!type_allowed(t, r->types, r->n_types)) {
        b->status[i] = RF_E_INVALID_DATA;
        b->type[i] = t;
        return;
    }
    b->type[i] = t;
    b->length[i] = d.len;
    int to_arena = (d.flags & RF_VALUE_BIG_DATA) || (r->flags & RF_BATCH_COPY);
    if (!to_arena) {
        b->offset[i] = (uint64_t)(d.ptr - h->map);
        b->status[i] = RF_OK;
        return;
    }
    /* A healthy hive never shares data cells between values, so what one
     * call copies fits in the hbins. More means a list naming one value again
     * and again, or values sharing segments (damage): an arena the file does
     * not bound (a 0.9 MB hive asked for 3.7 GiB), refused row by row, the
     * same rows on every pass. */
    if ((uint64_t)b->arena_used + r->arena_need + d.len > h->bins_len) {
        b->status[i] = rfi_fail(RF_E_CORRUPT, regf_file_off(voff), 0,
                                "vk at 0x%llx: the data of the values read so far and its %u bytes add up to "
                                "more than the hive's 0x%llx bytes of hbins: values listed again or sharing "
                                "data cells (damage)", (unsigned long long)regf_file_off(voff), d.len,
                                (unsigned long long)h->bins_len);
        return;
    }
    if (!b->arena || b->arena_cap - b->arena_used < d.len) {
        b->status[i] = RF_E_MORE_DATA;
        r->arena_need += d.len;
        return;
    }
    uint8_t *dst = b->arena + b->arena_used;
    st = (d.flags & RF_VALUE_BIG_DATA) ? regf_read_big(h, &d, dst) : (memcpy(dst, d.ptr, d.len), RF_OK);
    if (st) {
        b->status[i] = st;
        return;
    }
    b->offset[i] = RF_BATCH_IN_ARENA | b->arena_used;
    b->arena_used += d.len;
    b->status[i] = RF_OK;
}

/* Upcases a requested name into `up`; returns its length in UTF-16 units,
 * or -1 when it is longer than any value name can be. */
static long upcase_request(const rf_name *n, uint16_t *up)
{
    const uint8_t *p = n->ptr;
    size_t chars = n->utf16 ? n->nbytes / 2 : n->nbytes;
    if (chars > 16383) return -1;
    for (size_t i = 0; i < chars; i++) up[i] = rf_upcase(n->utf16 ? rf_le16(p + 2 * i) : p[i]);
    return (long)chars;
}

static int vk_name_matches(const regf_hive *h, uint32_t voff, const uint16_t *up, size_t chars)
{
    const uint8_t *vk;
    uint32_t len, nlen;
    if (regf_vk_named(h, voff, &vk, &len, &nlen)) return 0;
    return regf_name_equals(vk + VK_NAME, nlen, !(rf_le16(vk + VK_FLAGS) & VK_FLAG_COMP_NAME), up, chars);
}

/* What read_values allocates: freed by its caller, after the guard, so that
 * a fault on a vanished page (regf_guard.h) leaks nothing. */
typedef struct read_alloc { uint32_t *table; uint16_t *up; } read_alloc;

static rf_status read_values_body(const regf_hive *h, rf_key k, const rf_name *names, size_t n,
                                  const uint32_t *types, size_t n_types, uint32_t flags, rf_batch *b,
                                  read_alloc *mem)
{
    const uint8_t *list;
    uint32_t count;
    rf_status st = regf_value_list(h, k, &list, &count);
    b->n = 0;
    b->arena_used = 0;
    if (st) return st;
    size_t rows = names ? n : count;
    b->n = rows;
    if (rows > b->cap) return RF_E_MORE_DATA;
    batch_run r = { h, b, types, n_types, flags, 0 };

    if (!names) {
        for (uint32_t i = 0; i < count; i++) fill_row(&r, i, rf_le32(list + 4 * (size_t)i), 1);
    } else {
        /* Many names against many values: index the value list by folded-name
         * hash (open addressing) so 10,000 names cost 10,000 probes, not 10^8
         * compares. The table is the one allocation of the call. */
        size_t slots = 16;
        while (slots < 2 * (size_t)count) slots <<= 1;
        uint32_t *table = mem->table = count > 8 ? calloc(slots, sizeof(uint32_t)) : NULL;
        uint16_t *up = mem->up = malloc(16383 * sizeof(uint16_t));
        if (!up || (count > 8 && !table))
            return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a batch lookup table");
        if (table) {
            for (uint32_t i = 0; i < count; i++) {
                uint32_t voff = rf_le32(list + 4 * (size_t)i), len, nlen;
                const uint8_t *vk;
                if (regf_vk_named(h, voff, &vk, &len, &nlen)) continue; /* found later as a row error */
                uint32_t hv = regf_name_hash(vk + VK_NAME, nlen, !(rf_le16(vk + VK_FLAGS) & VK_FLAG_COMP_NAME));
                size_t s = hv & (slots - 1);
                while (table[s]) s = (s + 1) & (slots - 1);
                table[s] = voff; /* 0 is never a cell offset: it marks empty slots */
            }
        }
        for (size_t i = 0; i < n; i++) {
            long chars = upcase_request(&names[i], up);
            uint32_t found = 0;
            if (chars >= 0 && table) {
                uint32_t hv = regf_upper_hash(up, (size_t)chars);
                for (size_t s = hv & (slots - 1); table[s]; s = (s + 1) & (slots - 1))
                    if (vk_name_matches(h, table[s], up, (size_t)chars)) { found = table[s]; break; }
            } else if (chars >= 0) {
                for (uint32_t j = 0; j < count && !found; j++) {
                    uint32_t voff = rf_le32(list + 4 * (size_t)j);
                    if (vk_name_matches(h, voff, up, (size_t)chars)) found = voff;
                }
            }
            if (found) {
                fill_row(&r, i, found, 0);
            } else {
                b->status[i] = chars < 0 ? RF_E_INVALID_PARAMETER : RF_E_NOT_FOUND;
                if (b->token) b->token[i] = 0;
                b->type[i] = 0;
                b->offset[i] = 0;
                b->length[i] = 0;
            }
        }
    }
    if (r.arena_need) {
        b->arena_used += r.arena_need;
        return RF_E_MORE_DATA;
    }
    return RF_OK;
}

static rf_status read_values_guarded(const regf_hive *h, rf_key k, const rf_name *names, size_t n,
                                     const uint32_t *types, size_t n_types, uint32_t flags, rf_batch *b,
                                     read_alloc *mem)
{
    rf_status st = RF_OK;
    REGF_GUARD_BEGIN(h->map, h->size)
        st = read_values_body(h, k, names, n, types, n_types, flags, b, mem);
    REGF_GUARD_END(st)
    return st;
}

rf_status regf_read_values(rf_hive *base, rf_key k, const rf_name *names, size_t n,
                           const uint32_t *types, size_t n_types, uint32_t flags, rf_batch *b)
{
    read_alloc mem = { NULL, NULL };
    rf_status st = read_values_guarded((const regf_hive *)base, k, names, n, types, n_types, flags, b, &mem);
    free(mem.table);
    free(mem.up);
    return st;
}

/* ---- rf_hive_scan -------------------------------------------------------- */

/* A key as its subkey list gave it: its nk was checked there (cell, signature,
 * name length within the cell, parent field), so popping it does not check it
 * again. If the file changes in between, the pointer and the lengths still
 * stay inside that cell of the mapping: a wrong answer at worst, never a read
 * outside it. */
typedef struct kid { uint32_t key; uint32_t nlen; const uint8_t *nk; } kid;
typedef struct frame { kid k; uint32_t depth; int32_t parent_row; } frame;

/* The name offsets rf_scan leaves to its callers (regfast.h). */
_Static_assert(RF_SCAN_KEY_NAME_AT(0) == REGF_BASE_BLOCK + 4 + NK_NAME, "nk name offset");
_Static_assert(RF_SCAN_VALUE_NAME_AT(0) == REGF_BASE_BLOCK + 4 + VK_NAME, "vk name offset");

/* "A registry tree can be 512 levels deep" (Registry Element Size Limits). */
#define WINDOWS_MAX_DEPTH 512u

typedef struct scan_run {
    const regf_hive *h;
    rf_scan   *s;
    uint64_t  *visited;        /* 1 bit per 8-byte slot of the hbins */
    frame     *stack;
    size_t     top, stack_cap;
    kid       *kids;           /* children of the key being expanded */
    size_t     n_kids, kids_cap;
    uint32_t   parent;         /* key whose children are being collected */
    uint32_t   base_depth;     /* the start key's depth below the root */
    uint32_t   prev;           /* its last child that was in order... */
    const uint8_t *prev_nk;    /* ...and its nk (NULL: none yet)... */
    uint32_t   prev_nlen;      /* ...and its name length as checked (not read again) */
    int        skip;           /* RF_SCAN_SKIP_ERRORS: a bad entry does not end the list */
    rf_status  kid_err;        /* with skip: the first bad entry of the current list */
} scan_run;

/* Grows a typed array to hold `need` elements; evaluates to 0 on OOM. */
#define GROW(arr, cap, need) grow_to((void *)&(arr), &(cap), (need), sizeof *(arr))
static int grow_to(void *slot, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 1;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *old;
    memcpy(&old, slot, sizeof old); /* slot is a T**: read and write it as bytes */
    void *q = realloc(old, nc * elem);
    if (!q) return 0;
    memcpy(slot, &q, sizeof q);
    *cap = nc;
    return 1;
}

static rf_status collect_kid(void *ctx, uint32_t child, uint32_t hash, uint32_t leaf)
{
    scan_run *r = ctx;
    (void)hash;
    const uint8_t *nk;
    uint32_t nlen;
    rf_status st = regf_child_nk(r->h, r->parent, child, &nk, &nlen);
    if (st) {
        /* Skipping errors: keep the siblings listed after a bad entry (an nk
         * in a damaged region, say); the key's status records the first. */
        if (!r->skip) return st; /* regf_scan adds the way out (regf_with_fix) */
        if (!r->kid_err) r->kid_err = st;
        return RF_OK;
    }
    /* The list's order, checked in this pass as Windows checks it (each
     * entry after the last one in order): a key listed twice or out of order
     * is damage, reported like any other. One name compare per entry, on
     * two nk records this pass has just read. */
    if (r->prev_nk && !regf_sorted_after(r->prev_nk, r->prev_nlen, nk, nlen)) {
        st = regf_order_fail(r->parent, leaf, r->prev, r->prev_nk, r->prev_nlen, child, nk, nlen);
        if (!r->skip) return st;
        if (!r->kid_err) r->kid_err = st;
    } else {
        r->prev = child;
        r->prev_nk = nk;
        r->prev_nlen = nlen;
    }
    uint64_t bit = child >> 3;
    if ((r->visited[bit >> 6] >> (bit & 63)) & 1) return RF_OK; /* listed twice: read once */
    r->visited[bit >> 6] |= (uint64_t)1 << (bit & 63);
    if (!GROW(r->kids, r->kids_cap, r->n_kids + 1))
        return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the scan");
    r->kids[r->n_kids++] = (kid){ child, nlen, nk };
    return RF_OK;
}

static rf_status scan_values(scan_run *r, uint32_t key, const uint8_t *key_nk, size_t key_row)
{
    const regf_hive *h = r->h;
    rf_scan *s = r->s;
    const uint8_t *list, *vk;
    uint32_t count, len;
    int skip = (s->flags & (RF_SCAN_SKIP_ERRORS | RF_SCAN_SKIP_VALUE_ERRORS)) != 0;
    rf_status st = regf_value_list_nk(h, key, key_nk, &list, &count);
    if (st) return st;
    if (s->n_values + count > s->value_cap) return RF_E_MORE_DATA;
    for (uint32_t i = 0; i < count; i++) {
        size_t row = s->n_values++;
        uint32_t voff = rf_le32(list + 4 * (size_t)i);
        regf_data_loc d;
        uint32_t nlen, utf16 = 0;
        s->value_key[row] = (uint32_t)key_row;
        s->value_token[row] = voff;
        st = regf_vk_named(h, voff, &vk, &len, &nlen);
        int have_vk = !st;      /* the vk and its name's length checked: only its data may fail */
        if (!st) st = regf_locate_fast(h, voff, vk, &d);
        if (have_vk) utf16 = !(rf_le16(vk + VK_FLAGS) & VK_FLAG_COMP_NAME);
        if (!st && utf16 && (nlen & 1))
            st = regf_odd_name_fail(voff, "vk", nlen);
        if (!st && !(d.flags & RF_VALUE_BIG_DATA) && (uint64_t)(d.ptr - h->map) > UINT32_MAX)
            /* only in a tolerant open of a file over 4 GiB (its hbins walked
             * past the 32-bit size the base block can declare) */
            st = rfi_fail(RF_E_LIMIT, regf_file_off(voff), 0,
                          "vk at 0x%llx: its data lies at file offset 0x%llx, past the 4 GiB a scan "
                          "column holds; read it with rf_value_read",
                          (unsigned long long)regf_file_off(voff), (unsigned long long)(d.ptr - h->map));
        if (st) {
            if (!skip) return st;
            s->value_status[row] = st;
            /* a value whose vk was read keeps its name (whole UTF-16 units:
             * an odd byte dropped, as data's is) and type next to the status:
             * only its data is lost (hivex too names such a value) */
            s->value_name_len[row] = !have_vk ? 0 : utf16 ? ((nlen & ~1u) | RF_NAME_UTF16_BIT) : nlen;
            s->value_type[row] = have_vk ? rf_le32(vk + VK_TYPE) : 0;
            s->value_offset[row] = 0;
            s->value_length[row] = 0;
            continue;
        }
        s->value_name_len[row] = nlen | (utf16 ? RF_NAME_UTF16_BIT : 0);
        s->value_type[row] = rf_le32(vk + VK_TYPE);
        s->value_length[row] = d.len;
        if (d.flags & RF_VALUE_BIG_DATA) {
            s->value_offset[row] = 0;
            s->value_status[row] = RF_E_MORE_DATA;
        } else {
            s->value_offset[row] = (uint32_t)(d.ptr - h->map); /* < 4 GiB: checked above */
            s->value_status[row] = RF_OK;
        }
    }
    if (s->key_n_values) s->key_n_values[key_row] = count;
    return RF_OK;
}

static rf_status scan_loop(scan_run *r)
{
    const regf_hive *h = r->h;
    rf_scan *s = r->s;
    int skip = (s->flags & RF_SCAN_SKIP_ERRORS) != 0;
    int skip_values = skip || (s->flags & RF_SCAN_SKIP_VALUE_ERRORS);
    while (r->top) {
        frame f = r->stack[--r->top];
        const uint8_t *nk = f.k.nk; /* checked when it was collected (see kid) */
        uint32_t nlen = f.k.nlen;
        rf_status st;
        if (s->n_keys >= s->key_cap) return RF_E_MORE_DATA;
        size_t row = s->n_keys++;
        s->key_token[row] = f.k.key;
        s->key_parent[row] = f.parent_row;
        s->key_last_write[row] = rf_le64(nk + NK_LAST_WRITE);
        if (s->key_depth) s->key_depth[row] = (uint16_t)f.depth; /* <= 512: see too_deep */
        if (s->key_n_values) s->key_n_values[row] = 0;
        s->key_name_len[row] = nlen | ((rf_le16(nk + NK_FLAGS) & NK_FLAG_COMP_NAME) ? 0 : RF_NAME_UTF16_BIT);
        s->key_status[row] = RF_OK;
        if ((s->key_name_len[row] & RF_NAME_UTF16_BIT) && (nlen & 1)) {
            st = regf_odd_name_fail(f.k.key, "nk", nlen);
            if (!skip) return st;
            s->key_status[row] = st;
            /* its whole units, the odd byte dropped (as value data's is), next
             * to its status: "" would give it the root's path when a root
             * child, and its subkeys paths under the root. A name of one byte
             * has no whole unit: that byte, read as Latin-1, is its name. */
            s->key_name_len[row] = nlen == 1 ? 1 : (nlen - 1) | RF_NAME_UTF16_BIT;
        }

        if (s->flags & RF_SCAN_VALUES) {
            st = scan_values(r, f.k.key, nk, row);
            if (st == RF_E_MORE_DATA || st == RF_E_NO_MEMORY || (st && !skip_values)) return st;
            if (st) s->key_status[row] = st;
        }
        r->n_kids = 0;
        r->parent = f.k.key;
        r->prev = 0;
        r->prev_nk = NULL;
        r->kid_err = RF_OK;
        st = skip ? regf_each_subkey_all(h, f.k.key, nk, collect_kid, r)
                  : regf_each_subkey(h, f.k.key, nk, collect_kid, r);
        if (!st) st = r->kid_err;
        if (st == RF_E_NO_MEMORY || (st && !skip)) return st;
        if (st) {
            s->key_status[row] = st; /* children collected before the damage are kept */
        }
        int too_deep = r->base_depth + f.depth + 1 > WINDOWS_MAX_DEPTH;
        if (r->n_kids && (too_deep || f.depth + 1 > h->opts.max_depth)) {
            /* Windows refuses key paths deeper than 512 levels below the root:
             * past that the hive is damaged, so it is corruption at this nk
             * (winerror 1015); a smaller max_depth (counted from the scan's
             * start) is the caller's own limit (RF_E_LIMIT). Skipping drops
             * only the levels below; the key's status says so. */
            if (too_deep)
                st = rfi_fail(RF_E_CORRUPT, regf_file_off(f.k.key), 0,
                              "nk at 0x%llx: subkeys deeper than %u levels (Windows' limit)",
                              (unsigned long long)regf_file_off(f.k.key), WINDOWS_MAX_DEPTH);
            else
                st = rfi_fail(RF_E_LIMIT, regf_file_off(f.k.key), 0,
                              "nk at 0x%llx: subkeys deeper than max_depth %u",
                              (unsigned long long)regf_file_off(f.k.key), h->opts.max_depth);
            if (!skip)
                return st;
            s->key_status[row] = st;
            continue;
        }
        if (!GROW(r->stack, r->stack_cap, r->top + r->n_kids))
            return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the scan");
        for (size_t i = r->n_kids; i-- > 0;) /* reversed: children pop in stored order */
            r->stack[r->top++] = (frame){ r->kids[i], f.depth + 1, (int32_t)row };
        if (s->progress && (s->n_keys & 4095) == 0) {
            /* the caller's code: a fault in there is not ours to catch */
            regf_guard *outer = regf_guard_suspend();
            /* the key count is known once every hbin is checked (else 0: unknown) */
            int stop = s->progress(s->progress_ctx, s->n_keys, regf_all_checked(h) ? h->info.nk_cells : 0);
            regf_guard_resume(outer);
            if (stop) return stop;
        }
    }
    return RF_OK;
}

/* How many levels below the root key `k` is (at most one past Windows'
 * limit; 0 when the parent chain is damaged: the scan still checks every
 * level it reads). */
static uint32_t depth_below_root(const regf_hive *h, uint32_t k)
{
    uint32_t d = 0;
    while (k != h->root && d <= WINDOWS_MAX_DEPTH) {
        const uint8_t *nk;
        uint32_t len;
        if (regf_nk(h, k, &nk, &len) != RF_OK)
            return 0;
        k = regf_parent_of(h, k, nk);
        d++;
    }
    return d;
}

static rf_status scan_body(scan_run *r, rf_key start)
{
    const regf_hive *h = r->h;
    const uint8_t *nk;
    uint32_t len, nlen;
    rf_status st = regf_nk_named(h, (uint32_t)start, &nk, &len, &nlen);
    if (st) return st;
    r->base_depth = depth_below_root(h, (uint32_t)start);
    r->visited = calloc((size_t)(h->bins_len / 512) + 1, sizeof(uint64_t));
    if (!r->visited || !GROW(r->stack, r->stack_cap, 64))
        return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the scan");
    uint64_t bit = start >> 3;
    r->visited[bit >> 6] |= (uint64_t)1 << (bit & 63);
    r->stack[r->top++] = (frame){ { (uint32_t)start, nlen, nk }, 0, -1 };
    return scan_loop(r);
}

/* The scan's allocations live in *r, which belongs to the caller: after a
 * fault on a vanished page (regf_guard.h) they are freed all the same. */
static rf_status scan_guarded(scan_run *r, rf_key start)
{
    rf_status st = RF_OK;
    REGF_GUARD_BEGIN(r->h->map, r->h->size)
        st = scan_body(r, start);
    REGF_GUARD_END(st)
    return st;
}

rf_status regf_scan(rf_hive *base, rf_key start, rf_scan *s)
{
    const regf_hive *h = (const regf_hive *)base;
    scan_run r;
    memset(&r, 0, sizeof r);
    r.h = h;
    r.s = s;
    r.skip = (s->flags & RF_SCAN_SKIP_ERRORS) != 0;
    s->n_keys = 0;
    s->n_values = 0;
    if (start == 0) start = h->root;
    if (start > UINT32_MAX)
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "0x%llx is not a key token",
                        (unsigned long long)start);
    rf_status st = scan_guarded(&r, start);
    free(r.visited);
    free(r.stack);
    free(r.kids);
    /* a strict scan stopped at damage: say how to read past it (a subkey
     * entry's error has said it already; a value's, a depth's have not) */
    return r.skip ? st : regf_with_fix(h, st, 1);
}
