/*
 * rf_secdesc.c — checking and trimming self-relative security descriptors,
 * so that every backend answers rf_key_get_security(si) alike: a hive file
 * stores the whole descriptor in its sk cell and the core keeps the parts
 * asked for, as RegGetKeySecurity does for the live registry.
 *
 * Layout [MS-DTYP 2.4.6, self-relative]: +0 Revision u8 (1), +1 Sbz1,
 * +2 Control u16, +4 OffsetOwner, +8 OffsetGroup, +12 OffsetSacl,
 * +16 OffsetDacl (u32 each, from the start; 0 = absent). SID [2.4.2.2]:
 * 8 + 4 x SubAuthorityCount (<= 15) bytes. ACL [2.4.5]: AclSize u16 at +2.
 */
#include "core/rf_internal.h"

#define SE_DACL_PRESENT        0x0004u
#define SE_DACL_DEFAULTED      0x0008u
#define SE_SACL_PRESENT        0x0010u
#define SE_SACL_DEFAULTED      0x0020u
#define SE_DACL_AUTO_INHERITED 0x0400u
#define SE_SACL_AUTO_INHERITED 0x0800u
#define SE_DACL_PROTECTED      0x1000u
#define SE_SACL_PROTECTED      0x2000u
#define SE_OWNER_DEFAULTED     0x0001u
#define SE_GROUP_DEFAULTED     0x0002u
#define SE_SELF_RELATIVE       0x8000u
#define SD_HEADER 20u

typedef struct part { uint32_t off, len; } part;

/* One part's extent: SIDs from their count, ACLs from AclSize. */
static rf_status extent(const uint8_t *sd, size_t len, uint32_t off, int is_acl, const char *what, part *out)
{
    out->off = out->len = 0;
    if (!off) return RF_OK;
    if (off < SD_HEADER || off > len || len - off < 8)
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                        "security descriptor: the %s at offset %u is outside its %zu bytes", what, off, len);
    uint32_t n = is_acl ? rf_le16(sd + off + 2) : 8u + 4u * sd[off + 1];
    if ((!is_acl && (sd[off] != 1 || sd[off + 1] > 15)) || (is_acl && n < 8) || n > len - off)
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                        "security descriptor: the %s at offset %u (%u bytes) is malformed or truncated",
                        what, off, n);
    out->off = off;
    out->len = n;
    return RF_OK;
}

/* Checks the header and every part; *present = RF_SI_* parts it has. */
static rf_status parts_of(const uint8_t *sd, size_t len, part p[4], uint32_t *present)
{
    if (!sd || len < SD_HEADER || sd[0] != 1)
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                        "not a self-relative security descriptor (%zu bytes, revision %u)", len,
                        sd && len ? sd[0] : 0u);
    uint16_t control = rf_le16(sd + 2);
    if (!(control & SE_SELF_RELATIVE))
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0, "security descriptor is not self-relative");
    rf_status st;
    if ((st = extent(sd, len, rf_le32(sd + 4), 0, "owner SID", &p[0])) ||
        (st = extent(sd, len, rf_le32(sd + 8), 0, "group SID", &p[1])) ||
        (st = extent(sd, len, rf_le32(sd + 12), 1, "SACL", &p[2])) ||
        (st = extent(sd, len, rf_le32(sd + 16), 1, "DACL", &p[3])))
        return st;
    *present = (p[0].len ? RF_SI_OWNER : 0) | (p[1].len ? RF_SI_GROUP : 0) |
               ((control & SE_SACL_PRESENT) ? RF_SI_SACL : 0) | ((control & SE_DACL_PRESENT) ? RF_SI_DACL : 0);
    return RF_OK;
}

rf_status rfi_sd_check(const uint8_t *sd, size_t len, uint32_t *present)
{
    part p[4];
    return parts_of(sd, len, p, present);
}

rf_status rfi_sd_filter(const uint8_t *sd, size_t len, uint32_t si, void *buf, size_t cap, size_t *len_out,
                        uint32_t *si_out)
{
    part p[4];
    uint32_t present;
    *len_out = 0;
    if (si_out) *si_out = 0;
    rf_status st = parts_of(sd, len, p, &present);
    if (st) return st;
    uint32_t keep = si ? (si & present) : present;
    if (keep == present) { /* everything it has: the stored bytes, unchanged */
        *len_out = len;
        if (si_out) *si_out = present;
        if (cap < len) return rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "descriptor of %zu bytes", len);
        memcpy(buf, sd, len);
        return RF_OK;
    }
    static const uint32_t bit[4] = { RF_SI_OWNER, RF_SI_GROUP, RF_SI_SACL, RF_SI_DACL };
    size_t need = SD_HEADER;
    for (int i = 0; i < 4; i++)
        if ((keep & bit[i]) && p[i].len) need += (p[i].len + 3u) & ~3u;
    *len_out = need;
    if (si_out) *si_out = keep;
    if (cap < need) return rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0, "descriptor of %zu bytes", need);
    uint8_t *o = buf;
    uint16_t control = rf_le16(sd + 2);
    if (!(keep & RF_SI_OWNER)) control &= (uint16_t)~SE_OWNER_DEFAULTED;
    if (!(keep & RF_SI_GROUP)) control &= (uint16_t)~SE_GROUP_DEFAULTED;
    if (!(keep & RF_SI_SACL))
        control &= (uint16_t)~(SE_SACL_PRESENT | SE_SACL_DEFAULTED | SE_SACL_AUTO_INHERITED | SE_SACL_PROTECTED);
    if (!(keep & RF_SI_DACL))
        control &= (uint16_t)~(SE_DACL_PRESENT | SE_DACL_DEFAULTED | SE_DACL_AUTO_INHERITED | SE_DACL_PROTECTED);
    memset(o, 0, SD_HEADER);
    o[0] = 1;
    o[2] = (uint8_t)control;
    o[3] = (uint8_t)(control >> 8);
    size_t at = SD_HEADER;
    static const int field[4] = { 4, 8, 12, 16 };
    for (int i = 0; i < 4; i++) {
        if (!(keep & bit[i]) || !p[i].len) continue;
        rfi_put32(o + field[i], (uint32_t)at);
        memcpy(o + at, sd + p[i].off, p[i].len);
        size_t padded = (p[i].len + 3u) & ~3u;
        memset(o + at + p[i].len, 0, padded - p[i].len);
        at += padded;
    }
    return RF_OK;
}
