/* A direct-mapped cache from a stored name's bytes to the str built for it.
 *
 * Registry names repeat: the corpus's real UsrClass and Amcache hives have
 * ~20k value rows each but only a few hundred distinct value names
 * ("DisplayName", "InprocServer32", the default value...). Building a
 * fresh str for each row costs an allocation, a write of its characters
 * and, on a big hive, the page faults and cache misses of memory nobody
 * touched before (a whole-table decode of the 110 MB bench hive faults in
 * ~250 MB of new objects). Looking the
 * bytes up here first hands back the str already built for the same
 * bytes: one hash of a short name, one compare, one reference.
 *
 * The cache is a fixed array of slots indexed by the hash; a miss replaces
 * the slot. Bounded memory, no resizing; strings longer than the cache's
 * max_bytes are not cached (they rarely repeat, and their hash would cost
 * more than it saves).
 *
 * Slots hold the name's location in the mapping (the cache's user keeps
 * the mapping alive) and a str whose reference is owned by whoever the
 * user says (decode_names: a borrowed reference into the output list).
 * Equal bytes give an equal str, so sharing one object changes nothing a
 * caller can observe but `is` (strs are immutable). Sharing is best
 * effort: a slot holds the last name hashed to it, and the cache sits out
 * stretches of distinct names (UsrClass: 938 strs for 325 distinct names
 * in 19,987 rows).
 */
#ifndef REGFAST_STRCACHE_H
#define REGFAST_STRCACHE_H

#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct rf_str_slot {
    const uint8_t *p;   /* the name's bytes (in the mapping) */
    uint32_t raw;       /* its length word: bytes | RF_NAME_UTF16_BIT */
    PyObject *s;        /* the str built for it; NULL: empty slot */
} rf_str_slot;

/* A multiply-xorshift hash over 8-byte words; the last word overlaps the
   one before it rather than reading past the name (which may end at the
   mapping's last byte). Mixes in the length word so a Latin-1 and a
   UTF-16 name with the same bytes land apart. */
static inline uint64_t rf_strcache_hash(const uint8_t *p, uint32_t n, uint32_t raw)
{
    const uint64_t k = 0x9E3779B97F4A7C15ull;
    uint64_t h = ((uint64_t)raw + 1) * k, w;
    uint32_t i = 0;
    if (n >= 8) {
        for (; i + 8 <= n; i += 8) {
            memcpy(&w, p + i, 8);
            h = (h ^ w) * k;
            h ^= h >> 29;
        }
        if (i < n) {
            memcpy(&w, p + n - 8, 8);
            h = (h ^ w) * k;
        }
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        h = (h ^ (((uint64_t)a << 32) | b)) * k;
    } else if (n) {
        h = (h ^ ((uint64_t)p[0] << 16 | (uint64_t)p[n >> 1] << 8 | p[n - 1])) * k;
    }
    return h ^ (h >> 32);
}

/* The cache pays only when names repeat: a hit saves about what a miss
   costs. Each window of RF_STRCACHE_WINDOW lookups where fewer than half
   hit turns it off for the next RF_STRCACHE_REST rows, so mostly distinct
   names (key names, generated hives of random words) cost ~1 ns a row. */
#define RF_STRCACHE_SLOTS 4096u   /* at most: 96 KB, stays in L2 */
#define RF_STRCACHE_WINDOW 256u
#define RF_STRCACHE_REST 1024u

typedef struct rf_str_cache {
    rf_str_slot *table;
    size_t mask;                /* slots - 1 (a power of two) */
    uint32_t max_bytes;         /* longer strings are not cached */
    uint32_t looked, hits, rest;
} rf_str_cache;

/* A cache for a column of `rows` strings (no more slots than rows); -1
   when out of memory. */
static inline int rf_strcache_init(rf_str_cache *c, size_t rows, uint32_t max_bytes)
{
    size_t slots = RF_STRCACHE_SLOTS;
    while (slots > 16 && slots > rows)
        slots >>= 1;
    c->table = (rf_str_slot *)calloc(slots, sizeof(rf_str_slot));
    c->mask = slots - 1;
    c->max_bytes = max_bytes;
    c->looked = c->hits = c->rest = 0;
    return c->table ? 0 : -1;
}

static inline void rf_strcache_free(rf_str_cache *c)
{
    free(c->table);
    c->table = NULL;
}

/* The slot for the string (p, nbytes; `raw` tells apart strings of equal
   bytes that decode differently), or NULL when it is not to be cached:
   too long, or the cache is sitting out. */
static inline rf_str_slot *rf_strcache_slot(rf_str_cache *c, const uint8_t *p, uint32_t raw,
                                            uint32_t nbytes)
{
    if (nbytes > c->max_bytes)
        return NULL;        /* not cached, and no say in the hit rate */
    if (c->rest) {
        c->rest--;
        return NULL;
    }
    if (c->looked == RF_STRCACHE_WINDOW) {
        if (2 * c->hits < c->looked)
            c->rest = RF_STRCACHE_REST;
        c->looked = c->hits = 0;
    }
    c->looked++;
    return &c->table[rf_strcache_hash(p, nbytes, raw) & c->mask];
}

/* The slot's str when it was built from the same string, else NULL. */
static inline PyObject *rf_strcache_hit(rf_str_cache *c, const rf_str_slot *slot, const uint8_t *p,
                                        uint32_t raw, uint32_t nbytes)
{
    if (slot->s != NULL && slot->raw == raw && memcmp(slot->p, p, nbytes) == 0) {
        c->hits++;
        return slot->s;
    }
    return NULL;
}

/* Remembers s (a borrowed reference: the caller keeps it alive while the
   cache lives) as the str of the slot's string. */
static inline void rf_strcache_put(rf_str_slot *slot, const uint8_t *p, uint32_t raw, PyObject *s)
{
    slot->p = p;
    slot->raw = raw;
    slot->s = s;
}

#endif
