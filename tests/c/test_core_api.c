/*
 * test_core_api.c — the parts of the C API that live in the core, checked on
 * the regf backend with a real hive (argv[1], from /work/shared/corpus):
 *
 *  - writes, watches and security setting answer RF_E_NOT_SUPPORTED (120)
 *    for a hive file, naming the backend; bad arguments come first (87/161);
 *  - rf_key_get_security: si 0 gives the stored bytes, a subset a valid
 *    descriptor with only those parts; MORE_DATA gives the size;
 *  - rf_key_snapshot: walks the whole hive (as many keys as rf_hive_scan
 *    finds), hashes every value as rf_read_values reads it, honours
 *    max_keys / subtree / keep_data, and rf_snapshot_size accepts it and
 *    refuses every truncation of it;
 *  - hooks: PRE and POST records with the right op, key, name, counts,
 *    outputs (out_key, out_keys, out_name) and no round trips;
 *    a PRE veto keeps the backend from being called; removal;
 *  - a version-1 method table: the core never reads a version-2 slot
 *    (deleted_read, slack, the writes...) of it, it answers 120.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "regfast/regfast.h"
#include "regfast/regfast_backend.h"

static const uint16_t NAME_X[] = { 'x' };
static const uint16_t PATH_S[] = { 'S', 'o', 'f', 't', 'w', 'a', 'r', 'e' };

static uint32_t le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static void test_not_supported(rf_hive *h, rf_key root)
{
    uint8_t sd[64] = { 1, 0, 0x04, 0x80 };  /* revision 1, SE_SELF_RELATIVE|SE_DACL_PRESENT, null DACL */
    rf_watch *w = (rf_watch *)1;
    rf_key k = 1;
    uint32_t disp = 9;
    CHECK_EQ_INT(rf_value_set(h, root, NAME_X, 1, 1, "a\0", 2), RF_E_NOT_SUPPORTED);
    CHECK(strstr(rf_last_error()->message, "regf") != NULL);
    CHECK_EQ_INT(rf_value_delete(h, root, NAME_X, 1), RF_E_NOT_SUPPORTED);
    CHECK_EQ_INT(rf_key_create(h, root, PATH_S, 8, 0, &k, &disp), RF_E_NOT_SUPPORTED);
    CHECK(k == 0 && disp == 0);
    CHECK_EQ_INT(rf_key_delete(h, root, PATH_S, 8, RF_DELETE_TREE), RF_E_NOT_SUPPORTED);
    CHECK_EQ_INT(rf_key_rename(h, root, NAME_X, 1), RF_E_NOT_SUPPORTED);
    CHECK_EQ_INT(rf_key_set_security(h, root, RF_SI_DACL, sd, 20), RF_E_NOT_SUPPORTED);
    CHECK_EQ_INT(rf_watch_open(h, &root, 1, NULL, NULL, &w), RF_E_NOT_SUPPORTED);
    CHECK(w == NULL);
    /* arguments are checked before the backend is asked */
    CHECK_EQ_INT(rf_key_create(h, root, NULL, 0, 0, NULL, NULL), RF_E_INVALID_PARAMETER);
    static const uint16_t bad[] = { 'a', '\\', '\\', 'b' };
    CHECK_EQ_INT(rf_key_delete(h, root, bad, 4, 0), RF_E_BAD_PATHNAME);
    CHECK_EQ_INT(rf_key_delete(h, root, PATH_S, 8, 0x80), RF_E_INVALID_PARAMETER);
    static const uint16_t slash[] = { 'a', '\\', 'b' };
    CHECK_EQ_INT(rf_key_rename(h, root, slash, 3), RF_E_INVALID_PARAMETER);
    CHECK_EQ_INT(rf_key_rename(h, root, NULL, 0), RF_E_INVALID_PARAMETER);
    CHECK_EQ_INT(rf_key_set_security(h, root, RF_SI_DACL, sd, 10), RF_E_INVALID_PARAMETER);   /* short */
    CHECK_EQ_INT(rf_key_set_security(h, root, RF_SI_OWNER, sd, 20), RF_E_INVALID_PARAMETER);  /* no owner */
    rf_watch_opts o = RF_WATCH_OPTS_INIT;
    o.filter = 0x40;
    CHECK_EQ_INT(rf_watch_open(h, &root, 1, &o, NULL, &w), RF_E_INVALID_PARAMETER);
    CHECK_EQ_INT(rf_watch_next(NULL, 0, NULL), RF_E_INVALID_HANDLE);
    rf_watch_close(NULL);
    rf_watch_stop(NULL);
}

static void test_security(rf_hive *h, rf_key root)
{
    const uint8_t *stored;
    size_t stored_len, len = 0;
    uint32_t si = 0;
    CHECK_EQ_INT(rf_key_security(h, root, &stored, &stored_len), RF_OK);
    CHECK_EQ_INT(rf_key_get_security(h, root, 0, NULL, 0, &len, &si), RF_E_MORE_DATA);
    CHECK_EQ_INT(len, stored_len);
    uint8_t *buf = malloc(len);
    CHECK_EQ_INT(rf_key_get_security(h, root, 0, buf, len, &len, &si), RF_OK);
    CHECK(memcmp(buf, stored, len) == 0);
    CHECK(si & RF_SI_OWNER && si & RF_SI_DACL);
    /* only the owner: a 20-byte header + the SID, and the converter reads it */
    uint8_t small[256];
    uint32_t si2 = 0;
    CHECK_EQ_INT(rf_key_get_security(h, root, RF_SI_OWNER, small, sizeof small, &len, &si2), RF_OK);
    CHECK_EQ_INT(si2, RF_SI_OWNER);
    CHECK(len > 20 && len < stored_len);
    CHECK(le32(small + 4) == 20 && le32(small + 8) == 0 && le32(small + 12) == 0 && le32(small + 16) == 0);
    char sddl[512];
    size_t sl;
    CHECK_EQ_INT(rf_sd_to_sddl(small, len, sddl, sizeof sddl, &sl), RF_OK);
    CHECK(strncmp(sddl, "O:", 2) == 0 && strstr(sddl, "D:") == NULL);
    /* owner+group+DACL: what snapshots hash */
    CHECK_EQ_INT(rf_key_get_security(h, root, RF_SI_OWNER | RF_SI_GROUP | RF_SI_DACL, buf, stored_len, &len, &si2),
                 RF_OK);
    CHECK_EQ_INT(rf_sd_to_sddl(buf, len, sddl, sizeof sddl, &sl), RF_OK);
    CHECK(strstr(sddl, "D:") != NULL && strstr(sddl, "S:") == NULL);
    CHECK_EQ_INT(rf_key_get_security(h, root, 0x40, buf, stored_len, &len, &si2), RF_E_INVALID_PARAMETER);
    free(buf);
}

/* Walks a serialized snapshot and checks every value's hash against a
 * direct rf_read_values of the same key (found by its path). */
static void check_snapshot(rf_hive *h, rf_key start, const rf_bytes *b, uint32_t *n_keys_out)
{
    const uint8_t *p = b->data;
    size_t pos = 8;
    uint32_t n_keys = le32(p), flags = le32(p + 4);
    *n_keys_out = n_keys;
    size_t size;
    CHECK_EQ_INT(rf_snapshot_size(b->data, b->len, &size), RF_OK);
    CHECK_EQ_INT(size, b->len);
    int checked = 0;
    for (uint32_t i = 0; i < n_keys; i++) {
        uint32_t plen = le32(p + pos);
        const uint16_t *path = (const uint16_t *)(p + pos + 4);
        pos += 4 + plen;
        uint64_t sdh = le64(p + pos + 8);
        uint32_t nv = le32(p + pos + 16);
        pos += 20;
        CHECK(sdh & 1);
        rf_key k;
        /* the path names the key as stored: it opens */
        int ok = rf_key_open_utf16(h, start, path, plen / 2, &k) == RF_OK;
        CHECK(ok);
        for (uint32_t j = 0; j < nv; j++) {
            uint32_t nlen = le32(p + pos);
            const uint8_t *nm = p + pos + 4;
            pos += 4 + nlen;
            uint32_t size_v = le32(p + pos + 4);
            uint64_t hv = le64(p + pos + 8);
            pos += 16;
            if (flags & RF_SNAP_DATA) {
                CHECK_EQ_INT(le32(p + pos), size_v);
                CHECK(rf_fnv1a64(p + pos + 4, size_v) == hv);
                pos += 4 + size_v;
            }
            if (ok && checked < 2000) {
                rf_value v;
                const uint8_t *d;
                size_t dl;
                static uint8_t big[1 << 20];
                if (rf_value_open_utf16(h, k, (const uint16_t *)nm, nlen / 2, &v) == RF_OK &&
                    rf_value_read(h, v, big, sizeof big, &d, &dl) == RF_OK) {
                    CHECK_EQ_INT(dl, size_v);
                    CHECK(rf_fnv1a64(d, dl) == hv);
                    checked++;
                }
            }
        }
    }
    CHECK_EQ_INT(pos, b->len);
    CHECK(checked > 0 || n_keys < 5);
}

static void test_snapshot(rf_hive *h, rf_key root)
{
    rf_bytes b = { NULL, 0, 0 };
    CHECK_EQ_INT(rf_key_snapshot(h, root, RF_SNAP_SUBTREE, 0, &b), RF_OK);
    uint32_t n_keys = 0;
    check_snapshot(h, root, &b, &n_keys);
    /* as many keys as a scan finds */
    rf_hive_info info;
    CHECK_EQ_INT(rf_hive_get_info(h, &info), RF_OK);
    rf_scan s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.key_cap = info.nk_cells;
    s.key_token = calloc(s.key_cap, 4); s.key_parent = calloc(s.key_cap, 4);
    s.key_last_write = calloc(s.key_cap, 8); s.key_name_len = calloc(s.key_cap, 4);
    s.key_status = calloc(s.key_cap, 4);
    CHECK_EQ_INT(rf_hive_scan(h, 0, &s), RF_OK);
    CHECK_EQ_INT(n_keys, s.n_keys);
    printf("snapshot of %u keys, %zu bytes\n", n_keys, b.len);
    free(s.key_token); free(s.key_parent); free(s.key_last_write); free(s.key_name_len);
    free(s.key_status);
    /* every truncation is refused, never read past */
    for (size_t cut = 0; cut < b.len; cut += 1 + b.len / 3000) {
        uint8_t *t = malloc(cut ? cut : 1);
        memcpy(t, b.data, cut);
        size_t sz;
        CHECK_EQ_INT(rf_snapshot_size(t, cut, &sz), RF_E_INVALID_DATA);
        free(t);
    }
    /* appended after what is there: two snapshots back to back split apart */
    size_t first = b.len;
    CHECK_EQ_INT(rf_key_snapshot(h, root, 0, 0, &b), RF_OK);     /* root only */
    size_t sz;
    CHECK_EQ_INT(rf_snapshot_size(b.data + first, b.len - first, &sz), RF_OK);
    CHECK_EQ_INT(sz, b.len - first);
    CHECK_EQ_INT(le32(b.data + first), 1);
    CHECK_EQ_INT(le32(b.data + first + 4), 0);
    rf_bytes_free(&b);
    CHECK(b.data == NULL && b.len == 0);
    /* max_keys: truncated, still well-formed; keep_data carries the bytes */
    CHECK_EQ_INT(rf_key_snapshot(h, root, RF_SNAP_SUBTREE | RF_SNAP_KEEP_DATA, 3, &b), RF_OK);
    CHECK_EQ_INT(le32(b.data), 3);
    CHECK_EQ_INT(le32(b.data + 4), RF_SNAP_TRUNCATED | RF_SNAP_DATA);
    check_snapshot(h, root, &b, &n_keys);
    rf_bytes_free(&b);
    CHECK_EQ_INT(rf_key_snapshot(h, root, 0x10, 0, &b), RF_E_INVALID_PARAMETER);
    CHECK(rf_key_snapshot(h, 0xDEAD, 0, 0, &b) != RF_OK);   /* not a key: an error, nothing written */
    CHECK(b.len == 0);
    rf_bytes_free(&b);
    rf_bytes_free(NULL);
}

/* ---- hooks ---------------------------------------------------------------- */

typedef struct seen { int pre, post, veto_op; rf_op_record last_pre, last_post; uint64_t reads; } seen;

static int hook(void *ctx, const rf_op_record *r)
{
    seen *s = ctx;
    if (r->phase == RF_HOOK_PRE) {
        s->pre++;
        s->last_pre = *r;
        return (int)r->op == s->veto_op;
    }
    s->post++;
    s->last_post = *r;
    if (r->op == RF_OP_READ_VALUES) s->reads++;
    return 0;
}

static void test_hooks(const char *path)
{
    seen s;
    memset(&s, 0, sizeof s);
    rf_hook_set(hook, &s, RF_HOOK_PRE | RF_HOOK_POST);
    rf_hive *h;
    CHECK_EQ_INT(rf_hive_open(path, NULL, &h), RF_OK);
    CHECK_EQ_INT(s.last_post.op, RF_OP_HIVE_OPEN);
    CHECK(s.last_post.hive == h && strcmp(s.last_post.backend, "regf") == 0 && strcmp(s.last_post.text, path) == 0);
    rf_key root, k;
    CHECK_EQ_INT(rf_hive_root(h, &root), RF_OK);
    /* rf_key_open (UTF-8) is recorded once, as key_open with the UTF-16 path */
    int before = s.post;
    rf_status st = rf_key_open(h, root, "Software", 8, &k);
    CHECK_EQ_INT(s.post - before, 1);
    CHECK_EQ_INT(s.last_post.op, RF_OP_KEY_OPEN);
    CHECK_EQ_INT(s.last_post.status, st);
    CHECK(s.last_post.key == root && s.last_post.name_chars == 8 && s.last_post.name[0] == 'S');
    CHECK(s.last_post.out_key == k && k != 0);              /* the key it returned */
    CHECK_EQ_INT(s.last_post.round_trips, 0);              /* a hive file has no connection */
    CHECK(s.last_post.duration_ns < 1000000000ull);
    /* counts: subkeys, batch rows and bytes */
    size_t n;
    rf_key kids[4096];
    CHECK_EQ_INT(rf_key_subkeys(h, root, kids, 4096, &n), RF_OK);
    CHECK_EQ_INT(s.last_post.op, RF_OP_KEY_SUBKEYS);
    CHECK_EQ_INT(s.last_post.count, n);
    CHECK(s.last_post.out_keys == kids);                    /* the tokens it filled in */
    rf_name nm;
    CHECK_EQ_INT(rf_key_name(h, kids[0], &nm), RF_OK);
    CHECK(s.last_post.out_name.ptr == nm.ptr && s.last_post.out_name.nbytes == nm.nbytes);
    /* a write is flagged, and vetoed before the backend: 5, not 120 */
    s.veto_op = RF_OP_VALUE_SET;
    CHECK_EQ_INT(rf_value_set(h, root, NAME_X, 1, 4, "\1\0\0\0", 4), RF_E_ACCESS_DENIED);
    CHECK(strstr(rf_last_error()->message, "vetoed") != NULL);
    CHECK(s.last_pre.flags & RF_OPREC_WRITE && s.last_post.status == RF_E_ACCESS_DENIED);
    s.veto_op = 0;
    CHECK_EQ_INT(rf_value_set(h, root, NAME_X, 1, 4, "\1\0\0\0", 4), RF_E_NOT_SUPPORTED);
    CHECK(strstr(rf_last_error()->message, "regf") != NULL);   /* the hook kept the error */
    /* a snapshot's own reads are hooked too: the profiler sees what it costs */
    rf_bytes b = { NULL, 0, 0 };
    uint64_t reads = s.reads;
    CHECK_EQ_INT(rf_key_snapshot(h, root, RF_SNAP_SUBTREE, 50, &b), RF_OK);
    CHECK(s.reads - reads >= 1);
    CHECK_EQ_INT(s.last_post.op, RF_OP_SNAPSHOT);
    CHECK_EQ_INT(s.last_post.bytes, b.len);
    rf_bytes_free(&b);
    CHECK_EQ_INT(strcmp(rf_op_name(RF_OP_READ_VALUES), "read_values"), 0);
    CHECK_EQ_INT(strcmp(rf_op_name(9999), "?"), 0);
    /* a vetoed open returns no hive */
    s.veto_op = RF_OP_HIVE_OPEN;
    rf_hive *h2 = (rf_hive *)1;
    CHECK_EQ_INT(rf_hive_open(path, NULL, &h2), RF_E_ACCESS_DENIED);
    CHECK(h2 == NULL);
    s.veto_op = 0;
    rf_hive_close(h);
    CHECK_EQ_INT(s.last_post.op, RF_OP_HIVE_CLOSE);
    /* removed: nothing more is seen */
    rf_hook_set(NULL, NULL, 0);
    int total = s.pre + s.post;
    CHECK_EQ_INT(rf_hive_open(path, NULL, &h), RF_OK);
    rf_hive_close(h);
    CHECK_EQ_INT(s.pre + s.post, total);
}

/* Slots a version-1 table does not have: a backend built against the old,
 * shorter rf_backend_ops would leave whatever follows it there. */
static int v2_calls;
static rf_status v2_deleted_read(rf_hive *h, uint64_t off, void *buf, size_t cap, size_t *len)
{
    (void)h; (void)off; (void)buf; (void)cap;
    *len = 0;
    return ++v2_calls, RF_OK;
}
static rf_status v2_slack(rf_hive *h, rf_slack *out, size_t cap, size_t *n)
{
    (void)h; (void)out; (void)cap;
    *n = 0;
    return ++v2_calls, RF_OK;
}
static rf_status v2_value_set(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars, uint32_t type,
                              const void *data, size_t len)
{
    (void)h; (void)k; (void)name; (void)nchars; (void)type; (void)data; (void)len;
    return ++v2_calls, RF_OK;
}

static void test_version_1_table(void)
{
    rf_backend_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.version = 1;
    ops.name = "old";
    ops.deleted_read = v2_deleted_read;
    ops.slack = v2_slack;
    ops.value_set = v2_value_set;
    rf_hive h = { &ops };
    uint8_t buf[8];
    size_t len, n;
    rf_slack sl[2];
    CHECK_EQ_INT(rf_hive_deleted_read(&h, 0x1000, buf, sizeof buf, &len), RF_E_NOT_SUPPORTED);
    CHECK(strstr(rf_last_error()->message, "old") != NULL);
    CHECK_EQ_INT(rf_hive_slack(&h, sl, 2, &n), RF_E_NOT_SUPPORTED);
    CHECK_EQ_INT(rf_value_set(&h, 0, NAME_X, 1, 4, "\1\0\0\0", 4), RF_E_NOT_SUPPORTED);
    CHECK_EQ_INT(v2_calls, 0);
    ops.version = 3;                         /* no cells of one record before version 4 */
    uint64_t off = 7;
    CHECK_EQ_INT(rf_key_slack(&h, 1, sl), RF_E_NOT_SUPPORTED);
    CHECK_EQ_INT(rf_value_slack(&h, 1, sl), RF_E_NOT_SUPPORTED);
    CHECK_EQ_INT(rf_hive_token_offset(&h, 1, &off), RF_E_NOT_SUPPORTED);
    CHECK(off == RF_NO_OFFSET && sl[0].length == 0 && sl[1].cell == RF_NO_OFFSET);
    ops.version = RF_BACKEND_OPS_VERSION;   /* the same slots, now in the table */
    CHECK_EQ_INT(rf_hive_deleted_read(&h, 0x1000, buf, sizeof buf, &len), RF_OK);
    CHECK_EQ_INT(rf_hive_slack(&h, sl, 2, &n), RF_OK);
    CHECK_EQ_INT(v2_calls, 2);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_core_api HIVE\n");
        return 2;
    }
    rf_hive *h;
    rf_key root;
    if (rf_hive_open(argv[1], NULL, &h) != RF_OK) {
        fprintf(stderr, "cannot open %s: %s\n", argv[1], rf_last_error()->message);
        return 2;
    }
    CHECK_EQ_INT(rf_hive_root(h, &root), RF_OK);
    test_not_supported(h, root);
    test_security(h, root);
    test_snapshot(h, root);
    rf_hive_close(h);
    test_hooks(argv[1]);
    test_version_1_table();
    return CHECK_DONE();
}
