/*
 * regfast_backend.h — the backend implementor's API (kept apart from the
 * public header like libgit2's git2/sys/). The core owns `rf_hive`; it starts
 * with `const rf_backend_ops *ops` and a backend appends its private state,
 * the way SQLite's unixFile begins with sqlite3_file.
 */
#ifndef REGFAST_BACKEND_H
#define REGFAST_BACKEND_H

#include "regfast/regfast.h"

/* 1: reads. 2 (the slots after `problems`, in this order): deleted_read and
 * slack (forensics), then writes, security get/set, snapshots, watches.
 * 3: requests (what hooks report as round trips). 4: the cells of one
 * record (token_offset, record_slack). 5: key_is_link, key_subkeys_hinted. The core reads a slot
 * only when `version` says it exists and it is not NULL (RF_OPS_HAS,
 * RF_OPS_HAS3, _HAS4, _HAS5); a missing slot answers RF_E_NOT_SUPPORTED (120). */
#define RF_BACKEND_OPS_VERSION 5

typedef struct rf_backend_ops rf_backend_ops;

/* The base of every backend's hive object. */
struct rf_hive {
    const rf_backend_ops *ops;
};

/* The base of every backend's watch object (the backend allocates it and
 * appends its state; the core dispatches through hive->ops). */
struct rf_watch {
    rf_hive *hive;
};

struct rf_backend_ops {
    int         version;      /* RF_BACKEND_OPS_VERSION; add slots only at the end */
    size_t      hive_size;    /* bytes the core allocates for the backend's hive object */
    const char *name;         /* "regf", "nt" */
    void      (*close)(rf_hive *h);   /* releases what open() acquired; core frees h */
    rf_status (*get_info)(rf_hive *h, rf_hive_info *out);
    rf_status (*root)(rf_hive *h, rf_key *out);
    rf_status (*key_child)(rf_hive *h, rf_key parent, const uint16_t *name, size_t nchars,
                           rf_key *out);
    rf_status (*key_name)(rf_hive *h, rf_key k, rf_name *out);
    rf_status (*key_class)(rf_hive *h, rf_key k, rf_name *out);
    rf_status (*key_parent)(rf_hive *h, rf_key k, rf_key *out);
    rf_status (*key_info)(rf_hive *h, rf_key k, rf_key_info *out);
    rf_status (*key_subkeys)(rf_hive *h, rf_key k, rf_key *out, size_t cap, size_t *n_out);
    rf_status (*key_values)(rf_hive *h, rf_key k, rf_value *out, size_t cap, size_t *n_out);
    rf_status (*key_security)(rf_hive *h, rf_key k, const uint8_t **sd, size_t *len);
    rf_status (*value_find)(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars,
                            rf_value *out);
    rf_status (*value_info)(rf_hive *h, rf_value v, rf_value_info *out);
    rf_status (*value_read)(rf_hive *h, rf_value v, void *buf, size_t cap,
                            const uint8_t **data_out, size_t *len_out);
    rf_status (*read_values)(rf_hive *h, rf_key k, const rf_name *names, size_t n,
                             const uint32_t *types, size_t n_types, uint32_t flags, rf_batch *b);
    /* base of the mapping batch offsets refer to; NULL for backends without one */
    rf_status (*mapping)(rf_hive *h, const uint8_t **base, size_t *len);
    rf_status (*scan)(rf_hive *h, rf_key start, rf_scan *s);   /* NULL: not supported */
    /* forensics; NULL where a backend has no cells */
    rf_status (*cell)(rf_hive *h, uint64_t file_offset, const uint8_t **payload, size_t *len,
                      int *allocated);
    rf_status (*deleted)(rf_hive *h, rf_deleted *out, size_t cap, size_t *n_out);
    /* whole-path open in one step (live: one NtOpenKeyEx from the deepest
     * cached ancestor); NULL: the core opens component by component */
    rf_status (*key_open)(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars, rf_key *out);
    /* damage a tolerant open skipped; NULL: none recorded (a backend without files) */
    rf_status (*problems)(rf_hive *h, const rf_problem **out, size_t *n_out, uint64_t *total_out);

    /* ---- version 2 ---- every slot may be NULL: "not supported" (120) */
    /* forensics (cont.): a carved record's bytes, slack; NULL where a backend has no cells */
    rf_status (*deleted_read)(rf_hive *h, uint64_t record_offset, void *buf, size_t cap, size_t *len_out);
    rf_status (*slack)(rf_hive *h, rf_slack *out, size_t cap, size_t *n_out);
    rf_status (*value_set)(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars, uint32_t type,
                           const void *data, size_t len);
    rf_status (*value_delete)(rf_hive *h, rf_key k, const uint16_t *name, size_t nchars);
    rf_status (*key_create)(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars,
                            uint32_t flags, rf_key *out, uint32_t *disposition);
    rf_status (*key_delete)(rf_hive *h, rf_key parent, const uint16_t *path, size_t nchars,
                            uint32_t flags);
    rf_status (*key_rename)(rf_hive *h, rf_key k, const uint16_t *new_name, size_t nchars);
    /* NULL: the core filters what key_security returns (the file backend) */
    rf_status (*key_get_security)(rf_hive *h, rf_key k, uint32_t si, void *buf, size_t cap,
                                  size_t *len_out, uint32_t *si_out);
    rf_status (*key_set_security)(rf_hive *h, rf_key k, uint32_t si, const void *sd, size_t len);
    /* NULL: the core's walk over rf_* (src/core/rf_snapshot.c); the remote
     * backend has the agent run that walk next to the registry */
    rf_status (*snapshot)(rf_hive *h, rf_key k, uint32_t flags, uint32_t max_keys, rf_bytes *out);
    /* change notification: open arms every key, then takes the baselines */
    rf_status (*watch_open)(rf_hive *h, const rf_key *keys, size_t n, const rf_watch_opts *opts,
                            rf_bytes *baselines, rf_watch **out);
    rf_status (*watch_next)(rf_watch *w, uint32_t timeout_ms, rf_watch_event *ev);
    void      (*watch_stop)(rf_watch *w);   /* thread-safe */
    void      (*watch_close)(rf_watch *w);  /* frees w */
    /* version 3 */
    /* requests sent so far over the hive's connection (remote: agent round
     * trips; the hooks report the difference across a call). NULL: none */
    uint64_t  (*requests)(rf_hive *h);
    /* version 4: where tokens are cells. NULL: they are not (RF_E_NOT_SUPPORTED) */
    rf_status (*token_offset)(rf_hive *h, uint64_t token, uint64_t *file_offset);
    /* a key's (is_value 0: out[0]) or a value's (out[0] vk, out[1] data cell) slack */
    rf_status (*record_slack)(rf_hive *h, uint64_t token, int is_value, rf_slack out[2]);
    /* version 5: is the key a symbolic link (rf_key_is_link)? NULL: the
     * backend cannot tell (RF_E_NOT_SUPPORTED) */
    rf_status (*key_is_link)(rf_hive *h, rf_key k, int *out);
    /* key_subkeys with a hint byte per token (RF_SUBKEY_*); NULL: key_subkeys
     * and 0 hints */
    rf_status (*key_subkeys_hinted)(rf_hive *h, rf_key k, rf_key *out, uint8_t *hints, size_t cap, size_t *n_out);
};

/* Does `ops` have slot `field` (version and non-NULL)? */
#define RF_OPS_HAS(ops, field) \
    ((ops)->version >= 2 && (ops)->field != NULL)
/* ...for a version-3 slot */
#define RF_OPS_HAS3(ops, field) \
    ((ops)->version >= 3 && (ops)->field != NULL)
/* ...for a version-4 slot */
#define RF_OPS_HAS4(ops, field) \
    ((ops)->version >= 4 && (ops)->field != NULL)
/* ...for a version-5 slot */
#define RF_OPS_HAS5(ops, field) \
    ((ops)->version >= 5 && (ops)->field != NULL)

#endif
