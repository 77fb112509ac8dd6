/*
 * rf_internal.h — helpers shared by the core and the backends. Not installed.
 */
#ifndef RF_INTERNAL_H
#define RF_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include "regfast/regfast.h"
#include "regfast/regfast_backend.h"

#if defined(__MINGW32__)
/* mingw: check against the C99 printf we build with (__USE_MINGW_ANSI_STDIO,
 * set by cmake/mingw-w64-x86_64.cmake), not msvcrt's, which knows no %zu */
#define RF_PRINTF(a, b) __attribute__((format(gnu_printf, a, b)))
#define RF_LIKELY(x) __builtin_expect(!!(x), 1)
#define RF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RF_COLD __attribute__((noinline, cold))
#define RF_INLINE inline __attribute__((always_inline))
#elif defined(__GNUC__) || defined(__clang__)
#define RF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define RF_LIKELY(x) __builtin_expect(!!(x), 1)
#define RF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RF_COLD __attribute__((noinline, cold))
#define RF_INLINE inline __attribute__((always_inline))
#else
#define RF_PRINTF(a, b)
#define RF_LIKELY(x) (x)
#define RF_UNLIKELY(x) (x)
#define RF_COLD
#define RF_INLINE inline
#endif

/* Little-endian field readers. memcpy keeps them legal on unaligned data and
 * compiles to one load on x86/arm64. Big-endian hosts are not supported. */
static inline uint16_t rf_le16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t rf_le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t rf_le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Index of the lowest set bit (x != 0), on every compiler we build with. */
#if defined(_MSC_VER)
#include <intrin.h>
static inline unsigned rf_ctz64(uint64_t x) { unsigned long i; _BitScanForward64(&i, x); return (unsigned)i; }
#else
static inline unsigned rf_ctz64(uint64_t x) { return (unsigned)__builtin_ctzll(x); }
#endif

/*
 * Records the calling thread's last error and returns `code`, so a failure
 * reads `return rfi_fail(RF_E_CORRUPT, off, 0, "nk at 0x%llx: ...", ...);`.
 * `offset` is a hive file offset or RF_NO_OFFSET; `native` errno/Win32/NTSTATUS.
 */
rf_status rfi_fail(rf_status code, uint64_t offset, int64_t native, const char *fmt, ...)
    RF_PRINTF(4, 5);

/* UTF-8 -> UTF-16 into a caller buffer. Returns the number of code units
 * written, or -1 for invalid UTF-8 / -2 when `cap` is too small. */
long rfi_utf8_to_utf16(const char *s, size_t len, uint16_t *out, size_t cap);

/* ---- owned byte buffers (rf_bytes) ------------------------------------- */

/* Makes room for `more` bytes after b->len; RF_E_NO_MEMORY (rfi_fail'ed) if not. */
rf_status rfi_bytes_reserve(rf_bytes *b, size_t more);
/* Appends; 0 on success. */
rf_status rfi_bytes_put(rf_bytes *b, const void *p, size_t n);
rf_status rfi_bytes_u32(rf_bytes *b, uint32_t v);
rf_status rfi_bytes_u64(rf_bytes *b, uint64_t v);
static inline void rfi_put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }   /* little-endian hosts */

/* ---- snapshots (rf_snapshot.c) ------------------------------------------ */

/* The generic snapshot walk over rf_*, for a backend that must run it inside
 * a guard of its own (hive files: a fault on a vanished page jumps out of
 * it). Its scratch is allocated into *scratch (NULL on entry) as the walk
 * goes; the caller frees it with rfi_snapshot_release once the walk is over,
 * returned or not, and rolls `out` back to its length before on failure. */
typedef struct rfi_snap rfi_snap;
rf_status rfi_snapshot_walk(rf_hive *h, rf_key k, uint32_t flags, uint32_t max_keys, rf_bytes *out,
                            rfi_snap **scratch);
void rfi_snapshot_release(rfi_snap *scratch);

/* ---- security descriptors (rf_secdesc.c) -------------------------------- */

/* Checks a self-relative descriptor (header, every part inside it);
 * *present = the RF_SI_* parts it has. RF_E_INVALID_DATA when malformed. */
rf_status rfi_sd_check(const uint8_t *sd, size_t len, uint32_t *present);
/* The parts `si` asks for (0 = all) as a self-relative descriptor in buf:
 * the stored bytes when that is all of them, else rebuilt. RF_E_MORE_DATA
 * with *len_out = the size when cap is too small. */
rf_status rfi_sd_filter(const uint8_t *sd, size_t len, uint32_t si, void *buf, size_t cap, size_t *len_out,
                        uint32_t *si_out);

/* ---- hooks (rf_hook.c) --------------------------------------------------- */

/* Monotonic nanoseconds. */
uint64_t rfi_now_ns(void);

/* The installed hook, read once per call. Zero cost when none: callers test
 * rfi_hooks_on() (one load and a predictable branch) before building a record. */
typedef struct rfi_hook_state { rf_hook_fn fn; void *ctx; uint32_t phases; } rfi_hook_state;
extern rfi_hook_state *volatile rfi_hook_current;
#if defined(RF_HOOKS_COMPILED_OUT)
/* bench/hook_cost.c's baseline build only: the hook point removed */
#define rfi_hooks_on() 0
#elif defined(__GNUC__) || defined(__clang__)
#define rfi_hooks_on() RF_UNLIKELY(__atomic_load_n(&rfi_hook_current, __ATOMIC_ACQUIRE) != NULL)
#else
#define rfi_hooks_on() RF_UNLIKELY(rfi_hook_current != NULL)
#endif

/* A record for op `op` on (h, k), start time taken. */
void rfi_rec_init(rf_op_record *r, uint32_t op, rf_hive *h, rf_key k);
/* Runs the PRE hook: nonzero when it vetoed (the status to return is then
 * rfi_vetoed(r), which also runs the POST hook). */
int rfi_hook_pre(rf_op_record *r);
rf_status rfi_vetoed(rf_op_record *r);
/* Fills status/duration, runs the POST hook, returns st. */
rf_status rfi_hook_post(rf_op_record *r, rf_status st);

#endif
