/*
 * rm_conn.c — one connection to regfast-agent: frames (agent.h), the
 * timeouts, the rule that a cut frame kills the connection, the handshake,
 * request/reply calls, and the event queues watches read.
 *
 * Frames are read with no buffering of our own: a header (16 bytes), then
 * the payload straight into where it belongs (a small reply into c->rep, a
 * batch's columns and arena into the caller's arrays: rm_batch.c), then —
 * from protocol 3 (AG_V_TRAILER) — the payload's CRC-32, checked against
 * the CRC of the bytes as they were received (c->rx_crc runs across the
 * pieces, even across calls when a batch reply is parked). Requests carry
 * the same trailer. This is the framing of src/regfast/agent.py, byte for
 * byte: HELLO and its reply unframed, every frame after them framed.
 *
 * Every wait has the call's deadline (now + timeout). A timeout before the
 * first byte of a reply is RF_E_TIMEOUT and the connection stays: the reply,
 * when it comes, has an id nobody waits for and is read and dropped. A
 * timeout or end of stream after a frame started — a request partly written
 * or a reply partly read — cannot be recovered (the next bytes would be
 * taken for the rest of the frame), so it kills the connection: the
 * transport is closed (the agent sees end-of-file and never applies the
 * request it did not get whole) and every later call fails at once with
 * RF_E_CONNECTION_CUT and the reason. So does a frame whose CRC does not
 * match or that does not parse. The agent gone at a frame boundary is
 * RF_E_CONNECTION (nothing was cut, but nothing more will come).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote/rm_internal.h"

#ifndef _WIN32
#include <time.h>
#endif

uint64_t rm_now_ms(void)
{
#ifdef _WIN32
    return GetTickCount64();
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
#endif
}

/* ------------------------------------------------------------------------ */
/* Per-thread scratch                                                        */
/* ------------------------------------------------------------------------ */

typedef struct tls_bufs { void *p[RM_TLS_COUNT]; size_t cap[RM_TLS_COUNT]; } tls_bufs;

#ifdef _WIN32
static DWORD tls_index = FLS_OUT_OF_INDEXES;
static INIT_ONCE tls_once = INIT_ONCE_STATIC_INIT;
static void WINAPI tls_free(void *v)
{
    tls_bufs *b = v;
    if (!b) return;
    for (int i = 0; i < RM_TLS_COUNT; i++) free(b->p[i]);
    free(b);
}
static BOOL CALLBACK tls_init(PINIT_ONCE o, PVOID a, PVOID *c)
{
    (void)o; (void)a; (void)c;
    tls_index = FlsAlloc(tls_free);
    return TRUE;
}
static tls_bufs *tls_get(void)
{
    InitOnceExecuteOnce(&tls_once, tls_init, NULL, NULL);
    if (tls_index == FLS_OUT_OF_INDEXES) return NULL;
    tls_bufs *b = FlsGetValue(tls_index);
    if (!b && (b = calloc(1, sizeof *b)) != NULL) FlsSetValue(tls_index, b);
    return b;
}
#else
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_ok;
static void tls_free(void *v)
{
    tls_bufs *b = v;
    for (int i = 0; i < RM_TLS_COUNT; i++) free(b->p[i]);
    free(b);
}
static void tls_init(void) { tls_ok = pthread_key_create(&tls_key, tls_free) == 0; }
static tls_bufs *tls_get(void)
{
    pthread_once(&tls_once, tls_init);
    if (!tls_ok) return NULL;
    tls_bufs *b = pthread_getspecific(tls_key);
    if (!b && (b = calloc(1, sizeof *b)) != NULL) pthread_setspecific(tls_key, b);
    return b;
}
#endif

void *rm_tls(int which, size_t need)
{
    tls_bufs *b = tls_get();
    if (!b) {
        rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no per-thread buffer");
        return NULL;
    }
    if (need < 64) need = 64;
    if (b->cap[which] < need) {
        size_t cap = b->cap[which] ? b->cap[which] : 256;
        while (cap < need) cap *= 2;
        void *p = realloc(b->p[which], cap);
        if (!p) {
            rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a %zu-byte buffer", cap);
            return NULL;
        }
        b->p[which] = p;
        b->cap[which] = cap;
    }
    return b->p[which];
}

/* ------------------------------------------------------------------------ */
/* Readers of replies held in memory                                         */
/* ------------------------------------------------------------------------ */

uint32_t rm_rd32(rm_rd *r)
{
    if (r->bad || r->n - r->pos < 4) { r->bad = 1; return 0; }
    uint32_t v = rf_le32(r->p + r->pos);
    r->pos += 4;
    return v;
}

uint64_t rm_rd64(rm_rd *r)
{
    if (r->bad || r->n - r->pos < 8) { r->bad = 1; return 0; }
    uint64_t v = rf_le64(r->p + r->pos);
    r->pos += 8;
    return v;
}

const uint8_t *rm_rdn(rm_rd *r, size_t n)
{
    if (r->bad || r->n - r->pos < n) { r->bad = 1; return NULL; }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}

const uint16_t *rm_rd16s(rm_rd *r, size_t *nchars)
{
    uint32_t nb = rm_rd32(r);
    *nchars = 0;
    if (nb & 1) { r->bad = 1; return NULL; }
    const uint8_t *p = rm_rdn(r, nb);
    if (!p) return NULL;
    *nchars = nb / 2;
    /* UTF-16 data inside a reply may be unaligned: copy when it is */
    if (((uintptr_t)p & 1) == 0) return (const uint16_t *)p;
    uint16_t *a = rm_tls(RM_TLS_AUX, nb + 2);
    if (!a) { r->bad = 1; return NULL; }
    memcpy(a, p, nb);
    return a;
}

/* ------------------------------------------------------------------------ */
/* Life and death                                                            */
/* ------------------------------------------------------------------------ */

static void close_transport(rf_remote *c)
{
    if (c->t_open) {
        c->t_open = 0;
        if (c->t.close) c->t.close(c->t.ctx);
    }
}

rf_status rm_alive(rf_remote *c)
{
    if (c->dead)
        return rfi_fail(c->dead, RF_NO_OFFSET, 0, "the connection to regfast-agent is dead: %s", c->why);
    return RF_OK;
}

/* The first death wins: its status and reason stay for every later call. */
static rf_status die(rf_remote *c, rf_status st, const char *fmt, va_list ap)
{
    if (!c->dead) {
        vsnprintf(c->why, sizeof c->why, fmt, ap);
        c->dead = st;
        close_transport(c);
        for (rm_evq *q = c->evqs; q; q = q->next) q->ended = 1;
        c->park.active = 0;
        c->rx_open = 0;
    }
    return rm_alive(c);
}

rf_status rm_kill(rf_remote *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rf_status st = die(c, RF_E_CONNECTION, fmt, ap);
    va_end(ap);
    return st;
}

rf_status rm_cut(rf_remote *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rf_status st = die(c, RF_E_CONNECTION_CUT, fmt, ap);
    va_end(ap);
    return st;
}

void rf_remote_kill(rf_remote *c, const char *why)
{
    if (!c) return;
    rm_lock(&c->lock);
    rm_kill(c, "%s", why ? why : "killed by the caller");
    rm_unlock(&c->lock);
    rf_clear_error();
}

void rm_conn_ref(rf_remote *c)
{
    rm_lock(&c->lock);
    c->refs++;
    rm_unlock(&c->lock);
}

void rm_conn_unref(rf_remote *c)
{
    rm_lock(&c->lock);
    int last = --c->refs == 0;
    rm_unlock(&c->lock);
    if (!last) return;
    close_transport(c);
    while (c->evqs) rm_evq_remove(c, c->evqs);
    free(c->park.req);
    free(c->park.cols);
    free(c->park.names);
    free(c->req);
    free(c->rep);
    rm_mutex_free(&c->lock);
    free(c);
}

void rf_remote_release(rf_remote *c)
{
    if (c) rm_conn_unref(c);
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */
/* ------------------------------------------------------------------------ */

static int req_room(rf_remote *c, size_t more)
{
    if (c->req_oom) return 0;
    if (c->req && c->req_len <= c->req_cap && c->req_cap - c->req_len >= more) return 1;
    size_t cap = c->req_cap ? c->req_cap : 4096;
    while (cap < c->req_len || cap - c->req_len < more) {
        if (cap > ((size_t)1 << 40)) { c->req_oom = 1; return 0; }
        cap *= 2;
    }
    uint8_t *p = realloc(c->req, cap);
    if (!p) { c->req_oom = 1; return 0; }
    c->req = p;
    c->req_cap = cap;
    return 1;
}

void rm_begin(rf_remote *c)
{
    c->req_len = AG_HEADER;   /* room for the frame header: one write per frame */
    c->req_oom = 0;
    req_room(c, 0);
}

void rm_put(rf_remote *c, const void *p, size_t n)
{
    if (n && req_room(c, n)) {
        memcpy(c->req + c->req_len, p, n);
        c->req_len += n;
    }
}

void rm_put32(rf_remote *c, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    rm_put(c, b, 4);
}

void rm_put16s(rf_remote *c, const uint16_t *s, size_t nchars)
{
    rm_put32(c, (uint32_t)(nchars * 2));
    rm_put(c, s, nchars * 2);
}

void rm_put_name(rf_remote *c, const rf_name *n)
{
    if (n->utf16) {
        rm_put32(c, n->nbytes & ~1u);
        rm_put(c, n->ptr, n->nbytes & ~1u);
        return;
    }
    rm_put32(c, n->nbytes * 2u);   /* Latin-1, widened */
    if (!req_room(c, (size_t)n->nbytes * 2)) return;
    const uint8_t *p = n->ptr;
    for (uint32_t i = 0; i < n->nbytes; i++) {
        c->req[c->req_len++] = p[i];
        c->req[c->req_len++] = 0;
    }
}

/* ------------------------------------------------------------------------ */
/* Bytes in and out                                                          */
/* ------------------------------------------------------------------------ */

static uint32_t left_ms(uint64_t deadline)
{
    uint64_t now = rm_now_ms();
    return now >= deadline ? 0 : (uint32_t)(deadline - now > 0x7FFFFFFFu ? 0x7FFFFFFFu : deadline - now);
}

/* Writes a whole frame. Nothing written when the time runs out: RF_E_TIMEOUT,
 * the connection stays; nothing written because the agent is gone:
 * RF_E_CONNECTION; part of it written: the frame is cut, it dies. */
static rf_status send_all(rf_remote *c, const uint8_t *p, size_t n, uint64_t deadline)
{
    size_t sent = 0;
    while (sent < n) {
        size_t done = 0;
        rf_status st = c->t.send(c->t.ctx, p + sent, n - sent, &done, left_ms(deadline));
        if (st == RF_E_TIMEOUT || (st == RF_OK && done == 0 && left_ms(deadline) == 0)) {
            if (sent == 0) return rfi_fail(RF_E_TIMEOUT, RF_NO_OFFSET, 0, "regfast-agent is not reading its input");
            return rm_cut(c, "a request frame was cut after %zu of %zu bytes by the timeout", sent, n);
        }
        if (st) {
            if (sent == 0) return rm_kill(c, "writing to regfast-agent failed: %s", rf_last_error()->message);
            return rm_cut(c, "a request frame was cut after %zu of %zu bytes: %s", sent, n,
                          rf_last_error()->message);
        }
        sent += done;
        c->bytes_out += done;
    }
    return RF_OK;
}

/* Reads exactly n bytes. `fresh`: nothing of this frame read yet, so a
 * timeout before the first byte is RF_E_TIMEOUT, not a cut, and the end of
 * the stream there is the agent gone, not a cut frame. */
static rf_status recv_exact(rf_remote *c, uint8_t *p, size_t n, uint64_t deadline, int fresh)
{
    size_t got = 0;
    while (got < n) {
        size_t k = 0;
        rf_status st = c->t.recv(c->t.ctx, p + got, n - got, &k, left_ms(deadline));
        if (st == RF_E_TIMEOUT || (st == RF_OK && k == 0 && left_ms(deadline) == 0)) {
            if (fresh && got == 0) return rfi_fail(RF_E_TIMEOUT, RF_NO_OFFSET, 0, "no answer from regfast-agent in time");
            return rm_cut(c, "a reply frame was cut by the timeout (%zu of %zu bytes read)", got, n);
        }
        if (st) {
            if (fresh && got == 0) return rm_kill(c, "%s", rf_last_error()->message);
            return rm_cut(c, "a reply frame was cut (%zu of %zu bytes read): %s", got, n, rf_last_error()->message);
        }
        got += k;
        c->bytes_in += k;
    }
    return RF_OK;
}

/* ---- payloads: the running CRC and the trailer (protocol >= 3) ---- */

static int framed(const rf_remote *c) { return c->version >= AG_V_TRAILER; }

/* A frame's header is in: its payload starts. */
static void payload_begin(rf_remote *c)
{
    c->rx_crc = 0;
    c->rx_open = 1;
}

/* n bytes of the payload into p, counted into its CRC. */
static rf_status payload_recv(rf_remote *c, uint8_t *p, size_t n, uint64_t deadline)
{
    rf_status st = recv_exact(c, p, n, deadline, 0);
    if (!st && framed(c)) c->rx_crc = rf_crc32(c->rx_crc, p, n);
    return st;
}

/* n bytes of the payload read and dropped (still counted into its CRC). */
static rf_status payload_discard(rf_remote *c, size_t n, uint64_t deadline)
{
    uint8_t buf[4096];
    while (n) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        rf_status st = payload_recv(c, buf, k, deadline);
        if (st) return st;
        n -= k;
    }
    return RF_OK;
}

/* The payload is all in: its trailer, checked. A mismatch means the bytes
 * are not the agent's frame (a spliced or corrupted stream): nothing after
 * them can be trusted to be aligned, so the connection dies. */
static rf_status payload_end(rf_remote *c, uint64_t deadline)
{
    if (!c->rx_open) return RF_OK;
    c->rx_open = 0;
    if (!framed(c)) return RF_OK;
    uint8_t t[AG_TRAILER];
    rf_status st = recv_exact(c, t, sizeof t, deadline, 0);
    if (st) return st;
    if (rf_le32(t) != c->rx_crc)
        return rm_cut(c, "regfast-agent sent a frame whose payload check does not match (crc %08x, "
                      "payload's %08x)", rf_le32(t), c->rx_crc);
    return RF_OK;
}

typedef struct hdr { uint16_t op; uint32_t len, id; } hdr;

static rf_status read_header(rf_remote *c, hdr *h, uint64_t deadline)
{
    uint8_t b[AG_HEADER];
    rf_status st = recv_exact(c, b, AG_HEADER, deadline, 1);
    if (st) return st;
    if (rf_le16(b) != AG_MAGIC || rf_le32(b + 12) != ag_fnv1a32(b, 12))
        return rm_cut(c, "regfast-agent sent a malformed frame header (magic %04x)", rf_le16(b));
    h->op = rf_le16(b + 2);
    h->len = rf_le32(b + 4);
    h->id = rf_le32(b + 8);
    if (h->len > AG_MAX_RESPONSE + 4096u)
        return rm_cut(c, "regfast-agent sent a %u-byte frame, over the %u-byte limit", h->len, AG_MAX_RESPONSE);
    return RF_OK;
}

/* ------------------------------------------------------------------------ */
/* Event queues                                                              */
/* ------------------------------------------------------------------------ */

rm_evq *rm_evq_add(rf_remote *c, uint32_t agent_id, uint32_t n)
{
    rm_evq *q = calloc(1, sizeof *q);
    if (q) {
        q->cap = 2 * n + 1;
        q->q = calloc(q->cap, sizeof *q->q);
        q->queued = malloc(n * sizeof *q->queued);
    }
    if (!q || !q->q || !q->queued) {
        if (q) { free(q->q); free(q->queued); free(q); }
        rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a watch of %u keys", n);
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) q->queued[i] = -1;
    q->agent_id = agent_id;
    q->n = n;
    q->next = c->evqs;
    c->evqs = q;
    return q;
}

void rm_evq_remove(rf_remote *c, rm_evq *q)
{
    for (rm_evq **pp = &c->evqs; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    for (uint32_t i = 0; i < q->cap; i++) rf_bytes_free(&q->q[i].snap);
    free(q->q);
    free(q->queued);
    free(q);
}

int rm_evq_pop(rm_evq *q, rm_event *e)
{
    if (!q->len) return 0;
    rm_event *h = &q->q[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    if (h->kind == AG_EV_CHANGE) q->queued[h->index] = -1;
    *e = *h;
    memset(&h->snap, 0, sizeof h->snap);
    return 1;
}

/* An event frame's payload (checked), into its watch's queue. */
static rf_status route_event(rf_remote *c, uint32_t id, const uint8_t *p, size_t n)
{
    rm_evq *q = c->evqs;
    while (q && q->agent_id != id) q = q->next;
    if (n < AG_EVENT_HEADER) return rm_cut(c, "a %zu-byte watch event is too short", n);
    uint32_t kind = rf_le32(p), index = rf_le32(p + 4);
    uint64_t seq = rf_le64(p + 8), t = rf_le64(p + 16);
    const uint8_t *tail = p + AG_EVENT_HEADER;
    size_t tl = n - AG_EVENT_HEADER, sz;
    if (kind == AG_EV_CHANGE) {
        if (rf_snapshot_size(tail, tl, &sz) || sz != tl)
            return rm_cut(c, "a watch event carries a malformed snapshot");
    } else if ((kind != AG_EV_LOST && kind != AG_EV_ENDED) || tl != 4) {
        return rm_cut(c, "a watch event of kind %u and %zu bytes does not parse", kind, tl);
    }
    if (!q) return RF_OK;            /* a watch closed meanwhile: its last events */
    if (kind == AG_EV_ENDED) {
        q->ended = 1;
        return RF_OK;
    }
    if (index >= q->n) return rm_cut(c, "a watch event names key %u of %u", index, q->n);
    rm_event *e = NULL;
    if (kind == AG_EV_CHANGE && q->queued[index] >= 0) {
        e = &q->q[q->queued[index]];
        rf_bytes_free(&e->snap);     /* superseded: the latest state is what a diff needs */
    } else if (q->len < q->cap) {
        uint32_t at = (q->head + q->len++) % q->cap;
        e = &q->q[at];
        if (kind == AG_EV_CHANGE) q->queued[index] = (int)at;
    } else {
        return RF_OK;                /* more than one LOST for a key: nothing new to say */
    }
    e->kind = kind;
    e->index = index;
    e->seq = seq;
    e->time_ns = t;
    e->status = kind == AG_EV_LOST ? (rf_status)rf_le32(tail) : RF_OK;
    memset(&e->snap, 0, sizeof e->snap);
    if (kind == AG_EV_CHANGE && rfi_bytes_put(&e->snap, tail, tl)) {
        e->kind = AG_EV_LOST;   /* no memory for it: say the key is lost rather than drop a change */
        e->status = RF_E_NO_MEMORY;
        q->queued[index] = -1;
    }
    if (e->kind == AG_EV_LOST) q->lost++;
    return RF_OK;
}

/* Reads the rest of a frame whose header is `h`: an event is routed (once
 * its trailer checked), anything else (a late reply to a request that timed
 * out) dropped. */
static rf_status other_frame(rf_remote *c, const hdr *h, uint64_t deadline)
{
    payload_begin(c);
    if ((h->op & AG_EVENT) == AG_EVENT) {
        uint8_t *buf = malloc(h->len ? h->len : 1);
        if (!buf) return rm_kill(c, "no memory for a %u-byte event", h->len);
        rf_status st = payload_recv(c, buf, h->len, deadline);
        if (!st) st = payload_end(c, deadline);
        if (!st) st = route_event(c, h->id, buf, h->len);
        free(buf);
        return st;
    }
    if (!(h->op & AG_RESPONSE)) return rm_cut(c, "regfast-agent sent a request frame (op %u)", h->op);
    rf_status st = payload_discard(c, h->len, deadline);
    return st ? st : payload_end(c, deadline);
}

/* ------------------------------------------------------------------------ */
/* Calls                                                                     */
/* ------------------------------------------------------------------------ */

static rf_status park_drain(rf_remote *c, uint64_t deadline)
{
    rm_park *k = &c->park;
    if (!k->active) return RF_OK;
    k->active = 0;
    rf_status st = payload_discard(c, k->arena_left, deadline);
    return st ? st : payload_end(c, deadline);
}

rf_status rm_malformed(rf_remote *c, uint16_t op, const char *what)
{
    return rm_cut(c, "regfast-agent's reply to op %u does not parse: %s", op, what);
}

rf_status rm_call(rf_remote *c, uint16_t op, rm_reply *r)
{
    rf_status st = rm_alive(c);
    if (st) return st;
    uint64_t deadline = rm_now_ms() + c->timeout_ms;
    if ((st = park_drain(c, deadline))) return st;
    if (c->req_oom) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a request");
    size_t plen = c->req_len - AG_HEADER;
    if (c->max_request && plen > c->max_request)
        return rfi_fail(RF_E_LIMIT, RF_NO_OFFSET, 0, "a request of %zu bytes is over the agent's %u-byte limit",
                        plen, c->max_request);
    uint32_t id = ++c->next_id ? c->next_id : ++c->next_id;
    uint8_t *h = c->req;
    h[0] = (uint8_t)AG_MAGIC; h[1] = (uint8_t)(AG_MAGIC >> 8);
    h[2] = (uint8_t)op; h[3] = (uint8_t)(op >> 8);
    rfi_put32(h + 4, (uint32_t)plen);
    rfi_put32(h + 8, id);
    rfi_put32(h + 12, ag_fnv1a32(h, 12));
    size_t trailer = 0;
    if (framed(c)) {   /* the payload's CRC after it, sent with the frame (req_len stays the payload's end) */
        if (!req_room(c, AG_TRAILER)) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for a request");
        rfi_put32(c->req + c->req_len, rf_crc32(0, c->req + AG_HEADER, plen));
        trailer = AG_TRAILER;
    }
    c->seq++;
    c->requests++;
    if ((st = send_all(c, c->req, c->req_len + trailer, deadline))) return st;
    for (;;) {
        hdr fh;
        if ((st = read_header(c, &fh, deadline))) return st;
        if (fh.op != (uint16_t)(op | AG_RESPONSE) || fh.id != id) {
            if ((fh.op & AG_EVENT) != AG_EVENT && fh.id == id)
                return rm_malformed(c, op, "the reply carries another op");
            if ((st = other_frame(c, &fh, deadline))) return st;
            continue;
        }
        if (fh.len < 4) return rm_malformed(c, op, "no status");
        payload_begin(c);
        uint8_t s4[4];
        if ((st = payload_recv(c, s4, 4, deadline))) return st;
        rf_status status = (rf_status)rf_le32(s4);
        r->op = op;
        r->left = fh.len - 4;
        r->deadline = deadline;
        if (status == RF_OK) return r->left ? RF_OK : payload_end(c, deadline);
        /* an error: i64 native, str8 message */
        if (r->left < 12 || r->left > 4096) return rm_malformed(c, op, "an error reply of the wrong size");
        uint8_t eb[4096];   /* the agent's messages are at most 512 bytes */
        if ((st = payload_recv(c, eb, r->left, deadline)) || (st = payload_end(c, deadline))) return st;
        uint32_t mlen = rf_le32(eb + 8);
        if (mlen != r->left - 12) return rm_malformed(c, op, "an error message of the wrong length");
        r->left = 0;
        return rfi_fail(status, RF_NO_OFFSET, (int64_t)rf_le64(eb), "%.*s", (int)(mlen > 255 ? 255 : mlen),
                        (const char *)eb + 12);
    }
}

rf_status rm_recv(rf_remote *c, rm_reply *r, void *dst, size_t n)
{
    if (n > r->left) return rm_malformed(c, r->op, "shorter than its fields say");
    r->left -= (uint32_t)n;
    rf_status st = dst ? payload_recv(c, dst, n, r->deadline) : payload_discard(c, n, r->deadline);
    if (!st && r->left == 0) st = payload_end(c, r->deadline);
    return st;
}

rf_status rm_end(rf_remote *c, rm_reply *r)
{
    if (r->left) return rm_malformed(c, r->op, "longer than its fields say");
    return RF_OK;
}

rf_status rm_call_buf(rf_remote *c, uint16_t op, const uint8_t **p, size_t *n)
{
    rm_reply r;
    rf_status st = rm_call(c, op, &r);
    if (st) return st;
    if (c->rep_cap < (size_t)r.left + 8) {
        size_t cap = (size_t)r.left + 4096;
        uint8_t *q = realloc(c->rep, cap);
        if (!q) return rm_kill(c, "no memory for a %u-byte reply", r.left);
        c->rep = q;
        c->rep_cap = cap;
    }
    *n = r.left;
    if ((st = rm_recv(c, &r, c->rep, r.left))) return st;
    *p = c->rep;
    return RF_OK;
}

static rf_status pump_one(rf_remote *c, uint32_t ms)
{
    uint64_t deadline = rm_now_ms() + c->timeout_ms;
    rf_status st;
    /* the first byte of a frame within `ms`; the rest within the timeout */
    uint8_t b[AG_HEADER];
    if ((st = recv_exact(c, b, 1, rm_now_ms() + ms, 1))) return st;
    if ((st = recv_exact(c, b + 1, AG_HEADER - 1, deadline, 0))) return st;
    if (rf_le16(b) != AG_MAGIC || rf_le32(b + 12) != ag_fnv1a32(b, 12))
        return rm_cut(c, "regfast-agent sent a malformed frame header (magic %04x)", rf_le16(b));
    hdr h = { rf_le16(b + 2), rf_le32(b + 4), rf_le32(b + 8) };
    if (h.len > AG_MAX_RESPONSE + 4096u)
        return rm_cut(c, "regfast-agent sent a %u-byte frame, over the %u-byte limit", h.len, AG_MAX_RESPONSE);
    return other_frame(c, &h, deadline);
}

rf_status rm_pump(rf_remote *c, uint32_t ms)
{
    rf_status st = rm_alive(c);
    if (st) return st;
    if ((st = park_drain(c, rm_now_ms() + c->timeout_ms))) return st;
    if ((st = pump_one(c, ms))) return st;
    /* and every frame already there: back-to-back events of a key coalesce */
    while ((st = pump_one(c, 0)) == RF_OK) {}
    if (st == RF_E_TIMEOUT) {
        rf_clear_error();
        return RF_OK;
    }
    return st;
}

/* ------------------------------------------------------------------------ */
/* The handshake and the public connection calls                             */
/* ------------------------------------------------------------------------ */

rf_status rf_remote_connect(const rf_transport *t, uint32_t timeout_ms, rf_remote **out)
{
    if (!out) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "out is NULL");
    *out = NULL;
    if (!t || t->struct_size < sizeof *t || !t->send || !t->recv) {
        if (t && t->close) t->close(t->ctx);
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "the transport has no send/recv");
    }
    rf_remote *c = calloc(1, sizeof *c);
    if (!c) {
        if (t->close) t->close(t->ctx);
        return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
    }
    c->t = *t;
    c->t_open = 1;
    c->refs = 1;
    c->timeout_ms = timeout_ms ? timeout_ms : 30000;
    rm_mutex_init(&c->lock);
    rm_begin(c);
    rm_put(c, "RFAG", 4);
    /* RM_VERSION_MIN..RM_VERSION: the layouts this client parses. HELLO and
     * its reply are unframed (c->version is 0 until the reply is parsed),
     * every later frame carries the CRC trailer. */
    uint8_t v[4] = { (uint8_t)RM_VERSION_MIN, 0, (uint8_t)RM_VERSION, 0 };
    rm_put(c, v, 4);
    const uint8_t *p;
    size_t n;
    rf_status st = rm_call_buf(c, AG_OP_HELLO, &p, &n);
    if (st == RF_OK) {
        rm_rd r = { p, n, 0, 0 };
        const uint8_t *vb = rm_rdn(&r, 2);
        uint32_t version = vb ? rf_le16(vb) : 0;
        c->max_request = rm_rd32(&r);
        c->max_response = rm_rd32(&r);
        c->pid = rm_rd32(&r);
        rm_rd32(&r);
        uint32_t dl = rm_rd32(&r);
        const uint8_t *d = rm_rdn(&r, dl);
        if (r.bad || r.pos != r.n || version < RM_VERSION_MIN || version > RM_VERSION) {
            st = rm_kill(c, "the handshake answer does not parse (version %u)", version);
        } else {
            c->version = version;   /* frames from here on carry the trailer */
            size_t k = dl < sizeof c->description - 1 ? dl : sizeof c->description - 1;
            memcpy(c->description, d, k);
            c->description[k] = 0;
        }
    } else if (st == RF_E_TIMEOUT) {
        st = rm_kill(c, "no handshake answer within %u ms", c->timeout_ms);
    }
    if (st) {
        rf_error e = *rf_last_error();
        rm_kill(c, "the handshake failed: %s", e.message);
        rm_conn_unref(c);
        return rfi_fail(st == RF_E_NOT_SUPPORTED ? st : RF_E_CONNECTION, RF_NO_OFFSET, e.native,
                        "regfast-agent handshake failed: %s", e.message);
    }
    *out = c;
    return RF_OK;
}

rf_status rf_remote_get_info(rf_remote *c, rf_remote_info *out)
{
    if (!c || !out || out->struct_size < sizeof *out)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "NULL, or a bad struct_size");
    rm_lock(&c->lock);
    out->version = c->version;
    out->pid = c->pid;
    out->max_request = c->max_request;
    out->max_response = c->max_response;
    memcpy(out->description, c->description, sizeof out->description);
    out->dead = c->dead;
    out->requests = c->requests;
    out->bytes_in = c->bytes_in;
    out->bytes_out = c->bytes_out;
    rm_unlock(&c->lock);
    return RF_OK;
}

rf_status rf_remote_set_timeout(rf_remote *c, uint32_t timeout_ms)
{
    if (!c || !timeout_ms) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "NULL, or a 0 timeout");
    rm_lock(&c->lock);
    c->timeout_ms = timeout_ms;
    rm_unlock(&c->lock);
    return RF_OK;
}
