/*
 * agent_watch.c — subtree snapshots and change notification.
 *
 * A watch opens its own KEY_NOTIFY handle per watched key, arms
 * RegNotifyChangeKeyValue on each (with an event, REG_NOTIFY_THREAD_AGNOSTIC
 * where the system has it), and only then takes the baseline snapshots:
 * nothing that happens after the WATCH reply can be missed.
 *
 * WaitForMultipleObjects takes at most 64 handles, so keys are split over
 * wait threads of at most 63 keys each, plus that thread's stop event. When
 * a key's event fires, its thread re-arms the notification FIRST and takes
 * the new snapshot after: a change made while the snapshot is being taken
 * either shows in it or fires the re-armed event again (and shows in the
 * next one); a change made between the signal and the re-arm shows in the
 * snapshot that follows it. The Python side diffs consecutive snapshots.
 *
 * Snapshots hold, per key: relative path, last-write time; per value: name,
 * type, size and a 64-bit FNV-1a hash of the data (the data too only with
 * AG_SNAP_KEEP_DATA), so a watch costs bounded memory on both sides.
 */
#include "agent.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#ifndef REG_NOTIFY_THREAD_AGNOSTIC
#define REG_NOTIFY_THREAD_AGNOSTIC 0x10000000L
#endif

uint64_t fnv1a64(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

/* ------------------------------------------------------------------------ */
/* Snapshots                                                                */
/* ------------------------------------------------------------------------ */

typedef struct snap_ctx {
    obuf    *out;
    uint32_t flags, max_keys, n_keys, view;
    int      truncated;
    wchar_t *path;          /* current relative path */
    size_t   plen, pcap;
    wchar_t *vname;         /* value-name buffer */
    DWORD    vname_cap;     /* chars */
    uint8_t *data;
    DWORD    data_cap;
    uint8_t *sd;            /* security-descriptor buffer */
    DWORD    sd_cap;
} snap_ctx;

static int grow(void **p, DWORD *cap, DWORD want, size_t unit)
{
    if (*cap >= want)
        return 1;
    void *n = realloc(*p, (size_t)want * unit);
    if (!n)
        return 0;
    *p = n;
    *cap = want;
    return 1;
}

/* FNV-1a 64 of the key's owner, group and DACL (self-relative, as the
 * kernel returns them), so that a diff can say the descriptor changed: what
 * a SECURITY or ATTRIBUTES notification is about. 0 when it cannot be read
 * (a handle without READ_CONTROL). */
static uint64_t sd_hash(snap_ctx *c, HKEY hk)
{
    const SECURITY_INFORMATION si = OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION |
                                    DACL_SECURITY_INFORMATION;
    for (int tries = 0; tries < 4; tries++) {
        DWORD len = c->sd_cap;
        LSTATUS ls = RegGetKeySecurity(hk, si, (PSECURITY_DESCRIPTOR)c->sd, &len);
        if (ls == ERROR_SUCCESS)
            return fnv1a64(c->sd, len) | 1;     /* never 0: 0 means "unknown" */
        if (ls != ERROR_INSUFFICIENT_BUFFER || !grow((void **)&c->sd, &c->sd_cap, len + 64, 1))
            return 0;
    }
    return 0;
}

static rf_status snap_key(snap_ctx *c, HKEY hk, int depth)
{
    DWORD nsub = 0, maxsub = 0, nval = 0, maxvname = 0, maxvdata = 0;
    FILETIME ft = { 0, 0 }, ft_after;
    size_t row_at = c->out->n;
    int attempts = 0;
again:;
    LSTATUS ls = RegQueryInfoKeyW(hk, NULL, NULL, NULL, &nsub, &maxsub, NULL, &nval, &maxvname,
                                  &maxvdata, NULL, &ft);
    if (ls)
        return ag_fail(ls, ls, "RegQueryInfoKeyW failed: %ld", (long)ls);
    if (c->n_keys >= c->max_keys) {
        c->truncated = 1;
        return RF_OK;
    }
    c->n_keys++;
    ob_str16(c->out, c->path, c->plen);
    ob_u64(c->out, (uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime);
    ob_u64(c->out, sd_hash(c, hk));
    size_t count_at = c->out->n;
    ob_u32(c->out, 0);
    uint32_t nv = 0;
    if (!grow((void **)&c->vname, &c->vname_cap, maxvname + 2, sizeof(wchar_t)) ||
        !grow((void **)&c->data, &c->data_cap, maxvdata + 2, 1))
        return ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
    for (DWORD i = 0;; i++) {
        DWORD nlen = c->vname_cap, dlen = c->data_cap, type = 0;
        ls = RegEnumValueW(hk, i, c->vname, &nlen, NULL, &type, c->data, &dlen);
        if (ls == ERROR_MORE_DATA) {   /* a value grew since RegQueryInfoKeyW */
            if (!grow((void **)&c->vname, &c->vname_cap, c->vname_cap * 2 + 256, sizeof(wchar_t)) ||
                !grow((void **)&c->data, &c->data_cap, dlen > c->data_cap ? dlen + 256 : c->data_cap * 2, 1))
                return ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
            i--;
            continue;
        }
        if (ls == ERROR_NO_MORE_ITEMS)
            break;
        if (ls)
            return ag_fail(ls, ls, "RegEnumValueW failed: %ld", (long)ls);
        ob_str16(c->out, c->vname, nlen);
        ob_u32(c->out, type);
        ob_u32(c->out, dlen);
        ob_u64(c->out, fnv1a64(c->data, dlen));
        if (c->flags & AG_SNAP_KEEP_DATA)
            ob_str8(c->out, (const char *)c->data, dlen);
        nv++;
    }
    /* A write between RegQueryInfoKeyW and the enumeration would pair the
     * old last-write time with the new values, and the next snapshot would
     * report a change that already was ("key_touched"): take the row again
     * until the key's last-write time holds still across it. */
    if (attempts < 8 &&
        RegQueryInfoKeyW(hk, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &ft_after) == 0 &&
        CompareFileTime(&ft, &ft_after) != 0) {
        attempts++;
        c->out->n = row_at;
        c->n_keys--;
        goto again;
    }
    if (!c->out->oom) {
        uint8_t *p = c->out->p + count_at;
        p[0] = (uint8_t)nv; p[1] = (uint8_t)(nv >> 8); p[2] = (uint8_t)(nv >> 16); p[3] = (uint8_t)(nv >> 24);
    }
    if (c->out->n > AG_MAX_RESPONSE)
        return ag_fail(RF_E_LIMIT, 0, "snapshot over the %u-byte frame limit", AG_MAX_RESPONSE);
    if (!(c->flags & AG_SNAP_SUBTREE) || !nsub)
        return RF_OK;
    if (depth >= 512)
        return ag_fail(RF_E_LIMIT, 0, "subtree deeper than 512 levels");
    /* children: names first (the key may change while we descend) */
    wchar_t *names = malloc((size_t)nsub * (maxsub + 1) * sizeof(wchar_t) + 2);
    DWORD *lens = malloc((size_t)nsub * sizeof(DWORD) + 4);
    if (!names || !lens) {
        free(names);
        free(lens);
        return ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
    }
    DWORD got = 0;
    for (DWORD i = 0; i < nsub; i++) {
        DWORD len = maxsub + 1;
        ls = RegEnumKeyExW(hk, i, names + (size_t)got * (maxsub + 1), &len, NULL, NULL, NULL, NULL);
        if (ls)
            break;   /* fewer subkeys now (or a longer name appeared): take what we have */
        lens[got++] = len;
    }
    rf_status st = RF_OK;
    for (DWORD i = 0; i < got && !st && !c->truncated; i++) {
        const wchar_t *nm = names + (size_t)i * (maxsub + 1);
        size_t need = c->plen + 1 + lens[i] + 1;
        if (need > c->pcap) {
            size_t cap = need * 2;
            wchar_t *np = realloc(c->path, cap * sizeof(wchar_t));
            if (!np) {
                st = ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
                break;
            }
            c->path = np;
            c->pcap = cap;
        }
        size_t saved = c->plen;
        if (c->plen)
            c->path[c->plen++] = L'\\';
        memcpy(c->path + c->plen, nm, lens[i] * sizeof(wchar_t));
        c->plen += lens[i];
        c->path[c->plen] = 0;
        HKEY child;
        ls = RegOpenKeyExW(hk, nm, 0, KEY_READ | c->view, &child);
        if (ls == 0) {
            st = snap_key(c, child, depth + 1);
            RegCloseKey(child);
            if (st == ERROR_KEY_DELETED || st == ERROR_FILE_NOT_FOUND)
                st = RF_OK;   /* deleted while we looked: the next snapshot will say */
        }
        c->plen = saved;
        c->path[c->plen] = 0;
    }
    free(names);
    free(lens);
    return st;
}

static rf_status snapshot_view(HKEY hk, uint32_t flags, uint32_t max_keys, uint32_t view, obuf *out)
{
    snap_ctx c;
    memset(&c, 0, sizeof c);
    c.out = out;
    c.flags = flags;
    c.max_keys = max_keys ? max_keys : 100000;
    c.view = view;
    c.pcap = 256;
    c.path = malloc(c.pcap * sizeof(wchar_t));
    if (!c.path)
        return ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
    c.path[0] = 0;
    size_t head = out->n;
    ob_u32(out, 0);
    ob_u32(out, 0);
    rf_status st = snap_key(&c, hk, 0);
    if (!st && !out->oom) {
        uint32_t fl = (c.truncated ? AG_SNAP_TRUNCATED : 0) | (flags & AG_SNAP_KEEP_DATA ? AG_SNAP_DATA : 0);
        uint8_t *p = out->p + head;
        for (int i = 0; i < 4; i++) p[i] = (uint8_t)(c.n_keys >> (8 * i));
        for (int i = 0; i < 4; i++) p[4 + i] = (uint8_t)(fl >> (8 * i));
    }
    free(c.path);
    free(c.vname);
    free(c.data);
    free(c.sd);
    return st;
}

rf_status snapshot_key(HKEY hk, uint32_t flags, uint32_t max_keys, obuf *out)
{
    return snapshot_view(hk, flags, max_keys, 0, out);
}

rf_status op_snapshot(ibuf *in, obuf *out)
{
    uint32_t id = ib_u32(in), flags = ib_u32(in), max_keys = ib_u32(in);
    if (in->bad || in->pos != in->n || flags & ~(AG_SNAP_SUBTREE | AG_SNAP_KEEP_DATA))
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "SNAPSHOT: malformed");
    khandle *kh = kh_get(id);
    if (!kh)
        return ag_last();
    HKEY hk;
    LSTATUS ls = RegOpenKeyExW(root_hkey(kh->root), kh->plen ? kh->path : NULL, 0, KEY_READ | kh->view, &hk);
    if (ls)
        return ag_fail(ls, ls, "RegOpenKeyExW failed: %ld", (long)ls);
    rf_status st = snapshot_view(hk, flags, max_keys, kh->view, out);
    RegCloseKey(hk);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Watches                                                                  */
/* ------------------------------------------------------------------------ */

#define KEYS_PER_THREAD 63   /* + the stop event = MAXIMUM_WAIT_OBJECTS */

typedef struct wkey {
    HKEY     hk;
    HANDLE   ev;
    uint32_t handle_id;
    uint32_t view;
    uint64_t seq;
} wkey;

struct watch;
typedef struct wthread {
    struct watch *w;
    uint32_t first, count;
    HANDLE   stop, thread;
} wthread;

typedef struct watch {
    uint32_t id, flags, filter, max_keys, delay_ms, n, nthreads;
    DWORD    notify_flags;   /* filter, with REG_NOTIFY_THREAD_AGNOSTIC when accepted */
    wkey    *keys;
    wthread *th;
    struct watch *next;
} watch;

static watch *watches, *pending;
static uint32_t next_watch_id = 1, n_watches;

uint32_t watch_count(void) { return n_watches; }

static LSTATUS arm(watch *w, wkey *k)
{
    ResetEvent(k->ev);
    return RegNotifyChangeKeyValue(k->hk, (w->flags & AG_SNAP_SUBTREE) != 0, w->notify_flags, k->ev, TRUE);
}

static void send_event(watch *w, uint32_t kind, uint32_t index, uint64_t seq, obuf *tail)
{
    obuf e = { 0 };
    ob_u32(&e, kind);
    ob_u32(&e, index);
    ob_u64(&e, seq);
    ob_u64(&e, ag_now_ns());
    if (tail)
        ob_put(&e, tail->p, tail->n);
    if (!e.oom)
        send_frame((uint16_t)(AG_OP_WATCH | AG_EVENT), w->id, e.p, e.n);
    ob_free(&e);
}

static DWORD WINAPI wait_thread(void *arg)
{
    wthread *t = arg;
    watch *w = t->w;
    HANDLE hs[KEYS_PER_THREAD + 1];
    uint32_t idx[KEYS_PER_THREAD + 1];
    DWORD cnt = 1;
    hs[0] = t->stop;
    for (uint32_t i = 0; i < t->count; i++) {
        idx[cnt] = t->first + i;
        hs[cnt++] = w->keys[t->first + i].ev;
    }
    for (;;) {
        DWORD r = WaitForMultipleObjects(cnt, hs, FALSE, INFINITE);
        if (r == WAIT_OBJECT_0 || r >= WAIT_OBJECT_0 + cnt)
            break;
        DWORD slot = r - WAIT_OBJECT_0;
        uint32_t i = idx[slot];
        wkey *k = &w->keys[i];
        if (w->delay_ms && WaitForSingleObject(t->stop, w->delay_ms) == WAIT_OBJECT_0)
            break;   /* (test hook: widens the signal -> re-arm window) */
        /* Re-arm first, then snapshot: see the file comment. */
        LSTATUS ls = arm(w, k);
        obuf snap = { 0 };
        rf_status st = ls ? (rf_status)ls : snapshot_view(k->hk, w->flags, w->max_keys, k->view, &snap);
        if (st == RF_OK && snap.oom)
            st = RF_E_NO_MEMORY;
        if (st) {
            obuf tail = { 0 };
            ob_u32(&tail, (uint32_t)st);
            send_event(w, AG_EV_LOST, i, ++k->seq, &tail);
            ob_free(&tail);
            hs[slot] = hs[cnt - 1];       /* stop waiting on it */
            idx[slot] = idx[cnt - 1];
            cnt--;
        } else {
            send_event(w, AG_EV_CHANGE, i, ++k->seq, &snap);
        }
        ob_free(&snap);
    }
    return 0;
}

static void watch_free(watch *w)
{
    for (uint32_t i = 0; i < w->n; i++) {
        if (w->keys[i].hk)
            RegCloseKey(w->keys[i].hk);
        if (w->keys[i].ev)
            CloseHandle(w->keys[i].ev);
    }
    for (uint32_t i = 0; i < w->nthreads; i++)
        if (w->th[i].stop)
            CloseHandle(w->th[i].stop);
    free(w->keys);
    free(w->th);
    free(w);
}

rf_status op_watch(ibuf *in, obuf *out, uint32_t req_id, int *deferred)
{
    uint32_t flags = ib_u32(in), filter = ib_u32(in), max_keys = ib_u32(in), delay = ib_u32(in),
             n = ib_u32(in);
    if (in->bad || flags & ~(AG_SNAP_SUBTREE | AG_SNAP_KEEP_DATA) || n == 0 || n > AG_MAX_HANDLES ||
        in->n - in->pos != (size_t)n * 4)
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "WATCH: malformed request");
    /* Wine accepts a filter of 0 or 0x40 and a wait on it then never ends. */
    if (filter == 0 || (filter & ~AG_NOTIFY_VALID))
        return ag_fail(RF_E_INVALID_PARAMETER, 0,
                       "notify filter 0x%x: give NAME (1), ATTRIBUTES (2), LAST_SET (4) and/or SECURITY (8)",
                       (unsigned)filter);
    if (delay > 10000)
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "WATCH: delay over 10 s");
    watch *w = calloc(1, sizeof *w);
    if (!w)
        return ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
    w->flags = flags;
    w->filter = filter;
    w->max_keys = max_keys ? max_keys : 100000;
    w->delay_ms = delay;
    w->n = n;
    w->nthreads = (n + KEYS_PER_THREAD - 1) / KEYS_PER_THREAD;
    w->notify_flags = filter | REG_NOTIFY_THREAD_AGNOSTIC;
    w->keys = calloc(n, sizeof *w->keys);
    w->th = calloc(w->nthreads, sizeof *w->th);
    if (!w->keys || !w->th) {
        watch_free(w);
        return ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
    }
    rf_status st = RF_OK;
    for (uint32_t i = 0; i < n && !st; i++) {
        uint32_t id = ib_u32(in);
        khandle *kh = kh_get(id);
        if (!kh) {
            st = ag_last();
            break;
        }
        wkey *k = &w->keys[i];
        k->handle_id = id;
        k->view = kh->view;
        LSTATUS ls = RegOpenKeyExW(root_hkey(kh->root), kh->plen ? kh->path : NULL, 0,
                                   KEY_NOTIFY | KEY_READ | kh->view, &k->hk);
        if (ls) {
            k->hk = NULL;
            st = ag_fail(ls, ls, "watched key %u: RegOpenKeyExW failed: %ld", (unsigned)i, (long)ls);
            break;
        }
        k->ev = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (!k->ev) {
            st = ag_fail(RF_E_NO_MEMORY, GetLastError(), "CreateEventW failed");
            break;
        }
        ls = arm(w, k);
        if (ls == ERROR_INVALID_PARAMETER && (w->notify_flags & REG_NOTIFY_THREAD_AGNOSTIC)) {
            w->notify_flags &= ~(DWORD)REG_NOTIFY_THREAD_AGNOSTIC;   /* before Windows 8 */
            ls = arm(w, k);
        }
        if (ls)
            st = ag_fail(ls, ls, "watched key %u: RegNotifyChangeKeyValue failed: %ld", (unsigned)i, (long)ls);
    }
    for (uint32_t t = 0; t < w->nthreads && !st; t++) {
        w->th[t].w = w;
        w->th[t].first = t * KEYS_PER_THREAD;
        w->th[t].count = (n - w->th[t].first) < KEYS_PER_THREAD ? (n - w->th[t].first) : KEYS_PER_THREAD;
        w->th[t].stop = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (!w->th[t].stop)
            st = ag_fail(RF_E_NO_MEMORY, GetLastError(), "CreateEventW failed");
    }
    if (st) {
        watch_free(w);
        return st;
    }
    /* Armed: now the baselines. */
    w->id = next_watch_id++;
    ob_u32(out, w->id);
    ob_u32(out, w->nthreads);
    for (uint32_t i = 0; i < n && !st; i++)
        st = snapshot_view(w->keys[i].hk, flags, w->max_keys, w->keys[i].view, out);
    if (st) {
        watch_free(w);
        return st;
    }
    (void)req_id;
    pending = w;
    *deferred = 1;
    return RF_OK;
}

/* Threads start once the WATCH reply is out, so no event precedes it.
 * Changes in between keep their events set and are seen at once. */
void watch_after_reply(void)
{
    watch *w = pending;
    pending = NULL;
    if (!w)
        return;
    for (uint32_t t = 0; t < w->nthreads; t++) {
        w->th[t].thread = CreateThread(NULL, 64 * 1024, wait_thread, &w->th[t], 0, NULL);
        if (!w->th[t].thread) {
            obuf tail = { 0 };
            ob_u32(&tail, (uint32_t)GetLastError());
            for (uint32_t i = w->th[t].first; i < w->th[t].first + w->th[t].count; i++)
                send_event(w, AG_EV_LOST, i, 0, &tail);
            ob_free(&tail);
        }
    }
    w->next = watches;
    watches = w;
    n_watches++;
}

static void watch_end(watch *w, uint32_t reason)
{
    for (uint32_t t = 0; t < w->nthreads; t++)
        if (w->th[t].stop)
            SetEvent(w->th[t].stop);
    for (uint32_t t = 0; t < w->nthreads; t++)
        if (w->th[t].thread) {
            WaitForSingleObject(w->th[t].thread, INFINITE);
            CloseHandle(w->th[t].thread);
            w->th[t].thread = NULL;
        }
    obuf tail = { 0 };
    ob_u32(&tail, reason);
    send_event(w, AG_EV_ENDED, 0, 0, &tail);
    ob_free(&tail);
    watch_free(w);
    n_watches--;
}

rf_status op_unwatch(ibuf *in, obuf *out)
{
    uint32_t id = ib_u32(in);
    if (in->bad || in->pos != in->n)
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "UNWATCH: malformed");
    for (watch **pp = &watches; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            watch *w = *pp;
            *pp = w->next;
            watch_end(w, AG_END_UNWATCH);
            return RF_OK;
        }
    return ag_fail(RF_E_INVALID_HANDLE, 0, "watch %u is not running", (unsigned)id);
}

void watch_handle_closed(uint32_t handle_id)
{
    for (watch **pp = &watches; *pp;) {
        watch *w = *pp;
        int uses = 0;
        for (uint32_t i = 0; i < w->n && !uses; i++)
            uses = w->keys[i].handle_id == handle_id;
        if (uses) {
            *pp = w->next;
            watch_end(w, AG_END_KEY_CLOSED);
        } else {
            pp = &w->next;
        }
    }
}

void watch_stop_all(uint32_t reason)
{
    while (watches) {
        watch *w = watches;
        watches = w->next;
        watch_end(w, reason);
    }
}
