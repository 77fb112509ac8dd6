/*
 * raw_walk.c — the physical floor of a full walk: the hive's structure
 * followed straight through the mapping, with no validation, no API and no
 * output (after ../shared/tools/cwalk.c). Every nk, its value list, every
 * vk, its subkey list (lf/lh/li/ri) and the data of every value (one byte
 * per 64, big data through its db segments) are read; nothing is checked
 * beyond staying inside the file. No reader can be faster: the bench tables
 * report it as "the floor". NOT bounds-hardened beyond that: for trusted
 * benchmark hives only.
 *
 *   raw_walk walk PATH [ROUNDS]   map the file once, then walk it ROUNDS
 *                                 times: the mapping is warm (its pages are
 *                                 mapped after the first round)
 *   raw_walk open PATH [ROUNDS]   each round maps the file, walks it and
 *                                 unmaps it: the page faults of a fresh
 *                                 mapping are included, as in an open + scan
 *
 * Prints one JSON object like walk_floor.c: {"mode", "times": [seconds per
 * round], "best", "keys", "values", "checksum"}. A first untimed round warms
 * the page cache (and, for "walk", the mapping).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
static double now(void)
{
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
}
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
#endif

typedef struct walk {
    const uint8_t *b;
    size_t n;
    uint64_t keys, values, sum;
} walk;

static uint32_t u32(const walk *w, size_t o) { uint32_t v; memcpy(&v, w->b + o, 4); return v; }
static uint16_t u16(const walk *w, size_t o) { uint16_t v; memcpy(&v, w->b + o, 2); return v; }
/* file offset of a cell's payload (after its 4-byte size) */
static size_t cell(uint32_t off) { return 4096 + (size_t)off + 4; }

static void touch(walk *w, size_t o, size_t len)
{
    if (o > w->n || len > w->n - o) return;
    for (size_t i = 0; i < len; i += 64) w->sum += w->b[o + i];
}

static void walk_key(walk *w, uint32_t off, int depth);

static void walk_list(walk *w, uint32_t off, int depth)
{
    size_t c = cell(off);
    if (c + 4 > w->n) return;
    uint16_t sig = u16(w, c), cnt = u16(w, c + 2);
    if ((size_t)cnt * 8 + 4 > w->n - c) return;
    if (sig == 0x6972) { /* ri: leaf lists */
        for (int i = 0; i < cnt; i++) walk_list(w, u32(w, c + 4 + 4 * (size_t)i), depth);
    } else if (sig == 0x696c) { /* li: offsets */
        for (int i = 0; i < cnt; i++) walk_key(w, u32(w, c + 4 + 4 * (size_t)i), depth);
    } else { /* lf / lh: offset + hash */
        for (int i = 0; i < cnt; i++) walk_key(w, u32(w, c + 4 + 8 * (size_t)i), depth);
    }
}

static void walk_key(walk *w, uint32_t off, int depth)
{
    size_t c = cell(off);
    if (c + 76 > w->n || u16(w, c) != 0x6b6e || depth > 512) return;
    w->keys++;
    uint32_t nsub = u32(w, c + 20), subl = u32(w, c + 28), nval = u32(w, c + 36), vall = u32(w, c + 40);
    w->sum += u32(w, c + 4); /* the last-write time */
    if (nval && vall != 0xffffffffu) {
        size_t vl = cell(vall);
        for (uint32_t i = 0; i < nval && vl + 4 * (size_t)i + 4 <= w->n; i++) {
            size_t v = cell(u32(w, vl + 4 * (size_t)i));
            if (v + 20 > w->n || u16(w, v) != 0x6b76) continue;
            w->values++;
            uint32_t sz = u32(w, v + 4), doff = u32(w, v + 8);
            if (sz & 0x80000000u) { /* inline: the data is the offset field */
                w->sum += doff;
                continue;
            }
            if (sz > 16344) { /* big data: a db record and its segments */
                size_t d = cell(doff);
                if (d + 8 <= w->n && u16(w, d) == 0x6264) {
                    uint16_t segs = u16(w, d + 2);
                    size_t sl = cell(u32(w, d + 4)), left = sz;
                    for (int s = 0; s < segs && left && sl + 4 * (size_t)s + 4 <= w->n; s++) {
                        size_t k = left < 16344 ? left : 16344;
                        touch(w, cell(u32(w, sl + 4 * (size_t)s)), k);
                        left -= k;
                    }
                    continue;
                }
            }
            touch(w, cell(doff), sz);
        }
    }
    if (nsub && subl != 0xffffffffu) walk_list(w, subl, depth + 1);
}

static void walk_hive(walk *w)
{
    w->keys = w->values = 0;
    if (w->n >= 4096 + 8) walk_key(w, u32(w, 0x24), 0);
}

/* ---- mapping -------------------------------------------------------------- */

typedef struct mapping {
    const uint8_t *p;
    size_t n;
#ifdef _WIN32
    HANDLE f, m;
#else
    int fd;
#endif
} mapping;

static int map_open(mapping *m, const char *path)
{
#ifdef _WIN32
    LARGE_INTEGER sz;
    m->f = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (m->f == INVALID_HANDLE_VALUE || !GetFileSizeEx(m->f, &sz)) return -1;
    m->n = (size_t)sz.QuadPart;
    m->m = CreateFileMappingA(m->f, NULL, PAGE_READONLY, 0, 0, NULL);
    m->p = m->m ? MapViewOfFile(m->m, FILE_MAP_READ, 0, 0, 0) : NULL;
    return m->p ? 0 : -1;
#else
    struct stat st;
    m->fd = open(path, O_RDONLY);
    if (m->fd < 0 || fstat(m->fd, &st) != 0) return -1;
    m->n = (size_t)st.st_size;
    void *p = mmap(NULL, m->n, PROT_READ, MAP_PRIVATE, m->fd, 0);
    if (p == MAP_FAILED) return -1;
    m->p = p;
    return 0;
#endif
}

static void map_close(mapping *m)
{
#ifdef _WIN32
    UnmapViewOfFile((void *)m->p);
    CloseHandle(m->m);
    CloseHandle(m->f);
#else
    munmap((void *)m->p, m->n);
    close(m->fd);
#endif
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "walk") != 0 && strcmp(argv[1], "open") != 0)) {
        fprintf(stderr, "usage: raw_walk walk|open HIVE [ROUNDS]\n");
        return 2;
    }
    int fresh = strcmp(argv[1], "open") == 0;
    int rounds = argc > 3 ? atoi(argv[3]) : 5;
    if (rounds < 0) rounds = 0;
    double *times = calloc((size_t)rounds + 1, sizeof *times), best = 0;
    walk w;
    memset(&w, 0, sizeof w);
    mapping m;
    if (map_open(&m, argv[2]) != 0) {
        fprintf(stderr, "raw_walk: cannot map %s\n", argv[2]);
        return 1;
    }
    w.b = m.p;
    w.n = m.n;
    walk_hive(&w); /* untimed: the page cache and (walk) the mapping warm up */
    if (fresh) map_close(&m);
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        if (fresh && map_open(&m, argv[2]) != 0) {
            fprintf(stderr, "raw_walk: cannot map %s\n", argv[2]);
            return 1;
        }
        w.b = m.p;
        walk_hive(&w);
        if (fresh) map_close(&m);
        times[r] = now() - t0;
        if (r == 0 || times[r] < best) best = times[r];
    }
    if (!fresh) map_close(&m);
    printf("{\"mode\": \"%s\", \"times\": [", argv[1]);
    for (int r = 0; r < rounds; r++) printf("%s%.9f", r ? ", " : "", times[r]);
    printf("], \"best\": %.9f, \"keys\": %llu, \"values\": %llu, \"checksum\": %llu}\n", best,
           (unsigned long long)w.keys, (unsigned long long)w.values, (unsigned long long)w.sum);
    free(times);
    return 0;
}
