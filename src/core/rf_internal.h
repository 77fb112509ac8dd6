/*
 * rf_internal.h — helpers shared by the core and the backends. Not installed.
 */
#ifndef RF_INTERNAL_H
#define RF_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include "regfast/regfast.h"

#if defined(__MINGW32__)
/* mingw: check against the C99 printf we build with (__USE_MINGW_ANSI_STDIO,
 * set by cmake/mingw-w64-x86_64.cmake), not msvcrt's, which knows no %zu */
#define RF_PRINTF(a, b) __attribute__((format(gnu_printf, a, b)))
#define RF_LIKELY(x) __builtin_expect(!!(x), 1)
#define RF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#elif defined(__GNUC__) || defined(__clang__)
#define RF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define RF_LIKELY(x) __builtin_expect(!!(x), 1)
#define RF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define RF_PRINTF(a, b)
#define RF_LIKELY(x) (x)
#define RF_UNLIKELY(x) (x)
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

#endif
