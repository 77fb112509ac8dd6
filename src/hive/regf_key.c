/*
 * regf_key.c — nk records, subkey index lists (lf, lh, li, ri) and lookups.
 *
 * Subkey lists: a key's list is either a leaf list (lf/lh: offset + hash
 * pairs; li: offsets) or an index root "ri" whose entries are leaf lists.
 * Windows never nests ri inside ri, so neither do we: that rule alone makes
 * cycles in index lists impossible to follow (an ri pointing at an ri or at
 * itself is reported as corrupt).
 */
#include "hive/regf_internal.h"


static rf_status key_token(const regf_hive *h, rf_key k, const uint8_t **nk, uint32_t *len)
{
    if (RF_UNLIKELY(k == 0 || k > UINT32_MAX))
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "0x%llx is not a key token",
                        (unsigned long long)k);
    return regf_nk(h, (uint32_t)k, nk, len);
}

static rf_status leaf_walk(const regf_hive *h, uint32_t list, const uint8_t *p, uint32_t len,
                           regf_entry_fn fn, void *ctx, uint32_t *seen)
{
    /* the signature read once: the stride and the hash read depend on it
     * (the file may change under us: regf_once16) */
    uint8_t kind = (uint8_t)(regf_once16(p) >> 8);
    int hashed = kind == 'f' || kind == 'h'; /* lf, lh: 8-byte entries; li: 4 */
    int lh = kind == 'h'; /* only lh stores a name hash; lf stores a 4-char hint */
    uint32_t stride = hashed ? 8 : 4, n = regf_once16(p + 2);
    if ((uint64_t)n * stride > len - 4)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(list), 0,
                        "%c%c at 0x%llx: %u entries do not fit in a %u-byte cell", p[0], p[1],
                        (unsigned long long)regf_file_off(list), n, len);
    *seen += n;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = p + 4 + (size_t)i * stride;
        rf_status st = fn(ctx, rf_le32(e), lh ? rf_le32(e + 4) : 0);
        if (st) return st;
    }
    return RF_OK;
}

static int is_leaf_sig(const uint8_t *p) { return (p[0] == 'l' && (p[1] == 'f' || p[1] == 'h' || p[1] == 'i')); }

static rf_status each_subkey(const regf_hive *h, uint32_t key_off, const uint8_t *nk,
                             regf_entry_fn fn, void *ctx, int keep_going)
{
    rf_status first = RF_OK; /* keep_going: the first bad leaf's error, returned at the end */
    uint32_t n_subkeys = regf_once32(nk + NK_N_SUBKEYS);
    if (n_subkeys == 0) return RF_OK;
    if (n_subkeys > h->opts.max_subkeys)
        return rfi_fail(RF_E_LIMIT, regf_file_off(key_off), 0,
                        "nk at 0x%llx: %u subkeys exceed max_subkeys %u",
                        (unsigned long long)regf_file_off(key_off), n_subkeys, h->opts.max_subkeys);
    uint32_t list = rf_le32(nk + NK_SUBKEYS), len, seen = 0;
    const uint8_t *p;
    rf_status st = regf_cell(h, list, "subkey list", &p, &len);
    if (st) return st;
    if (len < 4 || !(is_leaf_sig(p) || (p[0] == 'r' && p[1] == 'i')))
        return rfi_fail(RF_E_CORRUPT, regf_file_off(list), 0,
                        "subkey list at 0x%llx of nk at 0x%llx: no lf/lh/li/ri signature",
                        (unsigned long long)regf_file_off(list), (unsigned long long)regf_file_off(key_off));
    if (p[0] == 'r') {
        uint32_t n = regf_once16(p + 2);
        if ((uint64_t)n * 4 > len - 4)
            return rfi_fail(RF_E_CORRUPT, regf_file_off(list), 0,
                            "ri at 0x%llx: %u entries do not fit in a %u-byte cell",
                            (unsigned long long)regf_file_off(list), n, len);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t leaf = rf_le32(p + 4 + 4 * (size_t)i), llen;
            const uint8_t *lp;
            st = regf_cell(h, leaf, "subkey leaf list", &lp, &llen);
            if (!st && (llen < 4 || !is_leaf_sig(lp)))
                st = rfi_fail(RF_E_CORRUPT, regf_file_off(leaf), 0,
                              "ri at 0x%llx entry %u: 0x%llx is not an lf/lh/li list%s",
                              (unsigned long long)regf_file_off(list), i,
                              (unsigned long long)regf_file_off(leaf),
                              llen >= 2 && lp[0] == 'r' && lp[1] == 'i' ? " (nested ri: cycle guard)" : "");
            if (!st) st = leaf_walk(h, leaf, lp, llen, fn, ctx, &seen);
            if (st) {
                /* "found it" and out-of-memory end the walk whatever the mode */
                if (!keep_going || st == RF_E_NO_MORE_ITEMS || st == RF_E_NO_MEMORY) return st;
                if (!first) first = st;
                continue;
            }
            if (seen > n_subkeys) break;
        }
    } else if ((st = leaf_walk(h, list, p, len, fn, ctx, &seen)) != RF_OK) {
        return st;
    }
    if (first) return first; /* a leaf was lost: the count cannot match, say why instead */
    if (seen != n_subkeys)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(key_off), 0,
                        "nk at 0x%llx: subkey count %u but its lists hold %s%u entries",
                        (unsigned long long)regf_file_off(key_off), n_subkeys,
                        seen > n_subkeys ? "at least " : "", seen);
    return RF_OK;
}

rf_status regf_each_subkey(const regf_hive *h, uint32_t key_off, const uint8_t *nk,
                           regf_entry_fn fn, void *ctx)
{
    return each_subkey(h, key_off, nk, fn, ctx, 0);
}

rf_status regf_each_subkey_all(const regf_hive *h, uint32_t key_off, const uint8_t *nk,
                               regf_entry_fn fn, void *ctx)
{
    return each_subkey(h, key_off, nk, fn, ctx, 1);
}

/* A subkey entry is trusted only once it is an nk whose parent is this key:
 * that stops a corrupt list from grafting an unrelated subtree here. */
rf_status regf_check_child(const regf_hive *h, uint32_t parent, uint32_t child)
{
    const uint8_t *nk;
    uint32_t len;
    rf_status st = regf_nk(h, child, &nk, &len);
    if (st) return st;
    /* The root's parent field may name the root itself: without this, a list
     * holding the root would pass the check below and loop back to the top. */
    if (child == h->root)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(child), 0,
                        "nk at 0x%llx: the root key is listed as a subkey of the key at 0x%llx",
                        (unsigned long long)regf_file_off(child), (unsigned long long)regf_file_off(parent));
    uint32_t recorded = rf_le32(nk + NK_PARENT);
    if (recorded != parent)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(child), 0,
                        "nk at 0x%llx: listed under the key at 0x%llx but its parent field says 0x%llx",
                        (unsigned long long)regf_file_off(child), (unsigned long long)regf_file_off(parent),
                        (unsigned long long)regf_file_off(recorded));
    return RF_OK;
}

struct collect_ctx {
    const regf_hive *h;
    uint32_t parent;
    rf_key *out;
    size_t cap, n;
};

static rf_status collect_entry(void *vctx, uint32_t child, uint32_t hash)
{
    struct collect_ctx *c = vctx;
    rf_status st = regf_check_child(c->h, c->parent, child);
    if (st) return st;
    if (c->n < c->cap) c->out[c->n] = child;
    c->n++;
    return RF_OK;
}

rf_status regf_key_subkeys(rf_hive *base, rf_key k, rf_key *out, size_t cap, size_t *n_out)
{
    const regf_hive *h = (const regf_hive *)base;
    const uint8_t *nk;
    uint32_t len;
    *n_out = 0;
    rf_status st = key_token(h, k, &nk, &len);
    if (st) return st;
    uint32_t declared = rf_le32(nk + NK_N_SUBKEYS);
    if (declared > cap && declared <= h->opts.max_subkeys) { /* size query: no need to walk */
        *n_out = declared;
        return RF_E_MORE_DATA;
    }
    struct collect_ctx c = { h, (uint32_t)k, out, cap, 0 };
    if ((st = regf_each_subkey(h, (uint32_t)k, nk, collect_entry, &c)) != RF_OK) return st;
    *n_out = c.n;
    return c.n > cap ? RF_E_MORE_DATA : RF_OK;
}

int regf_name_equals(const uint8_t *stored, uint32_t nbytes, int utf16, const uint16_t *upper,
                     size_t nchars)
{
    if (!utf16) {
        if (nbytes != nchars) return 0;
        for (size_t i = 0; i < nchars; i++)
            if (rf_upcase(stored[i]) != upper[i]) return 0;
        return 1;
    }
    if (nbytes != 2 * nchars) return 0;
    for (size_t i = 0; i < nchars; i++)
        if (rf_upcase(rf_le16(stored + 2 * i)) != upper[i]) return 0;
    return 1;
}

struct find_ctx {
    const regf_hive *h;
    uint32_t parent;
    const uint16_t *upper;
    size_t nchars;
    uint32_t hash;
    uint32_t found;
};

static rf_status find_entry(void *vctx, uint32_t child, uint32_t hash)
{
    struct find_ctx *c = vctx;
    /* lh lists store the hash of the upcased name: skip most entries
     * without touching their nk. lf and li entries arrive with hash 0, and so
     * may a real lh hash now and then: then we simply compare the name. */
    if (hash != 0 && hash != c->hash) return RF_OK;
    const uint8_t *nk;
    uint32_t len, nlen;
    rf_status st = regf_nk_named(c->h, child, &nk, &len, &nlen);
    if (st) return st;
    if (!regf_name_equals(nk + NK_NAME, nlen, !(rf_le16(nk + NK_FLAGS) & NK_FLAG_COMP_NAME), c->upper,
                          c->nchars))
        return RF_OK;
    if ((st = regf_check_child(c->h, c->parent, child)) != RF_OK) return st;
    c->found = child;
    return RF_E_NO_MORE_ITEMS;
}

rf_status regf_key_child(rf_hive *base, rf_key parent, const uint16_t *name, size_t nchars, rf_key *out)
{
    const regf_hive *h = (const regf_hive *)base;
    const uint8_t *nk;
    uint32_t len;
    uint16_t upper[256];
    *out = 0;
    rf_status st = key_token(h, parent, &nk, &len);
    if (st) return st;
    if (nchars == 0 || nchars > 255)
        return rfi_fail(RF_E_BAD_PATHNAME, RF_NO_OFFSET, 0, "key name of %zu chars (1 to 255 allowed)", nchars);
    for (size_t i = 0; i < nchars; i++) upper[i] = rf_upcase(name[i]);
    struct find_ctx c = { h, (uint32_t)parent, upper, nchars, rf_lh_hash(upper, nchars), 0 };
    st = regf_each_subkey(h, (uint32_t)parent, nk, find_entry, &c);
    if (st == RF_E_NO_MORE_ITEMS) {
        *out = c.found;
        return RF_OK;
    }
    if (st) return st;
    return rfi_fail(RF_E_NOT_FOUND, RF_NO_OFFSET, 0, "subkey not found");
}

rf_status regf_key_name(rf_hive *base, rf_key k, rf_name *out)
{
    const regf_hive *h = (const regf_hive *)base;
    const uint8_t *nk;
    uint32_t len, nlen;
    if (RF_UNLIKELY(k == 0 || k > UINT32_MAX))
        return key_token(h, k, &nk, &len);
    rf_status st = regf_nk_named(h, (uint32_t)k, &nk, &len, &nlen);
    if (st) return st;
    out->ptr = nk + NK_NAME;
    out->nbytes = nlen;
    out->utf16 = !(rf_le16(nk + NK_FLAGS) & NK_FLAG_COMP_NAME);
    if (out->utf16 && (out->nbytes & 1))
        return rfi_fail(RF_E_CORRUPT, regf_file_off((uint32_t)k), 0,
                        "nk at 0x%llx: UTF-16 name has an odd length of %u bytes",
                        (unsigned long long)regf_file_off((uint32_t)k), out->nbytes);
    return RF_OK;
}

rf_status regf_key_class(rf_hive *base, rf_key k, rf_name *out)
{
    const regf_hive *h = (const regf_hive *)base;
    const uint8_t *nk, *p;
    uint32_t len, clen;
    rf_status st = key_token(h, k, &nk, &len);
    if (st) return st;
    out->ptr = "";
    out->nbytes = 0;
    out->utf16 = 1;
    uint32_t class_len = regf_once16(nk + NK_CLASS_LEN), off = rf_le32(nk + NK_CLASS);
    if (class_len == 0 || off == REGF_NONE) return RF_OK;
    if ((st = regf_cell(h, off, "class name", &p, &clen)) != RF_OK) return st;
    if (class_len > clen)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                        "class name at 0x%llx: class_len %u exceeds cell size %u",
                        (unsigned long long)regf_file_off(off), class_len, clen);
    if (class_len & 1) /* always UTF-16LE */
        return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                        "class name at 0x%llx: UTF-16 class_len %u is odd",
                        (unsigned long long)regf_file_off(off), class_len);
    out->ptr = p;
    out->nbytes = class_len;
    return RF_OK;
}

rf_status regf_key_parent(rf_hive *base, rf_key k, rf_key *out)
{
    const regf_hive *h = (const regf_hive *)base;
    const uint8_t *nk;
    uint32_t len;
    *out = 0;
    rf_status st = key_token(h, k, &nk, &len);
    if (st) return st;
    if ((uint32_t)k == h->root)
        return rfi_fail(RF_E_NOT_FOUND, RF_NO_OFFSET, 0, "the root key has no parent");
    uint32_t parent = rf_le32(nk + NK_PARENT);
    if ((st = regf_nk(h, parent, &nk, &len)) != RF_OK) return st;
    *out = parent;
    return RF_OK;
}

rf_status regf_key_info(rf_hive *base, rf_key k, rf_key_info *out)
{
    const regf_hive *h = (const regf_hive *)base;
    const uint8_t *nk;
    uint32_t len;
    rf_status st = key_token(h, k, &nk, &len);
    if (st) return st;
    /* From 1.5 on, the high bits of the max-name field carry flags. */
    uint32_t name_mask = h->minor >= 5 ? 0xFFFFu : 0xFFFFFFFFu;
    out->last_write = rf_le64(nk + NK_LAST_WRITE);
    out->n_subkeys = rf_le32(nk + NK_N_SUBKEYS);
    out->n_values = rf_le32(nk + NK_N_VALUES);
    out->max_name_len = rf_le32(nk + NK_MAX_NAME) & name_mask;
    out->max_class_len = rf_le32(nk + NK_MAX_CLASS);
    out->max_value_name_len = rf_le32(nk + NK_MAX_VNAME);
    out->max_value_data_len = rf_le32(nk + NK_MAX_VDATA);
    out->class_len = rf_le16(nk + NK_CLASS_LEN);
    out->flags = rf_le16(nk + NK_FLAGS);
    uint32_t sk = rf_le32(nk + NK_SECURITY);
    out->security_offset = sk == REGF_NONE ? RF_NO_OFFSET : regf_file_off(sk);
    return RF_OK;
}

rf_status regf_key_security(rf_hive *base, rf_key k, const uint8_t **sd, size_t *sd_len)
{
    const regf_hive *h = (const regf_hive *)base;
    const uint8_t *nk, *p;
    uint32_t len, slen;
    *sd = NULL;
    *sd_len = 0;
    rf_status st = key_token(h, k, &nk, &len);
    if (st) return st;
    uint32_t off = rf_le32(nk + NK_SECURITY);
    /* sk: "sk", reserved, flink, blink, refcount, descriptor size @0x10, bytes @0x14 */
    if ((st = regf_record(h, off, "sk", 0x14, &p, &slen)) != RF_OK) return st;
    uint32_t n = regf_once32(p + 0x10);
    if (n > slen - 0x14)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                        "sk at 0x%llx: descriptor size %u exceeds cell size %u",
                        (unsigned long long)regf_file_off(off), n, slen - 0x14);
    *sd = p + 0x14;
    *sd_len = n;
    return RF_OK;
}

/* ---- values of a key ---------------------------------------------------- */

/* The key's value list: an array of `*n` vk offsets (borrowed). */
rf_status regf_value_list(const regf_hive *h, rf_key k, const uint8_t **list, uint32_t *n)
{
    const uint8_t *nk;
    uint32_t len, llen;
    *list = NULL;
    *n = 0;
    rf_status st = key_token(h, k, &nk, &len);
    if (st) return st;
    uint32_t count = regf_once32(nk + NK_N_VALUES), off = rf_le32(nk + NK_VALUES);
    if (count == 0) return RF_OK;
    if (count > h->opts.max_values)
        return rfi_fail(RF_E_LIMIT, regf_file_off((uint32_t)k), 0,
                        "nk at 0x%llx: %u values exceed max_values %u",
                        (unsigned long long)regf_file_off((uint32_t)k), count, h->opts.max_values);
    if ((st = regf_cell(h, off, "value list", list, &llen)) != RF_OK) return st;
    if ((uint64_t)count * 4 > llen)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                        "value list at 0x%llx: %u values do not fit in a %u-byte cell",
                        (unsigned long long)regf_file_off(off), count, llen);
    *n = count;
    return RF_OK;
}

rf_status regf_key_values(rf_hive *base, rf_key k, rf_value *out, size_t cap, size_t *n_out)
{
    const regf_hive *h = (const regf_hive *)base;
    const uint8_t *list, *vk;
    uint32_t n, len;
    *n_out = 0;
    rf_status st = regf_value_list(h, k, &list, &n);
    if (st) return st;
    *n_out = n;
    if (n > cap) return RF_E_MORE_DATA;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t off = rf_le32(list + 4 * (size_t)i);
        if ((st = regf_record(h, off, "vk", VK_NAME, &vk, &len)) != RF_OK) return st;
        out[i] = off;
    }
    return RF_OK;
}

rf_status regf_value_find(rf_hive *base, rf_key k, const uint16_t *name, size_t nchars, rf_value *out)
{
    const regf_hive *h = (const regf_hive *)base;
    const uint8_t *list, *vk;
    uint32_t n, len;
    uint16_t small[256], *upper = small;
    *out = 0;
    if (nchars > 16383)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "value name of %zu chars (16383 allowed)", nchars);
    rf_status st = regf_value_list(h, k, &list, &n);
    if (st) return st;
    uint16_t big[16383];
    if (nchars > 256) upper = big;
    for (size_t i = 0; i < nchars; i++) upper[i] = rf_upcase(name[i]);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t off = rf_le32(list + 4 * (size_t)i);
        if ((st = regf_record(h, off, "vk", VK_NAME, &vk, &len)) != RF_OK) return st;
        uint32_t name_len = regf_once16(vk + VK_NAME_LEN);
        if (name_len > len - VK_NAME)
            return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                            "vk at 0x%llx: name_len %u exceeds cell size %u",
                            (unsigned long long)regf_file_off(off), name_len, len - VK_NAME);
        if (regf_name_equals(vk + VK_NAME, name_len, !(rf_le16(vk + VK_FLAGS) & VK_FLAG_COMP_NAME),
                             upper, nchars)) {
            *out = off;
            return RF_OK;
        }
    }
    return rfi_fail(RF_E_NOT_FOUND, RF_NO_OFFSET, 0, "value not found");
}
