/*
 * sddl_oracle — test-vector generator for rf_sd_to_sddl (src/core/rf_sddl.c).
 *
 * A Windows console program (build with mingw-w64, run under Wine or on
 * Windows). For each input line it prints one tab-separated line:
 *
 *     <input> \t <self-relative SD as hex> \t <SDDL the system converts it back to>
 *
 * An input line is either an SDDL string, parsed with
 * ConvertStringSecurityDescriptorToSecurityDescriptorW, or "@name", one of the
 * descriptors built below through the ACL API (InitializeAcl, AddAce-family,
 * MakeSelfRelativeSD) for shapes Wine's SDDL parser cannot express (object
 * ACEs, SACL control flags, NULL DACL, identifier authority >= 2^32 ...).
 * The third column is ConvertSecurityDescriptorToStringSecurityDescriptorW
 * with OWNER|GROUP|DACL|SACL|LABEL requested, or "ERROR <code>".
 *
 * Lines come from the command line (one argument each) or, with no
 * arguments, from stdin. Empty lines and lines starting with '#' are skipped;
 * anything after a tab is ignored (inputs.txt keeps expectations there).
 *
 * Build and run: see run.sh next to this file. Not part of the library build.
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <sddl.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

/* Directory-service rights (iads.h), spelled out to keep the includes small. */
#define DS_CREATE_CHILD   0x00000001u
#define DS_LIST           0x00000004u
#define DS_READ_PROP      0x00000010u
#define DS_WRITE_PROP     0x00000020u
#define DS_LIST_OBJECT    0x00000080u
#define DS_CONTROL_ACCESS 0x00000100u

#ifndef LABEL_SECURITY_INFORMATION
#define LABEL_SECURITY_INFORMATION 0x00000010L
#endif

static void print_hex(const BYTE *p, DWORD n)
{
    for (DWORD i = 0; i < n; i++) printf("%02x", p[i]);
}

static void print_roundtrip(PSECURITY_DESCRIPTOR sd)
{
    LPWSTR s = NULL;
    SECURITY_INFORMATION si = OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION |
                              DACL_SECURITY_INFORMATION | SACL_SECURITY_INFORMATION |
                              LABEL_SECURITY_INFORMATION;
    if (!ConvertSecurityDescriptorToStringSecurityDescriptorW(sd, SDDL_REVISION_1, si, &s, NULL)) {
        printf("ERROR %lu", (unsigned long)GetLastError());
        return;
    }
    for (LPWSTR p = s; *p; p++) putchar(*p < 128 ? (int)*p : '?');
    LocalFree(s);
}

static void emit(const char *label, PSECURITY_DESCRIPTOR rel, DWORD len)
{
    printf("%s\t", label);
    print_hex((const BYTE *)rel, len);
    printf("\t");
    print_roundtrip(rel);
    printf("\n");
}

/* ---- building blocks for the API-built descriptors ---------------------- */

static BYTE sid_buf[16][68];
static int sid_next;

/* Builds a SID from an authority (up to 48 bits) and sub-authorities. */
static PSID mk_sid(ULONGLONG auth, int n, const DWORD *subs)
{
    SID *s = (SID *)sid_buf[sid_next++ & 15];
    s->Revision = 1;
    s->SubAuthorityCount = (BYTE)n;
    for (int i = 0; i < 6; i++) s->IdentifierAuthority.Value[5 - i] = (BYTE)(auth >> (8 * i));
    for (int i = 0; i < n; i++) s->SubAuthority[i] = subs[i];
    return s;
}

static PSID sid_str(const wchar_t *str)
{
    PSID tmp = NULL;
    if (!ConvertStringSidToSidW(str, &tmp)) {
        fprintf(stderr, "ConvertStringSidToSidW(%ls) failed: %lu\n", str, GetLastError());
        ExitProcess(2);
    }
    SID *dst = (SID *)sid_buf[sid_next++ & 15];
    CopySid(68, dst, tmp);
    LocalFree(tmp);
    return dst;
}

/* Two directory-schema GUIDs from Samba's Windows SDDL samples. */
static const GUID guid_a = {0xbf967aba, 0x0de6, 0x11d0,
                            {0xa2, 0x85, 0x00, 0xaa, 0x00, 0x30, 0x49, 0xe2}};
static const GUID guid_b = {0x4828cc14, 0x1437, 0x45bc,
                            {0x9b, 0x07, 0xad, 0x6f, 0x01, 0x5e, 0x5f, 0x28}};

/*
 * Appends an object ACE (types 5-8) built by hand: Wine 8 does not implement
 * AddAccessAllowedObjectAce & co. (they fail with ERROR_INVALID_FUNCTION).
 * Layout [MS-DTYP 2.4.4.3]: header, Mask, Flags, [ObjectType],
 * [InheritedObjectType], Sid.
 */
static BOOL add_object_ace(ACL *acl, BYTE type, BYTE flags, DWORD mask,
                           const GUID *obj, const GUID *inh, PSID sid)
{
    BYTE ace[128];
    DWORD n = 12, oflags = (obj ? 1u : 0u) | (inh ? 2u : 0u);
    DWORD sidlen = GetLengthSid(sid);
    ace[0] = type;
    ace[1] = flags;
    memcpy(ace + 4, &mask, 4);
    memcpy(ace + 8, &oflags, 4);
    if (obj) { memcpy(ace + n, obj, 16); n += 16; }
    if (inh) { memcpy(ace + n, inh, 16); n += 16; }
    memcpy(ace + n, sid, sidlen);
    n += sidlen;
    ace[2] = (BYTE)n;
    ace[3] = (BYTE)(n >> 8);
    return AddAce(acl, ACL_REVISION_DS, MAXDWORD, ace, n);
}

/* Appends a plain ACE (header, Mask, Sid, then `extra` bytes) of any type,
 * for types the API has no helper for (scoped policy, trust label, callback). */
static BOOL add_raw_ace(ACL *acl, BYTE type, BYTE flags, DWORD mask, PSID sid,
                        const void *extra, DWORD extra_len)
{
    BYTE ace[256];
    DWORD sidlen = GetLengthSid(sid), n = 8 + sidlen + extra_len;
    ace[0] = type;
    ace[1] = flags;
    ace[2] = (BYTE)n;
    ace[3] = (BYTE)(n >> 8);
    memcpy(ace + 4, &mask, 4);
    memcpy(ace + 8, sid, sidlen);
    if (extra_len) memcpy(ace + 8 + sidlen, extra, extra_len);
    return AddAce(acl, ACL_REVISION_DS, MAXDWORD, ace, n);
}

#define CHECKED(call)                                                            \
    do {                                                                         \
        if (!(call)) {                                                           \
            fprintf(stderr, "%s failed: %lu\n", #call, (unsigned long)GetLastError()); \
            ExitProcess(2);                                                      \
        }                                                                        \
    } while (0)

/* InitializeAcl sets AclSize to the whole buffer; trim it to the bytes in use
 * so the self-relative descriptor is as compact as Windows makes its own. */
static void shrink(ACL *acl)
{
    ACL_SIZE_INFORMATION info;
    if (acl && GetAclInformation(acl, &info, sizeof info, AclSizeInformation))
        acl->AclSize = (WORD)info.AclBytesInUse;
}

static void finish(const char *label, SECURITY_DESCRIPTOR *abs)
{
    shrink((ACL *)abs->Dacl);
    shrink((ACL *)abs->Sacl);
    BYTE rel[4096];
    DWORD len = sizeof rel;
    CHECKED(MakeSelfRelativeSD(abs, rel, &len));
    /* Wine 8 leaves len at the buffer size; ask for the real length. */
    emit(label, rel, GetSecurityDescriptorLength(rel));
}

static int build(const char *name)
{
    SECURITY_DESCRIPTOR sd;
    BYTE dacl_buf[1024], sacl_buf[1024];
    ACL *dacl = (ACL *)dacl_buf, *sacl = (ACL *)sacl_buf;
    sid_next = 0;
    CHECKED(InitializeSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION));

    if (!strcmp(name, "@null_dacl")) {
        CHECKED(SetSecurityDescriptorOwner(&sd, sid_str(L"S-1-5-32-544"), FALSE));
        CHECKED(SetSecurityDescriptorGroup(&sd, sid_str(L"S-1-5-18"), FALSE));
        CHECKED(SetSecurityDescriptorDacl(&sd, TRUE, NULL, FALSE));
    } else if (!strcmp(name, "@null_dacl_protected")) {
        CHECKED(SetSecurityDescriptorDacl(&sd, TRUE, NULL, FALSE));
        CHECKED(SetSecurityDescriptorControl(&sd, SE_DACL_PROTECTED, SE_DACL_PROTECTED));
    } else if (!strcmp(name, "@no_dacl")) {
        CHECKED(SetSecurityDescriptorOwner(&sd, sid_str(L"S-1-5-18"), FALSE));
    } else if (!strcmp(name, "@empty")) {
        /* nothing at all: header only */
    } else if (!strcmp(name, "@sacl_flags")) {
        CHECKED(InitializeAcl(sacl, sizeof sacl_buf, ACL_REVISION));
        CHECKED(AddAuditAccessAceEx(sacl, ACL_REVISION, CONTAINER_INHERIT_ACE, KEY_ALL_ACCESS,
                                    sid_str(L"S-1-1-0"), TRUE, TRUE));
        CHECKED(AddAuditAccessAceEx(sacl, ACL_REVISION, 0, KEY_SET_VALUE | DELETE,
                                    sid_str(L"S-1-5-11"), FALSE, TRUE));
        CHECKED(SetSecurityDescriptorSacl(&sd, TRUE, sacl, FALSE));
        CHECKED(InitializeAcl(dacl, sizeof dacl_buf, ACL_REVISION));
        CHECKED(AddAccessAllowedAceEx(dacl, ACL_REVISION, CONTAINER_INHERIT_ACE | INHERITED_ACE,
                                      KEY_READ, sid_str(L"S-1-5-32-545")));
        CHECKED(SetSecurityDescriptorDacl(&sd, TRUE, dacl, FALSE));
        const SECURITY_DESCRIPTOR_CONTROL bits = SE_SACL_PROTECTED | SE_SACL_AUTO_INHERITED |
                                                 SE_SACL_AUTO_INHERIT_REQ | SE_DACL_AUTO_INHERITED;
        CHECKED(SetSecurityDescriptorControl(&sd, bits, bits));
    } else if (!strcmp(name, "@null_sacl")) {
        CHECKED(SetSecurityDescriptorSacl(&sd, TRUE, NULL, FALSE));
    } else if (!strcmp(name, "@label")) {
        CHECKED(InitializeAcl(sacl, sizeof sacl_buf, ACL_REVISION));
        CHECKED(AddMandatoryAce(sacl, ACL_REVISION, OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
                                SYSTEM_MANDATORY_LABEL_NO_WRITE_UP, sid_str(L"S-1-16-4096")));
        CHECKED(SetSecurityDescriptorSacl(&sd, TRUE, sacl, FALSE));
    } else if (!strcmp(name, "@label_all")) {
        CHECKED(InitializeAcl(sacl, sizeof sacl_buf, ACL_REVISION));
        CHECKED(AddMandatoryAce(sacl, ACL_REVISION, 0, SYSTEM_MANDATORY_LABEL_VALID_MASK,
                                sid_str(L"S-1-16-12288")));
        CHECKED(AddMandatoryAce(sacl, ACL_REVISION, 0, SYSTEM_MANDATORY_LABEL_NO_READ_UP,
                                sid_str(L"S-1-16-8448")));
        CHECKED(SetSecurityDescriptorSacl(&sd, TRUE, sacl, FALSE));
    } else if (!strcmp(name, "@object")) {
        CHECKED(InitializeAcl(dacl, sizeof dacl_buf, ACL_REVISION_DS));
        CHECKED(add_object_ace(dacl, ACCESS_ALLOWED_OBJECT_ACE_TYPE,
                               CONTAINER_INHERIT_ACE | INHERIT_ONLY_ACE, DS_READ_PROP,
                               &guid_a, &guid_b, sid_str(L"S-1-5-32-554")));
        CHECKED(add_object_ace(dacl, ACCESS_DENIED_OBJECT_ACE_TYPE, 0, DS_CONTROL_ACCESS,
                               &guid_b, NULL, sid_str(L"S-1-5-11")));
        CHECKED(add_object_ace(dacl, ACCESS_ALLOWED_OBJECT_ACE_TYPE, CONTAINER_INHERIT_ACE,
                               DS_READ_PROP | DS_LIST | DS_LIST_OBJECT | READ_CONTROL,
                               NULL, &guid_a, sid_str(L"S-1-5-9")));
        CHECKED(add_object_ace(dacl, ACCESS_ALLOWED_OBJECT_ACE_TYPE, 0, GENERIC_ALL, NULL, NULL,
                               sid_str(L"S-1-5-18")));
        CHECKED(SetSecurityDescriptorDacl(&sd, TRUE, dacl, FALSE));
        CHECKED(InitializeAcl(sacl, sizeof sacl_buf, ACL_REVISION_DS));
        CHECKED(add_object_ace(sacl, SYSTEM_AUDIT_OBJECT_ACE_TYPE,
                               CONTAINER_INHERIT_ACE | SUCCESSFUL_ACCESS_ACE_FLAG, DS_WRITE_PROP,
                               &guid_a, &guid_b, sid_str(L"S-1-1-0")));
        CHECKED(add_object_ace(sacl, SYSTEM_ALARM_OBJECT_ACE_TYPE, FAILED_ACCESS_ACE_FLAG,
                               DS_CREATE_CHILD, NULL, &guid_b, sid_str(L"S-1-1-0")));
        CHECKED(SetSecurityDescriptorSacl(&sd, TRUE, sacl, FALSE));
    } else if (!strcmp(name, "@sp_tl")) {
        /* SYSTEM_SCOPED_POLICY_ID_ACE_TYPE 0x13, SYSTEM_PROCESS_TRUST_LABEL_ACE_TYPE 0x14 */
        CHECKED(InitializeAcl(sacl, sizeof sacl_buf, ACL_REVISION));
        CHECKED(add_raw_ace(sacl, 0x13, OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE, 0,
                            sid_str(L"S-1-17-1"), NULL, 0));
        CHECKED(add_raw_ace(sacl, 0x14, 0, 0x20019, sid_str(L"S-1-19-512-8192"), NULL, 0));
        CHECKED(SetSecurityDescriptorSacl(&sd, TRUE, sacl, FALSE));
    } else if (!strcmp(name, "@callback")) {
        /* ACCESS_ALLOWED_CALLBACK_ACE_TYPE 9 with the conditional expression
         * (Member_of {SID(BA)}) in [MS-DTYP 2.4.4.17] binary form. */
        static const BYTE cond[] = {'a', 'r', 't', 'x', 0x51, 0x10, 0, 0, 0,
                                    1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0,
                                    0x89, 0, 0};
        CHECKED(InitializeAcl(dacl, sizeof dacl_buf, ACL_REVISION));
        CHECKED(AddAccessAllowedAceEx(dacl, ACL_REVISION, 0, KEY_READ, sid_str(L"S-1-5-18")));
        CHECKED(add_raw_ace(dacl, 9, 0, KEY_READ, sid_str(L"S-1-1-0"), cond, sizeof cond));
        CHECKED(SetSecurityDescriptorDacl(&sd, TRUE, dacl, FALSE));
    } else if (!strcmp(name, "@bigauth")) {
        static const DWORD s1[] = {30, 40}, s2[] = {32, 579};
        CHECKED(SetSecurityDescriptorOwner(&sd, mk_sid(5000000000ULL, 2, s1), FALSE));
        CHECKED(InitializeAcl(dacl, sizeof dacl_buf, ACL_REVISION));
        CHECKED(AddAccessAllowedAceEx(dacl, ACL_REVISION, 0, DS_CREATE_CHILD,
                                      mk_sid(21474836480ULL, 2, s2)));
        CHECKED(AddAccessAllowedAceEx(dacl, ACL_REVISION, 0, GENERIC_ALL,
                                      mk_sid(0xFFFFFFFFULL, 2, s2)));
        CHECKED(SetSecurityDescriptorDacl(&sd, TRUE, dacl, FALSE));
    } else if (!strcmp(name, "@maxsub")) {
        static const DWORD subs[15] = {21, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 4294967295u, 500};
        static const DWORD zero[1] = {0};
        CHECKED(SetSecurityDescriptorOwner(&sd, mk_sid(5, 15, subs), FALSE));
        CHECKED(SetSecurityDescriptorGroup(&sd, mk_sid(5, 0, zero), FALSE));
    } else {
        return 0;
    }
    finish(name, &sd);
    return 1;
}

static void one(char *line)
{
    char *tab = strchr(line, '\t'); /* inputs.txt: extra columns after a tab */
    if (tab) *tab = 0;
    if (!*line || *line == '#') return;
    if (*line == '@') {
        if (!build(line)) printf("%s\t-\tUNKNOWN BUILDER\n", line);
        return;
    }
    wchar_t w[8192];
    if (!MultiByteToWideChar(CP_UTF8, 0, line, -1, w, 8192)) {
        printf("%s\t-\tTOO LONG\n", line);
        return;
    }
    PSECURITY_DESCRIPTOR sd = NULL;
    ULONG len = 0;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(w, SDDL_REVISION_1, &sd, &len)) {
        printf("%s\t-\tPARSE ERROR %lu\n", line, (unsigned long)GetLastError());
        return;
    }
    emit(line, sd, len);
    LocalFree(sd);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        for (int i = 1; i < argc; i++) one(argv[i]);
        return 0;
    }
    char line[8192];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        one(line);
    }
    return 0;
}
