/* Helpers shared by the nt backend tests: a unique test key under
 * HKCU\Software\regfast-test, removed at exit, and small Win32 shorthands. */
#ifndef NT_TEST_UTIL_H
#define NT_TEST_UTIL_H
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#include <stdint.h>
#include <string.h>
#include <wchar.h>
#include "check.h"
#include "regfast/regfast.h"
#include "regfast/regfast_nt.h"

/* mingw's wchar_t is UTF-16: L"" literals serve as rf UTF-16 names. */
#define U(s) ((const uint16_t *)(s))
#define ULEN(s) (wcslen(s))

/* 1 under Wine (ntdll exports wine_get_version), 0 on Windows. */
int nt_is_wine(void);

/* Creates HKCU\Software\regfast-test\<suite>-<pid>-<tick> and returns its
 * path relative to HKCU (static storage) and an open KEY_ALL_ACCESS handle.
 * The key is deleted by nt_test_cleanup() (also registered with atexit). */
const wchar_t *nt_test_key(const wchar_t *suite, HKEY *out);
void nt_test_cleanup(void);

/* path = base + "\" + rest (static rotating buffers) */
const wchar_t *nt_join(const wchar_t *base, const wchar_t *rest);

/* UTF-8 copy of a wide string (static rotating buffers), for rf_key_open. */
const char *nt_u8(const wchar_t *w);

HKEY nt_create(HKEY parent, const wchar_t *path);
void nt_set(HKEY k, const wchar_t *name, DWORD type, const void *data, DWORD len);
void nt_set_sz(HKEY k, const wchar_t *name, const wchar_t *s);
void nt_set_dword(HKEY k, const wchar_t *name, DWORD v);

/* rf_key_open with a wide path; 0 on failure (status in *st when not NULL). */
rf_key nt_open(rf_hive *h, const wchar_t *path, rf_status *st);

/* Compares an rf_name (UTF-16) with a wide string, case-sensitively. */
int nt_name_is(const rf_name *n, const wchar_t *s);

double nt_now(void); /* seconds, QueryPerformanceCounter */
#endif
