/*
 * fuzz_regf.c — libFuzzer target for the regf reader.
 *
 * The input is a whole hive file. It is opened with rf_hive_open_memory
 * (strictly; when that fails, leniently, so damaged base blocks and hbins still
 * reach the key code; and always tolerantly, so the resynchronising hbin walk
 * and everything it lets through is exercised too), then everything reachable is read the way a forensic
 * tool would: every key (name, class, info, parent chain, security descriptor
 * and its SDDL), every value (info, data, lookup by name), rf_read_values both
 * ways, and rf_hive_scan strictly, skipping value errors only (Hive.walk's
 * scan) and with RF_SCAN_SKIP_ERRORS, also under tight limits. ASan/UBSan
 * catch memory errors; the abort()s below catch broken promises of the API,
 * which are bugs too:
 *   - an RF_E_CORRUPT status always comes with rf_last_error() details (code
 *     and offset);
 *   - a key reached from the root has a parent chain leading back to the root
 *     in exactly its depth (no grafted subtrees);
 *   - a successful read returns exactly the length the vk declares;
 *   - offsets that scan and read_values hand out stay inside the mapping;
 *   - rf_sd_to_sddl's MORE_DATA size is enough on the second call;
 *   - a row status in read_values/scan is a documented one (never 6, "bad
 *     handle", for a damaged list entry: that is RF_E_CORRUPT);
 *   - deleted records (free cells) point only inside their cell / the mapping.
 * FUZZ_REGF_LAX_ROWS=1 turns the row-status check off, so a long run can look
 * past a known bug there.
 *
 * Inputs also go through changed_after_open(): the hive is opened from an
 * exactly sized copy, then cell sizes and length fields are rewritten in
 * place (the file changing under an open reader) and it is read again; every
 * read must stay inside the buffer.
 *
 * LLVMFuzzerCustomMutator is field-aware (the C twin of fuzz/hive_mutator.py):
 * most mutations find the hbins and cells of the input and rewrite a cell
 * size, a record field (nk/vk/lf/lh/li/ri/db/sk), an hbin header or a
 * base-block field with a boundary value or an offset into another cell;
 * the rest are libFuzzer's own byte-level mutations.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdlib.h>
#include <string.h>

#include "regfast/regfast.h"

#define MAX_KEYS   20000
#define MAX_LIST   4096
#define MAX_DEPTH  600

static uint8_t databuf[1 << 22];
static int lax_rows;
static int changed;     /* inside changed_after_open(): even the start key may have gone bad */
static int tolerant_problems = -1; /* inside tolerant(): 1 if the open listed problems, 0 if none; else -1 */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *e = getenv("FUZZ_REGF_LAX_ROWS");
    lax_rows = e && *e && *e != '0';
    return 0;
}

/* Statuses a row may carry: found, missing, filtered, arena/big data, a name
 * too long to exist, damage, a configured limit. */
static int row_status_ok(int32_t st)
{
    return lax_rows || st == RF_OK || st == RF_E_NOT_FOUND || st == RF_E_INVALID_DATA ||
           st == RF_E_MORE_DATA || st == RF_E_INVALID_PARAMETER || st == RF_E_CORRUPT ||
           st == RF_E_LIMIT;
}
static uint8_t arena[1 << 16];

#define REQUIRE(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_regf.c:%d: broken promise: %s (last error 0x%x at 0x%llx: %s)\n", __LINE__, \
            #cond, (unsigned)rf_last_error()->code, (unsigned long long)rf_last_error()->offset, \
            rf_last_error()->message); abort(); } } while (0)

static rf_status checked(rf_status st)
{
    if (st == RF_E_CORRUPT)
        REQUIRE(rf_last_error()->code == RF_E_CORRUPT && rf_last_error()->offset != RF_NO_OFFSET &&
                rf_last_error()->message[0]);
    return st;
}

static void touch(const void *p, size_t n)
{
    if (!n) return;
    volatile uint8_t x = ((const uint8_t *)p)[0] ^ ((const uint8_t *)p)[n - 1];
    (void)x;
}

/* A stored name as UTF-16 code units (Latin-1 widened); returns the count. */
static size_t name16(const rf_name *n, uint16_t *out, size_t cap)
{
    const uint8_t *p = n->ptr;
    size_t chars = n->utf16 ? n->nbytes / 2 : n->nbytes;
    if (chars > cap) chars = cap;
    for (size_t i = 0; i < chars; i++)
        out[i] = n->utf16 ? (uint16_t)(p[2 * i] | p[2 * i + 1] << 8) : p[i];
    return chars;
}

static void read_sddl(const uint8_t *sd, size_t len)
{
    char small[64];
    size_t need = 0;
    rf_status st = rf_sd_to_sddl(sd, len, small, sizeof small, &need);
    if (st == RF_OK) {
        REQUIRE(need < sizeof small && strlen(small) == need);
    } else if (st == RF_E_MORE_DATA) {
        char *big = malloc(need + 1);
        size_t need2 = 0;
        REQUIRE(rf_sd_to_sddl(sd, len, big, need + 1, &need2) == RF_OK && need2 == need);
        REQUIRE(strlen(big) == need);
        free(big);
    } else {
        REQUIRE(st == RF_E_INVALID_DATA);
    }
}

static void batch_checks(const rf_batch *b, const uint8_t *base, size_t maplen)
{
    for (size_t i = 0; i < b->n && i < b->cap; i++) {
        REQUIRE(row_status_ok(b->status[i]));
        if (b->status[i] != RF_OK) continue;
        if (b->offset[i] & RF_BATCH_IN_ARENA) {
            uint64_t off = b->offset[i] & ~RF_BATCH_IN_ARENA;
            REQUIRE(off + b->length[i] <= b->arena_cap);
            touch(b->arena + off, b->length[i]);
        } else {
            REQUIRE(b->offset[i] + b->length[i] <= maplen);
            touch(base + b->offset[i], b->length[i]);
        }
    }
}

static void do_values(rf_hive *h, rf_key k, const uint8_t *base, size_t maplen)
{
    size_t n = 0;
    rf_status st = checked(rf_key_values(h, k, NULL, 0, &n));
    if (st != RF_E_MORE_DATA || n > MAX_LIST) return;
    rf_value *v = malloc(n * sizeof *v);
    rf_name *names = malloc(n * sizeof *names);
    size_t nn = 0;
    if (checked(rf_key_values(h, k, v, n, &n)) == RF_OK) {
        for (size_t i = 0; i < n; i++) {
            rf_value_info vi;
            const uint8_t *data;
            size_t len;
            if (checked(rf_value_get_info(h, v[i], &vi)) != RF_OK) continue;
            touch(vi.name.ptr, vi.name.nbytes);
            names[nn++] = vi.name;
            st = checked(rf_value_read(h, v[i], NULL, 0, &data, &len));
            if (vi.flags & RF_VALUE_BIG_DATA) {
                REQUIRE(st == RF_E_MORE_DATA && len == vi.data_len);
                st = checked(rf_value_read(h, v[i], databuf, sizeof databuf, &data, &len));
                if (vi.data_len <= sizeof databuf) REQUIRE(st == RF_OK || st == RF_E_CORRUPT);
            } else {
                REQUIRE(st == RF_OK); /* get_info located the data already */
            }
            if (st == RF_OK) {
                REQUIRE(len == vi.data_len);
                touch(data, len);
            }
            {   /* its slack (rf_value_slack): same checks as get_info, inside the mapping */
                rf_slack vs[2];
                REQUIRE(checked(rf_value_slack(h, v[i], vs)) == RF_OK);
                for (int j = 0; j < 2; j++) {
                    if (vs[j].cell == RF_NO_OFFSET) continue;
                    REQUIRE(vs[j].offset <= maplen && vs[j].length <= maplen - vs[j].offset);
                    touch(base + vs[j].offset, vs[j].length);
                }
                REQUIRE(vs[0].cell == v[i] + 4096);
            }
            uint16_t w[1024];
            size_t wn = name16(&vi.name, w, 1024);
            rf_value found;
            st = checked(rf_value_open_utf16(h, k, w, wn, &found));
            REQUIRE(st == RF_OK || st == RF_E_CORRUPT || st == RF_E_NOT_FOUND);
        }
    }
    /* read_values: every value, then by the names collected, with a filter */
    size_t cap = n + 1;
    uint32_t *type = malloc(cap * 4), *length = malloc(cap * 4);
    int32_t *status = malloc(cap * 4);
    uint64_t *offset = malloc(cap * 8);
    rf_name *rn = malloc(cap * sizeof *rn);
    rf_value *tok = malloc(cap * sizeof *tok);
    rf_batch b;
    memset(&b, 0, sizeof b);
    b.struct_size = sizeof b;
    b.cap = cap;
    b.type = type;
    b.status = status;
    b.offset = offset;
    b.length = length;
    b.name = rn;
    b.arena = arena;
    b.arena_cap = sizeof arena;
    b.token = tok;
    st = checked(rf_read_values(h, k, NULL, 0, NULL, 0, 0, &b));
    if (st == RF_OK || st == RF_E_MORE_DATA) batch_checks(&b, base, maplen);
    static const uint32_t types[] = { RF_REG_SZ, RF_REG_DWORD, RF_REG_BINARY };
    b.name = NULL;
    st = checked(rf_read_values(h, k, names, nn, types, 3, RF_BATCH_COPY, &b));
    if (st == RF_OK || st == RF_E_MORE_DATA) batch_checks(&b, base, maplen);
    free(type); free(length); free(status); free(offset); free(rn); free(tok);
    free(v);
    free(names);
}

static void do_scan(rf_hive *h, uint32_t flags, const uint8_t *base, size_t maplen)
{
    rf_hive_info info;
    if (rf_hive_get_info(h, &info) != RF_OK) return;
    size_t kc = info.nk_cells + 1, vc = info.vk_cells + 1;
    if (kc > MAX_KEYS || vc > MAX_KEYS) return;
    rf_scan s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.flags = flags;
    s.key_cap = kc;
    s.key_token = malloc(kc * 4); s.key_parent = malloc(kc * 4); s.key_last_write = malloc(kc * 8);
    s.key_name_len = malloc(kc * 4); s.key_status = malloc(kc * 4);
    /* the optional columns: filled on one run in two, checked against what
     * they follow from (key_parent, value_key) */
    int optional = (flags & RF_SCAN_SKIP_ERRORS) != 0;
    if (optional) { s.key_depth = malloc(kc * 2); s.key_n_values = malloc(kc * 4); }
    s.value_cap = vc;
    s.value_key = malloc(vc * 4); s.value_token = malloc(vc * 4); s.value_name_len = malloc(vc * 4);
    s.value_type = malloc(vc * 4); s.value_offset = malloc(vc * 4);
    s.value_length = malloc(vc * 4); s.value_status = malloc(vc * 4);
    rf_status st = checked(rf_hive_scan(h, 0, &s));
    REQUIRE(s.n_keys <= kc && s.n_values <= vc);
    if (flags & RF_SCAN_SKIP_ERRORS)
        REQUIRE(st == RF_OK || st == RF_E_MORE_DATA || st == RF_E_NO_MEMORY || (changed && st == RF_E_CORRUPT));
    /* every key is visited once and is an nk: nk_cells rows always suffice
     * (value rows are per list entry and may not fit: MORE_DATA is fine) */
    REQUIRE(s.n_keys <= info.nk_cells);
    for (size_t i = 0; i < s.n_keys; i++) {
        REQUIRE(s.key_parent[i] < (int64_t)i);
        REQUIRE(RF_SCAN_KEY_NAME_AT(s.key_token[i]) + (s.key_name_len[i] & ~RF_NAME_UTF16_BIT) <= maplen);
        touch(base + RF_SCAN_KEY_NAME_AT(s.key_token[i]), s.key_name_len[i] & ~RF_NAME_UTF16_BIT);
        if (optional)
            REQUIRE(s.key_depth[i] == (s.key_parent[i] < 0 ? 0 : s.key_depth[s.key_parent[i]] + 1));
        for (size_t j = 0; j < i && j < 64; j++) REQUIRE(s.key_token[j] != s.key_token[i]);
    }
    /* Rows are complete when the scan finished or ran out of room; after a
     * strict-mode error the last value row may lack its status. */
    if (st != RF_OK && st != RF_E_MORE_DATA) s.n_values = s.n_values ? s.n_values - 1 : 0;
    for (size_t i = 0; i < s.n_keys; i++) REQUIRE(row_status_ok(s.key_status[i]));
    for (size_t i = 0; i < s.n_values; i++) {
        REQUIRE(row_status_ok(s.value_status[i]));
        /* a tolerant open lists every value a read refuses (its check at
         * open): a damaged value row with no problem listed was dropped
         * silently (big data is only located by a scan; limits are not damage) */
        if (tolerant_problems == 0 && !changed)
            REQUIRE(s.value_status[i] == RF_OK || s.value_status[i] == RF_E_MORE_DATA ||
                    s.value_status[i] == RF_E_LIMIT);
        if (s.value_status[i] != RF_OK) continue;
        REQUIRE(s.value_key[i] < s.n_keys);
        REQUIRE(i == 0 || s.value_key[i] >= s.value_key[i - 1]); /* a key's values: one run */
        REQUIRE(RF_SCAN_VALUE_NAME_AT(s.value_token[i]) + (s.value_name_len[i] & ~RF_NAME_UTF16_BIT) <= maplen);
        REQUIRE((uint64_t)s.value_offset[i] + s.value_length[i] <= maplen);
        touch(base + s.value_offset[i], s.value_length[i]);
        if (!changed) {
            /* the scan's inline locate (regf_locate_fast) agrees with a
             * value's own read (regf_locate): same type, length and bytes */
            rf_value_info vi;
            const uint8_t *data;
            size_t len;
            REQUIRE(rf_value_get_info(h, s.value_token[i], &vi) == RF_OK && vi.type == s.value_type[i] &&
                    vi.data_len == s.value_length[i]);
            REQUIRE(rf_value_read(h, s.value_token[i], NULL, 0, &data, &len) == RF_OK &&
                    data == base + s.value_offset[i] && len == s.value_length[i]);
        }
    }
    if (optional && st == RF_OK) {
        /* key_n_values: the number of value rows of each key */
        size_t row = 0;
        for (size_t i = 0; i < s.n_keys; i++) {
            size_t n = 0;
            while (row < s.n_values && s.value_key[row] == i) { row++; n++; }
            REQUIRE(s.key_n_values[i] == ((flags & RF_SCAN_VALUES) ? n : 0));
        }
    }
    free(s.key_token); free(s.key_parent); free(s.key_depth); free(s.key_last_write);
    free(s.key_n_values); free(s.key_name_len); free(s.key_status);
    free(s.value_key); free(s.value_token); free(s.value_name_len);
    free(s.value_type); free(s.value_offset); free(s.value_length); free(s.value_status);
}

/* Deleted records: each one is an nk/vk signature at 4 past its offset,
 * inside the mapping, with everything it points at inside the mapping too; a
 * record that starts a cell starts a free cell, or an allocated one nothing
 * references; its data reads back at the length it claims. Slack: inside its
 * cell, which is allocated. */
/* A strict open that found damage since (hbins are checked on first use):
 * rf_hive_get_info, which checks them all, says so. */
static int damaged_since_open(rf_hive *h)
{
    rf_hive_info info;
    return checked(rf_hive_get_info(h, &info)) == RF_E_CORRUPT;
}

static void do_deleted(rf_hive *h, const uint8_t *base, size_t maplen)
{
    size_t n = 0;
    rf_status st = checked(rf_hive_deleted(h, NULL, 0, &n));
    if (st == RF_E_CORRUPT) {
        /* passes over every cell check every hbin first: they fail as get_info does */
        REQUIRE(damaged_since_open(h) && checked(rf_hive_slack(h, NULL, 0, &n)) == RF_E_CORRUPT);
        return;
    }
    if (st == RF_OK) goto slack;
    REQUIRE(st == RF_E_MORE_DATA);
    if (n > MAX_KEYS) return;
    rf_deleted *d = malloc(n * sizeof *d);
    size_t got = 0;
    REQUIRE(rf_hive_deleted(h, d, n, &got) == RF_OK && got == n);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = d[i].name.ptr;
        REQUIRE(d[i].kind == RF_DELETED_KEY || d[i].kind == RF_DELETED_VALUE);
        REQUIRE(d[i].source >= RF_DELETED_FREE && d[i].source <= RF_DELETED_REMNANT);
        REQUIRE(d[i].confidence <= 100);
        REQUIRE(d[i].offset >= 4096 && d[i].offset + 6 <= maplen);
        REQUIRE(base[d[i].offset + 4] == (d[i].kind == RF_DELETED_KEY ? 'n' : 'v') && base[d[i].offset + 5] == 'k');
        REQUIRE(p > base + d[i].offset + 4 && p + d[i].name.nbytes <= base + maplen);
        touch(p, d[i].name.nbytes);
        const uint8_t *payload;
        size_t plen;
        int allocated = 1;
        if (rf_hive_cell(h, d[i].offset, &payload, &plen, &allocated) == RF_OK) {
            REQUIRE(d[i].source == RF_DELETED_FREE || d[i].source == RF_DELETED_UNREFERENCED);
            REQUIRE(allocated == (d[i].source == RF_DELETED_UNREFERENCED));
            REQUIRE(p >= payload && p + d[i].name.nbytes <= payload + plen);
        }
        /* states 0-5 (regfast.h); 5, "not checked" (the pass's segment budget), is big data's */
        REQUIRE(d[i].kind != RF_DELETED_VALUE || d[i].data_state <= 5);
        REQUIRE(d[i].data_state != 5 || (d[i].data_flags & RF_VALUE_BIG_DATA));
        if (d[i].kind == RF_DELETED_VALUE && d[i].data_offset != RF_NO_OFFSET) {
            REQUIRE(d[i].data_state >= 1 && d[i].data_state <= 3 && !(d[i].data_flags & RF_VALUE_BIG_DATA));
            REQUIRE(d[i].data_offset + d[i].data_len <= maplen);
            touch(base + d[i].data_offset, d[i].data_len);
        }
        if (d[i].kind == RF_DELETED_VALUE) {
            size_t len = 0;
            st = rf_hive_deleted_read(h, d[i].offset, databuf, sizeof databuf, &len);
            REQUIRE(st == RF_OK || st == RF_E_NOT_FOUND || st == RF_E_MORE_DATA);
            if (st == RF_OK) REQUIRE(len == d[i].data_len);
            if (st == RF_OK && d[i].data_state >= 1 && d[i].data_state <= 3 && d[i].data_offset != RF_NO_OFFSET)
                REQUIRE(memcmp(databuf, base + d[i].data_offset, len) == 0);
        }
        if (d[i].kind == RF_DELETED_KEY && d[i].parent != RF_NO_OFFSET) {
            REQUIRE(rf_hive_cell(h, d[i].parent, &payload, &plen, &allocated) == RF_OK && allocated);
            rf_name nm;
            REQUIRE(checked(rf_key_name(h, d[i].parent - 4096, &nm)) != RF_E_INVALID_HANDLE);
        }
    }
    free(d);
slack:
    n = 0;
    st = rf_hive_slack(h, NULL, 0, &n);
    REQUIRE(st == RF_OK || st == RF_E_MORE_DATA);
    if (st == RF_OK || n > 4 * MAX_KEYS) return;
    rf_slack *sl = malloc(n * sizeof *sl);
    REQUIRE(rf_hive_slack(h, sl, n, &got) == RF_OK && got == n);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *payload;
        size_t plen;
        int allocated = 0;
        REQUIRE(sl[i].kind >= RF_CELL_NK && sl[i].kind <= RF_CELL_CLASS && sl[i].length > 0);
        REQUIRE(rf_hive_cell(h, sl[i].cell, &payload, &plen, &allocated) == RF_OK && allocated);
        REQUIRE(sl[i].offset + sl[i].length == sl[i].cell + 4 + plen && sl[i].offset + sl[i].length <= maplen);
        touch(base + sl[i].offset, sl[i].length);
    }
    free(sl);
}

/* rf_key_get_security: the parts asked for, filtered from the stored
 * descriptor (inside the guard since it reads the mapping). */
static void get_security(rf_hive *h, rf_key k)
{
    static uint8_t sdbuf[1 << 16];
    size_t len = 0;
    uint32_t got = 0;
    rf_status st = checked(rf_key_get_security(h, k, RF_SI_OWNER | RF_SI_DACL, sdbuf, sizeof sdbuf, &len, &got));
    if (st == RF_OK) {
        REQUIRE(len <= sizeof sdbuf && !(got & ~(uint32_t)(RF_SI_OWNER | RF_SI_DACL)));
        touch(sdbuf, len);
    }
}

/* rf_key_snapshot of the whole tree (the core's walk, run by the regf
 * backend inside its guard): a snapshot that succeeds parses. */
static void snapshot(rf_hive *h)
{
    rf_bytes snap = { NULL, 0, 0 };
    size_t size = 0;
    rf_status st = checked(rf_key_snapshot(h, 0, RF_SNAP_SUBTREE | RF_SNAP_KEEP_DATA, 2000, &snap));
    if (st == RF_OK) REQUIRE(rf_snapshot_size(snap.data, snap.len, &size) == RF_OK && size == snap.len);
    else REQUIRE(snap.len == 0);
    rf_bytes_free(&snap);
}

typedef struct frame { rf_key k; uint32_t depth; } frame;

static void walk(rf_hive *h)
{
    const uint8_t *base;
    size_t maplen;
    rf_key root;
    REQUIRE(rf_hive_mapping(h, &base, &maplen) == RF_OK);
    REQUIRE(rf_hive_root(h, &root) == RF_OK);
    frame *stack = malloc(MAX_KEYS * sizeof *stack);
    size_t top = 0, visited = 0;
    stack[top++] = (frame){ root, 0 };
    while (top && visited < MAX_KEYS) {
        frame f = stack[--top];
        rf_key k = f.k, p;
        rf_name nm;
        rf_key_info ki;
        const uint8_t *sd;
        size_t sdlen, n = 0;
        visited++;
        if (checked(rf_key_name(h, k, &nm)) == RF_OK) touch(nm.ptr, nm.nbytes);
        {   /* a key's own cell, seen raw: allocated */
            const uint8_t *payload;
            size_t plen;
            int allocated = 0;
            REQUIRE(rf_hive_cell(h, k + 4096, &payload, &plen, &allocated) == RF_OK && allocated);
            touch(payload, plen);
            /* its slack (rf_key_slack): inside that very cell */
            uint64_t at = 0;
            rf_slack ks[1];
            REQUIRE(rf_hive_token_offset(h, k, &at) == RF_OK && at == k + 4096);
            REQUIRE(checked(rf_key_slack(h, k, ks)) == RF_OK);
            REQUIRE(ks[0].cell == at && ks[0].offset >= at + 4 && ks[0].offset + ks[0].length == at + 4 + plen);
            touch(base + ks[0].offset, ks[0].length);
        }
        if (checked(rf_key_class(h, k, &nm)) == RF_OK) touch(nm.ptr, nm.nbytes);
        checked(rf_key_get_info(h, k, &ki));
        if (checked(rf_key_security(h, k, &sd, &sdlen)) == RF_OK) read_sddl(sd, sdlen);
        get_security(h, k);
        /* the parent chain leads back to the root in exactly `depth` steps */
        rf_key up = k;
        for (uint32_t d = 0; d < f.depth; d++) {
            REQUIRE(checked(rf_key_parent(h, up, &p)) == RF_OK);
            up = p;
        }
        REQUIRE(up == root);
        REQUIRE(rf_key_parent(h, up, &p) == RF_E_NOT_FOUND);
        do_values(h, k, base, maplen);

        rf_status st = checked(rf_key_subkeys(h, k, NULL, 0, &n));
        if (st != RF_E_MORE_DATA || n > MAX_LIST || top + n > MAX_KEYS || f.depth >= MAX_DEPTH) continue;
        rf_key *kids = malloc(n * sizeof *kids);
        if (checked(rf_key_subkeys(h, k, kids, n, &n)) == RF_OK) {
            for (size_t i = n; i-- > 0;) {
                stack[top++] = (frame){ kids[i], f.depth + 1 };
                /* a lookup by the stored name finds a key (the first of that name) */
                uint16_t w[300];
                if (rf_key_name(h, kids[i], &nm) == RF_OK) {
                    size_t wn = name16(&nm, w, 300);
                    rf_key found;
                    st = checked(rf_key_child(h, k, w, wn, &found));
                    REQUIRE(st == RF_OK || st == RF_E_NOT_FOUND || st == RF_E_CORRUPT || st == RF_E_BAD_PATHNAME);
                }
            }
        }
        free(kids);
    }
    free(stack);
    snapshot(h);
    do_deleted(h, base, maplen);
    for (uint64_t off = 0; off < maplen + 64; off += 4096 - 8) {   /* a few arbitrary offsets */
        const uint8_t *payload;
        size_t plen;
        int allocated;
        rf_status st = checked(rf_hive_cell(h, off, &payload, &plen, &allocated));
        REQUIRE(st == RF_OK || st == RF_E_NOT_FOUND || (st == RF_E_CORRUPT && damaged_since_open(h)));
        if (st == RF_OK) REQUIRE(payload >= base && payload + plen <= base + maplen);
    }
    do_scan(h, RF_SCAN_VALUES, base, maplen);
    do_scan(h, RF_SCAN_VALUES | RF_SCAN_SKIP_VALUE_ERRORS, base, maplen);   /* Hive.walk's */
    do_scan(h, RF_SCAN_VALUES | RF_SCAN_SKIP_ERRORS, base, maplen);
}

/* RF_OPEN_TOLERANT: the resynchronising hbin walk. Its promises: the problem
 * list is bounded, in file order, inside the file, with NUL-terminated text;
 * and the hive it opens keeps every promise walk() checks — only cells of good
 * regions are reachable. Without a usable root, cells and deleted records
 * still are. */
static void tolerant(const uint8_t *data, size_t size)
{
    rf_hive *h = NULL;
    rf_open_opts o = RF_OPEN_OPTS_INIT;
    o.flags = RF_OPEN_TOLERANT;
    rf_status st = checked(rf_hive_open_memory(data, size, &o, &h));
    if (st != RF_OK) {
        /* only what is not a hive at all, or a file shorter than its base block */
        REQUIRE(h == NULL && (st == RF_E_UNSUPPORTED_FORMAT || (st == RF_E_CORRUPT && size < 4096)));
        return;
    }
    const rf_problem *p;
    size_t np;
    uint64_t total;
    REQUIRE(rf_hive_problems(h, &p, &np, &total) == RF_OK && np <= RF_MAX_PROBLEMS && total >= np);
    for (size_t i = 0; i < np; i++) {
        REQUIRE(p[i].offset <= size && memchr(p[i].reason, 0, sizeof p[i].reason) != NULL);
        REQUIRE(i == 0 || p[i - 1].offset <= p[i].offset);
    }
    rf_hive_info info;
    REQUIRE(rf_hive_get_info(h, &info) == RF_OK && info.hbins_found <= size - 4096);
    rf_key root;
    if (checked(rf_hive_root(h, &root)) == RF_OK) {
        tolerant_problems = total > 0;
        walk(h);
        tolerant_problems = -1;
    } else {
        const uint8_t *base;
        size_t maplen;
        REQUIRE(rf_hive_mapping(h, &base, &maplen) == RF_OK);
        do_deleted(h, base, maplen);
    }
    rf_hive_close(h);
}

/* ---- the file changes after the open --------------------------------------- */

/* Cell starts of a buffer (the hbins it walks cleanly), at most `cap`. */
static size_t cell_starts(const uint8_t *d, size_t n, size_t *out, size_t cap)
{
    size_t k = 0;
    for (size_t bin = 4096; bin + 32 <= n && k < cap;) {
        uint32_t hs = (uint32_t)(d[bin + 8] | d[bin + 9] << 8 | d[bin + 10] << 16 | (uint32_t)d[bin + 11] << 24);
        if (memcmp(d + bin, "hbin", 4) != 0 || hs < 4096 || hs % 4096 || bin + hs > n) break;
        for (size_t c = bin + 32; c + 8 <= bin + hs && k < cap;) {
            int32_t raw = (int32_t)(d[c] | d[c + 1] << 8 | d[c + 2] << 16 | (uint32_t)d[c + 3] << 24);
            int64_t sz = raw < 0 ? -(int64_t)raw : raw;
            if (sz < 8 || sz % 8 || c + (size_t)sz > bin + hs) break;
            out[k++] = c;
            c += (size_t)sz;
        }
        bin += hs;
    }
    return k;
}

static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* Opens the input from an exactly sized copy, then rewrites (chosen by the
 * input's own hash) cell sizes and length fields in place and reads it all
 * again, deleted records, slack, descriptors and snapshots included: the
 * checks at the point of use must keep every read inside the buffer. A
 * strict open (`lazy`: hbins checked on first use) may find an hbin damaged
 * by the change: the passes over every cell then fail with RF_E_CORRUPT. */
static void read_changed(rf_hive *h, int lazy, size_t *starts, size_t n)
{
    const uint8_t *base;
    size_t maplen;
    rf_key root;
    rf_hive_mapping(h, &base, &maplen);
    if (rf_hive_root(h, &root) == RF_OK) {
        rf_key kids[64];
        size_t nk = 0;
        rf_name nm;
        if (rf_key_name(h, root, &nm) == RF_OK) touch(nm.ptr, nm.nbytes);
        if (rf_key_subkeys(h, root, kids, 64, &nk) == RF_OK)
            for (size_t i = 0; i < nk; i++) {
                if (rf_key_name(h, kids[i], &nm) == RF_OK) touch(nm.ptr, nm.nbytes);
                if (rf_key_class(h, kids[i], &nm) == RF_OK) touch(nm.ptr, nm.nbytes);
                do_values(h, kids[i], base, maplen);
            }
        do_values(h, root, base, maplen);
    }
    do_scan(h, RF_SCAN_VALUES | RF_SCAN_SKIP_ERRORS, base, maplen);
    if (rf_hive_root(h, &root) == RF_OK) get_security(h, root);
    snapshot(h);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *payload;
        size_t plen;
        int allocated;
        /* rf_hive_cell re-reads the size: a cell that no longer fits is
         * RF_E_CORRUPT, one that does is inside the buffer */
        rf_status st = checked(rf_hive_cell(h, starts[i], &payload, &plen, &allocated));
        REQUIRE(st == RF_E_CORRUPT || st == RF_E_NOT_FOUND ||
                (st == RF_OK && payload >= base && payload + plen <= base + maplen));
        if (st == RF_OK) touch(payload, plen);
    }
    {   /* carving and slack over the changed bytes: names and data inside */
        static rf_deleted d[256];
        static rf_slack sl[512];
        size_t nd = 0, ns = 0, len = 0;
        rf_status st = checked(rf_hive_deleted(h, d, 256, &nd));
        if (lazy && st == RF_E_CORRUPT) {
            REQUIRE(damaged_since_open(h) && checked(rf_hive_slack(h, sl, 512, &ns)) == RF_E_CORRUPT);
            return;
        }
        REQUIRE(st == RF_OK || st == RF_E_MORE_DATA);
        for (size_t i = 0; i < nd && i < 256; i++) {
            const uint8_t *p = d[i].name.ptr;
            REQUIRE(p >= base && p + d[i].name.nbytes <= base + maplen);
            touch(p, d[i].name.nbytes);
            if (d[i].kind == RF_DELETED_VALUE) {
                st = rf_hive_deleted_read(h, d[i].offset, databuf, sizeof databuf, &len);
                REQUIRE(st == RF_OK || st == RF_E_NOT_FOUND || st == RF_E_MORE_DATA);
            }
        }
        st = rf_hive_slack(h, sl, 512, &ns);
        REQUIRE(st == RF_OK || st == RF_E_MORE_DATA);
        for (size_t i = 0; i < ns && i < 512; i++) REQUIRE(sl[i].offset + sl[i].length <= maplen);
    }
}

/* A tolerant open (every hbin walked at open) and a strict one (hbins
 * checked on first use: after the change, for all but the root's). */
static void changed_after_open(const uint8_t *data, size_t size)
{
    static const int32_t sizes[] = { -0x7FFFFFF8, 0x7FFFFFF8, -8, 4, 0, -1, -4096 * 16 };
    uint8_t *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    rf_hive *h = NULL, *lazy = NULL;
    rf_open_opts o = RF_OPEN_OPTS_INIT;
    o.flags = RF_OPEN_TOLERANT;
    if (rf_hive_open_memory(buf, size, &o, &h) != RF_OK) {
        free(buf);
        return;
    }
    if (rf_hive_open_memory(buf, size, NULL, &lazy) != RF_OK) lazy = NULL;
    size_t starts[256], n = cell_starts(buf, size, starts, 256);
    uint32_t x = 2166136261u;
    for (size_t i = 0; i < size; i += 61) x = (x ^ data[i]) * 16777619u;
    for (int round = 0; n && round < 4; round++) {
        size_t c = starts[x % n];
        x = x * 1103515245u + 12345u;
        uint8_t *p = buf + c + 4;
        put32(buf + c, (uint32_t)sizes[(x >> 8) % (sizeof sizes / sizeof *sizes)]);
        if (p + 0x4C <= buf + size && p[0] == 'n' && p[1] == 'k') put16(p + 0x48, 0xFFFF);
        if (p + 0x14 <= buf + size && p[0] == 'v' && p[1] == 'k') { put16(p + 2, 0xFFFF); put32(p + 4, 0x7FFFFFFF); }
        if (p + 4 <= buf + size && (p[0] == 'l' || p[0] == 'r' || p[0] == 'd')) put16(p + 2, 0xFFFF);
        x = x * 1103515245u + 12345u;
    }
    changed = 1;
    read_changed(h, 0, starts, n);
    if (lazy) read_changed(lazy, 1, starts, n);
    changed = 0;
    rf_hive_close(h);
    rf_hive_close(lazy);
    free(buf);
}

/* ---- lazy checking against a reference walk -------------------------------
 *
 * A strict open checks an hbin's cells the first time an offset inside it is
 * used (regf_lazy.c), not all at open. The reference here is the strict walk
 * done eagerly, by this file's own code: the chain of hbin headers from the
 * first, and the chain of cell sizes inside each hbin. Raw cell lookups at
 * offsets in a scrambled order — so that most of them land in an hbin no
 * read has reached yet — must then agree with it exactly where it is good,
 * and fail with RF_E_CORRUPT (never return a cell) in a damaged hbin or past
 * a broken header, at the offset of that hbin's first bad cell or of the
 * header (every time: a damaged hbin's failure is kept); and rf_hive_get_info, which checks every hbin, must fail
 * at the reference's first damage in file order, or succeed on a good hive. */
static uint32_t le32(const uint8_t *p) { return (uint32_t)(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24); }

typedef struct ref_walk {
    const uint8_t *bins;
    uint64_t declared;   /* bytes of hbins */
    uint64_t chain_end;  /* the chain of good headers reaches this far */
    uint64_t first_bad;  /* file order: the first damage (header or cell), or UINT64_MAX */
    uint8_t *bad;        /* per 4 KiB page: its hbin's cells do not chain */
    uint64_t *bad_cell;  /* per 4 KiB page of a bad hbin: its first bad cell */
    uint64_t *bits;      /* cell starts of the good hbins */
} ref_walk;

static void ref_strict(ref_walk *r, const uint8_t *data, size_t size)
{
    r->bins = data + 4096;
    r->declared = le32(data + 0x28);
    r->first_bad = UINT64_MAX;
    r->chain_end = 0;
    r->bad = calloc(r->declared / 4096 + 1, 1);
    r->bad_cell = calloc(r->declared / 4096 + 1, sizeof *r->bad_cell);
    r->bits = calloc(r->declared / 512 + 1, 8);
    (void)size;
    for (uint64_t off = 0; off < r->declared;) {
        uint32_t hs = r->declared - off >= 32 ? le32(r->bins + off + 8) : 0;
        if (r->declared - off < 32 || memcmp(r->bins + off, "hbin", 4) != 0 || le32(r->bins + off + 4) != off ||
            hs < 4096 || hs % 4096 || hs > r->declared - off) {
            if (r->first_bad == UINT64_MAX) r->first_bad = off;
            return;
        }
        uint64_t end = off + hs;
        for (uint64_t c = off + 32; c < end;) {
            int32_t raw = (int32_t)le32(r->bins + c);
            uint64_t cs = raw < 0 ? (uint64_t)(-(int64_t)raw) : (uint64_t)raw;
            if (cs < 8 || cs % 8 || cs > end - c) {
                if (r->first_bad == UINT64_MAX) r->first_bad = c;
                memset(r->bad + off / 4096, 1, hs / 4096);
                for (uint64_t pg = off / 4096; pg < end / 4096; pg++) r->bad_cell[pg] = c;
                break;
            }
            c += cs;
        }
        if (!r->bad[off / 4096])
            for (uint64_t c = off + 32; c < end; c += (uint64_t)(int64_t)llabs((int32_t)le32(r->bins + c)))
                r->bits[(c >> 3) >> 6] |= (uint64_t)1 << ((c >> 3) & 63);
        off = end;
        r->chain_end = off;
    }
}

static void lazy_vs_reference(const uint8_t *data, size_t size)
{
    rf_hive *h = NULL;
    if (rf_hive_open_memory(data, size, NULL, &h) != RF_OK) return;
    ref_walk r;
    ref_strict(&r, data, size);
    uint32_t x = 2166136261u;
    for (size_t i = 0; i < size; i += 29) x = (x ^ data[i]) * 16777619u;
    uint64_t slots = r.declared / 8;
    for (int q = 0; q < 3000 && slots; q++) {
        x = x * 1103515245u + 12345u;
        uint64_t off = ((uint64_t)(x >> 4) % slots) * 8 + (q % 7 == 6 ? 4 : 0); /* now and then unaligned */
        const uint8_t *payload;
        size_t plen;
        int allocated;
        rf_status st = checked(rf_hive_cell(h, off + 4096, &payload, &plen, &allocated));
        if (off >= r.chain_end || r.bad[off / 4096]) {
            REQUIRE(st == RF_E_CORRUPT);            /* a damaged hbin is never read as cells */
            /* ...and the damage is named where it lies */
            REQUIRE(rf_last_error()->offset == (off >= r.chain_end ? r.chain_end : r.bad_cell[off / 4096]) + 4096);
            continue;
        }
        int is_cell = !(off & 7) && ((r.bits[(off >> 3) >> 6] >> ((off >> 3) & 63)) & 1);
        REQUIRE(st == (is_cell ? RF_OK : RF_E_NOT_FOUND));
        if (st == RF_OK) {
            int32_t raw = (int32_t)le32(r.bins + off);
            REQUIRE(payload == r.bins + off + 4 && plen == (size_t)llabs(raw) - 4 && allocated == (raw < 0));
        }
    }
    rf_hive_info info;
    rf_status st = checked(rf_hive_get_info(h, &info));
    if (r.first_bad == UINT64_MAX) {
        REQUIRE(st == RF_OK && info.hbins_found == r.declared);
    } else {
        REQUIRE(st == RF_E_CORRUPT && rf_last_error()->offset == r.first_bad + 4096);
    }
    free(r.bad);
    free(r.bad_cell);
    free(r.bits);
    rf_hive_close(h);
}

/* ---- the field-aware mutator ----------------------------------------------- */

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static uint32_t rnd(uint32_t *s) { *s = *s * 1103515245u + 12345u; return *s >> 8; }

static uint32_t boundary(uint32_t *s)
{
    static const uint32_t v[] = { 0, 1, 2, 3, 4, 5, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF,
                                  0x10000, 16343, 16344, 16345, 0x7FFFFFFF, 0x80000000u, 0xFFFFFFFFu,
                                  0x80000004u, 0x80000005u, 0xFFFFFFF8u };
    return v[rnd(s) % (sizeof v / sizeof *v)];
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    uint32_t s = seed;
    size_t starts[1024], n = size > 4096 ? cell_starts(data, size, starts, 1024) : 0;
    if (n == 0 || rnd(&s) % 4 == 0) return LLVMFuzzerMutate(data, size, max_size);
    size_t c = starts[rnd(&s) % n], o = starts[rnd(&s) % n];
    int32_t raw = (int32_t)(data[c] | data[c + 1] << 8 | data[c + 2] << 16 | (uint32_t)data[c + 3] << 24);
    uint32_t csize = raw < 0 ? (uint32_t)-(int64_t)raw : (uint32_t)raw;
    uint8_t *p = data + c + 4;
    uint32_t room = csize - 4, other = (uint32_t)(o - 4096);
    /* an offset that is wrong in an interesting way, or right for another cell */
    uint32_t offs[] = { other, other, other + 4, other + 2, other + 0x20, (uint32_t)(size - 4096), 0, 0xFFFFFFFFu,
                        (uint32_t)(size - 4096 + 8), (uint32_t)(c - 4096), 0x7FFFFFFF };
    uint32_t off_v = offs[rnd(&s) % (sizeof offs / sizeof *offs)];
    uint32_t len_v = rnd(&s) % 2 ? boundary(&s) : room + (rnd(&s) % 17) - 8;
    switch (rnd(&s) % 6) {
    case 0: { /* the cell size */
        static const int32_t sz[] = { 0, 1, -1, 4, -4, 8, -8, -0x7FFFFFF8, 0x7FFFFFF8 };
        int32_t v = rnd(&s) % 2 ? sz[rnd(&s) % (sizeof sz / sizeof *sz)] : -raw;
        put32(data + c, (uint32_t)v);
        break;
    }
    case 1: case 2: { /* a record field by signature */
        static const uint8_t nk_off[] = { 0x10, 0x1C, 0x28, 0x2C, 0x30 }, nk_len[] = { 0x14, 0x24 };
        if (room >= 0x4C && p[0] == 'n' && p[1] == 'k') {
            int k = rnd(&s) % 4;
            if (k == 0) put32(p + nk_off[rnd(&s) % 5], off_v);
            else if (k == 1) put32(p + nk_len[rnd(&s) % 2], len_v);
            else put16(p + (k == 2 ? 0x48 : 0x4A), (uint16_t)(rnd(&s) % 2 ? len_v : room - 0x4C + 1));
        } else if (room >= 0x14 && p[0] == 'v' && p[1] == 'k') {
            int k = rnd(&s) % 3;
            if (k == 0) put16(p + 2, (uint16_t)(rnd(&s) % 2 ? len_v : room - 0x14 + 1));
            else if (k == 1) put32(p + 4, len_v | (rnd(&s) % 3 == 0 ? 0x80000000u : 0));
            else put32(p + 8, off_v);
        } else if (room >= 8 && ((p[0] == 'l' && (p[1] == 'f' || p[1] == 'h' || p[1] == 'i')) ||
                                 (p[0] == 'r' && p[1] == 'i') || (p[0] == 'd' && p[1] == 'b'))) {
            uint32_t stride = p[1] == 'f' || p[1] == 'h' ? 8 : 4, entries = (room - 4) / stride;
            if (rnd(&s) % 3 == 0 || entries == 0) put16(p + 2, (uint16_t)len_v);
            else put32(p + 4 + stride * (rnd(&s) % entries), off_v);
        } else if (room >= 0x14 && p[0] == 's' && p[1] == 'k') {
            put32(p + (rnd(&s) % 2 ? 0x10 : 4 + 4 * (rnd(&s) % 3)), rnd(&s) % 2 ? len_v : off_v);
        } else if (room >= 4) { /* a value list or data: any slot as an offset */
            put32(p + 4 * (rnd(&s) % (room / 4)), off_v);
        }
        break;
    }
    case 3: /* one cell's payload over another's */
        if (o != c) {
            int32_t oraw = (int32_t)(data[o] | data[o + 1] << 8 | data[o + 2] << 16 | (uint32_t)data[o + 3] << 24);
            uint32_t os = oraw < 0 ? (uint32_t)-(int64_t)oraw : (uint32_t)oraw;
            memmove(p, data + o + 4, (os < csize ? os : csize) - 4);
        }
        break;
    case 4: { /* an hbin header field */
        size_t bin = 4096 + ((c - 4096) & ~(size_t)4095);
        while (bin > 4096 && memcmp(data + bin, "hbin", 4) != 0) bin -= 4096;
        if (rnd(&s) % 2) put32(data + bin + 8, rnd(&s) % 2 ? boundary(&s) : (uint32_t)(size - bin + 4096));
        else put32(data + bin + 4, rnd(&s) % 2 ? 0 : (uint32_t)(bin - 4096 + 4096));
        break;
    }
    default: { /* the root offset or the hbins size, checksum fixed */
        put32(data + (rnd(&s) % 2 ? 0x24 : 0x28), rnd(&s) % 2 ? off_v : len_v);
        uint32_t x = 0;
        for (int i = 0; i < 0x1FC; i += 4)
            x ^= (uint32_t)(data[i] | data[i + 1] << 8 | data[i + 2] << 16 | (uint32_t)data[i + 3] << 24);
        put32(data + 0x1FC, x == 0 ? 1 : x == 0xFFFFFFFFu ? 0xFFFFFFFEu : x);
        break;
    }
    }
    return size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rf_hive *h = NULL;
    int lenient = 0;
    tolerant(data, size);
    changed_after_open(data, size);
    lazy_vs_reference(data, size);
    rf_status st = checked(rf_hive_open_memory(data, size, NULL, &h));
    if (st == RF_OK) {
        /* strict: hbins are checked as reads reach them; damage elsewhere
         * shows first in get_info (which checks them all), then the lenient
         * open below reads the good prefix as before */
        walk(h);
        if (damaged_since_open(h)) {
            rf_hive_close(h);
            h = NULL;
            st = RF_E_CORRUPT;
        }
    } else {
        REQUIRE(h == NULL && (st == RF_E_CORRUPT || st == RF_E_UNSUPPORTED_FORMAT));
    }
    if (st != RF_OK) {
        rf_open_opts o = RF_OPEN_OPTS_INIT;
        o.flags = RF_OPEN_LENIENT;
        lenient = 1;
        st = checked(rf_hive_open_memory(data, size, &o, &h));
        if (st != RF_OK) {
            REQUIRE(h == NULL && (st == RF_E_CORRUPT || st == RF_E_UNSUPPORTED_FORMAT));
            return 0;
        }
    }
    rf_hive_info info;
    REQUIRE(rf_hive_get_info(h, &info) == RF_OK);
    REQUIRE(info.file_size == size && info.hbins_found <= size - 4096);
    if (lenient) walk(h);   /* (the strict open was walked above) */
    rf_hive_close(h);

    /* tight limits: the limit paths of lists, values and depth */
    rf_open_opts o = RF_OPEN_OPTS_INIT;
    o.flags = RF_OPEN_LENIENT;
    o.max_depth = 2;
    o.max_subkeys = 3;
    o.max_values = 3;
    if (rf_hive_open_memory(data, size, &o, &h) == RF_OK) {
        const uint8_t *base;
        size_t maplen;
        rf_hive_mapping(h, &base, &maplen);
        do_scan(h, RF_SCAN_VALUES | RF_SCAN_SKIP_ERRORS, base, maplen);
        rf_hive_close(h);
    }
    return 0;
}
