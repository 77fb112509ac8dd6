/*
 * test_oplog.c — the operation log (src/core/rf_oplog.c) behind regfast's
 * Python hooks and profiler, on a real hive (argv[1], from the corpus):
 *
 *  - every rf_* call of a whole-tree walk (subkeys, names, value lists,
 *    value lookups) becomes one row whose path is the key's path, built
 *    from what the hooks saw; the same path as the walk itself builds;
 *  - the log's own rf_* calls (the regf parent walk for a key it never saw)
 *    are not logged: installed in this very copy of the core, it does not
 *    recurse;
 *  - value tokens keep their key's path and name (value_info/value_read);
 *  - a PRE callback's veto fails the call with 5 and flags the row;
 *  - full_at calls the consumer once per fill; take() in parts keeps order;
 *  - a close forgets the hive (a new one at the same address starts afresh);
 *    forget() drops the strings but "".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rf_oplog.h"
#include "regfast/regfast.h"

static rf_oplog *L;

/* the path of string `id` as ASCII (the corpus hive's names are) */
static const char *str(int32_t id, char *buf, size_t cap)
{
    const void *p;
    size_t n;
    int utf16;
    if (!rf_oplog_string(L, id, &p, &n, &utf16)) return "<none>";
    size_t i = 0;
    if (utf16) {
        const uint16_t *w = p;
        for (; i < n / 2 && i + 1 < cap; i++) buf[i] = w[i] < 128 ? (char)w[i] : '?';
    } else {
        for (; i < n && i + 1 < cap; i++) buf[i] = ((const char *)p)[i];
    }
    buf[i] = 0;
    return buf;
}

/* A walk as a binding does it: count, fill, name each child; value list. */
typedef struct walked { rf_key k; char path[1024]; } walked;
static walked *seen;
static size_t n_seen, cap_seen;

static void walk(rf_hive *h, rf_key k, const char *path, int depth)
{
    if (n_seen == cap_seen) {
        cap_seen = cap_seen ? cap_seen * 2 : 1024;
        seen = realloc(seen, cap_seen * sizeof *seen);
        if (!seen) abort();
    }
    seen[n_seen].k = k;
    snprintf(seen[n_seen].path, sizeof seen[n_seen].path, "%s", path);
    n_seen++;
    size_t n = 0, nv = 0;
    rf_status st = rf_key_subkeys(h, k, NULL, 0, &n);
    CHECK(st == RF_OK || st == RF_E_MORE_DATA);
    rf_key_values(h, k, NULL, 0, &nv);
    if (!n || depth > 40) return;
    rf_key *kids = malloc(n * sizeof *kids);
    if (!kids) abort();
    CHECK_EQ_INT(rf_key_subkeys(h, k, kids, n, &n), RF_OK);
    for (size_t i = 0; i < n; i++) {
        rf_name nm;
        CHECK_EQ_INT(rf_key_name(h, kids[i], &nm), RF_OK);
        char child[1024];
        size_t len = strlen(path), j = 0;
        snprintf(child, sizeof child, "%s%s", path, len ? "\\" : "");
        len = strlen(child);
        size_t chars = nm.utf16 ? nm.nbytes / 2 : nm.nbytes;
        for (; j < chars && len + j + 1 < sizeof child; j++) {
            unsigned c = nm.utf16 ? ((const uint8_t *)nm.ptr)[2 * j] | ((const uint8_t *)nm.ptr)[2 * j + 1] << 8
                                  : ((const uint8_t *)nm.ptr)[j];
            child[len + j] = c < 128 ? (char)c : '?';
        }
        child[len + j] = 0;
        walk(h, kids[i], child, depth + 1);
    }
    free(kids);
}

static int fulls;
static void on_full(void *ctx) { (void)ctx; fulls++; }

static int veto_op;
static int pre_calls;
static int callback(void *ctx, const rf_oprow *row)
{
    (void)ctx;
    if (row->phase == RF_HOOK_PRE) {
        pre_calls++;
        return row->op == veto_op;
    }
    return 0;
}

/* Drops the rows kept so far. */
static void drain(void)
{
    rf_oprow r[64];
    while (rf_oplog_take(L, r, 64, NULL) == 64) {}
}

static const char *path_of(rf_key k)
{
    for (size_t i = 0; i < n_seen; i++)
        if (seen[i].k == k) return seen[i].path;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_oplog HIVE\n");
        return 2;
    }
    L = rf_oplog_new();
    CHECK(L != NULL);
    if (!L) return 1;
    rf_oplog_config(L, 1, 1000, NULL, on_full, NULL, 0);
    rf_hook_set(rf_oplog_hook, L, RF_HOOK_PRE | RF_HOOK_POST);

    rf_hive *h;
    rf_key root;
    CHECK_EQ_INT(rf_hive_open(argv[1], NULL, &h), RF_OK);
    CHECK_EQ_INT(rf_hive_root(h, &root), RF_OK);
    walk(h, root, "", 0);
    CHECK(n_seen > 100);
    CHECK(fulls >= 1);

    /* every row: its path is the walk's path of its key */
    size_t n = rf_oplog_count(L);
    rf_oprow *rows = malloc((n + 1) * sizeof *rows);
    if (!rows) return 1;
    size_t half = n / 2;
    CHECK_EQ_INT(rf_oplog_take(L, rows, half, NULL), half);          /* in two parts, in order */
    CHECK_EQ_INT(rf_oplog_take(L, rows + half, n, NULL), n - half);
    CHECK_EQ_INT(rf_oplog_count(L), 0);
    CHECK_EQ_INT(rows[0].op, RF_OP_HIVE_OPEN);
    CHECK(rows[0].flags & RF_OPLOG_FILE);
    char buf[1024];
    CHECK_EQ_INT(strcmp(str(rows[0].path, buf, sizeof buf), argv[1]), 0);
    size_t checked = 0, bad = 0;
    uint32_t hive_seq = rows[0].hive;
    for (size_t i = 1; i < n; i++) {
        const rf_oprow *r = &rows[i];
        CHECK_EQ_INT(r->hive, hive_seq);
        CHECK_EQ_INT(r->backend, RF_OPLOG_REGF);
        if (r->op != RF_OP_KEY_SUBKEYS && r->op != RF_OP_KEY_NAME && r->op != RF_OP_KEY_VALUES) continue;
        const char *want = path_of(r->key);
        if (!want) continue;
        checked++;
        if (strcmp(str(r->path, buf, sizeof buf), want) != 0 && bad++ < 5)
            fprintf(stderr, "row %zu (%s): path %s, want %s\n", i, rf_op_name(r->op), buf, want);
    }
    CHECK(checked > 3 * (n_seen - 1));
    CHECK_EQ_INT(bad, 0);
    free(rows);

    /* a key the log never saw (rf_key_open from a parent token it knows,
     * then a token from before): the regf parent walk names it, unlogged */
    rf_key k = seen[n_seen - 1].k;
    rf_oplog_forget(L);                                  /* nothing known now */
    CHECK_EQ_INT(rf_oplog_nstrings(L), 1);
    size_t cnt;
    rf_key_values(h, k, NULL, 0, &cnt);
    CHECK_EQ_INT(rf_oplog_count(L), 1);                  /* the parent walk added no rows */
    rf_oprow one;
    CHECK_EQ_INT(rf_oplog_take(L, &one, 1, NULL), 1);
    CHECK_EQ_INT(strcmp(str(one.path, buf, sizeof buf), seen[n_seen - 1].path), 0);

    /* values: a lookup names the value; its read keeps the key's path and name */
    rf_key with_values = 0;
    size_t nv = 0;
    for (size_t i = 0; i < n_seen && !with_values; i++) {
        rf_status st = rf_key_values(h, seen[i].k, NULL, 0, &nv);
        if ((st == RF_OK || st == RF_E_MORE_DATA) && nv && nv <= 256) with_values = seen[i].k;
    }
    CHECK(with_values != 0);
    rf_value vs[256];
    CHECK_EQ_INT(rf_key_values(h, with_values, vs, 256, &nv), RF_OK);
    rf_value_info vi;
    CHECK_EQ_INT(rf_value_get_info(h, vs[0], &vi), RF_OK);
    char name[300];
    size_t j = 0, chars = vi.name.utf16 ? vi.name.nbytes / 2 : vi.name.nbytes;
    for (; j < chars && j < sizeof name - 1; j++)
        name[j] = (char)(vi.name.utf16 ? ((const uint8_t *)vi.name.ptr)[2 * j] : ((const uint8_t *)vi.name.ptr)[j]);
    name[j] = 0;
    drain();
    rf_value v;
    CHECK_EQ_INT(rf_value_open(h, with_values, name, strlen(name), &v), RF_OK);
    const uint8_t *data;
    size_t dlen;
    rf_value_read(h, v, NULL, 0, &data, &dlen);
    rf_oprow vr[2];
    CHECK_EQ_INT(rf_oplog_take(L, vr, 2, NULL), 2);
    CHECK_EQ_INT(vr[0].op, RF_OP_VALUE_OPEN);
    CHECK_EQ_INT(vr[1].op, RF_OP_VALUE_READ);
    CHECK_EQ_INT(vr[1].path, vr[0].path);
    CHECK_EQ_INT(vr[1].value, vr[0].value);
    CHECK_EQ_INT(strcmp(str(vr[1].value, buf, sizeof buf), name), 0);
    CHECK_EQ_INT(strcmp(str(vr[1].path, buf, sizeof buf), path_of(with_values)), 0);

    /* a PRE veto: the call fails with 5 and the POST row says vetoed */
    rf_oplog_config(L, 1, 0, callback, NULL, NULL, RF_HOOK_PRE | RF_HOOK_POST);
    veto_op = RF_OP_KEY_INFO;
    rf_key_info ki;
    drain();
    CHECK_EQ_INT(rf_key_get_info(h, root, &ki), RF_E_ACCESS_DENIED);
    CHECK(pre_calls >= 1);
    rf_oprow vetoed;
    CHECK_EQ_INT(rf_oplog_take(L, &vetoed, 2, NULL), 1);
    CHECK_EQ_INT(vetoed.op, RF_OP_KEY_INFO);
    CHECK(vetoed.flags & RF_OPLOG_VETOED);
    CHECK_EQ_INT(vetoed.status, RF_E_ACCESS_DENIED);
    CHECK_EQ_INT(strcmp(str(vetoed.path, buf, sizeof buf), ""), 0);   /* the root */
    veto_op = 0;
    CHECK_EQ_INT(rf_key_get_info(h, root, &ki), RF_OK);

    /* a close forgets the hive: the next one is another hive */
    rf_hive_close(h);
    CHECK_EQ_INT(rf_hive_open(argv[1], NULL, &h), RF_OK);
    rf_hive_close(h);
    rf_oprow tail[8];
    size_t nt = rf_oplog_take(L, tail, 8, NULL);
    CHECK(nt >= 3);
    CHECK_EQ_INT(tail[nt - 1].op, RF_OP_HIVE_CLOSE);
    CHECK(tail[nt - 1].hive > hive_seq);

    rf_hook_set(NULL, NULL, 0);
    rf_oplog_release(L);
    rf_oplog_forget(L);
    free(seen);
    /* the log itself lives on (a hook caller may still hold it): not freed */
    return CHECK_DONE();
}
