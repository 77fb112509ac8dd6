/*
 * rf_hive.c — the backend-agnostic half of the C API: argument checks, path
 * splitting, UTF-8 wrappers, the hook point, then one call through the
 * backend's ops table. Nothing here knows what a cell, an NT handle or a
 * frame is; each backend builds its own hives (src/hive/regf_api.c,
 * rf_live_open in src/nt, rf_remote_open in src/remote).
 *
 * Every entry point has the same shape: `if (rfi_hooks_on()) return
 * X_hooked(...); return X(...);` — with no hook installed, one load and a
 * branch predicted not-taken in front of the same inlined code; the record
 * building (rf_hook.c) lives in the separate cold X_hooked, so the fast
 * path carries no stack frame for it (bench/hook_cost.c counts it).
 */
#include <stdlib.h>
#include "core/rf_internal.h"

#define CHECK_HIVE(h) \
    do { if (RF_UNLIKELY(!(h) || !(h)->ops)) \
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "hive handle is NULL or closed"); } while (0)
#define CHECK_ARG(cond, what) \
    do { if (RF_UNLIKELY(!(cond))) \
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "%s", what); } while (0)

/* Longest value name Windows stores (RegSetValueExW: 16,383 characters). */
#define MAX_VALUE_NAME_CHARS 16383u

/* Longest path we accept: 512 levels of 255-char names plus separators. */
#define MAX_PATH_CHARS (512u * 256u)

static rf_status not_supported(rf_hive *h, const char *what)
{
    return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "the %s backend cannot %s", h->ops->name, what);
}

/* ---- hook plumbing ------------------------------------------------------ */

/* Builds the record, runs PRE (a veto skips `call`), runs `call`, lets
 * `after` fill count/bytes, runs POST. `call` and `after` are statements. */
#define HOOK(opcode, h_, k_, name_, nchars_, call, after)                      \
    do {                                                                      \
        rf_op_record r_;                                                      \
        rfi_rec_init(&r_, (opcode), (h_), (k_));                              \
        r_.name = (name_);                                                    \
        r_.name_chars = (nchars_);                                            \
        if (rfi_hook_pre(&r_)) return rfi_vetoed(&r_);                        \
        rf_status st_ = (call);                                               \
        if (st_ == RF_OK) { after; }                                          \
        return rfi_hook_post(&r_, st_);                                       \
    } while (0)

#define NOTHING (void)0

/* ---- hives ---------------------------------------------------------------- */

void rf_hive_close(rf_hive *h)
{
    if (!h || !h->ops) return;
    if (rfi_hooks_on()) {
        rf_op_record r;
        rfi_rec_init(&r, RF_OP_HIVE_CLOSE, h, 0);
        rfi_hook_pre(&r);  /* a close cannot be vetoed: it frees */
        h->ops->close(h);
        free(h);
        r.hive = NULL;     /* freed: the record keeps the backend name only */
        rfi_hook_post(&r, RF_OK);
        return;
    }
    h->ops->close(h);
    free(h);
}

static RF_INLINE rf_status hive_get_info(rf_hive *h, rf_hive_info *out)
{
    CHECK_HIVE(h);
    CHECK_ARG(out, "out is NULL");
    return h->ops->get_info(h, out);
}

static RF_COLD rf_status rf_hive_get_info_hooked(rf_hive *h, rf_hive_info *out)
{
    HOOK(RF_OP_HIVE_INFO, h, 0, NULL, 0, hive_get_info(h, out), NOTHING);
}

rf_status rf_hive_get_info(rf_hive *h, rf_hive_info *out)
{
    if (rfi_hooks_on()) return rf_hive_get_info_hooked(h, out);
    return hive_get_info(h, out);
}

static RF_INLINE rf_status hive_root(rf_hive *h, rf_key *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    CHECK_HIVE(h);
    return h->ops->root(h, out);
}

static RF_COLD rf_status rf_hive_root_hooked(rf_hive *h, rf_key *out)
{
    HOOK(RF_OP_HIVE_ROOT, h, 0, NULL, 0, hive_root(h, out), r_.out_key = *out);
}

rf_status rf_hive_root(rf_hive *h, rf_key *out)
{
    if (rfi_hooks_on()) return rf_hive_root_hooked(h, out);
    return hive_root(h, out);
}

/* ---- keys ----------------------------------------------------------------- */

/* Checks every component of a path (empty, over 255 chars) whichever
 * backend resolves it; start and end drop one leading and one trailing '\'. */
static rf_status check_path(const uint16_t *path, size_t nchars, size_t *start, size_t *end)
{
    size_t s = (nchars && path[0] == '\\') ? 1 : 0; /* "\\Software" is "Software" */
    for (size_t i = s; i < nchars;) {
        size_t j = i;
        while (j < nchars && path[j] != '\\') j++;
        if (j == i || j - i > 255)
            return rfi_fail(RF_E_BAD_PATHNAME, RF_NO_OFFSET, 0,
                            j == i ? "empty component at char %zu of the key path"
                                   : "component at char %zu of the key path is over 255 chars", i);
        i = j + 1; /* a single trailing '\' is tolerated, as RegOpenKeyEx does */
    }
    size_t e = nchars;
    if (e > s && path[e - 1] == '\\') e--;
    *start = s;
    *end = e;
    return RF_OK;
}

static RF_INLINE rf_status key_open_utf16(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars, rf_key *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    CHECK_HIVE(h);
    CHECK_ARG(path || nchars == 0, "path is NULL");
    size_t start, end;
    rf_status st = check_path(path, nchars, &start, &end);
    if (st) return st;
    if (h->ops->key_open) return h->ops->key_open(h, parent, path + start, end - start, out);
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

static RF_COLD rf_status rf_key_open_utf16_hooked(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars, rf_key *out)
{
    HOOK(RF_OP_KEY_OPEN, h, parent, path, nchars, key_open_utf16(h, parent, path, nchars, out),
         r_.out_key = *out);
}

rf_status rf_key_open_utf16(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars, rf_key *out)
{
    if (rfi_hooks_on()) return rf_key_open_utf16_hooked(h, parent, path, nchars, out);
    return key_open_utf16(h, parent, path, nchars, out);
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
    st = rf_key_open_utf16(h, parent, w.p, (size_t)w.n, out);   /* hooked there */
    unwiden(&w);
    return st;
}

static RF_INLINE rf_status key_child(rf_hive *h, rf_key parent, const uint16_t *name, size_t nchars, rf_key *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    CHECK_HIVE(h);
    CHECK_ARG(name || nchars == 0, "name is NULL");
    return h->ops->key_child(h, parent, name, nchars, out);
}

static RF_COLD rf_status rf_key_child_hooked(rf_hive *h, rf_key parent, const uint16_t *name, size_t nchars, rf_key *out)
{
    HOOK(RF_OP_KEY_CHILD, h, parent, name, nchars, key_child(h, parent, name, nchars, out), r_.out_key = *out);
}

rf_status rf_key_child(rf_hive *h, rf_key parent, const uint16_t *name, size_t nchars, rf_key *out)
{
    if (rfi_hooks_on()) return rf_key_child_hooked(h, parent, name, nchars, out);
    return key_child(h, parent, name, nchars, out);
}

static RF_INLINE rf_status key_name(rf_hive *h, rf_key k, rf_name *out)
{
    CHECK_HIVE(h);
    CHECK_ARG(out, "out is NULL");
    return h->ops->key_name(h, k, out);
}

static RF_COLD rf_status rf_key_name_hooked(rf_hive *h, rf_key k, rf_name *out)
{
    HOOK(RF_OP_KEY_NAME, h, k, NULL, 0, key_name(h, k, out), r_.out_name = *out);
}

rf_status rf_key_name(rf_hive *h, rf_key k, rf_name *out)
{
    if (rfi_hooks_on()) return rf_key_name_hooked(h, k, out);
    return key_name(h, k, out);
}

static RF_INLINE rf_status key_class(rf_hive *h, rf_key k, rf_name *out)
{
    CHECK_HIVE(h);
    CHECK_ARG(out, "out is NULL");
    return h->ops->key_class(h, k, out);
}

static RF_COLD rf_status rf_key_class_hooked(rf_hive *h, rf_key k, rf_name *out)
{
    HOOK(RF_OP_KEY_CLASS, h, k, NULL, 0, key_class(h, k, out), NOTHING);
}

rf_status rf_key_class(rf_hive *h, rf_key k, rf_name *out)
{
    if (rfi_hooks_on()) return rf_key_class_hooked(h, k, out);
    return key_class(h, k, out);
}

static RF_INLINE rf_status key_parent(rf_hive *h, rf_key k, rf_key *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    CHECK_HIVE(h);
    return h->ops->key_parent(h, k, out);
}

static RF_COLD rf_status rf_key_parent_hooked(rf_hive *h, rf_key k, rf_key *out)
{
    HOOK(RF_OP_KEY_PARENT, h, k, NULL, 0, key_parent(h, k, out), r_.out_key = *out);
}

rf_status rf_key_parent(rf_hive *h, rf_key k, rf_key *out)
{
    if (rfi_hooks_on()) return rf_key_parent_hooked(h, k, out);
    return key_parent(h, k, out);
}

rf_status rf_key_close(rf_hive *h, rf_key k)
{
    CHECK_HIVE(h);
    if (rfi_hooks_on()) {
        rf_op_record r;
        rfi_rec_init(&r, RF_OP_KEY_CLOSE, h, k);
        rfi_hook_pre(&r);  /* a close cannot be vetoed (see regfast.h) */
        return rfi_hook_post(&r, RF_OK);
    }
    return RF_OK;
}

static RF_INLINE rf_status key_get_info(rf_hive *h, rf_key k, rf_key_info *out)
{
    CHECK_HIVE(h);
    CHECK_ARG(out, "out is NULL");
    return h->ops->key_info(h, k, out);
}

static RF_COLD rf_status rf_key_get_info_hooked(rf_hive *h, rf_key k, rf_key_info *out)
{
    HOOK(RF_OP_KEY_INFO, h, k, NULL, 0, key_get_info(h, k, out), NOTHING);
}

rf_status rf_key_get_info(rf_hive *h, rf_key k, rf_key_info *out)
{
    if (rfi_hooks_on()) return rf_key_get_info_hooked(h, k, out);
    return key_get_info(h, k, out);
}

static RF_INLINE rf_status key_is_link(rf_hive *h, rf_key k, int *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    CHECK_HIVE(h);
    if (!RF_OPS_HAS5(h->ops, key_is_link))
        return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "the %s backend cannot tell a link from a key",
                        h->ops->name);
    return h->ops->key_is_link(h, k, out);
}

static RF_COLD rf_status rf_key_is_link_hooked(rf_hive *h, rf_key k, int *out)
{
    HOOK(RF_OP_KEY_IS_LINK, h, k, NULL, 0, key_is_link(h, k, out), NOTHING);
}

rf_status rf_key_is_link(rf_hive *h, rf_key k, int *out)
{
    if (rfi_hooks_on()) return rf_key_is_link_hooked(h, k, out);
    return key_is_link(h, k, out);
}

static RF_INLINE rf_status key_subkeys(rf_hive *h, rf_key k, rf_key *out, size_t cap, size_t *n_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(n_out && (out || cap == 0), "out or n_out is NULL");
    return h->ops->key_subkeys(h, k, out, cap, n_out);
}

static RF_COLD rf_status rf_key_subkeys_hooked(rf_hive *h, rf_key k, rf_key *out, size_t cap, size_t *n_out)
{
    HOOK(RF_OP_KEY_SUBKEYS, h, k, NULL, 0, key_subkeys(h, k, out, cap, n_out),
         { r_.count = *n_out; r_.out_keys = cap ? out : NULL; });
}

rf_status rf_key_subkeys(rf_hive *h, rf_key k, rf_key *out, size_t cap, size_t *n_out)
{
    if (rfi_hooks_on()) return rf_key_subkeys_hooked(h, k, out, cap, n_out);
    return key_subkeys(h, k, out, cap, n_out);
}

static RF_INLINE rf_status key_subkeys_hinted(rf_hive *h, rf_key k, rf_key *out, uint8_t *hints, size_t cap,
                                             size_t *n_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(n_out && ((out && hints) || cap == 0), "out, hints or n_out is NULL");
    if (RF_OPS_HAS5(h->ops, key_subkeys_hinted)) return h->ops->key_subkeys_hinted(h, k, out, hints, cap, n_out);
    rf_status st = h->ops->key_subkeys(h, k, out, cap, n_out);
    if (st == RF_OK && *n_out) memset(hints, 0, *n_out);
    return st;
}

static RF_COLD rf_status rf_key_subkeys_hinted_hooked(rf_hive *h, rf_key k, rf_key *out, uint8_t *hints, size_t cap,
                                                      size_t *n_out)
{
    HOOK(RF_OP_KEY_SUBKEYS, h, k, NULL, 0, key_subkeys_hinted(h, k, out, hints, cap, n_out),
         { r_.count = *n_out; r_.out_keys = cap ? out : NULL; });
}

rf_status rf_key_subkeys_hinted(rf_hive *h, rf_key k, rf_key *out, uint8_t *hints, size_t cap, size_t *n_out)
{
    if (rfi_hooks_on()) return rf_key_subkeys_hinted_hooked(h, k, out, hints, cap, n_out);
    return key_subkeys_hinted(h, k, out, hints, cap, n_out);
}

static RF_INLINE rf_status key_values(rf_hive *h, rf_key k, rf_value *out, size_t cap, size_t *n_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(n_out && (out || cap == 0), "out or n_out is NULL");
    return h->ops->key_values(h, k, out, cap, n_out);
}

static RF_COLD rf_status rf_key_values_hooked(rf_hive *h, rf_key k, rf_value *out, size_t cap, size_t *n_out)
{
    HOOK(RF_OP_KEY_VALUES, h, k, NULL, 0, key_values(h, k, out, cap, n_out), r_.count = *n_out);
}

rf_status rf_key_values(rf_hive *h, rf_key k, rf_value *out, size_t cap, size_t *n_out)
{
    if (rfi_hooks_on()) return rf_key_values_hooked(h, k, out, cap, n_out);
    return key_values(h, k, out, cap, n_out);
}

static RF_INLINE rf_status key_security(rf_hive *h, rf_key k, const uint8_t **sd_out, size_t *len_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(sd_out && len_out, "sd_out or len_out is NULL");
    return h->ops->key_security(h, k, sd_out, len_out);
}

static RF_COLD rf_status rf_key_security_hooked(rf_hive *h, rf_key k, const uint8_t **sd_out, size_t *len_out)
{
    HOOK(RF_OP_KEY_SECURITY, h, k, NULL, 0, key_security(h, k, sd_out, len_out), r_.bytes = *len_out);
}

rf_status rf_key_security(rf_hive *h, rf_key k, const uint8_t **sd_out, size_t *len_out)
{
    if (rfi_hooks_on()) return rf_key_security_hooked(h, k, sd_out, len_out);
    return key_security(h, k, sd_out, len_out);
}

static RF_INLINE rf_status key_get_security(rf_hive *h, rf_key k, uint32_t si, void *buf, size_t cap, size_t *len_out,
                                  uint32_t *si_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(len_out && (buf || cap == 0), "buf or len_out is NULL");
    *len_out = 0;
    if (si_out) *si_out = 0;
    CHECK_ARG(!(si & ~(uint32_t)(RF_SI_OWNER | RF_SI_GROUP | RF_SI_DACL | RF_SI_SACL)),
              "si has bits other than RF_SI_OWNER/GROUP/DACL/SACL");
    if (RF_OPS_HAS(h->ops, key_get_security)) return h->ops->key_get_security(h, k, si, buf, cap, len_out, si_out);
    /* A backend that stores whole descriptors (hive files): keep the parts asked for. */
    const uint8_t *sd;
    size_t len;
    rf_status st = h->ops->key_security(h, k, &sd, &len);
    if (st) return st;
    st = rfi_sd_filter(sd, len, si, buf, cap, len_out, si_out);
    if (st == RF_E_INVALID_DATA) /* the file's sk cell holds a broken descriptor */
        return rfi_fail(RF_E_CORRUPT, RF_NO_OFFSET, 0, "the key's security descriptor is malformed: %s",
                        rf_last_error()->message);
    return st;
}

static RF_COLD rf_status rf_key_get_security_hooked(rf_hive *h, rf_key k, uint32_t si, void *buf, size_t cap, size_t *len_out,
                              uint32_t *si_out)
{
    HOOK(RF_OP_KEY_SECURITY, h, k, NULL, 0, key_get_security(h, k, si, buf, cap, len_out, si_out),
         r_.bytes = *len_out);
}

rf_status rf_key_get_security(rf_hive *h, rf_key k, uint32_t si, void *buf, size_t cap, size_t *len_out,
                              uint32_t *si_out)
{
    if (rfi_hooks_on()) return rf_key_get_security_hooked(h, k, si, buf, cap, len_out, si_out);
    return key_get_security(h, k, si, buf, cap, len_out, si_out);
}

/* ---- values --------------------------------------------------------------- */

static RF_INLINE rf_status value_open_utf16(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars, rf_value *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    CHECK_HIVE(h);
    CHECK_ARG(name || nchars == 0, "name is NULL");
    return h->ops->value_find(h, k, name, nchars, out);
}

static RF_COLD rf_status rf_value_open_utf16_hooked(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars, rf_value *out)
{
    HOOK(RF_OP_VALUE_OPEN, h, k, name, nchars, value_open_utf16(h, k, name, nchars, out), r_.value = *out);
}

rf_status rf_value_open_utf16(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars, rf_value *out)
{
    if (rfi_hooks_on()) return rf_value_open_utf16_hooked(h, k, name, nchars, out);
    return value_open_utf16(h, k, name, nchars, out);
}

rf_status rf_value_open(rf_hive *h, rf_key k, const char *name, size_t len, rf_value *out)
{
    CHECK_ARG(out, "out is NULL");
    *out = 0;
    CHECK_ARG(name || len == 0, "name is NULL");
    wide w;
    rf_status st = widen(&w, name ? name : "", len, 16383);
    if (st) return st;
    st = rf_value_open_utf16(h, k, w.p, (size_t)w.n, out);   /* hooked there */
    unwiden(&w);
    return st;
}

#define CHECK_VALUE(v) \
    do { if (RF_UNLIKELY((v) == 0)) \
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "0 is not a value token"); } while (0)

static RF_INLINE rf_status value_get_info(rf_hive *h, rf_value v, rf_value_info *out)
{
    CHECK_HIVE(h);
    CHECK_ARG(out, "out is NULL");
    CHECK_VALUE(v);
    return h->ops->value_info(h, v, out);
}

static RF_COLD rf_status rf_value_get_info_hooked(rf_hive *h, rf_value v, rf_value_info *out)
{
    rf_op_record r;
    rfi_rec_init(&r, RF_OP_VALUE_INFO, h, 0);
    r.value = v;
    if (rfi_hook_pre(&r)) return rfi_vetoed(&r);
    return rfi_hook_post(&r, value_get_info(h, v, out));
}

rf_status rf_value_get_info(rf_hive *h, rf_value v, rf_value_info *out)
{
    if (rfi_hooks_on()) return rf_value_get_info_hooked(h, v, out);
    return value_get_info(h, v, out);
}

static RF_INLINE rf_status value_read(rf_hive *h, rf_value v, void *buf, size_t cap, const uint8_t **data_out,
                            size_t *len_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(data_out && len_out, "data_out or len_out is NULL");
    CHECK_VALUE(v);
    return h->ops->value_read(h, v, buf, cap, data_out, len_out);
}

static RF_COLD rf_status rf_value_read_hooked(rf_hive *h, rf_value v, void *buf, size_t cap, const uint8_t **data_out,
                        size_t *len_out)
{
    rf_op_record r;
    rfi_rec_init(&r, RF_OP_VALUE_READ, h, 0);
    r.value = v;
    if (rfi_hook_pre(&r)) return rfi_vetoed(&r);
    rf_status st = value_read(h, v, buf, cap, data_out, len_out);
    if (!st) r.bytes = *len_out;
    return rfi_hook_post(&r, st);
}

rf_status rf_value_read(rf_hive *h, rf_value v, void *buf, size_t cap, const uint8_t **data_out,
                        size_t *len_out)
{
    if (rfi_hooks_on()) return rf_value_read_hooked(h, v, buf, cap, data_out, len_out);
    return value_read(h, v, buf, cap, data_out, len_out);
}

static RF_INLINE rf_status read_values(rf_hive *h, rf_key k, const rf_name *names, size_t n,
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

static RF_COLD rf_status rf_read_values_hooked(rf_hive *h, rf_key k, const rf_name *names, size_t n,
                         const uint32_t *types, size_t n_types, uint32_t flags, rf_batch *b)
{
    rf_op_record r;
    rfi_rec_init(&r, RF_OP_READ_VALUES, h, k);
    if (rfi_hook_pre(&r)) return rfi_vetoed(&r);
    rf_status st = read_values(h, k, names, n, types, n_types, flags, b);
    if (!st) {
        r.count = b->n;
        for (size_t i = 0; i < b->n; i++)
            if (b->status[i] == 0) r.bytes += b->length[i];
    }
    return rfi_hook_post(&r, st);
}

rf_status rf_read_values(rf_hive *h, rf_key k, const rf_name *names, size_t n,
                         const uint32_t *types, size_t n_types, uint32_t flags, rf_batch *b)
{
    if (rfi_hooks_on()) return rf_read_values_hooked(h, k, names, n, types, n_types, flags, b);
    return read_values(h, k, names, n, types, n_types, flags, b);
}

rf_status rf_hive_mapping(rf_hive *h, const uint8_t **base_out, size_t *len_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(base_out && len_out, "base_out or len_out is NULL");
    *base_out = NULL;
    *len_out = 0;
    return h->ops->mapping ? h->ops->mapping(h, base_out, len_out) : RF_OK;
}

static RF_INLINE rf_status hive_scan(rf_hive *h, rf_key start, rf_scan *s)
{
    CHECK_HIVE(h);
    CHECK_ARG(s && s->struct_size >= sizeof(rf_scan), "scan is NULL or has a bad struct_size");
    CHECK_ARG(s->key_cap == 0 || (s->key_token && s->key_parent && s->key_last_write &&
                                  s->key_name_len && s->key_status),
              "scan key columns are NULL");
    CHECK_ARG(!(s->flags & RF_SCAN_VALUES) || s->value_cap == 0 ||
              (s->value_key && s->value_token && s->value_name_len &&
               s->value_type && s->value_offset && s->value_length && s->value_status),
              "scan value columns are NULL");
    if (!h->ops->scan) return not_supported(h, "scan");
    return h->ops->scan(h, start, s);
}

static RF_COLD rf_status rf_hive_scan_hooked(rf_hive *h, rf_key start, rf_scan *s)
{
    HOOK(RF_OP_SCAN, h, start, NULL, 0, hive_scan(h, start, s), r_.count = s->n_keys);
}

rf_status rf_hive_scan(rf_hive *h, rf_key start, rf_scan *s)
{
    if (rfi_hooks_on()) return rf_hive_scan_hooked(h, start, s);
    return hive_scan(h, start, s);
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
    if (!RF_OPS_HAS(h->ops, deleted_read))
        return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "the %s backend keeps no deleted cells",
                        h->ops->name);
    return h->ops->deleted_read(h, record_offset, buf, cap, len_out);
}

rf_status rf_hive_slack(rf_hive *h, rf_slack *out, size_t cap, size_t *n_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(n_out && (out || cap == 0), "out or n_out is NULL");
    *n_out = 0;
    if (!RF_OPS_HAS(h->ops, slack))
        return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "the %s backend has no cells", h->ops->name);
    return h->ops->slack(h, out, cap, n_out);
}

static rf_status record_slack(rf_hive *h, uint64_t token, int is_value, rf_slack out[2])
{
    CHECK_HIVE(h);
    CHECK_ARG(out, "out is NULL");
    memset(out, 0, (is_value ? 2 : 1) * sizeof *out);
    out[0].cell = out[0].offset = RF_NO_OFFSET;
    if (is_value) out[1].cell = out[1].offset = RF_NO_OFFSET;
    if (token == 0)
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "0 is not a %s token", is_value ? "value" : "key");
    if (!RF_OPS_HAS4(h->ops, record_slack))
        return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "the %s backend has no cells", h->ops->name);
    return h->ops->record_slack(h, token, is_value, out);
}

rf_status rf_key_slack(rf_hive *h, rf_key k, rf_slack *out) { return record_slack(h, k, 0, out); }

rf_status rf_value_slack(rf_hive *h, rf_value v, rf_slack out[2]) { return record_slack(h, v, 1, out); }

rf_status rf_hive_token_offset(rf_hive *h, uint64_t token, uint64_t *file_offset_out)
{
    CHECK_HIVE(h);
    CHECK_ARG(file_offset_out, "file_offset_out is NULL");
    *file_offset_out = RF_NO_OFFSET;
    if (!RF_OPS_HAS4(h->ops, token_offset))
        return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "the %s backend's tokens are not cells",
                        h->ops->name);
    return h->ops->token_offset(h, token, file_offset_out);
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

/* ---- writes ---------------------------------------------------------------- */

static RF_INLINE rf_status value_set(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars, uint32_t type,
                           const void *data, size_t len)
{
    CHECK_HIVE(h);
    CHECK_ARG(name || nchars == 0, "name is NULL");
    /* Windows' limit, said here for every backend (the agent refused the
     * frame as malformed, the in-process backend left it to the kernel) */
    if (nchars > MAX_VALUE_NAME_CHARS)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                        "value name of %zu characters: a value name has at most 16,383", nchars);
    CHECK_ARG(data || len == 0, "data is NULL");
    CHECK_ARG(len <= UINT32_MAX, "value data over 4 GiB");
    if (!RF_OPS_HAS(h->ops, value_set)) return not_supported(h, "write values (a hive file is read-only)");
    return h->ops->value_set(h, k, name, nchars, type, data, len);
}

static RF_COLD rf_status rf_value_set_hooked(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars, uint32_t type,
                       const void *data, size_t len)
{
    HOOK(RF_OP_VALUE_SET, h, k, name, nchars, value_set(h, k, name, nchars, type, data, len), r_.bytes = len);
}

rf_status rf_value_set(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars, uint32_t type,
                       const void *data, size_t len)
{
    if (rfi_hooks_on()) return rf_value_set_hooked(h, k, name, nchars, type, data, len);
    return value_set(h, k, name, nchars, type, data, len);
}

static RF_INLINE rf_status value_delete(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars)
{
    CHECK_HIVE(h);
    CHECK_ARG(name || nchars == 0, "name is NULL");
    if (!RF_OPS_HAS(h->ops, value_delete)) return not_supported(h, "delete values (a hive file is read-only)");
    return h->ops->value_delete(h, k, name, nchars);
}

static RF_COLD rf_status rf_value_delete_hooked(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars)
{
    HOOK(RF_OP_VALUE_DELETE, h, k, name, nchars, value_delete(h, k, name, nchars), NOTHING);
}

rf_status rf_value_delete(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars)
{
    if (rfi_hooks_on()) return rf_value_delete_hooked(h, k, name, nchars);
    return value_delete(h, k, name, nchars);
}

static RF_INLINE rf_status key_create(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars, uint32_t flags,
                            rf_key *out, uint32_t *disposition)
{
    if (out) *out = 0;
    if (disposition) *disposition = 0;
    CHECK_HIVE(h);
    CHECK_ARG(path || nchars == 0, "path is NULL");
    CHECK_ARG(!(flags & ~RF_CREATE_VOLATILE), "flags has bits other than RF_CREATE_VOLATILE");
    size_t start, end;
    rf_status st = check_path(path, nchars, &start, &end);
    if (st) return st;
    CHECK_ARG(end > start, "an empty path: give the key to create");
    if (!RF_OPS_HAS(h->ops, key_create)) return not_supported(h, "create keys (a hive file is read-only)");
    rf_key k = 0;
    uint32_t disp = 0;
    st = h->ops->key_create(h, parent, path + start, end - start, flags, &k, &disp);
    if (!st) {
        if (out) *out = k;
        if (disposition) *disposition = disp;
    }
    return st;
}

static RF_COLD rf_status rf_key_create_hooked(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars, uint32_t flags,
                        rf_key *out, uint32_t *disposition)
{
    HOOK(RF_OP_KEY_CREATE, h, parent, path, nchars, key_create(h, parent, path, nchars, flags, out, disposition),
         r_.out_key = out ? *out : 0);
}

rf_status rf_key_create(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars, uint32_t flags,
                        rf_key *out, uint32_t *disposition)
{
    if (rfi_hooks_on()) return rf_key_create_hooked(h, parent, path, nchars, flags, out, disposition);
    return key_create(h, parent, path, nchars, flags, out, disposition);
}

static RF_INLINE rf_status key_delete(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars, uint32_t flags)
{
    CHECK_HIVE(h);
    CHECK_ARG(path || nchars == 0, "path is NULL");
    CHECK_ARG(!(flags & ~RF_DELETE_TREE), "flags has bits other than RF_DELETE_TREE");
    size_t start, end;
    rf_status st = check_path(path, nchars, &start, &end);
    if (st) return st;
    CHECK_ARG(end > start, "an empty path: give the subkey to delete (a key does not delete itself)");
    if (!RF_OPS_HAS(h->ops, key_delete)) return not_supported(h, "delete keys (a hive file is read-only)");
    return h->ops->key_delete(h, parent, path + start, end - start, flags);
}

static RF_COLD rf_status rf_key_delete_hooked(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars, uint32_t flags)
{
    HOOK(RF_OP_KEY_DELETE, h, parent, path, nchars, key_delete(h, parent, path, nchars, flags), NOTHING);
}

rf_status rf_key_delete(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars, uint32_t flags)
{
    if (rfi_hooks_on()) return rf_key_delete_hooked(h, parent, path, nchars, flags);
    return key_delete(h, parent, path, nchars, flags);
}

static RF_INLINE rf_status key_rename(rf_hive *h, rf_key k, const uint16_t *new_name, size_t nchars)
{
    CHECK_HIVE(h);
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
    if (!RF_OPS_HAS(h->ops, key_rename)) return not_supported(h, "rename keys (a hive file is read-only)");
    return h->ops->key_rename(h, k, new_name, nchars);
}

static RF_COLD rf_status rf_key_rename_hooked(rf_hive *h, rf_key k, const uint16_t *new_name, size_t nchars)
{
    HOOK(RF_OP_KEY_RENAME, h, k, new_name, nchars, key_rename(h, k, new_name, nchars), NOTHING);
}

rf_status rf_key_rename(rf_hive *h, rf_key k, const uint16_t *new_name, size_t nchars)
{
    if (rfi_hooks_on()) return rf_key_rename_hooked(h, k, new_name, nchars);
    return key_rename(h, k, new_name, nchars);
}

static RF_INLINE rf_status key_set_security(rf_hive *h, rf_key k, uint32_t si, const void *sd, size_t len)
{
    CHECK_HIVE(h);
    CHECK_ARG(!(si & ~(uint32_t)(RF_SI_OWNER | RF_SI_GROUP | RF_SI_DACL | RF_SI_SACL)),
              "si has bits other than RF_SI_OWNER/GROUP/DACL/SACL");
    uint32_t present;
    rf_status st = rfi_sd_check(sd, len, &present);
    if (st) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "%s", rf_last_error()->message);
    if (si & ~present)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                        "si 0x%x asks for parts the descriptor lacks (it has 0x%x)", si, present);
    if (!present) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "the descriptor has no part to set");
    if (!RF_OPS_HAS(h->ops, key_set_security))
        return not_supported(h, "set security descriptors (a hive file is read-only)");
    return h->ops->key_set_security(h, k, si ? si : present, sd, len);
}

static RF_COLD rf_status rf_key_set_security_hooked(rf_hive *h, rf_key k, uint32_t si, const void *sd, size_t len)
{
    HOOK(RF_OP_KEY_SET_SECURITY, h, k, NULL, 0, key_set_security(h, k, si, sd, len), r_.bytes = len);
}

rf_status rf_key_set_security(rf_hive *h, rf_key k, uint32_t si, const void *sd, size_t len)
{
    if (rfi_hooks_on()) return rf_key_set_security_hooked(h, k, si, sd, len);
    return key_set_security(h, k, si, sd, len);
}

/* ---- watches (rf_key_snapshot is in rf_snapshot.c) ------------------------ */

static RF_INLINE rf_status watch_open(rf_hive *h, const rf_key *keys, size_t n, const rf_watch_opts *opts,
                            rf_bytes *baselines, rf_watch **out)
{
    CHECK_ARG(out, "out is NULL");
    *out = NULL;
    CHECK_HIVE(h);
    CHECK_ARG(keys && n > 0, "no key to watch");
    rf_watch_opts o = RF_WATCH_OPTS_INIT;
    if (opts) {
        CHECK_ARG(opts->struct_size >= sizeof o, "opts has a bad struct_size");
        o = *opts;
    }
    CHECK_ARG(!(o.flags & ~(uint32_t)(RF_SNAP_SUBTREE | RF_SNAP_KEEP_DATA)),
              "opts.flags has bits other than RF_SNAP_SUBTREE/KEEP_DATA");
    if (o.filter == 0 || (o.filter & ~RF_NOTIFY_ALL))
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                        "notify filter 0x%x: give NAME (1), ATTRIBUTES (2), LAST_SET (4) and/or SECURITY (8)",
                        o.filter);
    CHECK_ARG(o.delay_ms <= 10000, "delay_ms over 10 s");
    if (!RF_OPS_HAS(h->ops, watch_open)) return not_supported(h, "watch keys (nothing changes a hive file)");
    rf_status st = h->ops->watch_open(h, keys, n, &o, baselines, out);
    if (st) *out = NULL;
    return st;
}

static RF_COLD rf_status rf_watch_open_hooked(rf_hive *h, const rf_key *keys, size_t n, const rf_watch_opts *opts,
                        rf_bytes *baselines, rf_watch **out)
{
    HOOK(RF_OP_WATCH_OPEN, h, n ? keys[0] : 0, NULL, 0, watch_open(h, keys, n, opts, baselines, out),
         r_.count = n);
}

rf_status rf_watch_open(rf_hive *h, const rf_key *keys, size_t n, const rf_watch_opts *opts,
                        rf_bytes *baselines, rf_watch **out)
{
    if (rfi_hooks_on()) return rf_watch_open_hooked(h, keys, n, opts, baselines, out);
    return watch_open(h, keys, n, opts, baselines, out);
}

rf_status rf_watch_next(rf_watch *w, uint32_t timeout_ms, rf_watch_event *ev)
{
    if (!w || !w->hive || !w->hive->ops)
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "watch handle is NULL or closed");
    CHECK_ARG(ev, "ev is NULL");
    memset(ev, 0, sizeof *ev);
    return w->hive->ops->watch_next(w, timeout_ms, ev);
}

void rf_watch_stop(rf_watch *w)
{
    if (w && w->hive && w->hive->ops) w->hive->ops->watch_stop(w);
}

void rf_watch_close(rf_watch *w)
{
    if (w && w->hive && w->hive->ops) w->hive->ops->watch_close(w);
}

#ifndef _WIN32
rf_status rf_live_open(uint32_t root, uint32_t view, uint32_t access, rf_hive **out)
{
    (void)root; (void)view; (void)access;
    if (out) *out = NULL;
    return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0,
                    "the live registry is only reachable on Windows (or through regfast-agent)");
}
#endif
