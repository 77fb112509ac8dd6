/*
 * nt_watch.c — change notification for the nt backend (rf_watch_*).
 *
 * Each watched key gets a KEY_NOTIFY handle of its own (a second open of its
 * cached handle, whose slot stays pinned for the watch's life so its token
 * never goes stale) and an event, armed with RegNotifyChangeKeyValue
 * (REG_NOTIFY_THREAD_AGNOSTIC where the system has it). All keys are armed
 * first and the baseline snapshots taken after: nothing that happens after
 * rf_watch_open() returns can be missed.
 *
 * WaitForMultipleObjects takes at most 64 handles, so keys are split over
 * wait threads of at most 63 keys each, plus that thread's stop event. When
 * a key's event fires, its thread re-arms the notification FIRST and takes
 * the new snapshot after (rf_key_snapshot, the core's one serializer): a
 * change made while the snapshot is being taken either shows in it or fires
 * the re-armed event again (and shows in the next one).
 *
 * Events go to a queue the consumer pulls with rf_watch_next(). It holds at
 * most one CHANGE and one LOST per key: a newer snapshot of a key replaces
 * the one still queued for it (the consumer diffs consecutive snapshots, so
 * it only ever needs the latest; the seq gap says some were coalesced), and
 * a lost key is not waited on any more. So the queue is bounded by 2n
 * entries whatever the writers do.
 */
#include <stdlib.h>
#include <string.h>

#include "nt/nt_internal.h"

#ifndef REG_NOTIFY_THREAD_AGNOSTIC
#define REG_NOTIFY_THREAD_AGNOSTIC 0x10000000L
#endif

#define KEYS_PER_THREAD 63   /* + the stop event = MAXIMUM_WAIT_OBJECTS */

typedef struct wkey {
    nt_ref   ref;        /* pinned: the key's token stays valid while watched */
    rf_key   key;
    HKEY     hk;         /* its own KEY_NOTIFY handle */
    HANDLE   ev;
    uint64_t seq;
    int      queued;     /* index of its queued CHANGE entry, or -1 */
} wkey;

typedef struct qent {
    uint32_t  kind, index;
    uint64_t  seq, time_ns;
    rf_status status;
    rf_bytes  snap;
} qent;

struct nt_watch;
typedef struct wthread {
    struct nt_watch *w;
    uint32_t first, count;
    HANDLE   stop, thread;
} wthread;

typedef struct nt_watch {
    rf_watch   base;         /* must be first */
    nt_hive   *h;
    rf_watch_opts o;
    DWORD      notify_flags; /* filter, with REG_NOTIFY_THREAD_AGNOSTIC when accepted */
    uint32_t   n, nthreads;
    wkey      *keys;
    wthread   *th;
    SRWLOCK    lock;         /* the queue, `lost`, `stopped` */
    CONDITION_VARIABLE cv;
    qent      *q;            /* ring of 2n + 1 entries */
    uint32_t   qcap, qhead, qlen;
    uint32_t   lost;
    volatile LONG stopped;
    rf_bytes   current;      /* the snapshot the last rf_watch_next returned */
} nt_watch;

static LSTATUS arm(nt_watch *w, wkey *k)
{
    ResetEvent(k->ev);
    return RegNotifyChangeKeyValue(k->hk, (w->o.flags & RF_SNAP_SUBTREE) != 0, w->notify_flags, k->ev, TRUE);
}

/* Queues an event (takes ownership of *snap). Coalesces a key's CHANGEs. */
static void push(nt_watch *w, uint32_t kind, uint32_t index, uint64_t seq, rf_status status, rf_bytes *snap)
{
    AcquireSRWLockExclusive(&w->lock);
    wkey *k = &w->keys[index];
    qent *e = NULL;
    if (kind == RF_WATCH_CHANGE && k->queued >= 0) {
        e = &w->q[k->queued];
        rf_bytes_free(&e->snap);           /* superseded: the consumer needs the latest only */
    } else if (w->qlen < w->qcap) {
        uint32_t at = (w->qhead + w->qlen++) % w->qcap;
        e = &w->q[at];
        if (kind == RF_WATCH_CHANGE) k->queued = (int)at;
    }
    if (e) {
        e->kind = kind;
        e->index = index;
        e->seq = seq;
        e->time_ns = rfi_now_ns();
        e->status = status;
        if (snap) {
            e->snap = *snap;
            memset(snap, 0, sizeof *snap);
        } else {
            memset(&e->snap, 0, sizeof e->snap);
        }
    }
    if (kind == RF_WATCH_LOST) w->lost++;
    ReleaseSRWLockExclusive(&w->lock);
    if (snap) rf_bytes_free(snap);         /* not queued (cannot happen: 2n + 1 entries) */
    WakeAllConditionVariable(&w->cv);
}

static DWORD WINAPI wait_thread(void *arg)
{
    wthread *t = arg;
    nt_watch *w = t->w;
    HANDLE hs[KEYS_PER_THREAD + 1];
    uint32_t idx[KEYS_PER_THREAD + 1];
    DWORD cnt = 1;
    hs[0] = t->stop;
    for (uint32_t i = 0; i < t->count; i++) {
        idx[cnt] = t->first + i;
        hs[cnt++] = w->keys[t->first + i].ev;
    }
    while (cnt > 1) {
        DWORD r = WaitForMultipleObjects(cnt, hs, FALSE, INFINITE);
        if (r == WAIT_OBJECT_0 || r >= WAIT_OBJECT_0 + cnt) break;
        DWORD slot = r - WAIT_OBJECT_0;
        uint32_t i = idx[slot];
        wkey *k = &w->keys[i];
        if (w->o.delay_ms && WaitForSingleObject(t->stop, w->o.delay_ms) == WAIT_OBJECT_0)
            break;   /* (test hook: widens the signal -> re-arm window) */
        /* Re-arm first, then snapshot: see the file comment. */
        LSTATUS ls = arm(w, k);
        rf_bytes snap = { NULL, 0, 0 };
        rf_status st = ls ? nt_fail_win32(ls, "RegNotifyChangeKeyValue", NULL, 0)
                          : rf_key_snapshot(&w->h->base, k->key, w->o.flags, w->o.max_keys, &snap);
        if (st) {
            rf_bytes_free(&snap);
            push(w, RF_WATCH_LOST, i, ++k->seq, st, NULL);
            hs[slot] = hs[cnt - 1];       /* stop waiting on it */
            idx[slot] = idx[cnt - 1];
            cnt--;
        } else {
            push(w, RF_WATCH_CHANGE, i, ++k->seq, RF_OK, &snap);
        }
    }
    return 0;
}

static void watch_free(nt_watch *w)
{
    nt_watch_stop(&w->base);
    for (uint32_t t = 0; t < w->nthreads; t++) {
        if (w->th[t].thread) {
            WaitForSingleObject(w->th[t].thread, INFINITE);
            CloseHandle(w->th[t].thread);
        }
        if (w->th[t].stop) CloseHandle(w->th[t].stop);
    }
    for (uint32_t i = 0; i < w->n; i++) {
        if (w->keys[i].hk) RegCloseKey(w->keys[i].hk);
        if (w->keys[i].ev) CloseHandle(w->keys[i].ev);
        if (w->keys[i].ref.handle) nt_release(w->h, &w->keys[i].ref);
    }
    for (uint32_t i = 0; i < w->qcap; i++) rf_bytes_free(&w->q[i].snap);
    rf_bytes_free(&w->current);
    free(w->q);
    free(w->keys);
    free(w->th);
    free(w);
}

void nt_watch_stop(rf_watch *base)
{
    nt_watch *w = (nt_watch *)base;
    if (InterlockedExchange(&w->stopped, 1)) return;
    for (uint32_t t = 0; t < w->nthreads; t++)
        if (w->th[t].stop) SetEvent(w->th[t].stop);
    AcquireSRWLockExclusive(&w->lock);   /* no waiter misses the flag between its test and its sleep */
    ReleaseSRWLockExclusive(&w->lock);
    WakeAllConditionVariable(&w->cv);
}

void nt_watch_close(rf_watch *base)
{
    watch_free((nt_watch *)base);
}

rf_status nt_watch_next(rf_watch *base, uint32_t timeout_ms, rf_watch_event *ev)
{
    nt_watch *w = (nt_watch *)base;
    uint64_t deadline = timeout_ms == UINT32_MAX ? UINT64_MAX : rfi_now_ns() + (uint64_t)timeout_ms * 1000000u;
    rf_bytes_free(&w->current);
    AcquireSRWLockExclusive(&w->lock);
    for (;;) {
        if (w->qlen) {
            qent *e = &w->q[w->qhead];
            w->qhead = (w->qhead + 1) % w->qcap;
            w->qlen--;
            if (e->kind == RF_WATCH_CHANGE) w->keys[e->index].queued = -1;
            ev->kind = e->kind;
            ev->index = e->index;
            ev->seq = e->seq;
            ev->time_ns = e->time_ns;
            ev->status = e->status;
            w->current = e->snap;
            memset(&e->snap, 0, sizeof e->snap);
            ev->snapshot = w->current.data;
            ev->snapshot_len = w->current.len;
            ReleaseSRWLockExclusive(&w->lock);
            return RF_OK;
        }
        if (w->stopped || w->lost >= w->n) {
            ReleaseSRWLockExclusive(&w->lock);
            return rfi_fail(RF_E_NO_MORE_ITEMS, RF_NO_OFFSET, 0,
                            w->stopped ? "the watch was stopped" : "every watched key was lost");
        }
        uint64_t now = rfi_now_ns();
        if (now >= deadline) {
            ReleaseSRWLockExclusive(&w->lock);
            return rfi_fail(RF_E_TIMEOUT, RF_NO_OFFSET, 0, "no change within %u ms", timeout_ms);
        }
        uint64_t left = deadline == UINT64_MAX ? INFINITE : (deadline - now + 999999u) / 1000000u;
        SleepConditionVariableSRW(&w->cv, &w->lock, left >= INFINITE ? INFINITE - 1 : (DWORD)left, 0);
    }
}

rf_status nt_watch_open(rf_hive *base, const rf_key *keys, size_t n, const rf_watch_opts *o, rf_bytes *baselines,
                        rf_watch **out)
{
    nt_hive *h = (nt_hive *)base;
    if (n > 0xFFFFFFu) return rfi_fail(RF_E_LIMIT, RF_NO_OFFSET, 0, "%zu keys in one watch", n);
    nt_watch *w = calloc(1, sizeof *w);
    if (!w) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
    w->base.hive = base;
    w->h = h;
    w->o = *o;
    w->n = (uint32_t)n;
    w->nthreads = (w->n + KEYS_PER_THREAD - 1) / KEYS_PER_THREAD;
    w->notify_flags = o->filter | REG_NOTIFY_THREAD_AGNOSTIC;
    w->qcap = 2 * w->n + 1;
    InitializeSRWLock(&w->lock);
    InitializeConditionVariable(&w->cv);
    w->keys = calloc(n, sizeof *w->keys);
    w->th = calloc(w->nthreads, sizeof *w->th);
    w->q = calloc(w->qcap, sizeof *w->q);
    if (!w->keys || !w->th || !w->q) {
        watch_free(w);
        return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory for a watch of %zu keys", n);
    }
    rf_status st = RF_OK;
    for (uint32_t i = 0; i < w->n && !st; i++) {
        wkey *k = &w->keys[i];
        k->key = keys[i];
        k->queued = -1;
        if ((st = nt_acquire(h, keys[i], &k->ref)) != RF_OK) break;
        if ((st = nt_reopen(&k->ref, KEY_NOTIFY | KEY_READ, &k->hk)) != RF_OK) break;
        if (!(k->ev = CreateEventW(NULL, TRUE, FALSE, NULL))) {
            st = rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, GetLastError(), "CreateEventW failed");
            break;
        }
        LSTATUS ls = arm(w, k);
        if (ls == ERROR_INVALID_PARAMETER && (w->notify_flags & REG_NOTIFY_THREAD_AGNOSTIC)) {
            w->notify_flags &= ~(DWORD)REG_NOTIFY_THREAD_AGNOSTIC;   /* before Windows 8 */
            ls = arm(w, k);
        }
        if (ls) st = nt_fail_win32(ls, "RegNotifyChangeKeyValue", NULL, 0);
    }
    for (uint32_t t = 0; t < w->nthreads && !st; t++) {
        w->th[t].w = w;
        w->th[t].first = t * KEYS_PER_THREAD;
        w->th[t].count = (w->n - w->th[t].first) < KEYS_PER_THREAD ? (w->n - w->th[t].first) : KEYS_PER_THREAD;
        if (!(w->th[t].stop = CreateEventW(NULL, TRUE, FALSE, NULL)))
            st = rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, GetLastError(), "CreateEventW failed");
    }
    /* Armed: now the baselines. */
    for (uint32_t i = 0; i < w->n && !st && baselines; i++)
        st = rf_key_snapshot(base, keys[i], o->flags, o->max_keys, &baselines[i]);
    for (uint32_t t = 0; t < w->nthreads && !st; t++) {
        w->th[t].thread = CreateThread(NULL, 64 * 1024, wait_thread, &w->th[t], 0, NULL);
        if (!w->th[t].thread) st = rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, GetLastError(), "CreateThread failed");
    }
    if (st) {
        rf_error saved = *rf_last_error();
        watch_free(w);
        rfi_fail(saved.code, saved.offset, saved.native, "%s", saved.message);
        return st;
    }
    *out = &w->base;
    return RF_OK;
}
