/*
 * nt_backend.c — the live registry as an rf_hive: rf_live_open(), the ops
 * table, key reads (NtQueryKey, NtEnumerateKey, NtQuerySecurityObject) and
 * the live-only read helpers of regfast_nt.h. The ntdll table is nt_api.c,
 * status mapping nt_status.c, the handle cache nt_cache.c, values
 * nt_value.c, writes and security nt_write.c, watches nt_watch.c.
 *
 * Roots are opened by their kernel paths with NtOpenKeyEx:
 *   HKLM \Registry\Machine          HKU  \Registry\User
 *   HKCU \Registry\User\<SID>        (RtlFormatCurrentUserKeyPath; .Default
 *                                      when that hive is not loaded, as
 *                                      RegOpenCurrentUser does)
 *   HKCR \Registry\Machine + Software\Classes
 *   HKCC \Registry\Machine + System\CurrentControlSet\Hardware Profiles\Current
 * The "+ tail" part goes through the view-aware open (nt_cache.c do_open), so
 * HKCR in the 32-bit view is Software\Classes\Wow6432Node, as RegOpenKeyExW
 * gives it.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "nt/nt_internal.h"

/* ------------------------------------------------------------------------ */
/* Opening a root                                                            */
/* ------------------------------------------------------------------------ */

static rf_status open_abs(const wchar_t *path, size_t n, ACCESS_MASK access, HANDLE *out)
{
    nt_ustr us = { (USHORT)(n * 2), (USHORT)(n * 2), (PWSTR)path };
    nt_oattr oa = { sizeof oa, NULL, &us, NT_OBJ_CASE_INSENSITIVE, NULL, NULL };
    NTSTATUS st = nt.OpenKeyEx ? nt.OpenKeyEx(out, access, &oa, 0) : nt.OpenKey(out, access, &oa);
    if (!NT_SUCCESS(st)) {
        *out = NULL;
        return nt_fail(st, "NtOpenKeyEx", (const uint16_t *)path, n);
    }
    return RF_OK;
}

static rf_status open_root(nt_hive *h, HANDLE *out)
{
    static const wchar_t machine[] = L"\\Registry\\Machine", users[] = L"\\Registry\\User",
                         def[] = L"\\Registry\\User\\.Default", classes[] = L"Software\\Classes",
                         config[] = L"System\\CurrentControlSet\\Hardware Profiles\\Current";
    const wchar_t *tail = NULL;
    rf_status st;
    HANDLE base = NULL;
    *out = NULL;
    switch (h->root_id) {
    case RF_HKEY_LOCAL_MACHINE: st = open_abs(machine, wcslen(machine), h->access, &base); break;
    case RF_HKEY_USERS: st = open_abs(users, wcslen(users), h->access, &base); break;
    case RF_HKEY_CLASSES_ROOT: tail = classes; st = open_abs(machine, wcslen(machine), h->access, &base); break;
    case RF_HKEY_CURRENT_CONFIG: tail = config; st = open_abs(machine, wcslen(machine), h->access, &base); break;
    case RF_HKEY_CURRENT_USER: {
        nt_ustr cu = { 0, 0, NULL };
        st = RF_E_NOT_FOUND;
        if (nt.RtlFormatCurrentUserKeyPath && NT_SUCCESS(nt.RtlFormatCurrentUserKeyPath(&cu))) {
            st = open_abs(cu.Buffer, cu.Length / 2, h->access, &base);
            if (nt.RtlFreeUnicodeString) nt.RtlFreeUnicodeString(&cu);
        }
        if (st == RF_E_NOT_FOUND) st = open_abs(def, wcslen(def), h->access, &base);
        break;
    }
    default:
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0,
                        "0x%08x is not a predefined root (RF_HKEY_*)", h->root_id);
    }
    if (st) return st;
    if (!tail) {
        *out = base;
        return RF_OK;
    }
    /* the tail, through the view-aware open */
    size_t n = wcslen(tail);
    if (h->reg_open) {
        HKEY hk;
        LONG e = RegOpenKeyExW((HKEY)base, tail, 0, h->access, &hk);
        st = e ? nt_fail_win32(e, "RegOpenKeyExW", (const uint16_t *)tail, n) : RF_OK;
        *out = e ? NULL : hk;
    } else {
        nt_ustr us = { (USHORT)(n * 2), (USHORT)(n * 2), (PWSTR)tail };
        nt_oattr oa = { sizeof oa, base, &us, NT_OBJ_CASE_INSENSITIVE, NULL, NULL };
        NTSTATUS s = nt.OpenKeyEx ? nt.OpenKeyEx(out, h->access, &oa, 0) : nt.OpenKey(out, h->access, &oa);
        st = NT_SUCCESS(s) ? RF_OK : nt_fail(s, "NtOpenKeyEx", (const uint16_t *)tail, n);
    }
    nt.Close(base);
    return st;
}

static rf_status live_open(uint32_t root, uint32_t view, uint32_t access, rf_hive **out)
{
    if (!out) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "out is NULL");
    *out = NULL;
    rf_status st = nt_load_api();
    if (st) return st;
    if (view != RF_VIEW_NATIVE && view != RF_VIEW_64 && view != RF_VIEW_32)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "view 0x%x is not RF_VIEW_NATIVE/64/32", view);
    if (access & (RF_VIEW_64 | RF_VIEW_32))
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                        "access 0x%x carries KEY_WOW64_* bits: pass the view in `view`", access);
    nt_hive *h = calloc(1, nt_ops.hive_size);
    if (!h) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a live hive");
    h->root_id = root;
    h->view = view;
    h->access = (access ? access : KEY_READ) | view;
#ifdef _WIN64
    h->reg_open = view == RF_VIEW_32;          /* the 64 view is the native one */
#else
    h->reg_open = view != RF_VIEW_NATIVE;      /* a 32-bit process: advapi32 redirects */
#endif
    HANDLE root_handle;
    if ((st = open_root(h, &root_handle)) != RF_OK) {
        free(h);
        return st;
    }
    if ((st = nt_cache_init(h, root_handle)) != RF_OK) {
        nt_cache_free(h);
        if (!h->chunks[0]) nt.Close(root_handle);
        free(h);
        return st;
    }
    h->base.ops = &nt_ops;
    *out = &h->base;
    return RF_OK;
}

rf_status rf_live_open(uint32_t root, uint32_t view, uint32_t access, rf_hive **out)
{
    if (!rfi_hooks_on()) return live_open(root, view, access, out);
    rf_op_record r;
    rfi_rec_init(&r, RF_OP_HIVE_OPEN, NULL, 0);
    r.backend = "nt";
    r.count = root;      /* the predefined root (RF_HKEY_*) */
    if (rfi_hook_pre(&r)) {
        if (out) *out = NULL;
        return rfi_vetoed(&r);
    }
    rf_status st = live_open(root, view, access, out);
    r.hive = st ? NULL : *out;
    return rfi_hook_post(&r, st);
}

static void nt_close(rf_hive *base)
{
    nt_cache_free((nt_hive *)base);
}

/* ------------------------------------------------------------------------ */
/* Key operations                                                            */
/* ------------------------------------------------------------------------ */

static rf_status nt_get_info(rf_hive *base, rf_hive_info *out)
{
    (void)base;
    memset(out, 0, sizeof *out);
    return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "a live registry root has no base block to describe");
}

static rf_status nt_root(rf_hive *base, rf_key *out)
{
    nt_hive *h = (nt_hive *)base;
    *out = nt_token(h->tag, 0, 1, 0); /* the root slot is never recycled: generation 1 */
    return RF_OK;
}

/* NtQueryKey of class `cls` on k into the AUX scratch. */
static rf_status query_key(nt_hive *h, rf_key k, ULONG cls, int which, void **rec)
{
    nt_ref r;
    ULONG rl;
    rf_status st = nt_acquire(h, k, &r);
    if (st) return st;
    nt_q q = { NT_Q_KEY, r.handle, cls, 0, NULL };
    NTSTATUS s = nt_grow(h, &q, which, 512, rec, &rl);
    if (!NT_SUCCESS(s)) st = nt_call_fail(h, &r, s, "NtQueryKey", NULL, 0);
    else if (cls == KeyFullInformation) nt_slot_set_hint(h, &r, ((nt_key_full *)*rec)->MaxValueDataLen, 0);
    nt_release(h, &r);
    return st;
}

static rf_status probe_link(nt_hive *h, rf_key k, const uint16_t *path, size_t nchars, int *out, rf_name *name);

static rf_status nt_key_name(rf_hive *base, rf_key k, rf_name *out)
{
    void *rec;
    memset(out, 0, sizeof *out);
    rf_status st = query_key((nt_hive *)base, k, KeyBasicInformation, NT_BUF_NAME, &rec);
    if (st) return st;
    nt_key_basic *b = rec;
    out->ptr = b->Name;
    out->nbytes = b->NameLength;
    out->utf16 = 1;
    /* A symbolic link opens as its target, and the handle names the target:
     * "link-target" for a key listed as "link". So when the slot's own last
     * component is another name, the slot is looked at as itself under its
     * parent (OBJ_OPENLINK): a link is named by its own node, as stored.
     * Anything else keeps the handle's name (a key renamed by another
     * program since, a WOW64 view's Wow6432Node). Equal but for case: the
     * handle's, the stored spelling. */
    rf_key parent;
    uint16_t *own;
    size_t n;
    if (nt_slot_name((nt_hive *)base, k, &parent, &own, &n) != RF_OK) {
        rf_clear_error();               /* the slot went meanwhile: the handle's name stands */
        return RF_OK;
    }
    size_t at = n;
    while (at && own[at - 1] != '\\') at--;
    if (own && !nt_name_eq(own + at, n - at, (const uint16_t *)b->Name, b->NameLength / 2)) {
        /* the probe may reuse the NAME scratch *out points into: the
         * handle's name is kept aside, and put back unless a link's stands */
        size_t keep_n = b->NameLength;
        uint8_t *keep = malloc(keep_n ? keep_n : 1);
        int link = 0;
        rf_name self;
        if (!keep) st = rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
        else {
            memcpy(keep, b->Name, keep_n);
            if (probe_link((nt_hive *)base, parent, own, n, &link, &self) == RF_OK && link) *out = self;
            else {
                rf_clear_error();
                size_t cap;
                uint8_t *buf = nt_scratch(NT_BUF_NAME, keep_n + 2, &cap);
                if (!buf) st = RF_E_NO_MEMORY;
                else {
                    memcpy(buf, keep, keep_n);
                    out->ptr = buf;
                }
            }
            free(keep);
        }
    }
    free(own);
    if (st) memset(out, 0, sizeof *out);
    return st;
}

static rf_status nt_key_class(rf_hive *base, rf_key k, rf_name *out)
{
    void *rec;
    memset(out, 0, sizeof *out);
    out->utf16 = 1;
    rf_status st = query_key((nt_hive *)base, k, KeyFullInformation, NT_BUF_AUX, &rec);
    if (st) return st;
    nt_key_full *f = rec;
    if (f->ClassLength) {
        out->ptr = (const uint8_t *)rec + f->ClassOffset;
        out->nbytes = f->ClassLength;
    }
    return RF_OK;
}

static rf_status nt_key_parent(rf_hive *base, rf_key k, rf_key *out)
{
    return nt_key_parent_of((nt_hive *)base, k, out);
}

static rf_status nt_key_info(rf_hive *base, rf_key k, rf_key_info *out)
{
    void *rec;
    memset(out, 0, sizeof *out);
    rf_status st = query_key((nt_hive *)base, k, KeyFullInformation, NT_BUF_AUX, &rec);
    if (st) return st;
    nt_key_full *f = rec;
    out->last_write = (uint64_t)f->LastWriteTime.QuadPart;
    out->n_subkeys = f->SubKeys;
    out->n_values = f->Values;
    out->max_name_len = f->MaxNameLen;           /* bytes, as the kernel counts */
    out->max_class_len = f->MaxClassLen;
    out->max_value_name_len = f->MaxValueNameLen;
    out->max_value_data_len = f->MaxValueDataLen;
    out->class_len = f->ClassLength;
    out->flags = 0;                              /* nk flags are not visible live */
    out->security_offset = RF_NO_OFFSET;
    return RF_OK;
}

/* Hints are trusted only where nodes are keys: under \REGISTRY\MACHINE (and
 * USER, A, WC) Windows mounts each hive on a link node of the master hive
 * that lists no subkeys of its own, and enumeration reads that node, so
 * SOFTWARE would read as a leaf. The rule is inferred (ReactOS's cmlib
 * mounts hives so), not seen on Windows: these five containers get no
 * hints, which costs a listing per hive root and nothing else. */
int rf_live_is_mount_container(const uint16_t *path, size_t nchars)
{
    static const char *const containers[] = { "\\REGISTRY", "\\REGISTRY\\MACHINE", "\\REGISTRY\\USER",
                                              "\\REGISTRY\\A", "\\REGISTRY\\WC" };
    if (!path) return 0;
    for (size_t c = 0; c < sizeof containers / sizeof containers[0]; c++) {
        size_t n = strlen(containers[c]), i = 0;
        if (n != nchars) continue;
        while (i < n && path[i] < 128 && toupper(path[i]) == containers[c][i]) i++;
        if (i == n) return 1;
    }
    return 0;
}

/* Subkeys become slots without a handle: enumeration opens nothing. With
 * `hints`, each index is enumerated a second time for its own node
 * (KeyFullInformation reads the subkey's node and does not follow a link,
 * which lists no subkeys): RF_SUBKEY_NO_SUBKEYS when that node lists none,
 * RF_SUBKEY_HAS_SUBKEYS when it lists some (not a link), if it has the last
 * write of the key just named (an insertion between the two calls shifts
 * the indexes: the hint is then 0, unknown). */
static rf_status subkeys(nt_hive *h, rf_key k, rf_key *out, uint8_t *hints, size_t cap, size_t *n_out)
{
    nt_ref r;
    void *rec;
    ULONG rl;
    *n_out = 0;
    rf_status st = nt_acquire(h, k, &r);
    if (st) return st;
    if ((st = nt_child_count(h, &r, 0, cap, n_out)) != RF_OK) goto done;
    for (ULONG i = 0;; i++) {
        nt_q q = { NT_Q_ENUM_KEY, r.handle, KeyBasicInformation, i, NULL };
        NTSTATUS s = nt_grow(h, &q, NT_BUF_NAME, 512, &rec, &rl);
        if (s == NT_STATUS_NO_MORE_ENTRIES) break;
        if (!NT_SUCCESS(s)) { st = nt_call_fail(h, &r, s, "NtEnumerateKey", NULL, 0); goto done; }
        if (i >= cap) { *n_out = i + 1; st = RF_E_MORE_DATA; continue; } /* added since the count */
        nt_key_basic *b = rec;
        int64_t last_write = b->LastWriteTime.QuadPart;
        if ((st = nt_child_slot(h, k, (const uint16_t *)b->Name, b->NameLength / 2, &out[i])) != RF_OK) goto done;
        if (hints) {
            nt_q node = { NT_Q_ENUM_KEY, r.handle, KeyFullInformation, i, NULL };
            void *full;
            hints[i] = 0;
            if (NT_SUCCESS(nt_grow(h, &node, NT_BUF_AUX, 512, &full, &rl)) &&
                ((nt_key_full *)full)->LastWriteTime.QuadPart == last_write)
                hints[i] = ((nt_key_full *)full)->SubKeys == 0 ? RF_SUBKEY_NO_SUBKEYS : RF_SUBKEY_HAS_SUBKEYS;
        }
        *n_out = i + 1;
    }
    if (st == RF_E_MORE_DATA)
        rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "subkeys were added during the enumeration: %zu now", *n_out);
done:
    nt_release(h, &r);
    return st;
}

static rf_status nt_key_subkeys(rf_hive *base, rf_key k, rf_key *out, size_t cap, size_t *n_out)
{
    return subkeys((nt_hive *)base, k, out, NULL, cap, n_out);
}

/* The same listing with a hint byte per subkey (rf_key_subkeys_hinted): the
 * walks and snapshots of regfast do not go through a link. Hints stand only
 * if the key's subkey count and last write are the same before and after
 * (and match the listing); else, and under a mount container, all are 0. */
static rf_status nt_key_subkeys_hinted(rf_hive *base, rf_key k, rf_key *out, uint8_t *hints, size_t cap,
                                       size_t *n_out)
{
    rf_key_info before, after;
    rf_name path;
    int hinted = cap && rf_live_key_path(base, k, &path) == RF_OK &&
                 !rf_live_is_mount_container((const uint16_t *)path.ptr, path.nbytes / 2) &&
                 nt_key_info(base, k, &before) == RF_OK;
    rf_status st = subkeys((nt_hive *)base, k, out, hinted ? hints : NULL, cap, n_out);
    if (st) return st;
    if (!hinted || nt_key_info(base, k, &after) != RF_OK || after.last_write != before.last_write ||
        after.n_subkeys != before.n_subkeys || after.n_subkeys != *n_out) {
        if (*n_out) memset(hints, 0, *n_out);
        rf_clear_error();               /* a probe that failed only costs the hints */
    }
    return RF_OK;
}

static rf_status nt_key_security(rf_hive *base, rf_key k, const uint8_t **sd, size_t *len)
{
    nt_hive *h = (nt_hive *)base;
    nt_ref r;
    void *rec;
    ULONG rl;
    *sd = NULL;
    *len = 0;
    rf_status st = nt_acquire(h, k, &r);
    if (st) return st;
    nt_q q = { NT_Q_SECURITY, r.handle,
               OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, 0, NULL };
    NTSTATUS s = nt_grow(NULL, &q, NT_BUF_SD, 256, &rec, &rl);
    if (!NT_SUCCESS(s)) st = nt_call_fail(h, &r, s, "NtQuerySecurityObject", NULL, 0);
    else {
        *sd = rec;
        *len = GetSecurityDescriptorLength(rec);
    }
    nt_release(h, &r);
    return st;
}

static rf_status nt_mapping(rf_hive *base, const uint8_t **map, size_t *len)
{
    (void)base;
    *map = NULL;
    *len = 0;
    return RF_OK;
}

static rf_status nt_key_is_link(rf_hive *base, rf_key k, int *out);

/* Designated: slots the core adds later stay NULL ("not supported"). */
const rf_backend_ops nt_ops = {
    .version = RF_BACKEND_OPS_VERSION,
    .hive_size = sizeof(nt_hive),
    .name = "nt",
    .close = nt_close,
    .get_info = nt_get_info,
    .root = nt_root,
    .key_child = nt_key_child_op,
    .key_name = nt_key_name,
    .key_class = nt_key_class,
    .key_parent = nt_key_parent,
    .key_info = nt_key_info,
    .key_subkeys = nt_key_subkeys,
    .key_values = nt_key_values,
    .key_security = nt_key_security,
    .value_find = nt_value_find,
    .value_info = nt_value_info,
    .value_read = nt_value_read,
    .read_values = nt_read_values,
    .mapping = nt_mapping,
    /* .scan: a live subtree walk is rf_key_subkeys + rf_read_values */
    .key_open = rf_live_key_open,
    /* version 2: .deleted_read, .slack: a live registry has no cells (120) */
    .value_set = nt_value_set,
    .value_delete = nt_value_delete,
    .key_create = nt_key_create,
    .key_delete = nt_key_delete,
    .key_rename = nt_key_rename,
    .key_get_security = nt_key_get_security,
    .key_set_security = nt_key_set_security,
    /* .snapshot: the core's walk over rf_* */
    .watch_open = nt_watch_open,
    .watch_next = nt_watch_next,
    .watch_stop = nt_watch_stop,
    .watch_close = nt_watch_close,
    /* version 5 */
    .key_is_link = nt_key_is_link,
    .key_subkeys_hinted = nt_key_subkeys_hinted,
};

/* ------------------------------------------------------------------------ */
/* regfast_nt.h                                                              */
/* ------------------------------------------------------------------------ */

#define LIVE(h, base) \
    nt_hive *h = nt_cast(base); \
    if (!h) return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "not a live hive (rf_live_open)")

rf_status rf_live_get_stats(rf_hive *base, rf_live_stats *out)
{
    LIVE(h, base);
    if (!out) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "out is NULL");
    return nt_stats(h, out);
}

rf_status rf_live_set_limits(rf_hive *base, uint32_t max_handles, uint32_t max_slots, uint32_t max_values)
{
    LIVE(h, base);
    return nt_set_limits(h, max_handles, max_slots, max_values);
}

rf_status rf_live_key_open(rf_hive *base, rf_key parent, const uint16_t *path, size_t nchars, rf_key *out)
{
    if (!out) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "out is NULL");
    *out = 0;
    LIVE(h, base);
    if (!path && nchars) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "path is NULL");
    if (parent == 0) nt_root(base, &parent);
    return nt_key_open(h, parent, path, nchars, out);
}

rf_status rf_live_key_path(rf_hive *base, rf_key k, rf_name *out)
{
    LIVE(h, base);
    if (!out) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "out is NULL");
    memset(out, 0, sizeof *out);
    void *rec;
    rf_status st = query_key(h, k, KeyNameInformation, NT_BUF_NAME, &rec);
    if (st) return st;
    out->ptr = ((nt_key_name_info *)rec)->Name;
    out->nbytes = ((nt_key_name_info *)rec)->NameLength;
    out->utf16 = 1;
    return RF_OK;
}

/* NtEnumerateKey of class `cls` at `index` into the scratch `buf` (*rec
 * stays valid until this thread next uses that scratch). */
static rf_status enum_key(nt_hive *h, rf_key k, uint32_t index, ULONG cls, int buf, void **rec)
{
    nt_ref r;
    ULONG rl;
    rf_status st = nt_acquire(h, k, &r);
    if (st) return st;
    nt_q q = { NT_Q_ENUM_KEY, r.handle, cls, index, NULL };
    NTSTATUS s = nt_grow(h, &q, buf, 512, rec, &rl);
    if (s == NT_STATUS_NO_MORE_ENTRIES)
        st = rfi_fail(RF_E_NO_MORE_ITEMS, RF_NO_OFFSET, (int64_t)(uint32_t)s, "no subkey at index %u", index);
    else if (!NT_SUCCESS(s)) st = nt_call_fail(h, &r, s, "NtEnumerateKey", NULL, 0);
    nt_release(h, &r);
    return st;
}

rf_status rf_live_enum_subkey(rf_hive *base, rf_key k, uint32_t index, rf_name *name, uint64_t *last_write)
{
    LIVE(h, base);
    if (!name) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "name is NULL");
    memset(name, 0, sizeof *name);
    void *rec;
    rf_status st = enum_key(h, k, index, KeyBasicInformation, NT_BUF_NAME, &rec);
    if (st) return st;
    nt_key_basic *b = rec;
    name->ptr = b->Name;
    name->nbytes = b->NameLength;
    name->utf16 = 1;
    if (last_write) *last_write = (uint64_t)b->LastWriteTime.QuadPart;
    return RF_OK;
}

rf_status rf_live_enum_subkey_node(rf_hive *base, rf_key k, uint32_t index, uint32_t *n_subkeys,
                                   uint64_t *last_write)
{
    LIVE(h, base);
    if (!n_subkeys) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "n_subkeys is NULL");
    *n_subkeys = 0;
    void *rec;
    /* enumeration reads the subkey's own node: a link is not followed */
    rf_status st = enum_key(h, k, index, KeyFullInformation, NT_BUF_AUX, &rec);
    if (st) return st;
    nt_key_full *f = rec;
    *n_subkeys = f->SubKeys;
    if (last_write) *last_write = (uint64_t)f->LastWriteTime.QuadPart;
    return RF_OK;
}

/* KEY_FLAGS_INFORMATION: NtQueryKey class 5 (KeyFlagsInformation), Windows 7
 * on; the layout phnt gives. KeyFlags bit REG_FLAG_LINK marks a link. */
#define NT_KEY_FLAGS_INFORMATION 5
#define NT_REG_FLAG_LINK 0x2u
typedef struct { ULONG Wow64Flags, KeyFlags, ControlFlags; } nt_key_flags_info;
/* 1 once class 5 was refused (Wine 8 answers STATUS_INVALID_PARAMETER for
 * classes 5-7): the fallback alone from then on */
static volatile LONG flags_class_refused;

/* Is the key `z` opened with REG_OPTION_OPEN_LINK (handle `t`, the key
 * itself, not its target) a link? Windows: KeyFlagsInformation says so.
 * Where that class is refused (Wine), the one mark a link carries is the
 * REG_LINK value SymbolicLinkValue that holds its target (a key made with
 * REG_OPTION_CREATE_LINK gets its target there; Wine's RegCreateKeyExW
 * links are the same); a plain key holding such a value reads as a link
 * there, which only means a walk does not go below it. */
static int opened_link_is_link(HKEY t)
{
    if (!flags_class_refused && nt.QueryKey) {
        nt_key_flags_info fi;
        ULONG rl = 0;
        NTSTATUS s = nt.QueryKey((HANDLE)t, NT_KEY_FLAGS_INFORMATION, &fi, sizeof fi, &rl);
        if (NT_SUCCESS(s)) return (fi.KeyFlags & NT_REG_FLAG_LINK) != 0;
        if (s == NT_STATUS_INVALID_PARAMETER || s == (NTSTATUS)0xC0000002L /* NOT_IMPLEMENTED */ ||
            s == (NTSTATUS)0xC0000003L /* INVALID_INFO_CLASS */)
            InterlockedExchange(&flags_class_refused, 1);
    }
    DWORD type = 0, len = 0;
    LONG e = RegQueryValueExW(t, L"SymbolicLinkValue", NULL, &type, NULL, &len);
    return (e == ERROR_SUCCESS || e == ERROR_MORE_DATA) && type == REG_LINK;
}

/* `path` is copied before any call (the agent passes the enumeration's
 * scratch). Opened the way the cache opens (nt_cache.c do_open): NtOpenKeyEx
 * with a counted name (a NUL inside is a name like any other) and
 * OBJ_OPENLINK; a WOW64 view through RegOpenKeyExW, which applies the
 * redirection, with REG_OPTION_OPEN_LINK. */
rf_status rf_live_subkey_is_link(rf_hive *base, rf_key k, const uint16_t *path, size_t nchars, int *out)
{
    if (!out) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "out is NULL");
    *out = 0;
    LIVE(h, base);
    return probe_link(h, k, path, nchars, out, NULL);
}

/* rf_live_subkey_is_link's work; with `name`, a link's own name as stored
 * (KeyBasicInformation of the node itself, in the NAME scratch). */
static rf_status probe_link(nt_hive *h, rf_key k, const uint16_t *path, size_t nchars, int *out, rf_name *name)
{
    rf_hive *base = &h->base;
    if (!path || !nchars || nchars > 32767)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "path is NULL, empty or over 32,767 chars");
    if (k == 0) nt_root(base, &k);
    uint16_t *copy = malloc(nchars * sizeof *copy);
    if (!copy) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
    memcpy(copy, path, nchars * sizeof *copy);
    wchar_t *z = NULL;
    rf_status st = h->reg_open ? nt_zcopy(copy, nchars, &z) : RF_OK;
    nt_ref r;
    if (st || (st = nt_acquire(h, k, &r))) {
        free(z);
        free(copy);
        return st;
    }
    HANDLE t = NULL;
    if (h->reg_open) {
        HKEY hk = NULL;
        LONG e = RegOpenKeyExW((HKEY)r.handle, z, REG_OPTION_OPEN_LINK, KEY_QUERY_VALUE | h->view, &hk);
        if (e == ERROR_KEY_DELETED) nt_after_call(h, &r, NT_STATUS_KEY_DELETED);
        if (e) st = nt_fail_win32(e, "RegOpenKeyExW", copy, nchars);
        t = hk;
    } else {
        nt_ustr us = { (USHORT)(nchars * 2), (USHORT)(nchars * 2), (PWSTR)copy };
        nt_oattr oa = { sizeof oa, r.handle, &us, NT_OBJ_CASE_INSENSITIVE | NT_OBJ_OPENLINK, NULL, NULL };
        NTSTATUS s = nt.OpenKeyEx ? nt.OpenKeyEx(&t, KEY_QUERY_VALUE, &oa, 0) : nt.OpenKey(&t, KEY_QUERY_VALUE, &oa);
        if (s == NT_STATUS_KEY_DELETED) nt_after_call(h, &r, s);
        if (!NT_SUCCESS(s)) {
            t = NULL;
            st = nt_fail(s, "NtOpenKeyEx", copy, nchars);
        }
    }
    nt_release(h, &r);
    if (!st) {
        *out = opened_link_is_link((HKEY)t);
        if (*out && name) {
            void *rec;
            ULONG rl;
            nt_q q = { NT_Q_KEY, t, KeyBasicInformation, 0, NULL };
            NTSTATUS s = nt_grow(h, &q, NT_BUF_NAME, 512, &rec, &rl);
            if (!NT_SUCCESS(s)) st = nt_fail(s, "NtQueryKey", copy, nchars);
            else {
                name->ptr = ((nt_key_basic *)rec)->Name;
                name->nbytes = ((nt_key_basic *)rec)->NameLength;
                name->utf16 = 1;
            }
        }
        RegCloseKey((HKEY)t);
    }
    free(z);
    free(copy);
    return st;
}

/* The method table's key_is_link: the slot's name asked of its parent. The
 * root is a predefined key (or a loaded hive's root), never a link of ours. */
static rf_status nt_key_is_link(rf_hive *base, rf_key k, int *out)
{
    rf_key parent;
    uint16_t *name;
    size_t n;
    *out = 0;
    rf_status st = nt_slot_name((nt_hive *)base, k, &parent, &name, &n);
    if (!st && name) st = rf_live_subkey_is_link(base, parent, name, n, out);
    if (st == RF_E_NOT_FOUND) {
        /* gone under its token: 1018, as for every other call on it, and
         * its cached tokens say so from now on (forgetting clears the error) */
        int64_t native = rf_last_error()->native;
        nt_forget_path((nt_hive *)base, parent, name, n);
        st = rfi_fail(RF_E_KEY_DELETED, RF_NO_OFFSET, native, "the key was deleted since its token was made");
    }
    free(name);
    return st;
}

rf_status rf_live_enum_value(rf_hive *base, rf_key k, uint32_t index, rf_name *name, uint32_t *type,
                             const uint8_t **data, size_t *len)
{
    LIVE(h, base);
    if (name) memset(name, 0, sizeof *name);
    if (data) *data = NULL;
    if (len) *len = 0;
    nt_ref r;
    void *rec;
    ULONG rl;
    rf_status st = nt_acquire(h, k, &r);
    if (st) return st;
    nt_q q = { NT_Q_ENUM_VALUE, r.handle, KeyValueFullInformation, index, NULL };
    uint32_t hint = nt_slot_hint(h, &r);
    NTSTATUS s = nt_grow(h, &q, NT_BUF_DATA, 512 + (hint == NT_NONE ? 0 : hint), &rec, &rl);
    if (s == NT_STATUS_NO_MORE_ENTRIES)
        st = rfi_fail(RF_E_NO_MORE_ITEMS, RF_NO_OFFSET, (int64_t)(uint32_t)s, "no value at index %u", index);
    else if (!NT_SUCCESS(s)) st = nt_call_fail(h, &r, s, "NtEnumerateValueKey", NULL, 0);
    else {
        nt_kv_full *f = rec;
        if (name) { name->ptr = f->Name; name->nbytes = f->NameLength; name->utf16 = 1; }
        if (type) *type = f->Type;
        if (data) *data = (const uint8_t *)rec + f->DataOffset;
        if (len) *len = f->DataLength;
    }
    nt_release(h, &r);
    return st;
}

rf_status rf_live_save_key(rf_hive *base, rf_key k, const uint16_t *path, uint32_t format)
{
    LIVE(h, base);
    if (!path || !path[0]) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "path is NULL or empty");
    nt_ref r;
    rf_status st = nt_acquire(h, k, &r);
    if (st) return st;
    LONG e = RegSaveKeyExW((HKEY)r.handle, (LPCWSTR)path, NULL, format ? format : 2 /* REG_LATEST_FORMAT */);
    if (e == ERROR_KEY_DELETED) nt_after_call(h, &r, NT_STATUS_KEY_DELETED);
    if (e) st = nt_fail_win32(e, "RegSaveKeyExW", path, wcslen((const wchar_t *)path));
    nt_release(h, &r);
    return st;
}
