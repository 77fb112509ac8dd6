/* UTF-16LE and Latin-1 text helpers shared by the binding's modules
 * (_native: Value.value and names; _bulk: a table's names and paths). */
#ifndef REGFAST_TEXT_H
#define REGFAST_TEXT_H

#include <Python.h>
#include <stdint.h>
#include <string.h>

/* UTF-16LE strings eight units (16 bytes) at a time with SSE2 (every
   x86-64 has it), else four (8 bytes) at a time on little-endian hosts,
   where a unit is a 16-bit lane of the word; the tail (and big-endian
   hosts) one unit at a time. Measured on the 110 MB bench hive: the
   one-unit loops were ~20% of decoding its 514k strings (22 chars on
   average); the 4-unit loops still ~8% of a Key/Value walk of Amcache.hve. */
#if defined(__SSE2__) && PY_LITTLE_ENDIAN
#include <emmintrin.h>
#define RF_U16_SSE2 1
#endif
static inline size_t rf_u16_scan(const uint8_t *p, size_t n, int stop_at_nul, uint16_t *bits_out)
{
    /* units up to the first NUL (stop_at_nul) or n; *bits_out = their OR */
    size_t i = 0;
    uint64_t acc = 0;
#if RF_U16_SSE2
    __m128i vacc = _mm_setzero_si128();
    const __m128i zero = _mm_setzero_si128();
    int nul = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i w = _mm_loadu_si128((const __m128i *)(p + 2 * i));
        if (stop_at_nul && _mm_movemask_epi8(_mm_cmpeq_epi16(w, zero)))
            break;                  /* the block below finds which unit */
        vacc = _mm_or_si128(vacc, w);
    }
    if (i < n && n >= 8) {
        /* The block holding the NUL, or the last 8 units, overlapping units
           already read (no NUL among those, and OR-ing them again changes
           nothing): no unit-at-a-time tail for strings of 8 units or more
           (it was ~1/3 of this function on a hive's REG_SZ values, most of
           which end in a partial block). */
        size_t base = i + 8 <= n ? i : n - 8;
        unsigned end = 8;
        __m128i w = _mm_loadu_si128((const __m128i *)(p + 2 * base));
        int m = stop_at_nul ? _mm_movemask_epi8(_mm_cmpeq_epi16(w, zero)) : 0;
        if (m) {
            end = (unsigned)__builtin_ctz((unsigned)m) >> 1;   /* the first NUL unit */
            nul = 1;
        }
        const __m128i lane = _mm_set_epi16(7, 6, 5, 4, 3, 2, 1, 0);
        vacc = _mm_or_si128(vacc, _mm_and_si128(w, _mm_cmplt_epi16(lane, _mm_set1_epi16((short)end))));
        i = base + end;
    }
    vacc = _mm_or_si128(vacc, _mm_srli_si128(vacc, 8));
    vacc = _mm_or_si128(vacc, _mm_srli_si128(vacc, 4));
    vacc = _mm_or_si128(vacc, _mm_srli_si128(vacc, 2));
    acc = (uint16_t)_mm_cvtsi128_si32(vacc);
    if (nul) {
        *bits_out = (uint16_t)acc;
        return i;
    }
#elif PY_LITTLE_ENDIAN
    for (; i + 4 <= n; i += 4) {
        uint64_t w;
        memcpy(&w, p + 2 * i, 8);
        /* nonzero iff some 16-bit lane is 0 (the has-zero-byte trick on lanes) */
        if (stop_at_nul && ((w - 0x0001000100010001ULL) & ~w & 0x8000800080008000ULL))
            break;                  /* the tail loop finds which unit */
        acc |= w;
    }
    acc |= acc >> 32;
    acc |= acc >> 16;
#endif
    uint16_t bits = (uint16_t)acc;
    for (; i < n; i++) {
        uint16_t c = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
        if (c == 0 && stop_at_nul)
            return *bits_out = bits, i;
        bits |= c;
    }
    *bits_out = bits;
    return n;
}

static inline uint8_t rf_bytes_or(const uint8_t *p, size_t n)
{
    /* the OR of n bytes: below 0x80 means ASCII (a compact 1-byte str) */
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= p[i];
    acc |= acc >> 32;
    acc |= acc >> 16;
    acc |= acc >> 8;
    return (uint8_t)acc;
}

static inline void rf_u16_narrow(uint8_t *dst, const uint8_t *p, size_t n)
{
    /* the low bytes of n units (all below 0x100: packus saturates none) */
    size_t i = 0;
#if RF_U16_SSE2
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(p + 2 * i));
        __m128i b = _mm_loadu_si128((const __m128i *)(p + 2 * i + 16));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_packus_epi16(a, b));
    }
    if (i + 8 <= n) {
        __m128i a = _mm_loadu_si128((const __m128i *)(p + 2 * i));
        _mm_storel_epi64((__m128i *)(dst + i), _mm_packus_epi16(a, a));
        i += 8;
    }
#endif
#if PY_LITTLE_ENDIAN
    for (; i + 4 <= n; i += 4) {
        uint64_t w;
        uint32_t b;
        memcpy(&w, p + 2 * i, 8);
        b = (uint32_t)(w & 0xFF) | (uint32_t)((w >> 8) & 0xFF00) |
            (uint32_t)((w >> 16) & 0xFF0000) | (uint32_t)((w >> 24) & 0xFF000000);
        memcpy(dst + i, &b, 4);
    }
#endif
    for (; i < n; i++)
        dst[i] = p[2 * i];
}

#endif
