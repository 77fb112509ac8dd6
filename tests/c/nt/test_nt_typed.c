/* test_nt_typed — rf_live_get_value against RegGetValueW on the same values:
 * every (value type x RRF flags x buffer size) case must give the same
 * status, type, size and bytes; then what Windows does beyond Wine (NUL
 * terminators added to strings stored without them). */
#include <stdio.h>
#include <stdlib.h>
#include "nt_test_util.h"

typedef struct tval { const wchar_t *name; DWORD type; const void *data; DWORD len; } tval;

static const tval vals[] = {
    { L"sz",        REG_SZ,        L"hello",                 sizeof L"hello" },
    { L"sz-empty",  REG_SZ,        L"",                      sizeof L"" },
    { L"sz-zero",   REG_SZ,        NULL,                     0 },
    { L"exp",       REG_EXPAND_SZ, L"%SystemRoot%\\system32", sizeof L"%SystemRoot%\\system32" },
    { L"exp-plain", REG_EXPAND_SZ, L"no variables",          sizeof L"no variables" },
    { L"exp-undef", REG_EXPAND_SZ, L"%REGFAST_UNDEFINED%",   sizeof L"%REGFAST_UNDEFINED%" },
    { L"multi",     REG_MULTI_SZ,  L"a\0bb\0",               sizeof L"a\0bb\0" },
    { L"bin4",      REG_BINARY,    "\1\2\3\4",               4 },
    { L"bin8",      REG_BINARY,    "\1\2\3\4\5\6\7\x8",      8 },
    { L"bin5",      REG_BINARY,    "\1\2\3\4\5",             5 },
    { L"dword",     REG_DWORD,     "\x78\x56\x34\x12",       4 },
    { L"dword3",    REG_DWORD,     "\1\2\3",                 3 },
    { L"qword",     REG_QWORD,     "\1\2\3\4\5\6\7\x8",      8 },
    { L"qword4",    REG_QWORD,     "\1\2\3\4",               4 },
    { L"none",      REG_NONE,      NULL,                     0 },
    { L"none-data", REG_NONE,      "\1\2",                   2 },
    { L"custom",    0x12345678u,   "\1\2\3",                 3 },
    { L"link",      REG_LINK,      L"x",                     2 },
};
#define NV (sizeof vals / sizeof vals[0])

static const DWORD flag_sets[] = {
    RRF_RT_REG_NONE, RRF_RT_REG_SZ, RRF_RT_REG_EXPAND_SZ, RRF_RT_REG_BINARY, RRF_RT_REG_DWORD,
    RRF_RT_REG_MULTI_SZ, RRF_RT_REG_QWORD, RRF_RT_DWORD, RRF_RT_QWORD, RRF_RT_ANY,
    RRF_RT_ANY | RRF_NOEXPAND, RRF_RT_REG_SZ | RRF_NOEXPAND, RRF_RT_REG_EXPAND_SZ | RRF_NOEXPAND,
    RRF_RT_REG_SZ | RRF_RT_REG_EXPAND_SZ, RRF_RT_REG_SZ | RRF_RT_REG_MULTI_SZ, RRF_RT_REG_BINARY | RRF_RT_REG_NONE,
    RRF_RT_REG_DWORD | RRF_RT_REG_QWORD, 0, 0x80, RRF_RT_ANY | RRF_ZEROONFAILURE,
    RRF_RT_REG_DWORD | RRF_ZEROONFAILURE, RRF_RT_REG_SZ | RRF_ZEROONFAILURE,
};
#define NF (sizeof flag_sets / sizeof flag_sets[0])

/* Buffer sizes offered: NULL (size query), 0, 2, 4, the raw size, raw size - 1, 600. */
static size_t cap_for(int which, DWORD raw)
{
    switch (which) {
    case 1: return 0;
    case 2: return 2;
    case 3: return 4;
    case 4: return raw;
    case 5: return raw ? raw - 1 : 0;
    default: return 600;
    }
}

static void test_oracle(HKEY k, rf_hive *h, rf_key key)
{
    int cases = 0, same = 0;
    for (size_t v = 0; v < NV; v++) {
        for (size_t f = 0; f < NF; f++) {
            for (int c = 0; c < 7; c++) {
                BYTE want[640], got[640];
                DWORD wtype = 0xAAAA, wl = (DWORD)cap_for(c, vals[v].len);
                size_t gl = 0;
                uint32_t gtype = 0xAAAA;
                memset(want, 0x5A, sizeof want);
                memset(got, 0x5A, sizeof got);
                LONG e = RegGetValueW(k, NULL, vals[v].name, flag_sets[f], &wtype, c ? want : NULL, &wl);
                rf_status st = rf_live_get_value(h, key, U(vals[v].name), wcslen(vals[v].name), flag_sets[f],
                                                 c ? got : NULL, cap_for(c, vals[v].len), &gtype, &gl);
                cases++;
                int ok = st == e;
                if (ok && (e == 0 || e == ERROR_MORE_DATA)) ok = gl == wl;
                if (ok && e == 0) ok = gtype == wtype;
                if (ok && e == 0 && c) ok = memcmp(got, want, wl) == 0;
                if (ok && (flag_sets[f] & RRF_ZEROONFAILURE) && e && c)
                    ok = memcmp(got, want, cap_for(c, vals[v].len)) == 0 || cap_for(c, vals[v].len) == 0;
                same += ok;
                if (!ok)
                    fprintf(stderr, "  %-10ls flags 0x%08lx cap#%d: RegGetValueW %ld type %lu len %lu; "
                            "rf_live_get_value %d type %u len %zu\n", vals[v].name, flag_sets[f], c, e, wtype, wl,
                            st, gtype, gl);
            }
        }
    }
    printf("oracle: %d of %d (value, flags, buffer) cases equal to RegGetValueW\n", same, cases);
    CHECK_EQ_INT(same, cases);
}

/* Strings stored without their terminators come back terminated (Windows'
 * RegGetValue contract; the length counts the NULs added). */
static void test_terminators(HKEY k, rf_hive *h, rf_key key)
{
    nt_set(k, L"noterm", REG_SZ, L"abc", 6);
    nt_set(k, L"odd", REG_SZ, "a\0b", 3);
    nt_set(k, L"multi-noterm", REG_MULTI_SZ, L"a\0b", 6);
    nt_set(k, L"multi-one", REG_MULTI_SZ, L"a", 4);             /* "a\0": one NUL short */
    nt_set(k, L"exp-noterm", REG_EXPAND_SZ, L"%SystemRoot%", 24);
    wchar_t buf[300];
    size_t len;
    uint32_t type;
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"noterm"), 6, RF_RRF_RT_REG_SZ, NULL, 0, &type, &len), RF_OK);
    CHECK_EQ_INT(len, 8);
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"noterm"), 6, RF_RRF_RT_REG_SZ, buf, 6, &type, &len), RF_E_MORE_DATA);
    CHECK_EQ_INT(len, 8);
    memset(buf, 0x5A, sizeof buf);
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"noterm"), 6, RF_RRF_RT_REG_SZ, buf, sizeof buf, &type, &len), RF_OK);
    CHECK(len == 8 && memcmp(buf, L"abc", 8) == 0 && type == REG_SZ);
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"odd"), 3, RF_RRF_RT_REG_SZ, buf, sizeof buf, &type, &len), RF_OK);
    CHECK(len == 6 && buf[0] == L'a' && buf[1] == L'b' && buf[2] == 0); /* bytes a,0,b -> "ab" + NUL */
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"multi-noterm"), 12, RF_RRF_RT_REG_MULTI_SZ, buf, sizeof buf, &type, &len), RF_OK);
    CHECK(len == 10 && memcmp(buf, L"a\0b\0", 10) == 0);
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"multi-one"), 9, RF_RRF_RT_REG_MULTI_SZ, buf, sizeof buf, &type, &len), RF_OK);
    CHECK(len == 6 && memcmp(buf, L"a\0", 6) == 0);
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"exp-noterm"), 10, RF_RRF_RT_REG_EXPAND_SZ | RF_RRF_NOEXPAND, buf,
                                   sizeof buf, &type, &len), RF_OK);
    CHECK(len == 26 && type == REG_EXPAND_SZ && memcmp(buf, L"%SystemRoot%", 26) == 0);
    wchar_t exp[300];
    DWORD n = ExpandEnvironmentStringsW(L"%SystemRoot%", exp, 300);
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"exp-noterm"), 10, RF_RRF_RT_REG_SZ, buf, sizeof buf, &type, &len), RF_OK);
    CHECK(len == n * 2 && type == REG_SZ && wcscmp(buf, exp) == 0);
    /* RegGetValueW on the same values, printed for the record: Wine 8 adds one
     * NUL to a REG_SZ (as regfast), but only one to a REG_MULTI_SZ and none to
     * an odd length, where regfast returns a well-formed string (two NULs,
     * the odd byte padded). Asserted above against the fixed form only. */
    static const wchar_t *names[] = { L"noterm", L"odd", L"multi-noterm", L"multi-one", L"exp-noterm" };
    for (int i = 0; i < 5; i++) {
        for (int noexp = 0; noexp < 2; noexp++) {
            BYTE want[300], got[300];
            DWORD wl = sizeof want, wt;
            DWORD fl = RRF_RT_ANY | (noexp ? RRF_NOEXPAND : 0);
            LONG e = RegGetValueW(k, NULL, names[i], fl, &wt, want, &wl);
            rf_status st = rf_live_get_value(h, key, U(names[i]), wcslen(names[i]), fl, got, sizeof got, &type, &len);
            int same = e == st && wl == len && wt == type && memcmp(want, got, wl) == 0;
            printf("  %-12ls %-8s RegGetValueW %ld, %2lu bytes; regfast %d, %2zu bytes%s\n", names[i],
                   noexp ? "NOEXPAND" : "", e, wl, st, len, same ? "" : "  (differs)");
        }
    }
}

static void test_errors(rf_hive *h, rf_key key)
{
    BYTE buf[64];
    size_t len;
    uint32_t type;
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"sz"), 2, RF_RRF_RT_REG_DWORD, buf, sizeof buf, &type, &len), RF_E_UNSUPPORTED_TYPE);
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"dword3"), 6, RF_RRF_RT_ANY, buf, sizeof buf, &type, &len), RF_OK);
    CHECK_EQ_INT(len, 3); /* a 3-byte REG_DWORD comes back as stored */
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"bin5"), 4, RF_RRF_RT_DWORD, buf, sizeof buf, &type, &len), RF_E_DATATYPE_MISMATCH);
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"sz"), 2, RF_RRF_RT_REG_EXPAND_SZ, buf, sizeof buf, &type, &len), RF_E_INVALID_PARAMETER);
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"sz"), 2, 0, buf, sizeof buf, &type, &len), RF_E_UNSUPPORTED_TYPE);
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"link"), 4, RF_RRF_RT_ANY, buf, sizeof buf, &type, &len), RF_E_UNSUPPORTED_TYPE);
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"sz"), 2, RF_RRF_RT_ANY, buf, sizeof buf, &type, NULL), RF_E_INVALID_PARAMETER);
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"missing"), 7, RF_RRF_RT_ANY, buf, sizeof buf, &type, &len), RF_E_NOT_FOUND);
    memset(buf, 0x5A, sizeof buf);
    CHECK_EQ_INT(rf_live_get_value(h, key, U(L"sz"), 2, RF_RRF_RT_REG_DWORD | RF_RRF_ZEROONFAILURE, buf, sizeof buf,
                                   &type, &len), RF_E_UNSUPPORTED_TYPE);
    int zero = 1;
    for (size_t i = 0; i < sizeof buf; i++) zero &= buf[i] == 0;
    CHECK(zero);
    /* the default value (name of 0 chars) */
    wchar_t w[64];
    CHECK_EQ_INT(rf_live_get_value(h, key, NULL, 0, RF_RRF_RT_REG_SZ, w, sizeof w, &type, &len), RF_OK);
    CHECK(wcscmp(w, L"default") == 0);
    /* an offline-style hive is not a live one */
    CHECK_EQ_INT(rf_live_get_value(NULL, key, U(L"sz"), 2, RF_RRF_RT_ANY, w, sizeof w, &type, &len), RF_E_INVALID_HANDLE);
}

int main(void)
{
    HKEY top;
    const wchar_t *path = nt_test_key(L"typed", &top);
    for (size_t i = 0; i < NV; i++) nt_set(top, vals[i].name, vals[i].type, vals[i].data, vals[i].len);
    nt_set_sz(top, NULL, L"default");
    rf_hive *h;
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h);
    rf_key key = nt_open(h, path, NULL);
    test_oracle(top, h, key);
    test_terminators(top, h, key);
    test_errors(h, key);
    rf_hive_close(h);
    RegCloseKey(top);
    nt_test_cleanup();
    return CHECK_DONE();
}
