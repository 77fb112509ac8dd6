/* rf_text.c — UTF-8 (WTF-8: lone surrogates pass) -> UTF-16 and the Windows-style case folding used to
 * compare registry names. */
#include "core/rf_internal.h"
#include "core/rf_upcase_table.h"

uint16_t rf_upcase(uint16_t c)
{
    if (c < 0x80) /* the common case: ASCII names */
        return (uint16_t)(c - ((unsigned)(c - (unsigned)'a') < 26u ? 32 : 0));
    return (uint16_t)(c + rf_upcase_pages[rf_upcase_index[c >> 8]][c & 0xFF]);
}

uint32_t rf_lh_hash(const uint16_t *name, size_t nchars)
{
    uint32_t h = 0;
    for (size_t i = 0; i < nchars; i++)
        h = h * 37u + rf_upcase(name[i]);
    return h;
}

long rfi_utf8_to_utf16(const char *s, size_t len, uint16_t *out, size_t cap)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + len;
    size_t n = 0;
    while (p < end) {
        uint32_t cp;
        uint8_t b = *p;
        size_t need;
        if (b < 0x80) { cp = b; need = 0; }
        else if ((b & 0xE0) == 0xC0) { cp = b & 0x1F; need = 1; }
        else if ((b & 0xF0) == 0xE0) { cp = b & 0x0F; need = 2; }
        else if ((b & 0xF8) == 0xF0) { cp = b & 0x07; need = 3; }
        else return -1;
        if ((size_t)(end - p) <= need) return -1;
        for (size_t i = 1; i <= need; i++) {
            if ((p[i] & 0xC0) != 0x80) return -1;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        /* Reject overlong forms and out-of-range code points. Surrogates are
         * let through as the UTF-16 unit they name (WTF-8): registry names
         * are UTF-16 units that Windows never checks, a hive may hold a lone
         * half of a pair, and Python hands such a name over encoded with
         * "surrogatepass"; refusing it would make a name the library reads
         * impossible to look up. Strict UTF-8 never produces these bytes. */
        static const uint32_t min_cp[4] = { 0, 0x80, 0x800, 0x10000 };
        if (cp < min_cp[need] || cp > 0x10FFFF) return -1;
        p += need + 1;
        if (cp >= 0x10000) {
            if (n + 2 > cap) return -2;
            cp -= 0x10000;
            out[n++] = (uint16_t)(0xD800 | (cp >> 10));
            out[n++] = (uint16_t)(0xDC00 | (cp & 0x3FF));
        } else {
            if (n + 1 > cap) return -2;
            out[n++] = (uint16_t)cp;
        }
    }
    return (long)n;
}
