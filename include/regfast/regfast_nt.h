/*
 * regfast_nt.h — what only the live registry (the nt backend, Windows) has.
 *
 * Everything here takes an rf_hive opened with rf_live_open() (regfast.h);
 * given an offline hive, every call fails with RF_E_INVALID_HANDLE. The
 * functions exist only in Windows builds of the library.
 *
 * How the nt backend serves the common rf_* API (regfast.h):
 *
 *  - rf_key tokens are slots of a per-hive key table, one slot per path
 *    opened or enumerated, which doubles as the open-once handle cache:
 *      bits 63..48  hive tag (distinct per rf_live_open; never 0)
 *      bit  47      0 = key token, 1 = value token
 *      bits 46..24  slot generation (bumped when a slot is recycled)
 *      bits 23..0   slot index + 1
 *    A token whose slot was recycled, or that belongs to another hive, is
 *    detected and fails with RF_E_INVALID_HANDLE: never a wrong key.
 *  - A slot holds at most one NT handle. Handles are bounded (LRU over
 *    `max_handles`): evicting a handle keeps the slot, whose token stays
 *    valid and is re-opened on next use relative to its deepest ancestor
 *    that still has a handle, in one NtOpenKeyEx. Slots are bounded too
 *    (LRU over `max_slots`, leaves first): recycling a slot makes its old
 *    tokens stale (RF_E_INVALID_HANDLE).
 *  - A path that is cached is trusted: rf_key_open() of a cached path makes
 *    no system call. When a call on a cached handle reports the key deleted
 *    (STATUS_KEY_DELETED), it returns RF_E_KEY_DELETED (1018), the slot
 *    becomes a tombstone (its tokens keep returning 1018, as a Windows
 *    handle to a deleted key does), and the next rf_key_open() of that path
 *    opens the key afresh. rf_key_subkeys() creates slots without opening
 *    them; if such a key is gone by its first use, that use returns 1018.
 *  - rf_value tokens name (key slot, value name) in a per-hive interning
 *    table of `max_values` entries (oldest recycled first; same layout with
 *    bit 47 set). rf_value_open() checks the value exists (one
 *    NtQueryValueKey) and interns the name as stored.
 *  - *Borrowed* pointers the nt backend returns (names, value data,
 *    security descriptors, rf_value_read() data) point into per-thread
 *    scratch buffers: valid until the next call into any live hive from the
 *    same thread, and never to be freed. Steady-state reads allocate nothing.
 *  - rf_read_values() writes straight into the caller's arena: each row is
 *    the kernel's record (KEY_VALUE_PARTIAL_INFORMATION, or
 *    KEY_VALUE_FULL_INFORMATION with RF_BATCH_FULL or names == NULL) and
 *    rf_batch.offset points at the data inside it, 8-aligned for Partial.
 *    On RF_E_MORE_DATA, arena_used is an upper bound that fits every row.
 *    With names == NULL, rows come from NtEnumerateValueKey (Full) and the
 *    name column points at the names inside the arena (NULL ptr, nbytes
 *    needed, on rows with status 234). Rows a type filter refuses (13) keep
 *    their type, as in the regf backend; the token column gets interned
 *    value tokens. A Partial batch with names uses NtQueryMultipleValueKey
 *    (one kernel transition) once a probe proved it works; see
 *    rf_live_multi_state().
 *  - rf_live_open() with a root that is not an RF_HKEY_* fails with
 *    RF_E_INVALID_HANDLE, as RegOpenKeyExW does for a bogus HKEY.
 *  - Unsupported ops: rf_hive_get_info() -> RF_E_NOT_SUPPORTED (a live root
 *    has no base block); rf_hive_mapping() -> RF_OK with NULL. rf_key_parent()
 *    works (the slot table keeps parent links); the root has none (2).
 *  - HKCR is \Registry\Machine\Software\Classes: the NT API has no merged
 *    per-user view; read HKCU\Software\Classes for the per-user part.
 *  - rf_last_error()->native holds the NTSTATUS for Nt* failures (values
 *    >= 0x80000000) or the Win32 code for Reg* and other Win32 failures.
 */
#ifndef REGFAST_NT_H
#define REGFAST_NT_H

#include "regfast/regfast.h"

#ifdef __cplusplus
extern "C" {
#endif


/* ------------------------------------------------------------------------ */
/* Handle cache                                                              */
/* ------------------------------------------------------------------------ */

/** Counters of one live hive, for tests and profiling. */
typedef struct rf_live_stats {
    size_t   struct_size;      /**< sizeof(rf_live_stats) */
    uint64_t lookups;          /**< key lookups through the slot table */
    uint64_t hits;             /**< ... answered without a system call */
    uint64_t opens;            /**< NtOpenKeyEx / RegOpenKeyExW calls that succeeded */
    uint64_t reopens;          /**< of which: slots whose handle had been evicted (or never opened) */
    uint64_t handle_evictions; /**< handles closed by the LRU bound */
    uint64_t slot_recycles;    /**< slots recycled (their tokens became stale) */
    uint64_t invalidations;    /**< slots turned into tombstones by STATUS_KEY_DELETED */
    uint64_t buffer_grows;     /**< value reads retried with a larger buffer */
    uint64_t regrows;          /**< ... where the value grew between two calls */
    uint64_t multi_batches;    /**< batches served by one NtQueryMultipleValueKey */
    uint32_t handles_open;     /**< NT handles held now (the root's included) */
    uint32_t slots_used;       /**< key slots in use now, tombstones included */
    uint32_t max_handles;      /**< current bounds */
    uint32_t max_slots;
    uint32_t max_values;
    uint32_t last_open_components; /**< path components in the last open call */
} rf_live_stats;

/** Fills *out with the hive's counters (a consistent snapshot). */
rf_status rf_live_get_stats(rf_hive *h, rf_live_stats *out);

/**
 * Sets the cache bounds (defaults 1024 handles, 65536 key slots, 65536
 * value entries); 0 keeps a bound. Lowering max_handles closes handles now;
 * lowering the others recycles lazily. Minimums: 4 handles, 64 slots,
 * 64 values; at most 2^24 - 1 slots or values.
 */
rf_status rf_live_set_limits(rf_hive *h, uint32_t max_handles, uint32_t max_slots,
                             uint32_t max_values);

/**
 * Opens a whole path with at most one open call, relative to the deepest
 * ancestor already in the cache (rf_key_open() goes component by component
 * through the backend's key_child, one open per uncached component).
 * Same contract as rf_key_open_utf16().
 */
rf_status rf_live_key_open(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars,
                           rf_key *out);

/** The key's kernel path (NtQueryKey KeyNameInformation), e.g.
 *  "\REGISTRY\USER\S-1-5-21-...\Software\X" (*borrowed*, UTF-16). */
rf_status rf_live_key_path(rf_hive *h, rf_key k, rf_name *out);

/* ------------------------------------------------------------------------ */
/* Enumeration by index (NtEnumerateKey / NtEnumerateValueKey)               */
/* ------------------------------------------------------------------------ */

/**
 * The index-th subkey's name (*borrowed*, UTF-16) and last-write FILETIME.
 * @retval RF_E_NO_MORE_ITEMS index is past the last subkey (259)
 */
rf_status rf_live_enum_subkey(rf_hive *h, rf_key k, uint32_t index, rf_name *name,
                              uint64_t *last_write);

/**
 * The index-th value: name, type and data (all *borrowed*). Wine returns
 * values sorted by name; Windows in creation order.
 * @retval RF_E_NO_MORE_ITEMS index is past the last value (259)
 */
rf_status rf_live_enum_value(rf_hive *h, rf_key k, uint32_t index, rf_name *name,
                             uint32_t *type, const uint8_t **data, size_t *len);

/* ------------------------------------------------------------------------ */
/* Typed reads with RegGetValueW semantics                                   */
/* ------------------------------------------------------------------------ */

/* RRF_* flags, with the Win32 values */
#define RF_RRF_RT_REG_NONE       0x00000001u
#define RF_RRF_RT_REG_SZ         0x00000002u
#define RF_RRF_RT_REG_EXPAND_SZ  0x00000004u
#define RF_RRF_RT_REG_BINARY     0x00000008u
#define RF_RRF_RT_REG_DWORD      0x00000010u
#define RF_RRF_RT_REG_MULTI_SZ   0x00000020u
#define RF_RRF_RT_REG_QWORD      0x00000040u
#define RF_RRF_RT_DWORD          (RF_RRF_RT_REG_BINARY | RF_RRF_RT_REG_DWORD)
#define RF_RRF_RT_QWORD          (RF_RRF_RT_REG_BINARY | RF_RRF_RT_REG_QWORD)
#define RF_RRF_RT_ANY            0x0000FFFFu
#define RF_RRF_NOEXPAND          0x10000000u
#define RF_RRF_ZEROONFAILURE     0x20000000u

/**
 * Reads one value the way RegGetValueW does, on top of NtQueryValueKey
 * (tests/c/nt/test_nt_typed.c checks 2,772 type x flags x buffer cases
 * against RegGetValueW itself):
 *  - the type must be allowed by the RRF_RT_* bits, else 1630 — types
 *    outside the seven RRF_RT_REG_* ones (REG_LINK, resource lists...) are
 *    refused even by RRF_RT_ANY, as RegGetValueW does; a REG_BINARY passes
 *    RRF_RT_DWORD / RRF_RT_QWORD only at 4 / 8 bytes (else 1629);
 *  - REG_EXPAND_SZ is expanded (ExpandEnvironmentStringsW) and returned as
 *    REG_SZ unless RRF_NOEXPAND; RRF_RT_REG_EXPAND_SZ without RRF_NOEXPAND
 *    (and without all of RRF_RT_ANY) is 87;
 *  - string data stored without its terminator comes back terminated, the
 *    length counting what was added: one NUL for REG_SZ/REG_EXPAND_SZ, up
 *    to two for REG_MULTI_SZ, an odd trailing byte padded to a whole char
 *    (Wine's RegGetValueW adds only the REG_SZ NUL); empty data stays empty;
 *  - the type and the size are reported even when the type is refused;
 *  - RRF_ZEROONFAILURE zeroes `buf` (all `cap` bytes) on failure.
 * RRF_SUBKEY_WOW64* flags are ignored: the hive's view applies.
 * @param name     value name, `nchars` UTF-16 units (0 = the default value)
 * @param buf      caller buffer, or NULL to ask for the size
 * @param type_out receives the type returned (may be NULL)
 * @param len_out  receives the bytes written, or needed on RF_E_MORE_DATA;
 *                 required when buf is not NULL
 * @retval RF_E_MORE_DATA  `cap` too small (*len_out = bytes needed)
 * @retval RF_E_UNSUPPORTED_TYPE the type is filtered out (1630)
 * @retval RF_E_DATATYPE_MISMATCH a REG_BINARY of the wrong size for RRF_RT_DWORD/QWORD (1629)
 */
rf_status rf_live_get_value(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars,
                            uint32_t rrf_flags, void *buf, size_t cap, uint32_t *type_out,
                            size_t *len_out);

/* ------------------------------------------------------------------------ */
/* NtQueryMultipleValueKey                                                   */
/* ------------------------------------------------------------------------ */

/**
 * Whether rf_read_values() may serve a Partial batch with one
 * NtQueryMultipleValueKey: 0 not probed yet, 1 it works, -1 it does not
 * (missing, or a stub — Wine 8's returns success and fills nothing) and
 * batches use one NtQueryValueKey per value. Decided once per process, at the
 * first batch, by a probe read of a value that batch just read one by one:
 * never by trusting the status. Process-wide.
 */
int rf_live_multi_state(void);

/** Forces the decision: 1 use it, -1 never, 0 probe again at the next batch. */
void rf_live_set_multi_state(int state);

/* ------------------------------------------------------------------------ */
/* Saving and privileges                                                     */
/* ------------------------------------------------------------------------ */

/**
 * Saves a key and its subtree to a new file with RegSaveKeyExW (`format`:
 * 1 REG_STANDARD_FORMAT, 2 REG_LATEST_FORMAT, 4 REG_NO_COMPRESSION; 0 means
 * 2). The result is a regf hive rf_hive_open() reads — on Windows; Wine 8
 * writes its own text format ("WINE REGISTRY Version 2") instead.
 * @param path  the file, NUL-terminated UTF-16; it must not exist (183)
 * @retval RF_E_PRIVILEGE_NOT_HELD SeBackupPrivilege is not enabled (1314)
 */
rf_status rf_live_save_key(rf_hive *h, rf_key k, const uint16_t *path, uint32_t format);

/**
 * Enables or disables a privilege of the process token, e.g.
 * u"SeBackupPrivilege" (NUL-terminated).
 * @retval 1300 ERROR_NOT_ALL_ASSIGNED: the token does not hold it
 */
rf_status rf_live_enable_privilege(const uint16_t *name, int enable);

/** The Win32 error code an NTSTATUS maps to (regfast's one table). */
rf_status rf_live_status_to_error(uint32_t ntstatus);

/* ------------------------------------------------------------------------ */
/* Transactions (KTM) — src/nt/nt_tx.c                                        */
/* ------------------------------------------------------------------------ */

/** A KTM transaction (CreateTransaction handle). */
typedef struct rf_live_tx rf_live_tx;

/**
 * Whether registry transactions really work here: RF_OK, or
 * RF_E_NOT_SUPPORTED (120) with the reason in rf_last_error() (native = the
 * Win32 code of the call that failed). Every KTM export is loaded with
 * GetProcAddress (Wine lacks RegOpenKeyTransactedW). Decided once per
 * process by a probe, never by trusting a status: a volatile key created
 * inside a transaction must be invisible outside it, and gone after the
 * rollback. Wine 8 fails it (RegCreateKeyTransactedW -> 120).
 */
rf_status rf_live_tx_available(void);

/** Starts a transaction (CreateTransaction; timeout_ms 0 = none). RF_E_NOT_SUPPORTED
 *  unless rf_live_tx_available(). `description` may be NULL (NUL-terminated). */
rf_status rf_live_tx_begin(uint32_t timeout_ms, const uint16_t *description, rf_live_tx **out);

/** CommitTransaction. The transaction stays open until rf_live_tx_close(). */
rf_status rf_live_tx_commit(rf_live_tx *tx);

/** RollbackTransaction. */
rf_status rf_live_tx_rollback(rf_live_tx *tx);

/** Closes the handle; KTM rolls back a transaction closed before its commit. NULL is fine. */
void rf_live_tx_close(rf_live_tx *tx);

/**
 * Opens (create = 0: RegOpenKeyTransactedW) or creates (RegCreateKeyTransactedW)
 * a key inside the transaction; every write through *out (an HKEY: RegSetValueExW,
 * RegDeleteValueW, RegDeleteTreeW...) belongs to the transaction.
 * @param parent  an open HKEY or a predefined root (HKEY_CURRENT_USER...)
 * @param path    NUL-terminated UTF-16
 * @param access  REGSAM, KEY_WOW64_* view bits included
 * @param disposition 1 created, 2 opened (may be NULL)
 */
rf_status rf_live_tx_open_key(rf_live_tx *tx, void *parent, const uint16_t *path, uint32_t access,
                              int create, void **out, uint32_t *disposition);

/** RegDeleteKeyTransactedW(parent, sub, view) inside the transaction. */
rf_status rf_live_tx_delete_key(rf_live_tx *tx, void *parent, const uint16_t *sub, uint32_t view);

#ifdef __cplusplus
}
#endif

#endif /* REGFAST_NT_H */
