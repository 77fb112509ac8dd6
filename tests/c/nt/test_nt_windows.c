/* test_nt_windows — what Wine 8 stubs or lacks, asserted for real. Built in
 * every Windows build; registered with ctest only for native builds (label
 * windows-ci, run by .github/workflows/windows.yml). Under Wine each of these
 * would fail or pass for the wrong reason (see shared/reference/wine-registry.md). */
#include <stdio.h>
#include <stdlib.h>
#include "nt_test_util.h"

/* NtQueryMultipleValueKey works on Windows: the probe keeps it, and batches
 * then cost one kernel transition for the whole batch. */
static void test_multi(HKEY top, const wchar_t *path)
{
    static const wchar_t *names[] = { L"m1", L"m2", L"m3", L"m4" };
    rf_name req[4];
    for (int i = 0; i < 4; i++) {
        wchar_t v[64];
        swprintf(v, 64, L"data %d", i * 1000);
        nt_set_sz(top, names[i], v);
        req[i] = (rf_name){ names[i], (uint32_t)(wcslen(names[i]) * 2), 1 };
    }
    rf_hive *h;
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h);
    rf_key k = nt_open(h, path, NULL);
    CHECK_EQ_INT(rf_live_multi_state(), 0);
    uint32_t type[4], length[4];
    int32_t status[4];
    uint64_t offset[4];
    uint8_t arena[4096];
    for (int round = 0; round < 2; round++) {
        rf_batch b;
        memset(&b, 0, sizeof b);
        b.struct_size = sizeof b;
        b.cap = 4;
        b.type = type; b.status = status; b.offset = offset; b.length = length;
        b.arena = arena; b.arena_cap = sizeof arena;
        CHECK_EQ_INT(rf_read_values(h, k, req, 4, NULL, 0, 0, &b), RF_OK);
        for (int i = 0; i < 4; i++) {
            wchar_t want[64];
            DWORD wl = sizeof want;
            RegQueryValueExW(top, names[i], NULL, NULL, (BYTE *)want, &wl);
            CHECK(status[i] == 0 && type[i] == REG_SZ && length[i] == wl &&
                  memcmp(arena + (offset[i] & ~RF_BATCH_IN_ARENA), want, wl) == 0);
        }
        CHECK_EQ_INT(rf_live_multi_state(), 1);
    }
    rf_live_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    rf_live_get_stats(h, &s);
    CHECK_EQ_INT(s.multi_batches, 1); /* the second batch, after the probe */
    rf_hive_close(h);
}

/* RegSaveKeyExW writes a real regf hive, and the offline backend reads back
 * what the live one sees. */
static void test_save_roundtrip(HKEY top, const wchar_t *path)
{
    HKEY sub = nt_create(top, L"saved");
    nt_set_sz(sub, L"name", L"round trip");
    nt_set_dword(sub, L"n", 42);
    RegCloseKey(nt_create(sub, L"child"));
    RegCloseKey(sub);
    rf_hive *h;
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h);
    rf_key k = nt_open(h, nt_join(path, L"saved"), NULL);
    wchar_t file[MAX_PATH], dir[MAX_PATH];
    GetTempPathW(MAX_PATH, dir);
    swprintf(file, MAX_PATH, L"%lsregfast-rt-%lu.hiv", dir, GetCurrentProcessId());
    DeleteFileW(file);
    CHECK_EQ_INT(rf_live_enable_privilege(U(L"SeBackupPrivilege"), 1), 0);
    CHECK_EQ_INT(rf_live_save_key(h, k, U(file), 2), RF_OK);
    rf_hive *off;
    CHECK_EQ_INT(rf_hive_open(nt_u8(file), NULL, &off), RF_OK);
    if (off) {
        rf_key root, child;
        rf_hive_root(off, &root);
        rf_value v;
        CHECK_EQ_INT(rf_value_open(off, root, "name", 4, &v), RF_OK);
        const uint8_t *d;
        size_t dl;
        CHECK_EQ_INT(rf_value_read(off, v, NULL, 0, &d, &dl), RF_OK);
        CHECK(dl == sizeof L"round trip" && memcmp(d, L"round trip", dl) == 0);
        CHECK_EQ_INT(rf_key_open(off, root, "child", 5, &child), RF_OK);
        rf_hive_close(off);
    }
    DeleteFileW(file);
    rf_hive_close(h);
}

/* ACCESS_SYSTEM_SECURITY needs SeSecurityPrivilege: Windows refuses the open
 * with STATUS_PRIVILEGE_NOT_HELD (Wine 8 grants it). */
static void test_sacl_privilege(void)
{
    rf_hive *h = NULL;
    CHECK_EQ_INT(rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, KEY_READ | ACCESS_SYSTEM_SECURITY, &h),
                 RF_E_PRIVILEGE_NOT_HELD);
    CHECK(h == NULL);
}

/* Windows enumerates values in creation order (Wine: sorted by name). */
static void test_creation_order(HKEY top, const wchar_t *path)
{
    HKEY k = nt_create(top, L"order");
    nt_set_sz(k, L"zulu", L"1");
    nt_set_sz(k, L"alpha", L"2");
    RegCloseKey(k);
    rf_hive *h;
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h);
    rf_key key = nt_open(h, nt_join(path, L"order"), NULL);
    rf_name nm;
    CHECK_EQ_INT(rf_live_enum_value(h, key, 0, &nm, NULL, NULL, NULL), RF_OK);
    CHECK(nt_name_is(&nm, L"zulu"));
    rf_hive_close(h);
}

/* Administration (nt_admin.c) where Wine has stubs: a hive saved natively
 * loads as an app hive (no privilege) and restores into another key. */
static void test_admin_hive_files(HKEY top, const wchar_t *path)
{
    HKEY src = nt_create(top, L"adm-src");
    nt_set_sz(src, L"restored", L"yes");
    RegCloseKey(nt_create(src, L"child"));
    RegCloseKey(src);
    RegCloseKey(nt_create(top, L"adm-dst"));
    rf_hive *h;
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, KEY_ALL_ACCESS, &h);
    wchar_t file[MAX_PATH], dir[MAX_PATH];
    GetTempPathW(MAX_PATH, dir);
    swprintf(file, MAX_PATH, L"%lsregfast-adm-%lu.hiv", dir, GetCurrentProcessId());
    DeleteFileW(file);
    int was = 0, was2 = 0;
    CHECK_EQ_INT(rf_live_set_privilege(U(L"SeBackupPrivilege"), 1, &was), RF_OK);
    CHECK_EQ_INT(rf_live_save_key(h, nt_open(h, nt_join(path, L"adm-src"), NULL), U(file), 2), RF_OK);
    rf_hive *app = NULL;
    CHECK_EQ_INT(rf_live_load_app_hive(U(file), KEY_READ, &app), RF_OK);
    if (app) {
        rf_key root;
        rf_hive_root(app, &root);
        rf_key_info ki;
        CHECK_EQ_INT(rf_key_get_info(app, root, &ki), RF_OK);
        CHECK(ki.n_subkeys == 1 && ki.n_values == 1);
        rf_hive_close(app);
    }
    CHECK_EQ_INT(rf_live_set_privilege(U(L"SeRestorePrivilege"), 1, &was2), RF_OK);
    CHECK_EQ_INT(rf_live_restore_key(h, nt_open(h, nt_join(path, L"adm-dst"), NULL), U(file), 8), RF_OK);
    wchar_t buf[16];
    DWORD bl = sizeof buf;
    CHECK_EQ_INT(RegGetValueW(top, L"adm-dst", L"restored", RRF_RT_REG_SZ, NULL, buf, &bl), 0);
    HKEY c;
    CHECK_EQ_INT(RegOpenKeyExW(top, L"adm-dst\\child", 0, KEY_READ, &c), 0);
    RegCloseKey(c);
    /* handles cached below a mount point keep Windows from unloading it
     * (Wine counts only the mount key's own): rf_live_key_invalidate_subtree
     * on the mount key closes them, and the unload goes through with the
     * rf_hive still open (what the agent's UNLOAD_HIVE does) */
    {
        wchar_t m2[64];
        swprintf(m2, 64, L"regfast-adm2-%lu", GetCurrentProcessId());
        CHECK_EQ_INT(rf_live_load_hive(RF_HKEY_USERS, U(m2), U(file)), RF_OK);
        rf_hive *hu2;
        CHECK_EQ_INT(rf_live_open(RF_HKEY_USERS, RF_VIEW_NATIVE, KEY_READ, &hu2), RF_OK);
        rf_key mk2 = nt_open(hu2, m2, NULL), ck = nt_open(hu2, nt_join(m2, L"child"), NULL);
        rf_key_info ki;
        CHECK(mk2 != 0 && ck != 0);
        CHECK_EQ_INT(rf_key_get_info(hu2, ck, &ki), RF_OK);
        CHECK_EQ_INT(rf_live_key_invalidate_subtree(hu2, mk2), RF_OK);
        CHECK_EQ_INT(rf_live_unload_hive(RF_HKEY_USERS, U(m2)), RF_OK);
        CHECK_EQ_INT(rf_key_get_info(hu2, ck, &ki), RF_E_KEY_DELETED);
        CHECK(nt_open(hu2, nt_join(m2, L"child"), NULL) == 0);
        rf_hive_close(hu2);
    }
    /* RegReplaceKeyW on the root of a loaded hive: accepted (the swap
     * itself happens when the hive is next loaded); the backup must not exist */
    wchar_t mount[64], newf[MAX_PATH], oldf[MAX_PATH];
    swprintf(mount, 64, L"regfast-adm-%lu", GetCurrentProcessId());
    swprintf(newf, MAX_PATH, L"%lsregfast-adm-%lu.new", dir, GetCurrentProcessId());
    swprintf(oldf, MAX_PATH, L"%lsregfast-adm-%lu.old", dir, GetCurrentProcessId());
    DeleteFileW(oldf);
    CHECK(CopyFileW(file, newf, FALSE));
    CHECK_EQ_INT(rf_live_load_hive(RF_HKEY_USERS, U(mount), U(file)), RF_OK);
    rf_hive *hu;
    rf_live_open(RF_HKEY_USERS, RF_VIEW_NATIVE, KEY_ALL_ACCESS, &hu);
    rf_key mk = nt_open(hu, mount, NULL);
    CHECK(mk != 0);
    CHECK_EQ_INT(rf_live_replace_key(hu, mk, U(newf), U(oldf)), RF_OK);
    rf_hive_close(hu);
    CHECK_EQ_INT(rf_live_unload_hive(RF_HKEY_USERS, U(mount)), RF_OK);
    DeleteFileW(newf);
    DeleteFileW(oldf);
    rf_live_set_privilege(U(L"SeRestorePrivilege"), was2, NULL);
    rf_live_set_privilege(U(L"SeBackupPrivilege"), was, NULL);
    DeleteFileW(file);
    rf_hive_close(h);
}

/* KTM through rf_live_tx_*: isolation before the commit, visibility after
 * it, and a rollback that undoes a value write and a key deletion. Wine only
 * stubs KTM (test_nt_tx.c checks the probe refuses it there). */
static void test_ktm(HKEY top)
{
    CHECK_EQ_INT(rf_live_tx_available(), RF_OK);
    rf_live_tx *tx = NULL;
    CHECK_EQ_INT(rf_live_tx_begin(0, U(L"regfast test"), &tx), RF_OK);
    void *hk = NULL;
    uint32_t disp = 0;
    CHECK_EQ_INT(rf_live_tx_open_key(tx, top, U(L"ktm"), KEY_ALL_ACCESS, 1, &hk, &disp), RF_OK);
    CHECK_EQ_INT(disp, 1);
    DWORD v = 7;
    CHECK_EQ_INT(RegSetValueExW((HKEY)hk, L"v", 0, REG_DWORD, (const BYTE *)&v, 4), 0);
    HKEY out;
    CHECK_EQ_INT(RegOpenKeyExW(top, L"ktm", 0, KEY_READ, &out), ERROR_FILE_NOT_FOUND);  /* isolated */
    RegCloseKey((HKEY)hk);
    CHECK_EQ_INT(rf_live_tx_commit(tx), RF_OK);
    rf_live_tx_close(tx);
    DWORD got = 0, n = 4;
    CHECK_EQ_INT(RegGetValueW(top, L"ktm", L"v", RRF_RT_REG_DWORD, NULL, &got, &n), 0);
    CHECK_EQ_INT(got, 7);

    CHECK_EQ_INT(rf_live_tx_begin(0, NULL, &tx), RF_OK);
    CHECK_EQ_INT(rf_live_tx_open_key(tx, top, U(L"ktm"), KEY_ALL_ACCESS, 0, &hk, &disp), RF_OK);
    CHECK_EQ_INT(disp, 2);
    v = 8;
    CHECK_EQ_INT(RegSetValueExW((HKEY)hk, L"v", 0, REG_DWORD, (const BYTE *)&v, 4), 0);
    RegCloseKey((HKEY)hk);
    CHECK_EQ_INT(rf_live_tx_delete_key(tx, top, U(L"ktm"), 0, 0), RF_OK);
    CHECK_EQ_INT(rf_live_tx_rollback(tx), RF_OK);
    rf_live_tx_close(tx);
    n = 4;
    CHECK_EQ_INT(RegGetValueW(top, L"ktm", L"v", RRF_RT_REG_DWORD, NULL, &got, &n), 0);
    CHECK_EQ_INT(got, 7);
    CHECK_EQ_INT(rf_live_tx_open_key(NULL, top, U(L"ktm"), KEY_READ, 0, &hk, NULL), RF_E_INVALID_PARAMETER);
}

int main(void)
{
    HKEY top;
    const wchar_t *path = nt_test_key(L"windows", &top);
    if (nt_is_wine()) {
        printf("test_nt_windows asserts what Wine stubs: run it on Windows\n");
        return 1;
    }
    test_multi(top, path);
    test_save_roundtrip(top, path);
    test_sacl_privilege();
    test_creation_order(top, path);
    test_admin_hive_files(top, path);
    test_ktm(top);
    RegCloseKey(top);
    nt_test_cleanup();
    return CHECK_DONE();
}
