/*
 * rm_transport.c — the two ready-made byte streams for rf_remote_connect():
 * a pair of file descriptors (POSIX: a child's pipes, a socket) with
 * poll()-based timeouts, and a pair of Windows HANDLEs (a child's anonymous
 * pipes). Anything else (an ssh channel, a test's fake agent) brings its own
 * rf_transport callbacks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "remote/rm_internal.h"

#ifndef _WIN32
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

typedef struct fd_ctx { int rfd, wfd, own; } fd_ctx;

static int wait_fd(int fd, short ev, uint32_t timeout_ms)
{
    struct pollfd p = { fd, ev, 0 };
    for (;;) {
        int r = poll(&p, 1, timeout_ms > 0x7FFFFFFFu ? -1 : (int)timeout_ms);
        if (r >= 0 || errno != EINTR) return r;
    }
}

/*
 * Writes to a pipe whose reader is gone raise SIGPIPE, which would kill a
 * program that does not ignore it (Python ignores it; a C program may not).
 * The signal is blocked in this thread for the write, and a SIGPIPE that
 * write raised is taken back from the pending set, so the caller gets
 * RF_E_CONNECTION instead.
 */
static ssize_t write_nosig(int fd, const uint8_t *p, size_t n)
{
    sigset_t pipe_only, old, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    ssize_t w = write(fd, p, n);
    int e = errno;
    if (w < 0 && e == EPIPE && !was_pending) {
        struct timespec zero = { 0, 0 };
        while (sigtimedwait(&pipe_only, NULL, &zero) < 0 && errno == EINTR) {}
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return w;
}

static rf_status fd_send(void *ctx, const uint8_t *p, size_t n, size_t *done, uint32_t timeout_ms)
{
    fd_ctx *f = ctx;
    *done = 0;
    int r = wait_fd(f->wfd, POLLOUT, timeout_ms);
    if (r == 0) return rfi_fail(RF_E_TIMEOUT, RF_NO_OFFSET, 0, "the agent does not read its input");
    if (r < 0) return rfi_fail(RF_E_CONNECTION, RF_NO_OFFSET, errno, "poll() on the agent's input failed");
    /* The fd stays blocking (it may be shared with its owner): POLLOUT on a
     * pipe promises room for PIPE_BUF bytes, so a write of at most that never
     * blocks past the timeout. */
    size_t chunk = n < PIPE_BUF ? n : PIPE_BUF;
    ssize_t w;
    do w = write_nosig(f->wfd, p, chunk); while (w < 0 && errno == EINTR);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return RF_OK;   /* 0 written; try again */
    if (w <= 0) return rfi_fail(RF_E_CONNECTION, RF_NO_OFFSET, errno, "the agent's input is closed");
    *done = (size_t)w;
    return RF_OK;
}

static rf_status fd_recv(void *ctx, uint8_t *p, size_t n, size_t *got, uint32_t timeout_ms)
{
    fd_ctx *f = ctx;
    *got = 0;
    int r = wait_fd(f->rfd, POLLIN, timeout_ms);
    if (r == 0) return rfi_fail(RF_E_TIMEOUT, RF_NO_OFFSET, 0, "no answer in time");
    if (r < 0) return rfi_fail(RF_E_CONNECTION, RF_NO_OFFSET, errno, "poll() on the agent's output failed");
    ssize_t rd;
    do rd = read(f->rfd, p, n); while (rd < 0 && errno == EINTR);
    if (rd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return RF_OK;
    if (rd == 0) return rfi_fail(RF_E_CONNECTION, RF_NO_OFFSET, 0, "the agent closed its output (it exited?)");
    if (rd < 0) return rfi_fail(RF_E_CONNECTION, RF_NO_OFFSET, errno, "reading the agent's output failed");
    *got = (size_t)rd;
    return RF_OK;
}

static void fd_close(void *ctx)
{
    fd_ctx *f = ctx;
    if (f->own) {
        close(f->wfd);   /* first: the agent sees end-of-file and stops */
        if (f->rfd != f->wfd) close(f->rfd);
    }
    free(f);
}

rf_status rf_transport_fds(int fd_read, int fd_write, int own, rf_transport *out)
{
    if (!out) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "out is NULL");
    memset(out, 0, sizeof *out);
    if (fd_read < 0 || fd_write < 0) return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "a file descriptor is negative");
    fd_ctx *f = malloc(sizeof *f);
    if (!f) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
    f->rfd = fd_read;
    f->wfd = fd_write;
    f->own = own;
    out->struct_size = sizeof *out;
    out->ctx = f;
    out->send = fd_send;
    out->recv = fd_recv;
    out->close = fd_close;
    return RF_OK;
}

rf_status rf_transport_handles(void *h_read, void *h_write, int own, rf_transport *out)
{
    (void)h_read; (void)h_write; (void)own;
    if (out) memset(out, 0, sizeof *out);
    return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "Windows handles: use rf_transport_fds here");
}

#else /* _WIN32 */

typedef struct h_ctx { HANDLE r, w; int own; } h_ctx;

/* Anonymous pipes have no overlapped I/O: a timed read polls PeekNamedPipe
 * (1 ms steps) until bytes are there, then reads at most those. */
static rf_status h_recv(void *ctx, uint8_t *p, size_t n, size_t *got, uint32_t timeout_ms)
{
    h_ctx *c = ctx;
    *got = 0;
    ULONGLONG end = GetTickCount64() + timeout_ms;
    for (;;) {
        DWORD avail = 0;
        if (!PeekNamedPipe(c->r, NULL, 0, NULL, &avail, NULL))
            return rfi_fail(RF_E_CONNECTION, RF_NO_OFFSET, GetLastError(), "the agent closed its output");
        if (avail) {
            DWORD want = (DWORD)(n < avail ? n : avail), rd = 0;
            if (!ReadFile(c->r, p, want, &rd, NULL) || rd == 0)
                return rfi_fail(RF_E_CONNECTION, RF_NO_OFFSET, GetLastError(), "reading the agent's output failed");
            *got = rd;
            return RF_OK;
        }
        if (timeout_ms != UINT32_MAX && GetTickCount64() >= end)
            return rfi_fail(RF_E_TIMEOUT, RF_NO_OFFSET, 0, "no answer in time");
        Sleep(1);
    }
}

/* A blocking WriteFile: pipe buffers (4 KiB+) hold a request's frame, and an
 * agent that stops reading is caught by the reply's timeout. Chunks of 64 KiB
 * keep one call short. */
static rf_status h_send(void *ctx, const uint8_t *p, size_t n, size_t *done, uint32_t timeout_ms)
{
    h_ctx *c = ctx;
    (void)timeout_ms;
    DWORD w = 0, chunk = (DWORD)(n < 65536 ? n : 65536);
    if (!WriteFile(c->w, p, chunk, &w, NULL))
        return rfi_fail(RF_E_CONNECTION, RF_NO_OFFSET, GetLastError(), "the agent's input is closed");
    *done = w;
    return RF_OK;
}

static void h_close(void *ctx)
{
    h_ctx *c = ctx;
    if (c->own) {
        CloseHandle(c->w);
        if (c->r != c->w) CloseHandle(c->r);
    }
    free(c);
}

rf_status rf_transport_handles(void *h_read, void *h_write, int own, rf_transport *out)
{
    if (!out) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "out is NULL");
    memset(out, 0, sizeof *out);
    if (!h_read || !h_write || h_read == INVALID_HANDLE_VALUE || h_write == INVALID_HANDLE_VALUE)
        return rfi_fail(RF_E_INVALID_HANDLE, RF_NO_OFFSET, 0, "a handle is invalid");
    h_ctx *c = malloc(sizeof *c);
    if (!c) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "out of memory");
    c->r = h_read;
    c->w = h_write;
    c->own = own;
    out->struct_size = sizeof *out;
    out->ctx = c;
    out->send = h_send;
    out->recv = h_recv;
    out->close = h_close;
    return RF_OK;
}

rf_status rf_transport_fds(int fd_read, int fd_write, int own, rf_transport *out)
{
    (void)fd_read; (void)fd_write; (void)own;
    if (out) memset(out, 0, sizeof *out);
    return rfi_fail(RF_E_NOT_SUPPORTED, RF_NO_OFFSET, 0, "file descriptors: use rf_transport_handles on Windows");
}

#endif
