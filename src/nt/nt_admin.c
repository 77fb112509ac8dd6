/*
 * nt_admin.c — administration of the live registry (regfast_nt.h,
 * "Administration"): ACEs, ownership, hive files (load/unload/restore/
 * replace, app hives), MUI strings and cache invalidation. Writes, rename
 * and security descriptors are nt_write.c; privileges nt_priv.c.
 *
 * Rules kept throughout:
 *  - bad input is refused before any registry call, so a refused call
 *    changes nothing (names, hive paths and their contents);
 *  - exports that are missing on some systems (RegLoadAppKeyW,
 *    RegLoadMUIStringW) come from GetProcAddress: one missing export must
 *    not stop a program from loading;
 *  - a Wine stub that returns success and does nothing (RegRestoreKeyW,
 *    RegReplaceKeyW, RegLoadAppKeyW — shared/reference/wine-registry.md) is
 *    reported as RF_E_NOT_SUPPORTED, never as a success;
 *  - rights the cached handle may lack (WRITE_DAC, WRITE_OWNER) are asked
 *    for by a second open of the same key (nt_reopen), so the system checks
 *    them exactly as it would for the caller.
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
/* ACEs and ownership                                                        */
/* ------------------------------------------------------------------------ */

/* The SID a trustee string names, LocalAlloc'ed or in `buf`. */
static rf_status trustee_sid(const uint16_t *trustee, PSID *out, void **to_free, uint8_t *buf, DWORD cap)
{
    size_t n = nt_wlen(trustee);
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
        if ((st = nt_reopen(&r, WRITE_DAC, &hk)) == RF_OK) {
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
    nt_thread_priv tp;
    int enabled_here = nt_thread_priv_enter(&tp, L"SeTakeOwnershipPrivilege") == RF_OK;
    rf_clear_error();
    nt_ref r;
    rf_status st = nt_acquire(h, k, &r);
    if (!st) {
        HKEY hk;
        if ((st = nt_reopen(&r, WRITE_OWNER, &hk)) == RF_OK) {
            e = SetSecurityInfo(hk, SE_REGISTRY_KEY, OWNER_SECURITY_INFORMATION, me, NULL, NULL, NULL);
            if (e) st = nt_fail_win32((LONG)e, "SetSecurityInfo", NULL, 0);
            RegCloseKey(hk);
        }
        nt_release(h, &r);
    }
    if (enabled_here) nt_thread_priv_leave(&tp);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Hive files                                                                */
/* ------------------------------------------------------------------------ */

rf_status rf_live_file_kind(const uint16_t *path, int *kind)
{
    if (kind) *kind = 0;
    size_t n = nt_wlen(path);
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
    nt_name_utf8(path, nt_wlen(path), nm, sizeof nm);
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
    size_t n = nt_wlen(subkey);
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
        nt_name_utf8(subkey, nt_wlen(subkey), nm, sizeof nm);
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
    if (e) return nt_fail_win32(e, "RegLoadKeyW", subkey, nt_wlen(subkey));
    return RF_OK;
}

rf_status rf_live_unload_hive(uint32_t root, const uint16_t *subkey)
{
    rf_status st = check_mount_name(root, subkey);
    if (st) return st;
    LONG e = RegUnLoadKeyW(hive_root(root), (LPCWSTR)subkey);
    if (e) return nt_fail_win32(e, "RegUnLoadKeyW", subkey, nt_wlen(subkey));
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
    if (e) st = nt_fail_win32(e, "RegRestoreKeyW", path, nt_wlen(path));
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
        nt_name_utf8(old_path, nt_wlen(old_path), nm, sizeof nm);
        return rfi_fail(ERR_ALREADY_EXISTS, RF_NO_OFFSET, 0,
                        "the backup file \"%s\" exists: RegReplaceKeyW would need to create it", nm);
    }
    if (st != RF_E_NOT_FOUND) return st;   /* relative, ... */
    rf_clear_error();
    if (rf_live_is_wine()) return wine_stub("RegReplaceKeyW");
    nt_ref r;
    if ((st = nt_acquire(h, k, &r)) != RF_OK) return st;
    LONG e = RegReplaceKeyW((HKEY)r.handle, NULL, (LPCWSTR)new_path, (LPCWSTR)old_path);
    if (e) st = nt_fail_win32(e, "RegReplaceKeyW", new_path, nt_wlen(new_path));
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
    FARPROC p = nt_proc(L"advapi32.dll", "RegLoadAppKeyW");
    memcpy(&load, &p, sizeof p);
    if (!load) return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "RegLoadAppKeyW does not exist here (Vista+)");
    if (!access) access = KEY_READ;
    HKEY hk = NULL;
    LONG e = load((LPCWSTR)path, &hk, access, 0, 0);
    if (e) return nt_fail_win32(e, "RegLoadAppKeyW", path, nt_wlen(path));
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
        return nt_fail(s, "NtQueryKey", path, nt_wlen(path));
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
    FARPROC p = nt_proc(L"advapi32.dll", "RegLoadMUIStringW");
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
                st = nt_fail_win32(e, "RegLoadMUIStringW", name, nt_wlen(name));
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
        st = nt_fail_win32(e, "RegLoadMUIStringW", name, nt_wlen(name));
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
