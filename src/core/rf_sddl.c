/*
 * rf_sddl.c — self-relative SECURITY_DESCRIPTOR -> SDDL text, portable C.
 *
 * Produces what ConvertSecurityDescriptorToStringSecurityDescriptorW prints
 * with OWNER|GROUP|DACL|SACL requested, on a machine that is not a member of
 * the descriptor's domain. Sources for every formatting rule are noted where
 * the rule is applied; "Windows round trip" below means the Windows-generated
 * input -> output pairs published in Samba's test data
 * (libcli/security/tests/windows/{canonical,non_canonical}.txt).
 *
 * Layout read here [MS-DTYP 2.4.6 SECURITY_DESCRIPTOR, self-relative]:
 *   +0 Revision u8 (1)   +1 Sbz1 u8   +2 Control u16
 *   +4 OffsetOwner u32   +8 OffsetGroup u32   +12 OffsetSacl u32   +16 OffsetDacl u32
 * ACL [2.4.5]: +0 AclRevision u8, +1 Sbz1, +2 AclSize u16, +4 AceCount u16, +6 Sbz2 u16.
 * ACE [2.4.4]: +0 AceType u8, +1 AceFlags u8, +2 AceSize u16, +4 Mask u32, then
 *   the SID, or for object ACEs: +8 Flags u32, [ObjectType GUID], [InheritedObjectType GUID], SID.
 * SID [2.4.2.2]: +0 Revision u8 (1), +1 SubAuthorityCount u8 (<= 15),
 *   +2 IdentifierAuthority 6 bytes big-endian, +8 SubAuthority u32[count].
 *
 * Every field is read through rf_le16/rf_le32 after a bounds check against
 * the descriptor length; nothing is allocated; output goes through a sink that
 * counts the full length and copies only what fits, so a too-small buffer
 * gets RF_E_MORE_DATA with the exact size in one pass.
 */
#include <stdio.h>
#include <string.h>

#include "core/rf_internal.h"

/* Control bits [MS-DTYP 2.4.6]. */
#define SE_DACL_PRESENT          0x0004u
#define SE_SACL_PRESENT          0x0010u
#define SE_DACL_AUTO_INHERIT_REQ 0x0100u
#define SE_SACL_AUTO_INHERIT_REQ 0x0200u
#define SE_DACL_AUTO_INHERITED   0x0400u
#define SE_SACL_AUTO_INHERITED   0x0800u
#define SE_DACL_PROTECTED        0x1000u
#define SE_SACL_PROTECTED        0x2000u
#define SE_SELF_RELATIVE         0x8000u

#define SD_HEADER_SIZE  20u
#define ACL_HEADER_SIZE 8u
#define SID_HEADER_SIZE 8u
#define SID_MAX_SUBS    15u

/* Error messages print sizes and offsets as unsigned long long: "%llx" is
 * not understood by msvcrt's printf, which mingw builds may use. */
#define ULL(x) ((unsigned long long)(x))

/* ------------------------------------------------------------------------ */
/* Output sink                                                               */
/* ------------------------------------------------------------------------ */

typedef struct sink {
    char  *buf;   /* may be NULL when cap is 0 */
    size_t cap;
    size_t len;   /* characters produced so far, whether they fit or not */
} sink;

static void put(sink *s, const char *p, size_t n)
{
    if (s->len < s->cap) {
        size_t room = s->cap - s->len;
        memcpy(s->buf + s->len, p, n < room ? n : room);
    }
    s->len += n;
}

static void puts_(sink *s, const char *p) { put(s, p, strlen(p)); }

/*
 * Numbers are formatted here rather than with snprintf so the output never
 * depends on the C runtime (msvcrt's printf lacks some C99 conversions).
 * `min` pads with leading zeros; `upper` selects A-F.
 */
static void put_num(sink *s, uint64_t v, unsigned base, unsigned min, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = digits[v % base];
        v /= base;
    } while (v || sizeof tmp - i < min);
    put(s, tmp + i, sizeof tmp - i);
}

static void put_dec(sink *s, uint64_t v) { put_num(s, v, 10, 1, 0); }

/* ------------------------------------------------------------------------ */
/* SIDs                                                                      */
/* ------------------------------------------------------------------------ */

/*
 * SDDL SID aliases that stand for a fixed SID (Sddl.h of the current Windows
 * SDK, the "SID Strings" page of the Win32 docs, and [MS-DTYP 2.5.1.1]).
 * Domain-relative aliases (LA LG DA DG DU DC DD CA SA EA PA RS RO CN AP KA EK)
 * are left out on purpose: Windows only abbreviates them for its own domain,
 * which an offline hive does not know, so they print as S-1-5-21-... .
 * HO and SH appeared in Windows 10 1809-era SDKs; older systems print those
 * two SIDs numerically.
 */
static const struct sid_alias {
    char     name[3];
    uint8_t  auth;      /* identifier authority (all fit in one byte) */
    uint8_t  nsub;
    uint32_t sub[6];
} sid_aliases[] = {
    { "WD", 1, 1, { 0 } },
    { "CO", 3, 1, { 0 } },
    { "CG", 3, 1, { 1 } },
    { "OW", 3, 1, { 4 } },
    { "NU", 5, 1, { 2 } },
    { "IU", 5, 1, { 4 } },
    { "SU", 5, 1, { 6 } },
    { "AN", 5, 1, { 7 } },
    { "ED", 5, 1, { 9 } },
    { "PS", 5, 1, { 10 } },
    { "AU", 5, 1, { 11 } },
    { "RC", 5, 1, { 12 } },
    { "SY", 5, 1, { 18 } },
    { "LS", 5, 1, { 19 } },
    { "NS", 5, 1, { 20 } },
    { "WR", 5, 1, { 33 } },
    { "UD", 5, 6, { 84, 0, 0, 0, 0, 0 } },
    { "BA", 5, 2, { 32, 544 } },
    { "BU", 5, 2, { 32, 545 } },
    { "BG", 5, 2, { 32, 546 } },
    { "PU", 5, 2, { 32, 547 } },
    { "AO", 5, 2, { 32, 548 } },
    { "SO", 5, 2, { 32, 549 } },
    { "PO", 5, 2, { 32, 550 } },
    { "BO", 5, 2, { 32, 551 } },
    { "RE", 5, 2, { 32, 552 } },
    { "RU", 5, 2, { 32, 554 } },
    { "RD", 5, 2, { 32, 555 } },
    { "NO", 5, 2, { 32, 556 } },
    { "MU", 5, 2, { 32, 558 } },
    { "LU", 5, 2, { 32, 559 } },
    { "IS", 5, 2, { 32, 568 } },
    { "CY", 5, 2, { 32, 569 } },
    { "ER", 5, 2, { 32, 573 } },
    { "CD", 5, 2, { 32, 574 } },
    { "RA", 5, 2, { 32, 575 } },
    { "ES", 5, 2, { 32, 576 } },
    { "MS", 5, 2, { 32, 577 } },
    { "HA", 5, 2, { 32, 578 } },
    { "AA", 5, 2, { 32, 579 } },
    { "RM", 5, 2, { 32, 580 } },
    { "HO", 5, 2, { 32, 584 } },
    { "SH", 5, 2, { 32, 585 } },
    { "AC", 15, 2, { 2, 1 } },
    { "LW", 16, 1, { 4096 } },
    { "ME", 16, 1, { 8192 } },
    { "MP", 16, 1, { 8448 } },
    { "HI", 16, 1, { 12288 } },
    { "SI", 16, 1, { 16384 } },
    { "AS", 18, 1, { 1 } },
    { "SS", 18, 1, { 2 } },
};

/* Size of the well-formed SID at sd[off] inside sd[0..limit), or 0 if none:
 * the quiet check of the hot path; sid_check() explains a failure. */
static size_t sid_size(const uint8_t *sd, size_t limit, size_t off)
{
    if (off > limit || limit - off < SID_HEADER_SIZE) return 0;
    if (sd[off] != 1 || sd[off + 1] > SID_MAX_SUBS) return 0;
    size_t size = SID_HEADER_SIZE + 4u * sd[off + 1];
    return limit - off < size ? 0 : size;
}

/*
 * Checks the SID at sd[off] lies inside sd[0..limit) and is well formed.
 * `what` names it in the error ("owner", "ACE 3 trustee").
 */
static rf_status sid_check(const uint8_t *sd, size_t limit, size_t off, const char *what,
                           size_t *size_out)
{
    if (off > limit || limit - off < SID_HEADER_SIZE)
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                        "SD: %s SID at 0x%llx: 8-byte SID header runs past 0x%llx",
                        what, ULL(off), ULL(limit));
    unsigned rev = sd[off], nsub = sd[off + 1];
    if (rev != 1)
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                        "SD: %s SID at 0x%llx: revision %u is not 1", what, ULL(off), rev);
    if (nsub > SID_MAX_SUBS)
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                        "SD: %s SID at 0x%llx: SubAuthorityCount %u exceeds 15",
                        what, ULL(off), nsub);
    size_t size = SID_HEADER_SIZE + 4u * nsub;
    if (limit - off < size)
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                        "SD: %s SID at 0x%llx: %llu bytes with %u sub-authorities run past 0x%llx",
                        what, ULL(off), ULL(size), nsub, ULL(limit));
    *size_out = size;
    return RF_OK;
}

/* Writes a SID already accepted by sid_check(). */
static void put_sid(sink *s, const uint8_t *p)
{
    unsigned nsub = p[1];
    uint64_t auth = 0;
    for (int i = 2; i < 8; i++) auth = (auth << 8) | p[i];

    for (size_t i = 0; i < sizeof sid_aliases / sizeof sid_aliases[0]; i++) {
        const struct sid_alias *a = &sid_aliases[i];
        if (a->auth != auth || a->nsub != nsub) continue;
        unsigned k = 0;
        while (k < nsub && rf_le32(p + 8 + 4 * k) == a->sub[k]) k++;
        if (k == nsub) {
            put(s, a->name, 2);
            return;
        }
    }

    /* Revision is always 1 here (sid_check). Authorities >= 2^32 come out
     * as unpadded upper-case hex: Windows round trip "S-1-5000000000-30-40"
     * -> "S-1-0x12A05F200-30-40" (Samba data); [MS-DTYP 2.4.2.1] only says
     * "0x" plus hex digits. */
    put(s, "S-1-", 4);
    if (auth >> 32) {
        put(s, "0x", 2);
        put_num(s, auth, 16, 1, 1);
    } else {
        put_dec(s, auth);
    }
    for (unsigned k = 0; k < nsub; k++) {
        put(s, "-", 1);
        put_dec(s, rf_le32(p + 8 + 4 * k));
    }
}

/* ------------------------------------------------------------------------ */
/* Access masks                                                              */
/* ------------------------------------------------------------------------ */

/*
 * Rights, the way Windows prints them (Windows round trip, Samba data):
 *  1. a mask equal to one of the composite file/key rights prints as that
 *     code (0x1f01ff -> "FA", 0xf003f -> "KA"; KEY_READ == KEY_EXECUTE ==
 *     0x20019 prints "KR", the first in Windows' table);
 *  2. otherwise, when every set bit has a two-letter code, the codes are
 *     concatenated in ascending bit order ("0xe00f0000" -> "SDRCWDWOGXGWGR",
 *     "0x1ff" -> "CCDCLCSWRPWPDTLOCR"): KEY_QUERY_VALUE 0x1 prints "CC",
 *     KEY_SET_VALUE 0x2 "DC" and so on, since keys share the DS bit names;
 *  3. otherwise "0x%x", lower-case, unpadded ("0x1200a9");
 *  4. a zero mask prints nothing ("(A;;;;;BO)").
 */
static const struct { char name[3]; uint32_t mask; } exact_rights[] = {
    { "FA", 0x001F01FFu }, /* FILE_ALL_ACCESS */
    { "FR", 0x00120089u }, /* FILE_GENERIC_READ */
    { "FW", 0x00120116u }, /* FILE_GENERIC_WRITE */
    { "FX", 0x001200A0u }, /* FILE_GENERIC_EXECUTE */
    { "KA", 0x000F003Fu }, /* KEY_ALL_ACCESS */
    { "KR", 0x00020019u }, /* KEY_READ (== KEY_EXECUTE "KX") */
    { "KW", 0x00020006u }, /* KEY_WRITE */
};

static const char bit_rights[32][3] = {
    "CC", "DC", "LC", "SW", "RP", "WP", "DT", "LO", /* 0-7: DS rights */
    "CR", "",   "",   "",   "",   "",   "",   "",   /* 8: control access */
    "SD", "RC", "WD", "WO", "",   "",   "",   "",   /* 16-19: standard rights */
    "",   "",   "",   "",   "GA", "GX", "GW", "GR", /* 28-31: generic rights */
};

/* Mandatory-label ACEs use their own three bits: SYSTEM_MANDATORY_LABEL_
 * NO_WRITE_UP 0x1 "NW", NO_READ_UP 0x2 "NR", NO_EXECUTE_UP 0x4 "NX"
 * (Windows prints a Low label as "(ML;;NW;;;LW)"). */
static const char label_rights[3][3] = { "NW", "NR", "NX" };

static void put_hex(sink *s, uint32_t v)
{
    put(s, "0x", 2);
    put_num(s, v, 16, 1, 0);
}

static void put_rights(sink *s, uint32_t mask, int is_label)
{
    if (mask == 0) return;
    if (is_label) {
        if (mask & ~7u) {
            put_hex(s, mask);
            return;
        }
        for (unsigned b = 0; b < 3; b++)
            if (mask & (1u << b)) put(s, label_rights[b], 2);
        return;
    }
    for (size_t i = 0; i < sizeof exact_rights / sizeof exact_rights[0]; i++) {
        if (mask == exact_rights[i].mask) {
            put(s, exact_rights[i].name, 2);
            return;
        }
    }
    for (unsigned b = 0; b < 32; b++) {
        if ((mask & (1u << b)) && !bit_rights[b][0]) {
            put_hex(s, mask);
            return;
        }
    }
    for (unsigned b = 0; b < 32; b++)
        if (mask & (1u << b)) put(s, bit_rights[b], 2);
}

/* ------------------------------------------------------------------------ */
/* ACEs and ACLs                                                             */
/* ------------------------------------------------------------------------ */

/* Flags in ascending bit order, as Windows prints them ("OICIIO", "CIIDSA").
 * 0x20 is CRITICAL_ACE_FLAG, "CR" in Sddl.h; its position is by bit order. */
static const char ace_flag_names[8][3] = { "OI", "CI", "NP", "IO", "ID", "CR", "SA", "FA" };

enum ace_kind { ACE_PLAIN, ACE_OBJECT, ACE_LABEL };

static const struct { uint8_t type; uint8_t kind; char name[3]; } ace_types[] = {
    { 0x00, ACE_PLAIN,  "A"  }, /* ACCESS_ALLOWED */
    { 0x01, ACE_PLAIN,  "D"  }, /* ACCESS_DENIED */
    { 0x02, ACE_PLAIN,  "AU" }, /* SYSTEM_AUDIT */
    { 0x03, ACE_PLAIN,  "AL" }, /* SYSTEM_ALARM */
    { 0x05, ACE_OBJECT, "OA" }, /* ACCESS_ALLOWED_OBJECT */
    { 0x06, ACE_OBJECT, "OD" }, /* ACCESS_DENIED_OBJECT */
    { 0x07, ACE_OBJECT, "OU" }, /* SYSTEM_AUDIT_OBJECT */
    { 0x08, ACE_OBJECT, "OL" }, /* SYSTEM_ALARM_OBJECT */
    { 0x11, ACE_LABEL,  "ML" }, /* SYSTEM_MANDATORY_LABEL */
    { 0x13, ACE_PLAIN,  "SP" }, /* SYSTEM_SCOPED_POLICY_ID: mask + SID only */
    { 0x14, ACE_PLAIN,  "TL" }, /* SYSTEM_PROCESS_TRUST_LABEL: mask + SID only */
};

/* GUID as stored (Data1 u32 LE, Data2 u16 LE, Data3 u16 LE, Data4 8 bytes),
 * printed lower-case 8-4-4-4-12 the way Windows does
 * ("4828CC14-1437-45bc-9B07-..." round-trips to "4828cc14-1437-45bc-9b07-..."). */
static void put_guid(sink *s, const uint8_t *g)
{
    put_num(s, rf_le32(g), 16, 8, 0);
    put(s, "-", 1);
    put_num(s, rf_le16(g + 4), 16, 4, 0);
    put(s, "-", 1);
    put_num(s, rf_le16(g + 6), 16, 4, 0);
    put(s, "-", 1);
    for (int i = 8; i < 16; i++) {
        if (i == 10) put(s, "-", 1);
        put_num(s, g[i], 16, 2, 0);
    }
}

static const char *ace_type_hint(unsigned type)
{
    switch (type) {
    case 0x04: return "ACCESS_ALLOWED_COMPOUND, which has no SDDL form";
    case 0x09: case 0x0A: case 0x0B: case 0x0D:
        return "a callback ACE whose conditional expression is not rendered";
    case 0x0C: case 0x0E: case 0x0F: case 0x10: return "a callback ACE type with no SDDL form";
    case 0x12: return "a resource attribute ACE, not rendered";
    case 0x15: return "an access filter ACE, not rendered";
    default:   return "unknown";
    }
}

/*
 * One ACE at sd[off]; put_acl() has checked that its AceSize, `size`, is at
 * least 8 (header + mask) and fits the ACL.
 */
static rf_status put_ace(sink *s, const uint8_t *sd, size_t off, size_t size, unsigned index,
                         const char *acl_name)
{
    const size_t ntypes = sizeof ace_types / sizeof ace_types[0];
    unsigned type = sd[off], flags = sd[off + 1];
    size_t end = off + size, kind_i = 0;
    while (kind_i < ntypes && ace_types[kind_i].type != type) kind_i++;
    if (kind_i == ntypes)
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                        "SD: %s ACE %u at 0x%llx: type 0x%02x (%s) is not supported",
                        acl_name, index, ULL(off), type, ace_type_hint(type));

    uint32_t mask = rf_le32(sd + off + 4);
    size_t sid_off = off + 8;
    const uint8_t *obj_guid = NULL, *inh_guid = NULL;

    if (ace_types[kind_i].kind == ACE_OBJECT) {
        if (size < 12)
            return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                            "SD: %s ACE %u at 0x%llx: object ACE of %llu bytes has no Flags field",
                            acl_name, index, ULL(off), ULL(size));
        uint32_t oflags = rf_le32(sd + off + 8);
        sid_off = off + 12;
        /* ACE_OBJECT_TYPE_PRESENT 0x1, ACE_INHERITED_OBJECT_TYPE_PRESENT 0x2;
         * other Flags bits are ignored. */
        if (oflags & 1u) {
            if (end - sid_off < 16)
                return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                                "SD: %s ACE %u at 0x%llx: ObjectType GUID at 0x%llx "
                                "runs past the ACE end 0x%llx",
                                acl_name, index, ULL(off), ULL(sid_off), ULL(end));
            obj_guid = sd + sid_off;
            sid_off += 16;
        }
        if (oflags & 2u) {
            if (end - sid_off < 16)
                return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                                "SD: %s ACE %u at 0x%llx: InheritedObjectType GUID at 0x%llx "
                                "runs past the ACE end 0x%llx",
                                acl_name, index, ULL(off), ULL(sid_off), ULL(end));
            inh_guid = sd + sid_off;
            sid_off += 16;
        }
    }

    /* Bytes between the SID's end and AceSize (padding) are ignored. */
    if (sid_size(sd, end, sid_off) == 0) {
        char what[48];
        size_t unused;
        snprintf(what, sizeof what, "%s ACE %u trustee", acl_name, index);
        rf_status st = sid_check(sd, end, sid_off, what, &unused);
        if (st != RF_OK) return st;
    }

    put(s, "(", 1);
    puts_(s, ace_types[kind_i].name);
    put(s, ";", 1);
    for (unsigned b = 0; b < 8; b++)
        if (flags & (1u << b)) put(s, ace_flag_names[b], 2);
    put(s, ";", 1);
    put_rights(s, mask, ace_types[kind_i].kind == ACE_LABEL);
    put(s, ";", 1);
    if (obj_guid) put_guid(s, obj_guid);
    put(s, ";", 1);
    if (inh_guid) put_guid(s, inh_guid);
    put(s, ";", 1);
    put_sid(s, sd + sid_off);
    put(s, ")", 1);
    return RF_OK;
}

/*
 * The "D:" or "S:" part, called when the control's *_PRESENT bit is set.
 * `off`: the ACL offset (0 = NULL ACL); the three bits are this ACL's
 * P / AR / AI control flags.
 */
static rf_status put_acl(sink *s, const uint8_t *sd, size_t len, char tag, uint16_t control,
                         uint32_t off, uint16_t protected_bit, uint16_t inherit_req_bit,
                         uint16_t inherited_bit)
{
    const char *acl_name = tag == 'D' ? "DACL" : "SACL";
    char head[3] = { tag, ':', 0 };
    puts_(s, head);
    /* P, AR, AI in that order: Windows round trip "D:AIPAR" -> "D:PARAI". */
    if (control & protected_bit) put(s, "P", 1);
    if (control & inherit_req_bit) put(s, "AR", 2);
    if (control & inherited_bit) put(s, "AI", 2);

    if (off == 0) {
        /* *_PRESENT with no ACL: a NULL ACL, Sddl.h SDDL_NULL_ACL. */
        puts_(s, "NO_ACCESS_CONTROL");
        return RF_OK;
    }
    if (off < SD_HEADER_SIZE || off > len || len - off < ACL_HEADER_SIZE)
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                        "SD: %s offset 0x%llx: 8-byte ACL header does not fit between the "
                        "20-byte SD header and the SD end 0x%llx",
                        acl_name, ULL(off), ULL(len));
    unsigned rev = sd[off];
    size_t acl_size = rf_le16(sd + off + 2);
    unsigned count = rf_le16(sd + off + 4);
    /* ACL_REVISION 2 .. ACL_REVISION_DS 4, the range RtlValidAcl accepts. */
    if (rev < 2 || rev > 4)
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                        "SD: %s at 0x%llx: AclRevision %u is not 2..4",
                        acl_name, ULL(off), rev);
    if (acl_size < ACL_HEADER_SIZE || acl_size > len - off)
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                        "SD: %s at 0x%llx: AclSize %llu is below 8 or runs past the SD end 0x%llx",
                        acl_name, ULL(off), ULL(acl_size), ULL(len));

    size_t end = off + acl_size;
    size_t ace = off + ACL_HEADER_SIZE;
    for (unsigned i = 0; i < count; i++) {
        if (end - ace < 4)
            return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                            "SD: %s at 0x%llx: AceCount %u but ACE %u at 0x%llx starts past "
                            "AclSize %llu (ACL end 0x%llx)",
                            acl_name, ULL(off), count, i, ULL(ace), ULL(acl_size), ULL(end));
        size_t ace_size = rf_le16(sd + ace + 2);
        if (ace_size < 8)
            return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                            "SD: %s ACE %u at 0x%llx: AceSize %llu is below 8",
                            acl_name, i, ULL(ace), ULL(ace_size));
        if (ace_size > end - ace)
            return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                            "SD: %s ACE %u at 0x%llx: AceSize %llu runs past the ACL end 0x%llx",
                            acl_name, i, ULL(ace), ULL(ace_size), ULL(end));
        rf_status st = put_ace(s, sd, ace, ace_size, i, acl_name);
        if (st != RF_OK) return st;
        ace += ace_size;
    }
    return RF_OK;
}

static rf_status put_owner_group(sink *s, const uint8_t *sd, size_t len, const char *tag,
                                 uint32_t off, const char *what)
{
    if (off == 0) return RF_OK; /* absent: Windows prints no O:/G: part */
    if (off < SD_HEADER_SIZE)
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                        "SD: %s offset 0x%llx points into the 20-byte SD header",
                        what, ULL(off));
    size_t size;
    rf_status st = sid_check(sd, len, off, what, &size);
    if (st != RF_OK) return st;
    puts_(s, tag);
    put_sid(s, sd + off);
    return RF_OK;
}

/* ------------------------------------------------------------------------ */
/* Entry point                                                               */
/* ------------------------------------------------------------------------ */

static rf_status convert(sink *s, const uint8_t *sd, size_t len)
{
    if (len < SD_HEADER_SIZE)
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                        "SD: %llu bytes, shorter than the 20-byte header", ULL(len));
    if (sd[0] != 1)
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                        "SD: Revision %u at 0x0 is not 1", sd[0]);
    uint16_t control = rf_le16(sd + 2);
    if (!(control & SE_SELF_RELATIVE))
        return rfi_fail(RF_E_INVALID_DATA, RF_NO_OFFSET, 0,
                        "SD: Control 0x%04x at 0x2 lacks SE_SELF_RELATIVE (0x8000)", control);
    uint32_t owner = rf_le32(sd + 4), group = rf_le32(sd + 8);
    uint32_t sacl = rf_le32(sd + 12), dacl = rf_le32(sd + 16);

    /* Order O, G, D, S as Windows prints them ("S:D:P" -> "D:PS:"). An ACL
     * whose *_PRESENT bit is clear is not printed, and its offset not read,
     * as GetSecurityDescriptorDacl/Sacl report it absent. */
    rf_status st = put_owner_group(s, sd, len, "O:", owner, "owner");
    if (st == RF_OK) st = put_owner_group(s, sd, len, "G:", group, "group");
    if (st == RF_OK && (control & SE_DACL_PRESENT))
        st = put_acl(s, sd, len, 'D', control, dacl, SE_DACL_PROTECTED,
                     SE_DACL_AUTO_INHERIT_REQ, SE_DACL_AUTO_INHERITED);
    if (st == RF_OK && (control & SE_SACL_PRESENT))
        st = put_acl(s, sd, len, 'S', control, sacl, SE_SACL_PROTECTED,
                     SE_SACL_AUTO_INHERIT_REQ, SE_SACL_AUTO_INHERITED);
    return st;
}

rf_status rf_sd_to_sddl(const uint8_t *sd, size_t len, char *buf, size_t cap, size_t *len_out)
{
    if (len_out) *len_out = 0;
    if ((sd == NULL && len != 0) || (buf == NULL && cap != 0))
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0,
                        "rf_sd_to_sddl: NULL %s with a non-zero length",
                        sd == NULL && len != 0 ? "sd" : "buf");

    sink s = { buf, cap, 0 };
    rf_status st = convert(&s, sd, len);
    if (st != RF_OK) {
        if (cap) buf[0] = '\0';
        return st;
    }
    if (len_out) *len_out = s.len;
    if (s.len >= cap) {
        /* Too small (the NUL needs one more byte): leave an empty string
         * rather than a truncated SDDL a careless caller might trust. */
        if (cap) buf[0] = '\0';
        return rfi_fail(RF_E_MORE_DATA, RF_NO_OFFSET, 0,
                        "rf_sd_to_sddl: SDDL needs %llu bytes with its NUL, buffer has %llu",
                        ULL(s.len) + 1, ULL(cap));
    }
    buf[s.len] = '\0';
    return RF_OK;
}
