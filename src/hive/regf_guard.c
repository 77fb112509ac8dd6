/*
 * regf_guard.c — the SIGBUS handler behind regf_guard.h, and the in-page
 * error filter for MSVC builds.
 */
#define _XOPEN_SOURCE 700 /* sigaction, siginfo_t, sigsetjmp, SA_ONSTACK under -std=c11 */
#include <errno.h>
#include <string.h>

#include "core/rf_internal.h"
#include "hive/regf_guard.h"

rf_status regf_guard_failed(const uint8_t *lo, const uint8_t *fault, int64_t native)
{
    uint64_t at = fault && fault >= lo ? (uint64_t)(fault - lo) : RF_NO_OFFSET;
    return rfi_fail(RF_E_IO, at, native ? native : EIO,
                    "the hive can no longer be read at 0x%llx: its file was truncated (or its storage "
                    "failed) while it was open; open_hive(copy=True) reads a private copy instead",
                    (unsigned long long)at);
}

#if REGF_GUARD_SIGNALS
#include <signal.h>
#include <stdatomic.h>

REGF_GUARD_TLS regf_guard *regf_guard_top;
atomic_int regf_guard_state;
static struct sigaction previous;   /* the handler ours replaced: every fault not ours goes there */

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    /* si_code > 0: a fault the kernel raised (BUS_ADRERR...), not a kill()
     * or raise(), whose si_addr means nothing */
    if (si && si->si_code > 0) {
        const uint8_t *a = (const uint8_t *)si->si_addr;
        for (regf_guard *g = regf_guard_top; g; g = g->prev) {
            if (a >= g->lo && a < g->hi) {
                g->fault = a;
                regf_guard_top = g->prev;
                /* SA_NODEFER: SIGBUS is not blocked in here, so the jump
                 * (which keeps the signal mask as it is) leaves it unblocked */
                siglongjmp(g->jb, 1);
            }
        }
    }
    /* Not ours: as if our handler were not there. */
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction) {
            previous.sa_sigaction(sig, si, uc);
            return;
        }
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    int fault = si && si->si_code > 0;
    if (previous.sa_handler == SIG_IGN && !fault) return; /* a sent SIGBUS the process ignores */
    /* The default action: restore it; a fault then recurs when we return
     * (and kills with the right status), a sent signal is raised again. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGBUS, &dfl, NULL);
    if (!fault) raise(sig);
}

void regf_guard_install(void)
{
    int expected = 0;
    if (atomic_load_explicit(&regf_guard_state, memory_order_acquire) == 2) return;
    /* one installer; a thread that loses the race runs unguarded until the
     * winner is done (a fault in that instant crashes, as without us) */
    if (!atomic_compare_exchange_strong(&regf_guard_state, &expected, 1)) return;
    /* `previous` is filled before our handler can run */
    if (sigaction(SIGBUS, NULL, &previous) != 0) {
        atomic_store(&regf_guard_state, 0);
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, NULL) != 0) {
        atomic_store(&regf_guard_state, 0);
        return;
    }
    atomic_store_explicit(&regf_guard_state, 2, memory_order_release);
}

rf_status regf_probe_end(const uint8_t *base, size_t len)
{
    rf_status st = RF_OK;
    if (!base || !len) return RF_OK;
    REGF_GUARD_BEGIN(base, len)
        (void)*(const volatile uint8_t *)(base + len - 1);
    REGF_GUARD_END(st)
    return st;
}

#elif REGF_GUARD_SEH

void regf_guard_install(void) {}

int regf_seh_filter(EXCEPTION_POINTERS *ep, const uint8_t *lo, const uint8_t *hi,
                    const uint8_t **fault, int64_t *ntstatus)
{
    const EXCEPTION_RECORD *r = ep->ExceptionRecord;
    /* ExceptionInformation: [0] read/write, [1] the address, [2] the NTSTATUS of the I/O */
    if (r->ExceptionCode != EXCEPTION_IN_PAGE_ERROR || r->NumberParameters < 3)
        return EXCEPTION_CONTINUE_SEARCH;
    const uint8_t *a = (const uint8_t *)r->ExceptionInformation[1];
    if (a < lo || a >= hi) return EXCEPTION_CONTINUE_SEARCH;
    *fault = a;
    *ntstatus = (int64_t)r->ExceptionInformation[2];
    return EXCEPTION_EXECUTE_HANDLER;
}

rf_status regf_probe_end(const uint8_t *base, size_t len)
{
    rf_status st = RF_OK;
    if (!base || !len) return RF_OK;
    REGF_GUARD_BEGIN(base, len)
        (void)*(const volatile uint8_t *)(base + len - 1);
    REGF_GUARD_END(st)
    return st;
}

#else /* no guard (mingw): nothing can be caught, so nothing is probed */

void regf_guard_install(void) {}

rf_status regf_probe_end(const uint8_t *base, size_t len)
{
    (void)base;
    (void)len;
    return RF_OK;
}

#endif
