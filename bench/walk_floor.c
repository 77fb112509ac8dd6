/*
 * walk_floor.c — the floor for the full-walk benchmarks: what a plain C
 * program gets through regfast's public C API, with no Python in the way.
 *
 *   walk_floor walk PATH [ROUNDS]   rf_hive_open, then a depth-first walk:
 *                                   every nk (name), its subkey list, its value
 *                                   list, every vk (rf_value_get_info) and one
 *                                   byte of every value's data (rf_value_read;
 *                                   big data assembled into a buffer)
 *   walk_floor scan PATH [ROUNDS]   rf_hive_open, then rf_hive_scan with the
 *                                   value columns, then one byte of each row's
 *                                   data (big data with rf_value_read)
 *   walk_floor open PATH [ROUNDS]   rf_hive_open + rf_hive_root + rf_hive_close
 *                                   only: the part of the two above that is not
 *                                   the walk (open validates every hbin/cell)
 *
 * Each round opens and closes the hive, as the Python benchmarks do. It prints
 * one JSON object: {"mode", "times": [seconds per round], "best", "keys",
 * "values", "checksum"}. The bench (bench/bench_walk.py) runs it as a
 * subprocess and puts its rows in the same pytest-benchmark table.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regfast/regfast.h"

#ifdef _WIN32
#include <windows.h>
static double now(void)
{
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
}
#else
#include <time.h>
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
#endif

typedef struct counts {
    uint64_t keys, values, checksum;
} counts;

static void die(const char *what, rf_status st)
{
    const rf_error *e = rf_last_error();
    fprintf(stderr, "walk_floor: %s: status %d (%s) %s\n", what, (int)st, rf_status_text(st),
            e->code == st ? e->message : "");
    exit(1);
}

/* A growable array of tokens used as the DFS stack and the list buffers. */
typedef struct tokens {
    uint64_t *v;
    size_t n, cap;
} tokens;

static void reserve(tokens *t, size_t need)
{
    if (need <= t->cap) return;
    size_t c = t->cap ? t->cap : 256;
    while (c < need) c *= 2;
    t->v = realloc(t->v, c * sizeof *t->v);
    if (!t->v) { fprintf(stderr, "walk_floor: out of memory\n"); exit(1); }
    t->cap = c;
}

/* Fills `out` with the subkeys (values=0) or values (values=1) of k. */
static void list(rf_hive *h, rf_key k, int values, tokens *out)
{
    size_t n = 0;
    rf_status st;
    for (;;) {
        st = values ? rf_key_values(h, k, out->v, out->cap, &n)
                    : rf_key_subkeys(h, k, out->v, out->cap, &n);
        if (st != RF_E_MORE_DATA) break;
        reserve(out, n);
    }
    if (st) die(values ? "rf_key_values" : "rf_key_subkeys", st);
    out->n = n;
}

static void walk(const char *path, counts *c)
{
    rf_hive *h;
    rf_status st = rf_hive_open(path, NULL, &h);
    if (st) die("rf_hive_open", st);
    static tokens stack, kids, vals;
    static uint8_t *big;
    static size_t big_cap;
    rf_key root;
    if ((st = rf_hive_root(h, &root))) die("rf_hive_root", st);
    stack.n = 0;
    reserve(&stack, 1);
    stack.v[stack.n++] = root;
    while (stack.n) {
        rf_key k = stack.v[--stack.n];
        rf_name name;
        if ((st = rf_key_name(h, k, &name))) die("rf_key_name", st);
        c->keys++;
        c->checksum += name.nbytes;
        list(h, k, 1, &vals);
        for (size_t i = 0; i < vals.n; i++) {
            rf_value_info vi;
            if ((st = rf_value_get_info(h, vals.v[i], &vi))) die("rf_value_get_info", st);
            const uint8_t *p;
            size_t len;
            st = rf_value_read(h, vals.v[i], big, big_cap, &p, &len);
            if (st == RF_E_MORE_DATA) {
                big = realloc(big, len);
                if (!big) { fprintf(stderr, "walk_floor: out of memory\n"); exit(1); }
                big_cap = len;
                st = rf_value_read(h, vals.v[i], big, big_cap, &p, &len);
            }
            if (st) die("rf_value_read", st);
            c->values++;
            c->checksum += vi.type + vi.name.nbytes + len + (len ? p[len - 1] : 0);
        }
        list(h, k, 0, &kids);
        reserve(&stack, stack.n + kids.n);
        for (size_t i = kids.n; i-- > 0;) /* reversed: children pop in stored order */
            stack.v[stack.n++] = kids.v[i];
    }
    rf_hive_close(h);
}

static void scan(const char *path, counts *c)
{
    rf_hive *h;
    rf_status st = rf_hive_open(path, NULL, &h);
    if (st) die("rf_hive_open", st);
    rf_hive_info info;
    if ((st = rf_hive_get_info(h, &info))) die("rf_hive_get_info", st);
    const uint8_t *base;
    size_t map_len;
    if ((st = rf_hive_mapping(h, &base, &map_len))) die("rf_hive_mapping", st);
    size_t nk = info.nk_cells ? info.nk_cells : 1, nv = info.vk_cells ? info.vk_cells : 1;
    rf_scan s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.flags = RF_SCAN_VALUES;
    s.key_cap = nk;
    s.key_token = malloc(nk * 4);
    s.key_parent = malloc(nk * 4);
    s.key_last_write = malloc(nk * 8);
    s.key_name_len = malloc(nk * 4);
    s.key_status = malloc(nk * 4);
    s.value_cap = nv;
    s.value_key = malloc(nv * 4);
    s.value_token = malloc(nv * 4);
    s.value_name_len = malloc(nv * 4);
    s.value_type = malloc(nv * 4);
    s.value_offset = malloc(nv * 4);
    s.value_length = malloc(nv * 4);
    s.value_status = malloc(nv * 4);
    if ((st = rf_hive_scan(h, 0, &s))) die("rf_hive_scan", st);
    static uint8_t *big;
    static size_t big_cap;
    c->keys += s.n_keys;
    c->values += s.n_values;
    for (size_t i = 0; i < s.n_keys; i++)
        c->checksum += s.key_name_len[i] & ~RF_NAME_UTF16_BIT;
    for (size_t i = 0; i < s.n_values; i++) {
        size_t len = s.value_length[i];
        const uint8_t *p = base + s.value_offset[i];
        if (s.value_status[i] == RF_E_MORE_DATA) { /* big data: assemble it */
            if (big_cap < len) {
                big = realloc(big, len);
                if (!big) { fprintf(stderr, "walk_floor: out of memory\n"); exit(1); }
                big_cap = len;
            }
            if ((st = rf_value_read(h, s.value_token[i], big, big_cap, &p, &len)))
                die("rf_value_read", st);
        } else if (s.value_status[i]) {
            die("rf_hive_scan row", s.value_status[i]);
        }
        c->checksum += s.value_type[i] + (s.value_name_len[i] & ~RF_NAME_UTF16_BIT) + len +
                       (len ? p[len - 1] : 0);
    }
    free(s.key_token); free(s.key_parent); free(s.key_last_write); free(s.key_name_len);
    free(s.key_status); free(s.value_key); free(s.value_token); free(s.value_name_len);
    free(s.value_type); free(s.value_offset); free(s.value_length); free(s.value_status);
    rf_hive_close(h);
}

static void open_only(const char *path, counts *c)
{
    rf_hive *h;
    rf_key root;
    rf_status st = rf_hive_open(path, NULL, &h);
    if (st) die("rf_hive_open", st);
    if ((st = rf_hive_root(h, &root))) die("rf_hive_root", st);
    c->keys = 1;
    c->checksum = root;
    rf_hive_close(h);
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "walk") && strcmp(argv[1], "scan") &&
                      strcmp(argv[1], "open"))) {
        fprintf(stderr, "usage: walk_floor walk|scan|open HIVE [ROUNDS]\n");
        return 2;
    }
    void (*run)(const char *, counts *) = strcmp(argv[1], "scan") == 0   ? scan
                                          : strcmp(argv[1], "open") == 0 ? open_only
                                                                         : walk;
    int rounds = argc > 3 ? atoi(argv[3]) : 10; /* 0: start-up only (bench/icount.py) */
    if (rounds < 0) rounds = 0;
    double *times = calloc((size_t)rounds + 1, sizeof *times), best = 1e300;
    counts c = {0, 0, 0};
    for (int r = 0; r < rounds; r++) {
        counts rc = {0, 0, 0};
        double t0 = now();
        run(argv[2], &rc);
        times[r] = now() - t0;
        if (times[r] < best) best = times[r];
        if (r && (rc.keys != c.keys || rc.values != c.values || rc.checksum != c.checksum)) {
            fprintf(stderr, "walk_floor: rounds disagree\n");
            return 1;
        }
        c = rc;
    }
    printf("{\"mode\": \"%s\", \"times\": [", argv[1]);
    for (int r = 0; r < rounds; r++) printf("%s%.9f", r ? ", " : "", times[r]);
    if (rounds)
        printf("], \"best\": %.9f", best);
    else
        printf("], \"best\": null");
    printf(", \"keys\": %llu, \"values\": %llu, \"checksum\": %llu}\n",
           (unsigned long long)c.keys, (unsigned long long)c.values,
           (unsigned long long)c.checksum);
    free(times);
    return 0;
}
