/*
 * agent_main.c — regfast-agent.exe: frames over stdin/stdout around the
 * request handling of agent_dispatch.c (ag_dispatch).
 *
 * The agent runs no shell and opens no file: stdin/stdout carry frames
 * (agent.h), stderr only diagnostics. A malformed header or payload gets an
 * error reply and the agent goes on serving; EOF on stdin, QUIT, or (from
 * version 3) a payload whose CRC does not match ends it. A request is
 * applied only once its whole frame is in: EOF in the middle of a frame
 * discards it (agent.h: "a cut frame kills the connection").
 */
#include "agent.h"

#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }

/* ------------------------------------------------------------------------ */
/* Output: responses from the loop and events from watch threads share one  */
/* lock, so frames never interleave.                                        */
/* ------------------------------------------------------------------------ */

static HANDLE out_h, in_h;
static CRITICAL_SECTION out_lock;
static volatile LONG out_broken;
/* The framing in force (agent.h): 2 until a HELLO response agreeing on a
 * later version is out. Written by the main loop under out_lock, read under
 * it by writers. */
static uint32_t frame_version = 2;

/* The payload check of a frame (version >= AG_V_TRAILER): zlib's CRC-32. */
static uint32_t crc32_of(const uint8_t *p, size_t n) { return rf_crc32(0, p, n); }

static int write_all(const uint8_t *p, size_t n)
{
    while (n) {
        DWORD chunk = n > (1u << 20) ? (1u << 20) : (DWORD)n, done = 0;
        if (!WriteFile(out_h, p, chunk, &done, NULL) || done == 0)
            return 0;
        p += done;
        n -= done;
    }
    return 1;
}

static void write_frame(uint16_t op, uint32_t id, const uint8_t *payload, size_t n, void *ctx)
{
    (void)ctx;
    uint8_t h[AG_HEADER];
    wr16(h, AG_MAGIC);
    wr16(h + 2, op);
    wr32(h + 4, (uint32_t)n);
    wr32(h + 8, id);
    wr32(h + 12, ag_fnv1a32(h, 12));
    uint8_t t[AG_TRAILER];
    wr32(t, crc32_of(payload, n));
    EnterCriticalSection(&out_lock);
    if (!out_broken && (!write_all(h, sizeof h) || !write_all(payload, n) ||
                        (frame_version >= AG_V_TRAILER && !write_all(t, sizeof t))))
        out_broken = 1;
    LeaveCriticalSection(&out_lock);
}

/* After a reply is out: frames from now on use the version HELLO agreed on. */
static void framing_after_reply(void)
{
    EnterCriticalSection(&out_lock);
    frame_version = ag_version ? ag_version : 2;
    LeaveCriticalSection(&out_lock);
}

/* An error response for a frame that never reached ag_dispatch. */
static void send_error(uint16_t op, uint32_t id, rf_status st)
{
    obuf r = { 0 };
    ag_error_payload(st, &r);
    write_frame((uint16_t)(op | AG_RESPONSE), id, r.p, r.n, NULL);
    ob_free(&r);
}

/* ------------------------------------------------------------------------ */
/* Input: a buffered reader over the stdin handle                           */
/* ------------------------------------------------------------------------ */

static uint8_t inbuf[1 << 16];
static size_t in_pos, in_len;

/* Makes at least `want` bytes available (want <= sizeof inbuf); 0 on EOF. */
static int in_need(size_t want)
{
    if (in_len - in_pos >= want)
        return 1;
    memmove(inbuf, inbuf + in_pos, in_len - in_pos);
    in_len -= in_pos;
    in_pos = 0;
    while (in_len < want) {
        DWORD got = 0;
        if (!ReadFile(in_h, inbuf + in_len, (DWORD)(sizeof inbuf - in_len), &got, NULL) || got == 0)
            return 0;
        in_len += got;
    }
    return 1;
}

/* Copies (dst) or skips (dst NULL) n bytes of input; 0 on EOF. */
static int in_take(uint8_t *dst, size_t n)
{
    while (n) {
        if (!in_need(1))
            return 0;
        size_t k = in_len - in_pos < n ? in_len - in_pos : n;
        if (dst) {
            memcpy(dst, inbuf + in_pos, k);
            dst += k;
        }
        in_pos += k;
        n -= k;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Main loop                                                                */
/* ------------------------------------------------------------------------ */

static int header_ok(const uint8_t *h)
{
    return rd16(h) == AG_MAGIC && rd32(h + 12) == ag_fnv1a32(h, 12);
}

int main(void)
{
    /* Binary pipes: no CRLF translation, no ^Z end-of-file. Frames go through
     * the Win32 handles below, but the CRT must not touch the bytes either. */
    _setmode(_fileno(stdin), _O_BINARY);
    _setmode(_fileno(stdout), _O_BINARY);
    in_h = GetStdHandle(STD_INPUT_HANDLE);
    out_h = GetStdHandle(STD_OUTPUT_HANDLE);
    InitializeCriticalSection(&out_lock);
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
    ag_init(write_frame, NULL);     /* watch events go out as frames */

    uint8_t *payload = NULL;
    size_t payload_cap = 0;
    int resync = 0;
    obuf out = { 0 };
    for (;;) {
        if (!in_need(AG_HEADER))
            break;
        const uint8_t *h = inbuf + in_pos;
        if (!header_ok(h)) {
            /* Not a frame start: say so once, then slide one byte at a time
             * until a header whose magic and check both match. */
            if (!resync) {
                ag_bad_frames++;
                ag_fail(RF_E_INVALID_DATA, 0, "bad frame header (magic or check); resynchronizing");
                send_error(0, 0, RF_E_INVALID_DATA);
                resync = 1;
            }
            in_pos++;
            continue;
        }
        resync = 0;
        uint16_t op = rd16(h + 2);
        uint32_t len = rd32(h + 4), id = rd32(h + 8);
        size_t trailer = frame_version >= AG_V_TRAILER ? AG_TRAILER : 0;
        in_pos += AG_HEADER;
        if (len > AG_MAX_REQUEST) {
            ag_frames++;
            ag_bad_frames++;
            ag_fail(RF_E_LIMIT, 0, "frame of %u bytes is over the %u-byte limit", (unsigned)len, AG_MAX_REQUEST);
            send_error(op, id, RF_E_LIMIT);
            if (!in_take(NULL, (size_t)len + trailer))
                break;
            continue;
        }
        if (len > payload_cap) {
            uint8_t *np = realloc(payload, len);
            if (!np) {
                ag_frames++;
                ag_fail(RF_E_NO_MEMORY, 0, "no memory for a %u-byte frame", (unsigned)len);
                send_error(op, id, RF_E_NO_MEMORY);
                if (!in_take(NULL, (size_t)len + trailer))
                    break;
                continue;
            }
            payload = np;
            payload_cap = len;
        }
        /* The whole frame or nothing: EOF anywhere in it ends the agent
         * before the request is looked at (the client cut it). */
        uint8_t crc[AG_TRAILER];
        if (!in_take(payload, len) || (trailer && !in_take(crc, trailer)))
            break;
        if (trailer && rd32(crc) != crc32_of(payload, len)) {
            /* A spliced stream (a client that wrote on after cutting a
             * frame): this payload holds bytes of another frame, and the
             * rest of the input is out of step. Refuse and stop reading. */
            ag_frames++;
            ag_bad_frames++;
            ag_fail(RF_E_INVALID_DATA, 0, "frame %u: payload check mismatch; the input was cut or "
                    "spliced, so the agent stops reading it", (unsigned)id);
            send_error(op, id, RF_E_INVALID_DATA);
            break;
        }
        int deferred = 0;
        int quit = ag_dispatch(op, id, payload, len, &out, &deferred);
        write_frame((uint16_t)(op | AG_RESPONSE), id, out.p, out.n, NULL);
        framing_after_reply();
        if (deferred)
            watch_after_reply();
        if (out.cap > (1u << 20))   /* keep a big answer's buffer only until the next request */
            ob_free(&out);
        if (quit || out_broken)
            break;
    }
    ag_shutdown();
    ob_free(&out);
    free(payload);
    return 0;
}
