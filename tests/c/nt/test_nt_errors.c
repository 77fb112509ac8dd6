/* test_nt_errors — the NTSTATUS -> Win32 table against ntdll's own
 * RtlNtStatusToDosError, then every code of the reference chapter's error
 * table (0, 2, 5, 6, 87, 234, 259, 1018, 1314; the chapter's 1010/1013 are
 * really ERROR_BADKEY/ERROR_CANTWRITE: key deleted is 1018, key has children
 * 1020) provoked through regfast's own API, with rf_last_error()->native. */
#include <stdio.h>
#include <stdlib.h>
#include <aclapi.h>
#include "nt_test_util.h"
#include "nt/nt_internal.h"

static void test_table(void)
{
    ULONG (NTAPI *dos)(LONG);
    FARPROC p = GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "RtlNtStatusToDosError");
    memcpy(&dos, &p, sizeof p);
    CHECK(dos != NULL);
    if (!dos) return;
    uint32_t status;
    rf_status win32;
    const char *name;
    int rows = 0, same = 0;
    for (size_t i = 0; nt_status_row(i, &status, &win32, &name); i++) {
        rows++;
        ULONG want = dos((LONG)status);
        if ((ULONG)win32 == want) same++;
        else fprintf(stderr, "  %s 0x%08X: table %d, RtlNtStatusToDosError %lu\n", name, status, win32, want);
        CHECK_EQ_INT(rf_live_status_to_error(status), win32);
    }
    printf("status table: %d rows, %d equal to RtlNtStatusToDosError\n", rows, same);
    CHECK_EQ_INT(same, rows);
    CHECK(rows >= 20);
    /* the codes the chapter lists, and the two it gets wrong */
    CHECK_EQ_INT(rf_live_status_to_error(0xC000017Cu), 1018); /* STATUS_KEY_DELETED, not 1010 */
    CHECK_EQ_INT(rf_live_status_to_error(0xC0000180u), 1020); /* STATUS_KEY_HAS_CHILDREN, not 1013 */
    CHECK_EQ_INT(rf_live_status_to_error(0xC0000999u), (rf_status)dos((LONG)0xC0000999u)); /* fallback */
    CHECK(strstr(rf_status_text(RF_E_KEY_DELETED), "deletion") != NULL);
}

/* A key whose DACL grants nothing: opening it for KEY_READ is denied. */
static HKEY make_locked(HKEY top)
{
    HKEY k = nt_create(top, L"locked");
    nt_set_sz(k, L"v", L"secret");
    SECURITY_DESCRIPTOR sd;
    ACL acl;
    InitializeSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION);
    InitializeAcl(&acl, sizeof acl, ACL_REVISION);
    SetSecurityDescriptorDacl(&sd, TRUE, &acl, FALSE);
    CHECK_EQ_INT(RegSetKeySecurity(k, DACL_SECURITY_INFORMATION, &sd), 0);
    return k; /* still open with KEY_ALL_ACCESS: used to unlock it */
}

static void unlock(HKEY k)
{
    SECURITY_DESCRIPTOR sd;
    InitializeSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION);
    SetSecurityDescriptorDacl(&sd, TRUE, NULL, FALSE); /* NULL DACL: everyone */
    RegSetKeySecurity(k, DACL_SECURITY_INFORMATION, &sd);
    RegCloseKey(k);
}

static void test_codes(HKEY top, const wchar_t *path)
{
    rf_hive *h;
    wchar_t buf[64];
    size_t len;
    uint32_t type;
    nt_set_sz(top, L"v", L"value");
    RegCloseKey(nt_create(top, L"sub"));

    /* 0 */
    CHECK_EQ_INT(rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h), 0);
    rf_status st;
    rf_key k = nt_open(h, path, &st);
    CHECK_EQ_INT(st, 0);
    CHECK_EQ_INT(rf_live_get_value(h, k, U(L"v"), 1, RF_RRF_RT_REG_SZ, buf, sizeof buf, &type, &len), 0);

    /* 2: a key, a value */
    nt_open(h, nt_join(path, L"missing"), &st);
    CHECK_EQ_INT(st, 2);
    const wchar_t *mp = nt_join(path, L"missing\\deeper");
    rf_key mk;
    CHECK_EQ_INT(rf_live_key_open(h, 0, U(mp), wcslen(mp), &mk), 2);
    CHECK_EQ_INT(rf_last_error()->native, 0xC0000034);
    CHECK_EQ_INT(rf_live_get_value(h, k, U(L"missing"), 7, RF_RRF_RT_ANY, buf, sizeof buf, &type, &len), 2);
    CHECK_EQ_INT(rf_last_error()->native, 0xC0000034);
    CHECK(strstr(rf_last_error()->message, "NtQueryValueKey(missing)") != NULL);

    /* 5: a DACL that grants nothing; a handle without KEY_QUERY_VALUE */
    HKEY locked = make_locked(top);
    nt_open(h, nt_join(path, L"locked"), &st);
    CHECK_EQ_INT(st, 5);
    CHECK_EQ_INT(rf_last_error()->native, 0xC0000022);
    unlock(locked);
    rf_hive *enum_only;
    CHECK_EQ_INT(rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, KEY_ENUMERATE_SUB_KEYS, &enum_only), 0);
    rf_key ek = nt_open(enum_only, path, &st);
    CHECK_EQ_INT(st, 0);
    CHECK_EQ_INT(rf_live_get_value(enum_only, ek, U(L"v"), 1, RF_RRF_RT_ANY, buf, sizeof buf, &type, &len), 5);
    CHECK_EQ_INT(rf_last_error()->native, 0xC0000022);
    rf_hive_close(enum_only);

    /* 6: a stale or foreign token, a bogus root */
    rf_key_info ki;
    CHECK_EQ_INT(rf_key_get_info(h, k ^ ((uint64_t)1 << 30), &ki), 6); /* generation changed */
    CHECK_EQ_INT(rf_key_get_info(h, 0x20, &ki), 6);
    CHECK_EQ_INT(rf_live_open(0x80000042u, 0, 0, &enum_only), 6);
    CHECK_EQ_INT(rf_live_get_stats(NULL, NULL), 6);

    /* 87 */
    CHECK_EQ_INT(rf_live_get_value(h, k, U(L"v"), 1, RF_RRF_RT_REG_EXPAND_SZ, buf, sizeof buf, &type, &len), 87);
    CHECK_EQ_INT(rf_live_open(RF_HKEY_CURRENT_USER, 0x400, 0, &enum_only), 87);
    CHECK_EQ_INT(rf_live_set_limits(h, 1, 0, 0), 87);

    /* 234 */
    CHECK_EQ_INT(rf_live_get_value(h, k, U(L"v"), 1, RF_RRF_RT_REG_SZ, buf, 4, &type, &len), 234);
    CHECK_EQ_INT(len, sizeof L"value");

    /* 259 */
    rf_name nm;
    CHECK_EQ_INT(rf_live_enum_subkey(h, k, 1, &nm, NULL), 0); /* "locked", "sub" */
    CHECK_EQ_INT(rf_live_enum_subkey(h, k, 2, &nm, NULL), 259);
    CHECK_EQ_INT(rf_last_error()->native, 0x8000001A);
    CHECK_EQ_INT(rf_live_enum_value(h, k, 1, &nm, &type, NULL, NULL), 259);

    /* 1018: deleted from another handle while cached */
    rf_key sub = nt_open(h, nt_join(path, L"sub"), &st);
    CHECK_EQ_INT(rf_key_get_info(h, sub, &ki), 0);
    CHECK_EQ_INT(RegDeleteKeyW(top, L"sub"), 0);
    CHECK_EQ_INT(rf_key_get_info(h, sub, &ki), 1018);
    CHECK_EQ_INT(rf_last_error()->native, 0xC000017C);

    /* 1314: RegSaveKeyExW without SeBackupPrivilege */
    wchar_t file[MAX_PATH], dir[MAX_PATH];
    GetTempPathW(MAX_PATH, dir);
    swprintf(file, MAX_PATH, L"%lsregfast-save-%lu.hiv", dir, GetCurrentProcessId());
    DeleteFileW(file);
    rf_live_enable_privilege(U(L"SeBackupPrivilege"), 0);
    CHECK_EQ_INT(rf_live_save_key(h, k, U(file), 0), 1314);
    CHECK_EQ_INT(rf_last_error()->native, 1314);
    DeleteFileW(file); /* Wine leaves a 0-byte file behind */
    CHECK_EQ_INT(rf_live_enable_privilege(U(L"SeBackupPrivilege"), 1), 0);
    CHECK_EQ_INT(rf_live_save_key(h, k, U(file), 0), 0);
    HANDLE f = CreateFileW(file, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    char head[32] = { 0 };
    DWORD got = 0;
    ReadFile(f, head, sizeof head - 1, &got, NULL);
    CloseHandle(f);
    if (nt_is_wine()) {
        /* Wine writes its own text format for every format flag (no regf):
         * the documented fallback. test_nt_windows reads a real hive back. */
        CHECK(strncmp(head, "WINE REGISTRY Version 2", 23) == 0);
    } else {
        CHECK(memcmp(head, "regf", 4) == 0);
    }
    DeleteFileW(file);
    rf_live_enable_privilege(U(L"SeBackupPrivilege"), 0);
    CHECK_EQ_INT(rf_live_enable_privilege(U(L"SeNoSuchPrivilege"), 1), ERROR_NO_SUCH_PRIVILEGE);

    /* 1630 and 1629 (RegGetValue's own) */
    CHECK_EQ_INT(rf_live_get_value(h, k, U(L"v"), 1, RF_RRF_RT_REG_DWORD, buf, sizeof buf, &type, &len), 1630);
    nt_set(top, L"b5", REG_BINARY, "\1\2\3\4\5", 5);
    CHECK_EQ_INT(rf_live_get_value(h, k, U(L"b5"), 2, RF_RRF_RT_DWORD, buf, sizeof buf, &type, &len), 1629);
    rf_hive_close(h);
}

int main(void)
{
    HKEY top;
    const wchar_t *path = nt_test_key(L"errors", &top);
    test_table();
    test_codes(top, path);
    RegCloseKey(top);
    nt_test_cleanup();
    return CHECK_DONE();
}
