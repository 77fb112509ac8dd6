/*
 * regfast_backend.h — the backend implementor's API (kept apart from the
 * public header like libgit2's git2/sys/). The core owns `rf_hive`; it starts
 * with `const rf_backend_ops *ops` and a backend appends its private state,
 * the way SQLite's unixFile begins with sqlite3_file.
 */
#ifndef REGFAST_BACKEND_H
#define REGFAST_BACKEND_H

#include "regfast/regfast.h"

#define RF_BACKEND_OPS_VERSION 1

typedef struct rf_backend_ops rf_backend_ops;

/* The base of every backend's hive object. */
struct rf_hive {
    const rf_backend_ops *ops;
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
    /* forensics (cont.); NULL where a backend has no cells */
    rf_status (*deleted_read)(rf_hive *h, uint64_t record_offset, void *buf, size_t cap, size_t *len_out);
    rf_status (*slack)(rf_hive *h, rf_slack *out, size_t cap, size_t *n_out);
};

#endif
