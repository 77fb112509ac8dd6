/*
 * fuzz_remote.c — libFuzzer target for the remote backend's reply decoding
 * (src/remote): the fuzz input plays the agent.
 *
 * An in-memory rf_transport answers each request frame the client writes
 * with the next "chunk" of the input, framed as that request's reply:
 *
 *   chunk = u8 flags, u32 payload length (LE, capped by the input), payload
 *   flags: 1 wrong id, 2 bad header check, 4 an event frame (watch id 1)
 *          first, 8 cut the frame half-way (then end of stream),
 *          16 the op of another request, 32 a wrong CRC trailer
 *
 * Frames after HELLO carry protocol 3's CRC-32 trailer (src/agent/
 * ag_ops.def), as the agent writes them: the harness appends the right one
 * to every reply and event (flag 32 spoils it) and checks the one the
 * client writes after every request payload (a mismatch is a broken
 * promise: the real agent would refuse the frame and stop).
 *
 * The payload is the reply after the header (i32 status first), so the
 * fuzzer explores every op's decoder: KEY_INFO, SUBKEYS, GET_VALUE, the
 * READ_VALUES columns (straight into the caller's batch, and the parked
 * path), GET_SECURITY, SNAPSHOT, WATCH baselines and events, and the
 * writes' empty replies. HELLO is answered correctly unless the input's
 * first byte is odd. The harness then runs one fixed sequence of rf_* calls
 * and checks the API's promises: no crash or sanitizer report, statuses
 * from the documented set, and once RF_E_CONNECTION or RF_E_CONNECTION_CUT
 * is returned every later call returns that same status at once.
 * tests/python/test_fuzz_remote.py runs it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regfast/regfast.h"
#include "regfast/regfast_remote.h"
#include "agent/ag_proto.h"

typedef struct mem {
    const uint8_t *in;
    size_t n, pos;            /* the fuzz input: chunks */
    uint8_t *out;             /* frames queued for the client */
    size_t out_n, out_pos, out_cap;
    uint8_t req[64];          /* the request frame's header being written */
    size_t req_got, req_skip;
    uint32_t req_crc;         /* CRC of the request payload skipped so far */
    uint8_t req_trailer[4];
    size_t req_trailer_left;  /* trailer bytes still to come */
    int framed;               /* a HELLO reply agreed on version >= 3 */
    int eof;
} mem;

static void put(mem *m, const void *p, size_t n)
{
    if (m->out_n + n > m->out_cap) {
        size_t cap = (m->out_n + n) * 2 + 256;
        uint8_t *q = realloc(m->out, cap);
        if (!q) abort();
        m->out = q;
        m->out_cap = cap;
    }
    memcpy(m->out + m->out_n, p, n);
    m->out_n += n;
}

static void header(uint8_t *h, uint16_t op, uint32_t len, uint32_t id, int bad)
{
    h[0] = (uint8_t)AG_MAGIC; h[1] = (uint8_t)(AG_MAGIC >> 8);
    h[2] = (uint8_t)op; h[3] = (uint8_t)(op >> 8);
    memcpy(h + 4, &len, 4);
    memcpy(h + 8, &id, 4);
    uint32_t c = ag_fnv1a32(h, 12) ^ (bad ? 1u : 0u);
    memcpy(h + 12, &c, 4);
}

/* A frame's payload and, when framed, its trailer (`spoil`: one bit off). */
static void put_payload(mem *m, const uint8_t *p, size_t n, int spoil)
{
    put(m, p, n);
    if (m->framed) {
        uint32_t c = rf_crc32(0, p, n) ^ (spoil ? 0x10u : 0u);
        put(m, &c, 4);
    }
}

static void hello(mem *m, uint32_t id)
{
    uint8_t p[64], h[16];
    const char *d = "fuzz";
    memset(p, 0, sizeof p);
    p[4] = AG_VERSION;                       /* status 0, then u16 version */
    uint32_t v = AG_MAX_REQUEST;
    memcpy(p + 6, &v, 4);
    v = AG_MAX_RESPONSE;
    memcpy(p + 10, &v, 4);
    v = 4;
    memcpy(p + 22, &v, 4);
    memcpy(p + 26, d, 4);
    header(h, AG_OP_HELLO | AG_RESPONSE, 30, id, 0);
    put(m, h, 16);
    put(m, p, 30);
}

/* The reply to one request, from the next chunk of input. */
static void answer(mem *m, uint16_t op, uint32_t id)
{
    if (op == AG_OP_HELLO && id == 1 && !(m->n && (m->in[0] & 1))) {
        hello(m, id);
        m->framed = 1;             /* every frame after this reply */
        return;
    }
    if (m->pos >= m->n) {
        m->eof = 1;
        return;
    }
    uint8_t flags = m->in[m->pos++];
    uint32_t len = 0;
    if (m->n - m->pos >= 4) {
        memcpy(&len, m->in + m->pos, 4);
        m->pos += 4;
    }
    len %= 1u << 20;
    if (len > m->n - m->pos) len = (uint32_t)(m->n - m->pos);
    const uint8_t *p = m->in + m->pos;
    m->pos += len;
    uint8_t h[16];
    if (flags & 4) {
        header(h, AG_OP_WATCH | AG_EVENT, len, 1, 0);
        put(m, h, 16);
        put_payload(m, p, len, 0);
    }
    uint16_t rop = (uint16_t)(((flags & 16) ? AG_OP_PING : op) | AG_RESPONSE);
    header(h, rop, len, (flags & 1) ? id + 1 : id, flags & 2);
    put(m, h, 16);
    if (flags & 8) {
        put(m, p, len / 2);
        m->eof = 1;
    } else {
        put_payload(m, p, len, flags & 32);
    }
    /* a HELLO answered from the input (options byte odd): framed from here
     * on when it agreed on version 3 or later, as a client reads it */
    if (op == AG_OP_HELLO && len >= 6 && !(flags & 8) && !p[0] && !p[1] && !p[2] && !p[3] &&
        (p[4] | p[5] << 8) >= AG_V_TRAILER)
        m->framed = 1;
}

static rf_status mem_send(void *ctx, const uint8_t *p, size_t n, size_t *done, uint32_t timeout_ms)
{
    mem *m = ctx;
    (void)timeout_ms;
    *done = n;
    while (n) {
        if (m->req_skip) {           /* the payload of a request: only its CRC is needed */
            size_t k = n < m->req_skip ? n : m->req_skip;
            m->req_crc = rf_crc32(m->req_crc, p, k);
            m->req_skip -= k;
            p += k;
            n -= k;
            continue;
        }
        if (m->req_trailer_left) {   /* the client's trailer: must be the payload's CRC */
            m->req_trailer[4 - m->req_trailer_left] = *p++;
            n--;
            if (--m->req_trailer_left == 0) {
                uint32_t t;
                memcpy(&t, m->req_trailer, 4);
                if (t != m->req_crc) __builtin_trap();
            }
            continue;
        }
        size_t k = 16 - m->req_got < n ? 16 - m->req_got : n;
        memcpy(m->req + m->req_got, p, k);
        m->req_got += k;
        p += k;
        n -= k;
        if (m->req_got == 16) {
            uint16_t op;
            uint32_t len, id;
            memcpy(&op, m->req + 2, 2);
            memcpy(&len, m->req + 4, 4);
            memcpy(&id, m->req + 8, 4);
            m->req_got = 0;
            m->req_skip = len;
            m->req_crc = 0;
            m->req_trailer_left = m->framed ? 4 : 0;   /* HELLO's request is unframed */
            answer(m, op, id);
        }
    }
    return RF_OK;
}

static rf_status mem_recv(void *ctx, uint8_t *p, size_t n, size_t *got, uint32_t timeout_ms)
{
    mem *m = ctx;
    *got = 0;
    if (m->out_pos == m->out_n) {
        if (m->eof) return RF_E_CONNECTION;
        return timeout_ms == 0 ? RF_E_TIMEOUT : RF_E_CONNECTION;   /* nothing more will come */
    }
    size_t k = m->out_n - m->out_pos < n ? m->out_n - m->out_pos : n;
    memcpy(p, m->out + m->out_pos, k);
    m->out_pos += k;
    *got = k;
    return RF_OK;
}

static void mem_close(void *ctx) { (void)ctx; }

/* Statuses are the agent's to choose (carried through: a fuzzed agent may
 * even answer RF_E_CONNECTION or 1236 as an error status); what the client
 * promises is checked at the end, from the connection's own state: once
 * dead, every call fails at once with the status of the death. */
static void check(rf_status st)
{
    (void)st;
}

static const uint16_t NAME_V[] = { 'v' }, PATH_A[] = { 'a', '\\', 'b' };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mem m;
    memset(&m, 0, sizeof m);
    m.in = data;
    m.n = size;
    m.pos = 1;   /* byte 0: options */
    rf_transport t = { sizeof t, &m, mem_send, mem_recv, mem_close };
    rf_remote *c = NULL;
    if (rf_remote_connect(&t, 1000, &c) != RF_OK) {
        free(m.out);
        return 0;
    }
    rf_hive *h = NULL;
    if (rf_remote_open(c, RF_HKEY_CURRENT_USER, 0, 0xF003Fu, &h) == RF_OK) {
        rf_key root, k = 0, kids[64];
        rf_hive_root(h, &root);
        size_t n;
        rf_key_info ki;
        rf_name nm;
        check(rf_key_open(h, root, "a\\b", 3, &k));
        if (!k) k = root;
        check(rf_key_get_info(h, k, &ki));
        check(rf_key_name(h, k, &nm));
        if (nm.ptr && nm.nbytes) { volatile uint8_t x = ((const uint8_t *)nm.ptr)[nm.nbytes - 1]; (void)x; }
        check(rf_key_class(h, k, &nm));
        check(rf_key_subkeys(h, k, kids, 64, &n));
        for (size_t i = 0; i < n && i < 64; i++) check(rf_key_name(h, kids[i], &nm));
        rf_value vals[32];
        check(rf_key_values(h, k, vals, 32, &n));
        rf_value v;
        if (rf_value_open(h, k, "v", 1, &v) == RF_OK) {
            rf_value_info vi;
            const uint8_t *d;
            size_t dl;
            check(rf_value_get_info(h, v, &vi));
            if (rf_value_read(h, v, NULL, 0, &d, &dl) == RF_OK && dl) { volatile uint8_t x = d[dl - 1]; (void)x; }
        }
        /* a batch with a small arena (parks), then a big one (resumes) */
        uint32_t type[8], len[8];
        int32_t status[8];
        uint64_t off[8];
        rf_name names[8];
        rf_value tok[8];
        uint8_t small[16];
        rf_name req[2] = { { NAME_V, 2, 1 }, { "w", 1, 0 } };
        rf_batch b = { sizeof b, 8, 0, type, status, off, len, names, small, sizeof small, 0, tok };
        rf_status st = rf_read_values(h, k, req, 2, NULL, 0, 0, &b);
        check(st);
        if (st == RF_E_MORE_DATA && b.arena_used < (1u << 22)) {
            uint8_t *big = malloc(b.arena_used + 1);
            b.arena = big;
            b.arena_cap = b.arena_used;
            st = rf_read_values(h, k, req, 2, NULL, 0, 0, &b);
            check(st);
            for (size_t i = 0; st == RF_OK && i < b.n; i++)
                if (status[i] == 0 && len[i]) {
                    volatile uint8_t x = big[(off[i] & ~RF_BATCH_IN_ARENA) + len[i] - 1];
                    (void)x;
                }
            free(big);
        }
        b.arena = small;
        b.arena_cap = sizeof small;
        check(rf_read_values(h, k, NULL, 0, NULL, 0, 0, &b));   /* every value: names too */
        {   /* every value straight into columns and an arena that fits, with
             * tokens: names (Latin-1 ones widened) are interned from there */
            static uint8_t roomy[1 << 16];
            b.arena = roomy;
            b.arena_cap = sizeof roomy;
            st = rf_read_values(h, k, NULL, 0, NULL, 0, 0, &b);
            check(st);
            for (size_t i = 0; st == RF_OK && i < b.n; i++) {
                if (names[i].nbytes) { volatile uint8_t x = ((const uint8_t *)names[i].ptr)[names[i].nbytes - 1]; (void)x; }
                if (status[i] == 0 && len[i]) { volatile uint8_t x = roomy[(off[i] & ~RF_BATCH_IN_ARENA) + len[i] - 1]; (void)x; }
            }
        }
        uint8_t sd[256];
        size_t sl;
        check(rf_key_get_security(h, k, 0, sd, sizeof sd, &sl, NULL));
        rf_bytes s = { NULL, 0, 0 };
        check(rf_key_snapshot(h, k, RF_SNAP_SUBTREE, 0, &s));
        rf_bytes_free(&s);
        rf_watch *w = NULL;
        rf_bytes base[1] = { { NULL, 0, 0 } };
        if (rf_watch_open(h, &k, 1, NULL, base, &w) == RF_OK) {
            rf_watch_event ev;
            for (int i = 0; i < 4; i++) {
                st = rf_watch_next(w, 0, &ev);
                check(st);
                if (st == RF_OK && ev.snapshot_len) { volatile uint8_t x = ev.snapshot[ev.snapshot_len - 1]; (void)x; }
                if (st != RF_OK && st != RF_E_TIMEOUT) break;
            }
            rf_watch_close(w);
        }
        rf_bytes_free(&base[0]);
        uint32_t disp;
        rf_key nk;
        check(rf_value_set(h, k, NAME_V, 1, 4, "\1\0\0\0", 4));
        check(rf_key_create(h, k, PATH_A, 3, 0, &nk, &disp));
        check(rf_key_rename(h, k, NAME_V, 1));
        check(rf_key_delete(h, root, PATH_A, 3, RF_DELETE_TREE));
        rf_remote_info info;
        info.struct_size = sizeof info;
        rf_remote_get_info(c, &info);
        if (info.dead) {
            /* once dead, a call that needs the agent fails at once, with the death's status */
            if (info.dead != RF_E_CONNECTION && info.dead != RF_E_CONNECTION_CUT) __builtin_trap();
            if (rf_key_get_info(h, root, &ki) != info.dead) __builtin_trap();
        }
        rf_hive_close(h);
    }
    rf_remote_release(c);
    free(m.out);
    return 0;
}
