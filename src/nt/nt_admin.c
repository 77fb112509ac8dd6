/*
 * nt_admin.c — administration of the live registry (regfast_nt.h,
 * "Administration"): rename, security descriptors as SDDL, ACEs, ownership,
 * privileges, hive files (load/unload/restore/replace, app hives) and MUI
 * strings.
 *
 * Rules kept throughout:
 *  - bad input is refused before any registry call, so a refused call
 *    changes nothing (names, SDDL, hive paths and their contents);
 *  - exports that are missing on some systems (NtRenameKey, RegRenameKey,
 *    RegLoadAppKeyW, RegLoadMUIStringW) come from GetProcAddress: one
 *    missing export must not stop a program from loading;
 *  - a Wine stub that returns success and does nothing (RegRestoreKeyW,
 *    RegReplaceKeyW, RegLoadAppKeyW — shared/reference/wine-registry.md) is
 *    reported as RF_E_NOT_SUPPORTED, never as a success;
 *  - rights the cached handle may lack (WRITE_DAC, WRITE_OWNER,
 *    ACCESS_SYSTEM_SECURITY) are asked for by a second open of the same key
 *    (RegOpenKeyExW with an empty subkey), so the system checks them exactly
 *    as it would for the caller.
 */
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "nt/nt_internal.h"

#include <aclapi.h>
#include <sddl.h>

#define LIVE_OR_FAIL(h, base) \
    nt_hive *h = nt_cast(base); \
    if (!h) return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "not a live hive (rf_live_open)")

#define ERR_ALREADY_EXISTS     183
#define ERR_NOT_REGISTRY_FILE  1017
#define ERR_NO_SUCH_PRIVILEGE  1313
#define ERR_INVALID_ACL        1336

static FARPROC proc(const wchar_t *dll, const char *name)
{
    HMODULE m = GetModuleHandleW(dll);
    if (!m) m = LoadLibraryW(dll);
    return m ? GetProcAddress(m, name) : NULL;
}

int rf_live_is_wine(void)
{
    return proc(L"ntdll.dll", "wine_get_version") != NULL;
}

static size_t wlen(const uint16_t *s) { return s ? wcslen((const wchar_t *)s) : 0; }

/* A second handle to the key behind `r` with exactly `access` (see top). */
static rf_status reopen(nt_ref *r, ACCESS_MASK access, HKEY *out)
{
    LONG e = RegOpenKeyExW((HKEY)r->handle, L"", 0, access, out);
    if (e) {
        *out = NULL;
        return rfi_fail((rf_status)e, RF_NO_OFFSET, e, "re-opening the key with access 0x%lx failed: %s "
                        "(Win32 error %ld)", (unsigned long)access, rf_status_text((rf_status)e), (long)e);
    }
    return RF_OK;
}

/* ------------------------------------------------------------------------ */
/* Rename                                                                    */
/* ------------------------------------------------------------------------ */

typedef NTSTATUS (NTAPI *rename_fn)(HANDLE, nt_ustr *);
typedef LONG (WINAPI *reg_rename_fn)(HKEY, LPCWSTR, LPCWSTR);

rf_status rf_live_rename_key(rf_hive *base, rf_key k, const uint16_t *new_name, size_t nchars)
{
    LIVE_OR_FAIL(h, base);
    if (!new_name || nchars == 0)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "the new key name is empty");
    if (nchars > 255)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                        "the new key name has %zu characters; a key name has at most 255", nchars);
    for (size_t i = 0; i < nchars; i++)
        if (new_name[i] == '\\' || new_name[i] == 0)
            return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                            "the new key name contains a %s at %zu: it must be one path component",
                            new_name[i] ? "backslash" : "NUL", i);
    rf_key parent;
    rf_status st = nt_key_parent_of(h, k, &parent);
    if (st == RF_E_NOT_FOUND)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "the root of a live hive cannot be renamed");
    if (st) return st;
    wchar_t *z = malloc((nchars + 1) * sizeof *z);
    if (!z) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
    memcpy(z, new_name, nchars * 2);
    z[nchars] = 0;

    /* A clash is checked first: Windows' NtRenameKey reports it as
     * STATUS_ACCESS_DENIED (5), which is indistinguishable from a real
     * denial; 183 says what happened on every system. */
    nt_ref pr;
    if ((st = nt_acquire(h, parent, &pr)) != RF_OK) { free(z); return st; }
    HKEY t;
    LONG e = RegOpenKeyExW((HKEY)pr.handle, z, 0, KEY_QUERY_VALUE, &t);
    nt_release(h, &pr);
    if (e == 0) RegCloseKey(t);
    if (e == 0 || e == ERROR_ACCESS_DENIED) {
        char nm[96];
        nt_name_utf8(new_name, nchars, nm, sizeof nm);
        free(z);
        return rfi_fail(ERR_ALREADY_EXISTS, RF_NO_OFFSET, 0, "a sibling key named \"%s\" already exists", nm);
    }

    rename_fn nt_rename;
    reg_rename_fn reg_rename;
    FARPROC p = proc(L"ntdll.dll", "NtRenameKey");
    memcpy(&nt_rename, &p, sizeof p);
    p = proc(L"advapi32.dll", "RegRenameKey");
    memcpy(&reg_rename, &p, sizeof p);
    if (!nt_rename && !reg_rename) {
        free(z);
        return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "neither NtRenameKey nor RegRenameKey exists here");
    }
    nt_ref r;
    if ((st = nt_acquire(h, k, &r)) != RF_OK) { free(z); return st; }
    if (nt_rename) {
        nt_ustr us = { (USHORT)(nchars * 2), (USHORT)(nchars * 2), z };
        NTSTATUS s = nt_rename(r.handle, &us);
        if (!NT_SUCCESS(s)) st = nt_call_fail(h, &r, s, "NtRenameKey", new_name, nchars);
    } else {
        e = reg_rename((HKEY)r.handle, NULL, z);
        if (e) st = nt_fail_win32(e, "RegRenameKey", new_name, nchars);
    }
    /* The slot's path is the old name now: a tombstone makes the old path
     * reopen afresh (and be gone) instead of trusting the cached handle. */
    if (!st) nt_after_call(h, &r, NT_STATUS_KEY_DELETED);
    nt_release(h, &r);
    free(z);
    return st;
}

rf_status rf_live_key_invalidate(rf_hive *base, rf_key k)
{
    LIVE_OR_FAIL(h, base);
    nt_ref r;
    rf_status st = nt_acquire(h, k, &r);
    if (st) return st;
    nt_after_call(h, &r, NT_STATUS_KEY_DELETED);
    /* ... and forget its handle, closed here: a handle kept open would stop
     * RegUnLoadKeyW from unloading a hive mounted at this key */
    HANDLE hd = r.handle;
    int forgot = nt_after_call(h, &r, NT_STATUS_INVALID_HANDLE);
    nt_release(h, &r);
    if (forgot && k != nt_token(h->tag, 0, 1, 0)) nt.Close(hd);
    return RF_OK;
}

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
        nt_name_utf8(name, wlen(name), nm, sizeof nm);
        if (e == ERR_NO_SUCH_PRIVILEGE || e == 0)
            return rfi_fail(ERR_NO_SUCH_PRIVILEGE, RF_NO_OFFSET, e, "\"%s\" is not a privilege name "
                            "(e.g. SeBackupPrivilege)", nm);
        return nt_fail_win32((LONG)e, "LookupPrivilegeValueW", name, wlen(name));
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
        return nt_fail_win32((LONG)GetLastError(), "OpenProcessToken", name, wlen(name));
    DWORD need = 0;
    GetTokenInformation(tok, TokenPrivileges, NULL, 0, &need);
    /* no size: the size query itself failed, and says why */
    DWORD e0 = need ? 0 : GetLastError();
    TOKEN_PRIVILEGES *tp = need ? malloc(need) : NULL;
    if (!tp || !GetTokenInformation(tok, TokenPrivileges, tp, need, &need)) {
        DWORD e = tp ? GetLastError() : need ? ERROR_NOT_ENOUGH_MEMORY : (e0 ? e0 : ERROR_INVALID_DATA);
        free(tp);
        CloseHandle(tok);
        return nt_fail_win32((LONG)e, "GetTokenInformation", name, wlen(name));
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
        return nt_fail_win32((LONG)GetLastError(), "OpenProcessToken", name, wlen(name));
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
        nt_name_utf8(name, wlen(name), nm, sizeof nm);
        return rfi_fail(RF_E_PRIVILEGE_NOT_HELD, RF_NO_OFFSET, e,
                        "the process token does not hold %s, so it cannot be %s", nm,
                        enable ? "enabled" : "disabled");
    }
    if (!ok) return nt_fail_win32((LONG)e, "AdjustTokenPrivileges", name, wlen(name));
    /* PreviousState lists only privileges whose state changed: none means
     * it already was in the state asked for. */
    if (was_enabled)
        *was_enabled = prev.PrivilegeCount ? (prev.Privileges[0].Attributes & SE_PRIVILEGE_ENABLED) != 0 : !!enable;
    return RF_OK;
}

/* ------------------------------------------------------------------------ */
/* Security                                                                  */
/* ------------------------------------------------------------------------ */

rf_status rf_live_get_security(rf_hive *base, rf_key k, uint32_t si, const uint8_t **sd, size_t *len,
                               uint32_t *si_out)
{
    LIVE_OR_FAIL(h, base);
    if (sd) *sd = NULL;
    if (len) *len = 0;
    if (si_out) *si_out = 0;
    if (!sd || !len) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "sd or len is NULL");
    if (si & ~(uint32_t)(RF_SI_OWNER | RF_SI_GROUP | RF_SI_DACL | RF_SI_SACL))
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "security information 0x%x: RF_SI_* bits only", si);
    if (!si) {
        int en = 0;
        si = RF_SI_OWNER | RF_SI_GROUP | RF_SI_DACL;
        if (rf_live_privilege_state((const uint16_t *)L"SeSecurityPrivilege", NULL, &en) == RF_OK && en)
            si |= RF_SI_SACL;
    }
    nt_ref r;
    rf_status st = nt_acquire(h, k, &r);
    if (st) return st;
    HKEY hk = (HKEY)r.handle, extra = NULL;
    if (si & RF_SI_SACL) {
        if ((st = reopen(&r, READ_CONTROL | ACCESS_SYSTEM_SECURITY, &extra)) != RF_OK) {
            nt_release(h, &r);
            return st;
        }
        hk = extra;
    }
    size_t cap = 0;
    DWORD need = 512;
    LONG e;
    void *buf;
    for (int attempt = 0;; attempt++) {
        buf = nt_scratch(NT_BUF_SD, need, &cap);
        if (!buf) { st = RF_E_NO_MEMORY; break; }
        need = (DWORD)cap;
        e = RegGetKeySecurity(hk, (SECURITY_INFORMATION)si, buf, &need);
        if (e != ERROR_INSUFFICIENT_BUFFER || attempt == 8) break;
    }
    if (!st && e) {
        if (e == ERROR_KEY_DELETED) nt_after_call(h, &r, NT_STATUS_KEY_DELETED);
        st = nt_fail_win32(e, "RegGetKeySecurity", NULL, 0);
    }
    if (!st) {
        /* Wine keeps SE_SACL_PRESENT in the control word of a descriptor
         * read without SACL_SECURITY_INFORMATION (once the key has a
         * SACL): the descriptor then claims an empty-but-present SACL, which
         * prints as "S:NO_ACCESS_CONTROL". What was not asked for is not in
         * it: clear the bit (and the offset) in our copy. Same for the DACL. */
        uint8_t *b = buf;
        uint16_t ctl = (uint16_t)(b[2] | b[3] << 8);
        if (!(si & RF_SI_SACL) && (ctl & 0x0010) && (ctl & 0x8000)) {
            ctl &= (uint16_t)~0x0010u;
            memset(b + 12, 0, 4);
        }
        if (!(si & RF_SI_DACL) && (ctl & 0x0004) && (ctl & 0x8000)) {
            ctl &= (uint16_t)~0x0004u;
            memset(b + 16, 0, 4);
        }
        b[2] = (uint8_t)ctl;
        b[3] = (uint8_t)(ctl >> 8);
        *sd = buf;
        *len = GetSecurityDescriptorLength(buf);
        if (si_out) *si_out = si;
    }
    if (extra) RegCloseKey(extra);
    nt_release(h, &r);
    return st;
}

/* Parses SDDL into a LocalAlloc'ed descriptor and the RF_SI_* parts it has. */
static rf_status parse_sddl(const uint16_t *sddl, PSECURITY_DESCRIPTOR *out, uint32_t *si)
{
    *out = NULL;
    *si = 0;
    size_t n = wlen(sddl);
    if (n == 0)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "the SDDL string is empty");
    for (size_t i = 0; i < n; i++)
        if (sddl[i] < 0x20 || sddl[i] > 0x7E)
            return rfi_fail(ERR_INVALID_ACL, RF_NO_OFFSET, 0,
                            "invalid SDDL: character U+%04X at %zu (SDDL is printable ASCII)", sddl[i], i);
    PSECURITY_DESCRIPTOR psd = NULL;
    ULONG sz = 0;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW((LPCWSTR)sddl, SDDL_REVISION_1, &psd, &sz)) {
        DWORD e = GetLastError();
        char txt[120];
        nt_name_utf8(sddl, n, txt, sizeof txt);
        return rfi_fail(ERR_INVALID_ACL, RF_NO_OFFSET, e,
                        "invalid SDDL \"%s\": ConvertStringSecurityDescriptorToSecurityDescriptorW "
                        "refused it (Win32 error %lu)", txt, (unsigned long)e);
    }
    PSID owner = NULL, group = NULL;
    PACL acl = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    if (!IsValidSecurityDescriptor(psd)) {
        LocalFree(psd);
        return rfi_fail(ERR_INVALID_ACL, RF_NO_OFFSET, 0, "invalid SDDL: the descriptor it makes is not valid");
    }
    if (GetSecurityDescriptorOwner(psd, &owner, &defaulted) && owner) *si |= RF_SI_OWNER;
    if (GetSecurityDescriptorGroup(psd, &group, &defaulted) && group) *si |= RF_SI_GROUP;
    if (GetSecurityDescriptorDacl(psd, &present, &acl, &defaulted) && present) *si |= RF_SI_DACL;
    present = FALSE;
    if (GetSecurityDescriptorSacl(psd, &present, &acl, &defaulted) && present) *si |= RF_SI_SACL;
    if (!*si) {
        LocalFree(psd);
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                        "the SDDL string sets nothing: give O:, G:, D: or S:");
    }
    *out = psd;
    return RF_OK;
}

rf_status rf_live_set_security(rf_hive *base, rf_key k, const uint16_t *sddl, uint32_t *si_out)
{
    LIVE_OR_FAIL(h, base);
    if (si_out) *si_out = 0;
    PSECURITY_DESCRIPTOR psd;
    uint32_t si;
    rf_status st = parse_sddl(sddl, &psd, &si);
    if (st) return st;
    ACCESS_MASK need = 0;
    if (si & (RF_SI_OWNER | RF_SI_GROUP)) need |= WRITE_OWNER;
    if (si & RF_SI_DACL) need |= WRITE_DAC;
    if (si & RF_SI_SACL) need |= ACCESS_SYSTEM_SECURITY;
    nt_ref r;
    if ((st = nt_acquire(h, k, &r)) != RF_OK) { LocalFree(psd); return st; }
    HKEY hk;
    if ((st = reopen(&r, need, &hk)) == RF_OK) {
        LONG e = RegSetKeySecurity(hk, (SECURITY_INFORMATION)si, psd);
        if (e) st = nt_fail_win32(e, "RegSetKeySecurity", NULL, 0);
        RegCloseKey(hk);
    }
    nt_release(h, &r);
    LocalFree(psd);
    if (!st && si_out) *si_out = si;
    return st;
}

/* The SID a trustee string names, LocalAlloc'ed or in `buf`. */
static rf_status trustee_sid(const uint16_t *trustee, PSID *out, void **to_free, uint8_t *buf, DWORD cap)
{
    size_t n = wlen(trustee);
    char nm[96];
    *out = NULL;
    *to_free = NULL;
    if (n == 0) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "the trustee is empty");
    nt_name_utf8(trustee, n, nm, sizeof nm);
    if ((trustee[0] == 'S' || trustee[0] == 's') && trustee[1] == '-') {
        PSID sid = NULL;
        if (!ConvertStringSidToSidW((LPCWSTR)trustee, &sid) || !IsValidSid(sid)) {
            if (sid) LocalFree(sid);
            return rfi_fail(1337, RF_NO_OFFSET, GetLastError(), "\"%s\" is not a valid SID string", nm);
        }
        *out = sid;
        *to_free = sid;
        return RF_OK;
    }
    wchar_t dom[256];
    DWORD sl = cap, dl = 256;
    SID_NAME_USE use;
    if (!LookupAccountNameW(NULL, (LPCWSTR)trustee, buf, &sl, dom, &dl, &use)) {
        DWORD e = GetLastError();
        return rfi_fail(e == ERROR_NONE_MAPPED || e == 0 ? 1332 : (rf_status)e, RF_NO_OFFSET, e,
                        "no account is named \"%s\" (LookupAccountNameW: Win32 error %lu)", nm, (unsigned long)e);
    }
    *out = buf;
    return RF_OK;
}

rf_status rf_live_grant(rf_hive *base, rf_key k, const uint16_t *trustee, uint32_t rights, uint32_t mode,
                        uint32_t inherit)
{
    LIVE_OR_FAIL(h, base);
    if (mode < RF_ACE_GRANT || mode > RF_ACE_REVOKE)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "mode %u: RF_ACE_GRANT/SET/DENY/REVOKE", mode);
    if (inherit & ~0x1Fu)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "inheritance flags 0x%x: at most 0x1f", inherit);
    if (!rights && mode != RF_ACE_REVOKE)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "an ACE with no rights");
    DWORD sidbuf[(SECURITY_MAX_SID_SIZE + 3) / 4];   /* a SID is DWORD-aligned */
    PSID sid;
    void *sid_free;
    rf_status st = trustee_sid(trustee, &sid, &sid_free, (uint8_t *)sidbuf, sizeof sidbuf);
    if (st) return st;
    nt_ref r;
    if ((st = nt_acquire(h, k, &r)) != RF_OK) { if (sid_free) LocalFree(sid_free); return st; }
    PACL old = NULL, acl = NULL;
    PSECURITY_DESCRIPTOR psd = NULL;
    DWORD e = GetSecurityInfo(r.handle, SE_REGISTRY_KEY, DACL_SECURITY_INFORMATION, NULL, NULL, &old, NULL, &psd);
    if (e) st = nt_fail_win32((LONG)e, "GetSecurityInfo", NULL, 0);
    if (!st) {
        EXPLICIT_ACCESS_W ea;
        memset(&ea, 0, sizeof ea);
        ea.grfAccessPermissions = rights;
        ea.grfAccessMode = (ACCESS_MODE)mode;
        ea.grfInheritance = inherit;
        ea.Trustee.TrusteeForm = TRUSTEE_IS_SID;
        ea.Trustee.TrusteeType = TRUSTEE_IS_UNKNOWN;
        ea.Trustee.ptstrName = (LPWSTR)sid;
        e = SetEntriesInAclW(1, &ea, old, &acl);
        if (e) st = nt_fail_win32((LONG)e, "SetEntriesInAclW", NULL, 0);
    }
    if (!st) {
        HKEY hk;
        if ((st = reopen(&r, WRITE_DAC, &hk)) == RF_OK) {
            e = SetSecurityInfo(hk, SE_REGISTRY_KEY, DACL_SECURITY_INFORMATION, NULL, NULL, acl, NULL);
            if (e) st = nt_fail_win32((LONG)e, "SetSecurityInfo", NULL, 0);
            RegCloseKey(hk);
        }
    }
    if (acl) LocalFree(acl);
    if (psd) LocalFree(psd);
    if (sid_free) LocalFree(sid_free);
    nt_release(h, &r);
    return st;
}

/* A privilege enabled for the calling thread only: the thread impersonates
 * a copy of its current token (its own impersonation token, or the
 * process's), with the privilege enabled in the copy. */
typedef struct thread_priv { HANDLE saved, dup; } thread_priv;

static rf_status thread_priv_enter(thread_priv *t, const wchar_t *name)
{
    LUID luid;
    t->saved = t->dup = NULL;
    if (!LookupPrivilegeValueW(NULL, name, &luid))
        return nt_fail_win32((LONG)GetLastError(), "LookupPrivilegeValueW", (const uint16_t *)name, wlen((const uint16_t *)name));
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
            st = nt_fail_win32((LONG)e, "AdjustTokenPrivileges", (const uint16_t *)name, wlen((const uint16_t *)name));
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

static void thread_priv_leave(thread_priv *t)
{
    /* back to the caller's impersonation, or to none (NULL) */
    SetThreadToken(NULL, t->saved);
    CloseHandle(t->dup);
    if (t->saved) CloseHandle(t->saved);
    t->saved = t->dup = NULL;
}

rf_status rf_live_take_ownership(rf_hive *base, rf_key k)
{
    LIVE_OR_FAIL(h, base);
    HANDLE tok;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
        return nt_fail_win32((LONG)GetLastError(), "OpenProcessToken", NULL, 0);
    union { TOKEN_USER tu; uint8_t b[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE]; } ubuf; /* aligned */
    DWORD need = 0;
    BOOL ok = GetTokenInformation(tok, TokenUser, &ubuf, sizeof ubuf, &need);
    DWORD e = GetLastError();
    CloseHandle(tok);
    if (!ok) return nt_fail_win32((LONG)e, "GetTokenInformation", NULL, 0);
    PSID me = ubuf.tu.User.Sid;
    /* SeTakeOwnershipPrivilege grants WRITE_OWNER whatever the DACL says.
     * It is enabled in a thread token of this call's own (a copy of the
     * thread's or the process's), never in the process token: in-process
     * (regfast.live.local(), the Windows default) that token is the Python
     * program's, and other threads would see the privilege come and go. */
    thread_priv tp;
    int enabled_here = thread_priv_enter(&tp, L"SeTakeOwnershipPrivilege") == RF_OK;
    rf_clear_error();
    nt_ref r;
    rf_status st = nt_acquire(h, k, &r);
    if (!st) {
        HKEY hk;
        if ((st = reopen(&r, WRITE_OWNER, &hk)) == RF_OK) {
            e = SetSecurityInfo(hk, SE_REGISTRY_KEY, OWNER_SECURITY_INFORMATION, me, NULL, NULL, NULL);
            if (e) st = nt_fail_win32((LONG)e, "SetSecurityInfo", NULL, 0);
            RegCloseKey(hk);
        }
        nt_release(h, &r);
    }
    if (enabled_here) thread_priv_leave(&tp);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Hive files                                                                */
/* ------------------------------------------------------------------------ */

rf_status rf_live_file_kind(const uint16_t *path, int *kind)
{
    if (kind) *kind = 0;
    size_t n = wlen(path);
    if (n == 0) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "the hive path is empty");
    char nm[160];
    nt_name_utf8(path, n, nm, sizeof nm);
    int absolute = (n >= 3 && path[1] == ':' && (path[2] == '\\' || path[2] == '/')) ||
                   (n >= 2 && path[0] == '\\' && path[1] == '\\');
    if (!absolute)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                        "\"%s\" is a relative path: the registry resolves hive paths in the system's "
                        "own current directory, so give an absolute one", nm);
    DWORD a = GetFileAttributesW((LPCWSTR)path);
    if (a == INVALID_FILE_ATTRIBUTES) {
        DWORD e = GetLastError();
        if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND)
            return rfi_fail(RF_E_NOT_FOUND, RF_NO_OFFSET, e, "the hive file \"%s\" does not exist", nm);
        return nt_fail_win32((LONG)e, "GetFileAttributesW", path, n);
    }
    if (a & FILE_ATTRIBUTE_DIRECTORY)
        return rfi_fail(RF_E_ACCESS_DENIED, RF_NO_OFFSET, 0, "\"%s\" is a directory, not a hive file", nm);
    HANDLE f = CreateFileW((LPCWSTR)path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           NULL, OPEN_EXISTING, 0, NULL);
    if (f == INVALID_HANDLE_VALUE) return nt_fail_win32((LONG)GetLastError(), "CreateFileW", path, n);
    char head[24];
    DWORD got = 0;
    BOOL ok = ReadFile(f, head, sizeof head, &got, NULL);
    CloseHandle(f);
    if (!ok) return nt_fail_win32((LONG)GetLastError(), "ReadFile", path, n);
    static const char wine_sig[] = "WINE REGISTRY Version 2";
    int k = RF_FILE_OTHER;
    if (got >= 4 && memcmp(head, "regf", 4) == 0) k = RF_FILE_REGF;
    else if (got >= sizeof wine_sig - 1 && memcmp(head, wine_sig, sizeof wine_sig - 1) == 0) k = RF_FILE_WINE;
    if (kind) *kind = k;
    return RF_OK;
}

/* The file must exist and be of a kind the call accepts (1017 otherwise). */
static rf_status check_hive_file(const uint16_t *path, int allow_wine, const char *api)
{
    int kind;
    rf_status st = rf_live_file_kind(path, &kind);
    if (st) return st;
    if (kind == RF_FILE_REGF || (allow_wine && kind == RF_FILE_WINE)) return RF_OK;
    char nm[160];
    nt_name_utf8(path, wlen(path), nm, sizeof nm);
    return rfi_fail(ERR_NOT_REGISTRY_FILE, RF_NO_OFFSET, 0, "%s: \"%s\" is not a %s", api, nm,
                    kind == RF_FILE_WINE ? "regf hive (it is in Wine's text format)"
                                         : allow_wine ? "registry hive file (no regf or Wine signature)"
                                                      : "regf hive (no \"regf\" signature)");
}

static HKEY hive_root(uint32_t root)
{
    switch (root) {
    case RF_HKEY_LOCAL_MACHINE: return HKEY_LOCAL_MACHINE;
    case RF_HKEY_USERS: return HKEY_USERS;
    default: return NULL;
    }
}

static rf_status check_mount_name(uint32_t root, const uint16_t *subkey)
{
    if (!hive_root(root))
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                        "hives load under HKEY_LOCAL_MACHINE or HKEY_USERS only (root 0x%08x)", root);
    size_t n = wlen(subkey);
    if (n == 0 || n > 255)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "the mount name must have 1..255 characters");
    for (size_t i = 0; i < n; i++)
        if (subkey[i] == '\\')
            return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "the mount name must not contain a backslash");
    return RF_OK;
}

rf_status rf_live_load_hive(uint32_t root, const uint16_t *subkey, const uint16_t *path)
{
    rf_status st = check_mount_name(root, subkey);
    if (!st) st = check_hive_file(path, 1, "RegLoadKeyW");
    if (st) return st;
    HKEY t;
    LONG e = RegOpenKeyExW(hive_root(root), (LPCWSTR)subkey, 0, KEY_QUERY_VALUE, &t);
    if (e == 0) RegCloseKey(t);
    int absent_before = e == ERROR_FILE_NOT_FOUND;
    if (e == 0 || e == ERROR_ACCESS_DENIED) {
        char nm[96];
        nt_name_utf8(subkey, wlen(subkey), nm, sizeof nm);
        return rfi_fail(ERR_ALREADY_EXISTS, RF_NO_OFFSET, 0, "a key named \"%s\" exists: load the hive "
                        "under a new name", nm);
    }
    e = RegLoadKeyW(hive_root(root), (LPCWSTR)subkey, (LPCWSTR)path);
    if (e == ERR_NOT_REGISTRY_FILE && absent_before && rf_live_is_wine() &&
        RegOpenKeyExW(hive_root(root), (LPCWSTR)subkey, 0, KEY_QUERY_VALUE, &t) == 0) {
        /* Wine creates the mount key before it parses the file, and leaves
         * it when the parse fails (1017): a failed load must leave nothing
         * behind. Only then: Windows creates nothing on failure, and a key
         * that existed before the call, or that someone else made after any
         * other failure, is not ours to delete. */
        RegCloseKey(t);
        RegDeleteKeyW(hive_root(root), (LPCWSTR)subkey);
    }
    if (e == ERR_NOT_REGISTRY_FILE && rf_live_is_wine())
        return rfi_fail(ERR_NOT_REGISTRY_FILE, RF_NO_OFFSET, e,
                        "RegLoadKeyW refused the file (1017): Wine loads only hives in its own text "
                        "format (saved by its RegSaveKeyExW), never a regf hive");
    if (e) return nt_fail_win32(e, "RegLoadKeyW", subkey, wlen(subkey));
    return RF_OK;
}

rf_status rf_live_unload_hive(uint32_t root, const uint16_t *subkey)
{
    rf_status st = check_mount_name(root, subkey);
    if (st) return st;
    LONG e = RegUnLoadKeyW(hive_root(root), (LPCWSTR)subkey);
    if (e) return nt_fail_win32(e, "RegUnLoadKeyW", subkey, wlen(subkey));
    return RF_OK;
}

static rf_status wine_stub(const char *api)
{
    return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0,
                    "%s is a stub under Wine (it returns success and does nothing): not called", api);
}

rf_status rf_live_restore_key(rf_hive *base, rf_key k, const uint16_t *path, uint32_t flags)
{
    LIVE_OR_FAIL(h, base);
    if (flags & ~(uint32_t)(0x1 | 0x8 | 0x20 | 0x40 | 0x80))
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "RegRestoreKeyW flags 0x%x", flags);
    rf_status st = check_hive_file(path, 0, "RegRestoreKeyW");
    if (st) return st;
    if (rf_live_is_wine()) return wine_stub("RegRestoreKeyW");
    nt_ref r;
    if ((st = nt_acquire(h, k, &r)) != RF_OK) return st;
    LONG e = RegRestoreKeyW((HKEY)r.handle, (LPCWSTR)path, flags);
    if (e == ERROR_KEY_DELETED) nt_after_call(h, &r, NT_STATUS_KEY_DELETED);
    if (e) st = nt_fail_win32(e, "RegRestoreKeyW", path, wlen(path));
    nt_release(h, &r);
    return st;
}

rf_status rf_live_replace_key(rf_hive *base, rf_key k, const uint16_t *new_path, const uint16_t *old_path)
{
    LIVE_OR_FAIL(h, base);
    rf_status st = check_hive_file(new_path, 0, "RegReplaceKeyW");
    if (st) return st;
    int kind;
    st = rf_live_file_kind(old_path, &kind);
    if (st == RF_OK) {
        char nm[160];
        nt_name_utf8(old_path, wlen(old_path), nm, sizeof nm);
        return rfi_fail(ERR_ALREADY_EXISTS, RF_NO_OFFSET, 0,
                        "the backup file \"%s\" exists: RegReplaceKeyW would need to create it", nm);
    }
    if (st != RF_E_NOT_FOUND) return st;   /* relative, ... */
    rf_clear_error();
    if (rf_live_is_wine()) return wine_stub("RegReplaceKeyW");
    nt_ref r;
    if ((st = nt_acquire(h, k, &r)) != RF_OK) return st;
    LONG e = RegReplaceKeyW((HKEY)r.handle, NULL, (LPCWSTR)new_path, (LPCWSTR)old_path);
    if (e) st = nt_fail_win32(e, "RegReplaceKeyW", new_path, wlen(new_path));
    nt_release(h, &r);
    return st;
}

typedef LONG (WINAPI *load_app_fn)(LPCWSTR, PHKEY, REGSAM, DWORD, DWORD);

rf_status rf_live_load_app_hive(const uint16_t *path, uint32_t access, rf_hive **out)
{
    if (!out) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "out is NULL");
    *out = NULL;
    rf_status st = nt_load_api();
    if (st) return st;
    if ((st = check_hive_file(path, 0, "RegLoadAppKeyW")) != RF_OK) return st;
    load_app_fn load;
    FARPROC p = proc(L"advapi32.dll", "RegLoadAppKeyW");
    memcpy(&load, &p, sizeof p);
    if (!load) return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "RegLoadAppKeyW does not exist here (Vista+)");
    if (!access) access = KEY_READ;
    HKEY hk = NULL;
    LONG e = load((LPCWSTR)path, &hk, access, 0, 0);
    if (e) return nt_fail_win32(e, "RegLoadAppKeyW", path, wlen(path));
    /* Wine 8's stub answers success with a handle nothing accepts: one
     * NtQueryKey tells a real hive from it. */
    uint8_t info[256];
    ULONG rl = 0;
    NTSTATUS s = nt.QueryKey((HANDLE)hk, KeyBasicInformation, info, sizeof info, &rl);
    if (!NT_SUCCESS(s) && s != NT_STATUS_BUFFER_OVERFLOW) {
        if (s != NT_STATUS_INVALID_HANDLE) RegCloseKey(hk);
        if (s == NT_STATUS_INVALID_HANDLE)
            return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, (int64_t)(uint32_t)s,
                            "RegLoadAppKeyW returned success but its key handle is invalid: a stub "
                            "(Wine's loads nothing); app hives are not supported here");
        return nt_fail(s, "NtQueryKey", path, wlen(path));
    }
    nt_hive *h = calloc(1, nt_ops.hive_size);
    if (!h) {
        RegCloseKey(hk);
        return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a live hive");
    }
    h->root_id = 0;       /* not a predefined root: an app hive */
    h->view = RF_VIEW_NATIVE;
    h->access = access;
    if ((st = nt_cache_init(h, (HANDLE)hk)) != RF_OK) {
        int adopted = h->chunks[0] != NULL;   /* slot 0 holds hk: nt_cache_free closes it */
        nt_cache_free(h);
        if (!adopted) RegCloseKey(hk);
        free(h);
        return st;
    }
    h->base.ops = &nt_ops;
    *out = &h->base;
    return RF_OK;
}

/* ------------------------------------------------------------------------ */
/* MUI strings                                                               */
/* ------------------------------------------------------------------------ */

typedef LONG (WINAPI *load_mui_fn)(HKEY, LPCWSTR, LPWSTR, DWORD, LPDWORD, DWORD, LPCWSTR);

rf_status rf_live_mui_string(rf_hive *base, rf_key k, const uint16_t *name, uint16_t *buf, size_t cap,
                             size_t *len_out)
{
    LIVE_OR_FAIL(h, base);
    if (!len_out || (cap && !buf))
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "len_out is NULL, or buf is NULL with cap > 0");
    *len_out = 0;
    load_mui_fn load;
    FARPROC p = proc(L"advapi32.dll", "RegLoadMUIStringW");
    memcpy(&load, &p, sizeof p);
    if (!load) return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "RegLoadMUIStringW does not exist here (Vista+)");
    if (cap > 0xFFFFFFF0u) cap = 0xFFFFFFF0u;
    nt_ref r;
    rf_status st = nt_acquire(h, k, &r);
    if (st) return st;
    DWORD got = 0;
    wchar_t dummy[1];
    LONG e = load((HKEY)r.handle, name ? (LPCWSTR)name : L"", cap ? (LPWSTR)buf : dummy,
                  (DWORD)(cap & ~(size_t)1), &got, 0, NULL);
    if (e == ERROR_MORE_DATA || (e == 0 && cap == 0)) {
        /* the size needed, when the function says it (it does not always) */
        *len_out = got > 2 ? got - 2 : cap + 2;
        st = rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, e, "the string needs more than %zu bytes", cap);
    } else if (e == ERROR_INVALID_DATA) {
        /* RegLoadMUIStringW refuses a string that is not "@...": Windows and
         * Wine both say 13. regfast returns such a string as it is stored
         * (as SHLoadIndirectString does), so a display name reads the same
         * whether or not it was localized. */
        DWORD type = 0, dl = 0;
        const wchar_t *vn = name ? (LPCWSTR)name : L"";
        uint8_t *tmp = NULL;
        LONG q = RegQueryValueExW((HKEY)r.handle, vn, NULL, &type, NULL, &dl);
        /* the value may grow (or change type) between the size query and
         * the read: ERROR_MORE_DATA gives the new size, read again */
        for (int tries = 0; q == 0 && tries < 8; tries++) {
            free(tmp);
            tmp = type == REG_SZ || type == REG_EXPAND_SZ ? malloc(dl + 2) : NULL;
            if (!tmp) break;
            DWORD had = dl;
            q = RegQueryValueExW((HKEY)r.handle, vn, NULL, &type, tmp, &dl);
            if (q != ERROR_MORE_DATA) break;
            if (dl <= had) dl = had * 2 + 64;
            q = 0;
        }
        if (tmp && q == 0 && (type == REG_SZ || type == REG_EXPAND_SZ)) {
            size_t n = 0;
            const uint16_t *w = (const uint16_t *)tmp;
            while (n < dl / 2 && w[n]) n++;
            if (n && w[0] == '@') {
                st = nt_fail_win32(e, "RegLoadMUIStringW", name, wlen(name));
            } else if ((n + 1) * 2 > cap) {
                *len_out = n * 2;
                st = rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "the string needs %zu bytes", n * 2 + 2);
            } else {
                memcpy(buf, w, n * 2);
                buf[n] = 0;
                *len_out = n * 2;
            }
        } else {
            st = rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, e, "the value is not a string (REG_SZ or REG_EXPAND_SZ)");
        }
        free(tmp);
    } else if (e) {
        if (e == ERROR_KEY_DELETED) nt_after_call(h, &r, NT_STATUS_KEY_DELETED);
        st = nt_fail_win32(e, "RegLoadMUIStringW", name, wlen(name));
    } else {
        size_t n = 0, maxc = cap / 2;
        while (n < maxc && buf[n]) n++;
        if (n == maxc) {
            *len_out = cap + 2;
            st = rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "the string filled all %zu bytes", cap);
        } else {
            *len_out = n * 2;
        }
    }
    nt_release(h, &r);
    return st;
}
