/*
 * nt_priv.c — privileges of the process token (regfast_nt.h): state,
 * enable/disable with the previous state reported, and a privilege enabled
 * for one thread only (an impersonation copy), for calls such as taking
 * ownership that must not change what other threads of the process see.
 */
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "nt/nt_internal.h"

/* ------------------------------------------------------------------------ */
/* Privileges                                                                */
/* ------------------------------------------------------------------------ */

static rf_status lookup_priv(const uint16_t *name, LUID *luid)
{
    if (!name || !name[0])
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "the privilege name is empty");
    if (!LookupPrivilegeValueW(NULL, (LPCWSTR)name, luid)) {
        DWORD e = GetLastError();
        char nm[96];
        nt_name_utf8(name, nt_wlen(name), nm, sizeof nm);
        if (e == ERR_NO_SUCH_PRIVILEGE || e == 0)
            return rfi_fail(ERR_NO_SUCH_PRIVILEGE, RF_NO_OFFSET, e, "\"%s\" is not a privilege name "
                            "(e.g. SeBackupPrivilege)", nm);
        return nt_fail_win32((LONG)e, "LookupPrivilegeValueW", name, nt_wlen(name));
    }
    return RF_OK;
}

rf_status rf_live_privilege_state(const uint16_t *name, int *held, int *enabled)
{
    LUID luid;
    rf_status st = lookup_priv(name, &luid);
    if (held) *held = 0;
    if (enabled) *enabled = 0;
    if (st) return st;
    HANDLE tok;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
        return nt_fail_win32((LONG)GetLastError(), "OpenProcessToken", name, nt_wlen(name));
    DWORD need = 0;
    GetTokenInformation(tok, TokenPrivileges, NULL, 0, &need);
    /* no size: the size query itself failed, and says why */
    DWORD e0 = need ? 0 : GetLastError();
    TOKEN_PRIVILEGES *tp = need ? malloc(need) : NULL;
    if (!tp || !GetTokenInformation(tok, TokenPrivileges, tp, need, &need)) {
        DWORD e = tp ? GetLastError() : need ? ERROR_NOT_ENOUGH_MEMORY : (e0 ? e0 : ERROR_INVALID_DATA);
        free(tp);
        CloseHandle(tok);
        return nt_fail_win32((LONG)e, "GetTokenInformation", name, nt_wlen(name));
    }
    for (DWORD i = 0; i < tp->PrivilegeCount; i++)
        if (tp->Privileges[i].Luid.LowPart == luid.LowPart && tp->Privileges[i].Luid.HighPart == luid.HighPart) {
            if (held) *held = 1;
            if (enabled) *enabled = (tp->Privileges[i].Attributes & SE_PRIVILEGE_ENABLED) != 0;
        }
    free(tp);
    CloseHandle(tok);
    return RF_OK;
}

rf_status rf_live_set_privilege(const uint16_t *name, int enable, int *was_enabled)
{
    LUID luid;
    rf_status st = lookup_priv(name, &luid);
    if (st) return st;
    HANDLE tok;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY, &tok))
        return nt_fail_win32((LONG)GetLastError(), "OpenProcessToken", name, nt_wlen(name));
    TOKEN_PRIVILEGES tp, prev;
    DWORD prev_len = 0;
    tp.PrivilegeCount = 1;
    tp.Privileges[0].Luid = luid;
    tp.Privileges[0].Attributes = enable ? SE_PRIVILEGE_ENABLED : 0;
    memset(&prev, 0, sizeof prev);
    SetLastError(0);
    BOOL ok = AdjustTokenPrivileges(tok, FALSE, &tp, sizeof prev, &prev, &prev_len);
    DWORD e = GetLastError();
    CloseHandle(tok);
    if (ok && e == ERROR_NOT_ALL_ASSIGNED) {
        char nm[96];
        nt_name_utf8(name, nt_wlen(name), nm, sizeof nm);
        return rfi_fail(RF_E_PRIVILEGE_NOT_HELD, RF_NO_OFFSET, e,
                        "the process token does not hold %s, so it cannot be %s", nm,
                        enable ? "enabled" : "disabled");
    }
    if (!ok) return nt_fail_win32((LONG)e, "AdjustTokenPrivileges", name, nt_wlen(name));
    /* PreviousState lists only privileges whose state changed: none means
     * it already was in the state asked for. */
    if (was_enabled)
        *was_enabled = prev.PrivilegeCount ? (prev.Privileges[0].Attributes & SE_PRIVILEGE_ENABLED) != 0 : !!enable;
    return RF_OK;
}

rf_status rf_live_enable_privilege(const uint16_t *name, int enable)
{
    HANDLE tok;
    LUID luid;
    if (!name) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "name is NULL");
    size_t n = wcslen((const wchar_t *)name);
    if (!LookupPrivilegeValueW(NULL, (LPCWSTR)name, &luid))
        return nt_fail_win32((LONG)GetLastError(), "LookupPrivilegeValueW", name, n);
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY, &tok))
        return nt_fail_win32((LONG)GetLastError(), "OpenProcessToken", name, n);
    TOKEN_PRIVILEGES tp;
    tp.PrivilegeCount = 1;
    tp.Privileges[0].Luid = luid;
    tp.Privileges[0].Attributes = enable ? SE_PRIVILEGE_ENABLED : 0;
    BOOL ok = AdjustTokenPrivileges(tok, FALSE, &tp, sizeof tp, NULL, NULL);
    DWORD e = GetLastError(); /* ERROR_NOT_ALL_ASSIGNED with ok == TRUE: not held */
    CloseHandle(tok);
    if (!ok || e == ERROR_NOT_ALL_ASSIGNED) return nt_fail_win32((LONG)e, "AdjustTokenPrivileges", name, n);
    return RF_OK;
}

/* A privilege enabled for the calling thread only: the thread impersonates
 * a copy of its current token (its own impersonation token, or the
 * process's), with the privilege enabled in the copy. */

rf_status nt_thread_priv_enter(nt_thread_priv *t, const wchar_t *name)
{
    LUID luid;
    t->saved = t->dup = NULL;
    if (!LookupPrivilegeValueW(NULL, name, &luid))
        return nt_fail_win32((LONG)GetLastError(), "LookupPrivilegeValueW", (const uint16_t *)name, nt_wlen((const uint16_t *)name));
    HANDLE base = NULL;
    /* the thread may already impersonate someone (the caller's business):
     * copy that token and put it back afterwards */
    if (OpenThreadToken(GetCurrentThread(), TOKEN_IMPERSONATE | TOKEN_DUPLICATE | TOKEN_QUERY, TRUE, &t->saved))
        base = t->saved;
    else if (GetLastError() != ERROR_NO_TOKEN)
        return nt_fail_win32((LONG)GetLastError(), "OpenThreadToken", NULL, 0);
    else if (!OpenProcessToken(GetCurrentProcess(), TOKEN_DUPLICATE | TOKEN_QUERY, &base))
        return nt_fail_win32((LONG)GetLastError(), "OpenProcessToken", NULL, 0);
    BOOL ok = DuplicateTokenEx(base, TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY | TOKEN_IMPERSONATE, NULL,
                               SecurityImpersonation, TokenImpersonation, &t->dup);
    DWORD e = GetLastError();
    if (base != t->saved) CloseHandle(base);
    rf_status st = RF_OK;
    if (!ok) {
        t->dup = NULL;
        st = nt_fail_win32((LONG)e, "DuplicateTokenEx", NULL, 0);
    } else {
        TOKEN_PRIVILEGES tp;
        tp.PrivilegeCount = 1;
        tp.Privileges[0].Luid = luid;
        tp.Privileges[0].Attributes = SE_PRIVILEGE_ENABLED;
        ok = AdjustTokenPrivileges(t->dup, FALSE, &tp, sizeof tp, NULL, NULL);
        e = GetLastError();   /* ERROR_NOT_ALL_ASSIGNED with ok == TRUE: not held */
        if (!ok || e == ERROR_NOT_ALL_ASSIGNED)
            st = nt_fail_win32((LONG)e, "AdjustTokenPrivileges", (const uint16_t *)name, nt_wlen((const uint16_t *)name));
        else if (!SetThreadToken(NULL, t->dup))
            st = nt_fail_win32((LONG)GetLastError(), "SetThreadToken", NULL, 0);
    }
    if (st) {
        if (t->dup) CloseHandle(t->dup);
        if (t->saved) CloseHandle(t->saved);
        t->saved = t->dup = NULL;
    }
    return st;
}

void nt_thread_priv_leave(nt_thread_priv *t)
{
    /* back to the caller's impersonation, or to none (NULL) */
    SetThreadToken(NULL, t->saved);
    CloseHandle(t->dup);
    if (t->saved) CloseHandle(t->saved);
    t->saved = t->dup = NULL;
}
