/*
 * rf_hook.c — hooks and profiling at the rf_* entry points (regfast.h,
 * "Hooks"): the installed callback, the typed record, the clock.
 *
 * The entry points (rf_hive.c) test rfi_hooks_on() first: with no hook
 * installed that is one acquire load and a branch predicted not-taken, and
 * nothing else runs (bench/hook_cost.c measures it against a direct call of
 * the backend slot). Installing swaps one pointer to an immutable
 * {fn, ctx, phases} block; old blocks are kept (a caller may still be using
 * one) in a small static array, so installing never frees what a running
 * call reads.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/rf_internal.h"

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#else
#include <time.h>
#endif

rfi_hook_state *volatile rfi_hook_current;

/* Install slots: a hook set 64 times over cycles through them; a caller of
 * the first one would have to be stalled across 63 installs to see its block
 * reused, and even then it reads a valid {fn, ctx} (of a later install). */
static rfi_hook_state hook_slots[64];
static unsigned hook_next;

uint64_t rfi_now_ns(void)
{
#ifdef _WIN32
    static LARGE_INTEGER freq;
    LARGE_INTEGER t;
    if (!freq.QuadPart) QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&t);
    /* split to keep the multiplication in 64 bits */
    uint64_t q = (uint64_t)t.QuadPart / (uint64_t)freq.QuadPart, r = (uint64_t)t.QuadPart % (uint64_t)freq.QuadPart;
    return q * 1000000000u + r * 1000000000u / (uint64_t)freq.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

void rf_hook_set(rf_hook_fn fn, void *ctx, uint32_t phases)
{
    rfi_hook_state *s = NULL;
    if (fn && (phases & (RF_HOOK_PRE | RF_HOOK_POST))) {
        s = &hook_slots[hook_next++ % (sizeof hook_slots / sizeof hook_slots[0])];
        s->fn = fn;
        s->ctx = ctx;
        s->phases = phases;
    }
#if defined(__GNUC__) || defined(__clang__)
    __atomic_store_n(&rfi_hook_current, s, __ATOMIC_RELEASE);
#else
    rfi_hook_current = s;
#endif
}

static const char *const op_names[RF_OP_MAX] = {
    [RF_OP_HIVE_OPEN] = "hive_open",       [RF_OP_HIVE_CLOSE] = "hive_close",
    [RF_OP_HIVE_INFO] = "hive_info",       [RF_OP_HIVE_ROOT] = "hive_root",
    [RF_OP_KEY_OPEN] = "key_open",         [RF_OP_KEY_CHILD] = "key_child",
    [RF_OP_KEY_NAME] = "key_name",         [RF_OP_KEY_CLASS] = "key_class",
    [RF_OP_KEY_PARENT] = "key_parent",     [RF_OP_KEY_INFO] = "key_info",
    [RF_OP_KEY_SUBKEYS] = "key_subkeys",   [RF_OP_KEY_VALUES] = "key_values",
    [RF_OP_KEY_SECURITY] = "key_security", [RF_OP_VALUE_OPEN] = "value_open",
    [RF_OP_VALUE_INFO] = "value_info",     [RF_OP_VALUE_READ] = "value_read",
    [RF_OP_READ_VALUES] = "read_values",   [RF_OP_SCAN] = "scan",
    [RF_OP_VALUE_SET] = "value_set",       [RF_OP_VALUE_DELETE] = "value_delete",
    [RF_OP_KEY_CREATE] = "key_create",     [RF_OP_KEY_DELETE] = "key_delete",
    [RF_OP_KEY_RENAME] = "key_rename",     [RF_OP_KEY_SET_SECURITY] = "key_set_security",
    [RF_OP_SNAPSHOT] = "snapshot",         [RF_OP_WATCH_OPEN] = "watch_open",
    [RF_OP_KEY_CLOSE] = "key_close",       [RF_OP_REQUEST] = "remote_request",
    [RF_OP_KEY_IS_LINK] = "key_is_link",
};

const char *rf_op_name(uint32_t op)
{
    return op < RF_OP_MAX && op_names[op] ? op_names[op] : "?";
}

void rfi_rec_init(rf_op_record *r, uint32_t op, rf_hive *h, rf_key k)
{
    memset(r, 0, sizeof *r);
    r->op = op;
    r->hive = h;
    r->backend = h && h->ops ? h->ops->name : NULL;
    r->key = k;
    if (op >= RF_OP_VALUE_SET && op <= RF_OP_KEY_SET_SECURITY) r->flags = RF_OPREC_WRITE;
    /* the count before the call, + 1 (0: not taken); rfi_hook_post subtracts */
    if (h && h->ops && RF_OPS_HAS3(h->ops, requests)) r->round_trips = h->ops->requests(h) + 1;
    r->start_ns = rfi_now_ns();
}

static rfi_hook_state *state(void)
{
#if defined(__GNUC__) || defined(__clang__)
    return __atomic_load_n(&rfi_hook_current, __ATOMIC_ACQUIRE);
#else
    return rfi_hook_current;
#endif
}

int rfi_hook_pre(rf_op_record *r)
{
    rfi_hook_state *s = state();
    r->phase = RF_HOOK_PRE;
    if (!s || !(s->phases & RF_HOOK_PRE)) return 0;
    return s->fn(s->ctx, r) != 0;
}

static rf_status hook_post(rf_op_record *r, rf_status st, int vetoed)
{
    rfi_hook_state *s = state();
    r->phase = RF_HOOK_POST;
    r->status = st;
    /* A vetoed operation did not run: its duration is 0, not the time the
     * PRE hooks took (that is the hooks' cost, not the registry's; a
     * profile summing durations must not charge a refused write). */
    r->duration_ns = vetoed ? 0 : rfi_now_ns() - r->start_ns;
    /* (a close's record has no hive any more: its round trips are not counted) */
    if (r->round_trips)
        r->round_trips = r->hive && RF_OPS_HAS3(r->hive->ops, requests)
                             ? r->hive->ops->requests(r->hive) + 1 - r->round_trips : 0;
    if (s && (s->phases & RF_HOOK_POST)) {
        if (!st) {
            s->fn(s->ctx, r);
            return st;
        }
        /* the hook may call rf_* (hooked too) and fail: keep the caller's
         * error. Copied back as a struct: re-formatting it cost more than
         * the call itself on a walk's many RF_E_MORE_DATA count queries.
         * (rf_last_error points at this thread's own, writable, error.) */
        rf_error saved = *rf_last_error();
        s->fn(s->ctx, r);
        *(rf_error *)rf_last_error() = saved;
    }
    return st;
}

rf_status rfi_hook_post(rf_op_record *r, rf_status st) { return hook_post(r, st, 0); }

rf_status rfi_vetoed(rf_op_record *r)
{
    rf_status st = rfi_fail(RF_E_ACCESS_DENIED, RF_NO_OFFSET, 0, "%s vetoed by a hook", rf_op_name(r->op));
    return hook_post(r, st, 1);
}

/* ---- rf_bytes ----------------------------------------------------------- */

void rf_bytes_free(rf_bytes *b)
{
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

rf_status rfi_bytes_reserve(rf_bytes *b, size_t more)
{
    if (b->cap - b->len >= more && b->data) return RF_OK;
    if (more > SIZE_MAX / 2 - b->len)
        return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "a buffer of %zu bytes is too big", more);
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more) cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a %zu-byte buffer", cap);
    b->data = p;
    b->cap = cap;
    return RF_OK;
}

rf_status rfi_bytes_put(rf_bytes *b, const void *p, size_t n)
{
    rf_status st = rfi_bytes_reserve(b, n);
    if (st) return st;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return RF_OK;
}

rf_status rfi_bytes_u32(rf_bytes *b, uint32_t v) { return rfi_bytes_put(b, &v, 4); }
rf_status rfi_bytes_u64(rf_bytes *b, uint64_t v) { return rfi_bytes_put(b, &v, 8); }
