/*
 * regf_deleted.c — what deleted keys and values leave behind.
 *
 * Windows frees a deleted key's or value's cells by flipping the sign of
 * their size (and merging neighbours); the bytes stay until the space is
 * reused. A free cell whose payload still starts with a well-formed nk or vk
 * is a deleted record. We only trust what fits inside the free cell, and
 * score how much else checks out (the parent still exists, the name is
 * printable, the timestamp is plausible, the data cell is free and fits).
 */
#include "hive/regf_internal.h"

rf_status regf_cell_any(rf_hive *base, uint64_t file_offset, const uint8_t **payload, size_t *len,
                        int *allocated)
{
    const regf_hive *h = (const regf_hive *)base;
    *payload = NULL;
    *len = 0;
    *allocated = 0;
    if (file_offset < REGF_BASE_BLOCK || !regf_is_cell(h, file_offset - REGF_BASE_BLOCK))
        return rfi_fail(RF_E_NOT_FOUND, file_offset, 0, "no cell starts at 0x%llx",
                        (unsigned long long)file_offset);
    uint64_t off = file_offset - REGF_BASE_BLOCK;
    int32_t size = (int32_t)rf_le32(h->bins + off);
    *allocated = size < 0;
    *payload = h->bins + off + 4;
    *len = (size_t)(size < 0 ? -(int64_t)size : size) - 4; /* the open-time walk checked it */
    return RF_OK;
}

/* Names we would expect from Windows: no control characters. */
static int printable(const uint8_t *p, uint32_t nbytes, int utf16)
{
    if (nbytes == 0) return 1;
    if (utf16) {
        if (nbytes & 1) return 0;
        for (uint32_t i = 0; i < nbytes; i += 2)
            if (rf_le16(p + i) < 0x20) return 0;
        return 1;
    }
    for (uint32_t i = 0; i < nbytes; i++)
        if (p[i] < 0x20 || p[i] == 0x7F) return 0;
    return 1;
}

/* 1990-01-01 .. 2100-01-01 as FILETIME: outside that a timestamp is noise. */
#define FT_1990 119600064000000000ULL
#define FT_2100 159313248000000000ULL

static int deleted_nk(const regf_hive *h, uint64_t off, const uint8_t *p, uint32_t len, rf_deleted *d)
{
    if (len < NK_NAME || p[0] != 'n' || p[1] != 'k') return 0;
    uint32_t name_len = rf_le16(p + NK_NAME_LEN);
    if (name_len == 0 || name_len > len - NK_NAME) return 0;
    int utf16 = !(rf_le16(p + NK_FLAGS) & NK_FLAG_COMP_NAME);
    memset(d, 0, sizeof *d);
    d->kind = RF_DELETED_KEY;
    d->offset = regf_file_off((uint32_t)off);
    d->name.ptr = p + NK_NAME;
    d->name.nbytes = name_len;
    d->name.utf16 = utf16;
    d->last_write = rf_le64(p + NK_LAST_WRITE);
    d->n_values = rf_le32(p + NK_N_VALUES);
    d->parent = RF_NO_OFFSET;
    d->data_offset = RF_NO_OFFSET;
    uint32_t conf = 40;
    const uint8_t *pnk;
    uint32_t plen;
    uint32_t parent = rf_le32(p + NK_PARENT);
    if (regf_is_cell(h, parent) && (int32_t)rf_le32(h->bins + parent) < 0 &&
        regf_nk(h, parent, &pnk, &plen) == RF_OK) {
        d->parent = regf_file_off(parent);
        conf += 25;
    }
    if (printable(p + NK_NAME, name_len, utf16)) conf += 20;
    if (d->last_write >= FT_1990 && d->last_write < FT_2100) conf += 15;
    d->confidence = conf;
    return 1;
}

static int deleted_vk(const regf_hive *h, uint64_t off, const uint8_t *p, uint32_t len, rf_deleted *d)
{
    if (len < VK_NAME || p[0] != 'v' || p[1] != 'k') return 0;
    uint32_t name_len = rf_le16(p + VK_NAME_LEN);
    if (name_len > len - VK_NAME) return 0;
    int utf16 = !(rf_le16(p + VK_FLAGS) & VK_FLAG_COMP_NAME);
    memset(d, 0, sizeof *d);
    d->kind = RF_DELETED_VALUE;
    d->offset = regf_file_off((uint32_t)off);
    d->name.ptr = p + VK_NAME;
    d->name.nbytes = name_len;
    d->name.utf16 = utf16;
    d->type = rf_le32(p + VK_TYPE);
    d->parent = RF_NO_OFFSET;
    d->data_offset = RF_NO_OFFSET;
    uint32_t raw = rf_le32(p + VK_DATA_LEN), doff = rf_le32(p + VK_DATA);
    d->data_len = raw & ~VK_DATA_INLINE;
    uint32_t conf = 45;
    if (printable(p + VK_NAME, name_len, utf16)) conf += 20;
    if (raw & VK_DATA_INLINE) {
        if (d->data_len <= 4) {
            d->data_state = 1;
            d->data_offset = d->offset + 4 + VK_DATA;
            conf += 35;
        } else {
            d->data_state = 4;
        }
    } else if (d->data_len == 0) {
        d->data_state = 0;
        conf += 35;
    } else if (h->minor >= 4 && d->data_len > REGF_BIG_SEGMENT) {
        d->data_state = 4; /* big data: its segment list is rarely intact; not reassembled */
    } else if (regf_is_cell(h, doff)) {
        int32_t size = (int32_t)rf_le32(h->bins + doff);
        uint64_t cap = (uint64_t)(size < 0 ? -(int64_t)size : size) - 4;
        if (cap < d->data_len) {
            d->data_state = 4;
        } else {
            d->data_state = size > 0 ? 2 : 3;
            d->data_offset = regf_file_off(doff) + 4;
            conf += size > 0 ? 35 : 5;
        }
    } else {
        d->data_state = 4;
    }
    d->confidence = conf;
    return 1;
}

rf_status regf_deleted_records(rf_hive *base, rf_deleted *out, size_t cap, size_t *n_out)
{
    const regf_hive *h = (const regf_hive *)base;
    size_t n = 0;
    rf_deleted d;
    /* Walk cell starts in file order through the bitmap: only free cells. */
    for (uint64_t w = 0; w < (h->bins_len + 511) / 512; w++) {
        uint64_t bits = h->cell_start[w];
        while (bits) {
            uint64_t off = ((w << 6) + rf_ctz64(bits)) << 3;
            bits &= bits - 1;
            int32_t size = (int32_t)rf_le32(h->bins + off);
            if (size <= 4) continue; /* allocated, or too small to hold anything */
            const uint8_t *p = h->bins + off + 4;
            uint32_t len = (uint32_t)size - 4;
            if (deleted_nk(h, off, p, len, &d) || deleted_vk(h, off, p, len, &d)) {
                if (n < cap) out[n] = d;
                n++;
            }
        }
    }
    *n_out = n;
    return n > cap ? RF_E_MORE_DATA : RF_OK;
}
