/* test_nt_tx — rf_live_tx_* (src/nt/nt_tx.c) where this program runs.
 * Under Wine, KTM is a stub (CreateTransaction hands out a fake handle,
 * RegCreateKeyTransactedW returns 120): the probe must say 120 *because of
 * that call*, leave no probe key behind, and every entry point must refuse
 * cleanly. On Windows the probe must pass; the KTM behaviour itself
 * (commit, rollback, isolation) is asserted in test_nt_windows.c. */
#include <stdio.h>
#include <stdlib.h>
#include "nt_test_util.h"

static int probe_keys_left(void)
{
    HKEY sw;
    int n = 0;
    if (RegOpenKeyExW(HKEY_CURRENT_USER, L"Software", 0, KEY_READ, &sw))
        return -1;
    wchar_t name[256];
    for (DWORD i = 0;; i++) {
        DWORD len = 256;
        if (RegEnumKeyExW(sw, i, name, &len, NULL, NULL, NULL, NULL))
            break;
        if (wcsncmp(name, L"regfast-ktm-probe-", 18) == 0)
            n++;
    }
    RegCloseKey(sw);
    return n;
}

int main(void)
{
    HKEY top;
    (void)nt_test_key(L"tx", &top);
    rf_status st = rf_live_tx_available();
    if (nt_is_wine()) {
        CHECK_EQ_INT(st, RF_E_NOT_SUPPORTED);
        const rf_error *e = rf_last_error();
        CHECK_EQ_INT(e->code, RF_E_NOT_SUPPORTED);
        CHECK_EQ_INT(e->native, 120);                          /* what RegCreateKeyTransactedW said */
        CHECK(strstr(e->message, "RegCreateKeyTransactedW returned 120") != NULL);
        /* decided once: the second answer is the same, with the same reason */
        CHECK_EQ_INT(rf_live_tx_available(), RF_E_NOT_SUPPORTED);
        CHECK(strstr(rf_last_error()->message, "RegCreateKeyTransactedW") != NULL);
        rf_live_tx *tx = (rf_live_tx *)(uintptr_t)1;
        CHECK_EQ_INT(rf_live_tx_begin(0, NULL, &tx), RF_E_NOT_SUPPORTED);
        CHECK(tx == NULL);
    } else {
        CHECK_EQ_INT(st, RF_OK);
    }
    CHECK_EQ_INT(probe_keys_left(), 0);
    /* bad arguments: clear codes, never a crash */
    CHECK_EQ_INT(rf_live_tx_begin(0, NULL, NULL), RF_E_INVALID_PARAMETER);
    /* KTM's MAX_TRANSACTION_DESCRIPTION_LENGTH (64 WCHARs with the NUL):
     * 64 characters are refused with 87, before (and whether or not) KTM is
     * asked; 63 get past the check (Wine: then 120, no KTM) */
    {
        wchar_t desc[80];
        for (int i = 0; i < 64; i++) desc[i] = L'a' + i % 26;
        desc[64] = 0;
        rf_live_tx *tx = (rf_live_tx *)(uintptr_t)1;
        CHECK_EQ_INT(rf_live_tx_begin(0, U(desc), &tx), RF_E_INVALID_PARAMETER);
        CHECK(tx == NULL);
        CHECK(strstr(rf_last_error()->message, "more than 63 characters") != NULL);
        desc[63] = 0;
        st = rf_live_tx_begin(0, U(desc), &tx);
        if (nt_is_wine()) {
            CHECK_EQ_INT(st, RF_E_NOT_SUPPORTED);
        } else {
            CHECK_EQ_INT(st, RF_OK);
            CHECK_EQ_INT(rf_live_tx_rollback(tx), RF_OK);
            rf_live_tx_close(tx);
        }
    }
    CHECK_EQ_INT(rf_live_tx_commit(NULL), RF_E_INVALID_HANDLE);
    CHECK_EQ_INT(rf_live_tx_rollback(NULL), RF_E_INVALID_HANDLE);
    void *hk = NULL;
    CHECK_EQ_INT(rf_live_tx_open_key(NULL, HKEY_CURRENT_USER, U(L"Software"), KEY_READ, 0, &hk, NULL),
                 RF_E_INVALID_PARAMETER);
    CHECK_EQ_INT(rf_live_tx_delete_key(NULL, HKEY_CURRENT_USER, U(L"x"), 0, 0), RF_E_INVALID_PARAMETER);
    rf_live_tx_close(NULL);
    RegCloseKey(top);
    nt_test_cleanup();
    return CHECK_DONE();
}
