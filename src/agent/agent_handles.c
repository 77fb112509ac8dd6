/*
 * agent_handles.c — regfast-agent's key handles: the u32 ids of OPEN_KEY,
 * each naming (root, view, access, path) and holding the nt backend's token
 * for it (reopened by path when the backend recycled its slot), and the
 * live hives they share, one per (root, view, access).
 */
#include "agent.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* ------------------------------------------------------------------------ */
/* Key handles                                                              */
/* ------------------------------------------------------------------------ */

static khandle *handles;
static uint32_t n_handles, cap_handles, handles_open;

typedef struct hive_ent { uint32_t root, view, access; rf_hive *h; } hive_ent;
static hive_ent hives[32];
static uint32_t n_hives;

HKEY root_hkey(uint32_t root)
{
    switch (root) {
    case RF_HKEY_CLASSES_ROOT: return HKEY_CLASSES_ROOT;
    case RF_HKEY_CURRENT_USER: return HKEY_CURRENT_USER;
    case RF_HKEY_LOCAL_MACHINE: return HKEY_LOCAL_MACHINE;
    case RF_HKEY_USERS: return HKEY_USERS;
    case RF_HKEY_CURRENT_CONFIG: return HKEY_CURRENT_CONFIG;
    default: return NULL;
    }
}

rf_status ag_get_hive(uint32_t root, uint32_t view, uint32_t access, rf_hive **out)
{
    for (uint32_t i = 0; i < n_hives; i++)
        if (hives[i].root == root && hives[i].view == view && hives[i].access == access) {
            *out = hives[i].h;
            return RF_OK;
        }
    if (n_hives == sizeof hives / sizeof hives[0])
        return ag_fail(RF_E_LIMIT, 0, "more than %u (root, view, access) combinations open",
                       (unsigned)n_hives);
    rf_status st = rf_live_open(root, view, access, out);
    if (st)
        return ag_fail_rf(st);
    hives[n_hives++] = (hive_ent){ root, view, access, *out };
    return RF_OK;
}

rf_hive *ag_hive(uint32_t i, uint32_t *root)
{
    if (i >= n_hives)
        return NULL;
    *root = hives[i].root;
    return hives[i].h;
}

khandle *kh_get(uint32_t id)
{
    uint32_t idx = (id & 0xFFFFu);
    if (idx == 0 || idx > n_handles || !handles[idx - 1].used || handles[idx - 1].gen != (id >> 16)) {
        ag_fail(RF_E_INVALID_HANDLE, 0, "key handle 0x%08x is not open", (unsigned)id);
        return NULL;
    }
    return &handles[idx - 1];
}

uint32_t kh_id(const khandle *kh) { return (kh->gen << 16) | (uint32_t)(kh - handles + 1); }

rf_status kh_key(khandle *kh, rf_key *out)
{
    rf_status st;
    if (!kh->hive) {
        /* forgotten by ag_shutdown or a rename of an ancestor */
        if ((st = ag_get_hive(kh->root, kh->view, kh->access | KEY_READ, &kh->hive)) != RF_OK)
            return st;
    }
    if (!kh->key) {
        st = kh->plen ? rf_live_key_open(kh->hive, 0, (const uint16_t *)kh->path, kh->plen, &kh->key)
                      : rf_hive_root(kh->hive, &kh->key);
        if (st) {
            kh->key = 0;
            return ag_fail_rf(st);
        }
    }
    *out = kh->key;
    return RF_OK;
}

rf_status kh_win32(khandle *kh, HKEY *out)
{
    if (!kh->hk) {
        LSTATUS ls = RegOpenKeyExW(root_hkey(kh->root), kh->plen ? kh->path : NULL, 0,
                                   kh->access | kh->view, &kh->hk);
        if (ls) {
            kh->hk = NULL;
            return ag_fail(ls, ls, "RegOpenKeyExW failed: %ld", (long)ls);
        }
    }
    *out = kh->hk;
    return RF_OK;
}

void kh_forget_subtree(uint32_t root, const wchar_t *path, size_t plen)
{
    for (uint32_t i = 0; i < n_handles; i++) {
        khandle *kh = &handles[i];
        if (!kh->used || kh->root != root || kh->plen < plen)
            continue;
        /* names compare case-insensitively, as the registry does */
        if (plen && (CompareStringOrdinal(kh->path, (int)plen, path, (int)plen, TRUE) != CSTR_EQUAL ||
                     (kh->plen > plen && kh->path[plen] != L'\\')))
            continue;
        if (kh->hk && kh->hk != root_hkey(kh->root))
            RegCloseKey(kh->hk);
        kh->hk = NULL;
        kh->key = 0;
    }
}

void kh_release(khandle *kh)
{
    if (kh->hk && kh->hk != root_hkey(kh->root))
        RegCloseKey(kh->hk);
    free(kh->path);
    kh->path = NULL;
    kh->hk = NULL;
    kh->key = 0;
    kh->used = 0;
    kh->gen = (kh->gen + 1) & 0x7FFFu;
    if (!kh->gen)
        kh->gen = 1;
    handles_open--;
}

uint32_t kh_open_count(void) { return handles_open; }

khandle *kh_add(const khandle *tmp)
{
    uint32_t idx = 0;
    while (idx < n_handles && handles[idx].used) idx++;
    if (idx == n_handles) {
        if (n_handles == AG_MAX_HANDLES) {
            ag_fail(RF_E_LIMIT, 0, "%u key handles open", AG_MAX_HANDLES);
            return NULL;
        }
        if (n_handles == cap_handles) {
            uint32_t cap = cap_handles ? cap_handles * 2 : 64;
            khandle *nh = realloc(handles, cap * sizeof *nh);
            if (!nh) {
                ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
                return NULL;
            }
            memset(nh + cap_handles, 0, (cap - cap_handles) * sizeof *nh);
            handles = nh;
            cap_handles = cap;
        }
        n_handles++;
    }
    khandle *kh = &handles[idx];
    uint32_t gen = kh->gen ? kh->gen : 1;
    *kh = *tmp;
    kh->gen = gen;
    kh->used = 1;
    handles_open++;
    return kh;
}

void kh_shutdown(void)
{
    for (uint32_t i = 0; i < n_handles; i++)
        if (handles[i].used)
            kh_release(&handles[i]);
    for (uint32_t i = 0; i < n_hives; i++)
        rf_hive_close(hives[i].h);
    n_hives = 0;
}
