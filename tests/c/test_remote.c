/*
 * test_remote.c — the remote backend (src/remote) from a native program.
 *
 * Part 1, always: a fake agent (a thread on a pair of pipes, scripted per
 * test) checks what the real one never does on purpose: malformed replies
 * of every kind give clean errors and kill the connection (every later call
 * fails at once with RF_E_CONNECTION_CUT), a timeout before a reply keeps
 * the connection and drops the late reply, a reply cut by the timeout kills
 * it, a request cut by the timeout kills it and the agent sees end-of-file
 * in the middle of the frame (so never applies it), error replies carry the
 * agent's status, native code and message, events interleaved with replies
 * reach their watch. The fake frames as the real agent does from protocol 3
 * on: after HELLO, every frame both ways carries the CRC-32 of its payload;
 * it checks the client's on every request, and a reply, event or parked
 * batch reply whose CRC is wrong kills the connection.
 *
 * Part 2, with `test_remote WINE AGENT.exe` (tests/python/test_remote_c.py
 * passes them, with a private WINEPREFIX): the real agent under Wine, the
 * key API end to end — open, info, subkeys, values, batches (and the parked
 * reply of a batch whose arena was too small: no second request), writes,
 * delete, rename, security, snapshots, a watch event, a cut request that the
 * agent must not apply.
 *
 * Runs under ASan (tests/python/test_c_suites.py, test_remote_c.py).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "regfast/regfast.h"
#include "regfast/regfast_remote.h"
#include "agent/ag_proto.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void u16le(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void u32le(uint8_t *p, uint32_t v) { u16le(p, (uint16_t)v); u16le(p + 2, (uint16_t)(v >> 16)); }
static uint32_t rd32(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* UTF-16 of an ASCII string, in a static ring of buffers. (Pass the length
 * as sizeof("...") - 1: arguments are evaluated in no set order.) */
static const uint16_t *W(const char *s, size_t *n)
{
    static uint16_t ring[8][512];
    static int at;
    uint16_t *w = ring[at++ & 7];
    size_t i = 0;
    for (; s[i] && i < 511; i++) w[i] = (uint8_t)s[i];
    w[i] = 0;
    if (n) *n = i;
    return w;
}

/* ======================================================================== */
/* A fake agent                                                              */
/* ======================================================================== */

typedef struct fake fake;
typedef void (*fake_fn)(fake *f, uint16_t op, uint32_t id, const uint8_t *p, size_t n);

struct fake {
    int in, out;             /* the agent's ends: reads requests, writes replies */
    int cin, cout;           /* the client's ends */
    fake_fn on;              /* the script (after HELLO) */
    pthread_t th;
    int requests;            /* requests seen whole (HELLO included) */
    int eof_mid_frame;       /* end-of-file came inside a frame */
    int stop_reading;        /* the script stops reading its input */
    uint32_t arg;
    uint32_t last_id;
    int framed;              /* HELLO agreed on >= 3: trailers both ways */
    int bad_crc;             /* requests whose trailer did not match */
    uint16_t hello_min, hello_max;   /* what the client's HELLO asked */
    uint16_t hello_version;  /* what the fake answers (0: AG_VERSION) */
};

static int read_all(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return (int)got;
        got += (size_t)r;
    }
    return (int)got;
}

static void write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        b += w;
        n -= (size_t)w;
    }
}

/* A frame; `crc_xor` != 0 spoils its trailer (framed sessions). */
static void frame_crc(fake *f, uint16_t op, uint32_t id, const void *payload, size_t n, uint32_t crc_xor)
{
    uint8_t h[16];
    u16le(h, AG_MAGIC);
    u16le(h + 2, op);
    u32le(h + 4, (uint32_t)n);
    u32le(h + 8, id);
    u32le(h + 12, ag_fnv1a32(h, 12));
    write_all(f->out, h, 16);
    write_all(f->out, payload, n);
    if (f->framed) {
        uint8_t t[4];
        u32le(t, rf_crc32(0, payload, n) ^ crc_xor);
        write_all(f->out, t, 4);
    }
}

static void frame(fake *f, uint16_t op, uint32_t id, const void *payload, size_t n)
{
    frame_crc(f, op, id, payload, n, 0);
}

/* A reply: status 0 + payload. */
static void reply(fake *f, uint16_t op, uint32_t id, const void *payload, size_t n)
{
    uint8_t *b = malloc(n + 4);
    u32le(b, 0);
    if (n) memcpy(b + 4, payload, n);
    frame(f, (uint16_t)(op | AG_RESPONSE), id, b, n + 4);
    free(b);
}

static void error_reply(fake *f, uint16_t op, uint32_t id, uint32_t status, uint64_t native, const char *msg)
{
    uint8_t b[256];
    size_t m = strlen(msg);
    u32le(b, status);
    u32le(b + 4, (uint32_t)native);
    u32le(b + 8, (uint32_t)(native >> 32));
    u32le(b + 12, (uint32_t)m);
    memcpy(b + 16, msg, m);
    frame(f, (uint16_t)(op | AG_RESPONSE), id, b, 16 + m);
}

static void hello_reply(fake *f, uint32_t id, uint16_t version)
{
    uint8_t b[64];
    const char *d = "fake agent";
    u16le(b, version);
    u32le(b + 2, AG_MAX_REQUEST);
    u32le(b + 6, AG_MAX_RESPONSE);
    u32le(b + 10, 4242);
    u32le(b + 14, 0);
    u32le(b + 18, (uint32_t)strlen(d));
    memcpy(b + 22, d, strlen(d));
    reply(f, AG_OP_HELLO, id, b, 22 + strlen(d));
}

static void *fake_main(void *arg)
{
    fake *f = arg;
    for (;;) {
        if (f->stop_reading) {
            /* the test holds the input unread, then checks what was left */
            while (f->stop_reading == 1) usleep(1000);
        }
        uint8_t h[16];
        int got = read_all(f->in, h, 16);
        if (got == 0) return NULL;
        if (got < 16) { f->eof_mid_frame = 1; return NULL; }
        uint32_t n = rd32(h + 4), id = rd32(h + 8);
        uint16_t op = (uint16_t)(h[2] | h[3] << 8);
        uint8_t *p = malloc(n ? n : 1);
        if (read_all(f->in, p, n) < (int)n) { f->eof_mid_frame = 1; free(p); return NULL; }
        if (f->framed) {   /* the whole frame is in only with its trailer */
            uint8_t t[4];
            if (read_all(f->in, t, 4) < 4) { f->eof_mid_frame = 1; free(p); return NULL; }
            if (rd32(t) != rf_crc32(0, p, n)) f->bad_crc++;
        }
        f->requests++;
        f->last_id = id;
        if (op == AG_OP_HELLO && f->requests == 1) {
            if (n >= 8) {
                f->hello_min = (uint16_t)(p[4] | p[5] << 8);
                f->hello_max = (uint16_t)(p[6] | p[7] << 8);
            }
            uint16_t v = f->hello_version ? f->hello_version : AG_VERSION;
            hello_reply(f, id, v);          /* unframed, as HELLO always is */
            f->framed = v >= AG_V_TRAILER;  /* every frame after it */
        } else {
            f->on(f, op, id, p, n);
        }
        free(p);
    }
}

static int fake_start(fake *f, fake_fn on)
{
    int a[2], b[2];
    memset(f, 0, sizeof *f);
    if (pipe(a) || pipe(b)) return -1;
    f->cout = a[1];   /* client writes requests */
    f->in = a[0];
    f->out = b[1];    /* agent writes replies */
    f->cin = b[0];
    f->on = on;
    return pthread_create(&f->th, NULL, fake_main, f);
}

static void fake_stop(fake *f)
{
    /* the client's transport owns cin/cout (closed with the connection) */
    close(f->out);
    pthread_join(f->th, NULL);
    close(f->in);
}

static rf_status fake_connect(fake *f, uint32_t timeout_ms, rf_remote **c)
{
    rf_transport t;
    CHECK_EQ_INT(rf_transport_fds(f->cin, f->cout, 1, &t), RF_OK);
    return rf_remote_connect(&t, timeout_ms, c);
}

/* --- scripts ------------------------------------------------------------ */

/* OPEN_KEY gives handle 7; everything else by f->arg */
enum { S_SHORT_INFO = 1, S_BAD_SUBKEYS, S_BAD_ROWS, S_ROW_OUTSIDE, S_BAD_SNAPSHOT, S_SLOW, S_CUT, S_ERROR,
       S_EVENTS, S_BAD_EVENT, S_WRONG_OP, S_GARBAGE, S_INFO_OK, S_STOP, S_BAD_CRC, S_BAD_CRC_EVENT,
       S_BATCH, S_BATCH_BAD_CRC, S_CRC_TRAILER_CUT, S_EMPTY, S_LATIN1_NAMES, S_HINTS };

/* A well-formed KEY_INFO reply payload (after the status): 3 subkeys, name "Root". */
static size_t info_ok(uint8_t *b)
{
    memset(b, 0, 52);
    u32le(b + 8, 3);
    u32le(b + 36, 0);
    u32le(b + 40, 8);
    memcpy(b + 44, "R\0o\0o\0t\0", 8);
    return 52;
}

/* A READ_VALUES column reply of one found REG_BINARY row with 4,000 bytes
 * of data (a caller's arena of less parks it): rows arena names_len, the
 * columns, the arena. */
#define BATCH_DATA 4000u
static size_t batch_reply(uint8_t *b)
{
    size_t at = 0;
    u32le(b + at, 1); u32le(b + at + 4, BATCH_DATA); u32le(b + at + 8, 0); at += 12;
    u32le(b + at, 3); at += 4;                   /* type REG_BINARY */
    u32le(b + at, 0); at += 4;                   /* status */
    u32le(b + at, BATCH_DATA); at += 4;          /* length */
    u32le(b + at, 0); u32le(b + at + 4, 0); at += 8;   /* offset 0 */
    u32le(b + at, 0); at += 4;                   /* name_off */
    u32le(b + at, 0); at += 4;                   /* name_len */
    for (uint32_t i = 0; i < BATCH_DATA; i++) b[at + i] = (uint8_t)(i * 13);
    return at + BATCH_DATA;
}

static void open_ok(fake *f, uint32_t id)
{
    uint8_t b[8];
    u32le(b, 7);
    u32le(b + 4, 2);
    reply(f, AG_OP_OPEN_KEY, id, b, 8);
}

static void script(fake *f, uint16_t op, uint32_t id, const uint8_t *p, size_t n)
{
    if (op == AG_OP_OPEN_KEY) { open_ok(f, id); return; }
    if (op == AG_OP_CLOSE_KEY || op == AG_OP_UNWATCH) { reply(f, op, id, NULL, 0); return; }
    uint8_t b[512];
    memset(b, 0, sizeof b);
    switch (f->arg) {
    case S_SHORT_INFO:          /* KEY_INFO with 10 bytes */
        reply(f, op, id, b, 10);
        break;
    case S_BAD_SUBKEYS:         /* claims 1000 names in 8 bytes */
        u32le(b, 1000);
        reply(f, op, id, b, 8);
        break;
    case S_BAD_ROWS:            /* READ_VALUES columns whose sizes do not add up */
        u32le(b, 1);
        u32le(b + 4, 8);
        reply(f, op, id, b, 20);
        break;
    case S_ROW_OUTSIDE: {       /* one row, found, offset past the 8-byte arena */
        u32le(b, 1); u32le(b + 4, 8); u32le(b + 8, 0);
        size_t at = 12;
        u32le(b + at, 1); at += 4;             /* type */
        u32le(b + at, 0); at += 4;             /* status */
        u32le(b + at, 4); at += 4;             /* length */
        u32le(b + at, 100); u32le(b + at + 4, 0); at += 8;   /* offset 100 */
        at += 8;                               /* name off/len */
        at += 8;                               /* arena */
        reply(f, op, id, b, at);
        break;
    }
    case S_BAD_SNAPSHOT:        /* "2 keys" and nothing else */
        u32le(b, 2);
        reply(f, op, id, b, 8);
        break;
    case S_SLOW:                /* the reply comes after 300 ms */
        usleep(300000);
        u32le(b, 1);
        reply(f, op, id, p, n);   /* PING-like: echoes */
        break;
    case S_CUT: {               /* a header announcing 100 bytes, then 10, then silence */
        uint8_t h[16];
        u16le(h, AG_MAGIC); u16le(h + 2, (uint16_t)(op | AG_RESPONSE)); u32le(h + 4, 100); u32le(h + 8, id);
        u32le(h + 12, ag_fnv1a32(h, 12));
        write_all(f->out, h, 16);
        write_all(f->out, b, 10);
        usleep(400000);
        break;
    }
    case S_ERROR:
        error_reply(f, op, id, 1018, 0xC000017Cu, "the key was deleted (fake)");
        break;
    case S_EVENTS: {            /* WATCH: reply with a baseline, then an event frame before the next reply */
        if (op == AG_OP_WATCH) {
            uint8_t s[16];
            u32le(s, 9); u32le(s + 4, 1);            /* watch 9, 1 thread */
            u32le(s + 8, 0); u32le(s + 12, 0);       /* an empty snapshot */
            reply(f, op, id, s, 16);
            uint8_t e[24 + 8];
            memset(e, 0, sizeof e);
            u32le(e, AG_EV_CHANGE);
            u32le(e + 8, 1);                         /* seq 1 */
            frame(f, (uint16_t)(AG_OP_WATCH | AG_EVENT), 9, e, sizeof e);
            u32le(e + 8, 2);                         /* seq 2 replaces it (coalesced) */
            frame(f, (uint16_t)(AG_OP_WATCH | AG_EVENT), 9, e, sizeof e);
            u32le(e, AG_EV_LOST);
            u32le(e + 24, 1018);
            frame(f, (uint16_t)(AG_OP_WATCH | AG_EVENT), 9, e, 28);
            frame(f, (uint16_t)(AG_OP_WATCH | AG_EVENT), 77, e, 28);   /* an unknown watch: dropped */
        } else {
            reply(f, op, id, p, n);
        }
        break;
    }
    case S_BAD_EVENT:
        if (op == AG_OP_WATCH) {
            uint8_t s[16];
            u32le(s, 9); u32le(s + 4, 1); u32le(s + 8, 0); u32le(s + 12, 0);
            reply(f, op, id, s, 16);
            uint8_t e[24];
            memset(e, 0, sizeof e);
            u32le(e, 99);                            /* an unknown kind */
            frame(f, (uint16_t)(AG_OP_WATCH | AG_EVENT), 9, e, 24);
        }
        break;
    case S_WRONG_OP:            /* the right id with another op */
        frame(f, (uint16_t)(AG_OP_PING | AG_RESPONSE), id, b, 4);
        break;
    case S_GARBAGE:
        write_all(f->out, "this is not a frame header", 26);
        break;
    case S_EMPTY:               /* status 0, nothing after it (writes) */
        reply(f, op, id, NULL, 0);
        break;
    case S_STOP:                /* answer this one, then stop reading the input */
        reply(f, op, id, NULL, 0);
        f->stop_reading = 1;
        break;
    case S_INFO_OK:             /* a well-formed KEY_INFO: 3 subkeys, name "Root" */
        reply(f, op, id, b, info_ok(b));
        break;
    case S_BAD_CRC: {           /* the same, its trailer one bit off */
        uint8_t r[4 + 52];
        u32le(r, 0);
        info_ok(r + 4);
        frame_crc(f, (uint16_t)(op | AG_RESPONSE), id, r, sizeof r, 1);
        break;
    }
    case S_CRC_TRAILER_CUT: {   /* the whole payload, then half a trailer, then silence */
        uint8_t r[4 + 52], h[16], t[4];
        u32le(r, 0);
        info_ok(r + 4);
        u16le(h, AG_MAGIC); u16le(h + 2, (uint16_t)(op | AG_RESPONSE)); u32le(h + 4, sizeof r); u32le(h + 8, id);
        u32le(h + 12, ag_fnv1a32(h, 12));
        u32le(t, rf_crc32(0, r, sizeof r));
        write_all(f->out, h, 16);
        write_all(f->out, r, sizeof r);
        write_all(f->out, t, 2);
        usleep(400000);
        break;
    }
    case S_BAD_CRC_EVENT:       /* WATCH: a good reply, then an event whose trailer is wrong */
        if (op == AG_OP_WATCH) {
            uint8_t s[16];
            u32le(s, 9); u32le(s + 4, 1); u32le(s + 8, 0); u32le(s + 12, 0);
            reply(f, op, id, s, 16);
            uint8_t e[24 + 8];
            memset(e, 0, sizeof e);
            u32le(e, AG_EV_CHANGE);
            u32le(e + 8, 1);
            frame_crc(f, (uint16_t)(AG_OP_WATCH | AG_EVENT), 9, e, sizeof e, 0x80000000u);
        }
        break;
    case S_LATIN1_NAMES: {      /* READ_VALUES of all: 3 empty rows, Latin-1 names of 40 bytes */
        size_t at = 0;
        u32le(b, 0); at += 4;                                   /* status */
        u32le(b + at, 3); u32le(b + at + 4, 0); u32le(b + at + 8, 120); at += 12;
        for (int i = 0; i < 3; i++) u32le(b + at + 4 * i, 3);  /* type */
        at += 12 + 12 + 12 + 24;                                /* status 0, length 0, offset 0 */
        for (int i = 0; i < 3; i++) u32le(b + at + 4 * i, 40u * (uint32_t)i);      /* name_off */
        at += 12;
        for (int i = 0; i < 3; i++) u32le(b + at + 4 * i, 40u | 0x80000000u);     /* Latin-1 */
        at += 12;
        for (int i = 0; i < 120; i++) b[at + i] = (uint8_t)('a' + i / 40);
        at += 120;
        frame(f, (uint16_t)(op | AG_RESPONSE), id, b, at);
        break;
    }
    case S_HINTS: {             /* SUBKEYS: "a" flags 1, "b" flags 2, "c" flags 4 (a bit to come) */
        size_t at = 0;
        u32le(b, 0); at += 4;                                   /* status */
        u32le(b + at, 3); at += 4;
        static const uint32_t flags[] = { 1, 2, 4 };
        for (int i = 0; i < 3; i++) {
            at += 8;                                            /* last write 0 */
            u32le(b + at, 2); at += 4;
            b[at] = (uint8_t)('a' + i); at += 2;
            u32le(b + at, flags[i]); at += 4;
        }
        frame(f, (uint16_t)(op | AG_RESPONSE), id, b, at);
        break;
    }
    case S_BATCH:               /* READ_VALUES: one row of 4,000 bytes */
    case S_BATCH_BAD_CRC: {
        static uint8_t r[4 + 64 + BATCH_DATA];
        u32le(r, 0);
        size_t len = 4 + batch_reply(r + 4);
        frame_crc(f, (uint16_t)(op | AG_RESPONSE), id, r, len, f->arg == S_BATCH_BAD_CRC ? 4u : 0u);
        break;
    }
    default:
        reply(f, op, id, p, n);
    }
}

/* A connected fake, one hive on HKCU, the root's handle 7. */
static rf_hive *fake_hive(fake *f, uint32_t arg, uint32_t timeout_ms, rf_remote **cout)
{
    rf_remote *c = NULL;
    rf_hive *h = NULL;
    fake_start(f, script);
    CHECK_EQ_INT(fake_connect(f, timeout_ms, &c), RF_OK);
    if (!c) return NULL;
    CHECK_EQ_INT(rf_remote_open(c, RF_HKEY_CURRENT_USER, 0, 0, &h), RF_OK);
    f->arg = arg;
    *cout = c;
    return h;
}

/* The connection's death status: 0 while alive, RF_E_CONNECTION (the agent
 * gone) or RF_E_CONNECTION_CUT (a frame cut, a bad CRC, a reply that does
 * not parse). */
static rf_status death(rf_remote *c)
{
    rf_remote_info i;
    i.struct_size = sizeof i;
    rf_remote_get_info(c, &i);
    return i.dead;
}

static int dead(rf_remote *c) { return death(c) != RF_OK; }

/* After a fatal reply: the connection is dead (cut) and every call fails at
 * once, with the same status. */
static void check_dead_fast(rf_hive *h, rf_remote *c)
{
    CHECK_EQ_INT(death(c), RF_E_CONNECTION_CUT);
    rf_key root, k;
    rf_hive_root(h, &root);
    uint64_t t0 = now_ms();
    CHECK_EQ_INT(rf_key_open(h, root, "x", 1, &k), RF_E_CONNECTION_CUT);
    CHECK(strstr(rf_last_error()->message, "dead") != NULL);
    rf_key_info ki;
    CHECK_EQ_INT(rf_key_get_info(h, root, &ki), RF_E_CONNECTION_CUT);
    CHECK(now_ms() - t0 < 100);
}

static void test_fake_malformed(void)
{
    static const uint32_t cases[] = { S_SHORT_INFO, S_BAD_SUBKEYS, S_BAD_ROWS, S_ROW_OUTSIDE, S_BAD_SNAPSHOT,
                                      S_WRONG_OP, S_GARBAGE };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake f;
        rf_remote *c;
        rf_hive *h = fake_hive(&f, cases[i], 5000, &c);
        if (!h) continue;
        rf_key root;
        rf_hive_root(h, &root);
        rf_status st;
        if (cases[i] == S_BAD_SUBKEYS) {
            size_t n;
            st = rf_key_subkeys(h, root, NULL, 0, &n);
        } else if (cases[i] == S_BAD_ROWS || cases[i] == S_ROW_OUTSIDE) {
            uint32_t type[4];
            int32_t status[4];
            uint64_t off[4];
            uint32_t len[4];
            uint8_t arena[64];
            rf_name nm = { W("v", NULL), 2, 1 };
            rf_batch b = { sizeof b, 4, 0, type, status, off, len, NULL, arena, sizeof arena, 0, NULL };
            st = rf_read_values(h, root, &nm, 1, NULL, 0, 0, &b);
        } else if (cases[i] == S_BAD_SNAPSHOT) {
            rf_bytes b = { NULL, 0, 0 };
            st = rf_key_snapshot(h, root, 0, 0, &b);
            CHECK(b.len == 0);
            rf_bytes_free(&b);
        } else {
            rf_key_info ki;
            st = rf_key_get_info(h, root, &ki);
        }
        CHECK_EQ_INT(st, RF_E_CONNECTION_CUT);
        if (st != RF_E_CONNECTION_CUT) fprintf(stderr, "case %u: %s\n", cases[i], rf_last_error()->message);
        check_dead_fast(h, c);
        CHECK_EQ_INT(f.bad_crc, 0);
        rf_hive_close(h);
        rf_remote_release(c);
        fake_stop(&f);
    }
}

static void test_fake_timeouts(void)
{
    fake f;
    rf_remote *c;
    /* a slow reply: RF_E_TIMEOUT, the connection stays, the late reply is dropped */
    rf_hive *h = fake_hive(&f, S_SLOW, 100, &c);
    if (!h) return;
    rf_key root;
    rf_hive_root(h, &root);
    rf_key_info ki;
    uint64_t t0 = now_ms();
    CHECK_EQ_INT(rf_key_get_info(h, root, &ki), RF_E_TIMEOUT);
    CHECK(now_ms() - t0 < 250);
    CHECK(!dead(c));
    /* the late KEY_INFO reply (4 bytes: it would not parse) comes first and
     * is dropped by its id; the next call reads its own */
    f.arg = S_INFO_OK;
    rf_remote_set_timeout(c, 5000);
    CHECK_EQ_INT(rf_key_get_info(h, root, &ki), RF_OK);
    CHECK_EQ_INT(ki.n_subkeys, 3);
    rf_name nm;
    CHECK_EQ_INT(rf_key_name(h, root, &nm), RF_OK);
    CHECK(nm.nbytes == 8 && memcmp(nm.ptr, "R\0o\0o\0t\0", 8) == 0);
    CHECK(!dead(c));
    rf_hive_close(h);
    rf_remote_release(c);
    fake_stop(&f);

    /* a reply cut by the timeout: the connection dies */
    h = fake_hive(&f, S_CUT, 150, &c);
    if (!h) return;
    rf_hive_root(h, &root);
    t0 = now_ms();
    CHECK_EQ_INT(rf_key_get_info(h, root, &ki), RF_E_CONNECTION_CUT);
    CHECK(strstr(rf_last_error()->message, "cut") != NULL);
    CHECK(now_ms() - t0 < 1000);
    check_dead_fast(h, c);
    rf_hive_close(h);
    rf_remote_release(c);
    fake_stop(&f);

    /* a request cut by the timeout: the agent stops reading, a 4 MiB write
     * cannot finish; the connection dies and the agent, reading again, sees
     * end-of-file inside the frame: it was never applied */
    h = fake_hive(&f, S_STOP, 200, &c);
    if (!h) return;
    rf_hive_root(h, &root);
    CHECK_EQ_INT(rf_value_delete(h, root, W("v", NULL), 1), RF_OK);   /* the fake stops reading after it */
    size_t big = 4u << 20;
    uint8_t *data = calloc(1, big);
    t0 = now_ms();
    rf_status st = rf_value_set(h, root, W("v", NULL), 1, 3, data, big);
    CHECK_EQ_INT(st, RF_E_CONNECTION_CUT);
    CHECK(strstr(rf_last_error()->message, "cut") != NULL);
    CHECK(now_ms() - t0 < 2000);
    int before = f.requests;
    f.stop_reading = 0;
    rf_hive_close(h);
    rf_remote_release(c);   /* the transport was closed when the frame was cut */
    pthread_join(f.th, NULL);
    CHECK(f.eof_mid_frame);
    CHECK_EQ_INT(f.requests, before);      /* the cut SET_VALUE never reached a handler */
    close(f.out);
    close(f.in);
    free(data);
}

static void test_fake_errors_and_events(void)
{
    fake f;
    rf_remote *c;
    rf_hive *h = fake_hive(&f, S_ERROR, 5000, &c);
    if (!h) return;
    rf_key root;
    rf_hive_root(h, &root);
    rf_key_info ki;
    CHECK_EQ_INT(rf_key_get_info(h, root, &ki), RF_E_KEY_DELETED);
    CHECK(strcmp(rf_last_error()->message, "the key was deleted (fake)") == 0);
    CHECK_EQ_INT(rf_last_error()->native, 0xC000017Cu);
    CHECK(!dead(c));
    rf_hive_close(h);
    rf_remote_release(c);
    fake_stop(&f);

    /* events arriving right after a WATCH reply, coalesced per key */
    h = fake_hive(&f, S_EVENTS, 5000, &c);
    if (!h) return;
    rf_hive_root(h, &root);
    rf_watch *w = NULL;
    rf_bytes base = { NULL, 0, 0 };
    CHECK_EQ_INT(rf_watch_open(h, &root, 1, NULL, &base, &w), RF_OK);
    CHECK_EQ_INT(base.len, 8);
    rf_bytes_free(&base);
    rf_watch_event ev;
    CHECK_EQ_INT(rf_watch_next(w, 2000, &ev), RF_OK);
    CHECK_EQ_INT(ev.kind, RF_WATCH_CHANGE);
    CHECK_EQ_INT(ev.seq, 2);                  /* seq 1 was replaced by seq 2 */
    CHECK_EQ_INT(ev.snapshot_len, 8);
    CHECK_EQ_INT(rf_watch_next(w, 2000, &ev), RF_OK);
    CHECK_EQ_INT(ev.kind, RF_WATCH_LOST);
    CHECK_EQ_INT(ev.status, 1018);
    CHECK_EQ_INT(rf_watch_next(w, 100, &ev), RF_E_NO_MORE_ITEMS);   /* its only key is lost */
    rf_watch_close(w);
    CHECK(!dead(c));
    rf_hive_close(h);
    rf_remote_release(c);
    fake_stop(&f);

    /* an event that does not parse kills the connection */
    h = fake_hive(&f, S_BAD_EVENT, 5000, &c);
    if (!h) return;
    rf_hive_root(h, &root);
    CHECK_EQ_INT(rf_watch_open(h, &root, 1, NULL, NULL, &w), RF_OK);
    CHECK_EQ_INT(rf_watch_next(w, 2000, &ev), RF_E_CONNECTION_CUT);
    rf_watch_close(w);
    check_dead_fast(h, c);
    rf_hive_close(h);
    rf_remote_release(c);
    fake_stop(&f);
}

/* Protocol 3's trailer, as src/regfast/agent.py keeps it: the client asks
 * for versions 4..AG_VERSION, frames every request after HELLO with the payload's
 * CRC (the fake counts mismatches), and a reply, an event or the parked
 * rest of a batch reply whose CRC does not match kills the connection with
 * RF_E_CONNECTION_CUT. */
static void test_fake_payload_check(void)
{
    fake f;
    rf_remote *c;
    rf_key root;
    rf_key_info ki;
    rf_hive *h = fake_hive(&f, S_INFO_OK, 5000, &c);
    if (!h) return;
    CHECK_EQ_INT(f.hello_min, AG_V_LAYOUTS);   /* the client speaks 4 (no links) to the last */
    CHECK_EQ_INT(f.hello_max, AG_VERSION);
    {   /* no cells behind a remote hive: the forensics slots are absent (120) */
        uint8_t buf[8];
        size_t len, n;
        CHECK_EQ_INT(rf_hive_deleted_read(h, 0x1000, buf, sizeof buf, &len), RF_E_NOT_SUPPORTED);
        CHECK_EQ_INT(rf_hive_slack(h, NULL, 0, &n), RF_E_NOT_SUPPORTED);
    }
    rf_hive_root(h, &root);
    CHECK_EQ_INT(rf_key_get_info(h, root, &ki), RF_OK);    /* a framed request, a framed reply */
    CHECK_EQ_INT(ki.n_subkeys, 3);
    f.arg = S_EMPTY;                                          /* a framed write request */
    uint8_t data[300];
    memset(data, 0x5A, sizeof data);
    CHECK_EQ_INT(rf_value_set(h, root, W("v", NULL), 1, 3, data, sizeof data), RF_OK);
    CHECK(f.requests >= 3 && f.bad_crc == 0);
    CHECK(!dead(c));
    /* a reply one bit off in its trailer */
    f.arg = S_BAD_CRC;
    CHECK_EQ_INT(rf_key_get_info(h, root, &ki), RF_E_CONNECTION_CUT);
    CHECK(strstr(rf_last_error()->message, "payload check") != NULL);
    check_dead_fast(h, c);
    rf_hive_close(h);
    rf_remote_release(c);
    fake_stop(&f);

    /* a trailer cut in half by the timeout */
    h = fake_hive(&f, S_CRC_TRAILER_CUT, 150, &c);
    if (!h) return;
    rf_hive_root(h, &root);
    CHECK_EQ_INT(rf_key_get_info(h, root, &ki), RF_E_CONNECTION_CUT);
    CHECK(strstr(rf_last_error()->message, "cut") != NULL);
    check_dead_fast(h, c);
    rf_hive_close(h);
    rf_remote_release(c);
    fake_stop(&f);

    /* an event with a bad trailer */
    h = fake_hive(&f, S_BAD_CRC_EVENT, 5000, &c);
    if (!h) return;
    rf_hive_root(h, &root);
    rf_watch *w = NULL;
    rf_watch_event ev;
    CHECK_EQ_INT(rf_watch_open(h, &root, 1, NULL, NULL, &w), RF_OK);
    CHECK_EQ_INT(rf_watch_next(w, 2000, &ev), RF_E_CONNECTION_CUT);
    CHECK(strstr(rf_last_error()->message, "payload check") != NULL);
    rf_watch_close(w);
    check_dead_fast(h, c);
    rf_hive_close(h);
    rf_remote_release(c);
    fake_stop(&f);

    /* a batch reply parked (the arena too small): its CRC runs over the
     * columns read by the first call and the data read by the retry, and is
     * checked once the data is in */
    for (int bad = 0; bad < 2; bad++) {
        h = fake_hive(&f, bad ? S_BATCH_BAD_CRC : S_BATCH, 5000, &c);
        if (!h) return;
        rf_hive_root(h, &root);
        uint32_t type[2], len[2];
        int32_t status[2];
        uint64_t off[2];
        static uint8_t arena[BATCH_DATA + 64];
        rf_name nm = { W("v", NULL), 2, 1 };
        rf_batch b = { sizeof b, 2, 0, type, status, off, len, NULL, arena, 64, 0, NULL };
        CHECK_EQ_INT(rf_read_values(h, root, &nm, 1, NULL, 0, 0, &b), RF_E_MORE_DATA);
        CHECK_EQ_INT(b.arena_used, BATCH_DATA);
        CHECK(!dead(c));
        int before = f.requests;
        b.arena_cap = sizeof arena;
        rf_status st = rf_read_values(h, root, &nm, 1, NULL, 0, 0, &b);
        CHECK_EQ_INT(f.requests, before);                   /* served from the stream */
        if (!bad) {
            CHECK_EQ_INT(st, RF_OK);
            CHECK(b.n == 1 && status[0] == 0 && len[0] == BATCH_DATA);
            CHECK(arena[(off[0] & ~RF_BATCH_IN_ARENA) + 7] == (uint8_t)(7 * 13));
            CHECK(!dead(c));
            f.arg = S_INFO_OK;                              /* the stream is still in step */
            CHECK_EQ_INT(rf_key_get_info(h, root, &ki), RF_OK);
        } else {
            CHECK_EQ_INT(st, RF_E_CONNECTION_CUT);
            CHECK(strstr(rf_last_error()->message, "payload check") != NULL);
            check_dead_fast(h, c);
        }
        rf_hive_close(h);
        rf_remote_release(c);
        fake_stop(&f);
    }
    /* the parked rest dropped by the next call is checked too */
    h = fake_hive(&f, S_BATCH_BAD_CRC, 5000, &c);
    if (!h) return;
    rf_hive_root(h, &root);
    {
        uint32_t type[2], len[2];
        int32_t status[2];
        uint64_t off[2];
        uint8_t arena[64];
        rf_name nm = { W("v", NULL), 2, 1 };
        rf_batch b = { sizeof b, 2, 0, type, status, off, len, NULL, arena, sizeof arena, 0, NULL };
        CHECK_EQ_INT(rf_read_values(h, root, &nm, 1, NULL, 0, 0, &b), RF_E_MORE_DATA);
        f.arg = S_INFO_OK;
        CHECK_EQ_INT(rf_key_get_info(h, root, &ki), RF_E_CONNECTION_CUT);
        check_dead_fast(h, c);
    }
    rf_hive_close(h);
    rf_remote_release(c);
    fake_stop(&f);
}

static void no_hello_script(fake *f, uint16_t op, uint32_t id, const uint8_t *p, size_t n) { (void)f; (void)op; (void)id; (void)p; (void)n; }

static void test_fake_handshake(void)
{
    /* an agent that answers HELLO with version 3 (the trailer, not the
     * layouts this client parses): refused, cleanly */
    fake f;
    fake_start(&f, script);
    f.hello_version = AG_V_TRAILER;
    rf_remote *c3 = (rf_remote *)1;
    CHECK_EQ_INT(fake_connect(&f, 2000, &c3), RF_E_CONNECTION);
    CHECK(c3 == NULL);
    CHECK(strstr(rf_last_error()->message, "version 3") != NULL);
    fake_stop(&f);

    fake_start(&f, no_hello_script);
    f.requests = 1;                    /* skip the built-in HELLO answer */
    rf_transport t;
    rf_transport_fds(f.cin, f.cout, 1, &t);
    rf_remote *c = (rf_remote *)1;
    /* nothing answers: a timeout is a failed handshake */
    CHECK_EQ_INT(rf_remote_connect(&t, 200, &c), RF_E_CONNECTION);
    CHECK(c == NULL);
    fake_stop(&f);
    /* a transport without callbacks */
    rf_transport bad;
    memset(&bad, 0, sizeof bad);
    CHECK_EQ_INT(rf_remote_connect(&bad, 0, &c), RF_E_INVALID_PARAMETER);
    CHECK_EQ_INT(rf_transport_fds(-1, 1, 0, &t), RF_E_INVALID_HANDLE);
    CHECK_EQ_INT(rf_transport_handles(NULL, NULL, 0, &t), RF_E_NOT_SUPPORTED);
}

/* ======================================================================== */
/* The real agent under Wine                                                 */
/* ======================================================================== */

static pid_t spawn_agent(const char *wine, const char *exe, int *rfd, int *wfd)
{
    int in[2], out[2];
    if (pipe(in) || pipe(out)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execlp(wine, wine, exe, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    *rfd = out[0];
    *wfd = in[1];
    return pid;
}

static rf_remote *agent_connect(const char *wine, const char *exe, pid_t *pid)
{
    int rfd, wfd;
    *pid = spawn_agent(wine, exe, &rfd, &wfd);
    rf_transport t;
    rf_transport_fds(rfd, wfd, 1, &t);
    rf_remote *c = NULL;
    rf_status st = rf_remote_connect(&t, 60000, &c);
    CHECK_EQ_INT(st, RF_OK);
    if (st) fprintf(stderr, "connect: %s\n", rf_last_error()->message);
    return c;
}

static void reap(pid_t pid)
{
    int s;
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, &s, WNOHANG) == pid) return;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &s, 0);
}

#define KEY_ALL 0xF003Fu

static void test_agent(const char *wine, const char *exe)
{
    pid_t pid;
    rf_remote *c = agent_connect(wine, exe, &pid);
    if (!c) return;
    rf_remote_info info;
    info.struct_size = sizeof info;
    CHECK_EQ_INT(rf_remote_get_info(c, &info), RF_OK);
    CHECK_EQ_INT(info.version, AG_VERSION);
    {
        char want[32];
        snprintf(want, sizeof want, "protocol %u on Wine", (unsigned)AG_VERSION);
        CHECK(strstr(info.description, want) != NULL);
    }
    rf_hive *h = NULL;
    CHECK_EQ_INT(rf_remote_open(c, RF_HKEY_LOCAL_MACHINE, RF_VIEW_32, 0, &h), RF_OK);   /* a second hive */
    rf_hive_close(h);
    CHECK_EQ_INT(rf_remote_open(c, 0x80000009u, 0, 0, &h), RF_E_INVALID_HANDLE);   /* not a root */
    CHECK(h == NULL);
    CHECK_EQ_INT(rf_remote_open(c, RF_HKEY_CURRENT_USER, 0, KEY_ALL, &h), RF_OK);
    if (!h) return;
    rf_key root, sb, k;
    uint32_t disp = 0;
    size_t n;
    rf_hive_root(h, &root);
    const uint16_t *p = W("Software\\regfast-c-remote", &n);
    rf_key_delete(h, root, p, n, RF_DELETE_TREE);
    CHECK_EQ_INT(rf_key_create(h, root, p, n, 0, &sb, &disp), RF_OK);
    CHECK_EQ_INT(disp, RF_CREATED_NEW);
    CHECK_EQ_INT(rf_key_create(h, root, p, n, 0, &k, &disp), RF_OK);
    CHECK_EQ_INT(disp, RF_OPENED_EXISTING);
    CHECK(k == sb);

    /* values: set, read one by one, a batch, a missing one */
    uint32_t dw = 42;
    CHECK_EQ_INT(rf_value_set(h, sb, W("dw", NULL), sizeof("dw") - 1, RF_REG_DWORD, &dw, 4), RF_OK);
    CHECK_EQ_INT(rf_value_set(h, sb, W("sz", NULL), sizeof("sz") - 1, RF_REG_SZ, W("text", NULL), 10), RF_OK);
    CHECK_EQ_INT(rf_value_set(h, sb, NULL, 0, RF_REG_BINARY, "\1\2\3", 3), RF_OK);   /* the default value */
    uint8_t *big = malloc(100000);
    for (int i = 0; i < 100000; i++) big[i] = (uint8_t)(i * 7);
    CHECK_EQ_INT(rf_value_set(h, sb, W("big", NULL), sizeof("big") - 1, RF_REG_BINARY, big, 100000), RF_OK);
    rf_value v;
    rf_value_info vi;
    const uint8_t *d;
    size_t dl;
    CHECK_EQ_INT(rf_value_open(h, sb, "DW", 2, &v), RF_OK);
    CHECK_EQ_INT(rf_value_get_info(h, v, &vi), RF_OK);
    CHECK(vi.type == RF_REG_DWORD && vi.data_len == 4);
    CHECK_EQ_INT(rf_value_read(h, v, NULL, 0, &d, &dl), RF_OK);
    CHECK(dl == 4 && rd32(d) == 42);
    CHECK_EQ_INT(rf_value_open(h, sb, "big", 3, &v), RF_OK);
    CHECK_EQ_INT(rf_value_read(h, v, NULL, 0, &d, &dl), RF_OK);
    CHECK(dl == 100000 && memcmp(d, big, dl) == 0);
    CHECK_EQ_INT(rf_value_open(h, sb, "nope", 4, &v), RF_E_NOT_FOUND);

    rf_name names[4] = { { W("sz", NULL), 4, 1 }, { "missing", 7, 0 }, { W("dw", NULL), 4, 1 }, { W("big", NULL), 6, 1 } };
    uint32_t type[8], len[8];
    int32_t status[8];
    uint64_t off[8];
    rf_name nm[8];
    rf_value tok[8];
    uint8_t arena[64];
    rf_batch b = { sizeof b, 8, 0, type, status, off, len, nm, arena, sizeof arena, 0, tok };
    rf_remote_get_info(c, &info);
    uint64_t reqs = info.requests;
    /* the arena is too small for "big": RF_E_MORE_DATA with the size, the columns parked */
    CHECK_EQ_INT(rf_read_values(h, sb, names, 4, NULL, 0, 0, &b), RF_E_MORE_DATA);
    CHECK_EQ_INT(b.n, 4);
    CHECK(b.arena_used >= 100000 + 8 + 10);
    CHECK_EQ_INT(status[1], RF_E_NOT_FOUND);
    CHECK_EQ_INT(status[0], RF_E_MORE_DATA);
    uint8_t *arena2 = malloc(b.arena_used);
    b.arena = arena2;
    b.arena_cap = b.arena_used;
    CHECK_EQ_INT(rf_read_values(h, sb, names, 4, NULL, 0, 0, &b), RF_OK);
    rf_remote_get_info(c, &info);
    CHECK_EQ_INT(info.requests - reqs, 1);        /* the retry was answered from the parked reply */
    CHECK(status[0] == 0 && status[1] == 2 && status[2] == 0 && status[3] == 0);
    CHECK(type[0] == RF_REG_SZ && len[0] == 10 && memcmp(arena2 + (off[0] & ~RF_BATCH_IN_ARENA), W("text", NULL), 10) == 0);
    CHECK(len[2] == 4 && rd32(arena2 + (off[2] & ~RF_BATCH_IN_ARENA)) == 42);
    CHECK(len[3] == 100000 && memcmp(arena2 + (off[3] & ~RF_BATCH_IN_ARENA), big, 100000) == 0);
    CHECK(off[0] & RF_BATCH_IN_ARENA);
    CHECK(tok[0] != 0 && tok[1] == 0);
    CHECK_EQ_INT(rf_value_get_info(h, tok[3], &vi), RF_OK);
    CHECK_EQ_INT(vi.data_len, 100000);
    /* a type filter; every value (names from the arena) */
    uint32_t only_dw = RF_REG_DWORD;
    CHECK_EQ_INT(rf_read_values(h, sb, names, 4, &only_dw, 1, 0, &b), RF_OK);
    CHECK(status[0] == RF_E_INVALID_DATA && status[2] == 0);
    /* every value: the names need arena room too; the retry is served parked */
    rf_status rst = rf_read_values(h, sb, NULL, 0, NULL, 0, 0, &b);
    if (rst == RF_E_MORE_DATA) {
        free(arena2);
        arena2 = malloc(b.arena_used);
        b.arena = arena2;
        b.arena_cap = b.arena_used;
        rst = rf_read_values(h, sb, NULL, 0, NULL, 0, 0, &b);
    }
    CHECK_EQ_INT(rst, RF_OK);
    CHECK_EQ_INT(b.n, 4);
    int seen_default = 0;
    for (size_t i = 0; i < b.n; i++) seen_default += nm[i].nbytes == 0 && status[i] == 0 && len[i] == 3;
    CHECK_EQ_INT(seen_default, 1);
    rf_value vals[8];
    CHECK_EQ_INT(rf_key_values(h, sb, vals, 8, &n), RF_OK);
    CHECK_EQ_INT(n, 4);
    free(arena2);

    /* keys: subkeys, names as stored, parents, info */
    rf_key kids[8];
    CHECK_EQ_INT(rf_key_create(h, sb, W("Sub\\Deeper", NULL), sizeof("Sub\\Deeper") - 1, 0, &k, &disp), RF_OK);
    CHECK_EQ_INT(rf_key_create(h, sb, W("Other", NULL), sizeof("Other") - 1, RF_CREATE_VOLATILE, &k, &disp), RF_OK);
    CHECK_EQ_INT(rf_key_subkeys(h, sb, NULL, 0, &n), RF_E_MORE_DATA);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(rf_key_subkeys(h, sb, kids, 8, &n), RF_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(rf_key_open(h, sb, "sub\\DEEPER", 10, &k), RF_OK);
    rf_name kn;
    CHECK_EQ_INT(rf_key_name(h, k, &kn), RF_OK);
    CHECK(kn.nbytes == 12 && memcmp(kn.ptr, W("Deeper", NULL), 12) == 0);   /* as stored */
    rf_key par;
    CHECK_EQ_INT(rf_key_parent(h, k, &par), RF_OK);
    CHECK_EQ_INT(rf_key_name(h, par, &kn), RF_OK);
    CHECK(kn.nbytes == 6 && memcmp(kn.ptr, W("Sub", NULL), 6) == 0);
    rf_key_info ki;
    CHECK_EQ_INT(rf_key_get_info(h, sb, &ki), RF_OK);
    CHECK(ki.n_subkeys == 2 && ki.n_values == 4 && ki.max_value_data_len == 100000);
    CHECK_EQ_INT(rf_key_open(h, sb, "no\\such", 7, &k), RF_E_NOT_FOUND);

    /* delete, rename */
    CHECK_EQ_INT(rf_value_delete(h, sb, W("dw", NULL), sizeof("dw") - 1), RF_OK);
    CHECK_EQ_INT(rf_value_delete(h, sb, W("dw", NULL), sizeof("dw") - 1), RF_E_NOT_FOUND);
    CHECK_EQ_INT(rf_key_open(h, sb, "Sub", 3, &k), RF_OK);
    CHECK_EQ_INT(rf_key_delete(h, sb, W("Sub", NULL), sizeof("Sub") - 1, 0), RF_E_ACCESS_DENIED);   /* it has a subkey */
    CHECK(strstr(rf_last_error()->message, "subkeys") != NULL);
    CHECK_EQ_INT(rf_key_rename(h, k, W("Renamed", NULL), sizeof("Renamed") - 1), RF_OK);
    CHECK_EQ_INT(rf_key_get_info(h, k, &ki), RF_E_KEY_DELETED);        /* the old token */
    CHECK_EQ_INT(rf_key_open(h, sb, "Sub", 3, &k), RF_E_NOT_FOUND);
    CHECK_EQ_INT(rf_key_open(h, sb, "Renamed\\Deeper", 14, &k), RF_OK);
    if (dead(c)) fprintf(stderr, "dead: %s\n", rf_last_error()->message);
    CHECK_EQ_INT(rf_key_rename(h, k, W("Other", NULL), sizeof("Other") - 1), RF_OK);        /* no clash: another parent */
    CHECK_EQ_INT(rf_key_open(h, sb, "Renamed", 7, &k), RF_OK);
    CHECK_EQ_INT(rf_key_rename(h, k, W("Other", NULL), sizeof("Other") - 1), RF_E_ALREADY_EXISTS);
    CHECK_EQ_INT(rf_key_delete(h, sb, W("Renamed", NULL), sizeof("Renamed") - 1, RF_DELETE_TREE), RF_OK);
    CHECK_EQ_INT(rf_key_get_info(h, k, &ki), RF_E_KEY_DELETED);

    /* security: read, set back, a malformed one refused before any call */
    uint8_t sd[4096];
    size_t sdl;
    uint32_t si;
    CHECK_EQ_INT(rf_key_get_security(h, sb, 0, NULL, 0, &sdl, &si), RF_E_MORE_DATA);
    CHECK_EQ_INT(rf_key_get_security(h, sb, RF_SI_OWNER | RF_SI_DACL, sd, sizeof sd, &sdl, &si), RF_OK);
    CHECK(si == (RF_SI_OWNER | RF_SI_DACL));
    char sddl[1024];
    size_t sl;
    CHECK_EQ_INT(rf_sd_to_sddl(sd, sdl, sddl, sizeof sddl, &sl), RF_OK);
    CHECK(strncmp(sddl, "O:", 2) == 0 && strstr(sddl, "D:") != NULL);
    CHECK_EQ_INT(rf_key_set_security(h, sb, RF_SI_DACL, sd, sdl), RF_OK);
    CHECK_EQ_INT(rf_key_set_security(h, sb, RF_SI_DACL, sd, 12), RF_E_INVALID_PARAMETER);

    /* a snapshot: well-formed, the keys and values it should hold */
    rf_bytes snap = { NULL, 0, 0 };
    CHECK_EQ_INT(rf_key_snapshot(h, sb, RF_SNAP_SUBTREE | RF_SNAP_KEEP_DATA, 0, &snap), RF_OK);
    size_t sz;
    CHECK_EQ_INT(rf_snapshot_size(snap.data, snap.len, &sz), RF_OK);
    CHECK_EQ_INT(sz, snap.len);
    CHECK_EQ_INT(rd32(snap.data), 2);                       /* the key and "Other" */
    CHECK_EQ_INT(rd32(snap.data + 4), RF_SNAP_DATA);
    CHECK(memmem(snap.data, snap.len, big, 1000) != NULL);  /* big's data is in it */
    rf_bytes_free(&snap);

    /* a watch: a write through the same connection fires it */
    rf_watch *w = NULL;
    rf_bytes base[1] = { { NULL, 0, 0 } };
    rf_watch_opts o = RF_WATCH_OPTS_INIT;
    CHECK_EQ_INT(rf_watch_open(h, &sb, 1, &o, base, &w), RF_OK);
    CHECK(base[0].len > 8 && rd32(base[0].data) == 2);
    rf_bytes_free(&base[0]);
    rf_watch_event ev;
    CHECK_EQ_INT(rf_watch_next(w, 100, &ev), RF_E_TIMEOUT);
    dw = 43;
    CHECK_EQ_INT(rf_value_set(h, sb, W("fresh", NULL), sizeof("fresh") - 1, RF_REG_DWORD, &dw, 4), RF_OK);
    CHECK_EQ_INT(rf_watch_next(w, 10000, &ev), RF_OK);
    CHECK_EQ_INT(ev.kind, RF_WATCH_CHANGE);
    CHECK(ev.snapshot && memmem(ev.snapshot, ev.snapshot_len, W("fresh", NULL), 10) != NULL);
    rf_watch_stop(w);
    CHECK_EQ_INT(rf_watch_next(w, 10000, &ev), RF_E_NO_MORE_ITEMS);
    rf_watch_close(w);

    /* a request cut by the timeout is never applied: a 12 MiB value with a
     * 1 ms timeout cannot be written whole; the connection dies, and a
     * second agent in the same prefix does not find the value */
    size_t huge = 12u << 20;
    uint8_t *hv = calloc(1, huge);
    rf_remote_set_timeout(c, 1);
    rf_status st = rf_value_set(h, sb, W("cut", NULL), sizeof("cut") - 1, RF_REG_BINARY, hv, huge);
    CHECK_EQ_INT(st, RF_E_CONNECTION_CUT);
    CHECK_EQ_INT(death(c), RF_E_CONNECTION_CUT);
    CHECK_EQ_INT(rf_key_get_info(h, sb, &ki), RF_E_CONNECTION_CUT);
    free(hv);
    rf_hive_close(h);
    rf_remote_release(c);
    reap(pid);
    pid_t pid2;
    rf_remote *c2 = agent_connect(wine, exe, &pid2);
    if (c2) {
        rf_hive *h2;
        CHECK_EQ_INT(rf_remote_open(c2, RF_HKEY_CURRENT_USER, 0, KEY_ALL, &h2), RF_OK);
        CHECK_EQ_INT(rf_key_open(h2, 0, "Software\\regfast-c-remote", 25, &sb), RF_OK);
        CHECK_EQ_INT(rf_value_open(h2, sb, "cut", 3, &v), RF_E_NOT_FOUND);
        CHECK_EQ_INT(rf_value_open(h2, sb, "fresh", 5, &v), RF_OK);
        rf_hive_root(h2, &root);
        p = W("Software\\regfast-c-remote", &n);
        CHECK_EQ_INT(rf_key_delete(h2, root, p, n, RF_DELETE_TREE), RF_OK);
        rf_hive_close(h2);
        rf_remote_release(c2);
        reap(pid2);
    }
    free(big);
}

/* A READ_VALUES reply whose names are Latin-1 (the name_len flag), read
 * straight into the caller's columns with tokens: widening a name used the
 * per-thread buffer that held the name offsets of the rows still to come
 * (garbage offsets, or a use after free once it grew: ASan). */
static void test_fake_latin1_names(void)
{
    fake f;
    rf_remote *c;
    rf_hive *h = fake_hive(&f, S_LATIN1_NAMES, 5000, &c);
    if (!h) return;
    rf_key root;
    rf_hive_root(h, &root);
    uint32_t type[4], len[4];
    int32_t status[4];
    uint64_t off[4];
    rf_name names[4];
    rf_value tok[4];
    uint8_t arena[256];
    rf_batch b = { sizeof b, 4, 0, type, status, off, len, names, arena, sizeof arena, 0, tok };
    CHECK_EQ_INT(rf_read_values(h, root, NULL, 0, NULL, 0, 0, &b), RF_OK);
    CHECK_EQ_INT(b.n, 3);
    for (size_t i = 0; i < b.n && i < 3; i++) {
        CHECK(names[i].nbytes == 40 && !names[i].utf16);
        CHECK(names[i].ptr && ((const uint8_t *)names[i].ptr)[0] == 'a' + i &&
              ((const uint8_t *)names[i].ptr)[39] == 'a' + i);
        CHECK(tok[i] != 0 && (i == 0 || tok[i] != tok[i - 1]));
    }
    CHECK_EQ_INT(death(c), RF_OK);
    rf_hive_close(h);
    rf_remote_release(c);
    fake_stop(&f);
}

/* SUBKEYS entry flags (protocol 5): 1 is RF_SUBKEY_NO_SUBKEYS, 2
 * RF_SUBKEY_HAS_SUBKEYS, a bit the client does not know reads as 0 (no
 * hint: unknown), and a plain listing gives no hints at all. */
static void test_fake_hints(void)
{
    fake f;
    rf_remote *c;
    rf_hive *h = fake_hive(&f, S_HINTS, 5000, &c);
    if (!h) return;
    rf_key root, keys[8];
    uint8_t hints[8];
    size_t n = 0;
    rf_hive_root(h, &root);
    CHECK_EQ_INT(rf_key_subkeys_hinted(h, root, keys, hints, 8, &n), RF_OK);
    CHECK_EQ_INT(n, 3);
    static const uint8_t want[] = { RF_SUBKEY_NO_SUBKEYS, RF_SUBKEY_HAS_SUBKEYS, 0 };
    for (size_t i = 0; i < n && i < 3; i++) {
        rf_name nm;
        CHECK_EQ_INT(rf_key_name(h, keys[i], &nm), RF_OK);
        CHECK(nm.nbytes == 2 && ((const uint8_t *)nm.ptr)[0] == 'a' + i);
        CHECK_EQ_INT(hints[i], want[i]);
    }
    CHECK_EQ_INT(f.bad_crc, 0);
    rf_hive_close(h);
    rf_remote_release(c);
    fake_stop(&f);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_DFL);   /* the transport must survive SIGPIPE on its own */
    test_fake_handshake();
    test_fake_malformed();
    test_fake_timeouts();
    test_fake_errors_and_events();
    test_fake_payload_check();
    test_fake_latin1_names();
    test_fake_hints();
    if (argc >= 3) test_agent(argv[1], argv[2]);
    else printf("no agent given (test_remote WINE AGENT.exe): the fake agent only\n");
    return CHECK_DONE();
}
