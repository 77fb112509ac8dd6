/*
 * regf_fail.c — the regf backend's corrupt-structure errors, in one file
 * that calls nothing else of the backend: every reader (open, keys, values,
 * batches, deleted records) reports through here, so keeping them apart
 * from regf_open.c keeps the backend's files free of call cycles
 * (tools/check_c_cycles.py).
 */
#include "hive/regf_internal.h"

rf_status regf_cell_fail(const regf_hive *h, uint32_t off, const char *what)
{
    if (!regf_is_cell(h, off))
        return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                        "%s at 0x%llx: not the start of a cell", what,
                        (unsigned long long)regf_file_off(off));
    return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                    "%s at 0x%llx: cell is free (size %d), not allocated", what,
                    (unsigned long long)regf_file_off(off), (int32_t)rf_le32(h->bins + off));
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
