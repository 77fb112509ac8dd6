/*
 * nt_api.c — the NT native API regfast calls, loaded once from ntdll with
 * GetProcAddress (one missing export must never stop a program from
 * loading), and the other optional exports (nt_proc). Every other file of
 * the nt backend reads the `nt` table; this file calls none of them.
 */
#include "nt/nt_internal.h"

nt_api nt;

static INIT_ONCE api_once = INIT_ONCE_STATIC_INIT;
static rf_status api_status;

#define LOAD(field, sym) do { FARPROC p_ = GetProcAddress(m, sym); memcpy(&nt.field, &p_, sizeof p_); } while (0)

static BOOL CALLBACK load_api(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    (void)once; (void)param; (void)ctx;
    HMODULE m = GetModuleHandleW(L"ntdll.dll");
    if (!m) { api_status = RF_E_NOT_SUPPORTED; return TRUE; }
    LOAD(OpenKeyEx, "NtOpenKeyEx");                         /* optional: Windows 7+ */
    LOAD(OpenKey, "NtOpenKey");
    LOAD(QueryValueKey, "NtQueryValueKey");
    LOAD(QueryKey, "NtQueryKey");
    LOAD(EnumerateKey, "NtEnumerateKey");
    LOAD(EnumerateValueKey, "NtEnumerateValueKey");
    LOAD(QueryMultipleValueKey, "NtQueryMultipleValueKey"); /* optional; a stub under Wine */
    LOAD(QuerySecurityObject, "NtQuerySecurityObject");
    LOAD(Close, "NtClose");
    LOAD(RtlNtStatusToDosError, "RtlNtStatusToDosError");
    LOAD(RtlFormatCurrentUserKeyPath, "RtlFormatCurrentUserKeyPath");
    LOAD(RtlFreeUnicodeString, "RtlFreeUnicodeString");
    LOAD(SetValueKey, "NtSetValueKey");
    LOAD(DeleteValueKey, "NtDeleteValueKey");
    LOAD(DeleteKey, "NtDeleteKey");
    api_status = nt.OpenKey && nt.QueryValueKey && nt.QueryKey && nt.EnumerateKey && nt.EnumerateValueKey &&
                 nt.QuerySecurityObject && nt.Close && nt.RtlNtStatusToDosError &&
                 nt.SetValueKey && nt.DeleteValueKey && nt.DeleteKey
                     ? RF_OK : RF_E_NOT_SUPPORTED;
    return TRUE;
}

rf_status nt_load_api(void)
{
    InitOnceExecuteOnce(&api_once, load_api, NULL, NULL);
    if (api_status)
        return rfi_fail(api_status, RF_NO_OFFSET, 0, "ntdll lacks a registry export regfast needs");
    return RF_OK;
}

FARPROC nt_proc(const wchar_t *dll, const char *name)
{
    HMODULE m = GetModuleHandleW(dll);
    if (!m) m = LoadLibraryW(dll);
    return m ? GetProcAddress(m, name) : NULL;
}

int rf_live_is_wine(void)
{
    return nt_proc(L"ntdll.dll", "wine_get_version") != NULL;
}
