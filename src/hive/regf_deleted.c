/*
 * regf_deleted.c — what deleted keys and values leave behind, and slack.
 *
 * Windows frees a deleted key's or value's cells by flipping the sign of
 * their size and merges each freed cell with free neighbours (HvFreeCell),
 * so a deleted nk or vk usually sits *inside* a larger free cell, at the
 * position where its own cell began; the merged cell's size field is left
 * in place. Self-healing (CmpCheckRegistry2 yanking a key from its parent's
 * list) and leaks leave allocated cells that nothing references. So we carve:
 *
 *   1. a reachability pass marks every cell reachable from the root (nk,
 *      subkey lists, value lists, vk, data, db + segment list + segments,
 *      sk, class) and notes each one's slack;
 *   2. every 8-aligned position of every free cell, of every allocated but
 *      unmarked cell, of every marked cell's slack and of the bytes after
 *      the last hbin is tried as the start of a former cell holding an nk or
 *      vk (cells are 8-aligned, so a record's signature is at 4 mod 8);
 *   3. a candidate must pass the checks a live record passes (signature,
 *      name inside its area, at most 255 characters for a key as Windows
 *      allows) plus yarp's plausibility rules (msuhanov/yarp
 *      RegistryRecover.py ValidateKey/ValidateValue: at most 5 NULs and no
 *      undecodable UTF-16 in the name, no backslash in a key name, subkey and
 *      value counts, inline data <= 4 bytes, data offset 8-aligned). A
 *      position other than the start of the cell searched must hold a sane
 *      former size field (yarp does not ask; Windows never erases them, and
 *      it keeps random bytes out). Timestamps, names and a live parent only
 *      move the confidence score, as before;
 *   4. a value's data (and big data's db, segment list and segments) is
 *      located through the cells around it: in a free or unreferenced area
 *      that fits it, it is likely intact (state 2); in a cell a live record
 *      uses, it was reused (3); otherwise lost (4).
 *
 * The file may change under the mapping while it is open: no size or length
 * read here is trusted past the area it was found in, and areas are clamped
 * to the hbins and the mapping every time they are read.
 */
#include <stdlib.h>
#include "hive/regf_internal.h"
#include "hive/regf_guard.h"

/* yarp RegistryRecover.py: MAX_PLAUSIBLE_SUBKEYS_COUNT, _VALUES_COUNT, _NULL_COUNT */
#define PLAUSIBLE_SUBKEYS 10000u
#define PLAUSIBLE_VALUES  1000u
#define PLAUSIBLE_NULS    5u
/* Windows: key names of at most 255 characters (REG_MAX_KEY_NAME_LENGTH),
 * value names of at most 16383. */
#define MAX_KEY_NAME_CHARS   255u
#define MAX_VALUE_NAME_CHARS 16383u

/* 1990-01-01 .. 2100-01-01 as FILETIME: outside that a timestamp is noise. */
#define FT_1990 119600064000000000ULL
#define FT_2100 159313248000000000ULL

static int bit_get(const uint64_t *bits, uint64_t i) { return (int)((bits[i >> 6] >> (i & 63)) & 1); }
static void bit_set(uint64_t *bits, uint64_t i) { bits[i >> 6] |= (uint64_t)1 << (i & 63); }

#if defined(_MSC_VER)
static inline unsigned clz64(uint64_t x) { unsigned long i; _BitScanReverse64(&i, x); return 63u - (unsigned)i; }
#else
static inline unsigned clz64(uint64_t x) { return (unsigned)__builtin_clzll(x); }
#endif

/* The extent of the cell starting at `off` (a bitmap bit): its absolute size,
 * or 0 when the size field, read now (once, by regf_cell_at, which bounds it
 * by the hbins), no longer makes sense (the file changed since the open-time
 * walk). *allocated comes from that same read. */
static uint32_t cell_now(const regf_hive *h, uint64_t off, int *allocated)
{
    const uint8_t *p;
    uint32_t len;
    *allocated = 0;
    if (!regf_cell_at(h, off, &p, &len, allocated) || ((len + 4) & 7)) return 0;
    return len + 4;
}

rf_status regf_cell_any(rf_hive *base, uint64_t file_offset, const uint8_t **payload, size_t *len,
                        int *allocated)
{
    const regf_hive *h = (const regf_hive *)base;
    const uint8_t *p;
    uint32_t n;
    *payload = NULL;
    *len = 0;
    *allocated = 0;
    uint64_t off = file_offset - REGF_BASE_BLOCK;
    if (file_offset < REGF_BASE_BLOCK || !regf_is_cell(h, off))
        return rfi_fail(RF_E_NOT_FOUND, file_offset, 0, "no cell starts at 0x%llx",
                        (unsigned long long)file_offset);
    /* the size and the sign from one read, bounded now: the open-time walk
     * checked them, but the file may have been written since */
    if (!regf_cell_at(h, off, &p, &n, allocated))
        return rfi_fail(RF_E_CORRUPT, file_offset, 0,
                        "cell at 0x%llx: its size no longer fits the hive (the file changed after it was opened?)",
                        (unsigned long long)file_offset);
    *payload = p;
    *len = n;
    return RF_OK;
}

/* ---- 1. reachability ------------------------------------------------------ */

typedef struct reach {
    const regf_hive *h;
    uint64_t *refd;           /* bit per 8-byte slot: a referenced cell starts here */
    uint64_t *live;           /* bit per 8-byte slot: an nk or vk read as what it is (a
                                 cell can be referenced first as something else: damage) */
    uint32_t *stack;          /* nk offsets still to expand */
    size_t    top, stack_cap;
    rf_slack *slack;          /* slack of referenced cells, when wanted */
    size_t    n_slack, slack_cap;
    uint32_t  min_slack;      /* 0: slack not wanted */
    int       oom;
} reach;

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 1;
    size_t nc = *cap ? *cap : 256;
    while (nc < need) nc *= 2;
    void *q = realloc(*arr, nc * elem);
    if (!q) return 0;
    *arr = q;
    *cap = nc;
    return 1;
}

/* An allocated cell at `off` with its payload, checked now; 0 otherwise.
 * Quiet: unlike regf_cell it records no error (damage is normal here). */
static int alloc_cell(const regf_hive *h, uint32_t off, const uint8_t **p, uint32_t *len)
{
    int allocated;
    return regf_cell_at(h, off, p, len, &allocated) && allocated;
}

/* Marks the allocated cell at `off` as referenced, `used` of its payload
 * bytes holding its record; 1 when it was not marked before. */
static int mark(reach *r, uint32_t off, uint32_t kind, uint64_t used)
{
    const uint8_t *p;
    uint32_t len;
    if (!alloc_cell(r->h, off, &p, &len) || bit_get(r->refd, off >> 3)) return 0;
    bit_set(r->refd, off >> 3);
    if (used > len) used = len;
    if (r->min_slack && len - used >= r->min_slack) {
        if (!grow((void **)&r->slack, &r->slack_cap, r->n_slack + 1, sizeof *r->slack)) {
            r->oom = 1;
            return 1;
        }
        rf_slack *s = &r->slack[r->n_slack++];
        s->cell = regf_file_off(off);
        s->offset = regf_file_off(off) + 4 + used;
        s->length = (uint32_t)(len - used);
        s->kind = kind;
    }
    return 1;
}

static void mark_value(reach *r, uint32_t voff)
{
    const regf_hive *h = r->h;
    const uint8_t *vk, *p, *list;
    uint32_t len, plen, llen;
    if (!alloc_cell(h, voff, &vk, &len) || len < VK_NAME || vk[0] != 'v' || vk[1] != 'k') return;
    /* followed once as a vk, even when its cell was referenced before as
     * something else (its data would otherwise count as unreferenced) */
    if (bit_get(r->live, voff >> 3)) return;
    bit_set(r->live, voff >> 3);
    mark(r, voff, RF_CELL_VK, (uint64_t)VK_NAME + rf_le16(vk + VK_NAME_LEN));
    uint32_t raw = rf_le32(vk + VK_DATA_LEN), doff = rf_le32(vk + VK_DATA), dlen = raw & ~VK_DATA_INLINE;
    if ((raw & VK_DATA_INLINE) || dlen == 0) return;
    if (h->minor >= 4 && dlen > REGF_BIG_SEGMENT && alloc_cell(h, doff, &p, &plen) && plen >= 8 &&
        p[0] == 'd' && p[1] == 'b') {
        /* yarp RegistryRecords.BigData: the db record's slack starts at byte 8 */
        mark(r, doff, RF_CELL_DB, 8);
        uint32_t n = rf_le16(p + 2), loff = rf_le32(p + 4);
        if (!alloc_cell(h, loff, &list, &llen)) return;
        mark(r, loff, RF_CELL_DB_LIST, (uint64_t)n * 4);
        uint64_t left = dlen;
        for (uint32_t i = 0; i < n && (uint64_t)i * 4 + 4 <= llen && left; i++) {
            uint32_t take = left < REGF_BIG_SEGMENT ? (uint32_t)left : REGF_BIG_SEGMENT;
            mark(r, rf_le32(list + 4 * (size_t)i), RF_CELL_DB_SEGMENT, take);
            left -= take;
        }
        return;
    }
    mark(r, doff, RF_CELL_DATA, dlen);
}

static void push_child(reach *r, uint32_t child)
{
    const uint8_t *nk;
    uint32_t len;
    if (!alloc_cell(r->h, child, &nk, &len) || len < NK_NAME || nk[0] != 'n' || nk[1] != 'k') return;
    /* expanded once as a key, even when its cell was referenced before as
     * something else (a db list naming it: its subtree would count as
     * deleted, live as it is) */
    if (bit_get(r->live, child >> 3)) return;
    bit_set(r->live, child >> 3);
    mark(r, child, RF_CELL_NK, (uint64_t)NK_NAME + rf_le16(nk + NK_NAME_LEN));
    if (!grow((void **)&r->stack, &r->stack_cap, r->top + 1, sizeof *r->stack)) {
        r->oom = 1;
        return;
    }
    r->stack[r->top++] = child;
}

static void mark_leaf(reach *r, uint32_t off)
{
    const uint8_t *p;
    uint32_t len;
    if (!alloc_cell(r->h, off, &p, &len) || len < 4 || p[0] != 'l' ||
        (p[1] != 'f' && p[1] != 'h' && p[1] != 'i'))
        return;
    uint32_t stride = p[1] == 'i' ? 4 : 8, n = rf_le16(p + 2);
    if (!mark(r, off, RF_CELL_SUBKEY_LIST, 4 + (uint64_t)n * stride)) return;
    for (uint32_t i = 0; i < n && 4 + (uint64_t)(i + 1) * stride <= len; i++)
        push_child(r, rf_le32(p + 4 + (size_t)i * stride));
}

static void expand_key(reach *r, uint32_t key)
{
    const regf_hive *h = r->h;
    const uint8_t *nk, *p;
    uint32_t len, plen;
    if (!alloc_cell(h, key, &nk, &len) || len < NK_NAME) return;
    uint32_t class_len = rf_le16(nk + NK_CLASS_LEN);
    if (class_len) mark(r, rf_le32(nk + NK_CLASS), RF_CELL_CLASS, class_len);
    /* sk: this key's, then the whole flink chain (every sk of the hive is on it) */
    uint32_t sk = rf_le32(nk + NK_SECURITY);
    while (alloc_cell(h, sk, &p, &plen) && plen >= 0x14 && p[0] == 's' && p[1] == 'k' &&
           mark(r, sk, RF_CELL_SK, 0x14 + (uint64_t)rf_le32(p + 0x10)))
        sk = rf_le32(p + 4);
    uint32_t nv = rf_le32(nk + NK_N_VALUES), vlist = rf_le32(nk + NK_VALUES);
    if (nv && alloc_cell(h, vlist, &p, &plen)) {
        mark(r, vlist, RF_CELL_VALUE_LIST, (uint64_t)nv * 4);
        for (uint32_t i = 0; i < nv && (uint64_t)i * 4 + 4 <= plen; i++) mark_value(r, rf_le32(p + 4 * (size_t)i));
    }
    uint32_t ns = rf_le32(nk + NK_N_SUBKEYS), slist = rf_le32(nk + NK_SUBKEYS);
    if (!ns || !alloc_cell(h, slist, &p, &plen) || plen < 4) return;
    if (p[0] == 'r' && p[1] == 'i') {
        uint32_t n = rf_le16(p + 2);
        if (!mark(r, slist, RF_CELL_SUBKEY_LIST, 4 + (uint64_t)n * 4)) return;
        for (uint32_t i = 0; i < n && 4 + (uint64_t)(i + 1) * 4 <= plen; i++) mark_leaf(r, rf_le32(p + 4 + 4 * (size_t)i));
    } else {
        mark_leaf(r, slist);
    }
}

/* Marks every cell reachable from the root. Without a usable root nothing is
 * marked, and the caller must not take "unmarked" for "unreferenced". *r
 * (zeroed by the caller) belongs to the caller, who frees it with reach_free
 * after the guard: a fault on a vanished page jumps out of here. */
static rf_status reach_all(reach *r, const regf_hive *h, uint32_t min_slack)
{
    r->h = h;
    r->min_slack = min_slack;
    r->refd = calloc((size_t)(h->bins_len / 512) + 1, sizeof(uint64_t));
    r->live = calloc((size_t)(h->bins_len / 512) + 1, sizeof(uint64_t));
    if (!r->refd || !r->live) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the reachability map");
    if (h->root_ok) push_child(r, h->root);
    while (r->top && !r->oom) expand_key(r, r->stack[--r->top]);
    if (r->oom) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the reachability walk");
    return RF_OK;
}

static void reach_free(reach *r)
{
    free(r->refd);
    free(r->live);
    free(r->stack);
    free(r->slack);
}

/* A slack entry of a live nk or vk recorded under another reading of its
 * cell (the first reference to it won: a damaged db naming the nk as its
 * segment list, say): that "slack" is the live record's own bytes. */
static int slack_misread(const reach *r, const rf_slack *s)
{
    return s->kind != RF_CELL_NK && s->kind != RF_CELL_VK &&
           bit_get(r->live, (s->cell - REGF_BASE_BLOCK) >> 3);
}

static int slack_order(const void *a, const void *b)
{
    uint64_t x = ((const rf_slack *)a)->cell, y = ((const rf_slack *)b)->cell;
    return x < y ? -1 : x > y;
}

/* ---- 2. areas: where an offset lies --------------------------------------- */

enum { AREA_NONE, AREA_FREE, AREA_UNREF, AREA_REFD, AREA_REMNANT };

/* Bytes after the last hbin that the mapping holds (hbins-relative end). */
static uint64_t remnant_end(const regf_hive *h)
{
    uint64_t all = h->size > REGF_BASE_BLOCK ? h->size - REGF_BASE_BLOCK : 0;
    return all > h->bins_len ? all & ~(uint64_t)7 : h->bins_len;
}

/* The cell start at or before `off` among the `words` bitmap words (512
 * bytes of hbins each) ending at off's, or -1. */
static int64_t cell_before_within(const regf_hive *h, uint64_t off, size_t words)
{
    uint64_t bit = off >> 3;
    size_t w = (size_t)(bit >> 6), stop = w >= words ? w - words + 1 : 0;
    uint64_t word = h->cell_start[w] & (((uint64_t)2 << (bit & 63)) - 1); /* bits <= bit */
    while (!word) {
        if (w == stop) return -1;
        word = h->cell_start[--w];
    }
    return (int64_t)((((uint64_t)w << 6) + 63 - clz64(word)) << 3);
}

/* The cell start at or before `off`, or -1. */
static int64_t cell_before(const regf_hive *h, uint64_t off)
{
    return cell_before_within(h, off, SIZE_MAX);
}

static int inside_cell_within(const regf_hive *h, uint64_t off, size_t words)
{
    int allocated;
    if (off >= h->bins_len) return 0;
    int64_t c = cell_before_within(h, off, words);
    uint32_t size = c < 0 ? 0 : cell_now(h, (uint64_t)c, &allocated);
    return size && off < (uint64_t)c + size;
}

int regf_inside_cell(const regf_hive *h, uint64_t off)
{
    return inside_cell_within(h, off, SIZE_MAX);
}

/* 64 words: 32 KiB, twice a big-data segment's cell. */
int regf_inside_cell_near(const regf_hive *h, uint64_t off)
{
    return inside_cell_within(h, off, 64);
}

/*
 * What the 8-aligned hbins offset `off` (where a record points: a list, a
 * data cell, a db...) lies in, and up to where a former cell starting there
 * can reach (*end, hbins-relative). A cell start bounds it by its own size;
 * inside a free or unreferenced cell, the size field Windows left when it
 * merged the former cell must be sane, and bounds it (with the enclosing cell). `refd` may be
 * NULL (no reachability known): allocated cells then count as unreferenced.
 */
static int area_of(const regf_hive *h, const uint64_t *refd, uint64_t off, uint64_t *end)
{
    *end = 0;
    if (off & 7) return AREA_NONE;
    if (off >= h->bins_len) {
        uint64_t rend = remnant_end(h);
        if (off >= rend || rend - off < 8) return AREA_NONE;
        int32_t raw = (int32_t)regf_once32(h->bins + off);
        uint64_t fs = raw < 0 ? (uint64_t)(-(int64_t)raw) : (uint64_t)raw;
        if (fs < 8 || (fs & 7)) return AREA_NONE;
        *end = fs < rend - off ? off + fs : rend;
        return AREA_REMNANT;
    }
    int64_t c = cell_before(h, off);
    if (c < 0) return AREA_NONE;
    int allocated;
    uint32_t csize = cell_now(h, (uint64_t)c, &allocated);
    if (!csize || off >= (uint64_t)c + csize) return AREA_NONE; /* e.g. an hbin header */
    int kind = !allocated ? AREA_FREE : refd && bit_get(refd, (uint64_t)c >> 3) ? AREA_REFD : AREA_UNREF;
    uint64_t cend = (uint64_t)c + csize;
    if ((uint64_t)c == off || kind == AREA_REFD) {
        /* a live cell's interior holds that cell's data now: reused either way */
        *end = cend;
        return kind;
    }
    if (cend - off < 8) return AREA_NONE;
    int32_t raw = (int32_t)regf_once32(h->bins + off);
    uint64_t fs = raw < 0 ? (uint64_t)(-(int64_t)raw) : (uint64_t)raw;
    if (fs < 8 || (fs & 7)) return AREA_NONE;
    *end = fs < cend - off ? off + fs : cend;   /* it may have run into today's next cell */
    return kind;
}

/* ---- 3. records ---------------------------------------------------------- */

/* Names we would expect from Windows: no control characters. */
static int printable(const uint8_t *p, uint32_t nbytes, int utf16)
{
    if (utf16) {
        for (uint32_t i = 0; i + 1 < nbytes; i += 2)
            if (rf_le16(p + i) < 0x20) return 0;
        return 1;
    }
    for (uint32_t i = 0; i < nbytes; i++)
        if (p[i] < 0x20 || p[i] == 0x7F) return 0;
    return 1;
}

/* yarp's name rules (ValidateKey/ValidateValue): decodable UTF-16 (even
 * length, no unpaired surrogate: yarp decodes with errors="replace" and
 * rejects U+FFFD), at most 5 NULs; key names also take no backslash
 * (Registry.RegistryKey.name). */
static int plausible_name(const uint8_t *p, uint32_t nbytes, int utf16, int key)
{
    uint32_t nuls = 0;
    if (!utf16) {
        for (uint32_t i = 0; i < nbytes; i++) {
            nuls += p[i] == 0;
            if (key && p[i] == '\\') return 0;
        }
        return nuls <= PLAUSIBLE_NULS;
    }
    if (nbytes & 1) return 0;
    for (uint32_t i = 0; i < nbytes; i += 2) {
        uint16_t c = rf_le16(p + i);
        nuls += c == 0;
        if (key && c == '\\') return 0;
        if (c >= 0xD800 && c <= 0xDBFF) {
            if (i + 3 >= nbytes) return 0;
            uint16_t d = rf_le16(p + i + 2);
            if (d < 0xDC00 || d > 0xDFFF) return 0;
            i += 2;
        } else if (c >= 0xDC00 && c <= 0xDFFF) {
            return 0;
        }
    }
    return nuls <= PLAUSIBLE_NULS;
}

/* An nk at hbins offset q (its signature) with `avail` bytes up to the end of
 * its area; fills d and returns the bytes the record uses, or 0. */
static uint32_t carve_nk(const regf_hive *h, uint64_t q, uint64_t avail, rf_deleted *d)
{
    const uint8_t *p = h->bins + q;
    if (avail < NK_NAME + 1 || p[0] != 'n' || p[1] != 'k') return 0;
    uint32_t name_len = regf_once16(p + NK_NAME_LEN), flags = rf_le16(p + NK_FLAGS);
    int utf16 = !(flags & NK_FLAG_COMP_NAME);
    if (name_len == 0 || name_len > avail - NK_NAME) return 0;
    if (name_len > (utf16 ? 2 : 1) * MAX_KEY_NAME_CHARS) return 0;
    if (!plausible_name(p + NK_NAME, name_len, utf16, 1)) return 0;
    uint32_t n_sub = rf_le32(p + NK_N_SUBKEYS), n_vol = rf_le32(p + NK_N_SUBKEYS + 4);
    uint32_t n_val = rf_le32(p + NK_N_VALUES), parent = rf_le32(p + NK_PARENT);
    if (n_sub > PLAUSIBLE_SUBKEYS || n_vol > PLAUSIBLE_SUBKEYS || n_val > PLAUSIBLE_VALUES) return 0;
    /* Offsets are not checked: yarp keeps a key whose lists are gone, and so
     * do we (its parent only moves the score). */

    memset(d, 0, sizeof *d);
    d->kind = RF_DELETED_KEY;
    d->offset = regf_file_pos(q) - 4;
    d->name.ptr = p + NK_NAME;
    d->name.nbytes = name_len;
    d->name.utf16 = utf16;
    d->last_write = rf_le64(p + NK_LAST_WRITE);
    d->n_values = n_val;
    d->parent = RF_NO_OFFSET;
    d->data_offset = RF_NO_OFFSET;
    d->owner = RF_NO_OFFSET;
    d->token = d->offset - REGF_BASE_BLOCK;           /* a cell's token is its offset in the hbins */
    d->parent_token = parent == REGF_NONE ? 0 : parent;
    uint32_t conf = 40;
    const uint8_t *pnk;
    uint32_t plen;
    if (alloc_cell(h, parent, &pnk, &plen) && plen >= NK_NAME && pnk[0] == 'n' && pnk[1] == 'k') {
        d->parent = regf_file_off(parent);
        conf += 25;
    }
    if (printable(p + NK_NAME, name_len, utf16)) conf += 20;
    if (d->last_write >= FT_1990 && d->last_write < FT_2100) conf += 15;
    d->confidence = conf;
    return NK_NAME + name_len;
}

/* Where a carved value's data is and what it is worth (rf_deleted.data_state):
 * 2 when every piece lies in free or unreferenced space that fits it, 3 when
 * one lies in a cell a live record uses, 4 when one cannot be found. For big
 * data the db record, its segment list and each segment are checked. With
 * `dst`, the pieces are copied there as they are checked: each offset is read
 * once and bounded right before its bytes are used.
 *
 * `segments_left` (a carve pass's; NULL when one record is read) bounds the
 * segment entries all of the pass's records may check together: 5 (located,
 * not checked) past it. Each record bounded alone, vk records of 32 bytes
 * naming one list still cost O(file size) each: O(size^2) for the pass
 * (23 s for a 32 MB file). */
static uint32_t locate_data(const regf_hive *h, const uint64_t *refd, uint32_t raw, uint32_t doff,
                            uint64_t *data_offset, uint32_t *flags, uint8_t *dst, uint64_t *segments_left)
{
    uint32_t len = raw & ~VK_DATA_INLINE;
    uint64_t end;
    *data_offset = RF_NO_OFFSET;
    *flags = 0;
    int a = area_of(h, refd, doff, &end);
    if (a == AREA_NONE) return 4;
    int reused = a == AREA_REFD;
    if (!(h->minor >= 4 && len > REGF_BIG_SEGMENT)) {
        if (end - doff - 4 < len) return 4;
        *data_offset = regf_file_off(doff) + 4;
        if (dst) memcpy(dst, h->bins + doff + 4, len);
        return reused ? 3 : 2;
    }
    *flags = RF_VALUE_BIG_DATA;
    /* more data than the file holds cannot be found, as a live read refuses
     * a big value over the hbins' size (regf_locate); unbounded, each carved
     * record walked a segment list of up to 65,535 entries: 32-byte records
     * naming one such list cost ~15 s per MB of file */
    if ((uint64_t)len > h->size) return 4;
    const uint8_t *db = h->bins + doff + 4;
    if (end - doff - 4 < 8 || db[0] != 'd' || db[1] != 'b') return 4;
    uint32_t n = regf_once16(db + 2), loff = rf_le32(db + 4);
    uint64_t need = ((uint64_t)len + REGF_BIG_SEGMENT - 1) / REGF_BIG_SEGMENT;
    if (n < need || (a = area_of(h, refd, loff, &end)) == AREA_NONE || end - loff - 4 < need * 4) return 4;
    /* charged one by one for the entries the loop below checks */
    if (segments_left && need > *segments_left) return 5;
    reused |= a == AREA_REFD;
    const uint8_t *list = h->bins + loff + 4;
    uint64_t done = 0;
    for (uint64_t i = 0; i < need; i++) {
        if (segments_left) (*segments_left)--;
        uint32_t soff = rf_le32(list + 4 * i);
        uint32_t take = len - done < REGF_BIG_SEGMENT ? (uint32_t)(len - done) : REGF_BIG_SEGMENT;
        if ((a = area_of(h, refd, soff, &end)) == AREA_NONE || end - soff - 4 < take) return 4;
        reused |= a == AREA_REFD;
        if (dst) memcpy(dst + done, h->bins + soff + 4, take);
        done += take;
    }
    return reused ? 3 : 2;
}

static uint32_t carve_vk(const regf_hive *h, const uint64_t *refd, uint64_t q, uint64_t avail, rf_deleted *d,
                         uint64_t *segments_left)
{
    const uint8_t *p = h->bins + q;
    if (avail < VK_NAME || p[0] != 'v' || p[1] != 'k') return 0;
    uint32_t name_len = regf_once16(p + VK_NAME_LEN);
    int utf16 = !(rf_le16(p + VK_FLAGS) & VK_FLAG_COMP_NAME);
    if (name_len > avail - VK_NAME || name_len > (utf16 ? 2 : 1) * MAX_VALUE_NAME_CHARS) return 0;
    if (!plausible_name(p + VK_NAME, name_len, utf16, 0)) return 0;
    uint32_t raw = regf_once32(p + VK_DATA_LEN), doff = rf_le32(p + VK_DATA), len = raw & ~VK_DATA_INLINE;
    /* yarp ValidateValue: inline data fits the 4-byte field; a data offset is 8-aligned */
    if ((raw & VK_DATA_INLINE) && len > 4) return 0;
    if (!(raw & VK_DATA_INLINE) && len && ((doff & 7) || doff < 8)) return 0;

    memset(d, 0, sizeof *d);
    d->kind = RF_DELETED_VALUE;
    d->offset = regf_file_pos(q) - 4;
    d->name.ptr = p + VK_NAME;
    d->name.nbytes = name_len;
    d->name.utf16 = utf16;
    d->type = rf_le32(p + VK_TYPE);
    d->parent = RF_NO_OFFSET;
    d->data_offset = RF_NO_OFFSET;
    d->owner = RF_NO_OFFSET;
    d->token = d->offset - REGF_BASE_BLOCK;
    d->data_len = len;
    uint32_t conf = 45;
    if (printable(p + VK_NAME, name_len, utf16)) conf += 20;
    if (raw & VK_DATA_INLINE) {
        d->data_state = 1;
        d->data_offset = regf_file_pos(q) + VK_DATA;
        conf += 35;
    } else if (len == 0) {
        d->data_state = 0;
        conf += 35;
    } else {
        d->data_state = locate_data(h, refd, raw, doff, &d->data_offset, &d->data_flags, NULL, segments_left);
        conf += d->data_state == 2 ? 35 : d->data_state == 3 ? 5 : 0;
    }
    d->confidence = conf;
    return VK_NAME + name_len;
}

typedef struct carve_run {
    const regf_hive *h;
    const uint64_t  *refd;     /* NULL: reachability unknown */
    rf_deleted      *recs;
    size_t           n, cap;
    int              oom;
    /* segment entries the pass's records may still check (locate_data): one
     * per 4-byte word of the file, twice over. Each is a list entry in the
     * file, so a real hive's deleted big values, even two records of one,
     * need far fewer. */
    uint64_t         segments_left;
} carve_run;

/* Tries every former-cell position p (8-aligned, p + 4 >= from, before
 * `end`): a record's signature sits at p + 4. A position other than the start
 * of the cell being searched must still hold the size field Windows left
 * there when it merged that cell into its neighbour (a sane size); it and
 * the area bound the record. After a record the search goes on past its
 * name (yarp RegistryRecover.Scanner.process_cell). */
static void carve_area(carve_run *c, uint64_t from, uint64_t end, int from_is_cell, uint32_t source)
{
    const regf_hive *h = c->h;
    rf_deleted d;
    uint64_t p = (from - 4 + 7) & ~(uint64_t)7;
    while (p + 8 <= end) {
        uint64_t q = p + 4, bound = end;
        if (!(from_is_cell && q == from)) {
            int32_t raw = (int32_t)regf_once32(h->bins + p);
            uint64_t fs = raw < 0 ? (uint64_t)(-(int64_t)raw) : (uint64_t)raw;
            if (fs < 8 || (fs & 7)) {
                p += 8;
                continue;
            }
            /* a former cell may have run into what is now the next cell */
            if (fs < end - p) bound = p + fs;
        }
        uint32_t used = carve_nk(h, q, bound - q, &d);
        if (!used) used = carve_vk(h, c->refd, q, bound - q, &d, &c->segments_left);
        if (!used) {
            p += 8;
            continue;
        }
        d.source = source;
        if (!grow((void **)&c->recs, &c->cap, c->n + 1, sizeof *c->recs)) {
            c->oom = 1;
            return;
        }
        c->recs[c->n++] = d;
        p = (q + used - 4 + 7) & ~(uint64_t)7;
    }
}

static int by_offset(const void *key, const void *elem)
{
    uint64_t k = *(const uint64_t *)key, o = ((const rf_deleted *)elem)->offset;
    return k < o ? -1 : k > o;
}

/* Links each carved value to the first carved key (file order) whose value
 * list, where it still lies in free or unreferenced space, names it. */
static void link_values(carve_run *c)
{
    const regf_hive *h = c->h;
    for (size_t i = 0; i < c->n; i++) {
        const rf_deleted *k = &c->recs[i];
        if (k->kind != RF_DELETED_KEY || !k->n_values) continue;
        const uint8_t *nk = h->bins + (k->offset - REGF_BASE_BLOCK) + 4;
        uint32_t vlist = rf_le32(nk + NK_VALUES);
        uint64_t end;
        int a = area_of(h, c->refd, vlist, &end);
        if (a == AREA_NONE || a == AREA_REFD) continue;  /* gone, or reused by a live record */
        uint64_t room = (end - vlist - 4) / 4, n = k->n_values < room ? k->n_values : room;
        const uint8_t *list = h->bins + vlist + 4;
        for (uint64_t j = 0; j < n; j++) {
            uint64_t want = regf_file_off(rf_le32(list + 4 * j));
            rf_deleted *v = bsearch(&want, c->recs, c->n, sizeof *c->recs, by_offset);
            if (v && v->kind == RF_DELETED_VALUE && v->owner == RF_NO_OFFSET) v->owner = k->offset;
        }
    }
}

/* The carving pass; r and c belong to the caller (regf_deleted_records),
 * who frees what they hold after the guard, whether or not a fault on a
 * vanished page jumped out of here. */
static rf_status records_body(const regf_hive *h, reach *r, carve_run *c, rf_deleted *out, size_t cap,
                              size_t *n_out)
{
    /* slack shorter than a vk's fixed part cannot hold a record */
    rf_status st = reach_all(r, h, VK_NAME + 4);
    if (st) return st;
    if (r->n_slack) qsort(r->slack, r->n_slack, sizeof *r->slack, slack_order);
    c->h = h;
    c->refd = h->root_ok ? r->refd : NULL;
    size_t next_slack = 0;
    /* every cell in file order through the bitmap */
    for (uint64_t w = 0; w < (h->bins_len + 511) / 512 && !c->oom; w++) {
        uint64_t bits = h->cell_start[w];
        while (bits && !c->oom) {
            uint64_t off = ((w << 6) + rf_ctz64(bits)) << 3;
            int allocated;
            bits &= bits - 1;
            uint32_t size = cell_now(h, off, &allocated);
            if (!size) continue;
            if (!allocated) {
                carve_area(c, off + 4, off + size, 1, RF_DELETED_FREE);
            } else if (c->refd && !bit_get(c->refd, off >> 3)) {
                carve_area(c, off + 4, off + size, 1, RF_DELETED_UNREFERENCED);
            } else if (c->refd) {
                while (next_slack < r->n_slack && r->slack[next_slack].cell < regf_file_pos(off)) next_slack++;
                if (next_slack < r->n_slack && r->slack[next_slack].cell == regf_file_pos(off)) {
                    /* A live key's or value's cell referenced first as
                     * something else (damage: a db naming an nk as its
                     * segment list): its "slack" by that reading is the live
                     * record's own bytes; nothing carved (slack_misread).
                     * A cell referenced as a record that uses none of its
                     * bytes (a db list of 0 entries) and read as nothing
                     * else: a record at its start is the cell's own content,
                     * referenced as nothing it holds: carved as an
                     * unreferenced cell is. */
                    uint64_t from = r->slack[next_slack].offset - REGF_BASE_BLOCK;
                    if (!slack_misread(r, &r->slack[next_slack]))
                        carve_area(c, from, off + size, from == off + 4,
                                   from == off + 4 ? RF_DELETED_UNREFERENCED : RF_DELETED_SLACK);
                }
            }
        }
    }
    /* the bytes after the last hbin (yarp: the "remnant data" virtual cell) */
    if (!c->oom && remnant_end(h) > h->bins_len) carve_area(c, h->bins_len + 4, remnant_end(h), 0, RF_DELETED_REMNANT);
    if (c->oom) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the deleted records");
    link_values(c);       /* reads the reachability map */
    size_t n = c->n < cap ? c->n : cap;
    if (n) memcpy(out, c->recs, n * sizeof *out);
    *n_out = c->n;
    return c->n > cap ? RF_E_MORE_DATA : RF_OK;
}

static rf_status records_guarded(const regf_hive *h, reach *r, carve_run *c, rf_deleted *out, size_t cap,
                                 size_t *n_out)
{
    rf_status st = RF_OK;
    REGF_GUARD_BEGIN(h->map, h->size)
        st = records_body(h, r, c, out, cap, n_out);
    REGF_GUARD_END(st)
    return st;
}

/* Guards itself (regf_guard.h): its allocations live here, outside the guard. */
rf_status regf_deleted_records(rf_hive *base, rf_deleted *out, size_t cap, size_t *n_out)
{
    const regf_hive *h = (const regf_hive *)base;
    reach r;
    carve_run c;
    memset(&r, 0, sizeof r);
    memset(&c, 0, sizeof c);
    c.segments_left = (uint64_t)h->size / 2;
    *n_out = 0;
    rf_status st = records_guarded(h, &r, &c, out, cap, n_out);
    reach_free(&r);
    free(c.recs);
    return st;
}

/* ---- 4. reading a deleted value's data ------------------------------------ */

rf_status regf_deleted_read(rf_hive *base, uint64_t record_offset, void *buf, size_t cap, size_t *len_out)
{
    const regf_hive *h = (const regf_hive *)base;
    uint64_t end, off = record_offset - REGF_BASE_BLOCK;
    *len_out = 0;
    /* The record is re-read and every piece re-bounded: nothing of the
     * caller's rf_deleted is trusted but the offset, which must name a cell
     * or a former cell as rf_hive_deleted found them. Reachability is not
     * needed to copy, only to grade (which rf_hive_deleted did). */
    if (record_offset < REGF_BASE_BLOCK || area_of(h, NULL, off, &end) == AREA_NONE ||
        end - off < 4 + VK_NAME || h->bins[off + 4] != 'v' || h->bins[off + 5] != 'k')
        return rfi_fail(RF_E_NOT_FOUND, record_offset, 0, "no value record at 0x%llx",
                        (unsigned long long)record_offset);
    const uint8_t *vk = h->bins + off + 4;
    uint32_t raw = regf_once32(vk + VK_DATA_LEN), doff = rf_le32(vk + VK_DATA), len = raw & ~VK_DATA_INLINE;
    if ((raw & VK_DATA_INLINE) && len > 4)
        return rfi_fail(RF_E_NOT_FOUND, record_offset, 0, "vk at 0x%llx: inline data length %u",
                        (unsigned long long)record_offset + 4, len);
    *len_out = len;
    if (cap < len) return RF_E_MORE_DATA;
    if (raw & VK_DATA_INLINE) {
        memcpy(buf, vk + VK_DATA, len);
        return RF_OK;
    }
    if (len == 0) return RF_OK;
    uint64_t at;
    uint32_t flags;
    if (locate_data(h, NULL, raw, doff, &at, &flags, buf, NULL) == 4) {
        *len_out = 0;
        return rfi_fail(RF_E_NOT_FOUND, record_offset, 0,
                        "the data of the deleted value at 0x%llx cannot be located", (unsigned long long)record_offset);
    }
    return RF_OK;
}

/* ---- slack ---------------------------------------------------------------- */

static rf_status slack_body(const regf_hive *h, reach *r, rf_slack *out, size_t cap, size_t *n_out)
{
    rf_status st = reach_all(r, h, 1);
    if (st) return st;
    size_t kept = 0;
    for (size_t i = 0; i < r->n_slack; i++)
        if (!slack_misread(r, &r->slack[i])) r->slack[kept++] = r->slack[i];
    r->n_slack = kept;
    if (r->n_slack) qsort(r->slack, r->n_slack, sizeof *r->slack, slack_order);
    size_t n = r->n_slack < cap ? r->n_slack : cap;
    if (n) memcpy(out, r->slack, n * sizeof *out);
    *n_out = r->n_slack;
    return r->n_slack > cap ? RF_E_MORE_DATA : RF_OK;
}

static rf_status slack_guarded(const regf_hive *h, reach *r, rf_slack *out, size_t cap, size_t *n_out)
{
    rf_status st = RF_OK;
    REGF_GUARD_BEGIN(h->map, h->size)
        st = slack_body(h, r, out, cap, n_out);
    REGF_GUARD_END(st)
    return st;
}

/* Guards itself, like regf_deleted_records: the walk's state is freed here. */
rf_status regf_slack(rf_hive *base, rf_slack *out, size_t cap, size_t *n_out)
{
    reach r;
    memset(&r, 0, sizeof r);
    *n_out = 0;
    rf_status st = slack_guarded((const regf_hive *)base, &r, out, cap, n_out);
    reach_free(&r);
    return st;
}
