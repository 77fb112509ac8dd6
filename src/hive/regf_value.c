/*
 * regf_value.c — vk records and value data: inline, one cell, or big data.
 *
 * The vk's data length is the truth for every type, including the device
 * property types 0xFFFF00xx that one peer reads to the end of the file.
 * Data lives in one of three places:
 *   - inline: high bit of data_len set; up to 4 bytes in the data-offset field;
 *   - one data cell: data_len must fit in the cell;
 *   - a "db" big-data record (format 1.4+, data_len > 16344): a list of
 *     segment cells, 16344 bytes each but the last. Not contiguous, so it is
 *     the one case that copies.
 */
#include "hive/regf_internal.h"

rf_status regf_locate(const regf_hive *h, uint32_t voff, const uint8_t *vk, regf_data_loc *d)
{
    uint32_t raw = regf_once32(vk + VK_DATA_LEN), off = rf_le32(vk + VK_DATA), clen;
    const uint8_t *p;
    memset(d, 0, sizeof *d);
    d->len = raw & ~VK_DATA_INLINE;
    if (raw & VK_DATA_INLINE) {
        if (d->len > 4)
            return rfi_fail(RF_E_CORRUPT, regf_file_off(voff), 0,
                            "vk at 0x%llx: inline data length %u exceeds the 4-byte field",
                            (unsigned long long)regf_file_off(voff), d->len);
        d->flags = RF_VALUE_INLINE;
        d->ptr = vk + VK_DATA;
        return RF_OK;
    }
    if (d->len == 0) {
        d->ptr = vk + VK_DATA; /* any valid pointer: nothing is read */
        return RF_OK;
    }
    if (h->minor >= 4 && d->len > REGF_BIG_SEGMENT) {
        rf_status st = regf_record(h, off, "db", 8, &p, &clen);
        if (st) return st;
        /* Checked here, not only when the segments are read: callers size their
         * buffer from data_len, so a corrupt length (up to 2 GB) must not get
         * that far. Distinct segment cells cannot hold more than the hbins. */
        uint32_t n = rf_le16(p + 2);
        uint64_t need = ((uint64_t)d->len + REGF_BIG_SEGMENT - 1) / REGF_BIG_SEGMENT;
        if (n < need)
            return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                            "db at 0x%llx (vk at 0x%llx): %u segments cannot hold %u bytes (need %llu)",
                            (unsigned long long)regf_file_off(off), (unsigned long long)regf_file_off(voff),
                            n, d->len, (unsigned long long)need);
        if (d->len > h->bins_len)
            return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                            "db at 0x%llx (vk at 0x%llx): data_len %u exceeds the 0x%llx bytes of hbins",
                            (unsigned long long)regf_file_off(off), (unsigned long long)regf_file_off(voff),
                            d->len, (unsigned long long)h->bins_len);
        d->flags = RF_VALUE_BIG_DATA;
        d->db = off;
        return RF_OK;
    }
    rf_status st = regf_cell(h, off, "value data", &p, &clen);
    if (st) return st;
    if (d->len > clen)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(off), 0,
                        "value data at 0x%llx (vk at 0x%llx): data_len %u exceeds cell size %u",
                        (unsigned long long)regf_file_off(off), (unsigned long long)regf_file_off(voff),
                        d->len, clen);
    d->ptr = p;
    return RF_OK;
}

rf_status regf_value_info(rf_hive *base, rf_value v, rf_value_info *out)
{
    const regf_hive *h = (const regf_hive *)base;
    const uint8_t *vk;
    uint32_t len, nlen;
    regf_data_loc d;
    rf_status st = regf_vk_named(h, v, &vk, &len, &nlen);
    if (st) return st;
    if ((st = regf_locate(h, (uint32_t)v, vk, &d)) != RF_OK) return st;
    out->name.ptr = vk + VK_NAME;
    out->name.nbytes = nlen;
    out->name.utf16 = !(rf_le16(vk + VK_FLAGS) & VK_FLAG_COMP_NAME);
    if (out->name.utf16 && (out->name.nbytes & 1))
        return rfi_fail(RF_E_CORRUPT, regf_file_off((uint32_t)v), 0,
                        "vk at 0x%llx: UTF-16 name has an odd length of %u bytes",
                        (unsigned long long)regf_file_off((uint32_t)v), out->name.nbytes);
    out->type = rf_le32(vk + VK_TYPE);
    out->data_len = d.len;
    out->flags = d.flags;
    return RF_OK;
}

/* Copies a db record's segments into buf (cap >= d->len checked by caller). */
rf_status regf_read_big(const regf_hive *h, const regf_data_loc *d, uint8_t *buf)
{
    const uint8_t *db, *list, *seg;
    uint32_t dblen, llen, slen;
    rf_status st = regf_record(h, d->db, "db", 8, &db, &dblen);
    if (st) return st;
    uint32_t n = regf_once16(db + 2), list_off = rf_le32(db + 4);
    uint64_t need = ((uint64_t)d->len + REGF_BIG_SEGMENT - 1) / REGF_BIG_SEGMENT;
    if (n < need)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(d->db), 0,
                        "db at 0x%llx: %u segments cannot hold %u bytes (need %llu)",
                        (unsigned long long)regf_file_off(d->db), n, d->len, (unsigned long long)need);
    if ((st = regf_cell(h, list_off, "db segment list", &list, &llen)) != RF_OK) return st;
    if ((uint64_t)n * 4 > llen)
        return rfi_fail(RF_E_CORRUPT, regf_file_off(list_off), 0,
                        "db segment list at 0x%llx: %u entries do not fit in a %u-byte cell",
                        (unsigned long long)regf_file_off(list_off), n, llen);
    uint32_t done = 0;
    for (uint32_t i = 0; done < d->len; i++) {
        uint32_t soff = rf_le32(list + 4 * (size_t)i);
        uint32_t take = d->len - done < REGF_BIG_SEGMENT ? d->len - done : REGF_BIG_SEGMENT;
        if ((st = regf_cell(h, soff, "db segment", &seg, &slen)) != RF_OK) return st;
        if (take > slen)
            return rfi_fail(RF_E_CORRUPT, regf_file_off(soff), 0,
                            "db segment %u at 0x%llx: needs %u bytes but the cell holds %u", i,
                            (unsigned long long)regf_file_off(soff), take, slen);
        memcpy(buf + done, seg, take);
        done += take;
    }
    return RF_OK;
}

rf_status regf_value_read(rf_hive *base, rf_value v, void *buf, size_t cap,
                          const uint8_t **data_out, size_t *len_out)
{
    const regf_hive *h = (const regf_hive *)base;
    const uint8_t *vk;
    uint32_t len;
    regf_data_loc d;
    *data_out = NULL;
    *len_out = 0;
    rf_status st = regf_vk(h, v, &vk, &len);
    if (st) return st;
    if ((st = regf_locate(h, (uint32_t)v, vk, &d)) != RF_OK) return st;
    *len_out = d.len;
    if (!(d.flags & RF_VALUE_BIG_DATA)) {
        *data_out = d.ptr;
        return RF_OK;
    }
    if (cap < d.len || !buf) return RF_E_MORE_DATA;
    if ((st = regf_read_big(h, &d, buf)) != RF_OK) {
        *len_out = 0;
        return st;
    }
    *data_out = buf;
    return RF_OK;
}
