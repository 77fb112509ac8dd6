/*
 * agent_watch.c — WATCH and UNWATCH: rf_watch_* on the nt backend, its
 * events forwarded as frames.
 *
 * The keys of one WATCH request may belong to several live hives (a handle's
 * hive is per root, view and access): one rf_watch per hive, each with a
 * forwarder thread that pulls its events (rf_watch_next) and sends them with
 * the indices of the request. rf_watch_open arms every key before it takes
 * the baselines, so nothing that changes after the WATCH reply is missed; the
 * forwarders start only once the reply is out (watch_after_reply), so no
 * event frame precedes it. Snapshots are the core's (rf_key_snapshot).
 */
#include "agent.h"

#include <stdlib.h>
#include <string.h>

struct awatch;

typedef struct agroup {
    struct awatch *aw;
    rf_hive  *hive;
    rf_watch *w;
    uint32_t  n;
    uint32_t *index;      /* group position -> request position */
    HANDLE    thread;
} agroup;

typedef struct awatch {
    uint32_t  id, n, ngroups;
    uint32_t *handle_ids; /* per request position */
    agroup   *g;
    struct awatch *next;
} awatch;

static awatch *watches, *pending;
static uint32_t next_watch_id = 1, n_watches;

uint32_t watch_count(void) { return n_watches; }

static void send_event(uint32_t watch_id, uint32_t kind, uint32_t index, uint64_t seq, uint64_t time_ns,
                       const void *tail, size_t tail_len)
{
    obuf e = { 0 };
    ob_u32(&e, kind);
    ob_u32(&e, index);
    ob_u64(&e, seq);
    ob_u64(&e, time_ns);
    ob_put(&e, tail, tail_len);
    if (!e.oom)
        send_frame((uint16_t)(AG_OP_WATCH | AG_EVENT), watch_id, e.p, e.n);
    ob_free(&e);
}

static DWORD WINAPI forward(void *arg)
{
    agroup *g = arg;
    for (;;) {
        rf_watch_event ev;
        rf_status st = rf_watch_next(g->w, UINT32_MAX, &ev);
        if (st == RF_E_TIMEOUT)
            continue;
        if (st)
            break;    /* stopped (UNWATCH, CLOSE_KEY, QUIT), or every key lost */
        uint32_t index = ev.index < g->n ? g->index[ev.index] : ev.index;
        if (ev.kind == RF_WATCH_CHANGE) {
            send_event(g->aw->id, AG_EV_CHANGE, index, ev.seq, ev.time_ns, ev.snapshot, ev.snapshot_len);
        } else {
            uint32_t s = (uint32_t)ev.status;
            send_event(g->aw->id, AG_EV_LOST, index, ev.seq, ev.time_ns, &s, 4);
        }
    }
    return 0;
}

static void awatch_free(awatch *aw)
{
    for (uint32_t i = 0; i < aw->ngroups; i++) {
        agroup *g = &aw->g[i];
        if (g->w)
            rf_watch_stop(g->w);
        if (g->thread) {
            WaitForSingleObject(g->thread, INFINITE);
            CloseHandle(g->thread);
        }
        rf_watch_close(g->w);
        free(g->index);
    }
    free(aw->g);
    free(aw->handle_ids);
    free(aw);
}

rf_status ag_op_watch(ibuf *in, obuf *out, ag_call *call)
{
    uint32_t flags = ib_u32(in), filter = ib_u32(in), max_keys = ib_u32(in), delay = ib_u32(in),
             n = ib_u32(in);
    if (in->bad || flags & ~(AG_SNAP_SUBTREE | AG_SNAP_KEEP_DATA) || n == 0 || n > AG_MAX_HANDLES ||
        in->n - in->pos != (size_t)n * 4)
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "WATCH: malformed request");
    /* Wine accepts a filter of 0 or 0x40 and a wait on it then never ends:
     * rf_watch_open refuses them too; say it here, before any key is touched */
    if (filter == 0 || (filter & ~AG_NOTIFY_VALID))
        return ag_fail(RF_E_INVALID_PARAMETER, 0,
                       "notify filter 0x%x: give NAME (1), ATTRIBUTES (2), LAST_SET (4) and/or SECURITY (8)",
                       (unsigned)filter);
    if (delay > 10000)
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "WATCH: delay over 10 s");
    awatch *aw = calloc(1, sizeof *aw);
    rf_key *keys = calloc(n, sizeof *keys);
    rf_hive **hives = calloc(n, sizeof *hives);
    rf_bytes *base = calloc(n, sizeof *base);
    rf_status st = RF_OK;
    if (!aw || !keys || !hives || !base || !(aw->handle_ids = calloc(n, 4)) || !(aw->g = calloc(n, sizeof *aw->g)))
        st = ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
    if (aw) aw->n = n;
    for (uint32_t i = 0; i < n && !st; i++) {
        uint32_t id = ib_u32(in);
        khandle *kh = kh_get(id);
        if (!kh) {
            st = ag_last();
            break;
        }
        aw->handle_ids[i] = id;
        if ((st = kh_key(kh, &keys[i])) != RF_OK)
            break;
        hives[i] = kh->hive;
    }
    /* one rf_watch per hive, keys in request order within it */
    rf_watch_opts o = RF_WATCH_OPTS_INIT;
    o.flags = flags;
    o.filter = filter;
    o.max_keys = max_keys;
    o.delay_ms = delay;
    rf_key *gkeys = st ? NULL : calloc(n, sizeof *gkeys);
    rf_bytes *gbase = st ? NULL : calloc(n, sizeof *gbase);
    if (!st && (!gkeys || !gbase))
        st = ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
    uint32_t threads = 0;
    for (uint32_t i = 0; i < n && !st; i++) {
        int seen = 0;
        for (uint32_t j = 0; j < aw->ngroups && !seen; j++) seen = aw->g[j].hive == hives[i];
        if (seen)
            continue;
        agroup *g = &aw->g[aw->ngroups++];
        g->aw = aw;
        g->hive = hives[i];
        if (!(g->index = calloc(n, 4))) {
            st = ag_fail(RF_E_NO_MEMORY, 0, "out of memory");
            break;
        }
        for (uint32_t j = i; j < n; j++)
            if (hives[j] == g->hive) {
                g->index[g->n] = j;
                gkeys[g->n++] = keys[j];
            }
        memset(gbase, 0, g->n * sizeof *gbase);
        st = rf_watch_open(g->hive, gkeys, g->n, &o, gbase, &g->w);
        for (uint32_t j = 0; j < g->n; j++) {
            if (!st)
                base[g->index[j]] = gbase[j];
            else
                rf_bytes_free(&gbase[j]);
        }
        if (st) {
            g->w = NULL;
            st = ag_fail_rf(st);
        }
        threads += (g->n + 62) / 63;   /* the nt backend's wait threads (63 keys each) */
    }
    if (!st) {
        /* Armed: the baselines, in request order. */
        aw->id = next_watch_id++;
        ob_u32(out, aw->id);
        ob_u32(out, threads);
        for (uint32_t i = 0; i < n; i++)
            ob_put(out, base[i].data, base[i].len);
        if (out->n > AG_MAX_RESPONSE)
            st = ag_fail(RF_E_LIMIT, 0, "baseline snapshots over the %u-byte frame limit", AG_MAX_RESPONSE);
    }
    for (uint32_t i = 0; base && i < n; i++)
        rf_bytes_free(&base[i]);
    free(base);
    free(gbase);
    free(gkeys);
    free(keys);
    free(hives);
    if (st) {
        if (aw)
            awatch_free(aw);
        return st;
    }
    pending = aw;
    call->deferred = 1;
    return RF_OK;
}

/* Forwarders start once the WATCH reply is out, so no event precedes it.
 * Changes in between wait in the rf_watch's queue. */
void watch_after_reply(void)
{
    awatch *aw = pending;
    pending = NULL;
    if (!aw)
        return;
    for (uint32_t i = 0; i < aw->ngroups; i++) {
        agroup *g = &aw->g[i];
        g->thread = CreateThread(NULL, 64 * 1024, forward, g, 0, NULL);
        if (!g->thread) {
            uint32_t s = (uint32_t)GetLastError();
            for (uint32_t j = 0; j < g->n; j++)
                send_event(aw->id, AG_EV_LOST, g->index[j], 0, ag_now_ns(), &s, 4);
        }
    }
    aw->next = watches;
    watches = aw;
    n_watches++;
}

static void watch_end(awatch *aw, uint32_t reason)
{
    uint32_t id = aw->id;
    awatch_free(aw);   /* stops the rf_watches and joins the forwarders: ENDED is last */
    send_event(id, AG_EV_ENDED, 0, 0, ag_now_ns(), &reason, 4);
    n_watches--;
}

rf_status ag_op_unwatch(ibuf *in, obuf *out, ag_call *call)
{
    uint32_t id = ib_u32(in);
    if (in->bad || in->pos != in->n)
        return ag_fail(RF_E_INVALID_PARAMETER, 0, "UNWATCH: malformed");
    for (awatch **pp = &watches; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            awatch *aw = *pp;
            *pp = aw->next;
            watch_end(aw, AG_END_UNWATCH);
            return RF_OK;
        }
    return ag_fail(RF_E_INVALID_HANDLE, 0, "watch %u is not running", (unsigned)id);
}

void watch_handle_closed(uint32_t handle_id)
{
    for (awatch **pp = &watches; *pp;) {
        awatch *aw = *pp;
        int uses = 0;
        for (uint32_t i = 0; i < aw->n && !uses; i++)
            uses = aw->handle_ids[i] == handle_id;
        if (uses) {
            *pp = aw->next;
            watch_end(aw, AG_END_KEY_CLOSED);
        } else {
            pp = &aw->next;
        }
    }
}

void watch_stop_all(uint32_t reason)
{
    if (pending) {   /* a WATCH whose reply never went out */
        awatch_free(pending);
        pending = NULL;
    }
    while (watches) {
        awatch *aw = watches;
        watches = aw->next;
        watch_end(aw, reason);
    }
}
