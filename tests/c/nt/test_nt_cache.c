/* test_nt_cache — the open-once handle cache: hits, the LRU bounds, opens
 * relative to the deepest cached ancestor, invalidation of deleted keys,
 * stale tokens, and many threads at once. */
#include <stdio.h>
#include <stdlib.h>
#include "nt_test_util.h"

static rf_live_stats stats(rf_hive *h)
{
    rf_live_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    rf_live_get_stats(h, &s);
    return s;
}

/* Reads REG_SZ "id" of a key: each test key stores its own path there, so a
 * read through the wrong handle can never pass. */
static int reads_id(rf_hive *h, rf_key k, const wchar_t *want)
{
    wchar_t buf[512];
    size_t len;
    rf_status st = rf_live_get_value(h, k, U(L"id"), 2, RF_RRF_RT_REG_SZ, buf, sizeof buf, NULL, &len);
    if (st) return -(int)st;
    return wcscmp(buf, want) == 0;
}

static HKEY make_id_key(HKEY top, const wchar_t *rel)
{
    HKEY k = nt_create(top, rel);
    if (k) nt_set_sz(k, L"id", rel);
    return k;
}

static void test_hits_and_depth(HKEY top, const wchar_t *path)
{
    RegCloseKey(make_id_key(top, L"d1\\d2\\d3\\d4\\d5\\d6\\d7"));
    rf_hive *h;
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h);
    rf_live_stats s0 = stats(h);
    CHECK_EQ_INT(s0.handles_open, 1); /* the root */
    CHECK_EQ_INT(s0.slots_used, 1);

    /* rf_key_open hands the whole path to the backend (ops->key_open): one
     * NtOpenKeyEx for all uncached components, not one per component */
    const wchar_t *p5 = nt_join(path, L"d1\\d2\\d3\\d4\\d5");
    size_t depth = 5;
    for (const wchar_t *c = path; *c; c++) depth += *c == L'\\';
    depth++;
    rf_status st;
    rf_key k5 = nt_open(h, p5, &st);
    CHECK_EQ_INT(st, RF_OK);
    rf_live_stats s1 = stats(h);
    CHECK_EQ_INT(s1.opens - s0.opens, 1);
    CHECK_EQ_INT(s1.last_open_components, depth);
    /* ... and a cached path costs no system call */
    CHECK_EQ_INT(nt_open(h, p5, &st), k5);
    rf_live_stats s2 = stats(h);
    CHECK_EQ_INT(s2.opens, s1.opens);
    CHECK(s2.hits > s1.hits);
    rf_hive_close(h);

    /* rf_live_key_open: the whole path in one open ... */
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h);
    s0 = stats(h);
    rf_key k;
    CHECK_EQ_INT(rf_live_key_open(h, 0, U(p5), wcslen(p5), &k), RF_OK);
    s1 = stats(h);
    CHECK_EQ_INT(s1.opens - s0.opens, 1);
    CHECK_EQ_INT(s1.last_open_components, depth);
    CHECK_EQ_INT(s1.handles_open, 2);          /* intermediates get slots, not handles */
    CHECK_EQ_INT(s1.slots_used, 1 + depth);
    CHECK_EQ_INT(reads_id(h, k, L"d1\\d2\\d3\\d4\\d5\\d6\\d7") , 0 - 2); /* d5 has no "id" */
    /* ... a deeper one opens relative to the deepest cached ancestor (d5) */
    const wchar_t *p7 = nt_join(path, L"d1\\d2\\d3\\d4\\d5\\d6\\d7");
    rf_key k7;
    CHECK_EQ_INT(rf_live_key_open(h, 0, U(p7), wcslen(p7), &k7), RF_OK);
    s2 = stats(h);
    CHECK_EQ_INT(s2.opens - s1.opens, 1);
    CHECK_EQ_INT(s2.last_open_components, 2);  /* "d6\d7" below d5's handle */
    CHECK_EQ_INT(reads_id(h, k7, L"d1\\d2\\d3\\d4\\d5\\d6\\d7"), 1);
    /* an intermediate slot (d3, no handle yet) opens relative to the root, the
     * deepest ancestor that has a handle */
    rf_key k3 = nt_open(h, nt_join(path, L"d1\\d2\\d3"), &st);
    CHECK_EQ_INT(st, RF_OK);
    rf_live_stats s3 = stats(h);
    CHECK_EQ_INT(s3.opens, s2.opens);          /* a hit: no open yet */
    rf_key_info ki;
    CHECK_EQ_INT(rf_key_get_info(h, k3, &ki), RF_OK);
    rf_live_stats s4 = stats(h);
    CHECK_EQ_INT(s4.opens - s3.opens, 1);
    CHECK_EQ_INT(s4.reopens - s3.reopens, 1);
    CHECK_EQ_INT(s4.last_open_components, depth - 2);
    CHECK_EQ_INT(ki.n_subkeys, 1);
    rf_key p;
    CHECK_EQ_INT(rf_key_parent(h, k7, &p), RF_OK);
    CHECK_EQ_INT(rf_key_get_info(h, p, &ki), RF_OK); /* d6: opens relative to d5 */
    CHECK_EQ_INT(stats(h).last_open_components, 1);
    rf_hive_close(h);
}

/* The handle bound: least recently used handles are closed, their slots stay
 * and re-open relative to the deepest ancestor still holding a handle. */
static void test_lru(HKEY top, const wchar_t *path)
{
    rf_hive *h;
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h);
    CHECK_EQ_INT(rf_live_set_limits(h, 3, 0, 0), RF_E_INVALID_PARAMETER);
    CHECK_EQ_INT(rf_live_set_limits(h, 8, 0, 0), RF_OK);
    wchar_t rel[64];
    rf_key keys[20];
    for (int i = 0; i < 20; i++) {
        swprintf(rel, 64, L"lru\\k%02d", i);
        RegCloseKey(make_id_key(top, rel));
    }
    rf_key lru = nt_open(h, nt_join(path, L"lru"), NULL);
    for (int i = 0; i < 20; i++) {
        swprintf(rel, 64, L"k%02d", i);
        CHECK_EQ_INT(rf_key_child(h, lru, U(rel), 3, &keys[i]), RF_OK);
        swprintf(rel, 64, L"lru\\k%02d", i);
        CHECK_EQ_INT(reads_id(h, keys[i], rel), 1);
        CHECK(stats(h).handles_open <= 8);
    }
    rf_live_stats s = stats(h);
    CHECK(s.handle_evictions >= 12);
    CHECK_EQ_INT(s.handles_open, 8);
    /* evicted tokens still work: re-opened below "lru" (1 component) if it kept
     * its handle, or below the root */
    uint64_t before = s.reopens;
    for (int i = 0; i < 20; i++) {
        swprintf(rel, 64, L"lru\\k%02d", i);
        CHECK_EQ_INT(reads_id(h, keys[i], rel), 1);
    }
    s = stats(h);
    CHECK(s.reopens - before >= 12);
    CHECK(s.handles_open <= 8);

    /* deepest ancestor: chain c1..c6, bound 4 (root + 3) */
    RegCloseKey(make_id_key(top, L"c1\\c2\\c3\\c4\\c5\\c6"));
    rf_hive_close(h);
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h);
    rf_key base = nt_open(h, path, NULL), c[7];
    c[0] = base;
    const wchar_t *names[] = { NULL, L"c1", L"c2", L"c3", L"c4", L"c5", L"c6" };
    for (int i = 1; i <= 6; i++) CHECK_EQ_INT(rf_key_child(h, c[i - 1], U(names[i]), 2, &c[i]), RF_OK);
    /* handles now: root, the path's components, base, c1..c6; shrink to 4 */
    CHECK_EQ_INT(rf_live_set_limits(h, 4, 0, 0), RF_OK);
    s = stats(h);
    CHECK_EQ_INT(s.handles_open, 4); /* root + c4, c5, c6 (most recently opened) */
    uint64_t opens = s.opens;
    CHECK_EQ_INT(reads_id(h, c[6], L"c1\\c2\\c3\\c4\\c5\\c6"), 1);
    CHECK_EQ_INT(stats(h).opens, opens);       /* c6 kept its handle */
    rf_key_info ki;
    CHECK_EQ_INT(rf_key_get_info(h, c[2], &ki), RF_OK);
    s = stats(h);
    CHECK_EQ_INT(s.opens - opens, 1);
    size_t depth = 3; /* Software\regfast-test\<unique> */
    CHECK_EQ_INT(s.last_open_components, depth + 2);   /* root -> ...\c1\c2 */
    CHECK_EQ_INT(rf_key_get_info(h, c[3], &ki), RF_OK);
    CHECK_EQ_INT(stats(h).last_open_components, 1);    /* c2 -> c3 */
    CHECK(stats(h).handles_open <= 4);
    rf_hive_close(h);
}

/* A hook that changes the level of a snapshot at its first stale token:
 * `mutate` 'd' deletes a walked sibling (w00) and adds one after the rest
 * (w99), 'a' adds one before all (a00) and deletes the last (w15): the
 * count stays, the members move. */
static HKEY mutate_parent;
static int mutate_kind, mutated;
static int mutate_on_stale(void *ctx, const rf_op_record *r)
{
    (void)ctx;
    if (r->op != RF_OP_KEY_NAME || r->status != RF_E_INVALID_HANDLE || mutated) return 0;
    mutated = 1;
    const wchar_t *gone = mutate_kind == 'd' ? L"w00" : L"w15";
    RegCloseKey(nt_create(mutate_parent, mutate_kind == 'd' ? L"w99\\x0" : L"a00\\x0"));
    RegDeleteTreeW(mutate_parent, gone);
    RegDeleteKeyW(mutate_parent, gone);
    return 0;
}

/* The snapshot's top-level rows (paths without a backslash), in order,
 * space-separated; the row count in *rows. */
static void top_rows(const rf_bytes *b, char *out, size_t cap, uint32_t *rows)
{
    size_t pos = 8, o = 0;
    uint32_t n, flags;
    memcpy(&n, b->data, 4);
    memcpy(&flags, b->data + 4, 4);
    *rows = n;
    out[0] = 0;
    for (uint32_t r = 0; r < n; r++) {
        uint32_t pl, nv, x;
        memcpy(&pl, b->data + pos, 4);
        const uint8_t *p = b->data + pos + 4;
        pos += 4 + pl + 16;
        memcpy(&nv, b->data + pos, 4);
        pos += 4;
        for (uint32_t v = 0; v < nv; v++) {
            memcpy(&x, b->data + pos, 4);                 /* name */
            pos += 4 + x + 4;
            memcpy(&x, b->data + pos, 4);                 /* size, hash */
            pos += 4 + 8;
            if (flags & RF_SNAP_DATA) {
                memcpy(&x, b->data + pos, 4);
                pos += 4 + x;
            }
        }
        int top = pl > 0;
        for (uint32_t i = 0; i < pl / 2; i++) top &= p[2 * i] != '\\' || p[2 * i + 1] != 0;
        for (uint32_t i = 0; top && i < pl / 2 && o + 2 < cap; i++) out[o++] = (char)p[2 * i];
        if (top && o + 1 < cap) out[o++] = ' ';
        out[o] = 0;
    }
}

/* The slot bound: recycled slots make their old tokens stale (6), never a
 * different key. */
static void test_recycle(HKEY top, const wchar_t *path)
{
    rf_hive *h;
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h);
    CHECK_EQ_INT(rf_live_set_limits(h, 0, 64, 64), RF_OK);
    HKEY many = nt_create(top, L"many");
    wchar_t rel[64];
    for (int i = 0; i < 150; i++) {
        swprintf(rel, 64, L"s%03d", i);
        RegCloseKey(make_id_key(many, rel));
    }
    RegCloseKey(many);
    rf_key parent = nt_open(h, nt_join(path, L"many"), NULL), toks[150];
    rf_value vtok[150];
    for (int i = 0; i < 150; i++) {
        swprintf(rel, 64, L"s%03d", i);
        CHECK_EQ_INT(rf_key_child(h, parent, U(rel), 4, &toks[i]), RF_OK);
        CHECK_EQ_INT(reads_id(h, toks[i], rel), 1);
        CHECK_EQ_INT(rf_value_open(h, toks[i], "id", 2, &vtok[i]), RF_OK);
    }
    rf_live_stats s = stats(h);
    CHECK(s.slots_used <= 64);
    CHECK(s.slot_recycles >= 150 - 64);
    rf_key_info ki;
    CHECK_EQ_INT(rf_key_get_info(h, toks[0], &ki), RF_E_INVALID_HANDLE);
    CHECK_EQ_INT(reads_id(h, toks[0], L"s000"), -RF_E_INVALID_HANDLE);
    const uint8_t *d;
    size_t dl;
    CHECK_EQ_INT(rf_value_read(h, vtok[0], NULL, 0, &d, &dl), RF_E_INVALID_HANDLE);
    CHECK_EQ_INT(rf_value_read(h, vtok[149], NULL, 0, &d, &dl), RF_OK);
    CHECK(dl == sizeof L"s149" && memcmp(d, L"s149", dl) == 0);
    CHECK_EQ_INT(reads_id(h, toks[149], L"s149"), 1);
    /* the same path opened again gets a fresh slot and token */
    rf_key again;
    CHECK_EQ_INT(rf_key_child(h, parent, U(L"s000"), 4, &again), RF_OK);
    CHECK(again != toks[0]);
    CHECK_EQ_INT(reads_id(h, again, L"s000"), 1);

    /* A snapshot that outgrows the slot table: the listed siblings not yet
     * walked are the leaves recycled first, and their tokens go stale. The
     * walk listed the level again from its first sibling, rows already
     * written kept, four times at most, then failed with 6: a tree of 97
     * keys could not be snapshotted with 64 slots (with the default 65,536,
     * a watch of a tree whose first big subtree has more keys). */
    HKEY wide = nt_create(top, L"wide");
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 5; j++) {
            swprintf(rel, 64, L"w%02d\\x%d", i, j);
            RegCloseKey(make_id_key(wide, rel));
        }
    RegCloseKey(wide);
    rf_bytes snap = { 0 };
    rf_status sst = rf_key_snapshot(h, nt_open(h, nt_join(path, L"wide"), NULL), RF_SNAP_SUBTREE, 1000, &snap);
    CHECK_EQ_INT(sst, RF_OK);
    size_t size;
    CHECK_EQ_INT(rf_snapshot_size(snap.data, snap.len, &size), RF_OK);
    CHECK_EQ_INT(size, snap.len);
    uint32_t rows = 0;
    if (snap.len >= 4) memcpy(&rows, snap.data, 4);    /* the header's key count (x86: little-endian) */
    CHECK_EQ_INT(rows, 1 + 16 + 16 * 5);
    CHECK(stats(h).slot_recycles > 150);
    rf_bytes_free(&snap);
    /* The level changed at the first stale token, its count the same: going
     * on at the index skipped w09 ('d') or wrote w08 twice ('a'). A list
     * that no longer lines up (by the last walked sibling's name) starts
     * the level over: every key there is once. */
    static const struct { int kind; const char *rows; uint32_t n; } moves[] = {
        { 'd', "w01 w02 w03 w04 w05 w06 w07 w08 w09 w10 w11 w12 w13 w14 w15 w99 ", 1 + 16 + 15 * 5 + 1 },
        { 'a', "a00 w01 w02 w03 w04 w05 w06 w07 w08 w09 w10 w11 w12 w13 w14 w99 ", 1 + 16 + 1 + 14 * 5 + 1 },
    };
    for (int m = 0; m < 2; m++) {
        mutate_parent = nt_create(top, L"wide");
        mutate_kind = moves[m].kind;
        mutated = 0;
        rf_hook_set(mutate_on_stale, NULL, RF_HOOK_POST);
        sst = rf_key_snapshot(h, nt_open(h, nt_join(path, L"wide"), NULL), RF_SNAP_SUBTREE, 1000, &snap);
        rf_hook_set(NULL, NULL, 0);
        RegCloseKey(mutate_parent);
        CHECK_EQ_INT(sst, RF_OK);
        CHECK_EQ_INT(mutated, 1);
        char got[512];
        CHECK_EQ_INT(rf_snapshot_size(snap.data, snap.len, &size), RF_OK);
        top_rows(&snap, got, sizeof got, &rows);
        if (strcmp(got, moves[m].rows) != 0) fprintf(stderr, "  top-level rows: %s\n  wanted:         %s\n", got, moves[m].rows);
        CHECK(strcmp(got, moves[m].rows) == 0);
        CHECK_EQ_INT(rows, moves[m].n);                       /* w99 and a00 have one child */
        rf_bytes_free(&snap);
    }

    /* tokens from elsewhere */
    rf_hive *other;
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &other);
    CHECK_EQ_INT(rf_key_get_info(other, again, &ki), RF_E_INVALID_HANDLE);  /* another hive's */
    CHECK_EQ_INT(rf_key_get_info(h, vtok[149], &ki), RF_E_INVALID_HANDLE);  /* a value token */
    CHECK_EQ_INT(rf_key_get_info(h, 0, &ki), RF_E_INVALID_HANDLE);
    CHECK_EQ_INT(rf_key_get_info(h, 0x1020, &ki), RF_E_INVALID_HANDLE);     /* a regf cell offset */
    CHECK_EQ_INT(rf_key_get_info(h, again + 1000, &ki), RF_E_INVALID_HANDLE);
    rf_hive_close(other);
    rf_hive_close(h);
}

/* Deleted under our feet: the cached handle answers 1018, the slot becomes a
 * tombstone, and the next open of the path goes to the kernel afresh. */
static void test_deleted(HKEY top, const wchar_t *path)
{
    HKEY d = make_id_key(top, L"del\\victim");
    RegCloseKey(make_id_key(top, L"del\\lazy"));
    rf_hive *h;
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h);
    const wchar_t *vp = nt_join(path, L"del\\victim");
    rf_key k = nt_open(h, vp, NULL);
    CHECK_EQ_INT(reads_id(h, k, L"del\\victim"), 1);
    RegCloseKey(d);
    CHECK_EQ_INT(RegDeleteKeyW(top, L"del\\victim"), 0); /* from another handle */
    rf_live_stats s0 = stats(h);
    CHECK_EQ_INT(reads_id(h, k, L"del\\victim"), -RF_E_KEY_DELETED);
    CHECK_EQ_INT(rf_last_error()->native, 0xC000017C);
    rf_live_stats s1 = stats(h);
    CHECK_EQ_INT(s1.invalidations - s0.invalidations, 1);
    CHECK_EQ_INT(reads_id(h, k, L"del\\victim"), -RF_E_KEY_DELETED); /* stays deleted */
    rf_status st;
    CHECK_EQ_INT(nt_open(h, vp, &st), 0);
    CHECK_EQ_INT(st, RF_E_NOT_FOUND);                 /* re-opened: gone */
    CHECK_EQ_INT(stats(h).opens, s1.opens);            /* (a failed open is not counted) */
    d = make_id_key(top, L"del\\victim");              /* re-created */
    nt_set_sz(d, L"id", L"reborn");
    RegCloseKey(d);
    rf_key k2 = nt_open(h, vp, &st);
    CHECK_EQ_INT(st, RF_OK);
    CHECK(k2 != k);
    CHECK_EQ_INT(reads_id(h, k2, L"reborn"), 1);
    CHECK_EQ_INT(reads_id(h, k, L"del\\victim"), -RF_E_KEY_DELETED); /* the old token never sees it */

    /* enumerated slots are opened at first use: deleted before it -> 1018 */
    rf_key del = nt_open(h, nt_join(path, L"del"), NULL), subs[4];
    size_t n;
    CHECK_EQ_INT(rf_key_subkeys(h, del, subs, 4, &n), RF_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(RegDeleteKeyW(top, L"del\\lazy"), 0);
    rf_name nm;
    CHECK_EQ_INT(rf_key_name(h, subs[0], &nm), RF_E_KEY_DELETED); /* "lazy" sorts first */
    CHECK_EQ_INT(rf_key_name(h, subs[1], &nm), RF_OK);
    CHECK(nt_name_is(&nm, L"victim"));
    rf_hive_close(h);
}

/* ---- threads ------------------------------------------------------------ */

typedef struct worker { rf_hive *h; const wchar_t *path; int iters, seed, bad, errors, stale; } worker;

static DWORD WINAPI work(void *arg)
{
    worker *w = arg;
    unsigned x = (unsigned)w->seed;
    wchar_t rel[64], full[512]; /* per thread: nt_join's buffers are not thread-safe */
    for (int i = 0; i < w->iters; i++) {
        x = x * 1103515245u + 12345u;
        int n = (int)((x >> 16) % 100);
        swprintf(rel, 64, L"mt\\k%02d", n);
        swprintf(full, 512, L"%ls\\%ls", w->path, rel);
        rf_status st;
        rf_key k = (x >> 8) & 1 ? nt_open(w->h, full, &st) : 0;
        if (!k) st = rf_live_key_open(w->h, 0, U(full), wcslen(full), &k);
        if (st) { w->errors++; continue; }
        int r = reads_id(w->h, k, rel);
        if (r == 0) w->bad++;          /* a wrong key: must never happen */
        else if (r == -RF_E_INVALID_HANDLE) w->stale++; /* recycled by another thread meanwhile: fine */
        else if (r < 0) w->errors++;
    }
    return 0;
}

static void test_threads(HKEY top, const wchar_t *path)
{
    wchar_t rel[64];
    for (int i = 0; i < 100; i++) {
        swprintf(rel, 64, L"mt\\k%02d", i);
        RegCloseKey(make_id_key(top, rel));
    }
    rf_hive *h;
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h);
    rf_live_set_limits(h, 6, 64, 64); /* constant eviction and recycling */
    worker w[4];
    HANDLE t[4];
    double t0 = nt_now();
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){ h, path, 1500, 17 + i * 101, 0, 0, 0 };
        t[i] = CreateThread(NULL, 0, work, &w[i], 0, NULL);
    }
    WaitForMultipleObjects(4, t, TRUE, INFINITE);
    int bad = 0, errors = 0, stale = 0;
    for (int i = 0; i < 4; i++) {
        CloseHandle(t[i]);
        bad += w[i].bad;
        errors += w[i].errors;
        stale += w[i].stale;
    }
    rf_live_stats s = stats(h);
    printf("threads: 4 x 1500 opens+reads of 100 keys in %.2f s, %llu evictions, %llu recycles, %d stale, "
           "%d errors\n", nt_now() - t0, (unsigned long long)s.handle_evictions,
           (unsigned long long)s.slot_recycles, stale, errors);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(errors, 0);
    CHECK(s.handles_open <= 6 + 4); /* the bound, plus what in-flight pins held over it */
    CHECK(s.handle_evictions > 0);
    CHECK(s.slot_recycles > 0);
    CHECK(s.slots_used <= 64);
    rf_hive_close(h);
}

int main(void)
{
    HKEY top;
    const wchar_t *path = nt_test_key(L"cache", &top);
    test_hits_and_depth(top, path);
    test_lru(top, path);
    test_recycle(top, path);
    test_deleted(top, path);
    test_threads(top, path);
    RegCloseKey(top);
    nt_test_cleanup();
    return CHECK_DONE();
}
