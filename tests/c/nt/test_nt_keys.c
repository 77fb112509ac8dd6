/* test_nt_keys — roots, WOW64 views, key operations, enumeration and names,
 * each compared with what the Win32 registry functions say about the same key. */
#include <stdio.h>
#include <stdlib.h>
#include "nt_test_util.h"
#include <sddl.h>

static int path_is(rf_hive *h, rf_key k, const wchar_t *want)
{
    rf_name n;
    if (rf_live_key_path(h, k, &n)) return 0;
    size_t len = wcslen(want);
    if (n.nbytes != len * 2) {
        fprintf(stderr, "  path %.*ls, expected %ls\n", (int)(n.nbytes / 2), (const wchar_t *)n.ptr, want);
        return 0;
    }
    return CompareStringOrdinal(n.ptr, (int)len, want, (int)len, TRUE) == CSTR_EQUAL;
}

static const wchar_t *user_sid(void)
{
    static wchar_t out[256];
    HANDLE tok;
    BYTE buf[512];
    DWORD n;
    wchar_t *s;
    OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok);
    GetTokenInformation(tok, TokenUser, buf, sizeof buf, &n);
    CloseHandle(tok);
    ConvertSidToStringSidW(((TOKEN_USER *)buf)->User.Sid, &s);
    wcscpy(out, s);
    LocalFree(s);
    return out;
}

static void test_roots(void)
{
    rf_hive *h;
    rf_key root;
    wchar_t want[512];
    CHECK_EQ_INT(rf_live_open(RF_HKEY_LOCAL_MACHINE, RF_VIEW_NATIVE, 0, &h), RF_OK);
    rf_hive_root(h, &root);
    CHECK(path_is(h, root, L"\\REGISTRY\\Machine"));
    rf_hive_close(h);

    CHECK_EQ_INT(rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h), RF_OK);
    rf_hive_root(h, &root);
    swprintf(want, 512, L"\\REGISTRY\\User\\%ls", user_sid());
    CHECK(path_is(h, root, want));
    rf_name nm;
    CHECK_EQ_INT(rf_key_name(h, root, &nm), RF_OK);
    CHECK(nt_name_is(&nm, user_sid()));
    rf_key parent = 1;
    CHECK_EQ_INT(rf_key_parent(h, root, &parent), RF_E_NOT_FOUND);
    CHECK_EQ_INT(parent, 0);
    rf_hive_info info;
    CHECK_EQ_INT(rf_hive_get_info(h, &info), RF_E_NOT_SUPPORTED);
    const uint8_t *map = (const uint8_t *)1;
    size_t maplen = 1;
    CHECK_EQ_INT(rf_hive_mapping(h, &map, &maplen), RF_OK);
    CHECK(map == NULL && maplen == 0);
    rf_hive_close(h);

    CHECK_EQ_INT(rf_live_open(RF_HKEY_USERS, RF_VIEW_NATIVE, 0, &h), RF_OK);
    rf_hive_root(h, &root);
    CHECK(path_is(h, root, L"\\REGISTRY\\User"));
    rf_hive_close(h);

    CHECK_EQ_INT(rf_live_open(RF_HKEY_CLASSES_ROOT, RF_VIEW_NATIVE, 0, &h), RF_OK);
    rf_hive_root(h, &root);
    CHECK(path_is(h, root, L"\\REGISTRY\\Machine\\Software\\Classes"));
    rf_hive_close(h);

    CHECK_EQ_INT(rf_live_open(RF_HKEY_CLASSES_ROOT, RF_VIEW_32, 0, &h), RF_OK);
    rf_hive_root(h, &root);
    CHECK(path_is(h, root, L"\\REGISTRY\\Machine\\Software\\Classes\\Wow6432Node"));
    rf_hive_close(h);

    CHECK_EQ_INT(rf_live_open(RF_HKEY_CURRENT_CONFIG, RF_VIEW_NATIVE, 0, &h), RF_OK);
    rf_hive_root(h, &root);
    if (nt_is_wine()) {
        CHECK(path_is(h, root, L"\\REGISTRY\\Machine\\System\\CurrentControlSet\\Hardware Profiles\\Current"));
    } else { /* Windows names the key behind the links: ...\ControlSet001\Hardware Profiles\0001 */
        rf_name cc;
        CHECK_EQ_INT(rf_live_key_path(h, root, &cc), RF_OK);
        CHECK(cc.nbytes > 36 && CompareStringOrdinal(cc.ptr, 18, L"\\REGISTRY\\MACHINE\\", 18, TRUE) == CSTR_EQUAL);
    }
    rf_hive_close(h);

    h = (rf_hive *)1;
    CHECK_EQ_INT(rf_live_open(0x80000009u, RF_VIEW_NATIVE, 0, &h), RF_E_INVALID_HANDLE);
    CHECK(h == NULL);
    CHECK_EQ_INT(rf_live_open(RF_HKEY_CURRENT_USER, 0x300, 0, &h), RF_E_INVALID_PARAMETER);
    CHECK_EQ_INT(rf_live_open(RF_HKEY_CURRENT_USER, 0, KEY_READ | KEY_WOW64_32KEY, &h), RF_E_INVALID_PARAMETER);
}

/* WOW64: what the 32-bit view writes lands in Software\Wow6432Node of the
 * 64-bit view (HKLM), while HKCU\Software is shared between the views. */
static void test_wow64(const wchar_t *unique)
{
    wchar_t p32[512], p64[512];
    HKEY k;
    swprintf(p32, 512, L"Software\\regfast-test\\%ls", unique);
    swprintf(p64, 512, L"Software\\Wow6432Node\\regfast-test\\%ls", unique);
    LONG e = RegCreateKeyExW(HKEY_LOCAL_MACHINE, nt_join(p32, L"deep\\er"), 0, NULL, 0,
                             KEY_ALL_ACCESS | KEY_WOW64_32KEY, NULL, &k, NULL);
    CHECK_EQ_INT(e, 0);
    if (e) return;
    nt_set_sz(k, L"where", L"written through the 32-bit view");
    RegCloseKey(k);

    rf_hive *h32, *h64, *hn;
    CHECK_EQ_INT(rf_live_open(RF_HKEY_LOCAL_MACHINE, RF_VIEW_32, 0, &h32), RF_OK);
    CHECK_EQ_INT(rf_live_open(RF_HKEY_LOCAL_MACHINE, RF_VIEW_64, 0, &h64), RF_OK);
    CHECK_EQ_INT(rf_live_open(RF_HKEY_LOCAL_MACHINE, RF_VIEW_NATIVE, 0, &hn), RF_OK);
    wchar_t buf[128], want[512];
    size_t len;
    uint32_t type;
    rf_status st;

    /* the 32 view sees it at the unredirected path, per component (rf_key_open) ... */
    rf_key k32 = nt_open(h32, nt_join(p32, L"deep\\er"), &st);
    CHECK_EQ_INT(st, RF_OK);
    CHECK_EQ_INT(rf_live_get_value(h32, k32, U(L"where"), 5, RF_RRF_RT_REG_SZ, buf, sizeof buf, &type, &len), 0);
    CHECK(wcscmp(buf, L"written through the 32-bit view") == 0);
    swprintf(want, 512, L"\\REGISTRY\\Machine\\%ls\\deep\\er", p64);
    CHECK(path_is(h32, k32, want));
    /* ... and in one open (rf_live_key_open) */
    rf_key k32b;
    const wchar_t *full = nt_join(p32, L"deep");
    rf_hive *h32b;
    rf_live_open(RF_HKEY_LOCAL_MACHINE, RF_VIEW_32, 0, &h32b);
    CHECK_EQ_INT(rf_live_key_open(h32b, 0, U(full), wcslen(full), &k32b), RF_OK);
    swprintf(want, 512, L"\\REGISTRY\\Machine\\%ls\\deep", p64);
    CHECK(path_is(h32b, k32b, want));
    rf_hive_close(h32b);

    /* the 64 view (and the native one, in a 64-bit process) sees it under Wow6432Node */
    rf_key k64 = nt_open(h64, nt_join(p64, L"deep\\er"), &st);
    CHECK_EQ_INT(st, RF_OK);
    buf[0] = 0;
    CHECK_EQ_INT(rf_live_get_value(h64, k64, U(L"where"), 5, RF_RRF_RT_REG_SZ, buf, sizeof buf, &type, &len), 0);
    CHECK(wcscmp(buf, L"written through the 32-bit view") == 0);
    nt_open(h64, nt_join(p32, L"deep\\er"), &st);
    CHECK_EQ_INT(st, RF_E_NOT_FOUND);
    nt_open(hn, nt_join(p32, L"deep\\er"), &st);
    CHECK_EQ_INT(st, RF_E_NOT_FOUND);
    nt_open(hn, nt_join(p64, L"deep\\er"), &st);
    CHECK_EQ_INT(st, RF_OK);

    /* HKCU\Software is shared: written through the 32 view, seen from both */
    wchar_t pcu[512];
    swprintf(pcu, 512, L"Software\\regfast-test\\%ls-shared", unique);
    e = RegCreateKeyExW(HKEY_CURRENT_USER, pcu, 0, NULL, 0, KEY_ALL_ACCESS | KEY_WOW64_32KEY, NULL, &k, NULL);
    CHECK_EQ_INT(e, 0);
    if (!e) {
        nt_set_dword(k, L"n", 32);
        RegCloseKey(k);
        rf_hive *c32, *c64;
        rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_32, 0, &c32);
        rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_64, 0, &c64);
        DWORD v = 0;
        CHECK_EQ_INT(rf_live_get_value(c32, nt_open(c32, pcu, NULL), U(L"n"), 1, RF_RRF_RT_DWORD, &v, 4, NULL, &len), 0);
        CHECK_EQ_INT(v, 32);
        v = 0;
        CHECK_EQ_INT(rf_live_get_value(c64, nt_open(c64, pcu, NULL), U(L"n"), 1, RF_RRF_RT_DWORD, &v, 4, NULL, &len), 0);
        CHECK_EQ_INT(v, 32);
        rf_hive_close(c32);
        rf_hive_close(c64);
        RegDeleteTreeW(HKEY_CURRENT_USER, pcu);
    }
    rf_hive_close(h32);
    rf_hive_close(h64);
    rf_hive_close(hn);
    HKEY base;
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, L"Software\\regfast-test", 0, KEY_ALL_ACCESS | KEY_WOW64_32KEY, &base) == 0) {
        RegDeleteTreeW(base, unique);
        RegCloseKey(base);
        RegDeleteKeyExW(HKEY_LOCAL_MACHINE, L"Software\\regfast-test", KEY_WOW64_32KEY, 0); /* if empty */
    }
    CHECK(RegOpenKeyExW(HKEY_LOCAL_MACHINE, p32, 0, KEY_READ | KEY_WOW64_32KEY, &k) == ERROR_FILE_NOT_FOUND);
}

/* A tree of keys compared with RegEnumKeyExW / RegQueryInfoKeyW / RegEnumValueW. */
static void test_tree(HKEY top, const wchar_t *path)
{
    static const wchar_t *subs[] = { L"alpha", L"Beta", L"gamma", L"MixedCase", L"cl\u00e9-\u00f1-\u65e5\u672c" };
    for (int i = 0; i < 5; i++) RegCloseKey(nt_create(top, subs[i]));
    HKEY cls;
    RegCreateKeyExW(top, L"withclass", 0, (LPWSTR)L"MyClass", 0, KEY_ALL_ACCESS, NULL, &cls, NULL);
    RegCloseKey(cls);
    nt_set_sz(top, L"a-sz", L"hello");
    nt_set_dword(top, L"b-dword", 0x01020304);
    nt_set(top, L"c-bin", REG_BINARY, "\x01\x02\x03", 3);
    nt_set(top, L"d-empty", REG_SZ, NULL, 0);
    nt_set_sz(top, NULL, L"the default value");

    rf_hive *h;
    CHECK_EQ_INT(rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h), RF_OK);
    rf_status st;
    rf_key k = nt_open(h, path, &st);
    CHECK_EQ_INT(st, RF_OK);

    /* UTF-8 path with a leading and a trailing backslash, mixed case */
    char u8[1024];
    snprintf(u8, sizeof u8, "\\%s\\mixedcase\\", nt_u8(path));
    rf_key mixed;
    CHECK_EQ_INT(rf_key_open(h, 0, u8, strlen(u8), &mixed), RF_OK);
    rf_name nm;
    CHECK_EQ_INT(rf_key_name(h, mixed, &nm), RF_OK);
    CHECK(nt_name_is(&nm, L"MixedCase")); /* the stored case, not the asked one */
    rf_key par;
    CHECK_EQ_INT(rf_key_parent(h, mixed, &par), RF_OK);
    CHECK_EQ_INT(par, k);
    snprintf(u8, sizeof u8, "%s\\cl\xc3\xa9-\xc3\xb1-\xe6\x97\xa5\xe6\x9c\xac", nt_u8(path));
    rf_key uni;
    CHECK_EQ_INT(rf_key_open(h, 0, u8, strlen(u8), &uni), RF_OK);
    CHECK_EQ_INT(rf_key_name(h, uni, &nm), RF_OK);
    CHECK(nt_name_is(&nm, subs[4]));
    rf_key child;
    CHECK_EQ_INT(rf_key_child(h, k, U(L"GAMMA"), 5, &child), RF_OK);
    CHECK_EQ_INT(rf_key_child(h, k, U(L"nope"), 4, &child), RF_E_NOT_FOUND);
    CHECK_EQ_INT(child, 0);
    CHECK_EQ_INT(rf_key_child(h, k, U(L"a\\b"), 3, &child), RF_E_BAD_PATHNAME);

    /* class name and key info */
    rf_key wc = 0;
    CHECK_EQ_INT(rf_key_child(h, k, U(L"withclass"), 9, &wc), RF_OK);
    CHECK_EQ_INT(rf_key_class(h, wc, &nm), RF_OK);
    CHECK(nt_name_is(&nm, L"MyClass"));
    CHECK_EQ_INT(rf_key_class(h, k, &nm), RF_OK);
    CHECK_EQ_INT(nm.nbytes, 0);
    rf_key_info ki;
    DWORD nsub, maxsub, maxcls, nval, maxvn, maxvd;
    CHECK_EQ_INT(rf_key_get_info(h, k, &ki), RF_OK);
    RegQueryInfoKeyW(top, NULL, NULL, NULL, &nsub, &maxsub, &maxcls, &nval, &maxvn, &maxvd, NULL, NULL);
    CHECK_EQ_INT(ki.n_subkeys, nsub);
    CHECK_EQ_INT(ki.n_values, nval);
    CHECK_EQ_INT(ki.max_name_len, maxsub * 2);       /* bytes, where Win32 counts chars */
    CHECK_EQ_INT(ki.max_value_name_len, maxvn * 2);
    CHECK_EQ_INT(ki.max_value_data_len, maxvd);
    CHECK_EQ_INT(ki.security_offset, RF_NO_OFFSET);
    CHECK(ki.last_write != 0);

    /* subkeys: the Win32 enumeration order, names as stored */
    rf_key subs_tok[16];
    size_t n = 0;
    CHECK_EQ_INT(rf_key_subkeys(h, k, subs_tok, 2, &n), RF_E_MORE_DATA);
    CHECK_EQ_INT(n, 6);
    CHECK_EQ_INT(rf_key_subkeys(h, k, subs_tok, 16, &n), RF_OK);
    CHECK_EQ_INT(n, 6);
    for (DWORD i = 0; i < n; i++) {
        wchar_t w[256];
        DWORD wl = 256;
        FILETIME ft;
        CHECK_EQ_INT(RegEnumKeyExW(top, i, w, &wl, NULL, NULL, NULL, &ft), 0);
        CHECK_EQ_INT(rf_key_name(h, subs_tok[i], &nm), RF_OK);
        CHECK(nt_name_is(&nm, w));
        uint64_t lw = 0;
        CHECK_EQ_INT(rf_live_enum_subkey(h, k, i, &nm, &lw), RF_OK);
        CHECK(nt_name_is(&nm, w));
        CHECK_EQ_INT(lw, ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime);
        CHECK_EQ_INT(rf_key_parent(h, subs_tok[i], &par), RF_OK);
        CHECK_EQ_INT(par, k);
    }
    CHECK_EQ_INT(rf_live_enum_subkey(h, k, 6, &nm, NULL), RF_E_NO_MORE_ITEMS);
    /* an enumerated token and an opened one name the same slot */
    CHECK_EQ_INT(child, 0);
    CHECK_EQ_INT(rf_key_child(h, k, U(L"alpha"), 5, &child), RF_OK);
    CHECK_EQ_INT(child, subs_tok[0]);

    /* values: rf_key_values / rf_value_get_info / rf_value_read against RegEnumValueW */
    rf_value vals[16];
    CHECK_EQ_INT(rf_key_values(h, k, vals, 16, &n), RF_OK);
    CHECK_EQ_INT(n, 5);
    for (DWORD i = 0; i < n; i++) {
        wchar_t w[256];
        BYTE data[256];
        DWORD wl = 256, dl = sizeof data, t;
        CHECK_EQ_INT(RegEnumValueW(top, i, w, &wl, NULL, &t, data, &dl), 0);
        rf_value_info vi;
        CHECK_EQ_INT(rf_value_get_info(h, vals[i], &vi), RF_OK);
        CHECK(nt_name_is(&vi.name, w));
        CHECK_EQ_INT(vi.type, t);
        CHECK_EQ_INT(vi.data_len, dl);
        const uint8_t *p;
        size_t pl;
        CHECK_EQ_INT(rf_value_read(h, vals[i], NULL, 0, &p, &pl), RF_OK);
        CHECK(pl == dl && memcmp(p, data, dl) == 0);
        uint32_t et;
        const uint8_t *ed;
        size_t el;
        CHECK_EQ_INT(rf_live_enum_value(h, k, i, &nm, &et, &ed, &el), RF_OK);
        CHECK(nt_name_is(&nm, w) && et == t && el == dl && memcmp(ed, data, dl) == 0);
    }
    CHECK_EQ_INT(rf_live_enum_value(h, k, 5, &nm, NULL, NULL, NULL), RF_E_NO_MORE_ITEMS);
    rf_value v, v2;
    CHECK_EQ_INT(rf_value_open(h, k, "A-SZ", 4, &v), RF_OK);
    CHECK_EQ_INT(rf_value_open(h, k, "a-sz", 4, &v2), RF_OK);
    CHECK_EQ_INT(v, v2);                     /* interned: one token per (key, name) */
    rf_value_info vi;
    CHECK_EQ_INT(rf_value_get_info(h, v, &vi), RF_OK);
    CHECK(nt_name_is(&vi.name, L"a-sz"));    /* stored case */
    CHECK_EQ_INT(rf_value_open(h, k, "", 0, &v), RF_OK); /* the default value */
    const uint8_t *p;
    size_t pl;
    CHECK_EQ_INT(rf_value_read(h, v, NULL, 0, &p, &pl), RF_OK);
    CHECK(pl == sizeof L"the default value" && memcmp(p, L"the default value", pl) == 0);
    CHECK_EQ_INT(rf_value_open(h, k, "missing", 7, &v), RF_E_NOT_FOUND);
    CHECK_EQ_INT(v, 0);
    CHECK_EQ_INT(rf_last_error()->native, 0xC0000034);
    CHECK_EQ_INT(rf_value_get_info(h, k, &vi), RF_E_INVALID_HANDLE); /* a key token is not a value */

    /* security: the descriptor RegGetKeySecurity gives */
    const uint8_t *sd;
    size_t sdl;
    BYTE want[4096];
    DWORD wl = sizeof want;
    CHECK_EQ_INT(rf_key_security(h, k, &sd, &sdl), RF_OK);
    CHECK_EQ_INT(RegGetKeySecurity(top, OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION |
                                   DACL_SECURITY_INFORMATION, want, &wl), 0);
    CHECK(sdl == wl && memcmp(sd, want, wl) == 0);
    rf_hive_close(h);
}

/* Names at their limits: key names of 255 chars, value names of 16383. */
static void test_long_names(HKEY top, const wchar_t *path)
{
    wchar_t kname[257], *vname = malloc(16384 * sizeof(wchar_t));
    for (int i = 0; i < 255; i++) kname[i] = (wchar_t)(L'a' + i % 26);
    kname[255] = 0;
    for (int i = 0; i < 16383; i++) vname[i] = (wchar_t)(L'A' + i % 26);
    vname[16383] = 0;
    HKEY lk = nt_create(top, kname);
    CHECK(lk != NULL);
    if (!lk) { free(vname); return; }
    nt_set_sz(lk, vname, L"long name");
    vname[300] = 0;
    nt_set_sz(lk, vname, L"300 chars");
    vname[300] = L'A' + 300 % 26;
    RegCloseKey(lk);

    rf_hive *h;
    rf_live_open(RF_HKEY_CURRENT_USER, RF_VIEW_NATIVE, 0, &h);
    rf_status st;
    rf_key k = nt_open(h, nt_join(path, kname), &st);
    CHECK_EQ_INT(st, RF_OK);
    rf_key k2;
    const wchar_t *full = nt_join(path, kname);
    CHECK_EQ_INT(rf_live_key_open(h, 0, U(full), wcslen(full), &k2), RF_OK);
    CHECK_EQ_INT(k2, k);
    kname[255] = L'z';
    kname[256] = 0;
    nt_open(h, nt_join(path, kname), &st);
    CHECK_EQ_INT(st, RF_E_BAD_PATHNAME);
    rf_value v;
    CHECK_EQ_INT(rf_value_open_utf16(h, k, U(vname), 16383, &v), RF_OK);
    rf_value_info vi;
    CHECK_EQ_INT(rf_value_get_info(h, v, &vi), RF_OK);
    CHECK_EQ_INT(vi.name.nbytes, 16383 * 2);
    const uint8_t *p;
    size_t pl;
    CHECK_EQ_INT(rf_value_read(h, v, NULL, 0, &p, &pl), RF_OK);
    CHECK(pl == sizeof L"long name" && memcmp(p, L"long name", pl) == 0);
    CHECK_EQ_INT(rf_value_open(h, k, nt_u8(vname), 16383, &v), RF_OK); /* UTF-8, 16383 bytes */
    CHECK_EQ_INT(rf_value_open_utf16(h, k, U(vname), 300, &v), RF_OK);
    CHECK_EQ_INT(rf_value_read(h, v, NULL, 0, &p, &pl), RF_OK);
    CHECK(pl == sizeof L"300 chars" && memcmp(p, L"300 chars", pl) == 0);
    rf_value vals[4];
    size_t n;
    CHECK_EQ_INT(rf_key_values(h, k, vals, 4, &n), RF_OK);
    CHECK_EQ_INT(n, 2);
    rf_name nm;
    uint32_t t;
    const uint8_t *d;
    size_t dl, longest = 0;
    for (uint32_t i = 0; i < 2; i++) {
        CHECK_EQ_INT(rf_live_enum_value(h, k, i, &nm, &t, &d, &dl), RF_OK);
        if (nm.nbytes > longest) longest = nm.nbytes;
    }
    CHECK_EQ_INT(longest, 16383 * 2);
    rf_hive_close(h);
    free(vname);
}

int main(void)
{
    HKEY top;
    const wchar_t *path = nt_test_key(L"keys", &top);
    printf("running under %s\n", nt_is_wine() ? "Wine" : "Windows");
    test_roots();
    test_wow64(wcsrchr(path, L'\\') + 1);
    test_tree(top, path);
    test_long_names(top, path);
    RegCloseKey(top);
    nt_test_cleanup();
    return CHECK_DONE();
}
