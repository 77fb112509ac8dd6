/*
 * agent_ops.c — regfast-agent's session, key and value ops (ag_ops.def):
 * each decodes its request, calls rf_* on the nt backend, encodes the reply.
 * No Win32 registry call is made here: reads, writes, deletes, snapshots go
 * through the same C API an offline hive answers, so the agent holds no
 * registry logic of its own.
 */
#include "agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
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

/* ------------------------------------------------------------------------ */
/* Session                                                                   */
/* ------------------------------------------------------------------------ */

rf_status ag_op_hello(ibuf *in, obuf *out, ag_call *call)
{
    if (in->n < 8 || memcmp(in->p, "RFAG", 4) != 0)
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "HELLO: magic \"RFAG\" expected");
    uint16_t lo = rd16(in->p + 4), hi = rd16(in->p + 6);
    /* the highest version both sides speak; each is a superset of the one
     * before (ag_ops.def), so any in the range will do for the client */
    uint32_t v = hi < AG_VERSION ? hi : AG_VERSION;
    if (call->version)   /* the framing is fixed by the first HELLO: a later one keeps it or fails */
        v = lo <= call->version && call->version <= hi ? call->version : 0;
    if (lo > v || v < AG_VERSION_MIN)
        return ag_fail(RF_E_NOT_SUPPORTED, 0, "protocol versions %u..%u asked; this agent speaks %u..%u%s",
                       lo, hi, AG_VERSION_MIN, AG_VERSION, call->version ? " (this session's is fixed)" : "");
    call->hello = v;
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

rf_status ag_op_ping(ibuf *in, obuf *out, ag_call *call)
{
    ob_put(out, in->p, in->n);
    return RF_OK;
}

rf_status ag_op_stats(ibuf *in, obuf *out, ag_call *call)
{
    ob_u32(out, kh_open_count());
    ob_u32(out, watch_count());
    ob_u64(out, ag_frames);
    ob_u64(out, ag_bad_frames);
    return RF_OK;
}

rf_status ag_op_quit(ibuf *in, obuf *out, ag_call *call)
{
    call->quit = 1;
    return RF_OK;
}

/* ------------------------------------------------------------------------ */
/* Keys                                                                      */
/* ------------------------------------------------------------------------ */

rf_status ag_op_open_key(ibuf *in, obuf *out, ag_call *call)
{
    uint32_t root = ib_u32(in), view = ib_u32(in), access = ib_u32(in), flags = ib_u32(in);
    size_t plen = 0;
    wchar_t *path = ib_str16(in, AG_MAX_PATH_CHARS, &plen);
    if (in->bad || in->pos != in->n || (flags & ~(uint32_t)(AG_OPEN_CREATE | AG_OPEN_VOLATILE))) {
        free(path);
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "OPEN_KEY: malformed request");
    }
    if ((flags & AG_OPEN_VOLATILE) && call->version < AG_V_LAYOUTS) {
        free(path);
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "OPEN_KEY: the volatile flag needs protocol %u (this session: %u)",
                       AG_V_LAYOUTS, (unsigned)call->version);
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
    /* The hive's access is the handle's (plus KEY_READ): its cached NT
     * handles are opened with it, so a write on a KEY_READ handle is denied
     * by the system, as on a KEY_READ HKEY. */
    rf_status st = ag_get_hive(root, view, tmp.access | KEY_READ, &tmp.hive);
    uint32_t disp = RF_OPENED_EXISTING;
    if (!st && (flags & AG_OPEN_CREATE)) {
        if (!plen)
            st = ag_fail(RF_E_INVALID_PARAMETER, 0, "OPEN_KEY: creating needs a path below the root");
        else if ((st = rf_key_create(tmp.hive, 0, (const uint16_t *)path, plen,
                                     (flags & AG_OPEN_VOLATILE) ? RF_CREATE_VOLATILE : 0, &tmp.key, &disp)))
            st = ag_fail_rf(st);
    } else if (!st) {
        rf_key k;
        rf_key_info ki;
        st = kh_key(&tmp, &k);
        /* The nt backend trusts a cached path without a system call; an open
         * must say whether the key exists *now* (and that the access asked
         * for is granted), as RegOpenKeyExW does. A key deleted since it was
         * cached answers 1018 here, which turns its slot into a tombstone:
         * the second open goes to the kernel. */
        if (!st) {
            rf_status q = rf_key_get_info(tmp.hive, k, &ki);
            if (q == RF_E_KEY_DELETED || q == RF_E_INVALID_HANDLE) {
                tmp.key = 0;
                if (!(st = kh_key(&tmp, &k)) && (q = rf_key_get_info(tmp.hive, k, &ki)) != RF_OK)
                    st = ag_fail_rf(q);
            } else if (q) {
                st = ag_fail_rf(q);
            }
        }
    }
    khandle *kh = st ? NULL : kh_add(&tmp);
    if (!kh) {
        free(path);
        return st ? st : ag_last();
    }
    ob_u32(out, kh_id(kh));
    ob_u32(out, disp == RF_CREATED_NEW ? 1 : 2);
    return RF_OK;
}

rf_status ag_op_close_key(ibuf *in, obuf *out, ag_call *call)
{
    uint32_t id = ib_u32(in);
    khandle *kh = in->bad || in->pos != in->n ? NULL : kh_get(id);
    if (!kh)
        return in->bad || in->pos != in->n ? ag_fail(RF_E_INVALID_PARAMETER, 0, "CLOSE_KEY: malformed")
                                           : RF_E_INVALID_HANDLE;
    watch_handle_closed(id);
    kh_release(kh);
    return RF_OK;
}

rf_status ag_op_key_info(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = handle_arg(in);
    if (!kh)
        return ag_last();
    rf_key k;
    rf_key_info i;
    rf_name nm;
    rf_status st;
    KH_CALL(st, kh, k, rf_key_get_info(kh->hive, k, &i));
    if (st) return st;
    KH_CALL(st, kh, k, rf_key_class(kh->hive, k, &nm));
    if (st) return st;
    ob_u64(out, i.last_write);
    ob_u32(out, i.n_subkeys);
    ob_u32(out, i.n_values);
    ob_u32(out, i.max_name_len);
    ob_u32(out, i.max_class_len);
    ob_u32(out, i.max_value_name_len);
    ob_u32(out, i.max_value_data_len);
    ob_u32(out, i.flags);
    ob_u32(out, nm.nbytes & ~1u);
    ob_put(out, nm.ptr, nm.nbytes & ~1u);
    if (call->version < AG_V_LAYOUTS)
        return RF_OK;
    /* version 4: the name as stored */
    KH_CALL(st, kh, k, rf_key_name(kh->hive, k, &nm));
    if (st) return st;
    ob_u32(out, nm.nbytes & ~1u);
    ob_put(out, nm.ptr, nm.nbytes & ~1u);
    return RF_OK;
}

/* Every hint's entry flags back to 0 (the entries as written above: u64
 * last write, str16 name, u32 flags). */
static void clear_hints(obuf *out, size_t first, uint32_t n)
{
    size_t at = first;
    for (uint32_t i = 0; i < n && at + 12 <= out->n; i++) {
        uint32_t nb = (uint32_t)out->p[at + 8] | (uint32_t)out->p[at + 9] << 8 | (uint32_t)out->p[at + 10] << 16 |
                      (uint32_t)out->p[at + 11] << 24;
        at += 12 + nb;
        if (at + 4 <= out->n) wr32(out->p + at, 0);
        at += 4;
    }
}

rf_status ag_op_subkeys(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = handle_arg(in);
    if (!kh)
        return ag_last();
    uint32_t flags = call->version >= AG_V_LINKS ? ib_u32(in) : 0;
    if (in->bad || in->pos != in->n || (flags & ~AG_SUBKEYS_HINTS))
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "SUBKEYS: malformed");
    rf_key k;
    rf_status st = kh_key(kh, &k);
    if (st)
        return st;
    /* Hints as the NT backend's rf_key_subkeys_hinted gives them (no hint
     * under a mount container, none if the key changed meanwhile: its
     * subkeys' count and last write are read before and after), from
     * enumerations by index that make no cache slot per subkey. */
    rf_key_info before;
    if (flags & AG_SUBKEYS_HINTS) {
        rf_name kp;
        if (rf_live_key_path(kh->hive, k, &kp) != RF_OK ||
            rf_live_is_mount_container((const uint16_t *)kp.ptr, kp.nbytes / 2) ||
            rf_key_get_info(kh->hive, k, &before) != RF_OK)
            flags &= ~AG_SUBKEYS_HINTS;
    }
    size_t count_at = out->n;
    uint32_t n = 0;
    ob_u32(out, 0);
    /* rf_live_enum_subkey: names and times in one NtEnumerateKey each,
     * without making a cache slot per subkey */
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
        if (call->version >= AG_V_LINKS) {
            uint32_t eflags = 0;
            uint32_t nsub;
            uint64_t lw2;
            /* the same index again for the node's counts (KeyFullInformation
             * has no name): the hint stands only for the key just named
             * (the same last write), else it is 0, unknown */
            if ((flags & AG_SUBKEYS_HINTS) && rf_live_enum_subkey_node(kh->hive, k, i, &nsub, &lw2) == RF_OK &&
                lw2 == lw)
                eflags = nsub == 0 ? AG_SUBKEY_NO_SUBKEYS : AG_SUBKEY_HAS_SUBKEYS;
            ob_u32(out, eflags);
        }
        n++;
        if (out->n > AG_MAX_RESPONSE)
            return ag_fail(RF_E_LIMIT, 0, "subkey list over %u bytes", AG_MAX_RESPONSE);
    }
    if (!out->oom)
        wr32(out->p + count_at, n);
    rf_key_info after;
    if ((flags & AG_SUBKEYS_HINTS) && !out->oom &&
        (rf_key_get_info(kh->hive, k, &after) != RF_OK || after.last_write != before.last_write ||
         after.n_subkeys != before.n_subkeys || after.n_subkeys != n))
        clear_hints(out, count_at + 4, n);
    return RF_OK;
}

rf_status ag_op_key_is_link(ibuf *in, obuf *out, ag_call *call)
{
    if (call->version < AG_V_LINKS)
        return ag_fail(RF_E_NOT_SUPPORTED, 0, "KEY_IS_LINK needs protocol %u (this session: %u)", AG_V_LINKS,
                       (unsigned)call->version);
    khandle *kh = handle_arg(in);
    if (!kh)
        return ag_last();
    size_t nchars = 0;
    wchar_t *sub = ib_str16(in, AG_MAX_PATH_CHARS, &nchars);
    if (in->bad || in->pos != in->n || !nchars) {
        free(sub);
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "KEY_IS_LINK: malformed");
    }
    rf_key k;
    rf_status st;
    int link = 0;
    KH_CALL(st, kh, k, rf_live_subkey_is_link(kh->hive, k, (const uint16_t *)sub, nchars, &link));
    free(sub);
    if (!st)
        ob_u32(out, link ? 1 : 0);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Batched reads                                                             */
/* ------------------------------------------------------------------------ */

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

/* Rows as protocol 2 wrote them: 24 bytes each, then the backend's arena. */
static void encode_rows(const batch_out *o, int all, obuf *out)
{
    size_t rows = o->b.n;
    ob_u32(out, (uint32_t)rows);
    ob_u32(out, (uint32_t)o->b.arena_used);
    for (size_t i = 0; i < rows; i++) {
        uint64_t off = o->offset[i];
        uint32_t doff = (o->status[i] == 0 && (off & RF_BATCH_IN_ARENA)) ? (uint32_t)(off & ~RF_BATCH_IN_ARENA) : 0;
        uint32_t noff = 0, nlen = 0;
        if (all && o->name[i].ptr) {
            noff = (uint32_t)((const uint8_t *)o->name[i].ptr - o->arena);
            nlen = o->name[i].nbytes | (o->name[i].utf16 ? 0 : 0x80000000u);
        }
        ob_u32(out, o->type[i]);
        ob_u32(out, (uint32_t)o->status[i]);
        ob_u32(out, o->length[i]);
        ob_u32(out, doff);
        ob_u32(out, noff);
        ob_u32(out, nlen);
    }
    ob_put(out, o->arena, o->b.arena_used);
}

/* Columns (AG_RV_COLUMNS, version 4): a client receives each column straight
 * into its own arrays, then the names and the data into its arena. The data
 * is compacted: each found row's bytes back to back, 8-aligned, without the
 * kernel's record headers, so the arena is no bigger than the data; names
 * (when reading every value) are a block of their own before it.
 *   rows arena_len names_len type[] status[] length[] offset:u64[]
 *   name_off[] name_len[] names arena */
static void encode_columns(const batch_out *o, int all, obuf *out)
{
    size_t rows = o->b.n, arena = 0, names = 0;
    for (size_t i = 0; i < rows; i++) {
        if (o->status[i] == 0) arena += (o->length[i] + 7u) & ~(size_t)7;
        if (all && o->name[i].ptr) names += (o->name[i].nbytes + 1u) & ~(size_t)1;
    }
    ob_u32(out, (uint32_t)rows);
    ob_u32(out, (uint32_t)arena);
    ob_u32(out, (uint32_t)names);
    ob_put(out, o->type, rows * 4);
    ob_put(out, o->status, rows * 4);
    ob_put(out, o->length, rows * 4);
    uint8_t *offs = ob_room(out, rows * 16 + names + arena);   /* one reservation: no pointer moves */
    if (!offs)
        return;
    uint8_t *noff = offs + rows * 8, *nlen = noff + rows * 4, *nb = offs + rows * 16, *a = nb + names;
    size_t at = 0, nat = 0;
    for (size_t i = 0; i < rows; i++) {
        uint64_t off = 0;
        if (o->status[i] == 0) {
            const uint8_t *src = o->arena + (o->offset[i] & ~RF_BATCH_IN_ARENA);
            memcpy(a + at, src, o->length[i]);
            memset(a + at + o->length[i], 0, ((o->length[i] + 7u) & ~7u) - o->length[i]);
            off = at;
            at += (o->length[i] + 7u) & ~(size_t)7;
        }
        memcpy(offs + i * 8, &off, 8);
        uint32_t no = 0, nl = 0;
        if (all && o->name[i].ptr) {
            memcpy(nb + nat, o->name[i].ptr, o->name[i].nbytes);
            if (o->name[i].nbytes & 1) nb[nat + o->name[i].nbytes] = 0;
            no = (uint32_t)nat;
            nl = o->name[i].nbytes | (o->name[i].utf16 ? 0 : 0x80000000u);
            nat += (o->name[i].nbytes + 1u) & ~(size_t)1;
        }
        memcpy(noff + i * 4, &no, 4);
        memcpy(nlen + i * 4, &nl, 4);
    }
    out->n += rows * 16 + names + arena;
}

rf_status ag_op_read_values(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = handle_arg(in);
    if (!kh)
        return ag_last();
    uint32_t flags = ib_u32(in), n = ib_u32(in);
    if (in->bad)
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "READ_VALUES: malformed");
    if (flags & ~(uint32_t)(AG_RV_FULL | AG_RV_COLUMNS))
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "READ_VALUES: flags 0x%x", (unsigned)flags);
    if ((flags & AG_RV_COLUMNS) && call->version < AG_V_LAYOUTS)
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "READ_VALUES: column replies need protocol %u (this session: %u)",
                       AG_V_LAYOUTS, (unsigned)call->version);
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
        st = batch_read(kh, n == AG_ALL ? NULL : names, nn, types, n_types, flags & AG_RV_FULL ? RF_BATCH_FULL : 0, &o);
    if (!st) {
        if (o.b.n * 40 + o.b.arena_used + 64 > AG_MAX_RESPONSE)
            st = ag_fail(RF_E_LIMIT, 0, "answer over the %u-byte frame limit", AG_MAX_RESPONSE);
        else if (flags & AG_RV_COLUMNS)
            encode_columns(&o, n == AG_ALL, out);
        else
            encode_rows(&o, n == AG_ALL, out);
    }
    batch_free(&o);
    free(types);
    free_names(names, keep, nn);
    return st;
}

rf_status ag_op_get_value(ibuf *in, obuf *out, ag_call *call)
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

/* ------------------------------------------------------------------------ */
/* Writes                                                                    */
/* ------------------------------------------------------------------------ */

rf_status ag_op_set_value(ibuf *in, obuf *out, ag_call *call)
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
    rf_key k;
    rf_status st;
    KH_CALL(st, kh, k, rf_value_set(kh->hive, k, (const uint16_t *)name, nc, type, in->p + in->pos, len));
    free(name);
    return st;
}

rf_status ag_op_delete_value(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = handle_arg(in);
    if (!kh)
        return ag_last();
    size_t nc = 0;
    wchar_t *name = ib_str16(in, AG_MAX_NAME_CHARS, &nc);
    if (in->bad || in->pos != in->n) {
        free(name);
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "DELETE_VALUE: malformed");
    }
    rf_key k;
    rf_status st;
    KH_CALL(st, kh, k, rf_value_delete(kh->hive, k, (const uint16_t *)name, nc));
    free(name);
    return st;
}

rf_status ag_op_delete_key(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = handle_arg(in);
    if (!kh)
        return ag_last();
    uint32_t flags = ib_u32(in);
    size_t nc = 0;
    wchar_t *sub = ib_str16(in, AG_MAX_PATH_CHARS, &nc);
    if (in->bad || in->pos != in->n || flags & ~AG_DELETE_TREE) {
        free(sub);
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "DELETE_KEY: malformed");
    }
    if (nc == 0) {
        free(sub);
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "DELETE_KEY: give the subkey to delete");
    }
    rf_key k;
    rf_status st;
    KH_CALL(st, kh, k, rf_key_delete(kh->hive, k, (const uint16_t *)sub, nc,
                                     (flags & AG_DELETE_TREE) ? RF_DELETE_TREE : 0));
    free(sub);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Snapshots (the core's serializer: rf_key_snapshot)                        */
/* ------------------------------------------------------------------------ */

static rf_status snapshot_into(khandle *kh, uint32_t flags, uint32_t max_keys, obuf *out)
{
    rf_bytes b = { NULL, 0, 0 };
    rf_key k;
    rf_status st;
    KH_CALL(st, kh, k, (b.len = 0, rf_key_snapshot(kh->hive, k, flags, max_keys, &b)));
    if (!st) {
        if (b.len > AG_MAX_RESPONSE)
            st = ag_fail(RF_E_LIMIT, 0, "snapshot of %zu bytes over the %u-byte frame limit", b.len, AG_MAX_RESPONSE);
        else
            ob_put(out, b.data, b.len);
    }
    rf_bytes_free(&b);
    return st;
}

rf_status ag_op_snapshot(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = handle_arg(in);
    if (!kh)
        return ag_last();
    uint32_t flags = ib_u32(in), max_keys = ib_u32(in);
    if (in->bad || in->pos != in->n || flags & ~(AG_SNAP_SUBTREE | AG_SNAP_KEEP_DATA))
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "SNAPSHOT: malformed");
    return snapshot_into(kh, flags, max_keys, out);
}

rf_status ag_op_snapshot_rf(ibuf *in, obuf *out, ag_call *call)
{
    khandle *kh = handle_arg(in);
    if (!kh)
        return ag_last();
    uint32_t max_keys = ib_u32(in);
    if (in->bad || in->pos != in->n)
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "SNAPSHOT_RF: malformed");
    return snapshot_into(kh, AG_SNAP_SUBTREE | AG_SNAP_KEEP_DATA, max_keys, out);
}
