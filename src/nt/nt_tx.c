/*
 * nt_tx.c — registry transactions through KTM (ktmw32!CreateTransaction,
 * CommitTransaction, RollbackTransaction; advapi32!RegCreateKeyTransactedW,
 * RegOpenKeyTransactedW, RegDeleteKeyTransactedW).
 *
 * KTM is deprecated and Wine 8 only stubs it: CreateTransaction hands out a
 * fake handle, RegCreateKeyTransactedW returns 120, CommitTransaction does
 * nothing, RollbackTransaction fails, and RegOpenKeyTransactedW is not even
 * exported. So every export is loaded with GetProcAddress (one missing
 * export must not stop the program from loading), and availability is
 * decided by a probe that checks what a transaction *does*, never by a
 * status that a stub could fake. Callers fall back to regfast's own journal
 * (src/regfast/transaction.py) when rf_live_tx_available() says 120.
 */
#include <stdio.h>
#include <stdlib.h>
#include "nt/nt_internal.h"

typedef HANDLE (WINAPI *create_tx_fn)(LPSECURITY_ATTRIBUTES, LPGUID, DWORD, DWORD, DWORD, DWORD, LPWSTR);
typedef BOOL (WINAPI *end_tx_fn)(HANDLE);
typedef LONG (WINAPI *create_key_tx_fn)(HKEY, LPCWSTR, DWORD, LPWSTR, DWORD, REGSAM,
                                       const LPSECURITY_ATTRIBUTES, PHKEY, LPDWORD, HANDLE, PVOID);
typedef LONG (WINAPI *open_key_tx_fn)(HKEY, LPCWSTR, DWORD, REGSAM, PHKEY, HANDLE, PVOID);
typedef LONG (WINAPI *delete_key_tx_fn)(HKEY, LPCWSTR, REGSAM, DWORD, HANDLE, PVOID);

static struct {
    create_tx_fn     create_tx;
    end_tx_fn        commit_tx, rollback_tx;
    create_key_tx_fn create_key;
    open_key_tx_fn   open_key;
    delete_key_tx_fn delete_key;
} ktm;

struct rf_live_tx { HANDLE h; };

/* KTM keeps a transaction's description in a WCHAR[MAX_TRANSACTION_DESCRIPTION_LENGTH]
 * with its NUL (ktmtypes.h: 64; KCRM_TRANSACTION_BLOB.Description), so at
 * most 63 characters fit: a longer one is refused here rather than cut or
 * left to a KTM that may reject or truncate it. */
#ifndef MAX_TRANSACTION_DESCRIPTION_LENGTH
#define MAX_TRANSACTION_DESCRIPTION_LENGTH 64
#endif
#define TX_DESC_MAX_CHARS (MAX_TRANSACTION_DESCRIPTION_LENGTH - 1)

static INIT_ONCE probe_once = INIT_ONCE_STATIC_INIT;
static rf_status probe_status;
static LONG probe_native;
static char probe_msg[200];

#define LOADFN(field, mod, sym) do { FARPROC p_ = (mod) ? GetProcAddress((mod), sym) : NULL; \
                                     memcpy(&ktm.field, &p_, sizeof p_); } while (0)

static rf_status probe_fail(LONG native, const char *fmt, const char *what)
{
    probe_native = native;
    snprintf(probe_msg, sizeof probe_msg, fmt, what, (long)native);
    return RF_E_NOT_SUPPORTED;
}

/* The probe: what a working KTM does, checked from outside the transaction. */
static rf_status run_probe(void)
{
    HMODULE ktmw = LoadLibraryW(L"ktmw32.dll");
    HMODULE adv = GetModuleHandleW(L"advapi32.dll");
    if (!adv)
        adv = LoadLibraryW(L"advapi32.dll");
    LOADFN(create_tx, ktmw, "CreateTransaction");
    LOADFN(commit_tx, ktmw, "CommitTransaction");
    LOADFN(rollback_tx, ktmw, "RollbackTransaction");
    LOADFN(create_key, adv, "RegCreateKeyTransactedW");
    LOADFN(open_key, adv, "RegOpenKeyTransactedW");
    LOADFN(delete_key, adv, "RegDeleteKeyTransactedW");
    /* What the probe itself needs first: a behaviour test says more than an
     * export list (Wine exports a stub RegCreateKeyTransactedW but lacks
     * RegOpenKeyTransactedW; the stub's 120 is the telling answer). */
    const char *missing = !ktm.create_tx ? "ktmw32!CreateTransaction" :
                          !ktm.rollback_tx ? "ktmw32!RollbackTransaction" :
                          !ktm.create_key ? "advapi32!RegCreateKeyTransactedW" : NULL;
    if (missing)
        return probe_fail(ERROR_PROC_NOT_FOUND, "%s is not exported (error %ld): no KTM", missing);

    wchar_t path[96];
    swprintf(path, 96, L"Software\\regfast-ktm-probe-%lu-%lu", (unsigned long)GetCurrentProcessId(),
             (unsigned long)GetTickCount());
    HANDLE tx = ktm.create_tx(NULL, NULL, 0, 0, 0, 0, NULL);
    if (tx == INVALID_HANDLE_VALUE || !tx)
        return probe_fail((LONG)GetLastError(), "%s failed (error %ld)", "CreateTransaction");
    HKEY hk = NULL, outside = NULL;
    DWORD disp = 0;
    rf_status st = RF_OK;
    LONG ls = ktm.create_key(HKEY_CURRENT_USER, path, 0, NULL, REG_OPTION_VOLATILE, KEY_ALL_ACCESS, NULL,
                             &hk, &disp, tx, NULL);
    if (ls) {
        st = probe_fail(ls, "%s returned %ld: registry transactions do not work here",
                        "RegCreateKeyTransactedW");
        goto out;
    }
    RegCloseKey(hk);
    /* Isolation: an uncommitted key must not be visible to a plain open. */
    ls = RegOpenKeyExW(HKEY_CURRENT_USER, path, 0, KEY_READ, &outside);
    if (ls != ERROR_FILE_NOT_FOUND) {
        st = probe_fail(ls, "%s: an uncommitted transacted key was visible outside its transaction (%ld)",
                        "RegOpenKeyExW");
        goto out;
    }
    if (!ktm.rollback_tx(tx)) {
        st = probe_fail((LONG)GetLastError(), "%s failed (error %ld)", "RollbackTransaction");
        goto out;
    }
    ls = RegOpenKeyExW(HKEY_CURRENT_USER, path, 0, KEY_READ, &outside);
    if (ls != ERROR_FILE_NOT_FOUND) {
        st = probe_fail(ls, "%s: a rolled-back transacted key still exists (%ld)", "RegOpenKeyExW");
        goto out;
    }
    missing = !ktm.commit_tx ? "ktmw32!CommitTransaction" :
              !ktm.open_key ? "advapi32!RegOpenKeyTransactedW" :
              !ktm.delete_key ? "advapi32!RegDeleteKeyTransactedW" : NULL;
    if (missing)
        st = probe_fail(ERROR_PROC_NOT_FOUND, "%s is not exported (error %ld): no KTM", missing);
out:
    if (outside) {
        RegCloseKey(outside);
        RegDeleteKeyW(HKEY_CURRENT_USER, path);   /* a broken KTM leaked it: leave nothing behind */
    }
    CloseHandle(tx);
    return st;
}

static BOOL CALLBACK probe_cb(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    (void)once; (void)param; (void)ctx;
    probe_status = run_probe();
    return TRUE;
}

rf_status rf_live_tx_available(void)
{
    InitOnceExecuteOnce(&probe_once, probe_cb, NULL, NULL);
    if (probe_status)
        return rfi_fail(probe_status, RF_NO_OFFSET, probe_native, "%s", probe_msg);
    return RF_OK;
}

rf_status rf_live_tx_begin(uint32_t timeout_ms, const uint16_t *description, rf_live_tx **out)
{
    if (!out)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "rf_live_tx_begin: out is NULL");
    *out = NULL;
    /* arguments first: the same answer whether or not KTM works here */
    if (description) {
        size_t n = wcsnlen((const wchar_t *)description, TX_DESC_MAX_CHARS + 1);
        if (n > TX_DESC_MAX_CHARS)
            return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                            "rf_live_tx_begin: the description has more than %d characters "
                            "(KTM's MAX_TRANSACTION_DESCRIPTION_LENGTH is %d, with the NUL)",
                            TX_DESC_MAX_CHARS, MAX_TRANSACTION_DESCRIPTION_LENGTH);
    }
    rf_status st = rf_live_tx_available();
    if (st)
        return st;
    HANDLE h = ktm.create_tx(NULL, NULL, 0, 0, 0, timeout_ms, (LPWSTR)description);
    if (h == INVALID_HANDLE_VALUE || !h) {
        DWORD e = GetLastError();
        return nt_fail_win32((LONG)(e ? e : ERROR_GEN_FAILURE), "CreateTransaction", NULL, 0);
    }
    rf_live_tx *tx = malloc(sizeof *tx);
    if (!tx) {
        CloseHandle(h);
        return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
    }
    tx->h = h;
    *out = tx;
    return RF_OK;
}

static rf_status end_tx(rf_live_tx *tx, end_tx_fn fn, const char *api)
{
    if (!tx || !tx->h)
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "%s: no transaction", api);
    if (!fn(tx->h)) {
        DWORD e = GetLastError();
        return nt_fail_win32((LONG)(e ? e : ERROR_GEN_FAILURE), api, NULL, 0);
    }
    return RF_OK;
}

rf_status rf_live_tx_commit(rf_live_tx *tx) { return end_tx(tx, ktm.commit_tx, "CommitTransaction"); }
rf_status rf_live_tx_rollback(rf_live_tx *tx) { return end_tx(tx, ktm.rollback_tx, "RollbackTransaction"); }

void rf_live_tx_close(rf_live_tx *tx)
{
    if (!tx)
        return;
    if (tx->h)
        CloseHandle(tx->h);
    free(tx);
}

rf_status rf_live_tx_open_key(rf_live_tx *tx, void *parent, const uint16_t *path, uint32_t access,
                              int create, void **out, uint32_t *disposition)
{
    if (!tx || !tx->h || !out || !path)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "rf_live_tx_open_key: bad argument");
    HKEY hk = NULL;
    DWORD disp = REG_OPENED_EXISTING_KEY;
    LONG ls = create ? ktm.create_key((HKEY)parent, (LPCWSTR)path, 0, NULL, 0, access, NULL, &hk, &disp,
                                      tx->h, NULL)
                     : ktm.open_key((HKEY)parent, (LPCWSTR)path, 0, access, &hk, tx->h, NULL);
    if (ls)
        return nt_fail_win32(ls, create ? "RegCreateKeyTransactedW" : "RegOpenKeyTransactedW",
                             path, wcslen((const wchar_t *)path));
    *out = hk;
    if (disposition)
        *disposition = disp == REG_CREATED_NEW_KEY ? 1 : 2;
    return RF_OK;
}

/* RegOpenKeyTransactedW's ulOptions "is reserved and must be zero"
 * (Microsoft's reference): REG_OPTION_OPEN_LINK cannot be asked for, so a
 * transacted delete still goes through a symbolic link to its target, as
 * RegDeleteKeyTransactedW did. Passing it anyway could make Windows refuse
 * every transacted delete with 87 (untestable here: Wine stubs KTM). */
static LONG open_key_tx(void *ctx, HKEY parent, const wchar_t *name, DWORD options, REGSAM access, HKEY *out)
{
    (void)options;
    return ktm.open_key(parent, name, 0, access, out, ((rf_live_tx *)ctx)->h, NULL);
}

/* Every key opened by RegOpenKeyTransactedW and deleted by NtDeleteKey on
 * that handle, which is what RegDeleteKeyTransactedW does itself
 * (nt_delete_key_at). Not RegDeleteTreeW: whether the handles it opens
 * inside join the transaction is nowhere documented, and a delete outside
 * it would survive a rollback. */
rf_status rf_live_tx_delete_key(rf_live_tx *tx, void *parent, const uint16_t *sub, uint32_t view, uint32_t flags)
{
    if (!tx || !tx->h || !sub || (flags & ~RF_DELETE_TREE))
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "rf_live_tx_delete_key: bad argument");
    if (!ktm.open_key)
        return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, ERROR_NOT_SUPPORTED,
                        "advapi32 has no RegOpenKeyTransactedW");
    rf_status st = nt_load_api();   /* NtDeleteKey: no hive need have been opened before */
    if (st) return st;
    nt_tree_delete d = {open_key_tx, tx, "RegOpenKeyTransactedW", "RegOpenKeyTransactedW", 0, RF_OK};
    LONG ls = nt_delete_key_at((HKEY)parent, (const wchar_t *)sub, view, (flags & RF_DELETE_TREE) != 0, 0, &d);
    if (ls && !d.st)
        return nt_fail_win32(ls, d.call, sub, wcslen((const wchar_t *)sub));
    return d.st;
}
