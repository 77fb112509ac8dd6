/*
 * nt_typed.c — rf_live_get_value: RegGetValueW's contract on top of one
 * NtQueryValueKey (Partial, negotiated buffer).
 *
 * The order of the checks follows RegGetValueW (Wine 8 kernelbase, checked
 * against Windows' documentation): argument checks, the read, REG_EXPAND_SZ
 * expansion (the result is REG_SZ and is then filtered as REG_SZ), the
 * RRF_RT_* type filter (1630) with the DWORD/QWORD size rules (1629), then
 * the size check (234). tests/c/nt/test_nt_typed.c compares every (type,
 * flags, buffer size) case with RegGetValueW itself, under Wine and natively
 * on the Windows CI, so any difference between the two shows up there.
 */
#include <stdlib.h>
#include "nt/nt_internal.h"

/* ADVAPI's type restriction: 0, 1630 ERROR_UNSUPPORTED_TYPE, 1629 ERROR_DATATYPE_MISMATCH. */
static rf_status restrict_type(uint32_t flags, uint32_t type, size_t len)
{
    uint32_t mask = 0;
    switch (type) {
    case RF_REG_NONE:      mask = RF_RRF_RT_REG_NONE; break;
    case RF_REG_SZ:        mask = RF_RRF_RT_REG_SZ; break;
    case RF_REG_EXPAND_SZ: mask = RF_RRF_RT_REG_EXPAND_SZ; break;
    case RF_REG_MULTI_SZ:  mask = RF_RRF_RT_REG_MULTI_SZ; break;
    case RF_REG_BINARY:    mask = RF_RRF_RT_REG_BINARY; break;
    case RF_REG_DWORD:     mask = RF_RRF_RT_REG_DWORD; break;
    case RF_REG_QWORD:     mask = RF_RRF_RT_REG_QWORD; break;
    default:               mask = 0; break; /* REG_LINK, resource lists, 0xFFFF00xx...: */
    }                                          /* refused even by RRF_RT_ANY, as RegGetValueW does */
    if (!(flags & mask)) return RF_E_UNSUPPORTED_TYPE;
    /* REG_BINARY stands in for a DWORD/QWORD only at that size. A REG_DWORD
     * or REG_QWORD of the wrong size is returned as stored (RegGetValueW
     * under Wine 8; the oracle test re-checks it natively on Windows CI). */
    if (type == RF_REG_BINARY && (flags & RF_RRF_RT_ANY) == RF_RRF_RT_DWORD && len != 4) return RF_E_DATATYPE_MISMATCH;
    if (type == RF_REG_BINARY && (flags & RF_RRF_RT_ANY) == RF_RRF_RT_QWORD && len != 8) return RF_E_DATATYPE_MISMATCH;
    return RF_OK;
}

/* Bytes to add so a string type ends with its NUL terminator(s). */
static size_t nul_fix(uint32_t type, const uint8_t *data, size_t len)
{
    if (type != RF_REG_SZ && type != RF_REG_EXPAND_SZ && type != RF_REG_MULTI_SZ) return 0;
    size_t add = len & 1;                    /* an odd byte: pad to whole UTF-16 units */
    size_t chars = (len + 1) / 2;
    uint16_t last = 0, before = 0;
    if (chars) {
        memcpy(&last, data + 2 * (chars - 1), (len & 1) ? 1 : 2);
        if (len & 1) last &= 0xFF;
    }
    if (chars >= 2) memcpy(&before, data + 2 * (chars - 2), 2);
    if (!chars) return 0; /* empty data stays empty, as RegGetValueW returns it */
    if (last != 0) return add + (type == RF_REG_MULTI_SZ ? 4 : 2);
    if (type == RF_REG_MULTI_SZ && chars >= 2 && before != 0) return add + 2; /* "a\0" -> "a\0\0" */
    return add;
}

rf_status rf_live_get_value(rf_hive *base, rf_key k, const uint16_t *name, size_t nchars, uint32_t flags,
                            void *buf, size_t cap, uint32_t *type_out, size_t *len_out)
{
    nt_hive *h = nt_cast(base);
    rf_status st = RF_OK;
    uint32_t type = 0;
    size_t len = 0;
    if (type_out) *type_out = 0;
    if (len_out) *len_out = 0;
    if (!h) return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "not a live hive (rf_live_open)");
    /* Asking for REG_EXPAND_SZ while expanding (which yields REG_SZ) is a
     * contradiction, unless RRF_RT_ANY accepts anything. No RRF_RT_* bit at
     * all is not an error here: every type is then filtered out (1630). */
    if ((flags & RF_RRF_RT_REG_EXPAND_SZ) && !(flags & RF_RRF_NOEXPAND) &&
        (flags & RF_RRF_RT_ANY) != RF_RRF_RT_ANY)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                        "RRF_RT_REG_EXPAND_SZ without RRF_NOEXPAND (expansion yields REG_SZ)");
    if (buf && !len_out)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "buf without len_out");
    if (!name && nchars) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "name is NULL");

    nt_ref r;
    void *rec;
    ULONG rl;
    if ((st = nt_acquire(h, k, &r)) != RF_OK) goto fail;
    st = nt_query_value(h, &r, name, nchars, KeyValuePartialInformation, &rec, &rl);
    nt_release(h, &r);
    if (st) goto fail;
    nt_kv_partial *p = rec;
    type = p->Type;
    len = p->DataLength;
    const uint8_t *data = p->Data;

    if (type == RF_REG_EXPAND_SZ && !(flags & RF_RRF_NOEXPAND)) {
        /* ExpandEnvironmentStringsW wants a NUL-terminated source. */
        size_t chars = (len + 1) / 2;
        uint16_t *src = nt_scratch(NT_BUF_AUX, (chars + 1) * 2, NULL);
        if (!src) { st = RF_E_NO_MEMORY; goto fail; }
        memset(src, 0, (chars + 1) * 2);
        memcpy(src, data, len);
        size_t dcap = 0;
        uint16_t *dst = nt_scratch(NT_BUF_PATH, (chars + 1) * 2 + 256, &dcap);
        for (;;) {
            if (!dst) { st = RF_E_NO_MEMORY; goto fail; }
            DWORD want = ExpandEnvironmentStringsW((LPCWSTR)src, (LPWSTR)dst, (DWORD)(dcap / 2));
            if (!want) {
                st = nt_fail_win32((LONG)GetLastError(), "ExpandEnvironmentStringsW", name, nchars);
                goto fail;
            }
            if (want <= dcap / 2) { len = (size_t)want * 2; break; } /* counts the NUL */
            dst = nt_scratch(NT_BUF_PATH, (size_t)want * 2, &dcap);
        }
        data = (const uint8_t *)dst;
        type = RF_REG_SZ;
    }
    if ((st = restrict_type(flags, type, len)) != RF_OK) {
        char nm[96];
        nt_name_utf8(name, nchars, nm, sizeof nm);
        rfi_fail(st, RF_NO_OFFSET, (int64_t)st, "value %s: type %u %s (RRF flags 0x%x)", nm, type,
                 st == RF_E_UNSUPPORTED_TYPE ? "is filtered out" : "has the wrong size for its type", flags);
        if (len_out) *len_out = len;
        goto fail;
    }
    size_t add = nul_fix(type, data, len), out_len = len + add;
    if (type_out) *type_out = type;
    if (len_out) *len_out = out_len;
    if (!buf) return RF_OK; /* size query */
    if (cap < out_len) {
        st = rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "buffer of %zu bytes, the value needs %zu", cap, out_len);
        goto fail_sized;
    }
    memcpy(buf, data, len);
    memset((uint8_t *)buf + len, 0, add);
    return RF_OK;

fail:
    if (type_out) *type_out = type;
fail_sized:
    if (buf && (flags & RF_RRF_ZEROONFAILURE)) memset(buf, 0, cap);
    return st;
}
