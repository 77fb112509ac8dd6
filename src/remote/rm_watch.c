/*
 * rm_watch.c — rf_watch over the agent: WATCH arms the keys there and
 * answers with the baselines; CHANGE / LOST / ENDED events then come as
 * frames, read whenever the connection reads (any call, or rf_watch_next
 * waiting for them) and queued per watch (rm_conn.c, the same coalescing as
 * the nt backend: one CHANGE and one LOST per key at most). The watched
 * keys' agent handles are pinned: closing one would end the watch.
 *
 * rf_watch_next waits in slices of at most 50 ms with the connection lock
 * dropped between them, so other threads' requests go on while one waits,
 * and rf_watch_stop from another thread is seen within a slice.
 */
#include <stdlib.h>
#include <string.h>

#include "remote/rm_internal.h"

typedef struct rm_watch {
    rf_watch  base;       /* must be first */
    rm_hive  *h;
    rm_evq   *q;
    uint32_t  n, agent_id;
    uint32_t *entries;    /* pinned key entries */
    volatile int stopped;
    rf_bytes  current;    /* the snapshot the last rf_watch_next returned */
} rm_watch;

static void unpin(rm_watch *w)
{
    for (uint32_t i = 0; i < w->n; i++)
        if (w->entries[i] != RM_NONE && w->h->e[w->entries[i]].pins) w->h->e[w->entries[i]].pins--;
}

rf_status rm_watch_open(rf_hive *base, const rf_key *keys, size_t n, const rf_watch_opts *o, rf_bytes *baselines,
                        rf_watch **out)
{
    rm_hive *h = (rm_hive *)base;
    rf_remote *c = h->c;
    if (n > AG_MAX_HANDLES) return rfi_fail(RF_E_LIMIT, RF_NO_OFFSET, 0, "%zu keys in one watch", n);
    rm_watch *w = calloc(1, sizeof *w);
    uint32_t *handles = calloc(n, sizeof *handles);
    if (!w || !handles || !(w->entries = malloc(n * sizeof *w->entries))) {
        if (w) free(w->entries);
        free(w);
        free(handles);
        return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
    }
    w->base.hive = base;
    w->h = h;
    w->n = (uint32_t)n;
    for (uint32_t i = 0; i < w->n; i++) w->entries[i] = RM_NONE;
    rm_lock(&c->lock);
    rf_status st = rm_alive(c);
    for (uint32_t i = 0; i < w->n && !st; i++) {
        uint32_t idx;
        if ((st = rm_entry_of(h, keys[i], &idx)) || (st = rm_handle(h, idx, &handles[i]))) break;
        h->e[idx].pins++;
        w->entries[i] = idx;
    }
    const uint8_t *p = NULL;
    size_t len = 0;
    if (!st) {
        rm_begin(c);
        rm_put32(c, o->flags);
        rm_put32(c, o->filter);
        rm_put32(c, o->max_keys);
        rm_put32(c, o->delay_ms);
        rm_put32(c, w->n);
        for (uint32_t i = 0; i < w->n; i++) rm_put32(c, handles[i]);
        st = rm_call_buf(c, AG_OP_WATCH, &p, &len);
    }
    if (!st) {
        rm_rd r = { p, len, 0, 0 };
        w->agent_id = rm_rd32(&r);
        rm_rd32(&r);   /* the agent's wait threads */
        for (uint32_t i = 0; i < w->n && !st; i++) {
            size_t sz;
            if (r.bad || rf_snapshot_size(r.p + r.pos, r.n - r.pos, &sz)) {
                st = rm_malformed(c, AG_OP_WATCH, "a baseline snapshot");
                break;
            }
            if (baselines && (st = rfi_bytes_put(&baselines[i], r.p + r.pos, sz))) break;
            r.pos += sz;
        }
        if (!st && (r.bad || r.pos != r.n)) st = rm_malformed(c, AG_OP_WATCH, "bytes after the baselines");
        /* events follow the reply: the queue exists before the next frame is read */
        if (!st && !(w->q = rm_evq_add(c, w->agent_id, w->n))) st = RF_E_NO_MEMORY;
    }
    if (st) {
        unpin(w);
        rm_unlock(&c->lock);
        free(handles);
        free(w->entries);
        free(w);
        return st;
    }
    rm_unlock(&c->lock);
    free(handles);
    *out = &w->base;
    return RF_OK;
}

rf_status rm_watch_next(rf_watch *base, uint32_t timeout_ms, rf_watch_event *ev)
{
    rm_watch *w = (rm_watch *)base;
    rf_remote *c = w->h->c;
    uint64_t deadline = timeout_ms == UINT32_MAX ? UINT64_MAX : rm_now_ms() + timeout_ms;
    rf_bytes_free(&w->current);
    for (;;) {
        rm_lock(&c->lock);
        rm_event e;
        if (rm_evq_pop(w->q, &e)) {
            rm_unlock(&c->lock);
            ev->kind = e.kind == AG_EV_CHANGE ? RF_WATCH_CHANGE : RF_WATCH_LOST;
            ev->index = e.index;
            ev->seq = e.seq;
            ev->time_ns = e.time_ns;
            ev->status = e.status;
            w->current = e.snap;
            ev->snapshot = w->current.data;
            ev->snapshot_len = w->current.len;
            return RF_OK;
        }
        rf_status st = RF_OK;
        if (c->dead) st = rm_alive(c);
        else if (w->stopped || w->q->ended || w->q->lost >= w->n)
            st = rfi_fail(RF_E_NO_MORE_ITEMS, RF_NO_OFFSET, 0, w->stopped ? "the watch was stopped"
                          : w->q->ended ? "the agent ended the watch" : "every watched key was lost");
        else {
            uint64_t now = rm_now_ms();
            if (now >= deadline) st = rfi_fail(RF_E_TIMEOUT, RF_NO_OFFSET, 0, "no change within %u ms", timeout_ms);
            else {
                uint64_t slice = deadline - now < 50 ? deadline - now : 50;
                st = rm_pump(c, (uint32_t)slice);
                if (st == RF_E_TIMEOUT) st = RF_OK;   /* nothing in this slice: look again */
            }
        }
        rm_unlock(&c->lock);
        if (st) return st;
    }
}

void rm_watch_stop(rf_watch *base)
{
    rm_watch *w = (rm_watch *)base;
#if defined(__GNUC__) || defined(__clang__)
    __atomic_store_n(&w->stopped, 1, __ATOMIC_RELEASE);
#else
    w->stopped = 1;
#endif
}

void rm_watch_close(rf_watch *base)
{
    rm_watch *w = (rm_watch *)base;
    rf_remote *c = w->h->c;
    rm_lock(&c->lock);
    if (!c->dead) {
        rf_error saved = *rf_last_error();
        rm_begin(c);
        rm_put32(c, w->agent_id);
        const uint8_t *p;
        size_t n;
        rm_call_buf(c, AG_OP_UNWATCH, &p, &n);   /* its ENDED event, later, finds no queue and is dropped */
        if (saved.code) rfi_fail(saved.code, saved.offset, saved.native, "%s", saved.message);
        else rf_clear_error();
    }
    rm_evq_remove(c, w->q);
    unpin(w);
    rm_unlock(&c->lock);
    rf_bytes_free(&w->current);
    free(w->entries);
    free(w);
}
