/*
 * hook_cost.c — what the hook point at the rf_* entry points costs
 * (regfast.h, "Hooks"): rf_key_get_info and rf_key_open_utf16 on an offline
 * hive (the cheapest calls there are: a few loads each), timed
 *   direct   through the backend's method table, bypassing the core
 *   no hook  through rf_* with nothing installed (the shipping case)
 *   hooked   through rf_* with a POST hook that only counts
 *   op log   through rf_* with the operation log installed, keeping rows
 *            (src/core/rf_oplog.c: what regfast.profile() runs per call)
 * Each figure is the best of 15 runs of 2,000,000 calls (ns per call).
 * Timings on a shared machine swing by more than the hook point costs, so
 * `hook_cost HIVE count` runs only the no-hook loop (10,000,000 calls of
 * rf_key_get_info) for `perf stat -e instructions:u`: against a build with
 * -DRF_HOOKS_COMPILED_OUT (the hook point removed), the difference divided
 * by the calls is what the hook point adds per call, exactly.
 *
 *   cmake -S . -B build/bench -DREGFAST_BUILD_BENCH=ON && ninja -C build/bench hook_cost
 *   build/bench/bench/hook_cost HIVE
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "regfast/regfast.h"
#include "regfast/regfast_backend.h"
#include "core/rf_oplog.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static volatile uint64_t sink;
static uint64_t counted;

static int count_hook(void *ctx, const rf_op_record *r)
{
    (void)ctx;
    counted += r->status == 0;
    return 0;
}

#define N 2000000
#define RUNS 15

typedef void (*loop_fn)(rf_hive *h, rf_key k);

static void info_direct(rf_hive *h, rf_key k)
{
    rf_key_info ki;
    for (int i = 0; i < N; i++) { h->ops->key_info(h, k, &ki); sink += ki.n_values; }
}

static void info_api(rf_hive *h, rf_key k)
{
    rf_key_info ki;
    for (int i = 0; i < N; i++) { rf_key_get_info(h, k, &ki); sink += ki.n_values; }
}

static const uint16_t SOFTWARE[] = { 'S', 'o', 'f', 't', 'w', 'a', 'r', 'e' };

static void open_direct(rf_hive *h, rf_key k)
{
    rf_key out;
    for (int i = 0; i < N; i++) { h->ops->key_child(h, k, SOFTWARE, 8, &out); sink += out; }
}

static void open_api(rf_hive *h, rf_key k)
{
    rf_key out;
    for (int i = 0; i < N; i++) { rf_key_child(h, k, SOFTWARE, 8, &out); sink += out; }
}

static double once(loop_fn f, rf_hive *h, rf_key k)
{
    double t0 = now();
    f(h, k);
    return (now() - t0) / N * 1e9;
}

/* The three variants interleaved run by run (a shared machine drifts), the
 * best of RUNS kept for each. */
static rf_oprow *taken;

static void measure(loop_fn direct, loop_fn api, rf_hive *h, rf_key k, rf_oplog *log, double out[4])
{
    out[0] = out[1] = out[2] = out[3] = 1e9;
    for (int r = 0; r < RUNS; r++) {
        double t = once(direct, h, k);
        if (t < out[0]) out[0] = t;
        t = once(api, h, k);
        if (t < out[1]) out[1] = t;
        rf_hook_set(count_hook, NULL, RF_HOOK_POST);
        t = once(api, h, k);
        rf_hook_set(NULL, NULL, 0);
        if (t < out[2]) out[2] = t;
        rf_hook_set(rf_oplog_hook, log, RF_HOOK_PRE | RF_HOOK_POST);
        t = once(api, h, k);
        rf_hook_set(NULL, NULL, 0);
        if (t < out[3]) out[3] = t;
        rf_oplog_take(log, taken, N, NULL);   /* the consumer's bulk take */
    }
}

int main(int argc, char **argv)
{
    rf_hive *h;
    rf_key root;
    if (argc < 2 || rf_hive_open(argv[1], NULL, &h) || rf_hive_root(h, &root)) {
        fprintf(stderr, "usage: hook_cost HIVE (a hive with a Software key at its root)\n");
        return 2;
    }
    if (argc > 2 && argv[2][0] == 'c') {   /* count mode: 5 x N calls, nothing else */
        for (int r = 0; r < 5; r++) info_api(h, root);
        rf_hive_close(h);
        return 0;
    }
    struct { const char *name; loop_fn direct, api; } cases[] = {
        { "rf_key_get_info", info_direct, info_api },
        { "rf_key_child", open_direct, open_api },
    };
    rf_oplog *log = rf_oplog_new();
    taken = malloc((size_t)N * sizeof *taken);
    if (!log || !taken) return 1;
    rf_oplog_config(log, 1, 0, NULL, NULL, NULL, 0);
    printf("%-16s %10s %10s %10s %10s %12s\n", "ns/call", "direct", "no hook", "hooked", "op log", "no-hook cost");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double t[4];
        measure(cases[i].direct, cases[i].api, h, root, log, t);
        printf("%-16s %10.2f %10.2f %10.2f %10.2f %+11.2f\n", cases[i].name, t[0], t[1], t[2], t[3], t[1] - t[0]);
    }
    rf_oplog_release(log);
    free(taken);
    printf("(hook calls counted: %llu)\n", (unsigned long long)counted);
    rf_hive_close(h);
    return 0;
}
