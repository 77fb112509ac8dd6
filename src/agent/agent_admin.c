/*
 * agent_admin.c — administration ops of regfast-agent (ag_ops.def, 32..48):
 * rename, security, privileges, hive save/load/restore/replace, app hives,
 * MUI strings. The Python side is src/regfast/admin.py; the C functions are
 * rf_key_rename / rf_key_get_security / rf_key_set_security / rf_key_snapshot
 * (regfast.h) and the rf_live_* of regfast_nt.h for what only the live
 * registry has. Payloads are in ag_ops.def; what they mean:
 *
 *   RENAME          the handle then names a renamed key: close it and open
 *                   the new path
 *   GET_SECURITY    si RF_SI_* (0 = O|G|D, + S when SeSecurityPrivilege is
 *                   enabled) -> the parts included, the descriptor, its SDDL
 *                   (rf_sd_to_sddl: the converter offline hives use)
 *   SET_SECURITY    SDDL (ConvertStringSecurityDescriptorToSecurityDescriptorW)
 *   SET_SECURITY_SD a self-relative descriptor (rf_key_set_security)
 *   GRANT           rights, mode (RF_ACE_*), inherit flags, trustee
 *   SET_PRIVILEGES  all or nothing: when one fails, the ones already
 *                   changed are put back before the error is returned
 *   SAVE_KEY        RegSaveKeyExW; RF_FILE_*: 1 regf, 2 Wine text, 3 other.
 *                   The path must be absolute and not exist (183); a failed
 *                   save leaves no file behind. The system writes a unique
 *                   temporary file next to it, moved into place without
 *                   overwriting: the agent never deletes a file it did not
 *                   create (another process may create `path` while the save
 *                   runs: then 183 and its file stays).
 *   LOAD_APP_HIVE   the whole private hive as a snapshot with data
 *                   (rf_key_snapshot), read then unloaded
 */
#include "agent.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>


#define MAX_PRIVS 64
#define ERR_FILE_EXISTS_183 183   /* ERROR_ALREADY_EXISTS: RegSaveKeyExW on an existing file */

static khandle *arg_handle(ibuf *in)
{
    uint32_t id = ib_u32(in);
    if (in->bad) {
        ag_fail(RF_E_INVALID_PARAMETER, 0, "malformed request: no key handle");
        return NULL;
    }
    return kh_get(id);
}

static rf_status malformed(uint16_t op)
{
    return ag_fail(RF_E_INVALID_PARAMETER, 0, "admin op %u: malformed request", op);
}

/* The handle's rf_key, re-resolved once when the backend recycled its slot. */
static rf_status key_of(khandle *kh, rf_key *k, rf_status st_prev)
{
    if (st_prev == RF_E_INVALID_HANDLE)
        kh->key = 0;
    return kh_key(kh, k);
}

#define CALL_KEY(kh, k, call)                                        \
    do {                                                             \
        rf_status s_ = key_of((kh), &(k), 0);                        \
        if (s_) { st = s_; break; }                                  \
        s_ = (call);                                                 \
        if (s_ == RF_E_INVALID_HANDLE) {                             \
            if ((s_ = key_of((kh), &(k), RF_E_INVALID_HANDLE))) { st = s_; break; } \
            s_ = (call);                                             \
        }                                                            \
        st = s_ ? ag_fail_rf(s_) : RF_OK;                            \
    } while (0)

/* The key at (root, path) and everything below it changed name or went away
 * (rename, unload): every live hive of the agent on that root drops its cached
 * slots and handles for that subtree, and every agent handle on it forgets
 * its token and Win32 handle (reopened by path on next use, which then says
 * 2 when the path is gone). A cached handle below a mount point is what keeps
 * RegUnLoadKeyW from unloading it (ERROR_ACCESS_DENIED / sharing). */
static void forget_subtree(uint32_t root, const wchar_t *path, size_t plen)
{
    rf_hive *h;
    uint32_t r;
    for (uint32_t i = 0; (h = ag_hive(i, &r)) != NULL; i++) {
        rf_key k;
        if (r != root) continue;
        if (plen == 0) {
            if (rf_hive_root(h, &k) == RF_OK) rf_live_key_invalidate_subtree(h, k);
        } else if (rf_live_key_open(h, 0, (const uint16_t *)path, plen, &k) == RF_OK) {
            rf_live_key_invalidate_subtree(h, k);
        }
    }
    kh_forget_subtree(root, path, plen);
    rf_clear_error();
}

rf_status ag_op_rename(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = arg_handle(in);
    if (!kh) return ag_last();
    size_t n = 0;
    wchar_t *name = ib_str16(in, AG_MAX_NAME_CHARS, &n);
    if (in->bad || in->pos != in->n) { free(name); return malformed(AG_OP_RENAME); }
    rf_key k;
    rf_status st;
    CALL_KEY(kh, k, rf_key_rename(kh->hive, k, (const uint16_t *)name, n));
    if (!st) {
        /* Every agent handle on the old name or below it (this one, others
         * opened on the same path, their children) forgets its Win32 handle,
         * which followed the key to its new name (SET_VALUE would write into
         * the renamed key while reads fail with 2), and its token; every
         * hive of this root forgets the cached subtree, so no later op uses
         * the old name. Copy the path first: kh's own is among those walked. */
        /* this hive's slot is a tombstone already (rf_live_rename_key): its
         * cached children, unreachable by path, still hold handles */
        rf_live_key_invalidate_subtree(kh->hive, k);
        wchar_t *old = malloc((kh->plen + 1) * sizeof *old);
        uint32_t root = kh->root;
        size_t olen = kh->plen;
        if (old) {
            memcpy(old, kh->path, (olen + 1) * sizeof *old);
            forget_subtree(root, old, olen);
            free(old);
        } else {
            /* no memory for the copy: at least this handle forgets */
            if (kh->hk) { RegCloseKey(kh->hk); kh->hk = NULL; }
            kh->key = 0;
        }
        rf_clear_error();
    }
    free(name);
    return st;
}

rf_status ag_op_get_security(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = arg_handle(in);
    if (!kh) return ag_last();
    uint32_t si = ib_u32(in);
    if (in->bad || in->pos != in->n) return malformed(AG_OP_GET_SECURITY);
    rf_key k;
    rf_status st;
    size_t len = 0, cap = 512;
    uint32_t got = 0;
    uint8_t *copy = NULL;
    for (int attempt = 0; attempt < 4; attempt++) {
        free(copy);
        if (!(copy = malloc(cap))) return ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
        CALL_KEY(kh, k, rf_key_get_security(kh->hive, k, si, copy, cap, &len, &got));
        if (st != RF_E_MORE_DATA) break;
        cap = len + 64;
    }
    if (st) { free(copy); return st; }
    size_t sl = 0;
    char small[8];
    st = rf_sd_to_sddl(copy, len, small, sizeof small, &sl);
    char *txt = NULL;
    if (st == RF_E_MORE_DATA || st == RF_OK) {
        txt = malloc(sl + 1);
        st = txt ? rf_sd_to_sddl(copy, len, txt, sl + 1, &sl) : ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
    }
    if (!st) {
        ob_u32(out, got);
        ob_u32(out, (uint32_t)len);
        ob_put(out, copy, len);
        ob_str8(out, txt, sl);
    } else if (st != RF_E_NO_MEMORY) {
        st = ag_fail_rf(st);
    }
    free(txt);
    free(copy);
    return st;
}

rf_status ag_op_set_security(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = arg_handle(in);
    if (!kh) return ag_last();
    wchar_t *sddl = ib_str16(in, 65535, NULL);
    if (in->bad || in->pos != in->n) { free(sddl); return malformed(AG_OP_SET_SECURITY); }
    rf_key k;
    rf_status st;
    uint32_t si = 0;
    CALL_KEY(kh, k, rf_live_set_security(kh->hive, k, (const uint16_t *)sddl, &si));
    if (!st) ob_u32(out, si);
    free(sddl);
    return st;
}

rf_status ag_op_grant(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = arg_handle(in);
    if (!kh) return ag_last();
    uint32_t rights = ib_u32(in), mode = ib_u32(in), inherit = ib_u32(in);
    wchar_t *who = ib_str16(in, 1024, NULL);
    if (in->bad || in->pos != in->n) { free(who); return malformed(AG_OP_GRANT); }
    rf_key k;
    rf_status st;
    CALL_KEY(kh, k, rf_live_grant(kh->hive, k, (const uint16_t *)who, rights, mode, inherit));
    free(who);
    return st;
}

rf_status ag_op_take_ownership(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = arg_handle(in);
    if (!kh) return ag_last();
    if (in->pos != in->n) return malformed(AG_OP_TAKE_OWNERSHIP);
    rf_key k;
    rf_status st;
    CALL_KEY(kh, k, rf_live_take_ownership(kh->hive, k));
    return st;
}

/* n privilege names (at most MAX_PRIVS), as fresh NUL-terminated strings */
static rf_status read_privs(ibuf *in, wchar_t **names, uint32_t *n_out)
{
    uint32_t n = ib_u32(in);
    *n_out = 0;
    if (in->bad || n > MAX_PRIVS) return ag_fail(RF_E_INVALID_PARAMETER, 0, "0..%u privilege names", MAX_PRIVS);
    for (uint32_t i = 0; i < n; i++) {
        names[i] = ib_str16(in, 256, NULL);
        if (!names[i]) { *n_out = i; return ag_fail(RF_E_INVALID_PARAMETER, 0, "privilege name %u is malformed", i); }
        *n_out = i + 1;
    }
    return RF_OK;
}

static void free_privs(wchar_t **names, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) free(names[i]);
}

rf_status ag_op_privileges(ibuf *in, obuf *out, ag_call *call)
{
    wchar_t *names[MAX_PRIVS];
    uint32_t n = 0;
    rf_status st = read_privs(in, names, &n);
    if (!st && in->pos != in->n) st = malformed(AG_OP_PRIVILEGES);
    for (uint32_t i = 0; !st && i < n; i++) {
        int held = 0, en = 0;
        rf_status s = rf_live_privilege_state((const uint16_t *)names[i], &held, &en);
        ob_u32(out, (uint32_t)s);
        ob_u32(out, (uint32_t)held);
        ob_u32(out, (uint32_t)en);
    }
    free_privs(names, n);
    return st;
}

rf_status ag_op_set_privileges(ibuf *in, obuf *out, ag_call *call)
{
    uint32_t enable = ib_u32(in);
    wchar_t *names[MAX_PRIVS];
    int was[MAX_PRIVS];
    uint32_t n = 0, done = 0;
    rf_status st = in->bad || enable > 1 ? malformed(AG_OP_SET_PRIVILEGES) : read_privs(in, names, &n);
    if (!st && in->pos != in->n) st = malformed(AG_OP_SET_PRIVILEGES);
    for (; !st && done < n; done++) {
        rf_status s = rf_live_set_privilege((const uint16_t *)names[done], (int)enable, &was[done]);
        if (s) st = ag_fail_rf(s);
        else ob_u32(out, (uint32_t)was[done]);
        if (s) break;
    }
    if (st) {
        /* put back what this request changed: all or nothing */
        for (uint32_t i = 0; i < done; i++)
            if (was[i] != (int)enable) rf_live_set_privilege((const uint16_t *)names[i], was[i], NULL);
    }
    free_privs(names, n);
    return st;
}

/* A name next to `path` (same directory, so the final move is a rename on
 * one volume) that is this process's: "<path>.rf<pid>-<n>.tmp". */
static wchar_t *temp_name(const wchar_t *path, size_t plen, uint32_t n)
{
    size_t cap = plen + 48;
    wchar_t *t = malloc(cap * sizeof *t);
    if (t) _snwprintf(t, cap, L"%ls.rf%lu-%lu.tmp", path, (unsigned long)GetCurrentProcessId(), (unsigned long)n);
    if (t) t[cap - 1] = 0;
    return t;
}

rf_status ag_op_save_key(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = arg_handle(in);
    if (!kh) return ag_last();
    uint32_t format = ib_u32(in);
    size_t plen = 0;
    wchar_t *path = ib_str16(in, AG_MAX_PATH_CHARS, &plen);
    if (in->bad || in->pos != in->n) { free(path); return malformed(AG_OP_SAVE_KEY); }
    int kind = 0;
    rf_status st = rf_live_file_kind((const uint16_t *)path, &kind);
    if (st == RF_OK) {
        st = ag_fail(183, 0, "the file exists: RegSaveKeyExW writes a new file only");
    } else if (st == RF_E_NOT_FOUND) {
        rf_clear_error();
        /* The system writes a temporary file of ours, then it is moved to
         * `path` without overwriting. Deleting `path` itself after a failed
         * save could delete a file another process created meanwhile. */
        static volatile LONG counter;
        wchar_t *tmp = NULL;
        for (int tries = 0; tries < 8; tries++) {
            free(tmp);
            tmp = temp_name(path, plen, (uint32_t)InterlockedIncrement(&counter));
            if (!tmp) { st = ag_fail(RF_E_NO_MEMORY, 0, "out of memory"); break; }
            rf_key k;
            CALL_KEY(kh, k, rf_live_save_key(kh->hive, k, (const uint16_t *)tmp, format));
            /* 183: the name is taken (Windows never overwrites): not ours,
             * leave it and try another */
            if (st != ERR_FILE_EXISTS_183) break;
        }
        if (st == ERR_FILE_EXISTS_183 || st == RF_E_NO_MEMORY) {
            if (st == ERR_FILE_EXISTS_183) st = ag_fail(183, 0, "no free temporary name next to the file");
        } else if (st) {
            /* ours: a failed save may leave a partial or 0-byte file (Wine: 1314) */
            DeleteFileW(tmp);
        } else if (!MoveFileExW(tmp, path, 0)) {   /* 0: never replaces an existing file */
            DWORD e = GetLastError();
            DeleteFileW(tmp);
            st = e == ERROR_ALREADY_EXISTS || e == ERROR_FILE_EXISTS
                     ? ag_fail(183, e, "the file was created by someone else during the save: kept, "
                               "nothing written")
                     : ag_fail((rf_status)e, e, "MoveFileExW of the saved hive failed: %lu", (unsigned long)e);
        } else if ((st = rf_live_file_kind((const uint16_t *)path, &kind)) != RF_OK) {
            st = ag_fail_rf(st);
        } else {
            ob_u32(out, (uint32_t)kind);
        }
        free(tmp);
    } else {
        st = ag_fail_rf(st);
    }
    free(path);
    return st;
}

static rf_status load_or_unload(ibuf *in, int load)
{
    uint32_t root = ib_u32(in);
    wchar_t *sub = ib_str16(in, 255, NULL);
    wchar_t *path = load ? ib_str16(in, AG_MAX_PATH_CHARS, NULL) : NULL;
    rf_status st;
    if (in->bad || in->pos != in->n) st = malformed(load ? AG_OP_LOAD_HIVE : AG_OP_UNLOAD_HIVE);
    else {
        if (!load) {
            /* the agent's own cached handles at or below the mount point
             * (Win32 and NT, any agent handle, any hive of this root) would
             * keep the hive loaded: close them all */
            size_t n = wcslen(sub);
            if (n) forget_subtree(root, sub, n);   /* "" is refused below */
        }
        st = load ? rf_live_load_hive(root, (const uint16_t *)sub, (const uint16_t *)path)
                  : rf_live_unload_hive(root, (const uint16_t *)sub);
        if (st) st = ag_fail_rf(st);
    }
    free(sub);
    free(path);
    return st;
}

rf_status ag_op_load_hive(ibuf *in, obuf *out, ag_call *call) { return load_or_unload(in, 1); }
rf_status ag_op_unload_hive(ibuf *in, obuf *out, ag_call *call) { return load_or_unload(in, 0); }

rf_status ag_op_restore_key(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = arg_handle(in);
    if (!kh) return ag_last();
    uint32_t flags = ib_u32(in);
    wchar_t *path = ib_str16(in, AG_MAX_PATH_CHARS, NULL);
    if (in->bad || in->pos != in->n) { free(path); return malformed(AG_OP_RESTORE_KEY); }
    rf_key k;
    rf_status st;
    CALL_KEY(kh, k, rf_live_restore_key(kh->hive, k, (const uint16_t *)path, flags));
    free(path);
    return st;
}

rf_status ag_op_replace_key(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = arg_handle(in);
    if (!kh) return ag_last();
    wchar_t *np = ib_str16(in, AG_MAX_PATH_CHARS, NULL);
    wchar_t *op = ib_str16(in, AG_MAX_PATH_CHARS, NULL);
    rf_status st;
    if (in->bad || in->pos != in->n) st = malformed(AG_OP_REPLACE_KEY);
    else {
        rf_key k;
        CALL_KEY(kh, k, rf_live_replace_key(kh->hive, k, (const uint16_t *)np, (const uint16_t *)op));
    }
    free(np);
    free(op);
    return st;
}

rf_status ag_op_load_app_hive(ibuf *in, obuf *out, ag_call *call)
{
    uint32_t max_keys = ib_u32(in);
    wchar_t *path = ib_str16(in, AG_MAX_PATH_CHARS, NULL);
    if (in->bad || in->pos != in->n) { free(path); return malformed(AG_OP_LOAD_APP_HIVE); }
    rf_hive *h = NULL;
    rf_status st = rf_live_load_app_hive((const uint16_t *)path, 0, &h);
    free(path);
    if (st) return ag_fail_rf(st);
    rf_key root;
    if ((st = rf_hive_root(h, &root)) != RF_OK) {
        st = ag_fail_rf(st);
        rf_hive_close(h);
        return st;
    }
    rf_bytes b = { NULL, 0, 0 };
    st = rf_key_snapshot(h, root, RF_SNAP_SUBTREE | RF_SNAP_KEEP_DATA, max_keys, &b);
    if (st) st = ag_fail_rf(st);
    else if (b.len > AG_MAX_RESPONSE) st = ag_fail(RF_E_LIMIT, 0, "app hive snapshot over the frame limit");
    else ob_put(out, b.data, b.len);
    rf_bytes_free(&b);
    rf_hive_close(h);
    return st;
}

rf_status ag_op_set_security_sd(ibuf *in, obuf *out, ag_call *call)
{
    if (call->version < AG_V_LAYOUTS)
        return ag_fail(RF_E_NOT_SUPPORTED, 0, "SET_SECURITY_SD needs protocol %u (this session: %u)",
                       AG_V_LAYOUTS, (unsigned)call->version);
    khandle *kh = arg_handle(in);
    if (!kh) return ag_last();
    uint32_t si = ib_u32(in);
    if (in->bad) return malformed(AG_OP_SET_SECURITY_SD);
    rf_key k;
    rf_status st;
    CALL_KEY(kh, k, rf_key_set_security(kh->hive, k, si, in->p + in->pos, in->n - in->pos));
    return st;
}

rf_status ag_op_mui_string(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = arg_handle(in);
    if (!kh) return ag_last();
    wchar_t *name = ib_str16(in, AG_MAX_NAME_CHARS, NULL);
    if (in->bad || in->pos != in->n) { free(name); return malformed(AG_OP_MUI_STRING); }
    rf_status st = RF_OK;
    size_t cap = 1024, len = 0;
    uint16_t *buf = NULL;
    for (int attempt = 0; attempt < 6; attempt++) {
        free(buf);
        buf = malloc(cap + 2);
        if (!buf) { st = ag_fail(RF_E_NO_MEMORY, 0, "out of memory"); break; }
        rf_key k;
        CALL_KEY(kh, k, rf_live_mui_string(kh->hive, k, (const uint16_t *)name, buf, cap, &len));
        if (st != RF_E_MORE_DATA) break;
        cap = len + 2 > cap * 2 ? len + 2 : cap * 2;
    }
    if (!st) ob_str16(out, (const wchar_t *)buf, len / 2);
    free(buf);
    free(name);
    return st;
}

rf_status ag_op_file_kind(ibuf *in, obuf *out, ag_call *call)
{
    wchar_t *path = ib_str16(in, AG_MAX_PATH_CHARS, NULL);
    if (in->bad || in->pos != in->n) { free(path); return malformed(AG_OP_FILE_KIND); }
    int kind = 0;
    rf_status st = rf_live_file_kind((const uint16_t *)path, &kind);
    free(path);
    if (st) return ag_fail_rf(st);
    ob_u32(out, (uint32_t)kind);
    return RF_OK;
}
