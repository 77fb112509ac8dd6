/*
 * agent_core.c — regfast-agent's request handling, independent of how the
 * requests arrive: handshake, key handles, reads (through the rf_* API) and
 * writes (Win32 Reg*, which rf_* lacks), one request at a time through
 * ag_dispatch(). Two hosts drive it: agent_main.c (frames over
 * stdin/stdout: regfast-agent.exe) and, on Windows, the Python extension
 * regfast._live (requests as in-memory payloads: regfast.open_key() in the
 * Python process itself). Both speak the same payloads, so the Python side
 * has one implementation of Key for both.
 */
#include "agent.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* ------------------------------------------------------------------------ */
/* Buffers                                                                  */
/* ------------------------------------------------------------------------ */

static int ob_reserve(obuf *b, size_t more)
{
    if (b->oom)
        return 0;
    if (b->n + more <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more) {
        if (cap > ((size_t)1 << 40)) {
            b->oom = 1;
            return 0;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void ob_put(obuf *b, const void *src, size_t n)
{
    if (n && ob_reserve(b, n)) {
        memcpy(b->p + b->n, src, n);
        b->n += n;
    }
}
void ob_u16(obuf *b, uint16_t v) { uint8_t t[2] = { (uint8_t)v, (uint8_t)(v >> 8) }; ob_put(b, t, 2); }
void ob_u32(obuf *b, uint32_t v)
{
    uint8_t t[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    ob_put(b, t, 4);
}
void ob_u64(obuf *b, uint64_t v) { ob_u32(b, (uint32_t)v); ob_u32(b, (uint32_t)(v >> 32)); }
void ob_str16(obuf *b, const wchar_t *s, size_t nchars)
{
    ob_u32(b, (uint32_t)(nchars * 2));
    ob_put(b, s, nchars * 2);   /* wchar_t is UTF-16LE on Windows */
}
void ob_str8(obuf *b, const char *s, size_t n) { ob_u32(b, (uint32_t)n); ob_put(b, s, n); }
void ob_free(obuf *b) { free(b->p); memset(b, 0, sizeof *b); }

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }

uint32_t ib_u32(ibuf *b)
{
    if (b->bad || b->n - b->pos < 4) {
        b->bad = 1;
        return 0;
    }
    uint32_t v = rd32(b->p + b->pos);
    b->pos += 4;
    return v;
}

wchar_t *ib_str16(ibuf *b, size_t max_chars, size_t *nchars)
{
    uint32_t nb = ib_u32(b);
    if (b->bad || (nb & 1) || nb / 2 > max_chars || b->n - b->pos < nb) {
        b->bad = 1;
        return NULL;
    }
    wchar_t *s = malloc(nb + 2);
    if (!s) {
        b->bad = 1;
        return NULL;
    }
    memcpy(s, b->p + b->pos, nb);
    s[nb / 2] = 0;
    b->pos += nb;
    if (nchars)
        *nchars = nb / 2;
    return s;
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

#ifdef _MSC_VER
#define AG_TLS __declspec(thread)
#else
#define AG_TLS __thread
#endif

/* Per thread: watch threads fail too (their messages go in LOST events). */
static AG_TLS int64_t err_native;
static AG_TLS rf_status err_status;
static AG_TLS char err_msg[512];

rf_status ag_last(void) { return err_status ? err_status : RF_E_INVALID_PARAMETER; }

rf_status ag_fail(rf_status st, int64_t native, const char *fmt, ...)
{
    va_list ap;
    err_status = st;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    err_native = native;
    return st;
}

rf_status ag_fail_rf(rf_status st)
{
    const rf_error *e = rf_last_error();
    if (e->code == st && e->message[0])
        return ag_fail(st, e->native, "%s", e->message);
    return ag_fail(st, 0, "%s", rf_status_text(st));
}

/* ------------------------------------------------------------------------ */
/* Events: handed to the host's sink                                        */
/* ------------------------------------------------------------------------ */

static LARGE_INTEGER qpf, qp0;
static ag_event_sink event_sink;
static void *event_ctx;

uint64_t ag_now_ns(void)
{
    LARGE_INTEGER t;
    QueryPerformanceCounter(&t);
    return (uint64_t)((double)(t.QuadPart - qp0.QuadPart) * 1e9 / (double)qpf.QuadPart);
}

void ag_init(ag_event_sink sink, void *ctx)
{
    QueryPerformanceFrequency(&qpf);
    QueryPerformanceCounter(&qp0);
    event_sink = sink;
    event_ctx = ctx;
}

void send_frame(uint16_t op, uint32_t id, const uint8_t *payload, size_t n)
{
    if (event_sink)
        event_sink(op, id, payload, n, event_ctx);
}

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

static rf_status get_hive(uint32_t root, uint32_t view, uint32_t access, rf_hive **out)
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

static uint32_t kh_id(const khandle *kh) { return (kh->gen << 16) | (uint32_t)(kh - handles + 1); }

rf_status kh_key(khandle *kh, rf_key *out)
{
    rf_status st;
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

static void kh_release(khandle *kh)
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

/* An rf_* call on a handle's key, retried once with a fresh token when the
 * slot was recycled by the nt backend's bounded cache (RF_E_INVALID_HANDLE). */
#define WITH_KEY(kh, k, call)                                   \
    do {                                                        \
        rf_status st_ = kh_key((kh), &(k));                     \
        if (st_) return st_;                                    \
        st_ = (call);                                           \
        if (st_ == RF_E_INVALID_HANDLE) {                       \
            (kh)->key = 0;                                      \
            if ((st_ = kh_key((kh), &(k))) != RF_OK) return st_;\
            st_ = (call);                                       \
        }                                                       \
        if (st_) return ag_fail_rf(st_);                        \
    } while (0)

/* ------------------------------------------------------------------------ */
/* Ops                                                                      */
/* ------------------------------------------------------------------------ */

static int hello_done;
uint64_t ag_frames, ag_bad_frames;
uint32_t ag_version;

static rf_status op_hello(ibuf *in, obuf *out)
{
    if (in->n < 8 || memcmp(in->p, "RFAG", 4) != 0)
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "HELLO: magic \"RFAG\" expected");
    uint16_t lo = rd16(in->p + 4), hi = rd16(in->p + 6);
    /* the highest version both sides speak: payloads are the same from 2 on,
     * only the framing differs (agent.h) */
    uint32_t v = hi < AG_VERSION ? hi : AG_VERSION;
    if (hello_done)     /* the framing is fixed by the first HELLO: a later one keeps it or fails */
        v = lo <= ag_version && ag_version <= hi ? ag_version : 0;
    if (lo > v || v < AG_MIN_VERSION)
        return ag_fail(RF_E_NOT_SUPPORTED, 0, "protocol versions %u..%u asked; this agent speaks %u..%u",
                       lo, hi, AG_MIN_VERSION, AG_VERSION);
    hello_done = 1;
    ag_version = v;
    ob_u16(out, (uint16_t)v);
    ob_u32(out, AG_MAX_REQUEST);
    ob_u32(out, AG_MAX_RESPONSE);
    ob_u32(out, GetCurrentProcessId());
    ob_u32(out, 0);
    const char *(*wine_version)(void) = NULL;
    FARPROC p = GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "wine_get_version");
    memcpy(&wine_version, &p, sizeof p);
    char desc[160];
    snprintf(desc, sizeof desc, "regfast-agent %d.%d protocol %u on %s%s", RF_VERSION_MAJOR,
             RF_VERSION_MINOR, (unsigned)v, wine_version ? "Wine " : "Windows", wine_version ? wine_version() : "");
    ob_str8(out, desc, strlen(desc));
    return RF_OK;
}

static rf_status op_open_key(ibuf *in, obuf *out)
{
    uint32_t root = ib_u32(in), view = ib_u32(in), access = ib_u32(in), flags = ib_u32(in);
    size_t plen = 0;
    wchar_t *path = ib_str16(in, AG_MAX_PATH_CHARS, &plen);
    if (in->bad || in->pos != in->n) {
        free(path);
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "OPEN_KEY: malformed request");
    }
    /* trim leading/trailing separators: "\\Software\\X\\" is "Software\\X" */
    size_t a = 0;
    while (a < plen && path[a] == L'\\') a++;
    while (plen > a && path[plen - 1] == L'\\') plen--;
    memmove(path, path + a, (plen - a) * sizeof(wchar_t));
    plen -= a;
    path[plen] = 0;
    if (!root_hkey(root)) {
        free(path);
        return ag_fail(RF_E_INVALID_HANDLE, 0, "0x%08x is not a predefined root key", (unsigned)root);
    }
    if (view & ~(uint32_t)(RF_VIEW_32 | RF_VIEW_64) || (view & RF_VIEW_32 && view & RF_VIEW_64)) {
        free(path);
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "view 0x%x: 0, 0x100 (64) or 0x200 (32)", (unsigned)view);
    }
    if (!access)
        access = KEY_READ;
    khandle tmp = { 0 };
    tmp.root = root;
    tmp.view = view;
    tmp.access = access & ~(uint32_t)(KEY_WOW64_32KEY | KEY_WOW64_64KEY);
    tmp.path = path;
    tmp.plen = plen;
    rf_status st = get_hive(root, view, tmp.access | KEY_READ, &tmp.hive);
    DWORD disp = REG_OPENED_EXISTING_KEY;
    if (!st && (flags & 1)) {
        LSTATUS ls = RegCreateKeyExW(root_hkey(root), path, 0, NULL, 0, tmp.access | view, NULL, &tmp.hk, &disp);
        if (ls)
            st = ag_fail(ls, ls, "RegCreateKeyExW failed: %ld", (long)ls);
    } else if (!st) {
        rf_key k;
        rf_key_info ki;
        st = kh_key(&tmp, &k);
        /* The nt backend trusts a cached path without a system call; an open
         * must say whether the key exists *now*, as RegOpenKeyExW does. A
         * key deleted since it was cached answers 1018 here, which turns its
         * slot into a tombstone: the second open goes to the kernel. */
        if (!st) {
            rf_status q = rf_key_get_info(tmp.hive, k, &ki);
            if (q == RF_E_KEY_DELETED || q == RF_E_INVALID_HANDLE) {
                tmp.key = 0;
                st = kh_key(&tmp, &k);
            } else if (q) {
                st = ag_fail_rf(q);
            }
        }
        if (!st && (tmp.access & (KEY_SET_VALUE | KEY_CREATE_SUB_KEY | DELETE))) {
            HKEY hk;
            st = kh_win32(&tmp, &hk);   /* write access checked now, as RegOpenKeyExW does */
        }
    }
    if (st) {
        if (tmp.hk)
            RegCloseKey(tmp.hk);
        free(path);
        return st;
    }
    uint32_t idx = 0;
    while (idx < n_handles && handles[idx].used) idx++;
    if (idx == n_handles) {
        if (n_handles == AG_MAX_HANDLES) {
            if (tmp.hk) RegCloseKey(tmp.hk);
            free(path);
            return ag_fail(RF_E_LIMIT, 0, "%u key handles open", AG_MAX_HANDLES);
        }
        if (n_handles == cap_handles) {
            uint32_t cap = cap_handles ? cap_handles * 2 : 64;
            khandle *nh = realloc(handles, cap * sizeof *nh);
            if (!nh) {
                if (tmp.hk) RegCloseKey(tmp.hk);
                free(path);
                return ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
            }
            memset(nh + cap_handles, 0, (cap - cap_handles) * sizeof *nh);
            handles = nh;
            cap_handles = cap;
        }
        n_handles++;
    }
    khandle *kh = &handles[idx];
    uint32_t gen = kh->gen ? kh->gen : 1;
    *kh = tmp;
    kh->gen = gen;
    kh->used = 1;
    handles_open++;
    ob_u32(out, kh_id(kh));
    ob_u32(out, disp == REG_CREATED_NEW_KEY ? 1 : 2);
    return RF_OK;
}

static khandle *handle_arg(ibuf *in)
{
    uint32_t id = ib_u32(in);
    if (in->bad) {
        ag_fail(RF_E_INVALID_PARAMETER, 0, "malformed request: no key handle");
        return NULL;
    }
    return kh_get(id);
}

static rf_status op_close_key(ibuf *in, obuf *out)
{
    uint32_t id = ib_u32(in);
    khandle *kh = in->bad ? NULL : kh_get(id);
    if (!kh)
        return in->bad ? ag_fail(RF_E_INVALID_PARAMETER, 0, "CLOSE_KEY: malformed") : RF_E_INVALID_HANDLE;
    watch_handle_closed(id);
    kh_release(kh);
    return RF_OK;
}

static rf_status op_key_info(ibuf *in, obuf *out)
{
    khandle *kh = handle_arg(in);
    if (!kh)
        return ag_last();
    rf_key k;
    rf_key_info i;
    rf_name cls;
    WITH_KEY(kh, k, rf_key_get_info(kh->hive, k, &i));
    WITH_KEY(kh, k, rf_key_class(kh->hive, k, &cls));
    ob_u64(out, i.last_write);
    ob_u32(out, i.n_subkeys);
    ob_u32(out, i.n_values);
    ob_u32(out, i.max_name_len);
    ob_u32(out, i.max_class_len);
    ob_u32(out, i.max_value_name_len);
    ob_u32(out, i.max_value_data_len);
    ob_u32(out, i.flags);
    ob_u32(out, cls.nbytes & ~1u);
    ob_put(out, cls.ptr, cls.nbytes & ~1u);
    return RF_OK;
}

static rf_status op_subkeys(ibuf *in, obuf *out)
{
    khandle *kh = handle_arg(in);
    if (!kh)
        return ag_last();
    rf_key k;
    rf_status st = kh_key(kh, &k);
    if (st)
        return st;
    size_t count_at = out->n;
    uint32_t n = 0;
    ob_u32(out, 0);
    for (uint32_t i = 0;; i++) {
        rf_name name;
        uint64_t lw;
        st = rf_live_enum_subkey(kh->hive, k, i, &name, &lw);
        if (st == RF_E_NO_MORE_ITEMS)
            break;
        if (st == RF_E_INVALID_HANDLE && i == 0) {
            kh->key = 0;
            if ((st = kh_key(kh, &k)) != RF_OK)
                return st;
            i--;
            continue;
        }
        if (st)
            return ag_fail_rf(st);
        ob_u64(out, lw);
        ob_u32(out, name.nbytes);
        ob_put(out, name.ptr, name.nbytes);
        n++;
        if (out->n > AG_MAX_RESPONSE)
            return ag_fail(RF_E_LIMIT, 0, "subkey list over %u bytes", AG_MAX_RESPONSE);
    }
    if (!out->oom)
        wr32(out->p + count_at, n);
    return RF_OK;
}

/* A batched read into `arena`, grown as rf_read_values asks. names NULL: all. */
typedef struct batch_out {
    rf_batch b;
    uint32_t *type, *length;
    int32_t *status;
    uint64_t *offset;
    rf_name *name;
    uint8_t *arena;
} batch_out;

static void batch_free(batch_out *o)
{
    free(o->type); free(o->length); free(o->status); free(o->offset); free(o->name); free(o->arena);
    memset(o, 0, sizeof *o);
}

static rf_status batch_read(khandle *kh, const rf_name *names, size_t n, const uint32_t *types,
                            size_t n_types, uint32_t flags, batch_out *o)
{
    rf_key k;
    rf_status st = kh_key(kh, &k);
    if (st)
        return st;
    size_t cap = names ? n : 0, arena_cap = 0;
    if (!names) {
        rf_key_info i;
        st = rf_key_get_info(kh->hive, k, &i);
        if (st == RF_E_INVALID_HANDLE) {
            kh->key = 0;
            if ((st = kh_key(kh, &k)) != RF_OK)
                return st;
            st = rf_key_get_info(kh->hive, k, &i);
        }
        if (st)
            return ag_fail_rf(st);
        cap = (size_t)i.n_values + 8;
        arena_cap = cap * (64 + (size_t)i.max_value_name_len + i.max_value_data_len);
    } else {
        arena_cap = n * 320 + 4096;
    }
    if (arena_cap > AG_MAX_RESPONSE)
        arena_cap = AG_MAX_RESPONSE;
    for (int attempt = 0; attempt < 8; attempt++) {
        batch_free(o);
        size_t c = cap ? cap : 1;
        o->type = malloc(c * 4);
        o->length = malloc(c * 4);
        o->status = malloc(c * 4);
        o->offset = malloc(c * 8);
        o->name = calloc(c, sizeof(rf_name));
        o->arena = malloc(arena_cap ? arena_cap : 1);
        if (!o->type || !o->length || !o->status || !o->offset || !o->name || !o->arena)
            return ag_fail(RF_E_NO_MEMORY, 0, "out of memory for %zu rows", c);
        memset(&o->b, 0, sizeof o->b);
        o->b.struct_size = sizeof o->b;
        o->b.cap = c;
        o->b.type = o->type;
        o->b.status = o->status;
        o->b.offset = o->offset;
        o->b.length = o->length;
        o->b.name = o->name;
        o->b.arena = o->arena;
        o->b.arena_cap = arena_cap;
        st = rf_read_values(kh->hive, k, names, n, types, n_types, flags, &o->b);
        if (st == RF_E_INVALID_HANDLE && attempt == 0) {
            kh->key = 0;
            if ((st = kh_key(kh, &k)) != RF_OK)
                return st;
            continue;
        }
        if (st != RF_E_MORE_DATA)
            break;
        if (!names && o->b.n > cap)
            cap = o->b.n + 8;
        if (o->b.arena_used > arena_cap)
            arena_cap = o->b.arena_used + 4096;
        if (arena_cap > AG_MAX_RESPONSE)
            return ag_fail(RF_E_LIMIT, 0, "values need %zu bytes, over the %u-byte frame limit",
                           o->b.arena_used, AG_MAX_RESPONSE);
    }
    if (st)
        return ag_fail_rf(st);
    return RF_OK;
}

/* Names of a request as UTF-16 rf_names (copies kept in `keep`). */
static rf_status read_names(ibuf *in, uint32_t n, rf_name **names_out, wchar_t ***keep_out)
{
    *names_out = NULL;
    *keep_out = NULL;
    if (n > in->n / 4)
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "%u names cannot fit in %zu bytes", (unsigned)n, in->n);
    rf_name *names = calloc(n ? n : 1, sizeof *names);
    wchar_t **keep = calloc(n ? n : 1, sizeof *keep);
    if (!names || !keep) {
        free(names);
        free(keep);
        return ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
    }
    *names_out = names;
    *keep_out = keep;
    for (uint32_t i = 0; i < n; i++) {
        size_t nc;
        keep[i] = ib_str16(in, AG_MAX_NAME_CHARS, &nc);
        if (!keep[i])
            return ag_fail(RF_E_INVALID_PARAMETER, 0, "name %u is malformed", (unsigned)i);
        names[i].ptr = keep[i];
        names[i].nbytes = (uint32_t)(nc * 2);
        names[i].utf16 = 1;
    }
    return RF_OK;
}

static void free_names(rf_name *names, wchar_t **keep, uint32_t n)
{
    if (keep)
        for (uint32_t i = 0; i < n; i++) free(keep[i]);
    free(keep);
    free(names);
}

static rf_status op_read_values(ibuf *in, obuf *out)
{
    khandle *kh = handle_arg(in);
    if (!kh)
        return ag_last();
    uint32_t flags = ib_u32(in), n = ib_u32(in);
    if (in->bad)
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "READ_VALUES: malformed");
    if (flags & ~(uint32_t)RF_BATCH_FULL)
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "READ_VALUES: flags 0x%x", (unsigned)flags);
    rf_name *names = NULL;
    wchar_t **keep = NULL;
    uint32_t nn = n == AG_ALL ? 0 : n;
    rf_status st = read_names(in, nn, &names, &keep);
    uint32_t n_types = st ? 0 : ib_u32(in);
    uint32_t *types = NULL;
    if (!st && (in->bad || n_types > (in->n - in->pos) / 4 || (in->n - in->pos) != (size_t)n_types * 4))
        st = ag_fail(RF_E_INVALID_PARAMETER, 0, "READ_VALUES: malformed type list");
    if (!st && n_types) {
        types = malloc(n_types * 4);
        if (!types)
            st = ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
        for (uint32_t i = 0; !st && i < n_types; i++) types[i] = ib_u32(in);
    }
    batch_out o = { 0 };
    if (!st)
        st = batch_read(kh, n == AG_ALL ? NULL : names, nn, types, n_types, flags, &o);
    if (!st) {
        size_t rows = o.b.n;
        if ((size_t)rows * 24 + o.b.arena_used + 64 > AG_MAX_RESPONSE)
            st = ag_fail(RF_E_LIMIT, 0, "answer over the %u-byte frame limit", AG_MAX_RESPONSE);
        else {
            ob_u32(out, (uint32_t)rows);
            ob_u32(out, (uint32_t)o.b.arena_used);
            for (size_t i = 0; i < rows; i++) {
                uint64_t off = o.offset[i];
                uint32_t doff = (o.status[i] == 0 && (off & RF_BATCH_IN_ARENA)) ? (uint32_t)(off & ~RF_BATCH_IN_ARENA) : 0;
                uint32_t noff = 0, nlen = 0;
                if (n == AG_ALL && o.name[i].ptr) {
                    noff = (uint32_t)((const uint8_t *)o.name[i].ptr - o.arena);
                    nlen = o.name[i].nbytes | (o.name[i].utf16 ? 0 : 0x80000000u);
                }
                ob_u32(out, o.type[i]);
                ob_u32(out, (uint32_t)o.status[i]);
                ob_u32(out, o.length[i]);
                ob_u32(out, doff);
                ob_u32(out, noff);
                ob_u32(out, nlen);
            }
            ob_put(out, o.arena, o.b.arena_used);
        }
    }
    batch_free(&o);
    free(types);
    free_names(names, keep, nn);
    return st;
}

static rf_status op_get_value(ibuf *in, obuf *out)
{
    khandle *kh = handle_arg(in);
    if (!kh)
        return ag_last();
    size_t nc = 0;
    wchar_t *name = ib_str16(in, AG_MAX_NAME_CHARS, &nc);
    if (in->bad || in->pos != in->n) {
        free(name);
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "GET_VALUE: malformed");
    }
    rf_name rn = { name, (uint32_t)(nc * 2), 1 };
    batch_out o = { 0 };
    rf_status st = batch_read(kh, &rn, 1, NULL, 0, 0, &o);
    if (!st && o.status[0])
        st = o.status[0] == RF_E_NOT_FOUND ? ag_fail(RF_E_NOT_FOUND, 0, "the value does not exist")
                                          : ag_fail(o.status[0], 0, "%s", rf_status_text(o.status[0]));
    if (!st) {
        ob_u32(out, o.type[0]);
        ob_u32(out, o.length[0]);
        ob_put(out, o.arena + (o.offset[0] & ~RF_BATCH_IN_ARENA), o.length[0]);
    }
    batch_free(&o);
    free(name);
    return st;
}

static rf_status op_set_value(ibuf *in, obuf *out)
{
    khandle *kh = handle_arg(in);
    if (!kh)
        return ag_last();
    uint32_t type = ib_u32(in);
    size_t nc = 0;
    wchar_t *name = ib_str16(in, AG_MAX_NAME_CHARS, &nc);
    uint32_t len = ib_u32(in);
    if (in->bad || in->n - in->pos != len) {
        free(name);
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "SET_VALUE: malformed");
    }
    HKEY hk;
    rf_status st = kh_win32(kh, &hk);
    if (!st) {
        LSTATUS ls = RegSetValueExW(hk, name, 0, type, in->p + in->pos, len);
        if (ls)
            st = ag_fail(ls, ls, "RegSetValueExW failed: %ld", (long)ls);
    }
    free(name);
    return st;
}

static rf_status op_delete_value(ibuf *in, obuf *out)
{
    khandle *kh = handle_arg(in);
    if (!kh)
        return ag_last();
    wchar_t *name = ib_str16(in, AG_MAX_NAME_CHARS, NULL);
    if (in->bad || in->pos != in->n) {
        free(name);
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "DELETE_VALUE: malformed");
    }
    HKEY hk;
    rf_status st = kh_win32(kh, &hk);
    if (!st) {
        LSTATUS ls = RegDeleteValueW(hk, name);
        if (ls)
            st = ag_fail(ls, ls, ls == 2 ? "the value does not exist" : "RegDeleteValueW failed: %ld", (long)ls);
    }
    free(name);
    return st;
}

static rf_status op_delete_key(ibuf *in, obuf *out)
{
    khandle *kh = handle_arg(in);
    if (!kh)
        return ag_last();
    uint32_t flags = ib_u32(in);
    size_t nc = 0;
    wchar_t *sub = ib_str16(in, AG_MAX_PATH_CHARS, &nc);
    if (in->bad || in->pos != in->n || flags & ~1u) {
        free(sub);
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "DELETE_KEY: malformed");
    }
    if (nc == 0) {
        free(sub);
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "DELETE_KEY: give the subkey to delete");
    }
    HKEY hk;
    rf_status st = kh_win32(kh, &hk);
    if (!st) {
        LSTATUS ls = (flags & 1) ? RegDeleteTreeW(hk, sub) : RegDeleteKeyExW(hk, sub, kh->view, 0);
        if (ls == ERROR_ACCESS_DENIED && !(flags & 1)) {
            /* a key with subkeys: Windows says 5; say so plainly */
            HKEY t;
            DWORD nsub = 0;
            if (!RegOpenKeyExW(hk, sub, 0, KEY_READ | kh->view, &t)) {
                RegQueryInfoKeyW(t, NULL, NULL, NULL, &nsub, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
                RegCloseKey(t);
            }
            if (nsub)
                st = ag_fail(ls, ls, "the key has %lu subkeys (delete them first, or tree=True)", (unsigned long)nsub);
            else
                st = ag_fail(ls, ls, "RegDeleteKeyExW failed: %ld", (long)ls);
        } else if (ls)
            st = ag_fail(ls, ls, ls == 2 ? "the key does not exist" : "deleting the key failed: %ld", (long)ls);
    }
    free(sub);
    return st;
}

static rf_status op_stats(ibuf *in, obuf *out)
{
    ob_u32(out, handles_open);
    ob_u32(out, watch_count());
    ob_u64(out, ag_frames);
    ob_u64(out, ag_bad_frames);
    return RF_OK;
}

static rf_status op_ping(ibuf *in, obuf *out)
{
    ob_put(out, in->p, in->n);
    return RF_OK;
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                 */
/* ------------------------------------------------------------------------ */

void ag_error_payload(rf_status st, obuf *reply)
{
    reply->n = 0;
    reply->oom = 0;
    ob_u32(reply, (uint32_t)st);
    ob_u64(reply, (uint64_t)err_native);
    ob_str8(reply, err_msg, strlen(err_msg));
}

int ag_dispatch(uint16_t op, uint32_t id, const uint8_t *payload, size_t len, obuf *reply,
                int *deferred)
{
    ibuf in = { payload, len, 0, 0 };
    obuf *out = reply;
    out->n = 0;
    out->oom = 0;
    ob_u32(out, 0);
    err_msg[0] = 0;
    err_native = 0;
    err_status = 0;
    rf_clear_error();
    ag_frames++;
    rf_status st;
    int quit = 0;
    *deferred = 0;
    if (!hello_done && op != AG_OP_HELLO)
        st = ag_fail(RF_E_INVALID_PARAMETER, 0, "the first request must be HELLO");
    else switch (op) {
    case AG_OP_HELLO: st = op_hello(&in, out); break;
    case AG_OP_PING: st = op_ping(&in, out); break;
    case AG_OP_OPEN_KEY: st = op_open_key(&in, out); break;
    case AG_OP_CLOSE_KEY: st = op_close_key(&in, out); break;
    case AG_OP_KEY_INFO: st = op_key_info(&in, out); break;
    case AG_OP_SUBKEYS: st = op_subkeys(&in, out); break;
    case AG_OP_GET_VALUE: st = op_get_value(&in, out); break;
    case AG_OP_READ_VALUES: st = op_read_values(&in, out); break;
    case AG_OP_SET_VALUE: st = op_set_value(&in, out); break;
    case AG_OP_DELETE_VALUE: st = op_delete_value(&in, out); break;
    case AG_OP_DELETE_KEY: st = op_delete_key(&in, out); break;
    case AG_OP_SNAPSHOT: st = op_snapshot(&in, out); break;
    case AG_OP_WATCH: st = op_watch(&in, out, id, deferred); break;
    case AG_OP_UNWATCH: st = op_unwatch(&in, out); break;
    case AG_OP_BENCH: st = op_bench(&in, out); break;
    case AG_OP_STATS: st = op_stats(&in, out); break;
    case AG_OP_QUIT: st = RF_OK; quit = 1; break;
    default:
        /* Administration ops (agent_admin.c) and transactions (agent_tx.c)
         * keep their own switch so that those files own their op range. */
        if (op >= AG_OP_ADMIN_FIRST && op <= AG_OP_ADMIN_LAST)
            st = op_admin(op, &in, out);
        else if (op >= AG_OP_TX_FIRST && op <= AG_OP_TX_LAST)
            st = op_tx(op, &in, out);
        else
            st = ag_fail(RF_E_NOT_SUPPORTED, 0, "unknown op %u", op);
    }
    if (!st && out->oom)
        st = ag_fail(RF_E_NO_MEMORY, 0, "out of memory building the answer");
    if (!st && out->n > AG_MAX_RESPONSE)
        st = ag_fail(RF_E_LIMIT, 0, "answer of %zu bytes over the %u-byte limit", out->n, AG_MAX_RESPONSE);
    if (st) {
        if (st == RF_E_INVALID_PARAMETER || st == RF_E_INVALID_DATA)
            ag_bad_frames++;
        if (!err_msg[0])
            ag_fail_rf(st);
        *deferred = 0;
        ag_error_payload(st, out);
    }
    return quit;
}

void ag_shutdown(void)
{
    watch_stop_all(AG_END_QUIT);
    tx_shutdown();   /* before the key handles: a transacted key belongs to its tx */
    for (uint32_t i = 0; i < n_handles; i++)
        if (handles[i].used)
            kh_release(&handles[i]);
    for (uint32_t i = 0; i < n_hives; i++)
        rf_hive_close(hives[i].h);
    n_hives = 0;
    hello_done = 0;
    ag_version = 0;
}
