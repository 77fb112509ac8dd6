/*
 * regf_guard.h — a page of the mapping that vanishes becomes an error, not a crash.
 *
 * Bounds checks keep every read inside the mapping, but a file mapping can
 * lose pages under us: another process truncates the hive (POSIX: reading a
 * page past the new end raises SIGBUS) or the storage behind it fails
 * (Windows: EXCEPTION_IN_PAGE_ERROR). No check can see that coming, so the C
 * entry points that read the mapping run inside a guard: a thread-local
 * record "this thread is inside regfast reading [lo, hi); on a fault there,
 * come back here". The SIGBUS handler (installed once, chaining to whatever
 * handler was there before) jumps back only for a fault inside a guarded
 * range on the thread that holds the guard; every other fault goes on to the
 * previous handler, or to the default action, as if we were not there.
 *
 * The guarded code between REGF_GUARD_BEGIN and REGF_GUARD_END must be plain
 * C that owns nothing a jump would leak: no Python calls, no locks, no
 * allocation whose pointer lives only in a register. Code that allocates
 * (scan, read_values) keeps its pointers in a struct and frees them after
 * REGF_GUARD_END; code that calls out (a scan's progress callback) suspends
 * the guard around the call.
 *
 * What a guard cannot cover: Python code reading a memoryview into the
 * mapping, and the Cython decoders while they build Python objects (jumping
 * out of CPython would corrupt it). Those call regf_probe_end() first, which
 * tells, under a guard, whether the file still covers the whole mapping: a
 * file truncated before the call raises cleanly; one truncated during a
 * decode can still end the process. A hive opened with RF_OPEN_COPY reads a
 * private copy and cannot fault at all.
 *
 * Platforms: POSIX (sigaction + sigsetjmp). MSVC: __try/__except on
 * EXCEPTION_IN_PAGE_ERROR inside the mapping (not compiled by this project's
 * CI, which cross-builds with mingw). mingw builds have no guard: a fault
 * there ends the process as before. On Windows a mapped file cannot be
 * truncated at all (SetEndOfFile fails with ERROR_USER_MAPPED_FILE), so only
 * failing storage (a network share gone, removable media pulled) can fault.
 */
#ifndef REGF_GUARD_H
#define REGF_GUARD_H

#include <stddef.h>
#include <stdint.h>
#include "regfast/regfast.h"

#if defined(_MSC_VER)
#define REGF_GUARD_SEH 1
#elif !defined(_WIN32)
#define REGF_GUARD_SIGNALS 1
#endif

#if REGF_GUARD_SIGNALS
#include <setjmp.h>

typedef struct regf_guard {
    sigjmp_buf               jb;
    const uint8_t           *lo, *hi;   /* the guarded range */
    const uint8_t *volatile  fault;     /* set by the handler: the address that faulted */
    struct regf_guard       *prev;      /* the guard this one nests in */
} regf_guard;

#include <stdatomic.h>

/* The innermost guard of this thread. Initial-exec TLS: reading it from the
 * signal handler must not allocate (the general-dynamic model may, on a
 * thread's first access to a dlopen'ed module's TLS); 8 bytes of the static
 * TLS surplus glibc keeps for dlopen'ed modules. */
#if defined(__GNUC__) && defined(__ELF__)
#define REGF_GUARD_TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define REGF_GUARD_TLS _Thread_local
#endif
extern REGF_GUARD_TLS regf_guard *regf_guard_top;
extern atomic_int regf_guard_state;  /* 0: handler not installed, 1: being installed, 2: installed */
void regf_guard_install(void);

/* Inline: they bracket every C entry point (a guard costs about a sigsetjmp). */
static inline void regf_guard_push(regf_guard *g, const void *lo, size_t len)
{
    if (atomic_load_explicit(&regf_guard_state, memory_order_relaxed) != 2) regf_guard_install();
    g->lo = (const uint8_t *)lo;
    g->hi = g->lo + len;
    g->fault = NULL;
    g->prev = regf_guard_top;
    regf_guard_top = g;
    /* the handler runs on this thread: a compiler barrier is all it takes */
    atomic_signal_fence(memory_order_seq_cst);
}

static inline void regf_guard_pop(regf_guard *g)
{
    atomic_signal_fence(memory_order_seq_cst);
    regf_guard_top = g->prev;
}

/* Lifts this thread's guards around a call out to the caller's code (a
 * progress callback): a fault there is not ours to recover from. */
static inline regf_guard *regf_guard_suspend(void)
{
    regf_guard *g = regf_guard_top;
    atomic_signal_fence(memory_order_seq_cst);
    regf_guard_top = NULL;
    atomic_signal_fence(memory_order_seq_cst);
    return g;
}

static inline void regf_guard_resume(regf_guard *saved)
{
    atomic_signal_fence(memory_order_seq_cst);
    regf_guard_top = saved;
    atomic_signal_fence(memory_order_seq_cst);
}

/* `if (!sigsetjmp(...))` must be the whole controlling expression (C11 7.13.1.1). */
#define REGF_GUARD_BEGIN(lo_, len_)                \
    {                                              \
        regf_guard rg_guard_;                      \
        regf_guard_push(&rg_guard_, (lo_), (len_)); \
        if (!sigsetjmp(rg_guard_.jb, 0)) {
#define REGF_GUARD_END(st_)                                             \
            regf_guard_pop(&rg_guard_);                                 \
        } else {                                                        \
            (st_) = regf_guard_failed(rg_guard_.lo, rg_guard_.fault, 0); \
        }                                                               \
    }

#elif REGF_GUARD_SEH
#include <windows.h>

typedef struct regf_guard { int unused; } regf_guard;
int regf_seh_filter(EXCEPTION_POINTERS *ep, const uint8_t *lo, const uint8_t *hi,
                    const uint8_t **fault, int64_t *ntstatus);
static inline regf_guard *regf_guard_suspend(void) { return NULL; }
static inline void regf_guard_resume(regf_guard *saved) { (void)saved; }

#define REGF_GUARD_BEGIN(lo_, len_)                                        \
    {                                                                      \
        const uint8_t *rg_lo_ = (const uint8_t *)(lo_), *rg_hi_ = rg_lo_ + (len_); \
        const uint8_t *rg_fault_ = NULL;                                   \
        int64_t rg_nt_ = 0;                                                \
        __try {
#define REGF_GUARD_END(st_)                                                               \
        } __except (regf_seh_filter(GetExceptionInformation(), rg_lo_, rg_hi_, &rg_fault_, &rg_nt_)) { \
            (st_) = regf_guard_failed(rg_lo_, rg_fault_, rg_nt_);                          \
        }                                                                                 \
    }

#else /* mingw: no guard */
typedef struct regf_guard { int unused; } regf_guard;
static inline regf_guard *regf_guard_suspend(void) { return NULL; }
static inline void regf_guard_resume(regf_guard *saved) { (void)saved; }
#define REGF_GUARD_BEGIN(lo_, len_) { (void)(lo_); (void)(len_);
#define REGF_GUARD_END(st_) }
#endif

/* The error of a fault at `fault` in the range starting at `lo`: RF_E_IO,
 * native EIO (or the NTSTATUS of an in-page error), the file offset. */
rf_status regf_guard_failed(const uint8_t *lo, const uint8_t *fault, int64_t native);

#if !REGF_GUARD_SIGNALS
/* Installs the SIGBUS handler (once; later calls do nothing). Opening a hive
 * calls it; the Python module calls it at import. (POSIX: declared above.) */
void regf_guard_install(void);
#endif

/*
 * RF_OK when the last byte of [base, base + len) can still be read, i.e. the
 * file still covers every page of its mapping (a shrunk file faults on its
 * last page first); else the RF_E_IO of regf_guard_failed. For code that is
 * about to read the mapping outside a guard (the Cython decoders).
 */
rf_status regf_probe_end(const uint8_t *base, size_t len);

#endif
