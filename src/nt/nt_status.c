/*
 * nt_status.c — the one table that turns an NTSTATUS into the Win32 error
 * code regfast returns (rf_status is LSTATUS-compatible).
 *
 * Every row agrees with ntdll's RtlNtStatusToDosError (tests/c/nt checks each
 * one against it, under Wine and on Windows), so a caller who knows the Win32
 * registry functions sees the code RegQueryValueExW & co. would have given.
 * Two entries of the reference chapter's error table are wrong and are NOT
 * followed: it calls 1010 ERROR_KEY_DELETED and 1013 ERROR_KEY_HAS_CHILDREN;
 * the real codes are ERROR_KEY_DELETED = 1018 (1010 is ERROR_BADKEY) and
 * ERROR_KEY_HAS_CHILDREN = 1020 (1013 is ERROR_CANTWRITE).
 *
 * Statuses not in the table fall back to RtlNtStatusToDosError itself.
 */
#include <stdio.h>
#include "nt/nt_internal.h"

static const struct nt_map_row {
    uint32_t    status;
    rf_status   win32;
    const char *name;
} nt_map[] = {
    { 0x00000000u, 0,    "STATUS_SUCCESS" },
    { 0x80000005u, 234,  "STATUS_BUFFER_OVERFLOW" },            /* ERROR_MORE_DATA */
    { 0x8000001Au, 259,  "STATUS_NO_MORE_ENTRIES" },            /* ERROR_NO_MORE_ITEMS */
    { 0x80000002u, 998,  "STATUS_DATATYPE_MISALIGNMENT" },      /* ERROR_NOACCESS */
    { 0xC0000002u, 1,    "STATUS_NOT_IMPLEMENTED" },            /* ERROR_INVALID_FUNCTION */
    { 0xC0000003u, 87,   "STATUS_INVALID_INFO_CLASS" },
    { 0xC0000005u, 998,  "STATUS_ACCESS_VIOLATION" },
    { 0xC0000008u, 6,    "STATUS_INVALID_HANDLE" },
    { 0xC000000Du, 87,   "STATUS_INVALID_PARAMETER" },
    { 0xC0000017u, 8,    "STATUS_NO_MEMORY" },
    { 0xC0000022u, 5,    "STATUS_ACCESS_DENIED" },
    { 0xC0000023u, 122,  "STATUS_BUFFER_TOO_SMALL" },           /* ERROR_INSUFFICIENT_BUFFER */
    { 0xC0000024u, 6,    "STATUS_OBJECT_TYPE_MISMATCH" },       /* not a key handle */
    { 0xC0000033u, 123,  "STATUS_OBJECT_NAME_INVALID" },        /* ERROR_INVALID_NAME */
    { 0xC0000034u, 2,    "STATUS_OBJECT_NAME_NOT_FOUND" },      /* ERROR_FILE_NOT_FOUND */
    { 0xC000003Au, 3,    "STATUS_OBJECT_PATH_NOT_FOUND" },      /* ERROR_PATH_NOT_FOUND */
    { 0xC000003Bu, 161,  "STATUS_OBJECT_PATH_SYNTAX_BAD" },     /* ERROR_BAD_PATHNAME */
    { 0xC0000061u, 1314, "STATUS_PRIVILEGE_NOT_HELD" },
    { 0xC000009Au, 1450, "STATUS_INSUFFICIENT_RESOURCES" },     /* ERROR_NO_SYSTEM_RESOURCES */
    { 0xC00000BBu, 50,   "STATUS_NOT_SUPPORTED" },              /* ERROR_NOT_SUPPORTED */
    { 0xC0000106u, 206,  "STATUS_NAME_TOO_LONG" },              /* ERROR_FILENAME_EXCED_RANGE */
    { 0xC0000121u, 5,    "STATUS_CANNOT_DELETE" },
    { 0xC000014Cu, 1009, "STATUS_REGISTRY_CORRUPT" },           /* ERROR_BADDB */
    { 0xC000017Cu, 1018, "STATUS_KEY_DELETED" },                /* ERROR_KEY_DELETED */
    { 0xC0000180u, 1020, "STATUS_KEY_HAS_CHILDREN" },           /* ERROR_KEY_HAS_CHILDREN */
    { 0xC0000181u, 1021, "STATUS_CHILD_MUST_BE_VOLATILE" },
};

rf_status nt_error(NTSTATUS st)
{
    for (size_t i = 0; i < sizeof nt_map / sizeof nt_map[0]; i++)
        if (nt_map[i].status == (uint32_t)st) return nt_map[i].win32;
    if (nt.RtlNtStatusToDosError) return (rf_status)nt.RtlNtStatusToDosError(st);
    return 317; /* ERROR_MR_MID_NOT_FOUND, what RtlNtStatusToDosError gives for unknown codes */
}

rf_status rf_live_status_to_error(uint32_t ntstatus)
{
    nt_load_api();
    return nt_error((NTSTATUS)ntstatus);
}

static const char *status_name(NTSTATUS st)
{
    for (size_t i = 0; i < sizeof nt_map / sizeof nt_map[0]; i++)
        if (nt_map[i].status == (uint32_t)st) return nt_map[i].name;
    return "NTSTATUS";
}

void nt_name_utf8(const uint16_t *name, size_t nchars, char *out, size_t cap)
{
    size_t o = 0;
    if (!cap) return;
    for (size_t i = 0; name && i < nchars; i++) {
        uint32_t c = name[i];
        if (c >= 0xD800 && c < 0xDC00 && i + 1 < nchars && name[i + 1] >= 0xDC00 && name[i + 1] < 0xE000)
            c = 0x10000 + ((c - 0xD800) << 10) + (name[++i] - 0xDC00);
        char tmp[4];
        size_t n;
        if (c < 0x80) { tmp[0] = (char)c; n = 1; }
        else if (c < 0x800) { tmp[0] = (char)(0xC0 | (c >> 6)); tmp[1] = (char)(0x80 | (c & 0x3F)); n = 2; }
        else if (c < 0x10000) {
            tmp[0] = (char)(0xE0 | (c >> 12)); tmp[1] = (char)(0x80 | ((c >> 6) & 0x3F));
            tmp[2] = (char)(0x80 | (c & 0x3F)); n = 3;
        } else {
            tmp[0] = (char)(0xF0 | (c >> 18)); tmp[1] = (char)(0x80 | ((c >> 12) & 0x3F));
            tmp[2] = (char)(0x80 | ((c >> 6) & 0x3F)); tmp[3] = (char)(0x80 | (c & 0x3F)); n = 4;
        }
        if (o + n + 4 > cap) { /* keep room for "..." */
            memcpy(out + o, "...", cap - o > 3 ? 3 : cap - o - 1);
            o += cap - o > 3 ? 3 : cap - o - 1;
            break;
        }
        memcpy(out + o, tmp, n);
        o += n;
    }
    out[o] = '\0';
}

rf_status nt_fail(NTSTATUS st, const char *api, const uint16_t *name, size_t nchars)
{
    char nm[96];
    nt_name_utf8(name, nchars, nm, sizeof nm);
    rf_status code = nt_error(st);
    return rfi_fail(code, RF_NO_OFFSET, (int64_t)(uint32_t)st, "%s(%s) failed: %s (NTSTATUS 0x%08lX)",
                    api, nm, status_name(st), (unsigned long)(uint32_t)st);
}

rf_status nt_fail_win32(LONG err, const char *api, const uint16_t *name, size_t nchars)
{
    char nm[96];
    nt_name_utf8(name, nchars, nm, sizeof nm);
    return rfi_fail((rf_status)err, RF_NO_OFFSET, (int64_t)err, "%s(%s) failed: %s (Win32 error %ld)",
                    api, nm, rf_status_text((rf_status)err), (long)err);
}

int nt_status_row(size_t i, uint32_t *status, rf_status *win32, const char **name)
{
    if (i >= sizeof nt_map / sizeof nt_map[0]) return 0;
    *status = nt_map[i].status;
    *win32 = nt_map[i].win32;
    *name = nt_map[i].name;
    return 1;
}
