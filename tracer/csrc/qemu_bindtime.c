/*
 * qemu_bindtime.c — a QEMU TCG plugin that times the guest dynamic linker's
 * symbol lookups inside translated (qemu-user) processes.
 *
 * USAGE (gotrace sets it for `gotrace bind --arch ARCH`; usable by hand):
 *   QEMU_PLUGIN="file=qemu_bindtime.so,out=DIR/qt,ldso=GUEST_LDSO,entry=E,rets=R1:R2:...,\
 *                delta=D,write=64:66,flush=220:435:221:93:94" ./prog-arm64
 *
 *   out     prefix of the output files: one OUT.<pid> per process
 *   ldso    the guest ld.so file as the host sees it (its mapping in
 *           /proc/self/maps tells which host addresses are its code)
 *   entry   file offset of _dl_lookup_symbol_x's first instruction
 *   rets    file offsets of its return instructions
 *   delta   p_vaddr - p_offset of ld.so's executable segment (link address =
 *           file offset + delta; entry and rets are given as link addresses)
 *   write   guest syscall numbers that write (LD_DEBUG prints each binding
 *           with one of them, from inside the lookup)
 *   flush   guest syscall numbers before which buffered records are written
 *           (clone, clone3, execve, exit, exit_group)
 *
 * OUTPUT: one line per completed lookup, tab-separated:
 *   L tid entry_ns exit_ns write_ns
 * CLOCK_MONOTONIC of the host (the guest's wall time, translation included);
 * write_ns is when the lookup wrote its LD_DEBUG line, 0 if it wrote none
 * (a failed lookup, or LD_DEBUG not set). gotrace pairs the lookups that
 * wrote, in write order, with the binding lines of the same process.
 *
 * CAVEATS
 * - QEMU plugin API version 1 (QEMU 7.2): plugins cannot read guest registers
 *   or memory, so the symbol comes from LD_DEBUG, not from here.
 * - A process killed by a signal loses the records not yet written (the
 *   buffer is written before clone/execve/exit and when full).
 * - Guest threads are host threads in qemu-user: tid is the guest's tid.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qemu_plugin_v1.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_VCPUS 4096
#define MAX_RETS 64
#define MAX_SYSCALLS 16
#define BUF_SIZE (1 << 16)

struct vcpu {
    int active;
    uint64_t entry_ns;
    uint64_t write_ns;
};

static struct vcpu vcpus[MAX_VCPUS];
static char out_prefix[4096];
static char ldso[4096];
static uint64_t entry_link, delta;
static uint64_t rets[MAX_RETS];
static int n_rets;
static int64_t write_nrs[MAX_SYSCALLS], flush_nrs[MAX_SYSCALLS];
static int n_write, n_flush;
static uintptr_t map_lo, map_hi, map_off; /* ld.so's mapping of the lookup's code, host addresses */
static int map_known;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char buf[BUF_SIZE];
static size_t buf_len;
static int out_fd = -1;
static pid_t out_pid;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* caller holds lock */
static void flush_locked(void)
{
    pid_t pid = getpid();
    if (buf_len == 0)
        return;
    if (out_fd < 0 || out_pid != pid) { /* first write, or a forked child: its own file */
        char path[4200];
        snprintf(path, sizeof path, "%s.%d", out_prefix, (int)pid);
        out_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        out_pid = pid;
    }
    if (out_fd >= 0) {
        size_t done = 0;
        while (done < buf_len) {
            ssize_t n = write(out_fd, buf + done, buf_len - done);
            if (n <= 0)
                break;
            done += (size_t)n;
        }
    }
    buf_len = 0;
}

static void record(uint64_t entry_ns, uint64_t exit_ns, uint64_t write_ns)
{
    char line[128];
    int n = snprintf(line, sizeof line, "L\t%d\t%llu\t%llu\t%llu\n", (int)gettid(),
                     (unsigned long long)entry_ns, (unsigned long long)exit_ns,
                     (unsigned long long)write_ns);
    pthread_mutex_lock(&lock);
    if (buf_len + (size_t)n > BUF_SIZE)
        flush_locked();
    memcpy(buf + buf_len, line, (size_t)n);
    buf_len += (size_t)n;
    pthread_mutex_unlock(&lock);
}

static void on_entry(unsigned int vcpu, void *udata)
{
    (void)udata;
    if (vcpu >= MAX_VCPUS)
        return;
    vcpus[vcpu].active = 1; /* a lookup never nests; an unmatched entry is dropped */
    vcpus[vcpu].write_ns = 0;
    vcpus[vcpu].entry_ns = now_ns();
}

static void on_return(unsigned int vcpu, void *udata)
{
    uint64_t t = now_ns();
    (void)udata;
    if (vcpu >= MAX_VCPUS || !vcpus[vcpu].active)
        return;
    vcpus[vcpu].active = 0;
    record(vcpus[vcpu].entry_ns, t, vcpus[vcpu].write_ns);
}

static int in_list(int64_t num, const int64_t *list, int n)
{
    for (int i = 0; i < n; i++)
        if (list[i] == num)
            return 1;
    return 0;
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    (void)id; (void)a1; (void)a2; (void)a3; (void)a4; (void)a5; (void)a6; (void)a7; (void)a8;
    if (vcpu < MAX_VCPUS && vcpus[vcpu].active && !vcpus[vcpu].write_ns && in_list(num, write_nrs, n_write))
        vcpus[vcpu].write_ns = now_ns();
    if (in_list(num, flush_nrs, n_flush)) {
        pthread_mutex_lock(&lock);
        flush_locked();
        pthread_mutex_unlock(&lock);
    }
}

static void find_ldso_mapping(void)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[8192];
    map_known = 1;
    if (!maps)
        return;
    while (fgets(line, sizeof line, maps)) {
        unsigned long lo, hi, off;
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %*s %lx %*s %*s %n", &lo, &hi, &off, &path_at) < 3 || !path_at)
            continue;
        char *path = line + path_at;
        path[strcspn(path, "\n")] = '\0';
        /* the mapping holding the lookup's code: qemu-user maps guest text
           without host PROT_EXEC, so permissions cannot tell */
        uint64_t want = entry_link - delta;
        if (strcmp(path, ldso) == 0 && want >= off && want < off + (hi - lo)) {
            map_lo = lo;
            map_hi = hi;
            map_off = off;
            break;
        }
    }
    fclose(maps);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    if (!map_known) /* qemu maps the guest's ld.so before any guest code runs */
        find_ldso_mapping();
    if (!map_hi)
        return;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uintptr_t h = (uintptr_t)qemu_plugin_insn_haddr(insn);
        if (h < map_lo || h >= map_hi)
            continue;
        uint64_t link = (uint64_t)(h - map_lo + map_off) + delta;
        if (link == entry_link) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_entry, QEMU_PLUGIN_CB_NO_REGS, NULL);
            continue;
        }
        for (int r = 0; r < n_rets; r++)
            if (rets[r] == link)
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_return, QEMU_PLUGIN_CB_NO_REGS, NULL);
    }
}

static void on_exit_cb(qemu_plugin_id_t id, void *udata)
{
    (void)id; (void)udata;
    pthread_mutex_lock(&lock);
    flush_locked();
    pthread_mutex_unlock(&lock);
}

static int parse_list(const char *s, int64_t *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        out[n++] = strtoll(s, &end, 10);
        if (*end != ':')
            break;
        s = end + 1;
    }
    return n;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    int64_t r[MAX_RETS];
    (void)info;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "out=", 4))
            snprintf(out_prefix, sizeof out_prefix, "%s", a + 4);
        else if (!strncmp(a, "ldso=", 5))
            snprintf(ldso, sizeof ldso, "%s", a + 5);
        else if (!strncmp(a, "entry=", 6))
            entry_link = strtoull(a + 6, NULL, 10);
        else if (!strncmp(a, "delta=", 6))
            delta = strtoull(a + 6, NULL, 10);
        else if (!strncmp(a, "rets=", 5)) {
            n_rets = parse_list(a + 5, r, MAX_RETS);
            for (int k = 0; k < n_rets; k++)
                rets[k] = (uint64_t)r[k];
        } else if (!strncmp(a, "write=", 6))
            n_write = parse_list(a + 6, write_nrs, MAX_SYSCALLS);
        else if (!strncmp(a, "flush=", 6))
            n_flush = parse_list(a + 6, flush_nrs, MAX_SYSCALLS);
        else {
            fprintf(stderr, "qemu_bindtime: unknown argument %s\n", a);
            return -1;
        }
    }
    if (!out_prefix[0] || !ldso[0] || !entry_link || !n_rets) {
        fprintf(stderr, "qemu_bindtime: out=, ldso=, entry= and rets= are required\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}
