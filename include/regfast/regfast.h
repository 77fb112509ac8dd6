/*
 * regfast.h — the one public C API of regfast.
 *
 * A registry source ("hive") is opened once; keys and values inside it are
 * 64-bit tokens (`rf_key`, `rf_value`) that cost nothing to create or copy.
 * For the offline backend (regf over mmap) a token is a cell offset; 0 is
 * never a valid token and means "none".
 *
 * Conventions (see shared/STYLE.md §5):
 *  - every fallible call returns an `rf_status`, which is a Win32 error code
 *    (LSTATUS-compatible) or one of regfast's own codes with bit 29 set;
 *  - out-parameters come last; on failure a token out-param is set to 0 and a
 *    pointer out-param to NULL;
 *  - lengths are in bytes unless the name says "chars";
 *  - pointers marked *borrowed* point into the hive mapping and stay valid
 *    until rf_hive_close(); nothing borrowed is ever freed by the caller;
 *  - details of the last failure on this thread are in rf_last_error().
 *
 * Thread safety: a hive may be read from many threads at once; rf_hive_close
 * must not race with any other call on the same hive.
 */
#ifndef REGFAST_H
#define REGFAST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RF_VERSION_MAJOR 0
#define RF_VERSION_MINOR 1

/* ------------------------------------------------------------------------ */
/* Status codes                                                              */
/* ------------------------------------------------------------------------ */

/** A Win32 error code, or a regfast code with RF_CUSTOMER_BIT set. */
typedef int32_t rf_status;

#define RF_OK                    0
#define RF_E_NOT_FOUND           2     /* ERROR_FILE_NOT_FOUND: key or value missing */
#define RF_E_ACCESS_DENIED       5     /* ERROR_ACCESS_DENIED */
#define RF_E_INVALID_HANDLE      6     /* ERROR_INVALID_HANDLE: closed or bogus handle */
#define RF_E_NO_MEMORY           8     /* ERROR_NOT_ENOUGH_MEMORY */
#define RF_E_INVALID_DATA        13    /* ERROR_INVALID_DATA: wrong type for the request */
#define RF_E_INVALID_PARAMETER   87    /* ERROR_INVALID_PARAMETER */
#define RF_E_NOT_SUPPORTED       120   /* ERROR_CALL_NOT_IMPLEMENTED */
#define RF_E_INSUFFICIENT_BUFFER 122   /* ERROR_INSUFFICIENT_BUFFER */
#define RF_E_BAD_PATHNAME        161   /* ERROR_BAD_PATHNAME: empty component, too long */
#define RF_E_ALREADY_EXISTS      183   /* ERROR_ALREADY_EXISTS: a sibling has that name */
#define RF_E_MORE_DATA           234   /* ERROR_MORE_DATA: caller buffer too small */
#define RF_E_NO_MORE_ITEMS       259   /* ERROR_NO_MORE_ITEMS: end of an enumeration */
#define RF_E_KEY_DELETED         1018  /* ERROR_KEY_DELETED (the chapter's "1010" is ERROR_BADKEY) */
#define RF_E_KEY_HAS_CHILDREN    1020  /* ERROR_KEY_HAS_CHILDREN (the chapter's "1013" is ERROR_CANTWRITE) */
#define RF_E_PRIVILEGE_NOT_HELD  1314  /* ERROR_PRIVILEGE_NOT_HELD */
#define RF_E_DATATYPE_MISMATCH   1629  /* ERROR_DATATYPE_MISMATCH */
#define RF_E_UNSUPPORTED_TYPE    1630  /* ERROR_UNSUPPORTED_TYPE */
#define RF_E_TIMEOUT             1460  /* ERROR_TIMEOUT: no answer in time (remote backend) */
#define RF_E_CONNECTION_CUT      1236  /* ERROR_CONNECTION_ABORTED: a frame to or from the server was
                                          cut (timeout, end of stream mid-frame), failed its CRC or
                                          does not parse, so the stream is out of step; final */

/* Bit 29 is the "customer" bit Windows reserves for applications: codes with
 * it set never collide with a system error code. */
#define RF_CUSTOMER_BIT          0x20000000
#define RF_E_CORRUPT             (RF_CUSTOMER_BIT | 1)  /* hive structure is damaged; see offset */
#define RF_E_UNSUPPORTED_FORMAT  (RF_CUSTOMER_BIT | 2)  /* not a regf file, or an unknown version */
#define RF_E_IO                  (RF_CUSTOMER_BIT | 3)  /* open/stat/mmap failed; native = errno */
#define RF_E_LIMIT               (RF_CUSTOMER_BIT | 4)  /* a configured limit (depth, size) hit */
#define RF_E_CONNECTION          (RF_CUSTOMER_BIT | 5)  /* the connection to the server is broken
                                                           (closed, gone, killed); final. A cut
                                                           frame is RF_E_CONNECTION_CUT */

#define RF_NO_OFFSET UINT64_MAX

/** Details of the last failure on the calling thread. */
typedef struct rf_error {
    rf_status code;        /**< the status the failing call returned */
    int64_t   native;      /**< errno, Win32 code or NTSTATUS behind it; 0 if none */
    uint64_t  offset;      /**< hive file offset of the bad structure, or RF_NO_OFFSET */
    char      message[256];/**< "nk at 0x1020: name_len 300 exceeds cell size 96" */
} rf_error;

/**
 * @return the calling thread's last error (never NULL; code 0 if none).
 * The pointer is *borrowed* thread-local storage, overwritten by the next
 * failing call on this thread.
 */
const rf_error *rf_last_error(void);

/** Clears the calling thread's last error. */
void rf_clear_error(void);

/** @return a static English description of a status code (never NULL). */
const char *rf_status_text(rf_status st);

/* ------------------------------------------------------------------------ */
/* Registry value types                                                      */
/* ------------------------------------------------------------------------ */

#define RF_REG_NONE                       0
#define RF_REG_SZ                         1
#define RF_REG_EXPAND_SZ                  2
#define RF_REG_BINARY                     3
#define RF_REG_DWORD                      4
#define RF_REG_DWORD_BIG_ENDIAN           5
#define RF_REG_LINK                       6
#define RF_REG_MULTI_SZ                   7
#define RF_REG_RESOURCE_LIST              8
#define RF_REG_FULL_RESOURCE_DESCRIPTOR   9
#define RF_REG_RESOURCE_REQUIREMENTS_LIST 10
#define RF_REG_QWORD                      11

/* ------------------------------------------------------------------------ */
/* Handles                                                                   */
/* ------------------------------------------------------------------------ */

/** An open registry source (an offline hive file or buffer). Opaque. */
typedef struct rf_hive rf_hive;

/** A key inside a hive: a cell offset for regf. 0 means none. */
typedef uint64_t rf_key;

/** A value inside a hive: a cell offset for regf. 0 means none. */
typedef uint64_t rf_value;

/** A name as stored: either Latin-1 bytes ("compressed") or UTF-16LE. */
typedef struct rf_name {
    const void *ptr;       /**< *borrowed* (mapping); not NUL-terminated */
    uint32_t    nbytes;    /**< length in bytes */
    uint32_t    utf16;     /**< 1: UTF-16LE; 0: Latin-1, one byte per char */
} rf_name;

/* ------------------------------------------------------------------------ */
/* Opening a hive                                                            */
/* ------------------------------------------------------------------------ */

/** Parse damaged hives leniently: keep the good prefix of hbins and stop at
 *  the first bad one (hivex's "unsafe" mode). Superseded by RF_OPEN_TOLERANT,
 *  which keeps going past the damage; kept for callers that rely on it. */
#define RF_OPEN_LENIENT   0x1u
/**
 * Forensic open of a damaged hive: a bad base-block checksum, a truncated
 * file, a bad hbin header, a zeroed page or a cell with a bad size field do
 * not fail the open. Each is skipped and recorded (rf_hive_problems): after a
 * bad hbin header or a bad cell the reader resynchronises on the next 4 KiB
 * boundary that holds a valid hbin header (its offset field equal to its
 * position). Only cells of good regions enter the cell bitmap, so every later
 * read stays as bounds-safe as in strict mode; records that point into a
 * skipped region fail with RF_E_CORRUPT (per row with RF_SCAN_SKIP_ERRORS).
 * An unusable root key does not fail the open either: rf_hive_root() then
 * returns RF_E_CORRUPT, while cells and deleted records stay reachable.
 */
#define RF_OPEN_TOLERANT  0x2u
/**
 * Read the file into a private heap copy instead of mapping it. A mapped hive
 * reads the file as it is now: a change made in place by another process is
 * seen (wrong answers or RF_E_CORRUPT, never a read outside the mapping), and
 * a truncation turns the reads of the vanished pages into RF_E_IO (a SIGBUS
 * handler on POSIX; see src/hive/regf_guard.h for what it covers). A copy sees
 * none of that, at the cost of reading the whole file up front.
 */
#define RF_OPEN_COPY      0x4u

/** Options for rf_hive_open(). Initialise with RF_OPEN_OPTS_INIT. */
typedef struct rf_open_opts {
    size_t   struct_size;     /**< sizeof(rf_open_opts) as the caller knows it */
    uint32_t flags;           /**< RF_OPEN_* */
    uint32_t max_depth;       /**< deepest key path (Windows: 512); past 512: RF_E_CORRUPT at the nk */
    uint32_t max_subkeys;     /**< most subkeys accepted in one key */
    uint32_t max_values;      /**< most values accepted in one key */
} rf_open_opts;

#define RF_OPEN_OPTS_INIT { sizeof(rf_open_opts), 0u, 512u, 1u << 24, 1u << 24 }

/**
 * Opens a regf hive file read-only through mmap.
 * The base block, every hbin and every cell header are validated here once,
 * so later calls check offsets in O(1).
 * @param path  file path (UTF-8)
 * @param opts  options, or NULL for RF_OPEN_OPTS_INIT
 * @param out   receives an *owned* hive, freed with rf_hive_close()
 * @retval RF_E_IO a system call failed (rf_last_error()->native = errno)
 * @retval RF_E_UNSUPPORTED_FORMAT not a regf file, or version not 1.3-1.6
 * @retval RF_E_CORRUPT the base block or hbins are damaged (offset set)
 */
rf_status rf_hive_open(const char *path, const rf_open_opts *opts, rf_hive **out);

/**
 * Opens a hive held in memory. The buffer is *borrowed*: it must stay valid
 * and unchanged until rf_hive_close(). Nothing is copied.
 */
rf_status rf_hive_open_memory(const void *data, size_t len, const rf_open_opts *opts,
                              rf_hive **out);

/** Closes a hive and unmaps it. NULL is a no-op. Every borrowed pointer dies. */
void rf_hive_close(rf_hive *h);

/** What the base block says about a hive. */
typedef struct rf_hive_info {
    uint32_t major, minor;        /**< format version, 1.3 .. 1.6 */
    uint32_t seq_primary;         /**< base block sequence numbers; they differ */
    uint32_t seq_secondary;       /**< when the hive was not cleanly written */
    int32_t  dirty;               /**< 1 when seq_primary != seq_secondary */
    int32_t  checksum_ok;         /**< 1 when the base block XOR checksum matches */
    uint64_t last_write;          /**< FILETIME (100 ns since 1601-01-01 UTC) */
    uint32_t file_type;           /**< 0 primary, 1/2/6 log */
    uint32_t file_format;         /**< 1 direct memory load */
    uint64_t file_size;           /**< bytes in the file or buffer */
    uint64_t hbins_size;          /**< bytes of hbins the base block declares */
    uint64_t hbins_found;         /**< bytes of valid hbins found at open */
    uint64_t cells_allocated;     /**< allocated cells seen at open */
    uint64_t cells_free;          /**< free cells seen at open */
    uint64_t nk_cells;            /**< allocated cells signed "nk": a bound on keys */
    uint64_t vk_cells;            /**< allocated cells signed "vk": a bound on values */
    uint16_t file_name[32];       /**< UTF-16LE name stored in the base block */
    uint32_t file_name_chars;     /**< chars in file_name up to the first NUL */
} rf_hive_info;

/** What a tolerant open skipped (rf_problem.kind). */
#define RF_PROBLEM_CHECKSUM    1u  /**< base block checksum mismatch (nothing skipped) */
#define RF_PROBLEM_BASE_BLOCK  2u  /**< a base block field was ignored (hbins size) */
#define RF_PROBLEM_TRUNCATED   3u  /**< the file ends before the declared hbins do */
#define RF_PROBLEM_HBIN        4u  /**< bad hbin header: bytes skipped to the next good hbin */
#define RF_PROBLEM_CELL        5u  /**< bad cell size: rest of its hbin skipped */
#define RF_PROBLEM_ROOT        6u  /**< the root key is unusable */
#define RF_PROBLEM_SUBKEYS     7u  /**< a subkey list lists a key twice, out of order, one whose
                                        parent is another key, or something that is not a key:
                                        reads of a tolerant hive step over those entries; or a
                                        key whose UTF-16 name has an odd length (read by its
                                        whole units) */
#define RF_PROBLEM_VALUES      8u  /**< a value list, a vk or a value's data that reads refuse: a
                                        tolerant hive's reads step over a list entry whose vk
                                        is unusable; a value whose data alone is lost keeps its
                                        name and type (rf_read_values) */

/** Problems kept per hive; later ones are counted, not stored. */
#define RF_MAX_PROBLEMS        10000u

/** One damaged region found by a tolerant open. */
typedef struct rf_problem {
    uint64_t offset;        /**< file offset where the damage starts */
    uint64_t length;        /**< bytes skipped from there (0 when nothing was skipped) */
    uint32_t kind;          /**< RF_PROBLEM_* */
    char     reason[148];   /**< NUL-terminated text naming offsets and values */
} rf_problem;

/**
 * The problems a tolerant open recorded, in file order (empty for a healthy
 * hive and for strict opens, which fail instead).
 * @param out      receives a *borrowed* array, valid until rf_hive_close()
 * @param n_out    receives the number of entries (at most RF_MAX_PROBLEMS)
 * @param total_out optional (may be NULL): problems seen in all; more than
 *                 *n_out when the list was capped
 */
rf_status rf_hive_problems(rf_hive *h, const rf_problem **out, size_t *n_out, uint64_t *total_out);

/** Fills *out from the base block and the open-time hbin walk. */
rf_status rf_hive_get_info(rf_hive *h, rf_hive_info *out);

/** The hive's root key. */
rf_status rf_hive_root(rf_hive *h, rf_key *out);

/* ------------------------------------------------------------------------ */
/* Keys                                                                      */
/* ------------------------------------------------------------------------ */

/**
 * Opens a key by path relative to `parent` (0 = the root).
 * Path components are separated by '\\'; a leading '\\' is ignored; names
 * compare case-insensitively as Windows does (per-UTF-16-unit upcase).
 * @param path  UTF-8, `len` bytes, not necessarily NUL-terminated; a lone
 *              surrogate may be encoded as its 3-byte form (WTF-8, what
 *              Python's "surrogatepass" writes) and stands for that UTF-16
 *              unit, since stored names are unchecked UTF-16
 * @retval RF_E_NOT_FOUND  a component is missing
 * @retval RF_E_BAD_PATHNAME  empty component or component over 255 chars
 * @retval RF_E_INVALID_PARAMETER  path is not valid UTF-8
 */
rf_status rf_key_open(rf_hive *h, rf_key parent, const char *path, size_t len, rf_key *out);

/** rf_key_open() with a UTF-16 path of `nchars` code units. */
rf_status rf_key_open_utf16(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars,
                            rf_key *out);

/** Finds one direct subkey by name (no '\\' splitting). */
rf_status rf_key_child(rf_hive *h, rf_key parent, const uint16_t *name, size_t nchars,
                       rf_key *out);

/** A key's name as stored (*borrowed*). The root's name is whatever it stores. */
rf_status rf_key_name(rf_hive *h, rf_key k, rf_name *out);

/** A key's class name (*borrowed*, UTF-16LE; nbytes 0 when it has none). */
rf_status rf_key_class(rf_hive *h, rf_key k, rf_name *out);

/** The key's parent; RF_E_NOT_FOUND for the root. */
rf_status rf_key_parent(rf_hive *h, rf_key k, rf_key *out);

/**
 * The caller is done with key `k` (its Key object closed). Tokens stay valid
 * until rf_hive_close whatever is called here (the remote backend's handle
 * cache, the NT backend's handles belong to the hive), so no backend is
 * called: this is the hook point that pairs an open with its close, which a
 * profiler needs to see an open-each pattern (RF_OP_KEY_CLOSE). RF_OK, or
 * RF_E_INVALID_HANDLE for a NULL or closed hive; a PRE veto is ignored (a
 * close cannot be refused, as rf_hive_close).
 */
rf_status rf_key_close(rf_hive *h, rf_key k);

/**
 * Is `k` a registry symbolic link: a key made with REG_OPTION_CREATE_LINK,
 * its target in the REG_LINK value "SymbolicLinkValue"? A hive file says so
 * in the nk flag KEY_SYM_LINK (0x10). Live, it is the key as its parent
 * lists it, not what it opens as: opening a link (and every call on its
 * token) reaches the target, the way Windows' own tools see it, so this is
 * how a walk knows not to go through one (a link back up the tree is a loop).
 * @param out receives 1 (a link) or 0
 * @retval RF_E_NOT_SUPPORTED the backend cannot tell
 */
rf_status rf_key_is_link(rf_hive *h, rf_key k, int *out);

/** Key information, shaped like NtQueryKey's KEY_FULL_INFORMATION. */
typedef struct rf_key_info {
    uint64_t last_write;          /**< FILETIME */
    uint32_t n_subkeys;           /**< stable subkeys */
    uint32_t n_values;
    uint32_t max_name_len;        /**< bytes, as UTF-16 (what the nk records) */
    uint32_t max_class_len;       /**< bytes */
    uint32_t max_value_name_len;  /**< bytes, as UTF-16 */
    uint32_t max_value_data_len;  /**< bytes */
    uint32_t class_len;           /**< bytes of this key's class name */
    uint32_t flags;               /**< nk flags (0x20 compressed name, 0x4 root ...) */
    uint64_t security_offset;     /**< hive offset of the sk cell, or RF_NO_OFFSET */
} rf_key_info;

rf_status rf_key_get_info(rf_hive *h, rf_key k, rf_key_info *out);

/**
 * Lists the subkeys of `k` in stored order (sorted by upcased name in a
 * healthy hive) into a caller array.
 * @param out   caller array of `cap` tokens (may be NULL when cap is 0)
 * @param n_out receives the number written, or the number needed
 * @retval RF_E_MORE_DATA `cap` was too small; *n_out is the count needed
 */
rf_status rf_key_subkeys(rf_hive *h, rf_key k, rf_key *out, size_t cap, size_t *n_out);

/** rf_key_subkeys_hinted: the subkey's own node lists no subkeys. A
 *  symbolic link's node never does (its target's subkeys are the target's),
 *  so a walk that lists only keys without this hint never goes through a
 *  link, and lists no leaf for nothing. */
#define RF_SUBKEY_NO_SUBKEYS 0x1u
/** rf_key_subkeys_hinted: the subkey's own node lists subkeys, so it is a
 *  key, not a symbolic link. With neither hint (0) nothing is known: a walk
 *  that must not go through links asks rf_key_is_link. */
#define RF_SUBKEY_HAS_SUBKEYS 0x2u

/**
 * rf_key_subkeys, and with each token a hint byte (RF_SUBKEY_*; 0 when the
 * backend cannot tell, which every backend may answer). Hints are what the
 * listing saw: a key may gain subkeys right after. The NT backend reads
 * each subkey's own node (a second NtEnumerateKey per index; no hints under
 * a hive mount container, rf_live_is_mount_container); the remote backend
 * asks the agent for the same (no more requests); hive files answer 0s.
 * @param hints caller array of `cap` bytes (may be NULL when cap is 0)
 */
rf_status rf_key_subkeys_hinted(rf_hive *h, rf_key k, rf_key *out, uint8_t *hints, size_t cap, size_t *n_out);

/** Lists the values of `k` in stored order; same contract as rf_key_subkeys. */
rf_status rf_key_values(rf_hive *h, rf_key k, rf_value *out, size_t cap, size_t *n_out);

/**
 * A key's security descriptor (self-relative SECURITY_DESCRIPTOR bytes).
 * @param sd_out  *borrowed* pointer into the mapping
 */
rf_status rf_key_security(rf_hive *h, rf_key k, const uint8_t **sd_out, size_t *len_out);

/* ------------------------------------------------------------------------ */
/* Values                                                                    */
/* ------------------------------------------------------------------------ */

/** Value data is stored in the vk itself (data length high bit set). */
#define RF_VALUE_INLINE    0x1u
/** Value data is split across a big-data (db) segment list: not contiguous. */
#define RF_VALUE_BIG_DATA  0x2u

typedef struct rf_value_info {
    rf_name  name;                /**< *borrowed*; nbytes 0 for the default value */
    uint32_t type;                /**< REG_* (any 32-bit number, e.g. 0xFFFF0012) */
    uint32_t data_len;            /**< bytes, as the vk declares (high bit cleared) */
    uint32_t flags;               /**< RF_VALUE_* */
} rf_value_info;

/** Finds a value by name (UTF-8, case-insensitive); "" is the default value. */
rf_status rf_value_open(rf_hive *h, rf_key k, const char *name, size_t len, rf_value *out);

/** rf_value_open() with a UTF-16 name of `nchars` code units. */
rf_status rf_value_open_utf16(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars,
                              rf_value *out);

rf_status rf_value_get_info(rf_hive *h, rf_value v, rf_value_info *out);

/**
 * Reads a value's data. When the data is contiguous in the hive,
 * *data_out points into the mapping (*borrowed*, zero copy) and `buf` is not
 * touched. Big-data values are assembled into `buf`.
 * @param buf      caller buffer for non-contiguous data (may be NULL)
 * @param cap      bytes available at `buf`
 * @param data_out receives the data pointer (mapping or `buf`)
 * @param len_out  receives the data length — on RF_E_MORE_DATA, the length needed
 * @retval RF_E_MORE_DATA the data is not contiguous and `cap` is too small
 */
rf_status rf_value_read(rf_hive *h, rf_value v, void *buf, size_t cap,
                        const uint8_t **data_out, size_t *len_out);

/* ------------------------------------------------------------------------ */
/* Batched value reads                                                       */
/* ------------------------------------------------------------------------ */

/** Set in rf_batch.offset[i] when row i's data lives in the arena rather
 *  than in the hive mapping; the low 63 bits are then the arena offset. */
#define RF_BATCH_IN_ARENA   (UINT64_C(1) << 63)

/** rf_read_values flags */
#define RF_BATCH_FULL       0x1u  /* live: use KeyValueFullInformation (default Partial) */
#define RF_BATCH_COPY       0x2u  /* copy every row into the arena, even mapped data */

/**
 * Columns for a batched read, all *caller-owned* arrays of `cap` rows. One
 * call fills one row per requested value: a column layout the Python binding
 * exposes as numpy arrays without touching a Python object per value.
 */
typedef struct rf_batch {
    size_t    struct_size;  /**< sizeof(rf_batch) */
    size_t    cap;          /**< rows available in every column */
    size_t    n;            /**< rows filled (out) */
    uint32_t *type;         /**< REG_* type per row; on an error row 0, unless the value's
                                 record was read and only its data is lost (then the row
                                 keeps its name, type and length: see `name`) */
    int32_t  *status;       /**< per-row rf_status: 0, 2 missing, 13 type filtered out,
                                 234 arena too small, RF_E_CORRUPT ... */
    uint64_t *offset;       /**< data offset: from the start of the hive mapping, or
                                 RF_BATCH_IN_ARENA | offset into `arena` */
    uint32_t *length;       /**< data length in bytes (the length needed on status 234) */
    rf_name  *name;         /**< optional (may be NULL): each row's value name,
                                 filled when reading all values (names == NULL);
                                 *borrowed* (mapping, or the arena for live keys).
                                 ptr NULL on an error row whose value record could not
                                 be read: a tolerant reader steps over that entry */
    uint8_t  *arena;        /**< caller buffer for data not in a mapping (may be NULL) */
    size_t    arena_cap;    /**< bytes at `arena` */
    size_t    arena_used;   /**< bytes used (out); on RF_E_MORE_DATA, bytes needed */
    rf_value *token;        /**< optional (may be NULL): each found row's rf_value,
                                 for rf_value_read() of big data later (0 if none) */
} rf_batch;

/**
 * Reads many values of one key in one call. Releases nothing, allocates
 * nothing: rows go to the caller's columns, non-mapped data to the arena.
 * A missing value is a row with status 2, not a failure of the call.
 * @param names    value names (n of them), or NULL to read every value of the
 *                 key in stored order (then n is ignored; needs cap >= count)
 * @param types    accepted REG_* types (n_types of them) or NULL for all;
 *                 rows of other types get status RF_E_INVALID_DATA (13)
 * @param flags    RF_BATCH_*
 * @retval RF_E_MORE_DATA  cap is below the number of rows (b->n = rows needed),
 *                 or the arena was too small (b->arena_used = bytes needed;
 *                 the rows that did not fit have status 234)
 */
rf_status rf_read_values(rf_hive *h, rf_key k, const rf_name *names, size_t n,
                         const uint32_t *types, size_t n_types, uint32_t flags, rf_batch *b);

/**
 * The base address of a hive's mapping: rf_batch offsets without
 * RF_BATCH_IN_ARENA are relative to it. *borrowed*; NULL for live hives.
 */
rf_status rf_hive_mapping(rf_hive *h, const uint8_t **base_out, size_t *len_out);

/* ------------------------------------------------------------------------ */
/* Columnar scan of a subtree                                                */
/* ------------------------------------------------------------------------ */

#define RF_SCAN_VALUES       0x1u  /* fill the value columns too */
#define RF_SCAN_SKIP_ERRORS  0x2u  /* record corrupt keys/values in the status
                                      columns and go on, instead of failing */
#define RF_SCAN_SKIP_VALUE_ERRORS 0x4u /* record corrupt values and value lists
                                      (the key's status) and go on; damage met
                                      while reading keys still fails the scan
                                      unless RF_SCAN_SKIP_ERRORS (for a caller
                                      that reports a key's damaged values when
                                      it reads that key's values) */

/** Called now and then during a scan; a nonzero return cancels the scan,
 *  which then returns that value as its status. */
typedef int (*rf_progress_fn)(void *ctx, uint64_t keys_done, uint64_t keys_total);

/**
 * Caller-owned columns for rf_hive_scan(). Size the key columns with
 * rf_hive_info.nk_cells rows and the value columns with vk_cells rows: a
 * healthy subtree never needs more.
 *
 * The columns are as narrow as a hive file allows (a scan's memory is mostly
 * its columns): a hive's cell offsets are 32-bit and a key record takes at
 * least 80 bytes, so tokens and row numbers fit 32 bits, and so do the file
 * offsets of a hive's data (hbins_size is 32-bit). Only a tolerant open of a
 * file over 4 GiB, which walks its hbins past that, can place data further:
 * such a value row fails with RF_E_LIMIT (read it with rf_value_read).
 * key_depth and key_n_values follow from key_parent and value_key (a key's
 * values are the value rows written right after its key row): they are
 * optional, filled only when not NULL. A key row is then 24 bytes, a value
 * row 28.
 *
 * Names are not copied: a name is (file offset, byte length, utf16 flag) into
 * the mapping, and its file offset follows from the record's token (the
 * name sits at a fixed place in nk and vk records): RF_SCAN_KEY_NAME_AT() and
 * RF_SCAN_VALUE_NAME_AT(). Value data likewise: an offset into the mapping;
 * big-data values (not contiguous) get status RF_E_MORE_DATA and their token
 * in value_token, for the caller to assemble with rf_value_read().
 */
typedef struct rf_scan {
    size_t    struct_size;
    uint32_t  flags;          /**< RF_SCAN_* */
    /* keys, in depth-first pre-order, children in stored order */
    size_t    key_cap, n_keys;
    uint32_t *key_token;      /**< rf_key of each key (an nk cell offset) */
    int32_t  *key_parent;     /**< row of the parent key; -1 for the start key */
    uint64_t *key_last_write; /**< FILETIME */
    uint32_t *key_name_len;   /**< bytes; bit 31 set: UTF-16LE, clear: Latin-1 */
    int32_t  *key_status;     /**< 0, or why its subkeys/values were skipped */
    uint16_t *key_depth;      /**< optional: 0 for the start key (Windows: at most 512) */
    uint32_t *key_n_values;   /**< optional: values recorded for this key */
    /* values (with RF_SCAN_VALUES) */
    size_t    value_cap, n_values;
    uint32_t *value_key;      /**< row of the owning key */
    uint32_t *value_token;    /**< rf_value (a vk cell offset) */
    uint32_t *value_name_len; /**< bytes; bit 31: UTF-16LE */
    uint32_t *value_type;
    uint32_t *value_offset;   /**< file offset of the data (inline data: inside the vk) */
    uint32_t *value_length;   /**< bytes */
    int32_t  *value_status;   /**< 0; 234 big data (read it with rf_value_read); corrupt */
    rf_progress_fn progress;  /**< optional */
    void     *progress_ctx;
} rf_scan;

#define RF_NAME_UTF16_BIT 0x80000000u

/** File offset of the stored name of the key or value row with this token
 *  (hive files: 4 KiB base block, the cell's 4-byte size, then the name at
 *  0x4C of an nk record and 0x14 of a vk record). */
#define RF_SCAN_KEY_NAME_AT(token)   ((uint64_t)(token) + 0x1050u)
#define RF_SCAN_VALUE_NAME_AT(token) ((uint64_t)(token) + 0x1018u)

/**
 * One pass over the subtree at `start` (0 = the root), filling the scan's
 * columns. Each key is visited once even when a damaged hive lists it twice.
 * @retval RF_E_MORE_DATA a column filled up (n_keys/n_values say how far it got)
 * @retval RF_E_CORRUPT   a damaged structure, unless RF_SCAN_SKIP_ERRORS
 */
rf_status rf_hive_scan(rf_hive *h, rf_key start, rf_scan *s);

/* ------------------------------------------------------------------------ */
/* Forensics: raw cells and deleted records                                  */
/* ------------------------------------------------------------------------ */

/**
 * Any cell by file offset, allocated or free: the payload after the 4-byte
 * size field (*borrowed*) and whether the cell is allocated. The offset must
 * be a cell start found by the open-time walk.
 * @retval RF_E_NOT_FOUND no cell starts at that offset
 */
rf_status rf_hive_cell(rf_hive *h, uint64_t file_offset, const uint8_t **payload_out,
                       size_t *len_out, int *allocated_out);

#define RF_DELETED_KEY    1u
#define RF_DELETED_VALUE  2u

/** Where a deleted record was found (rf_deleted.source). */
#define RF_DELETED_FREE          1u  /**< in a free cell: at its start, or where a cell that
                                          Windows merged into it began */
#define RF_DELETED_UNREFERENCED  2u  /**< in an allocated cell that nothing reachable from the
                                          root references (self-healed, leaked, or cut off) */
#define RF_DELETED_SLACK         3u  /**< in the slack of a referenced cell, past its record */
#define RF_DELETED_REMNANT       4u  /**< in the bytes after the last hbin */

/** A key or value record found intact in a free, unreferenced or slack area. */
typedef struct rf_deleted {
    uint32_t kind;          /**< RF_DELETED_KEY or RF_DELETED_VALUE */
    uint32_t confidence;    /**< 0..100: how much of the record checks out */
    uint64_t offset;        /**< file offset of the (former) cell holding the record: the
                                 record's signature is 4 bytes further */
    rf_name  name;          /**< *borrowed* (inside the area it was found in) */
    uint64_t last_write;    /**< keys: FILETIME */
    uint64_t parent;        /**< keys: file offset of the recorded parent nk, if that is an
                                 allocated nk now; else RF_NO_OFFSET */
    uint32_t n_values;      /**< keys: value count the record claims */
    uint32_t type;          /**< values: REG_* type */
    uint32_t data_len;      /**< values: length the record claims */
    uint32_t data_state;    /**< values: 0 none, 1 inline, 2 in cells nothing live uses
                                 (free or unreferenced) that fit it (likely intact), 3 in a
                                 cell a live record uses (likely reused), 4 unreachable or
                                 too short, 5 big data not checked: the pass's records had
                                 checked twice as many segment entries as the file has
                                 4-byte words (hostile hives: records naming one list over
                                 and over); rf_hive_deleted_read() still reads it */
    uint64_t data_offset;   /**< values: file offset of the data bytes (states 1-3, not big
                                 data), else RF_NO_OFFSET */
    uint32_t source;        /**< RF_DELETED_* */
    uint32_t data_flags;    /**< values: RF_VALUE_BIG_DATA when the data sits in db segments:
                                 rf_hive_deleted_read() assembles it */
    uint64_t owner;         /**< values: file offset (as `offset`) of the deleted key whose
                                 value list still names this value, else RF_NO_OFFSET */
    uint64_t token;         /**< the rf_key / rf_value the record's cell would have: what
                                 the scan table's token columns hold for it */
    uint64_t parent_token;  /**< keys: the recorded parent field as a token, whatever lies
                                 there now (an allocated nk, another deleted record, or no
                                 cell at all: match it against tokens, do not dereference
                                 it); 0 when the field says "none" (0xFFFFFFFF) */
} rf_deleted;

/**
 * Lists deleted keys and values: records found intact, at every 8-byte cell
 * position, inside free cells (which Windows merges), inside allocated cells
 * that nothing reachable from the root references, in the slack of
 * referenced cells and after the last hbin. Every length read from those
 * bytes is bounded by the area it lies in and by the mapping.
 * @retval RF_E_MORE_DATA `cap` too small; *n_out is the count needed
 */
rf_status rf_hive_deleted(rf_hive *h, rf_deleted *out, size_t cap, size_t *n_out);

/**
 * Copies the data of the deleted value whose record rf_hive_deleted()
 * reported at `record_offset` (its rf_deleted.offset), big data (db
 * segments) included, re-checking every piece against the cells around it.
 * @retval RF_E_MORE_DATA `cap` too small; *len_out is the length needed
 * @retval RF_E_NOT_FOUND no value record there, or its data cannot be located
 */
rf_status rf_hive_deleted_read(rf_hive *h, uint64_t record_offset, void *buf, size_t cap,
                               size_t *len_out);

/** Kinds of referenced cells (rf_slack.kind). */
#define RF_CELL_NK            1u
#define RF_CELL_VK            2u
#define RF_CELL_SUBKEY_LIST   3u  /**< lf, lh, li or ri */
#define RF_CELL_VALUE_LIST    4u
#define RF_CELL_DATA          5u  /**< value data in one cell */
#define RF_CELL_DB            6u  /**< big-data record */
#define RF_CELL_DB_LIST       7u  /**< big-data segment list */
#define RF_CELL_DB_SEGMENT    8u
#define RF_CELL_SK            9u
#define RF_CELL_CLASS        10u

/** The unused tail of a cell reachable from the root. */
typedef struct rf_slack {
    uint64_t cell;          /**< file offset of the cell */
    uint64_t offset;        /**< file offset of the first byte past what the record uses */
    uint32_t length;        /**< bytes from there to the end of the cell */
    uint32_t kind;          /**< RF_CELL_* */
} rf_slack;

/**
 * Slack space of every cell reachable from the root (keys, values, data,
 * subkey and value lists, big-data records, segment lists and segments,
 * security and class cells), in file order; cells without slack are left out.
 * @retval RF_E_MORE_DATA `cap` too small; *n_out is the count needed
 */
rf_status rf_hive_slack(rf_hive *h, rf_slack *out, size_t cap, size_t *n_out);

/**
 * The slack of one key's nk cell: the bytes past its name (length 0 when
 * the name fills the cell). Same measure as rf_hive_slack(), which leaves
 * out cells without slack.
 * @retval RF_E_NOT_SUPPORTED the backend has no cells (the live registry)
 */
rf_status rf_key_slack(rf_hive *h, rf_key k, rf_slack *out);

/**
 * The slack of one value's cells: out[0] its vk past the name; out[1] its
 * data cell past the data, when the data sits alone in one cell (inline
 * data, big data and empty values have none: out[1].length 0 and
 * out[1].cell RF_NO_OFFSET).
 * @retval RF_E_NOT_SUPPORTED the backend has no cells (the live registry)
 */
rf_status rf_value_slack(rf_hive *h, rf_value v, rf_slack out[2]);

/**
 * The hive file offset of the cell a key or value token names (for
 * messages and for rf_hive_cell()). The token is not checked: any token
 * has an offset.
 * @retval RF_E_NOT_SUPPORTED the backend's tokens are not cells
 */
rf_status rf_hive_token_offset(rf_hive *h, uint64_t token, uint64_t *file_offset_out);

/* ------------------------------------------------------------------------ */
/* The live registry (Windows; RF_E_NOT_SUPPORTED elsewhere)                 */
/* ------------------------------------------------------------------------ */

/** Predefined roots, with the values of the Win32 HKEY_* constants. */
#define RF_HKEY_CLASSES_ROOT      0x80000000u
#define RF_HKEY_CURRENT_USER      0x80000001u
#define RF_HKEY_LOCAL_MACHINE     0x80000002u
#define RF_HKEY_USERS             0x80000003u
#define RF_HKEY_CURRENT_CONFIG    0x80000005u

/** Registry views, with the values of KEY_WOW64_64KEY / KEY_WOW64_32KEY. */
#define RF_VIEW_NATIVE            0x0000u
#define RF_VIEW_64                0x0100u
#define RF_VIEW_32                0x0200u

/**
 * Opens a predefined root of the live registry as an rf_hive; its keys are
 * then opened with rf_key_open() (through the open-once handle cache) and
 * read with the same calls as offline hives.
 * @param root    RF_HKEY_*
 * @param view    RF_VIEW_*
 * @param access  desired access mask (KEY_READ = 0x20019 when 0)
 * @retval RF_E_NOT_SUPPORTED not built for Windows
 */
rf_status rf_live_open(uint32_t root, uint32_t view, uint32_t access, rf_hive **out);

/* ------------------------------------------------------------------------ */
/* Security descriptors                                                      */
/* ------------------------------------------------------------------------ */

/**
 * Converts a self-relative SECURITY_DESCRIPTOR to an SDDL string
 * ("O:BAG:SYD:PAI(A;CI;KA;;;BA)"), the way ConvertSecurityDescriptorToString
 * SecurityDescriptor does for keys (key rights abbreviated KA/KR/KW/KX).
 * @param buf      receives a NUL-terminated string when it fits
 * @param len_out  string length without the NUL — the size needed on MORE_DATA
 * @retval RF_E_MORE_DATA `cap` too small (needs *len_out + 1)
 * @retval RF_E_INVALID_DATA the descriptor is malformed
 */
rf_status rf_sd_to_sddl(const uint8_t *sd, size_t len, char *buf, size_t cap, size_t *len_out);

/* ------------------------------------------------------------------------ */
/* Writes (live backends: nt in-process, remote through regfast-agent)        */
/* ------------------------------------------------------------------------ */
/*
 * A hive file opened with rf_hive_open() is read-only: every call of this
 * section returns RF_E_NOT_SUPPORTED (120) for it, with the backend named in
 * the message. Names and paths are UTF-16 (`nchars` code units, no NUL
 * needed); an empty value name is the key's default value.
 */

/**
 * Creates or replaces a value (NtSetValueKey semantics: the data is stored
 * as given, `type` may be any 32-bit number).
 * @retval RF_E_ACCESS_DENIED the hive was opened without KEY_SET_VALUE
 * @retval RF_E_KEY_DELETED   the key was deleted under its token
 */
rf_status rf_value_set(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars, uint32_t type,
                       const void *data, size_t len);

/** Deletes a value. @retval RF_E_NOT_FOUND it does not exist */
rf_status rf_value_delete(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars);

/** rf_key_create() flag: the key (and any parent it creates) lives in memory only */
#define RF_CREATE_VOLATILE 0x1u
/** rf_key_create() dispositions (REG_CREATED_NEW_KEY / REG_OPENED_EXISTING_KEY) */
#define RF_CREATED_NEW     1u
#define RF_OPENED_EXISTING 2u

/**
 * Creates a key and the missing keys above it (RegCreateKeyExW), or opens
 * it when it exists, in the hive's view and with the hive's access.
 * @param parent      0 = the hive's root
 * @param out         receives the key's token (may be NULL)
 * @param disposition receives RF_CREATED_NEW or RF_OPENED_EXISTING (may be NULL)
 */
rf_status rf_key_create(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars,
                        uint32_t flags, rf_key *out, uint32_t *disposition);

/** rf_key_delete() flag: delete the whole subtree */
#define RF_DELETE_TREE 0x1u

/**
 * Deletes the key at `path` below `parent` (in the hive's view); with
 * RF_DELETE_TREE, its subkeys and values first. Live: a symbolic link, the
 * key itself or one in the tree, is deleted as the link, never followed to
 * its target. Tokens of the deleted keys then answer RF_E_KEY_DELETED.
 * @retval RF_E_ACCESS_DENIED also for a key that has subkeys without
 *         RF_DELETE_TREE (what Windows answers; the message says why)
 * @retval RF_E_INVALID_PARAMETER an empty path (a key does not delete itself)
 */
rf_status rf_key_delete(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars,
                        uint32_t flags);

/**
 * Renames a key in place (NtRenameKey); its values and subkeys stay. `k`
 * then answers RF_E_KEY_DELETED: open the new path.
 * @retval RF_E_ALREADY_EXISTS a sibling has that name (checked first)
 * @retval RF_E_INVALID_PARAMETER empty, over 255 chars, '\\' or NUL in the
 *         name, or the hive's root (checked before any call)
 */
rf_status rf_key_rename(rf_hive *h, rf_key k, const uint16_t *new_name, size_t nchars);

/* ------------------------------------------------------------------------ */
/* Security descriptors of keys                                              */
/* ------------------------------------------------------------------------ */

/* SECURITY_INFORMATION bits (Win32 values) */
#define RF_SI_OWNER 0x1u
#define RF_SI_GROUP 0x2u
#define RF_SI_DACL  0x4u
#define RF_SI_SACL  0x8u

/**
 * The key's security descriptor, self-relative, copied into `buf`
 * (RegGetKeySecurity's shape). Every backend answers: a hive file from the
 * key's sk cell (the parts `si` asks for, rebuilt), nt and remote from the
 * system (RegGetKeySecurity).
 * @param si      RF_SI_* parts wanted; 0 = every part the caller may read
 *                (a hive file: all it stores; live: owner, group, DACL, and
 *                the SACL only while SeSecurityPrivilege is enabled)
 * @param buf     caller buffer (may be NULL when cap is 0: asks the size)
 * @param len_out receives the descriptor's length — the size needed on
 *                RF_E_MORE_DATA
 * @param si_out  receives the RF_SI_* parts present (may be NULL)
 * @retval RF_E_MORE_DATA `cap` too small
 * @retval RF_E_CORRUPT   a hive file's descriptor is malformed (offset set)
 */
rf_status rf_key_get_security(rf_hive *h, rf_key k, uint32_t si, void *buf, size_t cap,
                              size_t *len_out, uint32_t *si_out);

/**
 * Sets parts of the key's descriptor (RegSetKeySecurity) from a
 * self-relative descriptor. Live backends only (RF_E_NOT_SUPPORTED for a
 * hive file). The descriptor is checked (structure, sizes) before any call.
 * @param si RF_SI_* parts to write; 0 = the parts present in `sd`
 * @retval RF_E_INVALID_PARAMETER a malformed descriptor, or `si` asks for a
 *         part it lacks
 */
rf_status rf_key_set_security(rf_hive *h, rf_key k, uint32_t si, const void *sd, size_t len);

/* ------------------------------------------------------------------------ */
/* Owned byte buffers                                                        */
/* ------------------------------------------------------------------------ */

/**
 * A growable byte buffer the library appends to (snapshots). Start from
 * { NULL, 0, 0 }; calls append after `len`; free with rf_bytes_free(). The
 * memory is *owned* by the caller once a call returns.
 */
typedef struct rf_bytes {
    uint8_t *data;
    size_t   len;
    size_t   cap;
} rf_bytes;

/** Frees the buffer and resets it to { NULL, 0, 0 }. NULL is a no-op. */
void rf_bytes_free(rf_bytes *b);

/* ------------------------------------------------------------------------ */
/* Snapshots: one serializer for every backend                               */
/* ------------------------------------------------------------------------ */

/** rf_key_snapshot() flags */
#define RF_SNAP_SUBTREE   0x1u  /* every key below too (depth-first pre-order) */
#define RF_SNAP_KEEP_DATA 0x2u  /* each value's data, not only its hash */
/** flags stored in a snapshot's header */
#define RF_SNAP_TRUNCATED 0x1u  /* max_keys was reached: keys are missing */
#define RF_SNAP_DATA      0x2u  /* values carry their data */

/**
 * Appends a snapshot of the key (and its subtree) to `out`, in the format of
 * regfast-agent's protocol (version 2 and up; little-endian, str16 = u32 byte
 * count + UTF-16LE, str8 = u32 byte count + bytes):
 *
 *   u32 n_keys, u32 flags (RF_SNAP_TRUNCATED | RF_SNAP_DATA), then n_keys x
 *   { str16 rel_path ("" for `k` itself, names as stored, '\\'-joined)
 *     u64 last_write (FILETIME)
 *     u64 sd_hash (FNV-1a 64 of the owner+group+DACL descriptor | 1;
 *                  0 when it cannot be read)
 *     u32 n_values, n_values x { str16 name u32 type u32 size
 *                                u64 fnv1a64(data) [str8 data if RF_SNAP_DATA] } }
 *
 * The same code serves every backend (the core walks rf_key_get_info,
 * rf_read_values, rf_key_get_security and rf_key_subkeys), so a hive file,
 * the live registry and an app hive give comparable snapshots; the remote
 * backend has the agent run that code next to the registry. A key whose
 * last-write time moves while its values are read is read again (up to 8
 * times), so a row never pairs old times with new values. A subkey deleted
 * during the walk is left out.
 * @param max_keys at most this many keys (0 = 100,000); more: RF_SNAP_TRUNCATED
 * @retval RF_E_LIMIT deeper than 512 levels
 */
rf_status rf_key_snapshot(rf_hive *h, rf_key k, uint32_t flags, uint32_t max_keys, rf_bytes *out);

/**
 * Checks a serialized snapshot at `p` (at most `len` bytes) and returns its
 * size in bytes, so snapshots can be split and validated without a parser.
 * @retval RF_E_INVALID_DATA it is malformed or longer than `len`
 */
rf_status rf_snapshot_size(const uint8_t *p, size_t len, size_t *size_out);

/** FNV-1a 64 of `n` bytes: the value hash of snapshots. */
uint64_t rf_fnv1a64(const void *p, size_t n);

/* ------------------------------------------------------------------------ */
/* Change notification                                                       */
/* ------------------------------------------------------------------------ */

/** A set of watched keys of one hive. Opaque; close it before its hive. */
typedef struct rf_watch rf_watch;

/* What fires a watch (REG_NOTIFY_CHANGE_* values) */
#define RF_NOTIFY_NAME       0x1u  /* a subkey added or deleted */
#define RF_NOTIFY_ATTRIBUTES 0x2u
#define RF_NOTIFY_LAST_SET   0x4u  /* a value set or deleted */
#define RF_NOTIFY_SECURITY   0x8u
#define RF_NOTIFY_ALL        0xFu

typedef struct rf_watch_opts {
    size_t   struct_size;  /**< sizeof(rf_watch_opts) */
    uint32_t flags;        /**< RF_SNAP_SUBTREE (watch and snapshot the subtree), RF_SNAP_KEEP_DATA */
    uint32_t filter;       /**< RF_NOTIFY_* (not 0) */
    uint32_t max_keys;     /**< per snapshot (0 = 100,000) */
    uint32_t delay_ms;     /**< test hook: wait this long between a signal and the re-arm (<= 10,000) */
} rf_watch_opts;

#define RF_WATCH_OPTS_INIT { sizeof(rf_watch_opts), RF_SNAP_SUBTREE, RF_NOTIFY_ALL, 0u, 0u }

/** rf_watch_event.kind */
#define RF_WATCH_CHANGE 1u  /* key `index` changed: `snapshot` is its new state */
#define RF_WATCH_LOST   2u  /* key `index` cannot be watched any more (deleted...): `status` says why */

typedef struct rf_watch_event {
    uint32_t       kind;          /**< RF_WATCH_* */
    uint32_t       index;         /**< the key's position in rf_watch_open()'s array */
    uint64_t       seq;           /**< per key, from 1; a gap means snapshots were coalesced */
    uint64_t       time_ns;       /**< when the server saw it (monotonic, its own clock) */
    rf_status      status;        /**< RF_WATCH_LOST: why */
    const uint8_t *snapshot;      /**< RF_WATCH_CHANGE: rf_key_snapshot() bytes, *borrowed*
                                       until the next rf_watch_next()/rf_watch_close() */
    size_t         snapshot_len;
} rf_watch_event;

/**
 * Watches keys of one hive. Notifications are armed on every key first and
 * the baseline snapshots taken after, so nothing that changes after this
 * call returns can be missed: a change during a snapshot shows in it or
 * fires again. A key's newer snapshot replaces one still queued for it (a
 * slow reader sees the latest state, with a seq gap). No limit of 64 keys.
 * @param keys      n keys of `h` (duplicates allowed)
 * @param opts      options, or NULL for RF_WATCH_OPTS_INIT
 * @param baselines optional (may be NULL): an array of n rf_bytes; baselines[i]
 *                  gets the snapshot of keys[i] appended
 * @param out       receives an *owned* watch (rf_watch_close)
 * @retval RF_E_NOT_SUPPORTED a hive file (nothing changes it)
 * @retval RF_E_INVALID_PARAMETER filter 0 or outside RF_NOTIFY_ALL, n 0,
 *         delay_ms over 10,000
 */
rf_status rf_watch_open(rf_hive *h, const rf_key *keys, size_t n, const rf_watch_opts *opts,
                        rf_bytes *baselines, rf_watch **out);

/**
 * The next event, waiting up to `timeout_ms` (UINT32_MAX: forever). Events
 * of one key come in order. One thread at a time per watch.
 * @retval RF_E_TIMEOUT      none in time
 * @retval RF_E_NO_MORE_ITEMS the watch is over: stopped, or every key lost
 *         (queued events are delivered first)
 * @retval RF_E_CONNECTION   remote: the connection broke (RF_E_CONNECTION_CUT: a frame was cut)
 */
rf_status rf_watch_next(rf_watch *w, uint32_t timeout_ms, rf_watch_event *ev);

/** Ends the watch from any thread: a waiting rf_watch_next() returns
 *  RF_E_NO_MORE_ITEMS soon after (within ~50 ms). Idempotent. */
void rf_watch_stop(rf_watch *w);

/** Stops and frees the watch. NULL is a no-op. Not concurrently with rf_watch_next(). */
void rf_watch_close(rf_watch *w);

/* ------------------------------------------------------------------------ */
/* Hooks and profiling at the rf_* entry points                              */
/* ------------------------------------------------------------------------ */

/** What an rf_op_record describes: one rf_* entry point each. */
typedef enum rf_op {
    RF_OP_HIVE_OPEN = 1,   /**< rf_hive_open/_memory, rf_live_open, rf_remote_open; name = UTF-8 path in `text` */
    RF_OP_HIVE_CLOSE,
    RF_OP_HIVE_INFO,
    RF_OP_HIVE_ROOT,
    RF_OP_KEY_OPEN,        /**< rf_key_open(_utf16): name = the path */
    RF_OP_KEY_CHILD,
    RF_OP_KEY_NAME,
    RF_OP_KEY_CLASS,
    RF_OP_KEY_PARENT,
    RF_OP_KEY_INFO,
    RF_OP_KEY_SUBKEYS,     /**< count = subkeys */
    RF_OP_KEY_VALUES,      /**< count = values */
    RF_OP_KEY_SECURITY,    /**< rf_key_security and rf_key_get_security; bytes = descriptor */
    RF_OP_VALUE_OPEN,      /**< name = the value name */
    RF_OP_VALUE_INFO,
    RF_OP_VALUE_READ,      /**< bytes = data */
    RF_OP_READ_VALUES,     /**< count = rows, bytes = data of the rows found */
    RF_OP_SCAN,            /**< count = keys */
    RF_OP_VALUE_SET,       /**< write; name, bytes = data */
    RF_OP_VALUE_DELETE,    /**< write; name */
    RF_OP_KEY_CREATE,      /**< write; name = the path */
    RF_OP_KEY_DELETE,      /**< write; name = the path */
    RF_OP_KEY_RENAME,      /**< write; name = the new name */
    RF_OP_KEY_SET_SECURITY,/**< write; bytes = descriptor */
    RF_OP_SNAPSHOT,        /**< bytes = snapshot */
    RF_OP_WATCH_OPEN,      /**< count = keys */
    RF_OP_KEY_CLOSE,       /**< rf_key_close: the caller is done with the key (open/close pairs) */
    RF_OP_REQUEST,         /**< rf_remote_request: request_op, payload; write per the op table */
    RF_OP_KEY_IS_LINK,     /**< rf_key_is_link (a KEY_IS_LINK request remotely) */
    RF_OP_MAX
} rf_op;

#define RF_HOOK_PRE  1u   /* before the backend is called: a nonzero return vetoes */
#define RF_HOOK_POST 2u   /* after: status, duration, count, bytes filled in */
#define RF_OPREC_WRITE 0x1u  /* rf_op_record.flags: the op changes the registry */

/**
 * One operation as a hook sees it: typed fields, no request bytes to parse.
 * Pointers are *borrowed* for the duration of the callback.
 */
typedef struct rf_op_record {
    uint32_t        op;          /**< RF_OP_* */
    uint32_t        phase;       /**< RF_HOOK_PRE or RF_HOOK_POST */
    uint32_t        flags;       /**< RF_OPREC_WRITE */
    rf_hive        *hive;        /**< NULL for a failed open */
    const char     *backend;     /**< "regf", "nt", "remote" (NULL before an open succeeds) */
    rf_key          key;         /**< the key (the parent for open/child/create/delete); 0 none */
    rf_value        value;       /**< value ops: the value token (0 none) */
    const uint16_t *name;        /**< name or path argument, UTF-16 (NULL none) */
    size_t          name_chars;
    const char     *text;        /**< UTF-8 argument (rf_hive_open's path), NULL none */
    uint64_t        count;       /**< POST: rows, subkeys, keys... (op-specific, see rf_op) */
    uint64_t        bytes;       /**< POST: data bytes read or written */
    rf_status       status;      /**< POST: what the call returns */
    uint64_t        start_ns;    /**< monotonic clock at entry */
    uint64_t        duration_ns; /**< POST */
    /* Outputs, POST on success only (borrowed, like the pointers above):
     * appended after duration_ns so that a hook built against the fields
     * above reads the same layout. */
    rf_key          out_key;     /**< the key returned: hive_root, key_open, key_child, key_parent, key_create */
    const rf_key   *out_keys;    /**< key_subkeys: the `count` tokens filled in (NULL when only counted) */
    rf_name         out_name;    /**< key_name: the name returned */
    uint64_t        round_trips; /**< POST: requests the backend sent meanwhile (remote: agent round
                                      trips, other threads' on the same connection included); 0 elsewhere */
    /* RF_OP_REQUEST only (appended, as above): the agent op and its payload
     * as the caller built it (without the key's handle, which the backend
     * inserts). Borrowed. */
    uint32_t        request_op;
    const void     *payload;
    size_t          payload_len;
} rf_op_record;

/**
 * A hook: called with RF_HOOK_PRE before an operation (return nonzero to
 * veto it: it then fails with RF_E_ACCESS_DENIED, "vetoed by a hook", and
 * the backend is not called) and with RF_HOOK_POST after it (the return
 * value is ignored). Runs in the calling thread — for watches, in the
 * backend's watch threads too — so it must be thread-safe and must not call
 * rf_hook_set(). It may call rf_* functions (they are hooked too).
 */
typedef int (*rf_hook_fn)(void *ctx, const rf_op_record *rec);

/**
 * Installs the process-wide hook (fn NULL removes it). With none installed,
 * each rf_* entry point costs one predictable branch more than the backend
 * call (bench/hook_cost.c measures it).
 * @param phases RF_HOOK_PRE | RF_HOOK_POST: when fn is called
 */
void rf_hook_set(rf_hook_fn fn, void *ctx, uint32_t phases);

/** Static name of an RF_OP_* ("key_open", "read_values"...; "?" if unknown). */
const char *rf_op_name(uint32_t op);

/* ------------------------------------------------------------------------ */
/* Text helpers                                                              */
/* ------------------------------------------------------------------------ */

/** Upcases one UTF-16 code unit the way registry name comparison does. */
uint16_t rf_upcase(uint16_t c);

/**
 * Hash of a name as stored in lh subkey lists: h = h*37 + upcase(c) over
 * the UTF-16 code units.
 */
uint32_t rf_lh_hash(const uint16_t *name, size_t nchars);

/** The Marvin32 seed Windows uses for transaction-log entry hashes. */
#define RF_MARVIN32_LOG_SEED UINT64_C(0x82EF4D887A4E55C5)

/**
 * Marvin32 keyed hash of `len` bytes (Windows' HvLE log-entry checksums):
 * (high lane << 32) | low lane.
 */
uint64_t rf_marvin32(const void *data, size_t len, uint64_t seed);

/**
 * The checksum of a regf base block as Windows computes it (and checks at
 * 0x1FC): the XOR of the 127 little-endian dwords before it, 0 stored as 1
 * and 0xFFFFFFFF as 0xFFFFFFFE. `block` holds at least 508 bytes.
 */
uint32_t rf_base_block_checksum(const void *block);

/**
 * CRC-32 as zlib's crc32() computes it: rf_crc32(0, p, n) is the check of n
 * bytes, rf_crc32(rf_crc32(0, a, na), b, nb) that of a then b. regfast-agent's
 * frames carry it after their payload from protocol 3 on.
 */
uint32_t rf_crc32(uint32_t crc, const void *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* REGFAST_H */
