/*
 * regf_api.c — the regf backend's constructors: rf_hive_open() and
 * rf_hive_open_memory() build a regf_hive and hand it to the caller as an
 * rf_hive. They live with the backend (not in src/core), so that the core
 * never includes hive/regf_internal.h: each backend builds its own handles.
 * The method table is here too: it refers to every file of the backend, and
 * nothing refers back to this one (tools/check_c_cycles.py).
 */
#include <stdlib.h>
#include "hive/regf_internal.h"
#include "hive/regf_guard.h"

/* Hands a freshly opened backend hive to the caller, or frees it. */
static rf_status adopt(regf_hive *h, rf_status st, rf_hive **out)
{
    if (st) {
        free(h);
        return st;
    }
    h->base.ops = &regf_ops;
    *out = &h->base;
    return RF_OK;
}

static rf_status open_file(const char *path, const rf_open_opts *opts, rf_hive **out)
{
    if (!out) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "out is NULL");
    *out = NULL;
    if (!path) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "path is NULL");
    regf_hive *h = calloc(1, regf_ops.hive_size);
    if (!h) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a hive");
    return adopt(h, regf_open_file(h, path, opts), out);
}

static rf_status open_memory(const void *data, size_t len, const rf_open_opts *opts, rf_hive **out)
{
    if (!out) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "out is NULL");
    *out = NULL;
    if (!data && len) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "data is NULL");
    regf_hive *h = calloc(1, regf_ops.hive_size);
    if (!h) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a hive");
    return adopt(h, regf_open_memory(h, data ? data : "", len, opts), out);
}

/* The hook point of the opens (rf_hook.c): the record names the file. */
static rf_status hooked_open(const char *path, rf_status (*call)(const void *, size_t, const rf_open_opts *,
                                                                 rf_hive **),
                             const void *a, size_t b, const rf_open_opts *opts, rf_hive **out)
{
    rf_op_record r;
    rfi_rec_init(&r, RF_OP_HIVE_OPEN, NULL, 0);
    r.backend = regf_ops.name;
    r.text = path;
    if (rfi_hook_pre(&r)) {
        if (out) *out = NULL;
        return rfi_vetoed(&r);
    }
    rf_status st = call(a, b, opts, out);
    r.hive = st ? NULL : *out;
    return rfi_hook_post(&r, st);
}

static rf_status open_file_thunk(const void *a, size_t b, const rf_open_opts *o, rf_hive **out)
{
    (void)b;
    return open_file(a, o, out);
}

rf_status rf_hive_open(const char *path, const rf_open_opts *opts, rf_hive **out)
{
    if (!rfi_hooks_on()) return open_file(path, opts, out);
    return hooked_open(path, open_file_thunk, path, 0, opts, out);
}

rf_status rf_hive_open_memory(const void *data, size_t len, const rf_open_opts *opts, rf_hive **out)
{
    if (!rfi_hooks_on()) return open_memory(data, len, opts, out);
    return hooked_open(NULL, open_memory, data, len, opts, out);
}

/* ---- the ops, each inside a guard (regf_guard.h) ---------------------------
 * Every entry point that reads the mapping runs guarded, so a page that
 * vanished under it (the file truncated) is an RF_E_IO, not a SIGBUS. Scan,
 * read_values, value_find, deleted and slack guard themselves: they allocate,
 * and free after the guard (a jump out of it would leak what the wrapper
 * below cannot see). */
#define GUARDED(fn, params, args)                       \
    static rf_status fn##_guarded params                \
    {                                                   \
        const regf_hive *gh = (const regf_hive *)base;  \
        rf_status st = RF_OK;                           \
        REGF_GUARD_BEGIN(gh->map, gh->size)             \
            st = fn args;                               \
        REGF_GUARD_END(st)                              \
        return st;                                      \
    }

GUARDED(regf_key_child, (rf_hive *base, rf_key parent, const uint16_t *name, size_t nchars, rf_key *out),
        (base, parent, name, nchars, out))
GUARDED(regf_key_name, (rf_hive *base, rf_key k, rf_name *out), (base, k, out))
GUARDED(regf_key_class, (rf_hive *base, rf_key k, rf_name *out), (base, k, out))
GUARDED(regf_key_parent, (rf_hive *base, rf_key k, rf_key *out), (base, k, out))
GUARDED(regf_key_info, (rf_hive *base, rf_key k, rf_key_info *out), (base, k, out))
GUARDED(regf_key_is_link, (rf_hive *base, rf_key k, int *out), (base, k, out))
GUARDED(regf_key_subkeys, (rf_hive *base, rf_key k, rf_key *out, size_t cap, size_t *n_out),
        (base, k, out, cap, n_out))
GUARDED(regf_key_values, (rf_hive *base, rf_key k, rf_value *out, size_t cap, size_t *n_out),
        (base, k, out, cap, n_out))
GUARDED(regf_key_security, (rf_hive *base, rf_key k, const uint8_t **sd, size_t *len), (base, k, sd, len))
GUARDED(regf_value_info, (rf_hive *base, rf_value v, rf_value_info *out), (base, v, out))
GUARDED(regf_value_read, (rf_hive *base, rf_value v, void *buf, size_t cap, const uint8_t **data_out,
                          size_t *len_out), (base, v, buf, cap, data_out, len_out))
GUARDED(regf_cell_any, (rf_hive *base, uint64_t file_offset, const uint8_t **payload, size_t *len,
                        int *allocated), (base, file_offset, payload, len, allocated))
GUARDED(regf_deleted_read, (rf_hive *base, uint64_t record_offset, void *buf, size_t cap, size_t *len_out),
        (base, record_offset, buf, cap, len_out))

/* rf_key_get_security of a stored descriptor: the parts asked for, filtered
 * here rather than by the core's generic fallback, because the filter reads
 * the descriptor in the mapping and must do so inside the guard. */
static rf_status regf_key_get_security(rf_hive *base, rf_key k, uint32_t si, void *buf, size_t cap,
                                       size_t *len_out, uint32_t *si_out)
{
    const uint8_t *sd;
    size_t len;
    rf_status st = regf_key_security(base, k, &sd, &len);
    if (st) return st;
    st = rfi_sd_filter(sd, len, si, buf, cap, len_out, si_out);
    if (st == RF_E_INVALID_DATA) { /* the sk cell holds a broken descriptor: corruption, at the sk */
        uint64_t at = (uint64_t)(sd - 0x14 - 4 - ((const regf_hive *)base)->map);
        return rfi_fail(RF_E_CORRUPT, at, 0, "sk at 0x%llx: the key's security descriptor is malformed: %s",
                        (unsigned long long)at, rf_last_error()->message);
    }
    return st;
}

GUARDED(regf_key_get_security, (rf_hive *base, rf_key k, uint32_t si, void *buf, size_t cap, size_t *len_out,
                                 uint32_t *si_out), (base, k, si, buf, cap, len_out, si_out))

/* The core's snapshot walk (rf_snapshot.c), inside the guard: it reads names
 * and value data straight from the mapping. Its scratch and the caller's
 * buffer are put right after the guard, whether the walk returned or not. */
static rf_status snapshot_guarded(rf_hive *base, rf_key k, uint32_t flags, uint32_t max_keys, rf_bytes *out,
                                  rfi_snap **scratch)
{
    const regf_hive *h = (const regf_hive *)base;
    rf_status st = RF_OK;
    REGF_GUARD_BEGIN(h->map, h->size)
        st = rfi_snapshot_walk(base, k, flags, max_keys, out, scratch);
    REGF_GUARD_END(st)
    return st;
}

static rf_status regf_snapshot(rf_hive *base, rf_key k, uint32_t flags, uint32_t max_keys, rf_bytes *out)
{
    rfi_snap *scratch = NULL;
    size_t head = out->len;
    rf_status st = snapshot_guarded(base, k, flags, max_keys, out, &scratch);
    rfi_snapshot_release(scratch);
    if (st) out->len = head;
    return st;
}

/* ---- what needs hbins checked first (lazily checked hives) -----------------
 * The forensic passes read the bitmap of cell starts word by word, over every
 * hbin: every hbin is checked first (a damaged one fails them, as it failed a
 * strict open). A raw cell lookup checks the hbin it asks about, and reports
 * the damage of a bad one rather than "no cell here". */
static rf_status cell_any(rf_hive *base, uint64_t file_offset, const uint8_t **payload, size_t *len,
                          int *allocated)
{
    /* the lookup itself checks the hbin (regf_is_cell): no check up front,
     * so that an offset in an hbin nothing reached yet takes the same path
     * as every offset read from the file (the fuzzer compares the two) */
    rf_status st = regf_cell_any_guarded(base, file_offset, payload, len, allocated);
    rf_status why;
    if (st == RF_E_NOT_FOUND && file_offset >= REGF_BASE_BLOCK &&
        (why = regf_lazy_error((const regf_hive *)base, file_offset - REGF_BASE_BLOCK)) != RF_OK)
        return why;   /* not "no cell here": the hbin is damaged */
    return st;
}

static rf_status deleted_records(rf_hive *base, rf_deleted *out, size_t cap, size_t *n_out)
{
    rf_status st = regf_check_all((const regf_hive *)base);
    if (st) {
        *n_out = 0;
        return st;
    }
    return regf_deleted_records(base, out, cap, n_out);
}

static rf_status deleted_read(rf_hive *base, uint64_t record_offset, void *buf, size_t cap, size_t *len_out)
{
    rf_status st = regf_check_all((const regf_hive *)base);
    if (st) {
        *len_out = 0;
        return st;
    }
    return regf_deleted_read_guarded(base, record_offset, buf, cap, len_out);
}

static rf_status slack(rf_hive *base, rf_slack *out, size_t cap, size_t *n_out)
{
    rf_status st = regf_check_all((const regf_hive *)base);
    if (st) {
        *n_out = 0;
        return st;
    }
    return regf_slack(base, out, cap, n_out);
}

const rf_backend_ops regf_ops = {
    .version = RF_BACKEND_OPS_VERSION,
    .hive_size = sizeof(regf_hive),
    .name = "regf",
    .close = regf_close,
    .get_info = regf_get_info,
    .root = regf_root,
    .key_child = regf_key_child_guarded,
    .key_name = regf_key_name_guarded,
    .key_class = regf_key_class_guarded,
    .key_parent = regf_key_parent_guarded,
    .key_info = regf_key_info_guarded,
    .key_subkeys = regf_key_subkeys_guarded,
    .key_values = regf_key_values_guarded,
    .key_security = regf_key_security_guarded,
    .value_find = regf_value_find,
    .value_info = regf_value_info_guarded,
    .value_read = regf_value_read_guarded,
    .read_values = regf_read_values,
    .mapping = regf_mapping,
    .scan = regf_scan,
    .cell = cell_any,
    .deleted = deleted_records,
    .problems = regf_problems,
    /* .key_open: component by component through key_child is as fast as it gets here */
    /* version 2 */
    .deleted_read = deleted_read,
    .slack = slack,
    /* writes, security set, watches: NULL, a hive file is read-only (RF_E_NOT_SUPPORTED) */
    .key_get_security = regf_key_get_security_guarded,
    .snapshot = regf_snapshot,
    /* version 4 */
    .token_offset = regf_token_offset,
    .record_slack = regf_record_slack,
    /* version 5 */
    .key_is_link = regf_key_is_link_guarded,
};
