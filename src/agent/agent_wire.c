/*
 * agent_wire.c — what every op of regfast-agent shares: payload buffers
 * (obuf out, ibuf in), the per-thread error that becomes an error reply, and
 * the event sink watch threads hand their frames to. Calls nothing else of
 * the agent.
 */
#include "agent.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

uint64_t ag_frames, ag_bad_frames;

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

uint8_t *ob_room(obuf *b, size_t n)
{
    if (!ob_reserve(b, n))
        return NULL;
    return b->p + b->n;
}

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

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
rf_status ag_error_status(void) { return err_msg[0] ? err_status : 0; }

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

void ag_clear_error(void)
{
    err_msg[0] = 0;
    err_native = 0;
    err_status = 0;
}

void ag_error_payload(rf_status st, obuf *reply)
{
    reply->n = 0;
    reply->oom = 0;
    ob_u32(reply, (uint32_t)st);
    ob_u64(reply, (uint64_t)err_native);
    ob_str8(reply, err_msg, strlen(err_msg));
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
