/*
 * regf_open.c — mapping a hive, validating it once, and the cell accessor
 * everything else goes through.
 *
 * The design follows hivex: walk every hbin and every cell header, and
 * record each cell start in a bitmap (1 bit per 8-byte slot, since cells
 * are 8-aligned). After that, checking that an offset read from the hive is a
 * real cell is one bit test, and no later code can be sent into the middle of
 * a cell, past the end of an hbin, or out of the file. Strict opens do the
 * walk an hbin at a time, the first time an offset in it is used
 * (regf_lazy.c); lenient and tolerant opens, whose walks resynchronise and
 * list what they skip, do it all here.
 */
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, fstat, mmap under -std=c11 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "hive/regf_internal.h"
#include "hive/regf_guard.h"

static void bit_set(uint64_t *bits, uint64_t i) { bits[i >> 6] |= (uint64_t)1 << (i & 63); }

/* Records one skipped region (tolerant opens): the list lives in
 * regf_fail.c, which the tree check (regf_check_tree in regf_check.c) adds to as
 * well without calling back into this file (tools/check_c_cycles.py). */
static rf_status add_problem(regf_hive *h, uint32_t kind, uint64_t off, uint64_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rf_status st = regf_problem_vadd(h, kind, off, len, fmt, ap);
    va_end(ap);
    return st;
}

rf_status regf_problems(rf_hive *base, const rf_problem **out, size_t *n_out, uint64_t *total_out)
{
    const regf_hive *h = (const regf_hive *)base;
    *out = h->problems;
    *n_out = h->n_problems;
    if (total_out) *total_out = h->problems_total;
    return RF_OK;
}

/* Tolerant mode: the next 4 KiB boundary at or after `from` holding a good
 * hbin header, or `declared` when none is left. */
static uint64_t resync(const uint8_t *bins, uint64_t from, uint64_t declared)
{
    uint32_t hsize;
    for (uint64_t p = (from + 4095) & ~(uint64_t)4095; p < declared; p += 4096)
        if (!regf_hbin_problem(bins, p, declared, 1, &hsize)) return p;
    return declared;
}

/* hbin header: "hbin", offset of this hbin (relative to the first), size.
 *
 * Strict: nothing is walked here (past the truncation test): each hbin is
 * checked the first time an offset in it is used, and the first bad hbin or
 * cell fails then, as it failed the open before (regf_lazy.c). Lenient: the good prefix
 * is kept. Tolerant: bad regions are skipped and recorded, and the walk
 * resumes at the next good hbin header; cells enter the bitmap only from the
 * good part of a good hbin, so nothing later can be sent into a bad region. */
static rf_status walk_hbins(regf_hive *h, uint64_t declared)
{
    const uint8_t *bins = h->bins;
    uint64_t avail = h->size - REGF_BASE_BLOCK;
    int lenient = (h->opts.flags & RF_OPEN_LENIENT) != 0;
    int tolerant = (h->opts.flags & RF_OPEN_TOLERANT) != 0;
    uint64_t off = 0, good = 0;
    rf_status st;
    int truncated = declared > avail;
    regf_cell_counts counts = { 0, 0, 0, 0 };

    if (truncated) {
        if (!lenient && !tolerant)
            return rfi_fail(RF_E_CORRUPT, h->size, 0,
                            "hive is truncated at 0x%zx: the base block declares 0x%llx bytes of hbins "
                            "but the file holds 0x%llx after the base block; open the hive with "
                            "errors=\"tolerant\" to read the rest", h->size,
                            (unsigned long long)declared, (unsigned long long)avail);
        if (tolerant &&
            (st = add_problem(h, RF_PROBLEM_TRUNCATED, h->size, declared - avail,
                              "hive is truncated at 0x%zx: 0x%llx bytes of the declared hbins are missing",
                              h->size, (unsigned long long)(declared - avail))) != RF_OK)
            return st;
        declared = avail;
    }
    if (!lenient && !tolerant) return regf_lazy_init(h, declared);
    h->checked_all = 1;
    h->cell_start_bytes = ((size_t)(declared / 512) + 1) * sizeof(uint64_t);
    h->cell_start = regf_zero_alloc(h->cell_start_bytes);
    if (!h->cell_start) return rfi_fail(RF_E_NO_MEMORY, RF_NO_OFFSET, 0, "no memory for the cell bitmap");

    while (off < declared) {
        uint64_t foff = off + REGF_BASE_BLOCK;
        uint32_t hsize = 0;
        /* only the hbin a truncation cut may run past the end: elsewhere a long
         * size is damage, and trusting it would hide the hbins it covers */
        const char *why = regf_hbin_problem(bins, off, declared, tolerant && truncated, &hsize);
        if (why) {
            if (tolerant) {
                uint64_t next = resync(bins, off + 1, declared);
                if ((st = add_problem(h, RF_PROBLEM_HBIN, foff, next - off,
                                      "hbin at 0x%llx: %s; 0x%llx bytes skipped to %s 0x%llx",
                                      (unsigned long long)foff, why, (unsigned long long)(next - off),
                                      next < declared ? "the next good hbin at" : "the end of the hbins at",
                                      (unsigned long long)(next + REGF_BASE_BLOCK))) != RF_OK)
                    return st;
                off = next;
                continue;
            }
            if (lenient) break; /* keep the good prefix */
            return regf_hbin_fail(h, off, why, hsize, declared);
        }
        /* cells: int32 size (negative = allocated), 8-aligned, within the hbin
         * (tolerant: within what the file holds of it) */
        uint64_t c = off + REGF_HBIN_HEADER, end = off + hsize;
        int cut = end > declared;
        /* only a tolerant walk gets here with a long hbin; a file cut at any
         * byte leaves whole 8-byte slots only, so a size field is never read
         * past the end */
        if (cut) end = off + ((declared - off) & ~(uint64_t)7);
        uint64_t next = off + hsize;
        while (c < end) {
            int32_t raw = (int32_t)rf_le32(bins + c);
            uint64_t csize = raw < 0 ? (uint64_t)(-(int64_t)raw) : (uint64_t)raw;
            if (csize < 8 || (csize & 7) || csize > end - c) {
                if (tolerant) {
                    uint32_t nsize;
                    if (!(c & 4095) && !regf_hbin_problem(bins, c, declared, truncated, &nsize)) {
                        /* a good hbin header where a cell should be: this hbin's
                         * size field swallowed its neighbour; blame the field */
                        if ((st = add_problem(h, RF_PROBLEM_HBIN, foff, 0,
                                              "hbin at 0x%llx: size 0x%x runs over the hbin at 0x%llx; "
                                              "cut there", (unsigned long long)foff, hsize,
                                              (unsigned long long)(c + REGF_BASE_BLOCK))) != RF_OK)
                            return st;
                        next = c;
                        break;
                    }
                    /* The rest of this hbin cannot be walked (cell starts are only
                     * known by chaining sizes): skip to the next good hbin header. */
                    next = resync(bins, c, declared);
                    if ((st = add_problem(h, RF_PROBLEM_CELL, c + REGF_BASE_BLOCK, next - c,
                                          "cell at 0x%llx: size %d %s (hbin at 0x%llx); 0x%llx bytes "
                                          "skipped to 0x%llx", (unsigned long long)(c + REGF_BASE_BLOCK), raw,
                                          cut && csize >= 8 && !(csize & 7) && csize <= off + hsize - c
                                              ? "runs past the end of the file"
                                              : "is not a multiple of 8 within its hbin",
                                          (unsigned long long)foff, (unsigned long long)(next - c),
                                          (unsigned long long)(next + REGF_BASE_BLOCK))) != RF_OK)
                        return st;
                    break;
                }
                if (lenient) break; /* cells after a broken header are unreachable */
                return regf_cell_size_fail(c, raw, end - c, off);
            }
            bit_set(h->cell_start, c >> 3);
            regf_tally_cell(&counts, bins, c, raw);
            c += csize;
        }
        good += (next < end ? next : end) - off;
        off = next;
    }
    regf_add_counts(h, &counts);
    if (tolerant) {
        /* the bitmap covers every good region, wherever it lies */
        h->bins_len = declared;
        h->info.hbins_found = good;
    } else {
        h->bins_len = off;
        h->info.hbins_found = off;
    }
    return RF_OK;
}

static int problem_order(const void *a, const void *b)
{
    uint64_t x = ((const rf_problem *)a)->offset, y = ((const rf_problem *)b)->offset;
    return x < y ? -1 : x > y;
}

static rf_status parse_hive(regf_hive *h, const rf_open_opts *opts);

uint32_t rf_base_block_checksum(const void *block)
{
    const uint8_t *b = block;
    uint32_t sum = 0;
    for (unsigned i = 0; i < 0x1FC; i += 4) sum ^= rf_le32(b + i);
    if (sum == 0) return 1;
    if (sum == 0xFFFFFFFFu) return 0xFFFFFFFEu;
    return sum;
}

/* Opens, then puts the problems in file order (the truncation, found first,
 * sits at the end of the file). */
static rf_status parse(regf_hive *h, const rf_open_opts *opts)
{
    rf_status st = parse_hive(h, opts);
    if (!st && h->n_problems > 1) qsort(h->problems, h->n_problems, sizeof *h->problems, problem_order);
    return st;
}

static rf_status parse_hive(regf_hive *h, const rf_open_opts *opts)
{
    const uint8_t *b = h->map;
    h->opts = (rf_open_opts)RF_OPEN_OPTS_INIT;
    if (opts) {
        if (opts->struct_size < sizeof(size_t) + sizeof(uint32_t))
            return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, 0, "rf_open_opts.struct_size is %zu",
                            opts->struct_size);
        memcpy(&h->opts, opts, opts->struct_size < sizeof h->opts ? opts->struct_size : sizeof h->opts);
        h->opts.struct_size = sizeof h->opts;
    }
    h->info.file_size = h->size;
    if (h->size < 4 || memcmp(b, "regf", 4) != 0)
        return rfi_fail(RF_E_UNSUPPORTED_FORMAT, 0, 0,
                        h->size == 0 ? "not a regf hive: the file is empty"
                                     : "not a regf hive: no 'regf' signature at 0x0");
    if (h->size < REGF_BASE_BLOCK)
        return rfi_fail(RF_E_CORRUPT, h->size, 0,
                        "hive is truncated at 0x%zx: %zu bytes, smaller than the 4096-byte base block",
                        h->size, h->size);

    rf_hive_info *in = &h->info;
    in->seq_primary = rf_le32(b + 0x04);
    in->seq_secondary = rf_le32(b + 0x08);
    in->dirty = in->seq_primary != in->seq_secondary;
    in->last_write = rf_le64(b + 0x0C);
    in->major = rf_le32(b + 0x14);
    in->minor = rf_le32(b + 0x18);
    in->file_type = rf_le32(b + 0x1C);
    in->file_format = rf_le32(b + 0x20);
    h->root = rf_le32(b + 0x24);
    in->hbins_size = rf_le32(b + 0x28);
    for (unsigned i = 0; i < 32; i++) {
        in->file_name[i] = rf_le16(b + 0x30 + 2 * i);
        if (in->file_name[i] == 0) break;
        in->file_name_chars = i + 1;
    }
    uint32_t sum = rf_base_block_checksum(b), stored = rf_le32(b + 0x1FC);
    in->checksum_ok = sum == stored;
    h->minor = in->minor;

    if (in->major != 1 || in->minor < 3 || in->minor > 6)
        return rfi_fail(RF_E_UNSUPPORTED_FORMAT, 0x14, 0,
                        "base block at 0x14: unsupported regf version %u.%u (regfast reads 1.3 to 1.6)",
                        in->major, in->minor);
    if (in->file_type != 0)
        return rfi_fail(RF_E_UNSUPPORTED_FORMAT, 0x1C, 0,
                        "base block at 0x1c: file type %u: this is a transaction log, not a primary hive file",
                        in->file_type);
    int lenient = (h->opts.flags & RF_OPEN_LENIENT) != 0;
    int tolerant = (h->opts.flags & RF_OPEN_TOLERANT) != 0;
    rf_status st;
    uint64_t declared = in->hbins_size & ~(uint64_t)4095;
    if (!in->checksum_ok && !lenient && !tolerant)
        return rfi_fail(RF_E_CORRUPT, 0x1FC, 0,
                        "base block at 0x1fc: checksum 0x%08x does not match the computed 0x%08x", stored, sum);
    if (!in->checksum_ok && tolerant) {
        if ((st = add_problem(h, RF_PROBLEM_CHECKSUM, 0x1FC, 0,
                              "base block at 0x1fc: checksum 0x%08x does not match the computed 0x%08x",
                              stored, sum)) != RF_OK)
            return st;
        /* A damaged base block's hbins size is a guess at best: when it says
         * nothing usable, walk what the file holds instead. */
        if (declared == 0 || declared > h->size - REGF_BASE_BLOCK) {
            uint64_t guess = (h->size - REGF_BASE_BLOCK) & ~(uint64_t)4095;
            if ((st = add_problem(h, RF_PROBLEM_BASE_BLOCK, 0x28, 0,
                                  "base block at 0x28: hive bins data size 0x%llx ignored (checksum bad); "
                                  "walking the 0x%llx bytes the file holds", (unsigned long long)in->hbins_size,
                                  (unsigned long long)guess)) != RF_OK)
                return st;
            declared = guess;
        }
    }
    if ((in->hbins_size & 4095) && !lenient && !tolerant)
        return rfi_fail(RF_E_CORRUPT, 0x28, 0,
                        "base block at 0x28: hive bins data size 0x%llx is not a multiple of 4096",
                        (unsigned long long)in->hbins_size);
    if ((in->hbins_size & 4095) && tolerant && declared == (in->hbins_size & ~(uint64_t)4095)) {
        /* The field is damaged, and which way is a guess (a size 4 short of
         * the end and one 1 past it are both seen). Rounded up whenever the
         * file goes past the rounded-down size: the walk reads every hbin
         * there is, where rounding down dropped the last one, and a file that
         * ends before the rounded-up size is seen cut, its cut hbin read up
         * to the cut. A file that ends exactly at the rounded-down size (a
         * field one past the end) is read as it is. (The older lenient open
         * rounds down.) */
        if (h->size - REGF_BASE_BLOCK > declared) declared = ((uint64_t)in->hbins_size + 4095) & ~(uint64_t)4095;
        if ((st = add_problem(h, RF_PROBLEM_BASE_BLOCK, 0x28, 0,
                              "base block at 0x28: hive bins data size 0x%llx is not a multiple of 4096 "
                              "(read as 0x%llx)", (unsigned long long)in->hbins_size,
                              (unsigned long long)declared)) != RF_OK)
            return st;
    }

    h->bins = b + REGF_BASE_BLOCK;
    st = walk_hbins(h, declared);
    if (st) return st;
    const uint8_t *nk;
    uint32_t len;
    h->root_ok = 1;
    /* strict: the root's hbin is the first one checked; its damage is what
     * the open reports, where it lies (as when every hbin was checked here) */
    if (h->lazy && (st = regf_lazy_error(h, h->root)) != RF_OK) return st;
    if ((st = regf_nk(h, h->root, &nk, &len)) != RF_OK) {
        /* The reason is in the last error's message, which rfi_fail overwrites:
         * copy it first (formatting a buffer into itself garbled the text). */
        char why[sizeof rf_last_error()->message];
        memcpy(why, rf_last_error()->message, sizeof why);
        if (tolerant) {
            /* Keys are out of reach, but cells and deleted records are not:
             * open anyway and let rf_hive_root() say why. */
            h->root_ok = 0;
            /* the root cell when it lies in the file, else the field naming it */
            uint64_t at = regf_file_off(h->root) < h->size ? regf_file_off(h->root) : 0x24;
            return add_problem(h, RF_PROBLEM_ROOT, at, 0,
                               "root key offset 0x%x (base block @0x24) is unusable: %.90s", h->root, why);
        }
        return rfi_fail(RF_E_CORRUPT, regf_file_off(h->root), 0,
                        "root key offset 0x%x (base block @0x24) is unusable: %s", h->root, why);
    }
    /* tolerant: regf_check_tree lists the subkey entries and values reads will
     * step over (parse_guarded calls it: it allocates, and guards itself) */
    return RF_OK;
}

void regf_close(rf_hive *base)
{
    regf_hive *h = (regf_hive *)base;
    regf_lazy_free(h);
    regf_zero_free(h->cell_start, h->cell_start_bytes);
    h->cell_start = NULL;
    h->cell_start_bytes = 0;
    free(h->problems);
    free(h->relisted);
    h->relisted = NULL;
    h->n_relisted = h->relisted_cap = 0;
    h->problems = NULL;
    h->n_problems = h->problems_cap = 0;
    regf_vindex_free(h);
    if (h->mapped == 2) {
        free((void *)h->map);
    } else if (h->mapped && h->map) {
#ifdef _WIN32
        UnmapViewOfFile((void *)h->map);
        if (h->win_mapping) CloseHandle(h->win_mapping);
#else
        munmap((void *)h->map, h->size);
#endif
    }
    h->map = NULL;
}

/* The open-time walk reads every page: a file cut meanwhile (between the
 * size query and the walk) faults like any later read (regf_guard.h). */
static rf_status parse_guarded(regf_hive *h, const rf_open_opts *opts)
{
    rf_status st = RF_OK;
    regf_guard_install();
    REGF_GUARD_BEGIN(h->map, h->size)
        st = parse(h, opts);
    REGF_GUARD_END(st)
    if (!st && h->root_ok && (h->opts.flags & RF_OPEN_TOLERANT)) {
        st = regf_check_tree(h);
        /* its problems after the walk's: file order again */
        if (!st && h->n_problems > 1) qsort(h->problems, h->n_problems, sizeof *h->problems, problem_order);
    }
    return st;
}

rf_status regf_open_memory(regf_hive *h, const void *data, size_t len, const rf_open_opts *opts)
{
    h->map = data;
    h->size = len;
    h->mapped = 0;
    rf_status st = parse_guarded(h, opts);
    if (st) regf_close(&h->base);
    return st;
}

/* The flags of the caller's options, before parse() has copied them. */
static uint32_t open_flags(const rf_open_opts *opts)
{
    return opts && opts->struct_size >= sizeof(size_t) + sizeof(uint32_t) ? opts->flags : 0;
}

static rf_status copy_fail(const char *path, rf_status code, int64_t native, const char *why)
{
    return rfi_fail(code, RF_NO_OFFSET, native, "cannot read %s into memory (RF_OPEN_COPY): %s", path, why);
}

rf_status regf_open_file(regf_hive *h, const char *path, const rf_open_opts *opts)
{
#ifdef _WIN32
    wchar_t wpath[32768];
    if (!MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, wpath, 32768))
        return rfi_fail(RF_E_INVALID_PARAMETER, RF_NO_OFFSET, (int64_t)GetLastError(),
                        "path is not valid UTF-8 or is too long");
    HANDLE f = CreateFileW(wpath, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (f == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        return rfi_fail(e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND ? RF_E_NOT_FOUND
                        : e == ERROR_ACCESS_DENIED ? RF_E_ACCESS_DENIED : RF_E_IO,
                        RF_NO_OFFSET, (int64_t)e, "cannot open %s (Win32 error %lu)", path, e);
    }
    if (GetFileType(f) != FILE_TYPE_DISK) {
        /* a pipe or a console/device: reading it could block, and it is no hive */
        CloseHandle(f);
        return rfi_fail(RF_E_UNSUPPORTED_FORMAT, RF_NO_OFFSET, 0,
                        "%s is not a regular file (a pipe or a device): hives are read from files", path);
    }
    LARGE_INTEGER sz;
    if (!GetFileSizeEx(f, &sz)) {
        DWORD e = GetLastError();
        CloseHandle(f);
        return rfi_fail(RF_E_IO, RF_NO_OFFSET, (int64_t)e, "cannot size %s (Win32 error %lu)", path, e);
    }
    h->size = (size_t)sz.QuadPart;
    h->map = (const uint8_t *)"";
    if (open_flags(opts) & RF_OPEN_COPY) {
        uint8_t *buf = malloc(h->size ? h->size : 1);
        size_t got = 0;
        if (!buf) {
            CloseHandle(f);
            return copy_fail(path, RF_E_NO_MEMORY, 0, "no memory");
        }
        while (got < h->size) {
            DWORD want = h->size - got > 0x40000000u ? 0x40000000u : (DWORD)(h->size - got), n = 0;
            if (!ReadFile(f, buf + got, want, &n, NULL)) {
                DWORD e = GetLastError();
                free(buf);
                CloseHandle(f);
                return copy_fail(path, RF_E_IO, (int64_t)e, "ReadFile failed");
            }
            if (n == 0) break; /* shorter than it was a moment ago: the walk says what is missing */
            got += n;
        }
        h->map = buf;
        h->size = got;
        h->mapped = 2;
    } else if (h->size) {
        h->win_mapping = CreateFileMappingW(f, NULL, PAGE_READONLY, 0, 0, NULL);
        h->map = h->win_mapping ? MapViewOfFile(h->win_mapping, FILE_MAP_READ, 0, 0, 0) : NULL;
        if (!h->map) {
            DWORD e = GetLastError();
            CloseHandle(f);
            if (h->win_mapping) CloseHandle(h->win_mapping);
            return rfi_fail(RF_E_IO, RF_NO_OFFSET, (int64_t)e, "cannot map %s (Win32 error %lu)", path, e);
        }
        h->mapped = 1;
    }
    CloseHandle(f);
#else
    /* O_NONBLOCK: opening a FIFO with no writer (or some devices) would
     * block forever before fstat could tell that it is no regular file */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        return rfi_fail(e == ENOENT ? RF_E_NOT_FOUND : e == EACCES ? RF_E_ACCESS_DENIED : RF_E_IO,
                        RF_NO_OFFSET, e, "cannot open %s: %s", path, strerror(e));
    }
    struct stat stt;
    if (fstat(fd, &stt) != 0) {
        int e = errno;
        close(fd);
        return rfi_fail(RF_E_IO, RF_NO_OFFSET, e, "cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(stt.st_mode)) {
        int e = S_ISDIR(stt.st_mode) ? EISDIR : ENODEV;
        close(fd);
        return rfi_fail(RF_E_UNSUPPORTED_FORMAT, RF_NO_OFFSET, e,
                        "%s is not a regular file (%s): hives are read from files", path,
                        S_ISDIR(stt.st_mode) ? "a directory" : S_ISFIFO(stt.st_mode) ? "a FIFO"
                        : S_ISCHR(stt.st_mode) ? "a character device" : S_ISBLK(stt.st_mode) ? "a block device"
                        : S_ISSOCK(stt.st_mode) ? "a socket" : "not a file");
    }
    h->size = (size_t)stt.st_size;
    h->map = (const uint8_t *)"";
    if (open_flags(opts) & RF_OPEN_COPY) {
        /* back to plain reads (a mapping reads no file descriptor: the two
         * calls are left out of every other open) */
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        uint8_t *buf = malloc(h->size ? h->size : 1);
        size_t got = 0;
        if (!buf) {
            close(fd);
            return copy_fail(path, RF_E_NO_MEMORY, 0, "no memory");
        }
        while (got < h->size) {
            ssize_t n = read(fd, buf + got, h->size - got);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                int e = errno;
                free(buf);
                close(fd);
                return copy_fail(path, RF_E_IO, e, strerror(e));
            }
            if (n == 0) break; /* shorter than it was a moment ago: the walk says what is missing */
            got += (size_t)n;
        }
        h->map = buf;
        h->size = got;
        h->mapped = 2;
    } else if (h->size) {
        void *m = mmap(NULL, h->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return rfi_fail(RF_E_IO, RF_NO_OFFSET, e, "cannot mmap %s: %s", path, strerror(e));
        }
        h->map = m;
        h->mapped = 1;
    }
    close(fd); /* the mapping keeps the file alive */
#endif
    rf_status st = parse_guarded(h, opts);
    if (st) regf_close(&h->base);
    return st;
}

rf_status regf_get_info(rf_hive *base, rf_hive_info *out)
{
    /* the cell counts need every hbin checked (a lazy open checks the rest now) */
    rf_status st = regf_check_all((regf_hive *)base);
    if (st) return st;
    *out = ((regf_hive *)base)->info;
    return RF_OK;
}

rf_status regf_root(rf_hive *base, rf_key *out)
{
    const regf_hive *h = (const regf_hive *)base;
    if (RF_UNLIKELY(!h->root_ok))
        return rfi_fail(RF_E_CORRUPT, regf_file_off(h->root), 0,
                        "root key at 0x%llx is in a damaged region (see the hive's problems)",
                        (unsigned long long)regf_file_off(h->root));
    *out = h->root;
    return RF_OK;
}
