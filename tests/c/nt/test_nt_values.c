/* test_nt_values — batched reads (Partial and Full) equal to RegQueryValueExW
 * for every value, the arena contract, NtQueryMultipleValueKey detection,
 * values over 1 MB, and buffer negotiation against a value that grows. */
#include <stdio.h>
#include <stdlib.h>
#include "nt_test_util.h"
#include "nt/nt_internal.h"  /* nt_test_between_attempts */

#define NVALS 64

static wchar_t names[NVALS][400];
static rf_name rnames[NVALS];

static void make_values(HKEY k)
{
    for (int i = 0; i < NVALS; i++) {
        /* sorted creation order, so Wine (sorted) and Windows (creation order) enumerate alike */
        int len = swprintf(names[i], 400, L"v%03d", i);
        if (i == 7) { for (int j = len; j < 300; j++) names[i][j] = L'x'; names[i][300] = 0; } /* > 255 chars */
        if (i == 8) wcscpy(names[i], L"v008-\u00e9\u65e5");
        rnames[i].ptr = names[i];
        rnames[i].nbytes = (uint32_t)(wcslen(names[i]) * 2);
        rnames[i].utf16 = 1;
        BYTE data[2048];
        DWORD type, len2;
        switch (i % 8) {
        case 0: type = REG_SZ; len2 = (DWORD)((swprintf((wchar_t *)data, 1000, L"string %d", i) + 1) * 2); break;
        case 1: type = REG_DWORD; len2 = 4; memcpy(data, &i, 4); break;
        case 2: type = REG_QWORD; len2 = 8; { uint64_t q = (uint64_t)i << 40; memcpy(data, &q, 8); } break;
        case 3: type = REG_BINARY; len2 = (DWORD)(i * 13 % 1500); for (DWORD j = 0; j < len2; j++) data[j] = (BYTE)(j * 7 + i); break;
        case 4: type = REG_MULTI_SZ; len2 = sizeof L"a\0bb\0"; memcpy(data, L"a\0bb\0", len2); break;
        case 5: type = REG_EXPAND_SZ; len2 = sizeof L"%SystemRoot%\\x"; memcpy(data, L"%SystemRoot%\\x", len2); break;
        case 6: type = REG_NONE; len2 = 0; break;
        default: type = 0x12345678u; len2 = 5; memcpy(data, "\1\2\3\4\5", 5); break;
        }
        nt_set(k, names[i], type, data, len2);
    }
}

typedef struct cols {
    uint32_t type[NVALS + 8];
    int32_t  status[NVALS + 8];
    uint64_t offset[NVALS + 8];
    uint32_t length[NVALS + 8];
    rf_name  name[NVALS + 8];
    rf_value token[NVALS + 8];
} cols;

static rf_batch batch(cols *c, size_t cap, uint8_t *arena, size_t arena_cap)
{
    rf_batch b;
    memset(&b, 0, sizeof b);
    memset(c, 0xCC, sizeof *c);
    b.struct_size = sizeof b;
    b.cap = cap;
    b.type = c->type;
    b.status = c->status;
    b.offset = c->offset;
    b.length = c->length;
    b.name = c->name;
    b.token = c->token;
    b.arena = arena;
    b.arena_cap = arena_cap;
    return b;
}

/* Row i equals what RegQueryValueExW says about `name`. */
static int row_matches(HKEY k, const wchar_t *name, const rf_batch *b, size_t i)
{
    static BYTE want[1 << 16];
    DWORD t, wl = sizeof want;
    if (RegQueryValueExW(k, name, NULL, &t, want, &wl)) return b->status[i] == RF_E_NOT_FOUND;
    if (b->status[i] != RF_OK || b->type[i] != t || b->length[i] != wl) {
        fprintf(stderr, "  row %zu (%ls): status %d type %u len %u, want type %lu len %lu\n", i, name,
                b->status[i], b->type[i], b->length[i], t, wl);
        return 0;
    }
    if (!(b->offset[i] & RF_BATCH_IN_ARENA)) return 0;
    return memcmp(b->arena + (b->offset[i] & ~RF_BATCH_IN_ARENA), want, wl) == 0;
}

static void test_batches(HKEY top, const wchar_t *path)
{
    HKEY k = nt_create(top, L"batch");
    make_values(k);
    rf_hive *h;
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h);
    rf_key key = nt_open(h, nt_join(path, L"batch"), NULL);
    static uint8_t arena[1 << 17];
    static cols c;
    int wine = nt_is_wine();

    CHECK_EQ_INT(rf_live_multi_state(), 0); /* nothing probed yet in this process */
    /* Partial: every row equals RegQueryValueExW; a missing name is a row, not a failure */
    rf_name req[NVALS + 1];
    memcpy(req, rnames, sizeof rnames);
    req[NVALS] = (rf_name){ L"no-such-value", 26, 1 };
    rf_batch b = batch(&c, NVALS + 8, arena, sizeof arena);
    CHECK_EQ_INT(rf_read_values(h, key, req, NVALS + 1, NULL, 0, 0, &b), RF_OK);
    CHECK_EQ_INT(b.n, NVALS + 1);
    int ok = 0;
    for (int i = 0; i < NVALS; i++) {
        ok += row_matches(k, names[i], &b, (size_t)i);
        if (b.type[i] != REG_BINARY && (b.offset[i] & 7)) fprintf(stderr, "  row %d data not 8-aligned\n", i);
        CHECK(b.status[i] != RF_OK || ((uintptr_t)(arena + (b.offset[i] & ~RF_BATCH_IN_ARENA)) & 7) == 0);
    }
    CHECK_EQ_INT(ok, NVALS);
    CHECK_EQ_INT(c.status[NVALS], RF_E_NOT_FOUND);
    CHECK_EQ_INT(c.token[NVALS], 0);
    CHECK(b.arena_used > 0 && b.arena_used <= sizeof arena);
    /* the token column reads the same data back */
    const uint8_t *d;
    size_t dl;
    CHECK_EQ_INT(rf_value_read(h, c.token[3], NULL, 0, &d, &dl), RF_OK);
    CHECK(dl == c.length[3] && memcmp(d, arena + (c.offset[3] & ~RF_BATCH_IN_ARENA), dl) == 0);

    /* NtQueryMultipleValueKey: the first Partial batch probed it */
    rf_live_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    if (wine) {
        /* Wine 8's export is a stub (success, nothing filled): the probe must
         * have picked the one-call-per-value fallback. */
        CHECK_EQ_INT(rf_live_multi_state(), -1);
    } else {
        CHECK_EQ_INT(rf_live_multi_state(), 1);
    }
    b = batch(&c, NVALS + 8, arena, sizeof arena);
    CHECK_EQ_INT(rf_read_values(h, key, rnames, NVALS, NULL, 0, 0, &b), RF_OK);
    ok = 0;
    for (int i = 0; i < NVALS; i++) ok += row_matches(k, names[i], &b, (size_t)i);
    CHECK_EQ_INT(ok, NVALS);
    rf_live_get_stats(h, &s);
    CHECK_EQ_INT(s.multi_batches, wine ? 0 : 1);
    /* the fallback path stays available and equal everywhere */
    rf_live_set_multi_state(-1);
    b = batch(&c, NVALS + 8, arena, sizeof arena);
    CHECK_EQ_INT(rf_read_values(h, key, rnames, NVALS, NULL, 0, 0, &b), RF_OK);
    ok = 0;
    for (int i = 0; i < NVALS; i++) ok += row_matches(k, names[i], &b, (size_t)i);
    CHECK_EQ_INT(ok, NVALS);
    rf_live_set_multi_state(wine ? -1 : 1);

    /* Full: the same rows, plus the stored names */
    b = batch(&c, NVALS + 8, arena, sizeof arena);
    CHECK_EQ_INT(rf_read_values(h, key, rnames, NVALS, NULL, 0, RF_BATCH_FULL, &b), RF_OK);
    ok = 0;
    for (int i = 0; i < NVALS; i++) ok += row_matches(k, names[i], &b, (size_t)i) && nt_name_is(&c.name[i], names[i]);
    CHECK_EQ_INT(ok, NVALS);

    /* Latin-1 names (utf16 = 0), as the regf backend stores compressed names */
    rf_name lat[2] = { { "v000", 4, 0 }, { "V001", 4, 0 } };
    b = batch(&c, 4, arena, sizeof arena);
    CHECK_EQ_INT(rf_read_values(h, key, lat, 2, NULL, 0, 0, &b), RF_OK);
    CHECK(row_matches(k, L"v000", &b, 0) && row_matches(k, L"v001", &b, 1));

    /* every value (names == NULL): NtEnumerateValueKey order, names in the arena */
    b = batch(&c, NVALS + 8, arena, sizeof arena);
    CHECK_EQ_INT(rf_read_values(h, key, NULL, 0, NULL, 0, 0, &b), RF_OK);
    CHECK_EQ_INT(b.n, NVALS);
    ok = 0;
    for (DWORD i = 0; i < NVALS; i++) {
        wchar_t w[400];
        DWORD wl = 400;
        RegEnumValueW(k, i, w, &wl, NULL, NULL, NULL, NULL);
        const uint8_t *np = c.name[i].ptr;
        ok += nt_name_is(&c.name[i], w) && row_matches(k, w, &b, i) && np >= arena && np < arena + b.arena_used;
    }
    CHECK_EQ_INT(ok, NVALS);
    b = batch(&c, NVALS - 1, arena, sizeof arena);
    CHECK_EQ_INT(rf_read_values(h, key, NULL, 0, NULL, 0, 0, &b), RF_E_MORE_DATA);
    CHECK_EQ_INT(b.n, NVALS);

    /* a type filter: other rows get status 13 and keep their type */
    uint32_t only_sz[] = { REG_SZ, REG_EXPAND_SZ };
    b = batch(&c, NVALS + 8, arena, sizeof arena);
    CHECK_EQ_INT(rf_read_values(h, key, rnames, NVALS, only_sz, 2, 0, &b), RF_OK);
    ok = 0;
    for (int i = 0; i < NVALS; i++) {
        DWORD t;
        RegQueryValueExW(k, names[i], NULL, &t, NULL, NULL);
        ok += (t == REG_SZ || t == REG_EXPAND_SZ) ? row_matches(k, names[i], &b, (size_t)i)
                                                   : (c.status[i] == RF_E_INVALID_DATA && c.type[i] == t);
    }
    CHECK_EQ_INT(ok, NVALS);

    /* too few rows */
    b = batch(&c, 3, arena, sizeof arena);
    CHECK_EQ_INT(rf_read_values(h, key, rnames, NVALS, NULL, 0, 0, &b), RF_E_MORE_DATA);
    CHECK_EQ_INT(b.n, NVALS);

    /* a small arena: rows that fit are right, the others say 234 and their size;
     * arena_used is enough for a second try that fits everything */
    static uint8_t small[600];
    for (int full = 0; full < 2; full++) {
        b = batch(&c, NVALS + 8, small, sizeof small);
        CHECK_EQ_INT(rf_read_values(h, key, rnames, NVALS, NULL, 0, full ? RF_BATCH_FULL : 0, &b), RF_E_MORE_DATA);
        int fit = 0, short_rows = 0;
        for (int i = 0; i < NVALS; i++) {
            if (c.status[i] == RF_OK) fit += row_matches(k, names[i], &b, (size_t)i);
            else if (c.status[i] == RF_E_MORE_DATA) {
                DWORD wl = 0;
                RegQueryValueExW(k, names[i], NULL, NULL, NULL, &wl);
                short_rows += c.length[i] == wl;
            }
        }
        CHECK(fit > 0 && short_rows > 0);
        CHECK_EQ_INT(fit + short_rows, NVALS);
        size_t need = b.arena_used;
        uint8_t *big = malloc(need);
        b = batch(&c, NVALS + 8, big, need);
        CHECK_EQ_INT(rf_read_values(h, key, rnames, NVALS, NULL, 0, full ? RF_BATCH_FULL : 0, &b), RF_OK);
        ok = 0;
        for (int i = 0; i < NVALS; i++) ok += row_matches(k, names[i], &b, (size_t)i);
        CHECK_EQ_INT(ok, NVALS);
        free(big);
    }
    /* no arena at all */
    b = batch(&c, NVALS + 8, NULL, 0);
    CHECK_EQ_INT(rf_read_values(h, key, rnames, 2, NULL, 0, 0, &b), RF_E_MORE_DATA);
    CHECK(c.status[0] == RF_E_MORE_DATA && c.length[0] == sizeof L"string 0");
    CHECK(b.arena_used >= 2 * 12 + sizeof L"string 0" + 4);
    RegCloseKey(k);
    rf_hive_close(h);
}

/* ---- big values --------------------------------------------------------- */

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
}

static void test_big(HKEY top, const wchar_t *path)
{
    const size_t big = 3u << 20; /* 3 MB */
    uint8_t *data = malloc(big), *buf = malloc(big + 16);
    fill_pattern(data, big, 7);
    HKEY k = nt_create(top, L"big");
    nt_set(k, L"huge", REG_BINARY, data, (DWORD)big);
    nt_set_sz(k, L"small", L"x");
    rf_hive *h;
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h);
    rf_key key = nt_open(h, nt_join(path, L"big"), NULL);
    rf_value v;
    const uint8_t *d;
    size_t dl;
    CHECK_EQ_INT(rf_value_open(h, key, "huge", 4, &v), RF_OK);
    CHECK_EQ_INT(rf_value_read(h, v, NULL, 0, &d, &dl), RF_OK);
    CHECK(dl == big && memcmp(d, data, big) == 0);
    rf_value_info vi;
    CHECK_EQ_INT(rf_value_get_info(h, v, &vi), RF_OK);
    CHECK_EQ_INT(vi.data_len, big);
    size_t len;
    uint32_t type;
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"huge"), 4, RF_RRF_RT_ANY, buf, 1 << 20, &type, &len), RF_E_MORE_DATA);
    CHECK_EQ_INT(len, big);
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"huge"), 4, RF_RRF_RT_ANY, buf, big, &type, &len), RF_OK);
    CHECK(len == big && type == REG_BINARY && memcmp(buf, data, big) == 0);
    /* in a batch: a 1 MB arena is short, 4 MB fits */
    static cols c;
    rf_name nm[2] = { { L"small", 10, 1 }, { L"huge", 8, 1 } };
    rf_batch b = batch(&c, 2, buf, 1 << 20);
    CHECK_EQ_INT(rf_read_values(h, key, nm, 2, NULL, 0, 0, &b), RF_E_MORE_DATA);
    CHECK(c.status[0] == RF_OK && c.status[1] == RF_E_MORE_DATA && c.length[1] == big);
    uint8_t *arena = malloc(4u << 20);
    b = batch(&c, 2, arena, 4u << 20);
    CHECK_EQ_INT(rf_read_values(h, key, nm, 2, NULL, 0, RF_BATCH_FULL, &b), RF_OK);
    CHECK(c.status[1] == RF_OK && c.length[1] == big &&
          memcmp(arena + (c.offset[1] & ~RF_BATCH_IN_ARENA), data, big) == 0);
    free(arena);
    free(data);
    free(buf);
    RegCloseKey(k);
    rf_hive_close(h);
}

/* ---- buffer negotiation -------------------------------------------------- */

/* A growing value: its first 4 bytes are its length, the rest one byte that
 * depends on the length — any truncated or mixed read is detectable. */
static void grow_to(HKEY k, DWORD n)
{
    uint8_t *p = malloc(n);
    memcpy(p, &n, 4);
    memset(p + 4, (int)(n * 31u >> 3) & 0xFF, n - 4);
    nt_set(k, L"grows", REG_BINARY, p, n);
    free(p);
}

static int consistent(const uint8_t *d, size_t n)
{
    DWORD hdr;
    if (n < 4) return 0;
    memcpy(&hdr, d, 4);
    if (hdr != n) return 0;
    for (size_t i = 4; i < n; i++)
        if (d[i] != ((n * 31u >> 3) & 0xFF)) return 0;
    return 1;
}

typedef struct neg { rf_hive *h; rf_key key; HKEY hk; int hook_left; volatile LONG stop; int reads, bad, errors; size_t biggest; } neg;
static neg *hook_ctx;

static void grow_between_attempts(void)
{
    if (hook_ctx && hook_ctx->hook_left > 0) {
        DWORD cur = 0;
        RegQueryValueExW(hook_ctx->hk, L"grows", NULL, NULL, NULL, &cur);
        grow_to(hook_ctx->hk, cur * 2);
        hook_ctx->hook_left--;
    }
}

/* Runs in a fresh thread: the per-thread scratch starts small. */
static DWORD WINAPI hook_reader(void *arg)
{
    neg *x = arg;
    rf_value v;
    const uint8_t *d;
    size_t dl;
    rf_value_open(x->h, x->key, "grows", 5, &v);
    CHECK_EQ_INT(rf_value_read(x->h, v, NULL, 0, &d, &dl), RF_OK); /* caches MaxValueDataLen = 5000 */
    CHECK(consistent(d, dl) && dl == 5000);
    grow_to(x->hk, 20000);             /* now the cached hint is stale */
    x->hook_left = 2;                  /* and the value doubles between attempts, twice */
    hook_ctx = x;
    nt_test_between_attempts = grow_between_attempts;
    CHECK_EQ_INT(rf_value_read(x->h, v, NULL, 0, &d, &dl), RF_OK);
    nt_test_between_attempts = NULL;
    CHECK_EQ_INT(dl, 80000);           /* the value as it ended, whole */
    CHECK(consistent(d, dl));
    return 0;
}

static DWORD WINAPI writer(void *arg)
{
    neg *x = arg;
    HKEY k;
    RegOpenKeyExW(x->hk, NULL, 0, KEY_SET_VALUE, &k);
    DWORD n = 1000;
    while (!x->stop) {
        grow_to(k, n);
        n = n < 400000 ? n + n / 3 : 1000;
    }
    RegCloseKey(k);
    return 0;
}

static DWORD WINAPI reader(void *arg)
{
    neg *x = arg;
    rf_value v;
    const uint8_t *d;
    size_t dl;
    uint8_t *buf = malloc(1 << 20);
    rf_value_open(x->h, x->key, "grows", 5, &v);
    double end = nt_now() + 1.5;
    while (nt_now() < end) {
        rf_status st = rf_value_read(x->h, v, NULL, 0, &d, &dl);
        x->reads++;
        if (st) x->errors++;
        else if (!consistent(d, dl)) x->bad++;
        else if (dl > x->biggest) x->biggest = dl;
        /* typed read into a caller buffer: OK, or 234 with the size, never cut */
        size_t len;
        st = rf_live_get_value(x->h, x->key, U(L"grows"), 5, RF_RRF_RT_REG_BINARY, buf, 1 << 20, NULL, &len);
        if (st) x->errors++;
        else if (!consistent(buf, len)) x->bad++;
    }
    free(buf);
    return 0;
}

static void test_negotiation(HKEY top, const wchar_t *path)
{
    HKEY k = nt_create(top, L"neg");
    grow_to(k, 5000);
    rf_hive *h;
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h);
    neg x;
    memset(&x, 0, sizeof x);
    x.h = h;
    x.key = nt_open(h, nt_join(path, L"neg"), NULL);
    x.hk = k;
    rf_live_stats s0, s1;
    memset(&s0, 0, sizeof s0);
    memset(&s1, 0, sizeof s1);
    s0.struct_size = s1.struct_size = sizeof s0;
    rf_live_get_stats(h, &s0);
    HANDLE t = CreateThread(NULL, 0, hook_reader, &x, 0, NULL);
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
    rf_live_get_stats(h, &s1);
    CHECK_EQ_INT(s1.buffer_grows - s0.buffer_grows, 3); /* 20000, 40000, 80000 */
    CHECK_EQ_INT(s1.regrows - s0.regrows, 2);           /* twice it grew between two calls */

    /* a real writer thread growing the value while two readers read it */
    grow_to(k, 1000);
    HANDLE th[3];
    neg r2 = x;
    th[0] = CreateThread(NULL, 0, writer, &x, 0, NULL);
    th[1] = CreateThread(NULL, 0, reader, &x, 0, NULL);
    th[2] = CreateThread(NULL, 0, reader, &r2, 0, NULL);
    WaitForMultipleObjects(2, th + 1, TRUE, INFINITE);
    x.stop = 1;
    WaitForSingleObject(th[0], INFINITE);
    for (int i = 0; i < 3; i++) CloseHandle(th[i]);
    rf_live_get_stats(h, &s0);
    printf("negotiation: %d reads, largest %zu bytes, %llu grows, %llu regrows\n", x.reads + r2.reads,
           x.biggest > r2.biggest ? x.biggest : r2.biggest, (unsigned long long)(s0.buffer_grows - s1.buffer_grows),
           (unsigned long long)(s0.regrows - s1.regrows));
    CHECK(x.reads > 10 && r2.reads > 10);
    CHECK_EQ_INT(x.bad + r2.bad, 0);
    CHECK_EQ_INT(x.errors + r2.errors, 0);
    CHECK(s0.buffer_grows > s1.buffer_grows);
    RegCloseKey(k);
    rf_hive_close(h);
}

int main(void)
{
    HKEY top;
    const wchar_t *path = nt_test_key(L"values", &top);
    test_batches(top, path);
    test_big(top, path);
    test_negotiation(top, path);
    RegCloseKey(top);
    nt_test_cleanup();
    return CHECK_DONE();
}
