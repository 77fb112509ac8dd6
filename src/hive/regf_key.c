/*
 * regf_key.c — nk records, subkey index lists (lf, lh, li, ri) and lookups.
 *
 * Subkey lists: a key's list is either a leaf list (lf/lh: offset + hash
 * pairs; li: offsets) or an index root "ri" whose entries are leaf lists.
 * Windows never nests ri inside ri, so neither do we: that rule alone makes
 * cycles in index lists impossible to follow (an ri pointing at an ri or at
 * itself is reported as corrupt).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hive/regf_internal.h"
#include "hive/regf_guard.h"


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
        rf_status st = fn(ctx, rf_le32(e), lh ? rf_le32(e + 4) : 0, list);
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
    /* Each subkey is an nk cell of its own (0x50 bytes at least): a count
     * the hbins cannot hold is damage at this nk, not the caller's limit. */
    if (n_subkeys > h->bins_len / REGF_NK_CELL_MIN)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(key_off), 0,
                        "nk at 0x%llx: %u subkeys cannot fit in the hive's 0x%llx bytes of hbins",
                        (unsigned long long)regf_file_off(key_off), n_subkeys,
                        (unsigned long long)h->bins_len);
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
                        "nk at 0x%llx: subkey count %u but its lists hold %s%u entries (list at 0x%llx)",
                        (unsigned long long)regf_file_off(key_off), n_subkeys,
                        seen > n_subkeys ? "at least " : "", seen, (unsigned long long)regf_file_off(list));
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

/* The key whose list a tolerant open's check found first holding `child`,
 * whose parent field names no key (h->relisted, sorted by child); 0: none. */
uint32_t regf_relisted_parent(const regf_hive *h, uint32_t child)
{
    size_t lo = 0, hi = h->n_relisted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t c = h->relisted[2 * mid];
        if (c == child) return h->relisted[2 * mid + 1];
        if (c < child) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

/* A subkey entry is trusted only once it is an nk whose parent is this key:
 * that stops a corrupt list from grafting an unrelated subtree here. */
rf_status regf_check_child(const regf_hive *h, uint32_t parent, uint32_t child)
{
    const uint8_t *nk;
    uint32_t name_len;
    return regf_child_nk(h, parent, child, &nk, &name_len);
}

rf_status regf_child_nk(const regf_hive *h, uint32_t parent, uint32_t child, const uint8_t **out,
                        uint32_t *name_len)
{
    const uint8_t *nk;
    uint32_t len;
    *out = NULL;
    rf_status st = regf_nk_named(h, child, &nk, &len, name_len);
    if (st) return st;
    /* A key of no name: Windows' check (CmpValidateKey, as ReactOS's
     * CmCheckRegistry reimplements it: CM_CHECK_REGISTRY_KEY_NAME_LENGTH_ZERO)
     * finds it damaged and, when it self-heals, removes it from its list.
     * Read, it would take its parent's path (hivex reads it as ""). */
    if (*name_len == 0)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(child), 0, "nk at 0x%llx: a key name of 0 bytes (listed under "
                        "the key at 0x%llx)", (unsigned long long)regf_file_off(child),
                        (unsigned long long)regf_file_off(parent));
    /* The root's parent field may name the root itself: without this, a list
     * holding the root would pass the check below and loop back to the top. */
    if (child == h->root)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(child), 0,
                        "nk at 0x%llx: the root key is listed as a subkey of the key at 0x%llx",
                        (unsigned long long)regf_file_off(child), (unsigned long long)regf_file_off(parent));
    /* A key listed under itself (its parent field naming itself passes the
     * check below): its subkeys would hold it again, without end. */
    if (child == parent)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(child), 0,
                        "nk at 0x%llx: listed as a subkey of itself", (unsigned long long)regf_file_off(child));
    /* A key listed under two parents: its parent field names one of them.
     * Windows' check (CmpCheckKey) finds the other list wrong and, when it
     * self-heals, yanks the entry from it; a tolerant open reads the key
     * under the parent it names, once. A parent field that names no key at
     * all is the damage itself (Windows' self-healing check sets it to the
     * listing key): a tolerant open reads the key where it is listed, or
     * its whole subtree would be read nowhere; where the open's check found
     * it first only (regf_relisted_parent), so that each key still has one
     * parent: accepted under every list holding it, a key listed under
     * itself, or twice at each level, would make an endless or exponential
     * tree of keys. */
    uint32_t recorded = rf_le32(nk + NK_PARENT), plen;
    if (recorded != parent) {
        int names_a_key = recorded != child && regf_quiet_nk(h, recorded, &plen) != NULL;
        if ((h->opts.flags & RF_OPEN_TOLERANT) && !names_a_key && regf_relisted_parent(h, child) == parent) {
            *out = nk;
            return RF_OK;
        }
        return rfi_fail(RF_E_CORRUPT, regf_file_off(child), 0,
                        "nk at 0x%llx: listed under the key at 0x%llx but its parent field says 0x%llx%s; "
                        "open the hive with errors=\"tolerant\" to read it %s",
                        (unsigned long long)regf_file_off(child), (unsigned long long)regf_file_off(parent),
                        (unsigned long long)regf_file_off(recorded), names_a_key ? "" : ", which is no key",
                        names_a_key ? "under that parent only" : "where it is listed");
    }
    *out = nk;
    return RF_OK;
}

/* ---- subkey order ---------------------------------------------------------- */

/* Windows compares subkey names by upcased UTF-16 code unit, a compressed
 * (Latin-1) name's bytes standing for the units, and then by length
 * (CmpCompareCompressedName, CmpCompareTwoCompressedNames,
 * RtlCompareUnicodeString with CaseInSensitive; WRK cmchek.c
 * CmpCheckLexicographicalOrder). */
static int name_cmp(const uint8_t *a, uint32_t an, int au, const uint8_t *b, uint32_t bn, int bu)
{
    uint32_t la = au ? an / 2 : an, lb = bu ? bn / 2 : bn, n = la < lb ? la : lb;
    for (uint32_t i = 0; i < n; i++) {
        uint16_t ca = rf_upcase(au ? rf_le16(a + 2 * (size_t)i) : a[i]);
        uint16_t cb = rf_upcase(bu ? rf_le16(b + 2 * (size_t)i) : b[i]);
        if (ca != cb) return ca < cb ? -1 : 1;
    }
    return la < lb ? -1 : la > lb;
}

static int nk_utf16(const uint8_t *nk) { return !(rf_le16(nk + NK_FLAGS) & NK_FLAG_COMP_NAME); }

int regf_sorted_after(const uint8_t *prev, uint32_t pn, const uint8_t *cur, uint32_t cn)
{
    if (!nk_utf16(prev) && !nk_utf16(cur)) {
        /* the common case (compressed names): ASCII bytes need no table */
        const uint8_t *a = prev + NK_NAME, *b = cur + NK_NAME;
        uint32_t n = pn < cn ? pn : cn, i = 0;
        /* siblings share long prefixes ({GUID}s, numbers): skip equal bytes 8 at a time */
        while (i + 8 <= n && rf_le64(a + i) == rf_le64(b + i)) i += 8;
        for (; i < n; i++) {
            if (a[i] == b[i]) continue;
            uint16_t x = a[i] < 0x80 ? (uint16_t)(a[i] - ((unsigned)(a[i] - 'a') < 26u ? 32 : 0)) : rf_upcase(a[i]);
            uint16_t y = b[i] < 0x80 ? (uint16_t)(b[i] - ((unsigned)(b[i] - 'a') < 26u ? 32 : 0)) : rf_upcase(b[i]);
            if (x != y) return x < y;
        }
        return pn < cn;
    }
    return name_cmp(prev + NK_NAME, pn, nk_utf16(prev), cur + NK_NAME, cn, nk_utf16(cur)) < 0;
}

/* A key name for a message: printable ASCII as is, every other unit as
 * \uXXXX (ASCII still, and unambiguous: '?' for all of them made "\u2c5f"
 * and "\u2c2f" read as one name in the very message that says two keys
 * share a name), cut with "..." past what `out` holds. */
static void msg_name(char *out, size_t cap, const uint8_t *nk, uint32_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    uint32_t utf16 = nk_utf16(nk), n = utf16 ? nbytes / 2 : nbytes, i;
    size_t o = 0;
    for (i = 0; i < n; i++) {
        uint16_t c = utf16 ? rf_le16(nk + NK_NAME + 2 * (size_t)i) : nk[NK_NAME + i];
        size_t need = c >= 0x20 && c < 0x7F ? 1 : 6;
        if (o + need + 4 > cap) break; /* room left for "..." and the NUL */
        if (need == 1) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'u';
            for (int s = 12; s >= 0; s -= 4) out[o++] = hex[(c >> s) & 15];
        }
    }
    if (i < n) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
}

rf_status regf_order_fail(uint32_t key, uint32_t leaf, uint32_t prev, const uint8_t *prev_nk,
                          uint32_t prev_name_len, uint32_t cur, const uint8_t *cur_nk, uint32_t cur_name_len)
{
    char a[40], b[40]; /* two names and the text fit the 256-byte message */
    msg_name(a, sizeof a, prev_nk, prev_name_len);
    msg_name(b, sizeof b, cur_nk, cur_name_len);
    const char *fix = "open the hive with errors=\"tolerant\" to read each key once";
    if (prev == cur)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(leaf), 0,
                        "subkey list at 0x%llx of nk at 0x%llx lists the key at 0x%llx '%s' twice; %s",
                        (unsigned long long)regf_file_off(leaf), (unsigned long long)regf_file_off(key),
                        (unsigned long long)regf_file_off(cur), b, fix);
    if (!regf_sorted_after(cur_nk, cur_name_len, prev_nk, prev_name_len))
        return rfi_fail(RF_E_CORRUPT, regf_file_off(cur), 0,
                        "subkey list at 0x%llx of nk at 0x%llx lists two keys named '%s' (0x%llx, 0x%llx); %s",
                        (unsigned long long)regf_file_off(leaf), (unsigned long long)regf_file_off(key), b,
                        (unsigned long long)regf_file_off(prev), (unsigned long long)regf_file_off(cur), fix);
    return rfi_fail(RF_E_CORRUPT, regf_file_off(cur), 0,
                    "subkey list at 0x%llx of nk at 0x%llx is out of order: '%s' (0x%llx) after '%s' "
                    "(lists are sorted by upcased name); %s",
                    (unsigned long long)regf_file_off(leaf), (unsigned long long)regf_file_off(key), b,
                    (unsigned long long)regf_file_off(cur), a, fix);
}

/* A strict read stopped at damage: the message says how to read past it (the
 * offset and status stay). A hive opened strictly is told to open it with
 * errors="tolerant". A tolerant hive already was, and that advice (in this
 * message or one it wraps) would send its user in a circle: it is dropped,
 * and where the read can go on past the entry (`can_skip`: a scan, and so a
 * walk) the hint is errors="skip"; Key.subkeys() and Hive.open() take no
 * such argument, so their message names none. */
rf_status regf_with_fix(const regf_hive *h, rf_status st, int can_skip)
{
    static const char open_fix[] = "; open the hive with errors=\"tolerant\"";
    static const char open_hint[] = "; open the hive with errors=\"tolerant\" to read the rest";
    static const char skip_hint[] = "; scan or walk with errors=\"skip\" to go on past it";
    const rf_error *e = rf_last_error();
    if (st != RF_E_CORRUPT || e->code != st) return st;
    char msg[sizeof e->message];
    memcpy(msg, e->message, sizeof msg);
    msg[sizeof msg - 1] = 0;
    /* the message as long as the hint leaves room for (rfi_fail cuts at the buffer's end) */
    int keep_open = (int)(sizeof msg - sizeof open_hint), keep_skip = (int)(sizeof msg - sizeof skip_hint);
    if (!(h->opts.flags & RF_OPEN_TOLERANT)) {
        if (strstr(msg, "tolerant")) return st;
        return rfi_fail(st, e->offset, e->native, "%.*s%s", keep_open, msg, open_hint);
    }
    if (strstr(msg, "errors=\"skip\"")) return st;
    char *cut = strstr(msg, open_fix);
    if (cut) *cut = 0;
    if (!can_skip) return cut ? rfi_fail(st, e->offset, e->native, "%s", msg) : st;
    return rfi_fail(st, e->offset, e->native, "%.*s%s", keep_skip, msg, skip_hint);
}

/* ---- the subkeys of a key --------------------------------------------------- */

struct collect_ctx {
    const regf_hive *h;
    uint32_t parent;
    rf_key *out;
    size_t cap, n;
    int tolerant;           /* step over entries the open-time check listed */
    int unordered;          /* tolerant: an entry broke the order (duplicates possible) */
    uint32_t prev;          /* last entry that was in order, 0 before the first */
};

/* An entry a tolerant read steps over, as the open's check listed it: a key
 * listed under itself, or a usable nk (not the root) whose parent field
 * names another key (listed under two parents, read under the one it
 * names; or naming no key, read under the list regf_relisted_parent says). */
static int owned_elsewhere(const regf_hive *h, uint32_t parent, uint32_t child)
{
    const uint8_t *nk;
    uint32_t len;
    return child == parent ||
           (child != h->root && regf_nk(h, child, &nk, &len) == RF_OK && rf_le32(nk + NK_PARENT) != parent);
}

static rf_status collect_entry(void *vctx, uint32_t child, uint32_t hash, uint32_t leaf)
{
    struct collect_ctx *c = vctx;
    (void)hash;
    rf_status st = regf_check_child(c->h, c->parent, child);
    if (st) {
        /* tolerant: an entry the open's check listed is stepped over, as the
         * walk steps over it (a key owned elsewhere is read there; one that
         * is no usable key, nowhere); strict: the listing stops there */
        if (c->tolerant && st == RF_E_CORRUPT) return RF_OK;
        return regf_with_fix(c->h, st, 0);
    }
    const uint8_t *nk, *pnk;
    uint32_t len, nlen, plen;
    /* the file may have changed since regf_check_child read it: check again */
    if ((st = regf_nk_named(c->h, child, &nk, &len, &nlen)) != RF_OK) return st;
    if (c->prev && regf_nk_named(c->h, c->prev, &pnk, &len, &plen) == RF_OK &&
        !regf_sorted_after(pnk, plen, nk, nlen)) {
        if (!c->tolerant) return regf_order_fail(c->parent, leaf, c->prev, pnk, plen, child, nk, nlen);
        c->unordered = 1;
    } else {
        c->prev = child;
    }
    if (c->n < c->cap) c->out[c->n] = child;
    c->n++;
    return RF_OK;
}

typedef struct keyed { rf_key key; size_t index; } keyed;

static int keyed_order(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Tolerant: each key once, in stored order (its first occurrence kept). */
static rf_status drop_repeats(rf_key *out, size_t *n)
{
    keyed *s = malloc(*n * sizeof *s);
    if (!s) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the subkey list");
    for (size_t i = 0; i < *n; i++) s[i] = (keyed){ out[i], i };
    qsort(s, *n, sizeof *s, keyed_order);
    for (size_t i = 1; i < *n; i++)
        if (s[i].key == s[i - 1].key) out[s[i].index] = 0; /* 0 is never a key */
    free(s);
    size_t w = 0;
    for (size_t i = 0; i < *n; i++)
        if (out[i]) out[w++] = out[i];
    *n = w;
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
    int tolerant = (h->opts.flags & RF_OPEN_TOLERANT) != 0;
    struct collect_ctx c = { h, (uint32_t)k, out, cap, 0, tolerant, 0, 0 };
    if ((st = regf_each_subkey(h, (uint32_t)k, nk, collect_entry, &c)) != RF_OK) return st;
    if (c.n > cap) {
        *n_out = c.n;
        return RF_E_MORE_DATA;
    }
    if (c.unordered && (st = drop_repeats(out, &c.n)) != RF_OK) return st;
    *n_out = c.n;
    return RF_OK;
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
    int tolerant;
    int names_only;         /* tolerant, second pass: the stored lh hashes are not trusted */
    rf_error first_err;     /* tolerant: the first entry that could not be read */
};

static rf_status find_entry(void *vctx, uint32_t child, uint32_t hash, uint32_t leaf)
{
    struct find_ctx *c = vctx;
    (void)leaf;
    /* lh lists store the hash of the upcased name: skip most entries
     * without touching their nk. lf and li entries arrive with hash 0, and so
     * may a real lh hash now and then: then we simply compare the name. */
    if (hash != 0 && hash != c->hash && !c->names_only) return RF_OK;
    const uint8_t *nk;
    uint32_t len, nlen;
    rf_status st = regf_nk_named(c->h, child, &nk, &len, &nlen);
    /* tolerant: an entry that is not a key was listed at open; look on, and
     * if nothing else matches, say that it could not be read (not "missing") */
    if (st && c->tolerant && st == RF_E_CORRUPT) {
        /* (not in the second pass: the first skipped this entry by its hash,
         * and a miss must stay "not found", not become this damage) */
        if (!c->first_err.code && !c->names_only) c->first_err = *rf_last_error();
        return RF_OK;
    }
    if (st) return st;
    if (!regf_name_equals(nk + NK_NAME, nlen, !(rf_le16(nk + NK_FLAGS) & NK_FLAG_COMP_NAME), c->upper,
                          c->nchars))
        return RF_OK;
    /* A key listed here whose parent is another key (listed under two
     * parents): strict says so; tolerant looks on, as the key lives there. */
    if ((st = regf_check_child(c->h, c->parent, child)) != RF_OK)
        return c->tolerant && st == RF_E_CORRUPT && owned_elsewhere(c->h, c->parent, child) ? RF_OK : st;
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
    int tolerant = (h->opts.flags & RF_OPEN_TOLERANT) != 0;
    struct find_ctx c;
    memset(&c, 0, sizeof c);
    c.h = h;
    c.parent = (uint32_t)parent;
    c.upper = upper;
    c.nchars = nchars;
    c.hash = rf_lh_hash(upper, nchars);
    c.tolerant = tolerant;
    /* Linear, whatever the order of the list: a lookup finds every key of
     * an out-of-order list (binary search would miss some), and an lh hash
     * skips most entries without touching their nk. */
    st = tolerant ? regf_each_subkey_all(h, (uint32_t)parent, nk, find_entry, &c)
                  : regf_each_subkey(h, (uint32_t)parent, nk, find_entry, &c);
    if (tolerant && st == RF_OK && !c.first_err.code) {
        /* Not found by hash: a tolerant open looks again by name alone. An
         * lh hash made with another fold (hives written by other tools, or
         * by regfast before its fold was Windows') hides a key Windows'
         * lookup misses too, but a forensic read should still find it. */
        c.names_only = 1;
        st = regf_each_subkey_all(h, (uint32_t)parent, nk, find_entry, &c);
    }
    if (st == RF_E_NO_MORE_ITEMS) {
        *out = c.found;
        return RF_OK;
    }
    if (c.first_err.code)
        return rfi_fail(c.first_err.code, c.first_err.offset, c.first_err.native, "%s", c.first_err.message);
    if (st) return st;   /* a lost leaf (tolerant) may have held it */
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
        return regf_odd_name_fail((uint32_t)k, "nk", out->nbytes);
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
    uint32_t parent = regf_parent_of(h, (uint32_t)k, nk);
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

/* The nk flag KEY_SYM_LINK: offline a link is a key like any other (its
 * target in the value SymbolicLinkValue), nothing is followed. */
rf_status regf_key_is_link(rf_hive *base, rf_key k, int *out)
{
    const regf_hive *h = (const regf_hive *)base;
    const uint8_t *nk;
    uint32_t len;
    rf_status st = key_token(h, k, &nk, &len);
    if (st) return st;
    *out = (rf_le16(nk + NK_FLAGS) & NK_FLAG_SYM_LINK) != 0;
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
    uint32_t len;
    *list = NULL;
    *n = 0;
    rf_status st = key_token(h, k, &nk, &len);
    if (st) return st;
    return regf_value_list_nk(h, (uint32_t)k, nk, list, n);
}

rf_status regf_value_list_nk(const regf_hive *h, uint32_t k, const uint8_t *nk, const uint8_t **list,
                             uint32_t *n)
{
    rf_status st;
    uint32_t llen;
    *list = NULL;
    *n = 0;
    uint32_t count = regf_once32(nk + NK_N_VALUES), off = rf_le32(nk + NK_VALUES);
    if (count == 0) return RF_OK;
    /* the list's cell first: a count it cannot hold is damage (at the list),
     * whatever the caller's limit; one it holds may still pass that limit */
    if ((st = regf_cell(h, off, "value list", list, &llen)) != RF_OK) return st;
    if ((uint64_t)count * 4 > llen) {
        *list = NULL;
        return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                        "value list at 0x%llx: %u values do not fit in a %u-byte cell",
                        (unsigned long long)regf_file_off(off), count, llen);
    }
    if (count > h->opts.max_values) {
        *list = NULL;
        return rfi_fail(RF_E_LIMIT, regf_file_off((uint32_t)k), 0,
                        "nk at 0x%llx: %u values exceed max_values %u",
                        (unsigned long long)regf_file_off((uint32_t)k), count, h->opts.max_values);
    }
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
