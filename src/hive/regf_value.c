/*
 * regf_value.c — vk records and value data: inline, one cell, or big data.
 *
 * The vk's data length is the truth for every type, including the device
 * property types 0xFFFF00xx that one peer reads to the end of the file.
 * Data lives in one of three places:
 *   - inline: high bit of data_len set; up to 4 bytes in the data-offset field;
 *   - one data cell: data_len must fit in the cell;
 *   - a "db" big-data record (format 1.4+, data_len > 16344): a list of
 *     segment cells, 16344 bytes each but the last. Not contiguous, so it is
 *     the one case that copies.
 * Also the cells of one record (rf_key_slack, rf_value_slack: the slack of
 * an nk or a vk and its data cell) and a token's file offset.
 */
#include <stdlib.h>
#include "hive/regf_internal.h"
#include "hive/regf_guard.h"

rf_status regf_locate(const regf_hive *h, uint32_t voff, const uint8_t *vk, regf_data_loc *d)
{
    uint32_t raw = regf_once32(vk + VK_DATA_LEN), off = rf_le32(vk + VK_DATA), clen;
    const uint8_t *p;
    memset(d, 0, sizeof *d);
    d->len = raw & ~VK_DATA_INLINE;
    if (raw & VK_DATA_INLINE) {
        if (d->len > 4)
            return rfi_fail(RF_E_CORRUPT, regf_file_off(voff), 0,
                            "vk at 0x%llx: inline data length %u exceeds the 4-byte field",
                            (unsigned long long)regf_file_off(voff), d->len);
        d->flags = RF_VALUE_INLINE;
        d->ptr = vk + VK_DATA;
        return RF_OK;
    }
    if (d->len == 0) {
        d->ptr = vk + VK_DATA; /* any valid pointer: nothing is read */
        return RF_OK;
    }
    if (h->minor >= 4 && d->len > REGF_BIG_SEGMENT) {
        rf_status st = regf_record(h, off, "db", 8, &p, &clen);
        if (st) return st;
        /* Checked here, not only when the segments are read: callers size their
         * buffer from data_len, so a corrupt length (up to 2 GB) must not get
         * that far. Distinct segment cells cannot hold more than the hbins. */
        uint32_t n = rf_le16(p + 2);
        uint64_t need = ((uint64_t)d->len + REGF_BIG_SEGMENT - 1) / REGF_BIG_SEGMENT;
        if (n < need)
            return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                            "db at 0x%llx (vk at 0x%llx): %u segments cannot hold %u bytes (need %llu)",
                            (unsigned long long)regf_file_off(off), (unsigned long long)regf_file_off(voff),
                            n, d->len, (unsigned long long)need);
        if (d->len > h->bins_len)
            return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                            "db at 0x%llx (vk at 0x%llx): data_len %u exceeds the 0x%llx bytes of hbins",
                            (unsigned long long)regf_file_off(off), (unsigned long long)regf_file_off(voff),
                            d->len, (unsigned long long)h->bins_len);
        d->flags = RF_VALUE_BIG_DATA;
        d->db = off;
        return RF_OK;
    }
    rf_status st = regf_cell(h, off, "value data", &p, &clen);
    if (st) return st;
    if (d->len > clen)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                        "value data at 0x%llx (vk at 0x%llx): data_len %u exceeds cell size %u",
                        (unsigned long long)regf_file_off(off), (unsigned long long)regf_file_off(voff),
                        d->len, clen);
    d->ptr = p;
    return RF_OK;
}

rf_status regf_value_info(rf_hive *base, rf_value v, rf_value_info *out)
{
    const regf_hive *h = (const regf_hive *)base;
    const uint8_t *vk;
    uint32_t len, nlen;
    regf_data_loc d;
    rf_status st = regf_vk_named(h, v, &vk, &len, &nlen);
    if (st) return st;
    if ((st = regf_locate(h, (uint32_t)v, vk, &d)) != RF_OK) return st;
    out->name.ptr = vk + VK_NAME;
    out->name.nbytes = nlen;
    out->name.utf16 = !(rf_le16(vk + VK_FLAGS) & VK_FLAG_COMP_NAME);
    if (out->name.utf16 && (out->name.nbytes & 1))
        return regf_odd_name_fail((uint32_t)v, "vk", out->name.nbytes);
    out->type = rf_le32(vk + VK_TYPE);
    out->data_len = d.len;
    out->flags = d.flags;
    return RF_OK;
}

rf_status regf_big_list(const regf_hive *h, const regf_data_loc *d, const uint8_t **list, uint32_t *list_off,
                        uint32_t *llen, uint32_t *need)
{
    const uint8_t *db;
    uint32_t dblen;
    rf_status st = regf_record(h, d->db, "db", 8, &db, &dblen);
    if (st) return st;
    uint32_t n = regf_once16(db + 2);
    *list_off = rf_le32(db + 4);
    *need = (uint32_t)(((uint64_t)d->len + REGF_BIG_SEGMENT - 1) / REGF_BIG_SEGMENT);
    if (n < *need)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(d->db), 0, "db at 0x%llx: %u segments cannot hold %u bytes (need %u)",
                        (unsigned long long)regf_file_off(d->db), n, d->len, *need);
    if ((st = regf_cell(h, *list_off, "db segment list", list, llen)) != RF_OK) return st;
    if ((uint64_t)n * 4 > *llen)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(*list_off), 0,
                        "db segment list at 0x%llx: %u entries do not fit in a %u-byte cell",
                        (unsigned long long)regf_file_off(*list_off), n, *llen);
    return RF_OK;
}

rf_status regf_big_segment(const regf_hive *h, const uint8_t *list, uint32_t i, uint32_t take, const uint8_t **seg)
{
    uint32_t soff = rf_le32(list + 4 * (size_t)i), slen;
    rf_status st = regf_cell(h, soff, "db segment", seg, &slen);
    if (st) return st;
    if (take > slen)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(soff), 0, "db segment %u at 0x%llx: needs %u bytes but the cell "
                        "holds %u", i, (unsigned long long)regf_file_off(soff), take, slen);
    return RF_OK;
}

/* Copies a db record's segments into buf (cap >= d->len checked by caller). */
rf_status regf_read_big(const regf_hive *h, const regf_data_loc *d, uint8_t *buf)
{
    const uint8_t *list, *seg;
    uint32_t list_off, llen, need;
    rf_status st = regf_big_list(h, d, &list, &list_off, &llen, &need);
    if (st) return st;
    uint32_t done = 0;
    for (uint32_t i = 0; done < d->len; i++) {
        uint32_t take = d->len - done < REGF_BIG_SEGMENT ? d->len - done : REGF_BIG_SEGMENT;
        if ((st = regf_big_segment(h, list, i, take, &seg)) != RF_OK) return st;
        memcpy(buf + done, seg, take);
        done += take;
    }
    return RF_OK;
}

rf_status regf_value_read(rf_hive *base, rf_value v, void *buf, size_t cap,
                          const uint8_t **data_out, size_t *len_out)
{
    const regf_hive *h = (const regf_hive *)base;
    const uint8_t *vk;
    uint32_t len;
    regf_data_loc d;
    *data_out = NULL;
    *len_out = 0;
    rf_status st = regf_vk(h, v, &vk, &len);
    if (st) return st;
    if ((st = regf_locate(h, (uint32_t)v, vk, &d)) != RF_OK) return st;
    *len_out = d.len;
    if (!(d.flags & RF_VALUE_BIG_DATA)) {
        *data_out = d.ptr;
        return RF_OK;
    }
    if (cap < d.len || !buf) return RF_E_MORE_DATA;
    if ((st = regf_read_big(h, &d, buf)) != RF_OK) {
        *len_out = 0;
        return st;
    }
    *data_out = buf;
    return RF_OK;
}

/* ---- lookups by name, and the per-key name index ------------------------
 *
 * Windows keeps a key's value list unsorted, so finding a value by name is a
 * linear search: 17 ms in a key of 1,000,000 values. Past REGF_VINDEX_MIN
 * values, the second lookup in a list builds an index of it (open addressing
 * by the hash of the upcased name, storing list positions), and every later
 * lookup in that list probes it. Not the first: building costs one to two
 * linear searches, which a key looked up once should not pay.
 *
 * - The same answer as the linear search: positions are probed in list order
 *   (linear probing keeps entries of one hash in insertion order), each
 *   candidate is compared with the same upcase comparison, so of duplicate
 *   names the first still wins. A list holding a damaged vk gets no index:
 *   the linear search reports the damage exactly where it did before.
 * - Bounded memory: at most REGF_VINDEX_SLOTS lists per hive, and all the
 *   indexes of a hive take at most as many bytes as its hbins (8 bytes per
 *   value against at least 28 in the file). Past that, lookups stay linear.
 * - Lock-free and never freed while the hive is open: an index is built
 *   privately and published with a compare-and-swap into an empty slot, so
 *   threads that look up without the GIL only ever see whole indexes. They
 *   are freed with the hive (regf_vindex_free from regf_close).
 */
#define REGF_VINDEX_MIN   256u
#define REGF_VINDEX_SLOTS 64u
#define VINDEX_AHEAD      16u   /* inserts whose slot is prefetched ahead */

#if defined(__GNUC__) || defined(__clang__)
#define rf_prefetch_w(p) __builtin_prefetch((p), 1)
#else
#define rf_prefetch_w(p) ((void)(p))
#endif

typedef struct regf_vindex {
    uint32_t list;      /* value list cell offset and length: what it indexes */
    uint32_t count;
    uint32_t mask;      /* table size - 1 */
    uint32_t linear;    /* 1: the list holds a damaged vk: no table, search linearly */
    uint32_t pos[];     /* list position + 1 per slot, 0 = empty */
} regf_vindex;

struct regf_vcache {
    regf_vindex *slot[REGF_VINDEX_SLOTS];
    uint64_t     seen[REGF_VINDEX_SLOTS]; /* list << 32 | count of the last list searched
                                             linearly, by home slot: a hint, not a promise */
    uint64_t     bytes;     /* reserved by all the indexes */
};

#if defined(_MSC_VER)
static void *atomic_load_ptr(void *const *p)
{
    return _InterlockedCompareExchangePointer((void *volatile *)p, NULL, NULL);
}
static int atomic_publish(void **p, void *v) /* 1 if *p was NULL and is now v */
{
    return _InterlockedCompareExchangePointer((void *volatile *)p, v, NULL) == NULL;
}
static uint64_t atomic_add64(uint64_t *p, int64_t d)
{
    return (uint64_t)_InterlockedExchangeAdd64((volatile __int64 *)p, d) + (uint64_t)d;
}
static uint64_t atomic_swap64(uint64_t *p, uint64_t v)
{
    return (uint64_t)_InterlockedExchange64((volatile __int64 *)p, (__int64)v);
}
#else
static void *atomic_load_ptr(void *const *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static int atomic_publish(void **p, void *v)
{
    void *expected = NULL;
    return __atomic_compare_exchange_n(p, &expected, v, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static uint64_t atomic_add64(uint64_t *p, int64_t d)
{
    return __atomic_add_fetch(p, (uint64_t)d, __ATOMIC_RELAXED);
}
static uint64_t atomic_swap64(uint64_t *p, uint64_t v)
{
    return __atomic_exchange_n(p, v, __ATOMIC_RELAXED);
}
#endif

/* Names in one key often differ only in their last characters (value0001,
 * value0002...): the multiply-add leaves their hashes next to each other,
 * which linear probing turns into long clusters. A final avalanche
 * (MurmurHash3's fmix32) spreads them. */
static uint32_t hash_mix(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    return h ^ (h >> 16);
}

/* rf_upcase, with its ASCII case inline: most names are ASCII, and a call
 * per character was a third of building a 1,000,000-value index. */
static inline uint16_t upcase(uint16_t c)
{
    if (c < 0x80)
        return (uint16_t)(c - ((unsigned)(c - (unsigned)'a') < 26u ? 32 : 0));
    return rf_upcase(c);
}

uint32_t regf_name_hash(const uint8_t *p, uint32_t nbytes, int utf16)
{
    uint32_t hash = 0;
    if (utf16)
        for (uint32_t i = 0; i + 1 < nbytes; i += 2) hash = hash * 37u + upcase(rf_le16(p + i));
    else
        for (uint32_t i = 0; i < nbytes; i++) hash = hash * 37u + upcase(p[i]);
    return hash_mix(hash);
}

uint32_t regf_upper_hash(const uint16_t *upper, size_t nchars)
{
    uint32_t hash = 0;
    for (size_t i = 0; i < nchars; i++) hash = hash * 37u + upper[i];
    return hash_mix(hash);
}

void regf_vindex_free(regf_hive *h)
{
    if (!h->vcache) return;
    for (uint32_t i = 0; i < REGF_VINDEX_SLOTS; i++) free(h->vcache->slot[i]);
    free(h->vcache);
    h->vcache = NULL;
}

/* What a lookup allocates while it reads the mapping: an index being built
 * and not yet published, the hashes of its names, the budget it reserved.
 * It belongs to regf_value_find, which releases it after the guard: a fault
 * on a vanished page jumps out of the build (regf_guard.h). */
typedef struct vfind_mem {
    regf_vindex        *ix;
    uint32_t           *hashes;
    struct regf_vcache *cache;
    uint64_t            reserved;
} vfind_mem;

/* Builds the index of a list in a table of `slots` (a power of two); on a
 * damaged vk, a table-less marker (`linear`) instead; NULL when out of memory.
 * The index stays in mem->ix until its caller publishes it. */
static regf_vindex *vindex_build(const regf_hive *h, uint32_t list_off, const uint8_t *list, uint32_t n,
                                 size_t slots, vfind_mem *mem)
{
    regf_vindex *ix = mem->ix = calloc(1, sizeof(regf_vindex) + slots * sizeof(uint32_t));
    uint32_t *hashes = mem->hashes = malloc((size_t)n * sizeof *hashes); /* only while building */
    if (!ix || !hashes) {
        free(ix);
        free(hashes);
        mem->ix = NULL;
        mem->hashes = NULL;
        return NULL;
    }
    ix->list = list_off;
    ix->count = n;
    ix->mask = (uint32_t)(slots - 1);
    /* Two passes: the slots of a big table are cache (and TLB) misses, so
     * the hashes come first, and the inserts ask for slots a few ahead
     * (3-4x faster than one pass, on a key of 1,000,000 values). */
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *vk;
        uint32_t len, nlen;
        if (regf_vk_named(h, rf_le32(list + 4 * (size_t)i), &vk, &len, &nlen) != RF_OK) {
            /* the linear search reports the damage where it meets it */
            free(hashes);
            mem->hashes = NULL;
            regf_vindex *marker = realloc(ix, sizeof *ix);   /* the table is not needed */
            if (marker) ix = mem->ix = marker;
            ix->mask = 0;
            ix->linear = 1;
            return ix;
        }
        /* the name length as regf_vk_named checked it (the file may change) */
        hashes[i] = regf_name_hash(vk + VK_NAME, nlen, !(rf_le16(vk + VK_FLAGS) & VK_FLAG_COMP_NAME));
    }
    for (uint32_t i = 0; i < n; i++) {
        if (i + VINDEX_AHEAD < n) rf_prefetch_w(&ix->pos[hashes[i + VINDEX_AHEAD] & ix->mask]);
        uint32_t s = hashes[i] & ix->mask;
        while (ix->pos[s]) s = (s + 1) & ix->mask;
        ix->pos[s] = i + 1;
    }
    free(hashes);
    mem->hashes = NULL;
    return ix;
}

/* The index of the list (possibly a `linear` marker), built here on the
 * second lookup; NULL: search linearly this time. */
static const regf_vindex *vindex_of(regf_hive *h, uint32_t list_off, const uint8_t *list, uint32_t n,
                                    vfind_mem *mem)
{
    struct regf_vcache *c = atomic_load_ptr((void *const *)&h->vcache);
    if (!c) {
        struct regf_vcache *mine = calloc(1, sizeof *mine);
        if (!mine) return NULL;
        if (!atomic_publish((void **)&h->vcache, mine)) free(mine);
        c = atomic_load_ptr((void *const *)&h->vcache);
    }
    uint32_t first = (list_off >> 3) % REGF_VINDEX_SLOTS, at = first;
    do {   /* find it, or the first empty slot */
        const regf_vindex *ix = atomic_load_ptr((void *const *)&c->slot[at]);
        if (!ix) break;
        if (ix->list == list_off && ix->count == n) return ix;
        at = (at + 1) % REGF_VINDEX_SLOTS;
    } while (at != first);
    if (atomic_load_ptr((void *const *)&c->slot[at])) return NULL; /* every slot taken */
    uint64_t me = (uint64_t)list_off << 32 | n;
    if (atomic_swap64(&c->seen[first], me) != me) return NULL;    /* first lookup here */

    size_t slots = 16;
    while (slots < 2 * (size_t)n) slots <<= 1;
    size_t bytes = sizeof(regf_vindex) + slots * sizeof(uint32_t);
    if (atomic_add64(&c->bytes, (int64_t)bytes) > h->bins_len) {   /* over budget: stay linear */
        atomic_add64(&c->bytes, -(int64_t)bytes);
        return NULL;
    }
    mem->cache = c;
    mem->reserved = bytes;     /* given back by regf_value_find unless published */
    regf_vindex *ix = vindex_build(h, list_off, list, n, slots, mem);
    if (!ix) return NULL;
    /* publish into the empty slot found above, or the next one still empty */
    for (uint32_t tries = 0; tries < REGF_VINDEX_SLOTS; tries++, at = (at + 1) % REGF_VINDEX_SLOTS) {
        if (atomic_publish((void **)&c->slot[at], ix)) {
            mem->ix = NULL;    /* the hive's now: freed by regf_close */
            mem->reserved = 0;
            return ix;
        }
        const regf_vindex *other = atomic_load_ptr((void *const *)&c->slot[at]);
        if (other->list == list_off && other->count == n) return other; /* another thread was first */
    }
    return NULL;
}

static int vk_named(const regf_hive *h, uint32_t off, const uint16_t *upper, size_t nchars, rf_status *st)
{
    const uint8_t *vk;
    uint32_t len, nlen;
    if ((*st = regf_vk_named(h, off, &vk, &len, &nlen)) != RF_OK) return 0;
    return regf_name_equals(vk + VK_NAME, nlen, !(rf_le16(vk + VK_FLAGS) & VK_FLAG_COMP_NAME), upper, nchars);
}

static rf_status find_body(regf_hive *h, rf_key k, const uint16_t *name, size_t nchars, rf_value *out,
                           vfind_mem *mem)
{
    const uint8_t *list;
    uint32_t n;
    uint16_t small[256], *upper = small;
    *out = 0;
    if (nchars > 16383)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "value name of %zu chars (16383 allowed)", nchars);
    rf_status st = regf_value_list(h, k, &list, &n);
    if (st) return st;
    uint16_t big[16383];
    if (nchars > 256) upper = big;
    for (size_t i = 0; i < nchars; i++) upper[i] = rf_upcase(name[i]);

    const regf_vindex *ix = n >= REGF_VINDEX_MIN
        ? vindex_of(h, (uint32_t)(list - h->bins) - 4, list, n, mem) : NULL;
    if (ix && !ix->linear) {
        uint32_t hv = regf_upper_hash(upper, nchars);
        for (uint32_t s = hv & ix->mask; ix->pos[s]; s = (s + 1) & ix->mask) {
            uint32_t off = rf_le32(list + 4 * (size_t)(ix->pos[s] - 1));
            if (vk_named(h, off, upper, nchars, &st)) {
                *out = off;
                return RF_OK;
            }
            if (st) return st;
        }
    } else {
        for (uint32_t i = 0; i < n; i++) {
            uint32_t off = rf_le32(list + 4 * (size_t)i);
            if (vk_named(h, off, upper, nchars, &st)) {
                *out = off;
                return RF_OK;
            }
            if (st) return st;
        }
    }
    return rfi_fail(RF_E_NOT_FOUND, RF_NO_OFFSET, 0, "value not found");
}

static rf_status find_guarded(regf_hive *h, rf_key k, const uint16_t *name, size_t nchars, rf_value *out,
                              vfind_mem *mem)
{
    rf_status st = RF_OK;
    REGF_GUARD_BEGIN(h->map, h->size)
        st = find_body(h, k, name, nchars, out, mem);
    REGF_GUARD_END(st)
    return st;
}

/* Guards itself (regf_guard.h): an index being built is freed here, after
 * the guard, even when a vanished page ended the build. */
rf_status regf_value_find(rf_hive *base, rf_key k, const uint16_t *name, size_t nchars, rf_value *out)
{
    vfind_mem mem = { NULL, NULL, NULL, 0 };
    *out = 0;
    rf_status st = find_guarded((regf_hive *)base, k, name, nchars, out, &mem);
    free(mem.ix);
    free(mem.hashes);
    if (mem.reserved) atomic_add64(&mem.cache->bytes, -(int64_t)mem.reserved);
    return st;
}

/* ---- one record's slack (rf_key_slack, rf_value_slack) -------------------- */

/* The same measure as mark(): `used` bytes of the payload hold the record. */
static void slack_of(const regf_hive *h, rf_slack *s, const uint8_t *payload, uint32_t len, uint64_t used,
                     uint32_t kind)
{
    if (used > len) used = len;
    s->cell = regf_file_off((uint32_t)(payload - 4 - h->bins));
    s->offset = s->cell + 4 + used;
    s->length = (uint32_t)(len - used);
    s->kind = kind;
}

static rf_status record_slack_body(const regf_hive *h, uint64_t token, int is_value, rf_slack out[2])
{
    const uint8_t *p, *cell;
    uint32_t len, nlen, clen;
    rf_status st;
    if (token > UINT32_MAX)
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "0x%llx is not a %s token",
                        (unsigned long long)token, is_value ? "value" : "key");
    if (!is_value) {
        if ((st = regf_nk_named(h, (uint32_t)token, &p, &len, &nlen)) != RF_OK) return st;
        slack_of(h, &out[0], p, len, (uint64_t)NK_NAME + nlen, RF_CELL_NK);
        return RF_OK;
    }
    if ((st = regf_vk_named(h, token, &p, &len, &nlen)) != RF_OK) return st;
    slack_of(h, &out[0], p, len, (uint64_t)VK_NAME + nlen, RF_CELL_VK);
    /* the data cell, as regf_locate found it (the vk's fields read once) */
    regf_data_loc d;
    if ((st = regf_locate(h, (uint32_t)token, p, &d)) != RF_OK) return st;
    if ((d.flags & (RF_VALUE_INLINE | RF_VALUE_BIG_DATA)) || d.len == 0 || !d.ptr) return RF_OK;
    if ((st = regf_cell(h, (uint32_t)(d.ptr - 4 - h->bins), "value data", &cell, &clen)) != RF_OK) return st;
    slack_of(h, &out[1], cell, clen, d.len, RF_CELL_DATA);
    return RF_OK;
}

rf_status regf_record_slack(rf_hive *base, uint64_t token, int is_value, rf_slack out[2])
{
    const regf_hive *h = (const regf_hive *)base;
    rf_status st = RF_OK;
    REGF_GUARD_BEGIN(h->map, h->size)
        st = record_slack_body(h, token, is_value, out);
    REGF_GUARD_END(st)
    return st;
}

rf_status regf_token_offset(rf_hive *base, uint64_t token, uint64_t *file_offset)
{
    (void)base;
    if (token > UINT32_MAX)
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "0x%llx is not a key or value token",
                        (unsigned long long)token);
    *file_offset = regf_file_off((uint32_t)token);
    return RF_OK;
}
