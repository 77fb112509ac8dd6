/*
 * agent_bench.c — the reference chapter's API comparison, run inside the
 * agent so that a row times a read method and not the pipe: BENCH names a
 * method, a key and value names; the agent reads every name `reps` times with
 * that method (names, buffers and handles prepared before the clock starts)
 * and returns the elapsed nanoseconds (QueryPerformanceCounter).
 *
 * Methods (AG_BENCH_*): RegQueryValueExW and RegGetValueW on an open handle,
 * NtQueryValueKey Partial / Full, regfast single reads (rf_live_get_value),
 * regfast batched reads (one rf_read_values per pass, Partial / Full),
 * open-each (RegOpenKeyExW + RegQueryValueExW + RegCloseKey per read),
 * RegGetValueW with the key path, and regfast's cached open per read
 * (rf_key_open through the handle cache + rf_live_get_value). Key depth is
 * the depth of the key the request names.
 */
#include "agent.h"

#include <stdlib.h>
#include <string.h>

typedef LONG NTSTATUS_;
typedef struct { USHORT Length, MaximumLength; PWSTR Buffer; } ustr;
typedef NTSTATUS_ (NTAPI *query_value_fn)(HANDLE, ustr *, ULONG, PVOID, ULONG, ULONG *);

rf_status ag_op_bench(ibuf *in, obuf *out, ag_call *call)
{
    uint32_t method = ib_u32(in), id = ib_u32(in), reps = ib_u32(in), n = ib_u32(in);
    if (in->bad || method == 0 || method > AG_BENCH_MAX || reps == 0 || reps > 1000000 || n == 0 ||
        n > in->n / 4)
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "BENCH: malformed request");
    khandle *kh = kh_get(id);
    if (!kh)
        return ag_last();
    wchar_t **names = calloc(n, sizeof *names);
    ustr *un = calloc(n, sizeof *un);
    rf_name *rn = calloc(n, sizeof *rn);
    size_t *nc = calloc(n, sizeof *nc);
    rf_status st = (names && un && rn && nc) ? RF_OK : ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
    for (uint32_t i = 0; i < n && !st; i++) {
        names[i] = ib_str16(in, AG_MAX_NAME_CHARS, &nc[i]);
        if (!names[i])
            st = ag_fail(RF_E_INVALID_PARAMETER, 0, "BENCH: name %u malformed", (unsigned)i);
        else {
            un[i].Length = un[i].MaximumLength = (USHORT)(nc[i] * 2);
            un[i].Buffer = names[i];
            rn[i] = (rf_name){ names[i], (uint32_t)(nc[i] * 2), 1 };
        }
    }
    if (!st && in->pos != in->n)
        st = ag_fail(RF_E_INVALID_PARAMETER, 0, "BENCH: trailing bytes");
    HKEY hk = NULL;
    rf_key k = 0;
    if (!st)
        st = kh_win32(kh, &hk);
    if (!st)
        st = kh_key(kh, &k);
    query_value_fn nqv = NULL;
    FARPROC p = GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "NtQueryValueKey");
    memcpy(&nqv, &p, sizeof p);
    HKEY root = root_hkey(kh->root);
    char *path8 = NULL;
    size_t path8_len = 0;
    if (!st) {
        int need = WideCharToMultiByte(CP_UTF8, 0, kh->path, (int)kh->plen, NULL, 0, NULL, NULL);
        path8 = malloc((size_t)need + 1);
        if (!path8)
            st = ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
        else
            path8_len = (size_t)WideCharToMultiByte(CP_UTF8, 0, kh->path, (int)kh->plen, path8, need, NULL, NULL);
    }
    /* buffers: 64 KB per read; the arena fits every row of a batch */
    size_t cap = 65536, arena_cap = (size_t)n * 1024 + 65536;   /* rows of up to ~1 KB */
    uint8_t *buf = malloc(cap), *arena = malloc(arena_cap);
    uint32_t *ctype = malloc((size_t)n * 4), *clen = malloc((size_t)n * 4);
    int32_t *cst = malloc((size_t)n * 4);
    uint64_t *coff = malloc((size_t)n * 8);
    if (!st && (!buf || !arena || !ctype || !clen || !cst || !coff))
        st = ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
    uint64_t ok = 0, t0 = 0, t1 = 0;
    if (!st) {
        t0 = ag_now_ns();
        for (uint32_t r = 0; r < reps; r++) {
            if (method == AG_BENCH_RF_BATCH || method == AG_BENCH_RF_BATCH_FULL) {
                rf_batch b;
                memset(&b, 0, sizeof b);
                b.struct_size = sizeof b;
                b.cap = n;
                b.type = ctype;
                b.status = cst;
                b.offset = coff;
                b.length = clen;
                b.arena = arena;
                b.arena_cap = arena_cap;
                if (rf_read_values(kh->hive, k, rn, n, NULL, 0,
                                   method == AG_BENCH_RF_BATCH_FULL ? RF_BATCH_FULL : 0, &b) == RF_OK)
                    for (size_t i = 0; i < b.n; i++) ok += cst[i] == 0;
                continue;
            }
            for (uint32_t i = 0; i < n; i++) {
                DWORD len = (DWORD)cap, type;
                size_t slen;
                ULONG rl;
                HKEY t;
                rf_key kk;
                switch (method) {
                case AG_BENCH_REGQUERYVALUEEX:
                    ok += RegQueryValueExW(hk, names[i], NULL, &type, buf, &len) == 0;
                    break;
                case AG_BENCH_REGGETVALUE:
                    ok += RegGetValueW(hk, NULL, names[i], RRF_RT_ANY | RRF_NOEXPAND, NULL, buf, &len) == 0;
                    break;
                case AG_BENCH_NT_PARTIAL:
                    ok += nqv && nqv((HANDLE)hk, &un[i], 2, buf, (ULONG)cap, &rl) == 0;
                    break;
                case AG_BENCH_NT_FULL:
                    ok += nqv && nqv((HANDLE)hk, &un[i], 1, buf, (ULONG)cap, &rl) == 0;
                    break;
                case AG_BENCH_RF_SINGLE:
                    ok += rf_live_get_value(kh->hive, k, (const uint16_t *)names[i], nc[i],
                                            RF_RRF_RT_ANY | RF_RRF_NOEXPAND, buf, cap, NULL, &slen) == RF_OK;
                    break;
                case AG_BENCH_OPEN_EACH:
                    if (RegOpenKeyExW(root, kh->path, 0, KEY_READ | kh->view, &t) == 0) {
                        ok += RegQueryValueExW(t, names[i], NULL, &type, buf, &len) == 0;
                        RegCloseKey(t);
                    }
                    break;
                case AG_BENCH_REGGETVALUE_PATH:
                    ok += RegGetValueW(root, kh->path, names[i],
                                       RRF_RT_ANY | RRF_NOEXPAND | (kh->view == RF_VIEW_32 ? RRF_SUBKEY_WOW6432KEY
                                                  : kh->view == RF_VIEW_64 ? RRF_SUBKEY_WOW6464KEY : 0),
                                       NULL, buf, &len) == 0;
                    break;
                case AG_BENCH_RF_OPEN_EACH:
                    if (rf_key_open(kh->hive, 0, path8, path8_len, &kk) == RF_OK)
                        ok += rf_live_get_value(kh->hive, kk, (const uint16_t *)names[i], nc[i],
                                                RF_RRF_RT_ANY | RF_RRF_NOEXPAND, buf, cap, NULL, &slen) == RF_OK;
                    break;
                }
            }
        }
        t1 = ag_now_ns();
        ob_u64(out, t1 - t0);
        ob_u64(out, ok);
        ob_u32(out, (uint32_t)rf_live_multi_state());
    }
    if (names)
        for (uint32_t i = 0; i < n; i++) free(names[i]);
    free(names); free(un); free(rn); free(nc); free(path8);
    free(buf); free(arena); free(ctype); free(clen); free(cst); free(coff);
    return st;
}
