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
    rf_key k = parent;
    if (k == 0 && (st = h->ops->root(h, &k)) != RF_OK) return st;
    size_t i = 0;
    if (nchars && path[0] == '\\') i = 1; /* "\Software" == "Software" */
    while (i < nchars) {
        size_t j = i;
        while (j < nchars && path[j] != '\\') j++;
        if (j == i || j - i > 255)
            return rfi_fail(RF_E_BAD_PATHNAME, RF_NO_OFFSET, 0,
                            j == i ? "empty component at char %zu of the key path"
                                   : "component at char %zu of the key path is over 255 chars", i);
        rf_key child;
        if ((st = h->ops->key_child(h, k, path + i, j - i, &child)) != RF_OK) {
            if (st == RF_E_NOT_FOUND)
                return rfi_fail(st, RF_NO_OFFSET, 0, "key path not found: component at char %zu is missing", i);
            return st;
        }
        k = child;
        i = j + 1; /* a single trailing '\' is tolerated, as RegOpenKeyEx does */
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

rf_status rf_value_get_info(rf_hive *h, rf_value v, rf_value_info *out)
{
    CHECK_HIVE(h);
    CHECK_ARG(out, "out is NULL");
    return h->ops->value_info(h, v, out);
}

rf_status rf_value_read(rf_hive *h, rf_value v, void *buf, size_t cap, const uint8_t **data_out,
                        size_t *len_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(data_out && len_out, "data_out or len_out is NULL");
    return h->ops->value_read(h, v, buf, cap, data_out, len_out);
}
