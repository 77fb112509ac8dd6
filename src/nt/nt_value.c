/*
 * nt_value.c — value reads: the one buffer-negotiation loop, value tokens,
 * and rf_read_values (the batch), with NtQueryMultipleValueKey where it
 * really works.
 *
 * Buffer negotiation. NtQueryValueKey (and NtQueryKey, NtEnumerate*) report
 * a too-small buffer as STATUS_BUFFER_OVERFLOW (the fixed header was written)
 * or STATUS_BUFFER_TOO_SMALL (not even the header fit), with ResultLength set
 * to the full size in both cases (measured under Wine 8; documented for
 * Windows). The loop sizes the first try from the key's MaxValueDataLen
 * (KeyFullInformation, queried once per handle and cached in the slot),
 * grows the per-thread buffer to ResultLength, and tries again; when the
 * second answer is larger than the first, the value grew between the two
 * calls and it simply goes round again. A value is never returned truncated.
 */
#include <stdlib.h>
#include "nt/nt_internal.h"

void (*nt_test_between_attempts)(void);

#define NT_MAX_ATTEMPTS 64

static NTSTATUS q_call(const nt_q *q, void *buf, ULONG len, ULONG *rl)
{
    switch (q->op) {
    case NT_Q_VALUE:      return nt.QueryValueKey(q->hd, q->name, q->cls, buf, len, rl);
    case NT_Q_KEY:        return nt.QueryKey(q->hd, q->cls, buf, len, rl);
    case NT_Q_ENUM_KEY:   return nt.EnumerateKey(q->hd, q->index, q->cls, buf, len, rl);
    case NT_Q_ENUM_VALUE: return nt.EnumerateValueKey(q->hd, q->index, q->cls, buf, len, rl);
    default:              return nt.QuerySecurityObject(q->hd, q->cls, buf, len, rl);
    }
}

NTSTATUS nt_grow(nt_hive *h, const nt_q *q, int which, size_t first, void **rec, ULONG *rec_len)
{
    size_t cap;
    uint8_t *buf = nt_scratch(which, first, &cap);
    ULONG last = 0;
    if (!buf) return (NTSTATUS)0xC0000017L; /* STATUS_NO_MEMORY */
    for (int attempt = 0; attempt < NT_MAX_ATTEMPTS; attempt++) {
        ULONG len = cap > 0xFFFFFFF0u ? 0xFFFFFFF0u : (ULONG)cap, rl = 0;
        NTSTATUS s = q_call(q, buf, len, &rl);
        if (s != NT_STATUS_BUFFER_OVERFLOW && s != NT_STATUS_BUFFER_TOO_SMALL) {
            *rec = buf;
            *rec_len = rl;
            return s;
        }
        if (h) {
            InterlockedIncrement64(&h->st.buffer_grows);
            if (last && rl > last) InterlockedIncrement64(&h->st.regrows); /* grew between two calls */
        }
        if (rl <= len) rl = len < 0x7FFFFFF0u ? len * 2 : 0xFFFFFFF0u; /* never loop on a size that fits */
        last = rl;
        if (nt_test_between_attempts && q->op == NT_Q_VALUE) nt_test_between_attempts();
        if (!(buf = nt_scratch(which, rl, &cap))) return (NTSTATUS)0xC0000017L;
    }
    return NT_STATUS_BUFFER_OVERFLOW;
}

rf_status nt_make_ustr(nt_ustr *us, const uint16_t *name, size_t nchars, int which)
{
    if (nchars > 32767)
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                        "name of %zu chars is longer than a UNICODE_STRING holds", nchars);
    if (nchars && ((uintptr_t)name & 1)) { /* the kernel wants WCHAR-aligned names */
        uint16_t *copy = nt_scratch(which, nchars * 2, NULL);
        if (!copy) return RF_E_NO_MEMORY;
        memcpy(copy, name, nchars * 2);
        name = copy;
    }
    us->Length = us->MaximumLength = (USHORT)(nchars * 2);
    us->Buffer = nchars ? (PWSTR)name : NULL;
    return RF_OK;
}

/* Fails a call on a key handle: tombstones on STATUS_KEY_DELETED, forgets a
 * handle closed behind our back, and records the error. */
rf_status nt_call_fail(nt_hive *h, nt_ref *r, NTSTATUS s, const char *api, const uint16_t *name, size_t n)
{
    nt_after_call(h, r, s);
    if (s == NT_STATUS_BUFFER_OVERFLOW)
        return rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, (int64_t)(uint32_t)s,
                        "%s: the data kept growing across %d attempts", api, NT_MAX_ATTEMPTS);
    return nt_fail(s, api, name, n);
}

rf_status nt_query_key(nt_hive *h, nt_ref *key, ULONG cls, void **rec, ULONG *rec_len)
{
    nt_q q = { NT_Q_KEY, key->handle, cls, 0, NULL };
    NTSTATUS s = nt_grow(h, &q, NT_BUF_AUX, 512, rec, rec_len);
    if (!NT_SUCCESS(s)) return nt_call_fail(h, key, s, "NtQueryKey", NULL, 0);
    if (cls == KeyFullInformation) nt_slot_set_hint(h, key, ((nt_key_full *)*rec)->MaxValueDataLen, 0);
    return RF_OK;
}

rf_status nt_query_value(nt_hive *h, nt_ref *key, const uint16_t *name, size_t nchars, ULONG cls,
                         void **rec, ULONG *rec_len)
{
    nt_ustr us;
    rf_status st = nt_make_ustr(&us, name, nchars, NT_BUF_PATH);
    if (st) return st;
    uint32_t hint = nt_slot_hint(h, key);
    if (hint == NT_NONE) { /* once per handle */
        void *kr;
        ULONG kl;
        hint = nt_query_key(h, key, KeyFullInformation, &kr, &kl) == RF_OK ? ((nt_key_full *)kr)->MaxValueDataLen : 0;
    }
    size_t first = (cls == KeyValuePartialInformation ? NT_KV_PARTIAL_HDR : NT_KV_FULL_HDR + us.Length + 8) +
                   (size_t)hint;
    nt_q q = { NT_Q_VALUE, key->handle, cls, 0, &us };
    NTSTATUS s = nt_grow(h, &q, NT_BUF_DATA, first, rec, rec_len);
    if (!NT_SUCCESS(s)) return nt_call_fail(h, key, s, "NtQueryValueKey", name, nchars);
    ULONG dlen = cls == KeyValuePartialInformation ? ((nt_kv_partial *)*rec)->DataLength
                                                  : ((nt_kv_full *)*rec)->DataLength;
    nt_slot_set_hint(h, key, dlen, 1); /* the value grew past MaxValueDataLen: remember */
    return RF_OK;
}

/* ------------------------------------------------------------------------ */
/* Value tokens                                                              */
/* ------------------------------------------------------------------------ */

rf_status nt_value_find(rf_hive *base, rf_key k, const uint16_t *name, size_t nchars, rf_value *out)
{
    nt_hive *h = (nt_hive *)base;
    nt_ref r;
    nt_ustr us;
    *out = 0;
    rf_status st = nt_make_ustr(&us, name, nchars, NT_BUF_PATH);
    if (st || (st = nt_acquire(h, k, &r)) != RF_OK) return st;
    /* Basic information: proves the value exists and gives its stored name. */
    nt_q q = { NT_Q_VALUE, r.handle, KeyValueBasicInformation, 0, &us };
    void *rec;
    ULONG rl;
    NTSTATUS s = nt_grow(h, &q, NT_BUF_NAME, NT_KV_BASIC_HDR + us.Length + 8, &rec, &rl);
    if (!NT_SUCCESS(s)) st = nt_call_fail(h, &r, s, "NtQueryValueKey", name, nchars);
    else {
        nt_kv_basic *b = rec;
        st = nt_value_intern(h, &r, (const uint16_t *)b->Name, b->NameLength / 2, out);
    }
    nt_release(h, &r);
    return st;
}

rf_status nt_value_info(rf_hive *base, rf_value v, rf_value_info *out)
{
    nt_hive *h = (nt_hive *)base;
    rf_key k;
    const uint16_t *name;
    size_t n;
    nt_ref r;
    memset(out, 0, sizeof *out);
    rf_status st = nt_value_resolve(h, v, &k, &name, &n);
    if (st || (st = nt_acquire(h, k, &r)) != RF_OK) return st;
    nt_ustr us;
    if ((st = nt_make_ustr(&us, name, n, NT_BUF_PATH)) == RF_OK) {
        /* A header-only buffer: STATUS_BUFFER_OVERFLOW with Type and
         * DataLength filled, and no data copied however big the value. */
        ULONG hdr[4], rl = 0;
        NTSTATUS s = nt.QueryValueKey(r.handle, &us, KeyValuePartialInformation, hdr, sizeof hdr, &rl);
        if (NT_SUCCESS(s) || s == NT_STATUS_BUFFER_OVERFLOW) {
            const nt_kv_partial *p = (const nt_kv_partial *)hdr;
            out->name.ptr = name;
            out->name.nbytes = (uint32_t)(n * 2);
            out->name.utf16 = 1;
            out->type = p->Type;
            out->data_len = p->DataLength;
        } else {
            st = nt_call_fail(h, &r, s, "NtQueryValueKey", name, n);
        }
    }
    nt_release(h, &r);
    return st;
}

rf_status nt_value_read(rf_hive *base, rf_value v, void *buf, size_t cap, const uint8_t **data_out,
                        size_t *len_out)
{
    nt_hive *h = (nt_hive *)base;
    rf_key k;
    const uint16_t *name;
    size_t n;
    nt_ref r;
    *data_out = NULL;
    *len_out = 0;
    rf_status st = nt_value_resolve(h, v, &k, &name, &n);
    if (st || (st = nt_acquire(h, k, &r)) != RF_OK) return st;
    void *rec;
    ULONG rl;
    if ((st = nt_query_value(h, &r, name, n, KeyValuePartialInformation, &rec, &rl)) == RF_OK) {
        nt_kv_partial *p = rec;
        *data_out = p->Data;
        *len_out = p->DataLength;
        /* the data is contiguous, in the thread's scratch; a caller that
         * gives a buffer big enough gets it there (as for big data offline) */
        if (buf && cap >= p->DataLength) {
            memcpy(buf, p->Data, p->DataLength);
            *data_out = buf;
        }
    }
    nt_release(h, &r);
    return st;
}

rf_status nt_child_count(nt_hive *h, nt_ref *r, int values, size_t cap, size_t *n_out)
{
    void *rec;
    ULONG rl;
    rf_status st = nt_query_key(h, r, KeyFullInformation, &rec, &rl);
    if (st) return st;
    const char *what = values ? "values" : "subkeys";
    size_t count = values ? ((nt_key_full *)rec)->Values : ((nt_key_full *)rec)->SubKeys;
    unsigned table = values ? h->max_values : h->max_slots;
    if (count > cap) {
        *n_out = count;
        return rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "the key has %zu %s, the array holds %zu",
                        count, what, cap);
    }
    if (count > table / 2)
        return rfi_fail(RF_E_LIMIT, RF_NO_OFFSET, 0, "the key has %zu %s: over half the %s table (%u); raise %s",
                        count, what, values ? "value" : "key", table, values ? "max_values" : "max_slots");
    return RF_OK;
}

rf_status nt_key_values(rf_hive *base, rf_key k, rf_value *out, size_t cap, size_t *n_out)
{
    nt_hive *h = (nt_hive *)base;
    nt_ref r;
    void *rec;
    ULONG rl;
    *n_out = 0;
    rf_status st = nt_acquire(h, k, &r);
    if (st) return st;
    if ((st = nt_child_count(h, &r, 1, cap, n_out)) != RF_OK) goto done;
    for (ULONG i = 0;; i++) {
        nt_q q = { NT_Q_ENUM_VALUE, r.handle, KeyValueBasicInformation, i, NULL };
        NTSTATUS s = nt_grow(h, &q, NT_BUF_NAME, 512, &rec, &rl);
        if (s == NT_STATUS_NO_MORE_ENTRIES) break;
        if (!NT_SUCCESS(s)) { st = nt_call_fail(h, &r, s, "NtEnumerateValueKey", NULL, 0); goto done; }
        if (i >= cap) { /* values were added since the count */
            *n_out = i + 1;
            st = RF_E_MORE_DATA;
            continue;
        }
        nt_kv_basic *b = rec;
        if ((st = nt_value_intern(h, &r, (const uint16_t *)b->Name, b->NameLength / 2, &out[i])) != RF_OK) goto done;
        *n_out = i + 1;
    }
    if (st == RF_E_MORE_DATA)
        rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "values were added during the enumeration: %zu now", *n_out);
done:
    nt_release(h, &r);
    return st;
}

/* ------------------------------------------------------------------------ */
/* NtQueryMultipleValueKey: probe once, never trust the status               */
/* ------------------------------------------------------------------------ */

static volatile LONG multi_state; /* 0 unknown, 1 works, -1 not usable */

int rf_live_multi_state(void) { return (int)multi_state; }

void rf_live_set_multi_state(int state)
{
    InterlockedExchange(&multi_state, state > 0 ? 1 : state < 0 ? -1 : 0);
}

/* Reads a value this thread has just read one by one through
 * NtQueryMultipleValueKey, and keeps it only if it returns the same bytes.
 * Wine 8's export returns STATUS_SUCCESS and writes nothing: the sentinels
 * in the entry and in RequiredBufferLength stay, and the probe fails. */
static void multi_probe(nt_ref *r, const nt_ustr *name, uint32_t type, const uint8_t *data, uint32_t len)
{
    int works = 0;
    if (nt.QueryMultipleValueKey) {
        size_t cap;
        uint8_t *buf = nt_scratch(NT_BUF_DATA, (size_t)len + 64, &cap);
        if (buf) {
            nt_ustr us = *name;
            nt_kv_entry e = { &us, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu };
            ULONG bl = (ULONG)(len + 64), req = 0xFFFFFFFFu;
            memset(buf, 0xA5, bl);
            NTSTATUS s = nt.QueryMultipleValueKey(r->handle, &e, 1, buf, &bl, &req);
            works = s == NT_STATUS_SUCCESS && e.Type == type && e.DataLength == len &&
                    e.DataOffset <= bl && bl - e.DataOffset >= len && memcmp(buf + e.DataOffset, data, len) == 0;
        }
    }
    InterlockedCompareExchange(&multi_state, works ? 1 : -1, 0);
}

/* ------------------------------------------------------------------------ */
/* Batched reads                                                             */
/* ------------------------------------------------------------------------ */

static int type_ok(uint32_t t, const uint32_t *types, size_t n_types)
{
    if (!types) return 1;
    for (size_t i = 0; i < n_types; i++)
        if (types[i] == t) return 1;
    return 0;
}

/* Arena position for the next record: Partial records sit so that their data
 * (12 bytes in) is 8-aligned in memory, Full records start 8-aligned. */
static size_t place(const uint8_t *arena, size_t used, int full)
{
    uintptr_t at = (uintptr_t)arena + used + (full ? 0 : NT_KV_PARTIAL_HDR);
    return used + ((0u - at) & 7u);
}

/* A row's name as a UNICODE_STRING: UTF-16 used in place when aligned,
 * Latin-1 widened (into the PATH scratch). */
static rf_status row_name(const rf_name *nm, nt_ustr *us)
{
    if (!nm->ptr && nm->nbytes) return RF_E_INVALID_PARAMETER;
    if (nm->utf16) {
        if (nm->nbytes & 1) return RF_E_INVALID_PARAMETER;
        return nt_make_ustr(us, nm->ptr, nm->nbytes / 2, NT_BUF_PATH);
    }
    if (nm->nbytes > 32767) return RF_E_INVALID_PARAMETER;
    uint16_t *w = nt_scratch(NT_BUF_PATH, (size_t)nm->nbytes * 2 + 2, NULL);
    if (!w) return RF_E_NO_MEMORY;
    for (uint32_t i = 0; i < nm->nbytes; i++) w[i] = ((const uint8_t *)nm->ptr)[i];
    return nt_make_ustr(us, w, nm->nbytes, NT_BUF_PATH);
}

static void row_clear(rf_batch *b, size_t i, rf_status st)
{
    b->status[i] = st;
    b->type[i] = 0;
    b->offset[i] = 0;
    b->length[i] = 0;
    if (b->name) { b->name[i].ptr = NULL; b->name[i].nbytes = 0; b->name[i].utf16 = 1; }
    if (b->token) b->token[i] = 0;
}

/* Is this status about the key rather than the row? Then the batch stops. */
static int key_level(NTSTATUS s)
{
    return s == NT_STATUS_KEY_DELETED || s == NT_STATUS_INVALID_HANDLE || s == NT_STATUS_ACCESS_DENIED ||
           s == (NTSTATUS)0xC0000024L /* OBJECT_TYPE_MISMATCH */;
}

typedef struct batch_ctx {
    nt_hive  *h;
    nt_ref   *r;
    rf_batch *b;
    const uint32_t *types;
    size_t    n_types;
    int       full;
    size_t    used, need;
    int       short_arena;
} batch_ctx;

/* The token column: an interned value token for each row found. */
static void row_token(batch_ctx *x, size_t i, const void *name, uint32_t nbytes)
{
    if (x->b->token && nt_value_intern(x->h, x->r, name, nbytes / 2, &x->b->token[i]) != RF_OK)
        x->b->token[i] = 0;
}

/*
 * One row through one NtQueryValueKey / NtEnumerateValueKey call written
 * straight into the arena. Returns the NTSTATUS (key-level ones stop the
 * batch; NO_MORE_ENTRIES ends an enumeration).
 */
static NTSTATUS one_row(batch_ctx *x, size_t i, const nt_ustr *us, ULONG index)
{
    rf_batch *b = x->b;
    ULONG cls = x->full ? KeyValueFullInformation : KeyValuePartialInformation;
    size_t hdr = x->full ? NT_KV_FULL_HDR : NT_KV_PARTIAL_HDR;
    size_t p = place(b->arena, x->used, x->full);
    size_t avail = b->arena && p < b->arena_cap ? b->arena_cap - p : 0;
    uint64_t hdrbuf[3];  /* 24 bytes: a header-only query when the arena has no room */
    uint8_t *rec;
    ULONG len, rl = 0;
    if (avail >= hdr) {
        rec = b->arena + p;
        len = avail > 0xFFFFFFF0u ? 0xFFFFFFF0u : (ULONG)avail;
    } else {
        rec = (uint8_t *)hdrbuf;
        len = (ULONG)hdr;
    }
    NTSTATUS s = us ? nt.QueryValueKey(x->r->handle, (nt_ustr *)us, cls, rec, len, &rl)
                    : nt.EnumerateValueKey(x->r->handle, index, cls, rec, len, &rl);
    if (s == NT_STATUS_NO_MORE_ENTRIES || key_level(s)) return s;
    if (i >= b->cap) return s; /* enumeration counting rows past cap */
    if (NT_SUCCESS(s) && s != NT_STATUS_BUFFER_OVERFLOW && rec != (uint8_t *)hdrbuf) {
        uint32_t type = x->full ? ((nt_kv_full *)rec)->Type : ((nt_kv_partial *)rec)->Type;
        uint32_t dlen = x->full ? ((nt_kv_full *)rec)->DataLength : ((nt_kv_partial *)rec)->DataLength;
        size_t doff = x->full ? ((nt_kv_full *)rec)->DataOffset : NT_KV_PARTIAL_HDR;
        int keep = type_ok(type, x->types, x->n_types);
        b->status[i] = keep ? RF_OK : RF_E_INVALID_DATA;
        b->type[i] = type; /* filtered rows keep their type, as the regf backend does */
        b->offset[i] = keep ? (RF_BATCH_IN_ARENA | (uint64_t)(p + doff)) : 0;
        b->length[i] = keep ? dlen : 0;
        if (x->full) row_token(x, i, rec + NT_KV_FULL_HDR, ((nt_kv_full *)rec)->NameLength);
        else row_token(x, i, us->Buffer, us->Length);
        if (b->name) {
            if (x->full) {
                b->name[i].ptr = rec + NT_KV_FULL_HDR;
                b->name[i].nbytes = ((nt_kv_full *)rec)->NameLength;
            } else {
                b->name[i].ptr = NULL;
                b->name[i].nbytes = 0;
            }
            b->name[i].utf16 = 1;
        }
        if (keep) {
            x->used = p + doff + dlen;
            x->need += (size_t)rl + 8;
        } else if (x->full && b->name) {
            x->used = p + NT_KV_FULL_HDR + ((nt_kv_full *)rec)->NameLength; /* keep the name only */
            x->need += NT_KV_FULL_HDR + ((nt_kv_full *)rec)->NameLength + 8;
        }
        return s;
    }
    if (s == NT_STATUS_BUFFER_OVERFLOW || s == NT_STATUS_BUFFER_TOO_SMALL || (NT_SUCCESS(s) && rec == (uint8_t *)hdrbuf)) {
        /* The header is there (we always offer at least its size): the type
         * decides between "filtered out" and "arena too small". */
        uint32_t type = x->full ? ((nt_kv_full *)rec)->Type : ((nt_kv_partial *)rec)->Type;
        uint32_t dlen = x->full ? ((nt_kv_full *)rec)->DataLength : ((nt_kv_partial *)rec)->DataLength;
        row_clear(b, i, RF_E_MORE_DATA);
        if (us) row_token(x, i, us->Buffer, us->Length);
        if (s == NT_STATUS_BUFFER_TOO_SMALL) { /* no header: size only */
            b->length[i] = rl > hdr ? (uint32_t)(rl - hdr) : 0;
        } else if (!type_ok(type, x->types, x->n_types)) {
            b->status[i] = RF_E_INVALID_DATA;
            b->type[i] = type;
            return NT_STATUS_SUCCESS;
        } else {
            b->length[i] = dlen;
        }
        if (b->name && x->full && s != NT_STATUS_BUFFER_TOO_SMALL) b->name[i].nbytes = ((nt_kv_full *)rec)->NameLength;
        if (!rl) rl = (ULONG)(hdr + dlen + (x->full ? ((nt_kv_full *)rec)->NameLength : 0));
        x->need += (size_t)rl + 8;
        x->short_arena = 1;
        return NT_STATUS_SUCCESS;
    }
    row_clear(b, i, nt_error(s)); /* 2 for a missing value, ... */
    return s;
}

static rf_status batch_multi(batch_ctx *x, const rf_name *names, size_t n, int *fallback)
{
    rf_batch *b = x->b;
    *fallback = 1;
    for (size_t i = 0; i < n; i++) /* names used in place: UTF-16, aligned */
        if (!names[i].utf16 || (names[i].nbytes & 1) || ((uintptr_t)names[i].ptr & 1) || names[i].nbytes > 65534 ||
            (!names[i].ptr && names[i].nbytes))
            return RF_OK;
    size_t need = n * (sizeof(nt_kv_entry) + sizeof(nt_ustr));
    uint8_t *mem = nt_scratch(NT_BUF_AUX, need, NULL);
    if (!mem) return RF_E_NO_MEMORY;
    nt_kv_entry *e = (nt_kv_entry *)mem;
    nt_ustr *us = (nt_ustr *)(mem + n * sizeof(nt_kv_entry));
    for (size_t i = 0; i < n; i++) {
        us[i].Length = us[i].MaximumLength = (USHORT)names[i].nbytes;
        us[i].Buffer = names[i].nbytes ? (PWSTR)names[i].ptr : NULL;
        e[i].ValueName = &us[i];
        e[i].DataLength = e[i].DataOffset = e[i].Type = 0;
    }
    size_t p = place(b->arena, 0, 1);
    if (!b->arena || p >= b->arena_cap) return RF_OK;
    ULONG bl = b->arena_cap - p > 0xFFFFFFF0u ? 0xFFFFFFF0u : (ULONG)(b->arena_cap - p), req = 0;
    NTSTATUS s = nt.QueryMultipleValueKey(x->r->handle, e, (ULONG)n, b->arena + p, &bl, &req);
    if (key_level(s)) {
        *fallback = 0;
        return nt_call_fail(x->h, x->r, s, "NtQueryMultipleValueKey", NULL, 0);
    }
    if (s != NT_STATUS_SUCCESS) return RF_OK; /* a missing value, too small: row by row */
    for (size_t i = 0; i < n; i++) {
        int keep = type_ok(e[i].Type, x->types, x->n_types);
        b->status[i] = keep ? RF_OK : RF_E_INVALID_DATA;
        b->type[i] = e[i].Type;
        b->offset[i] = keep ? (RF_BATCH_IN_ARENA | (uint64_t)(p + e[i].DataOffset)) : 0;
        b->length[i] = keep ? e[i].DataLength : 0;
        if (b->name) { b->name[i].ptr = NULL; b->name[i].nbytes = 0; b->name[i].utf16 = 1; }
        row_token(x, i, names[i].ptr, names[i].nbytes);
    }
    x->used = p + bl;
    InterlockedIncrement64(&x->h->st.multi_batches);
    *fallback = 0;
    return RF_OK;
}

rf_status nt_read_values(rf_hive *base, rf_key k, const rf_name *names, size_t n, const uint32_t *types,
                         size_t n_types, uint32_t flags, rf_batch *b)
{
    nt_hive *h = (nt_hive *)base;
    if (!b) return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "rf_batch is NULL");
    /* the core hands every backend a full-size rf_batch (token column included) */
    if (b->cap && (!b->type || !b->status || !b->offset || !b->length))
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "an rf_batch column is NULL");
    if (types && !n_types) types = NULL;
    b->n = 0;
    b->arena_used = 0;
    if (names && n > b->cap) {
        b->n = n;
        return rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "batch of %zu names, columns hold %zu rows", n, b->cap);
    }
    nt_ref r;
    rf_status st = nt_acquire(h, k, &r);
    if (st) return st;
    batch_ctx x = { h, &r, b, types, n_types, (flags & RF_BATCH_FULL) || !names, 0, 0, 0 };

    if (!names) { /* every value, in stored order: NtEnumerateValueKey Full */
        void *rec;
        ULONG rl;
        if ((st = nt_query_key(h, &r, KeyFullInformation, &rec, &rl)) != RF_OK) goto done;
        size_t count = ((nt_key_full *)rec)->Values;
        if (count > b->cap) {
            b->n = count;
            st = rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "the key has %zu values, columns hold %zu rows",
                          count, b->cap);
            goto done;
        }
        size_t i = 0;
        for (;; i++) {
            NTSTATUS s = one_row(&x, i, NULL, (ULONG)i);
            if (s == NT_STATUS_NO_MORE_ENTRIES) break;
            if (key_level(s)) { b->n = i < b->cap ? i : b->cap; st = nt_call_fail(h, &r, s, "NtEnumerateValueKey", NULL, 0); goto done; }
        }
        if (i > b->cap) {
            b->n = i;
            st = rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "values were added during the batch: %zu now", i);
            goto done;
        }
        b->n = i;
    } else {
        int fallback = 1;
        if (!x.full && n && multi_state > 0) {
            if ((st = batch_multi(&x, names, n, &fallback)) != RF_OK) goto done;
        }
        if (fallback) {
            x.used = x.need = 0;
            x.short_arena = 0;
            for (size_t i = 0; i < n; i++) {
                nt_ustr us;
                rf_status rs = row_name(&names[i], &us);
                if (rs) { row_clear(b, i, rs == RF_E_NO_MEMORY ? rs : RF_E_INVALID_PARAMETER); continue; }
                NTSTATUS s = one_row(&x, i, &us, 0);
                if (key_level(s)) {
                    b->n = i;
                    st = nt_call_fail(h, &r, s, "NtQueryValueKey", us.Buffer, us.Length / 2);
                    goto done;
                }
            }
            if (!x.full && multi_state == 0) { /* first Partial batch in this process: probe */
                for (size_t i = 0; i < n; i++) {
                    nt_ustr us;
                    if (b->status[i] != RF_OK || b->length[i] == 0 || row_name(&names[i], &us)) continue;
                    multi_probe(&r, &us, b->type[i], b->arena + (b->offset[i] & ~RF_BATCH_IN_ARENA), b->length[i]);
                    break;
                }
            }
        }
        b->n = n;
    }
    b->arena_used = x.short_arena ? x.need : x.used;
    if (x.short_arena)
        st = rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "arena of %zu bytes too small: %zu needed", b->arena_cap,
                      x.need);
done:
    nt_release(h, &r);
    return st;
}
