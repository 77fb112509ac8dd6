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

const rf_backend_ops regf_ops = {
    .version = RF_BACKEND_OPS_VERSION,
    .hive_size = sizeof(regf_hive),
    .name = "regf",
    .close = regf_close,
    .get_info = regf_get_info,
    .root = regf_root,
    .key_child = regf_key_child,
    .key_name = regf_key_name,
    .key_class = regf_key_class,
    .key_parent = regf_key_parent,
    .key_info = regf_key_info,
    .key_subkeys = regf_key_subkeys,
    .key_values = regf_key_values,
    .key_security = regf_key_security,
    .value_find = regf_value_find,
    .value_info = regf_value_info,
    .value_read = regf_value_read,
    .read_values = regf_read_values,
    .mapping = regf_mapping,
    .scan = regf_scan,
    .cell = regf_cell_any,
    .deleted = regf_deleted_records,
    .problems = regf_problems,
    /* .key_open: component by component through key_child is as fast as it gets here */
    /* version 2 */
    .deleted_read = regf_deleted_read,
    .slack = regf_slack,
    /* writes, security set, watches: NULL, a hive file is read-only (RF_E_NOT_SUPPORTED);
     * key_get_security and snapshot: NULL, the core's generic code over rf_* */
};
