# regfast.pxd — mirrors include/regfast/regfast.h, same order, no logic.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "regfast/regfast.h" nogil:
    ctypedef int32_t rf_status
    enum:
        RF_OK
        RF_E_NOT_FOUND
        RF_E_ACCESS_DENIED
        RF_E_INVALID_HANDLE
        RF_E_NO_MEMORY
        RF_E_INVALID_DATA
        RF_E_INVALID_PARAMETER
        RF_E_NOT_SUPPORTED
        RF_E_INSUFFICIENT_BUFFER
        RF_E_BAD_PATHNAME
        RF_E_MORE_DATA
        RF_E_NO_MORE_ITEMS
        RF_E_KEY_DELETED
        RF_E_PRIVILEGE_NOT_HELD
        RF_E_UNSUPPORTED_TYPE
        RF_CUSTOMER_BIT
        RF_E_CORRUPT
        RF_E_UNSUPPORTED_FORMAT
        RF_E_IO
        RF_E_LIMIT
    uint64_t RF_NO_OFFSET

    ctypedef struct rf_error:
        rf_status code
        int64_t native
        uint64_t offset
        char message[256]

    const rf_error *rf_last_error()
    void rf_clear_error()
    const char *rf_status_text(rf_status st)

    enum:
        RF_REG_NONE
        RF_REG_SZ
        RF_REG_EXPAND_SZ
        RF_REG_BINARY
        RF_REG_DWORD
        RF_REG_DWORD_BIG_ENDIAN
        RF_REG_LINK
        RF_REG_MULTI_SZ
        RF_REG_RESOURCE_LIST
        RF_REG_FULL_RESOURCE_DESCRIPTOR
        RF_REG_RESOURCE_REQUIREMENTS_LIST
        RF_REG_QWORD

    ctypedef struct rf_hive:
        pass
    ctypedef uint64_t rf_key
    ctypedef uint64_t rf_value

    ctypedef struct rf_name:
        const void *ptr
        uint32_t nbytes
        uint32_t utf16

    enum:
        RF_OPEN_LENIENT
        RF_OPEN_TOLERANT
        RF_OPEN_COPY

    ctypedef struct rf_open_opts:
        size_t struct_size
        uint32_t flags
        uint32_t max_depth
        uint32_t max_subkeys
        uint32_t max_values

    rf_status rf_hive_open(const char *path, const rf_open_opts *opts, rf_hive **out)
    rf_status rf_hive_open_memory(const void *data, size_t len, const rf_open_opts *opts, rf_hive **out)
    void rf_hive_close(rf_hive *h)

    ctypedef struct rf_hive_info:
        uint32_t major, minor
        uint32_t seq_primary
        uint32_t seq_secondary
        int32_t dirty
        int32_t checksum_ok
        uint64_t last_write
        uint32_t file_type
        uint32_t file_format
        uint64_t file_size
        uint64_t hbins_size
        uint64_t hbins_found
        uint64_t cells_allocated
        uint64_t cells_free
        uint64_t nk_cells
        uint64_t vk_cells
        uint16_t file_name[32]
        uint32_t file_name_chars

    enum:
        RF_PROBLEM_CHECKSUM
        RF_PROBLEM_BASE_BLOCK
        RF_PROBLEM_TRUNCATED
        RF_PROBLEM_HBIN
        RF_PROBLEM_CELL
        RF_PROBLEM_ROOT
        RF_PROBLEM_SUBKEYS
        RF_PROBLEM_VALUES
        RF_MAX_PROBLEMS

    ctypedef struct rf_problem:
        uint64_t offset
        uint64_t length
        uint32_t kind
        char reason[148]

    rf_status rf_hive_problems(rf_hive *h, const rf_problem **out, size_t *n_out, uint64_t *total_out)

    rf_status rf_hive_get_info(rf_hive *h, rf_hive_info *out)
    rf_status rf_hive_root(rf_hive *h, rf_key *out)

    rf_status rf_key_open(rf_hive *h, rf_key parent, const char *path, size_t len, rf_key *out)
    rf_status rf_key_open_utf16(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars, rf_key *out)
    rf_status rf_key_child(rf_hive *h, rf_key parent, const uint16_t *name, size_t nchars, rf_key *out)
    rf_status rf_key_name(rf_hive *h, rf_key k, rf_name *out)
    rf_status rf_key_class(rf_hive *h, rf_key k, rf_name *out)
    rf_status rf_key_parent(rf_hive *h, rf_key k, rf_key *out)
    rf_status rf_key_close(rf_hive *h, rf_key k)

    ctypedef struct rf_key_info:
        uint64_t last_write
        uint32_t n_subkeys
        uint32_t n_values
        uint32_t max_name_len
        uint32_t max_class_len
        uint32_t max_value_name_len
        uint32_t max_value_data_len
        uint32_t class_len
        uint32_t flags
        uint64_t security_offset

    rf_status rf_key_get_info(rf_hive *h, rf_key k, rf_key_info *out)
    rf_status rf_key_is_link(rf_hive *h, rf_key k, int *out)
    rf_status rf_key_subkeys_hinted(rf_hive *h, rf_key k, rf_key *out, uint8_t *hints, size_t cap, size_t *n_out)
    enum: RF_SUBKEY_NO_SUBKEYS
    enum: RF_SUBKEY_HAS_SUBKEYS
    rf_status rf_key_subkeys(rf_hive *h, rf_key k, rf_key *out, size_t cap, size_t *n_out)
    rf_status rf_key_values(rf_hive *h, rf_key k, rf_value *out, size_t cap, size_t *n_out)
    rf_status rf_key_security(rf_hive *h, rf_key k, const uint8_t **sd_out, size_t *len_out)

    enum:
        RF_VALUE_INLINE
        RF_VALUE_BIG_DATA

    ctypedef struct rf_value_info:
        rf_name name
        uint32_t type
        uint32_t data_len
        uint32_t flags

    rf_status rf_value_open(rf_hive *h, rf_key k, const char *name, size_t len, rf_value *out)
    rf_status rf_value_open_utf16(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars, rf_value *out)
    rf_status rf_value_get_info(rf_hive *h, rf_value v, rf_value_info *out)
    rf_status rf_value_read(rf_hive *h, rf_value v, void *buf, size_t cap,
                            const uint8_t **data_out, size_t *len_out)

    uint64_t RF_BATCH_IN_ARENA
    enum:
        RF_BATCH_FULL
        RF_BATCH_COPY

    ctypedef struct rf_batch:
        size_t struct_size
        size_t cap
        size_t n
        uint32_t *type
        int32_t *status
        uint64_t *offset
        uint32_t *length
        rf_name *name
        uint8_t *arena
        size_t arena_cap
        size_t arena_used
        rf_value *token

    rf_status rf_read_values(rf_hive *h, rf_key k, const rf_name *names, size_t n,
                             const uint32_t *types, size_t n_types, uint32_t flags, rf_batch *b)
    rf_status rf_hive_mapping(rf_hive *h, const uint8_t **base_out, size_t *len_out)

    enum:
        RF_SI_OWNER
        RF_SI_GROUP
        RF_SI_DACL
        RF_SI_SACL

    enum:
        RF_SCAN_VALUES
        RF_SCAN_SKIP_ERRORS
        RF_SCAN_SKIP_VALUE_ERRORS
        RF_NAME_UTF16_BIT
    uint64_t RF_SCAN_KEY_NAME_AT(uint64_t token)
    uint64_t RF_SCAN_VALUE_NAME_AT(uint64_t token)

    ctypedef int (*rf_progress_fn)(void *ctx, uint64_t keys_done, uint64_t keys_total) noexcept nogil

    ctypedef struct rf_scan:
        size_t struct_size
        uint32_t flags
        size_t key_cap, n_keys
        uint32_t *key_token
        int32_t *key_parent
        uint64_t *key_last_write
        uint32_t *key_name_len
        int32_t *key_status
        uint16_t *key_depth
        uint32_t *key_n_values
        size_t value_cap, n_values
        uint32_t *value_key
        uint32_t *value_token
        uint32_t *value_name_len
        uint32_t *value_type
        uint32_t *value_offset
        uint32_t *value_length
        int32_t *value_status
        rf_progress_fn progress
        void *progress_ctx

    rf_status rf_hive_scan(rf_hive *h, rf_key start, rf_scan *s)

    rf_status rf_hive_cell(rf_hive *h, uint64_t file_offset, const uint8_t **payload_out,
                           size_t *len_out, int *allocated_out)
    enum:
        RF_DELETED_KEY
        RF_DELETED_VALUE
    ctypedef struct rf_deleted:
        uint32_t kind
        uint32_t confidence
        uint64_t offset
        rf_name name
        uint64_t last_write
        uint64_t parent
        uint32_t n_values
        uint32_t type
        uint32_t data_len
        uint32_t data_state
        uint64_t data_offset
        uint32_t source
        uint32_t data_flags
        uint64_t owner
        uint64_t token
        uint64_t parent_token
    enum:
        RF_DELETED_FREE
        RF_DELETED_UNREFERENCED
        RF_DELETED_SLACK
        RF_DELETED_REMNANT
    rf_status rf_hive_deleted(rf_hive *h, rf_deleted *out, size_t cap, size_t *n_out)
    rf_status rf_hive_deleted_read(rf_hive *h, uint64_t record_offset, void *buf, size_t cap,
                                   size_t *len_out)
    enum:
        RF_CELL_NK
        RF_CELL_VK
        RF_CELL_SUBKEY_LIST
        RF_CELL_VALUE_LIST
        RF_CELL_DATA
        RF_CELL_DB
        RF_CELL_DB_LIST
        RF_CELL_DB_SEGMENT
        RF_CELL_SK
        RF_CELL_CLASS
    ctypedef struct rf_slack:
        uint64_t cell
        uint64_t offset
        uint32_t length
        uint32_t kind
    rf_status rf_hive_slack(rf_hive *h, rf_slack *out, size_t cap, size_t *n_out)
    rf_status rf_key_slack(rf_hive *h, rf_key k, rf_slack *out)
    rf_status rf_value_slack(rf_hive *h, rf_value v, rf_slack *out)
    rf_status rf_hive_token_offset(rf_hive *h, uint64_t token, uint64_t *file_offset_out)

    enum:
        RF_HKEY_CLASSES_ROOT
        RF_HKEY_CURRENT_USER
        RF_HKEY_LOCAL_MACHINE
        RF_HKEY_USERS
        RF_HKEY_CURRENT_CONFIG
        RF_VIEW_NATIVE
        RF_VIEW_64
        RF_VIEW_32
    rf_status rf_live_open(uint32_t root, uint32_t view, uint32_t access, rf_hive **out)

    rf_status rf_sd_to_sddl(const uint8_t *sd, size_t len, char *buf, size_t cap, size_t *len_out)

    # writes, security, snapshots (live backends; a hive file answers RF_E_NOT_SUPPORTED)
    ctypedef struct rf_bytes:
        uint8_t *data
        size_t len
        size_t cap
    void rf_bytes_free(rf_bytes *b)
    enum:
        RF_CREATE_VOLATILE
        RF_CREATED_NEW
        RF_OPENED_EXISTING
        RF_DELETE_TREE
        RF_SNAP_SUBTREE
        RF_SNAP_KEEP_DATA
    rf_status rf_value_set(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars, uint32_t type,
                           const void *data, size_t len)
    rf_status rf_value_delete(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars)
    rf_status rf_key_create(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars,
                            uint32_t flags, rf_key *out, uint32_t *disposition)
    rf_status rf_key_delete(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars,
                            uint32_t flags)
    rf_status rf_key_rename(rf_hive *h, rf_key k, const uint16_t *new_name, size_t nchars)
    uint64_t rf_fnv1a64(const void *p, size_t n)
    rf_status rf_key_get_security(rf_hive *h, rf_key k, uint32_t si, void *buf, size_t cap,
                                  size_t *len_out, uint32_t *si_out)
    rf_status rf_key_set_security(rf_hive *h, rf_key k, uint32_t si, const void *sd, size_t len)
    rf_status rf_key_snapshot(rf_hive *h, rf_key k, uint32_t flags, uint32_t max_keys, rf_bytes *out)

    # change notification
    ctypedef struct rf_watch:
        pass
    enum:
        RF_NOTIFY_ALL
        RF_WATCH_CHANGE
        RF_WATCH_LOST
        RF_E_TIMEOUT
    ctypedef struct rf_watch_opts:
        size_t struct_size
        uint32_t flags
        uint32_t filter
        uint32_t max_keys
        uint32_t delay_ms
    ctypedef struct rf_watch_event:
        uint32_t kind
        uint32_t index
        uint64_t seq
        uint64_t time_ns
        rf_status status
        const uint8_t *snapshot
        size_t snapshot_len
    rf_status rf_watch_open(rf_hive *h, const rf_key *keys, size_t n, const rf_watch_opts *opts,
                            rf_bytes *baselines, rf_watch **out)
    rf_status rf_watch_next(rf_watch *w, uint32_t timeout_ms, rf_watch_event *ev)
    void rf_watch_stop(rf_watch *w)
    void rf_watch_close(rf_watch *w)

    uint16_t rf_upcase(uint16_t c)
    uint32_t rf_lh_hash(const uint16_t *name, size_t nchars)
    uint64_t rf_marvin32(const void *data, size_t len, uint64_t seed)
    uint32_t rf_base_block_checksum(const void *block)

    # Hooks: each extension module links its own copy of the core, so each
    # hands regfast._hooks the address of its rf_hook_set (a capsule).
    ctypedef struct rf_op_record:
        pass
    ctypedef int (*rf_hook_fn)(void *ctx, const rf_op_record *rec)
    void rf_hook_set(rf_hook_fn fn, void *ctx, uint32_t phases)
    const char *rf_op_name(uint32_t op)


# regfast_remote.h — the remote backend (the live registry through regfast-agent)
cdef extern from "regfast/regfast_remote.h" nogil:
    ctypedef struct rf_transport:
        size_t struct_size
        void *ctx

    ctypedef struct rf_remote:
        pass

    rf_status rf_transport_fds(int fd_read, int fd_write, int own, rf_transport *out)
    rf_status rf_remote_connect(const rf_transport *t, uint32_t timeout_ms, rf_remote **out)
    rf_status rf_remote_open(rf_remote *c, uint32_t root, uint32_t view, uint32_t access, rf_hive **out)
    void rf_remote_release(rf_remote *c)
    ctypedef struct rf_remote_info:
        size_t struct_size
        uint32_t version
        uint32_t pid
        uint32_t max_request
        uint32_t max_response
        char description[160]
        rf_status dead
        uint64_t requests
        uint64_t bytes_in
        uint64_t bytes_out
    rf_status rf_remote_get_info(rf_remote *c, rf_remote_info *out)
    rf_status rf_remote_set_timeout(rf_remote *c, uint32_t timeout_ms)
    void rf_remote_kill(rf_remote *c, const char *why)
    rf_remote *rf_remote_of(rf_hive *h)
    rf_status rf_remote_request(rf_hive *h, rf_key k, uint16_t op, const void *payload, size_t len,
                                rf_bytes *reply)
