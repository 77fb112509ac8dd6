/*
 * nt_write.c — the nt backend's writes (the version-2 slots of the method
 * table: values, keys, rename, security descriptors) and the security
 * reads of regfast_nt.h.
 *
 * Every write runs on the key's cached handle (nt_acquire), so it has the
 * rights the hive was opened with: a KEY_READ hive answers 5 to a write,
 * exactly as a KEY_READ HKEY does. Rights the cached handle may lack
 * (WRITE_DAC, WRITE_OWNER, ACCESS_SYSTEM_SECURITY) are asked for by a
 * second open of the same key (nt_reopen). After a delete or a rename the
 * cache forgets the subtree (tombstones: its tokens answer 1018 and the old
 * path reopens afresh).
 */
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "nt/nt_internal.h"

#include <sddl.h>

#define LIVE_OR_FAIL(h, base) \
    nt_hive *h = nt_cast(base); \
    if (!h) return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "not a live hive (rf_live_open)")

/* A second handle to the key behind `r` with exactly `access` (see top). */
rf_status nt_reopen(nt_ref *r, ACCESS_MASK access, HKEY *out)
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
    FARPROC p = nt_proc(L"ntdll.dll", "NtRenameKey");
    memcpy(&nt_rename, &p, sizeof p);
    p = nt_proc(L"advapi32.dll", "RegRenameKey");
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
        if ((st = nt_reopen(&r, READ_CONTROL | ACCESS_SYSTEM_SECURITY, &extra)) != RF_OK) {
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
    size_t n = nt_wlen(sddl);
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
    if ((st = nt_reopen(&r, need, &hk)) == RF_OK) {
        LONG e = RegSetKeySecurity(hk, (SECURITY_INFORMATION)si, psd);
        if (e) st = nt_fail_win32(e, "RegSetKeySecurity", NULL, 0);
        RegCloseKey(hk);
    }
    nt_release(h, &r);
    LocalFree(psd);
    if (!st && si_out) *si_out = si;
    return st;
}

/* ------------------------------------------------------------------------ */
/* The method table's write slots                                            */
/* ------------------------------------------------------------------------ */

/* A NUL-terminated copy of a counted path (Reg* calls want one). A NUL in
 * it is refused (87): the call would stop there and act on the key the
 * path's first part names ("Important\0-not-this" deleted "Important"). */
rf_status nt_zcopy(const uint16_t *s, size_t n, wchar_t **out)
{
    *out = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == 0)
            return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                            "the key path holds a NUL at character %zu: the Win32 registry calls "
                            "would end it there and act on another key", i);
    wchar_t *z = malloc((n + 1) * sizeof *z);
    if (!z) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
    if (n) memcpy(z, s, n * 2);
    z[n] = 0;
    *out = z;
    return RF_OK;
}

rf_status nt_value_set(rf_hive *base, rf_key k, const uint16_t *name, size_t nchars, uint32_t type,
                       const void *data, size_t len)
{
    nt_hive *h = (nt_hive *)base;
    nt_ustr us;
    rf_status st = nt_make_ustr(&us, name, nchars, NT_BUF_AUX);
    if (st) return st;
    for (int attempt = 0;; attempt++) {
        nt_ref r;
        if ((st = nt_acquire(h, k, &r)) != RF_OK) return st;
        /* NtSetValueKey takes a counted name: embedded NULs and the empty
         * (default) name need no special case, as they would with RegSetValueExW */
        NTSTATUS s = nt.SetValueKey(r.handle, &us, 0, type, (PVOID)data, (ULONG)len);
        if (NT_SUCCESS(s)) {
            nt_release(h, &r);
            return RF_OK;
        }
        int retry = attempt == 0 && nt_after_call(h, &r, s);
        if (!retry) st = nt_call_fail(h, &r, s, "NtSetValueKey", name, nchars);
        nt_release(h, &r);
        if (!retry) return st;
    }
}

rf_status nt_value_delete(rf_hive *base, rf_key k, const uint16_t *name, size_t nchars)
{
    nt_hive *h = (nt_hive *)base;
    nt_ustr us;
    rf_status st = nt_make_ustr(&us, name, nchars, NT_BUF_AUX);
    if (st) return st;
    for (int attempt = 0;; attempt++) {
        nt_ref r;
        if ((st = nt_acquire(h, k, &r)) != RF_OK) return st;
        NTSTATUS s = nt.DeleteValueKey(r.handle, &us);
        if (NT_SUCCESS(s)) {
            nt_release(h, &r);
            return RF_OK;
        }
        int retry = attempt == 0 && nt_after_call(h, &r, s);
        if (!retry) {
            if (s == NT_STATUS_OBJECT_NAME_NOT_FOUND) {
                char nm[96];
                nt_name_utf8(name, nchars, nm, sizeof nm);
                st = rfi_fail(RF_E_NOT_FOUND, RF_NO_OFFSET, (int64_t)(uint32_t)s, "the value \"%s\" does not exist", nm);
            } else {
                st = nt_call_fail(h, &r, s, "NtDeleteValueKey", name, nchars);
            }
        }
        nt_release(h, &r);
        if (!retry) return st;
    }
}

/* Is the key behind a fresh token really there? A cached path is trusted
 * without a system call; after a create it must name the key just made. */
static rf_status check_fresh(nt_hive *h, rf_key k)
{
    nt_ref r;
    rf_status st = nt_acquire(h, k, &r);
    if (st) return st;
    uint8_t info[64];
    ULONG rl = 0;
    NTSTATUS s = nt.QueryKey(r.handle, KeyBasicInformation, info, sizeof info, &rl);
    if (!NT_SUCCESS(s) && s != NT_STATUS_BUFFER_OVERFLOW && s != NT_STATUS_BUFFER_TOO_SMALL) {
        nt_after_call(h, &r, s);
        st = nt_fail(s, "NtQueryKey", NULL, 0);
    }
    nt_release(h, &r);
    return st;
}

rf_status nt_key_create(rf_hive *base, rf_key parent, const uint16_t *path, size_t nchars, uint32_t flags,
                        rf_key *out, uint32_t *disposition)
{
    nt_hive *h = (nt_hive *)base;
    rf_key p = parent;
    if (p == 0) p = nt_token(h->tag, 0, 1, 0);
    wchar_t *z;
    rf_status st = nt_zcopy(path, nchars, &z);
    if (st) return st;
    nt_ref r;
    st = nt_acquire(h, p, &r);
    if (st) { free(z); return st; }
    HKEY hk = NULL;
    DWORD disp = 0;
    /* RegCreateKeyExW makes the missing keys above it and applies the
     * view's redirection (h->access carries KEY_WOW64_*), as the agent's
     * writes always did; the handle it returns is closed and the key is
     * reached through the cache like any other. */
    LONG e = RegCreateKeyExW((HKEY)r.handle, z, 0, NULL, (flags & RF_CREATE_VOLATILE) ? REG_OPTION_VOLATILE : 0,
                             h->access, NULL, &hk, &disp);
    if (e == ERROR_KEY_DELETED) nt_after_call(h, &r, NT_STATUS_KEY_DELETED);
    nt_release(h, &r);
    free(z);
    if (e) return nt_fail_win32(e, "RegCreateKeyExW", path, nchars);
    RegCloseKey(hk);
    rf_key k = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if ((st = nt_key_open(h, p, path, nchars, &k)) != RF_OK) return st;
        st = check_fresh(h, k);   /* a stale cached slot turns into a tombstone: open again */
        if (st != RF_E_KEY_DELETED && st != RF_E_INVALID_HANDLE) break;
    }
    if (st) return st;
    *out = k;
    *disposition = disp == REG_CREATED_NEW_KEY ? RF_CREATED_NEW : RF_OPENED_EXISTING;
    return RF_OK;
}

/* Windows refuses keys nested deeper than 512 levels; a tree delete never
 * recurses further (nor on a stack it cannot bound). */
#define NT_TREE_MAX_DEPTH 512

/* Deletes every subkey of `t` (opened with KEY_ENUMERATE_SUB_KEYS), each
 * with its own tree. Always index 0: a deleted subkey is no longer listed;
 * one listed again (made meanwhile, or a delete that did not take) stops
 * the loop after as many deletions as there were subkeys. */
static LONG delete_subkeys(HKEY t, int depth, nt_tree_delete *d)
{
    DWORD nsub = 0, maxlen = 0;
    LONG e = RegQueryInfoKeyW(t, NULL, NULL, NULL, &nsub, &maxlen, NULL, NULL, NULL, NULL, NULL, NULL);
    if (e) {
        d->call = "RegQueryInfoKeyW";
        d->depth = depth;
        return e;
    }
    if (maxlen < 255) maxlen = 255;   /* the longest subkey name sizes the buffer (Wine allows 256) */
    wchar_t *sub = malloc(((size_t)maxlen + 2) * sizeof *sub);
    if (!sub) {
        d->call = "malloc";
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    for (DWORD i = 0;; i++) {
        DWORD n = maxlen + 2;
        e = RegEnumKeyExW(t, 0, sub, &n, NULL, NULL, NULL, NULL);
        if (e == ERROR_NO_MORE_ITEMS) {
            e = 0;
            break;
        }
        if (e) {
            d->call = "RegEnumKeyExW";
            d->depth = depth;
            break;
        }
        if (i > nsub) {
            d->st = rfi_fail(RF_E_ACCESS_DENIED, RF_NO_OFFSET, 0,
                             "the tree delete stopped: subkeys are still listed after %lu deletions "
                             "(made meanwhile, or not deletable)", (unsigned long)(nsub + 1));
            e = ERROR_ACCESS_DENIED;
            break;
        }
        if (depth >= NT_TREE_MAX_DEPTH) {
            d->st = rfi_fail(RF_E_LIMIT, RF_NO_OFFSET, 0,
                             "the tree delete stopped: the tree is deeper than %d keys", NT_TREE_MAX_DEPTH);
            e = ERROR_INVALID_PARAMETER;
            break;
        }
        e = nt_delete_key_at(t, sub, 0, 1, depth + 1, d);
        /* a subkey that went meanwhile (deleted by another program) is
         * what was wanted: go on; the `i > nsub` guard still bounds this */
        if ((e == ERROR_FILE_NOT_FOUND || e == ERROR_KEY_DELETED) && !d->st) e = 0;
        if (e) break;
    }
    free(sub);
    return e;
}

/* Deletes the key `name` under `parent` (with everything below it when
 * `tree`), each key opened with REG_OPTION_OPEN_LINK and deleted by its own
 * handle (NtDeleteKey). So a symbolic link, the key asked for or one inside
 * the tree, goes as the link: its target lies outside the tree and is never
 * touched. RegDeleteTreeW and RegDeleteKeyExW open without the option:
 * under Wine they followed a link and deleted the target's subkeys (MS-RRP
 * 3.1.1.11 has Windows' server refuse a link's delete with 2 instead);
 * deleting a link by an OPEN_LINK handle is the way Microsoft documents
 * (REG_OPTION_CREATE_LINK). `view` (KEY_WOW64_*) applies to the key asked
 * for: below it no redirection applies. NtDeleteKey takes the values along,
 * so neither KEY_SET_VALUE nor NUL-free value names are needed (both were,
 * with RegDeleteTreeW(key, NULL)). */
LONG nt_delete_key_at(HKEY parent, const wchar_t *name, REGSAM view, int tree, int depth, nt_tree_delete *d)
{
    HKEY t;
    d->call = d->open_api;
    d->depth = depth;
    LONG e = d->open(d->ctx, parent, name, REG_OPTION_OPEN_LINK,
                     DELETE | (tree ? KEY_ENUMERATE_SUB_KEYS | KEY_QUERY_VALUE : 0) | view, &t);
    if (e) return e;
    if (tree) e = delete_subkeys(t, depth, d);
    if (!e) {
        NTSTATUS s = nt.DeleteKey(t);
        if (s) {
            d->call = "NtDeleteKey";
            d->depth = depth;
            e = (LONG)nt.RtlNtStatusToDosError(s);
        }
    }
    RegCloseKey(t);
    return e;
}

static LONG open_key(void *ctx, HKEY parent, const wchar_t *name, DWORD options, REGSAM access, HKEY *out)
{
    (void)ctx;
    return RegOpenKeyExW(parent, name, options, access, out);
}

rf_status nt_key_delete(rf_hive *base, rf_key parent, const uint16_t *path, size_t nchars, uint32_t flags)
{
    nt_hive *h = (nt_hive *)base;
    rf_key p = parent ? parent : nt_token(h->tag, 0, 1, 0);
    wchar_t *z;
    rf_status st = nt_zcopy(path, nchars, &z);
    if (st) return st;
    nt_ref r;
    st = nt_acquire(h, p, &r);
    if (st) { free(z); return st; }
    HKEY ph = (HKEY)r.handle;
    nt_tree_delete d = {open_key, NULL, "RegOpenKeyExW", "RegOpenKeyExW", 0, RF_OK};
    LONG e = nt_delete_key_at(ph, z, h->view, (flags & RF_DELETE_TREE) != 0, 0, &d);
    st = d.st;
    if (e == ERROR_ACCESS_DENIED && !(flags & RF_DELETE_TREE) && strcmp(d.call, "NtDeleteKey") == 0) {
        /* Windows answers 5 for a key with subkeys: say so plainly */
        HKEY t;
        DWORD nsub = 0;
        if (!RegOpenKeyExW(ph, z, REG_OPTION_OPEN_LINK, KEY_READ | h->view, &t)) {
            RegQueryInfoKeyW(t, NULL, NULL, NULL, &nsub, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
            RegCloseKey(t);
        }
        if (nsub)
            st = rfi_fail(RF_E_ACCESS_DENIED, RF_NO_OFFSET, e,
                          "the key has %lu subkeys (delete them first, or delete the tree)", (unsigned long)nsub);
    } else if (e == ERROR_KEY_DELETED && d.depth == 0 && d.call == d.open_api) {
        nt_after_call(h, &r, NT_STATUS_KEY_DELETED);   /* the parent went */
    }
    nt_release(h, &r);
    free(z);
    if (e && !st) {
        char nm[96];
        nt_name_utf8(path, nchars, nm, sizeof nm);
        if (e == ERROR_FILE_NOT_FOUND && d.depth == 0 && d.call == d.open_api)
            st = rfi_fail(RF_E_NOT_FOUND, RF_NO_OFFSET, e, "the key \"%s\" does not exist", nm);
        else if (d.depth == 0)
            st = nt_fail_win32(e, d.call, path, nchars);
        else   /* inside the tree: the message must not read as the key itself failing */
            st = rfi_fail((rf_status)e, RF_NO_OFFSET, e,
                          "deleting the tree \"%s\": %s failed on a key %d levels below it: %s (Win32 error %ld)",
                          nm, d.call, d.depth, rf_status_text((rf_status)e), (long)e);
    }
    if (!st) nt_forget_path(h, p, path, nchars);   /* its cached tokens now answer 1018 */
    return st;
}

rf_status nt_key_rename(rf_hive *base, rf_key k, const uint16_t *new_name, size_t nchars)
{
    return rf_live_rename_key(base, k, new_name, nchars);
}

rf_status nt_key_get_security(rf_hive *base, rf_key k, uint32_t si, void *buf, size_t cap, size_t *len_out,
                              uint32_t *si_out)
{
    const uint8_t *sd;
    size_t len;
    rf_status st = rf_live_get_security(base, k, si, &sd, &len, si_out);
    if (st) return st;
    *len_out = len;
    if (cap < len) return rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "the descriptor has %zu bytes", len);
    memcpy(buf, sd, len);
    return RF_OK;
}

rf_status nt_key_set_security(rf_hive *base, rf_key k, uint32_t si, const void *sd, size_t len)
{
    nt_hive *h = (nt_hive *)base;
    if (!IsValidSecurityDescriptor((PSECURITY_DESCRIPTOR)sd) || GetSecurityDescriptorLength((PSECURITY_DESCRIPTOR)sd) > len)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "the security descriptor is not valid");
    ACCESS_MASK need = 0;
    if (si & (RF_SI_OWNER | RF_SI_GROUP)) need |= WRITE_OWNER;
    if (si & RF_SI_DACL) need |= WRITE_DAC;
    if (si & RF_SI_SACL) need |= ACCESS_SYSTEM_SECURITY;
    nt_ref r;
    rf_status st = nt_acquire(h, k, &r);
    if (st) return st;
    HKEY hk;
    if ((st = nt_reopen(&r, need, &hk)) == RF_OK) {
        LONG e = RegSetKeySecurity(hk, (SECURITY_INFORMATION)si, (PSECURITY_DESCRIPTOR)sd);
        if (e) st = nt_fail_win32(e, "RegSetKeySecurity", NULL, 0);
        RegCloseKey(hk);
    }
    nt_release(h, &r);
    return st;
}
