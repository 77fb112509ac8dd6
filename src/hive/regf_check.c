/*
 * regf_check.c — a tolerant open's check of the key tree (regf_check_tree):
 * every subkey entry reads step over, and every value reads refuse, listed
 * in the hive's problems before the first read, so that nothing a tolerant
 * hive leaves out is left out silently. Also where a key whose parent field
 * names no key is read (h->relisted, regf_relisted_parent).
 *
 * Its own file: it reads keys (regf_key.c) and values (regf_value.c), which
 * read each other's records, without either calling back here
 * (tools/check_c_cycles.py).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hive/regf_internal.h"
#include "hive/regf_guard.h"

/* The regions the hbin walk skipped and listed (problems with a length), in
 * file order: an entry pointing into one is damage already reported. */
typedef struct skipped_regions { uint64_t *at; size_t n; } skipped_regions;

/* Copies them out of the problems, which the walk left sorted by offset
 * (parse): the tree check appends to that list as it goes. */
static int collect_regions(const regf_hive *h, skipped_regions *r)
{
    r->n = 0;
    r->at = malloc((2 * h->n_problems + 1) * sizeof *r->at);
    if (!r->at) return 0;
    for (size_t i = 0; i < h->n_problems; i++)
        if (h->problems[i].length) {
            r->at[2 * r->n] = h->problems[i].offset;
            r->at[2 * r->n + 1] = h->problems[i].length;
            r->n++;
        }
    return 1;
}

/* 1 when the file offset lies in a skipped region: a binary search (a
 * hostile hive can hold thousands of regions and millions of bad entries;
 * the regions do not overlap). */
static int in_skipped_region(const skipped_regions *r, uint64_t file_off)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {              /* the first region starting after file_off */
        size_t mid = lo + (hi - lo) / 2;
        if (r->at[2 * mid] <= file_off) lo = mid + 1;
        else hi = mid;
    }
    return lo > 0 && file_off - r->at[2 * (lo - 1)] < r->at[2 * (lo - 1) + 1];
}

typedef struct tree_check {
    regf_hive *h;
    uint64_t  *visited;        /* bit per 8-byte slot: an nk already queued */
    uint64_t  *entry_seen;     /* bit per 4-byte slot: a value-list entry already checked */
    uint64_t  *record_seen;    /* bit per 8-byte slot: a vk already checked */
    uint32_t  *prefix;         /* db segment lists: (offset, full prefix) pairs, open
                                  addressing (offset 0, never a cell, marks a free slot) */
    size_t     prefix_mask, n_prefix;
    uint32_t  *stack;
    size_t     top, cap;
    uint32_t   key, prev;      /* the key whose list is checked; last in-order entry */
    uint32_t   reported;       /* bit 0: bad entry, 1: two parents, 2: order, already listed */
    rf_status  err;            /* out of memory */
    skipped_regions regions;
} tree_check;

static void problem(tree_check *t, uint32_t bit, uint64_t off, const char *fmt, ...) RF_PRINTF(4, 5);
static void problem(tree_check *t, uint32_t bit, uint64_t off, const char *fmt, ...)
{
    if (t->reported & bit) return;      /* one of each kind per list: the first */
    t->reported |= bit;
    char reason[sizeof t->h->problems[0].reason];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    rf_status st = regf_add_problem(t->h, RF_PROBLEM_SUBKEYS, off, reason);
    if (st && !t->err) t->err = st;
}

/* Records that `child`, whose parent field names no key, is read under
 * `parent`: called once per child, at its first listing in stored
 * pre-order (the scan's order); 0 when out of memory. regf_check_tree sorts
 * the pairs when done. */
static int relist(regf_hive *h, uint32_t child, uint32_t parent)
{
    if (h->n_relisted == h->relisted_cap) {
        size_t cap = h->relisted_cap ? 2 * h->relisted_cap : 8;
        uint32_t *p = realloc(h->relisted, 2 * cap * sizeof *p);
        if (!p) return 0;
        h->relisted = p;
        h->relisted_cap = cap;
    }
    h->relisted[2 * h->n_relisted] = child;
    h->relisted[2 * h->n_relisted + 1] = parent;
    h->n_relisted++;
    return 1;
}

static rf_status check_entry(void *vctx, uint32_t child, uint32_t hash, uint32_t leaf)
{
    tree_check *t = vctx;
    const regf_hive *h = t->h;
    const uint8_t *nk, *pnk;
    uint32_t nlen, plen;
    int no_parent = 0;          /* its parent field names no key: read under this list */
    (void)hash;
    /* Each problem is placed where the damage most likely is: a damaged key
     * record, or the list entry that points wrong. */
    if (!(nk = regf_quiet_nk(h, child, &nlen)) || nlen == 0 || child == h->root || child == t->key) {
        if (!in_skipped_region(&t->regions, regf_file_off(child)))
            problem(t, 1, regf_file_off(regf_is_cell(h, child) ? child : leaf),
                    "subkey list at 0x%llx of nk at 0x%llx: entry 0x%llx is not a usable key%s",
                    (unsigned long long)regf_file_off(leaf), (unsigned long long)regf_file_off(t->key),
                    (unsigned long long)regf_file_off(child),
                    nk && nlen == 0 ? " (a key of no name, which Windows' check removes)" : "");
        return RF_OK;
    }
    uint32_t parent = rf_le32(nk + NK_PARENT);
    if (parent != t->key) {
        if (parent != child && regf_quiet_nk(h, parent, &plen) != NULL) {    /* listed twice */
            problem(t, 2, regf_file_off(leaf),
                    "subkey list at 0x%llx of nk at 0x%llx lists the key at 0x%llx, whose parent is 0x%llx: "
                    "read there only", (unsigned long long)regf_file_off(leaf),
                    (unsigned long long)regf_file_off(t->key), (unsigned long long)regf_file_off(child),
                    (unsigned long long)regf_file_off(parent));
            return RF_OK;
        }
        no_parent = 1;          /* said below: here, or under the list that reads it */
    }
    if (t->prev && (pnk = regf_quiet_nk(h, t->prev, &plen)) != NULL && !regf_sorted_after(pnk, plen, nk, nlen)) {
        problem(t, 4, regf_file_off(t->prev == child ? leaf : child),
                "subkey list at 0x%llx of nk at 0x%llx: %s at 0x%llx; each key is "
                "read once", (unsigned long long)regf_file_off(leaf), (unsigned long long)regf_file_off(t->key),
                t->prev == child ? "a key listed twice" : regf_sorted_after(nk, nlen, pnk, plen) ? "out of order"
                                                                                  : "two keys of one name",
                (unsigned long long)regf_file_off(child));
    } else {
        t->prev = child;
    }
    uint64_t bit = child >> 3;
    int first = !((t->visited[bit >> 6] >> (bit & 63)) & 1);
    if (no_parent) {
        /* its parent field is the damage (at the key) where it is read, the
         * first listing; any later listing is a list entry read nowhere */
        uint32_t at = first ? child : leaf, listing = first ? t->key : regf_relisted_parent(h, child);
        problem(t, 2, regf_file_off(at),
                "subkey list at 0x%llx of nk at 0x%llx lists the key at 0x%llx, whose parent field 0x%llx "
                "names no key: read %s 0x%llx", (unsigned long long)regf_file_off(leaf),
                (unsigned long long)regf_file_off(t->key), (unsigned long long)regf_file_off(child),
                (unsigned long long)regf_file_off(parent), first ? "here, under the nk at" : "under the nk at",
                (unsigned long long)regf_file_off(listing));
    }
    if (!first) return RF_OK;
    if (!(rf_le16(nk + NK_FLAGS) & NK_FLAG_COMP_NAME) && (nlen & 1)) {
        /* reads name it by its whole units (the scan's key_status says so too) */
        char reason[sizeof h->problems[0].reason];
        snprintf(reason, sizeof reason, "nk at 0x%llx: UTF-16 name has an odd length of %u bytes: read by its "
                 "whole units", (unsigned long long)regf_file_off(child), nlen);
        rf_status st = regf_add_problem(t->h, RF_PROBLEM_SUBKEYS, regf_file_off(child), reason);
        if (st && !t->err) t->err = st;
    }
    t->visited[bit >> 6] |= (uint64_t)1 << (bit & 63);
    if (no_parent && !relist(t->h, child, t->key))
        return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the subkey check");
    if (t->top == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 256;
        uint32_t *q = realloc(t->stack, nc * sizeof *q);
        if (!q) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the subkey check");
        t->stack = q;
        t->cap = nc;
    }
    t->stack[t->top++] = child;
    return RF_OK;
}

/* Lists a value a read would refuse, where the damage most likely is (the
 * rule of check_entry): the record the error names when a cell starts there
 * (a damaged record), else the record holding the pointer (`holder`, named
 * `holder_what`): the pointer is what broke. The reason names both. O(1)
 * per entry (no search for an enclosing cell). Damage inside a region the
 * hbin walk skipped is listed there already. */
static void value_problem(tree_check *t, uint32_t key, const char *holder_what, uint32_t holder, const char *what)
{
    const rf_error *e = rf_last_error();
    uint64_t at = e->offset;
    if (at != RF_NO_OFFSET && in_skipped_region(&t->regions, at)) return;
    if (at == RF_NO_OFFSET || at < REGF_BASE_BLOCK || !regf_is_cell(t->h, at - REGF_BASE_BLOCK))
        at = regf_file_off(holder);
    char reason[sizeof t->h->problems[0].reason];
    if (holder == key)
        snprintf(reason, sizeof reason, "values of nk at 0x%llx, %s: %s", (unsigned long long)regf_file_off(key),
                 what, e->message);
    else
        snprintf(reason, sizeof reason, "%s at 0x%llx of nk at 0x%llx, %s: %s", holder_what,
                 (unsigned long long)regf_file_off(holder), (unsigned long long)regf_file_off(key), what,
                 e->message);
    rf_status st = regf_add_problem(t->h, RF_PROBLEM_VALUES, at, reason);
    if (st && !t->err) t->err = st;
}

static int seen_before(uint64_t *bits, uint64_t slot)
{
    uint64_t m = (uint64_t)1 << (slot & 63);
    if (bits[slot >> 6] & m) return 1;
    bits[slot >> 6] |= m;
    return 0;
}

/* How many leading entries of a db's segment list are full segments
 * (allocated cells of at least REGF_BIG_SEGMENT bytes): found once per
 * list, up to the 65,535 entries a db can name. 0 when out of memory. */
static int full_prefix(tree_check *t, uint32_t list_off, const uint8_t *list, uint32_t llen, uint32_t *out)
{
    if (2 * (t->n_prefix + 1) > t->prefix_mask + 1) {
        size_t cap = t->prefix_mask ? 2 * (t->prefix_mask + 1) : 64;
        uint32_t *fresh = calloc(2 * cap, sizeof *fresh);
        if (!fresh) return 0;
        for (size_t i = 0; t->prefix && i <= t->prefix_mask; i++) {
            if (!t->prefix[2 * i]) continue;
            size_t j = ((size_t)(t->prefix[2 * i] >> 3) * 2654435761u) & (cap - 1);
            while (fresh[2 * j]) j = (j + 1) & (cap - 1);
            fresh[2 * j] = t->prefix[2 * i];
            fresh[2 * j + 1] = t->prefix[2 * i + 1];
        }
        free(t->prefix);
        t->prefix = fresh;
        t->prefix_mask = cap - 1;
    }
    size_t j = ((size_t)(list_off >> 3) * 2654435761u) & t->prefix_mask;
    for (; t->prefix[2 * j]; j = (j + 1) & t->prefix_mask)
        if (t->prefix[2 * j] == list_off) {
            *out = t->prefix[2 * j + 1];
            return 1;
        }
    uint32_t n = llen / 4 < 65535 ? llen / 4 : 65535, fp = 0;
    for (; fp < n; fp++) {
        const uint8_t *seg;
        uint32_t slen;
        int allocated;
        if (!regf_cell_at(t->h, rf_le32(list + 4 * (size_t)fp), &seg, &slen, &allocated) || !allocated ||
            slen < REGF_BIG_SEGMENT)
            break;
    }
    t->prefix[2 * j] = list_off;
    t->prefix[2 * j + 1] = fp;
    t->n_prefix++;
    *out = fp;
    return 1;
}

/* regf_read_big's checks of a big value's segments (with its errors),
 * without walking them for every value: values sharing a segment list (a
 * hostile hive can make thousands name one list of thousands of entries)
 * cost the list's full prefix once, then one cell each: the last segment,
 * or the first that is not full. */
static rf_status check_big(tree_check *t, const regf_data_loc *d)
{
    const uint8_t *list, *seg;
    uint32_t list_off, llen, need, fp;
    rf_status st = regf_big_list(t->h, d, &list, &list_off, &llen, &need);
    if (st) return st;
    if (!full_prefix(t, list_off, list, llen, &fp))
        return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the value check");
    uint32_t last = need - 1;                 /* need >= 2: big data is over one segment */
    if (last < fp) return RF_OK;              /* a full segment holds any last part */
    uint32_t i = fp < last ? fp : last;       /* the first segment that is not full, or the last */
    return regf_big_segment(t->h, list, i, i < last ? REGF_BIG_SEGMENT : d->len - last * REGF_BIG_SEGMENT, &seg);
}

/* The value list of a key the tree check reached, each vk and its data, as
 * reads check them: a tolerant open lists the damage of every value a read
 * would refuse (README: "never dropped silently"). A tolerant hive's
 * Key.values() then steps over an entry whose vk is unusable and hands out
 * a value whose data alone is lost as one whose data raises. A list past
 * max_values is the caller's limit, not damage: its reads say so.
 *
 * Each list entry and vk is checked once per open, wherever it is listed
 * again (lists shared by thousands of keys, a vk listed 40,000 times:
 * damage a hostile file can hold), and each db segment list's full prefix
 * is found once (check_big), so the check stays linear in the file. Damage
 * met again is listed where it was first met. */
static void check_values(tree_check *t, uint32_t key, const uint8_t *nk)
{
    const regf_hive *h = t->h;
    const uint8_t *list, *vk;
    uint32_t count, len, nlen;
    regf_data_loc d;
    rf_status st = regf_value_list_nk(h, key, nk, &list, &count);
    if (st) {
        if (st != RF_E_LIMIT) value_problem(t, key, "nk", key, "none read");
        return;
    }
    uint64_t first_slot = count ? (uint64_t)(list - h->bins) >> 2 : 0;   /* the payload is 4-aligned */
    for (uint32_t i = 0; i < count && !t->err; i++) {
        if (seen_before(t->entry_seen, first_slot + i)) continue;
        uint32_t voff = rf_le32(list + 4 * (size_t)i);
        if ((st = regf_vk_named(h, voff, &vk, &len, &nlen)) != RF_OK) {
            value_problem(t, key, "value list", (uint32_t)(list - h->bins) - 4, "an entry stepped over");
            continue;
        }
        if (seen_before(t->record_seen, voff >> 3)) continue;
        if (!(rf_le16(vk + VK_FLAGS) & VK_FLAG_COMP_NAME) && (nlen & 1)) {
            regf_odd_name_fail(voff, "vk", nlen);
            value_problem(t, key, "vk", voff, "named by its whole units");
        }
        st = regf_locate_fast(h, voff, vk, &d);
        if (!st && (d.flags & RF_VALUE_BIG_DATA)) st = check_big(t, &d);
        if (st == RF_E_NO_MEMORY) {     /* the check's, not the value's: the open fails */
            t->err = st;
            return;
        }
        if (st) value_problem(t, key, "vk", voff, "its data lost");
    }
}

static rf_status check_tree_body(tree_check *t)
{
    regf_hive *h = t->h;
    t->visited = calloc((size_t)(h->bins_len / 512) + 1, sizeof(uint64_t));
    t->record_seen = calloc((size_t)(h->bins_len / 512) + 1, sizeof(uint64_t));
    t->entry_seen = calloc((size_t)(h->bins_len / 256) + 1, sizeof(uint64_t));
    t->stack = malloc(256 * sizeof *t->stack);
    if (!t->visited || !t->record_seen || !t->entry_seen || !t->stack)
        return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the subkey check");
    t->cap = 256;
    t->stack[t->top++] = h->root;
    t->visited[(h->root >> 3) >> 6] |= (uint64_t)1 << ((h->root >> 3) & 63);
    rf_status st = RF_OK;
    while (t->top && !t->err) {
        const uint8_t *nk;
        uint32_t len;
        t->key = t->stack[--t->top];
        t->prev = 0;
        t->reported = 0;
        if (regf_nk(h, t->key, &nk, &len) != RF_OK) continue;
        check_values(t, t->key, nk);
        if (t->err) break;
        size_t pushed = t->top;
        st = regf_each_subkey_all(h, t->key, nk, check_entry, t);
        /* popped in stored order, as the scan visits them: a key listed
         * twice is found first where the scan reads it (relist) */
        for (size_t a = pushed, b = t->top; a + 1 < b; a++, b--) {
            uint32_t x = t->stack[a];
            t->stack[a] = t->stack[b - 1];
            t->stack[b - 1] = x;
        }
        if (st == RF_E_NO_MEMORY) break;
        if (st) {
            /* the list itself (its cell, signature, count): reads of this key's
             * subkeys will return what is left; say why, unless the bytes lie
             * in a region the hbin walk already listed */
            const rf_error *e = rf_last_error();
            uint64_t at = e->offset != RF_NO_OFFSET ? e->offset : regf_file_off(t->key);
            /* a pointer that lands in no cell at all (an hbin header, past
             * the hbins or the file): the field holding it is what broke, in
             * the key or in its ri; the problem is placed at the key */
            int skipped = in_skipped_region(&t->regions, at);
            uint64_t rel = at - REGF_BASE_BLOCK;
            if (at < REGF_BASE_BLOCK || (!regf_is_cell(h, rel) && !regf_inside_cell_near(h, rel)))
                at = regf_file_off(t->key);
            if (!skipped)
                problem(t, 8, at, "subkeys of nk at 0x%llx: %.100s", (unsigned long long)regf_file_off(t->key),
                        e->message);
        }
        st = RF_OK;
    }
    return st ? st : t->err;
}

static rf_status check_tree_guarded(tree_check *t)
{
    rf_status st = RF_OK;
    REGF_GUARD_BEGIN(t->h->map, t->h->size)
        st = check_tree_body(t);
    REGF_GUARD_END(st)
    return st;
}

static int cmp_pair(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Guards itself (regf_guard.h): the walk's state belongs to this frame and
 * is freed after the guard, even when a vanished page ended the walk. */
rf_status regf_check_tree(regf_hive *h)
{
    tree_check t;
    memset(&t, 0, sizeof t);
    t.h = h;
    if (!collect_regions(h, &t.regions))
        return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the subkey check");
    rf_status st = check_tree_guarded(&t);
    free(t.visited);
    free(t.record_seen);
    free(t.prefix);
    free(t.entry_seen);
    free(t.stack);
    free(t.regions.at);
    /* sorted by child for regf_relisted_parent's binary search */
    if (h->n_relisted > 1) qsort(h->relisted, h->n_relisted, 2 * sizeof *h->relisted, cmp_pair);
    return st;
}
