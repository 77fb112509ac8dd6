/*
 * agent_admin.c — administration ops of regfast-agent (AG_OP_ADMIN_FIRST..LAST):
 * rename, security, privileges, hive save/load/restore/replace, app hives,
 * MUI strings. The Python side is src/regfast/live.py; the C functions are
 * the rf_live_* of regfast_nt.h ("Administration", src/nt/nt_admin.c).
 *
 * Ops. Request payload -> response payload after the i32 status (agent.h
 * conventions: u32 little-endian, str16 = u32 bytes + UTF-16LE, str8 UTF-8):
 *
 *   32 RENAME          u32 handle str16 new_name -> (the handle now names a
 *                      renamed key: close it and open the new path)
 *   33 GET_SECURITY    u32 handle u32 si (RF_SI_*; 0 = O|G|D, + S when
 *                      SeSecurityPrivilege is enabled) -> u32 si_included
 *                      u32 sd_len sd_bytes str8 sddl (rf_sd_to_sddl)
 *   34 SET_SECURITY    u32 handle str16 sddl -> u32 si_written
 *   35 GRANT           u32 handle u32 rights u32 mode(RF_ACE_*) u32 inherit
 *                      str16 trustee -> (nothing)
 *   36 TAKE_OWNERSHIP  u32 handle ->
 *   37 PRIVILEGES      u32 n n x str16 name -> n x {i32 status u32 held u32 enabled}
 *   38 SET_PRIVILEGES  u32 enable(0/1) u32 n n x str16 name -> n x u32 was_enabled;
 *                      all or nothing: when one fails, the ones already
 *                      changed are put back before the error is returned
 *   39 SAVE_KEY        u32 handle u32 format str16 path -> u32 file_kind
 *                      (RegSaveKeyExW; RF_FILE_*: 1 regf, 2 Wine text, 3 other).
 *                      The path must be absolute and not exist (183); a
 *                      failed save leaves no file behind. The system writes
 *                      a unique temporary file next to it, moved into place
 *                      without overwriting: the agent never deletes a file
 *                      it did not create (another process may create `path`
 *                      while the save runs: then 183 and its file stays).
 *   40 LOAD_HIVE       u32 root str16 subkey str16 path ->
 *   41 UNLOAD_HIVE     u32 root str16 subkey ->
 *   42 RESTORE_KEY     u32 handle u32 flags str16 path ->
 *   43 REPLACE_KEY     u32 handle str16 new_path str16 old_path ->
 *   44 LOAD_APP_HIVE   u32 max_keys str16 path -> snapshot (agent.h format,
 *                      with AG_SNAP_DATA: the whole private hive, read then
 *                      unloaded)
 *   45 MUI_STRING      u32 handle str16 value_name -> str16 text
 *   46 FILE_KIND       str16 path -> u32 kind (RF_FILE_*)
 *   47 SNAPSHOT_RF     u32 handle u32 max_keys -> snapshot (as 44, of an open
 *                      key): LOAD_APP_HIVE's serializer fed a normal live key,
 *                      so that it is checked where app hives are stubs (Wine)
 */
#include "agent.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

enum {
    AG_OP_RENAME = 32, AG_OP_GET_SECURITY = 33, AG_OP_SET_SECURITY = 34, AG_OP_GRANT = 35,
    AG_OP_TAKE_OWNERSHIP = 36, AG_OP_PRIVILEGES = 37, AG_OP_SET_PRIVILEGES = 38, AG_OP_SAVE_KEY = 39,
    AG_OP_LOAD_HIVE = 40, AG_OP_UNLOAD_HIVE = 41, AG_OP_RESTORE_KEY = 42, AG_OP_REPLACE_KEY = 43,
    AG_OP_LOAD_APP_HIVE = 44, AG_OP_MUI_STRING = 45, AG_OP_FILE_KIND = 46, AG_OP_SNAPSHOT_RF = 47,
};

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

static rf_status op_rename(ibuf *in, obuf *out)
{
    khandle *kh = arg_handle(in);
    if (!kh) return ag_last();
    size_t n = 0;
    wchar_t *name = ib_str16(in, AG_MAX_NAME_CHARS, &n);
    if (in->bad || in->pos != in->n) { free(name); return malformed(AG_OP_RENAME); }
    rf_key k;
    rf_status st;
    CALL_KEY(kh, k, rf_live_rename_key(kh->hive, k, (const uint16_t *)name, n));
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

static rf_status op_get_security(ibuf *in, obuf *out)
{
    khandle *kh = arg_handle(in);
    if (!kh) return ag_last();
    uint32_t si = ib_u32(in);
    if (in->bad || in->pos != in->n) return malformed(AG_OP_GET_SECURITY);
    rf_key k;
    rf_status st;
    const uint8_t *sd = NULL;
    size_t len = 0;
    uint32_t got = 0;
    CALL_KEY(kh, k, rf_live_get_security(kh->hive, k, si, &sd, &len, &got));
    if (st) return st;
    /* copy: the descriptor is borrowed and rf_sd_to_sddl is pure */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
    memcpy(copy, sd, len);
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

static rf_status op_set_security(ibuf *in, obuf *out)
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

static rf_status op_grant(ibuf *in, obuf *out)
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

static rf_status op_take_ownership(ibuf *in, obuf *out)
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

static rf_status op_privileges(ibuf *in, obuf *out)
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

static rf_status op_set_privileges(ibuf *in, obuf *out)
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

static rf_status op_save_key(ibuf *in, obuf *out)
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

static rf_status op_load_hive(ibuf *in, obuf *out, int load)
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

static rf_status op_restore_key(ibuf *in, obuf *out)
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

static rf_status op_replace_key(ibuf *in, obuf *out)
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

/* An app hive as a snapshot: depth-first pre-order, like snapshot_key(). */
typedef struct app_walk { rf_hive *h; obuf *out; uint32_t max_keys, n_keys, truncated; } app_walk;

/* FNV-1a 64 of the key's owner, group and DACL, as agent_watch.c hashes
 * them for SNAPSHOT (the same self-relative bytes), never 0; 0 = unknown
 * (the descriptor cannot be read). */
static uint64_t sd_hash_rf(rf_hive *h, rf_key k)
{
    const uint8_t *sd = NULL;
    size_t len = 0;
    uint32_t got = 0;
    if (rf_live_get_security(h, k, RF_SI_OWNER | RF_SI_GROUP | RF_SI_DACL, &sd, &len, &got) != RF_OK) {
        rf_clear_error();
        return 0;
    }
    return fnv1a64(sd, len) | 1;
}

static rf_status app_key(app_walk *w, rf_key k, const wchar_t *rel, size_t rlen, int depth)
{
    if (w->n_keys >= w->max_keys) { w->truncated = 1; return RF_OK; }
    if (depth > 512) return ag_fail(RF_E_LIMIT, 0, "app hive deeper than 512 levels");
    rf_key_info ki;
    rf_status st = rf_key_get_info(w->h, k, &ki);
    if (st) return ag_fail_rf(st);
    w->n_keys++;
    ob_str16(w->out, rel, rlen);
    ob_u64(w->out, ki.last_write);
    ob_u64(w->out, sd_hash_rf(w->h, k));   /* protocol 2 (agent.h) */
    size_t count_at = w->out->n;
    uint32_t nv = 0;
    ob_u32(w->out, 0);
    for (uint32_t i = 0;; i++) {
        rf_name nm;
        uint32_t type;
        const uint8_t *data;
        size_t len;
        st = rf_live_enum_value(w->h, k, i, &nm, &type, &data, &len);
        if (st == RF_E_NO_MORE_ITEMS) break;
        if (st) return ag_fail_rf(st);
        ob_str16(w->out, nm.ptr, nm.nbytes / 2);
        ob_u32(w->out, type);
        ob_u32(w->out, (uint32_t)len);
        ob_u64(w->out, fnv1a64(data, len));
        ob_str8(w->out, (const char *)data, len);
        nv++;
    }
    if (!w->out->oom) memcpy(w->out->p + count_at, &nv, 4);
    for (uint32_t i = 0;; i++) {
        rf_name nm;
        uint64_t lw;
        st = rf_live_enum_subkey(w->h, k, i, &nm, &lw);
        if (st == RF_E_NO_MORE_ITEMS) break;
        if (st) return ag_fail_rf(st);
        size_t nc = nm.nbytes / 2, plen = rlen ? rlen + 1 + nc : nc;
        wchar_t *p = malloc((plen + 1) * sizeof *p);
        if (!p) return ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
        if (rlen) { memcpy(p, rel, rlen * 2); p[rlen] = L'\\'; }
        memcpy(p + (rlen ? rlen + 1 : 0), nm.ptr, nc * 2);
        p[plen] = 0;
        rf_key child;
        st = rf_live_key_open(w->h, k, (const uint16_t *)(p + (rlen ? rlen + 1 : 0)), nc, &child);
        if (!st) st = app_key(w, child, p, plen, depth + 1);
        else st = ag_fail_rf(st);
        free(p);
        if (st) return st;
    }
    return RF_OK;
}

/* The snapshot (agent.h format, with AG_SNAP_DATA) of the subtree at k. */
static rf_status app_snapshot(rf_hive *h, rf_key k, uint32_t max_keys, obuf *out)
{
    size_t head = out->n;
    ob_u32(out, 0);
    ob_u32(out, 0);
    app_walk w = { h, out, max_keys ? max_keys : 100000, 0, 0 };
    rf_status st = app_key(&w, k, L"", 0, 0);
    if (!st && !out->oom) {
        uint32_t flags = AG_SNAP_DATA | (w.truncated ? AG_SNAP_TRUNCATED : 0);
        memcpy(out->p + head, &w.n_keys, 4);
        memcpy(out->p + head + 4, &flags, 4);
    }
    return st;
}

static rf_status op_load_app_hive(ibuf *in, obuf *out)
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
    st = app_snapshot(h, root, max_keys, out);
    rf_hive_close(h);
    return st;
}

static rf_status op_snapshot_rf(ibuf *in, obuf *out)
{
    khandle *kh = arg_handle(in);
    if (!kh) return ag_last();
    uint32_t max_keys = ib_u32(in);
    if (in->bad || in->pos != in->n) return malformed(AG_OP_SNAPSHOT_RF);
    rf_key k;
    rf_status st;
    size_t head = out->n;
    CALL_KEY(kh, k, (out->n = head, app_snapshot(kh->hive, k, max_keys, out)));
    return st;
}

static rf_status op_mui_string(ibuf *in, obuf *out)
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

static rf_status op_file_kind(ibuf *in, obuf *out)
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

rf_status op_admin(uint16_t op, ibuf *in, obuf *out)
{
    switch (op) {
    case AG_OP_RENAME: return op_rename(in, out);
    case AG_OP_GET_SECURITY: return op_get_security(in, out);
    case AG_OP_SET_SECURITY: return op_set_security(in, out);
    case AG_OP_GRANT: return op_grant(in, out);
    case AG_OP_TAKE_OWNERSHIP: return op_take_ownership(in, out);
    case AG_OP_PRIVILEGES: return op_privileges(in, out);
    case AG_OP_SET_PRIVILEGES: return op_set_privileges(in, out);
    case AG_OP_SAVE_KEY: return op_save_key(in, out);
    case AG_OP_LOAD_HIVE: return op_load_hive(in, out, 1);
    case AG_OP_UNLOAD_HIVE: return op_load_hive(in, out, 0);
    case AG_OP_RESTORE_KEY: return op_restore_key(in, out);
    case AG_OP_REPLACE_KEY: return op_replace_key(in, out);
    case AG_OP_LOAD_APP_HIVE: return op_load_app_hive(in, out);
    case AG_OP_MUI_STRING: return op_mui_string(in, out);
    case AG_OP_FILE_KIND: return op_file_kind(in, out);
    case AG_OP_SNAPSHOT_RF: return op_snapshot_rf(in, out);
    default: return ag_fail(RF_E_NOT_SUPPORTED, 0, "unknown op %u", op);
    }
}
