/*
 * regf_fail.c — the regf backend's corrupt-structure errors and the problem
 * list of tolerant opens, in one file that calls nothing else of the
 * backend: every reader (open, keys, values, batches, deleted records)
 * reports through here, so keeping them apart from regf_open.c keeps the
 * backend's files free of call cycles (tools/check_c_cycles.py).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "hive/regf_internal.h"

/* The list is bounded: past RF_MAX_PROBLEMS entries a hive full of damage
 * would only cost memory, so later problems are counted, not kept. */
rf_status regf_problem_vadd(regf_hive *h, uint32_t kind, uint64_t off, uint64_t len, const char *fmt, va_list ap)
{
    h->problems_total++;
    if (h->n_problems >= RF_MAX_PROBLEMS) return RF_OK;
    if (h->n_problems == h->problems_cap) {
        size_t nc = h->problems_cap ? h->problems_cap * 2 : 16;
        if (nc > RF_MAX_PROBLEMS) nc = RF_MAX_PROBLEMS;
        rf_problem *q = realloc(h->problems, nc * sizeof *q);
        if (!q) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the problem list");
        h->problems = q;
        h->problems_cap = nc;
    }
    rf_problem *p = &h->problems[h->n_problems++];
    p->offset = off;
    p->length = len;
    p->kind = kind;
    vsnprintf(p->reason, sizeof p->reason, fmt, ap);
    return RF_OK;
}

static rf_status problem_add(regf_hive *h, uint32_t kind, uint64_t off, uint64_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rf_status st = regf_problem_vadd(h, kind, off, len, fmt, ap);
    va_end(ap);
    return st;
}

rf_status regf_add_problem(regf_hive *h, uint32_t kind, uint64_t off, const char *reason)
{
    return problem_add(h, kind, off, 0, "%s", reason);
}

rf_status regf_cell_fail(const regf_hive *h, uint32_t off, const char *what)
{
    rf_status lazy;
    /* an offset in a damaged hbin of a lazily checked hive: the damage is
     * the error, where it lies (as a strict open reported it) */
    if (!regf_is_cell(h, off) && (lazy = regf_lazy_error(h, off)) != RF_OK) return lazy;
    if (!regf_is_cell(h, off))
        return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                        "%s at 0x%llx: not the start of a cell", what,
                        (unsigned long long)regf_file_off(off));
    int32_t size = (int32_t)rf_le32(h->bins + off);
    uint64_t csize = size < 0 ? (uint64_t)(-(int64_t)size) : (uint64_t)size;
    if (csize < 8 || csize > h->bins_len - off)
        /* the hbin's check accepted this cell: its size changed since */
        return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                        "%s at 0x%llx: cell size %d does not fit in the 0x%llx bytes of hbins left "
                        "(the file changed after it was opened?)", what,
                        (unsigned long long)regf_file_off(off), size, (unsigned long long)(h->bins_len - off));
    return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                    "%s at 0x%llx: cell is free (size %d), not allocated", what,
                    (unsigned long long)regf_file_off(off), size);
}

rf_status regf_record_fail(const regf_hive *h, uint32_t off, const char sig[2], uint32_t min_len,
                           const uint8_t *data, uint32_t len)
{
    uint8_t s0 = len >= 2 ? data[0] : 0, s1 = len >= 2 ? data[1] : 0;
    return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                    "expected '%c%c' at 0x%llx: found signature %02x %02x in a %u-byte cell "
                    "(need at least %u)", sig[0], sig[1], (unsigned long long)regf_file_off(off),
                    s0, s1, len, min_len);
}

rf_status regf_name_len_fail(uint32_t off, const char *what, uint32_t name_len, uint32_t room)
{
    return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0, "%s at 0x%llx: name_len %u exceeds cell size %u",
                    what, (unsigned long long)regf_file_off(off), name_len, room);
}

rf_status regf_odd_name_fail(uint32_t off, const char *what, uint32_t name_len)
{
    return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0, "%s at 0x%llx: UTF-16 name has an odd length of %u bytes",
                    what, (unsigned long long)regf_file_off(off), name_len);
}
