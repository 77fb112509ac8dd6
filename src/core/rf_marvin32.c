/* rf_marvin32.c — Marvin32, the keyed hash Windows uses to protect new-format
 * (HvLE) transaction-log entries. Same algorithm as .NET's/SymCrypt's; the
 * 64-bit result is (high lane << 32) | low lane, as the log stores it. */
#include "core/rf_internal.h"

static inline uint32_t rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

#define MARVIN_MIX(lo, hi)          \
    do {                            \
        hi ^= lo;                   \
        lo = rotl(lo, 20) + hi;     \
        hi = rotl(hi, 9) ^ lo;      \
        lo = rotl(lo, 27) + hi;     \
        hi = rotl(hi, 19);          \
    } while (0)

uint64_t rf_marvin32(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint32_t lo = (uint32_t)seed, hi = (uint32_t)(seed >> 32);
    size_t i = 0;
    for (; len - i >= 4; i += 4) {
        lo += rf_le32(p + i);
        MARVIN_MIX(lo, hi);
    }
    /* the tail: up to 3 bytes, then a 0x80 terminator, as one little-endian word */
    uint32_t w = 0x80;
    for (size_t k = len - i; k > 0; k--) w = (w << 8) | p[i + k - 1];
    lo += w;
    MARVIN_MIX(lo, hi);
    MARVIN_MIX(lo, hi); /* the final block adds 0 */
    return ((uint64_t)hi << 32) | lo;
}
