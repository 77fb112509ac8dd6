/*
 * rf_hive.c — the backend-agnostic half of the C API: argument checks, path
 * splitting, UTF-8 wrappers, then one call through the backend's ops table.
 * Nothing here knows what a cell is.
 */
#include <stdlib.h>
#include "core/rf_internal.h"
#include "hive/regf_internal.h"

#define CHECK_HIVE(h) \
    do { if (RF_UNLIKELY(!(h) || !(h)->ops)) \
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "hive handle is NULL or closed"); } while (0)
#define CHECK_ARG(cond, what) \
    do { if (RF_UNLIKELY(!(cond))) \
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "%s", what); } while (0)

/* Longest path we accept: 512 levels of 255-char names plus separators. */
#define MAX_PATH_CHARS (512u * 256u)

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

rf_status rf_hive_open(const char *path, const rf_open_opts *opts, rf_hive **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    CHECK_ARG(path, "path is NULL");
    regf_hive *h = calloc(1, regf_ops.hive_size);
    if (!h) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a hive");
    return adopt(h, regf_open_file(h, path, opts), out);
}

rf_status rf_hive_open_memory(const void *data, size_t len, const rf_open_opts *opts, rf_hive **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    CHECK_ARG(data || len == 0, "data is NULL");
    regf_hive *h = calloc(1, regf_ops.hive_size);
    if (!h) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a hive");
    return adopt(h, regf_open_memory(h, data ? data : "", len, opts), out);
}

void rf_hive_close(rf_hive *h)
{
    if (!h || !h->ops) return;
    h->ops->close(h);
    free(h);
}

rf_status rf_hive_get_info(rf_hive *h, rf_hive_info *out)
{
    CHECK_HIVE(h);
    CHECK_ARG(out, "out is NULL");
    return h->ops->get_info(h, out);
}

rf_status rf_hive_root(rf_hive *h, rf_key *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    CHECK_HIVE(h);
    return h->ops->root(h, out);
}

rf_status rf_key_open_utf16(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars, rf_key *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    CHECK_HIVE(h);
    CHECK_ARG(path || nchars == 0, "path is NULL");
    rf_status st;
    size_t start = (nchars && path[0] == '\\') ? 1 : 0; /* "\Software" == "Software" */
    /* Validate every component first, whichever backend resolves them. */
    for (size_t i = start; i < nchars;) {
        size_t j = i;
        while (j < nchars && path[j] != '\\') j++;
        if (j == i || j - i > 255)
            return rfi_fail(RF_E_BAD_PATHNAME, RF_NO_OFFSET, 0,
                            j == i ? "empty component at char %zu of the key path"
                                   : "component at char %zu of the key path is over 255 chars", i);
        i = j + 1; /* a single trailing '\' is tolerated, as RegOpenKeyEx does */
    }
    if (h->ops->key_open) {
        size_t end = nchars;
        if (end > start && path[end - 1] == '\\') end--;
        return h->ops->key_open(h, parent, path + start, end - start, out);
    }
    rf_key k = parent;
    if (k == 0 && (st = h->ops->root(h, &k)) != RF_OK) return st;
    for (size_t i = start; i < nchars;) {
        size_t j = i;
        while (j < nchars && path[j] != '\\') j++;
        rf_key child;
        if ((st = h->ops->key_child(h, k, path + i, j - i, &child)) != RF_OK) {
            if (st == RF_E_NOT_FOUND)
                return rfi_fail(st, RF_NO_OFFSET, rf_last_error()->native,
                                "key path not found: component at char %zu is missing", i);
            return st;
        }
        k = child;
        i = j + 1;
    }
    *out = k;
    return RF_OK;
}

/* Converts UTF-8 to UTF-16 on the stack, or the heap for long input. */
#define STACK_CHARS 1024
typedef struct wide { uint16_t stack[STACK_CHARS]; uint16_t *p; long n; } wide;

static rf_status widen(wide *w, const char *s, size_t len, size_t max_chars)
{
    w->p = w->stack;
    w->n = 0;
    if (len > max_chars * 3)
        return rfi_fail(RF_E_BAD_PATHNAME, RF_NO_OFFSET, 0, "name or path of %zu bytes is too long", len);
    if (len > STACK_CHARS) {
        w->p = malloc(len * sizeof(uint16_t));
        if (!w->p) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a path");
    }
    w->n = rfi_utf8_to_utf16(s, len, w->p, len > STACK_CHARS ? len : STACK_CHARS);
    if (w->n < 0) {
        if (w->p != w->stack) free(w->p);
        w->p = NULL;
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "name or path is not valid UTF-8");
    }
    return RF_OK;
}

static void unwiden(wide *w) { if (w->p && w->p != w->stack) free(w->p); }

rf_status rf_key_open(rf_hive *h, rf_key parent, const char *path, size_t len, rf_key *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    CHECK_ARG(path || len == 0, "path is NULL");
    wide w;
    rf_status st = widen(&w, path ? path : "", len, MAX_PATH_CHARS);
    if (st) return st;
    st = rf_key_open_utf16(h, parent, w.p, (size_t)w.n, out);
    unwiden(&w);
    return st;
}

rf_status rf_key_child(rf_hive *h, rf_key parent, const uint16_t *name, size_t nchars, rf_key *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    CHECK_HIVE(h);
    CHECK_ARG(name || nchars == 0, "name is NULL");
    return h->ops->key_child(h, parent, name, nchars, out);
}

rf_status rf_key_name(rf_hive *h, rf_key k, rf_name *out)
{
    CHECK_HIVE(h);
    CHECK_ARG(out, "out is NULL");
    return h->ops->key_name(h, k, out);
}

rf_status rf_key_class(rf_hive *h, rf_key k, rf_name *out)
{
    CHECK_HIVE(h);
    CHECK_ARG(out, "out is NULL");
    return h->ops->key_class(h, k, out);
}

rf_status rf_key_parent(rf_hive *h, rf_key k, rf_key *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    CHECK_HIVE(h);
    return h->ops->key_parent(h, k, out);
}

rf_status rf_key_get_info(rf_hive *h, rf_key k, rf_key_info *out)
{
    CHECK_HIVE(h);
    CHECK_ARG(out, "out is NULL");
    return h->ops->key_info(h, k, out);
}

rf_status rf_key_subkeys(rf_hive *h, rf_key k, rf_key *out, size_t cap, size_t *n_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(n_out && (out || cap == 0), "out or n_out is NULL");
    return h->ops->key_subkeys(h, k, out, cap, n_out);
}

rf_status rf_key_values(rf_hive *h, rf_key k, rf_value *out, size_t cap, size_t *n_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(n_out && (out || cap == 0), "out or n_out is NULL");
    return h->ops->key_values(h, k, out, cap, n_out);
}

rf_status rf_key_security(rf_hive *h, rf_key k, const uint8_t **sd_out, size_t *len_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(sd_out && len_out, "sd_out or len_out is NULL");
    return h->ops->key_security(h, k, sd_out, len_out);
}

rf_status rf_value_open_utf16(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars, rf_value *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    CHECK_HIVE(h);
    CHECK_ARG(name || nchars == 0, "name is NULL");
    return h->ops->value_find(h, k, name, nchars, out);
}

rf_status rf_value_open(rf_hive *h, rf_key k, const char *name, size_t len, rf_value *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    CHECK_ARG(name || len == 0, "name is NULL");
    wide w;
    rf_status st = widen(&w, name ? name : "", len, 16383);
    if (st) return st;
    st = rf_value_open_utf16(h, k, w.p, (size_t)w.n, out);
    unwiden(&w);
    return st;
}

#define CHECK_VALUE(v) \
    do { if (RF_UNLIKELY((v) == 0)) \
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "0 is not a value token"); } while (0)

rf_status rf_value_get_info(rf_hive *h, rf_value v, rf_value_info *out)
{
    CHECK_HIVE(h);
    CHECK_ARG(out, "out is NULL");
    CHECK_VALUE(v);
    return h->ops->value_info(h, v, out);
}

rf_status rf_value_read(rf_hive *h, rf_value v, void *buf, size_t cap, const uint8_t **data_out,
                        size_t *len_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(data_out && len_out, "data_out or len_out is NULL");
    CHECK_VALUE(v);
    return h->ops->value_read(h, v, buf, cap, data_out, len_out);
}

rf_status rf_read_values(rf_hive *h, rf_key k, const rf_name *names, size_t n,
                         const uint32_t *types, size_t n_types, uint32_t flags, rf_batch *b)
{
    CHECK_HIVE(h);
    CHECK_ARG(b && b->struct_size >= offsetof(rf_batch, token), "batch is NULL or has a bad struct_size");
    CHECK_ARG(b->cap == 0 || (b->type && b->status && b->offset && b->length), "batch columns are NULL");
    CHECK_ARG(types || n_types == 0, "types is NULL");
    CHECK_ARG(b->arena || b->arena_cap == 0, "arena is NULL");
    if (b->struct_size >= sizeof(rf_batch))
        return h->ops->read_values(h, k, names, n, types, n_types, flags, b);
    /* A caller built against the struct before the token column: run on a
     * full-size copy and hand the outputs back. */
    rf_batch full;
    memset(&full, 0, sizeof full);
    memcpy(&full, b, b->struct_size);
    rf_status st = h->ops->read_values(h, k, names, n, types, n_types, flags, &full);
    b->n = full.n;
    b->arena_used = full.arena_used;
    return st;
}

rf_status rf_hive_mapping(rf_hive *h, const uint8_t **base_out, size_t *len_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(base_out && len_out, "base_out or len_out is NULL");
    *base_out = NULL;
    *len_out = 0;
    return h->ops->mapping ? h->ops->mapping(h, base_out, len_out) : RF_OK;
}

rf_status rf_hive_scan(rf_hive *h, rf_key start, rf_scan *s)
{
    CHECK_HIVE(h);
    CHECK_ARG(s && s->struct_size >= sizeof(rf_scan), "scan is NULL or has a bad struct_size");
    CHECK_ARG(s->key_cap == 0 || (s->key_token && s->key_parent && s->key_depth && s->key_last_write &&
                                  s->key_n_values && s->key_name_off && s->key_name_len && s->key_status),
              "scan key columns are NULL");
    CHECK_ARG(!(s->flags & RF_SCAN_VALUES) || s->value_cap == 0 ||
              (s->value_key && s->value_token && s->value_name_off && s->value_name_len &&
               s->value_type && s->value_offset && s->value_length && s->value_status),
              "scan value columns are NULL");
    if (!h->ops->scan)
        return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "the %s backend cannot scan", h->ops->name);
    return h->ops->scan(h, start, s);
}

rf_status rf_hive_cell(rf_hive *h, uint64_t file_offset, const uint8_t **payload_out,
                       size_t *len_out, int *allocated_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(payload_out && len_out && allocated_out, "an out-parameter is NULL");
    *payload_out = NULL;
    *len_out = 0;
    *allocated_out = 0;
    if (!h->ops->cell)
        return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "the %s backend has no cells", h->ops->name);
    return h->ops->cell(h, file_offset, payload_out, len_out, allocated_out);
}

rf_status rf_hive_deleted(rf_hive *h, rf_deleted *out, size_t cap, size_t *n_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(n_out && (out || cap == 0), "out or n_out is NULL");
    *n_out = 0;
    if (!h->ops->deleted)
        return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "the %s backend keeps no deleted cells",
                        h->ops->name);
    return h->ops->deleted(h, out, cap, n_out);
}

rf_status rf_hive_deleted_read(rf_hive *h, uint64_t record_offset, void *buf, size_t cap, size_t *len_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(len_out && (buf || cap == 0), "buf or len_out is NULL");
    *len_out = 0;
    if (!h->ops->deleted_read)
        return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "the %s backend keeps no deleted cells",
                        h->ops->name);
    return h->ops->deleted_read(h, record_offset, buf, cap, len_out);
}

rf_status rf_hive_slack(rf_hive *h, rf_slack *out, size_t cap, size_t *n_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(n_out && (out || cap == 0), "out or n_out is NULL");
    *n_out = 0;
    if (!h->ops->slack)
        return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "the %s backend has no cells", h->ops->name);
    return h->ops->slack(h, out, cap, n_out);
}

rf_status rf_hive_problems(rf_hive *h, const rf_problem **out, size_t *n_out, uint64_t *total_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(out && n_out, "out or n_out is NULL");
    *out = NULL;
    *n_out = 0;
    if (total_out) *total_out = 0;
    return h->ops->problems ? h->ops->problems(h, out, n_out, total_out) : RF_OK;
}

#ifndef _WIN32
rf_status rf_live_open(uint32_t root, uint32_t view, uint32_t access, rf_hive **out)
{
    if (out) *out = NULL;
    return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0,
                    "the live registry is only reachable on Windows (or through regfast-agent)");
}
#endif
