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

/**
 * Is the key `path` below `k` (one or more components) a symbolic link? The
 * last component is looked at as itself (REG_OPTION_OPEN_LINK), not as the
 * target it opens as; links before it are followed. The key's token
 * (rf_key_is_link) asks this of its parent.
 * @retval RF_E_NOT_FOUND no such key (2)
 */
rf_status rf_live_subkey_is_link(rf_hive *h, rf_key k, const uint16_t *path, size_t nchars, int *out);

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
 * The index-th subkey's own node: its subkeys' count (0 for a symbolic link,
 * which enumeration does not follow) and last-write FILETIME
 * (NtEnumerateKey KeyFullInformation, which has no name: pair it with
 * rf_live_enum_subkey by index and last write).
 * @retval RF_E_NO_MORE_ITEMS index is past the last subkey (259)
 */
rf_status rf_live_enum_subkey_node(rf_hive *h, rf_key k, uint32_t index, uint32_t *n_subkeys,
                                   uint64_t *last_write);

/**
 * 1 if the kernel path `path` (\\REGISTRY, \\REGISTRY\\MACHINE, ...\\USER,
 * ...\\A, ...\\WC, any case) is a container Windows mounts hives in: its
 * subkeys' nodes are mount points that list no subkeys of their own, so
 * enumeration cannot tell a leaf there (rf_key_subkeys_hinted gives no hints).
 */
int rf_live_is_mount_container(const uint16_t *path, size_t nchars);

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
 *  unless rf_live_tx_available(). `description` may be NULL (NUL-terminated, at
 *  most 63 characters: KTM's limit; RF_E_INVALID_PARAMETER when longer, checked first). */
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
 * RegDeleteValueW...) belongs to the transaction.
 * @param parent  an open HKEY or a predefined root (HKEY_CURRENT_USER...)
 * @param path    NUL-terminated UTF-16
 * @param access  REGSAM, KEY_WOW64_* view bits included
 * @param disposition 1 created, 2 opened (may be NULL)
 */
rf_status rf_live_tx_open_key(rf_live_tx *tx, void *parent, const uint16_t *path, uint32_t access,
                              int create, void **out, uint32_t *disposition);

/**
 * Deletes `sub` under `parent` inside the transaction, with its whole
 * subtree when flags holds RF_DELETE_TREE: every key opened by
 * RegOpenKeyTransactedW and deleted by NtDeleteKey. That open takes no
 * REG_OPTION_OPEN_LINK, so unlike rf_key_delete() a symbolic link is
 * followed to its target, as RegDeleteKeyTransactedW does.
 */
rf_status rf_live_tx_delete_key(rf_live_tx *tx, void *parent, const uint16_t *sub, uint32_t view, uint32_t flags);

/* ------------------------------------------------------------------------ */
/* Administration (nt_admin.c): rename, security, privileges, hives, MUI     */
/* ------------------------------------------------------------------------ */
/* Optional exports (NtRenameKey, RegRenameKey, RegLoadAppKeyW,
 * RegLoadMUIStringW) are loaded with GetProcAddress: RF_E_NOT_SUPPORTED when
 * absent, never a program that fails to load. Calls that need rights the
 * cached handle may lack (WRITE_DAC, WRITE_OWNER, ACCESS_SYSTEM_SECURITY)
 * open a second handle to the same key with exactly those rights, so the
 * system checks them as RegOpenKeyExW would. */

/**
 * Renames a key in place (NtRenameKey; RegRenameKey where ntdll lacks it).
 * Its values and subkeys stay; its cache slot becomes a tombstone, so the
 * old path reopens afresh (and is gone). The hive's handle needs KEY_WRITE.
 * @param new_name the new last component, `nchars` UTF-16 units
 * @retval RF_E_INVALID_PARAMETER empty, over 255 chars, a backslash or a NUL
 *         in the name, or k is the hive's root — checked before any call (87)
 * @retval 183 ERROR_ALREADY_EXISTS a sibling has that name (checked first, so
 *         Windows and Wine answer alike)
 */
rf_status rf_live_rename_key(rf_hive *h, rf_key k, const uint16_t *new_name, size_t nchars);

/* SECURITY_INFORMATION bits: RF_SI_* in regfast.h */

/**
 * The key's security descriptor (RegGetKeySecurity), self-relative,
 * *borrowed* (per-thread scratch). `si` 0 means owner, group and DACL, plus
 * the SACL only when SeSecurityPrivilege is enabled in the calling thread's
 * token (reading a SACL needs it on Windows); *si_out says what is in it.
 * Feed the bytes to rf_sd_to_sddl() — the converter the hive backend uses.
 */
rf_status rf_live_get_security(rf_hive *h, rf_key k, uint32_t si, const uint8_t **sd, size_t *len,
                               uint32_t *si_out);

/**
 * Sets the parts of the key's descriptor present in an SDDL string
 * (ConvertStringSecurityDescriptorToSecurityDescriptorW, then
 * RegSetKeySecurity). The string is validated first: empty, non-ASCII,
 * unparseable or a descriptor with none of O:/G:/D:/S: fails with 1336
 * ERROR_INVALID_ACL / 87 before anything is written — the key keeps its
 * descriptor.
 * @param sddl NUL-terminated UTF-16
 * @param si_out receives the RF_SI_* parts written (may be NULL)
 */
rf_status rf_live_set_security(rf_hive *h, rf_key k, const uint16_t *sddl, uint32_t *si_out);

/* Access modes of rf_live_grant (ACCESS_MODE values) */
#define RF_ACE_GRANT  1u   /* GRANT_ACCESS: merge with existing rights */
#define RF_ACE_SET    2u   /* SET_ACCESS: replace the trustee's rights */
#define RF_ACE_DENY   3u   /* DENY_ACCESS */
#define RF_ACE_REVOKE 4u   /* REVOKE_ACCESS: remove the trustee's ACEs */

/**
 * Adds an ACE for a trustee to the key's DACL (GetSecurityInfo,
 * SetEntriesInAclW, SetSecurityInfo).
 * @param trustee "S-1-..." or an account name ("Everyone", "Users", ...)
 * @param rights  an access mask (KEY_READ 0x20019, KEY_ALL_ACCESS 0xF003F...)
 * @param mode    RF_ACE_*
 * @param inherit ACE flags: 0, or CONTAINER_INHERIT_ACE (2) | ... (0..0x1F)
 * @retval 1332 ERROR_NONE_MAPPED the name is not an account
 * @retval 1337 ERROR_INVALID_SID a malformed "S-..." string
 */
rf_status rf_live_grant(rf_hive *h, rf_key k, const uint16_t *trustee, uint32_t rights, uint32_t mode,
                        uint32_t inherit);

/**
 * Makes the calling process's user the key's owner (SetSecurityInfo with
 * OWNER_SECURITY_INFORMATION), enabling SeTakeOwnershipPrivilege for the
 * call when the token holds it and restoring its state afterwards.
 * @retval RF_E_ACCESS_DENIED no WRITE_OWNER and no privilege to override it
 */
rf_status rf_live_take_ownership(rf_hive *h, rf_key k);

/**
 * A privilege of the process token: whether the token holds it and whether
 * it is enabled.
 * @retval 1313 ERROR_NO_SUCH_PRIVILEGE an unknown name
 */
rf_status rf_live_privilege_state(const uint16_t *name, int *held, int *enabled);

/**
 * Enables (enable 1) or disables (0) a privilege, reporting its state before
 * (*was_enabled may be NULL) so callers can restore it.
 * @retval RF_E_PRIVILEGE_NOT_HELD the token does not hold it (1314; Win32
 *         says ERROR_NOT_ALL_ASSIGNED with success — mapped here)
 * @retval 1313 ERROR_NO_SUCH_PRIVILEGE an unknown name
 */
rf_status rf_live_set_privilege(const uint16_t *name, int enable, int *was_enabled);

/* What a hive file looks like (rf_live_file_kind) */
#define RF_FILE_REGF 1   /* a regf hive ("regf" signature) */
#define RF_FILE_WINE 2   /* Wine's text format ("WINE REGISTRY Version 2") */
#define RF_FILE_OTHER 3  /* anything else, or too short */

/**
 * Checks a hive path before any registry call is made with it: absolute
 * (drive or UNC), an existing regular file, and says what it holds.
 * @retval RF_E_INVALID_PARAMETER relative or empty path (87)
 * @retval RF_E_NOT_FOUND the file does not exist (2)
 * @retval RF_E_ACCESS_DENIED a directory, or unreadable (5)
 */
rf_status rf_live_file_kind(const uint16_t *path, int *kind);

/**
 * Loads a hive file as root\subkey (RegLoadKeyW; root RF_HKEY_LOCAL_MACHINE
 * or RF_HKEY_USERS). Needs SeBackupPrivilege and SeRestorePrivilege enabled.
 * The file is checked first (rf_live_file_kind): a file that is neither a
 * regf hive nor Wine's format fails with 1017 before the call. Wine accepts
 * only files it saved itself and refuses a regf hive with 1017 — leaving an
 * empty root\subkey behind, which is deleted here: a failed load leaves
 * nothing.
 * @retval 183 ERROR_ALREADY_EXISTS root\subkey exists already
 * @retval 1017 ERROR_NOT_REGISTRY_FILE
 */
rf_status rf_live_load_hive(uint32_t root, const uint16_t *subkey, const uint16_t *path);

/** Unloads a hive loaded with rf_live_load_hive (RegUnLoadKeyW). */
rf_status rf_live_unload_hive(uint32_t root, const uint16_t *subkey);

/**
 * Replaces the key's subtree with a regf hive file's (RegRestoreKeyW;
 * flags: 8 REG_FORCE_RESTORE, 0x20 REG_WHOLE_HIVE_VOLATILE...). Needs
 * SeRestorePrivilege. The file must be a regf hive (1017 before the call).
 * @retval RF_E_NOT_SUPPORTED under Wine, whose RegRestoreKeyW is a stub that
 *         returns success and does nothing
 */
rf_status rf_live_restore_key(rf_hive *h, rf_key k, const uint16_t *path, uint32_t flags);

/**
 * RegReplaceKeyW: at the next boot, the hive holding `k` is replaced by
 * `new_path`, and the current one kept as `old_path`. Both absolute; the new
 * file must be a regf hive (1017 before the call).
 * @retval RF_E_NOT_SUPPORTED under Wine (a stub that does nothing)
 */
rf_status rf_live_replace_key(rf_hive *h, rf_key k, const uint16_t *new_path, const uint16_t *old_path);

/**
 * Loads a private application hive (RegLoadAppKeyW, no admin rights needed)
 * and returns it as a live rf_hive whose root is the hive's root key (close
 * it with rf_hive_close, which unloads it once no handle is left).
 * @param access desired access (KEY_READ when 0)
 * @retval 1017 the file is not a regf hive (checked before the call)
 * @retval RF_E_NOT_SUPPORTED RegLoadAppKeyW is missing, or a stub: Wine 8's
 *         returns success with a handle every call then rejects (6); that is
 *         detected with one NtQueryKey and reported, never a fake hive
 */
rf_status rf_live_load_app_hive(const uint16_t *path, uint32_t access, rf_hive **out);

/**
 * A value's string resolved the way RegLoadMUIStringW does: "@dll,-id"
 * loads string `id` of the DLL's resources (MUI files first); a string that
 * does not start with '@' comes back as it is.
 * @param buf  receives UTF-16, NUL-terminated when it fits; *len_out bytes
 *             written without the NUL, or needed on RF_E_MORE_DATA
 * @retval RF_E_NOT_FOUND the value, or the resource, does not exist (2)
 */
rf_status rf_live_mui_string(rf_hive *h, rf_key k, const uint16_t *name, uint16_t *buf, size_t cap,
                             size_t *len_out);

/**
 * Marks a key's cache slot stale (a tombstone, as for a deleted key): its
 * tokens then fail with 1018 and the next open of its path asks the system.
 * Its handle is closed now (no other thread may be using the token). For a
 * key renamed or replaced by someone else (e.g. another rf_hive of the same
 * process after rf_live_rename_key()), or a mount point to unload.
 */
rf_status rf_live_key_invalidate(rf_hive *h, rf_key k);

/**
 * rf_live_key_invalidate() for a key and every cached key below it: each
 * slot becomes a tombstone (its tokens fail with 1018, its path reopens
 * afresh) and its handle is closed now, unless another thread is using it
 * at this moment. After a rename of the subtree's root, or before unloading
 * a hive mounted there (a handle left open below the mount point keeps
 * RegUnLoadKeyW from unloading it). `k` may itself be a tombstone (the
 * renamed key, after rf_live_rename_key()); the root's own handle stays.
 */
rf_status rf_live_key_invalidate_subtree(rf_hive *h, rf_key k);

/** 1 when running under Wine (ntdll exports wine_get_version). */
int rf_live_is_wine(void);

#ifdef __cplusplus
}
#endif

#endif /* REGFAST_NT_H */
