#include "nt_test_util.h"
#include <stdio.h>
#include <stdlib.h>

static wchar_t test_path[256];
static int cleanup_registered;

int nt_is_wine(void)
{
    HMODULE m = GetModuleHandleW(L"ntdll.dll");
    return m && GetProcAddress(m, "wine_get_version") != NULL;
}

void nt_test_cleanup(void)
{
    if (!test_path[0]) return;
    RegDeleteTreeW(HKEY_CURRENT_USER, test_path);
    HKEY base;
    if (RegOpenKeyExW(HKEY_CURRENT_USER, L"Software\\regfast-test", 0, KEY_READ, &base) == 0) {
        DWORD n = 1;
        RegQueryInfoKeyW(base, NULL, NULL, NULL, &n, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        RegCloseKey(base);
        if (n == 0) RegDeleteKeyW(HKEY_CURRENT_USER, L"Software\\regfast-test");
    }
    test_path[0] = 0;
}

const wchar_t *nt_test_key(const wchar_t *suite, HKEY *out)
{
    swprintf(test_path, 256, L"Software\\regfast-test\\%ls-%lu-%lu", suite, GetCurrentProcessId(),
             (unsigned long)GetTickCount());
    LONG e = RegCreateKeyExW(HKEY_CURRENT_USER, test_path, 0, NULL, 0, KEY_ALL_ACCESS, NULL, out, NULL);
    if (e) {
        fprintf(stderr, "cannot create the test key (%ld)\n", e);
        exit(2);
    }
    if (!cleanup_registered) {
        atexit(nt_test_cleanup);
        cleanup_registered = 1;
    }
    return test_path;
}

const wchar_t *nt_join(const wchar_t *base, const wchar_t *rest)
{
    static wchar_t bufs[8][4096];
    static int next;
    wchar_t *b = bufs[next++ & 7];
    swprintf(b, 4096, L"%ls\\%ls", base, rest);
    return b;
}

const char *nt_u8(const wchar_t *w)
{
    static char bufs[4][65536];
    static int next;
    char *b = bufs[next++ & 3];
    WideCharToMultiByte(CP_UTF8, 0, w, -1, b, 65536, NULL, NULL);
    return b;
}

HKEY nt_create(HKEY parent, const wchar_t *path)
{
    HKEY k = NULL;
    LONG e = RegCreateKeyExW(parent, path, 0, NULL, 0, KEY_ALL_ACCESS, NULL, &k, NULL);
    if (e) fprintf(stderr, "RegCreateKeyExW(%ls) failed: %ld\n", path, e);
    return k;
}

void nt_set(HKEY k, const wchar_t *name, DWORD type, const void *data, DWORD len)
{
    LONG e = RegSetValueExW(k, name, 0, type, data, len);
    if (e) fprintf(stderr, "RegSetValueExW(%ls) failed: %ld\n", name ? name : L"", e);
}

void nt_set_sz(HKEY k, const wchar_t *name, const wchar_t *s)
{
    nt_set(k, name, REG_SZ, s, (DWORD)((wcslen(s) + 1) * 2));
}

void nt_set_dword(HKEY k, const wchar_t *name, DWORD v) { nt_set(k, name, REG_DWORD, &v, 4); }

rf_key nt_open(rf_hive *h, const wchar_t *path, rf_status *st)
{
    rf_key k = 0;
    rf_status s = rf_key_open_utf16(h, 0, U(path), wcslen(path), &k);
    if (st) *st = s;
    return s ? 0 : k;
}

int nt_name_is(const rf_name *n, const wchar_t *s)
{
    size_t len = wcslen(s);
    return n->utf16 && n->nbytes == len * 2 && (len == 0 || memcmp(n->ptr, s, len * 2) == 0);
}

double nt_now(void)
{
    LARGE_INTEGER f, t;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&t);
    return (double)t.QuadPart / (double)f.QuadPart;
}
