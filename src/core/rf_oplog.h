/*
 * rf_oplog.h — an operation log: a ready-made rf_hook_fn (rf_hook.c) that
 * turns each rf_op_record into a fixed-size row with the key's path and the
 * value's name resolved to interned string ids, and keeps the rows until a
 * consumer takes them in bulk (regfast._hooks: the Python profiler and
 * hooks). Not part of the installed C API: the binding's helper.
 *
 * Why here and not in Python: a Key walk makes several rf_* calls per key;
 * one Python call per rf_* call would cost more than the calls themselves.
 * The log costs a lock, a hash lookup and a 72-byte append per call.
 *
 * Paths. The record names a key by its token (and, for an open, the
 * parent's token and the relative path); the log learns token -> path from
 * what the hooks see — hive_root, key_open/key_child/key_create/key_parent
 * results, key_subkeys' tokens (their parent) with key_name's answer — and,
 * for the regf backend only, resolves an unknown token itself with
 * rf_key_parent/rf_key_name (a pointer walk in the mapped file). Other
 * backends are never called by the log: a remote rf_key_name may be a round
 * trip, and a profiler must not add traffic. A path it cannot learn is -1.
 * Value tokens map to (key path, value name) from value_open.
 *
 * Reentrancy: rf_* calls the log makes are not logged (a thread-local
 * guard), and the log is meant to be installed from a module whose own copy
 * of the core has no hook installed (the static library is linked into each
 * extension module: each has its own rf_hook_set).
 */
#ifndef RF_OPLOG_H
#define RF_OPLOG_H

#include <stddef.h>
#include <stdint.h>
#include "regfast/regfast.h"

#define RF_OPLOG_VETOED 0x2u   /* rf_oprow.flags: a PRE callback vetoed it (RF_OPREC_WRITE is 0x1) */
#define RF_OPLOG_FILE   0x4u   /* rf_oprow.flags: `path` is a file name (hive_open), stored as bytes */
#define RF_OPLOG_PAYLOAD 0x8u  /* rf_oprow.flags: `value` is a request's payload (RF_OP_REQUEST), bytes */
/* payloads longer than this are not kept (value -1): admin requests are a
 * few hundred bytes; a bulk request must not grow the string table */
#define RF_OPLOG_MAX_PAYLOAD 4096u

enum { RF_OPLOG_NONE = 0, RF_OPLOG_REGF = 1, RF_OPLOG_NT = 2, RF_OPLOG_REMOTE = 3, RF_OPLOG_OTHER = 4 };

/* One operation, as the log keeps it (72 bytes, no pointers). */
typedef struct rf_oprow {
    uint64_t start_ns;     /* monotonic clock at entry (CLOCK_MONOTONIC / QPC) */
    uint64_t duration_ns;  /* POST */
    uint64_t count;        /* POST: rows, subkeys, keys... (rf_op) */
    uint64_t bytes;        /* POST: data bytes read or written */
    uint64_t key;          /* the record's key token (the parent for opens) */
    uint32_t hive;         /* 1, 2... per hive the log has seen; 0 none */
    int32_t  path;         /* string id: the key's path in its hive ("" is the root), -1 unknown */
    int32_t  value;        /* string id: the value name, the new name of a rename; -1 none */
    int32_t  status;       /* POST: rf_status */
    uint16_t op;           /* RF_OP_* */
    uint8_t  backend;      /* RF_OPLOG_REGF... */
    uint8_t  flags;        /* RF_OPREC_WRITE | RF_OPLOG_VETOED | RF_OPLOG_FILE */
    uint32_t round_trips;  /* POST: rf_op_record.round_trips (saturated) */
    uint8_t  phase;        /* RF_HOOK_PRE or RF_HOOK_POST */
    uint8_t  pad1_;
    uint16_t request_op;   /* RF_OP_REQUEST: the agent op (ag_ops.def) */
    uint8_t  pad_[4];
} rf_oprow;

typedef struct rf_oplog rf_oplog;

/* The consumer's per-operation callback (PRE: nonzero vetoes), called
 * outside the log's lock, in the thread making the rf_* call. */
typedef int (*rf_oplog_fn)(void *ctx, const rf_oprow *row);
/* Called (outside the lock) once the kept rows reach `full_at`, so that the
 * consumer can take them; not called again until they were taken. */
typedef void (*rf_oplog_full_fn)(void *ctx);

/* A new log; never freed (a hook may still be running with it). Safe
 * across fork() for the first 16 made. */
rf_oplog *rf_oplog_new(void);

/* What the log does per record: keep rows (for rf_oplog_take), call `fn`
 * in `fn_phases` (RF_HOOK_PRE | RF_HOOK_POST). Thread-safe. */
void rf_oplog_config(rf_oplog *L, int keep_rows, size_t full_at, rf_oplog_fn fn, rf_oplog_full_fn full_fn,
                     void *ctx, uint32_t fn_phases);

/* The rf_hook_fn: install with rf_hook_set(rf_oplog_hook, L, RF_HOOK_PRE | RF_HOOK_POST). */
int rf_oplog_hook(void *ctx, const rf_op_record *rec);

/* Rows kept now. */
size_t rf_oplog_count(rf_oplog *L);

/* Moves up to `cap` kept rows, oldest first, into `out` and returns how
 * many; *lost_out: rows dropped since the last take for want of memory. */
size_t rf_oplog_take(rf_oplog *L, rf_oprow *out, size_t cap, uint64_t *lost_out);

/* Frees the (kept, reused) row buffer and the rows in it. */
void rf_oplog_release(rf_oplog *L);

/* Interned strings: how many there are, and string `id` (stable storage
 * for the log's life; UTF-16LE when *utf16, else bytes as given). */
size_t rf_oplog_nstrings(rf_oplog *L);
int rf_oplog_string(rf_oplog *L, int32_t id, const void **p, size_t *nbytes, int *utf16);

/* Forgets what it learnt about hives (token -> path) and every string but
 * "" (id 0), e.g. when it is uninstalled: a hive closed while no hook ran
 * could have its address reused, and the strings would grow without end. */
void rf_oplog_forget(rf_oplog *L);

#endif
