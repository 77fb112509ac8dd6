/*
 * regf_lazy.c — a strict open checks an hbin's cells the first time an
 * offset inside it is used, not all of them at open.
 *
 * The guarantee is the eager walk's (regf_open.c): no offset read from the
 * file reaches its bytes unless a cell starts there, found by chaining the
 * cell sizes of its hbin from the hbin's header, and the hbin was reached by
 * chaining the hbin sizes from the first one. Only the moment changes: an
 * hbin is checked — its header on the chain, then every cell of it — when
 * regf_is_cell() is first asked about an offset in it (through regf_cell,
 * regf_record and the forensic lookups: every read of a cell goes through
 * there). A damaged hbin fails then, with the message and the file offset a
 * strict open would have given, and every later use of an offset in it
 * fails the same way; the rest of the hive stays readable. rf_hive_get_info
 * (whose cell counts need every hbin) and the forensic passes over all cells
 * check what is left first (regf_check_all), in file order, so they report
 * the first damage exactly as a strict open did; that pass checks several
 * hbins' cell chains at once (check_cells), which one by one could not
 * overlap their cache misses. The Python binding's scan sizes its columns
 * with rf_hive_get_info, so its whole-hive scans get that pass too (the C
 * rf_hive_scan alone checks each hbin on first use). A fault in a group (the
 * file cut under a follower hbin) ends the whole pass with RF_E_IO, even
 * when the target hbin was damaged before the cut: nothing of the group is
 * published, so later reads still get each hbin's own verdict.
 *
 * Why the hbin chain is walked too, and not guessed: an hbin header names
 * its own offset, so "the page at or before X holding a valid header" would
 * find X's hbin in one step on a healthy hive — but value data can hold a
 * copy of an hbin header at a page boundary inside a big cell, and taking it
 * for an hbin would let offsets into the middle of that cell pass as cell
 * starts. Only the chain from the first hbin tells the two apart, so it is
 * walked as far as the highest offset used so far (one read per hbin, no
 * cell read; on a 110 MB hive the whole chain costs about what touching its
 * pages does, ~1 ms, and a lookup rarely needs all of it).
 *
 * Threads: several threads may read one hive at once (the bindings release
 * the GIL). The bitmap of cell starts is what readers test without a lock:
 * an hbin's bits are computed aside and stored only once its whole check
 * passed, so a set bit always means "a checked cell starts here" (4 KiB-
 * aligned hbins cover whole 64-bit words of it: no word is shared by two
 * hbins). Everything else — the chain, the per-page states, the counts —
 * changes under the hive's lock, which the slow path takes. A SIGBUS while
 * the lock is held (the file cut under the mapping) is caught by a guard
 * inside the lock, so the lock is always released.
 */
#define _POSIX_C_SOURCE 200809L /* sigsetjmp (regf_guard.h) under -std=c11 */
#define _DEFAULT_SOURCE         /* and MAP_ANONYMOUS (glibc) */
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/mman.h>
#endif

#include "hive/regf_internal.h"
#include "hive/regf_guard.h"

/* page_state: one byte per 4 KiB page of the hbins */
#define PAGE_KNOWN 1u /* the hbin chain was walked past this page */
#define PAGE_START 2u /* an hbin starts on this page */
#define PAGE_READY 4u /* its hbin's cells passed the check: its bitmap words are final */
#define PAGE_BAD   8u /* its hbin's cells failed the check */

#if defined(_MSC_VER)
/* Interlocked, not volatile: MSVC gives volatile acquire/release only on x86
 * and x64 (/volatile:ms); on ARM64 (/volatile:iso) a reader could see READY
 * before the bitmap words published ahead of it. Only the slow paths load
 * these. */
#include <intrin.h>
static uint8_t state_load(const uint8_t *p) { return (uint8_t)_InterlockedCompareExchange8((volatile char *)p, 0, 0); }
static void state_store(uint8_t *p, uint8_t v) { _InterlockedExchange8((volatile char *)p, (char)v); }
static int flag_load(const int *p) { return (int)_InterlockedCompareExchange((volatile long *)p, 0, 0); }
static void flag_store(int *p, int v) { _InterlockedExchange((volatile long *)p, v); }
#else
static uint8_t state_load(const uint8_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void state_store(uint8_t *p, uint8_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static int flag_load(const int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void flag_store(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
#endif

#ifdef _WIN32
#include <windows.h>
static void lock_init(regf_hive *h) { InitializeSRWLock((PSRWLOCK)&h->lock); }
static void lock_free(regf_hive *h) { (void)h; }
static void lock(regf_hive *h) { AcquireSRWLockExclusive((PSRWLOCK)&h->lock); }
static void unlock(regf_hive *h) { ReleaseSRWLockExclusive((PSRWLOCK)&h->lock); }
#else
static void lock_init(regf_hive *h) { pthread_mutex_init(&h->lock, NULL); }
static void lock_free(regf_hive *h) { pthread_mutex_destroy(&h->lock); }
static void lock(regf_hive *h) { pthread_mutex_lock(&h->lock); }
static void unlock(regf_hive *h) { pthread_mutex_unlock(&h->lock); }
#endif

const char *regf_hbin_problem(const uint8_t *bins, uint64_t off, uint64_t declared, int clip, uint32_t *hsize)
{
    *hsize = 0;
    if (declared - off < REGF_HBIN_HEADER) return "truncated hbin header";
    if (memcmp(bins + off, "hbin", 4) != 0) return "bad hbin signature";
    if (rf_le32(bins + off + 4) != off) return "hbin offset field does not match its position";
    *hsize = rf_le32(bins + off + 8);
    if (*hsize < 4096 || (*hsize & 4095) || (!clip && *hsize > declared - off)) return "bad hbin size";
    return NULL;
}

/* These two fail a hive opened strictly only (a tolerant open steps over both
 * kinds of damage, and lists them), so they name that way out. */
#define REGF_OPEN_TOLERANT_FIX "; open the hive with errors=\"tolerant\" to read the rest"

rf_status regf_hbin_fail(const regf_hive *h, uint64_t off, const char *why, uint32_t hsize, uint64_t declared)
{
    return rfi_fail(RF_E_CORRUPT, off + REGF_BASE_BLOCK, 0,
                    "hbin at 0x%llx: %s (declared offset 0x%x, size 0x%x, %llu bytes left)" REGF_OPEN_TOLERANT_FIX,
                    (unsigned long long)(off + REGF_BASE_BLOCK), why,
                    declared - off >= 8 ? rf_le32(h->bins + off + 4) : 0, hsize,
                    (unsigned long long)(declared - off));
}

rf_status regf_cell_size_fail(uint64_t c, int32_t raw, uint64_t left, uint64_t hbin)
{
    return rfi_fail(RF_E_CORRUPT, c + REGF_BASE_BLOCK, 0,
                    "cell at 0x%llx: size %d is not a multiple of 8 within its hbin "
                    "(0x%llx bytes left in the hbin at 0x%llx)" REGF_OPEN_TOLERANT_FIX,
                    (unsigned long long)(c + REGF_BASE_BLOCK), raw, (unsigned long long)left,
                    (unsigned long long)(hbin + REGF_BASE_BLOCK));
}

/* Below this, calloc (a heap block cleared in place) is cheaper than a
 * mapping of its own. Under AddressSanitizer everything comes from calloc,
 * whose bounds it checks (it does not watch a mapping of our own). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REGF_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define REGF_ASAN 1
#endif
#ifdef REGF_ASAN
#define ZERO_PAGES_MIN SIZE_MAX
#else
#define ZERO_PAGES_MIN (256u * 1024u)
#endif

void *regf_zero_alloc(size_t bytes)
{
#if defined(_WIN32)
    if (bytes >= ZERO_PAGES_MIN)
        return VirtualAlloc(NULL, bytes, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
#elif defined(MAP_ANONYMOUS)
    if (bytes >= ZERO_PAGES_MIN) {
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
#endif
    return calloc(bytes ? bytes : 1, 1);
}

void regf_zero_free(void *p, size_t bytes)
{
    if (!p) return;
#if defined(_WIN32)
    if (bytes >= ZERO_PAGES_MIN) {
        VirtualFree(p, 0, MEM_RELEASE);
        return;
    }
#elif defined(MAP_ANONYMOUS)
    if (bytes >= ZERO_PAGES_MIN) {
        munmap(p, bytes);
        return;
    }
#endif
    free(p);
}

rf_status regf_lazy_init(regf_hive *h, uint64_t declared)
{
    size_t pages = (size_t)(declared >> 12) + 1;
    h->cell_start_bytes = ((size_t)(declared / 512) + 1) * sizeof(uint64_t);
    h->cell_start = regf_zero_alloc(h->cell_start_bytes);
    h->page_state_bytes = pages;
    h->page_state = regf_zero_alloc(pages);
    if (!h->cell_start || !h->page_state)
        return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the cell bitmap");
    h->bins_len = declared;
    h->chain_end = 0;
    h->chain_broken = 0;
    lock_init(h);
    h->lazy = 1;
    return RF_OK;
}

void regf_lazy_free(regf_hive *h)
{
    if (h->lazy) lock_free(h);
    h->lazy = 0;
    regf_zero_free(h->page_state, h->page_state_bytes);
    h->page_state = NULL;
    h->page_state_bytes = 0;
    free(h->scratch);
    h->scratch = NULL;
    h->scratch_words = 0;
    free(h->bad);
    h->bad = NULL;
    h->n_bad = h->bad_cap = 0;
    free(h->bad_of_page);
    h->bad_of_page = NULL;
}

/* ---- under the lock ------------------------------------------------------- */

/* Walks the hbin chain until it covers `off` (or breaks): each hbin's pages
 * become KNOWN, its first page START. A header that breaks the chain stops
 * it for good: every offset from there on fails (chain_broken). */
#define CHAIN_PREFETCH (4u * 4096u) /* 8: as good; 15 and more: no gain (past the fault-around) */
static void extend_chain(regf_hive *h, uint64_t off)
{
    while (!h->chain_broken && h->chain_end <= off && h->chain_end < h->bins_len) {
        uint64_t at = h->chain_end;
        uint32_t hsize;
#if defined(__GNUC__) || defined(__clang__)
        /* Most hbins are 4 KiB, so the header four pages on is likely a
         * later link of the chain: asking for its line now overlaps that
         * miss with this one (a prefetch never faults; a page the kernel
         * mapped around this one's fault gets its line on the way). The walk
         * to a key near the end of the 110 MB bench hive: 1.85 -> 1.55 ms. */
        if (at + CHAIN_PREFETCH < h->bins_len)
            __builtin_prefetch(h->bins + at + CHAIN_PREFETCH);
#endif
        if (regf_hbin_problem(h->bins, at, h->bins_len, 0, &hsize)) {
            h->chain_broken = 1;
            return;
        }
        for (uint64_t p = at >> 12; p < (at + hsize) >> 12; p++)
            state_store(&h->page_state[p], (uint8_t)(PAGE_KNOWN | (p == at >> 12 ? PAGE_START : 0)));
        h->chain_end = at + hsize;
    }
}

/* The error of the broken chain (its first bad header, as a strict open says it). */
static rf_status chain_error(const regf_hive *h)
{
    uint32_t hsize;
    const char *why = regf_hbin_problem(h->bins, h->chain_end, h->bins_len, 0, &hsize);
    return regf_hbin_fail(h, h->chain_end, why ? why : "the hbin header changed since it was read",
                          hsize, h->bins_len);
}

/* The hbin holding page p (KNOWN): [*start, *end). */
static void hbin_of(const regf_hive *h, uint64_t p, uint64_t *start, uint64_t *end)
{
    uint64_t s = p, e = p + 1, last = h->chain_end >> 12;
    while (s > 0 && !(h->page_state[s] & PAGE_START)) s--;
    while (e < last && !(h->page_state[e] & PAGE_START)) e++;
    *start = s << 12;
    *end = e << 12;
}

/* An hbin whose cells failed the check, and the cell that failed it: every
 * later use of an offset in it gets that failure again without a walk (a
 * list of N entries into one big damaged hbin cost N walks of it), and the
 * same failure even if the bytes change meanwhile. */
struct regf_bad_hbin { uint64_t start, end, cell; int32_t raw; };

static rf_status bad_error(const struct regf_bad_hbin *b)
{
    return regf_cell_size_fail(b->cell, b->raw, b->end - b->cell, b->start);
}

/* Records the failure of the hbin [s, e) and marks its pages BAD; without
 * memory for the record nothing is marked, and the next use walks again. */
static void remember_bad(regf_hive *h, uint64_t s, uint64_t e, uint64_t cell, int32_t raw)
{
    if (!h->bad_of_page && !(h->bad_of_page = calloc((size_t)(h->bins_len >> 12) + 1, sizeof(uint32_t))))
        return;
    if (h->n_bad == h->bad_cap) {
        size_t cap = h->bad_cap ? 2 * h->bad_cap : 8;
        struct regf_bad_hbin *b = realloc(h->bad, cap * sizeof *b);
        if (!b) return;
        h->bad = b;
        h->bad_cap = cap;
    }
    h->bad[h->n_bad] = (struct regf_bad_hbin){ s, e, cell, raw };
    h->n_bad++;
    for (uint64_t q = s >> 12; q < e >> 12; q++) {
        h->bad_of_page[q] = (uint32_t)h->n_bad;
        state_store(&h->page_state[q], (uint8_t)(h->page_state[q] | PAGE_BAD));
    }
}

/* One hbin's cell chain being checked: the hbin [s, e), the next cell c,
 * the bits of its cell starts (bit i: a cell at s + 8 i) and its counts;
 * on damage, the cell and size that failed. */
typedef struct cell_chain {
    uint64_t s, e, c;
    uint64_t *bits;
    regf_cell_counts n;
    uint64_t bad_cell;
    int32_t bad_raw;
    int bad;
} cell_chain;

/* Chains the cells of k hbins, one cell of each in turn. Each step of a
 * chain waits on the load of the size before it (the next cell is known
 * only then), so one chain at a time leaves the core idle on every cache
 * miss; CHECK_GROUP chains in flight overlap the misses (the 2.1 M cells of
 * the 110 MB bench hive: 19 ms one hbin at a time, 10 ms four at once). */
#define CHECK_GROUP 4
static void check_cells(const regf_hive *h, cell_chain *ch, int k)
{
    const uint8_t *bins = h->bins;
    int live = 1;
    while (live) {
        live = 0;
        for (int j = 0; j < k; j++) {
            cell_chain *x = &ch[j];
            uint64_t c = x->c;
            if (c >= x->e) continue;
            int32_t raw = (int32_t)rf_le32(bins + c);
            uint64_t csize = raw < 0 ? (uint64_t)(-(int64_t)raw) : (uint64_t)raw;
            if (csize < 8 || (csize & 7) || csize > x->e - c) {
                x->bad = 1;
                x->bad_cell = c;
                x->bad_raw = raw;
                x->c = x->e;
                continue;
            }
            uint64_t i = (c - x->s) >> 3;
            x->bits[i >> 6] |= (uint64_t)1 << (i & 63);
            regf_tally_cell(&x->n, bins, c, raw);
            x->c = c + csize;
            live |= x->c < x->e;
        }
    }
}

/* Checks the hbin holding `off` (the chain covers it), once: RF_OK when its
 * cells passed (now or before), else the error it failed with (the first
 * time, and every time after). With `ahead`, the unchecked hbins right
 * after it on the chain (up to CHECK_GROUP in all) are checked with it, for
 * a reader about to use them all: their damage is remembered, not
 * reported, exactly as if each had been checked on its first use. */
static rf_status check_hbin(regf_hive *h, uint64_t off, int ahead)
{
    uint64_t p = off >> 12;
    uint8_t st = h->page_state[p];
    if (st & PAGE_READY) return RF_OK;
    if (st & PAGE_BAD) return bad_error(&h->bad[h->bad_of_page[p] - 1]);
    cell_chain ch[CHECK_GROUP];
    int k = 0;
    size_t words = 0;
    uint64_t s, e;
    hbin_of(h, p, &s, &e);
    for (;;) {
        memset(&ch[k], 0, sizeof ch[k]);
        ch[k].s = s;
        ch[k].e = e;
        ch[k].c = s + REGF_HBIN_HEADER;
        words += (size_t)((e - s) >> 9);
        k++;
        if (!ahead || k == CHECK_GROUP) break;
        extend_chain(h, e);
        if (e >= h->chain_end || (h->page_state[e >> 12] & (PAGE_READY | PAGE_BAD))) break;
        hbin_of(h, e >> 12, &s, &e);
    }
    while (words > h->scratch_words) {
        /* the hive's, not this frame's: a fault (the file cut) jumps out of
         * the check, and a buffer only this frame knew would leak */
        uint64_t *w = realloc(h->scratch, words * sizeof *w);
        if (w) {
            h->scratch = w;
            h->scratch_words = words;
        } else if (k > 1) {
            k = 1;          /* no room for the group: the target alone, as before groups */
            words = (size_t)((ch[0].e - ch[0].s) >> 9);
        } else {
            return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory to check the hbin at 0x%llx",
                            (unsigned long long)(ch[0].s + REGF_BASE_BLOCK));
        }
    }
    memset(h->scratch, 0, words * sizeof *h->scratch);
    for (size_t j = 0, at = 0; j < (size_t)k; at += (size_t)((ch[j].e - ch[j].s) >> 9), j++)
        ch[j].bits = h->scratch + at;
    check_cells(h, ch, k);
    for (int j = 0; j < k; j++) {
        cell_chain *x = &ch[j];
        if (x->bad) {
            remember_bad(h, x->s, x->e, x->bad_cell, x->bad_raw);
            continue;
        }
        /* publish: the words first (a set bit is a checked cell start), then READY */
        size_t n = (size_t)((x->e - x->s) >> 9);
        for (size_t w = 0; w < n; w++) regf_bits_store(&h->cell_start[(x->s >> 9) + w], x->bits[w]);
        regf_add_counts(h, &x->n);
        for (uint64_t q = x->s >> 12; q < x->e >> 12; q++)
            state_store(&h->page_state[q], (uint8_t)(h->page_state[q] | PAGE_READY));
    }
    if (ch[0].bad) return regf_cell_size_fail(ch[0].bad_cell, ch[0].bad_raw, ch[0].e - ch[0].bad_cell, ch[0].s);
    return RF_OK;
}

/* The hbin holding `off` (< bins_len) checked: RF_OK, or why it cannot be. */
static rf_status ensure_locked(regf_hive *h, uint64_t off)
{
    extend_chain(h, off);
    if (off >= h->chain_end) return chain_error(h);
    return check_hbin(h, off, 0);
}

/* Runs `ensure_locked` under the lock and a guard of its own: a fault (the
 * file cut under the mapping) must not leave the lock taken. */
static rf_status ensure(const regf_hive *ch, uint64_t off)
{
    regf_hive *h = (regf_hive *)ch; /* the lazy state is the one mutable part of a hive */
    rf_status st = RF_OK;
    lock(h);
    REGF_GUARD_BEGIN(h->map, h->size)
        st = ensure_locked(h, off);
    REGF_GUARD_END(st)
    unlock(h);
    return st;
}

/* ---- entry points --------------------------------------------------------- */

int regf_lazy_check(const regf_hive *h, uint64_t off)
{
    /* a page already checked: the bit the caller saw clear is final */
    if (!(state_load(&h->page_state[off >> 12]) & PAGE_READY) && ensure(h, off) != RF_OK) return 0;
    return (int)((regf_bits_load(&h->cell_start[off >> 9]) >> ((off >> 3) & 63)) & 1);
}

rf_status regf_lazy_error(const regf_hive *h, uint64_t off)
{
    if (!h->lazy || off >= h->bins_len) return RF_OK;
    if (state_load(&h->page_state[off >> 12]) & PAGE_READY) return RF_OK;
    return ensure(h, off);
}

int regf_all_checked(const regf_hive *h)
{
    return !h->lazy || flag_load(&h->checked_all);
}

/* Every hbin not yet checked, in file order, CHECK_GROUP at a time: the
 * first damage or break of the chain is returned, in file order, as a
 * strict open reported it. Every hbin passed: the counts are final. */
static rf_status check_all_locked(regf_hive *h)
{
    for (uint64_t at = 0; at < h->bins_len;) {
        extend_chain(h, at);
        if (at >= h->chain_end) return chain_error(h);
        rf_status st = check_hbin(h, at, 1);
        if (st) return st;
        uint64_t s, e;
        hbin_of(h, at >> 12, &s, &e);
        at = e;
    }
    h->info.hbins_found = h->bins_len;
    flag_store(&h->checked_all, 1);
    return RF_OK;
}

rf_status regf_check_all(const regf_hive *ch)
{
    regf_hive *h = (regf_hive *)ch;
    if (regf_all_checked(h)) return RF_OK;
    rf_status st = RF_OK;
    lock(h);
    REGF_GUARD_BEGIN(h->map, h->size)
        st = check_all_locked(h);
    REGF_GUARD_END(st)
    unlock(h);
    return st;
}
