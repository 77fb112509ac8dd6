/*
 * regf_internal.h — the regf (offline hive file) backend's private state.
 *
 * Format reference: "Windows registry file format specification" (msuhanov/regf).
 * All record offsets inside the hive are relative to the first hbin, which
 * starts right after the 4096-byte base block; "file offset" below always
 * means an offset from the start of the file, which is what error messages
 * report so a user can open the file in a hex editor at that position.
 */
#ifndef REGF_INTERNAL_H
#define REGF_INTERNAL_H

#include <stdarg.h>
#include "core/rf_internal.h"
#include "regfast/regfast_backend.h"
#ifndef _WIN32
#include <pthread.h>
#endif

#define REGF_BASE_BLOCK   4096u
#define REGF_HBIN_HEADER  0x20u
#define REGF_NONE         0xFFFFFFFFu  /* "no cell" in offset fields */
#define REGF_BIG_SEGMENT  16344u       /* bytes of data per db segment */

/* nk field offsets, relative to the cell data (after the 4-byte size) */
#define NK_FLAGS          0x02
#define NK_LAST_WRITE     0x04
#define NK_PARENT         0x10
#define NK_N_SUBKEYS      0x14
#define NK_SUBKEYS        0x1C
#define NK_N_VALUES       0x24
#define NK_VALUES         0x28
#define NK_SECURITY       0x2C
#define NK_CLASS          0x30
#define NK_MAX_NAME       0x34
#define NK_MAX_CLASS      0x38
#define NK_MAX_VNAME      0x3C
#define NK_MAX_VDATA      0x40
#define NK_NAME_LEN       0x48
#define NK_CLASS_LEN      0x4A
#define NK_NAME           0x4C
#define REGF_NK_CELL_MIN  (4 + NK_NAME) /* an nk cell's least size: its size word and fixed part */
#define NK_FLAG_ROOT      0x0004u
#define NK_FLAG_SYM_LINK  0x0010u   /* KEY_SYM_LINK */
#define NK_FLAG_COMP_NAME 0x0020u

/* vk field offsets */
#define VK_NAME_LEN       0x02
#define VK_DATA_LEN       0x04
#define VK_DATA           0x08
#define VK_TYPE           0x0C
#define VK_FLAGS          0x10
#define VK_NAME           0x14
#define VK_FLAG_COMP_NAME 0x0001u
#define VK_DATA_INLINE    0x80000000u

typedef struct regf_hive {
    rf_hive        base;       /* must be first: the core sees only this */
    const uint8_t *map;        /* the whole file (mapping or caller buffer) */
    size_t         size;       /* bytes at map */
    const uint8_t *bins;       /* map + 4096 */
    uint64_t       bins_len;   /* bytes of valid hbins starting at bins */
    uint64_t      *cell_start; /* bitmap: bit i set <=> a cell starts at bins + 8*i */
    size_t         cell_start_bytes; /* its size (regf_zero_alloc) */
    uint32_t       root;       /* root nk offset */
    uint32_t       minor;
    rf_open_opts   opts;
    rf_hive_info   info;
    int            mapped;     /* 1: we mmap'd it and must unmap; 2: a private copy we malloc'd */
    int            root_ok;    /* 0: a tolerant open found the root unusable */
    rf_problem    *problems;   /* what a tolerant open skipped (RF_MAX_PROBLEMS at most) */
    size_t         n_problems, problems_cap;
    uint64_t       problems_total; /* all problems seen, stored or not */
    /* A tolerant open's keys whose parent field names no key: (key, the key
     * whose list holds it) pairs, found by its tree check; regf_key_parent
     * answers the listing key for them (see regf_child_nk). */
    uint32_t      *relisted;
    size_t         n_relisted, relisted_cap;
    struct regf_vcache *vcache; /* name indexes of long value lists (regf_value.c), or NULL */
    /* Lazy checking (regf_lazy.c; strict opens): hbins are checked when first used */
    int            lazy;       /* 1: hbins are checked on first use (else all at open) */
    int            checked_all; /* lazy: 1 once every hbin passed (atomic; the counts in info are final) */
    uint8_t       *page_state; /* lazy: per 4 KiB page of hbins, its check's state (atomic bytes) */
    size_t         page_state_bytes; /* its size (regf_zero_alloc) */
    uint64_t       chain_end;  /* lazy: the hbin chain is walked up to here (hbins-relative) */
    int            chain_broken; /* lazy: the header at chain_end breaks the chain */
    uint64_t      *scratch;    /* lazy: an hbin's bits while its check runs (under the lock) */
    size_t         scratch_words;
    struct regf_bad_hbin *bad; /* lazy: the first bad cell of each hbin whose check failed */
    size_t         n_bad, bad_cap;
    uint32_t      *bad_of_page; /* lazy: per page of a failed hbin, 1 + its index in `bad` */
#ifdef _WIN32
    struct { void *srw; } lock;  /* an SRWLOCK (one pointer) */
    void          *win_mapping;
#else
    pthread_mutex_t lock;      /* lazy: guards the chain, the page states and the counts */
#endif
} regf_hive;

extern const rf_backend_ops regf_ops;

/* Zero-filled memory for the per-hive bitmaps (regf_lazy.c): big ones come
 * straight from the OS, whose zero pages cost only when touched. calloc
 * served them from the heap once a first free had raised glibc's mmap
 * threshold, and cleared all 1.7 MB of a 110 MB hive's cell bitmap on every
 * open (2/3 of an open that reads one value). Free with the same size. */
void *regf_zero_alloc(size_t bytes);
void regf_zero_free(void *p, size_t bytes);

rf_status regf_open_file(regf_hive *h, const char *path, const rf_open_opts *opts);
rf_status regf_open_memory(regf_hive *h, const void *data, size_t len, const rf_open_opts *opts);

static inline uint64_t regf_file_off(uint32_t cell_off) { return (uint64_t)cell_off + REGF_BASE_BLOCK; }
/* The same for a position found by walking the hbins, not read from a 32-bit
 * field: a tolerant open of a file over 4 GiB walks past 32 bits. */
static inline uint64_t regf_file_pos(uint64_t bins_off) { return bins_off + REGF_BASE_BLOCK; }

/* The cold halves of the lookups below: they re-check and write the error. */
rf_status regf_cell_fail(const regf_hive *h, uint32_t off, const char *what);
rf_status regf_record_fail(const regf_hive *h, uint32_t off, const char sig[2], uint32_t min_len,
                           const uint8_t *data, uint32_t len);
rf_status regf_name_len_fail(uint32_t off, const char *what, uint32_t name_len, uint32_t room);
/* A UTF-16 name of an odd byte count: damage at the record (nk or vk). */
rf_status regf_odd_name_fail(uint32_t off, const char *what, uint32_t name_len);

/* The bitmap of cell starts is read without a lock while another thread may
 * publish a newly checked hbin's words (regf_lazy.c): relaxed atomic loads
 * and stores, plain moves on every target. */
#if defined(_MSC_VER)
static inline uint64_t regf_bits_load(const uint64_t *w) { return *(const volatile uint64_t *)w; }
static inline void regf_bits_store(uint64_t *w, uint64_t v) { *(volatile uint64_t *)w = v; }
#else
static inline uint64_t regf_bits_load(const uint64_t *w) { return __atomic_load_n(w, __ATOMIC_RELAXED); }
static inline void regf_bits_store(uint64_t *w, uint64_t v) { __atomic_store_n(w, v, __ATOMIC_RELAXED); }
#endif

/* regf_lazy.c: the slow half of regf_is_cell on a lazily checked hive: the
 * hbin holding `off` (< bins_len, 8-aligned) is checked if it was not yet,
 * then its bit is tested; 0 (the error set) when the hbin is damaged. */
int regf_lazy_check(const regf_hive *h, uint64_t off);
/* RF_OK when `off` lies in a checked hbin (checking it now if needed) or
 * outside the hbins; else the error of its hbin (or of the hbin chain
 * before it), as a strict open would have reported it. For the cold paths
 * that explain why an offset is no cell. */
rf_status regf_lazy_error(const regf_hive *h, uint64_t off);
/* Checks every hbin not checked yet, in file order (RF_OK at once when all
 * are): the cell counts of rf_hive_info and the passes over every cell
 * (deleted records, slack) need them all. Fails like a strict open did. */
rf_status regf_check_all(const regf_hive *h);
/* 1 when every hbin is checked (eager opens: always). */
int regf_all_checked(const regf_hive *h);
/* Strict opens: the bitmap and page states, nothing checked yet. */
rf_status regf_lazy_init(regf_hive *h, uint64_t declared);
void regf_lazy_free(regf_hive *h);
/* Why the hbin header at `off` is unusable, or NULL (and *hsize) when it is
 * good; with `clip`, a size running past `declared` is allowed. */
const char *regf_hbin_problem(const uint8_t *bins, uint64_t off, uint64_t declared, int clip, uint32_t *hsize);
/* The strict errors of a bad hbin header and a bad cell size (hbins-relative offsets). */
rf_status regf_hbin_fail(const regf_hive *h, uint64_t off, const char *why, uint32_t hsize, uint64_t declared);
rf_status regf_cell_size_fail(uint64_t c, int32_t raw, uint64_t left, uint64_t hbin);

/* Cell counts of a walk of the hbins (rf_hive_info's cells_*, nk_cells,
 * vk_cells), tallied by the eager walk (regf_open.c) and the lazy check
 * (regf_lazy.c) alike: the scan sizes its columns with nk/vk, so both walks
 * must count signatures the same way. */
typedef struct regf_cell_counts { uint64_t allocated, free_, nk, vk; } regf_cell_counts;

/* Counts the cell at hbins offset c whose size field is raw (checked). */
static inline void regf_tally_cell(regf_cell_counts *n, const uint8_t *bins, uint64_t c, int32_t raw)
{
    if (raw < 0) {
        n->allocated++;
        /* signature counts bound the rows a scan can produce */
        uint16_t sig = rf_le16(bins + c + 4);
        n->nk += sig == 0x6B6E; /* "nk" */
        n->vk += sig == 0x6B76; /* "vk" */
    } else {
        n->free_++;
    }
}

/* Adds a walk's counts to the hive's. */
static inline void regf_add_counts(regf_hive *h, const regf_cell_counts *n)
{
    h->info.cells_allocated += n->allocated;
    h->info.cells_free += n->free_;
    h->info.nk_cells += n->nk;
    h->info.vk_cells += n->vk;
}

/* 1 if a cell starts at `off` (found by the hbin's check: at open, or on
 * first use for a lazily checked hive). Any 64-bit offset is safe to ask
 * about (forensic callers pass the user's). */
static inline int regf_is_cell(const regf_hive *h, uint64_t off)
{
    if (!(off < h->bins_len && h->bins_len - off >= 4 && !(off & 7))) return 0;
    if (RF_LIKELY((regf_bits_load(&h->cell_start[off >> 9]) >> ((off >> 3) & 63)) & 1)) return 1;
    return h->lazy && regf_lazy_check(h, off);
}

/* Reads a field that bounds a later read exactly once: the file may change
 * under the mapping (another process writing it in place), and a length
 * checked at one load and used from a second could differ. The empty asm
 * makes the loaded value opaque, so the compiler cannot load it again in
 * place of keeping it (buffers from callers may be unaligned: no volatile
 * pointer cast). */
static inline uint32_t regf_once32(const uint8_t *p)
{
    uint32_t v = rf_le32(p);
#if defined(__GNUC__) || defined(__clang__)
    __asm__ volatile("" : "+r"(v));
#endif
    return v;
}

static inline uint16_t regf_once16(const uint8_t *p)
{
    uint16_t v = rf_le16(p);
#if defined(__GNUC__) || defined(__clang__)
    __asm__ volatile("" : "+r"(v));
#endif
    return v;
}

/*
 * THE point of use: every cell offset read from the file reaches its bytes
 * through here (regf_cell and regf_record below, and the forensic walks).
 * 1 when a cell starts at `off` (the bitmap of the hbins' checks) and its
 * size field, as it reads now, gives a payload that lies inside the hbins;
 * then the outputs (payload, len, allocated) describe it. The walk proved each size fits
 * its hbin, but the file may have been written since: the size is read once
 * and bounded again here, so a changed file can give wrong answers or a
 * RegistryCorruptError, never a read outside the mapping.
 *
 * Lazy checking (an hbin checked the first time an offset in it is used)
 * hooks in through regf_is_cell, which this and regf_cell start with.
 */
static inline int regf_cell_at(const regf_hive *h, uint64_t off, const uint8_t **payload, uint32_t *len,
                               int *allocated)
{
    if (RF_UNLIKELY(!regf_is_cell(h, off))) return 0;
    int32_t size = (int32_t)regf_once32(h->bins + off);
    uint64_t csize = size < 0 ? (uint64_t)(-(int64_t)size) : (uint64_t)size;
    if (RF_UNLIKELY(csize < 8 || csize > h->bins_len - off)) return 0;
    *payload = h->bins + off + 4;
    *len = (uint32_t)csize - 4;
    *allocated = size < 0;
    return 1;
}

/*
 * Looks up an allocated cell: on success *data points at the cell's payload
 * (after the size field) and *len is the payload length. Fails with
 * RF_E_CORRUPT unless `off` is the start of a cell found by its hbin's check,
 * that cell is allocated and its size still fits the hive. `what` names the
 * record for the message. Inline: every record of every walk comes through here.
 */
static inline rf_status regf_cell(const regf_hive *h, uint32_t off, const char *what,
                                  const uint8_t **data, uint32_t *len)
{
    /* regf_cell_at for allocated cells, in one compare: -size is at least 8
     * and at most what is left of the hbins. (A cell start in the bitmap has
     * at least 8 bytes of hbins left, so the right side cannot wrap.) */
    if (RF_LIKELY(regf_is_cell(h, off))) {
        int32_t size = (int32_t)regf_once32(h->bins + off);
        uint64_t csize = (uint64_t)(uint32_t)(0u - (uint32_t)size);
        if (RF_LIKELY(size < 0 && csize - 8 <= h->bins_len - off - 8)) {
            *data = h->bins + off + 4;
            *len = (uint32_t)csize - 4;
            return RF_OK;
        }
    }
    *data = NULL;
    *len = 0;
    return regf_cell_fail(h, off, what);
}

/* Like regf_cell, then checks the 2-byte signature and the minimum length. */
static inline rf_status regf_record(const regf_hive *h, uint32_t off, const char sig[2], uint32_t min_len,
                                    const uint8_t **data, uint32_t *len)
{
    rf_status st = regf_cell(h, off, sig, data, len);
    if (RF_UNLIKELY(st)) return st;
    if (RF_UNLIKELY(*len < min_len || (*data)[0] != (uint8_t)sig[0] || (*data)[1] != (uint8_t)sig[1])) {
        st = regf_record_fail(h, off, sig, min_len, *data, *len);
        *data = NULL;
        return st;
    }
    return RF_OK;
}

/* An nk cell with its name length checked against the cell; *name_len is
 * the length as checked (use it, not a second read of the field). */
static inline rf_status regf_nk_named(const regf_hive *h, uint32_t off, const uint8_t **nk, uint32_t *len,
                                      uint32_t *name_len)
{
    rf_status st = regf_record(h, off, "nk", NK_NAME, nk, len);
    *name_len = 0;
    if (RF_UNLIKELY(st)) return st;
    uint32_t n = regf_once16(*nk + NK_NAME_LEN);
    if (RF_UNLIKELY(n > *len - NK_NAME)) {
        *nk = NULL;
        return regf_name_len_fail(off, "nk", n, *len - NK_NAME);
    }
    *name_len = n;
    return RF_OK;
}

/* An allocated nk whose name fits, without recording an error (the error of
 * the list being walked must survive for the caller); *name_len is the name
 * length as checked (one read of each field: the file may change). */
static inline const uint8_t *regf_quiet_nk(const regf_hive *h, uint32_t off, uint32_t *name_len)
{
    const uint8_t *nk;
    uint32_t len;
    int allocated;
    if (!regf_cell_at(h, off, &nk, &len, &allocated) || !allocated) return NULL;
    if (len < NK_NAME || nk[0] != 'n' || nk[1] != 'k') return NULL;
    uint32_t n = regf_once16(nk + NK_NAME_LEN);
    if (n > len - NK_NAME) return NULL;
    *name_len = n;
    return nk;
}

/* An nk cell with its name length checked against the cell. */
static inline rf_status regf_nk(const regf_hive *h, uint32_t off, const uint8_t **nk, uint32_t *len)
{
    uint32_t name_len;
    return regf_nk_named(h, off, nk, len, &name_len);
}


/* Backend entry points used by regf_ops (regf_key.c, regf_value.c) */
rf_status regf_key_child(rf_hive *h, rf_key parent, const uint16_t *name, size_t nchars, rf_key *out);
rf_status regf_key_name(rf_hive *h, rf_key k, rf_name *out);
rf_status regf_key_class(rf_hive *h, rf_key k, rf_name *out);
rf_status regf_key_parent(rf_hive *h, rf_key k, rf_key *out);
rf_status regf_key_info(rf_hive *h, rf_key k, rf_key_info *out);
rf_status regf_key_is_link(rf_hive *h, rf_key k, int *out);
rf_status regf_key_subkeys(rf_hive *h, rf_key k, rf_key *out, size_t cap, size_t *n_out);
rf_status regf_key_values(rf_hive *h, rf_key k, rf_value *out, size_t cap, size_t *n_out);
rf_status regf_key_security(rf_hive *h, rf_key k, const uint8_t **sd, size_t *len);
rf_status regf_value_find(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars, rf_value *out);
rf_status regf_value_info(rf_hive *h, rf_value v, rf_value_info *out);
rf_status regf_value_read(rf_hive *h, rf_value v, void *buf, size_t cap,
                          const uint8_t **data_out, size_t *len_out);

rf_status regf_read_values(rf_hive *h, rf_key k, const rf_name *names, size_t n,
                           const uint32_t *types, size_t n_types, uint32_t flags, rf_batch *b);
rf_status regf_mapping(rf_hive *h, const uint8_t **base, size_t *len);
rf_status regf_scan(rf_hive *h, rf_key start, rf_scan *s);
rf_status regf_cell_any(rf_hive *h, uint64_t file_offset, const uint8_t **payload, size_t *len,
                        int *allocated);
rf_status regf_deleted_records(rf_hive *h, rf_deleted *out, size_t cap, size_t *n_out);
rf_status regf_deleted_read(rf_hive *h, uint64_t record_offset, void *buf, size_t cap, size_t *len_out);
rf_status regf_slack(rf_hive *h, rf_slack *out, size_t cap, size_t *n_out);
rf_status regf_record_slack(rf_hive *h, uint64_t token, int is_value, rf_slack out[2]);
rf_status regf_token_offset(rf_hive *h, uint64_t token, uint64_t *file_offset);
rf_status regf_problems(rf_hive *h, const rf_problem **out, size_t *n_out, uint64_t *total_out);
/* regf_open.c: the table's close, get_info and root (the table is regf_api.c) */
void      regf_close(rf_hive *h);
rf_status regf_get_info(rf_hive *h, rf_hive_info *out);
rf_status regf_root(rf_hive *h, rf_key *out);

/* Where a value's data is: contiguous (inline or one cell) or a db record. */
typedef struct regf_data_loc {
    uint32_t       len;
    uint32_t       flags;     /* RF_VALUE_INLINE / RF_VALUE_BIG_DATA */
    const uint8_t *ptr;       /* contiguous data (inline or one cell) */
    uint32_t       db;        /* big data: db record offset */
} regf_data_loc;

/* The vk at `v`, its name length checked against the cell; *name_len is the
 * length as checked (use it, not a second read of the field). */
static RF_INLINE rf_status regf_vk_named(const regf_hive *h, rf_value v, const uint8_t **vk, uint32_t *len,
                                      uint32_t *name_len)
{
    /* 0 is refused by the core for callers' tokens; here it can only come
     * from a value list in the file, where it is damage (no cell at 0x1000). */
    *vk = NULL;
    *len = 0;
    *name_len = 0;
    if (RF_UNLIKELY(v > UINT32_MAX))
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "0x%llx is not a value token",
                        (unsigned long long)v);
    rf_status st = regf_record(h, (uint32_t)v, "vk", VK_NAME, vk, len);
    if (RF_UNLIKELY(st)) return st;
    uint32_t n = regf_once16(*vk + VK_NAME_LEN);
    if (RF_UNLIKELY(n > *len - VK_NAME))
        return regf_name_len_fail((uint32_t)v, "vk", n, *len - VK_NAME);
    *name_len = n;
    return RF_OK;
}

/* The vk at `v` (name length checked). */
static inline rf_status regf_vk(const regf_hive *h, rf_value v, const uint8_t **vk, uint32_t *len)
{
    uint32_t name_len;
    return regf_vk_named(h, v, vk, len, &name_len);
}

/* Where the vk's data lives (checked against the cells). */
rf_status regf_locate(const regf_hive *h, uint32_t voff, const uint8_t *vk, regf_data_loc *d);

/* regf_locate's common cases inline, for the per-value loops (the scan, a
 * batch read): data inside the vk, or in one allocated cell that holds it.
 * Anything else, every failure included, is regf_locate's to answer (and
 * to explain): this only ever succeeds where it would. */
static RF_INLINE rf_status regf_locate_fast(const regf_hive *h, uint32_t voff, const uint8_t *vk, regf_data_loc *d)
{
    uint32_t raw = regf_once32(vk + VK_DATA_LEN), n = raw & ~VK_DATA_INLINE;
    if (raw & VK_DATA_INLINE) {
        if (RF_UNLIKELY(n > 4)) return regf_locate(h, voff, vk, d);
        d->len = n;
        d->flags = RF_VALUE_INLINE;
        d->ptr = vk + VK_DATA;
        d->db = 0;
        return RF_OK;
    }
    const uint8_t *p;
    uint32_t clen;
    if (RF_LIKELY(n != 0 && !(h->minor >= 4 && n > REGF_BIG_SEGMENT)) &&
        RF_LIKELY(regf_cell(h, rf_le32(vk + VK_DATA), "value data", &p, &clen) == RF_OK && n <= clen)) {
        d->len = n;
        d->flags = 0;
        d->ptr = p;
        d->db = 0;
        return RF_OK;
    }
    return regf_locate(h, voff, vk, d);
}
rf_status regf_read_big(const regf_hive *h, const regf_data_loc *d, uint8_t *buf);
/* The checks of regf_read_big, for callers that do not copy (the tolerant
 * check): a big value's db record and segment list (*list, whose entries
 * hold at least *need segments), then segment i with `take` bytes. */
rf_status regf_big_list(const regf_hive *h, const regf_data_loc *d, const uint8_t **list, uint32_t *list_off,
                        uint32_t *llen, uint32_t *need);
rf_status regf_big_segment(const regf_hive *h, const uint8_t *list, uint32_t i, uint32_t take, const uint8_t **seg);

/* A key's value list: `*n` vk offsets (borrowed), n bounded by max_values. */
rf_status regf_value_list(const regf_hive *h, rf_key k, const uint8_t **list, uint32_t *n);
/* The same for the key at `k` whose nk the caller has just checked (regf_nk):
 * the scan, which has it from the subkey list, does not check it again. */
rf_status regf_value_list_nk(const regf_hive *h, uint32_t k, const uint8_t *nk, const uint8_t **list,
                             uint32_t *n);

/* Calls fn for each subkey entry of the key at key_off (nk already fetched);
 * hash is the lh hash for lh lists, else 0; leaf is the list cell holding the
 * entry. A nonzero return from fn stops
 * the walk and is returned (RF_E_NO_MORE_ITEMS: "found it"). */
typedef rf_status (*regf_entry_fn)(void *ctx, uint32_t child, uint32_t hash, uint32_t leaf);
rf_status regf_each_subkey(const regf_hive *h, uint32_t key_off, const uint8_t *nk,
                           regf_entry_fn fn, void *ctx);
/* The same, but a bad ri leaf does not end the walk: the walk goes on with the
 * next leaf and the first error is returned at the end (scans that skip errors
 * use it so that one bad leaf does not hide the siblings in the other leaves). */
rf_status regf_each_subkey_all(const regf_hive *h, uint32_t key_off, const uint8_t *nk,
                               regf_entry_fn fn, void *ctx);
/* A tolerant open's listing key of `child`, whose parent field names no
 * key (see regf_child_nk); 0 when it has none. */
uint32_t regf_relisted_parent(const regf_hive *h, uint32_t child);
/* The parent of the key `k` (its nk at `nk`), as every read sees it: the
 * key a tolerant open reads it under when its parent field names no key,
 * else that field. */
static inline uint32_t regf_parent_of(const regf_hive *h, uint32_t k, const uint8_t *nk)
{
    uint32_t listing = regf_relisted_parent(h, k);
    return listing ? listing : rf_le32(nk + NK_PARENT);
}
/* An nk listed under `parent` whose parent field agrees. */
rf_status regf_check_child(const regf_hive *h, uint32_t parent, uint32_t child);
/* The same, handing back the child's nk and its name length as checked. */
rf_status regf_child_nk(const regf_hive *h, uint32_t parent, uint32_t child, const uint8_t **nk,
                        uint32_t *name_len);

/* Subkey lists are sorted by upcased name and Windows checks it
 * (CmpCheckLexicographicalOrder): 1 when the nk `cur` sorts strictly after
 * `prev` (so a key listed twice, or two keys of one name, fail too). The
 * name lengths are the ones regf_nk_named checked: the fields are not read
 * again (the file may have changed since). */
int regf_sorted_after(const uint8_t *prev_nk, uint32_t prev_name_len, const uint8_t *cur_nk,
                      uint32_t cur_name_len);
/* The RF_E_CORRUPT for an entry that breaks that order, naming the fix. */
rf_status regf_order_fail(uint32_t key, uint32_t leaf, uint32_t prev, const uint8_t *prev_nk,
                          uint32_t prev_name_len, uint32_t cur, const uint8_t *cur_nk, uint32_t cur_name_len);
/* `st`, with the last error's message naming the way past the damage when it
 * is RF_E_CORRUPT (a subkey listing's or a strict scan's): a tolerant open,
 * or, for a hive opened so, errors="skip" when the read takes it (can_skip). */
rf_status regf_with_fix(const regf_hive *h, rf_status st, int can_skip);
/* Tolerant opens (regf_check.c): records in the hive's problem list the
 * subkey-list problems of the whole tree (duplicates, order, keys listed
 * under two parents, entries that are not keys) and the values reads refuse,
 * so that reads can skip them and nothing is skipped unsaid. */
rf_status regf_check_tree(regf_hive *h);
/* 1 when `off` (hbins-relative) lies inside a cell, not in an hbin header
 * or past the hbins: where a pointer that names no cell start still lands. */
int regf_inside_cell(const regf_hive *h, uint64_t off);
/* regf_inside_cell for a cell starting at most 32 KiB before `off` (0 past
 * that), in bounded time: for placing a problem per damaged entry, of which
 * a hostile hive can hold millions, all pointing into one huge cell. */
int regf_inside_cell_near(const regf_hive *h, uint64_t off);
/* The problem list of tolerant opens (regf_fail.c): regf_open.c's walk adds
 * with a format, regf_check_tree (regf_check.c) with a ready reason. */
rf_status regf_problem_vadd(regf_hive *h, uint32_t kind, uint64_t off, uint64_t len, const char *fmt, va_list ap);
rf_status regf_add_problem(regf_hive *h, uint32_t kind, uint64_t off, const char *reason);

/* Hash of a stored name's upcased UTF-16 units (value lookups index by it),
 * and the same hash of a name already upcased. */
uint32_t regf_name_hash(const uint8_t *p, uint32_t nbytes, int utf16);
uint32_t regf_upper_hash(const uint16_t *upper, size_t nchars);
/* Frees the value-name indexes (regf_value.c); from regf_close. */
void regf_vindex_free(regf_hive *h);

/* Case-insensitive compare of a stored name with an already-upcased UTF-16 name. */
int regf_name_equals(const uint8_t *stored, uint32_t nbytes, int utf16,
                     const uint16_t *upper, size_t nchars);

#endif
